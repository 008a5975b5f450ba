//! Shape and layout ops: reshape (a view when the strides allow, else a copy), transpose,
//! slices along one axis (split, unstack, flip), as_strided, contiguous copies, concatenate,
//! pad and roll (one gather kernel), and view (a bit-cast). Views share the input's buffer:
//! their kernels set node.buffer (retained), node.offset and node.strides and move no data.
//! Composite ops (flatten, squeeze, expand_dims, stack, repeat, tile, ...) are built here from
//! these primitives and copy.broadcastTo, with MLX's messages (checked against mlx-cpu 0.32.4).
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const abi_util = @import("../abi_util.zig");
const copy = @import("copy.zig");
const elementwise = @import("elementwise.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

/// What a remap (gather by per-axis index maps) computes; values are part of the C ABI.
pub const PadMode = enum(u32) {
    constant = 0,
    edge = 1,
    reflect = 2,
    symmetric = 3,
};

pub const RemapKind = enum(u8) { pad_constant, pad_edge, pad_reflect, pad_symmetric, roll };
pub const Remap = struct { kind: RemapKind, params: [max_ndim]i32 };

/// One axis sliced: start and step (the output's length along the axis is in its shape).
pub const Slice = struct { axis: u8, start: i32, step: i32 };

/// This family's primitives.
/// How a reshape's target was written, as MLX's Reshape / Flatten / Unflatten keep it, so a
/// shapeless compile recomputes it for a new input shape (compile.zig): `sizes` fixed sizes;
/// `infer` output axis `a` was -1; `flatten` input axes a..b merged; `unflatten` input axis
/// `a` split into `b` sizes, of which the `c`-th was -1 (c < 0: none).
pub const ReshapeRule = struct {
    kind: enum(u8) { sizes, infer, flatten, unflatten } = .sizes,
    a: u8 = 0,
    b: u8 = 0,
    c: i8 = -1,
};

pub const Prim = union(enum) {
    /// A view when the input's strides allow it, else a row-contiguous copy. The rule says
    /// how the target was written (for shapeless compile, compile.zig).
    reshape: ReshapeRule,
    /// A view with permuted strides: output axis i is input axis perm[i].
    transpose: [max_ndim]u8,
    /// A view of one axis from `start` in steps of `step` (negative flips).
    slice: Slice,
    /// A view of the (row-major) input with the strides set on the node when it is built and
    /// this element offset.
    as_strided: i64,
    /// Row-contiguous (or, when allowed, column-contiguous) as a view when it already is, else a copy.
    contiguous: bool,
    /// Inputs joined along an axis.
    concatenate: u8,
    /// Output element = input at per-axis mapped indices (or the fill value), with per-axis
    /// parameters (pad: low widths; roll: shifts), owned by the node.
    remap: *Remap,
    /// The bytes reinterpreted as another dtype (the node's dtype).
    view,

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .remap => |r| if (r.kind == .roll) "roll" else "pad",
            .view => "view",
            else => @tagName(p),
        };
    }

    pub fn deinit(p: Prim) void {
        switch (p) {
            .remap => |r| std.heap.c_allocator.destroy(r),
            else => {},
        }
    }
};

// ---------------------------------------------------------------------------------------------
// Validation helpers

fn normAxis(axis: i32, ndim: usize, comptime op: []const u8) errors.Error!usize {
    const n: i64 = @intCast(ndim);
    const a: i64 = if (axis < 0) @as(i64, axis) + n else axis;
    if (a < 0 or a >= n) return errors.fail(.invalid_argument, "[" ++ op ++ "] Axis {d} is out of bounds for array with {d} dimensions.", .{ axis, ndim });
    return @intCast(a);
}

const fmtDims = array.formatDims;

fn retained(x: *Node) *Node {
    x.retain();
    return x;
}

// ---------------------------------------------------------------------------------------------
// Graph-building ops

/// reshape with one -1 inferred, MLX's messages; the same array when the shape is unchanged.
pub fn reshape(x: *Node, dims: []const i32, stream: u32) errors.Error!*Node {
    if (dims.len > max_ndim)
        return errors.fail(.invalid_argument, "[reshape] Arrays of more than {d} dimensions are not supported (got {d}).", .{ max_ndim, dims.len });
    var out = Shape{ .ndim = @intCast(dims.len) };
    var infer: ?usize = null;
    var size: i64 = 1;
    for (dims, 0..) |d, i| {
        out.dims[i] = d;
        if (d == -1) {
            if (infer != null) return errors.fail(.invalid_argument, "[reshape] Reshape can only infer one dimension.", .{});
            infer = i;
        } else {
            size *|= d;
        }
    }
    const total: i64 = @intCast(x.size());
    if (infer) |i| {
        if (size == 0) return errors.fail(.invalid_argument, "[reshape] Cannot infer the shape of an empty array", .{});
        out.dims[i] = @intCast(@divTrunc(total, size));
        size *= out.dims[i];
    }
    var negative = false;
    for (out.slice()) |d| negative = negative or d < 0;
    if (size != total or negative) {
        var buf: [512]u8 = undefined;
        return errors.fail(.invalid_argument, "[reshape] Cannot reshape array of size {d} into shape {s}.", .{ total, fmtDims(out.slice(), &buf) });
    }
    if (infer) |i| return reshapeRule(x, out, .{ .kind = .infer, .a = @intCast(i) }, stream);
    return reshapeTo(x, out, stream);
}

/// A reshape to a validated shape of the same size.
fn reshapeTo(x: *Node, out: Shape, stream: u32) errors.Error!*Node {
    return reshapeRule(x, out, .{}, stream);
}

fn reshapeRule(x: *Node, out: Shape, rule: ReshapeRule, stream: u32) errors.Error!*Node {
    if (x.shape.eql(&out)) return retained(x);
    return array.create(x.dtype, out, .{ .shape = .{ .reshape = rule } }, &.{x}, stream);
}

pub fn flatten(x: *Node, start_axis: i32, end_axis: i32, stream: u32) errors.Error!*Node {
    const ndim: i32 = @intCast(x.shape.ndim);
    if (ndim == 0) return reshapeTo(x, .{ .ndim = 1, .dims = .{1} ++ .{0} ** (max_ndim - 1) }, stream);
    var s = start_axis + (if (start_axis < 0) ndim else 0);
    var e = end_axis + (if (end_axis < 0) ndim else 0);
    s = @max(0, s);
    e = @min(ndim - 1, e);
    if (e < s) return errors.fail(.invalid_argument, "[flatten] start_axis must be less than or equal to end_axis", .{});
    if (s >= ndim) return errors.fail(.invalid_argument, "[flatten] Invalid start_axis {d} for array with {d} dimensions.", .{ start_axis, ndim });
    if (e < 0) return errors.fail(.invalid_argument, "[flatten] Invalid end_axis {d} for array with {d} dimensions.", .{ end_axis, ndim });
    if (s == e) return retained(x);
    var out = Shape{};
    const su: usize = @intCast(s);
    const eu: usize = @intCast(e);
    for (0..su) |i| out.dims[i] = x.shape.dims[i];
    var m: i64 = 1;
    for (su..eu + 1) |i| m *|= x.shape.dims[i];
    if (m > std.math.maxInt(i32)) {
        var buf: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[flatten] Flattening axes {d} to {d} of shape {s} gives a dimension larger than 2^31-1.", .{ s, e, x.shape.format(&buf) });
    }
    out.dims[su] = @intCast(m);
    var n: usize = su + 1;
    for (eu + 1..x.shape.ndim) |i| {
        out.dims[n] = x.shape.dims[i];
        n += 1;
    }
    out.ndim = @intCast(n);
    return reshapeRule(x, out, .{ .kind = .flatten, .a = @intCast(su), .b = @intCast(eu) }, stream);
}

