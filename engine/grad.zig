//! Reverse-mode differentiation of the recorded graph: `vjp`, and the vjp rule of every
//! primitive, written with graph-building ops so that the results can be differentiated again.
//!
//! The host runs the user's function on tracers (identity nodes over the primal inputs, made
//! while tracing is on); every node built from a tracer is a tracer too and keeps its inputs
//! when evaluated during the trace (eval does not detach it), so the graph from the inputs to
//! the outputs is still there when `vjp` walks it backwards.
const std = @import("std");
const eval_mod = @import("eval.zig");
const array = @import("array.zig");
const errors = @import("errors.zig");
const convert = @import("convert.zig");
const prims = @import("primitives.zig");
const dtype_mod = @import("dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

const ew = prims.elementwise;
const red = prims.reduce;
const shp = prims.shape;
const cp = prims.copy;
const ix = prims.indexing;
const srt = prims.sort;

const a_ = std.heap.c_allocator;
const handles = @import("handles.zig");
const external = @import("external.zig");

// ---------------------------------------------------------------------------------------------
// Multi-result calls: the handles of the last call's results on this thread, until taken.

threadlocal var results: std.ArrayList(u32) = .empty;

pub fn clearResults() void {
    for (results.items) |h| {
        if (h != 0) handles.free(h) catch {};
    }
    results.clearRetainingCapacity();
}

/// Hand a node (taking the caller's reference) to the host as the next result.
pub fn pushResult(n: *Node) errors.Error!void {
    results.ensureUnusedCapacity(a_, 1) catch {
        array.release(n);
        return errors.fail(.out_of_memory, "[results] Out of memory.", .{});
    };
    const h = handles.put(n) catch |e| {
        array.release(n);
        return e;
    };
    results.appendAssumeCapacity(h);
}

pub fn takeResult(i: u32) u32 {
    if (i >= results.items.len) return 0;
    const h = results.items[i];
    results.items[i] = 0;
    return h;
}

// ---------------------------------------------------------------------------------------------
// Custom functions: outputs whose vjp is a host callback.

/// One call of a custom function: its outputs are `n_out` custom nodes (one per output) that
/// share this record. The host knows the call by `token` (returned through external.zig when
/// the record goes, so the host can forget its rule).
pub const CustomCall = struct {
    refs: std.atomic.Value(u32),
    token: u32,
    /// The forward values (stop-gradient'd), one per output, held for the rule's `outputs`.
    values: []*Node,

    pub fn release(c: *CustomCall) void {
        if (c.refs.fetchSub(1, .acq_rel) != 1) return;
        for (c.values) |v| array.release(v);
        a_.free(c.values);
        external.released(c.token);
        a_.destroy(c);
    }
};

pub const CustomOut = struct { call: *CustomCall, index: u32 };

/// int (*)(uint32_t token, uint32_t n_outputs): the host's vjp for a custom call. Called on the
/// thread running vjp, with the results list holding the n_outputs cotangents, the primals and
/// the n_outputs forward values; it hands back one cotangent per primal through custom_return
/// and returns 0, or nonzero if the rule failed (the host keeps its own exception).
pub const VjpCallback = *const fn (u32, u32) callconv(.c) i32;
// Per thread: each JS thread (the main one, every Bun Worker) registers its own callback, and a
// rule runs on the thread that runs the transform, so it never calls into another thread's JS.
pub threadlocal var custom_vjp_callback: ?VjpCallback = null;

/// int (*)(uint32_t token, uint32_t n_outputs, uint32_t batch, uint32_t mapped): the host's vmap
/// rule for a custom call. Called during vmap with the results list holding the call's inputs
/// (input i carries the batch axis first when bit i of `mapped` is set); it hands back n_outputs
/// outputs, batch axis first, through custom_return and returns 0; 2 when the function has no
/// vmap rule (the body is vmapped instead); other nonzero if the rule failed.
pub const VmapCallback = *const fn (u32, u32, u32, u32) callconv(.c) i32;
pub threadlocal var custom_vmap_callback: ?VmapCallback = null;

threadlocal var returns: std.ArrayList(*Node) = .empty;

pub fn customReturn(n: *Node) errors.Error!void {
    returns.append(a_, n) catch return errors.fail(.out_of_memory, "[custom_function] Out of memory.", .{});
    n.retain();
}

/// The outputs of a custom function call: one node per forward value, each an identity of
/// its value whose inputs also include the primals (so transforms reach them through it).
pub fn customOutputs(token: u32, values: []const *Node, primals: []const *Node, stream: u32) errors.Error!void {
    const call = a_.create(CustomCall) catch return errors.fail(.out_of_memory, "[custom_function] Out of memory.", .{});
    const vals = a_.alloc(*Node, values.len) catch {
        a_.destroy(call);
        return errors.fail(.out_of_memory, "[custom_function] Out of memory.", .{});
    };
    for (values, vals) |v, *slot| {
        v.retain();
        slot.* = v;
    }
    call.* = .{ .refs = .init(1), .token = token, .values = vals };
    defer call.release(); // each output holds its own reference
    const ins = a_.alloc(*Node, primals.len + 1) catch return errors.fail(.out_of_memory, "[custom_function] Out of memory.", .{});
    defer a_.free(ins);
    @memcpy(ins[1..], primals);
    clearResults();
    for (values, 0..) |v, k| {
        ins[0] = v;
        _ = call.refs.fetchAdd(1, .monotonic);
        const node = array.create(v.dtype, v.shape, .{ .custom = .{ .call = call, .index = @intCast(k) } }, ins, stream) catch |e| {
            call.release();
            return e;
        };
        try pushResult(node);
    }
}

// ---------------------------------------------------------------------------------------------
// Building blocks (each returns a node the caller owns)

/// Temporaries of one rule, released together.
const Tmp = struct {
    list: [48]*Node = undefined,
    n: usize = 0,

    fn add(t: *Tmp, node: *Node) *Node {
        if (t.n == t.list.len) @panic("grad: too many temporaries in one rule");
        t.list[t.n] = node;
        t.n += 1;
        return node;
    }

    fn deinit(t: *Tmp) void {
        for (t.list[0..t.n]) |n| array.release(n);
        t.n = 0;
    }
};

/// A 0-d array of `value` in `dtype`.
pub fn constant(value: f64, dtype: Dtype, stream: u32) errors.Error!*Node {
    const node = try array.createWithBuffer(dtype, .{}, stream, "array");
    switch (dtype) {
        inline else => |d| @as(*d.Type(), @ptrCast(@alignCast(node.data()))).* = convert.cast(.float64, d, value),
    }
    return node;
}

/// For masked_scatter: at every position of `mask` (bool), the index into the source of the
/// latest true position up to it along `axis` (the k-th true reads source element k; positions
/// before the first true get 0). A single-element source is read at 0 everywhere. The indices
/// carry no gradient (stop_gradient'ed: the mask may have been computed from a traced value).
pub fn maskedSourceIndex(mask: *Node, axis: i32, n_src: usize, s: u32) errors.Error!*Node {
    const zero = try constant(0, .int32, s);
    defer array.release(zero);
    if (n_src == 1) return cp.broadcastTo(zero, mask.shape, s);
    const m = try cp.stopGradient(mask, s);
    defer array.release(m);
    const ones = try cp.astype(m, .int32, s);
    defer array.release(ones);
    const count = try prims.sort.scan(.sum, ones, axis, false, true, .int32, s);
    defer array.release(count);
    const one = try constant(1, .int32, s);
    defer array.release(one);
    const before = try ew.binary(.subtract, count, one, s);
    defer array.release(before);
    return ew.binary(.maximum, before, zero, s);
}

fn zerosLike(x: *const Node, stream: u32) errors.Error!*Node {
    const z = try constant(0, x.dtype, stream);
    defer array.release(z);
    return cp.broadcastTo(z, x.shape, stream);
}

fn retained(x: *Node) *Node {
    x.retain();
    return x;
}

/// `g` summed down to `shape` (undoing a broadcast): leading axes summed away, axes where
/// `shape` has 1 summed with keepdims.
pub fn unbroadcast(g: *Node, shape: *const Shape, stream: u32) errors.Error!*Node {
    if (g.shape.eql(shape)) return retained(g);
    var axes: [max_ndim]i32 = undefined;
    var n: usize = 0;
    const lead = g.shape.ndim - shape.ndim;
    for (0..g.shape.ndim) |i| {
        if (i < lead or (shape.dims[i - lead] == 1 and g.shape.dims[i] != 1)) {
            axes[n] = @intCast(i);
            n += 1;
        }
    }
    const s = try red.reduce(.sum, g, axes[0..n], true, stream);
    defer array.release(s);
    const r = try shp.reshape(s, shape.slice(), stream);
    defer array.release(r);
    // sum promotes small integers; the gradient keeps g's dtype.
    return cp.astype(r, g.dtype, stream);
}

/// `g` (the reduced shape, keepdims or not) broadcast back to `x`'s shape over the axes in `set`.
fn expandReduced(g: *Node, x: *const Node, set: u32, stream: u32) errors.Error!*Node {
    var dims: [max_ndim]i32 = undefined;
    for (0..x.shape.ndim) |i| dims[i] = if (set & (@as(u32, 1) << @intCast(i)) != 0) 1 else x.shape.dims[i];
    const r = try shp.reshape(g, dims[0..x.shape.ndim], stream);
    defer array.release(r);
    return cp.broadcastTo(r, x.shape, stream);
}

// ---------------------------------------------------------------------------------------------
// The vjp rules: the cotangent of input `arg` of `node`, given the cotangent `g` of its output.

fn vjpRule(node: *Node, arg: usize, g: *Node, stream: u32) errors.Error!*Node {
    if (!conjugatesCotangent(node, arg)) return vjpRuleOf(node, arg, g, stream);
    // MLX's convention for complex values: the cotangent of z is g * conj(f'(z)). The rules
    // below are written as g * f'(z); both are linear in g, so conj(rule(conj(g))) is MLX's.
    const gc = if (g.dtype == .complex64) try ew.unary(.conj, g, stream) else retained(g);
    defer array.release(gc);
    const r = try vjpRuleOf(node, arg, gc, stream);
    if (r.dtype != .complex64) return r;
    defer array.release(r);
    return ew.unary(.conj, r, stream);
}

/// Whether `node`'s rule for input `arg` is a complex derivative that MLX conjugates: the
/// elementwise ops (but abs, whose rule is already g * z / |z|) and reductions, when a complex
/// value is involved. (The fft, linalg and matmul rules follow MLX's convention themselves:
/// matmul's multiplies g by the other operand's conjugate transpose.)
fn conjugatesCotangent(node: *const Node, arg: usize) bool {
    if (node.dtype != .complex64 and node.inputs[arg].dtype != .complex64) return false;
    return switch (node.prim) {
        .elementwise => |e| switch (e) {
            .unary => |op| op != .abs,
            else => true,
        },
        .reduce => true,
        else => false,
    };
}

fn vjpRuleOf(node: *Node, arg: usize, g: *Node, stream: u32) errors.Error!*Node {
    var t = Tmp{};
    defer t.deinit();
    const x = node.inputs[0];
    switch (node.prim) {
        .leaf, .arange, .linspace, .eye, .tri => unreachable, // no inputs
        .astype => return cp.astype(g, x.dtype, stream),
        .broadcast => return unbroadcast(g, &x.shape, stream),
        .stop_gradient => unreachable, // the walk does not enter it
        .depends => return if (arg == 0) retained(g) else zerosLike(node.inputs[arg], stream),
        .tri_mask => |m| return prims.creation.triMask(g, m.k, m.upper, stream),
        .elementwise => |e| return elementwiseVjp(&t, node, e, arg, g, stream),
        .reduce => |r| return reduceVjp(&t, node, r, arg, g, stream),
        .shape => |s| return shapeVjp(&t, node, s, arg, g, stream),
        .sort => |p| return if (arg == 0) sortVjp(&t, node, p, g, stream) else zerosLike(node.inputs[arg], stream),
        .indexing => |p| return indexingVjp(&t, node, p, arg, g, stream),
        // Random bits are not differentiable: the key gets zeros.
        .random => return zerosLike(x, stream),
        .matmul => |p| return prims.matmul.vjp(node, p, arg, g, stream),
        .from_bytes => return zerosLike(x, stream), // raw bytes are not differentiable
        .quantized => |p| return prims.quantized.vjp(node, p, arg, g, stream),
        .fft => |p| return prims.fft.vjp(node, p, g, stream),
        .linalg => |p| return prims.linalg.vjp(node, p, arg, g, stream),
        .conv => |p| return prims.conv.vjp(node, p, arg, g, stream),
        .fast => |p| return prims.fast.vjp(node, p, arg, g, stream),
        .custom => unreachable, // the walk runs the host's rule for the whole call
        .fused => |f| return prims.fused.vjp(node, f, arg, g, stream),
    }
}

fn notDifferentiable(node: *const Node) errors.Error {
    return errors.fail(.invalid_argument, "[{s}] The vjp of this primitive is not implemented yet.", .{node.prim.name()});
}

fn elementwiseVjp(t: *Tmp, node: *Node, e: ew.Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    const x = node.inputs[0];
    const y = node;
    const dt = g.dtype;
    const c = struct {
        fn k(tt: *Tmp, v: f64, d: Dtype, st: u32) errors.Error!*Node {
            return tt.add(try constant(v, d, st));
        }
    }.k;
    const u = struct {
        fn f(tt: *Tmp, op: ew.UnaryOp, a: *Node, st: u32) errors.Error!*Node {
            return tt.add(try ew.unary(op, a, st));
        }
    }.f;
    const b = struct {
        fn f(tt: *Tmp, op: ew.BinaryOp, p: *Node, q: *Node, st: u32) errors.Error!*Node {
            return tt.add(try ew.binary(op, p, q, st));
        }
    }.f;
    switch (e) {
        .unary => |op| {
            const r: *Node = switch (op) {
                .abs => try b(t, .multiply, g, try u(t, .sign, x, s), s),
                .negative => try u(t, .negative, g, s),
                .square => try b(t, .multiply, g, try b(t, .multiply, x, try c(t, 2, dt, s), s), s),
                .sqrt => try b(t, .divide, g, try b(t, .multiply, y, try c(t, 2, dt, s), s), s),
                // d/dx x^-1/2 = -1/2 x^-3/2 = -y / (2x)
                .rsqrt => try b(t, .multiply, g, try b(t, .divide, try u(t, .negative, y, s), try b(t, .multiply, x, try c(t, 2, dt, s), s), s), s),
                .reciprocal => try b(t, .multiply, g, try u(t, .negative, try b(t, .multiply, y, y, s), s), s),
                .exp => try b(t, .multiply, g, y, s),
                .expm1 => try b(t, .multiply, g, try b(t, .add, y, try c(t, 1, dt, s), s), s),
                .erf => try b(t, .multiply, g, try b(t, .multiply, try c(t, 2.0 / @sqrt(std.math.pi), dt, s), try u(t, .exp, try u(t, .negative, try u(t, .square, x, s), s), s), s), s),
                .erfinv => try b(t, .multiply, g, try b(t, .multiply, try c(t, @sqrt(std.math.pi) / 2.0, dt, s), try u(t, .exp, try u(t, .square, y, s), s), s), s),
                .sin => try b(t, .multiply, g, try u(t, .cos, x, s), s),
                .cos => try b(t, .multiply, g, try u(t, .negative, try u(t, .sin, x, s), s), s),
                .tan => try b(t, .divide, g, try u(t, .square, try u(t, .cos, x, s), s), s),
                .arcsin => try b(t, .multiply, g, try u(t, .rsqrt, try b(t, .subtract, try c(t, 1, dt, s), try u(t, .square, x, s), s), s), s),
                .arccos => try u(t, .negative, try b(t, .multiply, g, try u(t, .rsqrt, try b(t, .subtract, try c(t, 1, dt, s), try u(t, .square, x, s), s), s), s), s),
                .arctan => try b(t, .divide, g, try b(t, .add, try c(t, 1, dt, s), try u(t, .square, x, s), s), s),
                .sinh => try b(t, .multiply, g, try u(t, .cosh, x, s), s),
                .cosh => try b(t, .multiply, g, try u(t, .sinh, x, s), s),
                .tanh => try b(t, .multiply, g, try b(t, .subtract, try c(t, 1, dt, s), try u(t, .square, y, s), s), s),
                .arcsinh => try b(t, .multiply, g, try u(t, .rsqrt, try b(t, .add, try u(t, .square, x, s), try c(t, 1, dt, s), s), s), s),
                .arccosh => try b(t, .multiply, g, try u(t, .rsqrt, try b(t, .subtract, try u(t, .square, x, s), try c(t, 1, dt, s), s), s), s),
                .arctanh => try b(t, .divide, g, try b(t, .subtract, try c(t, 1, dt, s), try u(t, .square, x, s), s), s),
                .degrees => try b(t, .multiply, g, try c(t, 180.0 / std.math.pi, dt, s), s),
                .radians => try b(t, .multiply, g, try c(t, std.math.pi / 180.0, dt, s), s),
                .log => try b(t, .divide, g, x, s),
                .log2 => try b(t, .divide, g, try b(t, .multiply, x, try c(t, std.math.ln2, dt, s), s), s),
                .log10 => try b(t, .divide, g, try b(t, .multiply, x, try c(t, std.math.ln10, dt, s), s), s),
                .log1p => try b(t, .divide, g, try b(t, .add, x, try c(t, 1, dt, s), s), s),
                .sigmoid => try b(t, .multiply, g, try b(t, .multiply, y, try b(t, .subtract, try c(t, 1, dt, s), y, s), s), s),
                .conj => try u(t, .conj, g, s),
                .real => t.add(try cp.astype(g, .complex64, s)),
                .imag => blk: {
                    const i_ = t.add(try complexConstant(0, -1, s));
                    break :blk try b(t, .multiply, t.add(try cp.astype(g, .complex64, s)), i_, s);
                },
                // Piecewise constant, or not differentiable (bool and integer results): zero.
                .sign, .trunc, .floor, .ceil, .round, .isnan, .isinf, .isfinite, .isposinf, .isneginf, .logical_not, .bitwise_invert => return zerosLike(x, s),
            };
            return cp.astype(r, x.dtype, s);
        },
        .binary => |op| {
            const p = node.inputs[0];
            const q = node.inputs[1];
            const other = if (arg == 0) q else p;
            const mine = node.inputs[arg];
            const r: *Node = switch (op) {
                .add => g,
                .subtract => if (arg == 0) g else try u(t, .negative, g, s),
                .multiply => try b(t, .multiply, g, other, s),
                .divide => if (arg == 0) try b(t, .divide, g, q, s) else try u(t, .negative, try b(t, .divide, try b(t, .multiply, g, y, s), q, s), s),
                .maximum, .minimum => blk: {
                    // Ties go to the second operand, as in MLX.
                    const mask = if (op == .maximum)
                        (if (arg == 0) try b(t, .greater, p, q, s) else try b(t, .less_equal, p, q, s))
                    else
                        (if (arg == 0) try b(t, .less, p, q, s) else try b(t, .greater_equal, p, q, s));
                    break :blk try b(t, .multiply, g, t.add(try cp.astype(mask, dt, s)), s);
                },
                .logaddexp => try b(t, .multiply, g, try u(t, .exp, try b(t, .subtract, mine, y, s), s), s),
                .power => if (arg == 0)
                    // b * a^(b-1)
                    try b(t, .multiply, g, try b(t, .multiply, q, try b(t, .power, p, try b(t, .subtract, q, try c(t, 1, q.dtype, s), s), s), s), s)
                else
                    // g * y * ln(a), with ln(a) taken as 0 where the base is 0, as MLX does
                    // (otherwise 0 * ln 0 makes the gradient NaN).
                    try b(t, .multiply, g, try b(t, .multiply, y, try u(t, .log, t.add(try ew.select(try b(t, .equal, p, try c(t, 0, p.dtype, s), s), try c(t, 1, p.dtype, s), p, s)), s), s), s),
                .arctan2 => blk: {
                    // atan2(p, q): d/dp = q / (p² + q²), d/dq = -p / (p² + q²)
                    const den = try b(t, .add, try u(t, .square, p, s), try u(t, .square, q, s), s);
                    break :blk if (arg == 0) try b(t, .divide, try b(t, .multiply, g, q, s), den, s) else try u(t, .negative, try b(t, .divide, try b(t, .multiply, g, p, s), den, s), s);
                },
                .remainder => if (arg == 0) g else try b(t, .multiply, g, try u(t, .negative, try b(t, .floor_divide, p, q, s), s), s),
                .floor_divide, .equal, .not_equal, .less, .less_equal, .greater, .greater_equal, .logical_and, .logical_or, .logical_xor, .bitwise_and, .bitwise_or, .bitwise_xor, .left_shift, .right_shift => return zerosLike(mine, s),
            };
            const ub = t.add(try unbroadcast(r, &mine.shape, s));
            return cp.astype(ub, mine.dtype, s);
        },
        .select => {
            if (arg == 0) return zerosLike(node.inputs[0], s);
            const cond = node.inputs[0];
            const z = try c(t, 0, g.dtype, s);
            const r = if (arg == 1) t.add(try ew.select(cond, g, z, s)) else t.add(try ew.select(cond, z, g, s));
            const mine = node.inputs[arg];
            const ub = t.add(try unbroadcast(r, &mine.shape, s));
            return cp.astype(ub, mine.dtype, s);
        },
    }
}

fn complexConstant(re: f32, im: f32, stream: u32) errors.Error!*Node {
    const node = try array.createWithBuffer(.complex64, .{}, stream, "array");
    @as(*dtype_mod.Complex64, @ptrCast(@alignCast(node.data()))).* = .{ .re = re, .im = im };
    return node;
}

fn reduceVjp(t: *Tmp, node: *Node, r: red.Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    const x = node.inputs[0];
    switch (r) {
        .reduce => |p| {
            const ge = t.add(try expandReduced(g, x, p.axes, s));
            switch (p.op) {
                .sum => return cp.astype(ge, x.dtype, s),
                .prod => {
                    // The product of the other elements, exact with zeros: the reduced axes
                    // moved last and flattened, exclusive cumulative products from both ends
                    // multiplied, then put back.
                    if (x.shape.size() == 0) return zerosLike(x, s);
                    var perm: [max_ndim]i32 = undefined; // kept axes, then reduced ones
                    var moved: [max_ndim]i32 = undefined; // x's shape in that order
                    var inv: [max_ndim]i32 = undefined;
                    var dims: [max_ndim]i32 = undefined; // kept axes, then the reduced ones flattened
                    var np_: usize = 0;
                    var kept: usize = 0;
                    var reduced_size: i32 = 1;
                    for (0..2) |pass| for (0..x.shape.ndim) |i| {
                        const reduced = p.axes & (@as(u32, 1) << @intCast(i)) != 0;
                        if (reduced != (pass == 1)) continue;
                        perm[np_] = @intCast(i);
                        moved[np_] = x.shape.dims[i];
                        np_ += 1;
                        if (reduced) reduced_size *= x.shape.dims[i] else {
                            dims[kept] = x.shape.dims[i];
                            kept += 1;
                        }
                    };
                    for (0..np_) |i| inv[@intCast(perm[i])] = @intCast(i);
                    dims[kept] = reduced_size;
                    const xt = t.add(try shp.transpose(x, perm[0..np_], s));
                    const flat = t.add(try shp.reshape(xt, dims[0 .. kept + 1], s));
                    const last: i32 = @intCast(kept);
                    const left = t.add(try prims.sort.scan(.prod, flat, last, false, false, null, s));
                    const right = t.add(try prims.sort.scan(.prod, flat, last, true, false, null, s));
                    const others = t.add(try ew.binary(.multiply, left, right, s));
                    const back = t.add(try shp.reshape(others, moved[0..np_], s));
                    const q = t.add(try shp.transpose(back, inv[0..np_], s));
                    const r2 = t.add(try ew.binary(.multiply, ge, q, s));
                    return cp.astype(r2, x.dtype, s);
                },
                .min, .max => {
                    // Shared equally among the elements equal to the extreme.
                    const ye = t.add(try expandReduced(node, x, p.axes, s));
                    const mask = t.add(try cp.astype(t.add(try ew.binary(.equal, x, ye, s)), g.dtype, s));
                    var axes: [max_ndim]i32 = undefined;
                    var n: usize = 0;
                    for (0..x.shape.ndim) |i| if (p.axes & (@as(u32, 1) << @intCast(i)) != 0) {
                        axes[n] = @intCast(i);
                        n += 1;
                    };
                    const count = t.add(try red.reduce(.sum, mask, axes[0..n], true, s));
                    const share = t.add(try ew.binary(.divide, mask, t.add(try cp.astype(count, g.dtype, s)), s));
                    const r2 = t.add(try ew.binary(.multiply, ge, share, s));
                    return cp.astype(r2, x.dtype, s);
                },
                .all, .any => return zerosLike(x, s),
            }
        },
        .logsumexp => {
            const set = @as(u32, 1) << @intCast(x.shape.ndim - 1);
            const ge = t.add(try expandReduced(g, x, set, s));
            const ye = t.add(try expandReduced(node, x, set, s));
            const w = t.add(try ew.unary(.exp, t.add(try ew.binary(.subtract, x, ye, s)), s));
            return ew.binary(.multiply, ge, w, s);
        },
        .logsumexp_combine => {
            // log(s) + m: d/ds = 1/s, d/dm = 1.
            const mine = node.inputs[arg];
            const gi = if (arg == 0) t.add(try ew.binary(.divide, g, node.inputs[0], s)) else g;
            const ub = t.add(try unbroadcast(gi, &mine.shape, s));
            return cp.astype(ub, mine.dtype, s);
        },
        .arg_reduce => return zerosLike(x, s),
        .median => |m| return medianVjp(t, x, m.axes, g, s),
    }
}

/// The median's cotangent goes to its middle element (odd count) or half to each of the two
/// middle ones (even count), found by sorting the reduced axes (moved last and flattened).
fn medianVjp(t: *Tmp, x: *Node, set: u32, g: *Node, s: u32) errors.Error!*Node {
    const nd = x.shape.ndim;
    var perm: [max_ndim]i32 = undefined;
    var inv: [max_ndim]i32 = undefined;
    var kept: [max_ndim + 1]i32 = undefined;
    var k: usize = 0;
    var m: i32 = 1;
    for (0..nd) |d| if (set & (@as(u32, 1) << @intCast(d)) == 0) {
        perm[k] = @intCast(d);
        kept[k] = x.shape.dims[d];
        k += 1;
    };
    const nk = k;
    for (0..nd) |d| if (set & (@as(u32, 1) << @intCast(d)) != 0) {
        perm[k] = @intCast(d);
        m *= x.shape.dims[d];
        k += 1;
    };
    for (0..nd) |d| inv[@intCast(perm[d])] = @intCast(d);
    kept[nk] = m;
    const xt = t.add(try shp.transpose(x, perm[0..nd], s));
    const xr = t.add(try shp.reshape(xt, kept[0 .. nk + 1], s));
    const last: i32 = @intCast(nk);
    const order = t.add(try cp.stopGradient(t.add(try srt.sortOp(.argsort, xr, last, 0, s)), s));
    const odd = @mod(m, 2) == 1;
    const lo: i32 = if (odd) @divTrunc(m - 1, 2) else @divTrunc(m, 2) - 1;
    const cnt: i32 = if (odd) 1 else 2;
    const mid = t.add(try shp.sliceAxis(order, nk, lo, cnt, 1, s));
    kept[nk] = 1;
    const g1 = t.add(try shp.reshape(g, kept[0 .. nk + 1], s));
    const w = t.add(try constant(if (odd) 1 else 0.5, g.dtype, s));
    kept[nk] = cnt;
    const gw = t.add(try cp.broadcastTo(t.add(try ew.binary(.multiply, g1, w, s)), try Shape.fromSlice(kept[0 .. nk + 1], "median"), s));
    const z = t.add(try zerosLike(xr, s));
    const r = t.add(try ix.putAlongAxis(z, mid, t.add(try cp.astype(gw, xr.dtype, s)), last, .add, s));
    const rt = t.add(try shp.reshape(r, xt.shape.slice(), s));
    return shp.transpose(rt, inv[0..nd], s);
}

/// The vjp of a primitive that only moves elements (each output element is one element of x):
/// `moved` is the same move applied to x's flat positions; g is added into those positions.
fn addAtPositions(t: *Tmp, x: *Node, moved: *Node, g: *Node, s: u32) errors.Error!*Node {
    const n: i32 = @intCast(x.size());
    const zf = t.add(try cp.broadcastTo(t.add(try constant(0, g.dtype, s)), try Shape.fromSlice(&[_]i32{n}, "vjp"), s));
    const idx = t.add(try shp.reshape(moved, &.{-1}, s));
    const gf = t.add(try shp.reshape(g, &.{-1}, s));
    const r = t.add(try ix.putAlongAxis(zf, idx, gf, 0, .add, s));
    const rs = t.add(try shp.reshape(r, x.shape.slice(), s));
    return cp.astype(rs, x.dtype, s);
}

/// x's flat positions 0, 1, ... (int32) in x's shape.
fn flatPositions(t: *Tmp, x: *Node, s: u32) errors.Error!*Node {
    if (x.size() > std.math.maxInt(i32))
        return errors.fail(.invalid_argument, "[vjp] Arrays of more than 2^31 - 1 elements are not supported by this rule.", .{});
    const ar = t.add(try prims.creation.arange(0, @floatFromInt(x.size()), 1, .int32, s));
    return t.add(try shp.reshape(ar, x.shape.slice(), s));
}

fn shapeVjp(t: *Tmp, node: *Node, p: shp.Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    const x = node.inputs[0];
    switch (p) {
        .reshape, .contiguous => return shp.reshape(g, x.shape.slice(), s),
        .transpose => |perm| {
            var inv: [max_ndim]i32 = undefined;
            for (0..x.shape.ndim) |i| inv[perm[i]] = @intCast(i);
            return shp.transpose(g, inv[0..x.shape.ndim], s);
        },
        .slice => |sl| {
            // The cotangent written into zeros at the slice's place.
            const z = t.add(try zerosLike(x, s));
            var region: [2 * max_ndim]i32 = undefined;
            for (0..x.shape.ndim) |d| {
                region[2 * d] = if (d == sl.axis and node.shape.dims[d] > 0) sl.start else 0;
                region[2 * d + 1] = if (d == sl.axis) sl.step else 1;
            }
            return ix.scatter(z, g, &.{}, &.{}, region[0 .. 2 * x.shape.ndim], .none, .slice_update, s);
        },
        .concatenate => |axis| {
            var start: i32 = 0;
            for (node.inputs[0..arg]) |in| start += in.shape.dims[axis];
            const piece = try shp.sliceAxis(g, axis, start, node.inputs[arg].shape.dims[axis], 1, s);
            defer array.release(piece);
            return cp.astype(piece, node.inputs[arg].dtype, s);
        },
        .remap => |rm| switch (rm.kind) {
            .pad_constant => {
                if (arg == 0) {
                    // The cotangent of the unpadded block.
                    var cur = retained(g);
                    defer array.release(cur);
                    for (0..x.shape.ndim) |d| {
                        const next = try shp.sliceAxis(cur, d, rm.params[d], x.shape.dims[d], 1, s);
                        array.release(cur);
                        cur = next;
                    }
                    return shp.contiguous(cur, false, s);
                }
                // The fill value: everything outside the block.
                const fill = node.inputs[1];
                if (fill.size() != 1) return zerosLike(fill, s);
                const inner = t.add(try shapeVjp(t, node, p, 0, g, s));
                const all_ = t.add(try red.reduce(.sum, g, allAxes(g).slice(), false, s));
                const in_ = t.add(try red.reduce(.sum, inner, allAxes(inner).slice(), false, s));
                const d = t.add(try ew.binary(.subtract, all_, in_, s));
                const r = t.add(try shp.reshape(d, fill.shape.slice(), s));
                return cp.astype(r, fill.dtype, s);
            },
            .roll => {
                var inv: [max_ndim]i32 = undefined;
                for (0..x.shape.ndim) |d| {
                    const n = x.shape.dims[d];
                    inv[d] = if (n == 0) 0 else @mod(n - rm.params[d], n);
                }
                return shp.remapNode(g, g.shape, .roll, inv[0..x.shape.ndim], null, s);
            },
            .pad_edge, .pad_reflect, .pad_symmetric => {
                // Each output element copies one element of x: pad x's positions the same way.
                const pos = try flatPositions(t, x, s);
                const moved = t.add(try shp.remapNode(pos, node.shape, rm.kind, rm.params[0..x.shape.ndim], null, s));
                return addAtPositions(t, x, moved, g, s);
            },
        },
        .as_strided => |off| {
            const pos = try flatPositions(t, x, s);
            const moved = t.add(try shp.asStrided(pos, node.shape, node.strides[0..node.shape.ndim], off, s));
            return addAtPositions(t, x, moved, g, s);
        },
        .view => return notDifferentiable(node),
    }
}

const AxesList = struct {
    buf: [max_ndim]i32 = undefined,
    n: usize = 0,
    fn slice(a: *const AxesList) []const i32 {
        return a.buf[0..a.n];
    }
};

fn allAxes(x: *const Node) AxesList {
    var a = AxesList{};
    for (0..x.shape.ndim) |i| {
        a.buf[i] = @intCast(i);
    }
    a.n = x.shape.ndim;
    return a;
}

fn sortVjp(t: *Tmp, node: *Node, p: srt.Prim, g: *Node, s: u32) errors.Error!*Node {
    const x0 = node.inputs[0];
    // Operations over the flattened array (axis None) see x flattened.
    const flat_case = node.shape.ndim == 1 and x0.shape.ndim != 1;
    const x = if (flat_case) t.add(try shp.reshape(x0, &.{-1}, s)) else x0;
    const r = try sortVjpOn(t, node, p, x, g, s);
    if (!flat_case) return r;
    defer array.release(r);
    return shp.reshape(r, x0.shape.slice(), s);
}

/// `order` (x's rank) and `vals` scattered (added) into zeros of x's shape along `axis`.
fn putBack(t: *Tmp, x: *Node, order: *Node, vals: *Node, axis: i32, s: u32) errors.Error!*Node {
    const z = t.add(try zerosLike(x, s));
    // The positions are integers computed from x: no gradient flows into them.
    return ix.putAlongAxis(z, t.add(try cp.stopGradient(order, s)), vals, axis, .add, s);
}

fn sortVjpOn(t: *Tmp, node: *Node, p: srt.Prim, x: *Node, g: *Node, s: u32) errors.Error!*Node {
    switch (p) {
        .scan => |sc| {
            if (sc.inclusive) return scanVjp(t, node, sc, x, g, s);
            // An exclusive scan is the inclusive one moved one place along the scan: y[i] =
            // Y[i - 1] (the op's identity first). Its vjp is the inclusive scan's, with g moved
            // back one place (the last cotangent feeds nothing).
            const inc = t.add(try srt.scan(sc.op, x, sc.axis, sc.reverse, true, null, s));
            const gs = t.add(try shiftAlong(g, sc.axis, sc.reverse, s));
            return scanVjp(t, inc, sc, x, gs, s);
        },
        .sort => |so| {
            const ax: i32 = so.axis;
            switch (so.op) {
                .argsort, .argpartition => return zerosLike(x, s),
                // The outputs are x permuted: g goes back where each element came from.
                .sort => return putBack(t, x, t.add(try srt.sortOp(.argsort, x, ax, 0, s)), g, ax, s),
                .partition => return putBack(t, x, t.add(try srt.sortOp(.argpartition, x, ax, so.kth, s)), g, ax, s),
                .topk => {
                    // topk's values are the last k of a partition at n - k.
                    const n = x.shape.dims[so.axis];
                    const order = t.add(try srt.sortOp(.argpartition, x, ax, n - so.kth, s));
                    const last = t.add(try shp.sliceAxis(order, so.axis, n - so.kth, so.kth, 1, s));
                    return putBack(t, x, last, g, ax, s);
                },
            }
        },
        .searchsorted => return zerosLike(node.inputs[0], s),
    }
}

/// The vjp of the inclusive scan `y` of `x` (y's scan parameters in `sc`) for the cotangent g.
fn scanVjp(t: *Tmp, y: *Node, sc: srt.Scan, x: *Node, g: *Node, s: u32) errors.Error!*Node {
    const ax: i32 = sc.axis;
    // sum_{i after or at k, in scan order} v[i]: the inclusive cumsum the other way.
    const rc = struct {
        fn f(tt: *Tmp, v: *Node, a: i32, reverse: bool, st: u32) errors.Error!*Node {
            return tt.add(try srt.scan(.sum, v, a, !reverse, true, null, st));
        }
    }.f;
    switch (sc.op) {
        // The cotangent of an inclusive cumsum is the cumsum of g the other way.
        .sum => return cp.astype(try rc(t, g, ax, sc.reverse, s), x.dtype, s),
        .max, .min => {
            // Each output's cotangent goes to the position its extreme came from: the
            // last position so far (in scan order) where x equals the running extreme.
            const n = x.shape.dims[sc.axis];
            const ar = t.add(try prims.creation.arange(0, @floatFromInt(n), 1, .int32, s));
            var dims: [max_ndim]i32 = undefined;
            for (0..x.shape.ndim) |d| dims[d] = if (d == sc.axis) n else 1;
            const pos = t.add(try shp.reshape(ar, dims[0..x.shape.ndim], s));
            const eq = t.add(try ew.binary(.equal, x, y, s));
            const none = t.add(try constant(if (sc.reverse) @floatFromInt(n) else -1, .int32, s));
            const cand = t.add(try ew.select(eq, pos, none, s));
            const src = t.add(try srt.scan(if (sc.reverse) .min else .max, cand, ax, sc.reverse, true, null, s));
            return putBack(t, x, src, g, ax, s);
        },
        .prod => {
            // d y[i] / d x[k] = prod_{j <= i, j != k} x[j] (i, j, k in scan order). Before the
            // first zero f that is rc(g y)[k] / x[k]; at f it is rc(g y')[f] with y' the cumprod
            // of x with x[f] set to 1; after f every product holds x[f] = 0.
            const zero = try constant(0, x.dtype, s);
            _ = t.add(zero);
            const one = t.add(try constant(1, x.dtype, s));
            const excl = t.add(try srt.scan(.prod, x, ax, sc.reverse, false, null, s));
            const y_zero = t.add(try ew.binary(.equal, y, zero, s));
            const first = t.add(try ew.binary(.logical_and, y_zero, t.add(try ew.binary(.not_equal, excl, zero, s)), s));
            const x1 = t.add(try ew.select(first, one, x, s));
            const y1 = t.add(try srt.scan(.prod, x1, ax, sc.reverse, true, null, s));
            const at_first = try rc(t, t.add(try ew.binary(.multiply, g, y1, s)), ax, sc.reverse, s);
            // x is 1 where it is 0, so no inf or nan reaches a later derivative of this rule.
            const x_safe = t.add(try ew.select(t.add(try ew.binary(.equal, x, zero, s)), one, x, s));
            const before = t.add(try ew.binary(.divide, try rc(t, t.add(try ew.binary(.multiply, g, y, s)), ax, sc.reverse, s), x_safe, s));
            const later = t.add(try ew.select(y_zero, zero, before, s));
            const r = t.add(try ew.select(first, at_first, later, s));
            return cp.astype(r, x.dtype, s);
        },
        .logaddexp => {
            // d y[i] / d x[k] = exp(x[k] - y[i]) for k up to i.
            const e = t.add(try ew.unary(.exp, t.add(try ew.unary(.negative, y, s)), s));
            const acc = try rc(t, t.add(try ew.binary(.multiply, g, e, s)), ax, sc.reverse, s);
            const r = t.add(try ew.binary(.multiply, t.add(try ew.unary(.exp, x, s)), acc, s));
            return cp.astype(r, x.dtype, s);
        },
    }
}

/// g moved one place back along `axis` against the scan's direction: r[i] = g[i + 1] (or
/// g[i - 1] for a reverse scan), zero where nothing comes in.
fn shiftAlong(g: *Node, axis: u8, reverse: bool, s: u32) errors.Error!*Node {
    const n = g.shape.dims[axis];
    if (n <= 1) return zerosLike(g, s);
    const part = try shp.sliceAxis(g, axis, if (reverse) 0 else 1, n - 1, 1, s);
    defer array.release(part);
    var lows = [_]i32{0} ** max_ndim;
    var highs = [_]i32{0} ** max_ndim;
    if (reverse) lows[axis] = 1 else highs[axis] = 1;
    const zero = try constant(0, g.dtype, s);
    defer array.release(zero);
    return shp.pad(part, lows[0..g.shape.ndim], highs[0..g.shape.ndim], .constant, zero, s);
}

fn indexingVjp(t: *Tmp, node: *Node, p: ix.Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    const x = node.inputs[0];
    switch (p) {
        .gather => |r| {
            if (arg != 0) return indexVjpError("gather");
            const z = t.add(try zerosLike(x, s));
            var axes: [max_ndim]i32 = undefined;
            for (0..r.nidx) |i| axes[i] = r.axes[i];
            var region: [2 * max_ndim]i32 = undefined;
            for (0..x.shape.ndim) |d| {
                region[2 * d] = r.start[d];
                region[2 * d + 1] = r.step[d];
            }
            return ix.scatter(z, g, node.inputs[1..], axes[0..r.nidx], region[0 .. 2 * x.shape.ndim], .add, .scatter, s);
        },
        .gather_axis => |a| {
            if (arg != 0) return indexVjpError("gather_axis");
            const z = t.add(try zerosLike(x, s));
            const r = t.add(try ix.putAlongAxis(z, node.inputs[1], g, a.axis, .add, s));
            return unbroadcastTo(r, x, s);
        },
        .scatter => |r| {
            const upd = node.inputs[1];
            var axes: [max_ndim]i32 = undefined;
            for (0..r.nidx) |i| axes[i] = r.axes[i];
            var region: [2 * max_ndim]i32 = undefined;
            for (0..x.shape.ndim) |d| {
                region[2 * d] = r.start[d];
                region[2 * d + 1] = r.step[d];
            }
            const idx = node.inputs[2..];
            const rg = region[0 .. 2 * x.shape.ndim];
            if (arg >= 2) return indexVjpError("scatter");
            const nb = upd.shape.ndim - x.shape.ndim;
            const upd_slab = upd.shape.slice()[nb..];
            switch (r.mode) {
                .none, .add => {},
                .max, .min => {
                    // The cotangent goes to every side that equals the result (ties: to both).
                    const zero = t.add(try constant(0, g.dtype, s));
                    if (arg == 0) return ew.select(t.add(try ew.binary(.equal, node, x, s)), g, zero, s);
                    const won = t.add(try ix.gather(node, idx, axes[0..r.nidx], upd_slab, rg, .gather, s));
                    const gu = t.add(try ix.gather(g, idx, axes[0..r.nidx], upd_slab, rg, .gather, s));
                    return ew.select(t.add(try ew.binary(.equal, upd, won, s)), gu, zero, s);
                },
                .prod => {
                    // out = x * (product of the updates at each place). x's cotangent is g times
                    // that product; an update's is g * x times the other updates at its place
                    // (their product over it, with zero updates taken as 1 so nothing divides by 0).
                    const one = t.add(try constant(1, upd.dtype, s));
                    const zero_u = t.add(try constant(0, upd.dtype, s));
                    const upd_nz = t.add(try ew.select(t.add(try ew.binary(.equal, upd, zero_u, s)), one, upd, s));
                    const ones = t.add(try ix.scatter(t.add(try cp.broadcastTo(t.add(try constant(1, x.dtype, s)), x.shape, s)), upd, idx, axes[0..r.nidx], rg, .prod, r.origin, s));
                    if (arg == 0) return ew.binary(.multiply, g, ones, s);
                    const ones1 = t.add(try ix.scatter(t.add(try cp.broadcastTo(t.add(try constant(1, x.dtype, s)), x.shape, s)), upd_nz, idx, axes[0..r.nidx], rg, .prod, r.origin, s));
                    const gx = t.add(try ew.binary(.multiply, g, x, s));
                    const at_u = t.add(try ix.gather(gx, idx, axes[0..r.nidx], upd_slab, rg, .gather, s));
                    const prod_u = t.add(try ix.gather(ones1, idx, axes[0..r.nidx], upd_slab, rg, .gather, s));
                    return ew.binary(.multiply, at_u, t.add(try ew.binary(.divide, prod_u, upd_nz, s)), s);
                },
            }
            if (arg == 0) {
                if (r.mode == .add) return retained(g);
                // What was overwritten gets nothing.
                const z = t.add(try zerosLike(upd, s));
                return ix.scatter(g, z, idx, axes[0..r.nidx], rg, .none, .scatter, s);
            }
            return ix.gather(g, idx, axes[0..r.nidx], upd_slab, rg, .gather, s);
        },
        .scatter_axis => |a| {
            const idx = node.inputs[1];
            if (arg == 1) return indexVjpError("scatter_axis");
            const ax: i32 = a.axis;
            if (arg == 2) return ix.takeAlongAxis(g, idx, ax, s);
            if (a.mode == .add) return retained(g);
            const z = t.add(try zerosLike(node.inputs[2], s));
            return ix.putAlongAxis(g, idx, z, ax, .none, s);
        },
        .masked_scatter => {
            if (arg == 1) return zerosLike(node.inputs[1], s);
            if (arg == 2) {
                // Source element k received the cotangent of the k-th true position: the
                // cotangents at the true positions added into zeros at their source index.
                const src = node.inputs[2];
                const items: i32 = @intCast(x.shape.size());
                const n_src: i32 = @intCast(src.shape.size());
                const mask = node.inputs[1];
                const mflat = t.add(try shp.reshape(mask, &.{items}, s));
                const idx = t.add(try maskedSourceIndex(mflat, 0, @intCast(n_src), s));
                const zero = t.add(try constant(0, g.dtype, s));
                const gm = t.add(try ew.select(mask, g, zero, s));
                const gflat = t.add(try shp.reshape(gm, &.{items}, s));
                const base = t.add(try zerosLike(src, s));
                const bflat = t.add(try shp.reshape(base, &.{n_src}, s));
                const sum = t.add(try ix.putAlongAxis(bflat, idx, gflat, 0, .add, s));
                return shp.reshape(sum, src.shape.slice(), s);
            }
            const z = t.add(try constant(0, g.dtype, s));
            return ew.select(node.inputs[1], z, g, s);
        },
        .diagonal => |dg| {
            // g (the other axes, then the diagonal) added into zeros at the diagonal's places.
            const len = node.shape.dims[node.shape.ndim - 1];
            const off = dg.offset;
            const z = t.add(try zerosLike(x, s));
            const r1 = t.add(try prims.creation.arange(@floatFromInt(if (off < 0) -off else 0), @floatFromInt((if (off < 0) -off else 0) + len), 1, .int32, s));
            const r2 = t.add(try prims.creation.arange(@floatFromInt(if (off > 0) off else 0), @floatFromInt((if (off > 0) off else 0) + len), 1, .int32, s));
            const last: i32 = @intCast(node.shape.ndim - 1);
            const moved = t.add(try shp.moveaxis(g, last, 0, s));
            var dims: [max_ndim + 1]i32 = undefined;
            dims[0] = len;
            var k: usize = 1;
            for (0..x.shape.ndim) |d| {
                dims[1 + d] = if (d == dg.axis1 or d == dg.axis2) 1 else node.shape.dims[k - 1];
                if (!(d == dg.axis1 or d == dg.axis2)) k += 1;
            }
            const upd = t.add(try shp.reshape(moved, dims[0 .. 1 + x.shape.ndim], s));
            const a1: i32 = dg.axis1;
            const a2: i32 = dg.axis2;
            return ix.scatter(z, upd, &.{ r1, r2 }, &.{ a1, a2 }, null, .add, .scatter, s);
        },
    }
}

/// MLX refuses to differentiate with respect to integer indices (they must be stop_gradient'ed).
fn indexVjpError(op: []const u8) errors.Error {
    return errors.fail(.invalid_argument, "[{s}] Cannot calculate VJP with respect to indices. Use stop_gradient on indices to stop gradients from being computed.", .{op});
}

fn unbroadcastTo(g: *Node, x: *const Node, s: u32) errors.Error!*Node {
    return unbroadcast(g, &x.shape, s);
}

// ---------------------------------------------------------------------------------------------
// The walk

/// Cotangents of `primals` for the function whose `outputs` were traced from them, given the
/// outputs' cotangents. `out` receives one owned node per primal (zeros where none flows).
pub fn vjp(outputs: []const *Node, primals: []const *Node, cots: []const *Node, out: []*Node, stream: u32) errors.Error!void {
    if (cots.len != outputs.len)
        return errors.fail(.invalid_argument, "[vjp] Number of outputs to compute gradients for ({d}) does not match number of cotangents ({d}).", .{ outputs.len, cots.len });
    for (outputs, cots) |o, c| if (!o.shape.eql(&c.shape)) {
        var b1: [256]u8 = undefined;
        var b2: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[vjp] Output shape {s} does not match cotangent shape {s}.", .{ o.shape.format(&b1), c.shape.format(&b2) });
    };
    var is_primal = std.AutoHashMap(*Node, usize).init(a_);
    defer is_primal.deinit();
    for (primals, 0..) |p, i| is_primal.put(p, i) catch return oom();

    // Post-order of the nodes between the outputs and the primals (stop_gradient blocks).
    var order: std.ArrayList(*Node) = .empty;
    defer order.deinit(a_);
    var needs = std.AutoHashMap(*Node, bool).init(a_);
    defer needs.deinit();
    {
        const Frame = struct { n: *Node, expanded: bool };
        var stack: std.ArrayList(Frame) = .empty;
        defer stack.deinit(a_);
        for (outputs) |o| stack.append(a_, .{ .n = o, .expanded = false }) catch return oom();
        while (stack.pop()) |f| {
            if (f.expanded) {
                var need = is_primal.contains(f.n);
                if (!need and f.n.prim != .stop_gradient) {
                    for (f.n.inputs) |in| need = need or (needs.get(in) orelse false);
                }
                needs.put(f.n, need) catch return oom();
                order.append(a_, f.n) catch return oom();
                continue;
            }
            if (needs.contains(f.n)) continue;
            // Its inputs and primitive are read from here on: a node an async task is
            // computing is detached by the worker, so wait for it first.
            eval_mod.settle(f.n);
            needs.put(f.n, false) catch return oom(); // visiting
            stack.append(a_, .{ .n = f.n, .expanded = true }) catch return oom();
            if (is_primal.contains(f.n) or f.n.prim == .stop_gradient) continue;
            for (f.n.inputs) |in| if (!needs.contains(in)) stack.append(a_, .{ .n = in, .expanded = false }) catch return oom();
        }
    }

    var cot = std.AutoHashMap(*Node, *Node).init(a_);
    defer {
        var it = cot.valueIterator();
        while (it.next()) |v| array.release(v.*);
        cot.deinit();
    }
    for (outputs, cots) |o, c| {
        if (!(needs.get(o) orelse false)) continue;
        const typed = try cp.astype(c, o.dtype, stream);
        try accumulate(&cot, o, typed, stream);
    }
    // A custom call runs once, at its earliest output in the order: by then every consumer
    // of every output has passed its cotangent back.
    var first_of = std.AutoHashMap(*CustomCall, usize).init(a_);
    defer first_of.deinit();
    for (order.items, 0..) |n, k| if (n.prim == .custom) {
        const gop = first_of.getOrPut(n.prim.custom.call) catch return oom();
        if (!gop.found_existing) gop.value_ptr.* = k;
    };
    var i = order.items.len;
    while (i > 0) {
        i -= 1;
        const n = order.items[i];
        if (is_primal.contains(n)) continue;
        if (n.prim == .custom) {
            const call = n.prim.custom.call;
            if (first_of.get(call).? == i) try runCustom(call, n, order.items, &cot, &needs, stream);
            continue;
        }
        const g = cot.get(n) orelse continue;
        for (n.inputs, 0..) |in, k| {
            if (!(needs.get(in) orelse false)) continue;
            const gi = try vjpRule(n, k, g, stream);
            try accumulate(&cot, in, gi, stream);
        }
    }
    var made: usize = 0;
    errdefer for (out[0..made]) |o| array.release(o);
    for (primals, 0..) |p, k| {
        out[k] = if (cot.get(p)) |g| try cp.astype(g, p.dtype, stream) else try zerosLike(p, stream);
        made += 1;
    }
}

fn runCustom(call: *CustomCall, first: *Node, order: []const *Node, cot: *std.AutoHashMap(*Node, *Node), needs: *std.AutoHashMap(*Node, bool), stream: u32) errors.Error!void {
    const cb = custom_vjp_callback orelse return errors.fail(.runtime, "[custom_function] No host rule is registered.", .{});
    const n_out = call.values.len;
    const primals = first.inputs[1..];
    // Cotangents of every output (zeros where none flowed), the primals, the forward values.
    clearResults();
    for (0..n_out) |k| {
        var g: ?*Node = null;
        for (order) |n| if (n.prim == .custom and n.prim.custom.call == call and n.prim.custom.index == k) {
            g = cot.get(n);
        };
        try pushResult(if (g) |x| retained(x) else try zerosLike(call.values[k], stream));
    }
    for (primals) |p| try pushResult(retained(p));
    for (call.values) |v| try pushResult(retained(v));
    const mark = returns.items.len;
    defer {
        for (returns.items[mark..]) |r| array.release(r);
        returns.shrinkRetainingCapacity(mark);
    }
    if (cb(call.token, @intCast(n_out)) != 0)
        return errors.fail(.runtime, "[custom_function] The custom vjp failed.", .{});
    const got = returns.items[mark..];
    if (got.len != primals.len)
        return errors.fail(.invalid_argument, "[custom_function] The vjp returned {d} cotangents for {d} inputs.", .{ got.len, primals.len });
    for (primals, got) |p, g| {
        if (!(needs.get(p) orelse false)) continue;
        if (!g.shape.eql(&p.shape)) {
            var b1: [256]u8 = undefined;
            var b2: [256]u8 = undefined;
            return errors.fail(.invalid_argument, "[custom_function] The vjp returned a cotangent of shape {s} for an input of shape {s}.", .{ g.shape.format(&b1), p.shape.format(&b2) });
        }
        try accumulate(cot, p, retained(g), stream);
    }
}

/// The batched outputs of a custom call from the host's vmap rule (`out` gets one owned node
/// per output); false when the host has no rule for it.
pub fn runCustomVmap(call: *CustomCall, inputs: []const *Node, mapped: u32, b: i32, out: []*Node) errors.Error!bool {
    const cb = custom_vmap_callback orelse return false;
    clearResults();
    for (inputs) |x| try pushResult(retained(x));
    const mark = returns.items.len;
    defer {
        for (returns.items[mark..]) |r| array.release(r);
        returns.shrinkRetainingCapacity(mark);
    }
    const rc = cb(call.token, @intCast(call.values.len), @intCast(b), mapped);
    if (rc == 2) return false;
    if (rc != 0) return errors.fail(.runtime, "[custom_function] The custom vmap failed.", .{});
    const got = returns.items[mark..];
    if (got.len != call.values.len)
        return errors.fail(.invalid_argument, "[custom_function] The vmap rule returned {d} outputs for a function with {d}.", .{ got.len, call.values.len });
    for (got, call.values) |g, v| {
        const ok = g.shape.ndim == v.shape.ndim + 1 and g.shape.dims[0] == b and std.mem.eql(i32, g.shape.slice()[1..], v.shape.slice());
        if (!ok) {
            var b1: [256]u8 = undefined;
            var b2: [256]u8 = undefined;
            return errors.fail(.invalid_argument, "[custom_function] The vmap rule returned an output of shape {s} for an output of shape {s} mapped over {d}.", .{ g.shape.format(&b1), v.shape.format(&b2), b });
        }
    }
    for (got, out) |g, *o| o.* = retained(g);
    return true;
}

fn oom() errors.Error {
    return errors.fail(.out_of_memory, "[vjp] Out of memory.", .{});
}

/// cot[n] += g (takes g).
fn accumulate(cot: *std.AutoHashMap(*Node, *Node), n: *Node, g: *Node, stream: u32) errors.Error!void {
    if (cot.get(n)) |prev| {
        const sum = ew.binary(.add, prev, g, stream) catch |e| {
            array.release(g);
            return e;
        };
        array.release(g);
        array.release(prev);
        cot.put(n, sum) catch unreachable; // the key exists
    } else {
        cot.put(n, g) catch {
            array.release(g);
            return oom();
        };
    }
}
