#!/usr/bin/env python3
"""The cases of bench/indexing.ts through MLX Python (same shapes, same index sequence).
Prints one JSON line per benchmark: {side, name, bytes, ns: [rounds...]}."""
import json
import os
import time

import mlx.core as mx
import numpy as np

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
M = 1 << 20


def lcg(n, m):
    out = np.empty(n, dtype=np.int32)
    x = 12345
    for i in range(n):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        out[i] = x % m
    return out


_cache = {}


def idx(n, m):
    if (n, m) not in _cache:
        _cache[(n, m)] = lcg(n, m)
    return mx.array(_cache[(n, m)])


def uniform(n):
    return mx.array((lcg(n, 1 << 20) / (1 << 20)).astype(np.float32))


def scatter_add(a, i, u):
    return a.at[i].add(u)


def scatter_set(a, i, u):
    b = mx.array(a)  # a new array object over the same data (setitem rebinds it)
    b[i] = u
    return b


CASES = [
    ("take_rows", 2 * 4096 * 256 * 4, lambda: [uniform(4096 * 256).reshape(4096, 256), idx(4096, 4096)],
     lambda t, i: mx.take(t, i, axis=0)),
    ("take_flat_1M", M * 12, lambda: [uniform(M), idx(M, M)], lambda t, i: mx.take(t, i)),
    ("take_along_axis_1M", M * 12, lambda: [uniform(M).reshape(1024, 1024), idx(M, 1024).reshape(1024, 1024)],
     lambda t, i: mx.take_along_axis(t, i, axis=1)),
    ("index_rows_cols", 2 * 1024 * 1024 * 4, lambda: [uniform(4096 * 1024).reshape(4096, 1024), idx(1024, 4096)],
     lambda t, i: t[i, :]),
    ("scatter_add_1M", M * 16, lambda: [mx.zeros((M,)), idx(M, M), uniform(M)], scatter_add),
    ("scatter_set_rows", 4096 * 256 * 8 + 1024 * 256 * 8,
     lambda: [uniform(4096 * 256).reshape(4096, 256), idx(1024, 4096), uniform(1024 * 256).reshape(1024, 256)], scatter_set),
    ("slice_update", 4096 * 1024 * 8 + 1024 * 1024 * 8,
     lambda: [uniform(4096 * 1024).reshape(4096, 1024), uniform(1024 * 1024).reshape(1024, 1024), mx.array([1024, 0])],
     lambda a, u, s: mx.slice_update(a, u, s, [0, 1])),
]

for name, nbytes, setup, run in CASES:
    xs = setup()
    mx.eval(*xs)
    ns = []
    for r in range(ROUNDS + 2):
        t0 = time.perf_counter_ns()
        out = run(*xs)
        mx.eval(out)
        t = time.perf_counter_ns() - t0
        del out
        if r >= 2:
            ns.append(t)
    print(json.dumps({"side": "mlx", "name": name, "bytes": nbytes, "ns": ns}), flush=True)
