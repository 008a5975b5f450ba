// A small character-level transformer language model (after MLX's transformer_lm example):
// Embedding + sinusoidal positions + nn.TransformerEncoder (pre-norm, causal mask) + a linear
// head, trained with Adam on examples/data/public_domain.txt (public-domain texts shipped in
// the repo). The last 10% of the text is held out; its loss is printed as training goes and
// must fall.
//
//   bun examples/transformer_lm.ts [--steps N] [--eval-every N] [--context N] [--batch N]
//                                  [--layers N] [--dims N] [--heads N] [--lr X] [--seed N]
//                                  [--compile]
//
// --compile compiles the training step with mx.compile, the model's and the optimizer's state
// and the random state captured as its inputs and outputs (as MLX's examples do).
import { readFileSync } from "node:fs";
import * as mx from "../src/index.ts";

const { nn, optimizers: optim } = mx;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name} needs a number`);
  return v;
}
const cfg = {
  steps: arg("steps", 400),
  evalEvery: arg("eval-every", 50),
  context: arg("context", 64),
  batch: arg("batch", 32),
  layers: arg("layers", 2),
  dims: arg("dims", 64),
  heads: arg("heads", 4),
  lr: arg("lr", 3e-3),
  seed: arg("seed", 0),
  compile: process.argv.includes("--compile"),
};

export class TransformerLM extends nn.Module {
  embedding: mx.nn.Embedding;
  pe: mx.nn.SinusoidalPositionalEncoding;
  transformer: mx.nn.TransformerEncoder;
  out_proj: mx.nn.Linear;
  constructor(vocabSize: number, numLayers: number, dims: number, numHeads: number) {
    super();
    this.embedding = new nn.Embedding(vocabSize, dims);
    this.pe = new nn.SinusoidalPositionalEncoding(dims);
    this.transformer = new nn.TransformerEncoder(numLayers, dims, numHeads, { normFirst: true });
    this.out_proj = new nn.Linear(dims, vocabSize);
  }
  forward(x: mx.Array): mx.Array {
    const L = x.shape[1]!;
    const mask = nn.MultiHeadAttention.createAdditiveCausalMask(L);
    let h = this.embedding.forward(x);
    h = mx.add(h, this.pe.forward(mx.arange(L)));
    h = this.transformer.forward(h, mask);
    return this.out_proj.forward(h);
  }
}

if (import.meta.main) {
  const text = readFileSync(new URL("./data/public_domain.txt", import.meta.url), "utf8");
  const vocab = [...new Set(text)].sort();
  const index = new Map(vocab.map((c, i) => [c, i]));
  const ids = Int32Array.from(text, (c) => index.get(c)!);
  const split = Math.floor(ids.length * 0.9);
  const train = ids.subarray(0, split);
  const heldOut = ids.subarray(split);
  console.log(`mlx-bun transformer LM: ${ids.length} characters (vocabulary ${vocab.length}), ${train.length} to train, ${heldOut.length} held out`);

  // Held-out windows: every non-overlapping (context + 1)-character window of the held-out text.
  const C = cfg.context;
  const nWin = Math.floor((heldOut.length - 1) / C);
  const hx = new Int32Array(nWin * C);
  const hy = new Int32Array(nWin * C);
  for (let w = 0; w < nWin; w++) {
    hx.set(heldOut.subarray(w * C, w * C + C), w * C);
    hy.set(heldOut.subarray(w * C + 1, w * C + C + 1), w * C);
  }
  const heldX = mx.array(hx, { shape: [nWin, C] });
  const heldY = mx.array(hy, { shape: [nWin, C] });
  const trainArr = mx.array(train);

  mx.random.seed(cfg.seed);
  const model = new TransformerLM(vocab.length, cfg.layers, cfg.dims, cfg.heads);
  mx.eval(model.parameters());
  const nParams = mx.utils.treeFlatten(model.parameters()).reduce((n, [, p]) => n + (p as mx.Array).size, 0);
  console.log(`${cfg.layers} layers, ${cfg.dims} dims, ${cfg.heads} heads: ${nParams} parameters; context ${C}, batch ${cfg.batch}, Adam lr ${cfg.lr}${cfg.compile ? ", compiled step" : ""}`);
  const optimizer = new optim.Adam(cfg.lr);

  const lossFn = (x: mx.Array, y: mx.Array) => nn.losses.crossEntropy(model.forward(x), y, { reduction: "mean" });
  const lossAndGrad = nn.valueAndGrad(model, lossFn);

  // One training step: forward, backward, update. Compiled (--compile), the state it reads and
  // writes (parameters, optimizer state, the random key) is captured as inputs and outputs.
  const trainStep = (x: mx.Array, y: mx.Array): mx.Array => {
    const [loss, grads] = lossAndGrad(x, y);
    optimizer.update(model, grads);
    return loss;
  };
  const state = [model.state, optimizer.state, mx.random.state];
  const step = cfg.compile ? mx.compile(trainStep, { inputs: state, outputs: state }) : trainStep;

  const heldOutLoss = (): number =>
    mx.tidy(() => {
      model.eval();
      const l = lossFn(heldX, heldY).item() as number;
      model.train();
      return l;
    });

  // A batch of random windows of the training text.
  const offsets = mx.arange(C + 1);
  const batch = () => {
    const starts = mx.random.randint(0, train.length - C - 1, [cfg.batch, 1]);
    const win = mx.take(trainArr, mx.add(starts, offsets), 0);
    return [win.index(mx.sl(), mx.sl(0, C)), win.index(mx.sl(), mx.sl(1, C + 1))] as const;
  };

  const t0 = performance.now();
  console.log(`step 0: held-out loss ${heldOutLoss().toFixed(4)}`);
  let acc = 0;
  let n = 0;
  for (let s = 1; s <= cfg.steps; s++) {
    acc += mx.tidy(() => {
      const [x, y] = batch();
      const loss = step(x, y);
      mx.eval(loss, model.parameters(), optimizer.state);
      return loss.item() as number;
    });
    n++;
    if (s % cfg.evalEvery === 0 || s === cfg.steps) {
      const secs = (performance.now() - t0) / 1000;
      console.log(`step ${s}: train loss ${(acc / n).toFixed(4)}, held-out loss ${heldOutLoss().toFixed(4)}, ${(s / secs).toFixed(1)} steps/s`);
      acc = 0;
      n = 0;
    }
  }

  // A sample from the trained model (greedy), seeded with the held-out text's first characters.
  const prompt = Array.from(heldOut.subarray(0, 16));
  const out = [...prompt];
  for (let i = 0; i < 80; i++) {
    const next = mx.tidy(() => {
      const ctx = mx.array(Int32Array.from(out.slice(-C)), { shape: [1, Math.min(C, out.length)] });
      return mx.argmax(model.forward(ctx).index(0, -1)).item() as number;
    });
    out.push(next);
  }
  console.log(`sample: ${JSON.stringify(out.map((i) => vocab[i]).join(""))}`);
}
