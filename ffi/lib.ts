// The only TypeScript that touches bun:ffi: it finds and opens libmlxbun once (and never
// closes it: calling into a closed library crashes Bun), checks the ABI version, turns the
// engine's pulled errors into MlxError exceptions, and ties engine handles and buffers to
// JavaScript objects the garbage collector can see.
import { dlopen, FFIType, JSCallback, toArrayBuffer, suffix } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ABI_VERSION, ERROR, symbols } from "./symbols";

export { BINARY_OP, DTYPE, DEVICE, ERROR, UNARY_OP } from "./symbols";

const libName = `libmlxbun.${suffix}`;

// bun-types declares toArrayBuffer(ptr, byteOffset, byteLength); the runtime also takes a
// context and a native deallocator `void (*)(void* bytes, void* ctx)` (Bun's docs, measured).
const toArrayBufferWithFinalizer = toArrayBuffer as unknown as (
  ptr: number, byteOffset: number, byteLength: number, ctx: number, deallocator: number,
) => ArrayBuffer;

function findLibrary(): string {
  const override = process.env.MLX_BUN_LIB;
  if (override) {
    if (!existsSync(override)) throw new Error(`MLX_BUN_LIB is set to ${override}, which does not exist.`);
    return override;
  }
  const dev = join(import.meta.dir, "..", "zig-out", "lib", libName);
  if (existsSync(dev)) return dev;
  throw new Error(
    `mlx-bun: the engine library (${libName}) was not found for ${process.platform}-${process.arch}. ` +
      `In a checkout, build it with \`bash scripts/bootstrap.sh\`; or point MLX_BUN_LIB at a built ${libName}.`,
  );
}

/** The engine's C functions (see ffi/mlxbun.h). */
export const lib = dlopen(findLibrary(), symbols).symbols;

const engineAbi = lib.mlxb_abi_version();
if (engineAbi !== ABI_VERSION) {
  throw new Error(`mlx-bun: the engine library speaks ABI ${engineAbi} but this binding expects ${ABI_VERSION}; rebuild the engine.`);
}

const codeNames = Object.fromEntries(Object.entries(ERROR).map(([k, v]) => [v, k])) as Record<number, string>;

/** An error raised by the engine, with MLX's message (`[op] what went wrong.`) and a code. */
export class MlxError extends Error {
  /** The engine's error code (see `ERROR`). */
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.name = "MlxError";
    this.code = code;
  }
  /** The code's name: "invalid_argument", "invalid_handle", "out_of_memory", ... */
  get codeName(): string {
    return codeNames[this.code] ?? "unknown";
  }
}

/** Throw the engine's last error on this thread. */
export function engineError(): MlxError {
  const code = lib.mlxb_last_error_code();
  const message = String(lib.mlxb_last_error_message() ?? "");
  lib.mlxb_clear_error();
  return new MlxError(message || "[mlx-bun] Unknown engine error.", code || ERROR.runtime);
}

/** A handle returned by the engine, or the engine's error. */
export function checkHandle(h: number): number {
  if (h === 0) throw engineError();
  return h;
}

/** A status or count: negative means failure. */
export function checkStatus(s: number): number {
  if (s < 0) throw engineError();
  return s;
}

const gcAnchor = lib.mlxb_gc_anchor();
const gcFinalizer = lib.mlxb_gc_finalizer();
const bufferFinalizer = lib.mlxb_buffer_finalizer();
if (gcAnchor === null || gcFinalizer === null || bufferFinalizer === null) throw new Error("mlx-bun: engine initialisation failed.");

// Bytes JSC is told about per tracked handle, beyond its array data: the node's own size.
const nodeOverhead = 512;
// toArrayBuffer lengths past this abort Bun instead of throwing (oven-sh/bun#33353); beyond
// it, reporting more would not change the collector's decisions anyway.
const maxReported = 2 ** 30;

