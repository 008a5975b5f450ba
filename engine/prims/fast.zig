//! mx.fast: fused rms_norm, layer_norm, rope and scaled_dot_product_attention.
//! MLX's rules, checked against mlx-cpu 0.32.4:
//!  * norms: the output dtype is promote(x, weight) (x's dtype without a weight; layer_norm's bias
//!    does not take part) and must be a float; weight and bias are 1-D of x's last size;
//!  * rope: x has at least 3 dims, rows are the second-to-last axis, dims even and <= the last
//!    size; base or freqs (one of them); offset an integer scalar or a vector over x's first axis;
//!  * sdpa: q, k, v rank 4, output dtype promote(q, k, v); GQA when k/v have fewer heads; mask
//!    "causal" (aligned bottom-right), boolean (false -> the dtype's lowest value) or additive;
//!    `sinks` (one logit per head) joins the softmax without a value.
//! Kernels compute in float32 (float64 for float64) and round once. Inputs are cast to the
//! output dtype when the node is built (exact: the output dtype contains the input's).
//! vjp rules: rope's is rope with the angle negated (its freqs' is built from the output, as
//! MLX's CPU formula differentiates); the others are the vjp of the composed graph (built on
//! the primals and differentiated by the ordinary walk), so rules compose to any depth. vmap:
//! the batch axis goes in front of the row axes (or into sdpa's batch axis); a batched rope
//! offset/freqs or sdpa sinks folds the batch into the first axis, with one freqs row (n, h)
//! or one sinks row (B, H) per entry (internal shapes only the batching rule makes).
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const abi_util = @import("../abi_util.zig");
const convert = @import("../convert.zig");
const gemm = @import("../gemm.zig");
const half = @import("../half.zig");
const copy = @import("copy.zig");
const shape_ops = @import("shape.zig");
const ew = @import("elementwise.zig");
const red = @import("reduce.zig");
const creation = @import("creation.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const F16 = dtype_mod.F16;
const BF16 = dtype_mod.BF16;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

pub const MaskKind = enum(u32) { none = 0, causal = 1, boolean = 2, additive = 3 };

pub const Rope = struct { dims: i32, traditional: bool, base: f32, scale: f32, has_freqs: bool };
pub const Sdpa = struct { scale: f32, mask: MaskKind, has_sinks: bool };

pub const Prim = union(enum) {
    /// inputs: x, [weight (1-D)]
    rms_norm: struct { eps: f32, has_weight: bool },
    /// inputs: x, [weight], [bias]
    layer_norm: struct { eps: f32, has_weight: bool, has_bias: bool },
    /// inputs: x, offset (int32, 0-d or 1-D), [freqs (float32)]
    rope: Rope,
    /// inputs: q, k, v, [mask broadcast to (B, H, L, S)], [sinks (float32, H)]
    sdpa: Sdpa,

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .rms_norm => "rms_norm",
            .layer_norm => "layer_norm",
            .rope => "rope",
            .sdpa => "scaled_dot_product_attention",
        };
    }
};

// ---------------------------------------------------------------------------------------------
// Graph-building ops

fn retained(x: *Node) *Node {
    x.retain();
    return x;
}

fn castTo(x: *Node, dt: Dtype, s: u32) errors.Error!*Node {
    if (x.dtype == dt) return retained(x);
    return copy.astype(x, dt, s);
}

fn isFloat(dt: Dtype) bool {
    return dt == .float32 or dt == .float16 or dt == .bfloat16 or dt == .float64;
}

fn lastDim(x: *const Node) i32 {
    return x.shape.dims[x.shape.ndim - 1];
}

fn checkNormParam(x: *const Node, w: *const Node, op: []const u8, what: []const u8) errors.Error!void {
    if (w.shape.ndim != 1)
        return errors.fail(.invalid_argument, "[{s}] {s} must have 1 dimension but has {d} dimensions.", .{ op, what, w.shape.ndim });
    if (w.shape.dims[0] != lastDim(x))
        return errors.fail(.invalid_argument, "[{s}] {s} must have the same size as the last dimension of x but has {d} elements.", .{ op, what, w.shape.dims[0] });
}

/// MLX's fast.rms_norm: x * rsqrt(mean(x^2, -1) + eps) * weight.
pub fn rmsNorm(x: *Node, w: ?*Node, eps: f32, s: u32) errors.Error!*Node {
    if (x.shape.ndim == 0)
        return errors.fail(.invalid_argument, "[rms_norm] Input must have at least 1 dimension but got input with 0 dimensions.", .{});
    if (w) |ww| try checkNormParam(x, ww, "rms_norm", "(*weight)");
    const dt = if (w) |ww| dtype_mod.promote(x.dtype, ww.dtype) else x.dtype;
    if (!isFloat(dt)) return errors.fail(.invalid_argument, "[rms_norm] Received unsupported type {s}.", .{dt.name()});
    var ins: [2]*Node = undefined;
    var n: usize = 0;
    defer for (ins[0..n]) |i| array.release(i);
    ins[0] = try castTo(x, dt, s);
    n = 1;
    if (w) |ww| {
        ins[1] = try castTo(ww, dt, s);
        n = 2;
    }
    return array.create(dt, x.shape, .{ .fast = .{ .rms_norm = .{ .eps = eps, .has_weight = w != null } } }, ins[0..n], s);
}

/// MLX's fast.layer_norm: (x - mean) * rsqrt(var + eps) * weight + bias over the last axis.
pub fn layerNorm(x: *Node, w: ?*Node, b: ?*Node, eps: f32, s: u32) errors.Error!*Node {
    if (x.shape.ndim == 0)
        return errors.fail(.invalid_argument, "[layer_norm] Input must have at least 1 dimension but got input with 0 dimensions.", .{});
    if (w) |ww| try checkNormParam(x, ww, "layer_norm", "weight");
    if (b) |bb| try checkNormParam(x, bb, "layer_norm", "bias");
    const dt = if (w) |ww| dtype_mod.promote(x.dtype, ww.dtype) else x.dtype;
    if (!isFloat(dt)) return errors.fail(.invalid_argument, "[layer_norm] Received unsupported type {s}.", .{dt.name()});
    var ins: [3]*Node = undefined;
    var n: usize = 0;
    defer for (ins[0..n]) |i| array.release(i);
    ins[0] = try castTo(x, dt, s);
    n = 1;
    if (w) |ww| {
        ins[n] = try castTo(ww, dt, s);
        n += 1;
    }
    if (b) |bb| {
        ins[n] = try castTo(bb, dt, s);
        n += 1;
    }
    return array.create(dt, x.shape, .{ .fast = .{ .layer_norm = .{ .eps = eps, .has_weight = w != null, .has_bias = b != null } } }, ins[0..n], s);
}

