// Elementwise ops over broadcast and strided operand layouts (the layouts of
// bench/elementwise_layout.ts, plus ones that keep three dimensions after collapsing): results are
// bit-identical to the same op on contiguous copies of the operands, and to an element-by-element
// oracle computed here in JS (float32 multiply: the double product of two float32 rounded once
// to float32 is the correctly rounded float32 product; int32 xor is exact). Sizes reach the
// streaming-store path (outputs of 16 MiB and more) and the thread pool's split into runs of rows.
import { describe, expect, test } from "bun:test";
import { lib } from "../ffi/lib";
import * as mx from "../src/index.ts";

function bytes(a: mx.Array): Uint8Array {
  const t = a.toTypedArray();
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength).slice();
}

type Pair = [mx.Array, mx.Array];
const key = mx.random.key(7);
const [k1, k2] = [mx.random.split(key, 2).index(0), mx.random.split(key, 2).index(1)];
const make = (shape: number[], k: mx.Array, dtype: "float32" | "int32") =>
  dtype === "float32" ? mx.random.normal(shape, { key: k }) : mx.random.randint(-1 << 30, 1 << 30, shape, { key: k, dtype: mx.int32 });

// name -> (dtype) -> operands (views stay views: slices, transposes, broadcast shapes)
const LAYOUTS: Record<string, (d: "float32" | "int32") => Pair> = {
  "broadcast inner [n,16,1] vs [n,16,16], 16 MiB output (streaming stores)": (d) => [make([16384, 16, 16], k1, d), make([16384, 16, 1], k2, d)],
  "broadcast inner [n,16,1] vs [n,16,4]": (d) => [make([8192, 16, 4], k1, d), make([8192, 16, 1], k2, d)],
  "broadcast inner, left operand": (d) => [make([4096, 16, 1], k2, d), make([4096, 16, 16], k1, d)],
  "broadcast outer [1,16,16]": (d) => [make([4096, 16, 16], k1, d), make([1, 16, 16], k2, d)],
  "broadcast middle [m,1,16] vs [m,3,16] (three dims, runs of rows over the pool)": (d) => [make([32768, 3, 16], k1, d), make([32768, 1, 16], k2, d)],
  "transposed": (d) => [mx.transpose(make([512, 384], k1, d)), make([384, 512], k2, d)],
  "column slice [:, :16] of [m,32], 16 MiB output": (d) => [make([262144, 32], k1, d).index(mx.sl(), mx.sl(0, 16)), make([262144, 16], k2, d)],
  "column slice [:, 3:7] of [m,9] against a reversed slice": (d) => [make([20000, 9], k1, d).index(mx.sl(), mx.sl(3, 7)), make([20000, 9], k2, d).index(mx.sl(null, null, -1), mx.sl(1, 5))],
};

function op(d: "float32" | "int32", a: mx.Array, b: mx.Array): mx.Array {
  return d === "float32" ? mx.multiply(a, b) : mx.bitwiseXor(a, b);
}

function oracle(d: "float32" | "int32", a: mx.Array, b: mx.Array, shape: readonly number[]): Uint8Array {
  const fa = mx.contiguous(mx.broadcastTo(a, shape)).toTypedArray();
  const fb = mx.contiguous(mx.broadcastTo(b, shape)).toTypedArray();
  if (d === "float32") {
    const o = new Float32Array(fa.length);
    for (let i = 0; i < o.length; i++) o[i] = Math.fround((fa[i] as number) * (fb[i] as number));
    return new Uint8Array(o.buffer);
  }
  const o = new Int32Array(fa.length);
  for (let i = 0; i < o.length; i++) o[i] = (fa[i] as number) ^ (fb[i] as number);
  return new Uint8Array(o.buffer);
}

