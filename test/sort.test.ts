// Scans and sorting against real MLX: cumsum, cumprod, cummax, cummin, logcumsumexp, sort,
// argsort, partition, argpartition, topk, searchsorted. Expected values come from
// test/fixtures/sort/sort.json.gz, made by gen_sort.py from MLX 0.32.4 (these tests never run
// Python). Results compare bit for bit (dtype, shape and bytes), except partition, argpartition
// and topk (MLX's order around kth is unspecified: checked by the partition property against
// MLX's result). logcumsumexp matches too, the engine calling the C library's log1p/log as MLX
// does; only its NaN payloads are not compared for float32 (x86 picks between NaN operands).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import * as mx from "../src/index.ts";

interface Rec {
  dtype: mx.DtypeName;
  shape: number[];
  hex: string;
}
interface ScanCase {
  name: string;
  op: "cumsum" | "cumprod" | "cummax" | "cummin" | "logcumsumexp";
  input: Rec;
  axis: number | null;
  reverse: boolean;
  inclusive: boolean;
  broadcast?: number[];
  transpose?: boolean;
  /** cumsum/cumprod's dtype= argument */
  dtype?: mx.DtypeName;
  result: Rec;
}
interface SortCase {
  name: string;
  op: "sort" | "argsort" | "partition" | "argpartition" | "topk";
  input: Rec;
  axis: number | null;
  kth: number | null;
  broadcast?: number[];
  transpose?: boolean;
  result: Rec;
}
interface SearchCase {
  a: Rec;
  v: Rec;
  side: "left" | "right";
  result: Rec;
}
interface BigCase {
  op: string;
  dtype: mx.DtypeName;
  shape: number[];
  axis: number;
  kth: number | null;
  result_dtype: mx.DtypeName;
  result_shape: number[];
  sha256: string;
}
interface ErrorCase {
  op: string;
  input: Rec;
  broadcast?: number[];
  transpose?: boolean;
  axis: number | null;
  kth?: number | null;
  message: string;
}
interface Fixture {
  mlx_version: string;
  scan: ScanCase[];
  sort: SortCase[];
  searchsorted: SearchCase[];
  big: BigCase[];
  errors: ErrorCase[];
  search_errors: { a: Rec; message: string }[];
}

const fixture = JSON.parse(
  new TextDecoder().decode(Bun.gunzipSync(readFileSync(new URL("./fixtures/sort/sort.json.gz", import.meta.url)))),
) as Fixture;

const itemSize: Record<mx.DtypeName, number> = {
  bool: 1, uint8: 1, uint16: 2, uint32: 4, uint64: 8, int8: 1, int16: 2, int32: 4, int64: 8,
  float16: 2, float32: 4, float64: 8, bfloat16: 2, complex64: 8,
};

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** An mx.array holding exactly the recorded bytes (raw bits: NaN payloads and -0 survive). */
function arrayOf(r: Rec): mx.Array {
  const bytes = fromHex(r.hex);
  const buf = bytes.buffer;
  const size = itemSize[r.dtype];
  const data = size === 1 ? new Uint8Array(buf) : size === 2 ? new Uint16Array(buf) : size === 4 ? new Uint32Array(buf) : new BigUint64Array(buf);
  return mx.array(data, { dtype: r.dtype, shape: r.shape, bits: true });
}

/** The op's input: the recorded array, broadcast (a stride-0 view) and/or transposed (strided). */
function inputOf(c: { input: Rec; broadcast?: number[]; transpose?: boolean }): mx.Array {
  let x = arrayOf(c.input);
  if (c.broadcast !== undefined) x = mx.broadcastTo(x, c.broadcast);
  if (c.transpose === true) x = mx.transpose(x);
  return x;
}

function bytesOf(a: mx.Array): Uint8Array {
  const ta = a.dtype === mx.bfloat16 ? a.toTypedArray({ bits: true }) : a.toTypedArray();
  return new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength).slice();
}

function expectSame(a: mx.Array, r: Rec): void {
  expect(a.dtype.name).toBe(r.dtype);
  expect([...a.shape]).toEqual(r.shape);
  expect(toHex(bytesOf(a))).toBe(r.hex);
}

