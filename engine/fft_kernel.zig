//! The FFT's kernels behind prims/fft.zig: plans (Stockham stages with their twiddles,
//! Bluestein, real transforms of even and odd length, four-step), the butterflies, and one pass
//! over every line of an axis (`pass`). prims/fft.zig's header describes the algorithms.
//!
//! In a portable build the passes run in the kernel object of the CPU's level (engine/kernels.zig
//! exports `fft_pass` per level; engine/cpu.zig): the batched path's lane count `L` follows the
//! level's vector width, so each object keeps its own plans (the four-step twiddles are laid out
//! per lane) in its own cache, and the engine hands over a pass as plain pointers, strides and
//! sizes (`PassCtx`). Same bits at every level: the butterflies are written once over `C` and
//! `VC`, so every line gets the operations of the one-line path whatever L is, and nothing is
//! contracted into a fused multiply-add.
const std = @import("std");
const pool = @import("pool.zig");
const cpu = @import("cpu.zig");
const array = @import("array.zig");
const dtype_mod = @import("dtype.zig");
const Shape = array.Shape;
const max_ndim = array.max_ndim;

const C = dtype_mod.Complex64;
const a_ = std.heap.c_allocator;

/// Prime factors up to this run as Stockham stages; a larger one sends the length to Bluestein.
const max_generic_radix = 61;
/// Plans kept for reuse; past this, a call builds and frees its own.
const max_cached_plans = 64;

pub const Kind = enum(u8) { c2c, r2c, c2r };

// ---------------------------------------------------------------------------------------------
// Complex arithmetic

// Every helper is generic over the element: `C` (one complex number) or `VC` (one complex
// number in each of `L` lines, split real/imaginary vectors), so the butterflies are written once
// and the batched path runs the very same operations lane by lane (bit-identical results).

/// Lines transformed together by the batched path.
const L = @min(16, std.simd.suggestVectorLength(f32) orelse 4);
const V = @Vector(L, f32);
const VC = extern struct { re: V, im: V };

fn Fl(comptime T: type) type {
    return @FieldType(T, "re");
}
inline fn spl(comptime F: type, s: f32) F {
    return if (F == f32) s else @as(F, @splat(s));
}
inline fn czero(comptime T: type) T {
    return .{ .re = spl(Fl(T), 0), .im = spl(Fl(T), 0) };
}
inline fn add(x: anytype, y: @TypeOf(x)) @TypeOf(x) {
    return .{ .re = x.re + y.re, .im = x.im + y.im };
}
inline fn csub(x: anytype, y: @TypeOf(x)) @TypeOf(x) {
    return .{ .re = x.re - y.re, .im = x.im - y.im };
}
inline fn mul(x: anytype, y: @TypeOf(x)) @TypeOf(x) {
    return .{ .re = x.re * y.re - x.im * y.im, .im = x.re * y.im + x.im * y.re };
}
/// x times one complex number w (the same in every lane): mul's arithmetic exactly.
inline fn mulW(x: anytype, w: C) @TypeOf(x) {
    const F = Fl(@TypeOf(x));
    const wr = spl(F, w.re);
    const wi = spl(F, w.im);
    return .{ .re = x.re * wr - x.im * wi, .im = x.re * wi + x.im * wr };
}
inline fn scl(x: anytype, s: f32) @TypeOf(x) {
    const v = spl(Fl(@TypeOf(x)), s);
    return .{ .re = x.re * v, .im = x.im * v };
}
inline fn conj(x: anytype) @TypeOf(x) {
    return .{ .re = x.re, .im = -x.im };
}
/// x * (sgn i): sgn = -1 for the forward transform.
inline fn mulI(x: anytype, comptime sgn: f32) @TypeOf(x) {
    return if (sgn > 0) .{ .re = -x.im, .im = x.re } else .{ .re = x.im, .im = -x.re };
}

/// e^{sgn 2 pi i k / n}, k reduced mod n first so large products keep their accuracy.
fn root(k: u64, n: u64, inverse: bool) C {
    const ang = 2.0 * std.math.pi * @as(f64, @floatFromInt(k % n)) / @as(f64, @floatFromInt(n));
    const s: f64 = if (inverse) 1 else -1;
    return .{ .re = @floatCast(@cos(ang)), .im = @floatCast(s * @sin(ang)) };
}

// ---------------------------------------------------------------------------------------------
// Plans

const Stage = struct {
    radix: u32,
    /// Sub-transform length after this stage (n_stage / radix).
    m: usize,
    /// Interleaved sequences before this stage.
    s: usize,
    /// (radix - 1) twiddles per p in [0, m).
    tw: []C,
    /// radix roots of unity, for the generic butterfly.
    roots: []C,
};

/// The four-step twiddles' split of the column index j2 = B TW + l: a fixed width rather than
/// the lane count L, so the products wa * wb, and the transform's bits, are the same at every
/// CPU level (L is 4, 8 or 16 and divides it).
const TW = 16;
const TwLanes = struct { re: [TW]f32, im: [TW]f32 };

/// The four-step transform of n = n1 n2: x as an n1 x n2 matrix (x[n2 j1 + j2]); its n2
/// columns transformed (length n1), element (k1, j2) times W_n^(j2 k1), its n1 rows transformed
/// (length n2) and written transposed: X[k1 + n1 k2]. Both passes run `L` lines at a time in
/// SIMD lanes (`passBlocks`) over the pool, so every pass streams whole cache lines and each
/// sub-transform stays in cache, where one long Stockham transform streams the whole array
/// through memory once per stage.
const Four = struct {
    n1: usize,
    n2: usize,
    p1: *Plan,
    p2: *Plan,
    /// W_n^(k1 B TW), [k1 * ceil(n2 / TW) + B].
    wa: []C,
    /// W_n^(k1 l) for l < TW, [k1]: column j2 = B TW + l gets wa[k1][B] * wb[k1][l].
    wb: []TwLanes,
    /// Batched scratch elements per worker (`VC`).
    per: usize,
};

const Blue = struct {
    m: usize,
    sub: *Plan,
    /// e^{sgn pi i j^2 / n}, j < n.
    chirp: []C,
    /// FFT_m of the conjugate chirp, wrapped, divided by m.
    kernel: []C,
};

const Plan = struct {
    n: usize,
    inverse: bool,
    real: bool,
    body: union(enum) {
        stockham: []Stage,
        bluestein: Blue,
        /// Real transform of even length: a complex plan of n/2 and n/2 + 1 twiddles.
        real_even: struct { half: *Plan, tw: []C },
        /// Real transform of odd length: the complex plan of n.
        real_odd: *Plan,
        /// A long complex transform as n1 x n2 (`runFour`).
        four: Four,
    },
    /// Complex scratch elements `run` needs.
    scratch: usize,

    fn deinit(p: *Plan) void {
        switch (p.body) {
            .stockham => |st| {
                for (st) |s| {
                    a_.free(s.tw);
                    a_.free(s.roots);
                }
                a_.free(st);
            },
            .bluestein => |b| {
                b.sub.deinit();
                a_.free(b.chirp);
                a_.free(b.kernel);
            },
            .real_even => |r| {
                r.half.deinit();
                a_.free(r.tw);
            },
            .real_odd => |c| c.deinit(),
            .four => |f| {
                f.p1.deinit();
                f.p2.deinit();
                a_.free(f.wa);
                a_.free(f.wb);
            },
        }
        a_.destroy(p);
    }

    /// Whether the plan runs on `VC` (L lines in SIMD lanes): a four-step plan runs one line at
    /// a time (it batches its own sub-transforms).
    fn batchable(p: *const Plan) bool {
        return switch (p.body) {
            .stockham => true,
            .bluestein => |b| b.sub.batchable(),
            .real_even => |r| r.half.batchable(),
            .real_odd => |c| c.batchable(),
            .four => false,
        };
    }

    /// The unnormalized DFT of data[0..n] in place (complex plans only).
    /// `par`: split each stage over the thread pool (for a transform that runs alone).
    fn run(p: *const Plan, comptime T: type, data: []T, scratch: []T, par: bool) void {
        switch (p.body) {
            .stockham => |st| runStockham(T, p.inverse, st, data, scratch, par),
            .bluestein => |b| runBluestein(T, p.n, b, data, scratch, par),
            .four => |f| if (T == C) runFour(f, data, scratch) else unreachable,
            else => unreachable,
        }
    }
};

