//! Run-time choice of the compute kernels by CPU level, so one library runs on any x86-64.
//!
//! A portable build compiles the engine for the baseline x86-64 and the hot kernels (GEMM and its
//! packing, AMX; the direct convolution; the vectorized elementwise kernels and SIMD reductions;
//! the quantized matmul: engine/kernels.zig) three more times, once per level, each object
//! exporting its entry points under a level-specific hidden name (`mlxb_k_<level>_...`). Every
//! level computes the same bits (see kernels.zig). The first kernel call reads cpuid and XCR0
//! once and picks the highest level this CPU and OS support:
//!
//!   baseline   x86-64 (SSE2), runs anywhere
//!   avx2       x86-64-v3: AVX, AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE (Haswell, Zen 1 and later)
//!   avx512     x86-64-v4: AVX-512 F, BW, CD, DQ, VL (Skylake-X, Zen 4 and later); AMX tiles
//!              for bfloat16 products are used inside this level when present (engine/amx.zig)
//!
//! `MLXB_CPU_LEVEL=baseline|avx2|avx512` in the environment (read once) caps the level, so every
//! level can be tested on one machine. A build for a CPU with AVX-512 (the default `zig build`,
//! -mcpu=native on such a machine) compiles the kernels into the engine directly and does not
//! dispatch (build option `dispatch` false).
const std = @import("std");
const builtin = @import("builtin");
const build_options = @import("mlxb_build");

pub const Level = enum(u8) {
    baseline = 0,
    avx2 = 1,
    avx512 = 2,

    pub fn name(l: Level) []const u8 {
        return @tagName(l);
    }
};

/// Whether kernels go through this table (a portable x86-64 build).
pub const dispatch = build_options.dispatch;
pub const level_count = 3;

var chosen = std.atomic.Value(u8).init(0xff);
var found = std.atomic.Value(u8).init(0xff);

/// The level the kernels run at: the CPU's, capped by MLXB_CPU_LEVEL.
pub fn level() Level {
    const c = chosen.load(.acquire);
    if (c != 0xff) return @enumFromInt(c);
    var l = detected();
    if (std.posix.getenv("MLXB_CPU_LEVEL")) |v| {
        if (std.meta.stringToEnum(Level, v)) |cap| {
            if (@intFromEnum(cap) < @intFromEnum(l)) l = cap;
        }
    }
    chosen.store(@intFromEnum(l), .release);
    return l;
}

/// Tests: how many levels to run kernel tests at (every level this CPU has in a portable build).
pub fn testLevelCount() usize {
    return if (dispatch) @as(usize, @intFromEnum(detected())) + 1 else 1;
}

/// Tests: run the kernels at level `l` (which must not exceed `detected()`).
pub fn forceLevel(l: Level) void {
    std.debug.assert(@intFromEnum(l) <= @intFromEnum(detected()));
    chosen.store(@intFromEnum(l), .release);
}

/// The highest level this CPU and OS support (cpuid and XCR0, asked once).
pub fn detected() Level {
    const f = found.load(.acquire);
    if (f != 0xff) return @enumFromInt(f);
    const l = probe();
    found.store(@intFromEnum(l), .release);
    return l;
}

fn bit(x: u32, comptime i: u5) bool {
    return (x >> i) & 1 == 1;
}

fn probe() Level {
    if (builtin.cpu.arch != .x86_64) return .baseline;
    const max_leaf = cpuid(0, 0)[0];
    if (max_leaf < 7) return .baseline;
    const l1 = cpuid(1, 0);
    const l7 = cpuid(7, 0);
    const ext_max = cpuid(0x8000_0000, 0)[0];
    const e1 = if (ext_max >= 0x8000_0001) cpuid(0x8000_0001, 0) else [4]u32{ 0, 0, 0, 0 };
    // The OS must save the vector state: OSXSAVE, then XCR0's SSE and AVX bits.
    if (!bit(l1[2], 27)) return .baseline;
    const xcr0 = xgetbv0();
    if (xcr0 & 0x6 != 0x6) return .baseline;
    // x86-64-v2 and v3 (what LLVM may use when compiling for x86_64_v3).
    const v2 = bit(l1[2], 0) and bit(l1[2], 9) and bit(l1[2], 13) and bit(l1[2], 19) and bit(l1[2], 20) and
        bit(l1[2], 23) and bit(e1[2], 0);
    const v3 = v2 and bit(l1[2], 28) and bit(l1[2], 12) and bit(l1[2], 29) and bit(l1[2], 22) and
        bit(l7[1], 5) and bit(l7[1], 3) and bit(l7[1], 8) and bit(e1[2], 5);
    if (!v3) return .baseline;
    // x86-64-v4: AVX-512 F, DQ, CD, BW, VL, and the opmask/ZMM state enabled in XCR0.
    const v4 = bit(l7[1], 16) and bit(l7[1], 17) and bit(l7[1], 28) and bit(l7[1], 30) and bit(l7[1], 31) and
        xcr0 & 0xe0 == 0xe0;
    return if (v4) .avx512 else .avx2;
}

