// Saving and loading: .npy, .npz, .safetensors, .gguf. Oracles: files written by NumPy, MLX
// 0.32.4 and the reference safetensors writer (test/fixtures/io/files, made by gen_io.py) with the
// arrays they hold; the bytes numpy.save, zipfile, safetensors and mx.save_gguf write for given
// arrays; round trips; and a table of corrupted files that must each fail with an MlxError.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import * as mx from "../src/index.ts";
import { npyHeader } from "../src/io/npy.ts";
import { crc32, writeZip } from "../src/io/zip.ts";
import { arrayOf, bytesOf, fromHex, loadFixture, toHex, type Rec } from "./fixture.ts";

interface FileRec {
  arrays: Record<string, Rec>;
  metadata: Record<string, string | string[] | Rec> | null;
}
interface Fixture {
  files: Record<string, FileRec>;
  writers: {
    npy: { array: Rec; transpose?: boolean; bytes: string }[];
    npz: { arrays: Record<string, Rec>; bytes: string };
    safetensors: { arrays: Record<string, Rec>; metadata: Record<string, string> | null; bytes: string }[];
    gguf: { arrays: Record<string, Rec>; metadata: Record<string, string | string[] | Rec> | null; bytes: string }[];
  };
}

const fx = loadFixture<Fixture>("io/io.json.gz");
const filesDir = new URL("./fixtures/io/files/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "mlxbun-io-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const tmp = (ext: string): string => join(dir, `f${seq++}${ext}`);

function expectArray(a: mx.Array, r: Rec): void {
  expect(a).toBeInstanceOf(mx.Array);
  expect(a.dtype.name).toBe(r.dtype);
  expect(a.shape).toEqual(r.shape);
  expect(toHex(bytesOf(a))).toBe(r.hex);
}

function expectSame(a: mx.Array, b: mx.Array): void {
  expect(a.dtype).toBe(b.dtype);
  expect(a.shape).toEqual(b.shape);
  expect(toHex(bytesOf(a))).toBe(toHex(bytesOf(b)));
}

function expectMeta(got: unknown, want: Record<string, string | string[] | Rec>): void {
  const g = got as Record<string, unknown>;
  expect(Object.keys(g).sort()).toEqual(Object.keys(want).sort());
  for (const [k, v] of Object.entries(want)) {
    if (typeof v === "string" || Array.isArray(v)) expect(g[k]).toEqual(v);
    else expectArray(g[k] as mx.Array, v);
  }
}

/** An array of every dtype with varied values (including negative, fractional, NaN-free). */
function sample(dtype: mx.Dtype, shape: number[]): mx.Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const base = mx.arange(n).astype(mx.float32).mul(7.25).sub(n * 2).reshape(shape);
  if (dtype === mx.bool) return base.greater(0);
  if (dtype === mx.complex64) return base.astype(mx.complex64).add(mx.array({ re: 0, im: 1 }).mul(base.astype(mx.complex64)));
  return base.astype(dtype);
}

const allDtypes = mx.dtypes;
const shapes: number[][] = [[2, 3], [], [0, 3], [5], [2, 1, 3, 2]];

// ------------------------------------------------------------------------------------------
describe("files written by NumPy, MLX and the reference safetensors writer", () => {
  for (const [name, rec] of Object.entries(fx.files)) {
    test(name, () => {
      const path = filesDir + name;
      if (name.endsWith(".npy")) {
        expectArray(mx.load(path) as mx.Array, rec.arrays[""]!);
        return;
      }
      const hasMeta = name.endsWith(".safetensors") || name.endsWith(".gguf");
      const [arrays, meta] = hasMeta
        ? mx.load(path, { returnMetadata: true })
        : [mx.load(path) as Record<string, mx.Array>, null];
      expect(Object.keys(arrays).sort()).toEqual(Object.keys(rec.arrays).sort());
      for (const [k, r] of Object.entries(rec.arrays)) expectArray(arrays[k]!, r);
      if (hasMeta) expectMeta(meta, rec.metadata ?? {});
    });
  }

  test("a Fortran-order file loads as the logical array (a transposed view)", () => {
    const a = mx.load(filesDir + "np_fortran.npy") as mx.Array;
    expect(a.shape).toEqual([2, 3, 4]);
    expect(a.index(1, 2, 3).item()).toBe(23);
  });

  test("format option overrides the extension", () => {
    const p = tmp(".bin");
    writeFileSync(p, readFileSync(filesDir + "np_int32.npy"));
    expectArray(mx.load(p, { format: "npy" }) as mx.Array, fx.files["np_int32.npy"]!.arrays[""]!);
  });
});

