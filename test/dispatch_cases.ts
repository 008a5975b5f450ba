// The case table of test/dispatch.test.ts: elementwise (unary, binary, where), float cast,
// reduction, quantize, dequantize, quantized matmul, FFT and fused-program outputs over a table of ops, dtypes and
// layouts, printed as one JSON object
// { case: hash of the output's bytes }. Run as a child process with the library chosen by
// MLX_BUN_LIB and the kernel level capped by MLXB_CPU_LEVEL (engine/cpu.zig), so the parent can
// compare the bits each build and level computes. Inputs are made from JS typed arrays (a fixed
// LCG plus special values), and read out through a uint8 view, so nothing but the kernels under
// test depends on the level.
// DISPATCH_REFERENCE=1 runs the table with primitives.reference_mode on (the scalar loops).
import { lib } from "../ffi/lib";
import * as mx from "../src/index.ts";

if (process.env.DISPATCH_REFERENCE === "1") lib.mlxb_set_reference_mode(1);

const out: Record<string, string> = {};

/**
 * The output's bytes. With `anyNan`, every NaN is first replaced by one pattern: which of two NaN
 * operands an add, a multiply or a sum returns is not defined (x86 returns an instruction's first
 * source, and compilers commute these operations freely), so MLX's own NaN bits there depend on
 * its code paths (its float16 add of a NaN and a negative NaN gives 0x7d00 contiguous and 0xfd00
 * broadcast). Unary ops (one NaN in, so the result is defined) and where compare every bit.
 */
function bits(a: mx.Array, anyNan: boolean): string {
  const u = mx.view(a.reshape([-1]), mx.uint8);
  const bytes = new Uint8Array(u.toTypedArray() as Uint8Array);
  u.dispose();
  if (anyNan) canonicalNans(a.dtype, bytes);
  const h = Bun.hash(bytes).toString(16);
  return `${a.dtype.name}[${a.shape.join(",")}]:${h}`;
}

function canonicalNans(d: mx.Dtype, bytes: Uint8Array): void {
  if (d === mx.float32 || d === mx.complex64) {
    const w = new Uint32Array(bytes.buffer);
    for (let i = 0; i < w.length; i++) if ((w[i]! & 0x7fffffff) > 0x7f800000) w[i] = 0x7fc00000;
  } else if (d === mx.float16 || d === mx.bfloat16) {
    const inf = d === mx.float16 ? 0x7c00 : 0x7f80;
    const w = new Uint16Array(bytes.buffer);
    for (let i = 0; i < w.length; i++) if ((w[i]! & 0x7fff) > inf) w[i] = inf | 0x200 | (d === mx.bfloat16 ? 0x40 : 0);
  } else if (d === mx.float64) {
    const f = new Float64Array(bytes.buffer);
    for (let i = 0; i < f.length; i++) if (Number.isNaN(f[i]!)) f[i] = NaN;
  }
}

function record(name: string, f: () => mx.Array): void {
  mx.tidy(() => {
    let r: mx.Array;
    try {
      r = f();
      mx.eval(r);
    } catch (e) {
      out[name] = `error: ${(e as Error).message}`;
      return;
    }
    out[name] = bits(r, !/^(unary|where|cast|quantize|dequantize) /.test(name));
  });
}

// A fixed sequence in [0, 1) (a 32-bit LCG), the same on every run.
function* lcg(seed: number): Generator<number> {
  let s = seed >>> 0;
  for (;;) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    yield s / 2 ** 32;
  }
}

const specials = [NaN, -NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-42, 1e30, -3e38, 8388609, -9e6, 1e-7, 0.5, -0.5, 1, -1, 2.5, 3.5];

/** n float values: specials first, then a mix of scales (the transcendentals' ranges included). */
function floats(n: number, seed: number): Float64Array {
  const g = lcg(seed);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (i < specials.length) {
      v[i] = specials[i]!;
      continue;
    }
    const u = g.next().value as number;
    const w = g.next().value as number;
    const scale = [0.01, 1, 3, 10, 100, 1e4][Math.floor(w * 6)]!;
    v[i] = (u * 2 - 1) * scale;
  }
  return v;
}

