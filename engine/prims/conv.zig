//! Convolution: one general N-d primitive (1 to 3 spatial dimensions), as MLX's Convolution:
//! strides, padding low/high, kernel dilation, input dilation, groups and flip, channels last
//! (input [N, spatial..., C_in], weight [C_out, kernel..., C_in / groups], output
//! [N, out spatial..., C_out]). conv1d/2d/3d, the transposed convolutions and numpy's convolve
//! are composed in TypeScript (src/ops/conv.ts) from `conv_general`.
//!
//! Coordinates: along a spatial axis the input is first dilated (input_dilation - 1 zeros between
//! neighbours), then padded by lo/hi zeros. Output position o, kernel tap j read the dilated and
//! padded input at o * stride + j' * kernel_dilation, with j' = K - 1 - j under flip.
//! The public op follows MLX: negative padding slices the (undilated) input first. The graph node
//! itself accepts negative padding in dilated coordinates (a crop), which the vjp rules need.
//!
//! Kernel: a direct (implicit-GEMM) convolution, engine/conv_kernel.zig: the weight of each
//! group is packed once into the B panels of our GEMM (engine/gemm.zig) and the A operand, the
//! virtual im2col matrix, is packed from the input through per-row window origins and per-tap
//! offsets (padding taps: zeros) straight into the micro-kernel's panels, so no im2col matrix is
//! materialised; output-row blocks are split over the pool. Compute type float32 for
//! float16/bfloat16/float32 (rounded once at the store), float64 for float64. 1x1 convolutions
//! with stride 1 and no padding on a row-contiguous input run one (parallel) GEMM per group on
//! the input itself.
//! `naive` is the plain-loop reference.
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const alloc = @import("../alloc.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const abi_util = @import("../abi_util.zig");
const convert = @import("../convert.zig");
const gemm = @import("../gemm.zig");
const cpu = @import("../cpu.zig");
const conv_kernel = @import("../conv_kernel.zig");
const half = @import("../half.zig");
const copy = @import("copy.zig");
const shape_ops = @import("shape.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

/// Spatial dimensions a convolution may have (MLX: 1 to 3).
pub const max_sp = 3;

pub const Params = struct {
    nsp: u8,
    stride: [max_sp]i32 = .{ 1, 1, 1 },
    lo: [max_sp]i32 = .{ 0, 0, 0 },
    hi: [max_sp]i32 = .{ 0, 0, 0 },
    kdil: [max_sp]i32 = .{ 1, 1, 1 },
    idil: [max_sp]i32 = .{ 1, 1, 1 },
    groups: i32 = 1,
    flip: bool = false,
};

pub const Prim = union(enum) {
    /// inputs: x [N, L..., C_in], w [C_out, K..., C_in / groups], equal real floating dtypes.
    conv: Params,

    pub fn name(p: Prim) []const u8 {
        _ = p;
        return "conv";
    }
};

// ---------------------------------------------------------------------------------------------
// Graph-building ops

/// The user's lists as given (any length; checked against the input's rank).
pub const Spec = struct {
    stride: []const i32,
    lo: []const i32,
    hi: []const i32,
    kdil: []const i32,
    idil: []const i32,
    groups: i32,
    flip: bool,
};

const listStr = array.formatDims;

fn isRealFloat(d: Dtype) bool {
    return d == .float16 or d == .bfloat16 or d == .float32 or d == .float64;
}

/// conv_general with MLX's checks, messages and negative-padding rule.
pub fn convGeneral(x_in: *Node, w_in: *Node, spec: Spec, stream: u32) errors.Error!*Node {
    var b1: [256]u8 = undefined;
    var b2: [256]u8 = undefined;
    if (!isRealFloat(x_in.dtype))
        return errors.fail(.invalid_argument, "[conv] Invalid input array with type {s}. Convolution currently only supports floating point types", .{x_in.dtype.name()});
    const nd = x_in.shape.ndim;
    if (nd < 3 or nd > 2 + max_sp)
        return errors.fail(.invalid_argument, "[conv] Only works for inputs with 1-3 spatial dimensions. The inputs must be in the format [N, ..., C_in]", .{});
    const nsp = nd - 2;
    if (w_in.shape.ndim != nd)
        return errors.fail(.invalid_argument, "[conv] Invalid weight array with {d} dimensions for {d}D convolution. Expected an array with {d} dimensions following the format [C_out, ..., C_in].", .{ w_in.shape.ndim, nsp, nd });
    const groups = spec.groups;
    const c_in = x_in.shape.dims[nd - 1];
    const c_out = w_in.shape.dims[0];
    const w_cin = w_in.shape.dims[nd - 1];
    if (groups <= 0)
        return errors.fail(.invalid_argument, "[conv] The number of groups must be positive. Got {d} groups.", .{groups});
    if (groups == 1) {
        if (c_in != w_cin)
            return errors.fail(.invalid_argument, "[conv] Expect the input channels in the input and weight array to match but got shapes - input: {s} and weight: {s}", .{ x_in.shape.format(&b1), w_in.shape.format(&b2) });
    } else {
        if (nsp > 2)
            return errors.fail(.invalid_argument, "[conv] Can only handle groups != 1 in 1D or 2D convolutions.", .{});
        if (@mod(c_in, groups) != 0)
            return errors.fail(.invalid_argument, "[conv] The input channels must be divisible by the number of groups. Got input with shape {s} and {d} groups.", .{ x_in.shape.format(&b1), groups });
        if (@mod(c_out, groups) != 0)
            return errors.fail(.invalid_argument, "[conv] If groups > 1, the output channels must be divisible by the number of groups. Got {d} output channels and {d} groups.", .{ c_out, groups });
        if (c_in != w_cin * groups)
            return errors.fail(.invalid_argument, "Given groups={d} and weights of shape {s}, expected to have {d} input channels but got {d} input channels instead.", .{ groups, w_in.shape.format(&b1), w_cin * groups, c_in });
    }
    if (spec.stride.len != nsp)
        return errors.fail(.invalid_argument, "[conv] Invalid strides {s} for {d}D convolution.", .{ listStr(spec.stride, &b1), nsp });
    if (spec.lo.len != nsp or spec.hi.len != nsp)
        return errors.fail(.invalid_argument, "[conv] Invalid padding {s} | {s} for {d}D convolution.", .{ listStr(spec.lo, &b1), listStr(spec.hi, &b2), nsp });
    if (spec.kdil.len != nsp)
        return errors.fail(.invalid_argument, "[conv] Invalid kernel dilation {s} for {d}D convolution.", .{ listStr(spec.kdil, &b1), nsp });
    if (spec.idil.len != nsp)
        return errors.fail(.invalid_argument, "[conv] Invalid input dilation {s} for {d}D convolution.", .{ listStr(spec.idil, &b1), nsp });
    for (spec.kdil) |v| if (v <= 0)
        return errors.fail(.invalid_argument, "[conv] Kernel dilation sizes must be positive. Got kernel dilation {s}.", .{listStr(spec.kdil, &b1)});
    for (spec.idil) |v| if (v <= 0)
        return errors.fail(.invalid_argument, "[conv] Input dilation sizes must be positive. Got input dilation {s}.", .{listStr(spec.idil, &b1)});
    for (spec.stride) |v| if (v <= 0)
        return errors.fail(.invalid_argument, "[conv] Stride sizes must be positive. Got strides {s}.", .{listStr(spec.stride, &b1)});

    var p = Params{ .nsp = @intCast(nsp), .groups = groups, .flip = spec.flip };
    for (0..nsp) |i| {
        p.stride[i] = spec.stride[i];
        p.lo[i] = spec.lo[i];
        p.hi[i] = spec.hi[i];
        p.kdil[i] = spec.kdil[i];
        p.idil[i] = spec.idil[i];
    }
    // Negative padding slices the undilated input (MLX's rule).
    var x = x_in;
    x.retain();
    defer array.release(x);
    for (0..nsp) |i| {
        if (p.lo[i] >= 0 and p.hi[i] >= 0) continue;
        const n = x.shape.dims[i + 1];
        const start: i32 = @min(n, if (p.lo[i] < 0) -p.lo[i] else 0);
        const stop: i32 = @max(start, n + @min(p.hi[i], 0));
        const next = try shape_ops.sliceAxis(x, i + 1, start, stop - start, 1, stream);
        array.release(x);
        x = next;
        p.lo[i] = @max(p.lo[i], 0);
        p.hi[i] = @max(p.hi[i], 0);
    }
    for (0..nsp) |i| {
        const l: i64 = x.shape.dims[i + 1];
        const k: i64 = w_in.shape.dims[i + 1];
        const span: i64 = (l - 1) * p.idil[i] + 1; // MLX's, an empty input included (then 2 - idil)
        if (span + p.lo[i] + p.hi[i] < (k - 1) * p.kdil[i] + 1) {
            var b3: [256]u8 = undefined;
            var b4: [256]u8 = undefined;
            return errors.fail(.invalid_argument, "[conv] Spatial dimensions of input after padding cannot be smaller than weight spatial dimensions. Got error at axis {d} for input with shape {s}, padding low {s}, padding high {s}, and weight of shape {s}.", .{ i + 1, x.shape.format(&b1), listStr(p.lo[0..nsp], &b3), listStr(p.hi[0..nsp], &b4), w_in.shape.format(&b2) });
        }
    }
    const dt = dtype_mod.promote(x.dtype, w_in.dtype);
    if (!isRealFloat(dt))
        return errors.fail(.invalid_argument, "[conv] Invalid input array with type {s}. Convolution currently only supports floating point types", .{dt.name()});
    const xc = try castTo(x, dt, stream);
    defer array.release(xc);
    const wc = try castTo(w_in, dt, stream);
    defer array.release(wc);
    return convRaw(xc, wc, p, stream);
}

fn castTo(x: *Node, dt: Dtype, stream: u32) errors.Error!*Node {
    if (x.dtype == dt) {
        x.retain();
        return x;
    }
    return copy.astype(x, dt, stream);
}

/// Output size along one spatial axis (padding may be negative: a crop in dilated coordinates).
fn outSize(l: i64, k: i64, p: *const Params, i: usize) i32 {
    const span: i64 = (l - 1) * p.idil[i] + 1; // MLX's, an empty input included (then 2 - idil)
    const num = span + p.lo[i] + p.hi[i] - (k - 1) * p.kdil[i] - 1;
    if (num < 0) return 0;
    return @intCast(@divFloor(num, p.stride[i]) + 1);
}

/// The convolution node on inputs already checked and of one dtype (used by the rules too).
pub fn convRaw(x: *Node, w: *Node, p: Params, stream: u32) errors.Error!*Node {
    std.debug.assert(x.dtype == w.dtype and x.shape.ndim == w.shape.ndim and x.shape.ndim == p.nsp + 2);
    var out = x.shape;
    for (0..p.nsp) |i| out.dims[i + 1] = outSize(x.shape.dims[i + 1], w.shape.dims[i + 1], &p, i);
    out.dims[p.nsp + 1] = w.shape.dims[0];
    _ = try out.sizeChecked("conv");
    return array.create(x.dtype, out, .{ .conv = .{ .conv = p } }, &.{ x, w }, stream);
}

// ---------------------------------------------------------------------------------------------
// Kernels

/// The geometry of one convolution node, every spatial axis padded to 3 (size 1, stride 1).
const Geo = struct {
    n: usize,
    l: [max_sp]i64,
    k: [max_sp]usize,
    o: [max_sp]usize,
    c_in: usize,
    c_out: usize,
    groups: usize,
    cig: usize,
    cog: usize,
    /// kernel taps (product of k)
    ktaps: usize,
    /// output positions per batch item (product of o)
    opos: usize,
    x_strides: [max_sp + 2]i64,
    p: Params,

    fn init(node: *const Node, p: Params) Geo {
        const x = node.inputs[0];
        const w = node.inputs[1];
        const nsp = p.nsp;
        var g: Geo = undefined;
        g.p = p;
        g.n = @intCast(x.shape.dims[0]);
        g.c_in = @intCast(x.shape.dims[nsp + 1]);
        g.c_out = @intCast(w.shape.dims[0]);
        g.groups = @intCast(p.groups);
        g.cig = g.c_in / g.groups;
        g.cog = g.c_out / g.groups;
        g.ktaps = 1;
        g.opos = 1;
        g.x_strides[0] = x.strides[0];
        g.x_strides[max_sp + 1] = x.strides[nsp + 1];
        for (0..max_sp) |i| {
            if (i < nsp) {
                g.l[i] = x.shape.dims[i + 1];
                g.k[i] = @intCast(w.shape.dims[i + 1]);
                g.o[i] = @intCast(node.shape.dims[i + 1]);
                g.x_strides[i + 1] = x.strides[i + 1];
            } else {
                g.l[i] = 1;
                g.k[i] = 1;
                g.o[i] = 1;
                g.x_strides[i + 1] = 0;
                g.p.stride[i] = 1;
                g.p.lo[i] = 0;
                g.p.hi[i] = 0;
                g.p.kdil[i] = 1;
                g.p.idil[i] = 1;
            }
            g.ktaps *= g.k[i];
            g.opos *= g.o[i];
        }
        return g;
    }

    /// Where output position o starts along each axis, in dilated and padded input coordinates
    /// shifted by the low padding (o * stride - lo).
    inline fn origin(g: *const Geo, o: [max_sp]usize) [max_sp]i64 {
        var r: [max_sp]i64 = undefined;
        inline for (0..max_sp) |d| r[d] = @as(i64, @intCast(o[d])) * g.p.stride[d] - g.p.lo[d];
        return r;
    }

    /// Element offset in x of tap j for an output position with origin `org`, or null when the
    /// tap falls on padding or a dilation hole.
    inline fn tapOffset(g: *const Geo, org: [max_sp]i64, j: [max_sp]usize) ?i64 {
        var off: i64 = 0;
        inline for (0..max_sp) |d| {
            const jj: i64 = @intCast(if (g.p.flip) g.k[d] - 1 - j[d] else j[d]);
            const pos: i64 = org[d] + jj * g.p.kdil[d];
            if (pos < 0) return null;
            const id: i64 = g.p.idil[d];
            const xi = if (id == 1) pos else blk: {
                if (@mod(pos, id) != 0) return null;
                break :blk @divFloor(pos, id);
            };
            if (xi >= g.l[d]) return null;
            off += xi * g.x_strides[d + 1];
        }
        return off;
    }
};

inline fn unflat3(i: usize, dims: [max_sp]usize) [max_sp]usize {
    var r: [max_sp]usize = undefined;
    var rem = i;
    var d: usize = max_sp;
    while (d > 0) {
        d -= 1;
        r[d] = rem % dims[d];
        rem /= dims[d];
    }
    return r;
}

inline fn loadAs(comptime S: type, comptime T: type, v: S) T {
    return switch (S) {
        dtype_mod.F16 => @floatCast(half.f16ToF32(v.bits)),
        dtype_mod.BF16 => @floatCast(half.bf16ToF32(v.bits)),
        else => @floatCast(v),
    };
}

inline fn storeAs(comptime S: type, comptime T: type, v: T) S {
    return switch (S) {
        dtype_mod.F16 => .{ .bits = half.f32ToF16(@floatCast(v)) },
        dtype_mod.BF16 => .{ .bits = half.f32ToBf16(@floatCast(v)) },
        else => @floatCast(v),
    };
}

fn offsetPtr(comptime S: type, p: [*]const S, off: i64) [*]const S {
    const addr: i64 = @as(i64, @intCast(@intFromPtr(p))) + off * @sizeOf(S);
    return @ptrFromInt(@as(usize, @intCast(addr)));
}

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    try primitives.allocOutput(node, null);
    const params = p.conv;
    switch (node.dtype) {
        .float32 => try run(f32, f32, node, params),
        .float64 => try run(f64, f64, node, params),
        .float16 => try run(f32, dtype_mod.F16, node, params),
        .bfloat16 => try run(f32, dtype_mod.BF16, node, params),
        else => unreachable, // refused when the node was built
    }
}

fn run(comptime T: type, comptime S: type, node: *Node, p: Params) errors.Error!void {
    var g = Geo.init(node, p);
    const out: [*]S = @ptrCast(@alignCast(node.data()));
    const rows = g.n * g.opos;
    if (rows == 0 or g.c_out == 0) return;
    const x = node.inputs[0];
    const w = node.inputs[1];
    // The plain loop (the reference, and the fallback when the kernel is out of memory) reads
    // a row-contiguous weight: a strided view (the weight gradient's output gradient) is copied
    // for it. The kernel and the GEMM read the view through its strides.
    var w_tmp: ?alloc.Scratch(S) = null;
    defer if (w_tmp) |t| t.deinit();
    const contiguous = struct {
        fn get(wn: *Node, tmp: *?alloc.Scratch(S)) errors.Error![*]const S {
            if (wn.isRowContiguous()) return @ptrCast(@alignCast(wn.data()));
            const t = try alloc.Scratch(S).init(wn.size(), "conv");
            convert.copyConvert(wn, @ptrCast(t.items.ptr), wn.dtype);
            tmp.* = t;
            return t.items.ptr;
        }
    }.get;
    const wv: [*]const S = @ptrCast(@alignCast(w.data()));
    var ws: [max_sp + 2]i64 = .{ w.strides[0], 0, 0, 0, w.strides[g.p.nsp + 1] };
    for (0..g.p.nsp) |d| ws[d + 1] = w.strides[d + 1];
    const xp0: [*]const S = @ptrCast(@alignCast(x.data()));
    if (primitives.reference_mode) return naive(T, S, &g, xp0, try contiguous(w, &w_tmp), out);
    // An input whose channels are not adjacent (the weight gradient's, with the batch as the
    // channel axis) is copied row-contiguous once: the kernel then copies whole runs of
    // channels and taps instead of gathering element by element, once per tap. Unless its
    // batch axis is the contiguous one: the kernel then packs batch items side by side.
    var x_tmp: ?alloc.Scratch(S) = null;
    defer if (x_tmp) |t| t.deinit();
    const in_place = g.x_strides[max_sp + 1] == 1 or g.ktaps == 1 or conv_kernel.batchInner(g.n, g.x_strides[0], g.x_strides[max_sp + 1]);
    const xp: [*]const S = if (in_place) xp0 else blk: {
        // Out of memory for the copy: the kernel reads the view in place (slower, same result).
        const t = alloc.Scratch(S).init(x.size(), "conv") catch break :blk xp0;
        convert.copyConvert(x, @ptrCast(t.items.ptr), x.dtype);
        x_tmp = t;
        // Row-contiguous strides: [N, L..., C_in] (padded axes have size 1).
        var st: i64 = @intCast(g.c_in);
        g.x_strides[max_sp + 1] = 1;
        var d: usize = max_sp;
        while (d > 0) {
            d -= 1;
            g.x_strides[d + 1] = if (g.l[d] == 1 and d >= g.p.nsp) 0 else st;
            st *= g.l[d];
        }
        g.x_strides[0] = st;
        break :blk t.items.ptr;
    };
    const kc = g.ktaps * g.cig; // GEMM depth per group
    if (kc == 0) {
        @memset(out[0 .. rows * g.c_out], storeAs(S, T, 0));
        return;
    }
    if (isPointwise(&g, x)) {
        // 1x1, stride 1, no padding: the input is already the im2col matrix.
        for (0..g.groups) |gi| {
            const a = gemm.Mat(S){ .ptr = @constCast(xp + gi * g.cig), .rs = @intCast(g.c_in), .cs = 1 };
            const b = gemm.Mat(S){ .ptr = @constCast(offsetPtr(S, wv, @as(i64, @intCast(gi * g.cog)) * ws[0])), .rs = @intCast(ws[max_sp + 1]), .cs = @intCast(ws[0]) };
            const c = gemm.Mat(S){ .ptr = out + gi * g.cog, .rs = @intCast(g.c_out), .cs = 1 };
            gemm.gemm(T, S, S, S, rows, g.cog, kc, 1, a, b, 0, c);
        }
        return;
    }
    const cx = conv_kernel.Ctx{
        .x = @ptrCast(xp),
        .w = @ptrCast(wv),
        .out = @ptrCast(out),
        .n = g.n,
        .c_out = g.c_out,
        .groups = g.groups,
        .cig = g.cig,
        .cog = g.cog,
        .ktaps = g.ktaps,
        .opos = g.opos,
        .l = g.l,
        .k = g.k,
        .o = g.o,
        .x_strides = g.x_strides,
        .w_strides = ws,
        .stride = widen(g.p.stride),
        .lo = widen(g.p.lo),
        .kdil = widen(g.p.kdil),
        .idil = widen(g.p.idil),
        .flip = g.p.flip,
    };
    // Out of memory for the packed panels: the plain loop still gives the right answer.
    if (!conv_kernel.forward(T, S, &cx)) naive(T, S, &g, xp, try contiguous(w, &w_tmp), out);
}

fn widen(v: [max_sp]i32) [max_sp]i64 {
    return .{ v[0], v[1], v[2] };
}

fn isPointwise(g: *const Geo, x: *const Node) bool {
    if (g.ktaps != 1 or !x.isRowContiguous()) return false;
    for (0..max_sp) |d| {
        if (g.p.stride[d] != 1 or g.p.lo[d] != 0 or g.p.hi[d] != 0 or g.p.idil[d] != 1) return false;
        if (@as(i64, @intCast(g.o[d])) != g.l[d]) return false;
    }
    return true;
}

/// The plain-loop reference (the definition of correct), over output rows [lo, hi).
fn naiveRows(comptime T: type, comptime S: type, g: *const Geo, xp: [*]const S, wp: [*]const S, out: [*]S, lo: usize, hi: usize) void {
    const cs = g.x_strides[max_sp + 1];
    for (lo..hi) |r| {
        const n = r / g.opos;
        const org = g.origin(unflat3(r % g.opos, g.o));
        const base = offsetPtr(S, xp, @as(i64, @intCast(n)) * g.x_strides[0]);
        for (0..g.c_out) |co| {
            const gi = co / g.cog;
            var acc: T = 0;
            for (0..g.ktaps) |t| {
                const off = g.tapOffset(org, unflat3(t, g.k)) orelse continue;
                for (0..g.cig) |c| {
                    const xv = loadAs(S, T, offsetPtr(S, base, off + @as(i64, @intCast(gi * g.cig + c)) * cs)[0]);
                    const wv = loadAs(S, T, wp[(co * g.ktaps + t) * g.cig + c]);
                    acc += xv * wv;
                }
            }
            out[r * g.c_out + co] = storeAs(S, T, acc);
        }
    }
}

fn naive(comptime T: type, comptime S: type, g: *const Geo, xp: [*]const S, wp: [*]const S, out: [*]S) void {
    naiveRows(T, S, g, xp, wp, out, 0, g.n * g.opos);
}

// ---------------------------------------------------------------------------------------------
// Transform rules (called from grad.zig and vmap.zig)

fn spatialList(p: *const Params, comptime field: []const u8) []const i32 {
    return @field(p, field)[0..p.nsp];
}

/// [d0, d1, ...] as a reshape target.
fn dimsOf(buf: *[max_ndim]i32, vals: []const i32) []const i32 {
    @memcpy(buf[0..vals.len], vals);
    return buf[0..vals.len];
}

/// The cotangent of the input (arg 0) or the weight (arg 1), both as convolutions.
pub fn vjp(node: *Node, prim: Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    const p = prim.conv;
    const x = node.inputs[0];
    const w = node.inputs[1];
    const nsp: usize = p.nsp;
    const G: i32 = p.groups;
    const c_in = x.shape.dims[nsp + 1];
    const c_out = w.shape.dims[0];
    const cig = @divExact(c_in, G);
    const cog = @divExact(c_out, G);
    var dbuf: [max_ndim]i32 = undefined;
    var axes: [max_ndim]i32 = undefined;
    if (arg == 0) {
        // Weight as [C_in, K..., C_out / G]: [G, Cog, K..., Cig] -> [G, Cig, K..., Cog].
        dbuf[0] = G;
        dbuf[1] = cog;
        for (0..nsp) |i| dbuf[2 + i] = w.shape.dims[1 + i];
        dbuf[2 + nsp] = cig;
        const w5 = try shape_ops.reshape(w, dbuf[0 .. nsp + 3], s);
        defer array.release(w5);
        axes[0] = 0;
        axes[1] = @intCast(nsp + 2);
        for (0..nsp) |i| axes[2 + i] = @intCast(2 + i);
        axes[2 + nsp] = 1;
        const wt = try shape_ops.transpose(w5, axes[0 .. nsp + 3], s);
        defer array.release(wt);
        dbuf[0] = c_in;
        for (0..nsp) |i| dbuf[1 + i] = w.shape.dims[1 + i];
        dbuf[1 + nsp] = cog;
        const w2 = try shape_ops.reshape(wt, dbuf[0 .. nsp + 2], s);
        defer array.release(w2);
        var q = Params{ .nsp = p.nsp, .groups = G, .flip = !p.flip };
        for (0..nsp) |i| {
            const k: i32 = w.shape.dims[1 + i];
            const l: i32 = x.shape.dims[1 + i];
            const o: i32 = node.shape.dims[1 + i];
            q.stride[i] = p.idil[i];
            q.kdil[i] = p.kdil[i];
            q.idil[i] = p.stride[i];
            q.lo[i] = p.kdil[i] * (k - 1) - p.lo[i];
            q.hi[i] = (l - 1) * p.idil[i] + p.lo[i] - (o - 1) * p.stride[i];
        }
        return convRaw(g, w2, q, s);
    }
    // Weight: the batch becomes the channel axis. in' [Cig, L..., G*N], w' [G*Cog, O..., N].
    const n = x.shape.dims[0];
    for (0..nsp + 1) |i| dbuf[i] = x.shape.dims[i];
    dbuf[nsp + 1] = G;
    dbuf[nsp + 2] = cig;
    const x5 = try shape_ops.reshape(x, dbuf[0 .. nsp + 3], s);
    defer array.release(x5);
    axes[0] = @intCast(nsp + 2);
    for (0..nsp) |i| axes[1 + i] = @intCast(1 + i);
    axes[1 + nsp] = @intCast(nsp + 1);
    axes[2 + nsp] = 0;
    const xt = try shape_ops.transpose(x5, axes[0 .. nsp + 3], s);
    defer array.release(xt);
    dbuf[0] = cig;
    for (0..nsp) |i| dbuf[1 + i] = x.shape.dims[1 + i];
    dbuf[1 + nsp] = G * n;
    const x2 = try shape_ops.reshape(xt, dbuf[0 .. nsp + 2], s);
    defer array.release(x2);

    for (0..nsp + 1) |i| dbuf[i] = g.shape.dims[i];
    dbuf[nsp + 1] = G;
    dbuf[nsp + 2] = cog;
    const g5 = try shape_ops.reshape(g, dbuf[0 .. nsp + 3], s);
    defer array.release(g5);
    axes[0] = @intCast(nsp + 1);
    axes[1] = @intCast(nsp + 2);
    for (0..nsp) |i| axes[2 + i] = @intCast(1 + i);
    axes[2 + nsp] = 0;
    const gt = try shape_ops.transpose(g5, axes[0 .. nsp + 3], s);
    defer array.release(gt);
    dbuf[0] = c_out;
    for (0..nsp) |i| dbuf[1 + i] = g.shape.dims[1 + i];
    dbuf[1 + nsp] = n;
    const g2 = try shape_ops.reshape(gt, dbuf[0 .. nsp + 2], s);
    defer array.release(g2);

    var q = Params{ .nsp = p.nsp, .groups = G, .flip = false };
    for (0..nsp) |i| {
        const k: i32 = w.shape.dims[1 + i];
        const l: i32 = x.shape.dims[1 + i];
        const o: i32 = node.shape.dims[1 + i];
        q.stride[i] = p.kdil[i];
        q.kdil[i] = p.stride[i];
        q.idil[i] = p.idil[i];
        q.lo[i] = p.lo[i];
        q.hi[i] = (k - 1) * p.kdil[i] + p.stride[i] * (o - 1) - p.lo[i] - (l - 1) * p.idil[i];
    }
    const u = try convRaw(x2, g2, q, s); // [Cig, K..., C_out]
    defer array.release(u);
    axes[0] = @intCast(nsp + 1);
    for (0..nsp) |i| axes[1 + i] = @intCast(1 + i);
    axes[1 + nsp] = 0;
    const ut = try shape_ops.transpose(u, axes[0 .. nsp + 2], s);
    if (!p.flip) return ut;
    defer array.release(ut);
    for (0..nsp) |i| axes[i] = @intCast(1 + i);
    return shape_ops.flip(ut, axes[0..nsp], false, s);
}

/// The convolution on batched inputs (batch axis first; null: not batched).
pub fn vmapRule(node: *Node, prim: Prim, bx: []const ?*Node, s: u32) errors.Error!*Node {
    const p = prim.conv;
    const nsp: usize = p.nsp;
    const x = node.inputs[0];
    const w = node.inputs[1];
    var dbuf: [max_ndim]i32 = undefined;
    if (bx[0] != null and bx[1] == null) {
        const xb = bx[0].?;
        const b = xb.shape.dims[0];
        const xf = try shape_ops.flatten(xb, 0, 1, s);
        defer array.release(xf);
        const r = try convRaw(xf, w, p, s);
        defer array.release(r);
        return shape_ops.unflatten(r, 0, &.{ b, x.shape.dims[0] }, s);
    }
    const wb = bx[1].?;
    const b = wb.shape.dims[0];
    const G: i32 = p.groups;
    const c_out = w.shape.dims[0];
    const cog = @divExact(c_out, G);
    if (bx[0] == null) {
        // Fold the batch into the output channels of each group: [G, B, Cog, K..., Cig].
        dbuf[0] = b;
        dbuf[1] = G;
        dbuf[2] = cog;
        for (0..nsp + 1) |i| dbuf[3 + i] = w.shape.dims[1 + i];
        const w6 = try shape_ops.reshape(wb, dbuf[0 .. nsp + 4], s);
        defer array.release(w6);
        const wm = try shape_ops.moveaxis(w6, 0, 1, s);
        defer array.release(wm);
        const wf = try shape_ops.flatten(wm, 0, 2, s);
        defer array.release(wf);
        const r = try convRaw(x, wf, p, s); // [N, O..., G*B*Cog]
        defer array.release(r);
        const ru = try shape_ops.unflatten(r, @intCast(nsp + 1), &.{ G, b, cog }, s);
        defer array.release(ru);
        const rm = try shape_ops.moveaxis(ru, @intCast(nsp + 2), 0, s);
        defer array.release(rm);
        return shape_ops.flatten(rm, @intCast(nsp + 2), @intCast(nsp + 3), s);
    }
    // Both batched: the batch becomes B * G groups.
    const xb = bx[0].?;
    const xm = try shape_ops.moveaxis(xb, 0, @intCast(nsp + 1), s);
    defer array.release(xm);
    const xf = try shape_ops.flatten(xm, @intCast(nsp + 1), @intCast(nsp + 2), s);
    defer array.release(xf);
    const wf = try shape_ops.flatten(wb, 0, 1, s);
    defer array.release(wf);
    var q = p;
    q.groups = p.groups * b;
    const r = try convRaw(xf, wf, q, s); // [N, O..., B*C_out]
    defer array.release(r);
    const ru = try shape_ops.unflatten(r, @intCast(nsp + 1), &.{ b, c_out }, s);
    defer array.release(ru);
    return shape_ops.moveaxis(ru, @intCast(nsp + 1), 0, s);
}

// ---------------------------------------------------------------------------------------------
// C ABI

/// Longest option list accepted through the ABI.
const max_list = 16;

fn convGeneralAbi(input: u32, weight: u32, params: ?[*]const i32, nparams: u32, groups: i32, flip: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(input, "conv") catch |e| break :blk e;
        const w = handles.get(weight, "conv") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "conv") catch |e| break :blk e;
        const spec = parseSpec(params, nparams, groups, flip != 0) catch |e| break :blk e;
        break :blk convGeneral(x, w, spec, stream);
    });
}

