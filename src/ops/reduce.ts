// The reduce family (issue 3): being filled in. Kernels in engine/prims/reduce.zig.
export {};
