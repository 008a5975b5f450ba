//! Raw GFLOP/s of the engine's direct convolution kernel (engine/conv_kernel.zig; no graph, no
//! FFI), float32, on the shapes of bench/conv.ts, for tuning it:
//!   zig build-exe -O ReleaseFast -lc --dep conv -Mroot=bench/conv_kernel.zig --dep mlxb_build \
//!     -Mconv=engine/conv_kernel.zig -Mmlxb_build=bench/gemm_kernel_options.zig -femit-bin=/tmp/ck
//!   /tmp/ck [case-name-part]          (`taskset -c 0 /tmp/ck` times one core)
//! Best time over rounds of ~1 s; NHWC input, OHWI weight, stride/padding as in bench/conv.ts.
const std = @import("std");
const conv = @import("conv");

/// batch_inner: the input laid out [C, H, W, N] (batch contiguous) and the weight [C_in, K, K,
/// C_out], as the weight gradient's convolution gets them (transposed views).
const Case = struct { name: []const u8, n: usize, h: usize, w: usize, ci: usize, co: usize, k: usize, stride: usize, pad: usize, batch_inner: bool = false };

const cases = [_]Case{
    .{ .name = "56x56x64_to64_3x3", .n = 4, .h = 56, .w = 56, .ci = 64, .co = 64, .k = 3, .stride = 1, .pad = 1 },
    .{ .name = "28x28x128_to128_3x3", .n = 4, .h = 28, .w = 28, .ci = 128, .co = 128, .k = 3, .stride = 1, .pad = 1 },
    .{ .name = "14x14x256_to256_3x3", .n = 4, .h = 14, .w = 14, .ci = 256, .co = 256, .k = 3, .stride = 1, .pad = 1 },
    .{ .name = "28x28x512_to128_1x1_s2", .n = 4, .h = 28, .w = 28, .ci = 512, .co = 128, .k = 1, .stride = 2, .pad = 0 },
    .{ .name = "stem_224x224x3_to64_7x7_s2", .n = 4, .h = 224, .w = 224, .ci = 3, .co = 64, .k = 7, .stride = 2, .pad = 3 },
    // the weight gradient of 28x28x128_to128_3x3 (batch 4) as prims/conv.zig's vjp runs it: the
    // input channels as the batch, the batch as channels, the output gradient as a 28x28 kernel
    .{ .name = "wgrad_28x28x128_to128_3x3", .n = 128, .h = 28, .w = 28, .ci = 4, .co = 128, .k = 28, .stride = 1, .pad = 1 },
    // the same on the input as the vjp hands it over: a transposed view, batch contiguous
    .{ .name = "wgrad_bi_28x28x128_to128_3x3", .n = 128, .h = 28, .w = 28, .ci = 4, .co = 128, .k = 28, .stride = 1, .pad = 1, .batch_inner = true },
    .{ .name = "1d_1024x128_to128_k3", .n = 4, .h = 1, .w = 1024, .ci = 128, .co = 128, .k = 3, .stride = 1, .pad = 1 },
};

pub fn main() !void {
    const args = try std.process.argsAlloc(std.heap.c_allocator);
    const only: ?[]const u8 = if (args.len > 1) args[1] else null;
    for (cases) |c| {
        if (only) |o| if (std.mem.indexOf(u8, c.name, o) == null) continue;
        try timeCase(c);
    }
}

fn timeCase(c: Case) !void {
    const gpa = std.heap.c_allocator;
    const kh: usize = if (c.h == 1) 1 else c.k;
    const ph: usize = if (c.h == 1) 0 else c.pad;
    const sh: usize = if (c.h == 1) 1 else c.stride;
    const oh = (c.h + 2 * ph - kh) / sh + 1;
    const ow = (c.w + 2 * c.pad - c.k) / c.stride + 1;
    const x = try gpa.alloc(f32, c.n * c.h * c.w * c.ci);
    const w = try gpa.alloc(f32, c.co * kh * c.k * c.ci);
    const out = try gpa.alloc(f32, c.n * oh * ow * c.co);
    defer gpa.free(x);
    defer gpa.free(w);
    defer gpa.free(out);
    for (x, 0..) |*e, i| e.* = @as(f32, @floatFromInt(i % 13)) * 0.25 - 1;
    for (w, 0..) |*e, i| e.* = @as(f32, @floatFromInt(i % 7)) * 0.25 - 1;
    const hi: i64 = @intCast(c.h);
    const wi: i64 = @intCast(c.w);
    const ci: i64 = @intCast(c.ci);
    const nb: i64 = @intCast(c.n);
    const cx = conv.Ctx{
        .x = x.ptr,
        .w = w.ptr,
        .out = out.ptr,
        .n = c.n,
        .c_out = c.co,
        .groups = 1,
        .cig = c.ci,
        .cog = c.co,
        .ktaps = kh * c.k,
        .opos = oh * ow,
        .l = .{ hi, wi, 1 },
        .k = .{ kh, c.k, 1 },
        .o = .{ oh, ow, 1 },
        .x_strides = if (c.batch_inner)
            .{ 1, wi * nb, nb, 1, hi * wi * nb }
        else
            .{ hi * wi * ci, wi * ci, ci, 1, 1 },
        // batch_inner: the weight too as the vjp hands it over, [C_in, K, K, C_out] in memory
        .w_strides = if (c.batch_inner)
            .{ 1, @intCast(c.k * c.co), @intCast(c.co), 0, @intCast(kh * c.k * c.co) }
        else
            .{ @intCast(kh * c.k * c.ci), @intCast(c.k * c.ci), ci, 0, 1 },
        .stride = .{ @intCast(sh), @intCast(c.stride), 1 },
        .lo = .{ @intCast(ph), @intCast(c.pad), 0 },
        .kdil = .{ 1, 1, 1 },
        .idil = .{ 1, 1, 1 },
        .flip = false,
    };
    const flops = 2.0 * @as(f64, @floatFromInt(c.n * oh * ow * c.co * kh * c.k * c.ci));
    if (!conv.forward(f32, f32, &cx)) return error.OutOfMemory; // warm
    const reps: usize = @max(5, @as(usize, @intFromFloat(2e11 / flops)));
    var best: f64 = 1e30;
    for (0..reps) |_| {
        var t = try std.time.Timer.start();
        _ = conv.forward(f32, f32, &cx);
        best = @min(best, @as(f64, @floatFromInt(t.read())));
    }
    std.debug.print("{s}: {d:.1} GFLOP/s ({d:.3} ms)\n", .{ c.name, flops / best, best / 1e6 });
}
