// mx.nn: MLX's neural-network library (mlx.nn) in TypeScript over the mx ops.
import { valueAndGrad as mxValueAndGrad } from "../transforms";
import { Module, withoutKeeping } from "./module";
import { init as initDistributed, type Group } from "../distributed";
import type { StreamOrDevice } from "../device";
import { MlxError } from "../errors";

export { Module, type FreezeOptions } from "./module";
export * from "./activations";
export {
  Identity, Linear, Bilinear, Sequential, Embedding, LayerNorm, RMSNorm, GroupNorm, InstanceNorm, BatchNorm, Dropout, Dropout2d,
  Dropout3d, RoPE, SinusoidalPositionalEncoding, ALiBi, MultiHeadAttention, TransformerEncoderLayer, TransformerEncoder,
  TransformerDecoderLayer, TransformerDecoder, Transformer, RNN, GRU, LSTM, MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d,
  AvgPool3d, Upsample, type TransformerLayerOptions,
} from "./layers";
export {
  Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, type ConvLayerOptions, type ConvTransposeLayerOptions,
} from "./conv_layers";
export { QuantizedLinear, QuantizedEmbedding, QQLinear, quantize, type QuantizedLayerOptions, type QuantizeModelOptions } from "./quantized";
export {
  AllToShardedLinear, ShardedToAllLinear, QuantizedAllToShardedLinear, QuantizedShardedToAllLinear, FullyShardedModule, fullyShard,
  shardLinear, shardInplace, type FullyShardOptions, type Segments, type Sharding, type ShardingPredicate, type ShardOptions,
} from "./distributed";
export * as init from "./init";
export * as losses from "./losses";
export * as utils from "./utils";

/**
 * `fn`'s value and its gradient with respect to `model.trainableParameters()` (a tree like
 * them). `fn` is called with the arguments given and uses the model (whose parameters are
 * swapped for tracers during the call).
 * @example
 * const lossAndGrad = nn.valueAndGrad(model, (x, y) => mx.mean(mx.square(mx.subtract(model.forward(x), y))));
 * const [loss, grads] = lossAndGrad(x, y);
 */
export function valueAndGrad<A extends unknown[], R>(model: Module, fn: (...args: A) => R): (...args: A) => [R, any] {
  const inner = (params: unknown, ...args: unknown[]) => {
    // The tracers are temporaries: they must not be kept alive by the model.
    withoutKeeping(() => model.update(params));
    return fn(...(args as A));
  };
  const vg = mxValueAndGrad(inner);
  return (...args: A) => {
    const params = model.trainableParameters();
    try {
      return vg(params, ...args) as [R, any];
    } finally {
      // Put the real arrays back: the model must not keep the tracers.
      withoutKeeping(() => model.update(params));
    }
  };
}

/** Options of `nn.averageGradients`. */
export interface AverageGradientsOptions {
  /** The group to average over (default: the global group, `mx.distributed.init()`). */
  group?: Group;
  /** Group arrays into all-reduces of about this many bytes (default 32 MiB; <= 0: one per array). */
  allReduceSize?: number;
  /** The stream for the communication. */
  communicationStream?: StreamOrDevice;
}

/**
 * The gradients averaged over the processes of a distributed group, as MLX's
 * `nn.average_gradients`. mlx-bun has no distributed backend, so the group is the singleton
 * and, as in MLX for a group of size 1, the gradients come back unchanged (the same tree).
 */
export function averageGradients<T>(gradients: T, options: AverageGradientsOptions = {}): T {
  const group = options.group ?? initDistributed();
  if (group.size() === 1) return gradients;
  throw new MlxError("[average_gradients] Groups of more than one process need a distributed backend.", 1);
}
