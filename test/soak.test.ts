// Soak (bounded, for CI): scripts/soak.ts, a training loop written as an MLX user writes it (no
// dispose, no tidy: an MLP trained with Adam through nn.valueAndGrad), run in a subprocess for
// MLXB_SOAK_STEPS steps (default 3,000), sampling resident memory, the engine's active memory and
// its live handles every 100 steps. Memory must be flat: over the second half, the least-squares
// slope of active memory stays under 0.5 MiB per 1,000 steps (a leak of one 4 KiB gradient per
// step would be ~4 MiB per 1,000) and that of RSS under 10 MiB (noisy over a short run), peak RSS
// stays bounded, and the loss goes down. The full 100,000-step run is recorded in docs/RELIABILITY.md.
import { expect, test } from "bun:test";

const steps = Number(process.env.MLXB_SOAK_STEPS ?? 3000);

test(`soak: ${steps} training steps without disposal run in flat memory`, async () => {
  const proc = Bun.spawn([process.execPath, "scripts/soak.ts", String(steps), "100"], { cwd: `${import.meta.dir}/..`, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect(await proc.exited, err).toBe(0);
  const lines = out.trim().split("\n").map((l) => JSON.parse(l));
  const { summary } = lines[lines.length - 1];
  const samples = lines.slice(0, -1) as { step: number; rssMiB: number; activeMiB: number; handles: number }[];
  console.log(JSON.stringify(summary));
  expect(samples.length).toBe(Math.ceil(steps / 100));
  expect(summary.steps).toBe(steps);
  expect(summary.lastLoss).toBeLessThan(summary.firstLoss / 10);
  expect(summary.rssSlopeMiBPer1k).toBeLessThan(10); // RSS is noisy over a short run (JIT, collector)
  expect(summary.activeSlopeMiBPer1k).toBeLessThan(0.5);
  expect(summary.peakRssMiB).toBeLessThan(400);
  // The collector keeps the live handles bounded (thousands, not steps x arrays per step).
  expect(Math.max(...samples.map((s) => s.handles))).toBeLessThan(20_000);
}, 300_000);
