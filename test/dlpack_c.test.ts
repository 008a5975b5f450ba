// The C ABI's DLPack entries used from C: test/programs/dlpack_roundtrip.c includes
// ffi/mlxbun.h, is compiled with `zig cc` against the built library, and checks the exported
// struct, a zero-copy re-import, a hand-built tensor's deleter (exactly once) and an error.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { suffix } from "bun:ffi";

const root = join(import.meta.dir, "..");
const zig = [join(root, ".toolchain", "bin", "zig"), Bun.which("zig")].find((p) => p !== null && p !== undefined && existsSync(p));
const lib = process.env.MLX_BUN_LIB ?? join(root, "zig-out", "lib", `libmlxbun.${suffix}`);

test.skipIf(zig === undefined)("a C program round-trips through DLPack with ffi/mlxbun.h", () => {
  const dir = mkdtempSync(join(tmpdir(), "mlxbun-dlpack-"));
  try {
    const exe = join(dir, "dlpack_roundtrip");
    const libDir = dirname(lib);
    const cc = Bun.spawnSync([
      zig!, "cc", "-std=c11", "-Wall", "-Werror", `-I${join(root, "ffi")}`, join(root, "test", "programs", "dlpack_roundtrip.c"),
      lib, `-Wl,-rpath,${libDir}`, "-o", exe,
    ]);
    expect({ code: cc.exitCode, stderr: cc.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    const run = Bun.spawnSync([exe]);
    expect({ code: run.exitCode, stdout: run.stdout.toString(), stderr: run.stderr.toString() }).toEqual({ code: 0, stdout: "ok\n", stderr: "" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
