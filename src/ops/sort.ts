// Scans and sorting: cumsum, cumprod, cummax, cummin, logcumsumexp, sort, argsort, partition,
// argpartition, topk, searchsorted. Functions in `mx`, and the scan methods on mx.Array (the ones
// MLX's array has). Kernels and MLX's rules are in engine/prims/sort.zig.
import { checkHandle, lib } from "../../ffi/lib";
import { SCAN_OP, SORT_OP } from "../../ffi/symbols";
import { MxArray } from "../array";
import { streamArg, type StreamOrDevice } from "../device";
import { toDtype, type DtypeLike } from "../dtype";
import { MlxError } from "../errors";
import { operands, release, type ArrayOrScalar } from "./util";

/** Options of the scans (`cumsum`, `cumprod`, `cummax`, `cummin`, `logcumsumexp`). */
export interface ScanOptions {
  /** Scan from the end of the axis towards its start. Default false. */
  reverse?: boolean;
  /** Include the element itself (true, the default) or only the ones before it. */
  inclusive?: boolean;
  stream?: StreamOrDevice;
}

/** Options of `cumsum` and `cumprod`: the scan options and a dtype. */
export interface CumOptions extends ScanOptions {
  /** Convert the input to this dtype first (the output dtype rules then apply: bool sums are int32). */
  dtype?: DtypeLike;
}

/** Options every sorting op takes. */
export interface SortStreamOptions {
  stream?: StreamOrDevice;
}

function intArg(v: number, what: string, op: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
    throw new MlxError(`[${op}] ${what} must be an integer, got ${String(v)}.`, 1);
  }
  return v;
}

/** [axis, has_axis] for the ABI: null/undefined means "over the flattened array". */
function axisArgs(axis: number | null | undefined, op: string): [number, number] {
  if (axis === null || axis === undefined) return [0, 0];
  return [intArg(axis, "Axis", op), 1];
}

function withArray<T>(a: ArrayOrScalar, op: string, f: (h: number) => T): T {
  const ops = operands([a], op);
  try {
    return f(ops[0]!.h);
  } finally {
    release(ops);
  }
}

function scanOp(op: keyof typeof SCAN_OP, name: string, a: ArrayOrScalar, axis: number | null | undefined, o?: CumOptions): MxArray {
  const [ax, has] = axisArgs(axis, name);
  const reverse = o?.reverse === true ? 1 : 0;
  const inclusive = o?.inclusive === false ? 0 : 1;
  const dtype = o?.dtype === undefined ? -1 : toDtype(o.dtype, name).value;
  return withArray(a, name, (h) =>
    new MxArray(checkHandle(lib.mlxb_scan(SCAN_OP[op], h, ax, has, reverse, inclusive, dtype, streamArg(o?.stream)))));
}

function sortOp(op: keyof typeof SORT_OP, a: ArrayOrScalar, axis: number | null | undefined, kth: number, o?: SortStreamOptions): MxArray {
  const [ax, has] = axisArgs(axis, op);
  return withArray(a, op, (h) => new MxArray(checkHandle(lib.mlxb_sort(SORT_OP[op], h, ax, has, kth, streamArg(o?.stream)))));
}

/**
 * Cumulative sum along `axis` (omitted or null: over the flattened array). Bool sums are int32;
 * integers wrap; `dtype` converts the input first.
 * @example mx.cumsum(mx.array([1, 2, 3])) // [1, 3, 6]
 * @example mx.cumsum(mx.array([[1, 2], [3, 4]]), 1, { reverse: true, inclusive: false }) // [[2, 0], [4, 0]]
 */
export function cumsum(a: ArrayOrScalar, axis?: number | null, options?: CumOptions): MxArray {
  return scanOp("sum", "cumsum", a, axis, options);
}

/**
 * Cumulative product along `axis` (omitted or null: over the flattened array); `dtype` converts
 * the input first.
 * @example mx.cumprod(mx.array([1, 2, 3])) // [1, 2, 6]
 */
export function cumprod(a: ArrayOrScalar, axis?: number | null, options?: CumOptions): MxArray {
  return scanOp("prod", "cumprod", a, axis, options);
}

/**
 * MLX's alias of {@link cumsum} (the array API name).
 * @example mx.cumulativeSum(mx.array([1, 2, 3])) // [1, 3, 6]
 */
export function cumulativeSum(a: ArrayOrScalar, axis?: number | null, options?: CumOptions): MxArray {
  return scanOp("sum", "cumsum", a, axis, options);
}

/**
 * MLX's alias of {@link cumprod} (the array API name).
 * @example mx.cumulativeProd(mx.array([1, 2, 3])) // [1, 2, 6]
 */
export function cumulativeProd(a: ArrayOrScalar, axis?: number | null, options?: CumOptions): MxArray {
  return scanOp("prod", "cumprod", a, axis, options);
}

/**
 * Cumulative maximum along `axis` (omitted or null: over the flattened array). NaN propagates.
 * @example mx.cummax(mx.array([1, 3, 2])) // [1, 3, 3]
 */
export function cummax(a: ArrayOrScalar, axis?: number | null, options?: ScanOptions): MxArray {
  return scanOp("max", "cummax", a, axis, options);
}

/**
 * Cumulative minimum along `axis` (omitted or null: over the flattened array). NaN propagates.
 * @example mx.cummin(mx.array([3, 1, 2])) // [3, 1, 1]
 */
export function cummin(a: ArrayOrScalar, axis?: number | null, options?: ScanOptions): MxArray {
  return scanOp("min", "cummin", a, axis, options);
}

