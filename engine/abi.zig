//! The C ABI: the one table every binding is generated from. Each entry names an exported
//! function (prefix `mlxb_`), its implementation, its argument names and a line of docs.
//! `gen_abi.zig` turns the table into `ffi/mlxbun.h` and `ffi/symbols.ts`; a test fails when
//! the committed files drift from it.
//!
//! Rules (docs/ARCHITECTURE.md): sized integers and doubles only, at most 8 integer/pointer
//! and 8 float arguments, no struct by value. Array handles are u32 (0 = none). A failing call
//! returns 0 (handles), a negative value (statuses and counts), and `mlxb_last_error_*` say why.
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
const handles = @import("handles.zig");
const alloc = @import("alloc.zig");
const eval_mod = @import("eval.zig");
const stream_mod = @import("stream.zig");
const convert = @import("convert.zig");
const external = @import("external.zig");
const dtype_mod = @import("dtype.zig");
const prims = @import("primitives.zig");
const grad = @import("grad.zig");
const vmap_mod = @import("vmap.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;

/// Bumped whenever an entry changes meaning; the loader refuses a mismatch.
pub const abi_version: i32 = 1;

const util = @import("abi_util.zig");
pub const Entry = util.Entry;
const entry = util.entry;
const ok = util.ok;
const handleOf = util.handleOf;
const dtypeArg = util.dtypeArg;
const shapeArg = util.shapeArg;
const deviceArg = util.deviceArg;

/// The core: library, errors, handles, evaluation, devices, memory, creation.
const core = [_]Entry{
    // Library and errors
    entry("abi_version", abiVersion, &.{}, "ABI version of this library; the binding refuses a mismatch."),
    entry("last_error_code", lastErrorCode, &.{}, "Code of this thread's last error (0: none). See enum mlxb_error."),
    entry("last_error_message", lastErrorMessage, &.{}, "Message of this thread's last error, e.g. \"[reshape] Cannot reshape ...\"."),
    entry("clear_error", clearError, &.{}, "Forget this thread's last error."),
    entry("live_handles", liveHandles, &.{}, "Number of live array handles (for leak checks)."),
    entry("live_nodes", liveNodes, &.{}, "Number of live graph nodes, handles or not."),
    entry("gc_anchor", gcAnchor, &.{}, "A valid address for GC-accounting views that are never read."),
    entry("cpu_level", @import("cpu.zig").abiLevel, &.{}, "Kernel level in use (engine/cpu.zig): 0 baseline x86-64, 1 AVX2, 2 AVX-512; -1 when the kernels are compiled for this build's CPU."),
    entry("gc_finalizer", gcFinalizer, &.{}, "void(*)(void* bytes, void* handle): releases a handle from a GC finalizer, any thread."),
    // Array handles
    entry("array_free", arrayFree, &.{"h"}, "Release a handle and its slot. 0 on success."),
    entry("array_dispose", arrayDispose, &.{"h"}, "Release the array now; the slot is freed by the GC finalizer later."),
    entry("array_retain", arrayRetain, &.{"h"}, "A new handle to the same array."),
    entry("array_dtype", arrayDtype, &.{"h"}, "dtype (enum mlxb_dtype), or negative on error."),
    entry("array_ndim", arrayNdim, &.{"h"}, "Number of dimensions, or negative on error."),
    entry("array_dim", arrayDim, &.{ "h", "axis" }, "Size of one dimension, or negative on error."),
    entry("array_nbytes", arrayNbytes, &.{"h"}, "Bytes of the array's elements, or negative on error."),
    entry("array_is_evaluated", arrayIsEvaluated, &.{"h"}, "1 if the array's data is computed, 0 if not, negative on error."),
    entry("array_node_id", arrayNodeId, &.{"h"}, "Graph inspection: an id of the array's graph node (its address), equal for handles to one node; negative on error."),
    entry("array_input_count", arrayInputCount, &.{"h"}, "Graph inspection: inputs of the array's node (0 once evaluated: eval detaches them), negative on error."),
    entry("array_input", arrayInput, &.{ "h", "i" }, "Graph inspection: a new handle to input i of the array's node, 0 on error."),
    entry("array_primitive_name", arrayPrimitiveName, &.{"h"}, "Graph inspection: the name of the op that made the array (\"array\" for data), valid until the next call on this thread; empty on error."),
    entry("array_buffer_id", arrayBufferId, &.{"h"}, "An id of the buffer holding the array's data (its address), equal for views of one buffer; 0 if unevaluated, negative on error."),
    entry("array_buffer_size", arrayBufferSize, &.{"h"}, "Bytes the allocator gave the array's buffer (its size class; the data size for wrapped host memory); 0 if unevaluated, negative on error."),
    entry("array_from_data", arrayFromData, &.{ "data", "dtype", "shape", "ndim", "stream" }, "A new array holding a copy of row-major data."),
    entry("array_wrap_data", arrayWrapData, &.{ "data", "dtype", "shape", "ndim", "token" }, "A new array over host memory, no copy; token comes back from external_next_released when the engine is done with it."),
    entry("external_new_token", externalNewToken, &.{}, "A token for array_wrap_data."),
    entry("external_next_released", externalNextReleased, &.{}, "The next token whose memory the engine no longer uses, 0 if none."),
    entry("array_scalar", arrayScalar, &.{ "value", "dtype", "stream" }, "A 0-d array of a real value converted to dtype."),
    entry("array_complex_scalar", arrayComplexScalar, &.{ "re", "im", "stream" }, "A 0-d complex64 array."),
    entry("array_read", arrayRead, &.{ "h", "dst", "dtype" }, "Evaluate and copy into dst as row-major data converted to dtype. 0 on success."),
    entry("array_view_buffer", arrayViewBuffer, &.{ "h", "dtype" }, "Evaluate; a retained buffer with the array's row-major data as dtype (shared when dtype and layout allow, else a converted copy)."),
    entry("buffer_data", bufferData, &.{"buffer"}, "Address of a buffer's data."),
    entry("buffer_release", bufferRelease, &.{"buffer"}, "Release a buffer from array_view_buffer."),
    entry("buffer_finalizer", bufferFinalizer, &.{}, "void(*)(void* bytes, void* buffer): releases a view buffer from a GC finalizer."),
    // Evaluation, devices and streams
    entry("eval", evalHandles, &.{ "handles", "n" }, "Evaluate arrays. 0 on success."),
    entry("async_eval", asyncEval, &.{ "handles", "n", "stream" }, "Start evaluating arrays on a stream's worker; a ticket, 0 on error."),
    entry("ticket_state", ticketState, &.{"ticket"}, "0 pending, 1 done, -1 failed (error set), -2 unknown ticket."),
    entry("ticket_free", ticketFree, &.{"ticket"}, "Forget a finished ticket."),
    entry("synchronize", synchronize, &.{"stream"}, "Wait for a stream's queued work (-1: default stream, -2: all)."),
    entry("default_device", defaultDevice, &.{}, "This thread's default device type (0 cpu, 1 gpu)."),
    entry("set_default_device", setDefaultDevice, &.{"device"}, "Set this thread's default device type."),
    entry("is_available", isAvailable, &.{"device"}, "1 if a device type has a backend here."),
    entry("default_stream", defaultStream, &.{"device"}, "This thread's default stream of a device type."),
    entry("set_default_stream", setDefaultStream, &.{"stream"}, "Set this thread's default stream."),
    entry("new_stream", newStream, &.{"device"}, "A new stream on a device type."),
    entry("stream_device", streamDevice, &.{"stream"}, "Device type of a stream."),
    // Memory
    entry("get_active_memory", activeMemory, &.{}, "Bytes in use by arrays."),
    entry("get_peak_memory", peakMemory, &.{}, "Most bytes in use since start or the last reset."),
    entry("reset_peak_memory", resetPeakMemory, &.{}, "Set the peak to the current use."),
    entry("get_cache_memory", cacheMemory, &.{}, "Bytes held in the allocator's cache."),
    entry("clear_cache", clearCache, &.{}, "Free the allocator's cache."),
    entry("get_memory_limit", memoryLimit, &.{}, "The memory limit in bytes."),
    entry("set_memory_limit", setMemoryLimit, &.{"limit"}, "Set the memory limit; returns the previous one (negative on error)."),
    entry("set_cache_limit", setCacheLimit, &.{"limit"}, "Set the cache limit (0 disables); returns the previous one."),
    // Ops
    entry("astype", astype, &.{ "a", "dtype", "stream" }, "a converted to dtype."),
    entry("broadcast_to", broadcastTo, &.{ "a", "shape", "ndim", "stream" }, "a broadcast to shape (a view)."),
    entry("stop_gradient", stopGradient, &.{ "a", "stream" }, "The identity (a view); gradients do not flow through it."),
    entry("depends", depends, &.{ "a", "deps", "ndeps", "stream" }, "a (a view) evaluated only after the ndeps arrays of deps."),
    // Transforms
    entry("trace_begin", traceBegin, &.{}, "A transform starts tracing: evaluated tracers keep their graph until trace_end."),
    entry("trace_end", traceEnd, &.{}, "The transform that called trace_begin is done tracing."),
    entry("is_tracing", isTracing, &.{}, "1 while a transform is tracing, else 0."),
    entry("tracer", tracer, &.{ "a", "stream" }, "A tracer for a (an identity node the transform differentiates with respect to)."),
    entry("vjp", vjp, &.{ "outputs", "noutputs", "primals", "nprimals", "cotangents", "stream" }, "Cotangents of the primals (tracers) of traced outputs; returns nprimals and leaves the handles for results_take, negative on error."),
    entry("vmap", vmap, &.{ "outputs", "noutputs", "placeholders", "nplaceholders", "batched", "batch", "stream" }, "Outputs traced from placeholders, rebuilt on the batched inputs (batch axis first, size batch); returns noutputs and leaves the results (batch axis first) for results_take, negative on error."),
    entry("results_take", resultsTake, &.{"i"}, "Handle i of the last multi-result call (vjp, custom_outputs); the caller owns it. 0 if none."),
    entry("custom_set_vjp_callback", customSetVjpCallback, &.{"callback"}, "int (*)(uint32_t token, uint32_t n_outputs): the host's vjp for custom functions (see engine/grad.zig)."),
    entry("custom_set_vmap_callback", customSetVmapCallback, &.{"callback"}, "int (*)(uint32_t token, uint32_t n_outputs, uint32_t batch, uint32_t mapped): the host's vmap rule for custom functions (see engine/grad.zig)."),
    entry("custom_outputs", customOutputs, &.{ "token", "values", "nvalues", "primals", "nprimals", "stream" }, "Outputs of a custom function call (results_take); token names the call to the host's vjp. Returns nvalues, negative on error."),
    entry("custom_return", customReturn, &.{"a"}, "From inside the vjp (vmap) callback: the next input cotangent (batched output). 0 on success."),
    entry("full", full, &.{ "shape", "ndim", "vals", "dtype", "stream" }, "vals broadcast to shape, as dtype (-1: vals' dtype)."),
    entry("arange", arange, &.{ "start", "stop", "step", "dtype", "stream" }, "start, start + step, ... below stop."),
    entry("linspace", linspace, &.{ "start", "stop", "num", "dtype", "stream" }, "num evenly spaced values from start to stop."),
    entry("eye", eye, &.{ "n", "m", "k", "dtype", "stream" }, "n x m with ones on diagonal k."),
    entry("tri", tri, &.{ "n", "m", "k", "dtype", "stream" }, "n x m with ones at and below diagonal k."),
    entry("tril", tril, &.{ "a", "k", "stream" }, "a with elements above diagonal k zeroed."),
    entry("triu", triu, &.{ "a", "k", "stream" }, "a with elements below diagonal k zeroed."),
};

/// Every exported function: the core, then each op family's own entries.
pub const table = core ++ prims.elementwise.abi ++ prims.reduce.abi ++ prims.shape.abi ++ prims.sort.abi ++ prims.indexing.abi ++ prims.random.abi ++ prims.matmul.abi ++ prims.bytes.abi ++ @import("dlpack.zig").abi ++ prims.quantized.abi ++ prims.fft.abi ++ prims.linalg.abi ++ prims.conv.abi ++ @import("debug.zig").abi ++ prims.fast.abi ++ @import("compile.zig").abi ++ @import("fuse.zig").abi;

/// Enums exported into the header and the TS symbol table.
pub const enums = .{
    .{ "dtype", Dtype },
    .{ "error", errors.Code },
    .{ "device", stream_mod.DeviceType },
} ++ prims.elementwise.abi_enums ++ prims.reduce.abi_enums ++ prims.shape.abi_enums ++ prims.sort.abi_enums ++ prims.indexing.abi_enums ++ prims.random.abi_enums ++ prims.matmul.abi_enums ++ prims.bytes.abi_enums ++ prims.quantized.abi_enums ++ prims.fft.abi_enums ++ prims.linalg.abi_enums ++ prims.conv.abi_enums ++ prims.fast.abi_enums;

comptime {
    for (table) |e| {
        @export(&e.func.f, .{ .name = "mlxb_" ++ e.name });
        const info = @typeInfo(@TypeOf(e.func.f)).@"fn";
        if (info.params.len != e.args.len) @compileError("mlxb_" ++ e.name ++ ": argument names do not match the signature");
        if (info.calling_convention != .x86_64_sysv and info.calling_convention != .aarch64_aapcs and
            info.calling_convention != .aarch64_aapcs_darwin and info.calling_convention != .x86_64_win)
        {
            @compileError("mlxb_" ++ e.name ++ " must be callconv(.c)");
        }
        var ints = 0;
        var floats = 0;
        for (info.params) |p| {
            if (p.type.? == f64 or p.type.? == f32) floats += 1 else ints += 1;
        }
        if (ints > 8 or floats > 8) @compileError("mlxb_" ++ e.name ++ ": more than 8 integer or 8 float arguments");
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

const max_eval_args = 1 << 20;

/// Gather the nodes of a handle list (no references taken: handles keep them alive).
fn nodesOf(hs: ?[*]const u32, n: u32, op: []const u8, buf: []*Node) errors.Error![]*Node {
    if (n == 0) return buf[0..0];
    const p = hs orelse return errors.fail(.invalid_argument, "[{s}] The handle list is null.", .{op});
    if (n > buf.len) return errors.fail(.invalid_argument, "[{s}] Too many arrays at once ({d}; at most {d}).", .{ op, n, buf.len });
    for (p[0..n], 0..) |h, i| buf[i] = try handles.get(h, op);
    return buf[0..n];
}

// ---------------------------------------------------------------------------------------
// Library and errors

fn abiVersion() callconv(.c) i32 {
    return abi_version;
}
fn lastErrorCode() callconv(.c) i32 {
    return @intFromEnum(errors.code());
}
fn lastErrorMessage() callconv(.c) [*:0]const u8 {
    return errors.message();
}
fn clearError() callconv(.c) void {
    errors.clear();
}
fn liveHandles() callconv(.c) u32 {
    return handles.liveCount();
}
fn liveNodes() callconv(.c) f64 {
    return @floatFromInt(array.liveNodes());
}

var anchor: [64]u8 align(64) = [_]u8{0} ** 64;
fn gcAnchor() callconv(.c) ?*anyopaque {
    return &anchor;
}
fn finalizeHandle(data: ?*anyopaque, ctx: ?*anyopaque) callconv(.c) void {
    _ = data;
    handles.gcRelease(@truncate(@intFromPtr(ctx)));
}
fn gcFinalizer() callconv(.c) ?*const anyopaque {
    return @ptrCast(&finalizeHandle);
}

// ---------------------------------------------------------------------------------------
// Arrays

fn arrayFree(h: u32) callconv(.c) i32 {
    return ok(handles.free(h));
}
fn arrayDispose(h: u32) callconv(.c) i32 {
    return ok(handles.dispose(h));
}
fn arrayRetain(h: u32) callconv(.c) u32 {
    const n = handles.get(h, "retain") catch return 0;
    n.retain();
    return handles.put(n) catch 0;
}
fn arrayDtype(h: u32) callconv(.c) i32 {
    const n = handles.get(h, "dtype") catch return -@intFromEnum(errors.code());
    return @intFromEnum(n.dtype);
}
fn arrayNdim(h: u32) callconv(.c) i32 {
    const n = handles.get(h, "ndim") catch return -@intFromEnum(errors.code());
    return n.shape.ndim;
}
fn arrayDim(h: u32, axis: u32) callconv(.c) i32 {
    const n = handles.get(h, "shape") catch return -@intFromEnum(errors.code());
    if (axis >= n.shape.ndim) {
        errors.set(.invalid_argument, "[shape] Axis {d} is out of bounds for array of dimension {d}.", .{ axis, n.shape.ndim });
        return -@intFromEnum(errors.Code.invalid_argument);
    }
    return n.shape.dims[axis];
}
fn arrayNbytes(h: u32) callconv(.c) f64 {
    const n = handles.get(h, "nbytes") catch return -@as(f64, @floatFromInt(@intFromEnum(errors.code())));
    return @floatFromInt(n.nbytes());
}
fn arrayIsEvaluated(h: u32) callconv(.c) i32 {
    const n = handles.get(h, "is_evaluated") catch return -@intFromEnum(errors.code());
    return @intFromBool(n.isEvaluated());
}

fn arrayNodeId(h: u32) callconv(.c) f64 {
    const n = handles.get(h, "node_id") catch return -@as(f64, @floatFromInt(@intFromEnum(errors.code())));
    return @floatFromInt(@intFromPtr(n));
}
fn arrayInputCount(h: u32) callconv(.c) i32 {
    const n = handles.get(h, "inputs") catch return -@intFromEnum(errors.code());
    eval_mod.settle(n);
    if (n.isEvaluated()) return 0;
    return @intCast(n.inputs.len);
}
fn arrayInput(h: u32, i: u32) callconv(.c) u32 {
    const n = handles.get(h, "inputs") catch return 0;
    eval_mod.settle(n);
    if (n.isEvaluated() or i >= n.inputs.len) {
        errors.set(.invalid_argument, "[inputs] Input {d} is out of range for a node with {d} inputs.", .{ i, if (n.isEvaluated()) 0 else n.inputs.len });
        return 0;
    }
    const in = n.inputs[i];
    in.retain();
    return handles.put(in) catch 0;
}
threadlocal var prim_name_buf: [128:0]u8 = undefined;
fn arrayPrimitiveName(h: u32) callconv(.c) [*:0]const u8 {
    const n = handles.get(h, "primitive_name") catch {
        prim_name_buf[0] = 0;
        return &prim_name_buf;
    };
    eval_mod.settle(n);
    const name = n.prim.name();
    const len = @min(name.len, prim_name_buf.len);
    @memcpy(prim_name_buf[0..len], name[0..len]);
    prim_name_buf[len] = 0;
    return &prim_name_buf;
}
fn arrayBufferId(h: u32) callconv(.c) f64 {
    const n = handles.get(h, "buffer_id") catch return -@as(f64, @floatFromInt(@intFromEnum(errors.code())));
    eval_mod.settle(n);
    if (!n.isEvaluated()) return 0;
    const b = n.buffer orelse return 0;
    return @floatFromInt(@intFromPtr(b));
}
fn arrayBufferSize(h: u32) callconv(.c) f64 {
    const n = handles.get(h, "buffer_size") catch return -@as(f64, @floatFromInt(@intFromEnum(errors.code())));
    eval_mod.settle(n);
    if (!n.isEvaluated()) return 0;
    const b = n.buffer orelse return 0;
    return @floatFromInt(if (b.block.size != 0) b.block.size else b.nbytes);
}

fn fromData(data: ?*const anyopaque, dtype_v: u32, shape_p: ?[*]const i32, ndim: u32, s: i32) errors.Error!*Node {
    const dtype = try dtypeArg(dtype_v, "array");
    const shape = try shapeArg(shape_p, ndim, "array");
    const stream = try stream_mod.resolve(s, "array");
    const node = try array.createWithBuffer(dtype, shape, stream, "array");
    const nbytes = node.nbytes();
    if (nbytes > 0) {
        const src = data orelse {
            array.release(node);
            return errors.fail(.invalid_argument, "[array] The data pointer is null.", .{});
        };
        @memcpy(node.data()[0..nbytes], @as([*]const u8, @ptrCast(src))[0..nbytes]);
    }
    return node;
}
fn arrayFromData(data: ?*const anyopaque, dtype: u32, shape: ?[*]const i32, ndim: u32, s: i32) callconv(.c) u32 {
    return handleOf(fromData(data, dtype, shape, ndim, s));
}

fn wrapData(data: ?*anyopaque, dtype_v: u32, shape_p: ?[*]const i32, ndim: u32, token: u32) errors.Error!*Node {
    const dtype = try dtypeArg(dtype_v, "array");
    const shape = try shapeArg(shape_p, ndim, "array");
    const nbytes = shape.size() * dtype.size();
    const ptr: [*]u8 = @ptrCast(data orelse return errors.fail(.invalid_argument, "[array] The data pointer is null.", .{}));
    if (@intFromPtr(ptr) % dtype.size() != 0)
        return errors.fail(.invalid_argument, "[array] Wrapped memory must be aligned to {d} bytes for {s}.", .{ dtype.size(), dtype.name() });
    const node = try array.create(dtype, shape, .leaf, &.{}, 0);
    node.buffer = array.externalBuffer(ptr, nbytes, token) catch |e| {
        array.release(node);
        return e;
    };
    node.setRowContiguousStrides();
    return node;
}
fn arrayWrapData(data: ?*anyopaque, dtype: u32, shape: ?[*]const i32, ndim: u32, token: u32) callconv(.c) u32 {
    return handleOf(wrapData(data, dtype, shape, ndim, token));
}
fn externalNewToken() callconv(.c) u32 {
    return external.newToken();
}
fn externalNextReleased() callconv(.c) u32 {
    return external.next();
}

fn scalar(value: f64, dtype_v: u32, s: i32) errors.Error!*Node {
    const dtype = try dtypeArg(dtype_v, "array");
    const stream = try stream_mod.resolve(s, "array");
    const node = try array.createWithBuffer(dtype, .{}, stream, "array");
    switch (dtype) {
        inline else => |D| @as(*D.Type(), @ptrCast(@alignCast(node.data()))).* = convert.cast(.float64, D, value),
    }
    return node;
}
fn arrayScalar(value: f64, dtype: u32, s: i32) callconv(.c) u32 {
    return handleOf(scalar(value, dtype, s));
}
fn complexScalar(re: f64, im: f64, s: i32) errors.Error!*Node {
    const stream = try stream_mod.resolve(s, "array");
    const node = try array.createWithBuffer(.complex64, .{}, stream, "array");
    @as(*dtype_mod.Complex64, @ptrCast(@alignCast(node.data()))).* = .{ .re = @floatCast(re), .im = @floatCast(im) };
    return node;
}
fn arrayComplexScalar(re: f64, im: f64, s: i32) callconv(.c) u32 {
    return handleOf(complexScalar(re, im, s));
}

fn read(h: u32, dst: ?*anyopaque, dtype_v: u32) errors.Error!void {
    const n = try handles.get(h, "read");
    const dtype = try dtypeArg(dtype_v, "read");
    try eval_mod.ensure(n);
    if (n.size() == 0) return;
    const d = dst orelse return errors.fail(.invalid_argument, "[read] The destination pointer is null.", .{});
    convert.copyConvert(n, @ptrCast(d), dtype);
}
fn arrayRead(h: u32, dst: ?*anyopaque, dtype: u32) callconv(.c) i32 {
    return ok(read(h, dst, dtype));
}

fn viewBuffer(h: u32, dtype_v: u32) errors.Error!*array.Buffer {
    const n = try handles.get(h, "view");
    const dtype = try dtypeArg(dtype_v, "view");
    try eval_mod.ensure(n);
    if (dtype == n.dtype and n.isRowContiguous() and n.offset == 0 and n.buffer.?.nbytes >= n.nbytes()) {
        n.buffer.?.retain();
        return n.buffer.?;
    }
    const buf = try array.newBuffer(n.size() * dtype.size(), "view");
    if (n.size() > 0) convert.copyConvert(n, buf.ptr, dtype);
    return buf;
}
fn arrayViewBuffer(h: u32, dtype: u32) callconv(.c) ?*anyopaque {
    return viewBuffer(h, dtype) catch null;
}
fn bufferData(buf: ?*anyopaque) callconv(.c) ?*anyopaque {
    const b: *array.Buffer = @ptrCast(@alignCast(buf orelse return null));
    return b.ptr;
}
fn bufferRelease(buf: ?*anyopaque) callconv(.c) void {
    const b: *array.Buffer = @ptrCast(@alignCast(buf orelse return));
    b.release();
}
fn finalizeBuffer(data: ?*anyopaque, ctx: ?*anyopaque) callconv(.c) void {
    _ = data;
    bufferRelease(ctx);
}
fn bufferFinalizer() callconv(.c) ?*const anyopaque {
    return @ptrCast(&finalizeBuffer);
}

// ---------------------------------------------------------------------------------------
// Evaluation, devices, streams

fn evalImpl(hs: ?[*]const u32, n: u32) errors.Error!void {
    var stack_buf: [64]*Node = undefined;
    if (n <= stack_buf.len) return eval_mod.eval(try nodesOf(hs, n, "eval", &stack_buf));
    if (n > max_eval_args) return errors.fail(.invalid_argument, "[eval] Too many arrays at once ({d}).", .{n});
    const buf = std.heap.c_allocator.alloc(*Node, n) catch return errors.fail(.out_of_memory, "[eval] Out of memory.", .{});
    defer std.heap.c_allocator.free(buf);
    return eval_mod.eval(try nodesOf(hs, n, "eval", buf));
}
fn evalHandles(hs: ?[*]const u32, n: u32) callconv(.c) i32 {
    return ok(evalImpl(hs, n));
}

fn asyncEvalImpl(hs: ?[*]const u32, n: u32, s: i32) errors.Error!u32 {
    const stream = try stream_mod.resolve(s, "async_eval");
    if (n > max_eval_args) return errors.fail(.invalid_argument, "[async_eval] Too many arrays at once ({d}).", .{n});
    const buf = std.heap.c_allocator.alloc(*Node, @max(n, 1)) catch return errors.fail(.out_of_memory, "[async_eval] Out of memory.", .{});
    defer std.heap.c_allocator.free(buf);
    return eval_mod.asyncEval(try nodesOf(hs, n, "async_eval", buf), stream);
}
fn asyncEval(hs: ?[*]const u32, n: u32, s: i32) callconv(.c) u32 {
    return asyncEvalImpl(hs, n, s) catch 0;
}
fn ticketState(t: u32) callconv(.c) i32 {
    return eval_mod.ticketState(t);
}
fn ticketFree(t: u32) callconv(.c) i32 {
    return ok(eval_mod.ticketFree(t));
}
fn synchronize(s: i32) callconv(.c) i32 {
    if (s == -2) {
        eval_mod.synchronize(null);
        return 0;
    }
    const stream = stream_mod.resolve(s, "synchronize") catch return -@intFromEnum(errors.code());
    eval_mod.synchronize(stream);
    return 0;
}
fn defaultDevice() callconv(.c) i32 {
    return @intFromEnum(stream_mod.defaultDevice());
}
fn setDefaultDevice(d: u32) callconv(.c) i32 {
    return ok(blk: {
        const dev = deviceArg(d, "set_default_device") catch |e| break :blk e;
        break :blk stream_mod.setDefaultDevice(dev);
    });
}
fn isAvailable(d: u32) callconv(.c) i32 {
    const dev = deviceArg(d, "is_available") catch return -@intFromEnum(errors.code());
    return @intFromBool(stream_mod.isAvailable(dev));
}
fn defaultStream(d: u32) callconv(.c) i32 {
    const dev = deviceArg(d, "default_stream") catch return -@intFromEnum(errors.code());
    const s = stream_mod.defaultStreamOf(dev) catch return -@intFromEnum(errors.code());
    return @intCast(s);
}
fn setDefaultStream(s: u32) callconv(.c) i32 {
    return ok(stream_mod.setDefaultStream(s));
}
fn newStream(d: u32) callconv(.c) i32 {
    const dev = deviceArg(d, "new_stream") catch return -@intFromEnum(errors.code());
    const s = stream_mod.newStream(dev) catch return -@intFromEnum(errors.code());
    return @intCast(s);
}
fn streamDevice(s: u32) callconv(.c) i32 {
    const st = stream_mod.check(s, "stream_device") catch return -@intFromEnum(errors.code());
    return @intFromEnum(stream_mod.deviceOf(st));
}

// ---------------------------------------------------------------------------------------
// Memory

fn bytes(n: usize) f64 {
    return @floatFromInt(n);
}
fn activeMemory() callconv(.c) f64 {
    return bytes(alloc.activeMemory());
}
fn peakMemory() callconv(.c) f64 {
    return bytes(alloc.peakMemory());
}
fn resetPeakMemory() callconv(.c) void {
    alloc.resetPeakMemory();
}
fn cacheMemory() callconv(.c) f64 {
    return bytes(alloc.cacheMemory());
}
fn clearCache() callconv(.c) void {
    alloc.clearCache();
}
fn memoryLimit() callconv(.c) f64 {
    return bytes(alloc.getMemoryLimit());
}
fn limitArg(v: f64, op: []const u8) errors.Error!usize {
    if (!(v >= 0) or v > 9.0e18) return errors.fail(.invalid_argument, "[{s}] The limit must be a non-negative number of bytes (got {d}).", .{ op, v });
    return @intFromFloat(@floor(v));
}
fn setMemoryLimit(v: f64) callconv(.c) f64 {
    const limit = limitArg(v, "set_memory_limit") catch return -1;
    return bytes(alloc.setMemoryLimit(limit));
}
fn setCacheLimit(v: f64) callconv(.c) f64 {
    const limit = limitArg(v, "set_cache_limit") catch return -1;
    return bytes(alloc.setCacheLimit(limit));
}

// ---------------------------------------------------------------------------------------
// Ops

fn traceBegin() callconv(.c) void {
    array.traceBegin();
}
fn isTracing() callconv(.c) u32 {
    return @intFromBool(array.isTracing());
}
fn traceEnd() callconv(.c) void {
    array.traceEnd();
}
fn tracer(h: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const x = handles.get(h, "tracer") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "tracer") catch |e| break :blk e;
        const t = prims.copy.depends(x, &.{}, stream) catch |e| break :blk e;
        t.tracer = true;
        break :blk t;
    });
}

