// Memory limits: mx.setMemoryLimit is enforced at eval (after the allocator frees its cache),
// the failure is an out-of-memory MlxError naming the op, nothing already computed is
// corrupted, a graph that failed part-way computes correctly once memory allows, async
// evaluations fail the same way, and absurd sizes (shape products past the index range,
// 2^62-byte arrays) fail cleanly when the op is built or evaluated. Plus the engine's leak
// check (mlxb_debug_leak_report) at a quiescent point.
import { afterEach, describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { lib } from "../ffi/lib";
import { expectMlxError } from "./util";

const MiB = 2 ** 20;
const defaultLimit = mx.getMemoryLimit();
afterEach(() => {
  mx.setMemoryLimit(defaultLimit);
});

describe("setMemoryLimit is enforced", () => {
  // (An earlier test file may leave a 64 MiB block in the cache: the limit holds for cached blocks too.)
  test("past the limit: out-of-memory MlxError at eval, cache cleared first, engine usable, nothing corrupted", () => {
    Bun.gc(true);
    // Keep an evaluated array and fill the allocator's cache.
    const keep = mx.multiply(mx.arange(0, 1000, 1, mx.float32), 3);
    mx.eval(keep);
    const before = Array.from(keep.toTypedArray() as Float32Array);
    const tmp = Array.from({ length: 4 }, () => mx.arange(0, MiB / 4, 1, mx.float32));
    mx.eval(...tmp);
    mx.dispose(tmp);
    expect(mx.getCacheMemory()).toBeGreaterThanOrEqual(4 * MiB);

    const big = mx.add(mx.arange(0, 16 * MiB, 1, mx.float32), 1); // 64 MiB
    mx.setMemoryLimit(mx.getActiveMemory() + 8 * MiB);
    const e = expectMlxError(() => mx.eval(big), /^\[arange\] Out of memory: allocating \d+ bytes would exceed the memory limit of \d+ bytes/);
    expect(e.codeName).toBe("out_of_memory");
    // The allocator gave its cache back before failing. (Below the 4 MiB filled above rather than
    // 0: a GC finalizer may free a small array of an earlier test into the cache meanwhile.)
    expect(mx.getCacheMemory()).toBeLessThan(MiB);
    expect(big.evaluated).toBe(false);
    // Still usable under the limit, and what was computed is intact.
    expect(mx.sum(mx.arange(100)).item()).toBe(4950);
    expect(Array.from(keep.toTypedArray() as Float32Array)).toEqual(before);
    // Lift the limit: the failed graph computes, correctly.
    mx.setMemoryLimit(defaultLimit);
    mx.eval(big);
    const v = big.index(mx.sl(-3)).tolist();
    expect(v).toEqual([16 * MiB - 2, 16 * MiB - 1, 16 * MiB]);
    mx.dispose(big, keep);
  });

  test("a graph that fails part-way (early nodes fit, a later one does not) resumes correctly", () => {
    const a = mx.arange(0, MiB, 1, mx.float32); // 4 MiB: fits
    const b = mx.multiply(a, 2); // 4 MiB (donation may reuse a's buffer)
    const wide = mx.broadcastTo(mx.expandDims(b, 0), [8, MiB]); // a view
    const c = mx.add(wide, mx.expandDims(mx.arange(0, 8, 1, mx.float32), 1)); // 32 MiB: does not fit
    const s = mx.sum(c, { axis: 1 });
    mx.setMemoryLimit(mx.getActiveMemory() + 12 * MiB);
    expectMlxError(() => mx.eval(s), /Out of memory/);
    mx.setMemoryLimit(defaultLimit);
    const got = Array.from(s.toTypedArray() as Float32Array);
    // sum over k < 2^20 of (2k + r) = 2^20 (2^20 - 1) + r 2^20
    got.forEach((x, r) => expect(x).toBeCloseTo(MiB * (MiB - 1) + r * MiB, -7));
    mx.dispose(a, b, wide, c, s);
  });

  test("asyncEval past the limit rejects with the same error; later work runs", async () => {
    const big = mx.multiply(mx.ones([16 * MiB]), 2);
    mx.setMemoryLimit(mx.getActiveMemory() + 4 * MiB);
    let err: unknown;
    await mx.asyncEval(big).catch((e) => (err = e));
    expect(err).toBeInstanceOf(mx.MlxError);
    expect((err as mx.MlxError).codeName).toBe("out_of_memory");
    expect((err as Error).message).toMatch(/Out of memory/);
    const small = mx.sum(mx.arange(10));
    await mx.asyncEval(small);
    expect(small.item()).toBe(45);
    mx.setMemoryLimit(defaultLimit);
    await mx.asyncEval(big);
    expect(mx.max(big).item()).toBe(2);
    big.dispose();
  });

  test("repeated failures leak nothing: active memory returns to where it was", () => {
    mx.clearCache();
    const m0 = mx.getActiveMemory();
    const h0 = mx.getLiveHandleCount();
    mx.setMemoryLimit(m0 + 2 * MiB);
    for (let i = 0; i < 50; i++) {
      using x = mx.add(mx.ones([MiB]), i); // 4 MiB
      expect(() => mx.eval(x)).toThrow(/Out of memory/);
    }
    mx.setMemoryLimit(defaultLimit);
    Bun.gc(true);
    expect(mx.getActiveMemory()).toBeLessThanOrEqual(m0);
    expect(mx.getLiveHandleCount()).toBeLessThanOrEqual(h0);
  });
});

describe("absurd sizes fail cleanly", () => {
  test("shape products past the index range fail when the op is built", () => {
    expectMlxError(() => mx.zeros([2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1]), /^\[full\] Shape .* is too large/);
    expectMlxError(() => mx.broadcastTo(mx.array(1), [2 ** 31 - 1, 2 ** 31 - 1, 4]), /too large/);
    expectMlxError(() => mx.reshape(mx.arange(6), [2 ** 31 - 1, 2 ** 31 - 1]), /^\[reshape\]/);
  });

  test("2^62 bytes: refused when built or at eval, even with the limit lifted", () => {
    // 2^59 float64 elements: the shape rules refuse it when the op is built
    expectMlxError(() => mx.zeros([2 ** 29, 2 ** 30], mx.float64), /^\[full\] Shape \(536870912,1073741824\) is too large/);
    // 2^31 x 2^24 bytes = 2^55 elements of float64 pass the shape rules: the allocation is refused
    const huge = mx.add(mx.zeros([2 ** 31 - 1, 2 ** 24], mx.float64), 1); // (zeros alone is a broadcast view)
    mx.setMemoryLimit(2 ** 53);
    const e = expectMlxError(() => mx.eval(huge), /^\[add\] (Out of memory|Attempting to allocate)/);
    expect(e.codeName).toBe("out_of_memory");
    expect(huge.evaluated).toBe(false);
    huge.dispose();
    expect(mx.sum(mx.arange(5)).item()).toBe(10);
  });

  test("a huge broadcast mask in masked_scatter fails at the limit without scanning it first", () => {
    // 2^31 - 1 bool elements (a view of one): the output allocation is what fails, quickly.
    const m = mx.repeat(mx.array(true), 2 ** 31 - 1);
    const out = mx.maskedScatter(m, m, mx.array(false));
    mx.setMemoryLimit(mx.getActiveMemory() + 64 * MiB);
    const t0 = performance.now();
    expectMlxError(() => mx.eval(out), /^\[masked_scatter\] Out of memory/);
    expect(performance.now() - t0).toBeLessThan(2000);
    mx.dispose(m, out);
  });
});

describe("leak check", () => {
  test("every live node is reachable from a handle; every allocated byte belongs to one", () => {
    const report = () => JSON.parse(String(lib.mlxb_debug_leak_report())) as { [k in "live_nodes" | "leaked_nodes" | "unaccounted_bytes"]: number };
    Bun.gc(true);
    const r0 = report();
    const xs = mx.tidy(() => Array.from({ length: 10 }, (_, i) => mx.sum(mx.multiply(mx.arange(0, 1000, 1, mx.float32), i))));
    mx.eval(xs.slice(0, 5)); // half evaluated, half still graphs
    const r1 = report();
    expect(r1.live_nodes).toBeGreaterThan(r0.live_nodes);
    expect(r1.leaked_nodes).toBe(r0.leaked_nodes);
    mx.dispose(xs);
    const r2 = report();
    expect(r2.live_nodes).toBe(r0.live_nodes);
    expect(r2.leaked_nodes).toBe(r0.leaked_nodes);
    expect(r2.unaccounted_bytes).toBeLessThanOrEqual(r0.unaccounted_bytes);
  });
});
