//! Linear algebra factorizations on LAPACK (loaded at run time, prims/lapack.zig): QR, SVD,
//! inverse, triangular inverse, Cholesky, symmetric/Hermitian and general eigensolvers, LU,
//! and determinants, batched over the leading dimensions. Everything else of `mx.linalg`
//! (norm, cross, pinv, solve, solve_triangular, cholesky_inv, lu's P/L/U) is composed in
//! src/linalg.ts, as MLX composes it.
//!
//! One primitive, `factor`, computes all outputs of a factorization at once into one
//! *packed* node of shape (..., P): per matrix, the outputs' elements one after another
//! (e.g. QR: Q's m*k then R's k*n). The op then hands the host the outputs as views of that
//! node (a slice of the last axis, a reshape, a cast where the output dtype differs), so one
//! evaluation serves every output and the graph stays single-output.
//!
//! MLX's rules (mlx-cpu 0.32.4): float32 and float64 (and complex64 for svd and the
//! eigensolvers); eig/eigvals always return complex64; kernels run per matrix on a
//! contiguous column-major copy. LAPACK failures give MLX's messages at evaluation
//! ("[Inverse::eval_cpu] LU factorization failed with error code 2"). MLX has no vjp or jvp
//! for these primitives; det and slogdet are differentiable (d det = det * inv(A)^T).
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const primitives = @import("../primitives.zig");
const abi_util = @import("../abi_util.zig");
const convert = @import("../convert.zig");
const copy = @import("copy.zig");
const shape_ops = @import("shape.zig");
const ew = @import("elementwise.zig");
const lapack = @import("lapack.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;
const Int = lapack.Int;
const a_ = std.heap.c_allocator;

/// The host's entry points (values are part of the C ABI).
pub const Api = enum(u32) {
    qr = 0,
    svd = 1,
    svdvals = 2,
    inv = 3,
    tri_inv = 4,
    cholesky = 5,
    eigh = 6,
    eigvalsh = 7,
    eig = 8,
    eigvals = 9,
    lu_factor = 10,
    det = 11,
    slogdet = 12,
    /// lu_factor under the name `lu` (MLX's messages for lu and solve).
    lu = 13,

    /// The name MLX's messages use.
    pub fn msgName(api: Api) []const u8 {
        return switch (api) {
            .svdvals => "svd",
            .tri_inv => "inv",
            else => @tagName(api),
        };
    }

    fn complexOk(api: Api) bool {
        return switch (api) {
            .svd, .svdvals, .eigh, .eigvalsh, .eig, .eigvals => true,
            else => false,
        };
    }
};

pub const Prim = struct {
    api: Api,
    upper: bool,

    /// MLX's primitive names (its vjp messages use them).
    pub fn name(p: Prim) []const u8 {
        return switch (p.api) {
            .qr => "QRF",
            .svd, .svdvals => "SVD",
            .inv, .tri_inv => "Inverse",
            .cholesky => "Cholesky",
            .eigh, .eigvalsh => "Eigh",
            .eig, .eigvals => "Eig",
            .lu_factor, .lu => "LUF",
            .det => "Det",
            .slogdet => "SlogDet",
        };
    }
};

// ---------------------------------------------------------------------------------------------
// Layout of the packed outputs

const max_parts = 3;

const Part = struct { dims: [2]i32, nd: u8, off: usize, len: usize };

const Layout = struct {
    parts: [max_parts]Part = undefined,
    n: usize = 0,
    total: usize = 0,

    fn add(l: *Layout, dims: []const i32) void {
        var p = Part{ .dims = .{ 0, 0 }, .nd = @intCast(dims.len), .off = l.total, .len = 1 };
        for (dims, 0..) |d, i| {
            p.dims[i] = d;
            p.len *= @intCast(d);
        }
        l.parts[l.n] = p;
        l.n += 1;
        l.total += p.len;
    }
};

fn layoutOf(api: Api, m: i32, n: i32) Layout {
    const k = @min(m, n);
    var l = Layout{};
    switch (api) {
        .qr => {
            l.add(&.{ m, k });
            l.add(&.{ k, n });
        },
        .svd => {
            l.add(&.{ m, m });
            l.add(&.{k});
            l.add(&.{ n, n });
        },
        .svdvals => l.add(&.{k}),
        .inv, .tri_inv, .cholesky => l.add(&.{ n, n }),
        .eigh, .eig => {
            l.add(&.{n});
            l.add(&.{ n, n });
        },
        .eigvalsh, .eigvals => l.add(&.{n}),
        .lu_factor, .lu => {
            l.add(&.{ m, n });
            l.add(&.{k});
            l.add(&.{m});
        },
        .det => l.add(&.{}),
        .slogdet => {
            l.add(&.{});
            l.add(&.{});
        },
    }
    return l;
}

/// The dtype the host sees for part `i` (the packed node has dtype `packed_dt`).
fn partDtype(api: Api, i: usize, packed_dt: Dtype) Dtype {
    return switch (api) {
        .lu_factor, .lu => if (i == 0) packed_dt else .uint32,
        // Singular values and Hermitian eigenvalues are real.
        .svd => if (i == 1 and packed_dt == .complex64) .float32 else packed_dt,
        .svdvals, .eigvalsh => if (packed_dt == .complex64) .float32 else packed_dt,
        .eigh => if (i == 0 and packed_dt == .complex64) .float32 else packed_dt,
        else => packed_dt,
    };
}

// ---------------------------------------------------------------------------------------------
// The op

fn validate(a: *const Node, api: Api) errors.Error!void {
    const op = api.msgName();
    switch (api) {
        .det, .slogdet => if (a.dtype == .complex64)
            return errors.fail(.invalid_argument, "[linalg::{s}] Complex inputs are not supported.", .{op}),
        else => {
            const ok = a.dtype == .float32 or a.dtype == .float64 or (api.complexOk() and a.dtype == .complex64);
            if (!ok) {
                if (api.complexOk())
                    return errors.fail(.invalid_argument, "[linalg::{s}] Arrays must have type float32, float64 or complex64. Received array with type {s}.", .{ op, a.dtype.name() });
                return errors.fail(.invalid_argument, "[linalg::{s}] Arrays must have type float32 or float64. Received array with type {s}.", .{ op, a.dtype.name() });
            }
        },
    }
    if (a.shape.ndim < 2) {
        if (api == .svd or api == .svdvals)
            return errors.fail(.invalid_argument, "[linalg::svd] Input array must have >= 2 dimensions. Received array with {d} dimensions.", .{a.shape.ndim});
        return errors.fail(.invalid_argument, "[linalg::{s}] Arrays must have >= 2 dimensions. Received array with {d} dimensions.", .{ op, a.shape.ndim });
    }
    const m = a.shape.dims[a.shape.ndim - 2];
    const n = a.shape.dims[a.shape.ndim - 1];
    if (m == n) return;
    switch (api) {
        .inv, .tri_inv => return errors.fail(.invalid_argument, "[linalg::inv] Inverses are only defined for square matrices.", .{}),
        .cholesky => return errors.fail(.invalid_argument, "[linalg::cholesky] Cholesky decomposition is only defined for square matrices.", .{}),
        .eigh, .eigvalsh, .eig, .eigvals, .det, .slogdet => return errors.fail(.invalid_argument, "[linalg::{s}] Only defined for square matrices.", .{op}),
        .qr, .svd, .svdvals, .lu_factor, .lu => {},
    }
}

/// The packed node of a factorization (the caller owns it). `a` must be float32/float64
/// (complex64 where allowed): det and slogdet of other dtypes are cast by the host.
pub fn packedNode(a: *Node, api: Api, upper: bool, stream: u32) errors.Error!*Node {
    try validate(a, api);
    if ((api == .det or api == .slogdet) and a.dtype != .float32 and a.dtype != .float64)
        return errors.fail(.invalid_argument, "[linalg::{s}] Arrays must have type float32 or float64. Received array with type {s}.", .{ api.msgName(), a.dtype.name() });
    var nbuf: [32]u8 = undefined;
    _ = try lapack.get(std.fmt.bufPrint(&nbuf, "linalg::{s}", .{api.msgName()}) catch "linalg");
    const nd = a.shape.ndim;
    const l = layoutOf(api, a.shape.dims[nd - 2], a.shape.dims[nd - 1]);
    if (l.total > std.math.maxInt(i32))
        return errors.fail(.invalid_argument, "[linalg::{s}] The matrices are too large ({d} output elements each).", .{ api.msgName(), l.total });
    var out = a.shape;
    out.ndim = nd - 1;
    out.dims[nd - 2] = @intCast(l.total);
    _ = try out.sizeChecked(api.msgName());
    const dt: Dtype = if (api == .eig or api == .eigvals) .complex64 else a.dtype;
    return array.create(dt, out, .{ .linalg = .{ .api = api, .upper = upper } }, &.{a}, stream);
}

/// Output `i` of a packed node as the host sees it: a view of its part, reshaped, cast.
fn partOf(p: *Node, api: Api, m: i32, n: i32, i: usize, stream: u32) errors.Error!*Node {
    const l = layoutOf(api, m, n);
    const part = l.parts[i];
    const nd = p.shape.ndim;
    const s = try shape_ops.sliceAxis(p, nd - 1, @intCast(part.off), @intCast(part.len), 1, stream);
    defer array.release(s);
    var dims: [array.max_ndim]i32 = undefined;
    @memcpy(dims[0 .. nd - 1], p.shape.dims[0 .. nd - 1]);
    for (0..part.nd) |j| dims[nd - 1 + j] = part.dims[j];
    const r = try shape_ops.reshape(s, dims[0 .. nd - 1 + part.nd], stream);
    defer array.release(r);
    return copy.astype(r, partDtype(api, i, p.dtype), stream);
}

/// Build the factorization and push its outputs to the thread's results list; returns the count.
pub fn factor(a: *Node, api: Api, upper: bool, stream: u32) errors.Error!u32 {
    const p = try packedNode(a, api, upper, stream);
    defer array.release(p);
    const grad = @import("../grad.zig");
    grad.clearResults();
    const nd = a.shape.ndim;
    const m = a.shape.dims[nd - 2];
    const n = a.shape.dims[nd - 1];
    const l = layoutOf(api, m, n);
    for (0..l.n) |i| try grad.pushResult(try partOf(p, api, m, n, i, stream));
    return @intCast(l.n);
}

// ---------------------------------------------------------------------------------------------
// Kernels

fn oom(op: []const u8) errors.Error {
    return errors.fail(.out_of_memory, "[{s}] Out of memory.", .{op});
}

/// Scratch memory of one kernel call, freed together.
const Scratch = struct {
    bufs: [12][]u8 = undefined,
    n: usize = 0,

    fn get(s: *Scratch, comptime E: type, count: usize) errors.Error![]E {
        const b = a_.alignedAlloc(u8, .@"64", @max(count, 1) * @sizeOf(E)) catch return oom("linalg");
        s.bufs[s.n] = b;
        s.n += 1;
        return @as([*]E, @ptrCast(@alignCast(b.ptr)))[0..@max(count, 1)];
    }

    fn deinit(s: *Scratch) void {
        for (s.bufs[0..s.n]) |b| a_.free(@as([]align(64) u8, @alignCast(b)));
    }
};

/// The workspace size a LAPACK query returned (as a float), at least 1.
fn lworkOf(q: anytype) Int {
    const v: f64 = @floatCast(q);
    return @max(1, @as(Int, @intFromFloat(@ceil(v))));
}

fn runRange(L: *const lapack.Fns, node: *Node, a: *const Node, p: Prim, input: [*]const u8, b0: usize, b1: usize) errors.Error!void {
    switch (a.dtype) {
        .float32 => try run(f32, L, node, a, p, @ptrCast(@alignCast(input)), b0, b1),
        .float64 => try run(f64, L, node, a, p, @ptrCast(@alignCast(input)), b0, b1),
        .complex64 => try runComplex(L, node, a, p, @ptrCast(@alignCast(input)), b0, b1),
        else => unreachable, // refused when the node was built
    }
}

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    const a = node.inputs[0];
    try primitives.allocOutput(node, null);
    const L = try lapack.get(p.api.msgName());
    const elem: usize = switch (a.dtype) {
        .float32 => 4,
        .float64, .complex64 => 8,
        else => unreachable, // refused when the node was built
    };
    const input = a_.alignedAlloc(u8, .@"64", @max(a.size(), 1) * elem) catch return oom("linalg");
    defer a_.free(input);
    convert.copyConvert(a, input.ptr, a.dtype);
    const nd = a.shape.ndim;
    const m: usize = @intCast(a.shape.dims[nd - 2]);
    const n: usize = @intCast(a.shape.dims[nd - 1]);
    const lay = layoutOf(p.api, @intCast(m), @intCast(n));
    const nb = node.size() / @max(lay.total, 1); // matrices in the batch
    // The matrices run one after another. Splitting a batch over the pool (each task its own
    // copy and workspace) was measured slower with the OpenBLAS wheel on 2 cores (inv of 64
    // 64x64 matrices 4.6 -> 6.2 ms, eigh 111 -> 166 ms; with OPENBLAS_NUM_THREADS=1 still
    // 3.2 -> 4.8 ms and 14 -> 28 ms): its calls contend with each other. Kept sequential;
    // `runRange` takes any range of the batch for a later try.
    try runRange(L, node, a, p, input.ptr, 0, nb);
}

