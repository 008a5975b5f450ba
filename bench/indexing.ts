// Gather/scatter and slice-update throughput, for bench/run_indexing.sh. Prints one JSON line
// per benchmark: { side, name, bytes, ns: [rounds...] }; bench/indexing_peers.py runs the same
// cases through MLX Python. Inputs and indices are made (and evaluated) before the clock starts;
// indices come from a fixed linear congruential sequence both sides reproduce.
import * as mx from "../src/index.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 9);

/** n pseudo-random indices in [0, m): x -> (1103515245 x + 12345) mod 2^31, as in the peer script. */
export function lcg(n: number, m: number): Int32Array {
  const out = new Int32Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(1103515245, x) + 12345) & 0x7fffffff;
    out[i] = x % m;
  }
  return out;
}

/** n float32 values in [0, 1) from the same sequence. */
function uniform(n: number): mx.Array {
  return mx.array(Float32Array.from(lcg(n, 1 << 20), (v) => v / (1 << 20)));
}

type Case = { name: string; bytes: number; setup: () => mx.Array[]; run: (xs: mx.Array[]) => mx.Array };
const M = 1 << 20;
const cases: Case[] = [
  {
    // An embedding lookup: 4096 random rows of a 4096 x 256 float32 table.
    name: "take_rows",
    bytes: 2 * 4096 * 256 * 4,
    setup: () => [uniform(4096 * 256).reshape([4096, 256]), mx.array(lcg(4096, 4096))],
    run: ([t, i]) => mx.take(t!, i!, 0),
  },
  {
    name: "take_flat_1M",
    bytes: M * 12,
    setup: () => [uniform(M), mx.array(lcg(M, M))],
    run: ([t, i]) => mx.take(t!, i!),
  },
  {
    name: "take_along_axis_1M",
    bytes: M * 12,
    setup: () => [uniform(M).reshape([1024, 1024]), mx.array(lcg(M, 1024)).reshape([1024, 1024])],
    run: ([t, i]) => mx.takeAlongAxis(t!, i!, 1),
  },
  {
    name: "index_rows_cols",
    bytes: 2 * 1024 * 1024 * 4,
    setup: () => [uniform(4096 * 1024).reshape([4096, 1024]), mx.array(lcg(1024, 4096))],
    run: ([t, i]) => t!.index(i!, mx.sl()),
  },
  {
    // a.at[idx].add(u) with repeats: 1M random positions of a 1M vector.
    name: "scatter_add_1M",
    bytes: M * 16,
    setup: () => [mx.zeros([M]), mx.array(lcg(M, M)), uniform(M)],
    run: ([a, i, u]) => a!.at(i!).add(u!),
  },
  {
    name: "scatter_set_rows",
    bytes: 4096 * 256 * 8 + 1024 * 256 * 8,
    setup: () => [uniform(4096 * 256).reshape([4096, 256]), mx.array(lcg(1024, 4096)), uniform(1024 * 256).reshape([1024, 256])],
    run: ([a, i, u]) => a!.at(i!).set(u!),
  },
  {
    // A KV-cache style update: 1024 rows written into a 4096 x 1024 float32 array at a dynamic start.
    name: "slice_update",
    bytes: 4096 * 1024 * 8 + 1024 * 1024 * 8,
    setup: () => [uniform(4096 * 1024).reshape([4096, 1024]), uniform(1024 * 1024).reshape([1024, 1024]), mx.array([1024, 0])],
    run: ([a, u, s]) => mx.sliceUpdate(a!, u!, s!, [0, 1]),
  },
];

if (import.meta.main) {
  for (const c of cases) {
    const xs = c.setup();
    mx.eval(...xs);
    const ns: number[] = [];
    for (let r = 0; r < rounds + 2; r++) {
      const t0 = Bun.nanoseconds();
      const out = c.run(xs);
      mx.eval(out);
      const t = Bun.nanoseconds() - t0;
      out.dispose();
      if (r >= 2) ns.push(t);
    }
    for (const x of xs) x.dispose();
    console.log(JSON.stringify({ side: "mlx-bun", name: c.name, bytes: c.bytes, ns }));
  }
}
