#!/usr/bin/env python3
"""The MLX Python side of bench/transformer_step.ts: the same causal transformer LM training step
(Embedding -> nn.TransformerEncoder -> Linear, cross-entropy mean, nn.value_and_grad, SGD(0.01)),
same configurations, same token ids, each plain and compiled (mx.compile with the model's and the
optimizer's state as inputs and outputs); the loss and the updated parameters are evaluated (CPU)."""
import json, os, time
from functools import partial
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten

mx.set_default_device(mx.cpu)
target_ms = float(os.environ.get("BENCH_CASE_MS", "3000"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
CONFIGS = [
    ("tiny (2 layers, d=64, 4 heads, seq 32, batch 4, vocab 256)", 256, 64, 4, 2, 32, 4),
    ("small (2 layers, d=128, 4 heads, seq 64, batch 8, vocab 512)", 512, 128, 4, 2, 64, 8),
]
if not QUICK:
    CONFIGS.append(("medium (4 layers, d=256, 8 heads, seq 128, batch 8, vocab 1024)", 1024, 256, 8, 4, 128, 8))


class LM(nn.Module):
    def __init__(self, vocab, dims, heads, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dims)
        self.encoder = nn.TransformerEncoder(layers, dims, heads)
        self.head = nn.Linear(dims, vocab)

    def __call__(self, x, mask):
        return self.head(self.encoder(self.embedding(x), mask))


for (name, vocab, dims, heads, layers, seq, batch), compiled in [(c, m) for c in CONFIGS for m in (False, True)]:
    mx.random.seed(0)
    model = LM(vocab, dims, heads, layers)
    opt = optim.SGD(learning_rate=0.01)
    n = batch * (seq + 1)
    ids = [((i * 2654435761) % 2 ** 32) % vocab for i in range(n)]
    t = mx.array(ids, dtype=mx.int32).reshape(batch, seq + 1)
    x, y = t[:, :seq], t[:, 1:]
    mask = nn.MultiHeadAttention.create_additive_causal_mask(seq)
    mx.eval(x, y, mask, model.parameters())

    def loss_fn(model, x, y):
        return nn.losses.cross_entropy(model(x, mask), y, reduction="mean")

    loss_and_grad = nn.value_and_grad(model, loss_fn)

    def train_step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        return loss

    state = [model.state, opt.state]
    step = partial(mx.compile, inputs=state, outputs=state)(train_step) if compiled else train_step

    def once():
        t0 = time.perf_counter_ns()
        loss = step(x, y)
        mx.eval(loss, model.parameters())
        return time.perf_counter_ns() - t0

    for _ in range(3):
        once()
    first = once()
    rounds = max(5, min(200, round(target_ms * 1e6 / first)))
    ns = [once() for _ in range(rounds)]
    params = sum(v.size for _, v in tree_flatten(model.parameters()))
    print(json.dumps({"side": "mlx", "name": f"{name}, compiled" if compiled else name, "flops": 6 * params * batch * seq, "ns": ns}), flush=True)
