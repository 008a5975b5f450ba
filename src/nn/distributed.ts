// The distributed layers of mlx.nn (mlx/nn/layers/distributed.py): the sharded linear layers,
// their quantized forms, shardLinear / shardInplace, and FullyShardedModule / fullyShard.
//
// mlx-bun has no distributed backend, so the only group that communicates is the singleton
// (size 1): there a layer holds the whole weight, the collectives are the identity and the
// results are nn.Linear's / nn.QuantizedLinear's. The code still follows MLX for a group of N
// processes at rank r (which weights are split along which axis, where all_sum, all_gather and
// sum_scatter sit, the gradient aggregation), so the shards a layer holds are MLX's for any
// group; a collective over more than one process fails (no backend).
import { array, MxArray } from "../array";
import { zeros } from "../creation";
import { toDtype, type Dtype, type DtypeLike } from "../dtype";
import { allGather, allSum, init, sumScatter, Group } from "../distributed";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import { add, divide } from "../ops/elementwise";
import { addmm, matmul } from "../ops/matmul";
import { quantize as mxQuantize, quantizedMatmul, type QuantizationMode } from "../ops/quantized";
import { concatenate, contiguous, reshape, split, transpose } from "../ops/shape";
import * as random from "../random";
import { customFunction } from "../transforms";
import { treeFlatten, treeMapWithPath, treeUnflatten } from "../utils";
import { Linear } from "./layers";
import { Module, pyBool, withoutKeeping } from "./module";

const T = (w: MxArray) => transpose(w);

/** How a weight is cut before sharding: a number of equal parts, split indices, or fractions. */
export type Segments = number | readonly number[];

/** The two sharding layouts of a linear layer. */
export type Sharding = "all-to-sharded" | "sharded-to-all";

/**
 * A sharding rule: given a parameter's dotted path and value, the axis to shard (and optionally
 * the segments the unsharded weight is made of, e.g. 3 for a fused QKV matrix), or null to keep
 * the parameter whole.
 */
export type ShardingPredicate = (path: string, weight: MxArray) => number | readonly [number, Segments] | null | undefined;

/** Options of the sharding functions and `fromLinear` / `fromQuantizedLinear`. */
export interface ShardOptions {
  /** The segments of the unsharded weight (default 1). */
  segments?: Segments;
  /** The group to shard across (default: the global group, `mx.distributed.init()`). */
  group?: Group;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v !== "object") return typeof v;
  return (v as object).constructor?.name ?? "object";
}

function groupOf(group: Group | undefined | null, op: string): Group {
  if (group === undefined || group === null) return init();
  if (!(group instanceof Group)) throw new MlxError(`[${op}] group must be an mx.distributed.Group, got ${typeName(group)}.`, 1);
  return group;
}

function checkDims(op: string, ...dims: [string, number][]): void {
  for (const [name, d] of dims) {
    if (!Number.isInteger(d) || d < 0) throw new MlxError(`[${op}] ${name} must be a non-negative integer, got ${d}.`, 1);
  }
}

/** Python's repr of a sharding argument in MLX's message. */
function pyRepr(v: unknown): string {
  if (typeof v === "string") return v.includes("'") && !v.includes('"') ? `"${v}"` : `'${v.replace(/'/g, "\\'")}'`;
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return pyBool(v);
  return String(v);
}

function checkSharding(sharding: unknown, op: string): asserts sharding is Sharding {
  if (sharding !== "all-to-sharded" && sharding !== "sharded-to-all") {
    throw new MlxError(`[${op}] Sharding type sharding=${pyRepr(sharding)} not supported, choose one of 'all-to-sharded' or 'sharded-to-all'`, 1);
  }
}

/** mx.split, with fractional segments (fractions of the axis) allowed as in MLX. */
function splitSegments(w: MxArray, segments: Segments, axis: number): MxArray[] {
  if (typeof segments === "number" || Number.isInteger(segments[0])) return split(w, segments, axis);
  const n = w.shape[axis < 0 ? axis + w.ndim : axis]!;
  return split(
    w,
    segments.map((s) => Math.trunc(s * n)),
    axis,
  );
}

