//! Reductions: all, any, sum, prod, min, max over a set of axes (one primitive with an op enum),
//! argmin/argmax along one axis or the flattened array, median, and logsumexp (MLX's fused
//! last-axis kernel, and the last steps of its composition for other axes). Ops validate axes
//! with MLX's messages and compute the output shape and dtype eagerly.
//!
//! The reference kernels follow MLX's CPU reduction plans (mlx/backend/common/reduce.cpp and
//! mlx/backend/cpu/reduce.cpp, where SIMD width is 1 on x86-64) so that floating-point sums
//! are accumulated in the same order and round the same way: a contiguous run is summed into a
//! partial from the initial value and then added to the output, strided reductions accumulate
//! row by row, and the general case walks the reduced axes in order. float16/bfloat16 sums and
//! products accumulate in float32; integer sums of at most 4 bytes accumulate in int32.
//! The SIMD fast paths (below) give the same results bit for bit, except float sums and
//! products of long runs, which they reorder (with the error bound stated there);
//! primitives.reference_mode selects the reference loops. Large reductions run on all cores.
//! Inputs may have any strides, negative ones included (views whose data pointer is their
//! first element, not their lowest address).
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const cpu = @import("../cpu.zig");
const abi_util = @import("../abi_util.zig");
const copy = @import("copy.zig");
const half = @import("../half.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;

/// Reduce ops; values are part of the C ABI.
pub const ReduceOp = enum(u32) {
    all = 0,
    any = 1,
    sum = 2,
    prod = 3,
    min = 4,
    max = 5,
};

/// Arg-reduce ops; values are part of the C ABI.
pub const ArgOp = enum(u32) {
    argmin = 0,
    argmax = 1,
};

pub const Reduce = struct {
    op: ReduceOp,
    /// Bit i set: axis i of the input is reduced.
    axes: u32,
    /// MLX's no-op case (every reduced axis has size 1): a converting copy.
    copy: bool,
};

pub const ArgReduce = struct {
    op: ArgOp,
    /// The axis of the input, or null for the flattened array.
    axis: ?u8,
};

pub const Median = struct {
    axes: u32,
};

/// This family's primitives.
pub const Prim = union(enum) {
    reduce: Reduce,
    arg_reduce: ArgReduce,
    median: Median,
    /// logsumexp over the last axis (MLX's fused LogSumExp kernel; the input is already float).
    logsumexp,
    /// The last steps of MLX's composed logsumexp: where(isinf(m), m, log(s) + m), inputs s
    /// (the sum of exponentials) and m (the maximum), both in the output's shape.
    logsumexp_combine,

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .reduce => |r| @tagName(r.op),
            .arg_reduce => |r| @tagName(r.op),
            .median => "median",
            .logsumexp, .logsumexp_combine => "logsumexp",
        };
    }
};

// ---------------------------------------------------------------------------------------------
// Validation and output shapes

/// MLX's compute_reduce_shape: normalised axes as a bit set, or MLX's errors.
pub fn axesSet(axes: []const i32, ndim: usize) errors.Error!u32 {
    var set: u32 = 0;
    const n: i64 = @intCast(ndim);
    for (axes) |ax| {
        const a: i64 = if (ax < 0) @as(i64, ax) + n else ax;
        if (a < 0 or a >= n) return errors.fail(.invalid_argument, "Invalid axis {d} for array with {d} dimensions.", .{ ax, ndim });
        const bit = @as(u32, 1) << @intCast(a);
        if (set & bit != 0) return errors.fail(.invalid_argument, "Duplicate axes detected in reduction.", .{});
        set |= bit;
    }
    return set;
}

/// The shape left when the axes in `set` are reduced (kept as 1 with keepdims); compile's
/// shapeless replay uses it too.
pub fn outShape(in: *const Shape, set: u32, keepdims: bool) Shape {
    var s = Shape{};
    for (0..in.ndim) |i| {
        if (set & (@as(u32, 1) << @intCast(i)) != 0) {
            if (keepdims) {
                s.dims[s.ndim] = 1;
                s.ndim += 1;
            }
        } else {
            s.dims[s.ndim] = in.dims[i];
            s.ndim += 1;
        }
    }
    return s;
}

pub fn outDtype(op: ReduceOp, d: Dtype) Dtype {
    return switch (op) {
        .all, .any => .bool_,
        .min, .max => d,
        .sum, .prod => switch (d) {
            .bool_, .int8, .int16, .int32 => .int32,
            .uint8, .uint16, .uint32 => .uint32,
            .int64 => .int64,
            .uint64 => .uint64,
            else => d,
        },
    };
}

pub fn reduce(op: ReduceOp, x: *Node, axes: []const i32, keepdims: bool, stream: u32) errors.Error!*Node {
    const out_dtype = outDtype(op, x.dtype);
    if (axes.len == 0) {
        // MLX returns the input itself (sum/prod/min/max) or its bool cast (all/any).
        if (op == .all or op == .any) return copy.astype(x, .bool_, stream);
        x.retain();
        return x;
    }
    const set = try axesSet(axes, x.shape.ndim);
    if (op == .min or op == .max) {
        for (axes) |ax| {
            const a: usize = @intCast(if (ax < 0) ax + @as(i32, @intCast(x.shape.ndim)) else ax);
            if (x.shape.dims[a] == 0) return errors.fail(.invalid_argument, "[{s}] Cannot {s} reduce over axis {d} with size 0.", .{ @tagName(op), @tagName(op), ax });
        }
    }
    var noop = true;
    for (0..x.shape.ndim) |i| {
        if (set & (@as(u32, 1) << @intCast(i)) != 0 and x.shape.dims[i] != 1) noop = false;
    }
    const shape = outShape(&x.shape, set, keepdims);
    // min/max no-ops keep the dtype; a same-dtype copy with a new shape is still a new node.
    return array.create(out_dtype, shape, .{ .reduce = .{ .reduce = .{ .op = op, .axes = set, .copy = noop } } }, &.{x}, stream);
}

pub fn argReduce(op: ArgOp, x: *Node, axis: ?i32, keepdims: bool, stream: u32) errors.Error!*Node {
    const name = @tagName(op);
    if (axis) |ax| {
        if (x.size() == 0) return errors.fail(.invalid_argument, "[{s}] Cannot {s} reduce zero size array.", .{ name, name });
        const set = try axesSet(&.{ax}, x.shape.ndim);
        const a: u8 = @intCast(@ctz(set));
        return array.create(.uint32, outShape(&x.shape, set, keepdims), .{ .reduce = .{ .arg_reduce = .{ .op = op, .axis = a } } }, &.{x}, stream);
    }
    if (x.size() == 0) return errors.fail(.invalid_argument, "[{s}] Cannot {s} reduce zero size array.", .{ name, name });
    var shape = Shape{};
    if (keepdims) {
        if (x.shape.ndim == 0) return errors.fail(.invalid_argument, "cannot create std::vector larger than max_size()", .{});
        shape.ndim = x.shape.ndim;
        for (0..shape.ndim) |i| shape.dims[i] = 1;
    }
    return array.create(.uint32, shape, .{ .reduce = .{ .arg_reduce = .{ .op = op, .axis = null } } }, &.{x}, stream);
}

fn atLeastFloat(d: Dtype) Dtype {
    return if (d.isInexact()) d else .float32;
}

pub fn median(x: *Node, axes: []const i32, keepdims: bool, stream: u32) errors.Error!*Node {
    const ndim: i32 = @intCast(x.shape.ndim);
    // MLX flattens the reduced axes; with none (of an array with dimensions) flatten refuses.
    if (axes.len == 0 and ndim > 0) return errors.fail(.invalid_argument, "[flatten] start_axis must be less than or equal to end_axis", .{});
    var set: u32 = 0;
    for (axes) |ax| {
        if (ax < -ndim or ax >= ndim) return errors.fail(.invalid_argument, "[median] axis {d} is out of bounds for array with {d} dimensions.", .{ ax, ndim });
        const a: u5 = @intCast(if (ax < 0) ax + ndim else ax);
        if (set & (@as(u32, 1) << a) != 0) return errors.fail(.invalid_argument, "[median] Received duplicate axis.", .{});
        set |= @as(u32, 1) << a;
    }
    var n: usize = 1;
    for (0..x.shape.ndim) |i| {
        if (set & (@as(u32, 1) << @intCast(i)) != 0) n *= @intCast(x.shape.dims[i]);
    }
    if (n == 0) return errors.fail(.invalid_argument, "[median] Cannot take median along empty axis.", .{});
    return array.create(atLeastFloat(x.dtype), outShape(&x.shape, set, keepdims), .{ .reduce = .{ .median = .{ .axes = set } } }, &.{x}, stream);
}

/// logsumexp over the last axis of a non-complex array, as MLX's fused kernel computes it (the
/// other cases are composed from max, exp, sum and log by the caller, as MLX does).
pub fn logsumexpLast(x: *Node, keepdims: bool, stream: u32) errors.Error!*Node {
    if (x.size() == 0) return errors.fail(.invalid_argument, "[logsumexp] Received empty array.", .{});
    if (x.shape.ndim == 0) return errors.fail(.invalid_argument, "[logsumexp] Received non-empty axes for array with 0 dimensions.", .{});
    if (x.dtype == .complex64) return errors.fail(.invalid_argument, "[logsumexp] The fused kernel does not take complex64.", .{});
    const dtype = atLeastFloat(x.dtype);
    const xc = try copy.astype(x, dtype, stream);
    defer array.release(xc);
    const set = @as(u32, 1) << @intCast(x.shape.ndim - 1);
    return array.create(dtype, outShape(&x.shape, set, keepdims), .{ .reduce = .logsumexp }, &.{xc}, stream);
}

/// where(isinf(m), m, log(s) + m): the end of MLX's composed logsumexp (over axes other than
/// the last alone: max, subtract, exp and sum are composed by the caller, as MLX does). s is
/// the sum of exponentials (a real floating dtype) and m the maximum, both of the output's
/// shape; the result has promote(s, m)'s dtype. One kernel instead of four, with the C
/// library's log (the elementwise log's last bit can differ from MLX's).
pub fn logsumexpCombine(s: *Node, m: *Node, stream: u32) errors.Error!*Node {
    if (!s.dtype.isFloating() or m.dtype == .complex64)
        return errors.fail(.invalid_argument, "[logsumexp] Expected a real floating sum and a real maximum, got {s} and {s}.", .{ s.dtype.name(), m.dtype.name() });
    if (!s.shape.eql(&m.shape)) {
        var b1: [256]u8 = undefined;
        var b2: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[logsumexp] The sum and the maximum have different shapes {s} and {s}.", .{ s.shape.format(&b1), m.shape.format(&b2) });
    }
    return array.create(dtype_mod.promote(s.dtype, m.dtype), s.shape, .{ .reduce = .logsumexp_combine }, &.{ s, m }, stream);
}

/// The C library's log, as MLX's std::log calls it (glibc's logf and log). Reached through
/// engine/libm.zig, which looks them up in the system's libm at run time: inside this library the
/// plain `logf`/`log` symbols resolve to the compiler runtime's versions, whose last bit can
/// differ (log(1.2706705) is 0x3e754b37 in glibc and MLX, ...38 there).
const glibc = @import("../libm.zig");

fn libmLog(comptime F: type, x: F) F {
    return if (F == f32) glibc.logf32(x) else glibc.logf64(x);
}

const scalar_math = @import("scalar_math.zig");
/// The float32 exp MLX's CPU backend uses, shared with the elementwise family.
const fastExp = scalar_math.mlxExp;

// ---------------------------------------------------------------------------------------------
// Scalar ops, in MLX's argument orders (they matter for ties between 0 and -0 and for NaNs)

fn isNan(comptime U: type, v: U) bool {
    if (comptime U == f32 or U == f64) return std.math.isNan(v);
    if (comptime U == dtype_mod.Complex64) return std.math.isNan(v.re) or std.math.isNan(v.im);
    if (comptime U == dtype_mod.F16) return (v.bits & 0x7fff) > 0x7c00;
    if (comptime U == dtype_mod.BF16) return (v.bits & 0x7fff) > 0x7f80;
    return false;
}

fn toF(comptime U: type, v: U) f32 {
    if (comptime U == dtype_mod.F16) return half.f16ToF32(v.bits);
    if (comptime U == dtype_mod.BF16) return half.bf16ToF32(v.bits);
    unreachable;
}

fn gt(comptime U: type, a: U, b: U) bool {
    if (comptime U == dtype_mod.Complex64) return a.re > b.re or (a.re == b.re and a.im > b.im);
    if (comptime U == dtype_mod.F16 or U == dtype_mod.BF16) return toF(U, a) > toF(U, b);
    if (comptime U == bool) return @intFromBool(a) > @intFromBool(b);
    return a > b;
}

fn lt(comptime U: type, a: U, b: U) bool {
    return gt(U, b, a);
}

/// simd::maximum(a, b) / minimum(a, b) as MLX's CPU backend defines them.
fn maximum(comptime U: type, a: U, b: U) U {
    if (isNan(U, a)) return a;
    return if (gt(U, a, b)) a else b;
}

