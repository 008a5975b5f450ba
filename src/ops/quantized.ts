// Quantization (engine/prims/quantized.zig): quantize, dequantize, quantizedMatmul, and gatherQmm
// composed from take + quantizedMatmul. MLX 0.32.4's formats (bit-exact), defaults and messages.
import { checkHandle, checkStatus, lib } from "../../ffi/lib";
import { array, astype, MxArray, takeResults } from "../array";
import { arange, broadcastShapes } from "../creation";
import { streamArg, type StreamOrDevice } from "../device";
import { bfloat16, float32, toDtype, uint32, uint8, type DtypeLike } from "../dtype";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import { take } from "./indexing";
import { add, bitwiseAnd, bitwiseOr, divide, leftShift, less, minimum, multiply, rightShift, round, subtract, where } from "./elementwise";
import { broadcastTo, reshape, view } from "./shape";

/** The quantization modes: affine (scale and bias per group), and the microscaling float formats. */
export type QuantizationMode = "affine" | "mxfp4" | "mxfp8" | "nvfp4";

const MODES: Record<QuantizationMode, number> = { affine: 0, mxfp4: 1, mxfp8: 2, nvfp4: 3 };

/** Options shared by the quantization functions. */
export interface QuantizeOptions {
  /** Elements sharing one scale (and bias). Defaults: affine 64, mxfp4/mxfp8 32, nvfp4 16. */
  groupSize?: number | null;
  /** Bits per element. Defaults: affine 4, mxfp4/nvfp4 4, mxfp8 8. */
  bits?: number | null;
  /** Default "affine". */
  mode?: QuantizationMode;
  stream?: StreamOrDevice;
}

function modeOf(mode: string | undefined, op: string): number {
  const m = mode ?? "affine";
  const v = (MODES as Record<string, number>)[m];
  if (v === undefined) throw new MlxError(`[${op}] Invalid quantization mode '${m}'.`, 1);
  return v;
}

/** An integer option; absent is 0 (the engine's "the mode's default"), so an explicit 0 is refused here. */
function intOpt(v: number | null | undefined, what: string, op: string): number {
  if (v === undefined || v === null) return 0;
  if (!Number.isInteger(v)) throw new MlxError(`[${op}] ${what} must be an integer.`, 1);
  if (v === 0) throw new MlxError(`[${op}] Invalid value for ${what}: 0`, 1);
  return v;
}

/** Options of {@link quantize}. */
export interface QuantizeWithGlobalOptions extends QuantizeOptions {
  /**
   * nvfp4 only: a float32 array of one element, the per-tensor scale g. The group scales are then
   * e4m3(amax / 6 * (2688 / g)) and the elements (w / scale) * (2688 / g) (2688 = 448 * 6, the
   * largest E4M3 times the largest E2M1), so that g = amax(w) uses the whole E4M3 range; give the
   * same g to {@link dequantize}.
   */
  globalScale?: MxArray | null;
}

function globalHandle(g: MxArray | null | undefined, op: string): number {
  if (g === undefined || g === null) return 0;
  if (!(g instanceof MxArray)) throw new MlxError(`[${op}] The global scale must be an mx.Array.`, 1);
  return g.handle(op);
}

/**
 * Quantize the last axis of `w` (at least 2-D) in groups of `groupSize` elements. Returns
 * `[wq, scales, biases]` in affine mode and `[wq, scales]` in the mxfp4/mxfp8/nvfp4 modes (uint8
 * scales), with the codes packed in uint32 words (least significant bits first), exactly as MLX.
 * In nvfp4 mode, `globalScale` (a float32 scalar) rescales the group scales as MLX does.
 * @example const [wq, scales, biases] = mx.quantize(mx.random.normal([64, 128]), { groupSize: 64, bits: 4 })
 * @example const g = mx.max(mx.abs(w)); const [wq, scales] = mx.quantize(w, { mode: "nvfp4", globalScale: g })
 */
