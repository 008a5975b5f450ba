//! Element conversion between any two dtypes, and the strided-to-contiguous converting copy
//! that astype, data read-out and the typed-array export all use.
const std = @import("std");
const dtype_mod = @import("dtype.zig");
const Dtype = dtype_mod.Dtype;
const half = @import("half.zig");
const array = @import("array.zig");

/// The value of x as f64 (complex: its real part; float16/bfloat16 exactly).
pub fn toF64(comptime S: Dtype, x: S.Type()) f64 {
    return switch (S) {
        .bool_ => if (x) 1.0 else 0.0,
        .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64 => @floatFromInt(x),
        .float16 => half.f16ToF32(x.bits),
        .bfloat16 => half.bf16ToF32(x.bits),
        .float32 => x,
        .float64 => x,
        .complex64 => x.re,
    };
}

/// The value of x as f32, rounded once (to nearest even) as C++'s static_cast<float> does.
/// Integers convert directly: going through f64 would round 64-bit integers twice
/// (int64 2^60 + 2^36 + 1 must give 2^60 + 2^37, as MLX does, not 2^60).
fn toF32(comptime S: Dtype, x: S.Type()) f32 {
    return switch (S) {
        .bool_ => if (x) 1.0 else 0.0,
        .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64 => @floatFromInt(x),
        .float32 => x,
        .float64 => @floatCast(x),
        .float16 => half.f16ToF32(x.bits),
        .bfloat16 => half.bf16ToF32(x.bits),
        .complex64 => x.re,
    };
}

fn isNonZero(comptime S: Dtype, x: S.Type()) bool {
    return switch (S) {
        .bool_ => x,
        .complex64 => x.re != 0 or x.im != 0,
        .float16, .bfloat16 => (x.bits & 0x7fff) != 0,
        else => x != 0,
    };
}

/// Float to integer exactly as MLX behaves on x86-64 (where C++ leaves out-of-range values
/// undefined, the compiler's cvttsd2si yields the "integer indefinite" value), made explicit
/// so every target gives the same answer and nothing traps: narrow types go through int32,
/// uint32 and int64 through int64, NaN and out-of-range values give the minimum of the type used.
fn truncToI32(v: f64) i32 {
    if (!(v > -2147483649.0 and v < 2147483648.0)) return std.math.minInt(i32);
    return @intFromFloat(@trunc(v));
}

fn truncToI64(v: f64) i64 {
    if (!(v > -9223372036854775808.0 and v < 9223372036854775808.0)) return std.math.minInt(i64);
    return @intFromFloat(@trunc(v));
}

fn floatToInt(comptime T: type, v: f64) T {
    return switch (T) {
        i8, i16, u8, u16, i32 => intToInt(T, truncToI32(v)),
        u32, i64 => intToInt(T, truncToI64(v)),
        // The compiler's unsigned conversion: values from 2^63 up go through int64 shifted
        // down by 2^63, so 2^64 and beyond (and +inf) give the indefinite value xor 2^63, 0;
        // NaN and values below -2^63 give the indefinite value itself, 2^63.
        u64 => if (v >= 9223372036854775808.0)
            @as(u64, @bitCast(truncToI64(v - 9223372036854775808.0))) ^ (1 << 63)
        else
            @bitCast(truncToI64(v)),
        else => @compileError("not an integer type"),
    };
}

/// Integer to integer wraps modulo 2^bits, as C++'s static_cast does.
fn intToInt(comptime T: type, x: anytype) T {
    const wide: i128 = x;
    const U = std.meta.Int(.unsigned, @bitSizeOf(T));
    return @bitCast(@as(U, @truncate(@as(u128, @bitCast(wide)))));
}

pub fn cast(comptime S: Dtype, comptime D: Dtype, x: S.Type()) D.Type() {
    if (S == D) return x;
    return switch (D) {
        .bool_ => isNonZero(S, x),
        .float32 => toF32(S, x),
        .float64 => if (S == .float32) @as(f64, x) else toF64(S, x),
        .float16 => .{ .bits = half.f32ToF16(toF32(S, x)) },
        .bfloat16 => .{ .bits = half.f32ToBf16(toF32(S, x)) },
        .complex64 => .{ .re = toF32(S, x), .im = 0 },
        .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64 => switch (S) {
            .bool_ => if (x) 1 else 0,
            .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64 => intToInt(D.Type(), x),
            else => floatToInt(D.Type(), toF64(S, x)),
        },
    };
}