fn minimum(comptime U: type, a: U, b: U) U {
    if (isNan(U, a)) return a;
    return if (lt(U, a, b)) a else b;
}

fn canonicalNan(comptime U: type) U {
    if (comptime U == f32) return @bitCast(@as(u32, 0x7fc00000));
    if (comptime U == f64) return @bitCast(@as(u64, 0x7ff8000000000000));
    if (comptime U == dtype_mod.F16) return .{ .bits = 0x7e00 };
    if (comptime U == dtype_mod.BF16) return .{ .bits = 0x7fc0 };
    if (comptime U == dtype_mod.Complex64) return .{ .re = @bitCast(@as(u32, 0x7fc00000)), .im = 0 };
    unreachable;
}

/// An op over input dtype D accumulating in dtype A.
fn Ops(comptime op: ReduceOp, comptime D: Dtype, comptime A: Dtype) type {
    const T = D.Type();
    const U = A.Type();
    return struct {
        fn init() U {
            return switch (op) {
                .all => true,
                .any => false,
                .sum => convert.cast(.int32, A, 0),
                .prod => convert.cast(.int32, A, 1),
                .max => lowest(A),
                .min => highest(A),
            };
        }
        fn val(v: T) U {
            return convert.cast(D, A, v);
        }
        fn add(a: U, b: U) U {
            if (comptime A == .complex64) return .{ .re = a.re + b.re, .im = a.im + b.im };
            if (comptime A == .float32 or A == .float64) return a + b;
            if (comptime A == .bool_) return a or b;
            return a +% b;
        }
        fn mul(a: U, b: U) U {
            if (comptime A == .complex64) return .{ .re = a.re * b.re - a.im * b.im, .im = a.re * b.im + a.im * b.re };
            if (comptime A == .float32 or A == .float64) return a * b;
            if (comptime A == .bool_) return a and b;
            return a *% b;
        }
        /// The vector step: op(acc, load(x)) in contiguous and strided reductions.
        inline fn step(acc: U, v: T) U {
            return switch (op) {
                .all => acc and convert.cast(D, .bool_, v),
                .any => acc or convert.cast(D, .bool_, v),
                .sum => add(val(v), acc),
                .prod => mul(val(v), acc),
                .max => maximum(U, val(v), acc),
                .min => minimum(U, val(v), acc),
            };
        }
        /// The scalar step: Op{}(acc, x) in the general reduction.
        inline fn stepScalar(acc: U, v: T) U {
            return switch (op) {
                .max => maximum(U, acc, val(v)),
                .min => minimum(U, acc, val(v)),
                else => step(acc, v),
            };
        }
        /// The horizontal reduction of a (width-1) vector accumulator.
        inline fn horizontal(acc: U) U {
            if (comptime (op == .max or op == .min) and (A.isInexact())) {
                if (isNan(U, acc)) return canonicalNan(U);
            }
            return acc;
        }
        /// *out = op(*out, partial) after a contiguous run.
        inline fn combine(out: U, part: U) U {
            return switch (op) {
                .all => out and part,
                .any => out or part,
                .sum => add(part, out),
                .prod => mul(part, out),
                .max => maximum(U, out, part),
                .min => minimum(U, out, part),
            };
        }
    };
}

fn lowest(comptime A: Dtype) A.Type() {
    return switch (A) {
        .bool_ => false,
        .float16 => .{ .bits = 0xfc00 },
        .bfloat16 => .{ .bits = 0xff80 },
        .float32 => -std.math.inf(f32),
        .float64 => -std.math.inf(f64),
        .complex64 => .{ .re = -std.math.inf(f32), .im = 0 },
        else => std.math.minInt(A.Type()),
    };
}

fn highest(comptime A: Dtype) A.Type() {
    return switch (A) {
        .bool_ => true,
        .float16 => .{ .bits = 0x7c00 },
        .bfloat16 => .{ .bits = 0x7f80 },
        .float32 => std.math.inf(f32),
        .float64 => std.math.inf(f64),
        .complex64 => .{ .re = std.math.inf(f32), .im = 0 },
        else => std.math.maxInt(A.Type()),
    };
}

/// The accumulator dtype MLX uses for an op over dtype d.
fn accDtype(op: ReduceOp, d: Dtype) Dtype {
    return switch (op) {
        .all, .any => .bool_,
        .min, .max => d,
        .sum, .prod => switch (d) {
            .bool_, .uint8, .uint16, .uint32, .int8, .int16, .int32 => .int32,
            .float16, .bfloat16 => .float32,
            else => d,
        },
    };
}

// ---------------------------------------------------------------------------------------------
// MLX's reduction plan

const PlanType = enum(u8) { contiguous_all, contiguous, contiguous_strided, general_contiguous, general_strided, general };

const Plan = extern struct {
    type: PlanType,
    n: usize = 0,
    shape: [array.max_ndim]i64 = undefined,
    strides: [array.max_ndim]i64 = undefined,

    fn push(p: *Plan, s: i64, st: i64) void {
        p.shape[p.n] = s;
        p.strides[p.n] = st;
        p.n += 1;
    }
};

/// MLX's flags().contiguous: the elements fill their memory span exactly (any order).
fn isDense(x: *const Node) bool {
    var dims: [array.max_ndim][2]i64 = undefined;
    var n: usize = 0;
    for (0..x.shape.ndim) |i| {
        if (x.shape.dims[i] == 1) continue;
        if (x.strides[i] <= 0) return false;
        dims[n] = .{ x.shape.dims[i], x.strides[i] };
        n += 1;
    }
    std.mem.sort([2]i64, dims[0..n], {}, struct {
        fn f(_: void, a: [2]i64, b: [2]i64) bool {
            return a[1] < b[1];
        }
    }.f);
    var expect: i64 = 1;
    for (dims[0..n]) |d| {
        if (d[1] != expect) return false;
        expect *= d[0];
    }
    return true;
}

fn makePlan(x: *const Node, axes: []const usize) Plan {
    const ndim = x.shape.ndim;
    if (axes.len == ndim and isDense(x)) return .{ .type = .contiguous_all };
    if (x.isRowContiguous()) {
        var p = Plan{ .type = .contiguous };
        p.push(x.shape.dims[axes[0]], x.strides[axes[0]]);
        for (1..axes.len) |i| {
            if (axes[i] - 1 == axes[i - 1] and x.shape.dims[axes[i]] > 1) {
                p.shape[p.n - 1] *= x.shape.dims[axes[i]];
                p.strides[p.n - 1] = x.strides[axes[i]];
            } else {
                p.push(x.shape.dims[axes[i]], x.strides[axes[i]]);
            }
        }
        var m: usize = 0;
        for (0..p.n) |i| {
            if (p.shape[i] == 1) continue;
            p.shape[m] = p.shape[i];
            p.strides[m] = p.strides[i];
            m += 1;
        }
        p.n = m;
        if (m > 0 and p.strides[m - 1] == 1) return p;
        if (m > 0 and p.strides[m - 1] > 1) {
            p.type = .contiguous_strided;
            return p;
        }
    }
    // Reduced axes sorted by stride (zero strides last), adjacent ones merged.
    var red: [array.max_ndim][2]i64 = undefined;
    var n: usize = 0;
    for (axes) |a| {
        if (x.shape.dims[a] > 1) {
            red[n] = .{ x.shape.dims[a], x.strides[a] };
            n += 1;
        }
    }
    std.sort.insertion([2]i64, red[0..n], {}, struct {
        fn f(_: void, a: [2]i64, b: [2]i64) bool {
            const az = a[1] == 0;
            const bz = b[1] == 0;
            return if (az != bz) a[1] < b[1] else a[1] > b[1];
        }
    }.f);
    var i: usize = n;
    while (i >= 2) {
        i -= 1;
        const a = red[i];
        const b = red[i - 1];
        if (b[1] == a[0] * a[1]) {
            std.mem.copyForwards([2]i64, red[i .. n - 1], red[i + 1 .. n]);
            n -= 1;
            red[i - 1] = .{ a[0] * b[0], a[1] };
        }
    }
    var p = Plan{ .type = .general };
    for (red[0..n]) |r| p.push(r[0], r[1]);
    if (n == 0) return p;
    const last = p.strides[n - 1];
    if (last == 1) {
        p.type = .general_contiguous;
        return p;
    }
    if (last > 1) {
        var size: i64 = 1;
        var have_expand = false;
        const last_axis = axes[axes.len - 1];
        var d: usize = ndim;
        while (d > 0) {
            d -= 1;
            if (d == last_axis) continue;
            const st = x.strides[d];
            const sh: i64 = x.shape.dims[d];
            if (st == 0) {
                if (sh == 1) continue;
                have_expand = true;
                break;
            }
            if (st != size and sh != 1) break;
            size *= sh;
        }
        if (size > last or (size == last and !have_expand)) p.type = .general_strided;
    }
    return p;
}

/// Offsets (in elements) of the non-reduced positions, in output order.
const OuterIndex = extern struct {
    n: usize,
    shape: [array.max_ndim]i64,
    strides: [array.max_ndim]i64,

    fn init(x: *const Node, set: u32) OuterIndex {
        var o = OuterIndex{ .n = 0, .shape = undefined, .strides = undefined };
        for (0..x.shape.ndim) |i| {
            if (set & (@as(u32, 1) << @intCast(i)) != 0) continue;
            o.shape[o.n] = x.shape.dims[i];
            o.strides[o.n] = x.strides[i];
            o.n += 1;
        }
        return o;
    }

    fn loc(o: *const OuterIndex, idx: usize) i64 {
        var rem: i64 = @intCast(idx);
        var off: i64 = 0;
        var i = o.n;
        while (i > 0) {
            i -= 1;
            off += @mod(rem, o.shape[i]) * o.strides[i];
            rem = @divTrunc(rem, o.shape[i]);
        }
        return off;
    }
};

/// Row-major walk over the first `n` dims of a plan.
fn ndCount(p: *const Plan, n: usize) usize {
    var c: usize = 1;
    for (0..n) |i| c *= @intCast(p.shape[i]);
    return c;
}

fn ndLoc(p: *const Plan, n: usize, idx: usize) i64 {
    var rem: i64 = @intCast(idx);
    var off: i64 = 0;
    var i = n;
    while (i > 0) {
        i -= 1;
        off += @mod(rem, p.shape[i]) * p.strides[i];
        rem = @divTrunc(rem, p.shape[i]);
    }
    return off;
}

// ---------------------------------------------------------------------------------------------
// SIMD fast paths
//
// Each fast path computes exactly what the reference loop (MLX's plan, below; taken in
// primitives.reference_mode) computes, except floating-point sums and products, whose order of
// operations it changes:
//  * integer sums/products (wrapping), min/max and argmin/argmax are exact in any order, so their
//    lanes, blocks, row ranges and threads give the reference result bit for bit. min/max keep
//    MLX's rules: any NaN in a contiguous run gives the canonical quiet NaN and a zero result
//    carries the sign of the run's first zero; leading-axis (column) reductions keep MLX's
//    scalar step (which the compiler vectorizes), NaN payload included, and fold row ranges
//    with the same step on lanes. argmin/argmax give the first index of the extreme, or of the
//    first NaN (their columns are scanned row by row on lanes).
//  * floating-point sums and products of contiguous runs of at least `min_fast_run` elements
//    accumulate in 4 x N lanes (N: 256-bit vectors, 8 float32 or 4 float64, at every CPU
//    level) folded pairwise, over blocks of at most L elements (`blockLen`) whose B partials
//    are then folded pairwise. The blocks depend only on
//    the run length, so results do not depend on the number of threads. Error bound (Higham,
//    Accuracy and Stability of Numerical Algorithms, sec. 4.2), u the unit roundoff:
//    |computed - exact| <= (L/(4N) + N + log2(4N) + log2(B) + 4) u sum|x_i| + O(u^2) (N for
//    the scalar tail of a block): for a float32 sum of 16M elements (L = 16384, N = 8,
//    B = 1024) about 540 u sum|x_i|, where MLX's sequential sum has (16M - 1) u sum|x_i|.
//    Products have the same bound on their relative error while no partial product overflows
//    or underflows; where overflow, underflow and zeros meet, the order decides between inf, 0
//    and NaN (inf * 0), as MLX's own order does.
//  * leading-axis (column) reductions keep MLX's row-by-row order, except large ones
//    (`min_row_split` elements) with few outputs, whose rows are split into P <= 16 ranges
//    (`rowParts`, from the shape only) reduced in parallel and then folded in order: each output
//    is then a sum of P sequential range sums, within (R + P) u sum|x_i| for ranges of R rows.
//  Shorter runs, smaller column reductions and everything else keep MLX's order and results.

/// Floating-point runs shorter than this keep MLX's sequential order (bit-exact sums).
const min_fast_run = 128;
/// Elements per block of a long run (partials are combined in block order).
const block_len = 1 << 14;
/// Most blocks a run is split into (longer runs get longer blocks).
const max_blocks = 1024;

fn blockLen(n: usize) usize {
    const per = (n + max_blocks - 1) / max_blocks;
    return @max(block_len, std.mem.alignForward(usize, per, 256));
}

/// The lane width for element type C.
fn lanesOf(comptime C: type) comptime_int {
    return std.simd.suggestVectorLength(C) orelse 4;
}

