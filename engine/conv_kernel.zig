//! The direct (implicit-GEMM) convolution kernel: the forward convolution of prims/conv.zig as
//! a GEMM per group, out[row, co] = sum over k of A[row, k] * W[co, k], without an im2col buffer.
//!
//! A row is one output position (batch item and spatial position); k = tap * C_in_g + channel.
//! The weight of each group ([C_out_g, taps * C_in_g], any strides) is packed once, before the
//! rows are split over the pool, into the B micro-panels of engine/gemm.zig (KC x NR panels, one
//! block per KC slice of k). The A operand, the virtual im2col matrix, is packed straight from
//! the input into gemm.zig's MR x KC micro-panels: per output row the origin of its window, per
//! tap the displacement, and a tap on padding or an input-dilation hole packs zeros. Then
//! gemm.zig's register-tiled micro-kernel multiplies the panels into the output (strided by
//! C_out). float16/bfloat16 are widened to float32 while packing and rounded once at the store
//! (through a per-worker float32 block when k spans several KC slices).
//!
//! Two layouts skip the general packing: an input whose batch axis is the contiguous one (the
//! weight gradient's) takes its rows batch-inner (blockBatch, packBatch), and with few input
//! channels a panel of adjacent output positions inside the input is multiplied from the input
//! rows in place (directTile).
//!
//! Work is split over output-row blocks of up to MC rows on the thread pool; each worker packs
//! into its own thread-local buffer. In a portable build the whole kernel runs in the kernel
//! object of the CPU's level (engine/kernels.zig exports `conv_fwd_<T>_<S>` per level), since the
//! B panels' layout (NR) depends on the level's vector width.
const std = @import("std");
const builtin = @import("builtin");
const gemm = @import("gemm.zig");
const pool = @import("pool.zig");
const cpu = @import("cpu.zig");
const dtype = @import("dtype.zig");

pub const max_sp = 3;

/// One convolution's geometry and operands across the kernel objects' C ABI. Every spatial axis
/// is padded to 3 (size 1, stride 1). Strides in elements; x and w ([C_out, K..., C_in_g]) may be
/// any strided views, out is row-contiguous [rows, C_out].
pub const Ctx = extern struct {
    x: *const anyopaque,
    w: *const anyopaque,
    out: *anyopaque,
    n: usize,
    c_out: usize,
    groups: usize,
    cig: usize,
    cog: usize,
    ktaps: usize,
    opos: usize,
    l: [max_sp]i64,
    k: [max_sp]usize,
    o: [max_sp]usize,
    /// batch, spatial axes, channel
    x_strides: [max_sp + 2]i64,
    /// output channel, spatial axes, input channel (w may be any strided view too)
    w_strides: [max_sp + 2]i64,
    stride: [max_sp]i64,
    lo: [max_sp]i64,
    kdil: [max_sp]i64,
    idil: [max_sp]i64,
    flip: bool,
};

/// The (compute, storage) type pairs the kernel objects export.
pub const kernel_combos = .{ .{ f32, f32 }, .{ f64, f64 }, .{ f32, dtype.F16 }, .{ f32, dtype.BF16 } };

pub const EntryFn = fn (*const Ctx) callconv(.c) bool;

pub fn entryName(comptime T: type, comptime S: type) []const u8 {
    return "conv_fwd_" ++ gemm.typeTag(T) ++ "_" ++ gemm.typeTag(S);
}

pub fn Entry(comptime T: type, comptime S: type) type {
    return struct {
        pub fn call(cx: *const Ctx) callconv(.c) bool {
            return forwardImpl(T, S, cx);
        }
    };
}

/// The convolution into cx.out; false when out of memory (nothing useful written: the caller
/// falls back to the plain loop).
pub fn forward(comptime T: type, comptime S: type, cx: *const Ctx) bool {
    if (comptime cpu.dispatch) return cpu.pick(EntryFn, comptime entryName(T, S))(cx);
    return forwardImpl(T, S, cx);
}

