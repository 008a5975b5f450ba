//! The primitive set: one tagged union, and every rule over it is an exhaustive switch, so a
//! primitive added without its kernel (and later its vjp, jvp and vmap rules) does not compile.
//! Each family lives in one file under prims/: its ops (validation, output shape and dtype),
//! its parameters and its kernels.
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
pub const creation = @import("prims/creation.zig");
pub const copy = @import("prims/copy.zig");
pub const elementwise = @import("prims/elementwise.zig");
pub const reduce = @import("prims/reduce.zig");
pub const shape = @import("prims/shape.zig");
pub const sort = @import("prims/sort.zig");
pub const indexing = @import("prims/indexing.zig");
pub const random = @import("prims/random.zig");
pub const matmul = @import("prims/matmul.zig");
pub const bytes = @import("prims/bytes.zig");
pub const quantized = @import("prims/quantized.zig");
pub const fft = @import("prims/fft.zig");
pub const linalg = @import("prims/linalg.zig");
pub const conv = @import("prims/conv.zig");
pub const fast = @import("prims/fast.zig");
pub const fused = @import("prims/fused.zig");

/// When set, kernels take their plain reference loops (the definition of correct) instead of
/// their fast paths, so tests can compare the two. Families without a separate fast path
/// ignore it.
pub var reference_mode = false;

pub const Primitive = union(enum) {
    /// Data is present from creation (host data, a copy, a wrapped buffer). Never scheduled.
    leaf,
    astype,
    broadcast,
    /// The identity; transforms stop here.
    stop_gradient,
    /// The identity of input 0, computed after the other inputs.
    depends,
    arange: creation.Arange,
    linspace: creation.Linspace,
    eye: creation.Eye,
    tri: creation.Tri,
    tri_mask: creation.TriMask,
    // Families with a sub-union of their own (each file owns its primitives' rules).
    elementwise: elementwise.Prim,
    reduce: reduce.Prim,
    shape: shape.Prim,
    sort: sort.Prim,
    indexing: indexing.Prim,
    random: random.Prim,
    matmul: matmul.Prim,
    from_bytes: bytes.FromBytes,
    quantized: quantized.Prim,
    fft: fft.Prim,
    linalg: linalg.Prim,
    conv: conv.Prim,
    fast: fast.Prim,
    /// An output of a custom function (identity of input 0; the host gives its vjp).
    custom: @import("grad.zig").CustomOut,
    /// A chain of elementwise ops run as one kernel (fuse.zig makes them).
    fused: fused.Fused,

    /// The op that made the primitive, as error messages name it.
    pub fn name(p: Primitive) []const u8 {
        return switch (p) {
            .leaf => "array",
            .astype => "astype",
            .broadcast => "broadcast_to",
            .stop_gradient => "stop_gradient",
            .depends => "depends",
            .arange => "arange",
            .linspace => "linspace",
            .eye => "eye",
            .tri => "tri",
            .tri_mask => |t| if (t.upper) "triu" else "tril",
            .elementwise => |f| f.name(),
            .reduce => |f| f.name(),
            .shape => |f| f.name(),
            .sort => |f| f.name(),
            .indexing => |f| f.name(),
            .random => |f| f.name(),
            .matmul => |f| f.name(),
            .from_bytes => "from_bytes",
            .quantized => |f| f.name(),
            .fft => |f| f.name(),
            .linalg => |f| f.name(),
            .conv => |f| f.name(),
            .fast => |f| f.name(),
            .custom => "custom_function",
            .fused => "fused",
        };
    }

    /// Free what the primitive owns (called once, when its node is detached or released).
    pub fn deinit(p: Primitive) void {
        switch (p) {
            .indexing => |f| f.deinit(),
            .shape => |f| f.deinit(),
            .custom => |c| c.call.release(),
            .fused => |f| f.deinit(),
            else => {},
        }
    }

    /// Compute `node` from its (evaluated) inputs: allocate or share its buffer, set its strides.
    pub fn eval(p: Primitive, node: *array.Node) errors.Error!void {
        switch (p) {
            .leaf => unreachable,
            .astype => try copy.evalAstype(node),
            .broadcast => copy.evalBroadcast(node),
            .stop_gradient, .depends => copy.evalIdentity(node),
            .arange => |a| try creation.evalArange(node, a),
            .linspace => |l| try creation.evalLinspace(node, l),
            .eye => |e| try creation.evalEye(node, e),
            .tri => |t| try creation.evalTri(node, t),
            .tri_mask => |t| try creation.evalTriMask(node, t),
            .elementwise => |f| try elementwise.eval(node, f),
            .reduce => |f| try reduce.eval(node, f),
            .shape => |f| try shape.eval(node, f),
            .sort => |f| try sort.eval(node, f),
            .indexing => |f| try indexing.eval(node, f),
            .random => |f| try random.eval(node, f),
            .matmul => |f| try matmul.eval(node, f),
            .from_bytes => |f| try bytes.eval(node, f),
            .quantized => |f| try quantized.eval(node, f),
            .fft => |f| try fft.eval(node, f),
            .linalg => |f| try linalg.eval(node, f),
            .conv => |f| try conv.eval(node, f),
            .fast => |f| try fast.eval(node, f),
            .custom => copy.evalIdentity(node),
            .fused => |f| try fused.eval(node, f),
        }
    }
};

/// A fresh row-contiguous output buffer for `node`, or the buffer of `donor` when nothing else
/// can see it (no other node, handle or view holds it) and it has the right size and layout.
/// The donor keeps its reference until it is detached, so kernels may still read it through
/// the donor: element i is read before it is written.
pub fn allocOutput(node: *array.Node, donor: ?*array.Node) errors.Error!void {
    if (donor) |d| {
        if (d.refs.load(.acquire) == 1 and d.buffer != null and d.buffer.?.refs.load(.acquire) == 1 and
            d.buffer.?.block.size != 0 and d.offset == 0 and d.buffer.?.nbytes == node.nbytes() and d.isRowContiguous())
        {
            d.buffer.?.retain();
            node.buffer = d.buffer;
            node.setRowContiguousStrides();
            return;
        }
    }
    node.buffer = try array.newBuffer(node.nbytes(), node.prim.name());
    node.setRowContiguousStrides();
}
