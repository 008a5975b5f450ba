#!/usr/bin/env bash
# Convolution throughput of mlx-bun side by side with MLX Python and PyTorch CPU; writes
# bench/REPORT-conv.md (hand-written notes between the notes markers are kept). Needs python3
# with mlx and numpy (torch optional).
#   bash scripts/bootstrap.sh && bash bench/run_conv.sh
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
.toolchain/bin/bun bench/conv.ts > "$out/bun.jsonl"
python3 bench/conv_peers.py > "$out/peers.jsonl"
notes=""
if [ -f bench/REPORT-conv.md ]; then
  notes=$(sed -n '/<!-- notes:begin -->/,/<!-- notes:end -->/p' bench/REPORT-conv.md)
fi
.toolchain/bin/bun bench/report_conv.ts "$out/bun.jsonl" "$out/peers.jsonl" > bench/REPORT-conv.md
if [ -n "$notes" ]; then printf '\n%s\n' "$notes" >> bench/REPORT-conv.md; fi
echo "wrote bench/REPORT-conv.md" >&2
