// Quantized layers of mlx.nn (mlx/nn/layers/quantized.py) over mx.quantize, mx.quantizedMatmul
// and mx.dequantize: QuantizedLinear, QuantizedEmbedding and nn.quantize(model, ...), which
// replaces a model's Linear and Embedding leaves (any leaf with `toQuantized`) in place. The
// quantized parameters are frozen as in MLX.
import type { MxArray } from "../array";
import { zeros } from "../creation";
import * as random from "../random";
import { add, take } from "../ops/index";
import { dequantize, qqmm, quantize as mxQuantize, quantizedMatmul, type QuantizationMode } from "../ops/quantized";
import { treeMapWithPath } from "../utils";
import { Module, pyBool } from "./module";

const MODE_DEFAULTS: Record<string, [number, number]> = { affine: [64, 4], mxfp4: [32, 4], nvfp4: [16, 4], mxfp8: [32, 8] };

/** MLX's defaults per mode: `[groupSize, bits]`. */
function defaultsForMode(mode: string, groupSize: number | null | undefined, bits: number | null | undefined): [number, number] {
  const d = MODE_DEFAULTS[mode];
  if (d === undefined) throw new Error(`Invalid quantization mode '${mode}'. Valid modes are: ${Object.keys(MODE_DEFAULTS).join(", ")}.`);
  return [groupSize || d[0], bits || d[1]];
}

/** Quantization settings of a layer (each optional: MLX's per-mode defaults). */
export interface QuantizedLayerOptions {
  groupSize?: number | null;
  bits?: number | null;
  mode?: QuantizationMode;
}

/** Options of {@link quantize} and `toQuantized`. */
export interface QuantizeModelOptions extends QuantizedLayerOptions {
  /** Quantize activations too: Linear layers become QQLinear (nvfp4 and mxfp8 modes only). */
  quantizeInput?: boolean;
  /**
   * Which leaf modules to quantize, by path and module: `true`, `false`, or the options to pass to
   * that module's `toQuantized`. Default: every module with a `toQuantized` method.
   */
  classPredicate?: ((path: string, module: Module) => boolean | QuantizedLayerOptions) | null;
}

/** Set the quantized members: weight, scales, and biases (affine) or `null`. */
function setQuantized(m: { weight: MxArray; scales: MxArray; biases: MxArray | null }, parts: MxArray[]): void {
  m.weight = parts[0]!;
  m.scales = parts[1]!;
  m.biases = parts[2] ?? null;
}

/**
 * A Linear layer with a quantized weight matrix: `y = x dequantize(W)^T + b` through
 * mx.quantizedMatmul. `(inputDims, outputDims, bias = true, groupSize?, bits?, mode = "affine")`.
 * @example const q = nn.QuantizedLinear.fromLinear(new nn.Linear(128, 64), 64, 4)
 */
export class QuantizedLinear extends Module {
  groupSize: number;
  bits: number;
  mode: QuantizationMode;
  weight!: MxArray;
  scales!: MxArray;
  biases!: MxArray | null;
  bias?: MxArray;

  constructor(inputDims: number, outputDims: number, bias = true, groupSize: number | null = null, bits: number | null = null, mode: QuantizationMode = "affine") {
    super();
    [this.groupSize, this.bits] = defaultsForMode(mode, groupSize, bits);
    this.mode = mode;
    const scale = Math.sqrt(1 / inputDims);
    const w = random.uniform({ low: -scale, high: scale, shape: [outputDims, inputDims] });
    setQuantized(this, mxQuantize(w, { groupSize, bits, mode }));
    if (bias) this.bias = zeros([outputDims]);
    else delete this.bias;
    this.freeze();
  }

  protected override extraRepr(): string {
    const [outDims, inW] = this.weight.shape as [number, number];
    const inDims = Math.floor((inW * 32) / this.bits);
    return `input_dims=${inDims}, output_dims=${outDims}, bias=${pyBool(this.bias !== undefined)}, group_size=${this.groupSize}, bits=${this.bits}, mode=${this.mode}`;
  }

