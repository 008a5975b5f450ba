//! The quantized matrix product's kernels (prims/quantized.zig evalQmm): decoding rows of a
//! quantized matrix into float32, and the few-rows products that decode on the fly.
//!
//!  * `fast`: x @ W^T with affine codes of 1, 2, 4 or 8 bits (the LLM decode path): one group is
//!    a vector of W words, shifted once per code position, against a copy of x permuted to match
//!    (`fastPrep`); per group s * sum(q * x) + b * sum(x). An output that comes out non-finite
//!    (inf - inf from an infinite x, or sums that overflow) is recomputed as MLX's CPU kernel
//!    computes it: the sum of x * (s * q + b) in order of k.
//!  * `transposed` / `plain`: x @ W^T / x @ W for any format, W's rows decoded in chunks.
//!  * `decodeRows`: rows of W into a float32 block (the GEMM path of 16 rows of x and more), or
//!    into a block of the dequantize op's output dtype.
//!
//! In a portable build each runs in the kernel object of the CPU's level (engine/kernels.zig
//! exports `qmm_fast`, `qmm_t`, `qmm_n`, `qmm_decode` per level), so the decode path uses
//! AVX2/AVX-512 where the CPU has them. The objects see no engine state: the engine fills a
//! `QMat` (pointers to one batch item's codes, scales and biases, strides, format) and a context.
//! The native build calls the same code directly.
//!
//! Same bits at every level: no fused multiply-add anywhere (the baseline has no FMA, and a
//! software fmaf per lane would cost more than the whole product), vectors of fixed widths (16
//! lanes; the fast path's BW lanes depend on bits and group size only), and @reduce over them,
//! which is an ordered sum.
const std = @import("std");
const pool = @import("pool.zig");
const cpu = @import("cpu.zig");
const half = @import("half.zig");
const convert = @import("convert.zig");
const Dtype = @import("dtype.zig").Dtype;

pub const Mode = enum(u32) {
    affine = 0,
    mxfp4 = 1,
    mxfp8 = 2,
    nvfp4 = 3,
};

// ---------------------------------------------------------------------------------------------
// Element formats and loads

pub const fp4_values = [8]f32{ 0, 0.5, 1, 1.5, 2, 3, 4, 6 };

pub fn fromFp4(c: u32) f32 {
    const v = fp4_values[c & 7];
    return if (c & 8 != 0) -v else v;
}

/// E4M3 (fn: no infinities, 0x7f/0xff NaN) decoded.
pub fn fromE4m3(c: u32) f32 {
    const sign: f32 = if (c & 0x80 != 0) -1 else 1;
    const e = (c >> 3) & 15;
    const m = c & 7;
    if (e == 15 and m == 7) return @bitCast((c & 0x80) << 24 | 0x7ff00000); // MLX's NaN
    if (e == 0) return sign * @as(f32, @floatFromInt(m)) * 0x1p-9;
    return sign * std.math.ldexp(1.0 + @as(f32, @floatFromInt(m)) / 8.0, @as(i32, @intCast(e)) - 7);
}

pub fn fromE8m0(c: u32) f32 {
    if (c == 0) return @bitCast(@as(u32, 0x00400000));
    return @bitCast(c << 23);
}

/// Element i (may be negative) of a buffer of dtype D at p, as float32.
pub fn loadF32(comptime D: Dtype, p: [*]const u8, i: isize) f32 {
    const T = D.Type();
    const ptr: [*]const T = @ptrCast(@alignCast(p));
    const v = (ptr + @as(usize, @bitCast(i)))[0];
    return switch (D) {
        .float16 => half.f16ToF32(v.bits),
        .bfloat16 => half.bf16ToF32(v.bits),
        .float32 => v,
        .float64 => @floatCast(v),
        .uint8 => @floatFromInt(v),
        else => convert.cast(D, .float32, v),
    };
}

fn loadAny(dt: Dtype, p: [*]const u8, i: isize) f32 {
    return switch (dt) {
        inline else => |D| loadF32(D, p, i),
    };
}

/// v rounded to dtype dt and back (the arithmetic of a dtype narrower than float32).
pub fn roundTo(dt: Dtype, v: f32) f32 {
    return switch (dt) {
        .float16 => half.f16ToF32(half.f32ToF16(v)),
        .bfloat16 => half.bf16ToF32(half.f32ToBf16(v)),
        else => v,
    };
}

/// out[i] = element off + i * stride of a buffer of dtype dt, as float32 (one switch per row).
fn readRow(dt: Dtype, p: [*]const u8, off: isize, stride: isize, out: []f32) void {
    switch (dt) {
        inline .float32, .float16, .bfloat16 => |D| {
            for (out, 0..) |*v, i| v.* = loadF32(D, p, off + @as(isize, @intCast(i)) * stride);
        },
        else => for (out, 0..) |*v, i| {
            v.* = loadAny(dt, p, off + @as(isize, @intCast(i)) * stride);
        },
    }
}

// ---------------------------------------------------------------------------------------------
// A quantized matrix

/// One batch item of a quantized matrix across the kernel objects' C ABI: codes [rows, words]
/// (uint32), scales [rows, groups] and, for affine, biases, each given by the address of its
/// element (0, 0) and strides in elements (any strided view).
pub const QMat = extern struct {
    w: [*]const u32,
    s: [*]const u8,
    b: ?[*]const u8,
    w_rs: isize,
    w_cs: isize,
    s_rs: isize,
    s_cs: isize,
    b_rs: isize,
    b_cs: isize,
    mode: Mode,
    group_size: u32,
    bits: u32,
    s_dtype: Dtype,
    b_dtype: Dtype,
    /// Affine: the dtype of s * q + b (each step rounded to it when narrower than float32; see
    /// sq_dtype). The fp modes: the scale is rounded to it.
    arith: Dtype,
    /// nvfp4 with a global scale g: gscale = g / 2688 in float32; the values are q * (scale * gscale).
    has_gscale: bool,
    gscale: f32,
    /// Affine with a float32 `arith`: s * q is rounded to this dtype (float16/bfloat16) before
    /// + b in float32 (MLX's dequantize with scales narrower than the biases: s * q in the
    /// scales' dtype, + b in the promoted one). An `arith` of float16/bfloat16 rounds both steps.
    sq_dtype: Dtype = .float32,

    /// Decode row r, columns [c0, c1) (group-aligned), into out as float32 values.
    pub fn decodeRow(m: *const QMat, r: usize, c0: usize, c1: usize, out: []f32) void {
        switch (m.mode) {
            .affine => switch (m.bits) {
                inline 1, 2, 3, 4, 5, 6, 8 => |B| switch (m.arith) {
                    inline .float16, .bfloat16 => |A| m.decodeGroups(B, Affine(A, A), r, c0, c1, out),
                    else => switch (m.sq_dtype) {
                        inline .float16, .bfloat16 => |S| m.decodeGroups(B, Affine(S, .float32), r, c0, c1, out),
                        else => m.decodeGroups(B, Affine(.float32, .float32), r, c0, c1, out),
                    },
                },
                else => unreachable,
            },
            .mxfp4, .nvfp4 => m.decodeGroups(4, FloatCodes(4), r, c0, c1, out),
            .mxfp8 => m.decodeGroups(8, FloatCodes(8), r, c0, c1, out),
        }
    }

    /// The groups of row r in [c0, c1): F.group gives a group's parameters, F.values a block of
    /// F.L values from their B-bit codes.
    fn decodeGroups(m: *const QMat, comptime B: u32, comptime F: type, r: usize, c0: usize, c1: usize, out: []f32) void {
        const gs = m.group_size;
        var g = c0 / gs;
        while (g * gs < c1) : (g += 1) {
            const gp = F.group(m, @intCast(r), @intCast(g));
            const o = out[g * gs - c0 ..][0..gs];
            var e: usize = 0;
            while (e < gs) : (e += F.L) {
                const q = codes(B, F.L, m.rowWords(F.L * B / 32, r, (g * gs + e) * B / 32));
                o[e..][0..F.L].* = F.values(gp, q);
            }
        }
    }

    /// The `words` 32-bit words of row r from word w0 on (any column stride).
    inline fn rowWords(m: *const QMat, comptime words: usize, r: usize, w0: usize) @Vector(words, u32) {
        const base: isize = @as(isize, @intCast(r)) * m.w_rs + @as(isize, @intCast(w0)) * m.w_cs;
        const p = m.w + @as(usize, @bitCast(base));
        if (m.w_cs == 1) return p[0..words].*;
        var v: [words]u32 = undefined;
        inline for (0..words) |i| v[i] = (p + @as(usize, @bitCast(@as(isize, i) * m.w_cs)))[0];
        return v;
    }
};

/// Affine: s * q + b per group, s * q rounded to SQ and + b to A when they are float16 or
/// bfloat16 (MLX: s * q in the scales' dtype, + b in the promoted dtype of scales and biases);
/// 32 codes a block.
fn Affine(comptime SQ: Dtype, comptime A: Dtype) type {
    return struct {
        const L = 32;
        const V = @Vector(L, f32);
        const Group = struct { s: V, b: V };
        inline fn group(m: *const QMat, r: isize, g: isize) Group {
            return .{
                .s = @splat(loadAny(m.s_dtype, m.s, r * m.s_rs + g * m.s_cs)),
                .b = @splat(loadAny(m.b_dtype, m.b.?, r * m.b_rs + g * m.b_cs)),
            };
        }
        inline fn values(p: Group, q: @Vector(L, u32)) V {
            const qf: V = @floatFromInt(@as(@Vector(L, i32), @bitCast(q)));
            return roundV(A, L, roundV(SQ, L, qf * p.s) + p.b);
        }
    };
}

/// mxfp4/nvfp4 (B = 4: E2M1 codes) and mxfp8 (B = 8: E4M3 codes): code * scale per group (the
/// scale an E8M0 or E4M3 byte rounded to the arithmetic dtype, or nvfp4's E4M3 times the
/// global scale); 16 codes a block.
fn FloatCodes(comptime B: u32) type {
    return struct {
        const L = 16;
        const V = @Vector(L, f32);
        inline fn group(m: *const QMat, r: isize, g: isize) V {
            const sc: u32 = (m.s + @as(usize, @bitCast(r * m.s_rs + g * m.s_cs)))[0];
            return @splat(if (m.has_gscale)
                fromE4m3(sc) * m.gscale
            else
                roundTo(m.arith, if (m.mode == .nvfp4) fromE4m3(sc) else fromE8m0(sc)));
        }
        inline fn values(s: V, q: @Vector(L, u32)) V {
            return (if (B == 4) minifloatV(2, 1, L, q) else minifloatV(4, 3, L, q)) * s;
        }
    };
}

