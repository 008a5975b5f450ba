// The layers that call mx.fast (as MLX's do): LayerNorm, RMSNorm, InstanceNorm,
// GroupNorm(pytorchCompatible), RoPE, MultiHeadAttention. Each is checked three ways:
//  * its output against real MLX 0.32.4 (test/fixtures/nn/gen_nn_fast.py, random parameters);
//  * its output against the formula composed from ordinary ops (src/nn/composed.ts), so the
//    layer computes what it claims to;
//  * the gradients of sum(layer(x) * c) with respect to every parameter and input against
//    MLX's mx.value_and_grad of the same loss.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { layerNorm, rmsNorm, rope, scaledDotProductAttention } from "../src/nn/composed.ts";
import { arrayOf, bytesOf, loadFixture, numbersOf, type Rec } from "./fixture";

const { nn } = mx;
type Flat = [string, Rec][];
interface Case { name: string; params: Flat; inputs: Rec[]; out: Rec; cot: Rec; paramGrads: Flat; inputGrads: Rec[] }
const fx = loadFixture<{ cases: Case[] }>("nn/nn_fast.json.gz");

/** |got - want| <= atol + rtol |want| elementwise; `scaled`: atol is relative to max(1, max |want|). */
function close(a: mx.Array, r: Rec, rtol: number, atol: number, scaled = false): void {
  expect(a.shape).toEqual(r.shape);
  expect(a.dtype.name).toBe(r.dtype);
  const got = numbersOf(bytesOf(a), r.dtype);
  const want = numbersOf(Uint8Array.from(Buffer.from(r.hex, "hex")), r.dtype);
  if (scaled) atol *= Math.max(1, ...Array.from(want, Math.abs));
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (Math.abs(g - w) > atol + rtol * Math.abs(w)) throw new Error(`element ${i}: got ${g}, want ${w}`);
  }
}

function allClose(a: mx.Array, b: mx.Array, rtol: number, atol: number): void {
  expect(a.shape).toEqual(b.shape);
  expect(a.dtype.name).toBe(b.dtype.name);
  const d = mx.max(mx.subtract(mx.abs(mx.subtract(a.astype(mx.float32), b.astype(mx.float32))), mx.multiply(rtol, mx.abs(b.astype(mx.float32))))).item() as number;
  expect(d).toBeLessThanOrEqual(atol);
}

const split = (x: mx.Array, h: number) => mx.transpose(mx.unflatten(x, -1, [h, -1]), [0, 2, 1, 3]);
const linear = (l: any, x: mx.Array) => (l.bias ? mx.add(mx.matmul(x, mx.transpose(l.weight)), l.bias) : mx.matmul(x, mx.transpose(l.weight)));
/** MultiHeadAttention written out with the composed attention. */
function mhaFormula(m: any, q: mx.Array, k: mx.Array, v: mx.Array, mask: mx.Array | "causal" | null): mx.Array {
  const h = m.numHeads as number;
  const qs = split(linear(m.query_proj, q), h);
  const o = scaledDotProductAttention(qs, split(linear(m.key_proj, k), h), split(linear(m.value_proj, v), h), Math.sqrt(1 / qs.shape[3]!), mask);
  return linear(m.out_proj, mx.flatten(mx.transpose(o, [0, 2, 1, 3]), -2, -1));
}

