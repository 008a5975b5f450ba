// Module.loadWeights / saveWeights: round trips through .safetensors and .npz, loading the
// files MLX Python's save_weights wrote (test/fixtures/nn/mlx_weights.*, gen_nn_conv_quant.py),
// strict mode's checks with MLX's messages, and non-strict partial loads.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, loadFixture, numbersOf, toHex, type Rec } from "./fixture";

const { nn } = mx;
type Flat = [string, Rec][];
interface Fx {
  weights: { params: Flat; ids: Rec; y: Rec; nonStrictWeight: Rec; errors: Record<string, string> };
}
const w = loadFixture<Fx>("nn/nn_conv_quant.json.gz").weights;
const dir = mkdtempSync(join(tmpdir(), "mlxb-nnw-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fixture = (name: string) => new URL(`./fixtures/nn/${name}`, import.meta.url).pathname;
const msg = (tag: string) => w.errors[tag]!.replace(/^ValueError: /, "");

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

function exact(a: mx.Array, r: Rec): void {
  expect(a.shape).toEqual(r.shape);
  expect(a.dtype.name).toBe(r.dtype);
  expect(toHex(bytesOf(a))).toBe(r.hex);
}

function expectSameParams(a: mx.nn.Module, b: mx.nn.Module): void {
  const fa = mx.utils.treeFlatten(a.parameters());
  const fb = mx.utils.treeFlatten(b.parameters());
  expect(fa.map(([k]) => k)).toEqual(fb.map(([k]) => k));
  fa.forEach(([, v], i) => expect(mx.arrayEqual(v, fb[i]![1], { equalNan: true }).item()).toBe(true));
}

describe("loading weights MLX Python saved", () => {
  for (const file of ["mlx_weights.safetensors", "mlx_weights.npz"]) {
    test(file, () => {
      const m = new Net();
      m.loadWeights(fixture(file));
      const got = mx.utils.treeFlatten(m.parameters());
      expect(got.map(([k]) => k)).toEqual(w.params.map(([k]) => k));
      got.forEach(([, v], i) => exact(v, w.params[i]![1]));
      // Forward with the loaded weights reproduces MLX's output for them.
      const y = m.forward(arrayOf(w.ids));
      const want = numbersOf(Uint8Array.from(Buffer.from(w.y.hex, "hex")), "float32");
      const ys = Array.from(y.toTypedArray() as Float32Array);
      ys.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-4 + 1e-4 * Math.abs(want[i]!)));
    });
  }
});

describe("save/load round trips", () => {
  for (const ext of ["safetensors", "npz"]) {
    test(ext, () => {
      mx.random.seed(3);
      const a = new Net();
      const file = join(dir, `net.${ext}`);
      a.saveWeights(file);
      const flat = mx.load(file) as Record<string, mx.Array>;
      expect(Object.keys(flat).sort()).toEqual(mx.utils.treeFlatten(a.parameters()).map(([k]) => k).sort());
      mx.random.seed(4);
      const b = new Net();
      b.loadWeights(file);
      expectSameParams(a, b);
      const ids = mx.array([[1, 2, 3]]);
      expect(mx.arrayEqual(a.forward(ids), b.forward(ids)).item()).toBe(true);
    });
  }
  test("quantized and conv models round trip", () => {
    mx.random.seed(5);
    const mk = () => {
      const m = new nn.Sequential(new nn.Conv1d(4, 64, 3), new nn.Linear(64, 64));
      nn.quantize(m, { groupSize: 32, bits: 4 });
      return m;
    };
    const a = mk();
    const file = join(dir, "q.safetensors");
    a.saveWeights(file);
    const b = mk();
    b.loadWeights(file);
    expectSameParams(a, b);
    expect(mx.utils.treeFlatten(b.parameters()).find(([k]) => k === "layers.1.weight")![1].dtype).toBe(mx.uint32);
  });
  test("a list of pairs, Python's tuple list", () => {
    const l = new nn.Linear(3, 2);
    l.loadWeights([["weight", mx.ones([2, 3])], ["bias", mx.zeros([2])]]);
    expect(l.weight.tolist()).toEqual([[1, 1, 1], [1, 1, 1]]);
    expect(l.loadWeights([], { strict: false })).toBe(l);
  });
});

describe("strict mode (MLX's messages)", () => {
  const lin = () => new nn.Linear(3, 2);
  test("missing", () => expect(() => lin().loadWeights([["weight", mx.zeros([2, 3])]])).toThrow(msg("missing")));
  test("missing, several, sorted", () => {
    const s = new nn.Sequential(new nn.Linear(2, 2), new nn.Linear(2, 2));
    expect(() => s.loadWeights([["layers.0.weight", mx.zeros([2, 2])]])).toThrow(msg("missingMany"));
  });
  test("extra", () =>
    expect(() =>
      lin().loadWeights([["weight", mx.zeros([2, 3])], ["bias", mx.zeros([2])], ["zeta", mx.zeros([1])], ["alpha.beta", mx.zeros([1])]]),
    ).toThrow(msg("extra")));
  test("shape", () => expect(() => lin().loadWeights([["weight", mx.zeros([3, 2])], ["bias", mx.zeros([2])]])).toThrow(msg("shape")));
  test("shape, 1-D", () => expect(() => lin().loadWeights([["weight", mx.zeros([2, 3])], ["bias", mx.zeros([2, 1])]])).toThrow(msg("shape1d")));
  test("not an array", () => expect(() => lin().loadWeights([["weight", 3], ["bias", mx.zeros([2])]])).toThrow(msg("type")));
  test("nothing changes on a strict failure", () => {
    const l = lin();
    const before = l.weight;
    expect(() => l.loadWeights([["weight", mx.zeros([2, 3])]])).toThrow();
    expect(l.weight).toBe(before);
  });
  test("non-strict: loads what the model has, ignores the rest", () => {
    const l = lin();
    const b = l.bias;
    l.loadWeights([["weight", mx.ones([2, 3])], ["junk", mx.ones([4])]], { strict: false });
    exact(l.weight, w.nonStrictWeight);
    expect(l.bias).toBe(b);
    l.loadWeights([["weight", mx.zeros([2, 3])]], false);
    expect(l.weight.tolist()).toEqual([[0, 0, 0], [0, 0, 0]]);
  });
  test("save: unsupported extension", () => {
    const file = "/tmp/x.bin";
    expect(() => lin().saveWeights(file)).toThrow(msg("ext"));
  });
  test("load: a missing file is mx.load's error", () => expect(() => lin().loadWeights(join(dir, "nope.npz"))).toThrow("[load]"));
});
