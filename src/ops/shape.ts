// Shape and layout: reshape, flatten, unflatten, squeeze, expandDims, flip, moveaxis, swapaxes,
// transpose (permuteDims, matrixTranspose, `a.T`, `a.mT`), split, unstack, broadcastTo,
// broadcastArrays, concatenate (concat), stack, repeat, tile, pad, roll, asStrided,
// atleast1d/2d/3d, contiguous and view (a bit-cast). Functions in `mx` and, where MLX has them,
// methods on mx.Array. Views (reshape when the strides allow, transpose, squeeze, expandDims,
// broadcasts, split pieces, asStrided) share their input's memory. Kernels and MLX's messages
// are in engine/prims/shape.zig.
import { checkHandle, lib } from "../../ffi/lib";
import { PAD_MODE } from "../../ffi/symbols";
import { MxArray } from "../array";
import { streamArg } from "../device";
import { toDtype, type DtypeLike } from "../dtype";
import { MlxError } from "../errors";
import type { StreamOptions } from "./elementwise";
import { broadcastAgainst } from "./follow";
import { tidy } from "../memory";
import { inShapelessTrace } from "../trace_flags";
import { handlesOf, int, ints, list, operands, release, wrap, type ArrayOrScalar } from "./util";

/** A padding mode of `pad`. */
export type PadMode = keyof typeof PAD_MODE;

/** Run `fn` with engine handles for `values` (JS scalars made into arrays, freed after). */
function withOperands<T>(values: readonly ArrayOrScalar[], op: string, fn: (hs: number[]) => T): T {
  const ops = operands(values, op);
  try {
    return fn(ops.map((o) => o.h));
  } finally {
    release(ops);
  }
}


/**
 * The same elements in a new shape; one dimension may be -1 (inferred). A view of `a` when its
 * strides allow, else a copy.
 * @example mx.reshape(mx.arange(6), [2, -1]) // array([[0, 1, 2],\n       [3, 4, 5]], dtype=int32)
 */
export function reshape(a: MxArray, shape: number | readonly number[], options?: StreamOptions): MxArray {
  const dims = list(shape);
  return wrap(lib.mlxb_reshape(a.handle("reshape"), ints(dims, "Shape dimensions", "reshape"), dims.length, streamArg(options?.stream)));
}

/**
 * Axes `startAxis` through `endAxis` (inclusive; negative from the end) merged into one.
 * @example mx.flatten(mx.zeros([2, 3, 4]), 1).shape // [2, 12]
 */
export function flatten(a: MxArray, startAxis = 0, endAxis = -1, options?: StreamOptions): MxArray {
  return wrap(lib.mlxb_flatten(a.handle("flatten"), int(startAxis, "start_axis", "flatten"), int(endAxis, "end_axis", "flatten"), streamArg(options?.stream)));
}

/**
 * One axis split into `shape` (one entry may be -1).
 * @example mx.unflatten(mx.zeros([2, 12]), 1, [3, -1]).shape // [2, 3, 4]
 */
export function unflatten(a: MxArray, axis: number, shape: readonly number[], options?: StreamOptions): MxArray {
  return wrap(lib.mlxb_unflatten(a.handle("unflatten"), int(axis, "Axis", "unflatten"), ints(shape, "Shape dimensions", "unflatten"), shape.length, streamArg(options?.stream)));
}

/**
 * Size-1 axes removed: the given ones, or all of them.
 * @example mx.squeeze(mx.zeros([1, 3, 1])).shape // [3]
 */
export function squeeze(a: MxArray, axis?: number | readonly number[] | null, options?: StreamOptions): MxArray {
  const all = axis === undefined || axis === null;
  const axes = all ? [] : list(axis);
  return wrap(lib.mlxb_squeeze(a.handle("squeeze"), ints(axes, "Axes", "squeeze"), axes.length, all ? 1 : 0, streamArg(options?.stream)));
}

/**
 * Size-1 axes inserted at the given positions of the output.
 * @example mx.expandDims(mx.zeros([3]), [0, 2]).shape // [1, 3, 1]
 */
export function expandDims(a: MxArray, axis: number | readonly number[], options?: StreamOptions): MxArray {
  const axes = list(axis);
  return wrap(lib.mlxb_expand_dims(a.handle("expand_dims"), ints(axes, "Axes", "expand_dims"), axes.length, streamArg(options?.stream)));
}

