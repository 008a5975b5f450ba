// Convolutions against real MLX: conv1d/2d/3d, conv_transpose1d/2d/3d, conv_general (strides,
// asymmetric and negative padding, kernel and input dilation, groups, flip), convolve (full, same,
// valid), every real floating dtype and mixed dtypes, their vjps (MLX's gradients), vmap against
// a loop, second derivatives against finite differences, and MLX's error messages. Inputs and
// MLX's results come from test/fixtures/conv/conv.json.gz (made by gen_conv.py from MLX 0.32.4).
// Sums are not bit-exact across implementations, so values compare within a tolerance of a few
// units of the dtype's precision, scaled by the result's magnitude.
import { describe, expect, test } from "bun:test";
import { lib } from "../ffi/lib";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, loadFixture, numbersOf, type Rec } from "./fixture";

type Kw = Record<string, number | boolean | number[] | number[][]>;
interface ConvCase {
  op: string;
  kw: Kw;
  x: Rec;
  w: Rec;
  mlx: Rec;
  /** float64 cases: the exact result (a NumPy float64 loop) */
  exact?: Rec;
  mlx_vjp_wrong_shape?: boolean;
  cotangent?: Rec;
  grad_x?: Rec;
  grad_w?: Rec;
}
interface ConvolveCase {
  mode: mx.ConvolveMode;
  a: Rec;
  v: Rec;
  mlx: Rec;
  exact?: Rec;
}
interface ErrorCase {
  op: string;
  shapes: number[][];
  dtypes: mx.DtypeName[];
  kw: Kw;
  message: string;
}
const fx = loadFixture<{ mlx_version: string; conv: ConvCase[]; convolve: ConvolveCase[]; errors: ErrorCase[] }>("conv/conv.json.gz");

const camel: Record<string, string> = {
  output_padding: "outputPadding",
  kernel_dilation: "kernelDilation",
  input_dilation: "inputDilation",
};

function options(kw: Kw): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kw)) o[camel[k] ?? k] = v;
  return o;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyConv = (x: mx.Array, w: mx.Array, o?: any) => mx.Array;
const fns: Record<string, AnyConv> = {
  conv1d: mx.conv1d,
  conv2d: mx.conv2d,
  conv3d: mx.conv3d,
  conv_transpose1d: mx.convTranspose1d,
  conv_transpose2d: mx.convTranspose2d,
  conv_transpose3d: mx.convTranspose3d,
  conv_general: mx.convGeneral,
};

function call(op: string, x: mx.Array, w: mx.Array, kw: Kw): mx.Array {
  return fns[op]!(x, w, options(kw));
}

// MLX computes float64 convolutions at float32 precision (checked against a NumPy float64 loop),
// so float64 compares with MLX at float32's tolerance and with the exact result at float64's.
const rtol: Record<string, number> = { float32: 2e-5, float64: 2e-5, float16: 2e-3, bfloat16: 1.6e-2 };

/** ours within rtol * max(1, max |want|) of want, elementwise; same shape and dtype. */
function expectClose(got: mx.Array, want: Rec, label: string, tolerance?: number): void {
  expect(got.shape).toEqual(want.shape);
  expect(got.dtype.name).toBe(want.dtype);
  const a = numbersOf(bytesOf(got), got.dtype.name);
  const b = numbersOf(bytesOf(arrayOf(want)), want.dtype);
  const scale = Math.max(1, ...b.map(Math.abs));
  const tol = (tolerance ?? rtol[want.dtype]!) * scale * 4;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  if (!(worst <= tol)) throw new Error(`${label}: max |ours - mlx| = ${worst} > ${tol}`);
}

function label(c: { op: string; kw: Kw }, x: Rec, w: Rec): string {
  return `${c.op}(${JSON.stringify(x.shape)} ${x.dtype}, ${JSON.stringify(w.shape)} ${w.dtype}, ${JSON.stringify(c.kw)})`;
}

