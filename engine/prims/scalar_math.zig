//! Scalar math the std library lacks or rounds differently from MLX: erf, erfinv, round half
//! to even, Python-style floor division and remainder, integer power, logaddexp, and complex
//! helpers; vector (@Vector) forms of MLX's float32 approximations, bit-identical to the scalar
//! ones; and our own vector float32 transcendentals (tanh, log2/log10/log1p, expm1, sinh, cosh,
//! tan, the inverse trigonometric and hyperbolic functions), each with its error bound.
//! Used by the elementwise kernels (float16/bfloat16 compute through float32).
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

/// mlxExp on a vector of lanes: the same operations in the same order, bit-identical for every
/// input (NaN, infinities and the +-88 cut-offs included). The scalar rounds x + 0.5 in float64,
/// where it is exact; here floor(x + 0.5) is floor(x), plus one when x - floor(x) >= 0.5 (that
/// difference is exact whenever it matters, see the test).
pub fn mlxExpV(comptime N: comptime_int, x_init: @Vector(N, f32)) @Vector(N, f32) {
    const V = @Vector(N, f32);
    const I = @Vector(N, i32);
    // Clamp first so the integer conversion below never sees NaN or a huge value; the lanes
    // this changes are replaced by the selects at the end.
    const finite = @select(f32, x_init != x_init, @as(V, @splat(0)), x_init);
    const xc = @max(@min(finite, @as(V, @splat(88.0))), @as(V, @splat(-88.0)));
    var x = xc * @as(V, @splat(1.442695));
    const fl = @floor(x);
    const ipart = fl + @select(f32, x - fl >= @as(V, @splat(0.5)), @as(V, @splat(1)), @as(V, @splat(0)));
    const fpart = x - ipart;
    x = @splat(1.535336188319500e-4);
    x = @mulAdd(V, x, fpart, @splat(1.339887440266574e-3));
    x = @mulAdd(V, x, fpart, @splat(9.618437357674640e-3));
    x = @mulAdd(V, x, fpart, @splat(5.550332471162809e-2));
    x = @mulAdd(V, x, fpart, @splat(2.402264791363012e-1));
    x = @mulAdd(V, x, fpart, @splat(6.931472028550421e-1));
    x = @mulAdd(V, x, fpart, @splat(1.000000000000000));
    const ii: I = @intFromFloat(ipart);
    const epart: I = (ii +% @as(I, @splat(127))) << @splat(23);
    var r = @as(V, @bitCast(epart)) * x;
    r = @select(f32, x_init > @as(V, @splat(88.0)), @as(V, @splat(std.math.inf(f32))), r);
    r = @select(f32, x_init < @as(V, @splat(-88.0)), @as(V, @splat(0)), r);
    return @select(f32, x_init != x_init, x_init, r);
}

/// mlxErf on a vector of lanes, bit-identical to the scalar.
pub fn mlxErfV(comptime N: comptime_int, v: @Vector(N, f32)) @Vector(N, f32) {
    const V = @Vector(N, f32);
    const one: V = @splat(1.0);
    const t = one / @mulAdd(V, @splat(0.3275911), @abs(v), one);
    var r = @mulAdd(V, @splat(1.061405429), t, @splat(-1.453152027));
    r = @mulAdd(V, r, t, @splat(1.421413741));
    r = @mulAdd(V, r, t, @splat(-0.284496736));
    r = @mulAdd(V, r, t, @splat(0.254829592));
    const e = -mlxExpV(N, -v * v);
    const result = @mulAdd(V, e * t, r, one);
    return @select(f32, v != v, erfNanV(N, v), @select(f32, v > @as(V, @splat(0)), result, -result));
}

/// erf of a NaN: the NaN quieted, with its sign set (MLX's result on x86-64). Explicit, because
/// the sign a NaN picks up through the formula depends on instruction choice (with or without
/// FMA), and every CPU level must give the same bits.
fn erfNanV(comptime N: comptime_int, v: @Vector(N, f32)) @Vector(N, f32) {
    return @bitCast(@as(@Vector(N, u32), @bitCast(v)) | @as(@Vector(N, u32), @splat(0xffc0_0000)));
}

/// rint (round half to even) on a vector of lanes, the same formula as the scalar `rint`.
pub fn rintV(comptime N: comptime_int, x: @Vector(N, f32)) @Vector(N, f32) {
    const V = @Vector(N, f32);
    const tie = @abs(x - @trunc(x)) == @as(V, @splat(0.5));
    return @select(f32, tie, @as(V, @splat(2)) * @round(x / @as(V, @splat(2))), @round(x));
}

