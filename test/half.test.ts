// float16 and bfloat16 conversions through the real engine path, checked bit for bit against
// independent references: NumPy's float16 and ml_dtypes' bfloat16 (float32 <-> half), and real
// MLX (float64 and 64-bit integers -> half, which MLX converts through float32 first).
//
// The reference data is produced by test/fixtures/half/gen_half.py (fixed seeds) and committed;
// these tests read only test/fixtures/half/*, never Python.
//
// NaN bits: the references disagree (NumPy, ml_dtypes and MLX each have their own rule). The
// engine gives MLX's (x86-64, mlx-cpu 0.32.4; see engine/half.zig), so NaN results are checked
// bit for bit against real MLX's, which the fixture also holds; everything else against NumPy
// and ml_dtypes (with which MLX agrees bit for bit off NaN: the generator checks that).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { checkHandle, DTYPE, lib } from "../ffi/lib";
import * as mx from "../src/index.ts";

// ---------------------------------------------------------------------------------------------
// Fixture loading

type ColumnType = "u16" | "u32" | "u64" | "i64";

interface Group {
  name: string;
  start: number;
  count: number;
}

interface DatasetInfo {
  file: string;
  count: number;
  bytes: number;
  fields: Record<string, { type: ColumnType; offset: number }>;
  groups: Group[];
}

interface Manifest {
  versions: Record<string, string>;
  datasets: Record<string, DatasetInfo>;
}

const dir = new URL("./fixtures/half/", import.meta.url);
const manifest = JSON.parse(readFileSync(new URL("manifest.json", dir), "utf8")) as Manifest;

const elementSize: Record<ColumnType, number> = { u16: 2, u32: 4, u64: 8, i64: 8 };

class Dataset {
  readonly count: number;
  readonly groups: Group[];
  readonly #raw: Uint8Array;
  readonly #info: DatasetInfo;

  constructor(name: string) {
    const info = manifest.datasets[name];
    if (info === undefined) throw new Error(`no dataset ${name} in the half fixture manifest`);
    this.#info = info;
    this.count = info.count;
    this.groups = info.groups;
    this.#raw = new Uint8Array(gunzipSync(readFileSync(new URL(info.file, dir))));
    if (this.#raw.length !== info.bytes) throw new Error(`${info.file}: ${this.#raw.length} bytes, expected ${info.bytes}`);
  }

  /** A column's little-endian bytes, un-shuffled from the fixture's byte planes. */
  #bytes(field: string, type: ColumnType): ArrayBuffer {
    const f = this.#info.fields[field];
    if (f === undefined || f.type !== type) throw new Error(`no ${type} column ${field}`);
    const n = this.count;
    const size = elementSize[type];
    const out = new Uint8Array(n * size);
    for (let b = 0; b < size; b++) {
      const plane = this.#raw.subarray(f.offset + b * n, f.offset + (b + 1) * n);
      for (let i = 0; i < n; i++) out[i * size + b] = plane[i]!;
    }
    return out.buffer;
  }