/// The real routines of one precision, by their precision-free names.
fn Real(comptime T: type) type {
    const p = if (T == f32) "s" else "d";
    return struct {
        getrf: @FieldType(lapack.Fns, p ++ "getrf"),
        getri: @FieldType(lapack.Fns, p ++ "getri"),
        geqrf: @FieldType(lapack.Fns, p ++ "geqrf"),
        orgqr: @FieldType(lapack.Fns, p ++ "orgqr"),
        gesdd: @FieldType(lapack.Fns, p ++ "gesdd"),
        trtri: @FieldType(lapack.Fns, p ++ "trtri"),
        potrf: @FieldType(lapack.Fns, p ++ "potrf"),
        syevd: @FieldType(lapack.Fns, p ++ "syevd"),
        geev: @FieldType(lapack.Fns, p ++ "geev"),

        fn of(L: *const lapack.Fns) @This() {
            var r: @This() = undefined;
            inline for (@typeInfo(@This()).@"struct".fields) |f| @field(r, f.name) = @field(L, p ++ f.name);
            return r;
        }
    };
}

/// Row-major (rows x cols) to column-major, and back.
fn toCol(comptime T: type, src: []const T, dst: []T, rows: usize, cols: usize) void {
    for (0..rows) |i| for (0..cols) |j| {
        dst[j * rows + i] = src[i * cols + j];
    };
}

