//! Raw GFLOP/s of the engine's GEMM kernel (no graph, no FFI), for tuning its blocking.
//!   zig run -O ReleaseFast -lc --dep gemm -Mroot=bench/gemm_kernel.zig --dep mlxb_build -Mgemm=engine/gemm.zig \
//!     -Mmlxb_build=bench/gemm_kernel_options.zig [-- square|f16|gemv]
//! (add -mcpu x86_64 / x86_64_v3 / x86_64_v4 for the kernel levels of a portable build, engine/cpu.zig)
//! No argument runs every group. `gemv` times matrix-vector (decode) products with the pool's
//! workers parked between rounds (as between two evaluations in a program), `f16` float16
//! storage squares, `f32` float32 squares only, `f32serial` the same on one thread,
//! `bf16serial` bfloat16 squares on one thread, `bf16`
//! bfloat16 squares on AMX, on VDPBF16PS and widened to float32, next to float32, `shapes` float32 transformer shapes,
//! `prefill` float32 m x 4096 x 4096 for a few m (ROWS=m for one). MIN_REPS=n times at least n calls.
const std = @import("std");
const gemm = @import("gemm");
const F16 = gemm.F16;

pub fn main() !void {
    const args = try std.process.argsAlloc(std.heap.c_allocator);
    const group: []const u8 = if (args.len > 1) args[1] else "all";
    if (std.posix.getenv("ROWS")) |v| prefill_rows = try std.fmt.parseInt(usize, v, 10);
    if (std.posix.getenv("MIN_REPS")) |v| min_reps = try std.fmt.parseInt(usize, v, 10);
    const all = std.mem.eql(u8, group, "all");
    if (all or std.mem.eql(u8, group, "square")) try squares();
    if (all or std.mem.eql(u8, group, "f16")) try f16Squares();
    if (all or std.mem.eql(u8, group, "gemv")) try gemvs();
    if (std.mem.eql(u8, group, "f32")) for ([_]usize{ 256, 512, 1024, 2048 }) |n| try timeSquare(f32, f32, "f32", n);
    if (std.mem.eql(u8, group, "shapes")) {
        // transformer shapes (m, n, k): BERT FFN up and down, a 128-token prefill
        for ([_][3]usize{ .{ 512, 3072, 768 }, .{ 512, 768, 3072 }, .{ 128, 4096, 4096 } }) |s| {
            var buf: [64]u8 = undefined;
            try timeProduct(f32, f32, try std.fmt.bufPrint(&buf, "f32 {d}x{d}x{d}", .{ s[0], s[1], s[2] }), s[0], s[1], s[2]);
        }
        // a weight gradient x.T @ dy (A read transposed)
        a_transposed = true;
        try timeProduct(f32, f32, "f32 768x3072x512 A transposed", 768, 3072, 512);
        try timeProduct(f32, f32, "f32 1024x1024x1024 A transposed", 1024, 1024, 1024);
        try timeProduct(f32, f32, "f32 2048x64x2048 A transposed", 2048, 64, 2048);
        a_transposed = false;
    }
    if (std.mem.eql(u8, group, "shapes") or std.mem.eql(u8, group, "shapesBT")) {
        // a Linear layer x @ W.T (B read transposed)
        b_transposed = true;
        try timeProduct(f32, f32, "f32 512x768x3072 B transposed", 512, 768, 3072);
        try timeProduct(f32, f32, "f32 128x4096x4096 B transposed", 128, 4096, 4096);
        b_transposed = false;
    }
    if (std.mem.eql(u8, group, "prefill")) {
        // few rows against a large weight: m x 4096 x 4096, B row-major then column-major
        inline for (.{ false, true }) |bt| {
            b_transposed = bt;
            for ([_]usize{ 112, 126, 128, 256 }) |m| {
                if (prefill_rows != 0 and m != prefill_rows) continue;
                var buf: [64]u8 = undefined;
                try timeProduct(f32, f32, try std.fmt.bufPrint(&buf, "f32 {d}x4096x4096{s}", .{ m, if (bt) " B transposed" else "" }), m, 4096, 4096);
            }
        }
        b_transposed = false;
    }
    if (std.mem.eql(u8, group, "bf16serial")) {
        serial_only = true;
        for ([_]usize{ 512, 1024, 2048 }) |n| try timeSquare(f32, gemm.BF16, "bf16 one thread", n);
    }
    if (std.mem.eql(u8, group, "bf16")) {
        // AMX tiles, then VDPBF16PS (engine/dpbf16.zig, where the CPU has it), then float32 math
        inline for (.{ "bf16 AMX", "bf16 VDPBF16PS", "bf16 via f32" }, 0..) |label, v| {
            gemm.amx.mode = if (v != 0) .off else .auto;
            gemm.dpbf16.mode = if (v == 2) .off else .hardware; // the instruction even where AMX CPUs skip it
            for ([_]usize{ 512, 1024, 2048 }) |n| try timeSquare(f32, gemm.BF16, label, n);
        }
        for ([_]usize{ 512, 1024, 2048 }) |n| try timeSquare(f32, f32, "f32", n);
    }
    if (std.mem.eql(u8, group, "f32serial")) {
        serial_only = true;
        for ([_]usize{ 256, 512, 1024, 2048 }) |n| try timeSquare(f32, f32, "f32 one thread", n);
    }
}

