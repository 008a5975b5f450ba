// mx.unique and mx.minmax, composed from existing ops as MLX defines them.
import { MxArray } from "../array";
import { arange, full } from "../creation";
import { stream as withStream, type StreamOrDevice } from "../device";
import { int32, uint32 } from "../dtype";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import { less, maximum, minimum, notEqual, subtract, where } from "./elementwise";
import { max, min, type ReduceOptions } from "./reduce";
import { concatenate, reshape } from "./shape";
import { argsort, cumsum, sort } from "./sort";
import { take } from "./indexing";

/**
 * The minimum and the maximum over the axes, in that order (MLX's `mx.minmax`: the same as
 * `mx.min` and `mx.max` called separately).
 * @example mx.minmax(mx.array([[3, 1], [2, 5]]), { axis: 0 }) // [array([2, 1]), array([3, 5])]
 */
export function minmax(a: MxArray, options?: ReduceOptions | number | readonly number[] | null): [MxArray, MxArray] {
  const lo = min(a, options);
  try {
    return [lo, max(a, options)];
  } catch (e) {
    lo.dispose();
    throw e;
  }
}

/** Options of `mx.unique`. */
export interface UniqueOptions {
  /** Also return the index (in the flattened input) of each unique value's first occurrence. */
  returnIndex?: boolean;
  /** Also return, for each element of the input (its shape), the index of its unique value. */
  returnInverse?: boolean;
  /** Also return how many times each unique value occurs (0 in the padding). */
  returnCounts?: boolean;
  /** The value past the last unique element (default: the smallest unique element). */
  fillValue?: number | boolean | MxArray;
  stream?: StreamOrDevice;
}

/**
 * The sorted unique elements of the flattened array, as MLX 0.32's `mx.unique`: the output has
 * the static length `size` (the values are not looked at to choose it). Past the last unique
 * element come `fillValue` (default: the first unique element) with count 0; a `size` below the
 * number of unique elements keeps the smallest ones (their `inverse` entries are clamped to the
 * last slot). Equal values merge (-0 with 0); each NaN is its own element, sorted last.
 *
 * With any of `returnIndex`, `returnInverse`, `returnCounts`, returns the list
 * `[values, index?, inverse?, counts?]` of the requested arrays in that order (index and
 * inverse uint32, counts int32).
 *
 * @example
 * const a = mx.array([2, 1, 2, 3, 1]);
 * mx.unique(a, 3) // array([1, 2, 3], dtype=int32)
 * const [values, counts] = mx.unique(a, 4, { returnCounts: true, fillValue: 0 }) as mx.Array[];
 * // values [1, 2, 3, 0], counts [2, 2, 1, 0]
 */
export function unique(a: MxArray, size: number, options: UniqueOptions = {}): MxArray | MxArray[] {
  if (!(a instanceof MxArray)) throw new MlxError("[unique] Expected an array.", 1);
  if (typeof size !== "number" || !Number.isInteger(size)) throw new MlxError(`[unique] size must be an integer, got ${String(size)}.`, 1);
  if (size < 0) throw new MlxError(`[unique] Received negative size ${size}.`, 1);
  const { returnIndex = false, returnInverse = false, returnCounts = false, fillValue } = options;
  const run = (): MxArray[] =>
    tidy(() => {
      const n = a.size;
      const flat = reshape(a, [-1]);
      const fill = fillValue === undefined ? undefined : fillValue instanceof MxArray ? fillValue.astype(a.dtype) : full([], fillValue, a.dtype);
      let values: MxArray, index: MxArray, inverse: MxArray, counts: MxArray;
      if (n === 0) {
        if (size > 0 && fill === undefined) throw new MlxError("[unique] A fill value is required for an empty input with a non-zero size.", 1);
        values = size > 0 ? full([size], fill!, a.dtype) : full([0], 0, a.dtype);
        index = full([size], 0, uint32);
        inverse = full(a.shape, 0, uint32);
        counts = full([size], 0, int32);
      } else {
        const order = argsort(flat, 0); // stable: a group's first entry is its first occurrence
        const sorted = take(flat, order, 0);
        const isNew =
          n > 1
            ? concatenate([full([1], true), notEqual(take(sorted, arange(1, n, int32), 0), take(sorted, arange(0, n - 1, int32), 0))])
            : full([1], true);
        const pos = arange(n, int32);
        // The start of each group in sorted order, then n for every slot past the last group.
        const starts = concatenate([sort(where(isNew, pos, n), 0), full([size + 1], n, int32)]);
        const first = take(starts, arange(0, size, int32), 0);
        const next = take(starts, arange(1, size + 1, int32), 0);
        const valid = less(first, n);
        const at = minimum(first, n - 1);
        values = where(valid, take(sorted, at, 0), fill ?? take(sorted, 0, 0));
        index = where(valid, take(order, at, 0), take(order, 0, 0)).astype(uint32);
        counts = subtract(next, first);
        const group = maximum(minimum(subtract(cumsum(isNew.astype(int32), 0), 1), Math.max(size - 1, 0)), 0);
        inverse = reshape(take(group, argsort(order, 0), 0), a.shape).astype(uint32);
      }
      const out = [values];
      if (returnIndex) out.push(index);
      if (returnInverse) out.push(inverse);
      if (returnCounts) out.push(counts);
      return out;
    });
  const out = options.stream === undefined || options.stream === null ? run() : withStream(options.stream, run);
  return returnIndex || returnInverse || returnCounts ? out : out[0]!;
}
