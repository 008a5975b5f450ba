//! compile: a traced function kept as a TAPE in the engine and replayed natively.
//!
//! The host runs the function once on tracers (placeholders); `build` walks the recorded graph
//! from the outputs back to the placeholders (iteratively) and keeps, in topological order, every
//! node that depends on a placeholder as a STEP: a deep copy of its primitive (reflect.clone), its
//! dtype, shape, strides (as_strided sets them when built) and stream, and its inputs as
//! references (a placeholder, an earlier step, or a captured constant). Nodes that do not depend
//! on a placeholder (arrays the function closes over, constants it makes) are CONSTANTS: the
//! tape holds a reference to them. Before it is stored the tape is simplified: identical small
//! constants merged, no-ops removed (astype to the same dtype, broadcast/reshape to the same
//! shape, the tracer identities), common subexpressions eliminated (same primitive with equal
//! parameters by reflect.eql, on the same inputs), dead steps dropped. Then chains of
//! elementwise steps are FUSED (fuse.zig's pass over the tape instantiated as a private graph,
//! `fuseTape`): each chain becomes one `fused` step, one kernel streaming through memory once,
//! bit-identical to the steps it replaces. Replayed under a transform (on tracers), a fused
//! step is expanded back into its ordinary ops, so grad/vmap see the uncompiled graph.
//!
//! `replay` creates one new unevaluated node per step on new inputs: no host code runs per op.
//! Replayed on tracers (inside another transform's trace) the new nodes are ordinary graph
//! nodes, so grad/vmap of a compiled function see normal primitives. Shapeless tapes recompute
//! each step's shape from its inputs as MLX does (`shapelessShape`: elementwise, casts,
//! reductions, transposes, concatenate, matmul/addmm, gathers; broadcast_to and reshape keep
//! their traced target, scatters their traced region); building one with any other primitive
//! (slices among them, as MLX's Slice) fails with `[compile] <op> cannot be compiled shapeless.`
//!
//! Tapes are saved and loaded (`exportTape`, `importTape`) in the format of
//! docs/COMPILE-FORMAT.md, with primitive parameters serialized by reflect.write/read.
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
const handles = @import("handles.zig");
const stream_mod = @import("stream.zig");
const eval_mod = @import("eval.zig");
const convert = @import("convert.zig");
const reflect = @import("reflect.zig");
const prims = @import("primitives.zig");
const grad = @import("grad.zig");
const fuse = @import("fuse.zig");
const abi_util = @import("abi_util.zig");
const Dtype = @import("dtype.zig").Dtype;
const Primitive = prims.Primitive;
const Node = array.Node;
const Shape = array.Shape;
const max_ndim = array.max_ndim;

const a_ = std.heap.c_allocator;

/// Limits (named, as TIGER_STYLE asks).
pub const max_steps = 1 << 24;
pub const max_io = 1 << 20;
/// Constants up to this many bytes are merged when identical (scalars and tiny tables).
const merge_const_bytes = 64;

// ---------------------------------------------------------------------------------------------
// References: the 2 top bits say what, the rest which.

pub const Kind = enum(u2) { input = 0, step = 1, constant = 2 };
pub const Ref = u32;

fn ref(kind: Kind, i: usize) Ref {
    return (@as(u32, @intFromEnum(kind)) << 30) | @as(u32, @intCast(i));
}
fn kindOf(r: Ref) ?Kind {
    const k = r >> 30;
    return if (k <= 2) @enumFromInt(k) else null;
}
fn indexOf(r: Ref) u32 {
    return r & 0x3fff_ffff;
}

pub const Sig = struct { dtype: Dtype, shape: Shape };

pub const Step = struct {
    prim: Primitive,
    dtype: Dtype,
    shape: Shape,
    strides: [max_ndim]i64,
    stream: u32,
    inputs: []Ref,

    fn deinit(s: *Step) void {
        s.prim.deinit();
        a_.free(s.inputs);
    }
};

pub const Tape = struct {
    inputs: []Sig,
    steps: []Step,
    constants: []*Node,
    outputs: []Ref,
    /// The traced function called custom functions: their outputs are replayed as the forward
    /// identities they are, so under a transform the host calls the function itself.
    has_custom: bool,
    shapeless: bool,
    /// For files: the trace's signature text (the host's: its argument tree), the file's
    /// metadata, and the id of the file's next trace (0 for the last); set by import, or by
    /// compile_set_text / compile_link before an export.
    label: ?[:0]u8 = null,
    metadata: ?[:0]u8 = null,
    next: u32 = 0,
    /// The tape as JSON text (compile_describe), read with compile_text 2.
    description: ?[:0]u8 = null,

    pub fn deinit(t: *Tape) void {
        if (t.label) |x| a_.free(x);
        if (t.metadata) |x| a_.free(x);
        if (t.description) |x| a_.free(x);
        for (t.steps) |*s| s.deinit();
        a_.free(t.steps);
        for (t.constants) |c| array.release(c);
        a_.free(t.constants);
        a_.free(t.inputs);
        a_.free(t.outputs);
        a_.destroy(t);
    }

    fn sigOf(t: *const Tape, r: Ref) Sig {
        const i = indexOf(r);
        return switch (kindOf(r).?) {
            .input => t.inputs[i],
            .step => .{ .dtype = t.steps[i].dtype, .shape = t.steps[i].shape },
            .constant => .{ .dtype = t.constants[i].dtype, .shape = t.constants[i].shape },
        };
    }
};

fn oom() errors.Error {
    return errors.fail(.out_of_memory, "[compile] Out of memory.", .{});
}

// ---------------------------------------------------------------------------------------------
// Building

/// How a tape is built.
pub const BuildOptions = struct {
    shapeless: bool = false,
    /// Fuse chains of elementwise ops into `fused` steps (internal switch, for tests).
    fuse: bool = true,
};

/// The graph walk that records steps: an iterative post-order from the outputs; a node is
/// decided once all its inputs are. Nodes already in `map` (placeholders, known constants) are
/// references; a node that depends on none of the placeholders becomes a constant (when
/// `new_consts`) and any other node a step.
const Walk = struct {
    map: std.AutoHashMap(*Node, Ref),
    steps: std.ArrayList(Step) = .empty,
    consts: std.ArrayList(*Node) = .empty,
    has_custom: bool = false,
    new_consts: bool = true,

    fn init() Walk {
        return .{ .map = std.AutoHashMap(*Node, Ref).init(a_) };
    }

    /// Frees what was not taken.
    fn deinit(w: *Walk) void {
        for (w.steps.items) |*s| s.deinit();
        w.steps.deinit(a_);
        for (w.consts.items) |c| array.release(c);
        w.consts.deinit(a_);
        w.map.deinit();
    }

    fn run(w: *Walk, outputs: []const *Node) errors.Error!void {
        const Frame = struct { node: *Node, next: usize };
        var stack: std.ArrayList(Frame) = .empty;
        defer stack.deinit(a_);
        for (outputs) |o| {
            if (w.map.contains(o)) continue;
            stack.append(a_, .{ .node = o, .next = 0 }) catch return oom();
            while (stack.items.len > 0) {
                const top = &stack.items[stack.items.len - 1];
                // A node an async task is computing is detached (inputs and primitive freed)
                // by the worker when done: wait for it before reading its graph.
                if (top.next == 0) eval_mod.settle(top.node);
                if (top.next < top.node.inputs.len) {
                    const in = top.node.inputs[top.next];
                    top.next += 1;
                    if (!w.map.contains(in)) stack.append(a_, .{ .node = in, .next = 0 }) catch return oom();
                    continue;
                }
                const n = top.node;
                _ = stack.pop();
                if (w.map.contains(n)) continue;
                var dep = false;
                for (n.inputs) |in| {
                    if (kindOf(w.map.get(in).?) != .constant) dep = true;
                }
                if (!dep and w.new_consts) {
                    w.consts.append(a_, n) catch return oom();
                    n.retain();
                    w.map.put(n, ref(.constant, w.consts.items.len - 1)) catch return oom();
                    continue;
                }
                if (w.steps.items.len >= max_steps) return errors.fail(.invalid_argument, "[compile] The traced function has more than {d} operations.", .{max_steps});
                const ins = a_.alloc(Ref, n.inputs.len) catch return oom();
                for (n.inputs, ins) |in, *r| r.* = w.map.get(in).?;
                const p = reflect.clone(Primitive, n.prim) catch |e| {
                    a_.free(ins);
                    return e;
                };
                if (n.prim == .custom) w.has_custom = true;
                w.steps.append(a_, .{ .prim = p, .dtype = n.dtype, .shape = n.shape, .strides = n.strides, .stream = n.stream, .inputs = ins }) catch {
                    p.deinit();
                    a_.free(ins);
                    return oom();
                };
                w.map.put(n, ref(.step, w.steps.items.len - 1)) catch return oom();
            }
        }
    }
};

/// The tape of the graph traced from `placeholders` to `outputs`.
pub fn build(placeholders: []const *Node, outputs: []const *Node, opts: BuildOptions) errors.Error!*Tape {
    var w = Walk.init();
    defer w.deinit();
    for (placeholders, 0..) |p, i| {
        if (!w.map.contains(p)) w.map.put(p, ref(.input, i)) catch return oom();
    }
    try w.run(outputs);

    const t = a_.create(Tape) catch return oom();
    t.* = .{ .inputs = &.{}, .steps = &.{}, .constants = &.{}, .outputs = &.{}, .has_custom = w.has_custom, .shapeless = opts.shapeless };
    errdefer t.deinit();
    t.inputs = a_.alloc(Sig, placeholders.len) catch return oom();
    for (placeholders, t.inputs) |p, *s| s.* = .{ .dtype = p.dtype, .shape = p.shape };
    t.outputs = a_.alloc(Ref, outputs.len) catch return oom();
    for (outputs, t.outputs) |o, *r| r.* = w.map.get(o).?;
    t.steps = w.steps.toOwnedSlice(a_) catch return oom();
    t.constants = w.consts.toOwnedSlice(a_) catch return oom();

    try simplify(t);
    if (opts.shapeless) {
        for (t.steps) |s| {
            if (!shapelessSupported(s.prim))
                return errors.fail(.invalid_argument, "[compile] {s} cannot be compiled shapeless: its output shape is fixed when the graph is built.", .{s.prim.name()});
        }
    }
    if (opts.fuse and !(opts.shapeless and hasBroadcast(t))) try fuseTape(t);
    return t;
}

/// A shapeless tape with a broadcast step is not fused: a fused step's shape is recomputed as
/// its inputs' broadcast shape, which would lose the broadcast's (traced) target.
fn hasBroadcast(t: *const Tape) bool {
    for (t.steps) |s| if (s.prim == .broadcast) return true;
    return false;
}

// ---------------------------------------------------------------------------------------------
// Fusion

