// Constants, dtype utilities and window functions. Expected values are real MLX 0.32.4's
// (printed by mlx-cpu on this machine) or NumPy's definitions, as noted.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { expectMlxError } from "./util";

describe("constants", () => {
  test("as MLX", () => {
    expect(mx.e).toBe(2.718281828459045);
    expect(mx.pi).toBe(3.141592653589793);
    expect(mx.eulerGamma).toBe(0.5772156649015329);
    expect(mx.inf).toBe(Infinity);
    expect(Number.isNaN(mx.nan)).toBe(true);
    expect(mx.newaxis).toBe(null);
  });
});

describe("dtype utilities", () => {
  test("issubdtype over dtypes and categories", () => {
    // MLX: issubdtype(float32, floating) True, (int8, integer) True, (floating, inexact) True,
    // (bool, integer) False, (bool, generic) True, (float32, float32) True, (floating, float32) False,
    // (complex64, inexact) True, (uint8, signedinteger) False.
    expect(mx.issubdtype(mx.float32, mx.floating)).toBe(true);
    expect(mx.issubdtype(mx.int8, mx.integer)).toBe(true);
    expect(mx.issubdtype(mx.floating, mx.inexact)).toBe(true);
    expect(mx.issubdtype(mx.bool, mx.integer)).toBe(false);
    expect(mx.issubdtype(mx.bool, mx.generic)).toBe(true);
    expect(mx.issubdtype(mx.float32, mx.float32)).toBe(true);
    expect(mx.issubdtype(mx.floating, mx.float32)).toBe(false);
    expect(mx.issubdtype(mx.complex64, mx.inexact)).toBe(true);
    expect(mx.issubdtype(mx.uint8, mx.signedinteger)).toBe(false);
    expect(mx.issubdtype(mx.bfloat16, mx.number)).toBe(true);
    expect(Object.keys(mx.DtypeCategory)).toEqual(["complexfloating", "floating", "inexact", "signedinteger", "unsignedinteger", "integer", "number", "generic"]);
  });

  test("isdtype kinds", () => {
    // MLX: (float32,'real floating') True, (int8,'integral') True, (float32,float32) True,
    // (complex64,'complex floating') True, (bool,'bool') True, (float16,('integral','real floating')) True,
    // (uint8,'signed integer') False, (uint8,'unsigned integer') True, (float32,'numeric') True.
    expect(mx.isdtype(mx.float32, "real floating")).toBe(true);
    expect(mx.isdtype(mx.int8, "integral")).toBe(true);
    expect(mx.isdtype(mx.float32, mx.float32)).toBe(true);
    expect(mx.isdtype(mx.complex64, "complex floating")).toBe(true);
    expect(mx.isdtype(mx.bool, "bool")).toBe(true);
    expect(mx.isdtype(mx.float16, ["integral", "real floating"])).toBe(true);
    expect(mx.isdtype(mx.uint8, "signed integer")).toBe(false);
    expect(mx.isdtype(mx.uint8, "unsigned integer")).toBe(true);
    expect(mx.isdtype(mx.float32, "numeric")).toBe(true);
    expectMlxError(() => mx.isdtype(mx.float32, "bogus"), /^\[isdtype\] Unknown data type kind: 'bogus'\.$/);
  });

  test("resultType", () => {
    // MLX: result_type(array([1]), array([2.5])) float32; (int8, uint8) int16; (float16, int64) float16; (int8) int8.
    expect(mx.resultType(mx.array([1]), mx.array([2.5]))).toBe(mx.float32);
    expect(mx.resultType(mx.int8, mx.uint8)).toBe(mx.int16);
    expect(mx.resultType(mx.float16, mx.int64)).toBe(mx.float16);
    expect(mx.resultType(mx.int8)).toBe(mx.int8);
    expectMlxError(() => mx.resultType(2.5 as unknown as mx.Dtype), /^\[result_type\] Inputs must be arrays or dtypes\.$/);
  });

  test("canCast: MLX's full table", () => {
    // mlx.core.can_cast(a, b) for every pair, rows and columns in enum order (MLX 0.32.4).
    const table = [
      "11111111111111", "01111011111111", "00111001111111", "00011000111111", "00001000011111", "00000111111111",
      "00000011111111", "00000001111111", "00000000111111", "00000000011101", "00000000001101", "00000000000101",
      "00000000001111", "00000000000001",
    ];
    mx.dtypes.forEach((a, i) => mx.dtypes.forEach((b, j) => expect(mx.canCast(a, b) ? "1" : "0").toBe(table[i]![j]!)));
    expect(mx.canCast(mx.array([1]), mx.float32)).toBe(true);
  });

  test("finfo and iinfo", () => {
    // MLX: finfo(float16) min -65504 max 65504 eps 0.0009765625 smallest_normal 6.103515625e-05;
    // bfloat16 max 3.3895313892515355e+38 eps 0.0078125 smallest_normal 1.1754943508222875e-38;
    // float32 eps 1.1920928955078125e-07 min -3.4028234663852886e+38; float64 eps 2.220446049250313e-16.
    const h = mx.finfo(mx.float16);
    expect([h.min, h.max, h.eps, h.smallestNormal, h.bits]).toEqual([-65504, 65504, 0.0009765625, 6.103515625e-5, 16]);
    expect(`${h}`).toBe("finfo(min=-65504, max=65504, dtype=float16)");
    const b = mx.finfo(mx.bfloat16);
    expect([b.max, b.eps, b.smallestNormal]).toEqual([3.3895313892515355e38, 0.0078125, 1.1754943508222875e-38]);
    expect(mx.finfo(mx.float32).eps).toBe(1.1920928955078125e-7);
    expect(mx.finfo(mx.float32).min).toBe(-3.4028234663852886e38);
    expect(`${mx.finfo(mx.complex64)}`).toBe("finfo(min=-3.40282e+38, max=3.40282e+38, dtype=float32)");
    expect(mx.finfo(mx.float64).eps).toBe(2.220446049250313e-16);
    expect(`${mx.iinfo(mx.uint8)}`).toBe("iinfo(min=0, max=255, dtype=uint8)");
    expect(`${mx.iinfo(mx.int64)}`).toBe("iinfo(min=-9223372036854775808, max=9223372036854775807, dtype=int64)");
    expect(`${mx.iinfo(mx.uint64)}`).toBe("iinfo(min=0, max=18446744073709551615, dtype=uint64)");
    expect(mx.iinfo(mx.int16).min).toBe(-32768);
    expectMlxError(() => mx.finfo(mx.int32), /^\[finfo\] dtype int32 is not inexact\.$/);
    expectMlxError(() => mx.iinfo(mx.float32), /^\[iinfo\] Only integer types supported but float32 was provided$/);
  });
});