/// `prefill`: only this row count (ROWS), 0 for all.
var prefill_rows: usize = 0;
/// At least this many timed calls (best of them reported); MIN_REPS overrides.
var min_reps: usize = 3;
/// `f32serial`: time gemm.gemmSerial (one thread), for measuring next to other work.
var serial_only = false;
/// `shapes`: A stored column-major (k x m row-major, read transposed).
var a_transposed = false;
/// `shapes`: B stored column-major (n x k row-major, read transposed).
var b_transposed = false;

fn fill(comptime S: type, x: []S, mod: usize) void {
    for (x, 0..) |*e, i| {
        const v: f32 = @as(f32, @floatFromInt(i % mod)) * 0.25 - 1;
        e.* = switch (S) {
            gemm.BF16 => .{ .bits = gemm.half.f32ToBf16(v) },
            F16 => .{ .bits = gemm.half.f32ToF16(v) },
            else => @floatCast(v),
        };
    }
}

fn timeSquare(comptime T: type, comptime S: type, label: []const u8, n: usize) !void {
    var buf: [64]u8 = undefined;
    try timeProduct(T, S, try std.fmt.bufPrint(&buf, "{s} n={d}", .{ label, n }), n, n, n);
}

/// Best time of C (m x n) = A (m x k) B (k x n), all row-major.
fn timeProduct(comptime T: type, comptime S: type, label: []const u8, m: usize, n: usize, k: usize) !void {
    const gpa = std.heap.c_allocator;
    const a = try gpa.alloc(S, m * k);
    const b = try gpa.alloc(S, k * n);
    const c = try gpa.alloc(S, m * n);
    defer gpa.free(a);
    defer gpa.free(b);
    defer gpa.free(c);
    fill(S, a, 13);
    fill(S, b, 7);
    const M = gemm.Mat(S);
    const am = if (a_transposed) M{ .ptr = a.ptr, .rs = 1, .cs = @intCast(m) } else M{ .ptr = a.ptr, .rs = @intCast(k), .cs = 1 };
    const bm = if (b_transposed) M{ .ptr = b.ptr, .rs = 1, .cs = @intCast(k) } else M{ .ptr = b.ptr, .rs = @intCast(n), .cs = 1 };
    const cm = M{ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 };
    const flops = 2.0 * @as(f64, @floatFromInt(m * n * k));
    const reps: usize = @max(min_reps, @as(usize, @intFromFloat(2e10 / flops)));
    gemm.gemm(T, S, S, S, m, n, k, 1, am, bm, 0, cm); // warm
    var best: f64 = 1e30;
    for (0..reps) |_| {
        var t = try std.time.Timer.start();
        if (serial_only) gemm.gemmSerial(T, S, S, S, m, n, k, 1, am, bm, 0, cm) else gemm.gemm(T, S, S, S, m, n, k, 1, am, bm, 0, cm);
        best = @min(best, @as(f64, @floatFromInt(t.read())));
    }
    std.debug.print("{s}: {d:.1} GFLOP/s ({d:.3} ms)\n", .{ label, flops / best, best / 1e6 });
}

