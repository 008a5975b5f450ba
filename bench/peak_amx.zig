//! One thread's AMX bfloat16 rate (TDPBF16PS) with the engine's 2 x 2 block of accumulator tiles,
//! fed from different places, for finding what bounds engine/amx.zig:
//!   none   the four products on tiles already loaded (the instruction's own rate);
//!   l1     four 1 KiB tile loads per four products, always the same 4 KiB (L1);
//!   l2     the loads walking 2 x 2 panels 128 KiB each, as a 2048-deep product reads them (L2);
//!   kblock A panels streaming from L2, the B chunk of 8 k steps (16 KiB) reused from L1.
//!   zig run -O ReleaseFast -lc --dep gemm -Mroot=bench/peak_amx.zig --dep mlxb_build -Mgemm=engine/gemm.zig \
//!     -Mmlxb_build=bench/gemm_kernel_options.zig
//! FLOPs count 2 per multiply-add: 16 x 16 x 32 x 2 = 16384 per instruction.
const std = @import("std");
const amx = @import("gemm").amx;

const flops_per_dot: f64 = 16 * 16 * 32 * 2;

fn rate(dots: usize, ns: u64) f64 {
    return @as(f64, @floatFromInt(dots)) * flops_per_dot / @as(f64, @floatFromInt(ns));
}

fn none(iters: usize) f64 {
    const t0 = std.time.nanoTimestamp();
    for (0..iters) |_| {
        amx.dot(0, 4, 6);
        amx.dot(1, 4, 7);
        amx.dot(2, 5, 6);
        amx.dot(3, 5, 7);
    }
    return rate(4 * iters, @intCast(std.time.nanoTimestamp() - t0));
}

fn fromL1(buf: [*]const u16, iters: usize) f64 {
    const t0 = std.time.nanoTimestamp();
    for (0..iters) |_| {
        amx.step(buf, buf + 512, buf + 1024, buf + 1536);
    }
    return rate(4 * iters, @intCast(std.time.nanoTimestamp() - t0));
}

/// The engine's order: a row group of 4 row pairs, each over the whole K (ks steps) of the same
/// column pair, all from packed panels (a: 8 panels, b: 2 panels, each ks tiles).
fn fromL2(a: [*]u16, b: [*]u16, ks: usize, reps: usize) f64 {
    const panel = ks * 512;
    const t0 = std.time.nanoTimestamp();
    for (0..reps) |_| for (0..4) |rp| {
        const a0 = a + 2 * rp * panel;
        const a1 = a0 + panel;
        for (0..ks) |q| {
            amx.step(a0 + q * 512, a1 + q * 512, b + q * 512, b + panel + q * 512);
        }
    };
    return rate(reps * 4 * ks * 4, @intCast(std.time.nanoTimestamp() - t0));
}

/// K cut in chunks of kq steps: for each chunk, the column pair's B chunk (2 kq tiles) is read by
/// all 4 row pairs, whose partial C (4 tiles each) is stored and loaded back between chunks.
fn kBlocked(a: [*]u16, b: [*]u16, cbuf: [*]f32, ks: usize, kq: usize, reps: usize) f64 {
    const panel = ks * 512;
    const t0 = std.time.nanoTimestamp();
    for (0..reps) |_| {
        var k0: usize = 0;
        while (k0 < ks) : (k0 += kq) for (0..4) |rp| {
            const cp = cbuf + rp * 1024;
            amx.tileLoad(0, cp, 128);
            amx.tileLoad(1, cp + 16, 128);
            amx.tileLoad(2, cp + 512, 128);
            amx.tileLoad(3, cp + 528, 128);
            const a0 = a + 2 * rp * panel;
            const a1 = a0 + panel;
            for (k0..k0 + kq) |q| {
                amx.step(a0 + q * 512, a1 + q * 512, b + q * 512, b + panel + q * 512);
            }
            amx.tileStore(0, cp, 128);
            amx.tileStore(1, cp + 16, 128);
            amx.tileStore(2, cp + 512, 128);
            amx.tileStore(3, cp + 528, 128);
        };
    }
    return rate(reps * 4 * ks * 4, @intCast(std.time.nanoTimestamp() - t0));
}

pub fn main() !void {
    if (!amx.available()) {
        std.debug.print("no AMX bfloat16 here (or the kernel refused it)\n", .{});
        return;
    }
    const alloc = std.heap.c_allocator;
    const ks = 64; // a 2048-deep product
    const a = try alloc.alignedAlloc(u16, .@"64", 8 * ks * 512);
    const b = try alloc.alignedAlloc(u16, .@"64", 2 * ks * 512);
    const cbuf = try alloc.alignedAlloc(f32, .@"64", 4 * 1024);
    // Small values so the accumulators stay finite: 0x3c00 is 2^-7 in bfloat16.
    var prng = std.Random.DefaultPrng.init(1);
    const rnd = prng.random();
    const random = std.posix.getenv("RANDOM_DATA") != null;
    // RANDOM_DATA=1: random signs and mantissas, exponent of 2^-7 (no subnormals, which AMX
    // flushes to zero).
    for (a) |*x| x.* = if (random) 0x3c00 | (rnd.int(u16) & 0x807f) else 0x3c00;
    for (b) |*x| x.* = if (random) 0x3c00 | (rnd.int(u16) & 0x807f) else 0x3c00;
    @memset(cbuf, 0);
    const cfg = amx.TileConfig{};
    amx.tileConfigure(&cfg);
    defer amx.tileRelease();
    inline for (0..4) |t| amx.tileZero(t);
    amx.tileLoad(4, a.ptr, 64);
    amx.tileLoad(5, a.ptr, 64);
    amx.tileLoad(6, b.ptr, 64);
    amx.tileLoad(7, b.ptr, 64);
    var best = [_]f64{0} ** 6;
    for (0..5) |_| {
        best[0] = @max(best[0], none(2_000_000));
        best[1] = @max(best[1], fromL1(a.ptr, 2_000_000));
        best[2] = @max(best[2], fromL2(a.ptr, b.ptr, ks, 8000));
        best[3] = @max(best[3], kBlocked(a.ptr, b.ptr, cbuf.ptr, ks, 8, 8000));
        best[4] = @max(best[4], kBlocked(a.ptr, b.ptr, cbuf.ptr, ks, 16, 8000));
        best[5] = @max(best[5], kBlocked(a.ptr, b.ptr, cbuf.ptr, ks, 4, 8000));
    }
    std.debug.print("one thread, GFLOP/s: none {d:.0}, l1 {d:.0}, l2 {d:.0}, kblock(8) {d:.0}, kblock(16) {d:.0}, kblock(4) {d:.0}\n", .{ best[0], best[1], best[2], best[3], best[4], best[5] });
}
