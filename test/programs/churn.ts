// Creates and evaluates N arrays of 1 MiB each, in one synchronous loop, and reports peak RSS
// and engine counters as JSON. Mode "none" never disposes (the GC backstop must bound
// memory); mode "using" disposes each array at the end of its block; "tidy" uses mx.tidy.
import * as mx from "../../src/index.ts";
import { readFileSync } from "node:fs";

const mode = process.argv[2] ?? "none";
const n = Number(process.argv[3] ?? 200_000);
const src = new Float32Array(262_144); // 1 MiB
for (let i = 0; i < src.length; i++) src[i] = i;

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : -1;
}

const start = { handles: mx.getLiveHandleCount(), active: mx.getActiveMemory() };
let check = 0;
for (let i = 0; i < n; i++) {
  if (mode === "using") {
    using a = mx.array(src);
    mx.eval(a);
    check += a.size;
  } else if (mode === "tidy") {
    check += mx.tidy(() => {
      const a = mx.array(src);
      mx.eval(a);
      return a.size;
    });
  } else {
    const a = mx.array(src);
    mx.eval(a);
    check += a.size;
  }
}
const end = { handles: mx.getLiveHandleCount(), active: mx.getActiveMemory() };
console.log(JSON.stringify({ mode, n, check, peakRssMiB: peakRssMiB(), start, end, peakActiveMiB: mx.getPeakMemory() / 2 ** 20 }));