/// MLX's fast.rope. `base` null: `freqs` must be given (and not both).
pub fn rope(x: *Node, dims: i32, traditional: bool, base: ?f32, scale: f32, offset: *Node, freqs: ?*Node, s: u32) errors.Error!*Node {
    if (x.shape.ndim < 3)
        return errors.fail(.invalid_argument, "[rope] Input must have at least 3 dimensions but got input with {d} dimensions.", .{x.shape.ndim});
    if (dims <= 0) return errors.fail(.invalid_argument, "[rope] dims must be positive but got {d}.", .{dims});
    if (@mod(dims, 2) != 0) return errors.fail(.invalid_argument, "[rope] dims must be even but got {d}.", .{dims});
    if (dims > lastDim(x))
        return errors.fail(.invalid_argument, "[rope] dims must not exceed the input's last dimension ({d}) but got {d}.", .{ lastDim(x), dims });
    if (!isFloat(x.dtype)) return errors.fail(.invalid_argument, "[rope] Input must be a floating type but got {s}.", .{x.dtype.name()});
    if (base != null and freqs != null) return errors.fail(.invalid_argument, "[rope] Only one of base or freqs can have a value.", .{});
    if (base == null and freqs == null) return errors.fail(.invalid_argument, "[rope] Neither base nor freqs has a value.", .{});
    var b1: [256]u8 = undefined;
    if (freqs) |f| {
        if (f.shape.ndim != 1 or f.shape.dims[0] != @divExact(dims, 2))
            return errors.fail(.invalid_argument, "[rope] freqs must be one dimensional with size {d} but got shape {s}.", .{ @divExact(dims, 2), f.shape.format(&b1) });
    }
    if (offset.shape.ndim > 1)
        return errors.fail(.invalid_argument, "[rope] offset must have at most one dimension but has shape {s}.", .{offset.shape.format(&b1)});
    if (offset.shape.ndim == 1 and offset.shape.dims[0] != 1 and offset.shape.dims[0] != x.shape.dims[0])
        return errors.fail(.invalid_argument, "[rope] offset must be a scalar or vector with {d} elements but has shape {s}.", .{ x.shape.dims[0], offset.shape.format(&b1) });
    if (!offset.dtype.isInteger())
        return errors.fail(.invalid_argument, "[rope] offset must be an integer but got type {s}.", .{offset.dtype.name()});
    const off = try castTo(offset, .int32, s);
    defer array.release(off);
    const fr: ?*Node = if (freqs) |f| try castTo(f, .float32, s) else null;
    defer if (fr) |f| array.release(f);
    return ropeNode(x, .{ .dims = dims, .traditional = traditional, .base = base orelse 0, .scale = scale, .has_freqs = fr != null }, off, fr, s);
}

fn ropeNode(x: *Node, r: Rope, off: *Node, fr: ?*Node, s: u32) errors.Error!*Node {
    var ins = [3]*Node{ x, off, undefined };
    var n: usize = 2;
    if (fr) |f| {
        ins[2] = f;
        n = 3;
    }
    return array.create(x.dtype, x.shape, .{ .fast = .{ .rope = r } }, ins[0..n], s);
}

/// MLX's fast.scaled_dot_product_attention: softmax(scale q k^T + mask) v, per head.
pub fn sdpa(q: *Node, k: *Node, v: *Node, scale: f32, kind_in: MaskKind, mask: ?*Node, sinks: ?*Node, s: u32) errors.Error!*Node {
    const op = "scaled_dot_product_attention";
    var b1: [256]u8 = undefined;
    var b2: [256]u8 = undefined;
    for ([_]*Node{ q, k, v }) |t| if (t.shape.ndim != 4)
        return errors.fail(.invalid_argument, "[{s}] input with shape {s} expected to be rank 4", .{ op, t.shape.format(&b1) });
    const dt = dtype_mod.promote(dtype_mod.promote(q.dtype, k.dtype), v.dtype);
    if (!isFloat(dt)) return errors.fail(.invalid_argument, "[{s}] Received unsupported type {s}.", .{ op, dt.name() });
    const B = q.shape.dims[0];
    const H = q.shape.dims[1];
    const L = q.shape.dims[2];
    const D = q.shape.dims[3];
    const Hk = k.shape.dims[1];
    const S = k.shape.dims[2];
    for ([_]*Node{ k, v }) |t| if (t.shape.dims[0] != B)
        return errors.fail(.invalid_argument, "[{s}] mismatching batch dimension for input with shape {s}.", .{ op, t.shape.format(&b1) });
    if (k.shape.dims[3] != D)
        return errors.fail(.invalid_argument, "[{s}] query, keys expected to have matching last dimension; found query shape {s} for keys shape {s}.", .{ op, q.shape.format(&b1), k.shape.format(&b2) });
    if (Hk == 0 or @mod(H, Hk) != 0)
        return errors.fail(.invalid_argument, "[{s}] n_heads must be a multiple of n_kv_heads, found n_heads {d} for n_kv_heads {d}.", .{ op, H, Hk });
    if (v.shape.dims[1] != Hk)
        return errors.fail(.invalid_argument, "[{s}] keys and values expected to have the same number of heads; found keys shape {s} for values shape {s}.", .{ op, k.shape.format(&b1), v.shape.format(&b2) });
    if (v.shape.dims[2] != S) {
        const sc = try Shape.fromSlice(&.{ B, Hk, @divExact(H, Hk), L, S }, op);
        const vs = try Shape.fromSlice(&.{ B, Hk, 1, v.shape.dims[2], v.shape.dims[3] }, op);
        return errors.fail(.invalid_argument, "[matmul] Last dimension of first input with shape {s} must match second to last dimension of second input with shape {s}.", .{ sc.format(&b1), vs.format(&b2) });
    }
    const full = try Shape.fromSlice(&.{ B, H, L, S }, op);
    var kind = kind_in;
    var mk: ?*Node = null;
    defer if (mk) |m| array.release(m);
    if (mask) |m| {
        if (m.shape.ndim > 4)
            return errors.fail(.invalid_argument, "[{s}] the mask with shape {s} expected to have at most rank 4.", .{ op, m.shape.format(&b1) });
        const bs = try copy.broadcastShapes(&m.shape, &full, "broadcast_shapes");
        if (!bs.eql(&full))
            return errors.fail(.invalid_argument, "[broadcast_shapes] Shapes {s} and {s} cannot be broadcast.", .{ m.shape.format(&b1), full.format(&b2) });
        const mc = if (m.dtype == .bool_) blk: {
            kind = .boolean;
            break :blk retained(m);
        } else blk: {
            if (dtype_mod.promote(m.dtype, dt) != dt)
                return errors.fail(.invalid_argument, "[{s}] Mask type must promote to output type {s}.", .{ op, dt.name() });
            kind = .additive;
            break :blk try castTo(m, dt, s);
        };
        defer array.release(mc);
        mk = try copy.broadcastTo(mc, full, s);
    } else if (kind != .causal) kind = .none;
    var sk: ?*Node = null;
    defer if (sk) |x| array.release(x);
    if (sinks) |x| {
        if (x.shape.ndim != 1 or x.shape.dims[0] != H)
            return errors.fail(.invalid_argument, "[{s}] Received invalid shape for sinks {s}.", .{ op, x.shape.format(&b1) });
        sk = try castTo(x, .float32, s);
    }
    const qc = try castTo(q, dt, s);
    defer array.release(qc);
    const kc = try castTo(k, dt, s);
    defer array.release(kc);
    const vc = try castTo(v, dt, s);
    defer array.release(vc);
    return sdpaNode(qc, kc, vc, .{ .scale = scale, .mask = kind, .has_sinks = sk != null }, mk, sk, s);
}

fn sdpaNode(q: *Node, k: *Node, v: *Node, p: Sdpa, mask: ?*Node, sinks: ?*Node, s: u32) errors.Error!*Node {
    var ins = [5]*Node{ q, k, v, undefined, undefined };
    var n: usize = 3;
    if (mask) |m| {
        ins[n] = m;
        n += 1;
    }
    if (sinks) |x| {
        ins[n] = x;
        n += 1;
    }
    const out = try Shape.fromSlice(&.{ q.shape.dims[0], q.shape.dims[1], q.shape.dims[2], v.shape.dims[3] }, "scaled_dot_product_attention");
    return array.create(q.dtype, out, .{ .fast = .{ .sdpa = p } }, ins[0..n], s);
}

// ---------------------------------------------------------------------------------------------
// Kernels

const VL = 16;

fn Cmp(comptime S: type) type {
    return if (S == f64) f64 else f32;
}

inline fn ld(comptime S: type, comptime n: usize, p: [*]const S) @Vector(n, Cmp(S)) {
    switch (S) {
        BF16 => return half.bf16ToF32V(n, @as(*const [n]u16, @ptrCast(p)).*),
        F16 => return half.f16ToF32V(n, @as(*const [n]u16, @ptrCast(p)).*),
        else => return p[0..n].*,
    }
}

