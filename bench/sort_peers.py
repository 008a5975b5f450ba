#!/usr/bin/env python3
"""The cases of bench/sort.ts through MLX Python, NumPy and PyTorch CPU (torch optional), one JSON
line per (side, case): {side, name, bytes, ns}. Same inputs and timing as bench/sort.ts."""
import json, os, time
import numpy as np
import mlx.core as mx

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
try:
    import torch
    torch.set_num_threads(os.cpu_count())
except Exception as e:  # reported by run_all.sh from the import check
    torch = None


def hash_values(n):
    i = np.arange(n, dtype=np.uint64)
    return (((i * np.uint64(2654435761)) % np.uint64(2 ** 32)).astype(np.float64) / 2 ** 32).astype(np.float32)


CASES = [("sort_1M", (1 << 20,), False), ("argsort_1M", (1 << 20,), True),
         ("sort_rows_1024x1024", (1024, 1024), False), ("sort_rows_16384x64", (16384, 64), False)]
if not QUICK:
    CASES.append(("sort_16M", (1 << 24,), False))


def timed(fn):
    out = []
    for r in range(ROUNDS + 2):
        t0 = time.perf_counter_ns()
        fn()
        t = time.perf_counter_ns() - t0
        if r >= 2:
            out.append(t)
    return out


for name, shape, arg in CASES:
    n = int(np.prod(shape))
    x = hash_values(n).reshape(shape)
    xm = mx.array(x)
    mx.eval(xm)
    f = mx.argsort if arg else mx.sort
    print(json.dumps({"side": "mlx", "name": name, "bytes": n * 8, "ns": timed(lambda: mx.eval(f(xm, axis=-1)))}), flush=True)
    g = np.argsort if arg else np.sort
    print(json.dumps({"side": "numpy", "name": name, "bytes": n * 8, "ns": timed(lambda: g(x, axis=-1))}), flush=True)
    if torch is not None:
        xt = torch.from_numpy(x)
        h = (lambda: torch.argsort(xt, dim=-1)) if arg else (lambda: torch.sort(xt, dim=-1))
        print(json.dumps({"side": "torch", "name": name, "bytes": n * 8, "ns": timed(h)}), flush=True)
