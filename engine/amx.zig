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
const gemm_zig = @import("gemm.zig");
const Mat = gemm_zig.Mat;

const BF16 = dtype.BF16;
const is_x86_64 = builtin.cpu.arch == .x86_64 and builtin.os.tag == .linux;

// ---------------------------------------------------------------------------------------------
// Detection

var state = std.atomic.Value(u8).init(0); // 0 unknown, 1 available, 2 unavailable

/// `auto` uses the tiles where `available()`. Tests: `off` keeps products on the vector path on a
/// machine with AMX, `emulate` runs this file's product with the tile instructions computed in
/// software (`Emulated`), on any CPU, so its packing and blocking are checked everywhere.
pub const Mode = enum(u8) { auto, off, emulate };
pub var mode: Mode = .auto;

/// Whether products go to the tiles (or their emulation) at all.
pub fn usable() bool {
    return switch (mode) {
        .auto => available(),
        .off => false,
        .emulate => true,
    };
}

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
pub const TileConfig = extern struct {
    palette: u8 = 1,
    start_row: u8 = 0,
    reserved: [14]u8 = [_]u8{0} ** 14,
    colsb: [16]u16 = [_]u16{64} ** 8 ++ [_]u16{0} ** 8,
    rows: [16]u8 = [_]u8{16} ** 8 ++ [_]u8{0} ** 8,
};

// The assembler accepts AMX mnemonics only when the build target has AMX, and the library is built
// for any x86-64, so the instructions are spelled as bytes (VEX-encoded; Intel SDM vol. 2). Memory
// operands use fixed registers: the base in rax, the row stride in rcx (SIB base rax, index rcx).

pub inline fn tileConfigure(cfg: *const TileConfig) void {
    // ldtilecfg (%rax): VEX.128.NP.0F38.W0 49 /0
    asm volatile (".byte 0xc4, 0xe2, 0x78, 0x49, 0x00"
        :
        : [cfg] "{rax}" (cfg),
        : .{ .memory = true });
}

pub inline fn tileRelease() void {
    // tilerelease: VEX.128.NP.0F38.W0 49 C0
    asm volatile (".byte 0xc4, 0xe2, 0x78, 0x49, 0xc0" ::: .{ .memory = true });
}

pub inline fn tileLoad(comptime t: u8, p: *const anyopaque, stride: usize) void {
    // tileloadd (%rax,%rcx,1), %tmm<t>: VEX.128.F2.0F38.W0 4B, ModRM 00 t 100, SIB 00 001 000
    asm volatile (std.fmt.comptimePrint(".byte 0xc4, 0xe2, 0x7b, 0x4b, 0x{x:0>2}, 0x08", .{(t << 3) | 4})
        :
        : [p] "{rax}" (p),
          [s] "{rcx}" (stride),
        : .{ .memory = true });
}

pub inline fn tileStore(comptime t: u8, p: *anyopaque, stride: usize) void {
    // tilestored %tmm<t>, (%rax,%rcx,1): VEX.128.F3.0F38.W0 4B, ModRM 00 t 100, SIB 00 001 000
    asm volatile (std.fmt.comptimePrint(".byte 0xc4, 0xe2, 0x7a, 0x4b, 0x{x:0>2}, 0x08", .{(t << 3) | 4})
        :
        : [p] "{rax}" (p),
          [s] "{rcx}" (stride),
        : .{ .memory = true });
}

pub inline fn tileZero(comptime t: u8) void {
    // tilezero %tmm<t>: VEX.128.F2.0F38.W0 49, ModRM 11 t 000
    asm volatile (std.fmt.comptimePrint(".byte 0xc4, 0xe2, 0x7b, 0x49, 0x{x:0>2}", .{0xc0 | (t << 3)}) ::: .{ .memory = true });
}

/// tmm[c] += tmm[a] (16 x 32 bf16) * tmm[b] (32 x 16 bf16, VNNI pairs), in float32.
pub inline fn dot(comptime c: u8, comptime a: u8, comptime b: u8) void {
    // tdpbf16ps: VEX.128.F3.0F38.W0 5C, vvvv = ~b, ModRM 11 c a
    const vex2: u8 = (@as(u8, ~b & 0xf) << 3) | 0x02;
    asm volatile (std.fmt.comptimePrint(".byte 0xc4, 0xe2, 0x{x:0>2}, 0x5c, 0x{x:0>2}", .{ vex2, 0xc0 | (c << 3) | a }) ::: .{ .memory = true });
}

