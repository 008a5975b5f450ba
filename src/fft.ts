// mx.fft: discrete Fourier transforms as MLX 0.32.4's mlx.core.fft. The transforms are one engine
// primitive (engine/prims/fft.zig, our own mixed-radix/Bluestein FFT, with vjp and vmap rules);
// fftfreq, rfftfreq, fftshift, ifftshift, stft and istft are composed here from graph ops.
//
// As MLX: every transform computes in float32/complex64 (float64 and integer inputs are
// converted), rfft* drops the imaginary part of a complex input, irfft* treats a real input as
// complex, and `n`/`s` crop or zero-pad the transformed axes at their end.
import { lib } from "../ffi/lib";
import { array, MxArray } from "./array";
import { streamArg, type StreamOrDevice } from "./device";
import { complex64, float32 } from "./dtype";
import { MlxError } from "./errors";
import { tidy } from "./memory";
import {
  broadcastTo as broadcastToOp, divide, expandDims, maximum, multiply, pad, real, reshape, roll, sl as slOp, square, swapaxes,
  take as takeOp,
} from "./ops/index";
import { ones, zeros } from "./creation";
import { ints, wrap } from "./ops/util";

/** The normalization of a transform pair, as NumPy's and MLX's `norm`. */
export type FFTNorm = "backward" | "ortho" | "forward";

/** Options of the 1-D transforms ({@link fft}, {@link ifft}, {@link rfft}, {@link irfft}). */
export interface FFTOptions {
  /** Size of the transformed axis (the input is cropped or zero-padded to it). Default: the axis's size (irfft: 2 (m - 1)). */
  n?: number | null;
  /** The axis to transform. Default -1. */
  axis?: number;
  /** "backward" (default: the inverse scales by 1/n), "ortho" (both by 1/sqrt(n)) or "forward" (the forward by 1/n). */
  norm?: FFTNorm;
  stream?: StreamOrDevice;
}

/** Options of the n-dimensional transforms ({@link fftn}, {@link fft2}, ... ). */
export interface FFTNOptions {
  /** Sizes of the transformed axes (each cropped or zero-padded to its size). Default: the axes' sizes. */
  s?: readonly number[] | null;
  /** The axes to transform. fftn default: the last `s.length` axes, or all axes; fft2 default: [-2, -1]. */
  axes?: readonly number[] | null;
  norm?: FFTNorm;
  stream?: StreamOrDevice;
}

const OP = { fft: 0, ifft: 1, rfft: 2, irfft: 3 } as const;
const NORM: Record<FFTNorm, number> = { backward: 0, ortho: 1, forward: 2 };

function normArg(norm: FFTNorm | undefined, op: string): number {
  const v = NORM[(norm ?? "backward") as FFTNorm];
  if (v === undefined || !Object.hasOwn(NORM, norm ?? "backward")) {
    throw new MlxError(`[${op}] Invalid norm. Expected one of {'backward', 'ortho', 'forward'}.`, 1);
  }
  return v;
}

function checkArray(a: unknown, op: string): MxArray {
  if (!(a instanceof MxArray)) throw new MlxError(`[${op}] Expected an array as input.`, 1);
  return a;
}

type Op = keyof typeof OP;

function transform(a: MxArray, n: readonly number[] | null, axes: readonly number[], kind: Op, norm: number, stream: StreamOrDevice | undefined, op: string): MxArray {
  const ax = ints(axes, "Axes", op);
  const nn = n === null ? null : ints(n, "Sizes", op);
  return wrap(lib.mlxb_fft_fftn(a.handle(op), nn, n === null ? 0 : n.length, ax, axes.length, OP[kind], norm, streamArg(stream)));
}

function oneD(a: MxArray, o: FFTOptions | undefined, kind: Op, op: string): MxArray {
  checkArray(a, op);
  const norm = normArg(o?.norm, op);
  const n = o?.n === undefined || o.n === null ? null : [o.n];
  return transform(a, n, [o?.axis ?? -1], kind, norm, o?.stream, op);
}