threadlocal var pack_a: []align(64) u8 = &.{};
threadlocal var wide_c: []align(64) u8 = &.{};
/// Per-thread rows assembled for packA (MR x KC storage elements).
threadlocal var rows_buf: []align(64) u8 = &.{};

fn forwardImpl(comptime T: type, comptime S: type, cx: *const Ctx) bool {
    const P = gemm.Params(T);
    const rows = cx.n * cx.opos;
    const kk = cx.ktaps * cx.cig;
    if (rows == 0 or cx.cog == 0 or kk == 0) return true;
    const npad = gemm.roundUp(cx.cog, P.NR);
    // The packed weight: group gi's KC slice starting at pc is at gi * npad * kk + pc * npad.
    const wpk = std.heap.c_allocator.alignedAlloc(T, .@"64", cx.groups * npad * kk) catch return false;
    defer std.heap.c_allocator.free(wpk);
    for (0..cx.groups) |gi| {
        var pc: usize = 0;
        while (pc < kk) : (pc += P.KC) packWeight(T, S, cx, gi, pc, @min(P.KC, kk - pc), wpk.ptr + gi * npad * kk + pc * npad);
    }
    const threads = pool.threads();
    const want = threads * 2;
    // Rows in batch-inner order (see blockBatch) when the batch axis is the contiguous one.
    const batch_inner = batchInner(cx.n, cx.x_strides[0], cx.x_strides[max_sp + 1]);
    // Blocks of at most MC rows, their count a multiple of the workers (the pool gives each
    // worker an equal share of them) and at least two per worker. Batch-inner blocks hold rows
    // of one output position, so each position is cut into the same number of blocks.
    const lines = if (batch_inner) cx.n else rows;
    const reps = if (batch_inner) cx.opos else 1;
    var nb = @max((want + reps - 1) / reps, (lines + P.MC - 1) / P.MC);
    while ((nb * reps) % threads != 0 and nb < lines) nb += 1;
    const per = @min(P.MC, @max(P.MR, gemm.roundUp((lines + nb - 1) / nb, P.MR)));
    const per_rep = (lines + per - 1) / per;
    const chunks = per_rep * reps;
    const Job = struct {
        cx: *const Ctx,
        wpk: [*]const T,
        lines: usize,
        per: usize,
        per_rep: usize,
        batch_inner: bool,
        failed: std.atomic.Value(bool) = .init(false),
        fn run(j: *const @This(), s: usize, e: usize) void {
            for (s..e) |b| {
                const rep = b / j.per_rep;
                const r0 = (b % j.per_rep) * j.per;
                const m = @min(j.per, j.lines - r0);
                const ok = if (j.batch_inner) blockBatch(T, S, j.cx, j.wpk, rep, r0, m) else blockRows(T, S, j.cx, j.wpk, r0, m);
                if (!ok) @constCast(&j.failed).store(true, .monotonic);
            }
        }
    };
    var job = Job{ .cx = cx, .wpk = wpk.ptr, .lines = lines, .per = per, .per_rep = per_rep, .batch_inner = batch_inner };
    const flops = rows * cx.cog * cx.groups * kk;
    if (flops < 64 * 64 * 64 or threads <= 1) job.run(0, chunks) else pool.parallelFor(chunks, 1, @as(*const Job, &job), Job.run);
    return !job.failed.load(.monotonic);
}

