//! The fused primitive: a chain (a small DAG) of elementwise ops run as one kernel that streams
//! through memory once. Its parameter is a PROGRAM in SSA form over the node's inputs: each
//! instruction loads an input, makes a scalar constant, or applies a unary, binary, select or
//! astype op to earlier values. Inputs may have any shape that broadcasts to the output, and any
//! strides. `fuse.zig` builds these nodes from ordinary graphs (compile calls it).
//!
//! The kernel is a block-wise interpreter: the output is cut into blocks of `block` elements;
//! per block every instruction runs as one tight (vector) loop over a scratch register holding
//! that block, so the per-instruction dispatch is paid once per block, not per element. Inputs
//! are read in place when contiguous, gathered block-wise through their broadcast strides
//! otherwise; the last instruction writes the output directly. Blocks are spread over the pool.
//!
//! Registers hold values in their node's storage dtype, and each instruction runs the same
//! per-element functions as the unfused op (elementwise.zig's scalar and vector code, chosen by
//! the same rules), so the result is bit-identical to the unfused chain: a float16 intermediate
//! is rounded to float16 exactly as the unfused chain stores it.
//!
//! Transforms expand the program back into ordinary graph ops (`unfuse`) and apply their rules
//! to those; vmap keeps the node fused (the op is elementwise: batched inputs broadcast).
const std = @import("std");
const array = @import("../array.zig");
const errors = @import("../errors.zig");
const convert = @import("../convert.zig");
const primitives = @import("../primitives.zig");
const pool = @import("../pool.zig");
const cpu = @import("../cpu.zig");
const ew = @import("elementwise.zig");
const copy = @import("copy.zig");
const sm = @import("scalar_math.zig");
const dtype_mod = @import("../dtype.zig");
const Dtype = dtype_mod.Dtype;
const Node = array.Node;
const Shape = array.Shape;

/// Limits of one fused node (the pass cuts larger groups).
pub const max_inputs = 16;
pub const max_instrs = 128;

/// Elements per block: small enough that a block's live registers stay in L1/L2.
const block = 1024;
/// Blocks per work item handed to a pool thread.
const item_blocks = 8;
/// Outputs smaller than this run on the calling thread.
const parallel_min = 1 << 16;

pub const Op = union(enum) {
    /// Input k of the node, read through its broadcast strides.
    input: u16,
    /// A scalar: the bits of one element of the instruction's dtype (complex64: re low, im high).
    constant: u64,
    unary: ew.UnaryOp,
    binary: ew.BinaryOp,
    /// where(args[0], args[1], args[2]).
    select,
    /// args[0] converted to the instruction's dtype.
    astype,
};

pub const Instr = struct {
    op: Op,
    /// The dtype of the value this instruction makes.
    dtype: Dtype,
    /// Operand values (indices of earlier instructions).
    args: [3]u16 = .{ 0, 0, 0 },

    pub fn arity(i: Instr) usize {
        return switch (i.op) {
            .input, .constant => 0,
            .unary, .astype => 1,
            .binary => 2,
            .select => 3,
        };
    }
};

/// The primitive's parameters: the program (owned, c_allocator). The last value is the output.
pub const Fused = struct {
    program: []const Instr,

    pub fn deinit(f: Fused) void {
        std.heap.c_allocator.free(f.program);
    }

    /// Equal programs (for compile's common-subexpression elimination).
    pub fn eql(a: Fused, b: Fused) bool {
        if (a.program.len != b.program.len) return false;
        for (a.program, b.program) |x, y| {
            if (x.dtype != y.dtype or !std.meta.eql(x.op, y.op)) return false;
            if (!std.mem.eql(u16, x.args[0..x.arity()], y.args[0..y.arity()])) return false;
        }
        return true;
    }

    /// An owned copy of the program.
    pub fn clone(f: Fused) errors.Error!Fused {
        const p = std.heap.c_allocator.dupe(Instr, f.program) catch return oom();
        return .{ .program = p };
    }
};

fn oom() errors.Error {
    return errors.fail(.out_of_memory, "[fused] Out of memory.", .{});
}

// ---------------------------------------------------------------------------------------------
// Validation and the graph op

/// Checks that `program` is well formed over `inputs`: operands come before their use, every
/// instruction's dtype is what the unfused op would give, binary operands already carry the
/// op's compute dtype (as elementwise.binary makes them), shifts are absent (their result
/// depends on the unfused layout).
pub fn validate(program: []const Instr, inputs: []const *Node) errors.Error!void {
    if (inputs.len > max_inputs)
        return errors.fail(.invalid_argument, "[fused] At most {d} inputs (got {d}).", .{ max_inputs, inputs.len });
    var dts: [max_inputs]Dtype = undefined;
    for (inputs, 0..) |in, k| dts[k] = in.dtype;
    return validateDtypes(program, dts[0..inputs.len]);
}