fn vmapImpl(outs_p: ?[*]const u32, nout: u32, ph_p: ?[*]const u32, nph: u32, bat_p: ?[*]const u32, batch: i32, s: i32) errors.Error!i32 {
    const a = std.heap.c_allocator;
    if (nout > max_eval_args or nph > max_eval_args) return errors.fail(.invalid_argument, "[vmap] Too many arrays.", .{});
    const buf = a.alloc(*Node, @as(usize, nout) * 2 + @as(usize, nph) * 2 + 1) catch return errors.fail(.out_of_memory, "[vmap] Out of memory.", .{});
    defer a.free(buf);
    const outs = try nodesOf(outs_p, nout, "vmap", buf[0..nout]);
    const phs = try nodesOf(ph_p, nph, "vmap", buf[nout .. nout + nph]);
    const bat = try nodesOf(bat_p, nph, "vmap", buf[nout + nph .. nout + 2 * nph]);
    for (phs, bat) |p, x| {
        if (x.shape.ndim != p.shape.ndim + 1 or x.shape.dims[0] != batch)
            return errors.fail(.invalid_argument, "[vmap] A batched input does not match its placeholder.", .{});
    }
    const stream = try stream_mod.resolve(s, "vmap");
    const res = buf[nout + 2 * nph .. 2 * nout + 2 * nph];
    try vmap_mod.vmap(outs, phs, bat, batch, res, stream);
    grad.clearResults();
    for (res, 0..) |r, k| grad.pushResult(r) catch |e| {
        for (res[k + 1 ..]) |rest| array.release(rest);
        grad.clearResults();
        return e;
    };
    return @intCast(nout);
}
fn vmap(outs: ?[*]const u32, nout: u32, phs: ?[*]const u32, nph: u32, bat: ?[*]const u32, batch: i32, s: i32) callconv(.c) i32 {
    return vmapImpl(outs, nout, phs, nph, bat, batch, s) catch -@as(i32, @intFromEnum(errors.code()));
}

