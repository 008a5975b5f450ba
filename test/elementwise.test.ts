// Elementwise ops against real MLX: every unary and binary op on every dtype (values, output
// dtype, MLX's error text), mixed-dtype pairs, weak typing of JS scalars on either side,
// broadcasting, and the composite ops (round with decimals, clip, nanToNum, isclose, divmod,
// where). Expected values come from test/fixtures/elementwise/elementwise.json, written by
// gen_elementwise.py from MLX 0.32.4; these tests never run Python.
//
// Tolerances: exact ops are compared bit for bit (any NaN matches any NaN: MLX's NaN sign and
// payload follow x86 instruction choices, not IEEE). Transcendental ops: float32, complex64 and
// float64 within 1 ulp of MLX, float16/bfloat16 within 1 ulp. The engine runs MLX's own
// algorithms (its float32 exp, sin/cos, erf, erfinv, also for float64) and the C library for
// the rest, so most results are bit-identical; the 1-ulp cases are C library differences
// (log, log10, tan) and half-precision intermediate rounding (rsqrt, degrees, sigmoid).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { lib } from "../ffi/lib";
import * as mx from "../src/index.ts";
import { bytesOf, diffArray, fromHex, fromRecord, type ArrayRecord } from "./fixtures/creation/helpers.ts";

type Result = ArrayRecord | { error: string };
interface UnaryCase { op: string; dtype: mx.DtypeName; result: Result }
interface BinaryCase { op: string; dtype: mx.DtypeName; b?: ArrayRecord; result: Result }
interface MixedCase { op: string; a: mx.DtypeName; b: mx.DtypeName; result: Result }
interface WeakCase { op: string; dtype: mx.DtypeName | null; scalar: unknown; scalar2?: unknown; side: "left" | "right" | "both"; result: Result }
interface BroadcastCase { op: string; a: number[]; b: number[]; result: Result }
interface CompositeCase { name: string; args: Record<string, unknown>; inputs: Record<string, ArrayRecord>; result: Result }
interface Fixture {
  mlx_version: string;
  inputs: Record<mx.DtypeName, { unary: ArrayRecord; binary_a: ArrayRecord; binary_b: ArrayRecord }>;
  unary: UnaryCase[];
  binary: BinaryCase[];
  mixed: MixedCase[];
  weak: WeakCase[];
  broadcast: BroadcastCase[];
  composite: CompositeCase[];
}

const fx = JSON.parse(readFileSync(new URL("./fixtures/elementwise/elementwise.json", import.meta.url), "utf8")) as Fixture;

const MAX_ULPS_F32 = 1;
const MAX_ULPS_F64 = 1;

/** Ops whose float results MLX rounds correctly (or that are exact): compared bit for bit. */
const EXACT = new Set([
  "abs", "sign", "negative", "trunc", "square", "sqrt", "reciprocal", "floor", "ceil", "round", "conj", "real",
  "imag", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "logical_not", "bitwise_invert", "add", "subtract",
  "multiply", "divide", "floor_divide", "remainder", "maximum", "minimum", "equal", "not_equal", "less",
  "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
  "bitwise_xor", "left_shift", "right_shift",
]);

function camel(op: string): string {
  return op.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function decodeScalar(v: unknown): number | boolean | mx.Complex {
  if (typeof v === "number" || typeof v === "boolean") return v;
  const o = v as Record<string, unknown>;
  if ("float" in o) return ({ nan: NaN, inf: Infinity, "-inf": -Infinity, "-0": -0 } as Record<string, number>)[o.float as string]!;
  return { re: decodeScalar(o.re) as number, im: decodeScalar(o.im) as number };
}

/** A float's bits as an integer that orders like the value (so ulp distance is a difference). */
function ordered(bits: bigint, width: number): bigint {
  const sign = 1n << BigInt(width - 1);
  return bits & sign ? -(bits & (sign - 1n)) : bits;
}

function floatLayout(d: mx.DtypeName): { width: number; exp: number; man: number } | null {
  switch (d) {
    case "float16":
      return { width: 16, exp: 5, man: 10 };
    case "bfloat16":
      return { width: 16, exp: 8, man: 7 };
    case "float32":
    case "complex64":
      return { width: 32, exp: 8, man: 23 };
    case "float64":
      return { width: 64, exp: 11, man: 52 };
    default:
      return null;
  }
}

function readBits(bytes: Uint8Array, i: number, width: number): bigint {
  let v = 0n;
  for (let k = width / 8 - 1; k >= 0; k--) v = (v << 8n) | BigInt(bytes[i * (width / 8) + k]!);
  return v;
}

function isNanBits(b: bigint, l: { exp: number; man: number }): boolean {
  const e = (b >> BigInt(l.man)) & ((1n << BigInt(l.exp)) - 1n);
  return e === (1n << BigInt(l.exp)) - 1n && (b & ((1n << BigInt(l.man)) - 1n)) !== 0n;
}

/** null when `got` matches `want` (dtype, shape, values within `ulps`), else what differs. */
function compare(got: mx.Array, want: ArrayRecord, ulps: number): string | null {
  const l = floatLayout(want.dtype);
  if (l === null) return diffArray(got, want);
  if (got.dtype.name !== want.dtype) return `dtype ${got.dtype.name}, expected ${want.dtype}`;
  if (got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) return `shape [${got.shape}], expected [${want.shape}]`;
  const g = bytesOf(got);
  const w = fromHex(want.hex);
  if (g.length !== w.length) return `${g.length} bytes, expected ${w.length}`;
  const n = g.length / (l.width / 8);
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < n; i++) {
    const a = readBits(g, i, l.width);
    const b = readBits(w, i, l.width);
    if (a === b || (isNanBits(a, l) && isNanBits(b, l))) continue;
    const dist = ordered(a, l.width) - ordered(b, l.width);
    if (!isNanBits(a, l) && !isNanBits(b, l) && (dist < 0n ? -dist : dist) <= BigInt(ulps)) continue;
    count++;
    if (bad.length < 6) bad.push(`[${i}] 0x${a.toString(16)} expected 0x${b.toString(16)}`);
  }
  return count === 0 ? null : `${count} of ${n} differ: ${bad.join("; ")}`;
}

