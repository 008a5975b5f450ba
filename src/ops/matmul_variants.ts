// Matrix-product variants composed from matmul, take, where and shape ops (so vjp and vmap come
// from the parts): gatherMm, blockMaskedMm, segmentedMm, and hadamardTransform (a log2(n)-step
// butterfly plus MLX's m x m factor for n = m * 2^k, m in 12, 20, 28). MLX 0.32.4's rules and
// messages; where MLX's CPU backend reads out of bounds or refuses a dtype, see the notes at each op.
import { MxArray, array as makeArray, astype } from "../array";
import { arange } from "../creation";
import { float32, float64, uint32, type Dtype } from "../dtype";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import { add, greaterEqual, less, logicalAnd, multiply, subtract, where, type StreamOptions } from "./elementwise";
import { take } from "./indexing";
import { matmul } from "./matmul";
import { floating, integer, issubdtype, resultType } from "./misc";
import { broadcastTo, concatenate, expandDims, reshape, split, squeeze } from "./shape";

function shapeStr(s: readonly number[]): string {
  return `(${s.join(",")})`;
}

function broadcastShapes(x: readonly number[], y: readonly number[]): number[] {
  const n = Math.max(x.length, y.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = i < n - x.length ? 1 : x[i - (n - x.length)]!;
    const b = i < n - y.length ? 1 : y[i - (n - y.length)]!;
    if (a !== b && a !== 1 && b !== 1) throw new MlxError(`[broadcast_shapes] Shapes ${shapeStr(x)} and ${shapeStr(y)} cannot be broadcast.`, 1);
    out.push(a === 1 ? b : a);
  }
  return out;
}

function prod(s: readonly number[]): number {
  return s.reduce((p, d) => p * d, 1);
}

/** The checks every variant shares: rank >= 1, 1-D operands lifted, K matches, a real floating result. */
function prepare(op: string, a: MxArray, b: MxArray, s: StreamOptions["stream"]): { a: MxArray; b: MxArray; dtype: Dtype } {
  if (a.ndim === 0 || b.ndim === 0) {
    throw new MlxError(`[${op}] Got 0 dimension input. Inputs must have at least one dimension.`, 1);
  }
  const a2 = a.ndim === 1 ? expandDims(a, 0, { stream: s }) : a;
  const b2 = b.ndim === 1 ? expandDims(b, 1, { stream: s }) : b;
  if (a2.shape[a2.ndim - 1] !== b2.shape[b2.ndim - 2]) {
    throw new MlxError(
      `[${op}] Last dimension of first input with shape ${shapeStr(a2.shape)} must match second to last dimension of second input with shape ${shapeStr(b2.shape)}.`,
      1,
    );
  }
  const dtype = resultType(a, b);
  if (!issubdtype(dtype, floating)) {
    throw new MlxError(
      `[${op}] Only real floating point types are supported but ${a.dtype.name} and ${b.dtype.name} were provided which results in ${dtype.name}, which is not a real floating point type.`,
      1,
    );
  }
  return { a: astype(a2, dtype, { stream: s }), b: astype(b2, dtype, { stream: s }), dtype };
}

/** Drops the axes a 1-D operand gained (the row of a, the column of b). */
function dropLifted(out: MxArray, aNdim: number, bNdim: number, s: StreamOptions["stream"]): MxArray {
  const axes: number[] = [];
  if (aNdim === 1) axes.push(out.ndim - 2);
  if (bNdim === 1) axes.push(out.ndim - 1);
  return axes.length === 0 ? out : squeeze(out, axes, { stream: s });
}

/** Options of {@link gatherMm}. */
export interface GatherMmOptions extends StreamOptions {
  /** Flat indices into the batch dimensions of `a` (default: every batch, in order). */
  lhsIndices?: MxArray;
  /** Flat indices into the batch dimensions of `b` (default: every batch, in order). */
  rhsIndices?: MxArray;
  /** A hint that the single given index array is sorted (no effect on the result). */
  sortedIndices?: boolean;
}

/**
 * Matrix product with a gather over the batch: with `a` of shape (A1, ..., AS, M, K) and `b` of
 * shape (B1, ..., BS, K, N), output element `i` of the (broadcast) index shape is
 * `a.reshape(-1, M, K)[lhsIndices[i]] @ b.reshape(-1, K, N)[rhsIndices[i]]`, so the result has
 * shape `broadcast(lhsIndices, rhsIndices).shape ++ [M, N]` (1-D operands are lifted as in
 * matmul and the added axis dropped). Without indices it is `matmul(a, b)`.
 * Indices are converted to uint32 as in MLX (so a negative index is out of range); an index
 * outside the batch fails the evaluation with take's message (MLX reads out of bounds). float16,
 * bfloat16 and float64 are computed too (MLX's CPU backend refuses them at evaluation).
 * @example mx.gatherMm(mx.ones([3, 2, 4]), mx.ones([4, 5]), { lhsIndices: mx.array([2, 0]) }).shape // [2, 2, 5]
 */
