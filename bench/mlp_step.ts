// The cost of one training step's gradient: valueAndGrad of a two-layer MLP's cross-entropy
// loss with respect to its parameters, then eval of the loss and every gradient. For
// bench/run_mlp_step.sh; one JSON line per size: { side, name, ns: [rounds...] }. The MLX side is
// bench/mlp_step_mlx.py (same sizes, same computation).
import * as mx from "../src/index.ts";

type Params = { w1: mx.Array; b1: mx.Array; w2: mx.Array; b2: mx.Array };
const sizes = [
  { name: "tiny (batch 16, 32-64-10)", batch: 16, din: 32, hidden: 64, dout: 10 },
  { name: "small (batch 64, 784-256-10)", batch: 64, din: 784, hidden: 256, dout: 10 },
  { name: "medium (batch 256, 784-1024-10)", batch: 256, din: 784, hidden: 1024, dout: 10 },
];
const targetMs = Number(process.env.BENCH_CASE_MS ?? 1500);

function loss(p: Params, x: mx.Array, y: mx.Array): mx.Array {
  const h = mx.maximum(mx.add(mx.matmul(x, p.w1), p.b1), 0);
  const logits = mx.add(mx.matmul(h, p.w2), p.b2);
  const picked = mx.takeAlongAxis(logits, mx.expandDims(y, -1), -1);
  return mx.mean(mx.subtract(mx.logsumexp(logits, { axis: -1, keepdims: true }), picked));
}

for (const s of sizes) {
  const k = mx.random.split(mx.random.key(0), 4);
  const p: Params = {
    w1: mx.multiply(mx.random.normal([s.din, s.hidden], { key: k.index(0) }), 1 / Math.sqrt(s.din)),
    b1: mx.zeros([s.hidden]),
    w2: mx.multiply(mx.random.normal([s.hidden, s.dout], { key: k.index(1) }), 1 / Math.sqrt(s.hidden)),
    b2: mx.zeros([s.dout]),
  };
  const x = mx.random.normal([s.batch, s.din], { key: k.index(2) });
  const y = mx.random.randint(0, s.dout, [s.batch], { key: k.index(3) });
  mx.eval(p.w1, p.b1, p.w2, p.b2, x, y);
  const step = mx.valueAndGrad(loss);
  const once = () => {
    const t0 = Bun.nanoseconds();
    const [l, g] = step(p, x, y) as [mx.Array, Params];
    mx.eval(l, g.w1, g.b1, g.w2, g.b2);
    const t = Bun.nanoseconds() - t0;
    mx.dispose(l, g.w1, g.b1, g.w2, g.b2);
    return t;
  };
  for (let i = 0; i < 3; i++) once();
  const first = once();
  const rounds = Math.max(10, Math.min(2000, Math.round((targetMs * 1e6) / first)));
  const ns = Array.from({ length: rounds }, once);
  console.log(JSON.stringify({ side: "mlx-bun", name: s.name, ns }));
}