/// Steps fuse.zig could put in a group (elementwise, casts, broadcasts).
fn fusible(p: Primitive) bool {
    return switch (p) {
        .elementwise, .astype, .broadcast => true,
        else => false,
    };
}

/// Rewrite the tape's chains of elementwise steps into `fused` steps (fuse.zig's pass).
///
/// The tape is instantiated as a private graph: inputs and constants become stand-in nodes
/// (zero-input, never evaluated), except evaluated scalar constants, which are used as they
/// are so the pass can write them into programs. Every interior node of that graph is held only
/// by its consumers, whatever the traced function's caller still holds, and none is a tracer,
/// so the pass sees exactly the tape's data flow. The fused graph is then walked back into
/// steps (stand-ins map back to their references) and simplified again (constants written
/// into programs drop out, equal fused steps merge).
///
/// Shapeless tapes with a broadcast step are not fused (`build`), so a fused step's shape is
/// its inputs' broadcast shape, which replay recomputes.
fn fuseTape(t: *Tape) errors.Error!void {
    var candidates: usize = 0;
    for (t.steps) |s| candidates += @intFromBool(fusible(s.prim) and s.prim != .broadcast);
    if (candidates < 2) return;

    const stream = if (t.steps.len > 0) t.steps[0].stream else 0;
    var w = Walk.init();
    defer w.deinit();
    w.new_consts = false;

    const in_nodes = a_.alloc(*Node, t.inputs.len) catch return oom();
    defer a_.free(in_nodes);
    var n_in: usize = 0;
    defer for (in_nodes[0..n_in]) |n| array.release(n);
    const c_nodes = a_.alloc(*Node, t.constants.len) catch return oom();
    defer a_.free(c_nodes);
    var n_c: usize = 0;
    defer for (c_nodes[0..n_c]) |n| array.release(n);

    const standIn = struct {
        fn f(dtype: Dtype, shape: Shape, s: u32) errors.Error!*Node {
            return array.create(dtype, shape, .stop_gradient, &.{}, s);
        }
    }.f;
    for (t.inputs, in_nodes, 0..) |sig, *slot, i| {
        slot.* = try standIn(sig.dtype, sig.shape, stream);
        n_in += 1;
        w.map.put(slot.*, ref(.input, i)) catch return oom();
    }
    for (t.constants, c_nodes, 0..) |c, *slot, i| {
        if (c.isEvaluated() and c.size() == 1 and !c.tracer and c.dtype.size() <= 8 and c.buffer != null) {
            c.retain();
            slot.* = c;
        } else slot.* = try standIn(c.dtype, c.shape, stream);
        n_c += 1;
        w.map.put(slot.*, ref(.constant, i)) catch return oom();
    }

    const outs = a_.alloc(*Node, t.outputs.len) catch return oom();
    defer a_.free(outs);
    try instantiate(t, in_nodes, c_nodes, outs);
    defer for (outs) |o| array.release(o);
    const made = try fuse.fuseCount(outs);
    if (made == 0) return;

    try w.run(outs);
    const steps = w.steps.toOwnedSlice(a_) catch return oom();
    const new_outputs = a_.alloc(Ref, outs.len) catch {
        for (steps) |*s| s.deinit();
        a_.free(steps);
        return oom();
    };
    for (outs, new_outputs) |o, *r| r.* = w.map.get(o).?;
    for (t.steps) |*s| s.deinit();
    a_.free(t.steps);
    a_.free(t.outputs);
    t.steps = steps;
    t.outputs = new_outputs;
    try simplify(t);
}

/// Fused steps in a tape.
fn fusedSteps(t: *const Tape) usize {
    var n: usize = 0;
    for (t.steps) |s| n += @intFromBool(s.prim == .fused);
    return n;
}

/// A step that computes nothing new: its value is its first input's.
fn isNoop(t: *const Tape, s: *const Step) bool {
    if (s.inputs.len == 0) return false;
    const in = t.sigOf(s.inputs[0]);
    const same = in.dtype == s.dtype and in.shape.eql(&s.shape);
    return switch (s.prim) {
        .astype, .broadcast => same,
        .shape => |p| p == .reshape and same,
        // A tracer (an identity with no ordering inputs) or a custom function's forward value.
        .depends => s.inputs.len == 1,
        .custom => true,
        else => false,
    };
}

fn stepHash(s: *const Step) u64 {
    var h = std.hash.Wyhash.init(0x6d6c78);
    reflect.hash(Primitive, s.prim, &h);
    h.update(std.mem.asBytes(&s.dtype));
    h.update(std.mem.sliceAsBytes(s.shape.slice()));
    h.update(std.mem.sliceAsBytes(s.inputs));
    return h.final();
}

fn stepEql(a: *const Step, b: *const Step) bool {
    if (a.dtype != b.dtype or !a.shape.eql(&b.shape) or !std.mem.eql(Ref, a.inputs, b.inputs)) return false;
    // as_strided keeps its layout in the strides.
    if (a.prim == .shape and a.prim.shape == .as_strided and !std.mem.eql(i64, a.strides[0..a.shape.ndim], b.strides[0..b.shape.ndim])) return false;
    return reflect.eql(Primitive, a.prim, b.prim);
}

fn constKey(c: *Node) ?u64 {
    if (!c.isEvaluated() or c.nbytes() > merge_const_bytes or !c.isRowContiguous() or c.buffer == null) return null;
    var h = std.hash.Wyhash.init(0x636f6e);
    h.update(std.mem.asBytes(&c.dtype));
    h.update(std.mem.sliceAsBytes(c.shape.slice()));
    h.update(c.data()[0..c.nbytes()]);
    return h.final();
}

fn constEql(a: *Node, b: *Node) bool {
    return a.dtype == b.dtype and a.shape.eql(&b.shape) and std.mem.eql(u8, a.data()[0..a.nbytes()], b.data()[0..b.nbytes()]);
}

/// Constant merging, no-op removal, CSE, then dead-step elimination and renumbering.
fn simplify(t: *Tape) errors.Error!void {
    // 1. Identical small constants become one.
    const ccanon = a_.alloc(Ref, t.constants.len) catch return oom();
    defer a_.free(ccanon);
    {
        var seen = std.AutoHashMap(u64, u32).init(a_);
        defer seen.deinit();
        for (t.constants, 0..) |c, i| {
            ccanon[i] = ref(.constant, i);
            const k = constKey(c) orelse continue;
            const g = seen.getOrPut(k) catch return oom();
            if (g.found_existing and constEql(t.constants[g.value_ptr.*], c)) {
                ccanon[i] = ref(.constant, g.value_ptr.*);
            } else if (!g.found_existing) g.value_ptr.* = @intCast(i);
        }
    }
    // 2. No-ops and common subexpressions, in order (inputs are canonical before a step is looked at).
    const canon = a_.alloc(Ref, t.steps.len) catch return oom();
    defer a_.free(canon);
    var seen = std.AutoHashMap(u64, u32).init(a_);
    defer seen.deinit();
    const resolve = struct {
        fn f(r: Ref, c: []const Ref, cc: []const Ref) Ref {
            return switch (kindOf(r).?) {
                .input => r,
                .step => c[indexOf(r)],
                .constant => cc[indexOf(r)],
            };
        }
    }.f;
    for (t.steps, 0..) |*s, i| {
        for (s.inputs) |*r| r.* = resolve(r.*, canon, ccanon);
        canon[i] = ref(.step, i);
        if (isNoop(t, s)) {
            canon[i] = s.inputs[0];
            continue;
        }
        const g = seen.getOrPut(stepHash(s)) catch return oom();
        if (g.found_existing) {
            if (stepEql(&t.steps[g.value_ptr.*], s)) canon[i] = ref(.step, g.value_ptr.*);
        } else g.value_ptr.* = @intCast(i);
    }
    for (t.outputs) |*r| r.* = resolve(r.*, canon, ccanon);

    // 3. Keep what the outputs reach; renumber steps and constants.
    const live = a_.alloc(bool, t.steps.len) catch return oom();
    defer a_.free(live);
    @memset(live, false);
    const clive = a_.alloc(bool, t.constants.len) catch return oom();
    defer a_.free(clive);
    @memset(clive, false);
    const mark = struct {
        fn f(r: Ref, l: []bool, cl: []bool) void {
            switch (kindOf(r).?) {
                .input => {},
                .step => l[indexOf(r)] = true,
                .constant => cl[indexOf(r)] = true,
            }
        }
    }.f;
    for (t.outputs) |r| mark(r, live, clive);
    var i = t.steps.len;
    while (i > 0) {
        i -= 1;
        if (!live[i] or canon[i] != ref(.step, i)) {
            live[i] = false;
            continue;
        }
        for (t.steps[i].inputs) |r| mark(r, live, clive);
    }
    const newIdx = canon; // reused: new index of each kept step
    var ns: usize = 0;
    for (t.steps, 0..) |*s, k| {
        if (live[k]) {
            newIdx[k] = @intCast(ns);
            t.steps[ns] = s.*;
            ns += 1;
        } else s.deinit();
    }
    const cIdx = ccanon;
    var nc: usize = 0;
    for (t.constants, 0..) |c, k| {
        if (clive[k]) {
            cIdx[k] = @intCast(nc);
            t.constants[nc] = c;
            nc += 1;
        } else array.release(c);
    }
    const renum = struct {
        fn f(r: Ref, si: []const Ref, ci: []const Ref) Ref {
            return switch (kindOf(r).?) {
                .input => r,
                .step => ref(.step, si[indexOf(r)]),
                .constant => ref(.constant, ci[indexOf(r)]),
            };
        }
    }.f;
    for (t.steps[0..ns]) |*s| {
        for (s.inputs) |*r| r.* = renum(r.*, newIdx, cIdx);
    }
    for (t.outputs) |*r| r.* = renum(r.*, newIdx, cIdx);
    t.steps = a_.realloc(t.steps, ns) catch t.steps[0..ns];
    t.constants = a_.realloc(t.constants, nc) catch t.constants[0..nc];
}

// ---------------------------------------------------------------------------------------------
// Shapeless: output shapes recomputed from the inputs

fn shapelessSupported(p: Primitive) bool {
    return switch (p) {
        .astype, .stop_gradient, .depends, .custom, .elementwise, .fused, .broadcast => true,
        .reduce => |r| r == .reduce or r == .arg_reduce,
        .shape => |s| s == .transpose or s == .reshape or s == .concatenate,
        .matmul => true,
        .indexing => |x| switch (x) {
            .gather, .scatter, .gather_axis, .scatter_axis => true,
            else => false,
        },
        else => false,
    };
}

const reducedShape = prims.reduce.outShape;

fn shapeFail(op: []const u8, comptime what: []const u8, a: *const Shape, b: *const Shape) errors.Error {
    var b1: [256]u8 = undefined;
    var b2: [256]u8 = undefined;
    return errors.fail(.invalid_argument, "[{s}] " ++ what, .{ op, a.format(&b1), b.format(&b2) });
}

