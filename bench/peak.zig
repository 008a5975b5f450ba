//! The machine's measured float32 FMA peak, for bench/report_matmul.ts: every core runs a loop of
//! independent 16-lane fused multiply-adds (enough accumulators to hide the FMA latency) and the
//! result is printed as one JSON line { side: "probe", name: "fma_f32", gflops }.
//!   zig run -O ReleaseFast -mcpu=native bench/peak.zig
const std = @import("std");

const V = @Vector(16, f32);
const acc_count = 12;
const iters: usize = 200_000_000 / 16;

fn spin(out: *f32) void {
    var acc: [acc_count]V = undefined;
    for (&acc, 0..) |*a, i| a.* = @splat(@as(f32, @floatFromInt(i)) * 1e-3);
    const x: V = @splat(0.999999);
    const y: V = @splat(1e-7);
    var i: usize = 0;
    while (i < iters) : (i += 1) {
        inline for (&acc) |*a| a.* = @mulAdd(V, a.*, x, y);
    }
    var s: V = @splat(0);
    for (acc) |a| s += a;
    out.* = @reduce(.Add, s);
}

pub fn main() !void {
    const n = try std.Thread.getCpuCount();
    var sinks: [256]f32 = undefined;
    var threads: [256]std.Thread = undefined;
    var best: f64 = 0;
    for (0..3) |_| {
        const t0 = std.time.nanoTimestamp();
        for (0..n) |t| threads[t] = try std.Thread.spawn(.{}, spin, .{&sinks[t]});
        for (0..n) |t| threads[t].join();
        const ns: f64 = @floatFromInt(std.time.nanoTimestamp() - t0);
        const flops: f64 = @floatFromInt(n * iters * acc_count * 16 * 2);
        best = @max(best, flops / ns);
    }
    var buf: [256]u8 = undefined;
    var w = std.fs.File.stdout().writer(&buf);
    try w.interface.print("{{\"side\":\"probe\",\"name\":\"fma_f32\",\"threads\":{d},\"gflops\":{d:.1},\"sink\":{d}}}\n", .{ n, best, sinks[0] });
    try w.interface.flush();
}