fn oom() error{OutOfMemory} {
    return error.OutOfMemory;
}

fn alloc(n: usize) error{OutOfMemory}![]C {
    return a_.alloc(C, n) catch oom();
}

fn largestPrimeFactor(n0: usize) usize {
    var n = n0;
    var best: usize = 1;
    var f: usize = 2;
    while (f * f <= n) : (f += 1) {
        while (n % f == 0) {
            best = f;
            n /= f;
        }
    }
    return if (n > 1) @max(best, n) else best;
}

/// The smallest 2^a 3^b 5^c >= n.
fn smooth235(n: usize) usize {
    var best: usize = std.math.maxInt(usize);
    var p2: usize = 1;
    while (p2 < 2 * n) : (p2 *= 2) {
        var p3 = p2;
        while (p3 < 2 * n) : (p3 *= 3) {
            var p5 = p3;
            while (p5 < 2 * n) : (p5 *= 5) {
                if (p5 >= n and p5 < best) best = p5;
            }
        }
    }
    return best;
}

/// Smallest length that runs as four-step (`runFour`); `MLXB_FFT_FOUR_MIN` overrides it (for
/// benchmarks; 0 turns it off). Four-step plans run one line at a time (`Plan.batchable`).
const four_min_default: usize = 4096;
var four_min_once = std.once(readFourMin);
var four_min: usize = four_min_default;
fn readFourMin() void {
    const v = std.posix.getenv("MLXB_FFT_FOUR_MIN") orelse return;
    const k = std.fmt.parseInt(usize, v, 10) catch return;
    four_min = if (k == 0) std.math.maxInt(usize) else k;
}

/// The four-step split of n: n1 n2 = n with n1 the largest divisor <= sqrt(n), when it is at
/// least 16 (the row pass batches n1 lines, at least one full vector of lanes). Measured
/// (2 cores, a single transform): four-step from 4096 points took 15015 from 186 to 63 us,
/// 2^14 from 95 to 50, 2^18 from 2.2 to 1.4 ms; 5000 = 50 x 100 and 7429 = 23 x 323 halved
/// with n1 >= 16 rather than 64. Below 4096 points the batched Stockham kernel stays faster for
/// batches (1000 x 1000 measured ~1.5x slower as four-step) and a plan must serve both (a line
/// gets the same bits alone and in a batch).
fn fourSplit(n: usize) ?[2]usize {
    four_min_once.call();
    if (n < four_min) return null;
    var d: usize = std.math.sqrt(n);
    while (d > 1) : (d -= 1) {
        if (n % d == 0) break;
    }
    if (d < 16) return null;
    return .{ d, n / d };
}

fn buildComplex(n: usize, inverse: bool) error{OutOfMemory}!*Plan {
    const p = a_.create(Plan) catch return oom();
    errdefer a_.destroy(p);
    if (largestPrimeFactor(n) <= max_generic_radix) if (fourSplit(n)) |sp| {
        const n1 = sp[0];
        const n2 = sp[1];
        const p1 = try buildComplex(n1, inverse);
        errdefer p1.deinit();
        const p2 = try buildComplex(n2, inverse);
        errdefer p2.deinit();
        const nb = (n2 + TW - 1) / TW;
        const wa = try alloc(n1 * nb);
        errdefer a_.free(wa);
        const wb = a_.alloc(TwLanes, n1) catch return oom();
        errdefer a_.free(wb);
        for (0..n1) |k1| {
            for (0..nb) |b| wa[k1 * nb + b] = root(@as(u64, k1) * b * TW, n, inverse);
            for (0..TW) |l| {
                const w = root(@as(u64, k1) * l, n, inverse);
                wb[k1].re[l] = w.re;
                wb[k1].im[l] = w.im;
            }
        }
        const per = @max(2 * n1 + 4 + p1.scratch, 2 * n2 + 4 + p2.scratch);
        // The n1 x n2 intermediate, then each worker's batched scratch (in C units, with room
        // to align it).
        const scratch = n + pool.threads() * G * per * L + 2 * L;
        p.* = .{ .n = n, .inverse = inverse, .real = false, .body = .{ .four = .{ .n1 = n1, .n2 = n2, .p1 = p1, .p2 = p2, .wa = wa, .wb = wb, .per = per } }, .scratch = scratch };
        return p;
    };
    if (largestPrimeFactor(n) > max_generic_radix) {
        const m = smooth235(2 * n - 1);
        const sub = try buildComplex(m, false);
        errdefer sub.deinit();
        const chirp = try alloc(n);
        errdefer a_.free(chirp);
        const kernel = try alloc(m);
        errdefer a_.free(kernel);
        const two_n: u64 = 2 * @as(u64, n);
        for (0..n) |j| {
            const jj: u64 = (@as(u64, j) * @as(u64, j)) % two_n;
            chirp[j] = root(jj, two_n, inverse);
        }
        @memset(kernel, .{ .re = 0, .im = 0 });
        const inv_m: f32 = @floatCast(1.0 / @as(f64, @floatFromInt(m)));
        kernel[0] = scl(conj(chirp[0]), inv_m);
        for (1..n) |j| {
            kernel[j] = scl(conj(chirp[j]), inv_m);
            kernel[m - j] = kernel[j];
        }
        const tmp = try alloc(sub.scratch);
        defer a_.free(tmp);
        sub.run(C, kernel, tmp, false);
        p.* = .{ .n = n, .inverse = inverse, .real = false, .body = .{ .bluestein = .{ .m = m, .sub = sub, .chirp = chirp, .kernel = kernel } }, .scratch = 2 * m + sub.scratch };
        return p;
    }
    // Factor: 4s first, then a 2, 3s, 5s, then the other primes.
    var radices: [64]u32 = undefined;
    var nr: usize = 0;
    var rest = n;
    while (rest % 4 == 0) : (rest /= 4) {
        radices[nr] = 4;
        nr += 1;
    }
    var f: usize = 2;
    while (rest > 1) {
        while (rest % f == 0) {
            radices[nr] = @intCast(f);
            nr += 1;
            rest /= f;
        }
        f += 1;
    }
    const stages = a_.alloc(Stage, nr) catch return oom();
    var built: usize = 0;
    errdefer {
        for (stages[0..built]) |s| {
            a_.free(s.tw);
            a_.free(s.roots);
        }
        a_.free(stages);
    }
    var len = n; // the current sub-transform length
    var s: usize = 1;
    for (radices[0..nr], 0..) |r, i| {
        const m = len / r;
        const tw = try alloc(m * (r - 1));
        errdefer a_.free(tw);
        const roots = try alloc(r);
        for (0..m) |pp| {
            for (1..r) |k| tw[pp * (r - 1) + k - 1] = root(@as(u64, pp) * k, len, inverse);
        }
        for (0..r) |k| roots[k] = root(k, r, inverse);
        stages[i] = .{ .radix = r, .m = m, .s = s, .tw = tw, .roots = roots };
        built += 1;
        s *= r;
        len = m;
    }
    p.* = .{ .n = n, .inverse = inverse, .real = false, .body = .{ .stockham = stages }, .scratch = n };
    return p;
}

