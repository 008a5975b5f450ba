// The shape family (issue 3): being filled in. Kernels in engine/prims/shape.zig.
export {};
