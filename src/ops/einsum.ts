// einsum and einsumPath. The contraction order is NumPy's greedy one as MLX has it: take the pair
// that removes the most elements at the lowest cost, inner products before outer ones, never an
// intermediate larger than the largest operand or the output; when no pair qualifies, the rest in
// one naive step. Each step is a diagonal/sum/transpose of one operand, a broadcast multiply (no
// summed index), a batched matmul (two terms with summed indices) or, for a naive step over
// several terms, one broadcast product and a sum, so integer contractions fail exactly where
// MLX's do, in matmul.
import { MxArray } from "../array";
import { MlxError } from "../errors";
import { tidy } from "../memory";
import { multiply, type StreamOptions } from "./elementwise";
import { diagonal } from "./indexing";
import { matmul } from "./matmul";
import { sum } from "./reduce";
import { broadcastTo, reshape, transpose } from "./shape";

interface Parsed {
  /** Each input's subscripts, one letter per axis (the ellipsis expanded to reserved letters). */
  inputs: string[];
  output: string;
  sizes: Map<string, number>;
  /** The original equation (spaces removed), as einsumPath reports it. */
}

// Ellipsis axes get letters outside a-zA-Z so they never clash with the user's.
const ELLIPSIS_BASE = 0x100;
const isLetter = (c: string) => /^[a-zA-Z]$/.test(c);

/**
 * A subscript's letters before and after its ellipsis (after: null without one), checked as MLX
 * does: letters only, at most one ellipsis.
 */
function splitTerm(t: string, fn: string): [string, string | null] {
  const parts = t.split("...");
  if (parts.length > 2) throw new MlxError(`[${fn}] Only one ellipsis per subscript is allowed but found more in '${t}'.`, 1);
  for (const c of parts.join("")) {
    if (!isLetter(c)) throw new MlxError(`[${fn}] Subscripts must be letters, but got '${c}'.`, 1);
  }
  return parts.length === 2 ? [parts[0]!, parts[1]!] : [parts[0]!, null];
}

