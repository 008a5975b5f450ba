// DLPack both ways (a.toDlpack, a.dlpackDevice, mx.fromDlpack): the exported struct read
// field by field against the layouts and codes of dlpack.h v1.1 (reference/formats.md §1),
// round trips of every dtype and of views, copy semantics, deleters called exactly once, and
// bad inputs. Plus the zero-copy TypedArray caveat of the docs (docs/INTEROP.md).
import { describe, expect, test } from "bun:test";
import { JSCallback, ptr, read, toArrayBuffer } from "bun:ffi";
import * as mx from "../src/index.ts";

// DLDataType {code, bits} from the DLPack header (kDLInt=0, kDLUInt=1, kDLFloat=2, kDLBfloat=4,
// kDLComplex=5, kDLBool=6), lanes 1.
const codes: [mx.Dtype, number, number][] = [
  [mx.bool, 6, 8], [mx.uint8, 1, 8], [mx.uint16, 1, 16], [mx.uint32, 1, 32], [mx.uint64, 1, 64],
  [mx.int8, 0, 8], [mx.int16, 0, 16], [mx.int32, 0, 32], [mx.int64, 0, 64],
  [mx.float16, 2, 16], [mx.float32, 2, 32], [mx.float64, 2, 64], [mx.bfloat16, 4, 16], [mx.complex64, 5, 64],
];

// Values each dtype holds exactly (so the expected list is the input itself).
const values = new Map<mx.Dtype, mx.ArrayInput>([
  [mx.bool, [true, false, true]],
  [mx.uint8, [0, 255, 7]],
  [mx.uint16, [0, 65535, 7]],
  [mx.uint32, [0, 4294967295, 7]],
  [mx.uint64, [0n, 2n ** 64n - 1n, 7n]],
  [mx.int8, [-128, 127, -1]],
  [mx.int16, [-32768, 32767, -1]],
  [mx.int32, [-2147483648, 2147483647, -1]],
  [mx.int64, [-(2n ** 63n), 2n ** 63n - 1n, -1n]],
  [mx.float16, [1, -2.5, 65504]],
  [mx.float32, [1.5, -2.25, 2 ** -20]],
  [mx.float64, [0.1, -1e300, 5e-324]],
  [mx.bfloat16, [1, -2.5, 0.10009765625]],
  [mx.complex64, [{ re: 1, im: -2 }, { re: 0.5, im: 0 }, { re: -3, im: 4 }]],
]);

/**
 * Let the collector release what earlier tests and reads left to it (views of engine buffers
 * holding exported tensors), until the live export count has stopped moving.
 */
async function settle(): Promise<void> {
  let last = -1;
  for (let i = 0, still = 0; i < 200 && still < 3; i++) {
    Bun.gc(true);
    await Bun.sleep(2);
    const n = mx.getLiveDlpackExportCount();
    still = n === last ? still + 1 : 0;
    last = n;
  }
}

/** The fields of a DLManagedTensorVersioned at `p` (offsets from dlpack.h, x86-64/arm64 LP64). */
function fields(p: number) {
  const t = 32; // dl_tensor
  const ndim = read.i32(p, t + 16);
  const shapeP = read.ptr(p, t + 24);
  const stridesP = read.ptr(p, t + 32);
  return {
    version: [read.u32(p, 0), read.u32(p, 4)],
    deleter: read.ptr(p, 16),
    flags: Number(read.u64(p, 24)),
    data: read.ptr(p, t),
    device: [read.i32(p, t + 8), read.i32(p, t + 12)],
    ndim,
    dtype: [read.u8(p, t + 20), read.u8(p, t + 21), read.u16(p, t + 22)],
    shape: Array.from({ length: ndim }, (_, i) => Number(read.i64(shapeP, 8 * i))),
    strides: Array.from({ length: ndim }, (_, i) => Number(read.i64(stridesP, 8 * i))),
    byteOffset: Number(read.u64(p, t + 40)),
  };
}

