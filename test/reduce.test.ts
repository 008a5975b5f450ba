// Reductions against real MLX: test/fixtures/reduce/gen_reduce.py records inputs, options and
// MLX 0.32.4's results or error messages. Results match bit for bit, except float reductions
// whose long contiguous runs mlx-bun sums in SIMD lanes (another order of the same additions,
// for speed): those cases carry a tolerance derived from the error bound of both orders (see
// order_tol in gen_reduce.py and "SIMD fast paths" in engine/prims/reduce.zig).
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { diffArray, fromRecord, fromHex, hexOf, type ArrayRecord } from "./fixtures/creation/helpers";
import { readFileSync } from "node:fs";
import { expectMlxError } from "./util";
import { lib } from "../ffi/lib";

interface Case {
  op: string;
  input?: number;
  other?: number;
  empty?: { dtype: mx.DtypeName; shape: number[] };
  bshape?: number[];
  opts: { axis?: number | number[] | null; keepdims?: boolean; ddof?: number; equalNan?: boolean; rtol?: number; atol?: number };
  want?: ArrayRecord;
  error?: string;
  /** Relative tolerance: |got - want| <= atol + tol * |want|. */
  tol?: number;
  /** Absolute tolerance. */
  atol?: number;
}

const fixture = JSON.parse(new TextDecoder().decode(Bun.gunzipSync(readFileSync(new URL("./fixtures/reduce/reduce.json.gz", import.meta.url))))) as {
  mlx_version: string;
  inputs: ArrayRecord[];
  cases: Case[];
};

type Fn = (a: mx.Array, o: Record<string, unknown>) => mx.Array;
const ops: Record<string, Fn> = {
  sum: mx.sum, prod: mx.prod, min: mx.min, max: mx.max, all: mx.all, any: mx.any, mean: mx.mean,
  var: mx.variance, std: mx.std, logsumexp: mx.logsumexp, count_nonzero: mx.countNonzero, median: mx.median,
  argmin: mx.argmin, argmax: mx.argmax,
};

function inputOf(c: Case): mx.Array {
  if (c.empty) return mx.zeros(c.empty.shape, c.empty.dtype);
  const x = fromRecord(fixture.inputs[c.input!]!);
  return c.bshape ? mx.full(c.bshape, x) : x;
}

function run(c: Case): mx.Array {
  const x = inputOf(c);
  if (c.op === "array_equal") return mx.arrayEqual(x, fromRecord(fixture.inputs[c.other!]!), { equalNan: c.opts.equalNan });
  if (c.op === "allclose") return mx.allclose(x, fromRecord(fixture.inputs[c.other!]!), c.opts);
  const o: Record<string, unknown> = {};
  if ("axis" in c.opts) o.axis = c.opts.axis;
  if (c.opts.keepdims) o.keepdims = true;
  if (c.opts.ddof !== undefined) o.ddof = c.opts.ddof;
  return ops[c.op]!(x, o);
}

/** Values of a float/complex record as numbers (complex: re, im interleaved). */
function floats(dtype: mx.DtypeName, bytes: Uint8Array): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  const n = bytes.length;
  for (let i = 0; i < n; ) {
    switch (dtype) {
      case "float16": out.push(dv.getFloat16(i, true)); i += 2; break;
      case "bfloat16": out.push(new Float32Array(new Uint32Array([dv.getUint16(i, true) << 16]).buffer)[0]!); i += 2; break;
      case "float64": out.push(dv.getFloat64(i, true)); i += 8; break;
      default: out.push(dv.getFloat32(i, true)); i += 4; break;
    }
  }
  return out;
}

