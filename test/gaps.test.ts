// The small MLX names closed by h-gaps: asarray, empty, emptyLike, unique, minmax, the operator
// methods, devices and streams, getArrayBufferSize, PrintOptions, mx.metal / mx.cuda /
// mx.distributed without their backends, nn.averageGradients, mx.fast.crossEntropy and
// gatedDeltaUpdate, exportToDot. Reference values come from real MLX 0.32.4
// (test/fixtures/gaps/gen_gaps.py) or are worked out by hand in the test.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import * as mx from "../src/index.ts";
import { arrayOf, bytesOf, fromHex, loadFixture, numbersOf, type Rec } from "./fixture";
import { expectMlxError } from "./util";

interface Fixture {
  unique: { name: string; a: Rec; size: number; fill: Rec | null; out: Rec[] }[];
  minmax: { name: string; a: Rec; axis: number | number[] | null; keepdims: boolean; out: Rec[] }[];
  cross_entropy: { name: string; logits: Rec; targets: Rec; out: Rec }[];
  gated_delta: { name: string; q: Rec; k: Rec; v: Rec; gamma: Rec; beta: Rec; state: Rec | null; mask: Rec | null; out: Rec[] }[];
}
const fx = loadFixture<Fixture>("gaps/gaps.json.gz");

function expectBits(a: mx.Array, r: Rec, what: string): void {
  expect(`${what}: ${a.dtype.name} ${a.shape.join("x")}`).toBe(`${what}: ${r.dtype} ${r.shape.join("x")}`);
  expect(`${what}: ${[...bytesOf(a)].join(",")}`).toBe(`${what}: ${[...fromHex(r.hex)].join(",")}`);
}

