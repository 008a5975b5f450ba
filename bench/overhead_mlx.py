"""The peer of bench/overhead.ts: the same host-side overhead measured in MLX's Python API.

    python3 bench/overhead_mlx.py                 # a table on stdout
    python3 bench/overhead_mlx.py --json          # JSON on stdout, the table on stderr
    python3 bench/overhead_mlx.py --only create,eval

Same ids, same method as the Bun side: each benchmark times only the step it names, N
calibrated so a round takes about BENCH_ROUND_MS (40 ms), BENCH_WARMUP_MS (250 ms) of warm-up,
then BENCH_ROUNDS (7) rounds, ns/op per round (time.perf_counter_ns), benchmarks that hold their
arrays alive run in batches of BENCH_BATCH (10,000). Releasing is `del`: the
last reference goes and MLX frees the array at once (reference counting), which is what
`dispose()` does in mlx-bun.

The timed loops are written out (generated from the templates below) rather than calling a
lambda per iteration, so Python pays no extra function call that the Bun side's JIT would
inline away. CPython optimises nothing away, so checksums are taken after the clock stops.
"""

import gc
import json
import os
import platform
import sys
import threading
import time

import mlx.core as mx
import numpy as np

perf = time.perf_counter_ns


def env(k, d):
    try:
        v = float(os.environ.get(k, ""))
        return v if v > 0 else d
    except ValueError:
        return d


ROUNDS = int(round(env("BENCH_ROUNDS", 7)))
ROUND_MS = env("BENCH_ROUND_MS", 40)
WARMUP_MS = env("BENCH_WARMUP_MS", 250)
# Benchmarks that hold their arrays alive run in batches of at most BATCH (as on the Bun side).
BATCH = int(round(env("BENCH_BATCH", 10_000)))

EXPR = {
    "scalar": "mx.array(1.5)",
    "list3": "mx.array([1, 2, 3])",
    "zeros44": "mx.zeros([4, 4])",
    "arange16f": "mx.arange(16).astype(mx.float32)",
}


def make_many(expr, n, evaluated):
    out = [None] * n
    ns = {"mx": mx}
    exec(f"def _mk(out, n):\n    for i in range(n):\n        out[i] = {expr}\n", ns)
    ns["_mk"](out, n)
    if evaluated:
        for a in out:
            mx.eval(a)
    return out


def release_all(arrs):
    live = sum(1 for a in arrs if a is not None)
    for i in range(len(arrs)):
        arrs[i] = None
    return live


def compile_run(src, **extra):
    ns = {"mx": mx, "perf": perf, "make_many": make_many, "release_all": release_all, **extra}
    exec(src, ns)
    return ns["run"]


BENCHES = []


def add(id, group, label, src, batched=False, **extra):
    BENCHES.append({"id": id, "group": group, "label": label, "batched": batched, "run": compile_run(src, **extra)})


add(
    "baseline.loop",
    "baseline",
    "empty loop (for i in range(n): pass)",
    """
def run(n):
    t0 = perf()
    for i in range(n):
        pass
    return perf() - t0, n
""",
)

# How long waking another thread and hearing back takes on this machine. Not an MLX call: MLX
# evaluates lazy graphs on its stream thread, so its eval of a lazy graph pays about this.
add(
    "baseline.thread_roundtrip",
    "baseline",
    "thread wake-up round trip (threading.Event ping-pong; not MLX)",
    """
def run(n):
    req, rep = threading.Event(), threading.Event()
    stop = [False]
    def worker():
        while True:
            req.wait()
            req.clear()
            if stop[0]:
                return
            rep.set()
    th = threading.Thread(target=worker, daemon=True)
    th.start()
    t0 = perf()
    for i in range(n):
        req.set()
        rep.wait()
        rep.clear()
    ns = perf() - t0
    stop[0] = True
    req.set()
    th.join()
    return ns, n
""",
    threading=threading,
)

# (a) create: timed creation of n arrays; freeing them afterwards is untimed.
for kind, expr in EXPR.items():
    add(
        f"create.{kind}",
        "create",
        expr,
        f"""
def run(n):
    out = [None] * n
    t0 = perf()
    for i in range(n):
        out[i] = {expr}
    ns = perf() - t0
    return ns, release_all(out)
""",
        batched=True,
    )

# (b) eval: arrays made untimed, each evaluated by its own mx.eval (timed), freed untimed.
for kind, expr in EXPR.items():
    add(
        f"eval.{kind}",
        "eval",
        f"mx.eval(a), a = {expr}",
        f"""
def run(n):
    arrs = make_many(EXPR, n, False)
    t0 = perf()
    for i in range(n):
        mx.eval(arrs[i])
    ns = perf() - t0
    return ns, release_all(arrs)
""",
        batched=True,
        EXPR=expr,
    )
add(
    "eval.again",
    "eval",
    "mx.eval(a) on an already evaluated mx.array([1, 2, 3])",
    """
def run(n):
    arrs = make_many("mx.array([1, 2, 3])", n, True)
    t0 = perf()
    for i in range(n):
        mx.eval(arrs[i])
    ns = perf() - t0
    return ns, release_all(arrs)
""",
    batched=True,
)

