// mx.fft against MLX 0.32.4 / NumPy reference data (test/fixtures/fft/gen_fft.py), plus identities
// (inverse of the forward transform, Parseval), vjp against MLX's vjp and finite differences,
// vmap against a loop, and the bad inputs with MLX's messages.
//
// Tolerance: the fixtures hold NumPy's float64 transform of the exact float32 inputs; ours must
// satisfy max |ours - exact| <= 4e-7 log2(2N) max|exact| + 1e-6 (N the transform size), the
// bound MLX's own float32 result was checked against when the fixtures were made.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { bytesOf, loadFixture, numbersOf } from "./fixture";

interface Case {
  fn: string;
  dtype: mx.DtypeName;
  shape: number[];
  seed: number;
  kw: Record<string, unknown>;
  view?: "T" | "step2";
  out_dtype: mx.DtypeName;
  out_shape: number[];
  N: number;
  mlx_err: number;
  idx?: number[];
  re: number[];
  im: number[] | null;
}
interface VjpCase {
  fn: string;
  dtype: mx.DtypeName;
  shape: number[];
  seed: number;
  kw: Record<string, unknown>;
  ct_dtype: mx.DtypeName;
  ct_shape: number[];
  ct_seed: number;
  out_dtype: mx.DtypeName;
  out_shape: number[];
  re: number[];
  im: number[] | null;
}
interface ErrCase {
  fn: string;
  shape: number[];
  dtype: mx.DtypeName;
  kw: Record<string, unknown>;
  msg: string;
}
interface StftCase {
  shape: number[];
  dtype: mx.DtypeName;
  seed: number;
  kw: Record<string, unknown>;
  win?: number;
  win_seed?: number;
  out_shape: number[];
  re: number[];
  im: number[];
  ikw?: Record<string, unknown>;
  inv_shape?: number[];
  inv?: number[];
}
interface Fixture {
  stfts: StftCase[];
  stft_errors: { fn: string; shape: number[]; kw: Record<string, unknown>; msg: string }[];
  cases: Case[];
  vjps: VjpCase[];
  errors: ErrCase[];
  freqs: { fn: string; n: number; d: number; dtype: mx.DtypeName; values: number[] }[];
  freq_errors: { fn: string; n: number; d: number; msg: string }[];
  shifts: { fn: string; shape: number[]; axes: number | number[] | null; values: number[]; out_shape: number[] }[];
}

const fx = loadFixture<Fixture>("fft/fft.json.gz");

/** gen_fft.py's formula: element i is ((7919 i + seed) mod 1009 - 504) / 256 (imaginary: i + 500009). */
function formula(dtype: mx.DtypeName, shape: number[], seed: number): mx.Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const f = (j: number) => ((7919 * j + seed) % 1009) - 504;
  if (dtype === "complex64") {
    const v = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      v[2 * i] = f(i) / 256;
      v[2 * i + 1] = f(i + 500009) / 256;
    }
    return mx.array(new BigUint64Array(v.buffer), { dtype: "complex64", shape, bits: true });
  }
  if (dtype === "int32") {
    const v = new Int32Array(n);
    for (let i = 0; i < n; i++) v[i] = Math.floor(f(i) / 16);
    return mx.array(v, { shape });
  }
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = f(i) / 256;
  return mx.array(v, { shape, dtype });
}

function operand(dtype: mx.DtypeName, shape: number[], seed: number, view?: "T" | "step2"): mx.Array {
  if (view === "T") {
    const st = [...shape.slice(0, -2), shape[shape.length - 1]!, shape[shape.length - 2]!];
    return mx.swapaxes(formula(dtype, st, seed), -1, -2);
  }
  if (view === "step2") {
    const st = [...shape.slice(0, -1), shape[shape.length - 1]! * 2];
    return formula(dtype, st, seed).index("...", mx.sl(null, null, 2));
  }
  return formula(dtype, shape, seed);
}

