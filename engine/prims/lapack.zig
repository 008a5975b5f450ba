//! LAPACK, loaded at run time: the built library links no LAPACK, so it loads on machines
//! without one, and the first linalg call that needs a factorization finds one or fails with
//! a message that says what to install.
//!
//! Search order: (1) the MLXB_LAPACK environment variable (a path; when set, it is the only
//! candidate, so a wrong path fails loudly instead of silently picking another library),
//! (2) the system's usual names (reference LAPACK, OpenBLAS, macOS Accelerate), (3) paths the
//! host registered with `addHint` (the TypeScript layer registers the OpenBLAS that
//! scripts/bootstrap.sh installs into .toolchain/ from PyPI's `scipy-openblas32`).
//! Symbols are looked up plain (`sgetrf_`) and with the `scipy_` prefix that wheel uses;
//! all use 32-bit (LP64) integers.
const std = @import("std");
const builtin = @import("builtin");
const errors = @import("../errors.zig");

/// LAPACK's integer (LP64 builds).
pub const Int = i32;

const system_names = if (builtin.os.tag == .macos)
    [_][:0]const u8{
        "/System/Library/Frameworks/Accelerate.framework/Accelerate",
        "/System/Library/Frameworks/Accelerate.framework/Versions/A/Frameworks/vecLib.framework/Versions/A/libLAPACK.dylib",
        "libopenblas.dylib",
        "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
        "/usr/local/opt/openblas/lib/libopenblas.dylib",
    }
else
    [_][:0]const u8{
        "liblapack.so.3",
        "libopenblas.so.0",
        "libopenblas.so",
        "libopenblasp-r0.3.so",
        "liblapack.so",
        "libflexiblas.so.3",
        "libmkl_rt.so",
    };

const prefixes = [_][]const u8{ "", "scipy_" };

/// The routines we use, by their LAPACK names (without the trailing underscore).
pub const Fns = struct {
    sgetrf: *const fn (*const Int, *const Int, [*]f32, *const Int, [*]Int, *Int) callconv(.c) void,
    dgetrf: *const fn (*const Int, *const Int, [*]f64, *const Int, [*]Int, *Int) callconv(.c) void,
    sgetri: *const fn (*const Int, [*]f32, *const Int, [*]const Int, [*]f32, *const Int, *Int) callconv(.c) void,
    dgetri: *const fn (*const Int, [*]f64, *const Int, [*]const Int, [*]f64, *const Int, *Int) callconv(.c) void,
    sgeqrf: *const fn (*const Int, *const Int, [*]f32, *const Int, [*]f32, [*]f32, *const Int, *Int) callconv(.c) void,
    dgeqrf: *const fn (*const Int, *const Int, [*]f64, *const Int, [*]f64, [*]f64, *const Int, *Int) callconv(.c) void,
    sorgqr: *const fn (*const Int, *const Int, *const Int, [*]f32, *const Int, [*]const f32, [*]f32, *const Int, *Int) callconv(.c) void,
    dorgqr: *const fn (*const Int, *const Int, *const Int, [*]f64, *const Int, [*]const f64, [*]f64, *const Int, *Int) callconv(.c) void,
    sgesdd: *const fn (*const u8, *const Int, *const Int, [*]f32, *const Int, [*]f32, [*]f32, *const Int, [*]f32, *const Int, [*]f32, *const Int, [*]Int, *Int, usize) callconv(.c) void,
    dgesdd: *const fn (*const u8, *const Int, *const Int, [*]f64, *const Int, [*]f64, [*]f64, *const Int, [*]f64, *const Int, [*]f64, *const Int, [*]Int, *Int, usize) callconv(.c) void,
    strtri: *const fn (*const u8, *const u8, *const Int, [*]f32, *const Int, *Int, usize, usize) callconv(.c) void,
    dtrtri: *const fn (*const u8, *const u8, *const Int, [*]f64, *const Int, *Int, usize, usize) callconv(.c) void,
    spotrf: *const fn (*const u8, *const Int, [*]f32, *const Int, *Int, usize) callconv(.c) void,
    dpotrf: *const fn (*const u8, *const Int, [*]f64, *const Int, *Int, usize) callconv(.c) void,
    ssyevd: *const fn (*const u8, *const u8, *const Int, [*]f32, *const Int, [*]f32, [*]f32, *const Int, [*]Int, *const Int, *Int, usize, usize) callconv(.c) void,
    dsyevd: *const fn (*const u8, *const u8, *const Int, [*]f64, *const Int, [*]f64, [*]f64, *const Int, [*]Int, *const Int, *Int, usize, usize) callconv(.c) void,
    sgeev: *const fn (*const u8, *const u8, *const Int, [*]f32, *const Int, [*]f32, [*]f32, [*]f32, *const Int, [*]f32, *const Int, [*]f32, *const Int, *Int, usize, usize) callconv(.c) void,
    dgeev: *const fn (*const u8, *const u8, *const Int, [*]f64, *const Int, [*]f64, [*]f64, [*]f64, *const Int, [*]f64, *const Int, [*]f64, *const Int, *Int, usize, usize) callconv(.c) void,
    // complex64 (interleaved re, im pairs of f32)
    cgesdd: *const fn (*const u8, *const Int, *const Int, [*]f32, *const Int, [*]f32, [*]f32, *const Int, [*]f32, *const Int, [*]f32, *const Int, [*]f32, [*]Int, *Int, usize) callconv(.c) void,
    cheevd: *const fn (*const u8, *const u8, *const Int, [*]f32, *const Int, [*]f32, [*]f32, *const Int, [*]f32, *const Int, [*]Int, *const Int, *Int, usize, usize) callconv(.c) void,
    cgeev: *const fn (*const u8, *const u8, *const Int, [*]f32, *const Int, [*]f32, [*]f32, *const Int, [*]f32, *const Int, [*]f32, *const Int, [*]f32, *Int, usize, usize) callconv(.c) void,
};