/// The L B-bit codes packed little-end first in words (L * B / 32 of them), one per lane: lane i
/// is bits [i * B, i * B + B) of the words, which may straddle two words (B = 3, 5, 6).
inline fn codes(comptime B: u32, comptime L: usize, words: @Vector(L * B / 32, u32)) @Vector(L, u32) {
    const U = @Vector(L, u32);
    const lay = comptime blk: {
        var lo_i: [L]i32 = undefined;
        var hi_i: [L]i32 = undefined;
        var lo_s: [L]u5 = undefined;
        var hi_s: [L]u5 = undefined;
        var hi_m: [L]u32 = undefined;
        var straddles = false;
        for (0..L) |i| {
            const bit = i * B;
            const w = bit / 32;
            const off = bit % 32;
            lo_i[i] = @intCast(w);
            lo_s[i] = @intCast(off);
            if (off + B > 32) {
                straddles = true;
                hi_i[i] = @intCast(w + 1);
                hi_s[i] = @intCast(32 - off);
                hi_m[i] = 0xffff_ffff;
            } else {
                hi_i[i] = @intCast(w);
                hi_s[i] = 0;
                hi_m[i] = 0;
            }
        }
        break :blk .{ .lo_i = lo_i, .hi_i = hi_i, .lo_s = lo_s, .hi_s = hi_s, .hi_m = hi_m, .straddles = straddles };
    };
    const lo: U = @shuffle(u32, words, undefined, lay.lo_i);
    var q = lo >> @as(@Vector(L, u5), lay.lo_s);
    if (lay.straddles) {
        const hi: U = @shuffle(u32, words, undefined, lay.hi_i);
        q |= (hi << @as(@Vector(L, u5), lay.hi_s)) & @as(U, lay.hi_m);
    }
    return q & @as(U, @splat((@as(u32, 1) << B) - 1));
}

/// Minifloat codes (sign, E exponent bits with bias 2^(E-1) - 1, M mantissa bits, subnormals) as
/// float32 on lanes: E2M1 (E = 2, M = 1: fromFp4) and E4M3 (E = 4, M = 3, fn: all-ones exponent
/// and mantissa is NaN, MLX's NaN bits; no infinities: fromE4m3).
inline fn minifloatV(comptime E: u5, comptime M: u5, comptime L: usize, q: @Vector(L, u32)) @Vector(L, f32) {
    const U = @Vector(L, u32);
    const bias = (1 << (E - 1)) - 1;
    const sign = (q >> @splat(E + M)) << @splat(31);
    const e = (q >> @splat(M)) & @as(U, @splat((1 << E) - 1));
    const m = q & @as(U, @splat((1 << M) - 1));
    const normal = ((e + @as(U, @splat(127 - bias))) << @splat(23)) | (m << @splat(23 - M));
    const subf = @as(@Vector(L, f32), @floatFromInt(@as(@Vector(L, i32), @bitCast(m)))) * @as(@Vector(L, f32), @splat(std.math.ldexp(@as(f32, 1), @as(i32, 1 - bias) - @as(i32, M))));
    const mag = @select(u32, e == @as(U, @splat(0)), @as(U, @bitCast(subf)), normal);
    if (E != 4) return @bitCast(sign | mag);
    const nan = (q & @as(U, @splat(0x7f))) == @as(U, @splat(0x7f));
    return @bitCast(sign | @select(u32, nan, @as(U, @splat(0x7ff0_0000)), mag));
}

/// roundTo on lanes: v rounded to float16/bfloat16 and back, half.zig's bits.
inline fn roundV(comptime A: Dtype, comptime L: usize, v: @Vector(L, f32)) @Vector(L, f32) {
    return switch (A) {
        .float16 => half.f16ToF32V(L, half.f32ToF16V(L, v)),
        .bfloat16 => half.bf16ToF32V(L, half.f32ToBf16V(L, v)),
        else => v,
    };
}

// ---------------------------------------------------------------------------------------------
// Quantizing (prims/quantized.zig: quantize's outputs, qqmm's rounding of x), in the kernel
// objects of a portable build as the products are (`qmm_quantize`, `qmm_qdq`): the encoders'
// roundings are instructions from the AVX2 level on and library calls at baseline.

/// quantize's parameters (prims/quantized.zig Prim).
pub const Params = extern struct {
    mode: Mode,
    group_size: u32,
    bits: u32,
};

/// E2M1 code of x as MLX rounds it: the first grid value v with the smallest float32 |(|x| - v)|
/// (ties toward zero; NaN, infinities and |x| >= 2^27 give code 0, and from 2^25 on the
/// subtractions' roundings pick codes 4, 6 or 7); a zero code never carries the sign.
pub fn toFp4(x: f32) u8 {
    const ax = @abs(x);
    var k: u8 = 0;
    var best = @abs(ax - fp4_values[0]);
    inline for (1..8) |i| {
        const d = @abs(ax - fp4_values[i]);
        if (d < best) {
            best = d;
            k = i;
        }
    }
    return if (x < 0 and k > 0) k | 8 else k;
}

/// An nvfp4 scale byte: E4M3 nearest even, saturating at ±448; infinities and NaN saturate too,
/// keeping their sign bit (MLX's to_fp8).
pub fn toE4m3Sat(x: f32) u8 {
    if (std.math.isNan(x)) return if (std.math.signbit(x)) 0xfe else 0x7e;
    return toE4m3(x);
}

/// x rounded to E4M3, nearest even, saturating at 448 (NaN: 0x7f).
pub fn toE4m3(x: f32) u8 {
    if (std.math.isNan(x)) return 0x7f;
    const sign: u8 = if (std.math.signbit(x)) 0x80 else 0;
    const ax: f64 = @abs(@as(f64, x));
    if (ax >= 448) return sign | 0x7e;
    // The quantum: 2^-9 below the smallest normal 2^-6, 2^(e-3) for ax in [2^e, 2^(e+1)).
    const q: f64 = if (ax < 0x1p-6) 0x1p-9 else std.math.ldexp(@as(f64, 1), std.math.frexp(ax).exponent - 1 - 3);
    const t = ax / q;
    var r = @floor(t);
    const frac = t - r;
    if (frac > 0.5 or (frac == 0.5 and @mod(r, 2) == 1)) r += 1;
    const v = r * q;
    if (v >= 448) return sign | 0x7e;
    if (v < 0x1p-6) return sign | @as(u8, @intFromFloat(v / 0x1p-9));
    const fr = std.math.frexp(v); // v = f * 2^ex, f in [0.5, 1)
    const e: i32 = fr.exponent - 1;
    const mant: u8 = @intFromFloat((fr.significand * 2 - 1) * 8);
    return sign | (@as(u8, @intCast(e + 7)) << 3) | mant;
}

/// toE4m3 on lanes, on the float32 bits: below 2^-6 the code is |x| * 2^9 rounded to an integer
/// (the subnormal quantum; 8 is the smallest normal's code), from there on the mantissa is
/// rounded to 3 bits nearest even (a carry moves into the exponent) and the exponent rebiased;
/// 448 and up saturate to 0x7e, NaN gives 0x7f.
pub inline fn toE4m3V(comptime L: usize, x: @Vector(L, f32)) @Vector(L, u32) {
    const U = @Vector(L, u32);
    const b: U = @bitCast(x);
    const a = b & @as(U, @splat(0x7fff_ffff));
    const ax: @Vector(L, f32) = @bitCast(a);
    const sign = (b >> @splat(24)) & @as(U, @splat(0x80));
    const small = ax < @as(@Vector(L, f32), @splat(0x1p-6));
    const axs = @select(f32, small, ax, @as(@Vector(L, f32), @splat(0)));
    const sub: U = @intFromFloat(rintV(L, axs * @as(@Vector(L, f32), @splat(0x1p9))));
    const rounded = (a +% @as(U, @splat(0x7_ffff)) +% ((a >> @splat(20)) & @as(U, @splat(1)))) >> @splat(20);
    const normal = @min(rounded -% @as(U, @splat(120 << 3)), @as(U, @splat(0x7e)));
    const big = a >= @as(U, @splat(0x43e0_0000)); // 448 and up, infinity
    const code = @select(u32, small, sub, @select(u32, big, @as(U, @splat(0x7e)), normal));
    return @select(u32, a > @as(U, @splat(0x7f80_0000)), @as(U, @splat(0x7f)), sign | code);
}

/// ceil(log2(s)) for finite s > 0, exactly.
pub fn ceilLog2(s: f32) i32 {
    const fr = std.math.frexp(s); // s = m * 2^e, m in [0.5, 1)
    return if (fr.significand == 0.5) fr.exponent - 1 else fr.exponent;
}

/// vals rounded to dtype D (float16, bfloat16, float64) at elements [at, at + vals.len) of p.
fn storeRow(comptime D: Dtype, p: [*]u8, at: usize, vals: []const f32) void {
    const L = 16;
    const dst: [*]D.Type() = @ptrCast(@alignCast(p));
    var i: usize = 0;
    while (i + L <= vals.len) : (i += L) {
        const v: @Vector(L, f32) = vals[i..][0..L].*;
        const o = dst + at + i;
        switch (D) {
            .float16 => @as(*[L]u16, @ptrCast(o)).* = half.f32ToF16V(L, v),
            .bfloat16 => @as(*[L]u16, @ptrCast(o)).* = half.f32ToBf16V(L, v),
            .float32 => o[0..L].* = v,
            .float64 => o[0..L].* = @as(@Vector(L, f64), @floatCast(v)),
            else => unreachable,
        }
    }
    while (i < vals.len) : (i += 1) storeAs(D, p, at + i, vals[i]);
}

/// Round an f32 to dtype D and store at index i of a contiguous buffer.
fn storeAs(comptime D: Dtype, p: [*]u8, i: usize, v: f32) void {
    const T = D.Type();
    const ptr: [*]T = @ptrCast(@alignCast(p));
    ptr[i] = switch (D) {
        .float16 => .{ .bits = half.f32ToF16(v) },
        .bfloat16 => .{ .bits = half.f32ToBf16(v) },
        .float32 => v,
        .float64 => @floatCast(v),
        else => unreachable,
    };
}

