// Shared pieces of the file formats: mapping a file, bounds-checked little-endian reads,
// arrays that view mapped bytes without a copy, array bytes for writing, atomic writes.
import { closeSync, existsSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { lib, viewArrayData, wrapHostData } from "../../ffi/lib";
import { streamArg } from "../device";
import { MxArray, packShape } from "../array";
import { full } from "../creation";
import { bool, uint8, type Dtype } from "../dtype";
import { MlxError } from "../errors";

const INVALID = 1; // ERROR.invalid_argument
const RUNTIME = 5; // ERROR.runtime

/** A format error: `[op] problem (in file)`. */
export function ioError(op: string, file: string, problem: string): MlxError {
  return new MlxError(`[${op}] ${problem} (file: ${file})`, RUNTIME);
}

export function argError(op: string, problem: string): MlxError {
  return new MlxError(`[${op}] ${problem}`, INVALID);
}

/**
 * The whole file as bytes, memory-mapped copy-on-write (MAP_PRIVATE): nothing is read until
 * used, and the engine can never write through to the file. The mapping is unmapped when the
 * last view of it is collected; arrays made by `wrapBytes` keep their view alive.
 */
export function mapFile(op: string, file: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw ioError(op, file, "Not a regular file.");
    size = st.size;
  } catch (e) {
    if (e instanceof MlxError) throw e;
    throw new MlxError(`[${op}] Failed to open file ${file}`, RUNTIME);
  }
  if (size === 0) return new Uint8Array(0); // mmap of 0 bytes is EINVAL; the parser reports the truncation.
  try {
    return Bun.mmap(file, { shared: false } as Parameters<typeof Bun.mmap>[1]);
  } catch (e) {
    throw new MlxError(`[${op}] Failed to map file ${file}: ${(e as Error).message}`, RUNTIME);
  }
}

