// The records `mx.exportFunction(callback, fn, ...args)` hands its callback, as MLX's
// `export_function` with a callable first argument: "inputs", "keyword_inputs", "outputs",
// "constants", then one "primitive" record per step of the traced graph in topological order.
// Made from the engine's JSON description of an unfused tape (engine/compile.zig `describe`):
// arrays are named A, B, ..., Z, AA, AB, ... in order of first appearance (inputs, outputs,
// constants, then each step's result), as MLX names them; our primitives are given MLX's class
// names and MLX's arguments where we share the primitive (docs/COMPAT.md lists what differs),
// and otherwise our op's name with the engine's parameters as the one argument.
import { toDtype, type Dtype } from "./dtype";
import type { MxArray } from "./array";

/** An array in a record: `[name, shape, dtype]`. */
export type ExportArrayInfo = [name: string, shape: number[], dtype: Dtype];

/** One record of `mx.exportFunction` with a callback (MLX's dictionaries, as objects). */
export type ExportRecord =
  | { type: "inputs"; inputs: ExportArrayInfo[] }
  | { type: "keyword_inputs"; keywords: [keyword: string, name: string][] }
  | { type: "outputs"; outputs: ExportArrayInfo[] }
  | { type: "constants"; constants: [name: string, value: MxArray][] }
  | { type: "primitive"; name: string; inputs: ExportArrayInfo[]; outputs: ExportArrayInfo[]; arguments: unknown[] };

/** The callback target of `mx.exportFunction`: called once per record, in order. */
export type ExportCallback = (record: ExportRecord) => unknown;

interface SigDesc {
  dtype: string;
  shape: number[];
}

interface StepDesc extends SigDesc {
  /** Our op's name (as error messages spell it). */
  name: string;
  /** The primitive's parameters (reflect.writeJson: unions as {tag: payload}). */
  prim: Record<string, unknown>;
  strides: number[];
  inputs: number[];
}

/** The engine's description of a tape (engine/compile.zig `describe`). */
export interface TapeDesc {
  shapeless: boolean;
  inputs: SigDesc[];
  constants: SigDesc[];
  steps: StepDesc[];
  outputs: number[];
}

/** MLX's names: A..Z, then AA, AB, ... (bijective base 26 of the 1-based count). */
export function arrayName(k: number): string {
  let n = k + 1;
  let s = "";
  while (n > 0) {
    s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
    n = Math.floor((n - 1) / 26);
  }
  return s;
}

// Our elementwise ops that are MLX primitives of their own: [MLX class name, its arguments].
const UNARY: Record<string, [string, unknown[]]> = {
  abs: ["Abs", []], sign: ["Sign", []], negative: ["Negative", []], square: ["Square", []],
  sqrt: ["Sqrt", [false]], rsqrt: ["Sqrt", [true]], exp: ["Exp", []], expm1: ["Expm1", []],
  erf: ["Erf", []], erfinv: ["ErfInv", []], sin: ["Sin", []], cos: ["Cos", []], tan: ["Tan", []],
  arcsin: ["ArcSin", []], arccos: ["ArcCos", []], arctan: ["ArcTan", []], sinh: ["Sinh", []],
  cosh: ["Cosh", []], tanh: ["Tanh", []], arcsinh: ["ArcSinh", []], arccosh: ["ArcCosh", []],
  arctanh: ["ArcTanh", []],
  // MLX's Log::Base: two 0, ten 1, e 2.
  log: ["Log", [2]], log2: ["Log", [0]], log10: ["Log", [1]], log1p: ["Log1p", []],
  sigmoid: ["Sigmoid", []], floor: ["Floor", []], ceil: ["Ceil", []], round: ["Round", []],
  conj: ["Conjugate", []], real: ["Real", []], imag: ["Imag", []], logical_not: ["LogicalNot", []],
  bitwise_invert: ["BitwiseInvert", []],
};

const BINARY: Record<string, [string, unknown[]]> = {
  add: ["Add", []], subtract: ["Subtract", []], multiply: ["Multiply", []], divide: ["Divide", []],
  floor_divide: ["FloorDivide", []], remainder: ["Remainder", []], power: ["Power", []],
  maximum: ["Maximum", []], minimum: ["Minimum", []], logaddexp: ["LogAddExp", []],
  arctan2: ["ArcTan2", []], equal: ["Equal", [false]], not_equal: ["NotEqual", []], less: ["Less", []],
  less_equal: ["LessEqual", []], greater: ["Greater", []], greater_equal: ["GreaterEqual", []],
  logical_and: ["LogicalAnd", []], logical_or: ["LogicalOr", []],
  // MLX's BitwiseBinary::Op: And, Or, Xor, LeftShift, RightShift.
  bitwise_and: ["BitwiseBinary", [0]], bitwise_or: ["BitwiseBinary", [1]], bitwise_xor: ["BitwiseBinary", [2]],
  left_shift: ["BitwiseBinary", [3]], right_shift: ["BitwiseBinary", [4]],
};

