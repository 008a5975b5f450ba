// The 14 MLX dtypes, MLX's promotion table, and how JS values infer a dtype.
import { DTYPE } from "../ffi/lib";
import { MlxError } from "./errors";

export type DtypeName = keyof typeof DTYPE;
export type DtypeCategory = "bool" | "unsignedinteger" | "signedinteger" | "floating" | "complexfloating";

/** An MLX data type. The 14 instances are `mx.bool`, `mx.uint8`, ..., `mx.complex64`; compare them with `===`. */
export class Dtype {
  /** @internal */
  constructor(
    /** "float32", "int32", ... (MLX's names). */
    readonly name: DtypeName,
    /** Bytes per element. */
    readonly size: number,
    /** The engine's enum value (MLX's order). */
    readonly value: number,
    readonly category: DtypeCategory,
  ) {}
  toString(): string {
    return `mlx.core.${this.name}`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
  get isFloating(): boolean {
    return this.category === "floating";
  }
  get isInteger(): boolean {
    return this.category === "signedinteger" || this.category === "unsignedinteger";
  }
  get isComplex(): boolean {
    return this.category === "complexfloating";
  }
}

function make(name: DtypeName, size: number, category: DtypeCategory): Dtype {
  return new Dtype(name, size, DTYPE[name], category);
}

export const bool = make("bool", 1, "bool");
export const uint8 = make("uint8", 1, "unsignedinteger");
export const uint16 = make("uint16", 2, "unsignedinteger");
export const uint32 = make("uint32", 4, "unsignedinteger");
export const uint64 = make("uint64", 8, "unsignedinteger");
export const int8 = make("int8", 1, "signedinteger");
export const int16 = make("int16", 2, "signedinteger");
export const int32 = make("int32", 4, "signedinteger");
export const int64 = make("int64", 8, "signedinteger");
export const float16 = make("float16", 2, "floating");
export const float32 = make("float32", 4, "floating");
export const float64 = make("float64", 8, "floating");
export const bfloat16 = make("bfloat16", 2, "floating");
export const complex64 = make("complex64", 8, "complexfloating");

/** All dtypes in the engine's enum order. */
export const dtypes: readonly Dtype[] = [
  bool, uint8, uint16, uint32, uint64, int8, int16, int32, int64, float16, float32, float64, bfloat16, complex64,
];

const byName = new Map<string, Dtype>(dtypes.map((d) => [d.name, d]));
byName.set("bool_", bool);

/** A dtype or its name. */
export type DtypeLike = Dtype | DtypeName | "bool_";

/** Resolve a dtype or a dtype name; unknown names throw an MlxError naming the op. */
export function toDtype(d: DtypeLike, op = "dtype"): Dtype {
  if (d instanceof Dtype) return d;
  const found = typeof d === "string" ? byName.get(d) : undefined;
  if (found === undefined) {
    throw new MlxError(`[${op}] Unknown dtype ${JSON.stringify(d)}; expected one of ${dtypes.map((x) => x.name).join(", ")}.`, 1);
  }
  return found;
}

export function dtypeFromValue(v: number): Dtype {
  const d = dtypes[v];
  if (d === undefined) throw new MlxError(`[dtype] The engine returned unknown dtype ${v}.`, 5);
  return d;
}

// MLX's promotion table (mlx/dtype.cpp), rows and columns in enum order.
const table = [
  "b u8 u16 u32 u64 i8 i16 i32 i64 f16 f32 f64 bf c",
  "u8 u8 u16 u32 u64 i16 i16 i32 i64 f16 f32 f64 bf c",
  "u16 u16 u16 u32 u64 i32 i32 i32 i64 f16 f32 f64 bf c",
  "u32 u32 u32 u32 u64 i64 i64 i64 i64 f16 f32 f64 bf c",
  "u64 u64 u64 u64 u64 f32 f32 f32 f32 f16 f32 f64 bf c",
  "i8 i16 i32 i64 f32 i8 i16 i32 i64 f16 f32 f64 bf c",
  "i16 i16 i32 i64 f32 i16 i16 i32 i64 f16 f32 f64 bf c",
  "i32 i32 i32 i64 f32 i32 i32 i32 i64 f16 f32 f64 bf c",
  "i64 i64 i64 i64 f32 i64 i64 i64 i64 f16 f32 f64 bf c",
  "f16 f16 f16 f16 f16 f16 f16 f16 f16 f16 f32 f64 f32 c",
  "f32 f32 f32 f32 f32 f32 f32 f32 f32 f32 f32 f64 f32 c",
  "f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 c",
  "bf bf bf bf bf bf bf bf bf f32 f32 f64 bf c",
  "c c c c c c c c c c c c c c",
];
const short: Record<string, Dtype> = {
  b: bool, u8: uint8, u16: uint16, u32: uint32, u64: uint64, i8: int8, i16: int16, i32: int32, i64: int64,
  f16: float16, f32: float32, f64: float64, bf: bfloat16, c: complex64,
};
const promotion: Dtype[][] = table.map((row) => row.split(" ").map((s) => short[s]!));

/** The dtype two dtypes promote to (MLX's `promote_types`). */
export function promoteTypes(a: Dtype, b: Dtype): Dtype {
  return promotion[a.value]![b.value]!;
}

/**
 * MLX's default dtype of a JS number: int32 for whole numbers, int64 past int32's range,
 * float32 otherwise. (JS cannot tell `1.0` from `1`; a whole number too large for int64, such
 * as 1e20, can only have been meant as a float, so it gives float32.)
 */
export function numberDtype(v: number): Dtype {
  if (!isIntegral(v)) return float32;
  return v >= -(2 ** 31) && v < 2 ** 31 ? int32 : int64;
}

/** Whether a JS number counts as an integer for dtype inference: whole and inside int64. */
export function isIntegral(v: number): boolean {
  return Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63;
}
