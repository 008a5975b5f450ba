// The examples run as subprocesses (as a user runs them) and do what they claim:
// - linear_regression (1,000 steps): the final loss and |w - w*| are MLX Python's for the same
//   seed and steps (MLX 0.32.4: loss 1.4504489e-4, |w - w*| = 1.9673999e-2);
// - mnist (the full default run: ~16 s on a quiet 2-core machine here): >= 95% accuracy on the
//   2,004 held-out digits (timeouts are generous: the machine is shared);
// - transformer_lm (60 steps): the held-out loss falls well below its initial ln(vocabulary);
// - each with --compile (the training step under mx.compile, state captured as inputs and
//   outputs): a few steps give the losses of the uncompiled run.
import { describe, expect, test } from "bun:test";

const root = new URL("..", import.meta.url).pathname;

function run(script: string, args: string[]): string {
  const p = Bun.spawnSync([process.execPath, `examples/${script}`, ...args], { cwd: root, stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString();
  if (p.exitCode !== 0) throw new Error(`${script} exited ${p.exitCode}:\n${out}\n${p.stderr.toString()}`);
  return out;
}

describe("examples", () => {
  test("linear_regression matches MLX Python", () => {
    const out = run("linear_regression.ts", ["--iters", "1000"]);
    const m = /Loss ([\d.e+-]+), L2 distance: \|w-w\*\| = ([\d.e+-]+)/.exec(out);
    expect(m).not.toBeNull();
    expect(Math.abs(Number(m![1]) - 1.4504489e-4)).toBeLessThan(1e-5);
    expect(Math.abs(Number(m![2]) - 1.9673999e-2) / 1.9673999e-2).toBeLessThan(1e-3);
  }, 120_000);

  test("mnist: >= 95% test accuracy with the default run", () => {
    const out = run("mnist.ts", []);
    const epochs = [...out.matchAll(/epoch (\d+): train loss ([\d.]+)/g)].map((x) => Number(x[2]));
    expect(epochs.length).toBe(10);
    expect(epochs.at(-1)!).toBeLessThan(epochs[0]!);
    const acc = /Test accuracy: ([\d.]+)%/.exec(out);
    expect(acc).not.toBeNull();
    expect(Number(acc![1])).toBeGreaterThanOrEqual(95);
    // The progress bar is a \r line on stdout.
    expect(out).toContain("\repoch 1/10 [");
  }, 600_000);

  test("transformer_lm: held-out loss falls", () => {
    const out = run("transformer_lm.ts", ["--steps", "60", "--eval-every", "30"]);
    const held = [...out.matchAll(/held-out loss ([\d.]+)/g)].map((x) => Number(x[1]));
    expect(held.length).toBe(3);
    const vocab = Number(/vocabulary (\d+)/.exec(out)![1]);
    expect(Math.abs(held[0]! - Math.log(vocab))).toBeLessThan(0.3); // an untrained model is near uniform
    expect(held[2]!).toBeLessThan(held[0]! - 1.0);
    expect(held[2]!).toBeLessThan(3.2);
    expect(out).toContain("sample: ");
  }, 600_000);
});

describe("examples with --compile: the losses of the uncompiled run", () => {
  const close = (a: number[], b: number[], rtol: number) => {
    expect(a.length).toBe(b.length);
    expect(a.length).toBeGreaterThan(0);
    a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(rtol * Math.abs(b[i]!)));
  };

  test("linear_regression --compile", () => {
    const nums = (out: string) => [.../Loss ([\d.e+-]+), L2 distance: \|w-w\*\| = ([\d.e+-]+)/.exec(out)!.slice(1)].map(Number);
    const plain = run("linear_regression.ts", ["--iters", "200"]);
    const compiled = run("linear_regression.ts", ["--iters", "200", "--compile"]);
    expect(compiled).toContain("(compiled step)");
    close(nums(compiled), nums(plain), 1e-4);
  }, 120_000);

  test("mnist --compile (2 short epochs: the optimizer state appears after the first step)", () => {
    const nums = (out: string) => [...out.matchAll(/epoch \d+: train loss ([\d.]+), test accuracy ([\d.]+)%/g)].flatMap((m) => [Number(m[1]), Number(m[2])]);
    const args = ["--epochs", "2", "--steps", "15"];
    const plain = run("mnist.ts", args);
    const compiled = run("mnist.ts", [...args, "--compile"]);
    expect(compiled).toContain("compiled step");
    close(nums(compiled), nums(plain), 2e-3);
  }, 300_000);

  test("transformer_lm --compile", () => {
    const nums = (out: string) => [...out.matchAll(/loss ([\d.]+)/g)].map((m) => Number(m[1]));
    const args = ["--steps", "4", "--eval-every", "2"];
    const plain = run("transformer_lm.ts", args);
    const compiled = run("transformer_lm.ts", [...args, "--compile"]);
    expect(compiled).toContain("compiled step");
    close(nums(compiled), nums(plain), 2e-3);
  }, 300_000);
});
