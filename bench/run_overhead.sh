#!/usr/bin/env bash
# Runs the host-overhead benchmark of mlx-bun (bench/overhead.ts) and of its peer, MLX's Python
# API (bench/overhead_mlx.py), interleaved group by group, and writes bench/REPORT-overhead.md.
#
#   bash scripts/bootstrap.sh        # once: toolchain and engine
#   bash bench/run_overhead.sh
#
# Environment (all optional):
#   BENCH_PASSES=2        passes over all groups; the report keeps, per benchmark, the pass with
#                         the lowest median (the least disturbed) and lists the others' medians
#   BENCH_ROUNDS=7        timed rounds per benchmark
#   BENCH_ROUND_MS=40     target length of one round
#   BENCH_WARMUP_MS=250   warm-up per benchmark
#   BENCH_BATCH=10000     most arrays a phase-split benchmark holds alive at once
#   BENCH_QUIET_WAIT=30   before each group, wait up to this many seconds for the other
#                         processes to leave the CPUs below 25% busy (0: do not wait)
#   BENCH_JSON_DIR=dir    keep the raw JSON (and machine facts) there (default: a temporary
#                         directory, removed)
#   BENCH_FROM_JSON=dir   measure nothing: rebuild the report from a kept BENCH_JSON_DIR
#   BENCH_REPORT=path     where to write the report (default bench/REPORT-overhead.md)
# Hand-written notes between the <!-- notes:begin --> and <!-- notes:end --> markers of an
# existing report are carried over into the new one.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN=.toolchain/bin/bun
lib=zig-out/lib/libmlxbun.so
[ "$(uname)" = Darwin ] && lib=zig-out/lib/libmlxbun.dylib
REPORT=${BENCH_REPORT:-bench/REPORT-overhead.md}

