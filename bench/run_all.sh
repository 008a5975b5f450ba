#!/usr/bin/env bash
# The whole benchmark suite in one command (`npm run bench`): sets up the peers, records the
# machine, runs the probes (STREAM-style bandwidth, FMA peak) and every area against its peers in
# the same invocation (passes alternate who goes first), and writes bench/REPORT.md with SVG
# charts in bench/charts/. Raw output and records are kept in bench/out/run-<time>/ (git-ignored).
#
#   bash bench/run_all.sh                 # full run (about an hour on 2 cores)
#   BENCH_QUICK=1 bash bench/run_all.sh   # quick mode: fewer cases, sizes and rounds (minutes)
#
# Environment (all optional):
#   BENCH_QUICK=1          quick mode
#   BENCH_PASSES=N         passes over every area (default 2); odd passes run mlx-bun first,
#                          even passes the peers first; the report pools the samples of all passes
#   BENCH_AREAS="a b ..."  only these areas (default: all, see AREAS below)
#   BENCH_REPORT=path      where to write the report (default bench/REPORT.md; charts beside it)
#   BENCH_FROM=dir         measure nothing: rebuild the report from a kept bench/out/run-* folder
#   BENCH_NO_INSTALL=1     do not install missing peers (report them as unavailable instead)
#   BENCH_CAVEAT="text"    an extra caveat for the report header
# Peers: Python `mlx` (the mlx[cpu] wheel on Linux), `numpy`, `torch` (pip); npm `@jax-js/jax`,
# `@tensorflow/tfjs`, `@tensorflow/tfjs-backend-wasm` (pinned in bench/peers/package.json,
# installed with the pinned Bun into bench/peers/node_modules); `hyperfine` for whole processes.
# A peer that cannot be installed or run is listed in the report with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."

BUN=.toolchain/bin/bun
ZIG=.toolchain/bin/zig
QUICK=${BENCH_QUICK:-0}
PASSES=${BENCH_PASSES:-2}
REPORT=${BENCH_REPORT:-bench/REPORT.md}
ALL_AREAS="probes overhead throughput matmul conv sort indexing fft mlp_step transformer_step memory interop qmm process linked"
AREAS=${BENCH_AREAS:-$ALL_AREAS}
JS_PEERS="jax-js tfjs-wasm tfjs-cpu"

say() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
has_area() { [[ " $AREAS " == *" $1 "* ]]; }
quick() { [ "$QUICK" = 1 ]; }

if [ -n "${BENCH_FROM:-}" ]; then
  "$BUN" bench/report_all.ts "$BENCH_FROM/results.jsonl" --out "$REPORT"
  exit $?
fi

# ---------------------------------------------------------------------------------------------
# Setup: toolchain and engine, Python peers, npm peers, hyperfine.
if [ "${BENCH_SKIP_BOOTSTRAP:-0}" != 1 ]; then
  bash scripts/bootstrap.sh || { echo "run_all: bootstrap failed" >&2; exit 1; }
fi
RUN=bench/out/run-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN/raw"
RES=$RUN/results.jsonl
LOG=$RUN/log.txt
: > "$RES"
say "run folder $RUN"

# unavailable BENCH SIDE REASON: record a peer that cannot run.
unavailable() {
  "$BUN" -e 'const [bench, side, reason] = process.argv.slice(-3); console.log(JSON.stringify({ type: "unavailable", bench, side, reason }))' "$1" "$2" "$3" >> "$RES"
}
# linked BENCH TITLE SCRIPT REPORT STATUS: an area with its own report.
linked() {
  "$BUN" -e 'const [bench, title, script, report, status] = process.argv.slice(-5); console.log(JSON.stringify({ type: "linked", bench, title, script, report, status }))' "$1" "$2" "$3" "$4" "$5" >> "$RES"
}
last_err() { tail -c 400 "$1" 2>/dev/null | tr '\n' ' '; }

declare -A PY_OK PY_WHY
py_check() { # module pip-name
  local err
  if err=$(python3 -c "import $1" 2>&1); then PY_OK[$1]=1; return; fi
  if [ "${BENCH_NO_INSTALL:-0}" != 1 ] && command -v python3 >/dev/null; then
    say "installing $2 with pip"
    PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet "$2" >>"$LOG" 2>&1
    if err=$(python3 -c "import $1" 2>&1); then PY_OK[$1]=1; return; fi
  fi
  PY_OK[$1]=0
  PY_WHY[$1]="python3 cannot import $1: $(echo "$err" | tail -1)"
}
if command -v python3 >/dev/null; then
  py_check numpy numpy
  py_check mlx.core "mlx[cpu]"
  py_check torch torch
