// nn.Conv*/ConvTranspose* and the quantized layers (QuantizedLinear, QuantizedEmbedding,
// nn.quantize) against real MLX 0.32.4 (test/fixtures/nn/gen_nn_conv_quant.py): seeded initial
// parameters bit for bit, forward values, gradients, an Adam step on a small CNN, and quantized
// models whose parameters and outputs are MLX's bit for bit.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, loadFixture, numbersOf, toHex, type Rec } from "./fixture";

const { nn } = mx;
type Flat = [string, Rec][];
interface ConvCase { name: string; seed: number; repr: string; params: Flat; x: Rec; y: Rec; loss: Rec; grads: Flat; gx: Rec }
interface QCase { repr: string; params: Flat; y: Rec; trainable: string[]; loss?: Rec; grads?: Flat }
interface Fx {
  conv: ConvCase[];
  cnnStep: { params0: Flat; x: Rec; y: Rec; loss1: Rec; grads1: Flat; params1: Flat; loss2: Rec };
  quant: {
    initLinear: { repr: string; params: Flat; trainable: string[]; x: Rec; y: Rec };
    initEmbedding: { repr: string; params: Flat; trainable: string[]; ids: Rec; y: Rec; asLinear: Rec };
    linearParams: Flat;
    x: Rec;
    fromLinear: Record<string, QCase & { gs: number | null; bits: number | null; mode: mx.QuantizationMode }>;
    netParams: Flat;
    netIds: Rec;
    netY: Rec;
    quantize: Record<string, QCase>;
    errNoToQuantized: string;
    errMode: string;
  };
}
const fx = loadFixture<Fx>("nn/nn_conv_quant.json.gz");

function close(a: mx.Array, r: Rec, rtol = 1e-5, atol = 1e-6): void {
  expect(a.shape).toEqual(r.shape);
  expect(a.dtype.name).toBe(r.dtype);
  const got = numbersOf(bytesOf(a), r.dtype);
  const want = numbersOf(Uint8Array.from(Buffer.from(r.hex, "hex")), r.dtype);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (Math.abs(g - w) > atol + rtol * Math.abs(w)) throw new Error(`element ${i}: got ${g}, want ${w}`);
  }
}

function exact(a: mx.Array, r: Rec): void {
  expect(a.shape).toEqual(r.shape);
  expect(a.dtype.name).toBe(r.dtype);
  expect(toHex(bytesOf(a))).toBe(r.hex);
}

/** Products of quantized matrices: MLX's kernel sums in another order, so |ours - MLX| <= tol * max|MLX| (as test/quantized.test.ts). */
function closeMax(a: mx.Array, r: Rec, tol = 1e-5): void {
  expect(a.shape).toEqual(r.shape);
  expect(a.dtype.name).toBe(r.dtype);
  const got = numbersOf(bytesOf(a), r.dtype);
  const want = numbersOf(Uint8Array.from(Buffer.from(r.hex, "hex")), r.dtype);
  const m = want.reduce((p, w) => Math.max(p, Math.abs(w)), 0);
  for (let i = 0; i < want.length; i++) if (Math.abs(got[i]! - want[i]!) > tol * m) throw new Error(`element ${i}: got ${got[i]}, want ${want[i]} (max ${m})`);
}

function expectParams(tree: unknown, want: Flat, cmp: (a: mx.Array, r: Rec) => void = exact): void {
  const got = mx.utils.treeFlatten(tree);
  expect(got.map(([k]) => k)).toEqual(want.map(([k]) => k));
  got.forEach(([, v], i) => cmp(v, want[i]![1]));
}

const unflat = (f: Flat) => mx.utils.treeUnflatten(f.map(([k, r]) => [k, arrayOf(r)] as [string, mx.Array]));

const convMakers: Record<string, () => mx.nn.Module & { forward(x: mx.Array): mx.Array }> = {
  Conv1d: () => new nn.Conv1d(4, 6, 3),
  Conv1dOpts: () => new nn.Conv1d(4, 6, 3, 2, 1, 2, 2, false),
  Conv2d: () => new nn.Conv2d(3, 5, 3),
  Conv2dOpts: () => new nn.Conv2d(4, 6, [3, 2], { stride: [2, 1], padding: [1, 0], dilation: 1, groups: 2 }),
  Conv3d: () => new nn.Conv3d(2, 3, 2, { stride: 1, padding: 1 }),
  ConvTranspose1d: () => new nn.ConvTranspose1d(3, 4, 3, { stride: 2, padding: 1, outputPadding: 1 }),
  ConvTranspose2d: () => new nn.ConvTranspose2d(3, 2, [3, 2], 2, [1, 0]),
  ConvTranspose3d: () => new nn.ConvTranspose3d(2, 2, 2, { stride: 2, bias: false }),
};

