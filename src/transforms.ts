// Function transforms: vjp, jvp, grad, valueAndGrad. The function runs on tracers (identity
// nodes over the inputs, made while the engine is tracing); the engine then walks the graph
// the function built and applies each primitive's vjp rule (engine/grad.zig). Rules are built
// from ordinary ops, so transforms compose: grad(grad(f)), jvp of a vjp.
//
// Arguments and results may be trees: nested JS arrays and plain objects of mx.Array. Other
// leaves (numbers, strings, null...) pass through untouched and get no gradient.
import { checkHandle, checkStatus, heldForEngine, holdForEngine, lib, setCustomVjpHandler, setCustomVmapHandler } from "../ffi/lib";
import { MxArray, takeResults } from "./array";
import { bool, float32, type Dtype } from "./dtype";
import { streamArg } from "./device";
import { zeros } from "./creation";
import { MlxError } from "./errors";
import { tidy } from "./memory";
import { add, multiply } from "./ops/elementwise";
import { sum } from "./ops/reduce";

/** A tree of arrays: an array, or JS arrays and plain objects of trees; other leaves pass through. */
export type Tree = MxArray | readonly Tree[] | { readonly [key: string]: Tree } | number | string | boolean | null | undefined;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || v instanceof MxArray || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** The arrays of a tree, depth first (object keys in insertion order). */
export function treeFlatten(tree: unknown, out: MxArray[] = []): MxArray[] {
  if (tree instanceof MxArray) out.push(tree);
  else if (Array.isArray(tree)) for (const t of tree) treeFlatten(t, out);
  else if (isPlainObject(tree)) for (const k of Object.keys(tree)) treeFlatten(tree[k], out);
  return out;
}

/** The tree with its arrays replaced, in treeFlatten order, by `leaves`. */
export function treeUnflatten<T>(tree: T, leaves: readonly MxArray[]): T {
  let i = 0;
  const walk = (t: unknown): unknown => {
    if (t instanceof MxArray) return leaves[i++];
    if (Array.isArray(t)) return t.map(walk);
    if (isPlainObject(t)) return Object.fromEntries(Object.keys(t).map((k) => [k, walk(t[k])]));
    return t;
  };
  return walk(tree) as T;
}

/**
 * Run `fn` with tracers for the arrays of `args`; returns the tracers and fn's result.
 * Containers (JS arrays, plain objects) are filled with the tracers in place and get their
 * arrays back afterwards, as MLX does with Python lists and dicts: an assignment the function
 * makes into an argument (`params[1] = ...`) is seen by the caller, and the other entries keep
 * their original arrays. Frozen containers are copied instead.
 */
function trace<R>(args: readonly unknown[], fn: (...a: never[]) => R): { tracers: MxArray[]; result: R } {
  const tracers = treeFlatten(args).map((a) => new MxArray(checkHandle(lib.mlxb_tracer(a.handle("vjp"), -1))));
  const undo: (() => void)[] = [];
  let next = 0;
  const fill = (t: unknown, copy: boolean): unknown => {
    if (t instanceof MxArray) return tracers[next++];
    if (!Array.isArray(t) && !isPlainObject(t)) return t;
    if (copy || Object.isFrozen(t)) {
      if (Array.isArray(t)) return t.map((v) => fill(v, true));
      return Object.fromEntries(Object.keys(t).map((k) => [k, fill(t[k], true)]));
    }
    const c = t as Record<string, unknown>;
    for (const k of Array.isArray(t) ? t.keys() : Object.keys(t)) {
      const old = c[k];
      const now = fill(old, false);
      if (now === old) continue;
      c[k] = now;
      undo.push(() => {
        if (c[k] === now) c[k] = old;
      });
    }
    return t;
  };
  try {
    const traced = args.map((a) => fill(a, false));
    const result = (fn as (...a: unknown[]) => R)(...traced);
    // The result may hold a filled container: copy its structure before the containers are restored.
    return { tracers, result: treeUnflatten(result, treeFlatten(result)) };
  } finally {
    for (let k = undo.length - 1; k >= 0; k--) undo[k]!();
  }
}

