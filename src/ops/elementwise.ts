// Elementwise ops: unary math, binary arithmetic, comparisons, logical and bitwise ops, where,
// clip. Functions in `mx` and methods on mx.Array; JS scalars are weakly typed as MLX types
// Python scalars (see ops/util.ts). Kernels and dtype rules are in engine/prims/elementwise.zig.
import { BINARY_OP, UNARY_OP, checkHandle, lib } from "../../ffi/lib";
import { array as mxArray, MxArray } from "../array";
import { float32 } from "../dtype";
import { streamArg, type StreamOrDevice } from "../device";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import { operands, release, type ArrayOrScalar } from "./util";

/** Options every elementwise op takes. */
export interface StreamOptions {
  stream?: StreamOrDevice;
}

function unaryOp(op: keyof typeof UNARY_OP, a: ArrayOrScalar, o?: StreamOptions): MxArray {
  const ops = operands([a], op);
  try {
    return new MxArray(checkHandle(lib.mlxb_unary(UNARY_OP[op], ops[0]!.h, streamArg(o?.stream))));
  } finally {
    release(ops);
  }
}

function binaryOp(op: keyof typeof BINARY_OP, a: ArrayOrScalar, b: ArrayOrScalar, o?: StreamOptions): MxArray {
  const ops = operands([a, b], op);
  try {
    return new MxArray(checkHandle(lib.mlxb_binary(BINARY_OP[op], ops[0]!.h, ops[1]!.h, streamArg(o?.stream))));
  } finally {
    release(ops);
  }
}


/** Absolute value (complex: the modulus, as float32). @example mx.abs(mx.array([0.5, 2])) */
export function abs(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("abs", a, options);
}

/** -1, 0 or 1 by sign (complex: z / |z|). @example mx.sign(mx.array([0.5, 2])) */
export function sign(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("sign", a, options);
}

/** -a. @example mx.negative(mx.array([0.5, 2])) */
export function negative(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("negative", a, options);
}

/** Rounds toward zero. @example mx.trunc(mx.array([0.5, 2])) */
export function trunc(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("trunc", a, options);
}

/** a * a. @example mx.square(mx.array([0.5, 2])) */
export function square(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("square", a, options);
}

/** Square root. @example mx.sqrt(mx.array([0.5, 2])) */
export function sqrt(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("sqrt", a, options);
}

/** 1 / sqrt(a). @example mx.rsqrt(mx.array([0.5, 2])) */
export function rsqrt(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("rsqrt", a, options);
}

/** 1 / a. @example mx.reciprocal(mx.array([0.5, 2])) */
export function reciprocal(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("reciprocal", a, options);
}

/** e^a. @example mx.exp(mx.array([0.5, 2])) */
export function exp(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("exp", a, options);
}

/** e^a - 1, accurate near 0. @example mx.expm1(mx.array([0.5, 2])) */
export function expm1(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("expm1", a, options);
}

/** The error function. @example mx.erf(mx.array([0.5, 2])) */
export function erf(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("erf", a, options);
}

/** The inverse error function. @example mx.erfinv(mx.array([0.5, 2])) */
export function erfinv(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("erfinv", a, options);
}

/** Sine. @example mx.sin(mx.array([0.5, 2])) */
export function sin(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("sin", a, options);
}

/** Cosine. @example mx.cos(mx.array([0.5, 2])) */
export function cos(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("cos", a, options);
}

/** Tangent. @example mx.tan(mx.array([0.5, 2])) */
export function tan(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("tan", a, options);
}

/** Inverse sine. @example mx.arcsin(mx.array([0.5, 2])) */
export function arcsin(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("arcsin", a, options);
}

/** Inverse cosine. @example mx.arccos(mx.array([0.5, 2])) */
export function arccos(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("arccos", a, options);
}

/** Inverse tangent. @example mx.arctan(mx.array([0.5, 2])) */
export function arctan(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("arctan", a, options);
}

/** Hyperbolic sine. @example mx.sinh(mx.array([0.5, 2])) */
export function sinh(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("sinh", a, options);
}

/** Hyperbolic cosine. @example mx.cosh(mx.array([0.5, 2])) */
export function cosh(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("cosh", a, options);
}

/** Hyperbolic tangent. @example mx.tanh(mx.array([0.5, 2])) */
export function tanh(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("tanh", a, options);
}

/** Inverse hyperbolic sine. @example mx.arcsinh(mx.array([0.5, 2])) */
export function arcsinh(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("arcsinh", a, options);
}

