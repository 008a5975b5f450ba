//! Indexing: gather and scatter over index arrays (take, advanced indexing, dynamic slices,
//! slice updates, `.at` updates), gather and scatter along one axis (take_along_axis,
//! put_along_axis), masked scatter, and the diagonal view.
//!
//! Out-of-range indices: MLX leaves them undefined (its CPU kernels read and write outside
//! the array). Here a negative index counts from the end once, and any index still outside
//! its axis fails the evaluation with a message naming the op, the index, the axis and its
//! size. Every index is checked before anything is written, so a failed scatter never leaves
//! a half-updated (possibly donated) buffer behind.
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const abi_util = @import("../abi_util.zig");
const half = @import("../half.zig");
const copy = @import("copy.zig");
const shape_ops = @import("shape.zig");
const Dtype = @import("../dtype.zig").Dtype;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

/// How a scatter combines an update with the value in place; values are part of the C ABI.
pub const ScatterMode = enum(u32) {
    none = 0,
    add = 1,
    prod = 2,
    max = 3,
    min = 4,
};

/// The op that built a gather or scatter, as its messages name it.
pub const Origin = enum(u8) { gather, take, index, slice, scatter, slice_update, put_along_axis, take_along_axis };

/// Where the slab of a gather or scatter sits in `a`. Index input i indexes dimension
/// `axes[i]`: the slab starts there at the index. Every other dimension d starts at
/// `start[d]` and advances by `step[d]`. The slab's sizes are the trailing a.ndim dimensions
/// of the gather's output (or the scatter's updates); the leading ones are the index shape.
pub const Region = struct {
    axes: [max_ndim]u8 = undefined,
    nidx: u8 = 0,
    start: [max_ndim]i32 = [_]i32{0} ** max_ndim,
    step: [max_ndim]i32 = [_]i32{1} ** max_ndim,
    mode: ScatterMode = .none,
    origin: Origin = .gather,

    fn isIndexed(r: *const Region, d: usize) bool {
        for (r.axes[0..r.nidx]) |ax| if (ax == d) return true;
        return false;
    }
};

pub const AxisOp = struct { axis: u8, mode: ScatterMode = .none };
pub const Diagonal = struct { axis1: u8, axis2: u8, offset: i32 };

/// This family's primitives. A Region is owned by its node (freed in `deinit`).
pub const Prim = union(enum) {
    /// inputs: a, then the index arrays (all of one shape B). Output: B ++ slab.
    gather: *Region,
    /// inputs: a, updates (B ++ slab, a's dtype), then the index arrays. Output: a updated.
    scatter: *Region,
    /// take_along_axis. inputs: a, indices (a's shape except along the axis). Output: indices' shape.
    gather_axis: AxisOp,
    /// put_along_axis. inputs: a, indices, updates (indices' shape, a's dtype).
    scatter_axis: AxisOp,
    /// inputs: a, mask (bool, a's shape), source (contiguous order; one element broadcasts).
    masked_scatter,
    /// A view of the diagonal of two axes (a new last axis).
    diagonal: Diagonal,

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .gather, .scatter => |r| @tagName(r.origin),
            .gather_axis => "take_along_axis",
            .scatter_axis => "put_along_axis",
            else => @tagName(p),
        };
    }

    pub fn deinit(p: Prim) void {
        switch (p) {
            .gather, .scatter => |r| std.heap.c_allocator.destroy(r),
            else => {},
        }
    }
};

// ---------------------------------------------------------------------------------------------
// Validation helpers

fn normAxis(axis: i32, ndim: usize, op: []const u8) errors.Error!usize {
    const n: i64 = @intCast(ndim);
    const a: i64 = if (axis < 0) @as(i64, axis) + n else axis;
    if (a < 0 or a >= n) return errors.fail(.invalid_argument, "[{s}] Received invalid axis {d} for array with {d} dimensions.", .{ op, axis, ndim });
    return @intCast(a);
}

fn checkIndices(idx: *const Node, op: []const u8) errors.Error!void {
    if (idx.dtype == .bool_) return errors.fail(.invalid_argument, "[{s}] Boolean indices not supported.", .{op});
    if (!idx.dtype.isInteger()) return errors.fail(.invalid_argument, "[{s}] Got indices with invalid dtype. Indices must be integral.", .{op});
}

fn newRegion() errors.Error!*Region {
    const r = std.heap.c_allocator.create(Region) catch return errors.fail(.out_of_memory, "[gather] Out of memory.", .{});
    r.* = .{};
    return r;
}

/// The broadcast shape of the index arrays (MLX's broadcast_shapes message).
fn indexShape(idx: []const *Node) errors.Error!Shape {
    var b = Shape{};
    for (idx) |i| b = try copy.broadcastShapes(&b, &i.shape, "broadcast_shapes");
    return b;
}

/// Release every node of a list (the temporaries a builder made).
fn releaseAll(list: []const *Node) void {
    for (list) |n| array.release(n);
}

fn concatShape(a: []const i32, b: []const i32, op: []const u8) errors.Error!Shape {
    var dims: [2 * max_ndim]i32 = undefined;
    @memcpy(dims[0..a.len], a);
    @memcpy(dims[a.len..][0..b.len], b);
    return Shape.fromSlice(dims[0 .. a.len + b.len], op);
}

/// Checks the region's fixed (non-indexed) dimensions against `a` for slab sizes `slab`.
pub fn checkRegion(a: *const Node, r: *const Region, slab: []const i32, op: []const u8) errors.Error!void {
    for (0..a.shape.ndim) |d| {
        const n = a.shape.dims[d];
        const s = slab[d];
        if (s < 0 or s > n)
            return errors.fail(.invalid_argument, "[{s}] Slice size {d} is out of range for axis {d} of size {d}.", .{ op, s, d, n });
        if (r.isIndexed(d) or s == 0) continue;
        const last = @as(i64, r.start[d]) + @as(i64, r.step[d]) * (s - 1);
        if (r.start[d] < 0 or r.start[d] >= n or last < 0 or last >= n)
            return errors.fail(.invalid_argument, "[{s}] The slice along axis {d} (start {d}, step {d}, size {d}) is outside the axis of size {d}.", .{ op, d, r.start[d], r.step[d], s, n });
    }
}

// ---------------------------------------------------------------------------------------------
// Graph-building ops

/// MLX's gather: for each position of the (broadcast) index arrays, the slab of `a` of sizes
/// `slice_sizes` starting at the indices along `axes` (and at `region` starts/steps along the
/// others, or 0/1 when null). Output shape: index shape ++ slice_sizes.
pub fn gather(a: *Node, idx: []const *Node, axes: []const i32, slice_sizes: []const i32, region: ?[]const i32, origin: Origin, stream: u32) errors.Error!*Node {
    const op = @tagName(origin);
    if (idx.len != axes.len) return errors.fail(.invalid_argument, "[{s}] Must have as many indices as axes (got {d} and {d}).", .{ op, idx.len, axes.len });
    if (idx.len > a.shape.ndim) return errors.fail(.invalid_argument, "[{s}] Too many indices for array with {d} dimensions.", .{ op, a.shape.ndim });
    if (slice_sizes.len != a.shape.ndim) return errors.fail(.invalid_argument, "[{s}] Got {d} slice sizes for an array with {d} dimensions.", .{ op, slice_sizes.len, a.shape.ndim });
    for (idx) |i| try checkIndices(i, op);
    const r = try newRegion();
    var owned = true;
    defer if (owned) std.heap.c_allocator.destroy(r);
    r.origin = origin;
    try fillRegion(r, a, axes, region, op);
    try checkRegion(a, r, slice_sizes, op);
    const b = try indexShape(idx);
    const out_shape = try concatShape(b.slice(), slice_sizes, op);
    var inputs: [max_ndim + 1]*Node = undefined;
    inputs[0] = a;
    var made: usize = 0;
    defer releaseAll(inputs[1 .. 1 + made]);
    for (idx) |i| {
        inputs[1 + made] = try copy.broadcastTo(i, b, stream);
        made += 1;
    }
    const node = try array.create(a.dtype, out_shape, .{ .indexing = .{ .gather = r } }, inputs[0 .. 1 + idx.len], stream);
    owned = false;
    return node;
}

