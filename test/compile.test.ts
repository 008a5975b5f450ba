// mx.compile: compiled vs uncompiled results for every op family (bit-identical), retracing
// exactly when a signature changes, the simplifier (CSE, no-ops, constant merging), captured
// state (a compiled SGD step on nn.Linear matches the plain one), transforms over and under
// compile, export/import round trips and every malformed file, and disposal.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as mx from "../src/index.ts";
import { liveCompiledTapes } from "../src/compile.ts";
import { chain10 } from "../bench/lib/chain.ts";
import { expectMlxError } from "./util.ts";

const dir = mkdtempSync(join(tmpdir(), "mlxb-compile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bytes(a: mx.Array): Uint8Array {
  const t = a.dtype === mx.bfloat16 ? a.toTypedArray({ bits: true }) : a.toTypedArray();
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength).slice();
}

function expectSame(got: unknown, want: unknown): void {
  const g = mx.utils.treeFlatten(got).map(([, v]) => v as mx.Array);
  const w = mx.utils.treeFlatten(want).map(([, v]) => v as mx.Array);
  expect(g.length).toBe(w.length);
  g.forEach((a, i) => {
    const b = w[i]!;
    expect(a.shape).toEqual(b.shape);
    expect(a.dtype).toBe(b.dtype);
    expect(bytes(a)).toEqual(bytes(b));
  });
}

const key = mx.random.key(7);
const x23 = mx.random.normal([2, 3], { key });
const y23 = mx.random.normal([2, 3], { key: mx.random.key(8) });
const m33 = mx.add(mx.random.normal([3, 3], { key: mx.random.key(9) }), mx.multiply(mx.eye(3), 4));
const ints = mx.array([[3, 1, 2], [0, 5, 4]], mx.int32);

// Each case: a function and its arguments; compiled twice (trace, then replay) vs plain.
const cases: [string, (...a: any[]) => unknown, unknown[]][] = [
  ["unary chain", (x: mx.Array) => mx.tanh(mx.exp(mx.sin(x))), [x23]],
  ["binary + scalars", (x: mx.Array, y: mx.Array) => mx.add(mx.multiply(x, 2), mx.divide(y, 3)), [x23, y23]],
  ["broadcasting", (x: mx.Array, y: mx.Array) => mx.subtract(x, mx.sum(y, { axis: 0 })), [x23, y23]],
  ["where / compare", (x: mx.Array, y: mx.Array) => mx.where(mx.greater(x, y), x, y), [x23, y23]],
  ["reductions", (x: mx.Array) => [mx.sum(x), mx.max(x, { axis: 1 }), mx.mean(x, { axis: 0, keepdims: true }), mx.argmax(x, { axis: 1 }), mx.logsumexp(x, { axis: 1 })], [x23]],
  ["shape ops", (x: mx.Array) => [mx.reshape(x, [3, 2]), mx.transpose(x), mx.concatenate([x, x], 0), mx.pad(x, 1), mx.flip(x, 1), mx.roll(x, 1, 1)], [x23]],
  ["indexing", (x: mx.Array, i: mx.Array) => [mx.take(x, i, 1), x.index(1), x.index(mx.sl(0, 2), mx.sl(null, null, 2)), mx.takeAlongAxis(x, mx.argsort(x, 1), 1)], [x23, mx.array([2, 0], mx.int32)]],
  ["scatter", (x: mx.Array) => x.at(mx.array([0, 1], mx.int32)).add(1), [x23]],
  ["matmul", (x: mx.Array, m: mx.Array) => mx.matmul(x, m), [x23, m33]],
  ["conv1d", (x: mx.Array, w: mx.Array) => mx.conv1d(x, w), [mx.random.normal([1, 8, 2], { key }), mx.random.normal([3, 3, 2], { key })]],
  ["fft", (x: mx.Array) => [mx.fft.rfft(x), mx.fft.fft(x.astype(mx.complex64))], [x23]],
  ["random with a key argument", (k: mx.Array) => [mx.random.uniform({ shape: [4], key: k }), mx.random.normal([2, 2], { key: k })], [key]],
  ["linalg", (m: mx.Array) => [mx.linalg.inv(m), mx.linalg.cholesky(mx.matmul(m, mx.transpose(m)))], [m33]],
  ["sort / scan", (x: mx.Array) => [mx.sort(x, 1), mx.cumsum(x, 1), mx.topk(x, 2, 1)], [x23]],
  ["integers", (a: mx.Array) => [mx.floorDivide(a, 2), mx.bitwiseAnd(a, 3), mx.astype(a, mx.float16)], [ints]],
  ["astype chain", (x: mx.Array) => mx.astype(mx.astype(x, mx.bfloat16), mx.float32), [x23]],
  ["trees in and out", (t: { a: mx.Array; b: mx.Array[] }) => ({ s: mx.add(t.a, t.b[0]!), p: [mx.multiply(t.a, t.b[1]!)] }), [{ a: x23, b: [y23, x23] }]],
];

describe("compiled vs uncompiled, bit-identical", () => {
  for (const [name, f, args] of cases) {
    test(name, () => {
      const c = mx.compile(f);
      const want = f(...args);
      expectSame(c(...args), want); // the trace's replay
      expectSame(c(...args), want); // a later replay
      expect(c.traceCount).toBe(1);
      c.dispose();
    });
  }
});