/** Inverse hyperbolic cosine. @example mx.arccosh(mx.array([0.5, 2])) */
export function arccosh(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("arccosh", a, options);
}

/** Inverse hyperbolic tangent. @example mx.arctanh(mx.array([0.5, 2])) */
export function arctanh(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("arctanh", a, options);
}

/** Radians to degrees. @example mx.degrees(mx.array([0.5, 2])) */
export function degrees(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("degrees", a, options);
}

/** Degrees to radians. @example mx.radians(mx.array([0.5, 2])) */
export function radians(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("radians", a, options);
}

/** Natural logarithm. @example mx.log(mx.array([0.5, 2])) */
export function log(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("log", a, options);
}

/** Base-2 logarithm. @example mx.log2(mx.array([0.5, 2])) */
export function log2(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("log2", a, options);
}

/** Base-10 logarithm. @example mx.log10(mx.array([0.5, 2])) */
export function log10(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("log10", a, options);
}

/** log(1 + a), accurate near 0. @example mx.log1p(mx.array([0.5, 2])) */
export function log1p(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("log1p", a, options);
}

/** 1 / (1 + e^-a). @example mx.sigmoid(mx.array([0.5, 2])) */
export function sigmoid(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("sigmoid", a, options);
}

/** Rounds down. @example mx.floor(mx.array([0.5, 2])) */
export function floor(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("floor", a, options);
}

/** Rounds up. @example mx.ceil(mx.array([0.5, 2])) */
export function ceil(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("ceil", a, options);
}

/** Complex conjugate (other dtypes: unchanged). @example mx.conj(mx.array([0.5, 2])) */
export function conj(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("conj", a, options);
}

/** Real part. @example mx.real(mx.array([0.5, 2])) */
export function real(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("real", a, options);
}

/** Imaginary part (0 for real dtypes). @example mx.imag(mx.array([0.5, 2])) */
export function imag(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("imag", a, options);
}

/** True where a is NaN. @example mx.isnan(mx.array([0.5, 2])) */
export function isnan(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("isnan", a, options);
}

/** True where a is +-infinity. @example mx.isinf(mx.array([0.5, 2])) */
export function isinf(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("isinf", a, options);
}

/** True where a is neither infinite nor NaN. @example mx.isfinite(mx.array([0.5, 2])) */
export function isfinite(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("isfinite", a, options);
}

/** True where a is +infinity. @example mx.isposinf(mx.array([0.5, 2])) */
export function isposinf(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("isposinf", a, options);
}

/** True where a is -infinity. @example mx.isneginf(mx.array([0.5, 2])) */
export function isneginf(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("isneginf", a, options);
}

/** Logical not (nonzero is true). @example mx.logicalNot(mx.array([0.5, 2])) */
export function logicalNot(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("logical_not", a, options);
}

/** Bitwise not of integers and bools. @example mx.bitwiseInvert(mx.array([0.5, 2])) */
export function bitwiseInvert(a: ArrayOrScalar, options?: StreamOptions): MxArray {
  return unaryOp("bitwise_invert", a, options);
}

/** a + b. Broadcasts and promotes as MLX. @example mx.add(mx.array([1, 2]), 3) */
export function add(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("add", a, b, options);
}

/** a - b. Broadcasts and promotes as MLX. @example mx.subtract(mx.array([1, 2]), 3) */
export function subtract(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("subtract", a, b, options);
}

/** a * b. Broadcasts and promotes as MLX. @example mx.multiply(mx.array([1, 2]), 3) */
export function multiply(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("multiply", a, b, options);
}

/** a / b (integers give float32). Broadcasts and promotes as MLX. @example mx.divide(mx.array([1, 2]), 3) */
export function divide(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("divide", a, b, options);
}

/** floor(a / b); integer division for integers. Broadcasts and promotes as MLX. @example mx.floorDivide(mx.array([1, 2]), 3) */
export function floorDivide(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("floor_divide", a, b, options);
}

/** a mod b, with the sign of b (Python's rule). Broadcasts and promotes as MLX. @example mx.remainder(mx.array([1, 2]), 3) */
export function remainder(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("remainder", a, b, options);
}

/** a ** b (integer powers stay integers). Broadcasts and promotes as MLX. @example mx.power(mx.array([1, 2]), 3) */
export function power(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("power", a, b, options);
}

/** Elementwise maximum (NaN propagates). Broadcasts and promotes as MLX. @example mx.maximum(mx.array([1, 2]), 3) */
export function maximum(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("maximum", a, b, options);
}

