// Arrays print as MLX prints them, through toString, template strings, console.log and Bun.inspect.
import { expect, test } from "bun:test";
import * as mx from "../src/index.ts";

test("printing matches MLX's repr everywhere", () => {
  // Expected strings are MLX 0.32.4's repr of the same arrays (see test/fixtures/print for the full set).
  const cases: [mx.Array, string][] = [
    [mx.array([1, 2, 3]), "array([1, 2, 3], dtype=int32)"],
    [mx.array(1.5), "array(1.5, dtype=float32)"],
    [mx.arange(10), "array([0, 1, 2, ..., 7, 8, 9], dtype=int32)"],
    [mx.array([[1, 2], [3, 4]]), "array([[1, 2],\n       [3, 4]], dtype=int32)"],
    [mx.ones([2, 3], mx.bool), "array([[True, True, True],\n       [True, True, True]], dtype=bool)"],
    [mx.zeros([2, 0]), "array([[],\n       []], dtype=float32)"],
    [mx.array([{ re: 1, im: 2 }]), "array([1+2j], dtype=complex64)"],
    [mx.array([0.1, 1.5, -2.25]).astype(mx.bfloat16), "array([0.100098, 1.5, -2.25], dtype=bfloat16)"],
  ];
  for (const [a, want] of cases) {
    expect(a.toString()).toBe(want);
    expect(`${a}`).toBe(want);
    expect(Bun.inspect(a)).toBe(want);
  }
  expect(mx.float32.toString()).toBe("mlx.core.float32");
  expect(Bun.inspect(mx.int8)).toBe("mlx.core.int8");
});

test("console.log prints the repr", async () => {
  const p = Bun.spawn([process.execPath, "-e", `import * as mx from "${import.meta.dir}/../src/index.ts"; console.log(mx.eye(2, null, 0, mx.int32)); console.log([mx.array(3)]);`], { stdout: "pipe" });
  const out = await new Response(p.stdout).text();
  expect(await p.exited).toBe(0);
  // Top level: exactly the repr. Nested: Bun lays out the list, each array shows its repr.
  expect(out.startsWith("array([[1, 0],\n       [0, 1]], dtype=int32)\n")).toBe(true);
  expect(out.slice(out.indexOf("\n", 40)).replace(/\s+/g, " ").trim()).toBe("[ array(3, dtype=int32) ]");
});

test("print options: precision as mx.set_printoptions", () => {
  const a = mx.array([1, 2.5, 1 / 3]);
  expect(mx.printoptions({ precision: 2 }, () => `${a}`)).toBe("array([1.00, 2.50, 0.33], dtype=float32)");
  expect(`${a}`).toBe("array([1, 2.5, 0.333333], dtype=float32)");
  mx.setPrintoptions({ precision: 3 });
  expect(mx.getPrintoptions()).toEqual({ precision: 3 });
  expect(`${a}`).toBe("array([1.000, 2.500, 0.333], dtype=float32)");
  mx.setPrintoptions({ precision: undefined });
  expect(`${a}`).toBe("array([1, 2.5, 0.333333], dtype=float32)");
});
