// mx.fast against real MLX: rmsNorm, layerNorm, rope and scaledDotProductAttention forward
// (float32/float16/bfloat16/float64, odd sizes, masks, GQA, sinks, rope variants and offsets),
// their vjps (mx.vjp of MLX's fast ops), a second-order gradient, vmap, and MLX's messages for
// bad inputs. Inputs and MLX's results come from test/fixtures/fast/fast.json.gz (made by
// gen_fast.py from MLX 0.32.4). Kernels accumulate in float32 in another order than MLX, so
// values are compared within a tolerance per dtype.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { arrayOf, fromHex, loadFixture, numbersOf, type Rec } from "./fixture";
import { expectMlxError } from "./util";

type Arg = Rec | number | boolean | string | null;
interface Args {
  [k: string]: Arg;
}
interface FwdCase {
  name: string;
  op: string;
  args: Args;
  out: Rec;
}
interface GradCase extends FwdCase {
  wrt: string[];
  cot: Rec;
  grads: Rec[];
}
interface VmapCase extends FwdCase {
  in_axes: Record<string, number>;
}
const fx = loadFixture<{
  forward: FwdCase[];
  grads: GradCase[];
  vmap: VmapCase[];
  second: { name: string; x: Rec; w?: Rec; c: Rec; out: Rec }[];
  errors: { name: string; message: string }[];
}>("fast/fast.json.gz");

function isRec(a: Arg | undefined): a is Rec {
  return typeof a === "object" && a !== null && "hex" in a;
}

function decode(args: Args): Record<string, mx.Array | number | boolean | string | null> {
  const out: Record<string, mx.Array | number | boolean | string | null> = {};
  for (const [k, v] of Object.entries(args)) out[k] = isRec(v) ? arrayOf(v) : v;
  return out;
}

type Vals = Record<string, mx.Array | number | boolean | string | null | undefined>;
const A = (v: unknown) => (v === undefined || v === null ? null : (v as mx.Array));

function call(op: string, a: Vals): mx.Array {
  switch (op) {
    case "rms_norm":
      return mx.fast.rmsNorm(a.x as mx.Array, A(a.weight), a.eps as number);
    case "layer_norm":
      return mx.fast.layerNorm(a.x as mx.Array, A(a.weight), A(a.bias), a.eps as number);
    case "rope":
      return mx.fast.rope(a.x as mx.Array, a.dims as number, {
        traditional: a.traditional as boolean,
        base: (a.base as number | undefined) ?? null,
        scale: a.scale as number,
        offset: a.offset as number | mx.Array,
        freqs: A(a.freqs),
      });
    case "sdpa":
      return mx.fast.scaledDotProductAttention(a.q as mx.Array, a.k as mx.Array, a.v as mx.Array, {
        scale: a.scale as number,
        mask: (a.mask as mx.Array | "causal" | undefined) ?? null,
        sinks: A(a.sinks),
      });
  }
  throw new Error(op);
}

function tol(dtype: mx.DtypeName): number {
  return dtype === "float16" ? 1e-2 : dtype === "bfloat16" ? 4e-2 : 2e-5;
}

/** |ours - mlx| <= t * (1 + |mlx|) elementwise, same shape and dtype. */
function expectClose(ours: mx.Array, want: Rec, t = tol(want.dtype)) {
  expect(ours.shape).toEqual(want.shape);
  expect(ours.dtype.name).toBe(want.dtype);
  const w = numbersOf(fromHex(want.hex), want.dtype);
  const o = ours.astype(mx.float64).toTypedArray() as Float64Array;
  expect(o.length).toBe(w.length);
  let worst = 0;
  for (let i = 0; i < w.length; i++) {
    if (Number.isNaN(w[i]!)) {
      expect(Number.isNaN(o[i]!)).toBe(true);
      continue;
    }
    worst = Math.max(worst, Math.abs(o[i]! - w[i]!) / (1 + Math.abs(w[i]!)));
  }
  expect(worst).toBeLessThanOrEqual(t);
}

describe("forward vs MLX", () => {
  for (const c of fx.forward) {
    test(c.name, () => {
      // Angles near 1000 rad carry float32's rounding (ulp 6e-5) into the rotation.
      expectClose(call(c.op, decode(c.args)), c.out, c.name === "rope big vectors" ? 3e-4 : undefined);
    });
  }
});