fn fillRegion(r: *Region, a: *const Node, axes: []const i32, region: ?[]const i32, op: []const u8) errors.Error!void {
    r.nidx = @intCast(axes.len);
    for (axes, 0..) |ax, i| {
        const d = try normAxis(ax, a.shape.ndim, op);
        for (r.axes[0..i]) |prev| if (prev == d)
            return errors.fail(.invalid_argument, "[{s}] Repeated axis {d} in the indexed axes.", .{ op, ax });
        r.axes[i] = @intCast(d);
    }
    if (region) |rg| {
        if (rg.len != 2 * a.shape.ndim) return errors.fail(.invalid_argument, "[{s}] The region needs a start and a step for each of the {d} dimensions.", .{ op, a.shape.ndim });
        for (0..a.shape.ndim) |d| {
            if (r.isIndexed(d)) continue;
            r.start[d] = rg[2 * d];
            r.step[d] = rg[2 * d + 1];
            if (r.step[d] == 0) return errors.fail(.invalid_argument, "[{s}] Slice step cannot be zero.", .{op});
        }
    }
}

/// MLX's scatter: `a` with the slabs at the index positions replaced by (or combined with,
/// per `mode`) the updates. `updates` has shape index shape ++ slab sizes (one per dimension
/// of `a`), is broadcast to it and cast to a's dtype.
pub fn scatter(a: *Node, updates: *Node, idx: []const *Node, axes: []const i32, region: ?[]const i32, mode: ScatterMode, origin: Origin, stream: u32) errors.Error!*Node {
    const op = @tagName(origin);
    if (idx.len != axes.len) return errors.fail(.invalid_argument, "[{s}] Must have as many indices as axes (got {d} and {d}).", .{ op, idx.len, axes.len });
    if (idx.len > a.shape.ndim) return errors.fail(.invalid_argument, "[{s}] Too many indices for array with {d} dimensions.", .{ op, a.shape.ndim });
    for (idx) |i| try checkIndices(i, op);
    const b = try indexShape(idx);
    if (updates.shape.ndim != b.ndim + a.shape.ndim) {
        var ub: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[{s}] Updates of shape {s} need {d} dimensions: the index shape and one slice size per dimension of the array.", .{ op, updates.shape.format(&ub), b.ndim + a.shape.ndim });
    }
    const slab = updates.shape.slice()[b.ndim..];
    const r = try newRegion();
    var owned = true;
    defer if (owned) std.heap.c_allocator.destroy(r);
    r.origin = origin;
    r.mode = mode;
    try fillRegion(r, a, axes, region, op);
    try checkRegion(a, r, slab, op);
    var upd_shape = updates.shape;
    @memcpy(upd_shape.dims[0..b.ndim], b.slice());
    const ub = try copy.broadcastTo(updates, upd_shape, stream);
    defer array.release(ub);
    const uc = try copy.astype(ub, a.dtype, stream);
    var inputs: [max_ndim + 2]*Node = undefined;
    inputs[0] = a;
    inputs[1] = uc;
    var made: usize = 1;
    defer releaseAll(inputs[1 .. 1 + made]);
    for (idx) |i| {
        inputs[1 + made] = try copy.broadcastTo(i, b, stream);
        made += 1;
    }
    const node = try array.create(a.dtype, a.shape, .{ .indexing = .{ .scatter = r } }, inputs[0 .. 2 + idx.len], stream);
    owned = false;
    return node;
}

/// take: elements of `a` at `indices` along `axis` (the index dimensions replace the axis).
pub fn take(a: *Node, indices: *Node, axis: i32, stream: u32) errors.Error!*Node {
    try checkIndices(indices, "gather");
    const ax = try normAxis(axis, a.shape.ndim, "take");
    if (a.shape.dims[ax] == 0 and indices.size() > 0)
        return errors.fail(.invalid_argument, "[take] Cannot take from an empty axis.", .{});
    var sizes = a.shape;
    sizes.dims[ax] = 1;
    const ax32: i32 = @intCast(ax);
    const g = try gather(a, &.{indices}, &.{ax32}, sizes.slice(), null, .take, stream);
    defer array.release(g);
    // g: idx ++ a.shape with a 1 at ax. Drop it, then move the index dims to ax.
    const nb = indices.shape.ndim;
    var dims: [2 * max_ndim]i32 = undefined;
    var n: usize = 0;
    for (g.shape.slice(), 0..) |d, i| {
        if (i == nb + ax) continue;
        dims[n] = d;
        n += 1;
    }
    const flat = try shape_ops.reshape(g, dims[0..n], stream);
    defer array.release(flat);
    var perm: [max_ndim]i32 = undefined;
    var k: usize = 0;
    for (0..ax) |i| {
        perm[k] = @intCast(nb + i);
        k += 1;
    }
    for (0..nb) |i| {
        perm[k] = @intCast(i);
        k += 1;
    }
    for (ax + 1..a.shape.ndim) |i| {
        perm[k] = @intCast(nb + i - 1);
        k += 1;
    }
    return shape_ops.transpose(flat, perm[0..k], stream);
}

/// take over the flattened array.
pub fn takeFlat(a: *Node, indices: *Node, stream: u32) errors.Error!*Node {
    try checkIndices(indices, "gather");
    const n: i32 = @intCast(a.size());
    const f = try shape_ops.reshape(a, &.{n}, stream);
    defer array.release(f);
    return take(f, indices, 0, stream);
}

/// `indices` broadcast against `a` on every axis but `axis`, as take/put_along_axis need.
fn alongAxisShapes(a: *const Node, indices: *const Node, ax: usize, op: []const u8) errors.Error!struct { a: Shape, idx: Shape } {
    if (indices.shape.ndim != a.shape.ndim)
        return errors.fail(.invalid_argument, "[{s}] Indices of dimension {d} does not match array of dimension {d}.", .{ op, indices.shape.ndim, a.shape.ndim });
    var as = a.shape;
    var is = indices.shape;
    as.dims[ax] = 1;
    is.dims[ax] = 1;
    var b = try copy.broadcastShapes(&as, &is, "broadcast_shapes");
    var ra = b;
    ra.dims[ax] = a.shape.dims[ax];
    b.dims[ax] = indices.shape.dims[ax];
    return .{ .a = ra, .idx = b };
}

/// take_along_axis (axis given; the flattened form is composed by the caller).
pub fn takeAlongAxis(a: *Node, indices: *Node, axis: i32, stream: u32) errors.Error!*Node {
    const ax = try normAxis(axis, a.shape.ndim, "take_along_axis");
    try checkIndices(indices, "take_along_axis");
    const s = try alongAxisShapes(a, indices, ax, "take_along_axis");
    if (a.shape.dims[ax] == 0 and s.idx.size() > 0)
        return errors.fail(.invalid_argument, "[take_along_axis] Cannot take from an empty axis.", .{});
    const ab = try copy.broadcastTo(a, s.a, stream);
    defer array.release(ab);
    const ib = try copy.broadcastTo(indices, s.idx, stream);
    defer array.release(ib);
    return array.create(a.dtype, s.idx, .{ .indexing = .{ .gather_axis = .{ .axis = @intCast(ax) } } }, &.{ ab, ib }, stream);
}

/// put_along_axis: `a` with `values` (broadcast to the indices' shape, cast to a's dtype)
/// written (mode none) or added (mode add) at `indices` along `axis`.
pub fn putAlongAxis(a: *Node, indices: *Node, values: *Node, axis: i32, mode: ScatterMode, stream: u32) errors.Error!*Node {
    const ax = try normAxis(axis, a.shape.ndim, "put_along_axis");
    try checkIndices(indices, "put_along_axis");
    if (mode != .none and mode != .add) return errors.fail(.invalid_argument, "[put_along_axis] Only plain and additive updates are supported.", .{});
    const s = try alongAxisShapes(a, indices, ax, "put_along_axis");
    // As MLX: the values broadcast together with the indices.
    const t = try copy.broadcastShapes(&s.idx, &values.shape, "broadcast_shapes");
    var fits = t.ndim == a.shape.ndim;
    if (fits) for (0..a.shape.ndim) |d| {
        if (d != ax and t.dims[d] != a.shape.dims[d]) fits = false;
    };
    if (!fits) {
        var ba: [256]u8 = undefined;
        var bb: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[put_along_axis] Indices and values of shape {s} do not fit the array of shape {s}.", .{ t.format(&ba), a.shape.format(&bb) });
    }
    if (a.shape.dims[ax] == 0 and t.size() > 0)
        return errors.fail(.invalid_argument, "[put_along_axis] Cannot put into an empty axis.", .{});
    const ib = try copy.broadcastTo(indices, t, stream);
    defer array.release(ib);
    const vb = try copy.broadcastTo(values, t, stream);
    defer array.release(vb);
    const vc = try copy.astype(vb, a.dtype, stream);
    defer array.release(vc);
    return array.create(a.dtype, a.shape, .{ .indexing = .{ .scatter_axis = .{ .axis = @intCast(ax), .mode = mode } } }, &.{ a, ib, vc }, stream);
}

