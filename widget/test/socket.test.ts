import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import type { QueuedEvent } from "../src/queue.ts";
import { type Message, Transport } from "../src/socket.ts";

/** The browser's WebSocket as the transport uses it; the test plays the server. */
class ServerSide {
  static last: ServerSide;
  readyState = 0;
  sent: Message[] = [];
  onopen?: () => void;
  onmessage?: (event: { data: string }) => void;
  onclose?: () => void;
  constructor() {
    ServerSide.last = this;
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
    this.onclose?.();
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  answer(message: Message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  events(): string[] {
    return this.sent.filter((m) => m.type === "events").flatMap((m) => (m.events as QueuedEvent[]).map((e) => e.id));
  }
}

const event = (id: string): QueuedEvent => ({ id, name: "clicked", timestamp: "2025-01-01T00:00:00Z", properties: {} });
const refusal = { type: "error", code: "rate_limited", message: "slow down", retry_after: 5 };

beforeEach(() => {
  mock.timers.enable({ apis: ["setTimeout"] });
  Object.assign(globalThis, { WebSocket: ServerSide, addEventListener() {}, removeEventListener() {} });
});

afterEach(() => {
  mock.timers.reset();
});

/** A transport whose socket has been welcomed; `ready` counts the calls to flush the outbox. */
function welcomed() {
  const calls = { ready: 0, errors: [] as unknown[] };
  const transport = new Transport("http://milepost.test", "pk_test", () => ({
    user: { id: "u1", traits: {} },
    page: { url: "http://app.test/", title: "App" },
    sdk: "test",
    session: "s1",
  }), {
    onMessage: (message) => message.type === "error" && calls.errors.push(message.code),
    onReady: () => calls.ready++,
  });
  transport.start();
  const socket = ServerSide.last;
  socket.open();
  socket.answer({ type: "welcome" });
  assert.equal(calls.ready, 1);
  return { transport, socket, calls };
}

test("a rate_limited refusal holds events until its retry_after, then asks for one flush", () => {
  const { transport, socket, calls } = welcomed();
  transport.sendEvents([event("1")]);
  transport.sendEvents([event("2")]);
  socket.answer(refusal);
  socket.answer(refusal);  // both messages were refused: still one retry
  transport.sendEvents([event("3")]);  // tracked meanwhile: waits for the retry
  assert.deepEqual(socket.events(), ["1", "2"]);
  assert.deepEqual(calls.errors, ["rate_limited", "rate_limited"]);

  mock.timers.tick(4999);
  assert.equal(calls.ready, 1, "no retry before retry_after");
  mock.timers.tick(5001);  // the jittered delay is at most twice retry_after
  assert.equal(calls.ready, 2, "one flush of everything unacknowledged");
  mock.timers.tick(60_000);
  assert.equal(calls.ready, 2, "no loop");

  transport.sendEvents([event("1"), event("2"), event("3")]);
  assert.deepEqual(socket.events(), ["1", "2", "1", "2", "3"]);
});

test("refused again after its retry, the transport waits at least retry_after again", () => {
  const { transport, socket, calls } = welcomed();
  transport.sendEvents([event("1")]);
  socket.answer(refusal);
  mock.timers.tick(10_000);
  assert.equal(calls.ready, 2);
  transport.sendEvents([event("1")]);
  socket.answer(refusal);
  mock.timers.tick(4999);
  assert.equal(calls.ready, 2);
  mock.timers.tick(5001);
  assert.equal(calls.ready, 3);
});

test("backlog_full refusals with acks between them each wait only their retry_after, however many", (t) => {
  t.mock.method(Math, "random", () => 0.999);  // the longest jittered wait
  const { transport, socket, calls } = welcomed();
  const full = { type: "error", code: "backlog_full", message: "wait", retry_after: 1 };
  for (let n = 1; n <= 8; n++) {
    transport.sendEvents([event(String(n))]);
    socket.answer(full);
    mock.timers.tick(999);
    assert.equal(calls.ready, n, `refusal ${n}: no retry before retry_after`);
    mock.timers.tick(1001);
    assert.equal(calls.ready, n + 1, `refusal ${n}: retried within twice retry_after`);
    transport.sendEvents([event(String(n))]);
    socket.answer({ type: "ack", accepted: [String(n)], duplicates: [], rejected: [] });
  }
  // Refused again and again with no ack between: the waits grow again.
  const waits = [];
  for (let n = 0; n < 4; n++) {
    socket.answer(full);
    let waited = 0;
    for (const ready = calls.ready; calls.ready === ready; waited += 100) mock.timers.tick(100);
    waits.push(waited);
  }
  assert.deepEqual(waits, [2000, 2000, 2000, 4000]);
});

test("a closed transport does not flush after a refusal's wait", () => {
  const { transport, socket, calls } = welcomed();
  socket.answer(refusal);
  transport.close();
  mock.timers.tick(10_000);
  assert.equal(calls.ready, 1);
});

test("an unavailable before the welcome holds nothing: the reconnect's welcome flushes at once", () => {
  const { transport, socket: first, calls } = welcomed();
  first.close();  // a restart: the next socket is told `unavailable` and closed
  mock.timers.tick(30_000);
  const second = ServerSide.last;
  assert.notEqual(second, first);
  second.open();
  second.answer({ type: "error", code: "unavailable", message: "down", retry_after: 5 });
  second.close();
  mock.timers.tick(4999);
  assert.equal(ServerSide.last, second, "no reconnect before retry_after");
  mock.timers.tick(5001);
  const third = ServerSide.last;
  assert.notEqual(third, second);
  third.open();
  third.answer({ type: "welcome" });
  assert.equal(calls.ready, 2);
  transport.sendEvents([event("1")]);
  assert.deepEqual(third.events(), ["1"]);
  mock.timers.tick(60_000);
  assert.equal(calls.ready, 2, "no retry was pending");
});
