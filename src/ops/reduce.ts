// Reductions: all, any, sum, prod, min, max, mean, median, var, std, logsumexp, countNonzero,
// argmin, argmax, and the comparisons built on them (arrayEqual, allclose). Functions in `mx`
// and methods on mx.Array. Kernels and dtype rules are in engine/prims/reduce.zig; mean, var,
// std, logsumexp and countNonzero are composed here exactly as MLX composes them (mlx/ops.cpp).
import { checkHandle, lib } from "../../ffi/lib";
import { ARG_OP, REDUCE_OP } from "../../ffi/symbols";
import { array, astype, MxArray, scalarHandle } from "../array";
import { streamArg, type StreamOrDevice } from "../device";
import { Dtype, float32, float64, int32 } from "../dtype";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import {
  add, equal, exp, imag, isclose, isinf, isnan, log, logicalAnd, logicalOr, maximum, multiply, notEqual, real, sqrt,
  square, subtract, where, divide,
} from "./elementwise";
import { broadcastAgainst } from "./follow";
import { reshape } from "./shape";
import { inShapelessTrace } from "../trace_flags";
import type { ArrayOrScalar } from "./util";

/** Options of the axis-taking reductions. `axis`: a number, a list, or none (every axis). */
export interface ReduceOptions {
  axis?: number | readonly number[] | null;
  keepdims?: boolean;
  stream?: StreamOrDevice;
}

/** Options of var and std: `ddof` is the delta degrees of freedom (the divisor is N - ddof). */
export interface VarOptions extends ReduceOptions {
  ddof?: number;
}

/** Options of argmin and argmax: one axis, or none (the flattened array). */
export interface ArgReduceOptions {
  axis?: number | null;
  keepdims?: boolean;
  stream?: StreamOrDevice;
}

type OptionsArg<T> = T | number | readonly number[] | null | undefined;

function opts<T extends ReduceOptions | ArgReduceOptions>(o: OptionsArg<T>): T {
  if (o === undefined || o === null) return {} as T;
  if (typeof o === "number" || Array.isArray(o)) return { axis: o } as T;
  return o as T;
}

function asArray(a: ArrayOrScalar, op: string): MxArray {
  if (a instanceof MxArray) return a;
  if (typeof a === "number" || typeof a === "boolean" || typeof a === "bigint" || (typeof a === "object" && a !== null)) {
    return array(a as never);
  }
  throw new MlxError(`[${op}] Expected an array or a scalar, got ${a === null ? "null" : typeof a}.`, 1);
}

/** The axes as given (none: every axis), checked to be integers. */
function axesList(axis: number | readonly number[] | null | undefined, ndim: number, op: string): number[] {
  const list = axis === undefined || axis === null ? Array.from({ length: ndim }, (_, i) => i) : typeof axis === "number" ? [axis] : [...axis];
  for (const ax of list) {
    if (!Number.isInteger(ax)) throw new MlxError(`[${op}] Axis must be an integer, got ${ax}.`, 1);
  }
  return list;
}

function reduceOp(op: keyof typeof REDUCE_OP, a: ArrayOrScalar, o: OptionsArg<ReduceOptions>): MxArray {
  const x = asArray(a, op);
  const { axis, keepdims = false, stream } = opts(o);
  const axes = Int32Array.from(axesList(axis, x.ndim, op));
  return new MxArray(checkHandle(lib.mlxb_reduce(REDUCE_OP[op], x.handle(op), axes, axes.length, keepdims ? 1 : 0, streamArg(stream))));
}

/**
 * True where every element over the axes is nonzero (bool).
 * @example mx.all(mx.array([[true, false], [true, true]]), { axis: 1 }) // array([false, true], dtype=bool)
 */
export function all(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  return reduceOp("all", a, options);
}

/**
 * True where any element over the axes is nonzero (bool).
 * @example mx.any(mx.array([0, 0, 3])) // array(true, dtype=bool)
 */
export function any(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  return reduceOp("any", a, options);
}

/**
 * The sum over the axes. Integers of at most 4 bytes sum in int32 (unsigned: uint32), 8-byte
 * integers keep their type, bool gives int32; float16/bfloat16 accumulate in float32.
 * @example mx.sum(mx.array([[1, 2], [3, 4]]), { axis: 0 }) // array([4, 6], dtype=int32)
 */
export function sum(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  return reduceOp("sum", a, options);
}

/**
 * The product over the axes (output dtypes as `sum`).
 * @example mx.prod(mx.array([1, 2, 3, 4])) // array(24, dtype=int32)
 */
export function prod(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  return reduceOp("prod", a, options);
}