function ulpsFor(op: string, dtype: mx.DtypeName): number {
  if (EXACT.has(op)) return 0;
  if (dtype === "float16" || dtype === "bfloat16") return 1;
  return dtype === "float64" ? MAX_ULPS_F64 : MAX_ULPS_F32;
}

/** Run `f` and check its array against `want` (or its MLX error text against want.error). */
function check(label: string, want: Result, ulps: number, f: () => mx.Array): string | null {
  let got: mx.Array;
  try {
    got = f();
    got.tolist();
  } catch (e) {
    const msg = (e as Error).message;
    if ("error" in want) return msg === want.error ? null : `${label}: error ${JSON.stringify(msg)}, expected ${JSON.stringify(want.error)}`;
    return `${label}: threw ${JSON.stringify(msg)}`;
  }
  if ("error" in want) return `${label}: gave ${got.dtype.name}, expected error ${JSON.stringify(want.error)}`;
  const d = compare(got, want, ulps);
  return d === null ? null : `${label}: ${d}`;
}

type Fn = (...args: unknown[]) => mx.Array;
const mxf = mx as unknown as Record<string, Fn>;

const DTYPES = Object.keys(fx.inputs) as mx.DtypeName[];
const UNARY_OPS = [...new Set(fx.unary.map((c) => c.op))];
const BINARY_OPS = [...new Set(fx.binary.map((c) => c.op))];

describe(`unary ops x 14 dtypes (MLX ${fx.mlx_version})`, () => {
  for (const op of UNARY_OPS) {
    test(op, () => {
      const fails: string[] = [];
      for (const c of fx.unary.filter((u) => u.op === op)) {
        const x = fromRecord(fx.inputs[c.dtype].unary);
        const f = mxf[camel(op)]!;
        const r = check(`${op} ${c.dtype}`, c.result, ulpsFor(op, c.dtype), () => f(x));
        if (r !== null) fails.push(r);
      }
      expect(fails).toEqual([]);
    });
  }
});

describe("binary ops x 14 dtypes, all pairs of edge values", () => {
  for (const op of BINARY_OPS) {
    test(op, () => {
      const fails: string[] = [];
      for (const c of fx.binary.filter((u) => u.op === op)) {
        const a = fromRecord(fx.inputs[c.dtype].binary_a);
        const b = fromRecord(c.b ?? fx.inputs[c.dtype].binary_b);
        const f = mxf[camel(op)]!;
        const r = check(`${op} ${c.dtype}`, c.result, ulpsFor(op, c.dtype), () => f(a, b));
        if (r !== null) fails.push(r);
      }
      expect(fails).toEqual([]);
    });
  }
});

describe("mixed dtypes: output dtype, values and errors for every pair", () => {
  for (const op of [...new Set(fx.mixed.map((c) => c.op))]) {
    test(op, () => {
      const fails: string[] = [];
      for (const c of fx.mixed.filter((m) => m.op === op)) {
        const a = mx.array([0, 1, 3, 5]).astype(c.a);
        const b = mx.array([1, 2, 1, 3]).astype(c.b);
        const out = "error" in c.result ? "float32" : c.result.dtype;
        const r = check(`${op} ${c.a},${c.b}`, c.result, ulpsFor(op, out), () => mxf[camel(op)]!(a, b));
        if (r !== null) fails.push(r);
      }
      expect(fails).toEqual([]);
    });
  }
});

