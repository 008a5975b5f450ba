// Writes bench/REPORT.md and its SVG charts (bench/charts/*.svg) from the records of one run of
// bench/run_all.sh (bench/out/<run>/results.jsonl; format in bench/lib/records.ts).
//
//   bun bench/report_all.ts bench/out/<run>/results.jsonl [--out bench/REPORT.md] [--charts bench/charts]
//
// Every number in the report comes from those records: per benchmark and case, each side's
// median and spread over all its samples from all passes of the run, the ratio mlx-bun / peer of
// the medians (below 1: mlx-bun is faster), and where the work is known, GB/s or GFLOP/s and
// the fraction of the bandwidth or FMA peak measured by the probes of the same run.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { type Linked, type Meta, type Probe, type Rec, type Result, type Unavailable, formatBytes, formatNs, geomean, parseJsonl, spreadPct, summarize, type Summary } from "./lib/records.ts";
import { type BarGroup, ratioChart, ratioLabel } from "./lib/svg.ts";

export interface BenchInfo {
  title: string;
  what: string;
  /** Compare mlx-bun's throughput with the bandwidth probe or the FMA peak probe. */
  fraction?: "bandwidth" | "peak";
  /** The cases the fraction applies to (default all): the FMA peak is float32's. */
  fractionApplies?: (c: string) => boolean;
}

/** The report's sections, in order. Benchmarks not listed here are appended under their id. */
export const CATALOG: Record<string, BenchInfo> = {
  overhead: { title: "Per-op host overhead", what: "Host cost per operation on tiny arrays: building a lazy op, evaluating a tiny graph, releasing it, and the whole cycle (ns per op, each round the mean over a batch)." },
  throughput: { title: "Elementwise and reduction throughput", what: "Large float32 arrays (add_f16: float16); one round = build and evaluate one op over inputs evaluated beforehand. GB/s counts the bytes each op must read and write once.", fraction: "bandwidth" },
  matmul: { title: "GEMM", what: "One round = evaluate one fresh matmul of inputs evaluated beforehand; GFLOP/s = 2·batch·m·k·n / time; the fraction is of the measured float32 FMA peak of all cores (float32 rows only).", fraction: "peak", fractionApplies: (c) => c.startsWith("float32") },
  conv: { title: "Convolution", what: "conv1d/conv2d forward (and one vjp), NHWC, batch 4; GFLOP/s over the measured float32 FMA peak.", fraction: "peak" },
  sort: { title: "Sort", what: "sort / argsort of float32 arrays (flat and along the last axis); inputs evaluated beforehand. GB/s counts the input read and the output written once." },
  indexing: { title: "Gather / scatter", what: "take, take_along_axis, advanced-index reads, scatter add/set and slice_update; GB/s counts the bytes read and written once.", fraction: "bandwidth" },
  fft: { title: "FFT", what: "fft / rfft / fft2 of complex64 (rfft: float32) inputs evaluated beforehand." },
  mlp_step: { title: "MLP training step", what: "valueAndGrad of a two-layer ReLU MLP's cross-entropy loss, loss and gradients evaluated (float32)." },
  transformer_step: { title: "Transformer training step", what: "One training step of a small causal transformer LM (Embedding, nn.TransformerEncoder, Linear head, cross-entropy, SGD update), identical configuration on both sides; loss and updated parameters evaluated." },
  memory: { title: "Memory: peak RSS of a training loop", what: "Peak resident set size (VmHWM) of a fresh process that runs the MLP training loop, with and without explicit disposal of each step's arrays (mlx-bun: dispose/tidy vs. leaving them to the garbage collector; MLX Python releases by reference counting either way). Lower is better." },
  interop: { title: "Interop", what: "TypedArray ↔ array round trips (copying and zero-copy) and DLPack export → import, per call." },
  qmm: { title: "Quantized matmul", what: "4-bit affine quantized matmul at batch-1 decode shapes." },
  process: { title: "Whole-process comparisons (hyperfine)", what: "Wall time of whole processes measured by hyperfine (warm-up runs first): start-up, and the demo end to end." },
};