/// One 32-deep k step of a 32 x 32 block of C held in tiles 0-3: the two packed A tiles (rows
/// 0-15 and 16-31) into tiles 4 and 5, the two packed B tiles (columns 0-15 and 16-31) into 6 and
/// 7, and the four products.
pub inline fn step(a0: [*]const u16, a1: [*]const u16, b0: [*]const u16, b1: [*]const u16) void {
    stepWith(Unit(false), a0, a1, b0, b1);
}

/// The tile instructions the product uses: the hardware's, or their emulation (`mode` emulate).
fn Unit(comptime emu: bool) type {
    if (emu) return Emulated;
    return struct {
        const configure = tileConfigure;
        const release = tileRelease;
        const load = tileLoad;
        const store = tileStore;
        const zero = tileZero;
        const product = dot;
    };
}

/// `step` on either unit (Unit).
inline fn stepWith(comptime U: type, a0: [*]const u16, a1: [*]const u16, b0: [*]const u16, b1: [*]const u16) void {
    U.load(4, a0, 64);
    U.load(5, a1, 64);
    U.load(6, b0, 64);
    U.load(7, b1, 64);
    U.product(0, 4, 6);
    U.product(1, 4, 7);
    U.product(2, 5, 6);
    U.product(3, 5, 7);
}

/// The eight tiles (palette 1: 16 rows of 64 bytes) in memory, per thread, and the instructions on
/// them as the Intel SDM defines them: TDPBF16PS adds each pair's two exact products to the float32
/// element one after the other (even element first), each sum rounded to nearest even, with
/// subnormal inputs read as zero and subnormal sums flushed to zero.
const Emulated = struct {
    threadlocal var tiles: [8][16][16]u32 = undefined;

    fn configure(_: *const TileConfig) void {}
    fn release() void {}
    fn load(comptime t: u8, p: *const anyopaque, stride: usize) void {
        const base: [*]const u8 = @ptrCast(p);
        for (0..16) |r| @memcpy(std.mem.asBytes(&tiles[t][r]), base[r * stride ..][0..64]);
    }
    fn store(comptime t: u8, p: *anyopaque, stride: usize) void {
        const base: [*]u8 = @ptrCast(p);
        for (0..16) |r| @memcpy(base[r * stride ..][0..64], std.mem.asBytes(&tiles[t][r]));
    }
    fn zero(comptime t: u8) void {
        tiles[t] = std.mem.zeroes([16][16]u32);
    }
    fn product(comptime c: u8, comptime a: u8, comptime b: u8) void {
        for (0..16) |m| for (0..16) |n| {
            var acc: f32 = @bitCast(tiles[c][m][n]);
            for (0..16) |k| inline for (.{ 0, 16 }) |half_shift| {
                const x = flushed(@truncate(tiles[a][m][k] >> half_shift));
                const y = flushed(@truncate(tiles[b][k][n] >> half_shift));
                // The product of two bfloat16 values is exact in float32 (8-bit significands).
                acc = acc + x * y;
                if (@abs(acc) < std.math.floatMin(f32)) acc = std.math.copysign(@as(f32, 0), acc);
            };
            tiles[c][m][n] = @bitCast(acc);
        };
    }
    /// A bfloat16 value widened, a subnormal read as zero (of its sign).
    inline fn flushed(bits: u16) f32 {
        const v = half.bf16ToF32(bits);
        return if (bits & 0x7f80 == 0) std.math.copysign(@as(f32, 0), v) else v;
    }
};

// ---------------------------------------------------------------------------------------------
// The product

const tile_elems = 16 * 32; // bf16 elements in one packed 1 KiB tile
/// Bytes of A panels (a group of row pairs) kept in L2 while every column pair's B panel streams by.
const a_group_bytes: usize = 512 << 10;

/// The sizes worth the packing: below this many multiply-adds the vector path is as fast.
pub const min_work: usize = 32 * 32 * 64;

/// Packing buffers kept between products (fresh multi-megabyte allocations cost page faults).
/// A product that finds them in use (another stream's product) allocates its own.
var cache_lock: std.Thread.Mutex = .{};
/// A 32 x 32 float32 block of C per thread, stored from the accumulator tiles and rounded into C
/// while the next block's products run in the tiles.
threadlocal var stage_buf: [32 * 32]f32 align(64) = undefined;

/// A block of C in the stage, its first `done` rows already rounded into C.
const Pending = struct {
    row0: usize = 0,
    col0: usize = 0,
    rows: usize = 0,
    cols: usize = 0,
    done: usize = 0,
};
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
/// buffers could not be allocated (the caller falls back); requires `usable()`.
pub fn gemm(comptime SC: type, m: usize, n: usize, k: usize, alpha: f32, a: Mat(BF16), b: Mat(BF16), beta: f32, c: Mat(SC), parallel: bool) bool {
    if (mode == .emulate) return gemmWith(true, SC, m, n, k, alpha, a, b, beta, c, parallel);
    if (comptime !is_x86_64) return false; // the instructions are x86-64 only (cross builds)
    return gemmWith(false, SC, m, n, k, alpha, a, b, beta, c, parallel);
}