/// tanh in float32 on a vector of lanes (ours: MLX calls the C library's tanhf, one value at a
/// time). Error bound: at most 0.66 ulp from the exact tanh over every float32 input (measured
/// exhaustively against float64 tanh: worst 0.653 ulp, at 0x3f0b1dc3; glibc 2.36's tanhf errs by
/// up to 2.08 ulp on the same sweep). Exact at +-0 (sign kept) and on subnormals (tanh x = x
/// there), +-1 from |x| >= 9.011 (where tanh rounds to 1) and at +-inf, NaN in gives NaN out.
///
///   |x| < 0.4: tanh x = x + x^3 P(x^2), P of degree 3: a minimax fit of (tanh x - x)/x^3
///     (relative error of the result below 1.8e-9) derived for this code by a Remez exchange.
///   else: tanh |x| = 1 - 2/(e^(2|x|) + 1) with 2|x| clamped to 18.5. e^y = 2^k e^r with
///     k = round(y/ln 2), r = y - k ln 2 (Cody-Waite: ln 2 split in two floats, |r| <= ln(2)/2),
///     e^r = 1 + r + r^2 Q(r), Q of degree 4 (minimax, relative error 3.1e-9). e^r, e^y + 1 and
///     the quotient are carried as unevaluated sums of two floats (exact two-sum steps and one
///     Newton correction of 2/d), so only the final 1 - q rounds at full weight.
pub fn tanhV(comptime N: comptime_int, x: @Vector(N, f32)) @Vector(N, f32) {
    const V = @Vector(N, f32);
    const U = @Vector(N, u32);
    const ax = @abs(x);
    const is_small = ax < @as(V, @splat(0.4));
    // Each formula only when some lane needs it (inputs tend to come in runs).
    var mag: V = undefined;
    if (@reduce(.Or, is_small)) mag = tanhSmall(N, ax);
    if (!@reduce(.And, is_small)) mag = @select(f32, is_small, mag, tanhLarge(N, ax));
    const sign = @as(U, @bitCast(x)) & @as(U, @splat(0x8000_0000));
    const res: V = @bitCast(@as(U, @bitCast(mag)) | sign);
    return @select(f32, x != x, x, res);
}

/// tanh for 0 <= ax < 0.4: ax + ax^3 P(ax^2).
inline fn tanhSmall(comptime N: comptime_int, ax: @Vector(N, f32)) @Vector(N, f32) {
    const V = @Vector(N, f32);
    const s = ax * ax;
    var p: V = @splat(0.01874406263232231);
    p = @mulAdd(V, p, s, @splat(-0.05356193706393242));
    p = @mulAdd(V, p, s, @splat(0.1333121359348297));
    p = @mulAdd(V, p, s, @splat(-0.33333298563957214));
    return @mulAdd(V, ax * s, p, ax);
}

/// tanh for ax >= 0.4 (NaN lanes give a finite value): 1 - 2/(e^(2 ax) + 1).
inline fn tanhLarge(comptime N: comptime_int, ax: @Vector(N, f32)) @Vector(N, f32) {
    const V = @Vector(N, f32);
    const U = @Vector(N, u32);
    const one: V = @splat(1.0);
    // @min keeps NaN lanes finite (vminps returns the second operand for NaN).
    const y = @min(ax, @as(V, @splat(9.25))) * @as(V, @splat(2.0));
    const k = @round(y * @as(V, @splat(1.4426950216293335)));
    var r = @mulAdd(V, k, @splat(-0.6931471824645996), y);
    r = @mulAdd(V, k, @splat(1.9046542121259336e-09), r);
    var q: V = @splat(0.001381461275741458);
    q = @mulAdd(V, q, r, @splat(0.008368710055947304));
    q = @mulAdd(V, q, r, @splat(0.04166838899254799));
    q = @mulAdd(V, q, r, @splat(0.1666652113199234));
    q = @mulAdd(V, q, r, @splat(0.4999999403953552));
    // e^r = eh + el (1 + r split exactly, then renormalised).
    const e0 = one + r;
    const e1 = @mulAdd(V, r * r, q, (one - e0) + r);
    const eh = e0 + e1;
    const el = (e0 - eh) + e1;
    // e^y = Eh + El: scaled by 2^k through the exponent bits (0 <= k <= 27: no overflow).
    const ki: @Vector(N, i32) = @intFromFloat(k);
    const scale: U = @as(U, @bitCast(ki)) << @splat(23);
    const Eh: V = @bitCast(@as(U, @bitCast(eh)) +% scale);
    const El = el * @as(V, @bitCast(@as(U, @bitCast(one)) +% scale));
    // d = e^y + 1 = dh + dl (Eh >= 1), q = 2/d = q0 + corr, result 1 - q0 - corr.
    const dh = Eh + one;
    const dl = ((Eh - dh) + one) + El;
    const q0 = @as(V, @splat(2.0)) / dh;
    const corr = (@mulAdd(V, -q0, dh, @splat(2.0)) - q0 * dl) * (q0 * @as(V, @splat(0.5)));
    const s1 = one - q0;
    const s1e = (one - s1) - q0;
    return s1 + (s1e - corr);
}

