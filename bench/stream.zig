//! A STREAM-style memory bandwidth probe for bench/run_all.sh (after McCalpin's STREAM: the four
//! kernels copy c = a, scale b = s·c, add c = a + b, triad a = b + s·c over float64 arrays much
//! larger than the caches; bytes counted as STREAM does: 16, 16, 24, 24 per element). Every CPU
//! runs its own contiguous slice; each kernel's best round is printed as one JSON line
//! { side: "probe", name: "stream.<kernel>", gbps, threads, n }.
//!   zig run -O ReleaseFast -mcpu=native bench/stream.zig -- [elements per array] [rounds]
const std = @import("std");

const Kernel = enum { copy, scale, add, triad };
const bytes_per_elem = [_]f64{ 16, 16, 24, 24 };

const Job = struct { a: []f64, b: []f64, c: []f64, kernel: Kernel };

fn work(j: Job) void {
    const s: f64 = 3.0;
    switch (j.kernel) {
        .copy => for (j.c, j.a) |*c, a| {
            c.* = a;
        },
        .scale => for (j.b, j.c) |*b, c| {
            b.* = s * c;
        },
        .add => for (j.c, j.a, j.b) |*c, a, b| {
            c.* = a + b;
        },
        .triad => for (j.a, j.b, j.c) |*a, b, c| {
            a.* = b + s * c;
        },
    }
}

fn fill(j: Job) void {
    // First touch by the thread that will use the slice.
    @memset(j.a, 1.0);
    @memset(j.b, 2.0);
    @memset(j.c, 0.0);
}

fn runAll(comptime f: fn (Job) void, a: []f64, b: []f64, c: []f64, kernel: Kernel, nt: usize, threads: []std.Thread) !void {
    const n = a.len;
    for (0..nt) |t| {
        const lo = n * t / nt;
        const hi = n * (t + 1) / nt;
        threads[t] = try std.Thread.spawn(.{}, f, .{Job{ .a = a[lo..hi], .b = b[lo..hi], .c = c[lo..hi], .kernel = kernel }});
    }
    for (threads[0..nt]) |th| th.join();
}

pub fn main() !void {
    const alloc = std.heap.page_allocator;
    const args = try std.process.argsAlloc(alloc);
    defer std.process.argsFree(alloc, args);
    const n: usize = if (args.len > 1) try std.fmt.parseInt(usize, args[1], 10) else 1 << 25;
    const rounds: usize = if (args.len > 2) try std.fmt.parseInt(usize, args[2], 10) else 10;
    const nt = @min(try std.Thread.getCpuCount(), 256);
    var threads: [256]std.Thread = undefined;

    const a = try alloc.alloc(f64, n);
    defer alloc.free(a);
    const b = try alloc.alloc(f64, n);
    defer alloc.free(b);
    const c = try alloc.alloc(f64, n);
    defer alloc.free(c);
    try runAll(fill, a, b, c, .copy, nt, &threads);

    var best = [_]f64{ std.math.inf(f64), std.math.inf(f64), std.math.inf(f64), std.math.inf(f64) };
    for (0..rounds) |_| {
        inline for (0..4) |k| {
            const t0 = std.time.nanoTimestamp();
            try runAll(work, a, b, c, @enumFromInt(k), nt, &threads);
            const ns: f64 = @floatFromInt(std.time.nanoTimestamp() - t0);
            best[k] = @min(best[k], ns);
        }
    }
    var buf: [1024]u8 = undefined;
    var w = std.fs.File.stdout().writer(&buf);
    inline for (0..4) |k| {
        const gbps = bytes_per_elem[k] * @as(f64, @floatFromInt(n)) / best[k];
        try w.interface.print("{{\"side\":\"probe\",\"name\":\"stream.{s}\",\"gbps\":{d:.2},\"threads\":{d},\"n\":{d},\"check\":{d}}}\n", .{ @tagName(@as(Kernel, @enumFromInt(k))), gbps, nt, n, a[n / 2] + b[n / 3] + c[n - 1] });
    }
    try w.interface.flush();
}