describe("conv layers (MLX's seeded init, forward, gradients)", () => {
  for (const c of fx.conv) {
    test(c.name, () => {
      mx.random.seed(c.seed);
      const m = convMakers[c.name]!();
      expectParams(m.parameters(), c.params);
      expect(m.toString()).toBe(c.repr);
      const x = arrayOf(c.x);
      close(m.forward(x), c.y, 1e-5, 1e-5);
      const loss = (x: mx.Array) => mx.mean(mx.square(m.forward(x)));
      const [l, g] = nn.valueAndGrad(m, loss)(x);
      close(l as mx.Array, c.loss, 1e-5, 1e-6);
      expectParams(g, c.grads, (a, r) => close(a, r, 1e-4, 1e-5));
      close(mx.grad(loss)(x) as mx.Array, c.gx, 1e-4, 1e-6);
    });
  }
  test("every recorded case has a maker", () => expect(Object.keys(convMakers).sort()).toEqual(fx.conv.map((c) => c.name).sort()));
  test("configuration is not a parameter; bad groups", () => {
    const c = new nn.Conv2d(4, 8, 3, { stride: 2, groups: 2 });
    expect(Object.keys(c.parameters())).toEqual(["weight", "bias"]);
    expect(c.weight.shape).toEqual([8, 3, 3, 2]);
    expect(Object.keys(c.children())).toEqual([]);
    expect(() => new nn.Conv1d(3, 6, 3, { groups: 2 })).toThrow("The number of input channels (3) must be divisible by the number of groups (2)");
    expect(() => new nn.Conv2d(3, 6, 3).forward(mx.ones([1, 5, 5, 4]))).toThrow("[conv]");
  });
});

class CNN extends nn.Module {
  c1 = new nn.Conv2d(1, 4, 3, { padding: 1 });
  c2 = new nn.Conv2d(4, 4, 3, { stride: 2 });
  out = new nn.Linear(4 * 3 * 3, 3);
  forward(x: mx.Array): mx.Array {
    x = nn.relu(this.c1.forward(x));
    x = nn.relu(this.c2.forward(x));
    return this.out.forward(mx.reshape(x, [x.shape[0]!, -1]));
  }
}

test("a small CNN: loss, gradients and one Adam step as MLX", () => {
  const s = fx.cnnStep;
  mx.random.seed(21);
  const m = new CNN();
  expectParams(m.parameters(), s.params0);
  const x = arrayOf(s.x);
  const y = arrayOf(s.y);
  const opt = new mx.optimizers.Adam(0.01);
  const step = (x: mx.Array, y: mx.Array) => {
    const [loss, grads] = nn.valueAndGrad(m, (x: mx.Array, y: mx.Array) => nn.losses.crossEntropy(m.forward(x), y, { reduction: "mean" }))(x, y);
    opt.update(m, grads);
    return [loss, grads] as const;
  };
  const [l1, g1] = step(x, y);
  close(l1, s.loss1, 1e-5, 1e-6);
  expectParams(g1, s.grads1, (a, r) => close(a, r, 1e-4, 1e-6));
  // Adam divides by sqrt(v): parameters with tiny gradients move by up to lr, so compare to 1e-5.
  expectParams(m.parameters(), s.params1, (a, r) => close(a, r, 1e-5, 1e-5));
  close(nn.losses.crossEntropy(m.forward(x), y, { reduction: "mean" }), s.loss2, 1e-5, 1e-6);
});