fn fromCol(comptime T: type, src: []const T, dst: []T, rows: usize, cols: usize, ld: usize) void {
    for (0..rows) |i| for (0..cols) |j| {
        dst[i * cols + j] = src[j * ld + i];
    };
}

/// Matrices [b0, b1) of the batch; `input` is the whole batch converted to T.
fn run(comptime T: type, L: *const lapack.Fns, node: *Node, a: *const Node, p: Prim, input: [*]const T, b0: usize, b1: usize) errors.Error!void {
    const F = Real(T).of(L);
    const nd = a.shape.ndim;
    const m: usize = @intCast(a.shape.dims[nd - 2]);
    const n: usize = @intCast(a.shape.dims[nd - 1]);
    const k = @min(m, n);
    const lay = layoutOf(p.api, @intCast(m), @intCast(n));
    var s = Scratch{};
    defer s.deinit();
    const w = try s.get(T, m * n); // the column-major working copy
    const mi: Int = @intCast(m);
    const ni: Int = @intCast(n);
    const ki: Int = @intCast(k);
    const lda: Int = @intCast(@max(m, 1));
    var info: Int = 0;
    const upper_c: u8 = if (p.upper) 'U' else 'L';

    if (p.api == .eig or p.api == .eigvals) {
        const out: [*][2]f32 = @ptrCast(@alignCast(node.data()));
        const vecs = p.api == .eig;
        const wr = try s.get(T, n);
        const wi = try s.get(T, n);
        const vr = try s.get(T, if (vecs) n * n else 1);
        const ldvr: Int = if (vecs) @intCast(@max(n, 1)) else 1;
        var q: T = 0;
        const jobvr: u8 = if (vecs) 'V' else 'N';
        const nn: u8 = 'N';
        var one: Int = 1;
        var lw: Int = -1;
        if (n > 0) F.geev(&nn, &jobvr, &ni, w.ptr, &lda, wr.ptr, wi.ptr, vr.ptr, &one, vr.ptr, &ldvr, @ptrCast(&q), &lw, &info, 1, 1);
        lw = lworkOf(q);
        const work = try s.get(T, @intCast(lw));
        for (b0..b1) |b| {
            const o = out + b * lay.total;
            if (n == 0) continue;
            toCol(T, input[b * n * n ..][0 .. n * n], w, n, n);
            if (!allFinite(T, w)) return errors.fail(.runtime, "[Eig::eval_cpu] Eigenvalue decomposition failed with error code -4", .{});
            F.geev(&nn, &jobvr, &ni, w.ptr, &lda, wr.ptr, wi.ptr, vr.ptr, &one, vr.ptr, &ldvr, work.ptr, &lw, &info, 1, 1);
            if (info != 0) return errors.fail(.runtime, "[Eig::eval_cpu] Eigenvalue decomposition failed with error code {d}", .{info});
            for (0..n) |j| o[j] = .{ @floatCast(wr[j]), @floatCast(wi[j]) };
            if (!vecs) continue;
            const v = o + n;
            var j: usize = 0;
            while (j < n) {
                if (wi[j] == 0 or j + 1 == n) {
                    for (0..n) |i| v[i * n + j] = .{ @floatCast(vr[j * n + i]), 0 };
                    j += 1;
                } else {
                    for (0..n) |i| {
                        const re: f32 = @floatCast(vr[j * n + i]);
                        const im: f32 = @floatCast(vr[(j + 1) * n + i]);
                        v[i * n + j] = .{ re, im };
                        v[i * n + j + 1] = .{ re, -im };
                    }
                    j += 2;
                }
            }
        }
        return;
    }

    const out: [*]T = @ptrCast(@alignCast(node.data()));
    switch (p.api) {
        .qr => {
            const tau = try s.get(T, k);
            var q: T = 0;
            var lw: Int = -1;
            var q2: T = 0;
            if (k > 0) {
                F.geqrf(&mi, &ni, w.ptr, &lda, tau.ptr, @ptrCast(&q), &lw, &info);
                F.orgqr(&mi, &ki, &ki, w.ptr, &lda, tau.ptr, @ptrCast(&q2), &lw, &info);
            }
            lw = @max(lworkOf(q), lworkOf(q2));
            const work = try s.get(T, @intCast(lw));
            for (b0..b1) |b| {
                if (k == 0) break;
                const o = out + b * lay.total;
                toCol(T, input[b * m * n ..][0 .. m * n], w, m, n);
                F.geqrf(&mi, &ni, w.ptr, &lda, tau.ptr, work.ptr, &lw, &info);
                // R: the upper triangle of the first k rows.
                const r = o + m * k;
                for (0..k) |i| for (0..n) |j| {
                    r[i * n + j] = if (j >= i) w[j * m + i] else 0;
                };
                F.orgqr(&mi, &ki, &ki, w.ptr, &lda, tau.ptr, work.ptr, &lw, &info);
                fromCol(T, w, o[0 .. m * k], m, k, m);
            }
        },
        .svd, .svdvals => {
            const full = p.api == .svd;
            const sv = try s.get(T, k);
            const u = try s.get(T, if (full) m * m else 1);
            const vt = try s.get(T, if (full) n * n else 1);
            const iwork = try s.get(Int, 8 * k);
            const jobz: u8 = if (full) 'A' else 'N';
            const ldu: Int = if (full) lda else 1;
            const ldvt: Int = if (full) @intCast(@max(n, 1)) else 1;
            var q: T = 0;
            var lw: Int = -1;
            if (k > 0) F.gesdd(&jobz, &mi, &ni, w.ptr, &lda, sv.ptr, u.ptr, &ldu, vt.ptr, &ldvt, @ptrCast(&q), &lw, iwork.ptr, &info, 1);
            lw = lworkOf(q);
            const work = try s.get(T, @intCast(lw));
            for (b0..b1) |b| {
                const o = out + b * lay.total;
                if (k == 0) {
                    // An empty matrix: U and Vt are identities.
                    if (full) {
                        for (0..m) |i| for (0..m) |j| {
                            o[i * m + j] = if (i == j) 1 else 0;
                        };
                        const v = o + m * m;
                        for (0..n) |i| for (0..n) |j| {
                            v[i * n + j] = if (i == j) 1 else 0;
                        };
                    }
                    continue;
                }
                toCol(T, input[b * m * n ..][0 .. m * n], w, m, n);
                if (!allFinite(T, w)) return errors.fail(.runtime, "[SVD::eval_cpu] SVD failed with error code -4", .{});
                F.gesdd(&jobz, &mi, &ni, w.ptr, &lda, sv.ptr, u.ptr, &ldu, vt.ptr, &ldvt, work.ptr, &lw, iwork.ptr, &info, 1);
                if (info != 0) return errors.fail(.runtime, "[SVD::eval_cpu] SVD failed with error code {d}", .{info});
                if (full) {
                    fromCol(T, u, o[0 .. m * m], m, m, m);
                    @memcpy(o[m * m ..][0..k], sv[0..k]);
                    fromCol(T, vt, o[m * m + k ..][0 .. n * n], n, n, n);
                } else @memcpy(o[0..k], sv[0..k]);
            }
        },
        .inv => {
            const ipiv = try s.get(Int, n);
            var q: T = 0;
            var lw: Int = -1;
            if (n > 0) F.getri(&ni, w.ptr, &lda, ipiv.ptr, @ptrCast(&q), &lw, &info);
            lw = lworkOf(q);
            const work = try s.get(T, @intCast(lw));
            for (b0..b1) |b| {
                if (n == 0) break;
                toCol(T, input[b * n * n ..][0 .. n * n], w, n, n);
                F.getrf(&ni, &ni, w.ptr, &lda, ipiv.ptr, &info);
                if (info != 0) return errors.fail(.runtime, "[Inverse::eval_cpu] LU factorization failed with error code {d}", .{info});
                F.getri(&ni, w.ptr, &lda, ipiv.ptr, work.ptr, &lw, &info);
                if (info != 0) return errors.fail(.runtime, "[Inverse::eval_cpu] inversion failed with error code {d}", .{info});
                fromCol(T, w, out[b * n * n ..][0 .. n * n], n, n, n);
            }
        },
        .tri_inv, .cholesky => {
            const diag: u8 = 'N';
            for (b0..b1) |b| {
                if (n == 0) break;
                toCol(T, input[b * n * n ..][0 .. n * n], w, n, n);
                if (p.api == .tri_inv) {
                    zeroOther(T, w, n, p.upper);
                    F.trtri(&upper_c, &diag, &ni, w.ptr, &lda, &info, 1, 1);
                    if (info != 0) return errors.fail(.runtime, "[Inverse::eval_cpu] triangular inversion failed with error code {d}", .{info});
                } else {
                    // As MLX: a matrix that is not positive definite is not reported.
                    F.potrf(&upper_c, &ni, w.ptr, &lda, &info, 1);
                    zeroOther(T, w, n, p.upper);
                }
                fromCol(T, w, out[b * n * n ..][0 .. n * n], n, n, n);
            }
        },
        .eigh, .eigvalsh => {
            const vecs = p.api == .eigh;
            const ev = try s.get(T, n);
            const jobz: u8 = if (vecs) 'V' else 'N';
            var q: T = 0;
            var qi: Int = 0;
            var lw: Int = -1;
            var liw: Int = -1;
            if (n > 0) F.syevd(&jobz, &upper_c, &ni, w.ptr, &lda, ev.ptr, @ptrCast(&q), &lw, @ptrCast(&qi), &liw, &info, 1, 1);
            lw = lworkOf(q);
            liw = @max(1, qi);
            const work = try s.get(T, @intCast(lw));
            const iwork = try s.get(Int, @intCast(liw));
            for (b0..b1) |b| {
                if (n == 0) break;
                const o = out + b * lay.total;
                toCol(T, input[b * n * n ..][0 .. n * n], w, n, n);
                F.syevd(&jobz, &upper_c, &ni, w.ptr, &lda, ev.ptr, work.ptr, &lw, iwork.ptr, &liw, &info, 1, 1);
                if (info != 0) return errors.fail(.runtime, "[Eigh::eval_cpu] Eigenvalue decomposition failed with error code {d}", .{info});
                @memcpy(o[0..n], ev[0..n]);
                if (vecs) fromCol(T, w, o[n..][0 .. n * n], n, n, n);
            }
        },
        .lu_factor, .lu, .det, .slogdet => {
            const ipiv = try s.get(Int, k);
            const perm = try s.get(usize, m);
            for (b0..b1) |b| {
                const o = out + b * lay.total;
                if (k == 0) {
                    if (p.api == .det) o[0] = 1;
                    if (p.api == .slogdet) {
                        o[0] = 1;
                        o[1] = 0;
                    }
                    if (p.api == .lu_factor or p.api == .lu) for (0..m) |i| {
                        o[m * n + i] = @floatFromInt(i);
                    };
                    continue;
                }
                toCol(T, input[b * m * n ..][0 .. m * n], w, m, n);
                // info > 0 (an exact zero pivot) is not an error for lu, det or slogdet.
                F.getrf(&mi, &ni, w.ptr, &lda, ipiv.ptr, &info);
                if (p.api == .lu_factor or p.api == .lu) {
                    fromCol(T, w, o[0 .. m * n], m, n, m);
                    for (0..m) |i| perm[i] = i;
                    for (0..k) |i| {
                        const j: usize = @intCast(ipiv[i] - 1);
                        o[m * n + i] = @floatFromInt(j);
                        std.mem.swap(usize, &perm[i], &perm[j]);
                    }
                    for (0..m) |i| o[m * n + k + i] = @floatFromInt(perm[i]);
                    continue;
                }
                var sign: T = 1;
                var logabs: T = 0;
                var prod: T = 1;
                for (0..n) |i| {
                    const d = w[i * n + i];
                    if (ipiv[i] - 1 != @as(Int, @intCast(i))) sign = -sign;
                    prod *= d;
                    if (d < 0) sign = -sign;
                    logabs += @log(@abs(d));
                }
                if (p.api == .det) {
                    var swaps: T = 1;
                    for (0..n) |i| {
                        if (ipiv[i] - 1 != @as(Int, @intCast(i))) swaps = -swaps;
                    }
                    o[0] = prod * swaps;
                } else {
                    if (std.math.isNan(logabs)) sign = std.math.nan(T);
                    if (logabs == -std.math.inf(T)) sign = 0;
                    o[0] = sign;
                    o[1] = logabs;
                }
            }
        },
        .eig, .eigvals => unreachable,
    }
}