fn shapeSize(sh: *const Shape) i64 {
    var n: i64 = 1;
    for (sh.slice()) |d| n *= d;
    return n;
}

/// A reshape step's shape on a new input, as MLX's Reshape / Flatten / Unflatten /
/// Squeeze / ExpandDims recompute it: the step's rule says how the target was written. A -1
/// is inferred again, flattened axes are multiplied again, an unflattened axis is split again
/// (its -1 inferred); the other axes follow the input. A target of fixed sizes (`sizes`: also
/// squeeze, expand_dims, take's slab axis) that only removes or inserts size-1 axes carries
/// the input's other axes over; any other keeps its traced target, which the input must still
/// fill (MLX's Reshape without a -1). Where the traced shapes do not say which size-1 axis a
/// grown axis is, it fails rather than guess.
fn shapelessReshape(s: *const Step, rule: prims.shape.ReshapeRule, in_t: *const Shape, x: *const Node) errors.Error!Shape {
    const out_t = &s.shape;
    const in_n = &x.shape;
    if (in_n.eql(in_t)) return out_t.*;
    const total = shapeSize(in_n);
    // The rule against the traced shapes (a loaded file's rule is not trusted).
    const fits = switch (rule.kind) {
        .sizes => true,
        .infer => rule.a < out_t.ndim,
        .flatten => rule.a <= rule.b and rule.b < in_t.ndim and out_t.ndim + (rule.b - rule.a) == in_t.ndim,
        .unflatten => rule.a < in_t.ndim and rule.b >= 1 and rule.c < @as(i16, rule.b) and in_t.ndim - 1 + @as(usize, rule.b) == out_t.ndim,
    };
    if (!fits) return errors.fail(.invalid_argument, "[compile] A reshape step's rule does not fit its traced shapes.", .{});
    switch (rule.kind) {
        .sizes => {},
        .infer => {
            var sh = out_t.*;
            var known: i64 = 1;
            for (sh.slice(), 0..) |d, i| {
                if (i != rule.a) known *= d;
            }
            if (known == 0) return errors.fail(.invalid_argument, "[reshape] Cannot infer the shape of an empty array", .{});
            sh.dims[rule.a] = std.math.cast(i32, @divTrunc(total, known)) orelse std.math.maxInt(i32);
            if (known * sh.dims[rule.a] != total) {
                var b1: [256]u8 = undefined;
                return errors.fail(.invalid_argument, "[reshape] Cannot reshape array of size {d} into shape {s}.", .{ total, sh.format(&b1) });
            }
            return sh;
        },
        .flatten => {
            var sh = Shape{ .ndim = 0 };
            var m: i64 = 1;
            for (in_n.slice(), 0..) |d, i| {
                if (i < rule.a or i > rule.b) {
                    sh.dims[sh.ndim] = d;
                    sh.ndim += 1;
                } else {
                    m *= d;
                    if (i == rule.b) {
                        sh.dims[sh.ndim] = std.math.cast(i32, m) orelse return errors.fail(.invalid_argument, "[flatten] The flattened axis has more than {d} elements.", .{std.math.maxInt(i32)});
                        sh.ndim += 1;
                    }
                }
            }
            return sh;
        },
        .unflatten => {
            const n: i64 = in_n.dims[rule.a];
            var sub: [max_ndim]i32 = undefined;
            @memcpy(sub[0..rule.b], out_t.dims[rule.a..][0..rule.b]);
            var size: i64 = 1;
            for (sub[0..rule.b], 0..) |d, i| {
                if (i != rule.c) size *= d;
            }
            if (rule.c >= 0) {
                if (size == 0) return errors.fail(.invalid_argument, "[unflatten] Cannot infer the shape of an empty array", .{});
                const ci: usize = @intCast(rule.c);
                sub[ci] = std.math.cast(i32, @divTrunc(n, size)) orelse std.math.maxInt(i32);
                size *= sub[ci];
            }
            if (size != n) {
                var b1: [256]u8 = undefined;
                const sub_shape = Shape.fromSlice(sub[0..rule.b], "unflatten") catch Shape{};
                return errors.fail(.invalid_argument, "[Unflatten] Cannot unflatten axis {d} with size {d} into shape {s}.", .{ rule.a, n, sub_shape.format(&b1) });
            }
            var sh = Shape{ .ndim = 0 };
            for (in_n.slice(), 0..) |d, i| {
                if (i == rule.a) {
                    for (sub[0..rule.b]) |e| {
                        sh.dims[sh.ndim] = e;
                        sh.ndim += 1;
                    }
                } else {
                    sh.dims[sh.ndim] = d;
                    sh.ndim += 1;
                }
            }
            return sh;
        },
    }
    if (ones_only: {
        var i: usize = 0;
        var o: usize = 0;
        while (true) {
            while (i < in_t.ndim and in_t.dims[i] == 1) i += 1;
            while (o < out_t.ndim and out_t.dims[o] == 1) o += 1;
            if (i == in_t.ndim or o == out_t.ndim) break :ones_only i == in_t.ndim and o == out_t.ndim;
            if (in_t.dims[i] != out_t.dims[o]) break :ones_only false;
            i += 1;
            o += 1;
        }
    }) {
        // Segments of size-1 axes between the axes that match (anchors), in order.
        var sh = out_t.*;
        var i: usize = 0;
        var o: usize = 0;
        while (i <= in_t.ndim and o <= out_t.ndim) {
            const si = i;
            const so = o;
            while (i < in_t.ndim and in_t.dims[i] == 1) i += 1;
            while (o < out_t.ndim and out_t.dims[o] == 1) o += 1;
            const a = i - si;
            const b = o - so;
            var grown: usize = 0;
            for (si..i) |d| grown += @intFromBool(in_n.dims[d] != 1);
            if (grown > 0) {
                if (a == b) {
                    for (0..a) |k| sh.dims[so + k] = in_n.dims[si + k];
                } else if (grown == b) {
                    var k = so;
                    for (si..i) |d| if (in_n.dims[d] != 1) {
                        sh.dims[k] = in_n.dims[d];
                        k += 1;
                    };
                } else {
                    var b1: [256]u8 = undefined;
                    var b2: [256]u8 = undefined;
                    var b3: [256]u8 = undefined;
                    return errors.fail(.invalid_argument, "[compile] reshape cannot be replayed shapeless on shape {s}: traced from {s} to {s}, which does not say where the size-1 axes go.", .{ in_n.format(&b1), in_t.format(&b2), out_t.format(&b3) });
                }
            }
            if (i == in_t.ndim or o == out_t.ndim) break;
            sh.dims[o] = in_n.dims[i];
            i += 1;
            o += 1;
        }
        return sh;
    }
    if (total != shapeSize(out_t)) {
        var b1: [256]u8 = undefined;
        return errors.fail(.invalid_argument, "[reshape] Cannot reshape array of size {d} into shape {s}.", .{ total, out_t.format(&b1) });
    }
    return out_t.*;
}

/// The step's shape on these inputs (same ranks as traced); may adjust shape-dependent flags in `p`.
///
/// As MLX's shapeless compile: elementwise ops, casts, reductions, transposes, concatenate,
/// matmul/addmm and gathers recompute their shape from their inputs; broadcast_to and
/// reshape keep the traced target (an input that no longer fits fails as the op would); a
/// gather keeps its traced slice sizes and a scatter its traced region (slice starts and
/// stops are fixed when traced), checked against the new array.
fn shapelessShape(t: *const Tape, s: *const Step, p: *Primitive, ins: []const *Node) errors.Error!Shape {
    // Operand counts (a loaded file's steps are not trusted).
    const need: usize = switch (p.*) {
        .matmul => |m| if (m == .addmm) 3 else 2,
        .indexing => |x| if (x == .scatter_axis) 3 else if (x == .gather) 1 else 2,
        .elementwise, .fused => 0,
        else => 1,
    };
    if (ins.len < need) return errors.fail(.invalid_argument, "[compile] A {s} step has {d} operands.", .{ p.name(), ins.len });
    switch (p.*) {
        .astype, .stop_gradient, .depends, .custom => return ins[0].shape,
        .elementwise, .fused => {
            var sh = Shape{ .ndim = 0 };
            for (ins) |in| sh = try prims.copy.broadcastShapes(&sh, &in.shape, "broadcast_shapes");
            // A fused program may hold size-1 constants of a higher rank (written into it):
            // the traced rank stays.
            while (sh.ndim < s.shape.ndim) {
                std.mem.copyBackwards(i32, sh.dims[1 .. sh.ndim + 1], sh.dims[0..sh.ndim]);
                sh.dims[0] = 1;
                sh.ndim += 1;
            }
            return sh;
        },
        .broadcast => {
            const b = try prims.copy.broadcastShapes(&ins[0].shape, &s.shape, "broadcast_shapes");
            if (!b.eql(&s.shape)) return shapeFail("broadcast_to", "Cannot broadcast array of shape {s} into shape {s}.", &ins[0].shape, &s.shape);
            return s.shape;
        },
        .reduce => |*r| switch (r.*) {
            .reduce => |*q| {
                const keep = s.shape.ndim == ins[0].shape.ndim;
                var noop = true;
                for (0..ins[0].shape.ndim) |i| {
                    if (q.axes & (@as(u32, 1) << @intCast(i)) != 0 and ins[0].shape.dims[i] != 1) noop = false;
                }
                q.copy = noop;
                return reducedShape(&ins[0].shape, q.axes, keep);
            },
            .arg_reduce => |q| if (q.axis == null) return s.shape else return reducedShape(&ins[0].shape, @as(u32, 1) << @intCast(q.axis.?), s.shape.ndim == ins[0].shape.ndim),
            else => unreachable,
        },
        .shape => |q| switch (q) {
            .transpose => |perm| {
                var sh = Shape{ .ndim = s.shape.ndim };
                for (0..sh.ndim) |i| sh.dims[i] = ins[0].shape.dims[perm[i]];
                return sh;
            },
            .reshape => |rule| return shapelessReshape(s, rule, &t.sigOf(s.inputs[0]).shape, ins[0]),
            .concatenate => |ax| {
                if (ax >= s.shape.ndim) return errors.fail(.invalid_argument, "[compile] A concatenate step's axis does not fit its shape.", .{});
                var sh = ins[0].shape;
                sh.dims[ax] = 0;
                for (ins) |in| {
                    for (0..sh.ndim) |d| {
                        if (d != ax and in.shape.dims[d] != sh.dims[d])
                            return shapeFail("concatenate", "All the input array dimensions must match exactly except for the concatenation axis. However, got shapes {s} and {s}.", &ins[0].shape, &in.shape);
                    }
                    sh.dims[ax] += in.shape.dims[ax];
                }
                return sh;
            },
            else => unreachable,
        },
        .matmul => |m| {
            const off: usize = if (m == .addmm) 1 else 0;
            const a = &ins[off].shape;
            const b = &ins[off + 1].shape;
            const nd = a.ndim;
            var ok = nd == b.ndim and nd >= 2 and a.dims[nd - 1] == b.dims[nd - 2];
            if (ok) for (0..nd - 2) |d| {
                if (a.dims[d] != b.dims[d]) ok = false;
            };
            if (!ok) return shapeFail(m.name(), "Last dimension of first input with shape {s} must match second to last dimension of second input with shape {s}.", a, b);
            var sh = a.*;
            sh.dims[nd - 1] = b.dims[nd - 1];
            if (m == .addmm and !ins[0].shape.eql(&sh))
                return shapeFail("addmm", "input c of shape {s} must have the output shape {s}.", &ins[0].shape, &sh);
            return sh;
        },
        .indexing => |x| switch (x) {
            .gather => |r| {
                const a = ins[0];
                const nd = a.shape.ndim;
                if (nd > s.shape.ndim) return errors.fail(.invalid_argument, "[compile] A gather step's shape does not fit its array.", .{});
                const slab = s.shape.slice()[s.shape.ndim - nd ..];
                try prims.indexing.checkRegion(a, r, slab, @tagName(r.origin));
                var sh = Shape{ .ndim = 0 };
                for (ins[1..]) |i| sh = try prims.copy.broadcastShapes(&sh, &i.shape, "broadcast_shapes");
                if (sh.ndim + nd > max_ndim) return errors.fail(.invalid_argument, "[{s}] Too many dimensions.", .{@tagName(r.origin)});
                @memcpy(sh.dims[sh.ndim..][0..nd], slab);
                sh.ndim += @intCast(nd);
                return sh;
            },
            .scatter => |r| {
                const a = ins[0];
                const u = &ins[1].shape;
                const nd = a.shape.ndim;
                if (u.ndim < nd) return shapeFail(@tagName(r.origin), "Updates of shape {s} do not fit an array of shape {s}.", u, &a.shape);
                try prims.indexing.checkRegion(a, r, u.slice()[u.ndim - nd ..], @tagName(r.origin));
                return a.shape;
            },
            .gather_axis, .scatter_axis => |q| {
                const a = &ins[0].shape;
                const idx = &ins[1].shape;
                const op: []const u8 = if (x == .gather_axis) "take_along_axis" else "put_along_axis";
                var ok = a.ndim == idx.ndim and q.axis < a.ndim;
                if (ok) for (0..a.ndim) |d| {
                    if (d != q.axis and a.dims[d] != idx.dims[d]) ok = false;
                };
                if (x == .scatter_axis and !ins[2].shape.eql(idx)) ok = false;
                if (!ok) return shapeFail(op, "Indices of shape {s} do not match the array of shape {s} outside the axis.", idx, a);
                return if (x == .gather_axis) idx.* else a.*;
            },
            else => unreachable,
        },
        else => unreachable,
    }
}