/// Round an f32 to dtype dt (a float dtype) and store at index i of a contiguous buffer.
pub fn store(dt: Dtype, p: [*]u8, i: usize, v: f32) void {
    switch (dt) {
        .float16 => storeAs(.float16, p, i, v),
        .bfloat16 => storeAs(.bfloat16, p, i, v),
        .float32 => storeAs(.float32, p, i, v),
        .float64 => storeAs(.float64, p, i, v),
        else => unreachable,
    }
}

/// E2M1 value nearest to x, ties to even (the grid 0, .5, 1, 1.5, 2, 3, 4, 6; saturating).
pub fn fp4Even(x: f32) f32 {
    const ax = @abs(x);
    var k: usize = 0;
    inline for (.{ 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0 }, 0..) |t, i| {
        // a tie goes to the even code: up at 0.75, 1.75, 3.5 (codes 2, 4, 6), down elsewhere
        if (if (i % 2 == 1) ax >= t else ax > t) k += 1;
    }
    const v = fp4_values[k];
    return if (x < 0) -v else v;
}

/// toFp4 on lanes: the same float32 distances to the grid values, compared in the same order
/// (a lane moves to grid value i only when strictly nearer), so the same codes bit for bit.
inline fn toFp4V(comptime L: usize, x: @Vector(L, f32)) @Vector(L, u32) {
    const V = @Vector(L, f32);
    const U = @Vector(L, u32);
    const ax = @abs(x);
    var k: U = @splat(0);
    var best = @abs(ax - @as(V, @splat(fp4_values[0])));
    inline for (1..8) |i| {
        const d = @abs(ax - @as(V, @splat(fp4_values[i])));
        const nearer = d < best;
        best = @select(f32, nearer, d, best);
        k = @select(u32, nearer, @as(U, @splat(i)), k);
    }
    const neg = (x < @as(V, @splat(0))) & (k != @as(U, @splat(0)));
    return @select(u32, neg, k | @as(U, @splat(8)), k);
}

/// fp4Even on lanes: the code counts the midpoints x passes (ties up at 0.75, 1.75, 3.5), then
/// E2M1 decodes it with x's sign (NaN gives +0, as fp4Even).
inline fn fp4EvenV(comptime L: usize, x: @Vector(L, f32)) @Vector(L, f32) {
    const V = @Vector(L, f32);
    const U = @Vector(L, u32);
    const ax = @abs(x);
    var k: U = @splat(0);
    inline for (.{ 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0 }, 0..) |t, i| {
        const past = if (i % 2 == 1) ax >= @as(V, @splat(t)) else ax > @as(V, @splat(t));
        k += @intFromBool(past);
    }
    const sign = @select(u32, x < @as(V, @splat(0)), @as(U, @splat(8)), @as(U, @splat(0)));
    return minifloatV(2, 1, L, k | sign);
}

/// roundTo on lanes for a dtype known at run time.
inline fn roundToV(dt: Dtype, comptime L: usize, v: @Vector(L, f32)) @Vector(L, f32) {
    return switch (dt) {
        .float16 => roundV(.float16, L, v),
        .bfloat16 => roundV(.bfloat16, L, v),
        else => v,
    };
}

/// max |v| over a group (NaN values skipped, as @max skips them).
inline fn absMax(vals: []const f32) f32 {
    const L = 16;
    var hi: @Vector(L, f32) = @splat(0);
    var e: usize = 0;
    while (e < vals.len) : (e += L) hi = @max(hi, @abs(@as(@Vector(L, f32), vals[e..][0..L].*)));
    return @reduce(.Max, hi);
}

/// Whether a group holds a NaN.
inline fn hasNan(vals: []const f32) bool {
    const L = 16;
    var any: @Vector(L, bool) = @splat(false);
    var e: usize = 0;
    while (e < vals.len) : (e += L) {
        const v: @Vector(L, f32) = vals[e..][0..L].*;
        any = any | (v != v);
    }
    return @reduce(.Or, any);
}

/// qqmm's rounding of x (mxfp4/mxfp8/nvfp4 without a global scale): `groups` groups of a
/// row-major x of dtype x_dt (float32, float16 or bfloat16, read a group at a time) quantized
/// and dequantized into out (dtype dt).
pub const QdqCtx = extern struct {
    x: [*]const u8,
    x_dt: Dtype,
    out: [*]u8,
    dt: Dtype,
    p: Params,
    groups: usize,

    fn range(j: *const QdqCtx, g0: usize, g1: usize) void {
        switch (j.dt) {
            inline .float32, .float16, .bfloat16 => |D| j.rangeAs(D, g0, g1),
            else => unreachable,
        }
    }

    fn rangeAs(j: *const QdqCtx, comptime D: Dtype, g0: usize, g1: usize) void {
        const L = 16;
        const V = @Vector(L, f32);
        const gs = j.p.group_size;
        for (g0..g1) |g| {
            var tmp: [max_group]f32 = undefined;
            const vals = groupF32(j.x, j.x_dt, g * gs, gs, &tmp);
            const scale = qdqScale(absMax(vals), gs, j.p.bits);
            var res: [max_group]f32 = undefined;
            var e: usize = 0;
            while (e < gs) : (e += L) {
                const v: V = vals[e..][0..L].*;
                const el: V = if (scale == 0) @splat(0) else v / @as(V, @splat(scale));
                const q = if (j.p.bits == 8) minifloatV(4, 3, L, toE4m3V(L, el)) else fp4EvenV(L, el);
                res[e..][0..L].* = @as(V, @splat(scale)) * q;
            }
            storeRow(D, j.out, g * gs, res[0..gs]);
        }
    }
};

/// qqmm's scale of a group of x whose largest magnitude is `amax` (group size 16: nvfp4, an E4M3
/// scale; else mxfp4/mxfp8, a power of two rounded up, 2^-127 for an all-zero group).
pub fn qdqScale(amax: f32, gs: usize, bits: u32) f32 {
    const s0 = amax / @as(f32, if (bits == 4) 6 else 448);
    if (gs == 16) return fromE4m3(toE4m3(s0));
    if (s0 == 0) return 0x1p-127;
    if (!std.math.isFinite(s0)) return std.math.inf(f32);
    return std.math.ldexp(@as(f32, 1), ceilLog2(s0));
}

/// The largest group size of any mode.
const max_group = 128;

/// Elements [at, at + n) of a float32/float16/bfloat16 buffer as float32 (n a multiple of 16, at
/// most max_group): the buffer itself when it is float32, else converted into tmp.
inline fn groupF32(p: [*]const u8, dt: Dtype, at: usize, n: usize, tmp: *[max_group]f32) []const f32 {
    switch (dt) {
        inline .float16, .bfloat16 => |D| {
            const h: [*]const u16 = @ptrCast(@alignCast(p));
            var i: usize = 0;
            while (i < n) : (i += 16) {
                const v: @Vector(16, u16) = h[at + i ..][0..16].*;
                tmp[i..][0..16].* = if (D == .float16) half.f16ToF32V(16, v) else half.bf16ToF32V(16, v);
            }
            return tmp[0..n];
        },
        else => return @as([*]const f32, @ptrCast(@alignCast(p)))[at .. at + n],
    }
}

/// quantize: every output for `groups` groups of a row-major W of dtype w_dt (float32, float16
/// or bfloat16: converted to float32 a group at a time), each group's statistics computed once.
/// Group g's codes are words [g * gs * bits / 32, (g + 1) * gs * bits / 32) (a group's words are
/// whole: gs * bits is a multiple of 32); its scale (and bias) element g of `scales` (`biases`),
/// of dtype s_dt (affine: W's dtype; the fp modes: uint8 E8M0 or E4M3 bytes).
pub const QuantCtx = extern struct {
    w: [*]const u8,
    w_dt: Dtype,
    codes: [*]u32,
    scales: [*]u8,
    biases: ?[*]u8,
    s_dt: Dtype,
    p: Params,
    /// The input's dtype (w_dt, or float16/bfloat16 when W was copied to float32): nvfp4 rounds
    /// its arithmetic to it, and mxfp's non-finite scale byte depends on it.
    in_dt: Dtype,
    /// nvfp4 with a global scale g: gfactor = 2688 / g in float32.
    has_gfactor: bool,
    gfactor: f32,
    groups: usize,

    fn range(j: *const QuantCtx, g0: usize, g1: usize) void {
        const L = 16;
        const V = @Vector(L, f32);
        const gs = j.p.group_size;
        const wpg = gs * j.p.bits / 32;
        for (g0..g1) |g| {
            var tmp: [max_group]f32 = undefined;
            const vals = groupF32(j.w, j.w_dt, g * gs, gs, &tmp);
            const words = j.codes + g * wpg;
            switch (j.p.mode) {
                .affine => {
                    const st = affineGroup(vals, j.p.bits);
                    store(j.s_dt, j.scales, g, st.scale);
                    store(j.s_dt, j.biases.?, g, st.bias);
                    switch (j.p.bits) {
                        inline 1, 2, 3, 4, 5, 6, 8 => |B| affineCodes(B, vals, st, words),
                        else => unreachable,
                    }
                },
                .mxfp4, .mxfp8 => {
                    const amax = absMax(vals);
                    if (amax == std.math.inf(f32) or hasNan(vals)) {
                        // MLX (a NaN or an infinity in the group): scale byte 128 (float32
                        // input) or 0 (half input); fp4 codes 0, fp8 codes `nonFiniteE4m3`.
                        j.scales[g] = if (j.in_dt == .float16 or j.in_dt == .bfloat16) 0 else 128;
                        if (j.p.mode == .mxfp4) {
                            @memset(words[0..wpg], 0);
                        } else {
                            const bytes: [*]u8 = @ptrCast(words);
                            for (vals, 0..) |v, i| bytes[i] = nonFiniteE4m3(v, j.in_dt);
                        }
                        continue;
                    }
                    // amax / maxval in the input's dtype (a half input rounds it, to a subnormal
                    // or to 0: then e = 0), then e = ceil(log2) of that exactly.
                    const s = roundTo(j.in_dt, amax / @as(f32, if (j.p.mode == .mxfp4) 6 else 448));
                    const e: i32 = if (s == 0) 0 else ceilLog2(s);
                    j.scales[g] = @truncate(@as(u32, @bitCast(e + 127)));
                    const scale: V = @splat(std.math.ldexp(@as(f32, 1), e));
                    var i: usize = 0;
                    while (i < gs) : (i += L) {
                        const v: V = vals[i..][0..L].*;
                        if (j.p.mode == .mxfp4) {
                            words[i / 8 ..][0..2].* = packCodes(4, L, toFp4V(L, v / scale));
                        } else {
                            @as([*]u8, @ptrCast(words))[i..][0..L].* = @as(@Vector(L, u8), @truncate(toE4m3V(L, v / scale)));
                        }
                    }
                },
                .nvfp4 => {
                    // In the input's dtype (each float32 step rounded to it), the global factor
                    // 2688 / g applied in float32; see prims/quantized.zig's header.
                    const amax = if (hasNan(vals)) std.math.nan(f32) else absMax(vals);
                    var raw = roundTo(j.in_dt, amax / 6);
                    if (j.has_gfactor) raw *= j.gfactor;
                    const sc = toE4m3Sat(raw);
                    j.scales[g] = sc;
                    const scale: V = @splat(fromE4m3(sc));
                    var i: usize = 0;
                    while (i < gs) : (i += L) {
                        var el = roundToV(j.in_dt, L, @as(V, vals[i..][0..L].*) / scale);
                        if (j.has_gfactor) el *= @as(V, @splat(j.gfactor));
                        words[i / 8 ..][0..2].* = packCodes(4, L, toFp4V(L, el));
                    }
                },
            }
        }
    }
};

