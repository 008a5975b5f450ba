//! Quantization: quantize, dequantize and the quantized matrix product (dequantize on the fly).
//! MLX's formats and rules, established by experiment against mlx-cpu 0.32.4:
//!  * affine (group sizes 32/64/128, bits 1..6 and 8): per group of `gs` consecutive elements of
//!    a row, in float32: max, min; mask = |min| > |max|; scale = max((max - min) / (2^b - 1),
//!    1e-7), negated unless mask; edge = mask ? min : max; q0 = rint(edge / scale); when q0 != 0,
//!    scale = edge / q0 and bias = edge, else bias = 0. q = clamp(rint((w - bias) / scale), 0,
//!    2^b - 1) with the float32 scale and bias; scales and biases are stored in w's dtype. The
//!    codes form a little-endian bit stream (element i at bits [i*b, (i+1)*b) of the row's
//!    uint32 words), for every b.
//!    Dequantize computes s * q rounded to the scales' dtype, then + b rounded to the promoted
//!    dtype of scales and biases (its default output dtype), then casts.
//!  * mxfp4 / mxfp8 (group 32, E2M1 / E4M3 elements, E8M0 scale, no bias): e = ceil(log2(T(amax /
//!    maxval))) with maxval 6 / 448, the quotient rounded to the input's dtype T (e = 0 when it is
//!    0: an all-zero group, or a half input's quotient underflowing), scale byte = (e + 127) mod
//!    256; elements w / 2^e. A group holding a NaN or an infinity: scale byte 128 (float32 input)
//!    or 0 (half input), E2M1 codes 0, E4M3 codes ±448 by the sign of w / 0 computed in T (zeros
//!    give x86's negative default NaN; bfloat16 makes every NaN positive: qmm_kernel.zig
//!    nonFiniteE4m3). E4M3 rounds to nearest even. An E2M1 code is the first of the values
//!    0, .5, 1, 1.5, 2, 3, 4, 6 nearest to |x| with the distances |x| - v computed in float32
//!    (so ties go toward zero; non-finite x and |x| >= 2^27 give code 0, and 2^25 <= |x| < 2^27
//!    code 4 or 6 for an odd last mantissa bit, 7 otherwise), the sign bit set unless the code is 0.
//!  * nvfp4 (group 16, E2M1 elements, E4M3 scale), in the input's dtype T (float32 arithmetic
//!    rounded to T after each step): amax = max |w| (NaN propagates); raw = T(amax / 6), times
//!    (2688 / g) in float32 with a global scale g (2688 = 448 * 6); scale byte = e4m3(raw)
//!    (nearest even, saturating at ±448 with infinities and NaN, keeping the sign: a negative g
//!    gives negative scales, a zero one 0x00 or 0x80); elements T(w / scale), times (2688 / g)
//!    in float32 with g, to E2M1 as above (w / 0 is infinite or NaN: code 0).
//!    Dequantize with g: q * (scale * (g / 2688)) in float32.
//!  * E8M0 byte 0 decodes to 2^-127, 255 to infinity; codes pack 8 (fp4) or 4 (fp8) per word.
//! The product accumulates in float32 (MLX's CPU kernel accumulates in the output dtype); its
//! kernels are in engine/qmm_kernel.zig, which a portable build runs at the CPU's level.
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const alloc = @import("../alloc.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const abi_util = @import("../abi_util.zig");
const convert = @import("../convert.zig");
const half = @import("../half.zig");
const gemm = @import("../gemm.zig");
const qk = @import("../qmm_kernel.zig");
const copy = @import("copy.zig");
const shape_ops = @import("shape.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

pub const Mode = qk.Mode;

pub const Params = qk.Params;

pub const Prim = union(enum) {
    /// One output of quantize (part 0: the codes (uint32), 1: scales, 2: biases), a view of its
    /// stretch of the packed node that is its input (`quantize_all`). (Files exported before
    /// that node existed give w (..., k), [global scale] instead: then the part computes the
    /// packed buffer itself.)
    quantize: struct { p: Params, part: u8 },
    /// Every output of quantize at once, packed (`Packed`): inputs w (..., k), [global scale
    /// (nvfp4: a float32 of one element)]; a hidden uint32 node the parts view.
    quantize_all: Params,
    /// inputs: wq, scales, [biases (broadcast to scales' shape) | global scale (nvfp4)].
    dequantize: Params,
    /// inputs: x (batch..., m, k) float32-convertible, wq, scales, [biases]; batch dims equal.
    qmm: struct { p: Params, transpose: bool },
    /// input: x (..., k), floating; x rounded through an fp mode, in x's dtype (MLX's CPU
    /// quantize_dequantize, used by qqmm on its activations).
    qdq: Params,

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .qdq => "quantize_dequantize",
            .quantize, .quantize_all => "quantize",
            .dequantize => "dequantize",
            .qmm => "quantized_matmul",
        };
    }
};

// ---------------------------------------------------------------------------------------------
// Parameters

/// Group size and bits with the mode's defaults for 0 (None), validated with MLX's messages.
pub fn resolve(mode: Mode, group_size: i32, bits: i32, op: []const u8) errors.Error!Params {
    const p = defaults(mode, group_size, bits);
    try validate(p, op);
    return p;
}

/// The mode's defaults for 0 (None); unvalidated (negative values become huge, and fail).
pub fn defaults(mode: Mode, group_size: i32, bits: i32) Params {
    const want_gs: i32 = switch (mode) {
        .affine => 64,
        .nvfp4 => 16,
        else => 32,
    };
    const want_bits: i32 = if (mode == .mxfp8) 8 else 4;
    const gs = if (group_size == 0) want_gs else group_size;
    const b = if (bits == 0) want_bits else bits;
    return .{ .mode = mode, .group_size = @bitCast(gs), .bits = @bitCast(b) };
}

pub fn validate(p: Params, op: []const u8) errors.Error!void {
    _ = try resolveChecked(p.mode, @bitCast(p.group_size), @bitCast(p.bits), op);
}

fn resolveChecked(mode: Mode, group_size: i32, bits: i32, op: []const u8) errors.Error!Params {
    switch (mode) {
        .affine => {
            const gs: i32 = if (group_size == 0) 64 else group_size;
            const b: i32 = if (bits == 0) 4 else bits;
            if (gs != 32 and gs != 64 and gs != 128)
                return errors.fail(.invalid_argument, "[{s}] The requested group size {d} is not supported. The supported group sizes are 32, 64, and 128.", .{ op, gs });
            switch (b) {
                1, 2, 3, 4, 5, 6, 8 => {},
                else => return errors.fail(.invalid_argument, "[{s}] The requested number of bits {d} is not supported. The supported bits are 1, 2, 3, 4, 5, 6 and 8.", .{ op, b }),
            }
            return .{ .mode = mode, .group_size = @intCast(gs), .bits = @intCast(b) };
        },
        else => {
            const want_gs: i32 = if (mode == .nvfp4) 16 else 32;
            const want_bits: i32 = if (mode == .mxfp8) 8 else 4;
            const gs: i32 = if (group_size == 0) want_gs else group_size;
            const b: i32 = if (bits == 0) want_bits else bits;
            if (gs != want_gs)
                return errors.fail(.invalid_argument, "[{s}] {s} quantization requires group size {d} but got {d}.", .{ op, @tagName(mode), want_gs, gs });
            if (b != want_bits)
                return errors.fail(.invalid_argument, "[{s}] {s} quantization requires bits to be {d} but got {d}.", .{ op, @tagName(mode), want_bits, b });
            return .{ .mode = mode, .group_size = @intCast(gs), .bits = @intCast(b) };
        },
    }
}

fn modeArg(v: u32, op: []const u8) errors.Error!Mode {
    return std.meta.intToEnum(Mode, v) catch errors.fail(.invalid_argument, "[{s}] Invalid quantization mode.", .{op});
}

