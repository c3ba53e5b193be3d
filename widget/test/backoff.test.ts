import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay } from "../src/backoff.ts";

test("delays grow exponentially and stop at the ceiling", () => {
  const middle = () => 0.5;
  const delays = [0, 1, 2, 3, 10, 50].map((attempt) => backoffDelay(attempt, 0, middle));
  assert.deepEqual(delays, [375, 750, 1500, 3000, 22500, 22500]);
});

test("jitter keeps every delay between half and all of its step", () => {
  assert.equal(backoffDelay(2, 0, () => 0), 1000);
  assert.equal(backoffDelay(2, 0, () => 0.999999), 2000);
});

test("two tabs with different random draws do not reconnect in the same instant", () => {
  assert.notEqual(backoffDelay(4, 0, () => 0.1), backoffDelay(4, 0, () => 0.9));
});

test("a server's retry_after is waited at least, spread up to twice, however early the attempt", () => {
  for (const attempt of [0, 1, 3]) {
    assert.equal(backoffDelay(attempt, 5000, () => 0), 5000);
    assert.equal(backoffDelay(attempt, 5000, () => 0.999999), 10000);
  }
  assert.notEqual(backoffDelay(0, 5000, () => 0.2), backoffDelay(0, 5000, () => 0.7));
});

test("a retry_after shorter than the backoff leaves the backoff as it was", () => {
  assert.equal(backoffDelay(10, 1000, () => 0.5), 22500);
});
