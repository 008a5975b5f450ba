// mx.optimizers: MLX's mlx.optimizers (optimizers, schedules, clipGradNorm), composed in
// TypeScript from mx ops.
export { Optimizer, MultiOptimizer, type LearningRate, type OptimizerState, type ParamState, type Schedule, type Updatable } from "./optimizer";
export {
  SGD, RMSprop, Adagrad, AdaDelta, Adam, AdamW, Adamax, Lion, Adafactor, Muon, clipGradNorm,
  type SGDOptions, type RMSpropOptions, type AdagradOptions, type AdaDeltaOptions, type AdamOptions, type AdamWOptions,
  type AdamaxOptions, type LionOptions, type AdafactorOptions, type MuonOptions,
} from "./optimizers";
export { cosineDecay, exponentialDecay, joinSchedules, linearSchedule, stepDecay, type StepSchedule } from "./schedulers";