describe("signatures and retracing", () => {
  test("retraces exactly when shapes, dtypes, structure or constants change", () => {
    const c = mx.compile((x: mx.Array, s: number | string) => (typeof s === "number" ? mx.add(x, s) : mx.negative(x)));
    const a = mx.ones([2]);
    c(a, 1);
    c(mx.zeros([2]), 1); // same signature
    expect(c.traceCount).toBe(1);
    c(mx.ones([3]), 1); // shape
    expect(c.traceCount).toBe(2);
    c(mx.ones([3], mx.int32), 1); // dtype
    expect(c.traceCount).toBe(3);
    expect(c(a, 2).tolist()).toEqual([3, 3]); // constant by value
    expect(c.traceCount).toBe(4);
    c(a, 2);
    c(a, 1);
    expect(c.traceCount).toBe(4);
    expect(c(a, "neg").tolist()).toEqual([-1, -1]);
    expect(c.traceCount).toBe(5);
    expect(c.cacheSize).toBe(5);
  });

  test("non-array, non-constant arguments are refused with MLX's message", () => {
    class MyClass {
      value = 1;
    }
    const c = mx.compile((x: mx.Array, y: MyClass) => mx.add(x, y.value));
    expectMlxError(() => c(mx.array(0), new MyClass()), /^\[compile\] Function arguments must be trees of arrays or constants \(floats, ints, strings, or None\), but received type MyClass\.$/);
  });

  test("evaluating inside a compiled function fails as in MLX", () => {
    const c = mx.compile((x: mx.Array) => mx.add(x, mx.add(x, 1).item() as number));
    expectMlxError(() => c(mx.array(1)), /^\[eval\] Attempting to eval an array during function transformations like compile or vmap is not allowed\.$/);
  });

  test("closures are captured at trace time (constants), as in MLX", () => {
    let y = mx.array(1);
    const c = mx.compile((x: mx.Array) => mx.add(x, y));
    expect(c(mx.array(1)).item()).toBe(2);
    y = mx.array([1, 2]);
    expect(c(mx.array(1)).item()).toBe(2);
  });

  test("disableCompile / enableCompile", () => {
    let calls = 0;
    const c = mx.compile((x: mx.Array) => {
      calls++;
      return mx.add(x, 1);
    });
    c(mx.array(1));
    c(mx.array(1));
    expect(calls).toBe(1);
    mx.disableCompile();
    try {
      expect(c(mx.array(1)).item()).toBe(2);
      expect(calls).toBe(2);
    } finally {
      mx.enableCompile();
    }
    c(mx.array(1));
    expect(calls).toBe(2);
  });

  test("MLXB_DISABLE_COMPILE=1 disables compile in a new process", () => {
    const prog = `import * as mx from "${join(import.meta.dir, "..", "src", "index.ts")}"; let n = 0; const c = mx.compile((x) => { n++; return mx.add(x, 1); }); c(mx.array(1)); c(mx.array(1)); console.log(n);`;
    const file = join(dir, "disable.ts");
    writeFileSync(file, prog);
    const run = (env: Record<string, string>) => Bun.spawnSync([process.execPath, file], { env: { ...process.env, ...env } }).stdout.toString().trim();
    expect(run({ MLXB_DISABLE_COMPILE: "1" })).toBe("2");
    expect(run({ MLXB_DISABLE_COMPILE: "0" })).toBe("1");
  });
});

describe("simplification", () => {
  test("CSE merges the same op on the same inputs; no-op casts vanish; equal scalars merge", () => {
    const f = (x: mx.Array) => {
      const y = mx.add(x, 1);
      const z = mx.add(x, 1); // the same as y
      const w = mx.astype(mx.exp(x), mx.float32); // astype to its own dtype: nothing
      const v = mx.reshape(mx.exp(x), [3]); // exp again (CSE), reshape to the same shape (no-op)
      return mx.add(mx.add(y, z), mx.add(w, v));
    };
    const c = mx.compile(f, { fuse: false });
    const x = mx.array([1, 2, 3], mx.float32);
    expectSame(c(x), f(x));
    const [st] = c.tapeStats;
    // add(x,1), exp, add(y,z), add(w,v), final add: 5 steps; one constant (the merged 1s)
    expect(st).toEqual({ steps: 5, constants: 1, inputs: 1, outputs: 1, fused: 0 });
    // Fused, the five are one step and the 1 is written into its program.
    const cf = mx.compile(f);
    expectSame(cf(x), f(x));
    expect(cf.tapeStats).toEqual([{ steps: 1, constants: 0, inputs: 1, outputs: 1, fused: 1 }]);
  });

  test("an output that is an input or a constant", () => {
    const k = mx.array([5, 6]);
    const c = mx.compile((x: mx.Array) => [x, k, mx.stopGradient(x)]);
    const [a, b, s] = c(mx.array([1, 2])) as mx.Array[];
    expect(a!.tolist()).toEqual([1, 2]);
    expect(b!.tolist()).toEqual([5, 6]);
    expect(s!.tolist()).toEqual([1, 2]);
  });
});

