//! General matrix multiply, our own: C = alpha * A B + beta * C for any strides.
//!
//! The classic blocked scheme: B is packed in panels of KC x NC (kept in L3/L2), A in blocks of
//! MC x KC (L2), and a register-tiled micro-kernel multiplies an MR x KC micro-panel of A by a
//! KC x NR micro-panel of B (L1) into MR x NR accumulators held in vector registers. Vectors run
//! along N (C is row-major in our arrays): with AVX-512, MR = 14 rows x NR = 2 zmm vectors gives
//! 28 accumulators, two B loads and one broadcast per row per k step.
//!
//! Storage types and the compute type are separate: float16/bfloat16 operands are widened to
//! float32 while packing and rounded once when C is written, as MLX's CPU backend computes them.
//! Packing reads through arbitrary (even negative) element strides, so transposed, sliced and
//! broadcast operands need no copy first. Matrix-vector products (M = 1 or N = 1) skip packing.
//!
//! Work is split over the thread pool by cutting C into independent column (or row) ranges;
//! each worker packs its own panels into thread-local buffers, so there is no synchronisation
//! inside a product.
const std = @import("std");
const builtin = @import("builtin");
const pool = @import("pool.zig");
pub const half = @import("half.zig");
const dtype = @import("dtype.zig");
pub const BF16 = dtype.BF16;
pub const F16 = dtype.F16;
pub const amx = @import("amx.zig");
pub const dpbf16 = @import("dpbf16.zig");
const cpu = @import("cpu.zig");

/// a * b + c: fused where the target has FMA. Without it (the baseline x86-64 kernel object of a
/// portable build) LLVM turns @mulAdd into a call to the software fmaf per element, hundreds
/// of times slower, so the product is rounded before the add there.
const has_fma = builtin.cpu.arch != .x86_64 or std.Target.x86.featureSetHas(builtin.cpu.features, .fma);
pub inline fn madd(comptime V: type, a: V, b: V, c: V) V {
    return if (comptime has_fma) @mulAdd(V, a, b, c) else a * b + c;
}

/// Vector register width in bytes of the target (chooses the micro-kernel shape).
const vec_bytes: usize = blk: {
    const arch = builtin.cpu.arch;
    if (arch == .x86_64) {
        if (std.Target.x86.featureSetHas(builtin.cpu.features, .avx512f)) break :blk 64;
        if (std.Target.x86.featureSetHas(builtin.cpu.features, .avx2)) break :blk 32;
        break :blk 16;
    }
    break :blk 16; // arm64 NEON and others
};
/// Architectural vector registers available to the micro-kernel.
const vec_regs: usize = if (builtin.cpu.arch == .x86_64 and vec_bytes == 64) 32 else if (builtin.cpu.arch == .aarch64) 32 else 16;

/// Blocking and register tile for compute type T.
pub fn Params(comptime T: type) type {
    return struct {
        pub const VL: usize = vec_bytes / @sizeOf(T);
        pub const V = @Vector(VL, T);
        /// Vectors per row of the tile.
        pub const NV: usize = 2;
        pub const NR: usize = NV * VL;
        /// Rows: leave 3 registers for the B vectors and the broadcast.
        pub const MR: usize = @min(14, (vec_regs - NV - 1) / NV);
        /// float32: 512 deep (a B micro-panel of 64 KiB streams from L2 well), so C is read and
        /// written half as often as at 256: 2048^2 on one core ~5% faster, the same below.
        pub const KC: usize = if (@sizeOf(T) == 4) 512 else 192;
        pub const MC: usize = MR * (if (@sizeOf(T) == 4) 24 else 16);
        pub const NC: usize = NR * 96;
    };
}

/// A strided matrix operand: element (i, j) is at ptr[off + i * rs + j * cs] (element units).
pub fn Mat(comptime S: type) type {
    return struct {
        ptr: [*]S,
        rs: isize,
        cs: isize,

        pub inline fn at(m: @This(), i: usize, j: usize) *S {
            const off = @as(isize, @intCast(i)) * m.rs + @as(isize, @intCast(j)) * m.cs;
            return &offsetPtr(S, m.ptr, off)[0];
        }
        pub fn sub(m: @This(), i: usize, j: usize) @This() {
            const off = @as(isize, @intCast(i)) * m.rs + @as(isize, @intCast(j)) * m.cs;
            return .{ .ptr = offsetPtr(S, m.ptr, off), .rs = m.rs, .cs = m.cs };
        }
    };
}

inline fn offsetPtr(comptime S: type, p: [*]S, off: isize) [*]S {
    const addr: isize = @as(isize, @intCast(@intFromPtr(p))) + off * @as(isize, @sizeOf(S));
    return @ptrFromInt(@as(usize, @intCast(addr)));
}

/// Two bfloat16 values at consecutive k as one 32-bit word (engine/dpbf16.zig packs them with
/// packLines, T = u32).
pub const Pair = extern struct { lo: u16, hi: u16 };

pub inline fn load(comptime S: type, comptime T: type, p: *const S) T {
    return switch (S) {
        dtype.F16 => @floatCast(half.f16ToF32(p.bits)),
        dtype.BF16 => @floatCast(half.bf16ToF32(p.bits)),
        Pair => @as(u32, p.lo) | (@as(u32, p.hi) << 16),
        else => @floatCast(p.*),
    };
}

/// VL consecutive elements of storage type S widened to compute type T.
pub inline fn loadVec(comptime S: type, comptime T: type, comptime VL: usize, p: [*]const S) @Vector(VL, T) {
    switch (S) {
        dtype.BF16 => return @floatCast(half.bf16ToF32V(VL, @as(*const [VL]u16, @ptrCast(p)).*)),
        dtype.F16 => return @floatCast(half.f16ToF32V(VL, @as(*const [VL]u16, @ptrCast(p)).*)),
        Pair => return @as(*align(2) const [VL]u32, @ptrCast(p)).*,
        else => return @floatCast(@as(@Vector(VL, S), p[0..VL].*)),
    }
}

inline fn store(comptime S: type, comptime T: type, p: *S, v: T) void {
    switch (S) {
        dtype.F16 => p.* = .{ .bits = half.f32ToF16(@floatCast(v)) },
        dtype.BF16 => p.* = .{ .bits = half.f32ToBf16(@floatCast(v)) },
        else => p.* = @floatCast(v),
    }
}

/// VL compute-type values rounded to storage type S at p, bit for bit as `store` one by one
/// (half.zig's vector conversions).
inline fn storeVec(comptime S: type, comptime T: type, comptime VL: usize, p: [*]S, v: @Vector(VL, T)) void {
    switch (S) {
        dtype.F16 => @as(*[VL]u16, @ptrCast(p)).* = half.f32ToF16V(VL, @floatCast(v)),
        dtype.BF16 => @as(*[VL]u16, @ptrCast(p)).* = half.f32ToBf16V(VL, @floatCast(v)),
        else => p[0..VL].* = @as(@Vector(VL, S), @floatCast(v)),
    }
}