describe("window functions", () => {
  // NumPy's definitions, n = 0..M-1: hanning 0.5 - 0.5 cos(2 pi n/(M-1)), hamming 0.54 - 0.46 cos(...),
  // blackman 0.42 - 0.5 cos(...) + 0.08 cos(4 pi n/(M-1)), bartlett 1 - |2n/(M-1) - 1|.
  const ref: Record<string, (n: number, m: number) => number> = {
    hanning: (n, m) => 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / (m - 1)),
    hamming: (n, m) => 0.54 - 0.46 * Math.cos((2 * Math.PI * n) / (m - 1)),
    blackman: (n, m) => 0.42 - 0.5 * Math.cos((2 * Math.PI * n) / (m - 1)) + 0.08 * Math.cos((4 * Math.PI * n) / (m - 1)),
    bartlett: (n, m) => 1 - Math.abs((2 * n) / (m - 1) - 1),
  };
  const fns = { hanning: mx.hanning, hamming: mx.hamming, blackman: mx.blackman, bartlett: mx.bartlett };
  for (const [name, f] of Object.entries(fns)) {
    test(name, () => {
      for (const m of [2, 3, 5, 8, 51]) {
        const w = f(m);
        expect(w.dtype).toBe(mx.float32);
        expect(w.shape).toEqual([m]);
        const v = w.toTypedArray() as Float32Array;
        for (let n = 0; n < m; n++) expect(Math.abs(v[n]! - ref[name]!(n, m))).toBeLessThan(1e-6);
      }
      // MLX: M = 1 gives [1], M = 0 gives [] (float32).
      expect(f(1).tolist()).toEqual([1]);
      expect(f(0).shape).toEqual([0]);
      expect(f(0).dtype).toBe(mx.float32);
    });
  }
});

