// nvfp4 with and without a global scale against real MLX (test/fixtures/quantized/
// gen_nvfp4_global.py, mlx-cpu 0.32.4): quantize bit for bit (float32, float16, bfloat16 inputs;
// groups on the E4M3 and E2M1 rounding boundaries; zeros, NaN, infinities, huge elements; global
// scales positive, negative, zero, infinite, NaN, subnormal, huge; 4 x 16384 hashed groups),
// dequantize bit for bit (MLX returns float32 with a global scale whatever dtype is asked for; an
// explicit dtype here gets MLX's float32 values rounded to it), the gradient with respect to the
// global scale and gatherQmm with per-matrix global scales (within a tolerance: sums in another
// order), vmap, and MLX's messages.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, fromHex, loadFixture, numbersOf, toHex, type Rec } from "./fixture";
import { expectMlxError } from "./util";

interface QCase { w: Rec; g: Rec | null; wq: Rec; scales: Rec; dq: Rec }
interface BigCase { seed: number; groups: number; dtype: mx.DtypeName; g: Rec | null; wq: Rec; scales: Rec }
interface DqCase { g: Rec; wq: Rec; scales: Rec; out: Rec; out_float16: Rec; out_bfloat16: Rec }
interface GradCase { g: Rec; wq: Rec; scales: Rec; cot: Rec; dg: Rec }
interface GqmmCase { x: Rec; wq: Rec; scales: Rec; g: Rec; rhs: Rec; out: Rec }
interface Fixture {
  quantize: QCase[];
  big: BigCase[];
  dequantize: DqCase[];
  grad: GradCase[];
  gather_qmm: GqmmCase[];
  errors: Record<string, string>;
}

const fx = loadFixture<Fixture>("quantized/nvfp4_global.json.gz");
const NV = { mode: "nvfp4" as const };

function expectBits(a: mx.Array, r: Rec, what: string): void {
  expect(a.dtype.name, what).toBe(r.dtype);
  expect(a.shape, what).toEqual(r.shape);
  const got = toHex(bytesOf(a));
  if (got !== r.hex) {
    const size = r.hex.length / 2 / Math.max(1, r.shape.reduce((p, d) => p * d, 1));
    let i = 0;
    while (got.slice(i * 2 * size, (i + 1) * 2 * size) === r.hex.slice(i * 2 * size, (i + 1) * 2 * size)) i++;
    throw new Error(`${what}: element ${i} differs: ours ${got.slice(i * 2 * size, (i + 1) * 2 * size)} MLX ${r.hex.slice(i * 2 * size, (i + 1) * 2 * size)}`);
  }
}

function expectNear(a: mx.Array, r: Rec, rel: number, what: string): void {
  expect(a.shape, what).toEqual(r.shape);
  const want = numbersOf(fromHex(r.hex), r.dtype);
  const got = numbersOf(bytesOf(a.astype(mx.float32)), "float32");
  const scale = Math.max(1e-30, ...want.map(Math.abs));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= rel * scale)) throw new Error(`${what}: element ${i}: ours ${got[i]} MLX ${want[i]}`);
  }
}

function gLabel(g: Rec | null): string {
  return g === null ? "no global scale" : `g=${numbersOf(fromHex(g.hex), "float32")[0]}`;
}

/** The generator's hashed_w: float32 (groups, 16) from an integer hash. */
function hashedW(groups: number, seed: number): Float32Array {
  const bits = new Uint32Array(groups * 16);
  for (let i = 0; i < bits.length; i++) {
    let h = (Math.imul(i, 2654435761 | 0) + seed) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul(h, 2246822519 | 0) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    let gh = (Math.imul(i >>> 4, 3266489917 | 0) + seed) >>> 0;
    gh = (gh ^ (gh >>> 16)) >>> 0;
    const exp = 127 + ((gh % 40) - 20) - ((h >>> 23) & 3);
    bits[i] = ((h & 0x80000000) | (exp << 23) | (h & 0x7fffff)) >>> 0;
  }
  return new Float32Array(bits.buffer);
}

describe("nvfp4 quantize (bit-exact with MLX)", () => {
  for (const c of fx.quantize) {
    test(`${c.w.dtype} ${JSON.stringify(c.w.shape)} ${gLabel(c.g)}`, () => {
      mx.tidy(() => {
        const g = c.g ? arrayOf(c.g) : null;
        const [wq, s] = mx.quantize(arrayOf(c.w), { ...NV, globalScale: g });
        expectBits(wq!, c.wq, "wq");
        expectBits(s!, c.scales, "scales");
        // dequantize of MLX's own outputs: float32 with a global scale (MLX's dtype), bfloat16 without
        const d = mx.dequantize(arrayOf(c.wq), arrayOf(c.scales), null, { ...NV, globalScale: g });
        expectBits(d, c.dq, "dequantize");
      });
    });
  }
  for (const c of fx.big) {
    test(`${c.groups} hashed groups, ${c.dtype}, ${gLabel(c.g)}`, () => {
      mx.tidy(() => {
        const w = mx.array(hashedW(c.groups, c.seed), { shape: [(c.groups * 16) / 256, 256] }).astype(c.dtype);
        const [wq, s] = mx.quantize(w, { ...NV, globalScale: c.g ? arrayOf(c.g) : null });
        expectBits(wq!, c.wq, "wq");
        expectBits(s!, c.scales, "scales");
      });
    });
  }
});