/** The engine's vjp of traced outputs with respect to the tracers. */
function engineVjp(outputs: readonly MxArray[], tracers: readonly MxArray[], cotangents: readonly MxArray[]): MxArray[] {
  const hs = (xs: readonly MxArray[]) => Uint32Array.from(xs.length > 0 ? xs.map((x) => x.handle("vjp")) : [0]);
  let n: number;
  try {
    n = checkStatus(lib.mlxb_vjp(hs(outputs), outputs.length, hs(tracers), tracers.length, hs(cotangents), streamArg(undefined)));
  } catch (e) {
    rethrowPending(e);
  }
  return takeResults(n);
}

/** Run `body` while the engine traces (tracers keep their graph when evaluated). */
function tracing<T>(body: () => T): T {
  lib.mlxb_trace_begin();
  try {
    return body();
  } finally {
    lib.mlxb_trace_end();
  }
}

/**
 * The vector-Jacobian product: `fn`'s outputs at `primals`, and the cotangents of the primals
 * for the given output cotangents (one per output array). Primals and results may be trees.
 * @example const [[y], [dx]] = mx.vjp((x) => mx.sin(x), [x], [mx.onesLike(x)]);
 */
export function vjp<P extends readonly unknown[]>(fn: (...args: P) => unknown, primals: P, cotangents: readonly unknown[]): [MxArray[], MxArray[]] {
  return tracing(() => {
    const { tracers, result } = trace(primals, fn as never);
    const outs = treeFlatten(result);
    const cots = treeFlatten(cotangents);
    if (cots.length !== outs.length)
      throw new MlxError(`[vjp] Number of outputs to compute gradients for (${outs.length}) does not match number of cotangents (${cots.length}).`, 1);
    return [outs, engineVjp(outs, tracers, cots)];
  });
}

/**
 * The Jacobian-vector product: `fn`'s outputs at `primals`, and their tangents for the given
 * input tangents (one per primal array). Computed as the vjp of the (linear) vjp map.
 * @example const [[y], [dy]] = mx.jvp((x) => mx.sin(x), [x], [mx.onesLike(x)]);
 */
export function jvp<P extends readonly unknown[]>(fn: (...args: P) => unknown, primals: P, tangents: readonly unknown[]): [MxArray[], MxArray[]] {
  const prim = treeFlatten(primals);
  const tans = treeFlatten(tangents);
  if (tans.length !== prim.length) throw new MlxError(`[jvp] Number of inputs (${prim.length}) does not match number of tangents (${tans.length}).`, 1);
  prim.forEach((p, i) => {
    const t = tans[i]!;
    if (p.shape.length !== t.shape.length || p.shape.some((d, k) => d !== t.shape[k])) throw new MlxError("[jvp] Input shape does not match shape of tangent.", 1);
  });
  return tracing(() => {
    const { tracers, result } = trace(primals, fn as never);
    const outs = treeFlatten(result);
    // u -> J^T u is linear; its vjp with cotangent t is J t.
    const us = outs.map((o) => new MxArray(checkHandle(lib.mlxb_tracer(zerosHandle(o), -1))));
    // Custom functions met by this walk use their jvp rule (or their own body), not their vjp.
    // A rule's value at zero tangents (a constant term, which the transpose cannot carry) comes
    // back as <cotangent at that call, constant>: linear in u, its vjp adds the constant carried
    // forward to the outputs.
    jvpDepth++;
    jvpConstants.push([]);
    let jt: MxArray[];
    let constants: MxArray[];
    try {
      jt = engineVjp(outs, tracers, us);
    } finally {
      jvpDepth--;
      constants = jvpConstants.pop()!;
    }
    let jvps: MxArray[];
    if (constants.length === 0) jvps = engineVjp(jt, us, tans);
    else {
      const total = constants.reduce((s, c) => add(s, c));
      const one = new MxArray(checkHandle(lib.mlxb_array_scalar(1, total.dtype.value, -1)));
      jvps = engineVjp([...jt, total], us, [...tans, one]);
    }
    // A bool output (a comparison) has a zero tangent; MLX gives it the input tangent's dtype.
    const tdtype = tans[0]?.dtype ?? float32;
    return [outs, jvps.map((t, i) => {
      if (outs[i]!.dtype !== bool) return t;
      t.dispose();
      return new MxArray(zerosHandle(outs[i]!, tdtype));
    })];
  });
}

