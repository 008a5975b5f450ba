// Whether a shapeless mx.compile is tracing. Ops whose result depends on their input's shape
// only through a number computed in JS (mean's 1/count, zerosLike's shape) build that number
// from the graph instead while this is on, so a shapeless replay on new shapes recomputes it
// (MLX does the same with nodes that read shapes at eval, e.g. NumberOfElements).

let shapelessDepth = 0;

/** True while a shapeless compile traces its function. */
export function inShapelessTrace(): boolean {
  return shapelessDepth > 0;
}

/** Run `fn` with the shapeless-trace flag on (when `on`). */
export function shapelessTrace<T>(on: boolean, fn: () => T): T {
  if (!on) return fn();
  shapelessDepth++;
  try {
    return fn();
  } finally {
    shapelessDepth--;
  }
}