export function gatherMm(a: MxArray, b: MxArray, options: GatherMmOptions = {}): MxArray {
  const { lhsIndices, rhsIndices, stream: s } = options;
  if (lhsIndices === undefined && rhsIndices === undefined) return matmul(a, b, { stream: s });
  return tidy(() => {
    const p = prepare("gather_mm", a, b, s);
    const msg = "[gather_mm] Got indices with invalid dtype. Indices must be integral.";
    if (lhsIndices !== undefined && !issubdtype(lhsIndices.dtype, integer)) throw new MlxError(msg, 1);
    if (rhsIndices !== undefined && !issubdtype(rhsIndices.dtype, integer)) throw new MlxError(msg, 1);
    const batchA = p.a.shape.slice(0, -2);
    const batchB = p.b.shape.slice(0, -2);
    const lhs0 = lhsIndices ?? reshape(arange(prod(batchA), { dtype: uint32, stream: s }), batchA, { stream: s });
    const rhs0 = rhsIndices ?? reshape(arange(prod(batchB), { dtype: uint32, stream: s }), batchB, { stream: s });
    const l32 = astype(lhs0, uint32, { stream: s });
    const r32 = astype(rhs0, uint32, { stream: s });
    const ishape = broadcastShapes(l32.shape, r32.shape);
    const lhs = broadcastTo(l32, ishape, { stream: s });
    const rhs = broadcastTo(r32, ishape, { stream: s });
    const [m, k] = p.a.shape.slice(-2) as [number, number];
    const n = p.b.shape[p.b.ndim - 1]!;
    const af = reshape(p.a, [prod(batchA), m, k], { stream: s });
    const bf = reshape(p.b, [prod(batchB), k, n], { stream: s });
    const out = matmul(take(af, lhs, 0, { stream: s }), take(bf, rhs, 0, { stream: s }), { stream: s });
    return dropLifted(out, a.ndim, b.ndim, s);
  });
}

/** Options of {@link blockMaskedMm}. */
export interface BlockMaskedMmOptions extends StreamOptions {
  /** The block size, 32 or 64. Default 64. */
  blockSize?: number;
  /** Mask of the output blocks, shape (..., ceil(M/bs), ceil(N/bs)). */
  maskOut?: MxArray;
  /** Mask of the blocks of `a`, shape (..., ceil(M/bs), ceil(K/bs)). */
  maskLhs?: MxArray;
  /** Mask of the blocks of `b`, shape (..., ceil(K/bs), ceil(N/bs)). */
  maskRhs?: MxArray;
}

/** A block mask [..., t1, t2] spread over the elements [..., x, y] (edge blocks cut short). */
function spreadMask(mask: MxArray, bs: number, x: number, y: number, s: StreamOptions["stream"]): MxArray {
  const batch = mask.shape.slice(0, -2);
  const [t1, t2] = mask.shape.slice(-2) as [number, number];
  const m4 = reshape(mask, [...batch, t1, 1, t2, 1], { stream: s });
  const full = reshape(broadcastTo(m4, [...batch, t1, bs, t2, bs], { stream: s }), [...batch, t1 * bs, t2 * bs], { stream: s });
  const rows = t1 * bs === x ? full : split(full, [x], -2, { stream: s })[0]!;
  return t2 * bs === y ? rows : split(rows, [y], -1, { stream: s })[0]!;
}

/** x with a spread mask applied: a bool mask zeroes its blocks, any other mask scales them. */
function applyMask(x: MxArray, mask: MxArray, bs: number, s: StreamOptions["stream"]): MxArray {
  const [r, c] = x.shape.slice(-2) as [number, number];
  const e = spreadMask(mask, bs, r, c, s);
  return mask.dtype.name === "bool" ? where(e, x, 0, { stream: s }) : multiply(x, e, { stream: s });
}

