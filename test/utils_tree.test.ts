// mx.utils tree helpers against MLX 0.32.4's mlx.utils (fixture: test/fixtures/nn/gen_nn.py).
import { describe, expect, test } from "bun:test";
import * as mx from "../src/index.ts";
import { loadFixture } from "./fixture";

const { utils } = mx;
const fx = loadFixture<{ utils: Record<string, any> }>("nn/nn.json.gz").utils;
const tree = fx.tree;

describe("mx.utils (vs mlx.utils)", () => {
  test("treeFlatten", () => {
    expect(utils.treeFlatten(tree)).toEqual(fx.flatten);
    expect(utils.treeFlatten([[[0]]], { prefix: ".hello" })).toEqual(fx.flattenPrefix);
    expect(utils.treeFlatten(5)).toEqual([["", 5]]);
    // Arrays are leaves.
    const a = mx.array([1, 2]);
    const flat = utils.treeFlatten({ w: [a] });
    expect(flat[0]![0]).toBe("w.0");
    expect(flat[0]![1]).toBe(a);
  });
  test("treeUnflatten", () => {
    expect(utils.treeUnflatten(utils.treeFlatten(tree))).toEqual(fx.unflatten);
    expect(utils.treeUnflatten([["a.0", 1], ["a.3", 2], ["b.x.1", 3], ["b.x.0", 4]])).toEqual(fx.unflattenGaps);
    expect(utils.treeUnflatten([["0", 1], ["2", 5]])).toEqual(fx.unflattenTop);
    expect(utils.treeUnflatten({ "hello.world": 42 })).toEqual({ hello: { world: 42 } });
    expect(utils.treeUnflatten([["", 7]])).toBe(7);
  });
  test("treeMap (with rest trees and isLeaf)", () => {
    expect(utils.treeMap((v: number) => v * 10, tree)).toEqual(fx.map);
    expect(utils.treeMap((a: number, b: number) => a + b, { a: [1, 2], b: 3 }, [{ a: [10, 20, 30], b: 4, c: 9 }])).toEqual(fx.mapRest);
    expect(utils.treeMap((v: unknown[]) => v.length, { a: [1, 2], b: [[3]] }, [], { isLeaf: Array.isArray })).toEqual(fx.mapIsLeaf);
  });
  test("treeMapWithPath", () => {
    expect(utils.treeMapWithPath((p: string | undefined) => p, tree)).toEqual(fx.mapWithPath);
    expect(utils.treeMapWithPath((p: string | undefined) => p, [1, { q: 2 }], [], { path: "root" })).toEqual(fx.mapWithPathPrefix);
  });
  test("treeReduce", () => {
    expect(utils.treeReduce((acc: number, v: number) => acc + v, tree, 0)).toBe(fx.reduce);
    expect(utils.treeReduce((acc: number, v: number) => acc * v, { a: [2, 3], b: 4 })).toBe(fx.reduceNoInit);
  });
  test("treeMerge", () => {
    expect(utils.treeMerge({ a: [1, {}], b: { c: 2 } }, { a: [{}, 3], b: { d: 4 }, e: 5 })).toEqual(fx.merge);
    expect(() => utils.treeMerge({ a: 1 }, { a: 2 })).toThrow("Trees contain elements at the same locations but no merge function was provided");
    expect(utils.treeMerge({ a: 1 }, { a: 2 }, (x: number, y: number) => x + y)).toEqual({ a: 3 });
    expect(() => utils.treeMerge([], {})).toThrow("Cannot merge list with dict");
  });
  test("the transforms' internal array flattening is unchanged", () => {
    const [v, g] = mx.valueAndGrad((p: { w: mx.Array[] }) => mx.sum(mx.multiply(p.w[0]!, p.w[1]!)))({ w: [mx.array([1, 2]), mx.array([3, 4])] });
    expect(v.item()).toBe(11);
    expect((g as { w: mx.Array[] }).w.map((a) => a.tolist())).toEqual([[3, 4], [1, 2]]);
  });
});