/// params: five length-prefixed lists: strides, padding low, padding high, kernel dilation,
/// input dilation.
fn parseSpec(params: ?[*]const i32, nparams: u32, groups: i32, flip: bool) errors.Error!Spec {
    const bad = "[conv] Malformed convolution parameters.";
    const ptr = params orelse return errors.fail(.invalid_argument, bad, .{});
    const all = ptr[0..nparams];
    var lists: [5][]const i32 = undefined;
    var at: usize = 0;
    for (0..5) |i| {
        if (at >= all.len) return errors.fail(.invalid_argument, bad, .{});
        const len = all[at];
        if (len < 0 or len > max_list or at + 1 + @as(usize, @intCast(len)) > all.len)
            return errors.fail(.invalid_argument, bad, .{});
        lists[i] = all[at + 1 .. at + 1 + @as(usize, @intCast(len))];
        at += 1 + @as(usize, @intCast(len));
    }
    return .{ .stride = lists[0], .lo = lists[1], .hi = lists[2], .kdil = lists[3], .idil = lists[4], .groups = groups, .flip = flip };
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("conv_general", convGeneralAbi, &.{ "input", "weight", "params", "nparams", "groups", "flip", "stream" }, "General convolution (channels last; params: five length-prefixed i32 lists: strides, padding low, padding high, kernel dilation, input dilation)."),
};

