//! Vectorizing map: the host runs the user's function once on placeholders (tracers over one
//! slice of each mapped input); `vmap` then walks the recorded graph forward from the
//! placeholders and rebuilds each node on batched inputs with its primitive's batching rule.
//! Every batched value carries its batch axis first; rules see inputs in that form (an input
//! that does not depend on the mapped inputs is used as it is).
const std = @import("std");
const eval_mod = @import("eval.zig");
const array = @import("array.zig");
const errors = @import("errors.zig");
const prims = @import("primitives.zig");
const grad = @import("grad.zig");
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

const ew = prims.elementwise;
const red = prims.reduce;
const shp = prims.shape;
const cp = prims.copy;
const ix = prims.indexing;
const srt = prims.sort;
const a_ = std.heap.c_allocator;

fn retained(x: *Node) *Node {
    x.retain();
    return x;
}

fn unsupported(node: *const Node) errors.Error {
    return errors.fail(.not_implemented, "[vmap] The batching rule of {s} is not implemented yet.", .{node.prim.name()});
}

/// x (batch first) reshaped to rank 1 + `rank` by 1s after the batch axis (for broadcasting
/// against unbatched operands, which align on the trailing axes).
fn lift(x: *Node, rank: usize, s: u32) errors.Error!*Node {
    const have = x.shape.ndim - 1;
    if (have >= rank) return retained(x);
    var dims: [max_ndim]i32 = undefined;
    dims[0] = x.shape.dims[0];
    for (0..rank - have) |i| dims[1 + i] = 1;
    for (0..have) |i| dims[1 + rank - have + i] = x.shape.dims[1 + i];
    return shp.reshape(x, dims[0 .. 1 + rank], s);
}

/// x broadcast to carry the batch axis first: (b, ...x.shape).
fn withBatch(x: *Node, b: i32, s: u32) errors.Error!*Node {
    var dims: [max_ndim]i32 = undefined;
    dims[0] = 1;
    @memcpy(dims[1 .. 1 + x.shape.ndim], x.shape.slice());
    const r = try shp.reshape(x, dims[0 .. 1 + x.shape.ndim], s);
    defer array.release(r);
    dims[0] = b;
    return cp.broadcastTo(r, try Shape.fromSlice(dims[0 .. 1 + x.shape.ndim], "vmap"), s);
}

/// Input `in` with the batch axis first: its batched value `bb`, or `in` broadcast to the batch.
fn batchedInput(in: *Node, bb: ?*Node, batch: i32, st: u32) errors.Error!*Node {
    return if (bb) |v| retained(v) else withBatch(in, batch, st);
}

fn shapeWithBatch(b: i32, shape: *const Shape) errors.Error!Shape {
    var dims: [max_ndim]i32 = undefined;
    dims[0] = b;
    @memcpy(dims[1 .. 1 + shape.ndim], shape.slice());
    return Shape.fromSlice(dims[0 .. 1 + shape.ndim], "vmap");
}

fn axesOf(set: u32, ndim: usize, shift: i32, out: *[max_ndim]i32) []const i32 {
    var n: usize = 0;
    for (0..ndim) |i| if (set & (@as(u32, 1) << @intCast(i)) != 0) {
        out[n] = @as(i32, @intCast(i)) + shift;
        n += 1;
    };
    return out[0..n];
}

