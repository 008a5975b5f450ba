//! Scans and sorting: cumsum, cumprod, cummax, cummin, logcumsumexp (one `scan` primitive with an
//! op enum), sort, argsort, partition, argpartition and topk (one `sort` primitive), and
//! searchsorted. MLX's rules, checked against mlx-cpu 0.32.4:
//!  * scans run in the output dtype (bool cumsum is int32, logcumsumexp of a non-float is
//!    float32; complex64 logcumsumexp uses MLX's complex logaddexp and starts at (-inf, 0));
//!    integers wrap; float16/bfloat16 round to their type after every step, as MLX's CPU
//!    backend does (a float16 cumsum of ones stops at 2048). cummax/cummin propagate NaN (as
//!    the canonical quiet NaN for float32/float64; float16/bfloat16 give +0, MLX's result).
//!  * sort and argsort are stable; NaN sorts last; argsort breaks ties by index. Long rows use a
//!    stable radix sort on order-preserving keys (same bits).
//!  * partition, argpartition and topk use our own quickselect; MLX leaves the order around kth
//!    unspecified, so only the partition property is guaranteed (and tested)
//!    (topk with k equal to the axis length returns the input unchanged, as MLX).
//! Inputs of any strides (broadcast, transposed, negative) are first made row-contiguous
//! (searchsorted reads its sorted sequence through its stride); rows along the axis are
//! independent and run in parallel for large arrays. log, log1p and atan2 come from the C
//! library by glibc's _Float32/_Float64 names, as MLX's std:: calls reach glibc (the plain
//! names resolve to the compiler runtime's versions inside this library).
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const abi_util = @import("../abi_util.zig");
const half = @import("../half.zig");
const copy = @import("copy.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;

/// Scan ops; values are part of the C ABI.
pub const ScanOp = enum(u32) {
    sum = 0,
    prod = 1,
    max = 2,
    min = 3,
    logaddexp = 4,

    pub fn opName(op: ScanOp) []const u8 {
        return switch (op) {
            .sum => "cumsum",
            .prod => "cumprod",
            .max => "cummax",
            .min => "cummin",
            .logaddexp => "logcumsumexp",
        };
    }
};

/// Sort-family ops; values are part of the C ABI.
pub const SortOp = enum(u32) {
    sort = 0,
    argsort = 1,
    partition = 2,
    argpartition = 3,
    topk = 4,
};

pub const Scan = struct {
    op: ScanOp,
    /// The scanned axis of the (possibly flattened) output.
    axis: u8,
    reverse: bool,
    inclusive: bool,
};

pub const SortParams = struct {
    op: SortOp,
    axis: u8,
    /// partition/argpartition: the normalised kth; topk: k.
    kth: i32,
};

pub const Prim = union(enum) {
    scan: Scan,
    sort: SortParams,
    /// searchsorted; true for side='right'.
    searchsorted: bool,

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .scan => |s| s.op.opName(),
            .sort => |s| @tagName(s.op),
            .searchsorted => "searchsorted",
        };
    }
};

// ---------------------------------------------------------------------------------------------
// Graph-building ops

fn axisArg(axis: i32, ndim: usize, op: []const u8) errors.Error!u8 {
    const n: i32 = @intCast(ndim);
    const a = if (axis < 0) axis + n else axis;
    if (a < 0 or a >= n) return errors.fail(.invalid_argument, "[{s}] Axis {d} is out of bounds for array with {d} dimensions.", .{ op, axis, ndim });
    return @intCast(a);
}

fn flatShape(x: *const Node) Shape {
    var s = Shape{ .ndim = 1 };
    s.dims[0] = @intCast(x.size());
    return s;
}

/// A scan along `axis` (null flattens the array first). `dtype` (cumsum, cumprod) converts the
/// input first, as MLX's `dtype=` argument does (the output dtype rules then apply to it).
pub fn scan(op: ScanOp, x_in: *Node, axis: ?i32, reverse: bool, inclusive: bool, dtype: ?Dtype, stream: u32) errors.Error!*Node {
    const name = op.opName();
    const x = if (dtype) |d| try copy.astype(x_in, d, stream) else blk: {
        x_in.retain();
        break :blk x_in;
    };
    defer array.release(x);
    var shape = x.shape;
    var ax: u8 = 0;
    if (axis) |a| {
        ax = try axisArg(a, x.shape.ndim, name);
    } else {
        shape = flatShape(x);
    }
    const out: Dtype = switch (op) {
        .sum => if (x.dtype == .bool_) .int32 else x.dtype,
        .logaddexp => if (x.dtype.isInexact()) x.dtype else .float32,
        else => x.dtype,
    };
    const xc = try copy.astype(x, out, stream);
    defer array.release(xc);
    return array.create(out, shape, .{ .sort = .{ .scan = .{ .op = op, .axis = ax, .reverse = reverse, .inclusive = inclusive } } }, &.{xc}, stream);
}

/// sort, argsort, partition, argpartition (kth) and topk (k) along `axis` (null flattens).
pub fn sortOp(op: SortOp, x: *Node, axis: ?i32, kth: i32, stream: u32) errors.Error!*Node {
    const name = @tagName(op);
    var shape = x.shape;
    var ax: u8 = 0;
    if (axis) |a| {
        ax = try axisArg(a, x.shape.ndim, name);
    } else {
        shape = flatShape(x);
    }
    var k = kth;
    const n = shape.dims[ax];
    var sbuf: [256]u8 = undefined;
    const shown_axis: i32 = axis orelse 0; // MLX names axis 0 of the flattened array
    switch (op) {
        .partition, .argpartition => {
            if (kth >= n or kth < -n) {
                if (op == .partition)
                    return errors.fail(.invalid_argument, "[partition] Received invalid kth {d}along axis {d} for array with shape: {s}", .{ kth, shown_axis, shape.format(&sbuf) });
                return errors.fail(.invalid_argument, "[argpartition] Received invalid kth {d} along axis {d} for array with shape: {s}", .{ kth, shown_axis, shape.format(&sbuf) });
            }
            if (k < 0) k += n;
        },
        .topk => {
            if (kth < 0 or kth > n)
                return errors.fail(.invalid_argument, "[topk] Received invalid k={d} along axis {d} for array with shape: {s}", .{ kth, shown_axis, shape.format(&sbuf) });
            shape.dims[ax] = kth;
        },
        else => k = 0,
    }
    const out: Dtype = switch (op) {
        .argsort, .argpartition => .uint32,
        else => x.dtype,
    };
    return array.create(out, shape, .{ .sort = .{ .sort = .{ .op = op, .axis = ax, .kth = k } } }, &.{x}, stream);
}