pub const abi_enums = .{};

// ---------------------------------------------------------------------------------------------
// Tests: the direct kernel against the plain loop, on shapes with every option.

const testing = std.testing;

fn randomNode(shape: []const i32, seed: u64) !*Node {
    const n = try array.createWithBuffer(.float32, try Shape.fromSlice(shape, "t"), 0, "t");
    var rng = std.Random.DefaultPrng.init(seed);
    const d: [*]f32 = @ptrCast(@alignCast(n.data()));
    for (0..n.size()) |i| d[i] = rng.random().float(f32) * 2 - 1;
    return n;
}

fn checkAgainstNaive(xs: []const i32, ws: []const i32, p: Params) !void {
    const x = try randomNode(xs, 1);
    defer array.release(x);
    const w = try randomNode(ws, 2);
    defer array.release(w);
    const node = try convRaw(x, w, p, 0);
    defer array.release(node);
    try primitives.Primitive.eval(node.prim, node);
    const g = Geo.init(node, p);
    const want = try testing.allocator.alloc(f32, node.size());
    defer testing.allocator.free(want);
    naive(f32, f32, &g, @ptrCast(@alignCast(x.data())), @ptrCast(@alignCast(w.data())), want.ptr);
    const got: [*]const f32 = @ptrCast(@alignCast(node.data()));
    for (want, 0..) |v, i| try testing.expectApproxEqAbs(v, got[i], 1e-4);
}