/** Interleaved (re, im) values of a complex or real array, row-major. */
function pairs(a: mx.Array): [number, number][] {
  const v = numbersOf(bytesOf(a), a.dtype.name);
  const out: [number, number][] = [];
  if (a.dtype.name === "complex64") for (let i = 0; i < v.length; i += 2) out.push([v[i]!, v[i + 1]!]);
  else for (const x of v) out.push([x, 0]);
  return out;
}

type Fn = (a: mx.Array, o?: Record<string, unknown>) => mx.Array;
const FNS = mx.fft as unknown as Record<string, Fn>;

function call(fn: string, a: mx.Array, kw: Record<string, unknown>): mx.Array {
  return FNS[fn]!(a, kw);
}

function maxErr(got: [number, number][], re: number[], im: number[] | null, idx?: number[]): { err: number; mag: number } {
  let err = 0;
  let mag = 0;
  re.forEach((r, k) => {
    const i = idx ? idx[k]! : k;
    const e = im ? im[k]! : 0;
    const g = got[i]!;
    err = Math.max(err, Math.hypot(g[0] - r, g[1] - e));
    mag = Math.max(mag, Math.hypot(r, e));
  });
  return { err, mag };
}

describe("transforms against NumPy's float64 results (MLX's shapes and dtypes)", () => {
  for (const c of fx.cases) {
    const name = `${c.fn}(${c.dtype}[${c.shape}]${c.view ? " " + c.view : ""}, ${JSON.stringify(c.kw)})`;
    test(name, () => {
      const x = operand(c.dtype, c.shape, c.seed, c.view);
      const y = call(c.fn, x, c.kw);
      expect(y.dtype.name).toBe(c.out_dtype);
      expect(y.shape).toEqual(c.out_shape);
      const got = pairs(y);
      const { err, mag } = maxErr(got, c.re, c.im, c.idx);
      const tol = 4e-7 * Math.log2(2 * c.N) * mag + 1e-6;
      expect(err).toBeLessThanOrEqual(tol);
      if (!c.idx) expect(got.length).toBe(c.re.length);
    });
  }
  test("every one of MLX's 18 names is exported", () => {
    const names = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "ifft", "ifft2", "ifftn", "ifftshift", "irfft", "irfft2", "irfftn", "istft", "rfft", "rfft2", "rfftfreq", "rfftn", "stft"];
    for (const n of names) expect(typeof (mx.fft as Record<string, unknown>)[n]).toBe("function");
  });
});

function randn(shape: number[], seed: number, dtype: mx.DtypeName = "float32"): mx.Array {
  const key = mx.random.key(seed);
  if (dtype === "complex64") {
    const [k1, k2] = mx.random.split(key);
    return mx.add(mx.random.normal(shape, { key: k1 }), mx.multiply(mx.random.normal(shape, { key: k2 }), { re: 0, im: 1 }));
  }
  return mx.random.normal(shape, { key });
}

function maxAbsDiff(a: mx.Array, b: mx.Array): number {
  return mx.max(mx.abs(mx.subtract(a, b))).item() as number;
}

describe("identities", () => {
  const sizes = [1, 2, 3, 7, 13, 97, 105, 128, 1009, 1024, 4096, 4 * 1009, 65536, 3 * 5 * 7 * 11 * 13];
  for (const n of sizes) {
    test(`ifft(fft(x)) = x, irfft(rfft(x), n) = x and Parseval, n = ${n}`, () => {
      const x = randn([n], n, "complex64");
      const tol = 2e-6 * Math.log2(2 * n) * 4;
      expect(maxAbsDiff(mx.fft.ifft(mx.fft.fft(x)), x)).toBeLessThan(tol);
      const r = randn([n], n + 1);
      expect(maxAbsDiff(mx.fft.irfft(mx.fft.rfft(r), { n }), r)).toBeLessThan(tol);
      // Parseval: sum |X|^2 = n sum |x|^2
      const e1 = mx.sum(mx.square(mx.abs(mx.fft.fft(x, { norm: "ortho" })))).item() as number;
      const e0 = mx.sum(mx.square(mx.abs(x))).item() as number;
      expect(Math.abs(e1 - e0) / e0).toBeLessThan(1e-5 * Math.log2(2 * n));
    });
  }
  test("a large batch over the thread pool equals one transform per row", () => {
    const x = randn([37, 300], 5, "complex64");
    const all = mx.fft.fft(x);
    for (const i of [0, 17, 36]) expect(maxAbsDiff(all.index(i), mx.fft.fft(x.index(i)))).toBe(0);
    const big = randn([64, 2048], 6);
    const rb = mx.fft.rfft(big);
    expect(maxAbsDiff(rb.index(63), mx.fft.rfft(big.index(63)))).toBe(0);
  });
  test("a delta transforms to ones and a constant to a delta (exact)", () => {
    const d = mx.zeros([12]).at(0).set(1);
    expect(pairs(mx.fft.fft(d))).toEqual(Array.from({ length: 12 }, () => [1, 0]));
    const c = mx.fft.fft(mx.ones([8]));
    expect(pairs(c)[0]).toEqual([8, 0]);
  });
});

