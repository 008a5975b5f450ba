//! float16 and bfloat16 conversions, written out bit by bit so that their rounding
//! (round to nearest, ties to even), NaN, infinity and subnormal handling are explicit
//! and identical on every target, whatever the compiler lowers `@floatCast` to.
//!
//! Non-NaN results match NumPy's float16 and ml_dtypes' bfloat16 bit for bit. NaN results
//! are MLX's on x86-64 (mlx-cpu 0.32.4), where its half types are software:
//!   float16 -> float32   sign | quiet NaN | payload << 13 (a signalling NaN is quietened)
//!   float32 -> float16   sign | 0x7d00, whatever the payload
//!   float32 -> bfloat16  0x7fc0, sign dropped
//!   bfloat16 -> float32  the bits << 16, unchanged
//! (test/half.test.ts checks all of these against NumPy, ml_dtypes and MLX.)
const std = @import("std");

/// float16 bits to float32 (exact: every float16 is a float32).
pub fn f16ToF32(h: u16) f32 {
    const sign: u32 = @as(u32, h & 0x8000) << 16;
    const exp: u32 = (h >> 10) & 0x1f;
    const man: u32 = h & 0x3ff;
    var bits: u32 = undefined;
    if (exp == 0x1f) {
        // Infinity, or NaN: keep the sign and payload, set the quiet bit (as MLX does).
        bits = sign | 0x7f80_0000 | (man << 13) | (if (man != 0) @as(u32, 0x40_0000) else 0);
    } else if (exp != 0) {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {
        // Subnormal: value = man * 2^-24. Normalise the mantissa.
        var m = man;
        var e: u32 = 127 - 15 + 1;
        while (m & 0x400 == 0) {
            m <<= 1;
            e -= 1;
        }
        bits = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
    return @bitCast(bits);
}

/// float32 to float16 bits, round to nearest even; overflow gives infinity, NaN gives sign | 0x7d00 (MLX's NaN).
pub fn f32ToF16(f: f32) u16 {
    const x: u32 = @bitCast(f);
    const sign: u16 = @intCast((x >> 16) & 0x8000);
    const exp: i32 = @intCast((x >> 23) & 0xff);
    const man: u32 = x & 0x7f_ffff;
    if (exp == 0xff) {
        if (man == 0) return sign | 0x7c00;
        return sign | 0x7d00; // NaN: MLX's, payload dropped

    }
    const e = exp - 127 + 15; // biased float16 exponent
    if (e >= 0x1f) return sign | 0x7c00;
    if (e <= 0) {
        // Result is subnormal or zero: shift the full mantissa (with implicit 1) right.
        if (e < -10) return sign; // below half of the smallest subnormal: rounds to zero
        const full = man | 0x80_0000;
        const shift: u5 = @intCast(14 - e); // 13 + (1 - e)
        var r: u32 = full >> shift;
        const rem = full & ((@as(u32, 1) << shift) - 1);
        const half = @as(u32, 1) << (shift - 1);
        if (rem > half or (rem == half and (r & 1) == 1)) r += 1;
        return sign | @as(u16, @intCast(r));
    }
    var r: u32 = (@as(u32, @intCast(e)) << 10) | (man >> 13);
    const rem = man & 0x1fff;
    if (rem > 0x1000 or (rem == 0x1000 and (r & 1) == 1)) r += 1; // may carry into the exponent, up to infinity
    return sign | @as(u16, @intCast(r));
}

/// bfloat16 bits to float32 (exact).
pub fn bf16ToF32(h: u16) f32 {
    return @bitCast(@as(u32, h) << 16);
}

/// float32 to bfloat16 bits, round to nearest even; NaN gives 0x7fc0 (MLX's NaN, sign dropped).
pub fn f32ToBf16(f: f32) u16 {
    const x: u32 = @bitCast(f);
    if ((x & 0x7fff_ffff) > 0x7f80_0000) return 0x7fc0;
    const lsb = (x >> 16) & 1;
    return @intCast((x +% 0x7fff +% lsb) >> 16);
}

/// float64 goes through float32 first, as MLX's half types do (their constructors take a float).
pub fn f64ToF16(f: f64) u16 {
    return f32ToF16(@floatCast(f));
}

pub fn f64ToBf16(f: f64) u16 {
    return f32ToBf16(@floatCast(f));
}

// ---------------------------------------------------------------------------------------------
// The same conversions on vectors of any lane count, with the same bits as the scalar ones above
// (float16 through the compiler's conversion: F16C where the target has it, compiler-rt's
// correctly rounded routines otherwise; NaNs set explicitly).

/// float16 bits to float32; a NaN keeps sign and payload and gets the quiet bit, as f16ToF32
/// (F16C sets it, the baseline's software conversion does not).
pub inline fn f16ToF32V(comptime N: usize, h: @Vector(N, u16)) @Vector(N, f32) {
    const U = @Vector(N, u32);
    const f: @Vector(N, f32) = @floatCast(@as(@Vector(N, f16), @bitCast(h)));
    const b: U = @bitCast(f);
    return @bitCast(@select(u32, f != f, b | @as(U, @splat(0x0040_0000)), b));
}

/// float32 to float16 bits, round to nearest even; NaN gives sign | 0x7d00, as f32ToF16.
pub inline fn f32ToF16V(comptime N: usize, v: @Vector(N, f32)) @Vector(N, u16) {
    const U = @Vector(N, u32);
    const h: @Vector(N, u16) = @bitCast(@as(@Vector(N, f16), @floatCast(v)));
    const b: U = @bitCast(v);
    const nan: @Vector(N, u16) = @truncate(((b >> @splat(16)) & @as(U, @splat(0x8000))) | @as(U, @splat(0x7d00)));
    return @select(u16, v != v, nan, h);
}

pub inline fn bf16ToF32V(comptime N: usize, h: @Vector(N, u16)) @Vector(N, f32) {
    const w: @Vector(N, u32) = h;
    return @bitCast(w << @splat(16));
}

/// float32 to bfloat16 bits, round to nearest even on the bits; NaN gives 0x7fc0, as f32ToBf16.
pub inline fn f32ToBf16V(comptime N: usize, v: @Vector(N, f32)) @Vector(N, u16) {
    const U = @Vector(N, u32);
    const b: U = @bitCast(v);
    const r: @Vector(N, u16) = @truncate((b +% @as(U, @splat(0x7fff)) +% ((b >> @splat(16)) & @as(U, @splat(1)))) >> @splat(16));
    const nan = (b & @as(U, @splat(0x7fff_ffff))) > @as(U, @splat(0x7f80_0000));
    return @select(u16, nan, @as(@Vector(N, u16), @splat(0x7fc0)), r);
}

test "f16 round trip of every finite pattern" {
    var h: u32 = 0;
    while (h < 0x10000) : (h += 1) {
        const v = f16ToF32(@intCast(h));
        const back = f32ToF16(v);
        if (std.math.isNan(v)) {
            try std.testing.expect((back & 0x7c00) == 0x7c00 and (back & 0x3ff) != 0);
        } else {
            try std.testing.expectEqual(@as(u16, @intCast(h)), back);
        }
        // Agrees with the compiler's own conversion for non-NaN values.
        if (!std.math.isNan(v)) try std.testing.expectEqual(@as(f32, @as(f16, @bitCast(@as(u16, @intCast(h))))), v);
    }
}

test "f16 and bf16 rounding ties to even" {
    // 1 + 2^-11 is halfway between 1 and the next float16: ties to even gives 1.
    try std.testing.expectEqual(@as(u16, 0x3c00), f32ToF16(1.0 + 1.0 / 2048.0));
    // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
    try std.testing.expectEqual(@as(u16, 0x3c02), f32ToF16(1.0 + 3.0 / 2048.0));
    try std.testing.expectEqual(@as(u16, 0x7c00), f32ToF16(65520.0)); // rounds to infinity
    try std.testing.expectEqual(@as(u16, 0x7bff), f32ToF16(65519.0));
    try std.testing.expectEqual(@as(u16, 0x0001), f32ToF16(std.math.pow(f32, 2, -24)));
    try std.testing.expectEqual(@as(u16, 0x0000), f32ToF16(std.math.pow(f32, 2, -25))); // tie to even (0)
    try std.testing.expectEqual(@as(u16, 0x3f80), f32ToBf16(1.0));
    try std.testing.expectEqual(@as(u16, 0x3f80), f32ToBf16(@bitCast(@as(u32, 0x3f80_8000)))); // tie, even stays
    try std.testing.expectEqual(@as(u16, 0x3f82), f32ToBf16(@bitCast(@as(u32, 0x3f81_8000)))); // tie, odd rounds up
    try std.testing.expectEqual(@as(u16, 0x7f80), f32ToBf16(std.math.inf(f32)));
    try std.testing.expect(std.math.isNan(bf16ToF32(f32ToBf16(std.math.nan(f32)))));
}

test "NaN conversions give MLX's bits (x86-64, mlx-cpu 0.32.4)" {
    const nan32 = struct {
        fn f(bits: u32) f32 {
            return @bitCast(bits);
        }
    }.f;
    try std.testing.expectEqual(@as(u32, 0x7fc0_2000), @as(u32, @bitCast(f16ToF32(0x7c01))));
    try std.testing.expectEqual(@as(u32, 0xffe0_0000), @as(u32, @bitCast(f16ToF32(0xfd00))));
    try std.testing.expectEqual(@as(u32, 0x7fff_e000), @as(u32, @bitCast(f16ToF32(0x7fff))));
    try std.testing.expectEqual(@as(u32, 0x7f80_0000), @as(u32, @bitCast(f16ToF32(0x7c00))));
    try std.testing.expectEqual(@as(u16, 0x7d00), f32ToF16(nan32(0x7f80_0001)));
    try std.testing.expectEqual(@as(u16, 0x7d00), f32ToF16(nan32(0x7fff_ffff)));
    try std.testing.expectEqual(@as(u16, 0xfd00), f32ToF16(nan32(0xffc0_0000)));
    try std.testing.expectEqual(@as(u16, 0x7fc0), f32ToBf16(nan32(0xff80_0001)));
    try std.testing.expectEqual(@as(u16, 0x7fc0), f32ToBf16(nan32(0x7fff_ffff)));
    try std.testing.expectEqual(@as(u32, 0x7f81_0000), @as(u32, @bitCast(bf16ToF32(0x7f81))));
}

test "vector conversions match the scalar ones bit for bit" {
    // Every float16/bfloat16 pattern up, and float32 patterns around every rounding boundary down.
    var h: u32 = 0;
    while (h < 0x10000) : (h += 8) {
        var hv: @Vector(8, u16) = undefined;
        inline for (0..8) |i| hv[i] = @intCast(h + i);
        const f = f16ToF32V(8, hv);
        const g = bf16ToF32V(8, hv);
        inline for (0..8) |i| {
            try std.testing.expectEqual(@as(u32, @bitCast(f16ToF32(hv[i]))), @as(u32, @bitCast(f[i])));
            try std.testing.expectEqual(@as(u32, @bitCast(bf16ToF32(hv[i]))), @as(u32, @bitCast(g[i])));
        }
    }
    var rng = std.Random.DefaultPrng.init(7);
    const r = rng.random();
    for (0..20000) |_| {
        var fv: @Vector(8, f32) = undefined;
        inline for (0..8) |i| {
            // half the lanes on a float16/bfloat16 halfway point or next to it, all exponents
            const base = r.int(u32);
            fv[i] = @bitCast(if (i % 2 == 0) base else (base & 0xffff_e000) | 0x1000 +% (r.int(u32) % 3) -% 1);
        }
        const a = f32ToF16V(8, fv);
        const b = f32ToBf16V(8, fv);
        inline for (0..8) |i| {
            try std.testing.expectEqual(f32ToF16(fv[i]), a[i]);
            try std.testing.expectEqual(f32ToBf16(fv[i]), b[i]);
        }
    }
}
