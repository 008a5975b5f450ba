//! Matrix products: matmul and addmm (alpha * a @ b + beta * c), on our own GEMM (engine/gemm.zig).
//! MLX's rules, checked against mlx-cpu 0.32.4:
//!  * inputs promote to a common inexact dtype (float16, bfloat16, float32, float64, complex64);
//!    integer and bool products are refused ("Only inexact types are supported ...");
//!  * a 1-D first operand gains a leading 1 and a 1-D second operand a trailing 1, dropped from
//!    the result; 0-d operands are refused; batch dimensions broadcast as NumPy's;
//!  * float16/bfloat16 accumulate in float32 and round once; complex64 is four real products.
//! The graph holds the product on inputs already converted and broadcast (views), so the kernel
//! sees equal batch shapes and the vjp needs no unbroadcasting of its own: the broadcast and
//! astype nodes in front carry theirs.
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const abi_util = @import("../abi_util.zig");
const convert = @import("../convert.zig");
const gemm = @import("../gemm.zig");
const copy = @import("copy.zig");
const shape_ops = @import("shape.zig");
const ew = @import("elementwise.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

pub const Prim = union(enum) {
    /// inputs: a (..., m, k), b (..., k, n), equal batch shapes and dtypes.
    matmul,
    /// inputs: c (..., m, n), a, b; out = alpha * a @ b + beta * c.
    addmm: struct { alpha: f32, beta: f32 },

    pub fn name(p: Prim) []const u8 {
        return @tagName(p);
    }
};

// ---------------------------------------------------------------------------------------------
// Graph-building ops

fn shapeStr(s: *const Shape, buf: []u8) []const u8 {
    return s.format(buf);
}

/// The operands as the product node takes them: converted to `dt`, 1-D operands lifted to
/// matrices, batch dimensions broadcast to one shape. `out` gets the product's (lifted) shape.
const Prepared = struct {
    a: *Node,
    b: *Node,
    /// The result shape with the lifted 1s removed (what the user sees).
    final: Shape,
    /// The product's shape (..., m, n).
    full: Shape,
    dtype: Dtype,

    fn deinit(p: *Prepared) void {
        array.release(p.a);
        array.release(p.b);
    }
};

fn inexactDtype(a: Dtype, b: Dtype, op: []const u8) errors.Error!Dtype {
    const dt = dtype_mod.promote(a, b);
    if (!dt.isInexact())
        return errors.fail(.invalid_argument, "[{s}] Only inexact types are supported but {s} and {s} were provided which results in {s}, which is not a floating point type.", .{ op, a.name(), b.name(), dt.name() });
    return dt;
}

fn prepare(a_in: *Node, b_in: *Node, dt: Dtype, op: []const u8, stream: u32) errors.Error!Prepared {
    if (a_in.shape.ndim == 0 or b_in.shape.ndim == 0)
        return errors.fail(.invalid_argument, "[{s}] Got 0 dimension input. Inputs must have at least one dimension.", .{op});
    var as = a_in.shape;
    var bs = b_in.shape;
    if (as.ndim == 1) {
        as.dims[1] = as.dims[0];
        as.dims[0] = 1;
        as.ndim = 2;
    }
    if (bs.ndim == 1) {
        bs.dims[1] = 1;
        bs.ndim = 2;
    }
    const m = as.dims[as.ndim - 2];
    const k = as.dims[as.ndim - 1];
    const n = bs.dims[bs.ndim - 1];
    if (k != bs.dims[bs.ndim - 2]) {
        var b1: [256]u8 = undefined;
        var b2: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[{s}] Last dimension of first input with shape {s} must match second to last dimension of second input with shape {s}.", .{ op, as.format(&b1), bs.format(&b2) });
    }
    // Batch shapes broadcast (MLX's broadcast_shapes message on failure).
    var ab = Shape{ .ndim = as.ndim - 2 };
    @memcpy(ab.dims[0..ab.ndim], as.dims[0..ab.ndim]);
    var bb = Shape{ .ndim = bs.ndim - 2 };
    @memcpy(bb.dims[0..bb.ndim], bs.dims[0..bb.ndim]);
    const batch = try copy.broadcastShapes(&ab, &bb, "broadcast_shapes");
    var full = batch;
    full.ndim += 2;
    full.dims[batch.ndim] = m;
    full.dims[batch.ndim + 1] = n;
    _ = try full.sizeChecked(op);
    var final = Shape{ .ndim = 0 };
    for (0..batch.ndim) |i| {
        final.dims[final.ndim] = batch.dims[i];
        final.ndim += 1;
    }
    if (a_in.shape.ndim > 1) {
        final.dims[final.ndim] = m;
        final.ndim += 1;
    }
    if (b_in.shape.ndim > 1) {
        final.dims[final.ndim] = n;
        final.ndim += 1;
    }

    const lift = struct {
        fn f(x: *Node, want: Shape, d: Dtype, s: u32) errors.Error!*Node {
            const c = if (x.dtype == d) blk: {
                x.retain();
                break :blk x;
            } else try copy.astype(x, d, s);
            defer array.release(c);
            const r = if (c.shape.ndim != 1) blk: {
                c.retain();
                break :blk c;
            } else try shape_ops.reshape(c, want.slice()[want.ndim - 2 ..], s);
            defer array.release(r);
            return copy.broadcastTo(r, want, s);
        }
    }.f;
    var wa = batch;
    wa.ndim += 2;
    wa.dims[batch.ndim] = m;
    wa.dims[batch.ndim + 1] = k;
    var wb = batch;
    wb.ndim += 2;
    wb.dims[batch.ndim] = k;
    wb.dims[batch.ndim + 1] = n;
    const a = try lift(a_in, wa, dt, stream);
    errdefer array.release(a);
    const b = try lift(b_in, wb, dt, stream);
    return .{ .a = a, .b = b, .final = final, .full = full, .dtype = dt };
}

fn finish(node: *Node, p: *const Prepared, stream: u32) errors.Error!*Node {
    if (p.final.eql(&node.shape)) return node;
    defer array.release(node);
    return shape_ops.reshape(node, p.final.slice(), stream);
}

/// a @ b with MLX's rules.
pub fn matmul(a: *Node, b: *Node, stream: u32) errors.Error!*Node {
    const dt = try inexactDtype(a.dtype, b.dtype, "matmul");
    var p = try prepare(a, b, dt, "matmul", stream);
    defer p.deinit();
    const node = try array.create(dt, p.full, .{ .matmul = .matmul }, &.{ p.a, p.b }, stream);
    return finish(node, &p, stream);
}

/// alpha * (a @ b) + beta * c; c broadcasts to the product's shape.
pub fn addmm(c: *Node, a: *Node, b: *Node, alpha: f32, beta: f32, stream: u32) errors.Error!*Node {
    const dt = dtype_mod.promote(dtype_mod.promote(a.dtype, b.dtype), c.dtype);
    if (!dt.isInexact())
        return errors.fail(.invalid_argument, "[addmm] Only real floating point types are supported but {s}, {s} and {s} were provided which results in {s}, which is not a real floating point type.", .{ c.dtype.name(), a.dtype.name(), b.dtype.name(), dt.name() });
    // MLX checks the operand shapes as matmul first.
    var p = try prepare(a, b, dt, "addmm", stream);
    defer p.deinit();
    // c must broadcast to the (user-visible) output shape.
    const bshape = try copy.broadcastShapes(&c.shape, &p.final, "broadcast_shapes");
    if (!bshape.eql(&p.final))
        return errors.fail(.invalid_argument, "[addmm] input c must broadcast to the output shape", .{});
    const cc = if (c.dtype == dt) blk: {
        c.retain();
        break :blk c;
    } else try copy.astype(c, dt, stream);
    defer array.release(cc);
    const cf = try copy.broadcastTo(cc, p.final, stream);
    defer array.release(cf);
    const cl = try shape_ops.reshape(cf, p.full.slice(), stream);
    defer array.release(cl);
    const node = try array.create(dt, p.full, .{ .matmul = .{ .addmm = .{ .alpha = alpha, .beta = beta } } }, &.{ cl, p.a, p.b }, stream);
    return finish(node, &p, stream);
}

// ---------------------------------------------------------------------------------------------
// Kernels

fn Ptr(comptime S: type, node: *const Node) [*]S {
    return @ptrCast(@alignCast(node.data()));
}

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    const addmm_case = p == .addmm;
    const c_in: ?*Node = if (addmm_case) node.inputs[0] else null;
    const a = node.inputs[if (addmm_case) 1 else 0];
    const b = node.inputs[if (addmm_case) 2 else 1];
    var alpha: f32 = 1;
    var beta: f32 = 0;
    if (c_in) |c| {
        alpha = p.addmm.alpha;
        beta = p.addmm.beta;
        try primitives.allocOutput(node, c);
        // Unless c's buffer was donated, start from a row-contiguous copy of c.
        if (node.buffer != c.buffer) convert.copyConvert(c, node.data(), node.dtype);
    } else {
        try primitives.allocOutput(node, null);
    }
    switch (node.dtype) {
        .float32 => run(f32, f32, node, a, b, alpha, beta),
        .float64 => run(f64, f64, node, a, b, alpha, beta),
        .float16 => run(f32, dtype_mod.F16, node, a, b, alpha, beta),
        .bfloat16 => run(f32, dtype_mod.BF16, node, a, b, alpha, beta),
        .complex64 => runComplex(node, a, b, alpha, beta),
        else => unreachable, // refused when the node was built
    }
}