describe("strided inputs", () => {
  const viewOf = (a: mx.Array) => mx.swapaxes(mx.contiguous(mx.swapaxes(a, 0, -1)), 0, -1);
  for (const c of fx.forward.filter((c) => ["rms float32 weight", "layer float32 weight bias", "rope traditional partial", "sdpa gqa", "sdpa additive mask"].includes(c.name))) {
    test(`${c.name} (transposed storage)`, () => {
      const a = decode(c.args);
      for (const k of ["x", "q", "k", "v", "weight"]) if (a[k] instanceof mx.Array) a[k] = viewOf(a[k] as mx.Array);
      expectClose(call(c.op, a), c.out);
    });
  }
  test("sdpa on (B, L, H, D) storage swapped to (B, H, L, D)", () => {
    const c = fx.forward.find((c) => c.name === "sdpa causal blocks")!;
    const a = decode(c.args);
    for (const k of ["q", "k", "v"]) a[k] = mx.swapaxes(mx.contiguous(mx.swapaxes(a[k] as mx.Array, 1, 2)), 1, 2);
    expectClose(call(c.op, a), c.out);
  });
});

describe("vjp vs MLX", () => {
  for (const c of fx.grads) {
    test(c.name, () => {
      const a = decode(c.args);
      const primals = c.wrt.map((k) => a[k] as mx.Array);
      const f = (...ps: mx.Array[]) => {
        const b: Vals = { ...a };
        c.wrt.forEach((k, i) => (b[k] = ps[i]));
        return call(c.op, b);
      };
      const [, g] = mx.vjp(f, primals, [arrayOf(c.cot)]);
      expect(g.length).toBe(c.grads.length);
      g.forEach((gi, i) => expectClose(gi, c.grads[i]!, 5e-5));
    });
  }
  test("second order through rms_norm", () => {
    const s = fx.second.find((s) => s.name === "rms second order")!;
    const w = arrayOf(s.w!);
    const c = arrayOf(s.c);
    const inner = mx.grad((x: mx.Array) => mx.sum(mx.multiply(mx.fast.rmsNorm(x, w, 1e-5), c)));
    const outer = mx.grad((x: mx.Array) => mx.sum(mx.square(inner(x) as mx.Array)));
    expectClose(outer(arrayOf(s.x)) as mx.Array, s.out, 1e-4);
  });
  test("self-attention q = k = v: each argument's share adds up", () => {
    const s = fx.second.find((s) => s.name === "sdpa self grad")!;
    const c = arrayOf(s.c);
    const g = mx.grad((x: mx.Array) => mx.sum(mx.multiply(mx.fast.scaledDotProductAttention(x, x, x, { scale: 0.35, mask: "causal" }), c)));
    expectClose(g(arrayOf(s.x)) as mx.Array, s.out, 5e-5);
  });
  test("rope's vjp is rope with the angle negated (grad of grad)", () => {
    // rope is a rotation: d/dx sum(rope(x) * c) = rope^-1(c), and rope(rope^-1(c)) = c.
    const c = mx.random.normal([1, 2, 4, 8], { key: mx.random.key(1) });
    const x = mx.random.normal([1, 2, 4, 8], { key: mx.random.key(2) });
    const opts = { traditional: false, base: 10000, scale: 1, offset: 3 };
    const g = mx.grad((x: mx.Array) => mx.sum(mx.multiply(mx.fast.rope(x, 8, opts), c)))(x) as mx.Array;
    const back = mx.fast.rope(g, 8, opts);
    expect(mx.allclose(back, c, { atol: 1e-5 }).item()).toBe(true);
  });
  test("the mask gets a zero cotangent (as MLX)", () => {
    const q = mx.ones([1, 1, 2, 4]);
    const m = mx.zeros([2, 2]);
    const g = mx.grad((m: mx.Array) => mx.sum(mx.fast.scaledDotProductAttention(q, q, q, { scale: 1, mask: m })))(m) as mx.Array;
    expect(g.tolist()).toEqual([[0, 0], [0, 0]]);
  });
});

describe("vmap vs MLX", () => {
  for (const c of fx.vmap) {
    test(c.name, () => {
      const a = decode(c.args);
      const keys = Object.keys(c.in_axes);
      const f = (...ps: mx.Array[]) => {
        const b: Vals = { ...a };
        keys.forEach((k, i) => (b[k] = ps[i]));
        return call(c.op, b);
      };
      const out = mx.vmap(f, { inAxes: keys.map((k) => c.in_axes[k]!) })(...keys.map((k) => a[k] as mx.Array));
      expectClose(out, c.out);
    });
  }
});