/**
 * A new parameter tree with every array that `predicate` names cut for this process: each of
 * its segments split in `group.size()` equal parts along the axis, the part at this rank kept,
 * the kept parts concatenated (MLX's `_shard`).
 */
function shardTree(parameters: unknown, predicate: ShardingPredicate, group: Group): unknown {
  const N = group.size();
  const r = group.rank();
  return treeMapWithPath((path, w) => {
    if (!(w instanceof MxArray)) return w;
    const s = predicate(path ?? "", w);
    if (s === null || s === undefined) return w;
    let axis: number;
    let segments: Segments = 1;
    if (typeof s === "number") axis = s;
    else if (Array.isArray(s) && s.length === 2 && typeof s[0] === "number") [axis, segments] = s as [number, Segments];
    else throw new MlxError("The sharding function should return int or tuple[int, list]", 1);
    return tidy(() => contiguous(concatenate(splitSegments(w, segments, axis).map((part) => splitSegments(part, N, axis)[r]!), axis)));
  }, parameters);
}

/** Shard fully connected layers so that a common input becomes a sharded output. */
function allToSharded(segments: Segments): ShardingPredicate {
  return (path, w) => (path.endsWith("bias") ? [-1, segments] : [Math.max(w.ndim - 2, 0), segments]);
}

/** Shard fully connected layers so that a sharded input becomes a common output. */
function shardedToAll(segments: Segments): ShardingPredicate {
  return (path) => (path.endsWith("bias") ? null : [-1, segments]);
}

const sumGradientsCache = new WeakMap<Group, (x: MxArray) => MxArray>();

/** The identity whose vjp sums the cotangent over the group (the identity for one process). */
function sumGradients(group: Group): (x: MxArray) => MxArray {
  if (group.size() === 1) return (x) => x;
  let f = sumGradientsCache.get(group);
  if (f === undefined) {
    f = customFunction((x: MxArray) => array(x)).vjp((_primals, dx) => [allSum(dx, { group })]);
    sumGradientsCache.set(group, f);
  }
  return f;
}

/** A linear layer's 2-D weight (and whether it has a bias), or a clear error. */
function linearParts(layer: unknown, op: string, quantized: boolean): { weight: MxArray; bias: boolean } {
  const l = layer as { weight?: unknown; bias?: unknown; bits?: unknown; scales?: unknown };
  const ok = layer instanceof Module && l.weight instanceof MxArray && l.weight.ndim === 2 && (!quantized || (typeof l.bits === "number" && l.scales instanceof MxArray));
  if (!ok) throw new MlxError(`[${op}] Expected ${quantized ? "an nn.QuantizedLinear" : "a linear layer with a 2-D weight"}, got ${typeName(layer)}.`, 1);
  return { weight: l.weight as MxArray, bias: l.bias instanceof MxArray };
}

/**
 * A linear layer whose output is sharded across the group (MLX's `nn.AllToShardedLinear`):
 * every process takes the whole input and computes its `outputDims / N` outputs; weight
 * `(outputDims / N, inputDims)`, bias `(outputDims / N)`. The input's gradient is summed over the
 * group. Without a distributed backend N is 1: the layer is `nn.Linear` (same initialisation and
 * `addmm`).
 */