/// The node rebuilt on its inputs' batched values (`bx[i]` null: input i is not batched).
fn rule(node: *Node, bx: []const ?*Node, b: i32, s: u32) errors.Error!*Node {
    const x = node.inputs[0];
    // Every input with the batch axis (unbatched ones broadcast to it), for rules that need all.
    var all: [max_ndim + 2]*Node = undefined;
    var made: usize = 0;
    defer for (all[0..made]) |n| array.release(n);
    switch (node.prim) {
        .leaf, .arange, .linspace, .eye, .tri => unreachable, // no inputs
        .astype => return cp.astype(bx[0].?, node.dtype, s),
        .stop_gradient => return cp.stopGradient(bx[0].?, s),
        .depends => return retained(bx[0] orelse return withBatch(x, b, s)),
        .custom => |c| return customRule(node, c, bx, b, s),
        .broadcast => {
            const l = try lift(bx[0].?, node.shape.ndim, s);
            defer array.release(l);
            return cp.broadcastTo(l, try shapeWithBatch(b, &node.shape), s);
        },
        .tri_mask => |m| return prims.creation.triMask(bx[0].?, m.k, m.upper, s),
        .elementwise => |e| {
            var ins: [3]*Node = undefined;
            for (node.inputs, 0..) |in, i| {
                if (bx[i]) |v| {
                    all[made] = try lift(v, node.shape.ndim, s);
                    made += 1;
                    ins[i] = all[made - 1];
                } else ins[i] = in;
            }
            return switch (e) {
                .unary => |op| ew.unary(op, ins[0], s),
                .binary => |op| ew.binary(op, ins[0], ins[1], s),
                .select => ew.select(ins[0], ins[1], ins[2], s),
            };
        },
        .reduce => |r| {
            const v = bx[0] orelse x;
            const keep = node.shape.ndim == x.shape.ndim;
            var buf: [max_ndim]i32 = undefined;
            switch (r) {
                .reduce => |p| return red.reduce(p.op, v, axesOf(p.axes, x.shape.ndim, 1, &buf), keep, s),
                .median => |p| return red.median(v, axesOf(p.axes, x.shape.ndim, 1, &buf), keep, s),
                .logsumexp => return red.logsumexpLast(v, keep, s),
                .logsumexp_combine => {
                    const sb = try batchedInput(node.inputs[0], bx[0], b, s);
                    defer array.release(sb);
                    const mb = try batchedInput(node.inputs[1], bx[1], b, s);
                    defer array.release(mb);
                    return red.logsumexpCombine(sb, mb, s);
                },
                .arg_reduce => |p| {
                    if (p.axis) |ax| return red.argReduce(p.op, v, @as(i32, ax) + 1, keep, s);
                    const flat = try shp.reshape(v, &.{ b, -1 }, s);
                    defer array.release(flat);
                    const r2 = try red.argReduce(p.op, flat, 1, false, s);
                    defer array.release(r2);
                    return shp.reshape(r2, (try shapeWithBatch(b, &node.shape)).slice(), s);
                },
            }
        },
        .shape => |p| switch (p) {
            .reshape, .contiguous => return shp.reshape(bx[0].?, (try shapeWithBatch(b, &node.shape)).slice(), s),
            .transpose => |perm| {
                var q: [max_ndim]i32 = undefined;
                q[0] = 0;
                for (0..node.shape.ndim) |i| q[1 + i] = @as(i32, perm[i]) + 1;
                return shp.transpose(bx[0].?, q[0 .. 1 + node.shape.ndim], s);
            },
            .slice => |sl| return shp.sliceAxis(bx[0].?, @as(usize, sl.axis) + 1, sl.start, node.shape.dims[sl.axis], sl.step, s),
            .concatenate => |axis| {
                var list: [64]*Node = undefined;
                if (node.inputs.len > list.len) return unsupported(node);
                var owned: usize = 0;
                defer for (list[0..owned]) |n| array.release(n);
                for (node.inputs, 0..) |in, i| {
                    list[i] = try batchedInput(in, bx[i], b, s);
                    owned += 1;
                }
                return shp.concatenate(list[0..node.inputs.len], @as(i32, axis) + 1, s);
            },
            .remap => |rm| {
                var params: [max_ndim]i32 = undefined;
                params[0] = 0;
                @memcpy(params[1 .. 1 + node.shape.ndim], rm.params[0..node.shape.ndim]);
                const fill: ?*Node = if (node.inputs.len > 1) node.inputs[1] else null;
                if (node.inputs.len > 1 and bx[1] != null) return unsupported(node);
                return shp.remapNode(bx[0].?, try shapeWithBatch(b, &node.shape), rm.kind, params[0 .. 1 + node.shape.ndim], fill, s);
            },
            .view => return shp.view(bx[0].?, node.dtype, s),
            // MLX has no batching rule for AsStrided either; its message.
            .as_strided => return errors.fail(.not_implemented, "[Primitive::vmap] Not implemented for AsStrided.", .{}),
        },
        .sort => |p| {
            if (p == .searchsorted) {
                // The sorted sequence (input 0) cannot be mapped; the values (input 1) can.
                if (bx[0] != null) return errors.fail(.invalid_argument, "[searchsorted] Cannot vmap over the sorted sequence, only over the values being searched for.", .{});
                return srt.searchsorted(node.inputs[0], bx[1].?, p.searchsorted, s);
            }
            const v = bx[0] orelse return unsupported(node);
            // A flattened operation (axis None) flattens each example.
            const flat_case = node.shape.ndim == 1 and x.shape.ndim != 1;
            const src = if (flat_case) try shp.reshape(v, &.{ b, -1 }, s) else retained(v);
            defer array.release(src);
            switch (p) {
                .scan => |sc| return srt.scan(sc.op, src, @as(i32, sc.axis) + 1, sc.reverse, sc.inclusive, null, s),
                .sort => |so| return srt.sortOp(so.op, src, @as(i32, so.axis) + 1, so.kth, s),
                .searchsorted => unreachable, // above
            }
        },
        // A batch of keys: the kernel draws each key's block in turn ([b, 2] -> [b, ...shape]),
        // each exactly what that key alone gives, as MLX batches leading key dimensions.
        .random => {
            const k = bx[0] orelse return unsupported(node);
            return array.create(node.dtype, try shapeWithBatch(b, &node.shape), node.prim, &.{k}, s);
        },
        .matmul => |p| return prims.matmul.vmapRule(node, p, bx, s),
        .from_bytes => return unsupported(node),
        .quantized => |p| return prims.quantized.vmapRule(node, p, bx, b, s),
        .fft => |p| return prims.fft.vmapRule(node, p, bx[0].?, s),
        .linalg => |p| return prims.linalg.vmapRule(node, p, bx, s),
        .conv => |p| return prims.conv.vmapRule(node, p, bx, s),
        .fast => |p| return prims.fast.vmapRule(node, p, bx, b, s),
        .fused => |f| return prims.fused.vmapRule(node, f, bx, b, s),
        .indexing => |p| switch (p) {
            .gather => |r| {
                // The index arrays with the batch first (broadcast), and for a batched source an
                // arange over its batch axis as one more index.
                const nb_idx = node.shape.ndim - x.shape.ndim; // index dims
                var idx: [max_ndim + 1]*Node = undefined;
                var axes: [max_ndim + 1]i32 = undefined;
                var n: usize = 0;
                const src_batched = bx[0] != null;
                if (src_batched) {
                    const ar = try prims.creation.arange(0, @floatFromInt(b), 1, .int32, s);
                    defer array.release(ar);
                    var dims: [max_ndim]i32 = undefined;
                    dims[0] = b;
                    for (0..nb_idx) |i| dims[1 + i] = 1;
                    all[made] = try shp.reshape(ar, dims[0 .. 1 + nb_idx], s);
                    made += 1;
                    idx[n] = all[made - 1];
                    axes[n] = 0;
                    n += 1;
                }
                for (node.inputs[1..], 0..) |in, i| {
                    all[made] = try batchedInput(in, bx[1 + i], b, s);
                    made += 1;
                    idx[n] = all[made - 1];
                    axes[n] = @as(i32, r.axes[i]) + @intFromBool(src_batched);
                    n += 1;
                }
                const src = bx[0] orelse x;
                var sizes: [max_ndim]i32 = undefined;
                var region: [2 * max_ndim]i32 = undefined;
                var k: usize = 0;
                if (src_batched) {
                    sizes[0] = 1;
                    region[0] = 0;
                    region[1] = 1;
                    k = 1;
                }
                for (0..x.shape.ndim) |d| {
                    sizes[k + d] = node.shape.dims[nb_idx + d];
                    region[2 * (k + d)] = r.start[d];
                    region[2 * (k + d) + 1] = r.step[d];
                }
                const g = try ix.gather(src, idx[0..n], axes[0..n], sizes[0 .. k + x.shape.ndim], region[0 .. 2 * (k + x.shape.ndim)], r.origin, s);
                defer array.release(g);
                return shp.reshape(g, (try shapeWithBatch(b, &node.shape)).slice(), s);
            },
            .gather_axis => |a| {
                const src = try batchedInput(x, bx[0], b, s);
                defer array.release(src);
                const ind = try batchedInput(node.inputs[1], bx[1], b, s);
                defer array.release(ind);
                return ix.takeAlongAxis(src, ind, @as(i32, a.axis) + 1, s);
            },
            .scatter_axis => |a| {
                const src = try batchedInput(x, bx[0], b, s);
                defer array.release(src);
                const ind = try batchedInput(node.inputs[1], bx[1], b, s);
                defer array.release(ind);
                const val = try batchedInput(node.inputs[2], bx[2], b, s);
                defer array.release(val);
                return ix.putAlongAxis(src, ind, val, @as(i32, a.axis) + 1, a.mode, s);
            },
            .diagonal => |dg| return ix.diagonal(bx[0].?, dg.offset, @as(i32, dg.axis1) + 1, @as(i32, dg.axis2) + 1, s),
            .scatter => |r| {
                // Every operand with the batch first; the batch becomes one more indexed axis
                // of the target (an arange), and the updates get its slab axis of size 1.
                const upd = node.inputs[1];
                const nb_idx = upd.shape.ndim - x.shape.ndim;
                const dst = try batchedInput(x, bx[0], b, s);
                defer array.release(dst);
                const ub = try batchedInput(upd, bx[1], b, s);
                defer array.release(ub);
                var dims: [max_ndim]i32 = undefined;
                dims[0] = b;
                @memcpy(dims[1 .. 1 + nb_idx], upd.shape.dims[0..nb_idx]);
                dims[1 + nb_idx] = 1;
                @memcpy(dims[2 + nb_idx .. 2 + upd.shape.ndim], upd.shape.dims[nb_idx..upd.shape.ndim]);
                const ur = try shp.reshape(ub, dims[0 .. 2 + upd.shape.ndim], s);
                defer array.release(ur);
                const ar = try prims.creation.arange(0, @floatFromInt(b), 1, .int32, s);
                defer array.release(ar);
                var adims: [max_ndim]i32 = undefined;
                adims[0] = b;
                for (0..nb_idx) |i| adims[1 + i] = 1;
                all[made] = try shp.reshape(ar, adims[0 .. 1 + nb_idx], s);
                made += 1;
                var idx: [max_ndim + 1]*Node = undefined;
                var axes: [max_ndim + 1]i32 = undefined;
                idx[0] = all[made - 1];
                axes[0] = 0;
                for (node.inputs[2..], 0..) |in, i| {
                    all[made] = try batchedInput(in, bx[2 + i], b, s);
                    made += 1;
                    idx[1 + i] = all[made - 1];
                    axes[1 + i] = @as(i32, r.axes[i]) + 1;
                }
                var region: [2 * max_ndim]i32 = undefined;
                region[0] = 0;
                region[1] = 1;
                for (0..x.shape.ndim) |d| {
                    region[2 * (1 + d)] = r.start[d];
                    region[2 * (1 + d) + 1] = r.step[d];
                }
                const n = 1 + r.nidx;
                return ix.scatter(dst, ur, idx[0..n], axes[0..n], region[0 .. 2 * (1 + x.shape.ndim)], r.mode, r.origin, s);
            },
            .masked_scatter => return maskedScatterRule(node, bx, b, s),
        },
    }
}

