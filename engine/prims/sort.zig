//! The sort family (issue 3): ops, parameters, kernels and C ABI entries. Being filled in.
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const abi_util = @import("../abi_util.zig");

/// This family's primitives.
pub const Prim = union(enum) {
    /// Placeholder until the family's first primitive lands; never constructed.
    reserved,

    pub fn name(p: Prim) []const u8 {
        return @tagName(p);
    }
};

pub fn eval(node: *array.Node, p: Prim) errors.Error!void {
    _ = node;
    switch (p) {
        .reserved => unreachable,
    }
}

/// This family's C ABI entries and enums (concatenated into the table in abi.zig).
pub const abi = [_]abi_util.Entry{};
pub const abi_enums = .{};
