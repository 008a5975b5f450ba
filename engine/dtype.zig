//! The 14 MLX dtypes, their sizes and names, and MLX's type-promotion table.
const std = @import("std");

/// Enum values are MLX's (mlx/dtype.h) and are part of the C ABI.
pub const Dtype = enum(u8) {
    bool_ = 0,
    uint8 = 1,
    uint16 = 2,
    uint32 = 3,
    uint64 = 4,
    int8 = 5,
    int16 = 6,
    int32 = 7,
    int64 = 8,
    float16 = 9,
    float32 = 10,
    float64 = 11,
    bfloat16 = 12,
    complex64 = 13,

    pub const count = 14;

    pub fn fromInt(v: u32) ?Dtype {
        if (v >= count) return null;
        return @enumFromInt(v);
    }

    pub fn size(d: Dtype) usize {
        return switch (d) {
            .bool_, .uint8, .int8 => 1,
            .uint16, .int16, .float16, .bfloat16 => 2,
            .uint32, .int32, .float32 => 4,
            .uint64, .int64, .float64, .complex64 => 8,
        };
    }

    pub fn name(d: Dtype) []const u8 {
        return switch (d) {
            .bool_ => "bool",
            else => @tagName(d),
        };
    }

    pub fn isFloating(d: Dtype) bool {
        return switch (d) {
            .float16, .float32, .float64, .bfloat16 => true,
            else => false,
        };
    }

    pub fn isInexact(d: Dtype) bool {
        return d.isFloating() or d == .complex64;
    }

    pub fn isInteger(d: Dtype) bool {
        return switch (d) {
            .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64 => true,
            else => false,
        };
    }

    pub fn isSigned(d: Dtype) bool {
        return switch (d) {
            .int8, .int16, .int32, .int64 => true,
            else => false,
        };
    }

    /// The Zig type that stores one element (complex64 as two f32).
    pub fn Type(comptime d: Dtype) type {
        return switch (d) {
            .bool_ => bool,
            .uint8 => u8,
            .uint16 => u16,
            .uint32 => u32,
            .uint64 => u64,
            .int8 => i8,
            .int16 => i16,
            .int32 => i32,
            .int64 => i64,
            .float16 => F16,
            .float32 => f32,
            .float64 => f64,
            .bfloat16 => BF16,
            .complex64 => Complex64,
        };
    }
};

/// float16 storage: IEEE binary16 bits (converted by half.zig, not by the compiler).
pub const F16 = extern struct { bits: u16 };
/// bfloat16 storage: the high 16 bits of a float32.
pub const BF16 = extern struct { bits: u16 };
pub const Complex64 = extern struct { re: f32, im: f32 };

const b = Dtype.bool_;
const u_8 = Dtype.uint8;
const u_16 = Dtype.uint16;
const u_32 = Dtype.uint32;
const u_64 = Dtype.uint64;
const i_8 = Dtype.int8;
const i_16 = Dtype.int16;
const i_32 = Dtype.int32;
const i_64 = Dtype.int64;
const f_16 = Dtype.float16;
const f_32 = Dtype.float32;
const f_64 = Dtype.float64;
const bf = Dtype.bfloat16;
const c_64 = Dtype.complex64;

/// MLX's promotion table (mlx/dtype.cpp), rows and columns in enum order.
const promotion = [Dtype.count][Dtype.count]Dtype{
    .{ b, u_8, u_16, u_32, u_64, i_8, i_16, i_32, i_64, f_16, f_32, f_64, bf, c_64 },
    .{ u_8, u_8, u_16, u_32, u_64, i_16, i_16, i_32, i_64, f_16, f_32, f_64, bf, c_64 },
    .{ u_16, u_16, u_16, u_32, u_64, i_32, i_32, i_32, i_64, f_16, f_32, f_64, bf, c_64 },
    .{ u_32, u_32, u_32, u_32, u_64, i_64, i_64, i_64, i_64, f_16, f_32, f_64, bf, c_64 },
    .{ u_64, u_64, u_64, u_64, u_64, f_32, f_32, f_32, f_32, f_16, f_32, f_64, bf, c_64 },
    .{ i_8, i_16, i_32, i_64, f_32, i_8, i_16, i_32, i_64, f_16, f_32, f_64, bf, c_64 },
    .{ i_16, i_16, i_32, i_64, f_32, i_16, i_16, i_32, i_64, f_16, f_32, f_64, bf, c_64 },
    .{ i_32, i_32, i_32, i_64, f_32, i_32, i_32, i_32, i_64, f_16, f_32, f_64, bf, c_64 },
    .{ i_64, i_64, i_64, i_64, f_32, i_64, i_64, i_64, i_64, f_16, f_32, f_64, bf, c_64 },
    .{ f_16, f_16, f_16, f_16, f_16, f_16, f_16, f_16, f_16, f_16, f_32, f_64, f_32, c_64 },
    .{ f_32, f_32, f_32, f_32, f_32, f_32, f_32, f_32, f_32, f_32, f_32, f_64, f_32, c_64 },
    .{ f_64, f_64, f_64, f_64, f_64, f_64, f_64, f_64, f_64, f_64, f_64, f_64, f_64, c_64 },
    .{ bf, bf, bf, bf, bf, bf, bf, bf, bf, f_32, f_32, f_64, bf, c_64 },
    .{ c_64, c_64, c_64, c_64, c_64, c_64, c_64, c_64, c_64, c_64, c_64, c_64, c_64, c_64 },
};

pub fn promote(x: Dtype, y: Dtype) Dtype {
    return promotion[@intFromEnum(x)][@intFromEnum(y)];
}

test "promotion table is symmetric and idempotent" {
    for (0..Dtype.count) |i| {
        const x: Dtype = @enumFromInt(i);
        try std.testing.expectEqual(x, promote(x, x));
        for (0..Dtype.count) |j| {
            const y: Dtype = @enumFromInt(j);
            try std.testing.expectEqual(promote(x, y), promote(y, x));
        }
    }
    // The surprises listed in mlx-semantics.md §4.1.
    try std.testing.expectEqual(Dtype.float16, promote(.int64, .float16));
    try std.testing.expectEqual(Dtype.float32, promote(.uint64, .int8));
    try std.testing.expectEqual(Dtype.float32, promote(.float16, .bfloat16));
    try std.testing.expectEqual(Dtype.complex64, promote(.float64, .complex64));
}

test "sizes match the Zig storage types" {
    inline for (0..Dtype.count) |i| {
        const d: Dtype = @enumFromInt(i);
        try std.testing.expectEqual(d.size(), @sizeOf(d.Type()));
    }
}
