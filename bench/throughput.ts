// Large-array throughput of elementwise ops (and reductions once they land), for
// bench/run_throughput.sh. Prints one JSON line per benchmark: { name, n, dtype, ns: [rounds...] }.
// Each round evaluates a fresh op graph over inputs made (and evaluated) before the clock starts.
import * as mx from "../src/index.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 25);
const sizes = (process.env.BENCH_SIZES ?? "1048576,16777216").split(",").map(Number);

/** Inputs made (and evaluated) before the clock starts: a, b float32 in [-3, 3]; their float16
 * copies; a < 0 (bool); |a|. */
type Inputs = { a: mx.Array; b: mx.Array; ah: mx.Array; bh: mx.Array; cond: mx.Array; pos: mx.Array };
type Case = { name: string; bytesPerElem: number; run: (x: Inputs) => mx.Array };
const cases: Case[] = [
  { name: "add", bytesPerElem: 12, run: ({ a, b }) => mx.add(a, b) },
  { name: "multiply_scalar", bytesPerElem: 8, run: ({ a }) => mx.multiply(a, 1.5) },
  { name: "maximum", bytesPerElem: 12, run: ({ a, b }) => mx.maximum(a, b) },
  { name: "exp", bytesPerElem: 8, run: ({ a }) => mx.exp(a) },
  { name: "sqrt", bytesPerElem: 8, run: ({ a }) => mx.sqrt(a) },
  { name: "tanh", bytesPerElem: 8, run: ({ a }) => mx.tanh(a) },
  { name: "sigmoid", bytesPerElem: 8, run: ({ a }) => mx.sigmoid(a) },
  { name: "less", bytesPerElem: 9, run: ({ a, b }) => mx.less(a, b) },
  { name: "astype_f16", bytesPerElem: 6, run: ({ a }) => a.astype(mx.float16) },
  { name: "add_f16", bytesPerElem: 6, run: ({ ah, bh }) => mx.add(ah, bh) },
  { name: "where", bytesPerElem: 13, run: ({ a, b, cond }) => mx.where(cond, a, b) },
  { name: "sin", bytesPerElem: 8, run: ({ a }) => mx.sin(a) },
  { name: "log1p", bytesPerElem: 8, run: ({ pos }) => mx.log1p(pos) },
];
const reduceCases: { name: string; run: (a: mx.Array) => mx.Array }[] = [];
const ops = mx as unknown as Record<string, unknown>;
if (typeof ops.sum === "function") reduceCases.push({ name: "sum", run: (a) => (ops.sum as (x: mx.Array) => mx.Array)(a) });
if (typeof ops.max === "function") reduceCases.push({ name: "max", run: (a) => (ops.max as (x: mx.Array) => mx.Array)(a) });

for (const n of sizes) {
  const a = mx.linspace(-3, 3, n);
  const b = mx.linspace(3, -3, n);
  const inputs: Inputs = { a, b, ah: a.astype(mx.float16), bh: b.astype(mx.float16), cond: mx.less(a, 0), pos: mx.abs(a) };
  mx.eval(...Object.values(inputs));
  const all = [...cases.map((c) => ({ ...c, reduce: false })), ...reduceCases.map((c) => ({ ...c, bytesPerElem: 4, reduce: true, run: (x: Inputs) => c.run(x.a) }))];
  for (const c of all) {
    const ns: number[] = [];
    for (let r = 0; r < rounds + 2; r++) {
      const t0 = Bun.nanoseconds();
      const out = c.run(inputs);
      mx.eval(out);
      const t = Bun.nanoseconds() - t0;
      out.dispose();
      if (r >= 2) ns.push(t); // two warm-up rounds
    }
    console.log(JSON.stringify({ side: "mlx-bun", name: c.name, n, bytes: c.bytesPerElem * n, ns }));
  }
  for (const x of Object.values(inputs)) x.dispose();
}
