// mx.exportFunction with a callback target (MLX's export_function(callback, fun, ...)): the
// records (types, array names, shapes, dtypes, primitive names and arguments, constants'
// values) against what MLX 0.32.4's callback received for the same functions
// (test/fixtures/export/gen_callback.py writes callback.json).
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { liveCompiledTapes } from "../src/compile.ts";
import { arrayName } from "../src/export_records.ts";
import { bytesOf, loadFixture, toHex, type Rec } from "./fixture.ts";
import { expectMlxError } from "./util.ts";

type Info = [string, number[], string];
type JRecord =
  | { type: "inputs"; inputs: Info[] }
  | { type: "keyword_inputs"; keywords: [string, string][] }
  | { type: "outputs"; outputs: Info[] }
  | { type: "constants"; constants: [string, Rec][] }
  | { type: "primitive"; name: string; inputs: Info[]; outputs: Info[]; arguments: unknown[] };
interface Fixture {
  cases: Record<string, { records: JRecord[]; differs?: string }>;
  errors: Record<string, string>;
}
const fx = loadFixture<Fixture>("export/callback.json");

/** Our records in the fixture's encoding (dtypes by name, constants as {dtype, shape, hex}). */
function encodeArg(v: unknown): unknown {
  if (v instanceof mx.Dtype) return { dtype: v.name };
  if (Array.isArray(v)) return v.map(encodeArg);
  return v;
}
const info = (i: mx.ExportArrayInfo): Info => [i[0], i[1], i[2].name];
function encode(r: mx.ExportRecord): JRecord {
  switch (r.type) {
    case "inputs": return { type: r.type, inputs: r.inputs.map(info) };
    case "keyword_inputs": return { type: r.type, keywords: r.keywords };
    case "outputs": return { type: r.type, outputs: r.outputs.map(info) };
    case "constants": return { type: r.type, constants: r.constants.map(([n, a]) => [n, { dtype: a.dtype.name, shape: [...a.shape], hex: toHex(bytesOf(a)) }]) };
    case "primitive": return { type: r.type, name: r.name, inputs: r.inputs.map(info), outputs: r.outputs.map(info), arguments: encodeArg(r.arguments) as unknown[] };
  }
}

function records(fn: (...a: never[]) => unknown, ...args: unknown[]): JRecord[] {
  const out: JRecord[] = [];
  mx.exportFunction((r) => void out.push(encode(r)), fn, ...args);
  return out;
}

/** Rename every array by first appearance (A, B, ...), as the exporter names them. */
function renumber(rs: JRecord[]): JRecord[] {
  const names = new Map<string, string>();
  const n = (x: string) => {
    if (!names.has(x)) names.set(x, arrayName(names.size));
    return names.get(x)!;
  };
  const i = (x: Info): Info => [n(x[0]), x[1], x[2]];
  return rs.map((r) => {
    switch (r.type) {
      case "inputs": return { ...r, inputs: r.inputs.map(i) };
      case "keyword_inputs": return { ...r, keywords: r.keywords.map(([k, v]) => [k, n(v)] as [string, string]) };
      case "outputs": return { ...r, outputs: r.outputs.map(i) };
      case "constants": return { ...r, constants: r.constants.map(([c, v]) => [n(c), v] as [string, Rec]) };
      case "primitive": return { ...r, inputs: r.inputs.map(i), outputs: r.outputs.map(i) };
    }
  });
}

/** MLX's records with each Broadcast of a 0-d array removed (its users read the 0-d array: ours broadcast in the kernel), renamed. */
function withoutScalarBroadcasts(rs: JRecord[]): JRecord[] {
  const alias = new Map<string, string>();
  const kept: JRecord[] = [];
  for (const r of rs) {
    if (r.type === "primitive" && r.name === "Broadcast" && r.inputs.length === 1 && r.inputs[0]![1].length === 0) {
      alias.set(r.outputs[0]![0], r.inputs[0]![0]);
      continue;
    }
    if (r.type === "primitive") {
      const inputs = r.inputs.map((x): Info => (alias.has(x[0]) ? [alias.get(x[0])!, [], x[2]] : x));
      kept.push({ ...r, inputs });
    } else kept.push(r);
  }
  return renumber(kept);
}

const x2 = () => mx.array([1, 2], mx.float32);
const y2 = () => mx.array([3, 4], mx.float32);
const c2 = mx.array([10, 20], mx.float32);
const x234 = () => mx.arange(24, { dtype: mx.float32 }).reshape([2, 3, 4]);