function nD(a: MxArray, o: FFTNOptions | undefined, defaultAxes: readonly number[] | null, kind: Op, op: string): MxArray {
  checkArray(a, op);
  const norm = normArg(o?.norm, op);
  const s = o?.s ?? null;
  let axes = o?.axes === undefined ? defaultAxes : o.axes;
  if (axes === null) {
    if (s !== null) throw new MlxError(`[${op}] \`axes\` should not be \`None\` if \`s\` is not \`None\`.`, 1);
    axes = Array.from({ length: a.ndim }, (_, i) => i);
  }
  return transform(a, s, axes, kind, norm, o?.stream, op);
}

/**
 * The one-dimensional discrete Fourier transform along `axis` (complex64 result).
 * @example mx.fft.fft(mx.array([1, 0, 0, 0])) // array([1+0j, 1+0j, 1+0j, 1+0j], dtype=complex64)
 */
export function fft(a: MxArray, options?: FFTOptions): MxArray {
  return oneD(a, options, "fft", "fft");
}

/**
 * The one-dimensional inverse discrete Fourier transform.
 * @example mx.fft.ifft(mx.fft.fft(x)) // x, as complex64
 */
export function ifft(a: MxArray, options?: FFTOptions): MxArray {
  return oneD(a, options, "ifft", "ifft");
}

/**
 * The DFT of a real input: the `n / 2 + 1` non-negative frequencies (complex input is cast to real).
 * @example mx.fft.rfft(mx.array([1, 2, 3, 4])).shape // [3]
 */
export function rfft(a: MxArray, options?: FFTOptions): MxArray {
  return oneD(a, options, "rfft", "rfft");
}

/**
 * The inverse of {@link rfft}: a real (float32) result of size `n` (default `2 (m - 1)`) along `axis`.
 * @example mx.fft.irfft(mx.fft.rfft(x), { n: x.shape[0] }) // x
 */
export function irfft(a: MxArray, options?: FFTOptions): MxArray {
  return oneD(a, options, "irfft", "irfft");
}

/**
 * The two-dimensional DFT (axes default [-2, -1]).
 * @example mx.fft.fft2(mx.ones([2, 2])) // [[4, 0], [0, 0]] as complex64
 */
export function fft2(a: MxArray, options?: FFTNOptions): MxArray {
  return nD(a, options, [-2, -1], "fft", "fft2");
}

/** The two-dimensional inverse DFT (axes default [-2, -1]). @example mx.fft.ifft2(mx.fft.fft2(x)) // x */
export function ifft2(a: MxArray, options?: FFTNOptions): MxArray {
  return nD(a, options, [-2, -1], "ifft", "ifft2");
}

/** The two-dimensional DFT of a real input (the last axis halved). @example mx.fft.rfft2(mx.ones([4, 4])).shape // [4, 3] */
export function rfft2(a: MxArray, options?: FFTNOptions): MxArray {
  return nD(a, options, [-2, -1], "rfft", "rfft2");
}

/** The inverse of {@link rfft2}. @example mx.fft.irfft2(mx.fft.rfft2(x), { s: x.shape }) // x */
export function irfft2(a: MxArray, options?: FFTNOptions): MxArray {
  return nD(a, options, [-2, -1], "irfft", "irfft2");
}

/**
 * The n-dimensional DFT over `axes` (default: the last `s.length` axes, or all).
 * @example mx.fft.fftn(mx.ones([2, 3, 4])).shape // [2, 3, 4]
 */
export function fftn(a: MxArray, options?: FFTNOptions): MxArray {
  return nD(a, options, null, "fft", "fftn");
}

/** The n-dimensional inverse DFT. @example mx.fft.ifftn(mx.fft.fftn(x)) // x */
export function ifftn(a: MxArray, options?: FFTNOptions): MxArray {
  return nD(a, options, null, "ifft", "ifftn");
}

/** The n-dimensional DFT of a real input (the last transformed axis halved). @example mx.fft.rfftn(mx.ones([4, 6])).shape // [4, 4] */
export function rfftn(a: MxArray, options?: FFTNOptions): MxArray {
  return nD(a, options, null, "rfft", "rfftn");
}

/** The inverse of {@link rfftn}. @example mx.fft.irfftn(mx.fft.rfftn(x), { s: x.shape }) // x */
export function irfftn(a: MxArray, options?: FFTNOptions): MxArray {
  return nD(a, options, null, "irfft", "irfftn");
}