/// `a` with the positions where `mask` (bool, broadcast to a's shape) is true taken, in
/// row-major order, from the elements of `source` (one element broadcasts).
pub fn maskedScatter(a: *Node, mask: *Node, source: *Node, stream: u32) errors.Error!*Node {
    if (mask.dtype != .bool_) return errors.fail(.invalid_argument, "[masked_scatter] The mask must be boolean, got {s}.", .{mask.dtype.name()});
    const mb = try copy.broadcastTo(mask, a.shape, stream);
    defer array.release(mb);
    const sc = try copy.astype(source, a.dtype, stream);
    defer array.release(sc);
    return array.create(a.dtype, a.shape, .{ .indexing = .masked_scatter }, &.{ a, mb, sc }, stream);
}

/// The diagonal of axes `axis1` and `axis2` at `offset` (above the main one when positive),
/// as a new last axis: a view.
pub fn diagonal(a: *Node, offset: i32, axis1: i32, axis2: i32, stream: u32) errors.Error!*Node {
    if (a.shape.ndim < 2) return errors.fail(.invalid_argument, "[diagonal] Array must have at least two dimensions, but got {d} dimensions.", .{a.shape.ndim});
    const a1 = try normAxis(axis1, a.shape.ndim, "diagonal");
    const a2 = try normAxis(axis2, a.shape.ndim, "diagonal");
    if (a1 == a2) return errors.fail(.invalid_argument, "[diagonal] axis1 and axis2 cannot be the same axis", .{});
    const n1: i64 = a.shape.dims[a1];
    const n2: i64 = a.shape.dims[a2];
    const len: i64 = if (offset >= 0) @max(0, @min(n1, n2 - offset)) else @max(0, @min(n1 + offset, n2));
    var out = Shape{};
    for (0..a.shape.ndim) |d| {
        if (d == a1 or d == a2) continue;
        out.dims[out.ndim] = a.shape.dims[d];
        out.ndim += 1;
    }
    out.dims[out.ndim] = @intCast(len);
    out.ndim += 1;
    return array.create(a.dtype, out, .{ .indexing = .{ .diagonal = .{ .axis1 = @intCast(a1), .axis2 = @intCast(a2), .offset = offset } } }, &.{a}, stream);
}

/// MLX's dynamic slice: the slab of sizes `slice_size` starting at `start` (an integer array
/// with one element per axis in `axes`).
pub fn dynamicSlice(a: *Node, start: *Node, axes: []const i32, slice_size: []const i32, stream: u32) errors.Error!*Node {
    if (!start.dtype.isInteger()) return errors.fail(.invalid_argument, "[slice] Start indices must be integers, got type {s}.", .{start.dtype.name()});
    if (slice_size.len != a.shape.ndim) return errors.fail(.invalid_argument, "[slice] Invalid slice size for array with {d} dimensions.", .{a.shape.ndim});
    for (slice_size, 0..) |s, d| if (s < 0 or s > a.shape.dims[d]) {
        var b1: [256]u8 = undefined;
        var b2: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[slice] Invalid slice size {s} for array with shape {s}.", .{ fmtDims(slice_size, &b1), a.shape.format(&b2) });
    };
    var starts: [max_ndim]*Node = undefined;
    const n = try startViews(start, axes.len, "slice", &starts, stream);
    defer releaseAll(starts[0..n]);
    return gather(a, starts[0..n], axes, slice_size, null, .slice, stream);
}

/// MLX's dynamic slice_update: `a` with `update` written at `start` along `axes`.
pub fn dynamicSliceUpdate(a: *Node, update: *Node, start: *Node, axes: []const i32, mode: ScatterMode, stream: u32) errors.Error!*Node {
    if (!start.dtype.isInteger()) return errors.fail(.invalid_argument, "[slice_update] Start indices must be integers, got type {s}.", .{start.dtype.name()});
    if (update.shape.ndim > a.shape.ndim) {
        var b1: [256]u8 = undefined;
        var b2: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[slice_update] Update of shape {s} has more dimensions than the array of shape {s}.", .{ update.shape.format(&b1), a.shape.format(&b2) });
    }
    var starts: [max_ndim]*Node = undefined;
    const n = try startViews(start, axes.len, "slice_update", &starts, stream);
    defer releaseAll(starts[0..n]);
    // The update with leading 1s to a's rank; each size must fit its axis.
    var us = Shape{ .ndim = a.shape.ndim };
    const lead = a.shape.ndim - update.shape.ndim;
    for (0..a.shape.ndim) |d| us.dims[d] = if (d < lead) 1 else update.shape.dims[d - lead];
    for (0..a.shape.ndim) |d| if (us.dims[d] > a.shape.dims[d]) {
        var b1: [256]u8 = undefined;
        var b2: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[slice_update] Update of shape {s} does not fit in the array of shape {s}.", .{ update.shape.format(&b1), a.shape.format(&b2) });
    };
    const ur = try shape_ops.reshape(update, us.slice(), stream);
    defer array.release(ur);
    return scatter(a, ur, starts[0..n], axes, null, mode, .slice_update, stream);
}

/// 0-d views of the first `n` elements of a 1-d start array.
fn startViews(start: *Node, n: usize, op: []const u8, out: *[max_ndim]*Node, stream: u32) errors.Error!usize {
    if (n > max_ndim) return errors.fail(.invalid_argument, "[{s}] Too many axes.", .{op});
    if (start.size() != n) return errors.fail(.invalid_argument, "[{s}] Got {d} start indices for {d} axes.", .{ op, start.size(), n });
    const flat_n: i32 = @intCast(n);
    const flat = try shape_ops.reshape(start, &.{flat_n}, stream);
    defer array.release(flat);
    var made: usize = 0;
    errdefer releaseAll(out[0..made]);
    for (0..n) |i| {
        const one = try shape_ops.sliceAxis(flat, 0, @intCast(i), 1, 1, stream);
        defer array.release(one);
        out[made] = try shape_ops.reshape(one, &.{}, stream);
        made += 1;
    }
    return made;
}

const fmtDims = array.formatDims;

// ---------------------------------------------------------------------------------------------
// Kernels

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    switch (p) {
        .gather => |r| try evalGather(node, r),
        .scatter => |r| try evalScatter(node, r),
        .gather_axis => |x| try evalGatherAxis(node, x),
        .scatter_axis => |x| try evalScatterAxis(node, x),
        .masked_scatter => try evalMaskedScatter(node),
        .diagonal => |d| evalDiagonal(node, d),
    }
}

/// One index element as i64 (a uint64 past the i64 range reads as maxInt: out of range).
fn readIndex(idx: *const Node, off: i64) i64 {
    switch (idx.dtype) {
        inline .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64 => |d| {
            const T = d.Type();
            const v = convert.at(T, @ptrCast(@alignCast(idx.data())), off).*;
            if (T == u64) return if (v > std.math.maxInt(i64)) std.math.maxInt(i64) else @intCast(v);
            return v;
        },
        else => unreachable,
    }
}

fn outOfRange(op: []const u8, v: i64, axis: usize, size: i64, slab: i64) errors.Error {
    if (slab == 1)
        return errors.fail(.invalid_argument, "[{s}] Index {d} is out of bounds for axis {d} with size {d}.", .{ op, v, axis, size });
    return errors.fail(.invalid_argument, "[{s}] Index {d} with slice size {d} is out of bounds for axis {d} with size {d}.", .{ op, v, slab, axis, size });
}

