// mx.linalg: the 19 functions of MLX 0.32.4. The factorizations (qr, svd, inv, tri_inv,
// cholesky, eigh/eigvalsh, eig/eigvals, lu_factor, det/slogdet) run on the engine's `factor`
// primitive (engine/prims/linalg.zig) over a LAPACK loaded at run time; norm, cross, pinv,
// solve, solve_triangular, cholesky_inv and lu's P/L/U are composed here from graph ops, as
// MLX composes them, so transforms come free.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { checkStatus, lib } from "../ffi/lib";
import { LINALG_OP } from "../ffi/symbols";
import { MxArray, takeResults } from "./array";
import { broadcastShapes, eye, tril, triu, zeros } from "./creation";
import { streamArg, type StreamOrDevice } from "./device";
import { bfloat16, complex64, float16, float32, float64, promoteTypes, uint32, type Dtype } from "./dtype";
import { MlxError } from "./errors";
import { tidy } from "./memory";
import {
  abs, add, argsort, broadcastTo, concatenate, expandDims, greater, matmul, max, min, moveaxis, multiply,
  notEqual, power, reciprocal, sl, sqrt, square, squeeze, subtract, sum, swapaxes, take, takeAlongAxis, where,
} from "./ops/index";

// The OpenBLAS that scripts/bootstrap.sh installs into .toolchain/ (PyPI's scipy-openblas32):
// searched after MLXB_LAPACK and the system's LAPACK.
for (const file of ["libscipy_openblas.so", "libscipy_openblas.dylib"]) {
  const p = join(import.meta.dir, "..", ".toolchain", "lapack", "scipy_openblas32", "lib", file);
  if (existsSync(p)) {
    const bytes = Buffer.from(p, "utf8");
    lib.mlxb_lapack_hint(bytes, bytes.length);
  }
}

/** Options every linalg function takes. */
export interface LinalgOptions {
  stream?: StreamOrDevice;
}

type Op = keyof typeof LINALG_OP;

function fail(message: string, code = 1): never {
  throw new MlxError(message, code);
}

/** The outputs of one factorization, from the engine's results list. */
function factor(a: MxArray, op: Op, upper: boolean, stream: StreamOrDevice | undefined): MxArray[] {
  if (!(a instanceof MxArray)) fail(`[linalg::${op}] Expected an mx.Array.`);
  const n = checkStatus(lib.mlxb_linalg_factor(a.handle(`linalg::${op}`), LINALG_OP[op], upper ? 1 : 0, streamArg(stream)));
  return takeResults(n);
}

function shapeStr(s: readonly number[]): string {
  return `(${s.join(",")})`;
}

const isFloat3264 = (d: Dtype) => d === float32 || d === float64;

function checkMatrix(a: MxArray, op: string, square: string | null): void {
  if (!isFloat3264(a.dtype)) fail(`[linalg::${op}] Arrays must have type float32 or float64. Received array with type ${a.dtype.name}.`);
  if (a.ndim < 2) fail(`[linalg::${op}] Arrays must have >= 2 dimensions. Received array with ${a.ndim} dimensions.`);
  if (square !== null && a.shape[a.ndim - 1] !== a.shape[a.ndim - 2]) fail(`[linalg::${op}] ${square}`);
}

/** The first `len` entries of `a` along the last (-1) or second-to-last (-2) axis (a view). */
function head(a: MxArray, len: number, axis: -1 | -2): MxArray {
  return axis === -1 ? a.index("...", sl(0, len)) : a.index("...", sl(0, len), sl());
}

// ---------------------------------------------------------------------------------------------
// Factorizations

/**
 * The QR factorization `a = Q R` of the last two axes (reduced: Q is m x k, R is k x n,
 * k = min(m, n)). float32 or float64.
 * @example const [q, r] = mx.linalg.qr(mx.array([[2, 1], [1, 3]], mx.float32));
 */
export function qr(a: MxArray, options: LinalgOptions = {}): [MxArray, MxArray] {
  const [q, r] = factor(a, "qr", false, options.stream);
  return [q!, r!];
}

