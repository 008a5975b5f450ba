// Function transforms: every differentiable op's vjp (through grad) against central finite
// differences in float64, jvp against the same, the vjp/jvp consistency <vjp(u), v> = <u, jvp(v)>,
// higher-order derivatives, trees of arguments, stop_gradient, and MLX's errors.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { expectMlxError } from "./util.ts";

type F = (x: mx.Array) => mx.Array;

function values(a: mx.Array): number[] {
  return Array.from(a.astype(mx.float64).toTypedArray() as Float64Array);
}

/** Central differences of sum(w * f(x)) at x (float64), w fixed weights so every output counts. */
// h = 1e-3: MLX (and so mlx-bun) computes float64 transcendentals in float32 precision, so a
// smaller step would drown in rounding; the truncation error is O(h^2).
function numericGrad(f: F, x0: number[], shape: number[], h = 1e-3): number[] {
  const w = (n: number) => mx.array(Array.from({ length: n }, (_, i) => 1 + 0.25 * i), mx.float64);
  const total = (xs: number[]) => {
    const y = f(mx.array(xs, mx.float64).reshape(shape));
    return mx.sum(mx.multiply(y.astype(mx.float64), w(y.size).reshape(y.shape))).item() as number;
  };
  return x0.map((_, i) => {
    const up = [...x0];
    const dn = [...x0];
    up[i]! += h;
    dn[i]! -= h;
    return (total(up) - total(dn)) / (2 * h);
  });
}

function analyticGrad(f: F, x0: number[], shape: number[]): number[] {
  const g = mx.grad((x: mx.Array) => {
    const y = f(x);
    const w = mx.array(Array.from({ length: y.size }, (_, i) => 1 + 0.25 * i), mx.float64).reshape(y.shape);
    return mx.sum(mx.multiply(y.astype(mx.float64), w));
  })(mx.array(x0, mx.float64).reshape(shape)) as mx.Array;
  return values(g);
}

function expectClose(got: number[], want: number[], tol = 1e-3, what = "") {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    const w = want[i]!;
    if (!(Math.abs(g - w) <= tol * Math.max(1, Math.abs(w)))) throw new Error(`${what}: element ${i}: got ${g}, want ${w}\n got ${got}\nwant ${want}`);
  });
}

function checkGrad(name: string, f: F, x0: number[], shape = [x0.length], tol = 1e-3) {
  mx.tidy(() => expectClose(analyticGrad(f, x0, shape), numericGrad(f, x0, shape), tol, name));
}

const inUnit = [-0.7, -0.2, 0.3, 0.6];
const positive = [0.4, 0.9, 1.7, 3.2];
const general = [-1.3, -0.4, 0.5, 1.1];
const aboveOne = [1.2, 1.8, 2.5, 4.0];

const unaryCases: [string, F, number[]][] = [
  ["abs", mx.abs, general], ["negative", mx.negative, general], ["square", mx.square, general], ["sqrt", mx.sqrt, positive],
  ["rsqrt", mx.rsqrt, positive], ["reciprocal", mx.reciprocal, general], ["exp", mx.exp, general], ["expm1", mx.expm1, general],
  ["erf", mx.erf, general], ["erfinv", mx.erfinv, inUnit], ["sin", mx.sin, general], ["cos", mx.cos, general], ["tan", mx.tan, inUnit],
  ["arcsin", mx.arcsin, inUnit], ["arccos", mx.arccos, inUnit], ["arctan", mx.arctan, general], ["sinh", mx.sinh, general],
  ["cosh", mx.cosh, general], ["tanh", mx.tanh, general], ["arcsinh", mx.arcsinh, general], ["arccosh", mx.arccosh, aboveOne],
  ["arctanh", mx.arctanh, inUnit], ["degrees", mx.degrees, general], ["radians", mx.radians, general], ["log", mx.log, positive],
  ["log2", mx.log2, positive], ["log10", mx.log10, positive], ["log1p", mx.log1p, positive], ["sigmoid", mx.sigmoid, general],
];

describe("vjp of unary ops against finite differences (float64)", () => {
  for (const [name, f, x0] of unaryCases) test(name, () => checkGrad(name, f, x0));
  test("piecewise-constant ops have zero gradient", () => {
    for (const f of [mx.sign, mx.floor, mx.ceil, mx.trunc, (x: mx.Array) => mx.round(x)]) {
      expect(analyticGrad(f, general, [4])).toEqual([0, 0, 0, 0]);
    }
  });
});

const binaryCases: [string, (a: mx.Array, b: mx.Array) => mx.Array, number[], number[]][] = [
  ["add", mx.add, general, positive], ["subtract", mx.subtract, general, positive], ["multiply", mx.multiply, general, positive],
  ["divide", mx.divide, general, positive], ["power", mx.power, positive, general], ["maximum", mx.maximum, general, [0, 0, 0, 2]],
  ["minimum", mx.minimum, general, [0, 0, 0, 2]], ["logaddexp", mx.logaddexp, general, positive], ["arctan2", mx.arctan2, general, positive],
  ["remainder", mx.remainder, [2.3, -3.7, 4.1, 7.3], [1.5, 2.0, -1.5, 2.5]],
];

describe("vjp of binary ops against finite differences, each argument, with broadcasting", () => {
  for (const [name, f, a0, b0] of binaryCases) {
    test(name, () => {
      checkGrad(`${name} (a)`, (a) => f(a, mx.array(b0, mx.float64)), a0);
      checkGrad(`${name} (b)`, (b) => f(mx.array(a0, mx.float64), b), b0);
      // b broadcast along a new leading axis and a size-1 axis.
      checkGrad(`${name} (broadcast b)`, (b) => f(mx.array([...a0, ...a0], mx.float64).reshape([2, 4]), b.reshape([1, 4])), b0);
      checkGrad(`${name} (broadcast a)`, (a) => f(a.reshape([4, 1]), mx.array(b0, mx.float64).reshape([1, 4])), a0);
    });
  }
  test("where", () => {
    const c = mx.array([true, false, true, false]);
    checkGrad("where x", (x) => mx.where(c, x, mx.array(positive, mx.float64)), general);
    checkGrad("where y", (y) => mx.where(c, mx.array(positive, mx.float64), y), general);
  });
});

