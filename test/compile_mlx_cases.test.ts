// MLX's python/tests/test_compile.py, ported case by case (expected values are MLX's own).
// Cases that need something mlx-bun does not have are test.todo with the reason.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { expectMlxError } from "./util.ts";

const eq = (a: mx.Array, b: mx.Array) => expect(mx.arrayEqual(a, b).item()).toBe(true);
const close = (a: mx.Array, b: mx.Array) => expect(mx.allclose(a, b).item()).toBe(true);

describe("MLX test_compile.py", () => {
  test("test_simple_compile", () => {
    const c = mx.compile((x: mx.Array, y: mx.Array) => mx.add(x, y));
    expect(c(mx.array(1.0), mx.array(1.0)).item()).toBe(2);
    expect(c(mx.array(1.0), mx.array(1.0)).item()).toBe(2);
    eq(c(mx.array([1.0, 2.0]), mx.array(1.0)), mx.array([2.0, 3.0]));
    eq(c(mx.array([1.0, 2.0]), mx.array([1.0, 2.0])), mx.array([2.0, 4.0]));
    const out = c(mx.array([1, 2], mx.int32), mx.array([1, 2], mx.int32));
    expect(out.dtype).toBe(mx.int32);
    eq(out, mx.array([2, 4]));
  });

  test("test_compile_grad", () => {
    const lossFn = (x: mx.Array) => mx.sum(mx.exp(x));
    const g = mx.grad(lossFn);
    const x = mx.array([0.5, -0.5, 1.2]);
    const d = g(x) as mx.Array;
    close(mx.compile(g)(x) as mx.Array, d);
    const vg = mx.valueAndGrad((v: mx.Array) => [mx.sum(mx.exp(v)), mx.sin(v)]);
    const [[l, v], dd] = vg(x) as [[mx.Array, mx.Array], mx.Array];
    const [[cl, cv], cd] = mx.compile(vg)(x) as [[mx.Array, mx.Array], mx.Array];
    close(cd, dd);
    close(cl, l);
    close(cv, v);
  });

  test("test_compile_inputs_with_primitives", () => {
    let x = mx.array([1, 2, 3]);
    let y = mx.array([1, 2, 3]);
    for (let i = 0; i < 5; i++) {
      x = mx.add(x, y);
      y = mx.add(y, 1);
    }
    const fun = (a: mx.Array, b: mx.Array) => mx.multiply(a, b);
    eq(mx.compile(fun)(x, y), fun(x, y));
    eq(mx.compile(fun)(x, y), fun(x, y));
  });

  test("test_compile_with_closure", () => {
    let x = mx.array(1);
    const c = mx.compile((y: mx.Array) => mx.add(x, y));
    expect(c(mx.array(1)).item()).toBe(2);
    x = mx.array([1, 2]);
    expect(c(mx.array(1)).item()).toBe(2); // closures are not updated
    const t = { a: mx.array(1), b: mx.array(2) };
    const c2 = mx.compile((y: mx.Array) => mx.add(mx.add(t.a, y), t.b));
    expect(c2(mx.array(1)).item()).toBe(4);
    t.a = mx.array([4, 5]);
    expect(c2(mx.array(1)).item()).toBe(4);
    const z0 = mx.array(1);
    const z = mx.add(z0, z0); // not evaluated yet
    const c3 = mx.compile((y: mx.Array) => mx.add(z, y));
    expect(c3(mx.array(2)).item()).toBe(4);
    expect(c3(mx.array(2)).item()).toBe(4);
  });

  test("test_function_creates_array", () => {
    const c = mx.compile((x: mx.Array) => mx.add(x, mx.array(1)));
    expect(c(mx.array(3)).item()).toBe(4);
    expect(c(mx.array(3)).item()).toBe(4);
  });

  test.todo("test_enable_disable: counts primitives with export_to_dot (not in mlx-bun; disable/enable are tested in compile.test.ts)", () => {});

  test("test_compile_two_input_grad", () => {
    const loss = (w: mx.Array, x: mx.Array) => {
      const y = mx.multiply(x, w);
      return mx.sum(mx.multiply(y, mx.exp(y)));
    };
    const x = mx.array([1.0, 0.5, 2.0, -0.5]);
    const w = mx.array([-1.0, 0.3, 1.0, -0.9]);
    close(mx.compile(mx.grad(loss))(w, x) as mx.Array, mx.grad(loss)(w, x) as mx.Array);
  });

  test("test_vmap_compiled", () => {
    const unary = (x: mx.Array) => mx.negative(mx.exp(x));
    const x = mx.array([[1.0, 2.0], [2.0, 3.0]]);
    close(mx.vmap(mx.compile(unary))(x), mx.vmap(unary)(x));
    const binary = (a: mx.Array, b: mx.Array) => mx.abs(mx.add(mx.exp(mx.add(a, b)), b));
    const a = mx.array([[1.0, -3.0], [0.5, -0.5]]);
    let b = mx.array([[2.0, -1.0], [0.25, -0.25]]);
    close(mx.vmap(mx.compile(binary))(a, b), mx.vmap(binary)(a, b));
    close(mx.vmap(mx.compile(binary), { inAxes: [0, 1] })(a, b), mx.vmap(binary, { inAxes: [0, 1] })(a, b));
    b = mx.array([0.25, -0.25]);
    close(mx.vmap(mx.compile(binary), { inAxes: [0, null] })(a, b), mx.vmap(binary, { inAxes: [0, null] })(a, b));
    const outer = (v: mx.Array) => {
      const av = mx.abs(v);
      return mx.compile((_z: mx.Array) => mx.negative(mx.exp(av)))(av);
    };
    close(mx.vmap(outer)(x), mx.negative(mx.exp(mx.abs(x))));
  });

  test("test_vjp_vjp_compiled", () => {
    const unary = (x: mx.Array) => mx.negative(mx.exp(x));
    const x = mx.array([[1.0, 2.0], [2.0, 3.0]]);
    const y = mx.array([[1.0, 1.0], [1.0, 1.0]]);
    const [eo, ev] = mx.vjp(unary, [x], [y]);
    const [o, v] = mx.vjp(mx.compile(unary), [x], [y]);
    close(v[0]!, ev[0]!);
    close(o[0]!, eo[0]!);
    const [jo, jv] = mx.jvp(unary, [x], [y]);
    const [cjo, cjv] = mx.jvp(mx.compile(unary), [x], [y]);
    close(cjv[0]!, jv[0]!);
    close(cjo[0]!, jo[0]!);
    const binary = (a: mx.Array, b: mx.Array) => mx.abs(mx.add(mx.exp(mx.add(a, b)), b));
    const a = mx.array([[1.0, -3.0], [0.5, -0.5]]);
    const b = mx.array([[2.0, -1.0], [0.25, -0.25]]);
    const ct = mx.onesLike(a);
    const [bo, bv] = mx.vjp(binary, [a, b], [ct]);
    const [cbo, cbv] = mx.vjp(mx.compile(binary), [a, b], [ct]);
    close(cbo[0]!, bo[0]!);
    close(cbv[0]!, bv[0]!);
    close(cbv[1]!, bv[1]!);
    const [, tj] = mx.jvp(binary, [a, b], [mx.onesLike(a), mx.onesLike(b)]);
    const [, ctj] = mx.jvp(mx.compile(binary), [a, b], [mx.onesLike(a), mx.onesLike(b)]);
    close(ctj[0]!, tj[0]!);
  });

  test("test_transform_over_eval_compiled", () => {
    const x = mx.array([2.0, -1.0, 0.5]);
    const plain = (v: mx.Array) => {
      const y = mx.exp(mx.abs(v));
      mx.eval(y);
      return mx.sum(y);
    };
    const su = mx.compile((v: mx.Array) => mx.exp(mx.abs(v)));
    const outer = (v: mx.Array) => {
      const y = su(v);
      mx.eval(y);
      return mx.sum(y);
    };
    close(mx.grad(outer)(x) as mx.Array, mx.grad(plain)(x) as mx.Array);
  });

  test("test_compile_capture", () => {
    const state: Record<string, mx.Array> = { y: mx.array(2) };
    const c = mx.compile((x: mx.Array) => mx.add(x, state.y!), { inputs: state });
    c(mx.array(1));
    expect(state.y!.item()).toBe(2);
    state.y = mx.array(3);
    expect(c(mx.array(1)).item()).toBe(4);
    const nested = [[mx.array(2)]];
    const c3 = mx.compile((x: mx.Array) => mx.add(x, nested[0]![0]!), { inputs: nested });
    expect(c3(mx.array(1)).item()).toBe(3);
    nested[0]![0] = mx.array(3);
    expect(c3(mx.array(1)).item()).toBe(4);
    const st: Record<string, mx.Array> = {};
    const c4 = mx.compile((x: mx.Array) => {
      st.y = mx.add(x, 3);
      return mx.abs(x);
    }, { outputs: st });
    c4(mx.array(-1));
    expect(st.y!.item()).toBe(2);
  });

  test("test_compile_rng", () => {
    const fun = mx.compile(() => mx.random.uniform({ shape: [10, 10] }), { inputs: mx.random.state, outputs: mx.random.state });
    expect(mx.allclose(fun(), fun(), { rtol: 1e-2, atol: 1e-2 }).item()).toBe(false);
  });

  test.todo("test_compile_kwargs: Python keyword arguments (JS has none; a trailing options object is an ordinary tree argument)", () => {});

  test("test_shapeless_compile", () => {
    let y = 1;
    const fun = mx.compile((x: mx.Array) => mx.add(x, y), { shapeless: true });
    eq(fun(mx.array([1, 2])), mx.array([2, 3]));
    y = 2;
    eq(fun(mx.array([1, 2, 3])), mx.array([2, 3, 4])); // not retraced: y still 1
    eq(fun(mx.array([1.0, 2.0, 3.0], mx.float32)), mx.array([3.0, 4.0, 5.0], mx.float32)); // dtype change retraces
    eq(fun(mx.array([[1, 2, 3]])), mx.array([[3, 4, 5]])); // rank change retraces
  });

  test("test_shapeless_compile_with_broadcasts", () => {
    let x = mx.ones([2, 2]);
    let y = mx.array([2, 2]);
    const fun = (a: mx.Array, b: mx.Array) => mx.multiply(a, b);
    const c = mx.compile(fun, { shapeless: true });
    eq(c(x, y), fun(x, y));
    eq(c(y, x), fun(y, x));
    y = mx.array([[3]]);
    eq(c(x, y), fun(x, y));
    eq(c(y, x), fun(y, x));
    x = mx.ones([2, 2]);
  });

  test("test_shapeless_compile_with_reduction", () => {
    let z = 1;
    const fun = mx.compile((x: mx.Array, y: mx.Array) => mx.add(mx.add(x, mx.sum(y, { axis: 0, keepdims: true })), z), { shapeless: true });
    eq(fun(mx.ones([2, 2], mx.int32), mx.ones([2, 2], mx.int32)), mx.full([2, 2], 4));
    z = 2;
    eq(fun(mx.ones([3, 3], mx.int32), mx.ones([3, 3], mx.int32)), mx.full([3, 3], 5));
    const x1 = mx.array([[1, 2], [3, 4], [5, 6]]);
    const x2 = mx.array([[1, 2]]);
    const f2 = (x: mx.Array) => mx.multiply(x, mx.sum(x, { axis: -1, keepdims: true }));
    const c2 = mx.compile(f2, { shapeless: true });
    mx.eval(c2(x1));
    eq(c2(x2), f2(x2));
    const f3 = (x: mx.Array) => mx.multiply(x, mx.sum(x, { axis: -1 }));
    eq(mx.compile(f3, { shapeless: true })(x2), f3(x2));
  });

  // Expected values below: MLX 0.32.4's own (test/fixtures/shapeless_mlx.py prints them),
  // each also checkable by hand.
  test("test_shapeless_compile_unflatten", () => {
    const c = mx.compile((x: mx.Array) => mx.unflatten(x, -1, [4, -1]), { shapeless: true });
    expect(c(mx.zeros([1, 1, 4 * 32])).shape).toEqual([1, 1, 4, 32]);
    // Replayed: the -1 is inferred again (MLX 0.32.4 answers (2, 3, 4, 32) here, a shape of
    // 768 elements for 384: its Unflatten keeps the traced sizes; ours infers, no retrace).
    expect(c(mx.zeros([2, 3, 64])).shape).toEqual([2, 3, 4, 16]);
    expect(c.traceCount).toBe(1);
  });

  test("test_shapeless_compile_gather", () => {
    const c = mx.compile((x: mx.Array) => x.index(mx.sl(), -1, mx.sl()), { shapeless: true });
    expect(c(mx.zeros([1, 1, 32])).shape).toEqual([1, 32]);
    // MLX: "[Primitive::output_shapes] Slice cannot infer output shapes." on another shape.
    // Ours: the slice of the size-1 axis was dropped when traced, and the squeeze that is left
    // cannot say which size-1 axis grew.
    expectMlxError(() => c(mx.zeros([2, 3, 16])), /^\[compile\] reshape cannot be replayed shapeless on shape \(2,3,16\)/);
  });

  test("test_shapeless_compile_full_like: zerosLike/onesLike/fullLike follow the input's new shape", () => {
    const cz = mx.compile((x: mx.Array) => mx.zerosLike(x), { shapeless: true });
    const co = mx.compile((x: mx.Array) => mx.onesLike(x), { shapeless: true });
    const cf = mx.compile((x: mx.Array) => mx.fullLike(x, 7, mx.int32), { shapeless: true });
    const x = mx.zeros([1, 1, 32]);
    expect([cz(x).shape, co(x).shape, cf(x).shape]).toEqual([[1, 1, 32], [1, 1, 32], [1, 1, 32]]);
    const y = mx.array([[[NaN, 1, -2]], [[3, 4, Infinity]]]); // [2,1,3], NaN and inf entries too
    expect(cz(y).tolist()).toEqual([[[0, 0, 0]], [[0, 0, 0]]]);
    expect(co(y).tolist()).toEqual([[[1, 1, 1]], [[1, 1, 1]]]);
    expect(cf(y).tolist()).toEqual([[[7, 7, 7]], [[7, 7, 7]]]);
    expect([cz(y).dtype, cf(y).dtype]).toEqual([mx.float32, mx.int32]);
    expect([cz.traceCount, co.traceCount, cf.traceCount]).toEqual([1, 1, 1]);
  });

  test("test_shapeless_compile_with_reshape", () => {
    const c = mx.compile((x: mx.Array) => mx.reshape(x, [x.shape[0]! * x.shape[1]!, -1]), { shapeless: true });
    expect(c(mx.zeros([2, 3, 4])).shape).toEqual([6, 4]);
    expect(c(mx.zeros([2, 3, 8])).shape).toEqual([6, 8]);
    expect(c(mx.zeros([3, 2, 8])).shape).toEqual([6, 8]);
    expectMlxError(() => c(mx.zeros([5, 5, 5])), /^\[reshape\] Cannot reshape array of size 125 into shape \(6,20\)\./);
    expect(c.traceCount).toBe(1);
  });

  test("test_shapeless_compile_slice_update", () => {
    const fun = (x: mx.Array) => x.at(2).set(mx.array([3.0]));
    const c = mx.compile(fun, { shapeless: true });
    eq(c(mx.array([0.0, 1.0, 2.0, 3.0])), mx.array([0.0, 1.0, 3.0, 3.0]));
    eq(c(mx.array([0.0, 1.0, 2.0, 3.0, 4.0])), mx.array([0.0, 1.0, 3.0, 3.0, 4.0]));
    expect(c.traceCount).toBe(1);
    // The region is fixed when traced (MLX: x[-1] = 9 traced on 4 elements writes index 3).
    const c2 = mx.compile((x: mx.Array) => x.at(-1).set(mx.array([9.0])), { shapeless: true });
    eq(c2(mx.array([0.0, 1.0, 2.0, 3.0])), mx.array([0.0, 1.0, 2.0, 9.0]));
    eq(c2(mx.array([0.0, 1.0, 2.0, 3.0, 4.0])), mx.array([0.0, 1.0, 2.0, 9.0, 4.0]));
    const c3 = mx.compile((x: mx.Array) => x.at(mx.sl(), 0).set(5.0), { shapeless: true });
    eq(c3(mx.zeros([2, 3])), mx.array([[5, 0, 0], [5, 0, 0]]));
    eq(c3(mx.zeros([3, 2])), mx.array([[5, 0], [5, 0], [0, 0]]));
    // A region outside the new array fails (MLX does not check).
    expectMlxError(() => c(mx.array([0.0, 1.0])), /^\[scatter\] The slice along axis 0 \(start 2, step 1, size 1\) is outside the axis of size 2\./);
  });

  test("test_shapeless_compile_matmul", () => {
    const a = mx.array([0.0, 1.0, 2.0], mx.float32);
    const c = mx.compile((p: mx.Array, q: mx.Array) => mx.matmul(p, q), { shapeless: true });
    close(c(a, a), mx.matmul(a, a));
    expect(c(mx.array([0.5, 1, 2, 3]), mx.array([0, 1, 2, 3], mx.float32)).item()).toBe(14);
    const m = mx.compile((p: mx.Array, q: mx.Array) => mx.matmul(p, q), { shapeless: true });
    expect(m(mx.ones([2, 3]), mx.ones([3, 4])).shape).toEqual([2, 4]);
    eq(m(mx.reshape(mx.arange(6), [3, 2]).astype(mx.float32), mx.reshape(mx.arange(10), [2, 5]).astype(mx.float32)), mx.array([[5, 6, 7, 8, 9], [15, 20, 25, 30, 35], [25, 34, 43, 52, 61]]));
    const mv = mx.compile((p: mx.Array, q: mx.Array) => mx.matmul(p, q), { shapeless: true });
    eq(mv(mx.ones([2, 3]), mx.ones([3])), mx.array([3, 3]));
    eq(mv(mx.reshape(mx.arange(12), [3, 4]).astype(mx.float32), mx.arange(4).astype(mx.float32)), mx.array([14, 38, 62]));
    expect(c.traceCount + m.traceCount + mv.traceCount).toBe(3);
    // MLX answers (3, 5) garbage-free shapes without checking; ours refuses.
    expectMlxError(() => m(mx.ones([3, 2]), mx.ones([3, 5])), /^\[matmul\] Last dimension of first input with shape \(3,2\) must match second to last dimension of second input with shape \(3,5\)/);
  });

  test("test_shapeless_compile_addmm", () => {
    const fun = (c: mx.Array, a: mx.Array, b: mx.Array) => mx.addmm(c, a, b);
    const cf = mx.compile(fun, { shapeless: true });
    eq(cf(mx.ones([2, 4]), mx.ones([2, 3]), mx.ones([3, 4])), mx.full([2, 4], 4));
    eq(cf(mx.ones([3, 5]), mx.ones([3, 6]), mx.ones([6, 5])), mx.full([3, 5], 7));
    expect(cf.traceCount).toBe(1);
    const f2 = mx.compile((c: mx.Array, a: mx.Array, b: mx.Array) => mx.addmm(c, a, b, { alpha: 2.0, beta: 3.0 }), { shapeless: true });
    eq(f2(mx.ones([2, 4]), mx.ones([2, 3]), mx.ones([3, 4])), mx.full([2, 4], 9));
    eq(f2(mx.ones([3, 5]), mx.ones([3, 6]), mx.ones([6, 5])), mx.full([3, 5], 15));
  });

  test("test_compile_shapeless_with_broadcast: broadcast_to, batched matmul, grad", () => {
    const b = mx.ones([2, 2]);
    const c = mx.compile((a: mx.Array) => mx.broadcastTo(a, b.shape), { shapeless: true });
    expect(c(mx.array(0.0)).shape).toEqual([2, 2]);
    eq(c(mx.array(5.0)), mx.full([2, 2], 5));
    expectMlxError(() => c(mx.reshape(mx.array(0.0), [1, 1, 1])), /Cannot broadcast array of shape \(1,1,1\) into shape \(2,2\)/);
    const mm = mx.compile((p: mx.Array, q: mx.Array) => mx.matmul(p, q), { shapeless: true });
    expect(mm(mx.zeros([2, 1, 4, 2]), mx.zeros([3, 2, 5])).shape).toEqual([2, 3, 4, 5]);
    const g = mx.compile(mx.grad((args: mx.Array[]) => mx.sum(mx.add(args[0]!, args[1]!))), { shapeless: true });
    const [g0, g1] = g([mx.array(0.0), b]) as mx.Array[];
    expect([g0!.shape, g1!.shape]).toEqual([[], [2, 2]]);
    const [h0, h1] = g([b, mx.array(0.0)]) as mx.Array[];
    expect([h0!.shape, h1!.shape]).toEqual([[2, 2], []]);
    const gm = mx.compile(mx.grad((args: mx.Array[]) => mx.sum(mx.matmul(args[0]!, args[1]!))), { shapeless: true });
    const [m0, m1] = gm([mx.zeros([2, 1, 4, 2]), mx.zeros([3, 2, 5])]) as mx.Array[];
    expect([m0!.shape, m1!.shape]).toEqual([[2, 1, 4, 2], [3, 2, 5]]);
  });

  test("test_compile_shapeless_with_broadcast: broadcastArrays follows the other inputs on replay", () => {
    const c = mx.compile((a: mx.Array, b: mx.Array) => mx.broadcastArrays(a, b), { shapeless: true });
    const [a0, b0] = c(mx.array(0.0, mx.float32), mx.ones([2, 2])) as mx.Array[];
    expect([a0!.shape, b0!.shape]).toEqual([[2, 2], [2, 2]]);
    const [a1, b1] = c(mx.array(4.0, mx.float32), mx.array([[1, 2, 3]], mx.float32)) as mx.Array[];
    expect([a1!.tolist(), b1!.tolist()]).toEqual([[[4, 4, 4]], [[1, 2, 3]]]);
    const [a2, b2] = c(mx.array(NaN), mx.full([3, 5], NaN)) as mx.Array[];
    expect([a2!.shape, b2!.shape]).toEqual([[3, 5], [3, 5]]);
    expect(c.traceCount).toBe(1);
  });

  test("test_compile_shapeless_with_broadcast (batched matmul): the batch broadcast follows the inputs on replay", () => {
    const c = mx.compile((p: mx.Array, q: mx.Array) => mx.matmul(p, q), { shapeless: true });
    expect(c(mx.zeros([2, 1, 4, 2]), mx.zeros([3, 2, 5])).shape).toEqual([2, 3, 4, 5]);
    const p = mx.random.normal([3, 1, 4, 2], mx.float32, { key: mx.random.key(1) });
    const q = mx.random.normal([2, 2, 5], mx.float32, { key: mx.random.key(2) });
    const got = c(p, q);
    expect(got.shape).toEqual([3, 2, 4, 5]);
    expect(mx.allclose(got, mx.matmul(p, q), { rtol: 1e-6, atol: 1e-6 }).item()).toBe(true);
    expect(c.traceCount).toBe(1);
  });

  test("test_shapeless_compile_reduce_after_gather (all but mean)", () => {
    const buf = mx.array([10.0, 20.0, 30.0, 40.0, 50.0]);
    const cases: [string, (a: mx.Array) => mx.Array][] = [
      ["sum", (a) => mx.sum(a)],
      ["prod", (a) => mx.prod(a)],
      ["min", (a) => mx.min(a)],
      ["max", (a) => mx.max(a)],
      ["all", (a) => mx.all(a)],
      ["any", (a) => mx.any(a)],
      ["argmin", (a) => mx.argmin(a)],
      ["argmax", (a) => mx.argmax(a)],
    ];
    for (const [name, red] of cases) {
      const fun = (b: mx.Array, idx: mx.Array) => red(mx.take(b, idx, 0));
      let c = mx.compile(fun, { shapeless: true });
      for (const n of [1, 2, 3, 4]) {
        const idx = mx.arange(n);
        expect([name, n, mx.arrayEqual(c(buf, idx), fun(buf, idx)).item()]).toEqual([name, n, true]);
      }
      c = mx.compile(fun, { shapeless: true });
      for (const n of [2, 1]) {
        const idx = mx.arange(n);
        expect([name, n, mx.arrayEqual(c(buf, idx), fun(buf, idx)).item()]).toEqual([name, n, true]);
      }
      expect(c.traceCount).toBe(1);
    }
    // MLX's values for sum (hand: running sums of 10, 20, 30, 40).
    const cs = mx.compile((b: mx.Array, idx: mx.Array) => mx.sum(mx.take(b, idx, 0)), { shapeless: true });
    expect([1, 2, 3, 4].map((n) => cs(buf, mx.arange(n)).item())).toEqual([10, 30, 60, 100]);
  });

  test("test_compile_with_constant", () => {
    const f1 = mx.compile((x: mx.Array, y: number) => mx.add(x, y));
    expect(f1(mx.array(1.0), 1.0).item()).toBe(2);
    expect(f1(mx.array(1.0), 2.0).item()).toBe(3);
    const f2 = mx.compile((x: mx.Array, y: number[] = [1, 2]) => mx.add(mx.add(x, y[0]!), y[1]!));
    expect(f2(mx.array(1)).item()).toBe(4);
    expect(f2(mx.array(1), [2, 2]).item()).toBe(5);
    expect(f2(mx.array(1), [2, 1]).item()).toBe(4);
    const f3 = mx.compile((x: mx.Array, y: boolean) => (y ? mx.add(x, 1) : mx.add(x, 2)));
    expect(f3(mx.array(1), true).item()).toBe(2);
    expect(f3(mx.array(1), false).item()).toBe(3);
    const f4 = mx.compile((x: mx.Array, y: string) => (y === "one" ? mx.add(x, 1) : mx.add(x, 2)));
    expect(f4(mx.array(1), "one").item()).toBe(2);
    expect(f4(mx.array(1), "two").item()).toBe(3);
    const f5 = mx.compile((x: mx.Array, y: number[][]) => (y[0]![0] === 1 ? mx.add(x, 1) : mx.add(x, 2)));
    expect(f5(mx.array(1), [[1]]).item()).toBe(2);
    expect(f5(mx.array(1), [[0]]).item()).toBe(3);
    const f6 = mx.compile((x: mx.Array, a: number[], b: number[]) => {
      let r = x;
      for (const ai of a) for (const bi of b) r = mx.add(mx.multiply(bi, r), ai);
      return r;
    });
    expect(f6(mx.array(1), [1, 1], [2]).item()).toBe(7);
    expect(f6(mx.array(1), [1], [1, 2]).item()).toBe(5);
    let counter = 0;
    const f7 = mx.compile((x: mx.Array | number, y: mx.Array | number) => {
      counter++;
      return mx.add(x, y);
    });
    expect(f7(mx.array(1), 1).item()).toBe(2);
    expect(f7(1, mx.array(1)).item()).toBe(2);
    expect(counter).toBe(2);
    let yv = 1.0;
    const f8 = mx.compile((x: mx.Array, _c: string) => mx.add(x, yv));
    expect(f8(mx.array(0.0), "abc").item()).toBe(1);
    yv = 2.0;
    expect(f8(mx.array(0.0), ["a", "b", "c"].join("")).item()).toBe(1); // same value: no retrace
    expect(f8(mx.array(0.0), "xyz").item()).toBe(2);
  });

  test("test_compile_inf", () => {
    expect(mx.compile((x: mx.Array) => mx.isinf(mx.add(x, 2)))(mx.array([0.0])).item()).toBe(false);
  });

  test("test_unsupported_input_types", () => {
    class MyClass {
      value = 1;
    }
    const fun = mx.compile((x: mx.Array, y: MyClass) => mx.add(x, y.value));
    expectMlxError(() => fun(mx.array(0.0), new MyClass()), /Function arguments must be trees of arrays or constants/);
  });

  test("test_compile_create_list", () => {
    const out = mx.compile(() => [mx.multiply(0.1, mx.zeros([2])), mx.multiply(0.1, mx.zeros([2]))])();
    mx.eval(out);
    expect(out.length).toBe(2);
  });

  test("test_compile_vjp", () => {
    const fun = (w: mx.Array) => {
      const w1 = mx.add(w, w);
      const w2 = mx.add(w, w);
      return mx.add(mx.matmul(w, w1), mx.matmul(w2, w2));
    };
    const step = (w: mx.Array) => {
      const [out, g] = mx.vjp(fun, [w], [mx.array([[1.0, 1.0], [1.0, 1.0]])]);
      return [out[0]!, g[0]!];
    };
    const w = mx.zeros([2, 2]);
    const [e0, e1] = step(w);
    const [o0, o1] = mx.compile(step)(w);
    close(o0!, e0!);
    close(o1!, e1!);
    const fun2 = (w1: mx.Array, w2: mx.Array, x: mx.Array) => {
      const a = mx.matmul(x, w1);
      const b = mx.matmul(a, w2);
      const c = mx.add(a, mx.multiply(b, b));
      return mx.sum(mx.multiply(c, c));
    };
    const step2 = (w1: mx.Array, w2: mx.Array, x: mx.Array) => {
      const [l, g] = mx.valueAndGrad(fun2)(w1, w2, x) as [mx.Array, mx.Array];
      return [l, mx.add(w1, g)];
    };
    const z = mx.zeros([4, 4]);
    const [l0, n0] = step2(z, z, z);
    const [l1, n1] = mx.compile(step2)(z, z, z);
    close(l1!, l0!);
    close(n1!, n0!);
  });

  test("test_shapeless_mean (and mean in test_shapeless_compile_reduce_after_gather): the count follows the new shape", () => {
    // MLX 0.32.4: [0.5], [1.5], [3.000000238418579] for n = 2, 4, 7 (hand: 21 x float32(1/7)).
    const cm = mx.compile((x: mx.Array) => mx.mean(x, { keepdims: true }), { shapeless: true });
    expect([2, 4, 7].map((n) => cm(mx.arange(n, mx.float32)).tolist())).toEqual([[0.5], [1.5], [21 * Math.fround(1 / 7)].map(Math.fround)]);
    expect(cm.traceCount).toBe(1);
    // After a gather, as MLX's reduce-after-gather case: mean of the first n of 10..50.
    const buf = mx.array([10.0, 20.0, 30.0, 40.0, 50.0]);
    const cg = mx.compile((b: mx.Array, idx: mx.Array) => mx.mean(mx.take(b, idx, 0)), { shapeless: true });
    expect([1, 2, 3, 4].map((n) => cg(buf, mx.arange(n)).item())).toEqual([10, 15, 20, 25]);
    // Over some axes, var (ddof 0 and 1) and std: each equal to the uncompiled op on the new shape.
    const f = (x: mx.Array) => [mx.mean(x, { axis: 1 }), mx.variance(x, { axis: [0, 2] }), mx.variance(x, { ddof: 1 }), mx.std(x, { axis: -1, keepdims: true })];
    const cf = mx.compile(f, { shapeless: true });
    for (const shape of [[2, 3, 4], [3, 5, 2], [1, 7, 6]]) {
      const x = mx.random.normal(shape, mx.float32, { key: mx.random.key(shape[1]!) });
      const got = cf(x) as mx.Array[];
      const want = f(x);
      got.forEach((g, i) => {
        expect(g.shape).toEqual(want[i]!.shape);
        expect(mx.allclose(g, want[i]!, { rtol: 1e-6, atol: 1e-6 }).item()).toBe(true);
      });
    }
    expect(cf.traceCount).toBe(1);
  });

  test("test_compile_broadcast_only", () => {
    const out = mx.compile((a: mx.Array) => {
      const b = mx.broadcastTo(a, [1]);
      return mx.add(b, b);
    })(mx.array(2.0));
    expect(String(out)).toBeTruthy();
    eq(out, mx.array([4.0]));
  });

  test("test_compile_with_long_name", () => {
    const fn = (a: mx.Array, b: mx.Array) => {
      for (let i = 0; i < 10; i++) {
        a = mx.subtract(a, 1.0);
        b = mx.subtract(b, 1.0);
      }
      return mx.add(a, b);
    };
    expect(mx.compile(fn)(mx.array(10.0), mx.array(20.0)).item()).toBe(10);
  });

  test("test_compile_multi_output", () => {
    const fn = (x: mx.Array) => {
      const ys = [x];
      for (let i = 0; i < 5; i++) ys.push(mx.add(ys[ys.length - 1]!, x));
      return [ys, mx.sum(ys[ys.length - 1]!)] as const;
    };
    const x = mx.ones([1], mx.int32);
    expect((mx.compile(fn)(x)[1] as mx.Array).item()).toBe(6);
    expect((fn(x)[1] as mx.Array).item()).toBe(6);
  });

  test("test_inf_constant", () => {
    const fn = (x: mx.Array) => mx.where(mx.isinf(x), 0, 1);
    const x = mx.array([0, Infinity, 1], mx.bfloat16);
    eq(mx.compile(fn)(x), fn(x));
  });

  test("test_max_into_equal", () => {
    const x = mx.random.uniform({ shape: [1, 2, 2] });
    mx.eval(x);
    const fn = () => mx.equal(x, mx.max(x, { axis: [1, 2], keepdims: true }));
    eq(mx.compile(fn)(), fn());
  });

  test("test_dtypes", () => {
    let x = mx.array([0, 1, 2, 3]);
    for (const dt of [mx.bool, mx.int8, mx.uint8, mx.int16, mx.uint16]) {
      x = x.astype(dt);
      mx.eval(x);
      const fn = (v: mx.Array) => mx.add(mx.multiply(v, 1), 0);
      eq(mx.compile(fn)(x), fn(x));
    }
  });

  test.todo("test_compile_without_captured_inputs: MLX refuses a function that closes over an unevaluated array it is also called with (mlx-bun captures it as a constant)", () => {});

  test("test_compile_dynamic_dims", () => {
    let a = mx.random.uniform({ shape: Array(10).fill(2) });
    const b = mx.random.uniform({ shape: Array(10).fill(2) });
    a = mx.transpose(a);
    mx.eval(a, b);
    const fn = (p: mx.Array, q: mx.Array) => mx.abs(mx.add(p, q));
    close(mx.compile(fn)(a, b), fn(a, b));
  });

  test("test_compile_many_inputs", () => {
    const inputs = Array.from({ length: 20 }, () => mx.ones([2, 2, 2, 2]));
    inputs[0] = mx.transpose(inputs[0]!);
    const fun = mx.compile((...ins: mx.Array[]) => {
      let x = ins[0]!;
      for (const y of ins.slice(1, 10)) x = mx.add(x, y);
      let a = ins[10]!;
      for (const b of ins.slice(11)) a = mx.add(a, b);
      return mx.add(x, a);
    });
    close(fun(...inputs), mx.full([2, 2], 20));
    const fun2 = mx.compile((arrs: mx.Array[]) => {
      for (let i = 0; i < 6; i++) arrs = Array.from({ length: arrs.length / 2 }, (_, k) => mx.add(arrs[2 * k]!, arrs[2 * k + 1]!));
      return arrs[0]!;
    });
    close(fun2(Array.from({ length: 64 }, () => mx.array([1.0, 2.0]))), mx.array([64.0, 128.0]));
    const ins8 = Array.from({ length: 8 }, () => mx.arange(16384).astype(mx.float16));
    const fun3 = (i: mx.Array[]) => mx.multiply(mx.multiply(mx.multiply(mx.add(i[0]!, i[1]!), mx.add(i[2]!, i[3]!)), mx.add(i[4]!, i[5]!)), mx.add(i[6]!, i[7]!));
    close(mx.compile(fun3)(ins8), fun3(ins8));
  });

  test("test_compile_many_outputs", () => {
    const fun = mx.compile((arr: mx.Array) => {
      let arrs = Array(64).fill(arr) as mx.Array[];
      let first: mx.Array[] | null = null;
      for (let i = 0; i < 6; i++) {
        arrs = Array.from({ length: arrs.length / 2 }, (_, k) => mx.add(arrs[2 * k]!, arrs[2 * k + 1]!));
        if (first === null) first = arrs;
      }
      return [arrs[0]!, first!] as const;
    });
    close(fun(mx.array([1.0, 2.0]))[0] as mx.Array, mx.array([64.0, 128.0]));
  });

  test("test_leaks (tapes freed with their function)", () => {
    Bun.gc(true); // earlier tests' garbage must not be freed while we count
    const before = mx.getLiveHandleCount();
    for (let i = 0; i < 5; i++) {
      const d: { x?: mx.Array } = {};
      const f = mx.compile((_x: mx.Array) => d.x!);
      d.x = mx.array(Array(1000).fill(0));
      const one = mx.array(1);
      f(one).dispose();
      one.dispose();
      f.dispose();
      d.x.dispose();
    }
    expect(mx.getLiveHandleCount()).toBe(before);
  });

  test("test_double_constant", () => {
    const x = mx.array(1.0, mx.float64);
    const fun = (v: mx.Array) => mx.multiply(mx.add(v, Math.PI), 2.0);
    expect(mx.compile(fun)(x).item()).toBe(fun(x).item() as number);
  });

  test("test_shared_broadcast (values; the fused-kernel name is not checked)", () => {
    const fun = (x: mx.Array, y: mx.Array, z: mx.Array) => {
      const yy = mx.broadcastTo(y, z.shape);
      return [mx.add(x, mx.multiply(yy, z)), mx.sum(yy)];
    };
    const a = mx.random.normal([10, 10]);
    const b = mx.array(0.1);
    const c = mx.random.normal([10, 10]);
    const [d0, d1] = mx.compile(fun)(a, b, c);
    const [e0, e1] = fun(a, b, c);
    close(d0!, e0!);
    close(d1!, e1!);
  });

  test("test_compile_large_graph_with_broadcasts", () => {
    const n = 20;
    const as = Array.from({ length: n }, (_, i) => mx.array(2 * i, mx.float32));
    const bs = Array.from({ length: n }, (_, i) => mx.array(i, mx.float32));
    const c0 = mx.array(0.0);
    const x = mx.random.normal([2, 2]);
    const f = (v: mx.Array) => {
      let y: mx.Array | number = 0;
      for (let i = 0; i < n; i++) y = mx.add(y, mx.multiply(mx.multiply(mx.multiply(as[i]!, v), bs[i]!), c0));
      return y as mx.Array;
    };
    const ref = f(x);
    const cf = mx.compile(f);
    let y = cf(x);
    y = cf(x);
    close(y, ref);
  });

  test.todo("test_wrap_compiled / test_compiled_preserves_attributes: Python function attributes (functools.wraps, __name__, signature)", () => {});

  test("test_compile_with_none", () => {
    const fun = mx.compile((x: mx.Array, y: mx.Array | null) => (y === null ? mx.abs(mx.subtract(x, 2.0)) : mx.abs(mx.add(x, y))));
    expect(fun(mx.array(1.0), null).item()).toBe(1);
    expect(fun(mx.array(1.0), mx.array(2.0)).item()).toBe(3);
  });

  test("test_compile_changing_outputs", () => {
    const fun = mx.compile((x: mx.Array | boolean, y: mx.Array | null): unknown => {
      if (y === null) return mx.multiply(2, x as mx.Array);
      if (x instanceof mx.Array && x.dtype === mx.float32 && y.dtype === mx.float32) return [mx.add(x, y)];
      if (y.dtype === mx.bool) return { a: x, b: mx.multiply(y, x as mx.Array) };
      return null;
    });
    const a = fun(mx.array(1.0, mx.float32), mx.array(2.0, mx.float32)) as mx.Array[];
    expect(Array.isArray(a)).toBe(true);
    expect(a[0]!.item()).toBe(3);
    const b = fun(mx.array(1.0, mx.float32), mx.array(true)) as { a: mx.Array; b: mx.Array };
    expect(b.a.item()).toBe(1);
    expect(b.b.item()).toBe(1);
    const c = fun(mx.array(1.0, mx.float32), null) as mx.Array;
    expect(c).toBeInstanceOf(mx.Array);
    expect(c.item()).toBe(2);
    expect(fun(false, mx.array(1.0, mx.float32))).toBeNull();
  });

  test("test_compile_changing_outputs_with_state", () => {
    const state = [mx.array(1.0, mx.float32)];
    const fun = mx.compile((y: mx.Array): unknown => {
      const x = state[0]!;
      if (y.dtype === mx.float32) {
        state[0] = mx.multiply(2, y);
        return [x, y, mx.add(x, y)];
      }
      state[0] = mx.multiply(state[0]!, 2);
      return mx.add(x, y);
    }, { inputs: state, outputs: state });
    for (let i = 0; i < 10; i++) {
      fun(mx.array(1.0, mx.float32));
      fun(mx.array(1));
    }
    expect(state[0]!.item()).toBe(4);
  });

  test("test_outputs_changing", () => {
    const fun = mx.compile((x: mx.Array) => {
      const a = mx.abs(mx.negative(x));
      return [a, mx.abs(a)];
    });
    const fun2 = mx.compile((x: mx.Array) => mx.abs(mx.abs(mx.negative(x))));
    mx.eval(fun(mx.array(-1.0)));
    expect(fun2(mx.array(-1.0)).item()).toBe(1);
  });

  test("test_multiple_compile_same_capture", () => {
    const fun = (doCompile: boolean) => {
      const t = mx.ones([10]);
      const u = mx.add(mx.multiply(mx.subtract(1.0, t), 0.0), mx.multiply(t, 3.0));
      const o = mx.ones([6]);
      const b = mx.multiply(mx.expandDims(o, 1), u);
      const c = mx.multiply(b, mx.onesLike(u));
      const a = mx.ones([6]);
      if (doCompile) {
        const d = mx.compile((x: mx.Array) => mx.matmul(x, b))(a);
        return mx.compile((x: mx.Array) => mx.matmul(x, mx.transpose(c)))(d);
      }
      return mx.matmul(mx.matmul(a, b), mx.transpose(c));
    };
    close(fun(true), fun(false));
  });

  test.todo("test_compile_types: Python NamedTuple / tuple subclasses keep their type (JS trees are plain arrays and objects)", () => {});

  test("test_compile_output_with_siblings (divmod)", () => {
    const fun = mx.compile((x: mx.Array, y: mx.Array) => mx.divmod(mx.abs(x), mx.abs(y))[0]!);
    expect(fun(mx.array(1.0), mx.array(1.0)).item()).toBe(1);
  });

  test.todo("test_compile_donates_input_buffer: needs a raw data pointer of an array (not exposed); donation itself is the engine's (eval.zig)", () => {});
});