describe("nvfp4 dequantize with a global scale (bit-exact with MLX)", () => {
  for (const c of fx.dequantize) {
    test(gLabel(c.g), () => {
      mx.tidy(() => {
        const args = [arrayOf(c.wq), arrayOf(c.scales), null] as const;
        const g = arrayOf(c.g);
        expectBits(mx.dequantize(...args, { ...NV, globalScale: g }), c.out, "default dtype (float32)");
        expectBits(mx.dequantize(...args, { ...NV, globalScale: g, dtype: mx.float32 }), c.out, "float32");
        expectBits(mx.dequantize(...args, { ...NV, globalScale: g, dtype: mx.float16 }), c.out_float16, "float16");
        expectBits(mx.dequantize(...args, { ...NV, globalScale: g, dtype: mx.bfloat16 }), c.out_bfloat16, "bfloat16");
      });
    });
  }
  test("a global scale of shape [1, 1] is one value too (as MLX)", () => {
    mx.tidy(() => {
      const c = fx.dequantize[1]!;
      const g = mx.reshape(arrayOf(c.g), [1, 1]);
      expectBits(mx.dequantize(arrayOf(c.wq), arrayOf(c.scales), null, { ...NV, globalScale: g }), c.out, "g [1, 1]");
    });
  });
});

describe("transforms", () => {
  for (const c of fx.grad) {
    test(`gradient wrt the global scale, ${gLabel(c.g)} (MLX's, within 1e-5)`, () => {
      mx.tidy(() => {
        const wq = arrayOf(c.wq);
        const s = arrayOf(c.scales);
        const cot = arrayOf(c.cot);
        const dg = mx.grad((g: mx.Array) => mx.sum(mx.multiply(mx.dequantize(wq, s, null, { ...NV, globalScale: g }), cot)))(arrayOf(c.g)) as mx.Array;
        expect(dg.dtype).toBe(mx.float32);
        expectNear(dg, c.dg, 1e-5, "d global scale");
      });
    });
  }
  test("no gradient wrt the nvfp4 scales (the global scale's is defined)", () => {
    mx.tidy(() => {
      const c = fx.grad[0]!;
      const wq = arrayOf(c.wq);
      const g = arrayOf(c.g);
      expectMlxError(() => mx.grad((s: mx.Array) => mx.sum(mx.dequantize(wq, s, null, { ...NV, globalScale: g })))(arrayOf(c.scales)), /^\[dequantize\] no gradient wrt the quantization scales in mode 'nvfp4'\.$/);
    });
  });
  test("vmap of quantize and dequantize with a global scale equals each matrix alone", () => {
    mx.tidy(() => {
      const ws = mx.multiply(mx.random.normal([3, 4, 64]), 5);
      const g = mx.array(7.5, mx.float32);
      const o = { ...NV, globalScale: g };
      const [vq, vs] = mx.vmap((w: mx.Array) => mx.quantize(w, o))(ws) as mx.Array[];
      const dq = mx.vmap((q: mx.Array, s: mx.Array) => mx.dequantize(q, s, null, o))(vq!, vs!);
      for (let i = 0; i < 3; i++) {
        const [q, s] = mx.quantize(mx.take(ws, i, 0), o);
        expect(mx.arrayEqual(mx.take(vq!, i, 0), q!).item()).toBe(true);
        expect(mx.arrayEqual(mx.take(vs!, i, 0), s!).item()).toBe(true);
        expect(mx.arrayEqual(mx.take(dq, i, 0), mx.dequantize(q!, s!, null, o)).item()).toBe(true);
      }
      // one global scale per batch item is refused (MLX cannot vmap these either)
      expectMlxError(() => mx.vmap((gg: mx.Array) => mx.dequantize(vq!, vs!, null, { ...NV, globalScale: gg }))(mx.array([1, 2], mx.float32)), /^\[dequantize\] vmap over the global scale is not supported\.$/);
    });
  });
});

describe("gatherQmm with per-matrix global scales", () => {
  for (const c of fx.gather_qmm) {
    test("x @ dequantize(w[e], scales[e], g[e]).T (MLX runs it on the GPU only; reference: MLX's product of the dequantized matrices)", () => {
      mx.tidy(() => {
        const y = mx.gatherQmm(arrayOf(c.x), arrayOf(c.wq), arrayOf(c.scales), null, null, arrayOf(c.rhs), { ...NV, globalScale: arrayOf(c.g) });
        expect(y.dtype).toBe(mx.float32);
        expectNear(y, c.out, 1e-5, "gather_qmm");
      });
    });
  }
});

