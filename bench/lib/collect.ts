// Turns the raw output of one benchmark script into the suite's records (bench/lib/records.ts),
// tagged with the benchmark, the script that measured it and the pass. Used by bench/run_all.sh:
//
//   bun bench/lib/collect.ts --bench throughput --source bench/throughput.ts --pass 1 raw.jsonl >> results.jsonl
//   ... --format overhead   raw = the JSON document of bench/overhead.ts / overhead_mlx.py --json
//   ... --format hyperfine  raw = hyperfine --export-json, commands named "side|case"
//
// The default format is the JSON lines the per-area scripts print: { side, name, ns: [...], and
// optionally n, bytes, flops, dtype, batch, m, k (GEMM) }. Lines with side "info" are skipped;
// side "probe" lines become probes (peak.zig's { gflops }, or a bandwidth probe { bytes, ns });
// side "unavailable" lines { peer, reason } become unavailable records.
import { readFileSync } from "node:fs";
import { type Probe, type Rec, type Result, summarize } from "./records.ts";

interface RawLine {
  side: string;
  name: string;
  ns?: number[];
  n?: number;
  bytes?: number;
  flops?: number;
  dtype?: string;
  batch?: number;
  m?: number;
  k?: number;
  gflops?: number;
  gbps?: number;
  threads?: number;
  unit?: "ns" | "bytes";
  samples?: number[];
  peerCase?: string;
  peer?: string;
  reason?: string;
}

/** 1048576 -> "1M", 16777216 -> "16M", 1000 -> "1000". */
export function shortCount(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)}M`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)}K`;
  return String(n);
}

/** The records of one raw JSON-lines stream. */
export function collectLines(text: string, bench: string, source: string, pass: number): Rec[] {
  const out: Rec[] = [];
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    const r = JSON.parse(t) as RawLine;
    if (r.side === "info") continue;
    if (r.side === "unavailable") {
      out.push({ type: "unavailable", bench, side: r.peer ?? "?", reason: r.reason ?? "unknown" });
      continue;
    }
    if (r.side === "probe") {
      // The Python scripts' probes are NumPy's (bench/throughput_peers.py: copy and triad, one thread).
      const p: Probe = { type: "probe", name: source.endsWith(".py") && !r.name.includes(".") ? `numpy.${r.name}` : r.name, source };
      if (r.gflops !== undefined) p.gflops = r.gflops;
      else if (r.gbps !== undefined) p.gbps = r.gbps;
      else if (r.bytes !== undefined && r.ns) p.gbps = r.bytes / summarize(r.ns).median;
      if (r.threads !== undefined) p.threads = r.threads;
      out.push(p);
      continue;
    }
    let name = r.name;
    const work: Result["work"] = {};
    if (bench === "matmul" && r.dtype && r.m !== undefined && r.k !== undefined && r.n !== undefined) {
      name = `${r.dtype} ${r.name}`;
      work.flops = 2 * (r.batch ?? 1) * r.m * r.k * r.n;
    } else if (r.n !== undefined && bench !== "matmul") {
      name = `${r.name} ${shortCount(r.n)}`;
    }
    if (r.bytes !== undefined) work.bytes = r.bytes;
    if (r.flops !== undefined) work.flops = r.flops;
    const res: Result = { type: "result", bench, case: name, side: r.side, samples: r.samples ?? r.ns ?? [], source, pass };
    if (r.unit) res.unit = r.unit;
    if (r.peerCase) res.peerCase = r.peerCase;
    if (work.bytes !== undefined || work.flops !== undefined) res.work = work;
    out.push(res);
  }
  return out;
}

/** The records of bench/overhead.ts --json (side mlx-bun) or bench/overhead_mlx.py --json (side mlx). */
export function collectOverhead(text: string, source: string, pass: number): Rec[] {
  const doc = JSON.parse(text) as { runtime: string; results: { id: string; peer?: string | null; rounds: number[] }[] };
  const side = doc.runtime === "bun" ? "mlx-bun" : "mlx";
  return doc.results.map((r) => {
    const res: Result = { type: "result", bench: "overhead", case: r.id, side, samples: r.rounds, source, pass };
    if (side === "mlx-bun" && r.peer && r.peer !== r.id) res.peerCase = r.peer;
    return res;
  });
}

/** The records of hyperfine --export-json whose commands are named "side|case". */
export function collectHyperfine(text: string, bench: string, source: string, pass: number): Rec[] {
  const doc = JSON.parse(text) as { results: { command: string; times: number[] }[] };
  return doc.results.map((r) => {
    const at = r.command.indexOf("|");
    const side = at >= 0 ? r.command.slice(0, at) : "mlx-bun";
    const name = at >= 0 ? r.command.slice(at + 1) : r.command;
    return { type: "result", bench, case: name, side, samples: r.times.map((s) => s * 1e9), source, pass } satisfies Result;
  });
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const opt = (k: string, d?: string) => {
    const i = args.indexOf(k);
    return i >= 0 ? args[i + 1] : d;
  };
  const bench = opt("--bench");
  const source = opt("--source");
  const pass = Number(opt("--pass", "1"));
  const format = opt("--format", "lines");
  const files = args.filter((a, i) => !a.startsWith("--") && (i === 0 || !args[i - 1]!.startsWith("--")));
  if (!bench || !source || files.length === 0) {
    console.error("usage: bun bench/lib/collect.ts --bench B --source S [--pass P] [--format lines|overhead|hyperfine] raw...");
    process.exit(2);
  }
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    if (!text.trim()) continue;
    const recs = format === "overhead" ? collectOverhead(text, source, pass) : format === "hyperfine" ? collectHyperfine(text, bench, source, pass) : collectLines(text, bench, source, pass);
    for (const r of recs) console.log(JSON.stringify(r));
  }
}
