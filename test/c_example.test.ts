// examples/c: a C program using the engine through mlxbun.h, built the two ways a C project
// would: CMake with find_package(mlxbun) (the CMake package `zig build` installs), and
// pkg-config (mlxbun.pc) with the system's C compiler. Expected values computed by hand.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const prefix = join(root, "zig-out"); // the install prefix of `zig build`
const cmake = Bun.which("cmake");
const cc = Bun.which("cc") ?? Bun.which("gcc");
const pkgConfig = Bun.which("pkg-config");
// CI installs whatever of these the machine lacks (scripts/c_tools.sh) and sets this, so there
// the tests run or fail, never skip.
const required = process.env.MLXB_REQUIRE_C_TOOLS === "1";

const expected = [
  "sum(a * 2 + 1) = 48 (ndim 0)", // 2 * (1 + ... + 6) + 6
  "error: [reshape] Cannot reshape array of size 6 into shape (4,2).",
  "sum(x^3) = 36", // 1 + 8 + 27
  "grad sum(x^3) at [1, 2, 3] = [3, 12, 27]", // 3 x^2
  "dlpack export: ndim 1, shape (3), data [3, 12, 27]",
  "dlpack import: sum = 46", // 1 + 2 + 3 + 40 (the buffer was changed after import: a view)
  "deleter calls = 1, live handles = 0",
  "",
].join("\n");

function run(cmd: string[], env: Record<string, string | undefined> = process.env) {
  const r = Bun.spawnSync(cmd, { cwd: root, env, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("examples/c", () => {
  test.skipIf(cmake === null && !required)("builds with CMake's find_package(mlxbun) and prints the hand-computed values", () => {
    expect(cmake).not.toBeNull();
    const build = mkdtempSync(join(tmpdir(), "mlxbun-cmake-"));
    try {
      const configure = run([cmake!, "-S", join(root, "examples", "c"), "-B", build, `-DCMAKE_PREFIX_PATH=${prefix}`, "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror"]);
      expect({ code: configure.code, stderr: configure.stderr }).toEqual({ code: 0, stderr: "" });
      const make = run([cmake!, "--build", build]);
      expect({ code: make.code, stderr: make.stderr }).toEqual({ code: 0, stderr: "" });
      expect(run([join(build, "mlxbun_example")])).toEqual({ code: 0, stdout: expected, stderr: "" });
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
  }, 180_000);

  test.skipIf((cc === null || pkgConfig === null) && !required)("builds with `cc $(pkg-config --cflags --libs mlxbun)`", () => {
    expect({ cc, pkgConfig }).toEqual({ cc: expect.any(String), pkgConfig: expect.any(String) });
    const dir = mkdtempSync(join(tmpdir(), "mlxbun-pc-"));
    try {
      const env = { ...process.env, PKG_CONFIG_PATH: join(prefix, "lib", "pkgconfig") };
      const flags = run([pkgConfig!, "--cflags", "--libs", "mlxbun"], env);
      expect(flags.code).toBe(0);
      const exe = join(dir, "example");
      const compile = run([cc!, "-std=c11", "-Wall", "-Wextra", "-Werror", join(root, "examples", "c", "main.c"), "-o", exe, ...flags.stdout.trim().split(/\s+/)]);
      expect({ code: compile.code, stderr: compile.stderr }).toEqual({ code: 0, stderr: "" });
      expect(run([exe])).toEqual({ code: 0, stdout: expected, stderr: "" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
