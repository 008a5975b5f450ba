// DLPack, both ways: a.toDlpack() / a.dlpackDevice() (Python's __dlpack__ / __dlpack_device__)
// and mx.fromDlpack(x, { copy }). The engine does the work (engine/dlpack.zig); here a managed
// tensor is an opaque address that a DLPackTensor owns until it is consumed or disposed.
import { engineError, lib } from "../ffi/lib";
import { MxArray } from "./array";
import { MlxError } from "./errors";

/** An address as the engine's pointer arguments take it (bun:ffi's Pointer is a branded number). */
const address = (p: number): never => p as never;

/** DLPack's device types (`DLDeviceType`); mlx-bun arrays live on `kDLCPU`. */
export const DLDeviceType = { kDLCPU: 1, kDLCUDA: 2, kDLCUDAHost: 3, kDLMetal: 8, kDLROCM: 10, kDLROCMHost: 11 } as const;

// Safety net for tensors nobody consumed or disposed: the deleter runs when the owner is
// collected (FinalizationRegistry: it may run late, but an exported tensor only holds a
// reference on a buffer the engine would otherwise have freed).
const unconsumed = new FinalizationRegistry<{ ptr: number; versioned: boolean }>((t) => {
  lib.mlxb_dlpack_delete(address(t.ptr), t.versioned ? 1 : 0);
});

/**
 * An exported DLPack managed tensor (`DLManagedTensorVersioned*`, or the legacy
 * `DLManagedTensor*` with `{ versioned: false }`), owned by this object until it is consumed.
 *
 * - `mx.fromDlpack(t)` consumes it (zero-copy: the new array views the same engine buffer).
 * - `t.consume()` hands the address to native code, which must call the tensor's deleter
 *   exactly once (e.g. a C library's `from_dlpack`).
 * - `t.dispose()` (or `using t = ...`) calls the deleter if nobody consumed it; if you do
 *   neither, the garbage collector does it eventually.
 *
 * @example
 * using t = a.toDlpack();
 * const b = mx.fromDlpack(t); // b shares a's memory; t is consumed
 */
export class DLPackTensor {
  #ptr: number;
  readonly #versioned: boolean;

  /** @internal Use `a.toDlpack()`. */
  constructor(ptr: number, versioned: boolean) {
    this.#ptr = ptr;
    this.#versioned = versioned;
    unconsumed.register(this, { ptr, versioned }, this);
  }

  /** Whether the address is a `DLManagedTensorVersioned*` (else a legacy `DLManagedTensor*`). */
  get versioned(): boolean {
    return this.#versioned;
  }

  /** True while this object owns the tensor (not yet consumed or disposed). */
  get owned(): boolean {
    return this.#ptr !== 0;
  }