/// Element offsets of batch item `i` in x (batch dims are all but the last two).
pub fn batchOffset(x: *const Node, i: usize) isize {
    const nb = x.shape.ndim - 2;
    var rem = i;
    var off: isize = 0;
    var d = nb;
    while (d > 0) {
        d -= 1;
        const dim: usize = @intCast(x.shape.dims[d]);
        off += @as(isize, @intCast(rem % dim)) * @as(isize, @intCast(x.strides[d]));
        rem /= dim;
    }
    return off;
}

fn matOf(comptime S: type, x: *const Node, base: [*]S, i: usize) gemm.Mat(S) {
    const nd = x.shape.ndim;
    const off = batchOffset(x, i);
    const addr: isize = @as(isize, @intCast(@intFromPtr(base))) + off * @sizeOf(S);
    return .{ .ptr = @ptrFromInt(@as(usize, @intCast(addr))), .rs = @intCast(x.strides[nd - 2]), .cs = @intCast(x.strides[nd - 1]) };
}

fn dims(node: *const Node) struct { batch: usize, m: usize, n: usize } {
    const nd = node.shape.ndim;
    const m: usize = @intCast(node.shape.dims[nd - 2]);
    const n: usize = @intCast(node.shape.dims[nd - 1]);
    var batch: usize = 1;
    for (node.shape.dims[0 .. nd - 2]) |d| batch *= @intCast(d);
    return .{ .batch = batch, .m = m, .n = n };
}