// ---------------------------------------------------------------------------------------------
// float32 transcendentals on vectors of lanes, computed in float64 (ours; MLX calls the C
// library's float functions one value at a time). Every float32 is a normal float64, so the
// cores below need no subnormal cases; their polynomials are minimax fits derived for this code
// (a Remez exchange in 40-digit arithmetic) with relative errors below 2^-37, so the one
// rounding to float32 at the end dominates: each function is within 0.501 ulp of the exact
// value over all float32 inputs (checked exhaustively against the C library's float64
// functions; see the tests for the dense sweeps the unit tests repeat). NaN in gives NaN out.

fn VD(comptime N: comptime_int) type {
    return @Vector(N, f64);
}

inline fn sd(comptime N: comptime_int, v: f64) VD(N) {
    return @splat(v);
}

/// x = 2^e m with m in [sqrt(1/2), sqrt(2)), for x > 0 finite and normal; returns e and m - 1.
inline fn logReduce(comptime N: comptime_int, x: VD(N)) struct { e: VD(N), f: VD(N) } {
    const I = @Vector(N, i64);
    const bits: I = @bitCast(x);
    const e = (bits -% @as(I, @splat(0x3fe6a09e667f3bcd))) >> @splat(52);
    const m: VD(N) = @bitCast(bits -% (e << @splat(52)));
    return .{ .e = @floatFromInt(e), .f = m - sd(N, 1) };
}

/// ln(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1]: 2 atanh(s), s = f/(2 + f), as
/// 2s + 2s z R(z), z = s^2 <= 0.0295, R of degree 3 (weighted error 4.8e-12).
inline fn log1pReduced(comptime N: comptime_int, f: VD(N)) VD(N) {
    const V = VD(N);
    const s2 = sd(N, 2) * f / (sd(N, 2) + f);
    const z = s2 * s2 * sd(N, 0.25);
    var r: V = sd(N, 0.1179114652739655);
    r = @mulAdd(V, r, z, sd(N, 0.1426865076218291));
    r = @mulAdd(V, r, z, sd(N, 0.20000167646796743));
    r = @mulAdd(V, r, z, sd(N, 0.3333333282252046));
    return @mulAdd(V, s2 * z, r, s2);
}

/// ln(1 + y) for float64 lanes y > -1 finite (callers replace the other lanes).
inline fn log1pD(comptime N: comptime_int, y: VD(N)) VD(N) {
    const u = sd(N, 1) + y;
    const p = logReduce(N, u);
    // Where u is in [sqrt(1/2), sqrt(2)), y itself is m - 1, exactly (1 + y may have rounded).
    const near = p.e == sd(N, 0);
    const l = log1pReduced(N, @select(f64, near, y, p.f));
    // (Near 0 without adding 0 ln 2, which would turn -0 into +0.)
    return @select(f64, near, l, @mulAdd(VD(N), p.e, sd(N, 0.6931471805599453), l));
}

/// e^x - 1 for float64 lanes with |x| <= 110: 2^k (1 + p) - 1 with k = round(x / ln 2),
/// r = x - k ln 2 (two FMA steps, ln 2 in two parts), p = r + r^2/2 + r^3 P(r), P of degree 5
/// (relative error 5.5e-12 on |r| <= ln(2)/2).
inline fn expm1D(comptime N: comptime_int, x: VD(N)) VD(N) {
    const V = VD(N);
    const k = @round(x * sd(N, 1.4426950408889634));
    var r = @mulAdd(V, -k, sd(N, 0.6931471805599453), x);
    r = @mulAdd(V, -k, sd(N, 2.3190468138462996e-17), r);
    var q: V = sd(N, 2.4809407975694984e-05);
    q = @mulAdd(V, q, r, sd(N, 0.00019904229330123887));
    q = @mulAdd(V, q, r, sd(N, 0.00138889465122613));
    q = @mulAdd(V, q, r, sd(N, 0.008333290270956499));
    q = @mulAdd(V, q, r, sd(N, 0.04166666631679854));
    q = @mulAdd(V, q, r, sd(N, 0.16666666749020576));
    const p = @mulAdd(V, r * r, @mulAdd(V, r, q, sd(N, 0.5)), r);
    const ki: @Vector(N, i64) = @intFromFloat(k);
    const two_k: V = @bitCast((ki +% @as(@Vector(N, i64), @splat(1023))) << @splat(52));
    return @mulAdd(V, two_k, p, two_k - sd(N, 1));
}

