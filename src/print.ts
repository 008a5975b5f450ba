/**
 * Array printing (`repr`) that reproduces MLX's output character for character.
 *
 * This module is pure TypeScript and does not touch the engine: the caller
 * describes the array by its shape, dtype and an element accessor, and gets
 * back the exact string Python's `repr(mx.array(...))` prints (MLX 0.32).
 *
 * The rules, as observed from MLX 0.32.4 (see `test/fixtures/print/`):
 *
 * - Layout: `array(<body>, dtype=<name>)`. A 0-d array's body is its single
 *   element; otherwise the body is a nested list. Items of the innermost axis
 *   are separated by `", "`. Items of an outer axis `d` (0-based) are
 *   separated by `",\n"` followed by `7 + d` spaces, so rows line up under
 *   the first `[` after `array(`.
 * - Summarisation is decided per axis, independently of the total size: an
 *   axis longer than 6 prints its first 3 items, `...`, then its last 3
 *   (`...` takes the place of an item, including its separator and indent).
 * - Zero-size arrays fall out of the same rules: `(0, 3)` prints `[]`, while
 *   `(3, 0)` prints three `[]` rows.
 * - Booleans print as `True` / `False`; integers in plain decimal (8-bit
 *   types as numbers, 64-bit types exactly).
 * - Floats (all float dtypes, printed via their exact value) use C++ ostream
 *   default formatting, i.e. printf `%g` with 6 significant digits: `1`,
 *   `0.1`, `1e-07`, `1.23457e+08`, `-0`, `inf`, `-inf`, `nan`. Rounding is
 *   exact and ties go to even (`1234565` prints `1.23456e+06`).
 * - With a precision `p >= 0` (`mx.set_printoptions(precision=p)`), floats
 *   use printf `%.pf` (fixed notation, exactly `p` decimals, no exponent
 *   ever, so `1e38` prints all 39 digits). Integers and booleans are
 *   unaffected. A negative precision other than `-1` behaves like 6.
 * - complex64 prints `re` then, if `im >= 0` or `im` is NaN, `+im`, else
 *   `-|im|`, then `j`. Hence `1+2j`, `1-2j`, and `1+-0j` for a negative-zero
 *   imaginary part.
 *
 * Known limitation: on x86 MLX prints a NaN whose sign bit is set as `-nan`
 * (that is what `0/0` produces there). JavaScript engines canonicalise NaN,
 * so a NaN reaching this function carries no sign and always prints `nan`.
 *
 * @module
 */

/** Names of the dtypes MLX can print, spelled as in `dtype=...`. */
export type PrintDtype =
  | "bool"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "float16"
  | "float32"
  | "float64"
  | "bfloat16"
  | "complex64";

/**
 * One element as handed to {@link formatArray}.
 *
 * - `complex64`: `[re, im]` (a plain number is taken as `[n, 0]`).
 * - `int64` / `uint64`: a `bigint` (a number is accepted when exact).
 * - `float16` / `bfloat16`: the exact value of the half as a JS number.
 * - `float32`: the exact float32 value (it is passed through `Math.fround`).
 * - `bool`: a boolean (numbers and bigints are taken as non-zero = true).
 */
export type PrintValue = number | bigint | boolean | readonly [number, number];

/** Formatting options, mirroring `mx.set_printoptions`. */
export interface PrintOptions {
  /**
   * Number of decimals for floating-point elements, like
   * `mx.set_printoptions(precision=...)`. `undefined` or `-1` selects MLX's
   * default formatting (6 significant digits, `%g`-style).
   */
  precision?: number;
}

/** Items kept at each end of a summarised axis. */
const EDGE_ITEMS = 3;
/** An axis with more items than this is summarised. */
const SUMMARISE_ABOVE = 2 * EDGE_ITEMS;
/** Width of `"array("`, the base indent of nested rows. */
const BASE_INDENT = 7;
/** Significant digits of C++ ostream's default float formatting. */
const DEFAULT_SIGNIFICANT_DIGITS = 6;

/**
 * Formats an array exactly like Python's `repr` of an MLX array.
 *
 * `get` receives flat row-major indices (`0 <= i < product(shape)`) and is
 * only called for the elements that are actually printed, so printing a
 * huge array reads at most `6^ndim` elements.
 *
 * @param shape - The array's shape; `[]` for a 0-d array.
 * @param dtype - The array's dtype.
 * @param get - Returns the element at a flat row-major index.
 * @param options - Print options; see {@link PrintOptions}.
 * @returns The `repr` string, e.g. `array([1, 2, 3], dtype=int32)`.
 *
 * @example
 * ```ts
 * const data = [1, 2.5, 3, 4, 5, 6];
 * formatArray([2, 3], "float32", (i) => data[i]!);
 * // "array([[1, 2.5, 3],\n       [4, 5, 6]], dtype=float32)"
 *
 * formatArray([10], "int64", (i) => BigInt(i));
 * // "array([0, 1, 2, ..., 7, 8, 9], dtype=int64)"
 *
 * formatArray([], "float32", () => 1 / 3, { precision: 3 });
 * // "array(0.333, dtype=float32)"
 * ```
 */
