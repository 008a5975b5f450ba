// mx.compile: a function traced once per signature into a tape kept in the engine
// (engine/compile.zig), then replayed natively: one FFI call takes the input handles and makes
// every output node, no JS runs per op. The engine simplifies each tape and fuses its chains
// of elementwise ops into single kernels (bit-identical; `fuse: false` or MLXB_NO_FUSE=1 turn
// that off for tests). Also mx.exportFunction / mx.importFunction (the tape in a file of our
// own format, docs/COMPILE-FORMAT.md), mx.exporter (several traces in one file), and
// mx.disableCompile / mx.enableCompile.
//
// The signature of a call: the tree structure of the arguments, each array's dtype and shape
// (only its rank when shapeless), and the other leaves (numbers, strings, booleans, null) by
// value. `inputs` / `outputs` capture implicit state: trees (lists, plain objects, nn.Modules,
// objects with a `state` such as an optimizer) whose arrays are read before the call and
// written after it, so a whole training step compiles, as in MLX.
import { shapelessTrace } from "./trace_flags";
import { checkHandle, checkStatus, DTYPE, lib } from "../ffi/lib";
import { MxArray, isMxArray, takeResults } from "./array";
import { MlxError } from "./errors";
import { keep } from "./memory";
import { Module } from "./nn/module";
import { runScoped } from "./scope";
import { treeFlatten, treeUnflatten } from "./transforms";
import { exportRecords, type ExportCallback, type TapeDesc } from "./export_records";

let enabled = !process.env.MLXB_DISABLE_COMPILE || process.env.MLXB_DISABLE_COMPILE === "0";
/** Internal: `MLXB_NO_FUSE=1` builds tapes without fusion (for tests and benchmarks; MLX has no such switch). */
const fuseDefault = !process.env.MLXB_NO_FUSE || process.env.MLXB_NO_FUSE === "0";

/** Turn compilation off globally: compiled functions then run their plain function (as MLX's `disable_compile`). */
export function disableCompile(): void {
  enabled = false;
}

/** Turn compilation back on (as MLX's `enable_compile`). Also settable with `MLXB_DISABLE_COMPILE=1`. */
export function enableCompile(): void {
  enabled = true;
}

/** Options of compile. */
export interface CompileOptions {
  /** State read by the function besides its arguments: a tree of arrays, nn.Modules, optimizers. */
  inputs?: unknown;
  /** State the function writes: its arrays are replaced after each call by the new values. */
  outputs?: unknown;
  /** Do not retrace when only input shapes change (same dtypes and ranks). */
  shapeless?: boolean;
  /** @internal Fuse chains of elementwise ops into single kernels (default true; `MLXB_NO_FUSE=1` turns it off). */
  fuse?: boolean;
}

/** @internal The size of an engine tape. */
export interface TapeStats {
  steps: number;
  constants: number;
  inputs: number;
  outputs: number;
  /** Steps that are fused elementwise chains (one kernel each). */
  fused: number;
}

function tapeStats(id: number): TapeStats {
  const q = (k: number) => checkStatus(lib.mlxb_compile_info(id, k));
  return { steps: q(0), constants: q(1), inputs: q(2), outputs: q(3), fused: q(6) };
}

/** A compiled function: call it like `fn`. */
export interface CompiledFunction<A extends unknown[], R> {
  (...args: A): R;
  /** How many times the function was traced (one per new signature). */
  readonly traceCount: number;
  /** Engine tapes currently cached (one per signature). */
  readonly cacheSize: number;
  /** @internal The size of each cached tape after simplification and fusion (steps, constants, inputs, outputs, fused steps). */
  readonly tapeStats: TapeStats[];
  /** Free every cached tape now (the GC does it otherwise); the function retraces if called again. */
  dispose(): void;
  [Symbol.dispose](): void;
}

// ---------------------------------------------------------------------------------------------
// State slots: where the arrays of `inputs` / `outputs` live, so they can be read and replaced.

