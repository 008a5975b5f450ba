// Constants, dtype utilities (DtypeCategory, issubdtype, isdtype, resultType, finfo, iinfo) and
// the window functions (bartlett, hanning, hamming, blackman), as MLX has them.
import { MxArray } from "../array";
import { arange } from "../creation";
import type { StreamOrDevice } from "../device";
import {
  bfloat16, bool, complex64, Dtype, float16, float32, float64, int16, int32, int64, int8, promoteTypes, toDtype,
  uint16, uint32, uint64, uint8, type DtypeLike,
} from "../dtype";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import { abs, add, cos, divide, exp, multiply, notEqual, subtract } from "./elementwise";
import { checkHandle, lib } from "../../ffi/lib";
import { streamArg } from "../device";
import { bool as boolDtype } from "../dtype";
import { sl } from "./indexing";
import { handlesOf, int } from "./util";
import { max, sum } from "./reduce";
import { broadcastTo, reshape } from "./shape";

/** Euler's number. */
export const e = Math.E;
/** Pi. */
export const pi = Math.PI;
/** Positive infinity. */
export const inf = Number.POSITIVE_INFINITY;
/** Not a number. */
export const nan = Number.NaN;
/** The Euler-Mascheroni constant. */
export const eulerGamma = 0.5772156649015329;
/** Python's `None` in an index, adding an axis (the indexing issue gives it meaning in `a.index`). */
export const newaxis = null;

/** MLX's dtype categories. */
export const DtypeCategory = {
  complexfloating: "complexfloating",
  floating: "floating",
  inexact: "inexact",
  signedinteger: "signedinteger",
  unsignedinteger: "unsignedinteger",
  integer: "integer",
  number: "number",
  generic: "generic",
} as const;
export type DtypeCategoryName = keyof typeof DtypeCategory;
export const complexfloating = DtypeCategory.complexfloating;
export const floating = DtypeCategory.floating;
export const inexact = DtypeCategory.inexact;
export const signedinteger = DtypeCategory.signedinteger;
export const unsignedinteger = DtypeCategory.unsignedinteger;
export const integer = DtypeCategory.integer;
export const number = DtypeCategory.number;
export const generic = DtypeCategory.generic;

// Each category's parent (generic is the root).
const parent: Record<DtypeCategoryName, DtypeCategoryName | undefined> = {
  complexfloating: "inexact",
  floating: "inexact",
  inexact: "number",
  signedinteger: "integer",
  unsignedinteger: "integer",
  integer: "number",
  number: "generic",
  generic: undefined,
};

function categoryOf(d: Dtype): DtypeCategoryName {
  return d.category === "bool" ? "generic" : d.category;
}

function isCategory(x: unknown): x is DtypeCategoryName {
  return typeof x === "string" && x in DtypeCategory;
}

function within(c: DtypeCategoryName, ancestor: DtypeCategoryName): boolean {
  for (let k: DtypeCategoryName | undefined = c; k !== undefined; k = parent[k]) if (k === ancestor) return true;
  return false;
}

/**
 * Whether `a` (a dtype or category) is `b` or falls under it, as NumPy's and MLX's issubdtype.
 * @example mx.issubdtype(mx.float16, mx.floating) // true
 */
export function issubdtype(a: Dtype | DtypeCategoryName | DtypeLike, b: Dtype | DtypeCategoryName | DtypeLike): boolean {
  const ca = isCategory(a) ? a : undefined;
  const cb = isCategory(b) ? b : undefined;
  if (ca !== undefined && cb !== undefined) return within(ca, cb);
  if (ca !== undefined) return false; // a category is never under a single dtype
  const da = toDtype(a as DtypeLike, "issubdtype");
  if (cb !== undefined) return within(categoryOf(da), cb);
  return da === toDtype(b as DtypeLike, "issubdtype");
}

const kinds: Record<string, (d: Dtype) => boolean> = {
  bool: (d) => d === bool,
  "signed integer": (d) => d.category === "signedinteger",
  "unsigned integer": (d) => d.category === "unsignedinteger",
  integral: (d) => d.isInteger,
  "real floating": (d) => d.isFloating,
  "complex floating": (d) => d.isComplex,
  numeric: (d) => d !== bool,
};