describe("convolutions vs MLX " + fx.mlx_version, () => {
  for (const c of fx.conv) {
    test(label(c, c.x, c.w), () => {
      const x = arrayOf(c.x);
      const w = arrayOf(c.w);
      const y = call(c.op, x, w, c.kw);
      expectClose(y, c.mlx, "value");
      if (c.exact) expectClose(y, c.exact, "exact float64", 1e-14);
    });
  }

  test("a strided (transposed) input and weight give the same result", () => {
    const c = fx.conv.find((k) => k.op === "conv2d" && k.kw.groups === 2)!;
    const x = arrayOf(c.x);
    const w = arrayOf(c.w);
    // Build the same values as non-contiguous views.
    const xv = mx.transpose(mx.contiguous(mx.transpose(x, [0, 2, 1, 3])), [0, 2, 1, 3]);
    const wv = mx.transpose(mx.contiguous(mx.transpose(w, [3, 1, 2, 0])), [3, 1, 2, 0]);
    expectClose(call(c.op, xv, wv, c.kw), c.mlx, "strided");
  });
});

describe("convolution vjps vs MLX", () => {
  for (const c of fx.conv.filter((k) => k.cotangent)) {
    test(label(c, c.x, c.w), () => {
      const x = arrayOf(c.x);
      const w = arrayOf(c.w);
      const [outs, grads] = mx.vjp((a: mx.Array, b: mx.Array) => call(c.op, a, b, c.kw), [x, w], [arrayOf(c.cotangent!)]);
      expectClose(outs[0]!, c.mlx, "value");
      // Where MLX's own vjp has the wrong shape (transposed convolutions with output padding),
      // the fixture holds the exact vjp from MLX's forward on basis vectors.
      expectClose(grads[0]!, c.grad_x!, c.mlx_vjp_wrong_shape ? "grad input (exact)" : "grad input");
      expectClose(grads[1]!, c.grad_w!, "grad weight");
    });
  }
});

// The fixtures' convolutions have few input channels; with 16 or more per group the weight
// gradient's convolution (input channels as its batch, read as a transposed view) packs its rows
// batch-inner, and both gradients read their weight operand as a strided view. The engine's
// reference loops (primitives.reference_mode: the plain convolution loop) are the oracle.
describe("gradients through the batch-inner and strided-weight kernel paths vs the reference loops", () => {
  const cases: { name: string; x: number[]; w: number[]; dtype: mx.Dtype; f: (x: mx.Array, w: mx.Array) => mx.Array }[] = [
    { name: "conv2d 32 channels, padding 1", x: [3, 9, 8, 32], w: [20, 3, 3, 32], dtype: mx.float32, f: (x, w) => mx.conv2d(x, w, { padding: 1 }) },
    { name: "conv2d stride 2, groups 2 (24 per group)", x: [2, 11, 10, 48], w: [10, 3, 2, 24], dtype: mx.float32, f: (x, w) => mx.conv2d(x, w, { stride: 2, padding: [1, 0], groups: 2 }) },
    { name: "conv1d dilation 2, 17 channels (a partial panel)", x: [5, 30, 17], w: [9, 4, 17], dtype: mx.float32, f: (x, w) => mx.conv1d(x, w, { dilation: 2, padding: 3 }) },
    { name: "conv_general input dilation and flip", x: [2, 7, 6, 16], w: [8, 2, 3, 16], dtype: mx.float32, f: (x, w) => mx.convGeneral(x, w, { stride: [1, 2], padding: [[1, 0], [2, 1]], inputDilation: [2, 1], flip: true }) },
    { name: "conv3d", x: [2, 4, 5, 4, 16], w: [6, 2, 3, 2, 16], dtype: mx.float32, f: (x, w) => mx.conv3d(x, w, { padding: 1 }) },
    { name: "conv2d float16", x: [2, 8, 8, 32], w: [12, 3, 3, 32], dtype: mx.float16, f: (x, w) => mx.conv2d(x, w, { padding: 1 }) },
    { name: "conv2d bfloat16", x: [2, 6, 6, 16], w: [40, 3, 3, 16], dtype: mx.bfloat16, f: (x, w) => mx.conv2d(x, w, { padding: 1 }) },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const key = mx.random.key(11);
      const [k1, k2, k3] = mx.random.split(key, 3);
      const x = mx.random.normal(c.x, { key: k1 }).astype(c.dtype);
      const w = mx.random.normal(c.w, { key: k2 }).multiply(0.2).astype(c.dtype);
      const y = c.f(x, w);
      const ct = mx.random.normal(y.shape, { key: k3 }).astype(c.dtype);
      mx.eval(x, w, ct);
      const grads = () => {
        const g = mx.vjp(c.f, [x, w], [ct])[1];
        mx.eval(...g);
        return g.map((a) => numbersOf(bytesOf(a), a.dtype.name));
      };
      const got = grads();
      lib.mlxb_set_reference_mode(1);
      let want: number[][];
      try {
        want = grads();
      } finally {
        lib.mlxb_set_reference_mode(0);
      }
      // Both accumulate in float32 and round once: half types differ by their last bit at most.
      const tol = c.dtype === mx.float32 ? 1e-4 : c.dtype === mx.float16 ? 4e-3 : 2e-2;
      for (const i of [0, 1]) {
        const a = got[i]!;
        const b = want[i]!;
        expect(a.length).toBe(b.length);
        const scale = Math.max(1, ...b.map(Math.abs));
        let worst = 0;
        for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j]! - b[j]!));
        expect(worst).toBeLessThanOrEqual(tol * scale);
      }
    });
  }
});

