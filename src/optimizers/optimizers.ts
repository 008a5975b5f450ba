// The optimizers of mlx.optimizers, composed from mx ops exactly as MLX writes them (same
// operation order, JS numbers weakly typed as Python floats are), and clip_grad_norm.
import { MxArray } from "../array";
import { zeros, zerosLike } from "../creation";
import { float16, float32 } from "../dtype";
import { MlxError } from "../errors";
import {
  abs, add, divide, maximum, minimum, multiply, power, rsqrt, sign, sqrt, square, subtract,
} from "../ops/elementwise";
import { addmm, matmul } from "../ops/matmul";
import { issubdtype } from "../ops/misc";
import { mean, sum } from "../ops/reduce";
import { expandDims, reshape, transpose } from "../ops/shape";
import { Optimizer, type LearningRate, type ParamState } from "./optimizer";
import { treeFlattenPaths, treeMap } from "./tree";

type WithLr<T> = T & { learningRate: LearningRate };

function split<T extends object>(lrOrOptions: LearningRate | WithLr<T> | undefined, options: T | undefined, name: string): [LearningRate, T] {
  if (lrOrOptions !== undefined && typeof lrOrOptions === "object" && !(lrOrOptions instanceof MxArray)) {
    const { learningRate, ...rest } = lrOrOptions as WithLr<T>;
    if (learningRate === undefined) throw new MlxError(`[${name}] The learning rate is required.`, 1);
    return [learningRate, rest as unknown as T];
  }
  if (lrOrOptions === undefined) throw new MlxError(`[${name}] The learning rate is required.`, 1);
  return [lrOrOptions, options ?? ({} as T)];
}

const lrOf = (o: Optimizer, g: MxArray) => o.learningRate.astype(g.dtype);

/** Options of SGD. */
export interface SGDOptions {
  /** Momentum strength (default 0). */
  momentum?: number;
  /** Weight decay, an L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs a momentum and no dampening). */
  nesterov?: boolean;
}

/**
 * Stochastic gradient descent: v = momentum v + (1 - dampening) g; w -= lr v.
 * @example new mx.optimizers.SGD(0.1, { momentum: 0.9 })
 */
export class SGD extends Optimizer {
  momentum: number;
  weightDecay: number;
  dampening: number;
  nesterov: boolean;
  constructor(learningRate: LearningRate | WithLr<SGDOptions>, options?: SGDOptions) {
    const [lr, o] = split(learningRate, options, "SGD");
    const momentum = o.momentum ?? 0;
    const dampening = o.dampening ?? 0;
    const nesterov = o.nesterov ?? false;
    if (nesterov && (momentum <= 0 || dampening !== 0)) throw new MlxError("Nesterov momentum requires a momentum and zero dampening.", 1);
    super();
    this.maybeSchedule("learning_rate", lr);
    this.momentum = momentum;
    this.weightDecay = o.weightDecay ?? 0;
    this.dampening = dampening;
    this.nesterov = nesterov;
  }
  initSingle(parameter: MxArray, state: ParamState): void {
    state.v = zerosLike(parameter);
  }
  applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    if (this.weightDecay !== 0) gradient = add(gradient, multiply(this.weightDecay, parameter));
    if (this.momentum <= 0) return subtract(parameter, multiply(lrOf(this, gradient), gradient));
    let v = multiply(this.momentum, state.v!);
    v = this.dampening > 0 ? add(v, multiply(1 - this.dampening, gradient)) : add(v, gradient);
    const update = this.nesterov ? add(gradient, multiply(this.momentum, v)) : v;
    state.v = v;
    return subtract(parameter, multiply(lrOf(this, gradient), update));
  }
}

/** Options of RMSprop. */
export interface RMSpropOptions {
  /** Smoothing constant (default 0.99). */
  alpha?: number;
  /** Added to the denominator (default 1e-8). */
  eps?: number;
}

/**
 * RMSprop: v = alpha v + (1 - alpha) g^2; w -= lr g / (sqrt(v) + eps).
 * @example new mx.optimizers.RMSprop(0.01)
 */
