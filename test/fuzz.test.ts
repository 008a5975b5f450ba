// The fuzzers (test/fuzz/): random programs of mx ops, each run with the fast kernels and again
// with the reference kernels and compared (api_fuzz.ts), and random raw calls of every C ABI
// function with valid, stale, freed and made-up handles, bad enums, huge shapes and null
// pointers (abi_fuzz.ts). Each runs in a subprocess, so a crash is a failure that names its
// seed. Deterministic from the seed:
//
//   MLXB_FUZZ_SEED=<seed> MLXB_FUZZ_BUDGET=<seconds per fuzzer> bun test test/fuzz.test.ts
//
// replays a failure (budget 0 runs exactly one program/round from the seed), or runs longer.
// Default: a fixed seed (so that CI is reproducible), ~20 s per fuzzer; MLXB_FUZZ_SEED=random takes
// a fresh seed from the clock (printed): use it with a long budget to explore.
import { describe, expect, test } from "bun:test";
import { Rng } from "./fuzz/rng";
import * as mx from "../src/index.ts";
import { lib } from "../ffi/lib";
import { read } from "bun:ffi";

const seedEnv = process.env.MLXB_FUZZ_SEED ?? "20261205";
const seed = seedEnv === "random" ? Date.now() % 1_000_000_000 : Number(seedEnv);
const budget = Number(process.env.MLXB_FUZZ_BUDGET ?? 20);
const timeoutMs = Math.max(60, 3 * budget + 60) * 1000;

async function run(script: string, args: string[]): Promise<{ code: number | null; signal: unknown; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, script, ...args], { stdout: "pipe", stderr: "pipe", cwd: `${import.meta.dir}/..` });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  return { code: proc.exitCode, signal: proc.signalCode, out, err };
}

function verdict(name: string, r: Awaited<ReturnType<typeof run>>): string {
  const lines = r.out.trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  if (r.code === 0 && last.startsWith("ok ")) return last;
  const seeds = lines.filter((l) => l.startsWith("seed "));
  const lastSeed = seeds[seeds.length - 1]?.slice(5) ?? String(seed);
  const failure = lines.filter((l) => !l.startsWith("seed ")).slice(-60).join("\n");
  throw new Error(
    `${name} failed (exit ${r.code}, signal ${r.signal}) at seed ${lastSeed}.\n` +
      `Replay: MLXB_FUZZ_SEED=${lastSeed} MLXB_FUZZ_BUDGET=0 bun test test/fuzz.test.ts\n${failure}\n${r.err.slice(-3000)}`,
  );
}

describe(`fuzz (seed ${seed}, budget ${budget} s)`, () => {
  // Both fuzzers found problems in code merged after they were written (the fused primitive's ABI
  // entries return -1 without an error message; an api program diverges, replay its seed): to fix.
  test("api: random programs agree between the fast and the reference kernels; invalid calls throw MlxError", async () => {
    console.log(`api fuzz: MLXB_FUZZ_SEED=${seed} MLXB_FUZZ_BUDGET=${budget}`);
    const v = verdict("api fuzz", await run("test/fuzz/api_fuzz.ts", [String(seed), String(budget), "60"]));
    const [, programs = 0, steps = 0] = v.split(" ").map(Number);
    console.log(`api fuzz: ${programs} programs, ${steps} steps`);
    expect(programs).toBeGreaterThan(0);
  }, timeoutMs);

  // It crashed about one run in two on the ReleaseFast engine (heap corruption) until graph walks
  // waited for nodes an async task was computing (see "graph walks wait ..." below). To hunt a
  // crash: MLX_BUN_LIB=zig-out-sanitize/lib/libmlxbun.so bun test/fuzz/abi_fuzz.ts <seed> 30 300
  // on the checked engine names the site; on ReleaseFast, LD_PRELOAD=libc_malloc_debug.so.0
  // MALLOC_CHECK_=3 GLIBC_TUNABLES=glibc.malloc.perturb=165 turns a late crash into an early one.
  test("C ABI: random raw calls never crash; every failure has a code and a message", async () => {
    console.log(`abi fuzz: MLXB_FUZZ_SEED=${seed} MLXB_FUZZ_BUDGET=${budget}`);
    const v = verdict("abi fuzz", await run("test/fuzz/abi_fuzz.ts", [String(seed), String(budget), "300"]));
    const [, rounds = 0, calls = 0, errors = 0] = v.split(" ").map(Number);
    console.log(`abi fuzz: ${rounds} rounds, ${calls} calls, ${errors} refused`);
    expect(calls).toBeGreaterThan(0);
    expect(errors).toBeGreaterThan(0);
    expect(errors).toBeLessThan(calls);
  }, timeoutMs);
});