/// searchsorted(a, v): for each value in v, the insertion index into the sorted 1-D a.
pub fn searchsorted(a: *Node, v: *Node, right: bool, stream: u32) errors.Error!*Node {
    if (a.shape.ndim != 1)
        return errors.fail(.invalid_argument, "[searchsorted] The sorted sequence must be 1-D but has {d} dimensions.", .{a.shape.ndim});
    const t = dtype_mod.promote(a.dtype, v.dtype);
    const ac = try copy.astype(a, t, stream);
    defer array.release(ac);
    const vc = try copy.astype(v, t, stream);
    defer array.release(vc);
    return array.create(.uint32, v.shape, .{ .sort = .{ .searchsorted = right } }, &.{ ac, vc }, stream);
}

// ---------------------------------------------------------------------------------------------
// Comparisons (MLX's natural orders; float16/bfloat16 compare as floats)

fn isNanT(comptime D: Dtype, x: D.Type()) bool {
    return switch (D) {
        .float16 => (x.bits & 0x7fff) > 0x7c00,
        .bfloat16 => (x.bits & 0x7fff) > 0x7f80,
        .float32, .float64 => std.math.isNan(x),
        .complex64 => std.math.isNan(x.re) or std.math.isNan(x.im),
        else => false,
    };
}

/// a < b in the dtype's natural order (complex: lexicographic, real part first).
inline fn lessRaw(comptime D: Dtype, a: D.Type(), b: D.Type()) bool {
    return switch (D) {
        .bool_ => !a and b,
        .float16, .bfloat16 => convert.cast(D, .float32, a) < convert.cast(D, .float32, b),
        .complex64 => a.re < b.re or (a.re == b.re and a.im < b.im),
        else => a < b,
    };
}

inline fn eqRaw(comptime D: Dtype, a: D.Type(), b: D.Type()) bool {
    return switch (D) {
        .float16, .bfloat16 => convert.cast(D, .float32, a) == convert.cast(D, .float32, b),
        .complex64 => a.re == b.re and a.im == b.im,
        else => a == b,
    };
}

/// MLX's nan_aware_less: NaN is greater than everything (complex included).
inline fn nanLess(comptime D: Dtype, a: D.Type(), b: D.Type()) bool {
    if (comptime D.isInexact()) {
        if (isNanT(D, a)) return false;
        if (isNanT(D, b)) return true;
    }
    return lessRaw(D, a, b);
}

/// The comparator MLX's argsort and argpartition use on indices: NaN last, ties by index.
/// `nan_ties` also orders NaNs among themselves by index (what MLX's stable sort of an iota gives,
/// so an unstable sort can be used); argpartition keeps MLX's exact comparator for nth_element.
fn IdxLess(comptime D: Dtype, comptime nan_ties: bool) type {
    return struct {
        v: [*]const D.Type(),
        stride: usize,
        fn lt(c: @This(), a: u32, b: u32) bool {
            const x = c.v[a * c.stride];
            const y = c.v[b * c.stride];
            if (comptime D.isInexact()) {
                const xn = isNanT(D, x);
                const yn = isNanT(D, y);
                // NaNs are equivalent to each other (a stable sort keeps their order) and last.
                if (xn) return nan_ties and yn and a < b;
                if (yn) return true;
            }
            return lessRaw(D, x, y) or (eqRaw(D, x, y) and a < b);
        }
    };
}

