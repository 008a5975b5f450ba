//! The fusion pass: chains of elementwise ops in an unevaluated graph become `fused` nodes
//! (prims/fused.zig), each one kernel that streams through memory once.
//!
//! `fuseGraph(outputs)` walks the unevaluated graph reachable from `outputs` (iteratively) and
//! grows groups from the consumer side: a group's root is an elementwise node; a producer joins
//! the group when it is elementwise (unary, binary but shifts, where, astype) or a broadcast,
//! every one of its consumers is in the group, and nothing else holds it (its reference count is
//! exactly its number of consumer slots: no handle, no tape, no node outside the walk). The root
//! is rewritten IN PLACE into a fused node over the group's external inputs; the interior nodes
//! are released. Boundaries, never interior: the outputs, held nodes, evaluated or scheduled
//! nodes, tracers while a transform traces, nodes of another stream, and elementwise nodes
//! smaller than the root (broadcast later: fusing them would recompute them per output
//! element). Groups with fewer than two compute ops are left alone. A group has at most
//! `fused.max_inputs` inputs and `fused.max_instrs` instructions.
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
const prims = @import("primitives.zig");
const handles = @import("handles.zig");
const abi_util = @import("abi_util.zig");
const fz = prims.fused;
const Node = array.Node;
const a_ = std.heap.c_allocator;

const State = enum { none, cand, member, external };

const Info = struct {
    node: *Node,
    /// Input slots of walked nodes that hold this node.
    uses: u32 = 0,
    output: bool = false,
    /// Part of a committed group (interior nodes are freed: never read `node` then).
    done: bool = false,
    /// Group-building scratch, valid while `stamp` is the current group's.
    stamp: u32 = 0,
    slots: u32 = 0,
    state: State = .none,
};

const Kind = enum { no, compute, bcast };

fn kindOf(n: *const Node) Kind {
    return switch (n.prim) {
        .elementwise => |e| switch (e) {
            .binary => |op| if (op == .left_shift or op == .right_shift) .no else .compute,
            else => .compute,
        },
        .astype => .compute,
        .broadcast => .bcast,
        else => .no,
    };
}

fn oom() errors.Error {
    return errors.fail(.out_of_memory, "[fuse] Out of memory.", .{});
}

/// An evaluated scalar that is not differentiated: it goes into the program as a constant.
fn isConstant(n: *const Node) bool {
    return n.isEvaluated() and n.size() == 1 and !n.tracer and n.dtype.size() <= 8;
}

/// Rewrite the elementwise chains reachable from `outputs` into fused nodes, in place.
/// Outputs keep their identity and value; only unevaluated, unheld interior nodes go away.
pub fn fuseGraph(outputs: []const *Node) errors.Error!void {
    _ = try fuseCount(outputs);
}

/// fuseGraph, returning how many fused nodes it made.
pub fn fuseCount(outputs: []const *Node) errors.Error!usize {
    var pass = Pass{};
    defer pass.deinit();
    try pass.walk(outputs);
    var made: usize = 0;
    var i = pass.infos.items.len;
    while (i > 0) {
        i -= 1;
        const info = &pass.infos.items[i];
        if (info.done or kindOf(info.node) != .compute or array.keepsGraph(info.node)) continue;
        if (try pass.group(@intCast(i))) made += 1;
    }
    return made;
}