/** Float values of the recorded bytes / of an array (float16/bfloat16 decoded exactly). */
function floatsOf(bytes: Uint8Array, dtype: mx.DtypeName): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / itemSize[dtype];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (dtype === "float32") out.push(dv.getFloat32(4 * i, true));
    else if (dtype === "float64") out.push(dv.getFloat64(8 * i, true));
    else if (dtype === "float16") out.push(dv.getFloat16(2 * i, true));
    else if (dtype === "bfloat16") out.push(new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0]!);
    else throw new Error(`not a float dtype: ${dtype}`);
  }
  return out;
}

/** Bit for bit, but any NaN matches any NaN. */
function expectSameValues(a: mx.Array, r: Rec): void {
  expect(a.dtype.name).toBe(r.dtype);
  expect([...a.shape]).toEqual(r.shape);
  const got = floatsOf(bytesOf(a), r.dtype);
  const want = floatsOf(fromHex(r.hex), r.dtype);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (!(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)))) throw new Error(`element ${i}: got ${g}, MLX ${w}`);
  }
}

test("the fixture comes from MLX 0.32", () => {
  expect(fixture.mlx_version).toStartWith("0.32");
  expect(fixture.scan.length).toBeGreaterThan(4000);
  expect(fixture.sort.length).toBeGreaterThan(5000);
  expect(fixture.scan.filter((c) => c.transpose === true).length).toBeGreaterThan(100);
  expect(fixture.scan.filter((c) => c.dtype !== undefined).length).toBeGreaterThan(30);
  expect(fixture.sort.filter((c) => c.transpose === true).length).toBeGreaterThan(100);
});

const scanFns = { cumsum: mx.cumsum, cumprod: mx.cumprod, cummax: mx.cummax, cummin: mx.cummin, logcumsumexp: mx.logcumsumexp };

for (const op of Object.keys(scanFns) as ScanCase["op"][]) {
  describe(`${op} matches MLX bit for bit`, () => {
    const cases = fixture.scan.filter((c) => c.op === op);
    const dtypes = [...new Set(cases.map((c) => c.input.dtype))];
    for (const d of dtypes) {
      test(d, () => {
        for (const c of cases.filter((x) => x.input.dtype === d)) {
          const opts = { reverse: c.reverse, inclusive: c.inclusive, ...(c.dtype === undefined ? {} : { dtype: c.dtype }) };
          const r = scanFns[op](inputOf(c), c.axis, opts);
          try {
            if (op === "logcumsumexp" && c.result.dtype === "float32") expectSameValues(r, c.result);
            else expectSame(r, c.result);
          } catch (e) {
            throw new Error(`${op} ${c.name}: ${(e as Error).message}`);
          }
        }
      });
    }
  });
}

describe("scan methods on mx.Array", () => {
  test("a.cumsum/cumprod/cummax/cummin/logcumsumexp equal the functions", () => {
    const a = mx.array([[3, -1, 4], [1, 5, -9]], { dtype: "float32" });
    for (const m of ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"] as const) {
      const viaMethod = a[m](1, { reverse: true });
      const viaFn = scanFns[m](a, 1, { reverse: true });
      expect(viaMethod.tolist()).toEqual(viaFn.tolist());
    }
    // hand-computed: the flattened cumulative sum, exclusive
    expect(a.cumsum(undefined, { inclusive: false }).tolist()).toEqual([0, 3, 2, 6, 7, 12]);
    expect(mx.array([true, true, false]).cumsum().dtype).toBe(mx.int32);
  });

  test("cumulativeSum and cumulativeProd are MLX's aliases of cumsum and cumprod", () => {
    const a = mx.array([[1, 2, 3], [4, 5, 6]], { dtype: "int8" });
    expect(mx.cumulativeSum(a, 0).tolist()).toEqual([[1, 2, 3], [5, 7, 9]]);
    expect(mx.cumulativeProd(a, 1, { dtype: "int32" }).tolist()).toEqual([[1, 2, 6], [4, 20, 120]]);
    expect(mx.cumulativeProd(a, 1, { dtype: "int32" }).dtype).toBe(mx.int32);
  });
});