// ------------------------------------------------------------------------------------------
describe("our bytes equal the reference writers' bytes", () => {
  test("npy: numpy.save of every NumPy dtype and shape, and of a transposed array", () => {
    for (const c of fx.writers.npy) {
      let a = arrayOf(c.array);
      if (c.transpose) a = a.T;
      const p = tmp(".npy");
      mx.save(p, a);
      expect(toHex(new Uint8Array(readFileSync(p)))).toBe(c.bytes);
    }
  });

  test("npz (stored): Python's zipfile with numpy.save members", () => {
    const arrays = Object.fromEntries(Object.entries(fx.writers.npz.arrays).map(([k, r]) => [k, arrayOf(r)]));
    const p = tmp(".npz");
    const { arr_0, ...named } = arrays;
    mx.savez(p, arr_0!, named);
    expect(toHex(new Uint8Array(readFileSync(p)))).toBe(fx.writers.npz.bytes);
  });

  test("safetensors: the reference writer (layout, padding, metadata), bfloat16 included", () => {
    for (const c of fx.writers.safetensors) {
      const arrays = Object.fromEntries(Object.entries(c.arrays).map(([k, r]) => [k, arrayOf(r)]));
      const p = tmp(".safetensors");
      mx.saveSafetensors(p, arrays, c.metadata ?? undefined);
      expect(toHex(new Uint8Array(readFileSync(p)))).toBe(c.bytes);
    }
  });

  test("gguf: mx.save_gguf for one tensor of each dtype and each kind of metadata", () => {
    for (const c of fx.writers.gguf) {
      const arrays = Object.fromEntries(Object.entries(c.arrays).map(([k, r]) => [k, arrayOf(r)]));
      const meta = c.metadata === null ? undefined : Object.fromEntries(
        Object.entries(c.metadata).map(([k, v]) => [k, typeof v === "string" || Array.isArray(v) ? v : arrayOf(v)]),
      );
      const p = tmp(".gguf");
      mx.saveGguf(p, arrays, meta);
      expect(toHex(new Uint8Array(readFileSync(p)))).toBe(c.bytes);
    }
  });

  test("crc32 matches the standard check value and Bun's zlib-compatible CRC", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    const data = new Uint8Array(10007).map((_, i) => (i * 131 + 7) & 255);
    expect(crc32(data)).toBe(Bun.hash.crc32(data));
    expect(crc32(data.subarray(5000), crc32(data.subarray(0, 5000)))).toBe(Bun.hash.crc32(data));
    expect(crc32(data.subarray(3, 9001))).toBe(Bun.hash.crc32(data.subarray(3, 9001)));
  });
});

// ------------------------------------------------------------------------------------------
describe("round trips", () => {
  const formats: [string, (p: string, arrays: Record<string, mx.Array>) => void, string][] = [
    ["npz", (p, a) => mx.savez(p, a), ".npz"],
    ["npz compressed", (p, a) => mx.savezCompressed(p, a), ".npz"],
    ["safetensors", (p, a) => mx.saveSafetensors(p, a), ".safetensors"],
  ];
  for (const dtype of allDtypes) {
    test(`npy ${dtype.name}: plain, 0-d, empty, 1-d, 4-d, transposed, strided`, () => {
      const cases = [...shapes.map((s) => sample(dtype, s)), sample(dtype, [3, 4]).T, sample(dtype, [4, 6]).index(mx.sl(null, null, 2), mx.sl(1, null, 3))];
      for (const a of cases) {
        const p = tmp(".npy");
        mx.save(p, a);
        expectSame(mx.load(p) as mx.Array, a);
      }
    });
    for (const [fname, saver, ext] of formats) {
      test(`${fname} ${dtype.name}`, () => {
        const arrays: Record<string, mx.Array> = {};
        shapes.forEach((s, i) => (arrays[`s${i}`] = sample(dtype, s)));
        arrays.t = sample(dtype, [3, 4]).T;
        const p = tmp(ext);
        saver(p, arrays);
        const back = mx.load(p) as Record<string, mx.Array>;
        expect(Object.keys(back).sort()).toEqual(Object.keys(arrays).sort());
        for (const k of Object.keys(arrays)) expectSame(back[k]!, arrays[k]!);
      });
    }
  }

  test("gguf: float32, float16, int8, int16, int32 (0-d, empty, transposed) with every metadata kind", () => {
    const arrays: Record<string, mx.Array> = {};
    for (const d of [mx.float32, mx.float16, mx.int8, mx.int16, mx.int32]) {
      shapes.forEach((s, i) => (arrays[`${d.name}_${i}`] = sample(d, s)));
      arrays[`${d.name}_t`] = sample(d, [3, 4]).T;
    }
    const meta: Record<string, mx.GgufMetadataValue> = { name: "ü", list: ["a", "", "b"], empty: [] };
    for (const d of [mx.float32, mx.int64, mx.int32, mx.int16, mx.int8, mx.uint64, mx.uint32, mx.uint16, mx.uint8, mx.bool]) {
      meta[`s_${d.name}`] = sample(d, []).add(d === mx.bool ? false : 3).astype(d);
      meta[`v_${d.name}`] = sample(d, [3]).abs().astype(d);
    }
    const p = tmp(".gguf");
    mx.saveGguf(p, arrays, meta);
    const [back, bm] = mx.load(p, { returnMetadata: true, format: "gguf" });
    for (const k of Object.keys(arrays)) expectSame(back[k]!, arrays[k]!);
    expect(Object.keys(bm).sort()).toEqual(Object.keys(meta).sort());
    for (const [k, v] of Object.entries(meta)) {
      if (v instanceof mx.Array) expectSame(bm[k] as mx.Array, v);
      else expect(bm[k]).toEqual(v);
    }
  });

  test("gguf: a general.alignment in the metadata lays the data out by it", () => {
    const p = tmp(".gguf");
    const a = mx.arange(3).astype(mx.int8);
    const b = mx.arange(5).astype(mx.float32);
    mx.saveGguf(p, { a, b }, { "general.alignment": mx.array(128, mx.uint32) });
    const bytes = new Uint8Array(readFileSync(p));
    const [back] = mx.load(p, { returnMetadata: true });
    expectSame(back.a!, a);
    expectSame(back.b!, b);
    expect(bytes.byteLength % 128).toBe(20); // b starts at a multiple of 128
    expect(toHex(bytes.subarray(bytes.byteLength - 20))).toBe(toHex(bytesOf(b)));
    expect(() => mx.saveGguf(tmp(".gguf"), { a }, { "general.alignment": mx.array(24, mx.uint32) })).toThrow("[save_gguf] general.alignment must be");
  });

  test("safetensors metadata round trip, and its absence gives {}", () => {
    const p = tmp(".safetensors");
    mx.saveSafetensors(p, { a: mx.arange(3) }, { "a key": "a \"value\"\n", ü: "✓" });
    expect(mx.load(p, { returnMetadata: true })[1]).toEqual({ "a key": "a \"value\"\n", ü: "✓" });
    const q = tmp(".safetensors");
    mx.saveSafetensors(q, { a: mx.arange(3) });
    expect(mx.load(q, { returnMetadata: true })[1]).toEqual({});
  });

  test("names that look like prototype keys stay plain entries", () => {
    const p = tmp(".safetensors");
    mx.saveSafetensors(p, JSON.parse('{"__proto__": 1, "constructor": 2}', (_k, v) => (typeof v === "number" ? mx.array(v) : v)));
    const back = mx.load(p) as Record<string, mx.Array>;
    expect(Object.keys(back).sort()).toEqual(["__proto__", "constructor"]);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
  });

  test("extensions are appended as MLX does", () => {
    const base = join(dir, "noext");
    mx.save(base, mx.arange(2));
    mx.savez(base, mx.arange(2));
    mx.saveSafetensors(base, { a: mx.arange(2) });
    mx.saveGguf(base, { a: mx.arange(2) });
    for (const ext of [".npy", ".npz", ".safetensors", ".gguf"]) expect(readFileSync(base + ext).byteLength).toBeGreaterThan(0);
  });

  test("ZIP64 records (sizes and offsets in the extra fields, ZIP64 end records) read back", () => {
    const a = mx.arange(10).astype(mx.float32);
    const b = mx.arange(3).astype(mx.int8);
    for (const compress of [false, true]) {
      const members = Object.entries({ a, b }).map(([k, v]) => ({ name: `${k}.npy`, parts: [npyHeader(v.dtype, v.shape), bytesOf(v)] }));
      const bytes = cat(...writeZip(members, compress, true));
      expect(new DataView(bytes.buffer).getUint32(bytes.byteLength - 22 - 20, true)).toBe(0x07064b50); // the ZIP64 locator
      const p = tmp(".npz");
      writeFileSync(p, bytes);
      const back = mx.load(p) as Record<string, mx.Array>;
      expectSame(back.a!, a);
      expectSame(back.b!, b);
    }
  });

  test("savez: positional arrays are arr_0, arr_1, ...; a keyword clashing with one fails as MLX", () => {
    const p = tmp(".npz");
    mx.savez(p, mx.array(1), mx.array(2), { w: mx.array(3) });
    expect(Object.keys(mx.load(p) as object).sort()).toEqual(["arr_0", "arr_1", "w"]);
    expect(() => mx.savez(tmp(".npz"), mx.array(1), { arr_0: mx.array(2) })).toThrow("[savez] Cannot use un-named variables and keyword arr_0");
  });
});

