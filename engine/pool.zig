//! The engine's thread pool: large kernels split their index range over all cores. MLX's CPU
//! backend runs each op on one thread; this is one place we intend to be faster.
//!
//! Our own pool rather than std.Thread.Pool: a kernel of a few tens of microseconds (a 256 x 256
//! matmul) paid about as much again waking std's sleeping workers. Workers here spin briefly on
//! an atomic after each job before parking on a futex.
const std = @import("std");
const build_options = @import("mlxb_build");

/// A kernel object of a portable build (engine/kernels.zig) uses the engine's pool through these
/// two hidden functions instead of starting a pool of its own.
const Bridge = struct {
    const Fn = *const fn (*const anyopaque, usize, usize) callconv(.c) void;
    fn parallelFor(n: usize, grain: usize, ctx: *const anyopaque, func: Fn) callconv(.c) void {
        const C = struct { ctx: *const anyopaque, func: Fn };
        parallelForLocal(n, grain, C{ .ctx = ctx, .func = func }, struct {
            fn run(c: C, s: usize, e: usize) void {
                c.func(c.ctx, s, e);
            }
        }.run);
    }
    fn threads() callconv(.c) usize {
        return threadsLocal();
    }
    const extern_parallel_for = @extern(*const fn (usize, usize, *const anyopaque, Fn) callconv(.c) void, .{ .name = "mlxb_pool_parallel_for", .visibility = .hidden });
    const extern_threads = @extern(*const fn () callconv(.c) usize, .{ .name = "mlxb_pool_threads", .visibility = .hidden });
};

comptime {
    if (build_options.dispatch) {
        @export(&Bridge.parallelFor, .{ .name = "mlxb_pool_parallel_for", .visibility = .hidden });
        @export(&Bridge.threads, .{ .name = "mlxb_pool_threads", .visibility = .hidden });
    }
}

// The pool: n - 1 workers plus the calling thread. A parallelFor publishes one job (function,
// context, chunk count) and bumps `generation`; workers that are spinning see it within a fraction
// of a microsecond, workers that have parked on the futex are woken. After a job a worker spins
// for `spin_ns` before parking again, so a burst of small kernels pays no futex wake-up each.
// One job at a time: a parallelFor from a worker (nested) or while another thread's job runs
// (a second stream) runs on its own thread.

const spin_ns: u64 = 50 * std.time.ns_per_us;

const Job = struct {
    func: *const fn (*const anyopaque, usize, usize) void,
    ctx: *const anyopaque,
    n: usize,
    per: usize,
    chunks: usize,
};

var job: Job = undefined;
/// High 32 bits: the job's generation; low 32 bits: the next chunk to claim.
var claim = std.atomic.Value(u64).init(0);
var generation = std.atomic.Value(u32).init(0);
/// Chunks of the current job not yet finished (the caller waits for 0).
var remaining = std.atomic.Value(u32).init(0);
var sleepers = std.atomic.Value(u32).init(0);
var job_lock: std.Thread.Mutex = .{};
threadlocal var in_worker: bool = false;

fn initPool() void {
    const n = std.Thread.getCpuCount() catch 1;
    var started: usize = 0;
    while (started + 1 < n) : (started += 1) {
        const t = std.Thread.spawn(.{}, workerMain, .{}) catch break;
        t.detach();
    }
    pool_threads = started + 1;
}

/// Claims and runs chunks of generation `gen` until none are left.
fn work(gen: u32) void {
    while (true) {
        var v = claim.load(.acquire);
        while (true) {
            if (@as(u32, @intCast(v >> 32)) != gen) return;
            // job is stable while a chunk of it is unclaimed (the caller waits for all of them)
            if ((v & 0xffff_ffff) >= job.chunks) return;
            v = claim.cmpxchgWeak(v, v + 1, .acq_rel, .acquire) orelse break;
        }
        const c: usize = @intCast(v & 0xffff_ffff);
        const j = job;
        const s = c * j.per;
        j.func(j.ctx, s, @min(s + j.per, j.n));
        if (remaining.fetchSub(1, .acq_rel) == 1) std.Thread.Futex.wake(&remaining, 1);
    }
}

fn workerMain() void {
    in_worker = true;
    var seen = generation.load(.acquire);
    while (true) {
        var g = generation.load(.acquire);
        if (g == seen) {
            var timer = std.time.Timer.start() catch null;
            var spins: usize = 0;
            while (g == seen) : (spins += 1) {
                std.atomic.spinLoopHint();
                g = generation.load(.acquire);
                if (spins % 64 == 63) {
                    if (timer == null or timer.?.read() > spin_ns) break;
                }
            }
            while (g == seen) {
                _ = sleepers.fetchAdd(1, .seq_cst);
                g = generation.load(.seq_cst);
                if (g == seen) std.Thread.Futex.wait(&generation, seen);
                _ = sleepers.fetchSub(1, .seq_cst);
                g = generation.load(.acquire);
            }
        }
        seen = g;
        work(g);
    }
}

var pool_threads: usize = 0;
var init_once = std.once(initPool);

/// Cores available to kernels (1 when the pool could not start).
pub fn threads() usize {
    if (comptime build_options.kernel_object) return Bridge.extern_threads();
    return threadsLocal();
}

