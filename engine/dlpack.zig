//! DLPack interchange (dmlc/dlpack, ABI major 1), both ways, CPU memory only.
//!
//! Export: `mlxb_dlpack_export(h, copy)` evaluates the array and returns a new
//! `DLManagedTensorVersioned*` whose tensor views the engine buffer (READ_ONLY set: engine
//! arrays are immutable and the buffer may be shared) or, with copy = 1, a row-major copy
//! the consumer owns alone (IS_COPIED set). The managed tensor holds a reference on the
//! buffer until its deleter runs; the consumer calls the deleter exactly once.
//!
//! Import: `mlxb_dlpack_import(ptr, copy)` takes a producer's managed tensor. On success the
//! engine owns it and calls its deleter exactly once: at once if the data was copied, else
//! when the engine drops its last use of the viewed memory (array.Buffer.on_release, from
//! any thread). On failure nothing happens to it: the caller still owns it.
//! copy: 1 always copies; 0 never copies (and fails if it would have to); -1 copies only when
//! the data cannot be viewed (negative strides, data not aligned to its element size, or
//! complex128, which is converted to complex64 as MLX does).
//!
//! Struct layouts follow dlpack.h v1.1 (checked below); the header's definitions are facts
//! re-stated here, not copied code.
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
const handles = @import("handles.zig");
const eval_mod = @import("eval.zig");
const convert = @import("convert.zig");
const util = @import("abi_util.zig");
const Dtype = @import("dtype.zig").Dtype;
const Node = array.Node;

pub const Version = extern struct { major: u32, minor: u32 };
pub const Device = extern struct { device_type: i32, device_id: i32 };
pub const DataType = extern struct { code: u8, bits: u8, lanes: u16 };

pub const Tensor = extern struct {
    data: ?*anyopaque,
    device: Device,
    ndim: i32,
    dtype: DataType,
    shape: ?[*]const i64,
    /// In elements; null means row-major.
    strides: ?[*]const i64,
    byte_offset: u64,
};

/// `DLManagedTensorVersioned` (the current standard).
pub const Versioned = extern struct {
    version: Version,
    manager_ctx: ?*anyopaque,
    deleter: ?*const fn (?*Versioned) callconv(.c) void,
    flags: u64,
    dl_tensor: Tensor,
};

/// `DLManagedTensor` (legacy, unversioned).
pub const Legacy = extern struct {
    dl_tensor: Tensor,
    manager_ctx: ?*anyopaque,
    deleter: ?*const fn (?*Legacy) callconv(.c) void,
};

comptime {
    // x86-64/arm64 LP64 layouts from the DLPack header (reference/formats.md §1.2).
    std.debug.assert(@sizeOf(DataType) == 4 and @alignOf(DataType) == 2);
    std.debug.assert(@sizeOf(Tensor) == 48 and @offsetOf(Tensor, "ndim") == 16 and @offsetOf(Tensor, "dtype") == 20);
    std.debug.assert(@offsetOf(Tensor, "shape") == 24 and @offsetOf(Tensor, "strides") == 32 and @offsetOf(Tensor, "byte_offset") == 40);
    std.debug.assert(@sizeOf(Versioned) == 80 and @offsetOf(Versioned, "deleter") == 16 and @offsetOf(Versioned, "flags") == 24 and @offsetOf(Versioned, "dl_tensor") == 32);
    std.debug.assert(@sizeOf(Legacy) == 64 and @offsetOf(Legacy, "manager_ctx") == 48 and @offsetOf(Legacy, "deleter") == 56);
}

/// The version this library writes; it reads any 1.x.
pub const major_version = 1;
pub const minor_version = 1;

pub const flag_read_only: u64 = 1 << 0;
pub const flag_is_copied: u64 = 1 << 1;

// DLDeviceType values this library reads (host memory the CPU can address).
const kDLCPU = 1;
const kDLCUDAHost = 3;
const kDLROCMHost = 11;

// DLDataTypeCode values.
const kDLInt = 0;
const kDLUInt = 1;
const kDLFloat = 2;
const kDLBfloat = 4;
const kDLComplex = 5;
const kDLBool = 6;

