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