const sortFns = {
  sort: (x: mx.Array, c: SortCase) => mx.sort(x, c.axis),
  argsort: (x: mx.Array, c: SortCase) => mx.argsort(x, c.axis),
  partition: (x: mx.Array, c: SortCase) => mx.partition(x, c.kth!, c.axis),
  argpartition: (x: mx.Array, c: SortCase) => mx.argpartition(x, c.kth!, c.axis),
  topk: (x: mx.Array, c: SortCase) => mx.topk(x, c.kth!, c.axis),
};

// sort and argsort have one right answer: bit for bit with MLX.
for (const op of ["sort", "argsort"] as const) {
  describe(`${op} matches MLX bit for bit`, () => {
    const cases = fixture.sort.filter((c) => c.op === op);
    const dtypes = [...new Set(cases.map((c) => c.input.dtype))];
    for (const d of dtypes) {
      test(d, () => {
        for (const c of cases.filter((x) => x.input.dtype === d)) {
          const r = sortFns[op](inputOf(c), c);
          try {
            expectSame(r, c.result);
          } catch (e) {
            throw new Error(`${op} ${c.name}: ${(e as Error).message}`);
          }
        }
      });
    }
  });
}

/** A total order key for one element as sort orders them (NaN last, complex by real then imaginary). */
function keyOf(v: unknown): [number, number, number] {
  if (typeof v === "object" && v !== null) {
    const c = v as { re: number; im: number };
    return Number.isNaN(c.re) || Number.isNaN(c.im) ? [1, 0, 0] : [0, c.re + 0, c.im + 0]; // + 0: -0 equals 0
  }
  const n = typeof v === "boolean" ? Number(v) : Number(v as number | bigint);
  return Number.isNaN(n) ? [1, 0, 0] : [0, n + 0, 0];
}
function cmp(a: unknown, b: unknown): number {
  const x = keyOf(a);
  const y = keyOf(b);
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

/** The rows along `axis` (all elements for null) as JS lists. */
function rowsOf(a: mx.Array, axis: number | null): unknown[][] {
  if (a.size === 0) return [];
  const moved = axis === null ? mx.reshape(a, [1, -1]) : mx.reshape(mx.moveaxis(a, axis, -1), [-1, a.ndim === 0 ? 1 : a.shape[axis < 0 ? axis + a.ndim : axis]!]);
  return moved.tolist() as unknown[][];
}

/**
 * partition, argpartition and topk: MLX leaves the order around kth unspecified, so the result
 * is checked against MLX's by the partition property: the same dtype and shape, each row the
 * same multiset as MLX's, and (partition, argpartition) the kth element in its sorted place with
 * nothing greater before it and nothing less after it.
 */
for (const op of ["partition", "argpartition", "topk"] as const) {
  describe(`${op} agrees with MLX up to the order MLX leaves unspecified`, () => {
    const cases = fixture.sort.filter((c) => c.op === op);
    const dtypes = [...new Set(cases.map((c) => c.input.dtype))];
    for (const d of dtypes) {
      test(d, () => {
        for (const c of cases.filter((x) => x.input.dtype === d)) {
          const x = inputOf(c);
          const r = sortFns[op](x, c);
          const want = arrayOf(c.result);
          expect(r.dtype.name).toBe(c.result.dtype);
          expect([...r.shape]).toEqual(c.result.shape);
          const xs = rowsOf(x, c.axis);
          const gotRows = rowsOf(r, c.axis);
          const wantRows = rowsOf(want, c.axis);
          gotRows.forEach((row, ri) => {
            const values = op === "argpartition" ? row.map((i) => xs[ri]![Number(i)]) : row;
            const wantValues = op === "argpartition" ? wantRows[ri]!.map((i) => xs[ri]![Number(i)]) : wantRows[ri]!;
            const sorted = [...values].sort(cmp);
            expect(sorted.map(keyOf), `${op} ${c.name} row ${ri}`).toEqual([...wantValues].sort(cmp).map(keyOf));
            if (op === "argpartition") expect([...row].map(Number).sort((p, q) => p - q)).toEqual(row.map((_, i) => i));
            if (op !== "topk" && values.length > 0) {
              const k = c.kth! < 0 ? c.kth! + values.length : c.kth!;
              expect(cmp(values[k], sorted[k]), `${op} ${c.name} kth`).toBe(0);
              for (let i = 0; i < values.length; i++) {
                if (i < k) expect(cmp(values[i], values[k])).toBeLessThanOrEqual(0);
                if (i > k) expect(cmp(values[i], values[k])).toBeGreaterThanOrEqual(0);
              }
            }
          });
        }
      });
    }
  });
}

describe("partition properties (independent of MLX's order)", () => {
  test("partition and argpartition put the kth element in place with <= before and >= after", () => {
    let checked = 0;
    for (const c of fixture.sort.filter((x) => x.op === "argpartition" && x.axis === null && x.input.dtype === "int32")) {
      const x = arrayOf(c.input);
      const vals = (x.tolist() as unknown) as number[] | number;
      const flat = Array.isArray(vals) ? (vals.flat(Infinity) as number[]) : [vals];
      const idx = [...(mx.argpartition(x, c.kth!, null).toTypedArray() as Uint32Array)];
      const part = mx.partition(x, c.kth!, null).tolist() as number[];
      const k = c.kth! < 0 ? c.kth! + flat.length : c.kth!;
      const sorted = [...flat].sort((p, q) => p - q);
      expect(part[k]).toBe(sorted[k]!);
      expect(flat[idx[k]!]).toBe(sorted[k]!);
      expect([...idx].sort((p, q) => p - q)).toEqual(flat.map((_, i) => i));
      for (let i = 0; i < flat.length; i++) {
        if (i < k) expect(part[i]!).toBeLessThanOrEqual(part[k]!);
        if (i > k) expect(part[i]!).toBeGreaterThanOrEqual(part[k]!);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(5);
  });

  test("topk returns the k largest values (as a multiset)", () => {
    const vals = [5, -2, 9, 9, 0, 3, -7, 9, 1];
    for (let k = 0; k <= vals.length; k++) {
      const got = (mx.topk(mx.array(vals), k).tolist() as number[]).sort((p, q) => p - q);
      expect(got).toEqual([...vals].sort((p, q) => p - q).slice(vals.length - k));
    }
  });
});

describe("searchsorted matches MLX bit for bit", () => {
  test("all dtypes, sides, shapes and promotions", () => {
    for (const c of fixture.searchsorted) {
      const r = mx.searchsorted(arrayOf(c.a), arrayOf(c.v), c.side);
      try {
        expectSame(r, c.result);
      } catch (e) {
        throw new Error(`searchsorted ${c.a.dtype} ${c.v.dtype} ${JSON.stringify(c.v.shape)} ${c.side}: ${(e as Error).message}`);
      }
    }
  });
});

/** The inputs of the big cases: v[i] = ((i * 2654435761) mod 2^32) mod 2001 - 1000 (/8 for floats). */
function bigInput(dtype: mx.DtypeName, shape: number[]): mx.Array {
  const n = shape.reduce((p, q) => p * q, 1);
  const isFloat = ["float16", "float32", "float64", "bfloat16"].includes(dtype);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = ((i * 2654435761) % 4294967296) % 2001 - 1000;
    v[i] = isFloat ? k / 8 : k;
  }
  const x = isFloat ? mx.array(v, { dtype: "float64", shape }) : mx.array(new Int32Array(v), { shape });
  return x.astype(dtype);
}

describe("large partitions (parallel rows, long rows) keep the partition property", () => {
  for (const c of fixture.big.filter((x) => ["partition", "argpartition"].includes(x.op)).slice(0, 4)) {
    test(`${c.op} ${c.dtype} ${JSON.stringify(c.shape)} axis ${c.axis}`, () => {
      const x = bigInput(c.dtype, c.shape).astype(mx.float64);
      const r = c.op === "partition" ? mx.partition(x, c.kth!, c.axis) : mx.argpartition(x, c.kth!, c.axis);
      expect([...r.shape]).toEqual(c.result_shape);
      const xs = rowsOf(x, c.axis);
      rowsOf(r, c.axis).forEach((row, ri) => {
        const v = c.op === "partition" ? (row as number[]) : row.map((i) => xs[ri]![Number(i)] as number);
        const k = c.kth! < 0 ? c.kth! + v.length : c.kth!;
        const kv = [...v].sort((p, q) => p - q)[k]!;
        expect(v[k]).toBe(kv);
        for (let i = 0; i < v.length; i++) if ((i < k && v[i]! > kv) || (i > k && v[i]! < kv)) throw new Error(`row ${ri} not partitioned at ${i}`);
      });
    });
  }
});

describe("large inputs (parallel rows, long rows) match MLX by SHA-256", () => {
  const dtypes = [...new Set(fixture.big.map((c) => c.dtype))];
  for (const d of dtypes) {
    test(d, () => {
      for (const c of fixture.big.filter((x) => x.dtype === d && !["partition", "argpartition", "topk"].includes(x.op))) {
        const x = bigInput(c.dtype, c.shape);
        const r =
          c.op === "sort" ? mx.sort(x, c.axis)
          : c.op === "argsort" ? mx.argsort(x, c.axis)
          : c.op === "partition" ? mx.partition(x, c.kth!, c.axis)
          : c.op === "argpartition" ? mx.argpartition(x, c.kth!, c.axis)
          : c.op === "topk" ? mx.topk(x, c.kth!, c.axis)
          : scanFns[c.op as "cumsum"](x, c.axis);
        expect(r.dtype.name).toBe(c.result_dtype);
        expect([...r.shape]).toEqual(c.result_shape);
        const h = new Bun.CryptoHasher("sha256").update(bytesOf(r)).digest("hex");
        if (h !== c.sha256) throw new Error(`${c.op} ${c.dtype} ${JSON.stringify(c.shape)} axis=${c.axis}: hash differs from MLX's`);
      }
    });
  }
});

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(mx.MlxError);
    return (e as Error).message;
  }
  return "(no error)";
}

