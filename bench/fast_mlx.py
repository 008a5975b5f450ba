#!/usr/bin/env python3
"""The MLX Python side of bench/fast.ts: mx.fast on the same cases, one JSON line each."""
import json
import math
import os
import time

import mlx.core as mx

rounds = int(os.environ.get("BENCH_ROUNDS", 7))
round_ms = float(os.environ.get("BENCH_ROUND_MS", 150))


def rnd(shape, dt, seed):
    return mx.random.normal(shape, key=mx.random.key(seed)).astype(getattr(mx, dt))


def norms(kind, rows, d, dt):
    x, w, b = rnd((rows, d), dt, 1), rnd((d,), dt, 2), rnd((d,), dt, 3)
    if kind == "rms":
        return [x, w], lambda: mx.fast.rms_norm(x, w, 1e-5)
    return [x, w, b], lambda: mx.fast.layer_norm(x, w, b, 1e-5)


def rope(shape, dims, traditional, dt):
    x = rnd(shape, dt, 4)
    return [x], lambda: mx.fast.rope(x, dims, traditional=traditional, base=10000.0, scale=1.0, offset=7)


def sdpa(b, h, hk, l, s, d, causal, dt):
    q, k, v = rnd((b, h, l, d), dt, 5), rnd((b, hk, s, d), dt, 6), rnd((b, hk, s, d), dt, 7)
    scale = 1 / math.sqrt(d)
    mask = "causal" if causal else None
    return [q, k, v], lambda: mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)


CASES = [
    ("rms_norm f32 1024x4096", lambda: norms("rms", 1024, 4096, "float32")),
    ("rms_norm bf16 1024x4096", lambda: norms("rms", 1024, 4096, "bfloat16")),
    ("layer_norm f32 1024x4096", lambda: norms("layer", 1024, 4096, "float32")),
    ("layer_norm f16 1024x4096", lambda: norms("layer", 1024, 4096, "float16")),
    ("rope f32 1x32x256x128", lambda: rope((1, 32, 256, 128), 128, False, "float32")),
    ("rope f16 trad 1x32x256x128", lambda: rope((1, 32, 256, 128), 128, True, "float16")),
    ("sdpa f32 prefill 16h/4kv L=S=256 d64 causal", lambda: sdpa(1, 16, 4, 256, 256, 64, True, "float32")),
    ("sdpa f32 decode 32h/8kv L=1 S=2048 d128", lambda: sdpa(1, 32, 8, 1, 2048, 128, False, "float32")),
    ("sdpa f16 prefill 8h L=S=512 d64 causal", lambda: sdpa(1, 8, 8, 512, 512, 64, True, "float16")),
]


def time_one(fn):
    t = time.perf_counter_ns()
    mx.eval(fn())
    return time.perf_counter_ns() - t


for name, setup in CASES:
    inputs, fn = setup()
    mx.eval(*inputs)
    time_one(fn)
    per = time_one(fn)
    reps = max(1, round(round_ms * 1e6 / per))
    ns = []
    for _ in range(rounds):
        total = 0
        for _ in range(reps):
            total += time_one(fn)
        ns.append(total / reps)
    print(json.dumps({"side": "mlx", "name": name, "ns": ns, "mlx_version": mx.__version__}), flush=True)