describe("shapeless", () => {
  test("no retrace when only shapes change; retrace on dtype or rank", () => {
    const c = mx.compile((x: mx.Array, y: mx.Array) => mx.add(mx.multiply(x, y), mx.sum(y, { axis: 0, keepdims: true })), { shapeless: true });
    const f = (x: mx.Array, y: mx.Array) => mx.add(mx.multiply(x, y), mx.sum(y, { axis: 0, keepdims: true }));
    for (const [a, b] of [[[2, 2], [2, 2]], [[3, 4], [3, 4]], [[3, 4], [1, 4]], [[1, 1], [5, 6]]] as const) {
      const x = mx.random.normal([...a], { key });
      const y = mx.random.normal([...b], { key: mx.random.key(3) });
      expectSame(c(x, y), f(x, y));
    }
    expect(c.traceCount).toBe(1);
    c(mx.ones([2, 2], mx.int32), mx.ones([2, 2], mx.int32));
    expect(c.traceCount).toBe(2);
    c(mx.ones([2]), mx.ones([2]));
    expect(c.traceCount).toBe(3);
  });

  test("keepdims=false reductions (MLX's shapeless reduction case)", () => {
    const c2 = mx.compile((x: mx.Array) => mx.multiply(x, mx.sum(x, { axis: -1 })), { shapeless: true });
    const x1 = mx.array([[1, 2], [3, 4]]);
    const x2 = mx.array([[1, 2, 3]]);
    expectSame(c2(x1), mx.multiply(x1, mx.sum(x1, { axis: -1 })));
    expectSame(c2(x2), mx.multiply(x2, mx.sum(x2, { axis: -1 })));
  });

  test("primitives with fixed shapes cannot be compiled shapeless", () => {
    const c = mx.compile((x: mx.Array) => x.index(mx.sl(1, 3)), { shapeless: true });
    expectMlxError(() => c(mx.ones([4])), /^\[compile\] slice cannot be compiled shapeless/);
  });

  test("reshape rules: -1, flatten, unflatten, squeeze/expand_dims follow the input; fixed sizes stay", () => {
    const cases: [string, (x: mx.Array) => mx.Array, number[], number[], number[]][] = [
      // name, fn, traced shape, replay shape, expected replay shape (hand)
      ["reshape -1", (x) => mx.reshape(x, [-1]), [2, 3], [4, 5], [20]],
      ["reshape 2,-1,4", (x) => mx.reshape(x, [2, -1, 4]), [6, 4], [5, 8], [2, 5, 4]],
      ["flatten", (x) => mx.flatten(x), [2, 3], [4, 5], [20]],
      ["flatten 1..2", (x) => mx.flatten(x, 1, 2), [2, 3, 4, 5], [3, 2, 2, 7], [3, 4, 7]],
      ["unflatten", (x) => mx.unflatten(x, 1, [-1, 2]), [3, 4], [5, 6], [5, 3, 2]],
      ["unflatten fixed", (x) => mx.unflatten(x, 0, [2, 2]), [4, 3], [4, 7], [2, 2, 7]],
      ["squeeze", (x) => mx.squeeze(x, 1), [2, 1, 3], [5, 1, 4], [5, 4]],
      ["expandDims", (x) => mx.expandDims(x, 0), [2, 3], [4, 5], [1, 4, 5]],
      ["fixed sizes", (x) => mx.reshape(x, [6, 4]), [2, 3, 4], [3, 2, 4], [6, 4]],
    ];
    for (const [name, f, t, r, want] of cases) {
      const c = mx.compile(f, { shapeless: true });
      expect([name, c(mx.ones(t)).shape]).toEqual([name, f(mx.ones(t)).shape]);
      const x = mx.reshape(mx.arange(r.reduce((p, q) => p * q, 1), mx.float32), r);
      const out = c(x);
      expect([name, out.shape]).toEqual([name, want]);
      expect(mx.arrayEqual(out, mx.reshape(x, want)).item()).toBe(true);
      expect(c.traceCount).toBe(1);
    }
    const fixed = mx.compile((x: mx.Array) => mx.reshape(x, [6, 4]), { shapeless: true });
    fixed(mx.ones([2, 3, 4]));
    expectMlxError(() => fixed(mx.ones([2, 3, 8])), /^\[reshape\] Cannot reshape array of size 48 into shape \(6,4\)\./);
    // Traced on size-1 axes only, a grown axis could be either: refused, not guessed.
    const st = mx.compile((x: mx.Array) => mx.expandDims(x, 1), { shapeless: true });
    expect(st(mx.ones([1])).shape).toEqual([1, 1]);
    expectMlxError(() => st(mx.ones([3])), /^\[compile\] reshape cannot be replayed shapeless on shape \(3\)/);
  });

  test("concatenate, stack, take, take_along_axis recompute their shapes", () => {
    const cc = mx.compile((a: mx.Array, b: mx.Array) => mx.concatenate([a, b], 0), { shapeless: true });
    expect(cc(mx.arange(2), mx.arange(3)).tolist()).toEqual([0, 1, 0, 1, 2]);
    expect(cc(mx.arange(4), mx.arange(1)).tolist()).toEqual([0, 1, 2, 3, 0]);
    const st = mx.compile((a: mx.Array, b: mx.Array) => mx.stack([a, b]), { shapeless: true });
    expect(st(mx.arange(2), mx.arange(2)).tolist()).toEqual([[0, 1], [0, 1]]);
    expect(st(mx.arange(3), mx.arange(3)).tolist()).toEqual([[0, 1, 2], [0, 1, 2]]);
    const tk = mx.compile((b: mx.Array, i: mx.Array) => mx.take(b, i, 0), { shapeless: true });
    expect(tk(mx.array([10, 20, 30, 40, 50]), mx.arange(1)).tolist()).toEqual([10]);
    expect(tk(mx.array([10, 20, 30, 40, 50]), mx.arange(3)).tolist()).toEqual([10, 20, 30]);
    expect(tk(mx.arange(8), mx.array([7, 0])).tolist()).toEqual([7, 0]);
    // Row gather: the slice sizes stay as traced (MLX: [[9, 10]], not [[9, 10, 11]]).
    const rows = mx.compile((x: mx.Array, i: mx.Array) => x.index(i), { shapeless: true });
    expect(rows(mx.reshape(mx.arange(6), [3, 2]), mx.array([2, 0])).tolist()).toEqual([[4, 5], [0, 1]]);
    expect(rows(mx.reshape(mx.arange(12), [4, 3]), mx.array([3])).tolist()).toEqual([[9, 10]]);
    const tal = mx.compile((x: mx.Array, i: mx.Array) => mx.takeAlongAxis(x, i, 1), { shapeless: true });
    expect(tal(mx.reshape(mx.arange(6), [2, 3]), mx.array([[2], [0]])).tolist()).toEqual([[2], [3]]);
    expect(tal(mx.reshape(mx.arange(12), [3, 4]), mx.array([[3, 1], [0, 0], [1, 2]])).tolist()).toEqual([[3, 1], [4, 4], [9, 10]]);
    expect(cc.traceCount + st.traceCount + tk.traceCount + rows.traceCount + tal.traceCount).toBe(5);
  });
});