const boolMask = () => mx.array([[true, false, true, true], [false, true, true, false], [true, true, true, false]]);
type Spec = { make: () => any; call?: (m: any, ...xs: mx.Array[]) => mx.Array; formula: (m: any, ...xs: mx.Array[]) => mx.Array };
const specs: Record<string, Spec> = {
  LayerNorm: { make: () => new nn.LayerNorm(6), formula: (m, x) => layerNorm(x, m.weight, m.bias, 1e-5) },
  LayerNormNoBias: { make: () => new nn.LayerNorm(6, 1e-5, true, false), formula: (m, x) => layerNorm(x, m.weight, null, 1e-5) },
  LayerNormNoAffine: { make: () => new nn.LayerNorm(6, 1e-3, false), formula: (_m, x) => layerNorm(x, null, null, 1e-3) },
  LayerNormF16: { make: () => new nn.LayerNorm(8).setDtype(mx.float16), formula: (m, x) => layerNorm(x, m.weight, m.bias, 1e-5) },
  RMSNorm: { make: () => new nn.RMSNorm(6), formula: (m, x) => rmsNorm(x, m.weight, 1e-5) },
  RMSNormBF16: { make: () => new nn.RMSNorm(8, 1e-4).setDtype(mx.bfloat16), formula: (m, x) => rmsNorm(x, m.weight, 1e-4) },
  InstanceNorm: {
    make: () => new nn.InstanceNorm(4, 1e-5, true),
    formula: (m, x) => {
      const [n, hh, w, c] = x.shape as [number, number, number, number];
      const y = layerNorm(mx.reshape(mx.transpose(x, [0, 3, 1, 2]), [n, c, -1]), null, null, 1e-5);
      return mx.add(mx.multiply(m.weight, mx.transpose(mx.reshape(y, [n, c, hh, w]), [0, 2, 3, 1])), m.bias);
    },
  },
  GroupNormPT: {
    make: () => new nn.GroupNorm(3, 6, 1e-5, true, true),
    formula: (m, x) => {
      const [b, l] = x.shape as [number, number];
      let y = mx.reshape(mx.transpose(mx.reshape(x, [b, l, 3, 2]), [0, 2, 1, 3]), [b, 3, -1]);
      y = layerNorm(y, null, null, 1e-5);
      y = mx.reshape(mx.transpose(mx.reshape(y, [b, 3, l, 2]), [0, 2, 1, 3]), [b, l, 6]);
      return mx.add(mx.multiply(m.weight, y), m.bias);
    },
  },
  RoPE: { make: () => new nn.RoPE(6), call: (m, x) => m.forward(x, 3), formula: (_m, x) => rope(x, 6, false, 10000, 1, 3) },
  RoPETraditional: { make: () => new nn.RoPE(8, true, 100.0, 0.5), formula: (_m, x) => rope(x, 8, true, 100, 0.5, 0) },
  RoPEArrayOffset: {
    make: () => new nn.RoPE(4, false, 500),
    call: (m, x) => m.forward(x, mx.array([0, 5, 2])),
    formula: (_m, x) => mx.concatenate([0, 5, 2].map((o, i) => rope(x.index(mx.sl(i, i + 1)), 4, false, 500, 1, o)), 0),
  },
  MultiHeadAttention: { make: () => new nn.MultiHeadAttention(8, 2), call: (m, x) => m.forward(x, x, x), formula: (m, x) => mhaFormula(m, x, x, x, null) },
  MultiHeadAttentionCross: {
    make: () => new nn.MultiHeadAttention(8, 4, { bias: true }),
    call: (m, q, kv) => m.forward(q, kv, kv),
    formula: (m, q, kv) => mhaFormula(m, q, kv, kv, null),
  },
  MultiHeadAttentionAdditive: {
    make: () => new nn.MultiHeadAttention(8, 2),
    call: (m, x) => m.forward(x, x, x, nn.MultiHeadAttention.createAdditiveCausalMask(4)),
    formula: (m, x) => mhaFormula(m, x, x, x, nn.MultiHeadAttention.createAdditiveCausalMask(4)),
  },
  MultiHeadAttentionBool: {
    make: () => new nn.MultiHeadAttention(8, 2),
    call: (m, q, kv) => m.forward(q, kv, kv, boolMask()),
    formula: (m, q, kv) => mhaFormula(m, q, kv, kv, boolMask()),
  },
  MultiHeadAttentionCausal: {
    make: () => new nn.MultiHeadAttention(8, 2),
    call: (m, x) => m.forward(x, x, x, "causal"),
    formula: (m, x) => mhaFormula(m, x, x, x, "causal"),
  },
};

function setup(c: Case) {
  const spec = specs[c.name]!;
  const m = spec.make();
  m.update(mx.utils.treeUnflatten(c.params.map(([k, r]) => [k, arrayOf(r)] as [string, mx.Array])));
  const xs = c.inputs.map(arrayOf);
  const fwd = (...ins: mx.Array[]) => (spec.call ? spec.call(m, ...ins) : m.forward(...ins)) as mx.Array;
  return { spec, m, xs, fwd };
}

const half = (r: Rec) => r.dtype === "float16" || r.dtype === "bfloat16";

describe("layers on mx.fast", () => {
  test("every recorded case has a spec", () => expect(Object.keys(specs).sort()).toEqual(fx.cases.map((c) => c.name).sort()));
  for (const c of fx.cases) {
    describe(c.name, () => {
      test("output as MLX", () => {
        const { fwd, xs } = setup(c);
        if (half(c.out)) close(fwd(...xs), c.out, 1.6e-2, 8e-3);
        else close(fwd(...xs), c.out, 1e-4, 2e-5);
      });
      test("equals the composed formula", () => {
        const { spec, m, fwd, xs } = setup(c);
        if (half(c.out)) allClose(fwd(...xs), spec.formula(m, ...xs), 1.6e-2, 8e-3);
        else allClose(fwd(...xs), spec.formula(m, ...xs), 1e-5, 2e-6);
      });
      test("gradients as MLX (parameters and inputs)", () => {
        const { m, fwd, xs } = setup(c);
        const cot = arrayOf(c.cot);
        const loss = (...ins: mx.Array[]) => mx.sum(mx.multiply(fwd(...ins), cot).astype(mx.float32));
        const [, pg] = nn.valueAndGrad(m, loss)(...xs);
        const flat = mx.utils.treeFlatten(pg) as [string, mx.Array][];
        expect(flat.map(([k]) => k)).toEqual(c.paramGrads.map(([k]) => k));
        // Gradients through a softmax or a normalisation cancel: rounding is measured against
        // the array's largest entry (our fused op's vjp sums in another order than MLX's ops).
        const [rt, at] = half(c.out) ? [3e-2, 3e-2] : [2e-4, 1e-4];
        flat.forEach(([, g], i) => close(g, c.paramGrads[i]![1], rt, at, true));
        const g = mx.grad(loss, { argnums: xs.map((_, i) => i) })(...xs);
        const ig = (Array.isArray(g) ? g : [g]) as mx.Array[];
        expect(ig.length).toBe(c.inputGrads.length);
        ig.forEach((g, i) => close(g, c.inputGrads[i]!, rt, at, true));
      });
    });
  }
});

describe("layer details", () => {
  test("RoPE refuses 2-D inputs with mx.fast.rope's message (as MLX)", () => {
    expect(() => new nn.RoPE(4).forward(mx.ones([3, 4]))).toThrow("[rope] Input must have at least 3 dimensions but got input with 2 dimensions.");
  });
});