inline fn ld1(comptime S: type, p: *const S) Cmp(S) {
    return switch (S) {
        F16 => half.f16ToF32(p.bits),
        BF16 => half.bf16ToF32(p.bits),
        else => p.*,
    };
}

inline fn st1(comptime S: type, p: *S, v: Cmp(S)) void {
    switch (S) {
        F16 => p.* = .{ .bits = half.f32ToF16(v) },
        BF16 => p.* = .{ .bits = half.f32ToBf16(v) },
        else => p.* = v,
    }
}

/// Vector store with round-to-nearest-even, bit-identical to `st1` (half.zig): NaN becomes
/// MLX's quiet NaN (float16 0x7d00 with the sign, bfloat16 0x7fc0).
inline fn st(comptime S: type, comptime n: usize, p: [*]S, v: @Vector(n, Cmp(S))) void {
    switch (S) {
        F16 => @as(*[n]u16, @ptrCast(p)).* = half.f32ToF16V(n, v),
        BF16 => @as(*[n]u16, @ptrCast(p)).* = half.f32ToBf16V(n, v),
        else => p[0..n].* = v,
    }
}

fn Ptr(comptime S: type, p: [*]u8) [*]S {
    return @ptrCast(@alignCast(p));
}

/// Row-contiguous data of x: its own buffer, or a temporary copy (returned to release).
const Contig = struct {
    ptr: [*]u8,
    buf: ?*array.Buffer,
    fn deinit(c: Contig) void {
        if (c.buf) |b| b.release();
    }
};

fn contig(x: *const Node) errors.Error!Contig {
    if (x.isRowContiguous()) return .{ .ptr = x.data(), .buf = null };
    const b = try array.newBuffer(x.nbytes(), "fast");
    convert.copyConvert(x, b.ptr, x.dtype);
    return .{ .ptr = b.ptr, .buf = b };
}

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    try primitives.allocOutput(node, null);
    if (node.size() == 0) return;
    switch (node.dtype) {
        inline .float32, .float16, .bfloat16, .float64 => |d| {
            const S = d.Type();
            switch (p) {
                .rms_norm, .layer_norm => try evalNorm(S, node, p),
                .rope => |r| try evalRope(S, node, r),
                .sdpa => |a| try evalSdpa(S, node, a),
            }
        },
        else => unreachable, // refused when the node was built
    }
}

fn NormJob(comptime S: type) type {
    const C = Cmp(S);
    const V = @Vector(VL, C);
    return struct {
        x: [*]const S,
        w: ?[*]const S,
        b: ?[*]const S,
        y: [*]S,
        d: usize,
        eps: C,
        layer: bool,

        fn row(j: *const @This(), r: usize) void {
            const d = j.d;
            const x = j.x + r * d;
            const y = j.y + r * d;
            const nv = d / VL * VL;
            var mean: C = 0;
            if (j.layer) {
                var acc: V = @splat(0);
                var i: usize = 0;
                while (i < nv) : (i += VL) acc += ld(S, VL, x + i);
                var sum = @reduce(.Add, acc);
                while (i < d) : (i += 1) sum += ld1(S, &x[i]);
                mean = sum / @as(C, @floatFromInt(d));
            }
            const mv: V = @splat(mean);
            var acc: V = @splat(0);
            var i: usize = 0;
            while (i < nv) : (i += VL) {
                const t = ld(S, VL, x + i) - mv;
                acc += t * t;
            }
            var ss = @reduce(.Add, acc);
            while (i < d) : (i += 1) {
                const t = ld1(S, &x[i]) - mean;
                ss += t * t;
            }
            const rs: C = 1 / @sqrt(ss / @as(C, @floatFromInt(d)) + j.eps);
            const rv: V = @splat(rs);
            i = 0;
            while (i < nv) : (i += VL) {
                var t = (ld(S, VL, x + i) - mv) * rv;
                if (j.w) |w| t *= ld(S, VL, w + i);
                if (j.b) |b| t += ld(S, VL, b + i);
                st(S, VL, y + i, t);
            }
            while (i < d) : (i += 1) {
                var t = (ld1(S, &x[i]) - mean) * rs;
                if (j.w) |w| t *= ld1(S, &w[i]);
                if (j.b) |b| t += ld1(S, &b[i]);
                st1(S, &y[i], t);
            }
        }
        fn range(j: *const @This(), s: usize, e: usize) void {
            for (s..e) |r| j.row(r);
        }
    };
}

fn evalNorm(comptime S: type, node: *Node, p: Prim) errors.Error!void {
    const layer = p == .layer_norm;
    const eps = if (layer) p.layer_norm.eps else p.rms_norm.eps;
    const has_w = if (layer) p.layer_norm.has_weight else p.rms_norm.has_weight;
    const has_b = layer and p.layer_norm.has_bias;
    const d: usize = @intCast(lastDim(node));
    const x = try contig(node.inputs[0]);
    defer x.deinit();
    var wc: ?Contig = null;
    defer if (wc) |c| c.deinit();
    var bc: ?Contig = null;
    defer if (bc) |c| c.deinit();
    if (has_w) wc = try contig(node.inputs[1]);
    if (has_b) bc = try contig(node.inputs[if (has_w) 2 else 1]);
    const job = NormJob(S){
        .x = Ptr(S, x.ptr),
        .w = if (wc) |c| Ptr(S, c.ptr) else null,
        .b = if (bc) |c| Ptr(S, c.ptr) else null,
        .y = Ptr(S, node.data()),
        .d = d,
        .eps = eps,
        .layer = layer,
    };
    const rows = node.size() / d;
    pool.parallelFor(rows, @max(1, 16384 / d), &job, NormJob(S).range);
}

const even_lanes: [VL]i32 = blk: {
    var m: [VL]i32 = undefined;
    for (&m, 0..) |*v, k| v.* = 2 * k;
    break :blk m;
};
const odd_lanes: [VL]i32 = blk: {
    var m: [VL]i32 = undefined;
    for (&m, 0..) |*v, k| v.* = 2 * k + 1;
    break :blk m;
};
/// [a0, b0, a1, b1, ...] from @shuffle(a, b, .)
const interleave_lanes: [2 * VL]i32 = blk: {
    var m: [2 * VL]i32 = undefined;
    for (0..VL) |k| {
        m[2 * k] = k;
        m[2 * k + 1] = ~@as(i32, k);
    }
    break :blk m;
};

fn RopeJob(comptime S: type) type {
    const C = Cmp(S);
    const V = @Vector(VL, C);
    return struct {
        x: [*]const S,
        y: [*]S,
        cos: [*]const C,
        sin: [*]const C,
        d: usize,
        dims: usize,
        l: usize,
        rows_per_b: usize,
        per_b: bool,
        traditional: bool,

        fn row(j: *const @This(), r: usize) void {
            const x = j.x + r * j.d;
            const y = j.y + r * j.d;
            const b = if (j.per_b) r / j.rows_per_b else 0;
            const h = j.dims / 2;
            const t = (b * j.l + r % j.l) * h;
            const c = j.cos + t;
            const s = j.sin + t;
            if (j.traditional) {
                // pairs (x[2i], x[2i+1]): deinterleave 2*VL values, rotate, interleave back
                var i: usize = 0;
                while (i + VL <= h) : (i += VL) {
                    const a = ld(S, 2 * VL, x + 2 * i);
                    const x1 = @shuffle(C, a, undefined, even_lanes);
                    const x2 = @shuffle(C, a, undefined, odd_lanes);
                    const cv: V = c[i..][0..VL].*;
                    const sv: V = s[i..][0..VL].*;
                    st(S, 2 * VL, y + 2 * i, @shuffle(C, x1 * cv - x2 * sv, x1 * sv + x2 * cv, interleave_lanes));
                }
                for (i..h) |k| {
                    const x1 = ld1(S, &x[2 * k]);
                    const x2 = ld1(S, &x[2 * k + 1]);
                    st1(S, &y[2 * k], x1 * c[k] - x2 * s[k]);
                    st1(S, &y[2 * k + 1], x1 * s[k] + x2 * c[k]);
                }
            } else {
                var i: usize = 0;
                while (i + VL <= h) : (i += VL) {
                    const x1 = ld(S, VL, x + i);
                    const x2 = ld(S, VL, x + h + i);
                    const cv: V = c[i..][0..VL].*;
                    const sv: V = s[i..][0..VL].*;
                    st(S, VL, y + i, x1 * cv - x2 * sv);
                    st(S, VL, y + h + i, x1 * sv + x2 * cv);
                }
                while (i < h) : (i += 1) {
                    const x1 = ld1(S, &x[i]);
                    const x2 = ld1(S, &x[h + i]);
                    st1(S, &y[i], x1 * c[i] - x2 * s[i]);
                    st1(S, &y[h + i], x1 * s[i] + x2 * c[i]);
                }
            }
            if (j.dims < j.d) @memcpy(y[j.dims..j.d], x[j.dims..j.d]);
        }
        fn range(j: *const @This(), s: usize, e: usize) void {
            for (s..e) |r| j.row(r);
        }
    };
}

