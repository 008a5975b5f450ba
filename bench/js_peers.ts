// The JavaScript peers of bench/run_all.sh: jax-js (@jax-js/jax, wasm backend) and TF.js
// (@tensorflow/tfjs with its wasm and cpu backends), installed by run_all.sh into
// bench/peers/node_modules. Runs the cases of one benchmark that these libraries have, under the
// same names as the mlx-bun scripts, and prints their JSON lines:
//
//   bun bench/js_peers.ts <jax-js|tfjs-wasm|tfjs-cpu> <throughput|matmul|mlp_step>
//
// throughput: the elementwise ops and reductions of bench/throughput.ts (same sizes, BENCH_SIZES);
// matmul: the float32 cases of bench/matmul_cases.json up to 1024 (BENCH_ONLY filters as there);
// mlp_step: the MLP step of bench/mlp_step.ts (same sizes and loss; TF.js picks the target logits
// by a one-hot product). Results are read back where the library needs that to compute (jax-js). If the library cannot be
// imported or initialised, or a case fails, one line { side: "unavailable", peer, reason } says so.
// The libraries are loaded by path at run time (they are not dependencies of mlx-bun).
import { readFileSync } from "node:fs";
import { join } from "node:path";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Lib = any;
const peersDir = process.env.BENCH_PEERS_DIR ?? join(import.meta.dir, "peers", "node_modules");
const rounds = Number(process.env.BENCH_ROUNDS ?? 15);
const targetMs = Number(process.env.BENCH_CASE_MS ?? 1500);
const sizes = (process.env.BENCH_SIZES ?? "1048576,16777216").split(",").map(Number);
const only = process.env.BENCH_ONLY?.split(",");
// Subsets for the quick mode: BENCH_JS_OPS=add,exp,sum (throughput), BENCH_JS_MLP=tiny (mlp_step).
const jsOps = process.env.BENCH_JS_OPS?.split(",");
const jsMlp = process.env.BENCH_JS_MLP?.split(",");

const emit = (o: object) => console.log(JSON.stringify(o));
const unavailable = (peer: string, reason: string) => emit({ side: "unavailable", peer, name: "", reason });

/** A uniform interface over the two libraries: make, run, wait, release. */
interface Peer {
  side: string;
  linspace(a: number, b: number, n: number): unknown;
  randn(shape: number[]): unknown;
  ones(shape: number[]): unknown;
  /** Runs fn (which builds one result from kept inputs) and waits for the result to be computed. */
  run(fn: () => unknown): Promise<void>;
  ops: Record<string, ((a: unknown, b: unknown) => unknown) | undefined>;
  matmul(a: unknown, b: unknown): unknown;
  mlpStep?: (batch: number, din: number, hidden: number, dout: number) => () => Promise<void>;
  release(x: unknown): void;
  /** Waits until an input is computed (jax-js is lazy), before the clock starts. */
  ready(x: unknown): Promise<void>;
}

async function loadJax(): Promise<Peer> {
  const jax: Lib = await import(join(peersDir, "@jax-js/jax/dist/index.js"));
  const devs: string[] = await jax.init("wasm");
  if (!devs.includes("wasm")) throw new Error(`jax-js init("wasm") gave ${JSON.stringify(devs)}`);
  jax.defaultDevice("wasm");
  const np = jax.numpy;
  const r = (x: any) => x.ref; // jax-js ops consume their arguments; .ref keeps the inputs alive
  const peer: Peer = {
    side: "jax-js",
    linspace: (a, b, n) => np.linspace(a, b, n),
    randn: (shape) => jax.random.normal(jax.random.key(1), shape),
    ones: (shape) => np.ones(shape),
    // jax-js is lazy and blockUntilReady() returned before the work was done in our trials (a
    // 1M-element exp "ready" in 25 µs); data() is what forces it, so the time includes reading
    // the result out of the wasm heap (data() also releases the array).
    async run(fn) {
      const out: any = fn();
      await out.data();
    },
    ops: {
      add: (a, b) => np.add(r(a), r(b)),
      multiply_scalar: (a) => np.multiply(r(a), 1.5),
      maximum: (a, b) => np.maximum(r(a), r(b)),
      exp: (a) => np.exp(r(a)),
      sqrt: (a) => np.sqrt(r(a)),
      tanh: (a) => np.tanh(r(a)),
      sigmoid: (a) => jax.nn.sigmoid(r(a)),
      sum: (a) => np.sum(r(a)),
      max: (a) => np.max(r(a)),
    },
    matmul: (a, b) => np.matmul(r(a), r(b)),
    release: (x: any) => x.dispose(),
    ready: async (x: any) => {
      await x.blockUntilReady();
    },
  };
  peer.mlpStep = (batch, din, hidden, dout) => {
    const k = jax.random.split(jax.random.key(0), 4);
    const params = {
      w1: np.multiply(jax.random.normal(k.ref.slice(0), [din, hidden]), 1 / Math.sqrt(din)),
      b1: np.zeros([hidden]),
      w2: np.multiply(jax.random.normal(k.ref.slice(1), [hidden, dout]), 1 / Math.sqrt(hidden)),
      b2: np.zeros([dout]),
    };
    const x = jax.random.normal(k.ref.slice(2), [batch, din]);
    const y = np.array(Int32Array.from({ length: batch }, (_, i) => i % dout), { dtype: jax.DType.Int32 });
    k.dispose();
    const loss = (p: any, xx: any, yy: any) => {
      const h = np.maximum(np.add(np.matmul(xx, p.w1), p.b1), 0);
      const logits = np.add(np.matmul(h, p.w2), p.b2);
      const picked = np.takeAlongAxis(logits.ref, np.expandDims(yy, -1), -1);
      return np.mean(np.subtract(jax.nn.logsumexp(logits, -1, { keepdims: true }), picked));
    };
    const vg = jax.valueAndGrad(loss);
    return async () => {
      const p = { w1: params.w1.ref, b1: params.b1.ref, w2: params.w2.ref, b2: params.b2.ref };
      const [l, g] = vg(p, x.ref, y.ref);
      await l.data();
      for (const v of Object.values(g)) await (v as any).data();
    };
  };
  return peer;
}