say() { printf '[bench] %s\n' "$*" >&2; }
# What is measured: the TypeScript sources and the engine library.
fingerprint() { cat src/*.ts ffi/*.ts "$lib" | sha256sum | cut -c1-16; }
# CPU busy counters from /proc/stat: "busy total" in jiffies.
cpu_ticks() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6; exit}' /proc/stat; }
# Percent of all CPUs busy between two cpu_ticks samples.
busy_pct() { echo "$1 $2" | awk '{d = $4 - $2; p = 0; if (d > 0) p = 100 * ($3 - $1) / d; printf "%.0f", p}'; }
# Wait (at most BENCH_QUIET_WAIT s) until the machine is under 25% busy over half a second.
wait_quiet() {
  local limit=${BENCH_QUIET_WAIT:-30} waited=0 t0 t1 pct
  while :; do
    t0=$(cpu_ticks); sleep 0.5; t1=$(cpu_ticks)
    pct=$(busy_pct "$t0" "$t1")
    if [ "$pct" -lt 25 ] || [ "$waited" -ge "$((limit * 2))" ]; then echo "$pct"; return; fi
    waited=$((waited + 1))
  done
}

measure() {
  local out=$1 passes=${BENCH_PASSES:-2} stale="" pass g side order idle_busy load0 t0 t1
  if [ ! -x "$BUN" ] || [ ! -f "$lib" ]; then
    echo "run_overhead: no toolchain or engine yet; run: bash scripts/bootstrap.sh" >&2
    exit 1
  fi
  if ! python3 -c "import mlx.core, numpy" 2>/dev/null; then
    echo "run_overhead: python3 cannot import mlx.core (pip install mlx numpy)" >&2
    exit 1
  fi
  if [ -n "$(find engine build.zig -newer "$lib" -print -quit)" ]; then
    stale="yes"
    echo "run_overhead: warning: $lib is older than engine/ sources (bash scripts/bootstrap.sh rebuilds it); measuring it anyway" >&2
  fi

  # Machine and versions, before anything runs.
  {
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel=$(uname -sr)"
    echo "nproc=$(nproc)"
    echo "bun=$("$BUN" --version) ($("$BUN" --revision 2>/dev/null || echo '?'))"
    echo "zig=$(.toolchain/bin/zig version 2>/dev/null || echo '?')"
    echo "python=$(python3 -c 'import platform; print(platform.python_version())')"
    echo "mlx=$(python3 -c 'import mlx.core as mx; print(mx.__version__)')"
    echo "numpy=$(python3 -c 'import numpy; print(numpy.__version__)')"
    echo "engine=$lib sha256:$(sha256sum "$lib" | cut -c1-16) built $(date -u -r "$lib" +%Y-%m-%dT%H:%M:%SZ)"
    echo "stale=$stale"
    echo "mlxbun=$(python3 -c 'import json; print(json.load(open("package.json"))["version"])')"
    echo "sources=sha256:$(cat src/*.ts ffi/*.ts | sha256sum | cut -c1-16) (src/*.ts ffi/*.ts), newest change to src/ ffi/ engine/ at $(find src ffi engine -type f -printf '%T@\n' | sort -n | tail -1 | xargs -I{} date -u -d @{} +%Y-%m-%dT%H:%M:%SZ)"
  } > "$out/versions.txt"
  lscpu > "$out/lscpu.txt" 2>/dev/null || true
  cp /proc/cpuinfo "$out/cpuinfo.txt" 2>/dev/null || true
  grep -m1 MemTotal /proc/meminfo > "$out/meminfo.txt" 2>/dev/null || true

  local groups="baseline create eval dispose cycle call anatomy"
  local py_groups=" baseline create eval dispose cycle call "
  : > "$out/load.txt"
  fingerprint > "$out/fingerprint-start.txt"
  for pass in $(seq 1 "$passes"); do
    for g in $groups; do
      # Alternate who goes first, so neither side always runs right after the other.
      if [ $((pass % 2)) -eq 1 ]; then order="bun py"; else order="py bun"; fi
      for side in $order; do
        if [ "$side" = py ] && [[ "$py_groups" != *" $g "* ]]; then continue; fi
        idle_busy=$(wait_quiet)
        load0=$(cut -d' ' -f1 /proc/loadavg)
        say "pass $pass/$passes: $side $g (CPUs ${idle_busy}% busy before)"
        t0=$(cpu_ticks)
        if [ "$side" = bun ]; then
          "$BUN" bench/overhead.ts --json --only "$g" > "$out/bun-$pass-$g.json"
        else
          python3 bench/overhead_mlx.py --json --only "$g" > "$out/py-$pass-$g.json"
        fi
        t1=$(cpu_ticks)
        echo "$pass $side $g busy-before=${idle_busy}% busy-during=$(busy_pct "$t0" "$t1")% load1=$load0..$(cut -d' ' -f1 /proc/loadavg)" >> "$out/load.txt"
      done
    done
  done
  # Did the measured tree change while the benchmark ran (other work in the same checkout)?
  fingerprint > "$out/fingerprint-end.txt"
}

if [ -n "${BENCH_FROM_JSON:-}" ]; then
  out=$BENCH_FROM_JSON
  [ -f "$out/versions.txt" ] || { echo "run_overhead: $out holds no kept run (versions.txt)" >&2; exit 1; }
else
  if [ -n "${BENCH_JSON_DIR:-}" ]; then
    out=$BENCH_JSON_DIR
    mkdir -p "$out"
    rm -f "$out"/bun-*.json "$out"/py-*.json
  else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
  fi
  measure "$out"
fi

python3 - "$out" "$REPORT" <<'PY'
import glob, json, math, os, re, sys

out, report = sys.argv[1], sys.argv[2]


def load(side):
    """id -> list of results, one per pass."""
    by = {}
    meta = None
    for f in sorted(glob.glob(os.path.join(out, f"{side}-*.json"))):
        d = json.load(open(f))
        meta = meta or d
        p = int(os.path.basename(f).split("-")[1])
        for r in d["results"]:
            r["pass"] = p
            by.setdefault(r["id"], []).append(r)
    return by, meta or {}


bun, bun_meta = load("bun")
py, py_meta = load("py")


def best(rs):
    return min(rs, key=lambda r: r["median"]) if rs else None


def fmt(x):
    if x is None:
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def spread(r):
    return f"{fmt(r['min'])} – {fmt(r['max'])} [IQR {fmt(r['q1'])} – {fmt(r['q3'])}]"


def noisy(r):
    return r is not None and r["median"] > 0 and (r["max"] - r["min"]) / r["median"] > 0.5


def others(rs, chosen):
    o = [fmt(r["median"]) for r in sorted(rs, key=lambda r: r["pass"]) if r is not chosen]
    return ", ".join(o) if o else ""


versions = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(out, "versions.txt")) if "=" in l)
cpuinfo = open(os.path.join(out, "cpuinfo.txt")).read() if os.path.exists(os.path.join(out, "cpuinfo.txt")) else ""
lscpu = open(os.path.join(out, "lscpu.txt")).read() if os.path.exists(os.path.join(out, "lscpu.txt")) else ""
model = (re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M) or [None, "?"])[1]
flags = set((re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M) or [None, ""])[1].split())
want = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "hypervisor"]
have = [f for f in want if f in flags]
missing = [f for f in want if f not in flags and f != "hypervisor"]


def lscpu_field(name):
    m = re.search(rf"^{re.escape(name)}:\s*(.*)$", lscpu, re.M)
    return m.group(1).strip() if m else "?"


mem = open(os.path.join(out, "meminfo.txt")).read().split() if os.path.exists(os.path.join(out, "meminfo.txt")) else []
mem_gib = f"{int(mem[1]) / 2**20:.1f} GiB" if len(mem) >= 2 else "?"
loads = [l.strip() for l in open(os.path.join(out, "load.txt"))]
load1 = [float(x) for l in loads for x in re.findall(r"load1=([\d.]+)\.\.", l) + re.findall(r"\.\.([\d.]+)$", l)]
busy_before = [int(x) for l in loads for x in re.findall(r"busy-before=(\d+)%", l)]
busy_during = {tuple(l.split()[:3]): int(m.group(1)) for l in loads for m in [re.search(r"busy-during=(\d+)%", l)] if m}

notes = ""
if os.path.exists(report):
    m = re.search(r"<!-- notes:begin -->\n(.*?)<!-- notes:end -->", open(report).read(), re.S)
    if m:
        notes = m.group(1)

L = []
w = L.append
w("# Host-side overhead: mlx-bun vs MLX (Python)")
w("")
w("Generated by `bash bench/run_overhead.sh` (bench/overhead.ts, bench/overhead_mlx.py); do not edit by hand "
  "except between the notes markers. Times are nanoseconds per operation, on the CPU, for tiny arrays: "
  "this measures the host-side cost of the API (binding, wrappers, engine bookkeeping), not compute.")
w("")
w("**ratio** = mlx-bun median / MLX Python median: below 1 mlx-bun is faster. Each benchmark ran "
  f"{bun_meta.get('rounds', '?')} timed rounds of N iterations (N sized for ~{bun_meta.get('roundMs', '?')} ms a round) after "
  f"{bun_meta.get('warmupMs', '?')} ms of warm-up; the table gives the median round, the spread over rounds (min – max and "
  f"interquartile range), and, of the {len({r['pass'] for rs in bun.values() for r in rs})} passes made (groups "
  "interleaved bun/python, alternating who goes first), the pass with the lowest median; the other passes' medians are listed "
  "under *other passes*. ⚠ marks a row whose rounds spread by more than half the median (a disturbed measurement).")
w("")
w("## Machine")
w("")
w(f"- CPU: {model} ({lscpu_field('Vendor ID')}, family {lscpu_field('CPU family')} model {lscpu_field('Model')}), "
  f"{versions.get('nproc', '?')} logical CPUs ({lscpu_field('Socket(s)')} socket × {lscpu_field('Core(s) per socket')} cores × "
  f"{lscpu_field('Thread(s) per core')} threads), {mem_gib} RAM, {versions.get('kernel', '?')}"
  + (f", virtualised ({lscpu_field('Hypervisor vendor')})" if "hypervisor" in flags else ""))
w(f"- Flags present: {' '.join(have) or '—'}; absent: {' '.join(missing) or '—'}")
if load1:
    w(f"- The machine is shared. 1-minute load average during the run: {min(load1):.2f} – {max(load1):.2f}; "
      f"CPUs busy just before a group started (after waiting up to {os.environ.get('BENCH_QUIET_WAIT', '30')} s for quiet): "
      f"{min(busy_before)}% – {max(busy_before)}%. Per group, see the end of this report.")
w(f"- Run: {versions.get('date', '?')}")
w("")
w("## Versions")
w("")
w(f"- mlx-bun {versions.get('mlxbun', '?')}, engine `{versions.get('engine', '?')}` (Zig {versions.get('zig', '?')}, ReleaseFast)")
w(f"- TypeScript sources {versions.get('sources', '?')}")
if versions.get("stale"):
    w("- ⚠ The engine library was older than the engine sources when the run started: it measured the last build, not the sources.")
fp = [open(os.path.join(out, f)).read().strip() for f in ("fingerprint-start.txt", "fingerprint-end.txt") if os.path.exists(os.path.join(out, f))]
if len(fp) == 2 and fp[0] != fp[1]:
    w("- ⚠ **The sources or the engine changed while the benchmark ran** (fingerprint of src/, ffi/ and the engine "
      f"{fp[0]} at the start, {fp[1]} at the end): rows from different groups or passes may have measured different code.")
w(f"- Bun {versions.get('bun', '?')}")
w(f"- MLX {versions.get('mlx', '?')} (Python {versions.get('python', '?')}, NumPy {versions.get('numpy', '?')}, "
  f"device {py_meta.get('device', '?')})")
w("")

titles = {
    "baseline": ("Baseline: the timing loop itself", "Not subtracted from anything below; it says how much of a row is loop."),
    "create": ("(a) Creating a small array", "Only creation is timed; the arrays are released after the clock stops."),
    "eval": ("(b) Evaluating a tiny graph", "Arrays are made before the clock starts; each gets its own `eval`."),
    "dispose": ("(c) Releasing an array", "Evaluated `mx.array([1, 2, 3])` arrays are made before the clock starts; only the release is timed. "
                "MLX Python releases by reference counting (`del`)."),
    "cycle": ("(d) The whole cycle: create + eval + release", "All three steps timed together. Python has one way to release "
              "(`del`), so each mlx-bun variant is compared with the same Python row."),
    "call": ("(e) One call through the binding", "The per-call cost of crossing into the engine."),
    "anatomy": ("Anatomy: where mlx-bun's time goes", "mlx-bun only: engine calls made raw through `lib`, and single "
                "pieces of the wrappers, to split the costs above."),
}
ratios = {}
for g in ["baseline", "create", "eval", "dispose", "cycle", "call", "anatomy"]:
    ids = [i for i, rs in bun.items() if rs[0]["group"] == g]
    if not ids:
        continue
    t, sub = titles[g]
    w(f"## {t}")
    w("")
    w(sub)
    w("")
    if g == "anatomy":
        w("| benchmark | what is timed | mlx-bun median | spread | N | other passes |")
        w("|---|---|--:|---|--:|---|")
    else:
        w("| benchmark | mlx-bun: what is timed | mlx-bun median | spread | MLX Python median | spread | ratio | other passes (bun / py) |")
        w("|---|---|--:|---|--:|---|--:|---|")
    for i in ids:
        b = best(bun[i])
        mark = " ⚠" if noisy(b) else ""
        if g == "anatomy":
            w(f"| `{i}` | `{b['label']}` | **{fmt(b['median'])}**{mark} | {spread(b)} | {b['n']:,} | {others(bun[i], b)} |")
            continue
        peer = b.get("peer")
        p = best(py.get(peer, [])) if peer else None
        pmark = " ⚠" if noisy(p) else ""
        ratio = b["median"] / p["median"] if p and p["median"] > 0 else None
        if ratio is not None and g != "baseline":
            ratios[i] = (ratio, b.get("peerNote"))
        rtxt = "—" if ratio is None else f"**{ratio:.2f}**"
        note = f" ({b['peerNote']})" if b.get("peerNote") else ""
        peer_label = f"`{p['label']}`" if p else ""
        w(f"| `{i}` | `{b['label']}`{note} | **{fmt(b['median'])}**{mark} | {spread(b)} | "
          f"{fmt(p['median']) if p else '—'}{pmark} | {spread(p) if p else ''} | {rtxt} | "
          f"{others(bun[i], b) or '—'} / {others(py.get(peer, []), p) if p else '—'} |")
    if g != "anatomy":
        referenced = {best(rs).get("peer") for rs in bun.values()}
        for pid, prs in py.items():
            if prs[0]["group"] == g and pid not in referenced:
                p = best(prs)
                w(f"| `{pid}` | (Python only) | — | | {fmt(p['median'])}{' ⚠' if noisy(p) else ''} | {spread(p)} | — | — / {others(prs, p) or '—'} |")
        peers = sorted({best(bun[i]).get('peer') for i in ids if best(bun[i]).get('peer') in py}
                       | {pid for pid, prs in py.items() if prs[0]["group"] == g and pid not in referenced})
        w("")
        w("Python side: " + "; ".join(f"`{pid}` = `{best(py[pid])['label']}`" for pid in peers) + ".")
    w("")


# Derived figures from the anatomy group.
def med(side, i):
    rs = side.get(i)
    return best(rs)["median"] if rs else None


w("## Derived (computed from the medians above)")
w("")
exact = [(i, r) for i, (r, note) in ratios.items() if note is None]
if exact:
    gm = math.exp(sum(math.log(r) for _, r in exact) / len(exact))
    w(f"- Geometric mean of the ratios over the {len(exact)} rows with a direct peer: **{gm:.2f}**.")
    for g in ["create", "eval", "dispose", "cycle", "call"]:
        rs = [r for i, r in exact if i.startswith(g + ".")]
        if rs:
            w(f"  - {g}: {math.exp(sum(math.log(r) for r in rs) / len(rs)):.2f} over {len(rs)} rows "
              f"(from {min(rs):.2f} to {max(rs):.2f})")
slower = sorted([(r, i) for i, r in exact if r > 1.5], reverse=True)
faster = sorted([(r, i) for i, r in exact if r < 1 / 1.5])
if slower:
    w("- mlx-bun more than 1.5× slower: " + ", ".join(f"`{i}` ({r:.2f})" for r, i in slower) + ".")
if faster:
    w("- mlx-bun more than 1.5× faster: " + ", ".join(f"`{i}` ({r:.2f})" for r, i in faster) + ".")


def line(text, *ids, side=None):
    vals = [med(side or bun, i) for i in ids]
    if all(v is not None for v in vals):
        w("- " + text.format(*vals))


line("`mx.array(1.5)` + `dispose()` in the wrapper costs {0:.0f} ns (anatomy.new_mxarray_dispose); the engine alone creates "
     "and frees the same scalar in {1:.0f} ns (anatomy.engine_scalar_free); tying the handle to the GC "
     "(`trackHandle`: an ArrayBuffer with a native finalizer, later swept) brings the raw path to {2:.0f} ns.",
     "anatomy.new_mxarray_dispose", "anatomy.engine_scalar_free", "anatomy.engine_scalar_track_dispose")
if med(bun, "eval.again") is not None and med(bun, "anatomy.engine_eval_again") is not None:
    e, r = med(bun, "eval.again"), med(bun, "anatomy.engine_eval_again")
    w(f"- `mx.eval(a)` on an already evaluated array: {e:.0f} ns through `mx.eval`, {r:.0f} ns as a raw `lib.mlxb_eval` call: "
      f"the wrapper adds {e - r:.0f} ns.")
line("`mx.zeros([4, 4])` create + eval + dispose: {0:.0f} ns through the API, {1:.0f} ns as five raw engine calls "
     "(scalar, full, free the scalar, eval, free).",
     "cycle.zeros44", "anatomy.engine_zeros_eval_free")
line("`mx.arange(16).astype(mx.float32)` create + eval + dispose: {0:.0f} ns through the API (the arange wrapper left to the GC), "
     "{1:.0f} ns as five raw engine calls.", "cycle.arange16f", "anatomy.engine_arange_astype_eval_free")
line("`a.shape` on a fresh array: {0:.0f} ns, of which `Object.freeze` of the dims list alone is about {1:.0f} ns; "
     "`a.dtype` (one engine call) is {2:.1f} ns.", "call.shape_fresh", "anatomy.freeze_shape", "call.dtype_fresh")
for k in ["scalar", "list3", "zeros44", "arange16f"]:
    d, g = med(bun, f"cycle.{k}"), med(bun, f"cycle.{k}.gc")
    if d and g:
        w(f"- Not disposing `{k}` (GC backstop) costs {g:.0f} ns a cycle against {d:.0f} ns with `dispose()` (×{g / d:.2f}).")
w("")

w("## Reading")
w("")
w("<!-- notes:begin -->")
w(notes.rstrip("\n") if notes.strip() else "_(No notes yet: write them between these markers; the next run keeps them.)_")
w("<!-- notes:end -->")
w("")
w("## Load during the run")
w("")
w("Per group run: CPUs busy in the half second before it (all CPUs, %), busy while it ran (one benchmark "
  "thread alone is 100/nproc %; MLX Python's eval also wakes its stream thread), and the 1-minute load average before..after.")
w("")
w("```")
for l in loads:
    w(l)
w("```")
open(report, "w").write("\n".join(L) + "\n")
print(f"[bench] wrote {report}", file=sys.stderr)
PY