/** `fn` names the op in messages: einsum, or einsum_path as MLX's einsumPath reports itself. */
function parse(subscripts: string, operands: readonly MxArray[], fn: string): Parsed {
  if (typeof subscripts !== "string") throw new MlxError(`[${fn}] The subscripts must be a string.`, 1);
  if (operands.length === 0) throw new MlxError(`[${fn}] At least one operand is required.`, 1);
  const text = subscripts.replace(/\s+/g, "");
  const arrow = text.indexOf("->");
  const lhs = arrow >= 0 ? text.slice(0, arrow) : text;
  const rhs = arrow >= 0 ? text.slice(arrow + 2) : null;
  const terms = lhs.split(",");
  if (terms.length !== operands.length) {
    throw new MlxError(`[${fn}] Number of operands, ${operands.length}, does not match number of input subscripts, ${terms.length}`, 1);
  }
  // The ellipsis stands for the same number of axes everywhere: the most any operand needs.
  const split = terms.map((t, i) => {
    const [before, after] = splitTerm(t, fn);
    const x = operands[i]!;
    if (after !== null && x.ndim < before.length + after.length) {
      throw new MlxError(
        `[${fn}] Operand ${i} with shape (${x.shape.join(",")}) has insufficient dimensions for subscript '${t}'. ` +
          `The ellipsis requires at least ${before.length + after.length} dimensions but the operand has ${x.ndim} dimensions.`,
        1,
      );
    }
    return [before, after] as const;
  });
  let ell = 0;
  split.forEach(([before, after], i) => {
    if (after !== null) ell = Math.max(ell, operands[i]!.ndim - before.length - after.length);
  });
  const ellLetters = Array.from({ length: ell }, (_, i) => String.fromCharCode(ELLIPSIS_BASE + i));
  const outSplit = rhs === null ? null : splitTerm(rhs, fn);
  const explicit = outSplit === null ? null : outSplit[0] + (outSplit[1] === null ? "" : ellLetters.join("") + outSplit[1]);
  if (explicit !== null && new Set(explicit).size !== explicit.length) throw new MlxError(`[${fn}] Repeat indices not allowed in output.`, 1);
  const sizes = new Map<string, number>();
  const inputs = split.map(([before, after], i) => {
    const x = operands[i]!;
    const letters = after === null ? before : before + ellLetters.slice(ell - (x.ndim - before.length - after.length)).join("") + after;
    if (letters.length !== x.ndim) {
      throw new MlxError(`[${fn}] Invalid number of subscripts ${letters.length} for input ${i} with ${x.ndim} dimensions.`, 1);
    }
    // A repeated subscript within one operand takes a diagonal: its sizes must be equal (a size
    // of 1 broadcasts only across operands).
    const local = new Map<string, number>();
    [...letters].forEach((c, ax) => {
      const d = x.shape[ax]!;
      const have = local.get(c);
      if (have === undefined) local.set(c, d);
      else if (have !== d) throw new MlxError(`[${fn}] Dimensions of repeated subscripts do not have the same size (${have} != ${d}).`, 1);
    });
    [...letters].forEach((c, ax) => {
      const d = x.shape[ax]!;
      const have = sizes.get(c);
      if (have === undefined || have === 1) sizes.set(c, d);
      else if (d !== 1 && d !== have) {
        throw new MlxError(`[${fn}] Cannot broadcast dimension ${ax} of input ${i} with shape (${x.shape.join(",")}) to size ${have}.`, 1);
      }
    });
    return letters;
  });
  let output: string;
  if (explicit === null) {
    // Implicit: the ellipsis axes, then every letter used once, in alphabetical order.
    const count = new Map<string, number>();
    for (const t of inputs) for (const c of t) count.set(c, (count.get(c) ?? 0) + 1);
    const once = [...count].filter(([c, n]) => n === 1 && isLetter(c)).map(([c]) => c).sort();
    output = ellLetters.join("") + once.join("");
  } else {
    output = explicit;
    for (const c of output) {
      if (!sizes.has(c)) throw new MlxError(`[${fn}] Output subscript '${c}' does not appear in the inputs.`, 1);
    }
  }
  return { inputs, output, sizes };
}

// ---------------------------------------------------------------------------------------------
// The path

type Sets = Set<string>[];

function sizeOf(set: Iterable<string>, sizes: Map<string, number>): number {
  let n = 1;
  for (const c of set) n *= sizes.get(c)!;
  return n;
}

/** NumPy's flop count of one contraction step. */
function flops(indices: Set<string>, inner: boolean, terms: number, sizes: Map<string, number>): number {
  return sizeOf(indices, sizes) * (Math.max(1, terms - 1) + (inner ? 1 : 0));
}

function contraction(positions: readonly number[], sets: Sets, output: Set<string>) {
  const involved = new Set<string>();
  for (const p of positions) for (const c of sets[p]!) involved.add(c);
  const remain = new Set(output);
  sets.forEach((s, i) => {
    if (!positions.includes(i)) for (const c of s) remain.add(c);
  });
  const result = new Set([...involved].filter((c) => remain.has(c)));
  const removed = new Set([...involved].filter((c) => !remain.has(c)));
  const rest = sets.filter((_, i) => !positions.includes(i));
  return { result, rest: [...rest, result], removed, involved };
}

interface Candidate {
  key: [number, number];
  positions: [number, number];
  sets: Sets;
}

function better(a: Candidate, b: Candidate): boolean {
  return a.key[0] < b.key[0] || (a.key[0] === b.key[0] && a.key[1] < b.key[1]);
}

