import assert from "node:assert/strict";
import { test } from "node:test";
import type { Entry, Host } from "../src/surfaces/contract.ts";
import { Line, MAX_WAIT_MS } from "../src/surfaces/queue.ts";

(globalThis as { location?: unknown }).location = { pathname: "/app", search: "" };

/** The controller's side the queue uses: what it tracks, the tour on screen, its hooks. */
function host() {
  const handlers = new Map<string, (payload: unknown) => void>();
  const tracked: [string, Record<string, unknown>][] = [];
  let renders = 0;
  const h = {
    tour: null as Host["tour"],
    held: false,
    freed: undefined as undefined | (() => void),
    track: (name: string, props: Record<string, unknown> = {}) => tracked.push([name, props]),
    on: (name: string, fn: (payload: unknown) => void) => {
      handlers.set(name, fn);
      return () => {};
    },
    render: () => {
      renders++;
    },
  };
  return { h: h as unknown as Host, raw: h, tracked, emit: (name: string) => handlers.get(name)?.({}), renders: () => renders };
}

function entry(kind: string, key: string, slot: Entry["slot"], priority = 0, log: string[] = []): Entry {
  return { kind, key, priority, slot, show: () => log.push(`show ${key}`), hide: () => log.push(`hide ${key}`) };
}

const tourAt = (pattern: string): Host["tour"] => ({
  walk: { key: "welcome", priority: 0, steps: [{ page_url_pattern: pattern }] },
  index: 0,
});

test("one per slot; the next in line by priority, then kind, then arrival", () => {
  const { h, tracked } = host();
  const line = new Line(h);
  const log: string[] = [];
  const first = entry("message", "m1", "screen", 0, log);
  line.want(first);
  line.want(entry("banner", "b1", "bar", 0, log)); // another slot: shows beside it
  line.want(entry("message", "m2", "screen", 0, log));
  line.want(entry("survey", "s1", "screen", 0, log));
  line.want(entry("message", "m3", "screen", 5, log));
  assert.deepEqual(log, ["show m1", "show b1"]);
  assert.deepEqual(
    tracked.map(([, p]) => [p.key, p.reason, p.behind]),
    [["m2", "screen", "m1"], ["s1", "screen", "m1"], ["m3", "screen", "m1"]],
  );
  line.done(first);
  line.done(line.shown("screen")!);
  line.done(line.shown("screen")!);
  assert.deepEqual(log.slice(2), ["show m3", "show s1", "show m2"]);
});

test("a tour on this page holds every slot; its end lets the line move", () => {
  const { h, raw, tracked } = host();
  raw.tour = tourAt("/app");
  const line = new Line(h);
  const log: string[] = [];
  line.want(entry("message", "m1", "screen", 0, log));
  line.want(entry("banner", "b1", "bar", 0, log));
  assert.deepEqual(log, []);
  assert.deepEqual(tracked.map(([n, p]) => [n, p.key, p.reason, p.behind]), [
    ["$content_waiting", "m1", "walkthrough", "welcome"],
    ["$content_waiting", "b1", "walkthrough", "welcome"],
  ]);
  raw.tour = null;
  raw.freed!();
  assert.deepEqual(log, ["show m1", "show b1"]);
  assert.equal(raw.held, true); // the screen is held: no tour starts by itself now
});

test("a tour waiting on another page does not hold the screen", () => {
  const { h, raw } = host();
  raw.tour = tourAt("/elsewhere");
  const line = new Line(h);
  const log: string[] = [];
  line.want(entry("message", "m1", "screen", 0, log));
  assert.deepEqual(log, ["show m1"]);
});

test("a started tour sends what shows back into line; freeing the screen lets a tour start", () => {
  const { h, raw, emit, renders } = host();
  const line = new Line(h);
  const log: string[] = [];
  const m1 = entry("message", "m1", "screen", 0, log);
  line.want(m1);
  raw.tour = tourAt("");
  emit("$walkthrough_started");
  assert.deepEqual(log, ["show m1", "hide m1"]);
  assert.equal(raw.held, false);
  raw.tour = null;
  raw.freed!();
  assert.deepEqual(log, ["show m1", "hide m1", "show m1"]);
  line.done(m1);
  assert.equal(renders(), 1); // the core may start a tour that waited
});

test("dropped while waiting, or waiting too long: reported as skipped", (t) => {
  const { h, tracked } = host();
  const line = new Line(h);
  const first = entry("message", "m1", "screen");
  line.want(first);
  const waiting = entry("message", "m2", "screen");
  line.want(waiting);
  line.drop(waiting, "page");
  assert.deepEqual(tracked.at(-1), ["$content_skipped", { kind: "message", key: "m2", reason: "page" }]);
  const late = entry("survey", "s1", "screen");
  line.want(late);
  const now = Date.now();
  t.mock.method(Date, "now", () => now + MAX_WAIT_MS + 1);
  line.done(first);
  assert.deepEqual(tracked.at(-1), ["$content_skipped", { kind: "survey", key: "s1", reason: "timeout" }]);
  assert.equal(line.shown("screen"), undefined);
});

test("a tour started for another page gives the screen straight back", () => {
  const { h, raw, emit } = host();
  const line = new Line(h);
  const log: string[] = [];
  line.want(entry("message", "m1", "screen", 0, log));
  raw.tour = tourAt("/elsewhere");
  emit("$walkthrough_started");
  assert.deepEqual(log, ["show m1", "hide m1", "show m1"]);
});
