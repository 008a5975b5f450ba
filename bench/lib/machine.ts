// The "meta" record of a bench/run_all.sh run: machine (CPU model, cores, SIMD flags, memory,
// kernel, load), versions of mlx-bun's toolchain and of every peer, and the run's mode.
//   bun bench/lib/machine.ts versions.json [--quick] [--passes N] [--caveat "text"]... > meta.json
// versions.json: { "name": "version or why it is missing", ... } gathered by run_all.sh.
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem, type as osType } from "node:os";
import type { Meta } from "./records.ts";

/** The SIMD-relevant flags of /proc/cpuinfo's first CPU. */
export const FLAG_NAMES = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd", "sve"];

export function cpuFacts(cpuinfo: string): { model: string; flags: string[] } {
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown CPU";
  const all = (cpuinfo.match(/^(?:flags|Features)\s*:(.*)$/m)?.[1] ?? "").trim().split(/\s+/);
  return { model, flags: FLAG_NAMES.filter((f) => all.includes(f)) };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const versions = JSON.parse(readFileSync(args[0]!, "utf8")) as Record<string, string>;
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // not Linux
  }
  const { model, flags } = cpuFacts(cpuinfo);
  const caveats: string[] = [];
  args.forEach((a, i) => {
    if (a === "--caveat" && args[i + 1]) caveats.push(args[i + 1]!);
  });
  const passes = Number(args[args.indexOf("--passes") + 1] ?? 1);
  const la = loadavg();
  const meta: Meta = {
    type: "meta",
    date: new Date().toISOString(),
    quick: args.includes("--quick"),
    passes: args.includes("--passes") ? passes : 1,
    caveats,
    machine: {
      cpu: model,
      logicalCpus: cpus().length,
      flags,
      memGiB: totalmem() / 2 ** 30,
      kernel: `${osType()} ${release()}`,
      load: `load average ${la.map((x) => x.toFixed(2)).join(", ")} at the start`,
    },
    versions,
  };
  console.log(JSON.stringify(meta));
}
