import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay } from "../src/backoff.ts";

test("delays grow exponentially and stop at the ceiling", () => {
  const middle = () => 0.5;
  const delays = [0, 1, 2, 3, 10, 50].map((attempt) => backoffDelay(attempt, middle));
  assert.deepEqual(delays, [375, 750, 1500, 3000, 22500, 22500]);
});

test("jitter keeps every delay between half and all of its step", () => {
  assert.equal(backoffDelay(2, () => 0), 1000);
  assert.equal(backoffDelay(2, () => 0.999999), 2000);
});

test("two tabs with different random draws do not reconnect in the same instant", () => {
  assert.notEqual(backoffDelay(4, () => 0.1), backoffDelay(4, () => 0.9));
});