/**
 * Matrix product with blocks of `blockSize` x `blockSize` masked: bool masks zero the masked
 * blocks of `a`, `b` (before the product) and of the output (after it); masks of any other dtype
 * are cast to the result dtype and scale the blocks instead (when only one operand mask is bool,
 * both are used as numbers). Masks broadcast against the batch; blocks at the edge of a dimension
 * that is not a multiple of the block size are cut short. Without masks it is `matmul(a, b)`.
 * float16, bfloat16 and float64 are computed too (MLX's CPU backend refuses them); a bool mask
 * with a broadcast operand applies per batch element (MLX's CPU backend lets one batch element's
 * mask leak into the next there).
 * @example mx.blockMaskedMm(mx.ones([64, 64]), mx.ones([64, 64]), { blockSize: 32, maskOut: mx.array([[true, false], [false, true]]) })
 */
export function blockMaskedMm(a: MxArray, b: MxArray, options: BlockMaskedMmOptions = {}): MxArray {
  const { maskOut, maskLhs, maskRhs, stream: s } = options;
  const bs = options.blockSize ?? 64;
  if (maskOut === undefined && maskLhs === undefined && maskRhs === undefined) return matmul(a, b, { stream: s });
  if (bs !== 32 && bs !== 64) {
    throw new MlxError(`[block_masked_mm] Only block_sizes 32, 64 are supported.Got block size ${bs}.`, 1);
  }
  return tidy(() => {
    const p = prepare("block_masked_mm", a, b, s);
    const bsx = broadcastShapes(p.a.shape.slice(0, -2), p.b.shape.slice(0, -2));
    const [m, k] = p.a.shape.slice(-2) as [number, number];
    const n = p.b.shape[p.b.ndim - 1]!;
    let x = broadcastTo(p.a, [...bsx, m, k], { stream: s });
    let y = broadcastTo(p.b, [...bsx, k, n], { stream: s });
    const tm = Math.ceil(m / bs);
    const tn = Math.ceil(n / bs);
    const tk = Math.ceil(k / bs);
    const prep = (mask: MxArray, rows: number, cols: number, dtype: Dtype): MxArray =>
      broadcastTo(astype(mask, dtype, { stream: s }), [...bsx, rows, cols], { stream: s });
    let outMask: MxArray | undefined;
    if (maskOut !== undefined) {
      const ex: number[] = [];
      if (a.ndim === 1) ex.push(-2);
      if (b.ndim === 1) ex.push(-1);
      const mo = ex.length === 0 ? maskOut : expandDims(maskOut, ex, { stream: s });
      outMask = prep(mo, tm, tn, mo.dtype.name === "bool" ? mo.dtype : p.dtype);
    }
    if (maskLhs !== undefined || maskRhs !== undefined) {
      let ml = maskLhs ?? makeArray([true]);
      let mr = maskRhs ?? makeArray([true]);
      const dt = ml.dtype.name === "bool" && mr.dtype.name === "bool" ? ml.dtype : p.dtype;
      if (a.ndim === 1) ml = expandDims(ml, -2, { stream: s });
      ml = prep(ml, tm, tk, dt);
      if (b.ndim === 1) mr = expandDims(mr, -1, { stream: s });
      mr = prep(mr, tk, tn, dt);
      if (k > 0) {
        x = applyMask(x, ml, bs, s);
        y = applyMask(y, mr, bs, s);
      }
    }
    let out = matmul(x, y, { stream: s });
    // With K = 0 MLX writes zeros and leaves the output mask unapplied.
    if (outMask !== undefined && k > 0) out = applyMask(out, outMask, bs, s);
    return dropLifted(out, a.ndim, b.ndim, s);
  });
}

/**
 * A matrix product per segment of the inner dimension: `a` (M, K), `b` (K, N) and `segments` of
 * shape (..., 2) holding [start, end) pairs; element `i` of the result, shape (..., M, N), is
 * `a[:, start:end] @ b[start:end, :]`, zeros when end <= start. Segments are converted to uint32
 * as in MLX (a negative start is past the end, so its segment is empty); ends past K stop at K
 * (MLX reads out of bounds). The work is one masked product per segment.
 * @example mx.segmentedMm(mx.ones([2, 4]), mx.ones([4, 3]), mx.array([[0, 1], [1, 4]])).shape // [2, 2, 3]
 */