pub fn dataTypeOf(d: Dtype) DataType {
    const bits: u8 = @intCast(d.size() * 8);
    const code: u8 = switch (d) {
        .bool_ => kDLBool,
        .uint8, .uint16, .uint32, .uint64 => kDLUInt,
        .int8, .int16, .int32, .int64 => kDLInt,
        .float16, .float32, .float64 => kDLFloat,
        .bfloat16 => kDLBfloat,
        .complex64 => kDLComplex,
    };
    return .{ .code = code, .bits = bits, .lanes = 1 };
}

/// A DLPack element type this library reads: one of ours, or complex128 (converted).
const Source = struct { dtype: Dtype, complex128: bool = false };

fn sourceOf(t: DataType) errors.Error!Source {
    if (t.lanes != 1) return errors.fail(.invalid_argument, "[fromDlpack] Vector dtypes are not supported (lanes = {d}); only lanes = 1.", .{t.lanes});
    const d: ?Dtype = switch (t.code) {
        kDLBool => if (t.bits == 8) .bool_ else null,
        kDLUInt => switch (t.bits) {
            8 => .uint8,
            16 => .uint16,
            32 => .uint32,
            64 => .uint64,
            else => null,
        },
        kDLInt => switch (t.bits) {
            8 => .int8,
            16 => .int16,
            32 => .int32,
            64 => .int64,
            else => null,
        },
        kDLFloat => switch (t.bits) {
            16 => .float16,
            32 => .float32,
            64 => .float64,
            else => null,
        },
        kDLBfloat => if (t.bits == 16) .bfloat16 else null,
        kDLComplex => switch (t.bits) {
            64 => .complex64,
            128 => return .{ .dtype = .complex64, .complex128 = true },
            else => null,
        },
        else => null,
    };
    return .{ .dtype = d orelse return errors.fail(.invalid_argument, "[fromDlpack] Unsupported DLPack dtype (code {d}, bits {d}): mlx-bun reads bool, (u)int8-64, float16/32/64, bfloat16 and complex64/128.", .{ t.code, t.bits }) };
}

// ---------------------------------------------------------------------------------------
// Export

var live_exports = std.atomic.Value(i64).init(0);

/// Managed tensors this library exported whose deleter has not run yet (a leak check).
pub fn liveExports() i64 {
    return live_exports.load(.acquire);
}

fn Export(comptime M: type) type {
    return struct {
        managed: M,
        shape: [array.max_ndim]i64,
        strides: [array.max_ndim]i64,
        buffer: ?*array.Buffer,

        const Self = @This();

        fn deleter(m: ?*M) callconv(.c) void {
            const self: *Self = @fieldParentPtr("managed", m orelse return);
            if (self.buffer) |b| b.release();
            std.heap.c_allocator.destroy(self);
            _ = live_exports.fetchSub(1, .acq_rel);
        }
    };
}

/// Evaluate `n` and describe it as a new managed tensor of type M (Versioned or Legacy).
pub fn exportNode(comptime M: type, n: *Node, copy: bool) errors.Error!*M {
    try eval_mod.ensure(n);
    const E = Export(M);
    const ctx = std.heap.c_allocator.create(E) catch return errors.fail(.out_of_memory, "[toDlpack] Out of memory.", .{});
    const nd = n.shape.ndim;
    for (0..nd) |i| ctx.shape[i] = n.shape.dims[i];
    var data: ?*anyopaque = null;
    var byte_offset: u64 = 0;
    ctx.buffer = null;
    if (n.size() > 0 and copy) {
        const buf = array.newBuffer(n.nbytes(), "toDlpack") catch |e| {
            std.heap.c_allocator.destroy(ctx);
            return e;
        };
        convert.copyConvert(n, buf.ptr, n.dtype);
        ctx.buffer = buf;
        data = buf.ptr;
        ctx.strides = n.shape.rowStrides();
    } else {
        for (0..nd) |i| ctx.strides[i] = n.strides[i];
        if (n.size() > 0) {
            // Data stays the buffer's base and the array's place in it is byte_offset.
            const b = n.buffer.?;
            b.retain();
            ctx.buffer = b;
            data = b.ptr;
            byte_offset = n.offset;
        } else {
            // Size 0: no data (the header says so), row-major strides (saturating: the other
            // dimensions may be anything, a zero beside 2^31-1s).
            ctx.strides = n.shape.rowStrides();
        }
    }
    const tensor = Tensor{
        .data = data,
        .device = .{ .device_type = kDLCPU, .device_id = 0 },
        .ndim = @intCast(nd),
        .dtype = dataTypeOf(n.dtype),
        .shape = &ctx.shape,
        .strides = &ctx.strides,
        .byte_offset = byte_offset,
    };
    if (M == Versioned) {
        ctx.managed = .{
            .version = .{ .major = major_version, .minor = minor_version },
            .manager_ctx = ctx,
            .deleter = E.deleter,
            .flags = if (copy) flag_is_copied else flag_read_only,
            .dl_tensor = tensor,
        };
    } else {
        ctx.managed = .{ .dl_tensor = tensor, .manager_ctx = ctx, .deleter = E.deleter };
    }
    _ = live_exports.fetchAdd(1, .acq_rel);
    return &ctx.managed;
}

