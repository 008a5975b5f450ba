//! The system C library's float functions that MLX calls (std::log, std::log1p, ...), looked up
//! at run time. Inside libmlxbun the plain `logf` names resolve to the compiler runtime's
//! versions, whose last bit can differ from glibc's (log(1.2706705) is 0x3e754b37 in glibc and
//! MLX, ...38 there), so the family files call these instead. They used to link glibc's
//! _Float32 aliases (`logf32`, glibc 2.27+), which neither an older glibc (the packaged
//! linux builds target glibc 2.17) nor macOS has; looking the plain names up in the system's
//! libm works on all of them. If the lookup fails, Zig's std.math stands in.
const std = @import("std");
const builtin = @import("builtin");

const libm_names: []const [:0]const u8 = switch (builtin.os.tag) {
    .macos, .ios => &.{"/usr/lib/libSystem.B.dylib"},
    else => &.{ "libm.so.6", "libm.so" },
};

const Table = struct {
    logf: *const fn (f32) callconv(.c) f32,
    log: *const fn (f64) callconv(.c) f64,
    log1pf: *const fn (f32) callconv(.c) f32,
    atan2f: *const fn (f32, f32) callconv(.c) f32,
    hypotf: *const fn (f32, f32) callconv(.c) f32,
};

fn fallbackLogf(x: f32) callconv(.c) f32 {
    return @log(x);
}
fn fallbackLog(x: f64) callconv(.c) f64 {
    return @log(x);
}
fn fallbackLog1pf(x: f32) callconv(.c) f32 {
    return std.math.log1p(x);
}
fn fallbackAtan2f(y: f32, x: f32) callconv(.c) f32 {
    return std.math.atan2(y, x);
}
fn fallbackHypotf(x: f32, y: f32) callconv(.c) f32 {
    return std.math.hypot(x, y);
}

var table: Table = .{ .logf = fallbackLogf, .log = fallbackLog, .log1pf = fallbackLog1pf, .atan2f = fallbackAtan2f, .hypotf = fallbackHypotf };
var once = std.once(resolve);

fn resolve() void {
    for (libm_names) |name| {
        const h = std.c.dlopen(name, .{ .NOW = true }) orelse continue;
        inline for (@typeInfo(Table).@"struct".fields) |f| {
            if (std.c.dlsym(h, f.name)) |p| @field(table, f.name) = @ptrCast(@alignCast(p));
        }
        return; // never closed: the pointers stay valid for the process
    }
}

inline fn get() *const Table {
    once.call();
    return &table;
}

pub fn logf32(x: f32) f32 {
    return get().logf(x);
}
pub fn logf64(x: f64) f64 {
    return get().log(x);
}
pub fn log1pf32(x: f32) f32 {
    return get().log1pf(x);
}
pub fn atan2f32(y: f32, x: f32) f32 {
    return get().atan2f(y, x);
}
pub fn hypotf32(x: f32, y: f32) f32 {
    return get().hypotf(x, y);
}

test "the system libm's log matches glibc's last bit" {
    // log(1.2706705f): glibc (and MLX) give 0x3e754b37.
    try std.testing.expectEqual(@as(u32, 0x3e754b37), @as(u32, @bitCast(logf32(1.2706705))));
    try std.testing.expectEqual(@as(f64, 0), logf64(1));
    try std.testing.expectEqual(@as(f32, 0), log1pf32(0));
    try std.testing.expectEqual(@as(f32, 5), hypotf32(3, 4));
    try std.testing.expectApproxEqAbs(@as(f32, std.math.pi / 4.0), atan2f32(1, 1), 1e-7);
}