/// N elements of dtype D from `in + i`, converted to the lane type of dtype CD (exact: widening
/// integers, reinterpreting same-width integers as MLX's casts do, float16/bfloat16 to float32).
inline fn loadLanes(comptime D: Dtype, comptime CD: Dtype, comptime N: comptime_int, in: [*]const D.Type(), i: usize) @Vector(N, CD.Type()) {
    const C = CD.Type();
    const T = D.Type();
    if (comptime D == .float16 or D == .bfloat16) {
        const p: [*]const u16 = @ptrCast(in);
        const h: @Vector(N, u16) = p[i..][0..N].*;
        return if (comptime D == .float16) half.f16ToF32V(N, h) else half.bf16ToF32V(N, h);
    } else if (comptime D == .bool_) {
        const b: @Vector(N, bool) = in[i..][0..N].*;
        return @intCast(@intFromBool(b));
    } else if (comptime T == C) {
        return in[i..][0..N].*;
    } else if (comptime @bitSizeOf(T) == @bitSizeOf(C)) {
        return @bitCast(@as(@Vector(N, T), in[i..][0..N].*));
    } else {
        return @intCast(@as(@Vector(N, T), in[i..][0..N].*));
    }
}

/// The fast paths of reduce op `op` over dtype D accumulating in A.
fn Simd(comptime op: ReduceOp, comptime D: Dtype, comptime A: Dtype) type {
    const T = D.Type();
    const U = A.Type();
    const O = Ops(op, D, A);
    // The dtype the lanes compute in, or null (no fast path: all/any, complex64, bool min/max).
    const CDopt: ?Dtype = switch (op) {
        .sum, .prod => switch (A) {
            .float32, .float64, .int32, .int64, .uint64 => A,
            else => null,
        },
        .max, .min => switch (D) {
            .float16, .bfloat16 => .float32,
            .bool_, .complex64 => null,
            else => D,
        },
        .all, .any => null,
    };
    const CD: Dtype = CDopt orelse .float32;
    const C = CD.Type();
    const is_float = CD == .float32 or CD == .float64;
    // Floating-point sums and products round differently with another lane count: theirs is
    // fixed (256-bit vectors: what the native x86-64 builds use), so every CPU level of a
    // portable build, and every machine, gives the same bits. Exact ops take the target's width.
    const N = if (is_float and (op == .sum or op == .prod)) 32 / @sizeOf(C) else lanesOf(C);
    const V = @Vector(N, C);
    const BV = @Vector(N, bool);
    return struct {
        pub const ok = CDopt != null;
        /// Whether splitting and reordering gives the reference result bit for bit.
        pub const exact = !(is_float and (op == .sum or op == .prod));
        /// The column step on lanes is the scalar step exactly when the lanes hold U itself.
        pub const columns_ok = ok and (if (op == .sum or op == .prod) C == U else C == T);
        pub const lanes = N;

        inline fn sload(v: T) C {
            return convert.cast(D, CD, v);
        }

        inline fn vload(in: [*]const T, i: usize) V {
            return loadLanes(D, CD, N, in, i);
        }

        inline fn f(a: anytype, b: @TypeOf(a)) @TypeOf(a) {
            return switch (op) {
                .sum => if (is_float) a + b else a +% b,
                .prod => if (is_float) a * b else a *% b,
                .max => if (is_float) @select(C, b > a, b, a) else @max(a, b),
                .min => if (is_float) @select(C, b < a, b, a) else @min(a, b),
                else => unreachable,
            };
        }

        inline fn fs(a: C, b: C) C {
            return switch (op) {
                .sum => if (is_float) a + b else a +% b,
                .prod => if (is_float) a * b else a *% b,
                .max => if (b > a) b else a,
                .min => if (b < a) b else a,
                else => unreachable,
            };
        }

        fn ident() C {
            return switch (op) {
                .sum => 0,
                .prod => 1,
                .max => if (is_float) -std.math.inf(C) else std.math.minInt(C),
                .min => if (is_float) std.math.inf(C) else std.math.maxInt(C),
                else => unreachable,
            };
        }

        /// Lanes folded pairwise (a fixed tree: lane j with lane j + m, halving m).
        inline fn horizontal(v: V) C {
            var a: [N]C = v;
            comptime var m = N;
            inline while (m > 1) {
                m /= 2;
                inline for (0..m) |j| a[j] = fs(a[j], a[j + m]);
            }
            return a[0];
        }

        /// One block (any length): the partial the reference `contiguous` loop would hand to its
        /// combine (after O.horizontal), exactly for exact ops.
        fn block(in: [*]const T, n: usize) U {
            var acc: [4]V = .{@as(V, @splat(ident()))} ** 4;
            var nan: [4]BV = .{@as(BV, @splat(false))} ** 4;
            var i: usize = 0;
            while (i + 4 * N <= n) : (i += 4 * N) {
                inline for (0..4) |k| {
                    const v = vload(in, i + k * N);
                    acc[k] = f(acc[k], v);
                    if (comptime is_float and (op == .max or op == .min)) nan[k] = nan[k] | (v != v);
                }
            }
            while (i + N <= n) : (i += N) {
                const v = vload(in, i);
                acc[0] = f(acc[0], v);
                if (comptime is_float and (op == .max or op == .min)) nan[0] = nan[0] | (v != v);
            }
            var r = horizontal(f(f(acc[0], acc[1]), f(acc[2], acc[3])));
            var tail = ident();
            var tail_nan = false;
            while (i < n) : (i += 1) {
                const v = sload(in[i]);
                if (comptime is_float and (op == .max or op == .min)) tail_nan = tail_nan or v != v;
                tail = fs(tail, v);
            }
            r = fs(r, tail);
            if (comptime op == .sum or op == .prod) return r;
            if (comptime is_float) {
                if (tail_nan or @reduce(.Or, (nan[0] | nan[1]) | (nan[2] | nan[3]))) return canonicalNan(U);
                // A zero extreme is the first zero of the run, with its sign.
                if (r == 0) {
                    for (0..n) |j| if (sload(in[j]) == 0) return O.val(in[j]);
                }
            }
            if (comptime C == U) return r else return convert.cast(CD, A, r);
        }

        /// Combine block partials in order: pairwise for floating-point sums and products,
        /// else the reference's combine (ties keep the earlier partial).
        fn combineBlocks(parts: []U) U {
            if (comptime !exact) {
                var m = parts.len;
                while (m > 1) {
                    const h = (m + 1) / 2;
                    for (0..m / 2) |j| parts[j] = fs(parts[j], parts[j + h]);
                    m = h;
                }
                return parts[0];
            }
            var acc = parts[0];
            for (parts[1..]) |p| {
                acc = switch (op) {
                    .max => maximum(U, p, acc),
                    .min => minimum(U, p, acc),
                    else => O.combine(acc, p),
                };
            }
            return acc;
        }

        /// The partial of a contiguous run of any length, block by block (blocks in parallel
        /// when `par`); the same value whatever `par` and the number of threads.
        fn run(in: [*]const T, n: usize, par: bool) U {
            if (n <= block_len) return block(in, n);
            const bl = blockLen(n);
            const nb = (n + bl - 1) / bl;
            var parts: [max_blocks]U = undefined;
            const Job = struct { in: [*]const T, n: usize, bl: usize, parts: *[max_blocks]U };
            const job = Job{ .in = in, .n = n, .bl = bl, .parts = &parts };
            pool.parallelFor(nb, if (par) 1 else nb, &job, struct {
                fn f(j: *const Job, s: usize, e: usize) void {
                    for (s..e) |b| {
                        const lo = b * j.bl;
                        j.parts[b] = block(j.in + lo, @min(j.bl, j.n - lo));
                    }
                }
            }.f);
            return combineBlocks(parts[0..nb]);
        }

        /// MLX's scalar step out = op(out, v) on lanes (bit-exact: the NaN rules included).
        inline fn stepLanes(o: V, v: V) V {
            return switch (op) {
                .sum, .prod => f(v, o),
                .max => if (is_float) @select(C, (v != v) | (v > o), v, o) else @max(v, o),
                .min => if (is_float) @select(C, (v != v) | (v < o), v, o) else @min(v, o),
                else => unreachable,
            };
        }

        /// out[j] = step(out[j], row[j]) for j < cols, for each of `rows` rows (row r at
        /// in + r * row_stride), row by row: MLX's scalar step, which the compiler vectorizes
        /// (as fast as explicit lanes here; reading several rows per pass is slower).
        fn columns(in: [*]const T, row_stride: usize, rows: usize, out: [*]U, cols: usize) void {
            for (0..rows) |r| {
                const row = in + r * row_stride;
                for (0..cols) |j| out[j] = O.step(out[j], row[j]);
            }
        }

        /// out[j] = step(out[j], part[j]) where part holds the fold of later rows: the order
        /// of the partials is the order of their rows (exact for exact ops).
        fn foldInto(out: [*]U, part: [*]const U, n: usize) void {
            if (comptime !columns_ok) unreachable;
            var j: usize = 0;
            while (j + N <= n) : (j += N) {
                const o: V = out[j..][0..N].*;
                const v: V = part[j..][0..N].*;
                out[j..][0..N].* = stepLanes(o, v);
            }
            while (j < n) : (j += 1) {
                const v = part[j];
                const o = out[j];
                out[j] = switch (op) {
                    .sum, .prod => fs(v, o),
                    .max => if (is_float and v != v) v else if (v > o) v else o,
                    .min => if (is_float and v != v) v else if (v < o) v else o,
                    else => unreachable,
                };
            }
        }
    };
}

/// Leading-axis reductions with few outputs split the reduced rows into this many ranges at
/// most (each range has at least `min_rows_per_part` rows); the split depends only on the
/// shape, so results do not depend on the number of threads.
const max_row_parts = 16;
const min_rows_per_part = 16;
/// Inputs smaller than this (elements) are not split by rows (one core streams cached data as
/// fast as two). A variable so that tests can reach the split with small inputs.
var min_row_split: usize = 1 << 21;

fn rowParts(rows: usize) usize {
    return @max(1, @min(max_row_parts, rows / min_rows_per_part));
}

