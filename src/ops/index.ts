// The op families, each in its own file; importing this installs their mx.Array methods.
export * from "./elementwise";
export * from "./reduce";
export * from "./shape";
export * from "./sort";
export * from "./misc";
export * from "./indexing";
export * from "./matmul";
export * from "./einsum";
export * from "./matmul_variants";
export * from "./quantized";
export * from "./conv";
export * from "./unique";