/**
 * The elements in reverse order along the given axes (every axis by default).
 * @example mx.flip(mx.array([1, 2, 3])) // array([3, 2, 1], dtype=int32)
 */
export function flip(a: MxArray, axis?: number | readonly number[] | null, options?: StreamOptions): MxArray {
  const all = axis === undefined || axis === null;
  const axes = all ? [] : list(axis);
  return wrap(lib.mlxb_flip(a.handle("flip"), ints(axes, "Axes", "flip"), axes.length, all ? 1 : 0, streamArg(options?.stream)));
}

/**
 * One axis moved to a new position (a view).
 * @example mx.moveaxis(mx.zeros([2, 3, 4]), 0, -1).shape // [3, 4, 2]
 */
export function moveaxis(a: MxArray, source: number, destination: number, options?: StreamOptions): MxArray {
  return wrap(lib.mlxb_moveaxis(a.handle("moveaxis"), int(source, "Axis", "moveaxis"), int(destination, "Axis", "moveaxis"), streamArg(options?.stream)));
}

/**
 * Two axes swapped (a view).
 * @example mx.swapaxes(mx.zeros([2, 3, 4]), 0, 2).shape // [4, 3, 2]
 */
export function swapaxes(a: MxArray, axis1: number, axis2: number, options?: StreamOptions): MxArray {
  return wrap(lib.mlxb_swapaxes(a.handle("swapaxes"), int(axis1, "Axis", "swapaxes"), int(axis2, "Axis", "swapaxes"), streamArg(options?.stream)));
}

/**
 * The axes permuted: output axis i is input axis `axes[i]`; all axes reversed by default (a view).
 * @example mx.transpose(mx.zeros([2, 3, 4]), [1, 0, 2]).shape // [3, 2, 4]
 */
export function transpose(a: MxArray, axes?: readonly number[] | null, options?: StreamOptions): MxArray {
  const perm = axes === undefined || axes === null ? Array.from({ length: a.ndim }, (_, i) => a.ndim - 1 - i) : axes;
  return wrap(lib.mlxb_transpose(a.handle("transpose"), ints(perm, "Axes", "transpose"), perm.length, streamArg(options?.stream)));
}

/** The Array-API name of `transpose`. @example mx.permuteDims(mx.zeros([2, 3])).shape // [3, 2] */
export const permuteDims = transpose;

/**
 * The last two axes swapped (a view).
 * @example mx.matrixTranspose(mx.zeros([5, 2, 3])).shape // [5, 3, 2]
 */
export function matrixTranspose(a: MxArray, options?: StreamOptions): MxArray {
  if (a.ndim < 2) throw new MlxError("[matrix_transpose] Input array must have at least 2 dimensions.", 1);
  return swapaxes(a, -2, -1, options);
}

/**
 * Pieces of `a` along `axis`: `indicesOrSections` equal pieces, or pieces split before each
 * index in a list. The pieces are views.
 * @example mx.split(mx.arange(6), [2, 3]).map((p) => p.tolist()) // [[0, 1], [2], [3, 4, 5]]
 */
export function split(a: MxArray, indicesOrSections: number | readonly number[], axis = 0, options?: StreamOptions): MxArray[] {
  const h = a.handle("split");
  const ax = int(axis, "Axis", "split");
  const s = streamArg(options?.stream);
  if (typeof indicesOrSections === "number") {
    const n = int(indicesOrSections, "num_splits", "split");
    const first = wrap(lib.mlxb_split(h, n, new Int32Array(1), -1, ax, 0, s));
    const out = [first];
    for (let i = 1; i < n; i++) out.push(wrap(lib.mlxb_split(h, n, new Int32Array(1), -1, ax, i, s)));
    return out;
  }
  const idx = ints(indicesOrSections, "Indices", "split");
  const out: MxArray[] = [];
  for (let i = 0; i <= indicesOrSections.length; i++) out.push(wrap(lib.mlxb_split(h, 0, idx, indicesOrSections.length, ax, i, s)));
  return out;
}

/**
 * The slices of `a` along `axis`, each without that axis (views).
 * @example mx.unstack(mx.array([[1, 2], [3, 4]])).map((p) => p.tolist()) // [[1, 2], [3, 4]]
 */