fn ValLess(comptime D: Dtype) type {
    return struct {
        fn lt(_: @This(), a: D.Type(), b: D.Type()) bool {
            return nanLess(D, a, b);
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Selection: our own quickselect (median-of-three pivot, Lomuto partition) with a depth budget
// that falls back to a full sort of the remaining range, so the worst case stays O(n log n).
// MLX leaves the order around kth unspecified; tests check the partition property.

fn NthElement(comptime E: type, comptime Ctx: type) type {
    return struct {
        const lt = Ctx.lt;

        fn swap(s: []E, i: usize, j: usize) void {
            const t = s[i];
            s[i] = s[j];
            s[j] = t;
        }

        /// Reorder `s` so s[nth] is the element a full sort would put there, nothing after it
        /// is less and nothing before it is greater.
        pub fn run(c: Ctx, s: []E, nth: usize) void {
            if (s.len == 0 or nth >= s.len) return;
            var lo: usize = 0;
            var hi: usize = s.len;
            var budget: usize = 2 * (std.math.log2_int(usize, s.len) + 1);
            while (hi - lo > 16) {
                if (budget == 0) break;
                budget -= 1;
                const p = partitionRange(c, s, lo, hi);
                if (p == nth) return;
                if (nth < p) hi = p else lo = p + 1;
            }
            std.sort.pdq(E, s[lo..hi], c, lessThan);
        }

        fn lessThan(c: Ctx, a: E, b: E) bool {
            return lt(c, a, b);
        }

        /// Partition [lo, hi) around the median of its first, middle and last elements; returns
        /// the pivot's final index (everything before it is less, nothing after it is less).
        fn partitionRange(c: Ctx, s: []E, lo: usize, hi: usize) usize {
            const mid = lo + (hi - lo) / 2;
            const last = hi - 1;
            // Order s[lo], s[mid], s[last]; the median ends at `last` as the pivot.
            if (lt(c, s[mid], s[lo])) swap(s, mid, lo);
            if (lt(c, s[last], s[lo])) swap(s, last, lo);
            if (lt(c, s[mid], s[last])) swap(s, mid, last);
            const pivot = s[last];
            var store = lo;
            for (lo..last) |i| {
                if (lt(c, s[i], pivot)) {
                    swap(s, i, store);
                    store += 1;
                }
            }
            swap(s, store, last);
            return store;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Radix sort: long rows (`useRadix`) are sorted by an unsigned key that orders as
// the comparators above (NaN greater than everything and NaNs equal to each other, -0 equal to
// +0, complex lexicographic), with a stable least-significant-digit radix sort (8-bit digits).
// Being stable, it gives the bits a stable comparison sort gives: sort keeps equal values (and
// NaN payloads) in input order, argsort breaks ties by index.

/// The row lengths from which the radix sort is used (measured: below, the comparison sorts are
/// as fast; argsort's comparisons go through an index, so its crossover is lower).
const radix_min_sort = 1024;
const radix_min_argsort = 256;

fn useRadix(op: SortOp, n: usize) bool {
    return switch (op) {
        .sort => n >= radix_min_sort,
        .argsort => n >= radix_min_argsort,
        else => false,
    };
}

fn RadixKey(comptime D: Dtype) type {
    return switch (D) {
        .bool_, .uint8, .int8 => u8,
        .uint16, .int16, .float16, .bfloat16 => u16,
        .uint32, .int32, .float32 => u32,
        .uint64, .int64, .float64, .complex64 => u64,
    };
}

/// Flip an IEEE float's bits so unsigned order is numeric order; -0 maps to +0, NaN to the top.
inline fn floatKey(comptime K: type, bits: K, nan: bool) K {
    const sign = @as(K, 1) << (@bitSizeOf(K) - 1);
    if (nan) return ~@as(K, 0);
    if (bits & ~sign == 0) return sign;
    return if (bits & sign != 0) ~bits else bits | sign;
}

inline fn radixKey(comptime D: Dtype, x: D.Type()) RadixKey(D) {
    const K = RadixKey(D);
    return switch (D) {
        .bool_ => @intFromBool(x),
        .uint8, .uint16, .uint32, .uint64 => x,
        .int8, .int16, .int32, .int64 => @as(K, @bitCast(x)) ^ (@as(K, 1) << (@bitSizeOf(K) - 1)),
        .float16, .bfloat16 => floatKey(u16, x.bits, isNanT(D, x)),
        .float32 => floatKey(u32, @bitCast(x), std.math.isNan(x)),
        .float64 => floatKey(u64, @bitCast(x), std.math.isNan(x)),
        // Never all ones unless NaN: the largest finite key of a part is +inf's, 0xff800000.
        .complex64 => if (isNanT(D, x)) ~@as(u64, 0) else (@as(u64, floatKey(u32, @bitCast(x.re), false)) << 32) | floatKey(u32, @bitCast(x.im), false),
    };
}

/// An argsort element: the key of the value and its index.
fn KeyIdx(comptime K: type) type {
    return struct { key: K, idx: u32 };
}

/// Stable LSD radix sort of `a` by `keyOf(e)` (`tmp` as long as `a`): 11-bit digits for keys of
/// 32 and 64 bits (3 and 6 passes), 8-bit ones below. Digits that every element shares are
/// skipped. The sorted elements end in `a`.
fn radixSort(comptime E: type, comptime K: type, a: []E, tmp: []E, comptime keyOf: fn (E) K) void {
    const bits = if (@bitSizeOf(K) <= 16) 8 else 11;
    const buckets = 1 << bits;
    const passes = (@bitSizeOf(K) + bits - 1) / bits;
    const n = a.len;
    var counts: [passes][buckets]u32 = @splat(@splat(0));
    for (a) |e| {
        const k = keyOf(e);
        inline for (0..passes) |p| counts[p][@intCast((k >> (bits * p)) & (buckets - 1))] += 1;
    }
    var src = a;
    var dst = tmp;
    inline for (0..passes) |p| {
        const c = &counts[p];
        if (c[@intCast((keyOf(src[0]) >> (bits * p)) & (buckets - 1))] != n) {
            var offs: [buckets]u32 = undefined;
            var sum: u32 = 0;
            for (0..buckets) |d| {
                offs[d] = sum;
                sum += c[d];
            }
            for (src) |e| {
                const d: usize = @intCast((keyOf(e) >> (bits * p)) & (buckets - 1));
                dst[offs[d]] = e;
                offs[d] += 1;
            }
            const t = src;
            src = dst;
            dst = t;
        }
    }
    if (src.ptr != a.ptr) @memcpy(a, src);
}

/// Scratch bytes per chunk of rows of `n` elements: two value rows and two index rows for the
/// comparison paths, or the radix sort's two buffers (values, or key/index pairs).
fn scratchPerChunk(comptime D: Dtype, op: SortOp, n: usize) usize {
    const T = D.Type();
    const radix = useRadix(op, n);
    const compare = std.mem.alignForward(usize, n * 4, 16) + n * @sizeOf(T);
    const bytes = switch (op) {
        .sort => if (radix) 2 * n * @sizeOf(T) else compare,
        .argsort => if (radix) 2 * n * @sizeOf(KeyIdx(RadixKey(D))) else compare,
        else => compare,
    };
    return std.mem.alignForward(usize, bytes, 64);
}

// ---------------------------------------------------------------------------------------------
// Kernels

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    switch (p) {
        .scan => |s| try evalScan(node, s),
        .sort => |s| try evalSort(node, s),
        .searchsorted => |r| try evalSearch(node, r),
    }
}

/// The input as row-contiguous data: its own buffer when it already is, else a copy (returned
/// in `tmp` for the caller to release).
fn contiguousData(x: *Node, tmp: *?*array.Buffer, op: []const u8) errors.Error![*]u8 {
    if (x.isRowContiguous()) return x.data();
    const buf = try array.newBuffer(x.nbytes(), op);
    convert.copyConvert(x, buf.ptr, x.dtype);
    tmp.* = buf;
    return buf.ptr;
}

/// The rows along `axis` of a row-contiguous array: `outer * inner` rows of `n` elements, element j
/// of row (o, i) at o * n * inner + j * inner + i.
const Rows = struct {
    outer: usize,
    n: usize,
    inner: usize,

    fn of(shape: *const Shape, axis: usize) Rows {
        var r = Rows{ .outer = 1, .n = @intCast(shape.dims[axis]), .inner = 1 };
        for (0..axis) |i| r.outer *= @intCast(shape.dims[i]);
        for (axis + 1..shape.ndim) |i| r.inner *= @intCast(shape.dims[i]);
        return r;
    }

    fn count(r: Rows) usize {
        return r.outer * r.inner;
    }

    /// Element offset of the first element of row `k`, for a row length of `len`.
    fn base(r: Rows, k: usize, len: usize) usize {
        const o = k / r.inner;
        const i = k % r.inner;
        return o * len * r.inner + i;
    }
};

/// Work per parallel chunk, in elements.
const grain = 1 << 14;

/// Run `func(ctx, chunk, row_start, row_end)` over `rows` rows of `row_len` elements each, split
/// into at most pool.threads() chunks (inline when small).
fn forRows(rows: usize, row_len: usize, ctx: anytype, comptime func: fn (@TypeOf(ctx), usize, usize, usize) void) void {
    const rows_per_grain = @max(1, grain / @max(row_len, 1));
    const chunks = @max(1, @min(pool.threads(), rows / rows_per_grain));
    const per = (rows + chunks - 1) / @max(chunks, 1);
    const Job = struct { ctx: @TypeOf(ctx), per: usize, rows: usize };
    pool.parallelFor(chunks, 1, Job{ .ctx = ctx, .per = per, .rows = rows }, struct {
        fn f(j: Job, s: usize, e: usize) void {
            for (s..e) |c| {
                const start = c * j.per;
                if (start >= j.rows) continue;
                func(j.ctx, c, start, @min(start + j.per, j.rows));
            }
        }
    }.f);
}

fn chunkCount(rows: usize, row_len: usize) usize {
    const rows_per_grain = @max(1, grain / @max(row_len, 1));
    return @max(1, @min(pool.threads(), rows / rows_per_grain));
}

// --- scans ---

fn evalScan(node: *Node, s: Scan) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    if (node.size() == 0) return;
    var tmp: ?*array.Buffer = null;
    defer if (tmp) |b| b.release();
    const in = try contiguousData(x, &tmp, s.op.opName());
    const rows = Rows.of(&node.shape, s.axis);
    switch (s.op) {
        inline else => |op| switch (node.dtype) {
            inline else => |D| scanTyped(op, D, node, in, rows, s),
        },
    }
}

fn scanValid(comptime op: ScanOp, comptime D: Dtype) bool {
    return switch (op) {
        .sum => D != .bool_,
        .logaddexp => D.isInexact(),
        else => true,
    };
}

fn scanInit(comptime op: ScanOp, comptime D: Dtype) D.Type() {
    const T = D.Type();
    return switch (op) {
        .sum => convert.cast(.int32, D, 0),
        .prod => convert.cast(.int32, D, 1),
        .max, .logaddexp => switch (D) {
            .bool_ => false,
            // MLX's exclusive logcumsumexp of complex64 starts at (-inf, 0); cummax at (-inf, -inf).
            .complex64 => .{ .re = -std.math.inf(f32), .im = if (op == .logaddexp) 0 else -std.math.inf(f32) },
            .float16, .bfloat16, .float32, .float64 => convert.cast(.float32, D, -std.math.inf(f32)),
            else => std.math.minInt(T),
        },
        .min => switch (D) {
            .bool_ => true,
            .complex64 => .{ .re = std.math.inf(f32), .im = std.math.inf(f32) },
            .float16, .bfloat16, .float32, .float64 => convert.cast(.float32, D, std.math.inf(f32)),
            else => std.math.maxInt(T),
        },
    };
}

const sm = @import("scalar_math.zig");
/// The float32 exp MLX's CPU backend uses, shared with the elementwise family.
const fastExp = sm.mlxExp;

fn logaddexpT(comptime T: type, a: T, b: T) T {
    const hi = if (a > b) a else b;
    const lo = if (a > b) b else a;
    if (lo == -std.math.inf(T) or hi == std.math.inf(T)) return hi;
    const e = if (T == f32) fastExp(lo - hi) else @exp(lo - hi);
    // The C library's log1p (glibc's log1pf/log1p), as MLX's std::log1p.
    return hi + sm.c1("log1p", T, e);
}

/// MLX's complex logaddexp: max + log1p(exp(min - max)) with its complex maximum/minimum
/// (lexicographic, a NaN first operand wins), and the maximum itself when the minimum is
/// (-inf, 0) or the maximum (inf, 0).
fn complexLogaddexp(a: dtype_mod.Complex64, b: dtype_mod.Complex64) dtype_mod.Complex64 {
    const x = sm.toC(a);
    const y = sm.toC(b);
    const hi = if (sm.cisnan(x) or x.re > y.re or (x.re == y.re and x.im > y.im)) x else y;
    const lo = if (sm.cisnan(x) or x.re < y.re or (x.re == y.re and x.im < y.im)) x else y;
    const inf = std.math.inf(f32);
    const r = if ((lo.re == -inf and lo.im == 0) or (hi.re == inf and hi.im == 0)) hi else hi.add(clog1p(sm.cfn("cexpf", lo.sub(hi))));
    return .{ .re = r.re, .im = r.im };
}

/// The C library's float functions MLX calls, looked up in the system's libm at run time (inside
/// this library the plain `logf` resolves to the compiler runtime's, whose last bit can differ).
const glibc = @import("../libm.zig");

/// MLX's complex log1p (its CPU SIMD fallback): for |z| < 0.5, 0.5 * log1p(x (2 + x) + y^2),
/// else log(hypot(x + 1, y)); the angle atan2(y, x + 1).
fn clog1p(z: sm.C) sm.C {
    const x = z.re;
    const y = z.im;
    const theta = glibc.atan2f32(y, x + 1);
    if (sm.cabs(z) < 0.5) {
        const r = x * (2 + x) + y * y;
        if (r == 0) return sm.C.init(x, theta);
        return sm.C.init(0.5 * glibc.log1pf32(r), theta);
    }
    return sm.C.init(glibc.logf32(glibc.hypotf32(x + 1, y)), theta);
}

fn round16(comptime D: Dtype, v: f32) f32 {
    return convert.cast(D, .float32, convert.cast(.float32, D, v));
}

/// One scan step: op(accumulated, x), as MLX's CPU backend computes it in dtype D.
inline fn scanStep(comptime op: ScanOp, comptime D: Dtype, acc: D.Type(), x: D.Type()) D.Type() {
    switch (D) {
        .bool_ => return switch (op) {
            .prod, .min => acc and x,
            .max => acc or x,
            else => unreachable,
        },
        .float16, .bfloat16 => {
            const a = convert.cast(D, .float32, acc);
            const b = convert.cast(D, .float32, x);
            // A NaN operand comes through with its bits, the running value's first (MLX's result;
            // left to the compiler, which NaN an add returns is not fixed).
            if (op == .sum or op == .prod) {
                if (std.math.isNan(a)) return acc;
                if (std.math.isNan(b)) return x;
            }
            return switch (op) {
                .sum => convert.cast(.float32, D, a + b),
                .prod => convert.cast(.float32, D, a * b),
                // MLX's maximum/minimum on these types give their numeric_limits NaN, which
                // is 0 for the 16-bit float structs.
                .max => if (std.math.isNan(a) or std.math.isNan(b)) convert.cast(.float32, D, 0) else if (b < a) acc else x,
                .min => if (std.math.isNan(a) or std.math.isNan(b)) convert.cast(.float32, D, 0) else if (b < a) x else acc,
                .logaddexp => blk: {
                    // NaN propagates with its bits; otherwise every step rounds to D, as MLX's
                    // scalar Simd<float16_t, 1> ops do.
                    if (std.math.isNan(a)) break :blk acc;
                    if (std.math.isNan(b)) break :blk x;
                    const hi = if (a > b) a else b;
                    const lo = if (a > b) b else a;
                    if (lo == -std.math.inf(f32) or hi == std.math.inf(f32)) break :blk convert.cast(.float32, D, hi);
                    const d = round16(D, lo - hi);
                    const e = round16(D, @exp(d));
                    const l = round16(D, std.math.log1p(e));
                    break :blk convert.cast(.float32, D, hi + l);
                },
            };
        },
        .float32, .float64 => {
            const T = D.Type();
            if (op == .sum or op == .prod) {
                // x86's rule, made explicit: the first NaN operand, quieted.
                const Bits = std.meta.Int(.unsigned, @bitSizeOf(T));
                const quiet: Bits = @as(Bits, 1) << (std.math.floatMantissaBits(T) - 1);
                if (std.math.isNan(acc)) return @bitCast(@as(Bits, @bitCast(acc)) | quiet);
                if (std.math.isNan(x)) return @bitCast(@as(Bits, @bitCast(x)) | quiet);
            }
            return switch (op) {
                .sum => acc + x,
                .prod => acc * x,
                .max => if (std.math.isNan(acc) or std.math.isNan(x)) std.math.nan(T) else if (x < acc) acc else x,
                .min => if (std.math.isNan(acc) or std.math.isNan(x)) std.math.nan(T) else if (x < acc) x else acc,
                .logaddexp => if (std.math.isNan(acc) or std.math.isNan(x)) std.math.nan(T) else logaddexpT(T, acc, x),
            };
        },
        .complex64 => return switch (op) {
            .sum => .{ .re = acc.re + x.re, .im = acc.im + x.im },
            .prod => .{ .re = acc.re * x.re - acc.im * x.im, .im = acc.re * x.im + acc.im * x.re },
            .max => if (lessRaw(D, x, acc)) acc else x,
            .min => if (lessRaw(D, x, acc)) x else acc,
            .logaddexp => complexLogaddexp(acc, x),
        },
        else => return switch (op) {
            .sum => acc +% x,
            .prod => acc *% x,
            .max => if (x < acc) acc else x,
            .min => if (x < acc) x else acc,
            .logaddexp => unreachable,
        },
    }
}

fn scanTyped(comptime op: ScanOp, comptime D: Dtype, node: *Node, in_raw: [*]u8, rows: Rows, s: Scan) void {
    if (comptime !scanValid(op, D)) unreachable;
    const T = D.Type();
    const Ctx = struct {
        in: [*]const T,
        out: [*]T,
        rows: Rows,
        reverse: bool,
        inclusive: bool,
        fn run(c: @This(), _: usize, start: usize, end: usize) void {
            // Rows that share an outer index are neighbours in memory: scan them together, one
            // step along the axis at a time, so the inner loop runs over contiguous elements.
            const inner = c.rows.inner;
            var k = start;
            while (k < end) {
                const first = k % inner;
                const cnt = @min(end - k, inner - first);
                const b = c.rows.base(k, c.rows.n);
                c.group(c.in + b, c.out + b, cnt);
                k += cnt;
            }
        }
        /// Scan `cnt` adjacent rows (element j of row r at j * inner + r), reading the running
        /// value back from the output as MLX does.
        inline fn group(c: @This(), x: [*]const T, o: [*]T, cnt: usize) void {
            const n = c.rows.n;
            const st = c.rows.inner;
            const init = scanInit(op, D);
            if (cnt == 1) {
                // One row: keep the running value in a register.
                if (!c.reverse) {
                    var acc = if (c.inclusive) x[0] else init;
                    o[0] = acc;
                    const shift: usize = if (c.inclusive) 0 else 1;
                    for (1..n) |j| {
                        acc = scanStep(op, D, acc, x[(j - shift) * st]);
                        o[j * st] = acc;
                    }
                } else {
                    var acc = if (c.inclusive) x[(n - 1) * st] else init;
                    o[(n - 1) * st] = acc;
                    const shift: usize = if (c.inclusive) 0 else 1;
                    var j = n - 1;
                    while (j > 0) {
                        j -= 1;
                        acc = scanStep(op, D, acc, x[(j + shift) * st]);
                        o[j * st] = acc;
                    }
                }
                return;
            }
            if (!c.reverse) {
                if (c.inclusive) {
                    for (0..cnt) |r| o[r] = x[r];
                } else {
                    for (0..cnt) |r| o[r] = init;
                }
                const shift: usize = if (c.inclusive) 0 else st;
                for (1..n) |j| {
                    const prev = o + (j - 1) * st;
                    const cur = o + j * st;
                    const in = x + j * st - shift;
                    for (0..cnt) |r| cur[r] = scanStep(op, D, prev[r], in[r]);
                }
            } else {
                const last = (n - 1) * st;
                if (c.inclusive) {
                    for (0..cnt) |r| o[last + r] = x[last + r];
                } else {
                    for (0..cnt) |r| o[last + r] = init;
                }
                const shift: usize = if (c.inclusive) 0 else st;
                var j = n - 1;
                while (j > 0) {
                    j -= 1;
                    const prev = o + (j + 1) * st;
                    const cur = o + j * st;
                    const in = x + j * st + shift;
                    for (0..cnt) |r| cur[r] = scanStep(op, D, prev[r], in[r]);
                }
            }
        }
    };
    const ctx = Ctx{ .in = @ptrCast(@alignCast(in_raw)), .out = @ptrCast(@alignCast(node.data())), .rows = rows, .reverse = s.reverse, .inclusive = s.inclusive };
    forRows(rows.count(), rows.n, ctx, Ctx.run);
}

// --- sorts ---

fn evalSort(node: *Node, s: SortParams) errors.Error!void {
    const x = node.inputs[0];
    try primitives.allocOutput(node, null);
    if (node.size() == 0) return;
    var tmp: ?*array.Buffer = null;
    defer if (tmp) |b| b.release();
    const in = try contiguousData(x, &tmp, @tagName(s.op));
    // Input rows: a flattened op (rank-1 output) reads the input as one row-major vector.
    var in_shape = x.shape;
    if (node.shape.ndim == 1) {
        in_shape = Shape{ .ndim = 1 };
        in_shape.dims[0] = @intCast(x.size());
    }
    const rows = Rows.of(&in_shape, s.axis);
    if (rows.n == 0) return;
    const out_n: usize = @intCast(node.shape.dims[s.axis]);
    const chunks = chunkCount(rows.count(), rows.n);
    switch (x.dtype) {
        inline else => |D| {
            const per = scratchPerChunk(D, s.op, rows.n);
            const scratch = try array.newBuffer(chunks * per + 64, @tagName(s.op));
            defer scratch.release();
            sortTyped(D, node, in, rows, out_n, s, scratch.ptr, per);
        },
    }
}

fn sortTyped(comptime D: Dtype, node: *Node, in_raw: [*]u8, rows: Rows, out_n: usize, s: SortParams, scratch: [*]u8, per_chunk: usize) void {
    const T = D.Type();
    const K = RadixKey(D);
    const P = KeyIdx(K);
    const Ctx = struct {
        in: [*]const T,
        out: [*]u8,
        rows: Rows,
        out_n: usize,
        p: SortParams,
        scratch: [*]u8,
        per_chunk: usize,
        fn valKey(v: T) K {
            return radixKey(D, v);
        }
        fn pairKey(e: P) K {
            return e.key;
        }
        fn run(c: @This(), chunk: usize, start: usize, end: usize) void {
            const n = c.rows.n;
            const st = c.rows.inner;
            const mine = c.scratch + chunk * c.per_chunk;
            // Comparison paths: a row of indices, then a row of values.
            const idx: []u32 = @as([*]u32, @ptrCast(@alignCast(mine)))[0..n];
            const vals: []T = @as([*]T, @ptrCast(@alignCast(mine + std.mem.alignForward(usize, n * 4, 16))))[0..n];
            // Radix paths: two rows of values, or two rows of key/index pairs.
            const rvals: []T = @as([*]T, @ptrCast(@alignCast(mine)))[0..n];
            const rvals2: []T = @as([*]T, @ptrCast(@alignCast(mine)))[n .. 2 * n];
            const pairs: []P = @as([*]P, @ptrCast(@alignCast(mine)))[0..n];
            const pairs2: []P = @as([*]P, @ptrCast(@alignCast(mine)))[n .. 2 * n];
            const radix = useRadix(c.p.op, n);
            const ov: [*]T = @ptrCast(@alignCast(c.out));
            const oi: [*]u32 = @ptrCast(@alignCast(c.out));
            for (start..end) |k| {
                const b = c.rows.base(k, n);
                const ob = c.rows.base(k, c.out_n);
                const x = c.in + b;
                switch (c.p.op) {
                    .sort => {
                        const v = if (radix) rvals else vals;
                        for (0..n) |j| v[j] = x[j * st];
                        if (radix)
                            radixSort(T, K, rvals, rvals2, valKey)
                        else
                            std.sort.block(T, vals, ValLess(D){}, ValLess(D).lt);
                        for (0..n) |j| ov[ob + j * st] = v[j];
                    },
                    .argsort => {
                        if (radix) {
                            for (0..n) |j| pairs[j] = .{ .key = radixKey(D, x[j * st]), .idx = @intCast(j) };
                            radixSort(P, K, pairs, pairs2, pairKey);
                            for (0..n) |j| oi[ob + j * st] = pairs[j].idx;
                            continue;
                        }
                        for (0..n) |j| vals[j] = x[j * st];
                        for (0..n) |j| idx[j] = @intCast(j);
                        std.sort.pdq(u32, idx, IdxLess(D, true){ .v = vals.ptr, .stride = 1 }, IdxLess(D, true).lt);
                        for (0..n) |j| oi[ob + j * st] = idx[j];
                    },
                    .partition, .topk => {
                        for (0..n) |j| vals[j] = x[j * st];
                        if (c.p.op == .topk and c.out_n == n) {
                            // MLX's topk returns the array itself when k is the whole axis.
                            for (0..n) |j| ov[ob + j * st] = vals[j];
                            continue;
                        }
                        const kth: usize = if (c.p.op == .topk) n - @as(usize, @intCast(c.p.kth)) else @intCast(c.p.kth);
                        NthElement(T, ValLess(D)).run(ValLess(D){}, vals, kth);
                        const from = n - c.out_n; // topk keeps the last k; partition all
                        for (0..c.out_n) |j| ov[ob + j * st] = vals[from + j];
                    },
                    .argpartition => {
                        for (0..n) |j| vals[j] = x[j * st];
                        for (0..n) |j| idx[j] = @intCast(j);
                        NthElement(u32, IdxLess(D, false)).run(IdxLess(D, false){ .v = vals.ptr, .stride = 1 }, idx, @intCast(c.p.kth));
                        for (0..n) |j| oi[ob + j * st] = idx[j];
                    },
                }
            }
        }
    };
    const ctx = Ctx{
        .in = @ptrCast(@alignCast(in_raw)),
        .out = node.data(),
        .rows = rows,
        .out_n = out_n,
        .p = s,
        .scratch = scratch,
        .per_chunk = per_chunk,
    };
    forRows(rows.count(), rows.n, ctx, Ctx.run);
}

// --- searchsorted ---

fn evalSearch(node: *Node, right: bool) errors.Error!void {
    const a = node.inputs[0];
    const v = node.inputs[1];
    try primitives.allocOutput(node, null);
    if (node.size() == 0) return;
    var tmp: ?*array.Buffer = null;
    defer if (tmp) |b| b.release();
    const vd = try contiguousData(v, &tmp, "searchsorted");
    switch (a.dtype) {
        inline else => |D| {
            const T = D.Type();
            const Ctx = struct {
                a: [*]const T,
                a_stride: i64,
                n: u32,
                v: [*]const T,
                out: [*]u32,
                right: bool,
                fn run(c: @This(), start: usize, end: usize) void {
                    for (start..end) |i| {
                        const x = c.v[i];
                        var lo: u32 = 0;
                        var hi: u32 = c.n;
                        while (lo < hi) {
                            const mid = lo + (hi - lo) / 2;
                            const m = convert.at(T, c.a, @as(i64, mid) * c.a_stride).*;
                            const below = if (c.right) !nanLess(D, x, m) else nanLess(D, m, x);
                            if (below) lo = mid + 1 else hi = mid;
                        }
                        c.out[i] = lo;
                    }
                }
            };
            const ctx = Ctx{
                .a = @ptrCast(@alignCast(a.data())),
                .a_stride = a.strides[0],
                .n = @intCast(a.size()),
                .v = @ptrCast(@alignCast(vd)),
                .out = @ptrCast(@alignCast(node.data())),
                .right = right,
            };
            pool.parallelFor(node.size(), grain, ctx, Ctx.run);
        },
    }
}

// ---------------------------------------------------------------------------------------------
// C ABI

const opArg = abi_util.opArg;

fn scanAbi(op: u32, a: u32, axis: i32, has_axis: u32, reverse: u32, inclusive: u32, dtype: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const o = opArg(ScanOp, op, "scan") catch |e| break :blk e;
        const x = handles.get(a, o.opName()) catch |e| break :blk e;
        const d: ?Dtype = if (dtype < 0) null else abi_util.dtypeArg(@intCast(dtype), o.opName()) catch |e| break :blk e;
        const stream = stream_mod.resolve(s, o.opName()) catch |e| break :blk e;
        break :blk scan(o, x, if (has_axis != 0) axis else null, reverse != 0, inclusive != 0, d, stream);
    });
}

fn sortAbi(op: u32, a: u32, axis: i32, has_axis: u32, kth: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const o = opArg(SortOp, op, "sort") catch |e| break :blk e;
        const x = handles.get(a, @tagName(o)) catch |e| break :blk e;
        const stream = stream_mod.resolve(s, @tagName(o)) catch |e| break :blk e;
        break :blk sortOp(o, x, if (has_axis != 0) axis else null, kth, stream);
    });
}

