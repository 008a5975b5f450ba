// The FFT's batched path (several lines per SIMD vector, engine/prims/fft.zig passBlocks) and its
// four-step plans for long transforms.
//
// Batched: every line of a batch must get exactly the bits of the same line transformed alone
// (the one-line path is checked against NumPy in fft.test.ts; the batched kernels run the same
// operations lane by lane), over contiguous and strided axes, full and partial blocks.
// Four-step (4096 points and more; the lines of a batch then run one at a time, each with its own
// batched sub-transforms): against the hand-computed transform of a sum of two complex
// exponentials, X[f] = n a, X[g] = n b and 0 elsewhere.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";

function randn(shape: number[], seed: number, complex: boolean): mx.Array {
  const key = mx.random.key(seed);
  if (!complex) return mx.random.normal(shape, { key });
  const [k1, k2] = mx.random.split(key);
  return mx.add(mx.random.normal(shape, { key: k1 }), mx.multiply(mx.random.normal(shape, { key: k2 }), { re: 0, im: 1 }));
}

function bits(a: mx.Array): Uint32Array {
  const t = a.toTypedArray() as Float32Array;
  return new Uint32Array(t.buffer.slice(t.byteOffset, t.byteOffset + t.byteLength));
}

describe("batched lines equal single lines bit for bit", () => {
  // 45 lines: one full block of 32 and a partial one; 97 and 1009 are Bluestein lengths; 143 and
  // 1001 run the unrolled radix-7/11/13 butterflies; 4500 is four-step (60 x 75).
  for (const n of [16, 60, 97, 128, 143, 1000, 1001, 1009, 4500]) {
    test(`fft/ifft/rfft/irfft over 45 x ${n}, along each axis`, () => {
      const x = randn([45, n], n, true);
      const r = randn([45, n], n + 1, false);
      for (const [name, f, input] of [
        ["fft", mx.fft.fft, x],
        ["ifft", mx.fft.ifft, x],
        ["rfft", mx.fft.rfft, r],
        ["irfft", mx.fft.irfft, x],
      ] as const) {
        // Along the last axis (contiguous lines).
        const all = f(input);
        for (const i of [0, 31, 32, 44]) expect([name, i, bits(all.index(i))]).toEqual([name, i, bits(f(input.index(i)))]);
        // Along axis 0 (lines adjacent in memory: the vector-shuffle gather).
        const t = mx.transpose(input);
        const cols = f(t, { axis: 0 });
        for (const j of [0, 31, 32, 44]) {
          expect([name, j, bits(cols.index(mx.sl(), j))]).toEqual([name, j, bits(f(mx.contiguous(t.index(mx.sl(), j))))]);
        }
      }
    });
  }
  test("fft2 over 70 x 64 (two full blocks on axis 0) equals two 1-D passes", () => {
    // The engine runs the axes in increasing order.
    const x = randn([70, 64], 3, true);
    const two = mx.fft.fft(mx.fft.fft(x, { axis: 0 }), { axis: 1 });
    expect(bits(mx.fft.fft2(x))).toEqual(bits(two));
  });
});

describe("four-step plans (long transforms)", () => {
  // x[j] = a e^{2 pi i f j / n} + b e^{2 pi i g j / n}, as float32.
  function tones(n: number, f: number, g: number, a: number, b: number, inverse: boolean): mx.Array {
    const v = new Float32Array(2 * n);
    const s = inverse ? -1 : 1;
    for (let j = 0; j < n; j++) {
      const p = (2 * Math.PI * ((f * j) % n)) / n;
      const q = (2 * Math.PI * ((g * j) % n)) / n;
      v[2 * j] = a * Math.cos(p) + b * Math.cos(q);
      v[2 * j + 1] = s * (a * Math.sin(p) + b * Math.sin(q));
    }
    return mx.array(new BigUint64Array(v.buffer), { dtype: "complex64", shape: [n], bits: true });
  }
  for (const [n, inverse] of [[1 << 19, false], [1 << 20, true], [3 * 5 * (1 << 16), false], [1000003, false]] as const) {
    test(`${inverse ? "ifft" : "fft"} of n = ${n} against the exact spectrum of two tones`, () => {
      const f = 12345 % n;
      const g = n - 777;
      const x = tones(n, f, g, 1, 0.5, inverse);
      const y = (inverse ? mx.fft.ifft(x, { norm: "forward" }) : mx.fft.fft(x)).toTypedArray() as Float32Array;
      let err = 0;
      for (let k = 0; k < n; k++) {
        const want = k === f ? n : k === g ? n / 2 : 0;
        err = Math.max(err, Math.hypot(y[2 * k]! - want, y[2 * k + 1]!));
      }
      // fft.test.ts's bound: 4e-7 log2(2N) max|exact| (+ the inputs' own float32 rounding).
      expect(err).toBeLessThan(4e-7 * Math.log2(2 * n) * n + 1e-6 * n);
    });
  }
  test("rfft of 2^21 reals (a half-length four-step transform) against the exact spectrum", () => {
    const n = 1 << 21;
    const f = 4321;
    const v = new Float32Array(n);
    for (let j = 0; j < n; j++) v[j] = Math.cos((2 * Math.PI * ((f * j) % n)) / n);
    const y = mx.fft.rfft(mx.array(v)).toTypedArray() as Float32Array;
    let err = 0;
    for (let k = 0; k <= n / 2; k++) err = Math.max(err, Math.hypot(y[2 * k]! - (k === f ? n / 2 : 0), y[2 * k + 1]!));
    expect(err).toBeLessThan(4e-7 * Math.log2(2 * n) * (n / 2) + 1e-6 * n);
  });
});