/** Finite-difference check of d/dp sum(r * f(p)) in float64, central differences. */
function finiteDiff(f: (p: mx.Array) => mx.Array, p: mx.Array, g: mx.Array, count = 6): void {
  const flat = p.reshape([-1]);
  const n = flat.size;
  const gv = g.reshape([-1]).tolist() as number[];
  const h = 1e-4;
  for (let t = 0; t < count; t++) {
    const i = (t * 7919) % n;
    const e = mx.zeros([n], mx.float64).at(i).set(h).reshape(p.shape);
    const up = (mx.sum(f(mx.add(p, e))).item() as number);
    const dn = (mx.sum(f(mx.subtract(p, e))).item() as number);
    const fd = (up - dn) / (2 * h);
    expect(Math.abs(fd - gv[i]!)).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
  }
}

describe("second derivatives (the vjp rules are convolutions)", () => {
  const key = mx.random.key(7);
  const ks = mx.random.split(key, 3);
  const [k1, k2, k3] = [ks.index(0), ks.index(1), ks.index(2)];
  const x = mx.random.normal([2, 7, 6, 4], { key: k1 }).astype(mx.float64);
  const w = mx.random.normal([4, 3, 2, 2], { key: k2 }).astype(mx.float64);
  const r = mx.random.normal([2, 7, 6, 4], { key: k3 }).astype(mx.float64);
  const kw = { stride: [2, 1], padding: [[1, 0], [1, 1]], kernelDilation: [1, 2], inputDilation: [2, 1], groups: 2, flip: true } as const;
  const conv = (a: mx.Array, b: mx.Array) => mx.convGeneral(a, b, { ...kw, stride: [...kw.stride], padding: [[...kw.padding[0]], [...kw.padding[1]]], kernelDilation: [...kw.kernelDilation], inputDilation: [...kw.inputDilation] });
  // Cubes, not sin: elementwise transcendental functions compute float64 at float32 precision (as
  // MLX), too coarse for finite differences; products are exact enough.
  const cube = (y: mx.Array) => mx.multiply(y, mx.multiply(y, y));
  const f = (a: mx.Array, b: mx.Array) => mx.sum(cube(conv(a, b)));
  // h(x, w) = <grad_x f(x, w), r>: its gradients need the vjp of the vjp.
  const h = (a: mx.Array, b: mx.Array) => mx.sum(mx.multiply(mx.grad(f)(a, b) as mx.Array, r));

  test("first derivatives match finite differences", () => {
    const [gx, gw] = mx.grad(f, { argnums: [0, 1] })(x, w) as mx.Array[];
    finiteDiff((p) => cube(conv(p, w)), x, gx!);
    finiteDiff((p) => cube(conv(x, p)), w, gw!);
  });
  test("grad of grad matches finite differences", () => {
    const [hx, hw] = mx.grad(h, { argnums: [0, 1] })(x, w) as mx.Array[];
    finiteDiff((p) => mx.multiply(mx.grad(f)(p, w) as mx.Array, r), x, hx!, 4);
    finiteDiff((p) => mx.multiply(mx.grad(f)(x, p) as mx.Array, r), w, hw!, 4);
  });
});