describe("toDlpack: the exported DLManagedTensorVersioned", () => {
  test("header fields, dtype codes and read-only flag for every dtype", () => {
    for (const [d, code, bits] of codes) {
      const a = mx.array(values.get(d)!, d);
      using t = a.toDlpack();
      expect(t.versioned).toBe(true);
      const f = fields(t.pointer);
      expect(f.version).toEqual([1, 1]);
      expect(f.deleter).not.toBe(0);
      expect(f.flags).toBe(1); // DLPACK_FLAG_BITMASK_READ_ONLY: the engine's memory is shared
      expect(f.device).toEqual([1, 0]); // kDLCPU, device 0
      expect(f.dtype).toEqual([code, bits, 1]);
      expect(f.ndim).toBe(1);
      expect(f.shape).toEqual([3]);
      expect(f.strides).toEqual([1]);
      expect(f.byteOffset).toBe(0);
      // The bytes at data + byte_offset are the array's own.
      const bytes = new Uint8Array(toArrayBuffer(f.data!, f.byteOffset, 3 * d.size)).slice();
      const own = d === mx.bfloat16 ? new Uint8Array(a.toTypedArray({ bits: true }).buffer) : new Uint8Array(a.toTypedArray().buffer);
      expect([...bytes]).toEqual([...own]);
    }
  });

  test("views: transposed, sliced (byte_offset), strided, broadcast, reversed", () => {
    const a = mx.arange(12).reshape([3, 4]);
    mx.eval(a);
    const base = fields(a.toDlpack().pointer).data;
    const cases: [mx.Array, number[], number[], number][] = [
      [a.T, [4, 3], [1, 4], 0],
      [a.index(mx.sl(1), mx.sl(2)), [2, 2], [4, 1], 6 * 4], // a[1:, 2:] starts at element 6
      [a.index(mx.sl(), mx.sl(1, null, 2)), [3, 2], [4, 2], 4],
      [mx.broadcastTo(mx.array([1, 2, 3]), [2, 3]), [2, 3], [0, 1], 0],
    ];
    for (const [v, shape, strides, off] of cases) {
      using t = v.toDlpack();
      const f = fields(t.pointer);
      expect([f.shape, f.strides, f.byteOffset]).toEqual([shape, strides, off]);
      if (v !== cases[3]![0]) expect(f.data).toBe(base); // one buffer, no copy
      const back = mx.fromDlpack(t);
      expect(t.owned).toBe(false);
      expect(back.tolist()).toEqual(v.tolist());
    }
    // A reversed view: negative strides are exported as they are (data + byte_offset is the first
    // element, here the last of the buffer), and re-imported by a copy.
    const r = mx.arange(5).index(mx.sl(null, null, -1));
    {
      using t = r.toDlpack();
      const f = fields(t.pointer);
      expect([f.shape, f.strides, f.byteOffset]).toEqual([[5], [-1], 16]); // first element = the last of the buffer
      expect(read.i32(f.data!, f.byteOffset)).toBe(4);
      expect(mx.fromDlpack(t).tolist()).toEqual([4, 3, 2, 1, 0]);
    }
  });

  test("0-d and empty arrays", () => {
    using t0 = mx.array(3.5).toDlpack();
    const f0 = fields(t0.pointer);
    expect(f0.ndim).toBe(0);
    expect(read.f32(f0.data!, f0.byteOffset)).toBe(3.5);
    const s = mx.fromDlpack(t0);
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(3.5);
    using te = mx.zeros([0, 3], mx.int16).toDlpack();
    const fe = fields(te.pointer);
    expect(fe.shape).toEqual([0, 3]);
    expect(fe.data).toBe(0); // size-0 tensors carry no data (dlpack.h); read.ptr gives 0 for NULL
    const e = mx.fromDlpack(te);
    expect(e.shape).toEqual([0, 3]);
    expect(e.dtype).toBe(mx.int16);
  });

  test("copy: true gives a row-major copy flagged IS_COPIED; versioned: false the legacy struct", () => {
    const a = mx.arange(6, mx.float32).reshape([2, 3]).T;
    using shared = a.toDlpack();
    using t = a.toDlpack({ copy: true });
    const f = fields(t.pointer);
    expect(f.flags).toBe(2); // DLPACK_FLAG_BITMASK_IS_COPIED, not read-only
    expect(f.strides).toEqual([2, 1]);
    expect(f.data).not.toBe(fields(shared.pointer).data);
    expect([...new Float32Array(toArrayBuffer(f.data!, 0, 24).slice(0))]).toEqual([0, 3, 1, 4, 2, 5]);
    // Legacy DLManagedTensor: dl_tensor first (offset 0), manager_ctx at 48, deleter at 56.
    using l = a.toDlpack({ versioned: false });
    expect(l.versioned).toBe(false);
    const p = l.pointer;
    expect([read.i32(p, 8), read.i32(p, 16), read.u8(p, 20), read.u8(p, 21)]).toEqual([1, 2, 2, 32]);
    expect(read.ptr(p, 56)).not.toBe(0);
    expect(mx.fromDlpack(l).tolist()).toEqual([[0, 3], [1, 4], [2, 5]]);
  });

  test("dlpackDevice is kDLCPU", () => {
    expect(mx.ones([2]).dlpackDevice()).toEqual([1, 0]);
    expect(mx.DLDeviceType.kDLCPU).toBe(1);
  });
});

