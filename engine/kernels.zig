//! Root of the kernel objects of a portable x86-64 build (engine/cpu.zig explains the scheme).
//!
//! build.zig compiles this file once per CPU level (baseline x86-64, x86-64-v3, x86-64-v4) with
//! the build option `level`, and links the objects into the library built for the baseline CPU.
//! Each object exports the GEMM entry points (engine/gemm.zig, including the AMX path) under
//! hidden names `mlxb_k_<level>_<entry>`, which engine/cpu.zig picks from at run time. Only the
//! entries are visible outside the object; everything else (std, packing buffers) is private to
//! it, and its parallel loops run on the engine's thread pool (engine/pool.zig).
const gemm = @import("gemm.zig");
const amx = @import("amx.zig");
const level = @import("mlxb_build").level;

fn amxForceOff(off: bool) callconv(.c) void {
    amx.force_off = off;
}

comptime {
    const prefix = "mlxb_k_" ++ level ++ "_";
    for (gemm.kernel_combos) |c| {
        const E = gemm.Entry(c[0], c[1], c[2], c[3]);
        @export(&E.call, .{ .name = prefix ++ gemm.entryName(c[0], c[1], c[2], c[3]), .visibility = .hidden });
    }
    @export(&amxForceOff, .{ .name = prefix ++ "amx_force_off", .visibility = .hidden });
}