pub fn unflatten(x: *Node, axis: i32, dims: []const i32, stream: u32) errors.Error!*Node {
    if (dims.len == 0) return errors.fail(.invalid_argument, "[unflatten] Shape to unflatten to cannot be empty.", .{});
    const ndim: i32 = @intCast(x.shape.ndim);
    const ax = if (axis < 0) axis + ndim else axis;
    if (ax < 0 or ax >= ndim) return errors.fail(.invalid_argument, "[unflatten] Invalid axes {d} for array with {d} dimensions.", .{ ax, ndim });
    const axu: usize = @intCast(ax);
    if (x.shape.ndim - 1 + dims.len > max_ndim)
        return errors.fail(.invalid_argument, "[unflatten] Arrays of more than {d} dimensions are not supported (got {d}).", .{ max_ndim, x.shape.ndim - 1 + dims.len });
    var sub: [max_ndim]i32 = undefined;
    var size: i64 = 1;
    var infer: ?usize = null;
    for (dims, 0..) |d, i| {
        sub[i] = d;
        if (d == -1) {
            if (infer != null) return errors.fail(.invalid_argument, "[Unflatten] Can only infer one dimension.", .{});
            infer = i;
        } else size *|= d;
    }
    const n: i64 = x.shape.dims[axu];
    if (infer) |i| {
        if (size == 0) return errors.fail(.invalid_argument, "[unflatten] Cannot infer the shape of an empty array", .{});
        sub[i] = @intCast(@divTrunc(n, size));
        size *= sub[i];
    }
    var negative = false;
    for (sub[0..dims.len]) |d| negative = negative or d < 0;
    if (size != n or negative) {
        var buf: [512]u8 = undefined;
        return errors.fail(.invalid_argument, "[Unflatten] Cannot unflatten axis {d} with size {d} into shape {s}.", .{ axis, n, fmtDims(sub[0..dims.len], &buf) });
    }
    var out = Shape{};
    var k: usize = 0;
    for (0..x.shape.ndim) |i| {
        if (i == axu) {
            for (sub[0..dims.len]) |d| {
                out.dims[k] = d;
                k += 1;
            }
        } else {
            out.dims[k] = x.shape.dims[i];
            k += 1;
        }
    }
    out.ndim = @intCast(k);
    const c: i8 = if (infer) |i| @intCast(i) else -1;
    return reshapeRule(x, out, .{ .kind = .unflatten, .a = @intCast(axu), .b = @intCast(dims.len), .c = c }, stream);
}

/// squeeze the given axes, or (all) every size-1 axis.
pub fn squeeze(x: *Node, axes: []const i32, all: bool, stream: u32) errors.Error!*Node {
    var drop = [_]bool{false} ** max_ndim;
    if (all) {
        for (0..x.shape.ndim) |i| drop[i] = x.shape.dims[i] == 1;
    } else {
        for (axes) |a| {
            const ax = try normAxis(a, x.shape.ndim, "squeeze");
            if (x.shape.dims[ax] != 1)
                return errors.fail(.invalid_argument, "[squeeze] Cannot squeeze axis {d} with size {d} which is not equal to 1.", .{ a, x.shape.dims[ax] });
            if (drop[ax]) return errors.fail(.invalid_argument, "[squeeze] Received duplicate axes.", .{});
            drop[ax] = true;
        }
    }
    var out = Shape{};
    for (0..x.shape.ndim) |i| {
        if (drop[i]) continue;
        out.dims[out.ndim] = x.shape.dims[i];
        out.ndim += 1;
    }
    return reshapeTo(x, out, stream);
}

pub fn expandDims(x: *Node, axes: []const i32, stream: u32) errors.Error!*Node {
    for (axes, 0..) |a, i| for (axes[0..i]) |b| if (a == b)
        return errors.fail(.invalid_argument, "[expand_dims] Received duplicate axes.", .{});
    const out_ndim = x.shape.ndim + axes.len;
    if (out_ndim > max_ndim)
        return errors.fail(.invalid_argument, "[expand_dims] Arrays of more than {d} dimensions are not supported (got {d}).", .{ max_ndim, out_ndim });
    var add = [_]bool{false} ** max_ndim;
    var norm: [max_ndim]usize = undefined;
    for (axes, 0..) |a, i| norm[i] = try normAxis(a, out_ndim, "expand_dims");
    for (norm[0..axes.len]) |ax| {
        if (add[ax]) return errors.fail(.invalid_argument, "[expand_dims] Received duplicate axes.", .{});
        add[ax] = true;
    }
    var out = Shape{ .ndim = @intCast(out_ndim) };
    var j: usize = 0;
    for (0..out_ndim) |i| {
        if (add[i]) {
            out.dims[i] = 1;
        } else {
            out.dims[i] = x.shape.dims[j];
            j += 1;
        }
    }
    return reshapeTo(x, out, stream);
}

/// transpose by a full permutation (negative axes count from the end).
pub fn transpose(x: *Node, axes: []const i32, stream: u32) errors.Error!*Node {
    const ndim = x.shape.ndim;
    if (axes.len != ndim)
        return errors.fail(.invalid_argument, "[transpose] Received {d} axes for array with {d} dimensions.", .{ axes.len, ndim });
    var seen = [_]bool{false} ** max_ndim;
    var perm = [_]u8{0} ** max_ndim;
    var out = Shape{ .ndim = x.shape.ndim };
    for (axes, 0..) |a, i| {
        const ax: i64 = if (a < 0) @as(i64, a) + ndim else a;
        if (ax < 0 or ax >= ndim) return errors.fail(.invalid_argument, "[transpose] Invalid axis ({d}) for array with {d} dimensions.", .{ ax, ndim });
        const u: usize = @intCast(ax);
        if (seen[u]) return errors.fail(.invalid_argument, "[transpose] Repeat axes not allowed.", .{});
        seen[u] = true;
        perm[i] = @intCast(u);
        out.dims[i] = x.shape.dims[u];
    }
    var identity = true;
    for (0..ndim) |i| identity = identity and perm[i] == i;
    if (identity) return retained(x);
    return array.create(x.dtype, out, .{ .shape = .{ .transpose = perm } }, &.{x}, stream);
}

fn checkAxis(a: i32, ndim: usize, comptime op: []const u8) errors.Error!usize {
    const n: i64 = @intCast(ndim);
    if (a < -n or a >= n) return errors.fail(.invalid_argument, "[" ++ op ++ "] Invalid axis {d} for array with {d} dimensions.", .{ a, ndim });
    return @intCast(if (a < 0) @as(i64, a) + n else a);
}

fn permuted(x: *Node, perm: []const usize, stream: u32) errors.Error!*Node {
    var axes: [max_ndim]i32 = undefined;
    for (perm, 0..) |p, i| axes[i] = @intCast(p);
    return transpose(x, axes[0..perm.len], stream);
}

pub fn moveaxis(x: *Node, source: i32, destination: i32, stream: u32) errors.Error!*Node {
    const s = try checkAxis(source, x.shape.ndim, "moveaxis");
    const d = try checkAxis(destination, x.shape.ndim, "moveaxis");
    if (s == d) return retained(x);
    var order: [max_ndim]usize = undefined;
    var k: usize = 0;
    for (0..x.shape.ndim) |i| if (i != s) {
        order[k] = i;
        k += 1;
    };
    // insert s at d
    var i: usize = x.shape.ndim - 1;
    while (i > d) : (i -= 1) order[i] = order[i - 1];
    order[d] = s;
    return permuted(x, order[0..x.shape.ndim], stream);
}

pub fn swapaxes(x: *Node, axis1: i32, axis2: i32, stream: u32) errors.Error!*Node {
    const a = try checkAxis(axis1, x.shape.ndim, "swapaxes");
    const b = try checkAxis(axis2, x.shape.ndim, "swapaxes");
    var order: [max_ndim]usize = undefined;
    for (0..x.shape.ndim) |i| order[i] = i;
    order[a] = b;
    order[b] = a;
    return permuted(x, order[0..x.shape.ndim], stream);
}

/// A view of [start, stop) along `axis` (already clamped) in steps of `step`.
pub fn sliceAxis(x: *Node, axis: usize, start: i32, len: i32, step: i32, stream: u32) errors.Error!*Node {
    if (step == 1 and start == 0 and len == x.shape.dims[axis]) return retained(x);
    var out = x.shape;
    out.dims[axis] = len;
    return array.create(x.dtype, out, .{ .shape = .{ .slice = .{ .axis = @intCast(axis), .start = start, .step = step } } }, &.{x}, stream);
}

