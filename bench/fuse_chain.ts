// A chain of 10 elementwise ops on 4M float32: uncompiled (one kernel per op, each streaming the
// whole array through memory), mx.compile (the tape's chain fused by engine/fuse.zig: one
// kernel, one pass), mx.compile with fusion off, and the fusion pass run on a plain graph,
// alternating in the same run. For bench/run_fuse.sh; one JSON line per case: { side, name, ns: [rounds...] }.
// The MLX side is bench/fuse_chain_mlx.py (the same chain, plain and under mx.compile).
import * as mx from "../src/index.ts";
import { fuseGraph } from "../src/fuse.ts";
import { chain10 as chain } from "./lib/chain.ts"; // 10 ops: mul, add, exp, tanh, maximum, mul, sub, abs, sqrt, add

const n = Number(process.env.FUSE_N ?? 4 * 1024 * 1024);
const rounds = Number(process.env.FUSE_ROUNDS ?? 31);

const k = mx.random.split(mx.random.key(0), 2);
const x = mx.random.normal([n], { key: k.index(0) });
const y = mx.random.uniform({ shape: [n], key: k.index(1) });
mx.eval(x, y);

const compiled = mx.compile(chain);
const compiledNoFuse = mx.compile(chain, { fuse: false });

type Side = "uncompiled" | "compiled" | "compiled, fusion off" | "fuseGraph";
function once(side: Side): number {
  const t0 = Bun.nanoseconds();
  let out: mx.Array;
  if (side === "compiled") out = compiled(x, y);
  else if (side === "compiled, fusion off") out = compiledNoFuse(x, y);
  else {
    // In mx.tidy: intermediates still held by JS handles are never fused.
    out = mx.tidy(() => chain(x, y));
    if (side === "fuseGraph") fuseGraph(out);
  }
  mx.eval(out);
  const t = Bun.nanoseconds() - t0;
  out.dispose();
  return t;
}

// Same bits every way (checked once), and the compiled tape is one fused step.
{
  const a = chain(x, y);
  const b = mx.tidy(() => chain(x, y));
  if (fuseGraph(b) !== 1) throw new Error("the chain did not fuse into one node");
  const c = compiled(x, y);
  const d = compiledNoFuse(x, y);
  for (const o of [b, c, d]) if (!mx.arrayEqual(a, o).item()) throw new Error("a fused or compiled result differs");
  const st = compiled.tapeStats[0]!;
  if (st.steps !== 1 || st.fused !== 1) throw new Error(`the compiled chain is not one fused step: ${JSON.stringify(st)}`);
  mx.dispose(a, b, c, d);
}
const sides: Side[] = ["uncompiled", "compiled", "compiled, fusion off", "fuseGraph"];
for (let i = 0; i < 3; i++) for (const s of sides) once(s);
const ns = new Map<Side, number[]>(sides.map((s) => [s, []]));
for (let i = 0; i < rounds; i++) for (const s of sides) ns.get(s)!.push(once(s));
const name = `10-op chain, ${n} float32`;
for (const s of sides) console.log(JSON.stringify({ side: `mlx-bun ${s}`, name, ns: ns.get(s) }));
