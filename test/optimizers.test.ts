// mx.optimizers against real MLX: three steps of every optimizer (several option sets each, a
// learning rate on a schedule) on a small parameter tree (objects, lists, a float16 leaf, arrays
// of 1 to 3 dimensions), the parameters after each step, the learning rate, and the final state
// (keys in MLX's order and values); update() on a plain tree and on a model-like object; saving
// and restoring the state mid-run; MultiOptimizer; schedule values; clipGradNorm; MLX's error
// messages. Reference values come from test/fixtures/optim/optim.json.gz (gen_optim.py, MLX
// 0.32.4). Plus an end-to-end check: linear regression trained with SGD and Adam through
// mx.valueAndGrad converges to the known weights.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { arrayOf, loadFixture, type Rec } from "./fixture";
import { expectMlxError } from "./util";

const optim = mx.optimizers;

type RecTree = Rec | RecTree[] | { [k: string]: RecTree };
interface ScheduleSpec {
  $schedule: "cosineDecay" | "exponentialDecay" | "stepDecay" | "linearSchedule" | "joinSchedules";
  args: unknown[];
}
interface OptCase {
  name: string;
  lr: number | ScheduleSpec | null;
  options: Record<string, unknown>;
  after: RecTree[];
  learningRates: (Rec | null)[];
  state: [string, Rec][];
}
interface Fixture {
  params: RecTree;
  grads: RecTree[];
  optimizers: OptCase[];
  multi: { after: RecTree[]; state: [string, Rec][] };
  initKeys: string[];
  docSchedules: { schedule: ScheduleSpec; optimizer: string; updates: number; first: Rec; after: Rec; step: number }[];
  scheduleSteps: number[];
  schedules: { schedule: ScheduleSpec; values: Rec[] }[];
  clip: { grads: RecTree; maxNorm: number; clipped: RecTree; norm: Rec }[];
  errors: Record<string, string>;
}

const F = loadFixture<Fixture>("optim/optim.json.gz");

function isRec(t: unknown): t is Rec {
  return typeof t === "object" && t !== null && "hex" in t && "dtype" in t;
}

function treeOf(t: RecTree): unknown {
  if (isRec(t)) return arrayOf(t);
  if (Array.isArray(t)) return t.map(treeOf);
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, treeOf(v)]));
}

function flatten(t: unknown, prefix = "", out: [string, unknown][] = []): [string, unknown][] {
  if (t instanceof mx.Array) out.push([prefix.slice(1), t]);
  else if (Array.isArray(t)) t.forEach((c, i) => flatten(c, `${prefix}.${i}`, out));
  else if (typeof t === "object" && t !== null) for (const [k, v] of Object.entries(t)) flatten(v, `${prefix}.${k}`, out);
  return out;
}

function numbers(a: mx.Array): number[] {
  if (a.dtype === mx.uint64 || a.dtype === mx.int64) return Array.from(a.toTypedArray() as BigInt64Array, Number);
  return Array.from(a.astype(mx.float64).toTypedArray() as Float64Array);
}

/** |ours - mlx| <= atol + rtol |mlx| elementwise, same dtype and shape. */
function expectClose(ours: unknown, ref: Rec, label: string, rtol = 2e-6, atol = 1e-7): void {
  expect(ours, label).toBeInstanceOf(mx.Array);
  const a = ours as mx.Array;
  expect(a.dtype.name, `${label} dtype`).toBe(ref.dtype);
  expect([...a.shape], `${label} shape`).toEqual(ref.shape);
  const got = numbers(a);
  const want = numbers(arrayOf(ref));
  const half = ref.dtype === "float16" || ref.dtype === "bfloat16";
  const rt = half ? Math.max(rtol, 2e-3) : rtol;
  const at = half ? Math.max(atol, 1e-3) : atol;
  for (let i = 0; i < want.length; i++) {
    const ok = Number.isNaN(want[i]!) ? Number.isNaN(got[i]!) : Math.abs(got[i]! - want[i]!) <= at + rt * Math.abs(want[i]!);
    if (!ok) throw new Error(`${label}[${i}]: got ${got[i]}, MLX ${want[i]} (dtype ${ref.dtype})`);
  }
}

