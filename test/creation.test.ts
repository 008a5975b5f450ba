// Creation ops against real MLX: zeros, ones, full, zerosLike, onesLike, fullLike, arange,
// linspace, eye, identity, tri, tril, triu. Every value is compared bit for bit (and dtype and
// shape) with test/fixtures/creation/creation.json, made by gen_creation.py from MLX 0.32;
// these tests never run Python.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { decode, diffArray, hexOf, loadFixture, thrown, type ArrayRecord } from "./fixtures/creation/helpers.ts";

interface Case {
  name: string;
  op: string;
  args: unknown[];
  dtype?: mx.DtypeName;
  /** "cxx": MLX's Python binding ignores this dtype; the reference is MLX's C++ full(). */
  semantics?: "cxx";
  result: ArrayRecord;
}

interface ErrorCase {
  name: string;
  op: string;
  args: unknown[];
  dtype?: mx.DtypeName;
  /** MLX's own message, or null when MLX has none (a binding type error, or no error at all). */
  mlx_message: string | null;
  mlx_raised: string;
}

const fixture = loadFixture<{ mlx_version: string; cases: Case[]; errors: ErrorCase[] }>("creation.json");

type Num = number;
const num = (v: unknown): Num => v as Num;
const optNum = (v: unknown): Num | undefined => (v === undefined ? undefined : (v as Num));

/** Call the mlx-bun op a case names, with its decoded arguments and dtype. */
function run(op: string, rawArgs: unknown[], dtype: mx.DtypeName | undefined): mx.Array {
  const args = rawArgs.map(decode);
  switch (op) {
    case "zeros":
      return mx.zeros(args[0] as number | number[], dtype);
    case "ones":
      return mx.ones(args[0] as number | number[], dtype);
    case "full":
      return mx.full(args[0] as number | number[], args[1] as number | boolean | bigint | mx.Array, dtype);
    case "zeros_like":
      return mx.zerosLike(args[0] as mx.Array);
    case "ones_like":
      return mx.onesLike(args[0] as mx.Array);
    case "full_like":
      return mx.fullLike(args[0] as mx.Array, args[1] as number | boolean | bigint | mx.Array, dtype);
    case "arange": {
      const f = mx.arange as unknown as (...a: unknown[]) => mx.Array;
      return dtype === undefined ? f(...args) : f(...args, dtype);
    }
    case "linspace":
      return mx.linspace(num(args[0]), num(args[1]), optNum(args[2]), dtype);
    case "eye":
      return mx.eye(num(args[0]), args[1] as number | null | undefined, optNum(args[2]), dtype);
    case "identity":
      return mx.identity(num(args[0]), dtype);
    case "tri":
      return mx.tri(num(args[0]), args[1] as number | null | undefined, optNum(args[2]), dtype);
    case "tril":
      return mx.tril(args[0] as mx.Array, optNum(args[1]));
    case "triu":
      return mx.triu(args[0] as mx.Array, optNum(args[1]));
  }
  throw new Error(`unknown op ${op}`);
}

const ops = [...new Set(fixture.cases.map((c) => c.op))];

test("the fixture comes from MLX 0.32", () => {
  expect(fixture.mlx_version).toStartWith("0.32");
});

for (const op of ops) {
  describe(`${op} matches MLX bit for bit`, () => {
    for (const c of fixture.cases.filter((x) => x.op === op)) {
      test(c.name, () => {
        mx.tidy(() => {
          const out = run(c.op, c.args, c.dtype);
          expect(diffArray(out, c.result)).toBeNull();
        });
      });
    }
  });
}