function expectClose(a: mx.Array, r: Rec, tol: number, what: string): void {
  expect(`${what}: ${a.dtype.name} ${a.shape.join("x")}`).toBe(`${what}: ${r.dtype} ${r.shape.join("x")}`);
  const got = numbersOf(bytesOf(a), r.dtype);
  const want = numbersOf(fromHex(r.hex), r.dtype);
  for (let i = 0; i < want.length; i++) {
    if (Math.abs(got[i]! - want[i]!) > tol * (1 + Math.abs(want[i]!))) throw new Error(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

describe("asarray, empty, emptyLike", () => {
  test("asarray shares a TypedArray's memory by default, copies on request", () => {
    const t = new Float32Array([1, 2]);
    const shared = mx.asarray(t);
    const copied = mx.asarray(t, { copy: true });
    t[0] = 9;
    expect(shared.tolist()).toEqual([9, 2]);
    expect(copied.tolist()).toEqual([1, 2]);
    // A Float64Array becomes float32 (a copy), as a float64 NumPy array does in MLX.
    const d = new Float64Array([1.5, 2]);
    const f = mx.asarray(d);
    d[0] = 7;
    expect(f.dtype).toBe(mx.float32);
    expect(f.tolist()).toEqual([1.5, 2]);
  });

  test("asarray of an mx.Array, a list, a scalar", () => {
    const a = mx.array([1, 2, 3]);
    expect(mx.asarray(a).tolist()).toEqual([1, 2, 3]);
    const c = mx.asarray(a, { copy: true });
    mx.eval(a, c);
    expect(mx.getArrayBufferSize(a, c)).toBe(2 * mx.getArrayBufferSize(a)); // fresh memory
    expect(mx.getArrayBufferSize(a, mx.asarray(a))).toBe(mx.getArrayBufferSize(a)); // shared
    const f = mx.asarray(a, mx.float32);
    expect(f.dtype).toBe(mx.float32);
    expect(mx.asarray([1, 2.5]).tolist()).toEqual([1, 2.5]);
    expect(mx.asarray(3, { dtype: mx.int8 }).dtype).toBe(mx.int8);
  });

  test("asarray with copy: false fails where a copy is needed", () => {
    const a = mx.array([1, 2, 3]);
    expectMlxError(() => mx.asarray(a, { dtype: mx.float32, copy: false }), /\[asarray\] Unable to avoid copy/);
    expectMlxError(() => mx.asarray([1, 2], { copy: false }), /\[asarray\] Unable to avoid copy/);
    expectMlxError(() => mx.asarray(3, { copy: false }), /\[asarray\] Unable to avoid copy/);
    expectMlxError(() => mx.asarray(new Float64Array([1]), { copy: false }), /\[asarray\]/);
    expectMlxError(() => mx.asarray(new Float32Array([1]), { dtype: mx.int32, copy: false }), /\[asarray\]/);
    const t = new Int32Array([4, 5]);
    const w = mx.asarray(t, { copy: false });
    t[1] = 6;
    expect(w.tolist()).toEqual([4, 6]);
  });

  test("empty and emptyLike are zeros, as MLX defines them", () => {
    const e = mx.empty([2, 3]);
    expect(e.dtype).toBe(mx.float32);
    expect(e.tolist()).toEqual([[0, 0, 0], [0, 0, 0]]);
    expect(mx.empty(2, mx.int32).tolist()).toEqual([0, 0]);
    const l = mx.emptyLike(mx.array([1.5, 2]));
    expect([l.dtype, l.tolist()]).toEqual([mx.float32, [0, 0]]);
    const h = mx.emptyLike(mx.array([1, 2]), mx.float16);
    expect([h.dtype, h.tolist()]).toEqual([mx.float16, [0, 0]]);
  });
});

describe("operator methods", () => {
  test("a.mT, a.div, a.bitwiseOr, positive, divide with a scalar on the left", () => {
    const a = mx.array([[1, 2], [3, 4]]);
    expect(a.mT.tolist()).toEqual([[1, 3], [2, 4]]);
    expect(mx.zeros([2, 3, 4]).mT.shape).toEqual([2, 4, 3]);
    expect(a.div(2).tolist()).toEqual([[0.5, 1], [1.5, 2]]);
    expect(a.div(2).dtype).toBe(mx.float32);
    expect(a.bitwiseOr(4).tolist()).toEqual([[5, 6], [7, 4]]);
    expect(mx.positive(a).tolist()).toEqual([[1, 2], [3, 4]]);
    expect(mx.divide(1, a).tolist()).toEqual([[1, 0.5], [1 / 3, 0.25].map(Math.fround)]);
  });
});

describe("unique and minmax (MLX fixtures)", () => {
  for (const c of fx.unique) {
    test(`unique: ${c.name}`, () => {
      const a = arrayOf(c.a);
      const fill = c.fill === null ? undefined : arrayOf(c.fill);
      const out = mx.unique(a, c.size, { returnIndex: true, returnInverse: true, returnCounts: true, fillValue: fill }) as mx.Array[];
      ["values", "index", "inverse", "counts"].forEach((w, i) => expectBits(out[i]!, c.out[i]!, w));
      expectBits(mx.unique(a, c.size, { fillValue: fill }) as mx.Array, c.out[0]!, "values alone");
    });
  }

  test("unique: requested outputs only, in MLX's order", () => {
    const a = mx.array([2, 1, 2, 3, 1]);
    const [values, counts] = mx.unique(a, 4, { returnCounts: true, fillValue: 0 }) as mx.Array[];
    expect(values!.tolist()).toEqual([1, 2, 3, 0]);
    expect(counts!.tolist()).toEqual([2, 2, 1, 0]);
    const [v2, inverse] = mx.unique(a, 3, { returnInverse: true }) as mx.Array[];
    expect(v2!.tolist()).toEqual([1, 2, 3]);
    expect(inverse!.tolist()).toEqual([1, 0, 1, 2, 0]);
  });

  test("unique: errors", () => {
    expectMlxError(() => mx.unique(mx.array([1]), -1), /\[unique\] Received negative size -1\./);
    expectMlxError(() => mx.unique(mx.zeros([0]), 2), /\[unique\] A fill value is required for an empty input with a non-zero size\./);
    expectMlxError(() => mx.unique(mx.array([1]), 1.5), /\[unique\] size must be an integer/);
  });

  for (const c of fx.minmax) {
    test(`minmax: ${c.name}`, () => {
      const [lo, hi] = mx.minmax(arrayOf(c.a), { axis: c.axis ?? undefined, keepdims: c.keepdims });
      expectBits(lo, c.out[0]!, "min");
      expectBits(hi, c.out[1]!, "max");
    });
  }

  test("minmax: an empty reduction fails as min does", () => {
    expectMlxError(() => mx.minmax(mx.zeros([0])), /\[min\]/);
  });
});

describe("devices and streams", () => {
  test("deviceCount and deviceInfo", () => {
    expect(mx.deviceCount(mx.DeviceType.cpu)).toBe(1);
    expect(mx.deviceCount(mx.cpu)).toBe(1);
    expect(mx.deviceCount("gpu")).toBe(0);
    const info = mx.deviceInfo();
    const arch = process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? ["arm64", "aarch64"] : process.arch;
    expect(Array.isArray(arch) ? arch.includes(info.architecture as string) : info.architecture === arch).toBe(true);
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim();
    if (model !== undefined) expect(info.device_name).toBe(model);
    const memTotalKb = Number(/^MemTotal:\s*(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
    expect(info.memory_size).toBe(memTotalKb * 1024);
    expect(mx.deviceInfo(mx.cpu)).toEqual(info);
    expect(mx.deviceInfo(mx.gpu)).toEqual({});
    expectMlxError(() => mx.deviceCount("tpu" as "cpu"), /\[device_count\] Unknown device type/);
  });

  test("ThreadLocalStream: a stream made on first use, forgotten by clearStreams", () => {
    const tls = mx.newThreadLocalStream(mx.cpu);
    expect(tls).toBeInstanceOf(mx.ThreadLocalStream);
    expect(tls.device.equals(mx.cpu)).toBe(true);
    const s1 = tls.stream;
    expect(tls.stream).toBe(s1);
    expect(s1.index).not.toBe(mx.defaultStream(mx.cpu).index);
    expect(mx.add(mx.array(1), mx.array(2), { stream: tls }).item()).toBe(3);
    expect(mx.stream(tls, () => mx.defaultStream(mx.cpu).index)).toBe(s1.index);
    mx.synchronize(tls);
    mx.clearStreams();
    const s2 = tls.stream;
    expect(s2.index).not.toBe(s1.index);
    expect(mx.add(mx.array(1), mx.array(2), { stream: s1 }).item()).toBe(3); // old streams stay usable
    expectMlxError(() => mx.newThreadLocalStream(mx.gpu), /\[new_thread_local_stream\]/);
  });

  test("newThreadUnsafeStream is a new stream", () => {
    const s = mx.newThreadUnsafeStream(mx.cpu);
    expect(s).toBeInstanceOf(mx.Stream);
    expect(s.index).not.toBe(mx.defaultStream(mx.cpu).index);
    expect(mx.multiply(mx.array(2), 3, { stream: s }).item()).toBe(6);
  });

  test("setWiredLimit is a no-op returning 0 on the CPU, as MLX", () => {
    expect(mx.setWiredLimit(100)).toBe(0);
    expect(mx.setWiredLimit(0)).toBe(0);
    expectMlxError(() => mx.setWiredLimit(-1), /\[set_wired_limit\]/);
  });
});

describe("getArrayBufferSize", () => {
  test("each buffer once, views share, trees and non-array leaves", () => {
    // 1024 float32 is exactly a size class (4 per power of two): the allocator's block is 4096.
    const a = mx.arange(1024, mx.float32);
    const b = mx.arange(2048, mx.uint8);
    mx.eval(a, b);
    expect(mx.getArrayBufferSize(a)).toBe(4096);
    const v = a.index(mx.sl(1, 10));
    mx.eval(v);
    expect(mx.getArrayBufferSize(v)).toBe(4096);
    expect(mx.getArrayBufferSize(a, v, { x: [a, 3, "s"], y: v })).toBe(4096);
    expect(mx.getArrayBufferSize(a, b)).toBe(4096 + 2048);
    expect(mx.getArrayBufferSize()).toBe(0);
    // A block is at least the data: 1000 float32 is 4000 bytes.
    const c = mx.arange(1000, mx.float32);
    mx.eval(c);
    expect(mx.getArrayBufferSize(c)).toBeGreaterThanOrEqual(4000);
    // mx.ones is a scalar broadcast (stride 0): its buffer is one small block, not 4 KiB.
    const o = mx.ones([1024]);
    mx.eval(o);
    expect(mx.getArrayBufferSize(o)).toBeLessThan(4096);
  });

  test("arrays must be evaluated", () => {
    expectMlxError(() => mx.getArrayBufferSize(mx.add(mx.ones([3]), 1)), /\[get_array_buffer_size\] Arrays must be evaluated before querying buffer size\./);
  });
});

test("PrintOptions", () => {
  expect(new mx.PrintOptions().precision).toBe(-1);
  const a = mx.array([1, 2.5, 1 / 3]);
  expect(mx.printoptions(new mx.PrintOptions({ precision: 2 }), () => `${a}`)).toBe("array([1.00, 2.50, 0.33], dtype=float32)");
  mx.setPrintoptions(new mx.PrintOptions({ precision: 1 }));
  expect(mx.getPrintoptions()).toEqual({ precision: 1 });
  mx.setPrintoptions(new mx.PrintOptions());
  expect(`${a}`).toBe("array([1, 2.5, 0.333333], dtype=float32)");
});

describe("GPU namespaces without their backends", () => {
  test("mx.metal and mx.cuda, as MLX on a machine without them", () => {
    expect(mx.metal.isAvailable()).toBe(false);
    expect(mx.cuda.isAvailable()).toBe(false);
    expect(mx.metal.deviceInfo()).toEqual({});
    expect(mx.metal.startCapture("trace.gputrace")).toBeUndefined();
    expect(mx.metal.stopCapture()).toBeUndefined();
  });
});

describe("mx.distributed in one process without a backend", () => {
  test("isAvailable, init, Group", () => {
    expect(mx.distributed.isAvailable()).toBe(false);
    expect(mx.distributed.isAvailable("ring")).toBe(false);
    const g = mx.distributed.init();
    expect([g.rank(), g.size()]).toEqual([0, 1]);
    expect(mx.distributed.init({ backend: "mpi" })).toBe(g);
    expectMlxError(() => mx.distributed.init({ strict: true }), /\[distributed\] Couldn't initialize any backend/);
    expectMlxError(() => mx.distributed.init({ backend: "foo" as "any" }), /\[distributed\] The only valid values for backend are 'any', 'mpi', 'nccl', 'jaccl' and 'ring' but 'foo' was provided\./);
    expectMlxError(() => g.split(0), /Cannot split the distributed group further/);
    expectMlxError(() => g.split(0, 5), /Cannot split the distributed group further/);
  });

  test("collectives are the identity on a singleton group; send/recv fail", () => {
    const x = mx.array([[1, 2], [3, 4]], mx.float32);
    const g = mx.distributed.init();
    for (const f of [mx.distributed.allSum, mx.distributed.allGather, mx.distributed.allMax, mx.distributed.allMin, mx.distributed.sumScatter]) {
      const r = f(x, { group: g });
      expect([r.dtype, r.shape, r.tolist()]).toEqual([mx.float32, [2, 2], [[1, 2], [3, 4]]]);
      r.dispose();
      expect(x.tolist()).toEqual([[1, 2], [3, 4]]); // x itself survives the result's disposal
    }
    expect(mx.distributed.allSum(mx.array(3)).tolist()).toBe(3);
    expect(mx.distributed.allMax(mx.array([true, false])).tolist()).toEqual([true, false]);
    expectMlxError(() => mx.distributed.send(x, 0), /Cannot send to a singleton group/);
    expectMlxError(() => mx.distributed.recv([2, 2], mx.float32, 0), /Cannot recv from a singleton group/);
    expectMlxError(() => mx.distributed.recvLike(x, 0), /Cannot recv from a singleton group/);
  });

  test("collectives over a group claiming more than one process fail: there is no backend to carry the data", () => {
    class TwoProcesses extends mx.distributed.Group {
      override size(): number {
        return 2;
      }
    }
    const g = new TwoProcesses();
    const ops: [string, (x: mx.Array, o: { group: mx.distributed.Group }) => mx.Array][] = [
      ["all_sum", mx.distributed.allSum], ["all_gather", mx.distributed.allGather], ["all_max", mx.distributed.allMax],
      ["all_min", mx.distributed.allMin], ["sum_scatter", mx.distributed.sumScatter],
    ];
    for (const [name, f] of ops) {
      expectMlxError(() => f(mx.array([1, 2]), { group: g }), new RegExp(`^\\[${name}\\] mlx-bun has no distributed backend: a group of 2 processes cannot communicate\\.$`));
    }
  });

  test("nn.averageGradients returns the gradients unchanged for one process", () => {
    const grads = { w: mx.ones([2]), layers: [{ b: mx.zeros([1]) }] };
    expect(mx.nn.averageGradients(grads)).toBe(grads);
    expect(mx.nn.averageGradients(grads, { group: mx.distributed.init(), allReduceSize: 0 })).toBe(grads);
  });
});

describe("mx.fast.crossEntropy (MLX fixtures)", () => {
  for (const c of fx.cross_entropy) {
    test(c.name, () => {
      const out = mx.fast.crossEntropy(arrayOf(c.logits), arrayOf(c.targets));
      // MLX's CPU path composes the same ops; float32 logsumexp may differ in the last bit.
      expectClose(out, c.out, 2e-6, c.name);
    });
  }

  test("errors", () => {
    const l = mx.array([[1, 2, 3], [0.5, 0.1, 4]], mx.float32);
    expectMlxError(() => mx.fast.crossEntropy(l, mx.array([1])), /\[cross_entropy\] targets shape \(1\) does not match logits shape \(2,3\) with the last axis removed\./);
    expectMlxError(() => mx.fast.crossEntropy(l, mx.array([1, 0], mx.float32)), /\[cross_entropy\] targets must be integer class indices but got float32\./);
  });
});

describe("mx.fast.gatedDeltaUpdate (MLX fixtures)", () => {
  for (const c of fx.gated_delta) {
    test(c.name, () => {
      const [y, state] = mx.fast.gatedDeltaUpdate(arrayOf(c.q), arrayOf(c.k), arrayOf(c.v), arrayOf(c.gamma), arrayOf(c.beta), {
        initialState: c.state === null ? null : arrayOf(c.state),
        mask: c.mask === null ? null : arrayOf(c.mask),
      });
      const tol = c.q.dtype === "float16" ? 2e-3 : 1e-5;
      expectClose(y, c.out[0]!, tol, "y");
      expectClose(state, c.out[1]!, tol, "state");
    });
  }

  test("errors", () => {
    const q = mx.zeros([1, 2, 2, 4]);
    const v = mx.zeros([1, 2, 3, 4]);
    const g = mx.zeros([1, 2, 3]);
    expectMlxError(() => mx.fast.gatedDeltaUpdate(q, q, v, g, g), /\[gated_delta_update\] The value heads \(3\) must be a multiple of the key heads \(2\)\./);
    expectMlxError(() => mx.fast.gatedDeltaUpdate(mx.zeros([2, 4]), q, v, g, g), /\[gated_delta_update\] q, k and v must have 4 dimensions/);
  });
});

describe("exportToDot", () => {
  function dot(...args: (mx.Array | Record<string, mx.Array>)[]): string {
    let text = "";
    mx.exportToDot({ write: (t: string) => void (text += t) }, ...args);
    return text;
  }

  test("the graph of exp(x + y) * y: sources, op nodes, a sink", () => {
    const x = mx.array(1, mx.float32);
    const y = mx.array(2, mx.float32);
    const out = mx.multiply(mx.exp(mx.add(x, y)), y);
    const text = dot(out, { x, y });
    const lines = text.trim().split("\n");
    expect(lines[0]).toBe("digraph {");
    expect(lines.at(-1)).toBe("}");
    expect(lines.filter((l) => l.includes("rank=source"))).toEqual(['{ rank=source; "x"; }', '{ rank=source; "y"; }']);
    const ops = [...text.matchAll(/\{ (p\d+) \[label ="(\w+)", shape=rectangle\]; \}/g)].map((m) => [m[1]!, m[2]!]);
    expect(ops.map((o) => o[1])).toEqual(["add", "exp", "multiply"]); // inputs first
    const [add, exp, mul] = ops.map((o) => o[0]!);
    const edges = lines.filter((l) => l.includes("->"));
    expect(edges).toEqual([`"x" -> ${add}`, `"y" -> ${add}`, `${add} -> "A"`, `"A" -> ${exp}`, `${exp} -> "B"`, `"B" -> ${mul}`, `"y" -> ${mul}`, `${mul} -> "C"`]);
    expect(lines).toContain('{ rank=sink; "C"; }');
    mx.eval(out);
    // Once evaluated the output has no graph: it is a source.
    expect(dot(out).trim().split("\n")).toEqual(["digraph {", '{ rank=source; "A"; }', "}"]);
  });

  test("shared inputs appear once; several outputs are sinks; a file path", () => {
    const a = mx.arange(4, mx.float32); // unevaluated, no inputs: an op node with no edges in
    const s = mx.sin(a);
    const o1 = mx.add(s, s);
    const o2 = mx.multiply(s, 2);
    const text = dot(o1, o2);
    expect((text.match(/label ="sin"/g) ?? []).length).toBe(1);
    expect((text.match(/label ="arange"/g) ?? []).length).toBe(1);
    expect((text.match(/rank=sink/g) ?? []).length).toBe(2);
    const path = `${require("node:os").tmpdir()}/mlxbun-gaps-${process.pid}.dot`;
    mx.exportToDot(path, o1, o2);
    expect(readFileSync(path, "utf8").replace(/p\d+/g, "p")).toBe(text.replace(/p\d+/g, "p"));
    require("node:fs").unlinkSync(path);
  });

  test("bad arguments", () => {
    expectMlxError(() => mx.exportToDot("x.dot", 3 as unknown as mx.Array, mx.array(1)), /\[export_to_dot\]/);
  });
});

describe("sharded linear layers on the singleton group (MLX fixtures)", () => {
  const cases = loadFixture<{ sharded: { name: string; cls: string; bias: boolean; seed: number; x: Rec; repr: string; out: Rec }[] }>("gaps/gaps.json.gz").sharded;
  for (const c of cases) {
    test(c.name, () => {
      mx.random.seed(c.seed);
      const Cls = c.cls === "AllToShardedLinear" ? mx.nn.AllToShardedLinear : mx.nn.ShardedToAllLinear;
      const layer = new Cls(8, 6, c.bias);
      expect(layer.toString()).toBe(c.repr);
      expectClose(layer.forward(arrayOf(c.x)), c.out, 1e-6, c.name);
      expect(Object.keys(layer.parameters()).sort()).toEqual(c.bias ? ["bias", "weight"] : ["weight"]);
    });
  }

  test("fromLinear keeps the linear's parameters (one process holds every shard)", () => {
    const lin = new mx.nn.Linear(8, 6);
    const x = mx.random.normal([2, 8]);
    for (const Cls of [mx.nn.AllToShardedLinear, mx.nn.ShardedToAllLinear]) {
      const s = Cls.fromLinear(lin);
      expect(s.weight.tolist()).toEqual(lin.weight.tolist());
      expect(mx.allclose(s.forward(x), lin.forward(x), { atol: 1e-6 }).item()).toBe(true);
    }
  });
});

test("nn.utils.clipGradNormSharded on the singleton group (MLX fixture)", () => {
  const f = loadFixture<{ clip_sharded: { w: Rec; b: Rec; cases: { max_norm: number; w: Rec; b: Rec; norm: Rec }[] } }>("gaps/gaps.json.gz").clip_sharded;
  const grads = { w: arrayOf(f.w), layers: [{ b: arrayOf(f.b) }] };
  for (const c of f.cases) {
    const [clipped, norm] = mx.nn.utils.clipGradNormSharded(grads, c.max_norm);
    expectBits(norm, c.norm, `norm ${c.max_norm}`);
    expectBits(clipped.w, c.w, `w ${c.max_norm}`);
    expectBits(clipped.layers[0]!.b, c.b, `b ${c.max_norm}`);
  }
});

test("nn.fullyShard returns the module unchanged on the singleton group, as MLX", () => {
  const m = new mx.nn.Linear(4, 2);
  expect(mx.nn.fullyShard(m)).toBe(m);
  expect(mx.nn.fullyShard(m, { group: mx.distributed.init() })).toBe(m);
});
