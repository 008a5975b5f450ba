// mx.array(...) against real MLX: dtype inference from JS values, dtype conversions, ragged and
// invalid input, TypedArrays (with shape and copy: false), lists of arrays, and reading values
// back with item() / tolist() for every dtype. References come from
// test/fixtures/creation/array_input.json (gen_creation.py, MLX 0.32) or are computed by hand;
// these tests never run Python.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { decode, decodeList, diffArray, fromHex, fromRecord, hexOf, loadFixture, sameList, show, thrown, type ArrayRecord } from "./fixtures/creation/helpers.ts";

interface InputCase {
  name: string;
  value: unknown;
  dtype?: mx.DtypeName;
  result?: ArrayRecord;
  tolist?: unknown;
  mlx_raised?: string;
}

interface PerDtype {
  dtype: mx.DtypeName;
  result: ArrayRecord;
  tolist: unknown;
  item: unknown;
  specials: { result: ArrayRecord; tolist: unknown } | null;
}

interface StackCase {
  name: string;
  items: unknown[];
  dtype?: mx.DtypeName;
  result?: ArrayRecord;
  mlx_raised?: string;
}

interface Fixture {
  mlx_version: string;
  cases: InputCase[];
  per_dtype: PerDtype[];
  stacks: StackCase[];
  copies: { name: string; source: unknown; dtype: mx.DtypeName; result: ArrayRecord }[];
  typed: { numpy: string; values: unknown; result: ArrayRecord }[];
  typed_float64_kept: { values: unknown; result: ArrayRecord };
}

const fixture = loadFixture<Fixture>("array_input.json");

/** MLX's Python message as mlx-bun words it: "[array] " in front, JS type names for Python's. */
function ourMessage(raised: string): string {
  const msg = raised.replace(/^ValueError: /, "");
  const types: Record<string, string> = { str: "string", NoneType: "null", dict: "object" };
  return `[array] ${msg.replace(/^Invalid type (\w+) received/, (_m, t: string) => `Invalid type ${types[t] ?? t} received`)}`;
}

test("the fixture comes from MLX 0.32", () => {
  expect(fixture.mlx_version).toStartWith("0.32");
});

describe("mx.array from JS values matches MLX", () => {
  for (const c of fixture.cases) {
    test(c.name, () => {
      mx.tidy(() => {
        const value = decode(c.value) as mx.ArrayInput;
        const make = () => (c.dtype === undefined ? mx.array(value) : mx.array(value, { dtype: c.dtype }));
        if (c.result === undefined) {
          const err = thrown(make);
          expect(err).toBeInstanceOf(mx.MlxError);
          expect(err?.message).toBe(ourMessage(c.mlx_raised!));
          return;
        }
        const a = make();
        expect(diffArray(a, c.result)).toBeNull();
        const list = a.tolist();
        const want = decodeList(c.tolist);
        if (!sameList(list, want)) expect(show(list)).toBe(show(want));
      });
    });
  }
});

