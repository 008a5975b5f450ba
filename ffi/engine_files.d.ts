// Shared libraries imported `with { type: "file" }` (ffi/engine_dev_*.ts and the engine
// packages): the import is the file's path.
declare module "*.so" {
  const path: string;
  export default path;
}
declare module "*.dylib" {
  const path: string;
  export default path;
}
