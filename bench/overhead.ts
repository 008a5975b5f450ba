// Host-side overhead of mlx-bun on tiny arrays: creating, evaluating and releasing them, the
// whole cycle, and the cost of one call through the binding. Its peer is bench/overhead_mlx.py
// (MLX's Python API, same ids); bench/run_overhead.sh runs both and writes the report.
//
//   .toolchain/bin/bun bench/overhead.ts                 # a table on stdout
//   .toolchain/bin/bun bench/overhead.ts --json          # JSON on stdout, the table on stderr
//   .toolchain/bin/bun bench/overhead.ts --only create,eval
//
// Method: each benchmark times only the step it names (setup and teardown of the other steps
// run outside the clock), over N iterations, N calibrated so a round takes about
// BENCH_ROUND_MS (40 ms). After BENCH_WARMUP_MS (250 ms) of warm-up it runs BENCH_ROUNDS (7)
// rounds and reports ns/op per round: median, min/max and quartiles. Benchmarks that hold their
// arrays alive between steps run in batches of BENCH_BATCH (10,000). Every loop feeds a
// checksum that is returned, and engine calls are opaque to the JIT, so nothing is optimised
// away. The garbage collector is left to run when it likes inside rounds (its work is part of
// the cost); a full collection runs between benchmarks, outside any clock.
//
// This is a benchmark, not a test: it asserts nothing about time.
import * as mx from "../src/index.ts";
import { lib, trackHandle } from "../ffi/lib.ts";
import { MxArray } from "../src/array.ts";
import { track } from "../src/scope.ts";

type Run = (n: number) => { ns: number; ck: number };

interface Bench {
  id: string;
  group: string;
  /** What is timed, as code. */
  label: string;
  /** The id of the comparable Python benchmark, if any. */
  peer?: string;
  /** Why the peer is only roughly comparable. */
  peerNote?: string;
  /** The benchmark holds its N arrays alive at once: run it in batches of at most BATCH. */
  batched?: boolean;
  run: Run;
}

const env = (k: string, d: number) => {
  const v = Number(process.env[k]);
  return Number.isFinite(v) && v > 0 ? v : d;
};
const ROUNDS = Math.round(env("BENCH_ROUNDS", 7));
const ROUND_MS = env("BENCH_ROUND_MS", 40);
const WARMUP_MS = env("BENCH_WARMUP_MS", 250);
// Phase-split benchmarks hold their arrays alive between the steps; they run in batches of at
// most BATCH arrays, so the number of live wrappers the GC has to trace (which makes creation
// dearer as it grows) is the same whatever N the calibration picks.
const BATCH = Math.round(env("BENCH_BATCH", 10_000));

const now = () => Bun.nanoseconds();
const F32 = mx.float32;

// ---------------------------------------------------------------------------------------------
// What is created. Each maker is the user-facing call, written as a user would.

const makers = {
  scalar: () => mx.array(1.5),
  list3: () => mx.array([1, 2, 3]),
  zeros44: () => mx.zeros([4, 4]),
  // The arange wrapper is not disposed (as a user writes it): the GC releases it.
  arange16f: () => mx.arange(16).astype(F32),
} as const;
type Kind = keyof typeof makers;
const kinds = Object.keys(makers) as Kind[];
const code: Record<Kind, string> = {
  scalar: "mx.array(1.5)",
  list3: "mx.array([1, 2, 3])",
  zeros44: "mx.zeros([4, 4])",
  arange16f: "mx.arange(16).astype(mx.float32)",
};

/** Make n arrays (untimed setup). */
function makeMany(kind: Kind, n: number, evaluated: boolean): MxArray[] {
  const make = makers[kind];
  const out = new Array<MxArray>(n);
  for (let i = 0; i < n; i++) out[i] = make();
  if (evaluated) for (let i = 0; i < n; i++) mx.eval(out[i]);
  return out;
}