function zerosHandle(like: MxArray, dtype: Dtype = like.dtype): number {
  const z = lib.mlxb_array_scalar(0, dtype.value, -1);
  try {
    return checkHandle(lib.mlxb_broadcast_to(checkHandle(z), Int32Array.from(like.shape.length > 0 ? like.shape : [0]), like.shape.length, -1));
  } finally {
    lib.mlxb_array_free(z);
  }
}

/** Options of grad and valueAndGrad. */
export interface GradOptions {
  /** Positional arguments to differentiate (default 0 unless argnames is given). */
  argnums?: number | readonly number[];
  /** Keys of a trailing options object (the last argument, a plain object) to differentiate. */
  argnames?: string | readonly string[];
}

function scalarLoss(v: unknown): MxArray {
  const loss = Array.isArray(v) ? v[0] : v;
  if (!(loss instanceof MxArray)) {
    const got = Array.isArray(v) ? "list" : v === null ? "null" : typeof v === "number" ? "float" : typeof v;
    throw new MlxError(`[grad] The return value of the function whose gradient we want to compute should be a scalar array; but ${got} was returned.`, 1);
  }
  if (loss.size !== 1 || loss.ndim !== 0) {
    throw new MlxError(`[grad] The return value of the function whose gradient we want to compute should be a scalar array; but an array of shape (${loss.shape.join(",")}) was returned.`, 1);
  }
  return loss;
}

/**
 * `fn`'s value and its gradient with respect to the selected arguments. `fn` returns a scalar
 * array, or an array `[loss, ...aux]` whose first element is the scalar differentiated.
 * The gradient is the tree of the selected positional argument when one is selected, an array of
 * trees when several are, and with `argnames`, `[positional, { name: gradient }]` (positional is
 * null when `argnums` is empty). Argument indices are non-negative and distinct, as in MLX.
 * @example const [loss, g] = mx.valueAndGrad((w) => mx.sum(mx.square(w)))(w);
 */
export function valueAndGrad<A extends unknown[], R>(fn: (...args: A) => R, options: GradOptions = {}): (...args: A) => [R, unknown] {
  return makeValueAndGrad(fn, options, "value_and_grad");
}

function makeValueAndGrad<A extends unknown[], R>(fn: (...args: A) => R, options: GradOptions, op: string): (...args: A) => [R, unknown] {
  const names = options.argnames === undefined ? [] : typeof options.argnames === "string" ? [options.argnames] : [...options.argnames];
  const argnums = options.argnums ?? (names.length > 0 ? [] : 0);
  const nums = typeof argnums === "number" ? [argnums] : [...argnums];
  // Checked when the transform is made, as MLX does.
  for (const [j, i] of nums.entries()) {
    if (!Number.isInteger(i)) throw new MlxError(`[${op}] Argument indices must be integers, got ${i}.`, 1);
    if (i < 0) throw new MlxError(`[${op}] Can't compute the gradient of negative argument index ${i}`, 1);
    if (nums.indexOf(i) !== j) throw new MlxError(`[${op}] Duplicate argument index ${i} is not allowed.`, 1);
  }
  if (nums.length === 0 && names.length === 0) throw new MlxError(`[${op}] Gradient wrt no argument requested`, 1);
  return (...args: A): [R, unknown] => {
    const n = args.length;
    const kw = names.length > 0 ? args[n - 1] : undefined;
    if (names.length > 0 && !isPlainObject(kw)) throw new MlxError(`[${op}] argnames needs a trailing options object as the last argument.`, 1);
    const positional = names.length > 0 ? n - 1 : n;
    const sel = nums.map((i) => {
      if (i >= positional)
        throw new MlxError(`[${op}] Can't compute the gradient of argument index ${i} because the function is called with only ${positional} positional arguments.`, 1);
      return i;
    });
    for (const name of names) if (!(name in (kw as object))) throw new MlxError(`[${op}] Can't compute the gradient of argument ${name} because the function was not called with it.`, 1);
    // The differentiated parts as one list of trees: selected positionals, then named values.
    const diffParts: unknown[] = [...sel.map((i) => args[i]), ...names.map((k) => (kw as Record<string, unknown>)[k])];
    return tracing((): [R, unknown] => {
      const { tracers, result } = trace<R>(diffParts, ((...traced: unknown[]) => {
        const call = [...args] as unknown[];
        sel.forEach((i, j) => (call[i] = traced[j]));
        if (names.length > 0) {
          const k2 = { ...(kw as Record<string, unknown>) };
          names.forEach((name, j) => (k2[name] = traced[sel.length + j]));
          call[n - 1] = k2;
        }
        return (fn as (...a: unknown[]) => R)(...call);
      }) as never);
      const loss = scalarLoss(result);
      const one = new MxArray(checkHandle(lib.mlxb_array_scalar(1, loss.dtype.value, -1)));
      let grads: MxArray[];
      try {
        grads = engineVjp([loss], tracers, [one]);
      } finally {
        one.dispose();
      }
      const trees = treeUnflatten(diffParts, grads);
      const pos = trees.slice(0, sel.length);
      // As MLX: one selected argument gives its gradient itself (also for a one-element list),
      // none gives null.
      const posOut = pos.length === 0 ? null : pos.length === 1 ? pos[0] : pos;
      if (names.length === 0) return [result, posOut];
      const named = Object.fromEntries(names.map((k, j) => [k, trees[sel.length + j]]));
      return [result, [posOut, named]];
    });
  };
}