/// atan for float64 lanes (infinities included): 1/|x| above 1, then atan(t) = pi/4 +
/// atan((t - 1)/(t + 1)) above tan(pi/8), then t + t^3 P(t^2), P of degree 7 (relative error
/// 2.8e-14 on |t| <= tan(pi/8)).
inline fn atanD(comptime N: comptime_int, x: VD(N)) VD(N) {
    const V = VD(N);
    const a = @abs(x);
    const inv = a > sd(N, 1);
    const a1 = @select(f64, inv, sd(N, 1) / a, a);
    const shift = a1 > sd(N, 0.41421356237309503);
    const t = @select(f64, shift, (a1 - sd(N, 1)) / (a1 + sd(N, 1)), a1);
    const z = t * t;
    var p: V = sd(N, 0.030864534458112484);
    p = @mulAdd(V, p, z, sd(N, -0.05889012399376625));
    p = @mulAdd(V, p, z, sd(N, 0.07567978081264144));
    p = @mulAdd(V, p, z, sd(N, -0.09079057634797487));
    p = @mulAdd(V, p, z, sd(N, 0.11110443730162445));
    p = @mulAdd(V, p, z, sd(N, -0.14285693334635108));
    p = @mulAdd(V, p, z, sd(N, 0.19999999680443492));
    p = @mulAdd(V, p, z, sd(N, -0.33333333331662485));
    var r = @mulAdd(V, t * z, p, t);
    r = @select(f64, shift, sd(N, std.math.pi / 4.0) + r, r);
    r = @select(f64, inv, sd(N, std.math.pi / 2.0) - r, r);
    return signOf(N, x, r);
}

inline fn widen(comptime N: comptime_int, x: @Vector(N, f32)) VD(N) {
    return @floatCast(x);
}

/// r with the sign of x (odd functions: -0 gives -0).
inline fn signOf(comptime N: comptime_int, x: VD(N), r: VD(N)) VD(N) {
    const I = @Vector(N, i64);
    return @select(f64, @as(I, @bitCast(x)) < @as(I, @splat(0)), -@abs(r), @abs(r));
}

inline fn narrow(comptime N: comptime_int, x_in: @Vector(N, f32), r: VD(N)) @Vector(N, f32) {
    return @select(f32, x_in != x_in, x_in, @as(@Vector(N, f32), @floatCast(r)));
}

/// NaN for the lanes outside a function's domain: the x86 default NaN (sign set), as the C
/// library's functions return it.
inline fn domainNan(comptime N: comptime_int, bad: @Vector(N, bool), r: VD(N)) VD(N) {
    return @select(f64, bad, sd(N, -std.math.nan(f64)), r);
}

pub const LogBase = enum { e, two, ten };

/// log, log2 and log10 of float32 lanes (in float64: e ln 2 + ln m, e + ln(m)/ln 2, ...).
pub fn logV(comptime base: LogBase, comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const V = VD(N);
    const x = widen(N, x_in);
    const inf = sd(N, std.math.inf(f64));
    const ok = (x > sd(N, 0)) & (x < inf);
    const p = logReduce(N, @select(f64, ok, x, sd(N, 1)));
    const lm = log1pReduced(N, p.f);
    var r: V = switch (base) {
        .e => @mulAdd(V, p.e, sd(N, 0.6931471805599453), lm),
        .two => @mulAdd(V, lm, sd(N, 1.4426950408889634), p.e),
        .ten => @mulAdd(V, p.e, sd(N, 0.3010299956639812), lm * sd(N, 0.4342944819032518)),
    };
    r = @select(f64, x == sd(N, 0), -inf, r);
    r = @select(f64, x == inf, inf, r);
    return narrow(N, x_in, domainNan(N, x < sd(N, 0), r));
}

pub fn log1pV(comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const x = widen(N, x_in);
    const inf = sd(N, std.math.inf(f64));
    const ok = (x > sd(N, -1)) & (x < inf);
    var r = log1pD(N, @select(f64, ok, x, sd(N, 0)));
    r = @select(f64, x == sd(N, -1), -inf, r);
    r = @select(f64, x == inf, inf, r);
    return narrow(N, x_in, domainNan(N, x < sd(N, -1), r));
}

