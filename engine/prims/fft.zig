//! Discrete Fourier transforms: one primitive (`fft`) over a set of axes, complex-to-complex,
//! real-to-complex (rfft) or complex-to-real (irfft), on our own FFT.
//!
//! MLX's rules (mlx-cpu 0.32.4): the transform computes in float32/complex64 whatever the input
//! dtype (float64 and integers are converted; rfft drops the imaginary part of complex input;
//! irfft accepts real input as complex); the transformed axes are first cropped or zero-padded at
//! their end to the requested sizes n (irfft: the last axis to n/2 + 1); norm "backward" scales
//! the inverse by 1/N, "ortho" both ways by 1/sqrt(N), "forward" the forward one by 1/N, N the
//! product of the n. The primitive carries the scale, so normalization costs no extra pass.
//!
//! The kernel: every 1-D transform runs on a cached plan. Lengths whose prime factors are all at
//! most `max_generic_radix` use the Stockham autosort algorithm (self-sorting, no bit
//! reversal) with radix-4, 2, 3, 5 butterflies, unrolled odd-prime butterflies for 7 .. 23 and a
//! generic odd-radix butterfly for the other primes, twiddles precomputed per stage. Lengths with a larger prime factor use Bluestein's
//! chirp-z algorithm on a 2^a 3^b 5^c length >= 2n - 1. Real transforms of even length run a
//! complex transform of half the length plus one pass of twiddles; odd lengths run the full
//! complex transform. Lengths of `four_min` (4096) and more with a divisor in [16, sqrt n] run
//! four-step (`Four`) on the batched kernel, alone or in a batch (one line at a time), so a
//! single mid-size transform also runs in SIMD lanes and over the pool. Multi-axis transforms run one axis after another. The lines of one axis run
//! `G` x `L` at a time, one line per SIMD lane (`passBlocks`: the butterflies are generic over
//! `C` and `VC`, so each line gets the bits it gets alone), split over the thread pool; a
//! transform with fewer lines than cores splits each of its stages over the pool instead.
//! The plans and passes are in engine/fft_kernel.zig (run at the CPU's level in a portable build);
//! this file builds the graph and runs one pass per transformed axis.
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const abi_util = @import("../abi_util.zig");
const copy = @import("copy.zig");
const shape_ops = @import("shape.zig");
const ew = @import("elementwise.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;
const fk = @import("../fft_kernel.zig");

const C = dtype_mod.Complex64;
const a_ = std.heap.c_allocator;

pub const Kind = fk.Kind;

pub const Prim = struct {
    /// The transformed axes as a bit set.
    axes: u32,
    /// The real axis of r2c/c2r (the last axis given); for c2c any of the axes.
    last: u8,
    kind: Kind,
    inverse: bool,
    /// Multiplies the unnormalized transform.
    scale: f64,

    pub fn name(_: Prim) []const u8 {
        return "fft";
    }
};

// ---------------------------------------------------------------------------------------------
// The primitive: one pass per axis (engine/fft_kernel.zig)

fn oom() errors.Error {
    return errors.fail(.out_of_memory, "[fft] Out of memory.", .{});
}

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    if (node.size() == 0) return;
    const nd = node.shape.ndim;
    const out_strides = node.shape.rowStrides();
    const scale: f32 = @floatCast(p.scale);
    // The axes in the order they run: r2c runs the real axis first, c2r last.
    var order: [max_ndim]usize = undefined;
    var no: usize = 0;
    if (p.kind == .r2c) {
        order[0] = p.last;
        no = 1;
    }
    for (0..nd) |i| {
        if (p.axes & (@as(u32, 1) << @intCast(i)) == 0) continue;
        if (p.kind != .c2c and i == p.last) continue;
        order[no] = i;
        no += 1;
    }
    if (p.kind == .c2r) {
        order[no] = p.last;
        no += 1;
    }
    // c2r with other axes first transforms them into a complex temporary of the input's shape.
    var tmp: ?[]C = null;
    defer if (tmp) |t| a_.free(t);
    if (p.kind == .c2r and no > 1) tmp = a_.alloc(C, x.size()) catch return oom();
    const tmp_strides = x.shape.rowStrides();

    for (order[0..no], 0..) |axis, step| {
        const last_step = step + 1 == no;
        const kind: Kind = if (p.kind == .r2c and step == 0) .r2c else if (p.kind == .c2r and last_step) .c2r else .c2c;
        const shape = if (p.kind == .c2r) x.shape else node.shape;
        var ps = fk.PassCtx{
            .kind = kind,
            .inverse = p.inverse,
            .src = undefined,
            .src_strides = undefined,
            .n_in = @intCast(x.shape.dims[axis]),
            .dst = undefined,
            .dst_strides = undefined,
            .n_out = @intCast(node.shape.dims[axis]),
            // c2r runs on the input's shape until its last step; r2c and c2c on the output's.
            .ndim = shape.ndim,
            .dims = shape.dims,
            .axis = axis,
            .scale = if (last_step) scale else 1,
        };
        if (step > 0 and kind != .c2r) ps.n_in = ps.n_out;
        // Source: the input for the first step, else the buffer the previous step wrote.
        if (step == 0) {
            ps.src = x.data();
            ps.src_strides = x.strides;
        } else if (tmp) |t| {
            ps.src = @ptrCast(t.ptr);
            ps.src_strides = tmp_strides;
        } else {
            ps.src = node.data();
            ps.src_strides = out_strides;
        }
        // Destination: the temporary for c2r's complex steps, else the output.
        if (tmp != null and !last_step) {
            ps.dst = @ptrCast(tmp.?.ptr);
            ps.dst_strides = tmp_strides;
        } else {
            ps.dst = node.data();
            ps.dst_strides = out_strides;
        }
        fk.pass(&ps) catch return oom();
    }
}

