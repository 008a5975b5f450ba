"""The cases of bench/copy_layout.ts through MLX Python (CPU): the same copies, conversions and
sizes. One JSON line per case: {side, name, total, ns (median)}."""
import json
import math
import sys

import mlx.core as mx

from lib.fixed_rounds import median_ns

mx.set_default_device(mx.cpu)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
CASES = ["astype f32->f16", "astype f32->f16 of A.T", "astype f32->bf16 of A.T", "astype i32->f32 of A.T",
         "contiguous(A.T) f32", "contiguous(A[::-1, ::-1]) f32", "contiguous(A.T) f16"]


def setup(name, total):
    s = math.isqrt(total)
    a = mx.random.normal([s, s], key=mx.random.key(1))
    if name == "astype f32->f16":
        return a, lambda: a.astype(mx.float16)
    if name == "astype f32->f16 of A.T":
        return a.T, lambda: a.T.astype(mx.float16)
    if name == "astype f32->bf16 of A.T":
        return a.T, lambda: a.T.astype(mx.bfloat16)
    if name == "astype i32->f32 of A.T":
        t = a.astype(mx.int32).T
        return t, lambda: t.astype(mx.float32)
    if name == "contiguous(A.T) f32":
        return a.T, lambda: mx.contiguous(a.T)
    if name == "contiguous(A[::-1, ::-1]) f32":
        r = a[::-1, ::-1]
        return r, lambda: mx.contiguous(r)
    t = a.astype(mx.float16).T
    return t, lambda: mx.contiguous(t)


for total in [1 << 24, 1 << 20]:
    for name in CASES:
        x, f = setup(name, total)
        mx.eval(x)
        print(json.dumps({"side": "mlx", "name": name, "total": total, "ns": median_ns(f, rounds)}), flush=True)
