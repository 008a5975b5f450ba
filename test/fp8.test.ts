// mx.toFp8 / mx.fromFp8 (E4M3 codes as uint8). Oracle: MLX 0.32.4's to_fp8 / from_fp8 on every
// E4M3 value, the ties between neighbours and values either side of them, random magnitudes
// from 2^-14 to 2^10, and specials (test/fixtures/fp8/gen_fp8.py); float64 against the
// float32 result of the same values (exactly representable), since MLX 0.32 misreads float64.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, loadFixture, toHex, type Rec } from "./fixture.ts";

interface Fixture {
  to: { x: Rec; codes: Rec }[];
  from: { dtype: string; values: Rec }[];
  fromDefault: Rec;
  errors: Record<string, string>;
}
const fx = loadFixture<Fixture>("fp8/fp8.json.gz");

describe("toFp8", () => {
  test("bit-exact codes for float32, float16 and bfloat16 inputs (ties to even, saturation, NaN and ±inf to ±448)", () => {
    for (const c of fx.to) {
      const got = mx.toFp8(arrayOf(c.x));
      expect(got.dtype).toBe(mx.uint8);
      expect(got.shape).toEqual(c.codes.shape);
      expect(toHex(bytesOf(got))).toBe(c.codes.hex);
    }
  });

  test("float64 gives the codes of the same values in float32", () => {
    const x32 = arrayOf(fx.to[0]!.x);
    expect(toHex(bytesOf(mx.toFp8(x32.astype(mx.float64))))).toBe(fx.to[0]!.codes.hex);
  });

  test("hand-checked codes", () => {
    // 1 = 2^0: exponent 7, code 0x38; -1.5: sign, exponent 7, mantissa 4 → 0xbc; 2^-9 is the
    // smallest subnormal (1); 2^-10 ties to 0; 3·2^-10 ties to 2 (even); 1000 saturates to 0x7e.
    const x = mx.array([1, -1.5, 2 ** -9, 2 ** -10, 3 * 2 ** -10, 1000, -Infinity], mx.float32);
    expect(Array.from(mx.toFp8(x).toTypedArray() as Uint8Array)).toEqual([0x38, 0xbc, 1, 0, 2, 0x7e, 0xfe]);
  });

  test("vmap and compile give the same codes", () => {
    const x = arrayOf(fx.to[0]!.x).reshape([-1, 2]);
    const direct = toHex(bytesOf(mx.toFp8(x)));
    expect(toHex(bytesOf(mx.vmap((r: mx.Array) => mx.toFp8(r))(x) as mx.Array))).toBe(direct);
    expect(toHex(bytesOf(mx.compile((r: mx.Array) => mx.toFp8(r))(x) as mx.Array))).toBe(direct);
  });

  test("errors as MLX's", () => {
    expect(() => mx.toFp8(mx.array([1, 2], mx.int32))).toThrow(fx.errors.to_int!);
    expect(() => mx.toFp8(mx.array([1, 2], mx.complex64))).toThrow(fx.errors.to_complex!);
    expect(() => mx.toFp8(3 as unknown as mx.Array)).toThrow("[to_fp8]");
  });
});

describe("fromFp8", () => {
  const nanCodes = new Set([0x7f, 0xff]);
  function expectValues(got: mx.Array, want: Rec): void {
    expect(got.dtype.name).toBe(want.dtype);
    expect(got.shape).toEqual(want.shape);
    const w = arrayOf(want);
    const gb = bytesOf(got);
    const wb = bytesOf(w);
    const size = got.dtype.size;
    for (let c = 0; c < 256; c++) {
      if (nanCodes.has(c)) continue;
      expect(toHex(gb.subarray(c * size, (c + 1) * size))).toBe(toHex(wb.subarray(c * size, (c + 1) * size)));
    }
    const f = got.astype(mx.float32).toTypedArray() as Float32Array;
    for (const c of nanCodes) expect(Number.isNaN(f[c]!)).toBe(true);
  }

  test("all 256 codes decode as MLX's in float32, float16 and bfloat16 (default bfloat16)", () => {
    const codes = mx.arange(0, 256, 1, mx.uint8);
    for (const c of fx.from) expectValues(mx.fromFp8(codes, c.dtype as mx.DtypeLike), c.values);
    expectValues(mx.fromFp8(codes), fx.fromDefault);
  });

  test("round trip: fromFp8(toFp8(v)) is v for every E4M3 value", () => {
    const codes = mx.arange(0, 256, 1, mx.uint8);
    const back = mx.toFp8(mx.fromFp8(codes, mx.float32));
    const want = Array.from({ length: 256 }, (_, c) => (c === 0xff ? 0xfe : c === 0x7f ? 0x7e : c));
    expect(Array.from(back.toTypedArray() as Uint8Array)).toEqual(want);
  });

  test("errors as MLX's", () => {
    expect(() => mx.fromFp8(mx.array([1, 2], mx.int32))).toThrow(fx.errors.from_int32!);
    expect(() => mx.fromFp8(mx.array([1, 2], mx.uint8), mx.int32)).toThrow(fx.errors.from_dtype!);
  });
});