fn searchsortedAbi(a: u32, v: u32, right: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const x = handles.get(a, "searchsorted") catch |e| break :blk e;
        const y = handles.get(v, "searchsorted") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "searchsorted") catch |e| break :blk e;
        break :blk searchsorted(x, y, right != 0, stream);
    });
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("scan", scanAbi, &.{ "op", "a", "axis", "has_axis", "reverse", "inclusive", "dtype", "stream" }, "A cumulative op (enum mlxb_scan_op) of a along axis (has_axis 0: over the flattened array); dtype >= 0 converts a first."),
    abi_util.entry("sort", sortAbi, &.{ "op", "a", "axis", "has_axis", "kth", "stream" }, "sort, argsort, partition, argpartition (kth) or topk (kth = k) of a along axis (enum mlxb_sort_op; has_axis 0 flattens)."),
    abi_util.entry("searchsorted", searchsortedAbi, &.{ "a", "v", "right", "stream" }, "Insertion indices (uint32) of v into the sorted 1-D a (right: side='right')."),
};

pub const abi_enums = .{
    .{ "scan_op", ScanOp },
    .{ "sort_op", SortOp },
};

// ---------------------------------------------------------------------------------------------
// Tests

test "nth_element matches a plain sort at kth and partitions around it" {
    var prng = std.Random.DefaultPrng.init(7);
    const r = prng.random();
    var buf: [300]i32 = undefined;
    var sorted: [300]i32 = undefined;
    for (0..200) |iter| {
        const n = 1 + r.uintLessThan(usize, 300);
        for (0..n) |i| buf[i] = r.intRangeAtMost(i32, -20, 20 + @as(i32, @intCast(iter)));
        @memcpy(sorted[0..n], buf[0..n]);
        std.mem.sort(i32, sorted[0..n], {}, std.sort.asc(i32));
        const kth = r.uintLessThan(usize, n);
        NthElement(i32, ValLess(.int32)).run(.{}, buf[0..n], kth);
        try std.testing.expectEqual(sorted[kth], buf[kth]);
        for (0..kth) |i| try std.testing.expect(buf[i] <= buf[kth]);
        for (kth + 1..n) |i| try std.testing.expect(buf[i] >= buf[kth]);
    }
}