/**
 * The singular value decomposition `a = U diag(S) Vt` (full: U is m x m, Vt is n x n). With
 * `computeUv` false only S is returned. float32, float64 or complex64 (S is real).
 * @example const [u, s, vt] = mx.linalg.svd(mx.array([[1, 2], [3, 4]], mx.float32));
 */
export function svd(a: MxArray, computeUv?: true, options?: LinalgOptions): [MxArray, MxArray, MxArray];
export function svd(a: MxArray, computeUv: false, options?: LinalgOptions): MxArray;
export function svd(a: MxArray, computeUv: boolean, options?: LinalgOptions): MxArray | [MxArray, MxArray, MxArray];
export function svd(a: MxArray, computeUv = true, options: LinalgOptions = {}): MxArray | [MxArray, MxArray, MxArray] {
  if (!computeUv) return factor(a, "svdvals", false, options.stream)[0]!;
  const [u, s, vt] = factor(a, "svd", false, options.stream);
  return [u!, s!, vt!];
}

/**
 * The inverse of each square matrix (LU with partial pivoting). A singular matrix fails at
 * evaluation with MLX's message.
 * @example mx.linalg.inv(mx.array([[2, 0], [0, 4]], mx.float32)) // [[0.5, 0], [0, 0.25]]
 */
export function inv(a: MxArray, options: LinalgOptions = {}): MxArray {
  return factor(a, "inv", false, options.stream)[0]!;
}

/**
 * The inverse of a triangular matrix (the other triangle is ignored as zeros).
 * @example mx.linalg.triInv(mx.array([[2, 0], [1, 4]], mx.float32)) // [[0.5, 0], [-0.125, 0.25]]
 */
export function triInv(a: MxArray, upper = false, options: LinalgOptions = {}): MxArray {
  return factor(a, "tri_inv", upper, options.stream)[0]!;
}

/**
 * The Cholesky factor of a symmetric positive definite matrix: L with `a = L Lᵀ` (or U with
 * `a = Uᵀ U` when `upper`). As MLX, a matrix that is not positive definite is not detected.
 * @example mx.linalg.cholesky(mx.array([[4, 2], [2, 3]], mx.float32)) // [[2, 0], [1, 1.41421]]
 */
export function cholesky(a: MxArray, upper = false, options: LinalgOptions = {}): MxArray {
  return factor(a, "cholesky", upper, options.stream)[0]!;
}

/**
 * The inverse of `A = L Lᵀ` (or `Uᵀ U`) from its Cholesky factor `l`.
 * @example mx.linalg.choleskyInv(mx.linalg.cholesky(a)) // inv(a)
 */
export function choleskyInv(l: MxArray, upper = false, options: LinalgOptions = {}): MxArray {
  checkMatrix(l, "cholesky_inv", "Cholesky inverse is only defined for square matrices.");
  return tidy(() => {
    const li = triInv(l, upper, options);
    const lt = swapaxes(li, -1, -2, options);
    return upper ? matmul(li, lt, options) : matmul(lt, li, options);
  });
}

/**
 * Eigenvalues and eigenvectors of a general square matrix: `[w, v]` (complex64) with
 * `a @ v[:, j] = w[j] v[:, j]`.
 * @example const [w, v] = mx.linalg.eig(mx.array([[0, 1], [-1, 0]], mx.float32)); // w = ±i
 */
export function eig(a: MxArray, options: LinalgOptions = {}): [MxArray, MxArray] {
  const [w, v] = factor(a, "eig", false, options.stream);
  return [w!, v!];
}

/** The eigenvalues (complex64) of a general square matrix. @example mx.linalg.eigvals(mx.eye(2)) // [1+0j, 1+0j] */
export function eigvals(a: MxArray, options: LinalgOptions = {}): MxArray {
  return factor(a, "eigvals", false, options.stream)[0]!;
}

function uploUpper(uplo: string): boolean {
  return uplo === "U";
}

/**
 * Eigenvalues (ascending, real) and eigenvectors (columns) of a real symmetric or complex
 * Hermitian matrix, reading its lower (`UPLO` "L") or upper ("U") triangle.
 * @example const [w, v] = mx.linalg.eigh(mx.array([[2, 1], [1, 2]], mx.float32)); // w = [1, 3]
 */