/**
 * n 4x4 float32 wrappers built straight from raw engine calls (untimed setup), so nothing on
 * the creation path has read and cached their dtype or shape: the first read is really first.
 */
function freshWrappers(n: number): MxArray[] {
  const dims = new Int32Array([4, 4]);
  const f32 = F32.value;
  const out = new Array<MxArray>(n);
  for (let i = 0; i < n; i++) {
    const s = lib.mlxb_array_scalar(0, f32, -1);
    out[i] = new MxArray(lib.mlxb_full(dims, 2, s, f32, -1));
    lib.mlxb_array_free(s);
  }
  return out;
}

function disposeAll(arrs: MxArray[]): number {
  let live = 0;
  for (const a of arrs) {
    if (!a.disposed) live++;
    a.dispose();
  }
  return live;
}

const benches: Bench[] = [];
const add = (b: Bench) => benches.push(b);

// ---------------------------------------------------------------------------------------------
// baseline: the loop itself

add({
  id: "baseline.loop",
  group: "baseline",
  label: "empty loop (ck += i & 1)",
  peer: "baseline.loop",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += i & 1;
    return { ns: now() - t0, ck };
  },
});

// ---------------------------------------------------------------------------------------------
// (a) create: timed creation of n arrays; disposal afterwards is untimed.

