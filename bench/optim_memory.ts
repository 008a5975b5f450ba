// Memory of a training loop written as MLX users write it (no dispose, no tidy), for the
// optimizer-memory notes in bench/REPORT-fast.md: examples/mnist.ts's model (MLP 784-256-256-10,
// Adam, batch 64) on random data. Prints, every `--every` steps, the engine's active bytes, live
// handles and the process RSS, then the peaks and the median step time.
//   bun bench/optim_memory.ts [--steps 300] [--every 50] [--tidy]
//   --tidy: each step inside mx.tidy (as examples/mnist.ts does)
//   --release: optimizer.releaseReplaced = true (replaced parameters and state released at once)
import { readFileSync } from "node:fs";
import * as mx from "../src/index.ts";

const { nn, optimizers: optim } = mx;
const arg = (n: string, d: number) => (process.argv.includes(`--${n}`) ? Number(process.argv[process.argv.indexOf(`--${n}`) + 1]) : d);
const steps = arg("steps", 300);
const every = arg("every", 50);
const useTidy = process.argv.includes("--tidy");
const release = process.argv.includes("--release");
const rss = () => Number(readFileSync("/proc/self/status", "utf8").match(/^VmRSS:\s+(\d+)/m)![1]) * 1024;
const MiB = (b: number) => (b / 2 ** 20).toFixed(1);

class MLP extends nn.Module {
  layers: mx.nn.Linear[];
  constructor() {
    super();
    const dims = [784, 256, 256, 10];
    this.layers = dims.slice(1).map((d, i) => new nn.Linear(dims[i]!, d));
  }
  forward(x: mx.Array): mx.Array {
    for (const l of this.layers.slice(0, -1)) x = nn.relu(l.forward(x));
    return this.layers.at(-1)!.forward(x);
  }
}

mx.random.seed(0);
const model = new MLP();
mx.eval(model.parameters());
const opt = new optim.Adam(1e-3);
opt.releaseReplaced = release;
const lossAndGrad = nn.valueAndGrad(model, (x: mx.Array, y: mx.Array) => nn.losses.crossEntropy(model.forward(x), y, { reduction: "mean" }));
const X = mx.random.uniform(0, 1, [1024, 784]);
const Y = mx.random.randint(0, 10, [1024]);
mx.eval(X, Y);
const paramBytes = mx.utils.treeFlatten(model.parameters()).reduce((n, [, a]) => n + (a as mx.Array).nbytes, 0);
console.log(`parameters: ${MiB(paramBytes)} MiB (Adam state: twice that); ${useTidy ? "steps in mx.tidy" : "no tidy, no dispose"}${release ? ", releaseReplaced" : ""}`);
const step = (i: number) => {
  const s = (i * 64) % 1024;
  const x = X.index(mx.sl(s, s + 64));
  const y = Y.index(mx.sl(s, s + 64));
  const [loss, grads] = lossAndGrad(x, y);
  opt.update(model, grads);
  mx.eval(loss, model.parameters(), opt.state);
  return loss;
};
mx.resetPeakMemory();
const base = mx.getActiveMemory();
let peakActive = 0;
let peakHandles = 0;
const times: number[] = [];
for (let i = 0; i < steps; i++) {
  const t = performance.now();
  if (useTidy) mx.tidy(() => void step(i));
  else step(i);
  times.push(performance.now() - t);
  peakActive = Math.max(peakActive, mx.getActiveMemory() - base);
  peakHandles = Math.max(peakHandles, mx.getLiveHandleCount());
  if ((i + 1) % every === 0) console.log(`step ${i + 1}: active +${MiB(mx.getActiveMemory() - base)} MiB, ${mx.getLiveHandleCount()} handles, RSS ${MiB(rss())} MiB`);
}
times.sort((a, b) => a - b);
console.log(`peak active +${MiB(peakActive)} MiB over the start (engine peak ${MiB(mx.getPeakMemory())} MiB), peak ${peakHandles} handles, median step ${times[times.length >> 1]!.toFixed(2)} ms`);
console.log(JSON.stringify({ tidy: useTidy, release, steps, peakActiveMiB: +MiB(peakActive), enginePeakMiB: +MiB(mx.getPeakMemory()), peakHandles, medianMs: +times[times.length >> 1]!.toFixed(2) }));
