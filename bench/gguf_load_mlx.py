#!/usr/bin/env python3
"""GGUF quantized loading, the peer side of bench/gguf_load.ts: writes one file per type (a 4096 x
4096 tensor of random blocks with finite float16 fields) into the directory given, then times
MLX's mx.load + eval of each. Prints one JSON line per type: {side, type, ms: [rounds]}."""
import json
import os
import struct
import sys
import time

import mlx.core as mx
import numpy as np

TYPES = {"Q2_K": (10, 256, 84, [80, 82]), "Q4_K": (12, 256, 144, [0, 2]), "Q6_K": (14, 256, 210, [208]),
         "Q4_0": (2, 32, 18, [0]), "Q8_0": (8, 32, 34, [0])}
ROWS, COLS = 4096, 4096


def write(path, typ, per, size, halves):
    rng = np.random.default_rng(1)
    nb = ROWS * COLS // per
    raw = rng.integers(0, 256, (nb, size), dtype=np.uint8)
    for h in halves:
        raw[:, h:h + 2] = np.frombuffer(rng.uniform(-0.1, 0.1, nb).astype(np.float16).tobytes(), dtype=np.uint8).reshape(nb, 2)
    name = b"w.weight"
    info = struct.pack("<Q", len(name)) + name + struct.pack("<IQQIQ", 2, COLS, ROWS, typ, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + info
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head + raw.tobytes())


def main():
    d = sys.argv[1]
    rounds = int(os.environ.get("BENCH_ROUNDS", 5))
    for t, (typ, per, size, halves) in TYPES.items():
        p = os.path.join(d, f"{t}.gguf")
        if not os.path.exists(p):
            write(p, typ, per, size, halves)
        ms = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            a = mx.load(p)
            mx.eval(list(a.values()))
            ms.append((time.perf_counter() - t0) * 1e3)
            del a
        print(json.dumps({"side": "mlx", "type": t, "ms": ms}))


if __name__ == "__main__":
    main()