const Pass = struct {
    infos: std.ArrayList(Info) = .empty,
    index: std.AutoHashMapUnmanaged(*Node, u32) = .empty,
    // One group's lists.
    members: std.ArrayList(u32) = .empty,
    cands: std.ArrayList(u32) = .empty,
    externals: std.ArrayList(*Node) = .empty,

    fn deinit(p: *Pass) void {
        p.infos.deinit(a_);
        p.index.deinit(a_);
        p.members.deinit(a_);
        p.cands.deinit(a_);
        p.externals.deinit(a_);
    }

    /// Post-order of the unscheduled nodes reachable from the outputs (inputs first), and the
    /// consumer slots of each.
    fn walk(p: *Pass, outputs: []const *Node) errors.Error!void {
        const visiting = std.math.maxInt(u32);
        const Frame = struct { n: *Node, expanded: bool };
        var stack: std.ArrayList(Frame) = .empty;
        defer stack.deinit(a_);
        for (outputs) |o| {
            if (o.status.load(.acquire) == .unscheduled) stack.append(a_, .{ .n = o, .expanded = false }) catch return oom();
        }
        while (stack.pop()) |f| {
            if (f.expanded) {
                p.index.put(a_, f.n, @intCast(p.infos.items.len)) catch return oom();
                p.infos.append(a_, .{ .node = f.n }) catch return oom();
                continue;
            }
            if (p.index.contains(f.n)) continue;
            p.index.put(a_, f.n, visiting) catch return oom();
            stack.append(a_, .{ .n = f.n, .expanded = true }) catch return oom();
            for (f.n.inputs) |in| {
                if (in.status.load(.acquire) == .unscheduled and !p.index.contains(in))
                    stack.append(a_, .{ .n = in, .expanded = false }) catch return oom();
            }
        }
        for (p.infos.items) |info| for (info.node.inputs) |in| {
            if (p.index.get(in)) |j| p.infos.items[j].uses += 1;
        };
        for (outputs) |o| if (p.index.get(o)) |j| {
            p.infos.items[j].output = true;
        };
    }

    /// Note one consumer slot of `in` inside the current group.
    fn addInput(p: *Pass, in: *Node, stamp: u32) errors.Error!void {
        if (p.index.get(in)) |j| {
            const info = &p.infos.items[j];
            if (!info.done) {
                if (info.stamp != stamp) {
                    info.* = .{ .node = info.node, .uses = info.uses, .output = info.output, .stamp = stamp, .state = .cand };
                    p.cands.append(a_, j) catch return oom();
                }
                info.slots += 1;
                return;
            }
        }
        for (p.externals.items) |e| if (e == in) return;
        p.externals.append(a_, in) catch return oom();
    }

    /// Inputs of `n` the group has not seen yet: how many more values (`all`) and inputs
    /// (`real`: not constants) absorbing n could add.
    fn newInputs(p: *Pass, n: *const Node, stamp: u32) struct { all: usize, real: usize } {
        var all: usize = 0;
        var real: usize = 0;
        for (n.inputs, 0..) |in, k| {
            var seen = false;
            for (n.inputs[0..k]) |b| seen = seen or b == in;
            if (seen) continue;
            if (p.index.get(in)) |j| {
                const info = &p.infos.items[j];
                if (!info.done and info.stamp == stamp) continue;
            }
            for (p.externals.items) |e| seen = seen or e == in;
            if (!seen) {
                all += 1;
                if (!isConstant(in)) real += 1;
            }
        }
        return .{ .all = all, .real = real };
    }

    fn realExternals(p: *const Pass) usize {
        var n: usize = 0;
        for (p.externals.items) |e| n += @intFromBool(!isConstant(e));
        return n;
    }

    fn absorbable(p: *Pass, j: u32, root: *const Node, computes: usize, stamp: u32) bool {
        const info = &p.infos.items[j];
        const n = info.node;
        const kind = kindOf(n);
        if (kind == .no or info.output or array.keepsGraph(n) or n.stream != root.stream) return false;
        if (info.slots != info.uses or n.refs.load(.acquire) != info.uses) return false;
        if (kind == .compute and n.size() != root.size()) return false;
        // Values and inputs once it joins: the externals, the undecided candidates (each may
        // stay an input), and its own new inputs.
        const more = p.newInputs(n, stamp);
        const values = computes + @intFromBool(kind == .compute) + p.externals.items.len + p.cands.items.len + more.all;
        const inputs = p.realExternals() + p.cands.items.len + more.real;
        return values <= fz.max_instrs and inputs <= fz.max_inputs;
    }

    /// Grow a group from root `r`; commit it when it has two compute ops or more.
    fn group(p: *Pass, r: u32) errors.Error!bool {
        const root = p.infos.items[r].node;
        const stamp = r + 1;
        p.members.clearRetainingCapacity();
        p.cands.clearRetainingCapacity();
        p.externals.clearRetainingCapacity();
        p.infos.items[r].stamp = stamp;
        p.infos.items[r].state = .member;
        p.members.append(a_, r) catch return oom();
        var computes: usize = 1;
        for (root.inputs) |in| try p.addInput(in, stamp);
        while (p.cands.items.len > 0) {
            // The candidate nearest the outputs first: its consumers in the group are all known.
            var best: usize = 0;
            for (p.cands.items, 0..) |c, k| if (c > p.cands.items[best]) {
                best = k;
            };
            const j = p.cands.swapRemove(best);
            const info = &p.infos.items[j];
            if (p.absorbable(j, root, computes, stamp)) {
                info.state = .member;
                p.members.append(a_, j) catch return oom();
                if (kindOf(info.node) == .compute) computes += 1;
                for (info.node.inputs) |in| try p.addInput(in, stamp);
            } else {
                info.state = .external;
                p.externals.append(a_, info.node) catch return oom();
            }
        }
        if (computes < 2 or p.realExternals() > fz.max_inputs or computes + p.externals.items.len > fz.max_instrs) return false;
        return p.commit(root);
    }

    /// Build the program and rewrite the root.
    fn commit(p: *Pass, root: *Node) errors.Error!bool {
        std.mem.sort(u32, p.members.items, {}, std.sort.asc(u32));
        var prog: [fz.max_instrs]fz.Instr = undefined;
        var len: usize = 0;
        // Values: node -> instruction index (externals first, then members in order).
        var keys: [fz.max_instrs + fz.max_inputs]*Node = undefined;
        var vals: [fz.max_instrs + fz.max_inputs]u16 = undefined;
        var n_keys: usize = 0;
        var ins: [fz.max_inputs]*Node = undefined;
        var n_ins: usize = 0;
        for (p.externals.items) |e| {
            if (isConstant(e)) {
                // An evaluated scalar (a constant of the function) goes into the program.
                var bits: u64 = 0;
                @memcpy(std.mem.asBytes(&bits)[0..e.dtype.size()], e.data()[0..e.dtype.size()]);
                prog[len] = .{ .op = .{ .constant = bits }, .dtype = e.dtype };
            } else {
                prog[len] = .{ .op = .{ .input = @intCast(n_ins) }, .dtype = e.dtype };
                ins[n_ins] = e;
                n_ins += 1;
            }
            keys[n_keys] = e;
            vals[n_keys] = @intCast(len);
            n_keys += 1;
            len += 1;
        }
        const valueOf = struct {
            fn f(ks: []const *Node, vs: []const u16, n: *const Node) u16 {
                for (ks, vs) |k, v| if (k == n) return v;
                unreachable;
            }
        }.f;
        for (p.members.items) |j| {
            const n = p.infos.items[j].node;
            var args: [3]u16 = .{ 0, 0, 0 };
            for (n.inputs, 0..) |in, k| args[k] = valueOf(keys[0..n_keys], vals[0..n_keys], in);
            keys[n_keys] = n;
            n_keys += 1;
            if (kindOf(n) == .bcast) {
                vals[n_keys - 1] = args[0]; // a broadcast is its input, read at the output's index
                continue;
            }
            const op: fz.Op = switch (n.prim) {
                .astype => .astype,
                .elementwise => |e| switch (e) {
                    .unary => |u| .{ .unary = u },
                    .binary => |b| .{ .binary = b },
                    .select => .select,
                },
                else => unreachable,
            };
            prog[len] = .{ .op = op, .dtype = n.dtype, .args = args };
            vals[n_keys - 1] = @intCast(len);
            len += 1;
        }
        fz.validate(prog[0..len], ins[0..n_ins]) catch {
            // A node built outside the elementwise ops' rules: leave the group as it is.
            errors.clear();
            return false;
        };
        const program = a_.dupe(fz.Instr, prog[0..len]) catch return oom();
        const new_inputs = a_.alloc(*Node, n_ins) catch {
            a_.free(program);
            return oom();
        };
        for (ins[0..n_ins], new_inputs) |in, *slot| {
            in.retain();
            slot.* = in;
        }
        // Externals that stay walked nodes: the root now holds one slot for all of theirs.
        for (p.externals.items) |e| if (p.index.get(e)) |j| {
            const info = &p.infos.items[j];
            info.uses = info.uses - info.slots + 1;
        };
        for (p.members.items) |j| p.infos.items[j].done = true;
        const old = root.inputs;
        root.inputs = new_inputs;
        root.prim.deinit();
        root.prim = .{ .fused = .{ .program = program } };
        for (old) |in| array.release(in);
        if (old.len > 0) a_.free(old);
        return true;
    }
};

