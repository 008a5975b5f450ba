//! Root of the kernel objects of a portable x86-64 build (engine/cpu.zig explains the scheme).
//!
//! build.zig compiles this file once per CPU level (baseline x86-64, x86-64-v3, x86-64-v4) with
//! the build option `level`, and links the objects into the library built for the baseline CPU.
//! Each object exports the GEMM entry points (engine/gemm.zig, including the AMX path), the direct
//! convolution (engine/conv_kernel.zig), the quantized matmul (engine/qmm_kernel.zig), the FFT's
//! passes (engine/fft_kernel.zig), the
//! vectorized elementwise kernels and float casts (prims/elementwise.zig) and reductions (prims/reduce.zig) under
//! hidden names `mlxb_k_<level>_<entry>`, which engine/cpu.zig picks from at run time. Only the
//! entries are visible outside the object; everything else (std, packing buffers) is private to
//! it, and its parallel loops run on the engine's thread pool (engine/pool.zig). An entry takes an
//! `extern struct` context the engine filled (pointers, layout, plan, scratch it allocated): the
//! object must not touch engine state (allocator, handles, primitives.reference_mode), because it
//! has its own copy of every global.
//!
//! Same bits at every level (checked by test/dispatch.test.ts against the native build): Zig
//! never contracts a * b + c into an FMA, and `@mulAdd` is correctly rounded at every level (the
//! baseline calls fmaf); float16 loads and stores round the same in hardware and software (NaNs
//! are rewritten explicitly); float sums and products, whose rounding depends on the lane count,
//! use 256-bit lanes at every level (reduce.zig Simd); erf of a NaN is explicit (its sign would
//! otherwise follow instruction choice); the quantized products round multiply and add separately
//! (no @mulAdd, which would be a software fmaf per lane at baseline). Left to the instruction:
//! which NaN a binary op returns when both operands are NaN (IEEE leaves it open; so does MLX).
const std = @import("std");
const gemm = @import("gemm.zig");
const conv_kernel = @import("conv_kernel.zig");
const qmm_kernel = @import("qmm_kernel.zig");
const fft_kernel = @import("fft_kernel.zig");
const amx = @import("amx.zig");
const ew = @import("prims/elementwise.zig");
const reduce = @import("prims/reduce.zig");
const Dtype = @import("dtype.zig").Dtype;
const level = @import("mlxb_build").level;

fn amxMode(mode: u8) callconv(.c) void {
    amx.mode = @enumFromInt(mode);
}

fn dpMode(mode: u8) callconv(.c) void {
    gemm.dpbf16.mode = @enumFromInt(mode);
}

comptime {
    const prefix = "mlxb_k_" ++ level ++ "_";
    for (gemm.kernel_combos) |c| {
        const E = gemm.Entry(c[0], c[1], c[2], c[3]);
        @export(&E.call, .{ .name = prefix ++ gemm.entryName(c[0], c[1], c[2], c[3]), .visibility = .hidden });
    }
    for (conv_kernel.kernel_combos) |c| {
        @export(&conv_kernel.Entry(c[0], c[1]).call, .{ .name = prefix ++ conv_kernel.entryName(c[0], c[1]), .visibility = .hidden });
    }
    // The quantized matrix product (engine/qmm_kernel.zig).
    @export(&qmm_kernel.fastEntry, .{ .name = prefix ++ "qmm_fast", .visibility = .hidden });
    @export(&qmm_kernel.transposedEntry, .{ .name = prefix ++ "qmm_t", .visibility = .hidden });
    @export(&qmm_kernel.plainEntry, .{ .name = prefix ++ "qmm_n", .visibility = .hidden });
    @export(&qmm_kernel.decodeEntry, .{ .name = prefix ++ "qmm_decode", .visibility = .hidden });
    @export(&qmm_kernel.quantizeEntry, .{ .name = prefix ++ "qmm_quantize", .visibility = .hidden });
    @export(&qmm_kernel.qdqEntry, .{ .name = prefix ++ "qmm_qdq", .visibility = .hidden });
    // One FFT pass over the lines of an axis (engine/fft_kernel.zig).
    @export(&fft_kernel.passEntry, .{ .name = prefix ++ "fft_pass", .visibility = .hidden });
    @export(&amxMode, .{ .name = prefix ++ "amx_mode", .visibility = .hidden });
    @export(&dpMode, .{ .name = prefix ++ "dpbf16_mode", .visibility = .hidden });
    @setEvalBranchQuota(100_000);
    // Elementwise kernels (prims/elementwise.zig: unaryDispatched, binaryDispatched, where).
    for (std.enums.values(Dtype)) |d| {
        for (std.enums.values(ew.UnaryOp)) |op| if (ew.unaryDispatched(op, d)) {
            @export(&ew.UnaryKernel(op, d).call, .{ .name = prefix ++ ew.unaryEntryName(op, d), .visibility = .hidden });
        };
        for (std.enums.values(ew.BinaryOp)) |op| if (ew.binaryDispatched(op, d)) {
            @export(&ew.BinaryKernel(op, d).call, .{ .name = prefix ++ ew.binaryEntryName(op, d), .visibility = .hidden });
        };
    }
    // Converting copies between float32, float16 and bfloat16 (elementwise.castDispatched).
    for (std.enums.values(Dtype)) |s| for (std.enums.values(Dtype)) |d| if (ew.castDispatched(s, d)) {
        @export(&ew.CastKernel(s, d).call, .{ .name = prefix ++ ew.castEntryName(s, d), .visibility = .hidden });
    };
    // Reductions with SIMD fast paths (prims/reduce.zig: reduceDispatched).
    for (std.enums.values(Dtype)) |d| for (std.enums.values(reduce.ReduceOp)) |op| if (reduce.reduceDispatched(op, d)) {
        @export(&reduce.ReduceKernel(op, d).call, .{ .name = prefix ++ reduce.reduceEntryName(op, d), .visibility = .hidden });
    };
    for (std.enums.values(Dtype)) |d| if (reduce.argDispatched(d)) {
        @export(&reduce.ArgKernel(d, true).call, .{ .name = prefix ++ reduce.argEntryName(d, true), .visibility = .hidden });
        @export(&reduce.ArgKernel(d, false).call, .{ .name = prefix ++ reduce.argEntryName(d, false), .visibility = .hidden });
    };
    for (reduce.logsumexp_dtypes) |d| {
        @export(&reduce.LogsumexpKernel(d).call, .{ .name = prefix ++ reduce.logsumexpEntryName(d), .visibility = .hidden });
    }
    for ([_]Dtype{ .uint8, .uint16, .uint32, .uint64 }) |b| {
        @export(&ew.SelectKernel(b).call, .{ .name = prefix ++ ew.selectEntryName(b), .visibility = .hidden });
    }
}
