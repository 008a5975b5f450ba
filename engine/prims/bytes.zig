//! from_bytes: an array of any dtype made from the raw bytes of a uint8 array, copied at eval
//! time (optionally byte-swapped per element). The file loaders use it for data they cannot
//! view in place (misaligned for the dtype, or big-endian) so that loading stays lazy: the
//! uint8 input is a zero-copy view of the mapped file, and nothing is read until evaluation.
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const abi_util = @import("../abi_util.zig");
const convert = @import("../convert.zig");
const Dtype = @import("../dtype.zig").Dtype;
const Node = array.Node;
const Shape = array.Shape;

pub const FromBytes = struct {
    /// Reverse the bytes of each element (of each component, for complex64).
    swap: bool,
};

pub fn fromBytes(x: *Node, dtype: Dtype, shape: Shape, swap: bool, stream: u32) errors.Error!*Node {
    if (x.dtype != .uint8)
        return errors.fail(.invalid_argument, "[from_bytes] Expected a uint8 array of bytes, got {s}.", .{x.dtype.name()});
    const want = try shape.sizeChecked("from_bytes") * dtype.size();
    if (x.size() != want) {
        var b: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[from_bytes] {d} bytes cannot hold an array of shape {s} and dtype {s} ({d} bytes).", .{ x.size(), shape.format(&b), dtype.name(), want });
    }
    return array.create(dtype, shape, .{ .from_bytes = .{ .swap = swap } }, &.{x}, stream);
}

pub fn eval(node: *Node, p: FromBytes) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    const out = node.data();
    const n = node.nbytes();
    if (n == 0) return;
    // A byte copy: no alignment is assumed on either side; strided inputs are gathered.
    if (x.isRowContiguous()) @memcpy(out[0..n], x.data()[0..n]) else convert.copyConvert(x, out, .uint8);
    if (p.swap) {
        const w: usize = if (node.dtype == .complex64) 4 else node.dtype.size();
        var i: usize = 0;
        while (i + w <= n) : (i += w) std.mem.reverse(u8, out[i .. i + w]);
    }
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn fromBytesAbi(bytes: u32, dtype: u32, shape_p: ?[*]const i32, ndim: u32, swap: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(bytes, "from_bytes") catch |e| break :blk e;
        const d = abi_util.dtypeArg(dtype, "from_bytes") catch |e| break :blk e;
        const shape = abi_util.shapeArg(shape_p, ndim, "from_bytes") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "from_bytes") catch |e| break :blk e;
        break :blk fromBytes(x, d, shape, swap != 0, stream);
    });
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("array_from_bytes", fromBytesAbi, &.{ "bytes", "dtype", "shape", "ndim", "swap", "stream" }, "An array of dtype and shape made from the raw bytes of a uint8 array (copied at eval, byte-swapped per element if swap)."),
};

pub const abi_enums = .{};

// ---------------------------------------------------------------------------------------------
// Tests

const testing = std.testing;
const eval_mod = @import("../eval.zig");

fn bytesNode(bytes: []const u8) !*Node {
    const n = try array.createWithBuffer(.uint8, try Shape.fromSlice(&.{@intCast(bytes.len)}, "test"), 0, "test");
    @memcpy(n.data()[0..bytes.len], bytes);
    return n;
}

test "from_bytes copies (and swaps) raw bytes into an aligned array" {
    const raw = [_]u8{ 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40 };
    const x = try bytesNode(&raw);
    defer array.release(x);
    const f = try fromBytes(x, .float32, try Shape.fromSlice(&.{3}, "t"), false, 0);
    defer array.release(f);
    try eval_mod.ensure(f);
    const p: [*]const f32 = @ptrCast(@alignCast(f.data()));
    try testing.expectEqualSlices(f32, &.{ 1.0, 2.0, 3.0 }, p[0..3]);
    // Big-endian int16 pairs.
    const y = try fromBytes(x, .int16, try Shape.fromSlice(&.{ 2, 3 }, "t"), true, 0);
    defer array.release(y);
    try eval_mod.ensure(y);
    const q: [*]const i16 = @ptrCast(@alignCast(y.data()));
    try testing.expectEqual(@as(u16, 0x803f), @as(u16, @bitCast(q[1])));
    try testing.expectEqual(@as(i16, 0x0040), q[3]);
    try testing.expectEqual(@as(i16, 0x4040), q[5]);
}

test "from_bytes checks its input" {
    const x = try bytesNode(&.{ 1, 2, 3 });
    defer array.release(x);
    try testing.expectError(error.Failed, fromBytes(x, .float32, try Shape.fromSlice(&.{1}, "t"), false, 0));
    try testing.expect(std.mem.indexOf(u8, errors.messageSlice(), "3 bytes cannot hold") != null);
}
