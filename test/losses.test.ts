// nn.losses against real MLX: every loss with every reduction and its options (class indices and
// probabilities for crossEntropy, an axis, weights, label smoothing, logits and probabilities for
// binaryCrossEntropy, float16 inputs), gradients of a few through mx.grad, and MLX's messages for
// bad inputs. Reference values come from test/fixtures/optim/optim.json.gz (gen_optim.py, MLX
// 0.32.4).
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import * as losses from "../src/nn/losses.ts";
import { arrayOf, loadFixture, type Rec } from "./fixture";
import { expectMlxError } from "./util";

interface LossCase {
  name: string;
  args: Rec[];
  options: Record<string, unknown>;
  out: Rec;
}
interface Fixture {
  losses: LossCase[];
  lossGrads: (Omit<LossCase, "out"> & { grad: Rec })[];
  errors: Record<string, string>;
}

const F = loadFixture<Fixture>("optim/optim.json.gz");

function numbers(a: mx.Array): number[] {
  return Array.from(a.astype(mx.float64).toTypedArray() as Float64Array);
}

function expectClose(a: mx.Array, ref: Rec, label: string, rtol = 1e-5, atol = 1e-6): void {
  expect(a.dtype.name, `${label} dtype`).toBe(ref.dtype);
  expect([...a.shape], `${label} shape`).toEqual(ref.shape);
  const got = numbers(a);
  const want = numbers(arrayOf(ref));
  const half = ref.dtype === "float16";
  for (let i = 0; i < want.length; i++) {
    const [rt, at] = half ? [2e-3, 2e-3] : [rtol, atol];
    const ok = Number.isNaN(want[i]!) ? Number.isNaN(got[i]!) : got[i] === want[i] || Math.abs(got[i]! - want[i]!) <= at + rt * Math.abs(want[i]!);
    if (!ok) throw new Error(`${label}[${i}]: got ${got[i]}, MLX ${want[i]}`);
  }
}

function options(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === "object" && v !== null && "$array" in v ? arrayOf((v as { $array: Rec }).$array) : v]));
}

type LossFn = (...args: unknown[]) => mx.Array;
const fnOf = (name: string) => (losses as unknown as Record<string, LossFn>)[name]!;

describe("losses against MLX", () => {
  for (const c of F.losses) {
    test(`${c.name} ${JSON.stringify(Object.fromEntries(Object.entries(c.options).map(([k, v]) => [k, typeof v === "object" ? "array" : v])))}`, () => {
      const out = fnOf(c.name)(...c.args.map(arrayOf), options(c.options));
      expectClose(out, c.out, c.name);
    });
  }
  test("every loss of MLX is covered", () => {
    const names = new Set(F.losses.map((c) => c.name));
    expect([...names].sort()).toEqual(
      ["binaryCrossEntropy", "cosineSimilarityLoss", "crossEntropy", "gaussianNllLoss", "hingeLoss", "huberLoss", "klDivLoss", "l1Loss", "logCoshLoss", "marginRankingLoss", "mseLoss", "nllLoss", "smoothL1Loss", "tripletLoss"],
    );
  });
  test("default reductions: mean for bce, l1, mse, smoothL1, gaussianNll; none for the rest", () => {
    const x = mx.array([[0.5, -1.0], [2.0, 0.0]]);
    const y = mx.array([[0.0, 1.0], [1.0, 0.0]]);
    for (const f of [losses.binaryCrossEntropy, losses.l1Loss, losses.mseLoss, losses.smoothL1Loss]) expect(f(x, y).ndim).toBe(0);
    expect(losses.gaussianNllLoss(x, y, mx.onesLike(x)).ndim).toBe(0);
    for (const f of [losses.hingeLoss, losses.huberLoss, losses.logCoshLoss]) expect(f(x, y).shape).toEqual([2, 2]);
    expect(losses.crossEntropy(x, mx.array([0, 1])).shape).toEqual([2]);
  });
});

describe("loss gradients against MLX (mx.grad)", () => {
  for (const c of F.lossGrads) {
    test(`d ${c.name} / d input`, () => {
      const [first, ...rest] = c.args.map(arrayOf);
      const g = mx.grad((a: mx.Array) => fnOf(c.name)(a, ...rest, options(c.options)))(first!) as mx.Array;
      expectClose(g, c.grad, `grad ${c.name}`);
    });
  }
});

describe("errors (MLX's messages)", () => {
  const E = F.errors;
  const exact = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  const logits = mx.zeros([4, 5]);
  const idx = mx.array([0, 3, 4, 1]);
  const x = mx.zeros([3, 4]);
  const y = mx.zeros([3, 4]);
  test("crossEntropy", () => {
    expectMlxError(() => losses.crossEntropy(logits, idx, { labelSmoothing: 1.0 }), exact(E.ceSmoothingHigh!));
    expectMlxError(() => losses.crossEntropy(logits, idx, { labelSmoothing: -0.1 }), exact(E.ceSmoothingLow!));
    expectMlxError(() => losses.crossEntropy(logits, mx.array([0, 1, 2])), exact(E.ceTargetsIdx!));
    expectMlxError(() => losses.crossEntropy(logits, idx, { axis: 5 }), exact(E.ceAxis!));
    expectMlxError(() => losses.crossEntropy(logits, mx.zeros([4, 4])), exact(E.ceTargetsProbs!));
    expectMlxError(() => losses.crossEntropy(logits, idx, { weights: mx.ones([3]) }), exact(E.ceWeights!));
    expectMlxError(() => losses.crossEntropy(logits, idx, { reduction: "avg" as never }), exact(E.ceReduction!));
  });
  test("shape checks and reductions of the other losses", () => {
    expectMlxError(() => losses.binaryCrossEntropy(x, mx.zeros([4, 3])), exact(E.bceShape!));
    expectMlxError(() => losses.binaryCrossEntropy(x, y, { weights: mx.ones([3]) }), exact(E.bceWeights!));
    expectMlxError(() => losses.l1Loss(x, mx.zeros([3])), exact(E.l1Shape!));
    expectMlxError(() => losses.mseLoss(mx.zeros([]), y), exact(E.mseShape!));
    expectMlxError(() => losses.smoothL1Loss(x, mx.zeros([1, 4])), exact(E.smoothL1Shape!));
    expectMlxError(() => losses.gaussianNllLoss(x, mx.zeros([3]), mx.onesLike(x)), exact(E.gaussianTargets!));
    expectMlxError(() => losses.gaussianNllLoss(x, y, mx.ones([4])), exact(E.gaussianVars!));
    expectMlxError(() => losses.marginRankingLoss(x, y, mx.ones([3])), exact(E.marginShapes!));
    expectMlxError(() => losses.hingeLoss(x, y, { reduction: "max" as never }), exact(E.hingeReduction!));
  });
});