fn customSetVjpCallback(cb: ?*anyopaque) callconv(.c) void {
    grad.custom_vjp_callback = if (cb) |p| @ptrCast(@alignCast(p)) else null;
}

fn customSetVmapCallback(cb: ?*anyopaque) callconv(.c) void {
    grad.custom_vmap_callback = if (cb) |p| @ptrCast(@alignCast(p)) else null;
}

fn customOutputsImpl(token: u32, vals_p: ?[*]const u32, nvals: u32, prim_p: ?[*]const u32, nprim: u32, s: i32) errors.Error!i32 {
    const a = std.heap.c_allocator;
    if (nvals > max_eval_args or nprim > max_eval_args) return errors.fail(.invalid_argument, "[custom_function] Too many arrays.", .{});
    const buf = a.alloc(*Node, @as(usize, nvals) + nprim + 1) catch return errors.fail(.out_of_memory, "[custom_function] Out of memory.", .{});
    defer a.free(buf);
    const vals = try nodesOf(vals_p, nvals, "custom_function", buf[0..nvals]);
    const prims_ = try nodesOf(prim_p, nprim, "custom_function", buf[nvals .. nvals + nprim]);
    const stream = try stream_mod.resolve(s, "custom_function");
    try grad.customOutputs(token, vals, prims_, stream);
    return @intCast(nvals);
}
fn customOutputs(token: u32, vals: ?[*]const u32, nvals: u32, primals: ?[*]const u32, nprim: u32, s: i32) callconv(.c) i32 {
    return customOutputsImpl(token, vals, nvals, primals, nprim, s) catch -@as(i32, @intFromEnum(errors.code()));
}
fn customReturn(h: u32) callconv(.c) i32 {
    return ok(blk: {
        const x = handles.get(h, "custom_function") catch |e| break :blk e;
        break :blk grad.customReturn(x);
    });
}

