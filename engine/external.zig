//! Host memory wrapped without a copy is owned by the host. When the engine drops its last
//! use of such a buffer it queues the host's token here; the host drains the queue and lets
//! go of the memory (the TS side holds the TypedArray until then).
const std = @import("std");

var mutex: std.Thread.Mutex = .{};
var queue: std.ArrayList(u32) = .empty;
var next_token: u32 = 1;

pub fn newToken() u32 {
    mutex.lock();
    defer mutex.unlock();
    const t = next_token;
    next_token = if (next_token == std.math.maxInt(i32)) 1 else next_token + 1;
    return t;
}

pub fn released(token: u32) void {
    mutex.lock();
    defer mutex.unlock();
    // If this allocation fails the host keeps its TypedArray alive: a leak of a reference, not a crash.
    queue.append(std.heap.c_allocator, token) catch {};
}

/// The next released token, or 0 when none is pending.
pub fn next() u32 {
    mutex.lock();
    defer mutex.unlock();
    return queue.pop() orelse 0;
}