export class RMSprop extends Optimizer {
  alpha: number;
  eps: number;
  constructor(learningRate: LearningRate | WithLr<RMSpropOptions>, options?: RMSpropOptions) {
    const [lr, o] = split(learningRate, options, "RMSprop");
    super();
    this.maybeSchedule("learning_rate", lr);
    this.alpha = o.alpha ?? 0.99;
    this.eps = o.eps ?? 1e-8;
    if (this.alpha < 0) throw new MlxError(`RMSprop alpha should be >=0, ${pyFloat(this.alpha)} was provided instead`, 1);
    if (this.eps <= 0) throw new MlxError(`RMSprop epsilon should be >0, ${pyFloat(this.eps)} was provided instead`, 1);
  }
  initSingle(parameter: MxArray, state: ParamState): void {
    state.v = zerosLike(parameter);
  }
  applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    const lr = lrOf(this, gradient);
    const v = add(multiply(this.alpha, state.v!), multiply(1 - this.alpha, square(gradient)));
    state.v = v;
    return subtract(parameter, divide(multiply(lr, gradient), add(sqrt(v), this.eps)));
  }
}

/** Options of Adagrad. */
export interface AdagradOptions {
  /** Added to the denominator (default 1e-8). */
  eps?: number;
}

/**
 * Adagrad: v += g^2; w -= lr g / (sqrt(v) + eps).
 * @example new mx.optimizers.Adagrad(0.1)
 */
export class Adagrad extends Optimizer {
  eps: number;
  constructor(learningRate: LearningRate | WithLr<AdagradOptions>, options?: AdagradOptions) {
    const [lr, o] = split(learningRate, options, "Adagrad");
    super();
    this.maybeSchedule("learning_rate", lr);
    this.eps = o.eps ?? 1e-8;
    if (this.eps <= 0) throw new MlxError(`Adagrad epsilon should be >0, ${pyFloat(this.eps)} was provided instead`, 1);
  }
  initSingle(parameter: MxArray, state: ParamState): void {
    state.v = zerosLike(parameter);
  }
  applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    const lr = lrOf(this, gradient);
    const v = add(state.v!, square(gradient));
    state.v = v;
    return subtract(parameter, divide(multiply(lr, gradient), add(sqrt(v), this.eps)));
  }
}

/** Options of AdaDelta. */
export interface AdaDeltaOptions {
  /** Coefficient of the running averages (default 0.9). */
  rho?: number;
  /** Added inside the square roots (default 1e-6). */
  eps?: number;
}

/**
 * AdaDelta (with a learning rate): d = sqrt(u + eps) / sqrt(v + eps) g; w -= lr d.
 * @example new mx.optimizers.AdaDelta(1.0)
 */
export class AdaDelta extends Optimizer {
  rho: number;
  eps: number;
  constructor(learningRate: LearningRate | WithLr<AdaDeltaOptions>, options?: AdaDeltaOptions) {
    const [lr, o] = split(learningRate, options, "AdaDelta");
    super();
    this.maybeSchedule("learning_rate", lr);
    this.rho = o.rho ?? 0.9;
    this.eps = o.eps ?? 1e-6;
    if (this.rho < 0) throw new MlxError(`AdaDelta rho should be >=0, ${pyFloat(this.rho)} was provided instead`, 1);
    if (this.eps <= 0) throw new MlxError(`AdaDelta epsilon should be >0, ${pyFloat(this.eps)} was provided instead`, 1);
  }
  initSingle(parameter: MxArray, state: ParamState): void {
    state.v = zerosLike(parameter);
    state.u = zerosLike(parameter);
  }
  applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    const lr = lrOf(this, gradient);
    const rho = this.rho;
    const v = add(multiply(rho, state.v!), multiply(1 - rho, square(gradient)));
    const d = multiply(divide(sqrt(add(state.u!, this.eps)), sqrt(add(v, this.eps))), gradient);
    const u = add(multiply(rho, state.u!), multiply(1 - rho, square(d)));
    state.v = v;
    state.u = u;
    return subtract(parameter, multiply(lr, d));
  }
}

