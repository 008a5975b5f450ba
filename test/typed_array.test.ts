// Data out: toTypedArray copies and views, dtype conversion, float16/bfloat16 as values or bits.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";

describe("toTypedArray", () => {
  test("copies by default: the result is independent of the array", () => {
    const a = mx.arange(4);
    const t = a.toTypedArray() as Int32Array;
    expect(t).toBeInstanceOf(Int32Array);
    expect([...t]).toEqual([0, 1, 2, 3]);
    t[0] = 99;
    expect(a.tolist()).toEqual([0, 1, 2, 3]);
  });

  test("copy: false is a view of the engine buffer that keeps it alive", () => {
    const a = mx.arange(0, 8, 1, mx.float32);
    const v = a.toTypedArray({ copy: false }) as Float32Array;
    const w = a.toTypedArray({ copy: false }) as Float32Array;
    v[3] = -1; // memory changed behind the engine's back is visible to the array (and invisible to transforms)
    expect(w[3]).toBe(-1);
    expect((a.tolist() as number[])[3]).toBe(-1);
    Bun.gc(true); // earlier tests' garbage must not be freed while we measure
    const before = mx.getActiveMemory();
    a.dispose();
    expect(mx.getActiveMemory()).toBe(before); // the view still holds the buffer
    expect([...v]).toEqual([0, 1, 2, -1, 4, 5, 6, 7]);
  });

  test("views of non-contiguous arrays are of one contiguous copy", () => {
    const b = mx.full([2, 3], mx.array([1, 2, 3]));
    const v = b.toTypedArray({ copy: false }) as Int32Array;
    expect([...v]).toEqual([1, 2, 3, 1, 2, 3]);
  });

  test("TypedArray type by dtype", () => {
    const kinds: [mx.Dtype, string][] = [
      [mx.bool, "Uint8Array"], [mx.uint8, "Uint8Array"], [mx.uint16, "Uint16Array"], [mx.uint32, "Uint32Array"],
      [mx.uint64, "BigUint64Array"], [mx.int8, "Int8Array"], [mx.int16, "Int16Array"], [mx.int32, "Int32Array"],
      [mx.int64, "BigInt64Array"], [mx.float16, "Float16Array"], [mx.float32, "Float32Array"], [mx.float64, "Float64Array"],
      [mx.complex64, "Float32Array"],
    ];
    for (const [d, name] of kinds) {
      const t = mx.ones([3], d).toTypedArray();
      expect(t.constructor.name).toBe(name);
      expect(t.length).toBe(d === mx.complex64 ? 6 : 3);
    }
    expect([...(mx.ones([2], mx.complex64).toTypedArray() as Float32Array)]).toEqual([1, 0, 1, 0]);
    expect([...(mx.ones([2], mx.int64).toTypedArray() as BigInt64Array)]).toEqual([1n, 1n]);
  });

  test("bfloat16 asks for a choice, and gives values or bits on request", () => {
    const a = mx.array([1, -2.5, 0.1]).astype(mx.bfloat16);
    expect(() => a.toTypedArray()).toThrow(/^\[toTypedArray\] bfloat16 has no TypedArray type; pass \{ dtype: "float32" \}/);
    // bfloat16(0.1) = 0x3dcd = 0.10009765625 (hand computed: round-to-nearest-even of 0x3dcccccd)
    expect([...(a.toTypedArray({ dtype: "float32" }) as Float32Array)]).toEqual([1, -2.5, 0.10009765625]);
    expect([...(a.toTypedArray({ bits: true }) as Uint16Array)]).toEqual([0x3f80, 0xc020, 0x3dcd]);
    const h = mx.array([1, 65504, 1e-7]).astype(mx.float16);
    // float16: 1 = 0x3c00, 65504 = 0x7bff (largest finite), 1e-7 rounds to subnormal 2 * 2^-24 = 0x0002
    expect([...(h.toTypedArray({ bits: true }) as Uint16Array)]).toEqual([0x3c00, 0x7bff, 0x0002]);
    expect(() => mx.ones([2]).toTypedArray({ bits: true })).toThrow(/^\[toTypedArray\] bits: true is for float16 and bfloat16/);
    // And back in: raw bits construct a bfloat16 array bit for bit.
    const back = mx.array(new Uint16Array([0x3f80, 0xc020, 0x3dcd]), { dtype: mx.bfloat16, bits: true });
    expect(back.dtype).toBe(mx.bfloat16);
    expect(back.tolist()).toEqual([1, -2.5, 0.10009765625]);
    expect(() => mx.array(new Uint8Array(2), { dtype: mx.bfloat16, bits: true })).toThrow(/^\[array\] bits: true needs/);
  });

  test("dtype converts on the way out", () => {
    const a = mx.array([1.75, -2.5]);
    expect([...(a.toTypedArray({ dtype: mx.int32 }) as Int32Array)]).toEqual([1, -2]);
    expect([...(a.toTypedArray({ dtype: "float64" }) as Float64Array)]).toEqual([1.75, -2.5]);
    expect(() => a.toTypedArray({ dtype: "float128" as unknown as mx.DtypeName })).toThrow(/^\[toTypedArray\] Unknown dtype "float128"/);
  });

  test("empty arrays give empty TypedArrays", () => {
    expect(mx.zeros([0, 3]).toTypedArray().length).toBe(0);
    expect(mx.zeros([0]).toTypedArray({ copy: false }).length).toBe(0);
  });
});
