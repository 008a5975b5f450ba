// nn.init: initializers (mlx/nn/init.py). Each returns a function mapping an array to a new
// array of its shape, drawn with mx.random exactly as MLX draws it.
import type { MxArray } from "../array";
import { array } from "../array";
import { arange, eye, full } from "../creation";
import { argsort, reshape, sl } from "../ops/index";
import { float32, type DtypeLike } from "../dtype";
import * as random from "../random";

/** An initializer: a new array of `a`'s shape. */
export type Initializer = (a: MxArray, ...rest: any[]) => MxArray;

/** All `value`. */
export function constant(value: number, dtype: DtypeLike = float32): (a: MxArray) => MxArray {
  return (a) => full(a.shape, value, { dtype });
}

/** Normal samples with `mean` (default 0) and `std` (default 1). */
export function normal(mean = 0.0, std = 1.0, dtype: DtypeLike = float32): (a: MxArray) => MxArray {
  return (a) => random.normal({ shape: [...a.shape], scale: std, loc: mean, dtype });
}

/** Uniform samples in [low, high) (default [0, 1)). */
export function uniform(low = 0.0, high = 1.0, dtype: DtypeLike = float32): (a: MxArray) => MxArray {
  return (a) => random.uniform(low, high, [...a.shape], { dtype });
}

/** The identity matrix of a square 2-D array's size. */
export function identity(dtype: DtypeLike = float32): (a: MxArray) => MxArray {
  return (arr) => {
    if (arr.ndim !== 2 || arr.shape[0] !== arr.shape[1]) throw new Error(`The input array must be a square matrix but got shape (${arr.shape.join(", ")}).`);
    return eye(arr.shape[0]!, null, 0, { dtype });
  };
}

function fans(x: MxArray): [number, number] {
  if (x.ndim < 2) {
    throw new Error(`Glorot / He initialization requires at least 2 dimensional input but input with ${x.ndim} dimensions.`);
  }
  let fanIn = x.shape[x.ndim - 1]!;
  let fanOut = x.shape[0]!;
  if (x.ndim > 2) {
    const rf = x.shape.slice(1, -1).reduce((a, b) => a * b, 1);
    fanIn *= rf;
    fanOut *= rf;
  }
  return [fanIn, fanOut];
}

/** Glorot (Xavier) normal: std = gain * sqrt(2 / (fanIn + fanOut)). */
export function glorotNormal(dtype: DtypeLike = float32): (a: MxArray, gain?: number) => MxArray {
  return (a, gain = 1.0) => {
    const [fi, fo] = fans(a);
    return random.normal({ shape: [...a.shape], scale: gain * Math.sqrt(2.0 / (fi + fo)), dtype });
  };
}

/** Glorot (Xavier) uniform: limit = gain * sqrt(6 / (fanIn + fanOut)). */
export function glorotUniform(dtype: DtypeLike = float32): (a: MxArray, gain?: number) => MxArray {
  return (a, gain = 1.0) => {
    const [fi, fo] = fans(a);
    const limit = gain * Math.sqrt(6.0 / (fi + fo));
    return random.uniform(-limit, limit, [...a.shape], { dtype });
  };
}

function fanOf(a: MxArray, mode: string): number {
  const [fi, fo] = fans(a);
  if (mode === "fan_in") return fi;
  if (mode === "fan_out") return fo;
  throw new Error(`Invalid mode: ${mode}. Valid modes are: fan_in, fan_out`);
}

/** He (Kaiming) normal: std = gain / sqrt(fan), mode "fan_in" (default) or "fan_out". */
export function heNormal(dtype: DtypeLike = float32): (a: MxArray, mode?: "fan_in" | "fan_out", gain?: number) => MxArray {
  return (a, mode = "fan_in", gain = 1.0) => random.normal({ shape: [...a.shape], scale: gain / Math.sqrt(fanOf(a, mode)), dtype });
}

/** He (Kaiming) uniform: limit = gain * sqrt(3 / fan). */
export function heUniform(dtype: DtypeLike = float32): (a: MxArray, mode?: "fan_in" | "fan_out", gain?: number) => MxArray {
  return (a, mode = "fan_in", gain = 1.0) => {
    const limit = gain * Math.sqrt(3.0 / fanOf(a, mode));
    return random.uniform(-limit, limit, [...a.shape], { dtype });
  };
}

/** 2-D sparse: normal samples with a `sparsity` fraction of each row zeroed (at random columns). */
export function sparse(sparsity: number, mean = 0.0, std = 1.0, dtype: DtypeLike = float32): (a: MxArray) => MxArray {
  return (a) => {
    if (a.ndim !== 2) throw new Error("Only tensors with 2 dimensions are supported");
    const [rows, cols] = a.shape as [number, number];
    const numZeros = Math.ceil(sparsity * cols);
    const order = argsort(random.uniform({ shape: [...a.shape] }), 1);
    const out = random.normal({ shape: [...a.shape], scale: std, loc: mean, dtype });
    return out.at(reshape(arange(rows), [rows, 1]), order.index(sl(), sl(0, numZeros))).set(0);
  };
}

/**
 * A (semi-)orthogonal matrix times `gain` (default 1): the Q of the QR decomposition of an
 * (n, n) standard normal sample, n = max(rows, cols), with R's diagonal made positive (as MLX),
 * cut to the array's shape. Q is computed on the host in float64 (modified Gram-Schmidt, which
 * gives that unique Q) since mx.linalg.qr is not available yet.
 */
export function orthogonal(gain = 1.0, dtype: DtypeLike = float32): (a: MxArray) => MxArray {
  return (a) => {
    if (a.ndim !== 2) throw new Error(`Orthogonal initialization requires a 2D array but got a ${a.ndim}D array.`);
    const [rows, cols] = a.shape as [number, number];
    const n = Math.max(rows, cols);
    const m = Float64Array.from(random.normal({ shape: [n, n] }).toTypedArray() as Float32Array);
    // Columns of m, orthonormalised in order: q_j = (m_j - sum_i <q_i, m_j> q_i) / norm.
    const q = new Float64Array(n * n);
    for (let j = 0; j < n; j++) {
      const v = new Float64Array(n);
      for (let r = 0; r < n; r++) v[r] = m[r * n + j]!;
      for (let i = 0; i < j; i++) {
        let dot = 0;
        for (let r = 0; r < n; r++) dot += q[r * n + i]! * v[r]!;
        for (let r = 0; r < n; r++) v[r] = v[r]! - dot * q[r * n + i]!;
      }
      let norm = 0;
      for (let r = 0; r < n; r++) norm += v[r]! * v[r]!;
      norm = Math.sqrt(norm);
      for (let r = 0; r < n; r++) q[r * n + j] = v[r]! / norm;
    }
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = q[r * n + c]! * gain;
    return array(out).reshape([rows, cols]).astype(dtype);
  };
}