export class AllToShardedLinear extends Module {
  weight: MxArray;
  bias?: MxArray;
  group: Group;
  constructor(inputDims: number, outputDims: number, bias = true, group?: Group) {
    super();
    checkDims("AllToShardedLinear", ["input_dims", inputDims], ["output_dims", outputDims]);
    const scale = Math.sqrt(1.0 / inputDims);
    this.group = groupOf(group, "AllToShardedLinear");
    const N = this.group.size();
    if (outputDims % N !== 0) throw new MlxError(`[AllToShardedLinear] Cannot shard the output of size ${outputDims} across ${N} devices.`, 1);
    this.weight = random.uniform({ low: -scale, high: scale, shape: [outputDims / N, inputDims] });
    if (bias) this.bias = random.uniform({ low: -scale, high: scale, shape: [outputDims / N] });
    else delete this.bias;
  }
  protected override extraRepr(): string {
    return `input_dims=${this.weight.shape[1]}, output_dims=${this.weight.shape[0]! * this.group.size()}, bias=${pyBool(this.bias !== undefined)}`;
  }
  forward(x: MxArray): MxArray {
    x = sumGradients(this.group)(x);
    return this.bias !== undefined ? addmm(this.bias, x, T(this.weight)) : matmul(x, T(this.weight));
  }
  /**
   * The sharded layer holding this process's part of `linear`: the rows of its weight (and the
   * entries of its bias) of each segment, split across the group.
   */
  static fromLinear(linear: Module, options: ShardOptions = {}): AllToShardedLinear {
    const { weight, bias } = linearParts(linear, "AllToShardedLinear.fromLinear", false);
    const group = groupOf(options.group, "AllToShardedLinear.fromLinear");
    const sl = new AllToShardedLinear(weight.shape[1]!, weight.shape[0]!, bias, group);
    sl.update(shardTree(linear.parameters(), allToSharded(options.segments ?? 1), group));
    return sl;
  }
}

/**
 * A linear layer over an input sharded across the group whose results are summed over it
 * (MLX's `nn.ShardedToAllLinear`): weight `(outputDims, inputDims / N)`, bias `(outputDims)`;
 * `x @ W.T`, all-summed, then `+ bias`. Without a distributed backend N is 1 and the all-sum is
 * the identity.
 */
export class ShardedToAllLinear extends Module {
  weight: MxArray;
  bias?: MxArray;
  group: Group;
  constructor(inputDims: number, outputDims: number, bias = true, group?: Group) {
    super();
    checkDims("ShardedToAllLinear", ["input_dims", inputDims], ["output_dims", outputDims]);
    const scale = Math.sqrt(1.0 / inputDims);
    this.group = groupOf(group, "ShardedToAllLinear");
    const N = this.group.size();
    if (inputDims % N !== 0) throw new MlxError(`[ShardedToAllLinear] The input of size ${inputDims} cannot be sharded across ${N} devices.`, 1);
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
  /**
   * The sharded layer holding this process's part of `linear`: the columns of its weight of
   * each segment, split across the group (the bias stays whole).
   */
  static fromLinear(linear: Module, options: ShardOptions = {}): ShardedToAllLinear {
    const { weight, bias } = linearParts(linear, "ShardedToAllLinear.fromLinear", false);
    const group = groupOf(options.group, "ShardedToAllLinear.fromLinear");
    const sl = new ShardedToAllLinear(weight.shape[1]!, weight.shape[0]!, bias, group);
    sl.update(shardTree(linear.parameters(), shardedToAll(options.segments ?? 1), group));
    return sl;
  }
}

interface QuantizedParts {
  weight: MxArray;
  scales: MxArray;
  biases: MxArray | null;
}

function setQuantized(m: QuantizedParts, parts: MxArray[]): void {
  m.weight = parts[0]!;
  m.scales = parts[1]!;
  m.biases = parts[2] ?? null;
}

/** The settings of a QuantizedLinear-like layer for `fromQuantizedLinear`. */
function quantizedParts(layer: unknown, op: string): { outputDims: number; inputDims: number; bias: boolean; groupSize: number; bits: number; mode: QuantizationMode } {
  const { weight, bias } = linearParts(layer, op, true);
  const q = layer as { bits: number; groupSize?: number; mode?: QuantizationMode };
  if (typeof q.groupSize !== "number") throw new MlxError(`[${op}] Expected an nn.QuantizedLinear, got ${typeName(layer)}.`, 1);
  return { outputDims: weight.shape[0]!, inputDims: Math.floor((weight.shape[1]! * 32) / q.bits), bias, groupSize: q.groupSize, bits: q.bits, mode: q.mode ?? "affine" };
}

/**
 * The quantized form of {@link AllToShardedLinear} (MLX's `nn.QuantizedAllToShardedLinear`):
 * this process's `outputDims / N` rows of a quantized weight, `y = x dequantize(W)^T + b` through
 * mx.quantizedMatmul, the input's gradient summed over the group. As nn.QuantizedLinear, its
 * parameters are frozen (and stay so through `unfreeze`). Defaults as MLX: `groupSize` 64,
 * `bits` 4, mode "affine" (null group size or bits: the mode's defaults).
 */
export class QuantizedAllToShardedLinear extends Module {
  groupSize: number;
  bits: number;
  mode: QuantizationMode;
  group: Group;
  weight!: MxArray;
  scales!: MxArray;
  biases!: MxArray | null;
  bias?: MxArray;