test "selection with many equal elements and sorted inputs" {
    var buf: [1000]i32 = undefined;
    for (0..buf.len) |i| buf[i] = @intCast(i % 3);
    NthElement(i32, ValLess(.int32)).run(.{}, buf[0..], 500);
    try std.testing.expectEqual(@as(i32, 1), buf[500]);
    for (0..500) |i| try std.testing.expect(buf[i] <= 1);
    for (0..buf.len) |i| buf[i] = @intCast(buf.len - i);
    NthElement(i32, ValLess(.int32)).run(.{}, buf[0..], 10);
    try std.testing.expectEqual(@as(i32, 11), buf[10]);
}

test "radix sort gives the comparison sorts' bits: NaNs, signed zeros, ties, every dtype" {
    var prng = std.Random.DefaultPrng.init(11);
    const r = prng.random();
    const a = std.testing.allocator;
    inline for ([_]Dtype{ .bool_, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64, .float16, .float32, .float64, .bfloat16, .complex64 }) |D| {
        const T = D.Type();
        const K = RadixKey(D);
        const P = KeyIdx(K);
        // A small pool, so values repeat (ties); floats get the special values too.
        var pool_vals: [24]T = undefined;
        for (&pool_vals) |*v| {
            if (D == .bool_) v.* = r.boolean() else r.bytes(std.mem.asBytes(v));
        }
        if (comptime D.isInexact()) {
            const specials = [_]f32{ 0.0, -0.0, std.math.inf(f32), -std.math.inf(f32), std.math.nan(f32), @bitCast(@as(u32, 0xffc00001)), 1.5, -1.5 };
            for (specials, 0..) |f, i| pool_vals[i] = convert.cast(.float32, D, f);
        }
        for ([_]usize{ 1, 2, 256, 300, 1000, 4099 }) |n| {
            const vals = try a.alloc(T, n);
            defer a.free(vals);
            for (vals) |*v| v.* = pool_vals[r.uintLessThan(usize, pool_vals.len)];
            // sort
            const want = try a.dupe(T, vals);
            defer a.free(want);
            std.sort.block(T, want, ValLess(D){}, ValLess(D).lt);
            const got = try a.dupe(T, vals);
            defer a.free(got);
            const tmp = try a.alloc(T, n);
            defer a.free(tmp);
            const key = struct {
                fn f(v: T) K {
                    return radixKey(D, v);
                }
            }.f;
            radixSort(T, K, got, tmp, key);
            try std.testing.expectEqualSlices(u8, std.mem.sliceAsBytes(want), std.mem.sliceAsBytes(got));
            // argsort
            const idx = try a.alloc(u32, n);
            defer a.free(idx);
            for (idx, 0..) |*x, j| x.* = @intCast(j);
            std.sort.pdq(u32, idx, IdxLess(D, true){ .v = vals.ptr, .stride = 1 }, IdxLess(D, true).lt);
            const pairs = try a.alloc(P, 2 * n);
            defer a.free(pairs);
            for (0..n) |j| pairs[j] = .{ .key = radixKey(D, vals[j]), .idx = @intCast(j) };
            radixSort(P, K, pairs[0..n], pairs[n..], struct {
                fn f(e: P) K {
                    return e.key;
                }
            }.f);
            for (0..n) |j| try std.testing.expectEqual(idx[j], pairs[j].idx);
        }
    }
}