fn isFloat(d: Dtype) bool {
    return d == .float16 or d == .bfloat16 or d == .float32 or d == .float64;
}

// ---------------------------------------------------------------------------------------------
// Graph-building ops

/// Where quantize's outputs lie in the packed node, in bytes: the codes from 0, the scales and
/// then the biases each from a 16-byte boundary (a float64 scale stays aligned).
const Packed = struct {
    /// Elements of W (a multiple of the group size).
    n: usize,
    p: Params,
    /// The scales' (and biases') dtype.
    s_dt: Dtype,

    /// quantize(w)'s layout for a W of `n` elements and dtype `w_dt`.
    fn of(n: usize, w_dt: Dtype, p: Params) Packed {
        return .{ .n = n, .p = p, .s_dt = scaleDtype(w_dt, p) };
    }
    /// The scales' (and biases') dtype: W's for affine, uint8 (E8M0 or E4M3 bytes) otherwise.
    fn scaleDtype(w_dt: Dtype, p: Params) Dtype {
        return if (p.mode == .affine) w_dt else .uint8;
    }
    fn groups(l: Packed) usize {
        return l.n / l.p.group_size;
    }
    fn scalesAt(l: Packed) usize {
        return std.mem.alignForward(usize, l.n * l.p.bits / 8, 16);
    }
    fn biasesAt(l: Packed) usize {
        return l.scalesAt() + std.mem.alignForward(usize, l.groups() * l.s_dt.size(), 16);
    }
    /// The packed node's length in uint32 words.
    fn words(l: Packed) usize {
        const end = if (l.p.mode == .affine) l.biasesAt() + l.groups() * l.s_dt.size() else l.biasesAt();
        return std.mem.alignForward(usize, end, 16) / 4;
    }
    fn partAt(l: Packed, part: u8) usize {
        return switch (part) {
            0 => 0,
            1 => l.scalesAt(),
            else => l.biasesAt(),
        };
    }
    /// The byte offset of output `part` (a node of that part's shape and dtype) in its packed
    /// node.
    fn offsetOf(part: *const Node, p: Params, idx: u8) usize {
        if (idx == 0) return 0;
        const l = Packed{ .n = part.size() * p.group_size, .p = p, .s_dt = part.dtype };
        return l.partAt(idx);
    }
};

/// quantize(w): its outputs (the codes, the scales and, in affine mode, the biases), all views
/// of one packed node computed once. `global` (nvfp4 only): the float32 global scale of one
/// element, or null. MLX's order of checks: w's dtype, its rank, the group size dividing its last
/// axis, the global scale, then the mode's group size and bits. Returns how many outputs `out`
/// got (the caller owns them).
pub fn quantize(w: *Node, p: Params, global: ?*Node, stream: u32, out: *[3]*Node) errors.Error!usize {
    const pk = try quantizeAll(w, p, global, stream);
    defer array.release(pk);
    const nparts: usize = if (p.mode == .affine) 3 else 2;
    var made: usize = 0;
    errdefer for (out[0..made]) |o| array.release(o);
    while (made < nparts) : (made += 1) out[made] = try quantizePart(pk, w.shape, w.dtype, p, @intCast(made), stream);
    return nparts;
}

/// The packed node of quantize(w) (the checks of `quantize`).
fn quantizeAll(w: *Node, p: Params, global: ?*Node, stream: u32) errors.Error!*Node {
    const op = "quantize";
    if (@as(i32, @bitCast(p.group_size)) <= 0) try validate(p, op);
    if (!isFloat(w.dtype))
        return errors.fail(.invalid_argument, "[{s}] Only real floating types can be quantized but w has type {s}.", .{ op, w.dtype.name() });
    if (w.shape.ndim < 2)
        return errors.fail(.invalid_argument, "[{s}] The matrix to be quantized must have at least 2 dimension but it has only {d}.", .{ op, w.shape.ndim });
    const k = w.shape.dims[w.shape.ndim - 1];
    if (@rem(k, @as(i32, @intCast(p.group_size))) != 0) {
        var b1: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[{s}] The last dimension of the matrix needs to be divisible by the quantization group size {d}. However the provided  matrix has shape {s}", .{ op, p.group_size, w.shape.format(&b1) });
    }
    if (global) |g| try checkGlobal(g, p.mode, op);
    try validate(p, op);
    const l = Packed.of(w.size(), w.dtype, p);
    // One axis of words, or rows of 1024 words past what one axis holds.
    const words = l.words();
    const shape = if (words <= std.math.maxInt(i32))
        try Shape.fromSlice(&.{@as(i32, @intCast(words))}, op)
    else
        try Shape.fromSlice(&.{ @as(i32, @intCast(std.math.divCeil(usize, words, 1024) catch unreachable)), 1024 }, op);
    const prim: primitives.Primitive = .{ .quantized = .{ .quantize_all = p } };
    if (global) |g| return array.create(.uint32, shape, prim, &.{ w, g }, stream);
    return array.create(.uint32, shape, prim, &.{w}, stream);
}

/// The shape and dtype of quantize's output `part` for a W of shape `ws` and dtype `wdt`.
fn partShape(ws: Shape, wdt: Dtype, p: Params, part: u8) struct { Shape, Dtype } {
    var s = ws;
    const k = s.dims[s.ndim - 1];
    if (part == 0) {
        s.dims[s.ndim - 1] = @intCast(@divExact(@as(i64, k) * p.bits, 32));
        return .{ s, .uint32 };
    }
    s.dims[s.ndim - 1] = @divExact(k, @as(i32, @intCast(p.group_size)));
    return .{ s, Packed.scaleDtype(wdt, p) };
}

/// Output `part` of the packed node `pk` (of a W of shape `ws` and dtype `wdt`).
fn quantizePart(pk: *Node, ws: Shape, wdt: Dtype, p: Params, part: u8, stream: u32) errors.Error!*Node {
    const sd = partShape(ws, wdt, p, part);
    return array.create(sd[1], sd[0], .{ .quantized = .{ .quantize = .{ .p = p, .part = part } } }, &.{pk}, stream);
}

/// A global scale: nvfp4 only, float32, one element (any shape), with MLX's messages.
fn checkGlobal(g: *Node, mode: Mode, op: []const u8) errors.Error!void {
    if (mode != .nvfp4)
        return errors.fail(.invalid_argument, "[{s}] Global scale is only supported for 'nvfp4' quantization mode.", .{op});
    if (g.dtype != .float32)
        return errors.fail(.invalid_argument, "[{s}] Global scale must have dtype float32 but got {s}.", .{ op, g.dtype.name() });
    if (g.size() != 1) {
        var b1: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[{s}] Global scale must be a scalar but got shape {s}.", .{ op, g.shape.format(&b1) });
    }
}

/// The global scale input of a quantize or dequantize node, if it has one.
fn globalOf(node: *const Node, p: Prim) ?*Node {
    return switch (p) {
        .quantize, .quantize_all => if (node.inputs.len > 1) node.inputs[1] else null,
        .dequantize => |q| if (q.mode != .affine and node.inputs.len > 2) node.inputs[2] else null,
        else => null,
    };
}

/// The float32 value of a global scale node (one element).
fn globalValue(g: *const Node) f32 {
    return readF32(g, 0);
}

