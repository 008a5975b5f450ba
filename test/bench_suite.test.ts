// The benchmark suite's report generator (bench/report_all.ts), record collector
// (bench/lib/collect.ts) and SVG writer (bench/lib/svg.ts) on small hand-written inputs: no
// benchmark runs here. Expected values are computed by hand in the comments.
import { describe, expect, test } from "bun:test";
import { collectHyperfine, collectLines, collectOverhead, shortCount } from "../bench/lib/collect.ts";
import { cpuFacts } from "../bench/lib/machine.ts";
import { type Rec, formatBytes, formatNs, geomean, parseJsonl, quantile, summarize } from "../bench/lib/records.ts";
import { ratioChart, ratioLabel } from "../bench/lib/svg.ts";
import { buildReport, ratio } from "../bench/report_all.ts";

// A canned run: one probe of each kind, a throughput case with two peers over two passes, a GEMM
// case, a peer that could not run, a memory case in bytes, an overhead row whose peer has
// another id, and a linked area.
const CANNED = `
{"type":"meta","date":"2026-01-01T00:00:00Z","quick":true,"passes":2,"caveats":["Shared machine: noisy."],"machine":{"cpu":"Test CPU","logicalCpus":2,"flags":["avx2","fma"],"memGiB":8,"kernel":"Linux 6"},"versions":{"bun":"1.4.4","mlx":"0.32.4"}}
{"type":"probe","name":"stream.triad","gbps":20,"threads":2,"source":"bench/stream.zig"}
{"type":"probe","name":"stream.copy","gbps":16,"threads":2,"source":"bench/stream.zig"}
{"type":"probe","name":"numpy.copy","gbps":12,"source":"bench/throughput_peers.py"}
{"type":"probe","name":"fma_f32","gflops":200,"threads":2,"source":"bench/peak.zig"}
{"type":"result","bench":"throughput","case":"add 1M","side":"mlx-bun","samples":[1000000,1200000],"work":{"bytes":12000000},"source":"bench/throughput.ts","pass":1}
{"type":"result","bench":"throughput","case":"add 1M","side":"mlx-bun","samples":[1100000],"work":{"bytes":12000000},"source":"bench/throughput.ts","pass":2}
{"type":"result","bench":"throughput","case":"add 1M","side":"mlx","samples":[2000000,2200000,2400000],"source":"bench/throughput_peers.py","pass":1}
{"type":"result","bench":"throughput","case":"add 1M","side":"numpy","samples":[550000],"source":"bench/throughput_peers.py","pass":1}
{"type":"result","bench":"throughput","case":"exp 1M","side":"mlx","samples":[3000000],"source":"bench/throughput_peers.py","pass":1}
{"type":"unavailable","bench":"throughput","side":"tfjs-wasm","reason":"cannot load: no WebAssembly here"}
{"type":"result","bench":"matmul","case":"float32 square 100","side":"mlx-bun","samples":[20000,20000,20000],"work":{"flops":2000000},"source":"bench/matmul.ts","pass":1}
{"type":"result","bench":"matmul","case":"float32 square 100","side":"torch","samples":[10000],"source":"bench/matmul_peers.py","pass":1}
{"type":"result","bench":"matmul","case":"bfloat16 square 100","side":"mlx-bun","samples":[1000],"work":{"flops":2000000},"source":"bench/matmul.ts","pass":1}
{"type":"result","bench":"memory","case":"loop","side":"mlx-bun","unit":"bytes","samples":[3145728],"source":"bench/memory_loop.ts","pass":1}
{"type":"result","bench":"memory","case":"loop","side":"mlx","unit":"bytes","samples":[1048576],"source":"bench/memory_loop_mlx.py","pass":1}
{"type":"result","bench":"overhead","case":"dispose.method","peerCase":"dispose.del","side":"mlx-bun","samples":[50,50,50],"source":"bench/overhead.ts","pass":1}
{"type":"result","bench":"overhead","case":"dispose.del","side":"mlx","samples":[200,200],"source":"bench/overhead_mlx.py","pass":1}
{"type":"linked","bench":"compile","title":"mx.compile speed-ups","script":"bench/run_compile.sh","report":"","status":"not in this checkout"}
`;

function tableRow(md: string, id: string): string[] {
  const line = md.split("\n").find((l) => l.startsWith(`| \`${id}\``));
  if (!line) throw new Error(`no row ${id}`);
  return line.split("|").slice(1, -1).map((c) => c.trim());
}

