// Matrix products against real MLX: matmul (every inexact dtype, 1-D operands, batch broadcasting,
// transposed and strided views, empty shapes), addmm, tensordot, inner, outer, vecdot, kron, and
// their errors. Inputs and MLX's results come from test/fixtures/matmul/matmul.json.gz (made by
// gen_matmul.py from MLX 0.32.4). Products are not bit-exact across BLAS implementations, so small
// random cases compare against the exact product computed here in float64 by a plain loop, within
// the rounding bound eps * k * (|a| @ |b|) (MLX's own result must pass the same bound); large cases
// use inputs whose products are exact in float32 (see gen_matmul.py `formula`), so ours must equal
// MLX's result bit for bit (compared by SHA-256).
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, fromHex, loadFixture, numbersOf, type Rec } from "./fixture";
import { expectMlxError } from "./util";

type Stored = Rec | { dtype: mx.DtypeName; shape: number[]; seed: number };
interface Digest {
  dtype: mx.DtypeName;
  shape: number[];
  sha256: string;
}
interface MatmulCase {
  a: Stored;
  b: Stored;
  view_a: "T" | "step2" | null;
  view_b: "T" | "step2" | null;
  mlx: Rec | Digest;
}
interface AddmmCase {
  c: Rec;
  a: Rec;
  b: Rec;
  alpha: number;
  beta: number;
  mlx: Rec;
}
interface ComposedCase {
  op: "tensordot" | "inner" | "outer" | "vecdot" | "kron";
  args: Rec[];
  kw: { axes?: number | [number[], number[]]; axis?: number };
  mlx: Rec;
}
interface ErrorCase {
  op: string;
  shapes: number[][];
  dtypes: mx.DtypeName[];
  kw: { axes?: number | [number[], number[]]; axis?: number };
  message: string;
}
const fx = loadFixture<{ mlx_version: string; matmul: MatmulCase[]; addmm: AddmmCase[]; composed: ComposedCase[]; errors: ErrorCase[] }>(
  "matmul/matmul.json.gz",
);

/** gen_matmul.py's formula: element i is ((37 i + seed) mod 61 - 30) / 16 (imaginary: i + 1000003). */
function formulaArray(dtype: mx.DtypeName, shape: number[], seed: number): mx.Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const f = (j: number) => ((37 * j + seed) % 61) - 30;
  if (dtype === "complex64") {
    const v = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      v[2 * i] = f(i) / 16;
      v[2 * i + 1] = f(i + 1000003) / 16;
    }
    return mx.array(new BigUint64Array(v.buffer), { dtype: "complex64", shape, bits: true });
  }
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = f(i) / 16;
  return mx.array(v, { shape }).astype(dtype);
}

function operand(r: Stored, view: "T" | "step2" | null): mx.Array {
  const base = "hex" in r ? arrayOf(r) : formulaArray(r.dtype, r.shape, r.seed);
  if (view === "T") return mx.swapaxes(base, -1, -2);
  if (view === "step2") return base.index("...", mx.sl(null, null, 2));
  return base;
}

/** Values as [re, im] pairs (im 0 for real dtypes), row-major. */
function complexValues(a: mx.Array): [number, number][] {
  const v = numbersOf(bytesOf(a), a.dtype.name);
  const out: [number, number][] = [];
  if (a.dtype.name === "complex64") for (let i = 0; i < v.length; i += 2) out.push([v[i]!, v[i + 1]!]);
  else for (const x of v) out.push([x, 0]);
  return out;
}

/**
 * The exact product of a and b (as the op sees them: 1-D lifted, batches broadcast) in float64,
 * and the error scale |a| @ |b|, for every output element.
 */