export function unstack(a: MxArray, axis = 0, options?: StreamOptions): MxArray[] {
  const h = a.handle("unstack");
  const ax = int(axis, "Axis", "unstack");
  const s = streamArg(options?.stream);
  const nd = a.ndim;
  const norm = ax < 0 ? ax + nd : ax;
  if (norm < 0 || norm >= nd) return [wrap(lib.mlxb_unstack(h, ax, 0, s))]; // raises MLX's message
  const out: MxArray[] = [];
  for (let i = 0; i < a.shape[norm]!; i++) out.push(wrap(lib.mlxb_unstack(h, ax, i, s)));
  return out;
}

/**
 * `a` broadcast to `shape` (a view: no data is copied).
 * @example mx.broadcastTo(mx.array([1, 2]), [2, 2]) // array([[1, 2],\n       [1, 2]], dtype=int32)
 */
export function broadcastTo(a: ArrayOrScalar, shape: number | readonly number[], options?: StreamOptions): MxArray {
  const dims = list(shape);
  for (const d of dims) if (typeof d === "number" && d < 0) throw new MlxError("[broadcast_to] Negative dimensions not allowed.", 1);
  const packed = ints(dims, "Shape dimensions", "broadcast_to");
  return withOperands([a], "broadcast_to", ([h]) => wrap(lib.mlxb_broadcast(h!, packed, dims.length, streamArg(options?.stream))));
}

function broadcastShapeOf(shapes: readonly (readonly number[])[]): number[] {
  let out: number[] = [];
  for (const s of shapes) {
    const n = Math.max(out.length, s.length);
    const next: number[] = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const a = i < n - out.length ? 1 : out[i - (n - out.length)]!;
      const b = i < n - s.length ? 1 : s[i - (n - s.length)]!;
      if (a !== b && a !== 1 && b !== 1) {
        throw new MlxError(`[broadcast_shapes] Shapes (${out.join(",")}) and (${s.join(",")}) cannot be broadcast.`, 1);
      }
      next[i] = a === 1 ? b : a;
    }
    out = next;
  }
  return out;
}

/**
 * The arrays broadcast against one another (views).
 * @example mx.broadcastArrays(mx.zeros([2, 1]), mx.zeros([3])).map((x) => x.shape) // [[2, 3], [2, 3]]
 */
export function broadcastArrays(...arrays: MxArray[]): MxArray[] {
  if (arrays.length === 0) return [];
  const shape = broadcastShapeOf(arrays.map((a) => a.shape));
  // Under a shapeless compile trace, broadcast against the other arrays' graphs rather than to
  // the traced shape, so the replay follows new shapes (MLX's BroadcastAxes).
  if (inShapelessTrace()) {
    return arrays.map((a, i) => tidy(() => arrays.reduce((r, y, j) => (j === i ? r : broadcastAgainst(r, y)), a)));
  }
  return arrays.map((a) => broadcastTo(a, shape));
}

/**
 * The arrays joined along `axis` (dtypes promoted); `axis: null` joins them flattened.
 * @example mx.concatenate([mx.array([1, 2]), mx.array([3])]) // array([1, 2, 3], dtype=int32)
 */
export function concatenate(arrays: readonly MxArray[], axis: number | null = 0, options?: StreamOptions): MxArray {
  const s = streamArg(options?.stream);
  if (axis === null) {
    const flat = (Array.isArray(arrays) ? arrays : []).map((a) => flatten(a));
    try {
      return wrap(lib.mlxb_concatenate(handlesOf(flat, "concatenate"), flat.length, 0, s));
    } finally {
      for (const f of flat) f.dispose();
    }
  }
  const hs = handlesOf(arrays, "concatenate");
  return wrap(lib.mlxb_concatenate(hs, arrays.length, int(axis, "Axis", "concatenate"), s));
}

/** Same as `concatenate`. @example mx.concat([mx.array([1]), mx.array([2])]) // array([1, 2], dtype=int32) */
export const concat = concatenate;

/**
 * Arrays of one shape stacked along a new axis.
 * @example mx.stack([mx.array([1, 2]), mx.array([3, 4])], 1) // array([[1, 3],\n       [2, 4]], dtype=int32)
 */
export function stack(arrays: readonly MxArray[], axis: number | null = 0, options?: StreamOptions): MxArray {
  const hs = handlesOf(arrays, "stack");
  return wrap(lib.mlxb_stack(hs, arrays.length, int(axis ?? 0, "Axis", "stack"), streamArg(options?.stream)));
}

