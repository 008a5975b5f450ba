"""The same throughput benchmarks as bench/throughput.ts through MLX Python and NumPy, plus a
STREAM-style memory bandwidth probe (NumPy copy and triad). One JSON line per benchmark."""
import json, os, time
import numpy as np
import mlx.core as mx

rounds = int(os.environ.get("BENCH_ROUNDS", "25"))
sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "1048576,16777216").split(",")]

def timed(fn):
    out = []
    for r in range(rounds + 2):
        t0 = time.perf_counter_ns()
        fn()
        t = time.perf_counter_ns() - t0
        if r >= 2:
            out.append(t)
    return out

mlx_cases = {
    "add": (12, lambda a, b: a + b), "multiply_scalar": (8, lambda a, b: a * 1.5), "maximum": (12, lambda a, b: mx.maximum(a, b)),
    "exp": (8, lambda a, b: mx.exp(a)), "sqrt": (8, lambda a, b: mx.sqrt(a)), "tanh": (8, lambda a, b: mx.tanh(a)),
    "sigmoid": (8, lambda a, b: mx.sigmoid(a)), "less": (9, lambda a, b: a < b), "astype_f16": (6, lambda a, b: a.astype(mx.float16)),
    "add_f16": (6, lambda a, b: ah + bh), "where": (13, lambda a, b: mx.where(cond, a, b)), "sin": (8, lambda a, b: mx.sin(a)),
    "log1p": (8, lambda a, b: mx.log1p(pos)),
    "sum": (4, lambda a, b: mx.sum(a)), "max": (4, lambda a, b: mx.max(a)),
}
np_cases = {
    "add": lambda a, b: np.add(a, b), "multiply_scalar": lambda a, b: a * np.float32(1.5), "maximum": lambda a, b: np.maximum(a, b),
    "exp": lambda a, b: np.exp(a), "sqrt": lambda a, b: np.sqrt(a), "tanh": lambda a, b: np.tanh(a),
    "sigmoid": lambda a, b: 1 / (1 + np.exp(-a)), "less": lambda a, b: a < b, "astype_f16": lambda a, b: a.astype(np.float16),
    "add_f16": lambda a, b: np.add(nah, nbh), "where": lambda a, b: np.where(ncond, a, b), "sin": lambda a, b: np.sin(a),
    "log1p": lambda a, b: np.log1p(npos),
    "sum": lambda a, b: a.sum(), "max": lambda a, b: a.max(),
}
for n in sizes:
    a = mx.linspace(-3, 3, n); b = mx.linspace(3, -3, n)
    ah = a.astype(mx.float16); bh = b.astype(mx.float16); cond = a < 0; pos = mx.abs(a)
    mx.eval(a, b, ah, bh, cond, pos)
    for name, (bpe, f) in mlx_cases.items():
        print(json.dumps({"side": "mlx", "name": name, "n": n, "bytes": bpe * n, "ns": timed(lambda: mx.eval(f(a, b)))}), flush=True)
    na = np.linspace(-3, 3, n, dtype=np.float32); nb = np.linspace(3, -3, n, dtype=np.float32)
    nah = na.astype(np.float16); nbh = nb.astype(np.float16); ncond = na < 0; npos = np.abs(na)
    for name, f in np_cases.items():
        print(json.dumps({"side": "numpy", "name": name, "n": n, "bytes": mlx_cases[name][0] * n, "ns": timed(lambda: f(na, nb))}), flush=True)

# Memory bandwidth: 256 MiB arrays, NumPy copy (read + write) and triad a = b + s*c (2 reads, 1 write).
m = 64 * 1024 * 1024
x = np.ones(m, dtype=np.float32); y = np.empty_like(x); z = np.ones_like(x)
print(json.dumps({"side": "probe", "name": "copy", "n": m, "bytes": 8 * m, "ns": timed(lambda: np.copyto(y, x))}), flush=True)
print(json.dumps({"side": "probe", "name": "triad", "n": m, "bytes": 12 * m, "ns": timed(lambda: np.add(x, z, out=y))}), flush=True)