  constructor(inputDims: number, outputDims: number, bias = true, groupSize: number | null = 64, bits: number | null = 4, mode: QuantizationMode = "affine", group?: Group) {
    super();
    checkDims("QuantizedAllToShardedLinear", ["input_dims", inputDims], ["output_dims", outputDims]);
    [this.groupSize, this.bits] = quantDefaults(mode, groupSize, bits);
    this.mode = mode;
    const scale = Math.sqrt(1.0 / inputDims);
    this.group = groupOf(group, "QuantizedAllToShardedLinear");
    const N = this.group.size();
    if (outputDims % N !== 0) throw new MlxError(`[QuantizedAllToShardedLinear] Cannot shard the output of size ${outputDims} across ${N} devices.`, 1);
    const w = random.uniform({ low: -scale, high: scale, shape: [outputDims / N, inputDims] });
    setQuantized(this, mxQuantize(w, { groupSize: this.groupSize, bits: this.bits, mode }));
    if (bias) this.bias = zeros([outputDims / N]);
    else delete this.bias;
    this.freeze();
  }

  /** Sub-modules may be unfrozen; this layer's own parameters stay frozen (as MLX). */
  protected override afterUnfreeze(): void {
    this.freeze({ recurse: false });
  }

  protected override extraRepr(): string {
    const [outDims, inW] = this.weight.shape as [number, number];
    const inDims = Math.floor((inW * 32) / this.bits);
    return `input_dims=${inDims}, output_dims=${outDims * this.group.size()}, bias=${pyBool(this.bias !== undefined)}, group_size=${this.groupSize}, bits=${this.bits}, mode=${this.mode}`;
  }

  forward(x: MxArray): MxArray {
    x = sumGradients(this.group)(x);
    const y = quantizedMatmul(x, this.weight, this.scales, this.biases, { transpose: true, groupSize: this.groupSize, bits: this.bits, mode: this.mode });
    return this.bias !== undefined ? add(y, this.bias) : y;
  }

  /**
   * The sharded layer holding this process's part of a QuantizedLinear: the rows of its weight,
   * scales and biases (and entries of its bias) of each segment, split across the group.
   */
  static fromQuantizedLinear(quantizedLinear: Module, options: ShardOptions = {}): QuantizedAllToShardedLinear {
    const op = "QuantizedAllToShardedLinear.fromQuantizedLinear";
    const q = quantizedParts(quantizedLinear, op);
    const group = groupOf(options.group, op);
    const sl = new QuantizedAllToShardedLinear(q.inputDims, q.outputDims, q.bias, q.groupSize, q.bits, q.mode, group);
    sl.update(shardTree(quantizedLinear.parameters(), allToSharded(options.segments ?? 1), group));
    return sl;
  }
}

/**
 * The quantized form of {@link ShardedToAllLinear} (MLX's `nn.QuantizedShardedToAllLinear`):
 * this process's `inputDims / N` columns of a quantized weight; `x dequantize(W)^T` through
 * mx.quantizedMatmul, all-summed over the group, then `+ bias`. Parameters frozen as
 * nn.QuantizedLinear's; defaults as MLX (`groupSize` 64, `bits` 4, "affine").
 */
export class QuantizedShardedToAllLinear extends Module {
  groupSize: number;
  bits: number;
  mode: QuantizationMode;
  group: Group;
  weight!: MxArray;
  scales!: MxArray;
  biases!: MxArray | null;
  bias?: MxArray;