function input(dtype: mx.Dtype, shape: number[], seed: number): mx.Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = floats(n, seed);
  let a: mx.Array;
  if (dtype === mx.bool) {
    a = mx.array(Uint8Array.from(f, (x) => (x > 0 ? 1 : 0))).astype(mx.bool);
  } else if (dtype.isFloating) {
    a = mx.array(Float32Array.from(f)).astype(dtype);
    if (dtype === mx.float64) a = mx.array(f);
    if (dtype === mx.float16 && n > 4) {
      // float16 signaling NaNs and a subnormal, bit patterns the float32 path cannot make.
      const b = new Uint16Array(mx.view(a, mx.uint16).toTypedArray() as Uint16Array);
      b[1] = 0x7c01;
      b[2] = 0xfd55;
      b[3] = 0x0001;
      a = mx.view(mx.array(b), mx.float16);
    }
  } else {
    const g = lcg(seed + 7);
    const ints = Float64Array.from(f, (x, i) => (Number.isFinite(x) ? Math.trunc(x) : i) + Math.floor((g.next().value as number) * 300 - 150));
    a = mx.array(Float64Array.from(ints)).astype(mx.int64).astype(dtype);
  }
  return a.reshape(shape);
}

const F = [mx.float32, mx.float16, mx.bfloat16];
const ALL_NUM = [mx.float32, mx.float16, mx.bfloat16, mx.float64, mx.int32, mx.int8, mx.uint8, mx.uint16, mx.int64, mx.uint64];

// ---- unary: every op with a vector kernel, plus log (C library) -------------------------------
const unaryOps = [
  "abs", "sign", "negative", "trunc", "square", "sqrt", "rsqrt", "reciprocal", "exp", "erf", "sin", "cos", "degrees",
  "radians", "sigmoid", "floor", "ceil", "round", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "logicalNot",
  "tanh", "expm1", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arccosh", "arctanh", "log2",
  "log10", "log1p", "log",
] as const;
type Fn1 = (a: mx.Array) => mx.Array;
for (const d of F) {
  for (const op of unaryOps) {
    const f = (mx as unknown as Record<string, Fn1>)[op]!;
    record(`unary ${op} ${d.name} contiguous`, () => f(input(d, [1003], 1)));
    record(`unary ${op} ${d.name} transposed`, () => f(input(d, [37, 41], 2).T));
    record(`unary ${op} ${d.name} short`, () => f(input(d, [3, 5], 3)));
  }
}

// ---- binary ----------------------------------------------------------------------------------
type Fn2 = (a: mx.Array, b: mx.Array) => mx.Array;
const arith = ["add", "subtract", "multiply", "maximum", "minimum", "equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual"];
const floatOnly = ["divide", "floorDivide"];
const bitwise = ["bitwiseAnd", "bitwiseOr", "bitwiseXor"];
function binaryCases(op: string, d: mx.Dtype): void {
  const f = (mx as unknown as Record<string, Fn2>)[op]!;
  record(`binary ${op} ${d.name} contiguous`, () => f(input(d, [1003], 4), input(d, [1003], 5)));
  record(`binary ${op} ${d.name} row-broadcast`, () => f(input(d, [37, 41], 6), input(d, [41], 7)));
  record(`binary ${op} ${d.name} scalar-left`, () => f(input(d, [1], 8), input(d, [333], 9)));
  record(`binary ${op} ${d.name} transposed`, () => f(input(d, [37, 41], 10).T, input(d, [41, 37], 11)));
}
for (const d of ALL_NUM) {
  for (const op of arith) binaryCases(op, d);
  if (d.isFloating) for (const op of floatOnly) binaryCases(op, d);
  if (!d.isFloating) for (const op of bitwise) binaryCases(op, d);
}
for (const op of ["logicalAnd", "logicalOr", "logicalXor", "equal", "bitwiseXor"]) binaryCases(op, mx.bool);
// A large output (past the streaming-store size on AVX-512) with a tail.
record("binary add float32 4M+5", () => mx.add(input(mx.float32, [4 * 1024 * 1024 + 5], 12), input(mx.float32, [1], 13)));

