//! Build of the mlx-bun engine (libmlxbun), its tests and the ABI generator.
//!
//!   zig build                         ReleaseFast shared library in zig-out/lib (-Doptimize=Debug etc.)
//!   zig build test                    engine unit tests, safety-checked (Debug)
//!   zig build gen                     regenerate ffi/mlxbun.h and ffi/symbols.ts from engine/abi.zig
//!   zig build -Dsanitize=true         the checked engine: ReleaseSafe (Zig's safety checks), C sanitizers,
//!                                     poisoned allocator blocks (scripts/test_sanitized.sh)
//!
//! `zig build` also installs the C header (zig-out/include/mlxbun.h), a pkg-config file
//! (zig-out/lib/pkgconfig/mlxbun.pc) and a CMake package (zig-out/lib/cmake/mlxbun), all
//! relocatable. Packaged builds for other machines: scripts/build_platforms.sh
//! (-Dtarget=x86_64-linux-gnu.2.17 -Dcpu=baseline and friends).
const std = @import("std");
const builtin = @import("builtin");

comptime {
    const want = std.SemanticVersion{ .major = 0, .minor = 15, .patch = 2 };
    if (builtin.zig_version.order(want) != .eq)
        @compileError("mlx-bun pins Zig 0.15.2; run scripts/bootstrap.sh");
}

/// The engine's version: the npm packages', pkg-config's and CMake's (test/dist.test.ts checks
/// it matches package.json).
const version = "0.1.0";

pub fn build(b: *std.Build) void {
    const target = cpuLevelsTarget(b, b.standardTargetOptions(.{}));
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
    cpuLevels(b, lib_mod, optimize);
    lib_mod.addOptions("build_options", options);
    // lld for ELF (see docs/ARCHITECTURE.md); Zig's own linker for Mach-O, which lld does not do here.
    const use_lld = target.result.ofmt == .elf;
    const lib = b.addLibrary(.{ .name = "mlxbun", .linkage = .dynamic, .root_module = lib_mod, .use_llvm = true, .use_lld = use_lld });
    b.installArtifact(lib);
    installForC(b, lib.out_lib_filename);

    // Engine tests always run with safety checks on, whatever -Doptimize says.
    const test_mod = b.createModule(.{
        .root_source_file = b.path("engine/root.zig"),
        .target = target,
        .optimize = .Debug,
        .link_libc = true,
    });
    cpuLevels(b, test_mod, .Debug);
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
    cpuLevels(b, gen_mod, .Debug);
    gen_mod.addOptions("build_options", options);
    const gen = b.addExecutable(.{ .name = "gen_abi", .root_module = gen_mod, .use_llvm = true });
    const run_gen = b.addRunArtifact(gen);
    run_gen.addArg(b.pathFromRoot("ffi"));
    b.step("gen", "Regenerate ffi/mlxbun.h and ffi/symbols.ts").dependOn(&run_gen.step);
}

/// The header, a pkg-config file and a CMake package config beside the library, so C programs
/// can `pkg-config --cflags --libs mlxbun` or `find_package(mlxbun CONFIG)` with the install
/// prefix (zig-out, or --prefix) on their search path. Paths are relative to the files.
fn installForC(b: *std.Build, lib_file: []const u8) void {
    b.getInstallStep().dependOn(&b.addInstallFileWithDir(b.path("ffi/mlxbun.h"), .header, "mlxbun.h").step);
    const wf = b.addWriteFiles();
    const pc = wf.add("mlxbun.pc", b.fmt(
        \\prefix=${{pcfiledir}}/../..
        \\libdir=${{prefix}}/lib
        \\includedir=${{prefix}}/include
        \\
        \\Name: mlxbun
        \\Description: mlx-bun engine: MLX-style lazy arrays and transforms, flat C API (mlxbun.h)
        \\Version: {s}
        \\Libs: -L${{libdir}} -Wl,-rpath,${{libdir}} -lmlxbun
        \\Cflags: -I${{includedir}}
        \\
    , .{version}));
    b.getInstallStep().dependOn(&b.addInstallFileWithDir(pc, .lib, "pkgconfig/mlxbun.pc").step);
    const cmake = wf.add("mlxbun-config.cmake", b.fmt(
        \\# CMake package for libmlxbun (generated by build.zig). Use:
        \\#   find_package(mlxbun CONFIG REQUIRED)   # with the install prefix in CMAKE_PREFIX_PATH
        \\#   target_link_libraries(app PRIVATE mlxbun::mlxbun)
        \\get_filename_component(_mlxbun_prefix "${{CMAKE_CURRENT_LIST_DIR}}/../../.." ABSOLUTE)
        \\if(NOT TARGET mlxbun::mlxbun)
        \\  add_library(mlxbun::mlxbun SHARED IMPORTED)
        \\  set_target_properties(mlxbun::mlxbun PROPERTIES
        \\    IMPORTED_LOCATION "${{_mlxbun_prefix}}/lib/{s}"
        \\    INTERFACE_INCLUDE_DIRECTORIES "${{_mlxbun_prefix}}/include")
        \\endif()
        \\set(mlxbun_VERSION "{s}")
        \\set(mlxbun_INCLUDE_DIRS "${{_mlxbun_prefix}}/include")
        \\set(mlxbun_LIBRARIES mlxbun::mlxbun)
        \\unset(_mlxbun_prefix)
        \\
    , .{ lib_file, version }));
    b.getInstallStep().dependOn(&b.addInstallFileWithDir(cmake, .lib, "cmake/mlxbun/mlxbun-config.cmake").step);
    const cmake_version = wf.add("mlxbun-config-version.cmake", b.fmt(
        \\set(PACKAGE_VERSION "{s}")
        \\if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
        \\  set(PACKAGE_VERSION_COMPATIBLE FALSE)
        \\else()
        \\  set(PACKAGE_VERSION_COMPATIBLE TRUE)
        \\  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
        \\    set(PACKAGE_VERSION_EXACT TRUE)
        \\  endif()
        \\endif()
        \\
    , .{version}));
    b.getInstallStep().dependOn(&b.addInstallFileWithDir(cmake_version, .lib, "cmake/mlxbun/mlxbun-config-version.cmake").step);
}