export function formatArray(
  shape: readonly number[],
  dtype: PrintDtype,
  get: (flatRowMajorIndex: number) => PrintValue,
  options?: PrintOptions,
): string {
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new RangeError(`formatArray: invalid shape [${shape.join(", ")}]`);
    }
  }
  const format = elementFormatter(dtype, options?.precision);
  const ndim = shape.length;
  if (ndim === 0) {
    return `array(${format(get(0))}, dtype=${dtype})`;
  }

  const strides = new Array<number>(ndim);
  let stride = 1;
  for (let d = ndim - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d]!;
  }

  const parts: string[] = ["array("];
  const emit = (dim: number, base: number): void => {
    const n = shape[dim]!;
    const step = strides[dim]!;
    const innermost = dim === ndim - 1;
    const separator = innermost ? ", " : ",\n" + " ".repeat(BASE_INDENT + dim);
    parts.push("[");
    for (let i = 0; i < n; i++) {
      if (i > 0) parts.push(separator);
      if (i === EDGE_ITEMS && n > SUMMARISE_ABOVE) {
        parts.push("...");
        i = n - EDGE_ITEMS - 1; // the loop increment moves on to n - EDGE_ITEMS
      } else if (innermost) {
        parts.push(format(get(base + i * step)));
      } else {
        emit(dim + 1, base + i * step);
      }
    }
    parts.push("]");
  };
  emit(0, 0);
  parts.push(", dtype=", dtype, ")");
  return parts.join("");
}

type ElementFormatter = (value: PrintValue) => string;

function elementFormatter(
  dtype: PrintDtype,
  precision: number | undefined,
): ElementFormatter {
  const formatReal = realFormatter(precision);
  switch (dtype) {
    case "bool":
      return (v) => (isTruthy(v) ? "True" : "False");
    case "uint8":
    case "uint16":
    case "uint32":
    case "uint64":
    case "int8":
    case "int16":
    case "int32":
    case "int64":
      return formatInteger;
    case "float16":
    case "bfloat16":
    case "float64":
      return (v) => formatReal(realPart(v));
    case "float32":
      return (v) => formatReal(Math.fround(realPart(v)));
    case "complex64":
      return (v) => {
        const re = Math.fround(realPart(v));
        const im = Math.fround(imagPart(v));
        // Same sign test as MLX: `-0` and NaN take the "+" branch.
        return im >= 0 || Number.isNaN(im)
          ? `${formatReal(re)}+${formatReal(im)}j`
          : `${formatReal(re)}-${formatReal(-im)}j`;
      };
    default: {
      const unknown: never = dtype;
      throw new TypeError(`formatArray: unknown dtype ${String(unknown)}`);
    }
  }
}

/** Picks `%g` (default) or `%.pf` formatting for real numbers. */
function realFormatter(precision: number | undefined): (x: number) => string {
  if (precision === undefined || precision === -1) return formatGeneral;
  if (!Number.isSafeInteger(precision)) {
    throw new RangeError(`formatArray: precision must be an integer, got ${precision}`);
  }
  // printf treats a negative precision as absent, i.e. 6 decimals.
  const decimals = precision < 0 ? 6 : precision;
  return (x) => formatFixed(x, decimals);
}

function isTruthy(v: PrintValue): boolean {
  if (typeof v === "object") return v[0] !== 0 || v[1] !== 0;
  return typeof v === "bigint" ? v !== 0n : Boolean(v);
}

function realPart(v: PrintValue): number {
  if (typeof v === "object") return v[0];
  if (typeof v === "boolean") return v ? 1 : 0;
  return Number(v);
}

function imagPart(v: PrintValue): number {
  return typeof v === "object" ? v[1] : 0;
}

function formatInteger(v: PrintValue): string {
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? "1" : "0";
  const n = typeof v === "object" ? v[0] : v;
  if (Number.isSafeInteger(n)) return String(n);
  return Number.isInteger(n) ? BigInt(n).toString() : String(n);
}

// ---------------------------------------------------------------------------
// Exact float formatting (glibc printf semantics: exact value, ties to even).

const scratch = new DataView(new ArrayBuffer(8));