/// Piece `part` of split at `indices` (or into `sections` equal parts when indices is null).
pub fn splitPart(x: *Node, sections: i32, indices: ?[]const i32, axis: i32, part: u32, stream: u32) errors.Error!*Node {
    const ax = try normAxis(axis, x.shape.ndim, "split");
    const n = x.shape.dims[ax];
    var start: i32 = 0;
    var stop: i32 = n;
    if (indices) |idx| {
        if (part > idx.len) return errors.fail(.invalid_argument, "[split] Part {d} of {d}.", .{ part, idx.len + 1 });
        if (part > 0) start = idx[part - 1];
        if (part < idx.len) stop = idx[part];
        if (start < 0) start += n;
        if (stop < 0) stop += n;
        start = std.math.clamp(start, 0, n);
        stop = std.math.clamp(stop, 0, n);
        if (stop < start) stop = start;
    } else {
        if (sections <= 0) return errors.fail(.invalid_argument, "[split] num_splits must be positive and non-zero but got {d}.", .{sections});
        if (@rem(n, sections) != 0) {
            var buf: [512]u8 = undefined;
            return errors.fail(.invalid_argument, "Array split does not result in sub arrays with equal size: attempting {d} splits along axis {d} for shape {s}.", .{ sections, axis, x.shape.format(&buf) });
        }
        if (part >= sections) return errors.fail(.invalid_argument, "[split] Part {d} of {d}.", .{ part, sections });
        const size = @divExact(n, sections);
        start = @as(i32, @intCast(part)) * size;
        stop = start + size;
    }
    return sliceAxis(x, ax, start, stop - start, 1, stream);
}

/// Element `index` along `axis`, the axis removed (one piece of unstack).
pub fn unstackPart(x: *Node, axis: i32, index: i32, stream: u32) errors.Error!*Node {
    const ax = try normAxis(axis, x.shape.ndim, "unstack");
    if (index < 0 or index >= x.shape.dims[ax]) return errors.fail(.invalid_argument, "[unstack] Index {d} is out of bounds for axis of size {d}.", .{ index, x.shape.dims[ax] });
    const s = try sliceAxis(x, ax, index, 1, 1, stream);
    defer array.release(s);
    const a: i32 = @intCast(ax);
    return squeeze(s, &.{a}, false, stream);
}

/// flip the given axes (all when `all`); repeated axes flip once, as MLX.
pub fn flip(x: *Node, axes: []const i32, all: bool, stream: u32) errors.Error!*Node {
    var mark = [_]bool{false} ** max_ndim;
    if (all) {
        for (0..x.shape.ndim) |i| mark[i] = true;
    } else for (axes) |a| {
        mark[try normAxis(a, x.shape.ndim, "flip")] = true;
    }
    var cur = retained(x);
    defer array.release(cur);
    var flipped = false;
    for (0..x.shape.ndim) |i| {
        if (!mark[i]) continue;
        const n = x.shape.dims[i];
        if (n <= 1) continue;
        const next = try sliceAxis(cur, i, n - 1, n, -1, stream);
        array.release(cur);
        cur = next;
        flipped = true;
    }
    if (!flipped) return retained(x);
    // A view with negative strides: every kernel reads those in place.
    return retained(cur);
}

/// broadcast_to with MLX's messages.
pub fn broadcastTo(x: *Node, shape: Shape, stream: u32) errors.Error!*Node {
    if (x.shape.eql(&shape)) return retained(x);
    const b = try copy.broadcastShapes(&x.shape, &shape, "broadcast_shapes");
    if (!b.eql(&shape)) {
        var ba: [512]u8 = undefined;
        var bb: [512]u8 = undefined;
        return errors.fail(.invalid_argument, "Cannot broadcast array of shape {s} into shape {s}.", .{ x.shape.format(&ba), shape.format(&bb) });
    }
    return copy.broadcastTo(x, shape, stream);
}

/// A view of the row-major input with any shape, strides and element offset. Unlike MLX
/// (which does not check), a view reaching outside the input is refused.
pub fn asStrided(x: *Node, shape: Shape, strides: []const i64, offset: i64, stream: u32) errors.Error!*Node {
    if (strides.len != shape.ndim)
        return errors.fail(.invalid_argument, "[as_strided] Received {d} strides for a shape of {d} dimensions.", .{ strides.len, shape.ndim });
    if (offset < 0 or offset > @as(i64, @intCast(x.size())))
        return errors.fail(.invalid_argument, "[as_strided] The offset {d} is outside the array of size {d}.", .{ offset, x.size() });
    if (shape.size() > 0) {
        var lo: i64 = offset;
        var hi: i64 = offset;
        for (strides, 0..) |s, i| {
            const reach = s *| @as(i64, shape.dims[i] - 1);
            if (reach < 0) lo +|= reach else hi +|= reach;
        }
        if (lo < 0 or hi >= @as(i64, @intCast(x.size())))
            return errors.fail(.invalid_argument, "[as_strided] The view reaches elements {d} to {d}, outside the array of size {d}.", .{ lo, hi, x.size() });
    }
    const node = try array.create(x.dtype, shape, .{ .shape = .{ .as_strided = offset } }, &.{x}, stream);
    for (strides, 0..) |s, i| node.strides[i] = s;
    return node;
}

pub fn contiguous(x: *Node, allow_col_major: bool, stream: u32) errors.Error!*Node {
    return array.create(x.dtype, x.shape, .{ .shape = .{ .contiguous = allow_col_major } }, &.{x}, stream);
}

pub fn concatenate(xs: []const *Node, axis: i32, stream: u32) errors.Error!*Node {
    if (xs.len == 0) return errors.fail(.invalid_argument, "[concatenate] No arrays provided for concatenation", .{});
    if (xs.len == 1) return retained(xs[0]);
    const ax = try normAxis(axis, xs[0].shape.ndim, "concatenate");
    var shape = xs[0].shape;
    shape.dims[ax] = 0;
    var dtype = xs[0].dtype;
    for (xs) |a| {
        if (a.shape.ndim != shape.ndim)
            return errors.fail(.invalid_argument, "[concatenate] All the input arrays must have the same number of dimensions. However, got arrays with dimensions {d} and {d}.", .{ shape.ndim, a.shape.ndim });
        for (0..a.shape.ndim) |i| {
            if (i != ax and a.shape.dims[i] != shape.dims[i]) {
                var buf: [2048]u8 = undefined;
                var w = std.Io.Writer.fixed(&buf);
                for (xs) |b| {
                    var sb: [512]u8 = undefined;
                    w.print("{s}, ", .{b.shape.format(&sb)}) catch {};
                }
                return errors.fail(.invalid_argument, "[concatenate] All the input array dimensions must match exactly except for the concatenation axis. However, the provided shapes are {s}and the concatenation axis is {d}.", .{ w.buffered(), axis });
            }
        }
        const sum = @as(i64, shape.dims[ax]) + a.shape.dims[ax];
        if (sum > std.math.maxInt(i32)) return errors.fail(.invalid_argument, "[concatenate] The concatenated axis has more than {d} elements.", .{std.math.maxInt(i32)});
        shape.dims[ax] = @intCast(sum);
        dtype = dtype_mod.promote(dtype, a.dtype);
    }
    _ = try shape.sizeChecked("concatenate");
    var typed: [64]*Node = undefined;
    const list = if (xs.len <= typed.len) typed[0..xs.len] else std.heap.c_allocator.alloc(*Node, xs.len) catch
        return errors.fail(.out_of_memory, "[concatenate] Out of memory.", .{});
    defer if (xs.len > typed.len) std.heap.c_allocator.free(list);
    var made: usize = 0;
    defer for (list[0..made]) |n| array.release(n);
    for (xs) |a| {
        list[made] = try copy.astype(a, dtype, stream);
        made += 1;
    }
    return array.create(dtype, shape, .{ .shape = .{ .concatenate = @intCast(ax) } }, list, stream);
}

pub fn stack(xs: []const *Node, axis: i32, stream: u32) errors.Error!*Node {
    if (xs.len == 0) return errors.fail(.invalid_argument, "[stack] No arrays provided for stacking", .{});
    for (xs) |a| if (!a.shape.eql(&xs[0].shape))
        return errors.fail(.invalid_argument, "[stack] All arrays must have the same shape", .{});
    const ax = try normAxis(axis, xs[0].shape.ndim + 1, "stack");
    const a32: i32 = @intCast(ax);
    var tmp: [64]*Node = undefined;
    const list = if (xs.len <= tmp.len) tmp[0..xs.len] else std.heap.c_allocator.alloc(*Node, xs.len) catch
        return errors.fail(.out_of_memory, "[stack] Out of memory.", .{});
    defer if (xs.len > tmp.len) std.heap.c_allocator.free(list);
    var made: usize = 0;
    defer for (list[0..made]) |n| array.release(n);
    for (xs) |a| {
        list[made] = try expandDims(a, &.{a32}, stream);
        made += 1;
    }
    return concatenate(list, a32, stream);
}

