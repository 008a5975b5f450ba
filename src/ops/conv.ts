// Convolutions: one engine op (conv_general, engine/prims/conv.zig) and everything composed
// from it as MLX does: conv1d/2d/3d, the transposed convolutions (a flipped convolution over the
// input dilated by the stride) and NumPy's 1-D convolve. Channels last, as MLX: input
// [N, ...spatial, C_in], weight [C_out, ...kernel, C_in / groups].
import { lib } from "../../ffi/lib";
import type { MxArray } from "../array";
import { streamArg } from "../device";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import type { StreamOptions } from "./elementwise";
import { reshape } from "./shape";
import { int, ints, wrap } from "./util";

type IntOrList = number | readonly number[];

/** Options of {@link convGeneral}. */
export interface ConvGeneralOptions extends StreamOptions {
  /** Kernel strides (one per spatial axis, or one number, or a list of one, for all). Default 1. */
  stride?: IntOrList;
  /** Zero padding: a number or a list (both sides), or `[low, high]` lists. Default 0. */
  padding?: IntOrList | readonly [readonly number[], readonly number[]];
  /** Kernel dilation. Default 1. */
  kernelDilation?: IntOrList;
  /** Input dilation (zeros inserted between input elements). Default 1. */
  inputDilation?: IntOrList;
  /** Input channels are split into this many groups. Default 1. */
  groups?: number;
  /** Flip the kernel (a true convolution rather than a cross-correlation). Default false. */
  flip?: boolean;
}

/** Options of {@link conv1d}, {@link conv2d}, {@link conv3d}. */
export interface ConvOptions<P extends IntOrList = IntOrList> extends StreamOptions {
  /** Kernel stride. Default 1. */
  stride?: P;
  /** Zero padding on both sides of each spatial axis. Default 0. */
  padding?: P;
  /** Kernel dilation. Default 1. */
  dilation?: P;
  /** Input channels are split into this many groups. Default 1. */
  groups?: number;
}

/** Options of {@link convTranspose1d}, {@link convTranspose2d}, {@link convTranspose3d}. */
export interface ConvTransposeOptions<P extends IntOrList = IntOrList> extends ConvOptions<P> {
  /** Extra size added to one side of each output axis. Default 0. */
  outputPadding?: P;
}

function spread(v: IntOrList, n: number, what: string): number[] {
  if (typeof v === "number") return Array.from({ length: n }, () => int(v, what, "conv"));
  if (!Array.isArray(v)) throw new MlxError(`[conv] Expected ${what} as a number or a list of numbers.`, 1);
  return Array.from(v, (x) => int(x, what, "conv"));
}

/** spread, where a list of one value also stands for every spatial axis (MLX's conv_general). */
function spreadOne(v: IntOrList, n: number, what: string): number[] {
  return spread(Array.isArray(v) && v.length === 1 ? (v[0] as number) : v, n, what);
}

function general(input: MxArray, weight: MxArray, stride: number[], lo: number[], hi: number[], kdil: number[], idil: number[], groups: number, flip: boolean, stream: StreamOptions["stream"]): MxArray {
  const lists = [stride, lo, hi, kdil, idil];
  const packed: number[] = [];
  for (const l of lists) packed.push(l.length, ...l);
  const params = ints(packed, "Convolution parameters", "conv");
  return wrap(
    lib.mlxb_conv_general(input.handle("conv"), weight.handle("conv"), params, packed.length, int(groups, "groups", "conv"), flip ? 1 : 0, streamArg(stream)),
  );
}

function spatial(input: MxArray): number {
  return Math.max(0, input.ndim - 2);
}

/**
 * General convolution over an input with several channels (channels last): strides, padding
 * (symmetric, or low/high lists), kernel and input dilation, groups and flip.
 * @example mx.convGeneral(mx.ones([1, 5, 1]), mx.ones([1, 3, 1]), { padding: [[1], [0]] }).shape // [1, 4, 1]
 */
export function convGeneral(input: MxArray, weight: MxArray, options: ConvGeneralOptions = {}): MxArray {
  const n = spatial(input);
  const pad = options.padding ?? 0;
  let lo: number[];
  let hi: number[];
  if (Array.isArray(pad) && pad.length === 2 && Array.isArray(pad[0]) && Array.isArray(pad[1])) {
    lo = spreadOne(pad[0] as readonly number[], n, "padding");
    hi = spreadOne(pad[1] as readonly number[], n, "padding");
  } else {
    lo = spreadOne(pad as IntOrList, n, "padding");
    hi = lo;
  }
  return general(
    input,
    weight,
    spreadOne(options.stride ?? 1, n, "stride"),
    lo,
    hi,
    spreadOne(options.kernelDilation ?? 1, n, "kernel dilation"),
    spreadOne(options.inputDilation ?? 1, n, "input dilation"),
    options.groups ?? 1,
    options.flip ?? false,
    options.stream,
  );
}

function convN(input: MxArray, weight: MxArray, n: number, o: ConvOptions): MxArray {
  const pad = spread(o.padding ?? 0, n, "padding");
  return general(input, weight, spread(o.stride ?? 1, n, "stride"), pad, pad, spread(o.dilation ?? 1, n, "dilation"), spread(1, n, "input dilation"), o.groups ?? 1, false, o.stream);
}

/**
 * 1-D convolution (cross-correlation) of input [N, L, C_in] with weight [C_out, K, C_in / groups].
 * @example mx.conv1d(mx.ones([1, 5, 2]), mx.ones([3, 3, 2]), { padding: 1 }).shape // [1, 5, 3]
 */
