//! A sizing prototype, not engine code: a one-thread bfloat16 GEMM on AVX512-BF16's VDPBF16PS
//! (no AMX), packed and register-tiled like engine/gemm.zig's float32 kernel, timed against the
//! same product in float32 on the engine's GEMM, to see what a VDPBF16PS micro-kernel would give
//! on CPUs that have AVX512-BF16 but no AMX tiles. Checks its result against a float32 loop over
//! the same bfloat16 values first.
//!   zig build-exe -O ReleaseFast -mcpu=native -lc --dep gemm -Mroot=bench/bf16dp_kernel.zig \
//!     --dep mlxb_build -Mgemm=engine/gemm.zig -Mmlxb_build=bench/gemm_kernel_options.zig \
//!     -femit-bin=/tmp/bf16dp && taskset -c 1 /tmp/bf16dp
//!
//! Layout: k is taken in pairs. An A panel holds, per pair p, MR 32-bit words (row i's values at
//! k = 2p and 2p+1); a B panel holds, per pair, NR words (column j's two values). VDPBF16PS
//! multiplies the 16 word lanes of two registers pairwise and adds both products to 16 float32
//! lanes, so one instruction does 32 multiply-adds where an FMA does 16.
const std = @import("std");
const builtin = @import("builtin");
const gemm = @import("gemm");

const MR = 14;
const NR = 32;
const KP = 256; // pairs per K panel (512 values, as float32's KC)
const V = @Vector(16, f32);
const W = @Vector(16, u32);

