// Copies and conversions over layouts: astype of a contiguous array and of a transpose (float32
// to float16 and bfloat16, int32 to float32), and mx.contiguous of a transpose and of a reversed
// view, at 16M and 1M elements (square). Every one of them runs through convert.copyConvert
// (elementwise.copyCast's walks).
// MLX (Python) runs the same cases in the same run (bench/copy_layout_mlx.py).
//
//   .toolchain/bin/bun bench/copy_layout.ts              # both sides, table on stdout
//   .toolchain/bin/bun bench/copy_layout.ts --no-peers   # mlx-bun only
//   BENCH_ROUNDS=9 (default)
//
// Inputs are evaluated (views stay views) before the clock starts; each round builds the op,
// evaluates it and disposes of it; the median round is reported.
import * as mx from "../src/index.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
const peers = !process.argv.includes("--no-peers");

export const CASES = [
  "astype f32->f16", "astype f32->f16 of A.T", "astype f32->bf16 of A.T", "astype i32->f32 of A.T",
  "contiguous(A.T) f32", "contiguous(A[::-1, ::-1]) f32", "contiguous(A.T) f16",
] as const;
export const SIZES = [1 << 24, 1 << 20];

interface Row { side: string; name: string; total: number; ns: number }
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

function setup(name: (typeof CASES)[number], total: number): [mx.Array, () => mx.Array] {
  const s = Math.sqrt(total);
  const f32 = mx.random.normal([s, s], { key: mx.random.key(1) });
  switch (name) {
    case "astype f32->f16": return [f32, () => f32.astype(mx.float16)];
    case "astype f32->f16 of A.T": { const t = mx.transpose(f32); return [t, () => t.astype(mx.float16)]; }
    case "astype f32->bf16 of A.T": { const t = mx.transpose(f32); return [t, () => t.astype(mx.bfloat16)]; }
    case "astype i32->f32 of A.T": { const t = mx.transpose(f32.astype(mx.int32)); return [t, () => t.astype(mx.float32)]; }
    case "contiguous(A.T) f32": { const t = mx.transpose(f32); return [t, () => mx.contiguous(t)]; }
    case "contiguous(A[::-1, ::-1]) f32": { const r = f32.index(mx.sl(null, null, -1), mx.sl(null, null, -1)); return [r, () => mx.contiguous(r)]; }
    case "contiguous(A.T) f16": { const t = mx.transpose(f32.astype(mx.float16)); return [t, () => mx.contiguous(t)]; }
  }
}

function bench(): Row[] {
  const rows: Row[] = [];
  for (const total of SIZES) {
    for (const name of CASES) {
      const [input, op] = setup(name, total);
      mx.eval(input);
      const ns: number[] = [];
      for (let r = 0; r < rounds + 2; r++) {
        const t0 = Bun.nanoseconds();
        const out = op();
        mx.eval(out);
        const t = Bun.nanoseconds() - t0;
        out.dispose();
        if (r >= 2) ns.push(t);
      }
      input.dispose();
      rows.push({ side: "mlx-bun", name, total, ns: median(ns) });
    }
  }
  return rows;
}

if (import.meta.main) {
  const ours = bench();
  let theirs: Row[] = [];
  if (peers) {
    const p = Bun.spawnSync(["python3", new URL("./copy_layout_mlx.py", import.meta.url).pathname, String(rounds)], { stderr: "inherit" });
    theirs = new TextDecoder().decode(p.stdout).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Row);
  }
  const ms = (ns: number) => (ns / 1e6).toFixed(2);
  console.log("| case | elements | mlx-bun ms | MLX ms | mlx-bun / MLX |");
  console.log("|---|--:|--:|--:|--:|");
  for (const r of ours) {
    const m = theirs.find((x) => x.name === r.name && x.total === r.total);
    console.log(`| ${r.name} | ${r.total >> 20}M | ${ms(r.ns)} | ${m ? ms(m.ns) : "n/a"} | ${m ? (r.ns / m.ns).toFixed(2) : "n/a"} |`);
  }
}