// ---- where -------------------------------------------------------------------------------------
for (const d of [mx.bool, mx.int8, mx.float16, mx.float32, mx.float64, mx.complex64]) {
  const x = (s: number[], seed: number) => (d === mx.complex64 ? input(mx.float32, s, seed).astype(mx.complex64) : input(d, s, seed));
  record(`where ${d.name} contiguous`, () => mx.where(input(mx.bool, [1003], 14), x([1003], 15), x([1003], 16)));
  record(`where ${d.name} broadcast`, () => mx.where(input(mx.bool, [37, 1], 17), x([41], 18), x([37, 41], 19)));
}

// ---- reductions ---------------------------------------------------------------------------------
type FnR = (a: mx.Array, axis?: number | number[]) => mx.Array;
const reductions = ["sum", "prod", "max", "min", "all", "any", "argmax", "argmin"];
for (const d of [...ALL_NUM, mx.bool]) {
  for (const op of reductions) {
    if (d === mx.bool && (op === "argmax" || op === "argmin")) continue;
    const f = (mx as unknown as Record<string, FnR>)[op]!;
    const prodScale = (a: mx.Array) => (op === "prod" && d.isFloating ? mx.add(mx.multiply(mx.tanh(a), 0.01), 1).astype(d) : a);
    record(`reduce ${op} ${d.name} all 70001`, () => f(prodScale(input(d, [70001], 20))));
    record(`reduce ${op} ${d.name} rows 300x257`, () => f(prodScale(input(d, [300, 257], 21)), -1));
    record(`reduce ${op} ${d.name} columns 300x257`, () => f(prodScale(input(d, [300, 257], 22)), 0));
    record(`reduce ${op} ${d.name} transposed 57x131`, () => f(prodScale(input(d, [57, 131], 23)).T, -1));
    record(`reduce ${op} ${d.name} long rows 3x40000`, () => f(prodScale(input(d, [3, 40000], 24)), -1));
    if (op !== "argmax" && op !== "argmin") record(`reduce ${op} ${d.name} middle 20x30x40`, () => f(prodScale(input(d, [20, 30, 40], 25)), [0, 2]));
  }
}
// logsumexp: MLX's fused last-axis kernel (its exp is a chain of fused multiply-adds).
for (const d of [mx.float32, mx.float16, mx.bfloat16, mx.float64]) {
  record(`reduce logsumexp ${d.name} rows 300x257`, () => mx.logsumexp(input(d, [300, 257], 30), -1));
  record(`reduce logsumexp ${d.name} transposed 57x131`, () => mx.logsumexp(input(d, [57, 131], 31).T, -1));
  record(`reduce logsumexp ${d.name} all 5000`, () => mx.logsumexp(input(d, [5000], 32)));
}
// Long runs split into blocks over the pool, and a column reduction split into row ranges.
record("reduce sum float32 all 4M", () => mx.sum(input(mx.float32, [4 * 1024 * 1024 + 3], 26)));
record("reduce sum float32 columns 65536x40", () => mx.sum(input(mx.float32, [65536, 40], 27), 0));
record("reduce max float32 columns 65536x40", () => mx.max(input(mx.float32, [65536, 40], 28), 0));
record("reduce sum bfloat16 rows 2x300000", () => mx.sum(input(mx.bfloat16, [2, 300000], 29), -1));