// ---------------------------------------------------------------------------------------------
// Frequencies and shifts

/** Options of {@link fftfreq} and {@link rfftfreq}. */
export interface FreqOptions {
  /** The sample spacing. Default 1. */
  d?: number;
  stream?: StreamOrDevice;
}

function freqArgs(n: number, d: number | FreqOptions | undefined, op: string): { d: number; stream?: StreamOrDevice } {
  const o = typeof d === "number" ? { d } : { d: d?.d ?? 1, stream: d?.stream };
  if (typeof n !== "number" || !Number.isInteger(n)) throw new MlxError(`[${op}] \`n\` must be an integer.`, 1);
  if (n <= 0) throw new MlxError(`[${op}] \`n\` must be greater than 0.`, 1);
  if (o.d === 0) throw new MlxError(`[${op}] \`d\` must be non-zero.`, 1);
  return o;
}

/**
 * The sample frequencies of an `n`-point DFT with sample spacing `d` (float32):
 * `[0, 1, ..., ceil(n/2) - 1, -floor(n/2), ..., -1] / (n d)`.
 * @example mx.fft.fftfreq(4) // array([0, 0.25, -0.5, -0.25], dtype=float32)
 */
export function fftfreq(n: number, d?: number | FreqOptions): MxArray {
  const o = freqArgs(n, d, "fftfreq");
  const v = new Float32Array(n);
  const half = Math.floor((n - 1) / 2) + 1;
  for (let i = 0; i < n; i++) v[i] = (i < half ? i : i - n) / (n * o.d);
  return array(v, { stream: o.stream });
}

/**
 * The sample frequencies of {@link rfft}: `[0, 1, ..., floor(n/2)] / (n d)` (float32).
 * @example mx.fft.rfftfreq(5, 0.5) // array([0, 0.4, 0.8], dtype=float32)
 */
export function rfftfreq(n: number, d?: number | FreqOptions): MxArray {
  const o = freqArgs(n, d, "rfftfreq");
  const v = new Float32Array(Math.floor(n / 2) + 1);
  for (let i = 0; i < v.length; i++) v[i] = i / (n * o.d);
  return array(v, { stream: o.stream });
}

/** Options of {@link fftshift} and {@link ifftshift}. */
export interface ShiftOptions {
  /** The axis or axes to shift. Default: all axes. */
  axes?: number | readonly number[] | null;
  stream?: StreamOrDevice;
}

function shift(a: MxArray, o: ShiftOptions | undefined, inverse: boolean, op: string): MxArray {
  checkArray(a, op);
  const given = o?.axes;
  const axes = given === undefined || given === null ? Array.from({ length: a.ndim }, (_, i) => i) : typeof given === "number" ? [given] : [...given];
  if (axes.length === 0) return roll(a, [], [], { stream: o?.stream });
  const shifts = axes.map((ax) => {
    if (!Number.isInteger(ax) || ax < -a.ndim || ax >= a.ndim) throw new MlxError(`[${op}] Invalid axis ${ax} for array with ${a.ndim} dimensions.`, 1);
    const d = a.shape[ax < 0 ? ax + a.ndim : ax]!;
    return inverse ? -Math.floor(d / 2) : Math.floor(d / 2);
  });
  return roll(a, shifts, axes, { stream: o?.stream });
}

/**
 * The zero-frequency term moved to the center (each axis rolled by floor(n/2)).
 * @example mx.fft.fftshift(mx.fft.fftfreq(4)) // array([-0.5, -0.25, 0, 0.25], dtype=float32)
 */
export function fftshift(a: MxArray, options?: ShiftOptions): MxArray {
  return shift(a, options, false, "fftshift");
}

/**
 * The inverse of {@link fftshift} (each axis rolled by -floor(n/2)).
 * @example mx.fft.ifftshift(mx.fft.fftshift(x)) // x
 */
export function ifftshift(a: MxArray, options?: ShiftOptions): MxArray {
  return shift(a, options, true, "ifftshift");
}

// ---------------------------------------------------------------------------------------------
// Short-time transforms (composed: framing by a gather, overlap-add by a scatter-add)