describe("weak typing of JS scalars", () => {
  for (const op of [...new Set(fx.weak.map((c) => c.op))]) {
    test(`${op}: scalar on either side, every array dtype`, () => {
      const fails: string[] = [];
      for (const c of fx.weak.filter((w) => w.op === op)) {
        const s = decodeScalar(c.scalar);
        const f = mxf[camel(op)]!;
        const out = "error" in c.result ? "float32" : c.result.dtype;
        const ulps = ulpsFor(op, out);
        let r: string | null;
        if (c.side === "both") {
          r = check(`${JSON.stringify(c.scalar)} + ${JSON.stringify(c.scalar2)}`, c.result, ulps, () => f(s, decodeScalar(c.scalar2)));
        } else {
          const x = mx.array([0, 1, 3, 5]).astype(c.dtype!);
          const label = `${op} ${c.dtype} ${c.side} ${JSON.stringify(c.scalar)}`;
          r = check(label, c.result, ulps, () => (c.side === "right" ? f(x, s) : f(s, x)));
        }
        if (r !== null) fails.push(r);
      }
      expect(fails).toEqual([]);
    });
  }
});

function arangeShaped(shape: number[], f: (i: number) => number): mx.Array {
  const n = shape.reduce((p, d) => p * d, 1);
  return mx.array(Float32Array.from({ length: n }, (_v, i) => f(i)), { shape });
}

describe("broadcasting", () => {
  test("shapes, 0-d, zero-size, rank mismatch and the incompatible-shape message", () => {
    const fails: string[] = [];
    for (const c of fx.broadcast) {
      const a = arangeShaped(c.a, (i) => i * 0.5 - 1);
      const b = arangeShaped(c.b, (i) => i + 2);
      const r = check(`${c.op} (${c.a}) (${c.b})`, c.result, ulpsFor(c.op, "float32"), () => mxf[c.op]!(a, b));
      if (r !== null) fails.push(r);
    }
    expect(fails).toEqual([]);
  });

  test("stride-0 inputs (full from a row) give the same values as contiguous ones", () => {
    const row = mx.array([1, 2, 3, 4]);
    const s0 = mx.full([3, 4], row);
    const col = mx.array([[10], [20], [30]]);
    // Hand-computed: (row broadcast) * col + row.
    expect(mx.add(mx.multiply(s0, col), s0).tolist()).toEqual([
      [11, 22, 33, 44],
      [21, 42, 63, 84],
      [31, 62, 93, 124],
    ]);
    expect(mx.negative(s0).tolist()).toEqual([[-1, -2, -3, -4], [-1, -2, -3, -4], [-1, -2, -3, -4]]);
    expect(mx.where(mx.greater(s0, 2), s0, mx.full([3, 4], mx.array([0]))).tolist()).toEqual([
      [0, 0, 3, 4],
      [0, 0, 3, 4],
      [0, 0, 3, 4],
    ]);
  });

  test("large arrays (parallel kernels) match element by element", () => {
    const n = 300_001;
    const a = Float32Array.from({ length: n }, (_v, i) => (i % 1000) - 500.25);
    const b = Float32Array.from({ length: n }, (_v, i) => (i % 77) + 0.5);
    const got = mx.add(mx.multiply(mx.array(a), mx.array(b)), 1).toTypedArray() as Float32Array;
    let bad = 0;
    for (let i = 0; i < n; i++) if (got[i] !== Math.fround(Math.fround(a[i]! * b[i]!) + 1)) bad++;
    expect(bad).toBe(0);
  });
});

