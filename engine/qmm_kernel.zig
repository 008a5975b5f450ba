//! The quantized matrix product's kernels (prims/quantized.zig evalQmm): decoding rows of a
//! quantized matrix into float32, and the few-rows products that decode on the fly.
//!
//!  * `fast`: x @ W^T with affine codes of 1, 2, 4 or 8 bits (the LLM decode path): one group is
//!    a vector of W words, shifted once per code position, against a copy of x permuted to match
//!    (`fastPrep`); per group s * sum(q * x) + b * sum(x).
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
    /// Affine: the dtype of s * q, then + b (each rounded to it when narrower than float32).
    /// The fp modes: the scale is rounded to it.
    arith: Dtype,
    /// nvfp4 with a global scale g: gscale = g / 2688 in float32; the values are q * (scale * gscale).
    has_gscale: bool,
    gscale: f32,

    /// Decode row r, columns [c0, c1) (group-aligned), into out as float32 values.
    pub fn decodeRow(m: *const QMat, r: usize, c0: usize, c1: usize, out: []f32) void {
        const ri: isize = @intCast(r);
        const woff = ri * m.w_rs;
        const wcs = m.w_cs;
        const soff = ri * m.s_rs;
        const scs = m.s_cs;
        const boff = ri * m.b_rs;
        const bcs = m.b_cs;
        const gs = m.group_size;
        const bits = m.bits;
        const word = struct {
            inline fn at(base: [*]const u32, off: isize, cs: isize, i: usize) u32 {
                return (base + @as(usize, @bitCast(off + @as(isize, @intCast(i)) * cs)))[0];
            }
        }.at;
        var g = c0 / gs;
        while (g * gs < c1) : (g += 1) {
            const o = out[g * gs - c0 ..][0..gs];
            const col0 = g * gs;
            const gi: isize = @intCast(g);
            switch (m.mode) {
                .affine => {
                    const sv = loadAny(m.s_dtype, m.s, soff + gi * scs);
                    const bv = loadAny(m.b_dtype, m.b.?, boff + gi * bcs);
                    const mask: u32 = (@as(u32, 1) << @intCast(bits)) - 1;
                    const narrow = m.arith == .float16 or m.arith == .bfloat16;
                    if (!narrow and bits == 4 and wcs == 1) {
                        // Fast path: 8 codes a word, 16 lanes at once.
                        const V = @Vector(16, f32);
                        const U = @Vector(16, u32);
                        const shifts: @Vector(16, u5) = .{ 0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28 };
                        const ws: [*]const u32 = m.w + @as(usize, @bitCast(woff)) + col0 / 8;
                        var e: usize = 0;
                        while (e < gs) : (e += 16) {
                            const a: u32 = ws[e / 8];
                            const b2: u32 = ws[e / 8 + 1];
                            const both: U = .{ a, a, a, a, a, a, a, a, b2, b2, b2, b2, b2, b2, b2, b2 };
                            const q: U = (both >> shifts) & @as(U, @splat(15));
                            const qf: V = @floatFromInt(q);
                            o[e..][0..16].* = qf * @as(V, @splat(sv)) + @as(V, @splat(bv));
                        }
                        continue;
                    }
                    for (0..gs) |e| {
                        const bit = (col0 + e) * bits;
                        const wi = bit / 32;
                        const off: u5 = @intCast(bit % 32);
                        var q = word(m.w, woff, wcs, wi) >> off;
                        if (@as(u32, off) + bits > 32) q |= word(m.w, woff, wcs, wi + 1) << @intCast(32 - @as(u32, off));
                        q &= mask;
                        const qf: f32 = @floatFromInt(q);
                        o[e] = if (narrow) roundTo(m.arith, roundTo(m.arith, sv * qf) + bv) else sv * qf + bv;
                    }
                },
                .mxfp4, .nvfp4 => {
                    const sc: u32 = (m.s + @as(usize, @bitCast(soff + gi * scs)))[0];
                    const sv = if (m.has_gscale) fromE4m3(sc) * m.gscale else roundTo(m.arith, if (m.mode == .mxfp4) fromE8m0(sc) else fromE4m3(sc));
                    for (0..gs) |e| {
                        const c = col0 + e;
                        const q = (word(m.w, woff, wcs, c / 8) >> @intCast(4 * (c % 8))) & 15;
                        o[e] = fromFp4(q) * sv;
                    }
                },
                .mxfp8 => {
                    const sc: u32 = (m.s + @as(usize, @bitCast(soff + gi * scs)))[0];
                    const sv = roundTo(m.arith, fromE8m0(sc));
                    for (0..gs) |e| {
                        const c = col0 + e;
                        const q = (word(m.w, woff, wcs, c / 4) >> @intCast(8 * (c % 4))) & 255;
                        o[e] = fromE4m3(q) * sv;
                    }
                },
            }
        }
    }
};

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

