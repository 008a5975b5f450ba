// The TypeScript API fuzzer: random programs of mx ops (random shapes, dtypes, axes and
// parameters, valid and deliberately invalid), with evals (sync and async) at random points,
// disposals and uses after disposal, and memory-limit episodes. Each program is generated and
// run once with the engine's fast kernels, then replayed step by step with the reference
// kernels (`mlxb_set_reference_mode(1)`); every value still alive is compared: bit-exact where
// the kernels are exact (integer and bool results, shape ops, exact float arithmetic), within a
// tolerance where they may round differently (transcendentals, float reductions, matmul), and
// not at all where a rounding difference could flip a discrete result. Every invalid call must
// throw an MlxError naming its op, and the same one in both runs; the engine must stay usable.
//
//   bun test/fuzz/api_fuzz.ts <seed> <budget seconds> [steps per program]
//
// Runs programs seed, seed+1, ... until the budget is spent (at least one). Writes "seed N" before
// each program and "ok <programs> <steps> <calls> <errors>" at the end; on a failure it prints the
// seed, the failing check and the program, and exits 1. test/fuzz.test.ts runs it in a subprocess.
import * as mx from "../../src/index.ts";
import { lib } from "../../ffi/lib";
import { writeSync } from "node:fs";
import { Rng } from "./rng";

type Q = 0 | 1 | 2; // exact, approximate (float, tolerance), unknown (not compared)
interface Val {
  shape: number[];
  dtype: mx.Dtype;
  q: Q;
  arr: mx.Array | null;
  disposed: boolean;
  /**
   * Downstream of a floating-point product (prod, cumprod): where a product both overflows and
   * meets a zero, IEEE arithmetic gives 0, inf or NaN depending on the order of the factors,
   * and the fast kernels multiply in another order (vector lanes, threads) than the reference.
   * Such values compare as usual, except that a non-finite value on either side is accepted.
   */
  productOrder?: boolean;
}
interface Step {
  op: string;
  ins: number[];
  p: any;
  /** The generator made this call invalid on purpose: it must throw. */
  bad?: string;
  /** The inputs' dtypes and shapes, for the log. */
  sig?: string;
  /** What happened in the fast run: "ok" or the error message. */
  outcome?: string;
  nout?: number;
}
interface OpSpec {
  gen: (r: Rng, pool: Val[]) => Omit<Step, "op"> | null;
  run: (xs: mx.Array[], p: any) => mx.Array | mx.Array[];
  /** Exactness of the outputs from the inputs'. */
  q: (ins: Val[], p: any, out: mx.Dtype) => Q;
}

const MAX_SIZE = 1 << 17;
const dt = (name: string): mx.Dtype => mx.dtypes.find((d) => d.name === name)!;
const isFloat = (d: mx.Dtype) => mx.issubdtype(d, mx.inexact);
const isInt = (d: mx.Dtype) => mx.issubdtype(d, mx.integer);
const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const maxQ = (ins: Val[]): Q => ins.reduce<number>((m, v) => Math.max(m, v.q), 0) as Q;
/** An op whose kernels agree exactly: the output is as exact as its inputs. */
const qSame = (ins: Val[], _p: unknown, out: mx.Dtype): Q => {
  const q = maxQ(ins);
  return q === 1 && !isFloat(out) ? 2 : q;
};
/** A discrete result (comparisons, rounding to integers, indices): exact only from exact inputs. */
const qDiscrete = (ins: Val[]): Q => (maxQ(ins) === 0 ? 0 : 2);
/** A float kernel that may round differently between the fast and reference kernels. */
const qRound = (ins: Val[], _p: unknown, out: mx.Dtype): Q => {
  const q = maxQ(ins);
  if (q === 2) return 2;
  if (!isFloat(out)) return q === 0 && !ins.some((v) => isFloat(v.dtype)) ? 0 : 2;
  return ins.some((v) => isFloat(v.dtype)) || isFloat(out) ? 1 : q;
};

const DTYPES = [mx.bool, mx.uint8, mx.uint16, mx.uint32, mx.uint64, mx.int8, mx.int16, mx.int32, mx.int64, mx.float16, mx.float32, mx.float64, mx.bfloat16];
const COMMON = [mx.int32, mx.float32, mx.float32, mx.int32, mx.bool, mx.float16, mx.bfloat16, mx.int64, mx.uint8];

