//! Raw GFLOP/s of the engine's GEMM kernel (no graph, no FFI), for tuning its blocking.
//!   zig run -O ReleaseFast -lc --dep gemm -Mroot=bench/gemm_kernel.zig --dep mlxb_build -Mgemm=engine/gemm.zig \
//!     -Mmlxb_build=bench/gemm_kernel_options.zig
//! (add -mcpu x86_64 / x86_64_v3 / x86_64_v4 for the kernel levels of a portable build, engine/cpu.zig)
const std = @import("std");
const gemm = @import("gemm");

pub fn main() !void {
    const gpa = std.heap.c_allocator;
    const sizes = [_]usize{ 64, 128, 256, 512, 1024, 2048 };
    // float32, float64, then bfloat16 storage (float32 compute) on AMX tiles and on the vector path.
    inline for (.{ f32, f64, gemm.BF16, gemm.BF16 }, 0..) |S, variant| {
        const T = if (S == gemm.BF16) f32 else S;
        gemm.amx.force_off = variant == 3;
        const label = if (variant == 2) "bf16 (AMX)" else if (variant == 3) "bf16 (vector)" else @typeName(S);
        for (sizes) |n| {
            const a = try gpa.alloc(S, n * n);
            const b = try gpa.alloc(S, n * n);
            const c = try gpa.alloc(S, n * n);
            defer gpa.free(a);
            defer gpa.free(b);
            defer gpa.free(c);
            for (a, 0..) |*x, i| x.* = if (S == gemm.BF16) .{ .bits = gemm.half.f32ToBf16(@floatFromInt(i % 13)) } else @floatFromInt(i % 13);
            for (b, 0..) |*x, i| x.* = if (S == gemm.BF16) .{ .bits = gemm.half.f32ToBf16(@floatFromInt(i % 7)) } else @floatFromInt(i % 7);
            const M = gemm.Mat(S);
            const am = M{ .ptr = a.ptr, .rs = @intCast(n), .cs = 1 };
            const bm = M{ .ptr = b.ptr, .rs = @intCast(n), .cs = 1 };
            const cm = M{ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 };
            const flops = 2.0 * @as(f64, @floatFromInt(n * n * n));
            const reps: usize = @max(3, @as(usize, @intFromFloat(2e10 / flops)));
            gemm.gemm(T, S, S, S, n, n, n, 1, am, bm, 0, cm); // warm
            var best: f64 = 1e30;
            for (0..reps) |_| {
                var t = try std.time.Timer.start();
                gemm.gemm(T, S, S, S, n, n, n, 1, am, bm, 0, cm);
                best = @min(best, @as(f64, @floatFromInt(t.read())));
            }
            std.debug.print("{s} n={d}: {d:.1} GFLOP/s ({d:.3} ms)\n", .{ label, n, flops / best, best / 1e6 });
        }
    }
}
