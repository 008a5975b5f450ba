// mx.utils: MLX's tree helpers (mlx/utils.py). A tree is nested JS arrays (Python lists and
// tuples) and plain objects (Python dicts); anything else is a leaf: arrays, numbers, strings,
// null, and class instances such as nn.Module (MLX's Module is a dict; pass an `isLeaf` or call
// `module.parameters()` / `module.children()` to walk one). Flat keys use MLX's dot notation:
// `{ layers: [{ w }] }` flattens to `[["layers.0.w", w]]`.

/** A predicate deciding that a node is a leaf (not descended into). */
export type IsLeaf = (node: unknown) => boolean;

function isDict(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function child(tree: unknown, key: string | number): unknown {
  return (tree as Record<string | number, unknown> | null | undefined)?.[key];
}

/**
 * Apply `fn` to the leaves of `tree` (and the matching nodes of each of `rest`, which must be
 * supersets of `tree`); returns a tree of the results with `tree`'s structure.
 * @example mx.utils.treeMap((x) => mx.multiply(x, 2), model.parameters())
 */
export function treeMap(fn: (leaf: any, ...rest: any[]) => unknown, tree: unknown, rest: readonly unknown[] = [], options: { isLeaf?: IsLeaf } = {}): any {
  const { isLeaf } = options;
  const walk = (t: unknown, rs: readonly unknown[]): unknown => {
    if (isLeaf !== undefined && isLeaf(t)) return fn(t, ...rs);
    if (Array.isArray(t)) return t.map((c, i) => walk(c, rs.map((r) => child(r, i))));
    if (isDict(t)) return Object.fromEntries(Object.keys(t).map((k) => [k, walk(t[k], rs.map((r) => child(r, k)))]));
    return fn(t, ...rs);
  };
  return walk(tree, rest);
}

/**
 * As treeMap, but `fn` gets the leaf's dotted path first (`"model.0.w"`; `path` prefixes it).
 * @example mx.utils.treeMapWithPath((path, x) => path, { a: [1, 2] }) // { a: ["a.0", "a.1"] }
 */
export function treeMapWithPath(
  fn: (path: string | undefined, leaf: any, ...rest: any[]) => unknown,
  tree: unknown,
  rest: readonly unknown[] = [],
  options: { isLeaf?: IsLeaf; path?: string } = {},
): any {
  const { isLeaf } = options;
  const walk = (t: unknown, rs: readonly unknown[], path: string | undefined): unknown => {
    if (isLeaf !== undefined && isLeaf(t)) return fn(path, t, ...rs);
    const prefix = path ? `${path}.` : "";
    if (Array.isArray(t)) return t.map((c, i) => walk(c, rs.map((r) => child(r, i)), `${prefix}${i}`));
    if (isDict(t)) return Object.fromEntries(Object.keys(t).map((k) => [k, walk(t[k], rs.map((r) => child(r, k)), `${prefix}${k}`)]));
    return fn(path, t, ...rs);
  };
  return walk(tree, rest, options.path);
}

/**
 * The leaves of `tree` as `[key, value]` pairs with dotted keys. `prefix`'s first character is
 * dropped (as MLX: `treeFlatten(t, { prefix: ".model" })` gives keys `model.…`).
 * @example mx.utils.treeFlatten({ a: [1, { b: 2 }] }) // [["a.0", 1], ["a.1.b", 2]]
 */
export function treeFlatten(tree: unknown, options: { prefix?: string; isLeaf?: IsLeaf } = {}): [string, any][] {
  const out: [string, any][] = [];
  const { isLeaf } = options;
  const walk = (t: unknown, prefix: string): void => {
    if (isLeaf !== undefined && isLeaf(t)) out.push([prefix.slice(1), t]);
    else if (Array.isArray(t)) t.forEach((c, i) => walk(c, `${prefix}.${i}`));
    else if (isDict(t)) for (const k of Object.keys(t)) walk(t[k], `${prefix}.${k}`);
    else out.push([prefix.slice(1), t]);
  };
  walk(tree, options.prefix ?? "");
  return out;
}

/**
 * Rebuild a tree from its flat `[key, value]` pairs (or an object of them): keys that are all
 * integers make a list (gaps filled with `{}`), others an object.
 * @example mx.utils.treeUnflatten([["a.0", 1], ["a.1.b", 2]]) // { a: [1, { b: 2 }] }
 */
export function treeUnflatten(flat: readonly (readonly [string, unknown])[] | Record<string, unknown>): any {
  const items: (readonly [string, unknown])[] = Array.isArray(flat) ? [...flat] : Object.entries(flat);
  if (items.length === 1 && items[0]![0] === "") return items[0]![1];
  const children = new Map<string, [string, unknown][]>();
  for (const [key, value] of items) {
    const dot = key.indexOf(".");
    const cur = dot < 0 ? key : key.slice(0, dot);
    const next = dot < 0 ? "" : key.slice(dot + 1);
    let list = children.get(cur);
    if (list === undefined) children.set(cur, (list = []));
    list.push([next, value]);
  }
  // Python's int() accepts optional whitespace, a sign and underscores between digits.
  const asInt = (s: string): number | null => (/^\s*[+-]?\d+(_\d+)*\s*$/.test(s) ? Number(s.replace(/_/g, "").trim()) : null);
  const ints = [...children.keys()].map((k) => [asInt(k), k] as const);
  if (children.size > 0 && ints.every(([i]) => i !== null)) {
    const byIndex = new Map<number, string>();
    for (const [i, k] of ints) byIndex.set(i!, k);
    const out: unknown[] = [];
    for (const i of [...byIndex.keys()].sort((a, b) => a - b)) {
      while (out.length < i) out.push({});
      out.push(treeUnflatten(children.get(byIndex.get(i)!)!));
    }
    return out;
  }
  return Object.fromEntries([...children].map(([k, v]) => [k, treeUnflatten(v)]));
}

/**
 * Reduce the leaves of `tree` with `fn(accumulator, leaf)`, starting from `initializer` (or the
 * first leaf when it is undefined).
 * @example mx.utils.treeReduce((acc, x) => acc + x, { a: [1, 2, 3], b: [4, 5] }, 0) // 15
 */
export function treeReduce(fn: (acc: any, leaf: any) => unknown, tree: unknown, initializer?: unknown, options: { isLeaf?: IsLeaf } = {}): any {
  const { isLeaf } = options;
  // MLX uses None as "no accumulator yet"; undefined and null play that part here.
  const none = (v: unknown) => v === undefined || v === null;
  const walk = (t: unknown, acc: unknown): unknown => {
    if (isLeaf !== undefined && isLeaf(t)) return none(acc) ? t : fn(acc, t);
    if (Array.isArray(t)) {
      for (const c of t) acc = walk(c, acc);
      return acc;
    }
    if (isDict(t)) {
      for (const c of Object.values(t)) acc = walk(c, acc);
      return acc;
    }
    return none(acc) ? t : fn(acc, t);
  };
  return walk(tree, initializer);
}

/**
 * Merge two trees into one holding the values of both (a deep `Object.assign`); empty
 * containers count as empty subtrees; leaves present in both need `mergeFn`.
 * @example mx.utils.treeMerge({ a: 1 }, { b: [2] }) // { a: 1, b: [2] }
 */
export function treeMerge(a: unknown, b: unknown, mergeFn?: (a: any, b: any) => unknown): any {
  const size = (t: unknown) => (Array.isArray(t) ? t.length : isDict(t) ? Object.keys(t).length : -1);
  const emptyA = size(a) === 0;
  const emptyB = size(b) === 0;
  if (emptyA && emptyB) {
    if (Array.isArray(a) !== Array.isArray(b)) {
      const name = (t: unknown) => (Array.isArray(t) ? "list" : "dict");
      throw new Error(`Cannot merge ${name(a)} with ${name(b)}`);
    }
    return Array.isArray(a) ? [] : {};
  }
  if (emptyA) a = null;
  if (emptyB) b = null;
  const none = (v: unknown) => v === undefined || v === null;
  if (none(a) && !none(b)) return b;
  if (!none(a) && none(b)) return a;
  if (Array.isArray(a) && Array.isArray(b)) {
    return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => treeMerge(a[i], b[i], mergeFn));
  }
  if (isDict(a) && isDict(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return Object.fromEntries(keys.map((k) => [k, treeMerge(a[k], b[k], mergeFn)]));
  }
  if (mergeFn === undefined) throw new Error("Trees contain elements at the same locations but no merge function was provided");
  return mergeFn(a, b);
}
