// mx.exportToDot: the lazy graph behind some arrays, in Graphviz DOT, as MLX's export_to_dot.
// The graph is read through the engine's inspection entries (mlxb_array_node_id, _input_count,
// _input, _primitive_name); evaluated arrays have no graph (eval detaches it) and are inputs.
import { writeFileSync } from "node:fs";
import { checkHandle, checkStatus, lib } from "../ffi/lib";
import { MxArray } from "./array";
import { MlxError } from "./errors";

/** Where `exportToDot` writes: a file path, or anything with a `write(text)` method. */
export type DotTarget = string | { write(text: string): unknown };

function letters(i: number): string {
  let s = "";
  let n = i;
  do {
    s = String.fromCharCode(65 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return s;
}

function quote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** @internal The DOT text of the graph behind `outputs` (names: arrays to label by name). */
export function graphToDot(outputs: readonly MxArray[], names: Record<string, MxArray> = {}): string {
  const named = new Map<number, string>();
  for (const [name, a] of Object.entries(names)) {
    if (!(a instanceof MxArray)) throw new MlxError(`[export_to_dot] The array named ${JSON.stringify(name)} is not an array.`, 1);
    named.set(checkStatus(lib.mlxb_array_node_id(a.handle("export_to_dot"))), name);
  }
  const label = new Map<number, string>();
  let next = 0;
  const nameOf = (id: number): string => {
    let s = label.get(id);
    if (s === undefined) {
      s = named.get(id) ?? letters(next++);
      label.set(id, s);
    }
    return s;
  };
  const lines: string[] = ["digraph {"];
  const outputIds = new Set<number>();
  const owned: number[] = [];
  const done = new Set<number>();
  try {
    // Iterative post-order DFS: a node is written after its inputs.
    const stack: { h: number; id: number; expanded: boolean }[] = [];
    for (const o of outputs) {
      if (!(o instanceof MxArray)) throw new MlxError("[export_to_dot] The outputs must be arrays.", 1);
      const h = o.handle("export_to_dot");
      const id = checkStatus(lib.mlxb_array_node_id(h));
      outputIds.add(id);
      stack.push({ h, id, expanded: false });
    }
    stack.reverse();
    const inputsOf = new Map<number, number[]>();
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (done.has(top.id)) {
        stack.pop();
        continue;
      }
      if (!top.expanded) {
        top.expanded = true;
        const n = checkStatus(lib.mlxb_array_input_count(top.h));
        const ids: number[] = [];
        for (let i = n - 1; i >= 0; i--) {
          const ih = checkHandle(lib.mlxb_array_input(top.h, i));
          owned.push(ih);
          const iid = checkStatus(lib.mlxb_array_node_id(ih));
          ids.unshift(iid);
          if (!done.has(iid)) stack.push({ h: ih, id: iid, expanded: false });
        }
        inputsOf.set(top.id, ids);
        continue;
      }
      stack.pop();
      done.add(top.id);
      const ins = inputsOf.get(top.id) ?? [];
      const sink = outputIds.has(top.id);
      if (ins.length === 0 && checkStatus(lib.mlxb_array_is_evaluated(top.h)) === 1) {
        // Data: a source.
        lines.push(`{ rank=source; ${quote(nameOf(top.id))}; }`);
        continue;
      }
      const prim = `p${top.id}`;
      const primName = String(lib.mlxb_array_primitive_name(top.h) ?? "");
      lines.push(`{ ${prim} [label =${quote(primName)}, shape=rectangle]; }`);
      for (const iid of ins) lines.push(`${quote(nameOf(iid))} -> ${prim}`);
      lines.push(sink ? `{ rank=sink; ${quote(nameOf(top.id))}; }` : `{ ${quote(nameOf(top.id))}; }`);
      lines.push(`${prim} -> ${quote(nameOf(top.id))}`);
    }
  } finally {
    for (const h of owned) lib.mlxb_array_free(h);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

/**
 * Write the graph behind `outputs` in Graphviz DOT format, as MLX's `mx.export_to_dot`: every
 * unevaluated array the outputs depend on (evaluated arrays are inputs, drawn as sources), an
 * op node (a rectangle, labelled with the op's name) between each array and its inputs, and the
 * outputs as sinks. Arrays are labelled A, B, ...; a trailing plain object names some of them
 * (Python's keyword arguments).
 *
 * @example
 * const x = mx.array(1), y = mx.array(2);
 * mx.exportToDot("graph.dot", mx.add(x, y), { x, y });
 */
export function exportToDot(file: DotTarget, ...args: (MxArray | Record<string, MxArray>)[]): void {
  const outputs: MxArray[] = [];
  let names: Record<string, MxArray> = {};
  for (const [i, a] of args.entries()) {
    if (a instanceof MxArray) outputs.push(a);
    else if (i === args.length - 1 && a !== null && typeof a === "object") names = a;
    else throw new MlxError("[export_to_dot] Expected arrays, then an optional object of named arrays.", 1);
  }
  const text = graphToDot(outputs, names);
  if (typeof file === "string") writeFileSync(file, text);
  else if (file !== null && typeof file === "object" && typeof file.write === "function") file.write(text);
  else throw new MlxError("[export_to_dot] file must be a path or an object with a write(text) method.", 1);
}
