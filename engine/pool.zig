//! The engine's thread pool: large kernels split their index range over all cores. MLX's CPU
//! backend runs each op on one thread; this is one place we intend to be faster.
const std = @import("std");

var pool: std.Thread.Pool = undefined;
var pool_threads: usize = 0;
var init_once = std.once(initPool);

fn initPool() void {
    const n = std.Thread.getCpuCount() catch 1;
    pool.init(.{ .allocator = std.heap.c_allocator, .n_jobs = @max(n, 1) }) catch {
        pool_threads = 0;
        return;
    };
    pool_threads = n;
}

/// Cores available to kernels (1 when the pool could not start).
pub fn threads() usize {
    init_once.call();
    return @max(pool_threads, 1);
}

/// Call `func(ctx, start, end)` over [0, n) in chunks of at least `grain` items, in parallel
/// when there is enough work; inline otherwise. Returns when every chunk is done.
pub fn parallelFor(n: usize, grain: usize, ctx: anytype, comptime func: fn (@TypeOf(ctx), usize, usize) void) void {
    const t = threads();
    const chunks = @min(t, n / @max(grain, 1));
    if (chunks <= 1) {
        func(ctx, 0, n);
        return;
    }
    var wg: std.Thread.WaitGroup = .{};
    const per = (n + chunks - 1) / chunks;
    var start: usize = per; // chunk 0 runs on this thread below
    while (start < n) : (start += per) {
        pool.spawnWg(&wg, func, .{ ctx, start, @min(start + per, n) });
    }
    func(ctx, 0, @min(per, n));
    pool.waitAndWork(&wg);
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
