// Quantization against real MLX: quantize and dequantize bit for bit (affine with every group
// size and bits, mxfp4, mxfp8, nvfp4; float32, float16, bfloat16 inputs; edge-case groups),
// quantizedMatmul (transpose true/false, batched x and w, 1-D x, every mode, several dtypes),
// gatherQmm, the vjp with respect to x, vmap, and MLX's messages for bad input; mxfp groups holding
// NaN or infinities, half inputs with tiny maxima, dequantize with scales and biases of different
// dtypes, and products of infinite, NaN or huge x (MLX's non-finite results exactly). Inputs and MLX's
// results come from test/fixtures/quantized/quantized.json.gz (gen_quantized.py, MLX 0.32.4).
// Products are compared within a tolerance: float32 results |ours - MLX| <= 1e-5 * max|MLX|. MLX's
// CPU kernel accumulates half-precision products in the half type and ours in float32, so half
// results are checked element by element against MLX's float32 product of the same values (one
// rounding: 2^-11 relative for float16, 2^-8 for bfloat16, plus 1e-5 * max), and, for k <= 256,
// against MLX's own result within 2e-2 (float16) / 6e-2 (bfloat16) of max|MLX|.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, fromHex, loadFixture, numbersOf, toHex, type Rec } from "./fixture";
import { expectMlxError } from "./util";

type Mode = "affine" | "mxfp4" | "mxfp8" | "nvfp4";
interface QuantCase { mode: Mode; group_size?: number; bits?: number; w: Rec; wq: Rec; scales: Rec; biases?: Rec; dq: Rec }
interface DequantCase { mode: Mode; group_size?: number; bits?: number; dtype: mx.DtypeName | null; wq: Rec; scales: Rec; biases?: Rec; out: Rec }
interface QmmCase {
  mode: Mode; transpose: boolean; group_size?: number; bits?: number; x: Rec; wq: Rec; scales: Rec; biases?: Rec; out: Rec; out_f32?: Rec;
  cot?: Rec; gx?: Rec; gs?: Rec; gb?: Rec; dcot?: Rec; dgs?: Rec; dgb?: Rec;
}
interface GqmmCase { x: Rec; wq: Rec; scales: Rec; biases: Rec; lhs: Rec | null; rhs: Rec | null; out: Rec }
interface Fixture {
  quantize: QuantCase[];
  dequantize: DequantCase[];
  qmm: QmmCase[];
  gather_qmm: GqmmCase[];
  vjp: QmmCase[];
  qmm_nonfinite: QmmCase[];
  errors: Record<string, string>;
}

const fx = loadFixture<Fixture>("quantized/quantized.json.gz");

function expectBits(a: mx.Array, r: Rec, what: string): void {
  expect(a.dtype.name, what).toBe(r.dtype);
  expect(a.shape, what).toEqual(r.shape);
  const got = toHex(bytesOf(a));
  if (got !== r.hex) {
    // Name the first differing element for a readable failure.
    const size = r.hex.length / 2 / r.shape.reduce((p, d) => p * d, 1);
    let i = 0;
    while (got.slice(i * 2 * size, (i + 1) * 2 * size) === r.hex.slice(i * 2 * size, (i + 1) * 2 * size)) i++;
    throw new Error(`${what}: element ${i} differs: ours ${got.slice(i * 2 * size, (i + 1) * 2 * size)} MLX ${r.hex.slice(i * 2 * size, (i + 1) * 2 * size)}`);
  }
}

/** Element by element: |ours - ref| <= rel * |ref| + 1e-5 * max|ref| (ref: a float32 result). */
function expectRounded(a: mx.Array, r: Rec, rel: number, what: string): void {
  expect(a.shape, what).toEqual(r.shape);
  const want = numbersOf(fromHex(r.hex), r.dtype);
  const got = numbersOf(bytesOf(a.astype(mx.float32)), "float32");
  const scale = Math.max(1e-30, ...want.map(Math.abs));
  for (let i = 0; i < want.length; i++) {
    const bound = rel * Math.abs(want[i]!) + 1e-5 * scale;
    if (!(Math.abs(got[i]! - want[i]!) <= bound)) throw new Error(`${what}: element ${i}: ours ${got[i]} float32 product ${want[i]}`);
  }
}