/** Elementwise minimum (NaN propagates). Broadcasts and promotes as MLX. @example mx.minimum(mx.array([1, 2]), 3) */
export function minimum(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("minimum", a, b, options);
}

/** log(e^a + e^b), computed stably. Broadcasts and promotes as MLX. @example mx.logaddexp(mx.array([1, 2]), 3) */
export function logaddexp(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("logaddexp", a, b, options);
}

/** The angle of the point (b, a), atan2(a, b). Broadcasts and promotes as MLX. @example mx.arctan2(mx.array([1, 2]), 3) */
export function arctan2(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("arctan2", a, b, options);
}

/** a == b. Broadcasts and promotes as MLX. @example mx.equal(mx.array([1, 2]), 3) */
export function equal(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("equal", a, b, options);
}

/** a != b. Broadcasts and promotes as MLX. @example mx.notEqual(mx.array([1, 2]), 3) */
export function notEqual(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("not_equal", a, b, options);
}

/** a < b. Broadcasts and promotes as MLX. @example mx.less(mx.array([1, 2]), 3) */
export function less(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("less", a, b, options);
}

/** a <= b. Broadcasts and promotes as MLX. @example mx.lessEqual(mx.array([1, 2]), 3) */
export function lessEqual(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("less_equal", a, b, options);
}

/** a > b. Broadcasts and promotes as MLX. @example mx.greater(mx.array([1, 2]), 3) */
export function greater(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("greater", a, b, options);
}

/** a >= b. Broadcasts and promotes as MLX. @example mx.greaterEqual(mx.array([1, 2]), 3) */
export function greaterEqual(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("greater_equal", a, b, options);
}

/** a and b (nonzero is true). Broadcasts and promotes as MLX. @example mx.logicalAnd(mx.array([1, 2]), 3) */
export function logicalAnd(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("logical_and", a, b, options);
}

/** a or b (nonzero is true). Broadcasts and promotes as MLX. @example mx.logicalOr(mx.array([1, 2]), 3) */
export function logicalOr(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("logical_or", a, b, options);
}

/** a xor b (nonzero is true). Broadcasts and promotes as MLX. @example mx.logicalXor(mx.array([1, 2]), 3) */
export function logicalXor(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("logical_xor", a, b, options);
}

/** a & b. Broadcasts and promotes as MLX. @example mx.bitwiseAnd(mx.array([1, 2]), 3) */
export function bitwiseAnd(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("bitwise_and", a, b, options);
}

/** a | b. Broadcasts and promotes as MLX. @example mx.bitwiseOr(mx.array([1, 2]), 3) */
export function bitwiseOr(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("bitwise_or", a, b, options);
}

/** a ^ b. Broadcasts and promotes as MLX. @example mx.bitwiseXor(mx.array([1, 2]), 3) */
export function bitwiseXor(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("bitwise_xor", a, b, options);
}

/** a << b. Broadcasts and promotes as MLX. @example mx.leftShift(mx.array([1, 2]), 3) */
export function leftShift(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("left_shift", a, b, options);
}

/** a >> b. Broadcasts and promotes as MLX. @example mx.rightShift(mx.array([1, 2]), 3) */
export function rightShift(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return binaryOp("right_shift", a, b, options);
}

/** a itself (a new handle to the same array), as MLX's positive. @example mx.positive(mx.array([1, -2])) // array([1, -2], dtype=int32) */
export function positive(a: MxArray, _options?: StreamOptions): MxArray {
  return new MxArray(checkHandle(lib.mlxb_array_retain(a.handle("positive"))));
}

/** Same as `conj`. @example mx.conjugate(mx.array([{ re: 1, im: 2 }])) */
export const conjugate = conj;
/** Array-API aliases of arccos, arccosh, ..., power, leftShift, rightShift. @example mx.acos(mx.array([0.5])) */
export const acos = arccos;
export const acosh = arccosh;
export const asin = arcsin;
export const asinh = arcsinh;
export const atan = arctan;
export const atanh = arctanh;
export const atan2 = arctan2;
export const pow = power;
export const bitwiseLeftShift = leftShift;
export const bitwiseRightShift = rightShift;

/**
 * Round to `decimals` places (half to even, as MLX).
 * @example mx.round(mx.array([1.25, 2.5]), 1) // array([1.2, 2.5], dtype=float32)
 */