interface Slot {
  obj: Record<string | number, unknown>;
  key: string | number;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v) || v instanceof MxArray) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function stateSlots(tree: unknown, op: string): Slot[] {
  const out: Slot[] = [];
  const seen = new Set<unknown>();
  const walk = (t: unknown): void => {
    if (t === null || typeof t !== "object" || seen.has(t)) return;
    seen.add(t);
    const visit = (obj: Record<string | number, unknown>, key: string | number) => {
      const v = obj[key];
      if (v instanceof MxArray) out.push({ obj, key });
      else walk(v);
    };
    if (t instanceof MxArray) throw new MlxError(`[${op}] Captured state must be a list, a dict, a module or an object with a state, not a bare array.`, 1);
    if (Array.isArray(t)) for (let i = 0; i < t.length; i++) visit(t as unknown as Record<number, unknown>, i);
    else if (isPlain(t) || t instanceof Module) for (const k of Object.keys(t)) visit(t as Record<string, unknown>, k);
    else if ("state" in (t as object)) walk((t as { state: unknown }).state); // an optimizer
  };
  walk(tree);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Signatures

function typeName(v: unknown): string {
  if (typeof v === "function") return "function";
  if (typeof v !== "object" || v === null) return typeof v;
  return (v as object).constructor?.name ?? "object";
}

/** The signature key of the arguments; collects their arrays (in treeFlatten order). */
function signature(args: readonly unknown[], shapeless: boolean, arrays: MxArray[]): string {
  return signatureWith(args, arrays, (t) => (shapeless ? `a${t.dtype.value}r${t.ndim};` : `a${t.dtype.value}(${t.shape.join(",")});`), "compile");
}

/** The key of an argument tree with `arrayKey` for each array; collects the arrays. */
function signatureWith(args: readonly unknown[], arrays: MxArray[], arrayKey: (a: MxArray) => string, op: string): string {
  let key = "";
  const walk = (t: unknown): void => {
    if (t instanceof MxArray) {
      arrays.push(t);
      key += arrayKey(t);
    } else if (Array.isArray(t)) {
      key += "[";
      for (const x of t) walk(x);
      key += "]";
    } else if (isPlain(t)) {
      key += "{";
      for (const k of Object.keys(t)) {
        key += `${JSON.stringify(k)}:`;
        walk(t[k]);
      }
      key += "}";
    } else if (typeof t === "number") key += `n${Object.is(t, -0) ? "-0" : String(t)};`;
    else if (typeof t === "string") key += `s${JSON.stringify(t)};`;
    else if (typeof t === "boolean") key += t ? "T;" : "F;";
    else if (t === null) key += "N;";
    else if (t === undefined) key += "U;";
    else if (typeof t === "bigint") key += `b${t};`;
    else throw new MlxError(`[${op}] Function arguments must be trees of arrays or constants (floats, ints, strings, or None), but received type ${typeName(t)}.`, 1);
  };
  walk(args);
  return key;
}

// ---------------------------------------------------------------------------------------------
// Tracing and replay

interface Entry {
  id: number;
  /** The traced result (for its tree structure; its arrays are replaced on replay). */
  template: unknown;
  nOut: number;
  nStateOut: number;
  hasCustom: boolean;
}

const u32 = (xs: readonly MxArray[], op: string): Uint32Array => {
  const hs = new Uint32Array(Math.max(xs.length, 1));
  for (let i = 0; i < xs.length; i++) hs[i] = xs[i]!.handle(op);
  return hs;
};

/** Run fn on tracers and keep its graph as an engine tape. */
function traceTape(fn: (...a: unknown[]) => unknown, args: readonly unknown[], argArrays: readonly MxArray[], inSlots: readonly Slot[], outputs: unknown, shapeless: boolean, fuse: boolean, op: string): Entry {
  const originals = inSlots.map((s) => s.obj[s.key] as MxArray);
  lib.mlxb_compile_trace_begin();
  try {
    return runScoped((): Entry => {
      const tracer = (a: MxArray) => new MxArray(checkHandle(lib.mlxb_tracer(a.handle(op), -1)));
      const argTracers = argArrays.map(tracer);
      const stateTracers = originals.map(tracer);
      inSlots.forEach((s, i) => (s.obj[s.key] = stateTracers[i]));
      const result = shapelessTrace(shapeless, () => fn(...treeUnflatten(args as unknown[], argTracers)));
      const outs = treeFlatten(result);
      const outSlots = outputs === undefined ? [] : stateSlots(outputs, op);
      const stateOut = outSlots.map((s) => s.obj[s.key] as MxArray);
      const all = [...outs, ...stateOut];
      const phs = [...argTracers, ...stateTracers];
      const id = checkHandle(lib.mlxb_compile_build(u32(phs, op), phs.length, u32(all, op), all.length, (shapeless ? 1 : 0) | (fuse ? 0 : 2)));
      return { id, template: skeleton(result), nOut: outs.length, nStateOut: stateOut.length, hasCustom: lib.mlxb_compile_info(id, 4) === 1 };
    }, isMxArray);
  } finally {
    inSlots.forEach((s, i) => (s.obj[s.key] = originals[i]));
    lib.mlxb_compile_trace_end();
  }
}

/** A marker for an array leaf in a result's skeleton (the traced arrays themselves are not kept). */
const LEAF = Symbol("leaf");

/** The tree with its arrays replaced by LEAF (treeFlatten's traversal: arrays and plain objects). */
function skeleton(t: unknown): unknown {
  if (t instanceof MxArray) return LEAF;
  if (Array.isArray(t)) return t.map(skeleton);
  if (isPlain(t)) return Object.fromEntries(Object.keys(t).map((k) => [k, skeleton(t[k])]));
  return t;
}

/** The skeleton filled with arrays, in order. */
function fill(t: unknown, leaves: readonly MxArray[]): unknown {
  let i = 0;
  const walk = (u: unknown): unknown => {
    if (u === LEAF) return leaves[i++];
    if (Array.isArray(u)) return u.map(walk);
    if (isPlain(u)) return Object.fromEntries(Object.keys(u).map((k) => [k, walk(u[k])]));
    return u;
  };
  return walk(t);
}

/** Replay a tape on arrays; the outputs as new arrays. */
function replay(id: number, inputs: readonly MxArray[], op: string): MxArray[] {
  const n = checkStatus(lib.mlxb_compile_call(id, u32(inputs, op), inputs.length));
  return takeResults(n);
}

const registry = new FinalizationRegistry<Set<number>>((ids) => {
  for (const id of ids) lib.mlxb_compile_free(id);
});

/**
 * A compiled version of `fn`: traced once per signature (argument tree structure, array dtypes
 * and shapes, other arguments by value), then replayed natively by the engine. `inputs` and
 * `outputs` capture implicit state (e.g. `[model, optimizer, mx.random.state]`) so a whole
 * training step compiles. Compose with transforms freely: `mx.grad(mx.compile(f))`,
 * `mx.compile(mx.grad(f))`, `mx.vmap(mx.compile(f))`. Free its tapes with `dispose()` (or let
 * the GC do it).
 * @example
 * const gelu = mx.compile((x: mx.Array) => mx.multiply(x, mx.sigmoid(mx.multiply(1.702, x))));
 * gelu(mx.ones([4])); // traced; later calls with a float32 (4) array replay the tape
 */
export function compile<A extends unknown[], R>(fn: (...args: A) => R, options: CompileOptions = {}): CompiledFunction<A, R> {
  const { inputs, outputs } = options;
  const shapeless = options.shapeless === true;
  const fuse = options.fuse ?? fuseDefault;
  const cache = new Map<string, Entry>();
  const ids = new Set<number>();
  let traces = 0;
  const compiled = ((...args: A): R => {
    if (!enabled) return fn(...args);
    const inSlots = inputs === undefined ? [] : stateSlots(inputs, "compile");
    const arrays: MxArray[] = [];
    let key = signature(args, shapeless, arrays);
    const stateIn = inSlots.map((s) => s.obj[s.key] as MxArray);
    if (inSlots.length > 0) key += `|${signature(stateIn, shapeless, [])}`;
    let e = cache.get(key);
    if (e === undefined) {
      e = traceTape(fn as (...a: unknown[]) => unknown, args, arrays, inSlots, outputs, shapeless, fuse, "compile");
      traces++;
      cache.set(key, e);
      ids.add(e.id);
    }
    // Custom functions' rules are host callbacks the tape cannot replay: under a transform,
    // run the function itself so the outer transform sees them.
    if (e.hasCustom && lib.mlxb_is_tracing() === 1) return fn(...args);
    const outs = replay(e.id, arrays.concat(stateIn), "compile");
    if (e.nStateOut > 0) {
      const outSlots = stateSlots(outputs, "compile");
      if (outSlots.length !== e.nStateOut) {
        for (const o of outs) o.dispose();
        throw new MlxError(`[compile] The captured outputs hold ${outSlots.length} arrays, but ${e.nStateOut} when the function was traced.`, 1);
      }
      outSlots.forEach((s, i) => (s.obj[s.key] = keep(outs[e.nOut + i]!)));
    }
    return fill(e.template, outs.slice(0, e.nOut)) as R;
  }) as CompiledFunction<A, R>;
  const dispose = () => {
    for (const id of ids) lib.mlxb_compile_free(id);
    ids.clear();
    cache.clear();
    registry.unregister(compiled);
  };
  Object.defineProperties(compiled, {
    traceCount: { get: () => traces },
    cacheSize: { get: () => cache.size },
    tapeStats: { get: () => [...cache.values()].map((e) => tapeStats(e.id)) },
    dispose: { value: dispose },
    [Symbol.dispose]: { value: dispose },
  });
  registry.register(compiled, ids, compiled);
  return compiled;
}

// ---------------------------------------------------------------------------------------------
// Export and import
//
// A file holds one or more traces of a function (docs/COMPILE-FORMAT.md, format 2), each with
// its signature: the argument tree with the arrays left out (constants by value) and the names
// of the arrays of a trailing plain-object argument (JS's stand-in for Python's keyword
// arguments, as in exportToDot). A call runs the first trace, in file order, whose tree is the
// call's and whose arrays have the call's dtypes and shapes (only the ranks when shapeless), as
// MLX's import_function picks among its traces. Version 1 files (one trace, no signature) match
// on the arrays alone.

/**
 * Where and how to export: a path, a callback (called with each record of the traced graph,
 * MLX's `export_function` with a callable), or `{ path, shapeless, metadata }` /
 * `{ callback, shapeless }`.
 */
export type ExportTarget = string | ExportCallback | { path: string; shapeless?: boolean; metadata?: string } | { callback: ExportCallback; shapeless?: boolean; metadata?: undefined };

/** Options of `mx.exporter` (MLX's keyword arguments). */
export interface ExporterOptions {
  /** The traces replay on inputs of other shapes (same dtypes and ranks). Default false. */
  shapeless?: boolean;
  /** A string saved with the function (e.g. a JSON model configuration); read it back with `importFunction(path, { returnMetadata: true })`. */
  metadata?: string;
}

function pathBytes(path: string): Buffer {
  return Buffer.from(path, "utf8");
}

/** What a trace was made for: its tree key and its keyword names. */
interface TraceSig {
  /** signature() of the arguments with every array written as `a;`. */
  tree: string;
  /** Names of the arrays of a trailing plain-object argument (the last `keywords.length` inputs). */
  keywords: string[];
}

/** The signature of call arguments, and their arrays (in treeFlatten order). */
function traceSig(args: readonly unknown[], arrays: MxArray[], op: string): TraceSig {
  const tree = signatureWith(args, arrays, () => "a;", op);
  const keywords: string[] = [];
  const last = args.length > 0 ? args[args.length - 1] : undefined;
  if (isPlain(last)) {
    const walk = (t: unknown, path: string): void => {
      if (t instanceof MxArray) keywords.push(path);
      else if (Array.isArray(t)) t.forEach((x, i) => walk(x, `${path}.${i}`));
      else if (isPlain(t)) for (const k of Object.keys(t)) walk(t[k], path === "" ? k : `${path}.${k}`);
    };
    walk(last, "");
  }
  return { tree, keywords };
}

function encodeSig(s: TraceSig): string {
  return JSON.stringify({ tree: s.tree, keywords: s.keywords });
}

function decodeSig(text: string): TraceSig | null {
  if (text === "") return null; // a version 1 file
  try {
    const o = JSON.parse(text) as { tree?: unknown; keywords?: unknown };
    if (typeof o.tree === "string" && Array.isArray(o.keywords) && o.keywords.every((k) => typeof k === "string")) return { tree: o.tree, keywords: o.keywords as string[] };
  } catch {
    // fall through
  }
  throw new MlxError("[import_function] The file holds a trace signature this mlx-bun cannot read.", 1);
}

/** An array's description as MLX prints it in these messages: `(2,3) float32`. */
interface InputDesc {
  dtype: number;
  shape: readonly number[];
}

const dtypeNames = new Map<number, string>();
function dtypeName(v: number): string {
  if (dtypeNames.size === 0) for (const [k, n] of Object.entries(DTYPE)) dtypeNames.set(n, k);
  return dtypeNames.get(v) ?? String(v);
}

function describe(d: InputDesc): string {
  return `(${d.shape.join(",")}) ${dtypeName(d.dtype)}`;
}

function inputsMatch(trace: readonly InputDesc[], call: readonly InputDesc[], shapeless: boolean): boolean {
  if (trace.length !== call.length) return false;
  for (let i = 0; i < trace.length; i++) {
    const a = trace[i]!;
    const b = call[i]!;
    if (a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
    if (!shapeless && a.shape.some((d, k) => d !== b.shape[k])) return false;
  }
  return true;
}

function describeFunction(sig: TraceSig | null, inputs: readonly InputDesc[], indent: string): string {
  const kw = sig?.keywords ?? [];
  const npos = inputs.length - kw.length;
  let s = `with ${npos} positional inputs and ${kw.length} keyword inputs:\n`;
  inputs.forEach((d, j) => {
    s += j < npos ? `${indent}${j + 1}: ${describe(d)}\n` : `${indent}"${kw[j - npos]}": ${describe(d)}\n`;
  });
  return s;
}

/** MLX's `FunctionExporter`: call it with example arguments to add a trace to the file; `close()` ends it. */
export interface FunctionExporter {
  (...args: unknown[]): void;
  /** Traces written so far. */
  readonly traceCount: number;
  /** Whether close() was called. */
  readonly closed: boolean;
  /** Finish: later calls fail; frees the traces kept for rewriting the file. */
  close(): void;
  [Symbol.dispose](): void;
}

interface Trace {
  id: number;
  sig: TraceSig;
  inputs: InputDesc[];
}

/**
 * An exporter of several traces of `fn` to one file (MLX's `mx.exporter`). Each call with
 * example arguments traces `fn` on them and writes the file with one more trace; a second
 * trace with the same signature is refused. `mx.importFunction` of the file runs the trace
 * that matches a call's arguments. Close it with `close()` or a `using` declaration (MLX's
 * `with` block). The file is (re)written at each call, so it is complete after every one.
 * @example
 * using ex = mx.exporter("fun.mlxfn", (...xs: mx.Array[]) => xs.reduce((a, b) => mx.add(a, b)));
 * ex(mx.array(1));
 * ex(mx.array(1), mx.array(2));
 */
export function exporter(path: string, fn: (...args: never[]) => unknown, options: ExporterOptions = {}): FunctionExporter {
  if (typeof path === "function") throw new MlxError("[exporter] The file must be a path: the exporter writes a file (MLX's exporter takes no callback; mx.exportFunction does).", 1);
  if (typeof path !== "string" || path === "") throw new MlxError("[exporter] The file path must be a non-empty string.", 1);
  if (typeof fn !== "function") throw new MlxError("[exporter] The function to export must be callable.", 1);
  const shapeless = options.shapeless === true;
  const metadata = options.metadata ?? "";
  if (typeof metadata !== "string") throw new MlxError("[exporter] The metadata must be a string.", 1);
  if (metadata.includes("\0")) throw new MlxError("[exporter] The metadata cannot contain a NUL character.", 1);
  const traces: Trace[] = [];
  const ids = new Set<number>();
  let closed = false;
  const setText = (id: number, what: number, text: string) => {
    const b = Buffer.from(text, "utf8");
    checkStatus(lib.mlxb_compile_set_text(id, what, b, b.length));
  };
  // The engine writes the first trace and the ones linked after it.
  const write = () => {
    const first = traces[0]!.id;
    setText(first, 1, metadata);
    traces.forEach((t, i) => {
      setText(t.id, 0, encodeSig(t.sig));
      checkStatus(lib.mlxb_compile_link(t.id, i + 1 < traces.length ? traces[i + 1]!.id : 0));
    });
    const p = pathBytes(path);
    checkStatus(lib.mlxb_compile_export(first, p, p.length));
  };
  const ex = ((...args: unknown[]): void => {
    if (closed) throw new MlxError("[export_function] Attempting to write after exporting is closed.", 1);
    const arrays: MxArray[] = [];
    const sig = traceSig(args, arrays, "export_function");
    const inputs = arrays.map((a) => ({ dtype: a.dtype.value, shape: a.shape }));
    if (traces.some((t) => t.sig.tree === sig.tree && inputsMatch(t.inputs, inputs, shapeless)))
      throw new MlxError("[export_function] Attempting to export a function twice with the same signature is not allowed.", 1);
    const e = traceTape(fn as (...a: unknown[]) => unknown, args, arrays, [], undefined, shapeless, fuseDefault, "export_function");
    traces.push({ id: e.id, sig, inputs });
    ids.add(e.id);
    try {
      write();
    } catch (err) {
      traces.pop();
      ids.delete(e.id);
      lib.mlxb_compile_free(e.id);
      if (traces.length > 0) lib.mlxb_compile_link(traces[traces.length - 1]!.id, 0);
      throw err;
    }
  }) as FunctionExporter;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const id of ids) lib.mlxb_compile_free(id);
    ids.clear();
    registry.unregister(ex);
  };
  Object.defineProperties(ex, {
    traceCount: { get: () => traces.length },
    closed: { get: () => closed },
    close: { value: close },
    [Symbol.dispose]: { value: close },
  });
  registry.register(ex, ids, ex);
  return ex;
}