test "conv kernel equals the plain loop (strides, padding, dilations, groups, flip)" {
    try checkAgainstNaive(&.{ 2, 9, 3 }, &.{ 4, 3, 3 }, .{ .nsp = 1 });
    try checkAgainstNaive(&.{ 2, 9, 4 }, &.{ 6, 3, 2 }, .{ .nsp = 1, .stride = .{ 2, 1, 1 }, .lo = .{ 2, 0, 0 }, .hi = .{ 1, 0, 0 }, .kdil = .{ 2, 1, 1 }, .idil = .{ 3, 1, 1 }, .groups = 2, .flip = true });
    try checkAgainstNaive(&.{ 1, 7, 6, 3 }, &.{ 5, 3, 2, 3 }, .{ .nsp = 2, .stride = .{ 2, 1, 1 }, .lo = .{ 1, -1, 0 }, .hi = .{ 0, 2, 0 }, .kdil = .{ 1, 2, 1 }, .flip = true });
    try checkAgainstNaive(&.{ 2, 5, 4, 3, 2 }, &.{ 3, 2, 3, 2, 2 }, .{ .nsp = 3, .stride = .{ 1, 2, 1 }, .lo = .{ 1, 1, 1 }, .hi = .{ 1, 0, 1 }, .idil = .{ 1, 1, 2 } });
    try checkAgainstNaive(&.{ 3, 40, 40, 16 }, &.{ 24, 3, 3, 16 }, .{ .nsp = 2, .lo = .{ 1, 1, 0 }, .hi = .{ 1, 1, 0 } });
    try checkAgainstNaive(&.{ 2, 30, 30, 8 }, &.{ 12, 1, 1, 4 }, .{ .nsp = 2, .groups = 2 });
}