function expectClose(a: mx.Array, r: Rec, what: string): void {
  expect(a.dtype.name, what).toBe(r.dtype);
  expect(a.shape, what).toEqual(r.shape);
  const want = numbersOf(fromHex(r.hex), r.dtype);
  const got = numbersOf(bytesOf(a), r.dtype);
  const scale = Math.max(1e-30, ...want.map(Math.abs));
  const tol = r.dtype === "float32" ? 1e-5 : r.dtype === "float16" ? 2e-2 : 6e-2;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  expect(worst / scale, what).toBeLessThanOrEqual(tol);
}

function opts(c: { mode: Mode; group_size?: number; bits?: number }) {
  return c.mode === "affine" ? { mode: c.mode, groupSize: c.group_size, bits: c.bits } : { mode: c.mode };
}

function label(c: { mode: Mode; group_size?: number; bits?: number }, extra: string): string {
  return c.mode === "affine" ? `affine gs=${c.group_size} bits=${c.bits} ${extra}` : `${c.mode} ${extra}`;
}

describe("quantize (bit-exact with MLX)", () => {
  for (const c of fx.quantize) {
    test(label(c, `${c.w.dtype} ${JSON.stringify(c.w.shape)}`), () => {
      mx.tidy(() => {
        const w = arrayOf(c.w);
        const outs = mx.quantize(w, opts(c));
        expect(outs.length).toBe(c.mode === "affine" ? 3 : 2);
        expectBits(outs[0]!, c.wq, "wq");
        expectBits(outs[1]!, c.scales, "scales");
        if (c.biases) expectBits(outs[2]!, c.biases, "biases");
        // dequantize of MLX's own quantized arrays, with the default output dtype
        const d = mx.dequantize(arrayOf(c.wq), arrayOf(c.scales), c.biases ? arrayOf(c.biases) : null, opts(c));
        expectBits(d, c.dq, "dequantize");
      });
    });
  }
  test("defaults: affine group 64, 4 bits", () => {
    mx.tidy(() => {
      const [wq, s, b] = mx.quantize(mx.ones([2, 128]));
      expect(wq!.shape).toEqual([2, 16]);
      expect(s!.shape).toEqual([2, 2]);
      expect(b!.shape).toEqual([2, 2]);
      const [q4, s4] = mx.quantize(mx.ones([2, 64]), { mode: "nvfp4" });
      expect(q4!.shape).toEqual([2, 8]);
      expect(s4!.shape).toEqual([2, 4]);
      expect(s4!.dtype).toBe(mx.uint8);
    });
  });
});

describe("dequantize (bit-exact with MLX)", () => {
  for (const c of fx.dequantize) {
    test(label(c, `scales ${c.scales.dtype} -> ${c.dtype ?? "default"}`), () => {
      mx.tidy(() => {
        const d = mx.dequantize(arrayOf(c.wq), arrayOf(c.scales), c.biases ? arrayOf(c.biases) : null, { ...opts(c), dtype: c.dtype });
        expectBits(d, c.out, "dequantize");
      });
    });
  }
});

