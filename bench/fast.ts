// mx.fast fused kernels vs our composed versions (src/nn/layers.ts) and MLX Python's mx.fast,
// for bench/run_fast.sh.
//   bun bench/fast.ts                            table on stdout
//   bun bench/fast.ts --json                     one JSON line per side and case: { side, name, ns: [...] }
//   bun bench/fast.ts --report a.jsonl b.jsonl   the Markdown report from the lines
// Fused and composed run in the same process, rounds alternating between them; bench/fast_mlx.py
// times MLX's mx.fast on the same cases. One evaluated call per timing; inputs evaluated first.
import { existsSync, readFileSync } from "node:fs";
import * as mx from "../src/index.ts";
import { layerNorm, rmsNorm, rope, scaledDotProductAttention } from "../src/nn/composed.ts";

type Dt = "float32" | "float16" | "bfloat16";
interface Case {
  name: string;
  setup: () => { fused: () => mx.Array; composed: () => mx.Array; inputs: mx.Array[] };
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const roundMs = Number(process.env.BENCH_ROUND_MS ?? 150);

const rnd = (shape: number[], dt: Dt, seed: number) => mx.random.normal(shape, { key: mx.random.key(seed) }).astype(dt);

function norms(name: string, kind: "rms" | "layer", rows: number, d: number, dt: Dt): Case {
  return {
    name,
    setup: () => {
      const x = rnd([rows, d], dt, 1);
      const w = rnd([d], dt, 2);
      const b = rnd([d], dt, 3);
      return kind === "rms"
        ? { inputs: [x, w], fused: () => mx.fast.rmsNorm(x, w, 1e-5), composed: () => rmsNorm(x, w, 1e-5) }
        : { inputs: [x, w, b], fused: () => mx.fast.layerNorm(x, w, b, 1e-5), composed: () => layerNorm(x, w, b, 1e-5) };
    },
  };
}

function ropeCase(name: string, shape: number[], dims: number, traditional: boolean, dt: Dt): Case {
  return {
    name,
    setup: () => {
      const x = rnd(shape, dt, 4);
      return {
        inputs: [x],
        fused: () => mx.fast.rope(x, dims, { traditional, base: 10000, scale: 1, offset: 7 }),
        composed: () => rope(x, dims, traditional, 10000, 1, 7),
      };
    },
  };
}

function sdpaCase(name: string, b: number, h: number, hk: number, l: number, s: number, d: number, causal: boolean, dt: Dt): Case {
  return {
    name,
    setup: () => {
      const q = rnd([b, h, l, d], dt, 5);
      const k = rnd([b, hk, s, d], dt, 6);
      const v = rnd([b, hk, s, d], dt, 7);
      const scale = 1 / Math.sqrt(d);
      const mask = causal ? "causal" : null;
      return {
        inputs: [q, k, v],
        fused: () => mx.fast.scaledDotProductAttention(q, k, v, { scale, mask }),
        // the composed route repeats the kv heads for GQA
        composed: () => (h === hk ? scaledDotProductAttention(q, k, v, scale, mask) : scaledDotProductAttention(q, mx.repeat(k, h / hk, 1), mx.repeat(v, h / hk, 1), scale, mask)),
      };
    },
  };
}

export const CASES: Case[] = [
  norms("rms_norm f32 1024x4096", "rms", 1024, 4096, "float32"),
  norms("rms_norm bf16 1024x4096", "rms", 1024, 4096, "bfloat16"),
  norms("layer_norm f32 1024x4096", "layer", 1024, 4096, "float32"),
  norms("layer_norm f16 1024x4096", "layer", 1024, 4096, "float16"),
  ropeCase("rope f32 1x32x256x128", [1, 32, 256, 128], 128, false, "float32"),
  ropeCase("rope f16 trad 1x32x256x128", [1, 32, 256, 128], 128, true, "float16"),
  sdpaCase("sdpa f32 prefill 16h/4kv L=S=256 d64 causal", 1, 16, 4, 256, 256, 64, true, "float32"),
  sdpaCase("sdpa f32 decode 32h/8kv L=1 S=2048 d128", 1, 32, 8, 1, 2048, 128, false, "float32"),
  sdpaCase("sdpa f16 prefill 8h L=S=512 d64 causal", 1, 8, 8, 512, 512, 64, true, "float16"),
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeOne(fn: () => mx.Array): number {
  const t = Bun.nanoseconds();
  const y = fn();
  mx.eval(y);
  y.dispose();
  return Bun.nanoseconds() - t;
}

function measure(): { side: string; name: string; ns: number[] }[] {
  const out: { side: string; name: string; ns: number[] }[] = [];
  for (const c of CASES) {
    const { fused, composed, inputs } = c.setup();
    mx.eval(...inputs);
    const fns = { fused, composed };
    // calibration: calls per round so one round takes ~roundMs
    const reps: Record<string, number> = {};
    for (const [side, fn] of Object.entries(fns)) {
      timeOne(fn);
      const per = timeOne(fn);
      reps[side] = Math.max(1, Math.round((roundMs * 1e6) / per));
    }
    const ns: Record<string, number[]> = { fused: [], composed: [] };
    for (let r = 0; r < rounds; r++) {
      // alternate which side goes first
      const order = r % 2 ? (["composed", "fused"] as const) : (["fused", "composed"] as const);
      for (const side of order) {
        let total = 0;
        for (let i = 0; i < reps[side]!; i++) total += timeOne(fns[side]);
        ns[side]!.push(total / reps[side]!);
      }
    }
    for (const side of ["fused", "composed"]) out.push({ side, name: c.name, ns: ns[side]! });
    mx.dispose(inputs);
  }
  return out;
}

function report(files: string[]): string {
  const rows = files.flatMap((f) => readFileSync(f, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as { side: string; name: string; ns: number[]; mlx_version?: string }));
  const best = new Map<string, number[]>();
  for (const r of rows) {
    const key = `${r.side}|${r.name}`;
    const prev = best.get(key);
    if (!prev || median(r.ns) < median(prev)) best.set(key, r.ns);
  }
  const mlxVersion = rows.find((r) => r.mlx_version)?.mlx_version ?? "?";
  const us = (ns?: number[]) => (ns ? (median(ns) / 1e3).toFixed(0) : "–");
  const ratio = (a?: number[], b?: number[]) => (a && b ? (median(a) / median(b)).toFixed(2) : "–");
  const lines = [
    "# mx.fast — fused kernels vs composed ops vs MLX Python",
    "",
    `Generated by \`bash bench/run_fast.sh\` on ${new Date().toISOString().slice(0, 10)}: ${process.platform} ${process.arch}, ${navigator.hardwareConcurrency} cores, ` +
      `Bun ${Bun.version}, MLX ${mlxVersion} (CPU). Time per evaluated call, median of rounds (fused and composed rounds alternate ` +
      "in one process); per side and case the pass with the lowest median is kept. The machine is shared with other jobs: indicative only.",
    "",
    "| case | fused µs | composed µs | fused / composed | MLX mx.fast µs | fused / MLX |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const c of CASES) {
    const f = best.get(`fused|${c.name}`);
    const k = best.get(`composed|${c.name}`);
    const m = best.get(`mlx|${c.name}`);
    lines.push(`| ${c.name} | ${us(f)} | ${us(k)} | ${ratio(f, k)} | ${us(m)} | ${ratio(f, m)} |`);
  }
  lines.push("", "Below 1, the fused kernel is faster. The composed column is src/nn/composed.ts (layerNorm, rmsNorm, rope, scaledDotProductAttention; GQA by repeating the kv heads).", "");
  // Hand-written notes (kept in bench/fast_notes.md so a rerun does not lose them).
  const notes = new URL("./fast_notes.md", import.meta.url);
  if (existsSync(notes)) lines.push(readFileSync(notes, "utf8").trimEnd(), "");
  return lines.join("\n");
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args[0] === "--report") {
    process.stdout.write(report(args.slice(1)));
  } else {
    const res = measure();
    if (args.includes("--json")) for (const r of res) console.log(JSON.stringify(r));
    else for (const r of res) console.log(`${r.side.padEnd(9)} ${r.name.padEnd(48)} ${(median(r.ns) / 1e3).toFixed(0).padStart(9)} µs`);
  }
}
