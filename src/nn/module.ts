// nn.Module: MLX's base class of layers (mlx/nn/layers/base.py). MLX's Module is a Python dict
// of its arrays, lists, dicts and sub-modules; here they are the instance's own enumerable
// properties whose values are mx.Arrays, Modules, JS arrays or plain objects (other fields, such
// as numbers or functions, are configuration, as Python's non-dict attributes). Keys starting
// with "_" are not parameters. Python calls a layer as `layer(x)`; here it is `layer.forward(x)`.
import { MxArray } from "../array";
import { keep } from "../memory";
import type { Dtype } from "../dtype";
import { issubdtype } from "../ops/index";
import { floating } from "../ops/misc";
import { treeFlatten, treeUnflatten } from "../utils";
import { load as mxLoad, saveSafetensors, savez } from "../io";

type Filter = (module: Module, key: string, value: unknown) => boolean;
type MapFn = (value: any) => unknown;

function isDict(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** What Python's Module dict would hold: arrays, lists, dicts and modules. */
function isMember(v: unknown): boolean {
  return v instanceof MxArray || v instanceof Module || Array.isArray(v) || isDict(v);
}

/** The (key, value) items of a module as MLX's dict view of it. */
function items(m: Module): [string, unknown][] {
  return Object.keys(m)
    .filter((k) => isMember((m as unknown as Record<string, unknown>)[k]))
    .map((k) => [k, (m as unknown as Record<string, unknown>)[k]]);
}

function has(dst: unknown, k: string): boolean {
  if (dst instanceof Module) return isMember((dst as unknown as Record<string, unknown>)[k]);
  return isDict(dst) && Object.prototype.hasOwnProperty.call(dst, k);
}

function unwrap(model: Module, valueKey: string, value: unknown, filterFn: Filter, mapFn: MapFn, isLeafFn: Filter): unknown {
  if (isLeafFn(model, valueKey, value)) return mapFn(value);
  if (value instanceof Module) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of items(value)) if (filterFn(value, k, v)) out[k] = unwrap(value, k, v, filterFn, mapFn, isLeafFn);
    return out;
  }
  if (isDict(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const tk = `${valueKey}.${k}`;
      out[k] = filterFn(model, tk, v) ? unwrap(model, tk, v, filterFn, mapFn, isLeafFn) : {};
    }
    return out;
  }
  if (Array.isArray(value)) {
    return value.map((vi, i) => {
      const tk = `${valueKey}.${i}`;
      return filterFn(model, tk, vi) ? unwrap(model, tk, vi, filterFn, mapFn, isLeafFn) : {};
    });
  }
  throw new Error("Unexpected leaf found while traversing the module");
}

/** Python's tree_flatten over a tree where modules count as the dicts they are. */
function pyLeafCount(tree: unknown): number {
  if (tree instanceof Module) return items(tree).reduce((n, [, v]) => n + pyLeafCount(v), 0);
  if (Array.isArray(tree)) return tree.reduce((n: number, v) => n + pyLeafCount(v), 0);
  if (isDict(tree)) return Object.values(tree).reduce((n: number, v) => n + pyLeafCount(v), 0);
  return 1;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return "NoneType";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (typeof v === "string") return "str";
  if (typeof v === "boolean") return "bool";
  if (Array.isArray(v)) return "list";
  if (isDict(v)) return "dict";
  return (v as object).constructor?.name ?? typeof v;
}

const NO_GRAD = Symbol("noGrad");
const TRAINING = Symbol("training");

/** Keep arrays assigned to a module out of `mx.tidy` scopes (the module owns them now). */
let keepOff = 0;

/** @internal run `fn` with module assignments not keeping arrays (nn.valueAndGrad's tracers). */
export function withoutKeeping<T>(fn: () => T): T {
  keepOff++;
  try {
    return fn();
  } finally {
    keepOff--;
  }
}

