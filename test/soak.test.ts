// Soak (bounded, for CI): scripts/soak.ts, a training loop written as an MLX user writes it (no
// dispose, no tidy: an MLP trained with Adam through nn.valueAndGrad), run in a subprocess for
// MLXB_SOAK_STEPS steps (default 3,000), sampling resident memory, the engine's active memory and
// its live handles every 100 steps, and the same two after a full garbage collection ("gc").
//
// Leak test: what survives a full collection must not trend upward. Least-squares slope over
// the samples after a warm-up (the first 30% of the steps: the optimizer's state, first-use
// caches), of the collected active memory under 0.5 MiB per 1,000 steps (a leak of one 4 KiB
// gradient per step is 4 MiB per 1,000) and of the collected handle count under 5 per 1,000
// steps (one leaked array per step is 1,000). The natural (uncollected) readings are not a
// leak test over a short run: until the collector's first full collection, a few thousand steps
// in, they only rise (about 3 MiB of active memory per 1,000 steps), then fall back; they are
// checked for bounds (peak RSS, live handles) and RSS for a gross trend. The loss must go down.
// The full 100,000-step run is recorded in docs/RELIABILITY.md.
import { expect, test } from "bun:test";

const steps = Number(process.env.MLXB_SOAK_STEPS ?? 3000);

/** Least-squares slope of ys over xs. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

test("the soak's trend test: flat passes, a 4 KiB-per-step leak fails, noise around flat passes", () => {
  const xs = Array.from({ length: 7 }, (_, i) => 0.4 + i * 0.1); // steps 400..1000, in thousands
  expect(slope(xs, xs.map(() => 0.0872))).toBeCloseTo(0, 12);
  expect(slope(xs, xs.map((x) => 0.0872 + (4096 / 2 ** 20) * 1000 * x))).toBeCloseTo(3.90625, 6);
  expect(Math.abs(slope(xs, xs.map((_, i) => 0.0872 + (i % 2) * 0.01)))).toBeLessThan(0.5);
});

test(`soak: ${steps} training steps without disposal run in flat memory`, async () => {
  const proc = Bun.spawn([process.execPath, "scripts/soak.ts", String(steps), "100", "gc"], { cwd: `${import.meta.dir}/..`, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect(await proc.exited, err).toBe(0);
  const lines = out.trim().split("\n").map((l) => JSON.parse(l));
  const { summary } = lines[lines.length - 1];
  const samples = lines.slice(0, -1) as { step: number; rssMiB: number; activeMiB: number; handles: number; activeAfterGcMiB: number; handlesAfterGc: number }[];
  expect(samples.length).toBe(Math.ceil(steps / 100));
  expect(summary.steps).toBe(steps);
  expect(summary.lastLoss).toBeLessThan(summary.firstLoss / 10);

  const window = samples.filter((s) => s.step > 0.3 * steps);
  expect(window.length).toBeGreaterThanOrEqual(5);
  const xs = window.map((s) => s.step / 1000);
  const trend = {
    activeAfterGcSlopeMiBPer1k: slope(xs, window.map((s) => s.activeAfterGcMiB)),
    handlesAfterGcSlopePer1k: slope(xs, window.map((s) => s.handlesAfterGc)),
    rssSlopeMiBPer1k: slope(xs, window.map((s) => s.rssMiB)),
  };
  console.log(JSON.stringify({ ...summary, ...trend }));
  expect(trend.activeAfterGcSlopeMiBPer1k).toBeLessThan(0.5);
  expect(trend.handlesAfterGcSlopePer1k).toBeLessThan(5);
  expect(trend.rssSlopeMiBPer1k).toBeLessThan(10); // RSS is noisy over a short run (JIT, collector)
  expect(summary.peakRssMiB).toBeLessThan(400);
  // The collector keeps the live handles bounded (thousands, not steps x arrays per step).
  expect(Math.max(...samples.map((s) => s.handles))).toBeLessThan(20_000);
}, 300_000);