for (const kind of kinds) {
  const make = makers[kind];
  add({
    id: `create.${kind}`,
    group: "create",
    label: code[kind],
    peer: `create.${kind}`,
    batched: true,
    run(n) {
      const out = new Array<MxArray>(n);
      const t0 = now();
      for (let i = 0; i < n; i++) out[i] = make();
      const ns = now() - t0;
      return { ns, ck: disposeAll(out) };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// (b) eval: arrays made untimed, each evaluated by its own mx.eval (timed), disposed untimed.

for (const kind of kinds) {
  add({
    id: `eval.${kind}`,
    group: "eval",
    label: `mx.eval(a), a = ${code[kind]}`,
    peer: `eval.${kind}`,
    batched: true,
    run(n) {
      const arrs = makeMany(kind, n, false);
      const t0 = now();
      for (let i = 0; i < n; i++) mx.eval(arrs[i]);
      const ns = now() - t0;
      return { ns, ck: disposeAll(arrs) };
    },
  });
}
add({
  id: "eval.again",
  group: "eval",
  label: "mx.eval(a) on an already evaluated mx.array([1, 2, 3])",
  peer: "eval.again",
  batched: true,
  run(n) {
    const arrs = makeMany("list3", n, true);
    const t0 = now();
    for (let i = 0; i < n; i++) mx.eval(arrs[i]);
    const ns = now() - t0;
    return { ns, ck: disposeAll(arrs) };
  },
});

// ---------------------------------------------------------------------------------------------
// (c) release: evaluated arrays made untimed, released timed.

add({
  id: "dispose.method",
  group: "dispose",
  label: "a.dispose(), a = evaluated mx.array([1, 2, 3])",
  peer: "dispose.del",
  batched: true,
  run(n) {
    const arrs = makeMany("list3", n, true);
    const t0 = now();
    for (let i = 0; i < n; i++) arrs[i]!.dispose();
    const ns = now() - t0;
    let ck = 0;
    for (const a of arrs) ck += a.disposed ? 1 : 0;
    return { ns, ck };
  },
});
add({
  id: "dispose.using",
  group: "dispose",
  label: "{ using a = arrs[i]; } (block exit disposes)",
  peer: "dispose.del",
  batched: true,
  run(n) {
    const arrs = makeMany("list3", n, true);
    const t0 = now();
    for (let i = 0; i < n; i++) {
      using a = arrs[i]!;
    }
    const ns = now() - t0;
    let ck = 0;
    for (const a of arrs) ck += a.disposed ? 1 : 0;
    return { ns, ck };
  },
});
add({
  id: "dispose.mx_dispose",
  group: "dispose",
  label: "mx.dispose(a) (walks its arguments as a tree)",
  peer: "dispose.del",
  batched: true,
  run(n) {
    const arrs = makeMany("list3", n, true);
    const t0 = now();
    for (let i = 0; i < n; i++) mx.dispose(arrs[i]);
    const ns = now() - t0;
    let ck = 0;
    for (const a of arrs) ck += a.disposed ? 1 : 0;
    return { ns, ck };
  },
});
add({
  id: "dispose.gc",
  group: "dispose",
  label: "drop a batch of evaluated arrays, then Bun.gc(true) (the GC backstop releases them)",
  peer: "dispose.del",
  peerNote: "one full collection per batch of 10,000, spread over the batch",
  batched: true,
  run(n) {
    let arrs: MxArray[] | undefined = makeMany("list3", n, true);
    const before = mx.getLiveHandleCount();
    const t0 = now();
    arrs = undefined;
    Bun.gc(true);
    const ns = now() - t0;
    return { ns, ck: before - mx.getLiveHandleCount() + (arrs === undefined ? 0 : 1) };
  },
});

// ---------------------------------------------------------------------------------------------
// (d) the whole cycle: create + eval + release, timed together.

for (const kind of kinds) {
  const make = makers[kind];
  add({
    id: `cycle.${kind}`,
    group: "cycle",
    label: `a = ${code[kind]}; mx.eval(a); a.dispose()`,
    peer: `cycle.${kind}`,
    run(n) {
      let ck = 0;
      const t0 = now();
      for (let i = 0; i < n; i++) {
        const a = make();
        mx.eval(a);
        a.dispose();
        ck += a.disposed ? 1 : 0;
      }
      return { ns: now() - t0, ck };
    },
  });
  add({
    id: `cycle.${kind}.using`,
    group: "cycle",
    label: `{ using a = ${code[kind]}; mx.eval(a); }`,
    peer: `cycle.${kind}`,
    run(n) {
      let ck = 0;
      const t0 = now();
      for (let i = 0; i < n; i++) {
        using a = make();
        mx.eval(a);
        ck += i & 1;
      }
      return { ns: now() - t0, ck };
    },
  });
  add({
    id: `cycle.${kind}.gc`,
    group: "cycle",
    label: `a = ${code[kind]}; mx.eval(a) (never disposed: GC backstop)`,
    peer: `cycle.${kind}`,
    run(n) {
      let ck = 0;
      const t0 = now();
      for (let i = 0; i < n; i++) {
        const a = make();
        mx.eval(a);
        ck += a.disposed ? 0 : 1;
      }
      return { ns: now() - t0, ck };
    },
  });
}
add({
  id: "cycle.list3.gc_full",
  group: "cycle",
  label: "n x (a = mx.array([1, 2, 3]); mx.eval(a)), then Bun.gc(true), all timed",
  peer: "cycle.list3",
  peerNote: "pays a full collection per round: an upper bound on the GC backstop",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const a = makers.list3();
      mx.eval(a);
      ck += a.disposed ? 0 : 1;
    }
    Bun.gc(true);
    return { ns: now() - t0, ck };
  },
});
add({
  id: "cycle.list3.tidy",
  group: "cycle",
  label: "mx.tidy(() => { const a = mx.array([1, 2, 3]); mx.eval(a); })",
  peer: "cycle.list3",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      mx.tidy(() => {
        const a = makers.list3();
        mx.eval(a);
        ck += a.disposed ? 0 : 1;
      });
    }
    return { ns: now() - t0, ck };
  },
});

// ---------------------------------------------------------------------------------------------
// (e) one call through the binding

