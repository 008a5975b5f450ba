// Reading the reference files under test/fixtures/: arrays recorded as {dtype, shape, hex} (their
// row-major little-endian bytes; bfloat16 as uint16 bits, complex64 as (re, im) float32 pairs).
import { readFileSync } from "node:fs";
import * as mx from "../src/index.ts";

export interface Rec {
  dtype: mx.DtypeName;
  shape: number[];
  hex: string;
}

export const itemSize: Record<mx.DtypeName, number> = {
  bool: 1, uint8: 1, uint16: 2, uint32: 4, uint64: 8, int8: 1, int16: 2, int32: 4, int64: 8,
  float16: 2, float32: 4, float64: 8, bfloat16: 2, complex64: 8,
};

/** A gzipped JSON fixture, by path relative to test/fixtures/. */
export function loadFixture<T>(path: string): T {
  const bytes = readFileSync(new URL(`./fixtures/${path}`, import.meta.url));
  return JSON.parse(new TextDecoder().decode(path.endsWith(".gz") ? Bun.gunzipSync(bytes) : bytes)) as T;
}

export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** An mx.array holding exactly the recorded bytes (raw bits: NaN payloads and -0 survive). */
export function arrayOf(r: Rec): mx.Array {
  const bytes = fromHex(r.hex);
  const buf = bytes.buffer;
  const size = itemSize[r.dtype];
  const data = size === 1 ? new Uint8Array(buf) : size === 2 ? new Uint16Array(buf) : size === 4 ? new Uint32Array(buf) : new BigUint64Array(buf);
  return mx.array(data, { dtype: r.dtype, shape: r.shape, bits: true });
}

/** The array's row-major bytes (bfloat16 as its bits). */
export function bytesOf(a: mx.Array): Uint8Array {
  const ta = a.dtype === mx.bfloat16 ? a.toTypedArray({ bits: true }) : a.toTypedArray();
  return new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength).slice();
}

/**
 * The values of recorded bytes as numbers, exactly (float16/bfloat16 decoded; complex64 as
 * interleaved re, im; integers as numbers).
 */
export function numbersOf(bytes: Uint8Array, dtype: mx.DtypeName): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  const n = bytes.byteLength / itemSize[dtype];
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case "float32": out.push(dv.getFloat32(4 * i, true)); break;
      case "float64": out.push(dv.getFloat64(8 * i, true)); break;
      case "float16": out.push(dv.getFloat16(2 * i, true)); break;
      case "bfloat16": out.push(new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0]!); break;
      case "complex64": out.push(dv.getFloat32(8 * i, true), dv.getFloat32(8 * i + 4, true)); break;
      case "int32": out.push(dv.getInt32(4 * i, true)); break;
      case "bool": case "uint8": out.push(dv.getUint8(i)); break;
      default: throw new Error(`numbersOf: ${dtype} not supported`);
    }
  }
  return out;
}