function expectTreeClose(ours: unknown, ref: RecTree, label: string, rtol?: number, atol?: number, sorted = false): void {
  const byKey = (x: [string, unknown], y: [string, unknown]) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0);
  const o = flatten(ours);
  const refFlat = flattenRecs(ref);
  if (sorted) {
    o.sort(byKey);
    refFlat.sort(byKey);
  }
  expect(o.map(([k]) => k), `${label} keys`).toEqual(refFlat.map(([k]) => k));
  for (const [i, [k, v]] of o.entries()) expectClose(v, refFlat[i]![1], `${label}.${k}`, rtol, atol);
}

function flattenRecs(t: RecTree, prefix = "", out: [string, Rec][] = []): [string, Rec][] {
  if (isRec(t)) out.push([prefix.slice(1), t]);
  else if (Array.isArray(t)) t.forEach((c, i) => flattenRecs(c, `${prefix}.${i}`, out));
  else for (const [k, v] of Object.entries(t)) flattenRecs(v, `${prefix}.${k}`, out);
  return out;
}

function schedule(spec: ScheduleSpec): mx.optimizers.Schedule {
  const a = spec.args as never[];
  switch (spec.$schedule) {
    case "joinSchedules":
      return optim.joinSchedules((spec.args[0] as ScheduleSpec[]).map(schedule), spec.args[1] as number[]);
    case "cosineDecay":
      return (optim.cosineDecay as (...x: number[]) => mx.optimizers.Schedule)(...a);
    case "exponentialDecay":
      return (optim.exponentialDecay as (...x: number[]) => mx.optimizers.Schedule)(...a);
    case "stepDecay":
      return (optim.stepDecay as (...x: number[]) => mx.optimizers.Schedule)(...a);
    case "linearSchedule":
      return (optim.linearSchedule as (...x: number[]) => mx.optimizers.Schedule)(...a);
  }
}

function make(c: OptCase): mx.optimizers.Optimizer {
  const lr = c.lr === null ? undefined : typeof c.lr === "number" ? c.lr : schedule(c.lr);
  if (c.name === "Adafactor") return lr === undefined ? new optim.Adafactor({ ...c.options }) : new optim.Adafactor(lr, c.options);
  const Ctor = (optim as unknown as Record<string, new (lr: unknown, o: unknown) => mx.optimizers.Optimizer>)[c.name]!;
  return new Ctor(lr, c.options);
}

const label = (c: OptCase) => `${c.name}(${JSON.stringify(c.lr)}, ${JSON.stringify(c.options)})`;
// Muon's Newton-Schulz iteration runs matrix products (not bit-exact across BLAS), five times over.
const tol = (c: OptCase): [number, number] => (c.name === "Muon" ? [2e-4, 2e-5] : [5e-6, 1e-7]);