/// argmin/argmax fast paths over dtype D (not bool or complex64).
fn ArgSimd(comptime D: Dtype) type {
    const T = D.Type();
    const CD: Dtype = switch (D) {
        .float16, .bfloat16 => .float32,
        .bool_, .complex64 => .float32,
        else => D,
    };
    const C = CD.Type();
    const N = lanesOf(C);
    const V = @Vector(N, C);
    const IV = @Vector(N, u32);
    const BV = @Vector(N, bool);
    const is_float = CD == .float32 or CD == .float64;
    return struct {
        const none: u32 = std.math.maxInt(u32);
        pub const ok = D != .bool_ and D != .complex64;
        pub const lanes = N;

        /// The best value so far (NaN: `i` is the first NaN) and its index.
        pub const Best = struct { v: C, i: u32 };

        inline fn sload(v: T) C {
            return convert.cast(D, CD, v);
        }

        inline fn vload(in: [*]const T, i: usize) V {
            return loadLanes(D, CD, N, in, i);
        }

        /// MLX's rule: a NaN beats everything but a NaN; otherwise strictly greater (less).
        inline fn better(comptime amax: bool, v: C, best: C) bool {
            if (comptime is_float) {
                if (v != v) return best == best;
            }
            return if (amax) v > best else v < best;
        }

        inline fn betterLanes(comptime amax: bool, v: V, best: V) BV {
            const strict = if (amax) v > best else v < best;
            if (comptime is_float) return strict | ((v != v) & (best == best));
            return strict;
        }

        /// The first extreme (or first NaN) of in[0..n], n >= 1, index relative to `in`. Two
        /// sets of lanes keep their first extreme and its index; a NaN anywhere sends the
        /// block to a scalar search for the first NaN.
        fn block(comptime amax: bool, in: [*]const T, n: usize) Best {
            var r = Best{ .v = sload(in[0]), .i = 0 };
            var i: usize = 1;
            if (n >= 2 * N) {
                const iota = std.simd.iota(u32, N);
                var best0 = vload(in, 0);
                var best1 = vload(in, N);
                var idx0: IV = iota;
                var idx1: IV = iota + @as(IV, @splat(N));
                var nan: BV = (best0 != best0) | (best1 != best1);
                i = 2 * N;
                while (i + 2 * N <= n) : (i += 2 * N) {
                    const v0 = vload(in, i);
                    const v1 = vload(in, i + N);
                    const cur0 = @as(IV, @splat(@as(u32, @intCast(i)))) + iota;
                    const m0 = if (amax) v0 > best0 else v0 < best0;
                    const m1 = if (amax) v1 > best1 else v1 < best1;
                    best0 = @select(C, m0, v0, best0);
                    best1 = @select(C, m1, v1, best1);
                    idx0 = @select(u32, m0, cur0, idx0);
                    idx1 = @select(u32, m1, cur0 + @as(IV, @splat(N)), idx1);
                    if (comptime is_float) nan = nan | (v0 != v0) | (v1 != v1);
                }
                if (is_float and @reduce(.Or, nan)) {
                    // The first NaN of the lanes' part is the answer.
                    for (0..i) |j| {
                        if (sload(in[j]) != sload(in[j])) return .{ .v = sload(in[j]), .i = @intCast(j) };
                    }
                    unreachable;
                }
                // No NaN: the extreme, and the first index holding it in either set of lanes.
                const m = if (amax) @max(@reduce(.Max, best0), @reduce(.Max, best1)) else @min(@reduce(.Min, best0), @reduce(.Min, best1));
                const none_v: IV = @splat(none);
                const k0 = @reduce(.Min, @select(u32, best0 == @as(V, @splat(m)), idx0, none_v));
                const k1 = @reduce(.Min, @select(u32, best1 == @as(V, @splat(m)), idx1, none_v));
                const k = @min(k0, k1);
                r = .{ .v = sload(in[k]), .i = k };
            }
            while (i < n) : (i += 1) {
                const v = sload(in[i]);
                if (better(amax, v, r.v)) r = .{ .v = v, .i = @intCast(i) };
            }
            return r;
        }

        /// The index of the first extreme of a contiguous run (n >= 1), block by block (blocks
        /// in parallel when `par`).
        fn run(comptime amax: bool, in: [*]const T, n: usize, par: bool) u32 {
            if (n <= block_len) return block(amax, in, n).i;
            const bl = blockLen(n);
            const nb = (n + bl - 1) / bl;
            var parts: [max_blocks]Best = undefined;
            const Job = struct { in: [*]const T, n: usize, bl: usize, parts: *[max_blocks]Best };
            const job = Job{ .in = in, .n = n, .bl = bl, .parts = &parts };
            pool.parallelFor(nb, if (par) 1 else nb, &job, struct {
                fn f(j: *const Job, s: usize, e: usize) void {
                    for (s..e) |b| {
                        const lo = b * j.bl;
                        var p = block(amax, j.in + lo, @min(j.bl, j.n - lo));
                        p.i += @intCast(lo);
                        j.parts[b] = p;
                    }
                }
            }.f);
            var acc = parts[0];
            for (parts[1..nb]) |p| {
                if (better(amax, p.v, acc.v)) acc = p;
            }
            return acc.i;
        }

        /// Fold a later row range's (best, idx) into the earlier one's, column by column (ties
        /// and NaN after NaN keep the earlier range).
        fn foldColumns(comptime amax: bool, best: [*]C, idx: [*]u32, pbest: [*]const C, pidx: [*]const u32, cols: usize) void {
            var j: usize = 0;
            while (j + N <= cols) : (j += N) {
                const b: V = best[j..][0..N].*;
                const v: V = pbest[j..][0..N].*;
                const m = betterLanes(amax, v, b);
                best[j..][0..N].* = @select(C, m, v, b);
                const o: IV = idx[j..][0..N].*;
                const pi: IV = pidx[j..][0..N].*;
                idx[j..][0..N].* = @select(u32, m, pi, o);
            }
            while (j < cols) : (j += 1) {
                if (better(amax, pbest[j], best[j])) {
                    best[j] = pbest[j];
                    idx[j] = pidx[j];
                }
            }
        }

        /// For each column j < cols, the index of the first extreme down `rows` rows (row r at
        /// in + r * row_stride, numbered from `r_base`), as the sequential scan along the axis
        /// gives it; `best` is scratch.
        fn columns(comptime amax: bool, in: [*]const T, row_stride: usize, rows: usize, r_base: usize, best: [*]C, out: [*]u32, cols: usize) void {
            for (0..cols) |j| {
                best[j] = sload(in[j]);
                out[j] = @intCast(r_base);
            }
            var r: usize = 1;
            while (r < rows) : (r += 1) {
                const row = in + r * row_stride;
                const rv: IV = @splat(@as(u32, @intCast(r_base + r)));
                var j: usize = 0;
                while (j + N <= cols) : (j += N) {
                    const b: V = best[j..][0..N].*;
                    const v = vload(row, j);
                    const m = betterLanes(amax, v, b);
                    best[j..][0..N].* = @select(C, m, v, b);
                    const o: IV = out[j..][0..N].*;
                    out[j..][0..N].* = @select(u32, m, rv, o);
                }
                while (j < cols) : (j += 1) {
                    const v = sload(row[j]);
                    if (better(amax, v, best[j])) {
                        best[j] = v;
                        out[j] = @intCast(r_base + r);
                    }
                }
            }
        }
    };
}

/// The reductions a portable build runs from the CPU level's kernel object (engine/cpu.zig,
/// engine/kernels.zig): those with SIMD fast paths.
pub fn reduceDispatched(comptime op: ReduceOp, comptime D: Dtype) bool {
    return Simd(op, D, accDtype(op, D)).ok;
}

pub fn reduceEntryName(comptime op: ReduceOp, comptime D: Dtype) []const u8 {
    return "reduce_" ++ @tagName(op) ++ "_" ++ @tagName(D);
}

/// The kernel of reduce op `op` over dtype D (with MLX's accumulator dtype).
pub fn ReduceKernel(comptime op: ReduceOp, comptime D: Dtype) type {
    return Kernel(op, D, accDtype(op, D));
}

