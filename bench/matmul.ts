// GEMM throughput of mlx-bun's matmul, for bench/run_matmul.sh. Prints one JSON line per case:
// { side, name, dtype, batch, m, k, n, ns: [rounds...] }. The cases are in bench/matmul_cases.json
// (shared with bench/matmul_peers.py). Inputs are made and evaluated before the clock starts; each
// round evaluates one fresh matmul and releases its output.
import { readFileSync } from "node:fs";
import * as mx from "../src/index.ts";

// trans_b: B is the transpose of a row-major (n x k) array (x @ W.T, as a Linear layer).
type Case = { name: string; dtype: string; batch: number; m: number; k: number; n: number; trans_b?: boolean };
const cases = JSON.parse(readFileSync(new URL("matmul_cases.json", import.meta.url), "utf8")) as Case[];
const only = process.env.BENCH_ONLY?.split(",");
const targetMs = Number(process.env.BENCH_CASE_MS ?? 1500);

for (const c of cases) {
  if (only && !only.some((o) => c.dtype.startsWith(o) || c.name.includes(o))) continue;
  const dtype = (mx as unknown as Record<string, mx.Dtype>)[c.dtype]!;
  const lead = c.batch > 1 ? [c.batch] : [];
  const key = mx.random.key(1);
  const [ka, kb] = mx.random.split(key);
  const a = mx.random.normal([...lead, c.m, c.k], { key: ka! }).astype(dtype);
  const bStored = mx.random.normal(c.trans_b ? [...lead, c.n, c.k] : [...lead, c.k, c.n], { key: kb! }).astype(dtype);
  mx.eval(a, bStored);
  const b = c.trans_b ? mx.swapaxes(bStored, -1, -2) : bStored;
  mx.eval(b); // a strided view: the product reads B's storage transposed, no copy
  const once = () => {
    const t0 = Bun.nanoseconds();
    const out = mx.matmul(a, b);
    mx.eval(out);
    const t = Bun.nanoseconds() - t0;
    out.dispose();
    return t;
  };
  once(); // warm-up: pack buffers, thread pool
  const first = once();
  const rounds = Math.max(5, Math.min(50, Math.round((targetMs * 1e6) / first)));
  const ns = Array.from({ length: rounds }, once);
  console.log(JSON.stringify({ side: "mlx-bun", ...c, ns }));
  a.dispose();
  if (b !== bStored) b.dispose();
  bStored.dispose();
}