/// ceil(log2(s)) for finite s > 0, exactly.
pub fn ceilLog2(s: f32) i32 {
    const fr = std.math.frexp(s); // s = m * 2^e, m in [0.5, 1)
    return if (fr.significand == 0.5) fr.exponent - 1 else fr.exponent;
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

/// qqmm's rounding of x (mxfp4/mxfp8/nvfp4 without a global scale): `groups` groups of a
/// row-major float32 copy quantized and dequantized into out (dtype dt).
pub const QdqCtx = extern struct {
    x: [*]const f32,
    out: [*]u8,
    dt: Dtype,
    p: Params,
    groups: usize,

    fn range(j: *const QdqCtx, g0: usize, g1: usize) void {
        const gs = j.p.group_size;
        for (g0..g1) |g| {
            const vals = j.x[g * gs .. (g + 1) * gs];
            var amax: f32 = 0;
            for (vals) |v| amax = @max(amax, @abs(v));
            const s0 = amax / @as(f32, if (j.p.bits == 4) 6 else 448);
            const scale: f32 = if (gs == 16) fromE4m3(toE4m3(s0)) else if (s0 == 0) 0x1p-127 else if (!std.math.isFinite(s0)) std.math.inf(f32) else std.math.ldexp(@as(f32, 1), ceilLog2(s0));
            for (vals, 0..) |v, e| {
                const el: f32 = if (scale == 0) 0 else v / scale;
                const q: f32 = if (j.p.bits == 8) fromE4m3(toE4m3(el)) else fp4Even(el);
                store(j.dt, j.out, g * gs + e, scale * q);
            }
        }
    }
};

/// One output of quantize (`part` 0: the codes, 1: the scales, 2: the biases) for `groups`
/// groups of a row-major float32 copy of W with rows of k values.
pub const QuantCtx = extern struct {
    w: [*]const f32,
    out: [*]u8,
    dt: Dtype,
    p: Params,
    part: u8,
    k: usize,
    in_half: bool,
    /// The input's dtype (nvfp4 rounds its arithmetic to it).
    in_dt: Dtype,
    /// nvfp4 with a global scale g: gfactor = 2688 / g in float32.
    has_gfactor: bool,
    gfactor: f32,
    groups: usize,

    fn range(j: *const QuantCtx, g0: usize, g1: usize) void {
        const gs = j.p.group_size;
        const groups_per_row = j.k / gs;
        const words_per_row = j.k * j.p.bits / 32;
        for (g0..g1) |g| {
            const row = g / groups_per_row;
            const gi = g % groups_per_row;
            const vals = j.w[g * gs .. (g + 1) * gs];
            const words: [*]u32 = @ptrCast(@alignCast(j.out));
            switch (j.p.mode) {
                .affine => {
                    const n_bins: f32 = @floatFromInt((@as(u32, 1) << @intCast(j.p.bits)) - 1);
                    var w_max: f32 = -std.math.inf(f32);
                    var w_min: f32 = std.math.inf(f32);
                    for (vals) |v| {
                        w_max = @max(w_max, v);
                        w_min = @min(w_min, v);
                    }
                    var scale = @max((w_max - w_min) / n_bins, @as(f32, 1e-7));
                    var bias: f32 = 0;
                    if (j.p.bits == 1) {
                        // One bit: the plain min-max grid.
                        bias = w_min;
                    } else {
                        // The grid is moved so the larger-magnitude edge is exactly representable.
                        const mask = @abs(w_min) > @abs(w_max);
                        if (!mask) scale = -scale;
                        const edge = if (mask) w_min else w_max;
                        const q0r = rint(edge / scale);
                        if (q0r != 0) {
                            scale = edge / q0r;
                            bias = edge;
                        }
                    }
                    switch (j.part) {
                        1 => store(j.dt, j.out, g, scale),
                        2 => store(j.dt, j.out, g, bias),
                        else => {
                            const b = j.p.bits;
                            const base_bit = row * words_per_row * 32 + gi * gs * b;
                            // The group's words are whole (gs * b is a multiple of 32).
                            const w0 = base_bit / 32;
                            const nw = gs * b / 32;
                            @memset(words[w0 .. w0 + nw], 0);
                            for (vals, 0..) |v, e| {
                                const q: u32 = @intFromFloat(@min(@max(rint((v - bias) / scale), 0), n_bins));
                                const bit = e * b;
                                const wi = w0 + bit / 32;
                                const off: u5 = @intCast(bit % 32);
                                words[wi] |= q << off;
                                if (@as(u32, off) + b > 32) words[wi + 1] |= q >> @intCast(32 - @as(u32, off));
                            }
                        },
                    }
                },
                .mxfp4, .mxfp8 => {
                    var amax: f32 = 0;
                    for (vals) |v| amax = @max(amax, @abs(v));
                    const maxval: f32 = if (j.p.mode == .mxfp4) 6 else 448;
                    const s = amax / maxval;
                    if (!std.math.isFinite(s)) {
                        // MLX: scale byte 128 (float32 input) or 0 (half input), fp4 codes 0.
                        if (j.part == 1) {
                            j.out[g] = if (j.in_half) 0 else 128;
                        } else if (j.p.mode == .mxfp4) {
                            @memset(words[g * gs / 8 .. (g + 1) * gs / 8], 0);
                        } else {
                            @memset((j.out + g * gs)[0..gs], 0x7f);
                        }
                        continue;
                    }
                    const e: i32 = if (s == 0) 0 else ceilLog2(s);
                    if (j.part == 1) {
                        j.out[g] = @truncate(@as(u32, @bitCast(e + 127)));
                        continue;
                    }
                    const scale = std.math.ldexp(@as(f32, 1), e);
                    if (j.p.mode == .mxfp4) {
                        const w0 = g * gs / 8;
                        for (0..gs / 8) |wi| {
                            var word: u32 = 0;
                            for (0..8) |e2| word |= @as(u32, toFp4(vals[wi * 8 + e2] / scale)) << @intCast(4 * e2);
                            words[w0 + wi] = word;
                        }
                    } else {
                        const bytes = j.out + g * gs;
                        for (vals, 0..) |v, e2| bytes[e2] = toE4m3(v / scale);
                    }
                },
                .nvfp4 => {
                    // In the input's dtype (each float32 step rounded to it), the global factor
                    // 2688 / g applied in float32; see the file's header.
                    var amax: f32 = 0;
                    for (vals) |v| amax = if (std.math.isNan(v) or std.math.isNan(amax)) std.math.nan(f32) else @max(amax, @abs(v));
                    var raw = roundTo(j.in_dt, amax / 6);
                    if (j.has_gfactor) raw *= j.gfactor;
                    const sc = toE4m3Sat(raw);
                    if (j.part == 1) {
                        j.out[g] = sc;
                        continue;
                    }
                    const scale = fromE4m3(sc);
                    const w0 = g * gs / 8;
                    for (0..gs / 8) |wi| {
                        var word: u32 = 0;
                        for (0..8) |e2| {
                            var el = roundTo(j.in_dt, vals[wi * 8 + e2] / scale);
                            if (j.has_gfactor) el *= j.gfactor;
                            word |= @as(u32, toFp4(el)) << @intCast(4 * e2);
                        }
                        words[w0 + wi] = word;
                    }
                },
            }
        }
    }
};

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

/// quantize's output `c.part`, over the pool.
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
                        for (vals, 0..) |v, i| storeAs(D, d.out, at + i, v);
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
                    for (0..rn) |r| c.o[(r0 + r) * c.n + col] = @reduce(.Add, accv[r]) + accb[r];
                }
            }
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
