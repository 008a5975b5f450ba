//! bfloat16 products on AVX512-BF16's VDPBF16PS, for CPUs that have it without AMX tiles (Cooper
//! Lake, Zen 4 and 5). CPUs with AMX run large products on tiles (engine/amx.zig) and the rest on
//! the float32 path, which is faster there than this instruction (`preferred`).
//!
//! VDPBF16PS multiplies the 16 32-bit lanes of two registers as pairs of bfloat16 values and adds
//! both products to 16 float32 accumulators: 32 multiply-adds per instruction where a float32 FMA
//! does 16, with the float32 tile of engine/gemm.zig (MR rows x NV vectors of accumulators) and
//! its blocking unchanged. K is taken in pairs: an A micro-panel holds, per pair p, MR words (row
//! i's values at k = 2p and 2p + 1, low half first), a B micro-panel NR words (column j's two
//! values). An odd K's last pair has a zero high half. The accumulators are stored by
//! gemm.runTile, so alpha, beta, partial tiles and narrow C round as on the float32 path.
//!
//! Rounding: each product of two bfloat16 values is exact in float32; the instruction adds the
//! high pair's product, then the low pair's, rounding each sum to nearest even (as two FMAs
//! would), and treats subnormal inputs and results as zero (DAZ/FTZ). The results differ from the
//! float32 path's only by that flushing and by the order of the two additions of a pair.
//!
//! The instruction is emitted by inline assembly (the assembler accepts it whatever the target
//! CPU), so every x86-64-v4 build carries this path and uses it when cpuid reports AVX512-BF16
//! without AMX-BF16. Tests run it with the instruction computed in software (`Mode.emulate`) at
//! every CPU level, so its packing and tiling are checked on machines without the instruction
//! too, and with the instruction itself wherever the CPU has it (`Mode.hardware`).
const std = @import("std");
const builtin = @import("builtin");
const gemm = @import("gemm.zig");
const cpu = @import("cpu.zig");
const dtype = @import("dtype.zig");
const BF16 = dtype.BF16;

const P = gemm.Params(f32);
const V = P.V;
const W = @Vector(P.VL, u32);
/// Pairs per K panel (KC values, as the float32 path).
const KP: usize = P.KC / 2;

pub const Mode = enum(u8) { auto, off, emulate, hardware };
/// `auto` sends bfloat16 products here where the instruction beats the float32 path
/// (`preferred`). Tests: `off` keeps them on the float32 path, `emulate` sends them here with the
/// instruction computed in software (any CPU), `hardware` with the instruction wherever the CPU
/// has it (computed in software elsewhere).
pub var mode: Mode = .auto;

/// This object's vectors are 512 bits (the instruction's width here).
const wide = P.VL == 16;

var state = std.atomic.Value(u8).init(0);

/// Whether the CPU runs VDPBF16PS on 512-bit registers (cpuid asked once): AVX-512 with its
/// register state enabled by the OS (cpu.detected) and CPUID.(EAX=7,ECX=1):EAX bit 5.
pub fn available() bool {
    if (comptime !wide) return false;
    if (comptime std.Target.x86.featureSetHas(builtin.cpu.features, .avx512bf16)) return true;
    const s = state.load(.acquire);
    if (s != 0) return s == 1;
    const ok = cpu.detected() == .avx512 and cpu.cpuid(7, 0)[0] >= 1 and (cpu.cpuid(7, 1)[0] >> 5) & 1 == 1;
    state.store(if (ok) 1 else 2, .release);
    return ok;
}

var fast_state = std.atomic.Value(u8).init(0);

/// Whether the instruction is worth using here: the CPU has it (`available`) and is not one with
/// AMX-BF16 tiles (CPUID.(EAX=7,ECX=0):EDX bit 22). On those (Sapphire Rapids, 2026-12-07) it
/// issues at half the float32 FMA's rate in flops (bench/peak_bf16.zig: 113.6 vs 228.8 GFLOP/s
/// on one thread), and the kernel here ran 1024^2 products at 0.64x the float32 path's speed;
/// where measured without AMX (2026-12-06) it ran at 2x. Products AMX leaves to the vector path
/// (small ones, matrix-vector, AMX refused) then take the float32 path on such CPUs.
pub fn preferred() bool {
    if (!available()) return false;
    const s = fast_state.load(.acquire);
    if (s != 0) return s == 1;
    const ok = (cpu.cpuid(7, 0)[3] >> 22) & 1 == 0;
    fast_state.store(if (ok) 1 else 2, .release);
    return ok;
}

/// Whether a product with these operand types and this storage of C goes here.
pub inline fn eligible(comptime T: type, comptime SA: type, comptime SB: type) bool {
    return T == f32 and SA == BF16 and SB == BF16;
}