/** Options of {@link stft}. */
export interface StftOptions {
  /** Transform size. Default 2048. */
  nFft?: number;
  /** Samples between frames. Default `nFft / 4` (floored). */
  hopLength?: number | null;
  /** Window size (of the default rectangular window). Default `nFft`. */
  winLength?: number | null;
  /** A one-dimensional window, centered and zero-padded to `nFft`. Default: ones(winLength). */
  window?: MxArray | null;
  /** Pad both ends by `nFft / 2` so frames are centered. Default true. */
  center?: boolean;
  /** "reflect" (default), "constant" or "edge": the padding when `center`. */
  padMode?: "reflect" | "constant" | "edge";
  norm?: FFTNorm;
  /** Only the non-negative frequencies. Default: true for real input, false for complex. */
  onesided?: boolean | null;
  stream?: StreamOrDevice;
}

/** Options of {@link istft}. */
export interface IstftOptions {
  /** Transform size. Default: 2 (n_freq - 1) when onesided, else n_freq. */
  nFft?: number | null;
  hopLength?: number | null;
  winLength?: number | null;
  window?: MxArray | null;
  /** Whether the STFT was centered. Default true. */
  center?: boolean;
  norm?: FFTNorm;
  /** Whether the STFT holds only the non-negative frequencies. Default true. */
  onesided?: boolean | null;
  /** Trim or zero-pad the output to this length. */
  length?: number | null;
  stream?: StreamOrDevice;
}

function positiveInt(v: number, what: string, op: string): number {
  if (!Number.isInteger(v) || v <= 0) throw new MlxError(`[${op}] ${what} must be positive.`, 1);
  return v;
}

/** The analysis/synthesis window padded (centered) to nFft. */
function fullWindow(window: MxArray | null | undefined, winLength: number | null | undefined, nFft: number, op: string, stream?: StreamOrDevice): MxArray {
  if (winLength !== undefined && winLength !== null && winLength > nFft) throw new MlxError(`[${op}] window length must not exceed n_fft.`, 1);
  let w: MxArray;
  if (window !== undefined && window !== null) {
    if (!(window instanceof MxArray) || window.ndim !== 1) throw new MlxError(`[${op}] window must be a one-dimensional array.`, 1);
    w = window;
  } else {
    w = ones([positiveInt(winLength ?? nFft, "win_length", op)], { dtype: float32, stream });
  }
  const wl = w.shape[0]!;
  if (wl > nFft) throw new MlxError(`[${op}] window length must not exceed n_fft.`, 1);
  if (wl === nFft) return w;
  const left = Math.floor((nFft - wl) / 2);
  return pad(w, [[left, nFft - wl - left]], "constant", 0, { stream });
}

/** idx[f, t] = f * hop + t, shape [frames, nFft] (int32). */
function frameIndex(frames: number, hop: number, nFft: number, stream?: StreamOrDevice): MxArray {
  const v = new Int32Array(frames * nFft);
  for (let f = 0; f < frames; f++) for (let t = 0; t < nFft; t++) v[f * nFft + t] = f * hop + t;
  return array(v, { shape: [frames, nFft], stream });
}

/**
 * The short-time Fourier transform of the last axis of `x`: frames of `nFft` samples every
 * `hopLength`, times the window, transformed. The result is complex with shape
 * `[..., n_freq, n_frames]` (n_freq = nFft / 2 + 1 when onesided, else nFft).
 * @example mx.fft.stft(mx.zeros([50]), { nFft: 16 }).shape // [9, 13]
 */
