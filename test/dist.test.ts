// Distribution: the engine loader's search order and messages, the npm packages (packed with
// scripts/pack.ts, installed offline into an empty project, run with no Zig and no checkout),
// single-file executables (`bun build --compile`, run alone from an empty directory), the
// engine's C install files, and the library header checker used on cross-compiled artifacts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { suffix } from "bun:ffi";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENGINE_PACKAGES, libraryPath, missingEngineMessage } from "../ffi/lib";
import { describe as describeLib, inspectLibrary, problems } from "../scripts/check_artifact";
import { PLATFORMS } from "../scripts/pack";

const root = join(import.meta.dir, "..");
const bun = process.execPath;
const devLib = join(root, "zig-out", "lib", `libmlxbun.${suffix}`);
const hostPlatform = ({ "linux-x64": "linux-x64-gnu", "linux-arm64": "linux-arm64-gnu", "darwin-arm64": "darwin-arm64", "darwin-x64": "darwin-x64" } as Record<string, string>)[
  `${process.platform}-${process.arch}`
];
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string;
// A clean environment: no MLX_BUN_LIB, no Zig or toolchain on PATH, a registry that refuses
// connections (the install must work offline from the tarballs).
const cleanEnv = { PATH: "/usr/bin:/bin", HOME: tmpdir(), BUN_CONFIG_REGISTRY: "http://127.0.0.1:9/", NO_COLOR: "1" };

