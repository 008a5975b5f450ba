// GGUF quantized tensors. Oracle: MLX 0.32.4's mx.load on the same files (test/fixtures/io,
// made by gen_gguf_quants.py, which also checks MLX against gguf-py's dequantizers): the arrays
// it returns for each type it loads (bit-equal float16 for Q2_K, Q4_K and Q6_K; the affine triple
// for Q4_0, Q4_1 and Q8_0) and, for every other ggml type, that it refuses the file.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as mx from "../src/index.ts";
import { bytesOf, loadFixture, toHex, type Rec } from "./fixture.ts";

interface TypeRec {
  name: string;
  type: number;
  block: [number, number];
  mlx: string; // "loads", "drops", or MLX's error message
  dtypes?: Record<string, string>;
}
const fx = loadFixture<{ arrays: Record<string, Rec>; types: TypeRec[] }>("io/gguf_quants.json.gz");
const file = new URL("./fixtures/io/files/kquants.gguf", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "mlxbun-gguf-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;

// A GGUF v3 file built by hand: no metadata, alignment 32.
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
const u32 = (v: number): Uint8Array => new Uint8Array(new Uint32Array([v]).buffer);
const u64 = (v: number): Uint8Array => new Uint8Array(new BigUint64Array([BigInt(v)]).buffer);
const gstr = (s: string): Uint8Array => cat(u64(enc(s).byteLength), enc(s));
const pad32 = (b: Uint8Array): Uint8Array => cat(b, new Uint8Array((32 - (b.byteLength % 32)) % 32));
function gguf(tensors: [string, number[], number, Uint8Array][]): Uint8Array {
  let infos: Uint8Array = new Uint8Array(0);
  let data: Uint8Array = new Uint8Array(0);
  for (const [name, shape, type, raw] of tensors) {
    data = pad32(data);
    infos = cat(infos, gstr(name), u32(shape.length), ...[...shape].reverse().map(u64), u32(type), u64(data.byteLength));
    data = cat(data, raw);
  }
  return cat(pad32(cat(enc("GGUF"), u32(3), u64(tensors.length), u64(0), infos)), data);
}
/** `n` bytes whose float16 fields (anywhere) are finite: every odd byte below 0x78. */
const blocks = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) % (i % 2 ? 0x78 : 256));
function write(bytes: Uint8Array): string {
  const p = join(dir, `f${seq++}.gguf`);
  writeFileSync(p, bytes);
  return p;
}
function loadError(p: string): string {
  try {
    mx.load(p);
  } catch (e) {
    expect(e).toBeInstanceOf(mx.MlxError);
    return (e as Error).message;
  }
  throw new Error(`expected ${p} to fail`);
}

describe("gguf quantized types", () => {
  test("every tensor of kquants.gguf is bit-equal to what MLX loads (Q2_K, Q4_K, Q6_K as float16; Q4_0, Q4_1, Q8_0 as triples)", () => {
    const got = mx.load(file) as Record<string, mx.Array>;
    expect(Object.keys(got).sort()).toEqual(Object.keys(fx.arrays).sort());
    for (const [name, r] of Object.entries(fx.arrays)) {
      const a = got[name]!;
      expect([name, a.dtype.name, a.shape]).toEqual([name, r.dtype, r.shape]);
      expect([name, toHex(bytesOf(a))]).toEqual([name, r.hex]);
    }
  });

  test("the same from the file's contents in memory; decoding waits for evaluation", () => {
    const bytes = new Uint8Array(readFileSync(file));
    const got = mx.load(bytes, { format: "gguf" }) as Record<string, mx.Array>;
    for (const name of ["q2k.weight", "q4k.weight", "q6k", "q40.weight", "q40.scales"]) expect([name, got[name]!.evaluated]).toEqual([name, false]);
    for (const [name, r] of Object.entries(fx.arrays)) expect([name, toHex(bytesOf(got[name]!))]).toEqual([name, r.hex]);
  });

  test("each ggml type: loaded as MLX loads it, or refused (naming the file and the type) where MLX fails or drops it", () => {
    // Where mlx-bun differs on purpose: BF16 stays bfloat16, I64 and F64 load exactly.
    const ours: Record<string, string> = { BF16: "bfloat16", I64: "int64", F64: "float64" };
    for (const t of fx.types) {
      const [per, size] = t.block;
      const n = Math.max(256, per);
      const p = write(gguf([["w.weight", [2, n], t.type, blocks(((2 * n) / per) * size)]]));
      if (t.mlx === "loads" || ours[t.name] !== undefined) {
        const got = mx.load(p) as Record<string, mx.Array>;
        const dtypes: Record<string, string> = Object.fromEntries(Object.entries(got).map(([k, v]) => [k, v.dtype.name]));
        expect([t.name, dtypes]).toEqual([t.name, ours[t.name] !== undefined ? { "w.weight": ours[t.name]! } : t.dtypes!]);
        for (const v of Object.values(got)) mx.eval(v);
      } else {
        const msg = loadError(p);
        expect(msg).toStartWith("[load_gguf] ");
        expect(msg).toContain(p);
        expect(msg).toContain(`quantized type ${t.name}, which MLX does not load`);
      }
    }
  });

  test("a type past the ones known is refused, not dropped with the tensors after it (MLX returns only the tensors before it)", () => {
    const p = write(gguf([["a", [32], 0, new Uint8Array(128)], ["b", [256], 42, new Uint8Array(64)], ["c", [4], 0, new Uint8Array(16)]]));
    expect(loadError(p)).toContain("Tensor 'b' has unknown ggml type 42.");
  });

  const kTypes: [string, number, number][] = [["Q2_K", 10, 84], ["Q4_K", 12, 144], ["Q6_K", 14, 210]];
  test.each(kTypes)("%s: truncated data, rows not a multiple of the block of 256, a 0-d tensor", (name, type, size) => {
    // Two blocks but the last byte missing (MLX sizes Q2_K blocks as 82 bytes and misses 2 of them).
    expect(loadError(write(gguf([["t", [1, 512], type, blocks(2 * size - 1)]])))).toMatch(/Tensor 't' \(\d+ bytes at data offset 0\) extends past the end of the file/);
    if (type === 10) expect(loadError(write(gguf([["t", [1, 512], type, blocks(2 * 82)]])))).toContain("extends past the end of the file");
    // (2, 128): 256 weights, one block, but a block would straddle the two rows; MLX decodes it as one flat run.
    expect(loadError(write(gguf([["t", [2, 128], type, blocks(size)]])))).toContain(
      `Tensor 't' of type ${name} has shape (2, 128): its rows must be a multiple of the type's block of 256 weights.`,
    );
    expect(loadError(write(gguf([["t", [100], type, blocks(size)]])))).toContain("rows must be a multiple");
    expect(loadError(write(gguf([["t", [], type, blocks(size)]])))).toContain(`Tensor 't' of type ${name} has shape ()`);
    // Empty: loads as an empty float16 array, as MLX.
    const e = mx.load(write(gguf([["t", [0, 256], type, new Uint8Array(0)]]))) as Record<string, mx.Array>;
    expect([e.t!.dtype.name, e.t!.shape]).toEqual(["float16", [0, 256]]);
  });

  test("Q4_0, Q4_1, Q8_0 keep MLX's check and message for the last dimension", () => {
    for (const [name, type] of [["Q4_0", 2], ["Q4_1", 3], ["Q8_0", 8]] as const) {
      expect(loadError(write(gguf([["t", [4, 16], type, blocks(64)]])))).toContain(`Tensor 't' of type ${name} has incompatible last dim shape: 16.`);
    }
  });
});