describe("vjp", () => {
  for (const v of fx.vjps) {
    test(`${v.fn}(${v.dtype}[${v.shape}], ${JSON.stringify(v.kw)}) matches MLX's vjp`, () => {
      const x = formula(v.dtype, v.shape, v.seed);
      const ct = formula(v.ct_dtype, v.ct_shape, v.ct_seed);
      const [, [g]] = mx.vjp((z: mx.Array) => call(v.fn, z, v.kw), [x], [ct]);
      expect(g!.dtype.name).toBe(v.out_dtype);
      expect(g!.shape).toEqual(v.out_shape);
      const { err, mag } = maxErr(pairs(g!), v.re, v.im);
      expect(err).toBeLessThanOrEqual(1e-5 * mag + 1e-5);
    });
  }

  test("grad of a real loss through rfft, irfft and fft2 matches central finite differences", () => {
    // Real weights, real() and abs() only: the engine's vjp of complex multiply and imag
    // do not follow MLX's conjugate convention yet (a separate elementwise issue).
    const wr = randn([2, 5], 11);
    const wi = randn([2, 5], 13);
    const lossR = (x: mx.Array) => {
      const y = mx.fft.rfft(x, { norm: "ortho" });
      return mx.sum(mx.add(mx.multiply(mx.real(y), wr), mx.multiply(mx.abs(y), wi)));
    };
    const lossI = (x: mx.Array) => mx.sum(mx.square(mx.fft.irfft(mx.fft.fft2(mx.astype(x, "complex64")).index(mx.sl(), mx.sl(0, 5)), { n: 8 })));
    for (const loss of [lossR, lossI]) {
      const x = randn([2, 8], 12, "float64").astype(mx.float32);
      const g = pairs(mx.grad(loss)(x) as mx.Array).map((p) => p[0]);
      const xv = pairs(x).map((p) => p[0]);
      const h = 1e-2;
      xv.forEach((_, i) => {
        const plus = xv.slice();
        const minus = xv.slice();
        plus[i]! += h;
        minus[i]! -= h;
        const fp = loss(mx.array(new Float32Array(plus), { shape: [2, 8] })).item() as number;
        const fm = loss(mx.array(new Float32Array(minus), { shape: [2, 8] })).item() as number;
        const fd = (fp - fm) / (2 * h);
        expect(Math.abs(fd - g[i]!)).toBeLessThan(2e-2 * (1 + Math.abs(fd)));
      });
    }
  });

  test("grad of grad (the rules are graph ops)", () => {
    // f(x) = sum |fft(x)|^2 = n sum x^2 for real x: f' = 2 n x, and d/dx sum(f'(x)) = 2 n.
    const n = 6;
    const f = (x: mx.Array) => mx.sum(mx.square(mx.abs(mx.fft.fft(x))));
    const x = mx.array([0.5, -1, 2, 0.25, 3, -2], mx.float32);
    const g1 = pairs(mx.grad(f)(x) as mx.Array).map((p) => p[0]);
    g1.forEach((v, i) => expect(v).toBeCloseTo(2 * n * pairs(x)[i]![0], 3));
    const g2 = pairs(mx.grad((z: mx.Array) => mx.sum(mx.grad(f)(z) as mx.Array))(x) as mx.Array).map((p) => p[0]);
    g2.forEach((v) => expect(v).toBeCloseTo(2 * n, 3));
  });
});

