// mx.fast's four ops composed from ordinary mx ops: the formulas the fused kernels
// (src/fast.ts, engine/prims/fast.zig) compute, kept for the "fused vs composed" benchmark
// (bench/fast.ts) and for tests that check a layer against its formula. The layers themselves
// (src/nn/layers.ts) call mx.fast, as MLX's do.
import { MxArray } from "../array";
import { arange } from "../creation";
import { float32 } from "../dtype";
import {
  add, concatenate, cos, exp, expandDims, finfo, less, matmul, mean, multiply, reshape, rsqrt, sin, softmax, square, stack, subtract,
  swapaxes, variance, where, sl,
} from "../ops/index";

/**
 * mx.fast.layer_norm composed: normalise over the last axis (in float32, as MLX's kernels
 * accumulate), cast back, then scale and shift.
 */
export function layerNorm(x: MxArray, weight: MxArray | null, bias: MxArray | null, eps: number): MxArray {
  const xf = x.astype(float32);
  const mu = mean(xf, { axis: -1, keepdims: true });
  const v = variance(xf, { axis: -1, keepdims: true });
  let y = multiply(subtract(xf, mu), rsqrt(add(v, eps))).astype(x.dtype);
  if (weight !== null) y = multiply(y, weight);
  if (bias !== null) y = add(y, bias);
  return y;
}

/** mx.fast.rms_norm composed: `x * rsqrt(mean(x^2) + eps)` over the last axis (float32), times weight. */
export function rmsNorm(x: MxArray, weight: MxArray | null, eps: number): MxArray {
  const xf = x.astype(float32);
  const y = multiply(xf, rsqrt(add(mean(square(xf), { axis: -1, keepdims: true }), eps))).astype(x.dtype);
  return weight === null ? y : multiply(y, weight);
}

/** mx.fast.rope composed: rotate the first `dims` features by position `offset + i`. */
export function rope(x: MxArray, dims: number, traditional: boolean, base: number, scale: number, offset: number): MxArray {
  const L = x.shape[x.ndim - 2]!;
  const D = x.shape[x.ndim - 1]!;
  const half = Math.floor(dims / 2);
  const invFreq = exp(multiply(arange(0, half, 1, { dtype: float32 }), -Math.log(base) / half));
  const pos = multiply(add(arange(0, L, 1, { dtype: float32 }), offset), scale);
  const theta = multiply(expandDims(pos, 1), expandDims(invFreq, 0));
  const c = cos(theta).astype(x.dtype);
  const s = sin(theta).astype(x.dtype);
  let x1: MxArray, x2: MxArray;
  if (traditional) {
    x1 = x.index("...", sl(0, dims, 2));
    x2 = x.index("...", sl(1, dims, 2));
  } else {
    x1 = x.index("...", sl(0, half));
    x2 = x.index("...", sl(half, dims));
  }
  const o1 = subtract(multiply(x1, c), multiply(x2, s));
  const o2 = add(multiply(x1, s), multiply(x2, c));
  let out = traditional ? reshape(stack([o1, o2], -1), [...x.shape.slice(0, -1), dims]) : concatenate([o1, o2], -1);
  if (dims < D) out = concatenate([out, x.index("...", sl(dims, null))], -1);
  return out;
}

/**
 * mx.fast.scaled_dot_product_attention composed: `softmax(q k^T * scale + mask) v` with
 * q (B, H, Lq, D), k and v (B, H, Lk, D); `mask` additive, boolean (false = masked) or "causal".
 */
export function scaledDotProductAttention(q: MxArray, k: MxArray, v: MxArray, scale: number, mask: MxArray | "causal" | null = null): MxArray {
  let scores = matmul(multiply(q, scale), swapaxes(k, -1, -2));
  if (mask === "causal") {
    const lq = q.shape[q.ndim - 2]!;
    const lk = k.shape[k.ndim - 2]!;
    const qi = expandDims(arange(lk - lq, lk), 1);
    const ki = expandDims(arange(0, lk), 0);
    scores = where(less(qi, ki), finfo(scores.dtype).min, scores);
  } else if (mask !== null) {
    if (mask.dtype.name === "bool") scores = where(mask, scores, finfo(scores.dtype).min);
    else scores = add(scores, mask);
  }
  return matmul(softmax(scores, { axis: -1, precise: true }), v);
}