function randShape(r: Rng, maxNdim = 4): number[] {
  const nd = r.int(maxNdim + 1);
  const s: number[] = [];
  for (let i = 0; i < nd; i++) s.push(r.chance(0.08) ? 0 : r.chance(0.2) ? 1 : r.range(1, 7));
  // Sometimes a long axis, so that vector loops and the multi-threaded paths run too.
  if (nd > 0 && r.chance(0.12)) s[r.int(nd)] = r.pick([17, 64, 131, 1024, 4099, 70001]);
  if (sizeOf(s) > MAX_SIZE / 2) return [r.pick([4099, 70001])];
  return s;
}
/** A valid axis of `ndim` (negative half the time), or an invalid one when `bad`. */
function axis(r: Rng, ndim: number, bad = false): number {
  if (bad) return r.chance(0.5) ? ndim + r.int(3) : -ndim - 1 - r.int(3);
  const a = r.int(ndim);
  return r.chance(0.5) ? a - ndim : a;
}
function live(pool: Val[]): number[] {
  const out: number[] = [];
  pool.forEach((v, i) => !v.disposed && out.push(i));
  return out;
}
/** A live value (rarely a disposed one: `bad` is then set on the step). */
function pickVal(r: Rng, pool: Val[], want?: (v: Val) => boolean): number | null {
  const ids = live(pool).filter((i) => !want || want(pool[i]!));
  return ids.length === 0 ? null : r.pick(ids);
}
function disposedVal(pool: Val[], r: Rng): number | null {
  const ids: number[] = [];
  pool.forEach((v, i) => v.disposed && ids.push(i));
  return ids.length === 0 ? null : r.pick(ids);
}

function inputData(seed: number, dtype: mx.Dtype, shape: number[]): mx.Array {
  const r = new Rng(seed);
  const n = sizeOf(shape);
  const data = new Float64Array(n);
  const unsigned = dtype.name.startsWith("uint") || dtype === mx.bool;
  for (let i = 0; i < n; i++) {
    if (isFloat(dtype) && r.chance(0.03)) data[i] = r.pick([Number.NaN, Infinity, -Infinity, -0, 65504, 1e-3]);
    else if (dtype === mx.bool) data[i] = r.int(2);
    else if (unsigned) data[i] = r.int(16);
    else if (isFloat(dtype)) data[i] = (r.int(33) - 16) / 2;
    else data[i] = r.int(17) - 8;
  }
  const f = mx.array(data, { shape });
  const out = f.astype(dtype);
  f.dispose();
  return out;
}

const UNARY_EXACT = ["abs", "negative", "square", "sign", "floor", "ceil", "round", "trunc", "logicalNot", "bitwiseInvert", "isnan", "isinf", "isfinite", "isposinf", "isneginf"] as const;
const UNARY_DISCRETE = new Set(["sign", "floor", "ceil", "round", "trunc", "logicalNot", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "bitwiseInvert"]);
const UNARY_ROUND = ["sqrt", "rsqrt", "reciprocal", "exp", "expm1", "log", "log1p", "log2", "sin", "cos", "tanh", "sigmoid", "erf", "arctan", "sinh"] as const;
const BINARY_EXACT = ["add", "subtract", "multiply", "divide", "maximum", "minimum"] as const;
const BINARY_DISCRETE = ["equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual", "logicalAnd", "logicalOr", "floorDivide", "remainder", "bitwiseAnd", "bitwiseOr", "bitwiseXor", "leftShift", "rightShift"] as const;
const BINARY_ROUND = ["power", "logaddexp", "arctan2"] as const;
const REDUCE = ["sum", "prod", "min", "max", "all", "any", "mean"] as const;

/** A shape broadcastable with `s`: the same, with some axes set to 1, or a suffix. */
function broadcastable(r: Rng, s: number[]): number[] {
  let t = s.map((d) => (r.chance(0.3) ? 1 : d));
  if (r.chance(0.3)) t = t.slice(r.int(t.length + 1));
  return t;
}
/** An operand for a binary op with `a`: an existing compatible value, or a new input. */
function partner(r: Rng, pool: Val[], a: number, bad: boolean): { ins: number[]; extra?: { dtype: string; shape: number[]; seed: number } } {
  const sa = pool[a]!.shape;
  if (bad) {
    // A shape that cannot broadcast: some axis of size >= 2 changed to another size >= 2.
    const ax = sa.findIndex((d) => d >= 2);
    const t = [...sa];
    t[ax] = t[ax]! + 1;
    return { ins: [a], extra: { dtype: r.pick(COMMON).name, shape: t, seed: r.u32() } };
  }
  const same = live(pool).filter((i) => {
    const sb = pool[i]!.shape;
    try {
      mx.broadcastShapes(sa, sb);
      return sizeOf(mx.broadcastShapes(sa, sb)) <= MAX_SIZE;
    } catch {
      return false;
    }
  });
  if (same.length > 0 && r.chance(0.6)) return { ins: [a, r.pick(same)] };
  return { ins: [a], extra: { dtype: r.pick(COMMON).name, shape: broadcastable(r, sa), seed: r.u32() } };
}