/// cpuid of `leaf`/`sub` (zeros off x86-64); amx.zig's detection uses it too.
pub fn cpuid(leaf: u32, sub: u32) [4]u32 {
    if (builtin.cpu.arch != .x86_64) return .{ 0, 0, 0, 0 };
    var a: u32 = undefined;
    var b: u32 = undefined;
    var c: u32 = undefined;
    var d: u32 = undefined;
    asm volatile ("cpuid"
        : [a] "={eax}" (a),
          [b] "={ebx}" (b),
          [c] "={ecx}" (c),
          [d] "={edx}" (d),
        : [leaf] "{eax}" (leaf),
          [sub] "{ecx}" (sub),
    );
    return .{ a, b, c, d };
}

/// XCR0, the register-state components the OS enables (0 off x86-64).
pub fn xgetbv0() u64 {
    if (builtin.cpu.arch != .x86_64) return 0;
    var lo: u32 = undefined;
    var hi: u32 = undefined;
    asm volatile ("xgetbv"
        : [lo] "={eax}" (lo),
          [hi] "={edx}" (hi),
        : [idx] "{ecx}" (@as(u32, 0)),
    );
    return (@as(u64, hi) << 32) | lo;
}

/// The entry `name` of every level's kernel object, indexed by Level.
pub fn table(comptime F: type, comptime name: []const u8) [level_count]*const F {
    comptime {
        var t: [level_count]*const F = undefined;
        for (0..level_count) |i| {
            const l: Level = @enumFromInt(i);
            t[i] = @extern(*const F, .{ .name = "mlxb_k_" ++ l.name() ++ "_" ++ name, .visibility = .hidden });
        }
        return t;
    }
}

/// `name` at the current level.
pub inline fn pick(comptime F: type, comptime name: []const u8) *const F {
    const t = comptime table(F, name);
    return t[@intFromEnum(level())];
}

test "the detected level agrees with /proc/cpuinfo" {
    if (builtin.cpu.arch != .x86_64 or builtin.os.tag != .linux) return error.SkipZigTest;
    const text = std.fs.cwd().readFileAlloc(std.testing.allocator, "/proc/cpuinfo", 1 << 22) catch return error.SkipZigTest;
    defer std.testing.allocator.free(text);
    const flags_at = std.mem.indexOf(u8, text, "\nflags") orelse return error.SkipZigTest;
    const line_end = std.mem.indexOfScalarPos(u8, text, flags_at + 1, '\n') orelse text.len;
    const line = text[flags_at..line_end];
    const has = struct {
        fn f(l: []const u8, flag: []const u8) bool {
            var it = std.mem.tokenizeAny(u8, l, " \t:");
            while (it.next()) |w| if (std.mem.eql(u8, w, flag)) return true;
            return false;
        }
    }.f;
    const want: Level = if (has(line, "avx512f") and has(line, "avx512bw") and has(line, "avx512vl") and has(line, "avx512dq") and has(line, "avx512cd"))
        .avx512
    else if (has(line, "avx2") and has(line, "fma") and has(line, "f16c") and has(line, "bmi2"))
        .avx2
    else
        .baseline;
    try std.testing.expectEqual(want, detected());
}

/// C ABI `mlxb_cpu_level`: the level in use, -1 when this build does not dispatch.
pub fn abiLevel() callconv(.c) i32 {
    return if (dispatch) @intFromEnum(level()) else -1;
}