fn buildReal(n: usize, inverse: bool) error{OutOfMemory}!*Plan {
    const p = a_.create(Plan) catch return oom();
    errdefer a_.destroy(p);
    if (n % 2 == 1) {
        const full = try buildComplex(n, inverse);
        p.* = .{ .n = n, .inverse = inverse, .real = true, .body = .{ .real_odd = full }, .scratch = full.scratch + 2 * n };
        return p;
    }
    const h = n / 2;
    const half = try buildComplex(h, inverse);
    errdefer half.deinit();
    const tw = try alloc(h + 1);
    for (0..h + 1) |k| tw[k] = root(k, n, inverse);
    p.* = .{ .n = n, .inverse = inverse, .real = true, .body = .{ .real_even = .{ .half = half, .tw = tw } }, .scratch = half.scratch + 2 * (h + 1) };
    return p;
}

var cache_mutex: std.Thread.Mutex = .{};
var cache: [max_cached_plans]*Plan = undefined;
var cache_len: usize = 0;

/// A plan for (n, inverse, real): cached (owned = false) or built for this call only.
const PlanRef = struct {
    plan: *Plan,
    owned: bool,
    fn release(r: PlanRef) void {
        if (r.owned) r.plan.deinit();
    }
};

fn getPlan(n: usize, inverse: bool, real: bool) error{OutOfMemory}!PlanRef {
    cache_mutex.lock();
    defer cache_mutex.unlock();
    for (cache[0..cache_len]) |p| {
        if (p.n == n and p.inverse == inverse and p.real == real) return .{ .plan = p, .owned = false };
    }
    const p = if (real) try buildReal(n, inverse) else try buildComplex(n, inverse);
    if (cache_len < max_cached_plans) {
        cache[cache_len] = p;
        cache_len += 1;
        return .{ .plan = p, .owned = false };
    }
    return .{ .plan = p, .owned = true };
}

// ---------------------------------------------------------------------------------------------
// Butterflies and the Stockham stages

/// One stage: for each sequence q < s and p < m, the radix-R DFT of x[q + s(p + j m)], j < R,
/// times the twiddles, goes to y[q + s(R p + k)].
fn stageFixed(comptime T: type, comptime R: usize, comptime inv: bool, x: [*]const T, y: [*]T, st: Stage, p0: usize, p1: usize, q0: usize, q1: usize) void {
    const m = st.m;
    const s = st.s;
    const sgn: f32 = if (inv) 1 else -1;
    const c3: f32 = -0.5;
    const s3: f32 = sgn * 0.86602540378443864676;
    const c51: f32 = 0.30901699437494742410; // cos(2 pi / 5)
    const c52: f32 = -0.80901699437494742410; // cos(4 pi / 5)
    const s51: f32 = sgn * 0.95105651629515357212;
    const s52: f32 = sgn * 0.58778525229247312917;
    for (p0..p1) |p| {
        const w = st.tw.ptr + p * (R - 1);
        const xin = x + s * p;
        const yout = y + s * R * p;
        for (q0..q1) |q| {
            var a: [R]T = undefined;
            inline for (0..R) |j| a[j] = xin[q + s * j * m];
            var b: [R]T = undefined;
            switch (R) {
                2 => {
                    b[0] = add(a[0], a[1]);
                    b[1] = csub(a[0], a[1]);
                },
                3 => {
                    const t1 = add(a[1], a[2]);
                    const t2 = add(a[0], scl(t1, c3));
                    const t3 = mulI(scl(csub(a[1], a[2]), s3), 1);
                    b[0] = add(a[0], t1);
                    b[1] = add(t2, t3);
                    b[2] = csub(t2, t3);
                },
                4 => {
                    const t0 = add(a[0], a[2]);
                    const t1 = csub(a[0], a[2]);
                    const t2 = add(a[1], a[3]);
                    const t3 = mulI(csub(a[1], a[3]), sgn);
                    b[0] = add(t0, t2);
                    b[2] = csub(t0, t2);
                    b[1] = add(t1, t3);
                    b[3] = csub(t1, t3);
                },
                5 => {
                    const b1 = add(a[1], a[4]);
                    const b2 = add(a[2], a[3]);
                    const d1 = csub(a[1], a[4]);
                    const d2 = csub(a[2], a[3]);
                    const e1 = add(a[0], add(scl(b1, c51), scl(b2, c52)));
                    const e2 = add(a[0], add(scl(b1, c52), scl(b2, c51)));
                    const f1 = mulI(add(scl(d1, s51), scl(d2, s52)), 1);
                    const f2 = mulI(csub(scl(d1, s52), scl(d2, s51)), 1);
                    b[0] = add(a[0], add(b1, b2));
                    b[1] = add(e1, f1);
                    b[4] = csub(e1, f1);
                    b[2] = add(e2, f2);
                    b[3] = csub(e2, f2);
                },
                else => @compileError("radix"),
            }
            yout[q] = b[0];
            inline for (1..R) |k| yout[q + s * k] = mulW(b[k], w[k - 1]);
        }
    }
}

/// The generic odd-radix stage, for primes 29 .. max_generic_radix (7 .. 23 run `stageOdd`, the
/// same arithmetic unrolled): outputs k and R - k share
/// the sums u_j = a_j + a_{R-j} (times cosines) and v_j = a_j - a_{R-j} (times sines), a
/// quarter of the direct DFT's multiplications.
fn stageGeneric(comptime T: type, x: [*]const T, y: [*]T, st: Stage, p0: usize, p1: usize, q0: usize, q1: usize) void {
    const r = st.radix;
    const h = (r - 1) / 2;
    const m = st.m;
    const s = st.s;
    var a0: T = undefined;
    var u: [max_generic_radix / 2 + 1]T = undefined;
    var v: [max_generic_radix / 2 + 1]T = undefined;
    for (p0..p1) |p| {
        const w = st.tw.ptr + p * (r - 1);
        for (q0..q1) |q| {
            a0 = x[q + s * p];
            var sum = a0;
            for (1..h + 1) |j| {
                const aj = x[q + s * (p + j * m)];
                const ak = x[q + s * (p + (r - j) * m)];
                u[j] = add(aj, ak);
                v[j] = csub(aj, ak);
                sum = add(sum, u[j]);
            }
            const out = y + s * r * p + q;
            out[0] = sum;
            for (1..h + 1) |k| {
                var re = a0;
                var im = czero(T);
                var idx: usize = 0;
                for (1..h + 1) |j| {
                    idx += k;
                    if (idx >= r) idx -= r;
                    const c = st.roots[idx];
                    re = add(re, scl(u[j], c.re));
                    im = add(im, scl(v[j], c.im));
                }
                const ib = mulI(im, 1);
                out[s * k] = mulW(add(re, ib), w[k - 1]);
                out[s * (r - k)] = mulW(csub(re, ib), w[r - k - 1]);
            }
        }
    }
}