/**
 * Save `fn`, traced on the example arguments, to a file (our own format, docs/COMPILE-FORMAT.md;
 * MLX's `export_function`). Arguments may be trees of arrays and constants; constants are
 * baked in; a trailing plain object plays Python's keyword arguments. Load it with
 * `mx.importFunction`; several traces go in one file with `mx.exporter`.
 *
 * With a callback as the target (MLX's `export_function(callback, fun, ...)`), nothing is
 * written: the callback is called once per record of the traced graph, in order:
 * `{ type: "inputs", inputs }`, `{ type: "keyword_inputs", keywords }`, `{ type: "outputs", outputs }`,
 * `{ type: "constants", constants }` (each `[name, array]`), then one
 * `{ type: "primitive", name, inputs, outputs, arguments }` per operation in topological order.
 * Arrays are `[name, shape, dtype]`, named A, B, ... as MLX names them; primitives carry MLX's
 * class names and arguments where MLX has the same primitive (docs/COMPAT.md lists what
 * differs). Metadata cannot go with a callback (MLX's ValueError). An exception thrown by the
 * callback ends the export and propagates.
 * @example mx.exportFunction("f.mlxfn", (x: mx.Array) => mx.exp(x), mx.zeros([3]))
 * @example
 * const names: string[] = [];
 * mx.exportFunction((r) => { if (r.type === "primitive") names.push(r.name); }, (x: mx.Array) => mx.exp(x), mx.zeros([3]));
 * // names: ["Exp"]
 */
