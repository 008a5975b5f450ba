// The 10-op elementwise chain that bench/fuse_chain.ts times and test/compile.test.ts checks
// fusion on (one definition, so the bench measures the chain the test proves fuses into one
// kernel with the same bits). bench/fuse_chain_mlx.py writes the same chain for MLX.
import * as mx from "../../src/index.ts";

/** 10 ops: mul, add, exp, tanh, maximum, mul, sub, abs, sqrt, add (y may broadcast against x). */
export function chain10(x: mx.Array, y: mx.Array): mx.Array {
  let v = mx.multiply(x, y);
  v = mx.add(v, 0.5);
  v = mx.exp(v);
  v = mx.tanh(v);
  v = mx.maximum(v, y);
  v = mx.multiply(v, 1.5);
  v = mx.subtract(v, x);
  v = mx.abs(v);
  v = mx.sqrt(v);
  return mx.add(v, y);
}