/// repeat along an axis (or, with no axis, of the flattened array).
pub fn repeat(x: *Node, repeats: i32, axis: ?i32, stream: u32) errors.Error!*Node {
    if (axis == null) {
        const f = try flatten(x, 0, -1, stream);
        defer array.release(f);
        return repeat(f, repeats, 0, stream);
    }
    const ax = try normAxis(axis.?, x.shape.ndim, "repeat");
    if (repeats < 0) return errors.fail(.invalid_argument, "[repeat] Number of repeats cannot be negative", .{});
    if (repeats == 1) return retained(x);
    if (x.shape.ndim + 1 > max_ndim) return errors.fail(.invalid_argument, "[repeat] Arrays of more than {d} dimensions are not supported.", .{max_ndim});
    const e = try expandDims(x, &.{@as(i32, @intCast(ax + 1))}, stream);
    defer array.release(e);
    var bshape = e.shape;
    bshape.dims[ax + 1] = repeats;
    _ = try bshape.sizeChecked("repeat");
    const b = try copy.broadcastTo(e, bshape, stream);
    defer array.release(b);
    var out = x.shape;
    const d = @as(i64, out.dims[ax]) * repeats;
    if (d > std.math.maxInt(i32)) return errors.fail(.invalid_argument, "[repeat] Dimension {d} is larger than the maximum of {d}.", .{ d, std.math.maxInt(i32) });
    out.dims[ax] = @intCast(d);
    return reshapeTo(b, out, stream);
}

pub fn tile(x: *Node, reps_in: []const i32, stream: u32) errors.Error!*Node {
    const n = @max(reps_in.len, x.shape.ndim);
    var expanded = n;
    for (reps_in) |r| expanded += @intFromBool(r != 1);
    if (n > max_ndim or expanded > max_ndim) return errors.fail(.invalid_argument, "[tile] Arrays of more than {d} dimensions are not supported.", .{max_ndim});
    var reps: [max_ndim]i32 = undefined;
    var shape: [max_ndim]i32 = undefined;
    for (0..n) |i| {
        reps[i] = if (i + reps_in.len >= n) reps_in[i + reps_in.len - n] else 1;
        shape[i] = if (i + x.shape.ndim >= n) x.shape.dims[i + x.shape.ndim - n] else 1;
    }
    var expand = Shape{};
    var broad: [max_ndim]i32 = undefined;
    var final = Shape{ .ndim = @intCast(n) };
    var k: usize = 0;
    for (0..n) |i| {
        if (reps[i] != 1) {
            expand.dims[k] = 1;
            broad[k] = reps[i];
            k += 1;
        }
        expand.dims[k] = shape[i];
        broad[k] = shape[i];
        k += 1;
        const d = @as(i64, reps[i]) * shape[i];
        if (d > std.math.maxInt(i32)) return errors.fail(.invalid_argument, "[tile] Dimension {d} is larger than the maximum of {d}.", .{ d, std.math.maxInt(i32) });
        final.dims[i] = @intCast(@max(d, 0));
    }
    expand.ndim = @intCast(k);
    const bshape = try Shape.fromSlice(broad[0..k], "broadcast_to");
    const r = try reshapeTo(x, expand, stream);
    defer array.release(r);
    const b = try copy.broadcastTo(r, bshape, stream);
    defer array.release(b);
    return reshapeTo(b, final, stream);
}

/// pad every axis by lows[i] before and highs[i] after; `value` (its first element, as x's
/// dtype) fills constant padding.
pub fn pad(x: *Node, lows: []const i32, highs: []const i32, mode: PadMode, value: ?*Node, stream: u32) errors.Error!*Node {
    if (lows.len != x.shape.ndim or highs.len != x.shape.ndim)
        return errors.fail(.invalid_argument, "Invalid number of padding sizes passed to pad with axes of size {d}", .{x.shape.ndim});
    var out = x.shape;
    for (0..lows.len) |i| {
        if (lows[i] < 0) return errors.fail(.invalid_argument, "Invalid low padding size ({d}) passed to pad for axis {d}. Padding sizes must be non-negative", .{ lows[i], i });
        if (highs[i] < 0) return errors.fail(.invalid_argument, "Invalid high padding size ({d}) passed to pad for axis {d}. Padding sizes must be non-negative", .{ highs[i], i });
        if ((mode == .reflect or mode == .symmetric) and x.shape.dims[i] == 0 and lows[i] +| highs[i] > 0)
            return errors.fail(.invalid_argument, "[pad] Cannot pad empty axis {d} using mode '{s}'.", .{ i, @tagName(mode) });
        const d = @as(i64, x.shape.dims[i]) + lows[i] + highs[i];
        if (d > std.math.maxInt(i32))
            return errors.fail(.invalid_argument, "[pad] Padding axis {d} to {d} elements exceeds the largest dimension, 2^31-1.", .{ i, d });
        out.dims[i] = @intCast(d);
    }
    _ = try Shape.fromSlice(out.slice(), "pad");
    var no_pad = true;
    for (lows, highs) |l, h| no_pad = no_pad and l == 0 and h == 0;
    if (no_pad) return retained(x);
    const kind: RemapKind = switch (mode) {
        .constant => .pad_constant,
        .edge => .pad_edge,
        .reflect => .pad_reflect,
        .symmetric => .pad_symmetric,
    };
    if (mode == .edge) {
        // Edge padding of an empty axis has no edge: MLX gives zeros.
        for (0..lows.len) |i| if (x.shape.dims[i] == 0 and lows[i] +| highs[i] > 0) {
            const zero = try array.createWithBuffer(x.dtype, .{}, stream, "pad");
            defer array.release(zero);
            @memset(zero.data()[0..x.dtype.size()], 0);
            return remapNode(x, out, .pad_constant, lows, zero, stream);
        };
    }
    if (mode != .constant) return remapNode(x, out, kind, lows, null, stream);
    const v = value orelse return errors.fail(.invalid_argument, "[pad] Constant padding needs a value.", .{});
    if (v.size() == 0) return errors.fail(.invalid_argument, "[pad] The padding value is empty.", .{});
    const typed = try copy.astype(v, x.dtype, stream);
    defer array.release(typed);
    return remapNode(x, out, .pad_constant, lows, typed, stream);
}

pub fn remapNode(x: *Node, out: Shape, kind: RemapKind, params: []const i32, fill: ?*Node, stream: u32) errors.Error!*Node {
    const r = std.heap.c_allocator.create(Remap) catch return errors.fail(.out_of_memory, "[pad] Out of memory.", .{});
    errdefer std.heap.c_allocator.destroy(r);
    r.kind = kind;
    @memcpy(r.params[0..out.ndim], params[0..out.ndim]);
    return if (fill) |f|
        try array.create(x.dtype, out, .{ .shape = .{ .remap = r } }, &.{ x, f }, stream)
    else
        try array.create(x.dtype, out, .{ .shape = .{ .remap = r } }, &.{x}, stream);
}

/// roll: with no axes, the flattened array by the sum of the shifts; with one axis given as
/// an int (`single`), by the sum of the shifts; else axis i by shifts[i] (one shift: all axes).
pub fn roll(x: *Node, shifts: []const i32, axes: ?[]const i32, single: bool, stream: u32) errors.Error!*Node {
    var total: i64 = 0;
    for (shifts) |s| total += s;
    if (axes == null) {
        if (x.shape.ndim == 0) return retained(x);
        const f = try flatten(x, 0, -1, stream);
        defer array.release(f);
        const r = try rollAxes(f, &.{0}, &.{total}, stream);
        defer array.release(r);
        return reshapeTo(r, x.shape, stream);
    }
    const ax = axes.?;
    var per: [max_ndim]i64 = [_]i64{0} ** max_ndim;
    var which: [max_ndim]usize = undefined;
    if (single) {
        if (ax.len != 1) return errors.fail(.invalid_argument, "[roll] Expected one axis.", .{});
        which[0] = try checkAxis(ax[0], x.shape.ndim, "roll");
        per[0] = total;
        return rollAxes(x, which[0..1], per[0..1], stream);
    }
    if (ax.len > max_ndim) return errors.fail(.invalid_argument, "[roll] Too many axes ({d}).", .{ax.len});
    if (shifts.len != 1 and shifts.len < ax.len)
        return errors.fail(.invalid_argument, "[roll] At least one shift value per axis is required, {d} provided for {d} axes.", .{ shifts.len, ax.len });
    for (ax, 0..) |a, i| {
        which[i] = try checkAxis(a, x.shape.ndim, "roll");
        per[i] = if (shifts.len == 1) shifts[0] else shifts[i];
    }
    return rollAxes(x, which[0..ax.len], per[0..ax.len], stream);
}

