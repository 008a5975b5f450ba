//! An array is a node of the lazy graph: shape, strides, byte offset, dtype, a shared buffer,
//! the primitive that computes it, its inputs and its status. Nodes and buffers are reference
//! counted (atomically: the JS thread, stream workers and the garbage collector's finalizers
//! all release them). Releasing a node frees its inputs iteratively, never recursively, so
//! dropping a graph of a million nodes cannot overflow the native stack.
const std = @import("std");
const Dtype = @import("dtype.zig").Dtype;
const alloc = @import("alloc.zig");
const errors = @import("errors.zig");
const Primitive = @import("primitives.zig").Primitive;

/// MLX has no rank limit; we keep shapes inline and name the limit.
pub const max_ndim = 32;

pub const Status = enum(u8) { unscheduled, scheduled, evaluated };

pub const Buffer = struct {
    refs: std.atomic.Value(u32),
    ptr: [*]u8,
    nbytes: usize,
    /// The allocator block behind `ptr`; size 0 when the memory is external (wrapped host memory).
    block: alloc.Block,
    /// Nonzero for wrapped host memory: reported back through `external.zig` when released.
    external_token: u32,
    /// Called once when the last reference goes (a DLPack producer's deleter; see dlpack.zig).
    on_release: ?OnRelease = null,

    pub const OnRelease = struct { func: *const fn (?*anyopaque) callconv(.c) void, ctx: ?*anyopaque };

    pub fn retain(buf: *Buffer) void {
        _ = buf.refs.fetchAdd(1, .monotonic);
    }

    pub fn release(buf: *Buffer) void {
        if (buf.refs.fetchSub(1, .acq_rel) != 1) return;
        if (buf.block.size != 0) alloc.free(buf.block);
        if (buf.external_token != 0) @import("external.zig").released(buf.external_token);
        if (buf.on_release) |r| r.func(r.ctx);
        std.heap.c_allocator.destroy(buf);
    }
};

pub fn newBuffer(nbytes: usize, op: []const u8) errors.Error!*Buffer {
    const block = try alloc.allocate(nbytes, op);
    const buf = std.heap.c_allocator.create(Buffer) catch {
        alloc.free(block);
        return errors.fail(.out_of_memory, "[{s}] Out of memory.", .{op});
    };
    buf.* = .{ .refs = .init(1), .ptr = block.ptr, .nbytes = nbytes, .block = block, .external_token = 0 };
    return buf;
}

pub fn externalBuffer(ptr: [*]u8, nbytes: usize, token: u32) errors.Error!*Buffer {
    const buf = std.heap.c_allocator.create(Buffer) catch
        return errors.fail(.out_of_memory, "[array] Out of memory.", .{});
    buf.* = .{ .refs = .init(1), .ptr = ptr, .nbytes = nbytes, .block = .{ .ptr = ptr, .size = 0 }, .external_token = token };
    return buf;
}

/// "(2,3)": a list of dimensions (or any i32 list) as MLX prints shapes in messages.
pub fn formatDims(dims: []const i32, buf: []u8) []const u8 {
    var w = std.Io.Writer.fixed(buf);
    w.writeByte('(') catch {};
    for (dims, 0..) |d, i| {
        if (i > 0) w.writeByte(',') catch {};
        w.print("{d}", .{d}) catch {};
    }
    w.writeByte(')') catch {};
    return w.buffered();
}

