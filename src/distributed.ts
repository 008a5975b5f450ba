// mx.distributed as MLX behaves in one process without a distributed backend: mlx-bun has none,
// so `init()` gives the singleton group (rank 0 of 1), on which the collectives are the identity
// and point-to-point communication fails with MLX's errors.
import { array, MxArray, type ArrayInput } from "./array";
import type { StreamOrDevice } from "./device";
import type { DtypeLike } from "./dtype";
import { MlxError } from "./errors";

/** The backends MLX knows ("any" tries them all). */
export type DistributedBackend = "any" | "mpi" | "ring" | "nccl" | "jaccl";
const BACKENDS: readonly string[] = ["any", "mpi", "ring", "nccl", "jaccl"];

function checkBackend(backend: string): void {
  if (!BACKENDS.includes(backend)) {
    throw new MlxError(
      `[distributed] The only valid values for backend are 'any', 'mpi', 'nccl', 'jaccl' and 'ring' but '${backend}' was provided.`,
      1,
    );
  }
}

/**
 * A group of processes that communicate (MLX's `mx.distributed.Group`). Without a distributed
 * backend the only group is the singleton: `rank()` 0, `size()` 1.
 */
export class Group {
  /** @internal Use `mx.distributed.init()`. */
  constructor() {}
  /** This process's rank in the group. */
  rank(): number {
    return 0;
  }
  /** The number of processes in the group. */
  size(): number {
    return 1;
  }
  /** Split into subgroups by `color` (ordered by `key`); a singleton group cannot be split, as in MLX. */
  split(color: number, key = -1): Group {
    void color;
    void key;
    throw new MlxError("[distributed] Cannot split the distributed group further.", 1);
  }
  toString(): string {
    return "Group(rank=0, size=1)";
  }
}

const singleton = new Group();

/**
 * Whether a distributed backend can be used (`backend` one of MLX's names; default "any").
 * mlx-bun has none: false.
 */
export function isAvailable(backend: DistributedBackend | string = "any"): boolean {
  void backend;
  return false;
}

/** Options of `mx.distributed.init`. */
export interface InitOptions {
  /** Fail when no backend can be initialized (default false: return the singleton group). */
  strict?: boolean;
  /** The backend to initialize (default "any"). */
  backend?: DistributedBackend;
}

/**
 * The global group, as MLX's `mx.distributed.init`. Without a backend this is the singleton
 * group (rank 0, size 1), or, with `strict`, an error.
 * @example mx.distributed.init().size() // 1
 */
export function init(options: InitOptions = {}): Group {
  const backend = options.backend ?? "any";
  checkBackend(backend);
  if (options.strict === true) {
    throw new MlxError(
      backend === "any" ? "[distributed] Couldn't initialize any backend" : `[distributed] Cannot initialize the ${backend} backend: mlx-bun has no distributed backend.`,
      1,
    );
  }
  return singleton;
}

/** Options of the collectives. */
export interface CollectiveOptions {
  /** The group (default: the global group). */
  group?: Group;
  stream?: StreamOrDevice;
}

function identity(x: MxArray | ArrayInput, options: CollectiveOptions | undefined, op: string): MxArray {
  if (options?.group !== undefined && !(options.group instanceof Group)) throw new MlxError(`[${op}] group must be an mx.distributed.Group.`, 1);
  // Only a subclass of Group can claim more than one process; without a backend nothing can
  // carry the data between them, so refuse rather than return a wrong (local) value.
  const n = (options?.group ?? singleton).size();
  if (n !== 1) throw new MlxError(`[${op}] mlx-bun has no distributed backend: a group of ${n} processes cannot communicate.`, 1);
  // One process: the result is x itself (a new handle to it, so either can be disposed).
  return array(x as ArrayInput);
}

/** The sum of x over the group's processes: x itself in a singleton group. */
export function allSum(x: MxArray | ArrayInput, options?: CollectiveOptions): MxArray {
  return identity(x, options, "all_sum");
}
/** The processes' x concatenated along the first axis: x itself in a singleton group. */
export function allGather(x: MxArray | ArrayInput, options?: CollectiveOptions): MxArray {
  return identity(x, options, "all_gather");
}
/** The elementwise maximum of x over the group: x itself in a singleton group. */
export function allMax(x: MxArray | ArrayInput, options?: CollectiveOptions): MxArray {
  return identity(x, options, "all_max");
}
/** The elementwise minimum of x over the group: x itself in a singleton group. */
export function allMin(x: MxArray | ArrayInput, options?: CollectiveOptions): MxArray {
  return identity(x, options, "all_min");
}
/** The sum over the group, scattered along the first axis: x itself in a singleton group. */
export function sumScatter(x: MxArray | ArrayInput, options?: CollectiveOptions): MxArray {
  return identity(x, options, "sum_scatter");
}

/** Send x to process `dst`: a singleton group has no other process (MLX's error). */
export function send(x: MxArray, dst: number, options?: CollectiveOptions): MxArray {
  void x;
  void dst;
  void options;
  throw new MlxError("[send] Cannot send to a singleton group", 1);
}

/** Receive an array of `shape` and `dtype` from process `src`: a singleton group has none (MLX's error). */
export function recv(shape: readonly number[], dtype: DtypeLike, src: number, options?: CollectiveOptions): MxArray {
  void shape;
  void dtype;
  void src;
  void options;
  throw new MlxError("[recv] Cannot recv from a singleton group", 1);
}

/** Receive an array like x from process `src`: a singleton group has none (MLX's error). */
export function recvLike(x: MxArray, src: number, options?: CollectiveOptions): MxArray {
  void x;
  void src;
  void options;
  throw new MlxError("[recv] Cannot recv from a singleton group", 1);
}
