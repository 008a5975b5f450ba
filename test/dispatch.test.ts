// Run-time CPU dispatch of the elementwise and reduction kernels (engine/cpu.zig,
// engine/kernels.zig): a portable x86-64 library must compute the same bits at every kernel level
// as the library built for this machine. test/dispatch_cases.ts computes a table of unary, binary,
// where, cast, reduction, quantize, dequantize, quantized matmul and FFT outputs (ops x dtypes x layouts, special values included) and prints a hash
// of each output's bytes; this runs it in a child process per library and level and compares.
// Every bit counts, except which NaN a binary op or a reduction returns when several meet (not
// defined by IEEE or MLX: see dispatch_cases.ts `bits`); unary ops and where compare NaNs too.
//
// The libraries: the one this process loaded (zig-out/lib, or MLX_BUN_LIB), plus MLXB_NATIVE_LIB
// and MLXB_PORTABLE_LIB when set. A native library reports mlxb_cpu_level() == -1, a portable one
// the level in use. With only a portable library the levels are compared with each other; with
// only a native one there is nothing to compare (build one with `zig build -Dportable=true
// -p zig-out-portable` and set MLXB_PORTABLE_LIB=zig-out-portable/lib/libmlxbun.so).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { lib } from "../ffi/lib";

const root = join(import.meta.dir, "..");
const levels = ["baseline", "avx2", "avx512"] as const;

/** The highest level this machine has, from /proc/cpuinfo (independent of engine/cpu.zig). */
function machineLevel(): number {
  let flags = new Set<string>();
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags"));
    flags = new Set((line ?? "").split(/[\s:]+/));
  } catch {
    return 0;
  }
  if (["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].every((x) => flags.has(x))) return 2;
  if (["avx2", "fma", "f16c", "bmi2"].every((x) => flags.has(x))) return 1;
  return 0;
}

interface Run {
  level: number;
  cases: Record<string, string>;
}

/** The case table computed by `libPath` (undefined: this process's library) at `level`. */
function runCases(libPath: string | undefined, level?: string, reference = false): Run {
  const env: Record<string, string | undefined> = { ...process.env, MLXB_CPU_LEVEL: level ?? "", DISPATCH_REFERENCE: reference ? "1" : "" };
  if (libPath !== undefined) env.MLX_BUN_LIB = libPath;
  const r = Bun.spawnSync([process.execPath, "test/dispatch_cases.ts"], { cwd: root, env });
  if (r.exitCode !== 0) throw new Error(`dispatch_cases.ts failed (${libPath ?? "default"} at ${level ?? "its level"}):\n${r.stderr.toString().slice(-3000)}`);
  return JSON.parse(r.stdout.toString()) as Run;
}

function differing(a: Run, b: Run): string[] {
  const keys = new Set([...Object.keys(a.cases), ...Object.keys(b.cases)]);
  return [...keys].filter((k) => a.cases[k] !== b.cases[k]);
}

const here = lib.mlxb_cpu_level();
const onX64Linux = process.arch === "x64" && process.platform === "linux";
const nativeLib: string | undefined | null = process.env.MLXB_NATIVE_LIB ?? (here < 0 ? undefined : null);
const portableLib: string | undefined | null = process.env.MLXB_PORTABLE_LIB ?? (here >= 0 ? undefined : null);
const top = machineLevel();

test("the case table runs on this process's library and covers every family", () => {
  const r = runCases(undefined);
  expect(r.level).toBe(here);
  const names = Object.keys(r.cases);
  expect(names.length).toBeGreaterThan(1000);
  for (const family of ["unary ", "binary ", "where ", "reduce ", "qmm ", "cast ", "quantize ", "dequantize ", "qqmm ", "fft ", "fused "]) expect(names.some((n) => n.startsWith(family))).toBe(true);
  const errors = Object.entries(r.cases).filter(([, v]) => v.startsWith("error"));
  expect(errors).toEqual([]);
}, 300_000);

describe.skipIf(!onX64Linux || portableLib === null)("portable library: every kernel level gives the same bits", () => {
  let reference: Run | undefined;
  const referenceRun = (): Run => {
    reference ??= nativeLib !== null ? runCases(nativeLib ?? undefined) : runCases(portableLib ?? undefined, "baseline");
    return reference;
  };
  for (const [i, name] of levels.entries()) {
    test.skipIf(i > top)(`MLXB_CPU_LEVEL=${name} matches the ${nativeLib !== null ? "native library" : "baseline level"}`, () => {
      const r = runCases(portableLib ?? undefined, name);
      expect(r.level).toBe(i);
      const ref = referenceRun();
      expect(differing(r, ref)).toEqual([]);
    }, 300_000);
  }
  test("the reference loops (primitives.reference_mode) give the same bits at the baseline and the top level", () => {
    const lo = runCases(portableLib ?? undefined, "baseline", true);
    const hi = runCases(portableLib ?? undefined, levels[top], true);
    expect(lo.level).toBe(0);
    expect(differing(lo, hi)).toEqual([]);
  }, 300_000);
});