/// An mxfp8 code of element v of a group holding a NaN or an infinity, as MLX computes it: v
/// divided by a zero scale in the input's dtype (±infinity, or NaN for a zero or NaN element),
/// then E4M3 saturating with the sign kept (±448: 0x7e / 0xfe). The NaN of 0 / 0 is x86's
/// default NaN, whose sign bit is set; a NaN element keeps its sign; a bfloat16 input's
/// arithmetic makes every NaN positive (MLX's float-to-bfloat16 conversion gives 0x7fc0).
pub fn nonFiniteE4m3(v: f32, in_dt: Dtype) u8 {
    const neg = if (std.math.isNan(v) or v == 0)
        in_dt != .bfloat16 and (v == 0 or std.math.signbit(v))
    else
        std.math.signbit(v);
    return if (neg) 0xfe else 0x7e;
}

/// An affine group's scale and bias (MLX's): the min-max grid of 2^bits - 1 steps, moved so the
/// larger-magnitude edge is exactly representable (bits > 1).
const AffineGroup = struct { scale: f32, bias: f32 };

fn affineGroup(vals: []const f32, bits: u32) AffineGroup {
    const L = 16;
    const V = @Vector(L, f32);
    // Lane-wise min and max (NaN lanes are skipped, as @max/@min do), then across lanes.
    var hi: V = @splat(-std.math.inf(f32));
    var lo: V = @splat(std.math.inf(f32));
    var e: usize = 0;
    while (e < vals.len) : (e += L) {
        const v: V = vals[e..][0..L].*;
        hi = @max(hi, v);
        lo = @min(lo, v);
    }
    const w_max = @reduce(.Max, hi);
    const w_min = @reduce(.Min, lo);
    const n_bins: f32 = @floatFromInt((@as(u32, 1) << @intCast(bits)) - 1);
    var scale = @max((w_max - w_min) / n_bins, @as(f32, 1e-7));
    var bias: f32 = 0;
    if (bits == 1) {
        // One bit: the plain min-max grid.
        bias = w_min;
    } else {
        const mask = @abs(w_min) > @abs(w_max);
        if (!mask) scale = -scale;
        const edge = if (mask) w_min else w_max;
        const q0r = rint(edge / scale);
        if (q0r != 0) {
            scale = edge / q0r;
            bias = edge;
        }
    }
    return .{ .scale = scale, .bias = bias };
}

/// A group's B-bit codes clamp(rint((v - bias) / scale), 0, 2^B - 1), packed into its words,
/// 32 values (B words) at a time.
fn affineCodes(comptime B: u32, vals: []const f32, st: AffineGroup, words: [*]u32) void {
    const L = 32;
    const V = @Vector(L, f32);
    const top: V = @splat(@floatFromInt((1 << B) - 1));
    var e: usize = 0;
    while (e < vals.len) : (e += L) {
        const v: V = vals[e..][0..L].*;
        const c = @min(@max(rintV(L, (v - @as(V, @splat(st.bias))) / @as(V, @splat(st.scale))), @as(V, @splat(0))), top);
        const q: @Vector(L, u32) = @bitCast(@as(@Vector(L, i32), @intFromFloat(c)));
        words[e * B / 32 ..][0..B].* = packCodes(B, L, q);
    }
}

/// rint on lanes (round half to even): below 2^23 in magnitude, adding and taking away 2^23 with
/// x's sign leaves the integer nearest even; from 2^23 on every float is an integer. NaN and
/// infinities pass through.
inline fn rintV(comptime L: usize, x: @Vector(L, f32)) @Vector(L, f32) {
    const V = @Vector(L, f32);
    const big: V = @splat(0x1p23);
    const c = @select(f32, x < @as(V, @splat(0)), -big, big);
    return @select(f32, @abs(x) < big, (x + c) - c, x);
}

/// The inverse of `codes`: L codes of B bits (each below 2^B) packed little-end first into
/// L * B / 32 words.
inline fn packCodes(comptime B: u32, comptime L: usize, q: @Vector(L, u32)) [L * B / 32]u32 {
    const NW = L * B / 32;
    var out: [NW]u32 = undefined;
    inline for (0..NW) |w| {
        // The lanes that start in word w (shifted up into it) and the one, if any, that starts in
        // word w - 1 and ends in w (shifted down).
        const lay = comptime blk: {
            @setEvalBranchQuota(20_000);
            var idx: [L]i32 = undefined;
            var sh: [L]u5 = undefined;
            var n: usize = 0;
            var hi_lane: ?usize = null;
            var hi_sh: u5 = 0;
            for (0..L) |i| {
                const bit = i * B;
                if (bit / 32 == w) {
                    idx[n] = @intCast(i);
                    sh[n] = @intCast(bit % 32);
                    n += 1;
                } else if (bit / 32 + 1 == w and bit % 32 + B > 32) {
                    hi_lane = i;
                    hi_sh = @intCast(32 - bit % 32);
                }
            }
            break :blk .{ .idx = idx[0..n].*, .sh = sh[0..n].*, .hi_lane = hi_lane, .hi_sh = hi_sh };
        };
        const N = lay.idx.len;
        const part: @Vector(N, u32) = @shuffle(u32, q, undefined, lay.idx);
        var word = @reduce(.Or, part << @as(@Vector(N, u5), lay.sh));
        if (lay.hi_lane) |h| word |= q[h] >> lay.hi_sh;
        out[w] = word;
    }
    return out;
}

/// Round half to even (C's rint in the default rounding mode).
inline fn rint(x: f32) f32 {
    const r = @round(x);
    if (@abs(x - @trunc(x)) == 0.5) {
        const t = @trunc(x);
        return if (@mod(t, 2) == 0) t else r;
    }
    return r;
}

pub const QuantFn = fn (*const QuantCtx) callconv(.c) void;
pub const QdqFn = fn (*const QdqCtx) callconv(.c) void;

pub fn quantizeEntry(c: *const QuantCtx) callconv(.c) void {
    pool.parallelFor(c.groups, 1024, c, QuantCtx.range);
}
pub fn qdqEntry(c: *const QdqCtx) callconv(.c) void {
    pool.parallelFor(c.groups, 1024, c, QdqCtx.range);
}

/// quantize's outputs, over the pool.
pub fn quantizeGroups(c: *const QuantCtx) void {
    if (comptime cpu.dispatch) return cpu.pick(QuantFn, "qmm_quantize")(c);
    quantizeEntry(c);
}

/// qqmm's quantize-dequantize of x, over the pool.
pub fn qdqGroups(c: *const QdqCtx) void {
    if (comptime cpu.dispatch) return cpu.pick(QdqFn, "qmm_qdq")(c);
    qdqEntry(c);
}

// ---------------------------------------------------------------------------------------------
// Entries (engine/kernels.zig exports them per level in a portable build)

/// A product of few rows of x with one batch item of W, accumulated into o (o += x @ W^T or
/// x @ W; the caller zeroes it). x is m x k and o m x n, row-contiguous float32. For `fast`, x is
/// `fastPrep`'s permuted copy followed by the m x groups sums.
pub const RowsCtx = extern struct {
    qm: QMat,
    x: [*]const f32,
    o: [*]f32,
    m: usize,
    n: usize,
    k: usize,
};

/// Rows [r0, r0 + rows) of W decoded into out (rows x cols, row-contiguous), as float32 or
/// rounded from float32 to out_dtype (float16, bfloat16, float64: the dequantize op's outputs).
pub const DecodeCtx = extern struct {
    qm: QMat,
    out: [*]u8,
    out_dtype: Dtype = .float32,
    r0: usize,
    rows: usize,
    cols: usize,
};

pub const RowsFn = fn (*const RowsCtx) callconv(.c) void;
pub const DecodeFn = fn (*const DecodeCtx) callconv(.c) void;

pub fn fastEntry(c: *const RowsCtx) callconv(.c) void {
    fastImpl(c);
}
pub fn transposedEntry(c: *const RowsCtx) callconv(.c) void {
    transposedImpl(c);
}
pub fn plainEntry(c: *const RowsCtx) callconv(.c) void {
    plainImpl(c);
}
pub fn decodeEntry(c: *const DecodeCtx) callconv(.c) void {
    decodeImpl(c);
}

/// x @ W^T by the fast path (the case must pass `fastBlock`, x prepared by `fastPrep`).
pub fn fast(c: *const RowsCtx) void {
    if (comptime cpu.dispatch) return cpu.pick(RowsFn, "qmm_fast")(c);
    fastImpl(c);
}

/// x @ W^T, any format.
pub fn transposed(c: *const RowsCtx) void {
    if (comptime cpu.dispatch) return cpu.pick(RowsFn, "qmm_t")(c);
    transposedImpl(c);
}

/// x @ W (W: k x n), any format.
pub fn plain(c: *const RowsCtx) void {
    if (comptime cpu.dispatch) return cpu.pick(RowsFn, "qmm_n")(c);
    plainImpl(c);
}