describe("optimizers against MLX", () => {
  const grads = F.grads.map(treeOf);
  for (const c of F.optimizers) {
    test(`${label(c)}: applyGradients x3, learning rate, state`, () => {
      const opt = make(c);
      let p = treeOf(F.params);
      for (let s = 0; s < c.after.length; s++) {
        p = opt.applyGradients(grads[s], p);
        expectTreeClose(p, c.after[s]!, `step ${s + 1}`, ...tol(c));
        const lr = c.learningRates[s];
        if (lr) expectClose(opt.learningRate, lr, `learning rate after step ${s + 1}`);
        else expect(opt.state.learning_rate).toBeUndefined();
      }
      const st = flatten(opt.state);
      expect(st.map(([k]) => k)).toEqual(c.state.map(([k]) => k));
      for (const [i, [k, r]] of c.state.entries()) expectClose(st[i]![1], r, `state ${k}`, ...tol(c));
      expect(opt.step.dtype).toBe(mx.uint64);
      expect(opt.step.item()).toBe(3n);
    });

    test(`${label(c)}: update() in place, and a state restored after step 2`, () => {
      const opt = make(c);
      const p = treeOf(F.params) as Record<string, unknown>;
      opt.update(p, grads[0]);
      opt.update(p, grads[1]);
      expectTreeClose(p, c.after[1]!, "update x2", ...tol(c));
      // Save (a copy of the tree), restore into a fresh optimizer, continue.
      const saved = JSON.parse(JSON.stringify(flatten(opt.state).map(([k]) => k))) as string[];
      const copy = structuredCloneTree(opt.state);
      const fresh = make(c);
      fresh.state = copy as mx.optimizers.OptimizerState;
      expect(flatten(fresh.state).map(([k]) => k)).toEqual(saved);
      opt.update(p, grads[2]);
      const q = fresh.applyGradients(grads[2], treeOf(c.after[1]!));
      expectTreeClose(q, c.after[2]!, "restored step 3", ...tol(c));
      expectTreeClose(p, c.after[2]!, "update x3", ...tol(c));
    });
  }

  test("update() on a model-like object calls model.update(applyGradients(grads, trainableParameters()))", () => {
    const c = F.optimizers.find((o) => o.name === "Adam" && o.options.biasCorrection === true)!;
    let params = treeOf(F.params);
    const calls: unknown[] = [];
    const model = {
      trainableParameters: () => params,
      update: (t: unknown) => {
        calls.push(t);
        params = t;
        return model;
      },
    };
    const opt = make(c);
    for (let s = 0; s < 3; s++) opt.update(model, grads[s]);
    expect(calls.length).toBe(3);
    expectTreeClose(params, c.after[2]!, "model after 3 updates");
  });

  test("MultiOptimizer routes layers.* to SGD and the rest to Adam", () => {
    const m = new optim.MultiOptimizer([new optim.SGD(0.1, { momentum: 0.9 }), new optim.Adam(0.01)], [(k) => k.startsWith("layers")]);
    let p = treeOf(F.params);
    for (let s = 0; s < 3; s++) {
      p = m.applyGradients(grads[s], p);
      // MLX merges the parts' trees through a Python set: its key order is arbitrary.
      expectTreeClose(p, F.multi.after[s]!, `multi step ${s + 1}`, undefined, undefined, true);
    }
    const st = flatten(m.state);
    expect(st.map(([k]) => k)).toEqual(F.multi.state.map(([k]) => k));
    for (const [i, [k, r]] of F.multi.state.entries()) expectClose(st[i]![1], r, `state ${k}`);
    expectClose(m.learningRate, F.multi.state.find(([k]) => k === "states.0.learning_rate")![1], "learning rate");
    m.learningRate = 0.5;
    expect(m.optimizers.map((o) => o.learningRate.item())).toEqual([0.5, 0.5]);
  });

  test("init() makes MLX's state keys; learningRate setter", () => {
    const o = new optim.SGD(0.1, { momentum: 0.9 });
    o.init(treeOf(F.params));
    expect(flatten(o.state).map(([k]) => k)).toEqual(F.initKeys);
    expect(o.learningRate.dtype).toBe(mx.float32);
    o.learningRate = 0.25;
    expect(o.learningRate.item()).toBe(0.25);
    // Options as one object (learningRate inside) work as well.
    const o2 = new optim.SGD({ learningRate: 0.1, momentum: 0.9 });
    expect(o2.momentum).toBe(0.9);
    expect(o2.learningRate.item()).toBeCloseTo(0.1, 7);
  });

  test("schedules drive the learning rate as in MLX's docs examples", () => {
    for (const d of F.docSchedules) {
      const o = d.optimizer === "SGD" ? new optim.SGD(schedule(d.schedule)) : new optim.Adam(schedule(d.schedule));
      expectClose(o.learningRate, d.first, `${d.schedule.$schedule} first`);
      for (let i = 0; i < d.updates; i++) o.update({}, {});
      expectClose(o.learningRate, d.after, `${d.schedule.$schedule} after ${d.updates}`);
      expect(Number(o.step.item())).toBe(d.step);
    }
  });
});