/// gesdd and geev refuse NaN and infinite entries through LAPACK's xerbla (info -4), which in
/// reference LAPACK stops the process: we check first and report MLX's message ourselves.
fn allFinite(comptime T: type, x: []const T) bool {
    for (x) |v| if (!std.math.isFinite(v)) return false;
    return true;
}

fn zeroOther(comptime T: type, w: []T, n: usize, upper: bool) void {
    for (0..n) |j| for (0..n) |i| {
        if ((upper and i > j) or (!upper and i < j)) w[j * n + i] = 0;
    };
}

fn runComplex(L: *const lapack.Fns, node: *Node, a: *const Node, p: Prim, input: [*]const [2]f32, b0: usize, b1: usize) errors.Error!void {
    const C = [2]f32;
    const nd = a.shape.ndim;
    const m: usize = @intCast(a.shape.dims[nd - 2]);
    const n: usize = @intCast(a.shape.dims[nd - 1]);
    const k = @min(m, n);
    const lay = layoutOf(p.api, @intCast(m), @intCast(n));
    var s = Scratch{};
    defer s.deinit();
    const w = try s.get(C, m * n);
    const mi: Int = @intCast(m);
    const ni: Int = @intCast(n);
    const lda: Int = @intCast(@max(m, 1));
    var info: Int = 0;
    const out: [*]C = @ptrCast(@alignCast(node.data()));
    var q: C = .{ 0, 0 };
    var lw: Int = -1;
    switch (p.api) {
        .svd, .svdvals => {
            const full = p.api == .svd;
            const sv = try s.get(f32, k);
            const u = try s.get(C, if (full) m * m else 1);
            const vt = try s.get(C, if (full) n * n else 1);
            const iwork = try s.get(Int, 8 * k);
            const rwork = try s.get(f32, @max(5 * k * k + 7 * k, 2 * @max(m, n) * k + 2 * k * k + k) + 1);
            const jobz: u8 = if (full) 'A' else 'N';
            const ldu: Int = if (full) lda else 1;
            const ldvt: Int = if (full) @intCast(@max(n, 1)) else 1;
            if (k > 0) L.cgesdd(&jobz, &mi, &ni, @ptrCast(w.ptr), &lda, sv.ptr, @ptrCast(u.ptr), &ldu, @ptrCast(vt.ptr), &ldvt, @ptrCast(&q), &lw, rwork.ptr, iwork.ptr, &info, 1);
            lw = lworkOf(q[0]);
            const work = try s.get(C, @intCast(lw));
            for (b0..b1) |b| {
                const o = out + b * lay.total;
                if (k == 0) {
                    if (full) {
                        for (0..m) |i| for (0..m) |j| {
                            o[i * m + j] = .{ if (i == j) 1 else 0, 0 };
                        };
                        for (0..n) |i| for (0..n) |j| {
                            o[m * m + i * n + j] = .{ if (i == j) 1 else 0, 0 };
                        };
                    }
                    continue;
                }
                toCol(C, input[b * m * n ..][0 .. m * n], w, m, n);
                if (!allFinite(f32, @as([*]f32, @ptrCast(w.ptr))[0 .. 2 * m * n])) return errors.fail(.runtime, "[SVD::eval_cpu] SVD failed with error code -4", .{});
                L.cgesdd(&jobz, &mi, &ni, @ptrCast(w.ptr), &lda, sv.ptr, @ptrCast(u.ptr), &ldu, @ptrCast(vt.ptr), &ldvt, @ptrCast(work.ptr), &lw, rwork.ptr, iwork.ptr, &info, 1);
                if (info != 0) return errors.fail(.runtime, "[SVD::eval_cpu] SVD failed with error code {d}", .{info});
                const so = if (full) o + m * m else o;
                for (0..k) |i| so[i] = .{ sv[i], 0 };
                if (full) {
                    fromCol(C, u, o[0 .. m * m], m, m, m);
                    fromCol(C, vt, o[m * m + k ..][0 .. n * n], n, n, n);
                }
            }
        },
        .eigh, .eigvalsh => {
            const vecs = p.api == .eigh;
            const ev = try s.get(f32, n);
            const jobz: u8 = if (vecs) 'V' else 'N';
            const uplo: u8 = if (p.upper) 'U' else 'L';
            var qr_: f32 = 0;
            var qi: Int = 0;
            var lrw: Int = -1;
            var liw: Int = -1;
            if (n > 0) L.cheevd(&jobz, &uplo, &ni, @ptrCast(w.ptr), &lda, ev.ptr, @ptrCast(&q), &lw, @ptrCast(&qr_), &lrw, @ptrCast(&qi), &liw, &info, 1, 1);
            lw = lworkOf(q[0]);
            lrw = lworkOf(qr_);
            liw = @max(1, qi);
            const work = try s.get(C, @intCast(lw));
            const rwork = try s.get(f32, @intCast(lrw));
            const iwork = try s.get(Int, @intCast(liw));
            for (b0..b1) |b| {
                if (n == 0) break;
                const o = out + b * lay.total;
                toCol(C, input[b * n * n ..][0 .. n * n], w, n, n);
                L.cheevd(&jobz, &uplo, &ni, @ptrCast(w.ptr), &lda, ev.ptr, @ptrCast(work.ptr), &lw, rwork.ptr, &lrw, iwork.ptr, &liw, &info, 1, 1);
                if (info != 0) return errors.fail(.runtime, "[Eigh::eval_cpu] Eigenvalue decomposition failed with error code {d}", .{info});
                for (0..n) |i| o[i] = .{ ev[i], 0 };
                if (vecs) fromCol(C, w, o[n..][0 .. n * n], n, n, n);
            }
        },
        .eig, .eigvals => {
            const vecs = p.api == .eig;
            const ew_ = try s.get(C, n);
            const vr = try s.get(C, if (vecs) n * n else 1);
            const rwork = try s.get(f32, 2 * n);
            const jobvr: u8 = if (vecs) 'V' else 'N';
            const nn: u8 = 'N';
            const one: Int = 1;
            const ldvr: Int = if (vecs) @intCast(@max(n, 1)) else 1;
            if (n > 0) L.cgeev(&nn, &jobvr, &ni, @ptrCast(w.ptr), &lda, @ptrCast(ew_.ptr), @ptrCast(vr.ptr), &one, @ptrCast(vr.ptr), &ldvr, @ptrCast(&q), &lw, rwork.ptr, &info, 1, 1);
            lw = lworkOf(q[0]);
            const work = try s.get(C, @intCast(lw));
            for (b0..b1) |b| {
                if (n == 0) break;
                const o = out + b * lay.total;
                toCol(C, input[b * n * n ..][0 .. n * n], w, n, n);
                if (!allFinite(f32, @as([*]f32, @ptrCast(w.ptr))[0 .. 2 * n * n])) return errors.fail(.runtime, "[Eig::eval_cpu] Eigenvalue decomposition failed with error code -4", .{});
                L.cgeev(&nn, &jobvr, &ni, @ptrCast(w.ptr), &lda, @ptrCast(ew_.ptr), @ptrCast(vr.ptr), &one, @ptrCast(vr.ptr), &ldvr, @ptrCast(work.ptr), &lw, rwork.ptr, &info, 1, 1);
                if (info != 0) return errors.fail(.runtime, "[Eig::eval_cpu] Eigenvalue decomposition failed with error code {d}", .{info});
                @memcpy(o[0..n], ew_[0..n]);
                if (vecs) fromCol(C, vr, o[n..][0 .. n * n], n, n, n);
            }
        },
        else => unreachable, // refused when the node was built
    }
}