describe("vmap of convolutions equals a loop", () => {
  const key = mx.random.key(3);
  const ks = mx.random.split(key, 2);
  const [k1, k2] = [ks.index(0), ks.index(1)];
  const X = mx.random.normal([3, 2, 6, 5, 4], { key: k1 });
  const W = mx.random.normal([3, 6, 3, 2, 2], { key: k2 });
  const f = (x: mx.Array, w: mx.Array) => mx.conv2d(x, w, { stride: [2, 1], padding: 1, groups: 2 });
  const loop = (get: (i: number) => mx.Array) => mx.stack([0, 1, 2].map(get));
  test("batched input", () => {
    const want = loop((i) => f(X.index(i), W.index(0)));
    const got = mx.vmap(f, { inAxes: [0, null] })(X, W.index(0));
    expect(mx.allclose(got, want, { rtol: 1e-5, atol: 1e-5 }).item()).toBe(true);
  });
  test("batched weight", () => {
    const want = loop((i) => f(X.index(0), W.index(i)));
    const got = mx.vmap(f, { inAxes: [null, 0] })(X.index(0), W);
    expect(mx.allclose(got, want, { rtol: 1e-5, atol: 1e-5 }).item()).toBe(true);
  });
  test("both batched, batch axis not first", () => {
    const want = loop((i) => f(X.index(i), W.index(i)));
    const Xm = mx.moveaxis(X, 0, 2);
    const got = mx.vmap(f, { inAxes: [2, 0], outAxes: 1 })(Xm, W);
    expect(mx.allclose(mx.moveaxis(got, 1, 0), want, { rtol: 1e-5, atol: 1e-5 }).item()).toBe(true);
  });
  test("vmap of a transposed convolution and of its grad", () => {
    const g = (x: mx.Array, w: mx.Array) => mx.convTranspose1d(x, w, { stride: 2, outputPadding: 1 });
    const xs = X.reshape([3, 2, 30, 4]);
    const w0 = mx.random.normal([5, 3, 4], { key: k2 });
    const want = loop((i) => g(xs.index(i), w0));
    const got = mx.vmap(g, { inAxes: [0, null] })(xs, w0);
    expect(mx.allclose(got, want, { rtol: 1e-5, atol: 1e-5 }).item()).toBe(true);
    const dg = mx.grad((x: mx.Array, w: mx.Array) => mx.sum(mx.square(g(x, w))), { argnums: 1 });
    const want2 = loop((i) => dg(xs.index(i), w0) as mx.Array);
    const got2 = mx.vmap(dg, { inAxes: [0, null] })(xs, w0) as mx.Array;
    expect(mx.allclose(got2, want2, { rtol: 1e-4, atol: 1e-4 }).item()).toBe(true);
  });
});

describe("convolve vs MLX", () => {
  for (const c of fx.convolve) {
    test(`convolve(${c.a.shape} ${c.a.dtype}, ${c.v.shape}, ${c.mode})`, () => {
      const y = mx.convolve(arrayOf(c.a), arrayOf(c.v), c.mode);
      expectClose(y, c.mlx, "convolve");
      if (c.exact) expectClose(y, c.exact, "exact float64", 1e-14);
    });
  }
});

describe("empty and edge shapes (MLX crashes on these; we do not)", () => {
  test("zero batch, zero input channels, zero output channels", () => {
    expect(mx.conv1d(mx.ones([0, 5, 2]), mx.ones([3, 3, 2])).shape).toEqual([0, 3, 3]);
    expect(mx.conv1d(mx.ones([1, 5, 0]), mx.ones([3, 3, 0])).tolist()).toEqual([[[0, 0, 0], [0, 0, 0], [0, 0, 0]]]);
    expect(mx.conv1d(mx.ones([1, 5, 2]), mx.ones([0, 3, 2])).shape).toEqual([1, 3, 0]);
  });
  test("groups must be positive", () => {
    expect(() => mx.conv1d(mx.ones([1, 5, 2]), mx.ones([3, 3, 2]), { groups: 0 })).toThrow("[conv] The number of groups must be positive. Got 0 groups.");
  });
});

describe("errors: MLX's messages", () => {
  for (const c of fx.errors) {
    test(`${c.op}(${JSON.stringify(c.shapes)} ${c.dtypes}, ${JSON.stringify(c.kw)})`, () => {
      const xs = c.shapes.map((s, i) => mx.ones(s, c.dtypes[i]!));
      let caught: unknown;
      try {
        if (c.op === "convolve") mx.convolve(xs[0]!, xs[1]!, (c.kw.mode as unknown as mx.ConvolveMode | undefined) ?? "full");
        else call(c.op, xs[0]!, xs[1]!, c.kw);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(mx.MlxError);
      expect((caught as Error).message).toBe(c.message);
    });
  }
});
