// Indexing against NumPy and real MLX: test/fixtures/indexing/indexing.json (gen_indexing.py)
// holds hand-written and 2,000 random index expressions (ints, slices with any step, newaxis,
// ellipsis, integer arrays in any mix) with NumPy's results, each also run through MLX; 600
// random updates (set and the .at ops, with repeated indices accumulating); and the ops over
// every dtype, bit for bit with MLX. Errors and views are checked here by hand.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { diffArray, fromRecord, loadFixture, type ArrayRecord } from "./fixtures/creation/helpers.ts";
import { expectMlxError } from "./util.ts";

type Item = { i: number } | { s: [number | null, number | null, number | null] } | { n: 1 } | { e: 1 } | { a: { shape: number[]; data: number[] } };
interface Flat {
  shape: number[];
  data: number[];
}
interface ReadCase {
  shape: number[];
  perm: number[] | null;
  index: Item[];
  result: Flat;
  mlx_shape?: number[];
}
interface UpdateCase extends ReadCase {
  op: "set" | "add" | "multiply" | "maximum" | "minimum";
  vshape: number[];
}
type Arg = number | number[] | null | { in: ArrayRecord };
interface OpCase {
  op: string;
  args: Arg[];
  kwargs: Record<string, Arg>;
  result: ArrayRecord;
}

const fx = loadFixture<{ reads: ReadCase[]; random_reads: ReadCase[]; updates: UpdateCase[]; random_updates: UpdateCase[]; ops: OpCase[] }>("../indexing/indexing.json");

function base(shape: number[], perm: number[] | null): mx.Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const a = mx.arange(size, { dtype: mx.int32 }).reshape(shape);
  return perm === null ? a : a.transpose(perm);
}

/** The items as mx index arguments; with `asString`, basic items go in one string. */
function toIndex(items: Item[], asString: boolean): mx.Index[] {
  if (asString && items.every((it) => !("a" in it))) {
    const text = items
      .map((it) => {
        if ("i" in it) return String(it.i);
        if ("n" in it) return "None";
        if ("e" in it) return "...";
        if ("s" in it) {
          const [a, b, c] = it.s.map((v) => (v === null ? "" : String(v)));
          return c === "" ? `${a}:${b}` : `${a}:${b}:${c}`;
        }
        return "";
      })
      .join(", ");
    return [text];
  }
  return items.map((it): mx.Index => {
    if ("i" in it) return it.i;
    if ("n" in it) return mx.newaxis;
    if ("e" in it) return "...";
    if ("s" in it) return mx.sl(...it.s);
    return mx.array(it.a.data, mx.int32).reshape(it.a.shape);
  });
}

function flat(a: mx.Array): Flat {
  return { shape: [...a.shape], data: Array.from(a.toTypedArray() as Int32Array) };
}

function describeCase(c: ReadCase): string {
  return `shape ${JSON.stringify(c.shape)} perm ${JSON.stringify(c.perm)} index ${JSON.stringify(c.index)}`;
}

