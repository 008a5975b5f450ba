// One quantized decode product, timed: y = quantizedMatmul(x, Wq) with x [m, k] (x @ W^T; m 1 by
// default, QMM_M), W n x k affine (group 64, 4 bits by default, QMM_BITS) or QMM_MODE mxfp4, mxfp8
// or nvfp4 (their group size and bits). For comparing builds
// and CPU levels, e.g.
//   MLX_BUN_LIB=zig-out-portable/lib/libmlxbun.so MLXB_CPU_LEVEL=baseline bun bench/qmm_decode.ts
// Prints the level in use and the median of 9 rounds of ~200 ms (ms per product).
import { lib } from "../ffi/lib";
import * as mx from "../src/index.ts";

const m = Number(process.env.QMM_M ?? 1);
const n = Number(process.env.QMM_N ?? 4096);
const k = Number(process.env.QMM_K ?? 4096);
const mode = (process.env.QMM_MODE ?? "affine") as "affine" | "mxfp4" | "mxfp8" | "nvfp4";
const bits = mode === "affine" ? Number(process.env.QMM_BITS ?? 4) : mode === "mxfp8" ? 8 : 4;
const groupSize = mode === "affine" ? 64 : mode === "nvfp4" ? 16 : 32;
const dtype = (process.env.QMM_DTYPE ?? "float32") as mx.DtypeName;
const q = { groupSize, bits, mode };

const w = mx.random.normal([n, k], { key: mx.random.key(1) }).astype(dtype);
const [wq, s, b] = mx.quantize(w, q);
const x = mx.random.normal([m, k], { key: mx.random.key(2) }).astype(dtype);
mx.eval(wq!, s!, ...(b ? [b] : []), x);
const once = () => {
  const y = mx.quantizedMatmul(x, wq!, s!, b ?? null, q);
  mx.eval(y);
  y.dispose();
};
const t0 = Bun.nanoseconds();
let calls = 0;
while (Bun.nanoseconds() - t0 < 300e6) {
  once();
  calls++;
}
const reps = Math.max(1, Math.round(200e6 / ((Bun.nanoseconds() - t0) / calls)));
const ms: number[] = [];
for (let r = 0; r < 9; r++) {
  const t = Bun.nanoseconds();
  for (let i = 0; i < reps; i++) once();
  ms.push((Bun.nanoseconds() - t) / reps / 1e6);
}
ms.sort((p, q) => p - q);
console.log(`level ${lib.mlxb_cpu_level()} ${dtype} ${mode} ${bits}-bit ${m}x${k} @ ${n}x${k}^T: median ${ms[4]!.toFixed(3)} ms (min ${ms[0]!.toFixed(3)}, max ${ms[8]!.toFixed(3)})`);