// MLX's Reduce::ReduceType (And, Or, Sum, Prod, Min, Max), Scan::ReduceType (Max, Min, Sum,
// Prod, LogAddExp), ArgReduce::ReduceType (ArgMin, ArgMax).
const REDUCE: Record<string, number> = { all: 0, any: 1, sum: 2, prod: 3, min: 4, max: 5 };
const SCAN: Record<string, number> = { max: 0, min: 1, sum: 2, prod: 3, logaddexp: 4 };
const ARG_REDUCE: Record<string, number> = { argmin: 0, argmax: 1 };

/** The only key of a `{tag: payload}` union value, and its payload. */
function tagOf(u: unknown): [string, unknown] {
  const o = u as Record<string, unknown>;
  const k = Object.keys(o)[0]!;
  return [k, o[k]];
}

function axesOf(bits: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < 32; i++) if ((bits >>> i) & 1) out.push(i);
  return out;
}

/** MLX's name and arguments for a step, and the order in which MLX lists its inputs; null when MLX has no such primitive. */
function mlxPrimitive(s: StepDesc, inShapes: number[][]): { name: string; args: unknown[]; order?: number[] } | null {
  const [family, payload] = tagOf(s.prim);
  const dtype = toDtype(s.dtype as Dtype["name"]);
  switch (family) {
    case "astype":
      return { name: "AsType", args: [dtype] };
    case "broadcast":
      return { name: "Broadcast", args: [s.shape.slice()] };
    case "stop_gradient":
      return { name: "StopGradient", args: [] };
    case "depends":
      return { name: "Depends", args: [] };
    case "arange": {
      const a = payload as { start: number; step: number };
      return { name: "Arange", args: [a.start, a.start + s.shape[0]! * a.step, a.step] };
    }
  }
  const [op, p] = tagOf(payload);
  switch (`${family}.${op}`) {
    case "elementwise.unary": {
      const m = UNARY[p as string];
      return m ? { name: m[0], args: m[1].slice() } : null;
    }
    case "elementwise.binary": {
      const m = BINARY[p as string];
      return m ? { name: m[0], args: m[1].slice() } : null;
    }
    case "elementwise.select":
      return { name: "Select", args: [] };
    case "reduce.reduce": {
      const r = p as { op: string; axes: number };
      return { name: "Reduce", args: [REDUCE[r.op], axesOf(r.axes)] };
    }
    case "reduce.arg_reduce": {
      const r = p as { op: string; axis: number | null };
      return r.axis === null ? null : { name: "ArgReduce", args: [ARG_REDUCE[r.op], r.axis] };
    }
    case "reduce.logsumexp":
      return { name: "LogSumExp", args: [] };
    case "shape.reshape": {
      const r = p as { kind: string; a: number; b: number };
      if (r.kind === "flatten") return { name: "Flatten", args: [r.a, r.b] };
      if (r.kind === "unflatten") return { name: "Unflatten", args: [r.a, s.shape.slice(r.a, r.a + r.b)] };
      const shape = s.shape.slice();
      if (r.kind === "infer") shape[r.a] = -1;
      return { name: "Reshape", args: [shape] };
    }
    case "shape.transpose":
      return { name: "Transpose", args: [(p as number[]).slice(0, s.shape.length)] };
    case "shape.slice": {
      // One axis of ours; MLX's Slice keeps start, stop and strides for every axis (our stop is
      // the tightest bound; past the start of the axis for a reversed slice, as MLX writes it).
      const sl = p as { axis: number; start: number; step: number };
      const inShape = inShapes[0]!;
      const start = inShape.map(() => 0);
      const stop = inShape.slice();
      const strides = inShape.map(() => 1);
      const n = s.shape[sl.axis]!;
      start[sl.axis] = sl.start;
      strides[sl.axis] = sl.step;
      let end = n === 0 ? sl.start : sl.start + (n - 1) * sl.step + (sl.step > 0 ? 1 : -1);
      if (sl.step < 0 && end < 0) end -= inShape[sl.axis]!;
      stop[sl.axis] = end;
      return { name: "Slice", args: [start, stop, strides] };
    }
    case "shape.as_strided":
      return { name: "AsStrided", args: [s.shape.slice(), s.strides.slice(), p] };
    case "shape.contiguous":
      return { name: "Contiguous", args: [p] };
    case "shape.concatenate":
      return { name: "Concatenate", args: [p] };
    case "shape.view":
      return { name: "View", args: [dtype] };
    case "sort.scan": {
      const c = p as { op: string; axis: number; reverse: boolean; inclusive: boolean };
      return { name: "Scan", args: [SCAN[c.op], c.axis, c.reverse, c.inclusive] };
    }
    case "sort.sort": {
      const c = p as { op: string; axis: number; kth: number };
      if (c.op === "sort") return { name: "Sort", args: [c.axis] };
      if (c.op === "argsort") return { name: "ArgSort", args: [c.axis] };
      if (c.op === "partition") return { name: "Partition", args: [c.kth, c.axis] };
      if (c.op === "argpartition") return { name: "ArgPartition", args: [c.kth, c.axis] };
      return null;
    }
    case "matmul.matmul":
      return { name: "Matmul", args: [] };
    case "matmul.addmm": {
      // Ours takes (c, a, b); MLX's AddMM lists (a, b, c).
      const c = p as { alpha: number; beta: number };
      return { name: "AddMM", args: [c.alpha, c.beta], order: [1, 2, 0] };
    }
    case "indexing.gather_axis":
      return { name: "GatherAxis", args: [(p as { axis: number }).axis] };
    case "random.bits":
      return { name: "RandomBits", args: [s.shape.slice(), p] };
  }
  return null;
}

