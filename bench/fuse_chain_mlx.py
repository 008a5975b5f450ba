# The chain of bench/fuse_chain.ts in MLX Python (CPU): plain and under mx.compile, alternating.
# One JSON line per side: { side, name, ns: [rounds...] }.
import json, os, time
import mlx.core as mx

mx.set_default_device(mx.cpu)
n = int(os.environ.get("FUSE_N", 4 * 1024 * 1024))
rounds = int(os.environ.get("FUSE_ROUNDS", 31))

def chain(x, y):
    v = x * y
    v = v + 0.5
    v = mx.exp(v)
    v = mx.tanh(v)
    v = mx.maximum(v, y)
    v = v * 1.5
    v = v - x
    v = mx.abs(v)
    v = mx.sqrt(v)
    return v + y

k0, k1 = mx.random.split(mx.random.key(0), 2)
x = mx.random.normal((n,), key=k0)
y = mx.random.uniform(shape=(n,), key=k1)
mx.eval(x, y)
compiled = mx.compile(chain)

def once(f):
    t0 = time.perf_counter_ns()
    out = f(x, y)
    mx.eval(out)
    return time.perf_counter_ns() - t0

for _ in range(3):
    once(chain)
    once(compiled)
plain, comp = [], []
for _ in range(rounds):
    plain.append(once(chain))
    comp.append(once(compiled))
name = f"10-op chain, {n} float32"
print(json.dumps({"side": "MLX plain", "name": name, "ns": plain}))
print(json.dumps({"side": "MLX mx.compile", "name": name, "ns": comp}))
