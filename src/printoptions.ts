// mx.setPrintoptions / mx.getPrintoptions / mx.printoptions / mx.PrintOptions, as MLX's
// set_printoptions (MLX 0.32 has one option, precision).
import type { PrintOptions as FormatOptions } from "./print";

let current: FormatOptions = {};

/** @internal The current print options (`{ precision }`; undefined precision is MLX's default `%g` style). */
export function printOptions(): FormatOptions {
  return current;
}

/**
 * A set of print options, as MLX's `mx.PrintOptions`: `precision` is the digits after the point,
 * -1 (the default) for MLX's default style. Accepted wherever print options are.
 * @example mx.setPrintoptions(new mx.PrintOptions({ precision: 2 }))
 */
export class PrintOptions {
  precision: number;
  constructor(options: { precision?: number } = {}) {
    this.precision = options.precision ?? -1;
  }
}

type OptionsLike = { precision?: number } | PrintOptions;

function normalize(options: OptionsLike): { precision?: number } {
  if (options instanceof PrintOptions) return { precision: options.precision < 0 ? undefined : options.precision };
  return options;
}

/** Set how arrays print: `precision` fixes the digits after the point. */
export function setPrintoptions(options: OptionsLike): void {
  current = { ...current, ...normalize(options) };
}

/** A copy of the current print options. */
export function getPrintoptions(): { precision?: number } {
  return { ...current };
}

/** Run `fn` with temporary print options (Python's `with mx.printoptions(...)`). */
export function printoptions<T>(options: OptionsLike, fn: () => T): T {
  const saved = current;
  current = { ...current, ...normalize(options) };
  try {
    return fn();
  } finally {
    current = saved;
  }
}
