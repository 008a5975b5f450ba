// Creation ops with MLX's defaults: zeros, ones, full (and their _like forms), arange,
// linspace, eye, identity, tri, tril, triu; empty, emptyLike and asarray as MLX defines them.
import { lib } from "../ffi/lib";
import { array, astype, MxArray, packShape, scalarHandle, type ArrayInput } from "./array";
import { streamArg, type StreamOrDevice } from "./device";
import { Dtype, float32, int32, toDtype, type DtypeLike } from "./dtype";
import { MlxError } from "./errors";
import { tidy } from "./memory";
import { broadcastAgainst } from "./ops/follow";
import { inShapelessTrace } from "./trace_flags";

export interface CreationOptions {
  dtype?: DtypeLike;
  stream?: StreamOrDevice;
}

type DtypeOrOptions = DtypeLike | CreationOptions | undefined;

function options(o: DtypeOrOptions): CreationOptions {
  if (o === undefined || o === null) return {};
  if (typeof o === "string" || o instanceof Dtype) return { dtype: o };
  if (typeof o !== "object") throw new MlxError(`[dtype] Expected a dtype or an options object, got ${String(o)}.`, 1);
  return o;
}

function dtypeOr(o: CreationOptions, fallback: Dtype, op: string): Dtype {
  return o.dtype === undefined ? fallback : toDtype(o.dtype, op);
}

function int(v: number, what: string, op: string): number {
  if (!Number.isInteger(v)) throw new MlxError(`[${op}] ${what} must be an integer, got ${v}.`, 1);
  if (v < -2147483648 || v > 2147483647) throw new MlxError(`[${op}] ${what} ${v} is outside the int32 range.`, 1);
  return v;
}

/**
 * An array of `shape` filled with `vals` (a scalar or an array broadcast to `shape`).
 * The dtype defaults to that of `vals` (int32 for whole numbers, float32 otherwise).
 * @example mx.full([2, 2], 3.5) // array([[3.5, 3.5],\n       [3.5, 3.5]], dtype=float32)
 */
export function full(shape: number | readonly number[], vals: number | boolean | bigint | MxArray, o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  const { dims, ndim } = packShape(shape, "full");
  const dtype = opts.dtype === undefined ? undefined : toDtype(opts.dtype, "full");
  const s = streamArg(opts.stream);
  if (vals instanceof MxArray) return new MxArray(lib.mlxb_full(dims, ndim, vals.handle("full"), dtype?.value ?? -1, s));
  // A JS scalar is made directly in the requested dtype (0.1 as float64 stays 0.1, -0 stays -0).
  const v = scalarHandle(vals, dtype);
  const h = lib.mlxb_full(dims, ndim, v, -1, s);
  lib.mlxb_array_free(v);
  return new MxArray(h);
}

/**
 * An array of zeros (float32 unless `dtype` says otherwise).
 * @example mx.zeros([2, 3], mx.int32)
 */
export function zeros(shape: number | readonly number[], o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  return full(shape, 0, { dtype: dtypeOr(opts, float32, "zeros"), stream: opts.stream });
}

/**
 * An array of ones (float32 unless `dtype` says otherwise).
 * @example mx.ones([3])
 */
export function ones(shape: number | readonly number[], o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  return full(shape, 1, { dtype: dtypeOr(opts, float32, "ones"), stream: opts.stream });
}

/** Zeros with the shape and dtype of `a`. @example mx.zerosLike(a) */
export function zerosLike(a: MxArray, o?: { stream?: StreamOrDevice }): MxArray {
  if (inShapelessTrace()) return followShape(a, 0, a.dtype, o?.stream);
  return full(a.shape, 0, { dtype: a.dtype, stream: o?.stream });
}

/** `v` as `dtype` in the shape of `a`, following a's shape on a shapeless replay. */
function followShape(a: MxArray, v: number | boolean | bigint | MxArray, dtype: Dtype, stream?: StreamOrDevice): MxArray {
  return tidy(() => astype(broadcastAgainst(v instanceof MxArray ? v : array(v, dtype), a, { stream }), dtype, { stream }));
}

/** Ones with the shape and dtype of `a`. @example mx.onesLike(a) */
export function onesLike(a: MxArray, o?: { stream?: StreamOrDevice }): MxArray {
  if (inShapelessTrace()) return followShape(a, 1, a.dtype, o?.stream);
  return full(a.shape, 1, { dtype: a.dtype, stream: o?.stream });
}

