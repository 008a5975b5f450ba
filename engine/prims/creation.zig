//! Creation: arange, linspace, eye, tri and the tril/triu mask. (zeros, ones and full are a
//! scalar broadcast, built in the ABI layer from astype and broadcast, as MLX builds them.)
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const half = @import("../half.zig");
const primitives = @import("../primitives.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;

pub const Arange = struct { start: f64, step: f64 };
pub const Linspace = struct { start: f64, stop: f64 };
pub const Eye = struct { k: i32 };
pub const Tri = struct { k: i32 };
pub const TriMask = struct { k: i32, upper: bool };

fn shape1(n: i32) Shape {
    var s = Shape{ .ndim = 1 };
    s.dims[0] = n;
    return s;
}

fn shape2(n: i32, m: i32) Shape {
    var s = Shape{ .ndim = 2 };
    s.dims[0] = n;
    s.dims[1] = m;
    return s;
}

pub fn arange(start: f64, stop: f64, step: f64, dtype: Dtype, stream: u32) errors.Error!*Node {
    if (dtype == .bool_) return errors.fail(.invalid_argument, "[arange] bool not supported for arange.", .{});
    if (std.math.isNan(start) or std.math.isNan(stop) or std.math.isNan(step))
        return errors.fail(.invalid_argument, "[arange] Cannot compute length.", .{});
    if (step == 0) return errors.fail(.invalid_argument, "[arange] step must be nonzero.", .{});
    if (std.math.isInf(start) or std.math.isInf(stop)) return errors.fail(.invalid_argument, "[arange] Cannot compute length.", .{});
    // As MLX: an infinite step towards stop gives just `start` (the division below would give 0).
    if (std.math.isInf(step) and ((step > 0 and start < stop) or (step < 0 and start > stop)))
        return array.create(dtype, shape1(1), .{ .arange = .{ .start = start, .step = step } }, &.{}, stream);
    const real_size = @ceil((stop - start) / step);
    if (std.math.isNan(real_size)) return errors.fail(.invalid_argument, "[arange] Cannot compute length.", .{});
    if (real_size > std.math.maxInt(i32)) return errors.fail(.invalid_argument, "[arange] Maximum size exceeded.", .{});
    const n: i32 = if (real_size > 0) @intFromFloat(real_size) else 0;
    return array.create(dtype, shape1(n), .{ .arange = .{ .start = start, .step = step } }, &.{}, stream);
}

/// As MLX: the first value is `start` in the dtype, and each next one adds the dtype's
/// rounding of `(start + step) - start`, so results match MLX bit for bit.
pub fn evalArange(node: *Node, p: Arange) errors.Error!void {
    try primitives.allocOutput(node, null);
    const n = node.size();
    switch (node.dtype) {
        .bool_ => unreachable,
        .complex64 => {
            // MLX accumulates in complex64: the real part as float32, the imaginary part stays 0.
            const out: [*]dtype_mod.Complex64 = @ptrCast(@alignCast(node.data()));
            var value: f32 = @floatCast(p.start);
            const next: f32 = @floatCast(p.start + p.step);
            const step = next - value;
            for (0..n) |i| {
                out[i] = .{ .re = value, .im = 0 };
                value += step;
            }
        },
        inline .float16, .bfloat16 => |D| {
            const out: [*]D.Type() = @ptrCast(@alignCast(node.data()));
            const round = if (D == .float16) half.f32ToF16 else half.f32ToBf16;
            const widen = if (D == .float16) half.f16ToF32 else half.bf16ToF32;
            var value = convert.cast(.float64, D, p.start);
            const next = convert.cast(.float64, D, p.start + p.step);
            const step = round(widen(next.bits) - widen(value.bits));
            for (0..n) |i| {
                out[i] = value;
                value.bits = round(widen(value.bits) + widen(step));
            }
        },
        inline else => |D| {
            const T = D.Type();
            const out: [*]T = @ptrCast(@alignCast(node.data()));
            var value = convert.cast(.float64, D, p.start);
            const next = convert.cast(.float64, D, p.start + p.step);
            const is_int = comptime D.isInteger();
            const step: T = if (is_int) next -% value else next - value;
            for (0..n) |i| {
                out[i] = value;
                value = if (is_int) value +% step else value + step;
            }
        },
    }
}

pub fn linspace(start: f64, stop: f64, num: i32, dtype: Dtype, stream: u32) errors.Error!*Node {
    if (num < 0) return errors.fail(.invalid_argument, "[linspace] number of samples, {d}, must be non-negative.", .{num});
    return array.create(dtype, shape1(num), .{ .linspace = .{ .start = start, .stop = stop } }, &.{}, stream);
}

/// As MLX composes it: t = i / (num - 1) and (1 - t) * start + t * stop, in float64 for a
/// float64 result and in float32 otherwise, then converted to the dtype; one sample is just
/// `start` as float32 (for every dtype, float64 included).
pub fn evalLinspace(node: *Node, p: Linspace) errors.Error!void {
    try primitives.allocOutput(node, null);
    const n = node.size();
    switch (node.dtype) {
        inline else => |D| {
            const F = if (D == .float64) f64 else f32;
            const S: Dtype = if (D == .float64) .float64 else .float32;
            const start: F = @floatCast(p.start);
            const stop: F = @floatCast(p.stop);
            const denom: F = @floatFromInt(@max(n, 2) - 1);
            const out: [*]D.Type() = @ptrCast(@alignCast(node.data()));
            if (n == 1) {
                out[0] = convert.cast(.float32, D, @as(f32, @floatCast(p.start)));
                return;
            }
            for (0..n) |i| {
                const t = @as(F, @floatFromInt(i)) / denom;
                const a = (1 - t) * start;
                const b = t * stop;
                out[i] = convert.cast(S, D, a + b);
            }
        },
    }
}

pub fn eye(n: i32, m: i32, k: i32, dtype: Dtype, stream: u32) errors.Error!*Node {
    if (n < 0 or m < 0) return errors.fail(.invalid_argument, "[eye] N and M must be positive integers.", .{});
    return array.create(dtype, shape2(n, m), .{ .eye = .{ .k = k } }, &.{}, stream);
}

pub fn evalEye(node: *Node, p: Eye) errors.Error!void {
    try fill2d(node, p.k, .eye);
}

pub fn tri(n: i32, m: i32, k: i32, dtype: Dtype, stream: u32) errors.Error!*Node {
    // MLX builds tri from aranges: a negative size simply gives an empty array.
    return array.create(dtype, shape2(@max(n, 0), @max(m, 0)), .{ .tri = .{ .k = k } }, &.{}, stream);
}

pub fn evalTri(node: *Node, p: Tri) errors.Error!void {
    try fill2d(node, p.k, .tri);
}

fn fill2d(node: *Node, k: i32, comptime kind: enum { eye, tri }) errors.Error!void {
    try primitives.allocOutput(node, null);
    const rows: usize = @intCast(node.shape.dims[0]);
    const cols: usize = @intCast(node.shape.dims[1]);
    switch (node.dtype) {
        inline else => |D| {
            const out: [*]D.Type() = @ptrCast(@alignCast(node.data()));
            const one = convert.cast(.int32, D, 1);
            const zero = convert.cast(.int32, D, 0);
            for (0..rows) |i| {
                for (0..cols) |j| {
                    const d = @as(i64, @intCast(j)) - @as(i64, @intCast(i));
                    const on = if (kind == .eye) d == k else d <= k;
                    out[i * cols + j] = if (on) one else zero;
                }
            }
        },
    }
}

/// tril (upper = false: keep j <= i + k) and triu (upper = true: keep j >= i + k) over the
/// last two axes.
pub fn triMask(x: *Node, k: i32, upper: bool, stream: u32) errors.Error!*Node {
    if (x.shape.ndim < 2) return errors.fail(.invalid_argument, "[{s}] array must be at least 2-D", .{if (upper) "triu" else "tril"});
    return array.create(x.dtype, x.shape, .{ .tri_mask = .{ .k = k, .upper = upper } }, &.{x}, stream);
}

pub fn evalTriMask(node: *Node, p: TriMask) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    convert.copyConvert(x, node.data(), node.dtype);
    const nd = node.shape.ndim;
    const rows: usize = @intCast(node.shape.dims[nd - 2]);
    const cols: usize = @intCast(node.shape.dims[nd - 1]);
    if (rows * cols == 0) return;
    const batches = node.size() / (rows * cols);
    switch (node.dtype) {
        inline else => |D| {
            const out: [*]D.Type() = @ptrCast(@alignCast(node.data()));
            const zero = convert.cast(.int32, D, 0);
            for (0..batches) |b| {
                const base = b * rows * cols;
                for (0..rows) |i| {
                    for (0..cols) |j| {
                        const d = @as(i64, @intCast(j)) - @as(i64, @intCast(i));
                        const keep = if (p.upper) d >= p.k else d <= p.k;
                        if (!keep) out[base + i * cols + j] = zero;
                    }
                }
            }
        },
    }
}