describe("inference details", () => {
  test("numbers: whole numbers are int32 (int64 past int32), others float32", () => {
    mx.tidy(() => {
      const cases: [number, mx.Dtype][] = [
        [0, mx.int32], [-1, mx.int32], [2 ** 31 - 1, mx.int32], [-(2 ** 31), mx.int32], [2 ** 31, mx.int64],
        [-(2 ** 31) - 1, mx.int64], [2 ** 53, mx.int64], [0.5, mx.float32], [NaN, mx.float32], [Infinity, mx.float32],
      ];
      for (const [v, d] of cases) {
        const a = mx.array(v);
        expect(a.dtype).toBe(d);
        expect([...a.shape]).toEqual([]);
      }
      expect(mx.array(2 ** 53).item()).toBe(2n ** 53n);
      expect(mx.array(-(2 ** 40) - 3).item()).toBe(-(2n ** 40n) - 3n);
    });
  });

  test("whole numbers beyond int64 are refused or kept as floats, never wrapped", () => {
    // JS cannot tell 1e20 from the integer 10**20. MLX gives float32 for 1e20 and raises for
    // 10**20; either is acceptable here, an unrelated int64 value is not.
    for (const v of [1e20, -1e20, 1e300, 2 ** 63, -(2 ** 63) - 4096]) {
      for (const [label, input] of [["scalar", v], ["list", [v]]] as [string, mx.ArrayInput][]) {
        const err = thrown(() => mx.array(input));
        if (err !== null) {
          expect(err).toBeInstanceOf(mx.MlxError);
          continue;
        }
        mx.tidy(() => {
          const a = mx.array(input);
          const got = label === "scalar" ? a.item() : (a.tolist() as mx.Scalar[])[0];
          const ok = got === Math.fround(v) || (typeof got === "bigint" && BigInt(v) === got);
          expect(`${label} ${v} -> ${a.dtype.name} ${String(got)}: ${ok}`).toBe(`${label} ${v} -> ${a.dtype.name} ${String(got)}: true`);
        });
      }
    }
  });

  test("an untyped -0 is the whole number 0 (JS cannot tell -0.0 from -0)", () => {
    mx.tidy(() => {
      const a = mx.array(-0);
      expect(a.dtype).toBe(mx.int32);
      expect(Object.is(a.item(), 0)).toBe(true);
      const b = mx.array([-0, 1]);
      expect(b.dtype).toBe(mx.int32);
      // With a float dtype -0 stays -0, as MLX keeps -0.0.
      for (const d of [mx.float32, mx.float16, mx.bfloat16, mx.float64]) {
        expect(Object.is(mx.array(-0, { dtype: d }).item(), -0)).toBe(true);
        expect(Object.is((mx.array([-0], { dtype: d }).tolist() as number[])[0], -0)).toBe(true);
      }
      expect(Object.is((mx.array([-0, 0.5]).tolist() as number[])[0], -0)).toBe(true);
    });
  });

  test("bigints give int64 whatever their size", () => {
    mx.tidy(() => {
      const a = mx.array(5n);
      expect(a.dtype).toBe(mx.int64);
      expect(a.item()).toBe(5n);
      expect(mx.array([1n, -2n]).tolist()).toEqual([1n, -2n]);
      expect(mx.array([2n ** 63n - 1n, -(2n ** 63n)]).tolist()).toEqual([2n ** 63n - 1n, -(2n ** 63n)]);
      // Mixed with numbers: still int64, or float32 when a number is fractional (as MLX with ints).
      const m = mx.array([1, 2n ** 40n]);
      expect(m.dtype).toBe(mx.int64);
      expect(m.tolist()).toEqual([1n, 2n ** 40n]);
      expect(mx.array([true, 3n]).dtype).toBe(mx.int64);
      // Exact past 2**53, which numbers cannot hold.
      expect(mx.array([2n ** 53n + 1n]).tolist()).toEqual([2n ** 53n + 1n]);
      expect(mx.array([2n ** 53n + 1n], { dtype: mx.uint64 }).tolist()).toEqual([2n ** 53n + 1n]);
    });
  });

  test("bigints mixed with fractional numbers give float32, as MLX's ints with floats", () => {
    mx.tidy(() => {
      const f = mx.array([1.5, 2n]);
      expect(f.dtype).toBe(mx.float32);
      expect(f.tolist()).toEqual([1.5, 2]);
      const g = mx.array([[2n ** 40n], [0.25]]);
      expect(g.tolist()).toEqual([[2 ** 40], [0.25]]);
    });
  });

  test("bigints as uint64 cover the whole uint64 range; negative ones wrap as C++ casts do", () => {
    mx.tidy(() => {
      // (MLX's Python binding raises std::bad_cast for these; C++ static_cast wraps.)
      expect(mx.array([2n ** 64n - 1n, 2n ** 63n + 5n], { dtype: mx.uint64 }).tolist()).toEqual([2n ** 64n - 1n, 2n ** 63n + 5n]);
      expect(mx.array([-1n], { dtype: mx.uint64 }).tolist()).toEqual([2n ** 64n - 1n]);
      expect(mx.array([-1], { dtype: mx.uint64 }).tolist()).toEqual([2n ** 64n - 1n]);
      expect(mx.array([-1], { dtype: mx.uint32 }).tolist()).toEqual([4294967295]);
      expect(mx.array([-(2n ** 63n)], { dtype: mx.uint64 }).tolist()).toEqual([2n ** 63n]);
    });
  });

  test("bigints outside int64 and uint64 are refused", () => {
    for (const v of [2n ** 64n, -(2n ** 63n) - 1n]) {
      const err = thrown(() => mx.array([v]));
      expect(err).toBeInstanceOf(mx.MlxError);
      expect(err?.message).toStartWith("[array] Integer");
    }
  });

  test("an untyped bigint of 2**63 or more does not silently turn negative", () => {
    // MLX raises for 2**63 without a dtype; reading back a different number is wrong either way.
    const err = thrown(() => mx.array([2n ** 63n]));
    if (err === null) {
      mx.tidy(() => {
        const a = mx.array([2n ** 63n]);
        expect(a.tolist()).toEqual([2n ** 63n]);
      });
    } else {
      expect(err).toBeInstanceOf(mx.MlxError);
    }
  });

  test("whole numbers past int32 converted to a narrower integer dtype", () => {
    // MLX's Python binding raises (std::bad_cast) for [2**40 + 5] as int32; C++ conversion of
    // the integer wraps it to 5. Either is acceptable; a float-style saturation is not.
    for (const [v, d, wrapped] of [
      [2 ** 40 + 5, mx.int32, 5],
      [2 ** 40 + 300, mx.uint8, 44],
      [-(2 ** 40) - 1, mx.int16, -1],
      [2 ** 33 + 7, mx.uint32, 7],
    ] as [number, mx.Dtype, number][]) {
      const err = thrown(() => mx.array([v], { dtype: d }));
      if (err !== null) {
        expect(err).toBeInstanceOf(mx.MlxError);
        continue;
      }
      mx.tidy(() => expect(mx.array([v], { dtype: d }).tolist()).toEqual([wrapped]));
    }
  });

  test("complex values", () => {
    mx.tidy(() => {
      const a = mx.array({ re: 1, im: -2 });
      expect(a.dtype).toBe(mx.complex64);
      expect([...a.shape]).toEqual([]);
      expect(a.item()).toEqual({ re: 1, im: -2 });
      const b = mx.array([{ re: 0.5, im: 0 }, 3, true]);
      expect(b.dtype).toBe(mx.complex64);
      expect(b.tolist()).toEqual([{ re: 0.5, im: 0 }, { re: 3, im: 0 }, { re: 1, im: 0 }]);
      // complex64 keeps float32 parts.
      expect(mx.array({ re: 0.1, im: 1e40 }).item()).toEqual({ re: Math.fround(0.1), im: Infinity });
      expect(mx.array([{ re: 1.5, im: 2 }], { dtype: mx.float32 }).tolist()).toEqual([1.5]);
    });
  });

  test("invalid element types name the JS type", () => {
    const cases: [unknown, string][] = [
      [["a"], "string"],
      ["a", "string"],
      [[null], "null"],
      [[undefined], "undefined"],
      [[{}], "object"],
      [[{ re: 1 }], "object"],
      [[() => 1], "function"],
      [[Symbol("s")], "symbol"],
      [[[1, "2"]], "string"],
    ];
    for (const [v, t] of cases) {
      const err = thrown(() => mx.array(v as unknown as mx.ArrayInput));
      expect(err).toBeInstanceOf(mx.MlxError);
      expect(err?.message).toBe(`[array] Invalid type ${t} received in array initialization.`);
    }
  });

  test("ragged nesting, MLX's messages", () => {
    const nonUniform = "[array] Initialization encountered non-uniform length.";
    const extra = "[array] Initialization encountered extra dimension.";
    const cases: [unknown, string][] = [
      [[[1], [2, 3]], nonUniform],
      [[[1], 2], nonUniform],
      [[1, [2]], extra],
      [[[1, 2], [3, [4]]], extra],
      [[[[1]], [[2], [3]]], nonUniform],
      [[[], [1]], nonUniform],
      [[[1], []], nonUniform],
    ];
    for (const [v, msg] of cases) {
      const err = thrown(() => mx.array(v as mx.ArrayInput));
      expect(err).toBeInstanceOf(mx.MlxError);
      expect(err?.message).toBe(msg);
    }
  });

  test("empty lists", () => {
    mx.tidy(() => {
      const a = mx.array([]);
      expect(a.dtype).toBe(mx.float32);
      expect([...a.shape]).toEqual([0]);
      expect(a.tolist()).toEqual([]);
      const b = mx.array([[], []]);
      expect([...b.shape]).toEqual([2, 0]);
      expect(b.tolist()).toEqual([[], []]);
      const c = mx.array([[[]]], { dtype: mx.int8 });
      expect(c.dtype).toBe(mx.int8);
      expect([...c.shape]).toEqual([1, 1, 0]);
      expect(c.size).toBe(0);
    });
  });
});

