#!/usr/bin/env bash
# The tools test/c_example.test.ts builds the C example with: CMake, pkg-config and a C
# compiler. Whichever the machine lacks is installed into .toolchain/ctools from pinned pip
# wheels (CMake, pkgconf) or, for the compiler, served by `zig cc`, each with a shim in
# .toolchain/bin. Put .toolchain/bin on PATH to use them (.ci/run does). Run after
# scripts/bootstrap.sh (the compiler shim calls the toolchain's Zig).
#
#   bash scripts/c_tools.sh                  install what is missing
#   MLXB_CTOOLS_FORCE=1 bash scripts/c_tools.sh   use the pinned wheels and zig cc even if the machine has its own
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .toolchain/bin
ct=.toolchain/ctools
force=${MLXB_CTOOLS_FORCE:-0}
missing() { [ "$force" = 1 ] || ! command -v "$1" >/dev/null; }

wheels=()
missing cmake && wheels+=("cmake==4.4.5")
missing pkg-config && wheels+=("pkgconf==3.0.7.post0")
if [ ${#wheels[@]} -gt 0 ]; then
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --target "$ct" "${wheels[@]}"
fi
if missing cmake; then ln -sf "$PWD/$ct/cmake/data/bin/cmake" .toolchain/bin/cmake; fi
if missing pkg-config; then ln -sf "$PWD/$ct/pkgconf/.bin/pkgconf" .toolchain/bin/pkg-config; fi
if [ "$force" = 1 ] || { ! command -v cc >/dev/null && ! command -v gcc >/dev/null; }; then
  printf '#!/bin/sh\nexec "%s/.toolchain/bin/zig" cc "$@"\n' "$PWD" > .toolchain/bin/cc
  chmod +x .toolchain/bin/cc
fi
for t in cmake pkg-config cc; do
  printf '%s: %s\n' "$t" "$(PATH="$PWD/.toolchain/bin:$PATH" command -v "$t" || echo MISSING)"
done
