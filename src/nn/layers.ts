// The layers of mlx.nn (mlx/nn/layers/*.py) composed from mx ops. Initial parameters are drawn
// with mx.random exactly as MLX draws them (same samplers, shapes and order), so with the same
// seed the same weights come out. As in MLX, LayerNorm (and GroupNorm's PyTorch-compatible
// path, InstanceNorm), RMSNorm, RoPE and MultiHeadAttention call mx.fast (src/fast.ts); the
// same formulas composed from ordinary ops are in ./composed.ts. Conv*, Quantized* layers hook
// in beside these (issue 7 ops).
import { MxArray, array } from "../array";
import { arange, ones, zeros } from "../creation";
import { float32, uint32, type Dtype, type DtypeLike, toDtype } from "../dtype";
import * as random from "../random";
import {
  abs, add, addmm, asStrided, broadcastTo, concatenate, cos, divide, exp, expandDims, finfo, flatten, floor, ceil, less,
  logicalAnd, greater, greaterEqual, lessEqual, maximum, matmul, max, mean, multiply, negative, pad, reshape, rsqrt, sigmoid, sin, split, stack,
  subtract, swapaxes, take, tanh as mxTanh, transpose, unflatten, variance, where, clip, round, sl, squeeze,
} from "../ops/index";
import * as fast from "../fast";
import { relu, tanh } from "./activations";
import { Module, pyBool, pyFloat } from "./module";
import { checkpoint as checkpointModule } from "./utils";
import { QQLinear, QuantizedEmbedding, QuantizedLinear, type QuantizeModelOptions } from "./quantized";

type Fn = (...args: any[]) => any;

function callLayer(m: unknown, ...args: unknown[]): any {
  if (m instanceof Module) return (m as unknown as { forward: Fn }).forward(...args);
  if (typeof m === "function") return (m as Fn)(...args);
  throw new Error(`'${typeof m}' object is not callable`);
}

const T = (w: MxArray) => transpose(w);

// ---------------------------------------------------------------------------------------------
// Linear, containers, embedding

/** Returns its input (constructor arguments are ignored). */
export class Identity extends Module {
  constructor(..._args: unknown[]) {
    super();
  }
  forward(x: MxArray): MxArray {
    return x;
  }
}

/** `y = x W^T + b`; weight (out, in) and bias (out) uniform in ±sqrt(1/in). */
export class Linear extends Module {
  weight: MxArray;
  bias?: MxArray;
  constructor(inputDims: number, outputDims: number, bias = true) {
    super();
    const scale = Math.sqrt(1.0 / inputDims);
    this.weight = random.uniform({ low: -scale, high: scale, shape: [outputDims, inputDims] });
    if (bias) this.bias = random.uniform({ low: -scale, high: scale, shape: [outputDims] });
    else delete this.bias;
  }
  protected override extraRepr(): string {
    return `input_dims=${this.weight.shape[1]}, output_dims=${this.weight.shape[0]}, bias=${this.bias !== undefined ? "True" : "False"}`;
  }
  forward(x: MxArray): MxArray {
    return this.bias !== undefined ? addmm(this.bias, x, T(this.weight)) : matmul(x, T(this.weight));
  }
  /** A QuantizedLinear approximating this layer (`nn.quantize` calls this). */
  toQuantized(options: QuantizeModelOptions = {}): Module {
    if (options.quantizeInput) {
      const mode = options.mode ?? "affine";
      if (mode !== "nvfp4" && mode !== "mxfp8") throw new Error(`Quantized activations are only supported for 'nvfp4' and 'mxfp8' modes, got ${mode}.`);
      return QQLinear.fromLinear(this, options.groupSize ?? null, options.bits ?? null, mode);
    }
    return QuantizedLinear.fromLinear(this, options.groupSize ?? null, options.bits ?? null, options.mode ?? "affine");
  }
}