fn rollAxes(x: *Node, axes: []const usize, shifts: []const i64, stream: u32) errors.Error!*Node {
    var params = [_]i32{0} ** max_ndim;
    var any = false;
    for (axes, shifts) |a, s| {
        const n: i64 = x.shape.dims[a];
        if (n == 0) continue;
        params[a] = @intCast(@mod(@as(i64, params[a]) + @mod(s, n), n));
    }
    for (params[0..x.shape.ndim]) |p| any = any or p != 0;
    if (!any) return retained(x);
    return remapNode(x, x.shape, .roll, params[0..x.shape.ndim], null, stream);
}

/// The bytes of x as another dtype: the last axis scales by the ratio of the item sizes.
pub fn view(x: *Node, dtype: Dtype, stream: u32) errors.Error!*Node {
    if (dtype == x.dtype) return retained(x);
    const in_size = x.dtype.size();
    const out_size = dtype.size();
    var out = x.shape;
    if (in_size != out_size) {
        if (x.shape.ndim == 0) return errors.fail(.invalid_argument, "[view] Changing the type of a scalar is only allowed for types with the same size.", .{});
        const last: usize = @intCast(x.shape.dims[x.shape.ndim - 1]);
        if (in_size < out_size and (last * in_size) % out_size != 0)
            return errors.fail(.invalid_argument, "[view] When viewing as a larger dtype, the size in bytes of the last axis must be a multiple of the requested type size.", .{});
        const scaled = last * in_size / out_size;
        if (scaled > std.math.maxInt(i32)) return errors.fail(.invalid_argument, "[view] The last axis would have more than {d} elements.", .{std.math.maxInt(i32)});
        out.dims[x.shape.ndim - 1] = @intCast(scaled);
    }
    return array.create(dtype, out, .{ .shape = .view }, &.{x}, stream);
}

// ---------------------------------------------------------------------------------------------
// Kernels

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    switch (p) {
        .reshape => try evalReshape(node),
        .transpose => |perm| evalTranspose(node, &perm),
        .slice => |s| evalSlice(node, s),
        .as_strided => |off| try evalAsStrided(node, off),
        .contiguous => |col| try evalContiguous(node, col),
        .concatenate => |ax| try evalConcatenate(node, ax),
        .remap => |r| try evalRemap(node, r),
        .view => try evalView(node),
    }
}

/// node takes x's buffer (a reference) from byte `offset` on: a view, no copy.
pub fn share(node: *Node, x: *Node, offset: usize) void {
    x.buffer.?.retain();
    node.buffer = x.buffer;
    node.offset = offset;
}

/// The strides of `x` reshaped to `out` without a copy, or null when a copy is needed
/// (NumPy's rule: each group of input axes that merges or splits must be contiguous).
pub fn reshapeStrides(x: *const Node, out: *const Shape) ?[max_ndim]i64 {
    var res: [max_ndim]i64 = undefined;
    if (x.size() == 0) return out.rowStrides();
    var od: [max_ndim]i64 = undefined;
    var os: [max_ndim]i64 = undefined;
    var on: usize = 0;
    for (0..x.shape.ndim) |i| if (x.shape.dims[i] != 1) {
        od[on] = x.shape.dims[i];
        os[on] = x.strides[i];
        on += 1;
    };
    const nn = out.ndim;
    var oi: usize = 0;
    var oj: usize = 1;
    var ni: usize = 0;
    var nj: usize = 1;
    while (ni < nn and oi < on) {
        var np: i64 = out.dims[ni];
        var op: i64 = od[oi];
        while (np != op) {
            if (np < op) {
                np *= out.dims[nj];
                nj += 1;
            } else {
                op *= od[oj];
                oj += 1;
            }
        }
        for (oi..oj - 1) |k| if (os[k] != od[k + 1] * os[k + 1]) return null;
        res[nj - 1] = os[oj - 1];
        var k = nj - 1;
        while (k > ni) : (k -= 1) res[k - 1] = res[k] * out.dims[k];
        ni = nj;
        nj += 1;
        oi = oj;
        oj += 1;
    }
    // Trailing size-1 output axes.
    while (ni < nn) : (ni += 1) res[ni] = 1;
    return res;
}

fn evalReshape(node: *Node) errors.Error!void {
    const x = node.inputs[0];
    if (reshapeStrides(x, &node.shape)) |st| {
        share(node, x, x.offset);
        node.strides = st;
        return;
    }
    try primitives.allocOutput(node, null);
    copyInto(x, node.data());
}

fn evalTranspose(node: *Node, perm: *const [max_ndim]u8) void {
    const x = node.inputs[0];
    for (0..node.shape.ndim) |i| node.strides[i] = x.strides[perm[i]];
    share(node, x, x.offset);
}

fn evalSlice(node: *Node, s: Slice) void {
    const x = node.inputs[0];
    node.strides = x.strides;
    node.strides[s.axis] = x.strides[s.axis] * s.step;
    var off: i64 = @intCast(x.offset);
    if (node.size() > 0) off += @as(i64, s.start) * x.strides[s.axis] * @as(i64, @intCast(x.dtype.size()));
    share(node, x, @intCast(off));
}

fn evalAsStrided(node: *Node, offset: i64) errors.Error!void {
    const x = node.inputs[0];
    const bytes: usize = @intCast(offset * @as(i64, @intCast(x.dtype.size())));
    if (x.isRowContiguous()) {
        share(node, x, x.offset + bytes);
        return;
    }
    // A row-major copy of the input, then the view of it.
    const buf = try array.newBuffer(x.nbytes(), "as_strided");
    copyInto(x, buf.ptr);
    node.buffer = buf;
    node.offset = bytes;
}

fn isColContiguous(n: *const Node) bool {
    var st: i64 = 1;
    for (0..n.shape.ndim) |i| {
        if (n.shape.dims[i] != 1 and n.strides[i] != st) return false;
        st *|= n.shape.dims[i]; // saturating, as Node.isRowContiguous
    }
    return true;
}

fn evalContiguous(node: *Node, allow_col: bool) errors.Error!void {
    const x = node.inputs[0];
    if (x.isRowContiguous() or (allow_col and isColContiguous(x))) {
        node.strides = x.strides;
        share(node, x, x.offset);
        return;
    }
    try primitives.allocOutput(node, null);
    copyInto(x, node.data());
}

/// Copy evaluated `x` into `dst` as row-major data of its own dtype (in parallel for large arrays).
pub fn copyInto(x: *const Node, dst: [*]u8) void {
    convert.copyConvert(x, dst, x.dtype);
}

const grain = 1 << 15;
/// Marks an output index that takes the fill value in a remap.
const fill_mark: i64 = std.math.minInt(i64);

/// Copy elements of `shape` from src (strides in elements) to dst (strides in elements), both of
/// dtype `dtype` (elementwise.copyStrided's walks).
fn stridedCopy(dtype: Dtype, shape: *const Shape, src: [*]const u8, src_st: *const [max_ndim]i64, dst: [*]u8, dst_st: *const [max_ndim]i64) void {
    elementwise.copyStrided(dtype, shape, src, src_st, dtype, dst, dst_st);
}

fn evalConcatenate(node: *Node, axis: u8) errors.Error!void {
    try primitives.allocOutput(node, null);
    var at: i64 = 0;
    const isz: i64 = @intCast(node.dtype.size());
    for (node.inputs) |x| {
        const dst = node.data() + @as(usize, @intCast(at * node.strides[axis] * isz));
        stridedCopy(node.dtype, &x.shape, x.data(), &x.strides, dst, &node.strides);
        at += x.shape.dims[axis];
    }
}

