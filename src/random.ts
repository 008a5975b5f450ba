// mx.random: keys, the global key state, and the samplers, bit for bit as MLX 0.32.4. The one
// kernel is the engine's `bits` primitive (Threefry-2x32-20 in MLX's counter layout,
// engine/prims/random.zig); every sampler is composed from graph ops exactly as mlx/random.cpp
// composes it (same constants, dtypes and order of operations), so results match MLX's CPU
// results bit for bit.
import { checkHandle, lib } from "../ffi/lib";
import { array, MxArray, packShape } from "./array";
import { broadcastShapes } from "./creation";
import { streamArg, type StreamOrDevice } from "./device";
import { bfloat16, complex64, Dtype, float16, float32, int32, toDtype, type DtypeLike } from "./dtype";
import { MlxError } from "./errors";
import { keep, tidy } from "./memory";
import {
  abs, add, argmax, argsort, divide, erf, erfinv, expandDims, floor, less, log, log1p, maximum, minimum, multiply, negative,
  reshape, searchsorted, sign, softmax, split as splitArray, squeeze, subtract, take, view, cumsum, matmul, sqrt,
} from "./ops/index";
import { svd } from "./linalg";
import type { ArrayOrScalar } from "./ops/util";

/** What a shape argument may be: a list of dimensions or one dimension. */
export type ShapeLike = number | readonly number[];

/** Options every sampler takes. */
export interface RandomOptions {
  /** The PRNG key (a uint32 array of shape [2], from `key` or `split`); default: the global key is split. */
  key?: MxArray;
  stream?: StreamOrDevice;
}

// ---------------------------------------------------------------------------------------------
// Keys and the global state

function seedValue(seed: number | bigint, op: string): bigint {
  const b = typeof seed === "bigint" ? seed : Number.isInteger(seed) ? BigInt(seed) : null;
  if (b === null || b < 0n || b >= 2n ** 64n) {
    throw new MlxError(`[${op}] The seed must be an integer in [0, 2^64), got ${String(seed)}.`, 1);
  }
  return b;
}

/**
 * A PRNG key from a seed: a uint32 array `[seed >> 32, seed & 0xffffffff]` (MLX's layout).
 * @example mx.random.key(0) // array([0, 0], dtype=uint32)
 */
export function key(seed: number | bigint): MxArray {
  const s = seedValue(seed, "key");
  return array(new Uint32Array([Number(s >> 32n), Number(s & 0xffffffffn)]));
}

/**
 * The global key state, as MLX's `mx.random.state`: a one-element list holding the current key.
 * `seed` replaces it; every sampler called without a `key` splits it (the state takes the
 * first half of the split, the call uses the second).
 */
export const state: MxArray[] = [keep(key(BigInt(Date.now())))];

/**
 * Seed the global key: `mx.random.seed(s)` makes the state `mx.random.key(s)`.
 * @example mx.random.seed(42); mx.random.uniform() // the same value every run
 */
export function seed(s: number | bigint): void {
  state[0] = keep(key(seedValue(s, "seed")));
}

/** The next subkey of the global state (MLX's KeySequence::next): split, keep the first half. */
function nextKey(stream?: StreamOrDevice): MxArray {
  const [k1, k2] = splitPair(state[0]!, stream);
  state[0] = keep(k1);
  return k2;
}

/** `bits(shape, width, key)`: raw random bits (uint32 for width 4, uint16 for 2, uint8 for 1). */
function bits(shape: readonly number[], width: number, k: MxArray | undefined, stream?: StreamOrDevice): MxArray {
  const theKey = k ?? nextKey(stream);
  const { dims, ndim } = packShape(shape, "bits");
  return new MxArray(checkHandle(lib.mlxb_random_bits(theKey.handle("bits"), dims, ndim, width, streamArg(stream))));
}

function splitPair(k: MxArray, stream?: StreamOrDevice): [MxArray, MxArray] {
  return tidy(() => {
    const parts = splitArray(split(k, 2, { stream }), 2, 0, { stream });
    return [reshape(parts[0]!, [2], { stream }), reshape(parts[1]!, [2], { stream })] as [MxArray, MxArray];
  });
}

/**
 * Split a key into `num` new keys: an array of shape [num, 2].
 * @example const [k1, k2] = mx.split(mx.random.split(mx.random.key(0)), 2)
 */