// ---------------------------------------------------------------------------------------------
// C ABI (tests and tools; compile calls fuseGraph inside the engine)

fn fuseImpl(hs: ?[*]const u32, n: u32) errors.Error!usize {
    if (n == 0) return 0;
    const p = hs orelse return errors.fail(.invalid_argument, "[fuse] The handle list is null.", .{});
    if (n > 1 << 20) return errors.fail(.invalid_argument, "[fuse] Too many arrays at once ({d}).", .{n});
    const nodes = a_.alloc(*Node, n) catch return oom();
    defer a_.free(nodes);
    for (p[0..n], nodes) |h, *slot| slot.* = try handles.get(h, "fuse");
    return fuseCount(nodes);
}

fn fuseAbi(hs: ?[*]const u32, n: u32) callconv(.c) i32 {
    const made = fuseImpl(hs, n) catch return -@as(i32, @intFromEnum(errors.code()));
    return @intCast(made);
}

fn fusedProgramLenAbi(h: u32) callconv(.c) i32 {
    const n = handles.get(h, "fuse") catch return -@as(i32, @intFromEnum(errors.code()));
    eval_mod.settle(n); // an async task may be detaching it
    return switch (n.prim) {
        .fused => |f| @intCast(f.program.len),
        else => 0,
    };
}