fn Kernel(comptime op: ReduceOp, comptime D: Dtype, comptime A: Dtype) type {
    const T = D.Type();
    const U = A.Type();
    const O = Ops(op, D, A);
    const S = Simd(op, D, A);
    return struct {
        /// A planned reduction: what the kernel objects' C ABI passes (engine/kernels.zig).
        pub const Ctx = extern struct {
            in: [*]const T,
            out: [*]U,
            plan: *const Plan,
            outer: *const OuterIndex,
            out_size: usize,
            /// Take the fast paths (not reference mode).
            fast: bool,
            /// Plan contiguous_all: the elements, `in` their lowest address.
            all_n: usize = 0,
            /// Row ranges of a strided plan reduced into separate partials (1: none).
            row_parts: usize = 1,
            /// Partial outputs of row ranges 1.. (row_parts - 1 times out_size).
            scratch: [*]U = undefined,
        };
        pub const Fn = fn (*const Ctx) callconv(.c) void;

        /// Run a planned reduction (compiled per CPU level in a portable build).
        pub fn call(c: *const Ctx) callconv(.c) void {
            if (c.plan.type == .contiguous_all) return allReduce(c);
            run(c);
        }

        fn allReduce(c: *const Ctx) void {
            const n = c.all_n;
            c.out[0] = O.init();
            if (fastRun(c.fast, n)) {
                contiguousRun(true, c.in, n, &c.out[0], true);
                return;
            }
            if (comptime exactInChunks()) {
                if (n >= 1 << 16 and pool.threads() > 1) {
                    allReduceChunked(c.in, n, &c.out[0]);
                    return;
                }
            }
            contiguous(c.in, n, &c.out[0]);
        }

        /// The reference loop over a contiguous run: MLX's order.
        fn contiguous(in: [*]const T, n: usize, out: *U) void {
            var acc = O.init();
            for (0..n) |i| acc = O.step(acc, in[i]);
            out.* = O.combine(out.*, O.horizontal(acc));
        }

        /// Whether a contiguous run of n elements takes the fast path.
        inline fn fastRun(fast: bool, n: usize) bool {
            if (comptime !S.ok) return false;
            return fast and (if (S.exact) n >= S.lanes else n >= min_fast_run);
        }

        /// A contiguous run into *out, by the fast path when there is one for this run.
        inline fn contiguousRun(fast: bool, in: [*]const T, n: usize, out: *U, par: bool) void {
            if (comptime S.ok) {
                if (fastRun(fast, n)) {
                    out.* = O.combine(out.*, S.run(in, n, par));
                    return;
                }
            }
            contiguous(in, n, out);
        }

        /// Whether chunks reduced separately and combined in order give exactly the
        /// sequential result: everything but floating-point sums and products.
        fn exactInChunks() bool {
            return !((op == .sum or op == .prod) and A.isInexact());
        }

        /// The all-reduce of a dense run split over the pool; equal to `contiguous`.
        fn allReduceChunked(in: [*]const T, n: usize, out: *U) void {
            const max_chunks = 64;
            const k = @min(pool.threads(), max_chunks);
            var partials: [max_chunks]U = undefined;
            const Job = struct { in: [*]const T, n: usize, k: usize, partials: *[max_chunks]U };
            const job = Job{ .in = in, .n = n, .k = k, .partials = &partials };
            pool.parallelFor(k, 1, &job, struct {
                fn f(j: *const Job, s: usize, e: usize) void {
                    const per = (j.n + j.k - 1) / j.k;
                    for (s..e) |c| {
                        const lo = @min(c * per, j.n);
                        const hi = @min(lo + per, j.n);
                        var acc = O.init();
                        for (lo..hi) |i| acc = O.step(acc, j.in[i]);
                        j.partials[c] = acc;
                    }
                }
            }.f);
            // Later chunks come second, as later elements do in the sequential fold (ties keep
            // the earlier value; NaN stays NaN until the horizontal step).
            var acc = partials[0];
            for (partials[1..k]) |p| {
                acc = switch (op) {
                    .max => maximum(U, p, acc),
                    .min => minimum(U, p, acc),
                    else => O.combine(acc, p),
                };
            }
            out.* = O.combine(out.*, O.horizontal(acc));
        }

        /// The reference strided step: rows of `stride` outputs.
        fn strided(in_start: [*]const T, out: [*]U, size: usize, stride: usize) void {
            var in = in_start;
            for (0..size) |_| {
                for (0..stride) |j| out[j] = O.step(out[j], in[j]);
                in += stride;
            }
        }

        fn at(base: [*]const T, off: i64) [*]const T {
            return if (off >= 0) base + @as(usize, @intCast(off)) else base - @as(usize, @intCast(-off));
        }

        /// A strided plan with its reduced rows split into c.row_parts ranges, each folded (in
        /// parallel) into its own partial outputs, the partials then folded in row order.
        fn stridedRows(c: *const Ctx) void {
            pool.parallelFor(c.row_parts, 1, c, struct {
                fn f(k: *const Ctx, s: usize, e: usize) void {
                    const pp = k.plan;
                    const st: usize = @intCast(pp.strides[pp.n - 1]);
                    const rs: usize = @intCast(pp.shape[pp.n - 1]);
                    const segs = ndCount(pp, pp.n - 1);
                    const per = (rs + k.row_parts - 1) / k.row_parts;
                    for (s..e) |part| {
                        const r0 = @min(part * per, rs);
                        const nrows = @min(per, rs - r0);
                        const dst = if (part == 0) k.out else k.scratch + (part - 1) * k.out_size;
                        for (0..k.out_size) |j| dst[j] = O.init();
                        if (nrows == 0) continue;
                        var b: usize = 0;
                        while (b * st < k.out_size) : (b += 1) {
                            const i = b * st;
                            const off = k.outer.loc(i);
                            for (0..segs) |sgi| S.columns(at(k.in, off + ndLoc(pp, pp.n - 1, sgi)) + r0 * st, st, nrows, dst + i, st);
                        }
                    }
                }
            }.f);
            for (1..c.row_parts) |part| S.foldInto(c.out, c.scratch + (part - 1) * c.out_size, c.out_size);
        }

        fn run(c: *const Ctx) void {
            const p = c.plan;
            const out_size = c.out_size;
            switch (p.type) {
                .contiguous_all => unreachable,
                .contiguous, .general_contiguous => {
                    const rsize: usize = @intCast(p.shape[p.n - 1]);
                    const segs_all = ndCount(p, p.n - 1);
                    if (c.fast and out_size < pool.threads() and rsize >= 2 * block_len) {
                        // Few long runs: split each run's blocks over the pool instead.
                        for (0..out_size) |i| {
                            const off = c.outer.loc(i);
                            c.out[i] = O.init();
                            for (0..segs_all) |sgi| contiguousRun(true, at(c.in, off + ndLoc(p, p.n - 1, sgi)), rsize, &c.out[i], true);
                        }
                        return;
                    }
                    const grain = @max(1, (1 << 15) / @max(rsize * segs_all, 1));
                    pool.parallelFor(out_size, grain, c, struct {
                        fn f(k: *const Ctx, s: usize, e: usize) void {
                            const pp = k.plan;
                            const rs: usize = @intCast(pp.shape[pp.n - 1]);
                            const segs = ndCount(pp, pp.n - 1);
                            for (s..e) |i| {
                                const off = k.outer.loc(i);
                                k.out[i] = O.init();
                                for (0..segs) |sgi| contiguousRun(k.fast, at(k.in, off + ndLoc(pp, pp.n - 1, sgi)), rs, &k.out[i], false);
                            }
                        }
                    }.f);
                },
                .contiguous_strided, .general_strided => {
                    // Outputs come in blocks of `stride` contiguous positions; every output sees
                    // its rows in order (MLX's order), unless the rows are split into ranges.
                    const stride: usize = @intCast(p.strides[p.n - 1]);
                    const blocks = out_size / stride;
                    if (c.row_parts > 1) {
                        if (comptime S.columns_ok) stridedRows(c);
                        return;
                    }
                    const work = @as(usize, @intCast(p.shape[p.n - 1])) * stride * ndCount(p, p.n - 1);
                    const grain = @max(1, (1 << 15) / @max(work, 1));
                    pool.parallelFor(blocks, grain, c, struct {
                        fn f(k: *const Ctx, s: usize, e: usize) void {
                            const pp = k.plan;
                            const st: usize = @intCast(pp.strides[pp.n - 1]);
                            const rs: usize = @intCast(pp.shape[pp.n - 1]);
                            const segs = ndCount(pp, pp.n - 1);
                            for (s..e) |b| {
                                const i = b * st;
                                const off = k.outer.loc(i);
                                const o = k.out + i;
                                for (0..st) |j| o[j] = O.init();
                                for (0..segs) |sgi| strided(at(k.in, off + ndLoc(pp, pp.n - 1, sgi)), o, rs, st);
                            }
                        }
                    }.f);
                },
                .general => {
                    const count = ndCount(p, p.n);
                    const grain = @max(1, (1 << 15) / @max(count, 1));
                    pool.parallelFor(out_size, grain, c, struct {
                        fn f(k: *const Ctx, s: usize, e: usize) void {
                            const pp = k.plan;
                            const cnt = ndCount(pp, pp.n);
                            for (s..e) |i| {
                                const off = k.outer.loc(i);
                                var v = O.init();
                                // Row-major walk with a running offset (no division per element).
                                var idx = [_]i64{0} ** array.max_ndim;
                                var pos: i64 = 0;
                                for (0..cnt) |_| {
                                    v = O.stepScalar(v, at(k.in, off + pos)[0]);
                                    var d = pp.n;
                                    while (d > 0) {
                                        d -= 1;
                                        idx[d] += 1;
                                        pos += pp.strides[d];
                                        if (idx[d] < pp.shape[d]) break;
                                        pos -= pp.strides[d] * pp.shape[d];
                                        idx[d] = 0;
                                    }
                                }
                                k.out[i] = v;
                            }
                        }
                    }.f);
                },
            }
        }

        /// Reduce x over `set` into `out` (out.len outputs, accumulator dtype A).
        fn reduceInto(x: *const Node, set: u32, out: [*]U, out_size: usize) errors.Error!void {
            const in: [*]const T = @ptrCast(@alignCast(x.data()));
            if (x.size() == 0) {
                for (0..out_size) |i| out[i] = O.init();
                return;
            }
            const fast = !primitives.reference_mode;
            var axes_buf: [array.max_ndim]usize = undefined;
            var na: usize = 0;
            for (0..x.shape.ndim) |i| {
                if (set & (@as(u32, 1) << @intCast(i)) != 0) {
                    axes_buf[na] = i;
                    na += 1;
                }
            }
            var plan = makePlan(x, axes_buf[0..na]);
            const outer = OuterIndex.init(x, set);
            if (plan.type == .contiguous_all) {
                // Memory order, from the lowest address.
                var base = in;
                for (0..x.shape.ndim) |i| {
                    if (x.strides[i] < 0) base -= @as(usize, @intCast(-x.strides[i] * (x.shape.dims[i] - 1)));
                }
                const ctx = Ctx{ .in = base, .out = out, .plan = &plan, .outer = &outer, .out_size = out_size, .fast = fast, .all_n = x.size() };
                dispatch(&ctx);
                return;
            }
            if (plan.n == 0) {
                // Only size-1 axes are reduced: each output is one element.
                plan.type = .general;
            }
            var ctx = Ctx{ .in = in, .out = out, .plan = &plan, .outer = &outer, .out_size = out_size, .fast = fast };
            var scratch: ?*array.Buffer = null;
            defer if (scratch) |b| b.release();
            if (comptime S.columns_ok) {
                if (fast and (plan.type == .contiguous_strided or plan.type == .general_strided)) {
                    // Too few output blocks to keep the pool busy: split the rows instead (each
                    // range streams whole rows, which reading column chunks would not).
                    const st: usize = @intCast(plan.strides[plan.n - 1]);
                    const rs: usize = @intCast(plan.shape[plan.n - 1]);
                    const parts = rowParts(rs);
                    if (out_size / st < 2 * pool.threads() and x.size() >= min_row_split and parts > 1) {
                        scratch = try array.newBuffer((parts - 1) * out_size * @sizeOf(U), @tagName(op));
                        ctx.row_parts = parts;
                        ctx.scratch = @ptrCast(@alignCast(scratch.?.ptr));
                    }
                }
            }
            dispatch(&ctx);
        }

        /// `call` at the CPU's level in a portable build (engine/cpu.zig), else here.
        fn dispatch(c: *const Ctx) void {
            if (comptime cpu.dispatch and reduceDispatched(op, D)) {
                cpu.pick(Fn, comptime reduceEntryName(op, D))(c);
            } else call(c);
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Kernels

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    switch (p) {
        .reduce => |r| try evalReduce(node, r),
        .arg_reduce => |r| try evalArgReduce(node, r),
        .median => |m| try evalMedian(node, m),
        .logsumexp => try evalLogsumexp(node),
        .logsumexp_combine => try evalLogsumexpCombine(node),
    }
}

fn evalReduce(node: *Node, r: Reduce) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    if (r.copy) {
        convert.copyConvert(x, node.data(), node.dtype);
        return;
    }
    const out_size = node.size();
    if (out_size == 0) return;
    @setEvalBranchQuota(20000);
    switch (r.op) {
        inline else => |op| switch (x.dtype) {
            inline else => |D| {
                const A = comptime accDtype(op, D);
                const K = Kernel(op, D, A);
                if (comptime A.size() == outDtype(op, D).size()) {
                    // Same width (int32 for uint32 outputs: the same bits).
                    try K.reduceInto(x, r.axes, @ptrCast(@alignCast(node.data())), out_size);
                } else {
                    // float16/bfloat16 accumulate in float32, rounded once at the end.
                    const tmp = try array.newBuffer(out_size * @sizeOf(A.Type()), @tagName(op));
                    defer tmp.release();
                    const acc: [*]A.Type() = @ptrCast(@alignCast(tmp.ptr));
                    try K.reduceInto(x, r.axes, acc, out_size);
                    const Out = comptime outDtype(op, D);
                    const o: [*]Out.Type() = @ptrCast(@alignCast(node.data()));
                    for (0..out_size) |i| o[i] = convert.cast(A, Out, acc[i]);
                }
            },
        },
    }
}

/// Element `off` (in elements, possibly negative: reversed views) from `base`.
inline fn load(comptime T: type, base: [*]const T, off: i64) T {
    return if (off >= 0) base[@intCast(off)] else (base - @as(usize, @intCast(-off)))[0];
}

fn evalArgReduce(node: *Node, r: ArgReduce) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    const out: [*]u32 = @ptrCast(@alignCast(node.data()));
    switch (x.dtype) {
        inline else => |D| {
            const S = ArgSimd(D);
            if (comptime S.ok) {
                if (!primitives.reference_mode and x.isRowContiguous() and x.size() < std.math.maxInt(u32)) {
                    switch (r.op) {
                        inline else => |op| try argFast(D, op == .argmax, x, node, r.axis),
                    }
                    return;
                }
            }
            const T = D.Type();
            const in: [*]const T = @ptrCast(@alignCast(x.data()));
            const Better = struct {
                inline fn better(op: ArgOp, v: T, best: T) bool {
                    if (isNan(T, v)) return !isNan(T, best);
                    return switch (op) {
                        .argmax => gt(T, v, best),
                        .argmin => lt(T, v, best),
                    };
                }
            };
            if (r.axis == null) {
                var it = convert.Iter.init(x);
                var best = load(T, in, it.next());
                var idx: u32 = 0;
                for (1..x.size()) |j| {
                    const v = load(T, in, it.next());
                    if (Better.better(r.op, v, best)) {
                        best = v;
                        idx = @intCast(j);
                    }
                }
                out[0] = idx;
                return;
            }
            const axis = r.axis.?;
            const set = @as(u32, 1) << @intCast(axis);
            const outer = OuterIndex.init(x, set);
            const Ctx = struct { in: [*]const T, out: [*]u32, outer: *const OuterIndex, n: usize, stride: i64, op: ArgOp };
            const ctx = Ctx{ .in = in, .out = out, .outer = &outer, .n = @intCast(x.shape.dims[axis]), .stride = x.strides[axis], .op = r.op };
            pool.parallelFor(node.size(), @max(1, (1 << 15) / @max(ctx.n, 1)), &ctx, struct {
                fn f(k: *const Ctx, s: usize, e: usize) void {
                    for (s..e) |i| {
                        var off = k.outer.loc(i);
                        var best = load(T, k.in, off);
                        var idx: u32 = 0;
                        for (1..k.n) |j| {
                            off += k.stride;
                            const v = load(T, k.in, off);
                            if (Better.better(k.op, v, best)) {
                                best = v;
                                idx = @intCast(j);
                            }
                        }
                        k.out[i] = idx;
                    }
                }
            }.f);
        },
    }
}

/// argmin/argmax of a row-contiguous array by the SIMD paths: runs along the last axis (or the
/// flattened array), or columns (an axis with contiguous elements after it) scanned row by row.
/// Plans here (the scratch buffer of a column split), computes in ArgKernel.
fn argFast(comptime D: Dtype, comptime amax: bool, x: *Node, node: *Node, axis_opt: ?u8) errors.Error!void {
    const K = ArgKernel(D, amax);
    const C = K.C;
    var ctx = K.Ctx{ .in = @ptrCast(@alignCast(x.data())), .out = @ptrCast(@alignCast(node.data())), .n_total = x.size() };
    var scratch: ?*array.Buffer = null;
    defer if (scratch) |b| b.release();
    if (axis_opt) |axis| {
        ctx.all = false;
        ctx.n = @intCast(x.shape.dims[axis]);
        for (axis + 1..x.shape.ndim) |i| ctx.inner *= @intCast(x.shape.dims[i]);
        ctx.outer = ctx.n_total / (ctx.n * ctx.inner);
        if (ctx.inner > 1) {
            // Columns: with few outer indices, the rows are split into ranges (whole rows streamed
            // by each range), whose (best, index) partials are then folded in row order.
            ctx.parts = if (ctx.outer < 2 * pool.threads() and ctx.n_total >= min_row_split) rowParts(ctx.n) else 1;
            const out_size = ctx.outer * ctx.inner;
            const idx_off = std.mem.alignForward(usize, out_size * @sizeOf(C) * ctx.parts, 64);
            scratch = try array.newBuffer(idx_off + out_size * 4 * (ctx.parts - 1), "arg_reduce");
            ctx.best = @ptrCast(@alignCast(scratch.?.ptr));
            ctx.idx = @ptrCast(@alignCast(scratch.?.ptr + idx_off));
        }
    }
    if (comptime cpu.dispatch) {
        cpu.pick(K.Fn, comptime argEntryName(D, amax))(&ctx);
    } else K.call(&ctx);
}

pub fn argDispatched(comptime D: Dtype) bool {
    return ArgSimd(D).ok;
}

pub fn argEntryName(comptime D: Dtype, comptime amax: bool) []const u8 {
    return (if (amax) "argmax_" else "argmin_") ++ @tagName(D);
}

/// The argmin/argmax fast paths over dtype D, planned by argFast (compiled per CPU level in a
/// portable build: engine/kernels.zig).
pub fn ArgKernel(comptime D: Dtype, comptime amax: bool) type {
    const S = ArgSimd(D);
    const T = D.Type();
    return struct {
        pub const C = @TypeOf(@as(S.Best, undefined).v);
        pub const Ctx = extern struct {
            in: [*]const T,
            out: [*]u32,
            n_total: usize,
            /// Over the flattened array (else along an axis of n, with `inner` elements after it).
            all: bool = true,
            n: usize = 0,
            inner: usize = 1,
            outer: usize = 1,
            /// Columns: row ranges, and their scratch (best values; indices of ranges 1..).
            parts: usize = 1,
            best: [*]C = undefined,
            idx: [*]u32 = undefined,
        };
        pub const Fn = fn (*const Ctx) callconv(.c) void;

        pub fn call(k: *const Ctx) callconv(.c) void {
            const in = k.in;
            const out = k.out;
            if (k.all) {
                out[0] = S.run(amax, in, k.n_total, true);
                return;
            }
            const n = k.n;
            const outer = k.outer;
            if (k.inner == 1) {
                // Rows along the last axis: rows in parallel, or one long row's blocks.
                if (outer < pool.threads() and n >= 2 * block_len) {
                    for (0..outer) |o| out[o] = S.run(amax, in + o * n, n, true);
                    return;
                }
                pool.parallelFor(outer, @max(1, (1 << 15) / @max(n, 1)), k, struct {
                    fn f(c: *const Ctx, s: usize, e: usize) void {
                        for (s..e) |o| c.out[o] = S.run(amax, c.in + o * c.n, c.n, false);
                    }
                }.f);
                return;
            }
            const parts = k.parts;
            pool.parallelFor(outer * parts, if (parts > 1) 1 else @max(1, (1 << 15) / @max(n * k.inner, 1)), k, struct {
                fn f(c: *const Ctx, s: usize, e: usize) void {
                    const per = (c.n + c.parts - 1) / c.parts;
                    for (s..e) |item| {
                        const part = item % c.parts;
                        const o = item / c.parts;
                        const r0 = @min(part * per, c.n);
                        const nrows = @min(per, c.n - r0);
                        if (nrows == 0) continue;
                        const size = c.outer * c.inner;
                        const b = c.best + part * size + o * c.inner;
                        const dst = if (part == 0) c.out + o * c.inner else c.idx + (part - 1) * size + o * c.inner;
                        S.columns(amax, c.in + (o * c.n + r0) * c.inner, c.inner, nrows, r0, b, dst, c.inner);
                    }
                }
            }.f);
            if (parts > 1) {
                const out_size = outer * k.inner;
                const per = (n + parts - 1) / parts;
                for (1..parts) |part| {
                    if (part * per >= n) break;
                    S.foldColumns(amax, k.best, out, k.best + part * out_size, k.idx + (part - 1) * out_size, out_size);
                }
            }
        }
    };
}