// Values from real MLX 0.32.4 (test/fixtures/compile/mlx_exporter_probe.py prints them):
// a[i] is a gather whose index is normalized when traced and whose slice sizes stay as traced.
test("shapeless integer index of a plain array replays as MLX's gather", () => {
  const last = mx.compile((x: mx.Array) => x.index(-1), { shapeless: true });
  expect(last(mx.arange(5)).item()).toBe(4);
  expect(last(mx.multiply(mx.arange(8), 10)).item()).toBe(40); // a[4] on 8 elements, as MLX
  const two = mx.compile((x: mx.Array) => x.index(2), { shapeless: true });
  expect(two(mx.arange(5)).item()).toBe(2);
  expect(two(mx.multiply(mx.arange(8), 10)).item()).toBe(20);
  const expr = mx.compile((x: mx.Array) => mx.add(mx.multiply(x.index(-1), 2), x.index(0)), { shapeless: true });
  expect(expr(mx.arange(5, mx.float32)).item()).toBe(8);
  expect(expr(mx.multiply(mx.arange(8, mx.float32), 10)).item()).toBe(80);
  // Rows: the row length stays as traced (MLX: x[-1] traced on (5, 2) gives [12, 13] on (8, 3)).
  const row = mx.compile((x: mx.Array) => x.index(-1), { shapeless: true });
  expect(row(mx.reshape(mx.arange(10), [5, 2])).tolist()).toEqual([8, 9]);
  expect(row(mx.reshape(mx.arange(24), [8, 3])).tolist()).toEqual([12, 13]);
  const row2 = mx.compile((x: mx.Array) => x.index(-2), { shapeless: true });
  expect(row2(mx.reshape(mx.arange(10), [5, 2])).tolist()).toEqual([6, 7]);
  expect(row2(mx.reshape(mx.arange(24), [8, 3])).tolist()).toEqual([9, 10]);
  expect(last.traceCount + two.traceCount + expr.traceCount + row.traceCount + row2.traceCount).toBe(5);
  // Not shapeless, or with a slice too: the view as before (new shapes retrace).
  const plain = mx.compile((x: mx.Array) => x.index(-1));
  expect(plain(mx.arange(5)).item()).toBe(4);
  expect(plain(mx.arange(8)).item()).toBe(7);
  expect(plain.traceCount).toBe(2);
});