fn resultsTake(i: u32) callconv(.c) u32 {
    return grad.takeResult(i);
}

fn vjpImpl(outs_p: ?[*]const u32, nout: u32, prim_p: ?[*]const u32, nprim: u32, cots_p: ?[*]const u32, s: i32) errors.Error!i32 {
    const a = std.heap.c_allocator;
    if (nout > max_eval_args or nprim > max_eval_args) return errors.fail(.invalid_argument, "[vjp] Too many arrays.", .{});
    const buf = a.alloc(*Node, @as(usize, nout) * 2 + nprim + 1) catch return errors.fail(.out_of_memory, "[vjp] Out of memory.", .{});
    defer a.free(buf);
    const outs = try nodesOf(outs_p, nout, "vjp", buf[0..nout]);
    const cots = try nodesOf(cots_p, nout, "vjp", buf[nout .. 2 * nout]);
    const primals = try nodesOf(prim_p, nprim, "vjp", buf[2 * nout .. 2 * nout + nprim]);
    const stream = try stream_mod.resolve(s, "vjp");
    const grads = a.alloc(*Node, @max(nprim, 1)) catch return errors.fail(.out_of_memory, "[vjp] Out of memory.", .{});
    defer a.free(grads);
    try grad.vjp(outs, primals, cots, grads[0..nprim], stream);
    // (Custom rules run during the walk use the results list too.)
    grad.clearResults();
    for (grads[0..nprim], 0..) |g, k| grad.pushResult(g) catch |e| {
        for (grads[k + 1 .. nprim]) |rest| array.release(rest);
        grad.clearResults();
        return e;
    };
    return @intCast(nprim);
}
fn vjp(outs: ?[*]const u32, nout: u32, primals: ?[*]const u32, nprim: u32, cots: ?[*]const u32, s: i32) callconv(.c) i32 {
    return vjpImpl(outs, nout, primals, nprim, cots, s) catch -@as(i32, @intFromEnum(errors.code()));
}