// ---------------------------------------------------------------------------------------
// Import

const Layout = struct {
    shape: array.Shape,
    strides: [array.max_ndim]i64,
    /// Element offsets (from the first element) of the lowest and highest addressed elements.
    lo: i64,
    hi: i64,
};

fn layoutOf(t: *const Tensor) errors.Error!Layout {
    if (t.ndim < 0) return errors.fail(.invalid_argument, "[fromDlpack] Invalid number of dimensions {d}.", .{t.ndim});
    if (t.ndim > array.max_ndim)
        return errors.fail(.invalid_argument, "[fromDlpack] Arrays of more than {d} dimensions are not supported (got {d}).", .{ array.max_ndim, t.ndim });
    const nd: usize = @intCast(t.ndim);
    var l = Layout{ .shape = .{ .ndim = @intCast(nd) }, .strides = undefined, .lo = 0, .hi = 0 };
    if (nd > 0) {
        const sp = t.shape orelse return errors.fail(.invalid_argument, "[fromDlpack] The shape pointer is null for a tensor of {d} dimensions.", .{nd});
        for (0..nd) |i| {
            const d = sp[i];
            if (d < 0) return errors.fail(.invalid_argument, "[fromDlpack] Negative dimensions not allowed (dimension {d} is {d}).", .{ i, d });
            if (d > std.math.maxInt(i32))
                return errors.fail(.invalid_argument, "[fromDlpack] Dimension {d} of size {d} is larger than the maximum of 2147483647.", .{ i, d });
            l.shape.dims[i] = @intCast(d);
        }
    }
    _ = try l.shape.sizeChecked("fromDlpack");
    // Row-major strides where none are given; size-1 dimensions get their row-major stride
    // too (their stride never moves, and kernels then see the layouts they know).
    var st: i64 = 1;
    var i: usize = nd;
    while (i > 0) {
        i -= 1;
        const given = if (t.strides) |sp| sp[i] else st;
        l.strides[i] = if (l.shape.dims[i] == 1) st else given;
        st *|= l.shape.dims[i]; // saturating: checked below only when the tensor is not empty
    }
    if (l.shape.size() == 0) return l;
    for (0..nd) |k| {
        const span = @mulWithOverflow(l.strides[k], @as(i64, l.shape.dims[k] - 1));
        if (span[1] != 0) return outOfRange();
        const sum = if (span[0] < 0) @addWithOverflow(l.lo, span[0]) else @addWithOverflow(l.hi, span[0]);
        if (sum[1] != 0) return outOfRange();
        if (span[0] < 0) l.lo = sum[0] else l.hi = sum[0];
    }
    // Byte extents must fit the address space (16 bytes covers complex128).
    if (l.hi > (1 << 58) or l.lo < -(1 << 58)) return outOfRange();
    return l;
}

fn outOfRange() errors.Error {
    return errors.fail(.invalid_argument, "[fromDlpack] The shape and strides reach outside the addressable range.", .{});
}

/// Why this tensor cannot be viewed in place, or null if it can.
fn viewObstacle(src: Source, l: *const Layout, first: usize) ?[]const u8 {
    if (src.complex128) return "complex128 data is converted to complex64";
    if (l.lo < 0) return "it has negative strides";
    if (first % src.dtype.size() != 0) return "its data is not aligned to its element size";
    return null;
}