/// An evaluated node of dtype dt with random values in [-1, 1). channel_stride > 1: a strided
/// view (the buffer holds channel_stride times the channels; every channel_stride-th is used).
fn randomTyped(dt: Dtype, shape: []const i32, seed: u64, channel_stride: i32) !*Node {
    var full: [max_ndim]i32 = undefined;
    @memcpy(full[0..shape.len], shape);
    full[shape.len - 1] *= channel_stride;
    const n = try array.createWithBuffer(dt, try Shape.fromSlice(full[0..shape.len], "t"), 0, "t");
    var rng = std.Random.DefaultPrng.init(seed);
    for (0..n.size()) |i| {
        const v = rng.random().float(f32) * 2 - 1;
        switch (dt) {
            .float32 => @as([*]f32, @ptrCast(@alignCast(n.data())))[i] = v,
            .float64 => @as([*]f64, @ptrCast(@alignCast(n.data())))[i] = v,
            .float16 => @as([*]dtype_mod.F16, @ptrCast(@alignCast(n.data())))[i] = .{ .bits = half.f32ToF16(v) },
            .bfloat16 => @as([*]dtype_mod.BF16, @ptrCast(@alignCast(n.data())))[i] = .{ .bits = half.f32ToBf16(v) },
            else => unreachable,
        }
    }
    n.shape.dims[shape.len - 1] = shape[shape.len - 1];
    n.strides[shape.len - 1] = channel_stride;
    return n;
}

