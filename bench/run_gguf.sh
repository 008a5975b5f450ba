#!/usr/bin/env bash
# GGUF quantized loading, mlx-bun vs MLX Python, in one invocation: writes the test files (a 4096 x
# 4096 tensor per type) into a temporary directory, then runs both sides on them.
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
export PATH="$PWD/.toolchain/bin:$PATH"
python3 bench/gguf_load_mlx.py "$out"
bun bench/gguf_load.ts "$out"