const OPS: Record<string, OpSpec> = {
  unary: {
    gen(r, pool) {
      const a = pickVal(r, pool);
      if (a === null) return null;
      const op = r.chance(0.6) ? r.pick(UNARY_EXACT) : r.pick(UNARY_ROUND);
      return { ins: [a], p: { op } };
    },
    run: ([a], p) => (mx as any)[p.op](a),
    q: (ins, p, out) => (UNARY_DISCRETE.has(p.op) ? qDiscrete(ins) : (UNARY_EXACT as readonly string[]).includes(p.op) ? qSame(ins, p, out) : qRound(ins, p, out)),
  },
  binary: {
    gen(r, pool) {
      const a = pickVal(r, pool);
      if (a === null) return null;
      const bad = r.chance(0.08) && pool[a]!.shape.some((d) => d >= 2);
      const { ins, extra } = partner(r, pool, a, bad);
      const kind = r.int(10);
      const op = kind < 5 ? r.pick(BINARY_EXACT) : kind < 8 ? r.pick(BINARY_DISCRETE) : r.pick(BINARY_ROUND);
      const scalar = !extra && ins.length === 1 ? undefined : r.chance(0.1) ? r.pick([2, -1, 0.5, 3, true]) : undefined;
      return { ins, p: { op, extra, scalar: extra ? undefined : scalar }, bad: bad ? "shapes do not broadcast" : undefined };
    },
    run(xs, p) {
      const [a, b0] = xs;
      if (p.scalar !== undefined && b0 === undefined) return (mx as any)[p.op](a, p.scalar);
      const b = b0 ?? inputData(p.extra.seed, dt(p.extra.dtype), p.extra.shape);
      try {
        return (mx as any)[p.op](a, b);
      } finally {
        if (b0 === undefined) b.dispose();
      }
    },
    q(ins, p, out) {
      const inputs = p.extra ? [...ins, { q: 0, dtype: dt(p.extra.dtype) } as Val] : ins;
      if ((BINARY_DISCRETE as readonly string[]).includes(p.op)) return qDiscrete(inputs);
      if ((BINARY_ROUND as readonly string[]).includes(p.op)) return qRound(inputs, p, out);
      // float16/bfloat16 division of exact values still rounds the same way in both kernels
      return qSame(inputs, p, out);
    },
  },
  where: {
    gen(r, pool) {
      const c = pickVal(r, pool, (v) => v.dtype === mx.bool && sizeOf(v.shape) > 0);
      if (c === null) return null;
      const { ins, extra } = partner(r, pool, c, false);
      return { ins: [...ins, c], p: { extra } };
    },
    run(xs, p) {
      const c = xs[xs.length - 1]!;
      const x = xs.length === 3 ? xs[1]! : inputData(p.extra.seed, dt(p.extra.dtype), p.extra.shape);
      try {
        return mx.where(c, x, xs[0]!);
      } finally {
        if (xs.length !== 3) x.dispose();
      }
    },
    q: (ins) => (ins[ins.length - 1]!.q === 0 ? maxQ(ins) : 2),
  },
  reduce: {
    gen(r, pool) {
      const a = pickVal(r, pool);
      if (a === null) return null;
      const nd = pool[a]!.shape.length;
      const bad = r.chance(0.08);
      const op = r.pick(REDUCE);
      let ax: number[] | undefined;
      if (bad) ax = [axis(r, nd, true)];
      else if (nd > 0 && r.chance(0.7)) ax = [...new Set(Array.from({ length: r.range(1, nd) }, () => r.int(nd)))].map((x) => (r.chance(0.5) ? x - nd : x));
      return { ins: [a], p: { op, axis: ax, keepdims: r.chance(0.3) }, bad: bad ? "axis out of range" : undefined };
    },
    run: ([a], p) => (mx as any)[p.op](a, { axis: p.axis, keepdims: p.keepdims }),
    q(ins, p, out) {
      if (p.op === "all" || p.op === "any") return qDiscrete(ins);
      if (p.op === "min" || p.op === "max") return qSame(ins, p, out);
      return qRound(ins, p, out);
    },
  },
  argreduce: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => sizeOf(v.shape) > 0);
      if (a === null) return null;
      const nd = pool[a]!.shape.length;
      const bad = r.chance(0.1) && nd > 0;
      return { ins: [a], p: { op: r.pick(["argmin", "argmax"]), axis: bad ? axis(r, nd, true) : nd > 0 && r.chance(0.7) ? axis(r, nd) : undefined, keepdims: r.chance(0.3) }, bad: bad ? "axis out of range" : undefined };
    },
    run: ([a], p) => (mx as any)[p.op](a, { axis: p.axis, keepdims: p.keepdims }),
    q: qDiscrete,
  },
  reshape: {
    gen(r, pool) {
      const a = pickVal(r, pool);
      if (a === null) return null;
      const n = sizeOf(pool[a]!.shape);
      const bad = r.chance(0.1);
      let shape: number[] = [];
      if (bad) shape = [n + 1];
      else {
        let rest = n;
        const nd = r.int(4);
        for (let i = 0; i < nd && rest > 1; i++) {
          const divs = [1, 2, 3, 4, 5, 6, 7].filter((d) => rest % d === 0);
          const d = r.pick(divs);
          shape.push(d);
          rest /= d;
        }
        shape.push(rest);
        if (n > 0 && r.chance(0.3)) shape[r.int(shape.length)] = -1;
        r.shuffle(shape);
      }
      return { ins: [a], p: { shape }, bad: bad ? "wrong size" : undefined };
    },
    run: ([a], p) => mx.reshape(a!, p.shape),
    q: qSame,
  },
  transpose: {
    gen(r, pool) {
      const a = pickVal(r, pool);
      if (a === null) return null;
      const nd = pool[a]!.shape.length;
      const perm = r.shuffle(Array.from({ length: nd }, (_, i) => i));
      const bad = nd >= 2 && r.chance(0.1);
      if (bad) perm[0] = perm[1]!;
      return { ins: [a], p: { perm }, bad: bad ? "repeated axis" : undefined };
    },
    run: ([a], p) => mx.transpose(a!, p.perm),
    q: qSame,
  },
  expandSqueeze: {
    gen(r, pool) {
      const a = pickVal(r, pool);
      if (a === null) return null;
      const s = pool[a]!.shape;
      const ones = s.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      if (ones.length > 0 && r.chance(0.5)) return { ins: [a], p: { squeeze: r.pick(ones) } };
      const bad = r.chance(0.08);
      return { ins: [a], p: { expand: bad ? axis(r, s.length + 1, true) : axis(r, s.length + 1) }, bad: bad ? "axis out of range" : undefined };
    },
    run: ([a], p) => (p.squeeze !== undefined ? mx.squeeze(a!, p.squeeze) : mx.expandDims(a!, p.expand)),
    q: qSame,
  },
  slice: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length > 0);
      if (a === null) return null;
      const s = pool[a]!.shape;
      const idx = s.map((d) => {
        const k = r.int(5);
        if (k === 0 && d > 0) return r.int(d) - (r.chance(0.5) ? d : 0);
        if (k === 1) return mx.sl(null, null, r.pick([-1, -2, 2, 3]));
        if (k === 2) return mx.sl(r.int(d + 2) - 1, r.int(d + 2), r.pick([1, 2, -1]));
        return mx.sl();
      });
      const bad = r.chance(0.06);
      if (bad) idx[0] = s[0]! + r.int(3);
      return { ins: [a], p: { idx: idx.map((x) => (typeof x === "number" ? x : { s: (x as any).start, e: (x as any).stop, t: (x as any).step })) }, bad: bad ? "index out of range" : undefined };
    },
    run: ([a], p) => a!.index(...p.idx.map((x: any) => (typeof x === "number" ? x : mx.sl(x.s, x.e, x.t)))),
    q: qSame,
  },
  broadcastTo: {
    gen(r, pool) {
      const a = pickVal(r, pool);
      if (a === null) return null;
      const s = pool[a]!.shape;
      const t = s.map((d) => (d === 1 ? r.range(1, 4) : d));
      if (r.chance(0.4)) t.unshift(r.range(1, 3));
      const bad = r.chance(0.08) && s.some((d) => d >= 2);
      if (bad) t[t.length - s.length + s.findIndex((d) => d >= 2)]! += 1;
      return sizeOf(t) > MAX_SIZE ? null : { ins: [a], p: { shape: t }, bad: bad ? "cannot broadcast" : undefined };
    },
    run: ([a], p) => mx.broadcastTo(a!, p.shape),
    q: qSame,
  },
  concat: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length > 0);
      if (a === null) return null;
      const s = pool[a]!.shape;
      const ax = r.int(s.length);
      const others = live(pool).filter((i) => {
        const t = pool[i]!.shape;
        return t.length === s.length && t.every((d, j) => j === ax || d === s[j]) && pool[i]!.dtype === pool[a]!.dtype;
      });
      const ins = [a, ...Array.from({ length: r.range(1, 3) }, () => r.pick(others))];
      const stack = r.chance(0.3);
      if (stack) {
        const same = others.filter((i) => pool[i]!.shape[ax] === s[ax]);
        return { ins: [a, ...Array.from({ length: r.range(1, 2) }, () => r.pick(same))], p: { stack, axis: axis(r, s.length + 1) } };
      }
      return { ins, p: { stack, axis: ax } };
    },
    run: (xs, p) => (p.stack ? mx.stack(xs, p.axis) : mx.concatenate(xs, p.axis)),
    q: qSame,
  },
  split: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length > 0);
      if (a === null) return null;
      const s = pool[a]!.shape;
      const ax = r.int(s.length);
      const d = s[ax]!;
      const divs = [1, 2, 3].filter((k) => d % k === 0);
      const bad = r.chance(0.1) && d > 1 && divs.length < 3;
      const n = bad ? [2, 3].find((k) => d % k !== 0)! : r.pick(divs);
      return { ins: [a], p: { n: r.chance(0.3) && !bad ? [Math.floor(d / 2)] : n, axis: ax }, bad: bad ? "not divisible" : undefined };
    },
    run: ([a], p) => mx.split(a!, p.n, p.axis),
    q: qSame,
  },
  flipRoll: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length > 0);
      if (a === null) return null;
      const nd = pool[a]!.shape.length;
      return { ins: [a], p: { flip: r.chance(0.5), axis: axis(r, nd), shift: r.range(-5, 5) } };
    },
    run: ([a], p) => (p.flip ? mx.flip(a!, p.axis) : mx.roll(a!, p.shift, p.axis)),
    q: qSame,
  },
  pad: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length > 0);
      if (a === null) return null;
      const s = pool[a]!.shape;
      const widths = s.map(() => [r.int(3), r.int(3)] as [number, number]);
      const mode = r.pick(["constant", "edge", "reflect", "symmetric"] as const);
      const bad = r.chance(0.06);
      if (bad) widths[0]![0] = -1;
      const out = s.map((d, i) => d + widths[i]![0] + widths[i]![1]);
      return sizeOf(out) > MAX_SIZE ? null : { ins: [a], p: { widths, mode }, bad: bad ? "negative width" : undefined };
    },
    run: ([a], p) => mx.pad(a!, p.widths, p.mode),
    q: qSame,
  },
  tileRepeat: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => sizeOf(v.shape) * 6 <= MAX_SIZE);
      if (a === null) return null;
      const nd = pool[a]!.shape.length;
      return { ins: [a], p: r.chance(0.5) ? { reps: Array.from({ length: r.range(1, Math.max(1, nd)) }, () => r.range(1, 2)) } : { repeats: r.range(0, 3), axis: nd > 0 && r.chance(0.7) ? axis(r, nd) : undefined } };
    },
    run: ([a], p) => (p.reps ? mx.tile(a!, p.reps) : mx.repeat(a!, p.repeats, p.axis)),
    q: qSame,
  },
  astype: {
    gen(r, pool) {
      const a = pickVal(r, pool);
      if (a === null) return null;
      return { ins: [a], p: { dtype: r.pick([...DTYPES, mx.complex64]).name } };
    },
    run: ([a], p) => a!.astype(dt(p.dtype)),
    q(ins, _p, out) {
      const i = ins[0]!;
      if (i.q === 0) return 0;
      return isFloat(out) ? i.q : 2;
    },
  },
  scan: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length > 0);
      if (a === null) return null;
      const nd = pool[a]!.shape.length;
      const bad = r.chance(0.08);
      return { ins: [a], p: { op: r.pick(["cumsum", "cumprod", "cummax", "cummin"]), axis: axis(r, nd, bad), reverse: r.chance(0.3), inclusive: r.chance(0.7) }, bad: bad ? "axis out of range" : undefined };
    },
    run: ([a], p) => (mx as any)[p.op](a, p.axis, { reverse: p.reverse, inclusive: p.inclusive }),
    q: (ins, p, out) => (p.op === "cummax" || p.op === "cummin" ? qSame(ins, p, out) : qRound(ins, p, out)),
  },
  sort: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length > 0 && !isFloat(v.dtype) || (v.shape.length > 0 && v.q === 0));
      if (a === null) return null;
      const nd = pool[a]!.shape.length;
      const op = r.pick(["sort", "argsort", "topk"]);
      const ax = axis(r, nd);
      const d = pool[a]!.shape[(ax + nd) % nd]!;
      if (op === "topk") {
        const bad = r.chance(0.15);
        return { ins: [a], p: { op, axis: ax, k: bad ? d + 1 : r.range(Math.min(1, d), d) }, bad: bad ? "k out of range" : undefined };
      }
      return { ins: [a], p: { op, axis: ax } };
    },
    run: ([a], p) => (p.op === "topk" ? mx.topk(a!, p.k, p.axis) : (mx as any)[p.op](a, p.axis)),
    // sort of NaNs and topk's order within equal values are where kernels may differ: exact inputs only
    q: (ins, p) => (p.op === "sort" ? (ins[0]!.q === 0 ? 0 : 2) : p.op === "topk" ? (ins[0]!.q === 0 ? 0 : 2) : qDiscrete(ins)),
  },
  matmul: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length >= 1 && v.shape.length <= 3);
      if (a === null) return null;
      const s = pool[a]!.shape;
      const k = s[s.length - 1]!;
      const bad = r.chance(0.08);
      const shape = s.length === 1 ? [bad ? k + 1 : k, r.range(1, 6)] : [...s.slice(0, -2).map((d) => (r.chance(0.5) ? 1 : d)), bad ? k + 1 : k, r.range(1, 6)];
      return { ins: [a], p: { extra: { dtype: r.pick([pool[a]!.dtype, mx.float32, mx.int32]).name, shape, seed: r.u32() }, flip: r.chance(0.3) }, bad: bad ? "inner dimensions differ" : undefined };
    },
    run([a], p) {
      const b = inputData(p.extra.seed, dt(p.extra.dtype), p.extra.shape);
      try {
        return mx.matmul(a!, b);
      } finally {
        b.dispose();
      }
    },
    q: (ins, p, out) => qRound([...ins, { q: 0, dtype: dt(p.extra.dtype) } as Val], p, out),
  },
  take: {
    gen(r, pool) {
      const a = pickVal(r, pool, (v) => v.shape.length > 0 && v.shape.every((d) => d > 0));
      if (a === null) return null;
      const s = pool[a]!.shape;
      const ax = r.int(s.length);
      const d = s[ax]!;
      const bad = r.chance(0.1);
      const idx = Array.from({ length: r.range(1, 6) }, () => r.int(2 * d) - d);
      if (bad) idx[0] = d + r.int(3);
      return { ins: [a], p: { idx, axis: ax, along: r.chance(0.3) }, bad: bad ? "index out of bounds (at eval)" : undefined };
    },
    run([a], p) {
      const i = mx.array(p.idx, mx.int32);
      try {
        const out = mx.take(a!, i, p.axis);
        // out-of-bounds indices fail at eval: evaluate now so the error is this step's
        if (p.idx.some((x: number) => x >= a!.shape[p.axis]!)) {
          try {
            mx.eval(out);
          } catch (e) {
            out.dispose();
            throw e;
          }
        }
        return out;
      } finally {
        i.dispose();
      }
    },
    q: qSame,
  },
};