export function round(a: ArrayOrScalar, decimals = 0, options?: StreamOptions): MxArray {
  if (!Number.isInteger(decimals)) throw new MlxError(`[round] decimals must be an integer, got ${decimals}.`, 1);
  if (decimals === 0) return unaryOp("round", a, options);
  return tidy(() => {
    // As MLX: in at least float32, times the float32 scale, rounded, times its float32 inverse,
    // then back to the input dtype (so integers round to tens with decimals = -1).
    const x = a instanceof MxArray ? a : mxArray(a as number);
    const d = x.dtype;
    const fd = d.isFloating || d.isComplex ? d : float32;
    const scale = Math.fround(10 ** decimals);
    const inv = Math.fround(1 / scale);
    const xf = d === fd ? x : x.astype(fd, options);
    const r = multiply(unaryOp("round", multiply(xf, mxArray(scale, fd), options), options), mxArray(inv, fd), options);
    return d === fd ? r : r.astype(d, options);
  });
}

/**
 * The quotient and remainder: `[floorDivide(a, b), remainder(a, b)]` (not for complex).
 * @example mx.divmod(mx.array([7, -7]), 2) // [array([3, -4]), array([1, 1])]
 */
export function divmod(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): [MxArray, MxArray] {
  const q = floorDivide(a, b, options);
  if (q.dtype.isComplex) {
    q.dispose();
    throw new MlxError("[divmod] Complex type not supported.", 1);
  }
  // MLX defines divmod's derivative as zero for both outputs (remainder alone has one).
  const r = remainder(a, b, options);
  try {
    return [noGradient(q, options), noGradient(r, options)];
  } finally {
    q.dispose();
    r.dispose();
  }
}

function noGradient(x: MxArray, options?: StreamOptions): MxArray {
  return new MxArray(checkHandle(lib.mlxb_stop_gradient(x.handle("divmod"), streamArg(options?.stream))));
}

/**
 * Elements of `x` where `condition` is true, else of `y` (broadcast; x and y promoted).
 * @example mx.where(mx.array([true, false]), 1, mx.array([5, 6])) // array([1, 6], dtype=int32)
 */
export function where(condition: ArrayOrScalar, x: ArrayOrScalar, y: ArrayOrScalar, options?: StreamOptions): MxArray {
  // Scalars take the dtype of the other value operand, not the condition's.
  const values = operands([x, y], "where");
  const cond = operands([condition], "where");
  try {
    return new MxArray(checkHandle(lib.mlxb_where(cond[0]!.h, values[0]!.h, values[1]!.h, streamArg(options?.stream))));
  } finally {
    release(values);
    release(cond);
  }
}

/**
 * Clip values to [aMin, aMax]; either bound may be null (not both).
 * @example mx.clip(mx.array([-2, 0, 5]), 0, 3) // array([0, 0, 3], dtype=int32)
 */
export function clip(a: MxArray, aMin: ArrayOrScalar | null, aMax: ArrayOrScalar | null, options?: StreamOptions): MxArray {
  if (aMin === null && aMax === null) throw new MlxError("At most one of a_min and a_max may be None", 1);
  return tidy(() => {
    const low = aMin === null ? a : maximum(a, aMin, options);
    return aMax === null ? low : minimum(low, aMax, options);
  });
}

/**
 * Replace NaN with `nan` (default 0) and infinities with `posinf`/`neginf` (default: the
 * dtype's largest and lowest finite values).
 * @example mx.nanToNum(mx.array([NaN, Infinity]))
 */
export function nanToNum(a: MxArray, options: { nan?: number; posinf?: number; neginf?: number; stream?: StreamOrDevice } = {}): MxArray {
  const d = a.dtype;
  if (!d.isFloating && !d.isComplex) return positive(a);
  // MLX knows the largest finite value of float16, bfloat16 and float32 only: other inexact
  // dtypes need both posinf and neginf.
  const big: Record<string, number> = { float16: 65504, bfloat16: 3.3895313892515355e38, float32: 3.4028234663852886e38 };
  if ((options.posinf === undefined || options.neginf === undefined) && big[d.name] === undefined) {
    throw new MlxError(`[nan_to_num] Does not yet support given type: ${d.name}.`, 1);
  }
  const posinf = options.posinf ?? big[d.name]!;
  const neginf = options.neginf ?? -big[d.name]!;
  const s = { stream: options.stream };
  return tidy(() => {
    const t1 = where(isnan(a, s), options.nan ?? 0, a, s);
    const t2 = where(isposinf(a, s), posinf, t1, s);
    return where(isneginf(a, s), neginf, t2, s);
  });
}

