//! The buffer allocator: size classes, a cache of freed blocks per class, a memory limit and a
//! cache limit, and the counters behind MLX's memory API (active, peak, cache).
//!
//! Sizes round up to a class: powers of two split into 4 steps (at most 25% slack), 64 bytes
//! at least. A freed block goes to its class's free list while the cache is under its limit;
//! an allocation takes a cached block of its class first. Past the memory limit an allocation
//! clears the cache and, if it still does not fit, fails with a clear error.
const std = @import("std");
const errors = @import("errors.zig");

/// `zig build -Dsanitize=true`: blocks are filled with a poison byte when handed out and when
/// freed, so a kernel that reads memory it has not written, or after it was freed, computes
/// garbage that tests notice (instead of a stale value that happens to be right).
pub const sanitize = @import("build_options").sanitize;
const poison_new: u8 = 0xcd;
const poison_freed: u8 = 0xdd;

pub const alignment = 64; // AVX-512 registers and cache lines
const min_block = 64;
const class_count = 4 * 64;

const FreeBlock = struct { next: ?*FreeBlock };

var mutex: std.Thread.Mutex = .{};
var free_lists: [class_count]?*FreeBlock = [_]?*FreeBlock{null} ** class_count;
var active_bytes: usize = 0; // bytes handed out (block sizes)
var peak_bytes: usize = 0;
var cache_bytes: usize = 0;
var memory_limit: usize = 0; // 0 until first use: then 0.8 x RAM, as MLX
var cache_limit: usize = 0;
var limits_ready = false;

fn ensureLimits() void {
    if (limits_ready) return;
    const ram = std.process.totalSystemMemory() catch 8 << 30;
    memory_limit = ram / 10 * 8;
    cache_limit = memory_limit;
    limits_ready = true;
}

/// Class index and block size for a request.
fn classOf(n: usize) struct { index: usize, size: usize } {
    const want = @max(n, min_block);
    const log2 = std.math.log2_int(usize, want); // want in [2^log2, 2^(log2+1))
    const step_shift: u6 = @intCast(log2 - 2);
    const step = @as(usize, 1) << step_shift; // a quarter of the power of two
    const steps = std.math.divCeil(usize, want, step) catch unreachable; // 4..8
    const size = steps * step;
    return .{ .index = @as(usize, log2) * 4 + (steps - 4), .size = size };
}

fn rawAlloc(size: usize) ?[*]u8 {
    const a = std.heap.c_allocator;
    const mem = a.alignedAlloc(u8, .fromByteUnits(alignment), size) catch return null;
    return mem.ptr;
}

fn rawFree(ptr: [*]u8, size: usize) void {
    const a = std.heap.c_allocator;
    const slice: []align(alignment) u8 = @alignCast(ptr[0..size]);
    a.free(slice);
}

fn releaseCacheLocked() void {
    for (&free_lists, 0..) |*head, i| {
        if (head.* == null) continue;
        const size = blockSizeOfClass(i);
        while (head.*) |blk| {
            head.* = blk.next;
            rawFree(@ptrCast(blk), size);
            cache_bytes -= size;
        }
    }
}

fn blockSizeOfClass(index: usize) usize {
    const log2: u6 = @intCast(index / 4);
    const steps = index % 4 + 4;
    return steps * (@as(usize, 1) << (log2 - 2));
}

pub const Block = struct { ptr: [*]u8, size: usize };

/// Allocate at least `n` bytes. `op` names the operation for the error message.
pub fn allocate(n: usize, op: []const u8) errors.Error!Block {
    if (n > std.math.maxInt(usize) / 2) {
        return errors.fail(.out_of_memory, "[{s}] Attempting to allocate {d} bytes which is greater than the maximum allowed buffer size.", .{ op, n });
    }
    const class = classOf(n);
    mutex.lock();
    defer mutex.unlock();
    ensureLimits();
    // The limit bounds active memory, whether the block comes from the cache or the system.
    if (active_bytes + class.size > memory_limit) {
        releaseCacheLocked();
        return errors.fail(.out_of_memory, "[{s}] Out of memory: allocating {d} bytes would exceed the memory limit of {d} bytes ({d} bytes in use).", .{ op, class.size, memory_limit, active_bytes });
    }
    if (free_lists[class.index]) |blk| {
        free_lists[class.index] = blk.next;
        cache_bytes -= class.size;
        noteActive(class.size);
        if (sanitize) @memset(@as([*]u8, @ptrCast(blk))[0..class.size], poison_new);
        return .{ .ptr = @ptrCast(blk), .size = class.size };
    }
    if (active_bytes + cache_bytes + class.size > memory_limit) releaseCacheLocked();
    const ptr = rawAlloc(class.size) orelse blk: {
        releaseCacheLocked();
        break :blk rawAlloc(class.size) orelse
            return errors.fail(.out_of_memory, "[{s}] Out of memory: the system refused {d} bytes.", .{ op, class.size });
    };
    noteActive(class.size);
    if (sanitize) @memset(ptr[0..class.size], poison_new);
    return .{ .ptr = ptr, .size = class.size };
}