// ---------------------------------------------------------------------------------------------
// CPU levels (engine/cpu.zig): an x86-64 build whose CPU lacks AVX-512 (-Dportable=true, or an
// explicit -Dcpu such as x86_64) compiles the hot kernels (engine/kernels.zig: GEMM, direct convolution, elementwise,
// reductions, quantized matmul) once more per level, baseline x86-64 / x86-64-v3 (AVX2) / x86-64-v4 (AVX-512), links the three objects in, and
// picks one at run time from cpuid. Any other build compiles the kernels into the engine.

fn cpuLevelsTarget(b: *std.Build, target: std.Build.ResolvedTarget) std.Build.ResolvedTarget {
    const portable = b.option(bool, "portable", "x86-64: build for any x86-64 CPU; AVX2/AVX-512 kernels are chosen at run time") orelse false;
    if (!portable or target.result.cpu.arch != .x86_64) return target;
    var q = target.query;
    q.cpu_model = .baseline;
    q.cpu_features_add = .empty;
    q.cpu_features_sub = .empty;
    return b.resolveTargetQuery(q);
}

/// Gives `mod` the build options module `mlxb_build` and, when it dispatches, the level objects.
fn cpuLevels(b: *std.Build, mod: *std.Build.Module, optimize: std.builtin.OptimizeMode) void {
    const target = mod.resolved_target.?;
    const dispatch = target.result.cpu.arch == .x86_64 and !std.Target.x86.featureSetHas(target.result.cpu.features, .avx512f);
    const opts = b.addOptions();
    opts.addOption(bool, "dispatch", dispatch);
    opts.addOption(bool, "kernel_object", false);
    opts.addOption([]const u8, "level", "");
    mod.addOptions("mlxb_build", opts);
    if (!dispatch) return;
    const levels = [_]struct { []const u8, std.Target.Query.CpuModel }{
        .{ "baseline", .baseline },
        .{ "avx2", .{ .explicit = &std.Target.x86.cpu.x86_64_v3 } },
        .{ "avx512", .{ .explicit = &std.Target.x86.cpu.x86_64_v4 } },
    };
    for (levels) |lv| {
        var q = target.query;
        q.cpu_model = lv[1];
        q.cpu_features_add = .empty;
        q.cpu_features_sub = .empty;
        const kopts = b.addOptions();
        kopts.addOption(bool, "dispatch", false);
        kopts.addOption(bool, "kernel_object", true);
        kopts.addOption([]const u8, "level", lv[0]);
        const kmod = b.createModule(.{
            .root_source_file = b.path("engine/kernels.zig"),
            .target = b.resolveTargetQuery(q),
            .optimize = optimize,
            .link_libc = true,
            .pic = true,
            .strip = optimize != .Debug,
        });
        kmod.addOptions("mlxb_build", kopts);
        mod.addObject(b.addObject(.{ .name = b.fmt("mlxb_k_{s}", .{lv[0]}), .root_module = kmod, .use_llvm = true }));
    }
}
