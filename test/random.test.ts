// mx.random against real MLX: key, split, uniform, normal, randint, bernoulli, truncatedNormal,
// gumbel, categorical, laplace, permutation, and the global key state (seed, calls without a
// key). Expected values come from test/fixtures/random/random.json.gz, made by gen_random.py
// from MLX 0.32.4 on CPU (these tests never run Python). Every result compares bit for bit
// (dtype, shape and bytes), float32 normal, gumbel and truncatedNormal included: they go through
// log (erfinv calls it), which the engine takes from glibc as MLX does (scalar_math.cLog).
// multivariateNormal goes through an SVD (LAPACK), so it is compared to MLX within a tolerance.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import * as mx from "../src/index.ts";
import { expectMlxError } from "./util";

interface Rec {
  dtype: mx.DtypeName;
  shape: number[];
  hex: string;
}
interface Args {
  seed?: number;
  key_hex?: string;
  num?: number;
  shape?: number[];
  dtype?: mx.DtypeName;
  low?: number | number[];
  high?: number | number[];
  loc?: number;
  scale?: number | number[];
  p?: number | number[];
  lower?: number | number[];
  upper?: number | number[];
  logits?: number[] | number[][];
  axis?: number;
  num_samples?: number;
  n?: number;
  x?: number[][];
}
interface Case {
  fn: string;
  args: Args;
  result: Rec;
}
interface Fixture {
  mlx_version: string;
  cases: Case[];
  sequence: { fn: string; result: Rec }[];
  errors: { name: string; message: string }[];
  big: { fn: string; dtype: mx.DtypeName; shape: number[]; sha256: string }[];
}

const fixture = JSON.parse(
  new TextDecoder().decode(Bun.gunzipSync(readFileSync(new URL("./fixtures/random/random.json.gz", import.meta.url)))),
) as Fixture;

const rawDtype: Record<number, mx.DtypeName> = { 1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64" };

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** dtype, shape and raw bytes (hex) of an array, as the generator records them. */
function recOf(a: mx.Array): Rec {
  const raw = a.dtype === mx.bool ? a.astype(mx.uint8) : a.dtype.size > 1 ? mx.view(a, rawDtype[a.dtype.size]!) : a;
  const ta = raw.toTypedArray();
  return { dtype: a.dtype.name, shape: [...a.shape], hex: toHex(new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength)) };
}

function keyOf(a: Args): mx.Array {
  if (a.key_hex !== undefined) {
    const b = new Uint8Array(a.key_hex.match(/../g)!.map((h) => parseInt(h, 16)));
    return mx.array(new Uint32Array(b.buffer));
  }
  return mx.random.key(a.seed!);
}

const val = (v: number | number[] | number[][]) => (typeof v === "number" ? v : mx.array(v));

function run(c: Case): mx.Array {
  const a = c.args;
  const key = keyOf(a);
  const dtype = a.dtype;
  switch (c.fn) {
    case "key":
      return mx.random.key(a.seed!);
    case "split":
      return mx.random.split(key, a.num);
    case "split_pair":
      return mx.random.split(key);
    case "uniform":
      return mx.random.uniform(val(a.low ?? 0), val(a.high ?? 1), a.shape ?? [], { dtype, key });
    case "normal":
      return mx.random.normal(a.shape, { dtype, key, loc: a.loc, scale: a.scale === undefined ? undefined : val(a.scale) });
    case "gumbel":
      return mx.random.gumbel(a.shape, dtype, { key });
    case "laplace":
      return mx.random.laplace(a.shape, { dtype, key, loc: a.loc, scale: a.scale as number | undefined });
    case "randint":
      return mx.random.randint(val(a.low!), val(a.high!), a.shape, { dtype, key });
    case "bernoulli":
      return a.p === undefined ? mx.random.bernoulli({ key }) : mx.random.bernoulli(val(a.p), a.shape, { key });
    case "truncated_normal":
      return mx.random.truncatedNormal(val(a.lower!), val(a.upper!), a.shape, { dtype, key });
    case "categorical":
      return mx.random.categorical(mx.array(a.logits!), { axis: a.axis, shape: a.shape, numSamples: a.num_samples, key });
    case "permutation":
      return a.n !== undefined ? mx.random.permutation(a.n, { key }) : mx.random.permutation(mx.array(a.x!), a.axis, { key });
  }
  throw new Error(`unknown case ${c.fn}`);
}

/** Same dtype and shape, and every element within `ulps` units in the last place (floats). */
function withinUlps(a: { dtype: string; shape: number[]; hex: string }, b: { dtype: string; shape: number[]; hex: string }, ulps: number): boolean {
  if (ulps === 0 || a.dtype !== b.dtype || JSON.stringify(a.shape) !== JSON.stringify(b.shape) || a.hex.length !== b.hex.length) return false;
  const width = a.dtype === "float32" ? 8 : a.dtype === "float16" || a.dtype === "bfloat16" ? 4 : 0;
  if (width === 0) return false;
  const sign = 2 ** (width * 4 - 1);
  const ordered = (hex: string) => {
    let v = 0;
    for (let k = width - 2; k >= 0; k -= 2) v = v * 256 + parseInt(hex.slice(k, k + 2), 16); // little-endian
    return v >= sign ? sign - v : v;
  };
  for (let i = 0; i < a.hex.length; i += width) {
    if (Math.abs(ordered(a.hex.slice(i, i + width)) - ordered(b.hex.slice(i, i + width))) > ulps) return false;
  }
  return true;
}