pub inline fn use() bool {
    return switch (mode) {
        .off => false,
        .emulate, .hardware => true,
        .auto => preferred(),
    };
}

/// One thread's product (gemm.serial's loop nest over pairs). A narrow C takes a single K panel
/// here (gemm.serial sends longer products through its float32 block first).
pub fn serial(comptime SC: type, m: usize, n: usize, k: usize, alpha: f32, a: gemm.Mat(BF16), b: gemm.Mat(BF16), beta: f32, c: gemm.Mat(SC)) void {
    if (comptime wide) {
        if (mode == .auto or (mode == .hardware and available())) return serialWith(true, SC, m, n, k, alpha, a, b, beta, c);
    }
    serialWith(false, SC, m, n, k, alpha, a, b, beta, c);
}

fn serialWith(comptime hw: bool, comptime SC: type, m: usize, n: usize, k: usize, alpha: f32, a: gemm.Mat(BF16), b: gemm.Mat(BF16), beta: f32, c: gemm.Mat(SC)) void {
    std.debug.assert(SC == f32 or k <= P.KC);
    const pn = Panels(hw, SC){ .a = a, .b = b, .c = c, .alpha = alpha, .beta = beta, .k = k };
    if (!gemm.blocked(pn, m, n, (k + 1) / 2)) gemm.naive(f32, BF16, BF16, SC, m, n, k, alpha, a, b, beta, c);
}

/// gemm.blocked's panels here: 32-bit words of two bfloat16 values, a depth unit a pair.
fn Panels(comptime hw: bool, comptime SC: type) type {
    return struct {
        a: gemm.Mat(BF16),
        b: gemm.Mat(BF16),
        c: gemm.Mat(SC),
        alpha: f32,
        beta: f32,
        k: usize,

        pub const Blocking = P;
        pub const E = u32;
        pub const panel = KP;
        /// Values in the pairs [u, u + kp) (the last pair of an odd K has one).
        inline fn values(s: @This(), u: usize, kp: usize) usize {
            return @min(2 * kp, s.k - 2 * u);
        }
        pub inline fn packPanelB(s: @This(), u: usize, kp: usize, jc: usize, nc: usize, dst: [*]u32) void {
            packB(kp, s.values(u, kp), nc, s.b.sub(2 * u, jc), dst);
        }
        pub inline fn packBlockA(s: @This(), u: usize, kp: usize, ic: usize, mc: usize, dst: [*]u32) void {
            packA(kp, s.values(u, kp), mc, s.a.sub(ic, 2 * u), dst);
        }
        pub inline fn tile(s: @This(), kp: usize, ap: [*]const u32, bp: [*]const u32, first: bool, i: usize, j: usize, mr: usize, nr: usize) void {
            gemm.runTile(f32, SC, accumulate, .{ hw, kp, ap, bp }, s.alpha, if (first) s.beta else 1, s.c.sub(i, j), mr, nr);
        }
    };
}

/// acc += A x B over kp pairs of packed micro-panels.
inline fn accumulate(comptime hw: bool, kp: usize, ap: [*]const u32, bp: [*]const u32, acc: *gemm.Tile(f32)) void {
    var a = ap;
    var b = bp;
    for (0..kp) |_| {
        var bv: [P.NV]W = undefined;
        inline for (0..P.NV) |v| bv[v] = b[v * P.VL ..][0..P.VL].*;
        inline for (0..P.MR) |i| {
            const s: W = @splat(a[i]);
            inline for (0..P.NV) |v| acc[i][v] = if (hw) dpHw(acc[i][v], s, bv[v]) else dpSoft(acc[i][v], s, bv[v]);
        }
        a += P.MR;
        b += P.NR;
    }
}

/// acc + a.hi * b.hi + a.lo * b.lo per lane, by the instruction.
inline fn dpHw(acc: V, a: W, b: W) V {
    return asm ("vdpbf16ps %[b], %[a], %[acc]"
        : [acc] "=v" (-> V),
        : [a] "v" (a),
          [b] "v" (b),
          [in] "0" (acc),
    );
}

/// The same in software (without the instruction's flushing of subnormals): the products are
/// exact, each sum rounds once, high pair first.
inline fn dpSoft(acc: V, a: W, b: W) V {
    const hi: W = @splat(0xffff_0000);
    const a_hi: V = @bitCast(a & hi);
    const b_hi: V = @bitCast(b & hi);
    const a_lo: V = @bitCast(a << @splat(16));
    const b_lo: V = @bitCast(b << @splat(16));
    return (acc + a_hi * b_hi) + a_lo * b_lo;
}

/// The word of rows r and r + 1 (the latter zero past `vals`) at column j of m.
inline fn word(m: gemm.Mat(BF16), r: usize, j: usize, vals: usize) u32 {
    const hi: u32 = if (r + 1 < vals) m.at(r + 1, j).bits else 0;
    return @as(u32, m.at(r, j).bits) | (hi << 16);
}