describe("bad inputs with MLX's messages", () => {
  const x = mx.ones([2, 3, 8]);
  const w = mx.ones([8]);
  const q = mx.ones([2, 4, 5, 8]);
  const k = mx.ones([2, 2, 6, 8]);
  const v = mx.ones([2, 2, 6, 8]);
  const sd = (q: mx.Array, k: mx.Array, v: mx.Array, o: Partial<mx.fast.SdpaOptions> = {}) => mx.fast.scaledDotProductAttention(q, k, v, { scale: 0.3, ...o });
  const rp = (x: mx.Array, dims: number, o: Partial<mx.fast.RopeOptions> = {}) => mx.fast.rope(x, dims, { traditional: false, base: 10000, scale: 1, offset: 0, ...o });
  const calls: Record<string, () => unknown> = {
    "rms weight size": () => mx.fast.rmsNorm(x, mx.ones([7]), 1e-5),
    "rms weight ndim": () => mx.fast.rmsNorm(x, mx.ones([1, 8]), 1e-5),
    "rms 0-d": () => mx.fast.rmsNorm(mx.ones([]), null, 1e-5),
    "rms int": () => mx.fast.rmsNorm(x.astype(mx.int32), null, 1e-5),
    "layer bias size": () => mx.fast.layerNorm(x, w, mx.ones([7]), 1e-5),
    "layer weight ndim": () => mx.fast.layerNorm(x, mx.ones([1, 8]), w, 1e-5),
    "layer int": () => mx.fast.layerNorm(x.astype(mx.int32), null, null, 1e-5),
    "rope 2-D": () => rp(mx.ones([3, 8]), 8),
    "rope odd dims": () => rp(x, 5),
    "rope dims too big": () => rp(x, 10),
    "rope dims zero": () => rp(x, 0),
    "rope int": () => rp(x.astype(mx.int32), 8),
    "rope freqs shape": () => rp(x, 8, { base: null, freqs: mx.ones([3]) }),
    "rope base and freqs": () => rp(x, 8, { freqs: mx.ones([4]) }),
    "rope neither": () => rp(x, 8, { base: null }),
    "rope offset size": () => rp(x, 8, { offset: mx.array([3, 4, 5]) }),
    "rope offset ndim": () => rp(x, 8, { offset: mx.array([[3, 4]]) }),
    "rope offset float": () => rp(x, 8, { offset: mx.array(3.5) }),
    "sdpa mask string": () => sd(q, k, v, { mask: "foo" as "causal" }),
    "sdpa mask shape": () => sd(q, k, v, { mask: mx.ones([3, 5, 6]) }),
    "sdpa mask rank": () => sd(q, k, v, { mask: mx.ones([4, 1, 1, 5, 6]) }),
    "sdpa mask dtype": () => sd(q.astype(mx.float16), k.astype(mx.float16), v.astype(mx.float16), { mask: mx.ones([5, 6]) }),
    "sdpa sinks shape": () => sd(q, k, v, { sinks: mx.ones([3]) }),
    "sdpa heads": () => sd(q, mx.ones([2, 3, 6, 8]), mx.ones([2, 3, 6, 8])),
    "sdpa v length": () => sd(q, k, mx.ones([2, 2, 7, 8])),
    "sdpa key dim": () => sd(q, mx.ones([2, 2, 6, 7]), v),
    "sdpa rank": () => sd(mx.ones([4, 5, 8]), mx.ones([2, 6, 8]), mx.ones([2, 6, 8])),
    "sdpa int": () => sd(q.astype(mx.int32), k.astype(mx.int32), v.astype(mx.int32)),
    "sdpa batch": () => sd(mx.ones([1, 4, 5, 8]), k, v),
  };
  for (const e of fx.errors) {
    test(e.name, () => {
      const fn = calls[e.name];
      expect(fn).toBeDefined();
      const err = expectMlxError(fn!, /./);
      expect(err.message).toBe(e.message);
    });
  }
});

