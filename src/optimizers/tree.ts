// Private tree walking for the optimizers (MLX's mlx.utils tree_map / tree_flatten /
// tree_unflatten / tree_merge, as far as the optimizers need them). A tree is an mx.Array, a
// JS array of trees or a plain object of trees; anything else is a leaf.
import { MxArray } from "../array";
import { MlxError } from "../errors";

/** A nested structure of parameters, gradients or optimizer state. */
export type ParamTree = MxArray | ParamTree[] | { [key: string]: ParamTree };

/** A plain object (not an mx.Array, not a JS array, not a class instance). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || v instanceof MxArray || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function child(tree: unknown, key: string | number, path: string): unknown {
  if (tree === undefined || tree === null || typeof tree !== "object") {
    throw new MlxError(`Tree structure mismatch: no entry for "${path}".`, 1);
  }
  const v = (tree as Record<string | number, unknown>)[key];
  if (v === undefined) throw new MlxError(`Tree structure mismatch: no entry for "${path}".`, 1);
  return v;
}

/**
 * fn over the leaves of `tree`, with the matching nodes of `rest` (which must hold every path
 * of `tree`; extra entries are ignored, as MLX's tree_map does). Returns a tree shaped as `tree`.
 */
export function treeMap(fn: (leaf: unknown, rest: unknown[], path: string) => unknown, tree: unknown, rest: unknown[] = [], path = ""): unknown {
  const prefix = path === "" ? "" : `${path}.`;
  if (Array.isArray(tree)) {
    return tree.map((c, i) => treeMap(fn, c, rest.map((r) => child(r, i, `${prefix}${i}`)), `${prefix}${i}`));
  }
  if (isPlainObject(tree)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(tree)) out[k] = treeMap(fn, tree[k], rest.map((r) => child(r, k, `${prefix}${k}`)), `${prefix}${k}`);
    return out;
  }
  return fn(tree, rest, path);
}

/** The leaves of a tree with their dotted paths ("layers.0.weight"), depth first. */
export function treeFlattenPaths(tree: unknown, prefix = "", out: [string, unknown][] = []): [string, unknown][] {
  if (Array.isArray(tree)) tree.forEach((c, i) => treeFlattenPaths(c, `${prefix}.${i}`, out));
  else if (isPlainObject(tree)) for (const k of Object.keys(tree)) treeFlattenPaths(tree[k], `${prefix}.${k}`, out);
  else out.push([prefix.slice(1), tree]);
  return out;
}

/** Rebuild a tree from dotted paths; a level whose keys are all integers becomes a JS array. */
export function treeUnflatten(items: [string, unknown][]): unknown {
  if (items.length === 1 && items[0]![0] === "") return items[0]![1];
  const children = new Map<string, [string, unknown][]>();
  for (const [key, value] of items) {
    const dot = key.indexOf(".");
    const head = dot < 0 ? key : key.slice(0, dot);
    const rest = dot < 0 ? "" : key.slice(dot + 1);
    if (!children.has(head)) children.set(head, []);
    children.get(head)!.push([rest, value]);
  }
  const ints = new Map<number, string>();
  for (const k of children.keys()) if (/^[+-]?\d+$/.test(k.trim())) ints.set(parseInt(k, 10), k);
  if (ints.size === children.size) {
    const out: unknown[] = [];
    for (const [i, k] of [...ints.entries()].sort((a, b) => a[0] - b[0])) {
      while (out.length < i) out.push({});
      out.push(treeUnflatten(children.get(k)!));
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of children) out[k] = treeUnflatten(v);
  return out;
}

function isEmptyNode(v: unknown): boolean {
  return (Array.isArray(v) && v.length === 0) || (isPlainObject(v) && Object.keys(v).length === 0);
}

/** Merge two trees that hold leaves at different places (MLX's tree_merge without merge_fn). */
export function treeMerge(a: unknown, b: unknown): unknown {
  const emptyA = isEmptyNode(a);
  const emptyB = isEmptyNode(b);
  if (emptyA && emptyB) {
    if (Array.isArray(a) !== Array.isArray(b)) throw new MlxError(`Cannot merge ${Array.isArray(a) ? "list" : "dict"} with ${Array.isArray(b) ? "list" : "dict"}`, 1);
    return Array.isArray(a) ? [] : {};
  }
  if (emptyA) a = undefined;
  if (emptyB) b = undefined;
  if (a === undefined && b !== undefined) return b;
  if (a !== undefined && b === undefined) return a;
  if (Array.isArray(a) && Array.isArray(b)) {
    return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => treeMerge(a[i], b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const out: Record<string, unknown> = {};
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) out[k] = treeMerge(a[k], b[k]);
    return out;
  }
  throw new MlxError("Trees contain elements at the same locations but no merge function was provided", 1);
}

/** Write the leaves of `src` into the matching places of the (mutable) tree `dst`. */
export function treeAssign(dst: unknown, src: unknown, path = ""): void {
  const prefix = path === "" ? "" : `${path}.`;
  if (Array.isArray(src) || isPlainObject(src)) {
    const keys = Array.isArray(src) ? src.map((_, i) => i) : Object.keys(src);
    for (const k of keys) {
      const s = (src as Record<string | number, unknown>)[k];
      const d = child(dst, k, `${prefix}${k}`);
      if (Array.isArray(s) || isPlainObject(s)) treeAssign(d, s, `${prefix}${k}`);
      else (dst as Record<string | number, unknown>)[k] = s;
    }
    return;
  }
  throw new MlxError("Cannot update a single array in place; pass a tree (an object or a list) of parameters.", 1);
}
