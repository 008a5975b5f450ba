// mx.linalg against real MLX 0.32.4: inputs and MLX's results come from
// test/fixtures/linalg/linalg.json.gz (made by gen_linalg.py). Factorizations are unique only up
// to signs and LAPACK builds round differently, so each case checks (1) shapes and dtypes equal
// MLX's, (2) the invariants equal MLX's within a stated tolerance (singular values, eigenvalues,
// inverses, determinants, solutions, Cholesky and LU factors, |R| of QR), and (3) the defining
// identities hold (A = QR with Q orthonormal, A = U diag(S) Vt, A inv(A) = I, A = L Lᵀ,
// A = (L U)[P], A V = V diag(w)). Errors are MLX's messages; gradients are MLX's (det, slogdet,
// norm, cross) and finite differences.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, loadFixture, numbersOf, type Rec } from "./fixture";

interface Case {
  name: string;
  fn: string;
  kw: { upper?: boolean; compute_uv?: boolean; UPLO?: string };
  inputs: Rec[];
  outputs: Rec[];
  /** NumPy's float64 determinants (MLX's are only float32-accurate). */
  numpy?: Rec[];
}
interface NormCase {
  input: string;
  ord: number | string | null;
  axis: number | number[] | null;
  keepdims: boolean;
  out: Rec;
}
interface Fixture {
  cases: Case[];
  norm: NormCase[];
  norm_inputs: Record<string, Rec>;
  cross: { a: Rec; b: Rec; axis: number; out: Rec }[];
  errors: { id: string; msg: string }[];
  grad: { name: string; input: Rec; grad: Rec }[];
}

const fx = loadFixture<Fixture>("linalg/linalg.json.gz");
const L = mx.linalg;

/** Values as numbers (complex64 interleaved; uint32 through int32). */
function nums(a: mx.Array): number[] {
  const x = a.dtype === mx.uint32 ? a.astype(mx.int32) : a;
  return numbersOf(bytesOf(x), x.dtype.name);
}

function recNums(r: Rec): number[] {
  return nums(arrayOf(r));
}

const eps = (d: mx.Dtype) => (d === mx.float64 ? 2.2e-16 : 1.2e-7);

/** max |x - y| <= tol * max(1, max |y|). */
function expectClose(x: number[], y: number[], tol: number, what: string): void {
  expect(x.length).toBe(y.length);
  let scale = 1;
  for (const v of y) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(y[i]!) || !Number.isFinite(y[i]!)) {
      expect(x[i]).toBe(y[i]!);
      continue;
    }
    worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  if (worst > tol * scale) throw new Error(`${what}: max error ${worst} > ${tol * scale}`);
}

function expectMatch(a: mx.Array, r: Rec): void {
  expect(a.dtype.name).toBe(r.dtype);
  expect([...a.shape]).toEqual(r.shape);
}

const T = (x: mx.Array) => mx.swapaxes(x, -1, -2);
const H = (x: mx.Array) => (x.dtype === mx.complex64 ? mx.conj(T(x)) : T(x));
const eyeLike = (n: number, d: mx.Dtype) => mx.eye(n, n, 0, d);

/** Tolerance of a case: well-conditioned inputs get n * eps * 100; ill-conditioned ones scale by cond. */
function tolOf(c: Case, d: mx.Dtype): number {
  const n = Math.max(...c.inputs[0]!.shape.slice(-2), 1);
  const m = /ill (\S+)/.exec(c.name);
  const cond = m ? Number(m[1]) : 1;
  return 200 * n * eps(d) * cond;
}

/** Complex values sorted by (re, im), as [re, im] pairs rounded for a stable order. */
function sortedComplex(v: number[]): number[] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < v.length; i += 2) pairs.push([v[i]!, v[i + 1]!]);
  pairs.sort((p, q) => (Math.abs(p[0] - q[0]) > 1e-3 ? p[0] - q[0] : p[1] - q[1]));
  return pairs.flat();
}

