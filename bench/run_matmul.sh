#!/usr/bin/env bash
# GEMM throughput of mlx-bun side by side with NumPy (OpenBLAS), PyTorch CPU and MLX Python, as
# GFLOP/s, fraction of the measured FMA peak, and ratios; writes bench/REPORT-matmul.md.
# Needs python3 with mlx, numpy and torch.   bash scripts/bootstrap.sh && bash bench/run_matmul.sh
# BENCH_ONLY=float32,bfloat16 (dtype prefixes or parts of case names) runs a subset.
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
.toolchain/bin/zig run -O ReleaseFast -mcpu=native bench/peak.zig > "$out/peak.jsonl"
.toolchain/bin/bun bench/matmul.ts > "$out/bun.jsonl"
python3 bench/matmul_peers.py > "$out/peers.jsonl"
REPORT_NOTES_FROM=bench/REPORT-matmul.md .toolchain/bin/bun bench/report_matmul.ts "$out/peak.jsonl" "$out/bun.jsonl" "$out/peers.jsonl" > "$out/report.md"
install_report bench/REPORT-matmul.md