/// The odd-prime stage of `stageGeneric` unrolled for one radix R: the same pairing (outputs k
/// and R - k from u_j = a_j + a_{R-j} times cos(2 pi jk / R) and v_j = a_j - a_{R-j} times
/// sin), (R - 1)^2 real multiplications per butterfly, with the cosines and sines as constants
/// (rounded from float64 as `root` rounds them) and every u_j, v_j held in registers.
fn stageOdd(comptime T: type, comptime R: usize, comptime inv: bool, x: [*]const T, y: [*]T, st: Stage, p0: usize, p1: usize, q0: usize, q1: usize) void {
    const h = (R - 1) / 2;
    const cs: [h + 1][h + 1]f32, const sn: [h + 1][h + 1]f32 = comptime blk: {
        @setEvalBranchQuota(100000);
        var c: [h + 1][h + 1]f32 = undefined;
        var si: [h + 1][h + 1]f32 = undefined;
        const sg: f64 = if (inv) 1 else -1;
        for (1..h + 1) |k| for (1..h + 1) |j| {
            const ang = 2.0 * std.math.pi * @as(f64, @floatFromInt((j * k) % R)) / @as(f64, @floatFromInt(R));
            c[k][j] = @floatCast(@cos(ang));
            si[k][j] = @floatCast(sg * @sin(ang));
        };
        break :blk .{ c, si };
    };
    const m = st.m;
    const s = st.s;
    for (p0..p1) |p| {
        const w = st.tw.ptr + p * (R - 1);
        const xin = x + s * p;
        const yout = y + s * R * p;
        for (q0..q1) |q| {
            const a0 = xin[q];
            var u: [h + 1]T = undefined;
            var v: [h + 1]T = undefined;
            var sum = a0;
            inline for (1..h + 1) |j| {
                const aj = xin[q + s * j * m];
                const ak = xin[q + s * (R - j) * m];
                u[j] = add(aj, ak);
                v[j] = csub(aj, ak);
                sum = add(sum, u[j]);
            }
            yout[q] = sum;
            inline for (1..h + 1) |k| {
                var re = add(a0, scl(u[1], cs[k][1]));
                var im = scl(v[1], sn[k][1]);
                inline for (2..h + 1) |j| {
                    re = add(re, scl(u[j], cs[k][j]));
                    im = add(im, scl(v[j], sn[k][j]));
                }
                const ib = mulI(im, 1);
                yout[q + s * k] = mulW(add(re, ib), w[k - 1]);
                yout[q + s * (R - k)] = mulW(csub(re, ib), w[R - k - 1]);
            }
        }
    }
}

fn runStage(comptime T: type, inverse: bool, x: [*]const T, y: [*]T, st: Stage, p0: usize, p1: usize, q0: usize, q1: usize) void {
    switch (st.radix) {
        inline 2, 3, 4, 5 => |r| if (inverse) stageFixed(T, r, true, x, y, st, p0, p1, q0, q1) else stageFixed(T, r, false, x, y, st, p0, p1, q0, q1),
        inline 7, 11, 13, 17, 19, 23 => |r| if (inverse) stageOdd(T, r, true, x, y, st, p0, p1, q0, q1) else stageOdd(T, r, false, x, y, st, p0, p1, q0, q1),
        else => stageGeneric(T, x, y, st, p0, p1, q0, q1),
    }
}

/// Below this many elements a stage runs on one thread.
const par_min = 1 << 14;

const StageJob = struct {
    inverse: bool,
    x: [*]const C,
    y: [*]C,
    st: Stage,
    /// Split over p (else over q).
    over_p: bool,
    fn range(j: *const StageJob, a: usize, b: usize) void {
        if (j.over_p) runStage(C, j.inverse, j.x, j.y, j.st, a, b, 0, j.st.s) else runStage(C, j.inverse, j.x, j.y, j.st, 0, j.st.m, a, b);
    }
};

fn runStockham(comptime T: type, inverse: bool, stages: []const Stage, data: []T, work: []T, par: bool) void {
    var x: [*]T = data.ptr;
    var y: [*]T = work.ptr;
    const threaded = T == C and par and data.len >= par_min and pool.threads() > 1;
    for (stages) |st| {
        if (T == C and threaded) {
            const job = StageJob{ .inverse = inverse, .x = x, .y = y, .st = st, .over_p = st.m >= st.s };
            const items = if (job.over_p) st.m else st.s;
            pool.parallelFor(items, @max(1, items / (4 * pool.threads())), &job, StageJob.range);
        } else runStage(T, inverse, x, y, st, 0, st.m, 0, st.s);
        const t = x;
        x = y;
        y = t;
    }
    if (x != data.ptr) @memcpy(data, x[0..data.len]);
}

fn runBluestein(comptime T: type, n: usize, b: Blue, data: []T, scratch: []T, par: bool) void {
    const m = b.m;
    const buf = scratch[0..m];
    const rest = scratch[m..];
    for (0..n) |j| buf[j] = mulW(data[j], b.chirp[j]);
    @memset(buf[n..], czero(T));
    b.sub.run(T, buf, rest, par);
    // Multiply by the kernel and conjugate: the inverse transform as conj(FFT(conj(.))).
    for (buf, b.kernel) |*v, k| v.* = conj(mulW(v.*, k));
    b.sub.run(T, buf, rest, par);
    for (0..n) |k| data[k] = mulW(conj(buf[k]), b.chirp[k]);
}

// ---------------------------------------------------------------------------------------------
// Line transforms: a gathered line in `buf` to the output line.

/// The line layout of one pass over one axis.
const Pass = struct {
    kind: Kind,
    plan: *const Plan,
    /// Source: base pointer, element strides (in elements of its dtype), length on the axis.
    src: [*]const u8,
    src_real: bool,
    src_strides: [max_ndim]i64,
    n_in: usize,
    dst: [*]u8,
    dst_real: bool,
    dst_strides: [max_ndim]i64,
    n_out: usize,
    /// The iteration shape (the dims of the other axes; the axis itself is skipped).
    shape: Shape,
    axis: usize,
    lines: usize,
    scale: f32,
    /// Per-worker scratch: `per` complex elements each.
    scratch: []C,
    /// The batched path's per-worker scratch (`per` elements each).
    vscratch: []VC = &.{},
    /// Set on the column pass of a four-step transform: multiply by its twiddles.
    four: ?*const Four = null,
    per: usize,
    /// Few lines: each transform splits its stages over the pool instead.
    par: bool = false,
    next_slot: std.atomic.Value(usize) = .init(0),
};

fn lineOffsets(ps: *const Pass, line: usize) [2]i64 {
    var rem = line;
    var so: i64 = 0;
    var d_off: i64 = 0;
    var d = ps.shape.ndim;
    while (d > 0) {
        d -= 1;
        if (d == ps.axis) continue;
        const dim: usize = @intCast(ps.shape.dims[d]);
        const i: i64 = @intCast(rem % dim);
        rem /= dim;
        so += i * ps.src_strides[d];
        d_off += i * ps.dst_strides[d];
    }
    return .{ so, d_off };
}

inline fn ptrAt(comptime T: type, base: anytype, i: i64) *T {
    const addr: isize = @as(isize, @bitCast(@intFromPtr(base))) + @as(isize, @intCast(i)) * @sizeOf(T);
    return @ptrFromInt(@as(usize, @bitCast(addr)));
}