export const SIDE_NAMES: Record<string, string> = {
  "mlx-bun": "mlx-bun",
  mlx: "MLX (Python)",
  numpy: "NumPy",
  torch: "PyTorch CPU",
  "jax-js": "jax-js (wasm)",
  "tfjs-wasm": "TF.js (wasm)",
  "tfjs-cpu": "TF.js (cpu)",
};
const sideName = (s: string) => SIDE_NAMES[s] ?? s;
const PEER_ORDER = ["mlx", "numpy", "torch", "jax-js", "tfjs-wasm", "tfjs-cpu"];
const OURS = "mlx-bun";

interface Row {
  case: string;
  peerCase: string;
  sides: Map<string, { s: Summary; unit: "ns" | "bytes"; work?: Result["work"]; sources: Set<string>; passes: Set<number> }>;
}

/** mlx-bun median / peer median, or NaN if either is missing. */
export function ratio(ours: number | undefined, peer: number | undefined): number {
  if (ours === undefined || peer === undefined || !(peer > 0)) return NaN;
  return ours / peer;
}

function groupRows(results: Result[]): Map<string, Row[]> {
  const byBench = new Map<string, Map<string, { peerCase: string; by: Map<string, Result[]> }>>();
  for (const r of results) {
    let cases = byBench.get(r.bench);
    if (!cases) byBench.set(r.bench, (cases = new Map()));
    let c = cases.get(r.case);
    if (!c) cases.set(r.case, (c = { peerCase: r.peerCase ?? r.case, by: new Map() }));
    if (r.peerCase) c.peerCase = r.peerCase;
    const list = c.by.get(r.side) ?? [];
    list.push(r);
    c.by.set(r.side, list);
  }
  const out = new Map<string, Row[]>();
  for (const [bench, cases] of byBench) {
    const rows: Row[] = [];
    for (const [name, c] of cases) {
      const sides: Row["sides"] = new Map();
      for (const [side, list] of c.by) {
        sides.set(side, {
          s: summarize(list.flatMap((r) => r.samples)),
          unit: list[0]!.unit ?? "ns",
          work: list[0]!.work,
          sources: new Set(list.map((r) => r.source)),
          passes: new Set(list.map((r) => r.pass ?? 1)),
        });
      }
      rows.push({ case: name, peerCase: c.peerCase, sides });
    }
    out.set(bench, rows);
  }
  return out;
}

export interface BuiltReport {
  markdown: string;
  charts: { file: string; svg: string }[];
}