/** Options of Adam. */
export interface AdamOptions {
  /** (beta1, beta2), the coefficients of the running averages (default [0.9, 0.999]). */
  betas?: readonly [number, number] | readonly number[];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Apply bias correction (default false). */
  biasCorrection?: boolean;
}

function checkBetas(betas: readonly number[], name: string): void {
  betas.forEach((beta, i) => {
    if (!(beta >= 0 && beta < 1)) throw new MlxError(`${name} beta${i + 1} should be in [0, 1), ${pyFloat(beta)} was provided instead`, 1);
  });
}

/**
 * Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr m / (sqrt(v) + eps).
 * @example new mx.optimizers.Adam(1e-3, { biasCorrection: true })
 */
export class Adam extends Optimizer {
  betas: readonly number[];
  eps: number;
  biasCorrection: boolean;
  constructor(learningRate: LearningRate | WithLr<AdamOptions>, options?: AdamOptions) {
    const [lr, o] = split(learningRate, options, "Adam");
    super();
    const betas = o.betas ?? [0.9, 0.999];
    const eps = o.eps ?? 1e-8;
    checkBetas(betas, "Adam");
    if (!(eps >= 0)) throw new MlxError(`Adam epsilon should be >=0, ${pyFloat(eps)} was provided instead`, 1);
    this.maybeSchedule("learning_rate", lr);
    this.betas = betas;
    this.eps = eps;
    this.biasCorrection = o.biasCorrection ?? false;
  }
  initSingle(parameter: MxArray, state: ParamState): void {
    state.m = zerosLike(parameter);
    state.v = zerosLike(parameter);
  }
  applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    const lr = lrOf(this, gradient);
    const [b1, b2] = this.betas as [number, number];
    const m = add(multiply(b1, state.m!), multiply(1 - b1, gradient));
    const v = add(multiply(b2, state.v!), multiply(1 - b2, square(gradient)));
    state.m = m;
    state.v = v;
    if (this.biasCorrection) {
      const step = this.step;
      const c1 = divide(lr, subtract(1, power(b1, step))).astype(gradient.dtype);
      const c2 = rsqrt(subtract(1, power(b2, step))).astype(gradient.dtype);
      return subtract(parameter, divide(multiply(c1, m), add(multiply(sqrt(v), c2), this.eps)));
    }
    return subtract(parameter, divide(multiply(lr, m), add(sqrt(v), this.eps)));
  }
}

/** Options of AdamW. */
export interface AdamWOptions extends AdamOptions {
  /** Decoupled weight decay (default 0.01). */
  weightDecay?: number;
}

/**
 * AdamW: Adam on w (1 - lr weightDecay).
 * @example new mx.optimizers.AdamW(1e-3, { weightDecay: 0.1 })
 */
export class AdamW extends Adam {
  weightDecay: number;
  constructor(learningRate: LearningRate | WithLr<AdamWOptions>, options?: AdamWOptions) {
    const [lr, o] = split(learningRate, options, "AdamW");
    super(lr, { betas: o.betas, eps: o.eps, biasCorrection: o.biasCorrection });
    this.weightDecay = o.weightDecay ?? 0.01;
  }
  override applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    const lr = lrOf(this, gradient);
    return super.applySingle(gradient, multiply(parameter, subtract(1, multiply(lr, this.weightDecay))), state);
  }
}

/** Options of Adamax. */
export interface AdamaxOptions {
  /** (beta1, beta2) (default [0.9, 0.999]). */
  betas?: readonly [number, number] | readonly number[];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
}

/**
 * Adamax: m = b1 m + (1 - b1) g; v = max(b2 v, |g|); w -= lr m / (v + eps).
 * @example new mx.optimizers.Adamax(2e-3)
 */
