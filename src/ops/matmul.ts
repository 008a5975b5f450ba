// Matrix products: matmul and addmm (engine/prims/matmul.zig on our own GEMM), and the products
// composed from them: tensordot, inner, outer, vecdot, kron. MLX's rules and messages.
import { checkHandle, lib } from "../../ffi/lib";
import { MxArray } from "../array";
import { streamArg } from "../device";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import { conj, multiply, type StreamOptions } from "./elementwise";
import { broadcastAgainst } from "./follow";
import { inShapelessTrace } from "../trace_flags";
import { sum } from "./reduce";
import { expandDims, flatten, reshape, transpose } from "./shape";
import { operands, release, type ArrayOrScalar } from "./util";


function asArray(a: ArrayOrScalar, op: string): MxArray {
  if (a instanceof MxArray) return a;
  const ops = operands([a], op);
  return new MxArray(ops[0]!.h);
}

/**
 * The matrix product `a @ b`. A 1-D first operand is a row and a 1-D second operand a column
 * (dropped from the result); batch dimensions broadcast as NumPy's. Inexact dtypes only
 * (float16, bfloat16, float32, float64, complex64); integers are refused as in MLX.
 * @example mx.matmul(mx.array([[1, 2], [3, 4]], mx.float32), mx.array([1, 1], mx.float32)) // [3, 7]
 */
export function matmul(a: MxArray, b: MxArray, options?: StreamOptions): MxArray {
  if (inShapelessTrace() && a instanceof MxArray && b instanceof MxArray && a.ndim >= 2 && b.ndim >= 2 && a.shape.slice(0, -2).join() !== b.shape.slice(0, -2).join()) {
    // Under a shapeless compile trace, broadcast the batch axes against the other operand's
    // graph (its batch axes, as sum(other, last two axes, keepdims)) rather than to the traced
    // batch shape, so the replay follows new batch shapes as MLX's does.
    return tidy(() => {
      const follow = (x: MxArray, other: MxArray): MxArray => {
        return broadcastAgainst(x, sum(other, { axis: [-2, -1], keepdims: true, stream: options?.stream }), options);
      };
      return matmul(follow(a, b), follow(b, a), options);
    });
  }
  const ops = operands([a, b], "matmul");
  try {
    return new MxArray(checkHandle(lib.mlxb_matmul(ops[0]!.h, ops[1]!.h, streamArg(options?.stream))));
  } finally {
    release(ops);
  }
}

/** Options of {@link addmm}. */
export interface AddmmOptions extends StreamOptions {
  /** Scale of the product. Default 1. */
  alpha?: number;
  /** Scale of `c`. Default 1. */
  beta?: number;
}

/**
 * `alpha * (a @ b) + beta * c`, with `c` broadcast to the product's shape.
 * @example mx.addmm(mx.ones([2, 2]), mx.eye(2), mx.eye(2), { alpha: 2, beta: 0.5 }) // [[2.5, 0.5], [0.5, 2.5]]
 */
export function addmm(c: ArrayOrScalar, a: MxArray, b: MxArray, options?: AddmmOptions): MxArray {
  const alpha = options?.alpha ?? 1;
  const beta = options?.beta ?? 1;
  if (typeof alpha !== "number" || typeof beta !== "number") throw new MlxError("[addmm] alpha and beta must be numbers.", 1);
  const ops = operands([a, b, c], "addmm");
  try {
    return new MxArray(checkHandle(lib.mlxb_addmm(ops[2]!.h, ops[0]!.h, ops[1]!.h, alpha, beta, streamArg(options?.stream))));
  } finally {
    release(ops);
  }
}

function normAxes(axes: readonly number[], ndim: number): number[] {
  return axes.map((x) => (x < 0 ? x + ndim : x));
}

/**
 * The tensor dot product: with `axes` a number n, the last n axes of `a` contract with the first
 * n of `b`; with `[axesA, axesB]`, those axes pairwise. Default 2.
 * @example mx.tensordot(mx.ones([2, 3, 4]), mx.ones([3, 4, 5]), 2).shape // [2, 5]
 */
export function tensordot(a: MxArray, b: MxArray, axes: number | readonly [readonly number[], readonly number[]] = 2, options?: StreamOptions): MxArray {
  let axa: number[];
  let axb: number[];
  if (typeof axes === "number") {
    if (!Number.isInteger(axes)) throw new MlxError("[tensordot] axes must be an integer or a pair of lists.", 1);
    if (axes < 0) throw new MlxError("[tensordot] axis must be greater or equal to 0.", 1);
    if (axes > a.ndim || axes > b.ndim) throw new MlxError("[tensordot] axis must be less than the number of dimensions of a and b.", 1);
    axa = Array.from({ length: axes }, (_, i) => a.ndim - axes + i);
    axb = Array.from({ length: axes }, (_, i) => i);
  } else {
    if (!Array.isArray(axes) || axes.length !== 2) throw new MlxError("[tensordot] axes must be an integer or a pair of lists.", 1);
    if (axes[0].length !== axes[1].length) throw new MlxError("[tensordot] axes must have the same size.", 1);
    axa = normAxes(axes[0], a.ndim);
    axb = normAxes(axes[1], b.ndim);
  }
  const sa = a.shape;
  const sb = b.shape;
  for (let i = 0; i < axa.length; i++) {
    const x = axa[i]!;
    const y = axb[i]!;
    if (x < 0 || x >= sa.length || y < 0 || y >= sb.length || sa[x] !== sb[y]) {
      throw new MlxError("[tensordot] a and b must have the same shape on the contracted axes.", 1);
    }
  }
  const freeA = sa.map((_, i) => i).filter((i) => !axa.includes(i));
  const freeB = sb.map((_, i) => i).filter((i) => !axb.includes(i));
  const k = axa.reduce((p, i) => p * sa[i]!, 1);
  const m = freeA.reduce((p, i) => p * sa[i]!, 1);
  const n = freeB.reduce((p, i) => p * sb[i]!, 1);
  const outShape = [...freeA.map((i) => sa[i]!), ...freeB.map((i) => sb[i]!)];
  const s = options?.stream;
  return tidy(() => {
    const a2 = reshape(transpose(a, [...freeA, ...axa], { stream: s }), [m, k], { stream: s });
    const b2 = reshape(transpose(b, [...axb, ...freeB], { stream: s }), [k, n], { stream: s });
    return reshape(matmul(a2, b2, { stream: s }), outShape, { stream: s });
  });
}