export function split(k: MxArray, num: number | { stream?: StreamOrDevice } = 2, options: { stream?: StreamOrDevice } = {}): MxArray {
  if (typeof num === "object") return split(k, 2, num);
  if (!Number.isInteger(num)) throw new MlxError(`[split] num must be an integer, got ${String(num)}.`, 1);
  return bits([num, 2], 4, k, options.stream);
}

// ---------------------------------------------------------------------------------------------
// Argument handling: positional arguments, or a trailing options object with the same names.

function isOptions(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !(v instanceof MxArray) && !(v instanceof Dtype) && !Array.isArray(v) &&
    !("re" in v && "im" in v);
}

/** Positional values by name; a trailing plain object supplies the rest (and key/stream). */
function args<T extends object>(values: unknown[], names: readonly string[]): T {
  let last = values.length;
  while (last > 0 && values[last - 1] === undefined) last--;
  const out: Record<string, unknown> = {};
  let opts: Record<string, unknown> = {};
  if (last > 0 && isOptions(values[last - 1])) {
    opts = values[last - 1] as Record<string, unknown>;
    last--;
  }
  for (let i = 0; i < last && i < names.length; i++) if (values[i] !== undefined) out[names[i]!] = values[i];
  for (const [k, v] of Object.entries(opts)) if (out[k] === undefined) out[k] = v;
  return out as T;
}

function shapeOf(s: ShapeLike | undefined | null, fallback: readonly number[], op: string): number[] {
  if (s === undefined || s === null) return [...fallback];
  const list = typeof s === "number" ? [s] : s;
  if (!Array.isArray(list)) throw new MlxError(`[${op}] Expected a shape (a number or a list of numbers).`, 1);
  return [...list];
}

function dtypeOf(d: DtypeLike | undefined | null, fallback: Dtype, op: string): Dtype {
  return d === undefined || d === null ? fallback : toDtype(d, op);
}

/** A Python scalar as MLX's binding makes it an array (int32 for whole numbers, float32 otherwise). */
function arr(v: ArrayOrScalar): MxArray {
  return v instanceof MxArray ? v : array(v as number);
}

const floating = (d: Dtype) => d.isFloating;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const fmt = (s: readonly number[]) => `(${s.join(",")})`;

/** The largest value below 1 in `dtype`, as a float32 scalar (MLX's `upper` of uniform). */
function belowOne(d: Dtype): number {
  if (d === float32) return 1 - 2 ** -24;
  if (d === float16) return 1 - 2 ** -11;
  if (d === bfloat16) return 1 - 2 ** -8;
  throw new MlxError("[uniform] Unsupported type.", 1);
}

const f32 = (v: number) => array(v, float32);

// ---------------------------------------------------------------------------------------------
// Samplers

/** Options of `uniform`. */
export interface UniformOptions extends RandomOptions {
  low?: ArrayOrScalar;
  high?: ArrayOrScalar;
  shape?: ShapeLike;
  dtype?: DtypeLike;
}

function uniformImpl(low: MxArray, high: MxArray, shape: number[], dtype: Dtype, k: MxArray | undefined, stream?: StreamOrDevice): MxArray {
  if (!floating(dtype)) throw new MlxError("[uniform] Can only generate uniform numbers with real floating point type.", 1);
  const o = { stream };
  const lo = low.astype(dtype, o);
  const hi = high.astype(dtype, o);
  const range = subtract(hi, lo, o);
  const outShape = broadcastShapes(shape, range.shape);
  if (!sameShape(outShape, shape)) {
    throw new MlxError(`[uniform] Cannot generate random values of shape ${fmt(shape)} from broadcasted shape ${fmt(outShape)}.`, 1);
  }
  const upper = f32(belowOne(dtype));
  let out = bits(shape, 4, k, stream);
  out = divide(out, f32(4294967295), o);
  out = minimum(out, upper, o).astype(dtype, o);
  return add(multiply(range, out, o), lo, o);
}

/**
 * Uniform samples in [low, high) (MLX: `uniform(low=0, high=1, shape=[], dtype=float32, key)`).
 * @example mx.random.uniform(0, 1, [2, 3], { key: mx.random.key(0) })
 * @example mx.random.uniform({ shape: [4], dtype: mx.float16 })
 */
export function uniform(
  low?: ArrayOrScalar | UniformOptions,
  high?: ArrayOrScalar | UniformOptions,
  shape?: ShapeLike | UniformOptions,
  dtype?: DtypeLike | UniformOptions,
  options?: UniformOptions,
): MxArray {
  const a = args<UniformOptions>([low, high, shape, dtype, options], ["low", "high", "shape", "dtype"]);
  return tidy(() => {
    const k = a.key ?? nextKey(a.stream);
    return uniformImpl(arr(a.low ?? 0), arr(a.high ?? 1), shapeOf(a.shape, [], "uniform"), dtypeOf(a.dtype, float32, "uniform"), k, a.stream);
  });
}