/**
 * Each element repeated `repeats` times along `axis` (of the flattened array by default).
 * @example mx.repeat(mx.array([1, 2]), 2) // array([1, 1, 2, 2], dtype=int32)
 */
export function repeat(a: MxArray, repeats: number, axis?: number | null, options?: StreamOptions): MxArray {
  const has = axis !== undefined && axis !== null;
  return wrap(
    lib.mlxb_repeat(a.handle("repeat"), int(repeats, "repeats", "repeat"), has ? int(axis, "Axis", "repeat") : 0, has ? 1 : 0, streamArg(options?.stream)),
  );
}

/**
 * `a` repeated `reps` times along each axis (reps aligned to the last axes).
 * @example mx.tile(mx.array([1, 2]), 2) // array([1, 2, 1, 2], dtype=int32)
 */
export function tile(a: MxArray, reps: number | readonly number[], options?: StreamOptions): MxArray {
  const r = list(reps);
  return wrap(lib.mlxb_tile(a.handle("tile"), ints(r, "reps", "tile"), r.length, streamArg(options?.stream)));
}

/** Pad widths as MLX accepts them: w, [w], [low, high] for every axis, or one [low, high] per axis. */
export type PadWidth = number | readonly [number] | readonly [number, number] | readonly (readonly [number, number])[];

/**
 * `a` padded before and after each axis. `mode`: "constant" (with `constantValues`, default
 * 0), "edge", "reflect" (mirror without the edge) or "symmetric" (mirror with the edge).
 * @example mx.pad(mx.array([1, 2]), [1, 2], "edge") // array([1, 1, 2, 2, 2], dtype=int32)
 */
export function pad(a: MxArray, padWidth: PadWidth, mode: PadMode = "constant", constantValues: ArrayOrScalar = 0, options?: StreamOptions): MxArray {
  const nd = a.ndim;
  let pairs: (readonly number[])[];
  if (typeof padWidth === "number") pairs = Array.from({ length: nd }, () => [padWidth, padWidth]);
  else if (Array.isArray(padWidth) && padWidth.every((v) => typeof v === "number")) {
    const w = padWidth as readonly number[];
    if (w.length === 1) pairs = Array.from({ length: nd }, () => [w[0]!, w[0]!]);
    else if (w.length === 2) pairs = Array.from({ length: nd }, () => [w[0]!, w[1]!]);
    else throw new MlxError("[pad] pad_width must be an int, a tuple of one or two ints, or a list of (low, high) pairs.", 1);
  } else if (Array.isArray(padWidth) && padWidth.every((p) => Array.isArray(p) && p.length === 2)) {
    const ps = padWidth as readonly (readonly number[])[];
    pairs = ps.length === 1 ? Array.from({ length: nd }, () => ps[0]!) : [...ps];
  } else {
    throw new MlxError("[pad] pad_width must be an int, a tuple of one or two ints, or a list of (low, high) pairs.", 1);
  }
  const m = PAD_MODE[mode];
  if (m === undefined) throw new MlxError(`Invalid padding mode (${String(mode)}) passed to pad`, 1);
  const lows = ints(pairs.map((p) => p[0]!), "Pad widths", "pad");
  const highs = ints(pairs.map((p) => p[1]!), "Pad widths", "pad");
  const s = streamArg(options?.stream);
  if (mode !== "constant") return wrap(lib.mlxb_pad(a.handle("pad"), lows, highs, pairs.length, m, 0, s));
  return withOperands([a, constantValues], "pad", ([h, v]) => wrap(lib.mlxb_pad(h!, lows, highs, pairs.length, m, v!, s)));
}

/**
 * Elements shifted along axes, wrapping around. With no axis, the flattened array is rolled
 * (by the sum of the shifts, as MLX); with a list of axes, axis i by shift[i] (or one shift for all).
 * @example mx.roll(mx.array([1, 2, 3, 4]), 1) // array([4, 1, 2, 3], dtype=int32)
 */
export function roll(a: MxArray, shift: number | readonly number[], axis?: number | readonly number[] | null, options?: StreamOptions): MxArray {
  const shifts = list(shift);
  const mode = axis === undefined || axis === null ? 0 : typeof axis === "number" ? 1 : 2;
  const axes = mode === 0 ? [] : list(axis as number | readonly number[]);
  return wrap(
    lib.mlxb_roll(a.handle("roll"), ints(shifts, "Shifts", "roll"), shifts.length, ints(axes, "Axes", "roll"), axes.length, mode, streamArg(options?.stream)),
  );
}

