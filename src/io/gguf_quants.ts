// GGUF's quantized tensors as MLX 0.32.4's mx.load returns them. MLX maps Q4_0, Q4_1 and Q8_0
// to its own affine quantization (uint32-packed weights, float16 scales, float16 biases; group
// size 32; w = scale * q + bias) and hands every other type to gguflib's gguf_tensor_to_f16,
// which dequantizes Q2_K, Q4_K and Q6_K (in float32 arithmetic, each weight then rounded to
// float16) and fails for the rest. Every decoder here is a graph of engine ops over the file's
// bytes (a zero-copy uint8 view of the memory-mapped file), so loading stays lazy: the bytes
// are read and decoded only when an array is evaluated.
//
// The ggml block layouts (ggml-common.h), weights per block / bytes per block:
//   Q4_0  32/18:  f16 d, 16 bytes of nibbles; w = d * (q - 8)
//   Q4_1  32/20:  f16 d, f16 m, 16 bytes of nibbles; w = d * q + m
//   Q8_0  32/34:  f16 d, 32 int8; w = d * q
//   Q2_K 256/84:  16 bytes of (min << 4 | scale) per 16 weights, 64 bytes of 2-bit quants,
//                 f16 d, f16 dmin; w = d * scale * q - dmin * min
//   Q4_K 256/144: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32,
//                 128 bytes of nibbles; w = d * scale * q - dmin * min
//   Q6_K 256/210: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales (one
//                 per 16 weights), f16 d; w = d * scale * (q - 32)
// In a ggml block of 32 nibbles, byte j holds weight j in its low nibble and weight j+16 in its
// high one; MLX packs weight i into nibble i (little-endian), so the nibbles are regrouped.
import { MxArray, array } from "../array";
import { float16, float32, int8, uint8, uint32 } from "../dtype";
import { tidy } from "../memory";
import {
  bitwiseAnd, bitwiseOr, bitwiseXor, broadcastTo, concatenate, contiguous, leftShift, multiply, rightShift, sl, subtract,
} from "../ops/index";

/** ggml type -> [weights per block, bytes per block, bits in MLX's packing (0: dequantized to float16)]. */
export const quantTypes: Record<number, [number, number, number]> = {
  2: [32, 18, 4], // Q4_0
  3: [32, 20, 4], // Q4_1
  8: [32, 34, 8], // Q8_0
  10: [256, 84, 0], // Q2_K
  12: [256, 144, 0], // Q4_K
  14: [256, 210, 0], // Q6_K
};

const all = sl();

/**
 * Bytes [a, b) of every block (raw: uint8 [blocks, bytes per block]), copied to a contiguous
 * array: the engine's elementwise kernels are many times faster on contiguous operands than on
 * the strided slice.
 */
const cols = (raw: MxArray, a: number, b: number): MxArray => contiguous(raw.index(all, sl(a, b)));

/** The float16 fields at bytes [a, b) of every block, as float32 [blocks, (b - a) / 2]. */
const halves = (raw: MxArray, a: number, b: number): MxArray => cols(raw, a, b).view(float16).astype(float32);

type Binary = (a: MxArray, b: MxArray) => MxArray;

/**
 * A binary op on two arrays broadcast to their common shape and copied contiguous first: the
 * engine's elementwise kernels run many times slower on broadcast (stride 0) operands.
 */
function dense(op: Binary, a: MxArray, b: MxArray): MxArray {
  const shape = a.shape.map((d, i) => (d === 1 ? b.shape[i]! : d)); // same ndim; 1 broadcasts
  return op(contiguous(broadcastTo(a, shape)), contiguous(broadcastTo(b, shape)));
}

/** (x >> shift) & mask for each shift in a list, on a new axis before the last: [..., n] -> [..., k, n]. */
function shifted(x: MxArray, shifts: number[], mask: number): MxArray {
  const s = array(shifts, uint8).reshape([...x.shape.slice(0, -1).map(() => 1), shifts.length, 1]);
  return bitwiseAnd(dense(rightShift, x.reshape([...x.shape.slice(0, -1), 1, x.shape.at(-1)!]), s), mask);
}

/**
 * Q2_K, Q4_K or Q6_K blocks (raw: uint8 [blocks, bytes per block]) dequantized to float16 with
 * gguflib's arithmetic (float32: the scale of a sub-block first, then each weight), reshaped to
 * `shape`. gguflib's Q4_K decoder reads the scale and min of the even sub-block for both
 * sub-blocks of each 64-weight chunk; MLX returns that, and so do we.
 */
