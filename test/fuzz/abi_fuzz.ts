// The C ABI fuzzer: random calls of every mlxb_ function through bun:ffi with raw arguments:
// valid handles of many dtypes and shapes, freed handles, handles whose slot was reused
// (generation mismatch), never-issued handles, 0; bad dtype, op, axis, mode and stream values;
// huge and negative shapes; null pointers; lists with bad entries; evals and async evals at
// random points. Every call must either succeed or return its failure value (0 or negative)
// with an error code and a message, never crash; the engine must stay usable.
// The argument names and C types come from ffi/mlxbun.h, so new ABI entries are fuzzed too.
//
//   bun test/fuzz/abi_fuzz.ts <seed> <budget seconds> [calls per round]
//
// Writes "seed N" before each round and "ok <rounds> <calls> <errors>" at the end; on a crash
// the parent (test/fuzz.test.ts) reports the seed. With MLXB_FUZZ_TRACE=1 it writes every call
// before making it (to find the call that crashed).
import * as mx from "../../src/index.ts";
import { lib } from "../../ffi/lib";
import { symbols } from "../../ffi/symbols";
import { mkdtempSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Rng } from "./rng";

type Kind = "handle" | "handles" | "ints" | "len" | "dtype" | "stream" | "int" | "double" | "cptr" | "skip";
interface Arg {
  name: string;
  ctype: string;
  kind: Kind;
}
interface Fn {
  name: string;
  args: Arg[];
  ret: string;
}

// Functions left out: they take raw host pointers the engine cannot validate (a DLPack struct,
// an engine buffer, a callback), change process-wide settings the run depends on, or only return constants.
const EXCLUDED = new Set([
  "mlxb_custom_set_vjp_callback", "mlxb_custom_set_vmap_callback", "mlxb_buffer_data", "mlxb_buffer_release",
  "mlxb_dlpack_import", "mlxb_dlpack_import_unversioned", "mlxb_dlpack_delete", "mlxb_array_wrap_data",
  "mlxb_set_memory_limit", "mlxb_set_cache_limit", "mlxb_gc_anchor", "mlxb_gc_finalizer", "mlxb_buffer_finalizer",
  "mlxb_lapack_hint", "mlxb_lapack_load", "mlxb_lapack_path", "mlxb_last_error_message", "mlxb_last_error_code",
  "mlxb_clear_error", "mlxb_abi_version", "mlxb_new_stream",
]);
const HANDLE_NAMES = new Set([
  "h", "a", "b", "c", "x", "y", "v", "w", "input", "weight", "condition", "key", "bytes", "update", "updates", "indices",
  "mask", "source", "values", "start", "scales", "biases", "sum", "max",
]);
const HANDLE_LISTS = new Set(["handles", "deps", "outputs", "primals", "cotangents", "placeholders", "batched", "arrays", "values"]);

// MLXB_FUZZ_SKIP=<regex>: leave out the functions it matches (to narrow down a failure).
const skip = process.env.MLXB_FUZZ_SKIP ? new RegExp(process.env.MLXB_FUZZ_SKIP) : null;

function parseHeader(): Fn[] {
  const text = readFileSync(new URL("../../ffi/mlxbun.h", import.meta.url), "utf8");
  const fns: Fn[] = [];
  for (const m of text.matchAll(/^([\w ]+\*?)\s*(mlxb_\w+)\(([^)]*)\);/gm)) {
    const name = m[2]!;
    if (!(name in symbols) || EXCLUDED.has(name) || (skip !== null && skip.test(name))) continue;
    const args: Arg[] = [];
    const parts = m[3]!.trim() === "void" ? [] : m[3]!.split(",").map((s) => s.trim());
    for (const p of parts) {
      const am = /^(.*?)(\w+)$/.exec(p)!;
      const ctype = am[1]!.trim();
      const an = am[2]!;
      let kind: Kind;
      if (ctype.includes("*")) {
        if (ctype.startsWith("const uint32_t") && (HANDLE_LISTS.has(an) || (an === "indices" && name !== "mlxb_split"))) kind = "handles";
        else if (ctype.startsWith("const int32_t") || ctype.startsWith("const void")) kind = "ints";
        else kind = "cptr";
      } else if (ctype === "double") kind = "double";
      else if (an === "stream" || an === "mode_stream") kind = "stream";
      else if (an === "dtype") kind = "dtype";
      else if (/^n[a-z_]*$|^ndim$|^len$/.test(an) && an !== "norm" && an !== "nn") kind = "len";
      else if (ctype === "uint32_t" && HANDLE_NAMES.has(an)) kind = "handle";
      else kind = "int";
      args.push({ name: an, ctype, kind });
    }
    fns.push({ name, args, ret: m[1]!.trim() });
  }
  return fns;
}

