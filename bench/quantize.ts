// quantize (and dequantize) of a 4096 x 4096 matrix in every mode, float32 and bfloat16 input:
// median ms of 7 timed calls after two warm-up calls (each evaluates every output), as the MLX
// side's bench/lib/fixed_rounds.py. bench/quantize_mlx.py times the same cases
// through MLX Python; run both in one session, e.g.
//   bun bench/quantize.ts; python3 bench/quantize_mlx.py
// Each prints one line per case: "<dtype> <mode> <bits> <op> <ms>"; quantize-transposed
// quantizes W's transpose (a view that is not row-contiguous).
import * as mx from "../src/index.ts";

export const CASES = [
  ["affine", 4, 64],
  ["affine", 3, 64],
  ["affine", 8, 64],
  ["mxfp4", 4, 32],
  ["mxfp8", 8, 32],
  ["nvfp4", 4, 16],
] as const;

function median(f: () => void, n = 7): number {
  f();
  f();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = Bun.nanoseconds();
    f();
    ts.push((Bun.nanoseconds() - t) / 1e6);
  }
  ts.sort((a, b) => a - b);
  return ts[n >> 1]!;
}

for (const dtype of ["float32", "bfloat16"] as const) {
  const w = mx.random.normal([4096, 4096], { key: mx.random.key(1) }).astype(dtype);
  mx.eval(w);
  for (const [mode, bits, groupSize] of CASES) {
    const o = { groupSize, bits, mode };
    const q = median(() => {
      const r = mx.quantize(w, o);
      mx.eval(...r);
      mx.dispose(r);
    });
    console.log(`${dtype} ${mode} ${bits} quantize ${q.toFixed(2)}`);
    const [wq, s, b] = mx.quantize(w, o);
    mx.eval(wq!, s!, ...(b ? [b] : []));
    const d = median(() => {
      const y = mx.dequantize(wq!, s!, b ?? null, { ...o, dtype });
      mx.eval(y);
      y.dispose();
    });
    console.log(`${dtype} ${mode} ${bits} dequantize ${d.toFixed(2)}`);
    mx.dispose([wq!, s!, ...(b ? [b] : [])]);
  }
  // A transposed W (not row-contiguous: read through one float32 copy per quantize call).
  const wt = mx.transpose(w);
  for (const [mode, bits, groupSize] of [["affine", 4, 64], ["nvfp4", 4, 16]] as const) {
    const q = median(() => {
      const r = mx.quantize(wt, { groupSize, bits, mode });
      mx.eval(...r);
      mx.dispose(r);
    });
    console.log(`${dtype} ${mode} ${bits} quantize-transposed ${q.toFixed(2)}`);
  }
}