/// Finds, for each position of the index shape, the element offset of its slab's first
/// element (in the given strides of an array of a's shape), checking every index. Chunks run
/// on the pool; a bad index is recorded as the lowest failing position and reported afterwards
/// on the calling thread (pool threads cannot set the caller's error).
const Locator = struct {
    idx: []const *Node,
    n: usize,
    sizes: [max_ndim]i64 = undefined,
    slabs: [max_ndim]i64 = undefined,
    strides: [max_ndim]i64 = undefined,
    axes: [max_ndim]usize = undefined,
    fixed: i64 = 0,
    count: usize,
    op: []const u8,
    bad: std.atomic.Value(usize) = .init(std.math.maxInt(usize)),

    fn init(a: *const Node, strides: []const i64, idx: []const *Node, r: *const Region, slab: []const i32) Locator {
        var l = Locator{ .idx = idx, .n = idx.len, .count = if (idx.len > 0) idx[0].size() else 1, .op = @tagName(r.origin) };
        for (0..a.shape.ndim) |d| {
            if (!r.isIndexed(d)) l.fixed += @as(i64, r.start[d]) * strides[d];
        }
        for (0..idx.len) |i| {
            const ax = r.axes[i];
            l.axes[i] = ax;
            l.sizes[i] = a.shape.dims[ax];
            l.slabs[i] = slab[ax];
            l.strides[i] = strides[ax];
        }
        return l;
    }

    /// Iterators over each index input from position `start`.
    fn iters(l: *const Locator, start: usize) [max_ndim]LeadIter {
        var its: [max_ndim]LeadIter = undefined;
        for (l.idx, 0..) |ix, i| {
            its[i] = LeadIter.init(&ix.shape, ix.strides[0..ix.shape.ndim]);
            its[i].seek(start);
        }
        return its;
    }

    /// The offset of the next position, or null when one of its indices is out of range.
    inline fn next(l: *const Locator, its: *[max_ndim]LeadIter) ?i64 {
        var base = l.fixed;
        for (0..l.n) |i| {
            const raw = readIndex(l.idx[i], its[i].next());
            const v = if (raw < 0) raw +| l.sizes[i] else raw;
            if (v < 0 or v +| l.slabs[i] > l.sizes[i]) return null;
            base += v * l.strides[i];
        }
        return base;
    }

    fn fail(l: *Locator, p: usize) void {
        _ = l.bad.fetchMin(p, .monotonic);
    }

    /// MLX-style error for the recorded position, if any.
    fn check(l: *Locator) errors.Error!void {
        const p = l.bad.load(.monotonic);
        if (p == std.math.maxInt(usize)) return;
        for (l.idx, 0..) |ix, i| {
            var it = LeadIter.init(&ix.shape, ix.strides[0..ix.shape.ndim]);
            it.seek(p);
            const raw = readIndex(ix, it.next());
            const v = if (raw < 0) raw +| l.sizes[i] else raw;
            if (v < 0 or v +| l.slabs[i] > l.sizes[i]) return outOfRange(l.op, raw, l.axes[i], l.sizes[i], l.slabs[i]);
        }
        unreachable;
    }

    /// Every position's offset, checked (in parallel).
    fn all(l: *Locator) errors.Error![]i64 {
        const bases = std.heap.c_allocator.alloc(i64, @max(l.count, 1)) catch return errors.fail(.out_of_memory, "[{s}] Out of memory.", .{l.op});
        errdefer std.heap.c_allocator.free(bases);
        const Job = struct {
            l: *Locator,
            out: []i64,
            fn run(j: @This(), start: usize, end: usize) void {
                var its = j.l.iters(start);
                for (start..end) |p| {
                    j.out[p] = j.l.next(&its) orelse return j.l.fail(p);
                }
            }
        };
        pool.parallelFor(l.count, 1 << 14, Job{ .l = l, .out = bases }, Job.run);
        try l.check();
        return bases;
    }
};

fn slabBases(a: *const Node, strides: []const i64, idx: []const *Node, r: *const Region, slab: []const i32) errors.Error![]i64 {
    var l = Locator.init(a, strides, idx, r, slab);
    return l.all();
}

/// Slab dimensions with their strides in the source and destination, size-1 dims dropped
/// and contiguous runs merged.
const SlabWalk = struct {
    n: usize = 0,
    dims: [max_ndim]i64 = undefined,
    ss: [max_ndim]i64 = undefined,
    ds: [max_ndim]i64 = undefined,
    rows: usize = 1,

    fn init(slab: []const i32, ss_in: []const i64, ds_in: []const i64) SlabWalk {
        var w = SlabWalk{};
        for (slab, 0..) |dim, i| {
            if (dim == 1) continue;
            if (w.n > 0 and w.ss[w.n - 1] == ss_in[i] * dim and w.ds[w.n - 1] == ds_in[i] * dim) {
                w.dims[w.n - 1] *= dim;
                w.ss[w.n - 1] = ss_in[i];
                w.ds[w.n - 1] = ds_in[i];
                continue;
            }
            w.dims[w.n] = dim;
            w.ss[w.n] = ss_in[i];
            w.ds[w.n] = ds_in[i];
            w.n += 1;
        }
        if (w.n == 0) {
            w.dims[0] = 1;
            w.ss[0] = 1;
            w.ds[0] = 1;
            w.n = 1;
        }
        for (0..w.n - 1) |i| w.rows *= @intCast(w.dims[i]);
        return w;
    }

    /// Source and destination offsets of row `r` (all dims but the last).
    inline fn row(w: *const SlabWalk, r: usize) [2]i64 {
        var rem = r;
        var so: i64 = 0;
        var do_: i64 = 0;
        var k = w.n - 1;
        while (k > 0) {
            k -= 1;
            const d: usize = @intCast(w.dims[k]);
            const i: i64 = @intCast(rem % d);
            rem /= d;
            so += i * w.ss[k];
            do_ += i * w.ds[k];
        }
        return .{ so, do_ };
    }
};

fn UInt(comptime size: usize) type {
    return std.meta.Int(.unsigned, size * 8);
}

inline fn ptrAt(comptime T: type, base: [*]u8, i: i64) *T {
    return @constCast(convert.at(T, @ptrCast(@alignCast(base)), i));
}

fn evalGather(node: *Node, r: *const Region) errors.Error!void {
    const a = node.inputs[0];
    const idx = node.inputs[1..];
    const nb = node.shape.ndim - a.shape.ndim;
    const slab = node.shape.slice()[nb..];
    if (node.size() == 0) {
        try primitives.allocOutput(node, null);
        return;
    }
    var slab_n: usize = 1;
    for (slab) |d| slab_n *= @intCast(d);
    if (slab_n == 1) return gatherElements(node, a, idx, r, slab);
    const bases = try slabBases(a, a.strides[0..a.shape.ndim], idx, r, slab);
    defer std.heap.c_allocator.free(bases);
    try primitives.allocOutput(node, null);
    var ss: [max_ndim]i64 = undefined;
    var ds: [max_ndim]i64 = undefined;
    var st: i64 = 1;
    var d = a.shape.ndim;
    while (d > 0) {
        d -= 1;
        ss[d] = a.strides[d] * (if (r.isIndexed(d)) 1 else r.step[d]);
        ds[d] = st;
        st *|= slab[d]; // saturating: an empty slab's other dimensions may be huge
    }
    const walk = SlabWalk.init(slab, ss[0..a.shape.ndim], ds[0..a.shape.ndim]);
    switch (a.dtype.size()) {
        inline 1, 2, 4, 8 => |w| {
            const Job = struct {
                src: [*]u8,
                dst: [*]u8,
                bases: []const i64,
                walk: *const SlabWalk,
                slab_n: usize,
                fn run(j: @This(), start: usize, end: usize) void {
                    const T = UInt(w);
                    const rows = j.walk.rows;
                    const inner: usize = @intCast(j.walk.dims[j.walk.n - 1]);
                    const si = j.walk.ss[j.walk.n - 1];
                    for (start..end) |t| {
                        const p = t / rows;
                        const o = j.walk.row(t % rows);
                        var so = j.bases[p] + o[0];
                        const dst: [*]T = @ptrCast(@alignCast(j.dst + (p * j.slab_n + @as(usize, @intCast(o[1]))) * w));
                        if (si == 1) {
                            const s: [*]const T = @ptrCast(ptrAt(T, j.src, so));
                            @memcpy(dst[0..inner], s[0..inner]);
                        } else for (0..inner) |k| {
                            dst[k] = ptrAt(T, j.src, so).*;
                            so += si;
                        }
                    }
                }
            };
            const job = Job{ .src = a.data(), .dst = node.data(), .bases = bases, .walk = &walk, .slab_n = slab_n };
            const total = bases.len * walk.rows;
            const inner: usize = @intCast(walk.dims[walk.n - 1]);
            pool.parallelFor(total, @max(1, (1 << 14) / @max(inner, 1)), job, Job.run);
        },
        else => unreachable,
    }
}

