// Deterministic release: `tidy(fn)` scopes and `keep`. A scope records every array created
// while it is current (across awaits too: the scope is carried by AsyncLocalStorage), and
// when fn finishes it disposes all of them except those fn returned and those kept.
import { AsyncLocalStorage } from "node:async_hooks";

/** What a scope needs to know of an array. */
export interface Disposable {
  dispose(): void;
  /** Hand the array to the garbage collector's backstop (it leaves every scope untracked). */
  escape(): void;
  /** @internal set by keep() */
  kept: boolean;
}

class Scope {
  readonly arrays: Disposable[] = [];
  constructor(readonly parent: Scope | undefined) {}
}

const storage = new AsyncLocalStorage<Scope>();

/**
 * Called for every new array: true if a scope took it. An array in a scope needs no GC
 * tracking while the scope is open (the scope holds it and will dispose it); the survivors
 * are handed to the GC when the outermost scope closes.
 */
export function track(a: Disposable): boolean {
  const s = storage.getStore();
  if (s === undefined) return false;
  s.arrays.push(a);
  return true;
}

/** Arrays (and nested objects/arrays of them) reachable from a returned value. */
function collect(value: unknown, out: Set<Disposable>, isArray: (v: unknown) => v is Disposable, seen = new Set<unknown>()): void {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object" || seen.has(v)) continue;
    seen.add(v);
    if (isArray(v)) {
      out.add(v);
      continue;
    }
    if (Array.isArray(v)) stack.push(...v);
    else if (v instanceof Map) stack.push(...v.values());
    else if (Object.getPrototypeOf(v) === Object.prototype) stack.push(...Object.values(v as Record<string, unknown>));
  }
}

function close(scope: Scope, result: unknown, isArray: (v: unknown) => v is Disposable): void {
  const escaping = new Set<Disposable>();
  collect(result, escaping, isArray);
  for (const a of scope.arrays) {
    if (escaping.has(a) || a.kept) {
      // Survivors belong to the enclosing scope, if any; otherwise to the garbage collector.
      if (scope.parent !== undefined && !a.kept) scope.parent.arrays.push(a);
      else a.escape();
      continue;
    }
    a.dispose();
  }
  scope.arrays.length = 0;
}

/** Run fn in a new scope; see `mx.tidy`. */
export function runScoped<T>(fn: () => T, isArray: (v: unknown) => v is Disposable): T {
  const scope = new Scope(storage.getStore());
  let result: T;
  try {
    result = storage.run(scope, fn);
  } catch (e) {
    close(scope, undefined, isArray);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v: unknown) => {
        close(scope, v, isArray);
        return v;
      },
      (e: unknown) => {
        close(scope, undefined, isArray);
        throw e;
      },
    ) as T;
  }
  close(scope, result, isArray);
  return result;
}