/// Columns [pc, pc + kc) of group gi's weight as GEMM B panels (gemm.packB's layout):
/// B[k, co] = w[gi * cog + co, k], k = tap * C_in_g + channel. A weight whose (tap, channel)
/// pairs are evenly strided (a row-contiguous OHWI weight) is one strided matrix; otherwise
/// (the weight gradient's output gradient as a transposed view) each tap's channels are.
fn packWeight(comptime T: type, comptime S: type, cx: *const Ctx, gi: usize, pc: usize, kc: usize, out: [*]T) void {
    const NR = gemm.Params(T).NR;
    const ws = cx.w_strides;
    const wp = offsetPtr(S, @ptrCast(@alignCast(cx.w)), @as(i64, @intCast(gi * cx.cog)) * ws[0]);
    var even = true;
    var run: i64 = @intCast(cx.cig);
    var d: usize = max_sp;
    while (d > 0) {
        d -= 1;
        even = even and (cx.k[d] == 1 or ws[d + 1] == run * ws[max_sp + 1]);
        run *= @intCast(cx.k[d]);
    }
    if (even) {
        const b = gemm.Mat(S){ .ptr = @constCast(offsetPtr(S, wp, @as(i64, @intCast(pc)) * ws[max_sp + 1])), .rs = @intCast(ws[max_sp + 1]), .cs = @intCast(ws[0]) };
        return gemm.packB(T, S, kc, cx.cog, b, out);
    }
    var k = pc;
    while (k < pc + kc) {
        const t = k / cx.cig;
        const c_lo = k - t * cx.cig;
        const c_hi = @min(cx.cig, pc + kc - t * cx.cig);
        const j = unflat(t, cx.k);
        var off: i64 = @as(i64, @intCast(c_lo)) * ws[max_sp + 1];
        for (0..max_sp) |a| off += @as(i64, @intCast(j[a])) * ws[a + 1];
        var q: usize = 0;
        while (q < cx.cog) : (q += NR) {
            const b = gemm.Mat(S){ .ptr = @constCast(offsetPtr(S, wp, off + @as(i64, @intCast(q)) * ws[0])), .rs = @intCast(ws[max_sp + 1]), .cs = @intCast(ws[0]) };
            gemm.packB(T, S, c_hi - c_lo, @min(NR, cx.cog - q), b, out + q * kc + (k - pc) * NR);
        }
        k = t * cx.cig + c_hi;
    }
}

inline fn offsetPtr(comptime S: type, p: [*]const S, off: i64) [*]const S {
    const addr: i64 = @as(i64, @intCast(@intFromPtr(p))) + off * @sizeOf(S);
    return @ptrFromInt(@as(usize, @intCast(addr)));
}

/// Whether the rows go in batch-inner order: the input's batch axis is the contiguous one and
/// its channels are not (the weight gradient's input, batch and channels swapped), with enough
/// batch items to fill panels. Rows of one output position then share their window, and a
/// panel's values for each column are MR adjacent input elements, copied without transposes.
/// prims/conv.zig asks the same before copying such an input channel-contiguous.
pub fn batchInner(n: usize, batch_stride: i64, channel_stride: i64) bool {
    return batch_stride == 1 and channel_stride != 1 and n >= 16;
}

/// Output rows [r0, r0 + m) (m <= MC) of every group, in the usual (batch-major) row order.
fn blockRows(comptime T: type, comptime S: type, cx: *const Ctx, wpk: [*]const T, r0: usize, m: usize) bool {
    const P = gemm.Params(T);
    const sb = gemm.packBuffer(&rows_buf, P.MR * P.KC * @sizeOf(S)) orelse return false;
    // Each row's batch offset and window origin (o * stride - lo) in dilated coordinates, and
    // whether its whole window lies inside the input (then every tap is at a fixed distance
    // from the origin's offset).
    var base: [P.MC]i64 = undefined;
    var org: [P.MC][max_sp]i64 = undefined;
    var woff: [P.MC]i64 = undefined;
    var inner: [P.MC]bool = undefined;
    var no_holes = true;
    for (0..max_sp) |d| no_holes = no_holes and cx.idil[d] == 1;
    for (0..m) |i| {
        const r = r0 + i;
        base[i] = @as(i64, @intCast(r / cx.opos)) * cx.x_strides[0];
        woff[i] = base[i];
        inner[i] = no_holes;
        org[i] = origin(cx, r % cx.opos);
        for (0..max_sp) |d| {
            woff[i] += org[i][d] * cx.x_strides[d + 1];
            const span = @as(i64, @intCast(cx.k[d] - 1)) * cx.kdil[d];
            inner[i] = inner[i] and org[i][d] >= 0 and org[i][d] + span < cx.l[d];
        }
    }
    var direct = [_]bool{false} ** (P.MC / P.MR + 1);
    const dsi = directStride(T, S, cx);
    if (dsi) |si| {
        var ir: usize = 0;
        while (ir + P.MR <= m) : (ir += P.MR) {
            var ok = true;
            for (0..P.MR) |i| ok = ok and inner[ir + i] and woff[ir + i] == woff[ir] + @as(i64, @intCast(i * si));
            direct[ir / P.MR] = ok;
        }
    }
    const pk = Packer{ .rows = .{
        .win = .{ .base = &base, .org = &org, .woff = &woff, .inner = &inner, .direct = &direct },
        .scratch = @ptrCast(@alignCast(sb.ptr)),
        .dsi = dsi,
    } };
    return multiply(T, S, cx, wpk, m, .{ .first = r0, .step = 1 }, pk);
}