describe("quantized layers (parameters bit for bit with MLX, outputs within 1e-5 of max)", () => {
  const q = fx.quant;
  test("QuantizedLinear seeded init, frozen parameters, forward", () => {
    mx.random.seed(31);
    const ql = new nn.QuantizedLinear(64, 8);
    expectParams(ql.parameters(), q.initLinear.params);
    expect(mx.utils.treeFlatten(ql.trainableParameters()).map(([k]) => k)).toEqual(q.initLinear.trainable);
    expect(ql.toString()).toBe(q.initLinear.repr);
    closeMax(ql.forward(arrayOf(q.initLinear.x)), q.initLinear.y);
  });
  test("QuantizedEmbedding seeded init, lookup, asLinear", () => {
    mx.random.seed(32);
    const qe = new nn.QuantizedEmbedding(12, 64, 32, 8);
    expectParams(qe.parameters(), q.initEmbedding.params);
    expect(mx.utils.treeFlatten(qe.trainableParameters()).map(([k]) => k)).toEqual(q.initEmbedding.trainable);
    expect(qe.toString()).toBe(q.initEmbedding.repr);
    exact(qe.forward(arrayOf(q.initEmbedding.ids)), q.initEmbedding.y); // dequantized rows: bit for bit
    closeMax(qe.asLinear(arrayOf(q.initLinear.x)), q.initEmbedding.asLinear);
  });
  for (const [tag, c] of Object.entries(q.fromLinear)) {
    test(`QuantizedLinear.fromLinear ${tag}`, () => {
      const lin = new nn.Linear(128, 16);
      lin.update(unflat(q.linearParams));
      const m = nn.QuantizedLinear.fromLinear(lin, c.gs, c.bits, c.mode);
      expectParams(m.parameters(), c.params);
      expect(m.toString()).toBe(c.repr);
      expect(mx.utils.treeFlatten(m.trainableParameters()).map(([k]) => k)).toEqual(c.trainable);
      closeMax(m.forward(arrayOf(q.x)), c.y, c.y.dtype === "bfloat16" ? 8e-3 : 1e-5);
    });
  }

  class Net extends nn.Module {
    embed = new nn.Embedding(20, 64);
    layers = [new nn.Linear(64, 64), new nn.Linear(64, 64, false)];
    norm = new nn.LayerNorm(64);
    head = new nn.Linear(64, 20);
    forward(ids: mx.Array): mx.Array {
      let h = this.embed.forward(ids);
      for (const l of this.layers) h = nn.gelu(l.forward(h));
      h = this.norm.forward(h);
      return mx.add(this.head.forward(h), this.embed.asLinear(h));
    }
  }
  const options: Record<string, mx.nn.QuantizeModelOptions> = {
    default: {},
    g32b8: { groupSize: 32, bits: 8 },
    mxfp4: { mode: "mxfp4" },
    predicate: { groupSize: 32, bits: 4, classPredicate: (p, m) => m instanceof nn.Linear && p !== "head" },
    predicateDict: { classPredicate: (p) => (p.startsWith("layers") ? { groupSize: 32, bits: 2 } : false) },
  };
  test("the unquantized model matches MLX", () => {
    mx.random.seed(41);
    const net = new Net();
    expectParams(net.parameters(), q.netParams);
    close(net.forward(arrayOf(q.netIds)), q.netY, 1e-4, 1e-5);
  });
  for (const [tag, c] of Object.entries(q.quantize)) {
    test(`nn.quantize ${tag}: leaves replaced in place, parameters bit for bit`, () => {
      mx.random.seed(41);
      const net = new Net();
      nn.quantize(net, options[tag]!);
      expect(net.toString()).toBe(c.repr);
      expectParams(net.parameters(), c.params);
      expect(mx.utils.treeFlatten(net.trainableParameters()).map(([k]) => k)).toEqual(c.trainable);
      // The quantized parameters are MLX's bit for bit; products sum in another order, and LayerNorm /
      // gelu are composed here (mxfp4 embeddings dequantize to bfloat16: the net runs in bfloat16).
      closeMax(net.forward(arrayOf(q.netIds)), c.y, tag === "mxfp4" ? 1e-2 : 1e-5);
      if (c.grads !== undefined) {
        // Gradients reach the trainable parameters only (the quantized weights are frozen).
        const [l, g] = nn.valueAndGrad(net, (i: mx.Array) => mx.mean(mx.square(net.forward(i))))(arrayOf(q.netIds));
        close(l, c.loss!, 1e-4, 1e-6);
        expectParams(g, c.grads, (a, r) => closeMax(a, r, 1e-4));
      }
    });
  }
  test("nn.quantize on a Sequential(Linear) gives fromLinear's layer", () => {
    const c = q.fromLinear.affine64_4!;
    const lin = new nn.Linear(128, 16);
    lin.update(unflat(q.linearParams));
    const model = new nn.Sequential(lin);
    nn.quantize(model, { groupSize: c.gs, bits: c.bits });
    expect(model.layers[0]).toBeInstanceOf(nn.QuantizedLinear);
    expectParams(model.parameters(), c.params.map(([k, r]) => [`layers.0.${k}`, r] as [string, Rec]));
    closeMax(model.forward(arrayOf(q.x)) as mx.Array, c.y);
  });
  test("errors", () => {
    mx.random.seed(41);
    expect(() => nn.quantize(new Net(), { classPredicate: (_p, m) => m instanceof nn.LayerNorm })).toThrow(q.errNoToQuantized.replace(/<class '.*\.(\w+)'>/, "<class '$1'>"));
    expect(() => new nn.QuantizedLinear(64, 8, true, null, null, "bogus" as mx.QuantizationMode)).toThrow(q.errMode);
    expect(() => new nn.Linear(64, 8).toQuantized({ quantizeInput: true })).toThrow("Quantized activations are only supported for 'nvfp4' and 'mxfp8' modes, got affine.");
    expect(() => new nn.Embedding(64, 8).toQuantized({ quantizeInput: true })).toThrow("Quantized input is not supported.");
    expect(() => new nn.QuantizedLinear(60, 8)).toThrow("[quantize]");
  });
  test("toQuantized with quantizeInput gives a QQLinear (checked against MLX in quantized_qqmm.test.ts)", () => {
    const q = new nn.Linear(64, 8, false).toQuantized({ quantizeInput: true, mode: "nvfp4" });
    expect(q).toBeInstanceOf(nn.QQLinear);
    expect(() => new nn.Linear(64, 8).toQuantized({ quantizeInput: true, mode: "mxfp8" })).toThrow("QQLinear does not support bias yet.");
  });
});