export function dequantize(type: number, raw: MxArray, shape: number[]): MxArray {
  const nb = raw.shape[0]!;
  return tidy(() => {
    let w: MxArray;
    if (type === 10) {
      // Q2_K: two clusters of 128 weights; weight j of a cluster is bits 2*(j/32) of byte j%32.
      const dm = halves(raw, 80, 84);
      const sc = cols(raw, 0, 16);
      const scale = dense(multiply, dm.index(all, sl(0, 1)), bitwiseAnd(sc, 15).astype(float32)).reshape([nb, 16, 1]);
      const min = dense(multiply, dm.index(all, sl(1, 2)), rightShift(sc, 4).astype(float32)).reshape([nb, 16, 1]);
      const q = shifted(cols(raw, 16, 80).reshape([nb, 2, 32]), [0, 2, 4, 6], 3).reshape([nb, 16, 16]);
      w = dense(subtract, dense(multiply, q.astype(float32), scale), min);
    } else if (type === 12) {
      // Q4_K: 6-bit scales s0..s7 and mins m0..m7 in 12 bytes (lo = bytes 0-3, mid = 4-7, hi = 8-11):
      // s0..3 = lo & 63, m0..3 = mid & 63, s4..7 = (hi & 15) | (lo >> 6) << 4, m4..7 = (hi >> 4) | (mid >> 6) << 4.
      const dm = halves(raw, 0, 4);
      const lo = cols(raw, 4, 8);
      const mid = cols(raw, 8, 12);
      const hi = cols(raw, 12, 16);
      const top = (x: MxArray): MxArray => leftShift(rightShift(x, 6), 4);
      const s = contiguous(concatenate([bitwiseAnd(lo, 63), bitwiseOr(bitwiseAnd(hi, 15), top(lo))], 1).index(all, sl(null, null, 2)));
      const m = contiguous(concatenate([bitwiseAnd(mid, 63), bitwiseOr(rightShift(hi, 4), top(mid))], 1).index(all, sl(null, null, 2)));
      const scale = dense(multiply, dm.index(all, sl(0, 1)), s.astype(float32)).reshape([nb, 4, 1, 1]);
      const min = dense(multiply, dm.index(all, sl(1, 2)), m.astype(float32)).reshape([nb, 4, 1, 1]);
      // Four chunks of 32 bytes: 32 weights in the low nibbles, then 32 in the high ones.
      const q = shifted(cols(raw, 16, 144).reshape([nb, 4, 32]), [0, 4], 15);
      w = dense(subtract, dense(multiply, q.astype(float32), scale), min);
    } else if (type === 14) {
      // Q6_K: two clusters of 128 weights; weight j of a cluster takes its low 4 bits from byte
      // j%64 of the cluster's 64 (bits 4*(j/64)) and its high 2 from byte j%32 of its 32 (bits 2*(j/32)).
      const d = halves(raw, 208, 210);
      const scale = dense(multiply, d, cols(raw, 192, 208).view(int8).astype(float32)).reshape([nb, 2, 8, 1]);
      const low = shifted(cols(raw, 0, 128).reshape([nb, 2, 64]), [0, 4], 15).reshape([nb, 2, 128]);
      const high = shifted(cols(raw, 128, 192).reshape([nb, 2, 32]), [0, 2, 4, 6], 3).reshape([nb, 2, 128]);
      const q = bitwiseOr(low, leftShift(high, 4)).reshape([nb, 2, 8, 16]);
      w = dense(multiply, scale, subtract(q.astype(float32), 32));
    } else {
      throw new Error(`dequantize: ggml type ${type} has no decoder`);
    }
    return w.astype(float16).reshape(shape);
  });
}

export interface Unpacked {
  weights: MxArray; // uint32, MLX's packing
  scales: MxArray; // float16
  biases: MxArray; // float16
}

/** Q4_0, Q4_1 or Q8_0 blocks (raw: uint8 [blocks, bytes per block]) as MLX's affine triple, group size 32. */
export function unpackQuantized(type: number, raw: MxArray, wShape: number[], sShape: number[]): Unpacked {
  return tidy(() => {
    const d = cols(raw, 0, 2).view(float16); // [blocks, 1]
    let q: MxArray; // MLX's bytes, [blocks, 16 or 32]
    let biases: MxArray;
    if (type === 8) {
      q = bitwiseXor(cols(raw, 2, 34), 0x80); // int8 q -> q + 128
      biases = multiply(d, -128);
    } else {
      const nib = type === 2 ? cols(raw, 2, 18) : cols(raw, 4, 20);
      // Weights 0..15 are the low nibbles, 16..31 the high ones; MLX wants weight 2m | weight 2m+1 << 4.
      const ws = concatenate([bitwiseAnd(nib, 15), rightShift(nib, 4)], 1);
      q = bitwiseOr(contiguous(ws.index(all, sl(0, null, 2))), leftShift(contiguous(ws.index(all, sl(1, null, 2))), 4));
      biases = type === 2 ? multiply(d, -8) : cols(raw, 2, 4).view(float16);
    }
    return {
      weights: contiguous(q).view(uint32).reshape(wShape),
      scales: d.reshape(sShape),
      biases: biases.astype(float16).reshape(sShape),
    };
  });
}