fn evalMedian(node: *Node, m: Median) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    const out_size = node.size();
    if (out_size == 0) return;
    // The reduced positions' offsets, in row-major order over the reduced axes.
    var red_shape: [array.max_ndim]i64 = undefined;
    var red_strides: [array.max_ndim]i64 = undefined;
    var nr: usize = 0;
    var count: usize = 1;
    for (0..x.shape.ndim) |i| {
        if (m.axes & (@as(u32, 1) << @intCast(i)) == 0) continue;
        red_shape[nr] = x.shape.dims[i];
        red_strides[nr] = x.strides[i];
        count *= @intCast(x.shape.dims[i]);
        nr += 1;
    }
    const outer = OuterIndex.init(x, m.axes);
    switch (x.dtype) {
        inline else => |D| {
            const Out = comptime atLeastFloat(D);
            // Values are sorted as float64 (exact for every dtype but 64-bit integers, which are
            // converted to float32 for the result anyway... so sort in the input type instead).
            const T = D.Type();
            const tmp = try array.newBuffer(count * @sizeOf(T), "median");
            defer tmp.release();
            const vals: [*]T = @ptrCast(@alignCast(tmp.ptr));
            const in: [*]const T = @ptrCast(@alignCast(x.data()));
            const o: [*]Out.Type() = @ptrCast(@alignCast(node.data()));
            const C = if (Out == .float64) f64 else f32;
            for (0..out_size) |i| {
                const base = outer.loc(i);
                for (0..count) |j| {
                    var rem: i64 = @intCast(j);
                    var off = base;
                    var k = nr;
                    while (k > 0) {
                        k -= 1;
                        off += @mod(rem, red_shape[k]) * red_strides[k];
                        rem = @divTrunc(rem, red_shape[k]);
                    }
                    vals[j] = load(T, in, off);
                }
                // NaNs sort last, as MLX's (stable) sort: equal values keep their order, which
                // decides the sign of a zero median.
                std.sort.block(T, vals[0..count], {}, struct {
                    fn f(_: void, a: T, b: T) bool {
                        if (isNan(T, b)) return !isNan(T, a);
                        if (isNan(T, a)) return false;
                        return lt(T, a, b);
                    }
                }.f);
                // MLX's median is NaN when any reduced value is ((NaN, 0) for complex64).
                if (comptime D.isInexact()) {
                    if (isNan(T, vals[count - 1])) {
                        o[i] = canonicalNan(Out.Type());
                        continue;
                    }
                }
                const mp = count / 2;
                var r = convert.cast(D, Out, vals[mp]);
                if (comptime D == .complex64) {
                    if (count % 2 == 0) {
                        // (upper + lower) * (0.5 + 0i), as MLX's complex add and multiply.
                        const lo = vals[mp - 1];
                        const sum = scalar_math.C.init(r.re + lo.re, r.im + lo.im);
                        const h = scalar_math.cmul(sum, scalar_math.C.init(0.5, 0));
                        r = .{ .re = h.re, .im = h.im };
                    }
                    o[i] = r;
                    continue;
                }
                if (count % 2 == 0) {
                    const lo = convert.cast(D, Out, vals[mp - 1]);
                    const sum_c: C = convert.cast(Out, if (C == f64) .float64 else .float32, r) + convert.cast(Out, if (C == f64) .float64 else .float32, lo);
                    const sum_o = convert.cast(if (C == f64) .float64 else .float32, Out, sum_c);
                    const prod_c: C = convert.cast(Out, if (C == f64) .float64 else .float32, sum_o) * 0.5;
                    r = convert.cast(if (C == f64) .float64 else .float32, Out, prod_c);
                }
                o[i] = r;
            }
        },
    }
}

fn evalLogsumexp(node: *Node) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    const rows = node.size();
    if (rows == 0) return;
    const n: usize = @intCast(x.shape.dims[x.shape.ndim - 1]);
    const set = @as(u32, 1) << @intCast(x.shape.ndim - 1);
    const outer = OuterIndex.init(x, set);
    switch (x.dtype) {
        inline .float16, .bfloat16, .float32, .float64 => |D| {
            const K = LogsumexpKernel(D);
            const ctx = K.Ctx{ .in = @ptrCast(@alignCast(x.data())), .out = @ptrCast(@alignCast(node.data())), .outer = &outer, .rows = rows, .n = n, .stride = x.strides[x.shape.ndim - 1] };
            if (comptime cpu.dispatch) {
                cpu.pick(K.Fn, comptime logsumexpEntryName(D))(&ctx);
            } else K.call(&ctx);
        },
        else => unreachable,
    }
}

pub const logsumexp_dtypes = [_]Dtype{ .float16, .bfloat16, .float32, .float64 };

pub fn logsumexpEntryName(comptime D: Dtype) []const u8 {
    return "logsumexp_" ++ @tagName(D);
}

/// MLX's fused last-axis logsumexp over dtype D (compiled per CPU level in a portable build: its
/// exp is a chain of fused multiply-adds).
pub fn LogsumexpKernel(comptime D: Dtype) type {
    const T = D.Type();
    const Acc: Dtype = if (D == .float64) .float64 else .float32;
    const F = Acc.Type();
    return struct {
        pub const Ctx = extern struct { in: [*]const T, out: [*]T, outer: *const OuterIndex, rows: usize, n: usize, stride: i64 };
        pub const Fn = fn (*const Ctx) callconv(.c) void;

        pub fn call(ctx: *const Ctx) callconv(.c) void {
            pool.parallelFor(ctx.rows, @max(1, (1 << 14) / @max(ctx.n, 1)), ctx, struct {
                fn f(k: *const Ctx, s: usize, e: usize) void {
                    for (s..e) |i| {
                        const base = k.outer.loc(i);
                        var m: F = -std.math.inf(F);
                        var off = base;
                        for (0..k.n) |_| {
                            m = maximum(F, convert.cast(D, Acc, load(T, k.in, off)), m);
                            off += k.stride;
                        }
                        var norm: F = 0;
                        off = base;
                        for (0..k.n) |_| {
                            const d = convert.cast(D, Acc, load(T, k.in, off)) - m;
                            norm = norm + @as(F, fastExp(@floatCast(d)));
                            off += k.stride;
                        }
                        const r: F = if (std.math.isInf(m)) m else libmLog(F, norm) + m;
                        k.out[i] = convert.cast(Acc, D, r);
                    }
                }
            }.f);
        }
    };
}

fn isInfT(comptime U: type, v: U) bool {
    if (comptime U == f32 or U == f64) return std.math.isInf(v);
    if (comptime U == dtype_mod.F16) return (v.bits & 0x7fff) == 0x7c00;
    if (comptime U == dtype_mod.BF16) return (v.bits & 0x7fff) == 0x7f80;
    return false;
}

/// a + b in dtype P as MLX computes it (float16/bfloat16 through float32, rounded once).
inline fn addIn(comptime P: Dtype, a: P.Type(), b: P.Type()) P.Type() {
    if (comptime P == .float16 or P == .bfloat16) return convert.cast(.float32, P, convert.cast(P, .float32, a) + convert.cast(P, .float32, b));
    return a + b;
}

fn evalLogsumexpCombine(node: *Node) errors.Error!void {
    const s = node.inputs[0];
    const m = node.inputs[1];
    try primitives.allocOutput(node, null);
    const n = node.size();
    if (n == 0) return;
    @setEvalBranchQuota(10000);
    switch (s.dtype) {
        inline .float16, .bfloat16, .float32, .float64 => |F| switch (m.dtype) {
            .complex64 => unreachable,
            inline else => |M| {
                const P = comptime dtype_mod.promote(F, M);
                const FT = F.Type();
                const MT = M.Type();
                const sin: [*]const FT = @ptrCast(@alignCast(s.data()));
                const mdata: [*]const MT = @ptrCast(@alignCast(m.data()));
                const out: [*]P.Type() = @ptrCast(@alignCast(node.data()));
                var its = convert.Iter.init(s);
                var itm = convert.Iter.init(m);
                for (0..n) |i| {
                    const sv = load(FT, sin, its.next());
                    const mv = load(MT, mdata, itm.next());
                    // MLX's Log in F (float16/bfloat16: the float32 log, rounded).
                    const l: FT = if (comptime F == .float64) libmLog(f64, sv) else convert.cast(.float32, F, libmLog(f32, convert.cast(F, .float32, sv)));
                    const mp = convert.cast(M, P, mv);
                    out[i] = if (isInfT(MT, mv)) mp else addIn(P, convert.cast(F, P, l), mp);
                }
            },
        },
        else => unreachable,
    }
}

// ---------------------------------------------------------------------------------------------
// C ABI

const opArg = abi_util.opArg;

fn axesArg(ptr: ?[*]const i32, n: u32, op: []const u8) errors.Error![]const i32 {
    if (n == 0) return &.{};
    if (n > 64) return errors.fail(.invalid_argument, "[{s}] Too many axes ({d}).", .{ op, n });
    const p = ptr orelse return errors.fail(.invalid_argument, "[{s}] The axes pointer is null.", .{op});
    return p[0..n];
}

fn reduceAbi(op: u32, a: u32, axes: ?[*]const i32, naxes: u32, keepdims: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const o = opArg(ReduceOp, op, "reduce") catch |e| break :blk e;
        const x = handles.get(a, @tagName(o)) catch |e| break :blk e;
        const ax = axesArg(axes, naxes, @tagName(o)) catch |e| break :blk e;
        const stream = stream_mod.resolve(s, @tagName(o)) catch |e| break :blk e;
        break :blk reduce(o, x, ax, keepdims != 0, stream);
    });
}

fn argReduceAbi(op: u32, a: u32, axis: i32, has_axis: u32, keepdims: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const o = opArg(ArgOp, op, "arg_reduce") catch |e| break :blk e;
        const x = handles.get(a, @tagName(o)) catch |e| break :blk e;
        const stream = stream_mod.resolve(s, @tagName(o)) catch |e| break :blk e;
        break :blk argReduce(o, x, if (has_axis != 0) axis else null, keepdims != 0, stream);
    });
}

fn medianAbi(a: u32, axes: ?[*]const i32, naxes: u32, keepdims: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "median") catch |e| break :blk e;
        const ax = axesArg(axes, naxes, "median") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "median") catch |e| break :blk e;
        break :blk median(x, ax, keepdims != 0, stream);
    });
}

fn logsumexpCombineAbi(sum: u32, m: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(sum, "logsumexp") catch |e| break :blk e;
        const y = handles.get(m, "logsumexp") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "logsumexp") catch |e| break :blk e;
        break :blk logsumexpCombine(x, y, stream);
    });
}

fn logsumexpAbi(a: u32, keepdims: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "logsumexp") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "logsumexp") catch |e| break :blk e;
        break :blk logsumexpLast(x, keepdims != 0, stream);
    });
}

/// This family's C ABI entries and enums (concatenated into the table in abi.zig).
pub const abi = [_]abi_util.Entry{
    abi_util.entry("reduce", reduceAbi, &.{ "op", "a", "axes", "naxes", "keepdims", "stream" }, "Reduce a (enum mlxb_reduce_op) over the given axes (none: a itself, as MLX)."),
    abi_util.entry("arg_reduce", argReduceAbi, &.{ "op", "a", "axis", "has_axis", "keepdims", "stream" }, "argmin/argmax (enum mlxb_arg_op) along axis, or of the flattened array when has_axis is 0."),
    abi_util.entry("logsumexp_last", logsumexpAbi, &.{ "a", "keepdims", "stream" }, "logsumexp over the last axis (MLX's fused kernel; not complex64)."),
    abi_util.entry("logsumexp_combine", logsumexpCombineAbi, &.{ "sum", "max", "stream" }, "where(isinf(max), max, log(sum) + max): the end of the composed logsumexp (sum real floating, same shapes)."),
    abi_util.entry("median", medianAbi, &.{ "a", "axes", "naxes", "keepdims", "stream" }, "The median over the given axes (at least float)."),
};
pub const abi_enums = .{
    .{ "reduce_op", ReduceOp },
    .{ "arg_op", ArgOp },
};