pub fn expm1V(comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    // Clamped: past 100 the float32 result is inf, below -110 it is -1 (k stays in range).
    const x = @max(@min(widen(N, x_in), sd(N, 100)), sd(N, -110));
    return narrow(N, x_in, @select(f64, x == sd(N, 0), x, expm1D(N, x)));
}

/// sinh |x| = (E + E/(E + 1))/2 with E = e^|x| - 1 (no cancellation near 0); cosh |x| =
/// (e^|x| + e^-|x|)/2. |x| is clamped at 100, where the float32 result is already inf.
pub fn sinhCoshV(comptime sine: bool, comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const x = widen(N, x_in);
    const a = @min(@abs(x), sd(N, 100));
    const em1 = expm1D(N, a);
    if (sine) {
        const r = sd(N, 0.5) * (em1 + em1 / (em1 + sd(N, 1)));
        return narrow(N, x_in, signOf(N, x, r));
    }
    const e = em1 + sd(N, 1);
    return narrow(N, x_in, sd(N, 0.5) * (e + sd(N, 1) / e));
}

pub fn atanV(comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    return narrow(N, x_in, atanD(N, widen(N, x_in)));
}

/// asin x = atan(x / sqrt((1 - x)(1 + x))) (exact products in float64); acos x = pi/2 - asin x.
pub fn asinAcosV(comptime sine: bool, comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const x = widen(N, x_in);
    const bad = @abs(x) > sd(N, 1);
    const xs = @select(f64, bad, sd(N, 0), x);
    const as = atanD(N, xs / @sqrt((sd(N, 1) - xs) * (sd(N, 1) + xs)));
    const r = if (sine) as else sd(N, std.math.pi / 2.0) - as;
    return narrow(N, x_in, domainNan(N, bad, r));
}

/// asinh |x| = log1p(|x| + x^2/(1 + sqrt(1 + x^2))) (no overflow: x^2 < 2^256 in float64).
pub fn asinhV(comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const x = widen(N, x_in);
    const inf = sd(N, std.math.inf(f64));
    const a = @abs(x);
    const fin = a < inf;
    const af = @select(f64, fin, a, sd(N, 0));
    var r = log1pD(N, af + af * af / (sd(N, 1) + @sqrt(sd(N, 1) + af * af)));
    r = @select(f64, fin, r, inf);
    return narrow(N, x_in, signOf(N, x, r));
}

/// acosh x = log1p(t + sqrt(t (x + 1))), t = x - 1 (exact), for x >= 1.
pub fn acoshV(comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const x = widen(N, x_in);
    const inf = sd(N, std.math.inf(f64));
    const ok = (x >= sd(N, 1)) & (x < inf);
    const xs = @select(f64, ok, x, sd(N, 1));
    const t = xs - sd(N, 1);
    var r = log1pD(N, t + @sqrt(t * (xs + sd(N, 1))));
    r = @select(f64, x == inf, inf, r);
    return narrow(N, x_in, domainNan(N, x < sd(N, 1), r));
}

/// atanh x = log1p(2|x|/(1 - |x|))/2 for |x| < 1, +-inf at +-1.
pub fn atanhV(comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const x = widen(N, x_in);
    const a = @abs(x);
    const ok = a < sd(N, 1);
    const as = @select(f64, ok, a, sd(N, 0));
    var r = sd(N, 0.5) * log1pD(N, sd(N, 2) * as / (sd(N, 1) - as));
    r = @select(f64, a == sd(N, 1), sd(N, std.math.inf(f64)), r);
    return narrow(N, x_in, domainNan(N, a > sd(N, 1), signOf(N, x, r)));
}