  forward(x: MxArray): MxArray {
    const y = quantizedMatmul(x, this.weight, this.scales, this.biases, { transpose: true, groupSize: this.groupSize, bits: this.bits, mode: this.mode });
    return this.bias !== undefined ? add(y, this.bias) : y;
  }

  /** A QuantizedLinear from a Linear layer (its bias is kept, and stays trainable, as in MLX). */
  static fromLinear(linear: Module & { weight: MxArray; bias?: MxArray }, groupSize: number | null = null, bits: number | null = null, mode: QuantizationMode = "affine"): QuantizedLinear {
    const [outputDims, inputDims] = linear.weight.shape as [number, number];
    const ql = new QuantizedLinear(inputDims, outputDims, false, groupSize, bits, mode);
    setQuantized(ql, mxQuantize(linear.weight, { groupSize, bits, mode }));
    if (linear.bias !== undefined) ql.bias = linear.bias;
    return ql;
  }
}

/**
 * An Embedding with a quantized table: rows are looked up quantized and dequantized.
 * `(numEmbeddings, dims, groupSize?, bits?, mode = "affine")`.
 * @example const q = nn.QuantizedEmbedding.fromEmbedding(new nn.Embedding(100, 64), 32, 8)
 */
export class QuantizedEmbedding extends Module {
  groupSize: number;
  bits: number;
  mode: QuantizationMode;
  numEmbeddings: number;
  dims: number;
  weight!: MxArray;
  scales!: MxArray;
  biases!: MxArray | null;

  constructor(numEmbeddings: number, dims: number, groupSize: number | null = null, bits: number | null = null, mode: QuantizationMode = "affine") {
    super();
    [this.groupSize, this.bits] = defaultsForMode(mode, groupSize, bits);
    this.mode = mode;
    const scale = Math.sqrt(1 / dims);
    const w = random.normal({ shape: [numEmbeddings, dims], scale });
    setQuantized(this, mxQuantize(w, { groupSize, bits, mode }));
    this.numEmbeddings = numEmbeddings;
    this.dims = dims;
    this.freeze();
  }

  forward(x: MxArray): MxArray {
    return dequantize(take(this.weight, x, 0), take(this.scales, x, 0), this.biases !== null ? take(this.biases, x, 0) : null, {
      groupSize: this.groupSize,
      bits: this.bits,
      mode: this.mode,
    });
  }

  /** Use the quantized table as an output projection (`x W^T`, tied embeddings). */
  asLinear(x: MxArray): MxArray {
    return quantizedMatmul(x, this.weight, this.scales, this.biases, { transpose: true, groupSize: this.groupSize, bits: this.bits, mode: this.mode });
  }