/// The n reals of a real line gathered into a complex buffer: real i is the real part of
/// element i / 2 when i is even, its imaginary part when odd (the float view of the buffer).
inline fn realAt(comptime T: type, buf: []const T, i: usize) Fl(T) {
    return if (i % 2 == 0) buf[i / 2].re else buf[i / 2].im;
}

/// r2c of a gathered line (its n reals as `realAt` reads them): the n/2 + 1 outputs, unscaled.
fn r2cCompute(comptime T: type, plan: *const Plan, lbuf: []T, aux: []T, pscr: []T, par: bool) []T {
    const n = plan.n;
    switch (plan.body) {
        .real_odd => |full| {
            // (x, 0) in aux, the full complex transform, the first n/2 + 1 outputs.
            for (0..n) |i| aux[i] = .{ .re = realAt(T, lbuf, i), .im = spl(Fl(T), 0) };
            full.run(T, aux[0..n], pscr, par);
            return aux[0 .. n / 2 + 1];
        },
        .real_even => |re| {
            const h = n / 2;
            // z[j] = x[2j] + i x[2j+1]: the gathered reals already are that layout.
            const z = lbuf[0..h];
            re.half.run(T, z, pscr, par);
            for (0..h + 1) |k| {
                const zk = z[if (k == h) 0 else k];
                const zc = conj(z[if (k == 0) 0 else h - k]);
                const e = scl(add(zk, zc), 0.5);
                const o = mulI(scl(csub(zk, zc), 0.5), -1); // (zk - zc) / (2i)
                aux[k] = add(e, mulW(o, re.tw[k]));
            }
            return aux[0 .. h + 1];
        },
        else => unreachable,
    }
}

/// c2r of a gathered line of n/2 + 1 complex values: the n reals, unscaled, as the real parts
/// of the returned elements (false) or as `realAt` reads them (true).
fn c2rCompute(comptime T: type, plan: *const Plan, lbuf: []T, aux: []T, pscr: []T, par: bool) struct { []T, bool } {
    const n = plan.n;
    const z0 = spl(Fl(T), 0);
    switch (plan.body) {
        .real_odd => |full| {
            // The Hermitian extension (imaginary part of the DC term dropped).
            aux[0] = .{ .re = lbuf[0].re, .im = z0 };
            for (1..(n - 1) / 2 + 1) |k| {
                aux[k] = lbuf[k];
                aux[n - k] = conj(lbuf[k]);
            }
            full.run(T, aux[0..n], pscr, par);
            return .{ aux[0..n], false };
        },
        .real_even => |re| {
            const h = n / 2;
            // The DC and Nyquist terms count by their real parts only.
            lbuf[0].im = z0;
            lbuf[h].im = z0;
            for (0..h) |k| {
                const xk = lbuf[k];
                const xc = conj(lbuf[h - k]);
                aux[k] = add(add(xk, xc), mulI(mulW(csub(xk, xc), re.tw[k]), 1));
            }
            re.half.run(T, aux[0..h], pscr, par);
            return .{ aux[0..h], true };
        },
        else => unreachable,
    }
}

/// One line at a time (long lines, or too few lines to batch).
fn passRange(ps: *Pass, start: usize, end: usize) void {
    const slot = ps.next_slot.fetchAdd(1, .monotonic);
    const mine = ps.scratch[slot * ps.per .. (slot + 1) * ps.per];
    const plan = ps.plan;
    const n = plan.n;
    const lbuf = mine[0 .. n + 2];
    const aux = mine[n + 2 .. 2 * n + 4];
    const pscr = mine[2 * n + 4 ..];
    const sst = ps.src_strides[ps.axis];
    const dst_st = ps.dst_strides[ps.axis];
    const sc = ps.scale;
    for (start..end) |line| {
        const offs = lineOffsets(ps, line);
        // Gather.
        switch (ps.kind) {
            .c2c, .c2r => {
                for (0..ps.n_in) |i| lbuf[i] = ptrAt(C, ps.src, offs[0] + @as(i64, @intCast(i)) * sst).*;
            },
            .r2c => {
                const f: []f32 = std.mem.bytesAsSlice(f32, std.mem.sliceAsBytes(lbuf));
                for (0..ps.n_in) |i| f[i] = ptrAt(f32, ps.src, offs[0] + @as(i64, @intCast(i)) * sst).*;
            },
        }
        // Transform and scatter.
        switch (ps.kind) {
            .c2c => {
                plan.run(C, lbuf[0..n], pscr, ps.par);
                for (0..n) |k| ptrAt(C, ps.dst, offs[1] + @as(i64, @intCast(k)) * dst_st).* = scl(lbuf[k], sc);
            },
            .r2c => {
                const res = r2cCompute(C, plan, lbuf, aux, pscr, ps.par);
                for (res, 0..) |v, k| ptrAt(C, ps.dst, offs[1] + @as(i64, @intCast(k)) * dst_st).* = scl(v, sc);
            },
            .c2r => {
                const res, const il = c2rCompute(C, plan, lbuf, aux, pscr, ps.par);
                for (0..n) |t| {
                    const v = if (il) realAt(C, res, t) else res[t].re;
                    ptrAt(f32, ps.dst, offs[1] + @as(i64, @intCast(t)) * dst_st).* = v * sc;
                }
            },
        }
    }
}

const V2 = @Vector(2 * L, f32);
const even_idx: [L]i32 = blk: {
    var m: [L]i32 = undefined;
    for (0..L) |i| m[i] = 2 * i;
    break :blk m;
};
const odd_idx: [L]i32 = blk: {
    var m: [L]i32 = undefined;
    for (0..L) |i| m[i] = 2 * i + 1;
    break :blk m;
};
const inter_idx: [2 * L]i32 = blk: {
    var m: [2 * L]i32 = undefined;
    for (0..2 * L) |j| m[j] = if (j % 2 == 0) j / 2 else -1 - @as(i32, j / 2);
    break :blk m;
};

/// Whether the lines of a full superblock start at consecutive elements (offs[l] = offs[0] + l).
fn consecutive(offs: []const i64) bool {
    for (offs, 0..) |o, l| if (o != offs[0] + @as(i64, @intCast(l))) return false;
    return true;
}

/// Lane blocks gathered together: a strided axis reads G L adjacent elements (256 bytes of
/// complex64 for L = 8) per step, so power-of-two strides do not thrash a cache set.
const G = 4;

