// mx.metal as MLX behaves without the Metal backend (mlx-bun runs on the CPU).

/** Whether the Metal backend is available: false (mlx-bun has a CPU backend only). */
export function isAvailable(): boolean {
  return false;
}

/**
 * Metal device information: `{}` without Metal, as MLX (which deprecates this name for
 * `mx.deviceInfo`).
 */
export function deviceInfo(): Record<string, string | number> {
  return {};
}

/** Start a Metal capture into `path`: without Metal MLX does nothing, and neither does mlx-bun. */
export function startCapture(path: string): void {
  void path;
}

/** Stop a Metal capture: nothing to do without Metal, as in MLX. */
export function stopCapture(): void {}
