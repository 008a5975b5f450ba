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

// ---------------------------------------------------------------------------------------------
// The approximations MLX's CPU backend is documented to use (mlx-semantics.md §10.1), chosen so
// results match MLX bit for bit: published float32 algorithms for exp (2^x split into an integer
// power and a degree-6 polynomial of the fraction), sin/cos (Cephes-style reduction by pi/4 in
// three parts, then the minimax polynomials), erf (Abramowitz and Stegun 7.1.26) and erfinv
// (Giles, "Approximating the erfinv function", 2010), applied to every floating dtype as MLX
// does, float64 included; the C library (glibc libm, as MLX calls through std::) for the rest.

const libm = struct {
    extern "c" fn acosf(f32) f32;
    extern "c" fn acos(f64) f64;
    extern "c" fn acoshf(f32) f32;
    extern "c" fn acosh(f64) f64;
    extern "c" fn asinf(f32) f32;
    extern "c" fn asin(f64) f64;
    extern "c" fn asinhf(f32) f32;
    extern "c" fn asinh(f64) f64;
    extern "c" fn atanf(f32) f32;
    extern "c" fn atan(f64) f64;
    extern "c" fn atanhf(f32) f32;
    extern "c" fn atanh(f64) f64;
    extern "c" fn coshf(f32) f32;
    extern "c" fn cosh(f64) f64;
    extern "c" fn sinhf(f32) f32;
    extern "c" fn sinh(f64) f64;
    extern "c" fn tanhf(f32) f32;
    extern "c" fn tanh(f64) f64;
    extern "c" fn tanf(f32) f32;
    extern "c" fn tan(f64) f64;
    extern "c" fn sinf(f32) f32;
    extern "c" fn cosf(f32) f32;
    extern "c" fn expm1f(f32) f32;
    extern "c" fn expm1(f64) f64;
    extern "c" fn logf(f32) f32;
    extern "c" fn log(f64) f64;
    extern "c" fn log2f(f32) f32;
    extern "c" fn log2(f64) f64;
    extern "c" fn log10f(f32) f32;
    extern "c" fn log10(f64) f64;
    extern "c" fn log1pf(f32) f32;
    extern "c" fn log1p(f64) f64;
    extern "c" fn powf(f32, f32) f32;
    extern "c" fn pow(f64, f64) f64;
    extern "c" fn atan2f(f32, f32) f32;
    extern "c" fn atan2(f64, f64) f64;
    extern "c" fn remainderf(f32, f32) f32;
    extern "c" fn remainder(f64, f64) f64;
    extern "c" fn hypotf(f32, f32) f32;
};

/// glibc's logf and log, as MLX's CPU backend calls them. Zig's compiler_rt defines its own
/// `logf`/`log` (weak symbols that the static link resolves before the shared C library), and
/// those differ from glibc's in the last bit on some inputs, so the engine looks glibc's up in
/// the loaded libm (falling back to the linked ones where there is no libm.so.6).
const GlibcLog = struct {
    f32_fn: *const fn (f32) callconv(.c) f32,
    f64_fn: *const fn (f64) callconv(.c) f64,
};
var glibc_log: ?GlibcLog = null;
var glibc_log_once = std.once(resolveGlibcLog);

fn resolveGlibcLog() void {
    var out = GlibcLog{ .f32_fn = &libm.logf, .f64_fn = &libm.log };
    if (std.c.dlopen("libm.so.6", .{ .LAZY = true })) |h| {
        if (std.c.dlsym(h, "logf")) |f| out.f32_fn = @ptrCast(@alignCast(f));
        if (std.c.dlsym(h, "log")) |f| out.f64_fn = @ptrCast(@alignCast(f));
    }
    glibc_log = out;
}

/// The natural log as MLX computes it (glibc's logf/log).
pub fn cLog(comptime T: type, x: T) T {
    glibc_log_once.call();
    return if (T == f32) glibc_log.?.f32_fn(x) else glibc_log.?.f64_fn(x);
}

/// A one-argument C library function at T (f32 or f64): `name` is the double version's name.
pub fn c1(comptime name: []const u8, comptime T: type, x: T) T {
    if (comptime std.mem.eql(u8, name, "log")) return cLog(T, x);
    return if (T == f32) @field(libm, name ++ "f")(x) else @field(libm, name)(x);
}

pub fn c2(comptime name: []const u8, comptime T: type, x: T, y: T) T {
    return if (T == f32) @field(libm, name ++ "f")(x, y) else @field(libm, name)(x, y);
}