  u16(field: string): Uint16Array {
    return new Uint16Array(this.#bytes(field, "u16"));
  }
  u32(field: string): Uint32Array {
    return new Uint32Array(this.#bytes(field, "u32"));
  }
  u64(field: string): BigUint64Array {
    return new BigUint64Array(this.#bytes(field, "u64"));
  }
  i64(field: string): BigInt64Array {
    return new BigInt64Array(this.#bytes(field, "i64"));
  }

  groupOf(i: number): string {
    for (const g of this.groups) if (i >= g.start && i < g.start + g.count) return g.name;
    return "all";
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const hex = (v: number | bigint, digits: number): string => `0x${v.toString(16).padStart(digits, "0")}`;

/** Every index where `check` reports a problem; the first few are kept for the failure message. */
function mismatches(n: number, check: (i: number) => string | null, ds?: Dataset): { count: number; first: string[] } {
  const first: string[] = [];
  let count = 0;
  for (let i = 0; i < n; i++) {
    const problem = check(i);
    if (problem === null) continue;
    count++;
    if (first.length < 12) first.push(`#${i}${ds === undefined ? "" : ` (${ds.groupOf(i)})`}: ${problem}`);
  }
  return { count, first };
}

function expectNone(m: { count: number; first: string[] }): void {
  expect(m.first).toEqual([]);
  expect(m.count).toBe(0);
}

const isNan16 = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x03ff) !== 0;
const isNanBf16 = (h: number): boolean => (h & 0x7f80) === 0x7f80 && (h & 0x007f) !== 0;
const isNan32 = (x: number): boolean => (x & 0x7f800000) === 0x7f800000 && (x & 0x007fffff) !== 0;

/**
 * Compare half-precision results with a reference bit for bit. With `isNan`, a NaN in the
 * reference only asks for a NaN (for NumPy / ml_dtypes, whose NaN bits are not MLX's; the
 * NaN bits are checked against MLX separately).
 */
function compareHalf(got: Uint16Array, want: Uint16Array, describeInput: (i: number) => string, ds?: Dataset, isNan?: (h: number) => boolean) {
  expect(got.length).toBe(want.length);
  return mismatches(
    want.length,
    (i) => {
      const g = got[i]!;
      const w = want[i]!;
      if (isNan !== undefined && isNan(w)) return isNan(g) ? null : `${describeInput(i)}: got ${hex(g, 4)}, want a NaN`;
      return g === w ? null : `${describeInput(i)}: got ${hex(g, 4)}, want ${hex(w, 4)}`;
    },
    ds,
  );
}

function bitsOf(a: mx.Array): Uint16Array {
  return a.toTypedArray({ bits: true }) as Uint16Array;
}

/** The uint32 bits of a float32 read-out. */
function f32Bits(data: mx.DataArray): Uint32Array {
  if (!(data instanceof Float32Array)) throw new Error(`expected a Float32Array, got ${data.constructor.name}`);
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

/** A float16 array holding exactly `bits` (mx.array copies a Float16Array's bytes). */
function float16FromBits(bits: Uint16Array): mx.Array {
  return mx.array(new Float16Array(bits.buffer, bits.byteOffset, bits.length));
}

/**
 * A bfloat16 array holding exactly `bits`. The public API has no bit-exact bfloat16
 * constructor (a Uint16Array with { dtype: bfloat16 } converts the integer values, and
 * copy: false needs the data's own dtype), so this goes one level down, to the engine's
 * array-from-data entry point that mx.array itself uses.
 */
function bfloat16FromBits(bits: Uint16Array): mx.Array {
  return new mx.Array(checkHandle(lib.mlxb_array_from_data(bits, DTYPE.bfloat16, new Int32Array([bits.length]), 1, -1)));
}

const all16 = new Uint16Array(65536).map((_, i) => i);

// ---------------------------------------------------------------------------------------------
// 1. Every float16 / bfloat16 pattern to float32

describe("float16 -> float32, all 65,536 bit patterns (references: NumPy; MLX for NaN bits)", () => {
  const ds = new Dataset("half_to_f32");
  const numpy = ds.u32("f16_to_f32");
  const want = ds.u32("mlx_f16_to_f32");
  const nanCount = all16.filter(isNan16).length;

  test("the references agree off NaN; on NaN, MLX quietens and NumPy does not", () => {
    expectNone(mismatches(65536, (i) => (isNan16(i) || numpy[i] === want[i] ? null : `f16 ${hex(i, 4)}: MLX ${hex(want[i]!, 8)}, NumPy ${hex(numpy[i]!, 8)}`)));
    expect(hex(numpy[0x7c01]!, 8)).toBe("0x7f802000");
    expect(hex(want[0x7c01]!, 8)).toBe("0x7fc02000");
  });

  test("mx.array(Float16Array) keeps every bit pattern, NaN payloads included", () => {
    using a = float16FromBits(all16);
    expect(a.dtype).toBe(mx.float16);
    expect(a.shape).toEqual([65536]);
    const bits = bitsOf(a);
    expectNone(mismatches(65536, (i) => (bits[i] === i ? null : `bits ${hex(i, 4)} changed`)));
    // toTypedArray() of a float16 array is a Float16Array over the same bits.
    const view = a.toTypedArray();
    expect(view).toBeInstanceOf(Float16Array);
    expect(new Uint16Array(view.buffer, view.byteOffset, view.length)).toEqual(all16);
  });

  test("toTypedArray({ dtype: float32 }) is exact for every pattern; NaNs keep sign and payload and come out quiet", () => {
    using a = float16FromBits(all16);
    const got = f32Bits(a.toTypedArray({ dtype: "float32" }));
    expectNone(mismatches(65536, (i) => (got[i] === want[i] ? null : `f16 ${hex(i, 4)}: got ${hex(got[i]!, 8)}, want ${hex(want[i]!, 8)}`)));
    // The NaN patterns: 2 signs x 1023 payloads, all NaN, with their sign.
    expect(nanCount).toBe(2046);
    expectNone(mismatches(65536, (i) => (!isNan16(i) || (isNan32(got[i]!) && got[i]! >>> 31 === i >> 15) ? null : `f16 ${hex(i, 4)} is not a NaN of its sign`)));
    // A signalling NaN gets its quiet bit; the payload is kept.
    expect(hex(got[0x7c01]!, 8)).toBe("0x7fc02000");
    expect(hex(got[0xfd00]!, 8)).toBe("0xffe00000");
    expect(hex(got[0x7fff]!, 8)).toBe("0x7fffe000");
  });

  test("astype(float32) agrees with the read-out conversion", () => {
    using a = float16FromBits(all16);
    using b = a.astype(mx.float32);
    expect(b.dtype).toBe(mx.float32);
    const got = f32Bits(b.toTypedArray());
    expectNone(mismatches(65536, (i) => (got[i] === want[i] ? null : `f16 ${hex(i, 4)}: got ${hex(got[i]!, 8)}, want ${hex(want[i]!, 8)}`)));
  });

  test("toTypedArray({ dtype: float64 }) gives the same values", () => {
    using a = float16FromBits(all16);
    const got = a.toTypedArray({ dtype: "float64" }) as Float64Array;
    const ref = new Float32Array(want.buffer);
    expectNone(mismatches(65536, (i) => (Object.is(got[i], ref[i]) ? null : `f16 ${hex(i, 4)}: got ${got[i]}, want ${ref[i]}`)));
    // NaN bits: MLX's float32 NaN widened (sign, exponent, payload << 29), e.g. 0x7c01 -> 0x7ff8040000000000.
    const bits = new BigUint64Array(got.buffer, got.byteOffset, got.length);
    expectNone(
      mismatches(65536, (i) => {
        if (!isNan16(i)) return null;
        const w = BigInt(want[i]!);
        const wide = ((w >> 31n) << 63n) | (0x7ffn << 52n) | ((w & 0x7fffffn) << 29n);
        return bits[i] === wide ? null : `f16 ${hex(i, 4)}: got ${hex(bits[i]!, 16)}, want ${hex(wide, 16)}`;
      }),
    );
    expect(hex(bits[0x7c01]!, 16)).toBe("0x7ff8040000000000");
  });

  test("the JS engine's own Float16Array decoding agrees (a third opinion on the values)", () => {
    const js = new Float16Array(all16.buffer);
    const ref = new Float32Array(want.buffer);
    expectNone(mismatches(65536, (i) => (Object.is(js[i], ref[i]) ? null : `f16 ${hex(i, 4)}: JS ${js[i]}, NumPy ${ref[i]}`)));
  });
});

describe("bfloat16 -> float32, all 65,536 bit patterns (references: ml_dtypes and MLX)", () => {
  const ds = new Dataset("half_to_f32");
  const want = ds.u32("bf16_to_f32");

  test("ml_dtypes and MLX agree on every pattern, NaNs included (bits << 16)", () => {
    expect(ds.u32("mlx_bf16_to_f32")).toEqual(want);
  });

  test("the engine's data entry point keeps every bfloat16 bit pattern", () => {
    using a = bfloat16FromBits(all16);
    expect(a.dtype).toBe(mx.bfloat16);
    const bits = bitsOf(a);
    expectNone(mismatches(65536, (i) => (bits[i] === i ? null : `bits ${hex(i, 4)} changed to ${hex(bits[i]!, 4)}`)));
  });

  test("toTypedArray({ dtype: float32 }) is exact for every pattern (bits << 16, NaN payloads kept)", () => {
    using a = bfloat16FromBits(all16);
    const got = f32Bits(a.toTypedArray({ dtype: "float32" }));
    expectNone(mismatches(65536, (i) => (got[i] === want[i] ? null : `bf16 ${hex(i, 4)}: got ${hex(got[i]!, 8)}, want ${hex(want[i]!, 8)}`)));
    expect(all16.filter(isNanBf16).length).toBe(254);
  });

  test("astype(float32) agrees", () => {
    using a = bfloat16FromBits(all16);
    using b = a.astype("float32");
    const got = f32Bits(b.toTypedArray());
    expectNone(mismatches(65536, (i) => (got[i] === want[i] ? null : `bf16 ${hex(i, 4)}: got ${hex(got[i]!, 8)}, want ${hex(want[i]!, 8)}`)));
  });

  test("public API round trip: float32 values astype(bfloat16) give back every pattern but the NaNs, which become 0x7fc0", () => {
    // With only the public API, a bfloat16 array is made by converting float32 values; every
    // bfloat16 value is a float32, so the conversion is exact, except that every NaN becomes
    // MLX's one bfloat16 NaN, 0x7fc0 (sign dropped).
    using f = mx.array(new Float32Array(want.buffer.slice(0)));
    using a = f.astype(mx.bfloat16);
    const bits = bitsOf(a);
    expectNone(
      mismatches(65536, (i) => {
        const w = isNanBf16(i) ? 0x7fc0 : i;
        return bits[i] === w ? null : `bf16 ${hex(i, 4)}: got ${hex(bits[i]!, 4)}, want ${hex(w, 4)}`;
      }),
    );
    // The same with mx.array(..., { dtype: bfloat16 }).
    using c = mx.array(new Float32Array(want.buffer.slice(0)), { dtype: "bfloat16" });
    expect(bitsOf(c)).toEqual(bits);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. float32 -> float16 / bfloat16

describe("float32 -> float16 and bfloat16: round to nearest even (references: NumPy, ml_dtypes)", () => {
  const ds = new Dataset("f32_to_half");
  const input = ds.u32("input_f32");
  const wantF16 = ds.u16("numpy_f16");
  const wantBf16 = ds.u16("ml_dtypes_bf16");
  const show = (i: number): string => `f32 ${hex(input[i]!, 8)} (${new Float32Array(input.buffer)[i]})`;
  const f32 = (): Float32Array => new Float32Array(input.buffer.slice(0));

  test("the fixture covers every group the brief asks for", () => {
    const names = ds.groups.map((g) => g.name);
    expect(names).toEqual([
      "specials",
      "f16 midpoints +-1ulp, positive",
      "f16 midpoints +-1ulp, negative",
      "bf16 midpoints +-1ulp, positive",
      "bf16 midpoints +-1ulp, negative",
      "random float32 bit patterns (uniform)",
      "random float32 in float16's exponent range",
    ]);
    // Every midpoint between consecutive non-negative float16 values (0x0000..0x7bff, and
    // 65504..65520 to infinity), with its float32 neighbours on both sides, both signs.
    expect(ds.groups[1]!.count).toBe(3 * 0x7c00);
    expect(ds.groups[3]!.count).toBe(3 * 0x7f80);
    expect(ds.groups[5]!.count).toBe(100_000);
  });

  test("astype(float16) matches NumPy bit for bit", () => {
    using a = mx.array(f32());
    expect(a.dtype).toBe(mx.float32);
    using h = a.astype(mx.float16);
    expect(h.dtype).toBe(mx.float16);
    expectNone(compareHalf(bitsOf(h), wantF16, show, ds, isNan16));
  });

  test("toTypedArray({ dtype: float16, bits: true }) and mx.array(..., { dtype: float16 }) agree", () => {
    using a = mx.array(f32());
    expectNone(compareHalf(a.toTypedArray({ dtype: "float16", bits: true }) as Uint16Array, wantF16, show, ds, isNan16));
    using b = mx.array(f32(), { dtype: mx.float16 });
    expectNone(compareHalf(bitsOf(b), wantF16, show, ds, isNan16));
  });

  test("astype(bfloat16) matches ml_dtypes bit for bit", () => {
    using a = mx.array(f32());
    using b = a.astype(mx.bfloat16);
    expect(b.dtype).toBe(mx.bfloat16);
    expectNone(compareHalf(bitsOf(b), wantBf16, show, ds, isNanBf16));
  });

  test("toTypedArray({ dtype: bfloat16, bits: true }) and mx.array(..., { dtype: bfloat16 }) agree", () => {
    using a = mx.array(f32());
    expectNone(compareHalf(a.toTypedArray({ dtype: "bfloat16", bits: true }) as Uint16Array, wantBf16, show, ds, isNanBf16));
    using b = mx.array(f32(), { dtype: "bfloat16" });
    expectNone(compareHalf(bitsOf(b), wantBf16, show, ds, isNanBf16));
  });

  test("named edge cases (readable duplicates of fixture rows)", () => {
    const cases: [number, number, number][] = [
      // [float32, float16 bits, bfloat16 bits]
      [0, 0x0000, 0x0000],
      [-0, 0x8000, 0x8000],
      [Infinity, 0x7c00, 0x7f80],
      [-Infinity, 0xfc00, 0xff80],
      [65504, 0x7bff, 0x4780], // float16 max (bfloat16: rounds up to 65536)
      [65519, 0x7bff, 0x4780], // below the float16 overflow midpoint
      [65520, 0x7c00, 0x4780], // the midpoint 65504 .. 65536: ties to even, which is infinity
      [-65520, 0xfc00, 0xc780],
      [2 ** -24, 0x0001, 0x3380], // smallest float16 subnormal
      [2 ** -25, 0x0000, 0x3300], // half of it: ties to even, zero
      [-(2 ** -25), 0x8000, 0xb300], // ... keeping the sign
      [3 * 2 ** -25, 0x0002, 0x33c0], // 1.5 subnormals: ties to even, 2
      [1023 * 2 ** -24, 0x03ff, 0x3880], // largest subnormal (bfloat16: rounds up to 2^-14)
      [2047 * 2 ** -25, 0x0400, 0x3880], // midpoint to the smallest normal: rounds to even (normal)
      [1 + 2 ** -11, 0x3c00, 0x3f80], // tie: even is 1
      [1 + 3 * 2 ** -11, 0x3c02, 0x3f80], // tie: odd 1+2^-10 rounds up
    ];
    const x = new Float32Array(cases.map((c) => c[0]));
    using a = mx.array(x);
    const h = bitsOf(a.astype("float16"));
    const b = bitsOf(a.astype("bfloat16"));
    expect(Array.from(h, (v) => hex(v, 4))).toEqual(cases.map((c) => hex(c[1], 4)));
    expect(Array.from(b, (v) => hex(v, 4))).toEqual(cases.map((c) => hex(c[2], 4)));
    // bfloat16 overflow: float32 max rounds to infinity, the midpoint 0x7f7f8000 too (odd max).
    using m = mx.array(new Float32Array(new Uint32Array([0x7f7fffff, 0x7f7f8000, 0x7f7f7fff]).buffer));
    expect(Array.from(bitsOf(m.astype("bfloat16")), (v) => hex(v, 4))).toEqual(["0x7f80", "0x7f80", "0x7f7f"]);
  });

  test("the fixture's NaN inputs are all in the NaN dataset below", () => {
    const nans = input.filter(isNan32);
    expect(nans.length).toBeGreaterThan(300); // the random patterns hit NaN ~1/256 of the time
    const nanSet = new Dataset("f32_nan_to_half");
    const g = nanSet.groups.find((x) => x.name === "the NaNs of f32_to_half")!;
    expect(nanSet.u32("input_f32").subarray(g.start, g.start + g.count)).toEqual(nans);
  });
});

describe("float32 NaN -> float16 and bfloat16: MLX's NaN bits (reference: real MLX)", () => {
  const ds = new Dataset("f32_nan_to_half");
  const input = ds.u32("input_f32");
  const wantF16 = ds.u16("mlx_f16");
  const wantBf16 = ds.u16("mlx_bf16");
  const show = (i: number): string => `f32 ${hex(input[i]!, 8)}`;
  const f32 = (): Float32Array => new Float32Array(input.buffer.slice(0));

  test("MLX gives sign | 0x7d00 for float16 and 0x7fc0 (sign dropped) for bfloat16; NumPy and ml_dtypes differ", () => {
    expect(input.every(isNan32)).toBe(true);
    expect(input.some((v) => v >>> 31 === 1) && input.some((v) => v >>> 31 === 0)).toBe(true);
    expectNone(mismatches(ds.count, (i) => (wantF16[i] === (((input[i]! >>> 16) & 0x8000) | 0x7d00) ? null : show(i)), ds));
    expect(wantBf16.every((v) => v === 0x7fc0)).toBe(true);
    // For the record: NumPy keeps payloads, ml_dtypes keeps the sign.
    expect(ds.u16("numpy_f16").some((v, i) => v !== wantF16[i])).toBe(true);
    expect(ds.u16("ml_dtypes_bf16").some((v) => v === 0xffc0)).toBe(true);
  });

  test("astype, toTypedArray({ dtype, bits: true }) and mx.array(..., { dtype }) give MLX's bits", () => {
    using a = mx.array(f32());
    using h = a.astype(mx.float16);
    using b = a.astype(mx.bfloat16);
    expectNone(compareHalf(bitsOf(h), wantF16, show, ds));
    expectNone(compareHalf(bitsOf(b), wantBf16, show, ds));
    expectNone(compareHalf(a.toTypedArray({ dtype: "float16", bits: true }) as Uint16Array, wantF16, show, ds));
    expectNone(compareHalf(a.toTypedArray({ dtype: "bfloat16", bits: true }) as Uint16Array, wantBf16, show, ds));
    using c = mx.array(f32(), { dtype: "float16" });
    using d = mx.array(f32(), { dtype: "bfloat16" });
    expectNone(compareHalf(bitsOf(c), wantF16, show, ds));
    expectNone(compareHalf(bitsOf(d), wantBf16, show, ds));
  });

  test("half to half: float16 NaN -> bfloat16 is 0x7fc0, bfloat16 NaN -> float16 is sign | 0x7d00 (MLX goes through float32)", () => {
    const f16Nans = all16.filter(isNan16);
    using a = float16FromBits(f16Nans);
    expect(bitsOf(a.astype(mx.bfloat16)).every((v) => v === 0x7fc0)).toBe(true);
    const bfNans = all16.filter(isNanBf16);
    using b = bfloat16FromBits(bfNans);
    const got = bitsOf(b.astype(mx.float16));
    expectNone(mismatches(bfNans.length, (i) => (got[i] === ((bfNans[i]! & 0x8000) | 0x7d00) ? null : `bf16 ${hex(bfNans[i]!, 4)}: got ${hex(got[i]!, 4)}`)));
  });
});

// ---------------------------------------------------------------------------------------------
// 3. float64 -> float16 / bfloat16: through float32, as MLX does

describe("float64 -> float16 and bfloat16 go through float32, as MLX does (reference: real MLX)", () => {
  const ds = new Dataset("f64_to_half");
  const input = ds.u64("input_f64");
  const values = (): Float64Array => new Float64Array(input.buffer.slice(0));
  const x = values();
  const wantF16 = ds.u16("mlx_f16");
  const wantBf16 = ds.u16("mlx_bf16");
  const show = (i: number): string => `f64 ${hex(input[i]!, 16)} (${x[i]})`;

  test("the fixture holds double-rounding cases: MLX differs from single rounding on many of them", () => {
    const directF16 = ds.u16("direct_f16");
    const directBf16 = ds.u16("direct_bf16");
    const differ = (a: Uint16Array, b: Uint16Array): number => a.filter((v, i) => !Number.isNaN(x[i]!) && v !== b[i]).length;
    expect(differ(wantF16, directF16)).toBeGreaterThan(1000);
    expect(differ(wantBf16, directBf16)).toBeGreaterThan(300);
  });

  test("mx.array(Float64Array, { dtype: float16 }) matches MLX", () => {
    using a = mx.array(values(), { dtype: mx.float16 });
    expect(a.dtype).toBe(mx.float16);
    expectNone(compareHalf(bitsOf(a), wantF16, show, ds));
  });

  test("float64 array astype(float16) and toTypedArray({ dtype: float16, bits: true }) match MLX", () => {
    using a = mx.array(values(), { dtype: mx.float64 });
    expect(a.dtype).toBe(mx.float64);
    using h = a.astype(mx.float16);
    expectNone(compareHalf(bitsOf(h), wantF16, show, ds));
    expectNone(compareHalf(a.toTypedArray({ dtype: "float16", bits: true }) as Uint16Array, wantF16, show, ds));
  });

  test("float64 to bfloat16, all three paths, match MLX", () => {
    using a = mx.array(values(), { dtype: mx.float64 });
    using b = a.astype(mx.bfloat16);
    expectNone(compareHalf(bitsOf(b), wantBf16, show, ds));
    expectNone(compareHalf(a.toTypedArray({ dtype: "bfloat16", bits: true }) as Uint16Array, wantBf16, show, ds));
    using c = mx.array(values(), { dtype: "bfloat16" });
    expectNone(compareHalf(bitsOf(c), wantBf16, show, ds));
  });

  test("named double-rounding cases", () => {
    const cases: [number, number][] = [
      // [float64, MLX's float16 bits]; single rounding would give the other neighbour.
      [65519.99999999, 0x7c00], // rounds to 65520 in float32, then ties to infinity (direct: 65504)
      [1 + 2 ** -11 + 2 ** -40, 0x3c00], // lands on the tie 1 + 2^-11 in float32 (direct: 0x3c01)
      [2 ** -25 + 2 ** -60, 0x0000], // lands on half the smallest subnormal (direct: 0x0001)
      [1e300, 0x7c00],
      [-1e-300, 0x8000],
    ];
    using a = mx.array(new Float64Array(cases.map((c) => c[0])), { dtype: mx.float64 });
    expect(Array.from(bitsOf(a.astype("float16")), (v) => hex(v, 4))).toEqual(cases.map((c) => hex(c[1], 4)));
    // bfloat16: 1 + 2^-8 + 2^-40 lands on the tie 1 + 2^-8, which rounds to even, 1.
    using b = mx.array(new Float64Array([1 + 2 ** -8 + 2 ** -40, 1 + 2 ** -8 - 2 ** -40]), { dtype: mx.float64 });
    expect(Array.from(bitsOf(b.astype("bfloat16")), (v) => hex(v, 4))).toEqual(["0x3f80", "0x3f80"]);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. 64-bit integers -> float32 / float16 / bfloat16: one rounding to float32 first, as MLX

describe("int64 and uint64 -> float32, float16, bfloat16 (reference: real MLX)", () => {
  for (const name of ["int64_to_float", "uint64_to_float"] as const) {
    const signed = name === "int64_to_float";
    const ds = new Dataset(name);
    const values = (): BigInt64Array | BigUint64Array => (signed ? ds.i64("input") : ds.u64("input"));
    const input = values();
    const show = (i: number): string => `${signed ? "int64" : "uint64"} ${input[i]}`;

    test(`${signed ? "int64" : "uint64"} -> float32 rounds once (MLX's static_cast<float>)`, () => {
      using a = mx.array(values());
      expect(a.dtype).toBe(signed ? mx.int64 : mx.uint64);
      const want = ds.u32("mlx_f32");
      const got = f32Bits(a.astype(mx.float32).toTypedArray());
      expectNone(mismatches(ds.count, (i) => (got[i] === want[i] ? null : `${show(i)}: got ${hex(got[i]!, 8)}, want ${hex(want[i]!, 8)}`), ds));
      const out = f32Bits(a.toTypedArray({ dtype: "float32" }));
      expect(out).toEqual(got);
    });

    test(`${signed ? "int64" : "uint64"} -> float16 and bfloat16`, () => {
      using a = mx.array(values());
      using h = a.astype(mx.float16);
      using b = a.astype(mx.bfloat16);
      expectNone(compareHalf(bitsOf(h), ds.u16("mlx_f16"), show, ds));
      expectNone(compareHalf(bitsOf(b), ds.u16("mlx_bf16"), show, ds));
    });
  }

  test("named cases where going through float64 would round twice", () => {
    // int64 2^60 + 2^36 + 1 -> float32 is 2^60 + 2^37 (via float64: the tie 2^60 + 2^36, then 2^60).
    using a = mx.array(new BigInt64Array([2n ** 60n + 2n ** 36n + 1n, -(2n ** 60n + 2n ** 36n + 1n)]));
    expect(Array.from(a.astype("float32").toTypedArray() as Float32Array)).toEqual([2 ** 60 + 2 ** 37, -(2 ** 60 + 2 ** 37)]);
    using c = a.astype(mx.complex64);
    expect(Array.from(c.toTypedArray() as Float32Array)).toEqual([2 ** 60 + 2 ** 37, 0, -(2 ** 60 + 2 ** 37), 0]);
    // int64 2^60 + 2^52 + 2^36 + 1 -> bfloat16 is 2^60 + 2^53 (via float64: two ties, 2^60).
    using b = mx.array(new BigInt64Array([2n ** 60n + 2n ** 52n + 2n ** 36n + 1n]));
    expect(hex(bitsOf(b.astype(mx.bfloat16))[0]!, 4)).toBe("0x5d81");
    // uint64 2^64 - 2^39 - 1 -> float32 is the largest float32 below 2^64, not 2^64.
    using u = mx.array(new BigUint64Array([2n ** 64n - 2n ** 39n - 1n]));
    expect(hex(f32Bits(u.astype(mx.float32).toTypedArray())[0]!, 8)).toBe("0x5f7fffff");
  });
});

test("fixture versions are recorded", () => {
  expect(Object.keys(manifest.versions).sort()).toEqual(["ml_dtypes", "mlx", "numpy"]);
});