describe("item() and tolist() for every dtype match MLX", () => {
  for (const p of fixture.per_dtype) {
    test(p.dtype, () => {
      mx.tidy(() => {
        const a = fromRecord(p.result);
        expect(a.dtype.name).toBe(p.dtype);
        const list = a.tolist();
        const want = decodeList(p.tolist);
        if (!sameList(list, want)) expect(show(list)).toBe(show(want));
        // item() of element [1, 0], as a 0-d array and as a [1, 1] array.
        const size = a.itemsize;
        const hex = p.result.hex.slice(2 * size * 2, 2 * size * 3);
        const item = decodeList(p.item);
        for (const shape of [[], [1], [1, 1]]) {
          const one = fromRecord({ dtype: p.dtype, shape, hex });
          const got = one.item();
          if (!sameList(got, item)) expect(show(got)).toBe(show(item));
        }
        if (p.specials !== null) {
          const s = fromRecord(p.specials.result);
          const sl = s.tolist();
          const sw = decodeList(p.specials.tolist);
          if (!sameList(sl, sw)) expect(show(sl)).toBe(show(sw));
        }
      });
    });
  }

  test("value types: bool as boolean, 64-bit integers as bigint, complex as {re, im}, others number", () => {
    mx.tidy(() => {
      for (const d of mx.dtypes) {
        const v = mx.ones([1], d).item();
        const want = d === mx.bool ? "boolean" : d === mx.int64 || d === mx.uint64 ? "bigint" : d === mx.complex64 ? "object" : "number";
        expect(typeof v).toBe(want);
      }
    });
  });

  test("float16 and bfloat16 read back their exact values", () => {
    mx.tidy(() => {
      expect(mx.array(0.1, { dtype: mx.float16 }).item()).toBe(0.0999755859375);
      expect(mx.array(0.1, { dtype: mx.bfloat16 }).item()).toBe(0.10009765625);
      expect(mx.array([65504, 65520], { dtype: mx.float16 }).tolist()).toEqual([65504, Infinity]);
      expect(mx.array(2 ** -24, { dtype: mx.float16 }).item()).toBe(2 ** -24);
      expect(mx.array(1 + 2 ** -8, { dtype: mx.bfloat16 }).item()).toBe(1); // tie to even
      expect(mx.array(1 + 3 * 2 ** -8, { dtype: mx.bfloat16 }).item()).toBe(1 + 2 ** -6);
    });
  });

  test("item() needs exactly one element", () => {
    mx.tidy(() => {
      for (const a of [mx.array([1, 2]), mx.zeros([0]), mx.zeros([2, 1]), mx.array([[]])]) {
        const err = thrown(() => a.item());
        expect(err).toBeInstanceOf(mx.MlxError);
        // MLX: "[convert] Only length-1 arrays can be converted to Python scalars."
        expect(err?.message).toBe("[item] Only length-1 arrays can be converted to scalars.");
      }
    });
  });

  test("0-d arrays", () => {
    mx.tidy(() => {
      const a = mx.array(7);
      expect(a.ndim).toBe(0);
      expect(a.size).toBe(1);
      expect([...a.shape]).toEqual([]);
      expect(a.tolist()).toBe(7);
      expect(a.item()).toBe(7);
      expect(mx.array(true).tolist()).toBe(true);
      expect(mx.array(2.5, { dtype: mx.float64 }).tolist()).toBe(2.5);
      expect(mx.array(3n).tolist()).toBe(3n);
      const t = mx.array(new Float32Array([4.5]), { shape: [] });
      expect(t.ndim).toBe(0);
      expect(t.item()).toBe(4.5);
    });
  });
});

