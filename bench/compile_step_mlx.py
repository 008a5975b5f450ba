"""The MLX Python side of bench/compile_step.ts: call overhead of a compiled function (no eval)
and an MLP SGD step (value_and_grad + update + eval), compiled and not (CPU)."""
import json, math, os, time
import mlx.core as mx

mx.set_default_device(mx.cpu)
target_ms = float(os.environ.get("BENCH_CASE_MS", "1000"))

def measure(name, once):
    for _ in range(5):
        once()
    first = max(once(), 1)
    rounds = max(20, min(20000, round(target_ms * 1e6 / first)))
    ns = [once() for _ in range(rounds)]
    print(json.dumps({"side": "mlx", "name": name, "ns": ns, "median": sorted(ns)[len(ns) // 2]}), flush=True)

def f(x):
    y = x
    for _ in range(5):
        y = y * 1.5 + 0.5
    return y

x = mx.ones((16,))
mx.eval(x)
c = mx.compile(f)
for name, g in [("call overhead, 10 ops: compiled (replay, no eval)", c), ("call overhead, 10 ops: uncompiled (graph build, no eval)", f)]:
    def once(g=g):
        t0 = time.perf_counter_ns()
        g(x)
        return time.perf_counter_ns() - t0
    measure(name, once)
one = mx.compile(lambda v: v + 1)
def once1():
    t0 = time.perf_counter_ns()
    one(x)
    return time.perf_counter_ns() - t0
measure("call overhead, 1 op: compiled (replay, no eval)", once1)

def loss(p, x, y):
    h = mx.maximum(x @ p["w1"] + p["b1"], 0)
    logits = h @ p["w2"] + p["b2"]
    picked = mx.take_along_axis(logits, mx.expand_dims(y, -1), -1)
    return mx.mean(mx.logsumexp(logits, axis=-1, keepdims=True) - picked)

vg = mx.value_and_grad(loss)
def step(p, x, y):
    l, g = vg(p, x, y)
    return l, {k: p[k] - g[k] * 0.01 for k in p}
cstep = mx.compile(step)
sizes = [("minimal (batch 1, 4-4-2)", 1, 4, 4, 2), ("tiny (batch 16, 32-64-10)", 16, 32, 64, 10), ("small (batch 64, 784-256-10)", 64, 784, 256, 10)]
for name, batch, din, hidden, dout in sizes:
    k = mx.random.split(mx.random.key(0), 4)
    for label, fn in [("compiled", cstep), ("uncompiled", step)]:
        p = {"w1": mx.random.normal((din, hidden), key=k[0]) / math.sqrt(din), "b1": mx.zeros((hidden,)),
             "w2": mx.random.normal((hidden, dout), key=k[1]) / math.sqrt(hidden), "b2": mx.zeros((dout,))}
        xx = mx.random.normal((batch, din), key=k[2])
        yy = mx.random.randint(0, dout, (batch,), key=k[3])
        mx.eval(p, xx, yy)
        state = {"p": p}
        if label == "compiled":
            def call_only(fn=fn):
                t0 = time.perf_counter_ns()
                fn(state["p"], xx, yy)
                return time.perf_counter_ns() - t0
            measure(f"MLP SGD step {name}: compiled call, no eval (host overhead)", call_only)
        def once(fn=fn):
            t0 = time.perf_counter_ns()
            l, np_ = fn(state["p"], xx, yy)
            mx.eval(l, np_)
            state["p"] = np_
            return time.perf_counter_ns() - t0
        measure(f"MLP SGD step {name}: {label}", once)