fn evalRemap(node: *Node, r: *const Remap) errors.Error!void {
    const x = node.inputs[0];
    const ndim = node.shape.ndim;
    const kind = r.kind;
    var params: [max_ndim]i64 = undefined;
    for (0..ndim) |i| params[i] = r.params[i];
    // Per-axis maps: output index -> input element offset, or fill_mark for the fill value.
    // (Allocated before the output, so a failure leaves the node as it was, ready for a retry.)
    var total: usize = 0;
    for (0..ndim) |i| total += @intCast(node.shape.dims[i]);
    const maps = std.heap.c_allocator.alloc(i64, @max(total, 1)) catch
        return errors.fail(.out_of_memory, "[{s}] Out of memory.", .{node.prim.name()});
    defer std.heap.c_allocator.free(maps);
    try primitives.allocOutput(node, null);
    if (node.size() == 0) return;
    const x_empty = x.size() == 0;
    var starts: [max_ndim]usize = undefined;
    var pos: usize = 0;
    for (0..ndim) |i| {
        starts[i] = pos;
        const n: i64 = x.shape.dims[i];
        const lo = params[i];
        for (0..@intCast(node.shape.dims[i])) |o| {
            const oi: i64 = @intCast(o);
            const src: i64 = switch (kind) {
                .roll => @mod(oi - lo, n),
                .pad_constant => if (oi - lo >= 0 and oi - lo < n) oi - lo else -1,
                .pad_edge => std.math.clamp(oi - lo, 0, n - 1),
                .pad_reflect => reflectIndex(oi - lo, n, false),
                .pad_symmetric => reflectIndex(oi - lo, n, true),
            };
            // An element offset into the input, or the fill marker. An empty input (constant
            // padding of a zero-length axis) gives only fill values: its strides may be anything
            // (an as_strided view), so they are not multiplied out.
            maps[pos] = if (src < 0 or x_empty) fill_mark else src * x.strides[i];
            pos += 1;
        }
    }
    const fill: [*]const u8 = if (node.inputs.len > 1) node.inputs[1].data() else x.data();
    switch (node.dtype.size()) {
        inline 1, 2, 4, 8 => |w| {
            const T = std.meta.Int(.unsigned, w * 8);
            // Negative input strides reach below x.data(): index from the lowest element.
            var low: usize = 0;
            for (0..ndim) |i| if (!x_empty and x.strides[i] < 0 and x.shape.dims[i] > 1) {
                low += @intCast(-x.strides[i] * (x.shape.dims[i] - 1));
            };
            const src: [*]const T = @ptrCast(@alignCast(x.data()));
            remapT(T, node, src - low, @intCast(low), maps, &starts, @as(*const T, @ptrCast(@alignCast(fill))).*);
        },
        else => unreachable,
    }
}

/// Index of `i` (any integer) in [0, n) after reflecting at the ends: NumPy's reflect (edge not
/// repeated) or symmetric (edge repeated), applied repeatedly for wide pads.
fn reflectIndex(i: i64, n: i64, symmetric: bool) i64 {
    if (n == 1) return 0;
    if (symmetric) {
        const period = 2 * n;
        const m = @mod(i, period);
        return if (m < n) m else period - 1 - m;
    }
    const period = 2 * (n - 1);
    const m = @mod(i, period);
    return if (m < n) m else period - m;
}

fn remapT(comptime T: type, node: *Node, src: [*]const T, low: i64, maps: []const i64, starts: *const [max_ndim]usize, fill: T) void {
    const dst: [*]T = @ptrCast(@alignCast(node.data()));
    const ndim = node.shape.ndim;
    if (ndim == 0) {
        dst[0] = src[0];
        return;
    }
    const inner: usize = @intCast(node.shape.dims[ndim - 1]);
    const rows = node.size() / inner;
    const Job = struct {
        src: [*]const T,
        dst: [*]T,
        maps: []const i64,
        starts: *const [max_ndim]usize,
        shape: *const Shape,
        inner: usize,
        fill: T,
        low: i64,
        fn run(j: @This(), start: usize, end: usize) void {
            const nd = j.shape.ndim;
            const last = j.maps[j.starts[nd - 1]..][0..j.inner];
            for (start..end) |r| {
                var rem = r;
                var base: i64 = j.low;
                var k = nd - 1;
                while (k > 0) {
                    k -= 1;
                    const d: usize = @intCast(j.shape.dims[k]);
                    const m = j.maps[j.starts[k] + rem % d];
                    rem /= d;
                    base = if (m == fill_mark or base == fill_mark) fill_mark else base + m;
                }
                const o = j.dst + r * j.inner;
                if (base == fill_mark) {
                    @memset(o[0..j.inner], j.fill);
                    continue;
                }
                for (0..j.inner) |c| {
                    const m = last[c];
                    o[c] = if (m == fill_mark) j.fill else j.src[@intCast(base + m)];
                }
            }
        }
    };
    const job = Job{ .src = src, .dst = dst, .maps = maps, .starts = starts, .shape = &node.shape, .inner = inner, .fill = fill, .low = low };
    pool.parallelFor(rows, @max(1, grain / @max(inner, 1)), job, Job.run);
}

fn evalView(node: *Node) errors.Error!void {
    const x = node.inputs[0];
    if (node.dtype == .bool_) {
        // Zig (and C++) bools must hold 0 or 1: any other byte reads as true, so normalise.
        const tmp = try array.newBuffer(x.nbytes(), "view");
        defer tmp.release();
        try primitives.allocOutput(node, null);
        copyInto(x, tmp.ptr);
        const out = node.data();
        for (0..node.nbytes()) |i| out[i] = @intFromBool(tmp.ptr[i] != 0);
        return;
    }
    if (x.dtype.size() == node.dtype.size()) {
        node.strides = x.strides;
        share(node, x, x.offset);
        return;
    }
    if (x.isRowContiguous()) {
        node.setRowContiguousStrides();
        share(node, x, x.offset);
        return;
    }
    try primitives.allocOutput(node, null);
    copyInto(x, node.data());
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn ints(p: ?[*]const i32, n: u32, comptime op: []const u8) errors.Error![]const i32 {
    if (n == 0) return &.{};
    const ptr = p orelse return errors.fail(.invalid_argument, "[" ++ op ++ "] The axes pointer is null.", .{});
    if (n > 1 << 20) return errors.fail(.invalid_argument, "[" ++ op ++ "] Too many values ({d}).", .{n});
    return ptr[0..n];
}

fn reshapeAbi(a: u32, shape: ?[*]const i32, ndim: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "reshape") catch |e| break :blk e;
        const d = ints(shape, ndim, "reshape") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "reshape") catch |e| break :blk e;
        break :blk reshape(x, d, st);
    });
}

fn flattenAbi(a: u32, start: i32, end: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "flatten") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "flatten") catch |e| break :blk e;
        break :blk flatten(x, start, end, st);
    });
}

fn unflattenAbi(a: u32, axis: i32, shape: ?[*]const i32, ndim: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "unflatten") catch |e| break :blk e;
        const d = ints(shape, ndim, "unflatten") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "unflatten") catch |e| break :blk e;
        break :blk unflatten(x, axis, d, st);
    });
}

fn squeezeAbi(a: u32, axes: ?[*]const i32, naxes: u32, all: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "squeeze") catch |e| break :blk e;
        const d = ints(axes, naxes, "squeeze") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "squeeze") catch |e| break :blk e;
        break :blk squeeze(x, d, all != 0, st);
    });
}

fn expandDimsAbi(a: u32, axes: ?[*]const i32, naxes: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "expand_dims") catch |e| break :blk e;
        const d = ints(axes, naxes, "expand_dims") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "expand_dims") catch |e| break :blk e;
        break :blk expandDims(x, d, st);
    });
}

fn transposeAbi(a: u32, axes: ?[*]const i32, naxes: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "transpose") catch |e| break :blk e;
        const d = ints(axes, naxes, "transpose") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "transpose") catch |e| break :blk e;
        break :blk transpose(x, d, st);
    });
}

fn moveaxisAbi(a: u32, source: i32, destination: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "moveaxis") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "moveaxis") catch |e| break :blk e;
        break :blk moveaxis(x, source, destination, st);
    });
}

fn swapaxesAbi(a: u32, axis1: i32, axis2: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "swapaxes") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "swapaxes") catch |e| break :blk e;
        break :blk swapaxes(x, axis1, axis2, st);
    });
}