/// Batch items [b0, b0 + m) (m <= MC) at output position `pos`, of every group (batch-inner
/// order: see batchInner).
fn blockBatch(comptime T: type, comptime S: type, cx: *const Ctx, wpk: [*]const T, pos: usize, b0: usize, m: usize) bool {
    const pk = Packer{ .batch = .{ .org = origin(cx, pos), .b0 = b0 } };
    return multiply(T, S, cx, wpk, m, .{ .first = b0 * cx.opos + pos, .step = cx.opos }, pk);
}

/// Flat index i over dims (row-major) as one index per axis.
inline fn unflat(i: usize, dims: [max_sp]usize) [max_sp]usize {
    var r: [max_sp]usize = undefined;
    var rem = i;
    var d: usize = max_sp;
    while (d > 0) {
        d -= 1;
        r[d] = rem % dims[d];
        rem /= dims[d];
    }
    return r;
}

/// The window origin (o * stride - lo, dilated coordinates) of output position `pos`.
fn origin(cx: *const Ctx, pos: usize) [max_sp]i64 {
    const o = unflat(pos, cx.o);
    var org: [max_sp]i64 = undefined;
    for (0..max_sp) |d| org[d] = @as(i64, @intCast(o[d])) * cx.stride[d] - cx.lo[d];
    return org;
}

/// Where a block's output rows are: its row i is output row first + i * step.
const RowsOut = struct { first: usize, step: usize };

/// How a block's A panels are packed: rows with windows of their own (packA), or batch items
/// sharing one window (packBatch).
const Packer = union(enum) {
    /// dsi: directStride's row distance when panels marked in win.direct are direct tiles
    rows: struct { win: Windows, scratch: *anyopaque, dsi: ?usize },
    batch: struct { org: [max_sp]i64, b0: usize },
};

