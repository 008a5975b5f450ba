// nn.utils: checkpoint (mlx/nn/utils.py). value_and_grad is nn.valueAndGrad (src/nn/index.ts).
import { checkpoint as mxCheckpoint } from "../transforms";
import type { Module } from "./module";

/**
 * `fn` (default: `module.forward`) checkpointed with respect to the module's trainable
 * parameters and its arguments: under a gradient transform its intermediates are recomputed in
 * the backward pass instead of being kept.
 * @example const step = nn.utils.checkpoint(layer); const y = step(x);
 */
export function checkpoint<A extends unknown[], R>(module: Module, fn?: (...args: A) => R): (...args: A) => R {
  const f = fn ?? ((...args: A) => (module as unknown as { forward: (...a: A) => R }).forward(...args));
  const inner = (params: unknown, ...args: A): R => {
    module.update(params);
    return f(...args);
  };
  const cp = mxCheckpoint(inner as (...a: unknown[]) => R);
  return (...args: A) => cp(module.trainableParameters(), ...args);
}