describe("vmap", () => {
  const cases: [string, number[], mx.DtypeName, Record<string, unknown>][] = [
    ["fft", [4, 3, 6], "complex64", {}],
    ["ifft", [4, 3, 6], "complex64", { axis: 0, n: 5 }],
    ["rfft", [4, 3, 8], "float32", {}],
    ["irfft", [4, 3, 5], "complex64", { n: 9 }],
    ["fft2", [4, 3, 6], "complex64", {}],
    ["rfftn", [4, 3, 6], "float32", { axes: [0, 1] }],
    ["irfftn", [4, 3, 6], "complex64", { axes: [1, 0] }],
  ];
  for (const [fn, shape, dt, kw] of cases) {
    for (const inAxis of [0, 1, 2]) {
      test(`vmap(${fn} ${JSON.stringify(kw)}) over axis ${inAxis} equals a loop`, () => {
        const x = randn(shape, 21 + inAxis, dt);
        const f = (z: mx.Array) => call(fn, z, kw);
        const got = mx.vmap(f, { inAxes: inAxis })(x) as mx.Array;
        const parts: mx.Array[] = [];
        for (let i = 0; i < shape[inAxis]!; i++) parts.push(f(mx.take(x, i, inAxis)));
        const want = mx.stack(parts, 0);
        expect(got.shape).toEqual(want.shape);
        expect(got.dtype).toBe(want.dtype);
        expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
      });
    }
  }
  test("vmap of grad", () => {
    const f = (x: mx.Array) => mx.sum(mx.square(mx.abs(mx.fft.rfft(x))));
    const x = randn([3, 8], 31);
    const got = mx.vmap(mx.grad(f))(x) as mx.Array;
    const want = mx.stack([0, 1, 2].map((i) => mx.grad(f)(x.index(i)) as mx.Array), 0);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
  });
});

// MLX's binding reads a.shape[axis] before calling fftn and fails with "SmallVector out of
// range." (no op name); ours names the op.
const OUR_MESSAGES: Record<string, string> = {
  "fft []": "[fftn] Requires array with at least one dimension.",
};

describe("bad inputs give MLX's messages", () => {
  for (const e of fx.errors) {
    const key = `${e.fn} [${e.shape}]`;
    test(`${e.fn}(${e.dtype}[${e.shape}], ${JSON.stringify(e.kw)})`, () => {
      const a = mx.zeros(e.shape, { dtype: e.dtype });
      const want = e.msg === "SmallVector out of range." ? OUR_MESSAGES[key]! : e.msg;
      expect(() => call(e.fn, a, e.kw)).toThrow(want);
    });
  }
  test("bad axes name the op (MLX: 'SmallVector out of range.')", () => {
    expect(() => mx.fft.fft(mx.zeros([8]), { axis: 1 })).toThrow("[fftn] Invalid axis 1 for array with 1 dimensions.");
    expect(() => mx.fft.fft2(mx.zeros([8]))).toThrow("[fftn] Invalid axis -2 for array with 1 dimensions.");
    expect(() => mx.fft.rfftn(mx.zeros([3, 4]), { axes: [2] })).toThrow("[fftn] Invalid axis 2 for array with 2 dimensions.");
    expect(() => mx.fft.fft("x" as unknown as mx.Array)).toThrow("[fft] Expected an array as input.");
  });
  for (const e of fx.freq_errors) {
    test(`${e.fn}(${e.n}, ${e.d})`, () => {
      expect(() => FNS[e.fn]!(e.n as unknown as mx.Array, e.d as unknown as Record<string, unknown>)).toThrow(e.msg);
    });
  }
});