/// x rounded through the fp mode `p` (nvfp4, mxfp4 or mxfp8) group by group along its last axis,
/// as MLX's CPU backend rounds qqmm's activations: scale = amax / (6 or 448) rounded to the scale
/// format (E4M3 for group 16, E8M0 by ceil(log2) otherwise); elements x / scale rounded to E4M3 or
/// to E2M1 with ties to even (mx.quantize's E2M1 ties toward zero instead); out = scale * value
/// rounded to x's dtype.
pub fn quantizeDequantize(x: *Node, p: Params, stream: u32) errors.Error!*Node {
    const op = "qqmm";
    if (p.mode == .affine) return errors.fail(.invalid_argument, "[{s}] Only 'nvfp4' and 'mxfp8' modes are supported but got 'affine'.", .{op});
    try validate(p, op);
    if (x.dtype != .float32 and x.dtype != .float16 and x.dtype != .bfloat16)
        return errors.fail(.invalid_argument, "[{s}] Only real floating types except float64 are supported but first argument dtype == {s}.", .{ op, x.dtype.name() });
    if (x.shape.ndim < 1) return errors.fail(.invalid_argument, "[{s}] The input must have at least 1 dimension.", .{op});
    const k = x.shape.dims[x.shape.ndim - 1];
    if (@rem(k, @as(i32, @intCast(p.group_size))) != 0) {
        var b1: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[{s}] The last dimension of the input needs to be divisible by the quantization group size {d}. However the provided input has shape {s}", .{ op, p.group_size, x.shape.format(&b1) });
    }
    return array.create(x.dtype, x.shape, .{ .quantized = .{ .qdq = p } }, &.{x}, stream);
}

/// Checks common to dequantize and quantized_matmul on (wq, scales, biases).
fn checkScalesDtype(p: Params, scales: *Node, biases: ?*Node, op: []const u8) errors.Error!void {
    if (p.mode == .affine) {
        if (biases == null)
            return errors.fail(.invalid_argument, "[{s}] Biases must be provided for affine quantization.", .{op});
    } else {
        if (biases != null)
            return errors.fail(.invalid_argument, "[{s}] Biases must be null for quantization mode '{s}'.", .{ op, @tagName(p.mode) });
        if (scales.dtype != .uint8)
            return errors.fail(.invalid_argument, "[{s}] Scale type must be uint8 but received type {s}.", .{ op, scales.dtype.name() });
    }
}

/// `global` (nvfp4 only): the float32 global scale of one element, or null; with it the result
/// defaults to float32 (as MLX, whose result is float32 whatever the requested dtype; an
/// explicit dtype is honoured here, the float32 values rounded to it).
pub fn dequantize(wq: *Node, scales: *Node, biases: ?*Node, global: ?*Node, p: Params, out_dtype: ?Dtype, stream: u32) errors.Error!*Node {
    const op = "dequantize";
    if (wq.dtype != .uint32)
        return errors.fail(.invalid_argument, "[{s}] The matrix should be given as a uint32", .{op});
    if (wq.shape.ndim < 2)
        return errors.fail(.invalid_argument, "[{s}] The matrix to be dequantized must have at least 2 dimension but it has only {d}.", .{ op, wq.shape.ndim });
    if (p.mode != .affine) {
        if (scales.dtype != .uint8)
            return errors.fail(.invalid_argument, "[{s}] Scale type must be uint8 but received type {s}.", .{ op, scales.dtype.name() });
    }
    try checkScalesDtype(p, scales, biases, op);
    if (global) |g| {
        // MLX checks the global scale before the mode's group size and bits.
        try checkGlobal(g, p.mode, op);
        try validate(p, op);
    }
    // scales: same batch dims, last = k / gs.
    const kw: i64 = wq.shape.dims[wq.shape.ndim - 1];
    const k = @divTrunc(kw * 32, p.bits);
    var ok = scales.shape.ndim == wq.shape.ndim and @rem(kw * 32, p.bits) == 0 and @rem(k, p.group_size) == 0 and
        scales.shape.dims[scales.shape.ndim - 1] == @divTrunc(k, p.group_size);
    if (ok) {
        for (0..wq.shape.ndim - 1) |i| ok = ok and scales.shape.dims[i] == wq.shape.dims[i];
    }
    if (!ok) {
        var b1: [256]u8 = undefined;
        var b2: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[{s}] Shape of scales and biases does not match the matrix given the quantization parameters. Provided matrix of shape {s} and scales/biases of shape {s} with group_size={d} and bits={d}.", .{ op, wq.shape.format(&b1), scales.shape.format(&b2), p.group_size, p.bits });
    }
    const dt: Dtype = out_dtype orelse if (p.mode == .affine) blk: {
        const d = dtype_mod.promote(scales.dtype, biases.?.dtype);
        break :blk if (isFloat(d)) d else .float32;
    } else if (global != null) .float32 else .bfloat16;
    if (!isFloat(dt))
        return errors.fail(.invalid_argument, "[{s}] Only real floating types are supported but output dtype == {s}.", .{ op, dt.name() });
    var s = wq.shape;
    s.dims[s.ndim - 1] = @intCast(k);
    if (biases) |b| {
        const bb = try copy.broadcastTo(b, scales.shape, stream);
        defer array.release(bb);
        return array.create(dt, s, .{ .quantized = .{ .dequantize = p } }, &.{ wq, scales, bb }, stream);
    }
    if (global) |g| return array.create(dt, s, .{ .quantized = .{ .dequantize = p } }, &.{ wq, scales, g }, stream);
    return array.create(dt, s, .{ .quantized = .{ .dequantize = p } }, &.{ wq, scales }, stream);
}

fn withBatch(x: *Node, batch: *const Shape, stream: u32) errors.Error!*Node {
    var want = batch.*;
    want.ndim += 2;
    want.dims[batch.ndim] = x.shape.dims[x.shape.ndim - 2];
    want.dims[batch.ndim + 1] = x.shape.dims[x.shape.ndim - 1];
    return copy.broadcastTo(x, want, stream);
}