test "fastExp follows exp closely" {
    var x: f32 = -20;
    while (x < 20) : (x += 0.37) {
        const want = @exp(@as(f64, x));
        try std.testing.expectApproxEqRel(want, @as(f64, fastExp(x)), 1e-6);
    }
}

test "NaN sorts last; float16 NaN in cummax gives +0" {
    try std.testing.expect(nanLess(.float32, 1, std.math.nan(f32)));
    try std.testing.expect(!nanLess(.float32, std.math.nan(f32), 1));
    const h1: dtype_mod.F16 = .{ .bits = half.f32ToF16(1) };
    const hn: dtype_mod.F16 = .{ .bits = 0x7e00 };
    try std.testing.expectEqual(@as(u16, 0), scanStep(.max, .float16, hn, h1).bits);
}

// --- views with negative strides ---

fn testLeaf(comptime D: Dtype, dims: []const i32, vals: []const D.Type()) !*Node {
    var shape = Shape{ .ndim = @intCast(dims.len) };
    for (dims, 0..) |d, i| shape.dims[i] = d;
    const x = try array.create(D, shape, .leaf, &.{}, 0);
    x.buffer = try array.newBuffer(@max(x.nbytes(), 1), "test");
    x.setRowContiguousStrides();
    const p: [*]D.Type() = @ptrCast(@alignCast(x.data()));
    @memcpy(p[0..x.size()], vals[0..x.size()]);
    return x;
}



