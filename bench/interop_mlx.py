"""The MLX Python side of bench/interop.ts: NumPy -> mx.array -> NumPy, and a DLPack round trip
(mx.array -> np.from_dlpack -> mx.array), per call. One JSON line per case."""
import json, os, time
import numpy as np
import mlx.core as mx

rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
round_ms = float(os.environ.get("BENCH_ROUND_MS", "40"))

def measure(fn):
    batch = 1
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        if time.perf_counter_ns() - t0 > round_ms * 1e6 or batch > 1 << 20:
            break
        batch *= 2
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter_ns() - t0) / batch)
    return out

for n in (16, 1 << 20):
    data = np.arange(n, dtype=np.float32) * 0.5
    def copy_rt():
        a = mx.array(data)
        back = np.array(a)
        return back[-1]
    def view_rt():
        a = mx.array(data)          # MLX always copies from NumPy
        back = np.array(a, copy=False)
        return back[-1]
    def dlpack_rt():
        a = mx.array(data)
        b = mx.array(np.from_dlpack(a))
        mx.eval(b)
        return b.size
    for name, fn in (("typedarray roundtrip (copy)", copy_rt), ("typedarray roundtrip (zero-copy)", view_rt), ("dlpack roundtrip", dlpack_rt)):
        print(json.dumps({"side": "mlx", "name": name, "n": n, "ns": measure(fn)}), flush=True)
