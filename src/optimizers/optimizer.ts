// The optimizer base class (MLX's mlx.optimizers.Optimizer) and MultiOptimizer. The state is a
// plain tree with MLX's own keys ("step", "learning_rate", then one object of per-parameter
// state, e.g. { m, v }, at each parameter's place), so `mx.utils`-style flattening gives the
// same names MLX saves.
import { array, MxArray } from "../array";
import { float32, uint64 } from "../dtype";
import { MlxError } from "../errors";
import { keep, tidy } from "../memory";
import { add } from "../ops/elementwise";
import { isPlainObject, treeAssign, treeFlattenPaths, treeMap, treeMerge, treeUnflatten } from "./tree";

/** A schedule: the value of a hyperparameter at an optimizer step (a uint64 scalar array). */
export type Schedule = (step: MxArray) => MxArray;

/** A learning rate: a number, a scalar array, or a schedule. */
export type LearningRate = number | MxArray | Schedule;

/** The optimizer state: a tree of arrays and objects. */
export type OptimizerState = { [key: string]: unknown };

/** Per-parameter state, e.g. `{ m, v }` for Adam. */
export type ParamState = { [key: string]: MxArray };

/** What `update` accepts as a model: anything with MLX Module's two methods. */
export interface Updatable {
  trainableParameters(): unknown;
  update(parameters: unknown): unknown;
}

function isUpdatable(v: unknown): v is Updatable {
  return typeof v === "object" && v !== null && typeof (v as Updatable).trainableParameters === "function" && typeof (v as Updatable).update === "function";
}

/** State entries given to some optimizer through `state =`: shared, never released by releaseReplaced. */
const sharedState = new WeakSet<MxArray>();

/** The mx.Array leaves of a tree (arrays and plain objects). */
function treeArrayLeaves(tree: unknown): MxArray[] {
  return treeFlattenPaths(tree).flatMap(([, v]) => (v instanceof MxArray ? [v] : []));
}

/** The leaves of `params` at the paths of `gradients`. */
function replacedLeaves(gradients: unknown, params: unknown): MxArray[] {
  const out: MxArray[] = [];
  treeMap((_g, [p]) => {
    if (p instanceof MxArray) out.push(p);
    return null;
  }, gradients, [params]);
  return out;
}

function initNode(params: unknown, state: unknown, single: (p: MxArray, s: ParamState) => void): unknown {
  if (Array.isArray(params)) {
    const s = Array.isArray(state) ? [...state] : [];
    for (let i = 0; i < params.length; i++) s[i] = initNode(params[i], s[i], single);
    return s;
  }
  if (isPlainObject(params)) {
    const s = isPlainObject(state) ? state : {};
    for (const k of Object.keys(params)) s[k] = initNode(params[k], s[k], single);
    return s;
  }
  const s = (isPlainObject(state) ? state : {}) as ParamState;
  if (Object.keys(s).length === 0) {
    if (!(params instanceof MxArray)) throw new MlxError(`[optimizer] Expected an array as a parameter, got ${params === null ? "null" : typeof params}.`, 1);
    single(params, s);
  }
  return s;
}

/**
 * The base class of every optimizer: applies a per-parameter update (`applySingle`) over a tree
 * of parameters. Subclasses implement `initSingle` and `applySingle`.
 */
export abstract class Optimizer {
  protected _initialized = false;
  protected _state: OptimizerState;
  protected _schedulers: Map<string, Schedule>;
  /** State entries this optimizer made while releaseReplaced was on (not those of a state given through `state =`). */
  private _owned = new WeakSet<MxArray>();

  /**
   * Release, at once, the arrays an update replaces instead of leaving them to the garbage
   * collector (default false): the state entries this optimizer made while it was on (Adam's
   * old `m`, `v`, the old `step`...) and, in `update()`, the old parameters. A training loop that never disposes
   * then stays at constant memory and its updates can run in place (the engine reuses a buffer
   * nothing else holds). Only turn it on when nothing else keeps the old arrays: using one
   * afterwards fails with "used after it was disposed" (MLX would still have its value). Arrays
   * given through `state =` are never released by it. See bench/REPORT-fast.md (optimizer memory).
   */
  releaseReplaced = false;

  constructor(schedulers?: Record<string, Schedule>) {
    this._state = { step: keep(array(0, uint64)) };
    this._schedulers = new Map(Object.entries(schedulers ?? {}));
  }

  /**
   * Apply the gradients to a model and update it. `model` is an object with
   * `trainableParameters()` and `update(tree)` (an `nn.Module`), or a plain parameter tree
   * (objects and lists of arrays), whose leaves are replaced in place.
   */
  update(model: Updatable | object, gradients: unknown): void {
    const params = isUpdatable(model) ? model.trainableParameters() : model;
    // The parameters being replaced (those the gradients name), to release when asked to.
    const old = this.releaseReplaced ? replacedLeaves(gradients, params) : [];
    const next = keep(this.applyGradients(gradients, params));
    if (isUpdatable(model)) model.update(next);
    else treeAssign(model, next);
    if (old.length > 0) {
      const still = new Set(treeArrayLeaves(isUpdatable(model) ? model.trainableParameters() : model));
      for (const a of old) if (!still.has(a) && !a.disposed) a.dispose();
    }
  }

  /**
   * Initialize the state for a tree of parameters (optional: the first update does it). Entries
   * already in the state (e.g. a restored state) are kept.
   */
  init(parameters: unknown): void {
    const before = this.releaseReplaced ? new Set(treeArrayLeaves(this._state)) : null;
    this._state = keep(initNode(parameters, this._state, (p, s) => this.initSingle(p, s)) as OptimizerState);
    if (before) for (const a of treeArrayLeaves(this._state)) if (!before.has(a)) this._owned.add(a);
    this._initialized = true;
  }

