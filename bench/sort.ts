// Sort throughput for bench/run_all.sh: sort and argsort of float32 arrays, flat and along the
// last axis. One JSON line per case: { side, name, bytes, ns: [rounds...] } (bytes = the input
// read and the output written once). bench/sort_peers.py runs the same cases through MLX Python,
// NumPy and PyTorch. Inputs come from the same hash sequence on both sides and are evaluated
// before the clock starts; each round builds, evaluates and releases one sort.
import * as mx from "../src/index.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
const quick = process.env.BENCH_QUICK === "1";

/** n float32 values in [0, 1): ((i · 2654435761) mod 2^32) / 2^32, as in sort_peers.py. */
export function hashValues(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.imul(i, 2654435761 | 0) >>> 0) / 2 ** 32;
  return out;
}

type Case = { name: string; shape: number[]; arg: boolean };
export const CASES: Case[] = [
  { name: "sort_1M", shape: [1 << 20], arg: false },
  { name: "argsort_1M", shape: [1 << 20], arg: true },
  { name: "sort_rows_1024x1024", shape: [1024, 1024], arg: false },
  { name: "sort_rows_16384x64", shape: [16384, 64], arg: false },
  ...(quick ? [] : [{ name: "sort_16M", shape: [1 << 24], arg: false }]),
];

if (import.meta.main) {
  for (const c of CASES) {
    const n = c.shape.reduce((a, b) => a * b, 1);
    const x = mx.array(hashValues(n)).reshape(c.shape);
    mx.eval(x);
    const ns: number[] = [];
    for (let r = 0; r < rounds + 2; r++) {
      const t0 = Bun.nanoseconds();
      const out = c.arg ? mx.argsort(x, -1) : mx.sort(x, -1);
      mx.eval(out);
      const t = Bun.nanoseconds() - t0;
      out.dispose();
      if (r >= 2) ns.push(t);
    }
    x.dispose();
    console.log(JSON.stringify({ side: "mlx-bun", name: c.name, bytes: n * 8, ns }));
  }
}