var mutex: std.Thread.Mutex = .{};
var loaded: ?Fns = null;
var loaded_path: [512:0]u8 = [_:0]u8{0} ** 512;
var hints: [4][512:0]u8 = undefined;
var n_hints: usize = 0;

/// Register a fallback path (searched after the system names). Returns false if full.
pub fn addHint(path: []const u8) bool {
    mutex.lock();
    defer mutex.unlock();
    if (n_hints == hints.len or path.len >= 512) return false;
    @memcpy(hints[n_hints][0..path.len], path);
    hints[n_hints][path.len] = 0;
    n_hints += 1;
    return true;
}

/// The path of the loaded LAPACK ("" if none yet).
pub fn loadedPath() [*:0]const u8 {
    return &loaded_path;
}

fn resolve(handle: *anyopaque) ?Fns {
    var fns: Fns = undefined;
    prefix: for (prefixes) |pre| {
        inline for (@typeInfo(Fns).@"struct".fields) |f| {
            var buf: [64]u8 = undefined;
            const sym = std.fmt.bufPrintZ(&buf, "{s}{s}_", .{ pre, f.name }) catch unreachable;
            const p = std.c.dlsym(handle, sym.ptr) orelse continue :prefix;
            @field(fns, f.name) = @ptrCast(@alignCast(p));
        }
        return fns;
    }
    return null;
}

fn tryOpen(path: [*:0]const u8) ?Fns {
    const h = std.c.dlopen(path, .{ .NOW = true }) orelse return null;
    if (resolve(h)) |fns| {
        const p = std.mem.span(path);
        const n = @min(p.len, loaded_path.len);
        @memcpy(loaded_path[0..n], p[0..n]);
        loaded_path[n] = 0;
        return fns;
    }
    // A library without the routines (e.g. a BLAS only): leave it loaded (never closed, as a
    // safety rule) and keep looking.
    return null;
}

/// The LAPACK routines, loading a library on first use. `op` names the caller for the message.
pub fn get(op: []const u8) errors.Error!*const Fns {
    mutex.lock();
    defer mutex.unlock();
    if (loaded) |*f| return f;
    if (std.c.getenv("MLXB_LAPACK")) |env| {
        if (tryOpen(env)) |f| {
            loaded = f;
            return &loaded.?;
        }
        const why = std.c.dlerror();
        return errors.fail(.unavailable, "[{s}] No usable LAPACK: MLXB_LAPACK is set to '{s}', which could not be loaded or lacks the LAPACK routines ({s}). Point MLXB_LAPACK at a LAPACK shared library (e.g. libopenblas.so.0 or liblapack.so.3), or unset it to search the system.", .{ op, std.mem.span(env), if (why) |w| std.mem.span(w) else "missing symbols" });
    }
    for (system_names) |name| {
        if (tryOpen(name.ptr)) |f| {
            loaded = f;
            return &loaded.?;
        }
    }
    for (hints[0..n_hints]) |*h| {
        if (tryOpen(h)) |f| {
            loaded = f;
            return &loaded.?;
        }
    }
    return errors.fail(.unavailable, "[{s}] No LAPACK library was found. Install one (Debian/Ubuntu: `apt install libopenblas0` or `apt install liblapack3`; Fedora: `dnf install openblas`; or `pip install scipy-openblas32`) or set MLXB_LAPACK to the path of a LAPACK shared library (liblapack.so.3, libopenblas.so.0, ...).", .{op});
}

test "a wrong MLXB_LAPACK-style path is refused with a message, not a crash" {
    try std.testing.expect(tryOpen("/nonexistent/liblapack.so") == null);
}