/// The batched outputs of each custom call met by the running vmap, from the host's vmap rule
/// (one call's outputs are made together, at its first output).
threadlocal var custom_outs: ?*std.AutoHashMap(*grad.CustomCall, []*Node) = null;

/// A custom function's output: from the host's vmap rule when the function has one; otherwise
/// its body's value (input 0) batched, i.e. the body vmapped, as MLX does. The custom vjp,
/// written for one example, does not carry over to the batched value.
fn customRule(node: *Node, c: grad.CustomOut, bx: []const ?*Node, b: i32, s: u32) errors.Error!*Node {
    if (custom_outs) |cache| {
        if (cache.get(c.call)) |outs| return retained(outs[c.index]);
        const n_in = node.inputs.len - 1;
        if (n_in <= 32) {
            var ins: [33]*Node = undefined;
            var mapped: u32 = 0;
            for (node.inputs[1..], 0..) |in, i| {
                ins[i] = bx[1 + i] orelse in;
                if (bx[1 + i] != null) mapped |= @as(u32, 1) << @intCast(i);
            }
            const outs = a_.alloc(*Node, c.call.values.len) catch return oom();
            const ran = grad.runCustomVmap(c.call, ins[0..n_in], mapped, b, outs) catch |e| {
                a_.free(outs);
                return e;
            };
            if (ran) {
                cache.put(c.call, outs) catch {
                    for (outs) |o| array.release(o);
                    a_.free(outs);
                    return oom();
                };
                return retained(outs[c.index]);
            }
            a_.free(outs);
        }
    }
    return retained(bx[0] orelse return withBatch(node.inputs[0], b, s));
}