// ---------------------------------------------------------------------------------------------
// Replay

fn sigText(sig: Sig, buf: []u8) []const u8 {
    var sb: [256]u8 = undefined;
    return std.fmt.bufPrint(buf, "{s} {s}", .{ sig.dtype.name(), sig.shape.format(&sb) }) catch buf[0..0];
}

/// New unevaluated output nodes (the caller owns `out`'s references) for these inputs.
pub fn replay(t: *const Tape, inputs: []const *Node, out: []*Node) errors.Error!void {
    std.debug.assert(out.len == t.outputs.len);
    if (inputs.len != t.inputs.len)
        return errors.fail(.invalid_argument, "[compile] The compiled function takes {d} arrays but was called with {d}.", .{ t.inputs.len, inputs.len });
    for (inputs, t.inputs, 0..) |in, sig, i| {
        const ok = in.dtype == sig.dtype and (if (t.shapeless) in.shape.ndim == sig.shape.ndim else in.shape.eql(&sig.shape));
        if (!ok) {
            var b1: [300]u8 = undefined;
            var b2: [300]u8 = undefined;
            return errors.fail(.invalid_argument, "[compile] Input {d} is {s} but the function was compiled for {s}.", .{ i, sigText(.{ .dtype = in.dtype, .shape = in.shape }, &b1), sigText(sig, &b2) });
        }
    }
    try instantiate(t, inputs, t.constants, out);
}

/// The tape's steps as new nodes over `inputs` and `consts` (one node per constant).
fn instantiate(t: *const Tape, inputs: []const *Node, consts: []const *Node, out: []*Node) errors.Error!void {
    const vals = a_.alloc(*Node, t.steps.len) catch return oom();
    defer a_.free(vals);
    var made: usize = 0;
    defer for (vals[0..made]) |v| array.release(v);
    var in_buf: [64]*Node = undefined;
    var in_heap: []*Node = &.{};
    defer a_.free(in_heap);
    for (t.steps) |*s| {
        const ins: []*Node = if (s.inputs.len <= in_buf.len) in_buf[0..s.inputs.len] else blk: {
            if (in_heap.len < s.inputs.len) {
                a_.free(in_heap);
                in_heap = &.{};
                in_heap = a_.alloc(*Node, s.inputs.len) catch return oom();
            }
            break :blk in_heap[0..s.inputs.len];
        };
        for (s.inputs, ins) |r, *n| n.* = node(r, inputs, consts, vals);
        var p = try reflect.clone(Primitive, s.prim);
        var shape = s.shape;
        if (t.shapeless) shape = shapelessShape(t, s, &p, ins) catch |e| {
            p.deinit();
            return e;
        };
        if (p == .fused and tracedInput(ins)) {
            // Under a transform (grad, vmap, another compile's trace) a fused step is replayed
            // as its ordinary ops: the transform then sees exactly the uncompiled graph (its
            // vjp shares one backward graph, bits equal grad of the plain function), and an
            // outer compile fuses the result again.
            defer p.deinit();
            vals[made] = try prims.fused.unfuse(p.fused.program, ins, shape, s.stream);
            made += 1;
            continue;
        }
        const n = array.create(s.dtype, shape, p, ins, s.stream) catch |e| {
            p.deinit();
            return e;
        };
        n.strides = s.strides;
        vals[made] = n;
        made += 1;
    }
    for (t.outputs, out) |r, *o| {
        const n = node(r, inputs, consts, vals);
        n.retain();
        o.* = n;
    }
}

fn tracedInput(ins: []const *Node) bool {
    for (ins) |in| if (array.keepsGraph(in)) return true;
    return false;
}

fn node(r: Ref, inputs: []const *Node, consts: []const *Node, vals: []const *Node) *Node {
    const i = indexOf(r);
    return switch (kindOf(r).?) {
        .input => inputs[i],
        .step => vals[i],
        .constant => consts[i],
    };
}

// ---------------------------------------------------------------------------------------------
// Export and import (docs/COMPILE-FORMAT.md)

pub const magic = "MLXBFUN\x00";
/// Written: 2 (several traces, a shared constant pool, metadata). Read: 1 and 2.
pub const format_version: u32 = 2;
/// Most traces one file may hold.
pub const max_traces = 1 << 16;

fn writeShape(out: *std.ArrayList(u8), s: *const Shape) errors.Error!void {
    try reflect.writeInt(out, u8, s.ndim);
    for (s.slice()) |d| try reflect.writeInt(out, i32, d);
}

fn writeRef(out: *std.ArrayList(u8), r: Ref) errors.Error!void {
    try reflect.writeInt(out, u32, r);
}

fn writeBlob(out: *std.ArrayList(u8), b: []const u8) errors.Error!void {
    try reflect.writeInt(out, u32, @intCast(b.len));
    out.appendSlice(a_, b) catch return oom();
}

/// A constant operand renumbered into the file's shared pool.
fn poolRef(r: Ref, map: []const u32) Ref {
    return if (kindOf(r).? == .constant) ref(.constant, map[indexOf(r)]) else r;
}

/// One tape as the bytes of a file (no signature text, no metadata).
pub fn serialize(t: *const Tape, out: *std.ArrayList(u8)) errors.Error!void {
    return serializeMulti(&.{t}, &.{""}, "", out);
}

/// Several traces of one function as the bytes of a file (format 2, docs/COMPILE-FORMAT.md):
/// `labels[i]` is trace i's signature text (the host's; opaque here). A constant that several
/// traces captured (the same node) is written once.
pub fn serializeMulti(tapes: []const *const Tape, labels: []const []const u8, metadata: []const u8, out: *std.ArrayList(u8)) errors.Error!void {
    std.debug.assert(tapes.len == labels.len);
    if (tapes.len == 0 or tapes.len > max_traces) return errors.fail(.invalid_argument, "[export_function] A file holds 1 to {d} traces, not {d}.", .{ max_traces, tapes.len });
    for (tapes) |t| {
        if (t.has_custom)
            return errors.fail(.invalid_argument, "[export_function] The function calls a custom function (its transforms are host callbacks), which cannot be exported.", .{});
        if (t.shapeless != tapes[0].shapeless)
            return errors.fail(.invalid_argument, "[export_function] The traces of one file must all be shapeless or all not.", .{});
    }
    for (labels) |l| if (l.len > max_file_bytes) return errors.fail(.invalid_argument, "[export_function] A signature is too long.", .{});
    // The shared constant pool, and each tape's constant indices in it.
    var pool: std.ArrayList(*Node) = .empty;
    defer pool.deinit(a_);
    var index = std.AutoHashMap(*Node, u32).init(a_);
    defer index.deinit();
    const maps = a_.alloc([]u32, tapes.len) catch return oom();
    var nmaps: usize = 0;
    defer {
        for (maps[0..nmaps]) |m| a_.free(m);
        a_.free(maps);
    }
    for (tapes) |t| {
        const m = a_.alloc(u32, t.constants.len) catch return oom();
        maps[nmaps] = m;
        nmaps += 1;
        for (t.constants, m) |c, *k| {
            const g = index.getOrPut(c) catch return oom();
            if (!g.found_existing) {
                g.value_ptr.* = @intCast(pool.items.len);
                pool.append(a_, c) catch return oom();
            }
            k.* = g.value_ptr.*;
        }
    }
    if (pool.items.len > max_io) return errors.fail(.invalid_argument, "[export_function] Too many constants ({d}).", .{pool.items.len});
    try eval_mod.eval(pool.items);

    out.appendSlice(a_, magic) catch return oom();
    try reflect.writeInt(out, u32, format_version);
    try reflect.writeInt(out, u32, @intFromBool(tapes[0].shapeless));
    try writeBlob(out, metadata);
    try reflect.writeInt(out, u32, @intCast(pool.items.len));
    for (pool.items) |c| {
        try reflect.writeName(out, @tagName(c.dtype));
        try writeShape(out, &c.shape);
        const nb = c.nbytes();
        try reflect.writeInt(out, u64, nb);
        if (nb > 0) {
            // copyConvert writes typed elements: convert into an aligned buffer, then append.
            const tmp = a_.alignedAlloc(u8, .@"64", nb) catch return oom();
            defer a_.free(tmp);
            convert.copyConvert(c, tmp.ptr, c.dtype);
            out.appendSlice(a_, tmp) catch return oom();
        }
    }
    try reflect.writeInt(out, u32, @intCast(tapes.len));
    for (tapes, labels, maps) |t, label, map| {
        try writeBlob(out, label);
        try reflect.writeInt(out, u32, @intCast(t.inputs.len));
        for (t.inputs) |s| {
            try reflect.writeName(out, @tagName(s.dtype));
            try writeShape(out, &s.shape);
        }
        try reflect.writeInt(out, u32, @intCast(t.steps.len));
        for (t.steps) |*s| {
            try reflect.write(Primitive, s.prim, out);
            try reflect.writeName(out, @tagName(s.dtype));
            try writeShape(out, &s.shape);
            for (s.strides[0..s.shape.ndim]) |st| try reflect.writeInt(out, i64, st);
            try reflect.writeInt(out, u32, @intCast(s.inputs.len));
            for (s.inputs) |r| try writeRef(out, poolRef(r, map));
        }
        try reflect.writeInt(out, u32, @intCast(t.outputs.len));
        for (t.outputs) |r| try writeRef(out, poolRef(r, map));
    }
}

