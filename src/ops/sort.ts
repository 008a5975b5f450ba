// The sort family (issue 3): being filled in. Kernels in engine/prims/sort.zig.
export {};
