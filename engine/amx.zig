//! bfloat16 matrix products on Intel AMX tiles (Sapphire Rapids and later), chosen at run time.
//!
//! `TDPBF16PS` multiplies a 16 x 32 bfloat16 tile of A by a 32 x 16 bfloat16 tile of B (stored as
//! 16 rows of 16 (k, k+1) pairs, the "VNNI" layout) into a 16 x 16 float32 tile of C: 16K flops
//! per instruction. The kernel holds a 32 x 32 block of C in four accumulator tiles and loads two
//! A tiles and two B tiles per 32-deep k step (all eight tile registers).
//!
//! Operands are packed first, zero-padded to whole tiles: A as 1 KiB 16 x 32 tiles, B as 1 KiB
//! VNNI tiles, read through any strides (so transposed views need no copy). C accumulates in the
//! four tiles over the whole K and is rounded to bfloat16 once per 32 x 32 block, with alpha and beta
//! applied then, as the float32 path (`gemm.viaWide`) does. Blocking: C is cut into row ranges
//! (or column ranges when there are few rows) per worker; within a worker, a group of row pairs
//! keeps its A panels in L2 while every column pair's B panel streams past.
//!
//! Availability: the CPU must report AMX-TILE and AMX-BF16, the OS must enable the tile state in
//! XCR0, and Linux must grant this process the tile data permission (arch_prctl
//! ARCH_REQ_XCOMP_PERM); any refusal, or MLXB_NO_AMX=1 in the environment, leaves the portable
//! vector path in charge. The instructions are written as inline assembly, so the library needs
//! no AMX at build time and runs on any x86-64.
const std = @import("std");
const builtin = @import("builtin");
const cpu = @import("cpu.zig");
const pool = @import("pool.zig");
const half = @import("half.zig");
const dtype = @import("dtype.zig");
const Mat = @import("gemm.zig").Mat;

const BF16 = dtype.BF16;
const is_x86_64 = builtin.cpu.arch == .x86_64 and builtin.os.tag == .linux;

// ---------------------------------------------------------------------------------------------
// Detection

var state = std.atomic.Value(u8).init(0); // 0 unknown, 1 available, 2 unavailable

/// Tests set this to exercise the vector path on a machine with AMX.
pub var force_off: bool = false;

/// Whether AMX bfloat16 tiles can be used by this process (asks the kernel once).
pub fn available() bool {
    const s = state.load(.acquire);
    if (s != 0) return s == 1;
    const ok = probe();
    state.store(if (ok) 1 else 2, .release);
    return ok;
}

