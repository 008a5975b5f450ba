// mx.fast: fused kernels for the hot spots of transformer models (engine/prims/fast.zig):
// rmsNorm, layerNorm, rope and scaledDotProductAttention, with MLX's rules and messages.
// Each has a vjp (rope: rope with the angle negated, and with respect to freqs as MLX's CPU
// formula; the others: the vjp of the composed formula) and a vmap rule over every array
// argument (rope's offset and freqs, sdpa's sinks included).
import { checkHandle, lib } from "../ffi/lib";
import { MxArray, scalarHandle } from "./array";
import { streamArg, type StreamOrDevice } from "./device";
import { float32, int32 } from "./dtype";
import { MlxError } from "./errors";

/** The `stream` option shared by the fast ops. */
export interface FastStreamOptions {
  stream?: StreamOrDevice;
}

function handleOf(x: MxArray | null | undefined, op: string, what: string): number {
  if (x === null || x === undefined) return 0;
  if (!(x instanceof MxArray)) throw new MlxError(`[${op}] ${what} must be an array.`, 1);
  return x.handle(op);
}

function numberArg(v: unknown, op: string, what: string): number {
  if (typeof v !== "number") throw new MlxError(`[${op}] ${what} must be a number.`, 1);
  return v;
}

/**
 * Root-mean-square normalisation over the last axis: `x * rsqrt(mean(x^2, -1) + eps) * weight`
 * (accumulated in float32; `weight` 1-D of x's last size, or `null`). The result's dtype is
 * promote(x, weight) and must be a floating type.
 * @example mx.fast.rmsNorm(mx.array([[1, 2, 3]]), mx.ones([3]), 1e-5) // [[0.46, 0.93, 1.39]]
 */
export function rmsNorm(x: MxArray, weight: MxArray | null, eps: number, options?: FastStreamOptions): MxArray {
  const op = "rms_norm";
  return new MxArray(checkHandle(lib.mlxb_fast_rms_norm(handleOf(x, op, "x"), handleOf(weight, op, "weight"), numberArg(eps, op, "eps"), streamArg(options?.stream))));
}

/**
 * Layer normalisation over the last axis: `(x - mean) * rsqrt(var + eps) * weight + bias`
 * (float32 accumulation; `weight` and `bias` 1-D of x's last size, each optional). The result's
 * dtype is promote(x, weight) (x's dtype without a weight).
 * @example mx.fast.layerNorm(mx.array([[1, 2, 3]]), null, null, 1e-5) // [[-1.22, 0, 1.22]]
 */
export function layerNorm(x: MxArray, weight: MxArray | null, bias: MxArray | null, eps: number, options?: FastStreamOptions): MxArray {
  const op = "layer_norm";
  return new MxArray(
    checkHandle(lib.mlxb_fast_layer_norm(handleOf(x, op, "x"), handleOf(weight, op, "weight"), handleOf(bias, op, "bias"), numberArg(eps, op, "eps"), streamArg(options?.stream))),
  );
}

/** Options of {@link rope} (MLX's keyword arguments). */
export interface RopeOptions extends FastStreamOptions {
  /** Rotate consecutive pairs (x[2i], x[2i+1]) instead of the two halves. */
  traditional: boolean;
  /** Base of the geometric frequencies `base^(-2i/dims)`; `null` when `freqs` is given. */
  base: number | null;
  /** Scale of the positions. */
  scale: number;
  /** Position of the first row: an integer, or an integer array (a scalar, or one per batch entry along x's first axis). */
  offset: number | MxArray;
  /** Explicit frequencies (dims/2 of them; the angles are position / freqs); needs `base: null`. */
  freqs?: MxArray | null;
}

/**
 * Rotary positional encoding of the first `dims` features of the last axis; rows are x's
 * second-to-last axis (x has at least 3 dimensions), at positions `offset + i`.
 * @example mx.fast.rope(x, 64, { traditional: false, base: 10000, scale: 1, offset: 0 })
 */
export function rope(x: MxArray, dims: number, options: RopeOptions): MxArray {
  const op = "rope";
  if (typeof options !== "object" || options === null) throw new MlxError("[rope] options { traditional, base, scale, offset } are required.", 1);
  if (!Number.isInteger(dims)) throw new MlxError(`[rope] dims must be an integer but got ${dims}.`, 1);
  const { traditional, base, scale, offset } = options;
  if (typeof traditional !== "boolean") throw new MlxError("[rope] traditional must be a boolean.", 1);
  const hasBase = base !== null && base !== undefined;
  let offsetHandle: number;
  let temp = false;
  if (offset instanceof MxArray) offsetHandle = offset.handle(op);
  else if (typeof offset === "number") {
    offsetHandle = scalarHandle(offset, Number.isInteger(offset) ? int32 : float32);
    temp = true;
  } else throw new MlxError("[rope] offset must be an integer or an integer array.", 1);
  try {
    return new MxArray(
      checkHandle(
        lib.mlxb_fast_rope(
          handleOf(x, op, "x"),
          dims,
          traditional ? 1 : 0,
          hasBase ? 1 : 0,
          hasBase ? numberArg(base, op, "base") : 0,
          numberArg(scale, op, "scale"),
          offsetHandle,
          handleOf(options.freqs, op, "freqs"),
          streamArg(options.stream),
        ),
      ),
    );
  } finally {
    if (temp) lib.mlxb_array_free(offsetHandle);
  }
}

/** Options of {@link scaledDotProductAttention}. */
export interface SdpaOptions extends FastStreamOptions {
  /** Scale of the scores, usually `1 / sqrt(headDim)`. */
  scale: number;
  /**
   * `"causal"` (query i sees keys up to i + S - L), a boolean array (false = masked) or an
   * additive array, broadcastable to (B, H, L, S).
   */
  mask?: "causal" | MxArray | null;
  /** One logit per head (H,) that joins each softmax without a value (attention sinks). */
  sinks?: MxArray | null;
}

/**
 * `softmax(scale * q k^T + mask) v` per head, fused: q (B, H, L, D), k (B, Hk, S, D),
 * v (B, Hk, S, Dv); grouped-query attention when Hk divides H. Output (B, H, L, Dv) in
 * promote(q, k, v).
 * @example mx.fast.scaledDotProductAttention(q, k, v, { scale: 1 / Math.sqrt(64), mask: "causal" })
 */
export function scaledDotProductAttention(q: MxArray, k: MxArray, v: MxArray, options: SdpaOptions): MxArray {
  const op = "scaled_dot_product_attention";
  if (typeof options !== "object" || options === null) throw new MlxError(`[${op}] options { scale } are required.`, 1);
  const mask = options.mask ?? null;
  let causal = 0;
  let maskHandle = 0;
  if (typeof mask === "string") {
    if (mask !== "causal") throw new MlxError(`[${op}] invalid mask option '${mask}'. Must be 'causal', or an array.`, 1);
    causal = 1;
  } else maskHandle = handleOf(mask, op, "mask");
  return new MxArray(
    checkHandle(
      lib.mlxb_fast_sdpa(
        handleOf(q, op, "q"),
        handleOf(k, op, "k"),
        handleOf(v, op, "v"),
        numberArg(options.scale, op, "scale"),
        causal,
        maskHandle,
        handleOf(options.sinks, op, "sinks"),
        streamArg(options.stream),
      ),
    ),
  );
}
