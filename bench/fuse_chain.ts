// A chain of 10 elementwise ops on 4M float32, unfused (one kernel per op, each streaming the
// whole array through memory) vs fused (engine/fuse.zig: one kernel, one pass), alternating in
// the same run. For bench/run_fuse.sh; one JSON line per case: { side, name, ns: [rounds...] }.
// The MLX side is bench/fuse_chain_mlx.py (the same chain, plain and under mx.compile).
import * as mx from "../src/index.ts";
import { fuseGraph } from "../src/fuse.ts";

const n = Number(process.env.FUSE_N ?? 4 * 1024 * 1024);
const rounds = Number(process.env.FUSE_ROUNDS ?? 15);

// 10 ops: mul, add, exp, tanh, maximum, mul, sub, abs, sqrt, add.
function chain(x: mx.Array, y: mx.Array): mx.Array {
  let v = mx.multiply(x, y);
  v = mx.add(v, 0.5);
  v = mx.exp(v);
  v = mx.tanh(v);
  v = mx.maximum(v, y);
  v = mx.multiply(v, 1.5);
  v = mx.subtract(v, x);
  v = mx.abs(v);
  v = mx.sqrt(v);
  return mx.add(v, y);
}

const k = mx.random.split(mx.random.key(0), 2);
const x = mx.random.normal([n], { key: k.index(0) });
const y = mx.random.uniform({ shape: [n], key: k.index(1) });
mx.eval(x, y);

function once(fused: boolean): number {
  const t0 = Bun.nanoseconds();
  // In mx.tidy: intermediates still held by JS handles are never fused.
  const out = mx.tidy(() => chain(x, y));
  if (fused) fuseGraph(out);
  mx.eval(out);
  const t = Bun.nanoseconds() - t0;
  out.dispose();
  return t;
}

// Same bits either way (checked once).
{
  const a = chain(x, y);
  const b = mx.tidy(() => chain(x, y));
  if (fuseGraph(b) !== 1) throw new Error("the chain did not fuse into one node");
  if (!mx.arrayEqual(a, b).item()) throw new Error("fused result differs");
  mx.dispose(a, b);
}
for (let i = 0; i < 3; i++) {
  once(false);
  once(true);
}
const plain: number[] = [];
const fused: number[] = [];
for (let i = 0; i < rounds; i++) {
  plain.push(once(false));
  fused.push(once(true));
}
const name = `10-op chain, ${n} float32`;
console.log(JSON.stringify({ side: "mlx-bun unfused", name, ns: plain }));
console.log(JSON.stringify({ side: "mlx-bun fused", name, ns: fused }));
