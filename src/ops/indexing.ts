// Indexing: `a.index(...)` (every read Python's `a[...]` can express), `a.at(...)` (the
// functional `a[...] = v` and MLX's `.at[...]` updates), and the ops take, takeAlongAxis,
// putAlongAxis, slice / sliceUpdate (dynamic starts), gather / scatter (+ add, prod, max,
// min), maskedScatter, diagonal, diag, trace. Kernels and messages: engine/prims/indexing.zig.
//
// Index forms (each beside its NumPy/MLX spelling):
//   a.index(1)                      a[1]
//   a.index(-1, 2)                  a[-1, 2]
//   a.index(mx.sl(1, null, 2))      a[1::2]          (mx.sl(start, stop, step); null = omitted)
//   a.index(mx.sl(null, null, -1))  a[::-1]
//   a.index(mx.newaxis, 0)          a[None, 0]       (mx.newaxis is null)
//   a.index("...", 0)               a[..., 0]
//   a.index(idx)                    a[idx]           (idx an integer mx.Array or a JS list)
//   a.index([0, 2], mx.sl(1, 3))    a[[0, 2], 1:3]
//   a.index("0, 1::2, None, ...")   a[0, 1::2, None, ...]   (a string holds any of the
//                                                            basic forms, comma-separated)
//   a.at(idx).set(v)                a[idx] = v       (returns the new array)
//   a.at(idx).add(v)                a.at[idx].add(v) (also subtract, multiply, divide,
//                                                     maximum, minimum; repeated indices
//                                                     accumulate)
//   a.at(mask).set(v)               a[mask] = v      (mask: a bool array)
import { checkHandle, lib } from "../../ffi/lib";
import { SCATTER_MODE, UNARY_OP } from "../../ffi/symbols";
import { array as toArray, astype, MxArray } from "../array";
import { arange, zeros } from "../creation";
import { streamArg } from "../device";
import { bool, type DtypeLike } from "../dtype";
import { MlxError } from "../errors";
import type { StreamOptions } from "./elementwise";
import { sum } from "./reduce";
import { inShapelessTrace } from "../trace_flags";
import { handlesOf, int, ints, list, operands, release, wrap, type ArrayOrScalar } from "./util";

const int32Max = 2147483647;
const int32Min = -2147483648;

/** A slice `start:stop:step` (null: omitted, as in Python). Make one with `mx.sl`. */
export class Slice {
  constructor(
    readonly start: number | null = null,
    readonly stop: number | null = null,
    readonly step: number | null = null,
  ) {}

  toString(): string {
    const f = (v: number | null) => (v === null ? "" : String(v));
    return this.step === null ? `${f(this.start)}:${f(this.stop)}` : `${f(this.start)}:${f(this.stop)}:${f(this.step)}`;
  }
}

/**
 * The slice `start:stop:step` for `a.index` and `a.at`; arguments left out or null are
 * omitted, as in Python. `mx.sl()` is `:`, `mx.sl(1)` is `1:`, `mx.sl(null, null, -1)` is `::-1`.
 */
export function sl(start: number | null = null, stop: number | null = null, step: number | null = null): Slice {
  for (const [v, what] of [[start, "start"], [stop, "stop"], [step, "step"]] as const) {
    if (v !== null && (typeof v !== "number" || !Number.isInteger(v))) throw new MlxError(`[sl] Slice ${what} must be an integer or null, got ${String(v)}.`, 1);
    if (v !== null && (v < int32Min || v > int32Max)) throw new MlxError("Slice indices must be 32-bit integers.", 1);
  }
  if (step === 0) throw new MlxError("[sl] Slice step cannot be zero.", 1);
  return new Slice(start, stop, step);
}

/** One index item: an integer, a slice, `mx.newaxis` (null), `"..."`, an integer (or, for `at`, bool) array or JS list, or a string of basic items. */
export type Index = number | Slice | null | string | MxArray | readonly unknown[];

type Item =
  | { kind: "int"; v: number }
  | { kind: "slice"; start: number | null; stop: number | null; step: number }
  | { kind: "none" }
  | { kind: "ellipsis" }
  | { kind: "array"; a: MxArray }
  // An Ellipsis that stands for no axes: it still separates advanced indices (NumPy's rule).
  | { kind: "sep" };

// ---------------------------------------------------------------------------------------------
// Parsing

const intPattern = /^[+-]?\d+$/;

function parseInt32(text: string, whole: string): number {
  if (!intPattern.test(text)) throw new MlxError(`[index] Cannot parse "${text}" in the index "${whole}".`, 1);
  const v = Number(text);
  if (v < int32Min || v > int32Max) throw new MlxError(`[index] Index ${text} is outside the int32 range.`, 1);
  return v;
}