describe("fromDlpack", () => {
  test("every dtype round-trips through export and import", () => {
    for (const [d] of codes) {
      const a = mx.array(values.get(d)!, d);
      for (const copy of [undefined, false, true]) {
        const b = mx.fromDlpack(a.toDlpack(), { copy });
        expect(b.dtype).toBe(d);
        expect(b.tolist()).toEqual(values.get(d)! as mx.NestedList);
      }
      // An mx.Array is itself a producer (Python's from_dlpack(x) with x.__dlpack__).
      expect(mx.fromDlpack(a).tolist()).toEqual(values.get(d)! as mx.NestedList);
    }
  });

  test("without a copy the array views the producer's memory; with copy: true it does not", () => {
    const a = mx.array([1, 2, 3], mx.float32);
    const live = a.toTypedArray({ copy: false }) as Float32Array; // a's own buffer
    const viewed = mx.fromDlpack(a.toDlpack());
    const viewedFalse = mx.fromDlpack(a, { copy: false });
    const copied = mx.fromDlpack(a.toDlpack(), { copy: true });
    live[0] = 100;
    expect(viewed.tolist()).toEqual([100, 2, 3]);
    expect(viewedFalse.tolist()).toEqual([100, 2, 3]);
    expect(copied.tolist()).toEqual([1, 2, 3]);
  });

  test("each exported tensor's deleter runs exactly once: at consumption's end, on dispose, or by GC", async () => {
    await settle();
    const base = mx.getLiveDlpackExportCount();
    const a = mx.arange(1000);
    const t1 = a.toDlpack();
    const t2 = a.toDlpack();
    expect(mx.getLiveDlpackExportCount()).toBe(base + 2);
    const b = mx.fromDlpack(t1);
    a.dispose(); // b (through t1's reference) keeps the buffer alive
    expect(mx.getLiveDlpackExportCount()).toBe(base + 2);
    expect(mx.sum(b).item()).toBe(499500);
    b.dispose(); // the engine's last use: t1's deleter runs
    expect(mx.getLiveDlpackExportCount()).toBe(base + 1);
    t2.dispose();
    t2.dispose(); // idempotent
    expect(mx.getLiveDlpackExportCount()).toBe(base);
    expect(() => t2.pointer).toThrow("[fromDlpack] The DLPack tensor was already consumed or disposed.");
    expect(() => mx.fromDlpack(t1)).toThrow("[fromDlpack] The DLPack tensor was already consumed or disposed.");
    // A copy releases the producer at once.
    const c = mx.fromDlpack(mx.arange(3).toDlpack(), { copy: true });
    expect(mx.getLiveDlpackExportCount()).toBe(base);
    c.dispose();
    // Nobody consumes or disposes: the garbage collector runs the deleter.
    (() => {
      mx.arange(10).toDlpack();
    })();
    for (let i = 0; i < 50 && mx.getLiveDlpackExportCount() > base; i++) {
      Bun.gc(true);
      await Bun.sleep(5);
    }
    // At most base: a leftover export of an earlier test may be collected meanwhile too.
    expect(mx.getLiveDlpackExportCount()).toBeLessThanOrEqual(base);
  });

  test("consume() hands the address over: the receiver imports it as a raw pointer", async () => {
    await settle();
    const base = mx.getLiveDlpackExportCount();
    const t = mx.array([[1, 2], [3, 4]], mx.int64).toDlpack();
    const p = t.consume();
    expect(t.owned).toBe(false);
    const b = mx.fromDlpack(p);
    expect(b.tolist()).toEqual([[1n, 2n], [3n, 4n]]);
    b.dispose();
    await settle(); // tolist's int64 read shared the buffer through a GC-held view
    expect(mx.getLiveDlpackExportCount()).toBe(base);
    const l = mx.arange(3).toDlpack({ versioned: false }).consume();
    expect(mx.fromDlpack(BigInt(l), { versioned: false }).tolist()).toEqual([0, 1, 2]);
  });
});