// The same functions as the generator's, in TypeScript (a trailing plain object = Python's keywords).
const cases: Record<string, () => JRecord[]> = {
  brief: () => records((x: mx.Array, kw: { y: mx.Array }) => mx.add(mx.multiply(mx.exp(x), kw.y), 1), x2(), { y: y2() }),
  elementwise: () => records((x: mx.Array, y: mx.Array) => mx.maximum(mx.log(mx.add(mx.multiply(mx.exp(x), y), c2)), mx.rsqrt(mx.sqrt(y))), x2(), y2()),
  matmul: () => records((a: mx.Array, b: mx.Array) => mx.matmul(a, b), mx.ones([2, 3]), mx.ones([3, 4])),
  reductions: () => records((x: mx.Array) => [mx.sum(x, { axis: 1, keepdims: true }), mx.max(x, { axis: [0, 2], keepdims: true }), mx.argmax(x, { axis: 2, keepdims: true }), mx.cumsum(x, 1)], x234()),
  reshape_transpose: () => records((x: mx.Array) => [mx.reshape(mx.transpose(x, [1, 0, 2]), [-1, 4]), mx.reshape(x, [6, 4]), mx.flatten(x, 1, 2), mx.concatenate([x, x], 2)], x234()),
  // Given as { z, y }: listed in name order, as MLX's keyword map.
  kwargs: () => records((x: mx.Array, kw: { z: mx.Array; y: mx.Array }) => mx.subtract(x, mx.divide(kw.z, kw.y)), x2(), { z: c2, y: y2() }),
  multiple_outputs: () => records((x: mx.Array, y: mx.Array) => [x, mx.multiply(x, y), mx.add(mx.multiply(x, y), y)], x2(), y2()),
  constant_only: () => records(() => mx.array(3, mx.float32)),
  names: () => records((x: mx.Array) => {
    for (let i = 0; i < 30; i++) x = mx.sin(x);
    return x;
  }, x2()),
};

describe("exportFunction with a callback: MLX's records", () => {
  for (const [name, run] of Object.entries(cases)) {
    test(name, () => {
      const c = fx.cases[name]!;
      const mlx = c.differs === "scalar_broadcast" ? withoutScalarBroadcasts(c.records) : c.records;
      expect(run()).toEqual(mlx);
    });
  }

  test("shapeless", () => {
    const out: JRecord[] = [];
    mx.exportFunction({ callback: (r) => void out.push(encode(r)), shapeless: true }, (x: mx.Array) => mx.sum(mx.exp(mx.transpose(x, [0, 2, 1])), { axis: 1, keepdims: true }), x234());
    expect(out).toEqual(fx.cases.shapeless!.records);
  });

  test("the records are delivered in order, one call each, as objects; constants are arrays", () => {
    const seen: mx.ExportRecord[] = [];
    mx.exportFunction((r) => void seen.push(r), (x: mx.Array) => mx.add(x, c2), x2());
    expect(seen.map((r) => r.type)).toEqual(["inputs", "keyword_inputs", "outputs", "constants", "primitive"]);
    const consts = seen[3] as Extract<mx.ExportRecord, { type: "constants" }>;
    expect(consts.constants[0]![0]).toBe("C");
    expect(consts.constants[0]![1]).toBeInstanceOf(mx.Array);
    expect(consts.constants[0]![1].tolist()).toEqual([10, 20]);
    const add = seen[4] as Extract<mx.ExportRecord, { type: "primitive" }>;
    expect(add.inputs.map((i) => i[0])).toEqual(["A", "C"]);
    expect(add.outputs[0]![2]).toBe(mx.float32);
  });
});

