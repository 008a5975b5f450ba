// The suite's record format (bench/run_all.sh -> bench/out/<run>/results.jsonl -> bench/report_all.ts)
// and the statistics the report uses. One JSON object per line:
//   meta         machine, versions, mode of the run (one per run)
//   result       one benchmark case on one side (mlx-bun or a peer) in one pass: its samples
//   probe        a machine probe: memory bandwidth (GB/s) or FMA peak (GFLOP/s)
//   unavailable  a peer (or all of a benchmark) that could not run here, with the reason
//   linked       an area measured in the same run whose own report is linked, not merged

export interface Meta {
  type: "meta";
  date: string;
  quick: boolean;
  passes: number;
  /** Why the numbers should be read with care (shared machine, quick mode ...). */
  caveats?: string[];
  machine: { cpu: string; logicalCpus: number; flags: string[]; memGiB: number; kernel: string; load?: string };
  versions: Record<string, string>;
}
export interface Result {
  type: "result";
  /** The benchmark (a section of the report): throughput, matmul, overhead, ... */
  bench: string;
  /** The case inside it: "add 1M", "float32 square 1024" ... */
  case: string;
  /** "mlx-bun" or a peer: mlx, numpy, torch, jax-js, tfjs-wasm, tfjs-cpu, probe ... */
  side: string;
  /** The measurements: times of one round (unit "ns", the default) or sizes (unit "bytes"). */
  samples: number[];
  unit?: "ns" | "bytes";
  /** The work one sample does, for GB/s and GFLOP/s. */
  work?: { bytes?: number; flops?: number };
  /** The case of the peer rows this row compares with, when it is named differently. */
  peerCase?: string;
  /** The script that measured it (path from the repository root). */
  source: string;
  pass?: number;
}
export interface Probe {
  type: "probe";
  /** "stream.copy", "stream.triad", "numpy.triad", "fma_f32" ... */
  name: string;
  gbps?: number;
  gflops?: number;
  source: string;
  threads?: number;
}
export interface Unavailable {
  type: "unavailable";
  bench: string;
  side: string;
  reason: string;
}
export interface Linked {
  type: "linked";
  bench: string;
  title: string;
  report: string;
  script: string;
  status: string;
}
export type Rec = Meta | Result | Probe | Unavailable | Linked;

/** Parses JSON lines, skipping blank lines. */
export function parseJsonl(text: string): Rec[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Rec);
}

/** The q-quantile of sorted values, linear interpolation. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
  count: number;
}
export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, q1: quantile(s, 0.25), q3: quantile(s, 0.75), count: s.length };
}

/** Half the interquartile range relative to the median, in percent. */
export function spreadPct(s: Summary): number {
  return (100 * (s.q3 - s.q1)) / 2 / s.median;
}

export function geomean(v: number[]): number {
  const ok = v.filter((x) => Number.isFinite(x) && x > 0);
  if (ok.length === 0) return NaN;
  return Math.exp(ok.reduce((a, x) => a + Math.log(x), 0) / ok.length);
}

/** "812 ns", "3.40 µs", "1.25 ms", "2.50 s". */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return "n/a";
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  if (ns >= 1e9) return `${f(ns / 1e9)} s`;
  if (ns >= 1e6) return `${f(ns / 1e6)} ms`;
  if (ns >= 1e3) return `${f(ns / 1e3)} µs`;
  return `${f(ns)} ns`;
}

/** "512 B", "3.4 MiB", "1.20 GiB". */
export function formatBytes(b: number): string {
  if (!Number.isFinite(b)) return "n/a";
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (b >= 2 ** 10) return `${(b / 2 ** 10).toFixed(1)} KiB`;
  return `${b.toFixed(0)} B`;
}