describe("elementwise over broadcast and strided layouts", () => {
  for (const [name, build] of Object.entries(LAYOUTS)) {
    for (const d of ["float32", "int32"] as const) {
      test(`${d} ${d === "float32" ? "multiply" : "bitwise_xor"}: ${name}`, () => {
        const [a, b] = build(d);
        mx.eval(a, b);
        const got = op(d, a, b);
        const shape = got.shape;
        const copies = op(d, mx.contiguous(mx.broadcastTo(a, shape)), mx.contiguous(mx.broadcastTo(b, shape)));
        const g = bytes(got);
        expect(g.length).toBe(4 * shape.reduce((x, y) => x * y, 1));
        expect(g).toEqual(bytes(copies));
        expect(g).toEqual(oracle(d, a, b, shape));
      });
    }
  }

  test("unary and where over a column slice and a broadcast match contiguous copies and the reference loops", () => {
    const x = make([65536, 32], k1, "float32").index(mx.sl(), mx.sl(5, 21));
    const y = make([65536, 1], k2, "float32");
    const c = mx.greater(make([65536, 16], k2, "float32"), 0);
    mx.eval(x, y, c);
    const xc = mx.contiguous(x);
    const yc = mx.contiguous(mx.broadcastTo(y, [65536, 16]));
    const cases = (u: mx.Array, v: mx.Array) => [mx.square(u), mx.negative(u), mx.where(c, u, v), mx.subtract(u, v)];
    const got = cases(x, y).map(bytes);
    const copies = cases(xc, yc).map(bytes);
    lib.mlxb_set_reference_mode(1);
    let ref: Uint8Array[];
    try {
      ref = cases(x, y).map(bytes);
    } finally {
      lib.mlxb_set_reference_mode(0);
    }
    got.forEach((g, i) => {
      expect(g).toEqual(copies[i]!);
      expect(g).toEqual(ref[i]!);
    });
  });
});

// The 2-d walks (engine/prims/elementwise.zig Kernel): a transposed operand copied into scratch in
// tiles of 64 columns by 16-64 rows (8 KiB), and short rows with an operand broadcast along
// them run several rows at a time (the broadcast operand expanded into scratch, rows up to 64
// elements, 512 elements a call). Each case is checked against the op on contiguous copies (made
// by convert's copy, a different loop), against the reference scalar loops, and, where the
// value is exact in JS, against an element-by-element oracle.
type D = "float32" | "int32" | "int8" | "float16" | "bfloat16" | "bool" | "complex64" | "float64" | "uint16";

function rawBytes(a: mx.Array): Uint8Array {
  const bits = a.dtype === mx.float16 || a.dtype === mx.bfloat16;
  const t = a.toTypedArray(bits ? { bits: true } : {});
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength).slice();
}

let seed = 100;
function rand(shape: number[], d: D): mx.Array {
  const k = mx.random.key(seed++);
  const [ka, kb] = [mx.random.split(k, 2).index(0), mx.random.split(k, 2).index(1)];
  switch (d) {
    case "int32":
      return mx.random.randint(-1 << 30, 1 << 30, shape, { key: ka, dtype: mx.int32 });
    case "int8":
      return mx.astype(mx.random.randint(-128, 128, shape, { key: ka, dtype: mx.int32 }), mx.int8);
    case "uint16":
      return mx.astype(mx.random.randint(0, 65536, shape, { key: ka, dtype: mx.int32 }), mx.uint16);
    case "bool":
      return mx.greater(mx.random.normal(shape, { key: ka }), 0);
    case "complex64":
      return mx.add(mx.astype(mx.random.normal(shape, { key: ka }), mx.complex64), mx.multiply(mx.astype(mx.random.normal(shape, { key: kb }), mx.complex64), mx.array({ re: 0, im: 1 })));
    default:
      return mx.astype(mx.random.normal(shape, { key: ka }), d);
  }
}

/**
 * `f` on `xs` (views as given) equals `f` on contiguous copies broadcast to the output's shape
 * and (unless `approx`: ops whose vector kernel is ours, not the C library's) `f` in reference mode.
 */
function sameAsCopies(fn: (...xs: never[]) => mx.Array, xs: mx.Array[], approx = false): Uint8Array {
  // Any op taking the arrays first (and options after).
  const f = fn as (...xs: mx.Array[]) => mx.Array;
  mx.eval(...xs);
  const got = f(...xs);
  const shape = got.shape;
  const copies = f(...xs.map((x) => mx.contiguous(mx.broadcastTo(x, shape))));
  lib.mlxb_set_reference_mode(1);
  let ref: Uint8Array;
  try {
    ref = rawBytes(f(...xs));
  } finally {
    lib.mlxb_set_reference_mode(0);
  }
  const g = rawBytes(got);
  expect(g.length).toBe(got.dtype.size * shape.reduce((x, y) => x * y, 1));
  expect(g).toEqual(rawBytes(copies));
  if (!approx) expect(g).toEqual(ref);
  return g;
}

const T = (x: mx.Array) => mx.transpose(x);