fn readDtype(r: *reflect.Reader) errors.Error!Dtype {
    const n = try r.name();
    return std.meta.stringToEnum(Dtype, n) orelse
        errors.fail(.invalid_argument, "[import_function] The file {s} names an unknown dtype '{s}'.", .{ r.file, n });
}

fn readShape(r: *reflect.Reader) errors.Error!Shape {
    const nd = try r.int(u8);
    if (nd > max_ndim) return r.malformed("an array has too many dimensions");
    var s = Shape{ .ndim = nd };
    for (0..nd) |i| {
        s.dims[i] = try r.int(i32);
        if (s.dims[i] < 0) return r.malformed("a negative dimension");
    }
    _ = s.sizeChecked("import_function") catch return r.malformed("an array is too large");
    return s;
}

fn readCount(r: *reflect.Reader, limit: usize, what: []const u8) errors.Error!u32 {
    const n = try r.int(u32);
    if (n > limit or n > r.bytes.len - r.pos) return r.malformed(what);
    return n;
}

/// A `u32` length and that many bytes, copied NUL-terminated (for the C ABI's strings); a NUL
/// inside is refused.
fn readText(r: *reflect.Reader, what: []const u8) errors.Error![:0]u8 {
    const n = try r.int(u32);
    const b = try r.take(n);
    if (std.mem.indexOfScalar(u8, b, 0) != null) return r.malformed(what);
    return a_.dupeZ(u8, b) catch oom();
}

/// A ref read from the file, checked to point at an input, a constant or an EARLIER step.
fn readRef(r: *reflect.Reader, n_in: usize, n_steps: usize, n_const: usize) errors.Error!Ref {
    const v = try r.int(u32);
    const k = kindOf(v) orelse return r.malformed("an operand reference of unknown kind");
    const lim = switch (k) {
        .input => n_in,
        .step => n_steps,
        .constant => n_const,
    };
    if (indexOf(v) >= lim) {
        return errors.fail(.invalid_argument, "[import_function] The file {s} is malformed: an operand refers to {s} {d}, out of range (there are {d}).", .{ r.file, @tagName(k), indexOf(v), lim });
    }
    return v;
}

/// A fused step read from a file: its program must be well formed over its operands' dtypes
/// (the interpreter trusts it), give the step's dtype, and its operands broadcast to its shape.
fn checkFused(r: *reflect.Reader, f: prims.fused.Fused, dt: Dtype, sh: Shape, ins: []const Ref, inputs: []const Sig, steps: []const Step, consts: []const *Node, shapeless: bool) errors.Error!void {
    if (ins.len > prims.fused.max_inputs) return r.malformed("a fused step has too many operands");
    var dts: [prims.fused.max_inputs]Dtype = undefined;
    for (ins, 0..) |x, k| {
        const i = indexOf(x);
        const sig: Sig = switch (kindOf(x).?) {
            .input => inputs[i],
            .step => .{ .dtype = steps[i].dtype, .shape = steps[i].shape },
            .constant => .{ .dtype = consts[i].dtype, .shape = consts[i].shape },
        };
        dts[k] = sig.dtype;
        if (!shapeless) {
            const b = prims.copy.broadcastShapes(&sig.shape, &sh, "import_function") catch {
                errors.clear();
                return r.malformed("a fused step's operand does not broadcast to its shape");
            };
            if (!b.eql(&sh)) return r.malformed("a fused step's operand does not broadcast to its shape");
        }
    }
    prims.fused.validateDtypes(f.program, dts[0..ins.len]) catch {
        errors.clear();
        return r.malformed("a fused step's program does not match its operands");
    };
    if (f.program[f.program.len - 1].dtype != dt) return r.malformed("a fused step's dtype is not its program's");
}

fn readInputs(r: *reflect.Reader, t: *Tape) errors.Error!void {
    const n_in = try readCount(r, max_io, "too many inputs");
    t.inputs = a_.alloc(Sig, n_in) catch return oom();
    for (t.inputs) |*s| s.* = .{ .dtype = try readDtype(r), .shape = try readShape(r) };
}

/// Constants (owned by the caller: released on error here).
fn readConsts(r: *reflect.Reader) errors.Error![]*Node {
    const stream = try stream_mod.defaultStreamOf(.cpu);
    const n_const = try readCount(r, max_io, "too many constants");
    const consts = a_.alloc(*Node, n_const) catch return oom();
    var nc: usize = 0;
    errdefer {
        for (consts[0..nc]) |c| array.release(c);
        a_.free(consts);
    }
    while (nc < n_const) {
        const dt = try readDtype(r);
        const sh = try readShape(r);
        const nb = try r.int(u64);
        if (nb != sh.size() * dt.size()) return r.malformed("a constant's byte count does not match its shape");
        const data = try r.take(@intCast(nb));
        const c = try array.createWithBuffer(dt, sh, stream, "import_function");
        if (nb > 0) @memcpy(c.data()[0..@intCast(nb)], data);
        consts[nc] = c;
        nc += 1;
    }
    return consts;
}

/// Steps then outputs, into `t` (its inputs and constants already read).
fn readStepsAndOutputs(r: *reflect.Reader, t: *Tape) errors.Error!void {
    const stream = try stream_mod.defaultStreamOf(.cpu);
    const n_in = t.inputs.len;
    const n_const = t.constants.len;
    const n_steps = try readCount(r, max_steps, "too many steps");
    const steps = a_.alloc(Step, n_steps) catch return oom();
    var ns: usize = 0;
    defer if (ns < n_steps) {
        for (steps[0..ns]) |*s| s.deinit();
        a_.free(steps);
    };
    while (ns < n_steps) {
        const p = try reflect.read(Primitive, r);
        errdefer p.deinit();
        if (p == .leaf or p == .custom) return r.malformed("a step with a primitive that cannot be imported");
        const dt = try readDtype(r);
        const sh = try readShape(r);
        var st: [max_ndim]i64 = undefined;
        for (st[0..sh.ndim]) |*x| x.* = try r.int(i64);
        const nin = try readCount(r, 1 << 16, "too many operands");
        const ins = a_.alloc(Ref, nin) catch return oom();
        errdefer a_.free(ins);
        for (ins) |*x| x.* = try readRef(r, n_in, ns, n_const);
        if (p == .fused) try checkFused(r, p.fused, dt, sh, ins, t.inputs, steps[0..ns], t.constants, t.shapeless);
        steps[ns] = .{ .prim = p, .dtype = dt, .shape = sh, .strides = st, .stream = stream, .inputs = ins };
        ns += 1;
    }
    t.steps = steps;

    const n_out = try readCount(r, max_io, "too many outputs");
    t.outputs = a_.alloc(Ref, n_out) catch return oom();
    for (t.outputs) |*x| x.* = try readRef(r, n_in, n_steps, n_const);
    if (t.shapeless) for (t.steps) |s| {
        if (!shapelessSupported(s.prim)) return r.malformed("a shapeless function with a shape-fixed primitive");
    };
}

fn newTape(shapeless: bool) errors.Error!*Tape {
    const t = a_.create(Tape) catch return oom();
    t.* = .{ .inputs = &.{}, .steps = &.{}, .constants = &.{}, .outputs = &.{}, .has_custom = false, .shapeless = shapeless };
    return t;
}

/// Every trace of a file's bytes, each field validated (never trusted). The caller owns the
/// slice and the tapes. Version 1 files hold one trace (no signature text, no metadata).
pub fn deserializeAll(bytes: []const u8, file: []const u8) errors.Error![]*Tape {
    var r = reflect.Reader{ .bytes = bytes, .file = file };
    if (bytes.len < magic.len or !std.mem.eql(u8, bytes[0..magic.len], magic))
        return errors.fail(.invalid_argument, "[import_function] The file {s} is not an mlx-bun function file (bad magic).", .{file});
    r.pos = magic.len;
    const ver = try r.int(u32);
    if (ver != 1 and ver != 2)
        return errors.fail(.invalid_argument, "[import_function] The file {s} has format version {d}; this mlx-bun reads versions 1 and 2.", .{ file, ver });
    const flags = try r.int(u32);
    if (flags > 1) return r.malformed("unknown flags");
    const shapeless = flags == 1;

    var tapes: std.ArrayList(*Tape) = .empty;
    errdefer {
        for (tapes.items) |t| t.deinit();
        tapes.deinit(a_);
    }
    if (ver == 1) {
        const t = try newTape(shapeless);
        tapes.append(a_, t) catch {
            t.deinit();
            return oom();
        };
        try readInputs(&r, t);
        t.constants = try readConsts(&r);
        try readStepsAndOutputs(&r, t);
    } else {
        const metadata = try readText(&r, "the metadata holds a NUL byte");
        defer a_.free(metadata);
        const pool = try readConsts(&r);
        defer {
            for (pool) |c| array.release(c);
            a_.free(pool);
        }
        const n = try readCount(&r, max_traces, "too many traces");
        if (n == 0) return r.malformed("a file with no trace");
        tapes.ensureTotalCapacity(a_, n) catch return oom();
        for (0..n) |_| {
            const t = try newTape(shapeless);
            tapes.appendAssumeCapacity(t);
            t.label = try readText(&r, "a signature holds a NUL byte");
            t.metadata = a_.dupeZ(u8, metadata) catch return oom();
            try readInputs(&r, t);
            // Each trace holds the whole pool (shared nodes): refs index it directly.
            t.constants = a_.dupe(*Node, pool) catch return oom();
            for (pool) |c| c.retain();
            try readStepsAndOutputs(&r, t);
        }
    }
    if (r.pos != bytes.len) return r.malformed("trailing bytes after the outputs");
    return tapes.toOwnedSlice(a_) catch oom();
}

