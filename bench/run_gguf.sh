#!/usr/bin/env bash
# GGUF quantized loading, mlx-bun vs MLX Python, in one invocation: writes the test files (a 4096 x
# 4096 tensor per type) into a temporary directory, then runs both sides on them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.toolchain/bin:$PATH"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 bench/gguf_load_mlx.py "$dir"
bun bench/gguf_load.ts "$dir"
