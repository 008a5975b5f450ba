// Quantization options given explicitly as 0: MLX refuses them (or crashes); we refuse them with a
// message naming the op, where an absent option takes the mode's default. qqmm, as MLX's, takes
// an explicit 0 as the default.
import { expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { expectMlxError } from "./util";

test("an explicit group size or bit width of 0 is an error, not the default", () => {
  const w = mx.random.normal([4, 64], { key: mx.random.key(3) });
  const [wq, scales, biases] = mx.quantize(w);
  const x = mx.ones([1, 64]);
  expectMlxError(() => mx.quantize(w, { bits: 0 }), /^\[quantize\] Invalid value for bits: 0$/);
  expectMlxError(() => mx.quantize(w, { groupSize: 0 }), /^\[quantize\] Invalid value for group_size: 0$/);
  expectMlxError(() => mx.dequantize(wq!, scales!, biases, { bits: 0 }), /^\[dequantize\] Invalid value for bits: 0$/);
  expectMlxError(() => mx.dequantize(wq!, scales!, biases, { groupSize: 0 }), /^\[dequantize\] Invalid value for group_size: 0$/);
  expectMlxError(() => mx.quantizedMatmul(x, wq!, scales!, biases, { bits: 0 }), /^\[quantized_matmul\] Invalid value for bits: 0$/);
  expectMlxError(() => mx.quantizedMatmul(x, wq!, scales!, biases, { groupSize: 0 }), /^\[quantized_matmul\] Invalid value for group_size: 0$/);
  // Absent (or null) still means the default: the same codes as groupSize 64, bits 4.
  const [q2] = mx.quantize(w, { groupSize: null, bits: undefined });
  const [q3] = mx.quantize(w, { groupSize: 64, bits: 4 });
  expect(mx.arrayEqual(q2!, q3!).item()).toBe(true);
  // qqmm: 0 is the mode's default, as in MLX.
  const a = mx.random.normal([2, 64], { key: mx.random.key(4) });
  const y0 = mx.qqmm(a, w, null, { bits: 0, groupSize: 0 });
  const y1 = mx.qqmm(a, w, null, {});
  expect(mx.arrayEqual(y0, y1).item()).toBe(true);
});
