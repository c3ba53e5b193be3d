import assert from "node:assert/strict";
import { test } from "node:test";
import { Outbox, type QueuedEvent, uuid } from "../src/queue.ts";

class MemoryStorage implements Storage {
  data = new Map<string, string>();
  failWrites = false;
  get length() {
    return this.data.size;
  }
  clear() {
    this.data.clear();
  }
  getItem(key: string) {
    return this.data.get(key) ?? null;
  }
  key(index: number) {
    return [...this.data.keys()][index] ?? null;
  }
  removeItem(key: string) {
    this.data.delete(key);
  }
  setItem(key: string, value: string) {
    if (this.failWrites) throw new DOMException("full", "QuotaExceededError");
    this.data.set(key, value);
  }
}

const event = (id: string): QueuedEvent => ({
  id,
  name: "clicked",
  timestamp: "2025-01-01T00:00:00Z",
  properties: {},
});

test("queued events survive a reload (a new outbox on the same storage)", () => {
  const storage = new MemoryStorage();
  new Outbox(storage, "k").add(event("1"));
  assert.deepEqual(new Outbox(storage, "k").all().map((e) => e.id), ["1"]);
});

test("only acknowledged events leave the outbox", () => {
  const outbox = new Outbox(new MemoryStorage(), "k");
  ["1", "2", "3"].forEach((id) => outbox.add(event(id)));
  outbox.ack(["1", "3"]);
  assert.deepEqual(outbox.all().map((e) => e.id), ["2"]);
});

test("an event in flight is not sent twice until its ack is overdue", () => {
  let now = 0;
  const outbox = new Outbox(new MemoryStorage(), "k", { resendAfterMs: 1000, now: () => now });
  outbox.add(event("1"));
  assert.equal(outbox.take().length, 1);
  assert.equal(outbox.take().length, 0);
  now = 1500;
  assert.deepEqual(outbox.take().map((e) => e.id), ["1"]);
});

test("after a disconnect everything unacknowledged is sent again at once", () => {
  const outbox = new Outbox(new MemoryStorage(), "k");
  outbox.add(event("1"));
  outbox.take();
  outbox.retryAll();
  assert.equal(outbox.take().length, 1);
});

test("two tabs appending to the same storage keep each other's events", () => {
  const storage = new MemoryStorage();
  const tabA = new Outbox(storage, "k");
  const tabB = new Outbox(storage, "k");
  tabA.add(event("a"));
  tabB.add(event("b"));
  tabA.add(event("c"));
  assert.deepEqual(tabB.all().map((e) => e.id), ["a", "b", "c"]);
  tabB.ack(["a"]);
  assert.deepEqual(tabA.all().map((e) => e.id), ["b", "c"]);
});

test("the outbox is bounded: past the limit the oldest events are dropped and reported", () => {
  const told: number[] = [];
  const outbox = new Outbox(new MemoryStorage(), "k", { limit: 3, onOverflow: (n) => told.push(n) });
  ["1", "2", "3", "4", "5"].forEach((id) => outbox.add(event(id)));
  assert.deepEqual(outbox.all().map((e) => e.id), ["3", "4", "5"]);
  assert.deepEqual(told, [1, 1]);
});

test("full storage falls back to memory, says so once, and loses nothing", () => {
  const storage = new MemoryStorage();
  const errors: unknown[] = [];
  const outbox = new Outbox(storage, "k", { onStorageError: (e) => errors.push(e) });
  outbox.add(event("1"));
  storage.failWrites = true;
  outbox.add(event("2"));
  outbox.add(event("3"));
  assert.equal(errors.length, 1);
  assert.deepEqual(outbox.take().map((e) => e.id), ["1", "2", "3"]);
});

test("no storage at all still queues in memory", () => {
  const outbox = new Outbox(null, "k");
  outbox.add(event("1"));
  assert.equal(outbox.all().length, 1);
});

test("corrupt stored data is treated as an empty outbox", () => {
  const storage = new MemoryStorage();
  storage.setItem("k", "{not json");
  const outbox = new Outbox(storage, "k", { onStorageError: () => undefined });
  outbox.add(event("1"));
  assert.deepEqual(outbox.all().map((e) => e.id), ["1"]);
});

test("event ids are distinct version 4 UUIDs", () => {
  const ids = new Set(Array.from({ length: 200 }, uuid));
  assert.equal(ids.size, 200);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});
