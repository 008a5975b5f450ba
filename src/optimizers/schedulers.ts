// The schedules of mlx.optimizers: functions from the step (a uint64 scalar array) to a value,
// composed from mx ops as MLX writes them.
import { array, MxArray } from "../array";
import { uint64 } from "../dtype";
import { MlxError } from "../errors";
import { add, cos, floorDivide, less, minimum, multiply, power, subtract, where } from "../ops/elementwise";
import type { Schedule } from "./optimizer";

/** A built-in schedule: also takes the step as a JS number. */
export type StepSchedule = (step: MxArray | number) => MxArray;

const stepArray = (step: MxArray | number) => (typeof step === "number" ? array(step, uint64) : step);

/**
 * init * decayRate ** step.
 * @example new mx.optimizers.SGD(mx.optimizers.exponentialDecay(0.1, 0.9))
 */
export function exponentialDecay(init: number, decayRate: number): StepSchedule {
  return (step) => multiply(init, power(decayRate, stepArray(step)));
}

/**
 * init * decayRate ** floor(step / stepSize).
 * @example mx.optimizers.stepDecay(0.1, 0.9, 10)
 */
export function stepDecay(init: number, decayRate: number, stepSize: number): StepSchedule {
  if (stepSize < 1) throw new MlxError(`step_size must be greater than 0, but got ${stepSize}.`, 1);
  return (step) => multiply(init, power(decayRate, floorDivide(stepArray(step), stepSize)));
}

/**
 * Cosine decay from init to end over decaySteps steps (constant after).
 * @example mx.optimizers.cosineDecay(0.1, 1000)
 */
export function cosineDecay(init: number, decaySteps: number, end = 0.0): StepSchedule {
  if (decaySteps < 1) throw new MlxError(`decay_steps must be greater than 0, but got ${decaySteps}.`, 1);
  return (step) => {
    const s = minimum(stepArray(step), decaySteps);
    const decay = multiply(0.5, add(1.0, cos(multiply(Math.PI / decaySteps, s))));
    return add(end, multiply(decay, init - end));
  };
}

/**
 * Schedule i+1 takes over at boundaries[i], counting steps from that boundary.
 * @example mx.optimizers.joinSchedules([mx.optimizers.linearSchedule(0, 0.1, 10), mx.optimizers.cosineDecay(0.1, 200)], [10])
 */
export function joinSchedules(schedules: readonly Schedule[], boundaries: readonly number[]): StepSchedule {
  if (schedules.length === 0) throw new MlxError("Must provide at least 1 schedule to join.", 1);
  if (schedules.length !== boundaries.length + 1) {
    throw new MlxError(`Received ${boundaries.length} boundaries but expected ${schedules.length - 1}.`, 1);
  }
  return (step0) => {
    const step = stepArray(step0);
    let output = schedules[0]!(step);
    boundaries.forEach((boundary, i) => {
      output = where(less(step, boundary), output, schedules[i + 1]!(subtract(step, boundary)));
    });
    return output;
  };
}

/**
 * Linear from init to end over `steps` steps (end after).
 * @example mx.optimizers.linearSchedule(0, 0.1, 100)
 */
export function linearSchedule(init: number, end: number, steps: number): StepSchedule {
  if (steps < 1) throw new MlxError(`steps must be greater than 0, but got ${steps}.`, 1);
  return (step) => add(multiply(minimum(stepArray(step), steps), (end - init) / steps), init);
}