/** `y_i = x1^T W_i x2 + b_i`; weight (out, in2, in1), bias (out), uniform in ±sqrt(1/in1). */
export class Bilinear extends Module {
  weight: MxArray;
  bias?: MxArray;
  constructor(input1Dims: number, input2Dims: number, outputDims: number, bias = true) {
    super();
    const scale = Math.sqrt(1.0 / input1Dims);
    this.weight = random.uniform({ low: -scale, high: scale, shape: [outputDims, input2Dims, input1Dims] });
    if (bias) this.bias = random.uniform({ low: -scale, high: scale, shape: [outputDims] });
    else delete this.bias;
  }
  protected override extraRepr(): string {
    return `input1_dims=${this.weight.shape[2]}, input2_dims=${this.weight.shape[1]}, output_dims=${this.weight.shape[0]}, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x1: MxArray, x2: MxArray): MxArray {
    const [out, in2, in1] = this.weight.shape as [number, number, number];
    const xshape = x1.shape.slice(0, -1);
    const a = reshape(x1, [-1, in1]);
    const b = reshape(x2, [-1, 1, in2]);
    const w = reshape(this.weight, [out * in2, in1]);
    let y = matmul(a, T(w));
    y = swapaxes(reshape(y, [-1, out, in2]), -2, -1);
    y = squeeze(matmul(b, y), 1);
    y = reshape(y, [...xshape, out]);
    return this.bias !== undefined ? add(y, this.bias) : y;
  }
}

/** Calls its layers (modules or functions) in order. */
export class Sequential extends Module {
  layers: (Module | Fn)[];
  constructor(...modules: (Module | Fn)[]) {
    super();
    this.layers = modules;
  }
  forward(x: unknown): any {
    for (const m of this.layers) x = callLayer(m, x);
    return x;
  }
}

/** A lookup table: weight (num, dims) normal with scale sqrt(1/dims). */
export class Embedding extends Module {
  weight: MxArray;
  constructor(numEmbeddings: number, dims: number) {
    super();
    const scale = Math.sqrt(1 / dims);
    this.weight = random.normal({ shape: [numEmbeddings, dims], scale });
  }
  protected override extraRepr(): string {
    return `${this.weight.shape[0]}, ${this.weight.shape[1]}`;
  }
  forward(x: MxArray): MxArray {
    return take(this.weight, x, 0);
  }
  /** `x W^T`: use the embedding matrix as an output projection. */
  asLinear(x: MxArray): MxArray {
    return matmul(x, T(this.weight));
  }
  /** A QuantizedEmbedding approximating this layer (`nn.quantize` calls this). */
  toQuantized(options: QuantizeModelOptions = {}): Module {
    if (options.quantizeInput) throw new Error("Quantized input is not supported.");
    return QuantizedEmbedding.fromEmbedding(this, options.groupSize ?? null, options.bits ?? null, options.mode ?? "affine");
  }
}

// ---------------------------------------------------------------------------------------------
// Normalization

function checkEps(name: string, eps: number) {
  if (eps <= 0.0) throw new Error(`[${name}] 'eps' must be positive but got ${eps}.`);
}

/** Layer normalization over the last axis; `affine` adds weight (ones) and bias (zeros). */
export class LayerNorm extends Module {
  weight?: MxArray;
  bias?: MxArray;
  constructor(public dims: number, public eps = 1e-5, affine = true, bias = true) {
    super();
    checkEps("LayerNorm", eps);
    if (affine) {
      this.weight = ones([dims]);
      if (bias) this.bias = zeros([dims]);
    }
    if (this.weight === undefined) delete this.weight;
    if (this.bias === undefined) delete this.bias;
  }
  protected override extraRepr(): string {
    return `${this.dims}, eps=${pyFloat(this.eps)}, affine=${pyBool(this.weight !== undefined)}`;
  }
  forward(x: MxArray): MxArray {
    return fast.layerNorm(x, this.weight ?? null, this.bias ?? null, this.eps);
  }
}

/** Root-mean-square normalization over the last axis with a weight (ones). */
export class RMSNorm extends Module {
  weight: MxArray;
  constructor(dims: number, public eps = 1e-5) {
    super();
    checkEps("RMSNorm", eps);
    this.weight = ones([dims]);
  }
  protected override extraRepr(): string {
    return `${this.weight.shape[0]}, eps=${pyFloat(this.eps)}`;
  }
  forward(x: MxArray): MxArray {
    return fast.rmsNorm(x, this.weight, this.eps);
  }
}

/** Group normalization over the feature (last) axis split in `numGroups` groups. */
export class GroupNorm extends Module {
  bias?: MxArray;
  weight?: MxArray;
  constructor(public numGroups: number, public dims: number, public eps = 1e-5, affine = true, public pytorchCompatible = false) {
    super();
    checkEps("GroupNorm", eps);
    if (numGroups <= 0) throw new Error(`The number of groups (${numGroups}) must be a positive integer.`);
    if (dims <= 0) throw new Error(`The number of features (${dims}) must be a positive integer.`);
    if (dims % numGroups !== 0) throw new Error(`The number of features (${dims}) must be evenly divisible by the number of groups (${numGroups}).`);
    if (affine) {
      this.bias = zeros([dims]);
      this.weight = ones([dims]);
    } else {
      delete this.bias;
      delete this.weight;
    }
  }
  protected override extraRepr(): string {
    return `${this.numGroups}, ${this.dims}, eps=${pyFloat(this.eps)}, affine=${pyBool(this.weight !== undefined)}, pytorch_compatible=${pyBool(this.pytorchCompatible)}`;
  }
  forward(x: MxArray): MxArray {
    const g = this.numGroups;
    const [batch, ...rest] = x.shape as number[];
    const dims = rest.pop()!;
    let y: MxArray;
    if (this.pytorchCompatible) {
      const gs = Math.floor(dims / g);
      y = reshape(x, [batch!, -1, g, gs]);
      y = reshape(transpose(y, [0, 2, 1, 3]), [batch!, g, -1]);
      y = fast.layerNorm(y, null, null, this.eps);
      y = reshape(y, [batch!, g, -1, gs]);
      y = reshape(transpose(y, [0, 2, 1, 3]), [batch!, ...rest, dims]);
    } else {
      y = reshape(x, [batch!, -1, g]);
      const means = mean(y, { axis: 1, keepdims: true });
      const v = variance(y, { axis: 1, keepdims: true });
      y = multiply(subtract(y, means), rsqrt(add(v, this.eps)));
      y = reshape(y, [batch!, ...rest, dims]);
    }
    return this.weight !== undefined ? add(multiply(this.weight, y), this.bias!) : y;
  }
}

/** Instance normalization: each channel (last axis) over the spatial axes of each sample. */
export class InstanceNorm extends Module {
  weight?: MxArray;
  bias?: MxArray;
  constructor(public dims: number, public eps = 1e-5, affine = false) {
    super();
    checkEps("InstanceNorm", eps);
    if (affine) {
      this.weight = ones([dims]);
      this.bias = zeros([dims]);
    } else {
      delete this.weight;
      delete this.bias;
    }
  }
  protected override extraRepr(): string {
    return `${this.dims}, eps=${pyFloat(this.eps)}, affine=${pyBool(this.weight !== undefined)}`;
  }
  forward(x: MxArray): MxArray {
    if (x.ndim < 3) throw new Error(`InstanceNorm expects inputs with at least 3 dimensions (N, ..., C) but the input has ${x.ndim} dimensions.`);
    const n = x.shape[0]!;
    const c = x.shape[x.ndim - 1]!;
    const spatial = x.shape.slice(1, -1);
    const mid = spatial.map((_, i) => i + 1);
    const cf = transpose(x, [0, x.ndim - 1, ...mid]);
    let y = fast.layerNorm(reshape(cf, [n, c, -1]), null, null, this.eps);
    y = transpose(reshape(y, [n, c, ...spatial]), [0, ...spatial.map((_, i) => i + 2), 1]);
    return this.weight !== undefined ? add(multiply(this.weight, y), this.bias!) : y;
  }
}

/** Batch normalization over all axes but the last, with running statistics (frozen buffers). */
export class BatchNorm extends Module {
  weight?: MxArray;
  bias?: MxArray;
  running_mean?: MxArray;
  running_var?: MxArray;
  constructor(public numFeatures: number, public eps = 1e-5, public momentum = 0.1, affine = true, public trackRunningStats = true) {
    super();
    checkEps("BatchNorm", eps);
    if (affine) {
      this.weight = ones([numFeatures]);
      this.bias = zeros([numFeatures]);
    } else {
      delete this.weight;
      delete this.bias;
    }
    if (trackRunningStats) {
      this.running_mean = zeros([numFeatures]);
      this.running_var = ones([numFeatures]);
      this.freeze({ keys: ["running_mean", "running_var"], recurse: false });
    } else {
      delete this.running_mean;
      delete this.running_var;
    }
  }
  protected override afterUnfreeze(): void {
    if (this.trackRunningStats) this.freeze({ keys: ["running_mean", "running_var"], recurse: false });
  }
  protected override extraRepr(): string {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${pyFloat(this.momentum)}, affine=${pyBool(this.weight !== undefined)}, track_running_stats=${pyBool(this.trackRunningStats)}`;
  }
  forward(x: MxArray): MxArray {
    if (x.ndim < 2 || x.ndim > 4) throw new Error(`Expected input tensor to have 2, 3 or 4 dimensions, but got ${x.ndim}`);
    if (this.training && x.shape.slice(0, -1).reduce((a, b) => a * b, 1) === 1) {
      throw new Error("BatchNorm training requires more than one value per channel.");
    }
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    let m = mean(x, { axis: axes });
    let v = variance(x, { axis: axes });
    if (this.training && this.trackRunningStats) {
      const mu = this.momentum;
      const rv = variance(x, { axis: axes, ddof: 1 });
      this.running_mean = add(multiply(1 - mu, this.running_mean!), multiply(mu, m));
      this.running_var = add(multiply(1 - mu, this.running_var!), multiply(mu, rv));
    } else if (this.trackRunningStats) {
      m = this.running_mean!;
      v = this.running_var!;
    }
    const y = multiply(subtract(x, m), rsqrt(add(v, this.eps)));
    return this.weight !== undefined ? add(multiply(this.weight, y), this.bias!) : y;
  }
}

