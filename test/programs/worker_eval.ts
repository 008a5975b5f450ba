// A Bun Worker for test/concurrency.test.ts: builds and evaluates its own arrays (on its own
// stream, with asyncEval and eval, a custom-function gradient whose rule is this Worker's JS)
// and posts the results; "hold" starts a long evaluation and reports that it is in flight, so
// the parent can terminate the Worker mid-eval.
import * as mx from "../../src/index.ts";

declare const self: Worker;

self.onmessage = async (ev: MessageEvent) => {
  const { id, n, mode } = ev.data as { id: number; n: number; mode: "work" | "hold" | "drain" };
  try {
    if (mode === "drain") {
      // Drains the engine's queue of released host buffers: only this Worker's own may come out.
      postMessage({ id, wrapped: mx.getWrappedHostBufferCount() });
      return;
    }
    if (mode === "hold") {
      const big = mx.sum(mx.sqrt(mx.add(mx.arange(0, 1 << 24, 1, mx.float32), id)));
      const p = mx.asyncEval(big);
      postMessage({ id, inFlight: true });
      await p;
      postMessage({ id, done: big.item() });
      return;
    }
    const s = mx.newStream(mx.cpu);
    const sums: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = mx.add(mx.arange(0, 1000, 1, mx.float32), id * 1000 + i);
      const y = mx.sum(mx.multiply(x, 2));
      if (i % 2 === 0) await mx.asyncEval(y, { stream: s });
      else mx.eval(y);
      sums.push(y.item() as number);
    }
    // A custom function: its vjp rule is JS in this Worker, called on this Worker's thread.
    const f = mx.customFunction((x: mx.Array) => mx.sin(x));
    f.vjp((_primals, cotangent) => [mx.multiply(cotangent as mx.Array, 3 + id)]);
    const g = mx.grad((x: mx.Array) => mx.sum(f(x)))(mx.ones([4])) as mx.Array;
    const grads = Array.from(g.toTypedArray() as Float32Array);
    postMessage({ id, sums, grads });
  } catch (e) {
    postMessage({ id, error: String((e as Error)?.stack ?? e) });
  }
};