describe("found by the fuzzers, fixed", () => {
  // abi_fuzz on the checked engine ("integer overflow" in pad): widths of 2^31-1 were added in
  // 32 bits (and the output dimension saturated instead of failing).
  test("pad refuses an output dimension past 2^31-1, in every mode, even on an empty axis", () => {
    const x = mx.zeros([3], mx.float32);
    for (const mode of ["constant", "edge", "reflect", "symmetric"] as const) {
      expect(() => mx.pad(x, [[2 ** 31 - 1, 1]], mode)).toThrow(/^\[pad\] Padding axis 0 to 2147483651 elements exceeds the largest dimension, 2\^31-1\./);
    }
    expect(() => mx.pad(mx.zeros([0]), [[2 ** 31 - 1, 2 ** 31 - 1]], "reflect")).toThrow(/^\[pad\] Cannot pad empty axis 0 using mode 'reflect'\./);
    expect(mx.pad(mx.array([1, 2], mx.float32), [[1, 2]], "edge").tolist()).toEqual([1, 1, 2, 2, 2]);
  });
  // abi_fuzz on the checked engine ("integer overflow" in flatten, and in a view's byte count):
  // flatten multiplied the merged dimensions in 32 bits, so a large view wrapped to a wrong shape.
  test("flatten refuses a merged dimension past 2^31-1; a view of a big broadcast still works", () => {
    const big = mx.broadcastTo(mx.array(1, mx.int8), [65536, 65536]);
    expect(() => mx.flatten(big)).toThrow(/^\[flatten\] Flattening axes 0 to 1 of shape \(65536,65536\) gives a dimension larger than 2\^31-1\./);
    expect(mx.flatten(mx.broadcastTo(mx.array(2, mx.int8), [4, 8, 16]), 1).shape).toEqual([4, 128]);
  });
  // abi_fuzz (seed 20262205 and others, checked engine: "reached unreachable code"; ReleaseFast:
  // heap corruption, a crash seconds later): a file path with an embedded NUL byte reached the
  // file system calls, which treat it as unreachable.
  test("export/import of a function refuse a file path with a NUL byte", () => {
    const path = new Uint8Array([5, 0, 0, 0]);
    expect(lib.mlxb_compile_import(path, 4)).toBe(0);
    expect(lib.mlxb_last_error_message()).toBe("[import_function] The file path contains a NUL byte.");
    lib.mlxb_clear_error();
    expect(() => mx.importFunction("tape\0.mlxbfn")).toThrow("[import_function] The file path contains a NUL byte.");
    const f = (x: mx.Array) => mx.add(x, 1);
    expect(() => mx.exportFunction("tape\0.mlxbfn", f, mx.array([1]))).toThrow("[export_function] The file path contains a NUL byte.");
  });

  // abi_fuzz seed 408772504: mlxb_trace_end without a matching mlxb_trace_begin wrapped the
  // engine's tracing count below zero (an unchecked decrement), so tracing stayed on for good.
  test("an unmatched mlxb_trace_end leaves the engine not tracing", () => {
    expect(lib.mlxb_is_tracing()).toBe(0);
    lib.mlxb_trace_end();
    lib.mlxb_trace_end();
    expect(lib.mlxb_is_tracing()).toBe(0);
    lib.mlxb_trace_begin();
    expect(lib.mlxb_is_tracing()).toBe(1);
    lib.mlxb_trace_end();
    expect(lib.mlxb_is_tracing()).toBe(0);
  });

  // abi_fuzz seed 408772504 on the checked engine: "integer overflow" in evalAsStrided (an
  // offset times the item size, past the array, on an empty view that skipped the range check).
  test("as_strided refuses an offset outside the array, even for an empty view", () => {
    const x = mx.arange(10);
    expect(() => mx.asStrided(x, [0], [1], -1)).toThrow(/^\[as_strided\]/);
    expect(() => mx.asStrided(x, [0], [1], 11)).toThrow(/^\[as_strided\] The offset 11 is outside the array of size 10/);
    expect(() => mx.asStrided(x, [0], [1], 4e18)).toThrow(/^\[as_strided\]/);
    // at the end is still a valid (empty) view
    expect(mx.asStrided(x, [0], [1], 10).shape).toEqual([0]);
    expect(mx.asStrided(x, [2], [3], 4).tolist()).toEqual([4, 7]);
  });

  // abi_fuzz on the checked engine ("integer overflow" in evalRemap): constant padding of an
  // empty view whose strides are huge (as_strided skips the range check of an empty view)
  // multiplied index by stride for positions that are all fill anyway.
  test("pad of an empty strided view gives only the fill value", () => {
    const v = mx.asStrided(mx.zeros([4], mx.float32), [0, 2048], [1, 2 ** 53 - 1]);
    const p = mx.pad(v, [[1, 0], [0, 1]], "constant", 7);
    expect(p.shape).toEqual([1, 2049]);
    expect(mx.all(mx.equal(p, 7)).item()).toBe(true);
    const q = mx.pad(mx.asStrided(mx.zeros([4], mx.int8), [3, 0, 5], [-(2 ** 53 - 1), 1, 2 ** 52]), [[0, 0], [2, 0], [0, 0]], "constant", -1);
    expect(q.shape).toEqual([3, 2, 5]);
    expect(mx.all(mx.equal(q, -1)).item()).toBe(true);
  });

  // abi_fuzz seed 30000000 on the checked engine ("integer overflow" in dlpackExport): the
  // row-major strides of an empty array's DLPack header were multiplied out in 64 bits over
  // dimensions such as (0, 2^31-1, 2^31-1, 2^31-1). They saturate now.
  test("DLPack export of an empty array with huge other dimensions", () => {
    const m = 2 ** 31 - 1;
    const a = mx.zeros([0, m, m, m], mx.float32);
    using t = a.toDlpack();
    const p = t.pointer;
    expect(read.i32(p, 32 + 16)).toBe(4);
    const strides = read.ptr(p, 32 + 32);
    expect([0, 1, 2, 3].map((i) => read.i64(strides, 8 * i))).toEqual([2n ** 63n - 1n, BigInt(m) * BigInt(m), BigInt(m), 1n]);
  });

  // abi_fuzz seed 30008956 on the checked engine ("integer overflow" evaluating a reshape):
  // reshape of an empty array infers 0 for -1 beside huge dimensions (as MLX), and the
  // row-major strides of that shape were multiplied out in 64 bits. They saturate now.
  test("an empty array with huge other dimensions evaluates (strides saturate)", () => {
    const dims = [2073307829, -1, 1, 7, 1632317695, 2147483647, 7];
    const r = mx.reshape(mx.triu(mx.zeros([0, 3], mx.float32)), dims);
    expect(r.shape).toEqual([2073307829, 0, 1, 7, 1632317695, 2147483647, 7]);
    mx.eval(r);
    expect(r.size).toBe(0);
    expect(mx.contiguous(mx.swapaxes(r, 0, 5)).shape).toEqual([2147483647, 0, 1, 7, 1632317695, 2073307829, 7]);
    expect(mx.add(r, 1).size).toBe(0);
  });

  // abi_fuzz on the ReleaseFast engine (heap corruption about one run in two; never on the
  // checked engine): mlxb_compile_build, mlxb_vjp and mlxb_vmap walked the graph of an array an
  // async task was computing, reading inputs and primitives the worker frees when it detaches
  // each node it has computed. Graph walks now wait for such a node first, which then is an
  // evaluated array (a constant of the tape, no gradient path through it), as after mx.eval.
  describe("graph walks wait for an array an async task is computing", () => {
    const F32 = 10;
    const MUL = 2;
    // x0 * c * c * ... (400 multiplies of 256 x 256: milliseconds of work for the worker).
    function chain(): { x0: number; c: number; out: number; free: () => void } {
      const shape = new Int32Array([256, 256]);
      const c = lib.mlxb_array_scalar(1.0001, F32, -1);
      const x0 = lib.mlxb_full(shape, 2, c, F32, -1);
      let x = x0;
      const made: number[] = [];
      for (let i = 0; i < 400; i++) {
        x = lib.mlxb_binary(MUL, x, c, -1);
        expect(x).not.toBe(0);
        made.push(x);
      }
      // Only the output stays held: the worker frees the rest as it goes.
      for (const h of made.slice(0, -1)) lib.mlxb_array_free(h);
      return { x0, c, out: x, free: () => [x, x0, c].forEach((h) => lib.mlxb_array_free(h)) };
    }
    function startAsync(h: number): number {
      const t = lib.mlxb_async_eval(new Uint32Array([h]), 1, -1);
      expect(t).not.toBe(0);
      return t;
    }
    function finish(t: number): void {
      while (lib.mlxb_ticket_state(t) === 0) Bun.sleepSync(1);
      expect(lib.mlxb_ticket_state(t)).toBe(1);
      lib.mlxb_ticket_free(t);
    }

    test("compile_build", () => {
      for (let round = 0; round < 5; round++) {
        const g = chain();
        const t = startAsync(g.out);
        const id = lib.mlxb_compile_build(new Uint32Array([g.x0]), 1, new Uint32Array([g.out]), 1, 2);
        expect(id).not.toBe(0);
        expect(lib.mlxb_array_is_evaluated(g.out)).toBe(1);
        expect(lib.mlxb_compile_info(id, 0)).toBe(0); // no steps: the output is a constant
        expect(lib.mlxb_compile_info(id, 1)).toBe(1);
        lib.mlxb_compile_free(id);
        finish(t);
        g.free();
      }
    });

    test("vjp", () => {
      for (let round = 0; round < 5; round++) {
        const g = chain();
        const t = startAsync(g.out);
        const cot = lib.mlxb_full(new Int32Array([256, 256]), 2, g.c, F32, -1);
        expect(lib.mlxb_vjp(new Uint32Array([g.out]), 1, new Uint32Array([g.x0]), 1, new Uint32Array([cot]), -1)).toBe(1);
        expect(lib.mlxb_array_is_evaluated(g.out)).toBe(1);
        const grad = lib.mlxb_results_take(0);
        expect(grad).not.toBe(0);
        // No path from the (evaluated) output back to x0: a zero cotangent.
        expect(mx.max(mx.abs(new mx.Array(lib.mlxb_array_retain(grad)))).item()).toBe(0);
        lib.mlxb_array_free(grad);
        lib.mlxb_array_free(cot);
        finish(t);
        g.free();
      }
    });

    test("vmap", () => {
      for (let round = 0; round < 5; round++) {
        const g = chain();
        const t = startAsync(g.out);
        const batched = lib.mlxb_full(new Int32Array([2, 256, 256]), 3, g.c, F32, -1);
        expect(lib.mlxb_vmap(new Uint32Array([g.out]), 1, new Uint32Array([g.x0]), 1, new Uint32Array([batched]), 2, -1)).toBe(1);
        expect(lib.mlxb_array_is_evaluated(g.out)).toBe(1);
        const r = lib.mlxb_results_take(0);
        expect(r).not.toBe(0);
        lib.mlxb_array_free(r);
        lib.mlxb_array_free(batched);
        finish(t);
        g.free();
      }
    });
  });

  // abi_fuzz seed 408773515: an eval after mlxb_roll(h, shifts=[4,4,2], axes=[-3],
  // axes_mode=2^32-2) did not return within 20 s.
  test("mlxb_roll refuses an unknown axes_mode; more shifts than axes roll by the first ones", () => {
    const x = mx.reshape(mx.arange(24), [2, 3, 4]);
    const shifts = new Int32Array([4, 4, 2]);
    const axes = new Int32Array([-3]);
    expect(lib.mlxb_roll(x.handle("test"), shifts, 3, axes, 1, 4294967294, -1)).toBe(0);
    expect(lib.mlxb_last_error_message()).toMatch(/^\[roll\] axes_mode must be 0/);
    lib.mlxb_clear_error();
    // The same call through the API (axes as a list): shift 4 along axis 0 of size 2 is no move.
    expect(mx.roll(x, [4, 4, 2], [-3]).tolist()).toEqual(x.tolist());
    expect(mx.roll(x, [3, 4, 2], [-3]).tolist()).toEqual(mx.concatenate([x.index(mx.sl(1)), x.index(mx.sl(0, 1))]).tolist());
  });
});

describe("the fuzzers' own machinery", () => {
  test("the generator is deterministic from its seed", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 100 }, () => a.u32());
    expect(Array.from({ length: 100 }, () => b.u32())).toEqual(xs);
    expect(new Set(xs).size).toBe(100);
  });

  test("a fuzz program is replayed identically from its seed", async () => {
    const one = await run("test/fuzz/api_fuzz.ts", ["7", "0", "60"]);
    const two = await run("test/fuzz/api_fuzz.ts", ["7", "0", "60"]);
    expect(one.code).toBe(0);
    expect(one.out).toBe(two.out);
  }, 60_000);

  test("a crash in the subprocess is reported with its seed", async () => {
    const r = await run("-e", ["console.log('seed 123'); process.kill(process.pid, 'SIGSEGV')"]);
    expect(() => verdict("x", r)).toThrow(/at seed 123[^]*MLXB_FUZZ_SEED=123/);
  });
});