describe("reads (a[...])", () => {
  test("hand-written cases match NumPy and MLX", () => {
    for (const c of fx.reads) {
      const r = base(c.shape, c.perm).index(...toIndex(c.index, false));
      expect({ c: describeCase(c), r: flat(r) }).toEqual({ c: describeCase(c), r: c.result });
    }
  });

  test("the string form reads the same", () => {
    let n = 0;
    for (const c of fx.reads) {
      if (c.index.some((it) => "a" in it)) continue;
      const r = base(c.shape, c.perm).index(...toIndex(c.index, true));
      expect({ c: describeCase(c), r: flat(r) }).toEqual({ c: describeCase(c), r: c.result });
      n++;
    }
    expect(n).toBeGreaterThan(20);
  });

  test("2,000 random index expressions match NumPy", () => {
    let differ = 0;
    for (const [k, c] of fx.random_reads.entries()) {
      mx.tidy(() => {
        const r = base(c.shape, c.perm).index(...toIndex(c.index, k % 3 === 0));
        expect({ c: describeCase(c), r: flat(r) }).toEqual({ c: describeCase(c), r: c.result });
      });
      if (c.mlx_shape) differ++;
    }
    expect(fx.random_reads.length).toBe(2000);
    // The few where MLX differs from NumPy: an empty Ellipsis between advanced indices.
    expect(differ).toBeLessThan(20);
  });

  test("basic indexing returns views that share the buffer", () => {
    const a = mx.arange(24, { dtype: mx.float32 }).reshape([2, 3, 4]);
    mx.eval(a);
    Bun.gc(true); // earlier tests' garbage must not be freed while we measure
    const before = mx.getActiveMemory();
    const views = [a.index(1), a.index(mx.sl(), 0), a.index("..., 1::2"), a.index(mx.newaxis, 0, mx.sl(1, 3)), a.index(-1, -1, -1)];
    mx.eval(...views);
    expect(mx.getActiveMemory()).toBe(before);
    expect(views[2]!.tolist()).toEqual([[[1, 3], [5, 7], [9, 11]], [[13, 15], [17, 19], [21, 23]]]);
  });

  test("JS lists are index arrays; scalars index to 0-d", () => {
    const a = mx.arange(6).reshape([2, 3]);
    expect(a.index([1, 0]).tolist()).toEqual([[3, 4, 5], [0, 1, 2]]);
    expect(a.index(1, [0, 2]).tolist()).toEqual([3, 5]);
    expect(a.index(1, 2).shape).toEqual([]);
    expect(a.index(1, 2).item()).toBe(5);
    expect(a.index().shape).toEqual([2, 3]);
  });

  test("bad indices give clear errors", () => {
    const a = mx.arange(6).reshape([2, 3]);
    expectMlxError(() => a.index(0, 0, 0), /^Too many indices for array with 2 dimensions\.$/);
    expectMlxError(() => a.index("...", "..."), /^An index can only have a single ellipsis \(\.\.\.\)$/);
    expectMlxError(() => a.index(2), /^\[index\] Index 2 is out of bounds for axis 0 with size 2\.$/);
    expectMlxError(() => a.index(0, -4), /^\[index\] Index -4 is out of bounds for axis 1 with size 3\.$/);
    expectMlxError(() => a.index(1.5), /^\[index\] Indices must be integers, got 1\.5\.$/);
    expectMlxError(() => a.index("1:2:0"), /^\[index\] Slice step cannot be zero\.$/);
    expectMlxError(() => mx.sl(0, 1, 0), /^\[sl\] Slice step cannot be zero\.$/);
    expectMlxError(() => mx.sl(null, 2 ** 32), /^Slice indices must be 32-bit integers\.$/);
    expectMlxError(() => a.index(":4294967296"), /^Slice indices must be 32-bit integers\.$/);
    expectMlxError(() => a.index("1;2"), /^\[index\] Cannot parse "1;2" in the index "1;2"\.$/);
    expectMlxError(() => a.index(mx.array([1], mx.float32)), /^\[gather\] Got indices with invalid dtype\. Indices must be integral\.$/);
    expectMlxError(() => a.index(mx.array([true, false])), /^\[index\] Boolean indices are not supported/);
    expectMlxError(() => a.index({} as never), /^\[index\] Cannot index with \[object Object\]\.$/);
    // Out-of-range index arrays fail when evaluated (MLX reads out of bounds instead).
    const bad = a.index(mx.array([0, 5]));
    expectMlxError(() => mx.eval(bad), /^\[gather\] Index 5 is out of bounds for axis 0 with size 2\.$/);
    const neg = a.index(mx.sl(), mx.array([-4]));
    expectMlxError(() => neg.tolist(), /^\[gather\] Index -4 is out of bounds for axis 1 with size 3\.$/);
    // The graph is left valid: a good read still works.
    expect(a.index(mx.array([-1])).tolist()).toEqual([[3, 4, 5]]);
  });
});

