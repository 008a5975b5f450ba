// nn.utils: checkpoint and clipGradNormSharded (mlx/nn/utils.py). value_and_grad is nn.valueAndGrad (src/nn/index.ts).
import { checkpoint as mxCheckpoint } from "../transforms";
import type { Module } from "./module";
import { array, type MxArray } from "../array";
import { allSum, type Group } from "../distributed";
import { float32 } from "../dtype";
import { add, divide, minimum, multiply, sqrt, square } from "../ops/elementwise";
import { sum } from "../ops/reduce";
import { treeMap, treeReduce } from "../utils";

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

/**
 * Clip the global norm of gradients sharded across a group, as MLX's
 * `nn.utils.clip_grad_norm_sharded`: the squared norms of the local shards are summed over the
 * group (an all-sum: the identity on the singleton group mlx-bun has without a distributed
 * backend), then every gradient is scaled by `min(maxNorm / (norm + 1e-6), 1)`. Returns
 * `[clippedGradients, norm]`; MLX's operation order.
 * @example const [clipped, norm] = nn.utils.clipGradNormSharded(grads, 1.0);
 */
export function clipGradNormSharded<T>(gradients: T, maxNorm: number, group?: Group): [T, MxArray] {
  const localSquared = treeReduce((acc: MxArray | number, g: MxArray) => add(acc, sum(square(g))), gradients, 0.0) as MxArray | number;
  const globalSquared = allSum(typeof localSquared === "number" ? array(localSquared, float32) : localSquared, { group });
  const norm = sqrt(globalSquared);
  const normalizer = minimum(divide(maxNorm, add(norm, 1e-6)), 1.0);
  return [treeMap((g: MxArray) => multiply(g, normalizer), gradients) as T, norm];
}