export function quantize(w: MxArray, options: QuantizeWithGlobalOptions = {}): MxArray[] {
  const mode = modeOf(options.mode, "quantize");
  const gs = intOpt(options.groupSize, "group_size", "quantize");
  const bits = intOpt(options.bits, "bits", "quantize");
  const s = streamArg(options.stream);
  const h = w.handle("quantize");
  const gh = globalHandle(options.globalScale, "quantize");
  // One engine call makes every output (views of one packed result, computed once).
  return takeResults(checkStatus(lib.mlxb_quantize(h, gh, gs, bits, mode, s)));
}

/** Options of {@link dequantize}. */
export interface DequantizeOptions extends QuantizeOptions {
  /**
   * The output dtype. Default: the scales' (and biases') dtype in affine mode, float32 with a
   * `globalScale`, else bfloat16. (With a global scale MLX 0.32 returns float32 whatever dtype is
   * asked for; here an explicit dtype is honoured, the float32 values rounded to it.)
   */
  dtype?: DtypeLike | null;
  /** nvfp4 only: the float32 scalar given to {@link quantize}; the values are q * (scale * (g / 2688)). */
  globalScale?: MxArray | null;
}

/**
 * The inverse of {@link quantize}: `scale * q + bias` per group (affine, computed in the scales'
 * dtype), or the decoded float codes times their group's scale (times g / 2688 with an nvfp4
 * `globalScale` g). Differentiable in the affine scales and biases and in the global scale.
 * @example mx.dequantize(wq, scales, biases, { groupSize: 64, bits: 4 })
 */
export function dequantize(wq: MxArray, scales: MxArray, biases?: MxArray | null, options: DequantizeOptions = {}): MxArray {
  const mode = modeOf(options.mode, "dequantize");
  const gs = intOpt(options.groupSize, "group_size", "dequantize");
  const bits = intOpt(options.bits, "bits", "dequantize");
  const dt = options.dtype === undefined || options.dtype === null ? -1 : toDtype(options.dtype, "dequantize").value;
  const bh = biases ? biases.handle("dequantize") : 0;
  const gh = globalHandle(options.globalScale, "dequantize");
  const ms = mode | (streamArg(options.stream) << 8);
  return new MxArray(checkHandle(lib.mlxb_dequantize(wq.handle("dequantize"), scales.handle("dequantize"), bh, gh, gs, bits, dt, ms)));
}

/** Options of {@link quantizedMatmul}. */
export interface QuantizedMatmulOptions extends QuantizeOptions {
  /** Multiply by the transposed `w` (`x @ w.T`, the default) or by `w`. */
  transpose?: boolean;
}

/**
 * `x @ dequantize(w).T` (or `x @ dequantize(w)` with `transpose: false`) without materializing the
 * dequantized matrix. Batch dimensions of `x` and `w` broadcast.
 * @example mx.quantizedMatmul(x, wq, scales, biases, { transpose: true, groupSize: 64, bits: 4 })
 */
export function quantizedMatmul(x: MxArray, w: MxArray, scales: MxArray, biases?: MxArray | null, options: QuantizedMatmulOptions = {}): MxArray {
  const mode = modeOf(options.mode, "quantized_matmul");
  const gs = intOpt(options.groupSize, "group_size", "quantized_matmul");
  const bits = intOpt(options.bits, "bits", "quantized_matmul");
  const transpose = options.transpose ?? true;
  const bh = biases ? biases.handle("quantized_matmul") : 0;
  const ms = mode | (streamArg(options.stream) << 8);
  return new MxArray(checkHandle(lib.mlxb_quantized_matmul(x.handle("quantized_matmul"), w.handle("quantized_matmul"), scales.handle("quantized_matmul"), bh, transpose ? 1 : 0, gs, bits, ms)));
}

/** Options of {@link gatherQmm}. */
export interface GatherQmmOptions extends QuantizedMatmulOptions {
  /** Accepted for MLX compatibility (a hint; the result is the same). */
  sortedIndices?: boolean;
  /**
   * nvfp4 only, with indices: float32, one global scale per matrix of `w` (shape `w.shape[:-2]`),
   * as given to {@link quantize} for that matrix. (MLX 0.32 supports it on the GPU only.)
   */
  globalScale?: MxArray | null;
}

function batchSize(shape: readonly number[]): number {
  return shape.slice(0, -2).reduce((p, d) => p * d, 1);
}