fn run(comptime T: type, comptime S: type, node: *Node, a: *const Node, b: *const Node, alpha: f32, beta: f32) void {
    const d = dims(node);
    if (d.m == 0 or d.n == 0 or d.batch == 0) return;
    const k: usize = @intCast(a.shape.dims[a.shape.ndim - 1]);
    const Job = struct {
        node: *Node,
        a: *const Node,
        b: *const Node,
        m: usize,
        n: usize,
        k: usize,
        alpha: T,
        beta: T,
        parallel_inner: bool,
        fn one(j: *const @This(), i: usize) void {
            const am = matOf(S, j.a, Ptr(S, j.a), i);
            const bm = matOf(S, j.b, Ptr(S, j.b), i);
            const c = Ptr(S, j.node) + i * j.m * j.n;
            const cm = gemm.Mat(S){ .ptr = c, .rs = @intCast(j.n), .cs = 1 };
            if (j.parallel_inner)
                gemm.gemm(T, S, S, S, j.m, j.n, j.k, j.alpha, am, bm, j.beta, cm)
            else
                gemm.gemmSerial(T, S, S, S, j.m, j.n, j.k, j.alpha, am, bm, j.beta, cm);
        }
        fn range(j: *const @This(), s: usize, e: usize) void {
            for (s..e) |i| j.one(i);
        }
    };
    const work = d.m * d.n * @max(k, 1);
    // Many small products: one per worker; large ones: each product uses every core.
    const per_item = d.batch > 1 and work < 128 * 128 * 128;
    const job = Job{ .node = node, .a = a, .b = b, .m = d.m, .n = d.n, .k = k, .alpha = alpha, .beta = beta, .parallel_inner = !per_item };
    if (per_item) {
        pool.parallelFor(d.batch, @max(1, (64 * 64 * 64) / @max(work, 1)), &job, Job.range);
    } else {
        for (0..d.batch) |i| job.one(i);
    }
}