describe("composite ops", () => {
  for (const name of [...new Set(fx.composite.map((c) => c.name))]) {
    test(name, () => {
      const fails: string[] = [];
      for (const c of fx.composite.filter((k) => k.name === name)) {
        const x = c.inputs.x === undefined ? undefined : fromRecord(c.inputs.x);
        const y = c.inputs.y === undefined ? undefined : fromRecord(c.inputs.y);
        const a = c.args;
        const label = JSON.stringify(a);
        const n = x?.size ?? 0;
        let f: () => mx.Array;
        let want = c.result;
        switch (name) {
          case "round":
            f = () => mx.round(x!, a.decimals as number);
            break;
          case "clip":
            f = () => mx.clip(x!, a.lo as number | null, a.hi as number | null);
            break;
          case "nan_to_num":
            f = () => mx.nanToNum(x!, { nan: a.nan as number | undefined, posinf: a.posinf as number | undefined, neginf: a.neginf as number | undefined });
            break;
          case "isclose":
            f = () => mx.isclose(x!, y!, { rtol: a.rtol as number | undefined, atol: a.atol as number | undefined, equalNan: a.equal_nan as boolean | undefined });
            break;
          case "divmod": {
            // MLX's result is stack([quotient, remainder]): compare each half.
            if (!("error" in want)) {
              const half = want.hex.length / 2;
              const q = { ...want, shape: want.shape.slice(1), hex: want.hex.slice(0, half) };
              const rm = { ...want, shape: want.shape.slice(1), hex: want.hex.slice(half) };
              const r1 = check(`${label} quotient`, q, 0, () => mx.divmod(x!, y!)[0]);
              const r2 = check(`${label} remainder`, rm, 0, () => mx.divmod(x!, y!)[1]);
              if (r1 !== null) fails.push(r1);
              if (r2 !== null) fails.push(r2);
              continue;
            }
            f = () => mx.divmod(x!, y!)[0];
            break;
          }
          case "where": {
            if (a.dtype === "broadcast") {
              f = () => mx.where(mx.array([[true], [false]]), mx.arange(3), mx.array(2.5));
            } else if (a.dtype === "mismatch") {
              f = () => mx.where(mx.array([true, false]), mx.arange(3), 1);
            } else {
              const every = a.x !== undefined || a.y !== undefined ? 2 : 3;
              const cond = mx.array(Array.from({ length: n }, (_v, i) => i % every === 0));
              if (a.x !== undefined) f = () => mx.where(cond, a.x as number, x!);
              else if (a.y !== undefined) f = () => mx.where(cond, x!, a.y as number);
              else f = () => mx.where(cond, x!, y!);
            }
            break;
          }
          default:
            throw new Error(`unknown composite ${name}`);
        }
        want = c.result;
        const r = check(label, want, 0, f);
        if (r !== null) fails.push(r);
      }
      expect(fails).toEqual([]);
    });
  }
});

describe("methods and aliases", () => {
  test("array methods call the ops", () => {
    const a = mx.array([1, 2, 3]);
    expect(a.add(1).tolist()).toEqual([2, 3, 4]);
    expect(a.sub(1).tolist()).toEqual([0, 1, 2]);
    expect(a.mul(2).tolist()).toEqual([2, 4, 6]);
    expect(a.div(2).tolist()).toEqual([0.5, 1, 1.5]);
    expect(a.pow(2).tolist()).toEqual([1, 4, 9]);
    expect(a.neg().tolist()).toEqual([-1, -2, -3]);
    expect(a.equal(2).tolist()).toEqual([false, true, false]);
    expect(a.mod(2).tolist()).toEqual([1, 0, 1]);
    expect(a.floorDivide(2).tolist()).toEqual([0, 1, 1]);
    expect(a.leftShift(1).tolist()).toEqual([2, 4, 6]);
  });

  test("Array-API aliases are the same functions", () => {
    expect(mx.acos).toBe(mx.arccos);
    expect(mx.asin).toBe(mx.arcsin);
    expect(mx.atan).toBe(mx.arctan);
    expect(mx.atan2).toBe(mx.arctan2);
    expect(mx.pow).toBe(mx.power);
    expect(mx.bitwiseLeftShift).toBe(mx.leftShift);
    expect(mx.bitwiseRightShift).toBe(mx.rightShift);
  });

  test("positive returns the same values", () => {
    expect(mx.positive(mx.array([1, -2])).tolist()).toEqual([1, -2]);
  });
});

/** The record's elements of shape [r, c] in transposed order (shape [c, r]), bytes moved in JS. */
function transposedRecord(rec: ArrayRecord, r: number, c: number, itemBytes: number): ArrayRecord {
  const src = fromHex(rec.hex);
  const out = new Uint8Array(src.length);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) out.set(src.subarray((i * c + j) * itemBytes, (i * c + j + 1) * itemBytes), (j * r + i) * itemBytes);
  }
  let hex = "";
  for (const b of out) hex += b.toString(16).padStart(2, "0");
  return { dtype: rec.dtype, shape: [c, r], hex };
}