export class Adamax extends Adam {
  constructor(learningRate: LearningRate | WithLr<AdamaxOptions>, options?: AdamaxOptions) {
    const [lr, o] = split(learningRate, options, "Adamax");
    super(lr, { betas: o.betas, eps: o.eps });
  }
  override applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    const lr = lrOf(this, gradient);
    const [b1, b2] = this.betas as [number, number];
    const m = add(multiply(b1, state.m!), multiply(1 - b1, gradient));
    const v = maximum(multiply(b2, state.v!), abs(gradient));
    state.m = m;
    state.v = v;
    return subtract(parameter, divide(multiply(lr, m), add(v, this.eps)));
  }
}

/** Options of Lion. */
export interface LionOptions {
  /** (beta1, beta2) (default [0.9, 0.99]). */
  betas?: readonly [number, number] | readonly number[];
  /** Weight decay (default 0). */
  weightDecay?: number;
}

/**
 * Lion: c = b1 m + (1 - b1) g; m = b2 m + (1 - b2) g; w -= lr (sign(c) + wd w).
 * @example new mx.optimizers.Lion(1e-4)
 */
export class Lion extends Optimizer {
  betas: readonly number[];
  weightDecay: number;
  constructor(learningRate: LearningRate | WithLr<LionOptions>, options?: LionOptions) {
    const [lr, o] = split(learningRate, options, "Lion");
    super();
    const betas = o.betas ?? [0.9, 0.99];
    checkBetas(betas, "Lion");
    this.maybeSchedule("learning_rate", lr);
    this.betas = betas;
    this.weightDecay = o.weightDecay ?? 0;
  }
  initSingle(parameter: MxArray, state: ParamState): void {
    state.m = zerosLike(parameter);
  }
  applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    const lr = lrOf(this, gradient);
    const [b1, b2] = this.betas as [number, number];
    const m = state.m!;
    const c = add(multiply(b1, m), multiply(1 - b1, gradient));
    state.m = add(multiply(b2, m), multiply(1 - b2, gradient));
    if (this.weightDecay > 0) parameter = multiply(subtract(1, multiply(lr, this.weightDecay)), parameter);
    return subtract(parameter, multiply(lr, sign(c)));
  }
}

/** Options of Adafactor. */
export interface AdafactorOptions {
  /** The learning rate (default none: a relative step size is used). */
  learningRate?: LearningRate | null;
  /** (eps1 added to the squared gradients, eps2 for parameter scaling) (default [1e-30, 1e-3]). */
  eps?: readonly [number, number] | readonly number[];
  /** Clip the unscaled update at this RMS (default 1). */
  clipThreshold?: number;
  /** Exponent of the running average's coefficient (default -0.8). */
  decayRate?: number;
  /** First-moment coefficient; none (default) for no first moment. */
  beta1?: number | null;
  /** Weight decay (default 0). */
  weightDecay?: number;
  /** Scale the learning rate by max(eps2, RMS(w)) (default true). */
  scaleParameter?: boolean;
  /** Ignore learningRate and use a relative step size (default true). */
  relativeStep?: boolean;
  /** Relative step size grows with the step (default false). */
  warmupInit?: boolean;
}

const rms = (x: MxArray) => sqrt(mean(square(x)));

/**
 * Adafactor (factored second moments for arrays of 2 or more dimensions). The learning rate is
 * optional (by default a relative step size is used): `new Adafactor()`, `new Adafactor(1e-2,
 * { relativeStep: false })` or `new Adafactor({ learningRate: 1e-2, relativeStep: false })`.
 * @example new mx.optimizers.Adafactor({ learningRate: 1e-2, relativeStep: false })
 */