function keepMember(v: unknown): void {
  if (keepOff > 0) return;
  if (v instanceof MxArray || Array.isArray(v) || isDict(v)) keep(v);
}

// Every array stored in a module (by assignment or class field) is kept: a model built or
// updated inside `mx.tidy` keeps its parameters when the scope closes.
const ownership: ProxyHandler<Module> = {
  set(target, key, value) {
    keepMember(value);
    return Reflect.set(target, key, value);
  },
  defineProperty(target, key, desc) {
    if ("value" in desc) keepMember(desc.value);
    return Reflect.defineProperty(target, key, desc);
  },
};

/** @internal A number as Python's repr of a float prints it (`1e-05`, `2.0`). */
export function pyFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const e = Math.floor(Math.log10(Math.abs(x)));
  if (e < -4 || e >= 16) {
    const [m, ex] = x.toExponential().split("e") as [string, string];
    const sign = ex.startsWith("-") ? "-" : "+";
    return `${m}e${sign}${ex.replace(/^[+-]/, "").padStart(2, "0")}`;
  }
  const s = String(x);
  return Number.isInteger(x) ? `${s}.0` : s;
}

/** @internal Python's bool repr. */
export const pyBool = (b: boolean): string => (b ? "True" : "False");

/** Options of freeze and unfreeze. */
export interface FreezeOptions {
  /** Also (un)freeze the sub-modules (default true). */
  recurse?: boolean;
  /** Only these parameter names (default: all of them). */
  keys?: string | readonly string[];
  /** Check that the keys exist (default false). */
  strict?: boolean;
}

/**
 * The base class of layers and models. Subclasses assign their parameters and sub-modules as
 * properties in the constructor and define `forward(...)`.
 * @example
 * class MLP extends nn.Module {
 *   inProj = new nn.Linear(2, 16);
 *   outProj = new nn.Linear(16, 1);
 *   forward(x: mx.Array) { return this.outProj.forward(nn.relu(this.inProj.forward(x))); }
 * }
 */
export class Module {
  declare [NO_GRAD]: Set<string>;
  declare [TRAINING]: boolean;

  constructor() {
    Object.defineProperty(this, NO_GRAD, { value: new Set<string>(), enumerable: false });
    Object.defineProperty(this, TRAINING, { value: true, enumerable: false, writable: true });
    // biome-ignore lint: a constructor returning a proxy is intended
    return new Proxy(this, ownership);
  }

  /** Whether the module is in training mode (see `train` and `eval`). */
  get training(): boolean {
    return this[TRAINING];
  }

  /** The module's state: the module itself (its properties are its state), as MLX. */
  get state(): this {
    return this;
  }

  /** The frozen parameter names of this module (MLX's `_no_grad`). */
  get noGrad(): ReadonlySet<string> {
    return this[NO_GRAD];
  }

  static isModule(value: unknown): value is Module {
    return value instanceof Module;
  }

  static validChildFilter(_module: Module, _key: string, value: unknown): boolean {
    return Array.isArray(value) || isDict(value) || value instanceof Module;
  }

  static validParameterFilter(_module: Module, key: string, value: unknown): boolean {
    return (Array.isArray(value) || isDict(value) || value instanceof Module || value instanceof MxArray) && !key.startsWith("_");
  }

  static trainableParameterFilter(module: Module, key: string, value: unknown): boolean {
    return Module.validParameterFilter(module, key, value) && !module[NO_GRAD].has(key);
  }

  /**
   * The module's members that pass `filterFn(module, key, value)`, recursively, as a tree of
   * plain objects and arrays, leaves mapped through `mapFn`.
   */
  filterAndMap(filterFn: Filter, mapFn?: MapFn, isLeafFn?: Filter): Record<string, any> {
    const map = mapFn ?? ((x: unknown) => x);
    const isLeaf = isLeafFn ?? ((_m: Module, _k: string, v: unknown) => !(v instanceof Module || Array.isArray(v) || isDict(v)));
    const out: Record<string, any> = {};
    for (const [k, v] of items(this)) if (filterFn(this, k, v)) out[k] = unwrap(this, k, v, filterFn, map, isLeaf);
    return out;
  }

