// FFT throughput of mlx-bun, for bench/run_fft.sh. Prints one JSON line per case:
// { side: "mlx-bun", name, n, batch, ns: [per-transform ns per round...] }. bench/fft_peers.py
// runs the same cases through NumPy (pocketfft) and MLX Python. Inputs are made and evaluated
// before the clock starts; each round runs the transform enough times to take ~BENCH_ROUND_MS.
import * as mx from "../src/index.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const roundMs = Number(process.env.BENCH_ROUND_MS ?? 60);
const only = process.env.BENCH_ONLY?.split(",");

export interface Case { name: string; kind: "fft" | "rfft" | "fft2"; shape: number[] }

export function cases(): Case[] {
  const out: Case[] = [];
  for (let k = 10; k <= 22; k += 2) out.push({ name: `fft_2^${k}`, kind: "fft", shape: [2 ** k] });
  for (const n of [1000, 1009, 4096 * 3, 15015, 2310, 13440, 9152, 7429, 45045, 10007, 100003, 1000003]) out.push({ name: `fft_${n}`, kind: "fft", shape: [n] });
  for (let k = 10; k <= 22; k += 4) out.push({ name: `rfft_2^${k}`, kind: "rfft", shape: [2 ** k] });
  out.push({ name: "rfft_100003", kind: "rfft", shape: [100003] });
  out.push({ name: "fft_batch_1024x1024", kind: "fft", shape: [1024, 1024] });
  out.push({ name: "rfft_batch_4096x256", kind: "rfft", shape: [4096, 256] });
  out.push({ name: "fft2_1024x1024", kind: "fft2", shape: [1024, 1024] });
  out.push({ name: "fft2_1000x1000", kind: "fft2", shape: [1000, 1000] });
  return out.filter((c) => !only || only.includes(c.name));
}

function input(c: Case): mx.Array {
  const n = c.shape.reduce((p, d) => p * d, 1);
  const re = new Float32Array(n);
  for (let i = 0; i < n; i++) re[i] = ((i * 7919) % 1009) / 1009 - 0.5;
  const x = mx.array(re, { shape: c.shape });
  if (c.kind === "rfft") return x;
  return mx.add(x, mx.multiply(mx.flip(x, -1), { re: 0, im: 1 }));
}

function run(c: Case, x: mx.Array): mx.Array {
  if (c.kind === "rfft") return mx.fft.rfft(x);
  if (c.kind === "fft2") return mx.fft.fft2(x);
  return mx.fft.fft(x);
}

if (import.meta.main) {
  for (const c of cases()) {
    const x = input(c);
    mx.eval(x);
    // Calibrate.
    let reps = 1;
    for (;;) {
      const t0 = Bun.nanoseconds();
      for (let i = 0; i < reps; i++) {
        const y = run(c, x);
        mx.eval(y);
        y.dispose();
      }
      const dt = (Bun.nanoseconds() - t0) / 1e6;
      if (dt > roundMs / 4 || reps > 1e6) {
        reps = Math.max(1, Math.round((reps * roundMs) / Math.max(dt, 1e-3)));
        break;
      }
      reps *= 4;
    }
    const ns: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = Bun.nanoseconds();
      for (let i = 0; i < reps; i++) {
        const y = run(c, x);
        mx.eval(y);
        y.dispose();
      }
      ns.push((Bun.nanoseconds() - t0) / reps);
    }
    console.log(JSON.stringify({ side: "mlx-bun", name: c.name, kind: c.kind, shape: c.shape, ns }));
    x.dispose();
  }
}