describe("non-contiguous (transposed) inputs", () => {
  const size: Partial<Record<mx.DtypeName, number>> = { float32: 4, int32: 4, float16: 2 };
  test("unary ops on a transposed view match MLX's values, moved", () => {
    const fails: string[] = [];
    for (const d of ["float32", "float16"] as const) {
      const x = fromRecord(fx.inputs[d].unary); // 35 elements = 5 x 7
      const xt = mx.transpose(mx.reshape(x, [5, 7]));
      for (const c of fx.unary.filter((u) => u.dtype === d && !("error" in u.result))) {
        const want = c.result as ArrayRecord;
        const exp = transposedRecord(want, 5, 7, want.dtype === "bool" ? 1 : size[want.dtype]!);
        const r = check(`${c.op} ${d}`, exp, ulpsFor(c.op, d), () => mxf[camel(c.op)]!(xt));
        if (r !== null) fails.push(r);
      }
    }
    expect(fails).toEqual([]);
  });

  // negative(negative(bt)) is bt, bit for bit, made contiguous: one operand strided, one not.
  test("binary ops with one transposed operand match MLX's values, moved", () => {
    const fails: string[] = [];
    for (const d of ["float32", "int32"] as const) {
      const a = fromRecord(fx.inputs[d].binary_a); // 15 x 15 (float) or 16 x 16 (int)
      const b = fromRecord(fx.inputs[d].binary_b);
      const n = Math.round(Math.sqrt(a.size));
      const at = mx.transpose(mx.reshape(a, [n, n]));
      const bt = mx.transpose(mx.reshape(b, [n, n]));
      for (const c of fx.binary.filter((u) => u.dtype === d && !("error" in u.result) && u.b === undefined)) {
        const want = c.result as ArrayRecord;
        const exp = transposedRecord(want, n, n, want.dtype === "bool" ? 1 : size[want.dtype]!);
        const r = check(`${c.op} ${d}`, exp, ulpsFor(c.op, d), () => mxf[camel(c.op)]!(at, mx.negative(mx.negative(bt))));
        if (r !== null) fails.push(r);
      }
    }
    expect(fails).toEqual([]);
  });
});

