#!/usr/bin/env bash
# The whole test suite: the engine's Zig tests (safety-checked build) and every bun test.
# Ends with one line "N passed, N failed" counting both; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The type check counts as one test: strict TypeScript over src/, ffi/, test/, bench/, examples/.
if .toolchain/npm/node_modules/.bin/tsc -p tsconfig.json; then
  echo "(pass) tsc: strict type check"; tsc_passed=1; tsc_failed=0
else
  echo "(fail) tsc: strict type check"; tsc_passed=0; tsc_failed=1
fi

.toolchain/bin/zig build test --summary all 2>&1 | tee "$log"
zig_status=${PIPESTATUS[0]}
zig_passed=$(grep -oE 'run test [0-9]+ passed' "$log" | grep -oE '[0-9]+' | head -1)
zig_failed=$(grep -oE '[0-9]+ failed' "$log" | grep -oE '[0-9]+' | head -1)
zig_passed=${zig_passed:-0}
zig_failed=${zig_failed:-0}
if [ "$zig_status" -ne 0 ] && [ "$zig_failed" -eq 0 ]; then zig_failed=1; fi

.toolchain/bin/bun test --timeout 60000 "$@" 2>&1 | tee "$log"
bun_status=${PIPESTATUS[0]}
bun_passed=$(grep -oE '^ *[0-9]+ pass$' "$log" | grep -oE '[0-9]+' | tail -1)
bun_failed=$(grep -oE '^ *[0-9]+ fail$' "$log" | grep -oE '[0-9]+' | tail -1)
bun_passed=${bun_passed:-0}
bun_failed=${bun_failed:-0}
if [ "$bun_status" -ne 0 ] && [ "$bun_failed" -eq 0 ]; then bun_failed=1; fi

passed=$((tsc_passed + zig_passed + bun_passed))
failed=$((tsc_failed + zig_failed + bun_failed))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