/// A block of m rows of every group: the virtual im2col rows packed KC columns at a time and
/// multiplied with the packed weight into the output (or a float32 block for a narrow output
/// with several KC slices, rounded once).
fn multiply(comptime T: type, comptime S: type, cx: *const Ctx, wpk: [*]const T, m: usize, ro: RowsOut, pk: Packer) bool {
    const P = gemm.Params(T);
    const kk = cx.ktaps * cx.cig;
    const npad = gemm.roundUp(cx.cog, P.NR);
    const kc_max = @min(P.KC, kk);
    const ab = gemm.packBuffer(&pack_a, gemm.roundUp(m, P.MR) * kc_max * @sizeOf(T)) orelse return false;
    const ap: [*]T = @ptrCast(@alignCast(ab.ptr));
    const wide = S != T and kk > P.KC;
    var wcp: [*]T = undefined;
    if (wide) {
        const wb = gemm.packBuffer(&wide_c, m * cx.cog * @sizeOf(T)) orelse return false;
        wcp = @ptrCast(@alignCast(wb.ptr));
    }
    const out: [*]S = @ptrCast(@alignCast(cx.out));
    const ors = ro.step * cx.c_out;
    // Direct tiles (blockRows marks them): each run's offset from a window's origin.
    const dsi: ?usize = if (pk == .rows) pk.rows.dsi else null;
    var offs: [max_runs]i64 = undefined;
    var nruns: usize = 0;
    var run_len: usize = 0;
    if (dsi != null) {
        const ra = runAxis(cx);
        nruns = cx.ktaps / cx.k[ra];
        run_len = cx.k[ra] * cx.cig;
        for (0..nruns) |r| {
            const disp = tapDisp(cx, r * cx.k[ra]);
            offs[r] = 0;
            for (0..max_sp) |d| offs[r] += disp[d] * cx.x_strides[d + 1];
        }
    }
    for (0..cx.groups) |gi| {
        const og = out + ro.first * cx.c_out + gi * cx.cog;
        var pc: usize = 0;
        while (pc < kk) : (pc += P.KC) {
            const kc = @min(P.KC, kk - pc);
            switch (pk) {
                .rows => |r| packA(T, S, cx, r.win, m, gi, pc, kc, @ptrCast(@alignCast(r.scratch)), ap),
                .batch => |b| packBatch(T, S, cx, b.org, b.b0, m, gi, pc, kc, ap),
            }
            const bb = wpk + gi * npad * kk + pc * npad;
            const beta: T = if (pc == 0) 0 else 1;
            var jr: usize = 0;
            while (jr < cx.cog) : (jr += P.NR) {
                const nr = @min(P.NR, cx.cog - jr);
                var ir: usize = 0;
                while (ir < m) : (ir += P.MR) {
                    const mr = @min(P.MR, m - ir);
                    if (S == T and dsi != null and pk.rows.win.direct[ir / P.MR]) {
                        const xp: [*]const T = @ptrCast(@alignCast(cx.x));
                        const c = gemm.Mat(T){ .ptr = og + ir * ors + jr, .rs = @intCast(ors), .cs = 1 };
                        const w0 = pk.rows.win.woff[ir];
                        switch (dsi.?) {
                            inline 1, 2, 3, 4, 6, 8 => |si| directTile(T, si, xp, w0, offs[0..nruns], run_len, bb + jr * kc, c, nr),
                            else => unreachable,
                        }
                        continue;
                    }
                    if (wide) {
                        const c = gemm.Mat(T){ .ptr = wcp + ir * cx.cog + jr, .rs = @intCast(cx.cog), .cs = 1 };
                        gemm.micro(T, T, kc, ap + ir * kc, bb + jr * kc, 1, beta, c, mr, nr);
                    } else {
                        const c = gemm.Mat(S){ .ptr = og + ir * ors + jr, .rs = @intCast(ors), .cs = 1 };
                        gemm.micro(T, S, kc, ap + ir * kc, bb + jr * kc, 1, beta, c, mr, nr);
                    }
                }
            }
        }
        if (wide) {
            for (0..m) |i| {
                const c = gemm.Mat(S){ .ptr = og + i * ors, .rs = @intCast(ors), .cs = 1 };
                gemm.roundRow(T, S, cx.cog, wcp + i * cx.cog, 0, c);
            }
        }
    }
    return true;
}

