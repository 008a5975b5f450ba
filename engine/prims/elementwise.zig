//! Elementwise ops: unary math, binary arithmetic, comparisons, logical and bitwise ops, and
//! select (where). One primitive per arity with an op enum; the output dtype rules and MLX's
//! errors are checked when the op is built; kernels broadcast by strides (no copies, any sign:
//! views with negative strides are read in place), run vector (@Vector) kernels where they can,
//! and split large arrays, even one long row, over all cores. The scalar reference loops define
//! the results (primitives.reference_mode runs them alone); the vector kernels give the same
//! bits, except the transcendentals listed in unaryVecApprox, which are ours within stated bounds.
const std = @import("std");
const builtin = @import("builtin");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const half = @import("../half.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const abi_util = @import("../abi_util.zig");
const copy = @import("copy.zig");
const sm = @import("scalar_math.zig");
const cpu = @import("../cpu.zig");
const gemm = @import("../gemm.zig");
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

pub fn unaryKind(op: UnaryOp) enum { same, float, pred, part, logical, bits } {
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

pub fn computeDtype(d: Dtype) Dtype {
    return switch (d) {
        .float16, .bfloat16 => .float32,
        else => d,
    };
}

fn isFloatT(comptime T: type) bool {
    return T == f32 or T == f64;
}

pub fn unaryScalar(comptime op: UnaryOp, comptime T: type, x: T) T {
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

pub fn predScalar(comptime op: UnaryOp, comptime T: type, x: T) bool {
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

pub fn binaryScalar(comptime op: BinaryOp, comptime T: type, a: T, b: T) T {
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

pub fn compareScalar(comptime op: BinaryOp, comptime T: type, a: T, b: T) bool {
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
pub const Layout = extern struct {
    ndim: usize,
    shape: [array.max_ndim]usize,
    strides: [max_ops][array.max_ndim]i64,
    n_ops: usize,

    /// n contiguous elements of each of n_ops operands (a fused program's block).
    fn contiguous(n_ops: usize, n: usize) Layout {
        var l = Layout{ .ndim = 1, .shape = undefined, .strides = undefined, .n_ops = n_ops };
        l.shape[0] = n;
        for (0..n_ops) |k| l.strides[k][0] = 1;
        return l;
    }

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

    /// Row `r`'s index over the outer dimensions (all but the last) and its operands' offsets.
    fn rowStart(l: *const Layout, r: usize, idx: *[array.max_ndim]usize, out: *[max_ops]i64) void {
        out.* = [_]i64{0} ** max_ops;
        if (l.ndim <= 1) return;
        var rem = r;
        var i: usize = l.ndim - 1;
        while (i > 0) {
            i -= 1;
            idx[i] = rem % l.shape[i];
            rem /= l.shape[i];
            const v: i64 = @intCast(idx[i]);
            for (0..l.n_ops) |k| out[k] += v * l.strides[k][i];
        }
    }

    /// Step `idx` and `out` (from rowStart) to the next row; the caller stops at the last row.
    inline fn nextRow(l: *const Layout, idx: *[array.max_ndim]usize, out: *[max_ops]i64) void {
        var i: usize = l.ndim - 1;
        while (i > 0) {
            i -= 1;
            idx[i] += 1;
            if (idx[i] < l.shape[i]) {
                for (0..l.n_ops) |k| out[k] += l.strides[k][i];
                return;
            }
            const back: i64 = @intCast(l.shape[i] - 1);
            idx[i] = 0;
            for (0..l.n_ops) |k| out[k] -= back * l.strides[k][i];
        }
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

/// Work per chunk before a kernel goes parallel (in elements). Compute-heavy kernels split
/// early. Memory-bound ones (a few instructions per element) only from 2M elements: below that
/// their data sits in the caches, where one core is already fast and waking a second one costs
/// about as much as it saves (and much more when the other core is busy); above it one core
/// with streaming stores nearly saturates memory, a second one adds a little.
const grain = 1 << 15;
const grain_cheap = 1 << 20;

fn unaryCheap(comptime op: UnaryOp, comptime D: Dtype) bool {
    if (D == .complex64) return false;
    return switch (op) {
        .abs, .sign, .negative, .trunc, .square, .sqrt, .rsqrt, .reciprocal, .floor, .ceil, .round, .degrees, .radians, .conj, .real, .imag, .isnan, .isinf, .isfinite, .isposinf, .isneginf, .logical_not, .bitwise_invert => true,
        else => false,
    };
}

fn binaryCheap(comptime op: BinaryOp, comptime D: Dtype) bool {
    if (D == .complex64) return false;
    return switch (op) {
        .add, .subtract, .multiply, .maximum, .minimum, .equal, .not_equal, .less, .less_equal, .greater, .greater_equal, .logical_and, .logical_or, .logical_xor, .bitwise_and, .bitwise_or, .bitwise_xor, .left_shift, .right_shift => true,
        .divide => D.isFloating(),
        else => false,
    };
}

/// Elements of one operand's scratch in the 2-d walks below (a broadcast operand expanded, per
/// thread, on the stack: at most 8 bytes an element, three inputs).
const scratch_elems = 512;

/// Inner runs up to this long, with an operand broadcast along them (stride 0) and every other
/// operand contiguous from one run to the next, are walked as one long run over several rows
/// (the broadcast operand expanded into scratch) instead of a call per run.
const expand_max_inner = 64;

/// Tiles of the 2-d walk over a transposed operand: up to 64 rows (the second-to-last axis; as
/// many as fit tile_bytes at the widest element: 64 up to 4 bytes, 32 for 8) by `tile_cols`
/// elements of each (the last). The transposed operand's tile is first copied into scratch,
/// column by column (each column a run along the operand's own contiguous axis, so each cache
/// line is read once, whole), then the tile's rows run with every operand read contiguously.
const tile_cols = 64;
const tile_bytes = 16384;
/// An element of a tile costs about this many of a contiguous walk's (the gather through
/// scratch, lines touched far apart), so a tiled walk's items hold 1/tile_cost of the grain
/// (a 1M-element transpose is split over the threads).
const tile_cost = 4;

fn Kernel(comptime Ctx: type) type {
    // Ctx gives: `sizes` (each operand's element size, output first; 0 past the last operand),
    // `bases(ctx)` (their data addresses) and `row(ctx, addresses, strides, n)`, which runs the
    // op over n elements from the given addresses, each operand walking its own stride.
    return struct {
        fn row(c: *const anyopaque, p: *const [max_ops]usize, st: *const [max_ops]i64, n: usize) void {
            Ctx.row(@ptrCast(@alignCast(c)), p, st, n);
        }

        fn run(ctx: *const Ctx, l: *const Layout, g: usize) void {
            const rows = Rows{ .ctx = ctx, .row = &row, .bases = ctx.bases() };
            Walk(Ctx.sizes).run(&rows, l, g);
        }
    };
}

/// An op's row function with its context, as the walks below call it: `row(ctx, addresses,
/// strides, n)` runs the op over n elements, each operand from its address with its stride.
const RowFn = fn (ctx: *const anyopaque, p: *const [max_ops]usize, st: *const [max_ops]i64, n: usize) void;
const Rows = struct {
    ctx: *const anyopaque,
    row: *const RowFn,
    /// The operands' data addresses.
    bases: [max_ops]usize,

    inline fn call(r: *const Rows, p: *const [max_ops]usize, st: *const [max_ops]i64, n: usize) void {
        r.row(r.ctx, p, st, n);
    }
};

/// The walks of every layout, generic over the operands' element sizes only (output first; 0
/// past the last operand): one copy serves every op and dtype with those sizes, the op's row
/// reached through a pointer once per row (rows are long once the layout is collapsed; the
/// short-row walks below hand a row call many elements).
fn Walk(comptime sizes: [max_ops]usize) type {
    return struct {
        /// The addresses of `offs` (elements from each operand's data, either sign).
        inline fn addrs(b: *const [max_ops]usize, offs: *const [max_ops]i64, n_ops: usize) [max_ops]usize {
            var a: [max_ops]usize = b.*;
            inline for (0..max_ops) |k| if (comptime sizes[k] != 0) {
                if (k < n_ops) a[k] = b[k] +% @as(usize, @bitCast(offs[k] *% @as(i64, sizes[k])));
            };
            return a;
        }

        /// Every layout: the work split into items of about `g` elements: a segment of one row
        /// (rows longer than g: the usual case once the layout is collapsed) or a run of whole rows.
        const Plan = struct {
            l: *const Layout,
            ctx: *const Rows,
            seg: usize, // row elements per item (a multiple of 64 when rows are segmented)
            segs: usize, // items per row
            rows_per: usize, // rows per item (when rows are whole)
            items: usize,
            next: *std.atomic.Value(usize),

            fn item(p: *const Plan, it: usize, last: *const [max_ops]i64, b: *const [max_ops]usize) void {
                const len = p.l.inner();
                const n_ops = p.l.n_ops;
                var offs: [max_ops]i64 = undefined;
                if (p.segs > 1) {
                    p.l.rowOffsets(it / p.segs, &offs);
                    const first = (it % p.segs) * p.seg;
                    for (0..n_ops) |k| offs[k] += @as(i64, @intCast(first)) * last[k];
                    p.ctx.call(&addrs(b, &offs, n_ops), last, @min(p.seg, len - first));
                    return;
                }
                // A run of whole rows: the first row's offsets from its index, the next ones by
                // stepping an odometer over the outer dimensions (no division per row).
                const r0 = it * p.rows_per;
                const r1 = @min(r0 + p.rows_per, p.l.rows());
                var idx: [array.max_ndim]usize = undefined;
                p.l.rowStart(r0, &idx, &offs);
                var r = r0;
                while (true) {
                    p.ctx.call(&addrs(b, &offs, n_ops), last, len);
                    r += 1;
                    if (r == r1) break;
                    p.l.nextRow(&idx, &offs);
                }
            }

            /// Take items until none are left (every thread of the pool runs this).
            fn drain(p: *const Plan, _: usize, _: usize) void {
                var last: [max_ops]i64 = undefined;
                for (0..p.l.n_ops) |k| last[k] = if (p.l.ndim == 0) 1 else p.l.strides[k][p.l.ndim - 1];
                const b = p.ctx.bases;
                while (true) {
                    const it = p.next.fetchAdd(1, .monotonic);
                    if (it >= p.items) break;
                    p.item(it, &last, &b);
                }
                // Streaming stores are ordered once per thread, after all its items (a fence per
                // row cost ~0.7 us each: 30x the work of a 16-element row).
                streamFence();
            }
        };

        /// Short rows with a broadcast operand ([n,16,4] against [n,16,1]): the last two axes
        /// walked as one run over `rows` rows at a time; an operand broadcast along the last
        /// axis (`expand`) is written out into scratch (each of its values `inner` times), the
        /// others are contiguous from row to row and read in place.
        const ExpandPlan = struct {
            l: *const Layout,
            outer: Layout, // l without its last axis: rowOffsets gives the offsets of the outer axes
            ctx: *const Rows,
            expand: [max_ops]bool,
            rows: usize, // rows per chunk (one row call)
            chunks: usize, // chunks per outer index
            per_item: usize, // chunks per item
            items: usize,
            next: *std.atomic.Value(usize),

            fn chunk(p: *const ExpandPlan, q: usize, b: *const [max_ops]usize, scratch: *[max_ops - 1][scratch_elems * 8]u8) void {
                const d = p.l.ndim;
                const len = p.l.shape[d - 1];
                const r0 = (q % p.chunks) * p.rows;
                const nr = @min(p.rows, p.l.shape[d - 2] - r0);
                var offs: [max_ops]i64 = undefined;
                p.outer.rowOffsets(q / p.chunks, &offs);
                for (0..p.l.n_ops) |k| offs[k] += @as(i64, @intCast(r0)) * p.l.strides[k][d - 2];
                var a = addrs(b, &offs, p.l.n_ops);
                var st: [max_ops]i64 = undefined;
                inline for (0..max_ops) |k| if (comptime sizes[k] != 0) if (k < p.l.n_ops) {
                    st[k] = p.l.strides[k][d - 1];
                    if (comptime k > 0) if (p.expand[k]) {
                        const U = std.meta.Int(.unsigned, 8 * sizes[k]);
                        const src: [*]align(1) const U = @ptrFromInt(a[k]);
                        const dst: [*]U = @ptrCast(@alignCast(&scratch[k - 1]));
                        const rs = p.l.strides[k][d - 2];
                        for (0..nr) |r| @memset(dst[r * len ..][0..len], ofs(src, @as(i64, @intCast(r)) * rs)[0]);
                        a[k] = @intFromPtr(dst);
                        st[k] = 1;
                    };
                };
                p.ctx.call(&a, &st, nr * len);
            }

            fn drain(p: *const ExpandPlan, _: usize, _: usize) void {
                var scratch: [max_ops - 1][scratch_elems * 8]u8 align(64) = undefined;
                const b = p.ctx.bases;
                const total = p.chunks * p.outer.rows();
                while (true) {
                    const it = p.next.fetchAdd(1, .monotonic);
                    if (it >= p.items) break;
                    const q0 = it * p.per_item;
                    for (q0..@min(q0 + p.per_item, total)) |q| p.chunk(q, &b, &scratch);
                }
                streamFence();
            }
        };

        /// A transposed operand (its last-axis stride large, its second-to-last small): the last
        /// two axes walked in tiles of `rows` x tile_cols elements, a row call per tile row; the
        /// `gather` operands' tiles copied into scratch first (row-major, tile_cols a row).
        const TilePlan = struct {
            l: *const Layout,
            outer: Layout,
            ctx: *const Rows,
            gather: [max_ops]bool,
            rows: usize, // tile rows
            rb: usize, // tiles per outer index along the second-to-last axis
            cb: usize, // ... and along the last
            per_item: usize, // tiles per item
            items: usize,
            next: *std.atomic.Value(usize),

            fn tile(p: *const TilePlan, q: usize, b: *const [max_ops]usize, scratch: *[max_ops - 1][tile_bytes]u8) void {
                const d = p.l.ndim;
                const per_outer = p.rb * p.cb;
                const rem = q % per_outer;
                const row0 = (rem / p.cb) * p.rows;
                const col0 = (rem % p.cb) * tile_cols;
                const nr = @min(p.rows, p.l.shape[d - 2] - row0);
                const nc = @min(tile_cols, p.l.shape[d - 1] - col0);
                var offs: [max_ops]i64 = undefined;
                p.outer.rowOffsets(q / per_outer, &offs);
                for (0..p.l.n_ops) |k| offs[k] += @as(i64, @intCast(row0)) * p.l.strides[k][d - 2] + @as(i64, @intCast(col0)) * p.l.strides[k][d - 1];
                var a = addrs(b, &offs, p.l.n_ops);
                var st: [max_ops]i64 = undefined; // strides along a row
                var step: [max_ops]i64 = undefined; // bytes from one row to the next
                inline for (0..max_ops) |k| if (comptime sizes[k] != 0) if (k < p.l.n_ops) {
                    st[k] = p.l.strides[k][d - 1];
                    step[k] = p.l.strides[k][d - 2] * @as(i64, sizes[k]);
                    if (comptime k > 0) if (p.gather[k]) {
                        const U = std.meta.Int(.unsigned, 8 * sizes[k]);
                        const src: [*]align(1) const U = @ptrFromInt(a[k]);
                        const dst: [*]U = @ptrCast(@alignCast(&scratch[k - 1]));
                        gatherTile(U, src, st[k], p.l.strides[k][d - 2], nr, nc, dst);
                        a[k] = @intFromPtr(dst);
                        st[k] = 1;
                        step[k] = tile_cols * sizes[k];
                    };
                };
                for (0..nr) |_| {
                    p.ctx.call(&a, &st, nc);
                    for (0..p.l.n_ops) |k| a[k] +%= @as(usize, @bitCast(step[k]));
                }
            }

            fn drain(p: *const TilePlan, _: usize, _: usize) void {
                var scratch: [max_ops - 1][tile_bytes]u8 align(64) = undefined;
                const b = p.ctx.bases;
                const total = p.rb * p.cb * p.outer.rows();
                while (true) {
                    const it = p.next.fetchAdd(1, .monotonic);
                    if (it >= p.items) break;
                    const q0 = it * p.per_item;
                    for (q0..@min(q0 + p.per_item, total)) |q| p.tile(q, &b, &scratch);
                }
                streamFence();
            }
        };

        /// Runs `drain` of plan `p` on the pool (or here, for one item or one thread).
        fn go(p: anytype) void {
            const t = pool.threads();
            if (t == 1 or p.items < 2) return p.drain(0, 0);
            pool.parallelFor(@min(t, p.items), 1, p, @TypeOf(p.*).drain);
        }

        /// The inputs TilePlan copies into scratch, or null when the last two axes are not
        /// walked in tiles: those reading their last axis with a stride of a cache line or
        /// more and their second-to-last axis with a smaller one (a transpose), while the
        /// output is written row by row.
        fn tiled(l: *const Layout) ?[max_ops]bool {
            if (l.ndim < 2) return null;
            const d = l.ndim;
            if (l.strides[0][d - 1] != 1) return null;
            var g = [_]bool{false} ** max_ops;
            var any = false;
            inline for (1..max_ops) |k| if (comptime sizes[k] != 0) if (k < l.n_ops) {
                const s1 = @abs(l.strides[k][d - 1]);
                const s2 = @abs(l.strides[k][d - 2]);
                if (s1 * sizes[k] >= 64 and s2 < s1) {
                    g[k] = true;
                    any = true;
                }
            };
            return if (any) g else null;
        }

        /// Which operands ExpandPlan writes out, or null when it does not apply: rows short
        /// enough, every operand either contiguous from one row to the next (the output
        /// always) or broadcast along the row.
        fn expandable(l: *const Layout) ?[max_ops]bool {
            if (l.ndim < 2) return null;
            const d = l.ndim;
            const len = l.shape[d - 1];
            if (len > expand_max_inner) return null;
            var e = [_]bool{false} ** max_ops;
            var any = false;
            for (0..l.n_ops) |k| {
                const s1 = l.strides[k][d - 1];
                const s2 = l.strides[k][d - 2];
                if (s2 == s1 * @as(i64, @intCast(len))) continue;
                if (k == 0 or s1 != 0) return null;
                e[k] = true;
                any = true;
            }
            return if (any) e else null;
        }

        /// Run the row function over every element of the layout (offsets of either sign: views with
        /// negative strides), in parallel once there are at least two items of `g` elements.
        /// Threads take items from a shared counter, so a thread that starts late (a busy core)
        /// delays the kernel by one item at most. The order of the elements is free: every
        /// walk gives the same bits (the same per-element code on the same values).
        fn run(ctx: *const Rows, l: *const Layout, g: usize) void {
            var next = std.atomic.Value(usize).init(0);
            if (l.ndim >= 2) {
                const d = l.ndim;
                var outer = l.*;
                outer.ndim = d - 1;
                if (expandable(l)) |e| {
                    const len = l.shape[d - 1];
                    const rows = @min(scratch_elems / len, l.shape[d - 2]);
                    const chunks = (l.shape[d - 2] + rows - 1) / rows;
                    const per_item = @max(1, g / (rows * len));
                    const total = chunks * outer.rows();
                    var p = ExpandPlan{ .l = l, .outer = outer, .ctx = ctx, .expand = e, .rows = rows, .chunks = chunks, .per_item = per_item, .items = (total + per_item - 1) / per_item, .next = &next };
                    return go(&p);
                }
                if (tiled(l)) |gather| {
                    comptime var widest: usize = 0;
                    inline for (sizes) |s| widest = @max(widest, s);
                    const rows: usize = comptime @min(64, tile_bytes / (tile_cols * widest));
                    const rb = (l.shape[d - 2] + rows - 1) / rows;
                    const cb = (l.shape[d - 1] + tile_cols - 1) / tile_cols;
                    const per_item = @max(1, g / (tile_cost * rows * tile_cols));
                    const total = rb * cb * outer.rows();
                    var p = TilePlan{ .l = l, .outer = outer, .ctx = ctx, .gather = gather, .rows = rows, .rb = rb, .cb = cb, .per_item = per_item, .items = (total + per_item - 1) / per_item, .next = &next };
                    return go(&p);
                }
            }
            const rows = l.rows();
            const inner = l.inner();
            var p = Plan{ .l = l, .ctx = ctx, .seg = inner, .segs = 1, .rows_per = 1, .items = rows, .next = &next };
            if (inner >= 2 * g) {
                // Segments start on 64-element boundaries: vector blocks stay aligned.
                p.seg = std.mem.alignForward(usize, g, 64);
                p.segs = (inner + p.seg - 1) / p.seg;
                p.items = rows * p.segs;
            } else {
                p.rows_per = @max(1, g / inner);
                p.items = (rows + p.rows_per - 1) / p.rows_per;
            }
            go(&p);
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Copies: an evaluated array of any layout into a row-major one of any dtype (astype, contiguous
// copies, and every kernel that packs its input first: convert.copyConvert) on the walks above.

/// The copy's row: convert.cast per element; between float32, float16 and bfloat16 a block at a
/// time through float32 lanes (vload / vstore round as half.zig does, so the bits are cast's).
fn CastCtx(comptime S: Dtype, comptime D: Dtype) type {
    const floats = comptime castDispatched(S, D);
    return extern struct {
        out: [*]D.Type(),
        in: [*]const S.Type(),
        /// Large output: streaming stores where the level has them.
        stream: bool,
        pub const sizes = [max_ops]usize{ @sizeOf(D.Type()), @sizeOf(S.Type()), 0, 0 };
        fn bases(c: *const @This()) [max_ops]usize {
            return .{ @intFromPtr(c.out), @intFromPtr(c.in), 0, 0 };
        }
        fn row(c: *const @This(), p: *const [max_ops]usize, st: *const [max_ops]i64, n: usize) void {
            const o: [*]D.Type() = @ptrFromInt(p[0]);
            const src: [*]const S.Type() = @ptrFromInt(p[1]);
            if (st[0] == 1 and st[1] == 1) {
                var i: usize = 0;
                if (comptime floats) {
                    if (can_stream and c.stream and streamAligned(D.Type(), o)) {
                        while (i + VL <= n) : (i += VL) storeBlockStream(D, o + i, vload(S, src + i));
                    }
                    while (i + VL <= n) : (i += VL) vstore(D, o + i, vload(S, src + i));
                } else if (can_stream and c.stream and @intFromPtr(o) % 64 == 0) {
                    // Other casts and same-dtype copies: a cache line of results at a time.
                    const per = 64 / @sizeOf(D.Type());
                    while (i + per <= n) : (i += per) {
                        var line: [per]D.Type() align(64) = undefined;
                        inline for (0..per) |e| line[e] = convert.cast(S, D, src[i + e]);
                        streamLine(@ptrCast(o + i), @as(*const [64]u8, @ptrCast(&line)).*);
                    }
                }
                while (i < n) : (i += 1) o[i] = convert.cast(S, D, src[i]);
                return;
            }
            var po: i64 = 0;
            var pi: i64 = 0;
            for (0..n) |_| {
                ofs(o, po)[0] = convert.cast(S, D, ofs(src, pi)[0]);
                po += st[0];
                pi += st[1];
            }
        }
    };
}

/// Copy the evaluated `src` into `dst` (row-major, contiguous, `to`'s element alignment) as
/// dtype `to`, with convert.cast's rules (convert.copyConvert).
pub fn copyCast(src: *const Node, dst: [*]u8, to: Dtype) void {
    const st = src.shape.rowStrides();
    copyStrided(src.dtype, &src.shape, src.data(), &src.strides, to, dst, &st);
}

/// Copy the elements of `shape` from `src` (dtype `from`, strides in elements, either sign) to
/// `dst` (dtype `to`, its own strides) with convert.cast's rules, on Kernel.run's walks: split
/// over the pool for large arrays, a transposed source read in tiles through scratch.
/// Same-dtype copies move the elements as unsigned integers of their size.
pub fn copyStrided(from: Dtype, shape: *const Shape, src: [*]const u8, src_st: *const [array.max_ndim]i64, to: Dtype, dst: [*]u8, dst_st: *const [array.max_ndim]i64) void {
    if (shape.size() == 0) return;
    var l = Layout{ .ndim = shape.ndim, .shape = undefined, .strides = undefined, .n_ops = 2 };
    for (0..l.ndim) |i| {
        l.shape[i] = @intCast(shape.dims[i]);
        l.strides[0][i] = dst_st[i];
        l.strides[1][i] = src_st[i];
    }
    l.collapse();
    if (from == to) {
        switch (to.size()) {
            inline 1, 2, 4, 8 => |w| {
                const U: Dtype = switch (w) {
                    1 => .uint8,
                    2 => .uint16,
                    4 => .uint32,
                    else => .uint64,
                };
                runCast(U, U, &l, src, dst);
            },
            else => unreachable,
        }
        return;
    }
    switch (from) {
        inline else => |S| switch (to) {
            inline else => |D| if (comptime S != D) runCast(S, D, &l, src, dst),
        },
    }
}

/// The cast of n contiguous elements (a fused program's block), by the cast op's kernel.
pub fn castBlock(comptime S: Dtype, comptime D: Dtype, out: [*]u8, in: [*]const u8, n: usize) void {
    const l = Layout.contiguous(2, n);
    runCast(S, D, &l, in, out);
}

fn runCast(comptime S: Dtype, comptime D: Dtype, l: *const Layout, in: [*]const u8, out: [*]u8) void {
    const K = CastKernel(S, D);
    const bytes = l.rows() * l.inner() * @sizeOf(D.Type());
    const ctx = K.Ctx{ .out = @ptrCast(@alignCast(out)), .in = @ptrCast(@alignCast(in)), .stream = bytes >= stream_min_bytes };
    if (comptime cpu.dispatch and castDispatched(S, D)) {
        cpu.pick(K.Fn, comptime castEntryName(S, D))(&ctx, l);
    } else K.call(&ctx, l);
}

/// The casts a portable build runs from the CPU level's kernel object: those between float32,
/// float16 and bfloat16, which take float32 lanes (float16's conversions are instructions from
/// the AVX2 level's F16C on, a dozen integer operations per value at baseline).
pub fn castDispatched(comptime S: Dtype, comptime D: Dtype) bool {
    return S != D and Lane(S) == f32 and Lane(D) == f32;
}

pub fn castEntryName(comptime S: Dtype, comptime D: Dtype) []const u8 {
    return "cast_" ++ @tagName(S) ++ "_" ++ @tagName(D);
}

/// The converting copy from S to D: its context crosses the kernel objects' C ABI.
pub fn CastKernel(comptime S: Dtype, comptime D: Dtype) type {
    return struct {
        pub const Ctx = CastCtx(S, D);
        pub const Fn = fn (*const Ctx, *const Layout) callconv(.c) void;
        pub fn call(ctx: *const Ctx, l: *const Layout) callconv(.c) void {
            Kernel(Ctx).run(ctx, l, grain_cheap);
        }
    };
}

/// A tile of a transposed operand into scratch, row-major with tile_cols elements a row:
/// dst[i * tile_cols + j] = src[j * s1 + i * s2], each column read along the operand's own
/// axis. An operand whose rows are contiguous (s2 = 1: a plain transpose) goes in square
/// blocks transposed in vector registers (16 x 16 elements, 8 x 8 for 8-byte ones), the
/// edges and other layouts element by element.
fn gatherTile(comptime U: type, src: [*]align(1) const U, s1: i64, s2: i64, nr: usize, nc: usize, dst: [*]U) void {
    const L = if (@sizeOf(U) == 8) 8 else 16;
    var j0: usize = 0;
    if (@sizeOf(U) > 1 and s2 == 1) {
        while (j0 + L <= nc) : (j0 += L) {
            var r0: usize = 0;
            while (r0 + L <= nr) : (r0 += L) {
                var v: [L]@Vector(L, U) = undefined;
                inline for (0..L) |c| {
                    const col = ofs(src, @as(i64, @intCast(j0 + c)) * s1 + @as(i64, @intCast(r0)));
                    const line: [L]U = col[0..L].*;
                    v[c] = line;
                }
                gemm.transposeSquare(U, L, &v);
                inline for (0..L) |r| dst[(r0 + r) * tile_cols + j0 ..][0..L].* = v[r];
            }
            for (j0..j0 + L) |j| gatherColumn(U, src, s1, s2, r0, nr, j, dst);
        }
    }
    for (j0..nc) |j| gatherColumn(U, src, s1, s2, 0, nr, j, dst);
}

/// Rows [r0, nr) of gatherTile's column j, element by element.
inline fn gatherColumn(comptime U: type, src: [*]align(1) const U, s1: i64, s2: i64, r0: usize, nr: usize, j: usize, dst: [*]U) void {
    const col = ofs(src, @as(i64, @intCast(j)) * s1);
    for (r0..nr) |i| dst[i * tile_cols + j] = ofs(col, @as(i64, @intCast(i)) * s2)[0];
}

/// `p` moved by `i` elements, `i` of either sign: a view with negative strides starts at its
/// first logical element, which need not be its lowest address (as convert.at).
inline fn ofs(p: anytype, i: i64) @TypeOf(p) {
    const T = @typeInfo(@TypeOf(p)).pointer.child;
    const addr = @as(isize, @bitCast(@intFromPtr(p))) +% @as(isize, i) *% @sizeOf(T);
    return @ptrFromInt(@as(usize, @bitCast(addr)));
}

// ---------------------------------------------------------------------------------------------
// Vector blocks. The fast paths compute VL elements at a time with @Vector: float16 and
// bfloat16 through float32 lanes (loaded exactly; stored with half.zig's rounding and NaN
// rules), bool as one byte per lane. Operands are read contiguously, broadcast (stride 0) or
// gathered (any other stride, negative included), so every layout takes the same arithmetic.

/// Lanes per block: one AVX-512 register of float32.
pub const VL = 16;
pub const Mask = @Vector(VL, bool);

/// The lane type a dtype is computed in by the vector kernels.
pub fn Lane(comptime D: Dtype) type {
    return switch (D) {
        .float16, .bfloat16 => f32,
        .bool_ => u8,
        else => D.Type(),
    };
}

pub fn Vec(comptime D: Dtype) type {
    return @Vector(VL, Lane(D));
}

pub inline fn vload(comptime D: Dtype, p: [*]const D.Type()) Vec(D) {
    switch (D) {
        .float16, .bfloat16 => {
            const h: @Vector(VL, u16) = @as([*]const u16, @ptrCast(p))[0..VL].*;
            return if (D == .float16) half.f16ToF32V(VL, h) else half.bf16ToF32V(VL, h);
        },
        .bool_ => return @as([*]const u8, @ptrCast(p))[0..VL].*,
        else => return p[0..VL].*,
    }
}

/// A block's storage bytes: Vec(D) in D's memory format (float16/bfloat16 rounded with
/// half.zig's rules, bool one byte per lane).
pub fn Bytes(comptime D: Dtype) type {
    return @Vector(VL * @sizeOf(D.Type()), u8);
}

pub inline fn vpack(comptime D: Dtype, v: Vec(D)) Bytes(D) {
    return switch (D) {
        .float16 => @bitCast(half.f32ToF16V(VL, v)),
        .bfloat16 => @bitCast(half.f32ToBf16V(VL, v)),
        else => @bitCast(v),
    };
}

pub inline fn maskBytes(m: Mask) @Vector(VL, u8) {
    return @select(u8, m, @as(@Vector(VL, u8), @splat(1)), @as(@Vector(VL, u8), @splat(0)));
}

pub inline fn vstore(comptime D: Dtype, p: [*]D.Type(), v: Vec(D)) void {
    @as([*]u8, @ptrCast(p))[0..@sizeOf(Bytes(D))].* = vpack(D, v);
}

pub inline fn vstoreMask(p: [*]bool, m: Mask) void {
    @as([*]u8, @ptrCast(p))[0..VL].* = maskBytes(m);
}

/// How a vector loop reads an operand: contiguous, broadcast (stride 0), or either of those or
/// gathered, decided per block (the loops are instantiated for the common layouts, so their
/// inner loops carry no stride tests).
const Kind = enum { contig, splat, any };

fn kindOf(st: i64) Kind {
    return if (st == 1) .contig else if (st == 0) .splat else .any;
}

/// One input of a vector loop: `VL` elements from element `i` on, walking `st` (any sign).
fn Operand(comptime D: Dtype, comptime kind: Kind) type {
    const T = D.Type();
    return struct {
        p: [*]const T,
        st: i64,
        splat: Vec(D),

        inline fn init(p: [*]const T, st: i64) @This() {
            var o: @This() = .{ .p = p, .st = st, .splat = undefined };
            if (kind == .splat or (kind == .any and st == 0)) {
                var one: [VL]T = undefined;
                @memset(&one, p[0]);
                o.splat = vload(D, &one);
            }
            return o;
        }

        inline fn block(o: *const @This(), i: usize) Vec(D) {
            switch (kind) {
                .contig => return vload(D, o.p + i),
                .splat => return o.splat,
                .any => {
                    if (o.st == 1) return vload(D, o.p + i);
                    if (o.st == 0) return o.splat;
                    var buf: [VL]T = undefined;
                    var q = ofs(o.p, @as(i64, @intCast(i)) * o.st);
                    for (&buf) |*e| {
                        e.* = q[0];
                        q = ofs(q, o.st);
                    }
                    return vload(D, &buf);
                },
            }
        }

        /// The last `rem` (< VL) elements from `i`, the other lanes zero.
        inline fn tail(o: *const @This(), i: usize, rem: usize) Vec(D) {
            var buf: [VL]T = std.mem.zeroes([VL]T);
            for (0..rem) |j| buf[j] = ofs(o.p, @as(i64, @intCast(i + j)) * o.st)[0];
            return vload(D, &buf);
        }
    };
}

/// Store a block result (values of dtype Out, or a predicate mask into bool).
pub inline fn storeBlock(comptime Out: Dtype, p: [*]Out.Type(), r: anytype) void {
    if (@TypeOf(r) == Mask) vstoreMask(p, r) else vstore(Out, p, r);
}

/// Outputs at least this large are written with non-temporal (streaming) stores, where the CPU
/// has them: they do not fit in the caches anyway, and streaming skips reading every output
/// line before overwriting it (one third of an add's memory traffic; here, AMD EPYC with a
/// 32 MiB L3, an add of 16M float32 ran 1.5x faster). Smaller outputs stay in the caches for
/// the next op. 16 MiB: half of this machine's L3 (the inputs need room too).
const stream_min_bytes = 16 << 20;
const can_stream = builtin.cpu.arch == .x86_64 and std.Target.x86.featureSetHas(builtin.cpu.features, .avx512f);

/// Whether a kernel writing `node` streams its stores (where the level has them: the kernels
/// test `can_stream`, which a portable build's engine lacks and its AVX-512 object has).
fn streamsOutput(node: *const Node) bool {
    return node.nbytes() >= stream_min_bytes;
}

/// Whether a row's blocks starting at `p` are aligned for streaming stores.
inline fn streamAligned(comptime T: type, p: [*]T) bool {
    return @intFromPtr(p) % @min(64, VL * @sizeOf(T)) == 0;
}

/// storeBlock with non-temporal stores; `p` aligned (streamAligned). The caller fences the row.
inline fn storeBlockStream(comptime Out: Dtype, p: [*]Out.Type(), r: anytype) void {
    const nb = VL * @sizeOf(Out.Type());
    const bytes: @Vector(nb, u8) = if (@TypeOf(r) == Mask) maskBytes(r) else vpack(Out, r);
    const dst: [*]u8 = @ptrCast(p);
    if (nb <= 64) {
        asm volatile ("vmovntdq %[v], (%[p])"
            :
            : [v] "v" (bytes),
              [p] "r" (dst),
            : .{ .memory = true });
        return;
    }
    const arr: [nb]u8 = bytes;
    comptime var k = 0;
    inline while (k < nb) : (k += 64) streamLine(dst + k, arr[k..][0..64].*);
}

/// One 64-byte line to `p` (aligned) with a non-temporal store. The caller fences the row.
inline fn streamLine(p: [*]u8, line: @Vector(64, u8)) void {
    asm volatile ("vmovntdq %[v], (%[p])"
        :
        : [v] "v" (line),
          [p] "r" (p),
        : .{ .memory = true });
}

/// Orders a row's streaming stores before anything that follows (another thread may read them).
inline fn streamFence() void {
    if (can_stream) asm volatile ("sfence" ::: .{ .memory = true });
}

/// Unary ops with a vector kernel (float32 lanes) for float32, float16 and bfloat16.
pub fn unaryHasVec(comptime op: UnaryOp, comptime D: Dtype) bool {
    return switch (D) {
        .float32, .float16, .bfloat16 => switch (op) {
            .abs, .sign, .negative, .trunc, .square, .sqrt, .rsqrt, .reciprocal, .exp, .erf, .sin, .cos, .degrees, .radians, .sigmoid, .floor, .ceil, .round, .isnan, .isinf, .isfinite, .isposinf, .isneginf, .logical_not => true,
            else => unaryVecApprox(op),
        },
        else => false,
    };
}

/// The vector kernels that are not bit-identical to the reference (the C library's float
/// functions, as MLX calls them): ours, each within its error bound stated in scalar_math.zig
/// (tanh 0.66 ulp, the others 0.501 ulp; glibc's are up to 2.2 ulp). They serve every layout
/// outside reference mode, so an op's values do not depend on its input's strides. Not log:
/// its fast path is held bit-identical to the reference by test/elementwise.test.ts, so it
/// stays on the C library's logf (sm.logV(.e, ...) is ready should that rule change).
pub fn unaryVecApprox(comptime op: UnaryOp) bool {
    return switch (op) {
        .tanh, .expm1, .tan, .arcsin, .arccos, .arctan, .sinh, .cosh, .arcsinh, .arccosh, .arctanh, .log2, .log10, .log1p => true,
        else => false,
    };
}

pub fn UnaryVOut(comptime op: UnaryOp) type {
    return switch (unaryKind(op)) {
        .pred, .logical => Mask,
        else => @Vector(VL, f32),
    };
}

/// unaryScalar/predScalar on a block: bit-identical to them (the scalar code's operations in the
/// same order) except for the unaryVecApprox ops.
pub inline fn unaryV(comptime op: UnaryOp, v: @Vector(VL, f32)) UnaryVOut(op) {
    const V = @Vector(VL, f32);
    const zero: V = @splat(0);
    const one: V = @splat(1);
    const inf: V = @splat(std.math.inf(f32));
    return switch (op) {
        .abs => @abs(v),
        .sign => @select(f32, v < zero, -one, @select(f32, v > zero, one, zero)),
        .negative => -v,
        .trunc => @trunc(v),
        .floor => @floor(v),
        .ceil => @ceil(v),
        .round => sm.rintV(VL, v),
        .square => v * v,
        .sqrt => @sqrt(v),
        .rsqrt => one / @sqrt(v),
        .reciprocal => one / v,
        .exp => sm.mlxExpV(VL, v),
        .erf => sm.mlxErfV(VL, v),
        .sin, .cos => blk: {
            if (sm.sinCosVectorOk(VL, v)) break :blk sm.mlxSinCosV(op == .sin, VL, v);
            // NaN or |x| > 2^23 in the block: lane by lane (the scalar handles those through libm).
            const a: [VL]f32 = v;
            var r: [VL]f32 = undefined;
            for (&r, a) |*d, s| d.* = sm.mlxSinCos(op == .sin, s);
            break :blk r;
        },
        .tanh => sm.tanhV(VL, v),
        .expm1 => sm.expm1V(VL, v),
        .tan => sm.tanV(VL, v),
        .arcsin => sm.asinAcosV(true, VL, v),
        .arccos => sm.asinAcosV(false, VL, v),
        .arctan => sm.atanV(VL, v),
        .sinh => sm.sinhCoshV(true, VL, v),
        .cosh => sm.sinhCoshV(false, VL, v),
        .arcsinh => sm.asinhV(VL, v),
        .arccosh => sm.acoshV(VL, v),
        .arctanh => sm.atanhV(VL, v),
        .log2 => sm.logV(.two, VL, v),
        .log10 => sm.logV(.ten, VL, v),
        .log1p => sm.log1pV(VL, v),
        .degrees => v * @as(V, @splat(@as(f32, 180.0 / std.math.pi))),
        .radians => v * @as(V, @splat(@as(f32, std.math.pi / 180.0))),
        .sigmoid => blk: {
            const e = sm.mlxExpV(VL, @abs(v));
            const y = one / (one + e);
            break :blk @select(f32, v < zero, y, one - y);
        },
        .isnan => v != v,
        .isinf => @abs(v) == inf,
        .isfinite => @abs(v) < inf,
        .isposinf => v == inf,
        .isneginf => v == -inf,
        .logical_not => v == zero,
        else => unreachable,
    };
}

/// Binary ops with a vector kernel, bit-identical to binaryScalar/compareScalar.
pub fn binaryHasVec(comptime op: BinaryOp, comptime D: Dtype) bool {
    if (D == .complex64) return false;
    return switch (op) {
        .add, .subtract, .multiply, .maximum, .minimum => D != .bool_,
        .divide, .floor_divide => D.isFloating(),
        .equal, .not_equal, .less, .less_equal, .greater, .greater_equal => true,
        .logical_and, .logical_or, .logical_xor => D == .bool_,
        .bitwise_and, .bitwise_or, .bitwise_xor => D.isInteger() or D == .bool_,
        else => false,
    };
}

pub fn BinaryVOut(comptime op: BinaryOp, comptime D: Dtype) type {
    return switch (op) {
        .equal, .not_equal, .less, .less_equal, .greater, .greater_equal, .logical_and, .logical_or, .logical_xor => Mask,
        else => Vec(D),
    };
}

pub inline fn binaryV(comptime op: BinaryOp, comptime D: Dtype, a: Vec(D), b: Vec(D)) BinaryVOut(op, D) {
    const L = Lane(D);
    const float = comptime D.isFloating();
    const zero: Vec(D) = @splat(0);
    return switch (op) {
        .add => if (float) a + b else a +% b,
        .subtract => if (float) a - b else a -% b,
        .multiply => if (float) a * b else a *% b,
        .divide => a / b,
        .floor_divide => @floor(a / b),
        // MLX's NaN rule (sm.maxFloat): a NaN first operand wins, else the C++ comparison.
        .maximum => if (float) @select(L, (a > b) | (a != a), a, b) else @max(a, b),
        .minimum => if (float) @select(L, (a < b) | (a != a), a, b) else @min(a, b),
        .equal => a == b,
        .not_equal => a != b,
        .less => a < b,
        .less_equal => a <= b,
        .greater => a > b,
        .greater_equal => a >= b,
        .logical_and => (a != zero) & (b != zero),
        .logical_or => (a != zero) | (b != zero),
        .logical_xor => (a != zero) != (b != zero),
        .bitwise_and => a & b,
        .bitwise_or => a | b,
        .bitwise_xor => a ^ b,
        else => unreachable,
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

/// The unary op over n contiguous elements (a fused program's block) by the op's own kernel,
/// from the CPU level's object in a portable build (a dispatched combination).
pub fn unaryBlockDispatched(comptime op: UnaryOp, comptime D: Dtype, out: [*]u8, in: [*]const u8, n: usize) void {
    runUnary(op, D, out, in, &Layout.contiguous(2, n), false, false);
}

fn unaryTyped(comptime op: UnaryOp, comptime D: Dtype, node: *Node, x: *Node, l: *const Layout) errors.Error!void {
    // Combinations the dtype rules reject never reach a kernel; skip instantiating them.
    if (comptime !unaryValid(op, D)) unreachable;
    runUnary(op, D, node.data(), x.data(), l, streamsOutput(node), primitives.reference_mode);
}

/// The unary kernel over `l`: from the CPU level's object in a portable build when the
/// combination is dispatched, else the engine's own.
fn runUnary(comptime op: UnaryOp, comptime D: Dtype, out: [*]u8, in: [*]const u8, l: *const Layout, stream: bool, ref: bool) void {
    const K = UnaryKernel(op, D);
    const ctx = K.Ctx{ .out = @ptrCast(@alignCast(out)), .in = @ptrCast(@alignCast(in)), .stream = stream, .ref = ref };
    if (comptime cpu.dispatch and unaryDispatched(op, D)) {
        cpu.pick(K.Fn, comptime unaryEntryName(op, D))(&ctx, l);
    } else K.call(&ctx, l);
}

fn unaryValid(comptime op: UnaryOp, comptime D: Dtype) bool {
    return switch (unaryKind(op)) {
        .bits => D.isInteger() or D == .bool_,
        .float => D != .complex64 or switch (op) {
            .expm1, .erf, .erfinv, .sigmoid => false,
            else => true,
        },
        else => switch (op) {
            .trunc, .floor, .ceil => D != .complex64,
            .negative => D != .bool_,
            else => true,
        },
    };
}

/// The unary kernels a portable build runs from the kernel object of the CPU's level
/// (engine/cpu.zig, engine/kernels.zig): those with a vector kernel. The others (C library
/// calls, integer and complex dtypes) gain little from wider vectors and stay in the engine.
pub fn unaryDispatched(comptime op: UnaryOp, comptime D: Dtype) bool {
    return unaryValid(op, D) and unaryHasVec(op, D);
}

pub fn unaryEntryName(comptime op: UnaryOp, comptime D: Dtype) []const u8 {
    return "unary_" ++ @tagName(op) ++ "_" ++ @tagName(D);
}

/// The unary kernel of `op` over dtype D: its context crosses the kernel objects' C ABI.
pub fn UnaryKernel(comptime op: UnaryOp, comptime D: Dtype) type {
    const kind = comptime unaryKind(op);
    const Out: Dtype = comptime switch (kind) {
        .same => if (op == .abs and D == .complex64) .float32 else D,
        .float => if (D.isInexact()) D else .float32,
        .pred, .logical => .bool_,
        .part => if (D == .complex64) .float32 else D,
        .bits => D,
    };
    const KCtx = extern struct {
        out: [*]Out.Type(),
        in: [*]const D.Type(),
        /// Large output: streaming stores where the level has them.
        stream: bool,
        /// primitives.reference_mode (the scalar loops only).
        ref: bool,
        pub const sizes = [max_ops]usize{ @sizeOf(Out.Type()), @sizeOf(D.Type()), 0, 0 };
        fn bases(c: *const @This()) [max_ops]usize {
            return .{ @intFromPtr(c.out), @intFromPtr(c.in), 0, 0 };
        }
        /// The op over `n` elements from the addresses `p` (output, input), strides `st`.
        fn row(c: *const @This(), p: *const [max_ops]usize, st: *const [max_ops]i64, n: usize) void {
            const o: [*]Out.Type() = @ptrFromInt(p[0]);
            const src: [*]const D.Type() = @ptrFromInt(p[1]);
            if (!c.ref and st[0] == 1) {
                // Rows shorter than a block take the scalar loop when it gives the same bits.
                if (comptime unaryHasVec(op, D)) if (n >= VL or comptime unaryVecApprox(op)) {
                    if (st[1] == 1) c.vecRow(.contig, o, src, st[1], n) else c.vecRow(.any, o, src, st[1], n);
                    return;
                };
                if (st[1] == 1) {
                    // Contiguous: a plain loop the compiler vectorises where the op allows.
                    for (0..n) |i| o[i] = apply(src[i]);
                    return;
                }
            }
            // The reference loop (also every layout of the ops without a fast path).
            var po: i64 = 0;
            var pi: i64 = 0;
            for (0..n) |_| {
                ofs(o, po)[0] = apply(ofs(src, pi)[0]);
                po += st[0];
                pi += st[1];
            }
        }
        fn vecRow(c: *const @This(), comptime k: Kind, o: [*]Out.Type(), src: [*]const D.Type(), st: i64, n: usize) void {
            const a = Operand(D, k).init(src, st);
            var i: usize = 0;
            if (can_stream and c.stream and streamAligned(Out.Type(), o)) {
                while (i + VL <= n) : (i += VL) storeBlockStream(Out, o + i, unaryV(op, a.block(i)));
            }
            while (i + VL <= n) : (i += VL) storeBlock(Out, o + i, unaryV(op, a.block(i)));
            if (i < n) {
                var buf: [VL]Out.Type() = undefined;
                storeBlock(Out, &buf, unaryV(op, a.tail(i, n - i)));
                @memcpy(o[i..n], buf[0 .. n - i]);
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
    return struct {
        pub const Ctx = KCtx;
        pub const Fn = fn (*const Ctx, *const Layout) callconv(.c) void;
        pub fn call(ctx: *const Ctx, l: *const Layout) callconv(.c) void {
            Kernel(Ctx).run(ctx, l, if (comptime unaryCheap(op, D)) grain_cheap else grain);
        }
    };
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

pub fn binaryValid(comptime op: BinaryOp, comptime D: Dtype) bool {
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

/// The binary op over n contiguous elements (a fused program's block) by the op's own kernel,
/// from the CPU level's object in a portable build (a dispatched combination; never a shift).
pub fn binaryBlockDispatched(comptime op: BinaryOp, comptime D: Dtype, out: [*]u8, x: [*]const u8, y: [*]const u8, n: usize) void {
    runBinary(op, D, out, x, y, &Layout.contiguous(3, n), false, false, 0);
}

fn binaryTyped(comptime op: BinaryOp, comptime D: Dtype, node: *Node, a: *Node, b: *Node, l: *const Layout) errors.Error!void {
    if (comptime !binaryValid(op, D)) unreachable;
    var sat_end: usize = 0;
    if (BinaryKernel(op, D).shift and D.isInteger() and b.size() == 1 and l.ndim == 1 and l.strides[0][0] == 1 and l.strides[1][0] == 1) {
        const lanes = 16 / @sizeOf(D.Type());
        const total = node.size();
        sat_end = total - total % lanes;
    }
    runBinary(op, D, node.data(), a.data(), b.data(), l, streamsOutput(node), primitives.reference_mode, sat_end);
}

/// The binary kernel over `l` (as runUnary); `sat_end` as its context's.
fn runBinary(comptime op: BinaryOp, comptime D: Dtype, out: [*]u8, a: [*]const u8, b: [*]const u8, l: *const Layout, stream: bool, ref: bool, sat_end: usize) void {
    const K = BinaryKernel(op, D);
    const ctx = K.Ctx{ .out = @ptrCast(@alignCast(out)), .a = @ptrCast(@alignCast(a)), .b = @ptrCast(@alignCast(b)), .sat_end = sat_end, .stream = stream, .ref = ref };
    if (comptime cpu.dispatch and binaryDispatched(op, D)) {
        cpu.pick(K.Fn, comptime binaryEntryName(op, D))(&ctx, l);
    } else K.call(&ctx, l);
}

/// The binary kernels a portable build runs from the CPU level's kernel object: those with a
/// vector kernel (as unaryDispatched).
pub fn binaryDispatched(comptime op: BinaryOp, comptime D: Dtype) bool {
    return binaryValid(op, D) and binaryHasVec(op, D);
}

pub fn binaryEntryName(comptime op: BinaryOp, comptime D: Dtype) []const u8 {
    return "binary_" ++ @tagName(op) ++ "_" ++ @tagName(D);
}

/// The binary kernel of `op` over dtype D (its context crosses the kernel objects' C ABI).
pub fn BinaryKernel(comptime op: BinaryOp, comptime D: Dtype) type {
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
    const KCtx = extern struct {
        out: [*]Out.Type(),
        a: [*]const D.Type(),
        b: [*]const D.Type(),
        /// Shifts by one count over a contiguous array: elements below this flat index
        /// saturate (MLX's vector body), the rest wrap the count (its scalar tail).
        sat_end: usize = 0,
        stream: bool,
        ref: bool,
        pub const sizes = [max_ops]usize{ @sizeOf(Out.Type()), @sizeOf(D.Type()), @sizeOf(D.Type()), 0 };
        fn bases(c: *const @This()) [max_ops]usize {
            return .{ @intFromPtr(c.out), @intFromPtr(c.a), @intFromPtr(c.b), 0 };
        }
        /// The op over `n` elements from the addresses `p` (output, a, b), strides `st`.
        fn row(c: *const @This(), p: *const [max_ops]usize, st: *const [max_ops]i64, n: usize) void {
            const o: [*]Out.Type() = @ptrFromInt(p[0]);
            const x: [*]const D.Type() = @ptrFromInt(p[1]);
            const y: [*]const D.Type() = @ptrFromInt(p[2]);
            if (is_shift and c.sat_end > 0) {
                // One contiguous row (a by stride 1, the count by stride 0); the output's offset
                // is its flat index (outputs are fresh row-major arrays: never negative).
                const k0: usize = (p[0] - @intFromPtr(c.out)) / @sizeOf(Out.Type());
                for (0..n) |i| {
                    o[i] = if (k0 + i < c.sat_end) shiftSaturating(op, D.Type(), x[i], y[0]) else apply(x[i], y[0]);
                }
                return;
            }
            if (!c.ref and st[0] == 1) {
                if (comptime binaryHasVec(op, D)) if (n >= VL) {
                    const ka = kindOf(st[1]);
                    const kb = kindOf(st[2]);
                    if (ka == .contig and kb == .contig) {
                        c.vecRow(.contig, .contig, o, x, y, st, n);
                    } else if (ka == .contig and kb == .splat) {
                        c.vecRow(.contig, .splat, o, x, y, st, n);
                    } else if (ka == .splat and kb == .contig) {
                        c.vecRow(.splat, .contig, o, x, y, st, n);
                    } else c.vecRow(.any, .any, o, x, y, st, n);
                    return;
                };
                if (st[1] == 1 and st[2] == 1) {
                    // Contiguous: a plain loop the compiler vectorises.
                    for (0..n) |i| o[i] = apply(x[i], y[i]);
                    return;
                }
                // One operand is a scalar along the row (stride 0): hoist it, keep the loop simple.
                if (st[1] == 1 and st[2] == 0) {
                    const yv = y[0];
                    for (0..n) |i| o[i] = apply(x[i], yv);
                    return;
                }
                if (st[1] == 0 and st[2] == 1) {
                    const xv = x[0];
                    for (0..n) |i| o[i] = apply(xv, y[i]);
                    return;
                }
            }
            // The reference loop (also every other layout of the ops without a vector kernel).
            var po: i64 = 0;
            var pa: i64 = 0;
            var pb: i64 = 0;
            for (0..n) |_| {
                ofs(o, po)[0] = apply(ofs(x, pa)[0], ofs(y, pb)[0]);
                po += st[0];
                pa += st[1];
                pb += st[2];
            }
        }
        fn vecRow(c: *const @This(), comptime ka: Kind, comptime kb: Kind, o: [*]Out.Type(), x: [*]const D.Type(), y: [*]const D.Type(), st: *const [max_ops]i64, n: usize) void {
            const va = Operand(D, ka).init(x, st[1]);
            const vb = Operand(D, kb).init(y, st[2]);
            var i: usize = 0;
            if (can_stream and c.stream and streamAligned(Out.Type(), o)) {
                while (i + VL <= n) : (i += VL) storeBlockStream(Out, o + i, binaryV(op, D, va.block(i), vb.block(i)));
            }
            while (i + VL <= n) : (i += VL) storeBlock(Out, o + i, binaryV(op, D, va.block(i), vb.block(i)));
            if (i < n) {
                var buf: [VL]Out.Type() = undefined;
                storeBlock(Out, &buf, binaryV(op, D, va.tail(i, n - i), vb.tail(i, n - i)));
                @memcpy(o[i..n], buf[0 .. n - i]);
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
    return struct {
        pub const Ctx = KCtx;
        pub const shift = is_shift;
        pub const Fn = fn (*const Ctx, *const Layout) callconv(.c) void;
        pub fn call(ctx: *const Ctx, l: *const Layout) callconv(.c) void {
            Kernel(Ctx).run(ctx, l, if (comptime binaryCheap(op, D)) grain_cheap else grain);
        }
    };
}

fn evalSelect(node: *Node) errors.Error!void {
    const c = node.inputs[0];
    const x = node.inputs[1];
    const y = node.inputs[2];
    try primitives.allocOutput(node, donorFor(node, &.{ x, y }));
    if (node.size() == 0) return;
    const l = Layout.init(node, &.{ c, x, y });
    switch (node.dtype.size()) {
        // Selection moves bits: every dtype is an unsigned integer lane of its size.
        inline 1, 2, 4, 8 => |size| {
            const B: Dtype = comptime switch (size) {
                1 => .uint8,
                2 => .uint16,
                4 => .uint32,
                else => .uint64,
            };
            const K = SelectKernel(B);
            const ctx = K.Ctx{ .out = @ptrCast(@alignCast(node.data())), .c = @ptrCast(c.data()), .x = @ptrCast(@alignCast(x.data())), .y = @ptrCast(@alignCast(y.data())), .stream = streamsOutput(node), .ref = primitives.reference_mode };
            if (comptime cpu.dispatch) {
                cpu.pick(K.Fn, comptime selectEntryName(B))(&ctx, &l);
            } else K.call(&ctx, &l);
        },
        else => unreachable,
    }
}

pub fn selectEntryName(comptime B: Dtype) []const u8 {
    return "select_" ++ @tagName(B);
}

/// where() over elements of B's size (an unsigned integer dtype), every level's kernel object.
pub fn SelectKernel(comptime B: Dtype) type {
    const Bits = B.Type();
    const KCtx = extern struct {
        out: [*]Bits,
        c: [*]const u8,
        x: [*]const Bits,
        y: [*]const Bits,
        stream: bool,
        ref: bool,
        pub const sizes = [max_ops]usize{ @sizeOf(Bits), 1, @sizeOf(Bits), @sizeOf(Bits) };
        fn bases(k: *const @This()) [max_ops]usize {
            return .{ @intFromPtr(k.out), @intFromPtr(k.c), @intFromPtr(k.x), @intFromPtr(k.y) };
        }
        /// where() over `n` elements from the addresses `p` (output, condition, x, y), strides `st`.
        fn row(k: *const @This(), p: *const [max_ops]usize, st: *const [max_ops]i64, n: usize) void {
            const o: [*]Bits = @ptrFromInt(p[0]);
            const cc: [*]const u8 = @ptrFromInt(p[1]);
            const xx: [*]const Bits = @ptrFromInt(p[2]);
            const yy: [*]const Bits = @ptrFromInt(p[3]);
            if (!k.ref and st[0] == 1 and n >= VL) {
                if (st[1] == 1 and st[2] == 1 and st[3] == 1) k.vecRow(.contig, o, cc, xx, yy, st, n) else k.vecRow(.any, o, cc, xx, yy, st, n);
                return;
            }
            var po: i64 = 0;
            var pc: i64 = 0;
            var px: i64 = 0;
            var py: i64 = 0;
            for (0..n) |_| {
                ofs(o, po)[0] = if (ofs(cc, pc)[0] != 0) ofs(xx, px)[0] else ofs(yy, py)[0];
                po += st[0];
                pc += st[1];
                px += st[2];
                py += st[3];
            }
        }
        fn vecRow(k: *const @This(), comptime kd: Kind, o: [*]Bits, cc: [*]const u8, xx: [*]const Bits, yy: [*]const Bits, st: *const [max_ops]i64, n: usize) void {
            const vc = Operand(.uint8, kd).init(cc, st[1]);
            const vx = Operand(B, kd).init(xx, st[2]);
            const vy = Operand(B, kd).init(yy, st[3]);
            const zero: @Vector(VL, u8) = @splat(0);
            var i: usize = 0;
            if (can_stream and k.stream and streamAligned(Bits, o)) {
                while (i + VL <= n) : (i += VL) storeBlockStream(B, o + i, @select(Bits, vc.block(i) != zero, vx.block(i), vy.block(i)));
            }
            while (i + VL <= n) : (i += VL) vstore(B, o + i, @select(Bits, vc.block(i) != zero, vx.block(i), vy.block(i)));
            if (i < n) {
                const r = n - i;
                var buf: [VL]Bits = undefined;
                vstore(B, &buf, @select(Bits, vc.tail(i, r) != zero, vx.tail(i, r), vy.tail(i, r)));
                @memcpy(o[i..n], buf[0..r]);
            }
        }
    };
    return struct {
        pub const Ctx = KCtx;
        pub const Fn = fn (*const Ctx, *const Layout) callconv(.c) void;
        pub fn call(ctx: *const Ctx, l: *const Layout) callconv(.c) void {
            Kernel(Ctx).run(ctx, l, grain_cheap);
        }
    };
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

// ---------------------------------------------------------------------------------------------
// Tests

const testing = std.testing;

fn testShape(dims: []const i32) Shape {
    var shape = Shape{ .ndim = @intCast(dims.len) };
    for (dims, 0..) |d, i| shape.dims[i] = d;
    return shape;
}

/// An evaluated row-major array of `dims` holding `f(i)` (converted to D) at flat index i.
fn testArray(comptime D: Dtype, dims: []const i32, comptime f: fn (usize) f32) !*Node {
    const x = try array.createWithBuffer(D, testShape(dims), 0, "test");
    const p: [*]D.Type() = @ptrCast(@alignCast(x.data()));
    for (0..x.size()) |i| p[i] = convert.cast(.float32, D, f(i));
    return x;
}

const test_views = @import("../test_views.zig");

/// x with the axes flagged in `flip` reversed (see test_views.flippedView).
fn flippedView(x: *Node, flip: []const bool) !*Node {
    return test_views.flippedView(x, test_views.mask(flip));
}

/// The elements of `v` (any strides) copied into a fresh row-major array.
fn contiguousCopy(v: *Node) !*Node {
    const c = try array.createWithBuffer(v.dtype, v.shape, 0, "test");
    convert.copyConvert(v, c.data(), v.dtype);
    return c;
}

fn runNode(n: *Node) !void {
    try eval(n, n.prim.elementwise);
}

fn outBytes(n: *const Node) []const u8 {
    return n.data()[0..n.nbytes()];
}

fn vals1(i: usize) f32 {
    // Mixed signs and magnitudes, a NaN, a -0 and an infinity among them.
    if (i == 5) return std.math.nan(f32);
    if (i == 9) return -0.0;
    if (i == 40) return -std.math.inf(f32);
    const k: f32 = @floatFromInt((i * 37) % 101);
    return (k - 50.0) * 0.0625;
}

fn vals2(i: usize) f32 {
    const k: f32 = @floatFromInt((i * 53) % 89);
    return (k - 44.0) * 0.125;
}

const flip_sets = [_][2]bool{ .{ true, true }, .{ false, true }, .{ true, false } };

/// Unary `op` on every flipped view of a [3, 37] (rows longer than a vector block, with a tail)
/// array of dtype D equals `op` on the same values made contiguous, with the fast paths and in
/// reference mode; returns the fully reversed view's result for spot checks.
fn checkUnaryFlips(comptime D: Dtype, op: UnaryOp) !void {
    const x = try testArray(D, &.{ 3, 37 }, vals1);
    defer array.release(x);
    for ([_]bool{ false, true }) |ref| {
        primitives.reference_mode = ref;
        defer primitives.reference_mode = false;
        for (flip_sets) |fl| {
            const v = try flippedView(x, &fl);
            defer array.release(v);
            const c = try contiguousCopy(v);
            defer array.release(c);
            const rv = try unary(op, v, 0);
            defer array.release(rv);
            const rc = try unary(op, c, 0);
            defer array.release(rc);
            try runNode(rv);
            try runNode(rc);
            try testing.expectEqualSlices(u8, outBytes(rc), outBytes(rv));
        }
    }
}

/// Tests: a portable build runs the kernel tests at every level this CPU has (engine/cpu.zig);
/// the caller restores the level with `defer restoreLevel(saved)`.
fn forceTestLevel(li: usize) void {
    if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
}

fn restoreLevel(l: cpu.Level) void {
    if (cpu.dispatch) cpu.forceLevel(l);
}

test "unary kernels read negative-stride views (both axes, the inner axis, the outer axis)" {
    const saved = cpu.level();
    defer restoreLevel(saved);
    for (0..cpu.testLevelCount()) |li| {
        forceTestLevel(li);
        inline for (.{ Dtype.float32, Dtype.float16, Dtype.bfloat16 }) |D| {
            for ([_]UnaryOp{ .negative, .abs, .exp, .tanh, .sin, .sigmoid, .round, .isnan, .logical_not, .log, .arctan }) |op| {
                try checkUnaryFlips(D, op);
            }
        }
        inline for (.{ Dtype.int32, Dtype.float64, Dtype.uint8 }) |D| {
            for ([_]UnaryOp{ .negative, .abs, .square, .exp, .isfinite }) |op| try checkUnaryFlips(D, op);
        }
    }
    // Spot values: negative of the fully reversed [3, 37] view is -x read backwards.
    const x = try testArray(.float32, &.{ 3, 37 }, vals1);
    defer array.release(x);
    const v = try flippedView(x, &.{ true, true });
    defer array.release(v);
    const r = try unary(.negative, v, 0);
    defer array.release(r);
    try runNode(r);
    const got: [*]const f32 = @ptrCast(@alignCast(r.data()));
    for (0..111) |i| {
        const want = -vals1(110 - i);
        if (std.math.isNan(want)) try testing.expect(std.math.isNan(got[i])) else try testing.expectEqual(want, got[i]);
    }
}

test "a long negative-stride row split over the thread pool" {
    // 1-d, more than two grains: the kernel cuts the one row into segments whose offsets are
    // negative from the view's first element. Compute-heavy ops split from 2 grains, memory-bound
    // ones from 2 grain_cheap.
    const saved = cpu.level();
    defer restoreLevel(saved);
    for (0..cpu.testLevelCount()) |li| inline for (.{ 3 * grain + 5, 2 * grain_cheap + 21 }) |n| {
        forceTestLevel(li);
        const x = try testArray(.float32, &.{n}, vals2);
        defer array.release(x);
        const v = try flippedView(x, &.{true});
        defer array.release(v);
        for ([_]bool{ false, true }) |ref| {
            primitives.reference_mode = ref;
            defer primitives.reference_mode = false;
            const r = try unary(if (n < grain_cheap) .exp else .square, v, 0);
            defer array.release(r);
            try runNode(r);
            const got: [*]const f32 = @ptrCast(@alignCast(r.data()));
            for (0..n) |i| {
                const e = vals2(n - 1 - i);
                try testing.expectEqual(if (n < grain_cheap) sm.mlxExp(e) else e * e, got[i]);
            }
            const s = try binary(if (n < grain_cheap) .logaddexp else .add, v, x, 0);
            defer array.release(s);
            try runNode(s);
            const sg: [*]const f32 = @ptrCast(@alignCast(s.data()));
            for (0..n) |i| {
                const p = vals2(n - 1 - i);
                const q = vals2(i);
                try testing.expectEqual(if (n < grain_cheap) sm.logaddexp(f32, p, q) else p + q, sg[i]);
            }
        }
    };
}

/// Binary `op` with either or both operands negative-stride views (and a broadcast operand)
/// equals `op` on contiguous copies, with the fast paths and in reference mode.
fn checkBinaryFlips(comptime D: Dtype, op: BinaryOp) !void {
    const a = try testArray(D, &.{ 3, 37 }, vals1);
    defer array.release(a);
    const b = try testArray(D, &.{ 3, 37 }, vals2);
    defer array.release(b);
    const row = try testArray(D, &.{37}, vals2); // broadcast along axis 0
    defer array.release(row);
    for ([_]bool{ false, true }) |ref| {
        primitives.reference_mode = ref;
        defer primitives.reference_mode = false;
        for (flip_sets) |fl| {
            const av = try flippedView(a, &fl);
            defer array.release(av);
            const bv = try flippedView(b, &fl);
            defer array.release(bv);
            const rowv = try flippedView(row, &.{fl[1]});
            defer array.release(rowv);
            const ac = try contiguousCopy(av);
            defer array.release(ac);
            const bc = try contiguousCopy(bv);
            defer array.release(bc);
            const rowc = try contiguousCopy(rowv);
            defer array.release(rowc);
            const pairs = [_][4]*Node{
                .{ av, b, ac, b }, // left operand reversed
                .{ a, bv, a, bc }, // right operand reversed
                .{ av, bv, ac, bc }, // both
                .{ av, rowv, ac, rowc }, // reversed, with a reversed broadcast row
                .{ rowv, bv, rowc, bc },
            };
            for (pairs) |p| {
                const rv = try binary(op, p[0], p[1], 0);
                defer array.release(rv);
                const rc = try binary(op, p[2], p[3], 0);
                defer array.release(rc);
                try runNode(rv);
                try runNode(rc);
                try testing.expectEqualSlices(u8, outBytes(rc), outBytes(rv));
            }
        }
    }
}

test "binary kernels read negative-stride views on either side" {
    const saved = cpu.level();
    defer restoreLevel(saved);
    for (0..cpu.testLevelCount()) |li| {
        forceTestLevel(li);
        inline for (.{ Dtype.float32, Dtype.float16, Dtype.bfloat16, Dtype.float64 }) |D| {
            for ([_]BinaryOp{ .add, .multiply, .divide, .maximum, .minimum, .less, .equal, .power, .arctan2 }) |op| {
                try checkBinaryFlips(D, op);
            }
        }
        inline for (.{ Dtype.int32, Dtype.int8, Dtype.uint16 }) |D| {
            for ([_]BinaryOp{ .add, .subtract, .maximum, .greater_equal, .bitwise_xor, .left_shift, .floor_divide }) |op| {
                try checkBinaryFlips(D, op);
            }
        }
    }
    // Spot values: maximum of a reversed view and the array itself.
    const a = try testArray(.float32, &.{ 3, 37 }, vals2);
    defer array.release(a);
    const av = try flippedView(a, &.{ true, true });
    defer array.release(av);
    const m = try binary(.maximum, av, a, 0);
    defer array.release(m);
    try runNode(m);
    const got: [*]const f32 = @ptrCast(@alignCast(m.data()));
    for (0..111) |i| try testing.expectEqual(@max(vals2(110 - i), vals2(i)), got[i]);
}

test "where reads negative-stride condition and operands" {
    inline for (.{ Dtype.float32, Dtype.float16, Dtype.int64, Dtype.bool_ }) |D| {
        const x = try testArray(D, &.{ 3, 37 }, vals1);
        defer array.release(x);
        const y = try testArray(D, &.{ 3, 37 }, vals2);
        defer array.release(y);
        const cond = try testArray(.bool_, &.{ 3, 37 }, struct {
            fn f(i: usize) f32 {
                return if ((i * 7) % 5 < 2) 1 else 0;
            }
        }.f);
        defer array.release(cond);
        for ([_]bool{ false, true }) |ref| {
            primitives.reference_mode = ref;
            defer primitives.reference_mode = false;
            for (flip_sets) |fl| {
                const cv = try flippedView(cond, &fl);
                defer array.release(cv);
                const xv = try flippedView(x, &fl);
                defer array.release(xv);
                const cc = try contiguousCopy(cv);
                defer array.release(cc);
                const xc = try contiguousCopy(xv);
                defer array.release(xc);
                const rv = try select(cv, xv, y, 0);
                defer array.release(rv);
                const rc = try select(cc, xc, y, 0);
                defer array.release(rc);
                try runNode(rv);
                try runNode(rc);
                try testing.expectEqualSlices(u8, outBytes(rc), outBytes(rv));
            }
        }
    }
    // Spot values: where(reversed cond, reversed x, y) picks x backwards.
    const x = try testArray(.float32, &.{16 * 3 + 1}, vals2);
    defer array.release(x);
    const y = try testArray(.float32, &.{16 * 3 + 1}, vals1);
    defer array.release(y);
    const cond = try testArray(.bool_, &.{16 * 3 + 1}, struct {
        fn f(i: usize) f32 {
            return if (i % 3 == 0) 1 else 0;
        }
    }.f);
    defer array.release(cond);
    const cv = try flippedView(cond, &.{true});
    defer array.release(cv);
    const xv = try flippedView(x, &.{true});
    defer array.release(xv);
    const r = try select(cv, xv, y, 0);
    defer array.release(r);
    try runNode(r);
    const got: [*]const f32 = @ptrCast(@alignCast(r.data()));
    const n = 16 * 3 + 1;
    for (0..n) |i| {
        const want = if ((n - 1 - i) % 3 == 0) vals2(n - 1 - i) else vals1(i);
        if (std.math.isNan(want)) try testing.expect(std.math.isNan(got[i])) else try testing.expectEqual(want, got[i]);
    }
}

test "gatherTile: a transposed tile in vector blocks and element by element, every element size" {
    inline for (.{ u8, u16, u32, u64 }) |U| {
        // The source: 70 columns of 90 elements each (column j at j * 97: s1 = 97, s2 = 1), and
        // the same read with s2 = 2 (element by element).
        var src: [97 * 70 + 200]U = undefined;
        for (&src, 0..) |*e, i| e.* = @truncate(i *% 2654435761);
        var dst: [64 * tile_cols]U = undefined;
        for ([_]i64{ 1, 2 }) |s2| for ([_][2]usize{ .{ 64, 64 }, .{ 33, 47 }, .{ 16, 16 }, .{ 5, 64 }, .{ 64, 3 } }) |sz| {
            const nr = if (s2 == 2) @min(sz[0], 48) else sz[0];
            @memset(&dst, 0);
            gatherTile(U, &src, 97, s2, nr, sz[1], &dst);
            for (0..nr) |i| for (0..sz[1]) |j| {
                try std.testing.expectEqual(src[j * 97 + i * @as(usize, @intCast(s2))], dst[i * tile_cols + j]);
            };
        };
    }
}
