# MLX Python side of bench/quantize.ts: the same cases, the same output lines.
import time

import mlx.core as mx

CASES = [("affine", 4, 64), ("affine", 3, 64), ("affine", 8, 64), ("mxfp4", 4, 32), ("mxfp8", 8, 32), ("nvfp4", 4, 16)]


def median(f, n=7):
    f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return ts[n // 2]


for name in ["float32", "bfloat16"]:
    dtype = getattr(mx, name)
    w = mx.random.normal((4096, 4096), key=mx.random.key(1)).astype(dtype)
    mx.eval(w)
    for mode, bits, gs in CASES:
        q = median(lambda: mx.eval(*mx.quantize(w, group_size=gs, bits=bits, mode=mode)))
        print(f"{name} {mode} {bits} quantize {q:.2f}", flush=True)
        r = mx.quantize(w, group_size=gs, bits=bits, mode=mode)
        mx.eval(*r)
        wq, s = r[0], r[1]
        b = r[2] if len(r) > 2 else None
        d = median(lambda: mx.eval(mx.dequantize(wq, s, b, group_size=gs, bits=bits, mode=mode, dtype=dtype)))
        print(f"{name} {mode} {bits} dequantize {d:.2f}", flush=True)