function parseString(s: string, out: Item[]): void {
  for (const raw of s.split(",")) {
    const t = raw.trim();
    if (t === "") {
      if (s.trim() === "") continue;
      throw new MlxError(`[index] Empty item in the index "${s}".`, 1);
    }
    if (t === "..." || t === "Ellipsis") out.push({ kind: "ellipsis" });
    else if (t === "None" || t === "newaxis" || t === "null") out.push({ kind: "none" });
    else if (t.includes(":")) {
      const parts = t.split(":").map((p) => p.trim());
      if (parts.length > 3) throw new MlxError(`[index] Cannot parse "${t}" in the index "${s}".`, 1);
      const val = (p: string | undefined) => {
        if (p === undefined || p === "") return null;
        if (!intPattern.test(p)) throw new MlxError(`[index] Cannot parse "${p}" in the index "${s}".`, 1);
        const v = Number(p);
        if (v < int32Min || v > int32Max) throw new MlxError("Slice indices must be 32-bit integers.", 1);
        return v;
      };
      const step = val(parts[2]);
      if (step === 0) throw new MlxError("[index] Slice step cannot be zero.", 1);
      out.push({ kind: "slice", start: val(parts[0]), stop: val(parts[1]), step: step ?? 1 });
    } else out.push({ kind: "int", v: parseInt32(t, s) });
  }
}

/** Items with arrays made from JS lists; `made` collects arrays created here (to dispose). */
function parse(indices: readonly Index[], made: MxArray[]): Item[] {
  const out: Item[] = [];
  for (const x of indices) {
    if (x === null) out.push({ kind: "none" });
    else if (typeof x === "number") {
      if (!Number.isInteger(x)) throw new MlxError(`[index] Indices must be integers, got ${x}.`, 1);
      if (x < int32Min || x > int32Max) throw new MlxError(`[index] Index ${x} is outside the int32 range.`, 1);
      out.push({ kind: "int", v: x });
    } else if (typeof x === "string") parseString(x, out);
    else if (x instanceof Slice) out.push({ kind: "slice", start: x.start, stop: x.stop, step: x.step ?? 1 });
    else if (x instanceof MxArray) out.push({ kind: "array", a: x });
    else if (Array.isArray(x)) {
      const a = toArray(x as never);
      made.push(a);
      out.push({ kind: "array", a });
    } else throw new MlxError(`[index] Cannot index with ${typeof x === "object" ? Object.prototype.toString.call(x) : typeof x}.`, 1);
  }
  return out;
}

/** Ellipsis expanded (or full slices appended): one item per axis of `a`, plus the newaxes. */
function expand(items: Item[], ndim: number, isMask: boolean): Item[] {
  let ell = -1;
  let used = 0;
  items.forEach((it, i) => {
    if (it.kind === "ellipsis") {
      if (ell >= 0) throw new MlxError("An index can only have a single ellipsis (...)", 1);
      ell = i;
    } else if (it.kind === "array" && isMask) used += it.a.ndim;
    else if (it.kind !== "none") used += 1;
  });
  if (used > ndim) throw new MlxError(`Too many indices for array with ${ndim} dimensions.`, 1);
  const fill: Item[] = Array.from({ length: ndim - used }, () => ({ kind: "slice", start: null, stop: null, step: 1 }) as Item);
  if (ell < 0) return [...items, ...fill];
  return [...items.slice(0, ell), ...(fill.length > 0 ? fill : [{ kind: "sep" } as Item]), ...items.slice(ell + 1)];
}

/** Python's slice.indices: the first index and the length along an axis of size n. */
function sliceBounds(n: number, startIn: number | null, stopIn: number | null, step: number): { start: number; len: number } {
  const lo = step < 0 ? -1 : 0;
  const hi = step < 0 ? n - 1 : n;
  const adjust = (v: number | null, dflt: number) => {
    if (v === null) return dflt;
    if (v < 0) return Math.max(v + n, lo);
    return Math.min(v, hi);
  };
  const start = adjust(startIn, step < 0 ? hi : 0);
  const stop = adjust(stopIn, step < 0 ? lo : n);
  const len = step < 0 ? (stop < start ? Math.floor((start - stop - 1) / -step) + 1 : 0) : start < stop ? Math.floor((stop - start - 1) / step) + 1 : 0;
  return { start, len };
}

function checkInt(v: number, n: number, axis: number): number {
  const i = v < 0 ? v + n : v;
  if (i < 0 || i >= n) throw new MlxError(`[index] Index ${v} is out of bounds for axis ${axis} with size ${n}.`, 1);
  return i;
}