async function loadTf(backend: "wasm" | "cpu"): Promise<Peer> {
  const tf: Lib = await import(join(peersDir, "@tensorflow/tfjs/dist/index.js"));
  if (backend === "wasm") await import(join(peersDir, "@tensorflow/tfjs-backend-wasm/dist/index.js"));
  const warn = console.warn;
  console.warn = () => {}; // the "install tfjs-node" banner
  const ok = await tf.setBackend(backend);
  await tf.ready();
  console.warn = warn;
  if (!ok || tf.getBackend() !== backend) throw new Error(`tf.setBackend("${backend}") failed (backend: ${tf.getBackend()})`);
  const peer: Peer = {
    side: `tfjs-${backend}`,
    linspace: (a, b, n) => tf.linspace(a, b, n),
    randn: (shape) => tf.randomNormal(shape, 0, 1, "float32", 1),
    ones: (shape) => tf.ones(shape),
    // The cpu and wasm backends compute inside the op call; dataSync would add a copy out.
    async run(fn) {
      const out: any = fn();
      out.dispose();
    },
    ops: {
      add: (a, b) => tf.add(a, b),
      multiply_scalar: (a) => tf.mul(a, 1.5),
      maximum: (a, b) => tf.maximum(a, b),
      exp: (a) => tf.exp(a),
      sqrt: (a) => tf.sqrt(a),
      tanh: (a) => tf.tanh(a),
      sigmoid: (a) => tf.sigmoid(a),
      sum: (a) => tf.sum(a),
      max: (a) => tf.max(a),
    },
    matmul: (a, b) => tf.matMul(a, b),
    release: (x: any) => x.dispose(),
    ready: async () => {},
  };
  peer.mlpStep = (batch, din, hidden, dout) => {
    const w1 = tf.mul(tf.randomNormal([din, hidden], 0, 1, "float32", 1), 1 / Math.sqrt(din));
    const b1 = tf.zeros([hidden]);
    const w2 = tf.mul(tf.randomNormal([hidden, dout], 0, 1, "float32", 2), 1 / Math.sqrt(hidden));
    const b2 = tf.zeros([dout]);
    const x = tf.randomNormal([batch, din], 0, 1, "float32", 3);
    const y = tf.tensor1d(Int32Array.from({ length: batch }, (_, i) => i % dout), "int32");
    const yHot = tf.oneHot(y, dout);
    const g = tf.valueAndGrads((pw1: any, pb1: any, pw2: any, pb2: any) => {
      const h = tf.relu(tf.add(tf.matMul(x, pw1), pb1));
      const logits = tf.add(tf.matMul(h, pw2), pb2);
      // tf.gather with batchDims (take_along_axis) hit "Out of bounds memory access" on the wasm
      // backend; the one-hot product picks the same logits.
      const picked = tf.sum(tf.mul(logits, yHot), -1, true);
      return tf.mean(tf.sub(tf.logSumExp(logits, -1, true), picked));
    });
    return async () => {
      tf.tidy(() => {
        const { value, grads } = g([w1, b1, w2, b2]);
        value.dataSync();
        for (const t of grads) t.dataSync();
      });
    };
  };
  return peer;
}