/**
 * The gradient of `fn` (which returns a scalar array) with respect to the selected arguments;
 * see valueAndGrad for the options and the result's structure.
 * @example const dfdx = mx.grad((x) => mx.sum(mx.sin(x)))(x); // cos(x)
 */
export function grad<A extends unknown[]>(fn: (...args: A) => unknown, options: GradOptions = {}): (...args: A) => unknown {
  const vg = makeValueAndGrad(fn, options, "grad");
  return (...args: A) => {
    const [value, g] = vg(...args);
    if (Array.isArray(value)) throw new MlxError("[grad] The return value of the function whose gradient we want to compute should be a scalar array; but list was returned.", 1);
    return g;
  };
}

// ---------------------------------------------------------------------------------------------
// Custom functions and checkpoint

type VjpRule = (primals: unknown[], cotangents: unknown, outputs: unknown) => unknown;
type JvpRule = (primals: unknown[], tangents: unknown[]) => unknown;
type VmapRule = (inputs: unknown[], axes: unknown[]) => [unknown, AxisTree];

interface CallRecord {
  /** The function's arguments (trees, arrays as passed) and outputs (trees), for structure. */
  args: unknown[];
  out: unknown;
  /** The vjp rule (for grad/vjp) and the one used while a jvp is computed. */
  vjp: VjpRule;
  jvpVjp: VjpRule;
  /** The vmap rule set when the engine asks (null: vmap the body). */
  vmap: () => VmapRule | null;
}

/** Nesting depth of jvp walks: there, custom functions use their jvp rule or their body. */
let jvpDepth = 0;
/** Per jvp walk (innermost last): <cotangent, rule at zero tangents> of each custom call met. */
const jvpConstants: MxArray[][] = [];

/** The exception a host rule raised, rethrown at the transform's call site. */
let pendingError: unknown = null;


function runVjpRule(token: number, nOut: number): number {
  const rec = heldForEngine(token) as CallRecord | undefined;
  const nIn = rec === undefined ? 0 : treeFlatten(rec.args).length;
  // Take every result first: a nested transform in the rule reuses the list.
  const cots = takeResults(nOut, 0);
  const primals = takeResults(nIn, nOut);
  const values = takeResults(nOut, nOut + nIn);
  try {
    if (rec === undefined) throw new MlxError("[custom_function] The call's rule is gone.", 1);
    const rule = jvpDepth > 0 ? rec.jvpVjp : rec.vjp;
    const grads = rule(treeUnflatten(rec.args, primals), treeUnflatten(rec.out, cots), treeUnflatten(rec.out, values));
    const flat = treeFlatten(Array.isArray(grads) ? grads : [grads]);
    for (const g of flat) checkStatus(lib.mlxb_custom_return(g.handle("custom_function")));
    return 0;
  } catch (e) {
    pendingError = e;
    return 1;
  } finally {
    for (const a of [...cots, ...primals, ...values]) a.dispose();
  }
}

