//! Random: the `bits` primitive (MLX's RandomBits), Threefry-2x32 with 20 rounds over MLX's
//! exact counter layout, so every draw matches MLX bit for bit. Everything else in mx.random
//! (uniform, normal, randint, ...) is composed from graph ops in src/random.ts, as MLX composes
//! them in mlx/random.cpp.
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const handles = @import("../handles.zig");
const stream_mod = @import("../stream.zig");
const abi_util = @import("../abi_util.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const Node = array.Node;
const Shape = array.Shape;

pub const Prim = union(enum) {
    /// Random bits of `width` bytes per element (uint8, uint16 or uint32) from the key input.
    bits: u8,

    pub fn name(p: Prim) []const u8 {
        return switch (p) {
            .bits => "bits",
        };
    }
};

/// Threefry-2x32, 20 rounds (as JAX and mlx/backend/cpu/threefry.cpp).
pub fn threefry(k0: u32, k1: u32, c0: u32, c1: u32) [2]u32 {
    const rotations = [2][4]u5{ .{ 13, 15, 26, 6 }, .{ 17, 29, 16, 24 } };
    const ks = [3]u32{ k0, k1, k0 ^ k1 ^ 0x1BD11BDA };
    var x0 = c0 +% ks[0];
    var x1 = c1 +% ks[1];
    inline for (0..5) |i| {
        inline for (rotations[i % 2]) |r| {
            x0 +%= x1;
            x1 = std.math.rotl(u32, x1, r);
            x1 ^= x0;
        }
        x0 +%= ks[(i + 1) % 3];
        x1 +%= ks[(i + 2) % 3] +% @as(u32, i + 1);
    }
    return .{ x0, x1 };
}

/// `bits(shape, width, key)`: MLX's checks and messages; the key must be a uint32 array of
/// shape (2).
pub fn bits(key: *Node, shape: Shape, width: i32, stream: u32) errors.Error!*Node {
    if (key.dtype != .uint32)
        return errors.fail(.invalid_argument, "[bits] Expected key type uint32 but received {s}.", .{key.dtype.name()});
    if (key.shape.ndim != 1 or key.shape.dims[0] != 2) {
        var buf: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[bits] Expected key shape (2) but received {s}.", .{key.shape.format(&buf)});
    }
    const dt: @import("../dtype.zig").Dtype = switch (width) {
        4 => .uint32,
        2 => .uint16,
        1 => .uint8,
        else => return errors.fail(.invalid_argument, "[bits] Bit width must be in {{1, 2, 4}} but got {d}.", .{width}),
    };
    _ = try shape.sizeChecked("bits");
    return array.create(dt, shape, .{ .random = .{ .bits = @intCast(width) } }, &.{key}, stream);
}

pub fn eval(node: *Node, p: Prim) errors.Error!void {
    switch (p) {
        .bits => try evalBits(node),
    }
}

const Job = struct {
    out: [*]u8,
    bytes_per_key: usize,
    half: usize,
    odd: bool,
    k0: u32,
    k1: u32,
};

fn storeWord(j: *const Job, loc: usize, v: u32) void {
    const bytes = std.mem.toBytes(v);
    const end = @min(4 * loc + 4, j.bytes_per_key);
    if (4 * loc >= end) return;
    @memcpy(j.out[4 * loc .. end], bytes[0 .. end - 4 * loc]);
}

fn runRange(j: *const Job, start: usize, end: usize) void {
    const second_base = j.half + @intFromBool(j.odd);
    for (start..end) |i| {
        const r = threefry(j.k0, j.k1, @truncate(i), @truncate(i + second_base));
        storeWord(j, i, r[0]);
        storeWord(j, i + second_base, r[1]);
    }
}

/// As MLX's CPU kernel: per key, n = ceil(bytes / 4) words and half = n / 2; counter pair
/// (i, i + half + odd) fills words i and i + half + odd; an odd n fills word `half` with the
/// first word of hash(key, (half, 0)); a trailing partial word keeps its low bytes.
fn evalBits(node: *Node) errors.Error!void {
    const key = node.inputs[0];
    try primitives.allocOutput(node, null);
    const num_keys = key.size() / 2;
    if (num_keys == 0 or node.size() == 0) return;
    var keys_buf: [2]u32 = undefined;
    const keys: []u32 = if (num_keys == 1) keys_buf[0..] else std.heap.c_allocator.alloc(u32, 2 * num_keys) catch
        return errors.fail(.out_of_memory, "[bits] Out of memory.", .{});
    defer if (num_keys != 1) std.heap.c_allocator.free(keys);
    convert.copyConvert(key, @ptrCast(keys.ptr), .uint32);

    const bytes_per_key = node.nbytes() / num_keys;
    const words = (bytes_per_key + 3) / 4;
    const half = words / 2;
    const odd = words % 2 == 1;
    const out = node.data();
    for (0..num_keys) |k| {
        const job = Job{
            .out = out + k * bytes_per_key,
            .bytes_per_key = bytes_per_key,
            .half = half,
            .odd = odd,
            .k0 = keys[2 * k],
            .k1 = keys[2 * k + 1],
        };
        pool.parallelFor(half, 1 << 14, &job, runRange);
        if (odd) storeWord(&job, half, threefry(job.k0, job.k1, @truncate(half), 0)[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn bitsAbi(key: u32, shape: ?[*]const i32, ndim: u32, width: i32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(blk: {
        const k = handles.get(key, "bits") catch |e| break :blk e;
        const sh = abi_util.shapeArg(shape, ndim, "bits") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "bits") catch |e| break :blk e;
        break :blk bits(k, sh, width, stream);
    });
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("random_bits", bitsAbi, &.{ "key", "shape", "ndim", "width", "stream" }, "Random bits (uint8/16/32 for width 1/2/4) of a shape from a uint32 key of shape (2): Threefry-2x32-20 in MLX's layout."),
};

pub const abi_enums = .{};

// ---------------------------------------------------------------------------------------------
// Tests

test "threefry matches the Random123 known-answer vectors (20 rounds)" {
    // Random123 kat_vectors: threefry2x32_20.
    try std.testing.expectEqual([2]u32{ 0x6b200159, 0x99ba4efe }, threefry(0, 0, 0, 0));
    try std.testing.expectEqual([2]u32{ 0x1cb996fc, 0xbb002be7 }, threefry(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff));
    try std.testing.expectEqual([2]u32{ 0xc4923a9c, 0x483df7a0 }, threefry(0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3));
}

test "bits layout: word order and the odd middle word" {
    const k = try array.createWithBuffer(.uint32, blk: {
        var s = Shape{ .ndim = 1 };
        s.dims[0] = 2;
        break :blk s;
    }, 0, "array");
    defer array.release(k);
    const kp: [*]u32 = @ptrCast(@alignCast(k.data()));
    kp[0] = 0;
    kp[1] = 7;
    var s = Shape{ .ndim = 1 };
    s.dims[0] = 3;
    const b = try bits(k, s, 4, 0);
    defer array.release(b);
    try evalBits(b);
    const out: [*]const u32 = @ptrCast(@alignCast(b.data()));
    const h0 = threefry(0, 7, 0, 2);
    try std.testing.expectEqual(h0[0], out[0]);
    try std.testing.expectEqual(h0[1], out[2]);
    try std.testing.expectEqual(threefry(0, 7, 1, 0)[0], out[1]);
}