async function timeRounds(fn: () => Promise<void>, n: number): Promise<number[]> {
  const ns: number[] = [];
  for (let r = 0; r < n + 2; r++) {
    const t0 = Bun.nanoseconds();
    await fn();
    const t = Bun.nanoseconds() - t0;
    if (r >= 2) ns.push(t);
  }
  return ns;
}
async function timeFor(fn: () => Promise<void>, ms: number, lo: number, hi: number): Promise<number[]> {
  await fn();
  const t0 = Bun.nanoseconds();
  await fn();
  const first = Bun.nanoseconds() - t0;
  const n = Math.max(lo, Math.min(hi, Math.round((ms * 1e6) / first)));
  const ns: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = Bun.nanoseconds();
    await fn();
    ns.push(Bun.nanoseconds() - s);
  }
  return ns;
}

const BYTES: Record<string, number> = { add: 12, multiply_scalar: 8, maximum: 12, exp: 8, sqrt: 8, tanh: 8, sigmoid: 8, sum: 4, max: 4 };

async function main(): Promise<void> {
  const [which, bench] = process.argv.slice(2);
  if (!which || !bench) {
    console.error("usage: bun bench/js_peers.ts <jax-js|tfjs-wasm|tfjs-cpu> <throughput|matmul|mlp_step>");
    process.exit(2);
  }
  let peer: Peer;
  try {
    peer = which === "jax-js" ? await loadJax() : which === "tfjs-wasm" ? await loadTf("wasm") : which === "tfjs-cpu" ? await loadTf("cpu") : (() => { throw new Error(`unknown peer ${which}`); })();
  } catch (e) {
    unavailable(which, `cannot load or initialise under Bun ${Bun.version}: ${String((e as Error)?.message ?? e)}`);
    return;
  }
  const failed: string[] = [];
  const attempt = async (name: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      failed.push(`${name}: ${String((e as Error)?.message ?? e).slice(0, 160)}`);
    }
  };
  if (bench === "throughput") {
    for (const n of sizes) {
      const a = peer.linspace(-3, 3, n);
      const b = peer.linspace(3, -3, n);
      await peer.ready(a);
      await peer.ready(b);
      for (const [name, op] of Object.entries(peer.ops)) {
        if (!op || (jsOps && !jsOps.includes(name))) continue;
        await attempt(`${name} ${n}`, async () => {
          const ns = await timeRounds(() => peer.run(() => op(a, b)), rounds);
          emit({ side: peer.side, name, n, bytes: BYTES[name]! * n, ns });
        });
      }
      peer.release(a);
      peer.release(b);
    }
  } else if (bench === "matmul") {
    type Case = { name: string; dtype: string; batch: number; m: number; k: number; n: number };
    const cases = (JSON.parse(readFileSync(join(import.meta.dir, "matmul_cases.json"), "utf8")) as Case[]).filter(
      (c) => c.dtype === "float32" && c.batch === 1 && Math.max(c.m, c.k, c.n) <= 1024 && (!only || only.some((o) => c.dtype.startsWith(o) || c.name.includes(o))),
    );
    for (const c of cases) {
      await attempt(c.name, async () => {
        const a = peer.randn([c.m, c.k]);
        const b = peer.randn([c.k, c.n]);
        await peer.ready(a);
        await peer.ready(b);
        const ns = await timeFor(() => peer.run(() => peer.matmul(a, b)), targetMs, 3, 50);
        emit({ side: peer.side, ...c, ns });
        peer.release(a);
        peer.release(b);
      });
    }
  } else if (bench === "mlp_step") {
    const mlp = [
      { name: "tiny (batch 16, 32-64-10)", batch: 16, din: 32, hidden: 64, dout: 10 },
      { name: "small (batch 64, 784-256-10)", batch: 64, din: 784, hidden: 256, dout: 10 },
      { name: "medium (batch 256, 784-1024-10)", batch: 256, din: 784, hidden: 1024, dout: 10 },
    ];
    for (const s of mlp) {
      if (!peer.mlpStep) break;
      if (jsMlp && !jsMlp.some((m) => s.name.startsWith(m))) continue;
      await attempt(s.name, async () => {
        const step = peer.mlpStep!(s.batch, s.din, s.hidden, s.dout);
        for (let i = 0; i < 3; i++) await step();
        const ns = await timeFor(step, targetMs, 5, 2000);
        emit({ side: peer.side, name: s.name, ns });
      });
    }
  }
  if (failed.length > 0) unavailable(which, `some cases failed: ${failed.join("; ")}`);
}

await main();
// jax-js keeps the event loop alive after the work is done; leave explicitly.
process.exit(0);