describe("transposed operands (tiled walk)", () => {
  const shapes: [string, number[]][] = [
    ["square, a multiple of the tile", [256, 256]],
    ["odd sizes (not multiples of the tile)", [131, 77]],
    ["one row of tiles, one column", [70, 3000]],
    ["tall", [3001, 67]],
  ];
  for (const [name, s] of shapes) {
    test(`float32 multiply, A.T * B: ${name} ${JSON.stringify(s)}`, () => {
      const a = rand(s, "float32");
      const b = rand([s[1]!, s[0]!], "float32");
      const g = sameAsCopies(mx.multiply, [T(a), b]);
      expect(g).toEqual(oracle("float32", T(a), b, [s[1]!, s[0]!]));
    });
    test(`int32 bitwise_xor, B ^ A.T: ${name} ${JSON.stringify(s)}`, () => {
      const a = rand(s, "int32");
      const b = rand([s[1]!, s[0]!], "int32");
      const g = sameAsCopies(mx.bitwiseXor, [b, T(a)]);
      expect(g).toEqual(oracle("int32", b, T(a), [s[1]!, s[0]!]));
    });
  }

  test("a 16 MiB output (streaming stores, the pool's split into runs of tiles)", () => {
    const a = rand([2048, 2048], "float32");
    const b = rand([2048, 2048], "float32");
    const g = sameAsCopies(mx.multiply, [T(a), b]);
    expect(g).toEqual(oracle("float32", T(a), b, [2048, 2048]));
  });

  test("3-d with one transposed pair, both operands transposed, against a broadcast row, a reversed transpose", () => {
    const x = rand([5, 70, 130], "float32");
    const y = rand([5, 130, 70], "float32");
    sameAsCopies(mx.multiply, [mx.transpose(x, [0, 2, 1]), y]);
    sameAsCopies(mx.subtract, [mx.transpose(x, [0, 2, 1]), mx.transpose(mx.transpose(y, [0, 2, 1]), [0, 2, 1])]);
    const p = rand([300, 200], "float32");
    const q = rand([300, 200], "float32");
    sameAsCopies(mx.add, [T(p), T(q)]);
    sameAsCopies(mx.maximum, [T(p), rand([1, 300], "float32")]);
    // A reversed axis on the transposed operand: negative strides.
    sameAsCopies(mx.multiply, [T(p.index(mx.sl(null, null, -1), mx.sl(null, null, -1))), rand([200, 300], "float32")]);
    // The last axis of the transposed operand broadcast too (a [n,1] column transposed).
    sameAsCopies(mx.add, [T(mx.broadcastTo(rand([300, 1], "float32"), [300, 200])), rand([200, 300], "float32")]);
  });

  for (const d of ["int8", "float16", "bfloat16", "bool", "complex64", "float64", "uint16"] as const) {
    test(`${d}: binary, unary and where over a transpose`, () => {
      const a = rand([97, 150], d);
      const b = rand([150, 97], d);
      const c = rand([150, 97], "bool");
      if (d === "bool") {
        sameAsCopies(mx.logicalAnd, [T(a), b]);
        sameAsCopies(mx.logicalNot, [T(a)]);
      } else {
        sameAsCopies(mx.add, [T(a), b]);
        sameAsCopies(mx.multiply, [b, T(a)]);
        sameAsCopies(mx.negative, [T(a)]);
      }
      sameAsCopies(mx.equal, [T(a), b]);
      sameAsCopies(mx.where, [c, T(a), b]);
      sameAsCopies(mx.where, [T(rand([97, 150], "bool")), b, T(a)]);
      if (d === "float16") {
        const x = T(a);
        const y = b;
        const g = sameAsCopies(mx.multiply, [x, y]);
        // float16 x float16 is exact in float32 (22 bits), so one rounding to float16.
        const fx = mx.contiguous(x).toTypedArray() as Float16Array;
        const fy = y.toTypedArray() as Float16Array;
        const o = new Float16Array(fx.length);
        for (let i = 0; i < o.length; i++) o[i] = (fx[i] as number) * (fy[i] as number);
        expect(g).toEqual(new Uint8Array(o.buffer));
      }
      if (d === "int8") {
        const g = sameAsCopies(mx.bitwiseXor, [T(a), b]);
        const fx = mx.contiguous(T(a)).toTypedArray() as Int8Array;
        const fy = b.toTypedArray() as Int8Array;
        expect(g).toEqual(new Uint8Array(Int8Array.from(fx, (v, i) => v ^ (fy[i] as number)).buffer));
      }
    });
  }

  test("unary ops over a transpose: exp, square, isnan, abs, sin, and tanh (our vector kernel: checked against copies only)", () => {
    const a = rand([333, 257], "float32");
    for (const f of [mx.exp, mx.square, mx.isnan, mx.abs, mx.sin]) sameAsCopies(f, [T(a)]);
    sameAsCopies(mx.tanh, [T(a)], true);
    sameAsCopies(mx.exp, [T(rand([1024, 1024], "float32"))]);
  });

  test("a zero-size axis", () => {
    for (const s of [[0, 100], [100, 0]]) {
      const a = rand(s, "float32");
      const got = mx.multiply(T(a), rand([s[1]!, s[0]!], "float32"));
      expect(got.shape).toEqual([s[1]!, s[0]!]);
      expect(got.toTypedArray().length).toBe(0);
    }
    const z = mx.multiply(rand([0, 16, 4], "float32"), rand([0, 16, 1], "float32"));
    expect(z.shape).toEqual([0, 16, 4]);
    expect(z.toTypedArray().length).toBe(0);
  });
});

