//! The handle table: what the C ABI hands out for arrays. A handle is a u32 made of a slot
//! index (low 21 bits) and the slot's generation (next 10 bits); the top bit is always clear
//! (bun:ffi mangles u32 returns of 2^31) and 0 means "no array". A freed slot is reused
//! first-in first-out, and its generation moves on, so a stale or double-freed handle is
//! reported as such instead of reaching another array.
//!
//! Slots live in fixed chunks that never move, so lookups take no lock; creation and release
//! (which may come from a garbage-collector thread) take the mutex.
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
const Node = array.Node;

const slot_bits = 21;
const gen_bits = 10;
pub const max_slots = 1 << slot_bits;
const chunk_len = 4096;
const max_chunks = max_slots / chunk_len;
const none: u32 = std.math.maxInt(u32);

const State = enum(u2) { free, live, zombie };

const Slot = struct {
    node: ?*Node = null,
    /// generation << 2 | state, read without the lock.
    meta: std.atomic.Value(u32) = .init(0),
    next_free: u32 = none,
};

var chunks: [max_chunks]std.atomic.Value(?[*]Slot) = [_]std.atomic.Value(?[*]Slot){.init(null)} ** max_chunks;
var mutex: std.Thread.Mutex = .{};
var slot_count: u32 = 0;
var free_head: u32 = none;
var free_tail: u32 = none;
var free_count: u32 = 0;
var live_count = std.atomic.Value(u32).init(0);
/// A freed slot waits behind at least this many others before reuse, so a handle value can
/// only repeat after about min_free * 2^gen_bits (a million) releases.
const min_free = 1024;

fn slotAt(i: u32) *Slot {
    const c = chunks[i / chunk_len].load(.acquire).?;
    return &c[i % chunk_len];
}

fn pack(gen: u32, state: State) u32 {
    return gen << 2 | @intFromEnum(state);
}

fn handleOf(slot: u32, gen: u32) u32 {
    return gen << slot_bits | slot;
}

/// Store a node (taking over the caller's reference); returns its handle.
pub fn put(node: *Node) errors.Error!u32 {
    mutex.lock();
    defer mutex.unlock();
    var index: u32 = undefined;
    if (free_count > min_free or (free_head != none and slot_count == max_slots)) {
        index = free_head;
        const s = slotAt(index);
        free_head = s.next_free;
        if (free_head == none) free_tail = none;
        free_count -= 1;
    } else {
        if (slot_count == max_slots) {
            array.release(node);
            return errors.fail(.out_of_memory, "[array] Too many live arrays (the limit is {d}); dispose arrays you no longer need.", .{max_slots - 1});
        }
        index = slot_count;
        if (index % chunk_len == 0) {
            const mem = std.heap.c_allocator.alloc(Slot, chunk_len) catch {
                array.release(node);
                return errors.fail(.out_of_memory, "[array] Out of memory.", .{});
            };
            for (mem) |*s| s.* = .{};
            chunks[index / chunk_len].store(mem.ptr, .release);
        }
        @atomicStore(u32, &slot_count, slot_count + 1, .release);
        if (index == 0) {
            // Slot 0 with generation 0 would be handle 0; burn it.
            slotAt(0).meta.store(pack(0, .zombie), .release);
            index = slot_count;
            @atomicStore(u32, &slot_count, slot_count + 1, .release);
        }
    }
    const s = slotAt(index);
    var gen = (s.meta.load(.monotonic) >> 2) + 1;
    if (gen >= 1 << gen_bits) gen = 1;
    s.node = node;
    s.next_free = none;
    s.meta.store(pack(gen, .live), .release);
    _ = live_count.fetchAdd(1, .monotonic);
    return handleOf(index, gen);
}

/// The node behind a live handle, or an error naming `op`.
pub fn get(h: u32, op: []const u8) errors.Error!*Node {
    if (h == 0) return errors.fail(.invalid_handle, "[{s}] Expected an array but got a null handle.", .{op});
    const index = h & (max_slots - 1);
    const gen = h >> slot_bits;
    if (index >= @atomicLoad(u32, &slot_count, .acquire) or gen == 0)
        return errors.fail(.invalid_handle, "[{s}] Invalid array handle {d}: it was never issued.", .{ op, h });
    const s = slotAt(index);
    const meta = s.meta.load(.acquire);
    if (meta == pack(gen, .live)) return s.node.?;
    if (meta == pack(gen, .zombie))
        return errors.fail(.invalid_handle, "[{s}] The array was used after it was disposed.", .{op});
    return errors.fail(.invalid_handle, "[{s}] Invalid array handle {d}: the array was already freed.", .{ op, h });
}