/// The first trace of a file's bytes (the others are dropped).
pub fn deserialize(bytes: []const u8, file: []const u8) errors.Error!*Tape {
    const all = try deserializeAll(bytes, file);
    defer a_.free(all);
    for (all[1..]) |t| t.deinit();
    return all[0];
}

pub const max_file_bytes: usize = 1 << 34;

fn writeFile(path: []const u8, data: []const u8) errors.Error!void {
    std.fs.cwd().writeFile(.{ .sub_path = path, .data = data }) catch |e|
        return errors.fail(.runtime, "[export_function] Cannot write {s}: {s}.", .{ path, @errorName(e) });
}

pub fn exportTape(t: *const Tape, path: []const u8) errors.Error!void {
    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(a_);
    try serialize(t, &out);
    try writeFile(path, out.items);
}

pub fn importTapes(path: []const u8) errors.Error![]*Tape {
    const bytes = std.fs.cwd().readFileAlloc(a_, path, max_file_bytes) catch |e|
        return errors.fail(.invalid_argument, "[import_function] Cannot read {s}: {s}.", .{ path, @errorName(e) });
    defer a_.free(bytes);
    return deserializeAll(bytes, path);
}

// ---------------------------------------------------------------------------------------------
// The tape table (ids for the C ABI; an id is never reused)

var table_lock: std.Thread.Mutex = .{};
var table: std.ArrayList(?*Tape) = .empty;
var live_tapes: u32 = 0;

fn register(t: *Tape) errors.Error!u32 {
    table_lock.lock();
    defer table_lock.unlock();
    if (table.items.len >= (1 << 30)) return errors.fail(.invalid_argument, "[compile] Too many compiled functions.", .{});
    table.append(a_, t) catch return oom();
    live_tapes += 1;
    return @intCast(table.items.len);
}

fn lookup(id: u32, op: []const u8) errors.Error!*Tape {
    table_lock.lock();
    defer table_lock.unlock();
    if (id == 0 or id > table.items.len or table.items[id - 1] == null)
        return errors.fail(.invalid_handle, "[{s}] Unknown or freed compiled function {d}.", .{ op, id });
    return table.items[id - 1].?;
}

fn unregister(id: u32) errors.Error!void {
    table_lock.lock();
    const t = blk: {
        defer table_lock.unlock();
        if (id == 0 or id > table.items.len or table.items[id - 1] == null)
            return errors.fail(.invalid_handle, "[compile] Unknown or freed compiled function {d}.", .{id});
        const t = table.items[id - 1].?;
        table.items[id - 1] = null;
        live_tapes -= 1;
        break :blk t;
    };
    t.deinit();
}

// ---------------------------------------------------------------------------------------------
// Tracing for compile: values cannot be read (the tape would bake them in silently).

threadlocal var compile_depth: u32 = 0;

/// Called by eval: while compile traces, evaluating a tracer is refused, as MLX does.
pub fn checkEval(outputs: []const *Node) errors.Error!void {
    if (compile_depth == 0) return;
    for (outputs) |o| {
        if (o.tracer) return errors.fail(.invalid_argument, "[eval] Attempting to eval an array during function transformations like compile or vmap is not allowed.", .{});
    }
}

fn compileTraceBegin() callconv(.c) void {
    compile_depth += 1;
    array.traceBegin();
}
fn compileTraceEnd() callconv(.c) void {
    if (compile_depth > 0) compile_depth -= 1;
    array.traceEnd();
}

// ---------------------------------------------------------------------------------------------
// C ABI

fn nodesOf(hs: ?[*]const u32, n: u32, op: []const u8) errors.Error![]*Node {
    if (n > max_io) return errors.fail(.invalid_argument, "[{s}] Too many arrays ({d}).", .{ op, n });
    const buf = a_.alloc(*Node, n) catch return oom();
    errdefer a_.free(buf);
    if (n == 0) return buf;
    const p = hs orelse return errors.fail(.invalid_argument, "[{s}] The handle list is null.", .{op});
    for (p[0..n], buf) |h, *x| x.* = try handles.get(h, op);
    return buf;
}

fn buildImpl(ph: ?[*]const u32, nph: u32, outs: ?[*]const u32, nout: u32, flags: u32) errors.Error!u32 {
    if (flags > 3) return errors.fail(.invalid_argument, "[compile] Unknown build flags {d}.", .{flags});
    const p = try nodesOf(ph, nph, "compile");
    defer a_.free(p);
    const o = try nodesOf(outs, nout, "compile");
    defer a_.free(o);
    const t = try build(p, o, .{ .shapeless = flags & 1 != 0, .fuse = flags & 2 == 0 });
    errdefer t.deinit();
    return register(t);
}
fn compileBuild(ph: ?[*]const u32, nph: u32, outs: ?[*]const u32, nout: u32, flags: u32) callconv(.c) u32 {
    return buildImpl(ph, nph, outs, nout, flags) catch 0;
}

fn callImpl(id: u32, ins: ?[*]const u32, nin: u32) errors.Error!i32 {
    const t = try lookup(id, "compile");
    var stack_in: [32]*Node = undefined;
    var heap_in: []*Node = &.{};
    defer a_.free(heap_in);
    const inputs: []*Node = if (nin <= stack_in.len) stack_in[0..nin] else blk: {
        heap_in = try nodesOf(ins, nin, "compile");
        break :blk heap_in;
    };
    if (nin <= stack_in.len and nin > 0) {
        const p = ins orelse return errors.fail(.invalid_argument, "[compile] The handle list is null.", .{});
        for (p[0..nin], inputs) |h, *x| x.* = try handles.get(h, "compile");
    }
    var stack_out: [32]*Node = undefined;
    var heap_out: []*Node = &.{};
    defer a_.free(heap_out);
    const nout = t.outputs.len;
    const out: []*Node = if (nout <= stack_out.len) stack_out[0..nout] else blk: {
        heap_out = a_.alloc(*Node, nout) catch return oom();
        break :blk heap_out;
    };
    try replay(t, inputs, out);
    grad.clearResults();
    var pushed: usize = 0;
    errdefer for (out[pushed..]) |n| array.release(n);
    for (out) |n| {
        pushed += 1;
        try grad.pushResult(n);
    }
    return @intCast(nout);
}
fn compileCall(id: u32, ins: ?[*]const u32, nin: u32) callconv(.c) i32 {
    return callImpl(id, ins, nin) catch -@as(i32, @intFromEnum(errors.code()));
}

fn compileFree(id: u32) callconv(.c) i32 {
    return abi_util.ok(unregister(id));
}

fn infoImpl(id: u32, what: u32) errors.Error!i32 {
    const t = try lookup(id, "compile");
    return switch (what) {
        0 => @intCast(t.steps.len),
        1 => @intCast(t.constants.len),
        2 => @intCast(t.inputs.len),
        3 => @intCast(t.outputs.len),
        4 => @intFromBool(t.has_custom),
        5 => @intFromBool(t.shapeless),
        6 => @intCast(fusedSteps(t)),
        7 => @intCast(t.next),
        else => errors.fail(.invalid_argument, "[compile] Unknown info query {d}.", .{what}),
    };
}
fn compileInfo(id: u32, what: u32) callconv(.c) i32 {
    return infoImpl(id, what) catch -@as(i32, @intFromEnum(errors.code()));
}

fn inputInfoImpl(id: u32, i: u32, k: i32) errors.Error!i32 {
    const t = try lookup(id, "compile");
    if (i >= t.inputs.len) return errors.fail(.invalid_argument, "[compile] Input {d} out of range ({d} inputs).", .{ i, t.inputs.len });
    const s = t.inputs[i];
    if (k == -1) return @intFromEnum(s.dtype);
    if (k == -2) return s.shape.ndim;
    if (k < 0 or k >= s.shape.ndim) return errors.fail(.invalid_argument, "[compile] Axis {d} out of range.", .{k});
    return s.shape.dims[@intCast(k)];
}
fn compileInputInfo(id: u32, i: u32, k: i32) callconv(.c) i32 {
    return inputInfoImpl(id, i, k) catch -@as(i32, @intFromEnum(errors.code()));
}

fn compileLive() callconv(.c) u32 {
    table_lock.lock();
    defer table_lock.unlock();
    return live_tapes;
}

fn pathArg(p: ?*const anyopaque, n: u32, op: []const u8) errors.Error![]const u8 {
    if (n == 0 or n > 4096) return errors.fail(.invalid_argument, "[{s}] Invalid file path length {d}.", .{ op, n });
    const q: [*]const u8 = @ptrCast(p orelse return errors.fail(.invalid_argument, "[{s}] The path pointer is null.", .{op}));
    // (The file system calls treat an embedded NUL as unreachable: refuse it here.)
    if (std.mem.indexOfScalar(u8, q[0..n], 0) != null) return errors.fail(.invalid_argument, "[{s}] The file path contains a NUL byte.", .{op});
    return q[0..n];
}

/// The traces of a file: the tape `id`, then its `next` links (compile_link), with the
/// labels and metadata compile_set_text gave them. A chain that loops or is too long fails.
fn exportImpl(id: u32, p: ?*const anyopaque, n: u32) errors.Error!void {
    const op = "export_function";
    var tapes: std.ArrayList(*const Tape) = .empty;
    defer tapes.deinit(a_);
    var labels: std.ArrayList([]const u8) = .empty;
    defer labels.deinit(a_);
    var seen = std.AutoHashMap(u32, void).init(a_);
    defer seen.deinit();
    var cur = id;
    while (true) {
        const t = try lookup(cur, op);
        if ((seen.fetchPut(cur, {}) catch return oom()) != null or tapes.items.len >= max_traces)
            return errors.fail(.invalid_argument, "[{s}] The traces linked from {d} loop or are more than {d}.", .{ op, id, max_traces });
        tapes.append(a_, t) catch return oom();
        labels.append(a_, if (t.label) |l| l else "") catch return oom();
        if (t.next == 0) break;
        cur = t.next;
    }
    const first = tapes.items[0];
    const path = try pathArg(p, n, op);
    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(a_);
    try serializeMulti(tapes.items, labels.items, if (first.metadata) |m| m else "", &out);
    try writeFile(path, out.items);
}