pub const Shape = struct {
    ndim: u8 = 0,
    dims: [max_ndim]i32 = undefined,

    pub fn slice(s: *const Shape) []const i32 {
        return s.dims[0..s.ndim];
    }

    /// Validates dimensions from the C ABI. `op` names the caller for messages.
    pub fn fromSlice(dims: []const i32, op: []const u8) errors.Error!Shape {
        if (dims.len > max_ndim)
            return errors.fail(.invalid_argument, "[{s}] Arrays of more than {d} dimensions are not supported (got {d}).", .{ op, max_ndim, dims.len });
        var s = Shape{ .ndim = @intCast(dims.len) };
        for (dims, 0..) |d, i| {
            if (d < 0) return errors.fail(.invalid_argument, "[{s}] Negative dimensions not allowed.", .{op});
            s.dims[i] = d;
        }
        _ = try s.sizeChecked(op);
        return s;
    }

    pub fn size(s: *const Shape) usize {
        var n: usize = 1;
        for (s.slice()) |d| n *= @intCast(d);
        return n;
    }

    /// The element count, failing if it (or its bytes at 8 per element) overflows.
    pub fn sizeChecked(s: *const Shape, op: []const u8) errors.Error!usize {
        var n: u64 = 1;
        for (s.slice()) |d| {
            if (d < 0) return errors.fail(.invalid_argument, "[{s}] Negative dimensions not allowed.", .{op});
            const m = @mulWithOverflow(n, @as(u64, @intCast(d)));
            if (m[1] != 0 or m[0] > (1 << 56)) return tooLarge(s, op);
            n = m[0];
        }
        return n;
    }

    fn tooLarge(s: *const Shape, op: []const u8) errors.Error {
        var buf: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[{s}] Shape {s} is too large: its size overflows.", .{ op, s.format(&buf) });
    }

    /// "(2,3)" as MLX prints shapes in messages ("(3)" for one dimension).
    pub fn format(s: *const Shape, buf: []u8) []const u8 {
        return formatDims(s.slice(), buf);
    }

    pub fn eql(a: *const Shape, b: *const Shape) bool {
        return std.mem.eql(i32, a.slice(), b.slice());
    }

    /// The row-major (C-contiguous) strides in elements. Saturating: an empty array may have
    /// huge other dimensions (0 x 2^31-1 x ...) whose product leaves i64; its strides are never
    /// used to reach an element.
    pub fn rowStrides(s: *const Shape) [max_ndim]i64 {
        var st: [max_ndim]i64 = undefined;
        var acc: i64 = 1;
        var i: usize = s.ndim;
        while (i > 0) {
            i -= 1;
            st[i] = acc;
            acc *|= s.dims[i];
        }
        return st;
    }
};

pub const Node = struct {
    refs: std.atomic.Value(u32),
    status: std.atomic.Value(Status),
    dtype: Dtype,
    shape: Shape,
    /// In elements; valid once the node is evaluated.
    strides: [max_ndim]i64 = undefined,
    /// In bytes from the start of the buffer; valid once evaluated.
    offset: usize = 0,
    buffer: ?*Buffer = null,
    prim: Primitive,
    inputs: []*Node = &.{},
    /// Other outputs of a multi-output primitive (not owned: siblings share one evaluation).
    siblings: []*Node = &.{},
    position: u32 = 0,
    stream: u32,
    /// Planning epoch, used by eval to visit each node once.
    mark: u32 = 0,
    /// Built from a transform's tracer: while a transform is tracing, eval keeps its inputs.
    tracer: bool = false,
    /// The longest chain of unevaluated work under the node when it was made (0 for data):
    /// eval computes the deepest input first, so shallow ones are made just before their use.
    depth: u32 = 0,

    pub fn size(n: *const Node) usize {
        return n.shape.size();
    }

    pub fn nbytes(n: *const Node) usize {
        return n.size() * n.dtype.size();
    }

    pub fn ndim(n: *const Node) usize {
        return n.shape.ndim;
    }

    pub fn retain(n: *Node) void {
        _ = n.refs.fetchAdd(1, .monotonic);
    }

    pub fn isEvaluated(n: *const Node) bool {
        return n.status.load(.acquire) == .evaluated;
    }

    /// Element pointer base (buffer + offset); the node must be evaluated.
    pub fn data(n: *const Node) [*]u8 {
        return n.buffer.?.ptr + n.offset;
    }

    pub fn setRowContiguousStrides(n: *Node) void {
        n.strides = n.shape.rowStrides();
    }

    pub fn isRowContiguous(n: *const Node) bool {
        var st: i64 = 1;
        var i: usize = n.shape.ndim;
        while (i > 0) {
            i -= 1;
            if (n.shape.dims[i] != 1 and n.strides[i] != st) return false;
            st *|= n.shape.dims[i]; // saturating, as Shape.rowStrides
        }
        return true;
    }

    /// Drop the graph behind an evaluated node: its inputs are no longer needed.
    pub fn detach(n: *Node) void {
        const ins = n.inputs;
        n.inputs = &.{};
        for (ins) |in| release(in);
        if (ins.len > 0) std.heap.c_allocator.free(ins);
        n.prim.deinit();
        n.prim = .leaf;
    }
};

var live_nodes = std.atomic.Value(usize).init(0);

/// How many transforms are tracing (grad inside grad counts twice).
var tracing = std.atomic.Value(u32).init(0);

pub fn traceBegin() void {
    _ = tracing.fetchAdd(1, .acq_rel);
}

/// Ends one traceBegin; an unmatched end (a C caller's mistake) leaves the count at zero.
pub fn traceEnd() void {
    var cur = tracing.load(.acquire);
    while (cur > 0) {
        cur = tracing.cmpxchgWeak(cur, cur - 1, .acq_rel, .acquire) orelse return;
    }
}

pub fn isTracing() bool {
    return tracing.load(.acquire) > 0;
}

/// Whether eval must keep this node's inputs (a tracer while a transform traces).
pub fn keepsGraph(n: *const Node) bool {
    return n.tracer and isTracing();
}

