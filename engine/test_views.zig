//! Test support shared by the families' Zig tests: views with negative strides built by hand
//! (as flip and negative-step slices make them) and reading any view's logical elements.
const std = @import("std");
const array = @import("array.zig");
const convert = @import("convert.zig");
const Node = array.Node;

/// A view of `base` sharing its buffer with the axes whose bit is set in `flip` reversed: their
/// strides negated, the data pointer at the view's element [0, ..., 0] (the last element along
/// each flipped axis).
pub fn flippedView(base: *Node, flip: u32) !*Node {
    const v = try array.create(base.dtype, base.shape, .leaf, &.{}, 0);
    base.buffer.?.retain();
    v.buffer = base.buffer;
    var off: i64 = 0;
    for (0..base.shape.ndim) |i| {
        v.strides[i] = base.strides[i];
        if (flip & (@as(u32, 1) << @intCast(i)) != 0) {
            off += (base.shape.dims[i] - 1) * base.strides[i];
            v.strides[i] = -base.strides[i];
        }
    }
    v.offset = base.offset + @as(usize, @intCast(off)) * base.dtype.size();
    return v;
}

/// The bit mask of `flippedView` from one flag per axis.
pub fn mask(flags: []const bool) u32 {
    var m: u32 = 0;
    for (flags, 0..) |f, i| {
        if (f) m |= @as(u32, 1) << @intCast(i);
    }
    return m;
}

/// The logical elements of a (possibly strided) node, in row-major order, by index arithmetic.
pub fn logical(comptime T: type, x: *const Node, out: []T) void {
    const base: [*]const T = @ptrCast(@alignCast(x.data()));
    for (0..x.size()) |i| {
        var rem = i;
        var off: i64 = 0;
        var d = x.shape.ndim;
        while (d > 0) {
            d -= 1;
            const n: usize = @intCast(x.shape.dims[d]);
            off += @as(i64, @intCast(rem % n)) * x.strides[d];
            rem /= n;
        }
        out[i] = convert.at(T, base, off).*;
    }
}