/// complex64: (ar + i ai)(br + i bi) as four real products on strided float32 views.
fn runComplex(node: *Node, a: *const Node, b: *const Node, alpha: f32, beta: f32) void {
    const d = dims(node);
    if (d.m == 0 or d.n == 0 or d.batch == 0) return;
    const k: usize = @intCast(a.shape.dims[a.shape.ndim - 1]);
    const M = gemm.Mat(f32);
    const parts = struct {
        fn f(x: *const Node, i: usize) [2]M {
            const base: [*]f32 = @ptrCast(@alignCast(x.data()));
            const m = matOf(f32, x, base, 0);
            const off = batchOffset(x, i) * 2;
            const re = M{ .ptr = offset(m.ptr, off), .rs = m.rs * 2, .cs = m.cs * 2 };
            return .{ re, .{ .ptr = offset(re.ptr, 1), .rs = re.rs, .cs = re.cs } };
        }
        fn offset(p: [*]f32, off: isize) [*]f32 {
            const addr: isize = @as(isize, @intCast(@intFromPtr(p))) + off * 4;
            return @ptrFromInt(@as(usize, @intCast(addr)));
        }
    };
    const cbase: [*]f32 = @ptrCast(@alignCast(node.data()));
    for (0..d.batch) |i| {
        const ap = parts.f(a, i);
        const bp = parts.f(b, i);
        const c0 = cbase + i * d.m * d.n * 2;
        const cr = M{ .ptr = c0, .rs = @intCast(d.n * 2), .cs = 2 };
        const ci = M{ .ptr = c0 + 1, .rs = cr.rs, .cs = 2 };
        gemm.gemm(f32, f32, f32, f32, d.m, d.n, k, alpha, ap[0], bp[0], beta, cr);
        gemm.gemm(f32, f32, f32, f32, d.m, d.n, k, -alpha, ap[1], bp[1], 1, cr);
        gemm.gemm(f32, f32, f32, f32, d.m, d.n, k, alpha, ap[0], bp[1], beta, ci);
        gemm.gemm(f32, f32, f32, f32, d.m, d.n, k, alpha, ap[1], bp[0], 1, ci);
    }
}

// ---------------------------------------------------------------------------------------------
// Transform rules (called from grad.zig and vmap.zig)

fn swapLast(x: *Node, s: u32) errors.Error!*Node {
    return shape_ops.swapaxes(x, -1, -2, s);
}

/// x^H for complex x (the conjugate transpose), x^T otherwise: MLX's cotangent convention.
fn adjoint(x: *Node, s: u32) errors.Error!*Node {
    const t = try swapLast(x, s);
    if (x.dtype != .complex64) return t;
    defer array.release(t);
    return ew.unary(.conj, t, s);
}