/// A kernel's temporary buffer of `n` values of T (a copy of an operand in the layout or dtype
/// the kernel reads), taken from this allocator: it counts toward the memory limit, and a copy
/// made on every call reuses a cached block instead of faulting in fresh pages each time.
pub fn Scratch(comptime T: type) type {
    return struct {
        items: []T,
        block: Block,

        pub fn init(n: usize, op: []const u8) errors.Error!@This() {
            const bytes = std.math.mul(usize, @max(1, n), @sizeOf(T)) catch
                return errors.fail(.out_of_memory, "[{s}] Out of memory: {d} values of {d} bytes.", .{ op, n, @sizeOf(T) });
            const b = try allocate(bytes, op);
            return .{ .items = @as([*]T, @ptrCast(@alignCast(b.ptr)))[0..n], .block = b };
        }

        pub fn deinit(s: @This()) void {
            free(s.block);
        }
    };
}

fn noteActive(size: usize) void {
    active_bytes += size;
    if (active_bytes > peak_bytes) peak_bytes = active_bytes;
}

pub fn free(block: Block) void {
    const class = classOf(block.size);
    std.debug.assert(class.size == block.size);
    if (sanitize) @memset(block.ptr[0..block.size], poison_freed);
    mutex.lock();
    defer mutex.unlock();
    active_bytes -= block.size;
    if (cache_bytes + block.size <= cache_limit) {
        const fb: *FreeBlock = @ptrCast(@alignCast(block.ptr));
        fb.next = free_lists[class.index];
        free_lists[class.index] = fb;
        cache_bytes += block.size;
    } else {
        rawFree(block.ptr, block.size);
    }
}

pub fn activeMemory() usize {
    mutex.lock();
    defer mutex.unlock();
    return active_bytes;
}

pub fn peakMemory() usize {
    mutex.lock();
    defer mutex.unlock();
    return peak_bytes;
}

pub fn resetPeakMemory() void {
    mutex.lock();
    defer mutex.unlock();
    peak_bytes = active_bytes;
}

pub fn cacheMemory() usize {
    mutex.lock();
    defer mutex.unlock();
    return cache_bytes;
}

pub fn clearCache() void {
    mutex.lock();
    defer mutex.unlock();
    releaseCacheLocked();
}

pub fn getMemoryLimit() usize {
    mutex.lock();
    defer mutex.unlock();
    ensureLimits();
    return memory_limit;
}

/// Returns the previous limit.
pub fn setMemoryLimit(limit: usize) usize {
    mutex.lock();
    defer mutex.unlock();
    ensureLimits();
    const old = memory_limit;
    memory_limit = limit;
    return old;
}

/// Returns the previous limit; 0 disables the cache.
pub fn setCacheLimit(limit: usize) usize {
    mutex.lock();
    defer mutex.unlock();
    ensureLimits();
    const old = cache_limit;
    cache_limit = limit;
    if (cache_bytes > cache_limit) releaseCacheLocked();
    return old;
}

test "size classes cover requests with at most 25% slack" {
    var n: usize = 1;
    while (n < 1 << 30) : (n = n * 3 / 2 + 1) {
        const c = classOf(n);
        try std.testing.expect(c.size >= n);
        try std.testing.expect(c.size == min_block or c.size * 4 <= n * 5 + 4 * 4);
        try std.testing.expectEqual(c.size, blockSizeOfClass(c.index));
    }
}

test "cache reuse, counters and limits" {
    clearCache();
    const a0 = activeMemory();
    const b1 = try allocate(1000, "test");
    try std.testing.expect(activeMemory() == a0 + b1.size);
    free(b1);
    try std.testing.expect(cacheMemory() >= b1.size);
    const b2 = try allocate(1000, "test");
    try std.testing.expectEqual(b1.ptr, b2.ptr); // served from the cache
    free(b2);
    const old = setMemoryLimit(a0 + 4096);
    try std.testing.expectError(error.Failed, allocate(1 << 20, "test"));
    try std.testing.expectEqual(errors.Code.out_of_memory, errors.code());
    try std.testing.expectError(error.Failed, allocate(std.math.maxInt(usize) - 5, "test"));
    _ = setMemoryLimit(old);
    clearCache();
    try std.testing.expectEqual(@as(usize, 0), cacheMemory());
}

test "the limit holds for a block the cache could serve, and the failure empties the cache" {
    clearCache();
    const a0 = activeMemory();
    const b = try allocate(1 << 20, "test");
    free(b);
    try std.testing.expect(cacheMemory() >= b.size);
    const old = setMemoryLimit(a0 + 4096);
    try std.testing.expectError(error.Failed, allocate(1 << 20, "test"));
    try std.testing.expectEqual(errors.Code.out_of_memory, errors.code());
    try std.testing.expectEqual(@as(usize, 0), cacheMemory());
    try std.testing.expectEqual(a0, activeMemory());
    _ = setMemoryLimit(old);
}