// ---------------------------------------------------------------------------------------------
// The plan shared by reads and updates

/** What an index expression does to `a`: per axis a region (start, step, length), the
 * advanced (array) axes, and how the result's dimensions are ordered. */
interface Plan {
  /** Per axis of a: [start, step] (the engine's region), and the slab length (1 for ints and arrays). */
  region: Int32Array;
  slab: number[];
  /** Axes indexed by arrays, and the arrays. */
  advAxes: number[];
  arrays: MxArray[];
  /** The broadcast shape of the arrays (empty without arrays). */
  b: number[];
  /** Lengths of the slice items in order (the basic dims of the result). */
  s: number[];
  nNone: number;
  /** Result dim i comes from dim perm[i] of (b ++ s ++ ones(nNone)). */
  perm: number[];
  shape: number[];
  /** True when no slice narrows or steps and nothing is indexed: the whole array. */
  identity: boolean;
}

function broadcastShapes(shapes: readonly (readonly number[])[]): number[] {
  let out: number[] = [];
  for (const s of shapes) {
    const n = Math.max(out.length, s.length);
    const next = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const x = i < n - out.length ? 1 : out[i - (n - out.length)]!;
      const y = i < n - s.length ? 1 : s[i - (n - s.length)]!;
      if (x !== y && x !== 1 && y !== 1) throw new MlxError(`[broadcast_shapes] Shapes (${out.join(",")}) and (${s.join(",")}) cannot be broadcast.`, 1);
      next[i] = x === 1 ? y : x;
    }
    out = next;
  }
  return out;
}

function plan(shape: readonly number[], items: Item[]): Plan {
  const ndim = shape.length;
  const region = new Int32Array(Math.max(2 * ndim, 1));
  const slab: number[] = [];
  const advAxes: number[] = [];
  const arrays: MxArray[] = [];
  const s: number[] = [];
  // Source positions of the result dims: "b" (the whole index block), ["s", j] or ["n", k].
  const order: (["b"] | ["s", number] | ["n", number])[] = [];
  let nNone = 0;
  let axis = 0;
  let identity = true;
  const hasArrays = items.some((it) => it.kind === "array");
  let firstAdv = -1;
  let lastAdv = -1;
  items.forEach((it, i) => {
    if (it.kind === "array" || (hasArrays && it.kind === "int")) {
      if (firstAdv < 0) firstAdv = i;
      lastAdv = i;
    }
  });
  // NumPy: the index dims go where the advanced items are when those are adjacent, else first.
  let adjacent = true;
  for (let i = firstAdv; i >= 0 && i <= lastAdv; i++) {
    const k = items[i]!.kind;
    if (k !== "array" && k !== "int") adjacent = false;
  }
  let placed = false;
  const placeB = () => {
    order.push(["b"]);
    placed = true;
  };
  if (hasArrays && !adjacent) placeB();
  for (const it of items) {
    if (it.kind === "sep") continue;
    if (it.kind === "none") {
      order.push(["n", nNone++]);
      continue;
    }
    const n = shape[axis]!;
    if (it.kind === "int") {
      identity = false;
      region[2 * axis] = checkInt(it.v, n, axis);
      region[2 * axis + 1] = 1;
      slab.push(1);
      if (hasArrays && adjacent && !placed) placeB();
    } else if (it.kind === "slice") {
      const bnd = sliceBounds(n, it.start, it.stop, it.step);
      if (bnd.len !== n || it.step !== 1) identity = false;
      region[2 * axis] = bnd.len === 0 ? 0 : bnd.start;
      region[2 * axis + 1] = bnd.len <= 1 ? 1 : it.step;
      slab.push(bnd.len);
      order.push(["s", s.length]);
      s.push(bnd.len);
    } else if (it.kind === "array") {
      identity = false;
      if (it.a.dtype === bool) throw new MlxError("[index] Boolean indices are not supported (MLX does not support them either); use a.at(mask).set(v) to write through a mask, or mx.where.", 1);
      region[2 * axis] = 0;
      region[2 * axis + 1] = 1;
      slab.push(1);
      advAxes.push(axis);
      arrays.push(it.a);
      if (adjacent && !placed) placeB();
    }
    axis++;
  }
  const b = hasArrays ? broadcastShapes(arrays.map((a) => a.shape)) : [];
  const perm: number[] = [];
  const outShape: number[] = [];
  for (const o of order) {
    if (o[0] === "b") {
      b.forEach((d, i) => {
        perm.push(i);
        outShape.push(d);
      });
    } else if (o[0] === "s") {
      perm.push(b.length + o[1]);
      outShape.push(s[o[1]]!);
    } else {
      perm.push(b.length + s.length + o[1]);
      outShape.push(1);
    }
  }
  if (nNone > 0) identity = false;
  return { region, slab, advAxes, arrays, b, s, nNone, perm, shape: outShape, identity };
}