/**
 * The minimum over the axes (NaN wins). Reducing an axis of size 0 is an error.
 * @example mx.min(mx.array([3, 1, 2])) // array(1, dtype=int32)
 */
export function min(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  return reduceOp("min", a, options);
}

/**
 * The maximum over the axes (NaN wins). Reducing an axis of size 0 is an error.
 * @example mx.max(mx.array([[1, 5], [7, 2]]), { axis: -1 }) // array([5, 7], dtype=int32)
 */
export function max(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  return reduceOp("max", a, options);
}

function argReduce(op: keyof typeof ARG_OP, a: ArrayOrScalar, o: OptionsArg<ArgReduceOptions>): MxArray {
  const x = asArray(a, op);
  const { axis, keepdims = false, stream } = opts(o);
  if (Array.isArray(axis)) throw new MlxError(`[${op}] axis must be a single integer or none.`, 1);
  const has = axis !== undefined && axis !== null;
  if (has && !Number.isInteger(axis)) throw new MlxError(`[${op}] Axis must be an integer, got ${axis}.`, 1);
  return new MxArray(checkHandle(lib.mlxb_arg_reduce(ARG_OP[op], x.handle(op), has ? (axis as number) : 0, has ? 1 : 0, keepdims ? 1 : 0, streamArg(stream))));
}

/**
 * Indices of the minimum along `axis` (none: of the flattened array), as uint32; the first
 * one on ties, and the first NaN if there is one.
 * @example mx.argmin(mx.array([3, 1, 2])) // array(1, dtype=uint32)
 */
export function argmin(a: ArrayOrScalar, options?: OptionsArg<ArgReduceOptions>): MxArray {
  return argReduce("argmin", a, options);
}

/**
 * Indices of the maximum along `axis` (none: of the flattened array), as uint32; the first
 * one on ties, and the first NaN if there is one.
 * @example mx.argmax(mx.array([[1, 5], [7, 2]]), { axis: 1 }) // array([1, 0], dtype=uint32)
 */
export function argmax(a: ArrayOrScalar, options?: OptionsArg<ArgReduceOptions>): MxArray {
  return argReduce("argmax", a, options);
}

function atLeastFloat(d: Dtype): Dtype {
  return d.isFloating || d.isComplex ? d : float32;
}

function scalar(v: number, dtype: Dtype): MxArray {
  return new MxArray(scalarHandle(v, dtype));
}

/** MLX's number_of_elements over the axes (duplicates counted, as MLX), as a double. */
function numberOfElements(x: MxArray, axes: readonly number[]): number {
  let n = 1;
  for (const ax of axes) n *= x.shape[((ax % x.ndim) + x.ndim) % x.ndim]!;
  return n;
}

/**
 * The element count over the axes as a float64 array built from x's graph (x's shape reduced
 * over the axes, every entry the count): used under a shapeless compile trace, where a count
 * computed in JS would stay fixed at the traced shape. null when axes repeat (MLX counts a
 * repeated axis twice: the JS count is kept).
 */
function graphCount(x: MxArray, axes: readonly number[], keepdims: boolean, stream?: StreamOrDevice): MxArray | null {
  const norm = axes.map((ax) => ((ax % x.ndim) + x.ndim) % x.ndim);
  if (new Set(norm).size !== norm.length) return null;
  return sum(broadcastAgainst(scalar(1, float64), x, { stream }), { axis: norm, keepdims, stream });
}

/** 1/count over the axes in dtype: a constant, or under a shapeless trace a graph of x. */
function inverseCount(x: MxArray, axes: readonly number[], keepdims: boolean, dtype: Dtype, stream?: StreamOrDevice): MxArray {
  const g = inShapelessTrace() ? graphCount(x, axes, keepdims, stream) : null;
  if (g === null) return scalar(1 / numberOfElements(x, axes), dtype);
  return astype(divide(1, g, { stream }), dtype, { stream });
}

function checkMeanAxes(x: MxArray, axes: readonly number[]): void {
  for (const ax of axes) {
    if (ax < -x.ndim || ax >= x.ndim) throw new MlxError(`[mean] axis ${ax} is out of bounds for array with ${x.ndim} dimensions.`, 1);
  }
}

/**
 * The mean over the axes: sum times 1/N, in at least float32.
 * @example mx.mean(mx.array([[1, 2], [3, 4]]), { axis: 0 }) // array([2, 3], dtype=float32)
 */