// ---------------------------------------------------------------------------------------------
// Dropout

class DropoutBase extends Module {
  _p_1: number;
  constructor(p: number) {
    super();
    if (p < 0 || p >= 1) throw new Error(`The dropout probability ${p} is not in [0, 1)`);
    this._p_1 = 1 - p;
  }
  protected override extraRepr(): string {
    return `p=${pyFloat(1 - this._p_1)}`;
  }
  protected drop(x: MxArray, maskShape: number[]): MxArray {
    if (this._p_1 === 1 || !this.training) return x;
    const mask = random.bernoulli(this._p_1, maskShape);
    return multiply(multiply(mask, x), 1 / this._p_1);
  }
}

/** Zero elements with probability `p` (default 0.5) in training, scaling the rest by 1/(1-p). */
export class Dropout extends DropoutBase {
  constructor(p = 0.5) {
    super(p);
  }
  forward(x: MxArray): MxArray {
    return this.drop(x, [...x.shape]);
  }
}

/** Zero whole channels (of (N, H, W, C) or (H, W, C) inputs) with probability `p`. */
export class Dropout2d extends DropoutBase {
  constructor(p = 0.5) {
    super(p);
  }
  forward(x: MxArray): MxArray {
    if (x.ndim !== 3 && x.ndim !== 4) throw new Error(`Received input with ${x.ndim} dimensions. Expected 3 or 4 dimensions.`);
    const s = [...x.shape];
    s[s.length - 2] = s[s.length - 3] = 1;
    return this.drop(x, s);
  }
}

/** Zero whole channels (of (N, D, H, W, C) or (D, H, W, C) inputs) with probability `p`. */
export class Dropout3d extends DropoutBase {
  constructor(p = 0.5) {
    super(p);
  }
  forward(x: MxArray): MxArray {
    if (x.ndim !== 4 && x.ndim !== 5) throw new Error(`Received input with ${x.ndim} dimensions. Expected 4 or 5 dimensions.`);
    const s = [...x.shape];
    s[s.length - 2] = s[s.length - 3] = s[s.length - 4] = 1;
    return this.drop(x, s);
  }
}

// ---------------------------------------------------------------------------------------------
// Positional encodings

/** Rotary positional encoding of the first `dims` features (`forward(x, offset = 0)`). */
export class RoPE extends Module {
  constructor(public dims: number, public traditional = false, public base = 10000, public scale = 1.0) {
    super();
  }
  protected override extraRepr(): string {
    return `${this.dims}, traditional=${pyBool(this.traditional)}`;
  }
  forward(x: MxArray, offset: number | MxArray = 0): MxArray {
    return fast.rope(x, this.dims, { traditional: this.traditional, base: this.base, scale: this.scale, offset });
  }
}

/** Sinusoidal positional encoding: `forward(x)` maps (...) positions to (..., dims) features. */
export class SinusoidalPositionalEncoding extends Module {
  _sigmas: MxArray;
  scale: number;
  constructor(dims: number, minFreq = 0.0001, maxFreq = 1, scale: number | null = null, public cosFirst = false, fullTurns = false) {
    super();
    if (dims <= 0 || dims % 2 !== 0) throw new Error(`[SinusoidalPositionalEncoding] dims must be positive and even but got ${dims}.`);
    const h = Math.floor(dims / 2);
    const oneZero = dims === 2 ? array([1.0]) : subtract(1, divide(arange(0, h), h - 1));
    const lmin = Math.log(minFreq);
    const lmax = Math.log(maxFreq);
    this._sigmas = exp(add(multiply(oneZero, lmax - lmin), lmin));
    if (fullTurns) this._sigmas = multiply(this._sigmas, 2 * Math.PI);
    this.scale = scale ?? (2 / dims) ** 0.5;
  }
  forward(x: MxArray): MxArray {
    const y = multiply(expandDims(x, -1), this._sigmas);
    const cy = cos(y);
    const sy = sin(y);
    let out = this.cosFirst ? concatenate([cy, sy], -1) : concatenate([sy, cy], -1);
    if (this.scale !== 1) out = multiply(out, this.scale);
    return out;
  }
}

/** Attention with linear biases: adds `-|i - j| * slope_h` to attention scores (B, H, Lq, Lk). */
export class ALiBi extends Module {
  static createAlibiMatrix(qSequenceLength: number, kSequenceLength: number, numHeads: number, offset = 0, dtype: DtypeLike = float32): MxArray {
    const x1 = arange(offset, qSequenceLength);
    const x2 = arange(0, kSequenceLength);
    const dist = negative(abs(expandDims(subtract(expandDims(x1, 1), expandDims(x2, 0)), [0, 1])));
    const slope = ALiBi.createAlibiSlope(numHeads, dtype);
    return multiply(dist, slope).astype(dtype);
  }
  static createAlibiSlope(numHeads: number, dtype: DtypeLike = float32): MxArray {
    const getSlopes = (n: number): number[] => {
      const l = Math.log2(n);
      if (Number.isInteger(l)) {
        const start = 2 ** -(2 ** -(l - 3));
        return Array.from({ length: n }, (_, i) => start * start ** i);
      }
      const p = 2 ** Math.floor(l);
      return [...getSlopes(p), ...getSlopes(2 * p).filter((_, i) => i % 2 === 0).slice(0, n - p)];
    };
    return expandDims(array(getSlopes(numHeads), { dtype }), [-1, -2]);
  }
  forward(attentionScores: MxArray, offset = 0, mask: MxArray | null = null): MxArray {
    const s = attentionScores.shape;
    let m = ALiBi.createAlibiMatrix(s[s.length - 2]! + offset, s[s.length - 1]!, s[1]!, offset, attentionScores.dtype);
    if (mask !== null) m = add(m, mask);
    return add(attentionScores, m);
  }
}

