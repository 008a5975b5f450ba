// Kernel timings for the portable-vs-native comparison (bench/run_dispatch.sh): which kernels lose
// when the engine is built for the baseline x86-64, and what the run-time CPU dispatch wins back.
// Prints one JSON line per case: { name, ns } with ns the median of the rounds. The library is the
// one MLX_BUN_LIB points at; MLXB_CPU_LEVEL caps the dispatched level of a portable build.
import * as mx from "../src/index.ts";

const only = process.env.BENCH_ONLY?.split(",");
const targetMs = Number(process.env.BENCH_CASE_MS ?? 400);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function bench(name: string, make: () => mx.Array[], run: (xs: mx.Array[]) => mx.Array): void {
  if (only && !only.some((o) => name.startsWith(o))) return;
  const xs = make();
  mx.eval(...xs);
  const once = () => {
    const t0 = Bun.nanoseconds();
    const out = run(xs);
    mx.eval(out);
    const t = Bun.nanoseconds() - t0;
    out.dispose();
    return t;
  };
  once();
  const first = once();
  const rounds = Math.max(5, Math.min(200, Math.round((targetMs * 1e6) / Math.max(first, 1))));
  const ns = Array.from({ length: rounds }, once);
  console.log(JSON.stringify({ name, ns: median(ns) }));
  for (const x of xs) x.dispose();
}

const N = 4 * 1024 * 1024;
const key = mx.random.key(3);
const [k1, k2] = mx.random.split(key);
const normal = (shape: number[], k: mx.Array = k1!) => mx.random.normal(shape, { key: k });

