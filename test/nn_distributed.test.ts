// The distributed layers of mx.nn against real MLX 0.32.4 (test/fixtures/nn/gen_nn_distributed.py):
// QuantizedAllToShardedLinear / QuantizedShardedToAllLinear (seeded parameters bit for bit,
// outputs), shardLinear / shardInplace of Linear and QuantizedLinear layers, gradients through
// the sharded layers, FullyShardedModule (forward, gradients, compute dtype, nesting, asLinear).
// The "ranks" part of the fixture is MLX run as a group of two processes (ring backend): a
// stand-in group of size 2 checks that each rank holds MLX's shards and computes MLX's local
// results; collectives over it fail, since mlx-bun has no distributed backend.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, loadFixture, numbersOf, toHex, type Rec } from "./fixture";
import { expectMlxError } from "./util";

const { nn } = mx;
type Flat = [string, Rec][];
type Segments = number | number[];
interface LayerRec { repr: string; params: Flat; out: Rec }
interface Fx {
  single: {
    quantized_init: ({ name: string; cls: string; args: [number, number, boolean, number, number, mx.QuantizationMode]; seed: number; x: Rec } & LayerRec)[];
    from_quantized: {
      name: string; in: number; out: number; group_size: number; bits: number; mode: mx.QuantizationMode; weight: Rec; bias: Rec | null; x: Rec; ql_out: Rec;
      sharded: ({ sharding: "all-to-sharded" | "sharded-to-all"; segments: Segments } & LayerRec)[];
    }[];
    grads: { name: string; kind: string; sharding: "all-to-sharded" | "sharded-to-all"; lin0: [Rec, Rec]; lin: [Rec, Rec]; x: Rec; loss: Rec; grads: Flat; gx: Rec }[];
    fsdp: { name: string; compute_dtype: mx.DtypeName | null; params_in: Flat; repr: string; params: Flat; x: Rec; out: Rec; loss: Rec; grads: Flat }[];
    fsdp_nested: { params_in: [Rec, Rec, Rec, Rec]; repr: string; params: Flat; x: Rec; out: Rec; grads: Flat };
    fsdp_embedding: { weight: Rec; ids: Rec; out: Rec; x: Rec; as_linear: Rec };
    predicate_paths: string[];
    errors: { name: string; message: string }[];
  };
  ranks: {
    rank: number;
    size: number;
    linear_source: [Rec, Rec];
    linear: ({ name: string; sharding: "all-to-sharded" | "sharded-to-all"; segments: Segments; x: Rec } & LayerRec)[];
    quantized_source: { name: string; weight: Rec; bias: Rec; group_size: number; bits: number; mode: mx.QuantizationMode }[];
    quantized: ({ name: string; source: string; sharding: "all-to-sharded" | "sharded-to-all"; segments: Segments; x: Rec } & LayerRec)[];
    fsdp: { params_in: Flat; repr: string; params: Flat };
    fully_shard: { linear: string; relu: string; same: boolean };
    errors: { name: string; message: string }[];
  }[];
}
const fx = loadFixture<Fx>("nn/nn_distributed.json.gz");
const S = fx.single;