/// C (m x n, storage SC) = alpha * A (m x k, SA) * B (k x n, SB) + beta * C, computed in T.
/// beta == 0 never reads C. In a portable build this calls the kernel object of the CPU's level
/// (engine/cpu.zig), which runs `gemmImpl` compiled for that level.
pub fn gemm(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    if (comptime cpu.dispatch) return dispatched(T, SA, SB, SC, true, m, n, k, alpha, a, b, beta, c);
    gemmImpl(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
}

/// The same product on the calling thread only (for callers that parallelise over a batch).
pub fn gemmSerial(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    if (comptime cpu.dispatch) return dispatched(T, SA, SB, SC, false, m, n, k, alpha, a, b, beta, c);
    gemmSerialImpl(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
}

// ---------------------------------------------------------------------------------------------
// The kernel objects' entry points (engine/kernels.zig exports them once per CPU level).

/// A matrix operand across the kernel objects' C ABI (Mat without its element type).
pub const MatC = extern struct { ptr: *anyopaque, rs: isize, cs: isize };

/// The (compute, A, B, C storage) type combinations the kernel objects export: what
/// prims/matmul.zig, conv.zig, quantized.zig and fast.zig instantiate. A new one is a compile error in a
/// portable build until it is added here.
pub const kernel_combos = .{
    .{ f32, f32, f32, f32 },    .{ f64, f64, f64, f64 },             .{ f32, dtype.F16, dtype.F16, dtype.F16 },
    .{ f32, BF16, BF16, BF16 }, .{ f32, f32, dtype.F16, dtype.F16 }, .{ f32, f32, BF16, BF16 },
    .{ f32, dtype.F16, dtype.F16, f32 }, .{ f32, BF16, BF16, f32 }, // fast.zig's attention scores
};

pub fn EntryFn(comptime T: type) type {
    return fn (usize, usize, usize, T, *const MatC, *const MatC, T, *const MatC, bool) callconv(.c) void;
}

pub fn typeTag(comptime S: type) []const u8 {
    return switch (S) {
        f32 => "f32",
        f64 => "f64",
        dtype.F16 => "f16",
        BF16 => "bf16",
        else => @compileError("no GEMM kernel entry for " ++ @typeName(S)),
    };
}

pub fn entryName(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type) []const u8 {
    return "gemm_" ++ typeTag(T) ++ "_" ++ typeTag(SA) ++ "_" ++ typeTag(SB) ++ "_" ++ typeTag(SC);
}

/// The exported entry of one combination (parallel: gemm, else gemmSerial).
pub fn Entry(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type) type {
    return struct {
        pub fn call(m: usize, n: usize, k: usize, alpha: T, a: *const MatC, b: *const MatC, beta: T, c: *const MatC, parallel: bool) callconv(.c) void {
            const am = Mat(SA){ .ptr = @ptrCast(@alignCast(a.ptr)), .rs = a.rs, .cs = a.cs };
            const bm = Mat(SB){ .ptr = @ptrCast(@alignCast(b.ptr)), .rs = b.rs, .cs = b.cs };
            const cm = Mat(SC){ .ptr = @ptrCast(@alignCast(c.ptr)), .rs = c.rs, .cs = c.cs };
            if (parallel) gemmImpl(T, SA, SB, SC, m, n, k, alpha, am, bm, beta, cm) else gemmSerialImpl(T, SA, SB, SC, m, n, k, alpha, am, bm, beta, cm);
        }
    };
}

fn dispatched(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, parallel: bool, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    comptime {
        var listed = false;
        for (kernel_combos) |combo| {
            if (combo[0] == T and combo[1] == SA and combo[2] == SB and combo[3] == SC) listed = true;
        }
        if (!listed) @compileError("add " ++ entryName(T, SA, SB, SC) ++ " to gemm.kernel_combos");
    }
    const f = cpu.pick(EntryFn(T), comptime entryName(T, SA, SB, SC));
    const ac = MatC{ .ptr = @ptrCast(a.ptr), .rs = a.rs, .cs = a.cs };
    const bc = MatC{ .ptr = @ptrCast(b.ptr), .rs = b.rs, .cs = b.cs };
    const cc = MatC{ .ptr = @ptrCast(c.ptr), .rs = c.rs, .cs = c.cs };
    f(m, n, k, alpha, &ac, &bc, beta, &cc, parallel);
}

/// Tests: the AMX path's mode (engine/amx.zig: off keeps bfloat16 products on the vector path,
/// emulate runs the tile path in software) in every kernel object of a portable build.
pub fn setAmxMode(mode: amx.Mode) void {
    amx.mode = mode;
    if (comptime cpu.dispatch) {
        const t = comptime cpu.table(fn (u8) callconv(.c) void, "amx_mode");
        for (t) |f| f(@intFromEnum(mode));
    }
}

/// Tests: the VDPBF16PS path's mode (engine/dpbf16.zig) in every kernel object.
pub fn setDpMode(mode: dpbf16.Mode) void {
    dpbf16.mode = mode;
    if (comptime cpu.dispatch) {
        const t = comptime cpu.table(fn (u8) callconv(.c) void, "dpbf16_mode");
        for (t) |f| f(@intFromEnum(mode));
    }
}

/// The product itself (compiled per CPU level in a portable build).
pub fn gemmImpl(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    if (m == 0 or n == 0) return;
    if (k == 0 or alpha == 0) {
        scaleC(T, SC, m, n, beta, c);
        return;
    }
    if (useAmx(T, SA, SB, m, n, k) and amx.gemm(SC, m, n, k, alpha, a, b, beta, c, true)) return;
    const P = Params(T);
    const flops = m * n * k;
    const workers = if (flops < 64 * 64 * 64) 1 else pool.threads();
    const Job = struct {
        m: usize,
        n: usize,
        k: usize,
        alpha: T,
        beta: T,
        a: Mat(SA),
        b: Mat(SB),
        c: Mat(SC),
        by_cols: bool,
        unit: usize,
        fn run(j: *const @This(), s: usize, e: usize) void {
            const lo = s * j.unit;
            if (j.by_cols) {
                const hi = @min(e * j.unit, j.n);
                if (lo >= hi) return;
                serial(T, SA, SB, SC, j.m, hi - lo, j.k, j.alpha, j.a, j.b.sub(0, lo), j.beta, j.c.sub(0, lo));
            } else {
                const hi = @min(e * j.unit, j.m);
                if (lo >= hi) return;
                serial(T, SA, SB, SC, hi - lo, j.n, j.k, j.alpha, j.a.sub(lo, 0), j.b, j.beta, j.c.sub(lo, 0));
            }
        }
    };
    if (workers <= 1) {
        serial(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
        return;
    }
    // Cut C along the dimension with more register tiles.
    const col_tiles = (n + P.NR - 1) / P.NR;
    const row_tiles = (m + P.MR - 1) / P.MR;
    const by_cols = col_tiles * P.MR >= row_tiles * P.NR / 2 and col_tiles >= workers;
    const unit = if (by_cols) P.NR else P.MR;
    const tiles = if (by_cols) col_tiles else row_tiles;
    const job = Job{ .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c, .by_cols = by_cols, .unit = unit };
    pool.parallelFor(tiles, 1, &job, Job.run);
}

fn gemmSerialImpl(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    if (m == 0 or n == 0) return;
    if (k == 0 or alpha == 0) return scaleC(T, SC, m, n, beta, c);
    if (useAmx(T, SA, SB, m, n, k) and amx.gemm(SC, m, n, k, alpha, a, b, beta, c, false)) return;
    serial(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
}

/// bfloat16 operands of a product big enough to pay for packing go to AMX tiles when the CPU and
/// the OS allow (engine/amx.zig); matrix-vector products stay on the vector path.
inline fn useAmx(comptime T: type, comptime SA: type, comptime SB: type, m: usize, n: usize, k: usize) bool {
    if (T != f32 or SA != dtype.BF16 or SB != dtype.BF16) return false;
    return m >= 8 and n >= 16 and m * n * k >= amx.min_work and amx.usable();
}

fn scaleC(comptime T: type, comptime SC: type, m: usize, n: usize, beta: T, c: Mat(SC)) void {
    for (0..m) |i| for (0..n) |j| {
        const p = c.at(i, j);
        store(SC, T, p, if (beta == 0) 0 else beta * load(SC, T, p));
    };
}

/// Per-thread packing buffers, grown on demand and kept (no allocation per product).
pub threadlocal var pack_a: []align(64) u8 = &.{};
pub threadlocal var pack_b: []align(64) u8 = &.{};
/// Per-thread compute-type C block of a narrow (float16/bfloat16) product with several K panels.
threadlocal var wide_c: []align(64) u8 = &.{};
/// Its size: about 1024 x 1024 float32 (a C block is cut to fit, so B and A are packed again
/// once per block row and column; at this size that is a few percent of the product at most).
const wide_bytes: usize = 4 << 20;

pub fn packBuffer(buf: *[]align(64) u8, bytes: usize) ?[]align(64) u8 {
    if (buf.len < bytes) {
        if (buf.len != 0) std.heap.c_allocator.free(buf.*);
        buf.* = &.{};
        buf.* = std.heap.c_allocator.alignedAlloc(u8, .@"64", bytes) catch return null;
    }
    return buf.*;
}

/// One thread's product.
fn serial(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    if (m == 1 or n == 1) return gemv(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
    if (SC != T and k > Params(T).KC) return serialWide(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
    if (comptime dpbf16.eligible(T, SA, SB)) if (dpbf16.use()) return dpbf16.serial(SC, m, n, k, alpha, a, b, beta, c);
    const pn = ValuePanels(T, SA, SB, SC){ .a = a, .b = b, .c = c, .alpha = alpha, .beta = beta };
    // Out of memory for the panels: the plain loop still gives the right answer.
    if (!blocked(pn, m, n, k)) naive(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
}

/// `blocked` with a single row block packs B this many bytes at a time (256 KiB: it stays in
/// L2 beside A's block while its micro-panels are used).
const small_b_bytes: usize = 256 << 10;

/// One thread's blocked product, in the classic loop order: C's columns in blocks of NC, the
/// depth in panels (each packed from B once and used by every row block), C's rows in blocks
/// of MC (each packed from A once), then the block's MR x NR register tiles. With a single row
/// block (m <= MC) the depth panel is the outer loop instead: A packed once per panel, B a
/// small block at a time (`small_b_bytes`). `pn` packs and
/// multiplies, with the depth counted in its own units (values here, pairs of values in
/// engine/dpbf16.zig):
///   Blocking                              the register tile and block sizes (a Params)
///   E, panel                              the packed element type; depth units per panel
///   packPanelB(u, ku, jc, nc, dst)        B's depth units [u, u + ku) of columns [jc, jc + nc)
///   packBlockA(u, ku, ic, mc, dst)        A's rows [ic, ic + mc) over the same depth units
///   tile(ku, ap, bp, first, i, j, mr, nr) C's mr x nr tile at (i, j) from two micro-panels
///                                         (`first`: the first depth panel, where beta applies)
/// False when the panels' memory cannot be had (nothing of C written).
pub fn blocked(pn: anytype, m: usize, n: usize, units: usize) bool {
    const Pn = @TypeOf(pn);
    const P = Pn.Blocking;
    const E = Pn.E;
    const ku_max: usize = @min(Pn.panel, units);
    const nc_max: usize = @min(P.NC, roundUp(n, P.NR));
    const mc_max: usize = @min(P.MC, roundUp(m, P.MR));
    const bb = packBuffer(&pack_b, ku_max * nc_max * @sizeOf(E)) orelse return false;
    const ab = packBuffer(&pack_a, ku_max * mc_max * @sizeOf(E)) orelse return false;
    const bp: [*]E = @ptrCast(@alignCast(bb.ptr));
    const ap: [*]E = @ptrCast(@alignCast(ab.ptr));

    if (m <= P.MC) {
        // One row block (a prefill's few rows against a large B): A is packed once per depth
        // panel and B a few micro-panels at a time, so the packed B is read back from L1/L2
        // right after it is written instead of from a block of several MiB.
        const nc_small: usize = @min(nc_max, @max(P.NR, small_b_bytes / (ku_max * @sizeOf(E)) / P.NR * P.NR));
        var u: usize = 0;
        while (u < units) : (u += Pn.panel) {
            const ku: usize = @min(Pn.panel, units - u);
            pn.packBlockA(u, ku, 0, m, ap);
            var jc: usize = 0;
            while (jc < n) : (jc += nc_small) {
                const nc: usize = @min(nc_small, n - jc);
                pn.packPanelB(u, ku, jc, nc, bp);
                blockTiles(pn, ku, ap, bp, u == 0, 0, m, jc, nc);
            }
        }
        return true;
    }
    var jc: usize = 0;
    while (jc < n) : (jc += P.NC) {
        const nc: usize = @min(P.NC, n - jc);
        var u: usize = 0;
        while (u < units) : (u += Pn.panel) {
            const ku: usize = @min(Pn.panel, units - u);
            pn.packPanelB(u, ku, jc, nc, bp);
            var ic: usize = 0;
            while (ic < m) : (ic += P.MC) {
                const mc: usize = @min(P.MC, m - ic);
                pn.packBlockA(u, ku, ic, mc, ap);
                blockTiles(pn, ku, ap, bp, u == 0, ic, mc, jc, nc);
            }
        }
    }
    return true;
}

/// The register tiles of C's block [ic, ic + mc) x [jc, jc + nc) from a packed A block and B
/// panel, a column of tiles at a time (each B micro-panel used by every row tile in turn).
inline fn blockTiles(pn: anytype, ku: usize, ap: anytype, bp: anytype, first: bool, ic: usize, mc: usize, jc: usize, nc: usize) void {
    const P = @TypeOf(pn).Blocking;
    var jr: usize = 0;
    while (jr < nc) : (jr += P.NR) {
        const nr: usize = @min(P.NR, nc - jr);
        var ir: usize = 0;
        while (ir < mc) : (ir += P.MR) {
            const mr: usize = @min(P.MR, mc - ir);
            pn.tile(ku, ap + ir * ku, bp + jr * ku, first, ic + ir, jc + jr, mr, nr);
        }
    }
}

/// The float path's panels for `blocked`: values of the compute type T, a depth unit a value.
fn ValuePanels(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type) type {
    return struct {
        a: Mat(SA),
        b: Mat(SB),
        c: Mat(SC),
        alpha: T,
        beta: T,

        pub const Blocking = Params(T);
        pub const E = T;
        pub const panel = Params(T).KC;
        pub inline fn packPanelB(s: @This(), u: usize, ku: usize, jc: usize, nc: usize, dst: [*]T) void {
            packB(T, SB, ku, nc, s.b.sub(u, jc), dst);
        }
        pub inline fn packBlockA(s: @This(), u: usize, ku: usize, ic: usize, mc: usize, dst: [*]T) void {
            packA(T, SA, mc, ku, s.a.sub(ic, u), dst);
        }
        pub inline fn tile(s: @This(), ku: usize, ap: [*]const T, bp: [*]const T, first: bool, i: usize, j: usize, mr: usize, nr: usize) void {
            micro(T, SC, ku, ap, bp, s.alpha, if (first) s.beta else 1, s.c.sub(i, j), mr, nr);
        }
    };
}

/// A narrow C (float16/bfloat16) with K split into several panels: each block of C is
/// accumulated in the compute type in a per-thread buffer over the whole of K, then rounded
/// once (as a single K panel would be) in vectors.
fn serialWide(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    const P = Params(T);
    const cols_max: usize = @min(n, 1024);
    const rows_max: usize = @min(m, @max(P.MR, wide_bytes / (cols_max * @sizeOf(T)) / P.MR * P.MR));
    const buf = packBuffer(&wide_c, rows_max * cols_max * @sizeOf(T)) orelse return naive(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
    const wp: [*]T = @ptrCast(@alignCast(buf.ptr));
    var r0: usize = 0;
    while (r0 < m) : (r0 += rows_max) {
        const rows = @min(rows_max, m - r0);
        var j0: usize = 0;
        while (j0 < n) : (j0 += cols_max) {
            const cols = @min(cols_max, n - j0);
            const w = Mat(T){ .ptr = wp, .rs = @intCast(cols), .cs = 1 };
            serial(T, SA, SB, T, rows, cols, k, alpha, a.sub(r0, 0), b.sub(0, j0), 0, w);
            for (0..rows) |i| roundRow(T, SC, cols, wp + i * cols, beta, c.sub(r0 + i, j0));
        }
    }
}

/// One row of C from compute-type values v: v + beta * C, rounded once to a narrow C.
pub fn roundRow(comptime T: type, comptime SC: type, n: usize, v: [*]const T, beta: T, c: Mat(SC)) void {
    const VL = Params(T).VL;
    const V = @Vector(VL, T);
    var j: usize = 0;
    if (c.cs == 1) {
        const row: [*]SC = @ptrCast(c.at(0, 0));
        while (j + VL <= n) : (j += VL) {
            var x: V = v[j..][0..VL].*;
            if (beta != 0) x = x + @as(V, @splat(beta)) * loadVec(SC, T, VL, row + j);
            storeVec(SC, T, VL, row + j, x);
        }
    }
    while (j < n) : (j += 1) {
        const dst = c.at(0, j);
        store(SC, T, dst, if (beta == 0) v[j] else v[j] + beta * load(SC, T, dst));
    }
}

pub inline fn roundUp(x: usize, to: usize) usize {
    return (x + to - 1) / to * to;
}

/// A (mc x kc) into micro-panels of MR rows: panel r holds, for each p, rows r*MR .. r*MR+MR-1
/// of column p (zero past mc).
fn packA(comptime T: type, comptime SA: type, mc: usize, kc: usize, a: Mat(SA), out: [*]T) void {
    const MR = Params(T).MR;
    var r: usize = 0;
    while (r < mc) : (r += MR) {
        const rows: usize = @min(MR, mc - r);
        const dst = out + r * kc;
        if (a.cs == 1) {
            // Row-major A: rows contiguous along k, transposed in registers.
            var src: [MR][*]const SA = undefined;
            for (0..rows) |i| src[i] = @ptrCast(a.at(r + i, 0));
            packLines(T, SA, MR, rows, kc, &src, dst);
            continue;
        } else if (a.rs == 1 and rows == MR) {
            // Column-major A (a transposed operand, as in a weight gradient x.T @ dy): the MR
            // rows of a column are adjacent, one short contiguous copy per column.
            for (0..kc) |p| {
                const sp: [*]const SA = @ptrCast(a.at(r, p));
                inline for (0..MR) |i| dst[p * MR + i] = load(SA, T, &sp[i]);
            }
        } else {
            for (0..kc) |p| for (0..rows) |i| {
                dst[p * MR + i] = load(SA, T, a.at(r + i, p));
            };
        }
        if (rows < MR) for (0..kc) |p| for (rows..MR) |i| {
            dst[p * MR + i] = 0;
        };
    }
}

/// One R-wide micro-panel from R lines contiguous along k (R = MR: rows of A; R = NR: columns
/// of a column-major B): line i (i < lines <= R) starts at src[i]; positions [0, kc) go to
/// dst[p * R + i], lines past `lines` are zero. VL positions of every line are loaded as vectors
/// and transposed in registers (log2 VL shuffle stages), so the panel is written R values at a
/// time: writing each line's values R apart compiles to scatters, several times slower. Used by
/// packA (row-major A), packB (column-major B: x @ W.T) and the direct convolution
/// (engine/conv_kernel.zig) for its virtual im2col rows.
pub fn packLines(comptime T: type, comptime S: type, comptime R: usize, lines: usize, kc: usize, src: *const [R][*]const S, dst: [*]T) void {
    const VL = Params(T).VL;
    var p: usize = 0;
    while (p + VL <= kc) : (p += VL) packSpan(T, S, R, lines, p, src, dst);
    if (p == kc) return;
    if (kc >= VL) {
        // The last VL positions again (those before p rewritten with the same values): no
        // read past a line's end.
        packSpan(T, S, R, lines, kc - VL, src, dst);
        return;
    }
    for (p..kc) |c| for (0..R) |i| {
        dst[c * R + i] = if (i < lines) load(S, T, &src[i][c]) else 0;
    };
}

/// Positions [p, p + VL) of packLines' lines into the panel.
inline fn packSpan(comptime T: type, comptime S: type, comptime R: usize, lines: usize, p: usize, src: *const [R][*]const S, dst: [*]T) void {
    const P = Params(T);
    const VL = P.VL;
    inline for (0..(R + VL - 1) / VL) |g| {
        var v: [VL]P.V = undefined;
        inline for (0..VL) |l| {
            const i = g * VL + l;
            v[l] = if (i < R and i < lines) loadVec(S, T, VL, src[i] + p) else @splat(0);
        }
        transposeSquare(T, VL, &v);
        inline for (0..VL) |l| {
            const d = dst + (p + l) * R + g * VL;
            if (R < VL and l + 1 < VL) {
                // A panel narrower than a vector (float32's 14 rows): the whole vector, whose
                // last lanes (zero lines) land on the next position's first lanes, which the
                // next store rewrites; one store instead of three partial ones.
                d[0..VL].* = v[l];
            } else putLanes(T, VL, @min(VL, R - g * VL), d, v[l]);
        }
    }
}

/// v (VL x VL, one row per vector) transposed in place. Stage h swaps bit log2(h) of the row
/// index with that bit of the lane index: out[i][c] = in[i with that bit := c's][c with that
/// bit := i's]; after every bit the rows and lanes are exchanged.
pub inline fn transposeSquare(comptime T: type, comptime VL: usize, v: *[VL]@Vector(VL, T)) void {
    comptime var h: usize = 1;
    inline while (h < VL) : (h *= 2) {
        const masks = comptime blk: {
            var lo: [VL]i32 = undefined;
            var hi: [VL]i32 = undefined;
            for (0..VL) |c| {
                lo[c] = if (c & h == 0) @intCast(c) else ~@as(i32, @intCast(c & ~h));
                hi[c] = if (c & h == 0) @intCast(c | h) else ~@as(i32, @intCast(c));
            }
            break :blk .{ lo, hi };
        };
        inline for (0..VL) |i| if (i & h == 0) {
            const a = v[i];
            const b = v[i | h];
            v[i] = @shuffle(T, a, b, masks[0]);
            v[i | h] = @shuffle(T, a, b, masks[1]);
        };
    }
}

/// The first n lanes of x to p.
inline fn putLanes(comptime T: type, comptime VL: usize, comptime n: usize, p: [*]T, x: @Vector(VL, T)) void {
    if (n == VL) {
        p[0..VL].* = x;
        return;
    }
    const idx = comptime blk: {
        var m: [n]i32 = undefined;
        for (0..n) |i| m[i] = @intCast(i);
        break :blk m;
    };
    p[0..n].* = @as([n]T, @shuffle(T, x, undefined, idx));
}

/// B (kc x nc) into micro-panels of NR columns: panel q holds, for each p, columns q*NR ..
/// q*NR+NR-1 of row p (zero past nc).
pub fn packB(comptime T: type, comptime SB: type, kc: usize, nc: usize, b: Mat(SB), out: [*]T) void {
    const P = Params(T);
    const NR = P.NR;
    const full = nc / NR * NR;
    if (b.cs == 1 and full > 0) {
        // Row-major B: each row's whole vectors in turn (float16/bfloat16 widened in vector
        // registers), so B is read along its rows as it lies in memory.
        for (0..kc) |p| {
            const row: [*]const SB = @ptrCast(b.at(p, 0));
            var q: usize = 0;
            while (q < full) : (q += NR) {
                inline for (0..P.NV) |v| {
                    const x: P.V = loadVec(SB, T, P.VL, row + q + v * P.VL);
                    out[q * kc + p * NR + v * P.VL ..][0..P.VL].* = x;
                }
            }
        }
    }
    // The rest: a row-major B's last partial panel, or every panel of another layout.
    var q: usize = if (b.cs == 1) full else 0;
    while (q < nc) : (q += NR) {
        const cols: usize = @min(NR, nc - q);
        const dst = out + q * kc;
        if (b.rs == 1 and b.cs != 1) {
            // Column-major B (a transposed operand, x @ W.T): columns contiguous along K,
            // transposed in registers.
            var src: [NR][*]const SB = undefined;
            for (0..cols) |j| src[j] = @ptrCast(b.at(0, q + j));
            packLines(T, SB, NR, cols, kc, &src, dst);
        } else {
            for (0..kc) |p| {
                for (0..cols) |j| dst[p * NR + j] = load(SB, T, b.at(p, q + j));
                for (cols..NR) |j| dst[p * NR + j] = 0;
            }
        }
    }
}

/// The register tile: C[0..mr, 0..nr] = alpha * (A panel x B panel) + beta * C.
/// A partial tile (mr < MR: the last rows of a block) multiplies only its mr rows (rounded up
/// to a pair), so a 128-row product's 2-row last tile costs 2/14 of a tile, not a whole one.
pub fn micro(comptime T: type, comptime SC: type, kc: usize, ap: [*]const T, bp: [*]const T, alpha: T, beta: T, c: Mat(SC), mr: usize, nr: usize) void {
    const MR = Params(T).MR;
    @setEvalBranchQuota(20000);
    // Rows in pairs: half the variants, at most one row's products wasted.
    switch ((mr + 1) / 2) {
        inline 1...(MR + 1) / 2 => |pairs| runTile(T, SC, accumulateRows, .{ T, @min(2 * pairs, MR), 1, MR, kc, ap, bp }, alpha, beta, c, mr, nr),
        else => unreachable,
    }
}

/// Every micro-kernel's sequence (micro here, the VDPBF16PS tile of engine/dpbf16.zig, the
/// direct convolution's tile of engine/conv_kernel.zig): C's tile prefetched, the accumulators
/// zeroed, `fill(args..., &acc)` adding the products to them, then C[0..mr, 0..nr] =
/// alpha * acc + beta * C.
pub inline fn runTile(comptime T: type, comptime SC: type, comptime fill: anytype, args: anytype, alpha: T, beta: T, c: Mat(SC), mr: usize, nr: usize) void {
    prefetchTile(SC, c, mr, nr);
    var acc = zeroTile(T);
    @call(.always_inline, fill, args ++ .{&acc});
    storeTile(T, SC, &acc, alpha, beta, c, mr, nr);
}

/// Asks for C's tile in cache before the micro-kernel's depth loop, so its read (beta, the
/// later depth panels) and write do not wait on memory after it.
inline fn prefetchTile(comptime SC: type, c: Mat(SC), mr: usize, nr: usize) void {
    if (c.cs != 1) return;
    for (0..mr) |i| {
        const row: [*]const SC = @ptrCast(c.at(i, 0));
        @prefetch(row, .{ .rw = .write, .locality = 3 });
        @prefetch(row + nr - 1, .{ .rw = .write, .locality = 3 });
    }
}

/// The micro-kernel's accumulators: MR rows of NV vectors.
pub fn Tile(comptime T: type) type {
    return [Params(T).MR][Params(T).NV]Params(T).V;
}

inline fn zeroTile(comptime T: type) Tile(T) {
    const P = Params(T);
    var acc: Tile(T) = undefined;
    inline for (0..P.MR) |i| inline for (0..P.NV) |v| {
        acc[i][v] = @splat(0);
    };
    return acc;
}

/// acc += A x B over kc positions: B a packed micro-panel (NR values per position), A's value
/// for row i at position p at a[i * si + p * sp] (a packed A panel: si = 1, sp = MR; the direct
/// convolution reads rows of its input in place: si the distance between output positions).
pub inline fn accumulate(comptime T: type, comptime si: usize, comptime sp: usize, kc: usize, ap: [*]const T, bp: [*]const T, acc: *Tile(T)) void {
    accumulateRows(T, Params(T).MR, si, sp, kc, ap, bp, acc);
}

/// `accumulate` for the tile's first `rows` rows only (the others stay zero).
pub inline fn accumulateRows(comptime T: type, comptime rows: usize, comptime si: usize, comptime sp: usize, kc: usize, ap: [*]const T, bp: [*]const T, acc: *Tile(T)) void {
    const P = Params(T);
    const V = P.V;
    var a = ap;
    var b = bp;
    var p: usize = 0;
    while (p < kc) : (p += 1) {
        var bv: [P.NV]V = undefined;
        inline for (0..P.NV) |v| bv[v] = b[v * P.VL ..][0..P.VL].*;
        inline for (0..rows) |i| {
            const s: V = @splat(a[i * si]);
            inline for (0..P.NV) |v| acc[i][v] = madd(V, s, bv[v], acc[i][v]);
        }
        a += sp;
        b += P.NR;
    }
}

/// C[0..mr, 0..nr] = alpha * acc + beta * C.
inline fn storeTile(comptime T: type, comptime SC: type, acc: *const Tile(T), alpha: T, beta: T, c: Mat(SC), mr: usize, nr: usize) void {
    const P = Params(T);
    const V = P.V;
    const va: V = @splat(alpha);
    if (SC == T and c.cs == 1 and nr == P.NR) {
        inline for (0..P.MR) |i| if (i < mr) {
            const row: [*]T = @ptrCast(c.at(i, 0));
            inline for (0..P.NV) |v| {
                const dst = row[v * P.VL ..][0..P.VL];
                if (beta == 0) {
                    dst.* = va * acc[i][v];
                } else {
                    const old: V = dst.*;
                    dst.* = madd(V, va, acc[i][v], old * @as(V, @splat(beta)));
                }
            }
        };
        return;
    }
    if (SC != T and c.cs == 1 and nr == P.NR) {
        // A narrow C: rounded in vectors (the same bits as the element loop below).
        inline for (0..P.MR) |i| if (i < mr) {
            const row: [*]SC = @ptrCast(c.at(i, 0));
            inline for (0..P.NV) |v| {
                const dst = row + v * P.VL;
                var x: V = va * acc[i][v];
                if (beta != 0) x = x + @as(V, @splat(beta)) * loadVec(SC, T, P.VL, dst);
                storeVec(SC, T, P.VL, dst, x);
            }
        };
        return;
    }
    var tile: [P.MR][P.NR]T = undefined;
    inline for (0..P.MR) |i| inline for (0..P.NV) |v| {
        tile[i][v * P.VL ..][0..P.VL].* = va * acc[i][v];
    };
    for (0..mr) |i| for (0..nr) |j| {
        const dst = c.at(i, j);
        const v = tile[i][j];
        store(SC, T, dst, if (beta == 0) v else v + beta * load(SC, T, dst));
    };
}

/// Matrix-vector products (m == 1 or n == 1): memory bound, so stream the matrix once.
fn gemv(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    const VL = Params(T).VL;
    if (m == 1 and b.cs == 1 and n >= VL) {
        return streamRows(T, SA, SB, SC, 4, n, k, alpha, a, b, beta, c);
    }
    if (a.cs == 1 and b.rs == 1 and k >= VL) {
        if (n == 1) {
            // c[i] = dot(a[i, :], b[:, 0]): contiguous rows of A and the vector.
            return dots(T, SB, SA, SC, m, k, alpha, @ptrCast(b.at(0, 0)), a, beta, c);
        }
        // m == 1 with B column-major (x @ W.T, W's rows contiguous): c[j] = dot(a[0, :], b[:, j]).
        const bt = Mat(SB){ .ptr = b.ptr, .rs = b.cs, .cs = 1 };
        const ct = Mat(SC){ .ptr = c.ptr, .rs = c.cs, .cs = c.rs };
        return dots(T, SA, SB, SC, n, k, alpha, @ptrCast(a.at(0, 0)), bt, beta, ct);
    }
    naive(T, SA, SB, SC, m, n, k, alpha, a, b, beta, c);
}

/// c[j] = sum_p a[p] b[p, j] (m == 1, B row-major): R rows of B scaled and added into a block of
/// accumulators that stays in L1 (R long sequential streams, 1/R of the accumulator traffic).
/// Memory-bound: B is read exactly once.
fn streamRows(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, comptime R: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    const VL = Params(T).VL;
    const V = @Vector(VL, T);
    const blk: usize = 2048;
    var j0: usize = 0;
    while (j0 < n) : (j0 += blk) {
        const w: usize = @min(blk, n - j0);
        var acc: [blk]T align(64) = undefined;
        @memset(acc[0..w], 0);
        var p: usize = 0;
        while (p + R <= k) : (p += R) {
            var s: [R]T = undefined;
            var r: [R][*]const SB = undefined;
            // The next R rows' same columns, fetched while these are summed: each row's run is
            // a few pages long, too short for the hardware prefetcher to get ahead on its own.
            var nx: [R][*]const u8 = undefined;
            const pn = if (p + 2 * R <= k) p + R else p;
            inline for (0..R) |q| {
                s[q] = load(SA, T, a.at(0, p + q));
                r[q] = @ptrCast(b.at(p + q, j0));
                nx[q] = @ptrCast(b.at(pn + q, j0));
            }
            var j: usize = 0;
            while (j + VL <= w) : (j += VL) {
                var t: V = acc[j..][0..VL].*;
                inline for (0..R) |q| {
                    if (j * @sizeOf(SB) % 64 == 0) @prefetch(nx[q] + j * @sizeOf(SB), .{ .locality = 3 });
                    t = madd(V, @as(V, @splat(s[q])), loadVec(SB, T, VL, r[q] + j), t);
                }
                acc[j..][0..VL].* = t;
            }
            while (j < w) : (j += 1) {
                inline for (0..R) |q| acc[j] = madd(T, s[q], load(SB, T, &r[q][j]), acc[j]);
            }
        }
        while (p < k) : (p += 1) {
            const s = load(SA, T, a.at(0, p));
            const row: [*]const SB = @ptrCast(b.at(p, j0));
            var j: usize = 0;
            while (j + VL <= w) : (j += VL) acc[j..][0..VL].* = madd(V, @as(V, @splat(s)), loadVec(SB, T, VL, row + j), acc[j..][0..VL].*);
            while (j < w) : (j += 1) acc[j] = madd(T, s, load(SB, T, &row[j]), acc[j]);
        }
        for (acc[0..w]) |*v| v.* *= alpha;
        roundRow(T, SC, w, &acc, beta, c.sub(0, j0));
    }
}

/// out[i] = alpha * dot(x, rows[i, :]) + beta * out[i] for `count` contiguous rows of length k,
/// four rows at a time (x is read once per four rows); each row sums in the same order alone.
fn dots(comptime T: type, comptime SX: type, comptime SR: type, comptime SC: type, count: usize, k: usize, alpha: T, x: [*]const SX, rows: Mat(SR), beta: T, out: Mat(SC)) void {
    const R = 4;
    var i: usize = 0;
    while (i + R <= count) : (i += R) {
        var r: [R][*]const SR = undefined;
        inline for (0..R) |q| r[q] = @ptrCast(rows.at(i + q, 0));
        const s = dotRows(T, SX, SR, R, k, x, r);
        inline for (0..R) |q| putOne(T, SC, out.at(i + q, 0), alpha * s[q], beta);
    }
    while (i < count) : (i += 1) {
        const s = dotRows(T, SX, SR, 1, k, x, .{@as([*]const SR, @ptrCast(rows.at(i, 0)))});
        putOne(T, SC, out.at(i, 0), alpha * s[0], beta);
    }
}

inline fn putOne(comptime T: type, comptime SC: type, dst: *SC, v: T, beta: T) void {
    store(SC, T, dst, if (beta == 0) v else v + beta * load(SC, T, dst));
}

inline fn dotRows(comptime T: type, comptime SX: type, comptime SR: type, comptime R: usize, k: usize, x: [*]const SX, r: [R][*]const SR) [R]T {
    const VL = Params(T).VL;
    const V = @Vector(VL, T);
    var s0: [R]V = @splat(@splat(0));
    var s1: [R]V = @splat(@splat(0));
    var p: usize = 0;
    while (p + 2 * VL <= k) : (p += 2 * VL) {
        const x0 = loadVec(SX, T, VL, x + p);
        const x1 = loadVec(SX, T, VL, x + p + VL);
        inline for (0..R) |q| {
            s0[q] = madd(V, loadVec(SR, T, VL, r[q] + p), x0, s0[q]);
            s1[q] = madd(V, loadVec(SR, T, VL, r[q] + p + VL), x1, s1[q]);
        }
    }
    if (p + VL <= k) {
        const x0 = loadVec(SX, T, VL, x + p);
        inline for (0..R) |q| s0[q] = madd(V, loadVec(SR, T, VL, r[q] + p), x0, s0[q]);
        p += VL;
    }
    var out: [R]T = undefined;
    inline for (0..R) |q| {
        var t = @reduce(.Add, s0[q] + s1[q]);
        var e = p;
        while (e < k) : (e += 1) t = madd(T, load(SR, T, &r[q][e]), load(SX, T, &x[e]), t);
        out[q] = t;
    }
    return out;
}

/// The definition: also the fallback for layouts the fast paths do not cover.
pub fn naive(comptime T: type, comptime SA: type, comptime SB: type, comptime SC: type, m: usize, n: usize, k: usize, alpha: T, a: Mat(SA), b: Mat(SB), beta: T, c: Mat(SC)) void {
    for (0..m) |i| for (0..n) |j| {
        var s: T = 0;
        for (0..k) |p| s += load(SA, T, a.at(i, p)) * load(SB, T, b.at(p, j));
        const dst = c.at(i, j);
        store(SC, T, dst, if (beta == 0) alpha * s else alpha * s + beta * load(SC, T, dst));
    };
}

// ---------------------------------------------------------------------------------------------
// Tests: every path against a float64 triple loop.

fn checkCase(comptime T: type, m: usize, n: usize, k: usize, a_trans: bool, b_trans: bool, alpha: T, beta: T) !void {
    const gpa = std.testing.allocator;
    var prng = std.Random.DefaultPrng.init(m * 1000003 + n * 1009 + k);
    const r = prng.random();
    const a = try gpa.alloc(T, m * k);
    defer gpa.free(a);
    const b = try gpa.alloc(T, k * n);
    defer gpa.free(b);
    const c = try gpa.alloc(T, m * n);
    defer gpa.free(c);
    for (a) |*x| x.* = @floatCast(r.float(f64) * 2 - 1);
    for (b) |*x| x.* = @floatCast(r.float(f64) * 2 - 1);
    for (c) |*x| x.* = @floatCast(r.float(f64) * 2 - 1);
    const c0 = try gpa.dupe(T, c);
    defer gpa.free(c0);
    const am = if (a_trans) Mat(T){ .ptr = a.ptr, .rs = 1, .cs = @intCast(m) } else Mat(T){ .ptr = a.ptr, .rs = @intCast(k), .cs = 1 };
    const bm = if (b_trans) Mat(T){ .ptr = b.ptr, .rs = 1, .cs = @intCast(k) } else Mat(T){ .ptr = b.ptr, .rs = @intCast(n), .cs = 1 };
    gemm(T, T, T, T, m, n, k, alpha, am, bm, beta, .{ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 });
    for (0..m) |i| for (0..n) |j| {
        var s: f64 = 0;
        for (0..k) |p| s += @as(f64, am.at(i, p).*) * @as(f64, bm.at(p, j).*);
        const want = @as(f64, alpha) * s + (if (beta == 0) 0 else @as(f64, beta) * @as(f64, c0[i * n + j]));
        const tol: f64 = if (T == f32) 1e-5 * @as(f64, @floatFromInt(k + 1)) else 1e-12 * @as(f64, @floatFromInt(k + 1));
        if (@abs(want - @as(f64, c[i * n + j])) > tol) {
            std.debug.print("gemm {s} m={d} n={d} k={d} ta={} tb={} at ({d},{d}): {d} vs {d}\n", .{ @typeName(T), m, n, k, a_trans, b_trans, i, j, c[i * n + j], want });
            return error.TestExpectedEqual;
        }
    };
}

test "gemm matches the triple loop: shapes around the tile and block sizes, transposes, alpha/beta" {
    const sizes = [_][3]usize{
        .{ 1, 1, 1 },     .{ 1, 37, 5 },    .{ 29, 1, 70 },  .{ 3, 4, 5 },       .{ 14, 32, 8 },
        .{ 15, 33, 257 }, .{ 28, 64, 256 }, .{ 100, 70, 3 }, .{ 130, 129, 300 }, .{ 7, 300, 600 },
        .{ 340, 20, 40 }, .{ 64, 64, 0 },
    };
    const saved = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved);
    for (0..testLevels()) |li| {
        if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
        inline for (.{ f32, f64 }) |T| {
            for (sizes) |s| for ([_]bool{ false, true }) |ta| for ([_]bool{ false, true }) |tb| {
                try checkCase(T, s[0], s[1], s[2], ta, tb, 1, 0);
            };
            try checkCase(T, 130, 129, 300, false, false, 0.5, 2);
            // one row block, several depth panels and B blocks, beta on the first panel only
            try checkCase(T, 45, 200, 1100, false, false, 0.5, 2);
            try checkCase(T, 45, 200, 1100, true, true, 0.5, 2);
            try checkCase(T, 1, 600, 40, false, false, 2, -1);
            try checkCase(T, 600, 1, 40, false, false, 2, -1);
        }
    }
}

/// A portable build runs the kernel tests at every level this CPU has (engine/cpu.zig).
fn testLevels() usize {
    return if (cpu.dispatch) @as(usize, @intFromEnum(cpu.detected())) + 1 else 1;
}

test "gemm with float16 and bfloat16 storage rounds once from float32 (vector, matrix-vector and AMX paths)" {
    const gpa = std.testing.allocator;
    // Several K panels (still one rounding), and matrix-vector products with K not a multiple of 4.
    const shapes = [_][3]usize{ .{ 33, 40, 700 }, .{ 1, 600, 37 }, .{ 1, 40, 700 } };
    defer setAmxMode(.auto);
    const saved = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved);
    for (0..testLevels()) |li| inline for (.{ dtype.BF16, dtype.F16 }) |S| for ([_]amx.Mode{ .auto, .off, .emulate }) |amx_mode| for (shapes) |shape| {
        if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
        setAmxMode(amx_mode);
        const m = shape[0];
        const n = shape[1];
        const k = shape[2];
        const to = if (S == dtype.BF16) half.f32ToBf16 else half.f32ToF16;
        const from = if (S == dtype.BF16) half.bf16ToF32 else half.f16ToF32;
        const a = try gpa.alloc(S, m * k);
        defer gpa.free(a);
        const b = try gpa.alloc(S, k * n);
        defer gpa.free(b);
        const c = try gpa.alloc(S, m * n);
        defer gpa.free(c);
        for (a, 0..) |*x, i| x.* = .{ .bits = to(@as(f32, @floatFromInt(i % 11)) * 0.125) };
        for (b, 0..) |*x, i| x.* = .{ .bits = to(@as(f32, @floatFromInt(i % 13)) * 0.0625) };
        gemm(f32, S, S, S, m, n, k, 1, .{ .ptr = a.ptr, .rs = @intCast(k), .cs = 1 }, .{ .ptr = b.ptr, .rs = @intCast(n), .cs = 1 }, 0, .{ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 });
        for (0..m) |i| for (0..n) |j| {
            var sum: f64 = 0;
            for (0..k) |p| sum += @as(f64, from(a[i * k + p].bits)) * from(b[p * n + j].bits);
            // The values are small multiples of 1/8 and 1/16: the float32 sum is exact, so the
            // result must be exactly the sum rounded once.
            try std.testing.expectEqual(to(@floatCast(sum)), c[i * n + j].bits);
        };
    };
}

test "narrow storage in every layout: transposed operands, beta, matrix-vector both ways, subnormal and NaN results" {
    const gpa = std.testing.allocator;
    // m, n, k, scale: full and partial register tiles with one K panel (rounded in the tile) and
    // several (a float32 block rounded once), the matrix-vector products (x @ W, x @ W.T, A @ x),
    // and small values whose float16 results are subnormal.
    const shapes = [_][4]usize{
        .{ 28, 64, 100, 0 }, .{ 33, 40, 700, 0 }, .{ 30, 70, 300, 0 }, .{ 1, 600, 37, 0 },
        .{ 1, 40, 700, 0 },  .{ 45, 1, 300, 0 },  .{ 1, 1, 50, 0 },    .{ 20, 48, 5, 12 },
    };
    const saved = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved);
    defer setAmxMode(.auto);
    defer setDpMode(.auto);
    // bfloat16 also through the VDPBF16PS path (engine/dpbf16.zig): the instruction where the
    // CPU has it, else computed in software; and through the AMX path with its instructions
    // computed in software (engine/amx.zig), whatever the CPU.
    for (0..testLevels()) |li| inline for (.{ dtype.BF16, dtype.F16 }) |S| for (shapes) |shape| for (0..if (S == dtype.BF16) 24 else 8) |variant| {
        if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
        if (variant >= 16 and variant & 4 != 0) continue; // (AMX off: the emulation would not run)
        setAmxMode(if (variant & 4 != 0) .off else if (variant >= 16) .emulate else .auto);
        setDpMode(if (variant & 8 != 0) .hardware else .auto);
        const ta = variant & 1 != 0;
        const tb = variant & 2 != 0;
        const beta: f32 = if (variant & 4 != 0) 0.5 else 0;
        const m = shape[0];
        const n = shape[1];
        const k = shape[2];
        const scale = std.math.pow(f32, 2, -@as(f32, @floatFromInt(shape[3])));
        const to = if (S == dtype.BF16) half.f32ToBf16 else half.f32ToF16;
        const from = if (S == dtype.BF16) half.bf16ToF32 else half.f16ToF32;
        const a = try gpa.alloc(S, m * k);
        defer gpa.free(a);
        const b = try gpa.alloc(S, k * n);
        defer gpa.free(b);
        const c = try gpa.alloc(S, m * n);
        defer gpa.free(c);
        for (a, 0..) |*x, i| x.* = .{ .bits = to((@as(f32, @floatFromInt(i % 11)) - 3) * 0.125 * scale) };
        for (b, 0..) |*x, i| x.* = .{ .bits = to((@as(f32, @floatFromInt(i % 13)) - 5) * 0.0625 * scale) };
        for (c, 0..) |*x, i| x.* = .{ .bits = to(@as(f32, @floatFromInt(i % 7)) * 0.25) };
        const c0 = try gpa.dupe(S, c);
        defer gpa.free(c0);
        const am = if (ta) Mat(S){ .ptr = a.ptr, .rs = 1, .cs = @intCast(m) } else Mat(S){ .ptr = a.ptr, .rs = @intCast(k), .cs = 1 };
        const bm = if (tb) Mat(S){ .ptr = b.ptr, .rs = 1, .cs = @intCast(k) } else Mat(S){ .ptr = b.ptr, .rs = @intCast(n), .cs = 1 };
        gemm(f32, S, S, S, m, n, k, 1, am, bm, beta, .{ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 });
        for (0..m) |i| for (0..n) |j| {
            var sum: f64 = 0;
            for (0..k) |p| sum += @as(f64, from(am.at(i, p).bits)) * from(bm.at(p, j).bits);
            sum += @as(f64, beta) * from(c0[i * n + j].bits);
            // Small multiples of powers of two: the float32 sum is exact, rounded once.
            if (to(@floatCast(sum)) != c[i * n + j].bits) {
                std.debug.print("{s} m={d} n={d} k={d} variant={d} at ({d},{d}): {x} vs {x}\n", .{ @typeName(S), m, n, k, variant, i, j, c[i * n + j].bits, to(@floatCast(sum)) });
                return error.TestExpectedEqual;
            }
        };
        // A NaN in A: its row of C is MLX's NaN (float16 sign | 0x7d00, bfloat16 0x7fc0) on every path.
        const nan_bits: u16 = if (S == dtype.BF16) 0x7fc0 else 0x7e00;
        am.at(m - 1, k / 2).* = .{ .bits = nan_bits };
        gemm(f32, S, S, S, m, n, k, 1, am, bm, 0, .{ .ptr = c.ptr, .rs = @intCast(n), .cs = 1 });
        for (0..n) |j| {
            const got = c[(m - 1) * n + j].bits;
            try std.testing.expectEqual(@as(u16, if (S == dtype.BF16) 0x7fc0 else 0x7d00), if (S == dtype.BF16) got else got & 0x7fff);
        }
    };
}
