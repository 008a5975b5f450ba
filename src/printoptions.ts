// mx.setPrintoptions / mx.getPrintoptions / mx.printoptions, as MLX's set_printoptions.
import type { PrintOptions } from "./print";

let current: PrintOptions = {};

/** The current print options (`{ precision }`; undefined precision is MLX's default `%g` style). */
export function printOptions(): PrintOptions {
  return current;
}

/** Set how arrays print: `precision` fixes the digits after the point. */
export function setPrintoptions(options: { precision?: number }): void {
  current = { ...current, ...options };
}

/** A copy of the current print options. */
export function getPrintoptions(): { precision?: number } {
  return { ...current };
}

/** Run `fn` with temporary print options (Python's `with mx.printoptions(...)`). */
export function printoptions<T>(options: { precision?: number }, fn: () => T): T {
  const saved = current;
  current = { ...current, ...options };
  try {
    return fn();
  } finally {
    current = saved;
  }
}
