// Devices and streams. The CPU is the only backend so far; `mx.gpu` exists and reports that it
// is unavailable, as MLX does on a machine without a GPU backend.
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

/** What ops accept as `stream`: a Stream, a Device (its default stream), or nothing (the default). */
export type StreamOrDevice = Stream | Device | undefined | null;

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
export function stream<T>(s: Stream | Device, fn: () => T): T {
  const target = s instanceof Stream ? s : defaultStream(s);
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
export function synchronize(s?: Stream): void {
  checkStatus(lib.mlxb_synchronize(s === undefined ? -1 : s.index));
}