function check(c: Case): string | null {
  let got: mx.Array;
  try {
    got = run(c);
    mx.eval(got);
  } catch (e) {
    if (c.error !== undefined) return (e as Error).message === c.error ? null : `error "${(e as Error).message}", expected "${c.error}"`;
    return `threw ${(e as Error).message}`;
  }
  if (c.error !== undefined) return `no error, expected "${c.error}"`;
  const want = c.want!;
  const exact = diffArray(got, want);
  if (exact === null) return null;
  if (got.dtype.name !== want.dtype) return `dtype ${got.dtype.name}, expected ${want.dtype}`;
  const inexact = ["float16", "bfloat16", "float32", "float64", "complex64"].includes(want.dtype);
  // NaN payloads and signs are not compared (x86 picks between NaN operands by position).
  const tolerant = c.tol !== undefined || c.atol !== undefined;
  if (!tolerant && !inexact) return exact;
  if (got.shape.join() !== want.shape.join()) return `shape [${got.shape}], expected [${want.shape}]`;
  const ta = got.dtype === mx.bfloat16 ? got.toTypedArray({ bits: true }) : got.toTypedArray();
  const g = floats(want.dtype, new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength));
  const w = floats(want.dtype, fromHex(want.hex));
  for (let i = 0; i < w.length; i++) {
    const a = g[i]!;
    const b = w[i]!;
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    if (Object.is(a, b)) continue;
    if (!tolerant) return exact;
    const bound = (c.atol ?? 0) + (c.tol ?? 0) * Math.max(Math.abs(b), 1e-30);
    if (!(Math.abs(a - b) <= bound) && a !== b) return `[${i}] ${a}, expected ${b} (atol ${c.atol ?? 0}, rtol ${c.tol ?? 0})`;
  }
  return null;
}

function label(c: Case): string {
  const dtype = c.empty?.dtype ?? fixture.inputs[c.input!]!.dtype;
  const shape = c.empty?.shape ?? fixture.inputs[c.input!]!.shape;
  return `${c.op} ${dtype}[${shape}]${c.bshape ? `->[${c.bshape}]` : ""} ${JSON.stringify(c.opts)}`;
}