export function segmentedMm(a: MxArray, b: MxArray, segments: MxArray, options: StreamOptions = {}): MxArray {
  const s = options.stream;
  if (a.ndim !== 2 || b.ndim !== 2) throw new MlxError("[segmented_mm] Batched matmul not supported", 1);
  if (segments.ndim < 1 || segments.shape[segments.ndim - 1] !== 2) {
    throw new MlxError(`[segmented_mm] The segments should have shape (..., 2) but ${shapeStr(segments.shape)} was provided.`, 1);
  }
  const dtype = resultType(a, b);
  if (!issubdtype(dtype, floating)) {
    throw new MlxError(
      `[segmented_mm] Only real floating point types are supported but ${a.dtype.name} and ${b.dtype.name} were provided which results in ${dtype.name}, which is not a real floating point type.`,
      1,
    );
  }
  if (!issubdtype(segments.dtype, integer)) {
    throw new MlxError("[segmented_mm] Got segments with invalid dtype. Segments must be integral.", 1);
  }
  return tidy(() => {
    // MLX does not check that a and b agree on K; the segments index both, so use the shorter.
    const k = Math.min(a.shape[1]!, b.shape[0]!);
    let x = astype(a, dtype, { stream: s });
    let y = astype(b, dtype, { stream: s });
    if (x.shape[1] !== k) x = split(x, [k], 1, { stream: s })[0]!;
    if (y.shape[0] !== k) y = split(y, [k], 0, { stream: s })[0]!;
    const seg = astype(segments, uint32, { stream: s });
    const [start, end] = split(seg, 2, -1, { stream: s }) as [MxArray, MxArray];
    const ks = arange(k, { dtype: uint32, stream: s });
    const inSeg = logicalAnd(greaterEqual(ks, start, { stream: s }), less(ks, end, { stream: s }), { stream: s }); // [..., K]
    // Both operands are masked, so nothing outside a segment (not even a NaN) reaches the sum.
    const xm = where(expandDims(inSeg, -2, { stream: s }), x, 0, { stream: s }); // [..., M, K]
    const ym = where(expandDims(inSeg, -1, { stream: s }), y, 0, { stream: s }); // [..., K, N]
    return matmul(xm, ym, { stream: s });
  });
}

// Generated by test/fixtures/matmul_variants/gen_hadamard_matrices.py from MLX 0.32.4: row j of
// MLX's m x m factor ('+' = 1, '-' = -1), applied as y_j = sum_k H[j][k] x_k.
const HADAMARD_M: Readonly<Record<number, readonly string[]>> = {
  12: [
    "+-++++++++++",
    "--+-+-+-+-+-",
    "+++-++----++",
    "+---+--+-++-",
    "+++++-++----",
    "+-+---+--+-+",
    "++--+++-++--",
    "+--++---+--+",
    "++----+++-++",
    "+--+-++---+-",
    "++++----+++-",
    "+-+--+-++---",
  ],
  20: [
    "+----+----++--++-++-",
    "-+----+---+++---+-++",
    "--+----+---+++-+-+-+",
    "---+----+---+++++-+-",
    "----+----++--++-++-+",
    "-+++++-----+--+++--+",
    "+-+++-+---+-+--+++--",
    "++-++--+---+-+--+++-",
    "+++-+---+---+-+--+++",
    "++++-----++--+-+--++",
    "--++-+-++-+-----++++",
    "---++-+-++-+---+-+++",
    "+---++-+-+--+--++-++",
    "++---++-+----+-+++-+",
    "-++---++-+----+++++-",
    "-+--+--++-+----+----",
    "+-+-----++-+----+---",
    "-+-+-+---+--+----+--",
    "--+-+++------+----+-",
    "+--+--++------+----+",
  ],
  28: [
    "+------++----++-+--+-+--++--",
    "-+-----+++-----+-+--+-+--++-",
    "--+-----+++---+-+-+----+--++",
    "---+-----+++---+-+-+-+--+--+",
    "----+-----+++---+-+-+++--+--",
    "-----+-----++++--+-+--++--+-",
    "------++----++-+--+-+--++--+",
    "--++++-+-------++--+++-+--+-",
    "---++++-+-----+-++--+-+-+--+",
    "+---+++--+----++-++--+-+-+--",
    "++---++---+----++-++--+-+-+-",
    "+++---+----+----++-++--+-+-+",
    "++++--------+-+--++-++--+-+-",
    "-++++--------+++--++--+--+-+",
    "-+-++-++--++--+--------++++-",
    "+-+-++--+--++--+--------++++",
    "-+-+-++--+--++--+----+---+++",
    "+-+-+-++--+--+---+---++---++",
    "++-+-+-++--+------+--+++---+",
    "-++-+-+-++--+------+-++++---",
    "+-++-+---++--+------+-++++--",
    "-++--++-+-++-+++----++------",
    "+-++--++-+-++-+++-----+-----",
    "++-++---+-+-++-+++-----+----",
    "-++-++-+-+-+-+--+++-----+---",
    "--++-++++-+-+----+++-----+--",
    "+--++-+-++-+-+----+++-----+-",
    "++--++-+-++-+-+----++------+",
  ],
};

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Options of {@link hadamardTransform}. */
export interface HadamardOptions extends StreamOptions {
  /** Scale of the result. Default 1/sqrt(n) (an orthonormal transform). */
  scale?: number;
}