describe("creation errors", () => {
  // Where MLX has no message of its own (its Python binding fails on the argument type, or
  // MLX accepts a shape whose size overflows and crashes on reading it), mlx-bun's message.
  const ours: Record<string, string> = {
    "zeros non-integer dim": "[full] Shape dimensions must be integers, got 2.5.",
    "zeros dim 2**31": "[full] Dimension 2147483648 is larger than the maximum of 2147483647.",
    "ones int shape 2**31": "[full] Dimension 2147483648 is larger than the maximum of 2147483647.",
    "zeros overflowing size": "[full] Shape (1073741824,1073741824,1073741824) is too large: its size overflows.",
  };
  for (const c of fixture.errors) {
    test(`${c.name} (MLX: ${c.mlx_raised})`, () => {
      const err = thrown(() => mx.tidy(() => run(c.op, c.args, c.dtype)));
      expect(err).toBeInstanceOf(mx.MlxError);
      if (c.mlx_message !== null) {
        // MLX's message; mlx-bun puts "[op] " in front of the few MLX messages that lack it.
        const want = c.mlx_message.startsWith("[") ? c.mlx_message : `[${c.op}] ${c.mlx_message}`;
        expect(err?.message).toBe(want);
      } else {
        expect(err?.message).toBe(ours[c.name]!);
      }
    });
  }

  test("the op name is in brackets in every message", () => {
    for (const c of fixture.errors) {
      const err = thrown(() => mx.tidy(() => run(c.op, c.args, c.dtype)));
      expect(err?.message ?? "").toMatch(/^\[(arange|linspace|eye|tril|triu|full|broadcast_shapes)\] /);
    }
  });

  test("unknown dtype strings name the op", () => {
    const bad = "float128" as unknown as mx.DtypeName;
    const cases: [string, () => unknown][] = [
      ["zeros", () => mx.zeros([2], bad)],
      ["ones", () => mx.ones([2], { dtype: bad })],
      ["full", () => mx.full([2], 1, bad)],
      ["full", () => mx.fullLike(mx.array([1]), 1, bad)],
      ["arange", () => mx.arange(5, bad)],
      ["linspace", () => mx.linspace(0, 1, 5, bad)],
      ["eye", () => mx.eye(2, 2, 0, bad)],
      ["eye", () => mx.identity(2, bad)],
      ["tri", () => mx.tri(2, 2, 0, bad)],
      ["astype", () => mx.array([1]).astype(bad)],
      ["array", () => mx.array([1], { dtype: bad })],
    ];
    for (const [op, fn] of cases) {
      const err = thrown(() => mx.tidy(fn));
      expect(err).toBeInstanceOf(mx.MlxError);
      expect(err?.message).toStartWith(`[${op}] Unknown dtype "float128"`);
    }
    // "bool_" is MLX's Python spelling and is accepted; "int" and "float" are not dtype names.
    for (const name of ["int", "float", "Float32", "", "f32"]) {
      const err = thrown(() => mx.zeros([1], name as unknown as mx.DtypeName));
      expect(err).toBeInstanceOf(mx.MlxError);
      expect(err?.message).toStartWith("[zeros] Unknown dtype");
    }
    mx.tidy(() => expect(mx.zeros([1], "bool_").dtype).toBe(mx.bool));
  });

  test("non-integer sizes and diagonals", () => {
    const cases: [string, () => unknown][] = [
      ["[linspace] num must be an integer, got 2.5.", () => mx.linspace(0, 1, 2.5)],
      ["[eye] N must be an integer, got 1.5.", () => mx.eye(1.5)],
      ["[eye] M must be an integer, got NaN.", () => mx.eye(2, NaN)],
      ["[eye] k must be an integer, got 0.5.", () => mx.eye(2, 2, 0.5)],
      ["[tri] N must be an integer, got Infinity.", () => mx.tri(Infinity)],
      ["[tril] k must be an integer, got 0.5.", () => mx.tril(mx.ones([2, 2]), 0.5)],
      ["[triu] k must be an integer, got -0.5.", () => mx.triu(mx.ones([2, 2]), -0.5)],
      ["[eye] N 4294967296 is outside the int32 range.", () => mx.eye(2 ** 32)],
      ["[full] Negative dimensions not allowed.", () => mx.zeros(-1)],
      ["[full] Shape dimensions must be integers, got NaN.", () => mx.ones([NaN])],
    ];
    for (const [msg, fn] of cases) {
      const err = thrown(() => mx.tidy(fn));
      expect(err).toBeInstanceOf(mx.MlxError);
      expect(err?.message).toBe(msg);
    }
  });

  test("arange argument forms", () => {
    const f = mx.arange as unknown as (...a: unknown[]) => mx.Array;
    let err = thrown(() => f());
    expect(err).toBeInstanceOf(mx.MlxError);
    expect(err?.message).toBe("[arange] Expected arange(stop), arange(start, stop) or arange(start, stop, step).");
    err = thrown(() => f(1, 2, 3, 4));
    expect(err?.message).toBe("[arange] Expected arange(stop), arange(start, stop) or arange(start, stop, step).");
    err = thrown(() => f(1, "int32", 3));
    expect(err?.message).toBe("[arange] Numbers must come before the dtype or options.");
  });

  test("a disposed argument", () => {
    const a = mx.ones([2, 2]);
    a.dispose();
    const used = "The array was used after it was disposed.";
    const cases: [string, () => unknown][] = [
      [`[tril] ${used}`, () => mx.tril(a)],
      [`[triu] ${used}`, () => mx.triu(a)],
      [`[full] ${used}`, () => mx.full([2], a)],
      // The _like ops read the shape first.
      [`[shape] ${used}`, () => mx.zerosLike(a)],
      [`[shape] ${used}`, () => mx.onesLike(a)],
      [`[shape] ${used}`, () => mx.fullLike(a, 1)],
    ];
    for (const [msg, fn] of cases) {
      const err = thrown(fn);
      expect(err).toBeInstanceOf(mx.MlxError);
      expect(err?.message).toBe(msg);
    }
  });
});

