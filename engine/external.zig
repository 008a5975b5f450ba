//! Host memory wrapped without a copy is owned by the host. When the engine drops its last
//! use of such a buffer it queues the host's token here; the host drains the queue and lets
//! go of the memory (the TS side holds the TypedArray until then).
const std = @import("std");

var mutex: std.Thread.Mutex = .{};
/// Released tokens with the thread that asked for each: every host thread (the JS main thread,
/// each Bun Worker) holds its own memory and drains only its own tokens.
var queue: std.ArrayList(Pending) = .empty;
var owners: std.AutoHashMapUnmanaged(u32, std.Thread.Id) = .empty;
var next_token: u32 = 1;

const Pending = struct { token: u32, owner: std.Thread.Id };

pub fn newToken() u32 {
    mutex.lock();
    defer mutex.unlock();
    const t = next_token;
    next_token = if (next_token == std.math.maxInt(i32)) 1 else next_token + 1;
    // Without the owner entry the token is drained by whichever thread asks first (the old rule).
    owners.put(std.heap.c_allocator, t, std.Thread.getCurrentId()) catch {};
    return t;
}

pub fn released(token: u32) void {
    mutex.lock();
    defer mutex.unlock();
    const owner = if (owners.fetchRemove(token)) |kv| kv.value else null;
    // If this allocation fails the host keeps its TypedArray alive: a leak of a reference, not a crash.
    queue.append(std.heap.c_allocator, .{ .token = token, .owner = owner orelse any_owner }) catch {};
}

const any_owner: std.Thread.Id = std.math.maxInt(std.Thread.Id);

/// The next released token, or 0 when none is pending.
pub fn next() u32 {
    mutex.lock();
    defer mutex.unlock();
    const me = std.Thread.getCurrentId();
    var i = queue.items.len;
    while (i > 0) {
        i -= 1;
        const p = queue.items[i];
        if (p.owner == me or p.owner == any_owner) return queue.swapRemove(i).token;
    }
    return 0;
}

test "released tokens go back to the thread that asked for them" {
    const mine = newToken();
    var theirs: u32 = 0;
    const th = try std.Thread.spawn(.{}, struct {
        fn run(out: *u32) void {
            out.* = newToken();
        }
    }.run, .{&theirs});
    th.join();
    released(theirs);
    released(mine);
    try std.testing.expectEqual(mine, next());
    try std.testing.expectEqual(@as(u32, 0), next()); // the other thread's token is not ours
}
