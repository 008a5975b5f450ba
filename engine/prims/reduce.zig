//! Reductions: all, any, sum, prod, min, max over a set of axes (one primitive with an op enum),
//! argmin/argmax along one axis or the flattened array, and median. Ops validate axes with
//! MLX's messages and compute the output shape and dtype eagerly.
//!
//! The kernels follow MLX's CPU reduction plans (mlx/backend/common/reduce.cpp and
//! mlx/backend/cpu/reduce.cpp, where SIMD width is 1 on x86-64) so that floating-point sums
//! are accumulated in the same order and round the same way: a contiguous run is summed into a
//! partial from the initial value and then added to the output, strided reductions accumulate
//! row by row, and the general case walks the reduced axes in order. float16/bfloat16 sums and
//! products accumulate in float32; integer sums of at most 4 bytes accumulate in int32.
//! Every output element is independent, so large reductions split their outputs over all cores
//! without changing any result.
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

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .reduce => |r| @tagName(r.op),
            .arg_reduce => |r| @tagName(r.op),
            .median => "median",
            .logsumexp => "logsumexp",
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

fn outShape(in: *const Shape, set: u32, keepdims: bool) Shape {
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
    if (x.dtype == .complex64) return errors.fail(.not_implemented, "[median] complex64 is not supported yet.", .{});
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

/// log as MLX's std::log gives it: glibc's logf is correctly rounded, which Zig's f32 log is
/// not always (log(1.2706705) is 0x3e754b37, Zig's gives ...38), so float32 goes through f64.
fn libmLog(comptime F: type, x: F) F {
    return if (F == f32) @floatCast(@log(@as(f64, x))) else @log(x);
}

/// The float32 exp MLX's CPU backend uses, shared with the elementwise family.
const fastExp = @import("scalar_math.zig").mlxExp;

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

const PlanType = enum { contiguous_all, contiguous, contiguous_strided, general_contiguous, general_strided, general };

const Plan = struct {
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
const OuterIndex = struct {
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

fn Kernel(comptime op: ReduceOp, comptime D: Dtype, comptime A: Dtype) type {
    const T = D.Type();
    const U = A.Type();
    const O = Ops(op, D, A);
    return struct {
        const Ctx = struct {
            in: [*]const T,
            out: [*]U,
            plan: *const Plan,
            outer: *const OuterIndex,
            out_size: usize,
        };

        fn contiguous(in: [*]const T, n: usize, out: *U) void {
            var acc = O.init();
            for (0..n) |i| acc = O.step(acc, in[i]);
            out.* = O.combine(out.*, O.horizontal(acc));
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

        fn run(c: *const Ctx) void {
            const p = c.plan;
            const out_size = c.out_size;
            switch (p.type) {
                .contiguous_all => unreachable,
                .contiguous, .general_contiguous => {
                    const rsize: usize = @intCast(p.shape[p.n - 1]);
                    const grain = @max(1, (1 << 15) / @max(rsize * ndCount(p, p.n - 1), 1));
                    pool.parallelFor(out_size, grain, c, struct {
                        fn f(k: *const Ctx, s: usize, e: usize) void {
                            const pp = k.plan;
                            const rs: usize = @intCast(pp.shape[pp.n - 1]);
                            const segs = ndCount(pp, pp.n - 1);
                            for (s..e) |i| {
                                const off = k.outer.loc(i);
                                k.out[i] = O.init();
                                for (0..segs) |sgi| contiguous(at(k.in, off + ndLoc(pp, pp.n - 1, sgi)), rs, &k.out[i]);
                            }
                        }
                    }.f);
                },
                .contiguous_strided, .general_strided => {
                    // Outputs come in blocks of `stride` contiguous positions.
                    const stride: usize = @intCast(p.strides[p.n - 1]);
                    const blocks = out_size / stride;
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
        fn reduceInto(x: *const Node, set: u32, out: [*]U, out_size: usize) void {
            const in: [*]const T = @ptrCast(@alignCast(x.data()));
            if (x.size() == 0) {
                for (0..out_size) |i| out[i] = O.init();
                return;
            }
            var axes_buf: [array.max_ndim]usize = undefined;
            var na: usize = 0;
            for (0..x.shape.ndim) |i| {
                if (set & (@as(u32, 1) << @intCast(i)) != 0) {
                    axes_buf[na] = i;
                    na += 1;
                }
            }
            var plan = makePlan(x, axes_buf[0..na]);
            if (plan.type == .contiguous_all) {
                // Memory order, from the lowest address.
                var base = in;
                for (0..x.shape.ndim) |i| {
                    if (x.strides[i] < 0) base -= @as(usize, @intCast(-x.strides[i] * (x.shape.dims[i] - 1)));
                }
                out[0] = O.init();
                if (comptime exactInChunks()) {
                    if (x.size() >= 1 << 16 and pool.threads() > 1) {
                        allReduceChunked(base, x.size(), &out[0]);
                        return;
                    }
                }
                contiguous(base, x.size(), &out[0]);
                return;
            }
            if (plan.n == 0) {
                // Only size-1 axes are reduced: each output is one element.
                plan.type = .general;
            }
            const outer = OuterIndex.init(x, set);
            const ctx = Ctx{ .in = in, .out = out, .plan = &plan, .outer = &outer, .out_size = out_size };
            run(&ctx);
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
    switch (r.op) {
        inline else => |op| switch (x.dtype) {
            inline else => |D| {
                const A = comptime accDtype(op, D);
                const K = Kernel(op, D, A);
                if (comptime A.size() == outDtype(op, D).size()) {
                    // Same width (int32 for uint32 outputs: the same bits).
                    K.reduceInto(x, r.axes, @ptrCast(@alignCast(node.data())), out_size);
                } else {
                    // float16/bfloat16 accumulate in float32, rounded once at the end.
                    const tmp = try array.newBuffer(out_size * @sizeOf(A.Type()), @tagName(op));
                    defer tmp.release();
                    const acc: [*]A.Type() = @ptrCast(@alignCast(tmp.ptr));
                    K.reduceInto(x, r.axes, acc, out_size);
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
            if (comptime D == .complex64) unreachable;
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
                // NaNs sort last, as MLX's sort.
                std.sort.insertion(T, vals[0..count], {}, struct {
                    fn f(_: void, a: T, b: T) bool {
                        if (isNan(T, b)) return !isNan(T, a);
                        if (isNan(T, a)) return false;
                        return lt(T, a, b);
                    }
                }.f);
                // MLX's median is NaN when any reduced value is.
                if (comptime D.isFloating()) {
                    if (isNan(T, vals[count - 1])) {
                        o[i] = canonicalNan(Out.Type());
                        continue;
                    }
                }
                const mp = count / 2;
                var r = convert.cast(D, Out, vals[mp]);
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
            const T = D.Type();
            const Acc: Dtype = if (D == .float64) .float64 else .float32;
            const F = Acc.Type();
            const Ctx = struct { in: [*]const T, out: [*]T, outer: *const OuterIndex, n: usize, stride: i64 };
            const ctx = Ctx{ .in = @ptrCast(@alignCast(x.data())), .out = @ptrCast(@alignCast(node.data())), .outer = &outer, .n = n, .stride = x.strides[x.shape.ndim - 1] };
            pool.parallelFor(rows, @max(1, (1 << 14) / @max(n, 1)), &ctx, struct {
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