export function exportFunction(target: ExportTarget, fn: (...args: never[]) => unknown, ...args: unknown[]): void {
  const t = target as unknown;
  if (typeof t === "function" || (t !== null && typeof t === "object" && "callback" in t)) {
    const o = typeof t === "function" ? { callback: t as ExportCallback } : (t as { callback: unknown; shapeless?: boolean; metadata?: unknown });
    if ("metadata" in o && o.metadata !== undefined && o.metadata !== null)
      throw new MlxError("[export_function] The metadata argument is only supported when exporting to a file, not when using a callback.", 1);
    if (typeof o.callback !== "function") throw new MlxError("[export_function] The callback must be a function.", 1);
    return exportToCallback(o.callback as ExportCallback, fn, args, o.shapeless === true);
  }
  if (typeof t !== "string" && (t === null || typeof t !== "object" || typeof (t as { path?: unknown }).path !== "string"))
    throw new MlxError(`[export_function] The target must be a file path, a callback, { path, shapeless, metadata } or { callback, shapeless }, not ${typeName(t)}.`, 1);
  const path = typeof target === "string" ? target : (target as { path: string }).path;
  const options: ExporterOptions = typeof target === "string" ? {} : { shapeless: (target as { shapeless?: boolean }).shapeless, metadata: (target as { metadata?: string }).metadata };
  const ex = exporter(path, fn, options);
  try {
    ex(...args);
  } finally {
    ex.close();
  }
}

