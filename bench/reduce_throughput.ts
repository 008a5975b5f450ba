// Reduction throughput (sum, prod, mean, max, min, argmax, argmin over float32) side by side with
// MLX Python and NumPy in the same run, and the Markdown report bench/REPORT-reduce.md.
//
//   .toolchain/bin/bun bench/reduce_throughput.ts            # runs both sides, writes the report
//   .toolchain/bin/bun bench/reduce_throughput.ts --no-peers # mlx-bun only, table on stdout
//   BENCH_ROUNDS=5 BENCH_ONLY=sum,max ...                    # fewer rounds, some ops
//   --reference                                              # mlx-bun's reference loops only
//   --no-reference-column                                    # skip the reference-loop column
//
// The report also times mlx-bun's reference loops (mlx_set_reference_mode: the plain loops the
// fast paths replaced, in MLX's order) in the same run, as the "before" column.
// Inputs are a float32 linspace(-3, 3, n), reshaped for the axis cases, evaluated before the
// clock starts; each round builds the reduction, evaluates it and disposes of it. Effective GB/s
// counts the bytes read (4 per element). Needs python3 with mlx and numpy for the peers.
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { lib } from "../ffi/lib";
import * as mx from "../src/index.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
const only = (process.env.BENCH_ONLY ?? "").split(",").filter(Boolean);
const peers = !process.argv.includes("--no-peers");
const reference = process.argv.includes("--reference");
const refColumn = !reference && !process.argv.includes("--no-reference-column");
const OPS = ["sum", "prod", "mean", "max", "min", "argmax", "argmin"] as const;
type Op = (typeof OPS)[number];

interface Case { shape: number[]; axis: number | null }
const CASES: Case[] = [
  { shape: [1 << 20], axis: null },
  { shape: [1 << 24], axis: null },
  { shape: [1024, 1024], axis: 1 },
  { shape: [1024, 1024], axis: 0 },
  { shape: [4096, 4096], axis: 1 },
  { shape: [4096, 4096], axis: 0 },
];
interface Row { side: string; name: string; shape: number[]; axis: number | null; bytes: number; ns: number[] }

function run(op: Op, a: mx.Array, axis: number | null): mx.Array {
  const f = mx[op] as (x: mx.Array, o?: { axis?: number }) => mx.Array;
  return axis === null ? f(a) : f(a, { axis });
}

function bench(reference: boolean): Row[] {
  const rows: Row[] = [];
  if (reference) lib.mlxb_set_reference_mode(1);
  for (const c of CASES) {
    const n = c.shape.reduce((x, y) => x * y, 1);
    const a = mx.linspace(-3, 3, n).reshape(c.shape);
    mx.eval(a);
    for (const op of OPS) {
      if (only.length > 0 && !only.includes(op)) continue;
      const ns: number[] = [];
      for (let r = 0; r < rounds + 2; r++) {
        const t0 = Bun.nanoseconds();
        const out = run(op, a, c.axis);
        mx.eval(out);
        const t = Bun.nanoseconds() - t0;
        out.dispose();
        if (r >= 2) ns.push(t); // two warm-up rounds
      }
      rows.push({ side: reference ? "reference" : "mlx-bun", name: op, shape: c.shape, axis: c.axis, bytes: 4 * n, ns });
    }
    a.dispose();
  }
  if (reference) lib.mlxb_set_reference_mode(0);
  return rows;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const gbps = (r: Row) => r.bytes / median(r.ns);
const label = (r: { shape: number[]; axis: number | null }) => `[${r.shape.join("x")}]${r.axis === null ? " all" : ` axis ${r.axis}`}`;

const ours = bench(reference);
let theirs: Row[] = refColumn ? bench(true) : [];
if (peers) {
  const p = Bun.spawnSync(["python3", "bench/reduce_throughput_peers.py", JSON.stringify(CASES)], { env: { ...process.env }, stderr: "inherit" });
  theirs = theirs.concat(new TextDecoder().decode(p.stdout).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Row));
}
const find = (side: string, r: Row) => theirs.find((x) => x.side === side && x.name === r.name && x.axis === r.axis && x.shape.join() === r.shape.join());
const probe = theirs.find((r) => r.side === "probe");

const lines: string[] = [];
lines.push("| input | op | mlx-bun GB/s | before (reference loops) GB/s | MLX GB/s | NumPy GB/s | ratio vs MLX | ratio vs NumPy | best-round ratio vs MLX | before: ratio vs MLX | mlx-bun spread (ms) |");
lines.push("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|");
for (const r of ours) {
  const m = find("mlx", r);
  const np = find("numpy", r);
  const ref = find("reference", r);
  const ratio = (p: Row | undefined) => (p ? (median(r.ns) / median(p.ns)).toFixed(2) : "n/a");
  const best = (p: Row | undefined) => (p ? (Math.min(...r.ns) / Math.min(...p.ns)).toFixed(2) : "n/a");
  const spread = `${(Math.min(...r.ns) / 1e6).toFixed(2)} – ${(Math.max(...r.ns) / 1e6).toFixed(2)}`;
  const before = ref && m ? (median(ref.ns) / median(m.ns)).toFixed(2) : "n/a";
  lines.push(`| ${label(r)} | ${r.name} | ${gbps(r).toFixed(1)} | ${ref ? gbps(ref).toFixed(1) : "n/a"} | ${m ? gbps(m).toFixed(1) : "n/a"} | ${np ? gbps(np).toFixed(1) : "n/a"} | ${ratio(m)} | ${ratio(np)} | ${best(m)} | ${before} | ${spread} |`);
}
const table = lines.join("\n");
if (!peers) {
  console.log(table);
} else {
  const flags = (await Bun.file("/proc/cpuinfo").text()).match(/^flags\s*:(.*)$/m)?.[1]?.split(" ") ?? [];
  const pick = ["avx2", "fma", "avx512f", "avx512bw"].filter((f) => flags.includes(f));
  const head = [
    "# Reduction throughput: mlx-bun vs MLX (Python) vs NumPy",
    "",
    "Generated by `.toolchain/bin/bun bench/reduce_throughput.ts`. float32 `linspace(-3, 3, n)` inputs; each number is the median of " +
      `${rounds} timed rounds (two warm-up rounds dropped); effective GB/s counts the bytes read once (4 per element). ` +
      "**ratio** = mlx-bun time / peer time (below 1: mlx-bun is faster); the best-round ratio compares the fastest rounds " +
      "(less sensitive to other load on the machine).",
    "",
    `Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} logical CPUs, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; flags: ${pick.join(" ")}. Run ${new Date().toISOString()}.` +
      (probe ? ` Memory bandwidth probe (NumPy copy of 256 MiB, one thread): ${gbps(probe).toFixed(1)} GB/s.` : ""),
    "",
  ];
  const path = new URL("./REPORT-reduce.md", import.meta.url);
  let notes = "";
  try {
    const old = await Bun.file(path).text();
    const m = old.match(/<!-- notes:begin -->[\s\S]*<!-- notes:end -->/);
    if (m) notes = m[0];
  } catch {
    // first run
  }
  writeFileSync(path, [...head, table, "", notes || "<!-- notes:begin -->\n<!-- notes:end -->", ""].join("\n"));
  console.log(table);
  console.error("wrote bench/REPORT-reduce.md");
}