describe("transforms", () => {
  const loss = (w: mx.Array, x: mx.Array) => {
    const y = mx.multiply(x, w);
    return mx.sum(mx.multiply(y, mx.exp(y)));
  };
  const x = mx.array([1.0, 0.5, 2.0, -0.5]);
  const w = mx.array([-1.0, 0.3, 1.0, -0.9]);

  test("compile(grad(f)) and compile(valueAndGrad(f))", () => {
    const g = mx.grad(loss);
    expectSame(mx.compile(g)(w, x), g(w, x));
    const vg = mx.valueAndGrad((v: mx.Array) => [mx.sum(mx.exp(v)), mx.sin(v)]);
    const cvg = mx.compile(vg);
    expectSame(cvg(x), vg(x));
    expectSame(cvg(x), vg(x));
  });

  test("grad(compile(f)), vjp and jvp of a compiled function", () => {
    const c = mx.compile(loss);
    expectSame(mx.grad(c)(w, x), mx.grad(loss)(w, x));
    expectSame(mx.grad(c)(w, x), mx.grad(loss)(w, x));
    const f = (a: mx.Array, b: mx.Array) => mx.abs(mx.add(mx.exp(mx.add(a, b)), b));
    const cf = mx.compile(f);
    const ones = mx.onesLike(x);
    expectSame(mx.vjp(cf, [x, w], [ones]), mx.vjp(f, [x, w], [ones]));
    // Under a transform a fused step replays as its ordinary ops: the same graph, the same bits.
    expectSame(mx.jvp(cf, [x, w], [ones, ones]), mx.jvp(f, [x, w], [ones, ones]));
    expect(cf.tapeStats[0]!.fused).toBe(1);
    expect(c.traceCount).toBe(1);
  });

  test("vmap(compile(f)) with in_axes", () => {
    const f = (a: mx.Array, b: mx.Array) => mx.abs(mx.add(mx.exp(mx.add(a, b)), b));
    const a = mx.array([[1.0, -3.0], [0.5, -0.5]]);
    const b = mx.array([[2.0, -1.0], [0.25, -0.25]]);
    expectSame(mx.vmap(mx.compile(f))(a, b), mx.vmap(f)(a, b));
    expectSame(mx.vmap(mx.compile(f), { inAxes: [0, 1] })(a, b), mx.vmap(f, { inAxes: [0, 1] })(a, b));
  });

  test("a custom function inside compile keeps its rule under grad", () => {
    const cf = mx.customFunction((v: mx.Array) => mx.exp(v));
    cf.vjp((_p, ct) => [mx.multiply(ct as mx.Array, 2)]);
    const c = mx.compile((v: mx.Array) => mx.sum(cf(v)));
    expectSame(c(x), mx.sum(mx.exp(x)));
    expect(mx.grad(c)(x)).toBeDefined();
    expect((mx.grad(c)(x) as mx.Array).tolist()).toEqual([2, 2, 2, 2]);
  });
});

describe("captured state", () => {
  test("inputs are read at each call (MLX test_compile_capture)", () => {
    const state = { y: mx.array(2) };
    const c = mx.compile((x: mx.Array) => mx.add(x, state.y), { inputs: state });
    expect(c(mx.array(1)).item()).toBe(3);
    expect(state.y.item()).toBe(2);
    state.y = mx.array(3);
    expect(c(mx.array(1)).item()).toBe(4);
    expect(c.traceCount).toBe(1);
    const list = [mx.array(2)];
    const c2 = mx.compile((x: mx.Array) => mx.add(x, list[0]!), { inputs: list });
    expect(c2(mx.array(1)).item()).toBe(3);
    list[0] = mx.array(3);
    expect(c2(mx.array(1)).item()).toBe(4);
  });

  test("outputs are written after each call; a changed state structure retraces", () => {
    const out: Record<string, mx.Array> = {};
    const c = mx.compile((x: mx.Array) => {
      out.y = mx.add(x, 3);
      return mx.abs(x);
    }, { outputs: out });
    c(mx.array(-1));
    expect(out.y!.item()).toBe(2);
    const st: Record<string, mx.Array> = {};
    const c2 = mx.compile((x: mx.Array) => {
      const y = st.y ?? mx.array(0);
      st.y = mx.add(x, y);
      return mx.add(x, mx.multiply(2, y));
    }, { inputs: st, outputs: st });
    c2(mx.array(1));
    expect(st.y!.item()).toBe(1);
    c2(mx.array(1));
    expect(st.y!.item()).toBe(2);
    c2(mx.array(1));
    expect(st.y!.item()).toBe(3);
    expect(c2.traceCount).toBe(2);
  });

  test("the random state advances on each call when captured (MLX test_compile_rng)", () => {
    const c = mx.compile(() => mx.random.uniform({ shape: [10, 10] }), { inputs: mx.random.state, outputs: mx.random.state });
    mx.random.seed(3);
    const a = c();
    const b = c();
    expect(mx.allclose(a, b, { rtol: 1e-2, atol: 1e-2 }).item()).toBe(false);
    // The same sequence as uncompiled calls.
    mx.random.seed(3);
    expectSame(a, mx.random.uniform({ shape: [10, 10] }));
    expectSame(b, mx.random.uniform({ shape: [10, 10] }));
    expect(c.traceCount).toBe(1);
  });

  test("a compiled SGD training step on nn.Linear matches the plain one", () => {
    const run = (compiled: boolean) => {
      mx.random.seed(11);
      const model = new mx.nn.Linear(4, 2);
      const opt = new mx.optimizers.SGD({ learningRate: 0.1, momentum: 0.9 });
      const lossFn = (xx: mx.Array, yy: mx.Array) => mx.mean(mx.square(mx.subtract(model.forward(xx), yy)));
      const lg = mx.nn.valueAndGrad(model, lossFn);
      const step = (xx: mx.Array, yy: mx.Array) => {
        const [l, g] = lg(xx, yy);
        opt.update(model, g);
        return l;
      };
      const state = [model, opt];
      const s = compiled ? mx.compile(step, { inputs: state, outputs: state }) : step;
      const xs = mx.random.normal([8, 4], { key: mx.random.key(1) });
      const ys = mx.random.normal([8, 2], { key: mx.random.key(2) });
      const losses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const l = s(xs, ys) as mx.Array;
        mx.eval(l, model.parameters());
        losses.push(l.item() as number);
      }
      if (compiled) expect((s as mx.CompiledFunction<[mx.Array, mx.Array], mx.Array>).traceCount).toBe(2); // first call initializes the optimizer state
      return { losses, w: model.weight };
    };
    const plain = run(false);
    const comp = run(true);
    expect(comp.losses).toEqual(plain.losses);
    expectSame(comp.w, plain.w);
    expect(plain.losses[5]!).toBeLessThan(plain.losses[0]!);
  });
});