fn gemmWith(comptime emu: bool, comptime SC: type, m: usize, n: usize, k: usize, alpha: f32, a: Mat(BF16), b: Mat(BF16), beta: f32, c: Mat(SC), parallel: bool) bool {
    const U = Unit(emu);
    if (k == 0) return false; // nothing to multiply: the caller scales C
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
            packCols(j.b, j.n, j.k, j.ks, s, e, j.bp);
        }
        fn compute(j: *const @This(), s: usize, e: usize) void {
            if (j.by_rows) j.block(s, e, 0, j.nbp) else j.block(0, j.mbp, s, e);
        }
        /// Row pairs [r0, r1) x column pairs [c0, c1) of C, each 32 x 32 block over the whole
        /// K in the four accumulator tiles, then rounded into C once.
        fn block(j: *const @This(), r0: usize, r1: usize, c0: usize, c1: usize) void {
            if (r0 >= r1 or c0 >= c1) return;
            const cfg = TileConfig{};
            U.configure(&cfg);
            defer U.release();
            const panel = j.ks * tile_elems;
            const row_group = @max(1, a_group_bytes / (2 * panel * 2));
            // The previous block's results wait in the stage while the next block's products
            // run, a few of its rows rounded into C after each k step: the vector work overlaps
            // the tile unit's instead of stalling it (~20% of a 1024-deep product).
            var pending: Pending = .{};
            const per_step = (32 + j.ks - 1) / j.ks; // rows of the pending block per k step
            var rg = r0;
            while (rg < r1) : (rg += row_group) {
                const rg_end = @min(rg + row_group, r1);
                const group_rows = rg_end - rg;
                // The next column pair's B panels (or the first pair's, for the next row group)
                // are prefetched into L2 a few lines per k step over this pair's blocks.
                const next_lines = 2 * panel * 2 / 64;
                const per_q = (next_lines + group_rows * j.ks - 1) / (group_rows * j.ks);
                for (c0..c1) |cp| for (rg..rg_end) |rp| {
                    const next: [*]const u8 = @ptrCast(j.bp + 2 * (if (cp + 1 < c1) cp + 1 else c0) * panel);
                    var line = (rp - rg) * j.ks * per_q;
                    U.zero(0);
                    U.zero(1);
                    U.zero(2);
                    U.zero(3);
                    const a0 = j.ap + (2 * rp) * panel;
                    const a1 = a0 + panel;
                    const b0 = j.bp + (2 * cp) * panel;
                    const b1 = b0 + panel;
                    for (0..j.ks) |q| {
                        const off = q * tile_elems;
                        stepWith(U, a0 + off, a1 + off, b0 + off, b1 + off);
                        for (0..per_q) |_| {
                            if (line < next_lines) @prefetch(next + 64 * line, .{ .locality = 2 });
                            line += 1;
                        }
                        j.finishRows(&pending, per_step);
                    }
                    j.finishRows(&pending, 32); // (a K of fewer than 32 steps)
                    const stage = &stage_buf;
                    U.store(0, stage, 128);
                    U.store(1, @ptrCast(&stage[16]), 128);
                    U.store(2, @ptrCast(&stage[16 * 32]), 128);
                    U.store(3, @ptrCast(&stage[16 * 32 + 16]), 128);
                    const row0 = rp * 32;
                    const col0 = cp * 32;
                    pending = .{ .row0 = row0, .col0 = col0, .rows = @min(32, j.m - row0), .cols = @min(32, j.n - col0) };
                };
            }
            j.finishRows(&pending, 32);
        }

        /// Rounds up to `count` more rows of the pending block into C (alpha and beta applied).
        inline fn finishRows(j: *const @This(), p: *Pending, count: usize) void {
            const end = @min(p.done + count, p.rows);
            const stage = &stage_buf;
            if (SC == BF16 and j.beta == 0 and j.c.cs == 1 and p.cols == 32) {
                // Whole contiguous rows: scale and round 16 lanes at a time.
                for (p.done..end) |i| {
                    const dst: [*]u16 = @ptrCast(j.c.at(p.row0 + i, p.col0));
                    inline for (0..2) |h| {
                        const v: @Vector(16, f32) = stage[i * 32 + 16 * h ..][0..16].*;
                        dst[16 * h ..][0..16].* = roundBf16(v * @as(@Vector(16, f32), @splat(j.alpha)));
                    }
                }
            } else {
                for (p.done..end) |i| for (0..p.cols) |jj| {
                    const v = j.alpha * stage[i * 32 + jj];
                    const dst = j.c.at(p.row0 + i, p.col0 + jj);
                    storeC(SC, dst, if (j.beta == 0) v else v + j.beta * loadC(SC, dst));
                };
            }
            p.done = end;
        }
    };
    // Few row pairs: cut C by columns so every worker has work.
    const workers = if (parallel) pool.threads() else 1;
    const by_rows = mbp >= 2 * workers or mbp >= nbp;
    const job = Job{
        .m = m,
        .n = n,
        .k = k,
        .ks = ks,
        .mbp = mbp,
        .nbp = nbp,
        .alpha = alpha,
        .beta = beta,
        .a = a,
        .b = b,
        .c = c,
        .ap = ap.ptr,
        .bp = bp.ptr,
        .by_rows = by_rows,
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

/// Zeroes what a 16-line panel's values leave (packing reuses buffers): the whole panel when
/// it has fewer than 16 lines (`partial`), else the last k step's tile when K is not a multiple
/// of 32.
fn zeroPadding(panel: [*]u16, ks: usize, k: usize, partial: bool) void {
    if (partial) @memset(panel[0 .. ks * tile_elems], 0) else if (k % 32 != 0) @memset(panel[(ks - 1) * tile_elems ..][0..tile_elems], 0);
}

/// Rows [16 rb, 16 rb + 16) of A as ks tiles of 16 x 32 (row-major, zero-padded).
fn packRows(a: Mat(BF16), m: usize, k: usize, ks: usize, rb: usize, out: [*]u16) void {
    const r0 = rb * 16;
    zeroPadding(out, ks, k, r0 + 16 > m);
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

/// Columns [16 cb0, 16 cb1) of B as ks VNNI tiles per 16 columns (column block cb at
/// out + cb ks tile_elems): element (kk, j) of a 32-deep step at row kk / 2, position
/// 2 j + kk % 2; zero past n and past k.
fn packCols(b: Mat(BF16), n: usize, k: usize, ks: usize, cb0: usize, cb1: usize, out: [*]u16) void {
    const panel = ks * tile_elems;
    for (cb0..cb1) |cb| zeroPadding(out + cb * panel, ks, k, cb * 16 + 16 > n);
    const full_end = @max(cb0, @min(cb1, n / 16));
    if (b.cs == 1) {
        // Row-major B: down every pair of rows (each row read once, in order), across every
        // column block, two rows' 16 values widened into one VNNI row of 16 words. (By column
        // block, or a few at a time, reads each row's cache lines again per pass over K and
        // took 2-4x as long at 1024-2048 square.)
        var kk: usize = 0;
        while (kk < k) : (kk += 2) {
            const lo: [*]const u16 = @ptrCast(b.at(kk, 0));
            const hi: [*]const u16 = @ptrCast(b.at(@min(kk + 1, k - 1), 0));
            // The last row of an odd K: its pair's high half is zero.
            const hi_mask: @Vector(16, u32) = @splat(if (kk + 1 < k) 0xffff else 0);
            const off = (kk / 32) * tile_elems + ((kk % 32) / 2) * 32;
            for (cb0..full_end) |cb| {
                const dst: [*]u32 = @ptrCast(@alignCast(out + cb * panel + off));
                const l: @Vector(16, u16) = lo[cb * 16 ..][0..16].*;
                const h: @Vector(16, u16) = hi[cb * 16 ..][0..16].*;
                dst[0..16].* = @as(@Vector(16, u32), l) | ((@as(@Vector(16, u32), h) & hi_mask) << @splat(16));
            }
        }
    } else if (b.rs == 1) {
        // Column-major B (x @ W.T): a column's (k, k + 1) pair is already one VNNI word, and a
        // tile row is the same pair of 16 columns, so 16 columns' words are transposed in
        // registers (gemm.packLines, as the float32 path packs such a B): a k step's tile is
        // written whole rows at a time. (Word by word, 64 bytes apart, this took ~3x the
        // product itself for a 128-row x @ W.T.)
        for (cb0..full_end) |cb| {
            const dst: [*]u32 = @ptrCast(@alignCast(out + cb * panel));
            var src: [16][*]const gemm_zig.Pair = undefined;
            for (0..16) |jj| src[jj] = @ptrCast(b.at(0, cb * 16 + jj));
            gemm_zig.packLines(u32, gemm_zig.Pair, 16, 16, k / 2, &src, dst);
            if (k % 2 == 1) for (0..16) |jj| {
                dst[(k / 32) * 256 + ((k % 32) / 2) * 16 + jj] = b.at(k - 1, cb * 16 + jj).bits;
            };
        }
    } else {
        for (cb0..full_end) |cb| packColsAt(b, n, k, cb, out + cb * panel);
    }
    for (full_end..cb1) |cb| packColsAt(b, n, k, cb, out + cb * panel);
}

/// One column block element by element (any strides; a partial block, already zeroed).
fn packColsAt(b: Mat(BF16), n: usize, k: usize, cb: usize, out: [*]u16) void {
    const c0 = cb * 16;
    if (c0 >= n) return;
    const cols = @min(16, n - c0);
    for (0..k) |kk| {
        const dst = out + (kk / 32) * tile_elems + ((kk % 32) / 2) * 32 + (kk % 2);
        for (0..cols) |jj| dst[2 * jj] = b.at(kk, c0 + jj).bits;
    }
}

test "AMX bfloat16 product equals the float32 product of the same bfloat16 values" {
    // The instructions themselves where the CPU has them, and their emulation everywhere.
    defer mode = .auto;
    for ([_]Mode{ .auto, .emulate }) |md| {
        mode = md;
        if (usable()) try checkProducts();
    }
}

fn checkProducts() !void {
    const alloc = std.testing.allocator;
    var prng = std.Random.DefaultPrng.init(7);
    const rnd = prng.random();
    // Edge sizes: partial tiles in every dimension, odd K, a K spanning several chunks, and
    // enough column pairs for the next pair's prefetch to wrap.
    const cases = [_][3]usize{ .{ 1, 1, 1 }, .{ 17, 33, 31 }, .{ 40, 70, 600 }, .{ 64, 64, 64 }, .{ 3, 100, 1100 }, .{ 50, 48, 77 }, .{ 70, 200, 33 } };
    // B row-major, transposed (column-major), and with its elements two apart in both.
    for (cases) |cs| for (0..4) |b_layout| {
        const m = cs[0];
        const n = cs[1];
        const k = cs[2];
        const a = try alloc.alloc(BF16, m * k);
        defer alloc.free(a);
        const b = try alloc.alloc(BF16, 2 * k * n);
        defer alloc.free(b);
        const c = try alloc.alloc(BF16, m * n);
        defer alloc.free(c);
        for (a) |*x| x.* = .{ .bits = half.f32ToBf16(rnd.floatNorm(f32)) };
        for (b) |*x| x.* = .{ .bits = half.f32ToBf16(rnd.floatNorm(f32)) };
        for (c) |*x| x.* = .{ .bits = half.f32ToBf16(rnd.floatNorm(f32)) };
        const c0 = try alloc.dupe(BF16, c);
        defer alloc.free(c0);
        const am = Mat(BF16){ .ptr = a.ptr, .rs = @intCast(k), .cs = 1 };
        const s: isize = if (b_layout >= 2) 2 else 1;
        const kd: isize = @intCast(k);
        const nd: isize = @intCast(n);
        const bm = if (b_layout % 2 == 1) Mat(BF16){ .ptr = b.ptr, .rs = s, .cs = kd * s } else Mat(BF16){ .ptr = b.ptr, .rs = nd * s, .cs = s };
        const cm = Mat(BF16){ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 };
        // beta -1 (C read back, one element at a time) and 0 (whole rows rounded in vectors).
        for ([_]f32{ -1, 0 }) |beta| {
            @memcpy(c, c0);
            try std.testing.expect(gemm(BF16, m, n, k, 0.5, am, bm, beta, cm, true));
            for (0..m) |i| for (0..n) |j| {
                var sum: f64 = 0;
                for (0..k) |kk| sum += @as(f64, half.bf16ToF32(a[i * k + kk].bits)) * half.bf16ToF32(bm.at(kk, j).bits);
                const want = 0.5 * sum + beta * half.bf16ToF32(c0[i * n + j].bits);
                const got = half.bf16ToF32(c[i * n + j].bits);
                // One bfloat16 rounding of the result plus float32 accumulation error.
                const tol = 1e-2 * @abs(want) + 1e-4 * @as(f64, @floatFromInt(k));
                if (@abs(got - want) > tol) {
                    std.debug.print("m={d} n={d} k={d} B layout {d} ({d},{d}): got {d} want {d}\n", .{ m, n, k, b_layout, i, j, got, want });
                    return error.TestUnexpectedResult;
                }
            };
        }
    };
}