function callCase(c: Case): mx.Array[] {
  const ins = c.inputs.map(arrayOf);
  const a = ins[0]!;
  const up = c.kw.upper ?? false;
  switch (c.fn) {
    case "qr": return L.qr(a);
    case "svd": return c.kw.compute_uv === false ? [L.svd(a, false)] : L.svd(a);
    case "lu": return L.lu(a);
    case "lu_factor": return L.luFactor(a);
    case "pinv": return [L.pinv(a)];
    case "inv": return [L.inv(a)];
    case "det": return [L.det(a)];
    case "slogdet": return L.slogdet(a);
    case "eig": return L.eig(a);
    case "eigvals": return [L.eigvals(a)];
    case "tri_inv": return [L.triInv(a, up)];
    case "solve": return [L.solve(a, ins[1]!)];
    case "solve_triangular": return [L.solveTriangular(a, ins[1]!, { upper: up })];
    case "cholesky": return [L.cholesky(a, up)];
    case "cholesky_inv": return [L.choleskyInv(a, up)];
    case "eigh": return L.eigh(a, c.kw.UPLO ?? "L");
    case "eigvalsh": return [L.eigvalsh(a, c.kw.UPLO ?? "L")];
  }
  throw new Error(`unknown fn ${c.fn}`);
}

/** The identities each factorization must satisfy (tolerance tol relative to the input's scale). */
function checkIdentities(c: Case, a: mx.Array, outs: mx.Array[], tol: number): void {
  const A = nums(a);
  const d = a.dtype;
  const n = a.shape[a.ndim - 1]!;
  const m = a.ndim >= 2 ? a.shape[a.ndim - 2]! : 0;
  const k = Math.min(m, n);
  const close = (x: mx.Array, y: number[], what: string, t = tol) => expectClose(nums(x), y, t, `${c.name} ${what}`);
  switch (c.fn) {
    case "qr": {
      const [q, r] = outs as [mx.Array, mx.Array];
      close(mx.matmul(q, r), A, "Q R = A");
      close(mx.matmul(T(q), q), nums(mx.broadcastTo(eyeLike(k, d), [...a.shape.slice(0, -2), k, k])), "QᵀQ = I");
      close(mx.tril(r, -1), nums(mx.zerosLike(r)), "R upper", 0);
      break;
    }
    case "svd": {
      if (outs.length === 1) break;
      const [u, s, vt] = outs as [mx.Array, mx.Array, mx.Array];
      const uk = u.index("...", mx.sl(0, k));
      const vk = vt.index("...", mx.sl(0, k), mx.sl());
      close(mx.matmul(mx.multiply(uk, mx.expandDims(s, -2).astype(uk.dtype)), vk), A, "U diag(S) Vt = A");
      close(mx.matmul(H(u), u), nums(mx.broadcastTo(eyeLike(m, u.dtype), u.shape)), "UᴴU = I");
      close(mx.matmul(vt, H(vt)), nums(mx.broadcastTo(eyeLike(n, vt.dtype), vt.shape)), "Vt Vtᴴ = I");
      break;
    }
    case "lu": {
      const [p, l, u] = outs as [mx.Array, mx.Array, mx.Array];
      const lu = mx.matmul(l, u);
      close(mx.takeAlongAxis(lu, mx.broadcastTo(mx.expandDims(p, -1), lu.shape), -2), A, "(L U)[P] = A");
      break;
    }
    case "inv":
      close(mx.matmul(a, outs[0]!), nums(mx.broadcastTo(eyeLike(n, d), a.shape)), "A inv(A) = I");
      break;
    case "cholesky": {
      const f = outs[0]!;
      close(c.kw.upper ? mx.matmul(T(f), f) : mx.matmul(f, T(f)), A, "L Lᵀ = A");
      break;
    }
    case "eigh": {
      const [w, v] = outs as [mx.Array, mx.Array];
      close(mx.matmul(a, v), nums(mx.multiply(v, mx.expandDims(w, -2).astype(v.dtype))), "A V = V diag(w)");
      break;
    }
    case "eig": {
      const [w, v] = outs as [mx.Array, mx.Array];
      const ac = a.astype(mx.complex64);
      close(mx.matmul(ac, v), nums(mx.multiply(v, mx.expandDims(w, -2))), "A V = V diag(w)", Math.max(tol, 1e-4));
      break;
    }
    case "solve":
    case "solve_triangular": {
      if (c.fn === "solve_triangular") break; // checked against MLX (A's other triangle is ignored)
      const b = arrayOf(c.inputs[1]!);
      const x = outs[0]!;
      const ax = b.ndim === 1 ? mx.matmul(a, x) : mx.matmul(a, x);
      close(ax, nums(b), "A X = B");
      break;
    }
  }
}

