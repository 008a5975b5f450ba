// Errors: every failure of an op is an MlxError whose message names the op, as MLX's do.
export { MlxError } from "../ffi/lib";