describe("errors carry MLX's messages", () => {
  test("bad axes, kth and k", () => {
    for (const c of fixture.errors) {
      const x = inputOf(c);
      const msg = messageOf(() => {
        if (c.op in scanFns) return scanFns[c.op as ScanCase["op"]](x, c.axis);
        const sc = { name: "", op: c.op, input: c.input, axis: c.axis, kth: c.kth ?? 0, result: c.input } as SortCase;
        return sortFns[sc.op](x, sc);
      });
      expect(msg).toBe(c.message);
    }
  });

  test("searchsorted: the sequence must be 1-D; side must be left or right", () => {
    for (const c of fixture.search_errors) {
      expect(messageOf(() => mx.searchsorted(arrayOf(c.a), mx.array([1])))).toBe(c.message);
    }
    // MLX's message for side (python/src/ops.cpp)
    expect(messageOf(() => mx.searchsorted(mx.array([1, 2]), mx.array([1]), "mid" as "left"))).toBe(
      "[searchsorted] Invalid side 'mid'. Expected 'left' or 'right'.",
    );
  });

  test("non-integer axis or kth is rejected", () => {
    expect(messageOf(() => mx.sort(mx.array([1, 2]), 0.5))).toMatch(/^\[sort\] Axis must be an integer/);
    expect(messageOf(() => mx.partition(mx.array([1, 2]), 1.5))).toMatch(/^\[partition\] kth must be an integer/);
  });
});

test("logcumsumexp of complex64: MLX's complex logaddexp, (-inf, 0) first when exclusive", () => {
  const cases = fixture.scan.filter((c) => c.op === "logcumsumexp" && c.input.dtype === "complex64");
  expect(cases.length).toBeGreaterThan(150);
  const x = mx.array([{ re: 0, im: 0 }, { re: 0, im: 0 }, { re: 1, im: 2 }], { dtype: mx.complex64 });
  const ex = mx.logcumsumexp(x, 0, { inclusive: false }).toTypedArray() as Float32Array;
  expect([...ex.slice(0, 4)]).toEqual([-Infinity, 0, 0, 0]);
  expect(ex[4]).toBeCloseTo(Math.LN2, 6);
});