describe("factorizations against MLX", () => {
  for (const c of fx.cases) {
    test(c.name, () => {
      const a = arrayOf(c.inputs[0]!);
      const outs = callCase(c);
      expect(outs.length).toBe(c.outputs.length);
      outs.forEach((o, i) => expectMatch(o, c.outputs[i]!));
      const d = a.dtype === mx.float64 ? mx.float64 : mx.float32;
      const tol = tolOf(c, d);
      // Invariants against MLX's values.
      const cmp = (i: number, what: string, t = tol) => expectClose(nums(outs[i]!), recNums(c.outputs[i]!), t, `${c.name} ${what}`);
      const cmpAbs = (i: number, what: string) =>
        expectClose(nums(outs[i]!).map(Math.abs), recNums(c.outputs[i]!).map(Math.abs), tol, `${c.name} ${what}`);
      switch (c.fn) {
        case "qr": cmpAbs(1, "|R|"); break;
        case "svd": cmp(c.kw.compute_uv === false ? 0 : 1, "S"); break;
        case "lu":
          expect(nums(outs[0]!)).toEqual(recNums(c.outputs[0]!));
          cmp(1, "L");
          cmp(2, "U");
          break;
        case "lu_factor":
          cmp(0, "LU");
          expect(nums(outs[1]!)).toEqual(recNums(c.outputs[1]!));
          break;
        case "eig":
        case "eigvals":
          expectClose(sortedComplex(nums(outs[0]!)), sortedComplex(recNums(c.outputs[0]!)), Math.max(tol, 1e-5), `${c.name} w`);
          break;
        case "eigh": cmp(0, "w"); break;
        case "slogdet":
          expect(nums(outs[0]!)).toEqual(recNums(c.outputs[0]!));
          cmp(1, "logabsdet", c.numpy ? 1e-6 : tol);
          if (c.numpy) expectClose(nums(outs[1]!), recNums(c.numpy[1]!), tol, `${c.name} logabsdet vs NumPy`);
          break;
        case "det":
          cmp(0, "det", c.numpy ? 1e-6 : tol);
          if (c.numpy) expectClose(nums(outs[0]!), recNums(c.numpy[0]!), tol, `${c.name} det vs NumPy`);
          break;
        default:
          cmp(0, "value");
      }
      checkIdentities(c, a, outs, tol);
    });
  }
});

describe("norm against MLX", () => {
  const inputs = Object.fromEntries(Object.entries(fx.norm_inputs).map(([k, r]) => [k, arrayOf(r)]));
  for (const c of fx.norm) {
    const ord = c.ord === "inf" ? Infinity : c.ord === "-inf" ? -Infinity : c.ord;
    test(`norm ${c.input} ord=${String(c.ord)} axis=${JSON.stringify(c.axis)} keepdims=${c.keepdims}`, () => {
      const r = L.norm(inputs[c.input]!, ord, { axis: c.axis, keepdims: c.keepdims });
      expectMatch(r, c.out);
      expectClose(nums(r), recNums(c.out), c.out.dtype === "float16" ? 1e-3 : c.out.dtype === "float64" ? 1e-12 : 1e-5, "norm");
    });
  }
  test("mx.matrixNorm is MLX's alias of mx.linalg.norm", () => {
    expect(mx.matrixNorm).toBe(L.norm);
  });
  test("norm(a, options) without ord", () => {
    expectClose(nums(L.norm(mx.array([[3, 4], [0, 0]], mx.float32), { axis: 1 })), [5, 0], 1e-6, "norm");
  });
});

describe("cross against MLX", () => {
  for (const [i, c] of fx.cross.entries()) {
    test(`cross ${i}: ${JSON.stringify(c.a.shape)} x ${JSON.stringify(c.b.shape)} axis ${c.axis}`, () => {
      const r = L.cross(arrayOf(c.a), arrayOf(c.b), c.axis);
      expectMatch(r, c.out);
      expectClose(nums(r), recNums(c.out), 1e-6, "cross");
    });
  }
});