describe("edge cases", () => {
  test("empty arrays", () => {
    expect(mx.fast.rmsNorm(mx.ones([0, 4]), null, 1e-5).shape).toEqual([0, 4]);
    const q = mx.ones([1, 1, 0, 4]);
    expect(mx.fast.scaledDotProductAttention(q, mx.ones([1, 1, 3, 4]), mx.ones([1, 1, 3, 4]), { scale: 1 }).shape).toEqual([1, 1, 0, 4]);
  });
  test("matches the composed formula on a larger causal GQA case", () => {
    const [k1, k2, k3] = [mx.random.key(7), mx.random.key(8), mx.random.key(9)];
    const q = mx.random.normal([1, 4, 130, 32], { key: k1 });
    const k = mx.random.normal([1, 2, 130, 32], { key: k2 });
    const v = mx.random.normal([1, 2, 130, 32], { key: k3 });
    const out = mx.fast.scaledDotProductAttention(q, k, v, { scale: 0.2, mask: "causal" });
    const kr = mx.repeat(k, 2, 1);
    const vr = mx.repeat(v, 2, 1);
    const s = mx.add(mx.matmul(mx.multiply(q, 0.2), mx.swapaxes(kr, -1, -2)), mx.where(mx.tril(mx.ones([130, 130], { dtype: mx.bool })), 0, -Infinity));
    const ref = mx.matmul(mx.softmax(s, { axis: -1 }), vr);
    expect(mx.allclose(out, ref, { atol: 1e-5, rtol: 1e-4 }).item()).toBe(true);
  });
});

describe("decode (one query): grouped query heads per kv head", () => {
  // The kernel reads a kv head once for a group of its query heads when L = 1; partial groups
  // (18 query heads per kv head in groups of 4), per-head masks and sinks must land on the
  // right rows. Oracle: the formula composed from ops, the kv heads repeated.
  const cases: [string, number, number, number, "bool" | "add" | null, boolean][] = [
    ["B=1 H=36 Hk=2, bool mask, sinks", 1, 36, 2, "bool", true],
    ["B=2 H=16 Hk=4, additive mask", 2, 16, 4, "add", false],
    ["B=1 H=8 Hk=1 (MQA), causal", 1, 8, 1, null, false],
  ];
  for (const [name, B, H, Hk, maskKind, withSinks] of cases) {
    test(name, () => {
      const S = 37;
      const r = (shape: number[], seed: number) => mx.random.normal(shape, { key: mx.random.key(seed) });
      const q = r([B, H, 1, 16], 21);
      const k = r([B, Hk, S, 16], 22);
      const v = r([B, Hk, S, 8], 23);
      const mask = maskKind === "bool" ? mx.greater(r([B, H, 1, S], 24), -0.5) : maskKind === "add" ? r([B, H, 1, S], 25) : null;
      const sinks = withSinks ? r([H], 26) : null;
      const out = mx.fast.scaledDotProductAttention(q, k, v, { scale: 0.3, mask: mask ?? (maskKind === null ? "causal" : null), sinks });
      const kr = mx.repeat(k, H / Hk, 1);
      const vr = mx.repeat(v, H / Hk, 1);
      let sc = mx.matmul(mx.multiply(q, 0.3), mx.swapaxes(kr, -1, -2));
      if (maskKind === "bool") sc = mx.where(mask!, sc, -Infinity);
      if (maskKind === "add") sc = mx.add(sc, mask!);
      if (sinks) sc = mx.concatenate([mx.broadcastTo(mx.reshape(sinks, [1, H, 1, 1]), [B, H, 1, 1]), sc], -1);
      let p = mx.softmax(sc, { axis: -1, precise: true });
      if (sinks) p = p.index("...", mx.sl(1, null));
      const ref = mx.matmul(p, vr);
      expect(mx.allclose(out, ref, { atol: 1e-5, rtol: 1e-4 }).item()).toBe(true);
    });
  }
});

