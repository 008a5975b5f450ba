// .npy (NumPy format v1/v2/v3): a bounds-checked header parser and a writer whose bytes equal
// numpy.save's (bfloat16, which NumPy lacks, is written as MLX writes it: typestr '<V2').
import type { MxArray } from "../array";
import {
  bfloat16, bool, complex64, float16, float32, float64, int16, int32, int64, int8, uint16, uint32, uint64, uint8, type Dtype,
} from "../dtype";
import { transpose } from "../ops/shape";
import { Builder, ascii, checkedSize, decodeUtf8, Reader, wrapBytes } from "./common";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** A limit on the header so a lying length cannot make us parse megabytes (NumPy's is 10000 by default). */
export const MAX_NPY_HEADER = 1 << 20;

const kinds: Record<string, Dtype> = {
  b1: bool, u1: uint8, u2: uint16, u4: uint32, u8: uint64, i1: int8, i2: int16, i4: int32, i8: int64,
  f2: float16, f4: float32, f8: float64, c8: complex64, V2: bfloat16,
};

export function descrOf(d: Dtype): string {
  switch (d) {
    case bool: return "|b1";
    case uint8: return "|u1";
    case int8: return "|i1";
    case bfloat16: return "<V2";
    case complex64: return "<c8";
    default: return `<${d.name[0]}${d.size}`;
  }
}

type PyValue = string | boolean | number[] | number;

/** A tiny parser for the header's Python dict literal: string keys; str, bool, int and int-tuple values. */
function parseDict(text: string, r: Reader): Map<string, PyValue> {
  let i = 0;
  const bad = (what: string): never => {
    throw r.fail(`Invalid .npy header: ${what} at character ${i} of ${JSON.stringify(text.slice(0, 200))}.`);
  };
  const ws = (): void => {
    while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  };
  const str = (): string => {
    const q = text[i];
    if (q !== "'" && q !== '"') bad("expected a quoted string");
    const end = text.indexOf(q!, i + 1);
    if (end < 0) bad("unterminated string");
    const s = text.slice(i + 1, end);
    i = end + 1;
    return s;
  };
  const int = (): number => {
    const m = /^\d+L?/.exec(text.slice(i, i + 32));
    if (m === null) bad("expected an integer");
    i += m![0].length;
    const v = Number(m![0].replace("L", ""));
    if (!Number.isSafeInteger(v)) bad("integer too large");
    return v;
  };
  const value = (): PyValue => {
    ws();
    const c = text[i];
    if (c === "'" || c === '"') return str();
    if (text.startsWith("True", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("False", i)) {
      i += 5;
      return false;
    }
    if (c === "(" || c === "[") {
      const close = c === "(" ? ")" : "]";
      i++;
      const items: number[] = [];
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          return items;
        }
        items.push(int());
        ws();
        if (text[i] === ",") i++;
        else if (text[i] !== close) bad("expected ',' or the end of the shape");
        if (items.length > 64) bad("too many dimensions");
      }
    }
    if (c !== undefined && c >= "0" && c <= "9") return int();
    return bad("unsupported value");
  };
  const out = new Map<string, PyValue>();
  ws();
  if (text[i] !== "{") bad("expected '{'");
  i++;
  for (;;) {
    ws();
    if (text[i] === "}") {
      i++;
      break;
    }
    const k = str();
    ws();
    if (text[i] !== ":") bad("expected ':'");
    i++;
    if (out.has(k)) bad(`duplicate key '${k}'`);
    out.set(k, value());
    ws();
    if (text[i] === ",") i++;
    else if (text[i] !== "}") bad("expected ',' or '}'");
  }
  ws();
  if (i !== text.length) bad("trailing characters after the dict");
  return out;
}

export interface NpyInfo {
  dtype: Dtype;
  shape: number[];
  fortran: boolean;
  bigEndian: boolean;
  /** Byte offset of the data inside `bytes`. */
  dataStart: number;
  nbytes: number;
}

