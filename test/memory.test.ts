// Memory: dispose, using, tidy (sync and async), keep, the GC backstop, the allocator's
// counters and limits, and the engine surviving bad handles.
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { expectMlxError } from "./util";
import { lib } from "../ffi/lib";

const MiB = 2 ** 20;


describe("dispose", () => {
  test("dispose releases the handle and the memory at once", () => {
    // Collect the garbage of earlier tests first: its finalizers would change the counts.
    Bun.gc(true);
    const h0 = mx.getLiveHandleCount();
    const m0 = mx.getActiveMemory();
    const a = mx.array(new Float32Array(1024));
    expect(mx.getLiveHandleCount()).toBe(h0 + 1);
    expect(mx.getActiveMemory()).toBeGreaterThanOrEqual(m0 + 4096);
    a.dispose();
    expect(a.disposed).toBe(true);
    expect(mx.getLiveHandleCount()).toBe(h0);
    expect(mx.getActiveMemory()).toBe(m0);
  });

  test("double dispose is harmless", () => {
    const a = mx.ones([3]);
    a.dispose();
    a.dispose();
    expect(a.disposed).toBe(true);
  });

  test("use after dispose throws a clear error naming the op", () => {
    const a = mx.ones([3]);
    a.dispose();
    expectMlxError(() => a.shape, /^\[shape\] The array was used after it was disposed\.$/);
    expectMlxError(() => a.astype(mx.int32), /^\[astype\] .*disposed/);
    expectMlxError(() => a.tolist(), /disposed/);
    expectMlxError(() => mx.eval(a), /^\[eval\] .*disposed/);
    const e = expectMlxError(() => mx.tril(a), /^\[tril\]/);
    expect(e.codeName).toBe("invalid_handle");
    expect(Bun.inspect(a)).toBe("array(<disposed>)");
  });

  test("using releases at the end of the block", () => {
    const h0 = mx.getLiveHandleCount();
    {
      using a = mx.zeros([16]);
      using b = a.astype(mx.int32);
      mx.eval(b);
      expect(mx.getLiveHandleCount()).toBe(h0 + 2);
    }
    expect(mx.getLiveHandleCount()).toBe(h0);
  });

  test("mx.dispose takes arrays inside objects and lists", () => {
    const h0 = mx.getLiveHandleCount();
    const tree = { w: mx.ones([2]), layers: [mx.zeros([3]), { b: mx.eye(2) }] };
    expect(mx.getLiveHandleCount()).toBe(h0 + 3);
    mx.dispose(tree);
    expect(mx.getLiveHandleCount()).toBe(h0);
  });

  test("an array stays computable after the arrays it was built from are disposed", () => {
    const a = mx.arange(6);
    const b = a.astype(mx.float32);
    a.dispose();
    expect(b.tolist()).toEqual([0, 1, 2, 3, 4, 5]);
    b.dispose();
  });
});