/**
 * The quantized {@link quantizedMatmul} with matrix-level gather (MLX's `gather_qmm`): the flat
 * batch indices `lhsIndices` pick matrices of `x`, `rhsIndices` of `w` (with its scales and
 * biases); both default to all of their batch and broadcast together. The result has shape
 * `indices.shape + [m, n]`.
 * @example mx.gatherQmm(x, wq, scales, biases, null, mx.array([1, 3]))
 */
export function gatherQmm(
  x: MxArray, w: MxArray, scales: MxArray, biases?: MxArray | null,
  lhsIndices?: MxArray | null, rhsIndices?: MxArray | null, options: GatherQmmOptions = {},
): MxArray {
  const op = "gather_qmm";
  if (w.dtype.name !== "uint32") throw new MlxError(`[${op}] The weight matrix should be uint32 but received ${w.dtype.name}`, 1);
  const gl = options.globalScale ?? null;
  if (gl) {
    if (!lhsIndices && !rhsIndices) throw new MlxError(`[${op}] Global scale is not supported without indices.`, 1);
    if ((options.mode ?? "affine") !== "nvfp4") throw new MlxError(`[${op}] Global scale is only supported for 'nvfp4' quantization mode.`, 1);
    if (gl.dtype.name !== "float32") throw new MlxError(`[${op}] Global scale must have dtype float32 but got ${gl.dtype.name}.`, 1);
    const experts = w.shape.slice(0, -2);
    if (gl.ndim !== experts.length || gl.shape.some((d, i) => d !== experts[i])) {
      throw new MlxError(`[${op}] Global scale must have one entry per expert with shape ${shapeStr(experts)} but got ${shapeStr(gl.shape)}.`, 1);
    }
  }
  for (const ix of [lhsIndices, rhsIndices]) {
    if (ix && !ix.dtype.isInteger) throw new MlxError(`[${op}] Got indices with invalid dtype. Indices must be integral.`, 1);
  }
  if (x.ndim < 2 || w.ndim < 2) throw new MlxError(`[${op}] Got 1 dimension input. Inputs must have at least two dimensions.`, 1);
  const s = { stream: options.stream };
  return tidy(() => {
    const lhs = lhsIndices ?? reshape(arange(batchSize(x.shape), { dtype: "uint32" }), x.shape.slice(0, -2), s);
    const rhs = rhsIndices ?? reshape(arange(batchSize(w.shape), { dtype: "uint32" }), w.shape.slice(0, -2), s);
    const ishape = broadcastShapes(lhs.shape, rhs.shape);
    const li = broadcastTo(lhs, ishape, s);
    const ri = broadcastTo(rhs, ishape, s);
    const pick = (a: MxArray, idx: MxArray) => take(reshape(a, [-1, ...a.shape.slice(-2)], s), idx, 0, s);
    const xg = pick(x, li);
    const wg = pick(w, ri);
    const sg = pick(scales, ri);
    const bg = biases ? pick(biases, ri) : null;
    const { globalScale: _g, ...qopts } = options;
    const y = quantizedMatmul(xg, wg, sg, bg, qopts);
    if (!gl) return y;
    // Each matrix's product times its g / 2688 (dequantize's factor), in float32.
    const f = divide(take(reshape(gl, [-1], s), ri, 0, s), array(2688, float32), s);
    const scaled = multiply(astype(y, float32, s), reshape(f, [...ishape, 1, 1], s), s);
    return astype(scaled, y.dtype, s);
  });
}

/** Options of {@link qqmm}. */
export interface QqmmOptions {
  /** Elements of `x` and `w` sharing one scale. Default: the mode's (nvfp4 16, mxfp8 32). */
  groupSize?: number | null;
  /** Bits per element. Default: the mode's (nvfp4 4, mxfp8 8). */
  bits?: number | null;
  /** "nvfp4" (default) or "mxfp8". */
  mode?: QuantizationMode;
  /**
   * nvfp4 only, both or neither: float32 scalars. Validated as MLX does; MLX's CPU backend does not
   * use them in the product, and neither do we.
   */
  globalScaleX?: MxArray | null;
  globalScaleW?: MxArray | null;
  stream?: StreamOrDevice;
}