else
  for m in numpy mlx.core torch; do PY_OK[$m]=0; PY_WHY[$m]="no python3 on this machine"; done
fi
# Python sides need mlx and numpy (every peer script imports both).
py_ok() { [ "${PY_OK[mlx.core]}" = 1 ] && [ "${PY_OK[numpy]}" = 1 ]; }

JS_OK=1
JS_WHY=""
if [ ! -d bench/peers/node_modules/@jax-js/jax ] || [ ! -d bench/peers/node_modules/@tensorflow/tfjs ]; then
  if [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
    say "installing the npm peers into bench/peers/node_modules"
    if ! (cd bench/peers && ../../$BUN install --frozen-lockfile) >>"$LOG" 2>&1; then
      JS_OK=0
      JS_WHY="bun install in bench/peers failed: $(last_err "$LOG")"
    fi
  else
    JS_OK=0
    JS_WHY="not installed (BENCH_NO_INSTALL=1)"
  fi
fi

if ! command -v hyperfine >/dev/null && [ "${BENCH_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing hyperfine with apt-get"
  apt-get install -y hyperfine >>"$LOG" 2>&1 || (apt-get update >>"$LOG" 2>&1 && apt-get install -y hyperfine >>"$LOG" 2>&1)
fi

# Versions of everything measured.
lib=zig-out/lib/libmlxbun.so
[ "$(uname)" = Darwin ] && lib=zig-out/lib/libmlxbun.dylib
{
  echo "mlx-bun=$(grep -m1 '"version"' package.json | cut -d'"' -f4) (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git status --porcelain -- src engine ffi 2>/dev/null)" ] && echo ', with uncommitted changes'))"
  echo "engine=$lib sha256:$(sha256sum "$lib" 2>/dev/null | cut -c1-16)"
  echo "bun=$("$BUN" --version)"
  echo "zig=$("$ZIG" version 2>/dev/null || echo '?')"
  if command -v python3 >/dev/null; then
    echo "python=$(python3 -c 'import platform; print(platform.python_version())')"
    for m in mlx numpy torch; do
      echo "$m=$(python3 -c "import importlib.metadata as md, sys
name = {'mlx': 'mlx', 'numpy': 'numpy', 'torch': 'torch'}['$m']
try: print(md.version(name))
except Exception as e: print('not installed')" 2>/dev/null)"
    done
    echo "numpy BLAS=$(python3 -c 'import numpy; c = numpy.show_config(mode="dicts"); b = c["Build Dependencies"]["blas"]; print(b.get("name", "?"), b.get("version", ""))' 2>/dev/null || echo '?')"
  fi
  for p in @jax-js/jax @tensorflow/tfjs @tensorflow/tfjs-backend-wasm; do
    f=bench/peers/node_modules/$p/package.json
    echo "$p=$( [ -f "$f" ] && grep -m1 '"version"' "$f" | cut -d'"' -f4 || echo 'not installed')"
  done
  echo "hyperfine=$(hyperfine --version 2>/dev/null | cut -d' ' -f2 || echo 'not installed')"
  [ -n "$(hyperfine --version 2>/dev/null)" ] || echo "hyperfine=not installed"
} > "$RUN/versions.txt"
"$BUN" -e 'const fs = require("fs"); const o = {}; for (const l of fs.readFileSync(process.argv.at(-1), "utf8").split("\n")) { const i = l.indexOf("="); if (i > 0) o[l.slice(0, i)] = l.slice(i + 1); } console.log(JSON.stringify(o));' "$RUN/versions.txt" > "$RUN/versions.json"

caveats=("The machine is shared (other jobs may run at the same time); single numbers are noisy, and ratios are only meaningful within this run.")
read -r l1 _ < /proc/loadavg 2>/dev/null || l1=0
if awk -v l="$l1" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
  caveats+=("Load average $l1 on $(nproc) CPUs when the run started: other processes competed for the CPUs, so this report is NOT definitive.")
fi
quick && caveats+=("Quick mode (BENCH_QUICK=1): few cases, sizes and rounds — a smoke test of the suite, not a measurement to quote.")
[ -n "${BENCH_CAVEAT:-}" ] && caveats+=("$BENCH_CAVEAT")
meta_args=(--passes "$PASSES")
quick && meta_args+=(--quick)
for c in "${caveats[@]}"; do meta_args+=(--caveat "$c"); done
"$BUN" bench/lib/machine.ts "$RUN/versions.json" "${meta_args[@]}" >> "$RES"

# ---------------------------------------------------------------------------------------------
# Running one side: run_side BENCH SIDE SOURCE PASS FORMAT CMD...
# Runs CMD (stdout -> raw file), converts its output to records; on failure records SIDE as
# unavailable for BENCH with the end of its error output.
run_side() {
  local bench=$1 side=$2 source=$3 pass=$4 format=$5
  shift 5
  local raw="$RUN/raw/$bench.$side.$pass.out" err="$RUN/raw/$bench.$side.$pass.err"
  say "pass $pass: $bench / $side"
  if ! timeout "${BENCH_TIMEOUT:-1800}" "$@" > "$raw" 2> "$err"; then
    unavailable "$bench" "$side" "$source failed (exit status $?): $(last_err "$err")"
  fi
  "$BUN" bench/lib/collect.ts --bench "$bench" --source "$source" --pass "$pass" --format "$format" "$raw" >> "$RES" 2>>"$LOG" ||
    unavailable "$bench" "$side" "could not read the output of $source: $(last_err "$LOG")"
}

# area BENCH: runs the sides listed in SIDES (entries "side|source|format|command"), forward on
# odd passes and backward on even passes.
area() {
  local bench=$1 pass i n entry side source format cmd
  n=${#SIDES[@]}
  for pass in $(seq 1 "$PASSES"); do
    for ((i = 0; i < n; i++)); do
      if ((pass % 2)); then entry=${SIDES[$i]}; else entry=${SIDES[$((n - 1 - i))]}; fi
      IFS='|' read -r side source format cmd <<< "$entry"
      run_side "$bench" "$side" "$source" "$pass" "$format" bash -c "$cmd"
    done
  done
}

# Adds the Python peer side (if it can run) and the JS peers (if installed) to SIDES.
add_py() { # label source command
  if py_ok; then SIDES+=("$1|$2|lines|$3"); else unavailable "$BENCH" "$1" "${PY_WHY[mlx.core]:-${PY_WHY[numpy]:-}}"; fi
}
add_js() { # [env for the quick mode]
  local p env=""
  quick && env=${1:-}
  for p in $JS_PEERS; do
    if [ "$JS_OK" = 1 ]; then SIDES+=("$p|bench/js_peers.ts|lines|$env $BUN bench/js_peers.ts $p $BENCH"); else unavailable "$BENCH" "$p" "$JS_WHY"; fi
  done
}
torch_note() { [ "${PY_OK[torch]}" = 1 ] || unavailable "$BENCH" torch "${PY_WHY[torch]}"; }

# ---------------------------------------------------------------------------------------------
if has_area probes; then
  say "probes: STREAM-style bandwidth (bench/stream.zig) and FMA peak (bench/peak.zig)"
  if quick; then stream_args="16777216 4"; else stream_args="33554432 10"; fi
  # shellcheck disable=SC2086
  "$ZIG" run -O ReleaseFast -mcpu=native bench/stream.zig -- $stream_args > "$RUN/raw/stream.out" 2>>"$LOG" || unavailable probes stream "bench/stream.zig failed: $(last_err "$LOG")"
  "$BUN" bench/lib/collect.ts --bench probes --source bench/stream.zig "$RUN/raw/stream.out" >> "$RES"
  "$ZIG" run -O ReleaseFast -mcpu=native bench/peak.zig > "$RUN/raw/peak.out" 2>>"$LOG" || unavailable probes peak "bench/peak.zig failed: $(last_err "$LOG")"
  "$BUN" bench/lib/collect.ts --bench probes --source bench/peak.zig "$RUN/raw/peak.out" >> "$RES"
fi

if has_area overhead; then
  BENCH=overhead
  if quick; then env="BENCH_ROUNDS=3 BENCH_ROUND_MS=5 BENCH_WARMUP_MS=20"; groups=create,eval,dispose; else env=""; groups=baseline,create,eval,dispose,cycle,call; fi
  SIDES=("mlx-bun|bench/overhead.ts|overhead|$env $BUN bench/overhead.ts --json --only $groups")
  if py_ok; then SIDES+=("mlx|bench/overhead_mlx.py|overhead|$env python3 bench/overhead_mlx.py --json --only $groups"); else unavailable overhead mlx "${PY_WHY[mlx.core]:-${PY_WHY[numpy]:-}}"; fi
  area overhead
fi

if has_area throughput; then
  BENCH=throughput
  if quick; then env="BENCH_SIZES=1048576 BENCH_ROUNDS=5"; else env=""; fi
  SIDES=("mlx-bun|bench/throughput.ts|lines|$env $BUN bench/throughput.ts")
  add_py "mlx+numpy" bench/throughput_peers.py "$env python3 bench/throughput_peers.py"
  add_js "$env BENCH_JS_OPS=add,exp,sum"
  area throughput
fi

if has_area matmul; then
  BENCH=matmul
  if quick; then env="BENCH_CASE_MS=150 BENCH_ONLY='square 256,square 512,decode x·W'"; else env=""; fi
  SIDES=("mlx-bun|bench/matmul.ts|lines|$env $BUN bench/matmul.ts")
  if [ "${PY_OK[torch]}" = 1 ]; then add_py "mlx+numpy+torch" bench/matmul_peers.py "$env python3 bench/matmul_peers.py"; else
    unavailable matmul "mlx+numpy+torch" "bench/matmul_peers.py needs torch: ${PY_WHY[torch]}"; fi
  add_js "BENCH_CASE_MS=150 BENCH_ONLY='square 256'"
  area matmul
fi

if has_area conv; then
  BENCH=conv
  if quick; then env="BENCH_ROUNDS=2"; else env=""; fi
  SIDES=("mlx-bun|bench/conv.ts|lines|$env $BUN bench/conv.ts")
  add_py "mlx+torch" bench/conv_peers.py "$env python3 bench/conv_peers.py"
  torch_note
  area conv
fi

if has_area sort; then
  BENCH=sort
  if quick; then env="BENCH_QUICK=1 BENCH_ROUNDS=3"; else env=""; fi
  SIDES=("mlx-bun|bench/sort.ts|lines|$env $BUN bench/sort.ts")
  add_py "mlx+numpy+torch" bench/sort_peers.py "$env python3 bench/sort_peers.py"
  torch_note
  area sort
fi

if has_area indexing; then
  BENCH=indexing
  if quick; then env="BENCH_ROUNDS=3"; else env=""; fi
  SIDES=("mlx-bun|bench/indexing.ts|lines|$env $BUN bench/indexing.ts")
  add_py mlx bench/indexing_peers.py "$env python3 bench/indexing_peers.py"
  area indexing
fi

if has_area fft; then
  BENCH=fft
  if quick; then env="BENCH_ROUNDS=3 BENCH_ROUND_MS=20 BENCH_ONLY='fft_2^10,fft_2^16,fft_10007,rfft_2^18,fft2_1024x1024'"; else env=""; fi
  SIDES=("mlx-bun|bench/fft.ts|lines|$env $BUN bench/fft.ts")
  add_py "mlx+numpy" bench/fft_peers.py "$env python3 bench/fft_peers.py"
  area fft
fi

if has_area mlp_step; then
  BENCH=mlp_step
  if quick; then env="BENCH_CASE_MS=200"; else env=""; fi
  SIDES=("mlx-bun|bench/mlp_step.ts|lines|$env $BUN bench/mlp_step.ts")
  add_py mlx bench/mlp_step_mlx.py "$env python3 bench/mlp_step_mlx.py"
  add_js "$env BENCH_JS_MLP=tiny"
  area mlp_step
fi

if has_area transformer_step; then
  BENCH=transformer_step
  if quick; then env="BENCH_QUICK=1 BENCH_CASE_MS=500"; else env=""; fi
  SIDES=("mlx-bun|bench/transformer_step.ts|lines|$env $BUN bench/transformer_step.ts")
  add_py mlx bench/transformer_step_mlx.py "$env python3 bench/transformer_step_mlx.py"
  area transformer_step
fi

if has_area memory; then
  BENCH=memory
  if quick; then steps=50; else steps=500; fi
  SIDES=()
  for mode in idle dispose gc; do
    SIDES+=("mlx-bun|bench/memory_loop.ts|lines|$BUN bench/memory_loop.ts --mode $mode --steps $steps")
    if py_ok; then SIDES+=("mlx|bench/memory_loop_mlx.py|lines|python3 bench/memory_loop_mlx.py --mode $mode --steps $steps"); fi
  done
  py_ok || unavailable memory mlx "${PY_WHY[mlx.core]:-${PY_WHY[numpy]:-}}"
  area memory
fi

if has_area interop; then
  BENCH=interop
  if quick; then env="BENCH_ROUNDS=5 BENCH_ROUND_MS=10"; else env=""; fi
  SIDES=("mlx-bun|bench/interop.ts|lines|$env $BUN bench/interop.ts")
  add_py mlx bench/interop_mlx.py "$env python3 bench/interop_mlx.py"
  area interop
fi

if has_area qmm; then
  BENCH=qmm
  if quick; then env="BENCH_ROUNDS=3 BENCH_ROUND_MS=50"; else env=""; fi
  SIDES=("mlx-bun|bench/qmm.ts|lines|$env $BUN bench/qmm.ts --json")
  add_py mlx bench/qmm_mlx.py "$env python3 bench/qmm_mlx.py"
  area qmm
fi

if has_area process; then
  if command -v hyperfine >/dev/null; then
    if quick; then hf=(--runs 5 --warmup 1); else hf=(--runs 20 --warmup 3); fi
    cmds=(
      "mlx-bun|runtime alone (no library)" "$BUN -e 0"
      "mlx-bun|start-up: import" "$BUN -e 'import \"./src/index.ts\"'"
      "mlx-bun|start-up: import + first eval" "$BUN -e 'import * as mx from \"./src/index.ts\"; mx.eval(mx.add(mx.array([1, 2, 3]), 1))'"
      "mlx-bun|demo end to end (examples/demo.ts)" "$BUN examples/demo.ts"
    )
    if command -v python3 >/dev/null; then
      cmds+=("mlx|runtime alone (no library)" "python3 -c pass")
      [ "${PY_OK[mlx.core]}" = 1 ] && cmds+=(
        "mlx|start-up: import" "python3 -c 'import mlx.core'"
        "mlx|start-up: import + first eval" "python3 -c 'import mlx.core as mx; mx.eval(mx.array([1, 2, 3]) + 1)'")
      [ "${PY_OK[numpy]}" = 1 ] && cmds+=("numpy|start-up: import" "python3 -c 'import numpy'")
      [ "${PY_OK[torch]}" = 1 ] && cmds+=("torch|start-up: import" "python3 -c 'import torch'")
    fi
    for pass in $(seq 1 "$PASSES"); do
      args=()
      n=$((${#cmds[@]} / 2))
      for ((i = 0; i < n; i++)); do
        if ((pass % 2)); then j=$i; else j=$((n - 1 - i)); fi
        args+=(-n "${cmds[$((2 * j))]}" "${cmds[$((2 * j + 1))]}")
      done
      say "pass $pass: process (hyperfine)"
      if hyperfine "${hf[@]}" -N --export-json "$RUN/raw/process.$pass.json" "${args[@]}" > "$RUN/raw/process.$pass.out" 2>&1 ||
         hyperfine "${hf[@]}" --export-json "$RUN/raw/process.$pass.json" "${args[@]}" > "$RUN/raw/process.$pass.out" 2>&1; then
        "$BUN" bench/lib/collect.ts --bench process --source "hyperfine (bench/run_all.sh)" --pass "$pass" --format hyperfine "$RUN/raw/process.$pass.json" >> "$RES"
      else
        unavailable process all "hyperfine failed: $(last_err "$RUN/raw/process.$pass.out")"
      fi
    done
  else
    unavailable process all "hyperfine is not installed (apt-get install hyperfine, or cargo install hyperfine)"
  fi
fi

# Areas other work adds with their own run_*.sh and report: run (full mode) and link them.
if has_area linked; then
  for spec in "compile|mx.compile speed-ups" "fuse|Kernel fusion" "fast|mx.fast kernels" "mnist|MNIST training end to end" "dispatch|Dispatch"; do
    name=${spec%%|*}
    title=${spec#*|}
    script=$(ls bench/run_${name}*.sh 2>/dev/null | head -1)
    if [ -z "$script" ]; then
      linked "$name" "$title" "bench/run_${name}.sh" "" "not in this checkout"
    elif quick; then
      linked "$name" "$title" "$script" "" "skipped in quick mode (its own script: bash $script)"
    elif [ "$name" = dispatch ]; then
      # It compares separately built engines (native, portable at each CPU level), given as arguments.
      linked "$name" "$title" "$script" "REPORT-dispatch.md" "not run by the suite: it compares engine builds passed as arguments (see its usage); the linked report is from its own earlier run"
    else
      say "linked area: $script"
      before=$(ls -t bench/REPORT-*.md 2>/dev/null | head -1)
      if timeout "${BENCH_TIMEOUT:-1800}" bash "$script" > "$RUN/raw/linked.$name.out" 2>&1; then
        report=$(ls -t bench/REPORT-*.md 2>/dev/null | head -1)
        [ "$report" = "$before" ] && report=""
        linked "$name" "$title" "$script" "${report#bench/}" "ran in this invocation (exit 0)"
      else
        linked "$name" "$title" "$script" "" "failed: $(last_err "$RUN/raw/linked.$name.out")"
      fi
    fi
  done
fi

read -r l1end _ < /proc/loadavg 2>/dev/null || l1end=?
say "done measuring (load average at the end: $l1end)"
"$BUN" bench/report_all.ts "$RES" --out "$REPORT"
say "records: $RES"