/** Builds the report. chartsLink is the charts folder as linked from the report (e.g. "charts"). */
export function buildReport(records: Rec[], chartsLink = "charts"): BuiltReport {
  const meta = records.find((r): r is Meta => r.type === "meta");
  const results = records.filter((r): r is Result => r.type === "result");
  const probes = records.filter((r): r is Probe => r.type === "probe");
  const unavailable = records.filter((r): r is Unavailable => r.type === "unavailable");
  const linked = records.filter((r): r is Linked => r.type === "linked");
  const rowsByBench = groupRows(results);
  // The case rows of a peer, looked up by a case name (mlx-bun rows may compare with another name).
  const peerRow = (rows: Row[], name: string) => rows.find((r) => r.case === name);

  const bwProbes = probes.filter((p) => p.gbps !== undefined);
  // The best bandwidth any probe of the run reached (on a busy machine the all-core STREAM probe
  // can fall below NumPy's one-thread copy: what was reached once is what the machine can do).
  const bandwidth = bwProbes.length > 0 ? Math.max(...bwProbes.map((p) => p.gbps!)) : NaN;
  const bwProbe = bwProbes.find((p) => p.gbps === bandwidth);
  const peakProbe = probes.find((p) => p.gflops !== undefined);
  const peak = peakProbe?.gflops ?? NaN;

  const md: string[] = [];
  const charts: BuiltReport["charts"] = [];
  md.push("# mlx-bun benchmark report", "");
  md.push("<!-- Generated by bench/report_all.ts from the records of one `bash bench/run_all.sh` run; do not edit by hand. -->", "");
  const caveats = meta?.caveats ?? [];
  if (caveats.length > 0) {
    md.push(`> **Read with care.** ${caveats.join(" ")}`, "");
  }
  if (meta) {
    const m = meta.machine;
    md.push(`Run ${meta.date}, ${meta.quick ? "**quick mode** (`BENCH_QUICK=1`: fewer cases, sizes and rounds)" : "full mode"}, ${meta.passes} pass${meta.passes === 1 ? "" : "es"} (peers alternate: odd passes run mlx-bun first, even passes the peers first).`, "");
    md.push("## Machine", "");
    md.push(`- CPU: ${m.cpu}, ${m.logicalCpus} logical CPUs; memory ${m.memGiB.toFixed(1)} GiB; ${m.kernel}`);
    md.push(`- CPU flags (SIMD-relevant): ${m.flags.length > 0 ? m.flags.join(" ") : "none found"}`);
    if (m.load) md.push(`- Load: ${m.load}`);
    md.push("", "## Versions", "");
    md.push("| component | version |", "|---|---|");
    for (const [k, v] of Object.entries(meta.versions)) md.push(`| ${k} | ${v} |`);
    md.push("");
  }
  md.push("## How to read this", "");
  md.push(
    "- Every case runs on mlx-bun and on each peer that can run it, in the same invocation. Cells give the **median** over all samples of all passes and the **spread** ±x% = half the interquartile range over the median.",
    "- **ratio** = mlx-bun median / peer median: below 1 mlx-bun is faster (or, for memory, smaller). Charts show the same ratios on a log scale.",
    "- The **id** column is `benchmark/case`; the **scripts** column names the script(s) that measured the row (paths under `bench/`).",
    "",
  );

  md.push("## Probes", "");
  if (probes.length === 0) md.push("No probe ran.", "");
  else {
    md.push("| probe | result | measured by |", "|---|--:|---|");
    for (const p of probes) md.push(`| ${p.name}${p.threads ? ` (${p.threads} threads)` : ""} | ${p.gbps !== undefined ? `${p.gbps.toFixed(1)} GB/s` : `${p.gflops!.toFixed(1)} GFLOP/s`} | \`${p.source}\` |`);
    md.push("");
    if (Number.isFinite(bandwidth)) md.push(`Fractions of bandwidth use **${bandwidth.toFixed(1)} GB/s** (${bwProbe?.name}, the best of the bandwidth probes; cases whose data fit in the caches can exceed 100%).`);
    if (Number.isFinite(peak)) md.push(`Fractions of peak use **${peak.toFixed(1)} GFLOP/s** (${peakProbe?.name}, float32 FMA on all cores).`);
    md.push("");
  }

  // Summary: geometric mean of the ratios per benchmark and peer.
  const benchOrder = [...Object.keys(CATALOG).filter((b) => rowsByBench.has(b) || unavailable.some((u) => u.bench === b)), ...[...rowsByBench.keys()].filter((b) => !(b in CATALOG))];
  const summary: { bench: string; peer: string; g: number; n: number }[] = [];
  for (const bench of benchOrder) {
    const rows = rowsByBench.get(bench) ?? [];
    for (const peer of peersOf(rows)) {
      const rs = rows
        .filter((r) => r.sides.has(OURS))
        .map((r) => ratio(r.sides.get(OURS)!.s.median, peerRow(rows, r.peerCase)?.sides.get(peer)?.s.median))
        .filter((x) => Number.isFinite(x));
      if (rs.length > 0) summary.push({ bench, peer, g: geomean(rs), n: rs.length });
    }
  }
  md.push("## Summary", "");
  if (summary.length === 0) md.push("No case ran on both mlx-bun and a peer.", "");
  else {
    md.push("Geometric mean over the cases of each benchmark of the ratio mlx-bun / peer (below 1: mlx-bun is faster).", "");
    md.push("| benchmark | peer | cases | geometric-mean ratio |", "|---|---|--:|--:|");
    for (const s of summary) md.push(`| ${CATALOG[s.bench]?.title ?? s.bench} (\`${s.bench}\`) | ${sideName(s.peer)} | ${s.n} | ${ratioLabel(s.g)} |`);
    md.push("");
    const peers = [...new Set(summary.map((s) => s.peer))].sort(byPeerOrder);
    const groups: BarGroup[] = [...new Set(summary.map((s) => s.bench))].map((b) => ({
      label: CATALOG[b]?.title ?? b,
      bars: summary.filter((s) => s.bench === b).map((s) => ({ series: sideName(s.peer), value: s.g })),
    }));
    charts.push({ file: "summary.svg", svg: ratioChart(groups, { title: "Summary: geometric-mean ratio per benchmark", series: peers.map(sideName) }) });
    md.push(`![summary](${chartsLink}/summary.svg)`, "");
  }

  const notRun = Object.keys(CATALOG).filter((b) => !benchOrder.includes(b));
  if (notRun.length > 0) {
    md.push(`Not run in this invocation (left out with BENCH_AREAS, or the run was stopped before them): ${notRun.map((b) => `${CATALOG[b]!.title} (\`${b}\`)`).join(", ")}.`, "");
  }

  if (unavailable.length > 0) {
    md.push("## Peers that could not run", "");
    md.push("| benchmark | peer | reason |", "|---|---|---|");
    for (const u of unavailable) md.push(`| ${u.bench} | ${sideName(u.side)} | ${oneLine(u.reason)} |`);
    md.push("");
  }

  for (const bench of benchOrder) {
    const info = CATALOG[bench] ?? { title: bench, what: "" };
    const rows = rowsByBench.get(bench) ?? [];
    md.push(`## ${info.title} (\`${bench}\`)`, "");
    if (info.what) md.push(info.what, "");
    const unav = unavailable.filter((u) => u.bench === bench);
    for (const u of unav) md.push(`- **${sideName(u.side)}: could not run.** ${oneLine(u.reason)}`);
    if (unav.length > 0) md.push("");
    if (rows.length === 0) {
      md.push("No results.", "");
      continue;
    }
    const peers = peersOf(rows);
    const unit = rows.find((r) => r.sides.has(OURS))?.sides.get(OURS)?.unit ?? "ns";
    const hasBytes = rows.some((r) => r.sides.get(OURS)?.work?.bytes);
    const hasFlops = rows.some((r) => r.sides.get(OURS)?.work?.flops);
    const fraction = info.fraction === "bandwidth" && hasBytes && Number.isFinite(bandwidth) ? "bandwidth" : info.fraction === "peak" && hasFlops && Number.isFinite(peak) ? "peak" : undefined;
    const head = ["id", "case", OURS, ...peers.map(sideName), ...peers.map((p) => `ratio vs ${sideName(p)}`)];
    if (hasBytes && unit === "ns") head.push("mlx-bun GB/s");
    if (hasFlops && unit === "ns") head.push("mlx-bun GFLOP/s");
    if (fraction) head.push(fraction === "bandwidth" ? "of bandwidth" : "of peak");
    head.push("scripts");
    md.push(`| ${head.join(" | ")} |`);
    md.push(`|${head.map((h, i) => (i < 2 || h === "scripts" ? "---" : "--:")).join("|")}|`);
    const groups: BarGroup[] = [];
    for (const r of rows) {
      const ours = r.sides.get(OURS);
      if (!ours) continue; // peer-only rows are listed below
      const pr = peerRow(rows, r.peerCase);
      const cell = (x: { s: Summary; unit: "ns" | "bytes" } | undefined) => (x ? `${x.unit === "bytes" ? formatBytes(x.s.median) : formatNs(x.s.median)} ±${spreadPct(x.s).toFixed(0)}%` : "n/a");
      const ratios = peers.map((p) => ratio(ours.s.median, pr?.sides.get(p)?.s.median));
      const cols = [`\`${bench}/${r.case}\``, r.case, cell(ours), ...peers.map((p) => cell(pr?.sides.get(p))), ...ratios.map((x) => (Number.isFinite(x) ? ratioLabel(x) : "n/a"))];
      const gbps = ours.work?.bytes ? ours.work.bytes / ours.s.median : NaN;
      const gflops = ours.work?.flops ? ours.work.flops / ours.s.median : NaN;
      if (hasBytes && unit === "ns") cols.push(Number.isFinite(gbps) ? gbps.toFixed(1) : "");
      if (hasFlops && unit === "ns") cols.push(Number.isFinite(gflops) ? gflops.toFixed(1) : "");
      const applies = info.fractionApplies?.(r.case) ?? true;
      if (fraction === "bandwidth") cols.push(Number.isFinite(gbps) && applies ? `${((100 * gbps) / bandwidth).toFixed(0)}%` : "");
      if (fraction === "peak") cols.push(Number.isFinite(gflops) && applies ? `${((100 * gflops) / peak).toFixed(0)}%` : "");
      const sources = new Set([...ours.sources, ...peers.flatMap((p) => [...(pr?.sides.get(p)?.sources ?? [])])]);
      cols.push([...sources].map((s) => s.replace(/^bench\//, "")).join(", "));
      md.push(`| ${cols.join(" | ")} |`);
      const bars = peers.map((p, i) => ({ series: sideName(p), value: ratios[i]! })).filter((b) => Number.isFinite(b.value));
      if (bars.length > 0) groups.push({ label: r.case, bars });
    }
    md.push("");
    const peerOnly = rows.filter((r) => !r.sides.has(OURS) && !rows.some((o) => o.sides.has(OURS) && o.peerCase === r.case));
    if (peerOnly.length > 0) md.push(`Measured for the peers only (no mlx-bun row): ${peerOnly.map((r) => `\`${r.case}\``).join(", ")}.`, "");
    if (groups.length > 0) {
      const file = `${bench}.svg`;
      charts.push({ file, svg: ratioChart(groups, { title: `${info.title}: mlx-bun / peer`, series: peers.map(sideName) }) });
      md.push(`![${bench} ratios](${chartsLink}/${file})`, "");
    }
  }

  if (linked.length > 0) {
    md.push("## Other areas (own scripts and reports)", "");
    md.push("Areas with their own `run_<area>.sh` and report, not merged here: in full mode the suite runs each one present in the checkout and links its report.", "");
    md.push("| area | script | report | status |", "|---|---|---|---|");
    for (const l of linked) md.push(`| ${l.title} (\`${l.bench}\`) | \`${l.script}\` | ${l.report ? `[${l.report}](${l.report})` : "–"} | ${oneLine(l.status)} |`);
    md.push("");
  }
  return { markdown: md.join("\n"), charts };
}

function byPeerOrder(a: string, b: string): number {
  const ia = PEER_ORDER.indexOf(a);
  const ib = PEER_ORDER.indexOf(b);
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
}
function peersOf(rows: Row[]): string[] {
  return [...new Set(rows.flatMap((r) => [...r.sides.keys()]))].filter((s) => s !== OURS).sort(byPeerOrder);
}
function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").replace(/\|/g, "\\|").slice(0, 300);
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const opt = (k: string, d: string) => {
    const i = args.indexOf(k);
    return i >= 0 && args[i + 1] ? args[i + 1]! : d;
  };
  const input = args.find((a, i) => !a.startsWith("--") && (i === 0 || !args[i - 1]!.startsWith("--")));
  if (!input) {
    console.error("usage: bun bench/report_all.ts results.jsonl [--out bench/REPORT.md] [--charts bench/charts]");
    process.exit(2);
  }
  const out = opt("--out", "bench/REPORT.md");
  const chartsDir = opt("--charts", join(dirname(out), "charts"));
  const rep = buildReport(parseJsonl(readFileSync(input, "utf8")), relative(dirname(out), chartsDir) || ".");
  mkdirSync(chartsDir, { recursive: true });
  for (const c of rep.charts) writeFileSync(join(chartsDir, c.file), c.svg);
  writeFileSync(out, rep.markdown);
  console.error(`wrote ${out} and ${rep.charts.length} chart(s) in ${chartsDir}`);
}