export function conv1d(input: MxArray, weight: MxArray, options: ConvOptions<number> = {}): MxArray {
  return convN(input, weight, 1, options);
}

/**
 * 2-D convolution of input [N, H, W, C_in] with weight [C_out, KH, KW, C_in / groups].
 * @example mx.conv2d(mx.ones([1, 8, 8, 3]), mx.ones([16, 3, 3, 3]), { stride: 2, padding: 1 }).shape // [1, 4, 4, 16]
 */
export function conv2d(input: MxArray, weight: MxArray, options: ConvOptions<number | readonly [number, number]> = {}): MxArray {
  return convN(input, weight, 2, options);
}

/**
 * 3-D convolution of input [N, D, H, W, C_in] with weight [C_out, KD, KH, KW, C_in].
 * @example mx.conv3d(mx.ones([1, 4, 4, 4, 1]), mx.ones([2, 3, 3, 3, 1])).shape // [1, 2, 2, 2, 2]
 */
export function conv3d(input: MxArray, weight: MxArray, options: ConvOptions<number | readonly [number, number, number]> = {}): MxArray {
  return convN(input, weight, 3, options);
}

function convTransposeN(input: MxArray, weight: MxArray, n: number, o: ConvTransposeOptions): MxArray {
  const stride = spread(o.stride ?? 1, n, "stride");
  const padding = spread(o.padding ?? 0, n, "padding");
  const dilation = spread(o.dilation ?? 1, n, "dilation");
  const outPad = spread(o.outputPadding ?? 0, n, "output padding");
  const lo: number[] = [];
  const hi: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = weight.shape[1 + i] ?? 1;
    lo.push((dilation[i] ?? 1) * (k - 1) - (padding[i] ?? 0));
    hi.push(lo[i]! + (outPad[i] ?? 0));
  }
  return general(input, weight, spread(1, n, "stride"), lo, hi, dilation, stride, o.groups ?? 1, true, o.stream);
}

/**
 * 1-D transposed convolution of input [N, L, C_in] with weight [C_out, K, C_in / groups]:
 * output length (L - 1) * stride - 2 * padding + dilation * (K - 1) + 1 + outputPadding.
 * @example mx.convTranspose1d(mx.ones([1, 5, 2]), mx.ones([3, 3, 2]), { stride: 2, outputPadding: 1 }).shape // [1, 12, 3]
 */
export function convTranspose1d(input: MxArray, weight: MxArray, options: ConvTransposeOptions<number> = {}): MxArray {
  return convTransposeN(input, weight, 1, options);
}

/**
 * 2-D transposed convolution of input [N, H, W, C_in] with weight [C_out, KH, KW, C_in / groups].
 * @example mx.convTranspose2d(mx.ones([1, 4, 4, 8]), mx.ones([3, 3, 3, 8]), { stride: 2, padding: 1, outputPadding: 1 }).shape // [1, 8, 8, 3]
 */
export function convTranspose2d(input: MxArray, weight: MxArray, options: ConvTransposeOptions<number | readonly [number, number]> = {}): MxArray {
  return convTransposeN(input, weight, 2, options);
}

/**
 * 3-D transposed convolution of input [N, D, H, W, C_in] with weight [C_out, KD, KH, KW, C_in].
 * @example mx.convTranspose3d(mx.ones([1, 2, 2, 2, 1]), mx.ones([1, 2, 2, 2, 1]), { stride: 2 }).shape // [1, 4, 4, 4, 1]
 */
export function convTranspose3d(input: MxArray, weight: MxArray, options: ConvTransposeOptions<number | readonly [number, number, number]> = {}): MxArray {
  return convTransposeN(input, weight, 3, options);
}

/** The modes of {@link convolve}. */
export type ConvolveMode = "full" | "same" | "valid";

/**
 * The discrete convolution of 1-D arrays, as `numpy.convolve`: mode "full" (length M + N - 1),
 * "same" (length max(M, N)) or "valid" (length max(M, N) - min(M, N) + 1).
 * @example mx.convolve(mx.array([1, 2, 3]), mx.array([0, 1, 0.5]), "same") // [1, 2.5, 4]
 */
export function convolve(a: MxArray, v: MxArray, mode: ConvolveMode = "full", options?: StreamOptions): MxArray {
  if (a.ndim !== 1 || v.ndim !== 1) throw new MlxError("[convolve] Inputs must be 1D.", 1);
  if (a.size === 0 || v.size === 0) throw new MlxError("[convolve] Inputs cannot be empty.", 1);
  if (mode !== "full" && mode !== "same" && mode !== "valid") throw new MlxError("[convolve] Invalid mode.", 1);
  let [x, k] = [a, v];
  if (k.size > x.size) [x, k] = [k, x];
  const kn = k.size;
  let lo = 0;
  let hi = 0;
  if (mode === "full") {
    lo = kn - 1;
    hi = kn - 1;
  } else if (mode === "same") {
    hi = Math.floor((kn - 1) / 2);
    lo = kn - 1 - hi;
  }
  return tidy(() => {
    const x3 = reshape(x, [1, -1, 1], options);
    const k3 = reshape(k, [1, -1, 1], options);
    const out = general(x3, k3, [1], [lo], [hi], [1], [1], 1, true, options?.stream);
    return reshape(out, [-1], options);
  });
}
