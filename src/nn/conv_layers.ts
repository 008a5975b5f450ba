// The convolution layers of mlx.nn (mlx/nn/layers/convolution.py, convolution_transpose.py) over
// mx.conv1d/2d/3d and mx.convTranspose1d/2d/3d. Channels last: inputs NLC, NHWC, NDHWC. Weights
// are [out, *kernel, in / groups] drawn uniform in ±sqrt(1 / (in / groups * prod(kernel))) with
// MLX's sampler and order (so the same seed gives MLX's weights); bias zeros [out].
import type { MxArray } from "../array";
import { zeros } from "../creation";
import * as random from "../random";
import { add, conv1d, conv2d, conv3d, convTranspose1d, convTranspose2d, convTranspose3d } from "../ops/index";
import { Module, pyBool } from "./module";

type Tuple<N extends number> = N extends 2 ? readonly [number, number] : N extends 3 ? readonly [number, number, number] : number;
type IntOr<N extends number> = number | Tuple<N>;

/** Options of the convolution layers (the positional arguments after `kernelSize`, by name). */
export interface ConvLayerOptions<P = number | readonly number[]> {
  /** Default 1. */
  stride?: P;
  /** Zero padding on both sides. Default 0. */
  padding?: P;
  /** Default 1. */
  dilation?: P;
  /** Input channels split in this many groups (not for Conv3d / transposed). Default 1. */
  groups?: number;
  /** Add a learnable bias. Default true. */
  bias?: boolean;
}

/** Options of the transposed convolution layers. */
export interface ConvTransposeLayerOptions<P = number | readonly number[]> extends ConvLayerOptions<P> {
  /** Extra size added to one side of each output axis. Default 0. */
  outputPadding?: P;
}

/** Python's repr of an int or a tuple: `3`, `(3, 3)`. */
function pyTuple(v: number | readonly number[]): string {
  if (typeof v === "number") return String(v);
  return v.length === 1 ? `(${v[0]},)` : `(${v.join(", ")})`;
}

function expand(v: number | readonly number[], n: number): number | number[] {
  if (n === 1) return v as number;
  return typeof v === "number" ? Array<number>(n).fill(v) : [...v];
}

/** A configuration field: writable, not enumerable (so not a parameter or child container). */
function config(m: object, key: string, value: unknown): void {
  Object.defineProperty(m, key, { value, writable: true, configurable: true, enumerable: false });
}

