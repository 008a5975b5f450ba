#!/usr/bin/env bash
# Quantized matmul (4-bit, batch-1 decode shapes) of mlx-bun side by side with MLX Python;
# writes bench/REPORT-qmm.md. Needs python3 with mlx.
#   bash scripts/bootstrap.sh && bash bench/run_qmm.sh
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
bun_side() { .toolchain/bin/bun bench/qmm.ts --json >> "$out/bun.jsonl"; }
mlx_side() { python3 bench/qmm_mlx.py >> "$out/mlx.jsonl"; }
alternate_passes "${BENCH_PASSES:-2}" bun_side mlx_side
.toolchain/bin/bun bench/qmm.ts --report "$out/bun.jsonl" "$out/mlx.jsonl" > bench/REPORT-qmm.md
echo "wrote bench/REPORT-qmm.md" >&2
