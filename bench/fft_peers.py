#!/usr/bin/env python3
"""The cases of bench/fft.ts through NumPy (pocketfft, complex64/float32 in) and MLX Python (CPU).
Prints one JSON line per case and side: {side, name, kind, shape, ns: [per-transform ns per round]}."""
import json
import os
import time

import mlx.core as mx
import numpy as np

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
ROUND_MS = float(os.environ.get("BENCH_ROUND_MS", "60"))
ONLY = os.environ.get("BENCH_ONLY")


def cases():
    out = []
    for k in range(10, 23, 2):
        out.append((f"fft_2^{k}", "fft", [2 ** k]))
    for n in [1000, 1009, 4096 * 3, 15015, 2310, 13440, 9152, 7429, 45045, 10007, 100003, 1000003]:
        out.append((f"fft_{n}", "fft", [n]))
    for k in range(10, 23, 4):
        out.append((f"rfft_2^{k}", "rfft", [2 ** k]))
    out.append(("rfft_100003", "rfft", [100003]))
    out.append(("fft_batch_1024x1024", "fft", [1024, 1024]))
    out.append(("rfft_batch_4096x256", "rfft", [4096, 256]))
    out.append(("fft2_1024x1024", "fft2", [1024, 1024]))
    out.append(("fft2_1000x1000", "fft2", [1000, 1000]))
    if ONLY:
        keep = ONLY.split(",")
        out = [c for c in out if c[0] in keep]
    return out


def make(kind, shape):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    re = (((i * 7919) % 1009) / 1009 - 0.5).astype(np.float32).reshape(shape)
    if kind == "rfft":
        return re
    return (re + 1j * np.flip(re, -1)).astype(np.complex64)


def timeit(f):
    reps = 1
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(reps):
            f()
        dt = (time.perf_counter_ns() - t0) / 1e6
        if dt > ROUND_MS / 4 or reps > 1e6:
            reps = max(1, round(reps * ROUND_MS / max(dt, 1e-3)))
            break
        reps *= 4
    ns = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter_ns()
        for _ in range(reps):
            f()
        ns.append((time.perf_counter_ns() - t0) / reps)
    return ns


for name, kind, shape in cases():
    x = make(kind, shape)
    npf = {"fft": np.fft.fft, "rfft": np.fft.rfft, "fft2": np.fft.fft2}[kind]
    print(json.dumps({"side": "numpy", "name": name, "kind": kind, "shape": shape, "ns": timeit(lambda: npf(x))}), flush=True)
    mxf = {"fft": mx.fft.fft, "rfft": mx.fft.rfft, "fft2": mx.fft.fft2}[kind]
    xm = mx.array(x)
    mx.eval(xm)
    print(json.dumps({"side": "mlx", "name": name, "kind": kind, "shape": shape, "ns": timeit(lambda: mx.eval(mxf(xm)))}), flush=True)