/// `validate` over the inputs' dtypes (compile's import checks a program read from a file).
pub fn validateDtypes(program: []const Instr, inputs: []const Dtype) errors.Error!void {
    if (program.len == 0 or program.len > max_instrs)
        return errors.fail(.invalid_argument, "[fused] A program has 1 to {d} instructions (got {d}).", .{ max_instrs, program.len });
    if (inputs.len > max_inputs)
        return errors.fail(.invalid_argument, "[fused] At most {d} inputs (got {d}).", .{ max_inputs, inputs.len });
    for (program, 0..) |ins, i| {
        for (ins.args[0..ins.arity()]) |a| if (a >= i)
            return errors.fail(.invalid_argument, "[fused] Instruction {d} reads value {d}, which is not computed before it.", .{ i, a });
        const d = struct {
            fn of(p: []const Instr, ins_: Instr, k: usize) Dtype {
                return p[ins_.args[k]].dtype;
            }
        }.of;
        const want: Dtype = switch (ins.op) {
            .input => |k| if (k < inputs.len) inputs[k] else return errors.fail(.invalid_argument, "[fused] Instruction {d} reads input {d} of {d}.", .{ i, k, inputs.len }),
            .constant, .astype => ins.dtype,
            .unary => |op| try ew.unaryOutDtype(op, d(program, ins, 0)),
            .binary => |op| blk: {
                if (op == .left_shift or op == .right_shift)
                    return errors.fail(.invalid_argument, "[fused] {s} is not fused.", .{@tagName(op)});
                const da = d(program, ins, 0);
                const db = d(program, ins, 1);
                const t = try ew.binaryTypes(op, da, db);
                if (da != db or t.compute != da)
                    return errors.fail(.invalid_argument, "[fused] The operands of {s} must both be {s} (got {s} and {s}).", .{ @tagName(op), t.compute.name(), da.name(), db.name() });
                break :blk t.out;
            },
            .select => blk: {
                const dx = d(program, ins, 1);
                if (d(program, ins, 0) != .bool_ or dx != d(program, ins, 2))
                    return errors.fail(.invalid_argument, "[fused] where needs a bool condition and operands of one dtype.", .{});
                break :blk dx;
            },
        };
        if (want != ins.dtype)
            return errors.fail(.invalid_argument, "[fused] Instruction {d} gives {s}, not {s}.", .{ i, want.name(), ins.dtype.name() });
    }
}

/// A fused node computing `program` over `inputs`, of `shape` (every input broadcasts to it).
/// The program is copied.
pub fn fused(program: []const Instr, inputs: []const *Node, shape: Shape, stream: u32) errors.Error!*Node {
    try validate(program, inputs);
    for (inputs) |in| {
        const b = try copy.broadcastShapes(&in.shape, &shape, "fused");
        if (!b.eql(&shape)) {
            var b1: [256]u8 = undefined;
            var b2: [256]u8 = undefined;
            return errors.fail(.invalid_argument, "[fused] Input of shape {s} does not broadcast to {s}.", .{ in.shape.format(&b1), shape.format(&b2) });
        }
    }
    const f = try (Fused{ .program = program }).clone();
    return array.create(program[program.len - 1].dtype, shape, .{ .fused = f }, inputs, stream) catch |e| {
        f.deinit();
        return e;
    };
}

// ---------------------------------------------------------------------------------------------
// Back to ordinary ops (transforms)

/// The program as ordinary graph ops on `inputs`, broadcast to `shape`: the same values as the
/// fused node, built from primitives that have vjp and vmap rules.
pub fn unfuse(program: []const Instr, inputs: []const *Node, shape: Shape, stream: u32) errors.Error!*Node {
    var vals: [max_instrs]*Node = undefined;
    var made: usize = 0;
    defer for (vals[0..made]) |v| array.release(v);
    for (program) |ins| {
        const a = ins.args;
        const v: *Node = switch (ins.op) {
            .input => |k| blk: {
                inputs[k].retain();
                break :blk inputs[k];
            },
            .constant => |bits| try constantNode(bits, ins.dtype, stream),
            .unary => |op| try ew.unary(op, vals[a[0]], stream),
            .binary => |op| try ew.binary(op, vals[a[0]], vals[a[1]], stream),
            .select => try ew.select(vals[a[0]], vals[a[1]], vals[a[2]], stream),
            .astype => try copy.astype(vals[a[0]], ins.dtype, stream),
        };
        vals[made] = v;
        made += 1;
    }
    return copy.broadcastTo(vals[made - 1], shape, stream);
}

fn constantNode(bits: u64, dtype: Dtype, stream: u32) errors.Error!*Node {
    const node = try array.createWithBuffer(dtype, .{}, stream, "fused");
    const src = std.mem.asBytes(&bits);
    @memcpy(node.data()[0..dtype.size()], src[0..dtype.size()]);
    return node;
}

/// The vjp rule: the cotangent of input `arg`, through the unfused ops.
pub fn vjp(node: *Node, f: Fused, arg: usize, g: *Node, stream: u32) errors.Error!*Node {
    const grad = @import("../grad.zig");
    const r = try unfuse(f.program, node.inputs, node.shape, stream);
    defer array.release(r);
    // Every input is a primal, so the walk stops at them (it never enters the graph behind).
    var outs: [max_inputs]*Node = undefined;
    const n = node.inputs.len;
    try grad.vjp(&.{r}, node.inputs, &.{g}, outs[0..n], stream);
    for (outs[0..n], 0..) |o, k| if (k != arg) array.release(o);
    return outs[arg];
}

