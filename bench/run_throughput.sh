#!/usr/bin/env bash
# Large-array throughput of mlx-bun's kernels side by side with MLX Python and NumPy, as
# effective GB/s, the fraction of the measured memory bandwidth, and ratios; writes
# bench/REPORT-throughput.md. Needs python3 with mlx and numpy (pip install "mlx[cpu]" numpy).
#   bash scripts/bootstrap.sh && bash bench/run_throughput.sh
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
.toolchain/bin/bun bench/throughput.ts > "$out/bun.jsonl"
python3 bench/throughput_peers.py > "$out/peers.jsonl"
# The report's hand-written "## Notes" section is kept (report_throughput.ts appends it).
REPORT_NOTES_FROM=bench/REPORT-throughput.md .toolchain/bin/bun bench/report_throughput.ts "$out/bun.jsonl" "$out/peers.jsonl" > "$out/report.md"
install_report bench/REPORT-throughput.md
