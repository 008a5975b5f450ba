// mx.fast: fused kernels for the hot spots of transformer models (engine/prims/fast.zig):
// rmsNorm, layerNorm, rope and scaledDotProductAttention, with MLX's rules and messages;
// crossEntropy and gatedDeltaUpdate are composed from ops (MLX fuses them on Metal/CUDA only).
// Each has a vjp (rope: rope with the angle negated, and with respect to freqs as MLX's CPU
// formula; the others: the vjp of the composed formula) and a vmap rule over every array
// argument (rope's offset and freqs, sdpa's sinks included).
import { checkHandle, lib } from "../ffi/lib";
import { MxArray, scalarHandle } from "./array";
import { streamArg, type StreamOrDevice } from "./device";
import { float32, int32 } from "./dtype";
import { MlxError } from "./errors";
import { full } from "./creation";
import { tidy } from "./memory";
import { add, multiply, subtract, where } from "./ops/elementwise";
import { logsumexp, sum } from "./ops/reduce";
import { expandDims, repeat, squeeze, stack } from "./ops/shape";
import { take, takeAlongAxis } from "./ops/indexing";

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

/**
 * Cross entropy with class indices as targets, as MLX's `mx.fast.cross_entropy`:
 * `logsumexp(logits, -1) - logits[..., target]`, returned as float32 with the shape of
 * `targets`. Composed from ops as MLX's CPU path is (the reduction runs in the logits' dtype).
 * A negative target counts from the end; one past the class count fails at evaluation (MLX
 * leaves it undefined).
 * @example mx.fast.crossEntropy(mx.array([[1, 2, 3]], mx.float32), mx.array([2])) // array([0.407606])
 */
export function crossEntropy(logits: MxArray, targets: MxArray, options?: FastStreamOptions): MxArray {
  const op = "cross_entropy";
  handleOf(logits, op, "logits");
  handleOf(targets, op, "targets");
  if (!targets.dtype.isInteger) throw new MlxError(`[${op}] targets must be integer class indices but got ${targets.dtype.name}.`, 1);
  const ls = logits.shape;
  const ts = targets.shape;
  if (ls.length === 0 || ts.length !== ls.length - 1 || ts.some((d, i) => d !== ls[i])) {
    throw new MlxError(`[${op}] targets shape (${ts.join(",")}) does not match logits shape (${ls.join(",")}) with the last axis removed.`, 1);
  }
  const stream = options?.stream;
  return tidy(() => {
    const lse = logsumexp(logits, { axis: -1, stream });
    const picked = squeeze(takeAlongAxis(logits, expandDims(targets, -1, { stream }), -1, { stream }), -1, { stream });
    return subtract(lse, picked, { stream }).astype(float32, { stream });
  });
}

/** Options of `mx.fast.gatedDeltaUpdate`. */
export interface GatedDeltaOptions extends FastStreamOptions {
  /** The state before the first step, [B, Hv, Dv, Dk] (default zeros). */
  initialState?: MxArray | null;
  /** [B, T] bool: a false step leaves the state unchanged and outputs zeros. */
  mask?: MxArray | null;
}

/**
 * The gated delta rule (a linear-attention recurrence), as MLX's `mx.fast.gated_delta_update`.
 * Shapes: q, k [B, T, Hk, Dk]; v [B, T, Hv, Dv]; gamma (the decay, in linear space) and beta
 * (the update rate) [B, T, Hv]; Hv a multiple of Hk (each key head serves Hv / Hk value heads).
 * With the state S [B, Hv, Dv, Dk] (float32, zeros by default), for each step t:
 * `S = gamma_t S; S += k_t (x) ((v_t - S k_t) beta_t); y_t = S q_t`. Returns
 * `[y [B, T, Hv, Dv] in v's dtype, final state (float32)]`. Composed from ops step by step
 * (MLX's fused kernel is Metal/CUDA only).
 */