add({
  id: "call.abi_version",
  group: "call",
  label: "lib.mlxb_abi_version() (raw bun:ffi, returns i32)",
  peer: "call.get_active_memory",
  peerNote: "nearest peer: MLX has no no-op call; this is Python's cheapest engine call here",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += lib.mlxb_abi_version();
    return { ns: now() - t0, ck };
  },
});
add({
  id: "call.live_handles",
  group: "call",
  label: "lib.mlxb_live_handles() (raw bun:ffi, returns u32, reads an atomic)",
  peer: "call.get_active_memory",
  peerNote: "nearest peer",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += lib.mlxb_live_handles();
    return { ns: now() - t0, ck };
  },
});
add({
  id: "call.raw_get_active_memory",
  group: "call",
  label: "lib.mlxb_get_active_memory() (raw bun:ffi, returns f64)",
  peer: "call.get_active_memory",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += lib.mlxb_get_active_memory();
    return { ns: now() - t0, ck };
  },
});
add({
  id: "call.get_active_memory",
  group: "call",
  label: "mx.getActiveMemory()",
  peer: "call.get_active_memory",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += mx.getActiveMemory();
    return { ns: now() - t0, ck };
  },
});
add({
  id: "call.dtype_fresh",
  group: "call",
  label: "a.dtype, first read on a fresh 4x4 array (one engine call)",
  peer: "call.dtype",
  batched: true,
  run(n) {
    const arrs = freshWrappers(n);
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += arrs[i]!.dtype.size;
    const ns = now() - t0;
    disposeAll(arrs);
    return { ns, ck };
  },
});
add({
  id: "call.dtype_cached",
  group: "call",
  label: "a.dtype, read again (cached in the wrapper, no engine call)",
  peer: "call.dtype",
  peerNote: "Python has no cache: every a.dtype is an engine call",
  run(n) {
    const a = makers.list3();
    void a.dtype;
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += a.dtype.size;
    const ns = now() - t0;
    a.dispose();
    return { ns, ck };
  },
});
add({
  id: "call.shape_fresh",
  group: "call",
  label: "a.shape, first read on a fresh 4x4 array (ndim + one call per dim)",
  peer: "call.shape",
  batched: true,
  run(n) {
    const arrs = freshWrappers(n);
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += arrs[i]!.shape.length;
    const ns = now() - t0;
    disposeAll(arrs);
    return { ns, ck };
  },
});
add({
  id: "call.size",
  group: "call",
  label: "a.size, a = mx.zeros([4, 4]), shape already cached (pure JS)",
  peer: "call.size",
  run(n) {
    const a = makers.zeros44();
    void a.shape;
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += a.size;
    const ns = now() - t0;
    a.dispose();
    return { ns, ck };
  },
});

// ---------------------------------------------------------------------------------------------
// anatomy: what one mx.array / mx.eval / dispose costs, piece by piece (no Python peer).

