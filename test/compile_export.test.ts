// mx.exporter / FunctionExporter and importFunction's choice among several traces. The
// behaviours and messages were checked against real MLX 0.32.4 (test/fixtures/compile/
// mlx_exporter_probe.py prints them); the values are small enough to check by hand.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as mx from "../src/index.ts";
import { liveCompiledTapes } from "../src/compile.ts";
import { expectMlxError } from "./util.ts";

const dir = mkdtempSync(join(tmpdir(), "mlxb-export-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fixtures = join(import.meta.dir, "fixtures", "compile");

const noMatch = "[import_function::call] No imported function found which matches the given positional and keyword arguments. Possible functions include:\n";

describe("exporter", () => {
  test("several traces in one file; a call runs the one matching its arguments (MLX's doc example)", () => {
    const file = join(dir, "sum.mlxfn");
    const fun = (...xs: mx.Array[]) => xs.reduce((a, b) => mx.add(a, b));
    {
      using ex = mx.exporter(file, fun);
      ex(mx.array(1));
      ex(mx.array(1), mx.array(2));
      ex(mx.array(1), mx.array(2), mx.array(3));
      expect(ex.traceCount).toBe(3);
    }
    const f = mx.importFunction(file);
    expect(f.traceCount).toBe(3);
    expect(f(mx.array(5))[0]!.item()).toBe(5);
    expect(f(mx.array(5), mx.array(6))[0]!.item()).toBe(11);
    expect(f(mx.array(5), mx.array(6), mx.array(7))[0]!.item()).toBe(18);
    // Four arguments, or a float32 scalar: no trace (MLX lists the traces, then the call).
    const e = expectMlxError(() => f(mx.array(5), mx.array(5), mx.array(5), mx.array(5)), /^\[import_function::call\] No imported function found/);
    expect(e.message).toContain(" 3. Function with 3 positional inputs and 0 keyword inputs:\n   1: () int32\n   2: () int32\n   3: () int32\n");
    expect(e.message.endsWith("\nCalled with 4 positional inputs and 0 keyword inputs:\n  1: () int32\n  2: () int32\n  3: () int32\n  4: () int32\n")).toBe(true);
    expectMlxError(() => f(mx.array(1.5)), /Called with 1 positional inputs and 0 keyword inputs:\n  1: \(\) float32\n$/);
    f.dispose();
  });

  test("traces differing in shape; MLX's message for a shape it was not traced for", () => {
    const file = join(dir, "shapes.mlxfn");
    const ex = mx.exporter(file, (x: mx.Array) => mx.multiply(x, 2));
    ex(mx.zeros([2]));
    ex(mx.zeros([3]));
    ex.close();
    const g = mx.importFunction(file);
    expect(g(mx.ones([2]))[0]!.tolist()).toEqual([2, 2]);
    expect(g(mx.ones([3]))[0]!.tolist()).toEqual([2, 2, 2]);
    // The whole message, as MLX 0.32.4 prints it.
    const want = `${noMatch} 1. Function with 1 positional inputs and 0 keyword inputs:\n   1: (2) float32\n 2. Function with 1 positional inputs and 0 keyword inputs:\n   1: (3) float32\n\nCalled with 1 positional inputs and 0 keyword inputs:\n  1: (4) float32\n`;
    expect(expectMlxError(() => g(mx.ones([4])), /No imported function/).message).toBe(want);
    expectMlxError(() => g(mx.ones([3], mx.int32)), /Called with 1 positional inputs and 0 keyword inputs:\n  1: \(3\) int32\n$/);
    g.dispose();
  });

  test("a second trace with the same signature, and a call after close, fail as in MLX", () => {
    const file = join(dir, "dup.mlxfn");
    const ex = mx.exporter(file, (x: mx.Array) => mx.negative(x));
    ex(mx.zeros([3]));
    expectMlxError(() => ex(mx.ones([3])), /^\[export_function\] Attempting to export a function twice with the same signature is not allowed\.$/);
    expect(ex.traceCount).toBe(1);
    ex(mx.zeros([3], mx.int32)); // another dtype is another signature
    expect(ex.closed).toBe(false);
    ex.close();
    expect(ex.closed).toBe(true);
    ex.close(); // idempotent
    expectMlxError(() => ex(mx.zeros([4])), /^\[export_function\] Attempting to write after exporting is closed\.$/);
    const g = mx.importFunction(file);
    expect(g.traceCount).toBe(2);
    expect(g(mx.array([1, -2, 3], mx.int32))[0]!.tolist()).toEqual([-1, 2, -3]);
    g.dispose();
  });

  test("shapeless: traces are told apart by dtype and rank (MLX 0.32 allows (2) and (2,3) float32)", () => {
    const file = join(dir, "shapeless.mlxfn");
    {
      using ex = mx.exporter(file, (x: mx.Array) => mx.multiply(x, 2), { shapeless: true });
      ex(mx.zeros([2]));
      ex(mx.zeros([2, 3]));
      ex(mx.zeros([2, 3], mx.int32));
      expectMlxError(() => ex(mx.zeros([7, 7])), /twice with the same signature/);
    }
    const g = mx.importFunction(file);
    expect(g(mx.ones([5]))[0]!.tolist()).toEqual([2, 2, 2, 2, 2]);
    expect(g(mx.ones([3, 2]))[0]!.tolist()).toEqual([[2, 2], [2, 2], [2, 2]]);
    expect(g(mx.array([[1, 2, 3]], mx.int32))[0]!.tolist()).toEqual([[2, 4, 6]]);
    const want = `${noMatch} 1. Function with 1 positional inputs and 0 keyword inputs:\n   1: (2) float32\n 2. Function with 1 positional inputs and 0 keyword inputs:\n   1: (2,3) float32\n 3. Function with 1 positional inputs and 0 keyword inputs:\n   1: (2,3) int32\n\nCalled with 1 positional inputs and 0 keyword inputs:\n  1: (7) int32\n`;
    expect(expectMlxError(() => g(mx.ones([7], mx.int32)), /No imported function/).message).toBe(want);
    g.dispose();
  });

  test("a trailing plain object plays Python's keyword arguments; another tree does not match", () => {
    const file = join(dir, "kw.mlxfn");
    const f = (x: mx.Array, o: { y: mx.Array }) => mx.add(x, mx.multiply(o.y, 10));
    mx.exportFunction(file, f, mx.array([1, 2]), { y: mx.array(3) });
    const g = mx.importFunction(file);
    expect(g(mx.array([1, 2]), { y: mx.array(3) })[0]!.tolist()).toEqual([31, 32]);
    expect(g(mx.array([0, 5]), { y: mx.array(-1) })[0]!.tolist()).toEqual([-10, -5]);
    const e = expectMlxError(() => g(mx.array([1, 2]), { z: mx.array(3) }), /No imported function/);
    expect(e.message).toContain(' 1. Function with 1 positional inputs and 1 keyword inputs:\n   1: (2) int32\n   "y": () int32\n');
    expect(e.message.endsWith('Called with 1 positional inputs and 1 keyword inputs:\n  1: (2) int32\n  "z": () int32\n')).toBe(true);
    expectMlxError(() => g(mx.array([1, 2]), mx.array(3)), /Called with 2 positional inputs and 0 keyword inputs/);
    g.dispose();
  });

  test("constants (numbers in the arguments) are part of the signature", () => {
    const file = join(dir, "consts.mlxfn");
    {
      using ex = mx.exporter(file, (x: mx.Array, k: number) => mx.multiply(x, k));
      ex(mx.zeros([2]), 3);
      ex(mx.zeros([2]), 5);
    }
    const g = mx.importFunction(file);
    const x = mx.array([1, 2], mx.float32);
    expect(g(x, 3)[0]!.tolist()).toEqual([3, 6]);
    expect(g(x, 5)[0]!.tolist()).toEqual([5, 10]);
    expectMlxError(() => g(x, 4), /No imported function/);
    g.dispose();
  });

  test("a constant captured by several traces is written once", () => {
    const n = 10000;
    const w = mx.arange(n, mx.float32); // 40000 bytes
    const f = (x: mx.Array) => mx.sum(mx.multiply(x, w), -1);
    const one = join(dir, "pool1.mlxfn");
    const two = join(dir, "pool2.mlxfn");
    mx.exportFunction(one, f, mx.ones([1, n]));
    {
      using ex = mx.exporter(two, f);
      ex(mx.ones([1, n]));
      ex(mx.ones([2, n]));
    }
    expect(statSync(one).size).toBeGreaterThan(4 * n);
    expect(statSync(two).size).toBeLessThan(statSync(one).size + 4 * n); // not twice the weights
    const g = mx.importFunction(two);
    // Row 0 is zeros; row 1 sums 0 + 1 + ... + (n - 1) = n (n - 1) / 2.
    const x = mx.concatenate([mx.zeros([1, n]), mx.ones([1, n])]);
    const [y] = g(x);
    expect(y!.shape).toEqual([2]);
    expect(y!.index(0).item()).toBe(0);
    expect(y!.index(1).item()).toBeCloseTo((n * (n - 1)) / 2, -2);
    g.dispose();
  });

  test("metadata is saved and read back (MLX's metadata / return_metadata)", () => {
    const file = join(dir, "meta.mlxfn");
    mx.exportFunction({ path: file, metadata: '{"a":1}' }, (x: mx.Array) => mx.exp(x), mx.zeros([2]));
    const [f, md] = mx.importFunction(file, { returnMetadata: true });
    expect(md).toBe('{"a":1}');
    expect(f.metadata).toBe('{"a":1}');
    f.dispose();
    const file2 = join(dir, "meta2.mlxfn");
    {
      using ex = mx.exporter(file2, (x: mx.Array) => mx.exp(x), { metadata: "héllo" });
      ex(mx.zeros([2]));
    }
    expect(mx.importFunction(file2, { returnMetadata: true })[1]).toBe("héllo");
    const file3 = join(dir, "meta3.mlxfn");
    mx.exportFunction(file3, (x: mx.Array) => mx.exp(x), mx.zeros([2]));
    expect(mx.importFunction(file3, { returnMetadata: true })[1]).toBe("");
    expectMlxError(() => mx.exporter(file3, (x: mx.Array) => x, { metadata: "a\0b" }), /^\[exporter\] The metadata cannot contain a NUL character\.$/);
  });

  test("a shapeless exported integer index replays as MLX's gather (a[-1] traced on 5 gives a[4] on 8)", () => {
    const file = join(dir, "index.mlxfn");
    mx.exportFunction({ path: file, shapeless: true }, (x: mx.Array) => x.index(-1), mx.arange(5));
    const g = mx.importFunction(file);
    expect(g(mx.multiply(mx.arange(8), 10))[0]!.item()).toBe(40);
    g.dispose();
  });

  test("a failing trace adds nothing; the file keeps the traces written before", () => {
    const file = join(dir, "fail.mlxfn");
    const ex = mx.exporter(file, (x: mx.Array) => {
      if (x.shape[0] === 3) throw new Error("boom");
      return mx.add(x, 1);
    });
    ex(mx.zeros([2]));
    expect(() => ex(mx.zeros([3]))).toThrow("boom");
    expect(ex.traceCount).toBe(1);
    ex(mx.zeros([4]));
    ex.close();
    const g = mx.importFunction(file);
    expect(g.traceCount).toBe(2);
    expect(g(mx.array([1, 2, 3, 4], mx.float32))[0]!.tolist()).toEqual([2, 3, 4, 5]);
    g.dispose();
  });

  test("tapes are freed by close and dispose", () => {
    const t0 = liveCompiledTapes();
    const file = join(dir, "live.mlxfn");
    const ex = mx.exporter(file, (x: mx.Array) => mx.sin(x));
    ex(mx.zeros([1]));
    ex(mx.zeros([2]));
    expect(liveCompiledTapes()).toBe(t0 + 2);
    ex.close();
    expect(liveCompiledTapes()).toBe(t0);
    const g = mx.importFunction(file);
    expect(liveCompiledTapes()).toBe(t0 + 2);
    g.dispose();
    expect(liveCompiledTapes()).toBe(t0);
    expectMlxError(() => g(mx.zeros([1])), /^\[import_function\] The function was disposed\.$/);
  });
});

describe("file format", () => {
  test("version 1 files (written before format 2, test/fixtures/compile/make_v1.ts) still load", () => {
    // v1.mlxfn: f(x, { b }) = x * [1, 2, 3] + b.
    const [f, md] = mx.importFunction(join(fixtures, "v1.mlxfn"), { returnMetadata: true });
    expect(md).toBe("");
    expect(f.traceCount).toBe(1);
    expect(f(mx.array([1, 1, 2], mx.float32), { b: mx.array(10, mx.float32) })[0]!.tolist()).toEqual([11, 12, 16]);
    // A version 1 trace has no signature: it matches on its arrays alone (the tree is not known).
    expect(f(mx.array([1, 1, 2], mx.float32), mx.array(10, mx.float32))[0]!.tolist()).toEqual([11, 12, 16]);
    expectMlxError(() => f(mx.array([1, 1], mx.float32), mx.array(10, mx.float32)), /No imported function/);
    f.dispose();
    // v1_shapeless.mlxfn: x * 2, shapeless.
    const g = mx.importFunction(join(fixtures, "v1_shapeless.mlxfn"));
    expect(g(mx.array([1, 2, 3, 4], mx.float32))[0]!.tolist()).toEqual([2, 4, 6, 8]);
    g.dispose();
  });

  test("format 2 files are validated: every truncation, no trace, a NUL in a signature", () => {
    const file = join(dir, "v2.mlxfn");
    const c = mx.array([1, 2], mx.float32);
    {
      using ex = mx.exporter(file, (x: mx.Array) => mx.add(x, c), { metadata: "m" });
      ex(mx.zeros([2]));
      ex(mx.zeros([3, 2]));
    }
    const good = readFileSync(file);
    expect(good.readUInt32LE(8)).toBe(2);
    const bad = (name: string, data: Uint8Array, re: RegExp) => {
      const p = join(dir, name);
      writeFileSync(p, data);
      expect(expectMlxError(() => mx.importFunction(p), re).message).toContain(p);
    };
    for (let n = 0; n < good.length; n++) bad("cut.mlxfn", good.subarray(0, n), /^\[import_function\] The file .* (is truncated|is not an mlx-bun function file|is malformed)/);
    // Header: magic 8, version 4, flags 4, metadata (u32 1, "m"), constants (u32 1, ...).
    expect(good.readUInt32LE(16)).toBe(1);
    const nTracesAt = (() => {
      let p = 21;
      const nc = good.readUInt32LE(p);
      expect(nc).toBe(1); // the [1, 2] constant, shared by both traces
      p += 4;
      p += 1 + good[p]!; // dtype name
      const nd = good[p]!;
      p += 1 + 4 * nd;
      const nb = Number(good.readBigUInt64LE(p));
      return p + 8 + nb;
    })();
    expect(good.readUInt32LE(nTracesAt)).toBe(2);
    const zero = Buffer.from(good.subarray(0, nTracesAt + 4));
    zero.writeUInt32LE(0, nTracesAt);
    bad("zero.mlxfn", zero, /is malformed: a file with no trace/);
    const nul = Buffer.from(good);
    nul[nTracesAt + 8] = 0; // the first byte of the first signature
    bad("nul.mlxfn", nul, /is malformed: a signature holds a NUL byte/);
  });
});

// Ports of MLX's python/tests/test_export_import.py exporter cases (keyword arguments become a
// trailing plain object).
describe("MLX test_export_import cases", () => {
  test("test_export_variable_inputs", () => {
    const file = join(dir, "variable.mlxfn");
    const fun = (x: mx.Array, y: mx.Array, kw?: { z: mx.Array }) => (kw === undefined ? mx.add(x, y) : mx.add(mx.add(x, y), kw.z));
    const ex = mx.exporter(file, fun);
    {
      using e = ex;
      e(mx.array([1, 2, 3]), mx.array([1, 1, 1]));
      e(mx.array([1, 2, 3]), mx.array([1, 1, 1]), { z: mx.array([2]) });
    }
    expectMlxError(() => ex(mx.array([1, 2, 3, 4]), mx.array([1, 1, 1, 1])), /after exporting is closed/);
    const f = mx.importFunction(file);
    expect(f(mx.array([1, 2, 3]), mx.array([1, 1, 1]))[0]!.tolist()).toEqual([2, 3, 4]);
    expect(f(mx.array([1, 2, 3]), mx.array([1, 1, 1]), { z: mx.array([2]) })[0]!.tolist()).toEqual([4, 5, 6]);
    expectMlxError(() => f(mx.array([1, 2, 3, 4]), mx.array([1, 1, 1, 1])), /No imported function/);
    f.dispose();

    // A large constant: five traces, the file holds it once (< its size + 8192 bytes, as MLX checks).
    const constant = mx.zeros([16, 2048]);
    mx.eval(constant);
    const many = (...args: mx.Array[]) => args.reduce((a, b) => mx.add(a, b), constant);
    const file2 = join(dir, "constant.mlxfn");
    {
      using e = mx.exporter(file2, many);
      for (let i = 0; i < 5; i++) e(...Array.from({ length: i }, () => mx.array(1)));
    }
    expect(statSync(file2).size).toBeLessThan(constant.nbytes + 8192);
    const g = mx.importFunction(file2);
    expect(g.traceCount).toBe(5);
    expect(mx.sum(g(mx.array(1), mx.array(2))[0]!).item()).toBe(3 * 16 * 2048);
    g.dispose();
  });

  test("test_export_import_shapeless", () => {
    const file = join(dir, "shapeless-sum.mlxfn");
    const fun = (...args: mx.Array[]) => args.reduce((a, b) => mx.add(a, b));
    {
      using e = mx.exporter(file, fun, { shapeless: true });
      e(mx.array(1));
      e(mx.array(1), mx.array(2));
      e(mx.array(1), mx.array(2), mx.array(3));
    }
    const f2 = mx.importFunction(file);
    expect(f2(mx.array(1))[0]!.item()).toBe(1);
    expect(f2(mx.array(1), mx.array(1))[0]!.item()).toBe(2);
    expect(f2(mx.array(1), mx.array(1), mx.array(1))[0]!.item()).toBe(3);
    expectMlxError(() => f2(mx.array(10), mx.array([5, 10, 20])), /No imported function/); // another rank
    f2.dispose();
  });

  test("test_basic_export_import: wrong calls fail", () => {
    const file = join(dir, "basic.mlxfn");
    const one = mx.array(1, mx.float32);
    mx.exportFunction(file, (x: mx.Array, y: mx.Array) => mx.add(x, y), one, one);
    const f = mx.importFunction(file);
    expectMlxError(() => f(one, 1.0), /No imported function/);
    expectMlxError(() => f(one, one, one), /No imported function/);
    expectMlxError(() => f(one, [one]), /No imported function/);
    expect(f(mx.array(1.5), mx.array(2, mx.float32))[0]!.item()).toBe(3.5);
    f.dispose();
  });
});
