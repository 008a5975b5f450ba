// Concurrency: many asyncEval calls in flight while JavaScript keeps running; Bun Workers, each
// with its own arrays, streams and custom-function rules, evaluating at the same time as the main
// thread; a Worker terminated while its evaluation is in flight. Engine threads never call into
// JavaScript: async results are polled (tickets), and custom rules run on the thread that runs
// the transform (the callback is registered per thread).
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";

describe("asyncEval from many call sites", () => {
  test("200 evaluations in flight on 4 streams while the event loop keeps running", async () => {
    const streams = [mx.defaultStream(mx.cpu), mx.newStream(mx.cpu), mx.newStream(mx.cpu), mx.newStream(mx.cpu)];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const jobs: Promise<number>[] = [];
    for (let i = 0; i < 200; i++) {
      // Shared inputs: several tasks wait for the same nodes (claimed by one, awaited by the others).
      const base = mx.arange(0, 20000, 1, mx.float32);
      const y = mx.sum(mx.multiply(mx.add(base, i), 0.5));
      jobs.push(mx.asyncEval(y, { stream: streams[i % 4]! }).then(() => y.item() as number));
      if (i % 50 === 0) await Bun.sleep(0);
    }
    // JS work in between: plain computation runs while the engine computes.
    let acc = 0;
    for (let i = 0; i < 1e6; i++) acc += i % 7;
    const results = await Promise.all(jobs);
    clearInterval(timer);
    expect(acc).toBe(2999997);
    results.forEach((r, i) => expect(r).toBeCloseTo(0.5 * (19999 * 20000 / 2 + 20000 * i), -2));
    expect(ticks).toBeGreaterThan(0);
  });

  test("one graph awaited from many promises at once: computed once, every promise resolves", async () => {
    const x = mx.arange(0, 1 << 20, 1, mx.float32);
    const ys = Array.from({ length: 32 }, (_, i) => mx.sum(mx.add(x, i)));
    const shared = mx.sum(mx.stack(ys));
    const ps = [...ys.map((y) => mx.asyncEval(y)), mx.asyncEval(shared), mx.asyncEval(shared), mx.asyncEval(...ys)];
    await Promise.all(ps);
    const base = (2 ** 20 - 1) * 2 ** 19;
    ys.forEach((y, i) => expect(y.item() as number).toBeCloseTo(base + i * 2 ** 20, -6));
  });

  test("an async evaluation that fails rejects its promise; the others still resolve", async () => {
    const bad = mx.take(mx.arange(4), mx.array([7]), 0); // out of bounds: fails at eval
    const good = mx.sum(mx.arange(100));
    const [r1, r2] = await Promise.allSettled([mx.asyncEval(bad), mx.asyncEval(good)]);
    expect(r1.status).toBe("rejected");
    expect(String((r1 as PromiseRejectedResult).reason)).toMatch(/out of bounds/);
    expect(r2.status).toBe("fulfilled");
    expect(good.item()).toBe(4950);
  });
});

type Reply = { id: number; sums?: number[]; grads?: number[]; error?: string; inFlight?: boolean; done?: number; wrapped?: number };

function startWorker(): Worker {
  return new Worker(new URL("./programs/worker_eval.ts", import.meta.url).href);
}
function next(w: Worker): Promise<Reply> {
  return new Promise((resolve, reject) => {
    w.onmessage = (e: MessageEvent) => resolve(e.data as Reply);
    w.onerror = (e) => reject(new Error(String((e as ErrorEvent).message ?? e)));
  });
}

describe("Bun Workers", () => {
  test("4 Workers and the main thread evaluate their own arrays at the same time, with correct results", async () => {
    const n = 40;
    const workers = Array.from({ length: 4 }, startWorker);
    const replies = workers.map((w, id) => {
      const p = next(w);
      w.postMessage({ id: id + 1, n, mode: "work" });
      return p;
    });
    // The main thread works too, including a custom function whose rule is main-thread JS.
    const f = mx.customFunction((x: mx.Array) => mx.sin(x));
    f.vjp((_p, ct) => [mx.multiply(ct as mx.Array, 100)]);
    const mains: number[] = [];
    for (let i = 0; i < n; i++) {
      const y = mx.sum(mx.arange(0, 1000, 1, mx.float32));
      await mx.asyncEval(y);
      mains.push(y.item() as number);
      const g = mx.grad((x: mx.Array) => mx.sum(f(x)))(mx.ones([2])) as mx.Array;
      expect(Array.from(g.toTypedArray() as Float32Array)).toEqual([100, 100]);
    }
    const got = await Promise.all(replies);
    for (const w of workers) w.terminate();
    expect(mains.every((v) => v === 499500)).toBe(true);
    for (const r of got) {
      expect(r.error).toBeUndefined();
      // sum of 2 * (k + id*1000 + i) for k < 1000
      expect(r.sums).toEqual(Array.from({ length: n }, (_, i) => 2 * (499500 + 1000 * (r.id * 1000 + i))));
      // each Worker's own rule: 3 + id
      expect(r.grads).toEqual([3 + r.id, 3 + r.id, 3 + r.id, 3 + r.id]);
    }
  }, 60_000);

  test("host memory wrapped without a copy is handed back to the thread that wrapped it, not to a Worker", async () => {
    const w = startWorker();
    const n0 = mx.getWrappedHostBufferCount();
    const data = Array.from({ length: 8 }, (_, i) => new Float32Array(16).fill(i));
    const arrays = data.map((d) => mx.array(d, { copy: false }));
    expect(mx.getWrappedHostBufferCount()).toBe(n0 + 8);
    mx.dispose(arrays); // the engine queues the 8 tokens for this thread
    const p = next(w);
    w.postMessage({ id: 1, n: 0, mode: "drain" }); // the Worker drains: it must not take ours
    expect((await p).wrapped).toBe(0);
    w.terminate();
    expect(mx.getWrappedHostBufferCount()).toBe(n0);
  });

  test("terminating a Worker while its evaluation is in flight does not crash the process", async () => {
    const workers = Array.from({ length: 3 }, startWorker);
    const started = workers.map((w, i) => {
      const p = next(w);
      w.postMessage({ id: i, n: 0, mode: "hold" });
      return p;
    });
    const r = await Promise.all(started);
    expect(r.every((x) => x.inFlight)).toBe(true);
    for (const w of workers) w.terminate();
    // The engine finishes (or drops) the orphaned work; this thread carries on.
    await Bun.sleep(50);
    mx.synchronize();
    const y = mx.sum(mx.arange(10));
    expect(y.item()).toBe(45);
    // A fresh Worker still works after the others were killed.
    const w = startWorker();
    const p = next(w);
    w.postMessage({ id: 9, n: 2, mode: "work" });
    const out = await p;
    w.terminate();
    expect(out.error).toBeUndefined();
    expect(out.sums).toEqual([2 * (499500 + 1000 * 9000), 2 * (499500 + 1000 * 9001)]);
  }, 60_000);
});