describe("quantizedMatmul (MLX's results within the stated tolerance)", () => {
  for (const c of fx.qmm) {
    test(label(c, `transpose=${c.transpose} x ${c.x.dtype} ${JSON.stringify(c.x.shape)} w ${JSON.stringify(c.wq.shape)}`), () => {
      mx.tidy(() => {
        const y = mx.quantizedMatmul(arrayOf(c.x), arrayOf(c.wq), arrayOf(c.scales), c.biases ? arrayOf(c.biases) : null, { ...opts(c), transpose: c.transpose });
        const k = c.x.shape[c.x.shape.length - 1]!;
        if (c.out_f32) {
          // Half results: within one rounding of MLX's float32 product (2^-11 float16, 2^-8 bfloat16).
          expectRounded(y, c.out_f32, y.dtype === mx.bfloat16 ? 2 ** -8 : 2 ** -11, "quantized_matmul vs float32 product");
          expect(y.dtype.name).toBe(c.out.dtype);
          // and near MLX's own half-precision accumulation when k is small
          if (k <= 256) expectClose(y, c.out, "quantized_matmul vs MLX");
        } else {
          expectClose(y, c.out, "quantized_matmul");
        }
      });
    });
  }
  test("strided (transposed) x and a scalar-free float64 x", () => {
    mx.tidy(() => {
      const c = fx.qmm.find((q) => q.mode === "affine" && q.transpose && q.x.shape.length === 2 && q.x.dtype === "float32")!;
      const x = arrayOf(c.x);
      const xt = mx.transpose(mx.array(mx.transpose(x).toTypedArray() as Float32Array, { shape: [x.shape[1]!, x.shape[0]!] }));
      const y = mx.quantizedMatmul(xt, arrayOf(c.wq), arrayOf(c.scales), arrayOf(c.biases!), opts(c));
      expectClose(y, c.out, "strided x");
      const y64 = mx.quantizedMatmul(x.astype(mx.float64), arrayOf(c.wq), arrayOf(c.scales), arrayOf(c.biases!), opts(c));
      expect(y64.dtype).toBe(mx.float64);
      expectClose(y64.astype(mx.float32), c.out, "float64 x");
    });
  });
});

/**
 * Where MLX's result is not finite ours must be the same (NaN, +inf or -inf); elsewhere within
 * 1e-5 (float32), 2e-2 (float16) or 6e-2 (bfloat16) of the largest finite |MLX| of the row.
 */
function expectNonFinite(a: mx.Array, r: Rec, what: string): void {
  expect(a.dtype.name, what).toBe(r.dtype);
  expect(a.shape, what).toEqual(r.shape);
  const want = numbersOf(fromHex(r.hex), r.dtype);
  const got = numbersOf(bytesOf(a), r.dtype);
  const tol = r.dtype === "float32" ? 1e-5 : r.dtype === "float16" ? 2e-2 : 6e-2;
  const n = r.shape[r.shape.length - 1]!;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (!Number.isFinite(w)) {
      if (!Object.is(w, g)) throw new Error(`${what}: element ${i}: ours ${g}, MLX ${w}`);
      continue;
    }
    const row = want.slice(i - (i % n), i - (i % n) + n).filter(Number.isFinite);
    const scale = Math.max(1e-30, ...row.map(Math.abs));
    if (!(Math.abs(g - w) <= tol * scale)) throw new Error(`${what}: element ${i}: ours ${g}, MLX ${w}`);
  }
}

describe("quantizedMatmul with infinite, NaN or huge x (MLX's non-finite results exactly)", () => {
  for (const c of fx.qmm_nonfinite) {
    test(label(c, `transpose=${c.transpose} x ${c.x.dtype} ${JSON.stringify(c.x.shape)}`), () => {
      mx.tidy(() => {
        const y = mx.quantizedMatmul(arrayOf(c.x), arrayOf(c.wq), arrayOf(c.scales), arrayOf(c.biases!), { ...opts(c), transpose: c.transpose });
        // a half x: MLX's float32 product of the same values, rounded to the result dtype
        const want = c.out_f32 ? { dtype: c.out.dtype, shape: c.out.shape, hex: toHex(bytesOf(arrayOf(c.out_f32).astype(c.out.dtype))) } : c.out;
        expectNonFinite(y, want, "quantized_matmul");
      });
    });
  }
});