/// MLX's exp: 2^(x log2 e) split into an integer power (bits) and a degree-6 polynomial.
pub fn mlxExp(x_init: f32) f32 {
    if (std.math.isNan(x_init)) return x_init;
    if (x_init > 88.0) return std.math.inf(f32);
    if (x_init < -88.0) return 0;
    var x = x_init * 1.442695;
    const ipart: f32 = @floatCast(@floor(@as(f64, x) + 0.5));
    const fpart = x - ipart;
    x = 1.535336188319500e-4;
    x = @mulAdd(f32, x, fpart, 1.339887440266574e-3);
    x = @mulAdd(f32, x, fpart, 9.618437357674640e-3);
    x = @mulAdd(f32, x, fpart, 5.550332471162809e-2);
    x = @mulAdd(f32, x, fpart, 2.402264791363012e-1);
    x = @mulAdd(f32, x, fpart, 6.931472028550421e-1);
    x = @mulAdd(f32, x, fpart, 1.000000000000000);
    const epart: i32 = (@as(i32, @intFromFloat(ipart)) +% 127) << 23;
    return @as(f32, @bitCast(epart)) * x;
}

/// MLX's sin/cos (Cephes): exact range reduction by pi/4 while |x| <= 2^23, libm past that.
pub fn mlxSinCos(comptime sine: bool, x_in: f32) f32 {
    const ax = @abs(x_in);
    if (ax > 8388608.0) return if (sine) libm.sinf(x_in) else libm.cosf(x_in);
    var sign_sin = x_in < 0;
    var x = ax;
    var y = x * 1.27323954473516;
    var emm2: u32 = if (std.math.isNan(y)) 0 else @intFromFloat(y);
    emm2 = (emm2 +% 1) & ~@as(u32, 1);
    y = @floatFromInt(emm2);
    const poly = (emm2 & 2) != 0;
    x = @mulAdd(f32, y, -0.78515625, x);
    x = @mulAdd(f32, y, -2.4187564849853515625e-4, x);
    x = @mulAdd(f32, y, -3.77489497744594108e-8, x);
    sign_sin = sign_sin != ((emm2 & 4) != 0);
    const sign_cos = ((emm2 -% 2) & 4) != 0;
    const z = x * x;
    var y1 = @mulAdd(f32, z, 2.443315711809948e-5, -1.388731625493765e-3);
    var y2 = @mulAdd(f32, z, -1.9515295891e-4, 8.3321608736e-3);
    y1 = @mulAdd(f32, y1, z, 4.166664568298827e-2);
    y2 = @mulAdd(f32, y2, z, -1.6666654611e-1);
    y1 = y1 * z;
    y2 = y2 * z;
    y1 = y1 * z;
    y2 = @mulAdd(f32, x, y2, x);
    y1 = @mulAdd(f32, z, -0.5, y1);
    y1 = y1 + 1.0;
    if (sine) {
        const ys = if (poly) y1 else y2;
        return if (sign_sin) -ys else ys;
    }
    const yc = if (poly) y2 else y1;
    return if (sign_cos) yc else -yc;
}

/// mlxSinCos on a vector of lanes, the same operations in the same order (bit-identical), for
/// lanes that are not NaN and at most 2^23 in magnitude (the caller checks).
pub fn mlxSinCosV(comptime sine: bool, comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const V = @Vector(N, f32);
    const U = @Vector(N, u32);
    const zero_u: U = @splat(0);
    var sgn_sin: U = @select(u32, x_in < @as(V, @splat(0)), @as(U, @splat(1)), zero_u);
    var x = @abs(x_in);
    var y = x * @as(V, @splat(1.27323954473516));
    var emm2: U = @intFromFloat(y);
    emm2 = (emm2 +% @as(U, @splat(1))) & @as(U, @splat(~@as(u32, 1)));
    y = @floatFromInt(emm2);
    const poly = (emm2 & @as(U, @splat(2))) != zero_u;
    x = @mulAdd(V, y, @splat(-0.78515625), x);
    x = @mulAdd(V, y, @splat(-2.4187564849853515625e-4), x);
    x = @mulAdd(V, y, @splat(-3.77489497744594108e-8), x);
    sgn_sin ^= (emm2 & @as(U, @splat(4))) >> @splat(2);
    const sgn_cos = ((emm2 -% @as(U, @splat(2))) & @as(U, @splat(4))) != zero_u;
    const z = x * x;
    var y1 = @mulAdd(V, z, @splat(2.443315711809948e-5), @splat(-1.388731625493765e-3));
    var y2 = @mulAdd(V, z, @splat(-1.9515295891e-4), @splat(8.3321608736e-3));
    y1 = @mulAdd(V, y1, z, @splat(4.166664568298827e-2));
    y2 = @mulAdd(V, y2, z, @splat(-1.6666654611e-1));
    y1 = y1 * z;
    y2 = y2 * z;
    y1 = y1 * z;
    y2 = @mulAdd(V, x, y2, x);
    y1 = @mulAdd(V, z, @splat(-0.5), y1);
    y1 = y1 + @as(V, @splat(1.0));
    if (sine) {
        const ys = @select(f32, poly, y1, y2);
        return @select(f32, sgn_sin != zero_u, -ys, ys);
    }
    const yc = @select(f32, poly, y2, y1);
    return @select(f32, sgn_cos, yc, -yc);
}

