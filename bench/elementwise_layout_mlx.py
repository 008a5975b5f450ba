"""The cases of bench/elementwise_layout.ts through MLX Python (CPU): the same layouts, dtypes,
ops and sizes. One JSON line per case: {side, layout, dtype, total, ns (median)}."""
import json
import math
import sys

import mlx.core as mx

from lib.fixed_rounds import median_ns

mx.set_default_device(mx.cpu)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
LAYOUTS = ["contiguous", "broadcast inner [n,16,1] (k=16)", "broadcast inner [n,16,1] (k=4)", "broadcast outer [1,16,k]", "transposed", "column slice [:, :16] of [m,32]", "unary: contiguous", "unary: transposed"]
SIZES = [1 << 24, 1 << 20]


def make(shape, dtype, key):
    if dtype == "float32":
        return mx.random.normal(shape, key=key)
    return mx.random.randint(-1000, 1000, shape, key=key, dtype=mx.int32)


def inputs(layout, total, dtype):
    k1, k2 = mx.random.split(mx.random.key(1), 2)
    if layout == "contiguous":
        return make([total // 256, 16, 16], dtype, k1), make([total // 256, 16, 16], dtype, k2)
    if layout.startswith("broadcast inner") and "k=16" in layout:
        return make([total // 256, 16, 16], dtype, k1), make([total // 256, 16, 1], dtype, k2)
    if layout.startswith("broadcast inner"):
        return make([total // 64, 16, 4], dtype, k1), make([total // 64, 16, 1], dtype, k2)
    if layout.startswith("broadcast outer"):
        return make([total // 256, 16, 16], dtype, k1), make([1, 16, 16], dtype, k2)
    if layout == "transposed":
        s = int(math.isqrt(total))
        return make([s, s], dtype, k1).T, make([s, s], dtype, k2)
    if layout.startswith("unary"):
        s = int(math.isqrt(total))
        x = make([s, s], dtype, k1)
        return (x.T if layout.endswith("transposed") else x), mx.array(0)
    return make([total // 16, 32], dtype, k1)[:, :16], make([total // 16, 16], dtype, k2)


for dtype in ["float32", "int32"]:
    for total in SIZES:
        for layout in LAYOUTS:
            a, b = inputs(layout, total, dtype)
            mx.eval(a, b)
            if layout.startswith("unary"):
                f = lambda: mx.negative(a)
            else:
                f = (lambda: mx.multiply(a, b)) if dtype == "float32" else (lambda: mx.bitwise_xor(a, b))
            print(json.dumps({"side": "mlx", "layout": layout, "dtype": dtype, "total": total, "ns": median_ns(f, rounds)}), flush=True)