export function stft(x: MxArray, options: StftOptions = {}): MxArray {
  const op = "stft";
  checkArray(x, op);
  const norm = options.norm ?? "backward";
  normArg(norm, op);
  if (x.ndim < 1) throw new MlxError("[stft] Input must have at least one dimension.", 1);
  const nFft = positiveInt(options.nFft ?? 2048, "n_fft", op);
  const hop = positiveInt(options.hopLength ?? Math.floor(nFft / 4), "hop_length", op);
  const stream = options.stream;
  const onesided = options.onesided ?? x.dtype !== complex64;
  return tidy(() => {
    const w = fullWindow(options.window, options.winLength, nFft, op, stream);
    let sig = x;
    if (options.center ?? true) {
      const half = Math.floor(nFft / 2);
      const widths = Array.from({ length: x.ndim }, (_, i): [number, number] => (i === x.ndim - 1 ? [half, half] : [0, 0]));
      sig = pad(x, widths, options.padMode ?? "reflect", 0, { stream });
    }
    const len = sig.shape[sig.ndim - 1]!;
    if (len < nFft) throw new MlxError("[stft] Input is too short for the given n_fft.", 1);
    const frames = 1 + Math.floor((len - nFft) / hop);
    const framed = multiply(takeLast(sig, frameIndex(frames, hop, nFft, stream), stream), w, { stream });
    const spec = onesided ? rfft(framed, { norm, stream }) : fft(framed, { norm, stream });
    return swapaxes(spec, -1, -2, { stream });
  });
}

function takeLast(a: MxArray, idx: MxArray, stream?: StreamOrDevice): MxArray {
  return takeOp(a, idx, a.ndim - 1, { stream });
}

const sliceAll = slOp();

/**
 * The inverse of {@link stft}: each frame inverse-transformed, windowed and overlap-added,
 * divided by the overlap-added squared window (where that is below 1e-8, by 1e-8). Real output.
 * @example mx.fft.istft(mx.fft.stft(x, { nFft: 16 }), { nFft: 16, length: x.shape[0] }) // x
 */
export function istft(stftMatrix: MxArray, options: IstftOptions = {}): MxArray {
  const op = "istft";
  checkArray(stftMatrix, op);
  const norm = options.norm ?? "backward";
  normArg(norm, op);
  const S = stftMatrix;
  if (S.ndim < 2) throw new MlxError("[istft] Input must have at least two dimensions (freq, frames).", 1);
  const onesided = options.onesided ?? true;
  const nFreq = S.shape[S.ndim - 2]!;
  const nFft = positiveInt(options.nFft ?? (onesided ? 2 * (nFreq - 1) : nFreq), "n_fft", op);
  const hop = positiveInt(options.hopLength ?? Math.floor(nFft / 4), "hop_length", op);
  const stream = options.stream;
  return tidy(() => {
    const w = fullWindow(options.window, options.winLength, nFft, op, stream);
    const nFrames = S.shape[S.ndim - 1]!;
    const framesC = swapaxes(S, -1, -2, { stream });
    const frames = onesided ? irfft(framesC, { n: nFft, norm, stream }) : real(ifft(framesC, { n: nFft, norm, stream }), { stream });
    const windowed = multiply(frames, w, { stream });
    const total = nFft + hop * (nFrames - 1);
    const batch = S.shape.slice(0, -2);
    const b = batch.reduce((p, d) => p * d, 1);
    const idx = reshape(frameIndex(nFrames, hop, nFft, stream), [-1], { stream });
    const flat = reshape(windowed, [b, nFrames * nFft], { stream });
    const ola = zeros([b, total], { dtype: float32, stream }).at(sliceAll, idx).add(flat);
    const wsq = reshape(broadcastFrames(square(w, { stream }), nFrames, stream), [-1], { stream });
    const env = zeros([total], { dtype: float32, stream }).at(idx).add(wsq);
    let y = divide(ola, maximum(env, 1e-8, { stream }), { stream });
    const start = options.center ?? true ? Math.floor(nFft / 2) : 0;
    let len: number;
    if (options.length !== undefined && options.length !== null) {
      if (!Number.isInteger(options.length) || options.length < 0) throw new MlxError("[istft] length must be non-negative.", 1);
      len = options.length;
    } else {
      len = Math.max(0, total - 2 * start);
    }
    const avail = Math.max(0, Math.min(len, total - start));
    y = y.index(sliceAll, slOp(start, start + avail));
    if (avail < len) y = pad(y, [[0, 0], [0, len - avail]], "constant", 0, { stream });
    return reshape(y, [...batch, len], { stream });
  });
}

function broadcastFrames(w: MxArray, frames: number, stream?: StreamOrDevice): MxArray {
  return broadcastToOp(expandDims(w, 0, { stream }), [frames, w.shape[0]!], { stream });
}