fn splitAbi(a: u32, sections: i32, indices: ?[*]const i32, nindices: i32, axis: i32, part: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "split") catch |e| break :blk e;
        const idx: ?[]const i32 = if (nindices < 0) null else (ints(indices, @intCast(nindices), "split") catch |e| break :blk e);
        const st = stream_mod.resolve(s, "split") catch |e| break :blk e;
        break :blk splitPart(x, sections, idx, axis, part, st);
    });
}

fn unstackAbi(a: u32, axis: i32, index: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "unstack") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "unstack") catch |e| break :blk e;
        break :blk unstackPart(x, axis, index, st);
    });
}

fn flipAbi(a: u32, axes: ?[*]const i32, naxes: u32, all: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "flip") catch |e| break :blk e;
        const d = ints(axes, naxes, "flip") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "flip") catch |e| break :blk e;
        break :blk flip(x, d, all != 0, st);
    });
}

fn broadcastAbi(a: u32, shape: ?[*]const i32, ndim: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "broadcast_to") catch |e| break :blk e;
        const sh = abi_util.shapeArg(shape, ndim, "broadcast_to") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "broadcast_to") catch |e| break :blk e;
        break :blk broadcastTo(x, sh, st);
    });
}

fn asStridedAbi(a: u32, shape: ?[*]const i32, ndim: u32, strides_p: ?*const anyopaque, nstrides: u32, offset: f64, s: i32) callconv(.c) u32 {
    const strides: ?[*]const i64 = @ptrCast(@alignCast(strides_p));
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "as_strided") catch |e| break :blk e;
        const sh = abi_util.shapeArg(shape, ndim, "as_strided") catch |e| break :blk e;
        if (nstrides > 0 and strides == null) break :blk errors.fail(.invalid_argument, "[as_strided] The strides pointer is null.", .{});
        if (nstrides > max_ndim) break :blk errors.fail(.invalid_argument, "[as_strided] Received {d} strides for a shape of {d} dimensions.", .{ nstrides, ndim });
        const sts: []const i64 = if (nstrides == 0) &.{} else strides.?[0..nstrides];
        if (!(offset >= 0 and offset < 9.0e18 and @floor(offset) == offset)) break :blk errors.fail(.invalid_argument, "[as_strided] The offset must be a non-negative integer.", .{});
        const st = stream_mod.resolve(s, "as_strided") catch |e| break :blk e;
        break :blk asStrided(x, sh, sts, @intFromFloat(offset), st);
    });
}

fn contiguousAbi(a: u32, allow_col_major: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "contiguous") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "contiguous") catch |e| break :blk e;
        break :blk contiguous(x, allow_col_major != 0, st);
    });
}

fn withNodes(hs: ?[*]const u32, n: u32, comptime op: []const u8, axis: i32, s: i32, comptime f: fn ([]const *Node, i32, u32) errors.Error!*Node) errors.Error!*Node {
    if (n > 1 << 20) return errors.fail(.invalid_argument, "[" ++ op ++ "] Too many arrays ({d}).", .{n});
    if (n > 0 and hs == null) return errors.fail(.invalid_argument, "[" ++ op ++ "] The handle list is null.", .{});
    const list = std.heap.c_allocator.alloc(*Node, @max(n, 1)) catch return errors.fail(.out_of_memory, "[" ++ op ++ "] Out of memory.", .{});
    defer std.heap.c_allocator.free(list);
    for (0..n) |i| list[i] = try handles.get(hs.?[i], op);
    const st = try stream_mod.resolve(s, op);
    return f(list[0..n], axis, st);
}

fn concatenateAbi(hs: ?[*]const u32, n: u32, axis: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(withNodes(hs, n, "concatenate", axis, s, concatenate));
}

fn stackAbi(hs: ?[*]const u32, n: u32, axis: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(withNodes(hs, n, "stack", axis, s, stack));
}

fn repeatAbi(a: u32, repeats: i32, axis: i32, has_axis: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "repeat") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "repeat") catch |e| break :blk e;
        break :blk repeat(x, repeats, if (has_axis != 0) axis else null, st);
    });
}

fn tileAbi(a: u32, reps: ?[*]const i32, nreps: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "tile") catch |e| break :blk e;
        const r = ints(reps, nreps, "tile") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "tile") catch |e| break :blk e;
        break :blk tile(x, r, st);
    });
}

fn padAbi(a: u32, lows: ?[*]const i32, highs: ?[*]const i32, n: u32, mode: u32, value: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "pad") catch |e| break :blk e;
        const lo = ints(lows, n, "pad") catch |e| break :blk e;
        const hi = ints(highs, n, "pad") catch |e| break :blk e;
        const m: PadMode = switch (mode) {
            0 => .constant,
            1 => .edge,
            2 => .reflect,
            3 => .symmetric,
            else => break :blk errors.fail(.invalid_argument, "Invalid padding mode ({d}) passed to pad", .{mode}),
        };
        const v: ?*Node = if (value == 0) null else (handles.get(value, "pad") catch |e| break :blk e);
        const st = stream_mod.resolve(s, "pad") catch |e| break :blk e;
        break :blk pad(x, lo, hi, m, v, st);
    });
}

/// axes_mode: 0 no axes (flattened), 1 one axis given as an int, 2 a list of axes.
fn rollAbi(a: u32, shifts: ?[*]const i32, nshifts: u32, axes: ?[*]const i32, naxes: u32, axes_mode: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "roll") catch |e| break :blk e;
        const sh = ints(shifts, nshifts, "roll") catch |e| break :blk e;
        const ax = ints(axes, naxes, "roll") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "roll") catch |e| break :blk e;
        if (axes_mode > 2) break :blk errors.fail(.invalid_argument, "[roll] axes_mode must be 0 (flattened), 1 (one axis) or 2 (axes); got {d}.", .{axes_mode});
        break :blk roll(x, sh, if (axes_mode == 0) null else ax, axes_mode == 1, st);
    });
}

fn viewAbi(a: u32, dtype: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "view") catch |e| break :blk e;
        const d = abi_util.dtypeArg(dtype, "view") catch |e| break :blk e;
        const st = stream_mod.resolve(s, "view") catch |e| break :blk e;
        break :blk view(x, d, st);
    });
}

/// This family's C ABI entries and enums (concatenated into the table in abi.zig).
pub const abi = [_]abi_util.Entry{
    abi_util.entry("reshape", reshapeAbi, &.{ "a", "shape", "ndim", "stream" }, "a reshaped (one -1 inferred): a view when the strides allow, else a copy."),
    abi_util.entry("flatten", flattenAbi, &.{ "a", "start_axis", "end_axis", "stream" }, "Axes start_axis..end_axis of a merged into one."),
    abi_util.entry("unflatten", unflattenAbi, &.{ "a", "axis", "shape", "ndim", "stream" }, "Axis of a split into shape (one -1 inferred)."),
    abi_util.entry("squeeze", squeezeAbi, &.{ "a", "axes", "naxes", "all", "stream" }, "a without the given size-1 axes (all: every size-1 axis)."),
    abi_util.entry("expand_dims", expandDimsAbi, &.{ "a", "axes", "naxes", "stream" }, "a with size-1 axes inserted at the given output positions."),
    abi_util.entry("transpose", transposeAbi, &.{ "a", "axes", "naxes", "stream" }, "a with its axes permuted (a view)."),
    abi_util.entry("moveaxis", moveaxisAbi, &.{ "a", "source", "destination", "stream" }, "a with one axis moved (a view)."),
    abi_util.entry("swapaxes", swapaxesAbi, &.{ "a", "axis1", "axis2", "stream" }, "a with two axes swapped (a view)."),
    abi_util.entry("split", splitAbi, &.{ "a", "sections", "indices", "nindices", "axis", "part", "stream" }, "Piece part of a split at indices (nindices >= 0) or into sections equal pieces (nindices < 0); a view."),
    abi_util.entry("unstack", unstackAbi, &.{ "a", "axis", "index", "stream" }, "Element index of a along axis, the axis removed (a view)."),
    abi_util.entry("flip", flipAbi, &.{ "a", "axes", "naxes", "all", "stream" }, "a reversed along the given axes (all: every axis); a view."),
    abi_util.entry("broadcast", broadcastAbi, &.{ "a", "shape", "ndim", "stream" }, "a broadcast to shape (a view), with MLX's messages."),
    abi_util.entry("as_strided", asStridedAbi, &.{ "a", "shape", "ndim", "strides", "nstrides", "offset", "stream" }, "A view of row-major a with shape, int64 element strides and an element offset."),
    abi_util.entry("contiguous", contiguousAbi, &.{ "a", "allow_col_major", "stream" }, "a as a row-contiguous (or, if allowed, column-contiguous) array; a copy only when needed."),
    abi_util.entry("concatenate", concatenateAbi, &.{ "arrays", "n", "axis", "stream" }, "Arrays joined along axis (dtypes promoted)."),
    abi_util.entry("stack", stackAbi, &.{ "arrays", "n", "axis", "stream" }, "Arrays of one shape stacked along a new axis (dtypes promoted)."),
    abi_util.entry("repeat", repeatAbi, &.{ "a", "repeats", "axis", "has_axis", "stream" }, "Each element of a repeated along axis (or of flattened a)."),
    abi_util.entry("tile", tileAbi, &.{ "a", "reps", "nreps", "stream" }, "a repeated reps times along each axis."),
    abi_util.entry("pad", padAbi, &.{ "a", "lows", "highs", "n", "mode", "value", "stream" }, "a padded per axis (enum mlxb_pad_mode); value fills constant padding."),
    abi_util.entry("roll", rollAbi, &.{ "a", "shifts", "nshifts", "axes", "naxes", "axes_mode", "stream" }, "a rolled (axes_mode 0: flattened; 1: one int axis; 2: per axis)."),
    abi_util.entry("view", viewAbi, &.{ "a", "dtype", "stream" }, "The bytes of a as another dtype (the last axis rescaled)."),
};

