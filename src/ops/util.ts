// Helpers shared by the op families: JS scalars as MLX treats Python scalars (weak typing),
// and axis normalisation with MLX's messages.
import { checkHandle, lib } from "../../ffi/lib";
import { MxArray, scalarHandle, type Complex } from "../array";
import { bool, complex64, Dtype, float32, int32, int64, isIntegral, uint64 } from "../dtype";
import { MlxError } from "../errors";

/** An array or a JS scalar standing for one. */
export type ArrayOrScalar = MxArray | number | boolean | bigint | Complex;

function isComplexValue(v: unknown): v is Complex {
  return typeof v === "object" && v !== null && !(v instanceof MxArray) && "re" in v && "im" in v;
}

const int32Range = (v: number) => v >= -2147483648 && v <= 2147483647;

function integerRange(d: Dtype): [bigint, bigint] {
  const bits = BigInt(d.size * 8);
  return d.category === "unsignedinteger" ? [0n, 2n ** bits - 1n] : [-(2n ** (bits - 1n)), 2n ** (bits - 1n) - 1n];
}

/**
 * The dtype a JS scalar takes next to an array of dtype `other` (MLX's weak typing of Python
 * scalars): an integer takes an integer array's dtype (overflow is an error), a bool array's
 * becomes int32, and an inexact array's; a float takes an inexact array's dtype, else float32;
 * a boolean takes the other dtype; a complex value is complex64.
 */
export function weakDtype(v: number | boolean | bigint | Complex, other: Dtype | undefined, op: string): Dtype {
  if (isComplexValue(v)) return complex64;
  if (typeof v === "boolean") return other ?? bool;
  const integral = typeof v === "bigint" || isIntegral(v);
  if (other === undefined) {
    if (typeof v === "bigint") return v >= -(2n ** 31n) && v < 2n ** 31n ? int32 : integerDefault(v);
    return integral ? (int32Range(v) ? int32 : integerDefault(v)) : float32;
  }
  // A float next to a complex array stays float32 (promotion makes the result complex64; MLX's
  // dtype messages name float32).
  if (!integral) return other.isFloating ? other : float32;
  if (other === bool) return int32;
  if (other.isInteger && other !== uint64) {
    const [lo, hi] = integerRange(other);
    const b = typeof v === "bigint" ? v : BigInt(v);
    if (b < lo || b > hi) throw new MlxError(`Converting ${b} to ${other.name} would result in overflow.`, 1);
  }
  return other;
}

function isWhole(v: number | bigint): boolean {
  return typeof v === "bigint" || Number.isInteger(v);
}

function integerDefault(v: number | bigint): Dtype {
  return typeof v === "number" && int32Range(v) ? int32 : int64;
}

/** An engine handle for an operand, plus whether the caller must free it (a scalar made here). */
export interface Operand {
  h: number;
  temp: boolean;
}

/** Handles for an op's operands; JS scalars are typed against the first array among them. */
export function operands(values: readonly ArrayOrScalar[], op: string): Operand[] {
  const firstArray = values.find((v): v is MxArray => v instanceof MxArray);
  const like = firstArray?.dtype;
  return values.map((v) => {
    if (v instanceof MxArray) return { h: v.handle(op), temp: false };
    if (isComplexValue(v)) return { h: checkHandle(lib.mlxb_array_complex_scalar(v.re, v.im, -1)), temp: true };
    if (typeof v !== "number" && typeof v !== "boolean" && typeof v !== "bigint") {
      throw new MlxError(`[${op}] Expected an array or a scalar, got ${v === null ? "null" : typeof v}.`, 1);
    }
    const d = weakDtype(v, like, op);
    // An integer that MLX converts without a range check wraps to the dtype's width (int32
    // next to a bool array, uint64 from a negative value), as its C++ cast does.
    if (like !== undefined && typeof v !== "boolean" && (d === int32 || d === uint64) && isWhole(v)) {
      const bits = d === int32 ? 32 : 64;
      const big = typeof v === "bigint" ? v : BigInt(v);
      const wrapped = d === int32 ? BigInt.asIntN(bits, big) : BigInt.asUintN(bits, big);
      if (wrapped !== big) return { h: scalarHandle(wrapped, d), temp: true };
    }
    return { h: scalarHandle(v, d), temp: true };
  });
}

export function release(ops: readonly Operand[]): void {
  for (const o of ops) if (o.temp) lib.mlxb_array_free(o.h);
}

/** Normalise one axis against `ndim` (negative counts from the end), with MLX's message. */
export function normalizeAxis(axis: number, ndim: number, op: string): number {
  if (!Number.isInteger(axis)) throw new MlxError(`[${op}] Axis must be an integer, got ${axis}.`, 1);
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) throw new MlxError(`[${op}] Invalid axis ${axis} for array with ${ndim} dimensions.`, 1);
  return a;
}

const int32Min = -2147483648;
const int32Max = 2147483647;

/** Integers packed for the engine (at least one slot, so the pointer is never null). */
export function ints(values: readonly number[], what: string, op: string): Int32Array {
  if (!Array.isArray(values)) throw new MlxError(`[${op}] Expected ${what} as a number or a list of numbers.`, 1);
  const out = new Int32Array(Math.max(values.length, 1));
  values.forEach((v, i) => {
    if (typeof v !== "number" || !Number.isInteger(v)) throw new MlxError(`[${op}] ${what} must be integers, got ${String(v)}.`, 1);
    if (v < int32Min || v > int32Max) throw new MlxError(`[${op}] ${what} ${v} is outside the int32 range.`, 1);
    out[i] = v;
  });
  return out;
}

export function int(v: number, what: string, op: string): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new MlxError(`[${op}] ${what} must be an integer, got ${String(v)}.`, 1);
  if (v < int32Min || v > int32Max) throw new MlxError(`[${op}] ${what} ${v} is outside the int32 range.`, 1);
  return v;
}

export function list(v: number | readonly number[]): readonly number[] {
  return typeof v === "number" ? [v] : v;
}

export function wrap(h: number): MxArray {
  return new MxArray(checkHandle(h));
}

/** Engine handles of a list of arrays (at least one slot, so the pointer is never null). */
export function handlesOf(arrays: readonly MxArray[], op: string): Uint32Array {
  if (!Array.isArray(arrays)) throw new MlxError(`[${op}] Expected a list of arrays.`, 1);
  const hs = new Uint32Array(Math.max(arrays.length, 1));
  arrays.forEach((a, i) => {
    if (!(a instanceof MxArray)) throw new MlxError(`[${op}] Expected a list of arrays.`, 1);
    hs[i] = a.handle(op);
  });
  return hs;
}