test "axes validation matches MLX's messages" {
    try std.testing.expectError(error.Failed, axesSet(&.{2}, 2));
    try std.testing.expectEqualStrings("Invalid axis 2 for array with 2 dimensions.", errors.messageSlice());
    try std.testing.expectError(error.Failed, axesSet(&.{ 0, -2 }, 2));
    try std.testing.expectEqualStrings("Duplicate axes detected in reduction.", errors.messageSlice());
    try std.testing.expectEqual(@as(u32, 0b101), try axesSet(&.{ -1, 0 }, 3));
}

test "min/max follow MLX's NaN and signed-zero rules" {
    const nan = std.math.nan(f32);
    try std.testing.expect(std.math.isNan(maximum(f32, nan, 1)));
    try std.testing.expect(std.math.isNan(maximum(f32, 1, nan)));
    const z: f32 = -0.0;
    try std.testing.expect(std.math.signbit(maximum(f32, z, 0)) == false);
    try std.testing.expect(std.math.signbit(maximum(f32, 0, z)) == true);
}

fn testInput(dtype: Dtype, dims: []const i32, strides: []const i64, buf_len: usize) !*Node {
    var shape = Shape{ .ndim = @intCast(dims.len) };
    for (dims, 0..) |d, i| shape.dims[i] = d;
    const x = try array.create(dtype, shape, .leaf, &.{}, 0);
    x.buffer = try array.newBuffer(buf_len * dtype.size(), "test");
    for (strides, 0..) |st, i| x.strides[i] = st;
    return x;
}

fn naiveSum(x: *const Node, set: u32, out: []i64) void {
    const in: [*]const i32 = @ptrCast(@alignCast(x.data()));
    @memset(out, 0);
    var idx = [_]i64{0} ** array.max_ndim;
    const n = x.size();
    for (0..n) |_| {
        var off: i64 = 0;
        var o: i64 = 0;
        for (0..x.shape.ndim) |d| {
            off += idx[d] * x.strides[d];
            if (set & (@as(u32, 1) << @intCast(d)) == 0) o = o * x.shape.dims[d] + idx[d];
        }
        out[@intCast(o)] += load(i32, in, off);
        var d = x.shape.ndim;
        while (d > 0) {
            d -= 1;
            idx[d] += 1;
            if (idx[d] < x.shape.dims[d]) break;
            idx[d] = 0;
        }
    }
}

test "every reduction plan over strided (transposed, broadcast) inputs gives the plain sums" {
    // Logical shapes over a buffer of 2*3*4 int32 with permuted or zero strides.
    const Layout = struct { dims: []const i32, strides: []const i64, first: usize = 0 };
    const layouts = [_]Layout{
        .{ .dims = &.{ 2, 3, 4 }, .strides = &.{ 12, 4, 1 } }, // row-contiguous
        .{ .dims = &.{ 4, 3, 2 }, .strides = &.{ 1, 4, 12 } }, // fully transposed
        .{ .dims = &.{ 3, 2, 4 }, .strides = &.{ 4, 12, 1 } }, // leading axes swapped
        .{ .dims = &.{ 2, 4, 3 }, .strides = &.{ 12, 1, 4 } }, // trailing axes swapped
        .{ .dims = &.{ 5, 2, 3, 4 }, .strides = &.{ 0, 12, 4, 1 } }, // broadcast leading axis
        .{ .dims = &.{ 2, 3, 5, 4 }, .strides = &.{ 12, 4, 0, 1 } }, // broadcast inner axis
        .{ .dims = &.{ 2, 3, 2 }, .strides = &.{ 12, 4, 2 } }, // every other element
        .{ .dims = &.{ 2, 3, 4 }, .strides = &.{ -12, -4, -1 }, .first = 23 }, // reversed
        .{ .dims = &.{ 2, 4, 3 }, .strides = &.{ 12, -1, 4 }, .first = 3 }, // one axis reversed
    };
    for (layouts) |l| {
        const x = try testInput(.int32, l.dims, l.strides, 24);
        defer array.release(x);
        const in: [*]i32 = @ptrCast(@alignCast(x.data()));
        for (0..24) |i| in[i] = @as(i32, @intCast(i * 7 % 11)) - 5;
        x.offset = l.first * 4;
        const nd = l.dims.len;
        var set: u32 = 1;
        while (set < (@as(u32, 1) << @intCast(nd))) : (set += 1) {
            var axes: [4]i32 = undefined;
            var na: usize = 0;
            for (0..nd) |d| {
                if (set & (@as(u32, 1) << @intCast(d)) != 0) {
                    axes[na] = @intCast(d);
                    na += 1;
                }
            }
            const node = try reduce(.sum, x, axes[0..na], false, 0);
            defer array.release(node);
            try eval(node, node.prim.reduce);
            var want: [120]i64 = undefined;
            naiveSum(x, set, want[0..node.size()]);
            const got: [*]const i32 = @ptrCast(@alignCast(node.data()));
            for (0..node.size()) |i| try std.testing.expectEqual(want[i], got[i]);
        }
    }
}

test "chunked all-reductions equal the sequential fold" {
    const n = 1 << 18;
    const x = try testInput(.float32, &.{n}, &.{1}, n);
    defer array.release(x);
    const in: [*]f32 = @ptrCast(@alignCast(x.data()));
    for (0..n) |i| in[i] = @floatFromInt(@as(i64, @intCast((i * 7919) % 10007)) - 5000);
    in[n / 2] = 5006.5;
    in[n - 3] = -0.0;
    for ([_]ReduceOp{ .max, .min, .any, .all }) |op| {
        const node = try reduce(op, x, &.{0}, false, 0);
        defer array.release(node);
        try eval(node, node.prim.reduce);
        switch (op) {
            .max => try std.testing.expectEqual(@as(f32, 5006.5), @as(*const f32, @ptrCast(@alignCast(node.data()))).*),
            .min => try std.testing.expectEqual(@as(f32, -5000), @as(*const f32, @ptrCast(@alignCast(node.data()))).*),
            .any => try std.testing.expect(@as(*const bool, @ptrCast(node.data())).*),
            .all => try std.testing.expect(!@as(*const bool, @ptrCast(node.data())).*),
            else => unreachable,
        }
    }
    in[1000] = std.math.nan(f32);
    const node = try reduce(.max, x, &.{0}, false, 0);
    defer array.release(node);
    try eval(node, node.prim.reduce);
    try std.testing.expectEqual(@as(u32, 0x7fc00000), @as(*const u32, @ptrCast(@alignCast(node.data()))).*);
}

test "logsumexp over the last axis reproduces MLX's fused kernel" {
    const x = try testInput(.float32, &.{3}, &.{1}, 3);
    defer array.release(x);
    const in: [*]f32 = @ptrCast(@alignCast(x.data()));
    in[0] = 0;
    in[1] = 0;
    in[2] = 2;
    const node = try logsumexpLast(x, false, 0);
    defer array.release(node);
    try eval(node, node.prim.reduce);
    // mx.logsumexp(mx.array([0., 0., 2.])) in MLX 0.32.4 (x86-64): 0x400f54b3.
    try std.testing.expectEqual(@as(u32, 0x400f54b3), @as(*const u32, @ptrCast(@alignCast(node.data()))).*);
    try std.testing.expectEqual(@as(u32, 0x3e0a9555), @as(u32, @bitCast(fastExp(-2))));
}

test "argmax and median read reversed (negative-stride) views" {
    const x = try testInput(.int32, &.{5}, &.{-1}, 5);
    defer array.release(x);
    const in: [*]i32 = @ptrCast(@alignCast(x.data()));
    for (0..5) |i| in[i] = @intCast(i * 3 % 5); // memory 0 3 1 4 2; logical 2 4 1 3 0
    x.offset = 4 * 4;
    const am = try argReduce(.argmax, x, 0, false, 0);
    defer array.release(am);
    try eval(am, am.prim.reduce);
    try std.testing.expectEqual(@as(u32, 1), @as(*const u32, @ptrCast(@alignCast(am.data()))).*);
    const flat = try argReduce(.argmin, x, null, false, 0);
    defer array.release(flat);
    try eval(flat, flat.prim.reduce);
    try std.testing.expectEqual(@as(u32, 4), @as(*const u32, @ptrCast(@alignCast(flat.data()))).*);
    const md = try median(x, &.{0}, false, 0);
    defer array.release(md);
    try eval(md, md.prim.reduce);
    try std.testing.expectEqual(@as(f32, 2), @as(*const f32, @ptrCast(@alignCast(md.data()))).*);
}

// --- views with negative strides, and fast paths against the reference loops ---

/// An evaluated row-contiguous leaf of `dims` whose element i is `value(i)`.
fn testLeaf(comptime D: Dtype, dims: []const i32, value: anytype) !*Node {
    var shape = Shape{ .ndim = @intCast(dims.len) };
    for (dims, 0..) |d, i| shape.dims[i] = d;
    const x = try array.create(D, shape, .leaf, &.{}, 0);
    x.buffer = try array.newBuffer(@max(x.nbytes(), 1), "test");
    x.setRowContiguousStrides();
    const p: [*]D.Type() = @ptrCast(@alignCast(x.data()));
    for (0..x.size()) |i| p[i] = value.at(i);
    return x;
}



const test_views = @import("../test_views.zig");
const flippedView = test_views.flippedView;
const logical = test_views.logical;

fn evalTest(node: *Node) !void {
    try eval(node, node.prim.reduce);
}

test "reductions, arg-reductions, median and logsumexp read views with negative strides" {
    const gpa = std.testing.allocator;
    const dims = [_]i32{ 3, 4, 5 };
    const Val = struct {
        fn at(_: @This(), i: usize) i32 {
            return @as(i32, @intCast((i * 37 + 11) % 23)) - 9;
        }
    };
    const base = try testLeaf(.int32, &dims, Val{});
    defer array.release(base);
    var want_in: [60]i32 = undefined;
    var flip: u32 = 1;
    while (flip < 8) : (flip += 1) {
        const v = try flippedView(base, flip);
        defer array.release(v);
        logical(i32, v, &want_in);
        // Every axis subset, sum/max/min against a naive fold of the logical elements.
        var set: u32 = 1;
        while (set < 8) : (set += 1) {
            var axes: [3]i32 = undefined;
            var na: usize = 0;
            for (0..3) |d| if (set & (@as(u32, 1) << @intCast(d)) != 0) {
                axes[na] = @intCast(d);
                na += 1;
            };
            inline for (.{ ReduceOp.sum, ReduceOp.max, ReduceOp.min }) |op| {
                const node = try reduce(op, v, axes[0..na], false, 0);
                defer array.release(node);
                try evalTest(node);
                const got: [*]const i32 = @ptrCast(@alignCast(node.data()));
                var want = [_]i64{0} ** 60;
                var seen = [_]bool{false} ** 60;
                for (0..60) |i| {
                    const idx = [3]usize{ i / 20, i / 5 % 4, i % 5 };
                    var o: usize = 0;
                    for (0..3) |d| if (set & (@as(u32, 1) << @intCast(d)) == 0) {
                        o = o * @as(usize, @intCast(dims[d])) + idx[d];
                    };
                    const x: i64 = want_in[i];
                    want[o] = if (!seen[o]) x else switch (op) {
                        .sum => want[o] + x,
                        .max => @max(want[o], x),
                        .min => @min(want[o], x),
                        else => unreachable,
                    };
                    seen[o] = true;
                }
                for (0..node.size()) |i| try std.testing.expectEqual(want[i], got[i]);
            }
        }
        // argmax/argmin along each axis and flattened, against the logical elements.
        for (0..3) |axis| {
            inline for (.{ ArgOp.argmax, ArgOp.argmin }) |op| {
                const node = try argReduce(op, v, @intCast(axis), false, 0);
                defer array.release(node);
                try evalTest(node);
                const got: [*]const u32 = @ptrCast(@alignCast(node.data()));
                var o: usize = 0;
                for (0..60) |i| {
                    const idx = [3]usize{ i / 20, i / 5 % 4, i % 5 };
                    if (idx[axis] != 0) continue;
                    var best: u32 = 0;
                    const step: usize = switch (axis) {
                        0 => 20,
                        1 => 5,
                        else => 1,
                    };
                    for (1..@as(usize, @intCast(dims[axis]))) |j| {
                        const a = want_in[i + j * step];
                        const b = want_in[i + best * step];
                        if (if (op == .argmax) a > b else a < b) best = @intCast(j);
                    }
                    try std.testing.expectEqual(best, got[o]);
                    o += 1;
                }
            }
        }
        const flat = try argReduce(.argmax, v, null, false, 0);
        defer array.release(flat);
        try evalTest(flat);
        const fm = std.mem.indexOfMax(i32, &want_in);
        try std.testing.expectEqual(@as(u32, @intCast(fm)), @as(*const u32, @ptrCast(@alignCast(flat.data()))).*);
        // median over the last axis: the middle of 5 sorted logical values.
        const md = try median(v, &.{2}, false, 0);
        defer array.release(md);
        try evalTest(md);
        const mo: [*]const f32 = @ptrCast(@alignCast(md.data()));
        for (0..12) |r| {
            var row: [5]i32 = want_in[r * 5 ..][0..5].*;
            std.mem.sort(i32, &row, {}, std.sort.asc(i32));
            try std.testing.expectEqual(@as(f32, @floatFromInt(row[2])), mo[r]);
        }
    }
    // logsumexp over a reversed last axis equals it over the reversed data (the same run).
    const fb = try testLeaf(.float32, &.{ 2, 6 }, struct {
        fn at(_: @This(), i: usize) f32 {
            return @as(f32, @floatFromInt(i % 7)) * 0.5 - 1;
        }
    }{});
    defer array.release(fb);
    const fv = try flippedView(fb, 0b10);
    defer array.release(fv);
    const l1 = try logsumexpLast(fv, false, 0);
    defer array.release(l1);
    try evalTest(l1);
    var rev: [12]f32 = undefined;
    logical(f32, fv, &rev);
    const rc = try testLeaf(.float32, &.{ 2, 6 }, struct {
        r: *const [12]f32,
        fn at(s: @This(), i: usize) f32 {
            return s.r[i];
        }
    }{ .r = &rev });
    defer array.release(rc);
    const l2 = try logsumexpLast(rc, false, 0);
    defer array.release(l2);
    try evalTest(l2);
    const g1: [*]const f32 = @ptrCast(@alignCast(l1.data()));
    const g2: [*]const f32 = @ptrCast(@alignCast(l2.data()));
    for (0..2) |i| try std.testing.expectEqual(g2[i], g1[i]);
    _ = gpa;
}

