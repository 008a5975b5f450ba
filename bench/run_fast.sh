#!/usr/bin/env bash
# mx.fast: fused kernels vs our composed versions vs MLX Python's mx.fast; writes
# bench/REPORT-fast.md. Needs python3 with mlx.
#   bash scripts/bootstrap.sh && bash bench/run_fast.sh
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
bun_side() { .toolchain/bin/bun bench/fast.ts --json >> "$out/bun.jsonl"; }
mlx_side() { python3 bench/fast_mlx.py >> "$out/mlx.jsonl"; }
alternate_passes "${BENCH_PASSES:-2}" bun_side mlx_side
.toolchain/bin/bun bench/fast.ts --report "$out/bun.jsonl" "$out/mlx.jsonl" > bench/REPORT-fast.md
echo "wrote bench/REPORT-fast.md" >&2