// ---------------------------------------------------------------------------------------------
// Attention and transformers

/** Multi-head attention: `forward(queries, keys, values, mask?)`. */
export class MultiHeadAttention extends Module {
  numHeads: number;
  query_proj: Linear;
  key_proj: Linear;
  value_proj: Linear;
  out_proj: Linear;
  constructor(
    dims: number,
    numHeads: number,
    options: { queryInputDims?: number; keyInputDims?: number; valueInputDims?: number; valueDims?: number; valueOutputDims?: number; bias?: boolean } = {},
  ) {
    super();
    if (dims % numHeads !== 0) {
      throw new Error(`The input feature dimensions should be divisible by the number of heads (${dims} % ${numHeads}) != 0`);
    }
    const qi = options.queryInputDims || dims;
    const ki = options.keyInputDims || dims;
    const vi = options.valueInputDims || ki;
    const vd = options.valueDims || dims;
    const vo = options.valueOutputDims || dims;
    const bias = options.bias ?? false;
    this.numHeads = numHeads;
    this.query_proj = new Linear(qi, dims, bias);
    this.key_proj = new Linear(ki, dims, bias);
    this.value_proj = new Linear(vi, vd, bias);
    this.out_proj = new Linear(vd, vo, bias);
  }
  forward(queries: MxArray, keys: MxArray, values: MxArray, mask: MxArray | "causal" | null = null): MxArray {
    const h = this.numHeads;
    const split = (x: MxArray) => transpose(unflatten(x, -1, [h, -1]), [0, 2, 1, 3]);
    const q = split(this.query_proj.forward(queries));
    const k = split(this.key_proj.forward(keys));
    const v = split(this.value_proj.forward(values));
    const scale = Math.sqrt(1 / q.shape[q.ndim - 1]!);
    const o = fast.scaledDotProductAttention(q, k, v, { scale, mask });
    return this.out_proj.forward(flatten(transpose(o, [0, 2, 1, 3]), -2, -1));
  }
  /** An additive mask (N, N): 0 on and below the diagonal, the dtype's lowest value above. */
  static createAdditiveCausalMask(N: number, dtype: DtypeLike = float32): MxArray {
    const d: Dtype = toDtype(dtype);
    const idx = arange(N);
    const mask = less(expandDims(idx, 1), expandDims(idx, 0));
    return multiply(mask.astype(d), finfo(d).min);
  }
}

type Activation = (x: MxArray) => MxArray;

/** Options shared by the transformer layers. */
export interface TransformerLayerOptions {
  mlpDims?: number | null;
  dropout?: number;
  activation?: Activation;
  normFirst?: boolean;
}

/** One encoder block: self-attention and an MLP, each with a residual and a LayerNorm. */
export class TransformerEncoderLayer extends Module {
  attention: MultiHeadAttention;
  ln1: LayerNorm;
  ln2: LayerNorm;
  linear1: Linear;
  linear2: Linear;
  dropout1: Dropout;
  dropout2: Dropout;
  activation: Activation;
  normFirst: boolean;
  constructor(dims: number, numHeads: number, options: TransformerLayerOptions = {}) {
    super();
    const mlp = options.mlpDims || dims * 4;
    this.attention = new MultiHeadAttention(dims, numHeads);
    this.ln1 = new LayerNorm(dims);
    this.ln2 = new LayerNorm(dims);
    this.linear1 = new Linear(dims, mlp);
    this.linear2 = new Linear(mlp, dims);
    this.dropout1 = new Dropout(options.dropout ?? 0.0);
    this.dropout2 = new Dropout(options.dropout ?? 0.0);
    this.activation = options.activation ?? relu;
    this.normFirst = options.normFirst ?? true;
  }
  forward(x: MxArray, mask: MxArray | "causal" | null): MxArray {
    let y: MxArray;
    if (this.normFirst) {
      y = this.ln1.forward(x);
      y = this.attention.forward(y, y, y, mask);
      y = this.dropout1.forward(y);
      x = add(x, y);
      y = this.ln2.forward(x);
      y = this.linear1.forward(y);
      y = this.activation(y);
      y = this.dropout2.forward(y);
      y = this.linear2.forward(y);
      return add(x, y);
    }
    y = this.attention.forward(x, x, x, mask);
    y = this.dropout1.forward(y);
    x = this.ln1.forward(add(x, y));
    y = this.linear1.forward(x);
    y = this.activation(y);
    y = this.dropout2.forward(y);
    y = this.linear2.forward(y);
    return this.ln2.forward(add(x, y));
  }
}

/** A stack of `numLayers` encoder blocks and a final LayerNorm. */
export class TransformerEncoder extends Module {
  layers: TransformerEncoderLayer[];
  ln: LayerNorm;
  constructor(numLayers: number, dims: number, numHeads: number, options: TransformerLayerOptions & { checkpoint?: boolean } = {}) {
    super();
    this.layers = Array.from({ length: numLayers }, () => new TransformerEncoderLayer(dims, numHeads, options));
    this.ln = new LayerNorm(dims);
    this.checkpoint = options.checkpoint ?? false;
  }
  checkpoint: boolean;
  forward(x: MxArray, mask: MxArray | "causal" | null): MxArray {
    for (const l of this.layers) x = this.checkpoint ? (checkpointModule(l)(x, mask) as MxArray) : l.forward(x, mask);
    return this.ln.forward(x);
  }
}