/** Bounds-checked little-endian reads over a byte range; every failure names op and file. */
export class Reader {
  readonly dv: DataView;
  pos: number;
  constructor(readonly bytes: Uint8Array, readonly op: string, readonly file: string, pos = 0) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
  }
  get length(): number {
    return this.bytes.byteLength;
  }
  fail(problem: string): MlxError {
    return ioError(this.op, this.file, problem);
  }
  need(n: number, what: string): void {
    if (!(n >= 0) || this.pos + n > this.bytes.byteLength) {
      throw this.fail(`Unexpected end of file reading ${what} at byte ${this.pos} (needs ${n} bytes, file has ${this.bytes.byteLength}). Perhaps an incomplete download or corrupt file?`);
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.dv.getUint8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** A u64 as a JS number; values past 2^53 are reported as corrupt (no real file needs them). */
  u64(what: string): number {
    this.need(8, what);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(`The ${what} ${v} is impossibly large.`);
    return Number(v);
  }
  i64big(what: string): bigint {
    this.need(8, what);
    const v = this.dv.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  bytesOf(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
export function decodeUtf8(bytes: Uint8Array, r: { fail(p: string): MlxError }, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw r.fail(`The ${what} is not valid UTF-8.`);
  }
}

/** Number of elements of a shape, checked against a byte budget so nothing overflows. */
export function checkedSize(shape: readonly number[], itemBits: number, fail: (p: string) => MlxError, name: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw fail(`Tensor '${name}' has an invalid dimension ${d}.`);
    if (d > 2147483647) throw fail(`Tensor '${name}' has dimension ${d}, larger than the maximum of 2147483647.`);
    n *= d;
    if (n * itemBits > Number.MAX_SAFE_INTEGER) throw fail(`Tensor '${name}' is impossibly large (shape [${shape.join(", ")}]).`);
  }
  return n;
}

/**
 * An array over `bytes` (row-major, little-endian unless `swap`, `shape`/`dtype`), without a
 * copy at load time: a direct view when the bytes are aligned for the dtype (the array keeps
 * `bytes`, and through it the file mapping, alive until the engine drops it); otherwise a lazy
 * `from_bytes` node over a uint8 view, which copies (and byte-swaps) only when evaluated.
 */
export function wrapBytes(bytes: Uint8Array, shape: readonly number[], dtype: Dtype, op: string, swap = false): MxArray {
  const { dims, ndim } = packShape(shape, op);
  if (bytes.byteLength === 0) return full(shape, 0, dtype);
  if (dtype === bool) {
    // A file's bool bytes may hold values other than 0 and 1, which the engine's bool must
    // never see: read them as uint8 and convert (nonzero is true, as NumPy shows them).
    const u = wrapBytes(bytes, shape, uint8, op);
    const b = u.astype(bool);
    u.dispose();
    return b;
  }
  if (!swap && bytes.byteOffset % dtype.size === 0) {
    try {
      return new MxArray(wrapHostData(bytes, dtype.value, dims, ndim));
    } catch (e) {
      // The engine checks the real address; a JS buffer whose base is not aligned goes below.
      if (!(e instanceof MlxError) || !e.message.includes("aligned")) throw e;
    }
  }
  const raw = wrapHostData(bytes, uint8.value, new Int32Array([bytes.byteLength]), 1);
  try {
    return new MxArray(lib.mlxb_array_from_bytes(raw, dtype.value, dims, ndim, swap ? 1 : 0, streamArg(undefined)));
  } finally {
    lib.mlxb_array_free(raw);
  }
}

/** The array's row-major bytes (evaluates it; zero-copy when its buffer is already row-major). */
export function arrayBytes(a: MxArray, op: string): Uint8Array {
  if (!(a instanceof MxArray)) throw argError(op, `Expected an mx.Array, got ${describe(a)}.`);
  const h = a.handle(op);
  const nbytes = a.nbytes;
  return new Uint8Array(viewArrayData(h, a.dtype.value, nbytes));
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a JS Array";
  if (typeof v === "object") return (v as object).constructor?.name ?? "an object";
  return typeof v;
}

/** Appends `ext` unless the name already ends with it (as MLX does). */
export function withExtension(file: string, ext: string): string {
  return file.endsWith(ext) ? file : file + ext;
}

export function checkFileName(op: string, file: unknown): string {
  if (typeof file !== "string" || file.length === 0) throw argError(op, `Expected a file name (a non-empty string), got ${describe(file)}.`);
  return file;
}

/**
 * Something `mx.save*` can write to besides a file name, as MLX's savers accept Python file
 * objects: any object with a `write(chunk: Uint8Array)` method (a Node `fs.WriteStream`, Bun's
 * `FileSink` from `Bun.file(path).writer()`, a socket, or your own collector).
 */
export interface SaveSink {
  write(chunk: Uint8Array): unknown;
}

/** A file name (the format's extension is appended if missing), an open file descriptor, or a sink. */
export type SaveTarget = string | number | SaveSink;

const PIECE = 8 << 20; // writes go out in pieces of 8 MiB: one huge write is slower in Bun than several moderate ones

/**
 * Write a saver's chunks to its target. A file name goes through `writeChunks` (atomic); a file
 * descriptor is written at its current position and left open; a sink gets copies of the
 * bytes, in pieces of at most 8 MiB, since a stream may keep a chunk after `write` returns or
 * reuse it as its own buffer, and an array's memory must never change behind the engine.
 * Finishing the sink (`end()`, `flush()`) is the
 * caller's. Every chunk is produced before anything is written, so an invalid argument leaves
 * the target untouched.
 */
export function writeTarget(op: string, target: unknown, ext: string, chunks: () => Iterable<Uint8Array>): void {
  if (typeof target === "string") {
    const name = withExtension(checkFileName(op, target), ext);
    writeChunks(op, name, chunks());
    return;
  }
  if (typeof target === "number") {
    if (!Number.isInteger(target) || target < 0) throw argError(op, `Expected a file name, a file descriptor or a writable stream, got the number ${target}.`);
    const list = [...chunks()];
    try {
      for (const c of list) for (let off = 0; off < c.byteLength; ) off += writeSync(target, c.subarray(off, Math.min(off + PIECE, c.byteLength)));
    } catch (e) {
      throw new MlxError(`[${op}] Failed to write to file descriptor ${target}: ${(e as Error).message}`, RUNTIME);
    }
    return;
  }
  if (typeof target !== "object" || target === null || typeof (target as { write?: unknown }).write !== "function") {
    throw argError(op, `Expected a file name, a file descriptor or a writable stream (an object with a write method), got ${describe(target)}.`);
  }
  const sink = target as SaveSink;
  const list = [...chunks()];
  try {
    for (const c of list) for (let off = 0; off < c.byteLength; off += PIECE) sink.write(c.slice(off, Math.min(off + PIECE, c.byteLength)));
  } catch (e) {
    throw new MlxError(`[${op}] Failed to write to the stream: ${(e as Error).message ?? String(e)}`, RUNTIME);
  }
}

/**
 * Write the chunks to `file` through a temporary file renamed over it at the end: a reader
 * never sees half a file, and arrays still mapping an older file of that name keep their
 * (unlinked) inode, so `save(load(f), f)` is safe.
 */
export function writeChunks(op: string, file: string, chunks: Iterable<Uint8Array>): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  let fd: number;
  try {
    fd = openSync(tmp, "w");
  } catch (e) {
    throw new MlxError(`[${op}] Failed to open file ${file}: ${(e as Error).message}`, RUNTIME);
  }
  try {
    for (const c of chunks) {
      for (let off = 0; off < c.byteLength; ) off += writeSync(fd, c.subarray(off, Math.min(off + PIECE, c.byteLength)));
    }
    closeSync(fd);
    fd = -1;
    renameSync(tmp, file);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    if (existsSync(tmp)) unlinkSync(tmp);
    if (e instanceof MlxError) throw e;
    throw new MlxError(`[${op}] Failed to write file ${file}: ${(e as Error).message}`, RUNTIME);
  }
}

export const ascii = new TextEncoder();

/** Little-endian byte builder for headers. */
export class Builder {
  private buf = new Uint8Array(256);
  private dv = new DataView(this.buf.buffer);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.length));
    this.buf = nb;
    this.dv = new DataView(nb.buffer);
  }
  u8(v: number): this {
    this.ensure(1);
    this.dv.setUint8(this.length, v);
    this.length += 1;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.dv.setUint16(this.length, v, true);
    this.length += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.dv.setUint32(this.length, v >>> 0, true);
    this.length += 4;
    return this;
  }
  u64(v: number | bigint): this {
    this.ensure(8);
    this.dv.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.byteLength);
    this.buf.set(b, this.length);
    this.length += b.byteLength;
    return this;
  }
  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Release a temporary handle-owning array made here (no-op for user arrays). */
export function freeTemp(a: MxArray, original: MxArray): void {
  if (a !== original) a.dispose();
}

export { lib };