fn evalRope(comptime S: type, node: *Node, r: Rope) errors.Error!void {
    const C = Cmp(S);
    const d: usize = @intCast(lastDim(node));
    const l: usize = @intCast(node.shape.dims[node.shape.ndim - 2]);
    const dims: usize = @intCast(r.dims);
    const h = dims / 2;
    const rows = node.size() / d;
    const n0: usize = @intCast(node.shape.dims[0]);
    const x = try contig(node.inputs[0]);
    defer x.deinit();
    const offc = try contig(node.inputs[1]);
    defer offc.deinit();
    const offs = Ptr(i32, offc.ptr)[0..node.inputs[1].size()];
    // freqs: (h), or (n0, h) per entry of the first axis (made by the batching rule).
    const frows: usize = if (r.has_freqs and node.inputs[2].shape.ndim == 2) @intCast(node.inputs[2].shape.dims[0]) else 1;
    const nb = @max(offs.len, frows);
    const per_b = nb > 1;
    // Angle table: (nb, L, dims/2) cosines and sines, in float32 as MLX computes them.
    const n_tab = nb * l * h;
    const tab_buf = try array.newBuffer(2 * n_tab * @sizeOf(C), "rope");
    defer tab_buf.release();
    const cos: [*]C = Ptr(C, tab_buf.ptr);
    const sin: [*]C = cos + n_tab;
    var inv: [4096]f32 = undefined;
    var inv_heap: ?*array.Buffer = null;
    defer if (inv_heap) |b| b.release();
    var invf: []f32 = inv[0..];
    if (frows * h > inv.len) {
        inv_heap = try array.newBuffer(frows * h * 4, "rope");
        invf = Ptr(f32, inv_heap.?.ptr)[0 .. frows * h];
    }
    if (r.has_freqs) {
        const fc = try contig(node.inputs[2]);
        defer fc.deinit();
        const f = Ptr(f32, fc.ptr);
        for (0..frows * h) |i| invf[i] = 1.0 / f[i];
    } else {
        const k: f32 = -@log(r.base) / @as(f32, @floatFromInt(h));
        for (0..h) |i| invf[i] = @exp(@as(f32, @floatFromInt(i)) * k);
    }
    for (0..nb) |bi| {
        const o = offs[if (offs.len > 1) bi else 0];
        const fi = invf[(if (frows > 1) bi else 0) * h ..][0..h];
        for (0..l) |li| {
            const pos: f32 = (@as(f32, @floatFromInt(o)) + @as(f32, @floatFromInt(li))) * r.scale;
            const base = (bi * l + li) * h;
            for (0..h) |i| {
                const th = pos * fi[i];
                cos[base + i] = @cos(th);
                sin[base + i] = @sin(th);
            }
        }
    }
    const job = RopeJob(S){
        .x = Ptr(S, x.ptr),
        .y = Ptr(S, node.data()),
        .cos = cos,
        .sin = sin,
        .d = d,
        .dims = dims,
        .l = l,
        .rows_per_b = rows / @max(n0, 1),
        .per_b = per_b,
        .traditional = r.traditional,
    };
    pool.parallelFor(rows, @max(1, 16384 / d), &job, RopeJob(S).range);
}

/// exp for softmax arguments (<= 0; -inf gives 0): Cody-Waite reduction and a degree-6
/// polynomial (Cephes' expf coefficients), about 1 ulp.
inline fn expV(x: @Vector(VL, f32)) @Vector(VL, f32) {
    const V = @Vector(VL, f32);
    const xc = @max(@min(x, @as(V, @splat(88.0))), @as(V, @splat(-87.0)));
    const fx = @floor(xc * @as(V, @splat(1.44269504088896341)) + @as(V, @splat(0.5)));
    var r = xc - fx * @as(V, @splat(0.693359375));
    r -= fx * @as(V, @splat(-2.12194440e-4));
    var p: V = @splat(1.9875691500e-4);
    p = p * r + @as(V, @splat(1.3981999507e-3));
    p = p * r + @as(V, @splat(8.3334519073e-3));
    p = p * r + @as(V, @splat(4.1665795894e-2));
    p = p * r + @as(V, @splat(1.6666665459e-1));
    p = p * r + @as(V, @splat(5.0000001201e-1));
    const y = p * r * r + r + @as(V, @splat(1.0));
    const n: @Vector(VL, i32) = @intFromFloat(fx);
    const sc: V = @bitCast((n + @as(@Vector(VL, i32), @splat(127))) << @splat(23));
    const res = y * sc;
    // below the clamp the true value underflows to (nearly) 0
    return @select(f32, x < @as(V, @splat(-87.0)), @as(V, @splat(0)), res);
}

