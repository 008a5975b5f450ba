"""The MLX Python side of bench/mlp_step.ts: valueAndGrad of a two-layer MLP's cross-entropy loss
with respect to its parameters, then eval of the loss and every gradient (CPU)."""
import json, math, os, time
import mlx.core as mx

mx.set_default_device(mx.cpu)
sizes = [
    ("tiny (batch 16, 32-64-10)", 16, 32, 64, 10),
    ("small (batch 64, 784-256-10)", 64, 784, 256, 10),
    ("medium (batch 256, 784-1024-10)", 256, 784, 1024, 10),
]
target_ms = float(os.environ.get("BENCH_CASE_MS", "1500"))

def loss(p, x, y):
    h = mx.maximum(x @ p["w1"] + p["b1"], 0)
    logits = h @ p["w2"] + p["b2"]
    picked = mx.take_along_axis(logits, mx.expand_dims(y, -1), -1)
    return mx.mean(mx.logsumexp(logits, axis=-1, keepdims=True) - picked)

for name, batch, din, hidden, dout in sizes:
    k = mx.random.split(mx.random.key(0), 4)
    p = {"w1": mx.random.normal((din, hidden), key=k[0]) / math.sqrt(din), "b1": mx.zeros((hidden,)),
         "w2": mx.random.normal((hidden, dout), key=k[1]) / math.sqrt(hidden), "b2": mx.zeros((dout,))}
    x = mx.random.normal((batch, din), key=k[2])
    y = mx.random.randint(0, dout, (batch,), key=k[3])
    mx.eval(p, x, y)
    step = mx.value_and_grad(loss)
    def once():
        t0 = time.perf_counter_ns()
        l, g = step(p, x, y)
        mx.eval(l, g)
        return time.perf_counter_ns() - t0
    for _ in range(3):
        once()
    first = once()
    rounds = max(10, min(2000, round(target_ms * 1e6 / first)))
    print(json.dumps({"side": "mlx", "name": name, "ns": [once() for _ in range(rounds)]}), flush=True)