/// tan x for |x| <= 2^20: x = k pi/2 + r (two FMA steps, pi/2 in two parts: |r| <= pi/4 with a
/// relative error below 2^-50 for every float32 in range), then sin r / cos r, or -cos r / sin r
/// for odd k: sin r = r + r^3 S(r^2), cos r = 1 - r^2/2 + r^4 C(r^2), S and C of degree 4
/// (relative errors 5e-15 and 1e-16). Lanes past 2^20, infinities and NaN: the C library's tanf.
pub fn tanV(comptime N: comptime_int, x_in: @Vector(N, f32)) @Vector(N, f32) {
    const V = VD(N);
    const ok = @abs(x_in) <= @as(@Vector(N, f32), @splat(1048576.0)); // false for NaN
    if (!@reduce(.And, ok)) {
        const xs: [N]f32 = x_in;
        var out: [N]f32 = undefined;
        const fast: [N]f32 = tanV(N, @select(f32, ok, x_in, @as(@Vector(N, f32), @splat(0))));
        for (&out, xs, fast, 0..) |*o, v, f, i| o.* = if (ok[i]) f else c1("tan", f32, v);
        return out;
    }
    const x = widen(N, x_in);
    const k = @round(x * sd(N, 0.6366197723675814));
    var r = @mulAdd(V, -k, sd(N, 1.5707963267948966), x);
    r = @mulAdd(V, -k, sd(N, 6.123233995736766e-17), r);
    const z = r * r;
    var sp: V = sd(N, -2.476042542078327e-08);
    sp = @mulAdd(V, sp, z, sd(N, 2.755533925986e-06));
    sp = @mulAdd(V, sp, z, sd(N, -0.00019841263726794268));
    sp = @mulAdd(V, sp, z, sd(N, 0.008333333325074455));
    sp = @mulAdd(V, sp, z, sd(N, -0.16666666666630334));
    const sn = @mulAdd(V, r * z, sp, r);
    var cp: V = sd(N, 2.0645095711196228e-09);
    cp = @mulAdd(V, cp, z, sd(N, -2.7555522749414966e-07));
    cp = @mulAdd(V, cp, z, sd(N, 2.480158070532978e-05));
    cp = @mulAdd(V, cp, z, sd(N, -0.0013888888877607239));
    cp = @mulAdd(V, cp, z, sd(N, 0.041666666666596505));
    const cs = @mulAdd(V, z * z, cp, @mulAdd(V, z, sd(N, -0.5), sd(N, 1)));
    const ki: @Vector(N, i64) = @intFromFloat(k);
    const odd = (ki & @as(@Vector(N, i64), @splat(1))) != @as(@Vector(N, i64), @splat(0));
    const t = @select(f64, odd, -cs / sn, sn / cs);
    return @floatCast(@select(f64, x == sd(N, 0), x, t));
}