fn SdpaJob(comptime S: type) type {
    const C = Cmp(S);
    return struct {
        q: *const Node,
        k: *const Node,
        v: *const Node,
        mask: ?*const Node,
        sinks: ?[*]const f32,
        /// sinks are (B, H) (made by the batching rule) instead of (H).
        sinks_per_b: bool,
        out: [*]S,
        p: Sdpa,
        B: usize,
        H: usize,
        Hk: usize,
        L: usize,
        S_: usize,
        D: usize,
        Dv: usize,
        qb: usize,
        nblk: usize,
        /// > 0: decode grouping (L = 1): query heads per task sharing one kv head.
        gsz: usize,
        failed: *std.atomic.Value(bool),

        fn off(x: *const Node, a0: usize, a1: usize) isize {
            return @as(isize, @intCast(a0)) * @as(isize, @intCast(x.strides[0])) + @as(isize, @intCast(a1)) * @as(isize, @intCast(x.strides[1]));
        }
        fn at(comptime T: type, x: *const Node, o: isize) [*]T {
            const addr: isize = @as(isize, @intCast(@intFromPtr(x.data()))) + o * @sizeOf(T);
            return @ptrFromInt(@as(usize, @intCast(addr)));
        }

        fn task(j: *const @This(), t: usize, scratch: []C) void {
            // A task is a block of query rows of one head, or (decode: one query, grouped heads)
            // `gsz` query heads that share a kv head, so that head's keys and values are read
            // once for all of them: their rows are then the heads (stride q.strides[1]).
            const rep = j.H / j.Hk;
            var b: usize = undefined;
            var h: usize = undefined; // (first) query head
            var r0: usize = 0;
            var r1: usize = 1;
            var m: usize = undefined;
            if (j.gsz > 0) {
                const per_kv = (rep + j.gsz - 1) / j.gsz;
                b = t / (j.Hk * per_kv);
                const rest = t % (j.Hk * per_kv);
                h = (rest / per_kv) * rep + (rest % per_kv) * j.gsz;
                m = @min(j.gsz, (rest / per_kv) * rep + rep - h);
            } else {
                const blk = t % j.nblk;
                const bh = t / j.nblk;
                b = bh / j.H;
                h = bh % j.H;
                r0 = blk * j.qb;
                r1 = @min(r0 + j.qb, j.L);
                m = r1 - r0;
            }
            const hk = h / rep;
            const q_rs: isize = @intCast(if (j.gsz > 0) j.q.strides[1] else j.q.strides[2]);
            const shift: isize = @as(isize, @intCast(j.S_)) - @as(isize, @intCast(j.L));
            // Keys any row of the block may see (causal: up to the last row's diagonal).
            var ncols = j.S_;
            if (j.p.mask == .causal) {
                const first_last: isize = @as(isize, @intCast(r0)) + shift; // first row's last key
                if (first_last >= 0) ncols = @intCast(@min(@as(isize, @intCast(j.S_)), @as(isize, @intCast(r1)) + shift));
            }
            if (ncols == 0) return;
            const ld_s = ncols;
            const sc = scratch[0 .. m * ld_s];
            const qm = gemm.Mat(S){ .ptr = at(S, j.q, off(j.q, b, h) + @as(isize, @intCast(r0)) * @as(isize, @intCast(j.q.strides[2]))), .rs = q_rs, .cs = @intCast(j.q.strides[3]) };
            const kt = gemm.Mat(S){ .ptr = at(S, j.k, off(j.k, b, hk)), .rs = @intCast(j.k.strides[3]), .cs = @intCast(j.k.strides[2]) };
            const cm = gemm.Mat(C){ .ptr = sc.ptr, .rs = @intCast(ld_s), .cs = 1 };
            gemm.gemmSerial(C, S, S, C, m, ncols, j.D, j.p.scale, qm, kt, 0, cm);
            const lowest = -std.math.floatMax(C);
            for (0..m) |ri| {
                const i = if (j.gsz > 0) 0 else r0 + ri;
                const hr = if (j.gsz > 0) h + ri else h; // this row's query head
                const row = sc[ri * ld_s ..][0..ncols];
                switch (j.p.mask) {
                    .none => {},
                    .causal => {
                        const lim: isize = @as(isize, @intCast(i)) + shift; // last visible key
                        var c: usize = @intCast(@max(lim + 1, 0));
                        while (c < ncols) : (c += 1) row[c] = lowest;
                    },
                    .boolean, .additive => {
                        const mk = j.mask.?;
                        const mo = off(mk, b, hr) + @as(isize, @intCast(i)) * @as(isize, @intCast(mk.strides[2]));
                        const ms: isize = @intCast(mk.strides[3]);
                        if (j.p.mask == .boolean) {
                            const mp = at(bool, mk, mo);
                            for (row, 0..) |*x, c| {
                                if (!mp[@intCast(@as(isize, @intCast(c)) * ms)]) x.* = lowest;
                            }
                        } else {
                            const mp = at(S, mk, mo);
                            for (row, 0..) |*x, c| x.* += ld1(S, &mp[@intCast(@as(isize, @intCast(c)) * ms)]);
                        }
                    },
                }
                softmaxRow(C, row, if (j.sinks) |sk| sk[if (j.sinks_per_b) b * j.H + hr else hr] else null);
            }
            const pm = gemm.Mat(C){ .ptr = sc.ptr, .rs = @intCast(ld_s), .cs = 1 };
            const vm = gemm.Mat(S){ .ptr = at(S, j.v, off(j.v, b, hk)), .rs = @intCast(j.v.strides[2]), .cs = @intCast(j.v.strides[3]) };
            // grouped rows are heads: (b, h + ri, 0) is ri * L * Dv = ri * Dv further
            const om = gemm.Mat(S){ .ptr = j.out + ((b * j.H + h) * j.L + r0) * j.Dv, .rs = @intCast(j.Dv), .cs = 1 };
            gemm.gemmSerial(C, C, S, S, m, j.Dv, ncols, 1, pm, vm, 0, om);
        }

        fn range(j: *const @This(), s: usize, e: usize) void {
            const buf = std.heap.c_allocator.alloc(C, @max(j.qb, j.gsz) * j.S_) catch {
                j.failed.store(true, .release);
                return;
            };
            defer std.heap.c_allocator.free(buf);
            for (s..e) |t| j.task(t, buf);
        }
    };
}

/// In place: row = softmax(row ++ [sink])[:-1].
fn softmaxRow(comptime C: type, row: []C, sink: ?f32) void {
    var mx: C = -std.math.inf(C);
    for (row) |x| mx = @max(mx, x);
    if (sink) |sk| mx = @max(mx, sk);
    if (mx == -std.math.inf(C) or std.math.isNan(mx)) {
        for (row) |*x| x.* = std.math.nan(C);
        return;
    }
    var sum: C = 0;
    if (C == f32) {
        const V = @Vector(VL, f32);
        const mv: V = @splat(mx);
        var acc: V = @splat(0);
        var i: usize = 0;
        while (i + VL <= row.len) : (i += VL) {
            const e = expV(row[i..][0..VL].* - mv);
            row[i..][0..VL].* = e;
            acc += e;
        }
        sum = @reduce(.Add, acc);
        while (i < row.len) : (i += 1) {
            row[i] = @exp(row[i] - mx);
            sum += row[i];
        }
    } else {
        for (row) |*x| {
            x.* = @exp(x.* - mx);
            sum += x.*;
        }
    }
    if (sink) |sk| sum += @exp(@as(C, sk) - mx);
    const inv = 1 / sum;
    for (row) |*x| x.* *= inv;
}

fn evalSdpa(comptime S: type, node: *Node, p: Sdpa) errors.Error!void {
    const q = node.inputs[0];
    const k = node.inputs[1];
    const v = node.inputs[2];
    var idx: usize = 3;
    const mask: ?*const Node = if (p.mask == .boolean or p.mask == .additive) blk: {
        idx += 1;
        break :blk node.inputs[3];
    } else null;
    var sk: ?Contig = null;
    defer if (sk) |c| c.deinit();
    if (p.has_sinks) sk = try contig(node.inputs[idx]);
    const L: usize = @intCast(q.shape.dims[2]);
    const qb: usize = 64;
    const nblk = (L + qb - 1) / qb;
    var failed = std.atomic.Value(bool).init(false);
    var job = SdpaJob(S){
        .q = q,
        .k = k,
        .v = v,
        .mask = mask,
        .sinks = if (sk) |c| Ptr(f32, c.ptr) else null,
        .sinks_per_b = p.has_sinks and node.inputs[idx].shape.ndim == 2,
        .out = Ptr(S, node.data()),
        .p = p,
        .B = @intCast(q.shape.dims[0]),
        .H = @intCast(q.shape.dims[1]),
        .Hk = @intCast(k.shape.dims[1]),
        .L = L,
        .S_ = @intCast(k.shape.dims[2]),
        .D = @intCast(q.shape.dims[3]),
        .Dv = @intCast(v.shape.dims[3]),
        .qb = qb,
        .nblk = nblk,
        .gsz = 0,
        .failed = &failed,
    };
    if (job.S_ == 0) {
        // No keys: MLX's softmax over an empty axis gives an empty product, i.e. zeros.
        @memset(node.data()[0..node.nbytes()], 0);
        return;
    }
    var tasks = job.B * job.H * nblk;
    var work_per = qb * job.S_ * (job.D + job.Dv);
    const rep = job.H / job.Hk;
    if (L == 1 and rep > 1) {
        // Decode with grouped heads: tasks of up to gsz query heads of one kv head (about 8
        // tasks or more, so the pool still has work for every core).
        job.gsz = @min(rep, @max(1, job.B * job.H / 8));
        tasks = job.B * job.Hk * ((rep + job.gsz - 1) / job.gsz);
        work_per = job.gsz * job.S_ * (job.D + job.Dv);
    }
    pool.parallelFor(tasks, @max(1, 65536 / @max(work_per, 1)), &job, SdpaJob(S).range);
    if (failed.load(.acquire)) return errors.fail(.out_of_memory, "[scaled_dot_product_attention] Out of memory.", .{});
}