function isIdentityPerm(perm: readonly number[]): boolean {
  return perm.every((p, i) => p === i);
}

/** Engine handles made along the way, freed together. */
class Temps {
  readonly hs: number[] = [];
  add(h: number): number {
    checkHandle(h);
    this.hs.push(h);
    return h;
  }
  free(): void {
    for (const h of this.hs) lib.mlxb_array_free(h);
    this.hs.length = 0;
  }
}

function shapeArg(dims: readonly number[]): Int32Array {
  return Int32Array.from(dims.length > 0 ? dims : [0]);
}

/** The array `a.index(...indices)` reads. */
function getItem(a: MxArray, indices: readonly Index[], stream: number): MxArray {
  const made: MxArray[] = [];
  const t = new Temps();
  try {
    const shape = a.shape;
    // A single integer under a shapeless compile: MLX's a[i] is a gather (index normalized
    // when traced, slice sizes as traced), which replays on other shapes; a slice would not.
    const parsed = parse(indices, made);
    const only = parsed.length === 1 ? parsed[0]! : undefined;
    if (only?.kind === "int" && shape.length > 0 && inShapelessTrace()) return take(a, checkInt(only.v, shape[0]!, 0), 0);
    const items = expand(parsed, shape.length, false);
    const p = plan(shape, items);
    const h = a.handle("index");
    if (p.identity) return wrap(lib.mlxb_reshape(h, shapeArg(p.shape), p.shape.length, stream));
    // The basic part as a view: ints and slices narrow their axes; array axes stay whole.
    const ndim = shape.length;
    const starts = new Int32Array(Math.max(ndim, 1));
    const stops = new Int32Array(Math.max(ndim, 1));
    const steps = new Int32Array(Math.max(ndim, 1));
    for (let d = 0; d < ndim; d++) {
      const adv = p.advAxes.includes(d);
      const start = adv ? 0 : p.region[2 * d]!;
      const step = adv ? 1 : p.region[2 * d + 1]!;
      const len = adv ? shape[d]! : p.slab[d]!;
      starts[d] = start;
      steps[d] = step;
      // An exclusive stop that the engine's clamping maps back to exactly `len` elements.
      stops[d] = len === 0 ? start : step > 0 ? start + (len - 1) * step + 1 : start + (len - 1) * step - 1;
      if (step < 0 && stops[d]! < 0) stops[d] = int32Min;
    }
    let v = t.add(lib.mlxb_slice(h, starts, stops, steps, ndim, stream));
    if (p.arrays.length > 0) {
      const sizes = shape.map((n, d) => (p.advAxes.includes(d) ? 1 : p.slab[d]!));
      const axes = Int32Array.from(p.advAxes);
      v = t.add(lib.mlxb_gather(v, handlesOf(p.arrays, "index"), p.arrays.length, axes, shapeArg(sizes), null, stream));
    }
    const flat = [...p.b, ...p.s, ...new Array<number>(p.nNone).fill(1)];
    if (isIdentityPerm(p.perm)) return wrap(lib.mlxb_reshape(v, shapeArg(flat), flat.length, stream));
    const r = t.add(lib.mlxb_reshape(v, shapeArg(flat), flat.length, stream));
    return wrap(lib.mlxb_transpose(r, Int32Array.from(p.perm.length > 0 ? p.perm : [0]), p.perm.length, stream));
  } finally {
    t.free();
    for (const m of made) m.dispose();
  }
}

type UpdateOp = "set" | "add" | "subtract" | "multiply" | "divide" | "maximum" | "minimum";

const modeOf: Record<UpdateOp, number> = {
  set: SCATTER_MODE.none,
  add: SCATTER_MODE.add,
  subtract: SCATTER_MODE.add,
  multiply: SCATTER_MODE.prod,
  divide: SCATTER_MODE.prod,
  maximum: SCATTER_MODE.max,
  minimum: SCATTER_MODE.min,
};