describe("gatherQmm", () => {
  for (const [i, c] of fx.gather_qmm.entries()) {
    test(`case ${i}: x ${JSON.stringify(c.x.shape)} lhs ${JSON.stringify(c.lhs?.shape ?? null)} rhs ${JSON.stringify(c.rhs?.shape ?? null)}`, () => {
      mx.tidy(() => {
        const y = mx.gatherQmm(arrayOf(c.x), arrayOf(c.wq), arrayOf(c.scales), arrayOf(c.biases), c.lhs ? arrayOf(c.lhs) : null, c.rhs ? arrayOf(c.rhs) : null, { groupSize: 64, bits: 4 });
        expectClose(y, c.out, "gather_qmm");
      });
    });
  }
});

describe("transforms", () => {
  for (const c of fx.vjp) {
    test(`vjp wrt x, transpose=${c.transpose} (MLX's cotangent)`, () => {
      mx.tidy(() => {
        const w = arrayOf(c.wq);
        const s = arrayOf(c.scales);
        const b = arrayOf(c.biases!);
        const [outs, grads] = mx.vjp((x: mx.Array) => mx.quantizedMatmul(x, w, s, b, { ...opts(c), transpose: c.transpose }), [arrayOf(c.x)], [arrayOf(c.cot!)]);
        expectClose(outs[0]!, c.out, "primal");
        expectClose(grads[0]!, c.gx!, "cotangent");
      });
    });
  }
  for (const c of fx.vjp) {
    test(`grad wrt scales and biases, transpose=${c.transpose}, of quantizedMatmul and dequantize (MLX's)`, () => {
      mx.tidy(() => {
        const x = arrayOf(c.x);
        const w = arrayOf(c.wq);
        const cot = arrayOf(c.cot!);
        const o = { ...opts(c), transpose: c.transpose };
        const g = mx.grad((s: mx.Array, b: mx.Array) => mx.sum(mx.multiply(mx.quantizedMatmul(x, w, s, b, o), cot)), { argnums: [0, 1] })(arrayOf(c.scales), arrayOf(c.biases!)) as mx.Array[];
        expectClose(g[0]!, c.gs!, "d scales");
        expectClose(g[1]!, c.gb!, "d biases");
        const dcot = arrayOf(c.dcot!);
        const d = mx.grad((s: mx.Array, b: mx.Array) => mx.sum(mx.multiply(mx.dequantize(w, s, b, opts(c)), dcot)), { argnums: [0, 1] })(arrayOf(c.scales), arrayOf(c.biases!)) as mx.Array[];
        expectClose(d[0]!, c.dgs!, "dequantize d scales");
        expectClose(d[1]!, c.dgb!, "dequantize d biases");
      });
    });
  }
  test("grad wrt x matches central finite differences", () => {
    mx.tidy(() => {
      const c = fx.vjp[0]!;
      const w = arrayOf(c.wq);
      const s = arrayOf(c.scales);
      const b = arrayOf(c.biases!);
      const x0 = arrayOf(c.x).astype(mx.float64).astype(mx.float32);
      const f = (x: mx.Array) => mx.sum(mx.square(mx.quantizedMatmul(x, w, s, b, opts(c))));
      const g = (mx.grad(f)(x0) as mx.Array).toTypedArray() as Float32Array;
      const xs = Array.from(x0.toTypedArray() as Float32Array);
      for (const i of [0, 7, 100]) {
        const h = 1e-2;
        const plus = xs.slice();
        plus[i]! += h;
        const minus = xs.slice();
        minus[i]! -= h;
        const fp = f(mx.array(new Float32Array(plus), { shape: x0.shape })).item() as number;
        const fm = f(mx.array(new Float32Array(minus), { shape: x0.shape })).item() as number;
        const fd = (fp - fm) / (2 * h);
        expect(Math.abs(fd - g[i]!)).toBeLessThanOrEqual(1e-2 * Math.max(1, Math.abs(fd)));
      }
    });
  });
  test("no gradient wrt the quantized weights (MLX's message)", () => {
    mx.tidy(() => {
      const c = fx.vjp[0]!;
      const x = arrayOf(c.x);
      const s = arrayOf(c.scales);
      const b = arrayOf(c.biases!);
      expectMlxError(() => mx.grad((w: mx.Array) => mx.sum(mx.quantizedMatmul(x, w, s, b)))(arrayOf(c.wq)), /^\[QuantizedMatmul::vjp\] no gradient wrt the quantized weights\.$/);
      expect(fx.errors.qmm_grad_w).toBe("[QuantizedMatmul::vjp] no gradient wrt the quantized weights.");
    });
  });
  test("vmap over x of quantizedMatmul equals the per-example products", () => {
    mx.tidy(() => {
      const c = fx.vjp[0]!;
      const w = arrayOf(c.wq);
      const s = arrayOf(c.scales);
      const b = arrayOf(c.biases!);
      const xs = mx.random.normal([4, 3, 128]);
      const f = (x: mx.Array) => mx.quantizedMatmul(x, w, s, b, opts(c));
      const batched = mx.vmap(f, { inAxes: 1 })(mx.transpose(xs, [1, 0, 2]));
      expect(batched.shape).toEqual([4, 3, 64]);
      for (let i = 0; i < 4; i++) {
        const one = f(mx.take(xs, i, 0));
        expect(mx.arrayEqual(mx.take(batched, i, 0), one).item()).toBe(true);
      }
    });
  });
  test("vmap of quantize and dequantize over a stack of matrices equals each alone", () => {
    mx.tidy(() => {
      const ws = mx.random.normal([3, 4, 64]);
      const [vq, vs, vb] = mx.vmap((w: mx.Array) => mx.quantize(w, { groupSize: 32, bits: 4 }))(ws) as mx.Array[];
      const dq = mx.vmap((q: mx.Array, s: mx.Array, b: mx.Array) => mx.dequantize(q, s, b, { groupSize: 32, bits: 4 }))(vq!, vs!, vb!);
      for (let i = 0; i < 3; i++) {
        const [q, s, b] = mx.quantize(mx.take(ws, i, 0), { groupSize: 32, bits: 4 });
        expect(mx.arrayEqual(mx.take(vq!, i, 0), q!).item()).toBe(true);
        expect(mx.arrayEqual(mx.take(vs!, i, 0), s!).item()).toBe(true);
        expect(mx.arrayEqual(mx.take(vb!, i, 0), b!).item()).toBe(true);
        expect(mx.arrayEqual(mx.take(dq, i, 0), mx.dequantize(q!, s!, b!, { groupSize: 32, bits: 4 })).item()).toBe(true);
      }
    });
  });
});