/// MLX's erf (Abramowitz-Stegun 7.1.26 with its exp), in float32.
pub fn mlxErf(v: f32) f32 {
    const t = 1.0 / @mulAdd(f32, 0.3275911, @abs(v), 1.0);
    var r = @mulAdd(f32, 1.061405429, t, -1.453152027);
    r = @mulAdd(f32, r, t, 1.421413741);
    r = @mulAdd(f32, r, t, -0.284496736);
    r = @mulAdd(f32, r, t, 0.254829592);
    if (v != v) return @bitCast(@as(u32, @bitCast(v)) | 0xffc0_0000); // as erfNanV
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

/// Distance from `r` to the exact value `t` in units in the last place of float32 at t.
fn ulpsOff(r: f32, t: f64) f64 {
    const at = @abs(t);
    var e: i32 = if (at == 0) -149 else @as(i32, @intFromFloat(@floor(std.math.log2(at)))) - 23;
    if (e < -149) e = -149;
    return @abs(@as(f64, r) - t) / std.math.ldexp(@as(f64, 1), e);
}

test "tanhV: within 0.66 ulp of the exact value, exact at the edges" {
    // A dense sweep of float32 bit patterns (every 97th, both signs) from the subnormals to
    // past the saturation point, against the C library's float64 tanh (off by < 1e-16).
    const N = 16;
    var worst: f64 = 0;
    var bits: u32 = 0;
    while (bits < 0x4180_0000) : (bits += N * 97) { // up to 16.0
        var xs: [N]f32 = undefined;
        for (&xs, 0..) |*x, i| {
            const b = bits + @as(u32, @intCast(i)) * 97;
            x.* = @bitCast(if (i % 2 == 0) b else b | 0x8000_0000);
        }
        const r: [N]f32 = tanhV(N, xs);
        for (xs, r) |x, y| worst = @max(worst, ulpsOff(y, c1("tanh", f64, x)));
    }
    try std.testing.expect(worst <= 0.66);
    const inf = std.math.inf(f32);
    const edge = [N]f32{ 0.0, -0.0, 1e-45, -1e-45, 1e-38, 0.39999998, 0.4, 9.010913, 9.5, 100, inf, -inf, std.math.nan(f32), -std.math.nan(f32), 88.8, -3e38 };
    const r: [N]f32 = tanhV(N, edge);
    try std.testing.expectEqual(@as(u32, 0), @as(u32, @bitCast(r[0])));
    try std.testing.expectEqual(@as(u32, 0x8000_0000), @as(u32, @bitCast(r[1])));
    try std.testing.expectEqual(@as(f32, 1e-45), r[2]);
    try std.testing.expectEqual(@as(f32, -1e-45), r[3]);
    try std.testing.expectEqual(@as(f32, 1e-38), r[4]);
    for (5..9) |i| try std.testing.expect(ulpsOff(r[i], c1("tanh", f64, edge[i])) <= 0.66);
    try std.testing.expectEqual(@as(f32, 1), r[8]);
    try std.testing.expectEqual(@as(f32, 1), r[9]);
    try std.testing.expectEqual(@as(f32, 1), r[10]);
    try std.testing.expectEqual(@as(f32, -1), r[11]);
    try std.testing.expect(std.math.isNan(r[12]) and std.math.isNan(r[13]));
    try std.testing.expectEqual(@as(f32, 1), r[14]);
    try std.testing.expectEqual(@as(f32, -1), r[15]);
    // Saturation: the largest float below 1 up to 9.0109..., then exactly 1.
    try std.testing.expectEqual(@as(f32, 0x1.fffffep-1), tanhV(1, @as(@Vector(1, f32), @splat(9.0)))[0]);
}

test "vector exp, erf and rint equal the scalar ones bit for bit" {
    // Every 4099th float32 pattern (NaNs, infinities, subnormals, both signs) and the points
    // where the scalar's float64 rounding of x + 0.5 matters (halfway cases of x log2 e).
    const N = 16;
    var hi: u64 = 0;
    while (hi < (1 << 32)) : (hi += N * 4099) {
        var xs: [N]f32 = undefined;
        for (&xs, 0..) |*x, i| x.* = @bitCast(@as(u32, @intCast((hi + i * 4099) & 0xffff_ffff)));
        const e: [N]f32 = mlxExpV(N, xs);
        const er: [N]f32 = mlxErfV(N, xs);
        const ri: [N]f32 = rintV(N, xs);
        for (0..N) |i| {
            // NaN bits follow instruction choices, which differ between this Debug build's scalar
            // code and the vector instructions (the ReleaseFast library matches bit for bit,
            // NaNs included: checked over all 2^32 inputs); any NaN is accepted for a NaN.
            if (std.math.isNan(xs[i])) {
                try std.testing.expect(std.math.isNan(e[i]) and std.math.isNan(er[i]) and std.math.isNan(ri[i]));
                continue;
            }
            try std.testing.expectEqual(@as(u32, @bitCast(mlxExp(xs[i]))), @as(u32, @bitCast(e[i])));
            try std.testing.expectEqual(@as(u32, @bitCast(mlxErf(xs[i]))), @as(u32, @bitCast(er[i])));
            try std.testing.expectEqual(@as(u32, @bitCast(rint(xs[i]))), @as(u32, @bitCast(ri[i])));
        }
    }
    var ks: [N]f32 = undefined;
    for (&ks, 0..) |*x, i| {
        // x * 1.442695 close to k + 1/2 from both sides.
        const k: f32 = @as(f32, @floatFromInt(i)) - 8.0 + 0.5;
        x.* = k / 1.442695;
    }
    inline for (.{ -2, -1, 0, 1, 2 }) |d| {
        var xs: [N]f32 = undefined;
        for (&xs, ks) |*x, k| x.* = @bitCast(@as(u32, @bitCast(k)) +% @as(u32, @bitCast(@as(i32, d))));
        const e: [N]f32 = mlxExpV(N, xs);
        for (0..N) |i| try std.testing.expectEqual(@as(u32, @bitCast(mlxExp(xs[i]))), @as(u32, @bitCast(e[i])));
    }
}

fn logEV(comptime n: comptime_int, x: @Vector(n, f32)) @Vector(n, f32) {
    return logV(.e, n, x);
}
fn log2V(comptime n: comptime_int, x: @Vector(n, f32)) @Vector(n, f32) {
    return logV(.two, n, x);
}
fn log10V(comptime n: comptime_int, x: @Vector(n, f32)) @Vector(n, f32) {
    return logV(.ten, n, x);
}
fn sinhV(comptime n: comptime_int, x: @Vector(n, f32)) @Vector(n, f32) {
    return sinhCoshV(true, n, x);
}
fn coshV(comptime n: comptime_int, x: @Vector(n, f32)) @Vector(n, f32) {
    return sinhCoshV(false, n, x);
}
fn asinV(comptime n: comptime_int, x: @Vector(n, f32)) @Vector(n, f32) {
    return asinAcosV(true, n, x);
}
fn acosV(comptime n: comptime_int, x: @Vector(n, f32)) @Vector(n, f32) {
    return asinAcosV(false, n, x);
}

/// Checks `vf` against the float64 C library function `name` (errors < 1e-16, negligible here)
/// over every 9973rd float32 bit pattern and a list of edge values: within `bound` ulp, NaN
/// exactly where the reference is NaN, infinities and signed zeros exactly.
fn checkAgainstF64(comptime name: []const u8, comptime vf: anytype, bound: f64, max_abs: f32) !void {
    const N = 16;
    const inf = std.math.inf(f32);
    const edges = [_]f32{ 0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, -1.1754942e-38, 1e-30, -1e-30, 0.5, -0.5, 1, -1, 0x1.fffffep-1, -0x1.fffffep-1, 0x1.000002p0, 2, 88.72, 89.5, -88.72, -110, 1e20, -1e20, 3.4028235e38, -3.4028235e38, inf, -inf, std.math.nan(f32), 1048576, 1048577, 0.41421356, 1e-8, -1e-8 };
    var xs: [N]f32 = undefined;
    var filled: usize = 0;
    var bits: u64 = 0;
    var edge_i: usize = 0;
    while (true) {
        if (edge_i < edges.len) {
            xs[filled] = edges[edge_i];
            edge_i += 1;
        } else if (bits < (1 << 32)) {
            xs[filled] = @bitCast(@as(u32, @intCast(bits)));
            bits += 9973;
        } else if (filled == 0) break else {
            xs[filled] = 0;
        }
        filled += 1;
        if (filled < N) continue;
        filled = 0;
        const r: [N]f32 = vf(N, xs);
        for (xs, r) |x, y| {
            if (@abs(x) > max_abs) continue;
            const t = c1(name, f64, x);
            if (std.math.isNan(t)) {
                try std.testing.expect(std.math.isNan(y));
                continue;
            }
            try std.testing.expect(!std.math.isNan(y));
            const t32: f32 = @floatCast(t);
            if (std.math.isInf(t32) or t == 0) {
                if (@as(u32, @bitCast(t32)) != @as(u32, @bitCast(y))) {
                    std.debug.print("{s}({e}) = {e}, expected {e}\n", .{ name, x, y, t32 });
                    return error.TestUnexpectedResult;
                }
                continue;
            }
            const e = ulpsOff(y, t);
            if (e > bound) {
                std.debug.print("{s}({e}) = {e}: {d} ulp from {e}\n", .{ name, x, y, e, t });
                return error.TestUnexpectedResult;
            }
        }
        if (bits >= (1 << 32) and edge_i >= edges.len) break;
    }
}

test "vector float32 transcendentals stay within their stated bounds" {
    try checkAgainstF64("log", logEV, 0.501, std.math.inf(f32));
    try checkAgainstF64("log2", log2V, 0.501, std.math.inf(f32));
    try checkAgainstF64("log10", log10V, 0.501, std.math.inf(f32));
    try checkAgainstF64("log1p", log1pV, 0.501, std.math.inf(f32));
    try checkAgainstF64("expm1", expm1V, 0.501, std.math.inf(f32));
    try checkAgainstF64("sinh", sinhV, 0.501, std.math.inf(f32));
    try checkAgainstF64("cosh", coshV, 0.501, std.math.inf(f32));
    try checkAgainstF64("atan", atanV, 0.501, std.math.inf(f32));
    try checkAgainstF64("asin", asinV, 0.501, std.math.inf(f32));
    try checkAgainstF64("acos", acosV, 0.501, std.math.inf(f32));
    try checkAgainstF64("asinh", asinhV, 0.501, std.math.inf(f32));
    try checkAgainstF64("acosh", acoshV, 0.501, std.math.inf(f32));
    try checkAgainstF64("atanh", atanhV, 0.501, std.math.inf(f32));
    try checkAgainstF64("tanh", tanhV, 0.66, std.math.inf(f32));
    // tan: ours up to 2^20; past that the C library's tanf (up to 1.4 ulp), checked below.
    try checkAgainstF64("tan", tanV, 0.501, 1048576.0);
    var in_range: [16]f32 = undefined;
    for (&in_range, 0..) |*x, i| x.* = @as(f32, @floatFromInt(i)) * 65536.7 - 524288.3;
    const tr: [16]f32 = tanV(16, in_range);
    for (in_range, tr) |x, y| try std.testing.expect(ulpsOff(y, c1("tan", f64, x)) <= 0.501);
    const far = [16]f32{ 1e7, -1e7, 3e38, 1048577, std.math.inf(f32), std.math.nan(f32), 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    const fr: [16]f32 = tanV(16, far);
    for (far[0..4], fr[0..4]) |x, y| try std.testing.expectEqual(c1("tan", f32, x), y);
    try std.testing.expect(std.math.isNan(fr[4]) and std.math.isNan(fr[5]));
}
