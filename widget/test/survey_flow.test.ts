import assert from "node:assert/strict";
import { test } from "node:test";
import { band, next, questions } from "../src/surfaces/survey_flow.ts";

const all = questions([
  { key: "score", type: "nps", prompt: "Recommend us?", follow_up: { detractor: "fix", promoter: "love" } },
  { key: "fix", type: "text", prompt: "What should we fix?" },
  { key: "love", type: "single_choice", prompt: "What do you like?", choices: ["Speed", "Reports"] },
  { key: "stars", type: "rating", prompt: "Rate the editor", scale: 5 },
  { key: "bad", type: "smiley", prompt: "dropped" },
  { key: "nochoices", type: "single_choice", prompt: "dropped" },
]);
const keyOf = (q: { key: string } | null): string | null => q?.key ?? null;

test("malformed questions are dropped", () => {
  assert.deepEqual(all.map((q) => q.key), ["score", "fix", "love", "stars"]);
});

test("the bands are 0-6, 7-8, 9-10", () => {
  assert.deepEqual([0, 6, 7, 8, 9, 10].map(band), ["detractor", "detractor", "passive", "passive", "promoter", "promoter"]);
});

test("a detractor gets the detractor follow-up, then the rest without the promoter's", () => {
  const first = next(all, null);
  assert.equal(keyOf(first), "score");
  const followUp = next(all, first, 3);
  assert.equal(keyOf(followUp), "fix");
  assert.equal(keyOf(next(all, followUp, "Too slow")), "stars");
});

test("a promoter gets the promoter follow-up; a passive none", () => {
  const score = all[0]!;
  assert.equal(keyOf(next(all, score, 9)), "love");
  assert.equal(keyOf(next(all, all[2]!, "Speed")), "stars");
  assert.equal(keyOf(next(all, score, 7)), "stars");
});

test("after the last question the survey is done", () => {
  assert.equal(next(all, all[3]!, 4), null);
});