/** The greedy contraction order, and the naive and optimized costs and scalings. */
function greedyPath(inputs: string[], output: string, sizes: Map<string, number>) {
  let sets: Sets = inputs.map((t) => new Set(t));
  const out = new Set(output);
  const all = contraction(sets.map((_, i) => i), sets, out);
  const naiveCost = flops(all.involved, all.removed.size > 0, sets.length, sizes);
  const naiveScaling = all.involved.size;
  if (sets.length === 1) return { path: [[0]], naiveCost, naiveScaling, cost: naiveCost, scaling: naiveScaling };
  if (sets.length === 2) return { path: [[0, 1]], naiveCost, naiveScaling, cost: naiveCost, scaling: naiveScaling };
  // No intermediate may outgrow the largest operand or the output (MLX's memory limit).
  const memoryLimit = Math.max(sizeOf(out, sizes), ...inputs.map((t) => sizeOf(t, sizes)));
  const consider = (positions: [number, number], pathCost: number): Candidate | null => {
    const c = contraction(positions, sets, out);
    const newSize = sizeOf(c.result, sizes);
    if (newSize > memoryLimit) return null;
    const removedSize = sizeOf(sets[positions[0]]!, sizes) + sizeOf(sets[positions[1]]!, sizes) - newSize;
    const cost = flops(c.involved, c.removed.size > 0, 2, sizes);
    if (pathCost + cost > naiveCost) return null;
    return { key: [-removedSize, cost], positions, sets: c.rest };
  };
  const path: number[][] = [];
  let known: Candidate[] = [];
  let pathCost = 0;
  let scaling = 0;
  let pairs: [number, number][] = [];
  for (let i = 0; i < sets.length; i++) for (let j = i + 1; j < sets.length; j++) pairs.push([i, j]);
  const steps = sets.length - 1;
  for (let it = 0; it < steps; it++) {
    for (const p of pairs) {
      if ([...sets[p[0]]!].every((c) => !sets[p[1]]!.has(c))) continue; // outer products last
      const r = consider(p, pathCost);
      if (r !== null) known.push(r);
    }
    if (known.length === 0) {
      // The same pairs again, outer products included.
      for (const p of pairs) {
        const r = consider(p, pathCost);
        if (r !== null) known.push(r);
      }
      if (known.length === 0) {
        path.push(sets.map((_, i) => i));
        const c = contraction(sets.map((_, i) => i), sets, out);
        pathCost += flops(c.involved, c.removed.size > 0, sets.length, sizes);
        scaling = Math.max(scaling, c.involved.size);
        break;
      }
    }
    let best = known[0]!;
    for (const c of known) if (better(c, best)) best = c;
    const involved = contraction(best.positions, sets, out).involved;
    scaling = Math.max(scaling, involved.size);
    // Keep the candidates that do not touch the contracted pair, renumbered.
    const [bx, by] = best.positions;
    known = known
      .filter((c) => !c.positions.includes(bx) && !c.positions.includes(by))
      .map((c) => {
        const [x, y] = c.positions;
        const s = c.sets.slice();
        s.splice(by - (by > x ? 1 : 0) - (by > y ? 1 : 0), 1);
        s.splice(bx - (bx > x ? 1 : 0) - (bx > y ? 1 : 0), 1);
        s.splice(s.length - 1, 0, best.sets[best.sets.length - 1]!);
        const nx = x - (x > bx ? 1 : 0) - (x > by ? 1 : 0);
        const ny = y - (y > bx ? 1 : 0) - (y > by ? 1 : 0);
        return { key: c.key, positions: [nx, ny] as [number, number], sets: s };
      });
    sets = best.sets;
    const last = sets.length - 1;
    pairs = Array.from({ length: last }, (_, i) => [i, last] as [number, number]);
    path.push(best.positions);
    pathCost += best.key[1];
  }
  return { path, naiveCost, naiveScaling, cost: pathCost, scaling };
}

/**
 * The contraction order einsum uses for these operands, and a report of its cost (MLX's format).
 * @example mx.einsumPath("ij,jk,kl->il", a, b, c)[0] // [[1, 2], [0, 1]]
 */
export function einsumPath(subscripts: string, ...operands: MxArray[]): [number[][], string] {
  const p = parse(subscripts, operands, "einsum_path");
  const g = greedyPath(p.inputs, p.output, p.sizes);
  const report =
    `  Complete contraction:  ${subscripts}\n` +
    `         Naive scaling:  ${g.naiveScaling}\n` +
    `     Optimized scaling:  ${g.scaling}\n` +
    `      Naive FLOP count:  ${g.naiveCost}\n` +
    `  Optimized FLOP count:  ${g.cost}\n`;
  return [g.path, report];
}