// ---------------------------------------------------------------------------------------------
// Tensors built by hand in JS memory, as a foreign producer would, with a counting deleter.

let deleterCalls = 0;
const countingDeleter = new JSCallback(() => {
  deleterCalls++;
}, { args: ["ptr"], returns: "void" });

interface Hand {
  data: ArrayBufferView | null;
  shape: number[];
  strides?: number[];
  code: number;
  bits: number;
  lanes?: number;
  byteOffset?: number;
  device?: number;
  major?: number;
  versioned?: boolean;
}

/** A DLManagedTensorVersioned (or legacy DLManagedTensor) in JS memory; `keep` must stay reachable. */
function handMade(h: Hand): { address: number; keep: unknown[] } {
  const versioned = h.versioned !== false;
  const mem = new ArrayBuffer(versioned ? 80 : 64);
  const dv = new DataView(mem);
  const shape = new BigInt64Array(h.shape.map(BigInt));
  const strides = h.strides === undefined ? null : new BigInt64Array(h.strides.map(BigInt));
  const t = versioned ? 32 : 0;
  if (versioned) {
    dv.setUint32(0, h.major ?? 1, true);
    dv.setUint32(4, 3, true);
    dv.setBigUint64(16, BigInt(countingDeleter.ptr!), true);
  } else {
    dv.setBigUint64(56, BigInt(countingDeleter.ptr!), true);
  }
  dv.setBigUint64(t, h.data === null ? 0n : BigInt(ptr(h.data as Uint8Array)), true);
  dv.setInt32(t + 8, h.device ?? 1, true);
  dv.setInt32(t + 16, h.shape.length, true);
  dv.setUint8(t + 20, h.code);
  dv.setUint8(t + 21, h.bits);
  dv.setUint16(t + 22, h.lanes ?? 1, true);
  if (h.shape.length > 0) dv.setBigUint64(t + 24, BigInt(ptr(shape)), true);
  if (strides !== null && strides.length > 0) dv.setBigUint64(t + 32, BigInt(ptr(strides)), true);
  dv.setBigUint64(t + 40, BigInt(h.byteOffset ?? 0), true);
  return { address: ptr(new Uint8Array(mem)), keep: [mem, shape, strides, h.data] };
}

