// Linear regression by gradient descent (MLX's examples/python/linear_regression.py in mlx-bun):
// synthetic data y = X w* + noise, then `numIters` steps of w <- w - lr * grad(loss)(w).
//
//   bun examples/linear_regression.ts [--iters N] [--compile]
import * as mx from "../src/index.ts";

const i = process.argv.indexOf("--iters");
const numIters = i >= 0 ? Number(process.argv[i + 1]) : 10_000;
const compiled = process.argv.includes("--compile");
const numFeatures = 100;
const numExamples = 1_000;
const lr = 0.01;

mx.random.seed(0);
// True parameters
const wStar = mx.random.normal([numFeatures]);
// Input examples (design matrix)
const X = mx.random.normal([numExamples, numFeatures]);
// Noisy labels
const eps = mx.multiply(1e-2, mx.random.normal([numExamples]));
const y = mx.add(mx.matmul(X, wStar), eps);

// Initialize random parameters
let w = mx.multiply(1e-2, mx.random.normal([numFeatures]));

const lossFn = (w: mx.Array) => mx.multiply(0.5, mx.mean(mx.square(mx.subtract(mx.matmul(X, w), y))));
const gradFn = mx.grad(lossFn) as (w: mx.Array) => mx.Array;

// One step of gradient descent; with --compile it is traced once and replayed by the engine
// (X and y are captured as constants of the compiled step, as in MLX).
const trainStep = (w: mx.Array): mx.Array => mx.subtract(w, mx.multiply(lr, gradFn(w)));
const step = compiled ? mx.compile(trainStep) : trainStep;

mx.eval(wStar, X, y, w);
const loss0 = lossFn(w).item() as number;
const tic = performance.now();
for (let it = 0; it < numIters; it++) {
  const next = mx.tidy(() => step(w));
  mx.eval(next);
  w.dispose();
  w = next;
}
const toc = performance.now();

const loss = lossFn(w).item() as number;
const errorNorm = mx.sum(mx.square(mx.subtract(w, wStar))).item() as number;
const throughput = numIters / ((toc - tic) / 1000);
console.log(`Initial loss ${loss0.toFixed(5)}${compiled ? " (compiled step)" : ""}`);
console.log(`Loss ${loss.toFixed(5)}, L2 distance: |w-w*| = ${Math.sqrt(errorNorm).toExponential(5)}, Throughput ${throughput.toFixed(2)} (it/s)`);