/// B's rows [0, vals) (kp = ceil(vals / 2) pairs), columns [0, nc) into micro-panels of NR words
/// per pair (zero past nc).
fn packB(kp: usize, vals: usize, nc: usize, b: gemm.Mat(BF16), out: [*]u32) void {
    var q: usize = 0;
    while (q < nc) : (q += P.NR) {
        const cols: usize = @min(P.NR, nc - q);
        const dst = out + q * kp;
        if (b.cs == 1 and cols == P.NR) {
            // Row-major B: two rows' vectors interleaved into words.
            for (0..kp) |p| {
                const lo_row: [*]const u16 = @ptrCast(b.at(2 * p, q));
                const hi_row: ?[*]const u16 = if (2 * p + 1 < vals) @ptrCast(b.at(2 * p + 1, q)) else null;
                inline for (0..P.NV) |v| {
                    const lo: @Vector(P.VL, u16) = lo_row[v * P.VL ..][0..P.VL].*;
                    const hi: @Vector(P.VL, u16) = if (hi_row) |h| h[v * P.VL ..][0..P.VL].* else @splat(0);
                    dst[p * P.NR + v * P.VL ..][0..P.VL].* = @as(W, lo) | (@as(W, hi) << @splat(16));
                }
            }
        } else if (b.rs == 1) {
            // Column-major B (x @ W.T): a column's pairs are consecutive words, transposed in
            // registers as gemm.packB does; an odd last value by itself.
            var src: [P.NR][*]const gemm.Pair = undefined;
            for (0..cols) |j| src[j] = @ptrCast(b.at(0, q + j));
            gemm.packLines(u32, gemm.Pair, P.NR, cols, vals / 2, &src, dst);
            if (vals % 2 == 1) {
                const p = vals / 2;
                for (0..P.NR) |j| dst[p * P.NR + j] = if (j < cols) b.at(vals - 1, q + j).bits else 0;
            }
        } else {
            for (0..kp) |p| {
                for (0..cols) |j| dst[p * P.NR + j] = word(b, 2 * p, q + j, vals);
                for (cols..P.NR) |j| dst[p * P.NR + j] = 0;
            }
        }
    }
}