/** `|x| = mantissa * 2^exponent` exactly, for finite non-zero `x`. */
function decompose(x: number): { mantissa: bigint; exponent: number } {
  scratch.setFloat64(0, x);
  const hi = scratch.getUint32(0);
  const lo = scratch.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exponent: number;
  if (biased === 0) {
    exponent = -1074; // subnormal
  } else {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  // Drop trailing zero bits to keep the big numbers small.
  while (exponent < 0 && (mantissa & 1n) === 0n) {
    mantissa >>= 1n;
    exponent++;
  }
  return { mantissa, exponent };
}

const powersOfFive: bigint[] = [1n];
function powerOfFive(k: number): bigint {
  for (let i = powersOfFive.length; i <= k; i++) {
    powersOfFive.push(powersOfFive[i - 1]! * 5n);
  }
  return powersOfFive[k]!;
}

function nonFinite(x: number): string {
  if (Number.isNaN(x)) return "nan";
  return x > 0 ? "inf" : "-inf";
}

function signOf(x: number): string {
  return x < 0 || Object.is(x, -0) ? "-" : "";
}

/**
 * Exact decimal expansion of a finite non-zero `|x|`: `|x| = 0.digits * 10^point`,
 * with `digits` free of leading zeros.
 */
function exactDigits(x: number): { digits: string; point: number } {
  const { mantissa, exponent } = decompose(x);
  if (exponent >= 0) {
    const digits = (mantissa << BigInt(exponent)).toString();
    return { digits, point: digits.length };
  }
  // mantissa / 2^k = mantissa * 5^k / 10^k
  const digits = (mantissa * powerOfFive(-exponent)).toString();
  return { digits, point: digits.length + exponent };
}

/** printf `%g` with 6 significant digits (C++ ostream default). */
function formatGeneral(x: number): string {
  if (!Number.isFinite(x)) return nonFinite(x);
  const sign = signOf(x);
  if (x === 0) return sign + "0";
  const ax = Math.abs(x);
  const p = DEFAULT_SIGNIFICANT_DIGITS;
  // Fast path: small integers are printed as they are.
  if (Number.isInteger(ax) && ax < 10 ** p) return sign + String(ax);

  const { digits, point } = exactDigits(ax);
  let exp10 = point - 1; // decimal exponent of the leading digit
  let sig = digits.slice(0, p);
  if (digits.length > p && roundsUp(digits, p)) {
    sig = (BigInt(sig) + 1n).toString();
    if (sig.length > p) {
      sig = sig.slice(0, p);
      exp10++;
    }
  }
  sig = sig.padEnd(p, "0");

  if (exp10 < -4 || exp10 >= p) {
    const fraction = stripZeros(sig.slice(1));
    const e = Math.abs(exp10);
    return (
      sign +
      sig[0] +
      (fraction ? "." + fraction : "") +
      (exp10 < 0 ? "e-" : "e+") +
      (e < 10 ? "0" + e : String(e))
    );
  }
  const intPart = exp10 >= 0 ? sig.slice(0, exp10 + 1) : "0";
  const fraction = stripZeros(
    exp10 >= 0 ? sig.slice(exp10 + 1) : "0".repeat(-exp10 - 1) + sig,
  );
  return sign + intPart + (fraction ? "." + fraction : "");
}

/**
 * Whether keeping the first `keep` digits of `digits` rounds up, with ties
 * (exactly 5 followed by nothing) going to the even neighbour.
 */
function roundsUp(digits: string, keep: number): boolean {
  const next = digits.charCodeAt(keep) - 48;
  if (next !== 5) return next > 5;
  for (let i = keep + 1; i < digits.length; i++) {
    if (digits.charCodeAt(i) !== 48) return true;
  }
  const last = keep > 0 ? digits.charCodeAt(keep - 1) - 48 : 0;
  return last % 2 === 1;
}

function stripZeros(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 48) end--;
  return s.slice(0, end);
}

/** printf `%.{decimals}f`: fixed notation, exact, ties to even. */
function formatFixed(x: number, decimals: number): string {
  if (!Number.isFinite(x)) return nonFinite(x);
  const sign = signOf(x);
  let scaled: bigint; // round(|x| * 10^decimals)
  if (x === 0) {
    scaled = 0n;
  } else {
    const { mantissa, exponent } = decompose(x);
    const pow10 = 10n ** BigInt(decimals);
    if (exponent >= 0) {
      scaled = (mantissa << BigInt(exponent)) * pow10;
    } else {
      const shift = BigInt(-exponent);
      const numerator = mantissa * pow10;
      scaled = numerator >> shift;
      const remainder = numerator - (scaled << shift);
      const half = 1n << (shift - 1n);
      if (remainder > half || (remainder === half && (scaled & 1n) === 1n)) {
        scaled += 1n;
      }
    }
  }
  const text = scaled.toString();
  if (decimals === 0) return sign + text;
  const padded = text.padStart(decimals + 1, "0");
  return (
    sign + padded.slice(0, padded.length - decimals) + "." + padded.slice(padded.length - decimals)
  );
}