// ---------------------------------------------------------------------------------------------
// Transform rules (called from grad.zig and vmap.zig)

/// MLX has no vjp for its factorizations; det and slogdet have one:
/// d det(A) = cof(A) (the cofactor matrix), d logabsdet(A) = cof(A) / det(A) (= inv(A)^T; the
/// sign is piecewise constant). cof(A) is computed from the SVD A = U S Vt as
/// det(U) det(Vt) U diag(prod_{j != i} s_j) Vt, which stays finite for singular A (MLX gives
/// the cofactor matrix there too).
pub fn vjp(node: *Node, p: Prim, arg: usize, g: *Node, s: u32) errors.Error!*Node {
    _ = arg;
    if (p.api != .det and p.api != .slogdet)
        return errors.fail(.invalid_argument, "[Primitive::vjp] Not implemented for {s}.", .{p.name()});
    const a = node.inputs[0];
    const nd = node.shape.ndim;
    const cof = try cofactor(a, s);
    defer array.release(cof);
    // The cotangent per matrix, shaped (..., 1, 1).
    const gl = if (p.api == .slogdet) blk: {
        const gs = try shape_ops.sliceAxis(g, nd - 1, 1, 1, 1, s);
        defer array.release(gs);
        const d = try detOf(a, s);
        defer array.release(d);
        break :blk try ew.binary(.divide, gs, d, s);
    } else try retainedNode(g);
    defer array.release(gl);
    const g2 = try shape_ops.expandDims(gl, &.{-1}, s);
    defer array.release(g2);
    return ew.binary(.multiply, g2, cof, s);
}