fn setTextImpl(id: u32, what: u32, p: ?*const anyopaque, n: u32) errors.Error!void {
    const t = try lookup(id, "export_function");
    if (what > 1) return errors.fail(.invalid_argument, "[export_function] Unknown text kind {d}.", .{what});
    const bytes: []const u8 = if (n == 0) &.{} else @as([*]const u8, @ptrCast(p orelse return errors.fail(.invalid_argument, "[export_function] The text pointer is null.", .{})))[0..n];
    if (std.mem.indexOfScalar(u8, bytes, 0) != null) return errors.fail(.invalid_argument, "[export_function] The text contains a NUL byte.", .{});
    const z = a_.dupeZ(u8, bytes) catch return oom();
    const slot = if (what == 0) &t.label else &t.metadata;
    if (slot.*) |old| a_.free(old);
    slot.* = z;
}
fn compileSetText(id: u32, what: u32, text: ?*const anyopaque, ntext: u32) callconv(.c) i32 {
    return abi_util.ok(setTextImpl(id, what, text, ntext));
}

fn linkImpl(id: u32, next: u32) errors.Error!void {
    const t = try lookup(id, "export_function");
    if (next != 0) {
        if (next == id) return errors.fail(.invalid_argument, "[export_function] A trace cannot follow itself.", .{});
        _ = try lookup(next, "export_function");
    }
    t.next = next;
}
fn compileLink(id: u32, next: u32) callconv(.c) i32 {
    return abi_util.ok(linkImpl(id, next));
}
fn compileExport(id: u32, path: ?*const anyopaque, n: u32) callconv(.c) i32 {
    return abi_util.ok(exportImpl(id, path, n));
}

fn importImpl(p: ?*const anyopaque, n: u32) errors.Error!u32 {
    const tapes = try importTapes(try pathArg(p, n, "import_function"));
    defer a_.free(tapes);
    // Registered last to first, so each knows the id of the next; on failure the registered
    // ones are freed and the rest released.
    var next: u32 = 0;
    var k: usize = tapes.len;
    errdefer {
        for (tapes[0..k]) |t| t.deinit();
        var id = next;
        while (id != 0) {
            const t = lookup(id, "import_function") catch break;
            const after = t.next;
            unregister(id) catch {};
            id = after;
        }
    }
    while (k > 0) {
        const t = tapes[k - 1];
        t.next = next;
        next = try register(t);
        k -= 1;
    }
    return next;
}
fn compileImport(path: ?*const anyopaque, n: u32) callconv(.c) u32 {
    return importImpl(path, n) catch 0;
}

fn textImpl(id: u32, what: u32) errors.Error![*:0]const u8 {
    const t = try lookup(id, "import_function");
    const x = switch (what) {
        0 => t.label,
        1 => t.metadata,
        2 => t.description,
        else => return errors.fail(.invalid_argument, "[import_function] Unknown text query {d}.", .{what}),
    };
    return if (x) |v| v.ptr else "";
}
fn compileText(id: u32, what: u32) callconv(.c) [*:0]const u8 {
    return textImpl(id, what) catch "";
}

fn writeJsonShape(out: *std.ArrayList(u8), s: *const Shape) errors.Error!void {
    try reflect.appendJson(out, "[", .{});
    for (s.slice(), 0..) |d, i| try reflect.appendJson(out, "{s}{d}", .{ if (i > 0) "," else "", d });
    try reflect.appendJson(out, "]", .{});
}

fn writeJsonRefs(out: *std.ArrayList(u8), rs: []const Ref) errors.Error!void {
    try reflect.appendJson(out, "[", .{});
    for (rs, 0..) |r, i| try reflect.appendJson(out, "{s}{d}", .{ if (i > 0) "," else "", r });
    try reflect.appendJson(out, "]", .{});
}

/// A tape as JSON text, for `mx.exportFunction` with a callback (src/compile.ts):
/// `{"shapeless":b,"inputs":[{"dtype","shape"}],"constants":[{"dtype","shape"}],
/// "steps":[{"name":<the op's name>,"prim":<reflect.writeJson of the Primitive>,"dtype","shape",
/// "strides" (as_strided's layout; [] for other steps),"inputs":[ref]}],
/// "outputs":[ref]}`, refs as in the file format (top two bits the kind).
pub fn describe(t: *const Tape, out: *std.ArrayList(u8)) errors.Error!void {
    if (t.has_custom)
        return errors.fail(.invalid_argument, "[export_function] The function calls a custom function (its transforms are host callbacks), which cannot be exported.", .{});
    try reflect.appendJson(out, "{{\"shapeless\":{s},\"inputs\":[", .{if (t.shapeless) "true" else "false"});
    for (t.inputs, 0..) |s, i| {
        try reflect.appendJson(out, "{s}{{\"dtype\":\"{s}\",\"shape\":", .{ if (i > 0) "," else "", @tagName(s.dtype) });
        try writeJsonShape(out, &s.shape);
        try reflect.appendJson(out, "}}", .{});
    }
    try reflect.appendJson(out, "],\"constants\":[", .{});
    for (t.constants, 0..) |c, i| {
        try reflect.appendJson(out, "{s}{{\"dtype\":\"{s}\",\"shape\":", .{ if (i > 0) "," else "", @tagName(c.dtype) });
        try writeJsonShape(out, &c.shape);
        try reflect.appendJson(out, "}}", .{});
    }
    try reflect.appendJson(out, "],\"steps\":[", .{});
    for (t.steps, 0..) |*s, i| {
        try reflect.appendJson(out, "{s}{{\"name\":\"{s}\",\"prim\":", .{ if (i > 0) "," else "", s.prim.name() });
        try reflect.writeJson(Primitive, s.prim, out);
        try reflect.appendJson(out, ",\"dtype\":\"{s}\",\"shape\":", .{@tagName(s.dtype)});
        try writeJsonShape(out, &s.shape);
        try reflect.appendJson(out, ",\"strides\":", .{});
        // Only as_strided's strides mean anything (the other steps' are not set).
        const as_strided = s.prim == .shape and s.prim.shape == .as_strided;
        try reflect.writeJson([]const i64, if (as_strided) s.strides[0..s.shape.ndim] else &.{}, out);
        try reflect.appendJson(out, ",\"inputs\":", .{});
        try writeJsonRefs(out, s.inputs);
        try reflect.appendJson(out, "}}", .{});
    }
    try reflect.appendJson(out, "],\"outputs\":", .{});
    try writeJsonRefs(out, t.outputs);
    try reflect.appendJson(out, "}}", .{});
}

fn describeImpl(id: u32) errors.Error!i32 {
    const t = try lookup(id, "export_function");
    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(a_);
    try describe(t, &out);
    if (out.items.len > std.math.maxInt(i32)) return errors.fail(.invalid_argument, "[export_function] The function is too large to describe.", .{});
    const z = a_.dupeZ(u8, out.items) catch return oom();
    if (t.description) |old| a_.free(old);
    t.description = z;
    return @intCast(out.items.len);
}
fn compileDescribe(id: u32) callconv(.c) i32 {
    return describeImpl(id) catch -@as(i32, @intFromEnum(errors.code()));
}

fn constantsImpl(id: u32) errors.Error!i32 {
    const t = try lookup(id, "export_function");
    grad.clearResults();
    for (t.constants) |c| {
        c.retain();
        try grad.pushResult(c);
    }
    return @intCast(t.constants.len);
}
fn compileConstants(id: u32) callconv(.c) i32 {
    return constantsImpl(id) catch -@as(i32, @intFromEnum(errors.code()));
}

pub const abi = [_]abi_util.Entry{
    abi_util.entry("compile_trace_begin", compileTraceBegin, &.{}, "trace_begin for compile: until compile_trace_end, evaluating a tracer fails (as MLX)."),
    abi_util.entry("compile_trace_end", compileTraceEnd, &.{}, "The compile trace that called compile_trace_begin is done."),
    abi_util.entry("compile_build", compileBuild, &.{ "placeholders", "nplaceholders", "outputs", "noutputs", "flags" }, "The tape of the graph traced from placeholders (tracers) to outputs, simplified and fused; flags: 1 shapeless, 2 do not fuse. An id (0 on error)."),
    abi_util.entry("compile_call", compileCall, &.{ "id", "inputs", "ninputs" }, "Replay a tape on inputs: returns the number of outputs and leaves their handles for results_take; negative on error."),
    abi_util.entry("compile_free", compileFree, &.{"id"}, "Free a tape (its constants and primitive copies). 0 on success."),
    abi_util.entry("compile_info", compileInfo, &.{ "id", "what" }, "A count of a tape: 0 steps, 1 constants, 2 inputs, 3 outputs, 4 has custom functions, 5 shapeless, 6 fused steps, 7 the id of the next trace of its file (0 if none)."),
    abi_util.entry("compile_input_info", compileInputInfo, &.{ "id", "i", "k" }, "Input i of a tape: k = -1 its dtype, -2 its ndim, else dimension k."),
    abi_util.entry("compile_live", compileLive, &.{}, "Number of live tapes (for leak checks)."),
    abi_util.entry("compile_export", compileExport, &.{ "id", "path", "npath" }, "Write a tape and the traces linked after it (compile_link) to a file, with their texts (compile_set_text) (docs/COMPILE-FORMAT.md). 0 on success."),
    abi_util.entry("compile_set_text", compileSetText, &.{ "id", "what", "text", "ntext" }, "Set a tape's text for export: 0 its signature (the host's), 1 the file's metadata (read from the first trace). No NUL byte. 0 on success."),
    abi_util.entry("compile_link", compileLink, &.{ "id", "next" }, "Make `next` the trace written after tape `id` in its file (0: none). 0 on success."),
    abi_util.entry("compile_import", compileImport, &.{ "path", "npath" }, "Read every trace of a file, validating it; the id of the first (compile_info 7 gives each one's next, 0 after the last), 0 on error."),
    abi_util.entry("compile_text", compileText, &.{ "id", "what" }, "Text of a trace: 0 its signature (written by the host), 1 the file's metadata, 2 its description (compile_describe); \"\" if none."),
    abi_util.entry("compile_describe", compileDescribe, &.{"id"}, "Describe a tape as JSON text (inputs, constants, steps with their primitives' parameters, outputs), read with compile_text 2: its length, negative on error."),
    abi_util.entry("compile_constants", compileConstants, &.{"id"}, "A tape's constants as new arrays for results_take, in order: their count, negative on error."),
};

pub const abi_enums = .{};

// ---------------------------------------------------------------------------------------------
// Tests

const testing = std.testing;
const ew = prims.elementwise;

