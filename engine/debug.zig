//! Leak accounting at a checkpoint (`mlxb_debug_leak_report`): every live graph node must be
//! reachable from a live handle (through inputs), and every byte the allocator has handed out
//! must belong to a buffer of a reachable node. What is not is reported as leaked. Meant for a
//! quiescent moment (no evaluation in flight, e.g. the end of a test run after a garbage
//! collection); buffers the host still borrows (TypedArray views, DLPack exports) count as
//! unaccounted bytes until it lets them go.
//!
//! With `zig build -Dsanitize=true` the allocator also poisons blocks as they are handed out
//! and freed (see alloc.zig), so a kernel reading memory it does not own gives garbage results
//! that tests notice.
const std = @import("std");
const array = @import("array.zig");
const alloc = @import("alloc.zig");
const handles = @import("handles.zig");
const eval_mod = @import("eval.zig");
const util = @import("abi_util.zig");
const Node = array.Node;

pub const Report = struct {
    live_handles: usize = 0,
    live_nodes: usize = 0,
    reachable_nodes: usize = 0,
    active_bytes: usize = 0,
    reachable_bytes: usize = 0,
    /// Bytes of reachable buffers that something else (the host, a DLPack consumer) also holds.
    shared_buffers: usize = 0,

    pub fn leakedNodes(r: Report) usize {
        return r.live_nodes -| r.reachable_nodes;
    }
    pub fn unaccountedBytes(r: Report) usize {
        return r.active_bytes -| r.reachable_bytes;
    }
};

const Walk = struct {
    nodes: std.AutoHashMapUnmanaged(*Node, void) = .empty,
    buffers: std.AutoHashMapUnmanaged(*array.Buffer, u32) = .empty,
    stack: std.ArrayList(*Node) = .empty,
    oom: bool = false,

    fn visit(w: *Walk, n: *Node) void {
        const gop = w.nodes.getOrPut(std.heap.c_allocator, n) catch {
            w.oom = true;
            return;
        };
        if (gop.found_existing) return;
        w.stack.append(std.heap.c_allocator, n) catch {
            w.oom = true;
        };
    }
};

fn onHandle(ctx: *anyopaque, n: *Node) void {
    const w: *Walk = @ptrCast(@alignCast(ctx));
    w.visit(n);
}

/// Walk the graph from every live handle. Waits for in-flight evaluations first.
pub fn report() Report {
    eval_mod.synchronize(null);
    var w = Walk{};
    defer {
        w.nodes.deinit(std.heap.c_allocator);
        w.buffers.deinit(std.heap.c_allocator);
        w.stack.deinit(std.heap.c_allocator);
    }
    var r = Report{};
    handles.forEachLive(&w, onHandle, struct {
        // Still under the handle table's lock: no handle can drop its node meanwhile.
        fn walk(ctx: *anyopaque) void {
            const wk: *Walk = @ptrCast(@alignCast(ctx));
            while (wk.stack.pop()) |n| {
                if (n.buffer) |b| {
                    const gop = wk.buffers.getOrPut(std.heap.c_allocator, b) catch {
                        wk.oom = true;
                        continue;
                    };
                    gop.value_ptr.* = if (gop.found_existing) gop.value_ptr.* + 1 else 1;
                }
                for (n.inputs) |in| wk.visit(in);
            }
        }
    }.walk);
    r.live_handles = handles.liveCount();
    r.live_nodes = array.liveNodes();
    r.reachable_nodes = w.nodes.count();
    var it = w.buffers.iterator();
    while (it.next()) |e| {
        r.reachable_bytes += e.key_ptr.*.block.size;
        if (e.key_ptr.*.refs.load(.acquire) > e.value_ptr.*) r.shared_buffers += 1;
    }
    r.active_bytes = alloc.activeMemory();
    if (w.oom) r.reachable_nodes = r.live_nodes; // could not walk: report nothing rather than a false leak
    return r;
}

var message: [512]u8 = undefined;

fn leakReportAbi() callconv(.c) [*:0]const u8 {
    const r = report();
    const s = std.fmt.bufPrintZ(&message, "{{\"leaked_nodes\":{d},\"unaccounted_bytes\":{d},\"live_handles\":{d},\"live_nodes\":{d},\"reachable_nodes\":{d},\"active_bytes\":{d},\"reachable_bytes\":{d},\"shared_buffers\":{d},\"sanitize\":{}}}", .{
        r.leakedNodes(), r.unaccountedBytes(), r.live_handles, r.live_nodes, r.reachable_nodes, r.active_bytes, r.reachable_bytes, r.shared_buffers, alloc.sanitize,
    }) catch return "{}";
    return s.ptr;
}

pub const abi = [_]util.Entry{
    util.entry("debug_leak_report", leakReportAbi, &.{}, "Leak check at a quiescent point, as JSON: leaked_nodes (live but unreachable from any handle), unaccounted_bytes (allocated but in no reachable node's buffer), and the counts behind them."),
};

test "leak report: a graph held by a handle is reachable; released, nothing is left" {
    const r0 = report();
    const leaf = try array.create(.float32, .{}, .leaf, &.{}, 0);
    const n = try array.create(.float32, .{}, .leaf, &.{leaf}, 0);
    array.release(leaf);
    const h = try handles.put(n);
    const r1 = report();
    try std.testing.expectEqual(r0.reachable_nodes + 2, r1.reachable_nodes);
    try std.testing.expectEqual(r0.leakedNodes(), r1.leakedNodes());
    try handles.free(h);
    const r2 = report();
    try std.testing.expectEqual(r0.live_nodes, r2.live_nodes);
    // A node nobody can reach is a leak.
    const lost = try array.create(.float32, .{}, .leaf, &.{}, 0);
    try std.testing.expectEqual(r0.leakedNodes() + 1, report().leakedNodes());
    array.release(lost);
}