/// `G L` lines at a time in SIMD lanes: superblock b holds lines [b G L, (b + 1) G L), as G
/// groups of `L` lanes. Each line is gathered into one lane of a `VC` buffer and the plan runs
/// once per group on the vectors.
fn passBlocks(ps: *Pass, start: usize, end: usize) void {
    const slot = ps.next_slot.fetchAdd(1, .monotonic);
    const mine = ps.vscratch[slot * G * ps.per .. (slot + 1) * G * ps.per];
    const plan = ps.plan;
    const n = plan.n;
    const per = ps.per;
    // Flat float views: element i of lane l of group g is re at [g per 2L + i 2L + l], im L on.
    const lf: [*]f32 = @ptrCast(mine.ptr);
    const gs = per * 2 * L; // floats per group
    const sst = ps.src_strides[ps.axis];
    const dst_st = ps.dst_strides[ps.axis];
    const sc = ps.scale;
    const LB = G * L;
    for (start..end) |blk| {
        const l0 = blk * LB;
        const nl = @min(LB, ps.lines - l0);
        const ng = (nl + L - 1) / L;
        var so: [LB]i64 = undefined;
        var dof: [LB]i64 = undefined;
        for (0..nl) |l| {
            const offs = lineOffsets(ps, l0 + l);
            so[l] = offs[0];
            dof[l] = offs[1];
        }
        // Lanes past the last line compute on zeros.
        if (nl < ng * L) @memset(mine[(ng - 1) * per ..][0 .. n + 2], czero(VC));
        // Gather: a line per lane. Along the line first when its elements are adjacent.
        const along_src = nl < 2 or @abs(sst) <= @abs(so[1] - so[0]);
        switch (ps.kind) {
            .c2c, .c2r => {
                if (along_src) {
                    for (0..nl) |ll| {
                        const base = (ll / L) * gs + ll % L;
                        for (0..ps.n_in) |i| {
                            const c = ptrAt(C, ps.src, so[ll] + @as(i64, @intCast(i)) * sst).*;
                            lf[base + i * 2 * L] = c.re;
                            lf[base + i * 2 * L + L] = c.im;
                        }
                    }
                } else if (nl == LB and consecutive(so[0..LB])) {
                    // G L adjacent complex numbers per step: split into re/im vectors.
                    for (0..ps.n_in) |i| {
                        const src: [*]const f32 = @ptrCast(ptrAt(C, ps.src, so[0] + @as(i64, @intCast(i)) * sst));
                        inline for (0..G) |g| {
                            const v: V2 = src[g * 2 * L ..][0 .. 2 * L].*;
                            mine[g * per + i] = .{ .re = @shuffle(f32, v, undefined, even_idx), .im = @shuffle(f32, v, undefined, odd_idx) };
                        }
                    }
                } else {
                    for (0..ps.n_in) |i| for (0..nl) |ll| {
                        const c = ptrAt(C, ps.src, so[ll] + @as(i64, @intCast(i)) * sst).*;
                        const at = (ll / L) * gs + i * 2 * L + ll % L;
                        lf[at] = c.re;
                        lf[at + L] = c.im;
                    };
                }
            },
            .r2c => {
                // real i is element i / 2's re (even i) or im (odd i).
                if (along_src) {
                    for (0..nl) |ll| {
                        const base = (ll / L) * gs + ll % L;
                        for (0..ps.n_in) |i| {
                            lf[base + (i / 2) * 2 * L + (i % 2) * L] = ptrAt(f32, ps.src, so[ll] + @as(i64, @intCast(i)) * sst).*;
                        }
                    }
                } else {
                    for (0..ps.n_in) |i| for (0..nl) |ll| {
                        lf[(ll / L) * gs + (i / 2) * 2 * L + (i % 2) * L + ll % L] = ptrAt(f32, ps.src, so[ll] + @as(i64, @intCast(i)) * sst).*;
                    };
                }
            },
        }
        // Transform each group; `rs` its results, `il` (c2r) the real layout.
        var rs: [G][*]const f32 = undefined;
        var rlen: usize = 0;
        var il = false;
        for (0..ng) |g| {
            const gb = mine[g * per ..][0..per];
            const lbuf = gb[0 .. n + 2];
            const aux = gb[n + 2 .. 2 * n + 4];
            const pscr = gb[2 * n + 4 ..];
            const res: []VC = switch (ps.kind) {
                .c2c => blk2: {
                    plan.run(VC, lbuf[0..n], pscr, false);
                    break :blk2 lbuf[0..n];
                },
                .r2c => r2cCompute(VC, plan, lbuf, aux, pscr, false),
                .c2r => blk2: {
                    const t = c2rCompute(VC, plan, lbuf, aux, pscr, false);
                    il = t[1];
                    break :blk2 t[0];
                },
            };
            if (ps.four) |f| {
                // The four-step's twiddles: W_n^(k1 j2), lane l of j2 = (blk G + g) L + l.
                const nb = (f.n2 + TW - 1) / TW;
                const j0 = (blk * G + g) * L;
                const at = j0 % TW;
                for (res, 0..) |*v, k1| {
                    const w = VC{ .re = f.wb[k1].re[at..][0..L].*, .im = f.wb[k1].im[at..][0..L].* };
                    v.* = mul(v.*, mulW(w, f.wa[k1 * nb + j0 / TW]));
                }
            }
            if (sc != 1) {
                for (res) |*v| v.* = scl(v.*, sc);
            }
            // Results live in the group's buffer: index them from the group's base.
            rs[g] = @ptrCast(res.ptr);
            rlen = res.len;
        }
        const along_dst = nl < 2 or @abs(dst_st) <= @abs(dof[1] - dof[0]);
        switch (ps.kind) {
            .c2c, .r2c => {
                if (along_dst) {
                    for (0..nl) |ll| {
                        const rf = rs[ll / L] + ll % L;
                        for (0..rlen) |k| {
                            ptrAt(C, ps.dst, dof[ll] + @as(i64, @intCast(k)) * dst_st).* = .{ .re = rf[k * 2 * L], .im = rf[k * 2 * L + L] };
                        }
                    }
                } else if (nl == LB and consecutive(dof[0..LB])) {
                    for (0..rlen) |k| {
                        const dst: [*]f32 = @ptrCast(ptrAt(C, ps.dst, dof[0] + @as(i64, @intCast(k)) * dst_st));
                        inline for (0..G) |g| {
                            const v: *const VC = @ptrCast(@alignCast(rs[g] + k * 2 * L));
                            const w: [2 * L]f32 = @shuffle(f32, v.re, v.im, inter_idx);
                            dst[g * 2 * L ..][0 .. 2 * L].* = w;
                        }
                    }
                } else {
                    for (0..rlen) |k| for (0..nl) |ll| {
                        const rf = rs[ll / L] + ll % L;
                        ptrAt(C, ps.dst, dof[ll] + @as(i64, @intCast(k)) * dst_st).* = .{ .re = rf[k * 2 * L], .im = rf[k * 2 * L + L] };
                    };
                }
            },
            .c2r => {
                // real t of a lane: interleaved: element t / 2, re or im by parity; else element t's re.
                for (0..nl) |ll| {
                    const rf = rs[ll / L] + ll % L;
                    for (0..n) |t| {
                        const idx = if (il) (t / 2) * 2 * L + (t % 2) * L else t * 2 * L;
                        ptrAt(f32, ps.dst, dof[ll] + @as(i64, @intCast(t)) * dst_st).* = rf[idx];
                    }
                }
            },
        }
    }
}

/// Largest per-worker scratch of the batched path (its buffers stay in the L2 cache).
const batch_max_bytes = 4 << 20;