describe("vjp of reductions, shapes and indexing against finite differences", () => {
  const B34 = mx.array([0.5, -1, 2, 0.25, 1.5, 0.75, -0.5, 1, -2, 0.3, 0.6, 1.2], mx.float64).reshape([3, 4]);
  const A42 = mx.array([1.1, -0.3, 0.7, 2.0, -1.4, 0.2, 0.9, -0.8], mx.float64).reshape([4, 2]);
  const C24 = mx.array([0.1, 0.2, 0.3, 0.4], mx.float64);
  const x6 = [0.3, -1.2, 2.1, 0.8, -0.5, 1.6];
  const cases: [string, F][] = [
    ["sum all", (x) => mx.sum(x)], ["sum axis 0", (x) => mx.sum(x, { axis: 0 })], ["sum keepdims", (x) => mx.sum(x, { axis: 1, keepdims: true })],
    ["mean", (x) => mx.mean(x, { axis: 1 })], ["prod", (x) => mx.prod(x, { axis: 1 })], ["max", (x) => mx.max(x, { axis: 0 })],
    ["min", (x) => mx.min(x)], ["logsumexp", (x) => mx.logsumexp(x, { axis: 1 })], ["logsumexp axis 0", (x) => mx.logsumexp(x, { axis: 0 })],
    ["var", (x) => mx.var(x, { axis: 1 })], ["std", (x) => mx.std(x)], ["softmax", (x) => mx.softmax(x, { axis: 1 })],
    ["reshape", (x) => x.reshape([3, 2]).multiply(x.reshape([3, 2]))], ["transpose", (x) => mx.multiply(x.transpose(), mx.arange(6, { dtype: mx.float64 }).reshape([3, 2]))],
    ["slice", (x) => x.index(mx.sl(), mx.sl(null, null, 2)).square()], ["negative step", (x) => x.index(mx.sl(null, null, -1), 1).exp()],
    ["int index", (x) => x.index(1).square()], ["concatenate", (x) => mx.concatenate([x, x.square()], 1)],
    ["broadcastTo", (x) => mx.broadcastTo(x.index(0), [4, 3]).sin()], ["expandDims/squeeze", (x) => mx.squeeze(mx.expandDims(x, 0)).exp()],
    ["astype", (x) => x.astype(mx.float32).astype(mx.float64).square()], ["take", (x) => mx.take(x, mx.array([5, 0, 0, 3]))],
    ["take axis", (x) => mx.take(x, mx.array([2, 2, 0]), 1).square()], ["advanced index", (x) => x.index(mx.array([1, 0, 1]), mx.array([2, 2, 0])).exp()],
    ["takeAlongAxis", (x) => mx.takeAlongAxis(x, mx.array([[2, 0], [1, 1]]), 1).square()], ["sort", (x) => mx.sort(x, 1).multiply(mx.array([1, 2, 3], mx.float64))],
    ["cumsum", (x) => mx.cumsum(x, 1)], ["cumsum reverse", (x) => mx.cumsum(x, 0, { reverse: true })],
    ["cummax", (x) => mx.cummax(x, 1).square()], ["cummin reverse", (x) => mx.cummin(x, 1, { reverse: true }).square()],
    ["cummax flattened", (x) => mx.cummax(x).exp()], ["sort flattened", (x) => mx.sort(x, null).multiply(mx.arange(6, { dtype: mx.float64 }))],
    ["partition", (x) => mx.partition(x, 1, 1).square()], ["topk", (x) => mx.topk(x, 2, 1).exp()],
    ["tril", (x) => mx.tril(x.reshape([3, 2]).square())],
    ["pad", (x) => mx.pad(x, [[1, 0], [2, 1]]).exp()], ["roll", (x) => mx.roll(x, [1, -1], [0, 1]).multiply(mx.arange(6, { dtype: mx.float64 }).reshape([2, 3]))],
    ["at set (a)", (x) => x.at(mx.array([1, 1]), mx.sl(0, 2)).set(mx.array([[5, 6]], mx.float64)).square()],
    ["at set (value)", (x) => mx.zeros([4, 3], mx.float64).at(mx.array([3, 0])).set(x.exp())],
    ["at add", (x) => x.at(mx.array([0, 0]), mx.array([2, 2])).add(x.index(1, mx.sl(0, 2)).square()).square()],
    ["putAlongAxis", (x) => mx.putAlongAxis(x.square(), mx.array([[0], [2]]), x.index(mx.sl(), mx.sl(1, 2)).exp(), 1)],
    ["diagonal", (x) => mx.diagonal(x, 1).exp()], ["trace", (x) => mx.trace(x.reshape([3, 2]).square())],
    ["mask set (a)", (x) => x.at(mx.array([[true, false, true], [false, false, true]])).set(0).square()],
    ["mask set (source)", (x) => mx.zeros([2, 3], mx.float64).at(mx.array([[true, false, true], [false, true, false]])).set(x.exp())],
    ["mask set (one-element source)", (x) => x.square().at(mx.array([[true, false, true], [false, true, false]])).set(mx.sum(x))],
    ["matmul (a)", (x) => mx.matmul(x, B34)], ["matmul (b)", (x) => mx.matmul(A42, x)],
    ["matmul batched, broadcast", (x) => mx.matmul(x.reshape([2, 1, 3]), mx.stack([B34, B34.square()]).reshape([2, 1, 3, 4]))],
    ["matmul 1-D", (x) => mx.matmul(x.index(0), x.reshape([3, 2]))], ["matmul transposed view", (x) => mx.matmul(x.transpose(), x)],
    ["addmm (a)", (x) => mx.addmm(C24, x, B34, { alpha: 0.5, beta: -2 })], ["addmm (c)", (x) => mx.addmm(x.index(0), A42.transpose(), B34.transpose(), { beta: 3 })],
    ["einsum", (x) => mx.einsum("ij,jk,ij->k", x, B34, x.sin())],
    ["tensordot", (x) => mx.tensordot(x, x.reshape([3, 2]), 1)], ["outer", (x) => mx.outer(x, B34.index(0))], ["kron", (x) => mx.kron(x, A42)],
    ["inner", (x) => mx.inner(x, B34.transpose())], ["vecdot", (x) => mx.vecdot(x, x.exp())],
  ];
  const f64 = (v: number[][]) => mx.array(v, mx.float64);
  cases.push(
    ["cumprod", (x) => mx.cumprod(x, 1)], ["cumprod reverse", (x) => mx.cumprod(x, 0, { reverse: true })],
    ["cumprod exclusive", (x) => mx.cumprod(x, 1, { inclusive: false })],
    ["cumprod reverse exclusive", (x) => mx.cumprod(x, 1, { reverse: true, inclusive: false })],
    ["cumsum exclusive", (x) => mx.cumsum(x, 1, { inclusive: false }).square()],
    ["cummax exclusive", (x) => mx.cummax(x, 1, { inclusive: false }).index(mx.sl(), mx.sl(1)).square()], // (the first is -inf)
    ["cummin reverse exclusive", (x) => mx.cummin(x, 1, { reverse: true, inclusive: false }).index(mx.sl(), mx.sl(0, 2)).square()],
    ["logcumsumexp", (x) => mx.logcumsumexp(x, 1)], ["logcumsumexp reverse exclusive", (x) => mx.logcumsumexp(x, 1, { reverse: true, inclusive: false }).index(mx.sl(), mx.sl(0, 2))],
    ["at maximum (a)", (x) => x.at(mx.array([1, 0])).maximum(f64([[0.5, 0.5, 0.5]])).square()],
    ["at maximum (value)", (x) => f64([[0.5, 0.5, 0.5], [0, 0, 0]]).at(mx.array([0, 1])).maximum(x.exp())],
    ["at minimum", (x) => x.at(mx.array([0])).minimum(x.index(1).exp().reshape([1, 3])).square()],
    ["at multiply (a)", (x) => x.at(mx.array([1, 0])).multiply(f64([[2, -1, 3]])).square()],
    ["at multiply (value)", (x) => f64([[1.5, 2, -1], [0.5, 1, 2]]).at(mx.array([1, 0])).multiply(x)],
    ["at multiply (repeated index)", (x) => f64([[1.5, 2, -1]]).at(mx.array([0, 0])).multiply(x)],
    ["median axis 1 (odd count)", (x) => mx.median(x, { axis: 1 })], ["median all (even count)", (x) => mx.median(x)],
    ["median axis 0 keepdims (even count)", (x) => mx.median(x, { axis: 0, keepdims: true }).exp()],
    ["pad edge", (x) => mx.pad(x, [[1, 2], [2, 1]], "edge")], ["pad reflect", (x) => mx.pad(x, [[1, 1], [2, 2]], "reflect").square()],
    ["pad symmetric", (x) => mx.pad(x, [[2, 1], [3, 1]], "symmetric")],
    ["asStrided (overlapping windows)", (x) => mx.asStrided(x, [4, 3], [1, 1], 0).square()],
    ["asStrided (offset, transposed)", (x) => mx.asStrided(x.exp(), [2, 2], [1, 3], 1)],
  );
  for (const [name, f] of cases) test(name, () => checkGrad(name, f, x6, [2, 3]));
  test("cumprod with zeros among the elements", () => {
    checkGrad("one zero", (x) => mx.cumprod(x, 1), [0.3, 0, 2.1, 0.8, -0.5, 1.6], [2, 3]);
    checkGrad("two zeros, reverse", (x) => mx.cumprod(x, 0, { reverse: true }), [2, 0, 1.5, 0, 3, -1], [6]);
    checkGrad("exclusive, zero first", (x) => mx.cumprod(x, 0, { inclusive: false }), [0, 2, 1.5, 0.5, 3, -1], [6]);
  });
  test("jvp of cumprod against the derivative by hand (a newer MLX test asserts 224 last; by hand it is 184)", () => {
    // y4 = x0 x1 x2 x3 x4 = 24, and dy4 = sum_k t_k y4 / x_k = 1·12 + 2·24 + 3·12 + 4·12 + 5·8 = 184.
    const [, [t]] = mx.jvp((v: mx.Array) => mx.cumprod(v), [mx.array([2, 1, 2, 2, 3], mx.float32)], [mx.array([1, 2, 3, 4, 5], mx.float32)]);
    expect(Array.from(t!.toTypedArray() as Float32Array)).toEqual([1, 5, 16, 48, 184]);
  });
  test("the vjp with respect to integer indices is refused, as in MLX", () => {
    const x = mx.array([1, 3, 2], mx.float32);
    const i = mx.array([2, 0]);
    expect(() => mx.vjp((a: mx.Array, b: mx.Array) => mx.take(a, b), [x, i], [mx.ones([2])])).toThrow(
      "[gather] Cannot calculate VJP with respect to indices. Use stop_gradient on indices to stop gradients from being computed.");
    // Indices computed from a traced value count too (MLX refuses argsort's and argmax's).
    expect(() => mx.vjp((a: mx.Array) => mx.take(a, mx.argsort(a)), [x], [mx.array([1, 2, 3])])).toThrow("[gather] Cannot calculate VJP");
    const [, [ga]] = mx.vjp((a: mx.Array) => mx.take(a, mx.stopGradient(mx.argsort(a))), [x], [mx.array([1, 2, 3])]);
    expect(ga!.tolist()).toEqual([1, 3, 2]); // take(x, argsort(x)) = sort(x): x[0] gets 1, x[2] 2, x[1] 3
    expect(() => mx.grad((a: mx.Array) => mx.take(a, mx.argmax(a)).sum())(x)).toThrow("[gather] Cannot calculate VJP with respect to indices.");
    expect((mx.grad((a: mx.Array) => mx.take(a, mx.stopGradient(mx.argmax(a))).sum())(x) as mx.Array).tolist()).toEqual([0, 1, 0]);
  });
  test("prod with zeros among the elements (the product of the others), over one or several axes", () => {
    checkGrad("prod axis 1, one zero", (x) => mx.prod(x, { axis: 1 }), [0.3, 0, 2.1, 0.8, -0.5, 1.6], [2, 3]);
    checkGrad("prod all, two zeros", (x) => mx.prod(x), [0.3, 0, 2.1, 0.8, 0, 1.6], [2, 3]);
    checkGrad("prod axes 0 and 2", (x) => mx.prod(x, { axis: [0, 2] }), [0.3, 0, 2.1, 0.8, -0.5, 1.6, 1.1, 0.9], [2, 2, 2]);
  });
});