// ---------------------------------------------------------------------------------------------
// Composed versions (the definition the vjp differentiates)

const Tmp = struct {
    list: [64]*Node = undefined,
    n: usize = 0,
    fn add(t: *Tmp, node: *Node) *Node {
        if (t.n == t.list.len) @panic("fast: too many temporaries");
        t.list[t.n] = node;
        t.n += 1;
        return node;
    }
    fn deinit(t: *Tmp) void {
        for (t.list[0..t.n]) |n| array.release(n);
    }
};

fn constant(v: f64, dt: Dtype, s: u32) errors.Error!*Node {
    return @import("../grad.zig").constant(v, dt, s);
}

fn computeType(dt: Dtype) Dtype {
    return if (dt == .float64) .float64 else .float32;
}

/// The op written with ordinary graph ops on `ins` (the node's inputs, or batched versions
/// that broadcast against each other). Returns a node of dtype `out_dt`.
fn composed(p: Prim, ins: []const *Node, out_dt: Dtype, s: u32) errors.Error!*Node {
    var t = Tmp{};
    defer t.deinit();
    const ct = computeType(out_dt);
    switch (p) {
        .rms_norm, .layer_norm => {
            const layer = p == .layer_norm;
            const eps = if (layer) p.layer_norm.eps else p.rms_norm.eps;
            const has_w = if (layer) p.layer_norm.has_weight else p.rms_norm.has_weight;
            const has_b = layer and p.layer_norm.has_bias;
            const x = t.add(try castTo(ins[0], ct, s));
            const inv_d = t.add(try constant(1.0 / @as(f64, @floatFromInt(lastDim(x))), ct, s));
            const last = [_]i32{@intCast(x.shape.ndim - 1)};
            var xc = x;
            if (layer) {
                const mean = t.add(try ew.binary(.multiply, t.add(try red.reduce(.sum, x, &last, true, s)), inv_d, s));
                xc = t.add(try ew.binary(.subtract, x, mean, s));
            }
            const ms = t.add(try ew.binary(.multiply, t.add(try red.reduce(.sum, t.add(try ew.unary(.square, xc, s)), &last, true, s)), inv_d, s));
            const r = t.add(try ew.unary(.rsqrt, t.add(try ew.binary(.add, ms, t.add(try constant(eps, ct, s)), s)), s));
            var y = t.add(try ew.binary(.multiply, xc, r, s));
            if (has_w) y = t.add(try ew.binary(.multiply, y, t.add(try castTo(ins[1], ct, s)), s));
            if (has_b) y = t.add(try ew.binary(.add, y, t.add(try castTo(ins[if (has_w) 2 else 1], ct, s)), s));
            return castTo(y, out_dt, s);
        },
        .rope => unreachable, // rope's vjp is rope
        .sdpa => |a| {
            const q = ins[0];
            const k = ins[1];
            const v = ins[2];
            const B = q.shape.dims[0];
            const H = q.shape.dims[1];
            const L = q.shape.dims[2];
            const D = q.shape.dims[3];
            const Hk = k.shape.dims[1];
            const S_ = k.shape.dims[2];
            const Dv = v.shape.dims[3];
            const rep = @divExact(H, Hk);
            const qf = t.add(try ew.binary(.multiply, t.add(try castTo(q, ct, s)), t.add(try constant(a.scale, ct, s)), s));
            const q5 = t.add(try shape_ops.reshape(qf, &.{ B, Hk, rep, L, D }, s));
            const k5 = t.add(try shape_ops.reshape(t.add(try castTo(k, ct, s)), &.{ B, Hk, 1, S_, D }, s));
            const v5 = t.add(try shape_ops.reshape(t.add(try castTo(v, ct, s)), &.{ B, Hk, 1, S_, Dv }, s));
            var sc = t.add(try @import("matmul.zig").matmul(q5, t.add(try shape_ops.swapaxes(k5, -1, -2, s)), s));
            const lowest = t.add(try constant(-std.math.floatMax(f32), ct, s));
            var idx: usize = 3;
            switch (a.mask) {
                .none => {},
                .causal => {
                    const tri = t.add(try creation.tri(L, S_, S_ - L, .bool_, s));
                    sc = t.add(try ew.select(tri, sc, lowest, s));
                },
                .boolean, .additive => {
                    const m5 = t.add(try shape_ops.reshape(ins[3], &.{ B, Hk, rep, L, S_ }, s));
                    idx = 4;
                    sc = if (a.mask == .boolean)
                        t.add(try ew.select(m5, sc, lowest, s))
                    else
                        t.add(try ew.binary(.add, sc, t.add(try castTo(m5, ct, s)), s));
                },
            }
            var lse: *Node = undefined;
            if (a.has_sinks) {
                // sinks: (H), or (B, H) when the batching rule made them per batch entry
                const bs: i32 = if (ins[idx].shape.ndim == 2) ins[idx].shape.dims[0] else 1;
                const sk = t.add(try shape_ops.reshape(t.add(try castTo(ins[idx], ct, s)), &.{ bs, Hk, rep, 1, 1 }, s));
                const skb = t.add(try copy.broadcastTo(sk, try Shape.fromSlice(&.{ B, Hk, rep, L, 1 }, "scaled_dot_product_attention"), s));
                const cat = t.add(try shape_ops.concatenate(&.{ skb, sc }, -1, s));
                lse = t.add(try red.logsumexpLast(cat, true, s));
            } else {
                lse = t.add(try red.logsumexpLast(sc, true, s));
            }
            const pr = t.add(try ew.unary(.exp, t.add(try ew.binary(.subtract, sc, lse, s)), s));
            const o = t.add(try @import("matmul.zig").matmul(pr, v5, s));
            const o4 = t.add(try shape_ops.reshape(o, &.{ B, H, L, Dv }, s));
            return castTo(o4, out_dt, s);
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Transform rules (called from grad.zig and vmap.zig)

fn zerosLike(x: *const Node, s: u32) errors.Error!*Node {
    const z = try constant(0, x.dtype, s);
    defer array.release(z);
    return copy.broadcastTo(z, x.shape, s);
}

pub fn vjp(node: *Node, p: Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    switch (p) {
        .rope => |r| {
            if (arg == 0) {
                var inv = r;
                inv.scale = -r.scale;
                const gc = try castTo(g, node.inputs[0].dtype, s);
                defer array.release(gc);
                return ropeNode(gc, inv, node.inputs[1], if (r.has_freqs) node.inputs[2] else null, s);
            }
            if (arg == 1) return zerosLike(node.inputs[1], s);
            return ropeFreqsVjp(node, r, g, s);
        },
        .sdpa => |a| if ((a.mask == .boolean or a.mask == .additive) and arg == 3) return zerosLike(node.inputs[3], s),
        else => {},
    }
    // The vjp of the composed graph, built on distinct stand-ins of the inputs (an input may
    // appear twice, e.g. self-attention's q = k = v: each argument gets only its own share).
    // The stand-ins are identities that let gradients through (not stop_gradient), so an
    // outer transform differentiates this rule's graph again.
    var prim: [5]*Node = undefined;
    var n: usize = 0;
    defer for (prim[0..n]) |x| array.release(x);
    for (node.inputs) |in| {
        prim[n] = try copy.depends(in, &.{}, s);
        n += 1;
    }
    const y = try composed(p, prim[0..n], node.dtype, s);
    defer array.release(y);
    var outs: [5]*Node = undefined;
    try @import("../grad.zig").vjp(&.{y}, prim[0..n], &.{g}, outs[0..n], s);
    for (outs[0..n], 0..) |o, i| if (i != arg) array.release(o);
    return outs[arg];
}

/// The cotangent of rope's `freqs` (f, 1-D (h), or (n, h) per entry of x's first axis, as the
/// batching rule makes it). With y = rope(x), each pair (y1, y2) turns by theta = pos / f, so
/// dL/dtheta = g2 y1 - g1 y2 and dL/df = -sum(dL/dtheta * pos) / f^2 (the sum over every axis
/// but f's). Built from graph ops on the node's output, so it differentiates again.
fn ropeFreqsVjp(node: *Node, r: Rope, g: *Node, s: u32) errors.Error!*Node {
    var t = Tmp{};
    defer t.deinit();
    const ct = computeType(node.dtype);
    const nd = node.shape.ndim;
    const ax: usize = nd - 1;
    const h: i32 = @divExact(r.dims, 2);
    const step: i32 = if (r.traditional) 2 else 1;
    const second: i32 = if (r.traditional) 1 else h;
    const y = t.add(try castTo(node, ct, s));
    const gc = t.add(try castTo(g, ct, s));
    const y1 = t.add(try shape_ops.sliceAxis(y, ax, 0, h, step, s));
    const y2 = t.add(try shape_ops.sliceAxis(y, ax, second, h, step, s));
    const g1 = t.add(try shape_ops.sliceAxis(gc, ax, 0, h, step, s));
    const g2 = t.add(try shape_ops.sliceAxis(gc, ax, second, h, step, s));
    const dtheta = t.add(try ew.binary(.subtract, t.add(try ew.binary(.multiply, g2, y1, s)), t.add(try ew.binary(.multiply, g1, y2, s)), s));
    // Positions (offset + row) * scale, shaped to broadcast against (..., L, h).
    const L = node.shape.dims[nd - 2];
    const rows = t.add(try shape_ops.reshape(t.add(try creation.arange(0, @floatFromInt(L), 1, ct, s)), &.{ L, 1 }, s));
    const off_in = node.inputs[1];
    var off = t.add(try castTo(off_in, ct, s));
    if (off_in.size() > 1) {
        var dims: [max_ndim]i32 = undefined;
        dims[0] = off_in.shape.dims[0];
        for (1..nd) |k| dims[k] = 1;
        off = t.add(try shape_ops.reshape(off, dims[0..nd], s));
    }
    const pos = t.add(try ew.binary(.multiply, t.add(try ew.binary(.add, off, rows, s)), t.add(try constant(r.scale, ct, s)), s));
    const e = t.add(try ew.binary(.multiply, dtheta, pos, s));
    const f_in = node.inputs[2];
    var axes: [max_ndim]i32 = undefined;
    var na: usize = 0;
    const first: usize = if (f_in.shape.ndim == 2) 1 else 0;
    for (first..nd - 1) |k| {
        axes[na] = @intCast(k);
        na += 1;
    }
    const es = t.add(try red.reduce(.sum, e, axes[0..na], false, s));
    const f = t.add(try castTo(f_in, ct, s));
    const df = t.add(try ew.binary(.divide, t.add(try ew.unary(.negative, es, s)), t.add(try ew.unary(.square, f, s)), s));
    return castTo(df, f_in.dtype, s);
}

fn withBatch(x: *Node, b: i32, s: u32) errors.Error!*Node {
    var dims: [max_ndim]i32 = undefined;
    dims[0] = 1;
    @memcpy(dims[1 .. 1 + x.shape.ndim], x.shape.slice());
    const r = try shape_ops.reshape(x, dims[0 .. 1 + x.shape.ndim], s);
    defer array.release(r);
    dims[0] = b;
    return copy.broadcastTo(r, try Shape.fromSlice(dims[0 .. 1 + x.shape.ndim], "vmap"), s);
}

/// The node rebuilt on batched inputs (batch axis first; null: not batched).
pub fn vmapRule(node: *Node, p: Prim, bx: []const ?*Node, b: i32, s: u32) errors.Error!*Node {
    switch (p) {
        .rms_norm, .layer_norm => {
            var params_batched = false;
            for (bx[1..]) |x| params_batched = params_batched or x != null;
            if (!params_batched) {
                var ins: [3]*Node = undefined;
                for (node.inputs, 0..) |in, i| ins[i] = in;
                ins[0] = bx[0].?;
                const n = node.inputs.len;
                return array.create(node.dtype, bx[0].?.shape, node.prim, ins[0..n], s);
            }
            // Batched weight or bias: the composed graph on (b, 1.., d) parameters.
            var t = Tmp{};
            defer t.deinit();
            const x = if (bx[0]) |v| v else t.add(try withBatch(node.inputs[0], b, s));
            var ins: [3]*Node = undefined;
            ins[0] = x;
            for (node.inputs[1..], 1..) |in, i| {
                if (bx[i]) |v| {
                    var dims: [max_ndim]i32 = undefined;
                    dims[0] = b;
                    for (1..x.shape.ndim - 1) |k| dims[k] = 1;
                    dims[x.shape.ndim - 1] = lastDim(in);
                    ins[i] = t.add(try shape_ops.reshape(v, dims[0..x.shape.ndim], s));
                } else ins[i] = in;
            }
            return composed(p, ins[0..node.inputs.len], node.dtype, s);
        },
        .rope => |r| {
            const fr: ?*Node = if (r.has_freqs) node.inputs[2] else null;
            const off_b = bx[1];
            const fr_b: ?*Node = if (r.has_freqs) bx[2] else null;
            if (off_b == null and fr_b == null) {
                const x = bx[0].?;
                if (node.inputs[1].size() <= 1 and (fr == null or fr.?.shape.ndim == 1)) return ropeNode(x, r, node.inputs[1], fr, s);
                // A per-example offset (or freqs) follows x's first (unbatched) axis: put it in front.
                const xm = try shape_ops.swapaxes(x, 0, 1, s);
                defer array.release(xm);
                const y = try ropeNode(xm, r, node.inputs[1], fr, s);
                defer array.release(y);
                return shape_ops.swapaxes(y, 0, 1, s);
            }
            // A batched offset or freqs: fold the batch into x's first axis, giving each
            // (batch, first-axis) entry its own offset and freqs row.
            var t = Tmp{};
            defer t.deinit();
            const x = if (bx[0]) |v| v else t.add(try withBatch(node.inputs[0], b, s));
            const n0 = x.shape.dims[1];
            const nd = x.shape.ndim;
            var dims: [max_ndim]i32 = undefined;
            dims[0] = b * n0;
            @memcpy(dims[1 .. nd - 1], x.shape.dims[2..nd]);
            const xf = t.add(try shape_ops.reshape(x, dims[0 .. nd - 1], s));
            // offsets: (b) or (b, 1 | n0) -> (b * n0)
            const o = if (off_b) |v| v else t.add(try withBatch(node.inputs[1], b, s));
            const o2 = t.add(try shape_ops.reshape(o, &.{ b, @intCast(@divExact(o.size(), @as(usize, @intCast(b)))) }, s));
            const o3 = t.add(try copy.broadcastTo(o2, try Shape.fromSlice(&.{ b, n0 }, "vmap"), s));
            const off = t.add(try shape_ops.reshape(o3, &.{b * n0}, s));
            var frn: ?*Node = null;
            if (fr) |f0| {
                // freqs: (b, h) or (b, 1 | n0, h) -> (b * n0, h)
                const h = @divExact(r.dims, 2);
                const f = if (fr_b) |v| v else t.add(try withBatch(f0, b, s));
                const f2 = t.add(try shape_ops.reshape(f, &.{ b, @intCast(@divExact(f.size(), @as(usize, @intCast(b * h)))), h }, s));
                const f3 = t.add(try copy.broadcastTo(f2, try Shape.fromSlice(&.{ b, n0, h }, "vmap"), s));
                frn = t.add(try shape_ops.reshape(f3, &.{ b * n0, h }, s));
            }
            const y = t.add(try ropeNode(xf, r, off, frn, s));
            return shape_ops.reshape(y, x.shape.slice(), s);
        },
        .sdpa => |a| {
            var t = Tmp{};
            defer t.deinit();
            var ins: [5]*Node = undefined;
            const Bq = node.inputs[0].shape.dims[0];
            const H = node.inputs[0].shape.dims[1];
            for (node.inputs, 0..) |in, i| {
                if (a.has_sinks and i == node.inputs.len - 1) {
                    // sinks (H) or (Bq, H): unbatched (H) stays; otherwise (b * Bq, H).
                    if (bx[i] == null and in.shape.ndim == 1) {
                        ins[i] = in;
                        continue;
                    }
                    const sb = if (bx[i]) |v| v else t.add(try withBatch(in, b, s));
                    const s3 = t.add(try shape_ops.reshape(sb, &.{ b, @intCast(@divExact(sb.size(), @as(usize, @intCast(b * H)))), H }, s));
                    const s4 = t.add(try copy.broadcastTo(s3, try Shape.fromSlice(&.{ b, Bq, H }, "vmap"), s));
                    ins[i] = t.add(try shape_ops.reshape(s4, &.{ b * Bq, H }, s));
                    continue;
                }
                const xb = if (bx[i]) |v| v else t.add(try withBatch(in, b, s));
                var dims: [4]i32 = undefined;
                dims[0] = b * Bq;
                @memcpy(dims[1..4], in.shape.dims[1..4]);
                ins[i] = t.add(try shape_ops.reshape(xb, &dims, s));
            }
            const mask: ?*Node = if (a.mask == .boolean or a.mask == .additive) ins[3] else null;
            const sinks: ?*Node = if (a.has_sinks) ins[node.inputs.len - 1] else null;
            const o = t.add(try sdpaNode(ins[0], ins[1], ins[2], a, mask, sinks, s));
            return shape_ops.reshape(o, &.{ b, Bq, node.shape.dims[1], node.shape.dims[2], node.shape.dims[3] }, s);
        },
    }
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn optHandle(h: u32, op: []const u8) errors.Error!?*Node {
    if (h == 0) return null;
    return try handles.get(h, op);
}

fn rmsNormAbi(x: u32, w: u32, eps: f64, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const xn = handles.get(x, "rms_norm") catch |e| break :blk e;
        const wn = optHandle(w, "rms_norm") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "rms_norm") catch |e| break :blk e;
        break :blk rmsNorm(xn, wn, @floatCast(eps), stream);
    });
}

fn layerNormAbi(x: u32, w: u32, b: u32, eps: f64, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const xn = handles.get(x, "layer_norm") catch |e| break :blk e;
        const wn = optHandle(w, "layer_norm") catch |e| break :blk e;
        const bn = optHandle(b, "layer_norm") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "layer_norm") catch |e| break :blk e;
        break :blk layerNorm(xn, wn, bn, @floatCast(eps), stream);
    });
}

