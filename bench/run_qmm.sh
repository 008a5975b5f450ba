#!/usr/bin/env bash
# Quantized matmul (4-bit, batch-1 decode shapes) of mlx-bun side by side with MLX Python;
# writes bench/REPORT-qmm.md. Needs python3 with mlx.
#   bash scripts/bootstrap.sh && bash bench/run_qmm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passes=${BENCH_PASSES:-2}
for p in $(seq 1 "$passes"); do
  # alternate which side goes first
  if (( p % 2 )); then
    .toolchain/bin/bun bench/qmm.ts --json >> "$out/bun.jsonl"
    python3 bench/qmm_mlx.py >> "$out/mlx.jsonl"
  else
    python3 bench/qmm_mlx.py >> "$out/mlx.jsonl"
    .toolchain/bin/bun bench/qmm.ts --json >> "$out/bun.jsonl"
  fi
done
.toolchain/bin/bun bench/qmm.ts --report "$out/bun.jsonl" "$out/mlx.jsonl" > bench/REPORT-qmm.md
echo "wrote bench/REPORT-qmm.md" >&2