/// Rows of W into a block of out_dtype, over the pool.
pub fn decodeRows(c: *const DecodeCtx) void {
    if (comptime cpu.dispatch) return cpu.pick(DecodeFn, "qmm_decode")(c);
    decodeImpl(c);
}

/// Columns decoded at a time by the row jobs (a stack buffer).
const chunk_cols = 4096;

fn decodeImpl(c: *const DecodeCtx) void {
    const S = struct {
        fn range(d: *const DecodeCtx, a: usize, b: usize) void {
            switch (d.out_dtype) {
                inline .float32, .float16, .bfloat16, .float64 => |D| rows(D, d, a, b),
                else => unreachable,
            }
        }
        fn rows(comptime D: Dtype, d: *const DecodeCtx, a: usize, b: usize) void {
            var buf: [chunk_cols]f32 = undefined;
            const gs = d.qm.group_size;
            const step = (chunk_cols / gs) * gs;
            for (a..b) |r| {
                var c0: usize = 0;
                while (c0 < d.cols) : (c0 += step) {
                    const c1 = @min(d.cols, c0 + step);
                    const at = r * d.cols + c0;
                    if (D == .float32) {
                        const out: [*]f32 = @ptrCast(@alignCast(d.out));
                        d.qm.decodeRow(d.r0 + r, c0, c1, out[at .. at + c1 - c0]);
                    } else {
                        const vals = buf[0 .. c1 - c0];
                        d.qm.decodeRow(d.r0 + r, c0, c1, vals);
                        storeRow(D, d.out, at, vals);
                    }
                }
            }
        }
    };
    pool.parallelFor(c.rows, @max(1, 16384 / c.cols), c, S.range);
}

/// x @ W^T: each worker decodes rows of W (in chunks) and dots them with x's rows.
fn transposedImpl(c: *const RowsCtx) void {
    const S = struct {
        fn range(j: *const RowsCtx, n0: usize, n1: usize) void {
            var buf: [chunk_cols]f32 = undefined;
            const gs = j.qm.group_size;
            const step = (chunk_cols / gs) * gs;
            for (n0..n1) |col| {
                var c0: usize = 0;
                while (c0 < j.k) : (c0 += step) {
                    const c1 = @min(j.k, c0 + step);
                    const row = buf[0 .. c1 - c0];
                    j.qm.decodeRow(col, c0, c1, row);
                    for (0..j.m) |r| j.o[r * j.n + col] += dot(row, j.x[r * j.k + c0 ..][0 .. c1 - c0]);
                }
            }
        }
    };
    pool.parallelFor(c.n, @max(1, 16384 / c.k), c, S.range);
}

/// x @ W (W: k x n): columns split over workers in whole groups; W's rows decoded in chunks.
fn plainImpl(c: *const RowsCtx) void {
    const S = struct {
        fn range(j: *const RowsCtx, g0: usize, g1: usize) void {
            var buf: [chunk_cols]f32 = undefined;
            const gs = j.qm.group_size;
            const step = (chunk_cols / gs) * gs;
            var c0 = g0 * gs;
            const end = g1 * gs;
            while (c0 < end) : (c0 += step) {
                const c1 = @min(end, c0 + step);
                const row = buf[0 .. c1 - c0];
                for (0..j.k) |kk| {
                    j.qm.decodeRow(kk, c0, c1, row);
                    for (0..j.m) |r| axpy(j.x[r * j.k + kk], row, j.o[r * j.n + c0 ..][0 .. c1 - c0]);
                }
            }
        }
    };
    const gs = c.qm.group_size;
    pool.parallelFor(c.n / gs, @max(1, 65536 / (c.k * gs)), c, S.range);
}

fn dot(a: []const f32, b: []const f32) f32 {
    const V = @Vector(16, f32);
    var s0: V = @splat(0);
    var s1: V = @splat(0);
    var i: usize = 0;
    while (i + 32 <= a.len) : (i += 32) {
        s0 += @as(V, a[i..][0..16].*) * @as(V, b[i..][0..16].*);
        s1 += @as(V, a[i + 16 ..][0..16].*) * @as(V, b[i + 16 ..][0..16].*);
    }
    while (i + 16 <= a.len) : (i += 16) s0 += @as(V, a[i..][0..16].*) * @as(V, b[i..][0..16].*);
    var r = @reduce(.Add, s0 + s1);
    while (i < a.len) : (i += 1) r += a[i] * b[i];
    return r;
}

fn axpy(alpha: f32, x: []const f32, y: []f32) void {
    const V = @Vector(16, f32);
    const av: V = @splat(alpha);
    var i: usize = 0;
    while (i + 16 <= x.len) : (i += 16) y[i..][0..16].* = @as(V, y[i..][0..16].*) + av * @as(V, x[i..][0..16].*);
    while (i < x.len) : (i += 1) y[i] += alpha * x[i];
}

// ---------------------------------------------------------------------------------------------
// The fast path: affine codes of 1, 2, 4 or 8 bits, x @ W^T

/// Elements per block of the fast path (one vector of W words, whole groups), or null when the
/// case is not covered: affine codes of 1, 2, 4 or 8 bits, group 32, 64 or 128, contiguous
/// words, k a multiple of the block.
pub fn fastBlock(qm: *const QMat, k: usize) ?usize {
    if (qm.mode != .affine or qm.b == null) return null;
    switch (qm.bits) {
        1, 2, 4, 8 => {},
        else => return null,
    }
    switch (qm.group_size) {
        32, 64, 128 => {},
        else => return null,
    }
    const e_per: usize = 32 / qm.bits;
    const block = @max(qm.group_size / e_per, 16) * e_per;
    if (k == 0 or k % block != 0 or qm.w_cs != 1) return null;
    return block;
}

/// xp (m * k + m * groups) from x (m x k): each block of x permuted so that element E*j + kk
/// of a block lands at kk*BW + j, where word j of W's vector holds it at code position kk
/// (xp[bl*block + kk*BW + j] = x[bl*block + E*j + kk]); then each row's group sums of x.
pub fn fastPrep(qm: *const QMat, x: []const f32, m: usize, k: usize, xp: []f32) void {
    const gs = qm.group_size;
    const groups = k / gs;
    const e_per: usize = 32 / qm.bits;
    const bw = @max(gs / e_per, 16);
    const block = bw * e_per;
    for (0..m) |r| {
        for (0..k / block) |bl| {
            for (0..block) |i| xp[r * k + bl * block + (i % e_per) * bw + i / e_per] = x[r * k + bl * block + i];
        }
        for (0..groups) |g| {
            var sum: f32 = 0;
            for (0..gs) |i| sum += x[r * k + g * gs + i];
            xp[m * k + r * groups + g] = sum;
        }
    }
}

fn fastImpl(c: *const RowsCtx) void {
    const grain = @max(1, 8192 / c.k);
    switch (c.qm.bits) {
        inline 1, 2, 4, 8 => |bits| switch (c.qm.group_size) {
            inline 32, 64, 128 => |g| pool.parallelFor(c.n, grain, c, Fast(bits, g).range),
            else => unreachable,
        },
        else => unreachable,
    }
}

/// Groups whose scales and biases are converted to float32 at a time (a stack buffer).
const chunk_groups = 128;