describe("tidy", () => {
  test("disposes temporaries and keeps the returned arrays", () => {
    const h0 = mx.getLiveHandleCount();
    const out = mx.tidy(() => {
      const a = mx.ones([4]);
      const b = a.astype(mx.int32);
      mx.eval(b);
      return { b, list: [mx.zeros([1])], n: 3 };
    });
    expect(out.n).toBe(3);
    expect(out.b.tolist()).toEqual([1, 1, 1, 1]);
    expect(mx.getLiveHandleCount()).toBe(h0 + 2);
    mx.dispose(out);
    expect(mx.getLiveHandleCount()).toBe(h0);
  });

  test("keep survives the scope; nested scopes hand results outwards", () => {
    const h0 = mx.getLiveHandleCount();
    let kept: mx.Array | undefined;
    const outer = mx.tidy(() => {
      const inner = mx.tidy(() => {
        kept = mx.keep(mx.full([2], 5));
        mx.ones([9]); // temporary
        return mx.zeros([2]);
      });
      expect(inner.disposed).toBe(false);
      return 42;
    });
    expect(outer).toBe(42);
    // inner's result was adopted by the outer scope and disposed with it; kept survives.
    expect(kept!.disposed).toBe(false);
    expect(mx.getLiveHandleCount()).toBe(h0 + 1);
    kept!.dispose();
  });

  test("a throwing function disposes everything it created and rethrows", () => {
    const h0 = mx.getLiveHandleCount();
    expect(() =>
      mx.tidy(() => {
        mx.ones([3]);
        mx.arange(10);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(mx.getLiveHandleCount()).toBe(h0);
  });

  test("async functions: the scope follows awaits", async () => {
    const h0 = mx.getLiveHandleCount();
    const r = await mx.tidy(async () => {
      const a = mx.ones([4]);
      await Bun.sleep(1);
      const b = mx.zeros([4]); // created after an await: still in the scope
      await mx.asyncEval(a, b);
      return mx.full([1], 2);
    });
    expect(r.tolist()).toEqual([2]);
    expect(mx.getLiveHandleCount()).toBe(h0 + 1);
    r.dispose();
  });

  test("async functions that reject dispose and propagate", async () => {
    const h0 = mx.getLiveHandleCount();
    await expect(
      mx.tidy(async () => {
        mx.ones([4]);
        await Bun.sleep(1);
        mx.ones([5]);
        throw new Error("late");
      }),
    ).rejects.toThrow("late");
    expect(mx.getLiveHandleCount()).toBe(h0);
  });
});

describe("allocator and memory API", () => {
  test("active, peak, cache and their resets", () => {
    mx.clearCache();
    expect(mx.getCacheMemory()).toBe(0);
    mx.resetPeakMemory();
    const m0 = mx.getActiveMemory();
    const a = mx.array(new Float32Array(MiB / 4));
    expect(mx.getActiveMemory()).toBeGreaterThanOrEqual(m0 + MiB);
    expect(mx.getPeakMemory()).toBeGreaterThanOrEqual(m0 + MiB);
    a.dispose();
    expect(mx.getActiveMemory()).toBe(m0);
    expect(mx.getCacheMemory()).toBeGreaterThanOrEqual(MiB); // kept for reuse
    expect(mx.getPeakMemory()).toBeGreaterThanOrEqual(m0 + MiB);
    mx.resetPeakMemory();
    expect(mx.getPeakMemory()).toBe(m0);
    mx.clearCache();
    expect(mx.getCacheMemory()).toBe(0);
  });

  test("cache limit 0 disables the cache; setters return the previous value", () => {
    const old = mx.setCacheLimit(0);
    expect(old).toBeGreaterThan(0);
    const a = mx.array(new Float32Array(1024));
    a.dispose();
    expect(mx.getCacheMemory()).toBe(0);
    expect(mx.setCacheLimit(old)).toBe(0);
  });

  test("an allocation past the memory limit fails at eval with a clear error; the engine stays usable", () => {
    const limit = mx.getMemoryLimit();
    expect(limit).toBeGreaterThan(0);
    const big = mx.arange(0, 64 * MiB, 1, mx.float32); // 256 MiB when evaluated
    expect(mx.setMemoryLimit(mx.getActiveMemory() + 16 * MiB)).toBe(limit);
    const e = expectMlxError(() => mx.eval(big), /^\[arange\] Out of memory: allocating \d+ bytes would exceed the memory limit/);
    expect(e.codeName).toBe("out_of_memory");
    expect(big.evaluated).toBe(false);
    // Small work still runs under the limit.
    expect(mx.arange(4).tolist()).toEqual([0, 1, 2, 3]);
    mx.setMemoryLimit(limit);
    // The failed array is intact and computes once memory allows.
    expect(big.evaluated).toBe(false);
    mx.eval(big);
    expect(big.evaluated).toBe(true);
    big.dispose();
  });

  test("a kernel's temporary copy (quantize of a transposed W) counts toward peak and limit, and is cached", () => {
    const w = mx.random.normal([512, 1024], { key: mx.random.key(3) });
    const wt = mx.transpose(w); // not row-contiguous: quantize reads a float32 copy (2 MiB)
    mx.eval(w);
    const want = mx.quantize(mx.contiguous(wt), { groupSize: 64, bits: 4 });
    mx.eval(want);
    mx.clearCache();
    mx.resetPeakMemory();
    const m0 = mx.getActiveMemory();
    const got = mx.quantize(wt, { groupSize: 64, bits: 4 });
    mx.eval(got);
    const outputs = got.reduce((s, a) => s + a.nbytes, 0);
    expect(mx.getPeakMemory()).toBeGreaterThanOrEqual(m0 + outputs + 2 * MiB);
    expect(mx.getActiveMemory()).toBeLessThan(m0 + outputs + 2 * MiB); // the copy is released
    expect(mx.getCacheMemory()).toBeGreaterThanOrEqual(2 * MiB); // and kept for the next call
    for (let i = 0; i < got.length; i++) expect(mx.arrayEqual(got[i]!, want[i]!).item()).toBe(true);
    // Under a limit that leaves room for the outputs but not the copy: a clear error naming the op.
    const limit = mx.getMemoryLimit();
    mx.clearCache();
    mx.setMemoryLimit(mx.getActiveMemory() + outputs + MiB);
    try {
      expectMlxError(() => mx.eval(mx.quantize(wt, { groupSize: 64, bits: 4 })), /^\[quantize\] Out of memory: allocating \d+ bytes would exceed the memory limit/);
    } finally {
      mx.setMemoryLimit(limit);
    }
    mx.dispose([w, want, got]);
  });

  test("absurd sizes fail cleanly", () => {
    expectMlxError(() => mx.zeros([2 ** 30, 2 ** 30, 2 ** 30]), /^\[full\] Shape \(1073741824,1073741824,1073741824\) is too large/);
    // 128 GiB: fits the shape rules, not the memory limit (0.8 x RAM by default).
    const huge = mx.zeros([2 ** 31 - 1, 8], mx.float64).astype(mx.int64);
    expectMlxError(() => mx.eval(huge), /^\[astype\] Out of memory/);
    expect(huge.evaluated).toBe(false);
    huge.dispose();
    expectMlxError(() => mx.setMemoryLimit(-1), /^\[set_memory_limit\]/);
    expectMlxError(() => mx.setCacheLimit(Number.NaN), /^\[set_cache_limit\]/);
  });
});

describe("engine handles through the C ABI", () => {
  test("stale, freed, foreign and null handles give errors, never a crash", () => {
    const h = lib.mlxb_arange(0, 4, 1, mx.float32.value, -1);
    expect(h).toBeGreaterThan(0);
    expect(lib.mlxb_array_free(h)).toBe(0);
    // freed: every use is an error with a message
    expect(lib.mlxb_array_ndim(h)).toBeLessThan(0);
    expect(String(lib.mlxb_last_error_message())).toMatch(/^\[ndim\] Invalid array handle \d+: the array was already freed\.$/);
    expect(lib.mlxb_array_free(h)).toBeLessThan(0); // double free
    expect(lib.mlxb_last_error_code()).toBe(2);
    expect(lib.mlxb_astype(h, mx.int32.value, -1)).toBe(0);
    expect(String(lib.mlxb_last_error_message())).toMatch(/^\[astype\]/);
    // never issued
    expect(lib.mlxb_array_dtype(0x7fff_fff0)).toBeLessThan(0);
    expect(String(lib.mlxb_last_error_message())).toMatch(/never issued/);
    expect(lib.mlxb_array_dtype(0)).toBeLessThan(0);
    expect(String(lib.mlxb_last_error_message())).toMatch(/null handle/);
    // a handle list with a bad entry fails the whole eval
    expect(lib.mlxb_eval(new Uint32Array([h]), 1)).toBeLessThan(0);
    lib.mlxb_clear_error();
    expect(lib.mlxb_last_error_code()).toBe(0);
  });

  test("a slot freed and reused does not revive an old handle", () => {
    const first = lib.mlxb_arange(0, 1, 1, mx.int32.value, -1);
    lib.mlxb_array_free(first);
    const seen: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const h = lib.mlxb_arange(0, 1, 1, mx.int32.value, -1);
      seen.push(h);
      lib.mlxb_array_free(h);
    }
    expect(seen).not.toContain(first);
    expect(lib.mlxb_array_ndim(first)).toBeLessThan(0);
  });
});

describe("the GC backstop", () => {
  async function churn(mode: string, n: number) {
    const proc = Bun.spawn([process.execPath, "test/programs/churn.ts", mode, String(n)], { stdout: "pipe", stderr: "inherit" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    return JSON.parse(out.trim()) as {
      check: number;
      peakRssMiB: number;
      start: { handles: number; active: number };
      end: { handles: number; active: number };
      peakActiveMiB: number;
    };
  }

  test("200,000 arrays of 1 MiB without disposal run in bounded memory; with using, counts return to start", async () => {
    const n = 200_000;
    const [none, using] = await Promise.all([churn("none", n), churn("using", n)]);
    // 195 GiB pass through the engine: the collector must be freeing them as it goes.
    expect(none.check).toBe(n * 262_144);
    expect(none.peakRssMiB).toBeGreaterThan(0);
    expect(none.peakRssMiB).toBeLessThan(512);
    expect(none.peakActiveMiB).toBeLessThan(256);
    expect(using.end).toEqual(using.start);
    expect(using.peakRssMiB).toBeLessThan(512);
    expect(using.peakActiveMiB).toBeLessThanOrEqual(2);
  }, 120_000);

  test("arrays that leave a tidy scope (returned or kept) come under the GC backstop", async () => {
    const h0 = mx.getLiveHandleCount();
    (() => {
      for (let i = 0; i < 200; i++) {
        mx.tidy(() => {
          mx.keep(mx.ones([4]));
          return mx.tidy(() => [mx.zeros([2]), mx.arange(3)]);
        });
      }
    })();
    expect(mx.getLiveHandleCount()).toBe(h0 + 600);
    for (let i = 0; i < 10 && mx.getLiveHandleCount() > h0 + 10; i++) {
      Bun.gc(true);
      await Bun.sleep(1);
    }
    expect(mx.getLiveHandleCount()).toBeLessThanOrEqual(h0 + 10);
  });

  test("arrays dropped without dispose are released when collected", async () => {
    const h0 = mx.getLiveHandleCount();
    (() => {
      for (let i = 0; i < 1000; i++) mx.ones([8]);
    })();
    expect(mx.getLiveHandleCount()).toBeGreaterThan(h0);
    for (let i = 0; i < 10 && mx.getLiveHandleCount() > h0 + 10; i++) {
      Bun.gc(true);
      await Bun.sleep(1);
    }
    expect(mx.getLiveHandleCount()).toBeLessThanOrEqual(h0 + 10);
  });
});