pub fn quantizedMatmul(x_in: *Node, wq: *Node, scales: *Node, biases: ?*Node, p: Params, transpose: bool, stream: u32, op: []const u8) errors.Error!*Node {
    if (wq.dtype != .uint32)
        return errors.fail(.invalid_argument, "[{s}] The weight matrix should be uint32 but received {s}", .{ op, wq.dtype.name() });
    try checkScalesDtype(p, scales, biases, op);
    if (x_in.shape.ndim == 0)
        return errors.fail(.invalid_argument, "[{s}] Got 0 dimension input. Inputs must have at least one dimension.", .{op});
    var b1: [256]u8 = undefined;
    var b2: [256]u8 = undefined;
    // Batch shapes of w and scales must match.
    const wn = wq.shape.ndim;
    var same = wn == scales.shape.ndim and wn >= 2;
    if (same) {
        for (0..wn - 2) |i| same = same and wq.shape.dims[i] == scales.shape.dims[i];
    }
    if (!same) {
        var ws = Shape{ .ndim = if (wn >= 2) wn - 2 else wn };
        @memcpy(ws.dims[0..ws.ndim], wq.shape.dims[0..ws.ndim]);
        var ss = Shape{ .ndim = if (scales.shape.ndim >= 2) scales.shape.ndim - 2 else scales.shape.ndim };
        @memcpy(ss.dims[0..ss.ndim], scales.shape.dims[0..ss.ndim]);
        return errors.fail(.invalid_argument, "[{s}] Weight and scales should have the same batch shape. Received weight with shape {s}, scales with {s}.", .{ op, ws.format(&b1), ss.format(&b2) });
    }
    const w_rows: i64 = wq.shape.dims[wn - 2];
    const w_words: i64 = wq.shape.dims[wn - 1];
    const w_cols = @divTrunc(w_words * 32, p.bits);
    if (scales.shape.dims[wn - 2] != w_rows or @rem(w_words * 32, p.bits) != 0 or @rem(w_cols, p.group_size) != 0 or
        scales.shape.dims[wn - 1] != @divTrunc(w_cols, p.group_size))
    {
        return errors.fail(.invalid_argument, "[{s}] The shapes of the weight and scales are incompatible based on bits and group_size. w.shape() == {s} and scales.shape() == {s} with group_size={d} and bits={d}", .{ op, wq.shape.format(&b1), scales.shape.format(&b2), p.group_size, p.bits });
    }
    const k: i64 = if (transpose) w_cols else w_rows;
    const n: i64 = if (transpose) w_rows else w_cols;
    if (x_in.shape.dims[x_in.shape.ndim - 1] != k) {
        return errors.fail(.invalid_argument, "[{s}] Last dimension of first input with shape (..., {d}) does not match the expanded quantized matrix ({d}, {d}) computed from shape {s} with group_size={d}, bits={d} and transpose={s}", .{ op, x_in.shape.dims[x_in.shape.ndim - 1], k, n, wq.shape.format(&b1), p.group_size, p.bits, if (transpose) "true" else "false" });
    }
    // Output dtype.
    var dt = if (p.mode == .affine) dtype_mod.promote(x_in.dtype, dtype_mod.promote(scales.dtype, biases.?.dtype)) else x_in.dtype;
    if (!isFloat(dt)) dt = .float32;
    // x lifted to a matrix; batch dims broadcast.
    var xs = x_in.shape;
    if (xs.ndim == 1) {
        xs.dims[1] = xs.dims[0];
        xs.dims[0] = 1;
        xs.ndim = 2;
    }
    var xb = Shape{ .ndim = xs.ndim - 2 };
    @memcpy(xb.dims[0..xb.ndim], xs.dims[0..xb.ndim]);
    var wb = Shape{ .ndim = wn - 2 };
    @memcpy(wb.dims[0..wb.ndim], wq.shape.dims[0..wb.ndim]);
    const batch = try copy.broadcastShapes(&xb, &wb, "broadcast_shapes");
    const x1 = if (x_in.shape.ndim == 1) try shape_ops.reshape(x_in, xs.slice(), stream) else blk: {
        x_in.retain();
        break :blk x_in;
    };
    defer array.release(x1);
    const x = try withBatch(x1, &batch, stream);
    defer array.release(x);
    const w2 = try withBatch(wq, &batch, stream);
    defer array.release(w2);
    const s2 = try withBatch(scales, &batch, stream);
    defer array.release(s2);
    var full = batch;
    full.ndim += 2;
    full.dims[batch.ndim] = xs.dims[xs.ndim - 2];
    full.dims[batch.ndim + 1] = @intCast(n);
    _ = try full.sizeChecked(op);
    const prim: primitives.Primitive = .{ .quantized = .{ .qmm = .{ .p = p, .transpose = transpose } } };
    const node = if (biases) |b| blk: {
        const bb = try copy.broadcastTo(b, scales.shape, stream);
        defer array.release(bb);
        const b2x = try withBatch(bb, &batch, stream);
        defer array.release(b2x);
        break :blk try array.create(dt, full, prim, &.{ x, w2, s2, b2x }, stream);
    } else try array.create(dt, full, prim, &.{ x, w2, s2 }, stream);
    if (x_in.shape.ndim != 1) return node;
    defer array.release(node);
    var final = batch;
    final.dims[final.ndim] = @intCast(n);
    final.ndim += 1;
    return shape_ops.reshape(node, final.slice(), stream);
}

// ---------------------------------------------------------------------------------------------
// Element formats

const fp4_values = qk.fp4_values;
const fromFp4 = qk.fromFp4;
const fromE4m3 = qk.fromE4m3;
const fromE8m0 = qk.fromE8m0;
const toFp4 = qk.toFp4;
const toE4m3 = qk.toE4m3;
const toE4m3Sat = qk.toE4m3Sat;
const ceilLog2 = qk.ceilLog2;
const fp4Even = qk.fp4Even;
const store = qk.store;

// ---------------------------------------------------------------------------------------------
// Reading and writing floats of any float dtype

const loadF32 = qk.loadF32;

fn readF32(node: *const Node, i: isize) f32 {
    const base = node.data();
    return switch (node.dtype) {
        inline else => |D| loadF32(D, base, i),
    };
}

const roundTo = qk.roundTo;

/// Offset (elements) of batch item `i` of node x (batch dims: all but the last two).
const batchOffset = @import("matmul.zig").batchOffset;

// ---------------------------------------------------------------------------------------------
// Kernels

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    switch (p) {
        .quantize => |q| try evalQuantize(node, q.p, q.part),
        .quantize_all => |q| try evalQuantizeAll(node, q),
        .dequantize => |q| try evalDequantize(node, q),
        .qmm => |q| try evalQmm(node, q.p, q.transpose),
        .qdq => |q| try evalQdq(node, q),
    }
}

/// The elements of x for a kernel that reads float32/float16/bfloat16 a group at a time: x's
/// own data when it is row-contiguous in one of those dtypes, else a float32 copy.
const GroupSrc = struct {
    ptr: [*]const u8,
    dt: Dtype,
    copy: ?alloc.Scratch(f32) = null,

    fn of(x: *Node, op: []const u8) errors.Error!GroupSrc {
        if ((x.dtype == .float32 or x.dtype == .float16 or x.dtype == .bfloat16) and x.isRowContiguous())
            return .{ .ptr = x.data(), .dt = x.dtype };
        const buf = try alloc.Scratch(f32).init(x.size(), op);
        convert.copyConvert(x, @ptrCast(buf.items.ptr), .float32);
        return .{ .ptr = @ptrCast(buf.items.ptr), .dt = .float32, .copy = buf };
    }

    fn deinit(g: GroupSrc) void {
        if (g.copy) |c| c.deinit();
    }
};

fn evalQdq(node: *Node, p: Params) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    const n = x.size();
    if (n == 0) return;
    const src = try GroupSrc.of(x, "qqmm");
    defer src.deinit();
    qk.qdqGroups(&.{ .x = src.ptr, .x_dt = src.dt, .out = node.data(), .dt = node.dtype, .p = p, .groups = n / p.group_size });
}

/// The packed node: every output of quantize(w) at its `Packed` offset.
fn evalQuantizeAll(node: *Node, p: Params) errors.Error!void {
    try primitives.allocOutput(node, null);
    const g: ?*Node = if (node.inputs.len > 1) node.inputs[1] else null;
    try quantizeInto(node.inputs[0], g, p, node.data());
}

/// quantize(w)'s outputs written at their `Packed` offsets from dst.
fn quantizeInto(w: *Node, global: ?*Node, p: Params, dst: [*]u8) errors.Error!void {
    const n = w.size();
    if (n == 0) return;
    const src = try GroupSrc.of(w, "quantize");
    defer src.deinit();
    const l = Packed.of(n, w.dtype, p);
    qk.quantizeGroups(&.{
        .w = src.ptr,
        .w_dt = src.dt,
        .codes = @ptrCast(@alignCast(dst)),
        .scales = dst + l.scalesAt(),
        .biases = if (p.mode == .affine) dst + l.biasesAt() else null,
        .s_dt = l.s_dt,
        .p = p,
        .in_dt = w.dtype,
        .has_gfactor = global != null,
        .gfactor = if (global) |gn| @as(f32, 2688) / globalValue(gn) else 0,
        .groups = n / p.group_size,
    });
}

/// One output of quantize: a view of its stretch of the packed node (or, for a node from a file
/// exported before the packed node existed, whose input is W itself, of a packed buffer computed
/// here).
fn evalQuantize(node: *Node, p: Params, part: u8) errors.Error!void {
    const src = node.inputs[0];
    if (node.size() == 0) return primitives.allocOutput(node, null);
    node.setRowContiguousStrides();
    const at = Packed.offsetOf(node, p, part);
    if (src.dtype == .uint32) {
        shape_ops.share(node, src, src.offset + at);
        return;
    }
    const l = Packed.of(src.size(), src.dtype, p);
    const buf = try array.newBuffer(l.words() * 4, "quantize");
    defer buf.release();
    try quantizeInto(src, if (node.inputs.len > 1) node.inputs[1] else null, p, buf.ptr);
    buf.retain();
    node.buffer = buf;
    node.offset = at;
}