/// Whether every lane can take the vector sin/cos (no NaN, |x| <= 2^23).
pub fn sinCosVectorOk(comptime N: comptime_int, v: @Vector(N, f32)) bool {
    const ok = @abs(v) <= @as(@Vector(N, f32), @splat(8388608.0)); // false for NaN
    return @reduce(.And, ok);
}

/// MLX's erf (Abramowitz-Stegun 7.1.26 with its exp), in float32.
pub fn mlxErf(v: f32) f32 {
    const t = 1.0 / @mulAdd(f32, 0.3275911, @abs(v), 1.0);
    var r = @mulAdd(f32, 1.061405429, t, -1.453152027);
    r = @mulAdd(f32, r, t, 1.421413741);
    r = @mulAdd(f32, r, t, -0.284496736);
    r = @mulAdd(f32, r, t, 0.254829592);
    const e = -mlxExp(-v * v);
    const result = @mulAdd(f32, e * t, r, 1.0);
    return if (v > 0) result else -result;
}

/// MLX's erfinv (Giles' single-precision polynomials), in float32.
pub fn mlxErfinv(a: f32) f32 {
    var t = @mulAdd(f32, a, 0.0 - a, 1.0);
    t = cLog(f32, t);
    var p: f32 = undefined;
    if (@abs(t) > 6.125) {
        p = 3.03697567e-10;
        p = @mulAdd(f32, p, t, 2.93243101e-8);
        p = @mulAdd(f32, p, t, 1.22150334e-6);
        p = @mulAdd(f32, p, t, 2.84108955e-5);
        p = @mulAdd(f32, p, t, 3.93552968e-4);
        p = @mulAdd(f32, p, t, 3.02698812e-3);
        p = @mulAdd(f32, p, t, 4.83185798e-3);
        p = @mulAdd(f32, p, t, -2.64646143e-1);
        p = @mulAdd(f32, p, t, 8.40016484e-1);
    } else {
        p = 5.43877832e-9;
        p = @mulAdd(f32, p, t, 1.43285448e-7);
        p = @mulAdd(f32, p, t, 1.22774793e-6);
        p = @mulAdd(f32, p, t, 1.12963626e-7);
        p = @mulAdd(f32, p, t, -5.61530760e-5);
        p = @mulAdd(f32, p, t, -1.47697632e-4);
        p = @mulAdd(f32, p, t, 2.31468678e-3);
        p = @mulAdd(f32, p, t, 1.15392581e-2);
        p = @mulAdd(f32, p, t, -2.32015476e-1);
        p = @mulAdd(f32, p, t, 8.86226892e-1);
    }
    return a * p;
}

/// MLX's integer floor division: x // 0 is 0; C++ truncation, then one down when signs differ.
pub fn floorDivInt(comptime T: type, a: T, b: T) T {
    if (b == 0) return 0;
    if (@typeInfo(T).int.signedness == .unsigned) return a / b;
    if (a == std.math.minInt(T) and b == -1) return a; // wraps (MLX traps on x86 here)
    var q = @divTrunc(a, b);
    if (@rem(a, b) != 0 and ((a < 0) != (b < 0))) q -= 1;
    return q;
}

/// MLX's integer remainder: x % 0 is x; the sign follows the divisor.
pub fn remInt(comptime T: type, a: T, b: T) T {
    if (b == 0) return a;
    if (@typeInfo(T).int.signedness == .unsigned) return a % b;
    if (b == -1) return 0;
    var r = @rem(a, b);
    if (r != 0 and ((r < 0) != (b < 0))) r += b;
    return r;
}

