// safetensors: the reader validates as the reference implementation does (header bounds,
// offsets covering the buffer exactly, sizes matching shapes); the writer lays files out as the
// reference writer does (descending alignment, then name; header padded to 8), so every tensor
// is aligned and loads zero-copy.
import type { MxArray } from "../array";
import {
  bfloat16, bool, complex64, float16, float32, float64, int16, int32, int64, int8, uint16, uint32, uint64, uint8, type Dtype,
} from "../dtype";
import { argError, arrayBytes, ascii, Builder, checkedSize, decodeUtf8, describe, Reader, wrapBytes } from "./common";

export const MAX_HEADER = 100_000_000;

const byCode: Record<string, Dtype> = {
  BOOL: bool, U8: uint8, I8: int8, I16: int16, U16: uint16, F16: float16, BF16: bfloat16, I32: int32, U32: uint32,
  F32: float32, C64: complex64, F64: float64, I64: int64, U64: uint64,
  // As MLX: 8-bit float formats load as their raw bytes.
  F8_E4M3: uint8, F8_E8M0: uint8,
};
const codeOf = new Map<Dtype, string>(
  Object.entries(byCode).filter(([k]) => !k.startsWith("F8")).map(([k, d]) => [d, k]),
);
// The reference Dtype enum order (alignment order); the writer sorts by it, descending.
const order = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"];

/** Set a property without ever touching a prototype (a tensor may be called "__proto__"). */
export function setEntry<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function loadSafetensors(bytes: Uint8Array, op: string, file: string): [Record<string, MxArray>, Record<string, string>] {
  const r = new Reader(bytes, op, file);
  if (bytes.byteLength < 8) throw r.fail(`The file is ${bytes.byteLength} bytes long, too short for the 8-byte header length. Perhaps an incomplete download or corrupt file?`);
  const n = r.u64("the JSON header length");
  if (n === 0 || n >= MAX_HEADER) throw r.fail(`Invalid json header length ${n}.`);
  if (8 + n > bytes.byteLength) {
    throw r.fail(`The JSON header is ${n} bytes long but the file is only ${bytes.byteLength} bytes. Perhaps an incomplete download or corrupt file?`);
  }
  const text = decodeUtf8(r.bytesOf(n, "the JSON header"), r, "JSON header");
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw r.fail(`Invalid JSON header: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw r.fail("Invalid json metadata: the header is not a JSON object.");
  const bufferStart = 8 + n;
  const bufferLen = bytes.byteLength - bufferStart;
  const metadata: Record<string, string> = {};
  const specs: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (v === null) continue; // MLX's save_safetensors writes null when there is no metadata
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw r.fail("__metadata__ must be an object of strings.");
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== "string") throw r.fail(`__metadata__ values must be strings; '${k}' is ${describe(s)}.`);
        setEntry(metadata, k, s);
      }
      continue;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw r.fail(`Tensor '${name}' is not described by an object.`);
    const { dtype: code, shape, data_offsets: offs } = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof code !== "string") throw r.fail(`Tensor '${name}' has no dtype string.`);
    const dtype = byCode[code];
    if (dtype === undefined) throw r.fail(`Tensor '${name}': unsupported dtype ${code}.`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw r.fail(`Tensor '${name}' has an invalid shape ${JSON.stringify(shape)}.`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw r.fail(`Tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}.`);
    }
    const [begin, end] = offs as [number, number];
    const count = checkedSize(shape as number[], dtype.size * 8, (p) => r.fail(p), name);
    if (end < begin) throw r.fail(`Tensor '${name}' has data_offsets [${begin}, ${end}] that end before they begin.`);
    if (end - begin !== count * dtype.size) {
      throw r.fail(`Tensor '${name}' of shape [${(shape as number[]).join(", ")}] and dtype ${code} needs ${count * dtype.size} bytes but its data_offsets [${begin}, ${end}] hold ${end - begin}.`);
    }
    if (end > bufferLen) {
      throw r.fail(`Tensor '${name}' has data_offsets [${begin}, ${end}] past the end of the ${bufferLen}-byte data buffer. Perhaps an incomplete download or corrupt file?`);
    }
    specs.push({ name, dtype, shape: shape as number[], begin, end });
  }
  // The buffer must be covered exactly: no gaps, no overlaps, nothing after the last tensor.
  const sorted = [...specs].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of sorted) {
    if (s.begin !== at) {
      throw r.fail(s.begin < at ? `Tensor '${s.name}' overlaps another tensor (data_offsets [${s.begin}, ${s.end}]).` : `The data buffer has a hole before tensor '${s.name}' (bytes ${at} to ${s.begin}).`);
    }
    at = s.end;
  }
  if (at !== bufferLen) throw r.fail(`The tensors cover ${at} bytes but the data buffer holds ${bufferLen}.`);
  const arrays: Record<string, MxArray> = {};
  for (const s of specs) {
    setEntry(arrays, s.name, wrapBytes(bytes.subarray(bufferStart + s.begin, bufferStart + s.end), s.shape, s.dtype, op));
  }
  return [arrays, metadata];
}

/** The chunks of a safetensors file. */
export function safetensorsChunks(arrays: Record<string, MxArray>, metadata: Record<string, string> | undefined, op: string): Uint8Array[] {
  if (typeof arrays !== "object" || arrays === null || Array.isArray(arrays)) throw argError(op, `Expected an object of arrays, got ${describe(arrays)}.`);
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== "object" || Array.isArray(metadata) || !Object.values(metadata).every((v) => typeof v === "string")) {
      throw argError(op, "Metadata must be a dictionary with string keys and values");
    }
  }
  const items = Object.entries(arrays).map(([name, a]) => {
    const bytes = arrayBytes(a, op);
    const code = codeOf.get(a.dtype);
    if (code === undefined) throw argError(op, "received invalid dtype.");
    return { name, a, bytes, code };
  });
  items.sort((x, y) => order.indexOf(y.code) - order.indexOf(x.code) || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  let json = "{";
  const parts: string[] = [];
  if (metadata !== undefined && metadata !== null) parts.push(`"__metadata__":${JSON.stringify(Object.fromEntries(Object.entries(metadata)))}`);
  let offset = 0;
  for (const it of items) {
    parts.push(`${JSON.stringify(it.name)}:{"dtype":"${it.code}","shape":[${it.a.shape.join(",")}],"data_offsets":[${offset},${offset + it.bytes.byteLength}]}`);
    offset += it.bytes.byteLength;
  }
  json += parts.join(",") + "}";
  const text = ascii.encode(json);
  const pad = (8 - (text.byteLength % 8)) % 8;
  const head = new Builder().u64(text.byteLength + pad).bytes(text).bytes(ascii.encode(" ".repeat(pad))).done();
  return [head, ...items.map((it) => it.bytes)];
}
