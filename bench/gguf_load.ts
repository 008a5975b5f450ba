// GGUF quantized loading (bench/run_gguf.sh): mx.load + eval of a 4096 x 4096 tensor of each
// quantized type MLX loads, from the files bench/gguf_load_mlx.py writes into the directory
// given. For the K-quants it also times the previous decoder (a per-weight TypeScript loop over
// the bytes, eager at load) for comparison. Prints one JSON line per case: {side, type, ms}.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as mx from "../src/index.ts";

const dir = process.argv[2]!;
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const f32 = Math.fround;

/** The previous TypeScript decoder (Q4_K, Q6_K; Q2_K written the same way). */
function loopDequantize(type: number, data: Uint8Array, count: number): Float16Array {
  const per = 256;
  const bytes = type === 10 ? 84 : type === 12 ? 144 : 210;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Float16Array(count);
  let i = 0;
  for (let b = 0; b < count / per; b++) {
    const o = b * bytes;
    if (type === 10) {
      const d = dv.getFloat16(o + 80, true);
      const dmin = dv.getFloat16(o + 82, true);
      for (let c = 0; c < 2; c++) {
        for (let j = 0; j < 128; j++) {
          const sc = data[o + c * 8 + (j >> 4)]!;
          const q = (data[o + 16 + 32 * c + (j % 32)]! >> ((j >> 5) * 2)) & 3;
          out[i++] = f32(f32(q * f32(d * (sc & 15))) - f32(dmin * (sc >> 4)));
        }
      }
    } else if (type === 12) {
      const d = dv.getFloat16(o, true);
      const dmin = dv.getFloat16(o + 2, true);
      const sc = o + 4;
      for (let p = 0; p < 4; p++) {
        const j = 2 * p;
        const s = j < 4 ? data[sc + j]! & 63 : (data[sc + j + 4]! & 0x0f) | ((data[sc + j - 4]! >> 6) << 4);
        const m = j < 4 ? data[sc + j + 4]! & 63 : (data[sc + j + 4]! >> 4) | ((data[sc + j]! >> 6) << 4);
        const fs = f32(s * d);
        const fm = f32(m * dmin);
        const q = o + 16 + 32 * p;
        for (let k = 0; k < 32; k++) out[i++] = f32(f32((data[q + k]! & 0x0f) * fs) - fm);
        for (let k = 0; k < 32; k++) out[i++] = f32(f32((data[q + k]! >> 4) * fs) - fm);
      }
    } else {
      const d = dv.getFloat16(o + 208, true);
      for (let c = 0; c < 2; c++) {
        const L = o + 64 * c;
        const H = o + 128 + 32 * c;
        const S = o + 192 + 8 * c;
        for (let j = 0; j < 128; j++) {
          const q = ((data[L + (j % 64)]! >> (Math.floor(j / 64) * 4)) & 0x0f) | (((data[H + (j % 32)]! >> (Math.floor(j / 32) * 2)) & 3) << 4);
          out[i++] = f32(f32(d * dv.getInt8(S + Math.floor(j / 16))) * (q - 32));
        }
      }
    }
  }
  return out;
}

const types: Record<string, number> = { Q2_K: 10, Q4_K: 12, Q6_K: 14, Q4_0: 2, Q8_0: 8 };
for (const [t, code] of Object.entries(types)) {
  const p = join(dir, `${t}.gguf`);
  const ms: number[] = [];
  let check: Uint16Array | undefined;
  for (let r = 0; r < rounds; r++) {
    const t0 = Bun.nanoseconds();
    const a = mx.load(p) as Record<string, mx.Array>;
    mx.eval(...Object.values(a));
    ms.push((Bun.nanoseconds() - t0) / 1e6);
    if (r === 0 && code >= 10) check = new Uint16Array(mx.view(a["w.weight"]!.reshape([-1]), mx.uint16).tolist() as number[]);
    for (const v of Object.values(a)) v.dispose();
  }
  console.log(JSON.stringify({ side: "mlx-bun", type: t, ms }));
  if (code < 10) continue;
  const bytes = new Uint8Array(readFileSync(p));
  const start = Math.ceil((24 + 8 + 8 + 4 + 16 + 4 + 8) / 32) * 32;
  const lms: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = Bun.nanoseconds();
    const out = loopDequantize(code, bytes.subarray(start), 4096 * 4096);
    lms.push((Bun.nanoseconds() - t0) / 1e6);
    if (r === 0 && !new Uint16Array(out.buffer).every((v, i) => v === check![i])) throw new Error(`${t}: the loop decoder disagrees`);
  }
  console.log(JSON.stringify({ side: "ts-loop", type: t, ms: lms }));
}