fn stopGradient(h: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const x = handles.get(h, "stop_gradient") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "stop_gradient") catch |e| break :blk e;
        break :blk prims.copy.stopGradient(x, stream);
    });
}

fn depends(h: u32, deps: ?[*]const u32, ndeps: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const x = handles.get(h, "depends") catch |e| break :blk e;
        if (ndeps > 0 and deps == null) break :blk errors.fail(.invalid_argument, "[depends] The handle list is null.", .{});
        if (ndeps > 1 << 20) break :blk errors.fail(.invalid_argument, "[depends] Too many arrays ({d}).", .{ndeps});
        const list = std.heap.c_allocator.alloc(*array.Node, ndeps) catch break :blk errors.fail(.out_of_memory, "[depends] Out of memory.", .{});
        defer std.heap.c_allocator.free(list);
        for (0..ndeps) |i| list[i] = handles.get(deps.?[i], "depends") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "depends") catch |e| break :blk e;
        break :blk prims.copy.depends(x, list, stream);
    });
}

fn astype(h: u32, dtype_v: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const x = handles.get(h, "astype") catch |e| break :blk e;
        const dtype = dtypeArg(dtype_v, "astype") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "astype") catch |e| break :blk e;
        break :blk prims.copy.astype(x, dtype, stream);
    });
}