/// MLX's float remainder: the IEEE remainder, moved to the divisor's sign.
pub fn remFloat(comptime T: type, a: T, b: T) T {
    var r = c2("remainder", T, a, b);
    if (r != 0 and ((r < 0) != (b < 0))) r += b;
    return r;
}

/// MLX's integer power: by squaring, wrapping; a negative exponent gives 0.
pub fn powInt(comptime T: type, base: T, exp: T) T {
    if (@typeInfo(T).int.signedness == .signed and exp < 0) return 0;
    var result: T = 1;
    var b = base;
    var e = exp;
    while (e != 0) {
        if (e & 1 == 1) result *%= b;
        e >>= 1;
        b *%= b;
    }
    return result;
}

/// MLX's maximum/minimum for floats: a NaN first operand wins, else the C++ comparison.
pub fn maxFloat(comptime T: type, a: T, b: T) T {
    if (std.math.isNan(a)) return a;
    return if (a > b) a else b;
}

pub fn minFloat(comptime T: type, a: T, b: T) T {
    if (std.math.isNan(a)) return a;
    return if (a < b) a else b;
}

/// MLX's logaddexp: max + log1p(exp(min - max)), with its float32 exp.
pub fn logaddexp(comptime T: type, a: T, b: T) T {
    const hi = maxFloat(T, a, b);
    const lo = minFloat(T, a, b);
    if (lo == -std.math.inf(T) or hi == std.math.inf(T)) return hi;
    const e: T = @floatCast(mlxExp(@floatCast(lo - hi)));
    return hi + c1("log1p", T, e);
}

/// sign for floats: -1, 0 or 1 (NaN gives 0, as MLX's selects).
pub fn signFloat(comptime T: type, x: T) T {
    if (x < 0) return -1;
    if (x > 0) return 1;
    return 0;
}

// Complex float through the C library and compiler-rt, as MLX's std::complex<float> code
// compiles to (glibc's c*f functions, __mulsc3/__divsc3 for products and quotients).
const CF = extern struct { re: f32, im: f32 };
const clib = struct {
    extern "c" fn csqrtf(CF) CF;
    extern "c" fn cexpf(CF) CF;
    extern "c" fn clogf(CF) CF;
    extern "c" fn csinf(CF) CF;
    extern "c" fn ccosf(CF) CF;
    extern "c" fn ctanf(CF) CF;
    extern "c" fn casinf(CF) CF;
    extern "c" fn cacosf(CF) CF;
    extern "c" fn catanf(CF) CF;
    extern "c" fn csinhf(CF) CF;
    extern "c" fn ccoshf(CF) CF;
    extern "c" fn ctanhf(CF) CF;
    extern "c" fn casinhf(CF) CF;
    extern "c" fn cacoshf(CF) CF;
    extern "c" fn catanhf(CF) CF;
    extern "c" fn cpowf(CF, CF) CF;
    extern "c" fn cabsf(CF) f32;
    extern fn __mulsc3(f32, f32, f32, f32) CF;
};

pub fn cfn(comptime name: []const u8, z: C) C {
    const r = @field(clib, name)(.{ .re = z.re, .im = z.im });
    return C.init(r.re, r.im);
}

pub fn cabs(z: C) f32 {
    return clib.cabsf(.{ .re = z.re, .im = z.im });
}

pub fn cpow(x: C, y: C) C {
    const r = clib.cpowf(.{ .re = x.re, .im = x.im }, .{ .re = y.re, .im = y.im });
    return C.init(r.re, r.im);
}

pub fn cmul(x: C, y: C) C {
    const re = x.re * y.re - x.im * y.im;
    const im = x.re * y.im + x.im * y.re;
    if (std.math.isNan(re) and std.math.isNan(im)) {
        const r = clib.__mulsc3(x.re, x.im, y.re, y.im);
        return C.init(r.re, r.im);
    }
    return C.init(re, im);
}

