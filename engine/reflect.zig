//! Generic operations over primitive parameters by comptime reflection, so that compile's
//! tape, its common-subexpression elimination and its file format handle every primitive
//! (present and future) without per-primitive code: equality, hashing, deep copy, and a
//! binary serializer. Supported: void, bool, ints, floats, enums, fixed arrays, slices,
//! optionals, structs, tagged unions, and pointers to one value.
//!
//! Pointers to one value are owned copies (an indexing Region, a shape Remap): compared and
//! hashed by their pointee, deep-copied with the C allocator (so `Primitive.deinit` frees them).
//! A pointer to a *shared* record (a struct with a `refs` field, e.g. a custom function call) is
//! compared by address, copied by taking a reference, and cannot be serialized.
const std = @import("std");
const errors = @import("errors.zig");

const a_ = std.heap.c_allocator;

fn isShared(comptime T: type) bool {
    return @typeInfo(T) == .@"struct" and @hasField(T, "refs");
}

/// Structural equality (floats by their bits, so -0 and NaN payloads are told apart).
pub fn eql(comptime T: type, a: T, b: T) bool {
    switch (@typeInfo(T)) {
        .void => return true,
        .bool, .int, .@"enum" => return a == b,
        .float => return @as(std.meta.Int(.unsigned, @bitSizeOf(T)), @bitCast(a)) == @as(std.meta.Int(.unsigned, @bitSizeOf(T)), @bitCast(b)),
        .array => |ar| {
            for (a, b) |x, y| if (!eql(ar.child, x, y)) return false;
            return true;
        },
        .@"struct" => |s| {
            inline for (s.fields) |f| if (!eql(f.type, @field(a, f.name), @field(b, f.name))) return false;
            return true;
        },
        .@"union" => |u| {
            const Tag = u.tag_type orelse @compileError("reflect.eql: untagged union " ++ @typeName(T));
            if (@as(Tag, a) != @as(Tag, b)) return false;
            switch (a) {
                inline else => |va, tag| return eql(@TypeOf(va), va, @field(b, @tagName(tag))),
            }
        },
        .optional => |o| {
            if (a == null or b == null) return a == null and b == null;
            return eql(o.child, a.?, b.?);
        },
        .pointer => |p| switch (p.size) {
            .one => {
                if (comptime isShared(p.child)) return a == b;
                return a == b or eql(p.child, a.*, b.*);
            },
            .slice => {
                if (a.len != b.len) return false;
                for (a, b) |x, y| if (!eql(p.child, x, y)) return false;
                return true;
            },
            else => @compileError("reflect.eql: unsupported pointer " ++ @typeName(T)),
        },
        else => @compileError("reflect.eql: unsupported type " ++ @typeName(T)),
    }
}

/// Feed `v` into a hasher consistently with `eql` (equal values hash equally).
pub fn hash(comptime T: type, v: T, h: *std.hash.Wyhash) void {
    switch (@typeInfo(T)) {
        .void => {},
        .bool => h.update(&.{@intFromBool(v)}),
        .int => {
            const w: i128 = v;
            h.update(std.mem.asBytes(&w));
        },
        .@"enum" => {
            const w: i128 = @intFromEnum(v);
            h.update(std.mem.asBytes(&w));
        },
        .float => {
            const bits: std.meta.Int(.unsigned, @bitSizeOf(T)) = @bitCast(v);
            h.update(std.mem.asBytes(&bits));
        },
        .array => |ar| for (v) |x| hash(ar.child, x, h),
        .@"struct" => |s| inline for (s.fields) |f| hash(f.type, @field(v, f.name), h),
        .@"union" => switch (v) {
            inline else => |pv, tag| {
                h.update(@tagName(tag));
                hash(@TypeOf(pv), pv, h);
            },
        },
        .optional => |o| if (v) |x| {
            h.update(&.{1});
            hash(o.child, x, h);
        } else h.update(&.{0}),
        .pointer => |p| switch (p.size) {
            .one => if (comptime isShared(p.child)) {
                const addr = @intFromPtr(v);
                h.update(std.mem.asBytes(&addr));
            } else hash(p.child, v.*, h),
            .slice => {
                const n: u64 = v.len;
                h.update(std.mem.asBytes(&n));
                for (v) |x| hash(p.child, x, h);
            },
            else => @compileError("reflect.hash: unsupported pointer " ++ @typeName(T)),
        },
        else => @compileError("reflect.hash: unsupported type " ++ @typeName(T)),
    }
}

