// mx.cuda as MLX behaves without the CUDA backend (mlx-bun runs on the CPU).

/** Whether the CUDA backend is available: false (mlx-bun has a CPU backend only). */
export function isAvailable(): boolean {
  return false;
}