/**
 * The inner product: a sum product over the last axes (a plain product when either is a scalar).
 * @example mx.inner(mx.array([1, 2, 3], mx.float32), mx.array([4, 5, 6], mx.float32)) // 32
 */
export function inner(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return tidy(() => {
    const x = asArray(a, "inner");
    const y = asArray(b, "inner");
    if (x.ndim === 0 || y.ndim === 0) return multiply(x, y, options);
    if (x.shape[x.ndim - 1] !== y.shape[y.ndim - 1]) throw new MlxError("[inner] a and b must have the same last dimension.", 1);
    return tensordot(x, y, [[-1], [-1]], options);
  });
}

/**
 * The outer product of the flattened inputs: shape [a.size, b.size].
 * @example mx.outer(mx.array([1, 2]), mx.array([1, 10, 100])) // [[1, 10, 100], [2, 20, 200]]
 */
export function outer(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return tidy(() => {
    const x = asArray(a, "outer");
    const y = asArray(b, "outer");
    const s = options?.stream;
    return multiply(reshape(x, [-1, 1], { stream: s }), flatten(y, 0, -1, { stream: s }), options);
  });
}

/** Options of {@link vecdot}. */
export interface VecdotOptions extends StreamOptions {
  /** The contracted axis. Default -1. */
  axis?: number;
}

/**
 * The vector dot product along `axis` (default -1), conjugating `a` when complex; the other axes
 * broadcast.
 * @example mx.vecdot(mx.array([[1, 2], [3, 4]]), mx.array([1, 1])) // [3, 7]
 */
export function vecdot(a: ArrayOrScalar, b: ArrayOrScalar, options?: VecdotOptions): MxArray {
  return tidy(() => {
    const x = asArray(a, "vecdot");
    const y = asArray(b, "vecdot");
    const axis = options?.axis ?? -1;
    if (x.ndim === 0 || y.ndim === 0) throw new MlxError("[vecdot] inputs must be at least 1D.", 1);
    if (!Number.isInteger(axis) || axis < -x.ndim || axis >= x.ndim || axis < -y.ndim || axis >= y.ndim) {
      throw new MlxError("[vecdot] axis is out of bounds.", 1);
    }
    const ax = axis < 0 ? axis + x.ndim : axis;
    const bx = axis < 0 ? axis + y.ndim : axis;
    if (ax !== bx) throw new MlxError("[vecdot] axis is out of bounds.", 1);
    if (x.shape[ax] !== y.shape[bx]) throw new MlxError("[vecdot] a and b must have the same size along axis.", 1);
    const s = options?.stream;
    const xc = x.dtype.name === "complex64" ? conj(x, { stream: s }) : x;
    return sum(multiply(xc, y, { stream: s }), { axis: ax, stream: s });
  });
}

/**
 * The Kronecker product: block (i, j) of the result is `a[i, j] * b` (inputs of different rank
 * gain leading 1s).
 * @example mx.kron(mx.array([1, 2]), mx.array([1, 10])) // [1, 10, 2, 20]
 */
export function kron(a: ArrayOrScalar, b: ArrayOrScalar, options?: StreamOptions): MxArray {
  return tidy(() => {
    const s = options?.stream;
    let x = asArray(a, "kron");
    let y = asArray(b, "kron");
    if (x.size === 0 || y.size === 0) throw new MlxError("[kron] Input arrays cannot be empty.", 1);
    const nd = Math.max(x.ndim, y.ndim);
    if (x.ndim < nd) x = reshape(x, [...Array(nd - x.ndim).fill(1), ...x.shape], { stream: s });
    if (y.ndim < nd) y = reshape(y, [...Array(nd - y.ndim).fill(1), ...y.shape], { stream: s });
    // Interleave: x as (d0, 1, d1, 1, ...), y as (1, e0, 1, e1, ...), then merge pairs.
    const xs = expandDims(x, Array.from({ length: nd }, (_, i) => 2 * i + 1), { stream: s });
    const ys = expandDims(y, Array.from({ length: nd }, (_, i) => 2 * i), { stream: s });
    const out = x.shape.map((d, i) => d * y.shape[i]!);
    return reshape(multiply(xs, ys, { stream: s }), out, { stream: s });
  });
}

declare module "../array" {
  interface MxArray {
    /** The matrix product `this @ b` (see {@link matmul}). @example a.matmul(b) */
    matmul(b: MxArray, options?: StreamOptions): MxArray;
  }
}

(MxArray.prototype as unknown as Record<string, unknown>).matmul = function (this: MxArray, b: MxArray, options?: StreamOptions): MxArray {
  return matmul(this, b, options);
};
