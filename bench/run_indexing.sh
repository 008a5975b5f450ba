#!/usr/bin/env bash
# Gather/scatter/slice-update throughput of mlx-bun side by side with MLX Python; writes
# bench/REPORT-indexing.md. Needs python3 with mlx and numpy.
#   bash scripts/bootstrap.sh && bash bench/run_indexing.sh
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
.toolchain/bin/bun bench/indexing.ts > "$out/bun.jsonl"
python3 bench/indexing_peers.py > "$out/peers.jsonl"
.toolchain/bin/bun bench/report_indexing.ts "$out/bun.jsonl" "$out/peers.jsonl" > bench/REPORT-indexing.md
echo "wrote bench/REPORT-indexing.md" >&2