function shapeStr(shape: readonly number[]): string {
  return `(${shape.join(",")})`;
}

/**
 * `x` rounded through the mode's format as MLX rounds qqmm's activations (engine
 * quantize_dequantize): per group, scale = amax / (6 or 448) in the scale format; elements to
 * E4M3, or to E2M1 with ties to even (unlike mx.quantize, whose E2M1 ties go toward zero); the
 * result in x's dtype.
 */
function quantizeDequantize(x: MxArray, groupSize: number, bits: number, mode: QuantizationMode, stream?: StreamOrDevice): MxArray {
  return new MxArray(checkHandle(lib.mlxb_quantize_dequantize(x.handle("qqmm"), groupSize, bits, MODES[mode], streamArg(stream))));
}

interface QqmmPlan {
  gs: number;
  bits: number;
  mode: QuantizationMode;
  quantized: boolean;
}

function qqmmCheck(op: string, x: MxArray, w: MxArray, scales: MxArray | null | undefined, options: QqmmOptions, wndim: number | null): QqmmPlan {
  const mode = options.mode ?? "nvfp4";
  if ((MODES as Record<string, number>)[mode] === undefined) throw new MlxError(`[${op}] Invalid quantization mode '${mode}'.`, 1);
  if (mode !== "nvfp4" && mode !== "mxfp8") throw new MlxError(`[${op}] Only 'nvfp4' and 'mxfp8' modes are supported but got '${mode}'.`, 1);
  // (MLX's qqmm takes an explicit 0 as the mode's default too.)
  const gs = intOpt(options.groupSize || null, "group_size", op) || (mode === "nvfp4" ? 16 : 32);
  const bits = intOpt(options.bits || null, "bits", op) || (mode === "nvfp4" ? 4 : 8);
  const floatOk = (a: MxArray) => a.dtype.isFloating && a.dtype.name !== "float64";
  if (!floatOk(x)) throw new MlxError(`[${op}] Only real floating types except float64 are supported but first argument dtype == ${x.dtype.name}.`, 1);
  const quantized = w.dtype.name === "uint32";
  if (!quantized && !floatOk(w)) throw new MlxError(`[${op}] Only real floating types except float64 are supported but second argument dtype == ${w.dtype.name}.`, 1);
  if (wndim !== null && (w.ndim !== wndim || x.ndim < 1)) throw new MlxError(`[${op}] Only 2D inputs are supported but x.ndim() == ${x.ndim} and w.ndim() == ${w.ndim}.`, 1);
  if (wndim === null && (x.ndim < 2 || w.ndim < 2)) throw new MlxError(`[${op}] Got 1 dimension input. Inputs must have at least two dimensions.`, 1);
  const gx = options.globalScaleX ?? null;
  const gw = options.globalScaleW ?? null;
  if (gx || gw) {
    if (mode !== "nvfp4") throw new MlxError(`[${op}] Global scale is only supported for 'nvfp4' quantization mode.`, 1);
    if (!gx || !gw) throw new MlxError(`[${op}] For nvfp4 mode, either both global_scale_x and global_scale_w must be provided, or neither.`, 1);
    for (const g of [gx, gw]) {
      if (g.dtype.name !== "float32") throw new MlxError(`[${op}] Global scale must have dtype float32 but got ${g.dtype.name}.`, 1);
      if (g.size !== 1) throw new MlxError(`[${op}] Global scale must be a scalar but got shape ${shapeStr(g.shape)}.`, 1);
    }
  }
  const kx = x.shape[x.ndim - 1]!;
  if (quantized) {
    if (!scales) throw new MlxError(`[${op}] Scales must be provided if second argument is quantized.`, 1);
    const wr = w.shape[w.ndim - 2]!;
    const wc = w.shape[w.ndim - 1]!;
    const k = Math.floor((wc * 32) / bits);
    const sc = scales.shape[scales.ndim - 1]!;
    if (scales.ndim !== w.ndim || scales.shape[scales.ndim - 2] !== wr || Math.floor(k / gs) !== sc || k % gs !== 0) {
      throw new MlxError(`[${op}] The shapes of the weight and scales are incompatible based on bits and group_size. w.shape() == ${shapeStr(w.shape)} and scales.shape() == ${shapeStr(scales.shape)} with group_size=${gs} and bits=${bits}`, 1);
    }
    if (kx !== k) {
      throw new MlxError(`[${op}] Last dimension of first input with shape (..., ${kx}) does not match the expanded quantized matrix (${k}, ${wr}) computed from shape ${shapeStr(w.shape)} with group_size=${gs}, bits=${bits} and transpose=true`, 1);
    }
  } else if (kx !== w.shape[w.ndim - 1]) {
    throw new MlxError(`[${op}] Last dimension of first input with shape ${shapeStr(x.shape)} must match last dimension of second input with shape ${shapeStr(w.shape)}.`, 1);
  }
  return { gs, bits, mode, quantized };
}