function runVmapRule(token: number, nOut: number, batch: number, mapped: number): number {
  const rec = heldForEngine(token) as CallRecord | undefined;
  const rule = rec?.vmap() ?? null;
  if (rec === undefined || rule === null) return 2;
  const nIn = treeFlatten(rec.args).length;
  const inputs = takeResults(nIn, 0);
  const made: MxArray[] = [];
  try {
    const axes = inputs.map((_, i) => ((mapped >>> i) & 1 ? 0 : null));
    const [outs, outAxes] = rule(treeUnflatten(rec.args, inputs), treeUnflatten(rec.args, axes as unknown as MxArray[]));
    const flat = treeFlatten(outs);
    const ax: (number | null)[] = [];
    leafAxes(outAxes, outs, ax);
    if (flat.length !== nOut) throw new MlxError(`[custom_function] The vmap rule returned ${flat.length} outputs for a function with ${nOut}.`, 1);
    flat.forEach((o, k) => {
      const a = ax[k] ?? null;
      let h: number;
      if (a === null) {
        // Not mapped: the same value for every batch element.
        const one = checkHandle(lib.mlxb_expand_dims(o.handle("custom_function"), Int32Array.from([0]), 1, -1));
        made.push(new MxArray(one));
        h = checkHandle(lib.mlxb_broadcast_to(one, Int32Array.from([batch, ...o.shape]), o.shape.length + 1, -1));
      } else {
        if (!Number.isInteger(a) || a < -o.ndim || a >= o.ndim)
          throw new MlxError(`[custom_function] The vmap rule returned axis ${a} for an output with ${o.ndim} dimensions.`, 1);
        h = moveaxisHandle(o.handle("custom_function"), a, 0);
      }
      const moved = new MxArray(h);
      made.push(moved);
      checkStatus(lib.mlxb_custom_return(moved.handle("custom_function")));
    });
    return 0;
  } catch (e) {
    pendingError = e;
    return 1;
  } finally {
    for (const a of [...inputs, ...made]) a.dispose();
  }
}

/** Rethrow a host rule's own exception in place of the engine's report of it. */
function rethrowPending(e: unknown): never {
  if (pendingError !== null) {
    const p = pendingError;
    pendingError = null;
    throw p;
  }
  throw e;
}

/** A function with custom transform rules; call it like the function it wraps. */
export interface CustomFunction<A extends unknown[], R> {
  (...args: A): R;
  /** Set the vjp rule: `(primals, cotangents, outputs) => cotangents of the primals` (one tree per argument, as a list). Returns the function. */
  vjp(rule: (primals: A, cotangents: R, outputs: R) => unknown): CustomFunction<A, R>;
  /**
   * Set the jvp rule: `(primals, tangents) => tangents of the outputs` (primals and tangents as
   * lists, one tree per argument; the result shaped like the outputs). mlx-bun computes a jvp as
   * the transpose of a vjp, so the rule is used as its value at zero tangents (a constant term,
   * carried forward as MLX does) plus its linear part; a rule nonlinear in the tangents is
   * linearized at zero. Returns the function.
   */
  jvp(rule: (primals: A, tangents: A) => R): CustomFunction<A, R>;
  /**
   * Set the vmap rule: `(inputs, axes) => [outputs, outAxes]`: the inputs as a list (one tree per
   * argument) with the mapped axis of each array in `axes` (a number, or null when not mapped);
   * it returns the batched outputs and where their batch axis is (a tree prefix, null: not
   * mapped). Returns the function.
   */
  vmap(rule: (inputs: A, axes: unknown[]) => [R, AxisTree]): CustomFunction<A, R>;
}

/**
 * `fn` with a vjp rule of your own (`f.vjp((primals, cotangents, outputs) => [...])`);
 * without one, its own gradient. Under a transform, `fn` runs on inputs the transform does not
 * see through, and the rule gives the gradients. An exception in the rule surfaces at the
 * transform's call site.
 * @example
 * const f = mx.customFunction((x: mx.Array) => mx.exp(x));
 * f.vjp(([x], dy, y) => [mx.multiply(dy, y)]);
 */