const test_views = @import("../test_views.zig");
const flippedView = test_views.flippedView;
const logicalOf = test_views.logical;

fn expectSameResult(a: *Node, b: *Node) !void {
    try eval(a, a.prim.sort);
    try eval(b, b.prim.sort);
    try std.testing.expectEqual(a.nbytes(), b.nbytes());
    try std.testing.expectEqualSlices(u8, b.data()[0..b.nbytes()], a.data()[0..a.nbytes()]);
}

test "scans, sorts, partitions, topk and searchsorted read views with negative strides" {
    const dims = [_]i32{ 3, 4, 5 };
    var vals: [60]f32 = undefined;
    for (&vals, 0..) |*v, i| v.* = @as(f32, @floatFromInt((i * 37 + 11) % 23)) * 0.25 - 2;
    const base = try testLeaf(.float32, &dims, &vals);
    defer array.release(base);
    var flip: u32 = 1;
    while (flip < 8) : (flip += 1) {
        const v = try flippedView(base, flip);
        defer array.release(v);
        // The same logical values, row-contiguous: results must be identical.
        var lv: [60]f32 = undefined;
        logicalOf(f32, v, &lv);
        const c = try testLeaf(.float32, &dims, &lv);
        defer array.release(c);
        const axes = [_]?i32{ 0, 1, 2, -1, null };
        for (axes) |ax| {
            inline for (.{ ScanOp.sum, ScanOp.prod, ScanOp.max, ScanOp.min, ScanOp.logaddexp }) |op| {
                for ([_][2]bool{ .{ false, true }, .{ true, true }, .{ false, false }, .{ true, false } }) |ri| {
                    const a = try scan(op, v, ax, ri[0], ri[1], null, 0);
                    defer array.release(a);
                    const b = try scan(op, c, ax, ri[0], ri[1], null, 0);
                    defer array.release(b);
                    try expectSameResult(a, b);
                }
            }
            const n: i32 = if (ax) |a| dims[@intCast(@mod(a, 3))] else 60;
            inline for (.{ SortOp.sort, SortOp.argsort, SortOp.partition, SortOp.argpartition, SortOp.topk }) |op| {
                const kth: i32 = if (op == .topk) @divTrunc(n, 2) else n - 2;
                const a = try sortOp(op, v, ax, kth, 0);
                defer array.release(a);
                const b = try sortOp(op, c, ax, kth, 0);
                defer array.release(b);
                try expectSameResult(a, b);
            }
        }
    }
    // searchsorted into a reversed view of a descending buffer (ascending logically).
    var desc: [9]i32 = undefined;
    for (&desc, 0..) |*d, i| d.* = 40 - @as(i32, @intCast(i)) * 5;
    const ab = try testLeaf(.int32, &.{9}, &desc);
    defer array.release(ab);
    const av = try flippedView(ab, 1);
    defer array.release(av);
    var q: [7]i32 = .{ -100, 0, 1, 20, 21, 40, 99 };
    const qv = try testLeaf(.int32, &.{7}, &q);
    defer array.release(qv);
    inline for (.{ false, true }) |right| {
        const node = try searchsorted(av, qv, right, 0);
        defer array.release(node);
        try eval(node, node.prim.sort);
        const got: [*]const u32 = @ptrCast(@alignCast(node.data()));
        const want: [7]u32 = if (right) .{ 0, 1, 1, 5, 5, 9, 9 } else .{ 0, 0, 1, 4, 5, 8, 9 };
        try std.testing.expectEqualSlices(u32, &want, got[0..7]);
    }
}

test "complex logcumsumexp starts at (-inf, 0) and follows MLX's logaddexp" {
    const C64 = dtype_mod.Complex64;
    const inf = std.math.inf(f32);
    const x = try testLeaf(.complex64, &.{3}, &[_]C64{ .{ .re = 0, .im = 0 }, .{ .re = 0, .im = 0 }, .{ .re = -inf, .im = 0 } });
    defer array.release(x);
    const node = try scan(.logaddexp, x, 0, false, false, null, 0);
    defer array.release(node);
    try eval(node, node.prim.sort);
    const o: [*]const C64 = @ptrCast(@alignCast(node.data()));
    try std.testing.expectEqual(-inf, o[0].re);
    try std.testing.expectEqual(@as(f32, 0), o[0].im);
    try std.testing.expectEqual(@as(f32, 0), o[1].re);
    // log(2) through MLX's complex log1p: 0.5 * log1p(3) for |z| >= 0.5 is log(hypot(2, 0)).
    try std.testing.expectApproxEqAbs(@as(f32, 0.6931472), o[2].re, 1e-7);
}