function exactProduct(a: mx.Array, b: mx.Array): { re: number[]; im: number[]; scale: number[]; k: number } {
  const sa = a.ndim === 1 ? [1, a.shape[0]!] : [...a.shape];
  const sb = b.ndim === 1 ? [b.shape[0]!, 1] : [...b.shape];
  const m = sa[sa.length - 2]!;
  const k = sa[sa.length - 1]!;
  const n = sb[sb.length - 1]!;
  const ba = sa.slice(0, -2);
  const bb = sb.slice(0, -2);
  const nb = Math.max(ba.length, bb.length);
  const pa = [...Array(nb - ba.length).fill(1), ...ba];
  const pb = [...Array(nb - bb.length).fill(1), ...bb];
  const batch = pa.map((d, i) => Math.max(d, pb[i]!));
  const av = complexValues(a);
  const bv = complexValues(b);
  const re: number[] = [];
  const im: number[] = [];
  const scale: number[] = [];
  const total = batch.reduce((p, d) => p * d, 1);
  for (let t = 0; t < total; t++) {
    let rem = t;
    let oa = 0;
    let ob = 0;
    let sta = m * k;
    let stb = k * n;
    for (let d = nb - 1; d >= 0; d--) {
      const idx = rem % batch[d]!;
      rem = Math.floor(rem / batch[d]!);
      if (pa[d] !== 1) oa += idx * sta;
      if (pb[d] !== 1) ob += idx * stb;
      sta *= pa[d]!;
      stb *= pb[d]!;
    }
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let r = 0, q = 0, s = 0;
      for (let p = 0; p < k; p++) {
        const [x, y] = av[oa + i * k + p]!;
        const [u, w] = bv[ob + p * n + j]!;
        r += x * u - y * w;
        q += x * w + y * u;
        s += Math.hypot(x, y) * Math.hypot(u, w);
      }
      re.push(r);
      im.push(q);
      scale.push(s);
    }
  }
  return { re, im, scale, k };
}

/** Rounding bound: accumulation in float32 (float64 for float64), one rounding to the dtype. */
function bound(dtype: mx.DtypeName, k: number, scale: number, value: number): number {
  const acc = dtype === "float64" ? 2 ** -52 : 2 ** -23;
  const out = dtype === "float16" ? 2 ** -11 : dtype === "bfloat16" ? 2 ** -8 : 0;
  return (k + 2) * acc * scale + out * Math.abs(value) + 1e-30;
}

function expectWithinBound(got: mx.Array, exact: ReturnType<typeof exactProduct>, what: string): void {
  const v = complexValues(got);
  expect(v.length).toBe(exact.re.length);
  for (let i = 0; i < v.length; i++) {
    const tol = bound(got.dtype.name, exact.k, exact.scale[i]!, Math.hypot(exact.re[i]!, exact.im[i]!));
    const err = Math.max(Math.abs(v[i]![0] - exact.re[i]!), Math.abs(v[i]![1] - exact.im[i]!));
    if (!(err <= tol)) throw new Error(`${what}: element ${i} is ${v[i]}, exact ${exact.re[i]}+${exact.im[i]}i (error ${err} > bound ${tol})`);
  }
}