/**
 * A view of row-major `a` with the given shape, strides (in elements) and element offset;
 * shape defaults to `a`'s and strides to row-major. Views reaching outside `a` are refused.
 * @example mx.asStrided(mx.arange(5), [3, 2], [1, 1]) // array([[0, 1],\n       [1, 2],\n       [2, 3]], dtype=int32)
 */
export function asStrided(a: MxArray, shape?: readonly number[] | null, strides?: readonly number[] | null, offset = 0, options?: StreamOptions): MxArray {
  const dims = shape ?? a.shape;
  let st: readonly number[];
  if (strides === undefined || strides === null) {
    const r = new Array<number>(dims.length);
    let acc = 1;
    for (let i = dims.length - 1; i >= 0; i--) {
      r[i] = acc;
      acc *= dims[i]!;
    }
    st = r;
  } else st = strides;
  const packed = new BigInt64Array(Math.max(st.length, 1));
  st.forEach((v, i) => {
    if (!Number.isSafeInteger(v)) throw new MlxError(`[as_strided] Strides must be integers, got ${v}.`, 1);
    packed[i] = BigInt(v);
  });
  if (!Number.isSafeInteger(offset) || offset < 0) throw new MlxError(`[as_strided] The offset must be a non-negative integer, got ${offset}.`, 1);
  for (const d of dims) if (typeof d === "number" && d < 0) throw new MlxError("[as_strided] Negative dimensions not allowed.", 1);
  return wrap(lib.mlxb_as_strided(a.handle("as_strided"), ints(dims, "Shape dimensions", "as_strided"), dims.length, packed, st.length, offset, streamArg(options?.stream)));
}

function atleast(n: number, arrays: MxArray[]): MxArray | MxArray[] {
  const one = (a: MxArray): MxArray => {
    const shape = a.shape;
    if (shape.length >= n) return reshape(a, shape);
    if (n === 1) return reshape(a, [1]);
    if (n === 2) return reshape(a, shape.length === 0 ? [1, 1] : [1, shape[0]!]);
    if (shape.length === 0) return reshape(a, [1, 1, 1]);
    return reshape(a, shape.length === 1 ? [1, shape[0]!, 1] : [shape[0]!, shape[1]!, 1]);
  };
  return arrays.length === 1 ? one(arrays[0]!) : arrays.map(one);
}

/**
 * Arrays with at least one dimension (0-d arrays become shape [1]): one array for one
 * argument, a list otherwise.
 * @example (mx.atleast1d(mx.array(3)) as mx.Array).shape // [1]
 */
export function atleast1d(...arrays: MxArray[]): MxArray | MxArray[] {
  return atleast(1, arrays);
}

/**
 * Arrays with at least two dimensions ([n] becomes [1, n]).
 * @example (mx.atleast2d(mx.array([1, 2])) as mx.Array).shape // [1, 2]
 */
export function atleast2d(...arrays: MxArray[]): MxArray | MxArray[] {
  return atleast(2, arrays);
}

/**
 * Arrays with at least three dimensions ([n] becomes [1, n, 1], [m, n] becomes [m, n, 1]).
 * @example (mx.atleast3d(mx.zeros([2, 3])) as mx.Array).shape // [2, 3, 1]
 */
export function atleast3d(...arrays: MxArray[]): MxArray | MxArray[] {
  return atleast(3, arrays);
}

/**
 * `a` as a row-contiguous array (or column-contiguous, when allowed and already so): a view
 * when it already is, else a copy.
 * @example mx.contiguous(mx.zeros([2, 3]).T).shape // [3, 2]
 */
export function contiguous(a: MxArray, allowColMajor = false, options?: StreamOptions): MxArray {
  return wrap(lib.mlxb_contiguous(a.handle("contiguous"), allowColMajor ? 1 : 0, streamArg(options?.stream)));
}

/**
 * The bytes of `a` as another dtype; the last axis scales by the ratio of the item sizes.
 * (Bytes viewed as bool read as true when nonzero and are stored as 0/1.)
 * @example mx.view(mx.array([1], mx.float32), mx.uint32) // array([1065353216], dtype=uint32)
 */