/** One decoder block: self-attention, cross-attention over `memory`, and an MLP. */
export class TransformerDecoderLayer extends Module {
  self_attention: MultiHeadAttention;
  cross_attention: MultiHeadAttention;
  ln1: LayerNorm;
  ln2: LayerNorm;
  ln3: LayerNorm;
  linear1: Linear;
  linear2: Linear;
  dropout1: Dropout;
  dropout2: Dropout;
  dropout3: Dropout;
  activation: Activation;
  normFirst: boolean;
  constructor(dims: number, numHeads: number, options: TransformerLayerOptions = {}) {
    super();
    const mlp = options.mlpDims || dims * 4;
    this.self_attention = new MultiHeadAttention(dims, numHeads);
    this.cross_attention = new MultiHeadAttention(dims, numHeads);
    this.ln1 = new LayerNorm(dims);
    this.ln2 = new LayerNorm(dims);
    this.ln3 = new LayerNorm(dims);
    this.linear1 = new Linear(dims, mlp);
    this.linear2 = new Linear(mlp, dims);
    this.dropout1 = new Dropout(options.dropout ?? 0.0);
    this.dropout2 = new Dropout(options.dropout ?? 0.0);
    this.dropout3 = new Dropout(options.dropout ?? 0.0);
    this.activation = options.activation ?? relu;
    this.normFirst = options.normFirst ?? true;
  }
  forward(x: MxArray, memory: MxArray, xMask: MxArray | "causal" | null, memoryMask: MxArray | null): MxArray {
    let y: MxArray;
    if (this.normFirst) {
      y = this.ln1.forward(x);
      y = this.self_attention.forward(y, y, y, xMask);
      x = add(x, this.dropout1.forward(y));
      y = this.ln2.forward(x);
      y = this.cross_attention.forward(y, memory, memory, memoryMask);
      x = add(x, this.dropout2.forward(y));
      y = this.ln3.forward(x);
      y = this.linear2.forward(this.dropout3.forward(this.activation(this.linear1.forward(y))));
      return add(x, y);
    }
    y = this.self_attention.forward(x, x, x, xMask);
    x = this.ln1.forward(add(x, this.dropout1.forward(y)));
    y = this.cross_attention.forward(x, memory, memory, memoryMask);
    x = this.ln2.forward(add(x, this.dropout2.forward(y)));
    y = this.linear2.forward(this.dropout3.forward(this.activation(this.linear1.forward(x))));
    return this.ln3.forward(add(x, y));
  }
}

/** A stack of `numLayers` decoder blocks and a final LayerNorm. */
export class TransformerDecoder extends Module {
  layers: TransformerDecoderLayer[];
  ln: LayerNorm;
  constructor(numLayers: number, dims: number, numHeads: number, options: TransformerLayerOptions & { checkpoint?: boolean } = {}) {
    super();
    this.layers = Array.from({ length: numLayers }, () => new TransformerDecoderLayer(dims, numHeads, options));
    this.ln = new LayerNorm(dims);
    this.checkpoint = options.checkpoint ?? false;
  }
  checkpoint: boolean;
  forward(x: MxArray, memory: MxArray, xMask: MxArray | "causal" | null, memoryMask: MxArray | null): MxArray {
    for (const l of this.layers) x = this.checkpoint ? (checkpointModule(l)(x, memory, xMask, memoryMask) as MxArray) : l.forward(x, memory, xMask, memoryMask);
    return this.ln.forward(x);
  }
}

/** Encoder-decoder transformer (MLX defaults: dims 512, 8 heads, 6 + 6 layers). */
export class Transformer extends Module {
  encoder: Module & { forward: Fn };
  decoder: Module & { forward: Fn };
  constructor(
    options: TransformerLayerOptions & {
      dims?: number;
      numHeads?: number;
      numEncoderLayers?: number;
      numDecoderLayers?: number;
      customEncoder?: Module & { forward: Fn };
      customDecoder?: Module & { forward: Fn };
      checkpoint?: boolean;
    } = {},
  ) {
    super();
    const dims = options.dims ?? 512;
    const heads = options.numHeads ?? 8;
    this.encoder = options.customEncoder ?? new TransformerEncoder(options.numEncoderLayers ?? 6, dims, heads, options);
    this.decoder = options.customDecoder ?? new TransformerDecoder(options.numDecoderLayers ?? 6, dims, heads, options);
  }
  forward(src: MxArray, tgt: MxArray, srcMask: MxArray | "causal" | null, tgtMask: MxArray | "causal" | null, memoryMask: MxArray | null): MxArray {
    const memory = this.encoder.forward(src, srcMask);
    return this.decoder.forward(tgt, memory, tgtMask, memoryMask);
  }
}

// ---------------------------------------------------------------------------------------------
// Recurrent layers: inputs (N, L, D) or (L, D); outputs every step's hidden state.