  /** Initialize the state of one parameter (fills `state`). */
  abstract initSingle(parameter: MxArray, state: ParamState): void;

  /**
   * The updated parameters: a tree shaped as `gradients` (`parameters` may hold more). Advances
   * the step and the scheduled hyperparameters.
   */
  applyGradients(gradients: unknown, parameters: unknown): unknown {
    // Temporaries are released at once; the state is kept (it outlives any enclosing mx.tidy).
    return tidy(() => {
      if (!this._initialized) this.init(gradients);
      // Ownership is tracked only while releaseReplaced is on (no cost otherwise): entries made
      // before it was turned on are left to the GC.
      const release = this.releaseReplaced;
      const before = release ? treeArrayLeaves(this.state) : [];
      for (const [name, schedule] of this._schedulers) this.state[name] = schedule(this.step);
      this.state.step = add(this.step, 1);
      const state = this.state;
      const out = treeMap((g, [p, s]) => this.applySingle(g as MxArray, p as MxArray, s as ParamState), gradients, [parameters, state]);
      keep(state);
      if (release) {
        // Entries made by this call are the optimizer's own; the replaced ones it owned go.
        const now = new Set(treeArrayLeaves(state));
        const had = new Set(before);
        for (const a of now) if (!had.has(a)) this._owned.add(a);
        for (const a of before) if (!now.has(a) && this._owned.has(a) && !sharedState.has(a) && !a.disposed) a.dispose();
      }
      return out;
    });
  }

  /** The updated parameter; updates `state` in place. */
  abstract applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray;

  /** The state tree (step, hyperparameters, per-parameter state). Setting it restores a state. */
  get state(): OptimizerState {
    return this._state;
  }

  set state(state: OptimizerState) {
    this._initialized = false;
    this._state = state;
    // A state given from outside may be shared with its giver: never released by releaseReplaced.
    for (const a of treeArrayLeaves(state)) sharedState.add(a);
  }

  /** The number of updates so far (a uint64 scalar array). */
  get step(): MxArray {
    return this.state.step as MxArray;
  }

  /** The current learning rate (a scalar array). */
  get learningRate(): MxArray {
    return this.state.learning_rate as MxArray;
  }

  set learningRate(lr: number | MxArray) {
    this.state.learning_rate = keep(typeof lr === "number" ? array(lr, float32) : array(lr));
  }

  /** Put a hyperparameter in the state, on a schedule when it is a function. */
  protected maybeSchedule(name: string, param: number | MxArray | Schedule): void {
    let value: MxArray;
    if (typeof param === "function") {
      this._schedulers.set(name, param);
      value = param(this.step);
    } else {
      // A JS number is a Python float here (MLX would keep a Python int as int32).
      value = typeof param === "number" ? array(param, float32) : array(param);
    }
    this.state[name] = keep(value);
  }
}

/**
 * Routes parameters to several optimizers: `filters[i](path, gradient)` picks optimizer i (the
 * first that matches); the last optimizer takes the rest. Paths are dotted ("layers.0.weight").
 */
export class MultiOptimizer extends Optimizer {
  readonly optimizers: Optimizer[];
  readonly filters: ((path: string, gradient: MxArray) => boolean)[];

  constructor(optimizers: Optimizer[], filters: ((path: string, gradient: MxArray) => boolean)[] = []) {
    super();
    this._state = {};
    if (filters.length !== optimizers.length - 1) {
      throw new MlxError(`Given ${filters.length} filters but ${optimizers.length - 1} needed.`, 1);
    }
    this.optimizers = optimizers;
    this.filters = [...filters, () => true];
  }

  private split(gradients: unknown): unknown[] {
    if (this.optimizers.length === 1) return [gradients];
    const parts: [string, unknown][][] = this.optimizers.map(() => []);
    for (const [k, g] of treeFlattenPaths(gradients)) {
      for (let i = 0; i < this.filters.length; i++) {
        if (this.filters[i]!(k, g as MxArray)) {
          parts[i]!.push([k, g]);
          break;
        }
      }
    }
    return parts.map((p) => (p.length > 0 ? treeUnflatten(p) : {}));
  }

  override init(parameters: unknown): void {
    const parts = this.split(parameters);
    this.optimizers.forEach((o, i) => o.init(parts[i]));
  }

  initSingle(): void {
    throw new MlxError("[MultiOptimizer] initSingle is done by the wrapped optimizers.", 1);
  }

  applySingle(): MxArray {
    throw new MlxError("[MultiOptimizer] applySingle is done by the wrapped optimizers.", 1);
  }

  override applyGradients(gradients: unknown, parameters: unknown): unknown {
    let tree: unknown = {};
    // Each part is applied by its optimizer (its own mx.tidy and kept state).
    const parts = this.split(gradients);
    this.optimizers.forEach((o, i) => {
      o.releaseReplaced = this.releaseReplaced;
      tree = treeMerge(tree, o.applyGradients(parts[i], parameters));
    });
    return tree;
  }

  override get state(): OptimizerState {
    return { states: this.optimizers.map((o) => o.state) };
  }

  override set state(state: OptimizerState) {
    const states = state.states;
    if (!Array.isArray(states) || states.length !== this.optimizers.length) throw new MlxError("Invalid state provided", 1);
    this.optimizers.forEach((o, i) => {
      o.state = states[i] as OptimizerState;
    });
  }

  override get step(): MxArray {
    return this.optimizers[0]!.step;
  }

  override get learningRate(): MxArray {
    return this.optimizers[0]!.learningRate;
  }

  override set learningRate(lr: number | MxArray) {
    for (const o of this.optimizers) o.learningRate = lr;
  }
}