describe(`reductions match MLX ${fixture.mlx_version}`, () => {
  const groups = new Map<string, Case[]>();
  for (const c of fixture.cases) {
    const dtype = c.empty?.dtype ?? fixture.inputs[c.input!]!.dtype;
    const key = `${c.op} ${dtype}${c.error !== undefined ? " (errors)" : ""}${c.bshape ? " (broadcast)" : ""}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(c);
  }
  for (const [key, cs] of groups) {
    test(`${key}: ${cs.length} cases`, () => {
      const failures: string[] = [];
      mx.tidy(() => {
        for (const c of cs) {
          const d = check(c);
          if (d !== null) failures.push(`${label(c)}: ${d}`);
        }
      });
      expect(failures.slice(0, 8)).toEqual([]);
    });
  }
});

/** A complex64 array from interleaved (re, im) pairs. */
function complexArray(v: number[], shape: number[]): mx.Array {
  const vals: { re: number; im: number }[] = [];
  for (let i = 0; i < v.length; i += 2) vals.push({ re: v[i]!, im: v[i + 1]! });
  return mx.array(vals, { dtype: mx.complex64 }).reshape(shape);
}

describe("reductions: API", () => {
  test("shorthand axis arguments and methods", () => {
    const a = mx.array([[1, 2, 3], [4, 5, 6]]);
    expect(mx.sum(a, 0).tolist()).toEqual([5, 7, 9]);
    expect(mx.sum(a, [0, 1]).item()).toBe(21);
    expect(a.sum({ axis: 1 }).tolist()).toEqual([6, 15]);
    expect(a.prod().item()).toBe(720);
    expect(a.min().item()).toBe(1);
    expect(a.max({ axis: 0, keepdims: true }).tolist()).toEqual([[4, 5, 6]]);
    expect(a.mean().item()).toBe(3.5);
    expect(a.var({ ddof: 1 }).item()).toBe(3.5);
    expect(a.std().item()).toBeCloseTo(Math.sqrt(35 / 12), 6);
    expect(a.all().item()).toBe(true);
    expect(a.any({ axis: 0 }).tolist()).toEqual([true, true, true]);
    expect(a.argmin().item()).toBe(0);
    expect(a.argmax({ axis: 1 }).tolist()).toEqual([2, 2]);
    expect(a.logsumexp({ axis: 1 }).shape).toEqual([2]);
    expect((mx as unknown as Record<string, unknown>).var).toBe(mx.variance);
  });

  test("scalars are accepted", () => {
    expect(mx.sum(3).item()).toBe(3);
    expect(mx.all(true).item()).toBe(true);
  });

  test("non-integer axes are rejected", () => {
    expectMlxError(() => mx.sum(mx.array([1, 2]), { axis: 0.5 }), /\[sum\] Axis must be an integer/);
    expectMlxError(() => mx.argmax(mx.array([1, 2]), { axis: 0.5 }), /\[argmax\] Axis must be an integer/);
  });

  test("large reductions split over threads give the sequential result", () => {
    // Integers make the expected sums exact whatever the order.
    const n = 1 << 20;
    const data = new Int32Array(n);
    for (let i = 0; i < n; i++) data[i] = (i * 7919) % 1000;
    const x = mx.array(data, { shape: [1024, 1024] });
    let total = 0;
    const rows = new Array<number>(1024).fill(0);
    const cols = new Array<number>(1024).fill(0);
    for (let i = 0; i < n; i++) {
      total += data[i]!;
      rows[Math.floor(i / 1024)]! += data[i]!;
      cols[i % 1024]! += data[i]!;
    }
    expect(mx.sum(x).item()).toBe(total);
    expect(mx.sum(x, { axis: 1 }).tolist()).toEqual(rows);
    expect(mx.sum(x, { axis: 0 }).tolist()).toEqual(cols);
    expect(mx.sum(x.astype(mx.float32), { axis: 1 }).tolist()).toEqual(rows);
  });

  test("var/std of complex64: float32, the mean of re^2 + im^2 of the deviations (MLX 0.32.4)", () => {
    const x = complexArray([1, 2, 3, -1, -2, 0.5, 0.5, 0, 0, 1, 2, 2], [2, 3]);
    // mean = 0.75 + 0.75i; |x - mean|^2 = 1.625, 8.125, 7.625, 0.625, 0.625, 3.125 (sum 21.75).
    const v = mx.variance(x);
    expect(v.dtype).toBe(mx.float32);
    expect(v.item()).toBe(3.625);
    expect(mx.variance(x, { axis: 0 }).tolist()).toEqual([1.0625, 3.25, 4.5625]);
    const d1 = mx.variance(x, { axis: 1, ddof: 1 }).tolist() as number[];
    expect(d1[0]).toBeCloseTo(103 / 12, 5); // sum of |x - mean|^2 along the row: 103/6, over N - 1 = 2
    expect(d1[1]).toBeCloseTo(25 / 12, 5);
    expect(mx.std(x).item()).toBe(Math.fround(Math.sqrt(3.625)));
    expect(x.var({ axis: [] }).tolist()).toEqual([[0, 0, 0], [0, 0, 0]]);
  });

  test("median of complex64: ordered by real then imaginary part; NaN gives (NaN, 0)", () => {
    const c = (...v: number[]) => complexArray(v, [v.length / 2]);
    const bits = (a: mx.Array) => {
      const t = a.toTypedArray() as Float32Array;
      return [...new Uint32Array(t.buffer, t.byteOffset, t.length)].map((b) => b.toString(16));
    };
    // sorted: (-0+1i), (1-1i), (1-0i), (1+1i); ((1-1i) + (1-0i)) * (0.5 + 0i) = 1 - 0.5i
    expect(bits(mx.median(c(1, 1, 1, -1, 1, -0, -0, 1)))).toEqual(["3f800000", "bf000000"]);
    expect(bits(mx.median(c(1, 1, NaN, 0, 2, 0, 3, 5)))).toEqual(["7fc00000", "0"]);
    expect(bits(mx.median(c(1, 1, 0, NaN, 2, 0, 3, 5, -1, 0)))).toEqual(["7fc00000", "0"]);
    // (2 + (inf - 3i)) * (0.5 + 0i): the imaginary part is inf * 0 + ... = NaN, as in MLX.
    const m = mx.median(c(1, 1, Infinity, 1, 2, 0, Infinity, -3)).toTypedArray() as Float32Array;
    expect(m[0]).toBe(Infinity);
    expect(Number.isNaN(m[1])).toBe(true);
    expect(mx.median(c(3, 0, 1, 2, 2, 9)).dtype).toBe(mx.complex64);
  });

  test("logsumexp over other axes than the last alone matches MLX bit for bit", () => {
    // MLX composes these from max, subtract, exp, sum and log (its fused kernel takes the last
    // axis alone); the fixture compares them exactly unless a long contiguous run's sum is
    // reordered (order_tol in gen_reduce.py), so count the exact ones.
    const composed = fixture.cases.filter((c) => {
      if (c.op !== "logsumexp" || c.error !== undefined || c.bshape !== undefined) return false;
      const shape = fixture.inputs[c.input!]!.shape;
      const axis = c.opts.axis;
      const axes = axis === null || axis === undefined ? shape.map((_, i) => i) : typeof axis === "number" ? [axis] : axis;
      const nd = shape.length;
      const norm = axes.map((a) => (a + nd) % nd);
      return nd > 0 && norm.length > 0 && !(norm[norm.length - 1] === nd - 1 && norm.slice(0, -1).every((a, i) => norm[i + 1] === a + 1 && shape[a] === 1));
    });
    const exact = composed.filter((c) => c.tol === undefined && c.atol === undefined);
    expect(exact.length).toBeGreaterThan(200);
    const failures = mx.tidy(() => exact.map((c) => [label(c), check(c)] as const).filter(([, d]) => d !== null));
    expect(failures).toEqual([]);
  });
});

describe("SIMD fast paths against the reference loops (mlxb_set_reference_mode)", () => {
  /** Deterministic pseudo-random values in [-4, 4) with some exact zeros of both signs. */
  function randomData(n: number, seed: number, intValued: boolean): Float32Array {
    const out = new Float32Array(n);
    let s = seed >>> 0;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const u = s / 2 ** 32;
      out[i] = i % 97 === 5 ? 0 : i % 89 === 7 ? -0 : intValued ? Math.floor(u * 64) - 32 : (u - 0.5) * 8;
    }
    return out;
  }

  function bothModes(f: () => mx.Array): [mx.Array, mx.Array] {
    lib.mlxb_set_reference_mode(1);
    let ref: mx.Array;
    try {
      ref = f();
      mx.eval(ref);
    } finally {
      lib.mlxb_set_reference_mode(0);
    }
    const fast = f();
    mx.eval(fast);
    return [ref, fast];
  }

  // Whole runs (many blocks, in parallel), rows along the last axis (many, and one long one),
  // columns (whole, and split into row ranges), segments.
  const layouts: { shape: number[]; axis: number | number[] | null }[] = [
    { shape: [1 << 20], axis: null },
    { shape: [1024, 1024], axis: 1 },
    { shape: [1024, 1024], axis: 0 },
    { shape: [1, 300000], axis: 1 },
    { shape: [3000, 130], axis: 0 },
    { shape: [8, 200, 301], axis: [0, 2] },
    { shape: [8, 200, 301], axis: [0, 1] },
    { shape: [2048, 1100], axis: 0 }, // rows split into ranges (2M elements and more)
    { shape: [4, 600, 1000], axis: [0, 1] },
  ];
  const dtypes = [mx.float32, mx.int32, mx.float16, mx.uint8, mx.float64];

  for (const { shape, axis } of layouts) {
    test(`[${shape}] axis ${JSON.stringify(axis)}`, () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const fails: string[] = [];
      mx.tidy(() => {
        for (const intValued of [true, false]) {
          const base = mx.array(randomData(n, n + (intValued ? 1 : 2), intValued), { shape });
          for (const dt of dtypes) {
            const x = base.astype(dt);
            for (const op of ["sum", "prod", "max", "min", "mean", "argmax", "argmin"] as const) {
              if ((op === "argmax" || op === "argmin") && Array.isArray(axis)) continue;
              const [ref, fast] = bothModes(() => (mx[op] as (a: mx.Array, o: object) => mx.Array)(x, axis === null ? {} : { axis }));
              const exact = diffArray(fast, { dtype: ref.dtype.name, shape: [...ref.shape], hex: hexOf(ref) });
              if (exact === null) continue;
              // Only float sums, means and products may differ: sums by the reordering's error
              // bound (integer-valued ones are exact in any order; others here within 4e-5 of
              // max(|result|, sqrt(n) * 4)), products by rounding, and where the order decides
              // between overflow, underflow and inf * 0 (MLX's own order is no more right there).
              const reordered = (op === "sum" || op === "mean" || op === "prod") && dt.isFloating && (!intValued || op === "prod");
              if (!reordered) {
                fails.push(`${op} ${dt.name} int=${intValued}: ${exact}`);
                continue;
              }
              const a = ref.astype(mx.float64).toTypedArray() as Float64Array;
              const b = fast.astype(mx.float64).toTypedArray() as Float64Array;
              const scale = op === "sum" ? Math.sqrt(n / a.length) * 4 : 1;
              const tol = dt === mx.float16 ? 2e-3 : 4e-5;
              for (let i = 0; i < a.length; i++) {
                if (op === "prod" && ![a[i]!, b[i]!].every((v) => Number.isFinite(v) && v !== 0)) continue;
                const d = Math.abs(a[i]! - b[i]!);
                if (!(d <= tol * Math.max(Math.abs(a[i]!), scale)) && a[i] !== b[i]) {
                  fails.push(`${op} ${dt.name} [${i}]: fast ${b[i]}, reference ${a[i]}`);
                  break;
                }
              }
            }
          }
        }
      });
      expect(fails.slice(0, 8)).toEqual([]);
    });
  }
});
