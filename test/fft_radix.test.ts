// mx.fft on the sizes that exercise the odd-prime butterflies (radix 7, 11, 13, 17, 19, 23
// unrolled; 29 and up generic) and the four-step plans of mid-size transforms (4096 points and
// more), one line alone and batched along either axis, against NumPy's float64 transforms
// (test/fixtures/fft/gen_fft_radix.py). fft.test.ts's formula inputs and bound: max |ours -
// exact| <= 4e-7 log2(2N) max|exact| + 1e-6, which MLX's own float32 results pass.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { bytesOf, loadFixture, numbersOf } from "./fixture";

interface Case {
  fn: "fft" | "ifft" | "rfft" | "irfft";
  dtype: "float32" | "complex64";
  shape: number[];
  seed: number;
  kw: { n?: number; axis?: number };
  out_dtype: mx.DtypeName;
  out_shape: number[];
  N: number;
  idx?: number[];
  re: number[];
  im: number[] | null;
}

const fx = loadFixture<{ cases: Case[] }>("fft/fft_radix.json.gz");

/** gen_fft_radix.py's formula: element i is ((7919 i + seed) mod 1009 - 504) / 256 (imaginary: i + 500009). */
function formula(dtype: Case["dtype"], shape: number[], seed: number): mx.Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const f = (j: number) => (((7919 * j + seed) % 1009) - 504) / 256;
  if (dtype === "float32") return mx.array(Float32Array.from({ length: n }, (_, i) => f(i)), { shape });
  const v = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    v[2 * i] = f(i);
    v[2 * i + 1] = f(i + 500009);
  }
  return mx.array(new BigUint64Array(v.buffer), { dtype: "complex64", shape, bits: true });
}

describe("odd radices and four-step plans against NumPy's float64 results", () => {
  for (const c of fx.cases) {
    test(`${c.fn}(${c.dtype}[${c.shape}], ${JSON.stringify(c.kw)})`, () => {
      const y = mx.fft[c.fn](formula(c.dtype, c.shape, c.seed), c.kw);
      expect(y.dtype.name).toBe(c.out_dtype);
      expect(y.shape).toEqual(c.out_shape);
      const v = numbersOf(bytesOf(y), y.dtype.name);
      const cplx = y.dtype.name === "complex64";
      let err = 0;
      let mag = 0;
      c.re.forEach((r, k) => {
        const i = c.idx ? c.idx[k]! : k;
        const e = c.im ? c.im[k]! : 0;
        const g = cplx ? [v[2 * i]!, v[2 * i + 1]!] : [v[i]!, 0];
        err = Math.max(err, Math.hypot(g[0]! - r, g[1]! - e));
        mag = Math.max(mag, Math.hypot(r, e));
      });
      expect(err).toBeLessThanOrEqual(4e-7 * Math.log2(2 * c.N) * mag + 1e-6);
      if (!c.idx) expect(v.length).toBe(c.re.length * (cplx ? 2 : 1));
    });
  }
});