/// Columns [pc, pc + kc) of group gi's virtual im2col matrix for batch items [b0, b0 + m) at
/// one output position (window origin `org`) into MR-row micro-panels. The batch axis is
/// contiguous in the input, so each column of a panel is MR adjacent elements; a tap on padding
/// or an input-dilation hole is zeros for every row alike.
fn packBatch(comptime T: type, comptime S: type, cx: *const Ctx, org: [max_sp]i64, b0: usize, m: usize, gi: usize, pc: usize, kc: usize, out: [*]T) void {
    const MR = gemm.Params(T).MR;
    const cig = cx.cig;
    const cs = cx.x_strides[max_sp + 1];
    const xp: [*]const S = @ptrCast(@alignCast(cx.x));
    var k = pc;
    while (k < pc + kc) {
        const t = k / cig;
        const c_lo = k - t * cig;
        const c_hi = @min(cig, pc + kc - t * cig);
        const off = tapOffset(cx, org, tapDisp(cx, t));
        var ir: usize = 0;
        while (ir < m) : (ir += MR) {
            const rows = @min(MR, m - ir);
            var dst = out + ir * kc + (k - pc) * MR;
            if (off == null) {
                @memset(dst[0 .. (c_hi - c_lo) * MR], 0);
                continue;
            }
            const src0 = offsetPtr(S, xp, off.? + @as(i64, @intCast(b0 + ir)) + @as(i64, @intCast(gi * cig + c_lo)) * cs);
            for (0..c_hi - c_lo) |c| {
                const src = offsetPtr(S, src0, @as(i64, @intCast(c)) * cs);
                if (rows == MR) {
                    dst[0..MR].* = gemm.loadVec(S, T, MR, src);
                } else {
                    for (0..rows) |i| dst[i] = gemm.load(S, T, &src[i]);
                    @memset(dst[rows..MR], 0);
                }
                dst += MR;
            }
        }
        k = t * cig + c_hi;
    }
}

/// A block's output rows: batch offset, window origin (dilated coordinates), the origin's
/// element offset and whether the window lies inside the input with no input-dilation holes.
const Windows = struct {
    base: []const i64,
    org: []const [max_sp]i64,
    woff: []const i64,
    inner: []const bool,
    /// per MR-row panel: multiplied straight from the input (directTile), not packed
    direct: []const bool,
};

/// The innermost kernel axis with more than one tap (0 when none has).
fn runAxis(cx: *const Ctx) usize {
    var ra: usize = 0;
    for (0..max_sp) |d| if (cx.k[d] > 1) {
        ra = d;
    };
    return ra;
}

/// Whether the taps along kernel axis ra read one contiguous stretch of the input per row
/// (channels contiguous and adjacent positions adjacent: one group, no dilation or flip along it).
fn merges(cx: *const Ctx, ra: usize) bool {
    return cx.x_strides[max_sp + 1] == 1 and !cx.flip and cx.k[ra] > 1 and cx.kdil[ra] == 1 and cx.idil[ra] == 1 and
        cx.x_strides[ra + 1] == @as(i64, @intCast(cx.cig));
}

/// Direct tiles computed (tests only: they check the shapes meant to take the path do).
pub var direct_tiles = std.atomic.Value(usize).init(0);

/// Runs of taps a direct tile reads at most (taps over the kernel axes other than ra).
const max_runs = 64;

/// Few input channels (the stem: 3 channels, 7x7 stride 2, runs of 21 values) make packing A
/// cost as much as the products. A panel of MR output positions adjacent along the innermost
/// axis, whole windows inside the input, then reads its rows in place: row i's run starts
/// `si` elements after row i-1's (stride times channels), a compile-time distance so the
/// micro-kernel's broadcasts address the input at fixed offsets. One KC slice, one group, S == T.
const direct_strides = [_]usize{ 1, 2, 3, 4, 6, 8 };

/// The element distance between adjacent output positions' windows if a block's panels may
/// be direct, else null.
fn directStride(comptime T: type, comptime S: type, cx: *const Ctx) ?usize {
    if (S != T or cx.groups != 1 or cx.ktaps * cx.cig > gemm.Params(T).KC) return null;
    const ra = runAxis(cx);
    if (!merges(cx, ra) or cx.ktaps / cx.k[ra] > max_runs) return null;
    for (ra + 1..max_sp) |d| if (cx.o[d] != 1) return null;
    const si = cx.stride[ra] * cx.x_strides[ra + 1];
    inline for (direct_strides) |d| if (si == d) return d;
    return null;
}

