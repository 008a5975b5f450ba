// The 14 dtypes: metadata, name resolution, and MLX's promotion table.
//
// The reference is test/fixtures/dtype/promotion.json, produced by gen_dtype.py from real MLX
// (mx.result_type, cross-checked against the dtype of an addition); these tests never need Python.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { checkHandle, DTYPE, lib } from "../ffi/lib";
import { toDtype, type DtypeCategory, type DtypeLike } from "../src/dtype";
import * as mx from "../src/index.ts";

interface DtypeMeta {
  name: string;
  str: string;
  size: number;
  category: DtypeCategory;
  floating: boolean;
  integer: boolean;
  complex: boolean;
}

interface Fixture {
  mlx_version: string;
  dtypes: DtypeMeta[];
  promotion: string[][];
}

const fixture = JSON.parse(
  readFileSync(new URL("./fixtures/dtype/promotion.json", import.meta.url), "utf8"),
) as Fixture;

const byName = (name: string): mx.Dtype => {
  const d = mx.dtypes.find((x) => x.name === name);
  if (d === undefined) throw new Error(`no dtype ${name}`);
  return d;
};

/** What `fn` throws (it must throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

function expectMlxError(fn: () => unknown, op: string, fragment?: string): void {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(mx.MlxError);
  const err = e as mx.MlxError;
  expect(err.message.startsWith(`[${op}] `)).toBe(true);
  if (fragment !== undefined) expect(err.message).toContain(fragment);
  expect(err.codeName).toBe("invalid_argument");
}

describe("dtype metadata (reference: MLX)", () => {
  test("14 dtypes, in MLX's enum order", () => {
    expect(fixture.dtypes.length).toBe(14);
    expect(mx.dtypes.map((d): string => d.name)).toEqual(fixture.dtypes.map((m) => m.name));
    mx.dtypes.forEach((d, i) => {
      expect(d.value).toBe(i);
      expect<number>(DTYPE[d.name]).toBe(i); // the engine's enum, from the generated symbol table
    });
  });

  for (const [i, m] of fixture.dtypes.entries()) {
    test(`${m.name}: name, size, category, str`, () => {
      const d = mx.dtypes[i]!;
      expect(d).toBeInstanceOf(mx.Dtype);
      expect<string>(d.name).toBe(m.name);
      expect(d.size).toBe(m.size);
      expect(d.category).toBe(m.category);
      expect(d.isFloating).toBe(m.floating);
      expect(d.isInteger).toBe(m.integer);
      expect(d.isComplex).toBe(m.complex);
      expect(String(d)).toBe(m.str);
      // The named export is the same instance.
      expect((mx as unknown as Record<string, unknown>)[m.name]).toBe(d);
    });
  }

  test("mx.bool_ is mx.bool", () => {
    expect(mx.bool_).toBe(mx.bool);
    expect(mx.bool_.name).toBe("bool");
  });

  test("the engine agrees: arrays of each dtype report it, with its itemsize", () => {
    for (const d of mx.dtypes) {
      using a = mx.zeros([3], d);
      expect(a.dtype).toBe(d);
      expect(a.itemsize).toBe(d.size);
      expect(a.nbytes).toBe(3 * d.size);
      using b = mx.ones([2]).astype(d);
      expect(b.dtype).toBe(d);
    }
  });
});

describe("toDtype: names and instances", () => {
  test("every name and every instance resolves to the instance", () => {
    for (const d of mx.dtypes) {
      expect(toDtype(d)).toBe(d);
      expect(toDtype(d.name)).toBe(d);
    }
  });

  test('"bool_" is an alias of bool', () => {
    expect(toDtype("bool_")).toBe(mx.bool);
    using a = mx.zeros([2], "bool_");
    expect(a.dtype).toBe(mx.bool);
    using b = mx.array([1, 0], { dtype: "bool_" });
    expect(b.dtype).toBe(mx.bool);
    expect(b.tolist()).toEqual([true, false]);
  });

  test("names work wherever a dtype is taken", () => {
    for (const d of mx.dtypes) {
      using a = mx.zeros([2], d.name);
      expect(a.dtype).toBe(d);
      using b = mx.full([2], 1, { dtype: d.name });
      expect(b.dtype).toBe(d);
      using c = mx.array([1, 2], { dtype: d.name });
      expect(c.dtype).toBe(d);
      using e = a.astype(d.name);
      expect(e.dtype).toBe(d);
    }
  });

  const bad: unknown[] = ["float", "int", "", "Float32", "FLOAT32", "float32 ", " int32", "f32", "mlx.core.float32", "bool__", "complex128", "uint", "constructor", "__proto__", "toString"];

  test("unknown names throw an MlxError naming the op, from toDtype itself", () => {
    for (const s of bad) expectMlxError(() => toDtype(s as DtypeLike), "dtype", "Unknown dtype");
    expectMlxError(() => toDtype("nope" as unknown as DtypeLike, "myop"), "myop");
  });

  test("unknown names throw through mx.zeros, full, ones, array, astype and toTypedArray", () => {
    using a = mx.array([1, 2]);
    for (const s of bad) {
      const d = s as DtypeLike;
      expectMlxError(() => mx.zeros([2], d), "zeros", JSON.stringify(s));
      expectMlxError(() => mx.ones([2], d), "ones");
      expectMlxError(() => mx.full([2], 1, { dtype: d }), "full");
      expectMlxError(() => mx.array([1, 2], { dtype: d }), "array");
      expectMlxError(() => mx.array(new Float32Array(2), { dtype: d }), "array");
      expectMlxError(() => a.astype(d), "astype");
      expectMlxError(() => a.toTypedArray({ dtype: d }), "toTypedArray");
    }
  });

  test("values that are not names or dtypes throw too", () => {
    using a = mx.array([1, 2]);
    // A look-alike object is not a dtype; neither is a number, even a valid enum value.
    const lookalike = { name: "float32", size: 4, value: 10 } as unknown as DtypeLike;
    for (const v of [lookalike, 10 as unknown as DtypeLike, null as unknown as DtypeLike]) {
      expectMlxError(() => a.astype(v), "astype", "Unknown dtype");
      expectMlxError(() => mx.zeros([2], { dtype: v }), "zeros", "Unknown dtype");
    }
    expectMlxError(() => a.astype(undefined as unknown as DtypeLike), "astype", "Unknown dtype");
  });

  test("the engine rejects dtype enum values past complex64, naming the op", () => {
    using a = mx.array([1, 2]);
    for (const v of [14, 255, 4096]) {
      expectMlxError(() => checkHandle(lib.mlxb_astype(a.handle(), v, -1)), "astype", `Unknown dtype ${v}`);
      expectMlxError(
        () => checkHandle(lib.mlxb_array_from_data(new Float32Array(2), v, new Int32Array([2]), 1, -1)),
        "array",
        `Unknown dtype ${v}`,
      );
    }
  });
});

describe(`promotion: the full 14 x 14 table (reference: MLX ${fixture.mlx_version})`, () => {
  test("the fixture is 14 x 14 and uses only dtype names", () => {
    expect(fixture.promotion.length).toBe(14);
    for (const row of fixture.promotion) {
      expect(row.length).toBe(14);
      for (const name of row) byName(name);
    }
  });

  test("mx.promoteTypes matches MLX for all 196 pairs", () => {
    const wrong: string[] = [];
    mx.dtypes.forEach((a, i) => {
      mx.dtypes.forEach((b, j) => {
        const want = fixture.promotion[i]![j]!;
        const got = mx.promoteTypes(a, b);
        if (got !== byName(want)) wrong.push(`${a.name} + ${b.name}: got ${got.name}, want ${want}`);
      });
    });
    expect(wrong).toEqual([]);
  });

  test("named surprises of MLX's table", () => {
    expect(mx.promoteTypes(mx.uint64, mx.int8)).toBe(mx.float32);
    expect(mx.promoteTypes(mx.int64, mx.uint64)).toBe(mx.float32);
    expect(mx.promoteTypes(mx.uint32, mx.int32)).toBe(mx.int64);
    expect(mx.promoteTypes(mx.float16, mx.bfloat16)).toBe(mx.float32);
    expect(mx.promoteTypes(mx.int64, mx.float16)).toBe(mx.float16);
    expect(mx.promoteTypes(mx.float64, mx.complex64)).toBe(mx.complex64);
    expect(mx.promoteTypes(mx.bool, mx.bool)).toBe(mx.bool);
  });

  test("symmetric and idempotent", () => {
    for (const a of mx.dtypes) {
      expect(mx.promoteTypes(a, a)).toBe(a);
      for (const b of mx.dtypes) expect(mx.promoteTypes(a, b)).toBe(mx.promoteTypes(b, a));
    }
  });

  test("a list of arrays stacks to the promoted dtype, for every pair", () => {
    const wrong: string[] = [];
    mx.dtypes.forEach((a, i) => {
      mx.dtypes.forEach((b, j) => {
        using x = mx.zeros([2], a);
        using y = mx.ones([2], b);
        using s = mx.array([x, y]);
        const want = fixture.promotion[i]![j]!;
        if (s.dtype.name !== want || s.shape.join(",") !== "2,2") wrong.push(`[${a.name}, ${b.name}]: ${s.dtype.name} ${s.shape}, want ${want}`);
      });
    });
    expect(wrong).toEqual([]);
  });
});