const OP_WEIGHTS: [string, number][] = [
  ["unary", 6], ["binary", 10], ["where", 2], ["reduce", 5], ["argreduce", 2], ["reshape", 4], ["transpose", 3],
  ["expandSqueeze", 2], ["slice", 4], ["broadcastTo", 2], ["concat", 2], ["split", 2], ["flipRoll", 2], ["pad", 2],
  ["tileRepeat", 2], ["astype", 4], ["scan", 2], ["sort", 2], ["matmul", 3], ["take", 2],
];
const TOTAL_W = OP_WEIGHTS.reduce((a, [, w]) => a + w, 0);
function pickOp(r: Rng): string {
  let x = r.int(TOTAL_W);
  for (const [name, w] of OP_WEIGHTS) if ((x -= w) < 0) return name;
  return "unary";
}

class Failure extends Error {}

function describe(s: Step, i: number): string {
  return `#${i} ${s.op}(${s.sig ?? s.ins.map((x) => "v" + x).join(", ")}) ${JSON.stringify(s.p)}${s.bad ? " [invalid: " + s.bad + "]" : ""} -> ${s.outcome ?? "?"}`;
}

function isMlxError(e: unknown): e is mx.MlxError {
  return e instanceof mx.MlxError;
}

/** Execute one step on `pool` (the run's values); returns the error message or "ok". */
async function exec(step: Step, pool: Val[], genQ: boolean): Promise<string> {
  const ins = step.ins.map((i) => pool[i]!);
  switch (step.op) {
    case "input": {
      const arr = inputData(step.p.seed, dt(step.p.dtype), step.p.shape);
      pool.push({ shape: step.p.shape, dtype: arr.dtype, q: 0, arr, disposed: false });
      return "ok";
    }
    case "eval":
    case "asyncEval": {
      const arrs = ins.filter((v) => !v.disposed).map((v) => v.arr!);
      if (step.op === "eval") mx.eval(...arrs);
      else await mx.asyncEval(...arrs);
      return "ok";
    }
    case "dispose": {
      ins[0]!.arr!.dispose();
      ins[0]!.disposed = true;
      return "ok";
    }
    case "memlimit": {
      // An allocation past the limit fails at eval with an out-of-memory error; nothing else changes.
      // Put a known 4 MiB block in the cache: the failure must give it back. (The check is that
      // the cache ends below 4 MiB, not at 0: GC finalizers may free small arrays into the cache
      // at any JS allocation, between the failure and the check.)
      const filler = mx.add(mx.zeros([1 << 20], mx.float32), 1);
      mx.eval(filler);
      filler.dispose();
      if (mx.getCacheMemory() < 4 << 20) throw new Failure("memory limit: the filler did not reach the cache");
      const big = mx.arange(0, step.p.n, 1, mx.float32);
      const old = mx.setMemoryLimit(mx.getActiveMemory() + 1024 * 1024);
      let msg = "no error";
      try {
        mx.eval(big);
      } catch (e) {
        msg = isMlxError(e) ? e.message : String(e);
      } finally {
        mx.setMemoryLimit(old);
        big.dispose();
      }
      if (!/^\[arange\] Out of memory/.test(msg)) throw new Failure(`memory limit: expected an out-of-memory error, got: ${msg}`);
      if (mx.getCacheMemory() >= 4 << 20 && step.p.checkCache) throw new Failure(`memory limit: the cache was not cleared (${mx.getCacheMemory()} bytes)`);
      return "ok";
    }
  }
  const spec = OPS[step.op]!;
  if (ins.some((v) => v.disposed)) {
    try {
      spec.run(ins.map((v) => v.arr!), step.p);
    } catch (e) {
      // (parameters made for another array may be refused first: any MlxError will do)
      if (!isMlxError(e)) throw new Failure(`use after dispose: expected an MlxError, got ${e}`);
      return e.message;
    }
    throw new Failure("use after dispose: no error");
  }
  let out: mx.Array | mx.Array[];
  try {
    out = spec.run(ins.map((v) => v.arr!), step.p);
  } catch (e) {
    if (e instanceof Failure) throw e;
    if (!isMlxError(e)) throw new Failure(`a ${(e as Error)?.constructor?.name} instead of an MlxError: ${(e as Error)?.message ?? e}`);
    // (MLX's own messages name the op, except a few it shares, e.g. "Invalid axis 5 for array with 3 dimensions.")
    if (e.message.length < 8 || e.message.startsWith("[mlx-bun]")) throw new Failure(`unclear error message: ${e.message}`);
    return e.message;
  }
  if (step.bad) throw new Failure(`invalid call (${step.bad}) did not throw`);
  const outs = Array.isArray(out) ? out : [out];
  for (const o of outs) {
    const q = genQ ? spec.q(ins, step.p, o.dtype) : 0;
    if (genQ) step.outcome = `v${pool.length}`;
    const productOrder = ins.some((v) => v.productOrder) || (isFloat(o.dtype) && (step.p?.op === "prod" || step.p?.op === "cumprod"));
    pool.push({ shape: [...o.shape], dtype: o.dtype, q, arr: o, disposed: false, productOrder });
  }
  step.nout = outs.length;
  return outs.map((_, j) => `v${pool.length - outs.length + j}`).join(",");
}