/// A deep copy: owned pointees and slices are duplicated (C allocator), shared records retained.
pub fn clone(comptime T: type, v: T) errors.Error!T {
    switch (@typeInfo(T)) {
        .@"struct" => |s| {
            var out = v;
            inline for (s.fields) |f| @field(out, f.name) = try clone(f.type, @field(v, f.name));
            return out;
        },
        .@"union" => switch (v) {
            inline else => |pv, tag| return @unionInit(T, @tagName(tag), try clone(@TypeOf(pv), pv)),
        },
        .optional => |o| return if (v) |x| try clone(o.child, x) else null,
        .array => |ar| {
            var out = v;
            for (&out, v) |*d, x| d.* = try clone(ar.child, x);
            return out;
        },
        .pointer => |p| switch (p.size) {
            .one => {
                if (comptime isShared(p.child)) {
                    _ = v.refs.fetchAdd(1, .monotonic);
                    return v;
                }
                const q = a_.create(p.child) catch return oom();
                q.* = try clone(p.child, v.*);
                return q;
            },
            .slice => {
                const q = a_.alloc(p.child, v.len) catch return oom();
                for (q, v) |*d, x| d.* = try clone(p.child, x);
                return q;
            },
            else => @compileError("reflect.clone: unsupported pointer " ++ @typeName(T)),
        },
        else => return v,
    }
}

fn oom() errors.Error {
    return errors.fail(.out_of_memory, "[compile] Out of memory.", .{});
}

// ---------------------------------------------------------------------------------------------
// Binary serialization (little-endian). Enum values and union tags are written by NAME, so a
// file stays readable when our enums are reordered, and an unknown name is reported clearly.

pub fn writeInt(out: *std.ArrayList(u8), comptime I: type, v: I) errors.Error!void {
    var b: [@sizeOf(I)]u8 = undefined;
    std.mem.writeInt(I, &b, v, .little);
    out.appendSlice(a_, &b) catch return oom();
}

pub fn writeName(out: *std.ArrayList(u8), name: []const u8) errors.Error!void {
    try writeInt(out, u8, @intCast(name.len));
    out.appendSlice(a_, name) catch return oom();
}

pub fn write(comptime T: type, v: T, out: *std.ArrayList(u8)) errors.Error!void {
    switch (@typeInfo(T)) {
        .void => {},
        .bool => try writeInt(out, u8, @intFromBool(v)),
        .int => |i| if (i.signedness == .signed) try writeInt(out, i64, v) else try writeInt(out, u64, v),
        .float => try writeInt(out, u64, @bitCast(@as(f64, @floatCast(v)))),
        .@"enum" => try writeName(out, @tagName(v)),
        .array => |ar| {
            try writeInt(out, u32, ar.len);
            for (v) |x| try write(ar.child, x, out);
        },
        .@"struct" => |s| inline for (s.fields) |f| try write(f.type, @field(v, f.name), out),
        .@"union" => switch (v) {
            inline else => |pv, tag| {
                try writeName(out, @tagName(tag));
                try write(@TypeOf(pv), pv, out);
            },
        },
        .optional => |o| if (v) |x| {
            try writeInt(out, u8, 1);
            try write(o.child, x, out);
        } else try writeInt(out, u8, 0),
        .pointer => |p| switch (p.size) {
            .one => {
                if (comptime isShared(p.child))
                    return errors.fail(.invalid_argument, "[export_function] A parameter of type {s} cannot be exported.", .{@typeName(p.child)});
                try write(p.child, v.*, out);
            },
            .slice => {
                try writeInt(out, u32, @intCast(v.len));
                for (v) |x| try write(p.child, x, out);
            },
            else => @compileError("reflect.write: unsupported pointer " ++ @typeName(T)),
        },
        else => @compileError("reflect.write: unsupported type " ++ @typeName(T)),
    }
}