function run(cmd: string[], cwd: string, env: Record<string, string> = cleanEnv) {
  const r = Bun.spawnSync(cmd, { cwd, env, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

// Hand-computed: sum([1, 2, 3]^2) = 14, d/dx sum(x^2) = 2x.
const program = `import * as mx from "mlx-bun";
const x = mx.array([1, 2, 3], mx.float32);
const g = mx.grad((t: mx.Array) => mx.sum(t.mul(t)))(x);
console.log(\`sum=\${mx.sum(x.mul(x)).item()} grad=\${JSON.stringify(g.tolist())}\`);
`;
const programOutput = "sum=14 grad=[2,4,6]\n";

describe("the engine loader", () => {
  test("this process found the checkout's build (no platform package installed here)", () => {
    expect(libraryPath).toBe(devLib);
  });

  test("MLX_BUN_LIB comes first, and a wrong one is named", () => {
    const script = `import { libraryPath } from "${join(root, "ffi", "lib.ts")}"; console.log(libraryPath);`;
    const copy = join(mkdtempSync(join(tmpdir(), "mlxbun-env-")), `libmlxbun.${suffix}`);
    copyFileSync(devLib, copy);
    const ok = run([bun, "-e", script], root, { ...cleanEnv, MLX_BUN_LIB: copy });
    expect(ok).toEqual({ code: 0, stdout: copy + "\n", stderr: "" });
    const bad = run([bun, "-e", script], root, { ...cleanEnv, MLX_BUN_LIB: "/nonexistent/libmlxbun.so" });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("mlx-bun: MLX_BUN_LIB is set to /nonexistent/libmlxbun.so, which does not exist.");
    const notLib = run([bun, "-e", script], root, { ...cleanEnv, MLX_BUN_LIB: join(root, "README.md") });
    expect(notLib.code).not.toBe(0);
    expect(notLib.stderr).toContain(`mlx-bun: the engine library ${join(root, "README.md")} could not be loaded: `);
  });

  test("a machine without an engine gets a message saying what to install", () => {
    expect(ENGINE_PACKAGES).toEqual({
      "linux-x64": "mlx-bun-linux-x64-gnu", "linux-arm64": "mlx-bun-linux-arm64-gnu",
      "darwin-arm64": "mlx-bun-darwin-arm64", "darwin-x64": "mlx-bun-darwin-x64",
    });
    const missing = missingEngineMessage("linux", "x64");
    expect(missing).toStartWith("mlx-bun: the engine package for linux-x64, mlx-bun-linux-x64-gnu, is not installed.");
    expect(missing).toContain("bun add mlx-bun-linux-x64-gnu");
    expect(missing).toContain("glibc 2.17");
    const none = missingEngineMessage("freebsd", "x64");
    expect(none).toStartWith("mlx-bun: there is no prebuilt engine for freebsd-x64 (prebuilt: linux-x64, linux-arm64, darwin-arm64, darwin-x64; Linux with glibc).");
    expect(none).toContain("MLX_BUN_LIB");
  });
});

describe("the engine's files for C", () => {
  test("zig build installs the header, a pkg-config file and a CMake package beside the library", () => {
    const out = join(root, "zig-out");
    expect(readFileSync(join(out, "include", "mlxbun.h"), "utf8")).toBe(readFileSync(join(root, "ffi", "mlxbun.h"), "utf8"));
    const pc = readFileSync(join(out, "lib", "pkgconfig", "mlxbun.pc"), "utf8");
    expect(pc).toContain(`Version: ${version}\n`);
    expect(pc).toContain("prefix=${pcfiledir}/../..\n");
    const cmake = readFileSync(join(out, "lib", "cmake", "mlxbun", "mlxbun-config.cmake"), "utf8");
    expect(cmake).toContain(`IMPORTED_LOCATION "\${_mlxbun_prefix}/lib/libmlxbun.${suffix}"`);
    expect(readFileSync(join(out, "lib", "cmake", "mlxbun", "mlxbun-config-version.cmake"), "utf8")).toContain(`set(PACKAGE_VERSION "${version}")`);
  });

  test("build.zig's version is package.json's", () => {
    expect(readFileSync(join(root, "build.zig"), "utf8")).toContain(`const version = "${version}";`);
  });
});

describe("library headers (scripts/check_artifact.ts)", () => {
  test.skipIf(hostPlatform === undefined)("the local build is a shared library for this machine, needing only the system's C library", () => {
    const info = inspectLibrary(new Uint8Array(readFileSync(devLib)));
    expect(info.kind).toBe("shared library");
    expect(info.arch).toBe(process.arch === "x64" ? "x86-64" : "arm64");
    expect(info.soname).toBe(process.platform === "darwin" ? "@rpath/libmlxbun.dylib" : "libmlxbun.so");
    // The native build links the machine's glibc; only the packaged build promises 2.17.
    expect(problems(hostPlatform!, info).filter((p) => !p.includes("baseline"))).toEqual([]);
  });

  test("headers that are not the platform's are refused", () => {
    const elf = inspectLibrary(new Uint8Array(readFileSync(devLib)));
    expect(problems("darwin-arm64", elf)).toContain(`format is ${elf.format}, want Mach-O`);
    expect(problems("linux-x64-gnu", { ...elf, arch: "arm64", glibc: "2.34", needed: ["libc.so.6", "libstdc++.so.6"] })).toEqual([
      "architecture is arm64, want x86-64",
      "depends on libstdc++.so.6, not a glibc library",
      "needs GLIBC_2.34, newer than the 2.17 baseline",
    ]);
    expect(() => inspectLibrary(new TextEncoder().encode("#!/bin/sh\n".padEnd(80, " ")))).toThrow("neither a 64-bit ELF nor a 64-bit Mach-O file");
  });

  // Built by scripts/build_platforms.sh (not part of the default run: four ReleaseFast builds).
  for (const [p, { file: name }] of Object.entries(PLATFORMS)) {
    const file = join(root, "zig-out", "platforms", p, "lib", name);
    test.skipIf(!existsSync(file))(`the cross-compiled ${p} engine passes its checks`, () => {
      const info = inspectLibrary(new Uint8Array(readFileSync(file)));
      expect({ platform: p, info: describeLib(info), problems: problems(p, info) }).toEqual({ platform: p, info: describeLib(info), problems: [] });
    });
  }
});

describe.skipIf(hostPlatform === undefined)("npm packages and single-file executables", () => {
  let dir = "";
  let tarballs: string[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mlxbun-dist-"));
    const packed = run([bun, join(root, "scripts", "pack.ts"), "--out", join(dir, "tgz"), "--lib", `${hostPlatform}=${devLib}`], root, {
      ...cleanEnv, PATH: process.env.PATH ?? "/usr/bin:/bin",
    });
    if (packed.code !== 0) throw new Error(`pack failed: ${packed.stderr}`);
    tarballs = packed.stdout.trim().split("\n");
  }, 300_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("scripts/pack.ts makes the main package and this platform's engine package", () => {
    // This platform's engine comes from --lib; the others are packed when scripts/build_platforms.sh
    // has cross-compiled them into zig-out/platforms (as .ci/run does before the suite).
    const others = Object.entries(PLATFORMS).filter(([p, { file }]) => p === hostPlatform || existsSync(join(root, "zig-out", "platforms", p, "lib", file)));
    expect(tarballs).toEqual([`mlx-bun-${version}.tgz`, ...others.map(([p]) => `mlx-bun-${p}-${version}.tgz`)]);
    expect(tarballs).toContain(`mlx-bun-${hostPlatform}-${version}.tgz`);
    const files = run(["tar", "tzf", join(dir, "tgz", tarballs[0]!)], dir).stdout.split("\n");
    expect(files).toContain("package/src/index.ts");
    expect(files).toContain("package/ffi/lib.ts");
    expect(files).toContain("package/ffi/mlxbun.h");
    expect(files.some((f) => f.includes("engine_dev"))).toBe(false); // a checkout's build is not shipped
    expect(files.some((f) => /\.(so|dylib)$/.test(f))).toBe(false); // engines live in the platform packages
    const manifest = JSON.parse(run(["tar", "xzOf", join(dir, "tgz", tarballs[0]!), "package/package.json"], dir).stdout);
    expect(manifest.optionalDependencies).toEqual(Object.fromEntries(Object.values(ENGINE_PACKAGES).map((n) => [n, version])));
    const plat = JSON.parse(run(["tar", "xzOf", join(dir, "tgz", tarballs[1]!), "package/package.json"], dir).stdout);
    expect({ os: plat.os, cpu: plat.cpu, libc: plat.libc }).toEqual(
      { os: [process.platform], cpu: [process.arch], libc: process.platform === "linux" ? ["glibc"] : undefined },
    );
  });

  test("installed offline into an empty project, a script importing mlx-bun runs with no Zig and no checkout", () => {
    const proj = join(dir, "proj");
    mkdirSync(proj);
    writeFileSync(join(proj, "package.json"), JSON.stringify({ name: "proj", private: true, type: "module" }));
    const add = run([bun, "add", ...tarballs.map((t) => join(dir, "tgz", t))], proj);
    expect({ code: add.code, out: add.stdout }).toMatchObject({ code: 0 });
    expect(existsSync(join(proj, "node_modules", `mlx-bun-${hostPlatform}`, `libmlxbun.${suffix}`))).toBe(true);
    writeFileSync(join(proj, "main.ts"), program);
    expect(run([bun, "main.ts"], proj)).toEqual({ code: 0, stdout: programOutput, stderr: "" });
  }, 120_000);

  test("without the engine package, mlx-bun says which package to install", () => {
    const proj = join(dir, "proj-noengine");
    mkdirSync(proj);
    writeFileSync(join(proj, "package.json"), JSON.stringify({ name: "proj", private: true, type: "module" }));
    expect(run([bun, "add", join(dir, "tgz", tarballs[0]!)], proj).code).toBe(0);
    writeFileSync(join(proj, "main.ts"), program);
    const r = run([bun, "main.ts"], proj);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`mlx-bun: the engine package for ${process.platform}-${process.arch}, mlx-bun-${hostPlatform}, is not installed.`);
  }, 120_000);

  test("bun build --compile of that project gives one file that runs alone in an empty directory", () => {
    const proj = join(dir, "proj");
    const exe = join(dir, "app");
    const build = run([bun, "build", "--compile", "main.ts", "--outfile", exe], proj);
    expect({ code: build.code, stderr: build.stderr }).toEqual({ code: 0, stderr: "" });
    const empty = join(dir, "empty-app");
    mkdirSync(empty);
    copyFileSync(exe, join(empty, "app"));
    run(["chmod", "+x", join(empty, "app")], empty);
    rmSync(exe);
    expect(run([join(empty, "app")], empty)).toEqual({ code: 0, stdout: programOutput, stderr: "" });
  }, 180_000);

  test("the demo compiled from the checkout runs alone in an empty directory (engine embedded)", () => {
    const exe = join(dir, "demo");
    const build = run([bun, "build", "--compile", join(root, "examples", "demo.ts"), "--outfile", exe], root, { ...cleanEnv, PATH: process.env.PATH ?? "" });
    expect({ code: build.code, stderr: build.stderr }).toEqual({ code: 0, stderr: "" });
    const empty = join(dir, "empty-demo");
    mkdirSync(empty);
    copyFileSync(exe, join(empty, "demo"));
    run(["chmod", "+x", join(empty, "demo")], empty);
    rmSync(exe);
    const r = run([join(empty, "demo")], empty);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("mlx-bun on Device(cpu, 0), GPU available: false\n\nmx.array([[1, 2, 3], [4, 5, 6]])\narray([[1, 2, 3],\n       [4, 5, 6]], dtype=int32)\n");
    expect(r.stdout).toContain("mx.linspace(0, 1, 5)\narray([0, 0.25, 0.5, 0.75, 1], dtype=float32)");
  }, 180_000);
});