/** export_function with a callback: the records of the traced (unfused) tape, one call each. */
function exportToCallback(callback: ExportCallback, fn: (...args: never[]) => unknown, args: unknown[], shapeless: boolean): void {
  if (typeof fn !== "function") throw new MlxError("[export_function] The function to export must be callable.", 1);
  const arrays: MxArray[] = [];
  const sig = traceSig(args, arrays, "export_function");
  const e = traceTape(fn as (...a: unknown[]) => unknown, args, arrays, [], undefined, shapeless, false, "export_function");
  let constants: MxArray[] = [];
  let desc: TapeDesc;
  try {
    checkStatus(lib.mlxb_compile_describe(e.id));
    desc = JSON.parse(String(lib.mlxb_compile_text(e.id, 2) ?? "")) as TapeDesc;
    constants = takeResults(checkStatus(lib.mlxb_compile_constants(e.id)));
  } finally {
    lib.mlxb_compile_free(e.id);
  }
  let delivered = false;
  try {
    for (const r of exportRecords(desc, sig.keywords, constants)) {
      if (r.type === "constants") delivered = true;
      callback(r);
    }
  } finally {
    // Constants the callback never received are ours to release.
    if (!delivered) for (const c of constants) c.dispose();
  }
}

/** A function loaded by importFunction: call it like the exported function; returns the list of outputs. */
export interface ImportedFunction {
  (...args: unknown[]): MxArray[];
  /** Number of array inputs of its first trace. */
  readonly inputCount: number;
  /** Number of traces in the file. */
  readonly traceCount: number;
  /** The metadata saved with the function ("" if none). */
  readonly metadata: string;
  /** Free its engine tapes now. */
  dispose(): void;
  [Symbol.dispose](): void;
}