describe("errors are MLX's", () => {
  const v3 = mx.array([1, 2, 3], mx.float32);
  const m23 = mx.array([[1, 2, 3], [4, 5, 7]], mx.float32);
  const m33 = mx.array([[1, 2, 3], [4, 5, 6], [7, 8, 10]], mx.float32);
  const i22 = mx.array([[1, 2], [3, 4]]);
  const h22 = mx.array([[1, 2], [3, 4]], mx.float16);
  const c22 = mx.array([[1, 2], [3, 4]], mx.complex64);
  const t3 = mx.arange(24, mx.float32).reshape([2, 3, 4]);
  const sing = mx.array([[1, 2], [2, 4]], mx.float32);
  const nanM = mx.array([[NaN, 2], [2, 1]], mx.float32);
  const ev = (x: mx.Array | mx.Array[]) => mx.eval(...(Array.isArray(x) ? x : [x]));
  const calls: Record<string, () => unknown> = {
    "qr 1d": () => L.qr(v3), "qr int": () => L.qr(i22), "qr f16": () => L.qr(h22), "qr complex": () => L.qr(c22),
    "svd 1d": () => L.svd(v3), "svd int": () => L.svd(i22), "svdvals f16": () => L.svd(h22, false),
    "inv 1d": () => L.inv(v3), "inv nonsquare": () => L.inv(m23), "inv int": () => L.inv(i22), "inv complex": () => L.inv(c22),
    "tri_inv nonsquare": () => L.triInv(m23), "tri_inv f16": () => L.triInv(h22),
    "cholesky nonsquare": () => L.cholesky(m23), "cholesky 1d": () => L.cholesky(v3), "cholesky int": () => L.cholesky(i22),
    "cholesky_inv nonsquare": () => L.choleskyInv(m23), "cholesky_inv 1d": () => L.choleskyInv(v3), "cholesky_inv int": () => L.choleskyInv(i22),
    "pinv 1d": () => L.pinv(v3), "pinv int": () => L.pinv(i22), "pinv complex": () => L.pinv(c22),
    "eig nonsquare": () => L.eig(m23), "eig 1d": () => L.eig(v3), "eig int": () => L.eig(i22),
    "eigvals nonsquare": () => L.eigvals(m23), "eigh nonsquare": () => L.eigh(m23), "eigh f16": () => L.eigh(h22),
    "eigvalsh 1d": () => L.eigvalsh(v3),
    "lu 1d": () => L.lu(v3), "lu int": () => L.lu(i22), "lu_factor 1d": () => L.luFactor(v3), "lu_factor f16": () => L.luFactor(h22),
    "det 1d": () => L.det(v3), "det nonsquare": () => L.det(m23), "det complex": () => L.det(c22),
    "slogdet nonsquare": () => L.slogdet(m23), "slogdet complex": () => L.slogdet(c22),
    "solve 1d": () => L.solve(v3, v3), "solve nonsquare": () => L.solve(m23, v3), "solve mismatch": () => L.solve(m33, mx.array([1, 2], mx.float32)),
    "solve b0d": () => L.solve(m33, mx.array(1, mx.float32)), "solve f16": () => L.solve(h22, h22), "solve int a": () => L.solve(i22, mx.array([1, 2], mx.float32)),
    "solve_triangular nonsquare": () => L.solveTriangular(m23, v3), "solve_triangular mismatch": () => L.solveTriangular(m33, mx.array([1, 2], mx.float32)),
    "solve_triangular int": () => L.solveTriangular(i22, i22),
    "inv singular": () => ev(L.inv(sing)), "inv zero": () => ev(L.inv(mx.zeros([2, 2]))),
    "tri_inv zero": () => ev(L.triInv(mx.zeros([2, 2]))), "solve singular": () => ev(L.solve(sing, mx.array([1, 2], mx.float32))),
    "cross size4": () => L.cross(mx.ones([4]), mx.ones([4])), "cross axis": () => L.cross(mx.ones([3, 2]), mx.ones([3, 2]), 5),
    "cross bcast": () => L.cross(mx.ones([4, 3]), mx.ones([2, 3])),
    "norm 3d ord": () => L.norm(t3, 2), "norm fro vec": () => L.norm(v3, "fro"), "norm nuc 3 axes": () => L.norm(t3, "nuc"),
    "norm matrix ord 0": () => L.norm(m23, 0), "norm matrix ord 3": () => L.norm(m23, 3), "norm matrix str": () => L.norm(m23, "abc"),
    "norm vec str": () => L.norm(v3, "abc"), "norm 3 axes": () => L.norm(t3, null, { axis: [0, 1, 2] }), "norm dup axes": () => L.norm(t3, null, { axis: [1, 1] }),
    "norm bad axis": () => L.norm(t3, null, { axis: 5 }), "norm 0d ord": () => L.norm(mx.array(3, mx.float32), 2), "norm int svd": () => L.norm(i22, 2),
    "norm empty inf": () => ev(L.norm(mx.zeros([0]), Infinity)),
    "svd nan": () => ev(L.svd(nanM)), "pinv nan": () => ev(L.pinv(nanM)),
  };
  for (const e of fx.errors) {
    test(e.id, () => {
      const f = calls[e.id];
      expect(f).toBeDefined();
      let caught: unknown;
      try {
        f!();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(mx.MlxError);
      expect((caught as Error).message).toBe(e.msg);
    });
  }
});

describe("transforms", () => {
  for (const g of fx.grad) {
    const fns: Record<string, (x: mx.Array) => mx.Array> = {
      det: (x) => L.det(x), "det singular": (x) => L.det(x), "det batch": (x) => L.det(x).sum(), slogdet: (x) => L.slogdet(x)[1],
      norm: (x) => L.norm(x), "norm inf": (x) => L.norm(x, Infinity), "norm fro axis": (x) => L.norm(x, "fro", { axis: [0, 1] }).sum(),
      cross: (x) => L.cross(x, mx.array([1, 2, 3], mx.float32)).sum(),
    };
    test(`grad ${g.name} equals MLX's`, () => {
      const r = mx.grad(fns[g.name]!)(arrayOf(g.input)) as mx.Array;
      expectMatch(r, g.grad);
      expectClose(nums(r), recNums(g.grad), 1e-4, g.name);
    });
  }

  test("det and slogdet vjp match central finite differences (float64)", () => {
    const a0 = [[2, 0.5, -1], [0.3, 1.5, 0.2], [-0.7, 0.1, 3]];
    for (const f of [(x: mx.Array) => L.det(x), (x: mx.Array) => L.slogdet(x)[1]]) {
      const g = nums(mx.grad(f)(mx.array(a0, mx.float64)) as mx.Array);
      const h = 1e-6;
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
        const p = a0.map((r) => [...r]);
        const q = a0.map((r) => [...r]);
        p[i]![j]! += h;
        q[i]![j]! -= h;
        const fd = (f(mx.array(p, mx.float64)).item() as number) - (f(mx.array(q, mx.float64)).item() as number);
        expect(Math.abs(fd / (2 * h) - g[3 * i + j]!)).toBeLessThan(1e-6);
      }
    }
  });

  test("jvp of det through its vjp: d det(A)[V] = tr(adj(A) V)", () => {
    const a = mx.array([[2, 1], [1, 3]], mx.float32);
    const v = mx.array([[1, 0], [0, 1]], mx.float32);
    const [, [t]] = mx.jvp((x: mx.Array) => L.det(x), [a], [v]);
    // adj(A) = [[3, -1], [-1, 2]]: tr(adj(A) I) = 5.
    expect(t!.item()).toBeCloseTo(5, 5);
  });

  test("factorizations have no vjp, as in MLX", () => {
    const a = mx.array([[4, 1], [1, 3]], mx.float32);
    const cases: [string, (x: mx.Array) => mx.Array][] = [
      ["QRF", (x) => L.qr(x)[0].sum()], ["SVD", (x) => L.svd(x, false).sum()], ["Inverse", (x) => L.inv(x).sum()],
      ["Cholesky", (x) => L.cholesky(x).sum()], ["Eigh", (x) => L.eigvalsh(x).sum()], ["LUF", (x) => L.lu(x)[1].sum()],
    ];
    for (const [name, f] of cases) {
      expect(() => mx.eval(mx.grad(f)(a) as mx.Array)).toThrow(`[Primitive::vjp] Not implemented for ${name}.`);
    }
  });

  test("vmap over factorizations equals the batched call", () => {
    const a = mx.array([[[4, 1], [1, 3]], [[2, -1], [-1, 5]], [[9, 2], [2, 1]]], mx.float32);
    const fns: ((x: mx.Array) => mx.Array)[] = [
      (x) => L.inv(x), (x) => L.cholesky(x), (x) => L.eigvalsh(x), (x) => L.svd(x, false), (x) => L.det(x),
      (x) => L.qr(x)[1], (x) => L.lu(x)[2], (x) => L.solve(x, mx.array([1, 2], mx.float32)), (x) => L.norm(x, 2, { axis: [-2, -1] }),
    ];
    for (const f of fns) {
      expectClose(nums(mx.vmap(f)(a) as mx.Array), nums(f(a)), 1e-6, "vmap");
      // The batch axis elsewhere: inAxes 2 over the transposed stack.
      const at = mx.transpose(a, [1, 2, 0]);
      expectClose(nums(mx.vmap(f, { inAxes: 2 })(at) as mx.Array), nums(f(a)), 1e-6, "vmap inAxes 2");
    }
  });
});

