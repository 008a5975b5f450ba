// mx.nn.losses: MLX's mlx.nn.losses, composed from mx ops as MLX writes them (same formulas,
// defaults, reductions and messages). Every loss takes its keyword arguments as a trailing
// options object, e.g. `crossEntropy(logits, targets, { reduction: "mean" })`.
import { MxArray } from "../array";
import { MlxError } from "../errors";
import {
  abs, add, divide, exp, log, logaddexp, maximum, minimum, multiply, negative, power, sqrt, square, subtract, where, less,
} from "../ops/elementwise";
import { clip } from "../ops/elementwise";
import { takeAlongAxis } from "../ops/indexing";
import { stopGradient } from "../ops/misc";
import { logsumexp, max, mean, sum } from "../ops/reduce";
import { expandDims, squeeze } from "../ops/shape";

/** How a loss is reduced: "none" (elementwise), "mean" or "sum". */
export type Reduction = "none" | "mean" | "sum";

/** Python's repr of a shape tuple: (), (3,), (2, 3). */
function pyShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

/** Python's str() of a float. */
function pyFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  // Python's repr: the shortest round-trip digits, scientific when the exponent is < -4 or >= 16.
  const [mant, e] = x.toExponential().split("e") as [string, string];
  const exp = Number(e);
  if (exp < -4 || exp >= 16) return `${mant}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  const s = x.toFixed(Math.max(0, mant.replace(/^-/, "").replace(".", "").length - 1 - exp));
  return s.includes(".") ? s : `${s}.0`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function reduce(loss: MxArray, reduction: Reduction = "none"): MxArray {
  if (reduction === "mean") return mean(loss);
  if (reduction === "sum") return sum(loss);
  if (reduction === "none") return loss;
  throw new MlxError("Invalid reduction. Must be one of ('none', 'mean', 'sum').", 1);
}

function applyWeights(loss: MxArray, weights: MxArray | null | undefined): MxArray {
  if (weights === undefined || weights === null) return loss;
  if (!sameShape(weights.shape, loss.shape)) {
    throw new MlxError(`Weights with shape ${pyShape(weights.shape)} is not the same as output loss with shape ${pyShape(loss.shape)}.`, 1);
  }
  return multiply(loss, weights);
}

function checkPredictions(predictions: MxArray, targets: MxArray): void {
  if (!sameShape(predictions.shape, targets.shape)) {
    throw new MlxError(`Predictions shape ${pyShape(predictions.shape)} does not match targets shape ${pyShape(targets.shape)}.`, 1);
  }
}

function checkInputs(inputs: MxArray, targets: MxArray): void {
  if (!sameShape(inputs.shape, targets.shape)) {
    throw new MlxError(`Inputs shape ${pyShape(inputs.shape)} does not match targets shape ${pyShape(targets.shape)}.`, 1);
  }
}

/** Options of crossEntropy. */
export interface CrossEntropyOptions {
  /** Per-element weights, shaped as the unreduced loss. */
  weights?: MxArray | null;
  /** The class axis (default -1). */
  axis?: number;
  /** Label smoothing in [0, 1) (default 0). */
  labelSmoothing?: number;
  /** Default "none". */
  reduction?: Reduction;
}

/**
 * Cross entropy of logits against class indices (targets with one dimension fewer) or class
 * probabilities (targets shaped as the logits).
 * @example mx.nn.losses.crossEntropy(logits, mx.array([0, 1]), { reduction: "mean" })
 */
export function crossEntropy(logits: MxArray, targets: MxArray, options: CrossEntropyOptions = {}): MxArray {
  const axis = options.axis ?? -1;
  const labelSmoothing = options.labelSmoothing ?? 0.0;
  if (labelSmoothing < 0 || labelSmoothing >= 1) throw new MlxError(`Label smoothing must be in [0, 1), got ${pyFloat(labelSmoothing)}.`, 1);
  const asProbs = targets.ndim === logits.ndim;
  let dropped: number[] | undefined;
  if (!asProbs) {
    const n = logits.ndim;
    if (!Number.isInteger(axis) || axis >= n || axis < -n) throw new MlxError("pop index out of range", 1);
    dropped = logits.shape.filter((_, i) => i !== (axis < 0 ? axis + n : axis));
  }
  if ((asProbs && !sameShape(targets.shape, logits.shape)) || (!asProbs && !sameShape(targets.shape, dropped!))) {
    throw new MlxError(`Targets shape ${pyShape(targets.shape)} does not match logits shape ${pyShape(logits.shape)}.`, 1);
  }
  const shifted = subtract(logits, stopGradient(max(logits, { axis, keepdims: true })));
  const score = asProbs ? sum(multiply(shifted, targets), axis) : squeeze(takeAlongAxis(shifted, expandDims(targets, axis), axis), axis);
  const lse = logsumexp(shifted, axis);
  let loss: MxArray;
  if (labelSmoothing > 0) {
    const adjusted = multiply(1 - labelSmoothing, score);
    const meanLogits = mean(shifted, axis);
    const smoothed = multiply(negative(meanLogits), labelSmoothing);
    loss = add(subtract(lse, adjusted), smoothed);
  } else {
    loss = subtract(lse, score);
  }
  return reduce(applyWeights(loss, options.weights), options.reduction ?? "none");
}

/** Options of binaryCrossEntropy. */
export interface BinaryCrossEntropyOptions {
  /** Per-element weights, shaped as the loss. */
  weights?: MxArray | null;
  /** The inputs are logits (default true); otherwise probabilities. */
  withLogits?: boolean;
  /** Default "mean". */
  reduction?: Reduction;
}

/**
 * Binary cross entropy of logits (default) or probabilities against targets in [0, 1].
 * @example mx.nn.losses.binaryCrossEntropy(logits, targets)
 */
export function binaryCrossEntropy(inputs: MxArray, targets: MxArray, options: BinaryCrossEntropyOptions = {}): MxArray {
  checkInputs(inputs, targets);
  let loss: MxArray;
  if (options.withLogits ?? true) {
    loss = subtract(logaddexp(0.0, inputs), multiply(inputs, targets));
  } else {
    const logClip = clip(log(inputs), -100, null);
    const logInvClip = clip(log(subtract(1, inputs)), -100, null);
    loss = negative(add(multiply(targets, logClip), multiply(subtract(1, targets), logInvClip)));
  }
  return reduce(applyWeights(loss, options.weights), options.reduction ?? "mean");
}

/** Options of the losses that only take a reduction. */
export interface ReductionOptions {
  reduction?: Reduction;
}

/**
 * Mean absolute error. Default reduction "mean".
 * @example mx.nn.losses.l1Loss(predictions, targets)
 */
export function l1Loss(predictions: MxArray, targets: MxArray, options: ReductionOptions = {}): MxArray {
  checkPredictions(predictions, targets);
  return reduce(abs(subtract(predictions, targets)), options.reduction ?? "mean");
}

/**
 * Mean squared error. Default reduction "mean".
 * @example mx.nn.losses.mseLoss(predictions, targets)
 */
export function mseLoss(predictions: MxArray, targets: MxArray, options: ReductionOptions = {}): MxArray {
  checkPredictions(predictions, targets);
  return reduce(square(subtract(predictions, targets)), options.reduction ?? "mean");
}

/** Options of nllLoss and klDivLoss. */
export interface AxisReductionOptions {
  /** The distribution axis (default -1). */
  axis?: number;
  /** Default "none". */
  reduction?: Reduction;
}

/**
 * Negative log likelihood of log-probabilities at the target class indices.
 * @example mx.nn.losses.nllLoss(logProbs, mx.array([0, 2]))
 */
export function nllLoss(inputs: MxArray, targets: MxArray, options: AxisReductionOptions = {}): MxArray {
  const axis = options.axis ?? -1;
  const loss = negative(squeeze(takeAlongAxis(inputs, expandDims(targets, axis), axis), axis));
  return reduce(loss, options.reduction ?? "none");
}

/** Options of gaussianNllLoss. */
export interface GaussianNllOptions {
  /** Add the constant 0.5 log(2 pi) (default false). */
  full?: boolean;
  /** Lower bound of the variances (default 1e-6). */
  eps?: number;
  /** Default "mean". */
  reduction?: Reduction;
}

/**
 * Negative log likelihood of targets under Gaussians of means `inputs` and variances `vars`.
 * @example mx.nn.losses.gaussianNllLoss(means, targets, vars)
 */
export function gaussianNllLoss(inputs: MxArray, targets: MxArray, vars: MxArray, options: GaussianNllOptions = {}): MxArray {
  checkInputs(inputs, targets);
  if (!sameShape(inputs.shape, vars.shape)) {
    throw new MlxError(`Inputs shape ${pyShape(inputs.shape)} does not match vars shape ${pyShape(vars.shape)}.`, 1);
  }
  const v = maximum(vars, options.eps ?? 1e-6);
  let loss = multiply(0.5, add(log(v), divide(square(subtract(targets, inputs)), v)));
  if (options.full) loss = add(loss, 0.5 * Math.log(2 * Math.PI));
  return reduce(loss, options.reduction ?? "mean");
}

/**
 * Kullback-Leibler divergence; inputs and targets are log-probabilities.
 * @example mx.nn.losses.klDivLoss(logP, logQ)
 */
export function klDivLoss(inputs: MxArray, targets: MxArray, options: AxisReductionOptions = {}): MxArray {
  const loss = sum(multiply(exp(targets), subtract(targets, inputs)), options.axis ?? -1);
  return reduce(loss, options.reduction ?? "none");
}

/** Options of smoothL1Loss. */
export interface SmoothL1Options {
  /** Where the loss turns from quadratic to linear (default 1). */
  beta?: number;
  /** Default "mean". */
  reduction?: Reduction;
}

/**
 * Smooth L1: 0.5 d^2 / beta where d < beta, else d - 0.5 beta.
 * @example mx.nn.losses.smoothL1Loss(predictions, targets, { beta: 0.5 })
 */
export function smoothL1Loss(predictions: MxArray, targets: MxArray, options: SmoothL1Options = {}): MxArray {
  checkPredictions(predictions, targets);
  const beta = options.beta ?? 1.0;
  const diff = abs(subtract(predictions, targets));
  const loss = where(less(diff, beta), divide(multiply(0.5, square(diff)), beta), subtract(abs(diff), 0.5 * beta));
  return reduce(loss, options.reduction ?? "mean");
}

/** Options of tripletLoss. */
export interface TripletOptions {
  /** The distance axis (default -1). */
  axis?: number;
  /** The norm degree (default 2). */
  p?: number;
  /** Margin (default 1). */
  margin?: number;
  /** Added inside the root (default 1e-6). */
  eps?: number;
  /** Default "none". */
  reduction?: Reduction;
}

/**
 * Triplet margin loss: max(|a - p| - |a - n| + margin, 0).
 * @example mx.nn.losses.tripletLoss(anchors, positives, negatives)
 */
export function tripletLoss(anchors: MxArray, positives: MxArray, negatives: MxArray, options: TripletOptions = {}): MxArray {
  const axis = options.axis ?? -1;
  const p = options.p ?? 2;
  const eps = options.eps ?? 1e-6;
  const dist = (other: MxArray) => power(add(sum(power(abs(subtract(anchors, other)), p), axis), eps), 1.0 / p);
  const loss = maximum(add(subtract(dist(positives), dist(negatives)), options.margin ?? 1.0), 0);
  return reduce(loss, options.reduction ?? "none");
}

/**
 * Hinge loss max(1 - inputs targets, 0) (targets are -1 or 1).
 * @example mx.nn.losses.hingeLoss(inputs, targets)
 */
export function hingeLoss(inputs: MxArray, targets: MxArray, options: ReductionOptions = {}): MxArray {
  return reduce(maximum(subtract(1, multiply(inputs, targets)), 0), options.reduction ?? "none");
}

/** Options of huberLoss. */
export interface HuberOptions {
  /** Where the loss turns from quadratic to linear (default 1). */
  delta?: number;
  /** Default "none". */
  reduction?: Reduction;
}

/**
 * Huber loss: quadratic for |e| <= delta, linear beyond.
 * @example mx.nn.losses.huberLoss(inputs, targets, { delta: 0.5 })
 */
export function huberLoss(inputs: MxArray, targets: MxArray, options: HuberOptions = {}): MxArray {
  const delta = options.delta ?? 1.0;
  const absErrors = abs(subtract(inputs, targets));
  const quadratic = minimum(absErrors, delta);
  const linear = subtract(absErrors, quadratic);
  const loss = add(multiply(0.5, power(quadratic, 2)), multiply(delta, linear));
  return reduce(loss, options.reduction ?? "none");
}

/**
 * log(cosh(inputs - targets)), computed as logaddexp(e, -e) - log 2.
 * @example mx.nn.losses.logCoshLoss(inputs, targets)
 */
export function logCoshLoss(inputs: MxArray, targets: MxArray, options: ReductionOptions = {}): MxArray {
  const errors = subtract(inputs, targets);
  return reduce(subtract(logaddexp(errors, negative(errors)), Math.log(2)), options.reduction ?? "none");
}

/** Options of cosineSimilarityLoss. */
export interface CosineSimilarityOptions {
  /** The embedding axis (default 1). */
  axis?: number;
  /** Lower bound of the norms' product (default 1e-8). */
  eps?: number;
  /** Default "none". */
  reduction?: Reduction;
}

/**
 * Cosine similarity of x1 and x2 along an axis (MLX returns the similarity itself).
 * @example mx.nn.losses.cosineSimilarityLoss(x1, x2)
 */
export function cosineSimilarityLoss(x1: MxArray, x2: MxArray, options: CosineSimilarityOptions = {}): MxArray {
  const axis = options.axis ?? 1;
  const norm = (x: MxArray) => sqrt(sum(square(abs(x)), axis));
  const loss = divide(sum(multiply(x1, x2), axis), maximum(multiply(norm(x1), norm(x2)), options.eps ?? 1e-8));
  return reduce(loss, options.reduction ?? "none");
}

/** Options of marginRankingLoss. */
export interface MarginRankingOptions {
  /** Margin (default 0). */
  margin?: number;
  /** Default "none". */
  reduction?: Reduction;
}

/**
 * Margin ranking loss max(0, -targets (inputs1 - inputs2) + margin) (targets are -1 or 1).
 * @example mx.nn.losses.marginRankingLoss(a, b, targets, { margin: 0.1 })
 */
export function marginRankingLoss(inputs1: MxArray, inputs2: MxArray, targets: MxArray, options: MarginRankingOptions = {}): MxArray {
  if (!(sameShape(inputs1.shape, inputs2.shape) && sameShape(inputs2.shape, targets.shape))) {
    throw new MlxError(
      `The shapes of the arguments do not match. The provided shapes are inputs1.shape=${pyShape(inputs1.shape)}, inputs2.shape=${pyShape(inputs2.shape)}, and targets.shape=${pyShape(targets.shape)}.`,
      1,
    );
  }
  const loss = maximum(0, add(multiply(negative(targets), subtract(inputs1, inputs2)), options.margin ?? 0.0));
  return reduce(loss, options.reduction ?? "none");
}