  constructor(inputDims: number, outputDims: number, bias = true, groupSize: number | null = 64, bits: number | null = 4, mode: QuantizationMode = "affine", group?: Group) {
    super();
    checkDims("QuantizedShardedToAllLinear", ["input_dims", inputDims], ["output_dims", outputDims]);
    [this.groupSize, this.bits] = quantDefaults(mode, groupSize, bits);
    this.mode = mode;
    const scale = Math.sqrt(1.0 / inputDims);
    this.group = groupOf(group, "QuantizedShardedToAllLinear");
    const N = this.group.size();
    if (inputDims % N !== 0) throw new MlxError(`[QuantizedShardedToAllLinear] The input of size ${inputDims} cannot be sharded across ${N} devices.`, 1);
    const w = random.uniform({ low: -scale, high: scale, shape: [outputDims, inputDims / N] });
    setQuantized(this, mxQuantize(w, { groupSize: this.groupSize, bits: this.bits, mode }));
    if (bias) this.bias = zeros([outputDims]);
    else delete this.bias;
    this.freeze();
  }

  /** Sub-modules may be unfrozen; this layer's own parameters stay frozen (as MLX). */
  protected override afterUnfreeze(): void {
    this.freeze({ recurse: false });
  }

  protected override extraRepr(): string {
    const [outDims, inW] = this.weight.shape as [number, number];
    const inDims = Math.floor((inW * 32) / this.bits) * this.group.size();
    return `input_dims=${inDims}, output_dims=${outDims}, bias=${pyBool(this.bias !== undefined)}, group_size=${this.groupSize}, bits=${this.bits}, mode=${this.mode}`;
  }

  forward(x: MxArray): MxArray {
    const y0 = quantizedMatmul(x, this.weight, this.scales, this.biases, { transpose: true, groupSize: this.groupSize, bits: this.bits, mode: this.mode });
    const y = allSum(y0, { group: this.group });
    return this.bias !== undefined ? add(y, this.bias) : y;
  }

