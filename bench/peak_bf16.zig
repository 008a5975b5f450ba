//! One thread's rate of float32 FMAs (16 lanes) against AVX512-BF16's VDPBF16PS (16 lanes of a
//! float32 accumulator += two bfloat16 products each), in alternated runs, for deciding whether a
//! bfloat16 GEMM without AMX tiles should use the instruction: it does 2x the multiply-adds per
//! instruction, so if it issues as often as an FMA the kernel would run at 2x float32.
//!   zig run -O ReleaseFast -mcpu=native bench/peak_bf16.zig      (needs a CPU with avx512bf16)
const std = @import("std");
const builtin = @import("builtin");

const V = @Vector(16, f32);
const acc_count = 12;
const iters: usize = 100_000_000 / 16;

fn fmaRate() f64 {
    var acc: [acc_count]V = undefined;
    for (&acc, 0..) |*a, i| a.* = @splat(@as(f32, @floatFromInt(i)) * 1e-3);
    const x: V = @splat(0.999999);
    const y: V = @splat(1e-7);
    const t0 = std.time.nanoTimestamp();
    var i: usize = 0;
    while (i < iters) : (i += 1) {
        inline for (&acc) |*a| a.* = @mulAdd(V, a.*, x, y);
    }
    const ns: f64 = @floatFromInt(std.time.nanoTimestamp() - t0);
    var s: V = @splat(0);
    for (acc) |a| s += a;
    std.mem.doNotOptimizeAway(s);
    return @as(f64, @floatFromInt(iters * acc_count * 16 * 2)) / ns;
}

/// Multiply-adds counted as FLOPs (2 per product, 32 products per instruction).
fn dpbf16Rate() f64 {
    var acc: [acc_count]V = undefined;
    for (&acc, 0..) |*a, i| a.* = @splat(@as(f32, @floatFromInt(i)) * 1e-3);
    // 0x3F80 (1.0) and 0x3380 (~6e-8) as bfloat16 pairs.
    const x: V = @bitCast(@as(@Vector(16, u32), @splat(0x3F803F80)));
    const y: V = @bitCast(@as(@Vector(16, u32), @splat(0x33803380)));
    const t0 = std.time.nanoTimestamp();
    var i: usize = 0;
    while (i < iters) : (i += 1) {
        inline for (&acc) |*a| {
            a.* = asm ("vdpbf16ps %[y], %[x], %[acc]"
                : [acc] "=v" (-> V),
                : [x] "v" (x),
                  [y] "v" (y),
                  [in] "0" (a.*),
            );
        }
    }
    const ns: f64 = @floatFromInt(std.time.nanoTimestamp() - t0);
    var s: V = @splat(0);
    for (acc) |a| s += a;
    std.mem.doNotOptimizeAway(s);
    return @as(f64, @floatFromInt(iters * acc_count * 32 * 2)) / ns;
}

pub fn main() !void {
    if (comptime !std.Target.x86.featureSetHas(builtin.cpu.features, .avx512bf16)) {
        std.debug.print("build with -mcpu=native on a CPU with avx512bf16\n", .{});
        return;
    }
    var best_f: f64 = 0;
    var best_b: f64 = 0;
    for (0..3) |_| {
        best_f = @max(best_f, fmaRate());
        best_b = @max(best_b, dpbf16Rate());
    }
    std.debug.print("one thread: float32 FMA {d:.1} GFLOP/s, VDPBF16PS {d:.1} GFLOP/s ({d:.2}x)\n", .{ best_f, best_b, best_b / best_f });
}
