// GGUF (v2/v3): a bounds-checked reader (metadata as MLX returns it; unquantized tensors as
// zero-copy views) and a writer laid out as MLX's save_gguf (gguflib) lays it out.
import { MxArray } from "../array";
import {
  bfloat16, bool, float16, float32, float64, int16, int32, int64, int8, uint16, uint32, uint64, uint8, type Dtype,
} from "../dtype";
import { argError, arrayBytes, ascii, Builder, checkedSize, decodeUtf8, describe, Reader, wrapBytes } from "./common";
import { setEntry } from "./safetensors";
import { dequantize, quantTypes, unpackQuantized } from "./gguf_quants";

/** What a metadata value may be: a string, a list of strings, or a 0-D/1-D array. */
export type GgufMetadataValue = MxArray | string | string[];

const GGUF_MAGIC = 0x46554747; // "GGUF" read little-endian
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 8; // ggml uses 4; MLX writes 0-D tensors with 0 dims.

// Metadata value types: [byte size, dtype the value loads as (MLX: float64 -> float32)].
const valueTypes: Record<number, [number, Dtype]> = {
  0: [1, uint8], 1: [1, int8], 2: [2, uint16], 3: [2, int16], 4: [4, uint32], 5: [4, int32], 6: [4, float32], 7: [1, bool],
  10: [8, uint64], 11: [8, int64], 12: [8, float32],
};
const STRING = 8;
const ARRAY = 9;
const F64 = 12;
const metaTypeOf = new Map<Dtype, number>([
  [float32, 6], [int64, 11], [int32, 5], [int16, 3], [int8, 1], [uint64, 10], [uint32, 4], [uint16, 2], [uint8, 0], [bool, 7],
]);

// ggml tensor types loaded natively. (MLX turns BF16/I64/F64 into float16 or fails; we keep them exact.)
const tensorTypes: Record<number, Dtype> = { 0: float32, 1: float16, 24: int8, 25: int16, 26: int32, 27: int64, 28: float64, 30: bfloat16 };
const saveTypes = new Map<Dtype, number>([[float32, 0], [float16, 1], [int8, 24], [int16, 25], [int32, 26]]);
const ggmlNames: Record<number, string> = {
  2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K",
  15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 29: "IQ1_M",
  34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4", 40: "NVFP4", 41: "Q1_0",
};

function str(r: Reader, what: string): string {
  const n = r.u64(`the length of ${what}`);
  if (r.pos + n > r.length) throw r.fail(`The length ${n} of ${what} at byte ${r.pos - 8} extends past the end of the file. Perhaps an incomplete download or corrupt file?`);
  return decodeUtf8(r.bytesOf(n, what), r, what);
}

/** A metadata value read into what MLX returns: string, string[], or an array (0-D scalar, 1-D list). */
function metaValue(r: Reader, type: number, key: string, op: string): GgufMetadataValue {
  if (type === STRING) return str(r, `the value of '${key}'`);
  if (type === ARRAY) {
    const elem = r.u32(`the element type of '${key}'`);
    const count = r.u64(`the length of '${key}'`);
    if (elem === ARRAY) throw r.fail(`Metadata '${key}': only 1 level of nested arrays is supported.`);
    if (elem === STRING) {
      if (count > (r.length - r.pos) / 8) throw r.fail(`Metadata value '${key}' extends past the end of the file. Perhaps an incomplete download or corrupt file?`);
      const out: string[] = [];
      for (let i = 0; i < count; i++) out.push(str(r, `element ${i} of '${key}'`));
      return out;
    }
    return numeric(r, elem, key, [count], op);
  }
  return numeric(r, type, key, [], op);
}

function numeric(r: Reader, type: number, key: string, shape: number[], op: string): MxArray {
  const vt = valueTypes[type];
  if (vt === undefined) throw r.fail(`Metadata '${key}' has unknown value type ${type}.`);
  const count = shape.length === 0 ? 1 : shape[0]!;
  const [size, dtype] = vt;
  if (count * size > r.length - r.pos) throw r.fail(`Metadata value '${key}' extends past the end of the file. Perhaps an incomplete download or corrupt file?`);
  const raw = r.bytesOf(count * size, `the value of '${key}'`);
  if (type === F64) {
    const f = new Float32Array(count);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) f[i] = dv.getFloat64(8 * i, true);
    return wrapBytes(new Uint8Array(f.buffer), shape, float32, op);
  }
  if (type === 7 && raw.some((b) => b > 1)) throw r.fail(`Metadata '${key}' holds a bool that is neither 0 nor 1.`);
  return wrapBytes(raw.slice(), shape, dtype, op); // metadata is small: copied, so it does not pin the file
}

