// Elementwise binary ops over operand layouts: contiguous, broadcast inner axis ([n,16,1] against
// [n,16,k]), broadcast outer axis ([1,16,k]), transposed, column slice; float32 (multiply) and
// int32 (bitwise_xor); 16M-element outputs, and 1M-element ones (below the streaming-store size).
// The two "unary" cases run negative over a contiguous array and over a transpose (ratio to the
// former).
// MLX (Python) runs the same cases in the same run (bench/elementwise_layout_mlx.py); each side's
// times are reported as ratios to its own contiguous case.
//
//   .toolchain/bin/bun bench/elementwise_layout.ts              # both sides, table on stdout
//   .toolchain/bin/bun bench/elementwise_layout.ts --no-peers   # mlx-bun only
//   .toolchain/bin/bun bench/elementwise_layout.ts --json       # mlx-bun only, JSON lines
//   BENCH_ROUNDS=9 (default)
//
// Inputs are evaluated (views stay views: slice, transpose) before the clock starts; each round
// builds the op, evaluates it and disposes of it; the median round is reported.
import * as mx from "../src/index.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
const peers = !process.argv.includes("--no-peers") && !process.argv.includes("--json");
const json = process.argv.includes("--json");

export interface Case { name: string; total: number }
// Every case's output has `total` elements.
export const LAYOUTS = ["contiguous", "broadcast inner [n,16,1] (k=16)", "broadcast inner [n,16,1] (k=4)", "broadcast outer [1,16,k]", "transposed", "column slice [:, :16] of [m,32]", "unary: contiguous", "unary: transposed"] as const;
export const SIZES = [1 << 24, 1 << 20];
export const DTYPES = ["float32", "int32"] as const;

function inputs(layout: (typeof LAYOUTS)[number], total: number, dtype: mx.Dtype): [mx.Array, mx.Array] {
  const key = mx.random.key(1);
  const [k1, k2] = [mx.random.split(key, 2).index(0), mx.random.split(key, 2).index(1)];
  const make = (shape: number[], k: mx.Array) =>
    dtype === mx.float32 ? mx.random.normal(shape, { key: k }) : mx.random.randint(-1000, 1000, shape, { key: k, dtype: mx.int32 });
  switch (layout) {
    case "contiguous":
      return [make([total / 256, 16, 16], k1), make([total / 256, 16, 16], k2)];
    case "broadcast inner [n,16,1] (k=16)":
      return [make([total / 256, 16, 16], k1), make([total / 256, 16, 1], k2)];
    case "broadcast inner [n,16,1] (k=4)":
      return [make([total / 64, 16, 4], k1), make([total / 64, 16, 1], k2)];
    case "broadcast outer [1,16,k]":
      return [make([total / 256, 16, 16], k1), make([1, 16, 16], k2)];
    case "transposed": {
      const s = Math.sqrt(total);
      return [mx.transpose(make([s, s], k1)), make([s, s], k2)];
    }
    case "column slice [:, :16] of [m,32]":
      return [make([total / 16, 32], k1).index(mx.sl(), mx.sl(0, 16)), make([total / 16, 16], k2)];
    case "unary: contiguous": {
      const s = Math.sqrt(total);
      return [make([s, s], k1), mx.array(0)];
    }
    case "unary: transposed": {
      const s = Math.sqrt(total);
      return [mx.transpose(make([s, s], k1)), mx.array(0)];
    }
  }
}

function op(dtype: mx.Dtype, a: mx.Array, b: mx.Array, layout: string): mx.Array {
  if (layout.startsWith("unary")) return mx.negative(a);
  return dtype === mx.float32 ? mx.multiply(a, b) : mx.bitwiseXor(a, b);
}

export interface Row { side: string; layout: string; dtype: string; total: number; ns: number }
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

function bench(): Row[] {
  const rows: Row[] = [];
  for (const dt of DTYPES) {
    const dtype = dt === "float32" ? mx.float32 : mx.int32;
    for (const total of SIZES) {
      for (const layout of LAYOUTS) {
        const [a, b] = inputs(layout, total, dtype);
        mx.eval(a, b);
        const ns: number[] = [];
        for (let r = 0; r < rounds + 2; r++) {
          const t0 = Bun.nanoseconds();
          const out = op(dtype, a, b, layout);
          mx.eval(out);
          const t = Bun.nanoseconds() - t0;
          out.dispose();
          if (r >= 2) ns.push(t);
        }
        a.dispose();
        b.dispose();
        rows.push({ side: "mlx-bun", layout, dtype: dt, total, ns: median(ns) });
      }
    }
  }
  return rows;
}

if (import.meta.main) {
  const ours = bench();
  if (json) {
    for (const r of ours) console.log(JSON.stringify(r));
  } else {
    let theirs: Row[] = [];
    if (peers) {
      const p = Bun.spawnSync(["python3", new URL("./elementwise_layout_mlx.py", import.meta.url).pathname, String(rounds)], { stderr: "inherit" });
      theirs = new TextDecoder().decode(p.stdout).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Row);
    }
    const find = (rs: Row[], r: Row, layout = r.layout) => rs.find((x) => x.layout === layout && x.dtype === r.dtype && x.total === r.total);
    const ms = (ns: number) => (ns / 1e6).toFixed(2);
    console.log("| dtype (op) | elements | layout | mlx-bun ms | / contiguous | MLX ms | MLX / contiguous | mlx-bun / MLX |");
    console.log("|---|--:|---|--:|--:|--:|--:|--:|");
    for (const r of ours) {
      const base = r.layout.startsWith("unary") ? "unary: contiguous" : "contiguous";
      const c = find(ours, r, base)!;
      const m = find(theirs, r);
      const mc = m ? find(theirs, r, base) : undefined;
      const opName = r.layout.startsWith("unary") ? "negative" : r.dtype === "float32" ? "multiply" : "bitwise_xor";
      console.log(
        `| ${r.dtype} (${opName}) | ${r.total >= 1 << 20 ? `${r.total >> 20}M` : r.total} | ${r.layout} | ${ms(r.ns)} | ${(r.ns / c.ns).toFixed(2)} | ${m ? ms(m.ns) : "n/a"} | ${m && mc ? (m.ns / mc.ns).toFixed(2) : "n/a"} | ${m ? (r.ns / m.ns).toFixed(2) : "n/a"} |`,
      );
    }
  }
}