/** `a` with the indexed positions updated by `value` (MLX's setitem and `.at[]` ops). */
function setItem(a: MxArray, indices: readonly Index[], value: ArrayOrScalar, op: UpdateOp, stream: number): MxArray {
  const made: MxArray[] = [];
  const t = new Temps();
  const ops = operands([a, value], `at.${op}`);
  try {
    const shape = a.shape;
    const parsed = parse(indices, made);
    let vh = ops[1]!.h;
    // MLX builds subtract and divide from add and multiply.
    if (op === "subtract") vh = t.add(lib.mlxb_unary(UNARY_OP.negative, vh, stream));
    if (op === "divide") vh = t.add(lib.mlxb_unary(UNARY_OP.reciprocal, vh, stream));
    const only = parsed.length === 1 ? parsed[0]! : null;
    const mask = only !== null && only.kind === "array" && only.a.dtype === bool ? only.a : null;
    if (mask !== null) {
      if (op !== "set") throw new MlxError(`[at] A boolean mask supports only set, not ${op}.`, 1);
      const k = mask.ndim;
      if (k > shape.length || mask.shape.some((d, i) => d !== shape[i])) {
        throw new MlxError(`[masked_scatter] The boolean mask should have the same shape as the beginning of the indexed array but the mask has shape (${mask.shape.join(",")}) and the array has shape (${shape.join(",")})`, 1);
      }
      // The mask covers the leading axes: it applies to whole trailing blocks.
      const full = [...mask.shape, ...new Array<number>(shape.length - k).fill(1)];
      const m = t.add(lib.mlxb_reshape(mask.handle("at"), shapeArg(full), full.length, stream));
      const trailing = shape.slice(k);
      const vshape = shapeOfHandle(vh);
      const fitsBlock = vshape.length <= trailing.length && vshape.every((d, i) => d === 1 || d === trailing[trailing.length - vshape.length + i]);
      if (fitsBlock) {
        // The same value block for every selected position (NumPy's broadcasting): a select.
        const typed = t.add(lib.mlxb_astype(vh, a.dtype.value, stream));
        return wrap(lib.mlxb_where(m, typed, a.handle("at"), stream));
      }
      // Otherwise the values are taken in order, one per selected element.
      return wrap(lib.mlxb_masked_scatter(a.handle("at"), m, vh, stream));
    }
    const items = expand(parsed, shape.length, false);
    const p = plan(shape, items);
    // The update broadcast to the shape the read would have (leading 1s dropped, as MLX).
    let vshape = shapeOfHandle(vh);
    if (vshape.length > p.shape.length) {
      let k = 0;
      while (vshape.length - k > p.shape.length && vshape[k] === 1) k++;
      if (k > 0) {
        vshape = vshape.slice(k);
        vh = t.add(lib.mlxb_reshape(vh, shapeArg(vshape), vshape.length, stream));
      }
    }
    vh = t.add(lib.mlxb_broadcast(vh, shapeArg(p.shape), p.shape.length, stream));
    // Undo the read's transpose and reshape: b ++ slab.
    if (!isIdentityPerm(p.perm)) {
      const inv = new Array<number>(p.perm.length);
      p.perm.forEach((src, i) => (inv[src] = i));
      vh = t.add(lib.mlxb_transpose(vh, Int32Array.from(inv.length > 0 ? inv : [0]), inv.length, stream));
    }
    const target = [...p.b, ...p.slab];
    vh = t.add(lib.mlxb_reshape(vh, shapeArg(target), target.length, stream));
    const axes = Int32Array.from(p.advAxes.length > 0 ? p.advAxes : [0]);
    return wrap(lib.mlxb_scatter(a.handle("at"), vh, handlesOf(p.arrays, "at"), p.arrays.length, axes, p.region, modeOf[op], stream));
  } finally {
    release(ops);
    t.free();
    for (const m of made) m.dispose();
  }
}

function shapeOfHandle(h: number): number[] {
  const n = lib.mlxb_array_ndim(h);
  const dims = new Array<number>(n);
  for (let i = 0; i < n; i++) dims[i] = lib.mlxb_array_dim(h, i);
  return dims;
}

/** The updates `a.at(...indices)` offers; each returns a new array (MLX arrays are immutable). */
export class ArrayAt {
  constructor(
    private readonly a: MxArray,
    private readonly indices: readonly Index[],
    private readonly stream: number,
  ) {}
  /** `a[indices] = value`, functionally: a new array. Repeated indices: the last update wins. */
  set(value: ArrayOrScalar): MxArray {
    return setItem(this.a, this.indices, value, "set", this.stream);
  }
  /** value added at the indices (repeated indices accumulate). */
  add(value: ArrayOrScalar): MxArray {
    return setItem(this.a, this.indices, value, "add", this.stream);
  }
  /** value subtracted at the indices (as MLX: adds the negated value). */
  subtract(value: ArrayOrScalar): MxArray {
    return setItem(this.a, this.indices, value, "subtract", this.stream);
  }
  /** The indexed positions multiplied by value (repeated indices accumulate). */
  multiply(value: ArrayOrScalar): MxArray {
    return setItem(this.a, this.indices, value, "multiply", this.stream);
  }
  /** The indexed positions divided by value (as MLX: multiplied by its reciprocal, in a's dtype). */
  divide(value: ArrayOrScalar): MxArray {
    return setItem(this.a, this.indices, value, "divide", this.stream);
  }
  /** The maximum of the indexed positions and value. */
  maximum(value: ArrayOrScalar): MxArray {
    return setItem(this.a, this.indices, value, "maximum", this.stream);
  }
  /** The minimum of the indexed positions and value. */
  minimum(value: ArrayOrScalar): MxArray {
    return setItem(this.a, this.indices, value, "minimum", this.stream);
  }
}