/// A quantized matrix's nodes (codes, scales, biases); `at` gives one batch item as the plain
/// pointers and strides qmm_kernel.zig decodes (the kernels must not see Nodes: in a portable
/// build they run in the kernel objects). `arith` is the dtype of affine's s * q, then + b (each
/// rounded to it when narrower than float32); gscale the nvfp4 global scale g / 2688.
const QSrc = struct {
    w: *const Node,
    s: *const Node,
    b: ?*const Node,
    p: Params,
    arith: Dtype,
    gscale: ?f32 = null,
    /// Affine dequantize: the dtype s * q is rounded to before + b (qk.QMat.sq_dtype).
    sq_dtype: Dtype = .float32,

    fn at(q: *const QSrc, bi: usize) qk.QMat {
        const nd = q.w.shape.ndim;
        const b = q.b;
        return .{
            .w = @ptrCast(@alignCast(elementPtr(q.w, batchOffset(q.w, bi)))),
            .s = elementPtr(q.s, batchOffset(q.s, bi)),
            .b = if (b) |bn| elementPtr(bn, batchOffset(bn, bi)) else null,
            .w_rs = @intCast(q.w.strides[nd - 2]),
            .w_cs = @intCast(q.w.strides[nd - 1]),
            .s_rs = @intCast(q.s.strides[nd - 2]),
            .s_cs = @intCast(q.s.strides[nd - 1]),
            .b_rs = if (b) |bn| @intCast(bn.strides[nd - 2]) else 0,
            .b_cs = if (b) |bn| @intCast(bn.strides[nd - 1]) else 0,
            .mode = q.p.mode,
            .group_size = q.p.group_size,
            .bits = q.p.bits,
            .s_dtype = q.s.dtype,
            .b_dtype = if (b) |bn| bn.dtype else .float32,
            .arith = q.arith,
            .has_gscale = q.gscale != null,
            .gscale = q.gscale orelse 0,
            .sq_dtype = q.sq_dtype,
        };
    }
};

/// The address of element `off` (in elements, possibly negative) of node's data.
fn elementPtr(node: *const Node, off: isize) [*]const u8 {
    const addr = @as(isize, @bitCast(@intFromPtr(node.data()))) + off * @as(isize, @intCast(node.dtype.size()));
    return @ptrFromInt(@as(usize, @bitCast(addr)));
}

fn evalDequantize(node: *Node, p: Params) errors.Error!void {
    try primitives.allocOutput(node, null);
    const w = node.inputs[0];
    const s = node.inputs[1];
    const b: ?*const Node = if (p.mode == .affine) node.inputs[2] else null;
    const nd = w.shape.ndim;
    const cols: usize = @intCast(node.shape.dims[nd - 1]);
    const rows_per: usize = @intCast(node.shape.dims[nd - 2]);
    if (node.size() == 0) return;
    const batch = node.size() / (cols * rows_per);
    const global = globalOf(node, .{ .dequantize = p });
    const arith: Dtype = if (p.mode == .affine) blk: {
        const d = dtype_mod.promote(s.dtype, b.?.dtype);
        break :blk if (isFloat(d)) d else .float32;
    } else node.dtype;
    const gscale: ?f32 = if (global) |g| globalValue(g) / @as(f32, 2688) else null;
    // MLX rounds s * q to the scales' dtype, then adds the bias in the promoted dtype.
    const sq_dtype: Dtype = if (s.dtype == .float16 or s.dtype == .bfloat16) s.dtype else .float32;
    // Each batch item's rows decoded at the CPU's level (qmm_kernel.zig decodeRows).
    const src = QSrc{ .w = w, .s = s, .b = b, .p = p, .arith = arith, .gscale = gscale, .sq_dtype = sq_dtype };
    const item_bytes = rows_per * cols * node.dtype.size();
    for (0..batch) |bi| {
        qk.decodeRows(&.{ .qm = src.at(bi), .out = node.data() + bi * item_bytes, .out_dtype = node.dtype, .r0 = 0, .rows = rows_per, .cols = cols });
    }
}

fn evalQmm(node: *Node, p: Params, transpose: bool) errors.Error!void {
    try primitives.allocOutput(node, null);
    const x = node.inputs[0];
    const w = node.inputs[1];
    const s = node.inputs[2];
    const b: ?*const Node = if (node.inputs.len > 3) node.inputs[3] else null;
    const nd = node.shape.ndim;
    const m: usize = @intCast(node.shape.dims[nd - 2]);
    const n: usize = @intCast(node.shape.dims[nd - 1]);
    const k: usize = @intCast(x.shape.dims[nd - 1]);
    if (node.size() == 0) return;
    const batch = node.size() / (m * n);
    // x as contiguous float32 (batch, m, k); the output accumulates in float32.
    const xs = try alloc.Scratch(f32).init(batch * m * k, "quantized_matmul");
    defer xs.deinit();
    const xf = xs.items;
    if (k > 0) convert.copyConvert(x, @ptrCast(xf.ptr), .float32);
    const direct = node.dtype == .float32;
    const acc_s: ?alloc.Scratch(f32) = if (direct) null else try alloc.Scratch(f32).init(batch * m * n, "quantized_matmul");
    defer if (acc_s) |a| a.deinit();
    const acc = if (acc_s) |a| a.items else @as([*]f32, @ptrCast(@alignCast(node.data())))[0 .. batch * m * n];
    @memset(acc, 0);
    if (k > 0) {
        const src = QSrc{ .w = w, .s = s, .b = b, .p = p, .arith = .float32 };
        for (0..batch) |bi| {
            const xb = xf[bi * m * k ..][0 .. m * k];
            const ob = acc[bi * m * n ..][0 .. m * n];
            const qm = src.at(bi);
            if (m >= gemm_rows) {
                try viaGemm(&qm, xb, ob, m, n, k, transpose);
            } else if (transpose) {
                if (!try fastTransposed(&qm, xb, ob, m, n, k)) {
                    qk.transposed(&.{ .qm = qm, .x = xb.ptr, .o = ob.ptr, .m = m, .n = n, .k = k });
                }
            } else {
                qk.plain(&.{ .qm = qm, .x = xb.ptr, .o = ob.ptr, .m = m, .n = n, .k = k });
            }
        }
    }
    if (!direct) {
        for (acc, 0..) |v, i| store(node.dtype, node.data(), i, v);
    }
}

/// From this many rows of x on, the weights are dequantized in blocks and multiplied by the GEMM.
const gemm_rows = 16;

/// Many rows of x: dequantize blocks of W into float32 (qmm_kernel.zig, at the CPU's level) and
/// multiply with the GEMM.
fn viaGemm(qm: *const qk.QMat, x: []const f32, o: []f32, m: usize, n: usize, k: usize, transpose: bool) errors.Error!void {
    // W's stored rows: n (transpose) or k; each has `cols` columns.
    const rows = if (transpose) n else k;
    const cols = if (transpose) k else n;
    const block = @max(1, @min(rows, (8 << 20) / (cols * 4)));
    const bs = try alloc.Scratch(f32).init(block * cols, "quantized_matmul");
    defer bs.deinit();
    const buf = bs.items;
    var r0: usize = 0;
    while (r0 < rows) : (r0 += block) {
        const nb = @min(block, rows - r0);
        qk.decodeRows(&.{ .qm = qm.*, .out = @ptrCast(buf.ptr), .r0 = r0, .rows = nb, .cols = cols });
        const M = gemm.Mat(f32);
        if (transpose) {
            // o[:, r0..r0+nb] = x (m x k) @ block^T (k x nb)
            const am = M{ .ptr = @constCast(x.ptr), .rs = @intCast(k), .cs = 1 };
            const bm = M{ .ptr = buf.ptr, .rs = 1, .cs = @intCast(cols) };
            const cm = M{ .ptr = o.ptr + r0, .rs = @intCast(n), .cs = 1 };
            gemm.gemm(f32, f32, f32, f32, m, nb, k, 1, am, bm, 0, cm);
        } else {
            // o += x[:, r0..r0+nb] (m x nb) @ block (nb x n)
            const am = M{ .ptr = @constCast(x.ptr) + r0, .rs = @intCast(k), .cs = 1 };
            const bm = M{ .ptr = buf.ptr, .rs = @intCast(cols), .cs = 1 };
            const cm = M{ .ptr = o.ptr, .rs = @intCast(n), .cs = 1 };
            gemm.gemm(f32, f32, f32, f32, m, n, nb, 1, am, bm, 1, cm);
        }
    }
}