fn ropeAbi(x: u32, dims: i32, traditional: u32, has_base: u32, base: f64, scale: f64, offset: u32, freqs: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const xn = handles.get(x, "rope") catch |e| break :blk e;
        const on = handles.get(offset, "rope") catch |e| break :blk e;
        const fnode = optHandle(freqs, "rope") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "rope") catch |e| break :blk e;
        const b: ?f32 = if (has_base != 0) @floatCast(base) else null;
        break :blk rope(xn, dims, traditional != 0, b, @floatCast(scale), on, fnode, stream);
    });
}

fn sdpaAbi(q: u32, k: u32, v: u32, scale: f64, causal: u32, mask: u32, sinks: u32, s: i32) callconv(.c) u32 {
    const op = "scaled_dot_product_attention";
    return abi_util.handleOf(blk: {
        const qn = handles.get(q, op) catch |e| break :blk e;
        const kn = handles.get(k, op) catch |e| break :blk e;
        const vn = handles.get(v, op) catch |e| break :blk e;
        const mn = optHandle(mask, op) catch |e| break :blk e;
        const sn = optHandle(sinks, op) catch |e| break :blk e;
        const stream = stream_mod.resolve(s, op) catch |e| break :blk e;
        break :blk sdpa(qn, kn, vn, @floatCast(scale), if (causal != 0) .causal else .none, mn, sn, stream);
    });
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("fast_rms_norm", rmsNormAbi, &.{ "x", "weight", "eps", "stream" }, "mx.fast.rms_norm: x * rsqrt(mean(x^2, -1) + eps) * weight (weight 0 = none)."),
    abi_util.entry("fast_layer_norm", layerNormAbi, &.{ "x", "weight", "bias", "eps", "stream" }, "mx.fast.layer_norm over the last axis (weight, bias 0 = none)."),
    abi_util.entry("fast_rope", ropeAbi, &.{ "x", "dims", "traditional", "has_base", "base", "scale", "offset", "freqs", "stream" }, "mx.fast.rope: rotary embedding of the first dims of the last axis; offset an int32 scalar or per-batch vector; freqs 0 = use base."),
    abi_util.entry("fast_sdpa", sdpaAbi, &.{ "q", "k", "v", "scale", "causal", "mask", "sinks", "stream" }, "mx.fast.scaled_dot_product_attention (q, k, v rank 4; GQA; causal flag or a boolean/additive mask array; sinks 0 = none)."),
};

