// Batched factorizations (engine/prims/linalg.zig eval: one LAPACK call per matrix over a range
// of the batch): each matrix must get the same bits as when it is factorized alone (the same
// LAPACK call on the same data), the results must satisfy their defining identities, and a
// failure in any matrix of the batch must give the single matrix's error.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";

const L = mx.linalg;

function randn(shape: number[], seed: number, dtype: mx.DtypeName = "float32"): mx.Array {
  const key = mx.random.key(seed);
  if (dtype === "complex64") {
    const [k1, k2] = mx.random.split(key);
    return mx.add(mx.random.normal(shape, { key: k1 }), mx.multiply(mx.random.normal(shape, { key: k2 }), { re: 0, im: 1 }));
  }
  return mx.astype(mx.random.normal(shape, { key }), dtype);
}

function bits(a: mx.Array): number[] {
  const t = a.toTypedArray() as Float32Array | Float64Array;
  return Array.from(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
}

describe("batched factorizations", () => {
  const B = 7;
  const n = 12;
  for (const dtype of ["float32", "float64", "complex64"] as const) {
    test(`${dtype}: every matrix of a batch equals the matrix alone`, () => {
      const a = randn([B, n, n], 3, dtype);
      // Symmetric positive definite: a a^H + n I.
      const ah = dtype === "complex64" ? mx.conjugate(mx.swapaxes(a, -1, -2)) : mx.swapaxes(a, -1, -2);
      const spd = mx.add(mx.matmul(a, ah), mx.multiply(mx.eye(n, n, 0, dtype === "complex64" ? "float32" : dtype), n));
      const fns: [string, (x: mx.Array) => mx.Array, boolean][] = [
        ["svdvals", (x) => L.svd(x, false), false],
        ["eigvals", (x) => L.eigvals(x), false],
        ["eigvalsh", (x) => L.eigvalsh(x), true],
        ["eigh vectors", (x) => L.eigh(x)[1], true],
      ];
      if (dtype !== "complex64") {
        fns.push(["inv", (x) => L.inv(x), false], ["cholesky", (x) => L.cholesky(x), true], ["qr R", (x) => L.qr(x)[1], false], ["lu U", (x) => L.lu(x)[2], false], ["det", (x) => L.det(x), false]);
      }
      for (const [name, f, needsSpd] of fns) {
        const x = needsSpd ? spd : a;
        const all = f(x);
        for (const i of [0, 3, B - 1]) expect([name, i, bits(all.index(i))]).toEqual([name, i, bits(f(x.index(i)))]);
      }
      if (dtype !== "complex64") {
        // inv(A) A = I for every matrix.
        const err = mx.max(mx.abs(mx.subtract(mx.matmul(L.inv(a), a), mx.eye(n, n, 0, dtype)))).item() as number;
        expect(err).toBeLessThan(dtype === "float64" ? 1e-10 : 1e-3);
      }
    });
  }
  test("a singular matrix anywhere in the batch fails with the single matrix's message", () => {
    const a = randn([6, n, n], 5);
    const bad = a.at(4).set(mx.zeros([n, n]));
    expect(() => mx.eval(L.inv(bad))).toThrow("[Inverse::eval_cpu] LU factorization failed with error code");
    expect(() => mx.eval(L.inv(bad.index(4)))).toThrow("[Inverse::eval_cpu] LU factorization failed with error code");
    // The graph stays usable.
    expect(mx.allclose(mx.matmul(L.inv(a), a), mx.broadcastTo(mx.eye(n), [6, n, n]), { atol: 1e-3 }).item()).toBe(true);
  });
});