/// Copy (converting complex128) the strided source into a fresh row-major buffer of `node`.
fn copyIn(node: *Node, first: [*]const u8, src: Source, l: *const Layout) void {
    const n = node.size();
    const out_size = src.dtype.size();
    const in_size: i64 = if (src.complex128) 16 else @intCast(out_size);
    const dst = node.data();
    var idx = [_]i64{0} ** array.max_ndim;
    const nd = l.shape.ndim;
    var pos: i64 = 0;
    for (0..n) |e| {
        const p: [*]const u8 = @ptrFromInt(@as(usize, @bitCast(@as(isize, @bitCast(@intFromPtr(first))) + pos * in_size)));
        const o = dst + e * out_size;
        if (src.complex128) {
            const re: f64 = @bitCast(std.mem.readInt(u64, p[0..8], .little));
            const im: f64 = @bitCast(std.mem.readInt(u64, p[8..16], .little));
            std.mem.writeInt(u32, o[0..4], @bitCast(@as(f32, @floatCast(re))), .little);
            std.mem.writeInt(u32, o[4..8], @bitCast(@as(f32, @floatCast(im))), .little);
        } else {
            @memcpy(o[0..out_size], p[0..out_size]);
        }
        var k: usize = nd;
        while (k > 0) {
            k -= 1;
            idx[k] += 1;
            pos += l.strides[k];
            if (idx[k] < l.shape.dims[k]) break;
            pos -= l.strides[k] * l.shape.dims[k];
            idx[k] = 0;
        }
    }
}

const Built = struct { node: *Node, viewed: bool };

/// An array over (or copied from) a tensor. The tensor's owner is not touched.
fn build(t: *const Tensor, copy: i32) errors.Error!Built {
    const dev = t.device.device_type;
    if (dev != kDLCPU and dev != kDLCUDAHost and dev != kDLROCMHost)
        return errors.fail(.invalid_argument, "[fromDlpack] Only CPU memory can be imported (kDLCPU, kDLCUDAHost, kDLROCMHost); got device type {d}.", .{dev});
    if (copy < -1 or copy > 1) return errors.fail(.invalid_argument, "[fromDlpack] copy must be 1 (always), 0 (never) or -1 (if needed), got {d}.", .{copy});
    const src = try sourceOf(t.dtype);
    const l = try layoutOf(t);
    const size = l.shape.size();
    if (size == 0) {
        // Nothing to view or copy: a fresh empty array (the producer is released at once).
        return .{ .node = try array.createWithBuffer(src.dtype, l.shape, 0, "fromDlpack"), .viewed = false };
    }
    const data = t.data orelse return errors.fail(.invalid_argument, "[fromDlpack] The data pointer is null for a tensor of {d} elements.", .{size});
    const first_add = @addWithOverflow(@intFromPtr(data), t.byte_offset);
    if (first_add[1] != 0) return outOfRange();
    const first = first_add[0];
    const obstacle = viewObstacle(src, &l, first);
    if (copy == 0) if (obstacle) |why|
        return errors.fail(.invalid_argument, "[fromDlpack] copy is false, but this tensor cannot be used without a copy: {s}.", .{why});
    if (copy == 1 or obstacle != null) {
        const node = try array.createWithBuffer(src.dtype, l.shape, 0, "fromDlpack");
        copyIn(node, @ptrFromInt(first), src, &l);
        return .{ .node = node, .viewed = false };
    }
    const itemsize: usize = src.dtype.size();
    const nbytes = (@as(usize, @intCast(l.hi)) + 1) * itemsize;
    const node = try array.create(src.dtype, l.shape, .leaf, &.{}, 0);
    node.buffer = array.externalBuffer(@ptrFromInt(first), nbytes, 0) catch |e| {
        array.release(node);
        return e;
    };
    node.strides = l.strides;
    node.offset = 0;
    return .{ .node = node, .viewed = true };
}

/// Import a managed tensor (M = Versioned or Legacy); see the file comment for ownership.
pub fn importManaged(comptime M: type, m: *M, copy: i32) errors.Error!u32 {
    if (M == Versioned and m.version.major != major_version)
        return errors.fail(.invalid_argument, "[fromDlpack] DLPack version {d}.{d} is not supported (this library reads {d}.x).", .{ m.version.major, m.version.minor, major_version });
    const b = try build(&m.dl_tensor, copy);
    // Only once the handle exists does the engine take the tensor over, so a failure
    // anywhere above leaves it with the caller.
    const buffer = b.node.buffer.?;
    const h = try handles.put(b.node);
    if (b.viewed) {
        if (m.deleter) |d| buffer.on_release = .{ .func = @ptrCast(d), .ctx = m };
    } else if (m.deleter) |d| d(m);
    return h;
}

