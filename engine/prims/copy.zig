//! Conversions and views: astype (a converting copy) and broadcast (a view: no data moves).
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const primitives = @import("../primitives.zig");
const Dtype = @import("../dtype.zig").Dtype;
const Node = array.Node;
const Shape = array.Shape;

/// `astype`: the same array if the dtype already matches, as in MLX.
pub fn astype(x: *Node, dtype: Dtype, stream: u32) errors.Error!*Node {
    if (x.dtype == dtype) {
        x.retain();
        return x;
    }
    return array.create(dtype, x.shape, .astype, &.{x}, stream);
}

pub fn evalAstype(node: *Node) errors.Error!void {
    const x = node.inputs[0];
    // Same element size: convert in place when x's buffer is free to take.
    try primitives.allocOutput(node, if (x.dtype.size() == node.dtype.size()) x else null);
    convert.copyConvert(x, node.data(), node.dtype);
}

/// The shape two shapes broadcast to, or MLX's error.
pub fn broadcastShapes(a: *const Shape, b: *const Shape, op: []const u8) errors.Error!Shape {
    var out = Shape{ .ndim = @max(a.ndim, b.ndim) };
    var i: usize = 0;
    while (i < out.ndim) : (i += 1) {
        const da: i32 = if (i < a.ndim) a.dims[a.ndim - 1 - i] else 1;
        const db: i32 = if (i < b.ndim) b.dims[b.ndim - 1 - i] else 1;
        if (da != db and da != 1 and db != 1) {
            var ba: [256]u8 = undefined;
            var bb: [256]u8 = undefined;
            return errors.fail(.invalid_argument, "[{s}] Shapes {s} and {s} cannot be broadcast.", .{ op, a.format(&ba), b.format(&bb) });
        }
        out.dims[out.ndim - 1 - i] = if (da == 1) db else da;
    }
    return out;
}

pub fn broadcastTo(x: *Node, shape: Shape, stream: u32) errors.Error!*Node {
    if (x.shape.eql(&shape)) {
        x.retain();
        return x;
    }
    // MLX's order of checks and messages: more dimensions than the target first, then shapes.
    if (x.shape.ndim > shape.ndim) {
        var ba: [256]u8 = undefined;
        var bb: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[broadcast_to] Cannot broadcast array of shape {s} into shape {s}.", .{ x.shape.format(&ba), shape.format(&bb) });
    }
    const bshape = try broadcastShapes(&x.shape, &shape, "broadcast_shapes");
    if (!bshape.eql(&shape)) {
        var ba: [256]u8 = undefined;
        var bb: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[broadcast_to] Cannot broadcast array of shape {s} into shape {s}.", .{ x.shape.format(&ba), shape.format(&bb) });
    }
    return array.create(x.dtype, shape, .broadcast, &.{x}, stream);
}

pub fn evalBroadcast(node: *Node) void {
    const x = node.inputs[0];
    const lead = node.shape.ndim - x.shape.ndim;
    for (0..node.shape.ndim) |i| {
        if (i < lead) {
            node.strides[i] = 0;
        } else {
            const j = i - lead;
            node.strides[i] = if (x.shape.dims[j] == 1 and node.shape.dims[i] != 1) 0 else x.strides[j];
        }
    }
    x.buffer.?.retain();
    node.buffer = x.buffer;
    node.offset = x.offset;
}

/// stop_gradient: the identity (a view), a node of its own so that transforms stop there.
pub fn stopGradient(x: *Node, stream: u32) errors.Error!*Node {
    return array.create(x.dtype, x.shape, .stop_gradient, &.{x}, stream);
}

/// depends: `x` (a view) that evaluates only after every array of `deps` is evaluated.
pub fn depends(x: *Node, deps: []const *Node, stream: u32) errors.Error!*Node {
    const a = std.heap.c_allocator;
    const ins = a.alloc(*Node, deps.len + 1) catch return errors.fail(.out_of_memory, "[depends] Out of memory.", .{});
    defer a.free(ins);
    ins[0] = x;
    @memcpy(ins[1..], deps);
    return array.create(x.dtype, x.shape, .depends, ins, stream);
}

/// The identity primitives (stop_gradient, depends): the node shares its first input's data.
pub fn evalIdentity(node: *Node) void {
    const x = node.inputs[0];
    node.strides = x.strides;
    x.buffer.?.retain();
    node.buffer = x.buffer;
    node.offset = x.offset;
}