/// A's rows [0, mc), columns [0, vals) into micro-panels of MR words per pair (zero past mc).
fn packA(kp: usize, vals: usize, mc: usize, a: gemm.Mat(BF16), out: [*]u32) void {
    var r: usize = 0;
    while (r < mc) : (r += P.MR) {
        const rows: usize = @min(P.MR, mc - r);
        const dst = out + r * kp;
        if (a.cs == 1) {
            // Row-major A: a row's pairs are consecutive words, transposed in registers.
            var src: [P.MR][*]const gemm.Pair = undefined;
            for (0..rows) |i| src[i] = @ptrCast(a.at(r + i, 0));
            gemm.packLines(u32, gemm.Pair, P.MR, rows, vals / 2, &src, dst);
            if (vals % 2 == 1) {
                const p = vals / 2;
                for (0..P.MR) |i| dst[p * P.MR + i] = if (i < rows) a.at(r + i, vals - 1).bits else 0;
            }
        } else if (a.rs == 1 and rows == P.MR) {
            // Column-major A (x.T @ dy): a column's MR values are consecutive; two columns
            // interleaved into words.
            for (0..kp) |p| {
                const lo_col: *const [P.MR]u16 = @ptrCast(a.at(r, 2 * p));
                const lo: @Vector(P.MR, u16) = lo_col.*;
                const hi: @Vector(P.MR, u16) = if (2 * p + 1 < vals) @as(*const [P.MR]u16, @ptrCast(a.at(r, 2 * p + 1))).* else @splat(0);
                const w: @Vector(P.MR, u32) = @as(@Vector(P.MR, u32), lo) | (@as(@Vector(P.MR, u32), hi) << @splat(16));
                dst[p * P.MR ..][0..P.MR].* = w;
            }
        } else {
            for (0..kp) |p| {
                // A's (i, c) is the transpose's (c, i).
                const at = gemm.Mat(BF16){ .ptr = a.ptr, .rs = a.cs, .cs = a.rs };
                for (0..rows) |i| dst[p * P.MR + i] = word(at, 2 * p, r + i, vals);
                for (rows..P.MR) |i| dst[p * P.MR + i] = 0;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: the path against a float64 loop over the same bfloat16 values, at every CPU level of a
// portable build, with the instruction in software (and by the instruction where the CPU has it).

const half = @import("half.zig");

fn checkCase(m: usize, n: usize, k: usize, a_layout: u2, b_layout: u2, alpha: f32, beta: f32) !void {
    const gpa = std.testing.allocator;
    var prng = std.Random.DefaultPrng.init(m * 7919 + n * 131 + k);
    const r = prng.random();
    // Room for a layout with every other element (stride 2).
    const a = try gpa.alloc(BF16, 2 * m * k);
    defer gpa.free(a);
    const b = try gpa.alloc(BF16, 2 * k * n);
    defer gpa.free(b);
    const c = try gpa.alloc(f32, m * n);
    defer gpa.free(c);
    for (a) |*x| x.* = .{ .bits = half.f32ToBf16(r.float(f32) * 2 - 1) };
    for (b) |*x| x.* = .{ .bits = half.f32ToBf16(r.float(f32) * 2 - 1) };
    for (c) |*x| x.* = r.float(f32) * 2 - 1;
    const c0 = try gpa.dupe(f32, c);
    defer gpa.free(c0);
    // Layouts: 0 row-major, 1 column-major (transposed), 2 row-major with element stride 2,
    // 3 column-major with element stride 2.
    const am = layout(a, m, k, a_layout);
    const bm = layout(b, k, n, b_layout);
    gemm.gemm(f32, BF16, BF16, f32, m, n, k, alpha, am, bm, beta, .{ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 });
    for (0..m) |i| for (0..n) |j| {
        var s: f64 = 0;
        var mag: f64 = 0;
        for (0..k) |p| {
            const x = @as(f64, half.bf16ToF32(am.at(i, p).bits)) * half.bf16ToF32(bm.at(p, j).bits);
            s += x;
            mag += @abs(x);
        }
        const want = alpha * s + beta * @as(f64, c0[i * n + j]);
        // Float32 sums of k products: within k roundings of the magnitudes' sum.
        const tol = (@abs(alpha) * mag + @abs(beta * c0[i * n + j])) * 1.2e-7 * @as(f64, @floatFromInt(k + 2));
        if (@abs(want - c[i * n + j]) > tol) {
            std.debug.print("dpbf16 m={d} n={d} k={d} layouts={d},{d} at ({d},{d}): {d} vs {d}\n", .{ m, n, k, a_layout, b_layout, i, j, c[i * n + j], want });
            return error.TestExpectedEqual;
        }
    };
}

fn layout(x: []BF16, rows: usize, cols: usize, l: u2) gemm.Mat(BF16) {
    const s: isize = if (l >= 2) 2 else 1;
    const r: isize = @intCast(rows);
    const c: isize = @intCast(cols);
    return if (l % 2 == 0) .{ .ptr = x.ptr, .rs = c * s, .cs = s } else .{ .ptr = x.ptr, .rs = s, .cs = r * s };
}

test "VDPBF16PS path matches a float64 loop: tiles, odd and several K panels, every layout, alpha/beta" {
    const shapes = [_][3]usize{
        .{ 2, 3, 1 },     .{ 3, 5, 7 },     .{ 14, 32, 8 },   .{ 15, 33, 9 },     .{ 6, 16, 2 },
        .{ 29, 47, 257 }, .{ 20, 40, 513 }, .{ 9, 50, 1025 }, .{ 130, 129, 300 },
    };
    defer gemm.setDpMode(.auto);
    const saved = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved);
    const levels: usize = if (cpu.dispatch) @as(usize, @intFromEnum(cpu.detected())) + 1 else 1;
    for (0..levels) |li| for ([_]Mode{ .emulate, .hardware }) |md| {
        if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
        gemm.setDpMode(md);
        for (shapes) |s| for (0..4) |la| for (0..4) |lb| {
            try checkCase(s[0], s[1], s[2], @intCast(la), @intCast(lb), 1, 0);
        };
        try checkCase(130, 129, 600, 0, 1, 0.5, 2);
        try checkCase(31, 70, 45, 1, 0, -2, 0.25);
    };
}

test "VDPBF16PS path: the instruction in software takes each word as (low, high) bfloat16 values and adds the high product first" {
    // acc 1, high product 2^-12 * 2^-12 = 2^-24, low product 1 * -1: high first, 1 + 2^-24 rounds
    // (ties to even) to 1 and the low product then gives 0; low first would give 2^-24.
    const a: W = @splat(@as(u32, 0x3f80) | (@as(u32, 0x3980) << 16));
    const b: W = @splat(@as(u32, 0xbf80) | (@as(u32, 0x3980) << 16));
    try std.testing.expect(@reduce(.And, dpSoft(@splat(1), a, b) == @as(V, @splat(0))));
    // Plain values: 0.25 + 2 * 0.5 + 1 * 3.
    const c: W = @splat(@as(u32, 0x3f80) | (@as(u32, 0x4000) << 16));
    const d: W = @splat(@as(u32, 0x4040) | (@as(u32, 0x3f00) << 16));
    try std.testing.expect(@reduce(.And, dpSoft(@splat(0.25), c, d) == @as(V, @splat(4.25))));
}