/** Options of `normal`. */
export interface NormalOptions extends RandomOptions {
  shape?: ShapeLike;
  dtype?: DtypeLike;
  loc?: ArrayOrScalar;
  scale?: ArrayOrScalar;
}

/**
 * Normal samples, `loc + scale * N(0, 1)` (MLX: `normal(shape=[], dtype=float32, loc=None,
 * scale=None, key)`); complex64 gives complex standard normal samples.
 * @example mx.random.normal([3], { key: mx.random.key(1) })
 * @example mx.random.normal([2, 2], mx.float16, 5, 0.1)
 */
export function normal(
  shape?: ShapeLike | NormalOptions,
  dtype?: DtypeLike | NormalOptions,
  loc?: ArrayOrScalar | NormalOptions,
  scale?: ArrayOrScalar | NormalOptions,
  options?: NormalOptions,
): MxArray {
  const a = args<NormalOptions>([shape, dtype, loc, scale, options], ["shape", "dtype", "loc", "scale"]);
  return tidy(() => {
    const k = a.key ?? nextKey(a.stream);
    const s = a.stream;
    const o = { stream: s };
    const d = dtypeOf(a.dtype, float32, "normal");
    const sh = shapeOf(a.shape, [], "normal");
    const low = f32(-(1 - 2 ** -24));
    const high = f32(1);
    if (d === complex64) {
      let samples = erfinv(uniformImpl(low, high, [...sh, 2], float32, k, s), o);
      samples = squeeze(view(samples, complex64, o), -1, o);
      if (a.scale !== undefined && a.scale !== null) samples = multiply(arr(a.scale), samples, o);
      if (a.loc !== undefined && a.loc !== null) samples = add(arr(a.loc), samples, o);
      return samples;
    }
    if (!floating(d)) throw new MlxError("[normal] Only floating point and complex64 types are supported.", 1);
    let samples = uniformImpl(low, high, sh, float32, k, s);
    let appliedScale = array(Math.SQRT2, d);
    if (a.scale !== undefined && a.scale !== null) appliedScale = multiply(appliedScale, arr(a.scale).astype(d, o), o);
    samples = erfinv(samples, o).astype(d, o);
    samples = multiply(appliedScale, samples, o);
    if (a.loc !== undefined && a.loc !== null) samples = add(arr(a.loc).astype(d, o), samples, o);
    return samples;
  });
}

/** Options of `randint`. */
export interface RandintOptions extends RandomOptions {
  shape?: ShapeLike;
  dtype?: DtypeLike;
}

/**
 * Random integers in [low, high) (MLX: `randint(low, high, shape=[], dtype=int32, key)`), as
 * MLX 0.32.4 draws them: the floor of a float32 uniform sample, clamped below by `low`.
 * @example mx.random.randint(0, 10, [5], { key: mx.random.key(0) })
 */
export function randint(
  low: ArrayOrScalar,
  high: ArrayOrScalar,
  shape?: ShapeLike | RandintOptions,
  dtype?: DtypeLike | RandintOptions,
  options?: RandintOptions,
): MxArray {
  const a = args<RandintOptions>([shape, dtype, options], ["shape", "dtype"]);
  const d = dtypeOf(a.dtype, int32, "randint");
  return tidy(() => {
    const k = a.key ?? nextKey(a.stream);
    if (d.isFloating || d.isComplex) {
      throw new MlxError("[randint] randint only accepts integer dtypes and bool.", 1);
    }
    const o = { stream: a.stream };
    const lo = arr(low);
    const u = uniformImpl(lo, arr(high), shapeOf(a.shape, [], "randint"), float32, k, a.stream);
    return maximum(floor(u, o), lo, o).astype(d, o);
  });
}

/** Options of `bernoulli`. */
export interface BernoulliOptions extends RandomOptions {
  p?: ArrayOrScalar;
  shape?: ShapeLike | null;
}

/**
 * Bernoulli samples (bool) with probability `p` (MLX: `bernoulli(p=0.5, shape=None, key)`;
 * the shape defaults to p's).
 * @example mx.random.bernoulli(0.3, [4], { key: mx.random.key(0) })
 */
