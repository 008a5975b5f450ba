// MNIST training steps, the mlx-bun side of bench/run_mnist.sh (the MLX side is
// bench/mnist_step_mlx.py: the same digits, split, model, batch and optimizer). One step = take a
// batch, nn.valueAndGrad of the cross-entropy, Adam update, eval of loss, parameters and state:
// exactly examples/mnist.ts's step (with --compile, its compiled step: mx.compile with the model's
// and the optimizer's state as inputs and outputs). Prints one JSON line:
// { side, compiled, ns: [per-step times], rssKb }.
//   bun bench/mnist_step.ts [--steps N] [--warmup N] [--compile]
import * as mx from "../src/index.ts";
import { loadDigits, MLP } from "../examples/mnist.ts";

const { nn, optimizers: optim } = mx;
const argOf = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const steps = argOf("steps", 125);
const warmup = argOf("warmup", 10);
const batch = 64;
const compiled = process.argv.includes("--compile");

const { train } = loadDigits();
const n = train.y.length;
const trainX = mx.array(train.x, { shape: [n, 784] });
const trainY = mx.array(train.y);
mx.random.seed(0);
const model = new MLP(2, 784, 256, 10);
mx.eval(model.parameters());
const optimizer = new optim.Adam(1e-3);
// As examples/mnist.ts: the replaced parameters and state are released at each update (compiled,
// the compiled function's outputs replace them).
optimizer.releaseReplaced = !compiled;
const lossAndGrad = nn.valueAndGrad(model, (x: mx.Array, y: mx.Array) => nn.losses.crossEntropy(model.forward(x), y, { reduction: "mean" }));
const trainStep = (x: mx.Array, y: mx.Array): mx.Array => {
  const [loss, grads] = lossAndGrad(x, y);
  optimizer.update(model, grads);
  return loss;
};
const state = [model.state, optimizer.state];
const step = compiled ? mx.compile(trainStep, { inputs: state, outputs: state }) : trainStep;

const perm = mx.random.permutation(n);
mx.eval(perm);
const ns: number[] = [];
for (let s = 0; s < warmup + steps; s++) {
  const b = s % Math.floor(n / batch);
  const t0 = Bun.nanoseconds();
  mx.tidy(() => {
    const ids = perm.index(mx.sl(b * batch, (b + 1) * batch));
    const loss = step(mx.take(trainX, ids, 0), mx.take(trainY, ids, 0));
    mx.eval(loss, model.parameters(), optimizer.state);
  });
  if (s >= warmup) ns.push(Bun.nanoseconds() - t0);
}
if (process.env.MNIST_MEM) console.error({ active: mx.getActiveMemory() / 2 ** 20, peak: mx.getPeakMemory() / 2 ** 20, cache: mx.getCacheMemory?.() / 2 ** 20, live: mx.getLiveHandleCount() });
console.log(JSON.stringify({ side: "mlx-bun", compiled, ns, rssKb: process.resourceUsage().maxRSS }));