fn broadcastTo(h: u32, shape_p: ?[*]const i32, ndim: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const x = handles.get(h, "broadcast_to") catch |e| break :blk e;
        const shape = shapeArg(shape_p, ndim, "broadcast_to") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "broadcast_to") catch |e| break :blk e;
        break :blk prims.copy.broadcastTo(x, shape, stream);
    });
}

fn fullImpl(shape_p: ?[*]const i32, ndim: u32, vals_h: u32, dtype_v: i32, s: i32) errors.Error!*Node {
    const shape = try shapeArg(shape_p, ndim, "full");
    const vals = try handles.get(vals_h, "full");
    const dtype = if (dtype_v < 0) vals.dtype else try dtypeArg(@intCast(dtype_v), "full");
    const stream = try stream_mod.resolve(s, "full");
    const typed = try prims.copy.astype(vals, dtype, stream);
    defer array.release(typed);
    return prims.copy.broadcastTo(typed, shape, stream);
}
fn full(shape: ?[*]const i32, ndim: u32, vals: u32, dtype: i32, s: i32) callconv(.c) u32 {
    return handleOf(fullImpl(shape, ndim, vals, dtype, s));
}

fn arange(start: f64, stop: f64, step: f64, dtype_v: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const dtype = dtypeArg(dtype_v, "arange") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "arange") catch |e| break :blk e;
        break :blk prims.creation.arange(start, stop, step, dtype, stream);
    });
}