// ------------------------------------------------------------------------------------------
describe("loading is memory-mapped and zero-copy", () => {
  test("a large aligned file costs no engine memory until used, and the mapping outlives the file name", async () => {
    const n = 8 << 20; // 32 MiB of float32
    const a = mx.arange(n).astype(mx.float32);
    const p = tmp(".safetensors");
    mx.saveSafetensors(p, { a, b: mx.arange(7).astype(mx.int8) });
    const expected = mx.sum(a).item();
    a.dispose();
    // Let earlier tests' garbage be collected and finalized now: arrays collected during the
    // load below would otherwise hand their wrapped buffers back mid-measurement.
    Bun.gc(true);
    await Bun.sleep(0);
    Bun.gc(true);
    mx.clearCache();
    const before = mx.getActiveMemory();
    const wrappedBefore = mx.getWrappedHostBufferCount();
    const back = mx.load(p) as Record<string, mx.Array>;
    expect(mx.getActiveMemory() - before).toBeLessThan(1 << 20);
    expect(mx.getWrappedHostBufferCount()).toBe(wrappedBefore + 2);
    unlinkSync(p); // the mapping keeps the data
    Bun.gc(true);
    expect(mx.sum(back.a!).item()).toBe(expected);
    expect(Array.from(back.b!.toTypedArray() as Int8Array)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  test("saving over the file the arrays were loaded from is safe (written to a new file, then renamed)", () => {
    const p = tmp(".npy");
    mx.save(p, mx.arange(1000));
    const a = mx.load(p) as mx.Array;
    mx.save(p, a.add(1));
    expect(a.index(999).item()).toBe(999);
    expect((mx.load(p) as mx.Array).index(999).item()).toBe(1000);
    mx.save(p, a); // the array itself is a view of the replaced file
    expect((mx.load(p) as mx.Array).index(999).item()).toBe(999);
  });

  test("unaligned data (MLX's .npy and safetensors layouts) and big-endian data are copied, not misread", () => {
    const a = mx.load(filesDir + "mlx_complex64.npy") as mx.Array;
    expectArray(a, fx.files["mlx_complex64.npy"]!.arrays[""]!);
    expectArray(mx.load(filesDir + "np_be_c8.npy") as mx.Array, fx.files["np_be_c8.npy"]!.arrays[""]!);
  });

  test("misaligned and big-endian tensors load lazily too: copied only when evaluated", () => {
    // A safetensors file whose header length (8 + 13) puts a float32 tensor at an odd offset,
    // as MLX's writer does; and a big-endian .npy.
    const n = 1 << 20;
    const header = enc(`{"a":{"dtype":"F32","shape":[${n}],"data_offsets":[0,${4 * n}]}}`);
    const data = new Float32Array(n).map((_, i) => i * 0.5);
    const p = tmp(".safetensors");
    writeFileSync(p, cat(u64(header.byteLength), header, new Uint8Array(data.buffer)));
    expect((8 + header.byteLength) % 4).not.toBe(0);
    const q = tmp(".npy");
    writeFileSync(q, npyWith("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array([0, 0, 1, 2, 0xff, 0xff, 0xff, 0xfe])));
    mx.clearCache();
    const before = mx.getActiveMemory();
    const { a } = mx.load(p) as Record<string, mx.Array>;
    const be = mx.load(q) as mx.Array;
    expect(mx.getActiveMemory() - before).toBeLessThan(1 << 16); // nothing copied yet
    expect(mx.getActiveMemory() - before).toBeGreaterThanOrEqual(0);
    // Nothing was read yet: bytes changed in the file now (in place) are what evaluation sees,
    // as with MLX's lazy loads. (Linux shares untouched private-mapping pages with the file.)
    const fd = openSync(p, "r+");
    writeSync(fd, new Uint8Array(new Float32Array([42]).buffer), 0, 4, 8 + header.byteLength);
    closeSync(fd);
    data[0] = 42;
    expect(a!.index(n - 1).item()).toBe((n - 1) * 0.5);
    expect(Array.from(be.toTypedArray() as Int32Array)).toEqual([258, -2]);
    expect(Buffer.compare(bytesOf(a!), new Uint8Array(data.buffer))).toBe(0);
  });

  test("bool bytes other than 0 and 1 load as true (never as an invalid engine bool)", () => {
    const p = tmp(".safetensors");
    writeFileSync(p, stWith({ m: { dtype: "BOOL", shape: [4], data_offsets: [0, 4] } }, new Uint8Array([0, 1, 2, 255])));
    const { m } = mx.load(p) as Record<string, mx.Array>;
    expect(m!.dtype).toBe(mx.bool);
    expect(m!.tolist()).toEqual([false, true, true, true]);
    expect(mx.sum(m!).item()).toBe(3);
  });

  test("loaded arrays compute like any other (grad through a loaded weight)", () => {
    const p = tmp(".npz");
    mx.savez(p, { w: mx.array([1, 2, 3], mx.float32) });
    const { w } = mx.load(p) as Record<string, mx.Array>;
    const g = mx.grad((x: mx.Array) => mx.sum(x.mul(x)))(w!) as mx.Array;
    expect(Array.from(g.toTypedArray() as Float32Array)).toEqual([2, 4, 6]);
  });
});

// ------------------------------------------------------------------------------------------
// Corrupted files: every one must fail with an MlxError naming the op and the file, never crash.
function expectLoadError(bytes: Uint8Array, ext: string, pattern?: RegExp | string): void {
  const p = tmp(ext);
  writeFileSync(p, bytes);
  let err: unknown;
  try {
    mx.load(p, ext === ".safetensors" || ext === ".gguf" ? { returnMetadata: true } : {});
  } catch (e) {
    err = e;
  }
  if (!(err instanceof mx.MlxError)) throw new Error(`expected an MlxError for ${p}, got ${err === undefined ? "success" : String(err)}`);
  expect(err.message).toMatch(/^\[load(_safetensors|_gguf)?\] /);
  expect(err.message).toContain(p);
  if (pattern !== undefined) expect(err.message).toMatch(pattern);
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
function written(ext: string, save: (p: string) => void): Uint8Array {
  const p = tmp(ext);
  save(p);
  return new Uint8Array(readFileSync(p));
}
function patched(bytes: Uint8Array, at: number, values: number[] | Uint8Array): Uint8Array {
  const b = bytes.slice();
  b.set(values, at);
  return b;
}
function npyWith(header: string, data = new Uint8Array(0)): Uint8Array {
  const h = enc(header + "\n");
  const len = new Uint8Array(2);
  new DataView(len.buffer).setUint16(0, h.byteLength, true);
  return cat(new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]), len, h, data);
}
function stWith(header: unknown, data: Uint8Array): Uint8Array {
  const h = enc(typeof header === "string" ? header : JSON.stringify(header));
  return cat(u64(h.byteLength), h, data);
}

describe("corrupted files fail with a clear MlxError", () => {
  const good = {
    npy: written(".npy", (p) => mx.save(p, mx.arange(12).reshape([3, 4]))),
    npz: written(".npz", (p) => mx.savez(p, { a: mx.arange(5), b: mx.ones([2, 2]) })),
    npzc: written(".npz", (p) => mx.savezCompressed(p, { a: mx.arange(50), b: mx.ones([2, 2]) })),
    st: written(".safetensors", (p) => mx.saveSafetensors(p, { a: mx.arange(5), b: mx.ones([2, 2], mx.float16) }, { k: "v" })),
    gguf: written(".gguf", (p) => mx.saveGguf(p, { a: mx.arange(5), b: mx.ones([2, 2], mx.float16) }, { k: "v", l: ["x"], n: mx.array([1, 2]) })),
  };
  const exts: Record<keyof typeof good, string> = { npy: ".npy", npz: ".npz", npzc: ".npz", st: ".safetensors", gguf: ".gguf" };

  for (const [k, bytes] of Object.entries(good) as [keyof typeof good, Uint8Array][]) {
    test(`${k}: truncated at every length`, () => {
      for (let n = 0; n < bytes.byteLength; n++) expectLoadError(bytes.subarray(0, n), exts[k]);
    });
    test(`${k}: random byte corruption either loads or fails with an MlxError`, () => {
      let seed = 12345;
      const rand = (m: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % m;
      for (let t = 0; t < 300; t++) {
        const b = bytes.slice();
        for (let j = 0; j < 1 + rand(3); j++) b[rand(b.byteLength)] = rand(256);
        const p = tmp(exts[k]);
        writeFileSync(p, b);
        try {
          const r = mx.load(p);
          mx.eval(...(r instanceof mx.Array ? [r] : Object.values(r as Record<string, mx.Array>)));
        } catch (e) {
          if (!(e instanceof mx.MlxError)) throw e;
          expect(e.message).toContain(p);
        }
      }
    });
  }

  const npyCases: [string, Uint8Array, RegExp][] = [
    ["bad magic", patched(good.npy, 1, [0x58]), /magic/],
    ["version 4.0", patched(good.npy, 6, [4]), /version 4\.0/],
    ["header length past the end", patched(good.npy, 8, [0xff, 0xff]), /header is 65535 bytes long/],
    ["v2 header length of 4 GiB", patched(patched(good.npy, 6, [2]), 8, [0xff, 0xff, 0xff, 0xff]), /exceeds the limit/],
    ["object dtype", npyWith("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)), /type-string: \|O/],
    ["unicode dtype", npyWith("{'descr': '<U2', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)), /type-string: <U2/],
    ["complex128", npyWith("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(16)), /type-string: <c16/],
    ["structured dtype", npyWith("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)), /Invalid \.npy header/],
    ["missing key", npyWith("{'descr': '<f4', 'shape': (1,), }", new Uint8Array(4)), /expected the keys/],
    ["extra key", npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1, }", new Uint8Array(4)), /expected the keys/],
    ["not a dict", npyWith("[1, 2]", new Uint8Array(4)), /expected '\{'/],
    ["negative dimension", npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", new Uint8Array(4)), /expected an integer/],
    ["shape larger than the data", npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", new Uint8Array(20)), /needs 24 bytes but only 20/],
    ["astronomical shape", npyWith("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"), /larger than the maximum|impossibly large/],
    ["fortran_order not a bool", npyWith("{'descr': '<f4', 'fortran_order': 1, 'shape': (1,), }", new Uint8Array(4)), /fortran_order/],
  ];
  test.each(npyCases)("npy: %s", (_n, bytes, re) => expectLoadError(bytes, ".npy", re));

  // The central directory of good.npz: find it through the end record.
  const npz = good.npz;
  const eocd = npz.byteLength - 22;
  const cdOff = new DataView(npz.buffer).getUint32(eocd + 16, true);
  const npzc = good.npzc;
  const cdOffC = new DataView(npzc.buffer).getUint32(npzc.byteLength - 22 + 16, true);
  const npzCases: [string, Uint8Array, Uint8Array, RegExp][] = [
    ["no end record", npz, npz.slice(0, eocd), /no end of central directory/],
    ["central directory out of range", npz, patched(npz, eocd + 16, [0xff, 0xff, 0xff, 0x00]), /central directory/],
    ["member count lying", npz, patched(npz, eocd + 10, [0xff, 0x00]), /claims 255 members/],
    ["local header offset out of range", npz, patched(npz, cdOff + 42, [0xff, 0xff, 0xff, 0x00]), /no local header/],
    ["member size past the end", npz, patched(patched(npz, cdOff + 20, [0xff, 0xff, 0, 0]), cdOff + 24, [0xff, 0xff, 0, 0]), /extends past the end/],
    ["overlapping members", npz, patched(npz, cdOff + 46 + 5 + 42, [0, 0, 0, 0]), /overlap/],
    ["stored sizes disagree", npz, patched(npz, cdOff + 20, [1, 0, 0, 0]), /compressed size 1 but size/],
    ["unknown compression method", npz, patched(npz, cdOff + 10, [12, 0]), /compression method 12/],
    ["encrypted member", npz, patched(npz, cdOff + 8, [1, 0]), /encrypted/],
    ["CRC mismatch in a deflated member", npzc, patched(npzc, cdOffC + 16, [0, 0, 0, 0]), /CRC-32/],
    ["deflated size lying", npzc, patched(npzc, cdOffC + 24, [7, 0, 0, 0]), /inflate/],
    ["garbage deflate stream", npzc, patched(npzc, 30 + 5, new Uint8Array(20).fill(0xff)), /inflate|CRC/],
    ["member that is not a .npy", npz, patched(npz, 30 + 5, [0x00]), /magic/],
  ];
  test.each(npzCases)("npz: %s", (_n, _base, bytes, re) => expectLoadError(bytes, ".npz", re));

  const four = new Uint8Array(16);
  const stCases: [string, Uint8Array, RegExp][] = [
    ["header length 0", cat(u64(0), four), /Invalid json header length 0/],
    ["header length 1e8", cat(u64(100_000_000), four), /Invalid json header length/],
    ["header length past the end", cat(u64(64), enc("{}")), /The JSON header is 64 bytes long but the file is only 10 bytes/],
    ["header length 2^63", cat(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0x80]), four), /impossibly large/],
    ["invalid JSON", stWith("{]", four), /Invalid JSON header/],
    ["not UTF-8", cat(u64(3), new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/],
    ["not an object", stWith("[1]", new Uint8Array(0)), /not a JSON object/],
    ["unknown dtype", stWith({ a: { dtype: "X9", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unsupported dtype X9/],
    ["missing dtype", stWith({ a: { shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /no dtype/],
    ["bad shape", stWith({ a: { dtype: "U8", shape: [-1], data_offsets: [0, 1] } }, new Uint8Array(1)), /invalid shape/],
    ["bad offsets", stWith({ a: { dtype: "U8", shape: [1], data_offsets: [0] } }, new Uint8Array(1)), /invalid data_offsets/],
    ["offsets backwards", stWith({ a: { dtype: "U8", shape: [0], data_offsets: [1, 0] } }, new Uint8Array(1)), /end before they begin/],
    ["size mismatch", stWith({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), /needs 8 bytes/],
    ["offsets past the buffer", stWith({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(6)), /past the end of the 6-byte data buffer/],
    ["overlapping tensors", stWith({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /overlaps/],
    ["hole", stWith({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /hole/],
    ["trailing bytes", stWith({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8)), /cover 4 bytes but the data buffer holds 8/],
    ["huge shape", stWith({ a: { dtype: "F32", shape: [2 ** 31, 2 ** 31], data_offsets: [0, 4] } }, new Uint8Array(4)), /larger than the maximum|impossibly large/],
    ["non-string metadata", stWith({ __metadata__: { k: 1 } }, new Uint8Array(0)), /values must be strings/],
  ];
  test.each(stCases)("safetensors: %s", (_n, bytes, re) => expectLoadError(bytes, ".safetensors", re));

  // GGUF built by hand: header, kvs, tensor infos, data at 32.
  function gstr(s: string): Uint8Array {
    return cat(u64(enc(s).byteLength), enc(s));
  }
  function u32(n: number): Uint8Array {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    return b;
  }
  function gguf(nT: number, nKv: number, body: Uint8Array, data = new Uint8Array(0)): Uint8Array {
    const head = cat(enc("GGUF"), u32(3), u64(nT), u64(nKv), body);
    return cat(head, new Uint8Array((32 - (head.byteLength % 32)) % 32), data);
  }
  const info = (name: string, dims: number[], type: number, off: number): Uint8Array =>
    cat(gstr(name), u32(dims.length), ...dims.map(u64), u32(type), u64(off));
  const ggCases: [string, Uint8Array, RegExp][] = [
    ["bad magic", patched(good.gguf, 0, enc("GGUX")), /GGUF magic/],
    ["version 1", patched(good.gguf, 4, [1]), /version 1/],
    ["tensor count lying", patched(good.gguf, 8, [0xff, 0xff, 0xff, 0]), /more than the .*file can hold/],
    ["metadata count 2^60", patched(good.gguf, 16, u64(2 ** 52)), /more than the .*file can hold/],
    ["key length past the end", gguf(0, 1, cat(u64(1000), enc("k"))), /extends past the end/],
    ["unknown value type", gguf(0, 1, cat(gstr("k"), u32(77), u32(0))), /unknown value type 77/],
    ["nested arrays", gguf(0, 1, cat(gstr("k"), u32(9), u32(9), u64(1))), /nested arrays/],
    ["array count past the end", gguf(0, 1, cat(gstr("k"), u32(9), u32(6), u64(2 ** 40))), /extends past the end/],
    ["string array count past the end", gguf(0, 1, cat(gstr("k"), u32(9), u32(8), u64(2 ** 40))), /extends past the end/],
    ["bool neither 0 nor 1", gguf(0, 1, cat(gstr("k"), u32(7), new Uint8Array([2]))), /neither 0 nor 1/],
    ["alignment not a power of two", gguf(0, 1, cat(gstr("general.alignment"), u32(4), u32(24))), /power of two/],
    ["alignment of the wrong type", gguf(0, 1, cat(gstr("general.alignment"), u32(5), u32(32))), /must be a uint32/],
    ["too many dimensions", gguf(1, 0, info("t", [1, 1, 1, 1, 1, 1, 1, 1, 1], 0, 0)), /9 dimensions/],
    ["unknown tensor type", gguf(1, 0, info("t", [2], 99, 0), new Uint8Array(8)), /unknown ggml type 99/],
    ["unsupported quantized type", gguf(1, 0, info("t", [32], 6, 0), new Uint8Array(22)), /quantized type Q5_0, which MLX does not load/],
    ["quantized last dim not a multiple of 32", gguf(1, 0, info("t", [16, 2], 2, 0), new Uint8Array(18)), /incompatible last dim shape: 16/],
    ["quantized data past the end", gguf(1, 0, info("t", [64], 8, 0), new Uint8Array(34)), /extends past the end/],
    ["misaligned offset", gguf(1, 0, info("t", [2], 0, 4), new Uint8Array(16)), /not a multiple of the alignment/],
    ["offset past the end", gguf(1, 0, info("t", [2], 0, 32), new Uint8Array(16)), /extends past the end/],
    ["overlapping tensors", gguf(2, 0, cat(info("a", [16], 0, 0), info("b", [2], 0, 32)), new Uint8Array(64)), /overlap/],
    ["duplicate names", gguf(2, 0, cat(info("a", [2], 0, 0), info("a", [2], 0, 32)), new Uint8Array(64)), /Duplicate parameter name a/],
    ["dimension 2^40", gguf(1, 0, info("t", [2 ** 40], 0, 0), new Uint8Array(8)), /larger than the maximum/],
  ];
  test.each(ggCases)("gguf: %s", (_n, bytes, re) => expectLoadError(bytes, ".gguf", re));

  test("a deflated member that inflates to more than its header says is stopped", () => {
    // One member whose deflate stream holds 1 MiB of zeros but whose header claims 100 bytes.
    const bomb = new Uint8Array(deflateRawSync(new Uint8Array(1 << 20)));
    const name = enc("a.npy");
    const local = cat(u32(0x04034b50), new Uint8Array([20, 0, 0, 0, 8, 0, 0, 0, 0, 0]), u32(0), u32(bomb.byteLength), u32(100), new Uint8Array([name.byteLength, 0, 0, 0]), name);
    const central = cat(u32(0x02014b50), new Uint8Array([20, 0, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0]), u32(0), u32(bomb.byteLength), u32(100), new Uint8Array([name.byteLength, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), u32(0), name);
    const end = cat(u32(0x06054b50), new Uint8Array([0, 0, 0, 0, 1, 0, 1, 0]), u32(central.byteLength), u32(local.byteLength + bomb.byteLength), new Uint8Array(2));
    expectLoadError(cat(local, bomb, central, end), ".npz", /could not be inflated/);
  });
});

// ------------------------------------------------------------------------------------------
describe("argument errors match MLX", () => {
  const a = mx.arange(6).reshape([2, 3]);
  test("load: format and metadata options", () => {
    expect(() => mx.load(join(dir, "file"))).toThrow("[load] Could not infer file format from extension");
    expect(() => mx.load(join(dir, "file.foo"))).toThrow("[load] Unknown file format foo");
    expect(() => mx.load(join(dir, "x.npy"), { format: "bogus" as "npy" })).toThrow("[load] Unknown file format bogus");
    expect(() => mx.load(filesDir + "np_int8.npy", { returnMetadata: true })).toThrow("[load] metadata not supported for format npy");
    expect(() => mx.load(filesDir + "np_savez.npz", { returnMetadata: true })).toThrow("[load] metadata not supported for format npz");
    expect(() => mx.load(join(dir, "missing.npy"))).toThrow(`[load] Failed to open file ${join(dir, "missing.npy")}`);
    expect(() => mx.load(dir + "/.safetensors", { format: "safetensors" })).toThrow("[load_safetensors] Failed to open file");
  });
  test("save_gguf: tensor dtypes and metadata kinds", () => {
    for (const d of [mx.bfloat16, mx.uint8, mx.float64, mx.int64, mx.bool, mx.uint32, mx.complex64]) {
      expect(() => mx.saveGguf(tmp(".gguf"), { a: a.astype(d) })).toThrow(`[save_gguf] dtype ${d.name} is not supported`);
    }
    expect(() => mx.saveGguf(tmp(".gguf"), { a }, { e: mx.zeros([0]) })).toThrow("[save_gguf] Cannot save empty arrays.");
    expect(() => mx.saveGguf(tmp(".gguf"), { a }, { e: mx.zeros([2, 2]) })).toThrow("[save_gguf] Cannot save arrays with more than one dimension.");
    expect(() => mx.saveGguf(tmp(".gguf"), { a }, { e: mx.array(1, mx.float16) })).toThrow("[save_gguf] array type float16 not support for metadata.");
    expect(() => mx.saveGguf(tmp(".gguf"), { a }, { e: 3 as unknown as string })).toThrow("[save_gguf] Received unexpected type in metadata");
  });
  test("save_safetensors: metadata must be strings", () => {
    expect(() => mx.saveSafetensors(tmp(".safetensors"), { a }, { k: 1 as unknown as string })).toThrow(
      "[save_safetensors] Metadata must be a dictionary with string keys and values",
    );
    expect(() => mx.saveSafetensors(tmp(".safetensors"), { a: 3 as unknown as mx.Array })).toThrow("[save_safetensors] Expected an mx.Array");
  });
  test("save: not an array, bad file name, unwritable directory", () => {
    expect(() => mx.save(tmp(".npy"), 3 as unknown as mx.Array)).toThrow("[save] Expected an mx.Array, got number.");
    expect(() => mx.save("", a)).toThrow("[save] Expected a file name");
    expect(() => mx.save(join(dir, "no", "such", "dir.npy"), a)).toThrow("[save] Failed to open file");
  });
  test("a disposed array cannot be saved", () => {
    const b = mx.arange(3);
    b.dispose();
    expect(() => mx.save(tmp(".npy"), b)).toThrow("used after it was disposed");
  });
});

test("load from a file's contents in memory (MLX's file-like objects): every format, format required", () => {
  for (const name of ["np_float32.npy", "np_savez_compressed.npz", "mlx.safetensors", "quantized.gguf"]) {
    const bytes = new Uint8Array(readFileSync(filesDir + name));
    const format = name.split(".").pop() as mx.FileFormat;
    const r = mx.load(name.endsWith(".npz") ? bytes.buffer : bytes, { format });
    const rec = fx.files[name]!.arrays;
    if (r instanceof mx.Array) expectArray(r, rec[""]!);
    else for (const [k, v] of Object.entries(rec)) expectArray(r[k]!, v);
  }
  expect(() => mx.load(new Uint8Array(8))).toThrow("[load] Could not infer file format from a buffer; pass { format }.");
  expect(() => mx.load(new Uint8Array(8), { format: "npy" })).toThrow("<bytes>");
});
describe("saving to a stream, a file descriptor or memory (MLX's savers take Python file objects)", () => {
  const concat = (parts: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let off = 0;
    for (const p of parts) (out.set(p, off), (off += p.byteLength));
    return out;
  };
  const collector = () => {
    const parts: Uint8Array[] = [];
    return { parts, sink: { write: (c: Uint8Array) => void parts.push(c) } };
  };

  test("a sink receives exactly the bytes NumPy, the safetensors writer and MLX write", () => {
    for (const c of fx.writers.npy) {
      let a = arrayOf(c.array);
      if (c.transpose) a = a.T;
      const { parts, sink } = collector();
      mx.save(sink, a);
      expect(toHex(concat(parts))).toBe(c.bytes);
    }
    const arrays = Object.fromEntries(Object.entries(fx.writers.npz.arrays).map(([k, r]) => [k, arrayOf(r)]));
    const { arr_0, ...named } = arrays;
    const z = collector();
    mx.savez(z.sink, arr_0!, named);
    expect(toHex(concat(z.parts))).toBe(fx.writers.npz.bytes);
    for (const c of fx.writers.safetensors) {
      const { parts, sink } = collector();
      mx.saveSafetensors(sink, Object.fromEntries(Object.entries(c.arrays).map(([k, r]) => [k, arrayOf(r)])), c.metadata ?? undefined);
      expect(toHex(concat(parts))).toBe(c.bytes);
    }
    for (const c of fx.writers.gguf) {
      if (c.metadata !== null) continue;
      const { parts, sink } = collector();
      mx.saveGguf(sink, Object.fromEntries(Object.entries(c.arrays).map(([k, r]) => [k, arrayOf(r)])));
      expect(toHex(concat(parts))).toBe(c.bytes);
    }
  });

  test("the sink's chunks are copies: a sink that reuses them as scratch space cannot change the array", () => {
    const a = mx.arange(0, 4096, 1, mx.float32);
    mx.eval(a);
    const kept: Uint8Array[] = [];
    mx.save({ write: (c: Uint8Array) => { kept.push(c.slice()); c.fill(0xff); } }, a);
    expect(Array.from(a.toTypedArray() as Float32Array).every((v, i) => v === i)).toBe(true);
    const back = mx.load(concat(kept), { format: "npy" }) as mx.Array;
    expectSame(back, a);
  });

  test("compressed npz to memory loads back; a Node WriteStream and Bun's FileSink write loadable files", async () => {
    const w = mx.array([[1.5, -2], [3, 4.25]], mx.float32);
    const i = mx.array([7, 8, 9], mx.int16);
    const z = collector();
    mx.savezCompressed(z.sink, { w, i });
    const r = mx.load(concat(z.parts), { format: "npz" }) as Record<string, mx.Array>;
    expectSame(r.w!, w);
    expectSame(r.i!, i);

    const { createWriteStream } = await import("node:fs");
    const p1 = tmp(".bin"); // no extension is added for a stream
    const ws = createWriteStream(p1);
    mx.saveSafetensors(ws, { w, i }, { note: "stream" });
    await new Promise<void>((res, rej) => ws.end((e?: Error | null) => (e ? rej(e) : res())));
    const [st, meta] = mx.load(p1, { format: "safetensors", returnMetadata: true });
    expectSame(st.w!, w);
    expectSame(st.i!, i);
    expect(meta).toEqual({ note: "stream" });

    const p2 = tmp(".bin");
    const fsink = Bun.file(p2).writer();
    mx.save(fsink, w);
    await fsink.end();
    expectSame(mx.load(p2, { format: "npy" }) as mx.Array, w);
  });

  test("an open file descriptor is written at its position and left open", () => {
    const p = tmp(".npy");
    const fd = openSync(p, "w");
    writeSync(fd, "XYZ");
    const a = mx.array([1, 2, 3], mx.int32);
    mx.save(fd, a);
    writeSync(fd, "!"); // still open
    closeSync(fd);
    const bytes = new Uint8Array(readFileSync(p));
    expect(new TextDecoder().decode(bytes.subarray(0, 3))).toBe("XYZ");
    expect(bytes[bytes.length - 1]).toBe("!".charCodeAt(0));
    expectSame(mx.load(bytes.subarray(3, bytes.length - 1), { format: "npy" }) as mx.Array, a);
  });

  test("bad targets and failing streams give errors naming the op; nothing is written for an invalid argument", () => {
    const a = mx.array([1, 2], mx.float32);
    expect(() => mx.save(-1, a)).toThrow("[save] Expected a file name, a file descriptor or a writable stream, got the number -1.");
    expect(() => mx.save(1.5, a)).toThrow("got the number 1.5");
    expect(() => mx.savez({} as unknown as mx.SaveSink, a)).toThrow("[savez] Expected a file name, a file descriptor or a writable stream (an object with a write method), got Object.");
    expect(() => mx.save(null as unknown as string, a)).toThrow("[save] Expected a file name, a file descriptor or a writable stream");
    const closed = openSync(tmp(".npy"), "w");
    closeSync(closed);
    expect(() => mx.save(closed, a)).toThrow(`[save] Failed to write to file descriptor ${closed}`);
    const failing = { write: () => { throw new Error("disk full"); } };
    expect(() => mx.saveGguf(failing, { a })).toThrow("[save_gguf] Failed to write to the stream: disk full");
    const { parts, sink } = collector();
    expect(() => mx.saveSafetensors(sink, { a, b: 3 as unknown as mx.Array })).toThrow("[save_safetensors]");
    expect(parts.length).toBe(0);
    // The engine is fine afterwards.
    mx.save(sink, a);
    expect(parts.length).toBeGreaterThan(0);
  });
});

// Keep the fixture helper in use for hand-built byte checks.
void fromHex;