function structuredCloneTree(t: unknown): unknown {
  if (t instanceof mx.Array) return t;
  if (Array.isArray(t)) return t.map(structuredCloneTree);
  if (typeof t === "object" && t !== null) return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, structuredCloneTree(v)]));
  return t;
}

describe("schedules against MLX", () => {
  for (const c of F.schedules) {
    test(`${c.schedule.$schedule}(${JSON.stringify(c.schedule.args)})`, () => {
      const f = schedule(c.schedule);
      F.scheduleSteps.forEach((s, i) => expectClose(f(mx.array(s, mx.uint64)), c.values[i]!, `step ${s}`, 2e-6, 1e-7));
      // The built-in schedules take a JS number as well.
      const g = f as mx.optimizers.StepSchedule;
      F.scheduleSteps.forEach((s, i) => expectClose(g(s), c.values[i]!, `step ${s} (number)`, 2e-6, 1e-7));
    });
  }
});

describe("clipGradNorm against MLX", () => {
  for (const [i, c] of F.clip.entries()) {
    test(`case ${i} (maxNorm ${c.maxNorm})`, () => {
      const [clipped, norm] = optim.clipGradNorm(treeOf(c.grads), c.maxNorm);
      expectClose(norm, c.norm, "norm");
      expectTreeClose(clipped, c.clipped, "clipped");
    });
  }
});

describe("errors (MLX's messages)", () => {
  const E = F.errors;
  const exact = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  test("optimizer constructors", () => {
    expectMlxError(() => new optim.SGD(0.1, { nesterov: true }), exact(E.sgdNesterov!));
    expectMlxError(() => new optim.SGD(0.1, { momentum: 0.9, dampening: 0.1, nesterov: true }), exact(E.sgdNesterovDampening!));
    expectMlxError(() => new optim.RMSprop(0.1, { alpha: -0.5 }), exact(E.rmspropAlpha!));
    expectMlxError(() => new optim.RMSprop(0.1, { eps: 0 }), exact(E.rmspropEps!));
    expectMlxError(() => new optim.Adagrad(0.1, { eps: -1e-8 }), exact(E.adagradEps!));
    expectMlxError(() => new optim.Adagrad(0.1, { eps: -1e-5 }), exact(E.adagradEpsSmall!));
    expectMlxError(() => new optim.AdaDelta(0.1, { rho: -0.1 }), exact(E.adadeltaRho!));
    expectMlxError(() => new optim.AdaDelta(0.1, { eps: 0 }), exact(E.adadeltaEps!));
    expectMlxError(() => new optim.Adam(0.1, { betas: [1.0, 0.9] }), exact(E.adamBeta1!));
    expectMlxError(() => new optim.Adam(0.1, { betas: [0.9, 1.5] }), exact(E.adamBeta2!));
    expectMlxError(() => new optim.Adam(0.1, { eps: -1e-8 }), exact(E.adamEps!));
    expectMlxError(() => new optim.AdamW(0.1, { betas: [-0.5, 0.9] }), exact(E.adamwBeta1!));
    expectMlxError(() => new optim.Lion(0.1, { betas: [0.9, 2.5] }), exact(E.lionBeta2!));
    expectMlxError(() => new optim.MultiOptimizer([new optim.SGD(0.1), new optim.Adam(0.1)], []), exact(E.multiFilters!));
    const m = new optim.MultiOptimizer([new optim.SGD(0.1)]);
    expectMlxError(() => {
      m.state = { states: [{}, {}] };
    }, exact(E.multiState!));
  });
  test("schedules and clipGradNorm", () => {
    expectMlxError(() => optim.stepDecay(0.1, 0.9, 0), exact(E.stepDecay!));
    expectMlxError(() => optim.cosineDecay(0.1, 0), exact(E.cosineDecay!));
    expectMlxError(() => optim.linearSchedule(0.0, 0.1, 0), exact(E.linearSchedule!));
    expectMlxError(() => optim.joinSchedules([], []), exact(E.joinEmpty!));
    expectMlxError(() => optim.joinSchedules([optim.linearSchedule(0, 1, 2)], [3]), exact(E.joinBoundaries!));
    expectMlxError(() => optim.clipGradNorm({ a: mx.array([1.0]) }, -1.0), exact(E.clipNegative!));
  });
  test("a gradient tree that does not match the parameters", () => {
    const o = new optim.SGD(0.1);
    expectMlxError(() => o.applyGradients({ w: mx.array([1.0]), z: mx.array([1.0]) }, { w: mx.array([2.0]) }), /no entry for "z"/);
  });
});

