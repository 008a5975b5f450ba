//! libmlxbun: the mlx-bun engine. The C ABI is defined in abi.zig; everything else is internal.
pub const abi = @import("abi.zig");

comptime {
    _ = abi; // analyse the table so its exports are emitted
}

test {
    _ = @import("abi.zig");
    _ = @import("dtype.zig");
    _ = @import("half.zig");
    _ = @import("errors.zig");
    _ = @import("alloc.zig");
    _ = @import("array.zig");
    _ = @import("handles.zig");
    _ = @import("convert.zig");
    _ = @import("eval.zig");
    _ = @import("engine_test.zig");
    _ = @import("gen_abi.zig");
    _ = @import("pool.zig");
    _ = @import("gemm.zig");
    _ = @import("amx.zig");
    _ = @import("dpbf16.zig");
    _ = @import("libm.zig");
    _ = @import("cpu.zig");
    _ = @import("qmm_kernel.zig");
    _ = @import("fft_kernel.zig");
    _ = @import("prims/elementwise.zig");
    _ = @import("prims/reduce.zig");
    _ = @import("prims/shape.zig");
    _ = @import("prims/sort.zig");
    _ = @import("prims/indexing.zig");
    _ = @import("prims/random.zig");
    _ = @import("prims/matmul.zig");
    _ = @import("prims/bytes.zig");
    _ = @import("prims/quantized.zig");
    _ = @import("prims/fft.zig");
    _ = @import("prims/linalg.zig");
    _ = @import("prims/conv.zig");
    _ = @import("prims/fast.zig");
    _ = @import("prims/fused.zig");
    _ = @import("fuse.zig");
    _ = @import("prims/scalar_math.zig");
    _ = @import("grad.zig");
    _ = @import("vmap.zig");
    _ = @import("debug.zig");
    _ = @import("external.zig");
    _ = @import("dlpack.zig");
    _ = @import("reflect.zig");
    _ = @import("compile.zig");
}