fn bf16(x: f32) u16 {
    const b: u32 = @bitCast(x);
    return @intCast((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

fn toF32(h: u16) f32 {
    return @bitCast(@as(u32, h) << 16);
}

inline fn dp(acc: V, a: W, b: W) V {
    return asm ("vdpbf16ps %[b], %[a], %[acc]"
        : [acc] "=v" (-> V),
        : [a] "v" (a),
          [b] "v" (b),
          [in] "0" (acc),
    );
}

/// A rows [r0, r0 + MR) (row-major, m x k), pairs [p0, p0 + kp) into a panel.
fn packA(a: []const u16, k: usize, r0: usize, p0: usize, kp: usize, dst: [*]u32) void {
    for (0..kp) |p| for (0..MR) |i| {
        const row = a[(r0 + i) * k ..];
        const c = 2 * (p0 + p);
        dst[p * MR + i] = @as(u32, row[c]) | (@as(u32, if (c + 1 < k) row[c + 1] else 0) << 16);
    };
}

/// B columns [j0, j0 + NR) (row-major, k x n), pairs [p0, p0 + kp) into a panel.
fn packB(b: []const u16, k: usize, n: usize, j0: usize, p0: usize, kp: usize, dst: [*]u32) void {
    for (0..kp) |p| {
        const c = 2 * (p0 + p);
        const r0 = b[c * n + j0 ..][0..NR];
        for (0..NR) |j| {
            const hi: u32 = if (c + 1 < k) b[(c + 1) * n + j0 + j] else 0;
            dst[p * NR + j] = @as(u32, r0[j]) | (hi << 16);
        }
    }
}

fn micro(kp: usize, ap: [*]const u32, bp: [*]const u32, c: [*]f32, ldc: usize, first: bool) void {
    var acc: [MR][2]V = undefined;
    inline for (0..MR) |i| inline for (0..2) |v| {
        acc[i][v] = if (first) @splat(0) else c[i * ldc + v * 16 ..][0..16].*;
    };
    var a = ap;
    var b = bp;
    for (0..kp) |_| {
        const b0: W = b[0..16].*;
        const b1: W = b[16..32].*;
        inline for (0..MR) |i| {
            const s: W = @splat(a[i]);
            acc[i][0] = dp(acc[i][0], s, b0);
            acc[i][1] = dp(acc[i][1], s, b1);
        }
        a += MR;
        b += NR;
    }
    inline for (0..MR) |i| inline for (0..2) |v| {
        c[i * ldc + v * 16 ..][0..16].* = acc[i][v];
    };
}

/// C = A B for m a multiple of MR, n of NR, k even.
fn product(a: []const u16, b: []const u16, c: []f32, m: usize, n: usize, k: usize, pa: []u32, pb: []u32) void {
    const kpairs = k / 2;
    var p0: usize = 0;
    while (p0 < kpairs) : (p0 += KP) {
        const kp = @min(KP, kpairs - p0);
        var j0: usize = 0;
        while (j0 < n) : (j0 += NR) {
            packB(b, k, n, j0, p0, kp, pb.ptr + j0 * kp);
        }
        var r0: usize = 0;
        while (r0 < m) : (r0 += MR) {
            packA(a, k, r0, p0, kp, pa.ptr);
            j0 = 0;
            while (j0 < n) : (j0 += NR) micro(kp, pa.ptr, pb.ptr + j0 * kp, c.ptr + r0 * n + j0, n, p0 == 0);
        }
    }
}

pub fn main() !void {
    if (comptime !std.Target.x86.featureSetHas(builtin.cpu.features, .avx512bf16)) {
        std.debug.print("build with -mcpu=native on a CPU with avx512bf16\n", .{});
        return;
    }
    const gpa = std.heap.c_allocator;
    const m: usize = 14 * 73; // 1022
    const n: usize = 1024;
    const k: usize = 1024;
    const a = try gpa.alloc(u16, m * k);
    const b = try gpa.alloc(u16, k * n);
    const af = try gpa.alloc(f32, m * k);
    const bf = try gpa.alloc(f32, k * n);
    const c = try gpa.alloc(f32, m * n);
    const cf = try gpa.alloc(f32, m * n);
    const pa = try gpa.alloc(u32, MR * KP);
    const pb = try gpa.alloc(u32, n * KP);
    var rng = std.Random.DefaultPrng.init(1);
    for (a, af) |*h, *f| {
        h.* = bf16(rng.random().float(f32) * 2 - 1);
        f.* = toF32(h.*);
    }
    for (b, bf) |*h, *f| {
        h.* = bf16(rng.random().float(f32) * 2 - 1);
        f.* = toF32(h.*);
    }
    product(a, b, c, m, n, k, pa, pb);
    // Check against float32 sums of the same values (VDPBF16PS adds two products at a time and
    // flushes denormals; with values in [-1, 1] the sums agree to float32 rounding).
    var worst: f32 = 0;
    for (0..64) |t| {
        const i = (t * 7919) % m;
        const j = (t * 104729) % n;
        var s: f32 = 0;
        for (0..k) |p| s += af[i * k + p] * bf[p * n + j];
        worst = @max(worst, @abs(s - c[i * n + j]));
    }
    std.debug.print("max |bf16dp - float32 loop| over 64 entries: {e}\n", .{worst});
    const flops = 2.0 * @as(f64, @floatFromInt(m * n * k));
    var best_b: f64 = 1e30;
    var best_f: f64 = 1e30;
    const A = gemm.Mat(f32){ .ptr = af.ptr, .rs = @intCast(k), .cs = 1 };
    const B = gemm.Mat(f32){ .ptr = bf.ptr, .rs = @intCast(n), .cs = 1 };
    const C = gemm.Mat(f32){ .ptr = cf.ptr, .rs = @intCast(n), .cs = 1 };
    for (0..5) |_| {
        var t = try std.time.Timer.start();
        product(a, b, c, m, n, k, pa, pb);
        best_b = @min(best_b, @as(f64, @floatFromInt(t.read())));
        t = try std.time.Timer.start();
        gemm.gemmSerial(f32, f32, f32, f32, m, n, k, 1, A, B, 0, C);
        best_f = @min(best_f, @as(f64, @floatFromInt(t.read())));
    }
    std.debug.print("one thread {d}x{d}x{d}: VDPBF16PS {d:.1} GFLOP/s, engine float32 GEMM {d:.1} GFLOP/s ({d:.2}x)\n", .{ m, n, k, flops / best_b, flops / best_f, best_f / best_b });
}