export function customFunction<A extends unknown[], R>(fn: (...args: A) => R): CustomFunction<A, R> {
  setCustomVjpHandler(runVjpRule);
  setCustomVmapHandler(runVmapRule);
  const own: VjpRule = (primals, cotangents) => {
    const [, g] = vjp(fn as never, primals as never, treeFlatten(cotangents));
    return treeUnflatten(primals, g);
  };
  let rule: VjpRule = own;
  // Without a jvp rule a jvp differentiates the body, as MLX does; with one, the walk needs its
  // transpose: the vjp of the (linear) map tangents -> rule(primals, tangents).
  let jvpRule: JvpRule | null = null;
  let vmapRule: VmapRule | null = null;
  const jvpVjp: VjpRule = (primals, cotangents) => {
    if (jvpRule === null) return own(primals, cotangents, undefined);
    const r = jvpRule;
    const flat = treeFlatten(primals);
    const zeros = flat.map((x) => new MxArray(zerosHandle(x)));
    try {
      const [values, g] = vjp((...ts: MxArray[]) => r(primals, treeUnflatten(primals, ts) as unknown[]), zeros as never, treeFlatten(cotangents));
      // values = the rule at zero tangents; zero when the rule is linear, as it should be.
      const cots = treeFlatten(cotangents);
      const frame = jvpConstants[jvpConstants.length - 1];
      if (frame !== undefined) values.forEach((v, i) => frame.push(sum(multiply(cots[i]!, v))));
      return treeUnflatten(primals, g);
    } finally {
      for (const z of zeros) z.dispose();
    }
  };
  const f = ((...args: A): R => {
    if (!lib.mlxb_is_tracing()) return fn(...args);
    const flat = treeFlatten(args);
    const blocked = flat.map((a) => new MxArray(checkHandle(lib.mlxb_stop_gradient(a.handle("custom_function"), -1))));
    let out: R;
    try {
      out = fn(...treeUnflatten(args, blocked));
    } finally {
      for (const b of blocked) b.dispose();
    }
    const outs = treeFlatten(out);
    const token = lib.mlxb_external_new_token();
    holdForEngine(token, { args, out, vjp: rule, jvpVjp, vmap: () => vmapRule } satisfies CallRecord);
    const hs = (xs: readonly MxArray[]) => Uint32Array.from(xs.length > 0 ? xs.map((x) => x.handle("custom_function")) : [0]);
    const n = checkStatus(lib.mlxb_custom_outputs(token, hs(outs), outs.length, hs(flat), flat.length, -1));
    const wrapped = takeResults(n, 0);
    return treeUnflatten(out, wrapped);
  }) as CustomFunction<A, R>;
  f.vjp = (r) => {
    rule = r as VjpRule;
    return f;
  };
  f.jvp = (r) => {
    jvpRule = r as JvpRule;
    return f;
  };
  f.vmap = (r) => {
    vmapRule = r as VmapRule;
    return f;
  };
  return f;
}

/**
 * `fn`, but under a transform its intermediate values are not kept: the backward pass runs
 * `fn` again (trading compute for memory).
 * @example const block = mx.checkpoint((x: mx.Array) => mx.tanh(mx.matmul(x, w)));
 */