export function loadGguf(bytes: Uint8Array, op: string, file: string): [Record<string, MxArray>, Record<string, GgufMetadataValue>] {
  const r = new Reader(bytes, op, file);
  if (bytes.byteLength < 24) throw r.fail(`The file is ${bytes.byteLength} bytes long, too short for a GGUF header. Perhaps an incomplete download or corrupt file?`);
  if (r.u32("the magic") !== GGUF_MAGIC) throw r.fail("Invalid header: the file does not start with the GGUF magic \"GGUF\".");
  const version = r.u32("the version");
  if (version !== 2 && version !== 3) throw r.fail(`Unsupported GGUF version ${version} (2 and 3 are supported).`);
  const nTensors = r.u64("the tensor count");
  const nKv = r.u64("the metadata count");
  // Each key-value pair takes at least 13 bytes and each tensor info at least 24: a lying count fails here.
  if (nKv * 13 + nTensors * 24 > bytes.byteLength - r.pos) {
    throw r.fail(`The header claims ${nTensors} tensors and ${nKv} metadata entries, more than the ${bytes.byteLength}-byte file can hold. Perhaps an incomplete download or corrupt file?`);
  }
  const metadata: Record<string, GgufMetadataValue> = {};
  let alignment = DEFAULT_ALIGNMENT;
  for (let k = 0; k < nKv; k++) {
    const key = str(r, `metadata key ${k}`);
    const type = r.u32(`the type of '${key}'`);
    if (key === "general.alignment") {
      if (type !== 4) throw r.fail("general.alignment must be a uint32.");
      const at = r.pos;
      alignment = r.u32("general.alignment");
      if (alignment === 0 || (alignment & (alignment - 1)) !== 0) throw r.fail(`general.alignment ${alignment} is not a power of two.`);
      r.pos = at;
    }
    setEntry(metadata, key, metaValue(r, type, key, op));
  }
  const infos: { name: string; shape: number[]; type: number; offset: number; nbytes: number }[] = [];
  const names = new Set<string>();
  for (let t = 0; t < nTensors; t++) {
    const name = str(r, `the name of tensor ${t}`);
    if (names.has(name)) throw r.fail(`Duplicate parameter name ${name}.`);
    names.add(name);
    const nd = r.u32(`the rank of tensor '${name}'`);
    if (nd > MAX_DIMS) throw r.fail(`Tensor '${name}' has ${nd} dimensions; at most ${MAX_DIMS} are supported.`);
    const dims: number[] = [];
    for (let i = 0; i < nd; i++) dims.push(r.u64(`a dimension of tensor '${name}'`));
    const type = r.u32(`the type of tensor '${name}'`);
    const offset = r.u64(`the offset of tensor '${name}'`);
    const dtype = tensorTypes[type];
    const quant = quantTypes[type];
    const shape = dims.reverse();
    let nbytes: number;
    if (dtype !== undefined) {
      nbytes = checkedSize(shape, dtype.size * 8, (p) => r.fail(p), name) * dtype.size;
    } else if (quant !== undefined) {
      const count = checkedSize(shape, 8, (p) => r.fail(p), name);
      const last = shape[shape.length - 1] ?? 0;
      // MLX's own check for the types it keeps quantized (its message), then ggml's rule that
      // blocks never straddle rows (gguflib would decode the tensor as one flat run of blocks).
      if (quant[2] !== 0 && (shape.length === 0 || last % 32 !== 0)) {
        throw r.fail(`Tensor '${name}' of type ${ggmlNames[type]} has incompatible last dim shape: ${shape.length === 0 ? "()" : last}.`);
      }
      if (shape.length === 0 || last % quant[0] !== 0) {
        throw r.fail(`Tensor '${name}' of type ${ggmlNames[type]} has shape (${shape.join(", ")}): its rows must be a multiple of the type's block of ${quant[0]} weights.`);
      }
      nbytes = (count / quant[0]) * quant[1];
    } else {
      const q = ggmlNames[type];
      if (q !== undefined) {
        throw r.fail(`Tensor '${name}' has quantized type ${q}, which MLX does not load (it keeps Q4_0, Q4_1 and Q8_0 quantized and dequantizes Q2_K, Q4_K and Q6_K to float16).`);
      }
      throw r.fail(`Tensor '${name}' has unknown ggml type ${type}.`);
    }
    if (offset % alignment !== 0) throw r.fail(`Tensor '${name}' has offset ${offset}, not a multiple of the alignment ${alignment}.`);
    infos.push({ name, shape, type, offset, nbytes });
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  const dataLen = bytes.byteLength - dataStart;
  const byOffset = [...infos].sort((a, b) => a.offset - b.offset);
  let prevEnd = 0;
  let prevName = "";
  for (const t of byOffset) {
    if (t.offset + t.nbytes > dataLen) {
      throw r.fail(`Tensor '${t.name}' (${t.nbytes} bytes at data offset ${t.offset}) extends past the end of the file. Perhaps an incomplete download or corrupt file?`);
    }
    if (t.nbytes > 0 && t.offset < prevEnd) throw r.fail(`Tensors '${prevName}' and '${t.name}' overlap.`);
    if (t.nbytes > 0) {
      prevEnd = t.offset + t.nbytes;
      prevName = t.name;
    }
  }
  const arrays: Record<string, MxArray> = {};
  const put = (name: string, a: MxArray): void => {
    if (Object.hasOwn(arrays, name)) throw r.fail(`Duplicate parameter name ${name} this can happen when loading quantized tensors.`);
    setEntry(arrays, name, a);
  };
  for (const t of infos) {
    const start = dataStart + t.offset;
    const data = bytes.subarray(start, start + t.nbytes);
    const dtype = tensorTypes[t.type];
    if (dtype !== undefined) {
      put(t.name, wrapBytes(data, t.shape, dtype, op));
      continue;
    }
    const [per, blockBytes, bits] = quantTypes[t.type]!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    // The blocks as uint8 [blocks, bytes per block], a view of the file: decoded when evaluated.
    const raw = wrapBytes(data, [count / per, blockBytes], uint8, op);
    if (bits === 0) {
      put(t.name, dequantize(t.type, raw, t.shape));
      raw.dispose();
      continue;
    }
    // Q4_0, Q4_1, Q8_0: MLX's (weight, scales, biases) triple.
    const last = t.shape.length - 1;
    const wShape = t.shape.map((d, i) => (i === last ? (d * bits) / 32 : d));
    const sShape = t.shape.map((d, i) => (i === last ? d / 32 : d));
    const u = unpackQuantized(t.type, raw, wShape, sShape);
    raw.dispose();
    // MLX drops the last 7 characters (".weight") from the name for the scales and biases.
    const prefix = t.name.length >= 7 ? t.name.slice(0, -7) : t.name;
    put(t.name, u.weights);
    put(`${prefix}.scales`, u.scales);
    put(`${prefix}.biases`, u.biases);
  }
  return [arrays, metadata];
}

function gstr(b: Builder, s: string): void {
  const e = ascii.encode(s);
  b.u64(e.byteLength).bytes(e);
}

/** The chunks of a GGUF v3 file (metadata, tensor infos, data aligned to 32), as MLX writes it. */
export function ggufChunks(arrays: Record<string, MxArray>, metadata: Record<string, GgufMetadataValue> | undefined, op: string): Uint8Array[] {
  if (typeof arrays !== "object" || arrays === null || Array.isArray(arrays)) throw argError(op, `Expected an object of arrays, got ${describe(arrays)}.`);
  const meta = Object.entries(metadata ?? {});
  const entries = Object.entries(arrays);
  const head = new Builder().u32(GGUF_MAGIC).u32(3).u64(entries.length).u64(meta.length);
  for (const [key, v] of meta) {
    gstr(head, key);
    if (typeof v === "string") {
      head.u32(STRING);
      gstr(head, v);
    } else if (Array.isArray(v) && v.every((s) => typeof s === "string")) {
      head.u32(ARRAY).u32(STRING).u64(v.length);
      for (const s of v) gstr(head, s);
    } else if (v instanceof MxArray) {
      if (v.ndim > 1) throw argError(op, "Cannot save arrays with more than one dimension.");
      if (v.size === 0) throw argError(op, "Cannot save empty arrays.");
      const t = metaTypeOf.get(v.dtype);
      if (t === undefined) throw argError(op, `array type ${v.dtype.name} not support for metadata.`);
      const data = arrayBytes(v, op);
      if (v.ndim === 1) head.u32(ARRAY).u32(t).u64(v.size);
      else head.u32(t);
      head.bytes(data);
    } else {
      throw argError(op, `Received unexpected type in metadata ('${key}' is ${describe(v)}).`);
    }
  }
  // A general.alignment given in the metadata lays the data out by it (readers will use it).
  let align = DEFAULT_ALIGNMENT;
  const given = metadata?.["general.alignment"];
  if (given !== undefined) {
    const v = given instanceof MxArray && given.dtype === uint32 && given.ndim === 0 ? Number(given.item()) : 0;
    if (v === 0 || (v & (v - 1)) !== 0 || v > 1 << 16) throw argError(op, "general.alignment must be a 0-D uint32 array holding a power of two.");
    align = v;
  }
  const datas: Uint8Array[] = [];
  let offset = 0;
  for (const [name, a] of entries) {
    if (!(a instanceof MxArray)) throw argError(op, `Expected an mx.Array for '${name}', got ${describe(a)}.`);
    const type = saveTypes.get(a.dtype);
    if (type === undefined) throw argError(op, `dtype ${a.dtype.name} is not supported`);
    offset = Math.ceil(offset / align) * align;
    gstr(head, name);
    head.u32(a.ndim);
    for (let i = a.ndim - 1; i >= 0; i--) head.u64(a.shape[i]!);
    head.u32(type).u64(offset);
    const data = arrayBytes(a, op);
    datas.push(data);
    offset += data.byteLength;
  }
  const out: Uint8Array[] = [];
  const pad = (n: number): Uint8Array => new Uint8Array((align - (n % align)) % align);
  const h = head.done();
  out.push(h, pad(h.byteLength));
  let at = 0;
  for (const d of datas) {
    const p = pad(at);
    out.push(p, d);
    at += p.byteLength + d.byteLength;
  }
  return out;
}