/// An evaluated node of dtype dt and shape [N, L..., C] with random values, laid out as
/// [C, L..., N] in memory (the batch axis contiguous: the weight gradient's input).
fn randomBatchInner(dt: Dtype, shape: []const i32, seed: u64) !*Node {
    const nd = shape.len;
    var perm: [max_ndim]i32 = undefined;
    perm[0] = shape[nd - 1];
    for (1..nd - 1) |i| perm[i] = shape[i];
    perm[nd - 1] = shape[0];
    const n = try randomTyped(dt, perm[0..nd], seed, 1);
    const st = n.strides;
    @memcpy(n.shape.dims[0..nd], shape);
    n.strides[0] = st[nd - 1];
    for (1..nd - 1) |i| n.strides[i] = st[i];
    n.strides[nd - 1] = st[0];
    return n;
}

/// channel_stride and w_cs (the input's and the weight's channel strides) 0: the batch-inner
/// layout of randomBatchInner (for the weight: [C_in_g, K..., C_out] in memory).
fn checkTyped(comptime T: type, comptime S: type, dt: Dtype, xs: []const i32, ws: []const i32, p: Params, channel_stride: i32, w_cs: i32) !void {
    const x = if (channel_stride == 0) try randomBatchInner(dt, xs, 1) else try randomTyped(dt, xs, 1, channel_stride);
    defer array.release(x);
    const w = if (w_cs == 0) try randomBatchInner(dt, ws, 2) else try randomTyped(dt, ws, 2, w_cs);
    defer array.release(w);
    // The plain loop reads a row-contiguous weight.
    const wc = try testing.allocator.alloc(S, w.size());
    defer testing.allocator.free(wc);
    convert.copyConvert(w, @ptrCast(wc.ptr), dt);
    const node = try convRaw(x, w, p, 0);
    defer array.release(node);
    try primitives.Primitive.eval(node.prim, node);
    const g = Geo.init(node, p);
    const want = try testing.allocator.alloc(S, node.size());
    defer testing.allocator.free(want);
    naive(T, S, &g, @ptrCast(@alignCast(x.data())), wc.ptr, want.ptr);
    const got: [*]const S = @ptrCast(@alignCast(node.data()));
    const depth: f64 = @floatFromInt(g.ktaps * g.cig);
    for (want, 0..) |wv, i| {
        const a: f64 = loadAs(S, f64, wv);
        const b: f64 = loadAs(S, f64, got[i]);
        const tol: f64 = switch (dt) {
            .float32 => 2e-6 * depth * (1 + @abs(a)),
            .float64 => 1e-13 * depth * (1 + @abs(a)),
            .float16 => 2e-3 * (1 + @abs(a)),
            else => 1e-2 * (1 + @abs(a)),
        };
        if (!(@abs(a - b) <= tol)) {
            std.debug.print("conv {s} x={any} w={any} at {d}: {d} vs {d}\n", .{ dt.name(), xs, ws, i, b, a });
            return error.TestExpectedEqual;
        }
    }
}