fn scaled(x: *Node, alpha: f32, s: u32) errors.Error!*Node {
    if (alpha == 1) return x;
    defer array.release(x);
    const c = try @import("../grad.zig").constant(alpha, x.dtype, s);
    defer array.release(c);
    return ew.binary(.multiply, x, c, s);
}

/// The cotangent of input `arg` of a product node given the output's cotangent g.
pub fn vjp(node: *Node, p: Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    const first: usize = if (p == .addmm) 1 else 0;
    const alpha: f32 = if (p == .addmm) p.addmm.alpha else 1;
    if (p == .addmm and arg == 0) {
        const beta = p.addmm.beta;
        g.retain();
        return scaled(g, beta, s);
    }
    const a = node.inputs[first];
    const b = node.inputs[first + 1];
    if (arg == first) {
        const bt = try adjoint(b, s);
        defer array.release(bt);
        return scaled(try matmul(g, bt, s), alpha, s);
    }
    const at = try adjoint(a, s);
    defer array.release(at);
    return scaled(try matmul(at, g, s), alpha, s);
}

/// The product rebuilt on batched inputs (batch axis first; null: not batched). The node's
/// inputs are at least 2-D with equal batch shapes, so an unbatched input broadcasts against
/// the batched ones by NumPy's right-aligned rule.
pub fn vmapRule(node: *Node, p: Prim, bx: []const ?*Node, s: u32) errors.Error!*Node {
    var ins: [3]*Node = undefined;
    for (node.inputs, 0..) |in, i| ins[i] = bx[i] orelse in;
    return switch (p) {
        .matmul => matmul(ins[0], ins[1], s),
        .addmm => |q| addmm(ins[0], ins[1], ins[2], q.alpha, q.beta, s),
    };
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn matmulAbi(a: u32, b: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "matmul") catch |e| break :blk e;
        const y = handles.get(b, "matmul") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "matmul") catch |e| break :blk e;
        break :blk matmul(x, y, stream);
    });
}

fn addmmAbi(c: u32, a: u32, b: u32, alpha: f64, beta: f64, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const z = handles.get(c, "addmm") catch |e| break :blk e;
        const x = handles.get(a, "addmm") catch |e| break :blk e;
        const y = handles.get(b, "addmm") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "addmm") catch |e| break :blk e;
        break :blk addmm(z, x, y, @floatCast(alpha), @floatCast(beta), stream);
    });
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("matmul", matmulAbi, &.{ "a", "b", "stream" }, "The matrix product a @ b (NumPy's rules for 1-D operands and batch broadcasting; inexact dtypes only)."),
    abi_util.entry("addmm", addmmAbi, &.{ "c", "a", "b", "alpha", "beta", "stream" }, "alpha * (a @ b) + beta * c, c broadcast to the product's shape."),
};

pub const abi_enums = .{};

// ---------------------------------------------------------------------------------------------
// Tests (the kernel itself is tested in gemm.zig; these check the op's shapes and messages)

const testing = std.testing;

test "matmul shapes and MLX's messages" {
    const s: u32 = 0;
    const a = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{ 2, 1, 2, 3 }, "t"), s, "t");
    defer array.release(a);
    const b = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{ 5, 3, 4 }, "t"), s, "t");
    defer array.release(b);
    const c = try matmul(a, b, s);
    defer array.release(c);
    try testing.expectEqualSlices(i32, &.{ 2, 5, 2, 4 }, c.shape.slice());
    try testing.expectError(error.Failed, matmul(b, a, s));
    try testing.expectEqualStrings("[matmul] Last dimension of first input with shape (5,3,4) must match second to last dimension of second input with shape (2,1,2,3).", errors.messageSlice());
    const v = try array.createWithBuffer(.int32, try Shape.fromSlice(&.{3}, "t"), s, "t");
    defer array.release(v);
    try testing.expectError(error.Failed, matmul(v, v, s));
    try testing.expectEqualStrings("[matmul] Only inexact types are supported but int32 and int32 were provided which results in int32, which is not a floating point type.", errors.messageSlice());
}
