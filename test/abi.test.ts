// The C ABI contract: the header and the bun:ffi table describe the same functions, both
// follow the ABI rules, and the library exports them all. (The engine's own test checks that
// both files are exactly what engine/abi.zig generates.)
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ABI_VERSION, symbols } from "../ffi/symbols";
import { lib, MlxError } from "../ffi/lib";
import * as mx from "../src/index.ts";

const header = readFileSync(new URL("../ffi/mlxbun.h", import.meta.url), "utf8");

function cToFfi(c: string): string {
  const t = c.trim();
  if (t === "const char*") return "cstring";
  if (t.endsWith("*")) return "ptr";
  const map: Record<string, string> = { uint32_t: "u32", int32_t: "i32", double: "f64", void: "void" };
  const f = map[t];
  if (f === undefined) throw new Error(`unexpected C type ${t}`);
  return f;
}

const prototypes = [...header.matchAll(/^(.+?)\s*\bmlxb_(\w+)\((.*)\);$/gm)].map((m) => ({
  name: `mlxb_${m[2]}`,
  returns: cToFfi(m[1]!),
  args: m[3] === "void" ? [] : m[3]!.split(",").map((a) => cToFfi(a.trim().replace(/\s*\w+$/, ""))),
}));

describe("C ABI", () => {
  test("the header and the symbol table list the same functions with the same types", () => {
    expect(prototypes.length).toBeGreaterThan(40);
    expect(prototypes.map((p) => p.name).sort()).toEqual(Object.keys(symbols).sort());
    for (const p of prototypes) {
      const s = symbols[p.name as keyof typeof symbols];
      expect({ name: p.name, args: [...s.args] as string[], returns: s.returns as string }).toEqual(p);
    }
  });

  test("every function keeps to 8 integer/pointer and 8 float arguments, with names prefixed mlxb_", () => {
    for (const [name, s] of Object.entries(symbols)) {
      expect(name.startsWith("mlxb_")).toBe(true);
      const floats = s.args.filter((a) => a === "f64").length;
      expect(floats).toBeLessThanOrEqual(8);
      expect(s.args.length - floats).toBeLessThanOrEqual(8);
      expect(s.args as readonly string[]).not.toContain("u64");
      expect(s.args as readonly string[]).not.toContain("i64");
    }
  });

  test("the library exports every symbol and speaks this ABI version", () => {
    for (const name of Object.keys(symbols)) expect(typeof lib[name as keyof typeof lib]).toBe("function");
    expect(lib.mlxb_abi_version()).toBe(ABI_VERSION);
    expect(header).toContain(`#define MLXB_ABI_VERSION ${ABI_VERSION}`);
  });

  test("the header compiles as C and C++", async () => {
    for (const [cc, lang] of [["cc", "c"], ["c++", "c++"]] as const) {
      if (Bun.which(cc) === null) continue;
      const p = Bun.spawn([cc, "-fsyntax-only", "-Wall", "-Werror", "-x", lang, "ffi/mlxbun.h"], { stderr: "pipe" });
      expect({ cc, code: await p.exited, err: await new Response(p.stderr).text() }).toEqual({ cc, code: 0, err: "" });
    }
  });

  test("errors are pulled per thread and surface as MlxError with code and message", () => {
    expect(lib.mlxb_eye(-1, 2, 0, mx.float32.value, -1)).toBe(0);
    expect(lib.mlxb_last_error_code()).toBe(1);
    expect(String(lib.mlxb_last_error_message())).toBe("[eye] N and M must be positive integers.");
    lib.mlxb_clear_error();
    let err: unknown;
    try {
      mx.eye(-1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MlxError);
    expect(err).toBeInstanceOf(mx.MlxError);
    expect((err as MlxError).message).toBe("[eye] N and M must be positive integers.");
    expect((err as MlxError).code).toBe(1);
    expect((err as MlxError).codeName).toBe("invalid_argument");
    expect((err as MlxError).name).toBe("MlxError");
  });

  test("bad arguments through the raw ABI are errors, not crashes", () => {
    const shape = new Int32Array([2, 3]);
    expect(lib.mlxb_array_from_data(null, mx.float32.value, shape, 2, -1)).toBe(0);
    expect(String(lib.mlxb_last_error_message())).toBe("[array] The data pointer is null.");
    expect(lib.mlxb_array_from_data(new Float32Array(6), 99, shape, 2, -1)).toBe(0);
    expect(String(lib.mlxb_last_error_message())).toBe("[array] Unknown dtype 99.");
    expect(lib.mlxb_array_from_data(new Float32Array(6), mx.float32.value, null, 2, -1)).toBe(0);
    expect(String(lib.mlxb_last_error_message())).toBe("[array] The shape pointer is null.");
    expect(lib.mlxb_array_from_data(new Float32Array(6), mx.float32.value, shape, 40, -1)).toBe(0);
    expect(String(lib.mlxb_last_error_message())).toMatch(/^\[array\] Arrays of more than 32 dimensions/);
    expect(lib.mlxb_full(shape, 2, 0, -1, -1)).toBe(0);
    expect(String(lib.mlxb_last_error_message())).toBe("[full] Expected an array but got a null handle.");
    expect(lib.mlxb_eval(null, 3)).toBeLessThan(0);
    expect(String(lib.mlxb_last_error_message())).toBe("[eval] The handle list is null.");
    expect(lib.mlxb_ticket_state(123456)).toBe(-2);
    expect(lib.mlxb_set_default_device(7)).toBeLessThan(0);
    expect(String(lib.mlxb_last_error_message())).toBe("[set_default_device] Unknown device type 7.");
    expect(lib.mlxb_array_read(lib.mlxb_arange(0, 3, 1, 7, -1), null, 7)).toBeLessThan(0);
    expect(String(lib.mlxb_last_error_message())).toBe("[read] The destination pointer is null.");
    lib.mlxb_clear_error();
  });
});