/// The batching rule: the same program on the batched inputs (batch axis first; unbatched
/// inputs broadcast as they are, batched ones get 1s after the batch axis to the output rank).
pub fn vmapRule(node: *Node, f: Fused, bx: []const ?*Node, b: i32, stream: u32) errors.Error!*Node {
    const shp = primitives.shape;
    var ins: [max_inputs]*Node = undefined;
    var lifted: [max_inputs]*Node = undefined;
    var n_lifted: usize = 0;
    defer for (lifted[0..n_lifted]) |l| array.release(l);
    const rank = node.shape.ndim;
    for (node.inputs, 0..) |in, i| {
        const v = bx[i] orelse {
            ins[i] = in;
            continue;
        };
        const have = v.shape.ndim - 1;
        var dims: [array.max_ndim]i32 = undefined;
        dims[0] = v.shape.dims[0];
        for (0..rank - have) |k| dims[1 + k] = 1;
        for (0..have) |k| dims[1 + rank - have + k] = v.shape.dims[1 + k];
        lifted[n_lifted] = try shp.reshape(v, dims[0 .. 1 + rank], stream);
        ins[i] = lifted[n_lifted];
        n_lifted += 1;
    }
    if (rank + 1 > array.max_ndim) return errors.fail(.invalid_argument, "[vmap] Too many dimensions.", .{});
    var out = Shape{ .ndim = @intCast(rank + 1) };
    out.dims[0] = b;
    @memcpy(out.dims[1 .. rank + 1], node.shape.slice());
    return fused(f.program, ins[0..node.inputs.len], out, stream);
}

// ---------------------------------------------------------------------------------------------
// The kernel

/// How the kernel reads one input block-wise: in place (contiguous, the output's size), as one
/// value (size 1), or gathered through strides over the output's (collapsed) shape.
const Access = struct {
    kind: enum { direct, scalar, gather },
    base: [*]const u8,
    esize: usize,
    ndim: usize = 0,
    shape: [array.max_ndim]usize = undefined,
    strides: [array.max_ndim]i64 = undefined,

    fn init(in: *const Node, out: *const Node) Access {
        var a = Access{ .kind = .gather, .base = in.data(), .esize = in.dtype.size() };
        if (in.size() == 1) {
            a.kind = .scalar;
            return a;
        }
        if (in.size() == out.size() and in.isRowContiguous()) {
            a.kind = .direct;
            return a;
        }
        // The output's dims with this input's strides (0 where broadcast), size-1 dims dropped,
        // neighbours merged where this input is contiguous across them.
        const lead = out.shape.ndim - in.shape.ndim;
        var n: usize = 0;
        for (0..out.shape.ndim) |i| {
            const d: usize = @intCast(out.shape.dims[i]);
            if (d == 1) continue;
            const st: i64 = if (i < lead or in.shape.dims[i - lead] == 1) 0 else in.strides[i - lead];
            if (n > 0 and a.strides[n - 1] == st * @as(i64, @intCast(d))) {
                a.shape[n - 1] *= d;
                a.strides[n - 1] = st;
            } else {
                a.shape[n] = d;
                a.strides[n] = st;
                n += 1;
            }
        }
        a.ndim = n;
        return a;
    }

    /// Elements [s, s + n) of the output's flat order, copied to `dst` (contiguous).
    fn gather(a: *const Access, s: usize, n: usize, dst: [*]u8) void {
        switch (a.esize) {
            1 => a.gatherT(u8, s, n, dst),
            2 => a.gatherT(u16, s, n, dst),
            4 => a.gatherT(u32, s, n, dst),
            else => a.gatherT(u64, s, n, dst),
        }
    }

    fn gatherT(a: *const Access, comptime T: type, s: usize, n: usize, dst_bytes: [*]u8) void {
        const dst: [*]T = @ptrCast(@alignCast(dst_bytes));
        const src: [*]const T = @ptrCast(@alignCast(a.base));
        const nd = a.ndim;
        var idx: [array.max_ndim]usize = undefined;
        var rem = s;
        var off: i64 = 0;
        var d = nd;
        while (d > 0) {
            d -= 1;
            idx[d] = rem % a.shape[d];
            rem /= a.shape[d];
            off += @as(i64, @intCast(idx[d])) * a.strides[d];
        }
        const inner = a.shape[nd - 1];
        const st = a.strides[nd - 1];
        var o: usize = 0;
        while (o < n) {
            const run = @min(inner - idx[nd - 1], n - o);
            const p = convert.at(T, src, off);
            if (st == 1) {
                @memcpy(dst[o .. o + run], @as([*]const T, @ptrCast(p))[0..run]);
            } else if (st == 0) {
                @memset(dst[o .. o + run], p.*);
            } else {
                var q: i64 = 0;
                for (dst[o .. o + run]) |*e| {
                    e.* = convert.at(T, src, off + q).*;
                    q += st;
                }
            }
            o += run;
            off += @as(i64, @intCast(run)) * st;
            idx[nd - 1] += run;
            // Carry into the outer dimensions.
            var k = nd - 1;
            while (idx[k] == a.shape[k] and k > 0) {
                off -= @as(i64, @intCast(a.shape[k])) * a.strides[k];
                idx[k] = 0;
                k -= 1;
                idx[k] += 1;
                off += a.strides[k];
            }
        }
    }
};