fn threadsLocal() usize {
    init_once.call();
    return @max(pool_threads, 1);
}

/// Call `func(ctx, start, end)` over [0, n) in chunks of at least `grain` items, in parallel
/// when there is enough work; inline otherwise. Returns when every chunk is done.
pub fn parallelFor(n: usize, grain: usize, ctx: anytype, comptime func: fn (@TypeOf(ctx), usize, usize) void) void {
    if (comptime build_options.kernel_object) {
        const Ctx = @TypeOf(ctx);
        const tramp = struct {
            fn run(p: *const anyopaque, s: usize, e: usize) callconv(.c) void {
                const c: *const Ctx = @ptrCast(@alignCast(p));
                func(c.*, s, e);
            }
        }.run;
        Bridge.extern_parallel_for(n, grain, @ptrCast(&ctx), &tramp);
        return;
    }
    parallelForLocal(n, grain, ctx, func);
}

fn parallelForLocal(n: usize, grain: usize, ctx: anytype, comptime func: fn (@TypeOf(ctx), usize, usize) void) void {
    const t = threads();
    const chunks = @min(t, n / @max(grain, 1));
    if (chunks <= 1 or in_worker or !job_lock.tryLock()) {
        func(ctx, 0, n);
        return;
    }
    defer job_lock.unlock();
    const Ctx = @TypeOf(ctx);
    const tramp = struct {
        fn run(p: *const anyopaque, s: usize, e: usize) void {
            const c: *const Ctx = @ptrCast(@alignCast(p));
            func(c.*, s, e);
        }
    }.run;
    const per = (n + chunks - 1) / chunks;
    const count = (n + per - 1) / per;
    const gen = generation.load(.monotonic) +% 1;
    // Close the claim word (new generation, no chunk left) before rewriting `job`: a worker
    // still in the previous job's `work` that read `claim` before this point and `job.chunks`
    // after it would otherwise pass the bounds check with the new count, claim a chunk of the
    // new job under the old generation and run it twice, counting it off `remaining` early
    // (the caller then returned while a chunk still ran on its context). An RMW with acquire:
    // the writes below cannot move above it.
    _ = claim.swap(@as(u64, gen) << 32 | 0xffff_ffff, .acq_rel);
    job = .{ .func = &tramp, .ctx = @ptrCast(&ctx), .n = n, .per = per, .chunks = count };
    remaining.store(@intCast(count), .release);
    claim.store(@as(u64, gen) << 32, .release);
    generation.store(gen, .seq_cst);
    if (sleepers.load(.seq_cst) > 0) std.Thread.Futex.wake(&generation, std.math.maxInt(u32));
    work(gen);
    // The other chunks are running on workers: spin briefly, then sleep until the last one ends.
    var r = remaining.load(.acquire);
    var spins: usize = 0;
    while (r != 0 and spins < 4096) : (spins += 1) {
        std.atomic.spinLoopHint();
        r = remaining.load(.acquire);
    }
    while (r != 0) {
        std.Thread.Futex.wait(&remaining, r);
        r = remaining.load(.acquire);
    }
}

test "parallelFor covers the range exactly once" {
    var hits = [_]std.atomic.Value(u32){.init(0)} ** 10_000;
    const Ctx = struct { hits: []std.atomic.Value(u32) };
    parallelFor(hits.len, 100, Ctx{ .hits = &hits }, struct {
        fn f(c: Ctx, s: usize, e: usize) void {
            for (s..e) |i| _ = c.hits[i].fetchAdd(1, .monotonic);
        }
    }.f);
    for (hits) |h| try std.testing.expectEqual(@as(u32, 1), h.load(.monotonic));
}

test "parallelFor: many small jobs in a row, nested calls and calls from several threads" {
    const Ctx = struct {
        sum: *std.atomic.Value(u64),
        fn add(c: @This(), s: usize, e: usize) void {
            var t: u64 = 0;
            for (s..e) |i| t += i;
            _ = c.sum.fetchAdd(t, .monotonic);
        }
        fn nested(c: @This(), s: usize, e: usize) void {
            for (s..e) |_| parallelFor(100, 1, c, add);
        }
    };
    var sum = std.atomic.Value(u64).init(0);
    const c = Ctx{ .sum = &sum };
    for (0..2000) |_| parallelFor(64, 1, c, Ctx.add);
    try std.testing.expectEqual(@as(u64, 2000 * (63 * 64 / 2)), sum.load(.monotonic));
    sum.store(0, .monotonic);
    parallelFor(8, 1, c, Ctx.nested);
    try std.testing.expectEqual(@as(u64, 8 * (99 * 100 / 2)), sum.load(.monotonic));
    sum.store(0, .monotonic);
    var threads_: [3]std.Thread = undefined;
    for (&threads_) |*th| th.* = try std.Thread.spawn(.{}, struct {
        fn f(cc: Ctx) void {
            for (0..300) |_| parallelFor(1000, 10, cc, Ctx.add);
        }
    }.f, .{c});
    for (threads_) |th| th.join();
    try std.testing.expectEqual(@as(u64, 3 * 300 * (999 * 1000 / 2)), sum.load(.monotonic));
}