describe("end to end: linear regression through mx.valueAndGrad", () => {
  // y = X w* + b*, with X fixed; the loss is the mean squared error.
  const wStar = [1.5, -2.0, 0.5];
  const bStar = 0.25;
  const n = 32;
  const xs: number[][] = [];
  for (let i = 0; i < n; i++) xs.push([Math.sin(i), Math.cos(1.3 * i), ((i % 7) - 3) / 3]);
  const X = mx.array(xs);
  const Y = mx.add(mx.matmul(X, mx.array(wStar)), bStar);
  const loss = (p: { w: mx.Array; b: mx.Array }) => mx.mean(mx.square(mx.subtract(mx.add(mx.matmul(X, p.w), p.b), Y)));
  const lossAndGrad = mx.valueAndGrad(loss);

  for (const [name, make, steps] of [
    ["SGD", () => new optim.SGD(0.1, { momentum: 0.9 }), 300],
    ["Adam", () => new optim.Adam(0.05), 600],
  ] as const) {
    test(`${name} converges`, () => {
      const opt = make();
      const params = { w: mx.zeros([3]), b: mx.array(0.0) };
      let first = 0;
      let last = 0;
      for (let i = 0; i < steps; i++) {
        const [l, g] = lossAndGrad(params) as [mx.Array, { w: mx.Array; b: mx.Array }];
        opt.update(params, g);
        mx.eval(params.w, params.b, opt.state);
        if (i === 0) first = l.item() as number;
        last = l.item() as number;
      }
      expect(first).toBeGreaterThan(1);
      expect(last).toBeLessThan(1e-6);
      const w = Array.from(params.w.toTypedArray() as Float32Array);
      w.forEach((v, i) => expect(Math.abs(v - wStar[i]!)).toBeLessThan(1e-3));
      expect(Math.abs((params.b.item() as number) - bStar)).toBeLessThan(1e-3);
    });
  }

  test("a step inside mx.tidy keeps the new parameters and the state, and releases the rest", () => {
    const opt = new optim.Adam(0.05, { biasCorrection: true });
    const params = { w: mx.zeros([3]), b: mx.array(0.0) };
    const step = () =>
      mx.tidy(() => {
        const [l, g] = lossAndGrad(params) as [mx.Array, { w: mx.Array; b: mx.Array }];
        opt.update(params, g);
        mx.eval(params.w, params.b, opt.state);
        return l.item() as number;
      });
    step();
    const handles = mx.getLiveHandleCount();
    let last = 0;
    for (let i = 0; i < 50; i++) last = step();
    expect(Number.isFinite(last)).toBe(true);
    expect(params.w.disposed || params.b.disposed).toBe(false);
    for (const [, a] of flatten(opt.state)) expect((a as mx.Array).disposed).toBe(false);
    // Replaced parameters and state are no longer reachable from here; they wait for the GC, so
    // the count grows by at most the arrays each step replaces, never by the temporaries.
    expect(mx.getLiveHandleCount() - handles).toBeLessThan(50 * 8);
  });
});