export function eigh(a: MxArray, UPLO = "L", options: LinalgOptions = {}): [MxArray, MxArray] {
  const [w, v] = factor(a, "eigh", uploUpper(UPLO), options.stream);
  return [w!, v!];
}

/** The eigenvalues (ascending, real) of a symmetric or Hermitian matrix. @example mx.linalg.eigvalsh(mx.array([[2, 1], [1, 2]], mx.float32)) // [1, 3] */
export function eigvalsh(a: MxArray, UPLO = "L", options: LinalgOptions = {}): MxArray {
  return factor(a, "eigvalsh", uploUpper(UPLO), options.stream)[0]!;
}

/**
 * The compact LU factorization with partial pivoting (LAPACK's getrf): `[LU, pivots]`, with L
 * (unit diagonal, not stored) and U in one matrix and the row swaps as 0-based uint32 pivots
 * (row i was swapped with row pivots[i]).
 * @example const [lu, piv] = mx.linalg.luFactor(mx.array([[1, 2], [3, 4]], mx.float32)); // piv = [1, 1]
 */
export function luFactor(a: MxArray, options: LinalgOptions = {}): [MxArray, MxArray] {
  const [lu, piv, perm] = factor(a, "lu_factor", false, options.stream);
  perm!.dispose();
  return [lu!, piv!];
}

/**
 * The LU factorization `[P, L, U]` with `a = (L @ U)[P]` row-wise: P (uint32) is the row
 * permutation, L is m x k unit lower triangular, U is k x n upper triangular.
 * @example const [p, l, u] = mx.linalg.lu(mx.array([[1, 2], [3, 4]], mx.float32)); // p = [1, 0]
 */
export function lu(a: MxArray, options: LinalgOptions = {}): [MxArray, MxArray, MxArray] {
  const [luM, piv, perm] = factor(a, "lu", false, options.stream);
  return tidy(() => {
    const m = a.shape[a.ndim - 2]!;
    const n = a.shape[a.ndim - 1]!;
    const k = Math.min(m, n);
    const p = argsort(perm!, -1, options).astype(uint32);
    const lower = add(tril(head(luM!, k, -1), -1, options), eye(m, k, 0, { dtype: luM!.dtype, stream: options.stream }), options);
    const upperM = triu(head(luM!, k, -2), 0, options);
    luM!.dispose();
    piv!.dispose();
    perm!.dispose();
    return [p, lower, upperM] as [MxArray, MxArray, MxArray];
  });
}

/** det and slogdet: non-float inputs compute in float32 (and float16/bfloat16 cast back). */
function detInput(a: MxArray): MxArray {
  const d = a.dtype;
  if (d === float32 || d === float64 || d === complex64) return a;
  return a.astype(float32);
}

function detOutput(x: MxArray, like: Dtype): MxArray {
  return like === float16 || like === bfloat16 ? x.astype(like) : x;
}

/**
 * The determinant of each square matrix (from its LU factorization). Differentiable.
 * @example mx.linalg.det(mx.array([[1, 2], [3, 4]], mx.float32)) // -2
 */
export function det(a: MxArray, options: LinalgOptions = {}): MxArray {
  return tidy(() => {
    const x = detInput(a);
    const [d] = factor(x, "det", false, options.stream);
    return detOutput(d!, a.dtype);
  });
}

/**
 * The sign and the natural log of the absolute value of the determinant: `[sign, logabsdet]`
 * (a singular matrix gives sign 0 and logabsdet -inf).
 * @example const [s, l] = mx.linalg.slogdet(mx.array([[1, 2], [3, 4]], mx.float32)); // -1, log 2
 */
export function slogdet(a: MxArray, options: LinalgOptions = {}): [MxArray, MxArray] {
  return tidy(() => {
    const x = detInput(a);
    const [s, l] = factor(x, "slogdet", false, options.stream);
    return [detOutput(s!, a.dtype), detOutput(l!, a.dtype)] as [MxArray, MxArray];
  });
}

// ---------------------------------------------------------------------------------------------
// Composed

/**
 * The Moore-Penrose pseudo-inverse from the SVD (singular values below
 * `max(m, n) * eps * max(S)` are treated as zero).
 * @example mx.linalg.pinv(mx.array([[1, 2], [2, 4]], mx.float32))
 */