// ---------------------------------------------------------------------------------------------
// Ops

/**
 * Elements of `a` at `indices` along `axis` (the index dimensions take the axis' place), or
 * of the flattened array when `axis` is omitted.
 * @example mx.take(mx.array([[1, 2], [3, 4]]), mx.array([1, 0]), 1) // [[2, 1], [4, 3]]
 */
export function take(a: MxArray, indices: MxArray | number | readonly number[], axis?: number | null, options?: StreamOptions): MxArray {
  return withIndexArray(indices, "take", (ih) => {
    const has = axis !== undefined && axis !== null;
    return wrap(lib.mlxb_take(a.handle("take"), ih, has ? int(axis, "Axis", "take") : 0, has ? 1 : 0, streamArg(options?.stream)));
  });
}

/**
 * Elements of `a` at `indices` along `axis`; `indices` has a's rank and broadcasts with it on
 * the other axes. Omitting the axis (null) indexes the flattened array.
 * @example mx.takeAlongAxis(mx.array([[10, 30, 20]]), mx.argsort(mx.array([[10, 30, 20]])), 1) // [[10, 20, 30]]
 */
export function takeAlongAxis(a: MxArray, indices: MxArray, axis: number | null, options?: StreamOptions): MxArray {
  const has = axis !== null && axis !== undefined;
  return wrap(lib.mlxb_take_along_axis(a.handle("take_along_axis"), indices.handle("take_along_axis"), has ? int(axis, "Axis", "take_along_axis") : 0, has ? 1 : 0, streamArg(options?.stream)));
}

/**
 * `a` with `values` written at `indices` along `axis` (the functional form of NumPy's
 * put_along_axis). Omitting the axis (null) indexes the flattened array.
 * @example mx.putAlongAxis(mx.zeros([2, 2]), mx.array([[1], [0]]), 1, 1) // [[0, 1], [1, 0]]
 */
export function putAlongAxis(a: MxArray, indices: MxArray, values: ArrayOrScalar, axis: number | null, options?: StreamOptions): MxArray {
  const has = axis !== null && axis !== undefined;
  const ops = operands([a, values], "put_along_axis");
  try {
    return wrap(lib.mlxb_put_along_axis(ops[0]!.h, indices.handle("put_along_axis"), ops[1]!.h, has ? int(axis, "Axis", "put_along_axis") : 0, has ? 1 : 0, SCATTER_MODE.none, streamArg(options?.stream)));
  } finally {
    release(ops);
  }
}

/**
 * MLX's `slice` with dynamic starts: the block of `a` of size `sliceSize` (one per axis of a)
 * starting at `startIndices` (an integer array, or a JS list) along `axes`.
 * @example mx.slice(mx.arange(10), mx.array([3]), [0], [2]) // [3, 4]
 */
export function slice(a: MxArray, startIndices: MxArray | readonly number[], axes: readonly number[], sliceSize: readonly number[], options?: StreamOptions): MxArray {
  return withIndexArray(startIndices, "slice", (sh) =>
    wrap(lib.mlxb_slice_dynamic(a.handle("slice"), sh, ints(axes, "Axes", "slice"), axes.length, ints(sliceSize, "Slice sizes", "slice"), sliceSize.length, streamArg(options?.stream))),
  );
}

/**
 * `a` with `update` written at `startIndices` (an integer array or JS list) along `axes`.
 * @example mx.sliceUpdate(mx.zeros([4]), mx.ones([2]), mx.array([1]), [0]) // [0, 1, 1, 0]
 */
export function sliceUpdate(a: MxArray, update: ArrayOrScalar, startIndices: MxArray | readonly number[], axes: readonly number[], options?: StreamOptions): MxArray {
  const ops = operands([a, update], "slice_update");
  try {
    return withIndexArray(startIndices, "slice_update", (sh) =>
      wrap(lib.mlxb_slice_update_dynamic(ops[0]!.h, ops[1]!.h, sh, ints(axes, "Axes", "slice_update"), axes.length, SCATTER_MODE.none, streamArg(options?.stream))),
    );
  } finally {
    release(ops);
  }
}

