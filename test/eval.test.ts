// Evaluation, asynchronous evaluation, devices and streams.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { expectMlxError } from "./util";


/** A graph whose evaluation takes a while: several full passes over 16M elements. */
function heavy(): mx.Array {
  return mx.tidy(() => {
    let x = mx.arange(0, 2 ** 24, 1, mx.float32);
    for (const d of [mx.float64, mx.float16, mx.float32, mx.bfloat16, mx.float64, mx.int32]) x = x.astype(d);
    return x;
  });
}

describe("eval", () => {
  test("arrays are lazy until evaluated", () => {
    const a = mx.arange(5);
    expect(a.evaluated).toBe(false);
    mx.eval(a);
    expect(a.evaluated).toBe(true);
    // Reading evaluates implicitly.
    const b = mx.linspace(0, 1, 3);
    expect(b.evaluated).toBe(false);
    expect(b.tolist()).toEqual([0, 0.5, 1]);
    expect(b.evaluated).toBe(true);
  });

  test("eval takes arrays inside objects, lists and Maps; other values are ignored", () => {
    const tree = { a: mx.ones([2]), rest: [mx.zeros([3]), { deep: mx.eye(2) }, 7, "x", null], m: new Map([["k", mx.arange(3)]]) };
    mx.eval(tree, 5, undefined);
    expect(tree.a.evaluated && (tree.rest[0] as mx.Array).evaluated && tree.m.get("k")!.evaluated).toBe(true);
    mx.eval(); // nothing to do
  });

  test("a long chain evaluates (no recursion in the engine)", () => {
    const out = mx.tidy(() => {
      let x = mx.arange(4);
      for (let i = 0; i < 20_000; i++) x = x.astype(i % 2 === 0 ? mx.float32 : mx.int32);
      return x;
    });
    expect(out.tolist()).toEqual([0, 1, 2, 3]);
    out.dispose();
  });
});

describe("asyncEval", () => {
  test("returns at once and keeps the event loop running", async () => {
    const x = heavy();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await mx.asyncEval(x);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0); // timers fired while the engine worked
    expect(x.evaluated).toBe(true);
    const v = x.toTypedArray() as Int32Array;
    expect(v[0]).toBe(0);
    expect(v[1000]).toBe(1000);
    x.dispose();
  });

  test("JS can build on and read arrays that are still being computed", async () => {
    const x = heavy();
    const pending = mx.asyncEval(x);
    const y = x.astype(mx.float32); // depends on an in-flight node
    const first = (y.toTypedArray() as Float32Array)[7]; // waits for x, then computes y
    expect(first).toBe(7);
    await pending;
    mx.dispose(x, y);
  });

  test("a handle may be dropped while its evaluation is in flight", async () => {
    const x = heavy();
    const p = mx.asyncEval(x);
    x.dispose();
    await p;
  });

  test("failures reject with the engine's error and leave the arrays retryable", async () => {
    const limit = mx.getMemoryLimit();
    const big = mx.arange(0, 2 ** 26, 1, mx.float64); // 512 MiB
    mx.setMemoryLimit(mx.getActiveMemory() + 2 ** 20);
    let err: unknown;
    try {
      await mx.asyncEval(big);
    } catch (e) {
      err = e;
    } finally {
      mx.setMemoryLimit(limit);
    }
    expect(err).toBeInstanceOf(mx.MlxError);
    expect((err as mx.MlxError).codeName).toBe("out_of_memory");
    expect(big.evaluated).toBe(false);
    await mx.asyncEval(big);
    expect(big.evaluated).toBe(true);
    big.dispose();
  });

  test("synchronize waits for queued work; several evaluations may be in flight", async () => {
    const xs = [heavy(), mx.arange(10), heavy()];
    const ps = xs.map((x) => mx.asyncEval(x));
    mx.synchronize();
    expect(xs.every((x) => x.evaluated)).toBe(true);
    await Promise.all(ps);
    mx.dispose(xs);
  });
});

describe("devices and streams", () => {
  test("the CPU is the default device; the GPU is reported unavailable", () => {
    expect(mx.defaultDevice().toString()).toBe("Device(cpu, 0)");
    expect(mx.isAvailable(mx.cpu)).toBe(true);
    expect(mx.isAvailable(mx.gpu)).toBe(false);
    expectMlxError(() => mx.setDefaultDevice(mx.gpu), /^\[set_default_device\] Cannot set gpu device without gpu backend\.$/);
    expectMlxError(() => mx.newStream(mx.gpu), /^\[new_stream\] /);
    expectMlxError(() => mx.zeros([2], { stream: mx.gpu }), /gpu/);
    mx.setDefaultDevice(mx.cpu);
    expect(mx.defaultDevice().equals(mx.cpu)).toBe(true);
  });

  test("streams: default, new, scoped and explicit", async () => {
    const s0 = mx.defaultStream(mx.cpu);
    expect(s0.toString()).toBe(`Stream(Device(cpu, 0), ${s0.index})`);
    const s1 = mx.newStream(mx.cpu);
    expect(s1.index).not.toBe(s0.index);
    expect(s1.device.equals(mx.cpu)).toBe(true);
    const inside = mx.stream(s1, () => {
      expect(mx.defaultStream().equals(s1)).toBe(true);
      return mx.ones([3]);
    });
    expect(mx.defaultStream().equals(s0)).toBe(true);
    expect(inside.tolist()).toEqual([1, 1, 1]);
    // Work on a stream of its own runs on that stream's worker.
    const a = mx.arange(100, { stream: s1 });
    await mx.asyncEval(a, { stream: s1 });
    mx.synchronize(s1);
    expect((a.toTypedArray() as Int32Array)[99]).toBe(99);
    // The default stream can be set and restored.
    mx.setDefaultStream(s1);
    expect(mx.defaultStream().equals(s1)).toBe(true);
    mx.setDefaultStream(s0);
    expect(() => mx.stream(s1, () => { throw new Error("inner"); })).toThrow("inner");
    expect(mx.defaultStream().equals(s0)).toBe(true);
    expectMlxError(() => mx.setDefaultStream(new mx.Stream(100000, mx.cpu)), /^\[set_default_stream\] Invalid stream 100000\.$/);
    expectMlxError(() => mx.ones([2], { stream: new mx.Stream(99999, mx.cpu) }), /^\[full\] Invalid stream/);
    mx.dispose(inside, a);
  });
});