fn retainedNode(x: *Node) errors.Error!*Node {
    x.retain();
    return x;
}

/// det of each matrix of x, shaped (..., 1).
fn detOf(x: *Node, s: u32) errors.Error!*Node {
    return packedNode(x, .det, false, s);
}

fn cofactor(a: *Node, s: u32) errors.Error!*Node {
    const sort = @import("sort.zig");
    const nd = a.shape.ndim;
    const n = a.shape.dims[nd - 1];
    const sv = try packedNode(a, .svd, false, s);
    defer array.release(sv);
    const u = try partOf(sv, .svd, n, n, 0, s);
    defer array.release(u);
    const sig = try partOf(sv, .svd, n, n, 1, s);
    defer array.release(sig);
    const vt = try partOf(sv, .svd, n, n, 2, s);
    defer array.release(vt);
    // prod_{j != i} s_j: the exclusive products from both ends.
    const fwd = try sort.scan(.prod, sig, -1, false, false, null, s);
    defer array.release(fwd);
    const bwd = try sort.scan(.prod, sig, -1, true, false, null, s);
    defer array.release(bwd);
    const others = try ew.binary(.multiply, fwd, bwd, s);
    defer array.release(others);
    const row = try shape_ops.expandDims(others, &.{-2}, s);
    defer array.release(row);
    const us = try ew.binary(.multiply, u, row, s);
    defer array.release(us);
    const prod = try @import("matmul.zig").matmul(us, vt, s);
    defer array.release(prod);
    const du = try detOf(u, s);
    defer array.release(du);
    const dv = try detOf(vt, s);
    defer array.release(dv);
    const sign = try ew.binary(.multiply, du, dv, s);
    defer array.release(sign);
    const sign2 = try shape_ops.expandDims(sign, &.{-1}, s);
    defer array.release(sign2);
    return ew.binary(.multiply, prod, sign2, s);
}