export function mean(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  const x = asArray(a, "mean");
  const o = opts(options);
  const axes = axesList(o.axis, x.ndim, "mean");
  checkMeanAxes(x, axes);
  const dtype = atLeastFloat(x.dtype);
  const s = { stream: o.stream };
  return tidy(() => {
    const normalizer = inverseCount(x, axes, o.keepdims === true, dtype, o.stream);
    return multiply(sum(x, { axis: axes, keepdims: o.keepdims, stream: o.stream }), normalizer, s);
  });
}

/**
 * The variance over the axes: the mean squared deviation, divided by max(N - ddof, 0) when
 * `ddof` is set. complex64 gives float32: the mean of |a - mean|^2, the squared deviation taken
 * as re^2 + im^2 (MLX 0.32.4's result, bit for bit).
 * @example mx.variance(mx.array([1, 2, 3, 4])) // array(1.25, dtype=float32)
 */
export function variance(a: ArrayOrScalar, options?: OptionsArg<VarOptions>): MxArray {
  const x = asArray(a, "var");
  const o = opts(options);
  const ddof = o.ddof ?? 0;
  if (!Number.isInteger(ddof)) throw new MlxError(`[var] ddof must be an integer, got ${ddof}.`, 1);
  const axes = axesList(o.axis, x.ndim, "var");
  const dtype = x.dtype.isComplex ? float32 : atLeastFloat(x.dtype);
  const s = { stream: o.stream };
  return tidy(() => {
    const mu = mean(x, { axis: axes, keepdims: true, stream: o.stream });
    const d = subtract(x, mu, s);
    const sq = x.dtype.isComplex ? add(square(real(d, s), s), square(imag(d, s), s), s) : square(d, s);
    const v = sum(sq, { axis: axes, keepdims: o.keepdims, stream: o.stream });
    const n = numberOfElements(x, axes);
    if (ddof !== 0) {
      const g = inShapelessTrace() ? graphCount(x, axes, o.keepdims === true, o.stream) : null;
      const count = g === null ? scalar(n, dtype) : astype(g, dtype, s);
      const normalizer = maximum(subtract(count, scalar(ddof, dtype), s), scalar(0, dtype), s);
      return divide(v, normalizer, s);
    }
    return multiply(v, inverseCount(x, axes, o.keepdims === true, dtype, o.stream), s);
  });
}

export { variance as var };

/**
 * The standard deviation over the axes: sqrt(var).
 * @example mx.std(mx.array([1, 2, 3, 4]), { ddof: 1 })
 */
export function std(a: ArrayOrScalar, options?: OptionsArg<VarOptions>): MxArray {
  const o = opts(options);
  return tidy(() => sqrt(variance(a, o), { stream: o.stream }));
}

/**
 * The median over the axes (the mean of the two middle values for an even count), in at least
 * float32; NaN when any value is NaN. complex64 values are ordered by real part, then
 * imaginary part, as mx.sort orders them.
 * @example mx.median(mx.array([3, 1, 4, 2])) // array(2.5, dtype=float32)
 */
export function median(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  const x = asArray(a, "median");
  const { axis, keepdims = false, stream } = opts(options);
  const axes = Int32Array.from(axesList(axis, x.ndim, "median"));
  return new MxArray(checkHandle(lib.mlxb_median(x.handle("median"), axes, axes.length, keepdims ? 1 : 0, streamArg(stream))));
}

/**
 * log(sum(exp(a))) over the axes, computed stably (the maximum is subtracted first).
 * @example mx.logsumexp(mx.array([0, 0])) // array(0.693147, dtype=float32)
 */
export function logsumexp(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  const x = asArray(a, "logsumexp");
  const o = opts(options);
  const axes = axesList(o.axis, x.ndim, "logsumexp");
  if (x.size === 0) throw new MlxError("[logsumexp] Received empty array.", 1);
  if (x.ndim === 0 && axes.length > 0) throw new MlxError("[logsumexp] Received non-empty axes for array with 0 dimensions.", 1);
  const s = { stream: o.stream };
  // MLX's fused LogSumExp kernel takes the last-axis case (computed on a float copy); the rest
  // is composed on the input as is (so bool inputs subtract as bools, as in MLX).
  let lastAxis = axes.length > 0 && (axes[axes.length - 1] === x.ndim - 1 || axes[axes.length - 1] === -1);
  for (let i = axes.length - 2; lastAxis && i >= 0; i--) {
    if (axes[i]! + 1 !== axes[i + 1] || x.shape[axes[i]!] !== 1) lastAxis = false;
  }
  if (lastAxis && !x.dtype.isComplex) {
    return new MxArray(checkHandle(lib.mlxb_logsumexp_last(x.handle("logsumexp"), o.keepdims === true ? 1 : 0, streamArg(o.stream))));
  }
  return tidy(() => {
    // max(a, keepdims) -> log(sum(exp(a - max))) + max -> where(isinf(max), max, ...), as MLX; the
    // last three steps run as one kernel (with the C library's log, as MLX's).
    const maxKeep = max(x, { axis: axes, keepdims: true, stream: o.stream });
    const total = sum(exp(subtract(x, maxKeep, s), s), { axis: axes, keepdims: o.keepdims, stream: o.stream });
    const maxOut = o.keepdims === true ? maxKeep : reshape(maxKeep, total.shape, s);
    if (!x.dtype.isComplex) return new MxArray(checkHandle(lib.mlxb_logsumexp_combine(total.handle("logsumexp"), maxOut.handle("logsumexp"), streamArg(o.stream))));
    return where(isinf(maxOut, s), maxOut, add(log(total, s), maxOut, s), s);
  });
}