  /** All parameters (arrays) of the module and its sub-modules as a tree. */
  parameters(): Record<string, any> {
    return this.filterAndMap(Module.validParameterFilter);
  }

  /** The parameters that are not frozen, as a tree. */
  trainableParameters(): Record<string, any> {
    return this.filterAndMap(Module.trainableParameterFilter);
  }

  /** The direct sub-modules, as a tree with modules as leaves. */
  children(): Record<string, any> {
    return this.filterAndMap(Module.validChildFilter, undefined, (_m, _k, v) => v instanceof Module);
  }

  /** The sub-modules that have no sub-modules, as a tree. */
  leafModules(): Record<string, any> {
    const isLeaf = (_m: Module, _k: string, v: unknown) => v instanceof Module && pyLeafCount(v.children()) === 0;
    return this.filterAndMap(Module.validChildFilter, undefined, isLeaf);
  }

  /**
   * Replace parameters by those in `parameters` (a full or partial tree as `parameters()`
   * returns). With `strict` (default) every key must exist and arrays be replaced by arrays.
   */
  update(parameters: unknown, strict = true): this {
    const apply = (dst: any, params: unknown): void => {
      if (isDict(params)) {
        for (const k of Object.keys(params)) {
          if (has(dst, k)) {
            const cur = dst[k];
            const nv = params[k];
            if (cur instanceof MxArray) {
              if (strict && !(nv instanceof MxArray)) throw new Error(`Received invalid type: ${typeName(nv)}.`);
              dst[k] = keepOff > 0 || dst instanceof Module ? nv : keep(nv);
            } else apply(cur, nv);
          } else if (strict) throw new Error(`Module does not have parameter named "${k}".`);
        }
      } else if (Array.isArray(params)) {
        for (let i = 0; i < params.length; i++) {
          if (i >= dst.length) {
            if (strict) throw new Error(`List index ${i} is out of bounds for destination of length ${dst.length}.`);
            continue;
          }
          const cur = dst[i];
          const nv = params[i];
          if (cur instanceof MxArray) {
            if (strict && !(nv instanceof MxArray)) throw new Error(`Received invalid type: ${typeName(nv)}.`);
            dst[i] = keepOff > 0 ? nv : keep(nv);
          } else apply(cur, nv);
        }
      } else if (strict) throw new Error(`Received invalid type: ${typeName(params)}.`);
    };
    apply(this, parameters);
    return this;
  }

  /** Map the parameters (those passing `filterFn`, default validParameterFilter) through `mapFn`. */
  apply(mapFn: (a: MxArray) => MxArray, filterFn?: Filter): this {
    this.update(this.filterAndMap(filterFn ?? Module.validParameterFilter, mapFn));
    return this;
  }

  /** Replace sub-modules by those in `modules` (a tree as `children()` returns). */
  updateModules(modules: unknown, strict = true): this {
    const upd = (dst: any, mods: unknown): void => {
      const one = (cur: unknown, nv: unknown, set: () => void) => {
        if (cur instanceof Module && nv instanceof Module) set();
        else if (Array.isArray(cur) || isDict(cur) || cur instanceof Module) upd(cur, nv);
        else if (strict && !(isDict(nv) && Object.keys(nv).length === 0)) throw new Error(`Received invalid type: ${typeName(nv)}.`);
      };
      if (isDict(mods)) {
        for (const k of Object.keys(mods)) {
          if (has(dst, k)) one(dst[k], mods[k], () => (dst[k] = mods[k]));
          else if (strict) throw new Error(`Module does not have sub-module named "${k}".`);
        }
      } else if (Array.isArray(mods)) {
        for (let i = 0; i < mods.length; i++) {
          if (i >= dst.length) {
            if (strict) throw new Error(`List index ${i} is out of bounds for destination of length ${dst.length}.`);
            continue;
          }
          one(dst[i], mods[i], () => (dst[i] = mods[i]));
        }
      } else if (strict) throw new Error(`Received invalid type: ${typeName(mods)}.`);
    };
    upd(this, modules);
    return this;
  }