describe("contiguous fast paths against the reference (strided scalar) kernels", () => {
  /** Bytes of `f()` evaluated with the engine's reference mode on and off. */
  function bothModes(f: () => mx.Array): [Uint8Array, Uint8Array] {
    lib.mlxb_set_reference_mode(1);
    let ref: Uint8Array;
    try {
      ref = bytesOf(f());
    } finally {
      lib.mlxb_set_reference_mode(0);
    }
    return [ref, bytesOf(f())];
  }

  function tiled(rec: ArrayRecord, times: number): mx.Array {
    const one = fromHex(rec.hex);
    const all = new Uint8Array(one.length * times);
    for (let i = 0; i < times; i++) all.set(one, i * one.length);
    return fromRecord({ dtype: rec.dtype, shape: [rec.shape[0]! * times], hex: Buffer.from(all).toString("hex") });
  }

  test("unary, binary (also with a scalar operand) and where on large contiguous arrays are bit-identical", () => {
    const fails: string[] = [];
    for (const d of ["float32", "int32", "float16"] as const) {
      const x = tiled(fx.inputs[d].unary, 3000); // ~100k elements: parallel chunks too
      const a = tiled(fx.inputs[d].binary_a, 400);
      const b = tiled(fx.inputs[d].binary_b, 400);
      for (const op of ["abs", "negative", "square", "sqrt", "exp", "sin", "cos", "log", "sigmoid", "floor", "round", "isnan", "logical_not"]) {
        const [r, f] = bothModes(() => mxf[camel(op)]!(x));
        if (Buffer.compare(r, f) !== 0) fails.push(`${op} ${d}`);
      }
      for (const op of ["add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "remainder", "floor_divide", "less", "equal"]) {
        const [r, f] = bothModes(() => mxf[camel(op)]!(a, b));
        if (Buffer.compare(r, f) !== 0) fails.push(`${op} ${d}`);
      }
      const [r, f] = bothModes(() => mx.where(mx.greater(a, b), a, b));
      if (Buffer.compare(r, f) !== 0) fails.push(`where ${d}`);
      // One operand a scalar (stride 0 along the row), on either side.
      const s = mx.array(3, { dtype: d });
      for (const op of ["add", "subtract", "multiply", "maximum", "less"]) {
        const [r1, f1] = bothModes(() => mxf[camel(op)]!(a, s));
        if (Buffer.compare(r1, f1) !== 0) fails.push(`${op} ${d} array-scalar`);
        const [r2, f2] = bothModes(() => mxf[camel(op)]!(s, b));
        if (Buffer.compare(r2, f2) !== 0) fails.push(`${op} ${d} scalar-array`);
      }
    }
    expect(fails).toEqual([]);
  });

  test("float32 sin/cos vector path (8 lanes) equals the scalar path", () => {
    // Finite values in +-2^23 (the vector path), then a few groups broken by NaN, inf and huge
    // values (the scalar fallback), and a tail that is not a multiple of 8.
    const n = 100_003;
    const v = Float32Array.from({ length: n }, (_v, i) => Math.sin(i * 12.9898) * 43758.5453 * ((i % 7) + 1) * 0.01);
    v[17] = NaN;
    v[40] = Infinity;
    v[81] = 1e30;
    v[99] = -8388608;
    v[100] = -0;
    const x = mx.array(v);
    for (const op of ["sin", "cos"]) {
      const [r, f] = bothModes(() => mxf[op]!(x));
      expect(Buffer.compare(r, f)).toBe(0);
    }
  });
});

// The vector kernels (engine/prims/elementwise.zig) read contiguous, broadcast (stride 0),
// transposed (gathered) and flipped operands. Everything they compute bit for bit like the
// reference loops is checked so on every dtype and layout; the transcendentals computed by our
// own vector code (tanh, log2, log10, log1p, expm1, sinh, cosh, tan, arcsin, arccos, arctan,
// arcsinh, arccosh, arctanh: MLX calls the C library's scalar functions) are checked against
// float64 Math over a dense sweep of float32 inputs, within the bounds stated in
// engine/prims/scalar_math.zig, and against the reference loops (the C library) within 3 ulp.
describe("vector kernels on every layout against the reference loops", () => {
  function refAndFast(f: () => mx.Array): [Uint8Array, Uint8Array] | string {
    lib.mlxb_set_reference_mode(1);
    let ref: Uint8Array;
    try {
      ref = bytesOf(f());
    } catch (e) {
      return (e as Error).message;
    } finally {
      lib.mlxb_set_reference_mode(0);
    }
    return [ref, bytesOf(f())];
  }

  function tiledRecord(rec: ArrayRecord, times: number): mx.Array {
    const one = fromHex(rec.hex);
    const all = new Uint8Array(one.length * times);
    for (let i = 0; i < times; i++) all.set(one, i * one.length);
    return fromRecord({ dtype: rec.dtype, shape: [rec.shape[0]! * times], hex: Buffer.from(all).toString("hex") });
  }

  /** Views of the same [r, c] shape over `x` (length >= r * c): each layout a kernel meets. */
  function layouts(x: mx.Array, r: number, c: number): Record<string, mx.Array> {
    const flat = mx.reshape(x, [-1]);
    const first = (k: number) => mx.reshape(mx.split(flat, [k])[0]!, [k]);
    const block = mx.reshape(first(r * c), [r, c]);
    return {
      contiguous: block,
      transposed: mx.transpose(mx.reshape(first(r * c), [c, r])), // inner stride r: gathered
      flipped: mx.flip(block, 1), // a negative stride once flip is a view
      flipped_both: mx.flip(block),
      rows: mx.broadcastTo(mx.reshape(first(c), [1, c]), [r, c]), // outer stride 0
      columns: mx.broadcastTo(mx.reshape(first(r), [r, 1]), [r, c]), // inner stride 0
      scalar: mx.reshape(first(1), []),
    };
  }

  const REAL: mx.DtypeName[] = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bfloat16"];

  test("unary ops on float32, float16 and bfloat16, every layout: bit-identical", () => {
    const fails: string[] = [];
    const ops = ["abs", "sign", "negative", "trunc", "square", "sqrt", "rsqrt", "reciprocal", "exp", "erf", "sin", "cos", "degrees", "radians", "sigmoid", "floor", "ceil", "round", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "logical_not", "log"];
    for (const d of ["float32", "float16", "bfloat16"] as const) {
      const x = tiledRecord(fx.inputs[d].unary, 40); // 35 edge values x 40
      for (const [name, v] of Object.entries(layouts(x, 20, 67))) {
        for (const op of ops) {
          const res = refAndFast(() => mxf[camel(op)]!(v));
          if (typeof res === "string") fails.push(`${op} ${d} ${name}: ${res}`);
          else if (Buffer.compare(res[0], res[1]) !== 0) fails.push(`${op} ${d} ${name}`);
        }
      }
    }
    expect(fails).toEqual([]);
  });

  test("binary ops on every real dtype, every pair of operand layouts: bit-identical", () => {
    const fails: string[] = [];
    const all = ["add", "subtract", "multiply", "divide", "floor_divide", "maximum", "minimum", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor"];
    for (const d of REAL) {
      const a = tiledRecord(fx.inputs[d].binary_a, Math.ceil(900 / fx.inputs[d].binary_a.shape[0]!)); // all pairs of edge values, repeated
      const b = tiledRecord(fx.inputs[d].binary_b, Math.ceil(900 / fx.inputs[d].binary_b.shape[0]!));
      const la = layouts(a, 15, 60);
      const lb = layouts(b, 15, 60);
      for (const op of all) {
        // Every op on matching layouts; the layout pairs on a few ops.
        const pairs = ["add", "maximum", "less", "logical_xor", "bitwise_and"].includes(op)
          ? Object.keys(la).flatMap((p) => Object.keys(lb).map((q) => [p, q] as const))
          : Object.keys(la).map((p) => [p, p] as const);
        for (const [p, q] of pairs) {
          const res = refAndFast(() => mxf[camel(op)]!(la[p]!, lb[q]!));
          if (typeof res === "string") {
            if (!res.includes("Only allowed on integer or boolean types")) fails.push(`${op} ${d} ${p},${q}: ${res}`);
          } else if (Buffer.compare(res[0], res[1]) !== 0) fails.push(`${op} ${d} ${p},${q}`);
        }
      }
    }
    expect(fails).toEqual([]);
  });

  test("where on every dtype, every layout of condition and operands: bit-identical", () => {
    const fails: string[] = [];
    for (const d of [...REAL, "complex64" as const]) {
      const x = tiledRecord(fx.inputs[d].binary_a, Math.ceil(900 / fx.inputs[d].binary_a.shape[0]!));
      const y = tiledRecord(fx.inputs[d].binary_b, Math.ceil(900 / fx.inputs[d].binary_b.shape[0]!));
      const cond = mx.array(Array.from({ length: 900 }, (_v, i) => (i * 7) % 5 < 2));
      const lc = layouts(cond, 15, 60);
      const lx = layouts(x, 15, 60);
      const ly = layouts(y, 15, 60);
      for (const p of Object.keys(lc)) {
        for (const q of Object.keys(lx)) {
          const res = refAndFast(() => mx.where(lc[p]!, lx[q]!, ly[p === q ? "transposed" : q]!));
          if (typeof res === "string") fails.push(`where ${d} ${p},${q}: ${res}`);
          else if (Buffer.compare(res[0], res[1]) !== 0) fails.push(`where ${d} ${p},${q}`);
        }
      }
    }
    expect(fails).toEqual([]);
  });

  /** A float32's bits as an integer ordered like its value. */
  function ord32(v: number): number {
    const u = new Uint32Array(new Float32Array([v]).buffer)[0]!;
    return u & 0x80000000 ? -(u & 0x7fffffff) : u;
  }

  function ulps32(got: number, exact: number): number {
    const a = Math.abs(exact);
    const e = a === 0 ? -149 : Math.max(-149, Math.floor(Math.log2(a)) - 23);
    return Math.abs(got - exact) / 2 ** e;
  }

  const APPROX: [string, (x: number) => number, number][] = [
    ["tanh", Math.tanh, 0.66], ["log2", Math.log2, 0.501], ["log10", Math.log10, 0.501], ["log1p", Math.log1p, 0.501],
    ["expm1", Math.expm1, 0.501], ["sinh", Math.sinh, 0.501], ["cosh", Math.cosh, 0.501], ["tan", Math.tan, 0.501],
    ["arcsin", Math.asin, 0.501], ["arccos", Math.acos, 0.501], ["arctan", Math.atan, 0.501], ["arcsinh", Math.asinh, 0.501],
    ["arccosh", Math.acosh, 0.501], ["arctanh", Math.atanh, 0.501],
  ];

  test("our vector transcendentals: within their stated bounds of float64 Math, within 3 ulp of the C library", () => {
    // Every 21475th float32 bit pattern (both signs, subnormals to infinities, NaNs), 200,000 values.
    const n = 200_003;
    const bits = Uint32Array.from({ length: n }, (_v, i) => (i * 21475) >>> 0);
    const xs = new Float32Array(bits.buffer);
    const x = mx.array(xs);
    const fails: string[] = [];
    for (const [op, exact, bound] of APPROX) {
      const res = refAndFast(() => mxf[camel(op)]!(x));
      if (typeof res === "string") {
        fails.push(`${op}: ${res}`);
        continue;
      }
      const ref = new Float32Array(res[0].buffer);
      const fast = new Float32Array(res[1].buffer);
      let worst = 0;
      let worstRef = 0;
      const bad: string[] = [];
      for (let i = 0; i < n; i++) {
        const want = exact(xs[i]!);
        const got = fast[i]!;
        if (Number.isNaN(want) || Number.isNaN(got)) {
          if (Number.isNaN(want) !== Number.isNaN(got) || Number.isNaN(ref[i]!) !== Number.isNaN(got)) bad.push(`${op}(${xs[i]}) = ${got}`);
          continue;
        }
        if (op === "tan" && Math.abs(xs[i]!) > 2 ** 20) {
          // Past 2^20 the vector tan hands lanes to the C library's tanf.
          if (got !== ref[i]) bad.push(`tan(${xs[i]}) = ${got}, C library ${ref[i]}`);
          continue;
        }
        const f32 = Math.fround(want);
        const e = Number.isFinite(f32) && want !== 0 ? ulps32(got, want) : Object.is(got, f32) ? 0 : Infinity;
        worst = Math.max(worst, e);
        worstRef = Math.max(worstRef, Math.abs(ord32(got) - ord32(ref[i]!)));
        if (e > bound && bad.length < 4) bad.push(`${op}(${xs[i]}) = ${got}: ${e.toFixed(3)} ulp from ${want}`);
      }
      if (bad.length > 0) fails.push(...bad);
      if (worstRef > 3) fails.push(`${op}: ${worstRef} ulp from the C library`);
    }
    expect(fails).toEqual([]);
  });

  test("our vector transcendentals on float16 and bfloat16 stay within one ulp of the reference, on every layout", () => {
    const fails: string[] = [];
    for (const d of ["float16", "bfloat16"] as const) {
      const x = tiledRecord(fx.inputs[d].unary, 40);
      const sweep = mx.multiply(mx.linspace(-12, 12, 4099), 1).astype(d);
      for (const [name, v] of [...Object.entries(layouts(x, 20, 67)), ["sweep", sweep] as const]) {
        for (const [op] of APPROX) {
          const res = refAndFast(() => mxf[camel(op)]!(v));
          if (typeof res === "string") {
            fails.push(`${op} ${d} ${name}: ${res}`);
            continue;
          }
          const r = new Uint16Array(res[0].buffer);
          const f = new Uint16Array(res[1].buffer);
          const o = (u: number) => (u & 0x8000 ? -(u & 0x7fff) : u);
          const nan = (u: number) => (d === "float16" ? (u & 0x7c00) === 0x7c00 && (u & 0x3ff) !== 0 : (u & 0x7f80) === 0x7f80 && (u & 0x7f) !== 0);
          for (let i = 0; i < r.length; i++) {
            if (nan(r[i]!) || nan(f[i]!)) {
              if (nan(r[i]!) !== nan(f[i]!)) fails.push(`${op} ${d} ${name} [${i}] NaN`);
            } else if (Math.abs(o(r[i]!) - o(f[i]!)) > 1) fails.push(`${op} ${d} ${name} [${i}] 0x${f[i]!.toString(16)} vs 0x${r[i]!.toString(16)}`);
          }
        }
      }
    }
    expect(fails).toEqual([]);
  });

  test("one long contiguous row is split over the thread pool with the same results", () => {
    const n = (1 << 21) + 13; // past two grains of the memory-bound kernels (2^20 each), ragged tail
    const v = Float32Array.from({ length: n }, (_v, i) => Math.sin(i * 0.37) * 50);
    const a = mx.array(v);
    const b = mx.flip(a);
    for (const f of [() => mx.maximum(a, b), () => mx.less(a, b), () => mx.sigmoid(b), () => mx.where(mx.less(a, 0), a, b), () => mx.add(a.astype(mx.float16), b.astype(mx.float16))]) {
      const res = refAndFast(f);
      if (typeof res === "string") throw new Error(res);
      expect(Buffer.compare(res[0], res[1])).toBe(0);
    }
    const got = mx.maximum(a, b).toTypedArray() as Float32Array;
    let bad = 0;
    for (let i = 0; i < n; i++) if (got[i] !== Math.max(v[i]!, v[n - 1 - i]!)) bad++;
    expect(bad).toBe(0);
    const lt = mx.less(a, b).toTypedArray() as Uint8Array;
    bad = 0;
    for (let i = 0; i < n; i++) if (lt[i] !== (v[i]! < v[n - 1 - i]! ? 1 : 0)) bad++;
    expect(bad).toBe(0);
  });
});

describe("streaming stores (outputs of 16 MiB and more)", () => {
  test("large outputs of every width are bit-identical to the reference loops", () => {
    const both = (f: () => mx.Array): [Uint8Array, Uint8Array] => {
      lib.mlxb_set_reference_mode(1);
      let ref: Uint8Array;
      try {
        ref = bytesOf(f());
      } finally {
        lib.mlxb_set_reference_mode(0);
      }
      return [ref, bytesOf(f())];
    };
    const n = (1 << 24) + 77; // float32: 64 MiB out; bool: 16 MiB out; ragged tail
    const a = mx.linspace(-3, 3, n);
    const b = mx.flip(a);
    const cases: [string, () => mx.Array][] = [
      ["add float32", () => mx.add(a, b)],
      ["tanh float32", () => mx.tanh(a)],
      ["less (bool out)", () => mx.less(a, b)],
      ["maximum float16", () => mx.maximum(a.astype(mx.float16), b.astype(mx.float16))],
      ["where float64", () => mx.where(mx.less(a, 0), a.astype(mx.float64), 1)],
      ["multiply int64 (strided)", () => mx.multiply(mx.transpose(mx.reshape(mx.split(a, [1 << 24])[0]!, [1 << 12, 1 << 12])).astype(mx.int64), 3)],
    ];
    const fails: string[] = [];
    for (const [name, f] of cases) {
      const [r, g] = both(f);
      if (name.startsWith("tanh")) continue; // (ours vs the C library: checked above)
      if (Buffer.compare(r, g) !== 0) fails.push(name);
    }
    expect(fails).toEqual([]);
    // Spot values through the streaming path.
    const s = mx.add(a, b).toTypedArray() as Float32Array;
    const av = a.toTypedArray() as Float32Array;
    for (const i of [0, 1, 15, 16, 17, n >> 1, n - 78, n - 2, n - 1]) expect(s[i]).toBe(Math.fround(av[i]! + av[n - 1 - i]!));
  }, 120_000);
});