export function pinv(a: MxArray, options: LinalgOptions = {}): MxArray {
  checkMatrix(a, "pinv", null);
  const m = a.shape[a.ndim - 2]!;
  const n = a.shape[a.ndim - 1]!;
  const k = Math.min(m, n);
  const outShape = [...a.shape.slice(0, -2), n, m];
  if (k === 0) return zeros(outShape, a.dtype);
  return tidy(() => {
    const [u, s, vt] = svd(a, true, options);
    const uk = head(u, k, -1);
    const vk = head(vt, k, -2);
    const eps = a.dtype === float64 ? 2.220446049250313e-16 : 1.1920928955078125e-7;
    const cutoff = multiply(max(s, { axis: -1, keepdims: true, stream: options.stream }), Math.max(m, n) * eps, options);
    const sInv = where(greater(s, cutoff, options), reciprocal(s, options), 0, options).astype(a.dtype);
    const scaled = multiply(expandDims(sInv, -1, options), swapaxes(uk, -1, -2, options), options);
    return matmul(swapaxes(vk, -1, -2, options), scaled, options);
  });
}

function promoteFloat(a: MxArray, b: MxArray, op: string): Dtype {
  const dt = promoteTypes(a.dtype, b.dtype);
  if (!isFloat3264(dt)) fail(`[linalg::${op}] Input arrays must promote to float32 or float64.  Received arrays with type ${a.dtype.name} and ${b.dtype.name}.`);
  return dt;
}

function checkSystem(a: MxArray, b: MxArray, op: string): Dtype {
  const dt = promoteFloat(a, b, op);
  if (a.ndim < 2) fail(`[linalg::${op}] First input must have >= 2 dimensions. Received array with ${a.ndim} dimensions.`);
  if (b.ndim < 1) fail(`[linalg::${op}] Second input must have >= 1 dimensions. Received array with ${b.ndim} dimensions.`);
  const n = a.shape[a.ndim - 1]!;
  if (a.shape[a.ndim - 2] !== n) fail(`[linalg::${op}] First input must be a square matrix. Received array with shape ${shapeStr(a.shape)}.`);
  const rows = b.ndim === 1 ? b.shape[0] : b.shape[b.ndim - 2];
  if (rows !== n)
    fail(`[linalg::${op}] Last dimension of first input with shape ${shapeStr(a.shape)} must match second to last dimension of second input with shape ${shapeStr(b.shape)}.`);
  return dt;
}

/**
 * The solution X of `a X = b` for square `a` (LU with partial pivoting); `b` is a vector
 * (..., n) or matrices (..., n, nrhs). A singular `a` fails at evaluation.
 * @example mx.linalg.solve(mx.array([[2, 0], [0, 4]], mx.float32), mx.array([2, 4], mx.float32)) // [1, 1]
 */
export function solve(a: MxArray, b: MxArray, options: LinalgOptions = {}): MxArray {
  const dt = checkSystem(a, b, "solve");
  return tidy(() => {
    const [luM, piv, perm] = factor(a, "lu", false, options.stream);
    piv!.dispose();
    const n = a.shape[a.ndim - 1]!;
    const vec = b.ndim === 1;
    let rhs = (vec ? expandDims(b, -1, options) : b).astype(dt);
    const batch = broadcastShapes(a.shape.slice(0, -2), rhs.shape.slice(0, -2));
    const cols = rhs.shape[rhs.ndim - 1]!;
    rhs = broadcastTo(rhs, [...batch, n, cols], options);
    // (L U) x = b[perm]: row i of the factored system is row perm[i] of the original.
    const idx = broadcastTo(expandDims(perm!.astype(uint32), -1, options), [...batch, n, cols], options);
    const pb = takeAlongAxis(rhs, idx, -2, options);
    const lower = add(tril(luM!, -1, options), eye(n, n, 0, { dtype: luM!.dtype, stream: options.stream }), options);
    const upperM = triu(luM!, 0, options);
    const y = matmul(triInv(lower, false, options), pb, options);
    const x = matmul(triInv(upperM, true, options), y, options).astype(dt);
    return vec ? squeeze(x, -1, options) : x;
  });
}