describe("properties", () => {
  test("non-finite input to eig fails with an error, not LAPACK's xerbla (MLX's process dies here)", () => {
    const n = mx.array([[NaN, 2], [2, 1]], mx.float32);
    expect(() => mx.eval(L.eigvals(n))).toThrow("[Eig::eval_cpu] Eigenvalue decomposition failed with error code -4");
    expect(() => mx.eval(L.svd(mx.array([[Infinity, 0], [0, 1]], mx.complex64), false))).toThrow("[SVD::eval_cpu] SVD failed with error code -4");
    // The graph stays usable: the same op on good data evaluates.
    expect(L.eigvals(mx.eye(2)).dtype).toBe(mx.complex64);
  });

  test("eigh reads only the named triangle (UPLO)", () => {
    const a = mx.array([[2, 1, 0], [99, 3, -1], [-7, 42, 4]], mx.float32);
    const fromUpper = mx.add(mx.triu(a), T(mx.triu(a, 1)));
    const fromLower = mx.add(mx.tril(a), T(mx.tril(a, -1)));
    expectClose(nums(L.eigvalsh(a, "U")), nums(L.eigvalsh(fromUpper)), 1e-5, "UPLO U");
    expectClose(nums(L.eigvalsh(a)), nums(L.eigvalsh(fromLower, "U")), 1e-5, "UPLO L");
  });

  test("triInv and cholesky ignore the other triangle", () => {
    const a = mx.array([[2, 100], [1, 4]], mx.float32);
    expectClose(nums(L.triInv(a)), [0.5, 0, -0.125, 0.25], 1e-7, "lower");
    expectClose(nums(L.triInv(a, true)), [0.5, -12.5, 0, 0.25], 1e-7, "upper");
    const s = mx.array([[4, 1000], [2, 3]], mx.float32);
    expectClose(nums(L.cholesky(s)), [2, 0, 1, Math.SQRT2], 1e-6, "cholesky lower");
  });

  test("non-contiguous and broadcast inputs", () => {
    const a = mx.array([[4, 1], [2, 3]], mx.float32);
    expectClose(nums(L.inv(T(a))), nums(T(L.inv(a))), 1e-6, "transposed view");
    const b = mx.broadcastTo(a, [3, 2, 2]);
    expectClose(nums(L.det(b)), [10, 10, 10], 1e-6, "broadcast");
  });

  test("1x1 and empty batches", () => {
    expectClose(nums(L.inv(mx.array([[4]], mx.float32))), [0.25], 0, "1x1 inv");
    expect([...L.inv(mx.zeros([0, 3, 3])).shape]).toEqual([0, 3, 3]);
    // MLX crashes (SIGFPE) on inv/lu of 0x0 matrices; here they are empty results.
    expect([...L.inv(mx.zeros([0, 0])).shape]).toEqual([0, 0]);
    const [p, l, u] = L.lu(mx.zeros([2, 0, 0]));
    expect([p.shape, l.shape, u.shape].map((s) => [...s])).toEqual([[2, 0], [2, 0, 0], [2, 0, 0]]);
  });

  test("float64 stays float64; eig is complex64 as in MLX", () => {
    const a = mx.array([[2, 1], [1, 2]], mx.float64);
    expect(L.inv(a).dtype).toBe(mx.float64);
    expect(L.eigvals(a).dtype).toBe(mx.complex64);
    expect(L.eigh(a)[0].dtype).toBe(mx.float64);
  });
});

describe("LAPACK loading", () => {
  test("a missing LAPACK gives a clear error that says what to install", () => {
    const script = `import * as mx from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).pathname)};
try { mx.linalg.inv(mx.eye(2)); console.log("no error"); } catch (e) { console.log(e.name + ": " + e.message); }`;
    const r = Bun.spawnSync([process.execPath, "-e", script], { env: { ...process.env, MLXB_LAPACK: "/nonexistent/liblapack.so.3" } });
    const out = r.stdout.toString();
    expect(r.exitCode).toBe(0);
    expect(out).toContain("MlxError: [linalg::inv] No usable LAPACK: MLXB_LAPACK is set to '/nonexistent/liblapack.so.3'");
    expect(out).toContain("Point MLXB_LAPACK at a LAPACK shared library");
  });
});