describe("records and statistics", () => {
  test("quantiles, summary, geometric mean", () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    const s = summarize([5, 1, 3]);
    expect([s.median, s.min, s.max, s.count]).toEqual([3, 1, 5, 3]);
    expect(geomean([2, 8])).toBeCloseTo(4, 12);
    expect(Number.isNaN(geomean([]))).toBe(true);
  });
  test("formatting", () => {
    expect(formatNs(812)).toBe("812 ns");
    expect(formatNs(3400)).toBe("3.40 µs");
    expect(formatNs(1250000)).toBe("1.25 ms");
    expect(formatNs(2.5e9)).toBe("2.50 s");
    expect(formatBytes(3 * 2 ** 20)).toBe("3.0 MiB");
    expect(ratioLabel(0.5)).toBe("0.50×");
    expect(ratioLabel(12.34)).toBe("12.3×");
    expect(ratioLabel(NaN)).toBe("n/a");
    expect(shortCount(1048576)).toBe("1M");
    expect(shortCount(16777216)).toBe("16M");
    expect(shortCount(1000)).toBe("1000");
  });
  test("ratio is mlx-bun / peer, NaN when a side is missing", () => {
    expect(ratio(1, 4)).toBe(0.25);
    expect(Number.isNaN(ratio(1, undefined))).toBe(true);
    expect(Number.isNaN(ratio(undefined, 2))).toBe(true);
  });
});

describe("report generator on canned records", () => {
  const rep = buildReport(parseJsonl(CANNED));
  const md = rep.markdown;

  test("header: caveats, machine, versions", () => {
    expect(md).toContain("**Read with care.** Shared machine: noisy.");
    expect(md).toContain("**quick mode**");
    expect(md).toContain("Test CPU, 2 logical CPUs");
    expect(md).toContain("avx2 fma");
    expect(md).toContain("| mlx | 0.32.4 |");
  });

  test("throughput row: pooled passes, ratios, GB/s, fraction of the STREAM bandwidth", () => {
    // mlx-bun samples 1.0, 1.2, 1.1 ms -> median 1.1 ms; MLX median 2.2 ms; NumPy 0.55 ms.
    // ratios 1.1/2.2 = 0.5 and 1.1/0.55 = 2; GB/s = 12e6 B / 1.1e6 ns = 10.9;
    // bandwidth = the best probe, stream.triad's 20 GB/s (NumPy's copy reached 12) -> 55%.
    const row = tableRow(md, "throughput/add 1M");
    expect(row[1]).toBe("add 1M");
    expect(row[2]).toStartWith("1.10 ms");
    expect(row[3]).toStartWith("2.20 ms");
    expect(row[4]).toStartWith("550 µs");
    expect(row[5]).toBe("0.50×");
    expect(row[6]).toBe("2.00×");
    expect(row[7]).toBe("10.9");
    expect(row[8]).toBe("55%");
    expect(row[9]).toBe("throughput.ts, throughput_peers.py");
    expect(md).toContain("**20.0 GB/s** (stream.triad");
    // spread: samples 1.0, 1.1, 1.2 -> q1 1.05, q3 1.15: half IQR 0.05 / 1.1 = 5%.
    expect(row[2]).toBe("1.10 ms ±5%");
  });

  test("a case measured only for a peer is listed, not given a ratio", () => {
    expect(md).toContain("Measured for the peers only (no mlx-bun row): `exp 1M`.");
  });

  test("GEMM: GFLOP/s and fraction of the FMA peak", () => {
    // 2e6 flops / 2e4 ns = 100 GFLOP/s; of 200 -> 50%; vs torch 20 µs / 10 µs = 2.
    const row = tableRow(md, "matmul/float32 square 100");
    expect(row).toContain("100.0");
    expect(row).toContain("50%");
    expect(row).toContain("2.00×");
    // bfloat16: 2e6 / 1e3 = 2000 GFLOP/s, but the float32 FMA peak does not apply: no fraction.
    const bf = tableRow(md, "matmul/bfloat16 square 100");
    expect(bf).toContain("2000.0");
    expect(bf[bf.length - 2]).toBe(""); // the "of peak" cell, before "scripts"
  });

  test("bytes unit, and a row compared with a peer case of another name", () => {
    const mem = tableRow(md, "memory/loop");
    expect(mem[2]).toStartWith("3.0 MiB");
    expect(mem[3]).toStartWith("1.0 MiB");
    expect(mem[4]).toBe("3.00×");
    const ov = tableRow(md, "overhead/dispose.method");
    expect(ov[3]).toStartWith("200 ns");
    expect(ov[4]).toBe("0.25×");
  });

  test("an unavailable peer is listed with its reason, in the section and in the summary list", () => {
    expect(md).toContain("## Peers that could not run");
    expect(md).toContain("| throughput | TF.js (wasm) | cannot load: no WebAssembly here |");
    expect(md).toContain("- **TF.js (wasm): could not run.** cannot load: no WebAssembly here");
  });

  test("summary: geometric mean per benchmark and peer", () => {
    expect(md).toMatch(/\| Elementwise and reduction throughput \(`throughput`\) \| MLX \(Python\) \| 1 \| 0\.50× \|/);
    expect(md).toMatch(/\| GEMM \(`matmul`\) \| PyTorch CPU \| 1 \| 2\.00× \|/);
  });

  test("benchmarks of the catalog without records are named as not run", () => {
    expect(md).toContain("Not run in this invocation");
    expect(md).toContain("Sort (`sort`)");
    expect(md).not.toMatch(/Not run in this invocation[^\n]*`throughput`/);
  });

  test("linked areas are listed", () => {
    expect(md).toContain("| mx.compile speed-ups (`compile`) | `bench/run_compile.sh` | – | not in this checkout |");
  });

  test("charts: one per benchmark with ratios plus the summary, embedded as files", () => {
    const files = rep.charts.map((c) => c.file).sort();
    expect(files).toEqual(["matmul.svg", "memory.svg", "overhead.svg", "summary.svg", "throughput.svg"]);
    for (const f of files) expect(md).toContain(`(charts/${f})`);
    const svg = rep.charts.find((c) => c.file === "throughput.svg")!.svg;
    expect(svg).toStartWith("<svg xmlns=\"http://www.w3.org/2000/svg\"");
    expect(svg.trimEnd()).toEndWith("</svg>");
    // two bars for add 1M: 0.50× (MLX) and 2.00× (NumPy), labelled
    expect(svg).toContain("add 1M vs MLX (Python): 0.50×");
    expect(svg).toContain("add 1M vs NumPy: 2.00×");
    expect((svg.match(/<rect [^>]*><title>/g) ?? []).length).toBe(2);
  });
});