/// The same values as JSON text (for `mx.exportFunction` with a callback, which reports each
/// primitive's parameters): structs as objects with their field names, tagged unions as
/// `{"tag": payload}` (`null` for a void payload), enums as their names, fixed arrays and
/// slices as lists, optionals as the value or `null`, pointers to one value as the pointee;
/// non-finite floats as the strings "nan", "inf", "-inf". Shared records cannot be written.
pub fn writeJson(comptime T: type, v: T, out: *std.ArrayList(u8)) errors.Error!void {
    switch (@typeInfo(T)) {
        .void => try appendJson(out, "null", .{}),
        .bool => try appendJson(out, "{s}", .{if (v) "true" else "false"}),
        .int => try appendJson(out, "{d}", .{v}),
        .float => {
            const x: f64 = @floatCast(v);
            if (std.math.isNan(x)) try appendJson(out, "\"nan\"", .{}) else if (std.math.isInf(x))
                try appendJson(out, "{s}", .{if (x > 0) "\"inf\"" else "\"-inf\""})
            else
                try appendJson(out, "{e}", .{x});
        },
        .@"enum" => try appendJson(out, "\"{s}\"", .{@tagName(v)}),
        .array => |ar| try writeJsonList(ar.child, &v, out),
        .@"struct" => |s| {
            try appendJson(out, "{{", .{});
            inline for (s.fields, 0..) |f, i| {
                try appendJson(out, "{s}\"{s}\":", .{ if (i > 0) "," else "", f.name });
                try writeJson(f.type, @field(v, f.name), out);
            }
            try appendJson(out, "}}", .{});
        },
        .@"union" => switch (v) {
            inline else => |pv, tag| {
                try appendJson(out, "{{\"{s}\":", .{@tagName(tag)});
                try writeJson(@TypeOf(pv), pv, out);
                try appendJson(out, "}}", .{});
            },
        },
        .optional => |o| if (v) |x| try writeJson(o.child, x, out) else try appendJson(out, "null", .{}),
        .pointer => |p| switch (p.size) {
            .one => {
                if (comptime isShared(p.child))
                    return errors.fail(.invalid_argument, "[export_function] A parameter of type {s} cannot be exported.", .{@typeName(p.child)});
                try writeJson(p.child, v.*, out);
            },
            .slice => try writeJsonList(p.child, v, out),
            else => @compileError("reflect.writeJson: unsupported pointer " ++ @typeName(T)),
        },
        else => @compileError("reflect.writeJson: unsupported type " ++ @typeName(T)),
    }
}

fn writeJsonList(comptime C: type, xs: []const C, out: *std.ArrayList(u8)) errors.Error!void {
    try appendJson(out, "[", .{});
    for (xs, 0..) |x, i| {
        if (i > 0) try appendJson(out, ",", .{});
        try writeJson(C, x, out);
    }
    try appendJson(out, "]", .{});
}

pub fn appendJson(out: *std.ArrayList(u8), comptime fmt: []const u8, args: anytype) errors.Error!void {
    out.print(a_, fmt, args) catch return oom();
}

/// Reads what `write` wrote, validating every byte; failures name the file.
pub const Reader = struct {
    bytes: []const u8,
    pos: usize = 0,
    file: []const u8,

    pub fn truncated(r: *const Reader) errors.Error {
        return errors.fail(.invalid_argument, "[import_function] The file {s} is truncated or corrupt (read past its end at byte {d}).", .{ r.file, r.bytes.len });
    }

    pub fn malformed(r: *const Reader, what: []const u8) errors.Error {
        return errors.fail(.invalid_argument, "[import_function] The file {s} is malformed: {s} (at byte {d}).", .{ r.file, what, r.pos });
    }

    pub fn take(r: *Reader, n: usize) errors.Error![]const u8 {
        if (n > r.bytes.len - r.pos) return r.truncated();
        const s = r.bytes[r.pos .. r.pos + n];
        r.pos += n;
        return s;
    }

    pub fn int(r: *Reader, comptime I: type) errors.Error!I {
        const s = try r.take(@sizeOf(I));
        return std.mem.readInt(I, s[0..@sizeOf(I)], .little);
    }

    pub fn name(r: *Reader) errors.Error![]const u8 {
        const n = try r.int(u8);
        return r.take(n);
    }
};

pub fn read(comptime T: type, r: *Reader) errors.Error!T {
    switch (@typeInfo(T)) {
        .void => return {},
        .bool => return switch (try r.int(u8)) {
            0 => false,
            1 => true,
            else => r.malformed("a bool is neither 0 nor 1"),
        },
        .int => |i| {
            if (i.signedness == .signed) return std.math.cast(T, try r.int(i64)) orelse r.malformed("an integer parameter is out of range");
            return std.math.cast(T, try r.int(u64)) orelse r.malformed("an integer parameter is out of range");
        },
        .float => return @floatCast(@as(f64, @bitCast(try r.int(u64)))),
        .@"enum" => {
            const n = try r.name();
            return std.meta.stringToEnum(T, n) orelse
                errors.fail(.invalid_argument, "[import_function] The file {s} names an unknown value '{s}' of {s}.", .{ r.file, n, shortName(T) });
        },
        .array => |ar| {
            if (try r.int(u32) != ar.len) return r.malformed("a fixed-size parameter list has the wrong length");
            var out: T = undefined;
            for (&out) |*d| d.* = try read(ar.child, r);
            return out;
        },
        .@"struct" => |s| {
            var out: T = undefined;
            inline for (s.fields) |f| @field(out, f.name) = try read(f.type, r);
            return out;
        },
        .@"union" => |u| {
            const n = try r.name();
            inline for (u.fields) |f| {
                if (std.mem.eql(u8, n, f.name)) return @unionInit(T, f.name, try read(f.type, r));
            }
            return errors.fail(.invalid_argument, "[import_function] The file {s} names an unknown primitive '{s}' (in {s}).", .{ r.file, n, shortName(T) });
        },
        .optional => |o| return switch (try r.int(u8)) {
            0 => null,
            1 => try read(o.child, r),
            else => r.malformed("an optional flag is neither 0 nor 1"),
        },
        .pointer => |p| switch (p.size) {
            .one => {
                if (comptime isShared(p.child)) return r.malformed("a parameter that cannot be imported");
                const v = try read(p.child, r);
                const q = a_.create(p.child) catch return oom();
                q.* = v;
                return q;
            },
            .slice => {
                const n = try r.int(u32);
                if (n > r.bytes.len - r.pos) return r.truncated();
                const q = a_.alloc(p.child, n) catch return oom();
                errdefer a_.free(q);
                for (q) |*d| d.* = try read(p.child, r);
                return q;
            },
            else => @compileError("reflect.read: unsupported pointer " ++ @typeName(T)),
        },
        else => @compileError("reflect.read: unsupported type " ++ @typeName(T)),
    }
}

