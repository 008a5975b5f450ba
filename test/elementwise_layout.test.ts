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