export class Adafactor extends Optimizer {
  eps: readonly number[];
  clipThreshold: number;
  decayRate: number;
  beta1: number | null;
  weightDecay: number;
  scaleParameter: boolean;
  relativeStep: boolean;
  warmupInit: boolean;
  constructor(learningRate?: LearningRate | AdafactorOptions | null, options?: AdafactorOptions) {
    super();
    if (learningRate !== undefined && learningRate !== null && typeof learningRate === "object" && !(learningRate instanceof MxArray)) {
      options = learningRate;
    } else {
      options = { ...options, learningRate: learningRate ?? options?.learningRate };
    }
    if (options.learningRate !== undefined && options.learningRate !== null) this.maybeSchedule("learning_rate", options.learningRate);
    this.eps = options.eps ?? [1e-30, 1e-3];
    this.clipThreshold = options.clipThreshold ?? 1.0;
    this.decayRate = options.decayRate ?? -0.8;
    this.beta1 = options.beta1 ?? null;
    this.weightDecay = options.weightDecay ?? 0;
    this.scaleParameter = options.scaleParameter ?? true;
    this.relativeStep = options.relativeStep ?? true;
    this.warmupInit = options.warmupInit ?? false;
  }
  initSingle(parameter: MxArray, state: ParamState): void {
    if (parameter.ndim >= 2) {
      const shape = parameter.shape;
      state.exp_avg_sq_row = zeros(shape.slice(0, -1), parameter.dtype);
      state.exp_avg_sq_col = zeros([...shape.slice(0, -2), shape[shape.length - 1]!], parameter.dtype);
    } else {
      state.exp_avg_sq = zerosLike(parameter);
    }
    if (this.beta1 !== null) state.exp_avg = zerosLike(parameter);
  }
  private computeLearningRate(step: MxArray, parameterRms: MxArray): MxArray {
    let size: MxArray;
    if (this.relativeStep) {
      const minStep = this.warmupInit ? multiply(1e-6, step) : 1e-2;
      size = minimum(minStep, rsqrt(step));
    } else {
      if (this.state.learning_rate === undefined) throw new MlxError("[Adafactor] A learning rate is needed when relativeStep is false.", 1);
      size = this.learningRate;
    }
    size = size.astype(parameterRms.dtype);
    const scale: number | MxArray = this.scaleParameter ? maximum(this.eps[1]!, parameterRms) : 1.0;
    return multiply(scale, size);
  }
  applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    const factored = gradient.ndim >= 2;
    const step = this.step;
    const parameterRms = rms(parameter);
    const learningRate = this.computeLearningRate(step, parameterRms);
    const beta2 = subtract(1.0, power(step, this.decayRate).astype(parameterRms.dtype));
    let update = add(square(gradient), this.eps[0]!);
    if (factored) {
      const row = add(multiply(beta2, state.exp_avg_sq_row!), multiply(subtract(1, beta2), mean(update, -1)));
      const col = add(multiply(beta2, state.exp_avg_sq_col!), multiply(subtract(1, beta2), mean(update, -2)));
      state.exp_avg_sq_row = row;
      state.exp_avg_sq_col = col;
      const rFactor = rsqrt(divide(row, mean(row, { axis: -1, keepdims: true })));
      const cFactor = rsqrt(col);
      update = multiply(multiply(expandDims(rFactor, -1), expandDims(cFactor, -2)), gradient);
    } else {
      const e = add(multiply(beta2, state.exp_avg_sq!), multiply(subtract(1, beta2), update));
      state.exp_avg_sq = e;
      update = multiply(rsqrt(e), gradient);
    }
    update = divide(update, maximum(1.0, divide(rms(update), this.clipThreshold)));
    update = multiply(learningRate, update);
    if (this.beta1 !== null) {
      const ea = add(multiply(this.beta1, state.exp_avg!), multiply(1 - this.beta1, update));
      state.exp_avg = ea;
      update = ea;
    }
    if (this.weightDecay !== 0) parameter = add(parameter, multiply(parameter, multiply(-this.weightDecay, learningRate)));
    return subtract(parameter, update);
  }
}

/** Options of Muon. */
export interface MuonOptions {
  /** Momentum strength (default 0.95). */
  momentum?: number;
  /** Weight decay, added to the gradient (default 0.01). */
  weightDecay?: number;
  /** Nesterov momentum (default true). */
  nesterov?: boolean;
  /** Newton-Schulz iterations (default 5). */
  nsSteps?: number;
}