pub const abi_enums = .{};

// ---------------------------------------------------------------------------------------------
// Tests (values are checked against MLX in test/fast.test.ts)

const testing = std.testing;

test "fast: expV matches @exp" {
    var xs: [VL]f32 = undefined;
    for (&xs, 0..) |*x, i| x.* = -@as(f32, @floatFromInt(i)) * 5.3 - 0.01;
    const y: [VL]f32 = expV(xs);
    for (xs, y) |x, e| try testing.expectApproxEqRel(@exp(x), e, 3e-7 + if (x < -80) @as(f32, 1) else 0);
    const inf: [VL]f32 = expV(@splat(-std.math.inf(f32)));
    try testing.expectEqual(@as(f32, 0), inf[0]);
}

test "fast: vector half stores are bit-identical to the scalar ones" {
    var xs: [VL]f32 = undefined;
    const specials = [_]f32{ 0, -0.0, std.math.inf(f32), -std.math.inf(f32), std.math.nan(f32), -std.math.nan(f32), 65504, 65520, 6.0e-8, 2.9e-8, -1.0e-40, 3.4e38, 1.00048828125, 1.0009765625, 0.1, -7.25 };
    for (&xs, specials) |*x, v| x.* = v;
    var prng = std.Random.DefaultPrng.init(7);
    for (0..200) |round| {
        if (round > 0) for (&xs) |*x| {
            x.* = @bitCast(prng.random().int(u32));
        };
        const v: @Vector(VL, f32) = xs;
        var h: [VL]F16 = undefined;
        var b: [VL]BF16 = undefined;
        st(F16, VL, &h, v);
        st(BF16, VL, &b, v);
        for (xs, h, b) |x, hv, bv| {
            try testing.expectEqual(half.f32ToF16(x), hv.bits);
            try testing.expectEqual(half.f32ToBf16(x), bv.bits);
        }
    }
}

test "fast: rms_norm shapes and messages" {
    const s: u32 = 0;
    const x = try array.createWithBuffer(.float16, try Shape.fromSlice(&.{ 2, 8 }, "t"), s, "t");
    defer array.release(x);
    const w = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{7}, "t"), s, "t");
    defer array.release(w);
    try testing.expectError(error.Failed, rmsNorm(x, w, 1e-5, s));
    try testing.expectEqualStrings("[rms_norm] (*weight) must have the same size as the last dimension of x but has 7 elements.", errors.messageSlice());
}