/** Elman RNN: `h_t = nonlinearity(x_t Wxh^T + h_{t-1} Whh^T + b)` (default tanh). */
export class RNN extends Module {
  Wxh: MxArray;
  Whh: MxArray;
  bias?: MxArray;
  nonlinearity: Activation;
  hiddenSize: number;
  constructor(inputSize: number, hiddenSize: number, bias = true, nonlinearity: Activation | null = null) {
    super();
    this.nonlinearity = nonlinearity ?? tanh;
    if (typeof this.nonlinearity !== "function") throw new Error(`Nonlinearity must be callable. Current value: ${String(nonlinearity)}.`);
    const scale = 1.0 / Math.sqrt(hiddenSize);
    this.hiddenSize = hiddenSize;
    this.Wxh = random.uniform({ low: -scale, high: scale, shape: [hiddenSize, inputSize] });
    this.Whh = random.uniform({ low: -scale, high: scale, shape: [hiddenSize, hiddenSize] });
    if (bias) this.bias = random.uniform({ low: -scale, high: scale, shape: [hiddenSize] });
    else delete this.bias;
  }
  protected override extraRepr(): string {
    return `input_dims=${this.Wxh.shape[1]}, hidden_size=${this.hiddenSize}, nonlinearity=<function ${this.nonlinearity.name}>, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x: MxArray, hidden: MxArray | null = null): MxArray {
    x = this.bias !== undefined ? addmm(this.bias, x, T(this.Wxh)) : matmul(x, T(this.Wxh));
    const all: MxArray[] = [];
    const L = x.shape[x.ndim - 2]!;
    for (let i = 0; i < L; i++) {
      const xi = take(x, i, -2);
      hidden = hidden !== null ? addmm(xi, hidden, T(this.Whh)) : xi;
      hidden = this.nonlinearity(hidden);
      all.push(hidden);
    }
    return stack(all, -2);
  }
}

/** Gated recurrent unit (MLX's gate layout r, z, n; `bhn` is the hidden bias of n). */
export class GRU extends Module {
  Wx: MxArray;
  Wh: MxArray;
  b?: MxArray;
  bhn?: MxArray;
  hiddenSize: number;
  constructor(inputSize: number, hiddenSize: number, bias = true) {
    super();
    this.hiddenSize = hiddenSize;
    const scale = 1.0 / Math.sqrt(hiddenSize);
    this.Wx = random.uniform({ low: -scale, high: scale, shape: [3 * hiddenSize, inputSize] });
    this.Wh = random.uniform({ low: -scale, high: scale, shape: [3 * hiddenSize, hiddenSize] });
    if (bias) {
      this.b = random.uniform({ low: -scale, high: scale, shape: [3 * hiddenSize] });
      this.bhn = random.uniform({ low: -scale, high: scale, shape: [hiddenSize] });
    } else {
      delete this.b;
      delete this.bhn;
    }
  }
  protected override extraRepr(): string {
    return `input_dims=${this.Wx.shape[1]}, hidden_size=${this.hiddenSize}, bias=${pyBool(this.b !== undefined)}`;
  }
  forward(x: MxArray, hidden: MxArray | null = null): MxArray {
    const H = this.hiddenSize;
    x = this.b !== undefined ? addmm(this.b, x, T(this.Wx)) : matmul(x, T(this.Wx));
    const xrz = x.index("...", sl(null, -H));
    const xn = x.index("...", sl(-H, null));
    const all: MxArray[] = [];
    const L = x.shape[x.ndim - 2]!;
    for (let i = 0; i < L; i++) {
      let rz = take(xrz, i, -2);
      let hpn: MxArray | null = null;
      if (hidden !== null) {
        const hp = matmul(hidden, T(this.Wh));
        const hprz = hp.index("...", sl(null, -H));
        hpn = hp.index("...", sl(-H, null));
        if (this.bhn !== undefined) hpn = add(hpn, this.bhn);
        rz = add(rz, hprz);
      }
      rz = sigmoid(rz);
      const [r, z] = split(rz, 2, -1) as [MxArray, MxArray];
      let n = take(xn, i, -2);
      if (hidden !== null) n = add(n, multiply(r, hpn!));
      else if (this.bhn !== undefined) n = add(n, multiply(r, this.bhn));
      n = mxTanh(n);
      hidden = hidden !== null ? add(multiply(subtract(1, z), n), multiply(z, hidden)) : multiply(subtract(1, z), n);
      all.push(hidden);
    }
    return stack(all, -2);
  }
}

/** Long short-term memory (gates i, f, g, o); `forward` returns [hiddens, cells]. */
export class LSTM extends Module {
  Wx: MxArray;
  Wh: MxArray;
  bias?: MxArray;
  hiddenSize: number;
  constructor(inputSize: number, hiddenSize: number, bias = true) {
    super();
    this.hiddenSize = hiddenSize;
    const scale = 1.0 / Math.sqrt(hiddenSize);
    this.Wx = random.uniform({ low: -scale, high: scale, shape: [4 * hiddenSize, inputSize] });
    this.Wh = random.uniform({ low: -scale, high: scale, shape: [4 * hiddenSize, hiddenSize] });
    if (bias) this.bias = random.uniform({ low: -scale, high: scale, shape: [4 * hiddenSize] });
    else delete this.bias;
  }
  protected override extraRepr(): string {
    return `input_dims=${this.Wx.shape[1]}, hidden_size=${this.hiddenSize}, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x: MxArray, hidden: MxArray | null = null, cell: MxArray | null = null): [MxArray, MxArray] {
    x = this.bias !== undefined ? addmm(this.bias, x, T(this.Wx)) : matmul(x, T(this.Wx));
    const hs: MxArray[] = [];
    const cs: MxArray[] = [];
    const L = x.shape[x.ndim - 2]!;
    for (let t = 0; t < L; t++) {
      let ifgo = take(x, t, -2);
      if (hidden !== null) ifgo = addmm(ifgo, hidden, T(this.Wh));
      let [i, f, g, o] = split(ifgo, 4, -1) as [MxArray, MxArray, MxArray, MxArray];
      i = sigmoid(i);
      f = sigmoid(f);
      g = mxTanh(g);
      o = sigmoid(o);
      cell = cell !== null ? add(multiply(f, cell), multiply(i, g)) : multiply(i, g);
      hidden = multiply(o, mxTanh(cell));
      cs.push(cell);
      hs.push(hidden);
    }
    return [stack(hs, -2), stack(cs, -2)];
  }
}

// ---------------------------------------------------------------------------------------------
// Pooling: inputs (N, ...spatial, C)

function slidingWindows(x: MxArray, window: number[], strides: number[]): MxArray {
  if (x.ndim < 3) {
    throw new Error(`To extract sliding windows at least 1 spatial dimension (3 total) is needed but the input only has ${x.ndim} dimensions.`);
  }
  const spatial = x.shape.slice(1, -1);
  if (!(spatial.length === window.length && window.length === strides.length)) {
    throw new Error(
      `To extract sliding windows the window shapes and strides must have the same number of spatial dimensions as the signal but the signal has ${spatial.length} dims and the window shape has ${window.length} and strides have ${strides.length}.`,
    );
  }
  const shape = x.shape;
  if (spatial.every((s, i) => window[i] === strides[i] && s % window[i]! === 0)) {
    const ns = [shape[0]!];
    spatial.forEach((s, i) => ns.push(Math.floor(s / window[i]!), window[i]!));
    ns.push(shape[shape.length - 1]!);
    const last = ns.length - 1;
    const order = [0];
    for (let i = 1; i < last; i += 2) order.push(i);
    for (let i = 2; i < last; i += 2) order.push(i);
    order.push(last);
    return transpose(reshape(x, ns), order);
  }
  const st: number[] = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) st[i] = st[i + 1]! * shape[i + 1]!;
  const finalShape = [shape[0]!, ...spatial.map((s, i) => Math.floor((s - window[i]!) / strides[i]!) + 1), ...window, shape[shape.length - 1]!];
  const finalStrides = [st[0]!, ...st.slice(1, -1).map((s, i) => s * strides[i]!), ...st.slice(1, -1), st[st.length - 1]!];
  return asStrided(x, finalShape, finalStrides);
}

const tup = (v: readonly number[]) => `(${v.join(", ")}${v.length === 1 ? "," : ""})`;

function valueOrList(x: number | readonly number[], n: number, msg: string): number[] {
  if (Array.isArray(x)) {
    if (x.length !== n) throw new Error(msg);
    return [...x];
  }
  if (typeof x !== "number" || !Number.isInteger(x)) throw new Error(msg);
  return new Array(n).fill(x);
}

