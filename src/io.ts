// Saving and loading arrays: .npy, .npz (stored or deflated), .safetensors and .gguf, as MLX's
// mx.save / savez / savez_compressed / save_safetensors / save_gguf / load. Loading maps the
// file (copy-on-write) and returns arrays that view the mapped bytes without a copy where the
// data is aligned, so a large file costs nothing until its arrays are used; the mapping lives
// as long as any array uses it. Every loader validates the file and fails with an MlxError that
// names the op, the problem and the file.
import { MxArray } from "./array";
import type { StreamOrDevice } from "./device";
import { argError, arrayBytes, checkFileName, describe, mapFile, writeTarget, type SaveTarget } from "./io/common";
import { ggufChunks, loadGguf, type GgufMetadataValue } from "./io/gguf";
import { loadNpyBytes, npyHeader } from "./io/npy";
import { loadSafetensors, safetensorsChunks, setEntry } from "./io/safetensors";
import { memberBytes, readZip, writeZip, type ZipMember } from "./io/zip";

export type { GgufMetadataValue } from "./io/gguf";
export type { SaveSink, SaveTarget } from "./io/common";

/** A file name, or a file's contents in memory (then `format` is required). */
export type LoadSource = string | Uint8Array | ArrayBuffer;

/** The formats `mx.load` reads. */
export type FileFormat = "npy" | "npz" | "safetensors" | "gguf";

export interface LoadOptions {
  /** The format; by default taken from the file's extension. */
  format?: FileFormat;
  /** For safetensors and gguf: also return the file's metadata, as `[arrays, metadata]`. */
  returnMetadata?: boolean;
  /** Accepted for MLX compatibility; loaded arrays are host views and need no stream. */
  stream?: StreamOrDevice;
}

/**
 * Save one array to a NumPy `.npy` file (`.npy` is appended if missing). The bytes are
 * NumPy's (`numpy.save` of the same array); bfloat16 is written as MLX writes it (`<V2`).
 *
 * Every saver writes to a file name (replaced atomically: written beside it, then renamed),
 * or, as MLX's savers take Python file objects, to an open file descriptor (written at its
 * position, left open) or a sink: any object with a `write(chunk: Uint8Array)` method, such
 * as a Node `fs.WriteStream` or Bun's `FileSink`, which receives copies of the bytes (end or
 * flush it yourself). No extension is added then.
 * @example mx.save("weights.npy", mx.arange(6).reshape([2, 3]))
 * @example const parts: Uint8Array[] = []; mx.save({ write: (c) => parts.push(c) }, x) // in memory
 */
export function save(file: SaveTarget, arr: MxArray): void {
  if (!(arr instanceof MxArray)) throw argError("save", `Expected an mx.Array, got ${describe(arr)}.`);
  writeTarget("save", file, ".npy", () => [npyHeader(arr.dtype, arr.shape), arrayBytes(arr, "save")]);
}

type SavezArg = MxArray | Record<string, MxArray>;

function npzMembers(op: string, args: SavezArg[]): ZipMember[] {
  const named = new Map<string, MxArray>();
  let positional = 0;
  const kw: [string, MxArray][] = [];
  for (const a of args) {
    if (a instanceof MxArray) named.set(`arr_${positional++}`, a);
    else if (typeof a === "object" && a !== null && !Array.isArray(a)) kw.push(...Object.entries(a));
    else throw argError(op, `Expected arrays or an object of named arrays, got ${describe(a)}.`);
  }
  for (const [k, v] of kw) {
    if (named.has(k)) throw argError(op, `Cannot use un-named variables and keyword ${k}`);
    if (!(v instanceof MxArray)) throw argError(op, `Expected an mx.Array for '${k}', got ${describe(v)}.`);
    named.set(k, v);
  }
  return [...named].map(([k, a]) => ({ name: `${k}.npy`, parts: [npyHeader(a.dtype, a.shape), arrayBytes(a, op)] }));
}

/**
 * Save arrays to an uncompressed `.npz` (a ZIP of `.npy` members; `.npz` is appended if
 * missing). Positional arrays are named `arr_0`, `arr_1`, ...; an object gives names.
 * @example mx.savez("model.npz", { w, b })
 * @example mx.savez("pair.npz", x, y) // members arr_0, arr_1
 */
export function savez(file: SaveTarget, ...args: SavezArg[]): void {
  writeTarget("savez", file, ".npz", () => writeZip(npzMembers("savez", args), false));
}

/**
 * As `savez`, with every member deflate-compressed.
 * @example mx.savezCompressed("model.npz", { w, b })
 */
export function savezCompressed(file: SaveTarget, ...args: SavezArg[]): void {
  writeTarget("savez_compressed", file, ".npz", () => writeZip(npzMembers("savez_compressed", args), true));
}

/**
 * Save arrays to a `.safetensors` file (`.safetensors` is appended if missing), with optional
 * string metadata. Laid out as the reference implementation does (tensors by descending
 * alignment, then name; header padded to 8 bytes), so every tensor is aligned. All dtypes;
 * complex64 as MLX's non-standard "C64".
 * @example mx.saveSafetensors("model.safetensors", { w, b }, { format: "mlx" })
 */