/** Options of importFunction. */
export interface ImportOptions {
  /** Also return the metadata saved with the function (MLX's `return_metadata`). */
  returnMetadata?: boolean;
}

/**
 * Load a function saved with `mx.exportFunction` or `mx.exporter` (MLX's `import_function`).
 * The file is validated (magic, version, primitives, operand references); a bad file fails
 * with an `[import_function] ...` error naming it. A call runs the trace matching its
 * arguments (tree, dtypes, shapes) and returns the list of outputs; with no match it fails
 * listing the traces, as MLX. With `{ returnMetadata: true }`, returns `[fn, metadata]`.
 * @example const [y] = mx.importFunction("f.mlxfn")(mx.ones([3]));
 */
export function importFunction(path: string): ImportedFunction;
export function importFunction(path: string, options: ImportOptions & { returnMetadata: true }): [ImportedFunction, string];
export function importFunction(path: string, options?: ImportOptions): ImportedFunction | [ImportedFunction, string];
export function importFunction(path: string, options: ImportOptions = {}): ImportedFunction | [ImportedFunction, string] {
  const p = pathBytes(path);
  const first = checkHandle(lib.mlxb_compile_import(p, p.length));
  const ids = new Set<number>();
  const traces: { id: number; sig: TraceSig | null; inputs: InputDesc[] }[] = [];
  let metadata = "";
  for (let id = first; id > 0; id = lib.mlxb_compile_info(id, 7)) ids.add(id);
  try {
    for (const id of ids) {
      const n = checkStatus(lib.mlxb_compile_info(id, 2));
      const inputs: InputDesc[] = [];
      for (let i = 0; i < n; i++) {
        const nd = checkStatus(lib.mlxb_compile_input_info(id, i, -2));
        const shape: number[] = [];
        for (let k = 0; k < nd; k++) shape.push(checkStatus(lib.mlxb_compile_input_info(id, i, k)));
        inputs.push({ dtype: checkStatus(lib.mlxb_compile_input_info(id, i, -1)), shape });
      }
      traces.push({ id, sig: null, inputs });
      traces[traces.length - 1]!.sig = decodeSig(String(lib.mlxb_compile_text(id, 0) ?? ""));
      if (id === first) metadata = String(lib.mlxb_compile_text(id, 1) ?? "");
    }
  } catch (err) {
    for (const id of ids) lib.mlxb_compile_free(id);
    throw err;
  }
  const shapeless = lib.mlxb_compile_info(first, 5) === 1;
  const f = ((...args: unknown[]): MxArray[] => {
    if (ids.size === 0) throw new MlxError("[import_function] The function was disposed.", 1);
    const arrays: MxArray[] = [];
    const sig = traceSig(args, arrays, "import_function");
    const inputs = arrays.map((a) => ({ dtype: a.dtype.value, shape: a.shape }));
    for (const t of traces) {
      if (t.sig !== null && t.sig.tree !== sig.tree) continue;
      if (inputsMatch(t.inputs, inputs, shapeless)) return replay(t.id, arrays, "import_function");
    }
    let msg = "[import_function::call] No imported function found which matches the given positional and keyword arguments. Possible functions include:\n";
    traces.forEach((t, i) => (msg += ` ${i + 1}. Function ${describeFunction(t.sig, t.inputs, "   ")}`));
    msg += `\nCalled ${describeFunction(sig, inputs, "  ")}`;
    throw new MlxError(msg, 1);
  }) as ImportedFunction;
  const dispose = () => {
    if (ids.size === 0) return;
    for (const id of ids) lib.mlxb_compile_free(id);
    ids.clear();
    registry.unregister(f);
  };
  Object.defineProperties(f, {
    inputCount: { value: traces[0]!.inputs.length },
    traceCount: { value: traces.length },
    metadata: { value: metadata },
    dispose: { value: dispose },
    [Symbol.dispose]: { value: dispose },
  });
  registry.register(f, ids, f);
  return options.returnMetadata === true ? [f, metadata] : f;
}

/** @internal Live engine tapes (for leak tests). */
export function liveCompiledTapes(): number {
  return lib.mlxb_compile_live();
}