export function bernoulli(p?: ArrayOrScalar | BernoulliOptions, shape?: ShapeLike | null | BernoulliOptions, options?: BernoulliOptions): MxArray {
  const a = args<BernoulliOptions>([p, shape, options], ["p", "shape"]);
  return tidy(() => {
    const k = a.key ?? nextKey(a.stream);
    const pa = arr(a.p ?? 0.5);
    if (!floating(pa.dtype)) throw new MlxError("[bernoulli] bernoulli probability `p` must be a float type.", 1);
    const sh = shapeOf(a.shape, pa.shape, "bernoulli");
    const o = { stream: a.stream };
    const res = less(bits(sh, 4, k, a.stream), multiply(pa, f32(4294967808), o), o);
    if (!sameShape(res.shape, sh)) throw new MlxError("[bernoulli] shape of `p` is incompatible with argument `shape`.", 1);
    return res;
  });
}

/** Options of `truncatedNormal`. */
export interface TruncatedNormalOptions extends RandomOptions {
  shape?: ShapeLike | null;
  dtype?: DtypeLike;
}

/**
 * Normal samples truncated to [lower, upper] (MLX: `truncated_normal(lower, upper, shape=None,
 * dtype=float32, key)`; the shape defaults to the bounds' broadcast shape).
 * @example mx.random.truncatedNormal(-1, 1, [3], { key: mx.random.key(0) })
 */
export function truncatedNormal(
  lower: ArrayOrScalar,
  upper: ArrayOrScalar,
  shape?: ShapeLike | null | TruncatedNormalOptions,
  dtype?: DtypeLike | TruncatedNormalOptions,
  options?: TruncatedNormalOptions,
): MxArray {
  const a = args<TruncatedNormalOptions>([shape, dtype, options], ["shape", "dtype"]);
  return tidy(() => {
    const k = a.key ?? nextKey(a.stream);
    const lowerA = arr(lower);
    const upperA = arr(upper);
    const sh = shapeOf(a.shape, broadcastShapes(lowerA.shape, upperA.shape), "truncated_normal");
    const d = dtypeOf(a.dtype, float32, "truncated_normal");
    if (!floating(d)) throw new MlxError("[trunc_normal] trunc_normal only accepts floating point dtypes.", 1);
    const o = { stream: a.stream };
    const sqrt2 = array(Math.SQRT2, d);
    const lowerT = lowerA.astype(d, o);
    const upperT = upperA.astype(d, o);
    const lo = erf(divide(lowerT, sqrt2, o), o);
    const hi = erf(divide(upperT, sqrt2, o), o);
    const u = uniformImpl(lo, hi, sh, d, k, a.stream);
    const out = multiply(sqrt2, erfinv(u, o), o);
    return maximum(minimum(upperT, out, o), lowerT, o);
  });
}

/** Options of `gumbel`. */
export interface GumbelOptions extends RandomOptions {
  shape?: ShapeLike;
  dtype?: DtypeLike;
}

function gumbelImpl(shape: number[], d: Dtype, k: MxArray, stream?: StreamOrDevice): MxArray {
  const o = { stream };
  const u = uniformImpl(array(0, d), array(1, d), shape, d, k, stream);
  return negative(log(negative(log(u, o), o), o), o);
}

/**
 * Gumbel samples, `-log(-log(uniform))` (MLX: `gumbel(shape=[], dtype=float32, key)`).
 * @example mx.random.gumbel([3], { key: mx.random.key(0) })
 */
export function gumbel(shape?: ShapeLike | GumbelOptions, dtype?: DtypeLike | GumbelOptions, options?: GumbelOptions): MxArray {
  const a = args<GumbelOptions>([shape, dtype, options], ["shape", "dtype"]);
  return tidy(() => {
    const k = a.key ?? nextKey(a.stream);
    return gumbelImpl(shapeOf(a.shape, [], "gumbel"), dtypeOf(a.dtype, float32, "gumbel"), k, a.stream);
  });
}

/** Options of `categorical`. */
export interface CategoricalOptions extends RandomOptions {
  axis?: number;
  /** The output shape (it must broadcast with the logits' shape without `axis`). */
  shape?: ShapeLike | null;
  /** Draw this many samples per distribution (a new last axis). */
  numSamples?: number | null;
}

