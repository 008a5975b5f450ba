#!/usr/bin/env python3
"""The cases of bench/conv.ts through MLX Python (channels last) and PyTorch CPU (NCHW, its
native layout; torch uses all cores). Prints one JSON line per case and side:
{side, name, flops, ns: [rounds...]}."""
import json
import os
import time

import mlx.core as mx
import numpy as np

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "31"))

CASES = [
    ("conv2d_56x56x64_to64_3x3", [4, 56, 56, 64], [64, 3, 3, 64], 1, 1, False),
    ("conv2d_28x28x128_to128_3x3", [4, 28, 28, 128], [128, 3, 3, 128], 1, 1, False),
    ("conv2d_14x14x256_to256_3x3", [4, 14, 14, 256], [256, 3, 3, 256], 1, 1, False),
    ("conv2d_56x56x64_to256_1x1", [4, 56, 56, 64], [256, 1, 1, 64], 1, 0, False),
    ("conv2d_28x28x512_to128_1x1", [4, 28, 28, 512], [128, 1, 1, 512], 1, 0, False),
    ("conv2d_stem_224x224x3_to64_7x7_s2", [4, 224, 224, 3], [64, 7, 7, 3], 2, 3, False),
    ("conv1d_1024x128_to128_k3", [4, 1024, 128], [128, 3, 128], 1, 1, False),
    ("conv2d_28x28x128_to128_3x3_vjp", [4, 28, 28, 128], [128, 3, 3, 128], 1, 1, True),
]


def flops(xs, ws, stride, pad, grad):
    out = xs[0] * ws[0]
    taps = xs[-1]
    for l, k in zip(xs[1:-1], ws[1:-1]):
        out *= (l + 2 * pad - k) // stride + 1
        taps *= k
    return 2 * out * taps * (3 if grad else 1)


def timed(fn):
    ns = []
    for r in range(ROUNDS + 2):
        t0 = time.perf_counter_ns()
        fn()
        t = time.perf_counter_ns() - t0
        if r >= 2:
            ns.append(t)
    return ns


def mlx_side(name, xs, ws, stride, pad, grad):
    rng = np.random.default_rng(0)
    x = mx.array(rng.standard_normal(xs).astype(np.float32))
    w = mx.array((rng.standard_normal(ws) * 0.05).astype(np.float32))
    f = mx.conv1d if len(xs) == 3 else mx.conv2d
    conv = lambda a, b: f(a, b, stride=stride, padding=pad)
    ct = conv(x, w)
    mx.eval(x, w, ct)
    if grad:
        run = lambda: mx.eval(mx.vjp(conv, [x, w], [ct])[1])
    else:
        run = lambda: mx.eval(conv(x, w))
    return timed(run)


def torch_side(name, xs, ws, stride, pad, grad):
    import torch

    torch.manual_seed(0)
    # NCHW / OIHW
    x = torch.randn([xs[0], xs[-1]] + xs[1:-1])
    w = torch.randn([ws[0], ws[-1]] + ws[1:-1]) * 0.05
    f = torch.nn.functional.conv1d if len(xs) == 3 else torch.nn.functional.conv2d
    if grad:
        x.requires_grad_(True)
        w.requires_grad_(True)
        with torch.no_grad():
            ct = f(x, w, stride=stride, padding=pad)

        def run():
            y = f(x, w, stride=stride, padding=pad)
            torch.autograd.grad(y, [x, w], ct)
        # the forward is part of torch's step (it has no separate vjp of a recorded graph)
        return timed(run)
    with torch.no_grad():
        return timed(lambda: f(x, w, stride=stride, padding=pad))


def main():
    try:
        import torch

        torch_ok = True
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except Exception:
        torch_ok = False
        torch_info = "torch missing"
    print(json.dumps({"side": "info", "mlx": mx.__version__, "torch": torch_info}))
    for c in CASES:
        fl = flops(*c[1:])
        print(json.dumps({"side": "mlx", "name": c[0], "flops": fl, "ns": mlx_side(*c)}), flush=True)
        if torch_ok:
            print(json.dumps({"side": "torch", "name": c[0], "flops": fl, "ns": torch_side(*c)}), flush=True)


if __name__ == "__main__":
    main()
