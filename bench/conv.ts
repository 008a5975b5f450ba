// Convolution throughput, for bench/run_conv.sh. Prints one JSON line per case:
// { side, name, flops, ns: [rounds...] }; bench/conv_peers.py runs the same cases through MLX
// Python and PyTorch (CPU). float32, channels last (MLX's layout); inputs made and evaluated
// before the clock starts; two warm-up rounds are dropped.
import * as mx from "../src/index.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 31);

export interface ConvCase {
  name: string;
  /** input [N, H, W, C] (or [N, L, C] for 1-D), weight [O, KH, KW, C] */
  x: number[];
  w: number[];
  stride: number;
  padding: number;
  /** also time the vjp (input and weight gradients) */
  grad?: boolean;
}

export const cases: ConvCase[] = [
  { name: "conv2d_56x56x64_to64_3x3", x: [4, 56, 56, 64], w: [64, 3, 3, 64], stride: 1, padding: 1 },
  { name: "conv2d_28x28x128_to128_3x3", x: [4, 28, 28, 128], w: [128, 3, 3, 128], stride: 1, padding: 1 },
  { name: "conv2d_14x14x256_to256_3x3", x: [4, 14, 14, 256], w: [256, 3, 3, 256], stride: 1, padding: 1 },
  { name: "conv2d_56x56x64_to256_1x1", x: [4, 56, 56, 64], w: [256, 1, 1, 64], stride: 1, padding: 0 },
  { name: "conv2d_28x28x512_to128_1x1", x: [4, 28, 28, 512], w: [128, 1, 1, 512], stride: 1, padding: 0 },
  { name: "conv2d_stem_224x224x3_to64_7x7_s2", x: [4, 224, 224, 3], w: [64, 7, 7, 3], stride: 2, padding: 3 },
  { name: "conv1d_1024x128_to128_k3", x: [4, 1024, 128], w: [128, 3, 128], stride: 1, padding: 1 },
  { name: "conv2d_28x28x128_to128_3x3_vjp", x: [4, 28, 28, 128], w: [128, 3, 3, 128], stride: 1, padding: 1, grad: true },
];

/** Multiply-adds x 2 of the forward convolution (x3 with the vjp: input and weight gradients). */
export function flops(c: ConvCase): number {
  const sp = c.x.slice(1, -1);
  const k = c.w.slice(1, -1);
  let out = c.x[0]! * c.w[0]!;
  let taps = c.x[c.x.length - 1]!;
  sp.forEach((l, i) => {
    out *= Math.floor((l + 2 * c.padding - k[i]!) / c.stride) + 1;
    taps *= k[i]!;
  });
  return 2 * out * taps * (c.grad ? 3 : 1);
}

function conv(c: ConvCase, x: mx.Array, w: mx.Array): mx.Array {
  return c.x.length === 3 ? mx.conv1d(x, w, { stride: c.stride, padding: c.padding }) : mx.conv2d(x, w, { stride: c.stride, padding: c.padding });
}

if (import.meta.main) {
  const key = mx.random.key(0);
  for (const c of cases) {
    const x = mx.random.normal(c.x, { key });
    const w = mx.random.normal(c.w, { key }).multiply(0.05);
    mx.eval(x, w);
    const ct = conv(c, x, w);
    mx.eval(ct);
    const ns: number[] = [];
    for (let r = 0; r < rounds + 2; r++) {
      const t0 = Bun.nanoseconds();
      let outs: mx.Array[];
      if (c.grad) {
        outs = mx.vjp((a: mx.Array, b: mx.Array) => conv(c, a, b), [x, w], [ct])[1];
      } else outs = [conv(c, x, w)];
      mx.eval(...outs);
      const t = Bun.nanoseconds() - t0;
      for (const o of outs) o.dispose();
      if (r >= 2) ns.push(t);
    }
    x.dispose();
    w.dispose();
    ct.dispose();
    console.log(JSON.stringify({ side: "mlx-bun", name: c.name, flops: flops(c), ns }));
  }
}