/**
 * Samples (uint32 indices) from the categorical distributions given by unnormalized `logits`
 * along `axis` (MLX: `categorical(logits, axis=-1, shape=None, num_samples=None, key)`): the
 * Gumbel-max trick, or for 1-D logits with a sample shape (`shape` or `numSamples`) the inverse
 * CDF (searchsorted of float32 uniform samples in the cumulative softmax), as MLX 0.32.4.
 * @example mx.random.categorical(mx.log(mx.array([0.2, 0.8])), { numSamples: 5, key: mx.random.key(0) })
 */
export function categorical(logits: MxArray, axis?: number | CategoricalOptions, options?: CategoricalOptions): MxArray {
  const a = args<CategoricalOptions>([axis, options], ["axis"]);
  return tidy(() => {
    const hasShape = a.shape !== undefined && a.shape !== null;
    const hasNum = a.numSamples !== undefined && a.numSamples !== null;
    if (hasShape && hasNum) throw new MlxError("[categorical] At most one of shape or num_samples can be specified.", 1);
    const k = a.key ?? nextKey(a.stream);
    const ax0 = a.axis ?? -1;
    const nd = logits.ndim;
    const ax = ax0 < 0 ? ax0 + nd : ax0;
    if (!Number.isInteger(ax0) || ax < 0 || ax >= nd) {
      throw new MlxError(`[categorical] Invalid axis ${ax0} for logits with ${nd} dimensions.`, 1);
    }
    const so = { stream: a.stream };
    // MLX 0.32.4: 1-D logits with a sample shape use the inverse CDF, searchsorted(cumsum(softmax(logits)), u).
    const inverseCdf = (sh: number[]) =>
      searchsorted(cumsum(softmax(logits, { axis: -1, stream: a.stream }), 0, so), uniformImpl(f32(0), f32(1), sh, float32, k, a.stream), "left", so);
    if (nd === 1 && hasShape) {
      const sh = shapeOf(a.shape, [], "categorical");
      return inverseCdf(sh);
    }
    if (nd === 1 && hasNum) {
      if (!Number.isInteger(a.numSamples!)) throw new MlxError(`[categorical] num_samples must be an integer, got ${a.numSamples}.`, 1);
      return inverseCdf([a.numSamples!]);
    }
    let lg = logits;
    let shape: number[];
    if (hasShape) {
      shape = shapeOf(a.shape, [], "categorical");
      const reduced = logits.shape.filter((_, i) => i !== ax);
      if (!sameShape(broadcastShapes(shape, reduced), shape)) {
        throw new MlxError(`[categorical] Requested shape ${fmt(shape)} is not broadcast compatible with reduced logits shape${fmt(reduced)}.`, 1);
      }
    } else if (hasNum) {
      const n = a.numSamples!;
      if (!Number.isInteger(n)) throw new MlxError(`[categorical] num_samples must be an integer, got ${n}.`, 1);
      lg = expandDims(logits, -1, { stream: a.stream });
      shape = lg.shape.filter((_, i) => i !== ax);
      shape[shape.length - 1] = n;
    } else {
      shape = logits.shape.filter((_, i) => i !== ax);
    }
    const offset = ax + shape.length - lg.ndim + 1;
    const gShape = [...shape];
    gShape.splice(offset, 0, lg.shape[ax]!);
    const g = gumbelImpl(gShape, float32, k, a.stream);
    return argmax(add(g, lg, { stream: a.stream }), { axis: offset, stream: a.stream });
  });
}

/** Options of `laplace`. */
export interface LaplaceOptions extends RandomOptions {
  shape?: ShapeLike;
  dtype?: DtypeLike;
  loc?: number;
  scale?: number;
}

/**
 * Laplace samples (MLX: `laplace(shape=[], dtype=float32, loc=0.0, scale=1.0, key)`).
 * @example mx.random.laplace([3], { loc: 1, scale: 2, key: mx.random.key(0) })
 */
export function laplace(
  shape?: ShapeLike | LaplaceOptions,
  dtype?: DtypeLike | LaplaceOptions,
  loc?: number | LaplaceOptions,
  scale?: number | LaplaceOptions,
  options?: LaplaceOptions,
): MxArray {
  const a = args<LaplaceOptions>([shape, dtype, loc, scale, options], ["shape", "dtype", "loc", "scale"]);
  return tidy(() => {
    const k = a.key ?? nextKey(a.stream);
    const d = dtypeOf(a.dtype, float32, "laplace");
    if (!floating(d)) throw new MlxError("[laplace] Only real floating point types are supported.", 1);
    const o = { stream: a.stream };
    // MLX takes loc and scale as C++ floats.
    const l = Math.fround(a.loc ?? 0);
    const sc = Math.fround(a.scale ?? 1);
    const low = f32(-(1 - 2 ** -24));
    let samples = uniformImpl(low, f32(1), shapeOf(a.shape, [], "laplace"), float32, k, a.stream);
    samples = multiply(sign(samples, o), log1p(multiply(array(-1, d), abs(samples, o), o), o), o);
    samples = samples.astype(d, o);
    if (sc !== 1) samples = multiply(array(sc, d), samples, o);
    if (l !== 0) samples = add(array(l, d), samples, o);
    return samples;
  });
}