/** Options of {@link solveTriangular}. */
export interface SolveTriangularOptions extends LinalgOptions {
  /** `a` is upper triangular (default: lower). */
  upper?: boolean;
}

/**
 * The solution X of `a X = b` for triangular `a` (MLX: `tri_inv(a) @ b`).
 * @example mx.linalg.solveTriangular(mx.array([[2, 0], [1, 1]], mx.float32), mx.array([2, 2], mx.float32)) // [1, 1]
 */
export function solveTriangular(a: MxArray, b: MxArray, options: SolveTriangularOptions = {}): MxArray {
  const dt = checkSystem(a, b, "solve_triangular");
  return tidy(() => matmul(triInv(a.astype(dt), options.upper ?? false, options), b.astype(dt), options));
}

/**
 * The cross product of 3-vectors (or 2-vectors, with a zero third component) along `axis`;
 * the other axes broadcast.
 * @example mx.linalg.cross(mx.array([1, 0, 0]), mx.array([0, 1, 0])) // [0, 0, 1]
 */
export function cross(a: MxArray, b: MxArray, axis = -1, options: LinalgOptions = {}): MxArray {
  const ndim = Math.max(a.ndim, b.ndim);
  if (axis >= ndim || axis < -ndim) fail(`[linalg::cross] Axis ${axis} is out of bounds for array with ${ndim} dimensions.`);
  const ax = axis < 0 ? axis + ndim : axis;
  const axA = ax - (ndim - a.ndim);
  const axB = ax - (ndim - b.ndim);
  const sa = axA >= 0 ? a.shape[axA]! : 1;
  const sb = axB >= 0 ? b.shape[axB]! : 1;
  if ((sa !== 2 && sa !== 3) || (sb !== 2 && sb !== 3)) fail("[linalg::cross] The specified axis must have size 2 or 3.");
  // The other axes must broadcast (MLX's message names the whole shapes).
  const withoutAxis = (s: readonly number[], axX: number) => s.map((d, i) => (i === axX ? 1 : d));
  try {
    broadcastShapes(withoutAxis(a.shape, axA), withoutAxis(b.shape, axB));
  } catch {
    fail(`[broadcast_shapes] Shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} cannot be broadcast.`);
  }
  return tidy(() => {
    const comps = (x: MxArray, axX: number, size: number): MxArray[] => {
      const c = [0, 1].map((i) => take(x, [i], axX, options));
      c.push(size === 3 ? take(x, [2], axX, options) : multiply(c[0]!, 0, options));
      return c;
    };
    const [a0, a1, a2] = comps(a, axA, sa);
    const [b0, b1, b2] = comps(b, axB, sb);
    const x = subtract(multiply(a1!, b2!, options), multiply(a2!, b1!, options), options);
    const y = subtract(multiply(a2!, b0!, options), multiply(a0!, b2!, options), options);
    const z = subtract(multiply(a0!, b1!, options), multiply(a1!, b0!, options), options);
    const shape = broadcastShapes(x.shape, y.shape);
    return concatenate([x, y, z].map((t) => broadcastTo(t, shape, options)), ax, options);
  });
}

/** Options of {@link norm}. */
export interface NormOptions extends LinalgOptions {
  /** The axis (vector norm) or two axes (matrix norm); default: all axes (ord null) or the array's. */
  axis?: number | readonly number[] | null;
  keepdims?: boolean;
}

/** What `ord` may be: a number (including ±Infinity), "fro" or "nuc", or null (the 2/Frobenius norm). */
export type NormOrd = number | "fro" | "nuc" | string | null;

function normAxes(axis: readonly number[], ndim: number): number[] {
  const out = axis.map((x) => {
    if (!Number.isInteger(x) || x >= ndim || x < -ndim) fail(`Invalid axis ${x} for array with ${ndim} dimensions.`);
    return x < 0 ? x + ndim : x;
  });
  if (new Set(out).size !== out.length) fail("Duplicate axes detected in reduction.");
  return out;
}