/**
 * |a - b| <= atol + rtol * |b|, elementwise; equal values (infinities included) are close, and
 * NaNs are close to each other when `equalNan`.
 * @example mx.isclose(mx.array([1, 2]), mx.array([1, 2.1]))
 */
export function isclose(a: MxArray, b: MxArray, options: { rtol?: number; atol?: number; equalNan?: boolean; stream?: StreamOrDevice } = {}): MxArray {
  const rtol = options.rtol ?? 1e-5;
  const atol = options.atol ?? 1e-8;
  const s = { stream: options.stream };
  return tidy(() => {
    // MLX's formula: rtol and atol are float32 arrays (not weak scalars); infinities are
    // close only to an equal infinity.
    const tol = add(mxArray(atol, float32), multiply(mxArray(rtol, float32), abs(b, s), s), s);
    let out = lessEqual(abs(subtract(a, b, s), s), tol, s);
    const ia = isinf(a, s);
    const ib = isinf(b, s);
    out = logicalAnd(out, logicalNot(logicalOr(ia, ib, s), s), s);
    out = logicalOr(out, logicalAnd(logicalAnd(ia, ib, s), equal(a, b, s), s), s);
    if (options.equalNan === true) out = logicalOr(out, logicalAnd(isnan(a, s), isnan(b, s), s), s);
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Methods on mx.Array

type Unary = (options?: StreamOptions) => MxArray;
type Binary = (b: ArrayOrScalar, options?: StreamOptions) => MxArray;

declare module "../array" {
  interface MxArray {
    abs: Unary; square: Unary; sqrt: Unary; rsqrt: Unary; reciprocal: Unary; exp: Unary; log: Unary;
    log2: Unary; log10: Unary; log1p: Unary; sin: Unary; cos: Unary; conj: Unary;
    /** The real part (a property, as in MLX). */
    readonly real: MxArray;
    /** The imaginary part (a property, as in MLX; zeros for real dtypes). */
    readonly imag: MxArray;
    negative: Unary; neg: Unary; logicalNot: Unary; bitwiseInvert: Unary;
    /** Round to `decimals` places (half to even). */
    round(decimals?: number, options?: StreamOptions): MxArray;
    add: Binary; sub: Binary; subtract: Binary; mul: Binary; multiply: Binary; div: Binary; divide: Binary;
    floorDivide: Binary; mod: Binary; remainder: Binary; pow: Binary; power: Binary; maximum: Binary; minimum: Binary;
    equal: Binary; notEqual: Binary; less: Binary; lessEqual: Binary; greater: Binary; greaterEqual: Binary;
    logicalAnd: Binary; logicalOr: Binary; bitwiseAnd: Binary; bitwiseOr: Binary; bitwiseXor: Binary;
    leftShift: Binary; rightShift: Binary;
  }
}

const unaryMethods: Record<string, (a: MxArray, o?: StreamOptions) => MxArray> = {
  abs, square, sqrt, rsqrt, reciprocal, exp, log, log2, log10, log1p, sin, cos, conj,
  negative, neg: negative, logicalNot, bitwiseInvert,
};
const binaryMethods: Record<string, (a: MxArray, b: ArrayOrScalar, o?: StreamOptions) => MxArray> = {
  add, sub: subtract, subtract, mul: multiply, multiply, div: divide, divide, floorDivide, mod: remainder, remainder,
  pow: power, power, maximum, minimum, equal, notEqual, less, lessEqual, greater, greaterEqual, logicalAnd,
  logicalOr, bitwiseAnd, bitwiseOr, bitwiseXor, leftShift, rightShift,
};
const proto = MxArray.prototype as unknown as Record<string, unknown>;
for (const [name, f] of Object.entries(unaryMethods)) {
  proto[name] = function (this: MxArray, o?: StreamOptions) {
    return f(this, o);
  };
}
for (const [name, f] of Object.entries(binaryMethods)) {
  proto[name] = function (this: MxArray, b: ArrayOrScalar, o?: StreamOptions) {
    return f(this, b, o);
  };
}
Object.defineProperty(MxArray.prototype, "real", {
  get(this: MxArray) {
    return real(this);
  },
  configurable: true,
});
Object.defineProperty(MxArray.prototype, "imag", {
  get(this: MxArray) {
    return imag(this);
  },
  configurable: true,
});
proto.round = function (this: MxArray, decimals?: number, o?: StreamOptions) {
  return round(this, decimals, o);
};