function isOptions(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

abstract class ConvBase extends Module {
  weight!: MxArray;
  bias?: MxArray;
  // Configuration, not members (Python keeps these tuples as plain attributes).
  declare stride: number | number[];
  declare padding: number | number[];
  declare dilation: number | readonly number[];

  constructor(nd: number, layer: string, inChannels: number, outChannels: number, kernelSize: number | readonly number[], o: ConvTransposeLayerOptions) {
    super();
    const groups = o.groups ?? 1;
    if (inChannels % groups !== 0) {
      throw new Error(`The number of input channels (${inChannels}) must be divisible by the number of groups (${groups})`);
    }
    const kernel = expand(kernelSize, nd);
    const ks = typeof kernel === "number" ? [kernel] : kernel;
    if (ks.length !== nd) throw new Error(`[${layer}] kernel_size must have ${nd} entries but got ${ks.length}.`);
    const cin = Math.floor(inChannels / groups);
    const scale = Math.sqrt(1 / (cin * ks.reduce((p, k) => p * k, 1)));
    this.weight = random.uniform({ low: -scale, high: scale, shape: [outChannels, ...ks, cin] });
    if (o.bias ?? true) this.bias = zeros([outChannels]);
    else delete this.bias;
    config(this, "stride", expand(o.stride ?? 1, nd));
    config(this, "padding", expand(o.padding ?? 0, nd));
    // MLX keeps dilation as given (an int stays an int).
    config(this, "dilation", o.dilation ?? 1);
  }

  protected kernelRepr(): string {
    const k = this.weight.shape.slice(1, -1);
    return k.length === 1 ? String(k[0]) : pyTuple(k);
  }

  protected addBias(y: MxArray): MxArray {
    return this.bias !== undefined ? add(y, this.bias) : y;
  }
}

function opts<P>(stride: P | ConvTransposeLayerOptions<P> | undefined, rest: ConvTransposeLayerOptions<P>): ConvTransposeLayerOptions<P> {
  if (isOptions(stride)) return stride as ConvTransposeLayerOptions<P>;
  return stride === undefined ? rest : { ...rest, stride: stride as P };
}

/**
 * 1-D convolution over NLC input. Arguments as MLX's: `(inChannels, outChannels, kernelSize,
 * stride = 1, padding = 0, dilation = 1, groups = 1, bias = true)`, or an options object after
 * `kernelSize`.
 * @example new nn.Conv1d(2, 4, 3, { padding: 1 }).forward(mx.ones([1, 8, 2])).shape // [1, 8, 4]
 */
export class Conv1d extends ConvBase {
  groups: number;
  constructor(inChannels: number, outChannels: number, kernelSize: number, stride?: number | ConvLayerOptions<number>, padding = 0, dilation = 1, groups = 1, bias = true) {
    const o = opts(stride, { padding, dilation, groups, bias });
    super(1, "Conv1d", inChannels, outChannels, kernelSize, o);
    this.groups = o.groups ?? 1;
  }
  protected override extraRepr(): string {
    return `${this.weight.shape.at(-1)! * this.groups}, ${this.weight.shape[0]}, kernel_size=${this.kernelRepr()}, stride=${pyTuple(this.stride)}, padding=${pyTuple(this.padding)}, dilation=${pyTuple(this.dilation)}, groups=${this.groups}, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x: MxArray): MxArray {
    return this.addBias(conv1d(x, this.weight, { stride: this.stride as number, padding: this.padding as number, dilation: this.dilation as number, groups: this.groups }));
  }
}

/**
 * 2-D convolution over NHWC input; `kernelSize`, `stride`, `padding`, `dilation` are numbers or
 * `[h, w]`.
 * @example new nn.Conv2d(3, 8, 3, { stride: 2, padding: 1 }).forward(mx.ones([1, 8, 8, 3])).shape // [1, 4, 4, 8]
 */
export class Conv2d extends ConvBase {
  groups: number;
  constructor(inChannels: number, outChannels: number, kernelSize: IntOr<2>, stride?: IntOr<2> | ConvLayerOptions<IntOr<2>>, padding: IntOr<2> = 0, dilation: IntOr<2> = 1, groups = 1, bias = true) {
    const o = opts(stride, { padding, dilation, groups, bias });
    super(2, "Conv2d", inChannels, outChannels, kernelSize, o);
    this.groups = o.groups ?? 1;
  }
  protected override extraRepr(): string {
    return `${this.weight.shape.at(-1)! * this.groups}, ${this.weight.shape[0]}, kernel_size=${this.kernelRepr()}, stride=${pyTuple(this.stride)}, padding=${pyTuple(this.padding)}, dilation=${pyTuple(this.dilation)}, groups=${this.groups}, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x: MxArray): MxArray {
    return this.addBias(
      conv2d(x, this.weight, { stride: this.stride as [number, number], padding: this.padding as [number, number], dilation: this.dilation as number, groups: this.groups }),
    );
  }
}

/**
 * 3-D convolution over NDHWC input (no groups, as MLX).
 * @example new nn.Conv3d(1, 2, 3).forward(mx.ones([1, 4, 4, 4, 1])).shape // [1, 2, 2, 2, 2]
 */
export class Conv3d extends ConvBase {
  constructor(inChannels: number, outChannels: number, kernelSize: IntOr<3>, stride?: IntOr<3> | ConvLayerOptions<IntOr<3>>, padding: IntOr<3> = 0, dilation: IntOr<3> = 1, bias = true) {
    const o = opts(stride, { padding, dilation, bias });
    super(3, "Conv3d", inChannels, outChannels, kernelSize, { ...o, groups: 1 });
  }
  protected override extraRepr(): string {
    return `${this.weight.shape.at(-1)}, ${this.weight.shape[0]}, kernel_size=${this.kernelRepr()}, stride=${pyTuple(this.stride)}, padding=${pyTuple(this.padding)}, dilation=${pyTuple(this.dilation)}, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x: MxArray): MxArray {
    return this.addBias(
      conv3d(x, this.weight, { stride: this.stride as [number, number, number], padding: this.padding as [number, number, number], dilation: this.dilation as number }),
    );
  }
}

abstract class ConvTransposeBase extends ConvBase {
  declare outputPadding: number | number[];
  constructor(nd: number, layer: string, inChannels: number, outChannels: number, kernelSize: number | readonly number[], o: ConvTransposeLayerOptions) {
    super(nd, layer, inChannels, outChannels, kernelSize, { ...o, groups: 1 });
    config(this, "outputPadding", expand(o.outputPadding ?? 0, nd));
  }
  protected override extraRepr(): string {
    return `${this.weight.shape.at(-1)}, ${this.weight.shape[0]}, kernel_size=${this.kernelRepr()}, stride=${pyTuple(this.stride)}, padding=${pyTuple(this.padding)}, dilation=${pyTuple(this.dilation)}, output_padding=${pyTuple(this.outputPadding)}, bias=${pyBool(this.bias !== undefined)}`;
  }
  protected convOpts(): any {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, outputPadding: this.outputPadding };
  }
}

/**
 * 1-D transposed convolution over NLC input: `(inChannels, outChannels, kernelSize, stride = 1,
 * padding = 0, dilation = 1, outputPadding = 0, bias = true)` or an options object.
 * @example new nn.ConvTranspose1d(2, 3, 3, { stride: 2 }).forward(mx.ones([1, 5, 2])).shape // [1, 11, 3]
 */
export class ConvTranspose1d extends ConvTransposeBase {
  constructor(inChannels: number, outChannels: number, kernelSize: number, stride?: number | ConvTransposeLayerOptions<number>, padding = 0, dilation = 1, outputPadding = 0, bias = true) {
    super(1, "ConvTranspose1d", inChannels, outChannels, kernelSize, opts(stride, { padding, dilation, outputPadding, bias }));
  }
  forward(x: MxArray): MxArray {
    return this.addBias(convTranspose1d(x, this.weight, this.convOpts()));
  }
}

/**
 * 2-D transposed convolution over NHWC input.
 * @example new nn.ConvTranspose2d(4, 2, 3, { stride: 2, padding: 1, outputPadding: 1 }).forward(mx.ones([1, 4, 4, 4])).shape // [1, 8, 8, 2]
 */
export class ConvTranspose2d extends ConvTransposeBase {
  constructor(inChannels: number, outChannels: number, kernelSize: IntOr<2>, stride?: IntOr<2> | ConvTransposeLayerOptions<IntOr<2>>, padding: IntOr<2> = 0, dilation: IntOr<2> = 1, outputPadding: IntOr<2> = 0, bias = true) {
    super(2, "ConvTranspose2d", inChannels, outChannels, kernelSize, opts(stride, { padding, dilation, outputPadding, bias }));
  }
  forward(x: MxArray): MxArray {
    return this.addBias(convTranspose2d(x, this.weight, this.convOpts()));
  }
}

/**
 * 3-D transposed convolution over NDHWC input.
 * @example new nn.ConvTranspose3d(1, 1, 2, { stride: 2 }).forward(mx.ones([1, 2, 2, 2, 1])).shape // [1, 4, 4, 4, 1]
 */
export class ConvTranspose3d extends ConvTransposeBase {
  constructor(inChannels: number, outChannels: number, kernelSize: IntOr<3>, stride?: IntOr<3> | ConvTransposeLayerOptions<IntOr<3>>, padding: IntOr<3> = 0, dilation: IntOr<3> = 1, outputPadding: IntOr<3> = 0, bias = true) {
    super(3, "ConvTranspose3d", inChannels, outChannels, kernelSize, opts(stride, { padding, dilation, outputPadding, bias }));
  }
  forward(x: MxArray): MxArray {
    return this.addBias(convTranspose3d(x, this.weight, this.convOpts()));
  }
}