function genStep(r: Rng, pool: Val[], i: number): Step {
  const ids = live(pool);
  const k = r.int(100);
  if (ids.length < 3 || k < 8) {
    return { op: "input", ins: [], p: { dtype: (r.chance(0.7) ? r.pick(COMMON) : r.pick(DTYPES)).name, shape: randShape(r), seed: r.u32() } };
  }
  if (k < 16) return { op: r.chance(0.25) ? "asyncEval" : "eval", ins: Array.from({ length: r.range(1, 4) }, () => r.pick(ids)), p: {} };
  if (k < 21 || ids.length > 40) return { op: "dispose", ins: [r.pick(ids)], p: {} };
  if (k < 22 && i > 5) return { op: "memlimit", ins: [], p: { n: 1 << 22, checkCache: true } };
  for (let tries = 0; tries < 10; tries++) {
    const op = pickOp(r);
    const g = OPS[op]!.gen(r, pool);
    if (g === null) continue;
    // Rarely, feed a disposed value instead: every op must refuse it with a clear error.
    if (r.chance(0.03)) {
      const d = disposedVal(pool, r);
      if (d !== null && g.ins.length > 0) return { op, ...g, ins: [d, ...g.ins.slice(1)], bad: "disposed input" };
    }
    return { op, ...g };
  }
  return { op: "input", ins: [], p: { dtype: "float32", shape: [3], seed: r.u32() } };
}