fn checkAll(xs: []const i32, ws: []const i32, p: Params) !void {
    try checkTyped(f32, f32, .float32, xs, ws, p, 1, 1);
    try checkTyped(f32, f32, .float32, xs, ws, p, 2, 0);
    try checkTyped(f64, f64, .float64, xs, ws, p, 1, 2);
    try checkTyped(f32, dtype_mod.F16, .float16, xs, ws, p, 1, 0);
    try checkTyped(f32, dtype_mod.BF16, .bfloat16, xs, ws, p, 3, 1);
}

test "direct conv kernel edges: partial tiles, KC slices inside a tap, the stem, groups, dtypes, strided views, every CPU level" {
    const saved = cpu.level();
    defer if (cpu.dispatch) cpu.forceLevel(saved);
    for (0..cpu.testLevelCount()) |li| {
        if (cpu.dispatch) cpu.forceLevel(@enumFromInt(li));
        // rows (143) not a multiple of MR, C_out (37) not a multiple of NR
        try checkAll(&.{ 1, 11, 13, 5 }, &.{ 37, 3, 3, 5 }, .{ .nsp = 2, .lo = .{ 1, 1, 0 }, .hi = .{ 1, 1, 0 } });
        // depth 3 * 3 * 60 = 540 and 576: KC slices ending inside a tap and on a tap boundary
        try checkAll(&.{ 2, 9, 10, 60 }, &.{ 40, 3, 3, 60 }, .{ .nsp = 2, .lo = .{ 1, 1, 0 }, .hi = .{ 1, 1, 0 } });
        try checkAll(&.{ 1, 8, 8, 64 }, &.{ 33, 3, 3, 64 }, .{ .nsp = 2, .lo = .{ 1, 1, 0 }, .hi = .{ 1, 1, 0 } });
        // the stem: 3 input channels, 7x7 stride 2 padding 3
        try checkAll(&.{ 2, 30, 29, 3 }, &.{ 16, 7, 7, 3 }, .{ .nsp = 2, .stride = .{ 2, 2, 1 }, .lo = .{ 3, 3, 0 }, .hi = .{ 3, 3, 0 } });
        // groups with padding, dilations and flip; many rows (parallel blocks)
        try checkAll(&.{ 2, 10, 10, 12 }, &.{ 18, 3, 3, 4 }, .{ .nsp = 2, .lo = .{ 2, 1, 0 }, .hi = .{ 0, 1, 0 }, .kdil = .{ 2, 1, 1 }, .groups = 3, .flip = true });
        try checkAll(&.{ 1, 7, 6, 3 }, &.{ 5, 3, 2, 3 }, .{ .nsp = 2, .stride = .{ 2, 1, 1 }, .lo = .{ 1, -1, 0 }, .hi = .{ 0, 2, 0 }, .kdil = .{ 1, 2, 1 }, .idil = .{ 2, 1, 1 }, .flip = true });
        try checkAll(&.{ 2, 5, 4, 3, 2 }, &.{ 3, 2, 3, 2, 2 }, .{ .nsp = 3, .stride = .{ 1, 2, 1 }, .lo = .{ 1, 1, 1 }, .hi = .{ 1, 0, 1 }, .idil = .{ 1, 1, 2 } });
        try checkAll(&.{ 3, 33, 35, 16 }, &.{ 24, 3, 3, 16 }, .{ .nsp = 2, .lo = .{ 1, 1, 0 }, .hi = .{ 1, 1, 0 } });
        try checkAll(&.{ 2, 300, 20 }, &.{ 20, 5, 10 }, .{ .nsp = 1, .lo = .{ 2, 0, 0 }, .hi = .{ 2, 0, 0 }, .groups = 2 });
        // the batch axis contiguous (the weight gradient's input): rows packed batch-inner;
        // 37 batch items (partial panels), padding, strides, groups, KC slices inside a tap
        for ([_]i32{ 0, 1 }) |cs| {
            try checkTyped(f32, f32, .float32, &.{ 37, 9, 8, 6 }, &.{ 10, 3, 3, 3 }, .{ .nsp = 2, .lo = .{ 1, 1, 0 }, .hi = .{ 1, 1, 0 }, .groups = 2 }, cs, cs);
            try checkTyped(f32, f32, .float32, &.{ 20, 7, 40 }, &.{ 33, 20, 40 }, .{ .nsp = 1, .stride = .{ 2, 1, 1 }, .lo = .{ 8, 0, 0 }, .hi = .{ 9, 0, 0 }, .idil = .{ 2, 1, 1 }, .kdil = .{ 1, 1, 1 }, .flip = true }, cs, cs);
            try checkTyped(f64, f64, .float64, &.{ 16, 6, 5, 3 }, &.{ 4, 2, 3, 3 }, .{ .nsp = 2, .lo = .{ 0, 2, 0 }, .hi = .{ 1, 0, 0 }, .kdil = .{ 2, 1, 1 } }, cs, cs);
            try checkTyped(f32, dtype_mod.F16, .float16, &.{ 30, 28, 24 }, &.{ 40, 27, 24 }, .{ .nsp = 1, .lo = .{ 1, 0, 0 }, .hi = .{ 1, 0, 0 }, .groups = 1 }, cs, cs);
            try checkTyped(f32, dtype_mod.BF16, .bfloat16, &.{ 17, 5, 5, 4 }, &.{ 8, 3, 3, 4 }, .{ .nsp = 2, .lo = .{ 1, 1, 0 }, .hi = .{ 1, 1, 0 } }, cs, cs);
        }
        // few input channels, panels of adjacent positions inside the input: multiplied
        // straight from the input rows (row distance stride x channels: 6, 3, 1, 8, 2)
        const before = conv_kernel.direct_tiles.load(.monotonic);
        try checkAll(&.{ 2, 13, 70, 3 }, &.{ 8, 7, 7, 3 }, .{ .nsp = 2, .stride = .{ 2, 2, 1 }, .lo = .{ 3, 3, 0 }, .hi = .{ 3, 3, 0 } });
        try checkAll(&.{ 3, 100, 3 }, &.{ 40, 5, 3 }, .{ .nsp = 1, .lo = .{ 2, 0, 0 }, .hi = .{ 1, 0, 0 } });
        try checkAll(&.{ 1, 6, 40, 1 }, &.{ 33, 3, 4, 1 }, .{ .nsp = 2, .stride = .{ 2, 1, 1 } });
        try checkAll(&.{ 2, 4, 9, 37, 4 }, &.{ 5, 2, 3, 3, 4 }, .{ .nsp = 3, .stride = .{ 1, 1, 2 }, .lo = .{ 0, 1, 1 }, .hi = .{ 0, 1, 1 } });
        try checkAll(&.{ 1, 5, 33, 2 }, &.{ 35, 2, 2, 2 }, .{ .nsp = 2, .lo = .{ 0, 1, 0 }, .hi = .{ 1, 0, 0 } });
        if (!cpu.dispatch) try testing.expect(conv_kernel.direct_tiles.load(.monotonic) > before);
        // a strided 1x1 (not the pointwise path) and the pointwise path itself
        try checkAll(&.{ 2, 12, 12, 8 }, &.{ 12, 1, 1, 8 }, .{ .nsp = 2, .stride = .{ 2, 2, 1 } });
        try checkAll(&.{ 2, 12, 12, 8 }, &.{ 12, 1, 1, 8 }, .{ .nsp = 2 });
    }
}

test "conv_general messages" {
    const x = try randomNode(&.{ 1, 5, 2 }, 1);
    defer array.release(x);
    const w = try randomNode(&.{ 3, 3, 4 }, 2);
    defer array.release(w);
    const one = [_]i32{1};
    const zero = [_]i32{0};
    const spec = Spec{ .stride = &one, .lo = &zero, .hi = &zero, .kdil = &one, .idil = &one, .groups = 1, .flip = false };
    try testing.expectError(error.Failed, convGeneral(x, w, spec, 0));
    try testing.expectEqualStrings("[conv] Expect the input channels in the input and weight array to match but got shapes - input: (1,5,2) and weight: (3,3,4)", errors.messageSlice());
}