/** A test whose arrays are all released when it ends (no garbage left for the GC). */
function tidyTest(name: string, fn: () => void): void {
  test(name, () => mx.tidy(fn));
}

const label = (c: Case) => `${c.fn} ${JSON.stringify(c.args)}`;

describe("mx.random matches MLX bit for bit", () => {
  expect(fixture.mlx_version).toBe("0.32.4");
  const fns = [...new Set(fixture.cases.map((c) => c.fn))];
  for (const fn of fns) {
    test(fn, () => {
      const cases = fixture.cases.filter((c) => c.fn === fn);
      const bad: string[] = [];
      mx.tidy(() => {
        for (const c of cases) {
          const got = recOf(run(c));
          // laplace goes through log1p, which mlx-bun computes with its own vectorised
          // float32 log1p (within 0.501 ulp, engine/prims/scalar_math.zig) where MLX calls
          // glibc's log1pf: the samples agree to the last ulp.
          const tol = fn === "laplace" ? 1 : 0;
          if (JSON.stringify(got) !== JSON.stringify(c.result) && !withinUlps(got, c.result, tol)) {
            bad.push(`${label(c)}\n  got      ${JSON.stringify(got).slice(0, 300)}\n  expected ${JSON.stringify(c.result).slice(0, 300)}`);
          }
        }
      });
      expect(bad.slice(0, 5).join("\n")).toBe("");
      expect(cases.length).toBeGreaterThan(0);
    });
  }
});

describe("large draws (split over threads) match MLX", () => {
  for (const b of fixture.big) {
    tidyTest(`${b.fn} ${JSON.stringify(b.shape)}`, () => {
      const key = mx.random.key(11);
      const r = b.fn === "uniform" ? mx.random.uniform({ shape: b.shape, key })
        : b.fn === "normal" ? mx.random.normal(b.shape, { key })
        : mx.random.split(key, b.shape[0]);
      const got = recOf(r);
      expect([got.dtype, got.shape]).toEqual([b.dtype, b.shape]);
      expect(new Bun.CryptoHasher("sha256").update(Buffer.from(got.hex, "hex")).digest("hex")).toBe(b.sha256);
    });
  }
});

describe("the global key", () => {
  test("seed and calls without a key follow MLX's sequence", () => {
    const s = fixture.sequence;
    const got: Rec[] = [];
    mx.tidy(() => {
      mx.random.seed(7);
      got.push(recOf(mx.random.uniform({ shape: [3] })));
      got.push(recOf(mx.random.normal([2])));
      got.push(recOf(mx.random.randint(0, 10, [4])));
      got.push(recOf(mx.random.state[0]!));
      got.push(recOf(mx.random.bernoulli(0.5, [4])));
      got.push(recOf(mx.random.permutation(6)));
      got.push(recOf(mx.random.categorical(mx.array([0, 1, 2], mx.float32), { numSamples: 4 })));
      got.push(recOf(mx.random.gumbel([2])));
      got.push(recOf(mx.random.laplace([2])));
      got.push(recOf(mx.random.truncatedNormal(-1.0, 1.0, [2])));
      got.push(recOf(mx.random.state[0]!));
      mx.random.seed(7);
      got.push(recOf(mx.random.uniform({ shape: [3] })));
      mx.random.seed(2n ** 33n + 5n);
      got.push(recOf(mx.random.state[0]!));
    });
    expect(got).toEqual(s.map((e) => e.result));
  });

  tidyTest("the state survives mx.tidy scopes and stays usable", () => {
    mx.random.seed(1);
    mx.tidy(() => mx.random.uniform());
    const a = mx.tidy(() => mx.random.uniform({ shape: [2] }));
    expect(a.shape).toEqual([2]);
    expect(mx.random.state[0]!.disposed).toBe(false);
    mx.random.seed(1);
    mx.random.uniform();
    expect(mx.random.uniform({ shape: [2] }).tolist()).toEqual(a.tolist());
  });

  tidyTest("a key never advances the state", () => {
    mx.random.seed(3);
    const before = mx.random.state[0]!.tolist();
    mx.random.normal([4], { key: mx.random.key(0) });
    expect(mx.random.state[0]!.tolist()).toEqual(before);
  });
});