  /**
   * The sharded layer holding this process's part of a QuantizedLinear: the (packed) columns of
   * its weight and the matching columns of scales and biases, per segment, split across the
   * group (the bias stays whole).
   */
  static fromQuantizedLinear(quantizedLinear: Module, options: ShardOptions = {}): QuantizedShardedToAllLinear {
    const op = "QuantizedShardedToAllLinear.fromQuantizedLinear";
    const q = quantizedParts(quantizedLinear, op);
    const group = groupOf(options.group, op);
    const sl = new QuantizedShardedToAllLinear(q.inputDims, q.outputDims, q.bias, q.groupSize, q.bits, q.mode, group);
    sl.update(shardTree(quantizedLinear.parameters(), shardedToAll(options.segments ?? 1), group));
    return sl;
  }
}

const MODE_DEFAULTS: Record<string, [number, number]> = { affine: [64, 4], mxfp4: [32, 4], nvfp4: [16, 4], mxfp8: [32, 8] };

/** A null group size or bits: the mode's default (an unknown mode is left to mx.quantize). */
function quantDefaults(mode: string, groupSize: number | null, bits: number | null): [number, number] {
  const d = MODE_DEFAULTS[mode] ?? [64, 4];
  return [groupSize ?? d[0], bits ?? d[1]];
}

/**
 * A new linear layer with its parameters sharded across the group, which communicates in the
 * forward or backward pass (MLX's `nn.layers.distributed.shard_linear`): an nn.Linear becomes an
 * {@link AllToShardedLinear} ("all-to-sharded") or {@link ShardedToAllLinear} ("sharded-to-all"),
 * an nn.QuantizedLinear their quantized forms. `module` itself is not changed.
 * @example const up = nn.shardLinear(new nn.Linear(64, 256), "all-to-sharded")
 */
export function shardLinear(module: Module, sharding: Sharding, options: ShardOptions = {}): Module {
  checkSharding(sharding, "shard_linear");
  if (module instanceof Linear) {
    return sharding === "all-to-sharded" ? AllToShardedLinear.fromLinear(module, options) : ShardedToAllLinear.fromLinear(module, options);
  }
  const ok = module instanceof Module && (module as { scales?: unknown }).scales instanceof MxArray && typeof (module as { bits?: unknown }).bits === "number";
  if (!ok) throw new MlxError(`[shard_linear] Expected an nn.Linear or an nn.QuantizedLinear, got ${typeName(module)}.`, 1);
  return sharding === "all-to-sharded"
    ? QuantizedAllToShardedLinear.fromQuantizedLinear(module, options)
    : QuantizedShardedToAllLinear.fromQuantizedLinear(module, options);
}

/**
 * Shard a module's parameters in place (MLX's `nn.layers.distributed.shard_inplace`): each
 * parameter is replaced by this process's shard, by "all-to-sharded" / "sharded-to-all" (the
 * rules of the sharded linear layers, with `segments`) or a {@link ShardingPredicate}. The module
 * itself does not change, so it communicates only if it is written to.
 * @example nn.shardInplace(model, (path, w) => (path.endsWith("wq.weight") ? 0 : null))
 */
export function shardInplace(module: Module, sharding: Sharding | ShardingPredicate, options: ShardOptions = {}): void {
  if (!(module instanceof Module)) throw new MlxError(`[shard_inplace] Expected an nn.Module, got ${typeName(module)}.`, 1);
  let predicate: ShardingPredicate;
  if (typeof sharding === "function") predicate = sharding;
  else {
    checkSharding(sharding, "shard_inplace");
    predicate = sharding === "all-to-sharded" ? allToSharded(options.segments ?? 1) : shardedToAll(options.segments ?? 1);
  }
  module.update(shardTree(module.parameters(), predicate, groupOf(options.group, "shard_inplace")));
}

/** The parameters FullyShardedModule shards: all of them except those of nested wrappers. */
function maybeShard(m: Module, k: string, v: unknown): boolean {
  if (v instanceof FullyShardedModule) return false;
  return Module.validParameterFilter(m, k, v);
}

type Gather = (shards: MxArray[]) => MxArray[];

/**
 * MLX's gather of a FullyShardedModule: every shard flattened into one row (cast to the compute
 * dtype), all-gathered into N rows, cut back into the full parameters. Its vjp reduce-scatters
 * the cotangents (sum_scatter, divided by N: the group's mean) into each shard's gradient, in
 * the shard's dtype.
 */
function makeGather(group: Group, fullShapes: number[][], shardSizes: number[], computeDtype: Dtype | null): Gather {
  const N = group.size();
  const indices = [0];
  for (const s of shardSizes) indices.push(indices[indices.length - 1]! + s);
  const splitIndices = indices.slice(1, -1);
  const shardShapes = fullShapes.map((s) => [s[0]! / N, ...s.slice(1)]);
  const maybeCast = (x: MxArray, dt: Dtype | null): MxArray => (dt === null || x.dtype.value === dt.value ? x : x.astype(dt));
  const gather = customFunction((shards: MxArray[]): MxArray[] =>
    tidy(() => {
      const shard = concatenate(
        shards.map((s) => maybeCast(reshape(s, [1, -1]), computeDtype)),
        1,
      );
      const full = allGather(shard, { group });
      return split(full, splitIndices, 1).map((p, i) => reshape(p, fullShapes[i]!));
    }),
  );
  gather.vjp(([shards], cotangents) =>
    tidy(() => {
      const localFull = concatenate(
        cotangents.map((c) => reshape(c, [N, -1])),
        1,
      );
      const localShard = divide(sumScatter(localFull, { group }), N);
      return [split(localShard, splitIndices, 1).map((p, i) => maybeCast(reshape(p, shardShapes[i]!), shards[i]!.dtype))];
    }),
  );
  return gather;
}

/** Options of {@link FullyShardedModule} and {@link fullyShard}. */
export interface FullyShardOptions {
  /** The group to shard across (default: the global group, `mx.distributed.init()`). */
  group?: Group;
  /** Cast the gathered parameters to this dtype for the forward pass (default: as stored). */
  computeDtype?: DtypeLike | null;
}

/**
 * A module whose parameters are sharded across the group (MLX's `nn.FullyShardedModule`): each
 * process holds the rows `[r * n / N, (r + 1) * n / N)` (axis 0) of every parameter of `module`
 * (except those of nested FullyShardedModules). `forward` (and `asLinear`) all-gathers the full
 * parameters, calls the wrapped module, and puts the shards back; in the backward pass the
 * gradients are reduce-scattered (averaged over the group), so each process trains only its
 * shard. The wrapped module is the sub-module `module` (parameter names `module.…`). Every
 * parameter's axis 0 must divide by the group's size.
 * @example const fsdp = new nn.FullyShardedModule(model, { computeDtype: mx.bfloat16 })
 */
export class FullyShardedModule extends Module {
  module: Module;
  readonly #paths: string[];
  readonly #gather: Gather;