/// The fast path (qmm_kernel.zig `fast`) for affine codes of 1, 2, 4 or 8 bits with x @ W^T and
/// few rows of x; false when the case is not covered.
fn fastTransposed(qm: *const qk.QMat, x: []const f32, o: []f32, m: usize, n: usize, k: usize) errors.Error!bool {
    if (qk.fastBlock(qm, k) == null) return false;
    const xs = try alloc.Scratch(f32).init(m * k + m * (k / qm.group_size), "quantized_matmul");
    defer xs.deinit();
    qk.fastPrep(qm, x, m, k, xs.items);
    qk.fast(&.{ .qm = qm.*, .x = xs.items.ptr, .o = o.ptr, .m = m, .n = n, .k = k });
    return true;
}

// ---------------------------------------------------------------------------------------------
// Transform rules

/// The cotangent of the scales (or biases) of quantized weights whose dequantized matrix has
/// cotangent dw (..., rows, cols): per group, sum(dw * q) (or sum(dw)).
fn groupGrad(dw: *Node, wq: *Node, sc: *Node, p: Params, want_scales: bool, s: u32) errors.Error!*Node {
    const grad = @import("../grad.zig");
    const red = @import("reduce.zig");
    const ew = @import("elementwise.zig");
    const prod = if (want_scales) blk: {
        const one = try grad.constant(1, .float32, s);
        defer array.release(one);
        const zero = try grad.constant(0, .float32, s);
        defer array.release(zero);
        const ones = try copy.broadcastTo(one, sc.shape, s);
        defer array.release(ones);
        const zeros = try copy.broadcastTo(zero, sc.shape, s);
        defer array.release(zeros);
        const q = try dequantize(wq, ones, zeros, null, p, .float32, s);
        defer array.release(q);
        break :blk try ew.binary(.multiply, dw, q, s);
    } else blk: {
        dw.retain();
        break :blk dw;
    };
    defer array.release(prod);
    var gshape = dw.shape;
    const last = gshape.ndim - 1;
    gshape.dims[last] = @divExact(gshape.dims[last], @as(i32, @intCast(p.group_size)));
    gshape.dims[last + 1] = @intCast(p.group_size);
    gshape.ndim += 1;
    const r = try shape_ops.reshape(prod, gshape.slice(), s);
    defer array.release(r);
    const sum = try red.reduce(.sum, r, &.{-1}, false, s);
    defer array.release(sum);
    return copy.astype(sum, sc.dtype, s);
}

/// quantized_matmul is differentiable in x (the product with the other transpose) and, in affine
/// mode, in the scales and biases (through the dequantized matrix's cotangent); the codes get
/// MLX's error. dequantize: the scales and biases likewise.
pub fn vjp(node: *Node, p: Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    const mm = @import("matmul.zig");
    switch (p) {
        .qmm => |q| {
            const x = node.inputs[0];
            const w = node.inputs[1];
            const sc = node.inputs[2];
            const b: ?*Node = if (node.inputs.len > 3) node.inputs[3] else null;
            if (arg == 0) {
                const r = try quantizedMatmul(g, w, sc, b, q.p, !q.transpose, s, "quantized_matmul");
                defer array.release(r);
                return copy.astype(r, x.dtype, s);
            }
            if (arg == 1) return errors.fail(.invalid_argument, "[QuantizedMatmul::vjp] no gradient wrt the quantized weights.", .{});
            if (q.p.mode != .affine) return errors.fail(.invalid_argument, "[QuantizedMatmul::vjp] no gradient wrt the quantization scales in mode '{s}'.", .{@tagName(q.p.mode)});
            // dW = g^T x (W: n x k) or x^T g (W: k x n)
            const gt = try shape_ops.swapaxes(if (q.transpose) g else x, -1, -2, s);
            defer array.release(gt);
            const dw = if (q.transpose) try mm.matmul(gt, x, s) else try mm.matmul(gt, g, s);
            defer array.release(dw);
            return groupGrad(dw, w, sc, q.p, arg == 2, s);
        },
        .quantize, .quantize_all => return errors.fail(.not_implemented, "[quantize] The vjp of this primitive is not implemented yet.", .{}),
        .qdq => return errors.fail(.not_implemented, "[qqmm] The vjp of the activation quantization is not implemented (MLX's CPU backend cannot differentiate qqmm either).", .{}),
        .dequantize => |q| {
            if (arg == 0) return errors.fail(.invalid_argument, "[dequantize] no gradient wrt the quantized weights.", .{});
            if (arg == 2 and q.mode != .affine) {
                // The global scale g: out = q * (scale * (g / 2688)), so the cotangent is
                // sum(cot * q * scale) / 2688, in g's shape.
                const red = @import("reduce.zig");
                const ew = @import("elementwise.zig");
                const grad = @import("../grad.zig");
                const gnode = node.inputs[2];
                const dq = try dequantize(node.inputs[0], node.inputs[1], null, null, q, .float32, s);
                defer array.release(dq);
                const gf = try copy.astype(g, .float32, s);
                defer array.release(gf);
                const prod = try ew.binary(.multiply, gf, dq, s);
                defer array.release(prod);
                var all_axes: [max_ndim]i32 = undefined;
                for (0..prod.shape.ndim) |i| all_axes[i] = @intCast(i);
                const sum = try red.reduce(.sum, prod, all_axes[0..prod.shape.ndim], false, s);
                defer array.release(sum);
                const c = try grad.constant(2688, .float32, s);
                defer array.release(c);
                const d = try ew.binary(.divide, sum, c, s);
                defer array.release(d);
                return shape_ops.reshape(d, gnode.shape.slice(), s);
            }
            if (q.mode != .affine) return errors.fail(.invalid_argument, "[dequantize] no gradient wrt the quantization scales in mode '{s}'.", .{@tagName(q.mode)});
            return groupGrad(g, node.inputs[0], node.inputs[1], q, arg == 1, s);
        },
    }
}

