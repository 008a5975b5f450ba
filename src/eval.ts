// mx.eval and mx.asyncEval over arrays and trees (nested objects and lists) of arrays.
import { checkHandle, checkStatus, engineError, lib } from "../ffi/lib";
import { MxArray } from "./array";
import { streamArg, type StreamOrDevice } from "./device";

/** Every array in a tree of arguments (objects, lists, Maps), in order, each once. */
export function treeArrays(args: unknown[]): MxArray[] {
  const out: MxArray[] = [];
  const seen = new Set<unknown>();
  const stack: unknown[] = [...args].reverse();
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object" || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof MxArray) out.push(v);
    else if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    else if (v instanceof Map) stack.push(...[...v.values()].reverse());
    else if (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) {
      stack.push(...Object.values(v as Record<string, unknown>).reverse());
    }
  }
  return out;
}

function handlesOf(arrays: MxArray[], op: string): Uint32Array {
  const hs = new Uint32Array(Math.max(arrays.length, 1));
  arrays.forEach((a, i) => (hs[i] = a.handle(op)));
  return hs;
}

/**
 * Compute arrays (and every array inside objects or lists passed in). Blocks until done.
 * @example mx.eval(loss, model.parameters())
 */
const one = new Uint32Array(1);

export function evaluate(...args: unknown[]): void {
  const first = args[0];
  if (args.length === 1 && first instanceof MxArray) {
    // The common case without the tree walk. (Reusing `one` is safe: the engine only reads it.)
    one[0] = first.handle("eval");
    checkStatus(lib.mlxb_eval(one, 1));
    return;
  }
  const arrays = treeArrays(args);
  if (arrays.length === 0) return;
  checkStatus(lib.mlxb_eval(handlesOf(arrays, "eval"), arrays.length));
}

/**
 * Start computing arrays on the stream's worker thread and return at once; the promise
 * resolves when they are ready. JavaScript keeps running meanwhile (the event loop is
 * never blocked).
 * @example await mx.asyncEval(y)
 */
export function asyncEval(...args: unknown[]): Promise<void> {
  let stream: StreamOrDevice;
  const last = args[args.length - 1];
  if (last !== null && typeof last === "object" && !(last instanceof MxArray) && !Array.isArray(last) && "stream" in last) {
    stream = (last as { stream: StreamOrDevice }).stream;
    args = args.slice(0, -1);
  }
  const arrays = treeArrays(args);
  if (arrays.length === 0) return Promise.resolve();
  const ticket = checkHandle(lib.mlxb_async_eval(handlesOf(arrays, "async_eval"), arrays.length, streamArg(stream)));
  return new Promise<void>((resolve, reject) => {
    let polls = 0;
    const poll = () => {
      const state = lib.mlxb_ticket_state(ticket);
      if (state === 0) {
        // Quick hops first, then back off so a long computation does not spin the loop.
        polls++;
        if (polls < 32) setImmediate(poll);
        else setTimeout(poll, Math.min(8, polls >> 5));
        return;
      }
      const err = state < 0 ? engineError() : undefined;
      lib.mlxb_ticket_free(ticket);
      if (err) reject(err);
      else resolve();
    };
    poll();
  });
}
