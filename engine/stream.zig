//! Devices and streams. The CPU is device 0; a GPU device type exists in the API but has no
//! backend yet, so asking for it fails with MLX's message. Streams are indices into one
//! global list (index 0 is the default CPU stream); the default device and stream are
//! per thread, as in MLX.
const std = @import("std");
const errors = @import("errors.zig");

pub const DeviceType = enum(u8) { cpu = 0, gpu = 1 };

pub const Stream = struct { device: DeviceType };

/// The ABI's "use the default stream" value.
pub const default_stream: i32 = -1;
const max_streams = 1024;

var mutex: std.Thread.Mutex = .{};
var streams: [max_streams]Stream = undefined;
var stream_count: u32 = 1; // stream 0: the CPU's default, always present

threadlocal var thread_device: DeviceType = .cpu;
threadlocal var thread_stream: u32 = 0;

pub fn isAvailable(d: DeviceType) bool {
    return d == .cpu;
}

pub fn defaultDevice() DeviceType {
    return thread_device;
}

pub fn setDefaultDevice(d: DeviceType) errors.Error!void {
    if (!isAvailable(d)) return errors.fail(.unavailable, "[set_default_device] Cannot set gpu device without gpu backend.", .{});
    thread_device = d;
}

/// The default stream of a device on this thread.
pub fn defaultStreamOf(d: DeviceType) errors.Error!u32 {
    if (!isAvailable(d)) return errors.fail(.unavailable, "[default_stream] Cannot get gpu stream without gpu backend.", .{});
    return thread_stream;
}

pub fn setDefaultStream(s: u32) errors.Error!void {
    _ = try check(s, "set_default_stream");
    thread_stream = s;
}

pub fn newStream(d: DeviceType) errors.Error!u32 {
    if (!isAvailable(d)) return errors.fail(.unavailable, "[new_stream] Cannot make gpu stream without gpu backend.", .{});
    mutex.lock();
    defer mutex.unlock();
    if (stream_count == max_streams) return errors.fail(.runtime, "[new_stream] Too many streams (the limit is {d}).", .{max_streams});
    streams[stream_count] = .{ .device = d };
    stream_count += 1;
    return stream_count - 1;
}

pub fn deviceOf(s: u32) DeviceType {
    return if (s == 0) .cpu else streams[s].device;
}

pub fn check(s: u32, op: []const u8) errors.Error!u32 {
    if (s >= @atomicLoad(u32, &stream_count, .acquire))
        return errors.fail(.invalid_argument, "[{s}] Invalid stream {d}.", .{ op, s });
    return s;
}

/// Map the ABI's stream argument (-1: this thread's default) to a stream index.
pub fn resolve(s: i32, op: []const u8) errors.Error!u32 {
    if (s == default_stream) return thread_stream;
    if (s < 0) return errors.fail(.invalid_argument, "[{s}] Invalid stream {d}.", .{ op, s });
    return check(@intCast(s), op);
}

pub fn count() u32 {
    return @atomicLoad(u32, &stream_count, .acquire);
}
