// mx.Array: the TypeScript face of an engine array handle, and mx.array(): arrays from JS values.
import { asBytes, checkHandle, checkStatus, engineError, lib, trackHandle, viewArrayData, wrapHostData } from "../ffi/lib";
import { streamArg, type StreamOrDevice } from "./device";
import {
  bfloat16, bool, complex64, Dtype, dtypeFromValue, float16, float32, float64, int16, int32, int64, int8,
  isIntegral, numberDtype, promoteTypes, toDtype, uint16, uint32, uint64, uint8, type DtypeLike,
} from "./dtype";
import { MlxError } from "./errors";
import { formatArray, type PrintValue } from "./print";
import { printOptions } from "./printoptions";
import { track } from "./scope";

/** A complex64 element as JS sees it. */
export interface Complex {
  re: number;
  im: number;
}

/** One element read out of an array: numbers for most dtypes, bigint for 64-bit integers. */
export type Scalar = number | boolean | bigint | Complex;
/** Nested lists of scalars, as `tolist()` returns. */
export type NestedList = Scalar | NestedList[];

/** The TypedArray an array's data reads into, by dtype. */
export type DataArray =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Float32Array | Float64Array | Float16Array;

const useAfterDispose = 2; // ERROR.invalid_handle

/**
 * An MLX array: an immutable, lazily computed n-dimensional array living in the engine.
 * Create one with `mx.array(...)` or an op; compute it with `mx.eval` (or implicitly by
 * reading it: `item`, `tolist`, `toTypedArray`, printing).
 *
 * Release it with `dispose()` / `using`, or inside `mx.tidy`; if you do neither, the garbage
 * collector releases it (and sees its size, so memory stays bounded).
 */
export class MxArray {
  #h: number;
  // Keeps the handle's slot alive and tells the GC how big the array is; see ffi/lib.ts
  // trackHandle. Null while a tidy scope owns the array (it will dispose it, or hand it over).
  #gc: ArrayBuffer | null = null;
  #shape: readonly number[] | undefined;
  #dtype: Dtype | undefined;
  #size = -1;
  // Data bytes the collector already counts elsewhere (a wrapped TypedArray's own memory):
  // reported again they would only make it collect more often.
  #hostBytes = false;
  /** @internal set by `mx.keep`: a tidy scope will not dispose this array. */
  kept = false;

  /**
   * @internal Wrap an engine handle (taking ownership of it). Use `mx.array` to create arrays.
   * `hostData`: the array's data is host memory the garbage collector already sees.
   */
  constructor(handle: number, hostData = false) {
    this.#h = checkHandle(handle);
    this.#hostBytes = hostData;
    if (!track(this)) this.escape();
  }