describe("releaseReplaced: replaced parameters and state released at once", () => {
  const X = mx.random.normal([16, 3], { key: mx.random.key(5) });
  const Y = mx.matmul(X, mx.array([[1], [-2], [0.5]]));
  const run = (release: boolean, steps: number) => {
    const params = { w: mx.zeros([3, 1]), b: mx.zeros([1]) };
    const opt = new optim.Adam(0.05);
    opt.releaseReplaced = release;
    const lg = mx.valueAndGrad((p: { w: mx.Array; b: mx.Array }) => mx.mean(mx.square(mx.subtract(mx.add(mx.matmul(X, p.w), p.b), Y))));
    const counts: number[] = [];
    for (let i = 0; i < steps; i++) {
      mx.tidy(() => {
        const [, g] = lg(params) as [mx.Array, unknown];
        opt.update(params, g);
        mx.eval(params.w, params.b, opt.state);
      });
      counts.push(mx.getLiveHandleCount());
    }
    return { params, opt, counts };
  };

  test("same values as without it; the handle count stays flat with no GC", () => {
    const a = run(false, 20);
    const b = run(true, 20);
    expect(b.params.w.tolist()).toEqual(a.params.w.tolist());
    expect(b.params.b.tolist()).toEqual(a.params.b.tolist());
    // Each step replaces 2 parameters and 5 state entries (step, m and v of each): with the
    // release, nothing accumulates between steps (without it, they wait for the GC).
    expect(b.counts.at(-1)! - b.counts[2]!).toBeLessThanOrEqual(0);
  });

  test("off by default: an old parameter and an old state entry stay usable", () => {
    const params = { w: mx.ones([2]) };
    const opt = new optim.SGD(0.1, { momentum: 0.9 });
    expect(opt.releaseReplaced).toBe(false);
    opt.update(params, { w: mx.ones([2]) });
    const w1 = params.w;
    const v1 = (opt.state.w as { v: mx.Array }).v;
    opt.update(params, { w: mx.ones([2]) });
    expect(w1.disposed || v1.disposed).toBe(false);
    expect(w1.tolist()).toEqual([0.9, 0.9].map((x) => Math.fround(x)));
  });

  test("on: the replaced ones are disposed, the current ones and a shared state are not", () => {
    const params = { w: mx.ones([2]) };
    const opt = new optim.SGD(0.1, { momentum: 0.9 });
    opt.releaseReplaced = true;
    opt.update(params, { w: mx.ones([2]) });
    const w1 = params.w;
    const v1 = (opt.state.w as { v: mx.Array }).v;
    opt.update(params, { w: mx.ones([2]) });
    expect(w1.disposed).toBe(true);
    expect(v1.disposed).toBe(true);
    expect(() => w1.tolist()).toThrow("used after it was disposed");
    expect(params.w.disposed).toBe(false);
    // A state handed to another optimizer through `state =` is shared: neither releases it.
    const other = new optim.SGD(0.1, { momentum: 0.9 });
    other.releaseReplaced = true;
    const shared = { ...opt.state, w: { ...(opt.state.w as object) } };
    other.state = shared;
    const v2 = (shared.w as { v: mx.Array }).v;
    opt.update(params, { w: mx.ones([2]) });
    expect(v2.disposed).toBe(false);
    const q = { w: mx.ones([2]) };
    other.update(q, { w: mx.ones([2]) });
    expect(v2.disposed).toBe(false);
    // parameters the gradients do not name are left alone
    const two = { a: mx.ones([1]), b: mx.ones([1]) };
    const b0 = two.b;
    const third = new optim.SGD(0.1);
    third.releaseReplaced = true;
    third.update(two, { a: mx.ones([1]) });
    third.update(two, { a: mx.ones([1]) });
    expect(b0.disposed).toBe(false);
  });
});