describe("updates (a[...] = v and .at)", () => {
  function runUpdate(c: UpdateCase, asString: boolean): Flat {
    const vsize = c.vshape.reduce((x, y) => x * y, 1);
    const v = mx.negative(mx.arange(1, vsize + 1, { dtype: mx.int32 })).reshape(c.vshape);
    const at = base(c.shape, c.perm).at(...toIndex(c.index, asString));
    return flat(at[c.op](v));
  }

  test("hand-written cases match NumPy and MLX", () => {
    for (const c of fx.updates) {
      expect({ c: describeCase(c) + c.op, r: runUpdate(c, false) }).toEqual({ c: describeCase(c) + c.op, r: c.result });
    }
  });

  test("600 random updates match NumPy (repeated indices accumulate)", () => {
    expect(fx.random_updates.length).toBe(600);
    for (const [k, c] of fx.random_updates.entries()) {
      mx.tidy(() => {
        expect({ c: describeCase(c) + c.op, r: runUpdate(c, k % 2 === 0) }).toEqual({ c: describeCase(c) + c.op, r: c.result });
      });
    }
  });

  test("subtract and divide are add and multiply of the negated and reciprocal value, in a's dtype", () => {
    const a = mx.arange(6).reshape([2, 3]);
    expect(a.at(0, [1, 1]).subtract(1).tolist()).toEqual([[0, -1, 2], [3, 4, 5]]);
    // As MLX: 1/2 in int32 is 0.
    expect(a.at(0).divide(2).tolist()).toEqual([[0, 0, 0], [3, 4, 5]]);
    const f = mx.arange(4, { dtype: mx.float32 });
    expect(f.at([1, 1]).divide(2).tolist()).toEqual([0, 0.25, 2, 3]);
    expect(a.at(0).add(2.5).tolist()).toEqual([[2, 3, 4], [3, 4, 5]]);
    expect(a.at(0).set(2.7).dtype).toBe(mx.int32);
  });

  test("a boolean mask sets positions in order (masked scatter)", () => {
    const a = mx.arange(12).reshape([3, 4]);
    expect(a.at(mx.greater(a, 5)).set(mx.array([10, 11, 12, 13, 14, 15])).tolist()).toEqual([[0, 1, 2, 3], [4, 5, 10, 11], [12, 13, 14, 15]]);
    expect(a.at(mx.greater(a, 5)).set(0).tolist()).toEqual([[0, 1, 2, 3], [4, 5, 0, 0], [0, 0, 0, 0]]);
    // A mask over the leading axes selects whole blocks; one value block fills them all
    // (as MLX: c[mask] = [2, 3, 4]), else values are taken in order.
    const c = mx.array([[0, 0, 0], [1, 1, 1]]);
    expect(c.at(mx.array([true, false])).set(mx.array([2, 3, 4])).tolist()).toEqual([[2, 3, 4], [1, 1, 1]]);
    expect(c.at([false, true]).set(7).tolist()).toEqual([[0, 0, 0], [7, 7, 7]]);
    expect(c.at([true, true]).set(mx.array([[1, 2, 3], [4, 5, 6]])).tolist()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expectMlxError(
      () => a.at([[true, false, false, false]]).set(-1),
      /^\[masked_scatter\] The boolean mask should have the same shape as the beginning of the indexed array but the mask has shape \(1,4\) and the array has shape \(3,4\)$/,
    );
    const few = a.at(mx.greater(a, 5)).set(mx.array([10, 11]));
    expectMlxError(() => mx.eval(few), /^\[masked_scatter\] Source does not have enough elements for mask \(2 given, 6 needed\)\.$/);
    expectMlxError(() => a.at(mx.greater(a, 5)).add(1), /^\[at\] A boolean mask supports only set, not add\.$/);
  });

  test("the original array is unchanged and a failed scatter leaves no trace", () => {
    const a = mx.arange(5);
    const b = a.at(mx.array([0, 7])).set(9);
    expectMlxError(() => mx.eval(b), /^\[scatter\] Index 7 is out of bounds for axis 0 with size 5\.$/);
    expect(a.tolist()).toEqual([0, 1, 2, 3, 4]);
    expect(a.at(2).set(9).tolist()).toEqual([0, 1, 9, 3, 4]);
    expect(a.tolist()).toEqual([0, 1, 2, 3, 4]);
  });

  test("update shape errors", () => {
    const a = mx.arange(6).reshape([2, 3]);
    expectMlxError(() => a.at(0).set(mx.array([1, 2])), /^\[broadcast_shapes\] Shapes \(2\) and \(3\) cannot be broadcast\.$/);
    expectMlxError(() => a.at(mx.sl(), 1).set(mx.zeros([2, 1])), /Cannot broadcast array of shape \(2,1\) into shape \(2\)\./);
  });
});

function decodeArg(a: Arg): unknown {
  if (a !== null && typeof a === "object" && !Array.isArray(a)) return fromRecord(a.in);
  return a;
}

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function runOp(c: OpCase): mx.Array {
  const a = c.args.map(decodeArg) as Any[];
  const kw = Object.fromEntries(Object.entries(c.kwargs).map(([k, v]) => [k, decodeArg(v)])) as Record<string, Any>;
  switch (c.op) {
    case "take":
      return mx.take(a[0], a[1], kw.axis);
    case "take_along_axis":
      return mx.takeAlongAxis(a[0], a[1], kw.axis);
    case "put_along_axis":
      return mx.putAlongAxis(a[0], a[1], a[2], kw.axis);
    case "slice":
      return mx.slice(a[0], a[1], kw.axes, kw.slice_size);
    case "slice_update":
      return mx.sliceUpdate(a[0], a[1], a[2], kw.axes);
    case "diagonal":
      return mx.diagonal(a[0], kw.offset ?? 0, kw.axis1 ?? 0, kw.axis2 ?? 1);
    case "diag":
      return mx.diag(a[0], kw.k ?? 0);
    case "trace":
      return mx.trace(a[0], kw.offset ?? 0);
    case "set":
      return (a[0] as mx.Array).at(a[1]).set(a[2]);
    default: {
      const op = c.op.slice(3) as "add" | "multiply" | "maximum" | "minimum";
      return (a[0] as mx.Array).at(a[1])[op](a[2]);
    }
  }
}

describe("ops over every dtype, bit for bit with MLX", () => {
  const byOp = new Map<string, OpCase[]>();
  for (const c of fx.ops) byOp.set(c.op, [...(byOp.get(c.op) ?? []), c]);
  for (const [op, cases] of byOp) {
    test(op, () => {
      for (const c of cases) {
        const r = runOp(c);
        expect({ op, dtype: c.result.dtype, diff: diffArray(r, c.result) }).toEqual({ op, dtype: c.result.dtype, diff: null });
      }
    });
  }
});

describe("ops: shapes, options and errors", () => {
  const a = mx.arange(12).reshape([3, 4]);

  test("take", () => {
    expect(mx.take(a, mx.array([[0, 2]]), 1).shape).toEqual([3, 1, 2]);
    expect(mx.take(a, 1, 0).tolist()).toEqual([4, 5, 6, 7]);
    expect(mx.take(a, [1, -1]).tolist()).toEqual([1, 11]);
    expect(mx.take(mx.array(1), mx.array([0])).tolist()).toEqual([1]);
    expectMlxError(() => mx.take(a, mx.array([0]), 2), /^\[take\] Received invalid axis 2 for array with 2 dimensions\.$/);
    expectMlxError(() => mx.take(a, mx.array([0], mx.float32), 0), /^\[gather\] Got indices with invalid dtype\. Indices must be integral\.$/);
    expectMlxError(() => mx.take(a, mx.array([true]), 0), /^\[gather\] Boolean indices not supported\.$/);
    expectMlxError(() => mx.eval(mx.take(a, mx.array([13]))), /^\[take\] Index 13 is out of bounds for axis 0 with size 12\.$/);
  });

  test("takeAlongAxis and putAlongAxis", () => {
    expect(mx.takeAlongAxis(a, mx.array([0, 5]), null).tolist()).toEqual([0, 5]);
    expect(mx.putAlongAxis(a, mx.array([0, 5]), mx.array([7, 8]), null).tolist()).toEqual([[7, 1, 2, 3], [4, 8, 6, 7], [8, 9, 10, 11]]);
    expect(mx.putAlongAxis(a, mx.array([[0]]), mx.array([9, 8]), 1).shape).toEqual([3, 4]);
    expectMlxError(() => mx.takeAlongAxis(a, mx.array([0, 1]), 1), /^\[take_along_axis\] Indices of dimension 1 does not match array of dimension 2\.$/);
    expectMlxError(() => mx.takeAlongAxis(a, mx.array([[0, 1]]), 0), /^\[broadcast_shapes\] Shapes \(1,4\) and \(1,2\) cannot be broadcast\.$/);
    expectMlxError(() => mx.putAlongAxis(a, mx.array([0, 1]), 1, 1), /^\[put_along_axis\] Indices of dimension 1 does not match array of dimension 2\.$/);
    expectMlxError(() => mx.eval(mx.takeAlongAxis(a, mx.array([[4]]), 1)), /^\[take_along_axis\] Index 4 is out of bounds for axis 1 with size 4\.$/);
    expectMlxError(() => mx.eval(mx.putAlongAxis(a, mx.array([[-5]]), 0, 1)), /^\[put_along_axis\] Index -5 is out of bounds for axis 1 with size 4\.$/);
  });

  test("slice and sliceUpdate with dynamic starts", () => {
    const start = mx.array([1]);
    expect(mx.slice(a, start, [0], [2, 4]).tolist()).toEqual([[4, 5, 6, 7], [8, 9, 10, 11]]);
    expect(mx.slice(a, [1, 2], [0, 1], [2, 2]).tolist()).toEqual([[6, 7], [10, 11]]);
    expect(mx.slice(a, mx.array([-1]), [0], [1, 4]).tolist()).toEqual([[8, 9, 10, 11]]);
    expectMlxError(() => mx.eval(mx.slice(a, mx.array([2]), [0], [2, 4])), /^\[slice\] Index 2 with slice size 2 is out of bounds for axis 0 with size 3\.$/);
    expectMlxError(() => mx.slice(a, start, [0], [5, 4]), /^\[slice\] Invalid slice size \(5,4\) for array with shape \(3,4\)\.$/);
    expectMlxError(() => mx.slice(a, start, [0], [2]), /^\[slice\] Invalid slice size for array with 2 dimensions\.$/);
    expectMlxError(() => mx.slice(a, mx.array([1], mx.float32), [0], [2, 4]), /^\[slice\] Start indices must be integers, got type float32\.$/);
    expectMlxError(() => mx.slice(a, mx.array([1, 2]), [0], [2, 4]), /^\[slice\] Got 2 start indices for 1 axes\.$/);
    expect(mx.sliceUpdate(a, mx.zeros([2, 2], mx.int32), mx.array([1, 1]), [0, 1]).tolist()).toEqual([[0, 1, 2, 3], [4, 0, 0, 7], [8, 0, 0, 11]]);
    expect(mx.sliceUpdate(mx.zeros([4]), 1, [2], [0]).tolist()).toEqual([0, 0, 1, 0]);
    expectMlxError(() => mx.eval(mx.sliceUpdate(a, mx.zeros([2, 2], mx.int32), mx.array([2, 3]), [0, 1])), /^\[slice_update\] Index 2 with slice size 2 is out of bounds for axis 0 with size 3\.$/);
    expectMlxError(() => mx.sliceUpdate(a, mx.zeros([4, 2], mx.int32), mx.array([0, 0]), [0, 1]), /^\[slice_update\] Update of shape \(4,2\) does not fit in the array of shape \(3,4\)\.$/);
  });

  test("gather and scatter (MLX's C++ ops) with their variants", () => {
    const g = mx.gather(a, [mx.array([2, 0])], [0], [1, 2]);
    expect(g.shape).toEqual([2, 1, 2]);
    expect(g.tolist()).toEqual([[[8, 9]], [[0, 1]]]);
    const z = mx.zeros([4], mx.int32);
    const idx = mx.array([1, 1, 3]);
    const upd = mx.array([[2], [3], [4]], mx.int32);
    expect(mx.scatter(z, idx, upd, 0).tolist()).toEqual([0, 3, 0, 4]);
    expect(mx.scatterAdd(z, idx, upd, 0).tolist()).toEqual([0, 5, 0, 4]);
    expect(mx.scatterProd(mx.ones([4], mx.int32), idx, upd, 0).tolist()).toEqual([1, 6, 1, 4]);
    expect(mx.scatterMax(z, idx, upd, 0).tolist()).toEqual([0, 3, 0, 4]);
    expect(mx.scatterMin(z, idx, upd, 0).tolist()).toEqual([0, 0, 0, 0]);
    expectMlxError(() => mx.gather(a, [mx.array([0])], [0, 1], [1, 1]), /^\[gather\] Must have as many indices as axes \(got 1 and 2\)\.$/);
    expectMlxError(() => mx.gather(a, [mx.array([0])], [0], [1, 5]), /^\[gather\] Slice size 5 is out of range for axis 1 of size 4\.$/);
    expectMlxError(() => mx.scatter(z, idx, mx.array([1, 2, 3]), 0), /^\[scatter\] Updates of shape \(3\) need 2 dimensions/);
  });

  test("diagonal, diag and trace", () => {
    expect(mx.diagonal(a, 1).tolist()).toEqual([1, 6, 11]);
    expect(a.diagonal(-1).tolist()).toEqual([4, 9]);
    expect(mx.diagonal(a, 10).shape).toEqual([0]);
    expect(mx.diagonal(mx.arange(24).reshape([2, 3, 4]), 0, 2, 0).shape).toEqual([3, 2]);
    expect(mx.diag(mx.array([1, 2]), 1).tolist()).toEqual([[0, 1, 0], [0, 0, 2], [0, 0, 0]]);
    expect(mx.array([1, 2]).diag(-1).tolist()).toEqual([[0, 0, 0], [1, 0, 0], [0, 2, 0]]);
    expect(mx.trace(a, 1).item()).toBe(18);
    expect(mx.trace(a.astype(mx.int8)).dtype).toBe(mx.int32);
    expect(mx.trace(a, 0, 0, 1, mx.float32).dtype).toBe(mx.float32);
    expectMlxError(() => mx.diagonal(a, 0, 0, 0), /^\[diagonal\] axis1 and axis2 cannot be the same axis$/);
    expectMlxError(() => mx.diagonal(mx.array([1, 2])), /^\[diagonal\] Array must have at least two dimensions, but got 1 dimensions\.$/);
    expectMlxError(() => mx.diag(mx.zeros([2, 2, 2])), /^\[diag\] array must be 1-D or 2-D, got array with 3 dimensions\.$/);
    expectMlxError(() => mx.trace(mx.array([1, 2])), /^\[trace\] Array must have at least two dimensions, but got 1 dimensions\.$/);
    // The diagonal is a view.
    mx.eval(a);
    Bun.gc(true); // earlier tests' garbage must not be freed while we measure
    const before = mx.getActiveMemory();
    const d = mx.diagonal(a);
    mx.eval(d);
    expect(mx.getActiveMemory()).toBe(before);
  });

  test("maskedScatter", () => {
    expect(mx.maskedScatter(mx.zeros([3]), mx.array([true, false, true]), mx.array([1, 2])).tolist()).toEqual([1, 0, 2]);
    expectMlxError(() => mx.maskedScatter(mx.zeros([3]), mx.array([1, 0, 1]), mx.array([1, 2])), /^\[masked_scatter\] The mask must be boolean, got int32\.$/);
  });
});

test("iterating an array walks its first axis (views)", () => {
  const a = mx.arange(6).reshape([3, 2]);
  expect([...a].map((r) => r.tolist())).toEqual([[0, 1], [2, 3], [4, 5]]);
  let n = 0;
  for (const x of mx.arange(4)) n += x.item() as number;
  expect(n).toBe(6);
  expectMlxError(() => [...mx.array(1)], /^iter\(\) 0-dimensional array\.$/);
});