/**
 * The Array API's isdtype: `kind` is a dtype, one of "bool", "signed integer",
 * "unsigned integer", "integral", "real floating", "complex floating", "numeric", or a list.
 * @example mx.isdtype(mx.int8, "integral") // true
 */
export function isdtype(dtype: DtypeLike, kind: DtypeLike | string | readonly (DtypeLike | string)[]): boolean {
  const d = toDtype(dtype, "isdtype");
  const list = Array.isArray(kind) ? kind : [kind];
  return list.some((k) => {
    if (k instanceof Dtype) return k === d;
    const f = kinds[k as string];
    if (f !== undefined) return f(d);
    try {
      return toDtype(k as DtypeLike, "isdtype") === d;
    } catch {
      throw new MlxError(`[isdtype] Unknown data type kind: '${String(k)}'.`, 1);
    }
  });
}

/**
 * The dtype MLX's promotion gives the arrays and dtypes together.
 * @example mx.resultType(mx.int8, mx.uint8) // mlx.core.int16
 */
export function resultType(...args: (MxArray | Dtype | DtypeLike)[]): Dtype {
  if (args.length === 0) throw new MlxError("[result_type] At least one array or dtype is required.", 1);
  let out: Dtype | undefined;
  for (const a of args) {
    let d: Dtype;
    if (a instanceof MxArray) d = a.dtype;
    else if (a instanceof Dtype || typeof a === "string") d = toDtype(a, "result_type");
    else throw new MlxError("[result_type] Inputs must be arrays or dtypes.", 1);
    out = out === undefined ? d : promoteTypes(out, d);
  }
  return out!;
}

/**
 * Whether `from` casts to `to` under the promotion rules: promoting the two gives `to`.
 * @example mx.canCast(mx.uint8, mx.int16) // true
 */
export function canCast(from: MxArray | DtypeLike, to: DtypeLike): boolean {
  const f = from instanceof MxArray ? from.dtype : toDtype(from, "can_cast");
  const t = toDtype(to, "can_cast");
  return promoteTypes(f, t) === t;
}

/** Machine limits of an inexact dtype (`mx.finfo`). */
export class Finfo {
  constructor(
    readonly dtype: Dtype,
    readonly min: number,
    readonly max: number,
    readonly eps: number,
    readonly smallestNormal: number,
    readonly bits: number,
  ) {}
  toString(): string {
    const g = (v: number) => (this.dtype === float32 ? v.toPrecision(6).replace(/e\+(\d)$/, "e+0$1").replace(/\.?0+e/, "e") : String(v));
    return `finfo(min=${g(this.min)}, max=${g(this.max)}, dtype=${this.dtype.name})`;
  }
}

/** Limits of an integer dtype (`mx.iinfo`); 64-bit limits are bigints, exactly. */
export class Iinfo {
  constructor(
    readonly dtype: Dtype,
    readonly min: number | bigint,
    readonly max: number | bigint,
    readonly bits: number,
  ) {}
  toString(): string {
    return `iinfo(min=${this.min}, max=${this.max}, dtype=${this.dtype.name})`;
  }
}

const f32max = 3.4028234663852886e38;

/**
 * Machine limits of a floating or complex dtype (complex64 reports float32's).
 * @example mx.finfo(mx.float16).max // 65504
 */
export function finfo(dtype: DtypeLike): Finfo {
  const d = toDtype(dtype, "finfo");
  switch (d) {
    case float16:
      return new Finfo(d, -65504, 65504, 2 ** -10, 2 ** -14, 16);
    case bfloat16:
      return new Finfo(d, -3.3895313892515355e38, 3.3895313892515355e38, 2 ** -7, 2 ** -126, 16);
    case float32:
    case complex64:
      return new Finfo(float32, -f32max, f32max, 2 ** -23, 2 ** -126, 32);
    case float64:
      return new Finfo(d, -Number.MAX_VALUE, Number.MAX_VALUE, Number.EPSILON, 2 ** -1022, 64);
    default:
      throw new MlxError(`[finfo] dtype ${d.name} is not inexact.`, 1);
  }
}

