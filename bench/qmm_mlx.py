#!/usr/bin/env python3
"""The MLX Python side of bench/qmm.ts: the same cases, one JSON line each."""
import json
import os
import sys
import time

import mlx.core as mx

CASES = [
    ("f32 1x4096 @ 4096x4096", 4096, 4096, mx.float32),
    ("f32 1x4096 @ 4096x11008", 4096, 11008, mx.float32),
    ("f32 1x11008 @ 11008x4096", 11008, 4096, mx.float32),
    ("f16 1x4096 @ 4096x4096", 4096, 4096, mx.float16),
    ("bf16 1x4096 @ 4096x11008", 4096, 11008, mx.bfloat16),
]
rounds = int(os.environ.get("BENCH_ROUNDS", 9))
round_ms = float(os.environ.get("BENCH_ROUND_MS", 200))

for name, k, n, dt in CASES:
    w = mx.random.normal((n, k), key=mx.random.key(1)).astype(dt)
    wq, s, b = mx.quantize(w, 64, 4)
    x = mx.random.normal((1, k), key=mx.random.key(2)).astype(dt)
    mx.eval(wq, s, b, x)
    del w
    nbytes = wq.nbytes + s.nbytes + b.nbytes + x.nbytes

    def once():
        mx.eval(mx.quantized_matmul(x, wq, s, b, True, 64, 4))

    t0 = time.perf_counter_ns()
    calls = 0
    while time.perf_counter_ns() - t0 < 300e6:
        once()
        calls += 1
    per = (time.perf_counter_ns() - t0) / calls
    reps = max(1, round(round_ms * 1e6 / per))
    ns = []
    # MLX's half-precision CPU kernel takes seconds a call here: fewer rounds for slow cases
    for _ in range(rounds if per < 1e9 else 3):
        t = time.perf_counter_ns()
        for _ in range(reps):
            once()
        ns.append((time.perf_counter_ns() - t) / reps)
    print(json.dumps({"side": "mlx", "name": name, "bytes": nbytes, "ns": ns, "mlx": mx.__version__}))
    sys.stdout.flush()