const INTERESTING = [0, 1, 2, 3, -1, -2, 4, 7, 8, 13, 14, 15, 64, 255, 1000, 65535, 2 ** 31 - 1, -(2 ** 31), 2 ** 30, 46341];
const DOUBLES = [0, 1, -1, 0.5, 3, 1e308, -1e308, Infinity, -Infinity, Number.NaN, 2 ** 53, 1e-300, 2 ** 64, 2 ** 62];

class Fuzzer {
  r: Rng;
  live: number[] = []; // handles we own
  freed: number[] = [];
  tickets: number[] = [];
  calls = 0;
  errors = 0;
  fns: Fn[];
  trace = !!process.env.MLXB_FUZZ_TRACE;
  constructor(seed: number, fns: Fn[]) {
    this.r = new Rng(seed);
    this.fns = fns;
  }
  int(): number {
    const r = this.r;
    return r.chance(0.7) ? r.pick(INTERESTING) : (r.u32() | 0);
  }
  handle(): number {
    const r = this.r;
    const k = r.int(100);
    if (k < 70 && this.live.length > 0) return r.pick(this.live);
    if (k < 82 && this.freed.length > 0) return r.pick(this.freed);
    if (k < 88) return 0;
    if (k < 94) return r.u32() & 0x7fffffff;
    // same slot, another generation
    if (this.live.length > 0) return (r.pick(this.live) ^ (1 << (21 + r.int(10)))) >>> 0;
    return r.u32() >>> 0;
  }
  /** A small array: a random shape (total size at most 4096), a random dtype. */
  seedArray(): void {
    const r = this.r;
    const nd = r.int(4);
    const shape = new Int32Array(Math.max(nd, 1));
    for (let i = 0; i < nd; i++) shape[i] = r.chance(0.1) ? 0 : r.range(1, 8);
    const dtype = r.int(14);
    const v = lib.mlxb_array_scalar(r.range(-3, 3), r.int(14), -1);
    const h = lib.mlxb_full(shape, nd, r.chance(0.3) && this.live.length > 0 ? r.pick(this.live) : v, dtype, -1);
    lib.mlxb_array_free(v);
    if (h !== 0) this.live.push(h);
    lib.mlxb_clear_error();
  }
  args(fn: Fn): { vals: unknown[]; keep: unknown[] } {
    const r = this.r;
    const vals: unknown[] = [];
    const keep: unknown[] = [];
    // One length for each (pointer, length) pair; every pointer gets a 64-entry buffer, so any
    // length up to 64 stays inside it.
    for (const a of fn.args) {
      switch (a.kind) {
        case "handle": vals.push(this.handle()); break;
        case "handles": {
          const n = 64;
          const buf = new Uint32Array(n);
          for (let i = 0; i < n; i++) buf[i] = r.chance(0.85) && this.live.length > 0 ? r.pick(this.live) : this.handle();
          vals.push(r.chance(0.05) ? null : buf);
          keep.push(buf);
          break;
        }
        case "ints": {
          const buf = new Int32Array(128); // also read as int64 strides by as_strided
          const small = r.chance(0.8);
          for (let i = 0; i < buf.length; i++) buf[i] = small ? r.range(-3, 6) : this.int();
          vals.push(r.chance(0.05) ? null : buf);
          keep.push(buf);
          break;
        }
        case "len": vals.push(r.chance(0.9) ? r.int(5) : r.int(65)); break;
        case "dtype": vals.push(r.chance(0.9) ? r.int(14) : this.int()); break;
        case "stream": vals.push(r.chance(0.9) ? -1 : r.pick([0, 1, 2, 99, -2, 2 ** 31 - 1])); break;
        case "double": vals.push(r.chance(0.6) ? r.range(-4, 8) : r.pick(DOUBLES)); break;
        case "int": vals.push(r.chance(0.6) ? r.range(-2, 5) : this.int()); break;
        case "cptr": {
          const buf = new Uint8Array(1 << 16);
          vals.push(buf);
          keep.push(buf);
          break;
        }
        default: vals.push(0);
      }
    }
    return { vals, keep };
  }
  call(fn: Fn): void {
    // Special cases: calls whose pointer arguments must match the handle's size.
    if (fn.name === "mlxb_array_read") {
      const h = this.handle();
      const nb = lib.mlxb_array_nbytes(h);
      lib.mlxb_clear_error();
      if (nb > 1 << 20) return;
      const buf = new Uint8Array(8 * nb + 16); // room for any dtype of the same count
      const dtype = this.r.int(14);
      if (this.trace) writeSync(1, `call mlxb_array_read(${h}, ${dtype})\n`);
      this.check(fn, lib.mlxb_array_read(h, buf, dtype), [h, "buf", dtype]);
      return;
    }
    if (fn.name === "mlxb_array_from_data") {
      const nd = this.r.int(4);
      const shape = new Int32Array(Math.max(nd, 1)).map(() => (this.r.chance(0.05) ? -1 : this.r.int(6)));
      const buf = new Uint8Array(8 * 6 ** 3 + 64);
      const h = lib.mlxb_array_from_data(buf, this.r.chance(0.9) ? this.r.int(14) : 99, shape, nd, -1);
      this.check(fn, h, ["buf", "shape", nd]);
      return;
    }
    // It writes a file at the path it is given: made-up tape ids, but only relative paths in the
    // scratch directory (a random buffer could name an absolute path anywhere).
    if (fn.name === "mlxb_compile_export") {
      const id = this.r.chance(0.5) ? this.r.int(8) : this.int();
      const path = new TextEncoder().encode(`tape-${this.r.int(4)}.mlxbfn`);
      if (this.trace) writeSync(1, `call mlxb_compile_export(${id}, tape path)\n`);
      this.check(fn, lib.mlxb_compile_export(id, path, path.length), [id, "path", path.length]);
      return;
    }
    const { vals, keep } = this.args(fn);
    if (this.trace) writeSync(1, `call ${fn.name}(${vals.map((v) => (ArrayBuffer.isView(v) ? `[${Array.from((v as Int32Array).slice(0, 8)).join(",")}...]` : String(v))).join(", ")})\n`);
    const f = (lib as any)[fn.name] as (...a: unknown[]) => unknown;
    const t0 = performance.now();
    const ret = f(...vals);
    void keep;
    const ms = performance.now() - t0;
    if (this.trace) writeSync(1, `  -> ${ret}\n`);
    if (this.trace && ms > 500) {
      const h = vals[0] as number;
      const dims = Array.from({ length: Math.max(0, lib.mlxb_array_ndim(h)) }, (_, i) => lib.mlxb_array_dim(h, i));
      writeSync(1, `slow: ${ms.toFixed(0)} ms; first argument: dtype ${lib.mlxb_array_dtype(h)} shape [${dims}]\n`);
    }
    this.check(fn, ret, vals);
  }
  check(fn: Fn, ret: unknown, vals: unknown[]): void {
    this.calls++;
    const code = lib.mlxb_last_error_code();
    const failed =
      (fn.ret === "uint32_t" && ret === 0 && !/^mlxb_(live_handles|is_tracing|results_take|external_next_released|compile_live)$/.test(fn.name)) ||
      // mlxb_cpu_level's -1 means "no run-time dispatch in this build", not a failure.
      (fn.ret === "int32_t" && typeof ret === "number" && ret < 0 && fn.name !== "mlxb_cpu_level") ||
      (fn.ret === "void*" && ret === null);
    if (failed) {
      this.errors++;
      const msg = String(lib.mlxb_last_error_message() ?? "");
      if (code === 0 || msg.length < 8) throw new Error(`${fn.name}(${vals.map(String).join(", ")}) failed with code ${code} and message "${msg}"`);
      lib.mlxb_clear_error();
      return;
    }
    lib.mlxb_clear_error();
    // Keep what it made.
    if (fn.ret === "uint32_t" && typeof ret === "number") {
      if (fn.name === "mlxb_async_eval") this.tickets.push(ret);
      else if (!/^mlxb_(live_handles|is_tracing|external_new_token|external_next_released)$/.test(fn.name)) {
        // A huge array (a broadcast view of billions of elements is cheap to build) is released at
        // once: a reduction over it would be valid but take minutes. Building it is the test.
        let size = 1;
        const nd = lib.mlxb_array_ndim(ret);
        for (let i = 0; i < nd; i++) size *= Math.max(0, lib.mlxb_array_dim(ret, i));
        if (nd >= 0 && size <= 1 << 22) this.live.push(ret);
        else lib.mlxb_array_free(ret);
        lib.mlxb_clear_error();
      }
    }
    if (fn.name === "mlxb_array_free" || fn.name === "mlxb_array_dispose") {
      const h = vals[0] as number;
      const i = this.live.indexOf(h);
      if (i >= 0) {
        this.live.splice(i, 1);
        if (!this.live.includes(h)) this.freed.push(h);
      }
    }
    if (fn.name === "mlxb_array_view_buffer" && ret !== null) lib.mlxb_buffer_release(ret as any);
    if ((fn.name === "mlxb_dlpack_export" || fn.name === "mlxb_dlpack_export_unversioned") && ret !== null) {
      lib.mlxb_dlpack_delete(ret as any, fn.name === "mlxb_dlpack_export" ? 1 : 0);
    }
  }
  round(n: number): void {
    for (let i = 0; i < 6; i++) this.seedArray();
    for (let i = 0; i < n; i++) {
      if (this.r.chance(0.1)) this.seedArray();
      const fn = this.r.pick(this.fns);
      this.call(fn);
      // Don't let the pool grow without bound: free the oldest handles.
      while (this.live.length > 200) {
        const h = this.live.shift()!;
        lib.mlxb_array_free(h);
        lib.mlxb_clear_error();
        this.freed.push(h);
      }
      if (this.freed.length > 200) this.freed.splice(0, 100);
    }
  }
  finish(): void {
    if (this.trace) writeSync(1, "finish\n");
    for (const t of this.tickets) {
      while (lib.mlxb_ticket_state(t) === 0) Bun.sleepSync(1);
      lib.mlxb_ticket_free(t);
    }
    lib.mlxb_clear_error();
    for (const h of this.live) lib.mlxb_array_free(h);
    lib.mlxb_clear_error();
    for (let i = 0; i < 10_000 && lib.mlxb_is_tracing(); i++) lib.mlxb_trace_end();
    lib.mlxb_set_default_stream(0);
    lib.mlxb_set_default_device(0);
    lib.mlxb_set_reference_mode(0);
    for (let h = lib.mlxb_results_take(0); h !== 0; h = lib.mlxb_results_take(0)) lib.mlxb_array_free(h);
    lib.mlxb_clear_error();
  }
}

