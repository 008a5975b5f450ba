// The mlx-bun demo: build a few lazy arrays, evaluate them, print them as MLX would.
// (A later version trains a model; for now it shows arrays, dtypes, creation and memory.)
import * as mx from "../src/index.ts";

console.log(`mlx-bun on ${mx.defaultDevice()}, GPU available: ${mx.isAvailable(mx.gpu)}\n`);

using a = mx.array([[1, 2, 3], [4, 5, 6]]);
console.log("mx.array([[1, 2, 3], [4, 5, 6]])\n" + a + "\n");

const r = mx.tidy(() => {
  const x = mx.linspace(0, 1, 5);
  const b = mx.arange(10);
  const e = mx.eye(3, null, 1, mx.int32);
  const l = mx.tril(mx.ones([3, 4]));
  const h = mx.array([0.1, 1.5, -2.25]).astype(mx.bfloat16);
  mx.eval(x, b, e, l, h); // nothing is computed until here
  for (const [label, v] of [
    ["mx.linspace(0, 1, 5)", x],
    ["mx.arange(10)", b],
    ["mx.eye(3, null, 1, mx.int32)", e],
    ["mx.tril(mx.ones([3, 4]))", l],
    ["mx.array([0.1, 1.5, -2.25]).astype(mx.bfloat16)", h],
  ] as const) {
    console.log(label + "\n" + v + "\n");
  }
  return mx.full([2, 2], 7.5);
});
console.log("returned from tidy: " + r);
console.log(`\nlive arrays: ${mx.getLiveHandleCount()}, active memory: ${mx.getActiveMemory()} bytes, peak: ${mx.getPeakMemory()} bytes`);
