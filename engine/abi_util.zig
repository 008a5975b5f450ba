//! Shared pieces of the C ABI: the table entry type and the argument/result helpers every
//! family's ABI functions use. (The table itself is assembled in abi.zig.)
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
const handles = @import("handles.zig");
const stream_mod = @import("stream.zig");
const Dtype = @import("dtype.zig").Dtype;
const Node = array.Node;

pub const Entry = struct {
    name: []const u8,
    func: type,
    args: []const []const u8,
    doc: []const u8,
};

pub fn entry(comptime name: []const u8, comptime func: anytype, comptime args: []const []const u8, comptime doc: []const u8) Entry {
    const F = struct {
        pub const f = func;
    };
    return .{ .name = name, .func = F, .args = args, .doc = doc };
}

pub fn ok(r: errors.Error!void) i32 {
    r catch return -@intFromEnum(errors.code());
    return 0;
}

pub fn handleOf(r: errors.Error!*Node) u32 {
    const n = r catch return 0;
    return handles.put(n) catch 0;
}

pub fn dtypeArg(v: u32, op: []const u8) errors.Error!Dtype {
    return Dtype.fromInt(v) orelse errors.fail(.invalid_argument, "[{s}] Unknown dtype {d}.", .{ op, v });
}

pub fn shapeArg(ptr: ?[*]const i32, ndim: u32, op: []const u8) errors.Error!array.Shape {
    if (ndim == 0) return .{};
    const p = ptr orelse return errors.fail(.invalid_argument, "[{s}] The shape pointer is null.", .{op});
    if (ndim > array.max_ndim)
        return errors.fail(.invalid_argument, "[{s}] Arrays of more than {d} dimensions are not supported (got {d}).", .{ op, array.max_ndim, ndim });
    return array.Shape.fromSlice(p[0..ndim], op);
}

pub fn deviceArg(v: u32, op: []const u8) errors.Error!stream_mod.DeviceType {
    return switch (v) {
        0 => .cpu,
        1 => .gpu,
        else => errors.fail(.invalid_argument, "[{s}] Unknown device type {d}.", .{ op, v }),
    };
}


/// An op enum value from the C ABI, or an error naming the op family.
pub fn opArg(comptime E: type, v: u32, op: []const u8) errors.Error!E {
    inline for (@typeInfo(E).@"enum".fields) |f| {
        if (f.value == v) return @enumFromInt(v);
    }
    return errors.fail(.invalid_argument, "[{s}] Unknown op {d}.", .{ op, v });
}