fn runFour(f: Four, data: []C, scratch: []C) void {
    const n = data.len;
    const y = scratch[0..n];
    // The workers' batched scratch, aligned for VC.
    const rest = scratch[n..];
    const addr = std.mem.alignForward(usize, @intFromPtr(rest.ptr), 64);
    const vbase: [*]VC = @ptrFromInt(addr);
    const workers = pool.threads();
    const vs = vbase[0 .. workers * G * f.per];
    var shape = Shape{ .ndim = 2 };
    shape.dims[0] = @intCast(f.n1);
    shape.dims[1] = @intCast(f.n2);
    var rows: [max_ndim]i64 = undefined;
    rows[0] = @intCast(f.n2);
    rows[1] = 1;
    var cols: [max_ndim]i64 = undefined;
    cols[0] = 1;
    cols[1] = @intCast(f.n1);
    // Columns: data (n1 x n2) -> y (n1 x n2), twiddled.
    var ps = Pass{ .kind = .c2c, .plan = f.p1, .src = @ptrCast(data.ptr), .src_real = false, .src_strides = rows, .n_in = f.n1, .dst = @ptrCast(y.ptr), .dst_real = false, .dst_strides = rows, .n_out = f.n1, .shape = shape, .axis = 0, .lines = f.n2, .scale = 1, .scratch = &.{}, .per = f.per, .vscratch = vs, .four = &f };
    const blocks1 = (f.n2 + G * L - 1) / (G * L);
    pool.parallelFor(blocks1, 1, &ps, passBlocks);
    // Rows: y -> data, transposed.
    var ps2 = Pass{ .kind = .c2c, .plan = f.p2, .src = @ptrCast(y.ptr), .src_real = false, .src_strides = rows, .n_in = f.n2, .dst = @ptrCast(data.ptr), .dst_real = false, .dst_strides = cols, .n_out = f.n2, .shape = shape, .axis = 1, .lines = f.n1, .scale = 1, .scratch = &.{}, .per = f.per, .vscratch = vs };
    const blocks2 = (f.n1 + G * L - 1) / (G * L);
    pool.parallelFor(blocks2, 1, &ps2, passBlocks);
}

/// Run one pass over all lines of `axis`.
fn runPass(ps: *Pass) error{OutOfMemory}!void {
    if (ps.lines == 0) return;
    const n = ps.plan.n;
    ps.per = 2 * n + 4 + ps.plan.scratch;
    ps.next_slot = .init(0);
    ps.par = ps.lines < pool.threads();
    if (!ps.par and ps.lines >= 2 and G * ps.per * @sizeOf(VC) <= batch_max_bytes and ps.plan.batchable()) {
        const blocks = (ps.lines + G * L - 1) / (G * L);
        const grain = @max(1, 32768 / @max(n * G * L, 1));
        const workers = @min(pool.threads(), @max(1, blocks / grain));
        ps.vscratch = a_.alignedAlloc(VC, .@"64", G * ps.per * workers) catch return oom();
        defer a_.free(ps.vscratch);
        pool.parallelFor(blocks, grain, ps, passBlocks);
        return;
    }
    const grain = @max(1, 32768 / @max(n, 1));
    const workers = @min(pool.threads(), @max(1, ps.lines / grain));
    ps.scratch = a_.alloc(C, ps.per * workers) catch return oom();
    defer a_.free(ps.scratch);
    pool.parallelFor(ps.lines, grain, ps, passRange);
}

fn linesOf(shape: *const Shape, axis: usize) usize {
    var l: usize = 1;
    for (shape.slice(), 0..) |d, i| {
        if (i != axis) l *= @intCast(d);
    }
    return l;
}

// ---------------------------------------------------------------------------------------------
// The entry: one pass over every line of an axis

/// One pass of prims/fft.zig's eval across the kernel objects' C ABI: every line of `axis` of
/// an array of shape dims[0..ndim] transformed from src (complex64, or float32 for r2c) to dst
/// (complex64, or float32 for c2r), strides in elements, n_in values read per line (cropped or
/// zero-padded to the transform's length), n_out written, each times `scale`.
pub const PassCtx = extern struct {
    kind: Kind,
    inverse: bool,
    src: [*]const u8,
    src_strides: [max_ndim]i64,
    n_in: usize,
    dst: [*]u8,
    dst_strides: [max_ndim]i64,
    n_out: usize,
    ndim: usize,
    dims: [max_ndim]i32,
    axis: usize,
    scale: f32,
};

pub const PassFn = fn (*const PassCtx) callconv(.c) bool;

/// False when memory for a plan or the scratch could not be had (nothing written then).
pub fn passEntry(c: *const PassCtx) callconv(.c) bool {
    passImpl(c) catch return false;
    return true;
}

/// The pass at the CPU's level, over the pool.
pub fn pass(c: *const PassCtx) error{OutOfMemory}!void {
    const ok = if (comptime cpu.dispatch) cpu.pick(PassFn, "fft_pass")(c) else passEntry(c);
    if (!ok) return error.OutOfMemory;
}

fn passImpl(c: *const PassCtx) error{OutOfMemory}!void {
    var shape = Shape{ .ndim = @intCast(c.ndim) };
    shape.dims = c.dims;
    const n_logical: usize = switch (c.kind) {
        .c2c, .c2r => c.n_out,
        .r2c => c.n_in,
    };
    const ref = try getPlan(n_logical, c.inverse, c.kind != .c2c);
    defer ref.release();
    var ps = Pass{
        .kind = c.kind,
        .plan = ref.plan,
        .src = c.src,
        .src_real = c.kind == .r2c,
        .src_strides = c.src_strides,
        .n_in = c.n_in,
        .dst = c.dst,
        .dst_real = c.kind == .c2r,
        .dst_strides = c.dst_strides,
        .n_out = c.n_out,
        .shape = shape,
        .axis = c.axis,
        .lines = linesOf(&shape, c.axis),
        .scale = c.scale,
        .scratch = &.{},
        .per = 0,
    };
    try runPass(&ps);
}

// ---------------------------------------------------------------------------------------------
// Tests: every plan shape against a direct DFT in float64.

const testing = std.testing;

fn naiveDft(x: []const C, out: []C, inverse: bool) void {
    const n = x.len;
    const sgn: f64 = if (inverse) 1 else -1;
    for (0..n) |k| {
        var re: f64 = 0;
        var im: f64 = 0;
        for (0..n) |j| {
            const ang = sgn * 2.0 * std.math.pi * @as(f64, @floatFromInt((j * k) % n)) / @as(f64, @floatFromInt(n));
            const c = @cos(ang);
            const sn = @sin(ang);
            re += x[j].re * c - x[j].im * sn;
            im += x[j].re * sn + x[j].im * c;
        }
        out[k] = .{ .re = @floatCast(re), .im = @floatCast(im) };
    }
}

test "complex plans match a direct DFT (radix 2, 3, 4, 5, generic, Bluestein)" {
    var prng = std.Random.DefaultPrng.init(7);
    const rnd = prng.random();
    const sizes = [_]usize{ 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17, 19, 23, 25, 29, 30, 31, 49, 60, 61, 64, 67, 77, 97, 100, 105, 121, 128, 143, 243, 256, 323, 360, 437, 1001, 1009 };
    for (sizes) |n| {
        for ([_]bool{ false, true }) |inv| {
            const x = try a_.alloc(C, n);
            defer a_.free(x);
            for (x) |*v| v.* = .{ .re = rnd.floatNorm(f32), .im = rnd.floatNorm(f32) };
            const want = try a_.alloc(C, n);
            defer a_.free(want);
            naiveDft(x, want, inv);
            const plan = try buildComplex(n, inv);
            defer plan.deinit();
            const scr = try a_.alloc(C, plan.scratch);
            defer a_.free(scr);
            plan.run(C, x, scr, n > 300);
            const tol: f32 = 1e-4 * @sqrt(@as(f32, @floatFromInt(n))) * @log2(@as(f32, @floatFromInt(n + 1)) + 1);
            for (x, want) |g, w| {
                try testing.expectApproxEqAbs(w.re, g.re, tol);
                try testing.expectApproxEqAbs(w.im, g.im, tol);
            }
        }
    }
}