/// The factorization rebuilt on the batched input (batch axis first): the kernels batch over
/// all leading dimensions, so the packed node's last axis stays last.
pub fn vmapRule(node: *Node, p: Prim, bx: []const ?*Node, s: u32) errors.Error!*Node {
    const x = bx[0] orelse node.inputs[0];
    return packedNode(x, p.api, p.upper, s);
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn factorAbi(a: u32, api: u32, upper: u32, s: i32) callconv(.c) i32 {
    const r = blk: {
        const x = handles.get(a, "linalg") catch |e| break :blk e;
        const op = abi_util.opArg(Api, api, "linalg") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, op.msgName()) catch |e| break :blk e;
        break :blk factor(x, op, upper != 0, stream);
    };
    const n = r catch return -@intFromEnum(errors.code());
    return @intCast(n);
}

fn lapackHintAbi(path: ?*const anyopaque, len: u32) callconv(.c) i32 {
    const p: [*]const u8 = @ptrCast(path orelse return -1);
    return if (lapack.addHint(p[0..len])) 0 else -1;
}

fn lapackLoadAbi() callconv(.c) i32 {
    _ = lapack.get("linalg") catch return -@intFromEnum(errors.code());
    return 0;
}

fn lapackPathAbi() callconv(.c) [*:0]const u8 {
    return lapack.loadedPath();
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("linalg_factor", factorAbi, &.{ "a", "op", "upper", "stream" }, "A factorization (enum mlxb_linalg_op) of the last two axes; its outputs go to the results list (results_take); returns their count, negative on error."),
    abi_util.entry("lapack_hint", lapackHintAbi, &.{ "path", "len" }, "Register a LAPACK shared library path, searched after MLXB_LAPACK and the system's names."),
    abi_util.entry("lapack_load", lapackLoadAbi, &.{}, "Load LAPACK now (0), or fail with the message saying what to install."),
    abi_util.entry("lapack_path", lapackPathAbi, &.{}, "The path of the loaded LAPACK, \"\" if none is loaded."),
};