describe("TypedArrays", () => {
  const f16 = Float16Array;
  const kinds: [string, () => ArrayBufferView, mx.Dtype, mx.Scalar[]][] = [
    ["Float32Array", () => new Float32Array([0.5, -2]), mx.float32, [0.5, -2]],
    ["Float64Array", () => new Float64Array([0.5, -2]), mx.float32, [0.5, -2]],
    ["Float16Array", () => new f16([0.5, -2]), mx.float16, [0.5, -2]],
    ["Int8Array", () => new Int8Array([-128, 127]), mx.int8, [-128, 127]],
    ["Int16Array", () => new Int16Array([-32768, 32767]), mx.int16, [-32768, 32767]],
    ["Int32Array", () => new Int32Array([-(2 ** 31), 2 ** 31 - 1]), mx.int32, [-(2 ** 31), 2 ** 31 - 1]],
    ["BigInt64Array", () => new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]), mx.int64, [-(2n ** 63n), 2n ** 63n - 1n]],
    ["Uint8Array", () => new Uint8Array([0, 255]), mx.uint8, [0, 255]],
    ["Uint8ClampedArray", () => new Uint8ClampedArray([0, 255]), mx.uint8, [0, 255]],
    ["Uint16Array", () => new Uint16Array([0, 65535]), mx.uint16, [0, 65535]],
    ["Uint32Array", () => new Uint32Array([0, 2 ** 32 - 1]), mx.uint32, [0, 2 ** 32 - 1]],
    ["BigUint64Array", () => new BigUint64Array([0n, 2n ** 64n - 1n]), mx.uint64, [0n, 2n ** 64n - 1n]],
  ];
  for (const [name, make, dtype, values] of kinds) {
    test(`${name} gives ${dtype.name}`, () => {
      mx.tidy(() => {
        const a = mx.array(make());
        expect(a.dtype).toBe(dtype);
        expect([...a.shape]).toEqual([2]);
        expect(a.tolist()).toEqual(values);
      });
    });
  }

  test("NumPy arrays give the same dtypes and values in MLX", () => {
    const ctor: Record<string, (v: unknown[]) => ArrayBufferView> = {
      float64: (v) => Float64Array.from(v as number[]),
      float32: (v) => Float32Array.from(v as number[]),
      float16: (v) => Float16Array.from(v as number[]),
      int8: (v) => Int8Array.from(v as number[]),
      int16: (v) => Int16Array.from(v as number[]),
      int32: (v) => Int32Array.from(v as number[]),
      int64: (v) => BigInt64Array.from(v.map((x) => BigInt(x as number | bigint))),
      uint8: (v) => Uint8Array.from(v as number[]),
      uint16: (v) => Uint16Array.from(v as number[]),
      uint32: (v) => Uint32Array.from(v as number[]),
      uint64: (v) => BigUint64Array.from(v.map((x) => BigInt(x as number | bigint))),
    };
    mx.tidy(() => {
      for (const t of fixture.typed) {
        const a = mx.array(ctor[t.numpy]!(decode(t.values) as unknown[]));
        expect(`${t.numpy}: ${diffArray(a, t.result)}`).toBe(`${t.numpy}: null`);
      }
      const kept = mx.array(Float64Array.from(decode(fixture.typed_float64_kept.values) as number[]), { dtype: mx.float64 });
      expect(diffArray(kept, fixture.typed_float64_kept.result)).toBeNull();
    });
  });

  test("dtype converts TypedArray data as MLX does", () => {
    mx.tidy(() => {
      expect(mx.array(new Float32Array([300.7, -1.5, 1.7]), { dtype: mx.uint8 }).tolist()).toEqual([44, 255, 1]);
      expect(mx.array(new Int32Array([300, -1]), { dtype: "uint8" }).tolist()).toEqual([44, 255]);
      expect(mx.array(new Float64Array([0.1]), { dtype: mx.float64 }).item()).toBe(0.1);
      expect(mx.array(new Float64Array([0.1])).item()).toBe(Math.fround(0.1));
      expect(mx.array(new Uint8Array([0, 2]), { dtype: mx.bool }).tolist()).toEqual([false, true]);
      expect(mx.array(new BigInt64Array([-1n]), { dtype: mx.uint64 }).tolist()).toEqual([2n ** 64n - 1n]);
      expect(mx.array(new Float32Array([1.5]), { dtype: mx.complex64 }).tolist()).toEqual([{ re: 1.5, im: 0 }]);
    });
  });

  test("shape option", () => {
    mx.tidy(() => {
      const data = new Int32Array([1, 2, 3, 4, 5, 6]);
      expect(mx.array(data, { shape: [2, 3] }).tolist()).toEqual([[1, 2, 3], [4, 5, 6]]);
      expect(mx.array(data, { shape: [3, 1, 2] }).tolist()).toEqual([[[1, 2]], [[3, 4]], [[5, 6]]]);
      expect([...mx.array(new Float32Array(0), { shape: [0, 4] }).shape]).toEqual([0, 4]);
      const cases: [readonly number[], string][] = [
        [[4, 2], "[array] Cannot reshape data of size 6 into shape (4,2)."],
        [[7], "[array] Cannot reshape data of size 6 into shape (7)."],
        [[], "[array] Cannot reshape data of size 6 into shape ()."],
        [[-2, -3], "[array] Negative dimensions not allowed."],
        [[2.5, 2.4], "[array] Shape dimensions must be integers, got 2.5."],
      ];
      for (const [shape, msg] of cases) {
        const err = thrown(() => mx.array(data, { shape }));
        expect(err).toBeInstanceOf(mx.MlxError);
        expect(err?.message).toBe(msg);
      }
      const err = thrown(() => mx.array([1, 2], { shape: [2] }));
      expect(err?.message).toBe("[array] shape applies to TypedArrays only.");
    });
  });

  test("views into a larger buffer read only their own elements", () => {
    mx.tidy(() => {
      const buf = new Float32Array([9, 1, 2, 3, 9]);
      const view = buf.subarray(1, 4);
      expect(mx.array(view).tolist()).toEqual([1, 2, 3]);
      const i16 = new Int16Array(new ArrayBuffer(16), 4, 3);
      i16.set([7, -8, 9]);
      expect(mx.array(i16).tolist()).toEqual([7, -8, 9]);
    });
  });

  test("a copy by default: later changes to the TypedArray do not show", () => {
    mx.tidy(() => {
      const data = new Float32Array([1, 2, 3]);
      const a = mx.array(data);
      data[0] = 100;
      expect(a.tolist()).toEqual([1, 2, 3]);
    });
  });

  test("a DataView is refused", () => {
    const err = thrown(() => mx.array(new DataView(new ArrayBuffer(8))));
    expect(err).toBeInstanceOf(mx.MlxError);
    expect(err?.message).toBe("[array] A DataView has no element type; pass a TypedArray.");
  });
});