describe("fftfreq, rfftfreq, fftshift, ifftshift", () => {
  for (const f of fx.freqs) {
    test(`${f.fn}(${f.n}, ${f.d})`, () => {
      const fn = (mx.fft as unknown as Record<string, (n: number, d?: number) => mx.Array>)[f.fn]!;
      const a = fn(f.n, f.d);
      expect(a.dtype.name).toBe(f.dtype);
      const v = pairs(a).map((p) => p[0]);
      expect(v.length).toBe(f.values.length);
      v.forEach((x, i) => expect(Math.abs(x - f.values[i]!)).toBeLessThanOrEqual(Math.abs(f.values[i]!) * 2 ** -23));
      const b = fn(f.n, { d: f.d } as unknown as number);
      expect(pairs(b)).toEqual(pairs(a));
    });
  }
  for (const s of fx.shifts) {
    test(`${s.fn}([${s.shape}], axes=${JSON.stringify(s.axes)})`, () => {
      const a = mx.reshape(mx.arange(Math.max(1, s.shape.reduce((p, d) => p * d, 1))), s.shape);
      const r = (FNS[s.fn]! as (a: mx.Array, o?: unknown) => mx.Array)(a, s.axes === null ? undefined : { axes: s.axes });
      expect(r.shape).toEqual(s.out_shape);
      expect(pairs(r).map((p) => p[0])).toEqual(s.values);
    });
  }
});

/** MLX's keyword names to ours. */
function camel(kw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kw)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out;
}

describe("stft and istft against MLX", () => {
  for (const c of fx.stfts) {
    test(`stft(${c.dtype}[${c.shape}], ${JSON.stringify(c.kw)}${c.win ? ", window " + c.win : ""}) and istft(${JSON.stringify(c.ikw ?? null)})`, () => {
      const x = formula(c.dtype, c.shape, c.seed);
      const kw = camel(c.kw);
      const window = c.win ? mx.add(mx.abs(formula("float32", [c.win], c.win_seed!)), 0.25) : undefined;
      if (window) kw.window = window;
      const S = mx.fft.stft(x, kw);
      expect(S.dtype.name).toBe("complex64");
      expect(S.shape).toEqual(c.out_shape);
      const { err, mag } = maxErr(pairs(S), c.re, c.im);
      expect(err).toBeLessThanOrEqual(4e-7 * Math.log2(4 * (c.kw.n_fft as number)) * mag + 1e-5);
      if (c.ikw) {
        const ikw = camel(c.ikw);
        if (window) ikw.window = window;
        const y = mx.fft.istft(S, ikw);
        expect(y.dtype.name).toBe("float32");
        expect(y.shape).toEqual(c.inv_shape!);
        const r = maxErr(pairs(y), c.inv!, null);
        expect(r.err).toBeLessThanOrEqual(1e-5 * r.mag + 1e-5);
      }
    });
  }
  test("istft(stft(x)) = x", () => {
    const x = randn([3, 200], 41);
    const S = mx.fft.stft(x, { nFft: 32, hopLength: 8 });
    expect(maxAbsDiff(mx.fft.istft(S, { nFft: 32, hopLength: 8, length: 200 }), x)).toBeLessThan(1e-5);
  });
  test("stft is differentiable (grad of the spectrum's energy = 2 x * overlap count)", () => {
    // With a rectangular window, hop = nFft and no centering, each sample is in one frame:
    // sum |rfft|^2 over full spectrum is Parseval; use the two-sided transform.
    const x = randn([32], 42);
    const f = (z: mx.Array) => mx.sum(mx.square(mx.abs(mx.fft.stft(z, { nFft: 8, hopLength: 8, center: false, onesided: false, norm: "ortho" }))));
    const g = mx.grad(f)(x) as mx.Array;
    expect(maxAbsDiff(g, mx.multiply(x, 2))).toBeLessThan(1e-4);
  });
  for (const e of fx.stft_errors) {
    test(`${e.fn}([${e.shape}], ${JSON.stringify(e.kw)}) fails with MLX's message`, () => {
      const a = mx.zeros(e.shape, { dtype: e.fn === "istft" ? "complex64" : "float32" });
      const kw = camel(e.kw);
      if (kw.window2d) {
        delete kw.window2d;
        kw.window = mx.ones([4, 4]);
      }
      const fn = e.fn === "stft" ? mx.fft.stft : mx.fft.istft;
      expect(() => fn(a, kw)).toThrow(e.msg);
    });
  }
});
