// Shared test helpers.
import { expect } from "bun:test";
import * as mx from "../src/index.ts";

/** Run fn, expect it to throw an mx.MlxError whose message matches; return the error. */
export function expectMlxError(fn: () => unknown, pattern: RegExp): mx.MlxError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(mx.MlxError);
  expect((caught as Error).message).toMatch(pattern);
  return caught as mx.MlxError;
}
