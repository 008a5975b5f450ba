//! Elementwise ops: unary math, binary arithmetic, comparisons, logical and bitwise ops, and
//! select (where). One primitive per arity with an op enum; the output dtype rules and MLX's
//! errors are checked when the op is built; kernels broadcast by strides (no copies), run a
//! contiguous fast path where they can, and split large arrays over all cores.
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
const sm = @import("scalar_math.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;

/// Unary ops; values are part of the C ABI.
pub const UnaryOp = enum(u32) {
    abs = 0,
    sign = 1,
    negative = 2,
    trunc = 3,
    square = 4,
    sqrt = 5,
    rsqrt = 6,
    reciprocal = 7,
    exp = 8,
    expm1 = 9,
    erf = 10,
    erfinv = 11,
    sin = 12,
    cos = 13,
    tan = 14,
    arcsin = 15,
    arccos = 16,
    arctan = 17,
    sinh = 18,
    cosh = 19,
    tanh = 20,
    arcsinh = 21,
    arccosh = 22,
    arctanh = 23,
    degrees = 24,
    radians = 25,
    log = 26,
    log2 = 27,
    log10 = 28,
    log1p = 29,
    sigmoid = 30,
    floor = 31,
    ceil = 32,
    round = 33,
    conj = 34,
    real = 35,
    imag = 36,
    isnan = 37,
    isinf = 38,
    isfinite = 39,
    isposinf = 40,
    isneginf = 41,
    logical_not = 42,
    bitwise_invert = 43,
};

/// Binary ops; values are part of the C ABI.
pub const BinaryOp = enum(u32) {
    add = 0,
    subtract = 1,
    multiply = 2,
    divide = 3,
    floor_divide = 4,
    remainder = 5,
    power = 6,
    maximum = 7,
    minimum = 8,
    logaddexp = 9,
    arctan2 = 10,
    equal = 11,
    not_equal = 12,
    less = 13,
    less_equal = 14,
    greater = 15,
    greater_equal = 16,
    logical_and = 17,
    logical_or = 18,
    logical_xor = 19,
    bitwise_and = 20,
    bitwise_or = 21,
    bitwise_xor = 22,
    left_shift = 23,
    right_shift = 24,
};

pub const Prim = union(enum) {
    unary: UnaryOp,
    binary: BinaryOp,
    select,

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .unary => |op| @tagName(op),
            .binary => |op| @tagName(op),
            .select => "where",
        };
    }
};

// ---------------------------------------------------------------------------------------------
// Output dtypes and validation (MLX's rules, checked against mlx-cpu 0.32.4)

fn atLeastFloat(d: Dtype) Dtype {
    return if (d.isInexact()) d else .float32;
}

fn unaryKind(op: UnaryOp) enum { same, float, pred, part, logical, bits } {
    return switch (op) {
        .abs, .sign, .negative, .trunc, .square, .floor, .ceil, .round, .conj => .same,
        .isnan, .isinf, .isfinite, .isposinf, .isneginf => .pred,
        .real, .imag => .part,
        .logical_not => .logical,
        .bitwise_invert => .bits,
        else => .float,
    };
}

pub fn unaryOutDtype(op: UnaryOp, in: Dtype) errors.Error!Dtype {
    const name = @tagName(op);
    if (in == .complex64) switch (op) {
        .trunc, .expm1, .erf, .erfinv, .sigmoid, .floor, .ceil => return errors.fail(.invalid_argument, "[{s}] Not supported for complex64.", .{name}),
        else => {},
    };
    if (op == .negative and in == .bool_) return errors.fail(.invalid_argument, "[negative] Not supported for bool, use logical_not instead.", .{});
    return switch (unaryKind(op)) {
        .same => if (op == .abs and in == .complex64) .float32 else in,
        .float => atLeastFloat(in),
        .pred, .logical => .bool_,
        .part => if (in == .complex64) .float32 else in,
        .bits => if (in.isInteger() or in == .bool_) in else errors.fail(.invalid_argument, "[bitwise_invert] Bitwise inverse only allowed on integer types.", .{}),
    };
}

/// The dtype both inputs are converted to, and the output dtype.
pub const BinaryTypes = struct { compute: Dtype, out: Dtype };