/// A gather whose slabs are single elements (take, advanced indexing of every axis): find and
/// copy in one parallel pass.
fn gatherElements(node: *Node, a: *const Node, idx: []const *Node, r: *const Region, slab: []const i32) errors.Error!void {
    try primitives.allocOutput(node, null);
    var l = Locator.init(a, a.strides[0..a.shape.ndim], idx, r, slab);
    switch (a.dtype.size()) {
        inline 1, 2, 4, 8 => |w| {
            const T = UInt(w);
            const Job = struct {
                l: *Locator,
                src: [*]u8,
                out: [*]T,
                fn run(j: @This(), start: usize, end: usize) void {
                    var its = j.l.iters(start);
                    for (start..end) |p| {
                        const o = j.l.next(&its) orelse return j.l.fail(p);
                        j.out[p] = ptrAt(T, j.src, o).*;
                    }
                }
            };
            pool.parallelFor(l.count, 1 << 14, Job{ .l = &l, .src = a.data(), .out = @ptrCast(@alignCast(node.data())) }, Job.run);
        },
        else => unreachable,
    }
    try l.check();
}

/// Copy `a` into a fresh output (or take a's buffer when nothing else holds it).
fn startFromInput(node: *Node) errors.Error!void {
    const a = node.inputs[0];
    const donated = blk: {
        try primitives.allocOutput(node, a);
        break :blk node.buffer == a.buffer;
    };
    if (!donated) shape_ops.copyInto(a, node.data());
}

fn combine(comptime D: Dtype, mode: ScatterMode, old: D.Type(), new: D.Type()) D.Type() {
    const T = D.Type();
    return switch (D) {
        .bool_ => switch (mode) {
            .none => new,
            .add, .max => old or new,
            .prod, .min => old and new,
        },
        .float16, .bfloat16 => blk: {
            const to = if (D == .float16) half.f16ToF32 else half.bf16ToF32;
            const from = if (D == .float16) half.f32ToF16 else half.f32ToBf16;
            const x = to(old.bits);
            const y = to(new.bits);
            break :blk T{ .bits = from(combineF(mode, x, y)) };
        },
        .complex64 => switch (mode) {
            .none => new,
            .add => T{ .re = old.re + new.re, .im = old.im + new.im },
            .prod => T{ .re = old.re * new.re - old.im * new.im, .im = old.re * new.im + old.im * new.re },
            .max => if (complexLess(old, new)) new else old,
            .min => if (complexLess(new, old)) new else old,
        },
        .float32, .float64 => combineF(mode, old, new),
        else => switch (mode) {
            .none => new,
            .add => old +% new,
            .prod => old *% new,
            .max => @max(old, new),
            .min => @min(old, new),
        },
    };
}

fn combineF(mode: ScatterMode, x: anytype, y: @TypeOf(x)) @TypeOf(x) {
    return switch (mode) {
        .none => y,
        .add => x + y,
        .prod => x * y,
        // NaN propagates, as in MLX's maximum/minimum.
        .max => if (std.math.isNan(x) or std.math.isNan(y)) std.math.nan(@TypeOf(x)) else @max(x, y),
        .min => if (std.math.isNan(x) or std.math.isNan(y)) std.math.nan(@TypeOf(x)) else @min(x, y),
    };
}

/// Complex order as MLX compares complex64: by real part, then imaginary part.
fn complexLess(x: @import("../dtype.zig").Complex64, y: @import("../dtype.zig").Complex64) bool {
    return x.re < y.re or (x.re == y.re and x.im < y.im);
}

fn evalScatter(node: *Node, r: *const Region) errors.Error!void {
    const a = node.inputs[0];
    const upd = node.inputs[1];
    const idx = node.inputs[2..];
    const nb = upd.shape.ndim - a.shape.ndim;
    const slab = upd.shape.slice()[nb..];
    var rs: [max_ndim]i64 = undefined;
    {
        var st: i64 = 1;
        var d = a.shape.ndim;
        while (d > 0) {
            d -= 1;
            rs[d] = st;
            st *|= a.shape.dims[d]; // saturating (an empty array's other dimensions may be huge)
        }
    }
    // Check every index before the output (possibly a's own buffer) is touched.
    const bases = if (upd.size() == 0) null else try slabBases(a, rs[0..a.shape.ndim], idx, r, slab);
    defer if (bases) |b| std.heap.c_allocator.free(b);
    try startFromInput(node);
    const b = bases orelse return;
    var ss: [max_ndim]i64 = undefined;
    var us: [max_ndim]i64 = undefined;
    for (0..a.shape.ndim) |d| {
        ss[d] = rs[d] * (if (r.isIndexed(d)) 1 else r.step[d]);
        us[d] = upd.strides[nb + d];
    }
    const walk = SlabWalk.init(slab, ss[0..a.shape.ndim], us[0..a.shape.ndim]);
    // Offsets of each position's updates: the leading (index) dims of the updates.
    var lead = Shape{ .ndim = @intCast(nb) };
    @memcpy(lead.dims[0..nb], upd.shape.dims[0..nb]);
    switch (a.dtype) {
        inline else => |D| {
            const T = D.Type();
            const Job = struct {
                out: [*]T,
                src: [*]const T,
                bases: []const i64,
                walk: *const SlabWalk,
                lead: *const Shape,
                ust: []const i64,
                mode: ScatterMode,
                /// Rows [start, end) of (position, slab row), in order.
                fn run(j: @This(), start: usize, end: usize) void {
                    const rows = j.walk.rows;
                    const inner: usize = @intCast(j.walk.dims[j.walk.n - 1]);
                    const si = j.walk.ss[j.walk.n - 1];
                    const ui = j.walk.ds[j.walk.n - 1];
                    var it = LeadIter.init(j.lead, j.ust);
                    var p = start / rows;
                    it.seek(p);
                    var ubase = it.next();
                    for (start..end) |t| {
                        if (t / rows != p) {
                            p = t / rows;
                            ubase = it.next();
                        }
                        const o = j.walk.row(t % rows);
                        var so = j.bases[p] + o[0];
                        var uo = ubase + o[1];
                        if (j.mode == .none and si == 1 and ui == 1) {
                            const d = j.out + @as(usize, @intCast(so));
                            const from: [*]const T = @ptrCast(convert.at(T, j.src, uo));
                            @memcpy(d[0..inner], from[0..inner]);
                            continue;
                        }
                        for (0..inner) |_| {
                            const dst = &j.out[@intCast(so)];
                            dst.* = combine(D, j.mode, dst.*, convert.at(T, j.src, uo).*);
                            so += si;
                            uo += ui;
                        }
                    }
                }
            };
            const job = Job{
                .out = @ptrCast(@alignCast(node.data())),
                .src = @ptrCast(@alignCast(upd.data())),
                .bases = b,
                .walk = &walk,
                .lead = &lead,
                .ust = upd.strides[0..nb],
                .mode = r.mode,
            };
            const total = b.len * walk.rows;
            if (r.nidx == 0) {
                // One slab, written once per element: rows can go in parallel.
                const inner: usize = @intCast(walk.dims[walk.n - 1]);
                pool.parallelFor(total, @max(1, (1 << 14) / @max(inner, 1)), job, Job.run);
            } else {
                // Index arrays may repeat: one ordered pass (the last of repeated writes wins;
                // accumulating modes combine every update).
                job.run(0, total);
            }
        },
    }
}