class Pool extends Module {
  _kernelSize: number[];
  _stride: number[];
  _padding: [number, number][];
  _paddingValue: number;
  _axes: number[];
  _max: boolean;
  constructor(isMax: boolean, n: number, kernelSize: number | readonly number[], stride: number | readonly number[] | null, padding: number | readonly number[]) {
    super();
    const name = new.target.name;
    const msg = (what: string) => `[${name}] '${what}' must be an integer or a tuple containing ${n} integer${n > 1 ? "s" : ""}`;
    const ks = valueOrList(kernelSize, n, msg("kernel_size"));
    const st = stride !== null && stride !== undefined ? valueOrList(stride, n, msg("stride")) : ks;
    const pd = valueOrList(padding, n, msg("padding"));
    for (const [nm, vals] of [["kernel_size", ks], ["stride", st]] as const) {
      if (vals.some((v) => v <= 0)) throw new Error(`[${name}] '${nm}' must be positive but got ${tup(vals)}.`);
    }
    if (pd.some((p) => p < 0)) throw new Error(`[${name}] 'padding' must be non-negative but got ${tup(pd)}.`);
    this._max = isMax;
    this._kernelSize = ks;
    this._stride = st;
    this._padding = pd.map((p) => [p, p]);
    this._paddingValue = isMax ? -Infinity : 0;
    this._axes = ks.map((_, i) => -ks.length - 1 + i);
  }
  protected override extraRepr(): string {
    return `kernel_size=${tup(this._kernelSize)}, stride=${tup(this._stride)}, padding=${tup(this._padding.map(([p]) => p))}`;
  }
  forward(x: MxArray): MxArray {
    if (this._padding.some(([p]) => p > 0)) x = pad(x, [[0, 0], ...this._padding, [0, 0]], "constant", this._paddingValue);
    x = slidingWindows(x, this._kernelSize, this._stride);
    return this._max ? max(x, { axis: this._axes }) : mean(x, { axis: this._axes });
  }
}

type IntOrTuple = number | readonly number[];
/** Max pooling over (N, L, C) inputs; stride defaults to the kernel size. */
export class MaxPool1d extends Pool {
  constructor(kernelSize: IntOrTuple, stride: IntOrTuple | null = null, padding: IntOrTuple = 0) {
    super(true, 1, kernelSize, stride, padding);
  }
}
/** Average pooling over (N, L, C) inputs. */
export class AvgPool1d extends Pool {
  constructor(kernelSize: IntOrTuple, stride: IntOrTuple | null = null, padding: IntOrTuple = 0) {
    super(false, 1, kernelSize, stride, padding);
  }
}
/** Max pooling over (N, H, W, C) inputs. */
export class MaxPool2d extends Pool {
  constructor(kernelSize: IntOrTuple, stride: IntOrTuple | null = null, padding: IntOrTuple = 0) {
    super(true, 2, kernelSize, stride, padding);
  }
}
/** Average pooling over (N, H, W, C) inputs. */
export class AvgPool2d extends Pool {
  constructor(kernelSize: IntOrTuple, stride: IntOrTuple | null = null, padding: IntOrTuple = 0) {
    super(false, 2, kernelSize, stride, padding);
  }
}
/** Max pooling over (N, D, H, W, C) inputs. */
export class MaxPool3d extends Pool {
  constructor(kernelSize: IntOrTuple, stride: IntOrTuple | null = null, padding: IntOrTuple = 0) {
    super(true, 3, kernelSize, stride, padding);
  }
}
/** Average pooling over (N, D, H, W, C) inputs. */
export class AvgPool3d extends Pool {
  constructor(kernelSize: IntOrTuple, stride: IntOrTuple | null = null, padding: IntOrTuple = 0) {
    super(false, 3, kernelSize, stride, padding);
  }
}

// ---------------------------------------------------------------------------------------------
// Upsample (nearest, linear, cubic; antialiased linear and cubic)

function nearestIndices(N: number, scale: number, dim: number, ndims: number): MxArray {
  const M = Math.trunc(scale * N);
  let idx = arange(0, M, 1, { dtype: float32 });
  if (M > N) idx = round(subtract(multiply(add(idx, 0.5), N / M), 0.5));
  else idx = multiply(idx, N / M);
  const shape = new Array(ndims).fill(1);
  shape[dim] = -1;
  return reshape(idx.astype(uint32), shape);
}

function scaledIndices(N: number, scale: number, alignCorners: boolean, dim: number, ndims: number): MxArray {
  const M = Math.trunc(scale * N);
  let idx: MxArray;
  if (alignCorners) idx = multiply(arange(0, M, 1, { dtype: float32 }), (N - 1) / Math.max(M - 1, 1));
  else {
    const stepv = 1 / scale;
    const start = ((M - 1) * stepv - N + 1) / 2;
    idx = subtract(multiply(arange(0, M, 1, { dtype: float32 }), stepv), start);
  }
  const shape = new Array(ndims).fill(1);
  shape[dim] = -1;
  return reshape(idx, shape);
}

function linearIndices(N: number, scale: number, alignCorners: boolean, dim: number, ndims: number): [MxArray, MxArray][] {
  let idx = scaledIndices(N, scale, alignCorners, dim, ndims);
  idx = clip(idx, 0, N - 1);
  const l = floor(idx);
  const r = ceil(idx);
  const w = expandDims(subtract(idx, l), -1);
  return [
    [l.astype(uint32), subtract(1, w)],
    [r.astype(uint32), w],
  ];
}

type IdxW = [MxArray, MxArray];
type IndicesFn = (N: number, scale: number, alignCorners: boolean, dim: number, ndims: number) => IdxW[];

function cubicIndices(N: number, scale: number, alignCorners: boolean, dim: number, ndims: number): IdxW[] {
  const idx = scaledIndices(N, scale, alignCorners, dim, ndims);
  const l1 = floor(idx);
  const r1 = floor(add(idx, 1));
  const l2 = subtract(l1, 1);
  const r2 = add(r1, 1);
  const weight = (grid: MxArray, dist: number) => {
    const a = -0.75;
    const x = abs(subtract(idx, grid));
    const w = dist === 1
      ? add(multiply(multiply(subtract(multiply(a + 2.0, x), a + 3.0), x), x), 1)
      : multiply(subtract(multiply(add(multiply(subtract(x, 5), x), 8), x), 4), a);
    return expandDims(w, -1);
  };
  const c = (v: MxArray) => clip(v, 0, N - 1).astype(uint32);
  return [[c(l1), weight(l1, 1)], [c(r1), weight(r1, 1)], [c(l2), weight(l2, 2)], [c(r2), weight(r2, 2)]];
}