  /** Call `fn(path, module)` for this module ("") and every sub-module ("layers.0.linear"). */
  applyToModules(fn: (path: string, module: Module) => unknown): this {
    const stack: [string, Module][] = [["", this]];
    while (stack.length > 0) {
      const [prefix, mod] = stack.pop()!;
      fn(prefix, mod);
      const p = prefix ? `.${prefix}` : "";
      stack.push(...(treeFlatten(mod.children(), { prefix: p, isLeaf: Module.isModule }) as [string, Module][]));
    }
    return this;
  }

  /** This module and all its sub-modules. */
  modules(): Module[] {
    const out: Module[] = [];
    this.applyToModules((_k, m) => out.push(m));
    return out;
  }

  /** This module and all its sub-modules with their dotted paths. */
  namedModules(): [string, Module][] {
    const out: [string, Module][] = [];
    this.applyToModules((k, m) => out.push([k, m]));
    return out;
  }

  private validateKeys_(keys: string | readonly string[], strict: boolean): string[] {
    const ks = typeof keys === "string" ? [keys] : [...keys];
    if (strict) for (const k of ks) if (!has(this, k)) throw new Error(`Module doesn't contain member ${k}.`);
    return ks;
  }

  private validateKeysRecursive_(keys: string | readonly string[]): void {
    const ks = typeof keys === "string" ? [keys] : [...keys];
    const mods = this.modules();
    for (const k of ks) if (!mods.some((m) => has(m, k))) throw new Error(`Module doesn't contain member ${k}.`);
  }

  /** Freeze parameters (no gradients in `nn.valueAndGrad`): all, or `keys`; recursively by default. */
  freeze(options: FreezeOptions = {}): this {
    const { recurse = true, keys } = options;
    let strict = options.strict ?? false;
    const impl = (_: string, m: Module) => {
      let local: string | readonly string[] | undefined = keys;
      if (local === undefined) {
        const tree = m.filterAndMap((mm, k, v) => !(v instanceof Module) && Module.validParameterFilter(mm, k, v));
        local = treeFlatten(tree).map(([k]) => k);
      }
      for (const k of m.validateKeys_(local, strict)) m[NO_GRAD].add(k);
    };
    if (recurse) {
      if (strict && keys !== undefined) {
        this.validateKeysRecursive_(keys);
        strict = false;
      }
      this.applyToModules(impl);
    } else impl("", this);
    return this;
  }

  /** Unfreeze parameters: all, or `keys`; recursively by default. */
  unfreeze(options: FreezeOptions = {}): this {
    const { recurse = true, keys } = options;
    let strict = options.strict ?? false;
    const impl = (_: string, m: Module) => {
      if (keys === undefined) m[NO_GRAD].clear();
      else for (const k of m.validateKeys_(keys, strict)) m[NO_GRAD].delete(k);
    };
    if (recurse) {
      if (strict && keys !== undefined) {
        this.validateKeysRecursive_(keys);
        strict = false;
      }
      this.applyToModules(impl);
    } else impl("", this);
    this.afterUnfreeze();
    return this;
  }

  /** @internal hook for layers whose buffers stay frozen (BatchNorm). */
  protected afterUnfreeze(): void {}

  /** @internal */
  protected setTrainingMode(mode: boolean): void {
    this[TRAINING] = mode;
  }

  /** Set training mode (default true) on this module and its sub-modules. */
  train(mode = true): this {
    this.applyToModules((_, m) => m.setTrainingMode(mode));
    return this;
  }