/**
 * The records of a described tape. `keywords` are the keyword names of the last
 * `keywords.length` inputs; `constants` the tape's constants, in order (handed to the
 * "constants" record).
 */
export function exportRecords(desc: TapeDesc, keywords: readonly string[], constants: readonly MxArray[]): ExportRecord[] {
  const names = new Map<number, string>();
  const nameOf = (ref: number): string => {
    let n = names.get(ref);
    if (n === undefined) {
      n = arrayName(names.size);
      names.set(ref, n);
    }
    return n;
  };
  const kindOf = (ref: number) => ref >>> 30;
  const indexOf = (ref: number) => ref & 0x3fffffff;
  const sigOf = (ref: number): SigDesc => {
    const k = kindOf(ref);
    const i = indexOf(ref);
    return k === 0 ? desc.inputs[i]! : k === 1 ? desc.steps[i]! : desc.constants[i]!;
  };
  const info = (ref: number): ExportArrayInfo => {
    const s = sigOf(ref);
    return [nameOf(ref), s.shape.slice(), toDtype(s.dtype as Dtype["name"])];
  };
  const ref = (kind: number, i: number) => ((kind << 30) | i) >>> 0;

  // Inputs: the positional ones, then the keyword ones in name order (MLX keeps its keyword
  // arguments in a sorted map); a stable sort keeps a nested keyword's arrays in tree order.
  const npos = desc.inputs.length - keywords.length;
  const top = (k: string) => k.split(".")[0]!;
  const kwOrder = keywords.map((k, j) => j).sort((a, b) => (top(keywords[a]!) < top(keywords[b]!) ? -1 : top(keywords[a]!) > top(keywords[b]!) ? 1 : 0));
  const inputOrder = [...Array(npos).keys(), ...kwOrder.map((j) => npos + j)];
  const records: ExportRecord[] = [];
  records.push({ type: "inputs", inputs: inputOrder.map((i) => info(ref(0, i))) });
  records.push({ type: "keyword_inputs", keywords: kwOrder.map((j) => [keywords[j]!, nameOf(ref(0, npos + j))]) });
  records.push({ type: "outputs", outputs: desc.outputs.map(info) });
  records.push({ type: "constants", constants: constants.map((c, i) => [nameOf(ref(2, i)), c]) });
  desc.steps.forEach((s, i) => {
    const inShapes = s.inputs.map((r) => sigOf(r).shape);
    const m = mlxPrimitive(s, inShapes);
    const order = m?.order ?? s.inputs.map((_, k) => k);
    records.push({
      type: "primitive",
      name: m ? m.name : s.name,
      inputs: order.map((k) => info(s.inputs[k]!)),
      outputs: [info(ref(1, i))],
      arguments: m ? m.args : [s.prim],
    });
  });
  return records;
}
