// The only TypeScript that touches bun:ffi: it finds and opens libmlxbun once (and never
// closes it: calling into a closed library crashes Bun), checks the ABI version, turns the
// engine's pulled errors into MlxError exceptions, and ties engine handles and buffers to
// JavaScript objects the garbage collector can see.
import { dlopen, FFIType, JSCallback, toArrayBuffer, suffix } from "bun:ffi";
import { existsSync } from "node:fs";
import { ABI_VERSION, ERROR, symbols } from "./symbols";

export { BINARY_OP, DTYPE, DEVICE, ERROR, UNARY_OP } from "./symbols";

const libName = `libmlxbun.${suffix}`;

// bun-types declares toArrayBuffer(ptr, byteOffset, byteLength); the runtime also takes a
// context and a native deallocator `void (*)(void* bytes, void* ctx)` (Bun's docs, measured).
const toArrayBufferWithFinalizer = toArrayBuffer as unknown as (
  ptr: number, byteOffset: number, byteLength: number, ctx: number, deallocator: number,
) => ArrayBuffer;

/**
 * The prebuilt engine packages, by `${process.platform}-${process.arch}`. `mlx-bun` lists them
 * all as optionalDependencies; each declares its os/cpu (and libc: glibc), so the package
 * manager installs only this machine's. Each one's index.js is
 * `import path from "./libmlxbun.<so|dylib>" with { type: "file" }`, which also makes
 * `bun build --compile` embed the library in the executable.
 */
export const ENGINE_PACKAGES: Readonly<Record<string, string>> = {
  "linux-x64": "mlx-bun-linux-x64-gnu",
  "linux-arm64": "mlx-bun-linux-arm64-gnu",
  "darwin-arm64": "mlx-bun-darwin-arm64",
  "darwin-x64": "mlx-bun-darwin-x64",
};

function isNotFound(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "MODULE_NOT_FOUND" || code === "ERR_MODULE_NOT_FOUND" || /Cannot (find|require) (module|package)/.test(String(e));
}

/** The file path a module exports (as its default export). */
function exportedPath(m: unknown): string | undefined {
  const path = typeof m === "string" ? m : (m as { default?: unknown } | null)?.default;
  return typeof path === "string" ? path : undefined;
}

// The requires name their modules literally, one per platform, each directly inside a try (so
// the bundler accepts one that is not installed): `bun build --compile` inlines
// process.platform and process.arch, keeps the target's branch and embeds the library that
// module imports as a file; Bun's dlopen then loads it from the executable. In a plain run the
// import gives the file's real path. An uninstalled package fails here, at run time.
function platformPackageLibrary(): string | undefined {
  try {
    if (process.platform === "linux" && process.arch === "x64") return exportedPath(require("mlx-bun-linux-x64-gnu"));
    if (process.platform === "linux" && process.arch === "arm64") return exportedPath(require("mlx-bun-linux-arm64-gnu"));
    if (process.platform === "darwin" && process.arch === "arm64") return exportedPath(require("mlx-bun-darwin-arm64"));
    if (process.platform === "darwin" && process.arch === "x64") return exportedPath(require("mlx-bun-darwin-x64"));
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  return undefined;
}

// A checkout's own build (zig-out/lib), imported the same way (these two files are not in the
// npm package, so there the requires fail and are skipped).
function devLibrary(): string | undefined {
  try {
    if (process.platform === "darwin") return exportedPath(require("./engine_dev_dylib.ts"));
    return exportedPath(require("./engine_dev_so.ts"));
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  return undefined;
}

/**
 * Where the engine library is: `MLX_BUN_LIB` if set, else this platform's engine package, else
 * a checkout's build in zig-out/lib. Throws a message saying what to install when none is found.
 */
export function findLibrary(): string {
  const override = process.env.MLX_BUN_LIB;
  if (override) {
    if (!existsSync(override)) throw new Error(`mlx-bun: MLX_BUN_LIB is set to ${override}, which does not exist.`);
    return override;
  }
  const fromPackage = platformPackageLibrary();
  if (fromPackage !== undefined) return fromPackage;
  const dev = devLibrary();
  if (dev !== undefined) return dev;
  throw new Error(missingEngineMessage(process.platform, process.arch));
}

/** The error for a machine without an engine library (exported for tests). */
export function missingEngineMessage(platform: string, arch: string): string {
  const pkg = ENGINE_PACKAGES[`${platform}-${arch}`];
  const build = `or build the engine from a checkout (\`bash scripts/bootstrap.sh\`) and set MLX_BUN_LIB to its zig-out/lib/${libName}.`;
  if (pkg === undefined) {
    const have = Object.keys(ENGINE_PACKAGES).join(", ");
    return `mlx-bun: there is no prebuilt engine for ${platform}-${arch} (prebuilt: ${have}; Linux with glibc). ` +
      `Build the engine for this machine from a checkout (\`bash scripts/bootstrap.sh\`, needs only Node and Python) and set MLX_BUN_LIB to the built ${libName}.`;
  }
  return `mlx-bun: the engine package for ${platform}-${arch}, ${pkg}, is not installed. It is an optional dependency of mlx-bun: ` +
    `reinstall without omitting optional dependencies (npm --omit=optional, bun --omit optional), or add it yourself (\`bun add ${pkg}\`); ` +
    (platform === "linux" ? "it needs glibc 2.17 or newer (musl systems: build the engine), " : "") + build;
}

/** The path the engine library was opened from. */
export const libraryPath = findLibrary();

function open(path: string) {
  try {
    return dlopen(path, symbols).symbols;
  } catch (e) {
    throw new Error(`mlx-bun: the engine library ${path} could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The engine's C functions (see ffi/mlxbun.h). */
export const lib = open(libraryPath);

const engineAbi = lib.mlxb_abi_version();
if (engineAbi !== ABI_VERSION) {
  throw new Error(`mlx-bun: the engine library ${libraryPath} speaks ABI ${engineAbi} but this binding expects ${ABI_VERSION}; rebuild the engine or install matching versions of mlx-bun and its engine package.`);
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