/// Complex float division as GCC's libgcc __divsc3 (12+) does it: in double precision, then
/// the C99 Annex G recovery of infinities and zeros.
pub fn cdiv(x: C, y: C) C {
    var a: f64 = x.re;
    var b: f64 = x.im;
    var c: f64 = y.re;
    var d: f64 = y.im;
    const denom = c * c + d * d;
    var re = (a * c + b * d) / denom;
    var im = (b * c - a * d) / denom;
    if (std.math.isNan(re) and std.math.isNan(im)) {
        const inf = std.math.inf(f64);
        if (c == 0 and d == 0 and (!std.math.isNan(a) or !std.math.isNan(b))) {
            re = std.math.copysign(inf, c) * a;
            im = std.math.copysign(inf, c) * b;
        } else if ((std.math.isInf(a) or std.math.isInf(b)) and std.math.isFinite(c) and std.math.isFinite(d)) {
            a = std.math.copysign(@as(f64, if (std.math.isInf(a)) 1 else 0), a);
            b = std.math.copysign(@as(f64, if (std.math.isInf(b)) 1 else 0), b);
            re = inf * (a * c + b * d);
            im = inf * (b * c - a * d);
        } else if ((std.math.isInf(c) or std.math.isInf(d)) and std.math.isFinite(a) and std.math.isFinite(b)) {
            c = std.math.copysign(@as(f64, if (std.math.isInf(c)) 1 else 0), c);
            d = std.math.copysign(@as(f64, if (std.math.isInf(d)) 1 else 0), d);
            re = 0.0 * (a * c + b * d);
            im = 0.0 * (b * c - a * d);
        }
    }
    return C.init(@floatCast(re), @floatCast(im));
}

pub fn cisnan(z: C) bool {
    return std.math.isNan(z.re) or std.math.isNan(z.im);
}

/// MLX's complex log1p (base_simd.h).
pub fn clog1p(z: C) C {
    const x = z.re;
    const y = z.im;
    const zabs = cabs(z);
    const theta = libm.atan2f(y, x + 1);
    if (zabs < 0.5) {
        const r = x * (2 + x) + y * y;
        if (r == 0) return C.init(x, theta);
        return C.init(0.5 * libm.log1pf(r), theta);
    }
    return C.init(libm.logf(libm.hypotf(x + 1, y)), theta);
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
    try std.testing.expectEqual(@as(i32, 0), powInt(i32, 1, -1));
    try std.testing.expectEqual(@as(i32, 7), remInt(i32, 7, 0));
    try std.testing.expectEqual(@as(i32, 1024), powInt(i32, 2, 10));
    try std.testing.expectEqual(@as(f32, 2), rint(@as(f32, 2.5)));
    try std.testing.expectEqual(@as(f32, -4), rint(@as(f32, -3.5)));
}

test "MLX's float32 approximations at their edges" {
    try std.testing.expect(std.math.isPositiveInf(mlxExp(88.5)));
    try std.testing.expectEqual(@as(f32, 0), mlxExp(-88.5));
    try std.testing.expect(std.math.isNan(mlxExp(std.math.nan(f32))));
    try std.testing.expectApproxEqRel(@as(f32, 2.7182817), mlxExp(1), 1e-6);
    try std.testing.expectApproxEqAbs(@as(f32, 0.84147098), mlxSinCos(true, 1), 1e-6);
    try std.testing.expectApproxEqAbs(@as(f32, 0.54030231), mlxSinCos(false, 1), 1e-6);
    try std.testing.expectApproxEqAbs(@as(f32, 0.84270079), mlxErf(1), 1e-6);
    try std.testing.expectApproxEqAbs(@as(f32, 1), mlxErfinv(0.84270079), 1e-5);
}

test "complex division follows C99 Annex G" {
    const q = cdiv(C.init(1, 0), C.init(0, 0));
    try std.testing.expect(std.math.isPositiveInf(q.re));
    const r = cdiv(C.init(6, 8), C.init(3, 4));
    try std.testing.expectEqual(@as(f32, 2), r.re);
    try std.testing.expectEqual(@as(f32, 0), r.im);
}

test "vector sin/cos equal the scalar ones bit for bit" {
    var xs: [16]f32 = undefined;
    for (&xs, 0..) |*x, i| x.* = @as(f32, @floatFromInt(i)) * 0.77 - 6.1;
    inline for (.{ true, false }) |sine| {
        var k: usize = 0;
        while (k < 16) : (k += 8) {
            const v: @Vector(8, f32) = xs[k..][0..8].*;
            try std.testing.expect(sinCosVectorOk(8, v));
            const r: [8]f32 = mlxSinCosV(sine, 8, v);
            for (0..8) |j| try std.testing.expectEqual(mlxSinCos(sine, xs[k + j]), r[j]);
        }
    }
}