/** Parse and validate an .npy header; the data must lie wholly inside `bytes` (extra bytes after it are allowed, as NumPy). */
export function parseNpy(bytes: Uint8Array, op: string, file: string): NpyInfo {
  const r = new Reader(bytes, op, file);
  const magic = r.bytesOf(Math.min(6, bytes.byteLength), "the magic string");
  if (magic.byteLength < 6 || MAGIC.some((m, k) => magic[k] !== m)) {
    throw r.fail("Invalid header: the file does not start with the .npy magic string \"\\x93NUMPY\".");
  }
  const major = r.u8("the format version");
  const minor = r.u8("the format version");
  if (major < 1 || major > 3 || minor !== 0) throw r.fail(`Unsupported .npy format version ${major}.${minor}.`);
  const hlen = major === 1 ? r.u16("the header length") : r.u32("the header length");
  if (hlen > MAX_NPY_HEADER) throw r.fail(`The .npy header length ${hlen} exceeds the limit of ${MAX_NPY_HEADER} bytes.`);
  if (r.pos + hlen > bytes.byteLength) {
    throw r.fail(`The .npy header is ${hlen} bytes long but only ${bytes.byteLength - r.pos} bytes follow. Perhaps an incomplete download or corrupt file?`);
  }
  const raw = r.bytesOf(hlen, "the header");
  const text = major === 3 ? decodeUtf8(raw, r, "header") : Array.from(raw, (b) => String.fromCharCode(b)).join("");
  const d = parseDict(text.trimEnd(), r);
  const keys = [...d.keys()].sort().join(",");
  if (keys !== "descr,fortran_order,shape") throw r.fail(`Invalid .npy header: expected the keys descr, fortran_order and shape, got ${keys || "none"}.`);
  const descr = d.get("descr");
  const fortran = d.get("fortran_order");
  const shape = d.get("shape");
  if (typeof descr !== "string") throw r.fail("Invalid .npy header: descr must be a string (structured dtypes are not supported).");
  if (typeof fortran !== "boolean") throw r.fail("Invalid .npy header: fortran_order must be True or False.");
  if (!Array.isArray(shape)) throw r.fail("Invalid .npy header: shape must be a tuple of integers.");
  const order = descr[0];
  const dtype = "<>|=".includes(order ?? "") ? kinds[descr.slice(1)] : undefined;
  if (dtype === undefined) throw r.fail(`Unsupported array protocol type-string: ${descr}`);
  const bigEndian = order === ">" && dtype.size > 1;
  const count = checkedSize(shape, dtype.size * 8, (p) => r.fail(p), "array");
  const nbytes = count * dtype.size;
  if (r.pos + nbytes > bytes.byteLength) {
    throw r.fail(`The array data needs ${nbytes} bytes but only ${bytes.byteLength - r.pos} follow the header. Perhaps an incomplete download or corrupt file?`);
  }
  return { dtype, shape, fortran, bigEndian, dataStart: r.pos, nbytes };
}

/** The array in an .npy byte range (zero-copy over `bytes` when aligned and little-endian). */
export function loadNpyBytes(bytes: Uint8Array, op: string, file: string): MxArray {
  const info = parseNpy(bytes, op, file);
  const data = bytes.subarray(info.dataStart, info.dataStart + info.nbytes);
  if (!info.fortran || info.shape.length < 2) return wrapBytes(data, info.shape, info.dtype, op, info.bigEndian);
  // Fortran order: the data is the row-major array of the reversed shape, transposed (a lazy view).
  const t = wrapBytes(data, [...info.shape].reverse(), info.dtype, op, info.bigEndian);
  const out = transpose(t);
  t.dispose();
  return out;
}

function pyTuple(shape: readonly number[]): string {
  if (shape.length === 0) return "()";
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(", ")})`;
}

/** The .npy header numpy.save writes for a C-order array of this dtype and shape. */
export function npyHeader(dtype: Dtype, shape: readonly number[]): Uint8Array {
  let dict = `{'descr': '${descrOf(dtype)}', 'fortran_order': False, 'shape': ${pyTuple(shape)}, }`;
  // NumPy leaves room to grow the first axis in place (GROWTH_AXIS_MAX_DIGITS = 21).
  if (shape.length > 0) dict += " ".repeat(21 - String(shape[0]).length);
  const hlen = dict.length + 1; // + '\n'
  let lenBytes = 2;
  let pad = 64 - ((8 + lenBytes + hlen) % 64);
  let version = 1;
  if (hlen + pad >= 65536) {
    version = 2;
    lenBytes = 4;
    pad = 64 - ((8 + lenBytes + hlen) % 64);
  }
  const b = new Builder().bytes(new Uint8Array(MAGIC)).u8(version).u8(0);
  if (version === 1) b.u16(hlen + pad);
  else b.u32(hlen + pad);
  return b.bytes(ascii.encode(dict + " ".repeat(pad) + "\n")).done();
}