describe("export and import", () => {
  test("round trip: same results, trees flattened, constants kept", () => {
    const k = mx.array([1.5, -2], mx.float32);
    const f = (a: mx.Array, t: { b: mx.Array }) => [mx.add(mx.multiply(a, k), t.b), mx.sum(mx.exp(a))];
    const file = join(dir, "f.mlxfn");
    const a = mx.array([1, 2], mx.float32);
    const b = mx.array([3, 4], mx.float32);
    mx.exportFunction(file, f, a, { b });
    const g = mx.importFunction(file);
    expect(g.inputCount).toBe(2);
    const [o1, o2] = g(a, { b });
    expectSame([o1, o2], f(a, { b }));
    const a2 = mx.array([-1, 0.5], mx.float32);
    expectSame(g(a2, { b }), f(a2, { b }));
    // A call must have the traced tree, dtypes and shapes (MLX's message; test/compile_export.test.ts).
    expectMlxError(() => g(mx.ones([3]), { b }), /^\[import_function::call\] No imported function found/);
    expectMlxError(() => g(a2, b), /^\[import_function::call\] No imported function found/);
    expectMlxError(() => g(a), /^\[import_function::call\] No imported function found/);
    g.dispose();
  });

  test("every op family survives export (generic parameter serializer)", () => {
    for (const [name, f, args] of cases) {
      const file = join(dir, `case-${name.replace(/\W+/g, "_")}.mlxfn`);
      mx.exportFunction(file, f, ...args);
      const g = mx.importFunction(file);
      expectSame(g(...args), mx.utils.treeFlatten(f(...args)).map(([, v]) => v));
      g.dispose();
    }
  });

  test("shapeless export", () => {
    const file = join(dir, "shapeless.mlxfn");
    mx.exportFunction({ path: file, shapeless: true }, (v: mx.Array) => mx.multiply(v, 2), mx.ones([2]));
    const g = mx.importFunction(file);
    expect(g(mx.array([1, 2, 3], mx.float32))[0]!.tolist()).toEqual([2, 4, 6]);
  });

  test("shapeless export keeps reshape rules, matmul and take", () => {
    const file = join(dir, "shapeless-rules.mlxfn");
    const f = (a: mx.Array, b: mx.Array, i: mx.Array) => mx.take(mx.reshape(mx.matmul(a, b), [-1]), i, 0);
    mx.exportFunction({ path: file, shapeless: true }, f, mx.ones([2, 3]), mx.ones([3, 2]), mx.array([0, 3]));
    const g = mx.importFunction(file);
    const a = mx.reshape(mx.arange(6, mx.float32), [3, 2]);
    const b = mx.reshape(mx.arange(8, mx.float32), [2, 4]);
    // a @ b = [[4,5,6,7],[12,17,22,27],[20,29,38,47]] (hand), flattened, elements 11 and 0.
    expect(g(a, b, mx.array([11, 0, 5]))[0]!.tolist()).toEqual([47, 4, 17]);
  });

  test("malformed files give a clear [import_function] error naming the file", () => {
    const file = join(dir, "good.mlxfn");
    mx.exportFunction(file, (v: mx.Array) => mx.sin(mx.sum(mx.add(v, 1))), mx.ones([2]));
    const good = readFileSync(file);
    const bad = (name: string, data: Uint8Array, re: RegExp) => {
      const p = join(dir, name);
      writeFileSync(p, data);
      const e = expectMlxError(() => mx.importFunction(p), re);
      expect(e.message).toContain(p);
    };
    bad("magic.mlxfn", Buffer.concat([Buffer.from("NOTMLXB!"), good.subarray(8)]), /^\[import_function\] The file .* is not an mlx-bun function file \(bad magic\)\.$/);
    const v = Buffer.from(good);
    v.writeUInt32LE(99, 8);
    bad("version.mlxfn", v, /has format version 99; this mlx-bun reads versions 1 and 2\.$/);
    for (const n of [0, 4, 8, 12, 20, good.length - 1]) bad(`trunc${n}.mlxfn`, good.subarray(0, n), /^\[import_function\] The file .* (is truncated|is not an mlx-bun function file|is malformed)/);
    // An unknown primitive name: the step's family tag "elementwise" renamed.
    const i = good.indexOf("elementwise");
    const u = Buffer.from(good);
    u.write("elementwisX", i);
    bad("prim.mlxfn", u, /names an unknown primitive 'elementwisX'/);
    // An out-of-range operand: the last output reference points past the steps.
    const o = Buffer.from(good);
    o.writeUInt32LE((1 << 30) | 999, o.length - 4);
    bad("ref.mlxfn", o, /an operand refers to step 999, out of range/);
    bad("trailing.mlxfn", Buffer.concat([good, Buffer.from([0])]), /trailing bytes/);
    expectMlxError(() => mx.importFunction(join(dir, "missing.mlxfn")), /^\[import_function\] Cannot read .*missing\.mlxfn: FileNotFound\.$/);
  });

  test("custom functions cannot be exported", () => {
    const cf = mx.customFunction((v: mx.Array) => mx.exp(v));
    expectMlxError(() => mx.exportFunction(join(dir, "custom.mlxfn"), (v: mx.Array) => cf(v), mx.ones([2])), /^\[export_function\] The function calls a custom function/);
  });
});