/// One MR x NR tile of the output, C = A x B, A read from the input: run r of row i starts at
/// x + w0 + offs[r] + i * si and holds len values (all of the depth: one KC slice).
fn directTile(comptime T: type, comptime si: usize, x: [*]const T, w0: i64, offs: []const i64, len: usize, bp: [*]const T, c: gemm.Mat(T), nr: usize) void {
    if (builtin.is_test) _ = direct_tiles.fetchAdd(1, .monotonic);
    gemm.runTile(T, T, directRuns, .{ T, si, x, w0, offs, len, bp }, 1, 0, c, gemm.Params(T).MR, nr);
}

/// directTile's products: the runs one after the other, each against its len positions of B.
inline fn directRuns(comptime T: type, comptime si: usize, x: [*]const T, w0: i64, offs: []const i64, len: usize, bp: [*]const T, acc: *gemm.Tile(T)) void {
    var b = bp;
    for (offs) |off| {
        gemm.accumulate(T, si, 1, len, offsetPtr(T, x, w0 + off), b, acc);
        b += len * gemm.Params(T).NR;
    }
}

/// Columns [pc, pc + kc) of group gi's virtual im2col matrix for rows [0, m) of the block into
/// MR-row micro-panels (gemm.zig's A layout: panel r holds, for each column p, rows r*MR ..
/// r*MR+MR-1; zero past m).
///
/// The columns go in runs: taps consecutive along the innermost kernel axis read consecutive
/// input positions, and when those are adjacent in memory (channels contiguous, one group, no
/// dilation or flip along it) a whole run of them is one contiguous stretch of the input per row
/// (the stem's 7 taps x 3 channels), otherwise a run is one tap's channels. Per run every row of
/// a panel gets a pointer to its stretch: into the input when the stretch lies inside it, else
/// to a row of `scratch` assembled tap by tap (padding and input-dilation holes as zeros,
/// strided channels gathered); gemm.packLines then transposes the panel's rows in registers.
fn packA(comptime T: type, comptime S: type, cx: *const Ctx, win: Windows, m: usize, gi: usize, pc: usize, kc: usize, scratch: [*]S, out: [*]T) void {
    const P = gemm.Params(T);
    const MR = P.MR;
    const cig = cx.cig;
    const cs = cx.x_strides[max_sp + 1];
    const xp: [*]const S = @ptrCast(@alignCast(cx.x));
    const t0 = pc / cig;
    const t1 = (pc + kc - 1) / cig;
    const goff: i64 = @as(i64, @intCast(gi * cig)) * cs;
    const ra = runAxis(cx);
    const merge = merges(cx, ra);
    var ir: usize = 0;
    while (ir < m) : (ir += MR) {
        if (win.direct[ir / MR]) continue;
        const rows = @min(MR, m - ir);
        const dst = out + ir * kc;
        var t = t0;
        while (t <= t1) {
            const disp = tapDisp(cx, t);
            const jr: usize = @intCast(@divExact(disp[ra], cx.kdil[ra]));
            const te = if (merge) @min(t1, t + (cx.k[ra] - 1 - jr)) else t;
            var disp_e = disp;
            disp_e[ra] += @intCast(te - t);
            const c_lo = if (t == t0) pc - t * cig else 0;
            const c_hi = @min(cig, pc + kc - te * cig);
            const total = (te - t) * cig + c_hi - c_lo;
            const col = t * cig + c_lo - pc;
            var tap_off: i64 = goff + @as(i64, @intCast(c_lo));
            for (0..max_sp) |d| tap_off += disp[d] * cx.x_strides[d + 1];
            var src: [MR][*]const S = undefined;
            for (0..rows) |i| {
                if (cs == 1 and win.inner[ir + i]) {
                    src[i] = offsetPtr(S, xp, win.woff[ir + i] + tap_off);
                    continue;
                }
                const org = win.org[ir + i];
                const first = tapOffset(cx, org, disp);
                const whole = first != null and (te == t or tapOffset(cx, org, disp_e) != null);
                if (whole and cs == 1) {
                    src[i] = offsetPtr(S, xp, win.base[ir + i] + first.? + goff + @as(i64, @intCast(c_lo)));
                    continue;
                }
                const row = scratch + i * P.KC;
                if (merge) {
                    // A merged run partly or wholly on padding: its taps inside the input are
                    // one contiguous stretch (taps ja..jb of the run along axis ra); zeros around.
                    const p0 = org[ra] + disp[ra];
                    const ja: usize = @intCast(@max(0, -p0));
                    const jb: i64 = @min(@as(i64, @intCast(te - t)), cx.l[ra] - 1 - p0);
                    var dj = disp;
                    dj[ra] += @intCast(ja);
                    const off = if (jb >= @as(i64, @intCast(ja))) tapOffset(cx, org, dj) else null;
                    if (off == null) {
                        @memset(row[0..total], zero(S));
                    } else {
                        const lo_col = (ja * cig) -| c_lo;
                        const hi_col = @min(total, @as(usize, @intCast(jb + 1)) * cig - c_lo);
                        const s0 = offsetPtr(S, xp, win.base[ir + i] + off.? + goff + @as(i64, @intCast(lo_col + c_lo)) - @as(i64, @intCast(ja * cig)));
                        @memset(row[0..lo_col], zero(S));
                        @memcpy(row[lo_col..hi_col], s0[0 .. hi_col - lo_col]);
                        @memset(row[hi_col..total], zero(S));
                    }
                    src[i] = row;
                    continue;
                }
                // Tap by tap into this row's scratch (padding or holes, or strided channels).
                for (t..te + 1) |tt| {
                    const lo = if (tt == t0) pc - tt * cig else 0;
                    const hi = @min(cig, pc + kc - tt * cig);
                    const d = row + (tt * cig + lo) - (t * cig + c_lo);
                    var dd = disp;
                    dd[ra] += @intCast(tt - t);
                    const off = tapOffset(cx, org, dd) orelse {
                        @memset(d[0 .. hi - lo], zero(S));
                        continue;
                    };
                    const s = offsetPtr(S, xp, win.base[ir + i] + off + goff + @as(i64, @intCast(lo)) * cs);
                    for (0..hi - lo) |c| d[c] = offsetPtr(S, s, @as(i64, @intCast(c)) * cs)[0];
                }
                src[i] = row;
            }
            gemm.packLines(T, S, MR, rows, total, &src, dst + col * MR);
            t = te + 1;
        }
    }
}