const F32V = F32.value;
add({
  id: "anatomy.freeze_shape",
  group: "anatomy",
  label: "Object.freeze of a fresh 2-element array (what the shape getter does once per array)",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const d = new Array<number>(2);
      d[0] = i;
      d[1] = 4;
      ck += Object.freeze(d).length;
    }
    return { ns: now() - t0, ck };
  },
});
add({
  id: "anatomy.engine_scalar_free",
  group: "anatomy",
  label: "lib.mlxb_array_scalar(1.5, f32, -1) + lib.mlxb_array_free(h): the engine alone",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const h = lib.mlxb_array_scalar(1.5, F32V, -1);
      ck += lib.mlxb_array_free(h) + (h & 1);
    }
    return { ns: now() - t0, ck };
  },
});
add({
  id: "anatomy.engine_from_data_free",
  group: "anatomy",
  label: "lib.mlxb_array_from_data(Int32Array [1,2,3], int32, [3]) + lib.mlxb_array_free(h): mx.array([1, 2, 3]) in the engine alone",
  run(n) {
    const data = new Int32Array([1, 2, 3]);
    const dims = new Int32Array([3]);
    const I32V = mx.int32.value;
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const h = lib.mlxb_array_from_data(data, I32V, dims, 1, -1);
      ck += lib.mlxb_array_free(h) + (h & 1);
    }
    return { ns: now() - t0, ck };
  },
});
add({
  id: "anatomy.engine_nbytes",
  group: "anatomy",
  label: "lib.mlxb_array_nbytes(h) (the constructor's second engine call)",
  run(n) {
    const h = lib.mlxb_array_scalar(1.5, F32V, -1);
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) ck += lib.mlxb_array_nbytes(h);
    const ns = now() - t0;
    lib.mlxb_array_free(h);
    return { ns, ck };
  },
});
add({
  id: "anatomy.engine_scalar_track_dispose",
  group: "anatomy",
  label: "engine scalar + trackHandle (GC-sized ArrayBuffer with a finalizer) + lib.mlxb_array_dispose",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const h = lib.mlxb_array_scalar(1.5, F32V, -1);
      const ab = trackHandle(h, lib.mlxb_array_nbytes(h));
      ck += lib.mlxb_array_dispose(h) + ab.byteLength;
    }
    return { ns: now() - t0, ck };
  },
});
add({
  id: "anatomy.scope_track",
  group: "anatomy",
  label: "track(a) outside any tidy (AsyncLocalStorage.getStore())",
  run(n) {
    // A stand-in array: track() only stores it, and only inside a tidy scope (there is none here).
    const d = { dispose() {}, escape() {}, kept: false } as unknown as Parameters<typeof track>[0];
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      track(d);
      ck += i & 1;
    }
    return { ns: now() - t0, ck };
  },
});
add({
  id: "anatomy.new_mxarray_dispose",
  group: "anatomy",
  label: "new MxArray(lib.mlxb_array_scalar(1.5, f32, -1)).dispose() (mx.array(1.5) minus its argument checks)",
  run(n) {
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const a = new MxArray(lib.mlxb_array_scalar(1.5, F32V, -1));
      a.dispose();
      ck += a.disposed ? 1 : 0;
    }
    return { ns: now() - t0, ck };
  },
});
add({
  id: "anatomy.engine_eval_again",
  group: "anatomy",
  label: "lib.mlxb_eval([h], 1) on already evaluated arrays, same arrays as eval.again (eval.again minus the wrapper)",
  batched: true,
  run(n) {
    const arrs = makeMany("list3", n, true);
    const handles = new Uint32Array(n);
    for (let i = 0; i < n; i++) handles[i] = arrs[i]!.handle();
    const one = new Uint32Array(1);
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      one[0] = handles[i]!;
      ck += lib.mlxb_eval(one, 1);
    }
    const ns = now() - t0;
    disposeAll(arrs);
    return { ns, ck };
  },
});
add({
  id: "anatomy.engine_zeros_eval_free",
  group: "anatomy",
  label: "engine-only zeros([4,4]): scalar + full + free scalar + eval + free (5 raw calls)",
  run(n) {
    const dims = new Int32Array([4, 4]);
    const hs = new Uint32Array(1);
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const s = lib.mlxb_array_scalar(0, F32V, -1);
      const h = lib.mlxb_full(dims, 2, s, F32V, -1);
      lib.mlxb_array_free(s);
      hs[0] = h;
      ck += lib.mlxb_eval(hs, 1);
      ck += lib.mlxb_array_free(h);
    }
    return { ns: now() - t0, ck };
  },
});
add({
  id: "anatomy.engine_arange_astype_eval_free",
  group: "anatomy",
  label: "engine-only arange(16).astype(f32): arange + astype + free + eval + free (5 raw calls)",
  run(n) {
    const hs = new Uint32Array(1);
    const I32V = mx.int32.value;
    let ck = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const r = lib.mlxb_arange(0, 16, 1, I32V, -1);
      const h = lib.mlxb_astype(r, F32V, -1);
      lib.mlxb_array_free(r);
      hs[0] = h;
      ck += lib.mlxb_eval(hs, 1);
      ck += lib.mlxb_array_free(h);
    }
    return { ns: now() - t0, ck };
  },
});