// ---------------------------------------------------------------------------------------
// C ABI

fn dlpackExport(h: u32, copy: i32) callconv(.c) ?*anyopaque {
    const n = handles.get(h, "toDlpack") catch return null;
    return exportNode(Versioned, n, copy == 1) catch null;
}
fn dlpackExportUnversioned(h: u32, copy: i32) callconv(.c) ?*anyopaque {
    const n = handles.get(h, "toDlpack") catch return null;
    return exportNode(Legacy, n, copy == 1) catch null;
}
/// The managed tensor behind a C pointer, checked for null and alignment.
fn managedArg(comptime M: type, p: ?*anyopaque) errors.Error!*M {
    const q = p orelse return errors.fail(.invalid_argument, "[fromDlpack] The managed tensor pointer is null.", .{});
    if (@intFromPtr(q) % @alignOf(M) != 0)
        return errors.fail(.invalid_argument, "[fromDlpack] The managed tensor pointer is not {d}-byte aligned.", .{@alignOf(M)});
    return @ptrCast(@alignCast(q));
}
fn dlpackImport(p: ?*anyopaque, copy: i32) callconv(.c) u32 {
    return importManaged(Versioned, managedArg(Versioned, p) catch return 0, copy) catch 0;
}
fn dlpackImportUnversioned(p: ?*anyopaque, copy: i32) callconv(.c) u32 {
    return importManaged(Legacy, managedArg(Legacy, p) catch return 0, copy) catch 0;
}
fn dlpackDelete(p: ?*anyopaque, versioned: i32) callconv(.c) void {
    if (versioned != 0) {
        const m = managedArg(Versioned, p) catch return;
        if (m.deleter) |d| d(m);
    } else {
        const m = managedArg(Legacy, p) catch return;
        if (m.deleter) |d| d(m);
    }
}
fn dlpackLiveExports() callconv(.c) f64 {
    return @floatFromInt(liveExports());
}

pub const abi = [_]util.Entry{
    util.entry("dlpack_export", dlpackExport, &.{ "h", "copy" }, "Evaluate h; a new DLManagedTensorVersioned* (DLPack 1.1, kDLCPU) viewing its buffer (flag READ_ONLY), or with copy = 1 a row-major copy (flag IS_COPIED). The consumer calls its deleter exactly once. NULL on error."),
    util.entry("dlpack_export_unversioned", dlpackExportUnversioned, &.{ "h", "copy" }, "As dlpack_export, as a legacy DLManagedTensor* (no version, no flags)."),
    util.entry("dlpack_import", dlpackImport, &.{ "managed", "copy" }, "An array from a DLManagedTensorVersioned* (CPU). copy: 1 always, 0 never (error if needed), -1 if needed. On success the engine owns the tensor and calls its deleter exactly once (at once after a copy, else when the array memory is dropped); on error (0) the caller still owns it."),
    util.entry("dlpack_import_unversioned", dlpackImportUnversioned, &.{ "managed", "copy" }, "As dlpack_import, from a legacy DLManagedTensor*."),
    util.entry("dlpack_delete", dlpackDelete, &.{ "managed", "versioned" }, "Call a managed tensor's deleter (versioned = 1: DLManagedTensorVersioned*, 0: DLManagedTensor*) for an owner that will not hand it to a consumer."),
    util.entry("dlpack_live_exports", dlpackLiveExports, &.{}, "Managed tensors exported by this library whose deleter has not run yet."),
};

// ---------------------------------------------------------------------------------------
// Tests

const testing = std.testing;

var deleter_calls: u32 = 0;
fn countingDeleter(m: ?*Versioned) callconv(.c) void {
    _ = m;
    deleter_calls += 1;
}
fn countingLegacyDeleter(m: ?*Legacy) callconv(.c) void {
    _ = m;
    deleter_calls += 1;
}

