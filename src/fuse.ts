// Internal: the engine's fusion pass (engine/fuse.zig) for tests, benchmarks and tools. Not part
// of the public `mx` namespace: `mx.compile` runs the pass inside the engine.
import { checkHandle, checkStatus, lib } from "../ffi/lib";
import { MxArray } from "./array";

/**
 * Rewrite, in place, the chains of elementwise ops in the unevaluated graph behind `arrays` into
 * fused nodes (one kernel each). The arrays keep their values; intermediates that nothing else
 * holds are released. Returns the number of fused nodes made.
 * @example const y = mx.exp(x).mul(2).add(1); fuseGraph(y); mx.eval(y)
 */
export function fuseGraph(...arrays: MxArray[]): number {
  const hs = new Uint32Array(Math.max(arrays.length, 1));
  arrays.forEach((a, i) => (hs[i] = a.handle("fuse")));
  return checkStatus(lib.mlxb_fuse(hs, arrays.length));
}

/** Instructions of the array's fused program, 0 when the array is not a fused node. */
export function fusedProgramLength(a: MxArray): number {
  return checkStatus(lib.mlxb_fused_program_len(a.handle("fuse")));
}

/** Inputs of the array's fused node, 0 when the array is not a fused node. */
export function fusedInputCount(a: MxArray): number {
  return checkStatus(lib.mlxb_fused_input_count(a.handle("fuse")));
}

/**
 * A new fused node running `template`'s program (a fused array) on new `inputs`, of the
 * template's shape: what a compiled function's replay does. Under a transform the result is
 * differentiated and batched through the program's ordinary ops.
 */
export function fusedApply(template: MxArray, inputs: readonly MxArray[]): MxArray {
  const hs = new Uint32Array(Math.max(inputs.length, 1));
  inputs.forEach((a, i) => (hs[i] = a.handle("fused")));
  return new MxArray(checkHandle(lib.mlxb_fused_apply(template.handle("fused"), hs, inputs.length, -1)));
}