/// Where each value of the program lives while a block runs.
const Slot = union(enum) {
    /// Read in place from input memory (element offset = block start).
    direct: usize,
    /// A register filled once per thread (a constant or a size-1 input).
    pinned: usize,
    /// A scratch register.
    reg: usize,
    /// The output itself (the last instruction).
    out,
};

/// Bytes of one register: a block of the program's widest value, or less for small outputs
/// (the output's size rounded up to a vector multiple), so a small node neither allocates nor
/// fills whole blocks.
fn regBytes(n: usize, program: []const Instr) usize {
    var esize: usize = 1;
    for (program) |ins| esize = @max(esize, ins.dtype.size());
    const elems: usize = @min(block, std.mem.alignForward(usize, @max(n, 1), 64));
    return elems * esize;
}

const Plan = struct {
    program: []const Instr,
    out: [*]u8,
    out_esize: usize,
    n: usize,
    access: [max_inputs]Access,
    slots: [max_instrs]Slot,
    n_regs: usize,
    reg_bytes: usize,
    scratch: [*]u8,
    items: usize,
    next: std.atomic.Value(usize),

    fn init(p: *Plan, node: *Node, program: []const Instr) void {
        p.program = program;
        p.out = node.data();
        p.out_esize = node.dtype.size();
        p.n = node.size();
        for (node.inputs, 0..) |in, k| p.access[k] = Access.init(in, node);
        // Last use of each value.
        var last: [max_instrs]usize = [_]usize{0} ** max_instrs;
        for (program, 0..) |ins, i| for (ins.args[0..ins.arity()]) |a| {
            last[a] = i;
        };
        // Registers: pinned ones first (never freed), then a free list for the rest.
        var n_regs: usize = 0;
        var free: [max_instrs]usize = undefined;
        var n_free: usize = 0;
        for (program, 0..) |ins, i| {
            p.slots[i] = switch (ins.op) {
                .input => |k| switch (p.access[k].kind) {
                    .direct => .{ .direct = k },
                    .scalar => .{ .pinned = newReg(&n_regs) },
                    .gather => .{ .reg = take(&free, &n_free, &n_regs) },
                },
                .constant => .{ .pinned = newReg(&n_regs) },
                else => if (i == program.len - 1) .out else .{ .reg = take(&free, &n_free, &n_regs) },
            };
            // Operands whose last use this is give their registers back (after the result
            // took its own, so an instruction never writes over its operands).
            for (ins.args[0..ins.arity()], 0..) |a, j| {
                if (last[a] != i) continue;
                // An operand read twice by this instruction is freed once.
                var dup = false;
                for (ins.args[0..j]) |b| dup = dup or b == a;
                if (dup) continue;
                switch (p.slots[a]) {
                    .reg => |r| {
                        free[n_free] = r;
                        n_free += 1;
                    },
                    else => {},
                }
            }
        }
        p.n_regs = n_regs;
        p.reg_bytes = regBytes(p.n, program);
        const blocks = (p.n + block - 1) / block;
        p.items = (blocks + item_blocks - 1) / item_blocks;
        p.next = .init(0);
    }

    fn newReg(n_regs: *usize) usize {
        n_regs.* += 1;
        return n_regs.* - 1;
    }

    fn take(free: *[max_instrs]usize, n_free: *usize, n_regs: *usize) usize {
        if (n_free.* > 0) {
            n_free.* -= 1;
            return free[n_free.*];
        }
        return newReg(n_regs);
    }

    fn threadsFor(p: *const Plan) usize {
        if (p.n < parallel_min) return 1;
        return @max(1, @min(pool.threads(), p.items));
    }

    /// One pool thread: its registers are slot `t` of the scratch; items from the counter.
    fn drain(p: *Plan, t: usize, _: usize) void {
        const regs = p.scratch + t * p.n_regs * p.reg_bytes;
        // Pinned registers: a whole block of the one value.
        for (p.program, 0..) |ins, i| switch (p.slots[i]) {
            .pinned => |r| {
                const dst = regs + r * p.reg_bytes;
                const count: usize = @min(block, p.n);
                switch (ins.op) {
                    .input => |k| fillValue(dst, p.access[k].base, p.access[k].esize, count),
                    .constant => |bits| fillValue(dst, std.mem.asBytes(&bits), ins.dtype.size(), count),
                    else => unreachable,
                }
            },
            else => {},
        };
        while (true) {
            const it = p.next.fetchAdd(1, .monotonic);
            if (it >= p.items) return;
            var s = it * item_blocks * block;
            const end = @min(p.n, s + item_blocks * block);
            while (s < end) : (s += block) p.runBlock(regs, s, @min(block, end - s));
        }
    }

    fn runBlock(p: *const Plan, regs: [*]u8, s: usize, n: usize) void {
        var ptr: [max_instrs][*]u8 = undefined;
        for (p.program, 0..) |ins, i| {
            const dst: [*]u8 = switch (p.slots[i]) {
                .direct => |k| @constCast(p.access[k].base) + s * p.access[k].esize,
                .pinned, .reg => |r| regs + r * p.reg_bytes,
                .out => p.out + s * p.out_esize,
            };
            ptr[i] = dst;
            const a = ins.args;
            switch (ins.op) {
                .input => |k| if (p.slots[i] == .reg) p.access[k].gather(s, n, dst),
                .constant => {},
                .unary => |op| runUnary(op, p.program[a[0]].dtype, dst, ptr[a[0]], n),
                .binary => |op| runBinary(op, p.program[a[0]].dtype, dst, ptr[a[0]], ptr[a[1]], n),
                .select => runSelect(ins.dtype.size(), dst, ptr[a[0]], ptr[a[1]], ptr[a[2]], n),
                .astype => runAstype(p.program[a[0]].dtype, ins.dtype, dst, ptr[a[0]], n),
            }
        }
        // A program whose result is an input or a constant (never made by the pass) copies it.
        const last = p.program.len - 1;
        if (p.slots[last] != .out) {
            const nb = n * p.out_esize;
            @memcpy((p.out + s * p.out_esize)[0..nb], ptr[last][0..nb]);
        }
    }
};