describe("MLX's messages for bad global scales", () => {
  const E = fx.errors;
  const esc = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  const w = () => mx.zeros([4, 64]);
  const g = () => mx.array(1, mx.float32);
  const gh = () => mx.array(1, mx.float16);
  const q = () => mx.quantize(w(), NV);
  const x = () => mx.zeros([2, 64]);
  const two = (a: mx.Array) => mx.stack([a, a]);
  const cases: [string, () => unknown][] = [
    ["q_affine", () => mx.quantize(w(), { groupSize: 64, bits: 4, globalScale: g() })],
    ["q_mxfp8", () => mx.quantize(w(), { mode: "mxfp8", globalScale: g() })],
    ["q_dtype", () => mx.quantize(w(), { ...NV, globalScale: gh() })],
    ["q_int_dtype", () => mx.quantize(w(), { ...NV, globalScale: mx.array(1, mx.int32) })],
    ["q_shape", () => mx.quantize(w(), { ...NV, globalScale: mx.zeros([2]) })],
    ["q_empty", () => mx.quantize(w(), { ...NV, globalScale: mx.zeros([0]) })],
    ["q_gs32", () => mx.quantize(w(), { ...NV, groupSize: 32, globalScale: gh() })],
    ["q_1d", () => mx.quantize(mx.zeros([64]), { ...NV, groupSize: 32, globalScale: gh() })],
    ["q_int_w", () => mx.quantize(mx.zeros([64], mx.int32), { ...NV, globalScale: gh() })],
    ["q_notdiv", () => mx.quantize(mx.zeros([4, 24]), { ...NV, globalScale: gh() })],
    ["dq_affine", () => { const [a, s] = q(); return mx.dequantize(a!, s!, mx.zeros([4, 4]), { groupSize: 16, bits: 4, mode: "affine", globalScale: g() }); }],
    ["dq_dtype", () => { const [a, s] = q(); return mx.dequantize(a!, s!, null, { ...NV, globalScale: gh() }); }],
    ["dq_shape", () => { const [a, s] = q(); return mx.dequantize(a!, s!, null, { ...NV, globalScale: mx.zeros([2]) }); }],
    ["dq_float_scales", () => { const [a, s] = q(); return mx.dequantize(a!, s!.astype(mx.float32), null, { ...NV, globalScale: gh() }); }],
    ["dq_biases", () => { const [a, s] = q(); return mx.dequantize(a!, s!, s!, { ...NV, globalScale: gh() }); }],
    ["dq_int_out", () => { const [a, s] = q(); return mx.dequantize(a!, s!, null, { ...NV, globalScale: g(), dtype: mx.int32 }); }],
    ["dq_bad_scales_shape", () => { const [a, s] = q(); return mx.dequantize(a!, mx.slice(s!, [0, 0], [0, 1], [4, 1]), null, { ...NV, globalScale: gh() }); }],
    ["gqmm_noidx", () => { const [a, s] = q(); return mx.gatherQmm(x(), two(a!), two(s!), null, null, null, { ...NV, globalScale: mx.ones([2]) }); }],
    ["gqmm_shape", () => { const [a, s] = q(); return mx.gatherQmm(x(), two(a!), two(s!), null, null, mx.array([0], mx.uint32), { ...NV, globalScale: g() }); }],
    ["gqmm_dtype", () => { const [a, s] = q(); return mx.gatherQmm(x(), two(a!), two(s!), null, null, mx.array([0], mx.uint32), { ...NV, globalScale: mx.ones([2], mx.float16) }); }],
    ["gqmm_mode", () => { const [a, s] = mx.quantize(mx.zeros([2, 4, 64]), { mode: "mxfp4" }); return mx.gatherQmm(x(), a!, s!, null, null, mx.array([0], mx.uint32), { mode: "mxfp4", globalScale: mx.ones([2]) }); }],
  ];
  for (const [key, fn] of cases) {
    test(key, () => {
      expect(E[key]).toBeDefined();
      mx.tidy(() => {
        expectMlxError(fn, esc(E[key]!));
      });
    });
  }
  test("gather_qmm with indices and a valid global scale runs (MLX: GPU only)", () => {
    expect(E.gqmm_gpu_only).toBe("[gather_qmm] Global scale is only supported on the GPU.");
    mx.tidy(() => {
      const [a, s] = q();
      const y = mx.gatherQmm(x(), two(a!), two(s!), null, null, mx.array([0], mx.uint32), { ...NV, globalScale: mx.ones([2]) });
      expect(y.shape).toEqual([1, 2, 4]);
    });
  });
});