if (import.meta.main) {
  // Calls such as mlxb_compile_export write files at made-up relative paths: run in a scratch
  // directory, removed at exit.
  const scratch = mkdtempSync(join(tmpdir(), "mlxb-abi-fuzz-"));
  process.chdir(scratch);
  process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
  const seed0 = Number(process.argv[2] ?? 1);
  const budget = Number(process.argv[3] ?? 10);
  const n = Number(process.argv[4] ?? 300);
  const say = (s: string) => writeSync(1, s + "\n");
  const fns = parseHeader();
  // Big allocations fail fast under a limit (and exercise the out-of-memory path).
  lib.mlxb_set_memory_limit(256 * 2 ** 20);
  const t0 = performance.now();
  let rounds = 0;
  let calls = 0;
  let errors = 0;
  const handles0 = lib.mlxb_live_handles();
  for (let seed = seed0; rounds === 0 || performance.now() - t0 < budget * 1000; seed++) {
    say(`seed ${seed}`);
    const f = new Fuzzer(seed, fns);
    try {
      f.round(n);
      f.finish();
    } catch (e) {
      say(`FAIL seed ${seed}: ${(e as Error).message}`);
      say(`replay: MLXB_FUZZ_SEED=${seed} MLXB_FUZZ_BUDGET=0 bun test test/fuzz.test.ts  (or: MLXB_FUZZ_TRACE=1 bun test/fuzz/abi_fuzz.ts ${seed} 0 ${n})`);
      process.exit(1);
    }
    // The engine is still usable.
    // (read through the TS API: bun:ffi may read a TypedArray the engine just wrote stale)
    const v = mx.sum(mx.arange(5)).item();
    if (v !== 10) {
      say(`FAIL seed ${seed}: the engine is not usable after the round: sum(arange(5)) = ${v}`);
      process.exit(1);
    }
    rounds++;
    calls += f.calls;
    errors += f.errors;
  }
  for (let i = 0; i < 5; i++) {
    Bun.gc(true);
    await Bun.sleep(1);
  }
  const leaked = lib.mlxb_live_handles() - handles0;
  say(`handles left: ${leaked}`);
  say(`ok ${rounds} ${calls} ${errors}`);
}