const Release = enum { free, dispose, gc };

fn releaseHandle(h: u32, how: Release, op: []const u8) errors.Error!void {
    const node = blk: {
        mutex.lock();
        defer mutex.unlock();
        const index = h & (max_slots - 1);
        const gen = h >> slot_bits;
        if (h == 0 or index >= slot_count or gen == 0)
            return errors.fail(.invalid_handle, "[{s}] Invalid array handle {d}.", .{ op, h });
        const s = slotAt(index);
        const meta = s.meta.load(.acquire);
        const node = s.node;
        if (meta == pack(gen, .live)) {
            _ = live_count.fetchSub(1, .monotonic);
            s.node = null;
            if (how == .dispose) {
                s.meta.store(pack(gen, .zombie), .release);
            } else {
                freeSlotLocked(index, gen);
            }
            break :blk node.?;
        }
        if (meta == pack(gen, .zombie) and how == .gc) {
            freeSlotLocked(index, gen);
            return;
        }
        return errors.fail(.invalid_handle, "[{s}] The array handle {d} was already freed.", .{ op, h });
    };
    array.release(node);
}

fn freeSlotLocked(index: u32, gen: u32) void {
    const s = slotAt(index);
    s.meta.store(pack(gen, .free), .release);
    s.next_free = none;
    if (free_tail != none) slotAt(free_tail).next_free = index else free_head = index;
    free_tail = index;
    free_count += 1;
}

/// Release a handle and its slot (C users, and arrays the host does not track with the GC).
pub fn free(h: u32) errors.Error!void {
    return releaseHandle(h, .free, "free");
}

/// Release the array now but keep the slot until the host's garbage collector reports the
/// wrapper dead (`gcRelease`), so a late finalizer can never hit a reused slot.
pub fn dispose(h: u32) errors.Error!void {
    return releaseHandle(h, .dispose, "dispose");
}

/// Called from the host's GC finalizer; a handle already disposed just frees its slot.
pub fn gcRelease(h: u32) void {
    releaseHandle(h, .gc, "gc") catch {};
}

/// For leak checks (debug.zig): call `each` on every live handle's node, then `then`, all under
/// the table's lock (so no handle can release its node meanwhile).
pub fn forEachLive(ctx: *anyopaque, each: *const fn (*anyopaque, *Node) void, then: *const fn (*anyopaque) void) void {
    mutex.lock();
    defer mutex.unlock();
    for (0..slot_count) |i| {
        const s = slotAt(@intCast(i));
        if (s.meta.load(.acquire) & 3 == @intFromEnum(State.live)) if (s.node) |n| each(ctx, n);
    }
    then(ctx);
}

pub fn liveCount() u32 {
    return live_count.load(.monotonic);
}

test "handles: stale, double free and zombie detection" {
    const n1 = try array.create(.float32, .{}, .leaf, &.{}, 0);
    const h1 = try put(n1);
    try std.testing.expect(h1 != 0 and h1 < 1 << 31);
    try std.testing.expectEqual(n1, try get(h1, "t"));
    try free(h1);
    try std.testing.expectError(error.Failed, get(h1, "t"));
    try std.testing.expectError(error.Failed, free(h1));
    try std.testing.expectError(error.Failed, get(0, "t"));
    try std.testing.expectError(error.Failed, get(0x7fff_ffff, "t"));
    const n2 = try array.create(.float32, .{}, .leaf, &.{}, 0);
    const h2 = try put(n2);
    try dispose(h2);
    try std.testing.expectError(error.Failed, get(h2, "t"));
    try std.testing.expectEqualStrings("[t] The array was used after it was disposed.", errors.messageSlice());
    try std.testing.expectError(error.Failed, dispose(h2));
    gcRelease(h2); // frees the slot
    gcRelease(h2); // ignored
    // Reuse never reproduces an old handle within many cycles.
    var seen = std.AutoHashMap(u32, void).init(std.testing.allocator);
    defer seen.deinit();
    for (0..20_000) |_| {
        const n = try array.create(.float32, .{}, .leaf, &.{}, 0);
        const h = try put(n);
        try std.testing.expect(!seen.contains(h));
        try seen.put(h, {});
        try free(h);
    }
}