// ---------------------------------------------------------------------------------------------
// Graph-building ops

const fmtList = array.formatDims;

/// The primitive node on an input already of the right dtype and sizes. For c2r `n_last` is
/// the output length of the real axis (its input length must be n_last / 2 + 1).
pub fn fftRaw(x: *Node, axes: u32, last: u8, kind: Kind, inverse: bool, n_last: i32, scale: f64, stream: u32) errors.Error!*Node {
    var out = x.shape;
    switch (kind) {
        .c2c => {},
        .r2c => out.dims[last] = @divTrunc(x.shape.dims[last], 2) + 1,
        .c2r => out.dims[last] = n_last,
    }
    const dt: Dtype = if (kind == .c2r) .float32 else .complex64;
    return array.create(dt, out, .{ .fft = .{ .axes = axes, .last = last, .kind = kind, .inverse = inverse, .scale = scale } }, &.{x}, stream);
}

pub const Norm = enum(u32) { backward = 0, ortho = 1, forward = 2 };

/// MLX's fftn / ifftn / rfftn / irfftn: `n` null means the input's sizes on the axes (irfftn:
/// 2 (m - 1) on the last one).
pub fn fftn(a: *Node, n_opt: ?[]const i32, axes: []const i32, kind: Kind, inverse: bool, norm: Norm, stream: u32) errors.Error!*Node {
    const op = "fftn";
    const nd = a.shape.ndim;
    if (nd < 1) return errors.fail(.invalid_argument, "[{s}] Requires array with at least one dimension.", .{op});
    if (n_opt) |n| if (n.len != axes.len) return errors.fail(.invalid_argument, "[{s}] Shape and axes have different sizes.", .{op});
    if (axes.len == 0) {
        a.retain();
        return a;
    }
    if (axes.len > max_ndim) return errors.fail(.invalid_argument, "[{s}] Too many axes.", .{op});
    var valid: [max_ndim]usize = undefined;
    var set: u32 = 0;
    for (axes, 0..) |ax, i| {
        const v: i64 = if (ax < 0) @as(i64, ax) + nd else ax;
        if (v < 0 or v >= nd) return errors.fail(.invalid_argument, "[{s}] Invalid axis {d} for array with {d} dimensions.", .{ op, ax, nd });
        valid[i] = @intCast(v);
    }
    for (0..axes.len) |i| {
        const bit = @as(u32, 1) << @intCast(valid[i]);
        if (set & bit != 0) {
            var buf: [512]u8 = undefined;
            return errors.fail(.invalid_argument, "[{s}] Duplicated axis received {s}", .{ op, fmtList(axes, &buf) });
        }
        set |= bit;
    }
    const last = valid[axes.len - 1];
    var n: [max_ndim]i32 = undefined;
    for (0..axes.len) |i| {
        n[i] = if (n_opt) |nn| nn[i] else a.shape.dims[valid[i]];
    }
    if (n_opt == null and kind == .c2r) n[axes.len - 1] = (a.shape.dims[last] - 1) * 2;
    for (n[0..axes.len]) |v| if (v <= 0) {
        var buf: [512]u8 = undefined;
        return errors.fail(.invalid_argument, "[{s}] Invalid FFT output size requested {s}", .{ op, fmtList(n[0..axes.len], &buf) });
    };
    // The input sizes on the axes.
    var want = a.shape;
    for (0..axes.len) |i| want.dims[valid[i]] = n[i];
    if (kind == .c2r) want.dims[last] = @divTrunc(n[axes.len - 1], 2) + 1;
    _ = try want.sizeChecked(op);

    // Crop, convert, then pad.
    var cur = a;
    cur.retain();
    defer array.release(cur);
    for (0..nd) |d| {
        if (want.dims[d] < cur.shape.dims[d]) {
            const nx = try shape_ops.sliceAxis(cur, d, 0, want.dims[d], 1, stream);
            array.release(cur);
            cur = nx;
        }
    }
    const in_dt: Dtype = if (kind == .r2c) .float32 else .complex64;
    if (cur.dtype != in_dt) {
        const nx = try copy.astype(cur, in_dt, stream);
        array.release(cur);
        cur = nx;
    }
    var lows: [max_ndim]i32 = undefined;
    var highs: [max_ndim]i32 = undefined;
    var any_pad = false;
    for (0..nd) |d| {
        lows[d] = 0;
        highs[d] = @max(0, want.dims[d] - cur.shape.dims[d]);
        any_pad = any_pad or highs[d] > 0;
    }
    if (any_pad) {
        const zero = try @import("../grad.zig").constant(0, in_dt, stream);
        defer array.release(zero);
        const nx = try shape_ops.pad(cur, lows[0..nd], highs[0..nd], .constant, zero, stream);
        array.release(cur);
        cur = nx;
    }
    var total: f64 = 1;
    for (n[0..axes.len]) |v| total *= @floatFromInt(v);
    const scale: f64 = switch (norm) {
        .backward => if (inverse) 1.0 / total else 1.0,
        .ortho => 1.0 / @sqrt(total),
        .forward => if (inverse) 1.0 else 1.0 / total,
    };
    return fftRaw(cur, set, @intCast(last), kind, inverse, n[axes.len - 1], scale, stream);
}

