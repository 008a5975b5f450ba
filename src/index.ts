/**
 * mlx-bun: MLX for Bun. `import * as mx from "mlx-bun"`.
 *
 * Names follow MLX's Python API in camelCase; keyword arguments are a trailing options
 * object. See docs/COMPAT.md for what is available.
 * @module
 */
export { MxArray as Array, array, astype, type ArrayInput, type ArrayOptions, type Complex, type DataArray, type NestedList, type Scalar } from "./array";
export {
  Dtype, type DtypeLike, type DtypeName, bool, bool as bool_, uint8, uint16, uint32, uint64, int8, int16, int32, int64,
  float16, float32, float64, bfloat16, complex64, dtypes, promoteTypes,
} from "./dtype";
export { MlxError } from "./errors";
export {
  arange, asarray, broadcastShapes, empty, emptyLike, eye, full, fullLike, identity, linspace, ones, onesLike, tri, tril, triu, zeros, zerosLike,
  type AsarrayOptions, type CreationOptions,
} from "./creation";
export { evaluate as eval, asyncEval } from "./eval";
export {
  Device, DeviceType, Stream, cpu, gpu, defaultDevice, setDefaultDevice, defaultStream, setDefaultStream, newStream, stream,
  synchronize, isAvailable, type StreamOrDevice, ThreadLocalStream, newThreadLocalStream, newThreadUnsafeStream, clearStreams,
  deviceCount, deviceInfo, setWiredLimit,
} from "./device";
export {
  getActiveMemory, getPeakMemory, resetPeakMemory, getCacheMemory, clearCache, getMemoryLimit, setMemoryLimit,
  setCacheLimit, getLiveHandleCount, getLiveNodeCount, getWrappedHostBufferCount, dispose, tidy, keep, getArrayBufferSize,
} from "./memory";
export { setPrintoptions, getPrintoptions, printoptions, PrintOptions } from "./printoptions";
export * from "./ops/index";
export * as random from "./random";
export * as optimizers from "./optimizers/index";
export * as fft from "./fft";
export * as linalg from "./linalg";
export * as fast from "./fast";
export * as distributed from "./distributed";
export * as metal from "./metal";
export * as cuda from "./cuda";
export { exportToDot, type DotTarget } from "./dot";
export { norm as matrixNorm } from "./linalg";
export { checkpoint, customFunction, grad, jvp, valueAndGrad, vjp, vmap, type AxisTree, type CustomFunction, type GradOptions, type Tree } from "./transforms";
export type { ArrayOrScalar } from "./ops/util";
export { load, save, saveGguf, saveSafetensors, savez, savezCompressed, type FileFormat, type GgufMetadataValue, type LoadOptions, type LoadSource, type SaveSink, type SaveTarget } from "./io";
export { DLDeviceType, DLPackTensor, fromDlpack, getLiveDlpackExportCount, type DLPackProducer, type FromDlpackOptions, type ToDlpackOptions } from "./dlpack";
export * as utils from "./utils";
export * as nn from "./nn/index";
export { compile, disableCompile, enableCompile, exporter, exportFunction, importFunction, type CompileOptions, type CompiledFunction, type ExporterOptions, type ExportTarget, type FunctionExporter, type ImportedFunction, type ImportOptions } from "./compile";
export type { ExportArrayInfo, ExportCallback, ExportRecord } from "./export_records";