describe("bad inputs give MLX's errors", () => {
  const k = mx.keep(mx.random.key(0));
  const msg = (name: string) => {
    const e = fixture.errors.find((x) => x.name === name);
    if (e === undefined) throw new Error(`no fixture error ${name}`);
    return new RegExp(`^${e.message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  };
  const cases: [string, () => unknown][] = [
    ["uniform_int_dtype", () => mx.random.uniform({ shape: [2], dtype: mx.int32, key: k })],
    ["uniform_shape", () => mx.random.uniform(mx.zeros([3]), 1.0, [2], { key: k })],
    ["normal_int_dtype", () => mx.random.normal([2], mx.int32, { key: k })],
    ["randint_float_dtype", () => mx.random.randint(0, 5, [2], mx.float32, { key: k })],
    ["randint_shape", () => mx.random.randint(mx.zeros([3], mx.int32), 5, [2], { key: k })],
    ["bernoulli_int_p", () => mx.random.bernoulli(mx.array([1, 0]), { key: k })],
    ["bernoulli_shape", () => mx.random.bernoulli(mx.array([0.1, 0.2, 0.3]), [2], { key: k })],
    ["truncated_normal_int_dtype", () => mx.random.truncatedNormal(0.0, 1.0, [2], mx.int32, { key: k })],
    ["laplace_int_dtype", () => mx.random.laplace([2], mx.int32, { key: k })],
    ["categorical_axis", () => mx.random.categorical(mx.zeros([2, 3]), 2, { key: k })],
    ["categorical_shape", () => mx.random.categorical(mx.zeros([2, 3]), { shape: [4], key: k })],
    ["categorical_both", () => mx.random.categorical(mx.zeros([2, 3]), { shape: [2], numSamples: 2, key: k })],
    ["key_dtype", () => mx.random.uniform({ shape: [2], key: mx.array([1, 2]) })],
    ["key_shape", () => mx.random.uniform({ shape: [2], key: mx.array([1, 2, 3], mx.uint32) })],
    ["split_key_shape", () => mx.random.split(mx.zeros([2, 2], mx.uint32))],
    ["uniform_negative_shape", () => mx.random.uniform({ shape: [-1], key: k })],
  ];
  for (const [name, f] of cases) tidyTest(name, () => void expectMlxError(f, msg(name)));

  tidyTest("uniform's own shape check and the float64 case", () => {
    expectMlxError(() => mx.random.uniform(mx.zeros([3]), 1, [1], { key: k }),
      /^\[uniform\] Cannot generate random values of shape \(1\) from broadcasted shape \(3\)\.$/);
    expectMlxError(() => mx.random.uniform({ dtype: mx.float64, key: k }), /^\[uniform\] Unsupported type\.$/);
    expectMlxError(() => mx.random.key(-1), /^\[key\] The seed must be an integer/);
    expectMlxError(() => mx.random.split(k, 1.5), /^\[split\] num must be an integer/);
  });

  tidyTest("random bits are not differentiable: the key's gradient is zeros", () => {
    const g = mx.grad((key: mx.Array) => mx.sum(mx.random.uniform({ shape: [3], key: key.astype(mx.uint32) })))(mx.array([0, 1], mx.float32)) as mx.Array;
    expect(g.tolist()).toEqual([0, 0]);
  });
});

describe("multivariateNormal against MLX (mvn.json from gen_mvn.py)", () => {
  const cases = JSON.parse(readFileSync(new URL("./fixtures/random/mvn.json", import.meta.url), "utf8")) as {
    seed: number; mean: number[] | number[][]; cov: number[][] | number[][][]; shape: number[]; out_shape: number[]; out: number[];
  }[];
  test("values: same key, same samples up to the SVD's rounding", () => {
    for (const c of cases) {
      const got = mx.random.multivariateNormal(mx.array(c.mean, mx.float32), mx.array(c.cov, mx.float32), c.shape, { key: mx.random.key(c.seed) });
      expect(got.shape).toEqual(c.out_shape);
      expect(got.dtype).toBe(mx.float32);
      const vals = Array.from(got.toTypedArray() as Float32Array);
      vals.forEach((v, i) => {
        const w = c.out[i]!;
        if (!(Math.abs(v - w) <= 1e-4 * Math.max(1, Math.abs(w)))) throw new Error(`seed ${c.seed} element ${i}: got ${v}, want ${w}`);
      });
    }
  });
  test("MLX's errors", () => {
    const m = mx.zeros([3]);
    const c = mx.eye(3);
    expectMlxError(() => mx.random.multivariateNormal(m, c, [2], mx.float16), /^\[multivariate_normal\] dtype must be float32\.$/);
    expectMlxError(() => mx.random.multivariateNormal(mx.array(1), c), /^\[multivariate_normal\] mean must have at least one dimension\.$/);
    expectMlxError(() => mx.random.multivariateNormal(m, mx.zeros([3])), /^\[multivariate_normal\] cov must have at least two dimensions\.$/);
    expectMlxError(() => mx.random.multivariateNormal(m, mx.zeros([2, 3])), /^\[multivariate_normal\] last two dimensions of cov must be equal\.$/);
    expectMlxError(() => mx.random.multivariateNormal(mx.zeros([2]), c), /^\[multivariate_normal\] mean and cov must have compatible shapes\.$/);
    expectMlxError(() => mx.random.multivariateNormal(m, mx.stack([c, c]), [3]), /^\[broadcast_shapes\] Shapes \(2\) and \(3\) cannot be broadcast\.$/);
  });
});