/// Batching: every input gets the batch axis first (broadcast when unbatched); quantize and
/// dequantize treat it as one more leading dimension; the product batches x only (MLX's
/// QuantizedMatmul has no vmap at all). The packed node of a batch is flat, as any packed node:
/// its parts, made with the batch axis first, know where to look.
pub fn vmapRule(node: *Node, p: Prim, bx: []const ?*Node, bsize: i32, s: u32) errors.Error!*Node {
    if (p == .quantize and node.inputs[0].dtype == .uint32) {
        var sh = Shape{ .ndim = node.shape.ndim + 1 };
        sh.dims[0] = bsize;
        @memcpy(sh.dims[1..sh.ndim], node.shape.slice());
        return array.create(node.dtype, sh, node.prim, &.{bx[0].?}, s);
    }
    var made: [4]?*Node = .{ null, null, null, null };
    defer for (made) |m| if (m) |x| array.release(x);
    var ins: [4]*Node = undefined;
    const gl = globalOf(node, p);
    for (node.inputs, 0..) |in, i| {
        if (gl != null and in == gl.? and i == node.inputs.len - 1) {
            // The global scale stays one value for the whole batch.
            if (bx[i] != null) return errors.fail(.invalid_argument, "[{s}] vmap over the global scale is not supported.", .{p.name()});
            ins[i] = in;
        } else if (bx[i]) |x| {
            ins[i] = x;
        } else if (p == .qmm and i == 0) {
            ins[i] = in;
        } else {
            var want = Shape{ .ndim = in.shape.ndim + 1 };
            want.dims[0] = bsize;
            @memcpy(want.dims[1..want.ndim], in.shape.dims[0..in.shape.ndim]);
            var one = want;
            one.dims[0] = 1;
            const r = try shape_ops.reshape(in, one.slice(), s);
            defer array.release(r);
            made[i] = try copy.broadcastTo(r, want, s);
            ins[i] = made[i].?;
        }
    }
    switch (p) {
        .quantize_all => |q| return quantizeAll(ins[0], q, gl, s),
        .quantize => |q| {
            // A part whose input is W itself (an exported file's).
            const pk = try quantizeAll(ins[0], q.p, gl, s);
            defer array.release(pk);
            return quantizePart(pk, ins[0].shape, ins[0].dtype, q.p, q.part, s);
        },
        .qdq => |q| return quantizeDequantize(ins[0], q, s),
        .dequantize => |q| return dequantize(ins[0], ins[1], if (q.mode == .affine) ins[2] else null, gl, q, node.dtype, s),
        .qmm => |q| {
            for (1..node.inputs.len) |i| {
                if (bx[i] != null) return errors.fail(.invalid_argument, "[QuantizedMatmul::vmap] NYI", .{});
            }
            const x = bx[0].?;
            const r = try quantizedMatmul(x, node.inputs[1], node.inputs[2], if (node.inputs.len > 3) node.inputs[3] else null, q.p, q.transpose, s, "quantized_matmul");
            return r;
        },
    }
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn quantizeAbi(w: u32, global_scale: u32, group_size: i32, bits: i32, mode: u32, s: i32) callconv(.c) i32 {
    const r = blk: {
        const x = handles.get(w, "quantize") catch |e| break :blk e;
        const gl: ?*Node = if (global_scale == 0) null else handles.get(global_scale, "quantize") catch |e| break :blk e;
        const m = modeArg(mode, "quantize") catch |e| break :blk e;
        const p = defaults(m, group_size, bits);
        const stream = stream_mod.resolve(s, "quantize") catch |e| break :blk e;
        var out: [3]*Node = undefined;
        const n = quantize(x, p, gl, stream, &out) catch |e| break :blk e;
        const grad = @import("../grad.zig");
        grad.clearResults();
        for (out[0..n], 0..) |o, i| grad.pushResult(o) catch |e| {
            for (out[i + 1 .. n]) |rest| array.release(rest);
            break :blk e;
        };
        break :blk n;
    };
    const n = r catch return -@intFromEnum(errors.code());
    return @intCast(n);
}

fn dequantizeAbi(w: u32, scales: u32, biases: u32, global_scale: u32, group_size: i32, bits: i32, dtype: i32, mode_stream: i32) callconv(.c) u32 {
    // mode in the low byte, stream above it (eight integer arguments at most).
    return abi_util.handleOf(blk: {
        const x = handles.get(w, "dequantize") catch |e| break :blk e;
        const sc = handles.get(scales, "dequantize") catch |e| break :blk e;
        const b: ?*Node = if (biases == 0) null else handles.get(biases, "dequantize") catch |e| break :blk e;
        const gl: ?*Node = if (global_scale == 0) null else handles.get(global_scale, "dequantize") catch |e| break :blk e;
        const m = modeArg(@intCast(mode_stream & 0xff), "dequantize") catch |e| break :blk e;
        // With a global scale the parameters are validated after it (dequantize), as MLX does.
        const p = if (gl != null) defaults(m, group_size, bits) else resolve(m, group_size, bits, "dequantize") catch |e| break :blk e;
        const dt: ?Dtype = if (dtype < 0) null else abi_util.dtypeArg(@intCast(dtype), "dequantize") catch |e| break :blk e;
        const stream = stream_mod.resolve(mode_stream >> 8, "dequantize") catch |e| break :blk e;
        break :blk dequantize(x, sc, b, gl, p, dt, stream);
    });
}

fn qmmAbi(x: u32, w: u32, scales: u32, biases: u32, transpose: u32, group_size: i32, bits: i32, mode_stream: i32) callconv(.c) u32 {
    // mode in the low byte, stream above it (eight integer arguments at most).
    return abi_util.handleOf(blk: {
        const a = handles.get(x, "quantized_matmul") catch |e| break :blk e;
        const ww = handles.get(w, "quantized_matmul") catch |e| break :blk e;
        const sc = handles.get(scales, "quantized_matmul") catch |e| break :blk e;
        const b: ?*Node = if (biases == 0) null else handles.get(biases, "quantized_matmul") catch |e| break :blk e;
        const m = modeArg(@intCast(mode_stream & 0xff), "quantized_matmul") catch |e| break :blk e;
        const p = resolve(m, group_size, bits, "quantized_matmul") catch |e| break :blk e;
        const stream = stream_mod.resolve(mode_stream >> 8, "quantized_matmul") catch |e| break :blk e;
        break :blk quantizedMatmul(a, ww, sc, b, p, transpose != 0, stream, "quantized_matmul");
    });
}

fn qdqAbi(x: u32, group_size: i32, bits: i32, mode: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const a = handles.get(x, "qqmm") catch |e| break :blk e;
        const m = modeArg(mode, "qqmm") catch |e| break :blk e;
        const p = defaults(m, group_size, bits);
        const stream = stream_mod.resolve(s, "qqmm") catch |e| break :blk e;
        break :blk quantizeDequantize(a, p, stream);
    });
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("quantize_dequantize", qdqAbi, &.{ "x", "group_size", "bits", "mode", "stream" }, "x rounded through an fp quantization mode (qqmm's activations), in x's dtype; group_size/bits 0 take the mode's defaults."),
    abi_util.entry("quantize", quantizeAbi, &.{ "w", "global_scale", "group_size", "bits", "mode", "stream" }, "quantize(w): its outputs (the uint32 codes, the scales and, in affine mode, the biases) go to the results list (results_take); returns their count, negative on error. global_scale 0: none (nvfp4 only: a float32 of one element); group_size/bits 0 take the mode's defaults."),
    abi_util.entry("dequantize", dequantizeAbi, &.{ "w", "scales", "biases", "global_scale", "group_size", "bits", "dtype", "mode_stream" }, "Dequantize (biases 0: none; global_scale 0: none (nvfp4 only); dtype -1: inferred); mode_stream = mode | stream << 8."),
    abi_util.entry("quantized_matmul", qmmAbi, &.{ "x", "w", "scales", "biases", "transpose", "group_size", "bits", "mode_stream" }, "x @ dequantize(w).T (transpose != 0) or x @ dequantize(w); mode_stream = mode | stream << 8."),
};

pub const abi_enums = .{};

// ---------------------------------------------------------------------------------------------
// Tests (the kernels are checked bit for bit against MLX fixtures in test/quantized.test.ts)

const testing = std.testing;