/**
 * Muon: momentum, then the update of each array of 2 or more dimensions orthogonalized by a
 * quintic Newton-Schulz iteration.
 * @example new mx.optimizers.Muon(0.02)
 */
export class Muon extends Optimizer {
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  nsSteps: number;
  constructor(learningRate: LearningRate | WithLr<MuonOptions>, options?: MuonOptions) {
    const [lr, o] = split(learningRate, options, "Muon");
    super();
    this.maybeSchedule("learning_rate", lr);
    this.momentum = o.momentum ?? 0.95;
    this.weightDecay = o.weightDecay ?? 0.01;
    this.nesterov = o.nesterov ?? true;
    this.nsSteps = o.nsSteps ?? 5;
  }
  initSingle(parameter: MxArray, state: ParamState): void {
    state.v = zerosLike(parameter);
  }
  private newtonSchulz5(x: MxArray, steps: number): MxArray {
    const [a, b, c] = [3.4445, -4.775, 2.0315];
    const t = x.shape[0]! > x.shape[1]!;
    if (t) x = transpose(x);
    x = divide(x, add(sqrt(sum(square(x), { keepdims: true })), 1e-7));
    for (let i = 0; i < steps; i++) {
      const A = matmul(x, transpose(x));
      const B = addmm(multiply(b, A), A, A, { beta: 1.0, alpha: c });
      x = addmm(multiply(a, x), B, x, { beta: 1.0, alpha: 1.0 });
    }
    return t ? transpose(x) : x;
  }
  applySingle(gradient: MxArray, parameter: MxArray, state: ParamState): MxArray {
    if (this.weightDecay !== 0) gradient = add(gradient, multiply(this.weightDecay, parameter));
    let v = multiply(this.momentum, state.v!);
    v = add(v, multiply(1 - this.momentum, gradient));
    state.v = v;
    let update = this.nesterov ? add(multiply(gradient, 1 - this.momentum), multiply(v, this.momentum)) : v;
    let lr = lrOf(this, gradient);
    if (update.ndim >= 2) {
      const shape = update.shape;
      const reshapeNeeded = update.ndim > 2;
      if (reshapeNeeded) update = reshape(update, [shape[0]!, -1]);
      update = this.newtonSchulz5(update, this.nsSteps);
      if (reshapeNeeded) update = reshape(update, shape);
      const s = update.shape;
      lr = multiply(lr, Math.max(1, s[s.length - 2]! / s[s.length - 1]!) ** 0.5);
    }
    return subtract(parameter, multiply(lr, update));
  }
}

/**
 * Scale a tree of gradients so that their global L2 norm is at most maxNorm. Returns the
 * (possibly) rescaled gradients and the norm before clipping.
 * @example const [clipped, norm] = mx.optimizers.clipGradNorm(grads, 1.0)
 */
export function clipGradNorm<T>(grads: T, maxNorm: number): [T, MxArray] {
  if (maxNorm < 0) throw new MlxError(`max_norm should be >=0, ${pyFloat(maxNorm)} was provided instead`, 1);
  let acc: number | MxArray = 0.0;
  for (const [, g0] of treeFlattenPaths(grads)) {
    let g = g0 as MxArray;
    if (g.dtype === float16) g = g.astype(float32);
    acc = add(acc, sum(square(g)));
  }
  const totalNorm = sqrt(acc);
  const normalizer = minimum(divide(maxNorm, add(totalNorm, 1e-6)), 1.0);
  const clipped = treeMap((g0) => {
    const g = g0 as MxArray;
    return issubdtype(g.dtype, "floating") ? multiply(g, normalizer).astype(g.dtype) : multiply(g, normalizer);
  }, grads) as T;
  return [clipped, totalNorm];
}

/** Python's str() of a float (how MLX's messages print numbers). */
export function pyFloat(x: number): string {
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