// ---- quantized matmul (engine/qmm_kernel.zig) ----------------------------------------------------
// The codes, scales and biases are made directly (random words, moderate scales), not by
// mx.quantize, so only the product's kernels are under test. Fewer than 16 rows of x: the rows are
// decoded on the fly (from 16 rows on, W is dequantized and goes through the GEMM, whose baseline
// level rounds its products unfused and so is left out here).
function uniform(n: number, seed: number, lo: number, hi: number): Float32Array {
  const g = lcg(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * (g.next().value as number));
}
function words(n: number, seed: number): mx.Array {
  const g = lcg(seed);
  return mx.array(Uint32Array.from({ length: n }, () => Math.floor((g.next().value as number) * 2 ** 32) >>> 0));
}
function scaleBytes(n: number, seed: number, lo: number, hi: number): mx.Array {
  const g = lcg(seed);
  return mx.array(Uint8Array.from({ length: n }, () => lo + Math.floor((g.next().value as number) * (hi - lo))));
}
interface QmmCase {
  bits: number;
  gs: number;
  m: number;
  n: number;
  k: number;
  d: mx.Dtype;
  transpose?: boolean;
  batch?: number;
  mode?: "affine" | "mxfp4" | "mxfp8" | "nvfp4";
}
function qmmCase(c: QmmCase): void {
  const transpose = c.transpose ?? true;
  const mode = c.mode ?? "affine";
  const lead = c.batch === undefined ? [] : [c.batch];
  const bsz = c.batch ?? 1;
  const [rows, cols] = transpose ? [c.n, c.k] : [c.k, c.n];
  const name = `qmm ${mode} bits ${c.bits} gs ${c.gs} ${c.d.name} ${lead.join("x")}${lead.length ? "x" : ""}${c.m}x${c.k} ${transpose ? "@ W^T" : "@ W"} n ${c.n}`;
  record(name, () => {
    const x = mx.array(uniform(bsz * c.m * c.k, c.m * 7 + c.k, -2, 2)).astype(c.d).reshape([...lead, c.m, c.k]);
    const wq = words(bsz * rows * ((cols * c.bits) / 32), c.bits * 131 + c.gs).reshape([...lead, rows, (cols * c.bits) / 32]);
    const sshape = [...lead, rows, cols / c.gs];
    const count = bsz * rows * (cols / c.gs);
    const opts = { groupSize: c.gs, bits: c.bits, transpose, mode };
    if (mode === "affine") {
      const s = mx.array(uniform(count, c.gs + 1, -0.05, 0.05)).astype(c.d).reshape(sshape);
      const b = mx.array(uniform(count, c.gs + 2, -1, 1)).astype(c.d).reshape(sshape);
      return mx.quantizedMatmul(x, wq, s, b, opts);
    }
    // E8M0 scales near 2^0, E4M3 ones between 2^-5 and 2^2.
    const s = mode === "nvfp4" ? scaleBytes(count, 5, 0x10, 0x48) : scaleBytes(count, 5, 122, 132);
    return mx.quantizedMatmul(x, wq, s.reshape(sshape), null, opts);
  });
}
for (const d of F) {
  for (const bits of [1, 2, 3, 4, 5, 6, 8]) {
    for (const gs of [32, 64, 128]) for (const m of [1, 3, 5]) qmmCase({ bits, gs, m, n: 37, k: 512, d });
  }
  // Past the fast path's 128-group chunks of scales; the plain product; a batch of weights.
  for (const bits of [4, 8]) qmmCase({ bits, gs: 32, m: 2, n: 19, k: 4608, d });
  for (const bits of [2, 4, 6]) qmmCase({ bits, gs: 64, m: 3, n: 128, k: 96, d, transpose: false });
  qmmCase({ bits: 4, gs: 64, m: 2, n: 24, k: 256, d, batch: 2 });
  qmmCase({ bits: 3, gs: 32, m: 2, n: 24, k: 256, d, batch: 2 });
}
for (const [mode, gs, bits] of [["mxfp4", 32, 4], ["nvfp4", 16, 4], ["mxfp8", 32, 8]] as const) {
  for (const d of F) {
    qmmCase({ bits, gs, m: 3, n: 37, k: 512, d, mode });
    qmmCase({ bits, gs, m: 2, n: 64, k: 64, d, mode, transpose: false });
  }
}

// ---- casts between float32, float16 and bfloat16 (NaN payloads, subnormals, overflow) ---------
for (const from of F) {
  for (const to of F) {
    if (from === to) continue;
    record(`cast ${from.name} to ${to.name} contiguous`, () => input(from, [1003], 4).astype(to));
    record(`cast ${from.name} to ${to.name} transposed`, () => input(from, [37, 41], 5).T.astype(to));
    record(`cast ${from.name} to ${to.name} short`, () => input(from, [3, 5], 6).astype(to));
  }
}

