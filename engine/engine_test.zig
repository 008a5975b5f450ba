//! Engine tests through the C ABI entry points' implementations: graphs, eval, async eval,
//! donation and failure recovery.
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
const eval_mod = @import("eval.zig");
const alloc = @import("alloc.zig");
const prims = @import("primitives.zig");

fn readF32(n: *array.Node) ![]f32 {
    try eval_mod.ensure(n);
    const out = try std.testing.allocator.alloc(f32, n.size());
    @import("convert.zig").copyConvert(n, @ptrCast(out.ptr), .float32);
    return out;
}

test "arange, astype and broadcast evaluate lazily" {
    const live0 = array.liveNodes();
    const r = try prims.creation.arange(0, 6, 1, .int32, 0);
    try std.testing.expect(!r.isEvaluated());
    const f = try prims.copy.astype(r, .float32, 0);
    var shape = array.Shape{ .ndim = 2 };
    shape.dims[0] = 2;
    shape.dims[1] = 6;
    const b = try prims.copy.broadcastTo(f, shape, 0);
    array.release(r);
    array.release(f);
    const v = try readF32(b);
    defer std.testing.allocator.free(v);
    try std.testing.expectEqualSlices(f32, &.{ 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5 }, v);
    // Detached after eval: the inputs are gone, the view keeps the buffer.
    try std.testing.expectEqual(@as(usize, 0), b.inputs.len);
    array.release(b);
    try std.testing.expectEqual(live0, array.liveNodes());
}

test "astype donates a buffer nothing else holds" {
    const r = try prims.creation.arange(0, 1024, 1, .float32, 0);
    const c = try prims.copy.astype(r, .int32, 0);
    try eval_mod.eval(&.{r});
    const buf = r.buffer.?;
    array.release(r); // now only c holds r
    try eval_mod.eval(&.{c});
    try std.testing.expectEqual(buf, c.buffer.?);
    try std.testing.expectEqual(@as(usize, 0), c.inputs.len); // r was detached, and its reference with it
    try std.testing.expectEqual(@as(u32, 1), buf.refs.load(.monotonic));
    const v = try readF32(c);
    defer std.testing.allocator.free(v);
    try std.testing.expectEqual(@as(f32, 1023), v[1023]);
    array.release(c);
}

test "a deep chain evaluates without recursion" {
    var cur = try prims.creation.arange(0, 4, 1, .float32, 0);
    var i: usize = 0;
    while (i < 100_000) : (i += 1) {
        const next = try prims.copy.astype(cur, if (i % 2 == 0) .float64 else .float32, 0);
        array.release(cur);
        cur = next;
    }
    const v = try readF32(cur);
    defer std.testing.allocator.free(v);
    try std.testing.expectEqualSlices(f32, &.{ 0, 1, 2, 3 }, v);
    array.release(cur);
}

test "out of memory at eval leaves the graph retryable" {
    const old = alloc.setMemoryLimit(alloc.activeMemory() + 1024);
    const r = try prims.creation.arange(0, 1 << 20, 1, .float32, 0);
    try std.testing.expectError(error.Failed, eval_mod.eval(&.{r}));
    try std.testing.expectEqual(errors.Code.out_of_memory, errors.code());
    try std.testing.expect(!r.isEvaluated());
    _ = alloc.setMemoryLimit(old);
    try eval_mod.eval(&.{r});
    try std.testing.expect(r.isEvaluated());
    array.release(r);
}

test "async eval completes on the worker and tickets report it" {
    const r = try prims.creation.arange(0, 1000, 1, .float64, 0);
    const t = try eval_mod.asyncEval(&.{r}, 0);
    while (eval_mod.ticketState(t) == 0) std.Thread.sleep(100 * std.time.ns_per_us);
    try std.testing.expectEqual(@as(i32, 1), eval_mod.ticketState(t));
    try eval_mod.ticketFree(t);
    try std.testing.expect(r.isEvaluated());
    eval_mod.synchronize(null);
    array.release(r);
}