/**
 * Limits of an integer dtype.
 * @example mx.iinfo(mx.uint8).max // 255
 */
export function iinfo(dtype: DtypeLike): Iinfo {
  const d = toDtype(dtype, "iinfo");
  const bits = d.size * 8;
  switch (d) {
    case uint8:
    case uint16:
    case uint32:
      return new Iinfo(d, 0, 2 ** bits - 1, bits);
    case int8:
    case int16:
    case int32:
      return new Iinfo(d, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, bits);
    case uint64:
      return new Iinfo(d, 0n, 2n ** 64n - 1n, 64);
    case int64:
      return new Iinfo(d, -(2n ** 63n), 2n ** 63n - 1n, 64);
    default:
      throw new MlxError(`[iinfo] Only integer types supported but ${d.name} was provided`, 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Window functions: evaluated at k = 1 - M, 3 - M, ..., M - 1 (symmetric), in float32 as MLX.

function window(m: number, op: string, f: (x: MxArray) => MxArray, o?: { stream?: StreamOrDevice }): MxArray {
  if (!Number.isInteger(m)) throw new MlxError(`[${op}] M must be an integer, got ${m}.`, 1);
  if (m < 1) return arange(0, 0, 1, { dtype: float32, stream: o?.stream });
  if (m === 1) return arange(1, 2, 1, { dtype: float32, stream: o?.stream });
  return tidy(() => {
    const k = arange(1 - m, m, 2, { dtype: float32, stream: o?.stream });
    return f(divide(k, m - 1, o)); // x in [-1, 1]
  });
}

/**
 * The Hann window of M points.
 * @example mx.hanning(5) // array([0, 0.5, 1, 0.5, 0], dtype=float32) (to rounding)
 */
export function hanning(m: number, o?: { stream?: StreamOrDevice }): MxArray {
  return window(m, "hanning", (x) => add(0.5, multiply(0.5, cos(multiply(x, Math.PI, o), o), o), o), o);
}

/** The Hamming window of M points. @example mx.hamming(5) */
export function hamming(m: number, o?: { stream?: StreamOrDevice }): MxArray {
  return window(m, "hamming", (x) => add(0.54, multiply(0.46, cos(multiply(x, Math.PI, o), o), o), o), o);
}

/** The Blackman window of M points. @example mx.blackman(5) */
export function blackman(m: number, o?: { stream?: StreamOrDevice }): MxArray {
  return window(
    m,
    "blackman",
    (x) => add(add(0.42, multiply(0.5, cos(multiply(x, Math.PI, o), o), o), o), multiply(0.08, cos(multiply(x, 2 * Math.PI, o), o), o), o),
    o,
  );
}

/** The Bartlett (triangular) window of M points. @example mx.bartlett(5) */
export function bartlett(m: number, o?: { stream?: StreamOrDevice }): MxArray {
  return window(m, "bartlett", (x) => subtract(1, abs(x, o), o), o);
}

// ---------------------------------------------------------------------------------------------
// Compositions over the families: softmax, meshgrid.

/**
 * exp(a - max) / sum(exp(a - max)) over `axis` (default: all axes); `precise` computes
 * float16/bfloat16 inputs in float32.
 * @example mx.softmax(mx.array([1, 2, 3]), { axis: -1 })
 */
export function softmax(a: MxArray, options: { axis?: number | readonly number[] | null; precise?: boolean; stream?: StreamOrDevice } = {}): MxArray {
  const axis = options.axis ?? null;
  const s = options.stream;
  return tidy(() => {
    const half = a.dtype === float16 || a.dtype === bfloat16;
    const x = options.precise === true && half ? a.astype(float32, { stream: s }) : a;
    const e = exp(subtract(x, max(x, { axis, keepdims: true, stream: s }), { stream: s }), { stream: s });
    const out = divide(e, sum(e, { axis, keepdims: true, stream: s }), { stream: s });
    return options.precise === true && half ? out.astype(a.dtype, { stream: s }) : out;
  });
}

/**
 * Coordinate grids from 1-D arrays: "xy" (Cartesian, the default) or "ij" (matrix) indexing;
 * `sparse` returns broadcastable arrays instead of full grids.
 * @example mx.meshgrid([mx.array([1, 2, 3]), mx.array([4, 5])])
 */
export function meshgrid(arrays: readonly MxArray[], options: { sparse?: boolean; indexing?: "xy" | "ij"; stream?: StreamOrDevice } = {}): MxArray[] {
  const indexing = options.indexing ?? "xy";
  if (indexing !== "xy" && indexing !== "ij") throw new MlxError("[meshgrid] Invalid indexing value. Valid values are 'xy' and 'ij'.", 1);
  const n = arrays.length;
  const s = options.stream;
  const lengths = arrays.map((a) => a.size);
  // With "xy", the first two output axes trade places.
  const axisOf = (i: number) => (indexing === "xy" && n >= 2 && i < 2 ? 1 - i : i);
  const full = new Array<number>(n);
  lengths.forEach((len, i) => (full[axisOf(i)] = len));
  return arrays.map((a, i) => {
    const shape = new Array<number>(n).fill(1);
    shape[axisOf(i)] = lengths[i]!;
    const r = reshape(a, shape, { stream: s });
    if (options.sparse === true) return r;
    const out = broadcastTo(r, full, { stream: s });
    r.dispose();
    return out;
  });
}

/**
 * The identity, through which gradients do not flow (a view of `a`).
 * @example mx.stopGradient(mx.array([1, 2]))
 */
export function stopGradient(a: MxArray, options: { stream?: StreamOrDevice } = {}): MxArray {
  return new MxArray(checkHandle(lib.mlxb_stop_gradient(a.handle("stop_gradient"), streamArg(options.stream))));
}

/**
 * `inputs` unchanged (views), but evaluating them evaluates `dependencies` first.
 * @example const [y] = mx.depends([x], [sideEffect])
 */
export function depends(inputs: MxArray, dependencies: MxArray | readonly MxArray[]): MxArray;
export function depends(inputs: readonly MxArray[], dependencies: MxArray | readonly MxArray[]): MxArray[];
export function depends(inputs: MxArray | readonly MxArray[], dependencies: MxArray | readonly MxArray[]): MxArray | MxArray[] {
  const deps = dependencies instanceof MxArray ? [dependencies] : dependencies;
  const hs = handlesOf(deps, "depends");
  const one = (x: MxArray) => new MxArray(checkHandle(lib.mlxb_depends(x.handle("depends"), hs, deps.length, -1)));
  return inputs instanceof MxArray ? one(inputs) : inputs.map(one);
}

/**
 * The n-th discrete difference along `axis`: `a[1:] - a[:-1]` applied n times (for bool,
 * `a[1:] != a[:-1]`).
 * @example mx.diff(mx.array([1, 4, 9, 16])) // array([3, 5, 7], dtype=int32)
 */
export function diff(a: MxArray, n = 1, axis = -1, options: { stream?: StreamOrDevice } = {}): MxArray {
  int(n, "Order `n`", "diff");
  if (n < 0) throw new MlxError("[diff] Order `n` must be non-negative.", 1);
  if (!Number.isInteger(axis) || axis < -a.ndim || axis >= a.ndim) throw new MlxError("[diff] Axis is out of bounds for the array.", 1);
  const ax = axis < 0 ? axis + a.ndim : axis;
  if (n === 0) return reshape(a, a.shape, options);
  return tidy(() => {
    const lead = new Array<null>(ax).fill(null).map(() => sl());
    let cur = a;
    for (let i = 0; i < n; i++) {
      const hi = cur.index(...lead, sl(1));
      const lo = cur.index(...lead, sl(null, -1));
      cur = cur.dtype === boolDtype ? notEqual(hi, lo, options) : subtract(hi, lo, options);
    }
    return cur;
  });
}