/**
 * Tie a handle's lifetime to a JS object the garbage collector can size. The returned
 * ArrayBuffer is never read: it reports `nbytes` to JSC as external memory, and when it is
 * collected its native deallocator releases the handle (or, after `dispose`, its slot). JSC
 * runs these deallocators during sweeping, even inside a long synchronous loop, which a
 * FinalizationRegistry callback never does; so a program that never disposes still runs
 * in bounded memory.
 */
export function trackHandle(h: number, nbytes: number): ArrayBuffer {
  const len = Math.min(maxReported, nbytes + nodeOverhead);
  return toArrayBufferWithFinalizer(gcAnchor as number, 0, len, h, gcFinalizer as number);
}

/**
 * The array's row-major data as `dtype`, in engine memory: zero-copy when the dtype and layout
 * allow, else a converted copy. The engine buffer lives as long as the returned ArrayBuffer.
 * (Results are always read through a fresh view made after the engine call, never from a
 * TypedArray the engine wrote into during a call: Bun's JIT may read those stale, bun#32054.)
 */
export function viewArrayData(h: number, dtype: number, nbytes: number): ArrayBuffer {
  const buffer = lib.mlxb_array_view_buffer(h, dtype);
  if (buffer === null) throw engineError();
  if (nbytes === 0) {
    lib.mlxb_buffer_release(buffer);
    return new ArrayBuffer(0);
  }
  const data = lib.mlxb_buffer_data(buffer);
  return toArrayBufferWithFinalizer(data as number, 0, nbytes, buffer as number, bufferFinalizer as number);
}

// Host memory wrapped without a copy: the engine gives each wrap a token and hands it back
// once it no longer uses the memory; until then the TypedArray is kept reachable here.
// The same tokens name the host-side rules of custom function calls (see src/transforms.ts).
const wrapped = new Map<number, unknown>();

/** Any TypedArray's bytes, as bun:ffi's `ptr` arguments take them (with its byteOffset). */
export function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export function wrapHostData(view: ArrayBufferView, dtype: number, shape: Int32Array, ndim: number): number {
  drainReleasedHostData();
  const token = lib.mlxb_external_new_token();
  const h = checkHandle(lib.mlxb_array_wrap_data(asBytes(view), dtype, shape, ndim, token));
  wrapped.set(token, view);
  return h;
}

/** Keep `value` until the engine releases `token` (a token from mlxb_external_new_token). */
export function holdForEngine(token: number, value: unknown): void {
  drainReleasedHostData();
  wrapped.set(token, value);
}

/** The value held for `token`, if the engine still uses it. */
export function heldForEngine(token: number): unknown {
  return wrapped.get(token);
}

let vjpCallback: JSCallback | null = null;

/** Register the host's vjp for custom functions (once; the callback lives as long as the library). */
export function setCustomVjpHandler(handler: (token: number, nOutputs: number) => number): void {
  if (vjpCallback !== null) return;
  vjpCallback = new JSCallback(handler, { args: [FFIType.u32, FFIType.u32], returns: FFIType.i32 });
  lib.mlxb_custom_set_vjp_callback(vjpCallback.ptr);
}

let vmapCallback: JSCallback | null = null;

/** Register the host's vmap rule for custom functions (once; lives as long as the library). */
export function setCustomVmapHandler(handler: (token: number, nOutputs: number, batch: number, mapped: number) => number): void {
  if (vmapCallback !== null) return;
  vmapCallback = new JSCallback(handler, { args: [FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32], returns: FFIType.i32 });
  lib.mlxb_custom_set_vmap_callback(vmapCallback.ptr);
}

export function drainReleasedHostData(): void {
  for (let t = lib.mlxb_external_next_released(); t !== 0; t = lib.mlxb_external_next_released()) wrapped.delete(t);
}

/** How many host buffers the engine currently borrows (a debugging aid). */
export function wrappedHostBuffers(): number {
  drainReleasedHostData();
  let n = 0;
  for (const v of wrapped.values()) if (ArrayBuffer.isView(v)) n++;
  return n;
}