export function checkpoint<A extends unknown[], R>(fn: (...args: A) => R): CustomFunction<A, R> {
  // fn's intermediates are not kept (the backward pass computes them again), so both runs
  // release the arrays they made as soon as they end: JS handles would otherwise hold them
  // (and their buffers) until the garbage collector or an enclosing tidy, and checkpoint would
  // save nothing.
  const body = (...args: A): R => tidy(() => fn(...args));
  return customFunction(body).vjp((primals, cotangents) =>
    tidy(() => {
      const [, g] = vjp(body as never, primals as never, treeFlatten(cotangents));
      return treeUnflatten(primals, g);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// vmap

/** Axes for vmap: a number (or null: not mapped) for every array, or a tree prefix of the arguments / results. */
export type AxisTree = number | null | readonly AxisTree[] | { readonly [key: string]: AxisTree };

/** The axis of every array leaf of `tree`, from a prefix tree of axes. */
function leafAxes(axes: AxisTree | undefined, tree: unknown, out: (number | null)[]): void {
  if (axes === undefined || axes === null || typeof axes === "number") {
    const ax = axes === undefined ? 0 : axes;
    for (let i = treeFlatten(tree).length; i > 0; i--) out.push(ax);
    return;
  }
  // MLX's messages when the axes are not a prefix of the values' tree.
  const notPrefix = () => new MlxError("[tree_map] Additional input tree is not a valid prefix of the first tree.", 1);
  if (Array.isArray(axes)) {
    if (!Array.isArray(tree) || tree.length !== axes.length) throw notPrefix();
    axes.forEach((a, i) => leafAxes(a as AxisTree, tree[i], out));
    return;
  }
  if (!isPlainObject(tree)) throw notPrefix();
  const keys = Object.keys(tree);
  const given = Object.keys(axes);
  if (given.length !== keys.length) throw notPrefix();
  for (const k of keys) {
    if (!Object.hasOwn(axes, k)) throw new MlxError("[tree_visit] Tree is not a valid prefix tree of the first tree.", 1);
    leafAxes((axes as Record<string, AxisTree>)[k], tree[k], out);
  }
}

function moveaxisHandle(h: number, from: number, to: number): number {
  return checkHandle(lib.mlxb_moveaxis(h, from, to, -1));
}

/**
 * `fn` mapped over an axis of its inputs: `inAxes` says which axis of each argument (null: not
 * mapped; a tree prefix of the arguments), `outAxes` where the mapped axis goes in each result.
 * The function is traced once on one slice and its graph rebuilt on the whole batch.
 * @example mx.vmap((x: mx.Array) => mx.sum(x))(mx.ones([3, 4])) // [4, 4, 4]
 */
export function vmap<A extends unknown[], R>(fn: (...args: A) => R, options: { inAxes?: AxisTree; outAxes?: AxisTree } = {}): (...args: A) => R {
  return (...args: A): R => {
    const leaves = treeFlatten(args);
    const axes: (number | null)[] = [];
    leafAxes(options.inAxes === undefined ? 0 : options.inAxes, args, axes);
    let b = -1;
    const batched: MxArray[] = [];
    const holders: MxArray[] = [];
    const replaced: MxArray[] = [];
    const temps: MxArray[] = [];
    try {
      return tracing((): R => {
        leaves.forEach((leaf, i) => {
          const ax0 = axes[i]!;
          if (ax0 === null) {
            replaced.push(leaf);
            return;
          }
          const nd = leaf.ndim;
          const ax = ax0 < 0 ? ax0 + nd : ax0;
          if (!Number.isInteger(ax0) || ax < 0 || ax >= nd) throw new MlxError(`[vmap] Invalid vectorization axis ${ax0} for array with shape (${leaf.shape.join(",")})`, 1);
          const n = leaf.shape[ax]!;
          if (b >= 0 && n !== b) throw new MlxError(`[vmap] Inconsistent axis sizes: ${b} and ${n}.`, 1);
          b = n;
          const bx = new MxArray(moveaxisHandle(leaf.handle("vmap"), ax, 0));
          batched.push(bx);
          // The slice the function is traced on: the first, or for an empty batch one of zeros.
          const slice0 = n > 0 ? bx.index(0) : zeros(bx.shape.slice(1), bx.dtype);
          temps.push(slice0);
          const ph = new MxArray(checkHandle(lib.mlxb_tracer(slice0.handle("vmap"), -1)));
          holders.push(ph);
          replaced.push(ph);
        });
        if (b < 0) throw new MlxError("[vmap] At least one argument must be mapped (in_axes are all null).", 1);
        const out = fn(...(treeUnflatten(args, replaced) as A));
        const outs = treeFlatten(out);
        const hs = (xs: readonly MxArray[]) => Uint32Array.from(xs.length > 0 ? xs.map((x) => x.handle("vmap")) : [0]);
        let n: number;
        try {
          n = checkStatus(lib.mlxb_vmap(hs(outs), outs.length, hs(holders), holders.length, hs(batched), b, -1));
        } catch (e) {
          rethrowPending(e); // a custom vmap rule's own exception
        }
        const res = takeResults(n, 0);
        const outAxes: (number | null)[] = [];
        leafAxes(options.outAxes === undefined ? 0 : options.outAxes, out, outAxes);
        const moved = res.map((r, k) => {
          const ax0 = outAxes[k] ?? 0;
          const nd = r.ndim;
          const ax = ax0 < 0 ? ax0 + nd : ax0;
          if (ax < 0 || ax >= nd) {
            const shape = r.shape.slice(1);
            r.dispose();
            throw new MlxError(`[vmap] Invalid output vectorization axis ${ax0} for array with shape (${shape.join(",")})`, 1);
          }
          if (ax === 0) return r;
          const m = new MxArray(moveaxisHandle(r.handle("vmap"), 0, ax));
          r.dispose();
          return m;
        });
        return treeUnflatten(out, moved);
      });
    } finally {
      for (const x of [...batched, ...holders, ...temps]) x.dispose();
    }
  };
}