# (c) release: evaluated arrays made untimed, their last reference dropped (timed).
add(
    "dispose.del",
    "dispose",
    "del a (arrs[i] = None drops the last reference), a = evaluated mx.array([1, 2, 3])",
    """
def run(n):
    arrs = make_many("mx.array([1, 2, 3])", n, True)
    t0 = perf()
    for i in range(n):
        arrs[i] = None
    ns = perf() - t0
    return ns, sum(1 for a in arrs if a is None)
""",
    batched=True,
)

# (d) the whole cycle.
for kind, expr in EXPR.items():
    add(
        f"cycle.{kind}",
        "cycle",
        f"a = {expr}; mx.eval(a); del a",
        f"""
def run(n):
    t0 = perf()
    for i in range(n):
        a = {expr}
        mx.eval(a)
        del a
    return perf() - t0, n
""",
    )

# (e) one call through the binding.
add(
    "call.get_active_memory",
    "call",
    "mx.get_active_memory()",
    """
def run(n):
    x = 0
    t0 = perf()
    for i in range(n):
        x = mx.get_active_memory()
    return perf() - t0, x
""",
)
add(
    "call.dtype",
    "call",
    "a.dtype on a fresh 4x4 array",
    """
def run(n):
    arrs = make_many("mx.zeros([4, 4])", n, False)
    d = None
    t0 = perf()
    for i in range(n):
        d = arrs[i].dtype
    ns = perf() - t0
    release_all(arrs)
    return ns, d.size
""",
    batched=True,
)
add(
    "call.shape",
    "call",
    "a.shape on a fresh 4x4 array",
    """
def run(n):
    arrs = make_many("mx.zeros([4, 4])", n, False)
    s = None
    t0 = perf()
    for i in range(n):
        s = arrs[i].shape
    ns = perf() - t0
    release_all(arrs)
    return ns, len(s)
""",
    batched=True,
)
add(
    "call.size",
    "call",
    "a.size, a = mx.zeros([4, 4])",
    """
def run(n):
    a = mx.zeros([4, 4])
    s = 0
    t0 = perf()
    for i in range(n):
        s = a.size
    return perf() - t0, s
""",
)


def quantile(xs, q):
    pos = (len(xs) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def batched_run(run):
    def go(n):
        if n <= BATCH:
            return run(n)
        ns = ck = 0
        for done in range(0, n, BATCH):
            a, c = run(min(BATCH, n - done))
            ns += a
            ck += c
        return ns, ck

    return go


def run_bench(b):
    gc.collect()
    target = ROUND_MS * 1e6
    cap = 50_000_000
    run = batched_run(b["run"]) if b["batched"] else b["run"]
    checksum = 0
    # Grow N until a run takes an eighth of a round, then size N from the best of three runs.
    n = 16
    while True:
        ns, ck = run(n)
        checksum += ck
        if ns >= target / 8 or n >= cap:
            break
        n *= 4
    best = float("inf")
    for _ in range(3):
        ns, ck = run(n)
        checksum += ck
        best = min(best, max(ns, 1) / n)
    n = max(64, min(cap, int(-(-target // best))))
    w0 = perf()
    while perf() - w0 < WARMUP_MS * 1e6:
        checksum += run(n)[1]
    rounds = []
    for _ in range(ROUNDS):
        ns, ck = run(n)
        checksum += ck
        rounds.append(ns / n)
    s = sorted(rounds)
    gc.collect()
    return {
        "id": b["id"],
        "group": b["group"],
        "label": b["label"],
        "n": n,
        "rounds": rounds,
        "median": quantile(s, 0.5),
        "min": s[0],
        "max": s[-1],
        "q1": quantile(s, 0.25),
        "q3": quantile(s, 0.75),
        "checksum": checksum,
    }


def fmt(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def main():
    args = sys.argv[1:]
    as_json = "--json" in args
    only = []
    if "--only" in args:
        i = args.index("--only")
        only = [o for o in (args[i + 1] if i + 1 < len(args) else "").split(",") if o]
    sel = [b for b in BENCHES if not only or any(b["group"] == o or b["id"] == o or b["id"].startswith(o + ".") for o in only)]
    out = sys.stderr if as_json else sys.stdout
    results = []
    for b in sel:
        r = run_bench(b)
        results.append(r)
        print(f"{r['id']:<40} {fmt(r['median']):>9} ns/op  [{fmt(r['min'])} .. {fmt(r['max'])}]  n={r['n']}", file=out, flush=True)
    if as_json:
        doc = {
            "runtime": "python",
            "pythonVersion": platform.python_version(),
            "mlxVersion": mx.__version__,
            "numpyVersion": np.__version__,
            "device": str(mx.default_device()),
            "rounds": ROUNDS,
            "roundMs": ROUND_MS,
            "warmupMs": WARMUP_MS,
            "batch": BATCH,
            "results": results,
        }
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
