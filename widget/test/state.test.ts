import assert from "node:assert/strict";
import { test } from "node:test";
import {
  newlyCompleted,
  parseContent,
  parseJourney,
  parseJourneys,
  sequenceCheck,
  tourState,
  withJourney,
} from "../src/state.ts";

const step = { id: 1, title: "Welcome", selector: "", advance_on: "next" };

test("well-formed content is kept with defaults for what is missing", () => {
  const { content, errors } = parseContent({
    walkthroughs: [{ key: "tour", name: "Tour", steps: [step], state: { status: "in_progress", step: 2, attempt: 3 } }],
    tooltips: [{ key: "tip", selector: "#help", body_html: "<p>Hi</p>" }],
    progress_bars: [{ key: "bar", journey: "trial", items: [{ milestone: "m1", action: "open_url", url: "/x" }] }],
  });
  assert.deepEqual(errors, []);
  assert.equal(content.walkthroughs[0]!.steps[0]!.wait_timeout_ms, 5000);
  assert.equal(content.walkthroughs[0]!.auto_start, true);
  assert.deepEqual(content.walkthroughs[0]!.state, { status: "in_progress", step: 2, attempt: 3 });
  assert.equal(content.tooltips[0]!.trigger, "hotspot");
  assert.equal(content.progress_bars[0]!.items[0]!.url, "/x");
});

test("malformed pieces are dropped and named, the rest still shows", () => {
  const { content, errors } = parseContent({
    walkthroughs: [{ key: "empty", steps: [] }, { name: "no key", steps: [step] }, { key: "ok", steps: [step] }],
    tooltips: ["nonsense", { key: "tip" }],
    progress_bars: null,
  });
  assert.deepEqual(content.walkthroughs.map((w) => w.key), ["ok"]);
  assert.deepEqual(content.tooltips, []);
  assert.deepEqual(errors, [
    "walkthroughs[0]: no steps",
    "walkthroughs[1]: missing key",
    "tooltips[0]: not an object",
    "tooltips[1]: missing selector",
  ]);
});

test("a field of the wrong type or an unknown placement takes the default", () => {
  const { content } = parseContent({
    walkthroughs: [{ key: "t", steps: [{ ...step, placement: "diagonal", wait_timeout_ms: "soon" }] }],
  });
  assert.equal(content.walkthroughs[0]!.steps[0]!.placement, "auto");
  assert.equal(content.walkthroughs[0]!.steps[0]!.wait_timeout_ms, 5000);
});

test("content that is not an object is an error, not an exception", () => {
  const { content, errors } = parseContent("oops");
  assert.equal(content.walkthroughs.length, 0);
  assert.equal(errors.length, 1);
});

const journey = (done: string[]) => ({
  journey: { key: "trial", name: "Trial" },
  milestones: ["a", "b", "c", "d"].map((key) => ({
    key,
    name: key.toUpperCase(),
    completed_at: done.includes(key) ? "2025-01-01T00:00:00Z" : null,
  })),
  percent: done.length * 25,
});

test("a progress push parses into the journey with its milestones and percent", () => {
  const parsed = parseJourney(journey(["a"]))!;
  assert.equal(parsed.key, "trial");
  assert.equal(parsed.percent, 25);
  assert.deepEqual(parsed.milestones.map((m) => m.completedAt !== null), [true, false, false, false]);
});

test("journeys without a key are ignored", () => {
  assert.deepEqual(parseJourneys([{ milestones: [] }, 3, journey([])]).length, 1);
});

test("the newly completed milestones are the ones to celebrate", () => {
  const before = parseJourney(journey(["a"]))!;
  const after = parseJourney(journey(["a", "c"]))!;
  assert.deepEqual(newlyCompleted(before, after), ["C"]);
  assert.deepEqual(withJourney([before], after), [after]);
});

test("sequence numbers: next applies, old is stale, a jump is a gap to resync", () => {
  assert.equal(sequenceCheck(4, 5), "apply");
  assert.equal(sequenceCheck(4, 4), "stale");
  assert.equal(sequenceCheck(4, 7), "gap");
  assert.equal(sequenceCheck(0, 7), "apply");
  assert.equal(sequenceCheck(4, undefined), "apply");
});

test("a walkthrough state from a push keeps its attempt; a missing one is none", () => {
  assert.deepEqual(tourState({ status: "dismissed", step: 1, attempt: 2 }), { status: "dismissed", step: 1, attempt: 2 });
  assert.deepEqual(tourState({ status: "completed" }), { status: "completed", step: 0, attempt: 0 });
  assert.equal(tourState(null), null);
});