function close(a: mx.Array, r: Rec, rtol = 1e-5, atol = 1e-6, what = ""): void {
  expect(`${what} ${a.dtype.name} ${a.shape.join("x")}`).toBe(`${what} ${r.dtype} ${r.shape.join("x")}`);
  const got = numbersOf(bytesOf(a), r.dtype);
  const want = numbersOf(Uint8Array.from(Buffer.from(r.hex, "hex")), r.dtype);
  for (let i = 0; i < want.length; i++) {
    if (Math.abs(got[i]! - want[i]!) > atol + rtol * Math.abs(want[i]!)) throw new Error(`${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

function exact(a: mx.Array, r: Rec, what = ""): void {
  expect(`${what} ${a.dtype.name} ${a.shape.join("x")}`).toBe(`${what} ${r.dtype} ${r.shape.join("x")}`);
  expect(`${what} ${toHex(bytesOf(a))}`).toBe(`${what} ${r.hex}`);
}

/** Products of quantized matrices: MLX's kernel sums in another order, so |ours - MLX| <= tol * max|MLX|. */
function closeMax(a: mx.Array, r: Rec, tol = 1e-5, what = ""): void {
  expect(`${what} ${a.dtype.name} ${a.shape.join("x")}`).toBe(`${what} ${r.dtype} ${r.shape.join("x")}`);
  const got = numbersOf(bytesOf(a), r.dtype);
  const want = numbersOf(Uint8Array.from(Buffer.from(r.hex, "hex")), r.dtype);
  const m = want.reduce((p, w) => Math.max(p, Math.abs(w)), 0);
  for (let i = 0; i < want.length; i++) if (Math.abs(got[i]! - want[i]!) > tol * m) throw new Error(`${what}[${i}]: got ${got[i]}, want ${want[i]} (max ${m})`);
}

function expectParams(tree: unknown, want: Flat, cmp: (a: mx.Array, r: Rec, what: string) => void = exact): void {
  const got = mx.utils.treeFlatten(tree) as [string, mx.Array][];
  expect(got.map(([k]) => k)).toEqual(want.map(([k]) => k));
  for (let i = 0; i < want.length; i++) cmp(got[i]![1], want[i]![1], want[i]![0]);
}

/** A Linear holding the recorded weight (and bias). */
function linearOf(weight: Rec, bias: Rec | null): mx.nn.Linear {
  const [o, i] = weight.shape as [number, number];
  const lin = new nn.Linear(i, o, bias !== null);
  lin.weight = arrayOf(weight);
  if (bias !== null) lin.bias = arrayOf(bias);
  return lin;
}

/** The MLP of the fsdp cases, Sequential(Linear(4, 6), ReLU(), Linear(6, 2)), with recorded parameters. */
function mlpOf(params: Flat): mx.nn.Sequential {
  const m = new nn.Sequential(new nn.Linear(4, 6), new nn.ReLU(), new nn.Linear(6, 2));
  m.update(mx.utils.treeUnflatten(params.map(([k, r]) => [k, arrayOf(r)] as const)));
  return m;
}

/**
 * A group of `n` processes as seen from rank `r`. mlx-bun has no backend to carry data between
 * processes, so only what a rank does alone can run on it: sharding, and local computation.
 */
class StandInGroup extends mx.distributed.Group {
  constructor(
    private readonly r: number,
    private readonly n: number,
  ) {
    super();
  }
  override rank(): number {
    return this.r;
  }
  override size(): number {
    return this.n;
  }
}

/** The error's message ends with MLX's (ours adds the op or class in front). */
function expectMlxMessage(fn: () => unknown, message: string): void {
  const e = expectMlxError(fn, /./);
  expect(e.message.endsWith(message)).toBe(true);
}

describe("QuantizedAllToShardedLinear / QuantizedShardedToAllLinear (MLX fixtures)", () => {
  for (const c of S.quantized_init) {
    test(c.name, () => {
      mx.random.seed(c.seed);
      const Cls = c.cls === "QuantizedAllToShardedLinear" ? nn.QuantizedAllToShardedLinear : nn.QuantizedShardedToAllLinear;
      const layer = new Cls(...c.args);
      expect(layer.toString()).toBe(c.repr);
      expectParams(layer.parameters(), c.params);
      closeMax(layer.forward(arrayOf(c.x)), c.out, 1e-5, c.name);
      // Frozen, and frozen again after unfreeze (as MLX's).
      expect(mx.utils.treeFlatten(layer.trainableParameters())).toEqual([]);
      layer.unfreeze();
      expect(mx.utils.treeFlatten(layer.trainableParameters())).toEqual([]);
      expect(layer.group).toBe(mx.distributed.init());
    });
  }

  test("MLX's defaults: group size 64, 4 bits, affine; null group size or bits take the mode's", () => {
    const a = new nn.QuantizedAllToShardedLinear(64, 8);
    expect([a.groupSize, a.bits, a.mode]).toEqual([64, 4, "affine"]);
    expect(a.bias!.shape).toEqual([8]);
    const b = new nn.QuantizedShardedToAllLinear(64, 8, false, null, null, "mxfp4");
    expect([b.groupSize, b.bits, b.biases, b.bias]).toEqual([32, 4, null, undefined]);
  });
});

describe("shardLinear of a QuantizedLinear (MLX fixtures)", () => {
  for (const c of S.from_quantized) {
    test(c.name, () => {
      const ql = nn.QuantizedLinear.fromLinear(linearOf(c.weight, c.bias), c.group_size, c.bits, c.mode);
      const x = arrayOf(c.x);
      const qlOut = ql.forward(x);
      closeMax(qlOut, c.ql_out, 1e-5, "ql");
      for (const s of c.sharded) {
        const what = `${s.sharding} ${JSON.stringify(s.segments)}`;
        const layer = nn.shardLinear(ql, s.sharding, { segments: s.segments });
        expect(layer).toBeInstanceOf(s.sharding === "all-to-sharded" ? nn.QuantizedAllToShardedLinear : nn.QuantizedShardedToAllLinear);
        expect(layer.toString()).toBe(s.repr);
        expectParams(layer.parameters(), s.params);
        const y = (layer as mx.nn.QuantizedAllToShardedLinear).forward(x);
        closeMax(y, s.out, 1e-5, what);
        // One process holds every shard: the layer is the QuantizedLinear.
        expect(toHex(bytesOf(y))).toBe(toHex(bytesOf(qlOut)));
        const direct = (s.sharding === "all-to-sharded" ? nn.QuantizedAllToShardedLinear : nn.QuantizedShardedToAllLinear).fromQuantizedLinear(ql, { segments: s.segments });
        expectParams(direct.parameters(), s.params);
        expect(mx.utils.treeFlatten(direct.trainableParameters())).toEqual([]);
      }
    });
  }
});

describe("gradients through the sharded layers (MLX fixtures)", () => {
  for (const c of S.grads) {
    test(c.name, () => {
      const lin0 = linearOf(c.lin0[0], c.lin0[1]);
      const lin = linearOf(c.lin[0], c.lin[1]);
      const base = c.kind === "linear" ? lin : nn.QuantizedLinear.fromLinear(lin, 32, 4);
      const layer = nn.shardLinear(base, c.sharding) as mx.nn.AllToShardedLinear;
      const model = new nn.Sequential(lin0, layer);
      const loss = (x: mx.Array) => mx.mean(mx.square(model.forward(x)));
      const x = arrayOf(c.x);
      const [l, g] = nn.valueAndGrad(model, loss)(x);
      close(l, c.loss, 1e-5, 1e-6, "loss");
      expectParams(g, c.grads, (a, r, what) => close(a, r, 1e-4, 1e-6, what));
      close(mx.grad(loss)(x) as mx.Array, c.gx, 1e-4, 1e-6, "gx");
    });
  }
});

describe("FullyShardedModule on the singleton group (MLX fixtures)", () => {
  for (const c of S.fsdp) {
    test(c.name, () => {
      const m = mlpOf(c.params_in);
      const f = new nn.FullyShardedModule(m, { computeDtype: c.compute_dtype });
      expect(f.toString()).toBe(c.repr);
      expect(f.module).toBe(m);
      expect(f.shardedPaths).toEqual(["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]);
      expectParams(f.parameters(), c.params);
      const before = mx.utils.treeFlatten(m.parameters()).map(([, a]) => a);
      const x = arrayOf(c.x);
      const tol = c.compute_dtype === null ? 1e-5 : 1e-3;
      close(f.forward(x), c.out, tol, 1e-6, "out");
      // The forward puts the shards back (the same arrays).
      const same = () => mx.utils.treeFlatten(m.parameters()).forEach(([, a], i) => expect(a).toBe(before[i]));
      same();
      const [l, g] = nn.valueAndGrad(f, (x: mx.Array) => mx.sum(mx.square(f.forward(x))))(x);
      close(l, c.loss, tol, 1e-6, "loss");
      expectParams(g, c.grads, (a, r, what) => close(a, r, c.compute_dtype === null ? 1e-4 : 1e-2, 1e-3, what));
      same();
    });
  }

  test("nested FullyShardedModules: the outer one skips the inner one's parameters", () => {
    const c = S.fsdp_nested;
    const inner = new nn.FullyShardedModule(linearOf(c.params_in[0], c.params_in[1]));
    const outer = new nn.FullyShardedModule(new nn.Sequential(inner, linearOf(c.params_in[2], c.params_in[3])));
    expect(outer.toString()).toBe(c.repr);
    expect(outer.shardedPaths).toEqual(["layers.1.weight", "layers.1.bias"]);
    expectParams(outer.parameters(), c.params);
    const x = arrayOf(c.x);
    close(outer.forward(x), c.out, 1e-5, 1e-6, "out");
    const [, g] = nn.valueAndGrad(outer, (x: mx.Array) => mx.sum(mx.square(outer.forward(x))))(x);
    expectParams(g, c.grads, (a, r, what) => close(a, r, 1e-4, 1e-6, what));
  });

  test("an Embedding: forward and asLinear on the gathered table", () => {
    const c = S.fsdp_embedding;
    const e = new nn.Embedding(10, 4);
    e.weight = arrayOf(c.weight);
    const f = new nn.FullyShardedModule(e);
    exact(f.forward(arrayOf(c.ids)), c.out, "out");
    close(f.asLinear(arrayOf(c.x)), c.as_linear, 1e-5, 1e-6, "asLinear");
    expectMlxError(() => new nn.FullyShardedModule(new nn.Linear(2, 2)).asLinear(mx.ones([2])), /\[FullyShardedModule\] The wrapped Linear has no asLinear method\./);
  });

  test("fullyShard returns the module itself on the singleton group", () => {
    const m = new nn.Linear(4, 2);
    expect(nn.fullyShard(m)).toBe(m);
    expect(nn.fullyShard(m, { group: mx.distributed.init(), computeDtype: mx.bfloat16 })).toBe(m);
  });

  test("inside mx.tidy the module keeps its shards and nothing leaks into it", () => {
    const f = new nn.FullyShardedModule(mlpOf(S.fsdp[0]!.params_in));
    const y = mx.tidy(() => mx.sum(f.forward(mx.ones([2, 4]))));
    mx.eval(y);
    const again = f.forward(mx.ones([2, 4]));
    expect(mx.sum(again).item()).toBeCloseTo(y.item() as number, 5);
  });
});

describe("shardInplace, and bad arguments (MLX's messages)", () => {
  test("the sharding callable sees MLX's dotted paths; null keeps a parameter whole", () => {
    const seen: string[] = [];
    const m = new nn.Sequential(new nn.Linear(4, 4), new nn.ReLU(), new nn.Linear(4, 2));
    const before = (m.layers[0] as mx.nn.Linear).weight;
    nn.shardInplace(m, (p) => {
      seen.push(p);
      return null;
    });
    expect(seen).toEqual(S.predicate_paths);
    expect((m.layers[0] as mx.nn.Linear).weight).toBe(before);
    // On one process a sharded parameter is a copy of the whole one.
    nn.shardInplace(m, "all-to-sharded", { segments: 2 });
    expect((m.layers[0] as mx.nn.Linear).weight.tolist()).toEqual(before.tolist());
  });

  const msg = (name: string) => S.errors.find((e) => e.name === name)!.message;
  test("errors", () => {
    expectMlxMessage(() => nn.shardLinear(new nn.Linear(4, 4), "foo" as "all-to-sharded"), msg("shard_linear sharding"));
    expectMlxError(() => nn.shardLinear(new nn.Linear(4, 4), "foo" as "all-to-sharded"), /^\[shard_linear\] /);
    expectMlxMessage(() => nn.shardInplace(new nn.Linear(4, 4), "all-to-all" as "all-to-sharded"), msg("shard_inplace sharding"));
    expectMlxMessage(() => nn.shardInplace(new nn.Linear(4, 4), () => "x" as unknown as number), msg("shard_inplace predicate"));
    class WithScalar extends nn.Module {
      lin = new nn.Linear(2, 2);
      temperature = mx.array(1.0);
      forward(x: mx.Array) {
        return mx.multiply(this.lin.forward(x), this.temperature);
      }
    }
    expectMlxMessage(() => new nn.FullyShardedModule(new WithScalar()), msg("fsdp scalar"));
    expectMlxMessage(() => new nn.QuantizedAllToShardedLinear(60, 8), msg("quantized input dims"));
    expectMlxMessage(() => nn.shardLinear(new nn.Linear(8, 6), "all-to-sharded", { segments: 4 }), msg("segments split"));
  });

  test("wrong types name the op or class", () => {
    expectMlxError(() => nn.shardLinear(new nn.Conv1d(2, 2, 1) as unknown as mx.nn.Linear, "all-to-sharded"), /\[shard_linear\] Expected an nn\.Linear or an nn\.QuantizedLinear, got Conv1d\./);
    expectMlxError(() => nn.QuantizedShardedToAllLinear.fromQuantizedLinear(new nn.Linear(64, 4)), /\[QuantizedShardedToAllLinear\.fromQuantizedLinear\] Expected an nn\.QuantizedLinear, got Linear\./);
    expectMlxError(() => nn.AllToShardedLinear.fromLinear(new nn.ReLU()), /\[AllToShardedLinear\.fromLinear\] Expected a linear layer with a 2-D weight, got ReLU\./);
    expectMlxError(() => new nn.AllToShardedLinear(8, 6, true, {} as mx.distributed.Group), /\[AllToShardedLinear\] group must be an mx\.distributed\.Group, got Object\./);
    expectMlxError(() => new nn.ShardedToAllLinear(8.5, 6), /\[ShardedToAllLinear\] input_dims must be a non-negative integer, got 8\.5\./);
    expectMlxError(() => new nn.FullyShardedModule(3 as unknown as mx.nn.Module), /\[FullyShardedModule\] Expected an nn\.Module, got number\./);
    expectMlxError(() => nn.fullyShard(new nn.Linear(2, 2), { group: "all" as unknown as mx.distributed.Group }), /\[fully_shard\] group must be an mx\.distributed\.Group, got string\./);
    expectMlxError(() => nn.shardInplace({} as mx.nn.Module, "all-to-sharded"), /\[shard_inplace\] Expected an nn\.Module, got Object\./);
  });
});

describe("a group of two processes (MLX's shards from a two-process ring run)", () => {
  for (const rk of fx.ranks) {
    const group = new StandInGroup(rk.rank, rk.size);
    test(`rank ${rk.rank}: shardLinear of a Linear holds MLX's shards and computes MLX's local output`, () => {
      const lin = linearOf(rk.linear_source[0], rk.linear_source[1]);
      for (const c of rk.linear) {
        const layer = nn.shardLinear(lin, c.sharding, { segments: c.segments, group }) as mx.nn.AllToShardedLinear;
        expect(layer.toString()).toBe(c.repr);
        expectParams(layer.parameters(), c.params);
        const x = arrayOf(c.x);
        if (c.sharding === "all-to-sharded") {
          // No communication in the forward pass: this rank's outputs are MLX's.
          close(layer.forward(x), c.out, 1e-5, 1e-6, c.name);
          // The input's gradient is summed over the group: it needs a backend.
          expectMlxError(() => mx.grad((x: mx.Array) => mx.sum(layer.forward(x)))(x), /\[all_sum\] mlx-bun has no distributed backend: a group of 2 processes cannot communicate\./);
        } else {
          expectMlxError(() => layer.forward(x), /\[all_sum\] mlx-bun has no distributed backend: a group of 2 processes cannot communicate\./);
          // What the all-sum would add up: every rank's x_r W_r^T, then the bias.
          const parts = fx.ranks.map((o) => {
            const other = nn.shardLinear(lin, c.sharding, { segments: c.segments, group: new StandInGroup(o.rank, o.size) }) as mx.nn.ShardedToAllLinear;
            return mx.matmul(arrayOf(o.linear.find((oc) => oc.name === c.name)!.x), mx.transpose(other.weight));
          });
          close(mx.add(parts.reduce((a, b) => mx.add(a, b)), layer.bias!), c.out, 1e-5, 1e-6, c.name);
        }
      }
    });

    test(`rank ${rk.rank}: shardLinear of a QuantizedLinear holds MLX's shards`, () => {
      const sources = new Map(rk.quantized_source.map((s) => [s.name, nn.QuantizedLinear.fromLinear(linearOf(s.weight, s.bias), s.group_size, s.bits, s.mode)]));
      for (const c of rk.quantized) {
        const ql = sources.get(c.source)!;
        const layer = nn.shardLinear(ql, c.sharding, { segments: c.segments, group }) as mx.nn.QuantizedAllToShardedLinear;
        expect(layer.toString()).toBe(c.repr);
        expectParams(layer.parameters(), c.params);
        const x = arrayOf(c.x);
        if (c.sharding === "all-to-sharded") {
          closeMax(layer.forward(x), c.out, 1e-5, c.name);
        } else {
          expectMlxError(() => layer.forward(x), /\[all_sum\] mlx-bun has no distributed backend/);
          const opts = { transpose: true, groupSize: layer.groupSize, bits: layer.bits, mode: layer.mode };
          const parts = fx.ranks.map((o) => {
            const other = nn.shardLinear(ql, c.sharding, { segments: c.segments, group: new StandInGroup(o.rank, o.size) }) as mx.nn.QuantizedShardedToAllLinear;
            return mx.quantizedMatmul(arrayOf(o.quantized.find((oc) => oc.name === c.name)!.x), other.weight, other.scales, other.biases, opts);
          });
          closeMax(mx.add(parts.reduce((a, b) => mx.add(a, b)), layer.bias!), c.out, 1e-5, c.name);
        }
      }
    });

    test(`rank ${rk.rank}: FullyShardedModule holds MLX's rows of every parameter`, () => {
      const f = new nn.FullyShardedModule(mlpOf(rk.fsdp.params_in), { group });
      expect(f.toString()).toBe(rk.fsdp.repr);
      expectParams(f.parameters(), rk.fsdp.params);
      expectMlxError(() => f.forward(mx.ones([2, 4])), /\[all_gather\] mlx-bun has no distributed backend: a group of 2 processes cannot communicate\./);
      // The shards are back in place after the failed call.
      expectParams(f.parameters(), rk.fsdp.params);
      const fl = nn.fullyShard(new nn.Linear(4, 2), { group });
      expect(fl.constructor.name).toBe(rk.fully_shard.linear);
      expect(nn.fullyShard(new nn.ReLU(), { group }).constructor.name).toBe(rk.fully_shard.relu);
      expect(nn.fullyShard(fl, { group }) === fl).toBe(rk.fully_shard.same);
    });

    test(`rank ${rk.rank}: sizes that do not divide by the group's size`, () => {
      const msg = (name: string) => rk.errors.find((e) => e.name === name)!.message;
      expectMlxMessage(() => new nn.AllToShardedLinear(8, 5, true, group), msg("all-to-sharded output"));
      expectMlxMessage(() => new nn.ShardedToAllLinear(5, 4, true, group), msg("sharded-to-all input"));
      expectMlxMessage(() => new nn.QuantizedAllToShardedLinear(64, 5, true, 64, 4, "affine", group), msg("quantized all-to-sharded output"));
      expectMlxMessage(() => new nn.QuantizedShardedToAllLinear(63, 4, true, 64, 4, "affine", group), msg("quantized sharded-to-all input"));
      expectMlxMessage(() => new nn.FullyShardedModule(new nn.Linear(4, 3), { group }), msg("fsdp axis 0"));
      expectMlxMessage(() => new nn.FullyShardedModule(new nn.Sequential(new nn.Linear(3, 4), new nn.Linear(4, 3)), { group }), msg("fsdp axis 0 bias"));
      expectMlxMessage(() => nn.shardInplace(new nn.Linear(5, 3), "all-to-sharded", { group }), msg("shard_inplace split"));
    });
  }
});