  protected override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.dims}, group_size=${this.groupSize}, bits=${this.bits}, mode=${this.mode}`;
  }

  /** A QuantizedEmbedding from an Embedding layer. */
  static fromEmbedding(embedding: Module & { weight: MxArray }, groupSize: number | null = null, bits: number | null = null, mode: QuantizationMode = "affine"): QuantizedEmbedding {
    const [n, dims] = embedding.weight.shape as [number, number];
    const ql = new QuantizedEmbedding(n, dims, groupSize, bits, mode);
    setQuantized(ql, mxQuantize(embedding.weight, { groupSize, bits, mode }));
    return ql;
  }
}

type Quantizable = Module & { toQuantized(options?: QuantizeModelOptions): Module };

function hasToQuantized(m: Module): m is Quantizable {
  return typeof (m as { toQuantized?: unknown }).toQuantized === "function";
}

/**
 * Quantize a model's leaf modules in place: by default every Linear and Embedding (every leaf
 * with a `toQuantized` method) becomes a QuantizedLinear / QuantizedEmbedding.
 * @example nn.quantize(model, { groupSize: 64, bits: 4 })
 * @example nn.quantize(model, { classPredicate: (path, m) => m instanceof nn.Linear && path !== "head" })
 */
export function quantize(model: Module, options: QuantizeModelOptions = {}): void {
  const { groupSize = null, bits = null, mode = "affine", quantizeInput = false } = options;
  const predicate = options.classPredicate ?? ((_p: string, m: Module) => hasToQuantized(m));
  const maybe = (path: string | undefined, m: Module): Module => {
    const r = predicate(path ?? "", m);
    if (!r) return m;
    if (!hasToQuantized(m)) throw new Error(`Unable to quantize model of type <class '${m.constructor.name}'>`);
    if (r === true) return m.toQuantized(quantizeInput ? { groupSize, bits, mode, quantizeInput } : { groupSize, bits, mode });
    if (typeof r === "object") {
      const o = { ...r } as QuantizeModelOptions;
      if ("quantizeInput" in o && !o.quantizeInput) delete o.quantizeInput;
      return m.toQuantized(o);
    }
    throw new Error("``class_predicate`` must return a bool or a dict of parameters to pass to ``to_quantized``");
  };
  const leaves = treeMapWithPath(maybe, model.leafModules(), [], { isLeaf: Module.isModule });
  model.updateModules(leaves);
}

/**
 * A Linear layer (no bias) whose input is quantized too, through mx.qqmm (MLX's `nn.QQLinear`).
 * In training mode the weight is kept in full precision and quantized on the fly; `eval()`
 * quantizes it (weight and scales), `train()` dequantizes it back. Modes "nvfp4" (default) and
 * "mxfp8". `(inputDims, outputDims, groupSize?, bits?, mode = "nvfp4")`.
 * @example const q = nn.QQLinear.fromLinear(new nn.Linear(128, 64, false), null, null, "nvfp4")
 */
export class QQLinear extends Module {
  groupSize: number;
  bits: number;
  mode: QuantizationMode;
  weight: MxArray;
  scales?: MxArray;
  private quantizedState = false;

  constructor(inputDims: number, outputDims: number, groupSize: number | null = null, bits: number | null = null, mode: QuantizationMode = "nvfp4") {
    super();
    [this.groupSize, this.bits] = defaultsForMode(mode, groupSize, bits);
    this.mode = mode;
    const scale = Math.sqrt(1 / inputDims);
    this.weight = random.uniform({ low: -scale, high: scale, shape: [outputDims, inputDims] });
  }

  protected override extraRepr(): string {
    let [outDims, inDims] = this.weight.shape as [number, number];
    if (this.weight.dtype.name === "uint32") inDims = Math.floor((inDims * 32) / this.bits);
    return `input_dims=${inDims}, output_dims=${outDims}, group_size=${this.groupSize}, bits=${this.bits}, mode=${this.mode}`;
  }

  /** Quantize the weight in place (eval mode). */
  quantize(): void {
    if (this.quantizedState) return;
    const [wq, sc] = mxQuantize(this.weight, { groupSize: this.groupSize, bits: this.bits, mode: this.mode });
    this.weight = wq!;
    this.scales = sc!;
    this.quantizedState = true;
  }

  /** Dequantize the weight in place (training mode). */
  dequantize(): void {
    if (!this.quantizedState) return;
    this.weight = dequantize(this.weight, this.scales!, null, { groupSize: this.groupSize, bits: this.bits, mode: this.mode });
    delete this.scales;
    this.quantizedState = false;
  }

  protected override setTrainingMode(mode: boolean): void {
    super.setTrainingMode(mode);
    if (mode) this.dequantize();
    else this.quantize();
  }

  forward(x: MxArray): MxArray {
    return qqmm(x, this.weight, this.scales ?? null, { groupSize: this.groupSize, bits: this.bits, mode: this.mode });
  }

  /** A QQLinear with `linear`'s weight, in `linear`'s training mode. The linear must have no bias. */
  static fromLinear(linear: Module & { weight: MxArray; bias?: MxArray }, groupSize: number | null = null, bits: number | null = null, mode: QuantizationMode = "nvfp4"): QQLinear {
    const [outputDims, inputDims] = linear.weight.shape as [number, number];
    if (linear.bias !== undefined && linear.bias !== null) throw new Error("QQLinear does not support bias yet.");
    const q = new QQLinear(inputDims, outputDims, groupSize, bits, mode);
    q.weight = linear.weight;
    q.train(linear.training);
    return q;
  }
}