const toBytes = (a: mx.Array): Uint8Array => {
  const ta = a.dtype === mx.bfloat16 ? a.toTypedArray({ bits: true }) : a.toTypedArray();
  return new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength).slice();
};
function floats(a: mx.Array): Float64Array {
  if (a.dtype === mx.complex64) {
    const t = a.astype(mx.float32); // real parts
    const im = mx.imag(a);
    const re = Float64Array.from(t.toTypedArray() as Float32Array);
    const ii = Float64Array.from(im.toTypedArray() as Float32Array);
    t.dispose();
    im.dispose();
    const out = new Float64Array(re.length * 2);
    re.forEach((v, i) => ((out[2 * i] = v), (out[2 * i + 1] = ii[i]!)));
    return out;
  }
  return Float64Array.from(a.toTypedArray({ dtype: a.dtype === mx.float64 ? mx.float64 : mx.float32 }) as Float32Array);
}

function compare(v1: Val, v2: Val, id: number): void {
  if (v1.dtype !== v2.dtype || v1.shape.join() !== v2.shape.join())
    throw new Failure(`v${id}: ${v1.dtype.name}${JSON.stringify(v1.shape)} in the fast run, ${v2.dtype.name}${JSON.stringify(v2.shape)} in the reference run`);
  const a = v1.arr!;
  const b = v2.arr!;
  if (v1.q === 2) return;
  if (v1.q === 0) {
    const x = toBytes(a);
    const y = toBytes(b);
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== y[i]) {
        if (isFloat(v1.dtype)) {
          // NaN payloads may differ; compare as numbers, NaN equal to NaN
          const fx = floats(a);
          const fy = floats(b);
          const j = fx.findIndex((u, k) => {
            const w = fy[k]!;
            if (v1.productOrder && !(Number.isFinite(u) && Number.isFinite(w))) return false;
            return !(u === w || (Number.isNaN(u) && Number.isNaN(w))) || Object.is(u, -0) !== Object.is(w, -0);
          });
          if (j < 0) return;
          throw new Failure(`v${id} (${v1.dtype.name}${JSON.stringify(v1.shape)}, exact): element ${j} is ${fx[j]} with the fast kernels, ${fy[j]} with the reference kernels`);
        }
        throw new Failure(`v${id} (${v1.dtype.name}${JSON.stringify(v1.shape)}, exact): byte ${i} differs: fast ${a.toString()} vs reference ${b.toString()}`);
      }
    }
    return;
  }
  const fx = floats(a);
  const fy = floats(b);
  const lowp = v1.dtype === mx.float16 || v1.dtype === mx.bfloat16;
  const rtol = lowp ? 3e-2 : 1e-3;
  let scale = 0;
  for (const y of fy) if (Number.isFinite(y)) scale = Math.max(scale, Math.abs(y));
  const atol = (lowp ? 3e-2 : 1e-3) * Math.max(1, scale);
  for (let i = 0; i < fx.length; i++) {
    const x = fx[i]!;
    const y = fy[i]!;
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    if (v1.productOrder && !(Number.isFinite(x) && Number.isFinite(y))) continue;
    if (Number.isFinite(x) && Number.isFinite(y) && Math.abs(x - y) <= atol + rtol * Math.abs(y)) continue;
    // a near-overflow value may round to inf in one kernel only
    if (lowp && Math.abs(x) > 6e4 && Math.abs(y) > 6e4 && Math.sign(x) === Math.sign(y)) continue;
    throw new Failure(`v${id} (${v1.dtype.name}${JSON.stringify(v1.shape)}, approximate): element ${i} is ${x} with the fast kernels, ${y} with the reference kernels`);
  }
}