/// masked_scatter per batch element: each one fills its own true positions from the start of its
/// own source. The k-th true position of row b (row-major within the row) reads source row b at
/// k, found by an inclusive cumsum of the mask; a single-element source is read at 0 everywhere.
/// A row with more trues than its source has elements fails the evaluation with the gather's
/// out-of-bounds error (the unbatched op fails too).
fn maskedScatterRule(node: *Node, bx: []const ?*Node, b: i32, s: u32) errors.Error!*Node {
    const x = node.inputs[0];
    const src = node.inputs[2];
    var live: [6]*Node = undefined;
    var n: usize = 0;
    defer for (live[0..n]) |t| array.release(t);
    const keep = struct {
        fn f(list: *[6]*Node, count: *usize, v: *Node) *Node {
            list[count.*] = v;
            count.* += 1;
            return v;
        }
    }.f;
    const items: i32 = @intCast(x.shape.size());
    const n_src: i32 = @intCast(src.shape.size());
    const dst = keep(&live, &n, try batchedInput(x, bx[0], b, s));
    const mask = keep(&live, &n, try batchedInput(node.inputs[1], bx[1], b, s));
    const mask2 = keep(&live, &n, try shp.reshape(mask, &.{ b, items }, s));
    const src_b = keep(&live, &n, try batchedInput(src, bx[2], b, s));
    const src2 = keep(&live, &n, try shp.reshape(src_b, &.{ b, n_src }, s));
    const idx = keep(&live, &n, try grad.maskedSourceIndex(mask2, 1, @intCast(n_src), s));
    const picked = try ix.takeAlongAxis(src2, idx, 1, s);
    defer array.release(picked);
    const vals = try shp.reshape(picked, dst.shape.slice(), s);
    defer array.release(vals);
    return ew.select(mask, vals, dst, s);
}

