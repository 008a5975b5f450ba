// One training step of a small causal transformer LM, for bench/run_all.sh: token Embedding ->
// nn.TransformerEncoder (pre-norm, ReLU MLP, additive causal mask) -> Linear head ->
// cross-entropy (mean) -> nn.valueAndGrad -> SGD update; the loss and the updated parameters are
// evaluated; each configuration plain and compiled (mx.compile, the model's and the optimizer's
// state as inputs and outputs). bench/transformer_step_mlx.py runs the identical configuration in
// MLX Python.
// One JSON line per configuration: { side, name, flops, ns: [rounds...] } (flops: the usual
// 6 · parameters · tokens estimate of a training step, for a rough GFLOP/s).
import * as mx from "../src/index.ts";

const targetMs = Number(process.env.BENCH_CASE_MS ?? 3000);
const quick = process.env.BENCH_QUICK === "1";

export type Config = { name: string; vocab: number; dims: number; heads: number; layers: number; seq: number; batch: number };
export const CONFIGS: Config[] = [
  { name: "tiny (2 layers, d=64, 4 heads, seq 32, batch 4, vocab 256)", vocab: 256, dims: 64, heads: 4, layers: 2, seq: 32, batch: 4 },
  { name: "small (2 layers, d=128, 4 heads, seq 64, batch 8, vocab 512)", vocab: 512, dims: 128, heads: 4, layers: 2, seq: 64, batch: 8 },
  ...(quick ? [] : [{ name: "medium (4 layers, d=256, 8 heads, seq 128, batch 8, vocab 1024)", vocab: 1024, dims: 256, heads: 8, layers: 4, seq: 128, batch: 8 }]),
];

/** batch × (seq + 1) token ids: ((i · 2654435761) mod 2^32) mod vocab, as in the Python side. */
export function tokens(c: Config): Int32Array {
  const n = c.batch * (c.seq + 1);
  return Int32Array.from({ length: n }, (_, i) => (Math.imul(i, 2654435761 | 0) >>> 0) % c.vocab);
}

class LM extends mx.nn.Module {
  embedding: mx.nn.Embedding;
  encoder: mx.nn.TransformerEncoder;
  head: mx.nn.Linear;
  constructor(c: Config) {
    super();
    this.embedding = new mx.nn.Embedding(c.vocab, c.dims);
    this.encoder = new mx.nn.TransformerEncoder(c.layers, c.dims, c.heads);
    this.head = new mx.nn.Linear(c.dims, c.vocab);
  }
  forward(x: mx.Array, mask: mx.Array): mx.Array {
    return this.head.forward(this.encoder.forward(this.embedding.forward(x), mask));
  }
}

export function paramCount(model: mx.nn.Module): number {
  return mx.utils.treeFlatten(model.parameters()).reduce((s, [, a]) => s + (a as mx.Array).size, 0);
}

if (import.meta.main) {
  for (const c of CONFIGS) for (const compiled of [false, true]) {
    mx.random.seed(0);
    const model = new LM(c);
    const opt = new mx.optimizers.SGD(0.01);
    const t = mx.array(tokens(c)).reshape([c.batch, c.seq + 1]);
    const x = t.index(mx.sl(), mx.sl(0, c.seq));
    const y = t.index(mx.sl(), mx.sl(1, c.seq + 1));
    const mask = mx.nn.MultiHeadAttention.createAdditiveCausalMask(c.seq);
    mx.eval(x, y, mask, model.parameters());
    const lossAndGrad = mx.nn.valueAndGrad(model, (xx: mx.Array, yy: mx.Array) => mx.nn.losses.crossEntropy(model.forward(xx, mask), yy, { reduction: "mean" }));
    const trainStep = (xx: mx.Array, yy: mx.Array): mx.Array => {
      const [loss, grads] = lossAndGrad(xx, yy);
      opt.update(model, grads);
      return loss;
    };
    // Compiled as MLX's examples do: the model's and the optimizer's state as inputs and outputs.
    const state = [model.state, opt.state];
    const step = compiled ? mx.compile(trainStep, { inputs: state, outputs: state }) : trainStep;
    const once = () => {
      const t0 = Bun.nanoseconds();
      mx.tidy(() => {
        const loss = step(x, y);
        mx.eval(loss, model.parameters());
      });
      return Bun.nanoseconds() - t0;
    };
    for (let i = 0; i < 3; i++) once();
    const first = once();
    const rounds = Math.max(5, Math.min(200, Math.round((targetMs * 1e6) / first)));
    const ns = Array.from({ length: rounds }, once);
    const flops = 6 * paramCount(model) * c.batch * c.seq;
    console.log(JSON.stringify({ side: "mlx-bun", name: compiled ? `${c.name}, compiled` : c.name, flops, ns }));
  }
}