test "smooth235 and largestPrimeFactor" {
    try testing.expectEqual(@as(usize, 2025), smooth235(2017));
    try testing.expectEqual(@as(usize, 1), smooth235(1));
    try testing.expectEqual(@as(usize, 1009), largestPrimeFactor(2018));
    try testing.expectEqual(@as(usize, 7), largestPrimeFactor(105));
}

test "a stage split over the pool gives the same bits as one thread" {
    // Stockham plans (these lengths would run four-step otherwise).
    four_min_once.call();
    const saved = four_min;
    defer four_min = saved;
    four_min = std.math.maxInt(usize);
    var prng = std.Random.DefaultPrng.init(9);
    const rnd = prng.random();
    for ([_]usize{ 1 << 15, 3 * 5 * 7 * 11 * 13 * 2, 20011 }) |n| {
        const plan = try buildComplex(n, false);
        defer plan.deinit();
        const a = try a_.alloc(C, n);
        defer a_.free(a);
        const b = try a_.alloc(C, n);
        defer a_.free(b);
        for (a, b) |*u, *v| {
            u.* = .{ .re = rnd.floatNorm(f32), .im = rnd.floatNorm(f32) };
            v.* = u.*;
        }
        const scr = try a_.alloc(C, plan.scratch);
        defer a_.free(scr);
        plan.run(C, a, scr, false);
        plan.run(C, b, scr, true);
        try testing.expectEqualSlices(u8, std.mem.sliceAsBytes(a), std.mem.sliceAsBytes(b));
    }
}

test "the batched (SIMD lanes) path gives each line the bits of the one-line path" {
    var prng = std.Random.DefaultPrng.init(11);
    const rnd = prng.random();
    for ([_]usize{ 1, 2, 6, 16, 30, 64, 105, 128, 143, 250, 323, 1000, 1001, 1009, 1024 }) |n| {
        for ([_]bool{ false, true }) |inv| {
            // complex
            const plan = try buildComplex(n, inv);
            defer plan.deinit();
            const lines = try a_.alloc(C, n * L);
            defer a_.free(lines);
            for (lines) |*v| v.* = .{ .re = rnd.floatNorm(f32), .im = rnd.floatNorm(f32) };
            const vb = try a_.alloc(VC, n);
            defer a_.free(vb);
            const vs = try a_.alloc(VC, plan.scratch);
            defer a_.free(vs);
            for (0..n) |i| for (0..L) |l| {
                vb[i].re[l] = lines[l * n + i].re;
                vb[i].im[l] = lines[l * n + i].im;
            };
            plan.run(VC, vb, vs, false);
            const scr = try a_.alloc(C, plan.scratch);
            defer a_.free(scr);
            for (0..L) |l| {
                const line = lines[l * n .. (l + 1) * n];
                plan.run(C, line, scr, false);
                for (0..n) |i| {
                    try testing.expectEqual(@as(u32, @bitCast(line[i].re)), @as(u32, @bitCast(vb[i].re[l])));
                    try testing.expectEqual(@as(u32, @bitCast(line[i].im)), @as(u32, @bitCast(vb[i].im[l])));
                }
            }
            // real (r2c forward, c2r inverse)
            const rp = try buildReal(n, inv);
            defer rp.deinit();
            const per = 2 * n + 4 + rp.scratch;
            const cb = try a_.alloc(C, per);
            defer a_.free(cb);
            const vbb = try a_.alloc(VC, per);
            defer a_.free(vbb);
            const nin = if (inv) n / 2 + 1 else n;
            const vals = try a_.alloc(C, nin * L);
            defer a_.free(vals);
            for (vals) |*v| v.* = .{ .re = rnd.floatNorm(f32), .im = rnd.floatNorm(f32) };
            @memset(vbb, czero(VC));
            for (0..L) |l| for (0..nin) |i| {
                if (inv) {
                    vbb[i].re[l] = vals[l * nin + i].re;
                    vbb[i].im[l] = vals[l * nin + i].im;
                } else if (i % 2 == 0) vbb[i / 2].re[l] = vals[l * nin + i].re else vbb[i / 2].im[l] = vals[l * nin + i].re;
            };
            if (inv) {
                const vres, const vil = c2rCompute(VC, rp, vbb[0 .. n + 2], vbb[n + 2 .. 2 * n + 4], vbb[2 * n + 4 ..], false);
                for (0..L) |l| {
                    @memset(cb, czero(C));
                    for (0..nin) |i| cb[i] = vals[l * nin + i];
                    const res, const il = c2rCompute(C, rp, cb[0 .. n + 2], cb[n + 2 .. 2 * n + 4], cb[2 * n + 4 ..], false);
                    try testing.expectEqual(il, vil);
                    for (0..n) |t| {
                        const want = if (il) realAt(C, res, t) else res[t].re;
                        const got = if (vil) realAt(VC, vres, t)[l] else vres[t].re[l];
                        try testing.expectEqual(@as(u32, @bitCast(want)), @as(u32, @bitCast(got)));
                    }
                }
            } else {
                const vres = r2cCompute(VC, rp, vbb[0 .. n + 2], vbb[n + 2 .. 2 * n + 4], vbb[2 * n + 4 ..], false);
                for (0..L) |l| {
                    @memset(cb, czero(C));
                    const f: []f32 = std.mem.bytesAsSlice(f32, std.mem.sliceAsBytes(cb));
                    for (0..nin) |i| f[i] = vals[l * nin + i].re;
                    const res = r2cCompute(C, rp, cb[0 .. n + 2], cb[n + 2 .. 2 * n + 4], cb[2 * n + 4 ..], false);
                    try testing.expectEqual(res.len, vres.len);
                    for (res, vres) |w, g| {
                        try testing.expectEqual(@as(u32, @bitCast(w.re)), @as(u32, @bitCast(g.re[l])));
                        try testing.expectEqual(@as(u32, @bitCast(w.im)), @as(u32, @bitCast(g.im[l])));
                    }
                }
            }
        }
    }
}

test "four-step plans match a direct DFT" {
    four_min_once.call();
    const saved = four_min;
    defer four_min = saved;
    four_min = 4096;
    var prng = std.Random.DefaultPrng.init(13);
    const rnd = prng.random();
    for ([_]usize{ 4096, 64 * 75, 67 * 64, 23 * 17 * 11 }) |n| {
        for ([_]bool{ false, true }) |inv| {
            const plan = try buildComplex(n, inv);
            defer plan.deinit();
            try testing.expect(plan.body == .four or largestPrimeFactor(n) > max_generic_radix);
            const x = try a_.alloc(C, n);
            defer a_.free(x);
            for (x) |*v| v.* = .{ .re = rnd.floatNorm(f32), .im = rnd.floatNorm(f32) };
            const want = try a_.alloc(C, n);
            defer a_.free(want);
            naiveDft(x, want, inv);
            const scr = try a_.alloc(C, plan.scratch);
            defer a_.free(scr);
            plan.run(C, x, scr, true);
            const tol: f32 = 1e-4 * @sqrt(@as(f32, @floatFromInt(n))) * @log2(@as(f32, @floatFromInt(n + 1)) + 1);
            for (x, want) |g, w| {
                try testing.expectApproxEqAbs(w.re, g.re, tol);
                try testing.expectApproxEqAbs(w.im, g.im, tol);
            }
        }
    }
}