fn probe() bool {
    if (!is_x86_64) return false;
    if (std.posix.getenv("MLXB_NO_AMX")) |v| if (v.len > 0 and !std.mem.eql(u8, v, "0")) return false;
    const max_leaf = cpuid(0, 0)[0];
    if (max_leaf < 7) return false;
    const l1 = cpuid(1, 0);
    if ((l1[2] >> 27) & 1 == 0) return false; // OSXSAVE
    const l7 = cpuid(7, 0);
    const amx_bf16 = (l7[3] >> 22) & 1 == 1;
    const amx_tile = (l7[3] >> 24) & 1 == 1;
    if (!amx_bf16 or !amx_tile) return false;
    const xcr0 = xgetbv0();
    if ((xcr0 >> 17) & 3 != 3) return false; // XTILECFG and XTILEDATA enabled by the OS
    // Linux 5.16+: the tile data state must be requested before first use.
    const ARCH_REQ_XCOMP_PERM = 0x1023;
    const XFEATURE_XTILEDATA = 18;
    const rc = std.os.linux.syscall2(.arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
    if (std.os.linux.E.init(rc) != .SUCCESS) return false;
    return true;
}

const cpuid = cpu.cpuid;
const xgetbv0 = cpu.xgetbv0;

// ---------------------------------------------------------------------------------------------
// Tile instructions

/// The tile configuration (palette 1): eight tiles of 16 rows x 64 bytes.
const TileConfig = extern struct {
    palette: u8 = 1,
    start_row: u8 = 0,
    reserved: [14]u8 = [_]u8{0} ** 14,
    colsb: [16]u16 = [_]u16{64} ** 8 ++ [_]u16{0} ** 8,
    rows: [16]u8 = [_]u8{16} ** 8 ++ [_]u8{0} ** 8,
};

// The assembler accepts AMX mnemonics only when the build target has AMX, and the library is built
// for any x86-64, so the instructions are spelled as bytes (VEX-encoded; Intel SDM vol. 2). Memory
// operands use fixed registers: the base in rax, the row stride in rcx (SIB base rax, index rcx).

inline fn tileConfigure(cfg: *const TileConfig) void {
    // ldtilecfg (%rax): VEX.128.NP.0F38.W0 49 /0
    asm volatile (".byte 0xc4, 0xe2, 0x78, 0x49, 0x00"
        :
        : [cfg] "{rax}" (cfg),
        : .{ .memory = true });
}

inline fn tileRelease() void {
    // tilerelease: VEX.128.NP.0F38.W0 49 C0
    asm volatile (".byte 0xc4, 0xe2, 0x78, 0x49, 0xc0" ::: .{ .memory = true });
}

inline fn tileLoad(comptime t: u8, p: *const anyopaque, stride: usize) void {
    // tileloadd (%rax,%rcx,1), %tmm<t>: VEX.128.F2.0F38.W0 4B, ModRM 00 t 100, SIB 00 001 000
    asm volatile (std.fmt.comptimePrint(".byte 0xc4, 0xe2, 0x7b, 0x4b, 0x{x:0>2}, 0x08", .{(t << 3) | 4})
        :
        : [p] "{rax}" (p),
          [s] "{rcx}" (stride),
        : .{ .memory = true });
}

inline fn tileStore(comptime t: u8, p: *anyopaque, stride: usize) void {
    // tilestored %tmm<t>, (%rax,%rcx,1): VEX.128.F3.0F38.W0 4B, ModRM 00 t 100, SIB 00 001 000
    asm volatile (std.fmt.comptimePrint(".byte 0xc4, 0xe2, 0x7a, 0x4b, 0x{x:0>2}, 0x08", .{(t << 3) | 4})
        :
        : [p] "{rax}" (p),
          [s] "{rcx}" (stride),
        : .{ .memory = true });
}

inline fn tileZero(comptime t: u8) void {
    // tilezero %tmm<t>: VEX.128.F2.0F38.W0 49, ModRM 11 t 000
    asm volatile (std.fmt.comptimePrint(".byte 0xc4, 0xe2, 0x7b, 0x49, 0x{x:0>2}", .{0xc0 | (t << 3)}) ::: .{ .memory = true });
}

/// tmm[c] += tmm[a] (16 x 32 bf16) * tmm[b] (32 x 16 bf16, VNNI pairs), in float32.
inline fn dot(comptime c: u8, comptime a: u8, comptime b: u8) void {
    // tdpbf16ps: VEX.128.F3.0F38.W0 5C, vvvv = ~b, ModRM 11 c a
    const vex2: u8 = (@as(u8, ~b & 0xf) << 3) | 0x02;
    asm volatile (std.fmt.comptimePrint(".byte 0xc4, 0xe2, 0x{x:0>2}, 0x5c, 0x{x:0>2}", .{ vex2, 0xc0 | (c << 3) | a }) ::: .{ .memory = true });
}

// ---------------------------------------------------------------------------------------------
// The product

const tile_elems = 16 * 32; // bf16 elements in one packed 1 KiB tile
const row_group = 4; // row pairs whose A panels stay in L2 while every column pair streams by

/// The sizes worth the packing: below this many multiply-adds the vector path is as fast.
pub const min_work: usize = 32 * 32 * 64;

/// Packing buffers kept between products (fresh multi-megabyte allocations cost page faults).
/// A product that finds them in use (another stream's product) allocates its own.
var cache_lock: std.Thread.Mutex = .{};
threadlocal var stage_buf: [32 * 32]f32 align(64) = undefined;
var cache_a: []align(64) u16 = &.{};
var cache_b: []align(64) u16 = &.{};

fn grow(buf: *[]align(64) u16, len: usize) bool {
    if (buf.len >= len) return true;
    if (buf.len != 0) std.heap.c_allocator.free(buf.*);
    buf.* = &.{};
    buf.* = std.heap.c_allocator.alignedAlloc(u16, .@"64", len) catch return false;
    return true;
}

/// C (m x n, storage SC: BF16) = alpha * A B + beta * C, A and B bfloat16. False when the
/// buffers could not be allocated (the caller falls back); requires `available()`.
pub fn gemm(comptime SC: type, m: usize, n: usize, k: usize, alpha: f32, a: Mat(BF16), b: Mat(BF16), beta: f32, c: Mat(SC), parallel: bool) bool {
    if (comptime !is_x86_64) return false; // the tile code below is x86-64 only (cross builds)
    const mbp = (m + 31) / 32; // 32-row block pairs
    const nbp = (n + 31) / 32; // 32-column block pairs
    const ks = (k + 31) / 32; // 32-deep k steps
    const a_len = mbp * 2 * ks * tile_elems;
    const b_len = nbp * 2 * ks * tile_elems;
    var own_a: []align(64) u16 = &.{};
    var own_b: []align(64) u16 = &.{};
    const cached = cache_lock.tryLock();
    defer if (cached) cache_lock.unlock();
    defer {
        if (own_a.len != 0) std.heap.c_allocator.free(own_a);
        if (own_b.len != 0) std.heap.c_allocator.free(own_b);
    }
    const ap = if (cached) (if (grow(&cache_a, a_len)) cache_a else return false) else (if (grow(&own_a, a_len)) own_a else return false);
    const bp = if (cached) (if (grow(&cache_b, b_len)) cache_b else return false) else (if (grow(&own_b, b_len)) own_b else return false);

    const Job = struct {
        m: usize,
        n: usize,
        k: usize,
        ks: usize,
        mbp: usize,
        nbp: usize,
        alpha: f32,
        beta: f32,
        a: Mat(BF16),
        b: Mat(BF16),
        c: Mat(SC),
        ap: [*]u16,
        bp: [*]u16,
        by_rows: bool,

        fn packA(j: *const @This(), s: usize, e: usize) void {
            for (s..e) |rb| packRows(j.a, j.m, j.k, j.ks, rb, j.ap + rb * j.ks * tile_elems);
        }
        fn packB(j: *const @This(), s: usize, e: usize) void {
            for (s..e) |cb| packCols(j.b, j.n, j.k, j.ks, cb, j.bp + cb * j.ks * tile_elems);
        }
        fn compute(j: *const @This(), s: usize, e: usize) void {
            if (j.by_rows) j.block(s, e, 0, j.nbp) else j.block(0, j.mbp, s, e);
        }
        /// Row pairs [r0, r1) x column pairs [c0, c1) of C, each 32 x 32 block over the whole
        /// K in the four accumulator tiles, then rounded into C once.
        fn block(j: *const @This(), r0: usize, r1: usize, c0: usize, c1: usize) void {
            if (r0 >= r1 or c0 >= c1) return;
            const cfg = TileConfig{};
            tileConfigure(&cfg);
            defer tileRelease();
            const stage = &stage_buf;
            const panel = j.ks * tile_elems;
            var rg = r0;
            while (rg < r1) : (rg += row_group) {
                const rg_end = @min(rg + row_group, r1);
                for (c0..c1) |cp| for (rg..rg_end) |rp| {
                    tileZero(0);
                    tileZero(1);
                    tileZero(2);
                    tileZero(3);
                    const a0 = j.ap + (2 * rp) * panel;
                    const a1 = a0 + panel;
                    const b0 = j.bp + (2 * cp) * panel;
                    const b1 = b0 + panel;
                    for (0..j.ks) |q| {
                        const off = q * tile_elems;
                        tileLoad(4, a0 + off, 64);
                        tileLoad(5, a1 + off, 64);
                        tileLoad(6, b0 + off, 64);
                        tileLoad(7, b1 + off, 64);
                        dot(0, 4, 6);
                        dot(1, 4, 7);
                        dot(2, 5, 6);
                        dot(3, 5, 7);
                    }
                    tileStore(0, stage, 128);
                    tileStore(1, @ptrCast(&stage[16]), 128);
                    tileStore(2, @ptrCast(&stage[16 * 32]), 128);
                    tileStore(3, @ptrCast(&stage[16 * 32 + 16]), 128);
                    const row0 = rp * 32;
                    const col0 = cp * 32;
                    const rows = @min(32, j.m - row0);
                    const cols = @min(32, j.n - col0);
                    if (SC == BF16 and j.beta == 0 and j.c.cs == 1 and cols == 32) {
                        // Whole contiguous rows: scale and round 16 lanes at a time.
                        for (0..rows) |i| {
                            const dst: [*]u16 = @ptrCast(j.c.at(row0 + i, col0));
                            inline for (0..2) |h| {
                                const v: @Vector(16, f32) = stage[i * 32 + 16 * h ..][0..16].*;
                                dst[16 * h ..][0..16].* = roundBf16(v * @as(@Vector(16, f32), @splat(j.alpha)));
                            }
                        }
                    } else {
                        for (0..rows) |i| for (0..cols) |jj| {
                            const v = j.alpha * stage[i * 32 + jj];
                            const dst = j.c.at(row0 + i, col0 + jj);
                            storeC(SC, dst, if (j.beta == 0) v else v + j.beta * loadC(SC, dst));
                        };
                    }
                };
            }
        }
    };
    // Few row pairs: cut C by columns so every worker has work.
    const workers = if (parallel) pool.threads() else 1;
    const by_rows = mbp >= 2 * workers or mbp >= nbp;
    const job = Job{
        .m = m, .n = n, .k = k, .ks = ks, .mbp = mbp, .nbp = nbp, .alpha = alpha, .beta = beta,
        .a = a, .b = b, .c = c, .ap = ap.ptr, .bp = bp.ptr, .by_rows = by_rows,
    };
    if (parallel) {
        pool.parallelFor(mbp * 2, 1, &job, Job.packA);
        pool.parallelFor(nbp * 2, 1, &job, Job.packB);
        pool.parallelFor(if (by_rows) mbp else nbp, 1, &job, Job.compute);
    } else {
        Job.packA(&job, 0, mbp * 2);
        Job.packB(&job, 0, nbp * 2);
        Job.compute(&job, 0, if (by_rows) mbp else nbp);
    }
    return true;
}

/// half.f32ToBf16 on 16 lanes: round to nearest even, NaN to the quiet NaN 0x7fc0.
inline fn roundBf16(v: @Vector(16, f32)) [16]u16 {
    const x: @Vector(16, u32) = @bitCast(v);
    const lsb = (x >> @splat(16)) & @as(@Vector(16, u32), @splat(1));
    const rounded: @Vector(16, u16) = @truncate((x +% @as(@Vector(16, u32), @splat(0x7fff)) +% lsb) >> @splat(16));
    const nan = (x & @as(@Vector(16, u32), @splat(0x7fff_ffff))) > @as(@Vector(16, u32), @splat(0x7f80_0000));
    return @select(u16, nan, @as(@Vector(16, u16), @splat(0x7fc0)), rounded);
}

inline fn loadC(comptime SC: type, p: *const SC) f32 {
    return if (SC == BF16) half.bf16ToF32(p.bits) else @floatCast(p.*);
}

inline fn storeC(comptime SC: type, p: *SC, v: f32) void {
    if (SC == BF16) p.* = .{ .bits = half.f32ToBf16(v) } else p.* = @floatCast(v);
}

/// Rows [16 rb, 16 rb + 16) of A as ks tiles of 16 x 32 (row-major, zero-padded).
fn packRows(a: Mat(BF16), m: usize, k: usize, ks: usize, rb: usize, out: [*]u16) void {
    @memset(out[0 .. ks * tile_elems], 0);
    const r0 = rb * 16;
    if (r0 >= m) return;
    const rows = @min(16, m - r0);
    for (0..rows) |r| {
        const row = a.sub(r0 + r, 0);
        if (row.cs == 1) {
            // Contiguous row: 64-byte runs, one per k step.
            const src: [*]const u16 = @ptrCast(row.at(0, 0));
            var q: usize = 0;
            while ((q + 1) * 32 <= k) : (q += 1) @memcpy(out[q * tile_elems + r * 32 ..][0..32], src[q * 32 ..][0..32]);
            for (q * 32..k) |kk| out[q * tile_elems + r * 32 + kk - q * 32] = src[kk];
        } else {
            for (0..k) |kk| out[(kk / 32) * tile_elems + r * 32 + kk % 32] = row.at(0, kk).bits;
        }
    }
}

/// Columns [16 cb, 16 cb + 16) of B as ks VNNI tiles: element (kk, j) of a 32-deep step at
/// row kk / 2, position 2 j + kk % 2.
fn packCols(b: Mat(BF16), n: usize, k: usize, ks: usize, cb: usize, out: [*]u16) void {
    @memset(out[0 .. ks * tile_elems], 0);
    const c0 = cb * 16;
    if (c0 >= n) return;
    const cols = @min(16, n - c0);
    var kk: usize = 0;
    if (b.cs == 1) {
        // Two contiguous rows interleaved into one VNNI row (a plain loop: the compiler
        // vectorises it; an explicit @shuffle here trips an LLVM bug in Zig 0.15.2 ReleaseFast).
        while (kk + 2 <= k) : (kk += 2) {
            const lo: [*]const u16 = @ptrCast(b.at(kk, c0));
            const hi: [*]const u16 = @ptrCast(b.at(kk + 1, c0));
            const dst = out + (kk / 32) * tile_elems + ((kk % 32) / 2) * 32;
            for (0..cols) |jj| {
                dst[2 * jj] = lo[jj];
                dst[2 * jj + 1] = hi[jj];
            }
        }
    }
    while (kk < k) : (kk += 1) {
        const dst = out + (kk / 32) * tile_elems + ((kk % 32) / 2) * 32 + (kk % 2);
        for (0..cols) |jj| dst[2 * jj] = b.at(kk, c0 + jj).bits;
    }
}

test "AMX bfloat16 product equals the float32 product of the same bfloat16 values" {
    if (!available()) return error.SkipZigTest;
    const alloc = std.testing.allocator;
    var prng = std.Random.DefaultPrng.init(7);
    const rnd = prng.random();
    // Edge sizes: partial tiles in every dimension, a K spanning several chunks, a transposed B.
    const cases = [_][3]usize{ .{ 1, 1, 1 }, .{ 17, 33, 31 }, .{ 40, 70, 600 }, .{ 64, 64, 64 }, .{ 3, 100, 1100 }, .{ 50, 48, 77 } };
    for (cases) |cs| for ([_]bool{ true, false }) |b_transposed| {
        const m = cs[0];
        const n = cs[1];
        const k = cs[2];
        const a = try alloc.alloc(BF16, m * k);
        defer alloc.free(a);
        const b = try alloc.alloc(BF16, k * n); // stored transposed: b[j * k + kk] = B(kk, j)
        defer alloc.free(b);
        const c = try alloc.alloc(BF16, m * n);
        defer alloc.free(c);
        for (a) |*x| x.* = .{ .bits = half.f32ToBf16(rnd.floatNorm(f32)) };
        for (b) |*x| x.* = .{ .bits = half.f32ToBf16(rnd.floatNorm(f32)) };
        for (c) |*x| x.* = .{ .bits = half.f32ToBf16(rnd.floatNorm(f32)) };
        const c0 = try alloc.dupe(BF16, c);
        defer alloc.free(c0);
        const am = Mat(BF16){ .ptr = a.ptr, .rs = @intCast(k), .cs = 1 };
        // b holds B transposed (column j contiguous) or row-major (row kk contiguous).
        const bm = if (b_transposed) Mat(BF16){ .ptr = b.ptr, .rs = 1, .cs = @intCast(k) } else Mat(BF16){ .ptr = b.ptr, .rs = @intCast(n), .cs = 1 };
        const bAt = struct {
            fn f(bb: []const BF16, t: bool, kk: usize, j: usize, kdim: usize, ndim: usize) f32 {
                return half.bf16ToF32((if (t) bb[j * kdim + kk] else bb[kk * ndim + j]).bits);
            }
        }.f;
        const cm = Mat(BF16){ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 };
        try std.testing.expect(gemm(BF16, m, n, k, 0.5, am, bm, -1.0, cm, true));
        for (0..m) |i| for (0..n) |j| {
            var s: f64 = 0;
            for (0..k) |kk| s += @as(f64, half.bf16ToF32(a[i * k + kk].bits)) * bAt(b, b_transposed, kk, j, k, n);
            const want = 0.5 * s - half.bf16ToF32(c0[i * n + j].bits);
            const got = half.bf16ToF32(c[i * n + j].bits);
            // One bfloat16 rounding of the result plus float32 accumulation error.
            const tol = 1e-2 * @abs(want) + 1e-4 * @as(f64, @floatFromInt(k));
            if (@abs(got - want) > tol) {
                std.debug.print("m={d} n={d} k={d} ({d},{d}): got {d} want {d}\n", .{ m, n, k, i, j, got, want });
                return error.TestUnexpectedResult;
            }
        };
    };
}