/// `count` copies of one element.
fn fillValue(dst: [*]u8, src: [*]const u8, esize: usize, count: usize) void {
    switch (esize) {
        inline 1, 2, 4, 8 => |e| {
            const T = std.meta.Int(.unsigned, e * 8);
            var v: T = undefined;
            @memcpy(std.mem.asBytes(&v), src[0..e]);
            const d: [*]T = @ptrCast(@alignCast(dst));
            @memset(d[0..count], v);
        },
        else => for (0..count) |i| @memcpy(dst[i * esize ..][0..esize], src[0..esize]),
    }
}

pub fn eval(node: *Node, f: Fused) errors.Error!void {
    // An input the output may take over: the output's shape and element size, held by nothing else.
    var donor: ?*Node = null;
    for (node.inputs) |in| {
        if (in.dtype.size() == node.dtype.size() and in.shape.eql(&node.shape)) {
            donor = in;
            break;
        }
    }
    try primitives.allocOutput(node, donor);
    if (node.size() == 0) return;
    var p: Plan = undefined;
    p.init(node, f.program);
    const t = p.threadsFor();
    const bytes = @max(1, t * p.n_regs * p.reg_bytes);
    // Small nodes keep their registers on the stack (no allocation per evaluation).
    var small: [32 * 1024]u8 align(64) = undefined;
    const scratch = if (bytes <= small.len) small[0..bytes] else std.heap.c_allocator.alignedAlloc(u8, .@"64", bytes) catch return oom();
    defer if (bytes > small.len) std.heap.c_allocator.free(@as([]align(64) u8, @alignCast(scratch)));
    p.scratch = scratch.ptr;
    if (t == 1) return p.drain(0, 0);
    pool.parallelFor(t, 1, &p, Plan.drain);
}

// ---------------------------------------------------------------------------------------------
// One instruction over a block: the unfused kernels' code paths for contiguous operands.

const VL = ew.VL;

fn runUnary(op: ew.UnaryOp, d: Dtype, out: [*]u8, in: [*]const u8, n: usize) void {
    switch (op) {
        inline else => |o| switch (d) {
            inline else => |D| unaryBlock(o, D, out, in, n),
        },
    }
}

fn unaryOut(comptime op: ew.UnaryOp, comptime D: Dtype) Dtype {
    return switch (ew.unaryKind(op)) {
        .same => if (op == .abs and D == .complex64) .float32 else D,
        .float => if (D.isInexact()) D else .float32,
        .pred, .logical => .bool_,
        .part => if (D == .complex64) .float32 else D,
        .bits => D,
    };
}

fn unaryValid(comptime op: ew.UnaryOp, comptime D: Dtype) bool {
    const kind = ew.unaryKind(op);
    const ok = switch (kind) {
        .bits => D.isInteger() or D == .bool_,
        .float => true,
        else => switch (op) {
            .trunc, .floor, .ceil => D != .complex64,
            .negative => D != .bool_,
            else => true,
        },
    };
    const bad_complex = kind == .float and D == .complex64 and switch (op) {
        .expm1, .erf, .erfinv, .sigmoid => true,
        else => false,
    };
    return ok and !bad_complex;
}