export function view(a: ArrayOrScalar, dtype: DtypeLike, options?: StreamOptions): MxArray {
  const d = toDtype(dtype, "view");
  return withOperands([a], "view", ([h]) => wrap(lib.mlxb_view(h!, d.value, streamArg(options?.stream))));
}

// ---------------------------------------------------------------------------------------------
// Methods on mx.Array

declare module "../array" {
  interface MxArray {
    /** The array reshaped: `a.reshape(2, 3)` or `a.reshape([2, 3])` (options may follow). */
    reshape(...shape: (number | readonly number[] | StreamOptions)[]): MxArray;
    /** See `mx.flatten`. */
    flatten(startAxis?: number, endAxis?: number, options?: StreamOptions): MxArray;
    /** See `mx.squeeze`. */
    squeeze(axis?: number | readonly number[] | null, options?: StreamOptions): MxArray;
    /** The axes permuted: `a.transpose(1, 0, 2)`, `a.transpose([1, 0, 2])`, or reversed with none. */
    transpose(...axes: (number | readonly number[] | StreamOptions)[]): MxArray;
    /** See `mx.swapaxes`. */
    swapaxes(axis1: number, axis2: number, options?: StreamOptions): MxArray;
    /** See `mx.moveaxis`. */
    moveaxis(source: number, destination: number, options?: StreamOptions): MxArray;
    /** See `mx.split`. */
    split(indicesOrSections: number | readonly number[], axis?: number, options?: StreamOptions): MxArray[];
    /** See `mx.view`. */
    view(dtype: DtypeLike, options?: StreamOptions): MxArray;
    /** All axes reversed (`a.transpose()`). */
    readonly T: MxArray;
    /** The last two axes swapped. */
    readonly mT: MxArray;
  }
}

/** Split method arguments into numbers (or one list) and a trailing options object. */
function varargs(args: readonly (number | readonly number[] | StreamOptions)[], op: string): { values: readonly number[] | null; options?: StreamOptions } {
  let options: StreamOptions | undefined;
  let rest = args;
  const last = args[args.length - 1];
  if (last !== undefined && typeof last === "object" && !Array.isArray(last)) {
    options = last as StreamOptions;
    rest = args.slice(0, -1);
  }
  if (rest.length === 0) return { values: null, options };
  if (rest.length === 1 && Array.isArray(rest[0])) return { values: rest[0] as readonly number[], options };
  for (const v of rest) if (typeof v !== "number") throw new MlxError(`[${op}] Expected numbers or one list of numbers.`, 1);
  return { values: rest as readonly number[], options };
}

const proto = MxArray.prototype as unknown as Record<string, unknown>;
proto.reshape = function (this: MxArray, ...shape: (number | readonly number[] | StreamOptions)[]) {
  const { values, options } = varargs(shape, "reshape");
  return reshape(this, values ?? [], options);
};
proto.flatten = function (this: MxArray, startAxis?: number, endAxis?: number, options?: StreamOptions) {
  return flatten(this, startAxis, endAxis, options);
};
proto.squeeze = function (this: MxArray, axis?: number | readonly number[] | null, options?: StreamOptions) {
  return squeeze(this, axis, options);
};
proto.transpose = function (this: MxArray, ...axes: (number | readonly number[] | StreamOptions)[]) {
  const { values, options } = varargs(axes, "transpose");
  return transpose(this, values, options);
};
proto.swapaxes = function (this: MxArray, axis1: number, axis2: number, options?: StreamOptions) {
  return swapaxes(this, axis1, axis2, options);
};
proto.moveaxis = function (this: MxArray, source: number, destination: number, options?: StreamOptions) {
  return moveaxis(this, source, destination, options);
};
proto.split = function (this: MxArray, indicesOrSections: number | readonly number[], axis?: number, options?: StreamOptions) {
  return split(this, indicesOrSections, axis, options);
};
proto.view = function (this: MxArray, dtype: DtypeLike, options?: StreamOptions) {
  return view(this, dtype, options);
};
Object.defineProperty(MxArray.prototype, "T", {
  get(this: MxArray) {
    return transpose(this);
  },
  configurable: true,
});
Object.defineProperty(MxArray.prototype, "mT", {
  get(this: MxArray) {
    if (this.ndim < 2) throw new MlxError("[matrix_transpose] Input array must have at least 2 dimensions.", 1);
    return swapaxes(this, -2, -1);
  },
  configurable: true,
});