/**
 * `vals` in the shape of `a` (or of `a` and `vals` broadcast together, as MLX), with `a`'s
 * dtype unless given.
 * @example mx.fullLike(a, 7)
 */
export function fullLike(a: MxArray, vals: number | boolean | bigint | MxArray, o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  if (inShapelessTrace()) return followShape(a, vals, opts.dtype === undefined ? a.dtype : toDtype(opts.dtype), opts.stream);
  const shape = vals instanceof MxArray ? broadcastShapes(a.shape, vals.shape) : a.shape;
  return full(shape, vals, { dtype: opts.dtype ?? a.dtype, stream: opts.stream });
}

/**
 * The shape that shapes broadcast to (NumPy's rules), or MLX's error.
 * @example mx.broadcastShapes([2, 1], [3]) // [2, 3]
 */
export function broadcastShapes(...shapes: (readonly number[])[]): number[] {
  let out: number[] = [];
  for (const s of shapes) {
    const n = Math.max(out.length, s.length);
    const next = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const a = out[out.length - n + i] ?? 1;
      const b = s[s.length - n + i] ?? 1;
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
 * Evenly spaced values in [start, stop): `arange(stop)`, `arange(start, stop)`,
 * `arange(start, stop, step)`, with a trailing dtype or options. int32 when every argument is
 * a whole number, float32 otherwise, as MLX.
 * @example mx.arange(5) // array([0, 1, 2, 3, 4], dtype=int32)
 * @example mx.arange(0, 1, 0.25) // array([0, 0.25, 0.5, 0.75], dtype=float32)
 */
export function arange(stop: number, o?: DtypeOrOptions): MxArray;
export function arange(start: number, stop: number, o?: DtypeOrOptions): MxArray;
export function arange(start: number, stop: number, step: number, o?: DtypeOrOptions): MxArray;
export function arange(...args: (number | DtypeOrOptions)[]): MxArray {
  const nums: number[] = [];
  let o: DtypeOrOptions;
  for (const a of args) {
    if (typeof a === "number") {
      if (o !== undefined) throw new MlxError("[arange] Numbers must come before the dtype or options.", 1);
      nums.push(a);
    } else if (a !== undefined) o = a;
  }
  if (nums.length < 1 || nums.length > 3) throw new MlxError("[arange] Expected arange(stop), arange(start, stop) or arange(start, stop, step).", 1);
  const [start, stop, step] = nums.length === 1 ? [0, nums[0]!, 1] : [nums[0]!, nums[1]!, nums[2] ?? 1];
  const opts = options(o);
  const allInts = nums.every((x) => Number.isInteger(x));
  const dtype = dtypeOr(opts, allInts ? int32 : float32, "arange");
  return new MxArray(lib.mlxb_arange(start, stop, step, dtype.value, streamArg(opts.stream)));
}

/**
 * `num` (default 50) evenly spaced values from `start` to `stop` inclusive, float32 by default.
 * @example mx.linspace(0, 1, 5) // array([0, 0.25, 0.5, 0.75, 1], dtype=float32)
 */
export function linspace(start: number, stop: number, num = 50, o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  const n = int(num, "num", "linspace");
  return new MxArray(lib.mlxb_linspace(start, stop, n, dtypeOr(opts, float32, "linspace").value, streamArg(opts.stream)));
}

/**
 * An n x m array with ones on diagonal k (m defaults to n), float32 by default.
 * @example mx.eye(3, undefined, 1)
 */
export function eye(n: number, m?: number | null, k = 0, o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  const rows = int(n, "N", "eye");
  const cols = m === undefined || m === null ? rows : int(m, "M", "eye");
  return new MxArray(lib.mlxb_eye(rows, cols, int(k, "k", "eye"), dtypeOr(opts, float32, "eye").value, streamArg(opts.stream)));
}

/** The n x n identity, float32 by default. @example mx.identity(2, mx.int32) */
export function identity(n: number, o?: DtypeOrOptions): MxArray {
  return eye(n, n, 0, o);
}

/**
 * An n x m array with ones at and below diagonal k, float32 by default.
 * @example mx.tri(3, 4, 1)
 */
export function tri(n: number, m?: number | null, k = 0, o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  const rows = int(n, "N", "tri");
  const cols = m === undefined || m === null ? rows : int(m, "M", "tri");
  return new MxArray(lib.mlxb_tri(rows, cols, int(k, "k", "tri"), dtypeOr(opts, float32, "tri").value, streamArg(opts.stream)));
}

/** `a` with the elements above diagonal k (of the last two axes) zeroed. @example mx.tril(mx.ones([3, 3])) */
export function tril(a: MxArray, k = 0, o?: { stream?: StreamOrDevice }): MxArray {
  return new MxArray(lib.mlxb_tril(a.handle("tril"), int(k, "k", "tril"), streamArg(o?.stream)));
}

/** `a` with the elements below diagonal k (of the last two axes) zeroed. @example mx.triu(mx.ones([3, 3]), 1) */
export function triu(a: MxArray, k = 0, o?: { stream?: StreamOrDevice }): MxArray {
  return new MxArray(lib.mlxb_triu(a.handle("triu"), int(k, "k", "triu"), streamArg(o?.stream)));
}

/**
 * An array of `shape`, as MLX's `mx.empty`: MLX defines it as `zeros` (zero-filled, float32 unless
 * `dtype` says otherwise), and so does mlx-bun.
 * @example mx.empty([2, 3]) // array([[0, 0, 0],\n       [0, 0, 0]], dtype=float32)
 */
export function empty(shape: number | readonly number[], o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  return full(shape, 0, { dtype: dtypeOr(opts, float32, "empty"), stream: opts.stream });
}

/**
 * An array of `a`'s shape and dtype (or `dtype`), as MLX's `mx.empty_like`: zero-filled, as MLX's
 * `zeros_like`.
 * @example mx.emptyLike(mx.array([1.5, 2])) // array([0, 0], dtype=float32)
 */
export function emptyLike(a: MxArray, o?: DtypeOrOptions): MxArray {
  const opts = options(o);
  return full(a.shape, 0, { dtype: dtypeOr(opts, a.dtype, "empty_like"), stream: opts.stream });
}

/** Options of `mx.asarray`. */
export interface AsarrayOptions {
  dtype?: DtypeLike;
  /**
   * true: always copy; false: never copy (an error when a copy is needed); undefined (the
   * default): share the input's memory when possible (an mx.Array, or a TypedArray whose element
   * type is the dtype), copy otherwise.
   */
  copy?: boolean;
  stream?: StreamOrDevice;
}

/**
 * Convert the input to an array, as MLX's `mx.asarray`: like `mx.array`, with MLX's `copy`
 * rule. An mx.Array comes back as a new handle to the same data (converted when `dtype`
 * differs); a TypedArray is wrapped without a copy when its element type is the dtype (it must
 * then stay unchanged while the array is in use, as with `mx.array(t, { copy: false })`).
 * `copy: true` always gives fresh memory; `copy: false` fails where a copy is needed (a list, a
 * scalar, a dtype conversion, a Float64Array read as float32).
 *
 * @example
 * const t = new Float32Array([1, 2]);
 * mx.asarray(t)                 // shares t's memory
 * mx.asarray(t, { copy: true }) // a copy
 * mx.asarray([1, 2], { copy: false }) // throws: a list needs a copy
 */
export function asarray(value: ArrayInput, o?: AsarrayOptions | DtypeLike): MxArray {
  const opts: AsarrayOptions = o === undefined || o === null ? {} : typeof o === "string" || o instanceof Dtype ? { dtype: o } : (o as AsarrayOptions);
  const noCopy = () => new MlxError("[asarray] Unable to avoid copy while creating an array as requested.", 1);
  if (value instanceof MxArray) {
    const target = opts.dtype === undefined ? value.dtype : toDtype(opts.dtype, "asarray");
    if (target !== value.dtype) {
      if (opts.copy === false) throw noCopy();
      return value.astype(target, { stream: opts.stream });
    }
    if (opts.copy === true) {
      // A fresh buffer with the same bits (lazy, as MLX's copy).
      const t = scalarHandle(true, undefined);
      const h = lib.mlxb_where(t, value.handle("asarray"), value.handle("asarray"), streamArg(opts.stream));
      lib.mlxb_array_free(t);
      return new MxArray(h);
    }
    return array(value);
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    if (opts.copy === true) return array(value, { dtype: opts.dtype, stream: opts.stream });
    try {
      return array(value, { dtype: opts.dtype, copy: false });
    } catch (e) {
      if (!(e instanceof MlxError) || opts.copy === false) {
        if (e instanceof MlxError) throw new MlxError("[asarray] Cannot convert or import this TypedArray without a copy.", 1);
        throw e;
      }
      return array(value, { dtype: opts.dtype, stream: opts.stream });
    }
  }
  if (opts.copy === false) throw noCopy();
  return array(value, { dtype: opts.dtype, stream: opts.stream });
}