fn fusedInputCountAbi(h: u32) callconv(.c) i32 {
    const n = handles.get(h, "fuse") catch return -@as(i32, @intFromEnum(errors.code()));
    eval_mod.settle(n); // an async task may be detaching it
    return switch (n.prim) {
        .fused => @intCast(n.inputs.len),
        else => 0,
    };
}

fn fusedApplyImpl(t: u32, hs: ?[*]const u32, n: u32, s: i32) errors.Error!*Node {
    const tmpl = try handles.get(t, "fused");
    eval_mod.settle(tmpl); // an async task may be detaching it (freeing its program)
    const f = switch (tmpl.prim) {
        .fused => |f| f,
        else => return errors.fail(.invalid_argument, "[fused] The template is not a fused array.", .{}),
    };
    if (n > fz.max_inputs) return errors.fail(.invalid_argument, "[fused] At most {d} inputs (got {d}).", .{ fz.max_inputs, n });
    var buf: [fz.max_inputs]*Node = undefined;
    if (n > 0) {
        const p = hs orelse return errors.fail(.invalid_argument, "[fused] The handle list is null.", .{});
        for (p[0..n], 0..) |h, i| buf[i] = try handles.get(h, "fused");
    }
    const stream = try @import("stream.zig").resolve(s, "fused");
    return fz.fused(f.program, buf[0..n], tmpl.shape, stream);
}

fn fusedApplyAbi(t: u32, hs: ?[*]const u32, n: u32, s: i32) callconv(.c) u32 {
    return abi_util.handleOf(fusedApplyImpl(t, hs, n, s));
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("fused_apply", fusedApplyAbi, &.{ "fused", "inputs", "n", "stream" }, "Tests and replay: a new fused node running the template fused array's program on n new inputs (the template's shape)."),
    abi_util.entry("fuse", fuseAbi, &.{ "handles", "n" }, "Fuse the elementwise chains of the unevaluated graph behind the arrays (in place); the number of fused nodes made, negative on error."),
    abi_util.entry("fused_program_len", fusedProgramLenAbi, &.{"h"}, "Instructions of the array's fused program; 0 if the array is not a fused node, negative on error."),
    abi_util.entry("fused_input_count", fusedInputCountAbi, &.{"h"}, "Inputs of the array's fused node; 0 if it is not one, negative on error."),
};

// ---------------------------------------------------------------------------------------------
// Tests

const testing = std.testing;
const ew = prims.elementwise;
const convert = @import("convert.zig");
const eval_mod = @import("eval.zig");
const Dtype = @import("dtype.zig").Dtype;

