#!/usr/bin/env bash
# Native vs portable engine (engine/cpu.zig): runs bench/dispatch.ts against several builds of the
# library, alternating builds within each pass (the machine is shared), and prints a markdown
# table of the medians over passes. Usage:
#   bash bench/run_dispatch.sh native=/path/a.so portable=/path/b.so portable@avx2=/path/b.so ...
# A label's "@level" part sets MLXB_CPU_LEVEL for that column. PASSES (default 3), BENCH_ONLY and
# BENCH_CASE_MS pass through.
source "$(dirname "$0")/lib/common.sh"  # strict mode, repo root, $out
passes=${PASSES:-3}
for p in $(seq 1 "$passes"); do
  for spec in "$@"; do
    label=${spec%%=*}
    lib=${spec#*=}
    level=""
    [[ $label == *@* ]] && level=${label#*@}
    MLX_BUN_LIB=$lib MLXB_CPU_LEVEL=$level .toolchain/bin/bun bench/dispatch.ts | sed "s/^{/{\"label\":\"$label\",/" >> "$out/all.jsonl"
  done
done
.toolchain/bin/bun -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const labels = [...new Set(lines.map((l) => l.label))];
const names = [...new Set(lines.map((l) => l.name))];
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const fmt = (ns) => ns >= 1e6 ? (ns / 1e6).toFixed(2) + " ms" : (ns / 1e3).toFixed(1) + " us";
console.log("| case | " + labels.join(" | ") + " | " + labels.slice(1).map((l) => l + " / " + labels[0]).join(" | ") + " |");
console.log("|---|" + labels.map(() => "---:").join("|") + "|" + labels.slice(1).map(() => "---:").join("|") + "|");
for (const n of names) {
  const m = labels.map((l) => med(lines.filter((x) => x.label === l && x.name === n).map((x) => x.ns)));
  console.log("| " + n + " | " + m.map(fmt).join(" | ") + " | " + m.slice(1).map((v) => (v / m[0]).toFixed(2)).join(" | ") + " |");
}
' "$out/all.jsonl"