pub const abi_enums = .{
    .{ "linalg_op", Api },
};

// ---------------------------------------------------------------------------------------------
// Tests (numerics are tested from TypeScript against MLX fixtures; these check shapes and messages)

const testing = std.testing;

test "linalg validation messages" {
    const s: u32 = 0;
    const v = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{3}, "t"), s, "t");
    defer array.release(v);
    try testing.expectError(error.Failed, packedNode(v, .qr, false, s));
    try testing.expectEqualStrings("[linalg::qr] Arrays must have >= 2 dimensions. Received array with 1 dimensions.", errors.messageSlice());
    const r = try array.createWithBuffer(.int32, try Shape.fromSlice(&.{ 2, 3 }, "t"), s, "t");
    defer array.release(r);
    try testing.expectError(error.Failed, packedNode(r, .svd, false, s));
    try testing.expectEqualStrings("[linalg::svd] Arrays must have type float32, float64 or complex64. Received array with type int32.", errors.messageSlice());
    const f = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{ 2, 3 }, "t"), s, "t");
    defer array.release(f);
    try testing.expectError(error.Failed, packedNode(f, .tri_inv, false, s));
    try testing.expectEqualStrings("[linalg::inv] Inverses are only defined for square matrices.", errors.messageSlice());
    const l = layoutOf(.svd, 2, 3);
    try testing.expectEqual(@as(usize, 4 + 2 + 9), l.total);
}