  constructor(module: Module, options: FullyShardOptions = {}) {
    super();
    if (!(module instanceof Module)) throw new MlxError(`[FullyShardedModule] Expected an nn.Module, got ${typeName(module)}.`, 1);
    const group = groupOf(options.group, "FullyShardedModule");
    const computeDtype = options.computeDtype === undefined || options.computeDtype === null ? null : toDtype(options.computeDtype, "FullyShardedModule");
    const N = group.size();
    const shardParams = module.filterAndMap(maybeShard);
    const flat = treeFlatten(shardParams) as [string, MxArray][];
    for (const [path, a] of flat) {
      if (a.ndim === 0) throw new MlxError(`[FullyShardedModule] Cannot shard parameter '${path}' because it is a scalar.`, 1);
      if (a.shape[0]! % N !== 0) {
        const shape = a.ndim === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(", ")})`;
        throw new MlxError(`[FullyShardedModule] Cannot shard parameter '${path}' with shape ${shape} across ${N} devices: axis 0 must be divisible by ${N}.`, 1);
      }
    }
    this.#paths = flat.map(([k]) => k);
    const fullShapes = flat.map(([, a]) => [...a.shape]);
    const shardSizes = flat.map(([, a]) => a.size / N);
    module.update(shardTree(shardParams, () => 0, group));
    this.module = module;
    this.#gather = makeGather(group, fullShapes, shardSizes, computeDtype);
  }

  /** The dotted paths (in `module`) of the parameters this wrapper shards. */
  get shardedPaths(): readonly string[] {
    return this.#paths;
  }

  protected override extraRepr(): string {
    return `num_sharded_params=${this.#paths.length}`;
  }

  private gatheredCall<R>(fn: () => R): R {
    const shardTreeNow = this.module.filterAndMap(maybeShard);
    const shards = treeFlatten(shardTreeNow).map(([, a]) => a as MxArray);
    const fulls = this.#gather(shards);
    // The gathered arrays are temporaries of this call: the module does not keep them.
    withoutKeeping(() => this.module.update(treeUnflatten(this.#paths.map((p, i) => [p, fulls[i]] as const))));
    try {
      return fn();
    } finally {
      withoutKeeping(() => this.module.update(shardTreeNow));
    }
  }

  /** The wrapped module's forward on the gathered parameters. */
  forward(...args: unknown[]): any {
    const m = this.module as unknown as { forward?: (...a: unknown[]) => unknown };
    if (typeof m.forward !== "function") throw new MlxError(`[FullyShardedModule] The wrapped ${typeName(this.module)} has no forward method.`, 1);
    return this.gatheredCall(() => m.forward!(...args));
  }

  /** The wrapped module's `asLinear` (a tied embedding) on the gathered parameters. */
  asLinear(...args: unknown[]): any {
    const m = this.module as unknown as { asLinear?: (...a: unknown[]) => unknown };
    if (typeof m.asLinear !== "function") throw new MlxError(`[FullyShardedModule] The wrapped ${typeName(this.module)} has no asLinear method.`, 1);
    return this.gatheredCall(() => m.asLinear!(...args));
  }
}

/**
 * Wrap `module` in a {@link FullyShardedModule} (MLX's `nn.fully_shard`). The module itself is
 * returned when the group has one process (always, without a distributed backend), when it is
 * already a FullyShardedModule, or when it has nothing to shard.
 */
export function fullyShard<M extends Module>(module: M, options: FullyShardOptions = {}): M | FullyShardedModule {
  const group = groupOf(options.group, "fully_shard");
  if (group.size() === 1) return module;
  if (module instanceof FullyShardedModule) return module;
  const wrapped = new FullyShardedModule(module, { group, computeDtype: options.computeDtype ?? null });
  return wrapped.shardedPaths.length > 0 ? wrapped : module;
}