// ---------------------------------------------------------------------------------------------
// Evaluation

interface Term {
  x: MxArray;
  letters: string;
}

/** Reduce one term to distinct letters, summing the ones not in `keep`. */
function simplify(t: Term, keep: Set<string>, s: StreamOptions): Term {
  let { x, letters } = t;
  // Repeated letters: take the diagonal (it becomes the last axis).
  for (;;) {
    const dup = [...letters].find((c, i) => letters.indexOf(c) !== i);
    if (dup === undefined) break;
    const i = letters.indexOf(dup);
    const j = letters.indexOf(dup, i + 1);
    x = diagonal(x, 0, i, j, s);
    letters = [...letters].filter((_, k) => k !== i && k !== j).join("") + dup;
  }
  const drop = [...letters].map((c, i) => (keep.has(c) ? -1 : i)).filter((i) => i >= 0);
  if (drop.length > 0) {
    x = sum(x, { axis: drop, stream: s.stream });
    letters = [...letters].filter((c) => keep.has(c)).join("");
  }
  return { x, letters };
}

function permute(t: Term, order: string, s: StreamOptions): MxArray {
  if (t.letters === order) return t.x;
  return transpose(t.x, [...order].map((c) => t.letters.indexOf(c)), s);
}

/** Contract two terms into one whose letters are `result` (a batched matmul when summing). */
function pair(a: Term, b: Term, result: Set<string>, sizes: Map<string, number>, s: StreamOptions): Term {
  const inA = new Set(a.letters);
  const inB = new Set(b.letters);
  const summed = [...inA].filter((c) => inB.has(c) && !result.has(c));
  a = simplify(a, new Set([...result, ...summed]), s);
  b = simplify(b, new Set([...result, ...summed]), s);
  const batch = [...a.letters].filter((c) => b.letters.includes(c) && result.has(c));
  const freeA = [...a.letters].filter((c) => !b.letters.includes(c));
  const freeB = [...b.letters].filter((c) => !a.letters.includes(c));
  const size = (cs: string[]) => cs.reduce((p, c) => p * sizes.get(c)!, 1);
  const dim = (t: Term, c: string) => t.x.shape[t.letters.indexOf(c)]!;
  if (summed.length === 0) {
    // No summed index: a broadcast product over batch, freeA, freeB.
    const xa = reshape(permute(a, [...batch, ...freeA].join(""), s), [...batch.map((c) => dim(a, c)), ...freeA.map((c) => dim(a, c)), ...freeB.map(() => 1)], s);
    const xb = reshape(permute(b, [...batch, ...freeB].join(""), s), [...batch.map((c) => dim(b, c)), ...freeA.map(() => 1), ...freeB.map((c) => dim(b, c))], s);
    return { x: multiply(xa, xb, s), letters: [...batch, ...freeA, ...freeB].join("") };
  }
  // Batch dims broadcast (a size-1 axis on one side), so bring both to full batch sizes.
  const bshape = batch.map((c) => sizes.get(c)!);
  const xa = broadcastTo(permute(a, [...batch, ...freeA, ...summed].join(""), s), [...bshape, ...freeA.map((c) => dim(a, c)), ...summed.map((c) => sizes.get(c)!)], s);
  const xb = broadcastTo(permute(b, [...batch, ...summed, ...freeB].join(""), s), [...bshape, ...summed.map((c) => sizes.get(c)!), ...freeB.map((c) => dim(b, c))], s);
  const ma = freeA.reduce((p, c) => p * dim(a, c), 1);
  const nb = freeB.reduce((p, c) => p * dim(b, c), 1);
  const k = size(summed);
  const prod = matmul(reshape(xa, [...bshape, ma, k], s), reshape(xb, [...bshape, k, nb], s), s);
  const x = reshape(prod, [...bshape, ...freeA.map((c) => dim(a, c)), ...freeB.map((c) => dim(b, c))], s);
  return { x, letters: [...batch, ...freeA, ...freeB].join("") };
}