// ---- quantize (each output), dequantize (each output dtype), qqmm's rounding of x --------------
const formats = [
  ["affine", 32, 2], ["affine", 64, 3], ["affine", 64, 4], ["affine", 128, 5], ["affine", 32, 6], ["affine", 128, 8],
  ["mxfp4", 32, 4], ["mxfp8", 32, 8], ["nvfp4", 16, 4],
] as const;
for (const d of F) {
  for (const [mode, gs, bits] of formats) {
    const opts = { groupSize: gs, bits, mode };
    const tag = `${mode} gs ${gs} bits ${bits} ${d.name}`;
    // Specials first (NaN, infinities, subnormals) in one row, ordinary values in the others.
    const w = () => input(d, [12, 256], 11);
    const parts = mode === "affine" ? 3 : 2;
    for (let i = 0; i < parts; i++) record(`quantize ${tag} output ${i}`, () => mx.quantize(w(), opts)[i]!);
    for (const to of [null, mx.float32, mx.float16, mx.bfloat16, mx.float64]) {
      record(`dequantize ${tag} to ${to?.name ?? "default"}`, () => {
        const q = mx.quantize(w(), opts);
        return mx.dequantize(q[0]!, q[1]!, q[2] ?? null, { ...opts, dtype: to });
      });
    }
  }
  for (const [mode, gs, bits] of [["mxfp8", 32, 8], ["nvfp4", 16, 4]] as const) {
    record(`qqmm ${mode} ${d.name}`, () => mx.qqmm(input(d, [3, 256], 12), input(d, [8, 256], 13), null, { groupSize: gs, bits, mode }));
  }
}

// ---- FFT: one pass per axis (Stockham, batched lanes, stages over the pool, four-step,
// Bluestein, real transforms of even and odd length, strided lines) -----------------------------
const cplx = (shape: number[], seed: number) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return mx.view(mx.array(uniform(2 * n, seed, -1, 1)).reshape([...shape.slice(0, -1), 2 * shape.at(-1)!]), mx.complex64);
};
const real = (shape: number[], seed: number) => mx.array(uniform(shape.reduce((a, b) => a * b, 1), seed, -1, 1)).reshape(shape);
for (const n of [8, 60, 97, 360, 1009, 4096, 5000, 20011]) {
  record(`fft c2c n ${n} one line`, () => mx.fft.fft(cplx([n], n)));
  record(`fft c2c inverse n ${n} one line`, () => mx.fft.ifft(cplx([n], n + 1)));
  if (n <= 4096) record(`fft c2c n ${n} 19 lines`, () => mx.fft.fft(cplx([19, n], n + 2)));
  record(`fft r2c n ${n}`, () => mx.fft.rfft(real([3, n], n + 3)));
  record(`fft c2r n ${n}`, () => mx.fft.irfft(cplx([3, Math.floor(n / 2) + 1], n + 4), { n }));
}
record("fft c2c strided axis 0", () => mx.fft.fft(cplx([64, 40], 5), { axis: 0 }));
record("fft fft2 37x48", () => mx.fft.fft2(cplx([37, 48], 6)));
record("fft rfftn 3x20x18", () => mx.fft.rfftn(real([3, 20, 18], 7)));
record("fft irfftn 3x20x10", () => mx.fft.irfftn(cplx([3, 20, 10], 8)));

// ---- fused programs (mx.compile fuses elementwise chains): vector unary and binary
// instructions and float casts run the ops' own kernels, which a portable build takes from the
// CPU level's object; short blocks (n 7) take the scalar loops --------------------------------
for (const d of F) {
  const chain = mx.compile((x: mx.Array, y: mx.Array) => mx.add(mx.multiply(mx.exp(x), y), mx.tanh(mx.sigmoid(y))));
  const casts = mx.compile((x: mx.Array) => mx.multiply(mx.erf(x.astype(mx.float32)), 3).astype(d));
  const bcast = mx.compile((x: mx.Array, y: mx.Array) => mx.maximum(mx.sin(x), mx.divide(y, 7)));
  for (const n of [7, 1000, 5000]) {
    record(`fused exp-tanh chain ${d.name} n ${n}`, () => chain(input(d, [n], 20), input(d, [n], 21)) as mx.Array);
    record(`fused casts ${d.name} n ${n}`, () => casts(input(d, [n], 22)) as mx.Array);
  }
  record(`fused broadcast ${d.name}`, () => bcast(input(d, [37, 130], 23), input(d, [130], 24)) as mx.Array);
}

console.log(JSON.stringify({ level: lib.mlxb_cpu_level(), cases: out }));