describe("fusion", () => {
  // A 10-op elementwise chain with a broadcast (y is a row) and scalar constants: the chain
  // bench/fuse_chain.ts times.
  const chain = chain10;
  const x = mx.random.normal([8, 33], { key: mx.random.key(11) });
  const y = mx.random.uniform({ shape: [33], key: mx.random.key(12) });

  test("a compiled 10-op chain is one fused step with the same bits as uncompiled", () => {
    const c = mx.compile(chain);
    expectSame(c(x, y), chain(x, y));
    expectSame(c(x, y), chain(x, y));
    expect(c.tapeStats).toEqual([{ steps: 1, constants: 0, inputs: 2, outputs: 1, fused: 1 }]);
    const plain = mx.compile(chain, { fuse: false });
    expectSame(plain(x, y), chain(x, y));
    expect(plain.tapeStats[0]!.steps).toBe(10);
    expect(plain.tapeStats[0]!.fused).toBe(0);
  });

  test("intermediates the function keeps (closures, outputs) still fuse around them", () => {
    const kept: mx.Array[] = [];
    const f = (a: mx.Array) => {
      const e = mx.exp(mx.sin(a));
      kept.push(e); // held by JS after the trace: the tape does not care
      return [mx.sqrt(mx.abs(mx.cos(e))), mx.square(mx.negative(e))];
    };
    const c = mx.compile(f);
    expectSame(c(x), f(x));
    // exp(sin) is read twice: one fused step for it, one per output chain.
    expect(c.tapeStats[0]).toEqual({ steps: 3, constants: 0, inputs: 1, outputs: 2, fused: 3 });
  });

  test("float16, bfloat16 and integer chains, casts and where (bits as uncompiled)", () => {
    const h = (a: mx.Array, b: mx.Array) => mx.where(mx.greater(a, b), mx.multiply(mx.exp(a), b), mx.subtract(mx.sin(b), 1));
    for (const dt of [mx.float16, mx.bfloat16, mx.float32]) {
      const a = x.astype(dt);
      const b = y.astype(dt);
      const c = mx.compile(h);
      expectSame(c(a, b), h(a, b));
      // sin(b) - 1 is a row (smaller than the output): its own fused step, not recomputed per row.
      expect(c.tapeStats[0]!.fused).toBe(2);
    }
    const ints = mx.array([[3, -1, 7], [0, 5, -4]], mx.int32);
    const g = (a: mx.Array) => mx.astype(mx.floorDivide(mx.multiply(mx.add(a, 3), a), 2), mx.float32);
    const cg = mx.compile(g);
    expectSame(cg(ints), g(ints));
    expect(cg.tapeStats[0]!.fused).toBe(1);
  });

  test("fused steps on views, 0-d, empty and complex inputs", () => {
    const f = (a: mx.Array, b: mx.Array) => mx.sqrt(mx.abs(mx.subtract(mx.exp(mx.multiply(a, b)), 1)));
    const c = mx.compile(f);
    const a = mx.random.normal([5, 7], { key: mx.random.key(30) });
    const t = mx.random.normal([7, 5], { key: mx.random.key(31) });
    const row = mx.broadcastTo(mx.array([1, 2, 3, 4, 5, 6, 7], mx.float32), [5, 7]);
    const s = mx.array(2.5, mx.float32);
    const e = mx.zeros([0, 3]);
    const st = a.index(mx.sl(null, null, 2));
    for (const [p, q] of [[a, t.T], [a, row], [s, s], [e, e], [st, st]] as const) expectSame(c(p, q), f(p, q));
    const g = (v: mx.Array) => mx.abs(mx.exp(mx.multiply(v, v)));
    const z = a.astype(mx.complex64);
    const cg = mx.compile(g);
    expectSame(cg(z), g(z));
    expect(cg.tapeStats[0]!.fused).toBe(1);
  });

  test("grad of a compiled fused function equals grad uncompiled (exact), and compile(grad)", () => {
    const loss = (a: mx.Array, b: mx.Array) => mx.sum(chain(a, b));
    const c = mx.compile(loss);
    expect(c.tapeStats.length).toBe(0);
    const g = mx.grad(c, { argnums: [0, 1] });
    const want = mx.grad(loss, { argnums: [0, 1] })(x, y);
    expectSame(g(x, y), want);
    expect(c.tapeStats[0]!.fused).toBe(1);
    const cg = mx.compile(mx.grad(loss, { argnums: [0, 1] }));
    expectSame(cg(x, y), want);
    expect(cg.tapeStats[0]!.fused).toBeGreaterThan(0);
    const unfused = mx.compile(mx.grad(loss, { argnums: [0, 1] }), { fuse: false });
    expectSame(unfused(x, y), want);
    expect(cg.tapeStats[0]!.steps).toBeLessThan(unfused.tapeStats[0]!.steps);
    const vg = mx.valueAndGrad(c);
    expectSame(vg(x, y), mx.valueAndGrad(loss)(x, y));
  });

  test("nested: a compiled function closing over a tracer, compile(grad(compile(f))), vmap(grad(compile(f)))", () => {
    const a = mx.array([0.5, -1, 2, 0.25]);
    const w = mx.array([1.5, 0.5, -0.5, 2]);
    const inner = (wv: mx.Array) => mx.sum(mx.compile((v: mx.Array) => mx.exp(mx.add(mx.multiply(mx.sin(v), wv), 1)))(a));
    const plain = (wv: mx.Array) => mx.sum(mx.exp(mx.add(mx.multiply(mx.sin(a), wv), 1)));
    expectSame(mx.grad(inner)(w), mx.grad(plain)(w));
    const f = (v: mx.Array) => mx.sum(mx.tanh(mx.exp(mx.multiply(mx.sin(v), 2))));
    const cc = mx.compile(mx.grad(mx.compile(f)));
    expectSame(cc(a), mx.grad(f)(a));
    expect(cc.tapeStats[0]!.fused).toBe(1); // the forward and backward chains: one kernel
    const both = mx.stack([a, w]);
    expectSame(mx.vmap(mx.grad(mx.compile(f)))(both), mx.vmap(mx.grad(f))(both));
  });

  test("vmap of a compiled fused function", () => {
    const c = mx.compile(chain);
    const rows = mx.random.uniform({ shape: [4, 33], key: mx.random.key(13) });
    expectSame(mx.vmap(c, { inAxes: [null, 0] })(x.index(0), rows), mx.vmap(chain, { inAxes: [null, 0] })(x.index(0), rows));
  });

  test("export and import of a function with fused steps round-trips", () => {
    const file = join(dir, "fused.mlxfn");
    mx.exportFunction(file, chain, x, y);
    expect(readFileSync(file).includes("fused")).toBe(true);
    const g = mx.importFunction(file);
    expectSame(g(x, y), [chain(x, y)]);
    const x2 = mx.random.normal([8, 33], { key: mx.random.key(14) });
    expectSame(g(x2, y), [chain(x2, y)]);
    g.dispose();
    // Shapeless: the fused step's shape follows its inputs.
    const sfile = join(dir, "fused-shapeless.mlxfn");
    mx.exportFunction({ path: sfile, shapeless: true }, chain, x, y);
    const sg = mx.importFunction(sfile);
    const x3 = mx.random.normal([3, 5], { key: mx.random.key(15) });
    const y3 = mx.random.uniform({ shape: [5], key: mx.random.key(16) });
    expectSame(sg(x3, y3), [chain(x3, y3)]);
    sg.dispose();
  });

  test("shapeless compile with fused steps: shapes follow the inputs, no retrace", () => {
    const c = mx.compile(chain, { shapeless: true });
    for (const [a, b] of [[[8, 33], [33]], [[2, 3], [3]], [[5, 1], [7]], [[1, 4], [1]]] as const) {
      const xa = mx.random.normal([...a], { key: mx.random.key(20) });
      const yb = mx.random.uniform({ shape: [...b], key: mx.random.key(21) });
      expectSame(c(xa, yb), chain(xa, yb));
    }
    expect(c.traceCount).toBe(1);
    expect(c.tapeStats[0]!.fused).toBe(1);
    // A size-1 constant of higher rank written into the program keeps the traced rank.
    const k = mx.array([[2]], mx.float32);
    const f = (a: mx.Array) => mx.exp(mx.multiply(mx.sin(a), k));
    const cf = mx.compile(f, { shapeless: true });
    for (const n of [3, 6]) {
      const a = mx.random.normal([n], { key: mx.random.key(n) });
      expectSame(cf(a), f(a));
    }
    expect(cf.tapeStats[0]!.fused).toBe(1);
  });
});

