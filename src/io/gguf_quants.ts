// GGUF's quantized tensors as MLX 0.32.4's mx.load returns them: Q4_0, Q4_1 and Q8_0 become
// MLX's affine-quantized triple (uint32-packed weights, float16 scales, float16 biases; group
// size 32; w = scale * q + bias), and Q4_K and Q6_K are dequantized to float16 (in float32
// arithmetic, then rounded to float16, as gguflib does). The ggml block layouts (ggml-common.h):
//   Q4_0: f16 d, 16 bytes of nibbles (32 weights; value q - 8)     = 18 bytes
//   Q4_1: f16 d, f16 m, 16 bytes of nibbles (value d*q + m)        = 20 bytes
//   Q8_0: f16 d, 32 int8 (value d*q)                               = 34 bytes
//   Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32,
//         128 bytes of nibbles (256 weights)                        = 144 bytes
//   Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales (one per 16
//         weights), f16 d; value d * scale * (q - 32)                = 210 bytes
// In a ggml block of 32 nibbles, byte j holds weight j in its low nibble and weight j+16 in its
// high one; MLX packs weight i into nibble i (little-endian), so the nibbles are regrouped.

/** ggml type -> [weights per block, bytes per block, bits in MLX's packing (0: dequantized to float16)]. */
export const quantTypes: Record<number, [number, number, number]> = {
  2: [32, 18, 4], // Q4_0
  3: [32, 20, 4], // Q4_1
  8: [32, 34, 8], // Q8_0
  12: [256, 144, 0], // Q4_K
  14: [256, 210, 0], // Q6_K
};

const f32 = Math.fround;

/** Q4_K or Q6_K weights as float16. */
export function dequantize(type: number, data: Uint8Array, count: number): Float16Array {
  const [per, bytes] = quantTypes[type]!;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Float16Array(count);
  let i = 0;
  for (let b = 0; b < count / per; b++) {
    const o = b * bytes;
    if (type === 12) {
      const d = dv.getFloat16(o, true);
      const dmin = dv.getFloat16(o + 2, true);
      const sc = o + 4;
      const scales: number[] = [];
      const mins: number[] = [];
      for (let j = 0; j < 8; j++) {
        const s = j < 4 ? data[sc + j]! & 63 : (data[sc + j + 4]! & 0x0f) | ((data[sc + j - 4]! >> 6) << 4);
        const m = j < 4 ? data[sc + j + 4]! & 63 : (data[sc + j + 4]! >> 4) | ((data[sc + j]! >> 6) << 4);
        scales.push(f32(s * d));
        mins.push(f32(m * dmin));
      }
      for (let p = 0; p < 4; p++) {
        // gguflib uses the even sub-block's scale and min for both halves of each 32-byte chunk.
        const s = scales[2 * p]!;
        const m = mins[2 * p]!;
        const q = o + 16 + 32 * p;
        for (let j = 0; j < 32; j++) out[i++] = f32(f32((data[q + j]! & 0x0f) * s) - m);
        for (let j = 0; j < 32; j++) out[i++] = f32(f32((data[q + j]! >> 4) * s) - m);
      }
    } else {
      const d = dv.getFloat16(o + 208, true);
      for (let c = 0; c < 2; c++) {
        const L = o + 64 * c;
        const H = o + 128 + 32 * c;
        const S = o + 192 + 8 * c;
        for (let j = 0; j < 128; j++) {
          const q = ((data[L + (j % 64)]! >> (Math.floor(j / 64) * 4)) & 0x0f) | (((data[H + (j % 32)]! >> (Math.floor(j / 32) * 2)) & 3) << 4);
          const scale = dv.getInt8(S + Math.floor(j / 16));
          out[i++] = f32(f32(d * scale) * (q - 32));
        }
      }
    }
  }
  return out;
}

export interface Unpacked {
  weights: Uint8Array; // MLX-packed, viewed later as uint32
  scales: Float16Array;
  biases: Float16Array;
}

/** Regroup 2*n nibbles (low halves of src[0..n) then high halves) into MLX's order at dst. */
function regroup(src: Uint8Array, s: number, n: number, dst: Uint8Array, d: number): void {
  for (let m = 0; m < n / 2; m++) {
    const a = src[s + 2 * m]!;
    const b = src[s + 2 * m + 1]!;
    dst[d + m] = (a & 0x0f) | ((b & 0x0f) << 4);
    dst[d + n / 2 + m] = (a >> 4) | (b & 0xf0);
  }
}

export function unpackQuantized(type: number, data: Uint8Array, count: number): Unpacked {
  const [per, bytes, bits] = quantTypes[type]!;
  const groups = count / 32;
  const blocks = count / per;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const weights = new Uint8Array((count * bits) / 8);
  const scales = new Float16Array(groups);
  const biases = new Float16Array(groups);
  for (let b = 0; b < blocks; b++) {
    const o = b * bytes;
    const d = dv.getFloat16(o, true);
    if (type === 2 || type === 3) {
      scales[b] = d;
      biases[b] = type === 2 ? -8 * d : dv.getFloat16(o + 2, true);
      regroup(data, o + (type === 2 ? 2 : 4), 16, weights, b * 16);
    } else if (type === 8) {
      scales[b] = d;
      biases[b] = -128 * d;
      for (let j = 0; j < 32; j++) weights[b * 32 + j] = data[o + 2 + j]! ^ 0x80; // int8 q -> q + 128
    }
  }
  return { weights, scales, biases };
}