function aaIndices(kernel: (x: MxArray) => MxArray, radius: number): IndicesFn {
  return (N, scale, alignCorners, dim, ndims) => {
    const idx = scaledIndices(N, scale, alignCorners, dim, ndims);
    const inv = scale < 1 ? 1.0 / scale : 1.0;
    const taps = Math.ceil(radius * inv) + 1;
    const all: [MxArray, MxArray][] = [];
    for (let k = -taps + 1; k < taps; k++) {
      const i = add(floor(idx), k);
      let w = kernel(divide(abs(subtract(idx, i)), inv));
      w = where(logicalAnd(greaterEqual(i, 0), less(i, N)), w, 0.0);
      all.push([i, w]);
    }
    // Python's sum() starts from the integer 0.
    let wsum = all.reduce<MxArray | number>((acc, [, w]) => (typeof acc === "number" ? add(w, acc) : add(acc, w)), 0) as MxArray;
    wsum = where(greater(wsum, 0), wsum, 1.0);
    return all.map(([i, w]) => [clip(i, 0, N - 1).astype(uint32), expandDims(divide(w, wsum), -1)]);
  };
}

const triangleKernel = (x: MxArray) => maximum(subtract(1.0, x), 0.0);
function cubicKernel(x: MxArray): MxArray {
  const a = -0.5;
  const inner = add(multiply(multiply(subtract(multiply(a + 2.0, x), a + 3.0), x), x), 1);
  const outer = multiply(subtract(multiply(add(multiply(subtract(x, 5), x), 8), x), 4), a);
  return where(lessEqual(x, 1.0), inner, where(lessEqual(x, 2.0), outer, 0.0));
}

/** Python's sum() of arrays: 0 + a + b + ... */
function pySum(xs: MxArray[]): MxArray {
  return xs.slice(1).reduce((acc, v) => add(acc, v), add(xs[0]!, 0));
}

function interpolate(x: MxArray, sf: number[], fn: IndicesFn, alignCorners: boolean): MxArray {
  const dims = x.ndim - 2;
  const N = x.shape.slice(1, -1);
  const idxs = N.map((n, i) => fn(n, sf[i]!, alignCorners, i, dims));
  const terms: MxArray[] = [];
  const rec = (d: number, chosen: IdxW[]) => {
    if (d === dims) {
      const sample = x.index(sl(), ...chosen.map(([idx]) => idx));
      const w = chosen.map(([, wt]) => wt).reduce((a, b) => multiply(a, b));
      terms.push(multiply(w, sample));
      return;
    }
    for (const c of idxs[d]!) rec(d + 1, [...chosen, c]);
  };
  rec(0, []);
  return pySum(terms);
}

function interpolateSeparable(x: MxArray, sf: number[], fn: IndicesFn, alignCorners: boolean): MxArray {
  const dims = x.ndim - 2;
  let out = x;
  x.shape.slice(1, -1).forEach((n, i) => {
    out = pySum(fn(n, sf[i]!, alignCorners, i, dims).map(([idx, w]) => multiply(take(out, reshape(idx, [-1]), i + 1), w)));
  });
  return out;
}

/** Upsample (N, ...spatial, C) inputs by `scaleFactor` with "nearest" or "linear" interpolation. */
export class Upsample extends Module {
  scaleFactor: number | number[];
  mode: string;
  alignCorners: boolean;
  antialias: boolean;
  constructor(scaleFactor: number | readonly number[], mode: "nearest" | "linear" | "cubic" = "nearest", alignCorners = false, antialias = false) {
    super();
    if (!["nearest", "linear", "cubic"].includes(mode)) throw new Error(`[Upsample] Got unsupported upsampling algorithm: ${mode}`);
    if (antialias && mode === "nearest") throw new Error("[Upsample] Antialiasing is not supported for nearest neighbor upsampling");
    if (antialias && alignCorners) {
      throw new Error("[Upsample] antialias=True with align_corners=True is not supported. Use align_corners=False for antialiased interpolation.");
    }
    this.scaleFactor = typeof scaleFactor === "number" ? scaleFactor : [...scaleFactor];
    this.mode = mode;
    this.alignCorners = alignCorners;
    this.antialias = antialias;
  }
  protected override extraRepr(): string {
    return `scale_factor=${Array.isArray(this.scaleFactor) ? `(${this.scaleFactor.map(pyFloat).join(", ")})` : pyFloat(this.scaleFactor)}, mode='${this.mode}', align_corners=${pyBool(this.alignCorners)}${this.antialias ? ", antialias=True" : ""}`;
  }
  forward(x: MxArray): MxArray {
    const dims = x.ndim - 2;
    if (dims <= 0) {
      throw new Error(`[Upsample] The input should have at least 1 spatial dimension which means it should be at least 3D but ${x.ndim}D was provided`);
    }
    let sf: number[];
    if (Array.isArray(this.scaleFactor)) {
      if (this.scaleFactor.length !== dims) {
        throw new Error(`[Upsample] One scale per spatial dimension is required but scale_factor=(${this.scaleFactor.join(", ")}) and the number of spatial dimensions were ${dims}`);
      }
      sf = this.scaleFactor;
    } else sf = new Array(dims).fill(this.scaleFactor);
    const N = x.shape.slice(1, -1);
    if (this.mode === "nearest") {
      if (sf.every((s) => Number.isInteger(s))) {
        const shape = [...x.shape];
        for (let d = 0; d < dims; d++) shape.splice(2 + 2 * d, 0, 1);
        let y = reshape(x, shape);
        for (let d = 0; d < dims; d++) shape[2 + 2 * d] = sf[d]!;
        y = broadcastTo(y, shape);
        for (let d = 0; d < dims; d++) {
          shape[d + 1] = shape[d + 1]! * shape[d + 2]!;
          shape.splice(d + 2, 1);
        }
        return reshape(y, shape);
      }
      return x.index(sl(), ...N.map((n, i) => nearestIndices(n, sf[i]!, i, dims)));
    }
    if (this.mode === "linear") {
      if (this.antialias) return interpolateSeparable(x, sf, aaIndices(triangleKernel, 1.0), this.alignCorners);
      if (!this.alignCorners) return interpolateSeparable(x, sf, linearIndices, false);
      return interpolate(x, sf, linearIndices, true);
    }
    if (this.antialias) return interpolateSeparable(x, sf, aaIndices(cubicKernel, 2.0), this.alignCorners);
    return interpolate(x, sf, cubicIndices, this.alignCorners);
  }
}
