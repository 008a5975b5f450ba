// Soak: a training loop written as an MLX user writes it (no dispose, no tidy): a small MLP
// (nn.Sequential of Linear/ReLU) trained with Adam on a fixed synthetic regression task through
// nn.valueAndGrad, one mx.eval per step. Every `every` steps it records the process's resident
// memory (VmRSS), the engine's active memory and its live handle count. Prints one JSON line per
// sample ({ step, rssMiB, activeMiB, handles, loss }) and a summary line at the end
// ({ summary: ... }: least-squares slopes of RSS and active memory over the second half, in
// MiB per 1,000 steps, peak RSS and the loss at the start and the end).
//
//   bun scripts/soak.ts [steps=100000] [every=1000] [gc]
//
// With "gc", each sample also runs a full garbage collection after the natural readings and
// records what stays alive (activeAfterGcMiB, handlesAfterGc): the memory a leak would grow.
// The natural readings follow the collector's own cycle, which over the first few thousand
// steps only rises (its heap grows before the first full collection), so a short run needs
// the collected readings to tell a leak from that warm-up.
//
// test/soak.test.ts runs a bounded version of this file in CI; docs/RELIABILITY.md records a full run.
import * as mx from "../src/index.ts";
import { readFileSync } from "node:fs";

const steps = Number(process.argv[2] ?? 100_000);
const every = Number(process.argv[3] ?? 1000);
const collect = process.argv[4] === "gc";
const nn = mx.nn;

function statusKiB(field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : -1;
}

/** Least-squares slope of ys over xs. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx_ = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx_) * (ys[i]! - my);
    den += (xs[i]! - mx_) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

mx.random.seed(0);
const model = new nn.Sequential(new nn.Linear(16, 64), new nn.ReLU(), new nn.Linear(64, 64), new nn.ReLU(), new nn.Linear(64, 4));
const optimizer = new mx.optimizers.Adam(1e-3);
const wTrue = mx.random.normal([16, 4]);
const lossFn = (x: mx.Array, y: mx.Array) => mx.mean(mx.square(mx.subtract(model.forward(x), y)));
const lossAndGrad = nn.valueAndGrad(model, lossFn);

const samples: { step: number; rssMiB: number; activeMiB: number; handles: number; loss: number; activeAfterGcMiB?: number; handlesAfterGc?: number }[] = [];
let firstLoss = NaN;
let lastLoss = NaN;
const t0 = performance.now();
for (let step = 1; step <= steps; step++) {
  const x = mx.random.normal([32, 16]);
  const y = mx.matmul(x, wTrue);
  const [loss, grads] = lossAndGrad(x, y);
  optimizer.update(model, grads);
  mx.eval(model.parameters(), optimizer.state, loss);
  if (step === 1) firstLoss = loss.item() as number;
  if (step % every === 0 || step === steps) {
    lastLoss = loss.item() as number;
    const s: (typeof samples)[number] = {
      step,
      rssMiB: statusKiB("VmRSS") / 1024,
      activeMiB: mx.getActiveMemory() / 2 ** 20,
      handles: mx.getLiveHandleCount(),
      loss: lastLoss,
    };
    if (collect) {
      Bun.gc(true);
      s.activeAfterGcMiB = mx.getActiveMemory() / 2 ** 20;
      s.handlesAfterGc = mx.getLiveHandleCount();
    }
    samples.push(s);
    console.log(JSON.stringify(s));
  }
}
const half = samples.slice(Math.floor(samples.length / 2));
const xs = half.map((s) => s.step / 1000);
const summary = {
  steps,
  seconds: (performance.now() - t0) / 1000,
  firstLoss,
  lastLoss,
  peakRssMiB: statusKiB("VmHWM") / 1024,
  rssSlopeMiBPer1k: slope(xs, half.map((s) => s.rssMiB)),
  activeSlopeMiBPer1k: slope(xs, half.map((s) => s.activeMiB)),
  handlesSlopePer1k: slope(xs, half.map((s) => s.handles)),
  secondHalf: {
    rssMiB: [Math.min(...half.map((s) => s.rssMiB)), Math.max(...half.map((s) => s.rssMiB))],
    activeMiB: [Math.min(...half.map((s) => s.activeMiB)), Math.max(...half.map((s) => s.activeMiB))],
    handles: [Math.min(...half.map((s) => s.handles)), Math.max(...half.map((s) => s.handles))],
  },
};
console.log(JSON.stringify({ summary }));