fn unaryBlock(comptime op: ew.UnaryOp, comptime D: Dtype, out: [*]u8, in: [*]const u8, n: usize) void {
    if (comptime !unaryValid(op, D)) unreachable;
    const Out = comptime unaryOut(op, D);
    const o: [*]Out.Type() = @ptrCast(@alignCast(out));
    const src: [*]const D.Type() = @ptrCast(@alignCast(in));
    if (!primitives.reference_mode) {
        // A portable build: the op's own kernel at the CPU's level (the same choice of vector
        // or scalar loop as below, so the same bits).
        if (comptime cpu.dispatch and ew.unaryDispatched(op, D)) return ew.unaryBlockDispatched(op, D, out, in, n);
        if (comptime ew.unaryHasVec(op, D)) if (n >= VL or comptime ew.unaryVecApprox(op)) {
            var i: usize = 0;
            while (i + VL <= n) : (i += VL) ew.storeBlock(Out, o + i, ew.unaryV(op, ew.vload(D, src + i)));
            if (i < n) {
                var buf: [VL]D.Type() = std.mem.zeroes([VL]D.Type());
                @memcpy(buf[0 .. n - i], src[i..n]);
                var res: [VL]Out.Type() = undefined;
                ew.storeBlock(Out, &res, ew.unaryV(op, ew.vload(D, &buf)));
                @memcpy(o[i..n], res[0 .. n - i]);
            }
            return;
        };
    }
    for (0..n) |i| o[i] = unaryApply(op, D, Out, src[i]);
}

/// elementwise.zig's unary `apply`, element by element.
inline fn unaryApply(comptime op: ew.UnaryOp, comptime D: Dtype, comptime Out: Dtype, v: D.Type()) Out.Type() {
    const CD = comptime ew.computeDtype(D);
    switch (comptime ew.unaryKind(op)) {
        .pred => return ew.predScalar(op, CD.Type(), convert.cast(D, CD, v)),
        .logical => return !convert.cast(D, .bool_, v),
        .part => {
            if (D == .complex64) return if (op == .real) v.re else v.im;
            return if (op == .real) v else convert.cast(.int32, D, 0);
        },
        else => {
            if (op == .abs and D == .complex64) return sm.cabs(sm.toC(v));
            const C = comptime ew.computeDtype(Out);
            return convert.cast(C, Out, ew.unaryScalar(op, C.Type(), convert.cast(D, C, v)));
        },
    }
}

fn runBinary(op: ew.BinaryOp, d: Dtype, out: [*]u8, x: [*]const u8, y: [*]const u8, n: usize) void {
    switch (op) {
        inline .left_shift, .right_shift => unreachable, // never fused (validate)
        inline else => |o| switch (d) {
            inline else => |D| binaryBlock(o, D, out, x, y, n),
        },
    }
}

fn binaryBlock(comptime op: ew.BinaryOp, comptime D: Dtype, out: [*]u8, xb: [*]const u8, yb: [*]const u8, n: usize) void {
    if (comptime !ew.binaryValid(op, D)) unreachable;
    const is_cmp = comptime switch (op) {
        .equal, .not_equal, .less, .less_equal, .greater, .greater_equal => true,
        else => false,
    };
    const is_logical = comptime switch (op) {
        .logical_and, .logical_or, .logical_xor => true,
        else => false,
    };
    const Out: Dtype = if (is_cmp or is_logical) .bool_ else D;
    const C = comptime ew.computeDtype(D);
    const o: [*]Out.Type() = @ptrCast(@alignCast(out));
    const x: [*]const D.Type() = @ptrCast(@alignCast(xb));
    const y: [*]const D.Type() = @ptrCast(@alignCast(yb));
    if (!primitives.reference_mode) {
        if (comptime cpu.dispatch and ew.binaryDispatched(op, D)) return ew.binaryBlockDispatched(op, D, out, xb, yb, n);
        if (comptime ew.binaryHasVec(op, D)) if (n >= VL) {
            var i: usize = 0;
            while (i + VL <= n) : (i += VL) ew.storeBlock(Out, o + i, ew.binaryV(op, D, ew.vload(D, x + i), ew.vload(D, y + i)));
            if (i < n) {
                var bx: [VL]D.Type() = std.mem.zeroes([VL]D.Type());
                var by: [VL]D.Type() = std.mem.zeroes([VL]D.Type());
                @memcpy(bx[0 .. n - i], x[i..n]);
                @memcpy(by[0 .. n - i], y[i..n]);
                var res: [VL]Out.Type() = undefined;
                ew.storeBlock(Out, &res, ew.binaryV(op, D, ew.vload(D, &bx), ew.vload(D, &by)));
                @memcpy(o[i..n], res[0 .. n - i]);
            }
            return;
        };
    }
    for (0..n) |i| {
        if (is_logical) {
            o[i] = switch (op) {
                .logical_and => x[i] and y[i],
                .logical_or => x[i] or y[i],
                .logical_xor => x[i] != y[i],
                else => unreachable,
            };
            continue;
        }
        const xc = convert.cast(D, C, x[i]);
        const yc = convert.cast(D, C, y[i]);
        if (is_cmp) {
            o[i] = ew.compareScalar(op, C.Type(), xc, yc);
        } else {
            o[i] = convert.cast(C, Out, ew.binaryScalar(op, C.Type(), xc, yc));
        }
    }
}

fn runSelect(esize: usize, out: [*]u8, c: [*]const u8, x: [*]const u8, y: [*]const u8, n: usize) void {
    switch (esize) {
        1 => selectT(u8, out, c, x, y, n),
        2 => selectT(u16, out, c, x, y, n),
        4 => selectT(u32, out, c, x, y, n),
        else => selectT(u64, out, c, x, y, n),
    }
}