// ---------------------------------------------------------------------------------------------
// Harness

interface Result {
  id: string;
  group: string;
  label: string;
  peer: string | null;
  peerNote: string | null;
  n: number;
  rounds: number[];
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
  checksum: number;
  liveHandlesBefore: number;
  liveHandlesAfter: number;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Run b for n iterations: in batches of at most BATCH if b holds its arrays alive. */
function runN(b: Bench, n: number): { ns: number; ck: number } {
  if (!b.batched || n <= BATCH) return b.run(n);
  let ns = 0;
  let ck = 0;
  for (let done = 0; done < n; done += BATCH) {
    const r = b.run(Math.min(BATCH, n - done));
    ns += r.ns;
    ck += r.ck;
  }
  return { ns, ck };
}

function runBench(b: Bench): Result {
  Bun.gc(true);
  const liveHandlesBefore = mx.getLiveHandleCount();
  const target = ROUND_MS * 1e6;
  const cap = 50_000_000;
  let checksum = 0;
  // Calibrate N so one round takes about ROUND_MS: grow N until a run takes an eighth of that,
  // then take the best of three runs' rates, so one preemption does not shrink N for good.
  let n = 16;
  for (;;) {
    const r = runN(b, n);
    checksum += r.ck;
    if (r.ns >= target / 8 || n >= cap) break;
    n *= 4;
  }
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    const r = runN(b, n);
    checksum += r.ck;
    best = Math.min(best, Math.max(r.ns, 1) / n);
  }
  n = Math.max(64, Math.min(cap, Math.ceil(target / best)));
  // Warm up.
  const w0 = now();
  while (now() - w0 < WARMUP_MS * 1e6) checksum += runN(b, n).ck;
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const res = runN(b, n);
    checksum += res.ck;
    rounds.push(res.ns / n);
  }
  const sorted = [...rounds].sort((x, y) => x - y);
  Bun.gc(true);
  return {
    id: b.id,
    group: b.group,
    label: b.label,
    peer: b.peer ?? null,
    peerNote: b.peerNote ?? null,
    n,
    rounds,
    median: quantile(sorted, 0.5),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    q1: quantile(sorted, 0.25),
    q3: quantile(sorted, 0.75),
    checksum,
    liveHandlesBefore,
    liveHandlesAfter: mx.getLiveHandleCount(),
  };
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function main(): void {
  const args = process.argv.slice(2);
  const json = args.includes("--json");
  const onlyAt = args.indexOf("--only");
  const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? "").split(",").filter(Boolean) : [];
  const selected = benches.filter((b) => only.length === 0 || only.some((o) => b.group === o || b.id === o || b.id.startsWith(o + ".")));
  const say = (s: string) => (json ? process.stderr.write(s + "\n") : process.stdout.write(s + "\n"));
  const results: Result[] = [];
  for (const b of selected) {
    const r = runBench(b);
    results.push(r);
    say(
      `${r.id.padEnd(40)} ${fmt(r.median).padStart(9)} ns/op  [${fmt(r.min)} .. ${fmt(r.max)}]  n=${r.n}` +
        (r.liveHandlesAfter !== r.liveHandlesBefore ? `  live handles ${r.liveHandlesBefore} -> ${r.liveHandlesAfter}` : ""),
    );
  }
  if (json) {
    const out = {
      runtime: "bun",
      bunVersion: Bun.version,
      bunRevision: Bun.revision,
      rounds: ROUNDS,
      roundMs: ROUND_MS,
      warmupMs: WARMUP_MS,
      batch: BATCH,
      results,
    };
    process.stdout.write(JSON.stringify(out, null, 1) + "\n");
  }
}

main();
