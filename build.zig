//! Build of the mlx-bun engine (libmlxbun), its tests and the ABI generator.
//!
//!   zig build                         ReleaseFast shared library in zig-out/lib (-Doptimize=Debug etc.)
//!   zig build test                    engine unit tests, safety-checked (Debug)
//!   zig build gen                     regenerate ffi/mlxbun.h and ffi/symbols.ts from engine/abi.zig
//!   zig build -Dsanitize=true         the checked engine: ReleaseSafe (Zig's safety checks), C sanitizers,
//!                                     poisoned allocator blocks (scripts/test_sanitized.sh)
const std = @import("std");
const builtin = @import("builtin");

comptime {
    const want = std.SemanticVersion{ .major = 0, .minor = 15, .patch = 2 };
    if (builtin.zig_version.order(want) != .eq)
        @compileError("mlx-bun pins Zig 0.15.2; run scripts/bootstrap.sh");
}

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    // The library is for use: ReleaseFast unless -Doptimize says otherwise.
    const sanitize = b.option(bool, "sanitize", "Checked engine: ReleaseSafe unless -Doptimize, C sanitizers, poisoned allocator blocks") orelse false;
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimization mode of the library (default ReleaseFast)") orelse
        @as(std.builtin.OptimizeMode, if (sanitize) .ReleaseSafe else .ReleaseFast);
    const options = b.addOptions();
    options.addOption(bool, "sanitize", sanitize);

    const lib_mod = b.createModule(.{
        .root_source_file = b.path("engine/root.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .strip = optimize != .Debug and !sanitize,
        .sanitize_c = if (sanitize) .full else null,
        .omit_frame_pointer = if (sanitize) false else null,
    });
    lib_mod.addOptions("build_options", options);
    const lib = b.addLibrary(.{ .name = "mlxbun", .linkage = .dynamic, .root_module = lib_mod, .use_llvm = true, .use_lld = true });
    b.installArtifact(lib);

    // Engine tests always run with safety checks on, whatever -Doptimize says.
    const test_mod = b.createModule(.{
        .root_source_file = b.path("engine/root.zig"),
        .target = target,
        .optimize = .Debug,
        .link_libc = true,
    });
    test_mod.addOptions("build_options", options);
    // The committed generated files, so a test can fail when they drift from the table.
    test_mod.addAnonymousImport("committed_header", .{ .root_source_file = b.path("ffi/mlxbun.h") });
    test_mod.addAnonymousImport("committed_symbols", .{ .root_source_file = b.path("ffi/symbols.ts") });
    const tests = b.addTest(.{ .root_module = test_mod, .use_llvm = true });
    const run_tests = b.addRunArtifact(tests);
    b.step("test", "Run the engine's unit tests (safety-checked)").dependOn(&run_tests.step);

    const gen_mod = b.createModule(.{
        .root_source_file = b.path("engine/gen_abi.zig"),
        .target = b.graph.host,
        .optimize = .Debug,
        .link_libc = true,
    });
    gen_mod.addOptions("build_options", options);
    const gen = b.addExecutable(.{ .name = "gen_abi", .root_module = gen_mod, .use_llvm = true });
    const run_gen = b.addRunArtifact(gen);
    run_gen.addArg(b.pathFromRoot("ffi"));
    b.step("gen", "Regenerate ffi/mlxbun.h and ffi/symbols.ts").dependOn(&run_gen.step);
}