/**
 * `x @ w.T` with both operands rounded through a microscaling format (MLX's `qqmm`): `x` is
 * quantized on the fly (each group of `groupSize` along its last axis scaled by its amax, the
 * elements rounded to E2M1 with ties to even (nvfp4) or E4M3 (mxfp8), and the result taken back
 * to x's dtype); `w`
 * is used as given when quantized (uint32 codes with `scales`), else quantized on the fly. The
 * product is {@link quantizedMatmul} of the rounded `x` with the quantized `w`; the result has x's
 * dtype. MLX 0.32's CPU backend computes only a single row of `x` against a quantized `w`
 * (otherwise "[QQMatmul] NYI for the general case"); here every shape of `x` is accepted.
 * @example mx.qqmm(x, w, null, { mode: "nvfp4" })
 */
export function qqmm(x: MxArray, w: MxArray, scales?: MxArray | null, options: QqmmOptions = {}): MxArray {
  const plan = qqmmCheck("qqmm", x, w, scales, options, 2);
  const s = { stream: options.stream };
  return tidy(() => {
    const q = { groupSize: plan.gs, bits: plan.bits, mode: plan.mode, stream: options.stream };
    const [wq, ws] = plan.quantized ? [w, scales!] : (quantize(w, q) as [MxArray, MxArray]);
    const xhat = quantizeDequantize(x.ndim === 1 ? reshape(x, [1, -1], s) : x, plan.gs, plan.bits, plan.mode, options.stream);
    const y = quantizedMatmul(xhat, wq, ws, null, { ...q, transpose: true });
    return x.ndim === 1 ? reshape(y, [-1], s) : y;
  });
}

/** Options of {@link gatherQqmm}. */
export interface GatherQqmmOptions extends QqmmOptions {
  /** Accepted for MLX compatibility (a hint; the result is the same). */
  sortedIndices?: boolean;
}

/**
 * {@link qqmm} with matrix-level gather (MLX's `gather_qqmm`), as {@link gatherQmm}: the flat batch
 * indices `lhsIndices` pick matrices of `x`, `rhsIndices` of `w` (and its scales). `x` is rounded
 * through the mode's format and `w` quantized when it is not already.
 * @example mx.gatherQqmm(x, wq, scales, null, mx.array([1, 0]))
 */
export function gatherQqmm(
  x: MxArray, w: MxArray, scales?: MxArray | null,
  lhsIndices?: MxArray | null, rhsIndices?: MxArray | null, options: GatherQqmmOptions = {},
): MxArray {
  const op = "gather_qqmm";
  const plan = qqmmCheck(op, x, w, scales, options, null);
  for (const ix of [lhsIndices, rhsIndices]) {
    if (ix && !ix.dtype.isInteger) throw new MlxError(`[${op}] Got indices with invalid dtype. Indices must be integral.`, 1);
  }
  return tidy(() => {
    const q = { groupSize: plan.gs, bits: plan.bits, mode: plan.mode, stream: options.stream };
    const [wq, ws] = plan.quantized ? [w, scales!] : (quantize(w, q) as [MxArray, MxArray]);
    const xhat = quantizeDequantize(x, plan.gs, plan.bits, plan.mode, options.stream);
    return gatherQmm(xhat, wq, ws, null, lhsIndices, rhsIndices, { ...q, transpose: true });
  });
}