/**
 * MLX's gather: for each position of the (broadcast) `indices`, the block of `a` of size
 * `sliceSizes` starting at the indices along `axes` (0 along the others). The result's shape
 * is the index shape followed by `sliceSizes`.
 * @example mx.gather(mx.arange(6).reshape([3, 2]), [mx.array([2, 0])], [0], [1, 2]).shape // [2, 1, 2]
 */
export function gather(a: MxArray, indices: MxArray | readonly MxArray[], axes: number | readonly number[], sliceSizes: readonly number[], options?: StreamOptions): MxArray {
  const idx = indices instanceof MxArray ? [indices] : indices;
  const ax = list(axes);
  sameCount(idx, ax, "gather");
  return wrap(lib.mlxb_gather(a.handle("gather"), handlesOf(idx, "gather"), idx.length, ints(ax, "Axes", "gather"), ints(sliceSizes, "Slice sizes", "gather"), null, streamArg(options?.stream)));
}

// The engine takes one count for both lists.
function sameCount(idx: readonly MxArray[], axes: readonly number[], op: string): void {
  if (idx.length !== axes.length) throw new MlxError(`[${op}] Must have as many indices as axes (got ${idx.length} and ${axes.length}).`, 1);
}

function scatterWith(mode: number, a: MxArray, indices: MxArray | readonly MxArray[], updates: ArrayOrScalar, axes: number | readonly number[], options?: StreamOptions): MxArray {
  const idx = indices instanceof MxArray ? [indices] : indices;
  const ax = list(axes);
  sameCount(idx, ax, "scatter");
  const ops = operands([a, updates], "scatter");
  try {
    return wrap(lib.mlxb_scatter(ops[0]!.h, ops[1]!.h, handlesOf(idx, "scatter"), idx.length, ints(ax, "Axes", "scatter"), null, mode, streamArg(options?.stream)));
  } finally {
    release(ops);
  }
}

/**
 * MLX's scatter: `a` with the blocks at `indices` along `axes` replaced by `updates`, whose
 * shape is the index shape followed by one block size per axis of `a`.
 * @example mx.scatter(mx.zeros([3]), mx.array([2]), mx.array([[5]]), 0) // [0, 0, 5]
 */
export function scatter(a: MxArray, indices: MxArray | readonly MxArray[], updates: ArrayOrScalar, axes: number | readonly number[], options?: StreamOptions): MxArray {
  return scatterWith(SCATTER_MODE.none, a, indices, updates, axes, options);
}
/** scatter, adding the updates (repeated indices accumulate). */
export function scatterAdd(a: MxArray, indices: MxArray | readonly MxArray[], updates: ArrayOrScalar, axes: number | readonly number[], options?: StreamOptions): MxArray {
  return scatterWith(SCATTER_MODE.add, a, indices, updates, axes, options);
}
/** scatter, multiplying by the updates (repeated indices accumulate). */
export function scatterProd(a: MxArray, indices: MxArray | readonly MxArray[], updates: ArrayOrScalar, axes: number | readonly number[], options?: StreamOptions): MxArray {
  return scatterWith(SCATTER_MODE.prod, a, indices, updates, axes, options);
}
/** scatter, keeping the maximum. */
export function scatterMax(a: MxArray, indices: MxArray | readonly MxArray[], updates: ArrayOrScalar, axes: number | readonly number[], options?: StreamOptions): MxArray {
  return scatterWith(SCATTER_MODE.max, a, indices, updates, axes, options);
}
/** scatter, keeping the minimum. */
export function scatterMin(a: MxArray, indices: MxArray | readonly MxArray[], updates: ArrayOrScalar, axes: number | readonly number[], options?: StreamOptions): MxArray {
  return scatterWith(SCATTER_MODE.min, a, indices, updates, axes, options);
}

/**
 * `a` with the positions where `mask` is true filled, in row-major order, from `source`
 * (a single element fills them all): the functional form of `a[mask] = source`.
 * @example mx.maskedScatter(mx.zeros([3]), mx.array([true, false, true]), mx.array([1, 2])) // [1, 0, 2]
 */
export function maskedScatter(a: MxArray, mask: MxArray, source: ArrayOrScalar, options?: StreamOptions): MxArray {
  const ops = operands([a, source], "masked_scatter");
  try {
    return wrap(lib.mlxb_masked_scatter(ops[0]!.h, mask.handle("masked_scatter"), ops[1]!.h, streamArg(options?.stream)));
  } finally {
    release(ops);
  }
}

/**
 * The diagonal of axes `axis1`, `axis2` at `offset` (positive: above the main diagonal), as a
 * new last axis: a view.
 * @example mx.diagonal(mx.arange(9).reshape([3, 3]), 1) // [1, 5]
 */