export const stats: Record<string, { ok: number; err: number }> = {};

async function runProgram(seed: number, nsteps: number): Promise<{ steps: Step[]; errors: number }> {
  const r = new Rng(seed);
  const steps: Step[] = [];
  const fast: Val[] = [];
  const ref: Val[] = [];
  let errors = 0;
  const cleanup = () => {
    lib.mlxb_set_reference_mode(0);
    for (const v of [...fast, ...ref]) if (!v.disposed) v.arr?.dispose();
  };
  try {
    lib.mlxb_set_reference_mode(0);
    for (let i = 0; i < nsteps; i++) {
      const s = genStep(r, fast, i);
      s.sig = s.ins.map((x) => `v${x}:${fast[x]!.dtype.name}${JSON.stringify(fast[x]!.shape)}${fast[x]!.disposed ? "(disposed)" : ""}`).join(", ");
      steps.push(s);
      s.outcome = await exec(s, fast, true);
      const failed = s.outcome !== "ok" && !s.outcome.startsWith("v");
      if (failed) errors++;
      const st = (stats[s.op] ??= { ok: 0, err: 0 });
      if (failed) st.err++;
      else st.ok++;
    }
    // Read everything in the fast run before switching kernels.
    const snap = fast.map((v) => (v.disposed ? null : v));
    for (const v of snap) if (v) mx.eval(v.arr!);
    lib.mlxb_set_reference_mode(1);
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!;
      const n0 = ref.length;
      const outcome = await exec(s, ref, false);
      if (outcome !== s.outcome) throw new Failure(`step #${i}: ${s.outcome} with the fast kernels, ${outcome} with the reference kernels`);
      // the reference run inherits the fast run's exactness (it is the same program)
      for (let j = n0; j < ref.length; j++) ref[j]!.q = fast[j]!.q;
    }
    if (ref.length !== fast.length) throw new Failure(`the runs made ${fast.length} and ${ref.length} values`);
    for (let i = 0; i < fast.length; i++) {
      if (fast[i]!.disposed) continue;
      compare(fast[i]!, ref[i]!, i);
      const k = ["compared exact", "compared approximately", "not compared"][fast[i]!.q]!;
      (stats[k] ??= { ok: 0, err: 0 }).ok++;
    }
    lib.mlxb_set_reference_mode(0);
    // The engine is still usable.
    const check = mx.sum(mx.arange(5));
    const v = check.item();
    check.dispose();
    if (v !== 10) throw new Failure(`engine check: sum(arange(5)) = ${v}`);
    if (lib.mlxb_last_error_code() !== 0) lib.mlxb_clear_error();
    return { steps, errors };
  } catch (e) {
    (e as any).steps = steps;
    throw e;
  } finally {
    cleanup();
  }
}