/// Reduce `x` with `op` over `axes` in reference mode and by the fast paths; the two outputs'
/// bytes, for the caller to compare.
fn bothModes(op: ReduceOp, x: *Node, axes: []const i32, ref_out: []u8, fast_out: []u8) !usize {
    var n: usize = 0;
    for ([_]bool{ true, false }) |ref| {
        primitives.reference_mode = ref;
        defer primitives.reference_mode = false;
        const node = try reduce(op, x, axes, false, 0);
        defer array.release(node);
        try evalTest(node);
        n = node.nbytes();
        @memcpy((if (ref) ref_out else fast_out)[0..n], node.data()[0..n]);
    }
    return n;
}

fn bothArg(op: ArgOp, x: *Node, axis: ?i32, ref_out: []u32, fast_out: []u32) !usize {
    var n: usize = 0;
    for ([_]bool{ true, false }) |ref| {
        primitives.reference_mode = ref;
        defer primitives.reference_mode = false;
        const node = try argReduce(op, x, axis, false, 0);
        defer array.release(node);
        try evalTest(node);
        n = node.size();
        const o: [*]const u32 = @ptrCast(@alignCast(node.data()));
        @memcpy((if (ref) ref_out else fast_out)[0..n], o[0..n]);
    }
    return n;
}

/// Shapes and axes that reach every fast path: whole runs (one block and many, in parallel),
/// last-axis rows (many short ones, few long ones), columns (whole and split by rows), segments.
const FastCase = struct { dims: []const i32, axes: []const i32 };
const fast_cases = [_]FastCase{
    .{ .dims = &.{70001}, .axes = &.{0} },
    .{ .dims = &.{ 3, 37, 300 }, .axes = &.{ 0, 1, 2 } },
    .{ .dims = &.{ 3, 37, 300 }, .axes = &.{2} },
    .{ .dims = &.{ 3, 37, 300 }, .axes = &.{ 1, 2 } },
    .{ .dims = &.{ 3, 37, 300 }, .axes = &.{1} },
    .{ .dims = &.{ 3, 37, 300 }, .axes = &.{ 0, 2 } },
    .{ .dims = &.{ 1, 40000 }, .axes = &.{1} },
    .{ .dims = &.{ 600, 300 }, .axes = &.{0} },
    .{ .dims = &.{ 600, 301 }, .axes = &.{0} },
    .{ .dims = &.{ 1100, 300 }, .axes = &.{0} }, // rows split into ranges
    .{ .dims = &.{ 4, 300, 300 }, .axes = &.{ 0, 1 } }, // segments and row ranges
    .{ .dims = &.{ 37, 130 }, .axes = &.{1} },
    .{ .dims = &.{ 5, 17 }, .axes = &.{1} },
};

fn randomLeaf(comptime D: Dtype, dims: []const i32, seed: u64, int_valued: bool) !*Node {
    var prng = std.Random.DefaultPrng.init(seed);
    const r = prng.random();
    const G = struct {
        r: std.Random,
        int_valued: bool,
        fn at(g: @This(), i: usize) D.Type() {
            _ = i;
            const u = g.r.float(f64);
            if (comptime D == .bool_) return u < 0.5;
            if (comptime D.isInteger()) {
                const v: i64 = @intFromFloat(@floor(u * 200) - 100);
                return convert.cast(.int64, D, v);
            }
            // Occasional signed zeros; integer-valued floats sum exactly in any order.
            const z = g.r.uintLessThan(u32, 50);
            if (z == 0) return convert.cast(.float64, D, 0.0);
            if (z == 1) return convert.cast(.float64, D, -0.0);
            const v: f64 = if (g.int_valued) @floor(u * 64) - 32 else (u - 0.5) * 8;
            return convert.cast(.float64, D, v);
        }
    };
    return testLeaf(D, dims, G{ .r = r, .int_valued = int_valued });
}

fn expectSameBits(comptime D: Dtype, a: []const u8, b: []const u8, what: []const u8) !void {
    const T = D.Type();
    const n = a.len / @sizeOf(T);
    const pa: [*]const T = @ptrCast(@alignCast(a.ptr));
    const pb: [*]const T = @ptrCast(@alignCast(b.ptr));
    for (0..n) |i| {
        if (comptime D.isInexact()) {
            if (isNan(T, pa[i]) and isNan(T, pb[i])) continue;
        }
        if (!std.mem.eql(u8, std.mem.asBytes(&pa[i]), std.mem.asBytes(&pb[i]))) {
            std.debug.print("{s} {s}: element {d} differs: {any} vs {any}\n", .{ what, @tagName(D), i, pa[i], pb[i] });
            return error.TestExpectedEqual;
        }
    }
}

test "SIMD fast paths equal the reference loops (exactly, but float sums: to their bound)" {
    const gpa = std.testing.allocator;
    // Split leading-axis reductions into row ranges from a smaller size, to test that path.
    const saved_split = min_row_split;
    min_row_split = 1 << 18;
    defer min_row_split = saved_split;
    const ref_buf = try gpa.alloc(u8, 1 << 20);
    defer gpa.free(ref_buf);
    const fast_buf = try gpa.alloc(u8, 1 << 20);
    defer gpa.free(fast_buf);
    // A portable build: at every kernel level this CPU has (engine/cpu.zig).
    const saved_level = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved_level);
    for (0..cpu.testLevelCount()) |li| inline for (.{ Dtype.float32, Dtype.float64, Dtype.int32, Dtype.uint8, Dtype.int8, Dtype.int64, Dtype.uint32, Dtype.uint64, Dtype.float16, Dtype.bfloat16, Dtype.bool_, Dtype.int16 }) |D| {
        if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
        for (fast_cases, 0..) |fc, ci| {
            for ([_]bool{ true, false }) |int_valued| {
                const x = try randomLeaf(D, fc.dims, ci * 7 + @intFromEnum(D), int_valued);
                defer array.release(x);
                if (comptime D.isFloating()) {
                    // A NaN in one case of each kind: min/max/arg must still agree.
                    if (ci % 3 == 1) @as([*]D.Type(), @ptrCast(@alignCast(x.data())))[x.size() / 2] = canonicalNan(D.Type());
                }
                inline for (.{ ReduceOp.sum, ReduceOp.prod, ReduceOp.max, ReduceOp.min }) |op| {
                    const n = try bothModes(op, x, fc.axes, ref_buf, fast_buf);
                    const Out = comptime outDtype(op, D);
                    const order_free = comptime !((op == .sum or op == .prod) and Out.isInexact());
                    if (order_free or (op == .sum and int_valued)) {
                        try expectSameBits(Out, ref_buf[0..n], fast_buf[0..n], @tagName(op));
                    } else if (op == .sum) {
                        // Both within (run) u sum|x| of the exact sum; |x| <= 4, so compare to
                        // 2 * run * u * 4 per element summed.
                        const T = Out.Type();
                        const pr: [*]const T = @ptrCast(@alignCast(ref_buf.ptr));
                        const pf: [*]const T = @ptrCast(@alignCast(fast_buf.ptr));
                        var per: usize = 1;
                        for (fc.axes) |a| per *= @intCast(fc.dims[@intCast(a)]);
                        const u: f64 = if (Out == .float64) 0x1p-53 else if (Out == .float32) 0x1p-24 else 0x1p-9;
                        const bound = 2 * @as(f64, @floatFromInt(per)) * u * 4 * @as(f64, @floatFromInt(per)) + (if (Out == .float32 or Out == .float64) 0 else 8 * u);
                        for (0..n / @sizeOf(T)) |i| {
                            const a = convert.toF64(Out, pr[i]);
                            const b = convert.toF64(Out, pf[i]);
                            if (std.math.isNan(a) and std.math.isNan(b)) continue;
                            try std.testing.expect(@abs(a - b) <= bound * @max(1, @abs(a)));
                        }
                    }
                }
                if (comptime D != .bool_) {
                    if (fc.axes.len == 1) {
                        inline for (.{ ArgOp.argmax, ArgOp.argmin }) |op| {
                            const rr: []u32 = @as([*]u32, @ptrCast(@alignCast(ref_buf.ptr)))[0 .. ref_buf.len / 4];
                            const ff: []u32 = @as([*]u32, @ptrCast(@alignCast(fast_buf.ptr)))[0 .. fast_buf.len / 4];
                            const n = try bothArg(op, x, fc.axes[0], rr, ff);
                            try std.testing.expectEqualSlices(u32, rr[0..n], ff[0..n]);
                            const n2 = try bothArg(op, x, null, rr, ff);
                            try std.testing.expectEqualSlices(u32, rr[0..n2], ff[0..n2]);
                        }
                    }
                }
            }
        }
    };
}

test "fast min/max keep the sign of the first zero, NaN, and ties of argmax" {
    const n = 1000;
    const x = try testLeaf(.float32, &.{n}, struct {
        fn at(_: @This(), i: usize) f32 {
            return if (i < 500) -1 else 0;
        }
    }{});
    defer array.release(x);
    const p: [*]f32 = @ptrCast(@alignCast(x.data()));
    p[700] = -0.0; // zeros from 500 on, +0 first: max is +0
    const m1 = try reduce(.max, x, &.{0}, false, 0);
    defer array.release(m1);
    try evalTest(m1);
    try std.testing.expectEqual(@as(u32, 0), @as(*const u32, @ptrCast(@alignCast(m1.data()))).*);
    p[500] = -0.0; // now the first zero is -0
    const m2 = try reduce(.max, x, &.{0}, false, 0);
    defer array.release(m2);
    try evalTest(m2);
    try std.testing.expectEqual(@as(u32, 0x80000000), @as(*const u32, @ptrCast(@alignCast(m2.data()))).*);
    // argmax: the first of the equal maxima (+0 and -0 are equal).
    const a1 = try argReduce(.argmax, x, 0, false, 0);
    defer array.release(a1);
    try evalTest(a1);
    try std.testing.expectEqual(@as(u32, 500), @as(*const u32, @ptrCast(@alignCast(a1.data()))).*);
    p[900] = std.math.nan(f32);
    p[950] = std.math.nan(f32);
    const a2 = try argReduce(.argmin, x, 0, false, 0);
    defer array.release(a2);
    try evalTest(a2);
    try std.testing.expectEqual(@as(u32, 900), @as(*const u32, @ptrCast(@alignCast(a2.data()))).*);
    const m3 = try reduce(.min, x, &.{0}, false, 0);
    defer array.release(m3);
    try evalTest(m3);
    try std.testing.expectEqual(@as(u32, 0x7fc00000), @as(*const u32, @ptrCast(@alignCast(m3.data()))).*);
}

test "logsumexp_combine: log(s) + m, or m where m is infinite, in the promoted dtype" {
    const s = try testLeaf(.float32, &.{3}, struct {
        fn at(_: @This(), i: usize) f32 {
            return @as(f32, @floatFromInt(i)) + 1.2706705;
        }
    }{});
    defer array.release(s);
    const m = try testLeaf(.int32, &.{3}, struct {
        fn at(_: @This(), i: usize) i32 {
            return @intCast(i);
        }
    }{});
    defer array.release(m);
    const node = try logsumexpCombine(s, m, 0);
    defer array.release(node);
    try std.testing.expectEqual(Dtype.float32, node.dtype);
    try evalTest(node);
    const o: [*]const f32 = @ptrCast(@alignCast(node.data()));
    // glibc's logf(1.2706705) is 0x3e754b37 (MLX's value).
    try std.testing.expectEqual(@as(u32, 0x3e754b37), @as(u32, @bitCast(o[0])));
    try std.testing.expectEqual(glibc.logf32(3.2706705) + 2, o[2]);
    const bad = try testLeaf(.int32, &.{3}, struct {
        fn at(_: @This(), i: usize) i32 {
            return @intCast(i);
        }
    }{});
    defer array.release(bad);
    try std.testing.expectError(error.Failed, logsumexpCombine(bad, m, 0));
}
