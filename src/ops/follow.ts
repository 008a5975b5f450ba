// Internal (not re-exported by src/ops/index.ts): broadcasting that follows another array's
// graph, for ops under a shapeless compile trace.
import type { MxArray } from "../array";
import { tidy } from "../memory";
import { equal, where, type StreamOptions } from "./elementwise";

/**
 * `v` broadcast against `like` through a graph that reads `like`: where(like == like, v, v)
 * (both branches are v, so NaN entries of `like` change nothing). Under a shapeless compile
 * trace this is how an op follows another array's shape on replay, where broadcasting to a
 * shape computed in JS would keep the traced one (src/trace_flags.ts).
 */
export function broadcastAgainst(v: MxArray, like: MxArray, options?: StreamOptions): MxArray {
  return tidy(() => where(equal(like, like, options), v, v, options));
}