/**
 * Round a floating-point array to 8-bit floats, E4M3 (the "fn" variant: no infinities),
 * returned as their uint8 codes (MLX's `to_fp8`). Rounds to nearest, ties to even;
 * magnitudes past 448 (the largest E4M3), infinities and NaN saturate to ±448 (codes 0x7e and
 * 0xfe), keeping the sign, as MLX does. Any real floating dtype is accepted (float64 is rounded
 * through float32 exactly, where MLX 0.32's CPU backend misreads it).
 * @example mx.toFp8(mx.array([1, -1.5, 1000])) // [56, 188, 126] as uint8
 */
export function toFp8(x: MxArray, options: { stream?: StreamOrDevice } = {}): MxArray {
  if (!(x instanceof MxArray)) throw new MlxError("[to_fp8] Expected an mx.Array.", 1);
  if (!x.dtype.isFloating) throw new MlxError(`[to_fp8] Only real floating types are supported but x.dtype() == ${x.dtype.name}.`, 1);
  const s = { stream: options.stream };
  return tidy(() => {
    const f = x.dtype === float32 ? x : astype(x, float32, s);
    const bits = view(f, uint32, s);
    const u = (v: number): MxArray => array(v, uint32);
    const sign = leftShift(rightShift(bits, u(31), s), u(7), s);
    const mag = bitwiseAnd(bits, u(0x7fffffff), s);
    // Normal E4M3 (|x| >= 2^-6): round float32's 23-bit mantissa to 3 bits, ties to even, on
    // the bit pattern (a carry moves into the exponent as it should), then rebias the
    // exponent from 127 to 7; everything past 448 (0x7e), infinities and NaN included, saturates.
    const roundedBits = add(mag, add(u(0x7ffff), bitwiseAnd(rightShift(mag, u(20), s), u(1), s), s), s);
    const normal = minimum(subtract(rightShift(roundedBits, u(20), s), u((127 - 7) << 3), s), u(0x7e), s);
    // Subnormal E4M3 (|x| < 2^-6): multiples of 2^-9; round(|x|·512) ties to even, 8 being the
    // smallest normal's code.
    const absF = view(mag, float32, s);
    const sub = astype(round(multiply(absF, array(512, float32), s), 0, s), uint32, s);
    const code = where(less(absF, array(2 ** -6, float32), s), sub, normal, s);
    return astype(bitwiseOr(code, sign, s), uint8, s);
  });
}

let fp8Table: MxArray | null = null;

/** The 256 E4M3 values in float32, decoded by the format's definition (0x7f and 0xff are NaN). */
function fp8Values(): MxArray {
  if (fp8Table === null) {
    const t = new Float32Array(256);
    for (let c = 0; c < 256; c++) {
      const e = (c >> 3) & 15;
      const m = c & 7;
      const v = e === 15 && m === 7 ? NaN : e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7);
      t[c] = c & 0x80 ? -v : v;
    }
    fp8Table = array(t);
  }
  return fp8Table;
}

/**
 * Decode 8-bit E4M3 float codes (uint8, as {@link toFp8} makes them) to a floating dtype
 * (MLX's `from_fp8`; default bfloat16). Every E4M3 value is exact in float16, bfloat16 and
 * float32; codes 0x7f and 0xff are NaN.
 * @example mx.fromFp8(mx.array([56, 188], mx.uint8), mx.float32) // [1, -1.5]
 */
export function fromFp8(x: MxArray, dtype: DtypeLike = bfloat16, options: { stream?: StreamOrDevice } = {}): MxArray {
  if (!(x instanceof MxArray)) throw new MlxError("[from_fp8] Expected an mx.Array.", 1);
  if (x.dtype !== uint8) throw new MlxError(`[from_fp8] Input must have type uint8 but x.dtype() == ${x.dtype.name}.`, 1);
  const dt = toDtype(dtype);
  if (!dt.isFloating) throw new MlxError(`[from_fp8] Only real floating types are supported but dtype == ${dt.name}.`, 1);
  const s = { stream: options.stream };
  const table = fp8Values(); // outside tidy: it is kept for the process
  return tidy(() => {
    const v = take(table, x, undefined, s);
    return dt === float32 ? v : astype(v, dt, s);
  });
}
