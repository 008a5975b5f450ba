#!/usr/bin/env bash
# FFT throughput of mlx-bun side by side with NumPy (pocketfft) and MLX Python; writes
# bench/REPORT-fft.md. Needs python3 with mlx and numpy.
#   bash scripts/bootstrap.sh && bash bench/run_fft.sh
# Knobs: BENCH_ROUNDS (7), BENCH_ROUND_MS (60), BENCH_ONLY (comma-separated case names).
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
.toolchain/bin/bun bench/fft.ts > "$out/bun.jsonl"
python3 bench/fft_peers.py > "$out/peers.jsonl"
.toolchain/bin/bun bench/report_fft.ts "$out/bun.jsonl" "$out/peers.jsonl" > "$out/report.md"
install_report bench/REPORT-fft.md
