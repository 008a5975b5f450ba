// Run-time CPU dispatch (engine/cpu.zig): a portable x86-64 library runs its GEMM, elementwise and
// reduction kernels at the level cpuid allows, capped by MLXB_CPU_LEVEL. On such a library this
// runs the matrix-product, elementwise and reduction tests (whose expected values come from MLX
// fixtures) once per level this machine has, each in a child process with the level forced, and
// checks that the level really took effect (test/dispatch.test.ts compares the levels' bits). A library
// built for its own CPU (`mlxb_cpu_level() == -1`, the default `zig build` on an AVX-512 machine)
// has no levels to choose from: build with `zig build -Dportable=true` to run these.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { lib } from "../ffi/lib";

const root = join(import.meta.dir, "..");
const level = lib.mlxb_cpu_level();
const levels = ["baseline", "avx2", "avx512"] as const;

function cpuFlags(): Set<string> {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags"));
    return new Set((line ?? "").split(/[\s:]+/));
  } catch {
    return new Set();
  }
}

/** The highest level this machine has, from /proc/cpuinfo (independent of engine/cpu.zig). */
function machineLevel(): number {
  const f = cpuFlags();
  if (["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].every((x) => f.has(x))) return 2;
  if (["avx2", "fma", "f16c", "bmi2"].every((x) => f.has(x))) return 1;
  return 0;
}

function childLevel(forced: string): number {
  const r = Bun.spawnSync([process.execPath, "-e", `import { lib } from "./ffi/lib"; console.log(lib.mlxb_cpu_level());`], {
    cwd: root,
    env: { ...process.env, MLXB_CPU_LEVEL: forced },
  });
  return Number(r.stdout.toString().trim());
}

test("mlxb_cpu_level reports -1 (kernels compiled in) or a level this machine has", () => {
  expect(level).toBeGreaterThanOrEqual(-1);
  if (process.arch !== "x64" || process.platform !== "linux") return;
  if (level < 0) return;
  const cap = levels.indexOf(process.env.MLXB_CPU_LEVEL as (typeof levels)[number]);
  expect(level).toBe(cap >= 0 ? Math.min(machineLevel(), cap) : machineLevel());
});

describe.skipIf(level < 0)("portable library: every kernel level", () => {
  for (const [i, name] of levels.entries()) {
    test.skipIf(i > machineLevel())(`MLXB_CPU_LEVEL=${name} selects ${name} and the matmul/conv/quantized/elementwise/reduce tests pass at it`, () => {
      expect(childLevel(name)).toBe(i);
      const files = ["test/matmul.test.ts", "test/matmul_variants.test.ts", "test/conv.test.ts", "test/quantized.test.ts", "test/elementwise.test.ts", "test/reduce.test.ts"];
      const r = Bun.spawnSync([process.execPath, "test", "--timeout", "60000", ...files], {
        cwd: root,
        env: { ...process.env, MLXB_CPU_LEVEL: name },
      });
      const out = r.stderr.toString();
      if (r.exitCode !== 0) console.error(out.slice(-4000));
      expect(r.exitCode).toBe(0);
      expect(out).toMatch(/ 0 fail/);
    }, 300_000);
  }
  test("an unknown MLXB_CPU_LEVEL is ignored (the machine's level)", () => {
    expect(childLevel("sse9")).toBe(machineLevel());
  });
});
