#!/usr/bin/env bash
# mx.fast: fused kernels vs our composed versions vs MLX Python's mx.fast; writes
# bench/REPORT-fast.md. Needs python3 with mlx.
#   bash scripts/bootstrap.sh && bash bench/run_fast.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passes=${BENCH_PASSES:-2}
for p in $(seq 1 "$passes"); do
  # alternate which process goes first
  if (( p % 2 )); then
    .toolchain/bin/bun bench/fast.ts --json >> "$out/bun.jsonl"
    python3 bench/fast_mlx.py >> "$out/mlx.jsonl"
  else
    python3 bench/fast_mlx.py >> "$out/mlx.jsonl"
    .toolchain/bin/bun bench/fast.ts --json >> "$out/bun.jsonl"
  fi
done
.toolchain/bin/bun bench/fast.ts --report "$out/bun.jsonl" "$out/mlx.jsonl" > bench/REPORT-fast.md
echo "wrote bench/REPORT-fast.md" >&2