/**
 * The number of nonzero elements over the axes (int32, as MLX).
 * @example mx.countNonzero(mx.array([[0, 1], [2, 0]]), { axis: 0 }) // array([1, 1], dtype=int32)
 */
export function countNonzero(a: ArrayOrScalar, options?: OptionsArg<ReduceOptions>): MxArray {
  const x = asArray(a, "count_nonzero");
  const o = opts(options);
  return tidy(() => sum(notEqual(x, 0, { stream: o.stream }), o).astype(int32, { stream: o.stream }));
}

/**
 * True when a and b have the same shape and equal elements (after promotion); NaNs are equal
 * to each other when `equalNan` is set. Different shapes give false, not an error.
 * @example mx.arrayEqual(mx.array([1, 2]), mx.array([1.0, 2.0])) // array(true, dtype=bool)
 */
export function arrayEqual(a: ArrayOrScalar, b: ArrayOrScalar, options: { equalNan?: boolean; stream?: StreamOrDevice } = {}): MxArray {
  const x = asArray(a, "array_equal");
  const y = asArray(b, "array_equal");
  const s = { stream: options.stream };
  return tidy(() => {
    const xs = x.shape;
    const ys = y.shape;
    if (xs.length !== ys.length || xs.some((d, i) => d !== ys[i])) return array(false);
    let eq = equal(x, y, s);
    const inexact = x.dtype.isFloating || x.dtype.isComplex || y.dtype.isFloating || y.dtype.isComplex;
    if (options.equalNan === true && inexact) eq = logicalOr(eq, logicalAnd(isnan(x, s), isnan(y, s), s), s);
    return all(eq, s);
  });
}

/**
 * True when every element of a is close to b: |a - b| <= atol + rtol * |b| (see `isclose`).
 * @example mx.allclose(mx.array([1, 2]), mx.array([1, 2.000001])) // array(true, dtype=bool)
 */
export function allclose(a: MxArray, b: MxArray, options: { rtol?: number; atol?: number; equalNan?: boolean; stream?: StreamOrDevice } = {}): MxArray {
  return tidy(() => all(isclose(a, b, options), { stream: options.stream }));
}

// ---------------------------------------------------------------------------------------------
// Methods on mx.Array

type ReduceMethod = (options?: OptionsArg<ReduceOptions>) => MxArray;
type VarMethod = (options?: OptionsArg<VarOptions>) => MxArray;
type ArgMethod = (options?: OptionsArg<ArgReduceOptions>) => MxArray;

declare module "../array" {
  interface MxArray {
    /** mx.all over this array. */ all: ReduceMethod;
    /** mx.any over this array. */ any: ReduceMethod;
    /** mx.sum over this array. */ sum: ReduceMethod;
    /** mx.prod over this array. */ prod: ReduceMethod;
    /** mx.min over this array. */ min: ReduceMethod;
    /** mx.max over this array. */ max: ReduceMethod;
    /** mx.mean over this array. */ mean: ReduceMethod;
    /** mx.logsumexp over this array. */ logsumexp: ReduceMethod;
    /** mx.var over this array. */ var: VarMethod;
    /** mx.std over this array. */ std: VarMethod;
    /** mx.argmin over this array. */ argmin: ArgMethod;
    /** mx.argmax over this array. */ argmax: ArgMethod;
  }
}

const methods: Record<string, (a: MxArray, o?: never) => MxArray> = {
  all, any, sum, prod, min, max, mean, logsumexp, var: variance, std, argmin, argmax,
};
const proto = MxArray.prototype as unknown as Record<string, unknown>;
for (const [name, f] of Object.entries(methods)) {
  proto[name] = function (this: MxArray, o?: never) {
    return f(this, o);
  };
}