fn shortName(comptime T: type) []const u8 {
    const full = @typeName(T);
    const i = std.mem.lastIndexOfScalar(u8, full, '.') orelse return full;
    return full[i + 1 ..];
}

test "reflect: JSON text of parameters" {
    const Inner = struct { k: i32, xs: [3]u8, f: f32 };
    const U = union(enum) { none, one: f64, two: *const Inner, three: struct { e: enum { a, b }, on: ?bool, s: []const i8 } };
    const in1 = Inner{ .k = -4, .xs = .{ 1, 2, 3 }, .f = 0.5 };
    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(a_);
    try writeJson(U, .{ .two = &in1 }, &out);
    try std.testing.expectEqualStrings("{\"two\":{\"k\":-4,\"xs\":[1,2,3],\"f\":5e-1}}", out.items);
    out.clearRetainingCapacity();
    try writeJson(U, .{ .three = .{ .e = .b, .on = null, .s = &.{ -1, 2 } } }, &out);
    try std.testing.expectEqualStrings("{\"three\":{\"e\":\"b\",\"on\":null,\"s\":[-1,2]}}", out.items);
    out.clearRetainingCapacity();
    try writeJson(U, .none, &out);
    try writeJson(U, .{ .one = std.math.nan(f64) }, &out);
    try writeJson(U, .{ .one = -std.math.inf(f64) }, &out);
    try std.testing.expectEqualStrings("{\"none\":null}{\"one\":\"nan\"}{\"one\":\"-inf\"}", out.items);
}

test "reflect: eql, hash, clone and a serialization round trip" {
    const Inner = struct { k: i32, xs: [3]u8 };
    const U = union(enum) { none, one: f64, two: *Inner, three: struct { e: enum { a, b }, on: bool } };
    var in1 = Inner{ .k = -4, .xs = .{ 1, 2, 3 } };
    var in2 = Inner{ .k = -4, .xs = .{ 1, 2, 3 } };
    const a = U{ .two = &in1 };
    const b = U{ .two = &in2 };
    try std.testing.expect(eql(U, a, b));
    var ha = std.hash.Wyhash.init(0);
    hash(U, a, &ha);
    var hb = std.hash.Wyhash.init(0);
    hash(U, b, &hb);
    try std.testing.expectEqual(ha.final(), hb.final());
    in2.k = 5;
    try std.testing.expect(!eql(U, a, b));
    try std.testing.expect(!eql(U, .{ .one = 0.0 }, .{ .one = -0.0 }));
    const c = try clone(U, a);
    defer a_.destroy(c.two);
    try std.testing.expect(c.two != a.two and eql(U, a, c));

    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(a_);
    try write(U, .{ .three = .{ .e = .b, .on = true } }, &out);
    try write(U, a, &out);
    var r = Reader{ .bytes = out.items, .file = "t" };
    const r1 = try read(U, &r);
    try std.testing.expect(eql(U, r1, .{ .three = .{ .e = .b, .on = true } }));
    const r2 = try read(U, &r);
    defer a_.destroy(r2.two);
    try std.testing.expect(eql(U, r2, a));
    try std.testing.expectEqual(out.items.len, r.pos);
    // Truncation and unknown names are errors, not crashes.
    var short = Reader{ .bytes = out.items[0 .. out.items.len - 1], .file = "t" };
    _ = try read(U, &short);
    try std.testing.expectError(error.Failed, read(U, &short));
    out.items[1] = 'X'; // "three" -> "Xhree"
    var bad = Reader{ .bytes = out.items, .file = "f.mlxfn" };
    try std.testing.expectError(error.Failed, read(U, &bad));
    try std.testing.expectEqualStrings("[import_function] The file f.mlxfn names an unknown primitive 'Xhree' (in U).", errors.messageSlice());
}