fn readAll(comptime d: Dtype, h: u32, out: []d.Type()) !void {
    const n = try handles.get(h, "test");
    try eval_mod.ensure(n);
    convert.copyConvert(n, @ptrCast(out.ptr), d);
}

fn handMade(data: ?*anyopaque, shape: []const i64, strides: ?[]const i64, dt: DataType, byte_offset: u64) Versioned {
    return .{
        .version = .{ .major = 1, .minor = 3 },
        .manager_ctx = null,
        .deleter = countingDeleter,
        .flags = 0,
        .dl_tensor = .{
            .data = data,
            .device = .{ .device_type = kDLCPU, .device_id = 0 },
            .ndim = @intCast(shape.len),
            .dtype = dt,
            .shape = shape.ptr,
            .strides = if (strides) |s| s.ptr else null,
            .byte_offset = byte_offset,
        },
    };
}

test "a hand-built tensor is viewed in place and its deleter runs once, when the last use goes" {
    deleter_calls = 0;
    var data = [_]f32{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
    // The 2x3 transpose-like view (strides 1, 4) starting at element 1 (byte_offset 4).
    const shape = [_]i64{ 2, 3 };
    const strides = [_]i64{ 1, 4 };
    var m = handMade(&data, &shape, &strides, .{ .code = kDLFloat, .bits = 32, .lanes = 1 }, 4);
    const h = try importManaged(Versioned, &m, 0);
    try testing.expectEqual(@as(u32, 0), deleter_calls);
    var out: [6]f32 = undefined;
    try readAll(.float32, h, &out);
    try testing.expectEqualSlices(f32, &.{ 1, 5, 9, 2, 6, 10 }, &out);
    // A view of it (another node on the same buffer) outlives the handle.
    const n = try handles.get(h, "test");
    n.buffer.?.retain();
    const extra = n.buffer.?;
    data[1] = 100; // visible: the array is a view of the producer's memory
    try readAll(.float32, h, &out);
    try testing.expectEqual(@as(f32, 100), out[0]);
    try handles.free(h);
    try testing.expectEqual(@as(u32, 0), deleter_calls);
    extra.release();
    try testing.expectEqual(@as(u32, 1), deleter_calls);
}

test "copies call the deleter at once; copy = 0 refuses what it would have to copy" {
    deleter_calls = 0;
    var data = [_]f64{ 1, -2, 3, -4, 5, -6 }; // 3 complex128 values
    const shape = [_]i64{3};
    var m = handMade(&data, &shape, null, .{ .code = kDLComplex, .bits = 128, .lanes = 1 }, 0);
    try testing.expectError(error.Failed, importManaged(Versioned, &m, 0));
    try testing.expectEqualStrings("[fromDlpack] copy is false, but this tensor cannot be used without a copy: complex128 data is converted to complex64.", errors.messageSlice());
    try testing.expectEqual(@as(u32, 0), deleter_calls);
    const h = try importManaged(Versioned, &m, -1);
    try testing.expectEqual(@as(u32, 1), deleter_calls);
    var out: [6]f32 = undefined;
    const n = try handles.get(h, "test");
    try testing.expectEqual(Dtype.complex64, n.dtype);
    convert.copyConvert(n, @ptrCast(&out), .complex64);
    try testing.expectEqualSlices(f32, &.{ 1, -2, 3, -4, 5, -6 }, &out);
    try handles.free(h);
    try testing.expectEqual(@as(u32, 1), deleter_calls);

    // Negative strides are copied (reversed), copy = 1 always copies.
    var ints = [_]i32{ 10, 20, 30, 40 };
    const rev = [_]i64{-1};
    const four = [_]i64{4};
    var r = handMade(&ints, &four, &rev, .{ .code = kDLInt, .bits = 32, .lanes = 1 }, 12);
    try testing.expectError(error.Failed, importManaged(Versioned, &r, 0));
    try testing.expectEqualStrings("[fromDlpack] copy is false, but this tensor cannot be used without a copy: it has negative strides.", errors.messageSlice());
    const hr = try importManaged(Versioned, &r, -1);
    var ro: [4]i32 = undefined;
    try readAll(.int32, hr, &ro);
    try testing.expectEqualSlices(i32, &.{ 40, 30, 20, 10 }, &ro);
    try handles.free(hr);
    var c = handMade(&ints, &four, null, .{ .code = kDLInt, .bits = 32, .lanes = 1 }, 0);
    const hc = try importManaged(Versioned, &c, 1);
    try testing.expectEqual(@as(u32, 3), deleter_calls);
    ints[0] = -1; // the copy does not see it
    try readAll(.int32, hc, &ro);
    try testing.expectEqualSlices(i32, &.{ 10, 20, 30, 40 }, &ro);
    try handles.free(hc);
    try testing.expectEqual(@as(u32, 3), deleter_calls);
}

test "bad tensors fail with a message and leave the deleter to the caller" {
    deleter_calls = 0;
    var data = [_]u8{0} ** 16;
    const shape = [_]i64{ 2, 2 };
    const Case = struct { m: Versioned, msg: []const u8 };
    var cases = [_]Case{
        .{ .m = handMade(&data, &shape, null, .{ .code = kDLFloat, .bits = 32, .lanes = 4 }, 0), .msg = "[fromDlpack] Vector dtypes are not supported (lanes = 4); only lanes = 1." },
        .{ .m = handMade(&data, &shape, null, .{ .code = 8, .bits = 8, .lanes = 1 }, 0), .msg = "[fromDlpack] Unsupported DLPack dtype (code 8, bits 8): mlx-bun reads bool, (u)int8-64, float16/32/64, bfloat16 and complex64/128." },
        .{ .m = handMade(null, &shape, null, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0), .msg = "[fromDlpack] The data pointer is null for a tensor of 4 elements." },
        .{ .m = handMade(&data, &.{ 2, -3 }, null, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0), .msg = "[fromDlpack] Negative dimensions not allowed (dimension 1 is -3)." },
        .{ .m = handMade(&data, &.{ 1 << 40, 2 }, null, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0), .msg = "[fromDlpack] Dimension 0 of size 1099511627776 is larger than the maximum of 2147483647." },
        .{ .m = handMade(&data, &.{ 1 << 30, 1 << 30, 1 << 30 }, null, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0), .msg = "[fromDlpack] Shape (1073741824,1073741824,1073741824) is too large: its size overflows." },
        .{ .m = handMade(&data, &shape, &.{ 1 << 62, 1 }, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0), .msg = "[fromDlpack] The shape and strides reach outside the addressable range." },
    };
    for (&cases) |*c| {
        try testing.expectEqual(@as(u32, 0), dlpackImport(&c.m, -1));
        try testing.expectEqualStrings(c.msg, errors.messageSlice());
    }
    var no_shape = handMade(&data, &shape, null, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0);
    no_shape.dl_tensor.shape = null;
    try testing.expectEqual(@as(u32, 0), dlpackImport(&no_shape, -1));
    try testing.expectEqualStrings("[fromDlpack] The shape pointer is null for a tensor of 2 dimensions.", errors.messageSlice());
    no_shape.dl_tensor.ndim = -1;
    try testing.expectEqual(@as(u32, 0), dlpackImport(&no_shape, -1));
    try testing.expectEqualStrings("[fromDlpack] Invalid number of dimensions -1.", errors.messageSlice());
    var bad_copy = handMade(&data, &shape, null, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0);
    try testing.expectEqual(@as(u32, 0), dlpackImport(&bad_copy, 2));
    try testing.expectEqualStrings("[fromDlpack] copy must be 1 (always), 0 (never) or -1 (if needed), got 2.", errors.messageSlice());
    var gpu = handMade(&data, &shape, null, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0);
    gpu.dl_tensor.device.device_type = 2;
    try testing.expectEqual(@as(u32, 0), dlpackImport(&gpu, -1));
    try testing.expectEqualStrings("[fromDlpack] Only CPU memory can be imported (kDLCPU, kDLCUDAHost, kDLROCMHost); got device type 2.", errors.messageSlice());
    var v2 = handMade(&data, &shape, null, .{ .code = kDLUInt, .bits = 8, .lanes = 1 }, 0);
    v2.version.major = 2;
    try testing.expectEqual(@as(u32, 0), dlpackImport(&v2, -1));
    try testing.expectEqualStrings("[fromDlpack] DLPack version 2.3 is not supported (this library reads 1.x).", errors.messageSlice());
    try testing.expectEqual(@as(u32, 0), dlpackImport(null, -1));
    try testing.expectEqualStrings("[fromDlpack] The managed tensor pointer is null.", errors.messageSlice());
    try testing.expectEqual(@as(u32, 0), dlpackImport(@ptrFromInt(@intFromPtr(&v2) + 4), -1));
    try testing.expectEqualStrings("[fromDlpack] The managed tensor pointer is not 8-byte aligned.", errors.messageSlice());
    try testing.expectEqual(@as(u32, 0), deleter_calls);
    // Misaligned float32 data is copied, or refused with copy = 0.
    var f = handMade(&data, &.{2}, null, .{ .code = kDLFloat, .bits = 32, .lanes = 1 }, 1);
    try testing.expectEqual(@as(u32, 0), dlpackImport(&f, 0));
    try testing.expectEqualStrings("[fromDlpack] copy is false, but this tensor cannot be used without a copy: its data is not aligned to its element size.", errors.messageSlice());
    const h = dlpackImport(&f, -1);
    try testing.expect(h != 0);
    try testing.expectEqual(@as(u32, 1), deleter_calls);
    try handles.free(h);
}

test "export then import round-trips, shares the buffer, and each deleter runs once" {
    const live0 = liveExports();
    const r = try @import("prims/creation.zig").arange(0, 12, 1, .int32, 0);
    const h = try handles.put(r);
    const m: *Versioned = @ptrCast(@alignCast(dlpackExport(h, 0).?));
    try testing.expectEqual(live0 + 1, liveExports());
    try testing.expectEqual(flag_read_only, m.flags);
    try testing.expectEqual(@as(u8, kDLInt), m.dl_tensor.dtype.code);
    try testing.expectEqual(@as(i64, 12), m.dl_tensor.shape.?[0]);
    const b = try importManaged(Versioned, m, 0);
    const nb = try handles.get(b, "test");
    try testing.expectEqual(r.buffer.?.ptr, nb.buffer.?.ptr); // no copy
    try handles.free(h);
    var out: [12]i32 = undefined;
    try readAll(.int32, b, &out);
    try testing.expectEqual(@as(i32, 11), out[11]);
    try testing.expectEqual(live0 + 1, liveExports());
    try handles.free(b);
    try testing.expectEqual(live0, liveExports());

    // The legacy struct, and an owner that disposes without a consumer.
    const h2 = try handles.put(try @import("prims/creation.zig").arange(0, 3, 1, .float32, 0));
    const l: *Legacy = @ptrCast(@alignCast(dlpackExportUnversioned(h2, 1).?));
    const b2 = dlpackImportUnversioned(l, -1);
    try testing.expect(b2 != 0);
    // The exported copy is viewed in place, so its deleter waits for b2.
    try testing.expect((try handles.get(b2, "test")).buffer.?.ptr != (try handles.get(h2, "test")).buffer.?.ptr);
    try testing.expectEqual(live0 + 1, liveExports());
    try handles.free(b2);
    try testing.expectEqual(live0, liveExports());
    const m3 = dlpackExport(h2, 0).?;
    try testing.expectEqual(live0 + 1, liveExports());
    dlpackDelete(m3, 1);
    try testing.expectEqual(live0, liveExports());
    try handles.free(h2);
}

test "legacy tensors import with their deleter" {
    deleter_calls = 0;
    var data = [_]u16{ 1, 2, 3 };
    const shape = [_]i64{3};
    var m = Legacy{
        .dl_tensor = .{ .data = &data, .device = .{ .device_type = kDLCPU, .device_id = 0 }, .ndim = 1, .dtype = .{ .code = kDLUInt, .bits = 16, .lanes = 1 }, .shape = &shape, .strides = null, .byte_offset = 0 },
        .manager_ctx = null,
        .deleter = countingLegacyDeleter,
    };
    const h = dlpackImportUnversioned(&m, 0);
    try testing.expect(h != 0);
    var out: [3]u16 = undefined;
    try readAll(.uint16, h, &out);
    try testing.expectEqualSlices(u16, &.{ 1, 2, 3 }, &out);
    try testing.expectEqual(@as(u32, 0), deleter_calls);
    try handles.free(h);
    try testing.expectEqual(@as(u32, 1), deleter_calls);
}
