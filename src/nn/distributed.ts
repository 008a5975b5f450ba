// The sharded linear layers of mlx.nn (mlx/nn/layers/distributed.py) as they behave without a
// distributed backend: the group is the singleton (size 1), so a layer holds the whole weight and
// computes what nn.Linear does, with MLX's operation order; the gradient aggregation (an
// all_sum of the cotangent) is the identity for one process.
import { MxArray } from "../array";
import { add } from "../ops/elementwise";
import { addmm, matmul } from "../ops/matmul";
import { transpose } from "../ops/shape";
import * as random from "../random";
import { allSum, init, type Group } from "../distributed";
import { MlxError } from "../errors";
import { Module, pyBool } from "./module";

const T = (w: MxArray) => transpose(w);

function groupOf(group: Group | undefined): Group {
  return group ?? init();
}

function copyLinear(target: { weight: MxArray; bias?: MxArray }, linear: Module): void {
  // Sharding over one process keeps every segment whole: the parameters are the linear's own.
  const p = linear as unknown as { weight: MxArray; bias?: MxArray };
  target.weight = p.weight;
  if (p.bias !== undefined) target.bias = p.bias;
}

/**
 * A linear layer whose output is sharded across the group (MLX's `nn.AllToShardedLinear`):
 * weight (outputDims / N, inputDims). Without a distributed backend N is 1: the layer is
 * `nn.Linear` (same initialisation and `addmm`).
 */
export class AllToShardedLinear extends Module {
  weight: MxArray;
  bias?: MxArray;
  group: Group;
  constructor(inputDims: number, outputDims: number, bias = true, group?: Group) {
    super();
    const scale = Math.sqrt(1.0 / inputDims);
    this.group = groupOf(group);
    const N = this.group.size();
    if (outputDims % N !== 0) throw new MlxError(`Cannot shard the output of size ${outputDims} across ${N} devices.`, 1);
    this.weight = random.uniform({ low: -scale, high: scale, shape: [outputDims / N, inputDims] });
    if (bias) this.bias = random.uniform({ low: -scale, high: scale, shape: [outputDims / N] });
    else delete this.bias;
  }
  protected override extraRepr(): string {
    return `input_dims=${this.weight.shape[1]}, output_dims=${this.weight.shape[0]! * this.group.size()}, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x: MxArray): MxArray {
    return this.bias !== undefined ? addmm(this.bias, x, T(this.weight)) : matmul(x, T(this.weight));
  }
  /** The sharded layer holding this process's part of `linear` (all of it for one process). */
  static fromLinear(linear: Module, options: { segments?: number | number[]; group?: Group } = {}): AllToShardedLinear {
    const w = (linear as unknown as { weight: MxArray }).weight;
    const sl = new AllToShardedLinear(w.shape[1]!, w.shape[0]!, (linear as unknown as { bias?: MxArray }).bias !== undefined, options.group);
    copyLinear(sl, linear);
    return sl;
  }
}

/**
 * A linear layer over an input sharded across the group whose results are summed over it
 * (MLX's `nn.ShardedToAllLinear`): weight (outputDims, inputDims / N). Without a distributed
 * backend N is 1: `x @ W.T`, the (identity) all-sum, then `+ bias`, in MLX's order.
 */
export class ShardedToAllLinear extends Module {
  weight: MxArray;
  bias?: MxArray;
  group: Group;
  constructor(inputDims: number, outputDims: number, bias = true, group?: Group) {
    super();
    const scale = Math.sqrt(1.0 / inputDims);
    this.group = groupOf(group);
    const N = this.group.size();
    if (inputDims % N !== 0) throw new MlxError(`The input of size ${inputDims} cannot be sharded across ${N} devices.`, 1);
    this.weight = random.uniform({ low: -scale, high: scale, shape: [outputDims, inputDims / N] });
    if (bias) this.bias = random.uniform({ low: -scale, high: scale, shape: [outputDims] });
    else delete this.bias;
  }
  protected override extraRepr(): string {
    return `input_dims=${this.weight.shape[1]! * this.group.size()}, output_dims=${this.weight.shape[0]}, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x: MxArray): MxArray {
    const y = allSum(matmul(x, T(this.weight)), { group: this.group });
    return this.bias !== undefined ? add(y, this.bias) : y;
  }
  /** The sharded layer holding this process's part of `linear` (all of it for one process). */
  static fromLinear(linear: Module, options: { segments?: number | number[]; group?: Group } = {}): ShardedToAllLinear {
    const w = (linear as unknown as { weight: MxArray }).weight;
    const sl = new ShardedToAllLinear(w.shape[1]!, w.shape[0]!, (linear as unknown as { bias?: MxArray }).bias !== undefined, options.group);
    copyLinear(sl, linear);
    return sl;
  }
}

/**
 * Shard a module's parameters across a group (MLX's `nn.fully_shard`). On the singleton group
 * (mlx-bun has no distributed backend) MLX returns the module unchanged, and so does this.
 */
export function fullyShard<M extends Module>(module: M, options: { group?: Group; computeDtype?: unknown } = {}): M {
  const group = groupOf(options.group);
  if (group.size() === 1) return module;
  throw new MlxError("[fully_shard] Groups of more than one process need a distributed backend.", 1);
}
