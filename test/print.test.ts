import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { formatArray, type PrintDtype, type PrintValue } from "../src/print";

// The fixture is produced by test/fixtures/print/gen_print.py from real MLX;
// these tests only read the committed JSON and never need Python.

type JsonFloat = number | "nan" | "-nan" | "inf" | "-inf";
type JsonValue = boolean | number | string | [JsonFloat, JsonFloat];

interface FixtureCase {
  name: string;
  shape: number[];
  dtype: PrintDtype;
  precision: number | null;
  values: JsonValue[];
  repr: string;
  negativeNan?: boolean;
}

interface Fixture {
  mlx_version: string;
  cases: FixtureCase[];
}

const fixture = JSON.parse(
  readFileSync(new URL("./fixtures/print/cases.json", import.meta.url), "utf8"),
) as Fixture;

function decodeFloat(v: JsonValue): number {
  if (typeof v === "number") return v;
  switch (v) {
    case "nan":
    case "-nan": // JS cannot carry a NaN's sign; see the note in src/print.ts
      return NaN;
    case "inf":
      return Infinity;
    case "-inf":
      return -Infinity;
  }
  throw new Error(`bad float in fixture: ${JSON.stringify(v)}`);
}

function decode(dtype: PrintDtype, v: JsonValue): PrintValue {
  switch (dtype) {
    case "bool":
      if (typeof v !== "boolean") throw new Error(`bad bool ${JSON.stringify(v)}`);
      return v;
    case "int64":
    case "uint64":
      if (typeof v !== "string") throw new Error(`bad 64-bit int ${JSON.stringify(v)}`);
      return BigInt(v);
    case "int8":
    case "int16":
    case "int32":
    case "uint8":
    case "uint16":
    case "uint32":
      if (typeof v !== "number") throw new Error(`bad int ${JSON.stringify(v)}`);
      return v;
    case "complex64":
      if (!Array.isArray(v)) throw new Error(`bad complex ${JSON.stringify(v)}`);
      return [decodeFloat(v[0]), decodeFloat(v[1])];
    default:
      return decodeFloat(v);
  }
}

/** Number of elements MLX prints: up to 6 per axis (3 + `...` + 3). */
function printedCount(shape: readonly number[]): number {
  return shape.reduce((acc, n) => acc * Math.min(n, 6), 1);
}

describe(`formatArray matches MLX ${fixture.mlx_version} repr`, () => {
  test("fixture is substantial", () => {
    expect(fixture.cases.length).toBeGreaterThanOrEqual(80);
    const dtypes = new Set(fixture.cases.map((c) => c.dtype));
    expect(dtypes.size).toBe(14);
  });

  for (const c of fixture.cases) {
    test(c.name, () => {
      const size = c.shape.reduce((a, b) => a * b, 1);
      expect(c.values.length).toBe(size);
      const values = c.values.map((v) => decode(c.dtype, v));
      const seen = new Set<number>();
      const get = (i: number): PrintValue => {
        expect(Number.isInteger(i) && i >= 0 && i < size).toBe(true);
        expect(seen.has(i)).toBe(false);
        seen.add(i);
        return values[i]!;
      };
      const options = c.precision === null ? undefined : { precision: c.precision };
      const out = formatArray(c.shape, c.dtype, get, options);
      // MLX on x86 prints a sign-bit NaN as "-nan"; JS numbers cannot carry
      // that sign, so those cases are expected to print plain "nan".
      const expected = c.negativeNan === true ? c.repr.replaceAll("-nan", "nan") : c.repr;
      expect(out).toBe(expected);
      expect(seen.size).toBe(printedCount(c.shape));
    });
  }
});

describe("element access", () => {
  test("only printed elements of a huge summarised array are read", () => {
    const shape = [1000, 1000, 1000];
    const edges = [0, 1, 2, 997, 998, 999];
    const allowed = new Set<number>();
    for (const a of edges) for (const b of edges) for (const c of edges) allowed.add(a * 1e6 + b * 1e3 + c);
    const read: number[] = [];
    const out = formatArray(shape, "int32", (i) => {
      if (!allowed.has(i)) throw new Error(`read summarised-away element ${i}`);
      read.push(i);
      return i % 1000;
    });
    expect(read.length).toBe(216);
    expect(new Set(read).size).toBe(216);
    // Elements are read in row-major order.
    expect(read).toEqual([...read].sort((x, y) => x - y));
    expect(out.startsWith("array([[[0, 1, 2, ..., 997, 998, 999],\n        [0, 1, 2, ..., 997, 998, 999],")).toBe(true);
    expect(out.endsWith("        [0, 1, 2, ..., 997, 998, 999]]], dtype=int32)")).toBe(true);
  });

  test("zero-size arrays read nothing", () => {
    const never = (): PrintValue => {
      throw new Error("must not be called");
    };
    expect(formatArray([0], "float32", never)).toBe("array([], dtype=float32)");
    expect(formatArray([3, 0], "int8", never)).toBe("array([[],\n       [],\n       []], dtype=int8)");
    expect(formatArray([1e9, 0], "bool", never)).toBe(
      "array([[],\n       [],\n       [],\n       ...,\n       [],\n       [],\n       []], dtype=bool)",
    );
  });

  test("0-d arrays read index 0 once", () => {
    const read: number[] = [];
    expect(formatArray([], "float64", (i) => (read.push(i), 0.25))).toBe("array(0.25, dtype=float64)");
    expect(read).toEqual([0]);
  });
});