export function gatedDeltaUpdate(
  q: MxArray,
  k: MxArray,
  v: MxArray,
  gamma: MxArray,
  beta: MxArray,
  options: GatedDeltaOptions = {},
): [MxArray, MxArray] {
  const op = "gated_delta_update";
  for (const [x, what] of [[q, "q"], [k, "k"], [v, "v"], [gamma, "gamma"], [beta, "beta"]] as const) handleOf(x, op, what);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new MlxError(`[${op}] q, k and v must have 4 dimensions [B, T, H, D].`, 1);
  const [B, T, Hk, Dk] = q.shape as [number, number, number, number];
  const [, , Hv, Dv] = v.shape as [number, number, number, number];
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  if (!same(k.shape, q.shape)) throw new MlxError(`[${op}] k must have q's shape (${q.shape.join(",")}), got (${k.shape.join(",")}).`, 1);
  if (v.shape[0] !== B || v.shape[1] !== T) throw new MlxError(`[${op}] v must be [B, T, Hv, Dv] with q's B and T.`, 1);
  if (Hv % Hk !== 0) throw new MlxError(`[${op}] The value heads (${Hv}) must be a multiple of the key heads (${Hk}).`, 1);
  if (!same(gamma.shape, [B, T, Hv]) || !same(beta.shape, [B, T, Hv])) throw new MlxError(`[${op}] gamma and beta must be [B, T, Hv] = (${B},${T},${Hv}).`, 1);
  const init = options.initialState ?? null;
  if (init !== null && !same(handleOf(init, op, "initialState") ? init.shape : [], [B, Hv, Dv, Dk])) {
    throw new MlxError(`[${op}] initialState must be [B, Hv, Dv, Dk] = (${B},${Hv},${Dv},${Dk}), got (${init.shape.join(",")}).`, 1);
  }
  const mask = options.mask ?? null;
  if (mask !== null && !same(handleOf(mask, op, "mask") ? mask.shape : [], [B, T])) throw new MlxError(`[${op}] mask must be [B, T] = (${B},${T}).`, 1);
  const stream = options.stream;
  const s = { stream };
  return tidy(() => {
    const f = (x: MxArray) => x.astype(float32, s);
    const rep = Hv / Hk;
    const qf = rep === 1 ? f(q) : repeat(f(q), rep, 2, s);
    const kf = rep === 1 ? f(k) : repeat(f(k), rep, 2, s);
    const vf = f(v);
    const gf = f(gamma);
    const bf = f(beta);
    let S = init === null ? full([B, Hv, Dv, Dk], 0, float32) : f(init);
    const ys: MxArray[] = [];
    for (let t = 0; t < T; t++) {
      const qt = take(qf, t, 1, s); // [B, Hv, Dk]
      const kt = expandDims(take(kf, t, 1, s), 2, s); // [B, Hv, 1, Dk]
      const vt = take(vf, t, 1, s); // [B, Hv, Dv]
      const gt = expandDims(take(gf, t, 1, s), [2, 3], s);
      const bt = expandDims(take(bf, t, 1, s), 2, s);
      let Sn = multiply(S, gt, s);
      const kv = sum(multiply(Sn, kt, s), { axis: -1, stream });
      const delta = multiply(subtract(vt, kv, s), bt, s);
      Sn = add(Sn, multiply(kt, expandDims(delta, -1, s), s), s);
      let y = sum(multiply(Sn, expandDims(qt, 2, s), s), { axis: -1, stream });
      if (mask !== null) {
        const mt = take(mask, t, 1, s);
        y = where(expandDims(mt, [1, 2], s), y, 0, s);
        Sn = where(expandDims(mt, [1, 2, 3], s), Sn, S, s);
      }
      S = Sn;
      ys.push(y);
    }
    return [stack(ys, 1, s).astype(v.dtype, s), S] as [MxArray, MxArray];
  });
}