fn linspace(start: f64, stop: f64, num: i32, dtype_v: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const dtype = dtypeArg(dtype_v, "linspace") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "linspace") catch |e| break :blk e;
        break :blk prims.creation.linspace(start, stop, num, dtype, stream);
    });
}

fn eye(n: i32, m: i32, k: i32, dtype_v: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const dtype = dtypeArg(dtype_v, "eye") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "eye") catch |e| break :blk e;
        break :blk prims.creation.eye(n, m, k, dtype, stream);
    });
}

fn tri(n: i32, m: i32, k: i32, dtype_v: u32, s: i32) callconv(.c) u32 {
    return handleOf(blk: {
        const dtype = dtypeArg(dtype_v, "tri") catch |e| break :blk e;
        const stream = stream_mod.resolve(s, "tri") catch |e| break :blk e;
        break :blk prims.creation.tri(n, m, k, dtype, stream);
    });
}

fn triMask(h: u32, k: i32, s: i32, upper: bool) errors.Error!*Node {
    const op = if (upper) "triu" else "tril";
    const x = try handles.get(h, op);
    const stream = try stream_mod.resolve(s, op);
    return prims.creation.triMask(x, k, upper, stream);
}
fn tril(h: u32, k: i32, s: i32) callconv(.c) u32 {
    return handleOf(triMask(h, k, s, false));
}
fn triu(h: u32, k: i32, s: i32) callconv(.c) u32 {
    return handleOf(triMask(h, k, s, true));
}

