#!/usr/bin/env bash
# Cross-compiles the engine for every platform package (ReleaseFast, side by side) into
# zig-out/platforms/<platform>/ (lib/ with the library, pkg-config and CMake files;
# include/mlxbun.h), then prints each library's format, architecture and dynamic dependencies
# and checks them (scripts/check_artifact.ts). Exits non-zero if a build or a check fails.
#
#   bash scripts/build_platforms.sh                  all four
#   bash scripts/build_platforms.sh linux-x64-gnu    some of them
#   OPTIMIZE=Debug bash scripts/build_platforms.sh   a quicker build, to check the targets link
#
# Targets: x86-64 builds use the baseline CPU (any x86-64; faster kernels are chosen at run
# time), Linux builds glibc 2.17 (RHEL/CentOS 7, Ubuntu 14.04 and newer), macOS builds 11.0
# and link only libSystem (Zig needs no macOS SDK for that). scripts/pack.ts packs the results.
set -euo pipefail
cd "$(dirname "$0")/.."
# The toolchain only (bootstrap also builds the native engine when it is stale).
[ -x .toolchain/bin/zig ] && [ -x .toolchain/bin/bun ] || bash scripts/bootstrap.sh
ZIG=.toolchain/bin/zig
OPTIMIZE=${OPTIMIZE:-ReleaseFast}
BUN=.toolchain/bin/bun

declare -A TARGET=(
  [linux-x64-gnu]="x86_64-linux-gnu.2.17"
  [linux-arm64-gnu]="aarch64-linux-gnu.2.17"
  [darwin-arm64]="aarch64-macos.11.0"
  [darwin-x64]="x86_64-macos.11.0"
)
platforms=("$@")
[ ${#platforms[@]} -eq 0 ] && platforms=(linux-x64-gnu linux-arm64-gnu darwin-arm64 darwin-x64)

status=0
ok=0
bad=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# The builds run side by side (an arm64 engine is one compilation unit, so one build alone
# leaves the other cores idle); each one's output is printed when they are all done.
declare -A PID=()
for p in "${platforms[@]}"; do
  t=${TARGET[$p]:-}
  [ -n "$t" ] || { echo "unknown platform $p (known: ${!TARGET[*]})" >&2; exit 2; }
  prefix=zig-out/platforms/$p
  echo "== $p: zig build -Dtarget=$t -Dcpu=baseline -Doptimize=$OPTIMIZE --prefix $prefix" >&2
  "$ZIG" build -Dtarget="$t" -Dcpu=baseline -Doptimize="$OPTIMIZE" --prefix "$prefix" > "$logs/$p" 2>&1 &
  PID[$p]=$!
done
for p in "${platforms[@]}"; do
  prefix=zig-out/platforms/$p
  built=0
  wait "${PID[$p]}" && built=1
  cat "$logs/$p" >&2
  if [ $built -eq 0 ]; then
    echo "$p: BUILD FAILED" ; status=1; bad=$((bad + 1)); continue
  fi
  lib=$prefix/lib/libmlxbun.so
  case $p in darwin-*) lib=$prefix/lib/libmlxbun.dylib ;; esac
  # `file` when the machine has it, then our own header check (architecture, dependencies, glibc).
  echo "== $p" >&2
  command -v file >/dev/null && file -b "$lib" | sed "s|^|  file: |"
  if "$BUN" scripts/check_artifact.ts "$p" "$lib"; then ok=$((ok + 1)); else status=1; bad=$((bad + 1)); fi
done
echo "platforms: $ok passed, $bad failed"
exit $status