describe("SVG bar chart geometry", () => {
  test("bars start at the 1 line and extend on a log2 axis", () => {
    // Axis from 2^-2 to 2^2 over the plot width 760 - 260 - 70 = 430: x(1) = 260 + 215 = 475,
    // x(2) = 260 + 3/4 * 430 = 582.5, x(0.5) = 260 + 1/4 * 430 = 367.5.
    const svg = ratioChart([{ label: "c", bars: [{ series: "p", value: 2 }, { series: "q", value: 0.5 }] }], { title: "t", series: ["p", "q"] });
    expect(svg).toContain('<rect x="475" y="47" width="107.5" height="10" fill="#4e79a7">');
    expect(svg).toContain('<rect x="367.5" y="59" width="107.5" height="10" fill="#f28e2b">');
  });
  test("text is escaped", () => {
    const svg = ratioChart([{ label: "a<b & c", bars: [{ series: "p", value: 1.5 }] }], { title: "x\"y", series: ["p"] });
    expect(svg).toContain("a&lt;b &amp; c");
    expect(svg).toContain("x&quot;y");
    expect(svg).not.toContain("a<b");
  });
});

describe("collector", () => {
  test("per-area JSON lines become records with case names and work", () => {
    const raw = [
      '{"side":"mlx-bun","name":"add","n":1048576,"bytes":12,"ns":[3,1,2]}',
      '{"side":"info","mlx":"0.32.4"}',
      '{"side":"probe","name":"triad","n":4,"bytes":1200,"ns":[100,200,300]}',
      '{"side":"unavailable","peer":"jax-js","name":"","reason":"boom"}',
    ].join("\n");
    const recs = collectLines(raw, "throughput", "bench/throughput_peers.py", 2) as Rec[];
    expect(recs).toEqual([
      { type: "result", bench: "throughput", case: "add 1M", side: "mlx-bun", samples: [3, 1, 2], source: "bench/throughput_peers.py", pass: 2, work: { bytes: 12 } },
      { type: "probe", name: "numpy.triad", source: "bench/throughput_peers.py", gbps: 6 }, // 1200 B / 200 ns
      { type: "unavailable", bench: "throughput", side: "jax-js", reason: "boom" },
    ]);
    const mm = collectLines('{"side":"torch","name":"sq","dtype":"float32","batch":2,"m":3,"k":4,"n":5,"ns":[1]}', "matmul", "x.py", 1);
    expect(mm[0]).toMatchObject({ case: "float32 sq", work: { flops: 240 } }); // 2*2*3*4*5
  });
  test("overhead documents map the mlx-bun rows to their peer ids", () => {
    const bun = collectOverhead('{"runtime":"bun","results":[{"id":"dispose.method","peer":"dispose.del","rounds":[1,2]},{"id":"eval.scalar","peer":"eval.scalar","rounds":[3]}]}', "bench/overhead.ts", 1);
    expect(bun).toEqual([
      { type: "result", bench: "overhead", case: "dispose.method", side: "mlx-bun", samples: [1, 2], source: "bench/overhead.ts", pass: 1, peerCase: "dispose.del" },
      { type: "result", bench: "overhead", case: "eval.scalar", side: "mlx-bun", samples: [3], source: "bench/overhead.ts", pass: 1 },
    ]);
    const py = collectOverhead('{"runtime":"python","results":[{"id":"dispose.del","rounds":[4]}]}', "bench/overhead_mlx.py", 1);
    expect(py[0]).toMatchObject({ side: "mlx", case: "dispose.del" });
  });
  test("hyperfine times (seconds) become ns samples by side|case", () => {
    const recs = collectHyperfine('{"results":[{"command":"mlx|start-up","times":[0.5,0.25]}]}', "process", "hyperfine", 1);
    expect(recs[0]).toMatchObject({ side: "mlx", case: "start-up", samples: [5e8, 2.5e8] });
  });
  test("CPU facts from /proc/cpuinfo", () => {
    const f = cpuFacts("processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu sse4_2 avx2 fma avx512f amx_tile\n");
    expect(f.model).toBe("Some Xeon");
    expect(f.flags).toEqual(["sse4_2", "avx2", "fma", "avx512f", "amx_tile"]);
  });
});