test "element formats" {
    try testing.expectEqual(@as(u8, 1), toFp4(0.75));
    try testing.expectEqual(@as(u8, 0), toFp4(-0.25));
    try testing.expectEqual(@as(u8, 12), toFp4(-2.5));
    try testing.expectEqual(@as(u8, 7), toFp4(9));
    // MLX's nearest-value search in float32: non-finite and huge values give 0, and between 2^25
    // and 2^27 the roundings of |x| - v pick by the last mantissa bit.
    try testing.expectEqual(@as(u8, 0), toFp4(std.math.inf(f32)));
    try testing.expectEqual(@as(u8, 0), toFp4(-std.math.inf(f32)));
    try testing.expectEqual(@as(u8, 0), toFp4(std.math.nan(f32)));
    try testing.expectEqual(@as(u8, 7), toFp4(0x1p24));
    try testing.expectEqual(@as(u8, 7), toFp4(0x1p25 + 8));
    try testing.expectEqual(@as(u8, 4), toFp4(0x1p25 + 12));
    try testing.expectEqual(@as(u8, 14), toFp4(-(0x1p26 + 8)));
    try testing.expectEqual(@as(u8, 0), toFp4(0x1p27 + 16));
    try testing.expectEqual(@as(u8, 0x7e), toE4m3Sat(std.math.nan(f32)));
    try testing.expectEqual(@as(u8, 0xfe), toE4m3Sat(-std.math.nan(f32)));
    try testing.expectEqual(@as(u8, 0xfe), toE4m3Sat(-std.math.inf(f32)));
    try testing.expectEqual(@as(u8, 0x80), toE4m3Sat(-0.0));
    try testing.expectEqual(@as(u8, 0x58), toE4m3(17));
    try testing.expectEqual(@as(u8, 0x5a), toE4m3(19));
    try testing.expectEqual(@as(u8, 0x52), toE4m3(9.5));
    try testing.expectEqual(@as(u8, 0x52), toE4m3(10.5));
    try testing.expectEqual(@as(u8, 2), toE4m3(0.0029296875));
    try testing.expectEqual(@as(u8, 0x7e), toE4m3(1000));
    for (0..256) |c| {
        if ((c & 0x7f) == 0x7f) continue;
        try testing.expectEqual(@as(u8, @intCast(c)), toE4m3(fromE4m3(@intCast(c))));
    }
    try testing.expectEqual(@as(i32, -102), ceilLog2(1e-30 / 6.0));
    try testing.expectEqual(@as(i32, 0), ceilLog2(1));
    try testing.expectEqual(@as(i32, 1), ceilLog2(1.0000001));
}

test "fp4 ties to even (qqmm's activation rounding)" {
    const ins = [_]f32{ 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -1.75, 7, 0.1 };
    const want = [_]f32{ 0, 1, 1, 2, 2, 4, 4, -2, 6, 0 };
    for (ins, want) |x, w| try testing.expectEqual(w, fp4Even(x));
}

test "quantize messages" {
    const s: u32 = 0;
    try testing.expectError(error.Failed, resolve(.affine, 16, 4, "quantize"));
    try testing.expectEqualStrings("[quantize] The requested group size 16 is not supported. The supported group sizes are 32, 64, and 128.", errors.messageSlice());
    const v = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{128}, "t"), s, "t");
    defer array.release(v);
    var out: [3]*Node = undefined;
    try testing.expectError(error.Failed, quantize(v, try resolve(.affine, 0, 0, "quantize"), null, s, &out));
    try testing.expectEqualStrings("[quantize] The matrix to be quantized must have at least 2 dimension but it has only 1.", errors.messageSlice());
}

test "quantize's outputs view one packed node; a part made on W itself (an older file's) gives the same bytes" {
    const eval_mod = @import("../eval.zig");
    const s: u32 = 0;
    // float64 W with 1 and 3 bits: the codes end off an 8-byte boundary, the float64 scales and
    // biases start on 16-byte ones.
    for ([_]Dtype{ .float64, .float16, .float32 }) |dt| for ([_]Params{
        .{ .mode = .affine, .group_size = 32, .bits = 1 },
        .{ .mode = .affine, .group_size = 32, .bits = 3 },
        .{ .mode = .mxfp4, .group_size = 32, .bits = 4 },
        .{ .mode = .nvfp4, .group_size = 16, .bits = 4 },
    }) |p| {
        const w = try array.createWithBuffer(dt, try Shape.fromSlice(&.{ 3, 96 }, "t"), s, "t");
        defer array.release(w);
        for (0..w.size()) |i| qk.store(dt, w.data(), i, @as(f32, @floatFromInt(@as(i32, @intCast((i * 37) % 23)) - 11)) * 0.3);
        var out: [3]*Node = undefined;
        const n = try quantize(w, p, null, s, &out);
        defer for (out[0..n]) |o| array.release(o);
        try testing.expectEqual(@as(usize, if (p.mode == .affine) 3 else 2), n);
        try testing.expect(out[0].inputs[0] == out[1].inputs[0]);
        var legacy: [3]*Node = undefined;
        for (0..n) |i| legacy[i] = try array.create(out[i].dtype, out[i].shape, out[i].prim, &.{w}, s);
        defer for (legacy[0..n]) |o| array.release(o);
        // The scales alone first, then the rest (the packed node is computed once and kept by
        // the views).
        try eval_mod.eval(out[1..2]);
        try eval_mod.eval(out[0..n]);
        try eval_mod.eval(legacy[0..n]);
        for (0..n) |i| {
            try testing.expect(out[i].buffer == out[0].buffer);
            try testing.expectEqual(@as(usize, 0), @intFromPtr(out[i].data()) % out[i].dtype.size());
            try testing.expectEqualSlices(u8, legacy[i].data()[0..legacy[i].nbytes()], out[i].data()[0..out[i].nbytes()]);
        }
    };
}

test "quantize of a view (transposed, reversed, strided; float64) gives the bytes of quantize of its contiguous copy" {
    const eval_mod = @import("../eval.zig");
    const indexing = @import("indexing.zig");
    const s: u32 = 0;
    for ([_]Dtype{ .float32, .bfloat16, .float64 }) |dt| for ([_]Params{
        .{ .mode = .affine, .group_size = 64, .bits = 4 },
        .{ .mode = .affine, .group_size = 32, .bits = 3 },
        .{ .mode = .nvfp4, .group_size = 16, .bits = 4 },
    }) |p| for (0..3) |view_kind| {
        // M is [640, 1030]; W = M.T [1030, 640], M.T reversed along both axes, or every second
        // column of M.T's first 1024 rows.
        const m = try array.createWithBuffer(dt, try Shape.fromSlice(&.{ 640, 1030 }, "t"), s, "t");
        defer array.release(m);
        for (0..m.size()) |i| qk.store(dt, m.data(), i, @as(f32, @floatFromInt(@as(i32, @intCast((i * 7919) % 201)) - 100)) * 0.01);
        const t = try shape_ops.transpose(m, &.{ 1, 0 }, s);
        defer array.release(t);
        const w = switch (view_kind) {
            0 => try shape_ops.transpose(m, &.{ 1, 0 }, s),
            1 => try indexing.slice(t, &.{ 1029, 639 }, &.{ -1031, -641 }, &.{ -1, -1 }, s),
            else => try indexing.slice(t, &.{ 0, 0 }, &.{ 1024, 640 }, &.{ 1, 2 }, s),
        };
        defer array.release(w);
        const wc = try shape_ops.contiguous(w, false, s);
        defer array.release(wc);
        var out: [3]*Node = undefined;
        const n = try quantize(w, p, null, s, &out);
        defer for (out[0..n]) |o| array.release(o);
        var want: [3]*Node = undefined;
        _ = try quantize(wc, p, null, s, &want);
        defer for (want[0..n]) |o| array.release(o);
        try eval_mod.eval(out[0..n]);
        try eval_mod.eval(want[0..n]);
        try testing.expect(!w.isRowContiguous());
        for (0..n) |i| try testing.expectEqualSlices(u8, want[i].data()[0..want[i].nbytes()], out[i].data()[0..out[i].nbytes()]);
    };
}