/// Row-major walk over a shape with given strides (no collapsing), yielding offsets.
const LeadIter = struct {
    n: usize,
    dims: [max_ndim]i32,
    st: [max_ndim]i64,
    idx: [max_ndim]i32 = [_]i32{0} ** max_ndim,
    pos: i64 = 0,

    fn init(s: *const Shape, strides: []const i64) LeadIter {
        var it = LeadIter{ .n = s.ndim, .dims = s.dims, .st = undefined };
        @memcpy(it.st[0..s.ndim], strides);
        return it;
    }

    /// Position the walk at row-major position `p`.
    fn seek(it: *LeadIter, p: usize) void {
        var rem = p;
        it.pos = 0;
        var i = it.n;
        while (i > 0) {
            i -= 1;
            const d: usize = @intCast(it.dims[i]);
            const k = if (d == 0) 0 else rem % d;
            if (d != 0) rem /= d;
            it.idx[i] = @intCast(k);
            it.pos += @as(i64, @intCast(k)) * it.st[i];
        }
    }

    inline fn next(it: *LeadIter) i64 {
        const p = it.pos;
        var i = it.n;
        while (i > 0) {
            i -= 1;
            it.idx[i] += 1;
            it.pos += it.st[i];
            if (it.idx[i] < it.dims[i]) break;
            it.pos -= it.st[i] * it.dims[i];
            it.idx[i] = 0;
        }
        return p;
    }
};

fn evalGatherAxis(node: *Node, x: AxisOp) errors.Error!void {
    const a = node.inputs[0];
    const ix = node.inputs[1];
    const ax = x.axis;
    const count = node.size();
    try primitives.allocOutput(node, null);
    if (count == 0) return;
    const nd = node.shape.ndim;
    const inner: usize = @intCast(node.shape.dims[nd - 1]);
    var lead = Shape{ .ndim = @intCast(nd - 1) };
    @memcpy(lead.dims[0 .. nd - 1], node.shape.dims[0 .. nd - 1]);
    // a's strides with the axis zeroed walk every position but the indexed one.
    var ast = a.strides;
    ast[ax] = 0;
    var bad = std.atomic.Value(usize).init(std.math.maxInt(usize));
    switch (a.dtype.size()) {
        inline 1, 2, 4, 8 => |w| switch (ix.dtype) {
            inline .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64 => |ID| {
                const T = UInt(w);
                const I = ID.Type();
                const Job = struct {
                    out: [*]T,
                    src: [*]u8,
                    idx: [*]const I,
                    lead: *const Shape,
                    ast: *const [max_ndim]i64,
                    ist: *const [max_ndim]i64,
                    inner: usize,
                    n: i64,
                    sax: i64,
                    bad: *std.atomic.Value(usize),
                    fn run(j: @This(), start: usize, end: usize) void {
                        const nl = j.lead.ndim;
                        var ia = LeadIter.init(j.lead, j.ast[0..nl]);
                        var ii = LeadIter.init(j.lead, j.ist[0..nl]);
                        ia.seek(start);
                        ii.seek(start);
                        const a_in = j.ast[nl];
                        const i_in = j.ist[nl];
                        for (start..end) |row| {
                            const ab = ia.next();
                            const ib = ii.next();
                            const o = j.out + row * j.inner;
                            for (0..j.inner) |k| {
                                const kk: i64 = @intCast(k);
                                const raw = convert.at(I, j.idx, ib + kk * i_in).*;
                                var v: i64 = if (I == u64) (if (raw > std.math.maxInt(i64)) std.math.maxInt(i64) else @intCast(raw)) else raw;
                                if (v < 0) v += j.n;
                                if (v < 0 or v >= j.n) {
                                    _ = j.bad.fetchMin(row * j.inner + k, .monotonic);
                                    return;
                                }
                                o[k] = ptrAt(T, j.src, ab + kk * a_in + v * j.sax).*;
                            }
                        }
                    }
                };
                const job = Job{
                    .out = @ptrCast(@alignCast(node.data())),
                    .src = a.data(),
                    .idx = @ptrCast(@alignCast(ix.data())),
                    .lead = &lead,
                    .ast = &ast,
                    .ist = &ix.strides,
                    .inner = inner,
                    .n = a.shape.dims[ax],
                    .sax = a.strides[ax],
                    .bad = &bad,
                };
                pool.parallelFor(count / inner, @max(1, (1 << 14) / inner), job, Job.run);
            },
            else => unreachable,
        },
        else => unreachable,
    }
    const p = bad.load(.monotonic);
    if (p != std.math.maxInt(usize)) {
        var it = LeadIter.init(&node.shape, ix.strides[0..nd]);
        it.seek(p);
        return outOfRange("take_along_axis", readIndex(ix, it.next()), ax, a.shape.dims[ax], 1);
    }
}

fn evalScatterAxis(node: *Node, x: AxisOp) errors.Error!void {
    const a = node.inputs[0];
    const ix = node.inputs[1];
    const upd = node.inputs[2];
    const ax = x.axis;
    const n: i64 = a.shape.dims[ax];
    const count = ix.size();
    {
        var it = convert.Iter.init(ix);
        for (0..count) |_| {
            const v = readIndex(ix, it.next());
            if (v < -n or v >= n) return outOfRange("put_along_axis", v, ax, n, 1);
        }
    }
    try startFromInput(node);
    if (count == 0) return;
    var rs: [max_ndim]i64 = undefined;
    {
        var st: i64 = 1;
        var d = a.shape.ndim;
        while (d > 0) {
            d -= 1;
            rs[d] = st;
            st *|= a.shape.dims[d]; // saturating (an empty array's other dimensions may be huge)
        }
    }
    const sax = rs[ax];
    rs[ax] = 0;
    switch (a.dtype) {
        inline else => |D| {
            const T = D.Type();
            const out: [*]T = @ptrCast(@alignCast(node.data()));
            const src: [*]const T = @ptrCast(@alignCast(upd.data()));
            var io = LeadIter.init(&ix.shape, rs[0..ix.shape.ndim]);
            var ii = LeadIter.init(&ix.shape, ix.strides[0..ix.shape.ndim]);
            var iu = LeadIter.init(&ix.shape, upd.strides[0..ix.shape.ndim]);
            for (0..count) |_| {
                var v = readIndex(ix, ii.next());
                if (v < 0) v += n;
                const dst = &out[@intCast(io.next() + v * sax)];
                dst.* = combine(D, x.mode, dst.*, convert.at(T, src, iu.next()).*);
            }
        },
    }
}

/// Number of true elements of a bool array; broadcast (stride 0) axes are counted once and multiplied.
fn countTrue(mask: *Node) usize {
    var it = convert.Iter.init(mask);
    var repeats: usize = 1;
    var n: usize = 0;
    for (0..it.ndim) |i| {
        if (it.strides[i] == 0) {
            repeats *= @intCast(it.shape[i]);
            continue;
        }
        it.shape[n] = it.shape[i];
        it.strides[n] = it.strides[i];
        n += 1;
    }
    it.ndim = n;
    var inner: usize = 1;
    for (0..n) |i| inner *= @intCast(it.shape[i]);
    if (repeats == 0 or inner == 0) return 0;
    const m: [*]const bool = @ptrCast(mask.data());
    var trues: usize = 0;
    for (0..inner) |_| trues += @intFromBool(convert.at(bool, m, it.next()).*);
    return trues * repeats;
}

fn evalMaskedScatter(node: *Node) errors.Error!void {
    const a = node.inputs[0];
    const mask = node.inputs[1];
    const src = node.inputs[2];
    const count = a.size();
    const n_src = src.size();
    // The true count only matters when the source has more than one element (a scalar source
    // fills every true position): skip the pass otherwise, so a huge broadcast mask costs no
    // time before the output allocation (which may fail at the memory limit).
    const trues: usize = if (n_src == 1) 1 else countTrue(mask);
    if (trues > 0 and n_src != 1 and n_src < trues)
        return errors.fail(.invalid_argument, "[masked_scatter] Source does not have enough elements for mask ({d} given, {d} needed).", .{ n_src, trues });
    try startFromInput(node);
    if (trues == 0) return;
    switch (a.dtype.size()) {
        inline 1, 2, 4, 8 => |w| {
            const T = UInt(w);
            const out: [*]T = @ptrCast(@alignCast(node.data()));
            const s: [*]const T = @ptrCast(@alignCast(src.data()));
            const m: [*]const bool = @ptrCast(mask.data());
            var im = convert.Iter.init(mask);
            var is = convert.Iter.init(src);
            const one = n_src == 1;
            const first = s[0];
            for (0..count) |i| {
                if (convert.at(bool, m, im.next()).*) out[i] = if (one) first else convert.at(T, s, is.next()).*;
            }
        },
        else => unreachable,
    }
}