describe("short rows with a broadcast operand (several rows per call)", () => {
  for (const k of [2, 3, 4, 5, 16, 63, 64, 65]) {
    test(`float32 multiply and int32 xor, [n,16,${k}] against [n,16,1] (either side)`, () => {
      const n = 37;
      for (const d of ["float32", "int32"] as const) {
        const a = rand([n, 16, k], d);
        const b = rand([n, 16, 1], d);
        const g = sameAsCopies((x, y) => op(d, x, y), [a, b]);
        expect(g).toEqual(oracle(d, a, b, [n, 16, k]));
        const h = sameAsCopies((x, y) => op(d, x, y), [b, a]);
        expect(h).toEqual(oracle(d, b, a, [n, 16, k]));
      }
    });
  }

  test("a 16 MiB output (streaming stores, the pool's split into chunks)", () => {
    const a = rand([65536, 16, 4], "float32");
    const b = rand([65536, 16, 1], "float32");
    expect(sameAsCopies(mx.multiply, [a, b])).toEqual(oracle("float32", a, b, [65536, 16, 4]));
  });

  test("three axes kept: [m,1,5] against [m,7,5] with [m,7,1]; broadcast on both operands; a broadcast middle axis", () => {
    const a = rand([40, 7, 5], "float32");
    sameAsCopies(mx.multiply, [a, rand([40, 7, 1], "float32")]);
    sameAsCopies((x, y, z) => mx.add(mx.multiply(x, y), z), [a, rand([40, 7, 1], "float32"), rand([40, 1, 5], "float32")]);
    // [n,k] against [n,1] and [1,k]: the output's rows come from a column and a row.
    sameAsCopies(mx.subtract, [rand([1000, 6], "float32"), rand([1000, 1], "float32")]);
    sameAsCopies(mx.subtract, [rand([1000, 1], "float32"), rand([1, 6], "float32")]);
    // A broadcast operand whose rows are themselves strided (a column of a transpose).
    sameAsCopies(mx.multiply, [rand([500, 8], "float32"), T(rand([3, 500], "float32")).index(mx.sl(), mx.sl(1, 2))]);
    // The where() condition broadcast along short rows.
    sameAsCopies(mx.where, [rand([300, 4, 1], "bool"), rand([300, 4, 3], "float32"), rand([300, 4, 3], "float32")]);
  });

  for (const d of ["int8", "float16", "bfloat16", "bool", "complex64", "float64", "uint16"] as const) {
    test(`${d}: [n,16,3] and [n,16,4] against [n,16,1], and where`, () => {
      for (const k of [3, 4]) {
        const a = rand([50, 16, k], d);
        const b = rand([50, 16, 1], d);
        if (d === "bool") sameAsCopies(mx.logicalXor, [a, b]);
        else {
          sameAsCopies(mx.multiply, [a, b]);
          sameAsCopies(mx.subtract, [b, a]);
        }
        sameAsCopies(mx.notEqual, [a, b]);
        sameAsCopies(mx.where, [rand([50, 16, k], "bool"), a, b]);
        sameAsCopies(mx.where, [rand([50, 16, 1], "bool"), b, a]);
      }
    });
  }
});