pub fn binaryTypes(op: BinaryOp, a: Dtype, b: Dtype) errors.Error!BinaryTypes {
    const p = dtype_mod.promote(a, b);
    const name = @tagName(op);
    switch (op) {
        .add, .subtract, .multiply, .floor_divide, .power, .maximum, .minimum => return .{ .compute = p, .out = p },
        .remainder => {
            if (p == .complex64) return errors.fail(.invalid_argument, "[remainder] Complex type not supported.", .{});
            return .{ .compute = p, .out = p };
        },
        .divide, .logaddexp => return .{ .compute = atLeastFloat(p), .out = atLeastFloat(p) },
        .arctan2 => {
            if (p == .complex64) return errors.fail(.invalid_argument, "[arctan2] Not supported for complex64.", .{});
            return .{ .compute = atLeastFloat(p), .out = atLeastFloat(p) };
        },
        .equal, .not_equal, .less, .less_equal, .greater, .greater_equal => return .{ .compute = p, .out = .bool_ },
        .logical_and, .logical_or, .logical_xor => return .{ .compute = .bool_, .out = .bool_ },
        .bitwise_and, .bitwise_or, .bitwise_xor, .left_shift, .right_shift => {
            if (!(p.isInteger() or p == .bool_)) {
                // MLX's right_shift promotes before checking, so it names the promoted type.
                const an = if (op == .right_shift) p.name() else a.name();
                const bn = if (op == .right_shift) p.name() else b.name();
                return errors.fail(.invalid_argument, "[{s}] Only allowed on integer or boolean types but got types {s} and {s}.", .{ name, an, bn });
            }
            const shift = op == .left_shift or op == .right_shift;
            const t: Dtype = if (shift and p == .bool_) .uint8 else p;
            return .{ .compute = t, .out = t };
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Graph-building ops

pub fn unary(op: UnaryOp, x: *Node, stream: u32) errors.Error!*Node {
    const out = try unaryOutDtype(op, x.dtype);
    return array.create(out, x.shape, .{ .elementwise = .{ .unary = op } }, &.{x}, stream);
}

pub fn binary(op: BinaryOp, a: *Node, b: *Node, stream: u32) errors.Error!*Node {
    const t = try binaryTypes(op, a.dtype, b.dtype);
    const shape = try copy.broadcastShapes(&a.shape, &b.shape, "broadcast_shapes");
    const ac = try copy.astype(a, t.compute, stream);
    defer array.release(ac);
    const bc = try copy.astype(b, t.compute, stream);
    defer array.release(bc);
    return array.create(t.out, shape, .{ .elementwise = .{ .binary = op } }, &.{ ac, bc }, stream);
}

/// where(cond, x, y): x and y promoted together, all three broadcast.
pub fn select(cond: *Node, x: *Node, y: *Node, stream: u32) errors.Error!*Node {
    const t = dtype_mod.promote(x.dtype, y.dtype);
    var shape = try copy.broadcastShapes(&cond.shape, &x.shape, "broadcast_shapes");
    shape = try copy.broadcastShapes(&shape, &y.shape, "broadcast_shapes");
    const cc = try copy.astype(cond, .bool_, stream);
    defer array.release(cc);
    const xc = try copy.astype(x, t, stream);
    defer array.release(xc);
    const yc = try copy.astype(y, t, stream);
    defer array.release(yc);
    return array.create(t, shape, .{ .elementwise = .select }, &.{ cc, xc, yc }, stream);
}

// ---------------------------------------------------------------------------------------------
// Scalar functions. `T` is the compute type: the storage type, except float32 for
// float16/bfloat16 (loaded and stored through convert.cast).

fn computeDtype(d: Dtype) Dtype {
    return switch (d) {
        .float16, .bfloat16 => .float32,
        else => d,
    };
}

fn isFloatT(comptime T: type) bool {
    return T == f32 or T == f64;
}

fn unaryScalar(comptime op: UnaryOp, comptime T: type, x: T) T {
    if (comptime T == dtype_mod.Complex64) return unaryComplex(op, x);
    if (comptime T == bool) return switch (op) {
        .abs, .trunc, .floor, .ceil, .round, .conj, .real, .sign, .square => x,
        .imag => false,
        .bitwise_invert => !x,
        else => unreachable,
    };
    if (comptime !isFloatT(T)) return switch (op) {
        .abs => if (@typeInfo(T).int.signedness == .signed) (if (x < 0) 0 -% x else x) else x,
        .sign => if (x > 0) 1 else if (@typeInfo(T).int.signedness == .signed and x < 0) -1 else 0,
        .negative => 0 -% x,
        .square => x *% x,
        .trunc, .floor, .ceil, .round, .conj, .real => x,
        .imag => 0,
        .bitwise_invert => ~x,
        else => unreachable,
    };
    return switch (op) {
        .abs => @abs(x),
        .sign => sm.signFloat(T, x),
        .negative => -x,
        .trunc => @trunc(x),
        .square => x * x,
        .sqrt => @sqrt(x),
        .rsqrt => 1 / @sqrt(x),
        .reciprocal => 1 / x,
        // MLX's own float32 approximations, for every floating dtype (float64 too).
        .exp => @floatCast(sm.mlxExp(@floatCast(x))),
        .erf => @floatCast(sm.mlxErf(@floatCast(x))),
        .erfinv => @floatCast(sm.mlxErfinv(@floatCast(x))),
        .sin => @floatCast(sm.mlxSinCos(true, @floatCast(x))),
        .cos => @floatCast(sm.mlxSinCos(false, @floatCast(x))),
        .expm1 => sm.c1("expm1", T, x),
        .tan => sm.c1("tan", T, x),
        .arcsin => sm.c1("asin", T, x),
        .arccos => sm.c1("acos", T, x),
        .arctan => sm.c1("atan", T, x),
        .sinh => sm.c1("sinh", T, x),
        .cosh => sm.c1("cosh", T, x),
        .tanh => sm.c1("tanh", T, x),
        .arcsinh => sm.c1("asinh", T, x),
        .arccosh => sm.c1("acosh", T, x),
        .arctanh => sm.c1("atanh", T, x),
        .degrees => x * (180.0 / std.math.pi),
        .radians => x * (std.math.pi / 180.0),
        .log => sm.c1("log", T, x),
        .log2 => sm.c1("log2", T, x),
        .log10 => sm.c1("log10", T, x),
        .log1p => sm.c1("log1p", T, x),
        .sigmoid => blk: {
            const e: T = @floatCast(sm.mlxExp(@floatCast(@abs(x))));
            const y = 1 / (1 + e);
            break :blk if (x < 0) y else 1 - y;
        },
        .floor => @floor(x),
        .ceil => @ceil(x),
        .round => sm.rint(x),
        .conj, .real => x,
        .imag => 0,
        else => unreachable,
    };
}

fn unaryComplex(comptime op: UnaryOp, x: dtype_mod.Complex64) dtype_mod.Complex64 {
    const c = sm.toC(x);
    const r: sm.C = switch (op) {
        .sign => blk: {
            if (c.re == 0 and c.im == 0) break :blk c;
            break :blk sm.cdiv(c, sm.C.init(sm.cabs(c), 0));
        },
        .negative => c.neg(),
        .square => sm.cmul(c, c),
        .sqrt => sm.cfn("csqrtf", c),
        .rsqrt => sm.cdiv(sm.C.init(1, 0), sm.cfn("csqrtf", c)),
        .reciprocal => sm.cdiv(sm.C.init(1, 0), c),
        .exp => sm.cfn("cexpf", c),
        .sin => sm.cfn("csinf", c),
        .cos => sm.cfn("ccosf", c),
        .tan => sm.cfn("ctanf", c),
        .arcsin => sm.cfn("casinf", c),
        .arccos => sm.cfn("cacosf", c),
        .arctan => sm.cfn("catanf", c),
        .sinh => sm.cfn("csinhf", c),
        .cosh => sm.cfn("ccoshf", c),
        .tanh => sm.cfn("ctanhf", c),
        .arcsinh => sm.cfn("casinhf", c),
        .arccosh => sm.cfn("cacoshf", c),
        .arctanh => sm.cfn("catanhf", c),
        .degrees => sm.cmul(c, sm.C.init(@floatCast(180.0 / std.math.pi), 0)),
        .radians => sm.cmul(c, sm.C.init(@floatCast(std.math.pi / 180.0), 0)),
        .log => sm.cfn("clogf", c),
        .log2 => blk: {
            const l = sm.cfn("clogf", c);
            const k: f32 = @floatCast(std.math.ln2);
            break :blk sm.C.init(l.re / k, l.im / k);
        },
        .log10 => blk: {
            const l = sm.cfn("clogf", c);
            const k: f32 = @floatCast(std.math.ln10);
            break :blk sm.C.init(l.re / k, l.im / k);
        },
        .log1p => sm.clog1p(c),
        .round => sm.C.init(sm.rint(c.re), sm.rint(c.im)),
        .conj => c.conjugate(),
        else => unreachable,
    };
    return .{ .re = r.re, .im = r.im };
}

fn predScalar(comptime op: UnaryOp, comptime T: type, x: T) bool {
    if (comptime T == dtype_mod.Complex64) {
        return switch (op) {
            .isnan => std.math.isNan(x.re) or std.math.isNan(x.im),
            .isinf => std.math.isInf(x.re) or std.math.isInf(x.im),
            .isfinite => std.math.isFinite(x.re) and std.math.isFinite(x.im),
            // MLX compares with inf as a complex number: (+-inf, 0) only.
            .isposinf => x.re == std.math.inf(f32) and x.im == 0,
            .isneginf => x.re == -std.math.inf(f32) and x.im == 0,
            else => unreachable,
        };
    }
    if (comptime !isFloatT(T)) return op == .isfinite;
    return switch (op) {
        .isnan => std.math.isNan(x),
        .isinf => std.math.isInf(x),
        .isfinite => std.math.isFinite(x),
        .isposinf => std.math.isPositiveInf(x),
        .isneginf => std.math.isNegativeInf(x),
        else => unreachable,
    };
}

fn binaryScalar(comptime op: BinaryOp, comptime T: type, a: T, b: T) T {
    if (comptime T == dtype_mod.Complex64) return binaryComplex(op, a, b);
    if (comptime T == bool) {
        // C++ bool arithmetic: computed as int, then nonzero.
        const x: i32 = @intFromBool(a);
        const y: i32 = @intFromBool(b);
        return switch (op) {
            .add => (x + y) != 0,
            .subtract => (x - y) != 0,
            .multiply, .bitwise_and => a and b,
            .floor_divide => if (y == 0) false else x != 0,
            .remainder => if (y == 0) a else false,
            .power => if (y == 0) true else a,
            .maximum, .bitwise_or => a or b,
            .minimum => a and b,
            .bitwise_xor => a != b,
            else => unreachable,
        };
    }
    if (comptime !isFloatT(T)) {
        const bits = @bitSizeOf(T);
        const Shift = std.math.Log2Int(T);
        return switch (op) {
            .add => a +% b,
            .subtract => a -% b,
            .multiply => a *% b,
            .floor_divide => sm.floorDivInt(T, a, b),
            .remainder => sm.remInt(T, a, b),
            .power => sm.powInt(T, a, b),
            .maximum => @max(a, b),
            .minimum => @min(a, b),
            .bitwise_and => a & b,
            .bitwise_or => a | b,
            .bitwise_xor => a ^ b,
            // C++ on x86, as MLX: narrow types shift as int, and the count is taken modulo the
            // width of that (32 or 64) bits (see shiftScalar for MLX's vectorised loops).
            .left_shift, .right_shift => blk: {
                _ = Shift;
                const W = if (bits <= 32) (if (@typeInfo(T).int.signedness == .signed or bits < 32) i32 else u32) else T;
                const WS = std.math.Log2Int(W);
                const wa: W = a;
                const count: WS = @truncate(@as(std.meta.Int(.unsigned, @bitSizeOf(T)), @bitCast(b)));
                const r: W = if (op == .left_shift) wa << count else wa >> count;
                const ru: std.meta.Int(.unsigned, @bitSizeOf(W)) = @bitCast(r);
                const rt: std.meta.Int(.unsigned, bits) = @truncate(ru);
                break :blk @bitCast(rt);
            },
            else => unreachable,
        };
    }
    return switch (op) {
        .add => a + b,
        .subtract => a - b,
        .multiply => a * b,
        .divide => a / b,
        .floor_divide => @floor(a / b),
        .remainder => sm.remFloat(T, a, b),
        .power => sm.c2("pow", T, a, b),
        .maximum => sm.maxFloat(T, a, b),
        .minimum => sm.minFloat(T, a, b),
        .logaddexp => sm.logaddexp(T, a, b),
        .arctan2 => sm.c2("atan2", T, a, b),
        else => unreachable,
    };
}

/// A shift as MLX's vectorised array-by-scalar loop computes it (SSE shifts by a register
/// count): counts outside [0, width) give 0, or the sign for an arithmetic right shift.
fn shiftSaturating(comptime op: BinaryOp, comptime T: type, a: T, b: T) T {
    const bits = @bitSizeOf(T);
    const W = if (bits <= 32) (if (@typeInfo(T).int.signedness == .signed or bits < 32) i32 else u32) else T;
    const wbits = @bitSizeOf(W);
    const wa: W = a;
    // The count as the vector instruction sees it: its low 32 bits, unsigned.
    const count: u32 = if (comptime bits > 32)
        @truncate(@as(std.meta.Int(.unsigned, bits), @bitCast(b)))
    else
        @bitCast(@as(W, b));
    const r: W = if (count >= wbits)
        (if (op == .left_shift) 0 else (if (wa < 0) -1 else 0))
    else if (op == .left_shift) wa << @intCast(count) else wa >> @intCast(count);
    const ru: std.meta.Int(.unsigned, wbits) = @bitCast(r);
    const rt: std.meta.Int(.unsigned, bits) = @truncate(ru);
    return @bitCast(rt);
}

fn binaryComplex(comptime op: BinaryOp, a: dtype_mod.Complex64, b: dtype_mod.Complex64) dtype_mod.Complex64 {
    const x = sm.toC(a);
    const y = sm.toC(b);
    const r: sm.C = switch (op) {
        .add => x.add(y),
        .subtract => x.sub(y),
        .multiply => sm.cmul(x, y),
        // MLX's complex floor_divide is the plain quotient.
        .divide, .floor_divide => sm.cdiv(x, y),
        .power => sm.cpow(x, y),
        // Complex order is lexicographic (real part first); a NaN first operand wins.
        .maximum => if (sm.cisnan(x) or x.re > y.re or (x.re == y.re and x.im > y.im)) x else y,
        .minimum => if (sm.cisnan(x) or x.re < y.re or (x.re == y.re and x.im < y.im)) x else y,
        .logaddexp => blk: {
            // MLX: max + log1p(exp(min - max)), with its complex max/min and log1p.
            const hi = if (sm.cisnan(x) or x.re > y.re or (x.re == y.re and x.im > y.im)) x else y;
            const lo = if (sm.cisnan(x) or x.re < y.re or (x.re == y.re and x.im < y.im)) x else y;
            const inf = std.math.inf(f32);
            if ((lo.re == -inf and lo.im == 0) or (hi.re == inf and hi.im == 0)) break :blk hi;
            break :blk hi.add(sm.clog1p(sm.cfn("cexpf", lo.sub(hi))));
        },
        else => unreachable,
    };
    return .{ .re = r.re, .im = r.im };
}

fn compareScalar(comptime op: BinaryOp, comptime T: type, a: T, b: T) bool {
    if (comptime T == dtype_mod.Complex64) {
        const lt = a.re < b.re or (a.re == b.re and a.im < b.im);
        const gt = a.re > b.re or (a.re == b.re and a.im > b.im);
        const eq = a.re == b.re and a.im == b.im;
        return switch (op) {
            .equal => eq,
            .not_equal => !eq,
            .less => lt,
            .less_equal => lt or eq,
            .greater => gt,
            .greater_equal => gt or eq,
            else => unreachable,
        };
    }
    if (comptime T == bool) {
        const x = @intFromBool(a);
        const y = @intFromBool(b);
        return compareScalar(op, u8, x, y);
    }
    return switch (op) {
        .equal => a == b,
        .not_equal => a != b,
        .less => a < b,
        .less_equal => a <= b,
        .greater => a > b,
        .greater_equal => a >= b,
        else => unreachable,
    };
}

// ---------------------------------------------------------------------------------------------
// Strided iteration over broadcast operands

const max_ops = 4; // output + up to three inputs

/// Operand strides aligned to the output shape (0 where an operand is broadcast), with
/// dimensions collapsed where every operand is contiguous across them.
const Layout = struct {
    ndim: usize,
    shape: [array.max_ndim]usize,
    strides: [max_ops][array.max_ndim]i64,
    n_ops: usize,

    fn init(out: *const Node, inputs: []const *Node) Layout {
        var l = Layout{ .ndim = out.shape.ndim, .shape = undefined, .strides = undefined, .n_ops = inputs.len + 1 };
        for (0..l.ndim) |i| l.shape[i] = @intCast(out.shape.dims[i]);
        for (0..l.ndim) |i| l.strides[0][i] = out.strides[i];
        for (inputs, 1..) |in, k| {
            const lead = l.ndim - in.shape.ndim;
            for (0..l.ndim) |i| {
                l.strides[k][i] = if (i < lead or in.shape.dims[i - lead] == 1) 0 else in.strides[i - lead];
            }
        }
        l.collapse();
        return l;
    }

    fn collapse(l: *Layout) void {
        // Drop size-1 dimensions, then merge neighbours that are contiguous for every operand.
        var n: usize = 0;
        for (0..l.ndim) |i| {
            if (l.shape[i] == 1) continue;
            l.shape[n] = l.shape[i];
            for (0..l.n_ops) |k| l.strides[k][n] = l.strides[k][i];
            n += 1;
        }
        l.ndim = n;
        if (n == 0) return;
        var m: usize = 0;
        for (1..n) |i| {
            var mergeable = true;
            for (0..l.n_ops) |k| {
                if (l.strides[k][m] != l.strides[k][i] * @as(i64, @intCast(l.shape[i]))) mergeable = false;
            }
            if (mergeable) {
                l.shape[m] *= l.shape[i];
                for (0..l.n_ops) |k| l.strides[k][m] = l.strides[k][i];
            } else {
                m += 1;
                l.shape[m] = l.shape[i];
                for (0..l.n_ops) |k| l.strides[k][m] = l.strides[k][i];
            }
        }
        l.ndim = m + 1;
    }

    fn rows(l: *const Layout) usize {
        var r: usize = 1;
        if (l.ndim > 1) for (0..l.ndim - 1) |i| {
            r *= l.shape[i];
        };
        return r;
    }

    fn inner(l: *const Layout) usize {
        return if (l.ndim == 0) 1 else l.shape[l.ndim - 1];
    }

    /// Element offsets of row `r` (all dimensions but the last) for every operand.
    fn rowOffsets(l: *const Layout, r: usize, out: *[max_ops]i64) void {
        out.* = [_]i64{0} ** max_ops;
        if (l.ndim <= 1) return;
        var rem = r;
        var i: usize = l.ndim - 1;
        while (i > 0) {
            i -= 1;
            const idx: i64 = @intCast(rem % l.shape[i]);
            rem /= l.shape[i];
            for (0..l.n_ops) |k| out[k] += idx * l.strides[k][i];
        }
    }
};

/// Work per chunk before a kernel goes parallel (in elements).
const grain = 1 << 15;

fn Kernel(comptime Ctx: type) type {
    return struct {
        /// Run `Ctx.row(ctx, offsets, strides_of_last_dim, count)` over every row, in parallel.
        fn run(ctx: *const Ctx, l: *const Layout) void {
            const rows = l.rows();
            const inner = l.inner();
            const rows_per_grain = @max(1, grain / @max(inner, 1));
            const Job = struct { ctx: *const Ctx, l: *const Layout };
            pool.parallelFor(rows, rows_per_grain, Job{ .ctx = ctx, .l = l }, struct {
                fn f(j: Job, start: usize, end: usize) void {
                    var last: [max_ops]i64 = undefined;
                    for (0..j.l.n_ops) |k| last[k] = if (j.l.ndim == 0) 1 else j.l.strides[k][j.l.ndim - 1];
                    var offs: [max_ops]i64 = undefined;
                    for (start..end) |r| {
                        j.l.rowOffsets(r, &offs);
                        j.ctx.row(&offs, &last, j.l.inner());
                    }
                }
            }.f);
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Kernels

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    switch (p) {
        .unary => |op| try evalUnary(node, op),
        .binary => |op| try evalBinary(node, op),
        .select => try evalSelect(node),
    }
}

fn donorFor(node: *Node, inputs: []const *Node) ?*Node {
    for (inputs) |in| {
        if (in.dtype.size() == node.dtype.size() and in.shape.eql(&node.shape)) return in;
    }
    return null;
}

fn evalUnary(node: *Node, op: UnaryOp) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, donorFor(node, &.{x}));
    if (node.size() == 0) return;
    const l = Layout.init(node, &.{x});
    switch (op) {
        inline else => |o| switch (x.dtype) {
            inline else => |D| try unaryTyped(o, D, node, x, &l),
        },
    }
}

fn unaryTyped(comptime op: UnaryOp, comptime D: Dtype, node: *Node, x: *Node, l: *const Layout) errors.Error!void {
    const kind = comptime unaryKind(op);
    // Combinations the dtype rules reject never reach a kernel; skip instantiating them.
    const valid = comptime switch (kind) {
        .bits => D.isInteger() or D == .bool_,
        .float => true,
        else => switch (op) {
            .trunc, .floor, .ceil => D != .complex64,
            .negative => D != .bool_,
            else => true,
        },
    };
    if (!valid) unreachable;
    const Out: Dtype = comptime switch (kind) {
        .same => if (op == .abs and D == .complex64) .float32 else D,
        .float => if (D.isInexact()) D else .float32,
        .pred, .logical => .bool_,
        .part => if (D == .complex64) .float32 else D,
        .bits => D,
    };
    if (comptime (kind == .float and Out == .complex64 and switch (op) {
        .expm1, .erf, .erfinv, .sigmoid => true,
        else => false,
    })) unreachable;
    const Ctx = struct {
        out: [*]Out.Type(),
        in: [*]const D.Type(),
        fn row(c: *const @This(), offs: *const [max_ops]i64, st: *const [max_ops]i64, n: usize) void {
            var po = offs[0];
            var pi = offs[1];
            if (!primitives.reference_mode and st[0] == 1 and st[1] == 1) {
                // Contiguous: a plain loop the compiler vectorises where the op allows.
                const o = c.out + @as(usize, @intCast(po));
                const src = c.in + @as(usize, @intCast(pi));
                var start: usize = 0;
                if (comptime (D == .float32 and (op == .sin or op == .cos))) {
                    // sin/cos by 8 lanes where the whole group is in the reduced range.
                    const L = 8;
                    while (start + L <= n) : (start += L) {
                        const v: @Vector(L, f32) = src[start..][0..L].*;
                        if (sm.sinCosVectorOk(L, v)) {
                            o[start..][0..L].* = sm.mlxSinCosV(op == .sin, L, v);
                        } else {
                            for (start..start + L) |i| o[i] = apply(src[i]);
                        }
                    }
                }
                for (start..n) |i| o[i] = apply(src[i]);
                return;
            }
            for (0..n) |_| {
                c.out[@intCast(po)] = apply(c.in[@intCast(pi)]);
                po += st[0];
                pi += st[1];
            }
        }
        inline fn apply(v: D.Type()) Out.Type() {
            switch (kind) {
                .pred => return predScalar(op, (comptime computeDtype(D)).Type(), convert.cast(D, comptime computeDtype(D), v)),
                .logical => return !convert.cast(D, .bool_, v),
                .part => {
                    if (D == .complex64) return if (op == .real) v.re else v.im;
                    return if (op == .real) v else convert.cast(.int32, D, 0);
                },
                else => {
                    if (op == .abs and D == .complex64) return sm.cabs(sm.toC(v));
                    const C = comptime computeDtype(Out);
                    const r = unaryScalar(op, C.Type(), convert.cast(D, C, v));
                    return convert.cast(C, Out, r);
                },
            }
        }
    };
    const ctx = Ctx{ .out = @ptrCast(@alignCast(node.data())), .in = @ptrCast(@alignCast(x.data())) };
    Kernel(Ctx).run(&ctx, l);
}

fn evalBinary(node: *Node, op: BinaryOp) errors.Error!void {
    const a = node.inputs[0];
    const b = node.inputs[1];
    try primitives.allocOutput(node, donorFor(node, &.{ a, b }));
    if (node.size() == 0) return;
    const l = Layout.init(node, &.{ a, b });
    switch (op) {
        inline else => |o| switch (a.dtype) {
            inline else => |D| try binaryTyped(o, D, node, a, b, &l),
        },
    }
}

fn binaryValid(comptime op: BinaryOp, comptime D: Dtype) bool {
    return switch (op) {
        .add, .subtract, .multiply, .floor_divide, .power, .maximum, .minimum => true,
        .remainder => D != .complex64,
        .divide, .logaddexp => D.isInexact(),
        .arctan2 => D.isFloating(),
        .equal, .not_equal, .less, .less_equal, .greater, .greater_equal => true,
        .logical_and, .logical_or, .logical_xor => D == .bool_,
        .bitwise_and, .bitwise_or, .bitwise_xor => D.isInteger() or D == .bool_,
        .left_shift, .right_shift => D.isInteger(),
    };
}

fn binaryTyped(comptime op: BinaryOp, comptime D: Dtype, node: *Node, a: *Node, b: *Node, l: *const Layout) errors.Error!void {
    if (comptime !binaryValid(op, D)) unreachable;
    const is_cmp = comptime switch (op) {
        .equal, .not_equal, .less, .less_equal, .greater, .greater_equal => true,
        else => false,
    };
    const is_logical = comptime switch (op) {
        .logical_and, .logical_or, .logical_xor => true,
        else => false,
    };
    const Out: Dtype = if (is_cmp or is_logical) .bool_ else D;
    const C = comptime computeDtype(D);
    const is_shift = comptime (op == .left_shift or op == .right_shift);
    const Ctx = struct {
        out: [*]Out.Type(),
        a: [*]const D.Type(),
        b: [*]const D.Type(),
        /// Shifts by one count over a contiguous array: elements below this flat index
        /// saturate (MLX's vector body), the rest wrap the count (its scalar tail).
        sat_end: usize = 0,
        fn row(c: *const @This(), offs: *const [max_ops]i64, st: *const [max_ops]i64, n: usize) void {
            var po = offs[0];
            var pa = offs[1];
            var pb = offs[2];
            if (is_shift and c.sat_end > 0) {
                for (0..n) |i| {
                    const k: usize = @as(usize, @intCast(po)) + i;
                    const x = c.a[@as(usize, @intCast(pa)) + i];
                    const y = c.b[@intCast(pb)];
                    c.out[k] = if (k < c.sat_end) shiftSaturating(op, D.Type(), x, y) else apply(x, y);
                }
                return;
            }
            if (!primitives.reference_mode and st[0] == 1 and st[1] == 1 and st[2] == 1) {
                // Contiguous: a plain loop the compiler vectorises.
                const o = c.out + @as(usize, @intCast(po));
                const x = c.a + @as(usize, @intCast(pa));
                const y = c.b + @as(usize, @intCast(pb));
                for (0..n) |i| o[i] = apply(x[i], y[i]);
                return;
            }
            if (!primitives.reference_mode and st[0] == 1 and (st[1] == 1 or st[1] == 0) and (st[2] == 1 or st[2] == 0)) {
                // One operand is a scalar along the row (stride 0): hoist it, keep the loop simple.
                const o = c.out + @as(usize, @intCast(po));
                if (st[2] == 0 and st[1] == 1) {
                    const x = c.a + @as(usize, @intCast(pa));
                    const y = c.b[@intCast(pb)];
                    for (0..n) |i| o[i] = apply(x[i], y);
                    return;
                }
                if (st[1] == 0 and st[2] == 1) {
                    const x = c.a[@intCast(pa)];
                    const y = c.b + @as(usize, @intCast(pb));
                    for (0..n) |i| o[i] = apply(x, y[i]);
                    return;
                }
            }
            for (0..n) |_| {
                c.out[@intCast(po)] = apply(c.a[@intCast(pa)], c.b[@intCast(pb)]);
                po += st[0];
                pa += st[1];
                pb += st[2];
            }
        }
        inline fn apply(x: D.Type(), y: D.Type()) Out.Type() {
            if (is_logical) return switch (op) {
                .logical_and => x and y,
                .logical_or => x or y,
                .logical_xor => x != y,
                else => unreachable,
            };
            const xc = convert.cast(D, C, x);
            const yc = convert.cast(D, C, y);
            if (is_cmp) return compareScalar(op, C.Type(), xc, yc);
            return convert.cast(C, Out, binaryScalar(op, C.Type(), xc, yc));
        }
    };
    var ctx = Ctx{ .out = @ptrCast(@alignCast(node.data())), .a = @ptrCast(@alignCast(a.data())), .b = @ptrCast(@alignCast(b.data())) };
    if (is_shift and D.isInteger() and b.size() == 1 and l.ndim == 1 and l.strides[0][0] == 1 and l.strides[1][0] == 1) {
        const lanes = 16 / @sizeOf(D.Type());
        const total = node.size();
        ctx.sat_end = total - total % lanes;
    }
    Kernel(Ctx).run(&ctx, l);
}

fn evalSelect(node: *Node) errors.Error!void {
    const c = node.inputs[0];
    const x = node.inputs[1];
    const y = node.inputs[2];
    try primitives.allocOutput(node, donorFor(node, &.{ x, y }));
    if (node.size() == 0) return;
    const l = Layout.init(node, &.{ c, x, y });
    switch (node.dtype) {
        inline else => |D| {
            const Ctx = struct {
                out: [*]D.Type(),
                c: [*]const bool,
                x: [*]const D.Type(),
                y: [*]const D.Type(),
                fn row(k: *const @This(), offs: *const [max_ops]i64, st: *const [max_ops]i64, n: usize) void {
                    var po = offs[0];
                    var pc = offs[1];
                    var px = offs[2];
                    var py = offs[3];
                    if (!primitives.reference_mode and st[0] == 1 and st[1] == 1 and st[2] == 1 and st[3] == 1) {
                        const o = k.out + @as(usize, @intCast(po));
                        const cc = k.c + @as(usize, @intCast(pc));
                        const xx = k.x + @as(usize, @intCast(px));
                        const yy = k.y + @as(usize, @intCast(py));
                        for (0..n) |i| o[i] = if (cc[i]) xx[i] else yy[i];
                        return;
                    }
                    for (0..n) |_| {
                        k.out[@intCast(po)] = if (k.c[@intCast(pc)]) k.x[@intCast(px)] else k.y[@intCast(py)];
                        po += st[0];
                        pc += st[1];
                        px += st[2];
                        py += st[3];
                    }
                }
            };
            const ctx = Ctx{ .out = @ptrCast(@alignCast(node.data())), .c = @ptrCast(@alignCast(c.data())), .x = @ptrCast(@alignCast(x.data())), .y = @ptrCast(@alignCast(y.data())) };
            Kernel(Ctx).run(&ctx, &l);
        },
    }
}

// ---------------------------------------------------------------------------------------------
// C ABI

const opArg = abi_util.opArg;

fn unaryAbi(op: u32, a: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const o = opArg(UnaryOp, op, "unary") catch |e| break :blk e;
        const x = handles.get(a, @tagName(o)) catch |e| break :blk e;
        const stream = stream_mod.resolve(s, @tagName(o)) catch |e| break :blk e;
        break :blk unary(o, x, stream);
    });
}

fn binaryAbi(op: u32, a: u32, b: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const o = opArg(BinaryOp, op, "binary") catch |e| break :blk e;
        const x = handles.get(a, @tagName(o)) catch |e| break :blk e;
        const y = handles.get(b, @tagName(o)) catch |e| break :blk e;
        const stream = stream_mod.resolve(s, @tagName(o)) catch |e| break :blk e;
        break :blk binary(o, x, y, stream);
    });
}