describe("fromDlpack of foreign tensors (built by hand)", () => {
  test("a strided view with byte_offset is viewed in place; the deleter runs once, at the last use", () => {
    deleterCalls = 0;
    const data = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const h = handMade({ data, shape: [2, 3], strides: [1, 4], code: 2, bits: 32, byteOffset: 4 });
    const a = mx.fromDlpack(h.address, { copy: false });
    expect(a.tolist()).toEqual([[1, 5, 9], [2, 6, 10]]);
    // Kernels read the foreign strides (hand computed: a @ a.T and row sums).
    mx.tidy(() => {
      expect(mx.matmul(a, a.T).tolist()).toEqual([[107, 122], [122, 140]]);
      expect(mx.sum(a, 1).tolist()).toEqual([15, 18]);
    });
    const b = a.add(1); // a lazy consumer of a
    a.dispose();
    expect(deleterCalls).toBe(0);
    data[1] = 100; // still the producer's memory: visible to b's evaluation
    expect(b.tolist()).toEqual([[101, 6, 10], [3, 7, 11]]);
    expect(deleterCalls).toBe(1); // b's evaluation dropped the engine's last use
    b.dispose();
    expect(deleterCalls).toBe(1);
    expect(h.keep.length).toBe(4);
  });

  test("legacy DLManagedTensor, bool and bfloat16 data, 0-d", () => {
    deleterCalls = 0;
    const bits = new Uint16Array([0x3f80, 0xc020]); // bfloat16 1, -2.5
    const l = handMade({ data: bits, shape: [2], code: 4, bits: 16, versioned: false });
    const a = mx.fromDlpack(l.address, { versioned: false });
    expect(a.dtype).toBe(mx.bfloat16);
    expect(a.tolist()).toEqual([1, -2.5]);
    a.dispose();
    const flags = new Uint8Array([1, 0, 1]);
    const hb = handMade({ data: flags, shape: [3], code: 6, bits: 8 });
    const b = mx.fromDlpack(hb.address);
    expect(b.tolist()).toEqual([true, false, true]);
    b.dispose();
    const one = new Float64Array([2.5]);
    const h0 = handMade({ data: one, shape: [], code: 2, bits: 64 });
    const c = mx.fromDlpack(h0.address);
    // (Read through astype: a float64 item() read would share c's buffer with a GC-held view.)
    expect([c.shape, c.dtype, c.astype(mx.float32).item()]).toEqual([[], mx.float64, 2.5]);
    c.dispose();
    expect(deleterCalls).toBe(3);
    expect([l.keep, hb.keep, h0.keep].length).toBe(3);
  });

  test("copy semantics: what cannot be viewed is copied, or refused with copy: false", () => {
    deleterCalls = 0;
    const ints = new Int32Array([10, 20, 30, 40]);
    const rev = handMade({ data: ints, shape: [4], strides: [-1], code: 0, bits: 32, byteOffset: 12 });
    expect(() => mx.fromDlpack(rev.address, { copy: false })).toThrow(
      "[fromDlpack] copy is false, but this tensor cannot be used without a copy: it has negative strides.",
    );
    expect(deleterCalls).toBe(0); // a failed import leaves the tensor to its owner
    const r = mx.fromDlpack(rev.address);
    expect(deleterCalls).toBe(1); // copied: released at once
    ints[0] = -1;
    expect(r.tolist()).toEqual([40, 30, 20, 10]);
    // complex128 becomes complex64 (as MLX's from_dlpack does), by a copy.
    const c128 = new Float64Array([1, -2, 0.5, 3]);
    const hc = handMade({ data: c128, shape: [2], code: 5, bits: 128 });
    expect(() => mx.fromDlpack(hc.address, { copy: false })).toThrow(/complex128 data is converted to complex64/);
    const c = mx.fromDlpack(hc.address);
    expect(c.dtype).toBe(mx.complex64);
    expect(c.tolist()).toEqual([{ re: 1, im: -2 }, { re: 0.5, im: 3 }]);
    // copy: true copies even what could be viewed.
    const f = new Float32Array([1, 2]);
    const hf = handMade({ data: f, shape: [2], code: 2, bits: 32 });
    const g = mx.fromDlpack(hf.address, { copy: true });
    f[0] = 9;
    expect(g.tolist()).toEqual([1, 2]);
    // Misaligned data (byte_offset 1 into float32) is copied.
    const bytes = new Uint8Array(9);
    new DataView(bytes.buffer).setFloat32(1, 1.5, true);
    new DataView(bytes.buffer).setFloat32(5, -4, true);
    const hm = handMade({ data: bytes, shape: [2], code: 2, bits: 32, byteOffset: 1 });
    expect(() => mx.fromDlpack(hm.address, { copy: false })).toThrow(/its data is not aligned to its element size/);
    expect(mx.fromDlpack(hm.address).tolist()).toEqual([1.5, -4]);
    expect(deleterCalls).toBe(4);
    expect([rev.keep, hc.keep, hf.keep, hm.keep].length).toBe(4);
  });

  test("bad tensors fail with [fromDlpack] messages and are not consumed", () => {
    deleterCalls = 0;
    const data = new Uint8Array(16);
    const cases: [Hand, string][] = [
      [{ data, shape: [2], code: 2, bits: 32, device: 2 }, "[fromDlpack] Only CPU memory can be imported (kDLCPU, kDLCUDAHost, kDLROCMHost); got device type 2."],
      [{ data, shape: [2], code: 2, bits: 32, device: 8 }, "[fromDlpack] Only CPU memory can be imported (kDLCPU, kDLCUDAHost, kDLROCMHost); got device type 8."],
      [{ data, shape: [2], code: 10, bits: 8 }, "[fromDlpack] Unsupported DLPack dtype (code 10, bits 8): mlx-bun reads bool, (u)int8-64, float16/32/64, bfloat16 and complex64/128."],
      [{ data, shape: [2], code: 2, bits: 8 }, "[fromDlpack] Unsupported DLPack dtype (code 2, bits 8): mlx-bun reads bool, (u)int8-64, float16/32/64, bfloat16 and complex64/128."],
      [{ data, shape: [2], code: 2, bits: 32, lanes: 4 }, "[fromDlpack] Vector dtypes are not supported (lanes = 4); only lanes = 1."],
      [{ data, shape: [2, -1], code: 1, bits: 8 }, "[fromDlpack] Negative dimensions not allowed (dimension 1 is -1)."],
      [{ data, shape: [2 ** 31], code: 1, bits: 8 }, "[fromDlpack] Dimension 0 of size 2147483648 is larger than the maximum of 2147483647."],
      [{ data, shape: [2 ** 30, 2 ** 30, 2 ** 30], code: 1, bits: 8 }, "[fromDlpack] Shape (1073741824,1073741824,1073741824) is too large: its size overflows."],
      [{ data, shape: [3, 2], strides: [2 ** 62, 1], code: 1, bits: 8 }, "[fromDlpack] The shape and strides reach outside the addressable range."],
      [{ data: null, shape: [4], code: 1, bits: 8 }, "[fromDlpack] The data pointer is null for a tensor of 4 elements."],
      [{ data, shape: [2], code: 1, bits: 8, major: 2 }, "[fromDlpack] DLPack version 2.3 is not supported (this library reads 1.x)."],
      [{ data, shape: new Array(33).fill(1), code: 1, bits: 8 }, "[fromDlpack] Arrays of more than 32 dimensions are not supported (got 33)."],
    ];
    for (const [h, msg] of cases) {
      const m = handMade(h);
      let err: unknown;
      try {
        mx.fromDlpack(m.address);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(mx.MlxError);
      expect((err as Error).message).toBe(msg);
    }
    expect(deleterCalls).toBe(0);
    // A null data pointer is fine for an empty tensor.
    const e = handMade({ data: null, shape: [0, 5], code: 0, bits: 64 });
    const empty = mx.fromDlpack(e.address, { copy: false });
    expect([empty.shape, empty.dtype]).toEqual([[0, 5], mx.int64]);
    expect(deleterCalls).toBe(1);
  });

  test("bad arguments", () => {
    const a = mx.ones([2]);
    expect(() => mx.fromDlpack(0)).toThrow("[fromDlpack] Expected the address of a managed tensor, got 0.");
    expect(() => mx.fromDlpack(-5)).toThrow("[fromDlpack] Expected the address of a managed tensor, got -5.");
    expect(() => mx.fromDlpack(12)).toThrow("[fromDlpack] The managed tensor pointer is not 8-byte aligned.");
    expect(() => mx.fromDlpack({} as unknown as number)).toThrow(
      "[fromDlpack] Expected a DLPackTensor, an object with toDlpack(), or the address of a managed tensor.",
    );
    const t = a.toDlpack();
    expect(() => mx.fromDlpack(t, { copy: "yes" as unknown as boolean })).toThrow("[fromDlpack] copy must be true, false or undefined, got yes.");
    expect(t.owned).toBe(true); // nothing was consumed
    expect(mx.fromDlpack(t).tolist()).toEqual([1, 1]);
    expect(() => a.toDlpack({ copy: 1 as unknown as boolean })).toThrow("[toDlpack] copy must be true, false or undefined, got 1.");
    a.dispose();
    expect(() => a.toDlpack()).toThrow("[toDlpack] The array was used after it was disposed.");
    expect(() => a.dlpackDevice()).toThrow("[dlpackDevice] The array was used after it was disposed.");
  });
});

// ---------------------------------------------------------------------------------------------
// Zero-copy TypedArrays: live memory the engine does not know about (docs/INTEROP.md).

describe("TypedArray views are live memory", () => {
  test("mx.array(t, { copy: false }) sees later writes to t; the default copy does not", () => {
    const t = new Float32Array([1, 2, 3]);
    const view = mx.array(t, { copy: false });
    const copy = mx.array(t);
    t[1] = 20;
    expect(view.tolist()).toEqual([1, 20, 3]);
    expect(copy.tolist()).toEqual([1, 2, 3]);
  });

  test("mutation behind the engine's back is invisible to grad (the seed's f(x) = x² example)", () => {
    // f squares x in place through a view, then returns sum(x): the value is x² but the graph
    // only holds the sum, so the gradient is 1, not 2x = 6 (MLX's Python gives the same 9 and 1).
    const f = (x: mx.Array) => {
      const v = x.toTypedArray({ copy: false }) as Float32Array;
      for (let i = 0; i < v.length; i++) v[i]! *= v[i]!;
      return mx.sum(x);
    };
    const x = mx.array([3], mx.float32);
    const [y, df] = mx.valueAndGrad(f)(x);
    expect((y as mx.Array).item()).toBe(9);
    expect((df as mx.Array).tolist()).toEqual([1]);
    expect(x.item()).toBe(9); // and x itself was changed
    // Squaring through a copy loses the graph too: the gradient is 0, not 6.
    const g = (x: mx.Array) => mx.sum(mx.array((x.toTypedArray() as Float32Array).map((v) => v * v)));
    const [y2, dg] = mx.valueAndGrad(g)(mx.array([3], mx.float32));
    expect([(y2 as mx.Array).item(), (dg as mx.Array).tolist()]).toEqual([9, [0]]);
    // Written with ops, the engine sees it: 2x = 6.
    const [, dh] = mx.valueAndGrad((x: mx.Array) => mx.sum(x.mul(x)))(mx.array([3], mx.float32));
    expect((dh as mx.Array).tolist()).toEqual([6]);
  });
});