/**
 * Cumulative log-sum-exp along `axis` (omitted or null: over the flattened array); integers
 * and bools give float32.
 * @example mx.logcumsumexp(mx.array([0, 0])) // [0, 0.693147]
 */
export function logcumsumexp(a: ArrayOrScalar, axis?: number | null, options?: ScanOptions): MxArray {
  return scanOp("logaddexp", "logcumsumexp", a, axis, options);
}

/**
 * The sorted values along `axis` (default -1; null sorts the flattened array). Stable; NaN last.
 * @example mx.sort(mx.array([3, 1, 2])) // [1, 2, 3]
 */
export function sort(a: ArrayOrScalar, axis: number | null = -1, options?: SortStreamOptions): MxArray {
  return sortOp("sort", a, axis, 0, options);
}

/**
 * The indices (uint32) that sort `a` along `axis` (default -1; null: the flattened array).
 * Stable: equal values keep their order. NaN last.
 * @example mx.argsort(mx.array([3, 1, 2])) // [1, 2, 0] (uint32)
 */
export function argsort(a: ArrayOrScalar, axis: number | null = -1, options?: SortStreamOptions): MxArray {
  return sortOp("argsort", a, axis, 0, options);
}

/**
 * A copy of `a` with element `kth` along `axis` in its sorted position, smaller-or-equal
 * elements before it and greater-or-equal after (the order within each side is MLX's).
 * Negative `kth` counts from the end; `axis` null partitions the flattened array.
 * @example mx.partition(mx.array([3, 4, 1, 2]), 1) // [1, 2, 3, 4] (2 at index 1)
 */
export function partition(a: ArrayOrScalar, kth: number, axis: number | null = -1, options?: SortStreamOptions): MxArray {
  return sortOp("partition", a, axis, intArg(kth, "kth", "partition"), options);
}

/**
 * The indices (uint32) that partition `a` around its `kth` element along `axis` (see
 * {@link partition}).
 * @example mx.argpartition(mx.array([3, 4, 1, 2]), 1) // indices with a[i[1]] == 2
 */
export function argpartition(a: ArrayOrScalar, kth: number, axis: number | null = -1, options?: SortStreamOptions): MxArray {
  return sortOp("argpartition", a, axis, intArg(kth, "kth", "argpartition"), options);
}

/**
 * The `k` largest values along `axis` (default -1; null: the flattened array), in MLX's
 * (unsorted) order.
 * @example mx.topk(mx.array([5, 1, 4, 2]), 2) // the values 4 and 5
 */
export function topk(a: ArrayOrScalar, k: number, axis: number | null = -1, options?: SortStreamOptions): MxArray {
  return sortOp("topk", a, axis, intArg(k, "k", "topk"), options);
}

/**
 * For each value of `v`, the index (uint32) at which inserting it into the sorted 1-D array `a`
 * keeps `a` sorted: before equal elements for `side` "left" (the default), after them for
 * "right". `a` and `v` are compared in their promoted dtype; NaN sorts last.
 * @example mx.searchsorted(mx.array([1, 2, 2, 3]), mx.array([2, 5])) // [1, 4]
 * @example mx.searchsorted(mx.array([1, 2, 2, 3]), mx.array([2]), "right") // [3]
 */
export function searchsorted(a: ArrayOrScalar, v: ArrayOrScalar, side: "left" | "right" = "left", options?: SortStreamOptions): MxArray {
  if (side !== "left" && side !== "right") {
    throw new MlxError(`[searchsorted] Invalid side '${String(side)}'. Expected 'left' or 'right'.`, 1);
  }
  const ops = operands([a, v], "searchsorted");
  try {
    return new MxArray(checkHandle(lib.mlxb_searchsorted(ops[0]!.h, ops[1]!.h, side === "right" ? 1 : 0, streamArg(options?.stream))));
  } finally {
    release(ops);
  }
}

// ---------------------------------------------------------------------------------------------
// Methods on mx.Array (the scans, as MLX's array has them)

type ScanMethod = (axis?: number | null, options?: ScanOptions) => MxArray;
type CumMethod = (axis?: number | null, options?: CumOptions) => MxArray;

declare module "../array" {
  interface MxArray {
    /** Cumulative sum along `axis` (see {@link cumsum}). @example mx.array([1, 2]).cumsum() */
    cumsum: CumMethod;
    /** Cumulative product along `axis` (see {@link cumprod}). @example mx.array([1, 2]).cumprod() */
    cumprod: CumMethod;
    /** Cumulative maximum along `axis` (see {@link cummax}). @example mx.array([1, 2]).cummax() */
    cummax: ScanMethod;
    /** Cumulative minimum along `axis` (see {@link cummin}). @example mx.array([1, 2]).cummin() */
    cummin: ScanMethod;
    /** Cumulative log-sum-exp along `axis` (see {@link logcumsumexp}). @example mx.array([0, 0]).logcumsumexp() */
    logcumsumexp: ScanMethod;
  }
}

const scanMethods: Record<string, (a: MxArray, axis?: number | null, o?: CumOptions) => MxArray> = {
  cumsum, cumprod, cummax, cummin, logcumsumexp,
};
const proto = MxArray.prototype as unknown as Record<string, unknown>;
for (const [name, f] of Object.entries(scanMethods)) {
  proto[name] = function (this: MxArray, axis?: number | null, o?: CumOptions) {
    return f(this, axis, o);
  };
}