describe("transforms composed over the per-example parameters", () => {
  // Batched freqs and sinks become per-batch-entry inputs of the fused node: its vjp must sum
  // into the right rows. Oracle: the same gradient computed one example at a time.
  const stackEach = (n: number, f: (i: number) => mx.Array) => mx.stack(Array.from({ length: n }, (_, i) => f(i)));
  test("grad of rope with respect to freqs, vmapped over freqs and offset", () => {
    const x = mx.random.normal([2, 3, 8], { key: mx.random.key(11) });
    const c = mx.random.normal([2, 3, 8], { key: mx.random.key(12) });
    const freqs = mx.add(mx.random.uniform(0, 2, [3, 4], { key: mx.random.key(13) }), 0.5);
    const offs = mx.array([0, 4, 9], { dtype: mx.int32 });
    const loss = (f: mx.Array, o: mx.Array) => mx.sum(mx.multiply(mx.fast.rope(x, 8, { traditional: true, base: null, scale: 0.7, offset: o, freqs: f }), c));
    const g = mx.vmap(mx.grad(loss) as (f: mx.Array, o: mx.Array) => mx.Array)(freqs, offs);
    const want = stackEach(3, (i) => mx.grad(loss)(freqs.index(i), offs.index(i)) as mx.Array);
    expect(mx.allclose(g, want, { atol: 1e-5, rtol: 1e-5 }).item()).toBe(true);
  });
  test("grad of sdpa with respect to vmapped sinks", () => {
    const q = mx.random.normal([2, 2, 3, 4], { key: mx.random.key(14) });
    const sinks = mx.random.normal([3, 2], { key: mx.random.key(15) });
    const loss = (s: mx.Array) => mx.sum(mx.square(mx.fast.scaledDotProductAttention(q, q, q, { scale: 0.5, sinks: s })));
    const g = mx.vmap(mx.grad(loss) as (s: mx.Array) => mx.Array)(sinks);
    const want = stackEach(3, (i) => mx.grad(loss)(sinks.index(i)) as mx.Array);
    expect(mx.allclose(g, want, { atol: 1e-6, rtol: 1e-5 }).item()).toBe(true);
    // and the total: grad of the vmapped sum
    const gs = mx.grad((s: mx.Array) => mx.sum(mx.vmap(loss)(s)))(sinks) as mx.Array;
    expect(mx.allclose(gs, want, { atol: 1e-6, rtol: 1e-5 }).item()).toBe(true);
  });
  test("nested vmap: rope over freqs then x, sdpa over sinks then q", () => {
    const x = mx.random.normal([2, 3, 2, 5, 8], { key: mx.random.key(18) }); // outer axis 0 of size 2
    const freqs = mx.add(mx.random.uniform(0, 2, [3, 4], { key: mx.random.key(19) }), 0.5); // inner axis 0 of size 3
    const rp = (xi: mx.Array, f: mx.Array) => mx.fast.rope(xi, 8, { traditional: false, base: null, scale: 1, offset: 1, freqs: f });
    const inner = (xi: mx.Array) => mx.vmap((f: mx.Array) => rp(xi, f))(freqs);
    const got = mx.vmap(inner)(x); // (2, 3, 3, 2, 5, 8)
    const want = mx.stack([0, 1].map((i) => mx.stack([0, 1, 2].map((j) => rp(x.index(i), freqs.index(j))))));
    expect(got.shape).toEqual([2, 3, 3, 2, 5, 8]);
    expect(mx.allclose(got, want, { atol: 1e-6 }).item()).toBe(true);
    const q = mx.random.normal([2, 1, 2, 3, 4], { key: mx.random.key(20) });
    const sinks = mx.random.normal([3, 2], { key: mx.random.key(21) });
    const at = (qi: mx.Array, s: mx.Array) => mx.fast.scaledDotProductAttention(qi, qi, qi, { scale: 0.5, sinks: s, mask: "causal" });
    const got2 = mx.vmap((s: mx.Array) => mx.vmap((qi: mx.Array) => at(qi, s))(q))(sinks);
    const want2 = mx.stack([0, 1, 2].map((j) => mx.stack([0, 1].map((i) => at(q.index(i), sinks.index(j))))));
    expect(mx.allclose(got2, want2, { atol: 1e-6 }).item()).toBe(true);
  });
  test("rope's freqs gradient matches central finite differences (float64)", () => {
    const x = mx.random.normal([1, 2, 5, 6], { key: mx.random.key(16) }).astype(mx.float64);
    const c = mx.random.normal([1, 2, 5, 6], { key: mx.random.key(17) }).astype(mx.float64);
    const f0 = [0.7, 1.3, 2.1];
    const loss = (f: mx.Array) => mx.sum(mx.multiply(mx.fast.rope(x, 6, { traditional: false, base: null, scale: 1, offset: 2, freqs: f }), c));
    const g = (mx.grad(loss)(mx.array(f0)) as mx.Array).tolist() as number[];
    const h = 1e-4;
    f0.forEach((_, i) => {
      const up = f0.map((v, j) => (j === i ? v + h : v));
      const dn = f0.map((v, j) => (j === i ? v - h : v));
      const fd = ((loss(mx.array(up)).item() as number) - (loss(mx.array(dn)).item() as number)) / (2 * h);
      // freqs are computed in float32 inside rope: finite differences of that, within its rounding
      expect(Math.abs(g[i]! - fd)).toBeLessThan(2e-3 * (1 + Math.abs(fd)));
    });
  });
});
