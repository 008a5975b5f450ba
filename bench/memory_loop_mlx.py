#!/usr/bin/env python3
"""The MLX Python side of bench/memory_loop.ts: peak RSS (VmHWM) of a fresh process running the
same MLP training loop (784-512-10, batch 128, SGD). Python releases by reference counting, so
"explicit disposal" here is `del` of the step's arrays; "no explicit disposal" leaves them to be
rebound. --mode idle|dispose|gc, --steps N."""
import json, os, sys
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

NAMES = {"idle": "idle: runtime + library + model, no step", "dispose": "training loop, explicit disposal",
         "gc": "training loop, no explicit disposal"}
args = sys.argv[1:]
mode = args[args.index("--mode") + 1] if "--mode" in args else "dispose"
steps = int(args[args.index("--steps") + 1]) if "--steps" in args else int(os.environ.get("BENCH_MEMORY_STEPS", "300"))
mx.set_default_device(mx.cpu)


def peak_rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return float("nan")


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(784, 512)
        self.l2 = nn.Linear(512, 10)

    def __call__(self, x):
        return self.l2(nn.relu(self.l1(x)))


mx.random.seed(0)
model = MLP()
opt = optim.SGD(learning_rate=0.01)
loss_and_grad = nn.value_and_grad(model, lambda m, x, y: nn.losses.cross_entropy(m(x), y, reduction="mean"))
mx.eval(model.parameters())
if mode != "idle":
    for _ in range(steps):
        x = mx.random.normal((128, 784))
        y = mx.random.randint(0, 10, (128,))
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        mx.eval(loss, model.parameters())
        if mode == "dispose":
            del x, y, loss, grads
print(json.dumps({"side": "mlx", "name": NAMES[mode], "unit": "bytes", "samples": [peak_rss()], "steps": 0 if mode == "idle" else steps}))
