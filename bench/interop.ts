// Per-call cost of moving data across the boundary, for bench/run_interop.sh: TypedArray ->
// mx.array -> TypedArray (copying, and zero-copy both ways) and a DLPack export -> import round
// trip. One JSON line per case: { side, name, n, ns: [rounds...] } (ns per call, each round
// the mean over a batch of calls). The peer is bench/interop_mlx.py (NumPy <-> MLX Python).
import * as mx from "../src/index.ts";

const sizes = [16, 1 << 20];
const rounds = Number(process.env.BENCH_ROUNDS ?? 15);
const roundMs = Number(process.env.BENCH_ROUND_MS ?? 40);

function measure(fn: () => void): number[] {
  // Calibrate a batch to ~roundMs, then time `rounds` batches.
  let batch = 1;
  for (;;) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < batch; i++) fn();
    const t = Bun.nanoseconds() - t0;
    if (t > roundMs * 1e6 || batch > 1 << 20) break;
    batch *= 2;
  }
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < batch; i++) fn();
    out.push((Bun.nanoseconds() - t0) / batch);
  }
  return out;
}

for (const n of sizes) {
  const data = new Float32Array(n).map((_, i) => i * 0.5);
  let sink = 0;
  const cases: [string, () => void][] = [
    ["typedarray roundtrip (copy)", () => {
      const a = mx.array(data);
      const back = a.toTypedArray() as Float32Array;
      sink += back[n - 1]!;
      a.dispose();
    }],
    ["typedarray roundtrip (zero-copy)", () => {
      const a = mx.array(data, { copy: false });
      const back = a.toTypedArray({ copy: false }) as Float32Array;
      sink += back[n - 1]!;
      a.dispose();
    }],
    ["dlpack roundtrip", () => {
      const a = mx.array(data, { copy: false });
      const b = mx.fromDlpack(a.toDlpack());
      mx.eval(b);
      sink += b.size;
      b.dispose();
      a.dispose();
    }],
  ];
  for (const [name, fn] of cases) {
    console.log(JSON.stringify({ side: "mlx-bun", name, n, ns: measure(fn) }));
    Bun.gc(true);
  }
  if (sink === -1) console.error(sink);
}