fn squares() !void {
    const sizes = [_]usize{ 64, 128, 256, 512, 1024, 2048 };
    // float32, float64, then bfloat16 storage (float32 compute) on AMX tiles and on the vector path.
    inline for (.{ f32, f64, gemm.BF16, gemm.BF16 }, 0..) |S, variant| {
        const T = if (S == gemm.BF16) f32 else S;
        gemm.amx.mode = if (variant == 3) .off else .auto;
        const label = if (variant == 2) "bf16 (AMX)" else if (variant == 3) "bf16 (vector)" else @typeName(S);
        for (sizes) |n| try timeSquare(T, S, label, n);
    }
    gemm.amx.mode = .auto;
}

fn f16Squares() !void {
    for ([_]usize{ 256, 512, 1024, 2048 }) |n| try timeSquare(f32, F16, "f16", n);
    gemm.amx.mode = .off;
    for ([_]usize{1024}) |n| try timeSquare(f32, gemm.BF16, "bf16 (vector)", n);
    gemm.amx.mode = .auto;
}

fn gemvs() !void {
    const gpa = std.heap.c_allocator;
    const shapes = [_][2]usize{ .{ 4096, 4096 }, .{ 4096, 11008 } };
    inline for (.{ f32, F16, gemm.BF16 }) |S| for ([_]bool{ false, true }) |wt| {
        for (shapes) |s| {
            const k = s[0];
            const n = s[1];
            const x = try gpa.alloc(S, k);
            const w = try gpa.alloc(S, k * n);
            const y = try gpa.alloc(S, n);
            defer gpa.free(x);
            defer gpa.free(w);
            defer gpa.free(y);
            fill(S, x, 13);
            fill(S, w, 7);
            const M = gemm.Mat(S);
            const xm = M{ .ptr = x.ptr, .rs = @intCast(k), .cs = 1 };
            // x @ W with W (k x n) row-major, or x @ W.T with W (n x k) row-major (a Linear layer)
            const wm = if (wt) M{ .ptr = w.ptr, .rs = 1, .cs = @intCast(k) } else M{ .ptr = w.ptr, .rs = @intCast(n), .cs = 1 };
            const ym = M{ .ptr = y.ptr, .rs = @intCast(n), .cs = 1 };
            gemm.gemm(f32, S, S, S, 1, n, k, 1, xm, wm, 0, ym); // warm
            var times: [40]f64 = undefined;
            for (&times) |*tm| {
                std.Thread.sleep(300 * std.time.ns_per_us); // workers park (pool spin is 50 us)
                var t = try std.time.Timer.start();
                gemm.gemm(f32, S, S, S, 1, n, k, 1, xm, wm, 0, ym);
                tm.* = @floatFromInt(t.read());
            }
            std.mem.sort(f64, &times, {}, std.sort.asc(f64));
            const bytes: f64 = @floatFromInt(k * n * @sizeOf(S));
            const med = times[times.len / 2];
            std.debug.print("gemv {s} 1x{d} . {d}x{d}{s}: median {d:.3} ms, min {d:.3} ms ({d:.1} GB/s)\n", .{ @typeName(S), k, k, n, if (wt) " (W.T)" else "", med / 1e6, times[0] / 1e6, bytes / med });
        }
    };
}