pub const abi_enums = .{
    .{ "pad_mode", PadMode },
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

fn values(n: *Node, out: []i32) !void {
    try eval_mod.ensure(n);
    convert.copyConvert(n, @ptrCast(out.ptr), .int32);
}

test "reshape is a view when strides allow and a copy otherwise" {
    const x = try iotaNode(&.{ 2, 3, 4 });
    defer array.release(x);
    const r = try reshape(x, &.{ 6, -1 }, 0);
    defer array.release(r);
    try eval_mod.ensure(r);
    try testing.expect(r.buffer == x.buffer);
    const t = try transpose(x, &.{ 2, 1, 0 }, 0);
    defer array.release(t);
    const f = try reshape(t, &.{24}, 0);
    defer array.release(f);
    var got: [24]i32 = undefined;
    try values(f, &got);
    try testing.expect(f.buffer != x.buffer);
    // transposed (4,3,2): element [k][j][i] = i*12 + j*4 + k
    try testing.expectEqual(@as(i32, 12), got[1]);
    try testing.expectEqual(@as(i32, 4), got[2]);
    // Splitting a transposed axis group stays a view.
    const g = try reshape(t, &.{ 2, 2, 3, 2 }, 0);
    defer array.release(g);
    try eval_mod.ensure(g);
    try testing.expect(g.buffer == x.buffer);
    try testing.expectError(error.Failed, reshape(x, &.{ 4, 2 }, 0));
    try testing.expectEqualStrings("[reshape] Cannot reshape array of size 24 into shape (4,2).", errors.messageSlice());
}

test "pad, roll and flip index maps" {
    try testing.expectEqual(@as(i64, 1), reflectIndex(-1, 3, false));
    try testing.expectEqual(@as(i64, 0), reflectIndex(-1, 3, true));
    try testing.expectEqual(@as(i64, 1), reflectIndex(3, 3, false));
    try testing.expectEqual(@as(i64, 2), reflectIndex(3, 3, true));
    const x = try iotaNode(&.{ 2, 3 });
    defer array.release(x);
    const f = try flip(x, &.{}, true, 0);
    defer array.release(f);
    var got: [6]i32 = undefined;
    try values(f, &got);
    try testing.expectEqualSlices(i32, &.{ 5, 4, 3, 2, 1, 0 }, &got);
    const r = try roll(x, &.{1}, &.{1}, false, 0);
    defer array.release(r);
    try values(r, &got);
    try testing.expectEqualSlices(i32, &.{ 2, 0, 1, 5, 3, 4 }, &got);
}

test "reshape of a broadcast array: a view when the stride-0 axis stays whole, else a copy" {
    const x = try iotaNode(&.{3});
    defer array.release(x);
    const b = try copy.broadcastTo(x, try Shape.fromSlice(&.{ 4, 3 }, "test"), 0);
    defer array.release(b);
    const v = try reshape(b, &.{ 2, 2, 3 }, 0);
    defer array.release(v);
    try eval_mod.ensure(v);
    try testing.expect(v.buffer == x.buffer);
    try testing.expectEqualSlices(i64, &.{ 0, 0, 1 }, v.strides[0..3]);
    const c = try reshape(b, &.{12}, 0);
    defer array.release(c);
    var got: [12]i32 = undefined;
    try values(c, &got);
    try testing.expect(c.buffer != x.buffer);
    try testing.expectEqualSlices(i32, &.{ 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2 }, &got);
}

test "as_strided refuses views outside the array; negative strides are views" {
    const x = try iotaNode(&.{6});
    defer array.release(x);
    try testing.expectError(error.Failed, asStrided(x, try Shape.fromSlice(&.{3}, "t"), &.{2}, 2, 0));
    try testing.expectEqualStrings("[as_strided] The view reaches elements 2 to 6, outside the array of size 6.", errors.messageSlice());
    try testing.expectError(error.Failed, asStrided(x, try Shape.fromSlice(&.{3}, "t"), &.{-1}, 1, 0));
    const r = try asStrided(x, try Shape.fromSlice(&.{3}, "t"), &.{-2}, 5, 0);
    defer array.release(r);
    var got: [3]i32 = undefined;
    try values(r, &got);
    try testing.expectEqualSlices(i32, &.{ 5, 3, 1 }, &got);
    try testing.expect(r.buffer == x.buffer);
    try testing.expectEqual(@as(i64, -2), r.strides[0]);
}

test "flip is a view with negative strides" {
    const x = try iotaNode(&.{ 2, 3 });
    defer array.release(x);
    const f = try flip(x, &.{}, true, 0);
    defer array.release(f);
    var got: [6]i32 = undefined;
    try values(f, &got);
    try testing.expectEqualSlices(i32, &.{ 5, 4, 3, 2, 1, 0 }, &got);
    try testing.expect(f.buffer == x.buffer);
}

test "concatenate promotes and copies each input into its place" {
    const a = try iotaNode(&.{ 2, 2 });
    defer array.release(a);
    const b = try array.createWithBuffer(.uint8, try Shape.fromSlice(&.{ 2, 1 }, "t"), 0, "t");
    defer array.release(b);
    b.data()[0] = 7;
    b.data()[1] = 9;
    const c = try concatenate(&.{ a, b }, -1, 0);
    defer array.release(c);
    try testing.expectEqual(Dtype.int32, c.dtype);
    var got: [6]i32 = undefined;
    try values(c, &got);
    try testing.expectEqualSlices(i32, &.{ 0, 1, 7, 2, 3, 9 }, &got);
}

test "negative-stride inputs (from other ops' views) copy, pad and concatenate correctly" {
    const x = try iotaNode(&.{ 2, 3 });
    defer array.release(x);
    // A reversed view of axis 1, as a negative-step slice makes it.
    const r = try sliceAxis(x, 1, 2, 3, -1, 0);
    defer array.release(r);
    const flat = try reshape(r, &.{6}, 0);
    defer array.release(flat);
    var got: [6]i32 = undefined;
    const c = try contiguous(flat, false, 0);
    defer array.release(c);
    try values(c, &got);
    try testing.expectEqualSlices(i32, &.{ 2, 1, 0, 5, 4, 3 }, &got);
    const p = try pad(r, &.{ 0, 1 }, &.{ 0, 0 }, .edge, null, 0);
    defer array.release(p);
    var got8: [8]i32 = undefined;
    const pc = try contiguous(p, false, 0);
    defer array.release(pc);
    try values(pc, &got8);
    try testing.expectEqualSlices(i32, &.{ 2, 2, 1, 0, 5, 5, 4, 3 }, &got8);
    const cat = try concatenate(&.{ r, x }, 1, 0);
    defer array.release(cat);
    var got12: [12]i32 = undefined;
    try values(cat, &got12);
    try testing.expectEqualSlices(i32, &.{ 2, 1, 0, 0, 1, 2, 5, 4, 3, 3, 4, 5 }, &got12);
}