/// Batched outputs: `outputs` were traced from `placeholders`; `batched[i]` holds the mapped
/// input behind placeholder i with its batch axis first. `out[k]` gets output k with the batch
/// axis first (broadcast when the output does not depend on the inputs).
pub fn vmap(outputs: []const *Node, placeholders: []const *Node, batched: []const *Node, b: i32, out: []*Node, stream: u32) errors.Error!void {
    var val = std.AutoHashMap(*Node, ?*Node).init(a_); // node -> batched value (null: unbatched)
    defer {
        var it = val.valueIterator();
        while (it.next()) |v| if (v.*) |n| array.release(n);
        val.deinit();
    }
    for (placeholders, batched) |p, x| {
        val.put(p, retained(x)) catch return oom();
    }
    var customs = std.AutoHashMap(*grad.CustomCall, []*Node).init(a_);
    const outer_customs = custom_outs;
    custom_outs = &customs;
    defer {
        custom_outs = outer_customs;
        var it = customs.valueIterator();
        while (it.next()) |outs| {
            for (outs.*) |o| array.release(o);
            a_.free(outs.*);
        }
        customs.deinit();
    }
    // Post-order from the outputs (iterative), then rebuild in that order.
    var order: std.ArrayList(*Node) = .empty;
    defer order.deinit(a_);
    var seen = std.AutoHashMap(*Node, void).init(a_);
    defer seen.deinit();
    const Frame = struct { n: *Node, expanded: bool };
    var stack: std.ArrayList(Frame) = .empty;
    defer stack.deinit(a_);
    for (outputs) |o| stack.append(a_, .{ .n = o, .expanded = false }) catch return oom();
    while (stack.pop()) |f| {
        if (f.expanded) {
            order.append(a_, f.n) catch return oom();
            continue;
        }
        if (seen.contains(f.n)) continue;
        // A node an async task is computing is detached by the worker: wait before reading it.
        eval_mod.settle(f.n);
        seen.put(f.n, {}) catch return oom();
        stack.append(a_, .{ .n = f.n, .expanded = true }) catch return oom();
        if (val.contains(f.n)) continue; // a placeholder
        for (f.n.inputs) |in| if (!seen.contains(in)) stack.append(a_, .{ .n = in, .expanded = false }) catch return oom();
    }
    var bx: [max_ndim + 2]?*Node = undefined;
    for (order.items) |n| {
        if (val.contains(n)) continue;
        var any = false;
        if (n.inputs.len > bx.len) return unsupported(n);
        for (n.inputs, 0..) |in, i| {
            bx[i] = val.get(in) orelse null;
            any = any or bx[i] != null;
        }
        if (!any) {
            val.put(n, null) catch return oom();
            continue;
        }
        const r = try rule(n, bx[0..n.inputs.len], b, stream);
        val.put(n, r) catch {
            array.release(r);
            return oom();
        };
    }
    var done: usize = 0;
    errdefer for (out[0..done]) |o| array.release(o);
    for (outputs, 0..) |o, k| {
        out[k] = if (val.get(o) orelse null) |v| retained(v) else try withBatch(o, b, stream);
        done += 1;
    }
}

fn oom() errors.Error {
    return errors.fail(.out_of_memory, "[vmap] Out of memory.", .{});
}

comptime {
    _ = grad;
}