/// Iterates the element offsets (in elements) of a strided array in row-major logical order.
pub const Iter = struct {
    ndim: usize,
    shape: [array.max_ndim]i32,
    strides: [array.max_ndim]i64,
    idx: [array.max_ndim]i32 = [_]i32{0} ** array.max_ndim,
    pos: i64 = 0,

    pub fn init(node: *const array.Node) Iter {
        var it = Iter{ .ndim = node.shape.ndim, .shape = node.shape.dims, .strides = node.strides };
        // Collapse: drop size-1 dims (their stride is irrelevant).
        var n: usize = 0;
        for (0..it.ndim) |i| {
            if (it.shape[i] == 1) continue;
            it.shape[n] = it.shape[i];
            it.strides[n] = it.strides[i];
            n += 1;
        }
        it.ndim = n;
        return it;
    }

    /// The current offset, then advance.
    pub inline fn next(it: *Iter) i64 {
        const p = it.pos;
        var i = it.ndim;
        while (i > 0) {
            i -= 1;
            it.idx[i] += 1;
            it.pos += it.strides[i];
            if (it.idx[i] < it.shape[i]) break;
            it.pos -= it.strides[i] * it.shape[i];
            it.idx[i] = 0;
        }
        return p;
    }
};

/// The element `i` places from `base`; `i` may be negative (views with negative strides start
/// at their first logical element, which need not be the lowest address).
pub inline fn at(comptime T: type, base: [*]const T, i: i64) *const T {
    const addr: isize = @as(isize, @bitCast(@intFromPtr(base))) + @as(isize, @intCast(i)) * @sizeOf(T);
    return @ptrFromInt(@as(usize, @bitCast(addr)));
}

/// Copy an evaluated array into `dst` as a row-major contiguous array of dtype `to` (the walk
/// and the kernels are elementwise.copyCast's).
pub fn copyConvert(src: *const array.Node, dst: [*]u8, to: Dtype) void {
    @import("prims/elementwise.zig").copyCast(src, dst, to);
}

test "casts follow C++ conversions and MLX's x86-64 results where C++ is undefined" {
    try std.testing.expectEqual(@as(u8, 44), cast(.int32, .uint8, 300));
    try std.testing.expectEqual(@as(i8, -1), cast(.uint8, .int8, 255));
    try std.testing.expectEqual(@as(i32, 2), cast(.float32, .int32, 2.9));
    try std.testing.expectEqual(@as(i32, -2), cast(.float32, .int32, -2.9));
    // The values MLX gives on x86-64 (checked with mlx-cpu 0.32.4).
    try std.testing.expectEqual(@as(i32, std.math.minInt(i32)), cast(.float32, .int32, std.math.nan(f32)));
    try std.testing.expectEqual(@as(i32, std.math.minInt(i32)), cast(.float64, .int32, 1e20));
    try std.testing.expectEqual(@as(u8, 255), cast(.float32, .uint8, -1.5));
    try std.testing.expectEqual(@as(u8, 44), cast(.float32, .uint8, 300.7));
    try std.testing.expectEqual(@as(u64, 0), cast(.float64, .uint64, 1e30));
    try std.testing.expectEqual(@as(u64, 0), cast(.float32, .uint64, std.math.inf(f32)));
    try std.testing.expectEqual(@as(u64, 0), cast(.float64, .uint64, 18446744073709551616.0));
    try std.testing.expectEqual(@as(u64, 1 << 63), cast(.float64, .uint64, -std.math.inf(f64)));
    try std.testing.expectEqual(@as(u64, 1 << 63), cast(.float64, .uint64, -1e30));
    try std.testing.expectEqual(@as(u64, 1 << 63), cast(.float32, .uint64, std.math.nan(f32)));
    try std.testing.expectEqual(@as(u64, std.math.maxInt(u64)), cast(.float64, .uint64, -1.5));
    try std.testing.expectEqual(@as(u64, 1 << 63 | 4096), cast(.float64, .uint64, 9223372036854775808.0 + 4096.0));
    try std.testing.expectEqual(true, cast(.float32, .bool_, std.math.nan(f32)));
    try std.testing.expectEqual(false, cast(.float16, .bool_, .{ .bits = 0x8000 }));
    try std.testing.expectEqual(@as(f32, 3), cast(.complex64, .float32, .{ .re = 3, .im = 4 }));
    try std.testing.expectEqual(@as(u16, 0x3c00), cast(.int64, .float16, 1).bits);
    // 64-bit integers round once to float32 (MLX's static_cast<float>), not through f64.
    const big: i64 = (1 << 60) + (1 << 36) + 1;
    try std.testing.expectEqual(@as(f32, 0x1.000002p60), cast(.int64, .float32, big));
    try std.testing.expectEqual(@as(f32, -0x1.000002p60), cast(.int64, .float32, -big));
    try std.testing.expectEqual(@as(f32, 0x1.000002p60), cast(.int64, .complex64, big).re);
    try std.testing.expectEqual(@as(f32, 0x1.000002p63), cast(.uint64, .float32, (1 << 63) + (1 << 39) + 1));
    try std.testing.expectEqual(@as(f32, 0x1.fffffep63), cast(.uint64, .float32, 0xffff_ff7f_ffff_ffff));
    // ... and then to bfloat16 from that float32: 2^60 + 2^52 + 2^37 is past the tie, so 2^60 + 2^53.
    try std.testing.expectEqual(@as(u16, 0x5d81), cast(.int64, .bfloat16, (1 << 60) + (1 << 52) + (1 << 36) + 1).bits);
}
