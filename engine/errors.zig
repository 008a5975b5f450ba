//! Pull-style errors: a failing C ABI call returns 0 (handles) or a negative status, and the
//! thread-local code and message say why. Messages follow MLX: "[op] what went wrong."
const std = @import("std");

/// Error codes are part of the C ABI.
pub const Code = enum(i32) {
    ok = 0,
    invalid_argument = 1,
    invalid_handle = 2,
    out_of_memory = 3,
    not_implemented = 4,
    runtime = 5,
    unavailable = 6,
};

/// Engine functions return this error set; the message is already recorded.
pub const Error = error{Failed};

const message_capacity = 1024;

threadlocal var last_code: Code = .ok;
threadlocal var last_message: [message_capacity:0]u8 = [_:0]u8{0} ** message_capacity;

/// Record an error and return `error.Failed` so callers can `return fail(...)`.
pub fn fail(c: Code, comptime fmt: []const u8, args: anytype) Error {
    set(c, fmt, args);
    return error.Failed;
}

pub fn set(c: Code, comptime fmt: []const u8, args: anytype) void {
    last_code = c;
    const written = std.fmt.bufPrint(last_message[0..message_capacity], fmt, args) catch blk: {
        // Too long: keep what fits and mark the cut.
        const cut = "...";
        @memcpy(last_message[message_capacity - cut.len .. message_capacity], cut);
        break :blk last_message[0..message_capacity];
    };
    last_message[written.len] = 0;
}

/// Copy another thread's error (the text of an async task's failure) into this thread.
pub fn setText(c: Code, text: []const u8) void {
    last_code = c;
    const n = @min(text.len, message_capacity);
    @memcpy(last_message[0..n], text[0..n]);
    last_message[n] = 0;
}

pub fn clear() void {
    last_code = .ok;
    last_message[0] = 0;
}

pub fn code() Code {
    return last_code;
}

pub fn message() [*:0]const u8 {
    return &last_message;
}

pub fn messageSlice() []const u8 {
    return std.mem.sliceTo(&last_message, 0);
}

test "messages are formatted and truncated safely" {
    _ = fail(.invalid_argument, "[reshape] Cannot reshape array of size {d} into shape {s}.", .{ 6, "(4,2)" }) catch {};
    try std.testing.expectEqualStrings("[reshape] Cannot reshape array of size 6 into shape (4,2).", messageSlice());
    try std.testing.expectEqual(Code.invalid_argument, code());
    const long = "x" ** 2000;
    set(.runtime, "{s}", .{long});
    try std.testing.expectEqual(@as(usize, message_capacity), messageSlice().len);
    clear();
    try std.testing.expectEqual(Code.ok, code());
}