// ---------------------------------------------------------------------------------------------
// Transform rules (called from grad.zig and vmap.zig)

/// A float32 array of ones except along `axis`, where it holds `vals` (shape 1 ... len ... 1).
fn axisMask(ndim: usize, axis: usize, len: usize, edge: f32, inner: f32, nyquist: bool, stream: u32) errors.Error!*Node {
    var sh = Shape{ .ndim = @intCast(ndim) };
    for (0..ndim) |i| sh.dims[i] = 1;
    sh.dims[axis] = @intCast(len);
    const m = try array.createWithBuffer(.float32, sh, stream, "fft");
    const v: [*]f32 = @ptrCast(@alignCast(m.data()));
    for (0..len) |k| v[k] = inner;
    v[0] = edge;
    if (nyquist) v[len - 1] = edge;
    return m;
}

/// The cotangent of the input given the output's cotangent g (MLX's convention: the adjoint,
/// A^H g, with the real part taken for real inputs).
pub fn vjp(node: *Node, p: Prim, g: *Node, s: u32) errors.Error!*Node {
    const x = node.inputs[0];
    switch (p.kind) {
        .c2c => return fftRaw(g, p.axes, p.last, .c2c, !p.inverse, 0, p.scale, s),
        .r2c => {
            // The output drops the upper half of the spectrum: the adjoint counts every term
            // but DC (and Nyquist for even n) once more than irfft's Hermitian extension does.
            const n = x.shape.dims[p.last];
            const len: usize = @intCast(node.shape.dims[p.last]);
            const mask = try axisMask(node.shape.ndim, p.last, len, 1, 0.5, @rem(n, 2) == 0, s);
            defer array.release(mask);
            const gm = try ew.binary(.multiply, g, mask, s);
            defer array.release(gm);
            return fftRaw(gm, p.axes, p.last, .c2r, !p.inverse, n, p.scale, s);
        },
        .c2r => {
            const n = node.shape.dims[p.last];
            const len: usize = @intCast(x.shape.dims[p.last]);
            const gg = if (g.dtype == .float32) blk: {
                g.retain();
                break :blk g;
            } else try copy.astype(g, .float32, s);
            defer array.release(gg);
            const f = try fftRaw(gg, p.axes, p.last, .r2c, !p.inverse, 0, p.scale, s);
            defer array.release(f);
            const mask = try axisMask(node.shape.ndim, p.last, len, 1, 2, @rem(n, 2) == 0, s);
            defer array.release(mask);
            return ew.binary(.multiply, f, mask, s);
        },
    }
}