describe("options", () => {
  const data = [1, 0.5, 1 / 3, -0, 1e-7, 12345678];
  const get = (i: number): PrintValue => data[i]!;

  test("precision undefined and -1 are MLX's default formatting", () => {
    const expected = "array([1, 0.5, 0.333333, -0, 1e-07, 1.23457e+07], dtype=float64)";
    expect(formatArray([6], "float64", get)).toBe(expected);
    expect(formatArray([6], "float64", get, {})).toBe(expected);
    expect(formatArray([6], "float64", get, { precision: -1 })).toBe(expected);
  });

  test("precision gives fixed notation with that many decimals", () => {
    expect(formatArray([6], "float64", get, { precision: 3 })).toBe(
      "array([1.000, 0.500, 0.333, -0.000, 0.000, 12345678.000], dtype=float64)",
    );
    expect(formatArray([6], "float64", get, { precision: 0 })).toBe(
      "array([1, 0, 0, -0, 0, 12345678], dtype=float64)",
    );
    // Like printf, a negative precision other than -1 means 6 decimals.
    expect(formatArray([2], "float64", get, { precision: -5 })).toBe(
      "array([1.000000, 0.500000], dtype=float64)",
    );
  });

  test("precision does not affect integers and booleans", () => {
    expect(formatArray([2], "int32", (i) => i * 7, { precision: 2 })).toBe("array([0, 7], dtype=int32)");
    expect(formatArray([2], "bool", (i) => i === 0, { precision: 2 })).toBe("array([True, False], dtype=bool)");
  });

  test("precision applies to both parts of complex numbers", () => {
    expect(formatArray([2], "complex64", (i) => (i === 0 ? [0.5, -0.25] : [-1, 0]), { precision: 2 })).toBe(
      "array([0.50-0.25j, -1.00+0.00j], dtype=complex64)",
    );
  });

  test("invalid precision and shape are rejected", () => {
    expect(() => formatArray([1], "float32", () => 1, { precision: 1.5 })).toThrow(RangeError);
    expect(() => formatArray([-1], "float32", () => 1)).toThrow(RangeError);
    expect(() => formatArray([2.5], "float32", () => 1)).toThrow(RangeError);
  });
});

describe("value forms", () => {
  test("TSDoc examples", () => {
    const data = [1, 2.5, 3, 4, 5, 6];
    expect(formatArray([2, 3], "float32", (i) => data[i]!)).toBe(
      "array([[1, 2.5, 3],\n       [4, 5, 6]], dtype=float32)",
    );
    expect(formatArray([10], "int64", (i) => BigInt(i))).toBe("array([0, 1, 2, ..., 7, 8, 9], dtype=int64)");
    expect(formatArray([], "float32", () => 1 / 3, { precision: 3 })).toBe("array(0.333, dtype=float32)");
  });

  test("64-bit integers print exactly from bigint, and from exact numbers", () => {
    expect(formatArray([2], "uint64", (i) => (i === 0 ? 2n ** 64n - 1n : 0n))).toBe(
      "array([18446744073709551615, 0], dtype=uint64)",
    );
    expect(formatArray([1], "int64", () => -(2 ** 63))).toBe("array([-9223372036854775808], dtype=int64)");
  });

  test("float32 values are taken as float32", () => {
    // 0.1 as a float64 is rounded to the float32 0.100000001490116...
    expect(formatArray([1], "float32", () => 0.1, { precision: 10 })).toBe("array([0.1000000015], dtype=float32)");
    expect(formatArray([1], "float64", () => 0.1, { precision: 10 })).toBe("array([0.1000000000], dtype=float64)");
  });

  test("half values print through their exact value", () => {
    expect(formatArray([1], "float16", () => 0.0999755859375)).toBe("array([0.0999756], dtype=float16)");
    expect(formatArray([1], "bfloat16", () => 0.10009765625)).toBe("array([0.100098], dtype=bfloat16)");
  });

  test("complex sign rules", () => {
    const vals: (readonly [number, number])[] = [[1, -0], [0, NaN], [-Infinity, -Infinity], [2, 0]];
    expect(formatArray([4], "complex64", (i) => vals[i]!)).toBe(
      "array([1+-0j, 0+nanj, -inf-infj, 2+0j], dtype=complex64)",
    );
    expect(formatArray([], "complex64", () => 3)).toBe("array(3+0j, dtype=complex64)");
  });

  test("rounding is exact with ties to even", () => {
    const vals = [1234565, 1234575, 0.5, 1.5, 2.5, 0.125];
    expect(formatArray([6], "float64", (i) => vals[i]!)).toBe(
      "array([1.23456e+06, 1.23458e+06, 0.5, 1.5, 2.5, 0.125], dtype=float64)",
    );
    expect(formatArray([6], "float64", (i) => vals[i]!, { precision: 0 })).toBe(
      "array([1234565, 1234575, 0, 2, 2, 0], dtype=float64)",
    );
    expect(formatArray([1], "float64", () => 0.125, { precision: 2 })).toBe("array([0.12], dtype=float64)");
  });
});