test "compile: build, simplify (CSE, no-ops, constant merging) and replay" {
    const s: u32 = 0;
    const x = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{3}, "t"), s, "t");
    defer array.release(x);
    for (0..3) |i| @as([*]f32, @ptrCast(@alignCast(x.data())))[i] = @floatFromInt(i + 1);
    array.traceBegin();
    const ph = try prims.copy.depends(x, &.{}, s);
    ph.tracer = true;
    const two_a = try grad.constant(2, .float32, s);
    const two_b = try grad.constant(2, .float32, s);
    const m1 = try ew.binary(.multiply, ph, two_a, s);
    const m2 = try ew.binary(.multiply, ph, two_b, s); // the same after constant merging
    const c = try prims.copy.astype(m2, .float32, s); // no-op (returns m2 itself)
    const y = try ew.binary(.add, m1, c, s);
    array.traceEnd();
    const t = try build(&.{ph}, &.{y}, .{ .fuse = false });
    defer t.deinit();
    try testing.expectEqual(@as(usize, 2), t.steps.len); // multiply once, add
    try testing.expectEqual(@as(usize, 1), t.constants.len);
    for ([_]*Node{ ph, two_a, two_b, m1, m2, c, y }) |n| array.release(n);

    // The description for exportFunction's callback (refs: 1 << 30 a step, 2 << 30 a constant).
    var desc: std.ArrayList(u8) = .empty;
    defer desc.deinit(a_);
    try describe(t, &desc);
    try testing.expectEqualStrings("{\"shapeless\":false,\"inputs\":[{\"dtype\":\"float32\",\"shape\":[3]}],\"constants\":[{\"dtype\":\"float32\",\"shape\":[]}]," ++
        "\"steps\":[{\"name\":\"multiply\",\"prim\":{\"elementwise\":{\"binary\":\"multiply\"}},\"dtype\":\"float32\",\"shape\":[3],\"strides\":[],\"inputs\":[0,2147483648]}," ++
        "{\"name\":\"add\",\"prim\":{\"elementwise\":{\"binary\":\"add\"}},\"dtype\":\"float32\",\"shape\":[3],\"strides\":[],\"inputs\":[1073741824,1073741824]}],\"outputs\":[1073741825]}", desc.items);

    var out: [1]*Node = undefined;
    try replay(t, &.{x}, &out);
    defer array.release(out[0]);
    try eval_mod.eval(&out);
    const got = @as([*]const f32, @ptrCast(@alignCast(out[0].data())))[0..3];
    try testing.expectEqualSlices(f32, &.{ 4, 8, 12 }, got);

    // Export and import round trip, then replay the imported tape.
    var bytes: std.ArrayList(u8) = .empty;
    defer bytes.deinit(a_);
    try serialize(t, &bytes);
    const t2 = try deserialize(bytes.items, "mem");
    defer t2.deinit();
    var out2: [1]*Node = undefined;
    try replay(t2, &.{x}, &out2);
    defer array.release(out2[0]);
    try eval_mod.eval(&out2);
    try testing.expectEqualSlices(f32, &.{ 4, 8, 12 }, @as([*]const f32, @ptrCast(@alignCast(out2[0].data())))[0..3]);
    // Every truncation is an error, never a crash.
    for (0..bytes.items.len) |n| try testing.expectError(error.Failed, deserialize(bytes.items[0..n], "cut"));
    // Wrong input shape.
    const z = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{4}, "t"), s, "t");
    defer array.release(z);
    try testing.expectError(error.Failed, replay(t, &.{z}, &out));
    try testing.expectEqualStrings("[compile] Input 0 is float32 (4) but the function was compiled for float32 (3).", errors.messageSlice());
}

test "compile: elementwise chains become fused steps with the same bits; export checks programs" {
    const s: u32 = 0;
    const x = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{ 2, 5 }, "t"), s, "t");
    defer array.release(x);
    const y = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{5}, "t"), s, "t");
    defer array.release(y);
    for (0..10) |i| @as([*]f32, @ptrCast(@alignCast(x.data())))[i] = @as(f32, @floatFromInt(i)) * 0.37 - 1.5;
    for (0..5) |i| @as([*]f32, @ptrCast(@alignCast(y.data())))[i] = @as(f32, @floatFromInt(i)) * 0.11 + 0.25;
    array.traceBegin();
    const px = try prims.copy.depends(x, &.{}, s);
    px.tracer = true;
    const py = try prims.copy.depends(y, &.{}, s);
    py.tracer = true;
    const half = try grad.constant(0.5, .float32, s);
    // tanh(exp(x * y + 0.5)) - y, and a sum (a boundary) of the product.
    const m = try ew.binary(.multiply, px, py, s);
    const a = try ew.binary(.add, m, half, s);
    const e = try ew.unary(.exp, a, s);
    const th = try ew.unary(.tanh, e, s);
    const out = try ew.binary(.subtract, th, py, s);
    const sm = try prims.reduce.reduce(.sum, m, &.{1}, false, s);
    array.traceEnd();
    const plain = try build(&.{ px, py }, &.{ out, sm }, .{ .fuse = false });
    defer plain.deinit();
    const t = try build(&.{ px, py }, &.{ out, sm }, .{});
    defer t.deinit();
    for ([_]*Node{ px, py, half, m, a, e, th, out, sm }) |n| array.release(n);
    // multiply stays (the sum reads it); add, exp, tanh, subtract become one fused step.
    try testing.expectEqual(@as(usize, 6), plain.steps.len);
    try testing.expectEqual(@as(usize, 3), t.steps.len);
    try testing.expectEqual(@as(usize, 1), fusedSteps(t));
    try testing.expectEqual(@as(usize, 0), t.constants.len); // 0.5 is in the program

    var bytes: std.ArrayList(u8) = .empty;
    defer bytes.deinit(a_);
    try serialize(t, &bytes);
    const t2 = try deserialize(bytes.items, "mem");
    defer t2.deinit();
    var o1: [2]*Node = undefined;
    var o2: [2]*Node = undefined;
    var o3: [2]*Node = undefined;
    try replay(plain, &.{ x, y }, &o1);
    try replay(t, &.{ x, y }, &o2);
    try replay(t2, &.{ x, y }, &o3);
    defer for ([_][2]*Node{ o1, o2, o3 }) |os| for (os) |o| array.release(o);
    try eval_mod.eval(&(o1 ++ o2 ++ o3));
    for (0..2) |k| {
        try testing.expectEqualSlices(u8, o1[k].data()[0..o1[k].nbytes()], o2[k].data()[0..o2[k].nbytes()]);
        try testing.expectEqualSlices(u8, o1[k].data()[0..o1[k].nbytes()], o3[k].data()[0..o3[k].nbytes()]);
    }

    // A file whose program reads a value before it is computed, or gives another dtype, is refused.
    var fi: usize = 0;
    for (t.steps, 0..) |st, k| if (st.prim == .fused) {
        fi = k;
    };
    const orig = t.steps[fi].prim.fused.program;
    const bad = try a_.dupe(prims.fused.Instr, orig);
    defer a_.free(bad);
    t.steps[fi].prim.fused.program = bad;
    defer t.steps[fi].prim.fused.program = orig;
    bad[bad.len - 1].args[0] = @intCast(bad.len - 1);
    var b2: std.ArrayList(u8) = .empty;
    defer b2.deinit(a_);
    try serialize(t, &b2);
    try testing.expectError(error.Failed, deserialize(b2.items, "bad.mlxfn"));
    try testing.expect(std.mem.indexOf(u8, errors.messageSlice(), "a fused step's program does not match its operands") != null);
    @memcpy(bad, orig);
    bad[bad.len - 1].dtype = .float16;
    b2.clearRetainingCapacity();
    try serialize(t, &b2);
    try testing.expectError(error.Failed, deserialize(b2.items, "bad.mlxfn"));
}

test "compile: several traces in one file share their constants; labels, metadata and order survive" {
    const s: u32 = 0;
    const x = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{3}, "t"), s, "t");
    defer array.release(x);
    for (0..3) |i| @as([*]f32, @ptrCast(@alignCast(x.data())))[i] = @floatFromInt(i + 1);
    // One constant k = [10, 20, 30], captured by two traces: x * k and x + k.
    const k = try array.createWithBuffer(.float32, try Shape.fromSlice(&.{3}, "t"), s, "t");
    defer array.release(k);
    for (0..3) |i| @as([*]f32, @ptrCast(@alignCast(k.data())))[i] = @floatFromInt(10 * (i + 1));
    var tapes: [2]*Tape = undefined;
    for (&tapes, [_]ew.BinaryOp{ .multiply, .add }) |*t, op| {
        array.traceBegin();
        const ph = try prims.copy.depends(x, &.{}, s);
        ph.tracer = true;
        const y = try ew.binary(op, ph, k, s);
        array.traceEnd();
        t.* = try build(&.{ph}, &.{y}, .{ .fuse = false });
        array.release(ph);
        array.release(y);
    }
    defer for (tapes) |t| t.deinit();
    try testing.expectEqual(@as(usize, 1), tapes[0].constants.len);
    try testing.expect(tapes[0].constants[0] == tapes[1].constants[0]);

    var bytes: std.ArrayList(u8) = .empty;
    defer bytes.deinit(a_);
    try serializeMulti(&.{ tapes[0], tapes[1] }, &.{ "first", "second" }, "meta", &bytes);
    var one: std.ArrayList(u8) = .empty;
    defer one.deinit(a_);
    try serialize(tapes[0], &one);
    // The 12 bytes of k are written once: two traces cost less than twice one.
    try testing.expect(bytes.items.len < 2 * one.items.len - 12);

    const all = try deserializeAll(bytes.items, "mem");
    defer {
        for (all) |t| t.deinit();
        a_.free(all);
    }
    try testing.expectEqual(@as(usize, 2), all.len);
    try testing.expectEqualStrings("first", all[0].label.?);
    try testing.expectEqualStrings("second", all[1].label.?);
    try testing.expectEqualStrings("meta", all[1].metadata.?);
    try testing.expect(all[0].constants[0] == all[1].constants[0]); // one node, shared
    var outs: [2][1]*Node = undefined;
    for (all, &outs) |t, *o| try replay(t, &.{x}, o);
    defer for (outs) |o| array.release(o[0]);
    try eval_mod.eval(&.{ outs[0][0], outs[1][0] });
    try testing.expectEqualSlices(f32, &.{ 10, 40, 90 }, @as([*]const f32, @ptrCast(@alignCast(outs[0][0].data())))[0..3]);
    try testing.expectEqualSlices(f32, &.{ 11, 22, 33 }, @as([*]const f32, @ptrCast(@alignCast(outs[1][0].data())))[0..3]);
    // Every truncation is an error, never a crash (nor a leak: the testing allocator checks).
    for (0..bytes.items.len) |n| try testing.expectError(error.Failed, deserializeAll(bytes.items[0..n], "cut"));
    // Mixed shapeless and not, or none, cannot be written.
    tapes[1].shapeless = true;
    defer tapes[1].shapeless = false;
    var b2: std.ArrayList(u8) = .empty;
    defer b2.deinit(a_);
    try testing.expectError(error.Failed, serializeMulti(&.{ tapes[0], tapes[1] }, &.{ "", "" }, "", &b2));
    try testing.expectError(error.Failed, serializeMulti(&.{}, &.{}, "", &b2));
}