fn Fast(comptime bits: u32, comptime gs: u32) type {
    return struct {
        const E = 32 / bits;
        const W = gs / E; // words per group
        const BW = @max(W, 16); // words per block: one vector of BW lanes
        const GB = BW / W; // groups per block
        const V = @Vector(BW, f32);
        const U = @Vector(BW, u32);
        const mask: U = @splat((@as(u32, 1) << bits) - 1);
        /// Lane l of a block takes the scale of the block's group l / W.
        const lane_group: [BW]i32 = blk: {
            var r: [BW]i32 = undefined;
            for (0..BW) |l| r[l] = @intCast(l / W);
            break :blk r;
        };

        fn range(c: *const RowsCtx, n0: usize, n1: usize) void {
            const qm = &c.qm;
            const groups = c.k / gs;
            const xsum = c.x[c.m * c.k ..];
            // this column's scales and biases as float32, a chunk of groups at a time
            var sbuf: [chunk_groups]f32 align(64) = undefined;
            var bbuf: [chunk_groups]f32 align(64) = undefined;
            for (n0..n1) |col| {
                const ci: isize = @intCast(col);
                const wrow = qm.w + @as(usize, @bitCast(ci * qm.w_rs));
                const soff = ci * qm.s_rs;
                const boff = ci * qm.b_rs;
                var r0: usize = 0;
                while (r0 < c.m) : (r0 += 4) {
                    const rn = @min(4, c.m - r0);
                    var accv: [4]V = .{ @splat(0), @splat(0), @splat(0), @splat(0) };
                    var accb: [4]f32 = .{ 0, 0, 0, 0 };
                    var g0: usize = 0;
                    while (g0 < groups) : (g0 += chunk_groups) {
                        const gn = @min(chunk_groups, groups - g0);
                        const gi: isize = @intCast(g0);
                        readRow(qm.s_dtype, qm.s, soff + gi * qm.s_cs, qm.s_cs, sbuf[0..gn]);
                        readRow(qm.b_dtype, qm.b.?, boff + gi * qm.b_cs, qm.b_cs, bbuf[0..gn]);
                        for (0..rn) |r| accb[r] += dot(bbuf[0..gn], xsum[(r0 + r) * groups + g0 ..][0..gn]);
                        var bl = g0 / GB;
                        while (bl < (g0 + gn) / GB) : (bl += 1) {
                            const wv: U = wrow[bl * BW ..][0..BW].*;
                            const sg: @Vector(GB, f32) = sbuf[bl * GB - g0 ..][0..GB].*;
                            const sv: V = @shuffle(f32, sg, undefined, lane_group);
                            var qf: [E]V = undefined;
                            inline for (0..E) |kk| {
                                const sh: @Vector(BW, u5) = @splat(@as(u5, @intCast(kk * bits)));
                                qf[kk] = @floatFromInt((wv >> sh) & mask);
                            }
                            for (0..rn) |r| {
                                // two independent chains (E is even: 2 to 32), multiply and
                                // add rounded separately (see the header: no FMA)
                                const xg = c.x[(r0 + r) * c.k + bl * BW * E ..];
                                var q0: V = qf[0] * @as(V, xg[0..BW].*);
                                var q1: V = qf[1] * @as(V, xg[BW..][0..BW].*);
                                inline for (1..E / 2) |h| {
                                    q0 += qf[2 * h] * @as(V, xg[2 * h * BW ..][0..BW].*);
                                    q1 += qf[2 * h + 1] * @as(V, xg[(2 * h + 1) * BW ..][0..BW].*);
                                }
                                accv[r] += sv * (q0 + q1);
                            }
                        }
                    }
                    for (0..rn) |r| {
                        const v = @reduce(.Add, accv[r]) + accb[r];
                        // s * sum(q x) + b * sum(x) gives inf - inf (NaN) for an infinite x, or
                        // overflows for huge ones, where MLX's sum of x * (s * q + b) does not.
                        c.o[(r0 + r) * c.n + col] = if (std.math.isFinite(v)) v else direct(c, col, r0 + r);
                    }
                }
            }
        }

        /// Output (r, col) as MLX's CPU kernel computes it: the sum of x * (s * q + b) in order
        /// of k, in float32 (multiply and add rounded separately); x read through the fast
        /// path's permutation.
        noinline fn direct(c: *const RowsCtx, col: usize, r: usize) f32 {
            @branchHint(.cold);
            const block = BW * E;
            var buf: [chunk_cols]f32 = undefined;
            const step = (chunk_cols / gs) * gs;
            const xr = c.x[r * c.k ..];
            var sum: f32 = 0;
            var c0: usize = 0;
            while (c0 < c.k) : (c0 += step) {
                const c1 = @min(c.k, c0 + step);
                c.qm.decodeRow(col, c0, c1, buf[0 .. c1 - c0]);
                for (c0..c1) |i| {
                    const e = i % block;
                    sum += xr[i - e + (e % E) * BW + e / E] * buf[i - c0];
                }
            }
            return sum;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Tests (test/dispatch.test.ts compares the levels' bits with the native build's through the
// library; test/quantized.test.ts checks the products against MLX)

const testing = std.testing;

const TestMat = struct {
    words: []u32,
    scales: []u16, // bfloat16 bits, or float32 bits in `scales32`
    scales32: []f32,
    biases32: []f32,
    qm: QMat,

    fn init(a: std.mem.Allocator, rnd: std.Random, rows: usize, cols: usize, bits: u32, gs: u32, bf16: bool) !TestMat {
        const nw = rows * cols * bits / 32;
        const groups = cols / gs;
        const words = try a.alloc(u32, nw);
        for (words) |*w| w.* = rnd.int(u32);
        const scales = try a.alloc(u16, rows * groups);
        const scales32 = try a.alloc(f32, rows * groups);
        const biases32 = try a.alloc(f32, rows * groups);
        for (scales, scales32, biases32) |*s, *s32, *b| {
            s32.* = (rnd.float(f32) - 0.5) * 0.1;
            s.* = half.f32ToBf16(s32.*);
            b.* = rnd.float(f32) * 2 - 1;
        }
        return .{
            .words = words,
            .scales = scales,
            .scales32 = scales32,
            .biases32 = biases32,
            .qm = .{
                .w = words.ptr,
                .s = if (bf16) @ptrCast(scales.ptr) else @ptrCast(scales32.ptr),
                .b = @ptrCast(biases32.ptr),
                .w_rs = @intCast(cols * bits / 32),
                .w_cs = 1,
                .s_rs = @intCast(groups),
                .s_cs = 1,
                .b_rs = @intCast(groups),
                .b_cs = 1,
                .mode = .affine,
                .group_size = gs,
                .bits = bits,
                .s_dtype = if (bf16) .bfloat16 else .float32,
                .b_dtype = .float32,
                .arith = .float32,
                .has_gscale = false,
                .gscale = 0,
            },
        };
    }

    fn deinit(t: *TestMat, a: std.mem.Allocator) void {
        a.free(t.words);
        a.free(t.scales);
        a.free(t.scales32);
        a.free(t.biases32);
    }
};

/// o (m x n) against x @ W^T (transposed) or x @ W in float64 from the decoded rows.
fn expectProduct(a: std.mem.Allocator, qm: *const QMat, x: []const f32, o: []const f32, m: usize, n: usize, k: usize, transpose: bool) !void {
    const rows = if (transpose) n else k;
    const cols = if (transpose) k else n;
    const dq = try a.alloc(f32, rows * cols);
    defer a.free(dq);
    for (0..rows) |r| qm.decodeRow(r, 0, cols, dq[r * cols ..][0..cols]);
    for (0..m) |i| for (0..n) |j| {
        var want: f64 = 0;
        var mag: f64 = 0;
        for (0..k) |kk| {
            const w = if (transpose) dq[j * cols + kk] else dq[kk * cols + j];
            const t = @as(f64, x[i * k + kk]) * w;
            want += t;
            mag += @abs(t);
        }
        if (!(@abs(o[i * n + j] - want) <= 1e-5 * mag + 1e-6)) {
            std.debug.print("qmm bits {d} gs {d} transpose {} at ({d}, {d}): {d} vs {d}\n", .{ qm.bits, qm.group_size, transpose, i, j, o[i * n + j], want });
            return error.TestExpectedEqual;
        }
    };
}

test "quantized products: fast, transposed and plain agree with the decoded matrix, the same bits at every CPU level" {
    const a = testing.allocator;
    const saved = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved);
    var prng = std.Random.DefaultPrng.init(7);
    const rnd = prng.random();
    const Case = struct { bits: u32, gs: u32, m: usize, n: usize, k: usize, bf16: bool = false };
    const cases = [_]Case{
        .{ .bits = 4, .gs = 64, .m = 1, .n = 13, .k = 512 },
        .{ .bits = 4, .gs = 32, .m = 5, .n = 9, .k = 4608 },
        .{ .bits = 8, .gs = 128, .m = 3, .n = 7, .k = 512, .bf16 = true },
        .{ .bits = 2, .gs = 32, .m = 2, .n = 5, .k = 256 },
        .{ .bits = 1, .gs = 64, .m = 6, .n = 3, .k = 1024 },
        .{ .bits = 3, .gs = 32, .m = 2, .n = 11, .k = 256 },
        .{ .bits = 6, .gs = 128, .m = 1, .n = 4, .k = 256, .bf16 = true },
    };
    for (cases) |c| {
        const x = try a.alloc(f32, c.m * c.k);
        defer a.free(x);
        for (x) |*v| v.* = rnd.float(f32) * 4 - 2;
        for ([_]bool{ true, false }) |transpose| {
            const n = if (transpose) c.n else c.k / 2;
            const k = if (transpose) c.k else c.n * 16;
            var tm = try TestMat.init(a, rnd, if (transpose) n else k, if (transpose) k else n, c.bits, c.gs, c.bf16);
            defer tm.deinit(a);
            const xk = x[0 .. c.m * k];
            // per path (fast, generic): level 0's output, then every other level's
            const first: [2][]f32 = .{ try a.alloc(f32, c.m * n), try a.alloc(f32, c.m * n) };
            defer for (first) |f| a.free(f);
            const o = try a.alloc(f32, c.m * n);
            defer a.free(o);
            const xp = try a.alloc(f32, c.m * k + c.m * (k / c.gs));
            defer a.free(xp);
            for (0..cpu.testLevelCount()) |li| {
                if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
                for (0..2) |path| {
                    @memset(o, 0);
                    const ctx = RowsCtx{ .qm = tm.qm, .x = xk.ptr, .o = o.ptr, .m = c.m, .n = n, .k = k };
                    if (path == 0) {
                        if (!transpose or fastBlock(&tm.qm, k) == null) continue;
                        fastPrep(&tm.qm, xk, c.m, k, xp);
                        var fc = ctx;
                        fc.x = xp.ptr;
                        fast(&fc);
                    } else if (transpose) transposed(&ctx) else plain(&ctx);
                    try expectProduct(a, &tm.qm, xk, o, c.m, n, k, transpose);
                    if (li == 0) @memcpy(first[path], o) else try testing.expectEqualSlices(u32, @ptrCast(first[path]), @ptrCast(o));
                }
            }
            // decodeRows (the GEMM path's dequantization) matches decodeRow at every level
            const rows = if (transpose) n else k;
            const cols = if (transpose) k else n;
            const want = try a.alloc(f32, rows * cols);
            defer a.free(want);
            const got = try a.alloc(f32, rows * cols);
            defer a.free(got);
            for (0..rows) |r| tm.qm.decodeRow(r, 0, cols, want[r * cols ..][0..cols]);
            for (0..cpu.testLevelCount()) |li| {
                if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
                decodeRows(&.{ .qm = tm.qm, .out = @ptrCast(got.ptr), .r0 = 0, .rows = rows, .cols = cols });
                try testing.expectEqualSlices(u32, @ptrCast(want), @ptrCast(got));
            }
        }
    }
}

test "fast path: infinite or huge x gives MLX's sum of x * (s * q + b) in order, the same bits at every CPU level" {
    const a = testing.allocator;
    const saved = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved);
    var prng = std.Random.DefaultPrng.init(17);
    const rnd = prng.random();
    const m = 5;
    const n = 9;
    const inf = std.math.inf(f32);
    for ([_][2]u32{ .{ 4, 64 }, .{ 8, 32 }, .{ 2, 128 }, .{ 1, 32 }, .{ 4, 128 } }) |bg| {
        const bits = bg[0];
        const gs = bg[1];
        const k: usize = 512;
        var tm = try TestMat.init(a, rnd, n, k, bits, gs, false);
        defer tm.deinit(a);
        // a zero scale and bias in one group: s * q + b = 0 there, so inf * 0 = NaN in MLX too
        tm.scales32[k / gs + 1] = 0;
        tm.biases32[k / gs + 1] = 0;
        const x = try a.alloc(f32, m * k);
        defer a.free(x);
        for (x) |*v| v.* = rnd.float(f32) * 4 - 2;
        // row 0 ordinary; 1: +inf; 2: every value 1e37 (group sums overflow); 3: -inf and +inf;
        // 4: three huge values whose partial sums overflow in order
        x[1 * k + 5] = inf;
        for (x[2 * k ..][0..k]) |*v| v.* = 1e37;
        x[3 * k + 3] = -inf;
        x[3 * k + 200] = inf;
        x[4 * k + 0] = 3e38;
        x[4 * k + 1] = 3e38;
        x[4 * k + 2] = -3e38;
        // the reference: in order of k, float32, from the decoded rows
        const dq = try a.alloc(f32, n * k);
        defer a.free(dq);
        for (0..n) |r| tm.qm.decodeRow(r, 0, k, dq[r * k ..][0..k]);
        const xp = try a.alloc(f32, m * k + m * (k / gs));
        defer a.free(xp);
        fastPrep(&tm.qm, x, m, k, xp);
        var o: [m * n]f32 = undefined;
        var first: [m * n]f32 = undefined;
        var nonfinite: usize = 0;
        for (0..cpu.testLevelCount()) |li| {
            if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
            @memset(&o, 0);
            fast(&.{ .qm = tm.qm, .x = xp.ptr, .o = &o, .m = m, .n = n, .k = k });
            for (1..m) |r| for (0..n) |j| {
                var want: f32 = 0;
                for (0..k) |kk| want += x[r * k + kk] * dq[j * k + kk];
                const got = o[r * n + j];
                if (!std.math.isFinite(want)) nonfinite += 1;
                // rows 1-3: the fast formula is never finite there, so the direct sum is taken
                if (r < 4 or !std.math.isFinite(want)) {
                    if (@as(u32, @bitCast(want)) != @as(u32, @bitCast(got)) and !(std.math.isNan(want) and std.math.isNan(got))) {
                        std.debug.print("bits {d} gs {d} ({d}, {d}): {e} vs {e}\n", .{ bits, gs, r, j, got, want });
                        return error.TestExpectedEqual;
                    }
                }
            };
            try expectProduct(a, &tm.qm, x[0..k], o[0..n], 1, n, k, true);
            if (li == 0) first = o else try testing.expectEqualSlices(u32, @ptrCast(&first), @ptrCast(&o));
        }
        try testing.expect(nonfinite > 0);
    }
}

/// Element (r, c) of a quantized matrix decoded one code at a time (the test's oracle for the
/// vector decode): the code's bits gathered bit by bit, the format's value from its definition.
fn refElem(m: *const QMat, r: usize, c: usize) f32 {
    const ri: isize = @intCast(r);
    const bits: u32 = m.bits;
    var q: u32 = 0;
    for (0..bits) |b| {
        const bit = c * bits + b;
        const wi: isize = @intCast(bit / 32);
        const word = (m.w + @as(usize, @bitCast(ri * m.w_rs + wi * m.w_cs)))[0];
        q |= ((word >> @intCast(bit % 32)) & 1) << @intCast(b);
    }
    const gi: isize = @intCast(c / m.group_size);
    switch (m.mode) {
        .affine => {
            const sv = loadAny(m.s_dtype, m.s, ri * m.s_rs + gi * m.s_cs);
            const bv = loadAny(m.b_dtype, m.b.?, ri * m.b_rs + gi * m.b_cs);
            const qf: f32 = @floatFromInt(q);
            const sq = if (m.arith == .float16 or m.arith == .bfloat16) m.arith else m.sq_dtype;
            return roundTo(m.arith, roundTo(sq, sv * qf) + bv);
        },
        .mxfp4, .nvfp4, .mxfp8 => {
            const sc: u32 = (m.s + @as(usize, @bitCast(ri * m.s_rs + gi * m.s_cs)))[0];
            const sv = if (m.has_gscale) fromE4m3(sc) * m.gscale else roundTo(m.arith, if (m.mode == .nvfp4) fromE4m3(sc) else fromE8m0(sc));
            return (if (m.mode == .mxfp8) fromE4m3(q) else fromFp4(q)) * sv;
        },
    }
}

test "decodeRow: every mode, bit width, arithmetic dtype and code stride against one code at a time" {
    const a = testing.allocator;
    const saved = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved);
    var prng = std.Random.DefaultPrng.init(11);
    const rnd = prng.random();
    const rows = 3;
    const cols = 256;
    // words with a column stride of 2 (the odd words are garbage that must not be read)
    const words = try a.alloc(u32, rows * cols * 8 / 32 * 2);
    defer a.free(words);
    for (words) |*w| w.* = rnd.int(u32);
    // scales/biases as float32 and bfloat16/float16 bits; a few NaN and infinite ones
    const ng = rows * (cols / 16);
    const s32 = try a.alloc(f32, ng);
    defer a.free(s32);
    const s16 = try a.alloc(u16, ng);
    defer a.free(s16);
    const s8 = try a.alloc(u8, ng);
    defer a.free(s8);
    for (s32, s16, s8, 0..) |*x, *h, *b, i| {
        x.* = (rnd.float(f32) - 0.5) * 3;
        if (i % 17 == 5) x.* = std.math.nan(f32);
        if (i % 23 == 7) x.* = -std.math.inf(f32);
        h.* = half.f32ToBf16(x.*);
        b.* = rnd.int(u8);
    }
    const got = try a.alloc(f32, cols);
    defer a.free(got);
    const Fmt = struct { mode: Mode, bits: u32, gs: u32 };
    var fmts: [7 * 3 + 3]Fmt = undefined;
    var nf: usize = 0;
    for ([_]u32{ 1, 2, 3, 4, 5, 6, 8 }) |bits| for ([_]u32{ 32, 64, 128 }) |gs| {
        fmts[nf] = .{ .mode = .affine, .bits = bits, .gs = gs };
        nf += 1;
    };
    fmts[nf] = .{ .mode = .mxfp4, .bits = 4, .gs = 32 };
    fmts[nf + 1] = .{ .mode = .mxfp8, .bits = 8, .gs = 32 };
    fmts[nf + 2] = .{ .mode = .nvfp4, .bits = 4, .gs = 16 };
    nf += 3;
    var checked: usize = 0;
    // mixed: bfloat16 scales with float32 biases (s * q rounded to bfloat16, + b in float32)
    for (fmts[0..nf]) |f| for ([_]Dtype{ .float32, .float16, .bfloat16 }) |arith| for ([_]isize{ 1, 2 }) |wcs| for ([_]bool{ false, true }) |gscale| for ([_]bool{ false, true }) |mixed| {
        if (gscale and f.mode != .nvfp4) continue;
        if (mixed and (f.mode != .affine or arith != .float32)) continue;
        const groups = cols / f.gs;
        const wpr: isize = @intCast(cols * f.bits / 32);
        const narrow_s = f.mode == .affine and (arith != .float32 or mixed);
        const qm = QMat{
            .w = words.ptr,
            .s = if (f.mode != .affine) @ptrCast(s8.ptr) else if (narrow_s) @ptrCast(s16.ptr) else @ptrCast(s32.ptr),
            .b = if (f.mode == .affine) @ptrCast(s32.ptr + 1) else null,
            .w_rs = wpr * wcs,
            .w_cs = wcs,
            .s_rs = @intCast(groups),
            .s_cs = 1,
            .b_rs = @intCast(groups),
            .b_cs = 1,
            .mode = f.mode,
            .group_size = f.gs,
            .bits = f.bits,
            .s_dtype = if (f.mode != .affine) .uint8 else if (narrow_s) .bfloat16 else .float32,
            .b_dtype = .float32,
            .arith = arith,
            .has_gscale = gscale,
            .gscale = 0.37,
            .sq_dtype = if (mixed) .bfloat16 else .float32,
        };
        // decodeRow as compiled here, for the whole row and from the second group on
        for (0..rows) |r| for ([_]usize{ 0, f.gs }) |c0| {
            qm.decodeRow(r, c0, cols, got[0 .. cols - c0]);
            for (c0..cols) |c| {
                const want: u32 = @bitCast(refElem(&qm, r, c));
                if (want != @as(u32, @bitCast(got[c - c0]))) {
                    std.debug.print("{s} bits {d} gs {d} arith {s} wcs {d}: ({d}, {d}) {x} vs {x}\n", .{ @tagName(f.mode), f.bits, f.gs, @tagName(arith), wcs, r, c, @as(u32, @bitCast(got[c - c0])), want });
                    return error.TestExpectedEqual;
                }
                checked += 1;
            }
        };
        // decodeRows at every CPU level, into each output dtype
        for (0..cpu.testLevelCount()) |li| {
            if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
            inline for (.{ Dtype.float32, Dtype.float16, Dtype.bfloat16, Dtype.float64 }) |D| {
                var out: [rows * cols]D.Type() = undefined;
                var want: [rows * cols]D.Type() = undefined;
                decodeRows(&.{ .qm = qm, .out = @ptrCast(&out), .out_dtype = D, .r0 = 0, .rows = rows, .cols = cols });
                for (0..rows) |r| for (0..cols) |c| storeAs(D, @ptrCast(&want), r * cols + c, refElem(&qm, r, c));
                try testing.expectEqualSlices(u8, std.mem.asBytes(&want), std.mem.asBytes(&out));
                checked += rows * cols;
            }
        }
    };
    try testing.expect(checked > 100_000);
}

test "rintV is rint, and packCodes inverts codes, for every bit width" {
    var prng = std.Random.DefaultPrng.init(5);
    const rnd = prng.random();
    for (0..4000) |it| {
        var x: @Vector(8, f32) = undefined;
        inline for (0..8) |i| {
            // halves and near-halves of every size, random bit patterns, the 2^23 boundary
            x[i] = switch ((it + i) % 4) {
                0 => @as(f32, @floatFromInt(rnd.intRangeAtMost(i32, -300, 300))) + 0.5,
                1 => @bitCast(rnd.int(u32)),
                2 => 0x1p23 - @as(f32, @floatFromInt(rnd.intRangeAtMost(i32, 0, 4))) * 0.5,
                else => (rnd.float(f32) - 0.5) * 40,
            };
        }
        const r = rintV(8, x);
        inline for (0..8) |i| {
            const want = rint(x[i]);
            if (std.math.isNan(want)) try testing.expect(std.math.isNan(r[i])) else try testing.expectEqual(want, r[i]);
        }
    }
    inline for (.{ 1, 2, 3, 4, 5, 6, 8 }) |B| {
        for (0..50) |_| {
            var w: [B]u32 = undefined;
            for (&w) |*v| v.* = rnd.int(u32);
            const q = codes(B, 32, w);
            const back = packCodes(B, 32, q);
            try testing.expectEqualSlices(u32, &w, &back);
        }
    }
}

test "toE4m3V is toE4m3" {
    var prng = std.Random.DefaultPrng.init(9);
    const rnd = prng.random();
    // every E4M3 value, the midpoints between neighbours (ties), and random floats of every size
    var xs: std.ArrayList(f32) = .empty;
    defer xs.deinit(testing.allocator);
    for (0..256) |c| {
        const v = fromE4m3(@intCast(c));
        const n = fromE4m3(@intCast(if (c & 0x7f == 0x7e) c else c + 1));
        try xs.appendSlice(testing.allocator, &.{ v, (v + n) / 2, std.math.nextAfter(f32, v, n), -v });
    }
    for (0..20000) |_| {
        const b = rnd.int(u32);
        try xs.appendSlice(testing.allocator, &.{ @bitCast(b), @as(f32, @bitCast(b & 0x87ff_ffff)) * 0x1p64 });
    }
    try xs.appendSlice(testing.allocator, &.{ 448, 464, 480, 0x1p-6, 0x1p-10, 0x1.8p-10, std.math.inf(f32), -std.math.inf(f32), std.math.nan(f32), -std.math.nan(f32) });
    while (xs.items.len % 16 != 0) try xs.append(testing.allocator, 1);
    var i: usize = 0;
    while (i < xs.items.len) : (i += 16) {
        const got = toE4m3V(16, xs.items[i..][0..16].*);
        for (0..16) |l| {
            const want = toE4m3(xs.items[i + l]);
            if (want != got[l]) {
                std.debug.print("toE4m3V({e}) = {x}, toE4m3 {x}\n", .{ xs.items[i + l], got[l], want });
                return error.TestExpectedEqual;
            }
        }
    }
}

test "toFp4V is toFp4 and fp4EvenV is fp4Even" {
    var prng = std.Random.DefaultPrng.init(11);
    const rnd = prng.random();
    // the grid, the midpoints (ties) and their neighbours, huge values where |x| - v rounds,
    // random floats of every size, non-finite values and signed zeros
    var xs: std.ArrayList(f32) = .empty;
    defer xs.deinit(testing.allocator);
    for (0..8) |i| {
        const v = fp4_values[i];
        const n = if (i == 7) 8 else fp4_values[i + 1];
        const mid = (v + n) / 2;
        for ([_]f32{ v, mid, std.math.nextAfter(f32, mid, 0), std.math.nextAfter(f32, mid, 100) }) |x| try xs.appendSlice(testing.allocator, &.{ x, -x });
    }
    for (0..20000) |_| {
        const b = rnd.int(u32);
        try xs.appendSlice(testing.allocator, &.{ @bitCast(b), (rnd.float(f32) - 0.5) * 16, @as(f32, @floatFromInt(rnd.intRangeAtMost(i32, -(1 << 28), 1 << 28))) * 2 });
    }
    try xs.appendSlice(testing.allocator, &.{ 0x1p25 + 8, 0x1p25 + 12, -(0x1p26 + 8), 0x1p27 + 16, 0.0, -0.0, std.math.inf(f32), -std.math.inf(f32), std.math.nan(f32), -std.math.nan(f32) });
    while (xs.items.len % 16 != 0) try xs.append(testing.allocator, 1);
    var i: usize = 0;
    while (i < xs.items.len) : (i += 16) {
        const v: @Vector(16, f32) = xs.items[i..][0..16].*;
        const got = toFp4V(16, v);
        const even = fp4EvenV(16, v);
        for (0..16) |l| {
            const x = xs.items[i + l];
            try testing.expectEqual(@as(u32, toFp4(x)), got[l]);
            try testing.expectEqual(@as(u32, @bitCast(fp4Even(x))), @as(u32, @bitCast(even[l])));
        }
    }
}

/// One group of quantize in the fp modes, one value at a time (the kernel's arithmetic before it
/// ran in vectors), for the test below: the scale byte and the codes as bytes (fp4: one per code).
fn refFpGroup(mode: Mode, vals: []const f32, in_dt: Dtype, gfactor: ?f32, codes_out: []u8) u8 {
    var amax: f32 = 0;
    switch (mode) {
        .nvfp4 => {
            for (vals) |v| amax = if (std.math.isNan(v) or std.math.isNan(amax)) std.math.nan(f32) else @max(amax, @abs(v));
            var raw = roundTo(in_dt, amax / 6);
            if (gfactor) |f| raw *= f;
            const sc = toE4m3Sat(raw);
            const scale = fromE4m3(sc);
            for (vals, codes_out) |v, *c| {
                var el = roundTo(in_dt, v / scale);
                if (gfactor) |f| el *= f;
                c.* = toFp4(el);
            }
            return sc;
        },
        else => {
            var finite = true;
            for (vals) |v| {
                finite = finite and std.math.isFinite(v);
                amax = @max(amax, @abs(v));
            }
            if (!finite) {
                // MLX: codes from v / 0 in the input's dtype (x86's 0 / 0 is a negative NaN;
                // bfloat16 makes NaNs positive), saturated keeping the sign.
                for (vals, codes_out) |v, *c| {
                    const neg = if (std.math.isNan(v)) in_dt != .bfloat16 and std.math.signbit(v) else if (v == 0) in_dt != .bfloat16 else v < 0;
                    c.* = if (mode == .mxfp4) 0 else if (neg) 0xfe else 0x7e;
                }
                return if (in_dt == .float32) 128 else 0;
            }
            const s = roundTo(in_dt, amax / @as(f32, if (mode == .mxfp4) 6 else 448));
            const e: i32 = if (s == 0) 0 else ceilLog2(s);
            const scale = std.math.ldexp(@as(f32, 1), e);
            for (vals, codes_out) |v, *c| c.* = if (mode == .mxfp4) toFp4(v / scale) else toE4m3(v / scale);
            return @truncate(@as(u32, @bitCast(e + 127)));
        },
    }
}

test "quantize and qqmm's rounding in the fp modes: the vectors against one value at a time" {
    var prng = std.Random.DefaultPrng.init(13);
    const rnd = prng.random();
    const groups = 64;
    const a = testing.allocator;
    for ([_]Mode{ .mxfp4, .mxfp8, .nvfp4 }) |mode| for ([_]Dtype{ .float32, .float16, .bfloat16 }) |dt| for ([_]?f32{ null, 0.37 }) |gfactor| {
        if (gfactor != null and mode != .nvfp4) continue;
        const gs: usize = if (mode == .nvfp4) 16 else 32;
        const bits: u32 = if (mode == .mxfp8) 8 else 4;
        const n = groups * gs;
        const w = try a.alloc(f32, n);
        defer a.free(w);
        const raw = try a.alloc(u16, n);
        defer a.free(raw);
        for (w, 0..) |*v, i| {
            const g = i / gs;
            v.* = switch (g % 8) {
                0 => 0, // an all-zero group
                // NaN (either sign) with zeros of both signs and negative values
                1 => switch (i % gs) {
                    3 => std.math.nan(f32),
                    9 => -std.math.nan(f32),
                    4 => 0,
                    5 => -0.0,
                    else => if (i % 3 == 0) -1 else 1,
                },
                2 => switch (i % gs) { // infinite
                    5 => std.math.inf(f32),
                    7 => if (g % 16 == 2) -std.math.inf(f32) else 0,
                    else => if (i % 2 == 0) -2 else 3,
                },
                3 => @as(f32, @floatFromInt(rnd.intRangeAtMost(i32, -12, 12))) * 0.25, // grid values and ties
                // tiny: amax / maxval subnormal or 0 in float16 (1e-6) or bfloat16 (1e-37)
                4 => (rnd.float(f32) - 0.5) * (if (g % 16 == 4) @as(f32, 1e-6) else 1e-37),
                5 => (rnd.float(f32) - 0.5) * 3e4, // large
                6 => (rnd.float(f32) - 0.5) * 2e-3, // small: amax / 448 subnormal in float16
                else => (rnd.float(f32) - 0.5) * 10,
            };
            // The input as the dtype would hold it.
            v.* = roundTo(dt, v.*);
            raw[i] = if (dt == .float16) half.f32ToF16(v.*) else half.f32ToBf16(v.*);
        }
        const src: [*]const u8 = if (dt == .float32) @ptrCast(w.ptr) else @ptrCast(raw.ptr);
        const words = try a.alloc(u32, n * bits / 32);
        defer a.free(words);
        var scales: [groups]u8 = undefined;
        const ctx = QuantCtx{ .w = src, .w_dt = dt, .codes = words.ptr, .scales = &scales, .biases = null, .s_dt = .uint8, .p = .{ .mode = mode, .group_size = @intCast(gs), .bits = bits }, .in_dt = dt, .has_gfactor = gfactor != null, .gfactor = gfactor orelse 0, .groups = groups };
        ctx.range(0, groups);
        var want_codes: [32]u8 = undefined;
        for (0..groups) |g| {
            const sc = refFpGroup(mode, w[g * gs ..][0..gs], dt, gfactor, want_codes[0..gs]);
            try testing.expectEqual(sc, scales[g]);
            for (0..gs) |e| {
                const idx = g * gs + e;
                const got: u32 = if (bits == 8) @as([*]const u8, @ptrCast(words.ptr))[idx] else (words[idx / 8] >> @intCast(4 * (idx % 8))) & 15;
                try testing.expectEqual(@as(u32, want_codes[e]), got);
            }
        }
        // qqmm's rounding (no global scale): scale * the rounded value, against the scalar form.
        if (gfactor != null) continue;
        const out = try a.alloc(f32, n);
        defer a.free(out);
        const q = QdqCtx{ .x = src, .x_dt = dt, .out = @ptrCast(out.ptr), .dt = .float32, .p = ctx.p, .groups = groups };
        q.range(0, groups);
        for (0..groups) |g| {
            const vals = w[g * gs ..][0..gs];
            var amax: f32 = 0;
            for (vals) |v| amax = @max(amax, @abs(v));
            // The scale's own formula is shared (its values are checked by the MLX qqmm fixtures,
            // test/quantized_qqmm.test.ts); the group's largest magnitude and each element's
            // rounding are computed here one value at a time.
            const scale = qdqScale(amax, gs, bits);
            for (vals, 0..) |v, e| {
                const el: f32 = if (scale == 0) 0 else v / scale;
                const want = scale * (if (bits == 8) fromE4m3(toE4m3(el)) else fp4Even(el));
                const got = out[g * gs + e];
                if (std.math.isNan(want)) try testing.expect(std.math.isNan(got)) else try testing.expectEqual(@as(u32, @bitCast(want)), @as(u32, @bitCast(got)));
            }
        }
    };
}
