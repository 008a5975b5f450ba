"""The reductions of bench/reduce_throughput.ts through MLX Python and NumPy (same inputs: a
float32 linspace(-3, 3, n), reshaped for the axis cases). One JSON line per benchmark:
{side, name, shape, axis, bytes, ns: [rounds...]}. Run by bench/reduce_throughput.ts."""
import json
import os
import sys
import time

import mlx.core as mx
import numpy as np

rounds = int(os.environ.get("BENCH_ROUNDS", "9"))
only = os.environ.get("BENCH_ONLY", "")
cases = json.loads(sys.argv[1])  # [{shape, axis}]
OPS = ["sum", "prod", "mean", "max", "min", "argmax", "argmin"]


def timed(fn):
    out = []
    for r in range(rounds + 2):
        t0 = time.perf_counter_ns()
        fn()
        t = time.perf_counter_ns() - t0
        if r >= 2:
            out.append(t)
    return out


def mlx_op(name, a, axis):
    f = getattr(mx, name)
    return (lambda: mx.eval(f(a))) if axis is None else (lambda: mx.eval(f(a, axis=axis)))


def np_op(name, a, axis):
    f = getattr(np, name)
    return (lambda: f(a)) if axis is None else (lambda: f(a, axis=axis))


# Memory bandwidth: 256 MiB, NumPy sum-free read probe (copy: read + write) for the report.
m = 64 * 1024 * 1024
x = np.ones(m, dtype=np.float32)
y = np.empty_like(x)
print(json.dumps({"side": "probe", "name": "copy", "shape": [m], "axis": None, "bytes": 8 * m,
                  "ns": timed(lambda: np.copyto(y, x))}), flush=True)
del x, y

for c in cases:
    shape, axis = c["shape"], c["axis"]
    n = int(np.prod(shape))
    a = mx.reshape(mx.linspace(-3, 3, n), shape)
    mx.eval(a)
    na = np.linspace(-3, 3, n, dtype=np.float32).reshape(shape)
    for name in OPS:
        if only and name not in only.split(","):
            continue
        print(json.dumps({"side": "mlx", "name": name, "shape": shape, "axis": axis, "bytes": 4 * n,
                          "ns": timed(mlx_op(name, a, axis))}), flush=True)
        print(json.dumps({"side": "numpy", "name": name, "shape": shape, "axis": axis, "bytes": 4 * n,
                          "ns": timed(np_op(name, na, axis))}), flush=True)
    del a, na