export function saveSafetensors(file: SaveTarget, arrays: Record<string, MxArray>, metadata?: Record<string, string>): void {
  writeTarget("save_safetensors", file, ".safetensors", () => safetensorsChunks(arrays, metadata, "save_safetensors"));
}

/**
 * Save arrays to a GGUF v3 file (`.gguf` is appended if missing). As MLX: float32, float16,
 * int8, int16 and int32 tensors; metadata values are strings, lists of strings, or 0-D/1-D
 * arrays of float32, int8..int64, uint8..uint64 or bool.
 * @example mx.saveGguf("model.gguf", { w }, { "general.name": "tiny", ids: mx.array([1, 2]) })
 */
export function saveGguf(file: SaveTarget, arrays: Record<string, MxArray>, metadata?: Record<string, GgufMetadataValue>): void {
  writeTarget("save_gguf", file, ".gguf", () => ggufChunks(arrays, metadata, "save_gguf"));
}

const formats: readonly string[] = ["npy", "npz", "safetensors", "gguf"];

/**
 * Load arrays from a file, or from a file's contents in memory (a Uint8Array or ArrayBuffer,
 * viewed in place; then `format` is required). The format comes from the extension unless
 * `format` is given.
 * - `.npy`: one array;
 * - `.npz`, `.safetensors`, `.gguf`: an object `{ name: array }`;
 * - with `{ returnMetadata: true }` (safetensors and gguf): `[arrays, metadata]`. safetensors
 *   metadata is `{ key: string }`; gguf metadata values are strings, string lists, or arrays.
 *
 * Nothing is read until an array is used: arrays view the memory-mapped file (copy-on-write)
 * without a copy where their data is aligned for the dtype (files written by mlx-bun and NumPy
 * always are); misaligned or big-endian data (MLX's own .npy and safetensors layouts) is copied
 * when the array is evaluated. Deflated .npz members and quantized GGUF tensors are decoded at
 * load. As with MLX's lazy loads, the file should not change before its arrays are evaluated;
 * truncating it meanwhile makes the mapped pages vanish (the process gets SIGBUS), so replace
 * files instead of rewriting them in place (every `mx.save*` here writes a new file and renames
 * it over the old one).
 * @example const w = mx.load("weights.npy")
 * @example const [params, meta] = mx.load("model.safetensors", { returnMetadata: true })
 */
export function load(file: LoadSource, options: LoadOptions & { returnMetadata: true; format: "gguf" }): [Record<string, MxArray>, Record<string, GgufMetadataValue>];
export function load(file: LoadSource, options: LoadOptions & { returnMetadata: true }): [Record<string, MxArray>, Record<string, string | GgufMetadataValue>];
export function load(file: LoadSource, options?: LoadOptions): MxArray | Record<string, MxArray>;
export function load(source: LoadSource, options: LoadOptions = {}): unknown {
  // File contents already in memory (MLX's file-like objects): viewed in place, so the buffer
  // must not change while arrays loaded from it are in use.
  const inMemory = source instanceof Uint8Array ? source : source instanceof ArrayBuffer ? new Uint8Array(source) : null;
  const file = inMemory === null ? checkFileName("load", source) : "<bytes>";
  const read = (op: string): Uint8Array => inMemory ?? mapFile(op, file);
  let format: string | undefined = options.format;
  if (format === undefined && inMemory !== null) throw argError("load", "Could not infer file format from a buffer; pass { format }.");
  if (format === undefined) {
    const dot = file.lastIndexOf(".");
    const slash = Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\"));
    if (dot <= slash + 0 || dot === file.length - 1) throw argError("load", "Could not infer file format from extension");
    format = file.slice(dot + 1);
  }
  if (!formats.includes(format)) throw argError("load", `Unknown file format ${format}`);
  if (options.returnMetadata === true && (format === "npy" || format === "npz")) {
    throw argError("load", `metadata not supported for format ${format}`);
  }
  switch (format) {
    case "npy":
      return loadNpyBytes(read("load"), "load", file);
    case "npz":
      return loadNpz(read("load"), file);
    case "safetensors": {
      const res = loadSafetensors(read("load_safetensors"), "load_safetensors", file);
      return options.returnMetadata === true ? res : res[0];
    }
    default: {
      const res = loadGguf(read("load_gguf"), "load_gguf", file);
      return options.returnMetadata === true ? res : res[0];
    }
  }
}

function loadNpz(bytes: Uint8Array, file: string): Record<string, MxArray> {
  const out: Record<string, MxArray> = {};
  const seen = new Set<string>();
  for (const e of readZip(bytes, "load", file)) {
    const key = e.name.endsWith(".npy") ? e.name.slice(0, -4) : e.name;
    if (seen.has(key)) throw argError("load", `Duplicate member ${e.name} in ${file}.`);
    seen.add(key);
    setEntry(out, key, loadNpyBytes(memberBytes(bytes, e, "load", file), "load", `${file}/${e.name}`));
  }
  return out;
}
