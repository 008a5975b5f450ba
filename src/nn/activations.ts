// Activation functions and their layer classes (mlx/nn/layers/activations.py), composed from mx
// ops in the same order of operations as MLX (MLX compiles them; the arithmetic is the same).
import type { MxArray } from "../array";
import {
  abs, add, divide, erf, exp, logaddexp, logsumexp, max, maximum, minimum, multiply, negative, sigmoid as mxSigmoid,
  sign, softmax as mxSoftmax, split, square, stopGradient, subtract, tanh as mxTanh, where, greater, greaterEqual, power,
} from "../ops/index";
import { full } from "../creation";
import { Module } from "./module";

/** `sigmoid(x) = 1 / (1 + exp(-x))`. */
export function sigmoid(x: MxArray): MxArray {
  return mxSigmoid(x);
}
/** `max(x, 0)`. */
export function relu(x: MxArray): MxArray {
  return maximum(x, 0);
}
/** `max(x, 0)^2`. */
export function relu2(x: MxArray): MxArray {
  return square(maximum(x, 0));
}
/** `min(max(x, 0), 6)`. */
export function relu6(x: MxArray): MxArray {
  return minimum(maximum(x, 0), 6.0);
}
/** `max(negativeSlope * x, x)` (default slope 0.01). */
export function leakyRelu(x: MxArray, negativeSlope = 0.01): MxArray {
  return maximum(multiply(negativeSlope, x), x);
}
/** `x - logsumexp(x)` along `axis` (default -1). */
export function logSoftmax(x: MxArray, axis = -1): MxArray {
  const y = subtract(x, stopGradient(max(x, { axis, keepdims: true })));
  return subtract(y, logsumexp(y, { axis, keepdims: true }));
}
/** `x` if x > 0 else `alpha * (exp(x) - 1)` (default alpha 1). */
export function elu(x: MxArray, alpha = 1.0): MxArray {
  return where(greater(x, 0), x, multiply(alpha, subtract(exp(x), 1)));
}
/** mx.softmax along `axis` (default -1). */
export function softmax(x: MxArray, axis = -1): MxArray {
  return mxSoftmax(x, { axis });
}
/** `log(1 + exp(x))`. */
export function softplus(x: MxArray): MxArray {
  return logaddexp(x, 0);
}
/** `x / (1 + |x|)`. */
export function softsign(x: MxArray): MxArray {
  return divide(x, add(1, abs(x)));
}
/** `x - sign(x) * lambd` where |x| > lambd, else 0 (default lambd 0.5). */
export function softshrink(x: MxArray, lambd = 0.5): MxArray {
  return where(greater(abs(x), lambd), subtract(x, multiply(sign(x), lambd)), 0);
}
/** `max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)` (default alpha 1). */
export function celu(x: MxArray, alpha = 1.0): MxArray {
  return add(maximum(x, 0.0), multiply(alpha, subtract(exp(divide(minimum(x, 0.0), alpha)), 1)));
}
/** `x * sigmoid(x)`. */
export function silu(x: MxArray): MxArray {
  return multiply(x, mxSigmoid(x));
}
/** `-softplus(-x)`. */
export function logSigmoid(x: MxArray): MxArray {
  return negative(softplus(negative(x)));
}
/** `x * (1 + erf(x / sqrt(2))) / 2`. */
export function gelu(x: MxArray): MxArray {
  return divide(multiply(x, add(1, erf(divide(x, Math.sqrt(2))))), 2);
}
/** The tanh approximation of gelu: `0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))`. */
export function geluApprox(x: MxArray): MxArray {
  const inner = multiply(Math.sqrt(2 / Math.PI), add(x, multiply(0.044715, power(x, 3))));
  return multiply(multiply(0.5, x), add(1, mxTanh(inner)));
}
/** The sigmoid approximation of gelu: `x * sigmoid(1.702x)`. */
export function geluFastApprox(x: MxArray): MxArray {
  return multiply(x, mxSigmoid(multiply(1.702, x)));
}
/** Gated linear unit: split `x` in two along `axis` (default -1), `a * sigmoid(b)`. */
export function glu(x: MxArray, axis = -1): MxArray {
  const [a, b] = split(x, 2, axis);
  return multiply(a!, mxSigmoid(b!));
}
/** 1 where x >= threshold else 0 (int32; default threshold 0). */
export function step(x: MxArray, threshold = 0.0): MxArray {
  return where(greaterEqual(x, threshold), 1, 0);
}
/** `elu(x, 1.67326) * 1.0507`. */
export function selu(x: MxArray): MxArray {
  return multiply(elu(x, 1.67326), 1.0507);
}
/** `max(0, x) + alpha * min(0, x)`. */
export function prelu(x: MxArray, alpha: MxArray): MxArray {
  return add(maximum(0, x), multiply(alpha, minimum(0, x)));
}
/** `x * tanh(softplus(x))`. */
export function mish(x: MxArray): MxArray {
  return multiply(x, mxTanh(softplus(x)));
}
/** `x * min(max(x + 3, 0), 6) / 6`. */
export function hardswish(x: MxArray): MxArray {
  return divide(multiply(x, minimum(maximum(add(x, 3), 0), 6)), 6);
}
/** `min(max(x, minVal), maxVal)` (defaults -1, 1). */
export function hardTanh(x: MxArray, minVal = -1.0, maxVal = 1.0): MxArray {
  return minimum(maximum(x, minVal), maxVal);
}
/** `x` where |x| > lambd, else 0 (default lambd 0.5). */
export function hardShrink(x: MxArray, lambd = 0.5): MxArray {
  return where(greater(abs(x), lambd), x, 0);
}
/** `softmax(-x)` along `axis` (default -1). */
export function softmin(x: MxArray, axis = -1): MxArray {
  return mxSoftmax(negative(x), { axis });
}
/** mx.tanh. */
export function tanh(x: MxArray): MxArray {
  return mxTanh(x);
}