describe("argument forms", () => {
  test("dtype as a Dtype, a name, or an options object", () => {
    mx.tidy(() => {
      for (const make of [
        () => mx.zeros([2], mx.int8),
        () => mx.zeros([2], "int8"),
        () => mx.zeros([2], { dtype: mx.int8 }),
        () => mx.zeros([2], { dtype: "int8", stream: mx.cpu }),
      ]) {
        const a = make();
        expect(a.dtype).toBe(mx.int8);
        expect(a.tolist()).toEqual([0, 0]);
      }
      expect(mx.arange(0, 4, 2, { dtype: mx.float16 }).tolist()).toEqual([0, 2]);
      expect(mx.arange(3, { dtype: "uint8" }).dtype).toBe(mx.uint8);
      expect(mx.linspace(0, 1, 3, { dtype: mx.float64 }).dtype).toBe(mx.float64);
      expect(mx.eye(2, null, 0, { dtype: "int32" }).tolist()).toEqual([[1, 0], [0, 1]]);
      expect(mx.tri(2, undefined, 0, mx.bool).tolist()).toEqual([[true, false], [true, true]]);
      expect(mx.identity(1, { dtype: mx.complex64 }).tolist()).toEqual([[{ re: 1, im: 0 }]]);
      expect(mx.fullLike(mx.array([1, 2]), 7, { dtype: mx.uint16 }).dtype).toBe(mx.uint16);
    });
  });

  test("zerosLike / onesLike / fullLike keep the input's dtype for every dtype", () => {
    mx.tidy(() => {
      for (const d of mx.dtypes) {
        const a = mx.zeros([2, 1], d);
        expect(mx.zerosLike(a).dtype).toBe(d);
        expect(mx.onesLike(a).dtype).toBe(d);
        expect(mx.fullLike(a, 1).dtype).toBe(d);
        expect([...mx.onesLike(a).shape]).toEqual([2, 1]);
      }
    });
  });

  test("full with bigint values gives int64 (or the dtype asked for)", () => {
    mx.tidy(() => {
      const a = mx.full([2], 5n);
      expect(a.dtype).toBe(mx.int64);
      expect(a.tolist()).toEqual([5n, 5n]);
      const b = mx.full([1, 2], 2n ** 63n - 1n);
      expect(b.tolist()).toEqual([[2n ** 63n - 1n, 2n ** 63n - 1n]]);
      const c = mx.full([2], -(2n ** 63n));
      expect(c.tolist()).toEqual([-(2n ** 63n), -(2n ** 63n)]);
      const d = mx.full([2], 2n ** 40n + 1n, mx.float64);
      expect(d.tolist()).toEqual([2 ** 40 + 1, 2 ** 40 + 1]);
      const e = mx.full([2], 300n, mx.uint8);
      expect(e.tolist()).toEqual([44, 44]);
      const u = mx.full([1], 2n ** 64n - 1n, mx.uint64);
      expect(u.tolist()).toEqual([2n ** 64n - 1n]);
    });
  });

  test("full with an untyped -0 is the whole number 0 (JS cannot tell -0.0 from -0)", () => {
    mx.tidy(() => {
      const a = mx.full([2], -0);
      expect(a.dtype).toBe(mx.int32);
      expect(a.tolist()).toEqual([0, 0]);
      const b = mx.full([1], -0, mx.float32);
      expect(Object.is(b.item(), -0)).toBe(true);
    });
  });

  test("a full() of a broadcast array is lazy and its source stays usable", () => {
    mx.tidy(() => {
      const row = mx.array([1, 2, 3]);
      const f = mx.full([2, 3], row);
      row.dispose();
      expect(f.tolist()).toEqual([[1, 2, 3], [1, 2, 3]]);
    });
  });

  test("results are equal however often they are read", () => {
    mx.tidy(() => {
      const a = mx.arange(0, 1, 0.1, mx.float16);
      const first = hexOf(a);
      mx.eval(a);
      expect(hexOf(a)).toBe(first);
      expect(a.evaluated).toBe(true);
    });
  });

  test("tril and triu leave their input unchanged", () => {
    mx.tidy(() => {
      const a = mx.full([3, 3], 2.5);
      mx.eval(a);
      const lo = mx.tril(a);
      const hi = mx.triu(a, 1);
      expect(lo.tolist()).toEqual([[2.5, 0, 0], [2.5, 2.5, 0], [2.5, 2.5, 2.5]]);
      expect(hi.tolist()).toEqual([[0, 2.5, 2.5], [0, 0, 2.5], [0, 0, 0]]);
      expect(a.tolist()).toEqual([[2.5, 2.5, 2.5], [2.5, 2.5, 2.5], [2.5, 2.5, 2.5]]);
    });
  });

  test("tril of a broadcast (non-contiguous) input", () => {
    mx.tidy(() => {
      const a = mx.full([2, 3, 3], mx.array([1, 2, 3]));
      expect(mx.tril(a, -1).tolist()).toEqual([
        [[0, 0, 0], [1, 0, 0], [1, 2, 0]],
        [[0, 0, 0], [1, 0, 0], [1, 2, 0]],
      ]);
    });
  });
});
