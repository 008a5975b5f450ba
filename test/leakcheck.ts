// Preloaded by scripts/test_sanitized.sh (bun test --preload): after a file's tests, collect the
// garbage (the GC backstop releases every array JS no longer references) and ask the engine for
// its leak report. A live node no handle reaches, or allocated bytes no reachable buffer owns,
// is a leak and fails the run. Prints the report as "leakcheck: {...}".
import { afterAll } from "bun:test";
import { lib } from "../ffi/lib";

afterAll(async () => {
  for (let i = 0; i < 6; i++) {
    Bun.gc(true);
    await Bun.sleep(5);
  }
  lib.mlxb_clear_cache();
  const report = JSON.parse(String(lib.mlxb_debug_leak_report())) as Record<string, number>;
  console.log(`leakcheck: ${JSON.stringify(report)}`);
  if (report.leaked_nodes! > 0) throw new Error(`leakcheck: ${report.leaked_nodes} graph nodes are alive but unreachable from any handle`);
  // Bytes held only by the host (TypedArray views still referenced, DLPack capsules) are not leaks
  // of the engine; with none of those, every byte must belong to a reachable buffer.
  if (report.unaccounted_bytes! > 0 && Number(lib.mlxb_dlpack_live_exports()) === 0 && process.env.MLXB_LEAKCHECK_STRICT)
    throw new Error(`leakcheck: ${report.unaccounted_bytes} allocated bytes belong to no reachable array`);
});
