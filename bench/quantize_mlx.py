# MLX Python side of bench/quantize.ts: the same cases, the same output lines (median of 7 timed
# calls after two warm-up calls, bench/lib/fixed_rounds.py).
import mlx.core as mx

from lib.fixed_rounds import median_ns

CASES = [("affine", 4, 64), ("affine", 3, 64), ("affine", 8, 64), ("mxfp4", 4, 32), ("mxfp8", 8, 32), ("nvfp4", 4, 16)]
ROUNDS = 7

for name in ["float32", "bfloat16"]:
    dtype = getattr(mx, name)
    w = mx.random.normal((4096, 4096), key=mx.random.key(1)).astype(dtype)
    mx.eval(w)
    for mode, bits, gs in CASES:
        q = median_ns(lambda: mx.quantize(w, group_size=gs, bits=bits, mode=mode), ROUNDS) / 1e6
        print(f"{name} {mode} {bits} quantize {q:.2f}", flush=True)
        r = mx.quantize(w, group_size=gs, bits=bits, mode=mode)
        mx.eval(*r)
        wq, s = r[0], r[1]
        b = r[2] if len(r) > 2 else None
        d = median_ns(lambda: mx.dequantize(wq, s, b, group_size=gs, bits=bits, mode=mode, dtype=dtype), ROUNDS) / 1e6
        print(f"{name} {mode} {bits} dequantize {d:.2f}", flush=True)
    wt = mx.transpose(w)
    for mode, bits, gs in [("affine", 4, 64), ("nvfp4", 4, 16)]:
        q = median_ns(lambda: mx.quantize(wt, group_size=gs, bits=bits, mode=mode), ROUNDS) / 1e6
        print(f"{name} {mode} {bits} quantize-transposed {q:.2f}", flush=True)