/**
 * Vector or matrix norm, as MLX: ord null (2-norm / Frobenius over the axes), "fro", "nuc",
 * ±Infinity, 0 (vectors: count of nonzeros), ±1, ±2 (matrices: extreme singular values) and
 * any other p for vectors (`sum(|x|^p)^(1/p)`).
 * @example mx.linalg.norm(mx.array([3, 4])) // 5
 * @example mx.linalg.norm(m, "fro", { axis: [0, 1] })
 */
export function norm(a: MxArray, ord: NormOrd | NormOptions = null, options: NormOptions = {}): MxArray {
  if (ord !== null && typeof ord === "object") {
    options = ord;
    ord = null;
  }
  const o = ord as NormOrd;
  const keepdims = options.keepdims ?? false;
  const so = { stream: options.stream };
  const axisIn = options.axis ?? null;
  let axes: number[] | null = axisIn === null ? null : normAxes(typeof axisIn === "number" ? [axisIn] : axisIn, a.ndim);
  const ordName = typeof o === "string" ? `'${o}'` : String(o);
  return tidy(() => {
    const floatIn = a.dtype.isFloating || a.dtype.isComplex ? a : a.astype(float32);
    const sumSq = (x: MxArray, ax: number[] | null) => sqrt(sum(x.dtype === complex64 ? square(abs(x, so), so) : square(x, so), { axis: ax, keepdims, ...so }), so);
    if (o === null) {
      if (axes !== null && axes.length > 2) fail("[linalg::norm] Received too many axes for norm.");
      return sumSq(floatIn, axes);
    }
    if (typeof o === "string") {
      if (axes === null) axes = Array.from({ length: a.ndim }, (_, i) => i);
      if (axes.length !== 2) fail(`[linalg::norm] Norm ${ordName} only supported for matrices, but received ${axes.length} axis/axes.`);
    } else if (axes === null) {
      if (a.ndim === 1) axes = [0];
      else if (a.ndim === 2) axes = [0, 1];
      else fail("[linalg::norm] Received too many axes for norm.");
    }
    if (axes.length === 1) {
      const ax = axes;
      const x = abs(floatIn, so);
      const red = { axis: ax, keepdims, ...so };
      if (o === Infinity) return max(x, red);
      if (o === -Infinity) return min(x, red);
      if (o === 0) return sum(notEqual(floatIn, 0, so), red).astype(x.dtype);
      if (o === 1) return sum(x, red);
      if (o === 2) return sumSq(floatIn, ax);
      return power(sum(power(x, o as number, so), red), 1 / (o as number), so);
    }
    if (axes.length !== 2) fail("[linalg::norm] Received too many axes for norm.");
    const [r, c] = axes as [number, number];
    const keep = (x: MxArray) => (keepdims ? x : squeeze(x, [r, c], so));
    if (o === "fro") return sumSq(floatIn, axes);
    if (o === "nuc" || o === 2 || o === -2) {
      // Singular values of the matrices moved to the last two axes (ints reach svd's error).
      const moved = moveaxis(moveaxis(a, r, -1, so), c > r ? c - 1 : c, -1, so);
      const s = svd(moved, false, so);
      const v = o === "nuc" ? sum(s, { axis: -1, ...so }) : o === 2 ? max(s, { axis: -1, ...so }) : min(s, { axis: -1, ...so });
      return keepdims ? expandDims(v, [Math.min(r, c), Math.max(r, c)], so) : v;
    }
    if (typeof o === "string") fail(`[linalg::norm] Invalid ord value ${ordName} for matrix norm.`);
    const x = abs(floatIn, so);
    if (o === Infinity || o === -Infinity) {
      const rows = sum(x, { axis: c, keepdims: true, ...so });
      return keep(o > 0 ? max(rows, { axis: r, keepdims: true, ...so }) : min(rows, { axis: r, keepdims: true, ...so }));
    }
    if (o === 1 || o === -1) {
      const colsum = sum(x, { axis: r, keepdims: true, ...so });
      return keep(o > 0 ? max(colsum, { axis: c, keepdims: true, ...so }) : min(colsum, { axis: c, keepdims: true, ...so }));
    }
    return fail(`[linalg::norm] Invalid ord ${ordName} for matrix norm.`);
  });
}
