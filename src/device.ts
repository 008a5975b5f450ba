// Devices and streams. The CPU is the only backend so far; `mx.gpu` exists and reports that it
// is unavailable, as MLX does on a machine without a GPU backend.
import { readFileSync } from "node:fs";
import { cpus, machine, totalmem } from "node:os";
import { DEVICE, checkStatus, lib } from "../ffi/lib";
import { MlxError } from "./errors";

export type DeviceTypeName = "cpu" | "gpu";

/** MLX's DeviceType enum: `mx.DeviceType.cpu`, `mx.DeviceType.gpu`. */
export const DeviceType = { cpu: "cpu", gpu: "gpu" } as const;

/** A device: `mx.cpu` or `mx.gpu` (index 0). */
export class Device {
  constructor(
    readonly type: DeviceTypeName,
    readonly index = 0,
  ) {}
  toString(): string {
    return `Device(${this.type}, ${this.index})`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
  equals(other: Device): boolean {
    return other.type === this.type && other.index === this.index;
  }
}

/** The CPU device. */
export const cpu = new Device("cpu");
/** The GPU device (no GPU backend yet: using it raises MLX's error). */
export const gpu = new Device("gpu");

/** A stream of work on a device. */
export class Stream {
  constructor(
    /** The stream's index (0 is the CPU's default stream). */
    readonly index: number,
    readonly device: Device,
  ) {}
  toString(): string {
    return `Stream(${this.device}, ${this.index})`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
  equals(other: Stream): boolean {
    return other.index === this.index;
  }
}

/**
 * A stream that is unique per thread (MLX's `ThreadLocalStream`, made by
 * `mx.newThreadLocalStream`): each thread that uses it gets a stream of its own on `device`,
 * made on first use. In mlx-bun a JS thread is the main thread or a Worker, and each has its own
 * copy of this module, so the stream is made per JS thread.
 */
export class ThreadLocalStream {
  #stream: Stream | undefined;
  constructor(readonly device: Device) {}
  /** This thread's stream (made on first use). */
  get stream(): Stream {
    if (this.#stream === undefined) {
      this.#stream = newStream(this.device);
      threadLocalStreams.add(this);
    }
    return this.#stream;
  }
  /** @internal Forget this thread's stream (`mx.clearStreams`). */
  reset(): void {
    this.#stream = undefined;
  }
  toString(): string {
    return `ThreadLocalStream(${this.device}, ${this.#stream?.index ?? 0})`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

const threadLocalStreams = new Set<ThreadLocalStream>();

/**
 * What ops accept as `stream`: a Stream, a ThreadLocalStream (this thread's stream), a Device
 * (its default stream), or nothing (the default).
 */
export type StreamOrDevice = Stream | ThreadLocalStream | Device | undefined | null;

function deviceCode(d: Device | DeviceTypeName): number {
  const type = typeof d === "string" ? d : d.type;
  if (type !== "cpu" && type !== "gpu") throw new MlxError(`[device] Unknown device type ${JSON.stringify(type)}.`, 1);
  return DEVICE[type];
}

function deviceOfCode(c: number): Device {
  return c === DEVICE.gpu ? gpu : cpu;
}

/** The engine's stream argument for an op: -1 is this thread's default stream. */
export function streamArg(s: StreamOrDevice): number {
  if (s === undefined || s === null) return -1;
  if (s instanceof Stream) return s.index;
  if (s instanceof ThreadLocalStream) return s.stream.index;
  if (s instanceof Device) return checkStatus(lib.mlxb_default_stream(deviceCode(s)));
  throw new MlxError(`[stream] Expected a Stream or a Device, got ${String(s)}.`, 1);
}

/** Whether a device has a backend here (`mx.isAvailable(mx.gpu)` is false for now). */
export function isAvailable(d: Device | DeviceTypeName): boolean {
  return checkStatus(lib.mlxb_is_available(deviceCode(d))) === 1;
}

/** The default device of this thread. */
export function defaultDevice(): Device {
  return deviceOfCode(lib.mlxb_default_device());
}

/** Set the default device of this thread (`mx.gpu` fails: no GPU backend yet). */
export function setDefaultDevice(d: Device | DeviceTypeName): void {
  checkStatus(lib.mlxb_set_default_device(deviceCode(d)));
}

/** The default stream of a device on this thread. */
export function defaultStream(d: Device | DeviceTypeName = defaultDevice()): Stream {
  const index = checkStatus(lib.mlxb_default_stream(deviceCode(d)));
  return new Stream(index, deviceOfCode(lib.mlxb_stream_device(index)));
}

/** Make `s` this thread's default stream. */
export function setDefaultStream(s: Stream): void {
  checkStatus(lib.mlxb_set_default_stream(s.index));
}

/** A new stream on a device. */
export function newStream(d: Device | DeviceTypeName = defaultDevice()): Stream {
  const index = checkStatus(lib.mlxb_new_stream(deviceCode(d)));
  return new Stream(index, deviceOfCode(lib.mlxb_stream_device(index)));
}

/**
 * Run `fn` with `s` (a stream, or a device's default stream) as the default stream, like
 * Python's `with mx.stream(s):`. For an async fn the previous default comes back when its
 * promise settles.
 *
 * @example
 * const s = mx.newStream(mx.cpu);
 * const a = mx.stream(s, () => mx.ones([4]));
 */
export function stream<T>(s: Stream | ThreadLocalStream | Device, fn: () => T): T {
  const target = s instanceof Stream ? s : s instanceof ThreadLocalStream ? s.stream : defaultStream(s);
  const previous = checkStatus(lib.mlxb_default_stream(DEVICE.cpu));
  setDefaultStream(target);
  const restore = () => void lib.mlxb_set_default_stream(previous);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

/** Wait for the work queued on a stream (default: this thread's default stream). */
export function synchronize(s?: Stream | ThreadLocalStream): void {
  checkStatus(lib.mlxb_synchronize(s === undefined ? -1 : s instanceof ThreadLocalStream ? s.stream.index : s.index));
}

function deviceTypeOf(d: Device | DeviceTypeName | undefined, op: string): DeviceTypeName {
  const type = d === undefined ? defaultDevice().type : typeof d === "string" ? d : d instanceof Device ? d.type : undefined;
  if (type !== "cpu" && type !== "gpu") throw new MlxError(`[${op}] Unknown device type ${JSON.stringify(d)}.`, 1);
  return type;
}

/**
 * The number of devices of a type: 1 for the CPU, 0 for the GPU (no GPU backend), as MLX on a
 * machine without one.
 * @example mx.deviceCount(mx.DeviceType.cpu) // 1
 */
export function deviceCount(type: Device | DeviceTypeName): number {
  return deviceTypeOf(type, "device_count") === "cpu" ? 1 : 0;
}

let cpuInfo: Record<string, string | number> | undefined;

function cpuName(): string {
  try {
    const text = readFileSync("/proc/cpuinfo", "utf8");
    const m = /^model name\s*:\s*(.+)$/m.exec(text);
    if (m) return m[1]!.trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model?.trim() ?? "";
}

/**
 * Information about a device (default: the default device), with MLX's keys. For the CPU, as
 * MLX's CPU backend: `architecture` (the machine, e.g. "x86_64" or "arm64") and `device_name`
 * (the processor's model name); mlx-bun adds `memory_size` (the machine's memory in bytes, the
 * key MLX's GPU backends use). The GPU has no backend: `{}`, as MLX without one.
 * @example mx.deviceInfo().architecture // "x86_64"
 */
export function deviceInfo(d?: Device | DeviceTypeName): Record<string, string | number> {
  if (deviceTypeOf(d, "device_info") === "gpu") return {};
  if (cpuInfo === undefined) {
    cpuInfo = { architecture: machine(), device_name: cpuName(), memory_size: totalmem() };
  }
  return { ...cpuInfo };
}

/**
 * A stream that is unique per thread (see `ThreadLocalStream`), as MLX's
 * `mx.new_thread_local_stream`.
 */
export function newThreadLocalStream(d: Device | DeviceTypeName): ThreadLocalStream {
  const type = deviceTypeOf(d, "new_thread_local_stream");
  if (!isAvailable(type)) throw new MlxError(`[new_thread_local_stream] The ${type} device is not available.`, 1);
  return new ThreadLocalStream(type === "cpu" ? cpu : gpu);
}

/**
 * A stream that can be used from any thread, as MLX's `mx.new_thread_unsafe_stream`. mlx-bun's
 * streams are not tied to the thread that made them, so this is `mx.newStream`; as in MLX, the
 * caller keeps concurrent uses from racing.
 */
export function newThreadUnsafeStream(d: Device | DeviceTypeName): Stream {
  return newStream(d);
}

/**
 * MLX's `mx.clear_streams` ("destroy all streams created in the current thread"). mlx-bun's
 * engine keeps its streams for the life of the process (an idle stream costs a table entry), so
 * this forgets this thread's ThreadLocalStream streams (the next use makes a new one); Stream
 * objects made before stay usable.
 */
export function clearStreams(): void {
  for (const t of threadLocalStreams) t.reset();
  threadLocalStreams.clear();
}

/**
 * MLX's `mx.set_wired_limit`: the wired (kept resident) memory limit of the Metal backend. On
 * the CPU it has no effect and returns 0 (the previous limit), as MLX without Metal.
 */
export function setWiredLimit(limit: number): number {
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0) {
    throw new MlxError(`[set_wired_limit] The limit must be a non-negative integer, got ${String(limit)}.`, 1);
  }
  return 0;
}