fn evalDiagonal(node: *Node, dg: Diagonal) void {
    const a = node.inputs[0];
    var k: usize = 0;
    for (0..a.shape.ndim) |d| {
        if (d == dg.axis1 or d == dg.axis2) continue;
        node.strides[k] = a.strides[d];
        k += 1;
    }
    const s1 = a.strides[dg.axis1];
    const s2 = a.strides[dg.axis2];
    node.strides[k] = s1 + s2;
    var off: i64 = @intCast(a.offset);
    if (node.size() > 0) {
        const isz: i64 = @intCast(a.dtype.size());
        off += if (dg.offset >= 0) @as(i64, dg.offset) * s2 * isz else -@as(i64, dg.offset) * s1 * isz;
    }
    a.buffer.?.retain();
    node.buffer = a.buffer;
    node.offset = @intCast(off);
}

// ---------------------------------------------------------------------------------------------
// Basic slicing

/// Python/NumPy slice bounds for an axis of size n: start and stop are clamped as
/// `slice.indices` does. Returns the first index and the length.
pub fn sliceBounds(n: i64, start_in: i64, stop_in: i64, step: i64) struct { start: i64, len: i64 } {
    const lo: i64 = if (step < 0) -1 else 0;
    const hi: i64 = if (step < 0) n - 1 else n;
    var start = start_in;
    var stop = stop_in;
    if (start < 0) {
        start += n;
        if (start < 0) start = lo;
    } else if (start >= n) start = hi;
    if (stop < 0) {
        stop += n;
        if (stop < 0) stop = lo;
    } else if (stop >= n) stop = hi;
    const len: i64 = if (step < 0)
        (if (stop < start) @divFloor(start - stop - 1, -step) + 1 else 0)
    else
        (if (start < stop) @divFloor(stop - start - 1, step) + 1 else 0);
    return .{ .start = start, .len = len };
}

/// MLX's slice(a, start, stop, strides): one (start, stop, step) per axis with Python's
/// clamping. A view of a.
pub fn slice(a: *Node, starts: []const i32, stops: []const i32, steps: []const i32, stream: u32) errors.Error!*Node {
    const nd = a.shape.ndim;
    if (starts.len != nd or stops.len != nd or steps.len != nd)
        return errors.fail(.invalid_argument, "[slice] Invalid number of indices or strides for array with dimension {d}.", .{nd});
    a.retain();
    var cur = a;
    defer array.release(cur);
    for (0..nd) |d| {
        if (steps[d] == 0) return errors.fail(.invalid_argument, "[slice] Slice step cannot be zero.", .{});
        const b = sliceBounds(a.shape.dims[d], starts[d], stops[d], steps[d]);
        const start: i32 = if (b.len == 0) 0 else @intCast(b.start);
        const next = try shape_ops.sliceAxis(cur, d, start, @intCast(b.len), if (b.len <= 1) 1 else steps[d], stream);
        array.release(cur);
        cur = next;
    }
    // Negative steps are views too: every kernel reads negative strides in place.
    cur.retain();
    return cur;
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn nodeList(hs: ?[*]const u32, n: u32, op: []const u8, out: *[max_ndim]*Node) errors.Error![]*Node {
    if (n > max_ndim) return errors.fail(.invalid_argument, "[{s}] Too many index arrays ({d}).", .{ op, n });
    if (n > 0 and hs == null) return errors.fail(.invalid_argument, "[{s}] The handle list is null.", .{op});
    for (0..n) |i| out[i] = try handles.get(hs.?[i], op);
    return out[0..n];
}

fn intList(p: ?[*]const i32, n: u32, op: []const u8) errors.Error![]const i32 {
    if (n == 0) return &.{};
    if (n > 2 * max_ndim) return errors.fail(.invalid_argument, "[{s}] Too many values ({d}).", .{ op, n });
    const q = p orelse return errors.fail(.invalid_argument, "[{s}] The integer list is null.", .{op});
    return q[0..n];
}

fn gatherAbi(a: u32, hs: ?[*]const u32, nidx: u32, axes: ?[*]const i32, sizes: ?[*]const i32, region: ?[*]const i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "gather") catch |e| break :blk e;
        var buf: [max_ndim]*Node = undefined;
        const idx = nodeList(hs, nidx, "gather", &buf) catch |e| break :blk e;
        const ax = intList(axes, nidx, "gather") catch |e| break :blk e;
        const sz = intList(sizes, @intCast(x.shape.ndim), "gather") catch |e| break :blk e;
        const rg: ?[]const i32 = if (region) |r| r[0 .. 2 * x.shape.ndim] else null;
        const st = stream_mod.resolve(s, "gather") catch |e| break :blk e;
        break :blk gather(x, idx, ax, sz, rg, .gather, st);
    });
}

fn scatterAbi(a: u32, updates: u32, hs: ?[*]const u32, nidx: u32, axes: ?[*]const i32, region: ?[*]const i32, mode: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "scatter") catch |e| break :blk e;
        const u = handles.get(updates, "scatter") catch |e| break :blk e;
        var buf: [max_ndim]*Node = undefined;
        const idx = nodeList(hs, nidx, "scatter", &buf) catch |e| break :blk e;
        const ax = intList(axes, nidx, "scatter") catch |e| break :blk e;
        const rg: ?[]const i32 = if (region) |r| r[0 .. 2 * x.shape.ndim] else null;
        const m = abi_util.opArg(ScatterMode, mode, "scatter") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "scatter") catch |e| break :blk e;
        break :blk scatter(x, u, idx, ax, rg, m, .scatter, st);
    });
}

fn takeAbi(a: u32, indices: u32, axis: i32, has_axis: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "take") catch |e| break :blk e;
        const i = handles.get(indices, "take") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "take") catch |e| break :blk e;
        break :blk if (has_axis != 0) take(x, i, axis, st) else takeFlat(x, i, st);
    });
}

fn takeAlongAxisAbi(a: u32, indices: u32, axis: i32, has_axis: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "take_along_axis") catch |e| break :blk e;
        const i = handles.get(indices, "take_along_axis") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "take_along_axis") catch |e| break :blk e;
        if (has_axis != 0) break :blk takeAlongAxis(x, i, axis, st);
        const fa = shape_ops.reshape(x, &.{-1}, st) catch |e| break :blk e;
        defer array.release(fa);
        const fi = shape_ops.reshape(i, &.{-1}, st) catch |e| break :blk e;
        defer array.release(fi);
        break :blk takeAlongAxis(fa, fi, 0, st);
    });
}

fn putAlongAxisAbi(a: u32, indices: u32, values: u32, axis: i32, has_axis: u32, mode: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "put_along_axis") catch |e| break :blk e;
        const i = handles.get(indices, "put_along_axis") catch |e| break :blk e;
        const v = handles.get(values, "put_along_axis") catch |e| break :blk e;
        const m = abi_util.opArg(ScatterMode, mode, "put_along_axis") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "put_along_axis") catch |e| break :blk e;
        if (has_axis != 0) break :blk putAlongAxis(x, i, v, axis, m, st);
        const fa = shape_ops.reshape(x, &.{-1}, st) catch |e| break :blk e;
        defer array.release(fa);
        const fi = shape_ops.reshape(i, &.{-1}, st) catch |e| break :blk e;
        defer array.release(fi);
        const r = putAlongAxis(fa, fi, v, 0, m, st) catch |e| break :blk e;
        defer array.release(r);
        break :blk shape_ops.reshape(r, x.shape.slice(), st);
    });
}

