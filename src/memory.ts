// The memory API (MLX's), and the TypeScript-side release tools: dispose, tidy, keep.
import { checkStatus, lib, MlxError, wrappedHostBuffers } from "../ffi/lib";
import { isMxArray, MxArray } from "./array";
import { treeArrays } from "./eval";
import { runScoped } from "./scope";

/** Bytes currently used by arrays in the engine. */
export function getActiveMemory(): number {
  return lib.mlxb_get_active_memory();
}

/** The most bytes in use since start or the last `resetPeakMemory()`. */
export function getPeakMemory(): number {
  return lib.mlxb_get_peak_memory();
}

/** Set the peak to the current use. */
export function resetPeakMemory(): void {
  lib.mlxb_reset_peak_memory();
}

/** Bytes of freed buffers the allocator keeps for reuse. */
export function getCacheMemory(): number {
  return lib.mlxb_get_cache_memory();
}

/** Free the allocator's cache. */
export function clearCache(): void {
  lib.mlxb_clear_cache();
}

/** The memory limit in bytes (default 0.8 x RAM). */
export function getMemoryLimit(): number {
  return lib.mlxb_get_memory_limit();
}

function limit(v: number, op: string): number {
  if (typeof v !== "number" || !(v >= 0)) throw new MlxError(`[${op}] The limit must be a non-negative number of bytes, got ${v}.`, 1);
  return v;
}

/**
 * Set the memory limit in bytes; returns the previous one. An evaluation that would pass it
 * fails with an out-of-memory MlxError (after clearing the cache), and the engine stays usable.
 */
export function setMemoryLimit(bytes: number): number {
  return checkStatus(lib.mlxb_set_memory_limit(limit(bytes, "set_memory_limit")));
}

/** Set the cache limit in bytes (0 disables the cache); returns the previous one. */
export function setCacheLimit(bytes: number): number {
  return checkStatus(lib.mlxb_set_cache_limit(limit(bytes, "set_cache_limit")));
}

/** Live array handles in the engine (a leak check: compare before and after). */
export function getLiveHandleCount(): number {
  return lib.mlxb_live_handles();
}

/** Live graph nodes in the engine, whether or not a handle points at them. */
export function getLiveNodeCount(): number {
  return lib.mlxb_live_nodes();
}

/** Host buffers the engine borrows through `mx.array(typedArray, { copy: false })`. */
export function getWrappedHostBufferCount(): number {
  return wrappedHostBuffers();
}

/** Dispose every array in the arguments (arrays, or objects and lists holding them). */
export function dispose(...args: unknown[]): void {
  const first = args[0];
  if (args.length === 1 && first instanceof MxArray) return first.dispose();
  for (const a of treeArrays(args)) a.dispose();
}

/**
 * Run `fn` and then dispose every array created while it ran, except the arrays it returns
 * (anywhere inside the returned value) and those passed to `mx.keep`. Works for async
 * functions too: the scope follows `await`s, and closes when the promise settles. If `fn`
 * throws, everything it created is disposed and the error propagates.
 *
 * @example
 * const loss = mx.tidy(() => {
 *   const d = mx.subtract(pred, y);   // temporaries are released here
 *   return mx.mean(mx.square(d));     // the result survives
 * });
 */
export function tidy<T>(fn: () => T): T {
  return runScoped(fn, isMxArray);
}

/** Exclude arrays from the enclosing `tidy` scopes; returns its argument. */
export function keep<T>(value: T): T {
  for (const a of treeArrays([value])) {
    a.kept = true;
    a.escape();
  }
  return value;
}

export { MxArray };

/**
 * The bytes of the buffers behind arrays (each argument an array or a tree of arrays; other
 * leaves are ignored), each buffer counted once (views of one buffer share it), as MLX's
 * `mx.get_array_buffer_size`. The size is the allocator's block (mlx-bun's size classes, so it
 * can exceed the data's bytes; the data size for wrapped host memory). A broadcast array holds
 * only its source's buffer (`mx.ones([n])` is one scalar broadcast). Arrays must be evaluated.
 * @example
 * const a = mx.arange(256, mx.float32); mx.eval(a);
 * mx.getArrayBufferSize(a, { view: a.index(mx.sl(1)) }) // 1024: one buffer
 */
export function getArrayBufferSize(...args: unknown[]): number {
  const seen = new Set<number>();
  let total = 0;
  for (const a of treeArrays(args)) {
    const h = a.handle("get_array_buffer_size");
    const id = lib.mlxb_array_buffer_id(h);
    if (id < 0) checkStatus(id);
    if (id === 0) throw new MlxError("[get_array_buffer_size] Arrays must be evaluated before querying buffer size.", 1);
    if (seen.has(id)) continue;
    seen.add(id);
    total += lib.mlxb_array_buffer_size(h);
  }
  return total;
}