inline fn zero(comptime S: type) S {
    return switch (S) {
        dtype.F16, dtype.BF16 => .{ .bits = 0 },
        else => 0,
    };
}

/// Tap t's displacement from a window origin along each axis (dilated coordinates).
inline fn tapDisp(cx: *const Ctx, t: usize) [max_sp]i64 {
    const j = unflat(t, cx.k);
    var disp: [max_sp]i64 = undefined;
    for (0..max_sp) |d| {
        const jj = if (cx.flip) cx.k[d] - 1 - j[d] else j[d];
        disp[d] = @as(i64, @intCast(jj)) * cx.kdil[d];
    }
    return disp;
}

/// Element offset in x (within the batch item) of the tap displaced by `disp` from a window
/// origin, or null on padding or an input-dilation hole.
inline fn tapOffset(cx: *const Ctx, org: [max_sp]i64, disp: [max_sp]i64) ?i64 {
    var off: i64 = 0;
    inline for (0..max_sp) |d| {
        const pos = org[d] + disp[d];
        if (pos < 0) return null;
        const id = cx.idil[d];
        const xi = if (id == 1) pos else blk: {
            if (@mod(pos, id) != 0) return null;
            break :blk @divFloor(pos, id);
        };
        if (xi >= cx.l[d]) return null;
        off += xi * cx.x_strides[d + 1];
    }
    return off;
}