/// The transform rebuilt on a batched input (batch axis first): the axes shift by one.
pub fn vmapRule(node: *Node, p: Prim, bx: *Node, s: u32) errors.Error!*Node {
    const n_last: i32 = if (p.kind == .c2r) node.shape.dims[p.last] else 0;
    return fftRaw(bx, p.axes << 1, p.last + 1, p.kind, p.inverse, n_last, p.scale, s);
}

// ---------------------------------------------------------------------------------------------
// C ABI

/// The four transforms as the C ABI names them.
pub const Op = enum(u32) { fft = 0, ifft = 1, rfft = 2, irfft = 3 };

fn fftnAbi(a: u32, n_ptr: ?[*]const i32, nn: u32, axes_ptr: ?[*]const i32, naxes: u32, op: u32, norm: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "fftn") catch |e| break :blk e;
        const o = abi_util.opArg(Op, op, "fftn") catch |e| break :blk e;
        const nm = abi_util.opArg(Norm, norm, "fftn") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "fftn") catch |e| break :blk e;
        if (naxes > 0 and axes_ptr == null) break :blk errors.fail(.invalid_argument, "[fftn] The axes pointer is null.", .{});
        if (nn > 0 and n_ptr == null) break :blk errors.fail(.invalid_argument, "[fftn] The sizes pointer is null.", .{});
        const axes: []const i32 = if (naxes == 0) &.{} else axes_ptr.?[0..naxes];
        const n: ?[]const i32 = if (n_ptr) |p| p[0..nn] else null;
        const kind: Kind = switch (o) {
            .fft, .ifft => .c2c,
            .rfft => .r2c,
            .irfft => .c2r,
        };
        break :blk fftn(x, n, axes, kind, o == .ifft or o == .irfft, nm, stream);
    });
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("fft_fftn", fftnAbi, &.{ "a", "n", "nn", "axes", "naxes", "op", "norm", "stream" }, "The n-dimensional DFT (op: enum mlxb_fft_op) over `axes`; `n` (nn sizes, one per axis; null: the input's sizes) crops or zero-pads each axis first. norm: enum mlxb_fft_norm."),
};

pub const abi_enums = .{
    .{ "fft_op", Op },
    .{ "fft_norm", Norm },
};