/** Options of `permutation`. */
export interface PermutationOptions extends RandomOptions {
  axis?: number;
}

/**
 * A random permutation of `arange(x)` (x a number), or of `x`'s entries along `axis` (MLX:
 * `permutation(x, axis=0, key)`).
 * @example mx.random.permutation(5, { key: mx.random.key(0) })
 */
export function permutation(x: number | MxArray, axis?: number | PermutationOptions, options?: PermutationOptions): MxArray {
  const a = args<PermutationOptions>([axis, options], ["axis"]);
  return tidy(() => {
    const k = a.key ?? nextKey(a.stream);
    const perm = (n: number) => argsort(bits([n], 4, k, a.stream), -1, { stream: a.stream });
    if (typeof x === "number") {
      if (!Number.isInteger(x)) throw new MlxError(`[permutation] x must be an integer or an array, got ${x}.`, 1);
      return perm(x);
    }
    const ax0 = a.axis ?? 0;
    const ax = ax0 < 0 ? ax0 + x.ndim : ax0;
    if (!Number.isInteger(ax0) || ax < 0 || ax >= x.ndim) {
      throw new MlxError(`[permutation] Invalid axis ${ax0} for array with ${x.ndim} dimensions.`, 1);
    }
    return take(x, perm(x.shape[ax]!), ax0, { stream: a.stream });
  });
}

export interface MultivariateNormalOptions extends RandomOptions {
  shape?: ShapeLike;
  dtype?: DtypeLike;
}

/**
 * Jointly normal samples with the given mean (shape `(..., n)`) and covariance (`(..., n, n)`,
 * positive semi-definite): `mean + z · (U √S Vᵀ)` with `z` standard normal and U, S, Vᵀ the SVD
 * of the covariance, as MLX computes it (so the same key gives MLX's numbers up to the SVD's
 * rounding). The output shape is `shape`, the means' and the covariances' batch shapes broadcast,
 * then `n`. Only float32.
 * @example mx.random.multivariateNormal(mx.zeros([2]), mx.eye(2), [3], { key: mx.random.key(0) })
 */
export function multivariateNormal(
  mean: MxArray,
  cov: MxArray,
  shape?: ShapeLike | MultivariateNormalOptions,
  dtype?: DtypeLike | MultivariateNormalOptions,
  options?: MultivariateNormalOptions,
): MxArray {
  const a = args<MultivariateNormalOptions>([shape, dtype, options], ["shape", "dtype"]);
  return tidy(() => {
    const d = dtypeOf(a.dtype, float32, "multivariate_normal");
    if (d !== float32) throw new MlxError("[multivariate_normal] dtype must be float32.", 1);
    if (mean.ndim < 1) throw new MlxError("[multivariate_normal] mean must have at least one dimension.", 1);
    if (cov.ndim < 2) throw new MlxError("[multivariate_normal] cov must have at least two dimensions.", 1);
    const n = mean.shape[mean.ndim - 1]!;
    if (cov.shape[cov.ndim - 1] !== cov.shape[cov.ndim - 2]) throw new MlxError("[multivariate_normal] last two dimensions of cov must be equal.", 1);
    if (cov.shape[cov.ndim - 1] !== n) throw new MlxError("[multivariate_normal] mean and cov must have compatible shapes.", 1);
    const batch = broadcastShapes(broadcastShapes(mean.shape.slice(0, -1), cov.shape.slice(0, -2)), shapeOf(a.shape, [], "multivariate_normal"));
    const k = a.key ?? nextKey(a.stream);
    const o = { stream: a.stream };
    const samples = normal([...batch, n], float32, { key: k, stream: a.stream });
    const [u, sv, vt] = svd(cov.astype(float32, o), true, o);
    const std = matmul(multiply(u, expandDims(sqrt(sv, o), -2, o), o), vt, o).astype(d, o);
    return add(mean, squeeze(matmul(expandDims(samples, -2, o), std, o), -2, o), o);
  });
}
