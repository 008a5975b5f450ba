// MLX's own indexing tests, ported: the cases of python/tests/test_array.py (indexing, setitem,
// .at, slices with negative steps, list and boolean-mask indices) and python/tests/test_ops.py
// (take, take_along_axis, put_along_axis, slice / slice_update, diagonal, diag, trace,
// masked scatter), each run through real MLX by test/fixtures/indexing/gen_mlx_cases.py (which
// lists what was skipped and why). Every case here is replayed through mlx-bun and compared bit
// for bit (dtype, shape and bytes) with MLX's result, or, where MLX raises, must raise too.
// `a[idx] = v` is `a.at(idx).set(v)`; a chain of in-place updates is one case per step. Floats
// are compared exactly too (the .at add / multiply / divide results match MLX bit for bit).
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { diffArray, fromRecord, loadFixture, thrown, type ArrayRecord } from "./fixtures/creation/helpers.ts";

type Op = ["T", number[]] | ["ix", Item[]] | ["reshape", number[]];
type Spec = ({ rec: ArrayRecord } | { fill: number | boolean; dtype: mx.DtypeName; shape: number[] } | { arange: 1; dtype: mx.DtypeName; shape: number[] }) & {
  ops?: Op[];
};
type Item = { i: number } | { s: [number | null, number | null, number | null] } | { n: 1 } | { e: 1 } | { a: Spec } | { l: unknown[] };
type Value = Spec | { scalar: number | boolean };
type UpdateOp = "set" | "add" | "subtract" | "multiply" | "divide" | "maximum" | "minimum";

interface BaseCase {
  id: number;
  src: string;
  expr: string;
  numpy: "same" | "refuses" | "n/a";
  result?: ArrayRecord | ArrayRecord[];
  error?: string;
}
interface ReadCase extends BaseCase {
  kind: "read";
  a: Spec;
  index: Item[];
}
interface UpdateCase extends BaseCase {
  kind: "update";
  a: Spec;
  index: Item[];
  op: UpdateOp;
  v: Value;
}
interface OpCase extends BaseCase {
  kind: "op";
  op: string;
  args: Record<string, unknown>;
}
interface IterCase extends BaseCase {
  kind: "iter";
  a: Spec;
}
type Case = ReadCase | UpdateCase | OpCase | IterCase;

const fx = loadFixture<{ mlx_version: string; counts: Record<string, number>; cases: Case[] }>("../indexing/mlx_cases.json");

// Cases where mlx-bun differs from MLX (to fix in src/ or engine/), by their MLX test and
// expression, with what goes wrong. They are left out of the suites above and listed as
// test.todo below (`bun test --todo` runs them).
const KNOWN_BUGS = new Map<string, string>([
  // None left: the mask and slice-bound cases this port found are fixed (see indexing.test.ts).
]);

// Deliberate differences: the case, and the error mlx-bun gives instead of MLX's result.
const DIFFERENCES = new Map<string, RegExp>([
  // Float indices are refused when the op is built, even for empty arrays; MLX refuses them
  // only when a CPU kernel runs on a non-empty array. (Empty integer indices work: ported.)
  ["test_ops.py::test_put_along_axis | a = mx.array([], mx.float32); mx.put_along_axis(a, a, a, axis=None)", /^\[put_along_axis\] Got indices with invalid dtype\. Indices must be integral\.$/],
]);

const keyOf = (c: Case) => `${c.src} | ${c.expr}`;

function build(s: Spec): mx.Array {
  let a: mx.Array;
  if ("rec" in s) a = fromRecord(s.rec);
  else if ("fill" in s) a = mx.full(s.shape, s.fill, s.dtype);
  else a = mx.arange(s.shape.reduce((x, y) => x * y, 1), { dtype: s.dtype }).reshape(s.shape);
  for (const op of s.ops ?? []) {
    if (op[0] === "T") a = a.transpose(op[1]);
    else if (op[0] === "ix") a = a.index(...toIndex(op[1]));
    else a = a.reshape(op[1]);
  }
  return a;
}

function toIndex(items: Item[]): mx.Index[] {
  return items.map((it): mx.Index => {
    if ("i" in it) return it.i;
    if ("s" in it) return mx.sl(...it.s);
    if ("n" in it) return mx.newaxis;
    if ("e" in it) return "...";
    if ("a" in it) return build(it.a);
    return it.l;
  });
}

function value(v: Value): mx.Array | number | boolean {
  return "scalar" in v ? v.scalar : build(v);
}

function spec(x: unknown): Spec {
  return x as Spec;
}

