// mx.compile benchmarks for bench/run_compile.sh; one JSON line per case: { side, name, ns: [...] }.
// 1. Host overhead: one call of a compiled function (tape replay, no eval) vs the plain function.
// 2. An MLP SGD training step (valueAndGrad + update + eval), compiled vs uncompiled; the MLX
//    Python side is bench/compile_step_mlx.py (same sizes, same computation, mx.compile).
import * as mx from "../src/index.ts";

const targetMs = Number(process.env.BENCH_CASE_MS ?? 1000);
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

function measure(name: string, once: () => number): void {
  for (let i = 0; i < 5; i++) once();
  const first = Math.max(once(), 1);
  const rounds = Math.max(20, Math.min(20000, Math.round((targetMs * 1e6) / first)));
  const ns = Array.from({ length: rounds }, once);
  console.log(JSON.stringify({ side: "mlx-bun", name, ns, median: med(ns) }));
}

// 1. Host overhead of a call: a 10-op elementwise function on a small array, graph built only.
{
  const f = (x: mx.Array) => {
    let y = x;
    for (let i = 0; i < 5; i++) y = mx.add(mx.multiply(y, 1.5), 0.5);
    return y;
  };
  const x = mx.ones([16]);
  mx.eval(x);
  const c = mx.compile(f);
  for (const [name, g] of [["call overhead, 10 ops: compiled (replay, no eval)", c], ["call overhead, 10 ops: uncompiled (graph build, no eval)", f]] as const) {
    measure(name, () => {
      const t0 = Bun.nanoseconds();
      const y = g(x);
      const t = Bun.nanoseconds() - t0;
      y.dispose();
      return t;
    });
  }
  const one = mx.compile((v: mx.Array) => mx.add(v, 1));
  measure("call overhead, 1 op: compiled (replay, no eval)", () => {
    const t0 = Bun.nanoseconds();
    const y = one(x);
    const t = Bun.nanoseconds() - t0;
    y.dispose();
    return t;
  });
}

// 2. MLP SGD step.
type Params = { w1: mx.Array; b1: mx.Array; w2: mx.Array; b2: mx.Array };
const sizes = [
  // Almost no arithmetic: the step's time is the host's (replay, scheduling, kernel dispatch).
  { name: "minimal (batch 1, 4-4-2)", batch: 1, din: 4, hidden: 4, dout: 2 },
  { name: "tiny (batch 16, 32-64-10)", batch: 16, din: 32, hidden: 64, dout: 10 },
  { name: "small (batch 64, 784-256-10)", batch: 64, din: 784, hidden: 256, dout: 10 },
];
function loss(p: Params, x: mx.Array, y: mx.Array): mx.Array {
  const h = mx.maximum(mx.add(mx.matmul(x, p.w1), p.b1), 0);
  const logits = mx.add(mx.matmul(h, p.w2), p.b2);
  const picked = mx.takeAlongAxis(logits, mx.expandDims(y, -1), -1);
  return mx.mean(mx.subtract(mx.logsumexp(logits, { axis: -1, keepdims: true }), picked));
}
const vg = mx.valueAndGrad(loss);
function step(p: Params, x: mx.Array, y: mx.Array): [mx.Array, Params] {
  const [l, g] = vg(p, x, y) as [mx.Array, Params];
  const upd = (a: mx.Array, b: mx.Array) => mx.subtract(a, mx.multiply(b, 0.01));
  return [l, { w1: upd(p.w1, g.w1), b1: upd(p.b1, g.b1), w2: upd(p.w2, g.w2), b2: upd(p.b2, g.b2) }];
}
const cstep = mx.compile(step);
for (const s of sizes) {
  const k = mx.random.split(mx.random.key(0), 4);
  for (const [label, fn] of [["compiled", cstep], ["uncompiled", step]] as const) {
    let p: Params = {
      w1: mx.multiply(mx.random.normal([s.din, s.hidden], { key: k.index(0) }), 1 / Math.sqrt(s.din)),
      b1: mx.zeros([s.hidden]),
      w2: mx.multiply(mx.random.normal([s.hidden, s.dout], { key: k.index(1) }), 1 / Math.sqrt(s.hidden)),
      b2: mx.zeros([s.dout]),
    };
    const x = mx.random.normal([s.batch, s.din], { key: k.index(2) });
    const y = mx.random.randint(0, s.dout, [s.batch], { key: k.index(3) });
    mx.eval(p, x, y);
    if (label === "compiled") {
      // Host overhead: the compiled step's call alone (the tape replayed: every node of the
      // forward, backward and update made by one FFI call), not evaluated.
      measure(`MLP SGD step ${s.name}: compiled call, no eval (host overhead)`, () => {
        const t0 = Bun.nanoseconds();
        const [l, np] = fn(p, x, y);
        const t = Bun.nanoseconds() - t0;
        mx.dispose(l, np);
        return t;
      });
    }
    measure(`MLP SGD step ${s.name}: ${label}`, () => {
      const t0 = Bun.nanoseconds();
      const [l, np] = fn(p, x, y);
      mx.eval(l, np);
      const t = Bun.nanoseconds() - t0;
      mx.dispose(l, p);
      p = np;
      return t;
    });
  }
}