describe("exportFunction with a callback: arguments of other primitives (MLX's, checked by hand)", () => {
  const prims = (fn: (...a: never[]) => unknown, ...args: unknown[]) =>
    records(fn, ...args).filter((r) => r.type === "primitive").map((r) => [(r as { name: string }).name, (r as { arguments: unknown[] }).arguments]);
  test("astype, broadcast, slices, sorts, scans, addmm", () => {
    expect(prims((x: mx.Array) => mx.astype(x, mx.int16), x2())).toEqual([["AsType", [{ dtype: "int16" }]]]);
    expect(prims((x: mx.Array) => mx.broadcastTo(x, [3, 2]), x2())).toEqual([["Broadcast", [[3, 2]]]]);
    // MLX: x[:, 1:3] is Slice((0, 1, 0), (2, 3, 4), (1, 1, 1)); ours slices one axis at a time.
    expect(prims((x: mx.Array) => x.index(mx.sl(), mx.sl(1, 3)), x234())).toEqual([["Slice", [[0, 1, 0], [2, 3, 4], [1, 1, 1]]]]);
    // MLX: x[:, ::-1] is Slice((0, 2, 0), (2, -4, 4), (1, -1, 1)).
    expect(prims((x: mx.Array) => x.index(mx.sl(), mx.sl(null, null, -1)), x234())).toEqual([["Slice", [[0, 2, 0], [2, -4, 4], [1, -1, 1]]]]);
    expect(prims((x: mx.Array) => [mx.sort(x, 1), mx.argsort(x, -1)], x234())).toEqual([["Sort", [1]], ["ArgSort", [2]]]);
    expect(prims((x: mx.Array) => mx.cumprod(x, 2, { reverse: true, inclusive: false }), x234())).toEqual([["Scan", [3, 2, true, false]]]);
    // MLX: as_strided(x, (2, 2), (1, 1)) ends in AsStrided((2, 2), (1, 1), 0).
    const strided = prims((x: mx.Array) => mx.asStrided(x, [2, 2], [1, 1]), x234());
    expect(strided[strided.length - 1]).toEqual(["AsStrided", [[2, 2], [1, 1], 0]]);
    // MLX's AddMM lists (a, b, c) and keeps (alpha, beta).
    const r = records((c: mx.Array, a: mx.Array, b: mx.Array) => mx.addmm(c, a, b, { alpha: 2, beta: 0.5 }), mx.ones([2, 2]), mx.ones([2, 3]), mx.ones([3, 2]));
    const addmm = r.find((x) => x.type === "primitive") as Extract<JRecord, { type: "primitive" }>;
    expect([addmm.name, addmm.arguments, addmm.inputs.map((i) => i[0])]).toEqual(["AddMM", [2, 0.5], ["B", "C", "A"]]);
  });

  test("a primitive MLX does not have keeps our op's name and our parameters", () => {
    const [r] = prims((x: mx.Array) => mx.trunc(x), x2());
    expect(r).toEqual(["trunc", [{ elementwise: { unary: "trunc" } }]]);
  });
});

describe("exportFunction with a callback: bad calls and failures", () => {
  test("metadata with a callback is refused as MLX", () => {
    expectMlxError(() => mx.exportFunction({ callback: () => {}, metadata: "m" } as never, (x: mx.Array) => x, x2()), new RegExp(`^${fx.errors.metadata_with_callback!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`));
  });

  test("a target that is neither a path nor a callback", () => {
    expectMlxError(() => mx.exportFunction(3 as never, (x: mx.Array) => x, x2()), /^\[export_function\] The target must be a file path, a callback/);
    expectMlxError(() => mx.exportFunction(null as never, (x: mx.Array) => x, x2()), /^\[export_function\] The target must be a file path, a callback/);
    expectMlxError(() => mx.exportFunction({ callback: 5 } as never, (x: mx.Array) => x, x2()), /^\[export_function\] The callback must be a function\.$/);
    expectMlxError(() => mx.exportFunction(() => {}, 5 as never, x2()), /^\[export_function\] The function to export must be callable\.$/);
  });

  test("mx.exporter takes a file only (MLX's exporter has no callback target)", () => {
    expectMlxError(() => mx.exporter((() => {}) as never, (x: mx.Array) => x), /^\[exporter\] The file must be a path/);
  });

  test("an exception thrown by the callback propagates and leaves nothing behind", () => {
    const tapes = liveCompiledTapes();
    let calls = 0;
    const boom = new Error("boom");
    expect(() =>
      mx.exportFunction((r) => {
        calls++;
        if (r.type === "constants") throw boom;
      }, (x: mx.Array) => mx.add(x, c2), x2()),
    ).toThrow(boom);
    expect(calls).toBe(4);
    expect(liveCompiledTapes()).toBe(tapes);
    // The next export and compile work.
    expect(records((x: mx.Array) => mx.exp(x), x2()).length).toBe(5);
    const f = mx.compile((x: mx.Array) => mx.multiply(x, 2));
    expect(f(x2()).tolist()).toEqual([2, 4]);
    f.dispose();
  });

  test("a function calling a custom function cannot be exported (as to a file); no callback runs", () => {
    const tapes = liveCompiledTapes();
    const cf = mx.customFunction((v: mx.Array) => mx.exp(v));
    let calls = 0;
    expectMlxError(() => mx.exportFunction(() => void calls++, (v: mx.Array) => cf(v), x2()), /^\[export_function\] The function calls a custom function/);
    expect(calls).toBe(0);
    expect(liveCompiledTapes()).toBe(tapes);
  });

  test("an exception thrown by the function being traced propagates", () => {
    const tapes = liveCompiledTapes();
    expect(() => mx.exportFunction(() => {}, () => { throw new Error("in fn"); })).toThrow("in fn");
    expect(liveCompiledTapes()).toBe(tapes);
    expect(records((x: mx.Array) => mx.exp(x), x2()).length).toBe(5);
  });
});