describe("copy: false", () => {
  test("wraps the TypedArray: changes made later show in later reads", () => {
    mx.tidy(() => {
      const data = new Float32Array([1, 2, 3, 4]);
      const a = mx.array(data, { copy: false, shape: [2, 2] });
      data[0] = 10;
      expect(a.tolist()).toEqual([[10, 2], [3, 4]]);
      data[3] = -4;
      expect(a.tolist()).toEqual([[10, 2], [3, -4]]);
      const ints = new Int32Array([5, 6]);
      const b = mx.array(ints, { copy: false });
      ints[1] = 60;
      expect(b.tolist()).toEqual([5, 60]);
    });
  });

  test("the engine drops the wrapped buffer once the array is disposed", () => {
    Bun.gc(true); // let other files' forgotten wrapped arrays go first, so the count is steady
    const start = mx.getWrappedHostBufferCount();
    const data = new Float32Array([1, 2, 3]);
    const a = mx.array(data, { copy: false });
    expect(mx.getWrappedHostBufferCount()).toBe(start + 1);
    const b = mx.array(new Uint16Array([1, 2]), { copy: false });
    expect(mx.getWrappedHostBufferCount()).toBe(start + 2);
    expect(b.tolist()).toEqual([1, 2]);
    b.dispose();
    expect(mx.getWrappedHostBufferCount()).toBe(start + 1);
    // A dependent lazy array keeps the wrapped buffer alive after `a` itself is disposed.
    const c = a.astype(mx.float16);
    a.dispose();
    expect(c.tolist()).toEqual([1, 2, 3]);
    c.dispose();
    expect(mx.getWrappedHostBufferCount()).toBe(start);
  });

  test("Float64Array data needs dtype float64 to be wrapped", () => {
    mx.tidy(() => {
      const data = new Float64Array([0.1, 0.2]);
      const a = mx.array(data, { copy: false, dtype: mx.float64 });
      data[1] = 0.3;
      expect(a.tolist()).toEqual([0.1, 0.3]);
      const err = thrown(() => mx.array(data, { copy: false }));
      expect(err).toBeInstanceOf(mx.MlxError);
      expect(err?.message).toBe("[array] copy: false needs the data's own dtype (float64), not float32.");
    });
  });

  test("errors: another dtype, nested lists, a bad shape", () => {
    const err1 = thrown(() => mx.array(new Int32Array([1]), { copy: false, dtype: mx.float32 }));
    expect(err1?.message).toBe("[array] copy: false needs the data's own dtype (int32), not float32.");
    const err2 = thrown(() => mx.array([1, 2], { copy: false }));
    expect(err2?.message).toBe("[array] copy: false applies to TypedArrays only.");
    const err3 = thrown(() => mx.array(new Int32Array([1, 2]), { copy: false, shape: [3] }));
    expect(err3?.message).toBe("[array] Cannot reshape data of size 2 into shape (3).");
  });
});