fn selectT(comptime T: type, out: [*]u8, c: [*]const u8, xb: [*]const u8, yb: [*]const u8, n: usize) void {
    const o: [*]T = @ptrCast(@alignCast(out));
    const x: [*]const T = @ptrCast(@alignCast(xb));
    const y: [*]const T = @ptrCast(@alignCast(yb));
    for (0..n) |i| o[i] = if (c[i] != 0) x[i] else y[i];
}

fn runAstype(from: Dtype, to: Dtype, out: [*]u8, in: [*]const u8, n: usize) void {
    @setEvalBranchQuota(10_000);
    switch (from) {
        inline else => |S| switch (to) {
            inline else => |D| {
                // A portable build: the cast op's kernel at the CPU's level.
                if (comptime cpu.dispatch and S != D and ew.castDispatched(S, D)) return ew.castBlock(S, D, out, in, n);
                const o: [*]D.Type() = @ptrCast(@alignCast(out));
                const src: [*]const S.Type() = @ptrCast(@alignCast(in));
                for (0..n) |i| o[i] = convert.cast(S, D, src[i]);
            },
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: the interpreter against the unfused ops (evaluated by the ordinary kernels).

const testing = std.testing;
const eval_mod = @import("../eval.zig");

fn testArray(comptime D: Dtype, dims: []const i32, comptime f: fn (usize) f32) !*Node {
    const x = try array.createWithBuffer(D, try Shape.fromSlice(dims, "test"), 0, "test");
    const p: [*]D.Type() = @ptrCast(@alignCast(x.data()));
    for (0..x.size()) |i| p[i] = convert.cast(.float32, D, f(i));
    return x;
}

fn wave(i: usize) f32 {
    const k: f32 = @floatFromInt((i * 37) % 101);
    return (k - 50.0) * 0.0437;
}

fn wave2(i: usize) f32 {
    const k: f32 = @floatFromInt((i * 53) % 89);
    return (k - 44.0) * 0.0711 + 0.01;
}

fn bytesOf(n: *const Node) []const u8 {
    return n.data()[0..n.nbytes()];
}

/// The program exp(tanh(a * b) + a) * 0.5 in dtype D (a computes in D), on inputs a, b.
fn chainProgram(comptime D: Dtype) [8]Instr {
    const half: u64 = switch (D) {
        .float32 => @as(u32, @bitCast(@as(f32, 0.5))),
        .float16 => 0x3800,
        .bfloat16 => 0x3f00,
        else => unreachable,
    };
    return .{
        .{ .op = .{ .input = 0 }, .dtype = D },
        .{ .op = .{ .input = 1 }, .dtype = D },
        .{ .op = .{ .binary = .multiply }, .dtype = D, .args = .{ 0, 1, 0 } },
        .{ .op = .{ .unary = .tanh }, .dtype = D, .args = .{ 2, 0, 0 } },
        .{ .op = .{ .binary = .add }, .dtype = D, .args = .{ 3, 0, 0 } },
        .{ .op = .{ .unary = .exp }, .dtype = D, .args = .{ 4, 0, 0 } },
        .{ .op = .{ .constant = half }, .dtype = D },
        .{ .op = .{ .binary = .multiply }, .dtype = D, .args = .{ 5, 6, 0 } },
    };
}

fn checkChain(comptime D: Dtype, a_dims: []const i32, b_dims: []const i32, out_dims: []const i32) !void {
    const a = try testArray(D, a_dims, wave);
    defer array.release(a);
    const b = try testArray(D, b_dims, wave2);
    defer array.release(b);
    const prog = chainProgram(D);
    const f = try fused(&prog, &.{ a, b }, try Shape.fromSlice(out_dims, "test"), 0);
    defer array.release(f);
    const u = try unfuse(&prog, &.{ a, b }, f.shape, 0);
    defer array.release(u);
    try eval_mod.eval(&.{ f, u });
    // The unfused result may be a broadcast view: compare through a contiguous copy.
    const uc = try array.createWithBuffer(u.dtype, u.shape, 0, "test");
    defer array.release(uc);
    convert.copyConvert(u, uc.data(), u.dtype);
    try testing.expectEqualSlices(u8, bytesOf(uc), bytesOf(f));
}

test "a fused chain is bit-identical to the unfused ops (dtypes, broadcasts, blocks, threads)" {
    inline for (.{ Dtype.float32, Dtype.float16, Dtype.bfloat16 }) |D| {
        for ([_]bool{ false, true }) |ref| {
            primitives.reference_mode = ref;
            defer primitives.reference_mode = false;
            try checkChain(D, &.{ 3, 37 }, &.{ 3, 37 }, &.{ 3, 37 });
            try checkChain(D, &.{37}, &.{ 3, 1 }, &.{ 3, 37 }); // both broadcast
            try checkChain(D, &.{}, &.{ 5, 7 }, &.{ 5, 7 }); // a scalar input
            try checkChain(D, &.{ 3, 1000 }, &.{1000}, &.{ 3, 1000 }); // several blocks, a tail
            try checkChain(D, &.{ 2, 1, 2 }, &.{ 3, 1 }, &.{ 4, 2, 3, 2 }); // broadcast to more dims
        }
    }
    // Large enough to run on the pool.
    try checkChain(.float32, &.{ 300, 700 }, &.{ 300, 700 }, &.{ 300, 700 });
    try checkChain(.float32, &.{ 300, 1 }, &.{700}, &.{ 300, 700 });
}

test "negative-stride and zero-size inputs" {
    const test_views = @import("../test_views.zig");
    const a = try testArray(.float32, &.{ 5, 41 }, wave);
    defer array.release(a);
    const b = try testArray(.float32, &.{ 5, 41 }, wave2);
    defer array.release(b);
    const v = try test_views.flippedView(a, test_views.mask(&.{ true, true }));
    defer array.release(v);
    const prog = chainProgram(.float32);
    const f = try fused(&prog, &.{ v, b }, a.shape, 0);
    defer array.release(f);
    const u = try unfuse(&prog, &.{ v, b }, a.shape, 0);
    defer array.release(u);
    try eval_mod.eval(&.{ f, u });
    try testing.expectEqualSlices(u8, bytesOf(u), bytesOf(f));
    const z = try testArray(.float32, &.{ 0, 3 }, wave);
    defer array.release(z);
    const fz = try fused(&prog, &.{ z, z }, z.shape, 0);
    defer array.release(fz);
    try eval_mod.eval(&.{fz});
    try testing.expectEqual(@as(usize, 0), fz.size());
}

test "mixed dtypes: astype, comparisons, where, integers" {
    const a = try testArray(.int32, &.{ 4, 33 }, wave2);
    defer array.release(a);
    const x = try testArray(.float16, &.{ 4, 33 }, wave);
    defer array.release(x);
    // where(a > 0, float32(x) * 3 (int -> float32), -x as float32), then to bfloat16
    const three: u64 = 3;
    const prog = [_]Instr{
        .{ .op = .{ .input = 0 }, .dtype = .int32 },
        .{ .op = .{ .input = 1 }, .dtype = .float16 },
        .{ .op = .{ .constant = 0 }, .dtype = .int32 },
        .{ .op = .{ .binary = .greater }, .dtype = .bool_, .args = .{ 0, 2, 0 } },
        .{ .op = .astype, .dtype = .float32, .args = .{ 1, 0, 0 } },
        .{ .op = .{ .constant = three }, .dtype = .int32 },
        .{ .op = .astype, .dtype = .float32, .args = .{ 5, 0, 0 } },
        .{ .op = .{ .binary = .multiply }, .dtype = .float32, .args = .{ 4, 6, 0 } },
        .{ .op = .{ .unary = .negative }, .dtype = .float32, .args = .{ 4, 0, 0 } },
        .{ .op = .select, .dtype = .float32, .args = .{ 3, 7, 8 } },
        .{ .op = .astype, .dtype = .bfloat16, .args = .{ 9, 0, 0 } },
    };
    const f = try fused(&prog, &.{ a, x }, a.shape, 0);
    defer array.release(f);
    const u = try unfuse(&prog, &.{ a, x }, a.shape, 0);
    defer array.release(u);
    try eval_mod.eval(&.{ f, u });
    try testing.expectEqual(Dtype.bfloat16, f.dtype);
    try testing.expectEqualSlices(u8, bytesOf(u), bytesOf(f));
}

test "bad programs fail with a message, never crash" {
    const a = try testArray(.float32, &.{3}, wave);
    defer array.release(a);
    const s = a.shape;
    try testing.expectError(error.Failed, fused(&.{.{ .op = .{ .input = 1 }, .dtype = .float32 }}, &.{a}, s, 0));
    try testing.expectEqualStrings("[fused] Instruction 0 reads input 1 of 1.", errors.messageSlice());
    try testing.expectError(error.Failed, fused(&.{
        .{ .op = .{ .input = 0 }, .dtype = .float32 },
        .{ .op = .{ .unary = .exp }, .dtype = .float32, .args = .{ 1, 0, 0 } },
    }, &.{a}, s, 0));
    try testing.expectEqualStrings("[fused] Instruction 1 reads value 1, which is not computed before it.", errors.messageSlice());
    try testing.expectError(error.Failed, fused(&.{
        .{ .op = .{ .input = 0 }, .dtype = .float32 },
        .{ .op = .{ .unary = .isnan }, .dtype = .float32, .args = .{ 0, 0, 0 } },
    }, &.{a}, s, 0));
    try testing.expectEqualStrings("[fused] Instruction 1 gives bool, not float32.", errors.messageSlice());
    try testing.expectError(error.Failed, fused(&.{
        .{ .op = .{ .input = 0 }, .dtype = .float32 },
        .{ .op = .{ .unary = .bitwise_invert }, .dtype = .float32, .args = .{ 0, 0, 0 } },
    }, &.{a}, s, 0));
    try testing.expectEqualStrings("[bitwise_invert] Bitwise inverse only allowed on integer types.", errors.messageSlice());
    try testing.expectError(error.Failed, fused(&.{.{ .op = .{ .input = 0 }, .dtype = .float32 }}, &.{a}, try Shape.fromSlice(&.{4}, "t"), 0));
    try testing.expectEqualStrings("[fused] Shapes (3) and (4) cannot be broadcast.", errors.messageSlice());
}