function sha256(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

test("the fixture comes from MLX 0.32", () => {
  expect(fx.mlx_version).toStartWith("0.32");
  expect(fx.matmul.length).toBeGreaterThan(300);
  expect(fx.matmul.filter((c) => "sha256" in c.mlx).length).toBeGreaterThan(100);
});

describe("matmul against MLX", () => {
  const dtypes = [...new Set(fx.matmul.map((c) => c.mlx.dtype))];
  for (const dt of dtypes) {
    test(`${dt}: every shape and view`, () => {
      let n = 0;
      for (const c of fx.matmul.filter((x) => x.mlx.dtype === dt)) {
        const a = operand(c.a, c.view_a);
        const b = operand(c.b, c.view_b);
        const what = `${a.dtype.name}${JSON.stringify(a.shape)}${c.view_a ?? ""} @ ${b.dtype.name}${JSON.stringify(b.shape)}${c.view_b ?? ""}`;
        const r = mx.matmul(a, b);
        expect(r.dtype.name).toBe(c.mlx.dtype);
        expect([...r.shape]).toEqual(c.mlx.shape);
        if ("sha256" in c.mlx) {
          expect(`${what}: ${sha256(bytesOf(r))}`).toBe(`${what}: ${c.mlx.sha256}`);
        } else {
          const exact = exactProduct(a, b);
          expectWithinBound(r, exact, what);
          expectWithinBound(arrayOf(c.mlx), exact, `MLX's ${what}`);
        }
        n++;
      }
      expect(n).toBeGreaterThan(5);
    });
  }

  test("the method form and a 1-D @ 1-D scalar", () => {
    const a = mx.array([1, 2, 3], mx.float32);
    expect(a.matmul(a).item()).toBe(14);
    expect(mx.matmul(a, a).shape).toEqual([]);
  });

  test("a float16 product accumulates in float32 (a sum float16 steps would lose)", () => {
    // 4096 ones: every partial sum past 2048 is lost in float16 steps; float32 accumulation keeps it.
    const a = mx.ones([1, 4096], mx.float16);
    const b = mx.ones([4096, 1], mx.float16);
    expect(mx.matmul(a, b).item()).toBe(4096);
  });
});

describe("addmm against MLX", () => {
  test("alpha, beta, broadcast c, promotion", () => {
    for (const c of fx.addmm) {
      const cc = arrayOf(c.c);
      const a = arrayOf(c.a);
      const b = arrayOf(c.b);
      const r = mx.addmm(cc, a, b, { alpha: c.alpha, beta: c.beta });
      expect(r.dtype.name).toBe(c.mlx.dtype);
      expect([...r.shape]).toEqual(c.mlx.shape);
      // Exact: alpha * (a @ b) + beta * c in float64.
      const p = exactProduct(a, b);
      const cv = complexValues(mx.broadcastTo(cc, r.shape));
      const exact = {
        re: p.re.map((x, i) => c.alpha * x + c.beta * cv[i]![0]),
        im: p.im.map((x, i) => c.alpha * x + c.beta * cv[i]![1]),
        scale: p.scale.map((s, i) => Math.abs(c.alpha) * s + Math.abs(c.beta) * Math.hypot(cv[i]![0], cv[i]![1])),
        k: p.k + 1,
      };
      expectWithinBound(r, exact, `addmm ${JSON.stringify(c.c.shape)} ${JSON.stringify(a.shape)} ${JSON.stringify(b.shape)}`);
      expectWithinBound(arrayOf(c.mlx), exact, "MLX's addmm");
    }
  });

  test("defaults alpha = beta = 1", () => {
    const r = mx.addmm(mx.ones([2, 2]), mx.eye(2), mx.full([2, 2], 3));
    expect(r.tolist()).toEqual([[4, 4], [4, 4]]);
  });
});

describe("tensordot, inner, outer, vecdot, kron against MLX", () => {
  test("every recorded case", () => {
    for (const c of fx.composed) {
      const args = c.args.map(arrayOf);
      const [a, b] = [args[0]!, args[1]!];
      const r =
        c.op === "tensordot" ? mx.tensordot(a, b, c.kw.axes as number | [number[], number[]]) :
        c.op === "inner" ? mx.inner(a, b) :
        c.op === "outer" ? mx.outer(a, b) :
        c.op === "vecdot" ? mx.vecdot(a, b, c.kw.axis === undefined ? {} : { axis: c.kw.axis }) :
        mx.kron(a, b);
      const what = `${c.op} ${c.args.map((x) => `${x.dtype}${JSON.stringify(x.shape)}`).join(" ")} ${JSON.stringify(c.kw)}`;
      expect(`${what}: ${r.dtype.name} ${JSON.stringify(r.shape)}`).toBe(`${what}: ${c.mlx.dtype} ${JSON.stringify(c.mlx.shape)}`);
      const got = numbersOf(bytesOf(r), r.dtype.name);
      const want = numbersOf(fromHex(c.mlx.hex), c.mlx.dtype);
      // Integer results are exact; float results are sums of a few products (rounding only).
      for (let i = 0; i < want.length; i++) {
        const tol = r.dtype.name === "int32" ? 0 : 1e-5 * (1 + Math.abs(want[i]!));
        if (!(Math.abs(got[i]! - want[i]!) <= tol)) throw new Error(`${what}: element ${i} is ${got[i]}, MLX ${want[i]}`);
      }
    }
  });
});

describe("errors as MLX gives them", () => {
  test("every recorded error", () => {
    for (const c of fx.errors) {
      const z = (i: number) => mx.zeros(c.shapes[i]!, c.dtypes[i]!);
      const call = () => {
        switch (c.op) {
          case "matmul": return mx.matmul(z(0), z(1));
          case "addmm": return mx.addmm(z(0), z(1), z(2));
          case "tensordot": return mx.tensordot(z(0), z(1), c.kw.axes as number | [number[], number[]]);
          case "inner": return mx.inner(z(0), z(1));
          case "vecdot": return mx.vecdot(z(0), z(1), c.kw.axis === undefined ? {} : { axis: c.kw.axis });
          case "kron": return mx.kron(z(0), z(1));
          default: throw new Error(`unknown op ${c.op}`);
        }
      };
      const escaped = c.message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      expectMlxError(call, new RegExp(`^${escaped}$`));
    }
  });
});

interface EinsumCase {
  eq: string;
  args: Rec[];
  mlx?: Rec;
  error?: string;
  path: number[][];
  report: string;
}
const einsumCases = (fx as unknown as { einsum: EinsumCase[] }).einsum;
const einsumErrors = (fx as unknown as { einsum_errors: { eq: string; shapes: number[][]; path?: boolean; message: string }[] }).einsum_errors;

describe("einsum and einsumPath against MLX", () => {
  test("values, and MLX's failures (integer contractions go through matmul)", () => {
    expect(einsumCases.length).toBeGreaterThan(50);
    for (const c of einsumCases) {
      const args = c.args.map(arrayOf);
      const what = `einsum("${c.eq}") on ${c.args.map((a) => `${a.dtype}${JSON.stringify(a.shape)}`).join(", ")}`;
      if (c.error !== undefined) {
        const escaped = c.error.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        expectMlxError(() => mx.einsum(c.eq, ...args), new RegExp(`^${escaped}$`));
        continue;
      }
      const r = mx.einsum(c.eq, ...args);
      expect(`${what}: ${r.dtype.name} ${JSON.stringify(r.shape)}`).toBe(`${what}: ${c.mlx!.dtype} ${JSON.stringify(c.mlx!.shape)}`);
      const got = numbersOf(bytesOf(r), r.dtype.name);
      const want = numbersOf(fromHex(c.mlx!.hex), c.mlx!.dtype);
      for (let i = 0; i < want.length; i++) {
        const tol = r.dtype.name === "int32" ? 0 : 1e-4 * (1 + Math.abs(want[i]!));
        if (!(Math.abs(got[i]! - want[i]!) <= tol)) throw new Error(`${what}: element ${i} is ${got[i]}, MLX ${want[i]}`);
      }
    }
  });

  test("the contraction path and its report", () => {
    for (const c of einsumCases) {
      const [path, report] = mx.einsumPath(c.eq, ...c.args.map(arrayOf));
      expect(`${c.eq}: ${JSON.stringify(path)}`).toBe(`${c.eq}: ${JSON.stringify(c.path)}`);
      expect(report).toBe(c.report);
    }
  });

  test("bad subscripts give MLX's messages (einsumPath under its own name)", () => {
    expect(einsumErrors.filter((c) => c.path).length).toBeGreaterThan(2);
    for (const c of einsumErrors) {
      const escaped = c.message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const ops = c.shapes.map((s) => mx.zeros(s));
      expectMlxError(() => (c.path ? mx.einsumPath(c.eq, ...ops) : mx.einsum(c.eq, ...ops)), new RegExp(`^${escaped}$`));
    }
  });
});

interface VjpCase {
  op: "matmul" | "addmm" | "tensordot" | "inner" | "einsum";
  kw: { alpha?: number; beta?: number; axes?: number; eq?: string };
  primals: Rec[];
  cotangent: Rec;
  grads: Rec[];
}
const vjpCases = (fx as unknown as { vjp: VjpCase[] }).vjp;

describe("vjp against MLX's", () => {
  test("real and complex (the cotangent meets the other operand's conjugate transpose)", () => {
    expect(vjpCases.filter((c) => c.primals[0]!.dtype === "complex64").length).toBeGreaterThan(5);
    for (const c of vjpCases) {
      const f = (...p: mx.Array[]): mx.Array => {
        switch (c.op) {
          case "matmul": return mx.matmul(p[0]!, p[1]!);
          case "addmm": return mx.addmm(p[0]!, p[1]!, p[2]!, { alpha: c.kw.alpha!, beta: c.kw.beta! });
          case "tensordot": return mx.tensordot(p[0]!, p[1]!, c.kw.axes!);
          case "inner": return mx.inner(p[0]!, p[1]!);
          case "einsum": return mx.einsum(c.kw.eq!, p[0]!, p[1]!);
        }
      };
      const [, grads] = mx.vjp(f, c.primals.map(arrayOf), [arrayOf(c.cotangent)]);
      expect(grads.length).toBe(c.grads.length);
      grads.forEach((g, i) => {
        const what = `${c.op} ${c.primals.map((p) => `${p.dtype}${JSON.stringify(p.shape)}`).join(" ")} grad ${i}`;
        const want = c.grads[i]!;
        expect(`${what}: ${g.dtype.name} ${JSON.stringify(g.shape)}`).toBe(`${what}: ${want.dtype} ${JSON.stringify(want.shape)}`);
        const got = numbersOf(bytesOf(g), g.dtype.name);
        const exp = numbersOf(fromHex(want.hex), want.dtype);
        for (let j = 0; j < exp.length; j++) {
          if (!(Math.abs(got[j]! - exp[j]!) <= 1e-5 * (1 + Math.abs(exp[j]!)))) throw new Error(`${what}: value ${j} is ${got[j]}, MLX ${exp[j]}`);
        }
      });
    }
  });
});