fn maskedScatterAbi(a: u32, mask: u32, source: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "masked_scatter") catch |e| break :blk e;
        const m = handles.get(mask, "masked_scatter") catch |e| break :blk e;
        const v = handles.get(source, "masked_scatter") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "masked_scatter") catch |e| break :blk e;
        break :blk maskedScatter(x, m, v, st);
    });
}

fn diagonalAbi(a: u32, offset: i32, axis1: i32, axis2: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "diagonal") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "diagonal") catch |e| break :blk e;
        break :blk diagonal(x, offset, axis1, axis2, st);
    });
}

fn sliceAbi(a: u32, starts: ?[*]const i32, stops: ?[*]const i32, steps: ?[*]const i32, n: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "slice") catch |e| break :blk e;
        const b = intList(starts, n, "slice") catch |e| break :blk e;
        const e_ = intList(stops, n, "slice") catch |e| break :blk e;
        const p = intList(steps, n, "slice") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "slice") catch |e| break :blk e;
        break :blk slice(x, b, e_, p, st);
    });
}

fn sliceDynamicAbi(a: u32, start: u32, axes: ?[*]const i32, naxes: u32, sizes: ?[*]const i32, nsizes: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "slice") catch |e| break :blk e;
        const b = handles.get(start, "slice") catch |e| break :blk e;
        const ax = intList(axes, naxes, "slice") catch |e| break :blk e;
        const sz = intList(sizes, nsizes, "slice") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "slice") catch |e| break :blk e;
        break :blk dynamicSlice(x, b, ax, sz, st);
    });
}

fn sliceUpdateDynamicAbi(a: u32, update: u32, start: u32, axes: ?[*]const i32, naxes: u32, mode: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "slice_update") catch |e| break :blk e;
        const u = handles.get(update, "slice_update") catch |e| break :blk e;
        const b = handles.get(start, "slice_update") catch |e| break :blk e;
        const ax = intList(axes, naxes, "slice_update") catch |e| break :blk e;
        const m = abi_util.opArg(ScatterMode, mode, "slice_update") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "slice_update") catch |e| break :blk e;
        break :blk dynamicSliceUpdate(x, u, b, ax, m, st);
    });
}

/// This family's C ABI entries and enums (concatenated into the table in abi.zig).
pub const abi = [_]abi_util.Entry{
    abi_util.entry("slice", sliceAbi, &.{ "a", "starts", "stops", "steps", "n", "stream" }, "A view of a: per axis (n = ndim) start, stop, step with Python's clamping."),
    abi_util.entry("gather", gatherAbi, &.{ "a", "indices", "nidx", "axes", "slice_sizes", "region", "stream" }, "Slabs of a at the (broadcast) index arrays along axes; region (nullable) gives start,step per axis for the others. Shape: index shape ++ slice_sizes."),
    abi_util.entry("scatter", scatterAbi, &.{ "a", "updates", "indices", "nidx", "axes", "region", "mode", "stream" }, "a with slabs at the index arrays replaced or combined (enum mlxb_scatter_mode) with updates (index shape ++ slab sizes)."),
    abi_util.entry("take", takeAbi, &.{ "a", "indices", "axis", "has_axis", "stream" }, "Elements of a at indices along axis (or of flattened a)."),
    abi_util.entry("take_along_axis", takeAlongAxisAbi, &.{ "a", "indices", "axis", "has_axis", "stream" }, "Elements of a at indices along axis (indices broadcast with a on the other axes)."),
    abi_util.entry("put_along_axis", putAlongAxisAbi, &.{ "a", "indices", "values", "axis", "has_axis", "mode", "stream" }, "a with values written (mode none) or added (mode add) at indices along axis."),
    abi_util.entry("masked_scatter", maskedScatterAbi, &.{ "a", "mask", "source", "stream" }, "a with the true positions of mask filled, in order, from source."),
    abi_util.entry("diagonal", diagonalAbi, &.{ "a", "offset", "axis1", "axis2", "stream" }, "The diagonal of two axes as a new last axis (a view)."),
    abi_util.entry("slice_dynamic", sliceDynamicAbi, &.{ "a", "start", "axes", "naxes", "slice_size", "nsizes", "stream" }, "The slab of a of slice_size at start (an integer array, one per axis in axes)."),
    abi_util.entry("slice_update_dynamic", sliceUpdateDynamicAbi, &.{ "a", "update", "start", "axes", "naxes", "mode", "stream" }, "a with update written (or combined, enum mlxb_scatter_mode) at start along axes."),
};

pub const abi_enums = .{
    .{ "scatter_mode", ScatterMode },
};

// ---------------------------------------------------------------------------------------------
// Tests

const testing = std.testing;
const eval_mod = @import("../eval.zig");

fn iotaNode(dims: []const i32) !*Node {
    const shape = try Shape.fromSlice(dims, "test");
    const n = try array.createWithBuffer(.int32, shape, 0, "test");
    const p: [*]i32 = @ptrCast(@alignCast(n.data()));
    for (0..n.size()) |i| p[i] = @intCast(i);
    return n;
}

fn indexNode(vals: []const i32) !*Node {
    const n = try array.createWithBuffer(.int32, try Shape.fromSlice(&.{@intCast(vals.len)}, "test"), 0, "test");
    @memcpy(@as([*]i32, @ptrCast(@alignCast(n.data())))[0..vals.len], vals);
    return n;
}


fn readInts(n: *Node, out: []i32) !void {
    try eval_mod.ensure(n);
    convert.copyConvert(n, @ptrCast(out.ptr), .int32);
}

test "gather reads slabs through negative strides; negative indices count from the end" {
    const x = try iotaNode(&.{ 3, 4 });
    defer array.release(x);
    const r = try @import("../test_views.zig").flippedView(x, 0b11); // r[i][j] = 11 - 4i - j
    defer array.release(r);
    const idx = try indexNode(&.{ 2, -3 });
    defer array.release(idx);
    const g = try gather(r, &.{idx}, &.{0}, &.{ 1, 3 }, &.{ 0, 1, 1, 1 }, .gather, 0);
    defer array.release(g);
    var got: [6]i32 = undefined;
    try readInts(g, &got);
    // rows 2 and 0 of r, columns 1..3: r[2] = 3 2 1 0, r[0] = 11 10 9 8
    try testing.expectEqualSlices(i32, &.{ 2, 1, 0, 10, 9, 8 }, &got);
}

test "a scatter with a bad index fails before writing, even into a donated buffer" {
    const x = try iotaNode(&.{4});
    const idx = try indexNode(&.{ 1, 9 });
    defer array.release(idx);
    const upd = try iotaNode(&.{ 2, 1 });
    defer array.release(upd);
    const s = try scatter(x, upd, &.{idx}, &.{0}, null, .none, .scatter, 0);
    defer array.release(s);
    const buf = x.buffer.?;
    buf.retain();
    defer buf.release();
    array.release(x); // s is now x's only holder: its buffer could be donated
    try testing.expectError(error.Failed, eval_mod.ensure(s));
    try testing.expectEqualStrings("[scatter] Index 9 is out of bounds for axis 0 with size 4.", errors.messageSlice());
    const p: [*]const i32 = @ptrCast(@alignCast(buf.ptr));
    try testing.expectEqualSlices(i32, &.{ 0, 1, 2, 3 }, p[0..4]);
}

test "scatter add accumulates repeated indices; take_along_axis and the diagonal view" {
    const x = try iotaNode(&.{4});
    defer array.release(x);
    const idx = try indexNode(&.{ 3, 3, 0 });
    defer array.release(idx);
    const upd = try iotaNode(&.{ 3, 1 }); // 0 1 2
    defer array.release(upd);
    const s = try scatter(x, upd, &.{idx}, &.{0}, null, .add, .scatter, 0);
    defer array.release(s);
    var got: [4]i32 = undefined;
    try readInts(s, &got);
    try testing.expectEqualSlices(i32, &.{ 2, 1, 2, 4 }, &got);

    const m = try iotaNode(&.{ 3, 4 });
    defer array.release(m);
    const d = try diagonal(m, 1, 0, 1, 0);
    defer array.release(d);
    var dg: [3]i32 = undefined;
    try readInts(d, &dg);
    try testing.expectEqualSlices(i32, &.{ 1, 6, 11 }, &dg);
    try testing.expect(d.buffer == m.buffer);
}