describe("grad, valueAndGrad, vjp, jvp", () => {
  test("higher-order derivatives: d2/dx2 x^3 = 6x, d3 = 6", () => {
    const f = (x: mx.Array) => mx.sum(mx.multiply(x, mx.multiply(x, x)));
    const d1 = mx.grad(f);
    const d2 = mx.grad((x: mx.Array) => mx.sum(d1(x) as mx.Array));
    const d3 = mx.grad((x: mx.Array) => mx.sum(d2(x) as mx.Array));
    const x = mx.array([0.5, -1, 2]);
    expect((d1(x) as mx.Array).tolist()).toEqual([0.75, 3, 12]);
    expect((d2(x) as mx.Array).tolist()).toEqual([3, -6, 12]);
    expect((d3(x) as mx.Array).tolist()).toEqual([6, 6, 6]);
    // sin'' = -sin
    const s2 = mx.grad((x: mx.Array) => mx.sum(mx.grad((y: mx.Array) => mx.sum(mx.sin(y)))(x) as mx.Array))(x) as mx.Array;
    expectClose(values(s2), values(mx.negative(mx.sin(x))), 1e-6, "sin''");
  });

  test("argnums, argnames, trees and aux outputs", () => {
    const f = (p: { w: mx.Array; b: mx.Array[] }, x: mx.Array, opts: { scale: mx.Array; name: string }) =>
      mx.sum(mx.multiply(mx.add(mx.multiply(p.w, x), p.b[0]!), opts.scale));
    const p = { w: mx.array([1, 2]), b: [mx.array([0.5, 0.5])] };
    const x = mx.array([3, 4]);
    const opts = { scale: mx.array(2), name: "n" };
    const g0 = mx.grad(f)(p, x, opts) as { w: mx.Array; b: mx.Array[] };
    expect(g0.w.tolist()).toEqual([6, 8]);
    expect(g0.b[0]!.tolist()).toEqual([2, 2]);
    const g01 = mx.grad(f, { argnums: [0, 1] })(p, x, opts) as [unknown, mx.Array];
    expect(g01[1].tolist()).toEqual([2, 4]);
    const [v, gs] = mx.valueAndGrad(f, { argnums: 1, argnames: "scale" })(p, x, opts) as [mx.Array, [mx.Array, { scale: mx.Array }]];
    expect(v.item()).toBe(24);
    expect(gs[0].tolist()).toEqual([2, 4]);
    expect(gs[1].scale.item()).toBe(12);
    // [loss, aux]: the gradient of the first; aux comes back as computed.
    const [out, g] = mx.valueAndGrad((x: mx.Array) => [mx.sum(mx.square(x)), mx.multiply(x, 10)])(x) as [mx.Array[], mx.Array];
    expect(out[1]!.tolist()).toEqual([30, 40]);
    expect(g.tolist()).toEqual([6, 8]);
    // Non-array leaves pass through.
    const gt = mx.grad((t: [mx.Array, string]) => mx.sum(t[0]))([x, "label"]) as [mx.Array, string];
    expect(gt[1]).toBe("label");
    expect(gt[0].tolist()).toEqual([1, 1]);
  });

  test("stopGradient blocks the gradient", () => {
    const g = mx.grad((x: mx.Array) => mx.add(mx.sum(mx.stopGradient(x)), mx.multiply(mx.sum(x), 0)))(mx.array([1, 2])) as mx.Array;
    expect(g.tolist()).toEqual([0, 0]);
    const g2 = mx.grad((x: mx.Array) => mx.sum(mx.add(mx.square(mx.stopGradient(x)), x)))(mx.array([3, 4])) as mx.Array;
    expect(g2.tolist()).toEqual([1, 1]);
  });

  test("jvp against finite differences and <vjp(u), v> = <u, jvp(v)>", () => {
    const f = (x: mx.Array, y: mx.Array) => [mx.multiply(mx.sin(x), y), mx.sum(mx.exp(mx.multiply(x, y)))];
    const x = mx.array([0.3, -0.7, 1.1], mx.float64);
    const y = mx.array([1.5, 0.2, -0.4], mx.float64);
    const vx = mx.array([0.1, 0.5, -0.2], mx.float64);
    const vy = mx.array([-0.3, 0.8, 0.4], mx.float64);
    const [outs, tans] = mx.jvp(f, [x, y], [vx, vy]);
    const h = 1e-3; // float64 sin/exp run at float32 precision (as in MLX)
    const fp = f(mx.add(x, mx.multiply(vx, h)), mx.add(y, mx.multiply(vy, h)));
    const fm = f(mx.subtract(x, mx.multiply(vx, h)), mx.subtract(y, mx.multiply(vy, h)));
    tans.forEach((t, i) => expectClose(values(t), values(mx.divide(mx.subtract(fp[i]!, fm[i]!), 2 * h)), 1e-3, `jvp ${i}`));
    expect(values(outs[1]!)).toEqual(values(f(x, y)[1]!));
    const u = [mx.array([0.7, -1.1, 0.25], mx.float64), mx.array(1.3, mx.float64)];
    const [, cots] = mx.vjp(f, [x, y], u);
    const left = mx.sum(mx.multiply(cots[0]!, vx)).item() as number + (mx.sum(mx.multiply(cots[1]!, vy)).item() as number);
    const right = mx.sum(mx.multiply(u[0]!, tans[0]!)).item() as number + (mx.sum(mx.multiply(u[1]!, tans[1]!)).item() as number);
    expect(Math.abs(left - right)).toBeLessThan(1e-12 * Math.max(1, Math.abs(left)));
  });

  test("evaluating inside the traced function keeps the graph", () => {
    const g = mx.grad((x: mx.Array) => {
      const y = mx.exp(x);
      mx.eval(y);
      expect(y.tolist()).toHaveLength(2);
      return mx.sum(mx.multiply(y, y));
    })(mx.array([0, 1], mx.float64)) as mx.Array;
    expectClose(values(g), [2, 2 * Math.exp(2)], 1e-6, "exp^2");
  });

  test("errors as MLX gives them", () => {
    const x = mx.array([1, 2], mx.float32);
    expectMlxError(() => mx.grad((x: mx.Array) => mx.multiply(x, 2))(x), /^\[grad\] The return value of the function whose gradient we want to compute should be a scalar array; but an array of shape \(2\) was returned\.$/);
    expectMlxError(() => mx.grad((_x: mx.Array) => 3.0 as never)(x), /should be a scalar array; but float was returned\.$/);
    expectMlxError(() => mx.grad((x: mx.Array) => [mx.sum(x)])(x), /should be a scalar array; but list was returned\.$/);
    expectMlxError(() => mx.vjp((x: mx.Array) => mx.multiply(x, 2), [x], [mx.array([1, 2, 3])]), /^\[vjp\] Output shape \(2\) does not match cotangent shape \(3\)\.$/);
    expectMlxError(() => mx.vjp((x: mx.Array) => mx.multiply(x, 2), [x], []), /^\[vjp\] Number of outputs to compute gradients for \(1\) does not match number of cotangents \(0\)\.$/);
    expectMlxError(() => mx.jvp((x: mx.Array) => x, [x], [mx.array([1, 2, 3])]), /^\[jvp\] Input shape does not match shape of tangent\.$/);
    expectMlxError(() => mx.grad((x: mx.Array) => mx.sum(x), { argnums: 3 })(x), /^\[grad\] Can't compute the gradient of argument index 3 because the function is called with only 1 positional arguments\.$/);
    expectMlxError(() => mx.valueAndGrad((x: mx.Array) => mx.sum(x), { argnums: [0, 0] }), /^\[value_and_grad\] Duplicate argument index 0 is not allowed\.$/);
    expectMlxError(() => mx.grad((x: mx.Array) => mx.sum(x), { argnums: [] }), /^\[grad\] Gradient wrt no argument requested$/);
    // After an error the engine is not left tracing: evaluation detaches as usual.
    const y = mx.exp(x);
    mx.eval(y);
    expect(y.tolist()).toHaveLength(2);
  });
});

describe("customFunction and checkpoint", () => {
  test("a custom vmap rule is used by vmap: batched inputs with their axes, outputs with theirs", () => {
    const xs = mx.array([[1, 4], [2, 5], [3, 6]]);
    const w = mx.array([10, 20, 30]);
    const seen: unknown[] = [];
    const f = mx.customFunction((x: mx.Array, y: mx.Array) => [mx.multiply(x, y), mx.sum(y)]);
    // A (deliberately different) rule: x + y, mapped on the axis it got; the second output unmapped.
    f.vmap(([x, y], axes) => {
      seen.push(axes, x.shape, y.shape);
      return [[mx.add(x, y), mx.array(-1)], [axes[0] as number, null]];
    });
    const [a, s] = mx.vmap((x: mx.Array) => f(x, w) as mx.Array[], { inAxes: 1 })(xs) as mx.Array[];
    expect(seen).toEqual([[0, null], [2, 3], [3]]);
    expect(a!.tolist()).toEqual([[11, 22, 33], [14, 25, 36]]);
    expect(s!.tolist()).toEqual([-1, -1]);
    // Wrong shapes from the rule, and an exception in it, surface at the call site.
    const bad = mx.customFunction((x: mx.Array) => mx.exp(x)).vmap(([x]) => [mx.sum(x as mx.Array, { axis: 1 }), 0]);
    expectMlxError(() => mx.vmap((x: mx.Array) => bad(x))(mx.ones([2, 3])), /^\[custom_function\] The vmap rule returned an output of shape \(2\) for an output of shape \(3\) mapped over 2\.$/);
    const badAxis = mx.customFunction((x: mx.Array) => mx.exp(x)).vmap(([x]) => [mx.sum(x as mx.Array), 0]);
    expectMlxError(() => mx.vmap((x: mx.Array) => badAxis(x))(mx.ones([2, 3])), /^\[custom_function\] The vmap rule returned axis 0 for an output with 0 dimensions\.$/);
    const throwing = mx.customFunction((x: mx.Array) => mx.exp(x)).vmap(() => {
      throw new RangeError("no batching today");
    });
    expect(() => mx.vmap((x: mx.Array) => throwing(x))(mx.ones([2, 3]))).toThrow(RangeError);
  });

  test("a custom jvp rule is used by jvp (and not by grad); without one, jvp differentiates the body", () => {
    const x = mx.array([0.5, -1.2], mx.float64);
    const y = mx.array([2, 3], mx.float64);
    const tx = mx.array([1, 0.5], mx.float64);
    const ty = mx.array([-1, 2], mx.float64);
    const f = mx.customFunction((a: mx.Array, b: mx.Array) => mx.multiply(mx.sin(a), b));
    f.vjp(() => [mx.zerosLike(x), mx.zerosLike(y)]);
    // No jvp rule: the body's own derivative, cos(x) y tx + sin(x) ty (the zero vjp is not used).
    const want = mx.add(mx.multiply(mx.multiply(mx.cos(x), y), tx), mx.multiply(mx.sin(x), ty));
    expect(mx.allclose(mx.jvp(f, [x, y], [tx, ty])[1][0]!, want).item()).toBe(true);
    // A (deliberately different) jvp rule: 3 tx - ty.
    f.jvp((_p, [da, db]) => mx.subtract(mx.multiply(3, da), db));
    expect(mx.allclose(mx.jvp(f, [x, y], [tx, ty])[1][0]!, mx.subtract(mx.multiply(3, tx), ty)).item()).toBe(true);
    // grad still uses the vjp rule.
    expect(mx.allclose(mx.grad((a: mx.Array) => mx.sum(f(a, y)))(x) as mx.Array, mx.zerosLike(x)).item()).toBe(true);
  });

  test("a jvp rule's constant term is carried forward through the ops after the call, as MLX calls the rule", () => {
    // g's rule: 2 t + 5 (affine). h(x) = exp(g(x)) * 3 + g(x), so by the chain rule
    // dh = (3 exp(g(x)) + 1) (2 t + 5), with g(x) = x² (the body; the rule ignores it).
    const g = mx.customFunction((x: mx.Array) => mx.square(x));
    g.jvp((_p, [t]) => mx.add(mx.multiply(2, t as mx.Array), 5));
    const h = (x: mx.Array) => { const y = g(x); return mx.add(mx.multiply(mx.exp(y), 3), y); };
    const x = mx.array([0.5, -1, 0.25], mx.float32);
    const t = mx.array([1, 0, -2], mx.float32);
    const [[out], [dh]] = mx.jvp(h, [x], [t]);
    const xs = [0.5, -1, 0.25], ts = [1, 0, -2];
    const want = xs.map((v, i) => (3 * Math.exp(v * v) + 1) * (2 * ts[i]! + 5));
    expectClose(values(dh!), want, 1e-6, "jvp with a constant term");
    expectClose(values(out!), xs.map((v) => 3 * Math.exp(v * v) + v * v), 1e-6, "outputs");
    // A second call meets the rule twice: both constants arrive, each through its own path.
    const [, [d2]] = mx.jvp((a: mx.Array) => mx.subtract(g(a), mx.multiply(g(a), 4)), [x], [t]);
    expectClose(values(d2!), ts.map((v) => -3 * (2 * v + 5)), 1e-6, "two calls");
    // Nested: the jvp of a function that takes a jvp inside keeps each walk's constants apart.
    const [, [d3]] = mx.jvp((a: mx.Array) => mx.multiply(mx.jvp(g, [a], [mx.onesLike(a)])[1][0]!, a), [x], [t]);
    // inner: d = 2·1 + 5 = 7 (constant in a), so the outer tangent is 7 t.
    expectClose(values(d3!), ts.map((v) => 7 * v), 1e-6, "nested");
  });

  test("a custom vjp rule replaces the function's own gradient", () => {
    const f = mx.customFunction((x: mx.Array) => mx.sin(x));
    f.vjp(([x], dy) => [mx.multiply(dy, mx.multiply(x as mx.Array, 10))]);
    const x = mx.array([1, 2], mx.float32);
    expect((mx.grad((x: mx.Array) => mx.sum(f(x)))(x) as mx.Array).tolist()).toEqual([10, 20]);
    // Outside a transform it is just the function.
    expect(values(f(x))).toEqual(values(mx.sin(x)));
  });

  test("several outputs and arguments: the rule sees every cotangent, zeros where none flows", () => {
    const f = mx.customFunction((a: mx.Array, b: mx.Array) => [mx.multiply(a, b), mx.add(a, b)]);
    let seen: number[][] = [];
    f.vjp(([a, b], cots, outs) => {
      const [c0, c1] = cots as mx.Array[];
      seen = [c0!.tolist() as number[], c1!.tolist() as number[], (outs as mx.Array[])[0]!.tolist() as number[]];
      return [mx.add(mx.multiply(c0!, b as mx.Array), c1!), mx.add(mx.multiply(c0!, a as mx.Array), c1!)];
    });
    const a = mx.array([1, 2], mx.float32);
    const b = mx.array([3, 4], mx.float32);
    const [ga, gb] = mx.grad((a: mx.Array, b: mx.Array) => mx.sum(f(a, b)[0]!), { argnums: [0, 1] })(a, b) as mx.Array[];
    expect(ga!.tolist()).toEqual([3, 4]);
    expect(gb!.tolist()).toEqual([1, 2]);
    expect(seen).toEqual([[1, 1], [0, 0], [3, 8]]);
  });

  test("without a rule, the function's own gradient; higher order through the rule", () => {
    const f = mx.customFunction((x: mx.Array) => mx.multiply(x, mx.multiply(x, x)));
    const x = mx.array([0.5, 2], mx.float64);
    expect((mx.grad((x: mx.Array) => mx.sum(f(x)))(x) as mx.Array).tolist()).toEqual([0.75, 12]);
    const g = mx.customFunction((x: mx.Array) => mx.exp(x)).vjp(([x], dy) => [mx.multiply(dy as mx.Array, mx.exp(x as mx.Array))]);
    const d2 = mx.grad((x: mx.Array) => mx.sum(mx.grad((y: mx.Array) => mx.sum(g(y)))(x) as mx.Array))(x) as mx.Array;
    expectClose(values(d2), [Math.exp(0.5), Math.exp(2)], 1e-6, "exp''");
  });

  test("an exception in the rule surfaces at the transform's call site", () => {
    class RuleError extends Error {}
    const f = mx.customFunction((x: mx.Array) => mx.sin(x)).vjp(() => {
      throw new RuleError("bad rule");
    });
    expect(() => mx.grad((x: mx.Array) => mx.sum(f(x)))(mx.array([1]))).toThrow(RuleError);
    const wrong = mx.customFunction((x: mx.Array) => mx.sin(x)).vjp(() => [mx.array([1, 2, 3])]);
    expectMlxError(() => mx.grad((x: mx.Array) => mx.sum(wrong(x)))(mx.array([1, 2])), /^\[custom_function\] The vjp returned a cotangent of shape \(3\) for an input of shape \(2\)\.$/);
    // The engine is usable afterwards.
    expect((mx.grad((x: mx.Array) => mx.sum(mx.square(x)))(mx.array([3])) as mx.Array).tolist()).toEqual([6]);
  });

  test("checkpoint gives the same gradients, recomputing the forward", () => {
    let calls = 0;
    const block = (x: mx.Array, w: mx.Array) => {
      calls++;
      return mx.tanh(mx.multiply(x, w));
    };
    const ck = mx.checkpoint(block);
    const loss = (w: mx.Array, f: typeof block) => mx.sum(f(f(mx.array([0.3, -0.2, 0.9], mx.float64), w), w));
    const w = mx.array([1.5, -0.5, 2], mx.float64);
    const plain = mx.grad((w: mx.Array) => loss(w, block))(w) as mx.Array;
    calls = 0;
    const viaCk = mx.grad((w: mx.Array) => loss(w, ck))(w) as mx.Array;
    expectClose(values(viaCk), values(plain), 1e-12, "checkpoint");
    expect(calls).toBe(4); // two forward calls, and each recomputed in the backward pass
  });
});

test("vmap over an empty axis: the results have an empty mapped axis (MLX's shapes), the function still runs once", () => {
  let calls = 0;
  const f = (x: mx.Array, w: mx.Array) => {
    calls++;
    return mx.matmul(x, w);
  };
  const y = mx.vmap(f, { inAxes: [0, null] })(mx.zeros([0, 3, 4]), mx.ones([4, 5]));
  expect(y.shape).toEqual([0, 3, 5]);
  expect(calls).toBe(1);
  expect(mx.vmap((x: mx.Array) => mx.sum(x))(mx.zeros([0, 3])).shape).toEqual([0]);
  const z = mx.vmap((x: mx.Array) => mx.multiply(x, 2), { inAxes: 1, outAxes: 1 })(mx.zeros([2, 0, 3], mx.float16));
  expect(z.shape).toEqual([2, 0, 3]);
  expect(z.dtype).toBe(mx.float16);
});

describe("vmap equals a loop over the batch", () => {
  /** stack(f(x_i, ...)) along outAxis, slicing each mapped argument along its in axis. */
  function loop(f: (...a: mx.Array[]) => mx.Array, args: mx.Array[], inAxes: (number | null)[], outAxis: number): mx.Array {
    const ax = inAxes.find((a) => a !== null)!;
    const first = args[inAxes.indexOf(ax)]!;
    const b = first.shape[ax < 0 ? ax + first.ndim : ax]!;
    const outs: mx.Array[] = [];
    for (let i = 0; i < b; i++) {
      const sl = args.map((a, k) => {
        const ia = inAxes[k];
        if (ia === null || ia === undefined) return a;
        return mx.take(a, i, ia < 0 ? ia + a.ndim : ia);
      });
      outs.push(f(...sl));
    }
    return mx.stack(outs, outAxis < 0 ? outAxis + outs[0]!.ndim + 1 : outAxis);
  }

  const X = mx.reshape(mx.linspace(-2, 2, 24), [2, 3, 4]);
  const Y = mx.reshape(mx.linspace(1, 3, 12), [3, 4]);
  const anyAxes = [[0, 0], [1, 0], [-1, 1], [0, -1]] as const;
  const scalarOut = [[0, 0], [1, 0], [-1, 0]] as const;
  const firstAxis = [[0, 0], [0, -1], [0, 1]] as const;
  // Ops that accept any example shape run for every in/out axis pair; ops written for the
  // (3, 4) examples of axis 0 run with in axis 0.
  const ops: [string, (...a: mx.Array[]) => mx.Array, readonly (readonly [number, number])[]][] = [
    ["exp", (x) => mx.exp(x), anyAxes], ["multiply", (x) => mx.multiply(x, x), anyAxes],
    ["where", (x) => mx.where(mx.greater(x, 0), x, mx.negative(x)), anyAxes], ["sum axis -1", (x) => mx.sum(x, { axis: -1 }), scalarOut],
    ["max keepdims", (x) => mx.max(x, { axis: 0, keepdims: true }), anyAxes], ["argmax", (x) => mx.argmax(x, { axis: 0 }), scalarOut],
    ["argmin flat", (x) => mx.argmin(x), scalarOut], ["logsumexp", (x) => mx.logsumexp(x, { axis: -1 }), scalarOut],
    ["softmax", (x) => mx.softmax(x, { axis: -1 }), anyAxes], ["mean all", (x) => mx.mean(x), scalarOut],
    ["reshape", (x) => x.reshape([-1]), anyAxes], ["transpose", (x) => x.transpose(), anyAxes], ["slice", (x) => x.index(mx.sl(null, null, 2), 1), scalarOut],
    ["concatenate", (x) => mx.concatenate([x, x.square()], 0), anyAxes], ["pad", (x) => mx.pad(x, [[1, 0], [0, 2]]), anyAxes],
    ["roll", (x) => mx.roll(x, 1, 1), anyAxes], ["cumsum", (x) => mx.cumsum(x, 1), anyAxes], ["sort", (x) => mx.sort(x, 0), anyAxes],
    ["take", (x) => mx.take(x, mx.array([1, 0]), 1), anyAxes], ["diagonal", (x) => mx.diagonal(x), anyAxes], ["tril", (x) => mx.tril(x), anyAxes],
    ["astype", (x) => x.astype(mx.float16), anyAxes],
    ["at set slice", (x) => x.at(mx.sl(0, 1)).set(0), anyAxes], ["at add index", (x) => x.at(mx.array([0, 0]), 1).add(mx.array([1, 2], mx.float32)), firstAxis],
    ["at set mapped value", (x) => mx.zeros([5]).at(mx.array([4, 1])).set(x.index(0, mx.sl(0, 2))), firstAxis],
    ["add unmapped", (x) => mx.add(x, Y.index(0)), firstAxis], ["broadcastTo", (x) => mx.broadcastTo(x.index(0), [2, 4]), firstAxis],
    ["index arrays", (x) => x.index(mx.array([0, 2, 1]), mx.array([3, 3, 0])), firstAxis],
    ["takeAlongAxis", (x) => mx.takeAlongAxis(x, mx.array([[0, 3], [1, 1], [2, 0]]), 1), firstAxis],
    ["matrix-ish", (x) => mx.sum(mx.multiply(mx.expandDims(x, 2), mx.expandDims(Y.transpose(), 0)), { axis: 1 }), firstAxis],
    ["mask set", (x) => x.at(mx.greater(x, 0.5)).set(mx.negative(x.index(mx.sl(null, null, -1)))), anyAxes],
    ["mask set, unmapped source", (x) => x.at(mx.less(x, 0)).set(Y.reshape([-1])), firstAxis],
    ["matmul both mapped", (x) => mx.matmul(x, x.transpose()), anyAxes], ["matmul unmapped b", (x) => mx.matmul(x, Y.transpose()), firstAxis],
    ["matmul unmapped a", (x) => mx.matmul(Y.index(mx.sl(0, 2)), x.transpose()), firstAxis], ["matmul 1-D", (x) => mx.matmul(x.index(0), x.transpose()), anyAxes],
    ["addmm", (x) => mx.addmm(Y.index(0), x.transpose(), x, { alpha: 2, beta: 0.5 }), firstAxis], ["einsum", (x) => mx.einsum("ij,kj->ik", x, Y), firstAxis],
  ];
  for (const [name, f, pairs] of ops) {
    test(name, () => {
      for (const [inAx, outAx] of pairs) {
        const got = mx.vmap(f, { inAxes: inAx, outAxes: outAx })(X);
        const want = loop(f, [X], [inAx], outAx);
        expect({ name, inAx, outAx, shape: got.shape }).toEqual({ name, inAx, outAx, shape: want.shape });
        expect(mx.allclose(got, want, { rtol: 1e-5, atol: 1e-6 }).item()).toBe(true);
      }
    });
  }

  test("matmul with the two operands mapped along different axes", () => {
    const a = mx.reshape(mx.linspace(-1, 1, 24), [2, 3, 4]);
    const b = mx.reshape(mx.linspace(0, 2, 40), [4, 2, 5]);
    const got = mx.vmap(mx.matmul, { inAxes: [0, 1], outAxes: -1 })(a, b);
    expect(mx.allclose(got, loop((x, y) => mx.matmul(x!, y!), [a, b], [0, 1], -1), { rtol: 1e-5, atol: 1e-6 }).item()).toBe(true);
  });

  test("unmapped arguments, trees of axes, nested vmap, constants", () => {
    const f = (x: mx.Array, y: mx.Array) => mx.multiply(x, y);
    const y = Y.index(mx.sl(), 0);
    const got = mx.vmap(f, { inAxes: [1, null] })(X.index(0), y);
    expect(mx.allclose(got, loop(f, [X.index(0), y], [1, null], 0)).item()).toBe(true);
    const g = mx.vmap((p: { a: mx.Array; b: mx.Array }) => mx.add(p.a, p.b), { inAxes: [{ a: 0, b: null }] });
    expect(g({ a: Y, b: Y.index(1) }).shape).toEqual([3, 4]);
    const nested = mx.vmap(mx.vmap((x: mx.Array) => mx.sum(x)))(X);
    expect(mx.allclose(nested, mx.sum(X, { axis: -1 })).item()).toBe(true);
    expect(mx.vmap((_x: mx.Array) => mx.array(1.5))(X).tolist()).toEqual([1.5, 1.5]);
  });

  test("random samplers over a batch of keys: each row is what its key gives alone (MLX batches keys)", () => {
    const keys = mx.random.split(mx.random.key(7), 3);
    const draws: [string, (k: mx.Array) => mx.Array][] = [
      ["uniform", (k) => mx.random.uniform(0, 1, [2, 3], { key: k })],
      ["normal", (k) => mx.random.normal([4], { key: k })],
      ["randint", (k) => mx.random.randint(0, 100, [5], { key: k })],
      ["split", (k) => mx.random.split(k)],
      ["bernoulli", (k) => mx.random.bernoulli(0.3, [6], { key: k })],
    ];
    for (const [name, f] of draws) {
      const got = mx.vmap(f)(keys);
      const want = loop(f, [keys], [0], 0);
      expect({ name, shape: got.shape, values: got.tolist() }).toEqual({ name, shape: want.shape, values: want.tolist() });
    }
    // Keys mapped along axis 1, results along axis -1.
    const kt = keys.transpose();
    const got = mx.vmap((k: mx.Array) => mx.random.uniform(0, 1, [2], { key: k }), { inAxes: 1, outAxes: -1 })(kt);
    expect(got.tolist()).toEqual(loop((k) => mx.random.uniform(0, 1, [2], { key: k }), [kt], [1], -1).tolist());
  });

  test("the batching rules MLX lacks fail with MLX's messages; searchsorted maps its values", () => {
    const x = mx.arange(12, { dtype: mx.float32 }).reshape([3, 4]);
    expect(() => mx.vmap((r: mx.Array) => mx.asStrided(r, [2, 2], [1, 1]))(x)).toThrow(/^\[Primitive::vmap\] Not implemented for AsStrided\.$/);
    expect(() => mx.vmap((r: mx.Array) => mx.searchsorted(r, mx.array([2.5, 7.5])))(x)).toThrow(
      /^\[searchsorted\] Cannot vmap over the sorted sequence, only over the values being searched for\.$/);
    // Values mapped, the sorted sequence shared: the loop over the batch.
    const sorted = mx.array([1, 3, 5, 7], mx.float32);
    const got = mx.vmap((v: mx.Array) => mx.searchsorted(sorted, v))(x);
    expect(got.tolist()).toEqual(loop((v) => mx.searchsorted(sorted, v), [x], [0], 0).tolist());
  });

  test("per-example gradients: vmap(grad(f)) and grad of a vmap", () => {
    const w = mx.array([0.5, -1, 2], mx.float64);
    const xs = mx.array([[1, 2, 3], [0.5, 0, -1]], mx.float64);
    const loss = (w: mx.Array, x: mx.Array) => mx.sum(mx.square(mx.multiply(w, x)));
    const per = mx.vmap(mx.grad(loss) as (w: mx.Array, x: mx.Array) => mx.Array, { inAxes: [null, 0] })(w, xs);
    const want = mx.stack([0, 1].map((i) => mx.grad(loss)(w, xs.index(i)) as mx.Array));
    expect(mx.allclose(per, want).item()).toBe(true);
    const total = mx.grad((w: mx.Array) => mx.sum(mx.vmap((x: mx.Array) => loss(w, x))(xs)))(w) as mx.Array;
    expect(mx.allclose(total, mx.sum(want, { axis: 0 })).item()).toBe(true);
  });

  test("errors as MLX gives them", () => {
    expectMlxError(() => mx.vmap((a: mx.Array) => mx.sum(a), { inAxes: 2 })(mx.ones([3, 4])), /^\[vmap\] Invalid vectorization axis 2 for array with shape \(3,4\)$/);
    expectMlxError(() => mx.vmap((a: mx.Array, b: mx.Array) => mx.add(a, b))(mx.ones([3, 4]), mx.ones([2, 4])), /^\[vmap\] Inconsistent axis sizes: 3 and 2\.$/);
    expectMlxError(() => mx.vmap((a: mx.Array) => a, { outAxes: 3 })(mx.ones([3, 4])), /^\[vmap\] Invalid output vectorization axis 3 for array with shape \(4\)$/);
    // A one-element source fills every true position; a row with 3 true positions and 2 source
    // elements fails (the gather inside the batched rule refuses the third index).
    expect(mx.vmap((x: mx.Array) => x.at(mx.greater(x, 0)).set(mx.array([7])))(mx.ones([2, 2])).tolist()).toEqual([[7, 7], [7, 7]]);
    expectMlxError(() => mx.eval(mx.vmap((x: mx.Array, v: mx.Array) => x.at(mx.greater(x, 0)).set(v))(mx.ones([2, 3]), mx.ones([2, 2]))), /out of bounds/);
    const cf = mx.customFunction((x: mx.Array) => mx.sin(x));
    // Without a vmap rule, vmap runs the body on the batch (as MLX).
    const xs = mx.array([[0.5, 1], [2, -1]]);
    expect(mx.allclose(mx.vmap((x: mx.Array) => cf(x))(xs), mx.sin(xs)).item()).toBe(true);
  });
});