function runOp(c: OpCase): mx.Array {
  const g = c.args;
  const a = build(spec(g.a));
  const num = (k: string, d: number) => (g[k] === undefined ? d : (g[k] as number));
  const axisOrNull = g.axis === undefined ? null : (g.axis as number | null);
  switch (c.op) {
    case "take": {
      const idx = typeof g.indices === "number" ? g.indices : build(spec(g.indices));
      return g.axis === undefined ? mx.take(a, idx) : mx.take(a, idx, g.axis as number);
    }
    case "take_along_axis":
      return mx.takeAlongAxis(a, build(spec(g.indices)), axisOrNull);
    case "put_along_axis":
      return mx.putAlongAxis(a, build(spec(g.indices)), build(spec(g.values)), axisOrNull);
    case "slice":
      return mx.slice(a, build(spec(g.start)), g.axes as number[], g.slice_size as number[]);
    case "slice_update":
      return mx.sliceUpdate(a, build(spec(g.update)), build(spec(g.start)), g.axes as number[]);
    case "diagonal":
      return mx.diagonal(a, num("offset", 0), num("axis1", 0), num("axis2", 1));
    case "diagonal_method":
      return a.diagonal(num("offset", 0), num("axis1", 0), num("axis2", 1));
    case "diag":
      return mx.diag(a, num("k", 0));
    case "trace":
      return mx.trace(a, num("offset", 0), num("axis1", 0), num("axis2", 1), (g.dtype as mx.DtypeName | undefined) ?? null);
  }
  throw new Error(`unknown op ${c.op}`);
}

function run(c: Case): mx.Array | mx.Array[] {
  switch (c.kind) {
    case "read":
      return build(c.a).index(...toIndex(c.index));
    case "update":
      return build(c.a).at(...toIndex(c.index))[c.op](value(c.v));
    case "op":
      return runOp(c);
    case "iter":
      return [...build(c.a)];
  }
}

/** What differs from MLX (null when nothing does). */
function check(c: Case): string | null {
  return mx.tidy(() => {
    if (c.error !== undefined) {
      const e = thrown(() => {
        const r = run(c);
        if (Array.isArray(r)) mx.eval(...r);
        else mx.eval(r);
      });
      if (e === null) return `MLX raises "${c.error}", mlx-bun does not`;
      if (!(e instanceof mx.MlxError)) return `threw a non-MlxError: ${String(e)}`;
      return null;
    }
    let r: mx.Array | mx.Array[];
    try {
      r = run(c);
      if (Array.isArray(r)) mx.eval(...r);
      else mx.eval(r);
    } catch (e) {
      return `threw ${String(e)}`;
    }
    if (Array.isArray(r)) {
      const want = c.result as ArrayRecord[];
      if (r.length !== want.length) return `${r.length} rows, expected ${want.length}`;
      const diffs = r.map((x, i) => diffArray(x, want[i]!)).filter((d) => d !== null);
      return diffs.length === 0 ? null : diffs.join("; ");
    }
    return diffArray(r, c.result as ArrayRecord);
  });
}

const bySrc = new Map<string, Case[]>();
for (const c of fx.cases) bySrc.set(c.src, [...(bySrc.get(c.src) ?? []), c]);

test("the fixture holds every ported case", () => {
  expect(fx.mlx_version).toBe("0.32.4");
  expect(fx.cases.length).toBe(Object.values(fx.counts).reduce((x, y) => x + y, 0));
  expect(fx.cases.length).toBeGreaterThan(500);
  // Each listed bug names exactly one case.
  for (const key of [...KNOWN_BUGS.keys(), ...DIFFERENCES.keys()]) expect({ key, n: fx.cases.filter((c) => keyOf(c) === key).length }).toEqual({ key, n: 1 });
});

for (const file of ["test_array.py", "test_ops.py"]) {
  describe(`MLX's ${file}`, () => {
    for (const [src, cases] of bySrc) {
      if (!src.startsWith(file)) continue;
      const name = src.slice(file.length + 2);
      test(`${name}: ${cases.length} cases`, () => {
        const failures: string[] = [];
        for (const c of cases) {
          if (KNOWN_BUGS.has(keyOf(c))) continue;
          const diff = DIFFERENCES.get(keyOf(c));
          if (diff !== undefined) {
            const e = thrown(() => {
              const r = run(c);
              mx.eval(...(Array.isArray(r) ? r : [r]));
            });
            if (e === null || !diff.test(e.message)) failures.push(`#${c.id} ${c.expr}: expected our documented error, got ${e?.message ?? "no error"}`);
            continue;
          }
          const d = check(c);
          if (d !== null) failures.push(`#${c.id} ${c.expr}: ${d}`);
        }
        expect(failures).toEqual([]);
      });
    }
  });
}

describe("known differences from MLX (bugs)", () => {
  for (const [key, reason] of KNOWN_BUGS) {
    const c = fx.cases.find((x) => keyOf(x) === key);
    test.todo(`${key}: ${reason}`, () => {
      expect(c).toBeDefined();
      expect(check(c!)).toBeNull();
    });
  }
});