pub fn liveNodes() usize {
    return live_nodes.load(.monotonic);
}

/// Create a lazy node; takes a new reference on each input. The caller owns one reference.
pub fn create(dtype: Dtype, shape: Shape, prim: Primitive, inputs: []const *Node, stream: u32) errors.Error!*Node {
    // Every node's shape passes the size rule, whichever op computed it (an element count that
    // overflows would wrap in every byte computation after this).
    _ = try shape.sizeChecked(prim.name());
    const a = std.heap.c_allocator;
    const node = a.create(Node) catch return errors.fail(.out_of_memory, "[array] Out of memory.", .{});
    const ins = a.alloc(*Node, inputs.len) catch {
        a.destroy(node);
        return errors.fail(.out_of_memory, "[array] Out of memory.", .{});
    };
    for (inputs, ins) |in, *slot| {
        in.retain();
        slot.* = in;
    }
    // stop_gradient ends the trace: nothing after it is differentiated.
    var tracer = false;
    if (isTracing() and prim != .stop_gradient) for (inputs) |in| {
        tracer = tracer or in.tracer;
    };
    var depth: u32 = 0;
    if (prim != .leaf) {
        for (inputs) |in| {
            if (in.status.load(.monotonic) != .evaluated) depth = @max(depth, in.depth);
        }
        depth +|= 1;
    }
    node.* = .{
        .refs = .init(1),
        .status = .init(if (prim == .leaf) .evaluated else .unscheduled),
        .dtype = dtype,
        .shape = shape,
        .prim = prim,
        .inputs = ins,
        .stream = stream,
        .tracer = tracer,
        .depth = depth,
    };
    _ = live_nodes.fetchAdd(1, .monotonic);
    return node;
}

/// Create an evaluated node over a fresh row-contiguous buffer of its size.
pub fn createWithBuffer(dtype: Dtype, shape: Shape, stream: u32, op: []const u8) errors.Error!*Node {
    const node = try create(dtype, shape, .leaf, &.{}, stream);
    node.buffer = newBuffer(node.nbytes(), op) catch |e| {
        release(node);
        return e;
    };
    node.setRowContiguousStrides();
    return node;
}

/// Release one reference; frees the node and, iteratively, every input it was the last holder of.
pub fn release(first: *Node) void {
    if (first.refs.fetchSub(1, .acq_rel) != 1) return;
    // Explicit worklist: the nodes whose count reached zero.
    var stack_buf: [64]*Node = undefined;
    var stack = std.ArrayList(*Node).initBuffer(&stack_buf);
    var heap: std.ArrayList(*Node) = .empty;
    defer heap.deinit(std.heap.c_allocator);
    stack.appendAssumeCapacity(first);
    while (true) {
        const n = stack.pop() orelse heap.pop() orelse break;
        for (n.inputs) |in| {
            if (in.refs.fetchSub(1, .acq_rel) == 1) {
                if (stack.items.len < stack_buf.len) {
                    stack.appendAssumeCapacity(in);
                } else {
                    // Out of memory here would leak the subgraph rather than crash.
                    heap.append(std.heap.c_allocator, in) catch {};
                }
            }
        }
        if (n.inputs.len > 0) std.heap.c_allocator.free(n.inputs);
        n.prim.deinit();
        if (n.buffer) |b| b.release();
        std.heap.c_allocator.destroy(n);
        _ = live_nodes.fetchSub(1, .monotonic);
    }
}

test "a long chain is released without recursion" {
    const base = liveNodes();
    var cur = try create(.float32, .{}, .leaf, &.{}, 0);
    var i: usize = 0;
    while (i < 200_000) : (i += 1) {
        const next = try create(.float32, .{}, .astype, &.{cur}, 0);
        release(cur);
        cur = next;
    }
    try std.testing.expectEqual(base + 200_001, liveNodes());
    release(cur);
    try std.testing.expectEqual(base, liveNodes());
}

test "shape validation" {
    try std.testing.expectError(error.Failed, Shape.fromSlice(&.{ 2, -1 }, "zeros"));
    try std.testing.expectEqualStrings("[zeros] Negative dimensions not allowed.", errors.messageSlice());
    try std.testing.expectError(error.Failed, Shape.fromSlice(&.{ 1 << 30, 1 << 30, 1 << 30 }, "zeros"));
    try std.testing.expectEqualStrings("[zeros] Shape (1073741824,1073741824,1073741824) is too large: its size overflows.", errors.messageSlice());
    const s = try Shape.fromSlice(&.{5}, "x");
    var buf: [32]u8 = undefined;
    try std.testing.expectEqualStrings("(5)", s.format(&buf));
}