describe("quantize of views", () => {
  // A row-contiguous float32/float16/bfloat16 w is read in place (from its offset), any other
  // layout through a float32 copy: both must give what the contiguous copy of the view gives
  // (checked against MLX above).
  const modes = [
    { mode: "affine", groupSize: 64, bits: 4 },
    { mode: "affine", groupSize: 32, bits: 3 },
    { mode: "affine", groupSize: 128, bits: 8 },
    { mode: "mxfp4" },
    { mode: "mxfp8" },
    { mode: "nvfp4" },
  ] as const;
  for (const dtype of ["float32", "float16", "bfloat16"] as const) {
    test(`${dtype}: transposed, row-sliced and column-sliced views`, () => {
      mx.tidy(() => {
        const base = mx.random.normal([256, 256], { key: mx.random.key(4) }).astype(dtype);
        const views = {
          transposed: mx.transpose(base),
          rows: base.index("40:104"),
          cols: base.index(":, 128:"),
        };
        for (const [name, v] of Object.entries(views)) {
          for (const o of modes) {
            const got = mx.quantize(v, o);
            const want = mx.quantize(mx.contiguous(v), o);
            expect(got.length).toBe(want.length);
            for (let i = 0; i < got.length; i++) {
              const same = mx.arrayEqual(got[i]!, want[i]!, { equalNan: true }).item();
              if (!same) throw new Error(`${name} ${o.mode} part ${i} differs`);
              expect(same).toBe(true);
            }
          }
        }
      });
    });
  }
});