  /** The managed tensor's address, for reading; ownership stays here. */
  get pointer(): number {
    if (this.#ptr === 0) throw new MlxError("[fromDlpack] The DLPack tensor was already consumed or disposed.", 1);
    return this.#ptr;
  }

  /**
   * Give up ownership and return the address: the receiver must call the tensor's deleter
   * exactly once.
   */
  consume(): number {
    const p = this.pointer;
    this.#ptr = 0;
    unconsumed.unregister(this);
    return p;
  }

  /** Call the deleter unless the tensor was consumed; idempotent. */
  dispose(): void {
    if (this.#ptr === 0) return;
    const p = this.consume();
    lib.mlxb_dlpack_delete(address(p), this.#versioned ? 1 : 0);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export interface ToDlpackOptions {
  /**
   * false or undefined (default): the tensor views the engine's buffer and is flagged
   * READ_ONLY (arrays are immutable, and the buffer may be shared). true: a row-major copy
   * the consumer owns alone, flagged IS_COPIED.
   */
  copy?: boolean;
  /** false: a legacy unversioned `DLManagedTensor` for consumers that predate DLPack 1.0. */
  versioned?: boolean;
}

export interface FromDlpackOptions {
  /**
   * true: always copy. false: never copy (throws if the data cannot be viewed: negative
   * strides, misaligned data, complex128). undefined (default): view when possible.
   */
  copy?: boolean;
  /** For a raw address: false means it is a legacy `DLManagedTensor*`. Default true. */
  versioned?: boolean;
}

/** Anything with a `toDlpack()`, as Python's `from_dlpack` takes anything with `__dlpack__`. */
export interface DLPackProducer {
  toDlpack(options?: ToDlpackOptions): DLPackTensor;
}

function copyArg(copy: boolean | undefined): number {
  if (copy === undefined || copy === null) return -1;
  if (typeof copy !== "boolean") throw new MlxError(`[fromDlpack] copy must be true, false or undefined, got ${String(copy)}.`, 1);
  return copy ? 1 : 0;
}

function importAddress(ptr: number, versioned: boolean, copy: number): number {
  const h = versioned ? lib.mlxb_dlpack_import(address(ptr), copy) : lib.mlxb_dlpack_import_unversioned(address(ptr), copy);
  if (h === 0) throw engineError();
  return h;
}

/**
 * An array from a DLPack tensor: a `DLPackTensor` (consumed on success), anything with a
 * `toDlpack()` method (an `mx.Array` among them), or the raw address of a
 * `DLManagedTensorVersioned` (`{ versioned: false }`: of a legacy `DLManagedTensor`) that
 * native code produced. Only CPU memory is accepted.
 *
 * Without a copy the array views the producer's memory: the producer's deleter runs exactly
 * once, when the engine drops its last use of it. Changing that memory afterwards changes the
 * array behind the engine's back (and transforms never see it; docs/INTEROP.md). On failure
 * nothing is consumed: a raw address still belongs to the caller.
 *
 * float64 stays float64 (MLX's Python `from_dlpack` gives float32); complex128 is converted
 * to complex64 (a copy), as MLX does.
 *
 * @example
 * const b = mx.fromDlpack(a.toDlpack())            // zero-copy
 * const c = mx.fromDlpack(a, { copy: true })       // an independent copy
 */
export function fromDlpack(x: DLPackTensor | DLPackProducer | number | bigint, options: FromDlpackOptions = {}): MxArray {
  const copy = copyArg(options.copy);
  if (x instanceof DLPackTensor) {
    const h = importAddress(x.pointer, x.versioned, copy);
    x.consume(); // the engine owns it now
    return new MxArray(h);
  }
  if (typeof x === "bigint") x = Number(x); // an address as a 64-bit integer
  if (typeof x === "number") {
    if (!Number.isSafeInteger(x) || x <= 0) throw new MlxError(`[fromDlpack] Expected the address of a managed tensor, got ${x}.`, 1);
    return new MxArray(importAddress(x, options.versioned !== false, copy));
  }
  if (typeof x === "object" && x !== null && typeof (x as DLPackProducer).toDlpack === "function") {
    const t = (x as DLPackProducer).toDlpack();
    try {
      return fromDlpack(t, options);
    } finally {
      t.dispose(); // a no-op once consumed
    }
  }
  throw new MlxError("[fromDlpack] Expected a DLPackTensor, an object with toDlpack(), or the address of a managed tensor.", 1);
}

/** Exported managed tensors whose deleter has not run yet (a leak check for tests). */
export function getLiveDlpackExportCount(): number {
  return lib.mlxb_dlpack_live_exports();
}

declare module "./array" {
  interface MxArray {
    /**
     * Evaluate the array and export it as a DLPack managed tensor (CPU, DLPack 1.1), which
     * views the engine buffer (READ_ONLY) and keeps it alive until the tensor's deleter runs.
     * Python's `__dlpack__`.
     * @example using t = a.toDlpack(); nativeLib.consume(t.consume());
     */
    toDlpack(options?: ToDlpackOptions): DLPackTensor;
    /** `[deviceType, deviceId]` of the data as DLPack names it: `[1, 0]` (kDLCPU). Python's `__dlpack_device__`. */
    dlpackDevice(): [number, number];
  }
}

(MxArray.prototype as unknown as Record<string, unknown>).toDlpack = function (this: MxArray, options: ToDlpackOptions = {}): DLPackTensor {
  const copy = options.copy === true ? 1 : 0;
  if (options.copy !== undefined && typeof options.copy !== "boolean") {
    throw new MlxError(`[toDlpack] copy must be true, false or undefined, got ${String(options.copy)}.`, 1);
  }
  const versioned = options.versioned !== false;
  const h = this.handle("toDlpack");
  const p = versioned ? lib.mlxb_dlpack_export(h, copy) : lib.mlxb_dlpack_export_unversioned(h, copy);
  if (p === null || p === 0) throw engineError();
  return new DLPackTensor(p as number, versioned);
};

(MxArray.prototype as unknown as Record<string, unknown>).dlpackDevice = function (this: MxArray): [number, number] {
  this.handle("dlpackDevice");
  return [DLDeviceType.kDLCPU, 0];
};