bench("exp f32 4M", () => [normal([N])], ([a]) => mx.exp(a!));
bench("add f32 4M", () => [normal([N]), normal([N], k2)], ([a, b]) => mx.add(a!, b!));
bench("multiply f32 4M", () => [normal([N]), normal([N], k2)], ([a, b]) => mx.multiply(a!, b!));
bench("tanh f32 4M", () => [normal([N])], ([a]) => mx.tanh(a!));
bench("add f16 4M", () => [normal([N]).astype(mx.float16), normal([N], k2).astype(mx.float16)], ([a, b]) => mx.add(a!, b!));
bench("sum f32 4M", () => [normal([N])], ([a]) => mx.sum(a!));
bench("sum rows f32 2048x2048", () => [normal([2048, 2048])], ([a]) => mx.sum(a!, -1));
// In-cache sizes (64K elements: 256 KiB), where the vector width shows rather than memory speed.
const M = 64 * 1024;
bench("add f32 64K", () => [normal([M]), normal([M], k2)], ([a, b]) => mx.add(a!, b!));
bench("exp f32 64K", () => [normal([M])], ([a]) => mx.exp(a!));
bench("greater f32 64K", () => [normal([M]), normal([M], k2)], ([a, b]) => mx.greater(a!, b!));
bench("where f32 64K", () => [normal([M]).greater(0), normal([M]), normal([M], k2)], ([c, a, b]) => mx.where(c!, a!, b!));
bench("sum f32 64K", () => [normal([M])], ([a]) => mx.sum(a!));
bench("max f32 64K", () => [normal([M])], ([a]) => mx.max(a!));
bench("sum f16 rows 256x256", () => [normal([256, 256]).astype(mx.float16)], ([a]) => mx.sum(a!, -1));
bench("argmax f32 rows 256x256", () => [normal([256, 256])], ([a]) => mx.argmax(a!, -1));
bench("logsumexp f32 rows 1024x1024", () => [normal([1024, 1024])], ([a]) => mx.logsumexp(a!, -1));
// Fused programs: mx.compile turns each chain into one fused kernel.
const gelu = mx.compile((x: mx.Array) => mx.multiply(mx.multiply(x, 0.5), mx.add(mx.erf(mx.divide(x, Math.SQRT2)), 1)));
const silu = mx.compile((x: mx.Array) => mx.multiply(x, mx.sigmoid(x)));
const expTanh = mx.compile((x: mx.Array, y: mx.Array) => mx.add(mx.multiply(mx.exp(x), y), mx.tanh(y)));
bench("fused gelu f32 4M", () => [normal([N])], ([a]) => gelu(a!) as mx.Array);
bench("fused silu f16 4M", () => [normal([N]).astype(mx.float16)], ([a]) => silu(a!) as mx.Array);
bench("fused exp-tanh f32 64K", () => [normal([M]), normal([M], k2)], ([a, b]) => expTanh(a!, b!) as mx.Array);
bench("sort f32 256K", () => [normal([256 * 1024])], ([a]) => mx.sort(a!));
bench("fft c64 1M", () => [normal([1024 * 1024]).astype(mx.complex64)], ([a]) => mx.fft.fft(a!));
bench("rfft f32 1M", () => [normal([1024 * 1024])], ([a]) => mx.fft.rfft(a!));
bench("fft2 c64 512x512", () => [normal([512, 512]).astype(mx.complex64)], ([a]) => mx.fft.fft2(a!));
// Quantization ops outside the matmul (the 4-bit affine format of a 4096 x 4096 weight).
const W = 4096;
const quantized = (dt: mx.Dtype) => () => {
  const [wq, s, b] = mx.quantize(normal([W, W]).astype(dt), { groupSize: 64, bits: 4 });
  return [wq!, s!, b!];
};
bench("quantize 4-bit f32 4096x4096", () => [normal([W, W])], ([w]) => mx.quantize(w!, { groupSize: 64, bits: 4 })[0]!);
bench("dequantize 4-bit f32 4096x4096", quantized(mx.float32), ([wq, s, b]) => mx.dequantize(wq!, s!, b!, { groupSize: 64, bits: 4 }));
bench("dequantize 4-bit bf16 4096x4096", quantized(mx.bfloat16), ([wq, s, b]) => mx.dequantize(wq!, s!, b!, { groupSize: 64, bits: 4 }));
bench("dequantize mxfp4 f32 4096x4096", () => {
  const [wq, s] = mx.quantize(normal([W, W]), { groupSize: 32, bits: 4, mode: "mxfp4" });
  return [wq!, s!];
}, ([wq, s]) => mx.dequantize(wq!, s!, null, { groupSize: 32, bits: 4, mode: "mxfp4" }));
bench("astype f32->f16 4M", () => [normal([N])], ([a]) => a!.astype(mx.float16));
bench("astype bf16->f32 4M", () => [normal([N]).astype(mx.bfloat16)], ([a]) => a!.astype(mx.float32));
bench("conv2d f32 8x64x64x64 k3", () => [normal([8, 64, 64, 64]), normal([64, 3, 3, 64], k2)], ([x, w]) => mx.conv2d(x!, w!, { padding: 1 }));
for (const n of [128, 256, 512, 1024]) {
  bench(`matmul f32 ${n}`, () => [normal([n, n]), normal([n, n], k2)], ([a, b]) => mx.matmul(a!, b!));
}
bench("matmul f32 1x4096x4096 (gemv)", () => [normal([1, 4096]), normal([4096, 4096], k2)], ([a, b]) => mx.matmul(a!, b!));
bench("matmul bf16 1024", () => [normal([1024, 1024]).astype(mx.bfloat16), normal([1024, 1024], k2).astype(mx.bfloat16)], ([a, b]) => mx.matmul(a!, b!));
bench("matmul f16 512", () => [normal([512, 512]).astype(mx.float16), normal([512, 512], k2).astype(mx.float16)], ([a, b]) => mx.matmul(a!, b!));
bench("matmul f64 512", () => [normal([512, 512]).astype(mx.float64), normal([512, 512], k2).astype(mx.float64)], ([a, b]) => mx.matmul(a!, b!));