/**
 * The Walsh-Hadamard transform along the last axis, `(H @ x) * scale`, for sizes n = m * 2^k with
 * m in 1, 12, 20, 28 (MLX's m x m factors) and k <= 26. Integer and complex inputs become float32
 * (complex: the real part); float64 is computed too (MLX's CPU backend refuses it). The 2^k part is
 * a log2(n)-step butterfly, rounding to the dtype after each step, then the m part sums in float32
 * in MLX's order; the scale is applied in float32 as MLX does, so results match MLX bit for bit.
 * Sizes like 36 = 12 * 3, which MLX accepts but does not transform (its CPU kernel runs a
 * butterfly on a size that is not a power of two), are refused here.
 * @example mx.hadamardTransform(mx.array([1, 0, 0, 0]), { scale: 1 }) // [1, 1, 1, 1]
 */
export function hadamardTransform(a: MxArray, options: HadamardOptions = {}): MxArray {
  const s = options.stream;
  if (a.size === 0) throw new MlxError("[hadamard_transform] Does not support empty arrays.", 1);
  const n = a.ndim > 0 ? a.shape[a.ndim - 1]! : 1;
  if (options.scale !== undefined && typeof options.scale !== "number") throw new MlxError("[hadamard_transform] scale must be a number.", 1);
  const scale = Math.fround(options.scale ?? 1 / Math.sqrt(n));
  const dtype = issubdtype(a.dtype, floating) ? a.dtype : float32;
  if (n === 1) {
    if (scale === 1) return a;
    return tidy(() => multiply(a, makeArray(scale, dtype), { stream: s }));
  }
  let m = 1;
  let p = n;
  if (!isPow2(n)) {
    for (const f of [12, 20, 28]) {
      if (n % f === 0) {
        m = f;
        p = n / f;
        break;
      }
    }
    if (m === 1 || !isPow2(p)) throw new MlxError("[hadamard] Only supports n = m*2^k where m in (1, 12, 20, 28).", 1);
  }
  if (p > 2 ** 26) throw new MlxError("[hadamard] Only supports n = m*2^k where k <= 26", 1);
  const so = { stream: s };
  return tidy(() => {
    const shape = a.shape;
    const batch = prod(shape.slice(0, -1));
    // The accumulation type of the scale and the m part: float32 (float64 for float64).
    const acc = dtype === float64 ? float64 : float32;
    const scaleArr = makeArray(scale, acc);
    let x = reshape(astype(a, dtype, so), [batch, m, p], so);
    // The 2^k part: MLX's butterfly, pairs at distance h = 1, 2, 4, ... within each row of p.
    for (let h = 1; h < p; h *= 2) {
      const x5 = reshape(x, [batch, m, p / (2 * h), 2, h], so);
      const [lo, hi] = split(x5, 2, 3, so) as [MxArray, MxArray];
      let sum = add(lo, hi, so);
      let diff = subtract(lo, hi, so);
      if (m === 1 && 2 * h === p && scale !== 1) {
        // The last step scales its (already rounded) results in float32, then rounds again.
        sum = astype(multiply(astype(sum, acc, so), scaleArr, so), dtype, so);
        diff = astype(multiply(astype(diff, acc, so), scaleArr, so), dtype, so);
      }
      x = reshape(concatenate([sum, diff], 3, so), [batch, m, p], so);
    }
    if (m > 1) {
      // The m part: y_j = sum over k in order of +-x_k, in float32 starting from 0, then scaled.
      const rows = HADAMARD_M[m]!;
      const xf = astype(x, acc, so);
      const parts = split(xf, m, 1, so);
      let y: MxArray | undefined;
      for (let k = 0; k < m; k++) {
        const col = makeArray(rows.map((r) => [r[k] === "+" ? 1 : -1]), acc); // [m, 1]
        const term = multiply(parts[k]!, col, so); // [batch, m, p]: exact (a sign change)
        y = y === undefined ? add(term, 0, so) : add(y, term, so);
      }
      x = astype(multiply(y!, scaleArr, so), dtype, so);
    }
    return reshape(x, shape, so);
  });
}