  /** @internal Put the array under the GC backstop (once; a no-op after dispose). */
  escape(): void {
    if (this.#gc !== null || this.#h === 0) return;
    this.#gc = trackHandle(this.#h, this.#hostBytes ? 0 : lib.mlxb_array_nbytes(this.#h));
  }

  /** @internal The engine handle; throws if the array was disposed. */
  handle(op = "array"): number {
    if (this.#h === 0) throw new MlxError(`[${op}] The array was used after it was disposed.`, useAfterDispose);
    return this.#h;
  }

  /** True once `dispose()` has been called. */
  get disposed(): boolean {
    return this.#h === 0;
  }

  /** The array's dimensions. */
  get shape(): readonly number[] {
    if (this.#shape === undefined) {
      const h = this.handle("shape");
      const n = checkStatus(lib.mlxb_array_ndim(h));
      const dims = new Array<number>(n);
      for (let i = 0; i < n; i++) dims[i] = checkStatus(lib.mlxb_array_dim(h, i));
      this.#shape = dims; // readonly to TypeScript; not frozen (freezing cost more than the read)
    }
    return this.#shape;
  }

  /** The element type (`mx.float32`, ...). */
  get dtype(): Dtype {
    if (this.#dtype === undefined) this.#dtype = dtypeFromValue(checkStatus(lib.mlxb_array_dtype(this.handle("dtype"))));
    return this.#dtype;
  }

  /** Number of elements. */
  get size(): number {
    if (this.#size < 0) {
      let n = 1;
      for (const d of this.shape) n *= d;
      this.#size = n;
    }
    return this.#size;
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** Bytes per element. */
  get itemsize(): number {
    return this.dtype.size;
  }

  /** Bytes of all elements. */
  get nbytes(): number {
    return this.size * this.itemsize;
  }

  /** Release the array's memory now. Idempotent; using the array afterwards throws. */
  dispose(): void {
    if (this.#h === 0) return;
    const h = this.#h;
    this.#h = 0;
    // Under the GC backstop, the slot stays reserved until #gc is collected, so its finalizer
    // can never hit a reused slot; an array no finalizer knows frees its slot at once.
    checkStatus(this.#gc === null ? lib.mlxb_array_free(h) : lib.mlxb_array_dispose(h));
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Whether the data has been computed. */
  get evaluated(): boolean {
    return checkStatus(lib.mlxb_array_is_evaluated(this.handle("evaluated"))) === 1;
  }

  /**
   * A copy converted to `dtype`.
   * @example mx.array([1.5, 2.5]).astype(mx.int32) // array([1, 2], dtype=int32)
   */
  astype(dtype: DtypeLike, options: { stream?: StreamOrDevice } = {}): MxArray {
    return new MxArray(lib.mlxb_astype(this.handle("astype"), toDtype(dtype, "astype").value, streamArg(options.stream)));
  }

  /**
   * The single element of a size-1 array as a JS value (evaluates the array).
   * @example mx.array([[7]]).item() // 7
   */
  item(): Scalar {
    if (this.size !== 1) throw new MlxError("[item] Only length-1 arrays can be converted to scalars.", 1);
    return readElements(this, 0, 1)[0]!;
  }

  /**
   * The elements as nested JS arrays (evaluates the array); a 0-d array gives its scalar.
   * @example mx.array([[1, 2], [3, 4]]).tolist() // [[1, 2], [3, 4]]
   */
  tolist(): NestedList {
    const flat = readElements(this, 0, this.size);
    const shape = this.shape;
    if (shape.length === 0) return flat[0]!;
    let pos = 0;
    const build = (axis: number): NestedList[] => {
      const n = shape[axis]!;
      const out = new Array<NestedList>(n);
      for (let i = 0; i < n; i++) out[i] = axis === shape.length - 1 ? flat[pos++]! : build(axis + 1);
      return out;
    };
    return build(0);
  }

  /**
   * The data as a row-major TypedArray (evaluates the array).
   *
   * - By default a copy. With `{ copy: false }`, a view of the engine's buffer, shared when
   *   the layout allows (else of one contiguous copy); the view keeps the buffer alive.
   * - float16 gives a Float16Array, bool a Uint8Array, complex64 a Float32Array of
   *   interleaved (re, im), int64/uint64 BigInt64Array/BigUint64Array.
   * - bfloat16 has no TypedArray: ask for `{ dtype: "float32" }` (values) or
   *   `{ bits: true }` (the raw uint16 bits). `dtype` converts any array on the way out.
   *
   * @example mx.arange(4).toTypedArray() // Int32Array [0, 1, 2, 3]
   */
  toTypedArray(options: { copy?: boolean; dtype?: DtypeLike; bits?: boolean } = {}): DataArray {
    const h = this.handle("toTypedArray");
    let dtype = options.dtype === undefined ? this.dtype : toDtype(options.dtype, "toTypedArray");
    if (options.bits === true) {
      if (dtype.size !== 2 || !dtype.isFloating) {
        throw new MlxError(`[toTypedArray] bits: true is for float16 and bfloat16 arrays, not ${dtype.name}.`, 1);
      }
    } else if (dtype === bfloat16) {
      throw new MlxError(
        "[toTypedArray] bfloat16 has no TypedArray type; pass { dtype: \"float32\" } for its values or { bits: true } for its raw uint16 bits.",
        1,
      );
    }
    const nbytes = this.size * dtype.size;
    const ab = viewArrayData(h, dtype.value, nbytes);
    const data = options.copy === false ? ab : ab.slice(0);
    if (options.bits === true) return new Uint16Array(data);
    return typedView(dtype, data);
  }

  /** MLX's repr: `array([1, 2, 3], dtype=int32)`. Evaluates the array. */
  toString(): string {
    const shape = this.shape;
    const dtype = this.dtype;
    const values = this.size === 0 ? [] : readElements(this, 0, this.size);
    return formatArray(shape, dtype.name, (i) => toPrintValue(values[i]!), printOptions());
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.disposed ? "array(<disposed>)" : this.toString();
  }

  /** JSON has no arrays of other dtypes: an array serialises as its nested list (64-bit ints as strings). */
  toJSON(): unknown {
    return JSON.parse(JSON.stringify(this.tolist(), (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
  }
}

function toPrintValue(v: Scalar): PrintValue {
  if (typeof v === "object") return [v.re, v.im];
  return v;
}

function typedView(dtype: Dtype, data: ArrayBuffer): DataArray {
  switch (dtype) {
    case bool:
    case uint8:
      return new Uint8Array(data);
    case uint16:
      return new Uint16Array(data);
    case uint32:
      return new Uint32Array(data);
    case uint64:
      return new BigUint64Array(data);
    case int8:
      return new Int8Array(data);
    case int16:
      return new Int16Array(data);
    case int32:
      return new Int32Array(data);
    case int64:
      return new BigInt64Array(data);
    case float16:
      return new Float16Array(data);
    case float32:
    case complex64:
      return new Float32Array(data);
    case float64:
      return new Float64Array(data);
    default:
      throw new MlxError(`[toTypedArray] No TypedArray for ${dtype.name}.`, 1);
  }
}

/** Elements [start, start + count) as JS scalars. */
function readElements(a: MxArray, start: number, count: number): Scalar[] {
  const dtype = a.dtype;
  const h = a.handle("read");
  // Read in a dtype whose TypedArray holds every value exactly.
  const wide = dtype === bool ? uint8 : dtype.isFloating ? float64 : dtype === int64 || dtype === uint64 ? dtype : dtype === complex64 ? complex64 : float64;
  const n = a.size;
  const ab = viewArrayData(h, wide.value, n * wide.size);
  const out = new Array<Scalar>(count);
  if (dtype === bool) {
    const v = new Uint8Array(ab);
    for (let i = 0; i < count; i++) out[i] = v[start + i] !== 0;
  } else if (dtype === complex64) {
    const v = new Float32Array(ab);
    for (let i = 0; i < count; i++) out[i] = { re: v[2 * (start + i)]!, im: v[2 * (start + i) + 1]! };
  } else {
    const v = typedView(wide, ab) as Float64Array | BigInt64Array | BigUint64Array;
    for (let i = 0; i < count; i++) out[i] = v[start + i]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// mx.array(...)

/** What `mx.array` accepts. */
export type ArrayInput = number | boolean | bigint | Complex | MxArray | ArrayBufferView | readonly ArrayInput[];

export interface ArrayOptions {
  /** The dtype; default inferred as MLX does (bool, int32 or int64, float32, complex64). */
  dtype?: DtypeLike;
  /** For TypedArrays: false wraps the memory without a copy (it must stay unchanged while used). */
  copy?: boolean;
  /** For TypedArrays: the shape (default 1-D). */
  shape?: readonly number[];
  /**
   * For TypedArrays: the data holds the raw bits of `dtype` (of the same item size), e.g. a
   * Uint16Array of bfloat16 or float16 bits. No conversion happens.
   */
  bits?: boolean;
  stream?: StreamOrDevice;
}

function isComplex(v: unknown): v is Complex {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "re" in v && "im" in v && !(v instanceof MxArray);
}

function typedArrayDtype(v: ArrayBufferView): Dtype {
  if (v instanceof Float32Array) return float32;
  // MLX turns float64 NumPy arrays into float32 unless asked; TypedArrays play NumPy's part here.
  if (v instanceof Float64Array) return float32;
  if (typeof Float16Array !== "undefined" && v instanceof Float16Array) return float16;
  if (v instanceof Int32Array) return int32;
  if (v instanceof Uint8Array || v instanceof Uint8ClampedArray) return uint8;
  if (v instanceof Int8Array) return int8;
  if (v instanceof Int16Array) return int16;
  if (v instanceof Uint16Array) return uint16;
  if (v instanceof Uint32Array) return uint32;
  if (v instanceof BigInt64Array) return int64;
  if (v instanceof BigUint64Array) return uint64;
  throw new MlxError(`[array] Unsupported TypedArray ${v.constructor.name}.`, 1);
}

function storedDtype(v: ArrayBufferView): Dtype {
  return v instanceof Float64Array ? float64 : typedArrayDtype(v);
}

function shapeArray(shape: readonly number[], op: string): Int32Array {
  const out = new Int32Array(Math.max(shape.length, 1));
  shape.forEach((d, i) => {
    if (!Number.isInteger(d)) throw new MlxError(`[${op}] Shape dimensions must be integers, got ${d}.`, 1);
    if (d < 0) throw new MlxError(`[${op}] Negative dimensions not allowed.`, 1);
    if (d > 2147483647) throw new MlxError(`[${op}] Dimension ${d} is larger than the maximum of 2147483647.`, 1);
    out[i] = d;
  });
  return out;
}

/** @internal Validate a JS shape (number or list) and pack it for the engine. */
export function packShape(shape: number | readonly number[], op: string): { dims: Int32Array; ndim: number } {
  const list = typeof shape === "number" ? [shape] : shape;
  if (!Array.isArray(list)) throw new MlxError(`[${op}] Expected a shape (a number or a list of numbers).`, 1);
  return { dims: shapeArray(list, op), ndim: list.length };
}

function fromTypedArray(v: ArrayBufferView, options: ArrayOptions): MxArray {
  const elems = v.byteLength / (v as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  const shape = options.shape ?? [elems];
  const { dims, ndim } = packShape(shape, "array");
  let count = 1;
  for (const d of shape) count *= d;
  if (count !== elems) throw new MlxError(`[array] Cannot reshape data of size ${elems} into shape (${shape.join(",")}).`, 1);
  let stored = storedDtype(v);
  const target = options.dtype === undefined ? typedArrayDtype(v) : toDtype(options.dtype, "array");
  if (options.bits === true) {
    const itemsize = (v as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
    if (options.dtype === undefined || target.size !== itemsize) {
      throw new MlxError(`[array] bits: true needs a dtype whose item size is the TypedArray's (${itemsize} bytes).`, 1);
    }
    stored = target;
  }
  if (options.copy === false) {
    if (target !== stored) {
      throw new MlxError(`[array] copy: false needs the data's own dtype (${stored.name}), not ${target.name}.`, 1);
    }
    return new MxArray(wrapHostData(v, stored.value, dims, ndim), true);
  }
  return convertedHandle(lib.mlxb_array_from_data(asBytes(v), stored.value, dims, ndim, streamArg(options.stream)), stored, target, options.stream);
}

interface Flat {
  shape: number[];
  values: (number | boolean | bigint | Complex)[];
  kind: 0 | 1 | 2 | 3 | 4; // bool, int, bigint (int64), float, complex
  bigIntRange: boolean; // an integer needs int64
}

/** Flatten nested lists, checking they are rectangular (MLX's messages). */
function flatten(value: ArrayInput): Flat {
  const flat: Flat = { shape: [], values: [], kind: 0, bigIntRange: false };
  // Shape from the first element at each depth.
  let probe: unknown = value;
  while (Array.isArray(probe)) {
    flat.shape.push(probe.length);
    probe = probe[0];
  }
  const visit = (v: unknown, depth: number): void => {
    if (Array.isArray(v)) {
      if (depth >= flat.shape.length) throw new MlxError("[array] Initialization encountered extra dimension.", 1);
      if (v.length !== flat.shape[depth]) throw new MlxError("[array] Initialization encountered non-uniform length.", 1);
      for (const x of v) visit(x, depth + 1);
      return;
    }
    if (depth !== flat.shape.length) throw new MlxError("[array] Initialization encountered non-uniform length.", 1);
    if (typeof v === "boolean") {
      flat.values.push(v);
    } else if (typeof v === "number") {
      if (isIntegral(v)) {
        if (flat.kind < 1) flat.kind = 1;
        if (v < -(2 ** 31) || v >= 2 ** 31) flat.bigIntRange = true;
      } else if (flat.kind < 3) flat.kind = 3;
      flat.values.push(v);
    } else if (typeof v === "bigint") {
      if (flat.kind < 2) flat.kind = 2;
      flat.values.push(v);
    } else if (isComplex(v)) {
      flat.kind = 4;
      flat.values.push(v);
    } else {
      throw new MlxError(`[array] Invalid type ${v === null ? "null" : typeof v} received in array initialization.`, 1);
    }
  };
  visit(value, 0);
  return flat;
}

function inferredDtype(flat: Flat): Dtype {
  switch (flat.kind) {
    case 0:
      return flat.values.length === 0 ? float32 : bool;
    case 1:
      return flat.bigIntRange ? int64 : int32;
    case 2:
      return int64;
    case 3:
      return float32;
    default:
      return complex64;
  }
}

function toNumber(v: number | boolean | bigint | Complex): number {
  return typeof v === "object" ? v.re : Number(v);
}

function toBigInt(v: number | boolean | bigint | Complex, target: Dtype): bigint {
  const b = typeof v === "bigint" ? v : BigInt(typeof v === "boolean" ? Number(v) : (v as number));
  const lo = -(2n ** 63n); // negative values wrap into uint64, as C++ casts do
  const hi = target === uint64 ? 2n ** 64n : 2n ** 63n;
  if (target.isInteger && target !== uint64 && b >= 2n ** 63n) {
    throw new MlxError(`[array] Integer ${b} is outside the range of int64.`, 1);
  }
  if (b < lo || b >= hi) throw new MlxError(`[array] Integer ${b} is outside the range of ${target === uint64 ? "uint64" : "int64"}.`, 1);
  return b;
}

function fromFlat(flat: Flat, target: Dtype, stream: StreamOrDevice): MxArray {
  const { dims, ndim } = packShape(flat.shape, "array");
  const n = flat.values.length;
  const s = streamArg(stream);
  // Build the data in a dtype that holds the JS values exactly, then let the engine convert
  // (its conversions are MLX's: 300 -> uint8 gives 44, integers wrap as C++ casts do).
  let source: Dtype;
  let data: ArrayBufferView;
  if (flat.kind === 4 && target === complex64) {
    source = complex64;
    const d = new Float32Array(2 * n);
    flat.values.forEach((v, i) => {
      const c = isComplex(v) ? v : { re: Number(v), im: 0 };
      d[2 * i] = c.re;
      d[2 * i + 1] = c.im;
    });
    data = d;
  } else if ((flat.kind === 1 || flat.kind === 2) && (target.isInteger || target === bool)) {
    // Integers to an integer type go through int64 (uint64 kept unsigned), wrapping like C++.
    source = target === uint64 ? uint64 : int64;
    const d = source === uint64 ? new BigUint64Array(n) : new BigInt64Array(n);
    flat.values.forEach((v, i) => (d[i] = toBigInt(v, source)));
    data = d;
  } else if (flat.kind === 2 && target === complex64) {
    source = float64;
    data = Float64Array.from(flat.values, (v) => Number(toBigInt(v, int64)));
  } else if (target === float32 && flat.kind !== 0 && flat.kind !== 4) {
    source = float32;
    data = Float32Array.from(flat.values, toNumber);
  } else if (target === bool && flat.kind === 0) {
    source = bool;
    data = Uint8Array.from(flat.values as boolean[], (b) => (b ? 1 : 0));
  } else {
    // Floats (and complex values' real parts, as MLX's constructor takes them) through float64.
    source = float64;
    data = Float64Array.from(flat.values, toNumber);
  }
  return convertedHandle(lib.mlxb_array_from_data(asBytes(data), source.value, dims, ndim, s), source, target, stream);
}

/**
 * `a` converted to `dtype` (the function form of `a.astype`).
 * @example mx.astype(mx.array([1.5]), mx.int32) // array([1], dtype=int32)
 */
export function astype(a: MxArray, dtype: DtypeLike, options: { stream?: StreamOrDevice } = {}): MxArray {
  return a.astype(dtype, options);
}

/** A new array from an engine handle of `source` dtype, converted to `target` if they differ. */
function convertedHandle(h: number, source: Dtype, target: Dtype, stream: StreamOrDevice): MxArray {
  checkHandle(h);
  if (source === target) return new MxArray(h);
  const out = lib.mlxb_astype(h, target.value, streamArg(stream));
  lib.mlxb_array_free(h); // an internal temporary: never wrapped, never tracked
  return new MxArray(out);
}

/**
 * @internal An untracked engine handle for a JS scalar, in `dtype` (default: MLX's inference).
 * The caller frees it (`lib.mlxb_array_free`).
 */
export function scalarHandle(v: number | boolean | bigint, dtype: Dtype | undefined): number {
  if (typeof v === "number") return checkHandle(lib.mlxb_array_scalar(v, (dtype ?? numberDtype(v)).value, -1));
  if (typeof v === "boolean") return checkHandle(lib.mlxb_array_scalar(v ? 1 : 0, (dtype ?? bool).value, -1));
  if (typeof v !== "bigint") throw new MlxError(`[array] Invalid type ${typeof v} received in array initialization.`, 1);
  const target = dtype ?? int64;
  const source = target === uint64 ? uint64 : int64;
  const data = source === uint64 ? new BigUint64Array(1) : new BigInt64Array(1);
  data[0] = toBigInt(v, source);
  const h = checkHandle(lib.mlxb_array_from_data(asBytes(data), source.value, new Int32Array(1), 0, -1));
  if (source === target) return h;
  const out = lib.mlxb_astype(h, target.value, -1);
  lib.mlxb_array_free(h);
  return checkHandle(out);
}

/** @internal */
export function isMxArray(v: unknown): v is MxArray {
  return v instanceof MxArray;
}

/**
 * Create an array from a JS value: a number, boolean, bigint, `{re, im}` complex, a nested
 * list of these (rectangular), a TypedArray, or another array.
 *
 * Inference follows MLX: booleans give bool, integers int32 (int64 past int32's range), other
 * numbers float32, complex values complex64; `dtype` overrides and converts as MLX does.
 * TypedArrays keep their type, except Float64Array, which gives float32 unless `dtype` says
 * otherwise (as NumPy float64 arrays do in MLX). JS cannot tell `1.0` from `1`, so a list of
 * whole numbers gives int32: pass `{ dtype: mx.float32 }` (or a Float32Array) for floats.
 *
 * @example
 * mx.array([[1, 2], [3, 4]])              // array([[1, 2],\n       [3, 4]], dtype=int32)
 * mx.array([1, 2.5])                      // float32
 * mx.array(new Float32Array([1, 2, 3]))   // float32, copied
 * mx.array(buf, { copy: false, shape: [2, 2] }) // wraps buf without a copy
 */
export function array(value: ArrayInput, options: ArrayOptions | DtypeLike = {}): MxArray {
  const opts: ArrayOptions = typeof options === "string" || options instanceof Dtype ? { dtype: options } : options;
  if (value instanceof MxArray) {
    if (opts.dtype !== undefined) return value.astype(opts.dtype, { stream: opts.stream });
    return new MxArray(checkHandle(lib.mlxb_array_retain(value.handle("array"))));
  }
  if (ArrayBuffer.isView(value)) {
    if (value instanceof DataView) throw new MlxError("[array] A DataView has no element type; pass a TypedArray.", 1);
    return fromTypedArray(value, opts);
  }
  if (Array.isArray(value) && value.length > 0 && value.every((v) => v instanceof MxArray)) {
    return fromArrays(value as MxArray[], opts);
  }
  if (opts.copy === false) throw new MlxError("[array] copy: false applies to TypedArrays only.", 1);
  if (opts.shape !== undefined) throw new MlxError("[array] shape applies to TypedArrays only.", 1);
  if (typeof value === "number" && opts.dtype === undefined) {
    // The common scalar: one engine call, no flattening.
    return new MxArray(lib.mlxb_array_scalar(value, numberDtype(value).value, streamArg(opts.stream)));
  }
  if (opts.dtype === undefined && Array.isArray(value)) {
    const fast = fromNumberList(value, opts.stream);
    if (fast !== undefined) return fast;
  }
  const flat = flatten(value);
  const target = opts.dtype === undefined ? inferredDtype(flat) : toDtype(opts.dtype, "array");
  return fromFlat(flat, target, opts.stream);
}

/** The common case, a flat list of JS numbers, in one pass; undefined if it is anything else. */
function fromNumberList(value: readonly unknown[], stream: StreamOrDevice): MxArray | undefined {
  const n = value.length;
  if (n === 0) return undefined;
  let floats = false;
  let wide = false; // a whole number outside int32
  for (let i = 0; i < n; i++) {
    const v = value[i];
    if (typeof v !== "number") return undefined;
    if (!Number.isInteger(v)) floats = true;
    else if (v < -2147483648 || v > 2147483647) wide = true;
  }
  if (wide && !floats) return undefined; // int64 (or float32 past int64): the general path decides
  const data = floats ? Float32Array.from(value as number[]) : Int32Array.from(value as number[]);
  const dtype = floats ? float32 : int32;
  return new MxArray(lib.mlxb_array_from_data(asBytes(data), dtype.value, new Int32Array([n]), 1, streamArg(stream)));
}

/** A list of arrays of one shape stacks along a new first axis, with their promoted dtype. */
function fromArrays(items: MxArray[], opts: ArrayOptions): MxArray {
  const first = items[0]!;
  let dtype = first.dtype;
  for (const it of items) {
    if (it.shape.length !== first.shape.length || it.shape.some((d, i) => d !== first.shape[i])) {
      throw new MlxError("[array] Initialization encountered non-uniform length.", 1);
    }
    dtype = promoteTypes(dtype, it.dtype);
  }
  const target = opts.dtype === undefined ? dtype : toDtype(opts.dtype, "array");
  const flat = flatten(items.map((a) => a.tolist()) as ArrayInput);
  if (dtype === complex64) flat.kind = 4;
  return fromFlat(flat, target, opts.stream);
}

export { engineError };

/**
 * Results `start .. start + n` of the engine's results list (what a multi-output call such as
 * quantize, a factorization, vjp or a compiled call left there), as arrays. If taking one fails,
 * the ones already taken are disposed.
 */
export function takeResults(n: number, start = 0): MxArray[] {
  const out: MxArray[] = [];
  try {
    for (let i = 0; i < n; i++) out.push(new MxArray(checkHandle(lib.mlxb_results_take(start + i))));
  } catch (e) {
    for (const a of out) a.dispose();
    throw e;
  }
  return out;
}
