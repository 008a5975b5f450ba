// Peak RSS of a training loop, for bench/run_all.sh: a fresh process builds a two-layer MLP
// (784-512-10, batch 128, SGD), runs `--steps` training steps and prints its peak resident set
// size (VmHWM of /proc/self/status) as one JSON line { side, name, unit: "bytes", samples: [rss] }.
//   bun bench/memory_loop.ts --mode dispose   each step inside mx.tidy, replaced parameters disposed
//   bun bench/memory_loop.ts --mode gc        no explicit disposal: the garbage collector releases
//   bun bench/memory_loop.ts --mode idle      the model only, no step (the process's floor)
// bench/memory_loop_mlx.py is the MLX Python side (same model, same steps).
import { readFileSync } from "node:fs";
import * as mx from "../src/index.ts";

export const CASE_NAMES = {
  idle: "idle: runtime + library + model, no step",
  dispose: "training loop, explicit disposal",
  gc: "training loop, no explicit disposal",
} as const;

export function peakRss(): number {
  const m = readFileSync("/proc/self/status", "utf8").match(/^VmHWM:\s+(\d+)\s+kB/m);
  return m ? Number(m[1]) * 1024 : NaN;
}

class MLP extends mx.nn.Module {
  l1 = new mx.nn.Linear(784, 512);
  l2 = new mx.nn.Linear(512, 10);
  forward(x: mx.Array): mx.Array {
    return this.l2.forward(mx.nn.relu(this.l1.forward(x)));
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const mode = (args[args.indexOf("--mode") + 1] ?? "dispose") as keyof typeof CASE_NAMES;
  const steps = Number(args.includes("--steps") ? args[args.indexOf("--steps") + 1] : (process.env.BENCH_MEMORY_STEPS ?? 300));
  mx.random.seed(0);
  const model = new MLP();
  const opt = new mx.optimizers.SGD(0.01);
  const lossAndGrad = mx.nn.valueAndGrad(model, (x: mx.Array, y: mx.Array) => mx.nn.losses.crossEntropy(model.forward(x), y, { reduction: "mean" }));
  mx.eval(model.parameters());
  if (mode !== "idle") {
    for (let i = 0; i < steps; i++) {
      if (mode === "dispose") {
        const old = mx.utils.treeFlatten(model.trainableParameters()).map(([, a]) => a as mx.Array);
        mx.tidy(() => {
          const x = mx.random.normal([128, 784]);
          const y = mx.random.randint(0, 10, [128]);
          const [loss, grads] = lossAndGrad(x, y);
          opt.update(model, grads);
          mx.eval(loss, model.parameters());
        });
        const now = new Set(mx.utils.treeFlatten(model.trainableParameters()).map(([, a]) => a as mx.Array));
        for (const a of old) if (!now.has(a)) a.dispose();
      } else {
        const x = mx.random.normal([128, 784]);
        const y = mx.random.randint(0, 10, [128]);
        const [loss, grads] = lossAndGrad(x, y);
        opt.update(model, grads);
        mx.eval(loss, model.parameters());
      }
    }
  }
  console.log(JSON.stringify({ side: "mlx-bun", name: CASE_NAMES[mode], unit: "bytes", samples: [peakRss()], steps: mode === "idle" ? 0 : steps }));
}