describe("lists of arrays and arrays of arrays", () => {
  for (const c of fixture.stacks) {
    test(c.name, () => {
      mx.tidy(() => {
        const items = c.items.map(decode) as mx.Array[];
        const make = () => mx.array(items, c.dtype === undefined ? {} : { dtype: c.dtype });
        if (c.result === undefined) {
          const err = thrown(make);
          expect(err).toBeInstanceOf(mx.MlxError);
          expect(err?.message).toBe(ourMessage(c.mlx_raised!));
          return;
        }
        expect(diffArray(make(), c.result)).toBeNull();
      });
    });
  }

  test("stacking leaves the items usable", () => {
    mx.tidy(() => {
      const a = mx.array([1, 2]);
      const b = mx.array([3, 4]);
      const s = mx.array([a, b]);
      expect(s.tolist()).toEqual([[1, 2], [3, 4]]);
      expect(a.tolist()).toEqual([1, 2]);
      expect(b.tolist()).toEqual([3, 4]);
    });
  });

  for (const c of fixture.copies) {
    test(`mx.array(existing, dtype): ${c.name}`, () => {
      mx.tidy(() => {
        const src = decode(c.source) as mx.Array;
        expect(diffArray(mx.array(src, { dtype: c.dtype }), c.result)).toBeNull();
        expect(diffArray(mx.array(src, c.dtype), c.result)).toBeNull();
      });
    });
  }

  test("mx.array(existing) is an equal array that outlives the original", () => {
    mx.tidy(() => {
      const a = mx.array([0.1, -2.5], { dtype: mx.bfloat16 });
      const hex = hexOf(a);
      const b = mx.array(a);
      expect(b.dtype).toBe(mx.bfloat16);
      a.dispose();
      expect(hexOf(b)).toBe(hex);
      expect(fromHex(hex).length).toBe(4);
    });
  });

  test("a disposed array is refused", () => {
    const a = mx.array([1]);
    a.dispose();
    const err = thrown(() => mx.array(a));
    expect(err).toBeInstanceOf(mx.MlxError);
    expect(err?.message).toBe("[array] The array was used after it was disposed.");
  });
});