  /** Set evaluation mode: `train(false)`. */
  eval(): this {
    return this.train(false);
  }

  /** Cast the parameters whose dtype passes `predicate` (default: floating types) to `dtype`. */
  setDtype(dtype: Dtype, predicate: ((d: Dtype) => boolean) | null = (d) => issubdtype(d, floating)): this {
    const pred = predicate ?? (() => true);
    return this.apply((x) => (pred(x.dtype) ? x.astype(dtype) : x));
  }

  /** Extra text of the module's repr (layers override it). */
  protected extraRepr(): string {
    return "";
  }

  /** MLX's repr: `Name(extra\n  (child): ...)`. */
  toString(): string {
    const kids = treeFlatten(this.children(), { isLeaf: Module.isModule }) as [string, Module][];
    let s = `${this.constructor.name}(${this.extraRepr()}`;
    for (const [k, v] of kids) s += "\n" + `(${k}): ${v.toString()}`.split("\n").map((l) => `  ${l}`).join("\n");
    if (kids.length > 0) s += "\n";
    return s + ")";
  }

  /** console.log / Bun.inspect show MLX's repr. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  /**
   * Update the parameters from a `.npz` or `.safetensors` file, or from a list of
   * `[name, array]` pairs (flat dotted names as `mx.utils.treeFlatten(model.parameters())`).
   * With `strict` (default) the weights must match the parameters exactly: same names and
   * shapes (MLX's errors otherwise); without it, only the names the model has are loaded.
   * @example model.loadWeights("weights.safetensors")
   * @example model.loadWeights([["weight", w]], { strict: false })
   */
  loadWeights(fileOrWeights: string | readonly (readonly [string, unknown])[], options: { strict?: boolean } | boolean = {}): this {
    const strict = typeof options === "boolean" ? options : options.strict ?? true;
    const weights: [string, unknown][] =
      typeof fileOrWeights === "string" ? Object.entries(mxLoad(fileOrWeights) as Record<string, MxArray>) : fileOrWeights.map(([k, v]) => [k, v]);
    if (strict) {
      const fresh = new Map(weights);
      const current = new Map(treeFlatten(this.parameters()));
      const extras = [...fresh.keys()].filter((k) => !current.has(k)).sort();
      if (extras.length > 0) throw new Error(`Received ${extras.length} parameters not in model: \n${extras.join(",\n")}.`);
      const missing = [...current.keys()].filter((k) => !fresh.has(k)).sort();
      if (missing.length > 0) throw new Error(`Missing ${missing.length} parameters: \n${missing.join(",\n")}.`);
      for (const [k, v] of current) {
        const nv = fresh.get(k);
        if (!(nv instanceof MxArray)) throw new Error(`Expected mx.array but received <class '${typeName(nv)}'> for parameter ${k}`);
        const shp = (a: MxArray) => (a.ndim === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(", ")})`);
        if (nv.shape.length !== v.shape.length || nv.shape.some((d: number, i: number) => d !== v.shape[i])) {
          throw new Error(`Expected shape ${shp(v)} but received shape ${shp(nv)} for parameter ${k}`);
        }
      }
    }
    if (weights.length !== 0) this.update(treeUnflatten(weights), false);
    return this;
  }

  /**
   * Save the parameters to a file, by its extension: `.npz` (mx.savez) or `.safetensors`
   * (mx.saveSafetensors), under their flat dotted names.
   * @example model.saveWeights("weights.safetensors")
   */
  saveWeights(file: string): void {
    const params = Object.fromEntries(treeFlatten(this.parameters())) as Record<string, MxArray>;
    if (file.endsWith(".npz")) savez(file, params);
    else if (file.endsWith(".safetensors")) saveSafetensors(file, params);
    else throw new Error(`Unsupported file extension for ${file}. Use '.npz' or '.safetensors'.`);
  }
}