// ---------------------------------------------------------------------------------------------
// Classes

function simple(name: string, f: (x: MxArray) => MxArray) {
  const C = class extends Module {
    forward(x: MxArray): MxArray {
      return f(x);
    }
  };
  Object.defineProperty(C, "name", { value: name });
  return C;
}

/** Layer form of `sigmoid`. */
export const Sigmoid = simple("Sigmoid", sigmoid);
/** Layer form of `mish`. */
export const Mish = simple("Mish", mish);
/** Layer form of `relu`. */
export const ReLU = simple("ReLU", relu);
/** Layer form of `relu2`. */
export const ReLU2 = simple("ReLU2", relu2);
/** Layer form of `relu6`. */
export const ReLU6 = simple("ReLU6", relu6);
/** Layer form of `softmax` (last axis). */
export const Softmax = simple("Softmax", (x) => softmax(x));
/** Layer form of `softplus`. */
export const Softplus = simple("Softplus", softplus);
/** Layer form of `softsign`. */
export const Softsign = simple("Softsign", softsign);
/** Layer form of `silu`. */
export const SiLU = simple("SiLU", silu);
/** Layer form of `logSoftmax` (last axis). */
export const LogSoftmax = simple("LogSoftmax", (x) => logSoftmax(x));
/** Layer form of `logSigmoid`. */
export const LogSigmoid = simple("LogSigmoid", logSigmoid);
/** Layer form of `tanh`. */
export const Tanh = simple("Tanh", tanh);
/** Layer form of `hardswish`. */
export const Hardswish = simple("Hardswish", hardswish);
/** Layer form of `selu`. */
export const SELU = simple("SELU", selu);
/** Layer form of `hardTanh` (bounds -1, 1). */
export const HardTanh = simple("HardTanh", (x) => hardTanh(x));
/** Layer form of `softmin` (last axis). */
export const Softmin = simple("Softmin", (x) => softmin(x));

/** Layer form of `glu` along `axis` (default -1). */
export class GLU extends Module {
  constructor(public axis = -1) {
    super();
  }
  forward(x: MxArray): MxArray {
    return glu(x, this.axis);
  }
}

/** Layer form of `leakyRelu`. */
export class LeakyReLU extends Module {
  constructor(negativeSlope = 0.01) {
    super();
    this._negativeSlope = negativeSlope;
  }
  _negativeSlope: number;
  forward(x: MxArray): MxArray {
    return leakyRelu(x, this._negativeSlope);
  }
}

/** Layer form of `elu`. */
export class ELU extends Module {
  _alpha: number;
  constructor(alpha = 1.0) {
    super();
    this._alpha = alpha;
  }
  forward(x: MxArray): MxArray {
    return elu(x, this._alpha);
  }
}

/** Layer form of `celu`. */
export class CELU extends Module {
  _alpha: number;
  constructor(alpha = 1.0) {
    super();
    this._alpha = alpha;
  }
  forward(x: MxArray): MxArray {
    return celu(x, this._alpha);
  }
}

/** Layer form of `softshrink`. */
export class Softshrink extends Module {
  constructor(public lambd = 0.5) {
    super();
  }
  forward(x: MxArray): MxArray {
    return softshrink(x, this.lambd);
  }
}

/** Layer form of `hardShrink`. */
export class HardShrink extends Module {
  constructor(public lambd = 0.5) {
    super();
  }
  forward(x: MxArray): MxArray {
    return hardShrink(x, this.lambd);
  }
}

/** Layer form of `step`. */
export class Step extends Module {
  constructor(public threshold = 0.0) {
    super();
  }
  forward(x: MxArray): MxArray {
    return step(x, this.threshold);
  }
}

/** `prelu` with a learned `weight` of `numParameters` slopes (default 1, initialised to `init` = 0.25). */
export class PReLU extends Module {
  weight: MxArray;
  constructor(numParameters = 1, init = 0.25) {
    super();
    this.weight = full([numParameters], init);
  }
  forward(x: MxArray): MxArray {
    return prelu(x, this.weight);
  }
}

/** gelu; `approx` "none" (exact), "precise"/"tanh" (geluApprox) or "fast" (geluFastApprox). */
export class GELU extends Module {
  _approx: string;
  constructor(approx: "none" | "precise" | "tanh" | "fast" = "none") {
    super();
    this._approx = approx;
    const allowed = ["none", "precise", "tanh", "fast"];
    if (!allowed.includes(approx)) throw new Error(`The approximation should be in ['none', 'precise', 'tanh', 'fast'] but '${approx}' was given`);
  }
  forward(x: MxArray): MxArray {
    if (this._approx === "none") return gelu(x);
    if (this._approx === "precise" || this._approx === "tanh") return geluApprox(x);
    return geluFastApprox(x);
  }
}