describe("quantize's outputs: one packed evaluation, views of it", () => {
  // The engine computes every output of a quantize call once, into one packed node, and hands
  // out views of it; each must behave as an array of its own.
  const same = (a: mx.Array, b: mx.Array) => mx.arrayEqual(a, b, { equalNan: true }).item();

  test("each output evaluates alone, in any order, and outlives the others", () => {
    mx.tidy(() => {
      const w = mx.random.normal([64, 256], { key: mx.random.key(7) });
      const want = mx.quantize(w, { groupSize: 64, bits: 3 });
      mx.eval(...want);
      const [q, s, b] = mx.quantize(w, { groupSize: 64, bits: 3 });
      mx.eval(b!); // the biases first, alone
      q!.dispose(); // the codes dropped before they were ever read
      expect(same(b!, want[2]!)).toBe(true);
      expect(same(s!, want[1]!)).toBe(true);
      const [q2, s2] = mx.quantize(w, { mode: "mxfp8" });
      s2!.dispose();
      expect(same(q2!, mx.quantize(w, { mode: "mxfp8" })[0]!)).toBe(true);
    });
  });

  test("float64 W: the codes equal float32's, the scales and biases are float32's widened", () => {
    // Quantize computes in float32 and stores the scales in W's dtype; with 1 and 3 bits the
    // codes end off an 8-byte boundary, so this checks the float64 parts' placement too.
    mx.tidy(() => {
      const w32 = mx.random.normal([8, 96], { key: mx.random.key(8) });
      const w64 = w32.astype("float64");
      for (const bits of [1, 3, 4]) {
        const [q, s, b] = mx.quantize(w64, { groupSize: 32, bits });
        const [q32, s32, b32] = mx.quantize(w32, { groupSize: 32, bits });
        expect(s!.dtype).toBe(mx.float64);
        expect(same(q!, q32!)).toBe(true);
        expect(same(s!, s32!.astype("float64"))).toBe(true);
        expect(same(b!, b32!.astype("float64"))).toBe(true);
      }
    });
  });

  test("compiled and exported functions give the eager outputs", () => {
    mx.tidy(() => {
      const w = mx.random.normal([32, 128], { key: mx.random.key(9) }).astype("bfloat16");
      for (const o of [{ groupSize: 32, bits: 5 }, { mode: "nvfp4" as const }]) {
        const f = (x: mx.Array) => mx.quantize(x, o);
        const want = f(w);
        const got = mx.compile(f)(w) as mx.Array[];
        expect(got.length).toBe(want.length);
        for (let i = 0; i < want.length; i++) expect(same(got[i]!, want[i]!)).toBe(true);
        const dir = mkdtempSync(join(tmpdir(), "mlxb-q-"));
        try {
          const file = join(dir, "q.mlxfn");
          mx.exportFunction(file, f, w);
          const g = mx.importFunction(file);
          const back = g(w) as mx.Array[];
          expect(back.length).toBe(want.length);
          for (let i = 0; i < want.length; i++) expect(same(back[i]!, want[i]!)).toBe(true);
          g.dispose();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    });
  });
});

describe("MLX's messages for bad input", () => {
  const E = fx.errors;
  const esc = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  const w = () => mx.zeros([64, 128]);
  const q = () => mx.quantize(w(), { groupSize: 64, bits: 4 });
  const x = () => mx.zeros([3, 128]);
  const cases: [string, () => unknown][] = [
    ["q_gs16", () => mx.quantize(w(), { groupSize: 16, bits: 4 })],
    ["q_gs256", () => mx.quantize(w(), { groupSize: 256, bits: 4 })],
    ["q_bits7", () => mx.quantize(w(), { groupSize: 64, bits: 7 })],
    ["q_1d", () => mx.quantize(mx.zeros([128]), { groupSize: 64, bits: 4 })],
    ["q_notdiv", () => mx.quantize(mx.zeros([2, 96]), { groupSize: 64, bits: 4 })],
    ["q_int", () => mx.quantize(mx.zeros([2, 128], mx.int32), { groupSize: 64, bits: 4 })],
    ["q_badmode", () => mx.quantize(w(), { groupSize: 64, bits: 4, mode: "foo" as Mode })],
    ["q_mxfp4_gs64", () => mx.quantize(w(), { groupSize: 64, mode: "mxfp4" })],
    ["q_mxfp4_bits8", () => mx.quantize(w(), { groupSize: 32, bits: 8, mode: "mxfp4" })],
    ["q_mxfp8_bits4", () => mx.quantize(w(), { groupSize: 32, bits: 4, mode: "mxfp8" })],
    ["q_nvfp4_gs32", () => mx.quantize(w(), { groupSize: 32, mode: "nvfp4" })],
    ["dq_nobias", () => { const [a, s] = q(); return mx.dequantize(a!, s!); }],
    ["dq_gs32", () => { const [a, s, b] = q(); return mx.dequantize(a!, s!, b, { groupSize: 32, bits: 4 }); }],
    ["dq_bits8", () => { const [a, s, b] = q(); return mx.dequantize(a!, s!, b, { groupSize: 64, bits: 8 }); }],
    ["dq_float_w", () => { const [a, s, b] = q(); return mx.dequantize(a!.astype(mx.float32), s!, b); }],
    ["dq_1d", () => { const [a, s, b] = q(); return mx.dequantize(mx.take(a!, 0, 0), mx.take(s!, 0, 0), mx.take(b!, 0, 0)); }],
    ["dq_int_dtype", () => { const [a, s, b] = q(); return mx.dequantize(a!, s!, b, { dtype: mx.int32 }); }],
    ["dq_mxfp4_float_scales", () => { const [a, s] = q(); return mx.dequantize(a!, s!, null, { mode: "mxfp4" }); }],
    ["qmm_nobias", () => { const [a, s] = q(); return mx.quantizedMatmul(x(), a!, s!); }],
    ["qmm_badK", () => { const [a, s, b] = q(); return mx.quantizedMatmul(mx.zeros([3, 64]), a!, s!, b); }],
    ["qmm_badK_t", () => { const [a, s, b] = q(); return mx.quantizedMatmul(x(), a!, s!, b, { transpose: false }); }],
    ["qmm_float_w", () => { const [a, s, b] = q(); return mx.quantizedMatmul(x(), a!.astype(mx.float32), s!, b); }],
    ["qmm_scales", () => { const [a, s, b] = q(); return mx.quantizedMatmul(x(), a!, mx.slice(s!, [0, 0], [0, 1], [64, 1]), mx.slice(b!, [0, 0], [0, 1], [64, 1])); }],
    ["qmm_gs32", () => { const [a, s, b] = q(); return mx.quantizedMatmul(x(), a!, s!, b, { groupSize: 32 }); }],
    ["qmm_1d_w", () => { const [a, s, b] = q(); return mx.quantizedMatmul(x(), mx.take(a!, 0, 0), mx.take(s!, 0, 0), mx.take(b!, 0, 0)); }],
    ["qmm_mxfp4_bias", () => { const [a, s] = mx.quantize(w(), { mode: "mxfp4" }); return mx.quantizedMatmul(x(), a!, s!, s!, { mode: "mxfp4" }); }],
    ["gqmm_badidx", () => { const [a, s, b] = q(); return mx.gatherQmm(x(), mx.stack([a!, a!]), mx.stack([s!, s!]), mx.stack([b!, b!]), null, mx.array([1.0], mx.float32)); }],
    ["gqmm_float_w", () => { const [a, s, b] = q(); return mx.gatherQmm(x(), mx.stack([a!, a!]).astype(mx.float32), mx.stack([s!, s!]), mx.stack([b!, b!]), null, mx.array([1])); }],
  ];
  for (const [key, fn] of cases) {
    test(key, () => {
      expect(E[key]).toBeDefined();
      mx.tidy(() => {
        expectMlxError(fn, esc(E[key]!));
      });
    });
  }
});