describe("softmax and meshgrid", () => {
  test("softmax against MLX's values", () => {
    // MLX: softmax([[1,2,3],[1,1,1]], axis=-1) and softmax([1,2]) (all axes), float32.
    const a = mx.softmax(mx.array([[1, 2, 3], [1, 1, 1]], mx.float32), { axis: -1 }).tolist() as number[][];
    const want = [[0.09003057330846786, 0.2447284758090973, 0.6652409434318542], [0.3333333432674408, 0.3333333432674408, 0.3333333432674408]];
    a.flat().forEach((v, i) => expect(Math.abs(v - want.flat()[i]!)).toBeLessThan(1e-7));
    const b = mx.softmax(mx.array([1, 2], mx.float32)).tolist() as number[];
    expect(Math.abs(b[0]! - 0.2689414322376251)).toBeLessThan(1e-7);
    expect(mx.softmax(mx.array([1, 2])).dtype).toBe(mx.float32);
    const h = mx.softmax(mx.array([1, 2, 3]).astype(mx.float16), { axis: 0, precise: true });
    expect(h.dtype).toBe(mx.float16);
  });

  test("meshgrid against MLX's grids", () => {
    const x = mx.array([1, 2, 3]);
    const y = mx.array([4, 5]);
    expect(mx.meshgrid([x, y]).map((g) => g.tolist())).toEqual([[[1, 2, 3], [1, 2, 3]], [[4, 4, 4], [5, 5, 5]]]);
    expect(mx.meshgrid([x, y], { indexing: "ij" }).map((g) => g.tolist())).toEqual([[[1, 1], [2, 2], [3, 3]], [[4, 5], [4, 5], [4, 5]]]);
    expect(mx.meshgrid([x, y], { sparse: true }).map((g) => [...g.shape])).toEqual([[1, 3], [2, 1]]);
    expectMlxError(() => mx.meshgrid([x], { indexing: "zz" as "xy" }), /^\[meshgrid\] Invalid indexing value/);
  });
});

describe("diff, stopGradient, depends", () => {
  test("diff: n-th differences along an axis (values as MLX gives them)", () => {
    const a = mx.array([1, 4, 9, 16]);
    expect(mx.diff(a).tolist()).toEqual([3, 5, 7]);
    expect(mx.diff(a, 2).tolist()).toEqual([2, 2]);
    expect(mx.diff(a, 0).tolist()).toEqual([1, 4, 9, 16]);
    expect(mx.diff(a, 5).shape).toEqual([0]);
    expect(mx.diff(mx.array([[1, 2], [4, 8]]), 1, 0).tolist()).toEqual([[3, 6]]);
    expect(mx.diff(mx.array([[1, 2], [4, 8]]), 1, -1).tolist()).toEqual([[1], [4]]);
    const b = mx.diff(mx.array([true, false, true]));
    expect(b.dtype).toBe(mx.bool);
    expect(b.tolist()).toEqual([true, true]);
    expect(mx.diff(mx.array([1, 2], mx.uint8)).dtype).toBe(mx.uint8);
    expectMlxError(() => mx.diff(a, -1), /^\[diff\] Order `n` must be non-negative\.$/);
    expectMlxError(() => mx.diff(a, 1, 2), /^\[diff\] Axis is out of bounds for the array\.$/);
  });

  test("stopGradient is the identity and shares the buffer", () => {
    const a = mx.array([1, 2, 3], mx.float32);
    mx.eval(a);
    Bun.gc(true); // earlier tests' garbage must not be freed while we measure
    const before = mx.getActiveMemory();
    const s = mx.stopGradient(a);
    mx.eval(s);
    expect(mx.getActiveMemory()).toBe(before);
    expect(s.tolist()).toEqual([1, 2, 3]);
  });

  test("depends: outputs equal the inputs; evaluating them evaluates the dependencies", () => {
    const x = mx.array([1, 2]);
    const dep = mx.multiply(mx.array([3]), 2);
    expect(dep.evaluated).toBe(false);
    const y = mx.depends(x, dep);
    expect(y.tolist()).toEqual([1, 2]);
    expect(dep.evaluated).toBe(true);
    const deps = [mx.add(x, 1), mx.add(x, 2)];
    const [p, q] = mx.depends([x, mx.array(5)], deps);
    mx.eval(p!, q!);
    expect(q!.item()).toBe(5);
    expect(deps.every((d) => d.evaluated)).toBe(true);
  });

  test("real and imag are properties, as in MLX", () => {
    const z = mx.array([{ re: 1, im: 2 }, { re: -3, im: 0.5 }]);
    expect(z.real.tolist()).toEqual([1, -3]);
    expect(z.imag.tolist()).toEqual([2, 0.5]);
    expect(mx.array([1.5]).imag.tolist()).toEqual([0]);
  });
});
