"""The GEMM cases of bench/matmul_cases.json through NumPy (OpenBLAS), PyTorch CPU and MLX Python,
one JSON line per (side, case). Timing as bench/matmul.ts: one warm-up, rounds sized to ~1.5 s."""
import json, os, time
import numpy as np
import mlx.core as mx
import torch

cases = json.load(open(os.path.join(os.path.dirname(__file__), "matmul_cases.json")))
only = os.environ.get("BENCH_ONLY")
only = only.split(",") if only else None
target_ms = float(os.environ.get("BENCH_CASE_MS", "1500"))
torch.set_num_threads(os.cpu_count())

def timed(fn):
    fn()
    t0 = time.perf_counter_ns(); fn(); first = time.perf_counter_ns() - t0
    rounds = max(5, min(50, round(target_ms * 1e6 / first)))
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns(); fn(); out.append(time.perf_counter_ns() - t0)
    return out

def emit(side, c, ns):
    print(json.dumps({"side": side, **c, "ns": ns}), flush=True)

for c in cases:
    if only and not any(c["dtype"].startswith(o) or o in c["name"] for o in only):
        continue
    lead = (c["batch"],) if c["batch"] > 1 else ()
    rng = np.random.default_rng(1)
    a32 = rng.standard_normal(lead + (c["m"], c["k"]), dtype=np.float32)
    tb_ = c.get("trans_b", False)
    # trans_b: B is the transpose of a row-major (n x k) array (x @ W.T, as a Linear layer).
    b32 = rng.standard_normal(lead + ((c["n"], c["k"]) if tb_ else (c["k"], c["n"])), dtype=np.float32)
    dt = c["dtype"]
    # NumPy has no bfloat16 and computes float16 products in a slow generic loop; it runs float32/float64.
    if dt in ("float32", "float64"):
        na, nb = a32.astype(dt), b32.astype(dt)
        if tb_:
            nb = np.swapaxes(nb, -1, -2)
        emit("numpy", c, timed(lambda: np.matmul(na, nb)))
    ta, tb = torch.from_numpy(a32).to(getattr(torch, dt)), torch.from_numpy(b32).to(getattr(torch, dt))
    if tb_:
        tb = tb.transpose(-1, -2)
    emit("torch", c, timed(lambda: torch.matmul(ta, tb)))
    ma, mb = mx.array(a32).astype(getattr(mx, dt)), mx.array(b32).astype(getattr(mx, dt))
    mx.eval(ma, mb)
    if tb_:
        mb = mx.swapaxes(mb, -1, -2)
    if dt == "float64":
        mx.set_default_device(mx.cpu)
    emit("mlx", c, timed(lambda: mx.eval(mx.matmul(ma, mb, stream=mx.cpu))))