test "graph inspection and buffer entries" {
    const testing = std.testing;
    const x = try array.createWithBuffer(.float32, try array.Shape.fromSlice(&.{ 4 }, "test"), 0, "test");
    @memset(x.data()[0..x.nbytes()], 0);
    const hx = try handles.put(x);
    defer _ = arrayFree(hx);
    const y = try prims.elementwise.binary(.add, x, x, 0);
    const hy = try handles.put(y);
    defer _ = arrayFree(hy);
    try testing.expectEqual(@as(i32, 2), arrayInputCount(hy));
    try testing.expectEqual(@as(i32, 0), arrayInputCount(hx));
    const h0 = arrayInput(hy, 0);
    try testing.expect(h0 != 0);
    try testing.expectEqual(arrayNodeId(hx), arrayNodeId(h0));
    _ = arrayFree(h0);
    try testing.expectEqual(@as(u32, 0), arrayInput(hy, 2));
    errors.clear();
    try testing.expectEqualStrings("add", std.mem.span(arrayPrimitiveName(hy)));
    try testing.expectEqualStrings("array", std.mem.span(arrayPrimitiveName(hx)));
    try testing.expectEqual(@as(f64, 0), arrayBufferId(hy)); // not evaluated
    try testing.expect(arrayBufferId(hx) > 0);
    try testing.expect(arrayBufferSize(hx) >= 16);
    const hs = [_]u32{hy};
    try testing.expectEqual(@as(i32, 0), evalHandles(&hs, 1));
    try testing.expectEqual(@as(i32, 0), arrayInputCount(hy)); // detached by eval
    try testing.expect(arrayBufferId(hy) > 0);
    try testing.expect(arrayBufferId(hy) != arrayBufferId(hx));
}