export function diagonal(a: MxArray, offset = 0, axis1 = 0, axis2 = 1, options?: StreamOptions): MxArray {
  return wrap(lib.mlxb_diagonal(a.handle("diagonal"), int(offset, "Offset", "diagonal"), int(axis1, "Axis", "diagonal"), int(axis2, "Axis", "diagonal"), streamArg(options?.stream)));
}

/**
 * A 2-D array with the 1-D `a` on its k-th diagonal, or the k-th diagonal of a 2-D `a`.
 * @example mx.diag(mx.array([1, 2])) // [[1, 0], [0, 2]]
 */
export function diag(a: MxArray, k = 0, options?: StreamOptions): MxArray {
  int(k, "k", "diag");
  if (a.ndim === 2) return diagonal(a, k, 0, 1, options);
  if (a.ndim !== 1) throw new MlxError(`[diag] array must be 1-D or 2-D, got array with ${a.ndim} dimensions.`, 1);
  const m = a.shape[0]!;
  const n = m + Math.abs(k);
  // a scattered over the diagonal's positions, given as row and column index arrays.
  const z = zeros([n, n], { dtype: a.dtype, stream: options?.stream });
  const rows = arange(k >= 0 ? 0 : -k, (k >= 0 ? 0 : -k) + m);
  const cols = arange(k >= 0 ? k : 0, (k >= 0 ? k : 0) + m);
  const upd = a.reshape([m, 1, 1]);
  try {
    return scatter(z, [rows, cols], upd, [0, 1], options);
  } finally {
    for (const x of [z, rows, cols, upd]) x.dispose();
  }
}

/**
 * The sum along the diagonal of axes `axis1`, `axis2` at `offset`, in `dtype` when given.
 * @example mx.trace(mx.arange(9).reshape([3, 3])) // 12
 */
export function trace(a: MxArray, offset = 0, axis1 = 0, axis2 = 1, dtype?: DtypeLike | null, options?: StreamOptions): MxArray {
  if (a.ndim < 2) throw new MlxError(`[trace] Array must have at least two dimensions, but got ${a.ndim} dimensions.`, 1);
  const d = diagonal(a, offset, axis1, axis2, options);
  try {
    if (dtype === undefined || dtype === null) return sum(d, { axis: -1, stream: options?.stream });
    const c = astype(d, dtype, options);
    try {
      return sum(c, { axis: -1, stream: options?.stream });
    } finally {
      c.dispose();
    }
  } finally {
    d.dispose();
  }
}

function withIndexArray<T>(indices: MxArray | number | readonly number[], op: string, fn: (h: number) => T): T {
  if (indices instanceof MxArray) return fn(indices.handle(op));
  const tmp = toArray(typeof indices === "number" ? indices : (indices as number[]), "int32");
  try {
    return fn(tmp.handle(op));
  } finally {
    tmp.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// mx.Array methods

declare module "../array" {
  interface MxArray {
    /** Python's `a[...]`: see the index forms at the top of src/ops/indexing.ts. Basic indexing returns a view. */
    index(...indices: Index[]): MxArray;
    /** MLX's `a.at[...]` and the functional form of `a[...] = v`: `a.at(0, mx.sl(1)).set(5)`. */
    at(...indices: Index[]): ArrayAt;
    /** See mx.diagonal. */
    diagonal(offset?: number, axis1?: number, axis2?: number, options?: StreamOptions): MxArray;
    /** See mx.diag. */
    diag(k?: number, options?: StreamOptions): MxArray;
  }
}

MxArray.prototype.index = function (this: MxArray, ...indices: Index[]): MxArray {
  return getItem(this, indices, streamArg(undefined));
};
MxArray.prototype.at = function (this: MxArray, ...indices: Index[]): ArrayAt {
  return new ArrayAt(this, indices, streamArg(undefined));
};
MxArray.prototype.diagonal = function (this: MxArray, offset = 0, axis1 = 0, axis2 = 1, options?: StreamOptions): MxArray {
  return diagonal(this, offset, axis1, axis2, options);
};
MxArray.prototype.diag = function (this: MxArray, k = 0, options?: StreamOptions): MxArray {
  return diag(this, k, options);
};

declare module "../array" {
  interface MxArray {
    /** Python's `for row in a`: the sub-arrays along the first axis (views). A 0-d array is not iterable. */
    [Symbol.iterator](): Iterator<MxArray>;
  }
}

MxArray.prototype[Symbol.iterator] = function* (this: MxArray): Generator<MxArray> {
  if (this.ndim === 0) throw new MlxError("iter() 0-dimensional array.", 1);
  const n = this.shape[0]!;
  for (let i = 0; i < n; i++) yield this.index(i);
};