if (import.meta.main) {
  const seed0 = Number(process.argv[2] ?? 1);
  const budget = Number(process.argv[3] ?? 10);
  const nsteps = Number(process.argv[4] ?? 40);
  const say = (s: string) => writeSync(1, s + "\n");
  const t0 = performance.now();
  const handles0 = mx.getLiveHandleCount();
  let programs = 0;
  let total = 0;
  let errs = 0;
  for (let seed = seed0; programs === 0 || performance.now() - t0 < budget * 1000; seed++) {
    say(`seed ${seed}`);
    try {
      const { steps, errors } = await runProgram(seed, nsteps);
      total += steps.length;
      errs += errors;
    } catch (e) {
      const steps: Step[] = (e as any).steps ?? [];
      say(`FAIL seed ${seed}: ${(e as Error).message}`);
      if (!(e instanceof Failure)) say(String((e as Error).stack));
      say(`replay: MLXB_FUZZ_SEED=${seed} MLXB_FUZZ_BUDGET=0 bun test test/fuzz.test.ts  (or: bun test/fuzz/api_fuzz.ts ${seed} 0 ${nsteps})`);
      say("program:");
      steps.forEach((s, i) => say("  " + describe(s, i)));
      process.exit(1);
    }
    programs++;
  }
  // Everything the programs made was disposed: the handle count is back where it started
  // (composed ops' temporaries of failed calls are left to the collector, so collect first).
  for (let i = 0; i < 5 && mx.getLiveHandleCount() > handles0; i++) {
    Bun.gc(true);
    await Bun.sleep(1);
  }
  const leaked = mx.getLiveHandleCount() - handles0;
  if (leaked > 0) {
    say(`FAIL: ${leaked} handles still live after every program disposed its values`);
    process.exit(1);
  }
  if (process.env.MLXB_FUZZ_STATS) say(JSON.stringify(stats));
  say(`ok ${programs} ${total} ${errs}`);
}