fn whereAbi(c: u32, a: u32, b: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const cond = handles.get(c, "where") catch |e| break :blk e;
        const x = handles.get(a, "where") catch |e| break :blk e;
        const y = handles.get(b, "where") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "where") catch |e| break :blk e;
        break :blk select(cond, x, y, stream);
    });
}

/// Tests: 1 runs every kernel through its strided scalar path (no contiguous fast paths), so
/// the fast paths can be checked against it; 0 restores the default.
fn setReferenceModeAbi(on: u32) callconv(.c) i32 {
    primitives.reference_mode = on != 0;
    return 0;
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("set_reference_mode", setReferenceModeAbi, &.{"on"}, "Tests: 1 makes kernels skip their contiguous fast paths (reference scalar loops), 0 restores them."),
    abi_util.entry("unary", unaryAbi, &.{ "op", "a", "stream" }, "An elementwise unary op (enum mlxb_unary_op) of a."),
    abi_util.entry("binary", binaryAbi, &.{ "op", "a", "b", "stream" }, "An elementwise binary op (enum mlxb_binary_op) of a and b, broadcast and promoted."),
    abi_util.entry("where", whereAbi, &.{ "condition", "x", "y", "stream" }, "x where condition is true, else y (broadcast; x and y promoted)."),
};

pub const abi_enums = .{
    .{ "unary_op", UnaryOp },
    .{ "binary_op", BinaryOp },
};

test {
    _ = sm;
}