/**
 * Several terms at once, as MLX's naive step (the greedy path's fallback): each term laid out
 * along the union of their letters (size 1 where it has none), one broadcast product of all,
 * then a sum over the letters not in `keep`. No matmul, so integer operands work here.
 */
function naive(terms: Term[], keep: Set<string>, s: StreamOptions): Term {
  const simple = terms.map((t, i) => {
    const others = new Set(keep);
    terms.forEach((u, j) => {
      if (j !== i) for (const c of u.letters) others.add(c);
    });
    return simplify(t, others, s);
  });
  const union = [...new Set(simple.flatMap((t) => [...t.letters]))];
  let x: MxArray | null = null;
  for (const t of simple) {
    const own = union.filter((c) => t.letters.includes(c));
    const dims = union.map((c) => (t.letters.includes(c) ? t.x.shape[t.letters.indexOf(c)]! : 1));
    const y = reshape(permute(t, own.join(""), s), dims, s);
    x = x === null ? y : multiply(x, y, s);
  }
  const drop = union.map((c, i) => (keep.has(c) ? -1 : i)).filter((i) => i >= 0);
  const letters = union.filter((c) => keep.has(c)).join("");
  return { x: drop.length > 0 ? sum(x!, { axis: drop, stream: s.stream }) : x!, letters };
}

/**
 * Einstein summation over the operands (NumPy's notation, with `...` and implicit output).
 * @example mx.einsum("ij,jk->ik", a, b) // a @ b
 * @example mx.einsum("ii", m) // the trace of m
 */
export function einsum(subscripts: string, ...args: (MxArray | StreamOptions)[]): MxArray {
  let s: StreamOptions = {};
  const last = args[args.length - 1];
  if (last !== undefined && !(last instanceof MxArray)) {
    s = last;
    args = args.slice(0, -1);
  }
  const operands = args as MxArray[];
  operands.forEach((o) => {
    if (!(o instanceof MxArray)) throw new MlxError("[einsum] Operands must be arrays.", 1);
  });
  const p = parse(subscripts, operands, "einsum");
  const { path } = greedyPath(p.inputs, p.output, p.sizes);
  return tidy(() => {
    let terms: Term[] = operands.map((x, i) => ({ x, letters: p.inputs[i]! }));
    const out = new Set(p.output);
    for (const step of path) {
      const picked = step.map((i) => terms[i]!);
      const rest = terms.filter((_, i) => !step.includes(i));
      const needed = new Set(out);
      for (const t of rest) for (const c of t.letters) needed.add(c);
      let acc = picked[0]!;
      if (picked.length === 1) {
        acc = simplify(acc, needed, s);
      } else if (picked.length > 2) {
        acc = naive(picked, needed, s);
      } else {
        for (let i = 1; i < picked.length; i++) {
          const later = new Set(needed);
          for (const t of picked.slice(i + 1)) for (const c of t.letters) later.add(c);
          const inv = new Set([...acc.letters, ...picked[i]!.letters]);
          acc = pair(acc, picked[i]!, new Set([...inv].filter((c) => later.has(c))), p.sizes, s);
        }
      }
      terms = [...rest, acc];
    }
    let t = simplify(terms[0]!, out, s);
    // Letters of size-1 broadcasting may be missing from a term but present in the output.
    const x = permute(t, [...p.output].filter((c) => t.letters.includes(c)).join(""), s);
    t = { x, letters: [...p.output].filter((c) => t.letters.includes(c)).join("") };
    if (t.letters.length !== p.output.length) {
      return broadcastTo(reshape(t.x, [...p.output].map((c) => (t.letters.includes(c) ? p.sizes.get(c)! : 1)), s), [...p.output].map((c) => p.sizes.get(c)!), s);
    }
    return t.x;
  });
}