describe("disposal", () => {
  test("dispose() frees the engine tapes; handles and nodes return to baseline", () => {
    const x = mx.ones([16]);
    mx.eval(x);
    const tapes0 = liveCompiledTapes();
    Bun.gc(true); // earlier tests' garbage must not be freed while we count
    const h0 = mx.getLiveHandleCount();
    const n0 = mx.getLiveNodeCount();
    {
      const big = mx.tidy(() => mx.arange(1000).astype(mx.float32));
      using c = mx.compile((v: mx.Array) => mx.add(mx.multiply(v, 2), mx.sum(big)));
      const y = c(x);
      mx.eval(y);
      y.dispose();
      const z = mx.ones([4], mx.int32);
      c(z).dispose();
      z.dispose();
      big.dispose();
      expect(liveCompiledTapes()).toBe(tapes0 + 2);
    }
    expect(liveCompiledTapes()).toBe(tapes0);
    expect(mx.getLiveHandleCount()).toBe(h0);
    expect(mx.getLiveNodeCount()).toBe(n0);
  });

  test("a collected compiled function frees its tapes (FinalizationRegistry)", async () => {
    for (let i = 0; i < 5; i++) {
      Bun.gc(true);
      await new Promise((r) => setTimeout(r, 10));
    }
    const tapes0 = liveCompiledTapes();
    (() => {
      const c = mx.compile((v: mx.Array) => mx.exp(v));
      c(mx.ones([2])).dispose();
    })();
    for (let i = 0; i < 20 && liveCompiledTapes() > tapes0; i++) {
      Bun.gc(true);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(liveCompiledTapes()).toBeLessThanOrEqual(tapes0);
  });
});
