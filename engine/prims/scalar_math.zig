//! Scalar math the std library lacks or rounds differently from MLX: erf, erfinv, round half
//! to even, Python-style floor division and remainder, integer power, logaddexp, and complex
//! helpers. Used by the elementwise kernels (float16/bfloat16 compute through float32).
const std = @import("std");

pub const C = std.math.Complex(f32);

/// erf in double precision: the Maclaurin series below 2.5 (converges fast there), and
/// 1 - erfc from a Lentz continued fraction above. Error below 1e-15 over the real line.
pub fn erf64(x: f64) f64 {
    if (std.math.isNan(x)) return x;
    const ax = @abs(x);
    if (ax < 2.5) {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        var term = ax;
        var sum = ax;
        const x2 = ax * ax;
        var n: f64 = 0;
        while (n < 200) : (n += 1) {
            term *= -x2 / (n + 1);
            const add = term / (2 * (n + 1) + 1);
            sum += add;
            if (@abs(add) < 1e-17 * @abs(sum)) break;
        }
        const r = sum * 2.0 / std.math.sqrt(std.math.pi);
        return if (x < 0) -r else r;
    }
    if (ax > 6) return if (x < 0) -1 else 1;
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2 / (x + 1 / (x + 3/2 / (x + ...))))
    const tiny = 1e-300;
    var f = ax;
    var cc = ax;
    var d: f64 = 0;
    var k: f64 = 1;
    while (k < 300) : (k += 1) {
        const a = k / 2;
        d = ax + a * d;
        if (d == 0) d = tiny;
        cc = ax + a / cc;
        if (cc == 0) cc = tiny;
        d = 1 / d;
        const delta = cc * d;
        f *= delta;
        if (@abs(delta - 1) < 1e-16) break;
    }
    const erfc = std.math.exp(-ax * ax) / std.math.sqrt(std.math.pi) / f;
    const r = 1 - erfc;
    return if (x < 0) -r else r;
}

/// Inverse of erf: an initial estimate refined by Newton steps on erf64.
pub fn erfinv64(y: f64) f64 {
    if (std.math.isNan(y) or y < -1 or y > 1) return std.math.nan(f64);
    if (y == 1) return std.math.inf(f64);
    if (y == -1) return -std.math.inf(f64);
    if (y == 0) return y;
    const a: f64 = 0.147;
    const ln = std.math.log(f64, std.math.e, (1 - y) * (1 + y));
    const t = 2 / (std.math.pi * a) + ln / 2;
    var x = std.math.sqrt(std.math.sqrt(t * t - ln / a) - t);
    if (y < 0) x = -x;
    const k: f64 = 2.0 / std.math.sqrt(std.math.pi);
    var i: usize = 0;
    while (i < 4) : (i += 1) {
        const err = erf64(x) - y;
        const deriv = k * std.math.exp(-x * x);
        if (deriv == 0) break;
        x -= err / deriv;
    }
    return x;
}

/// Round half to even (C's rint in the default mode), as MLX's round.
pub fn rint(x: anytype) @TypeOf(x) {
    const r = @round(x); // half away from zero
    if (@abs(x - @trunc(x)) == 0.5) return 2 * @round(x / 2);
    return r;
}

/// Python floor division for integers (x // 0 gives 0, as MLX's CPU result).
pub fn floorDivInt(comptime T: type, a: T, b: T) T {
    if (b == 0) return 0;
    if (@typeInfo(T).int.signedness == .unsigned) return a / b;
    if (a == std.math.minInt(T) and b == -1) return a; // wraps, as C++ on x86 would trap: keep a
    return @divFloor(a, b);
}

/// Python remainder for integers: the sign follows the divisor (x % 0 gives 0).
pub fn remInt(comptime T: type, a: T, b: T) T {
    if (b == 0) return 0;
    if (@typeInfo(T).int.signedness == .unsigned) return a % b;
    if (b == -1) return 0;
    return @mod(a, b);
}

/// Python remainder for floats: fmod, moved to the divisor's sign.
pub fn remFloat(comptime T: type, a: T, b: T) T {
    const r = @rem(a, b);
    if (r != 0 and ((r < 0) != (b < 0))) return r + b;
    return r;
}

/// Integer power by squaring, wrapping; negative exponents give 0 (1 for a base of 1, ±1 for -1).
pub fn powInt(comptime T: type, base: T, exp: T) T {
    if (@typeInfo(T).int.signedness == .signed and exp < 0) {
        if (base == 1) return 1;
        if (base == -1) return if (@mod(exp, 2) == 0) 1 else -1;
        return 0;
    }
    var result: T = 1;
    var b = base;
    var e = exp;
    while (e > 0) {
        if (e & 1 == 1) result *%= b;
        b *%= b;
        e >>= 1;
    }
    return result;
}

pub fn logaddexp(comptime T: type, a: T, b: T) T {
    if (std.math.isNan(a) or std.math.isNan(b)) return std.math.nan(T);
    const hi = @max(a, b);
    const lo = @min(a, b);
    if (std.math.isInf(hi)) return hi;
    return hi + std.math.log1p(@exp(lo - hi));
}

/// sign for floats: -1, 0 or 1 (NaN stays NaN).
pub fn signFloat(comptime T: type, x: T) T {
    if (x > 0) return 1;
    if (x < 0) return -1;
    return x; // 0, -0 or NaN
}

pub fn toC(x: anytype) C {
    return C.init(x.re, x.im);
}

test "erf and erfinv" {
    // Reference values: erf(0.5) = 0.5204998778130465, erf(1) = 0.8427007929497149,
    // erf(3) = 0.9999779095030014 (standard tables).
    try std.testing.expectApproxEqAbs(@as(f64, 0.5204998778130465), erf64(0.5), 1e-15);
    try std.testing.expectApproxEqAbs(@as(f64, 0.8427007929497149), erf64(1), 1e-15);
    try std.testing.expectApproxEqAbs(@as(f64, 0.9999779095030014), erf64(3), 1e-15);
    try std.testing.expectApproxEqAbs(@as(f64, -0.8427007929497149), erf64(-1), 1e-15);
    var y: f64 = -0.99;
    while (y < 0.99) : (y += 0.0137) {
        try std.testing.expectApproxEqAbs(y, erf64(erfinv64(y)), 1e-14);
    }
}

test "python integer semantics" {
    try std.testing.expectEqual(@as(i32, -4), floorDivInt(i32, -7, 2));
    try std.testing.expectEqual(@as(i32, 1), remInt(i32, -7, 2));
    try std.testing.expectEqual(@as(i32, -1), remInt(i32, 7, -2));
    try std.testing.expectEqual(@as(f32, -0.5), remFloat(f32, 7.5, -2));
    try std.testing.expectEqual(@as(i32, 0), powInt(i32, 2, -1));
    try std.testing.expectEqual(@as(i32, 1024), powInt(i32, 2, 10));
    try std.testing.expectEqual(@as(f32, 2), rint(@as(f32, 2.5)));
    try std.testing.expectEqual(@as(f32, -4), rint(@as(f32, -3.5)));
}