fn testArray(dims: []const i32, seed: usize) !*Node {
    const x = try array.createWithBuffer(.float32, try array.Shape.fromSlice(dims, "test"), 0, "test");
    const q: [*]f32 = @ptrCast(@alignCast(x.data()));
    for (0..x.size()) |i| q[i] = @as(f32, @floatFromInt((i * 31 + seed * 7) % 97)) * 0.05 - 2.0;
    return x;
}

/// f(x, y) = tanh(exp(x * y) - x) * y + maximum(x, y) - as a graph, built twice.
fn build(x: *Node, y: *Node) !*Node {
    const m = try ew.binary(.multiply, x, y, 0);
    defer array.release(m);
    const e = try ew.unary(.exp, m, 0);
    defer array.release(e);
    const d = try ew.binary(.subtract, e, x, 0);
    defer array.release(d);
    const t = try ew.unary(.tanh, d, 0);
    defer array.release(t);
    const p = try ew.binary(.multiply, t, y, 0);
    defer array.release(p);
    const mx = try ew.binary(.maximum, x, y, 0);
    defer array.release(mx);
    return ew.binary(.add, p, mx, 0);
}

test "a chain becomes one fused node with the same bits; interior nodes are freed" {
    const x = try testArray(&.{ 7, 300 }, 1);
    defer array.release(x);
    const y = try testArray(&.{300}, 2);
    defer array.release(y);
    const plain = try build(x, y);
    defer array.release(plain);
    const before = array.liveNodes();
    const f = try build(x, y);
    defer array.release(f);
    try testing.expectEqual(before + 7, array.liveNodes());
    try testing.expectEqual(@as(usize, 1), try fuseCount(&.{f}));
    try testing.expectEqual(before + 1, array.liveNodes());
    try testing.expect(f.prim == .fused);
    try testing.expectEqual(@as(usize, 2), f.inputs.len);
    try eval_mod.eval(&.{ plain, f });
    try testing.expectEqualSlices(u8, plain.data()[0..plain.nbytes()], f.data()[0..f.nbytes()]);
}

test "held and shared intermediates are boundaries" {
    const x = try testArray(&.{ 4, 50 }, 3);
    defer array.release(x);
    const e = try ew.unary(.exp, x, 0); // held (like a JS handle): its refcount has one more
    defer array.release(e);
    const n = try ew.unary(.negative, e, 0);
    const s = try ew.unary(.sin, n, 0);
    defer array.release(s);
    array.release(n); // only s holds it now
    try testing.expectEqual(@as(usize, 1), try fuseCount(&.{s}));
    try testing.expectEqual(@as(usize, 1), s.inputs.len);
    try testing.expect(s.inputs[0] == e);
    try testing.expect(e.prim == .elementwise);
    // A shared intermediate (two consumers, one outside the chain) stays too.
    const a = try ew.unary(.abs, x, 0);
    const b1 = try ew.unary(.sqrt, a, 0);
    const b2 = try ew.unary(.square, a, 0);
    array.release(a);
    defer array.release(b2);
    const c = try ew.unary(.floor, b1, 0);
    defer array.release(c);
    array.release(b1);
    try testing.expectEqual(@as(usize, 1), try fuseCount(&.{c})); // floor(sqrt(a)); a stays
    try testing.expect(c.inputs[0].prim == .elementwise);
    try eval_mod.eval(&.{ e, s, c, b2 });
}

test "a DAG inside one group: x used twice" {
    const x0 = try testArray(&.{ 3, 20 }, 4);
    defer array.release(x0);
    const build2 = struct {
        fn f(in: *Node) !*Node {
            const x = try ew.unary(.sin, in, 0);
            defer array.release(x);
            const s = try ew.unary(.sigmoid, x, 0);
            defer array.release(s);
            return ew.binary(.multiply, x, s, 0);
        }
    }.f;
    const plain = try build2(x0);
    defer array.release(plain);
    const f = try build2(x0);
    defer array.release(f);
    try testing.expectEqual(@as(usize, 1), try fuseCount(&.{f}));
    try testing.expectEqual(@as(usize, 4), f.prim.fused.program.len);
    try eval_mod.eval(&.{ plain, f });
    try testing.expectEqualSlices(u8, plain.data()[0..plain.nbytes()], f.data()[0..f.nbytes()]);
}
