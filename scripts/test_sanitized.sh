#!/usr/bin/env bash
# The test suite against the checked engine: `zig build -Dsanitize=true` (ReleaseSafe: Zig's
# safety checks on every integer overflow, bounds, alignment and unreachable in the engine; C
# sanitizers for any C; allocator blocks poisoned when handed out and when freed), installed into
# its own prefix and loaded through MLX_BUN_LIB. Each test file runs in its own process with
# test/leakcheck.ts preloaded: after its tests it collects the garbage and asks the engine for
# its leak report (mlxb_debug_leak_report); a live node that no handle reaches, or allocated
# bytes that no reachable buffer owns, fail the file. A safety-check panic aborts the process,
# which fails the file too.
#
#   bash scripts/test_sanitized.sh                 the default subset (below)
#   bash scripts/test_sanitized.sh test/*.test.ts  any files
#   MLXB_SANITIZE_PREFIX=dir                       where to install the checked engine (zig-out-sanitize)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.toolchain/bin:$PATH"
prefix=${MLXB_SANITIZE_PREFIX:-zig-out-sanitize}

start=$(date +%s)
zig build -Dsanitize=true --prefix "$prefix" || { echo "sanitized build failed"; exit 1; }
built=$(date +%s)
export MLX_BUN_LIB="$PWD/$prefix/lib/libmlxbun.so"
export MLXB_FUZZ_BUDGET=${MLXB_FUZZ_BUDGET:-10}
export MLXB_SOAK_STEPS=${MLXB_SOAK_STEPS:-1000}

if [ $# -gt 0 ]; then
  files=("$@")
else
  files=(test/memory.test.ts test/limits.test.ts test/eval.test.ts test/concurrency.test.ts test/elementwise.test.ts
    test/reduce.test.ts test/shape.test.ts test/indexing.test.ts test/sort.test.ts test/matmul.test.ts
    test/transforms.test.ts test/dlpack.test.ts test/creation.test.ts test/astype.test.ts test/fuzz.test.ts
    test/soak.test.ts)
fi

passed=0
failed=0
failures=()
for f in "${files[@]}"; do
  t0=$(date +%s)
  if bun test --timeout 120000 --preload ./test/leakcheck.ts "$f" >"/tmp/sanitized.$$.log" 2>&1; then
    passed=$((passed + 1)); status=pass
  else
    failed=$((failed + 1)); status=FAIL; failures+=("$f")
    tail -40 "/tmp/sanitized.$$.log"
  fi
  report=$(grep -o 'leakcheck: {.*}' "/tmp/sanitized.$$.log" | tail -1)
  counts=$(grep -oE '^ *[0-9]+ (pass|fail|todo)$' "/tmp/sanitized.$$.log" | tr -s ' \n' ' ')
  echo "($status) $f [$(( $(date +%s) - t0 )) s]$counts ${report#leakcheck: }"
done
rm -f "/tmp/sanitized.$$.log"
echo "sanitized engine: build $((built - start)) s, tests $(( $(date +%s) - built )) s; $passed files passed, $failed failed ${failures[*]:-}"
[ "$failed" -eq 0 ]
