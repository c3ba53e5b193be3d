import assert from "node:assert/strict";
import { test } from "node:test";
import { byPriority, safeLink, urlMatches } from "../src/targeting.ts";

test("an empty pattern matches every page", () => {
  assert.ok(urlMatches("", "/anything"));
});

test("a plain path matches itself, with or without a trailing slash, and nothing longer", () => {
  assert.ok(urlMatches("/dashboard", "/dashboard"));
  assert.ok(urlMatches("/dashboard", "/dashboard/"));
  assert.ok(urlMatches("/dashboard/", "/dashboard"));
  assert.ok(!urlMatches("/dashboard", "/dashboard/settings"));
  assert.ok(!urlMatches("/dashboard", "/old-dashboard"));
});

test("a star matches any run of characters, including slashes", () => {
  assert.ok(urlMatches("/campaigns/*", "/campaigns/42"));
  assert.ok(urlMatches("/campaigns/*", "/campaigns/42/edit"));
  assert.ok(urlMatches("/*/settings", "/team/settings"));
  assert.ok(!urlMatches("/campaigns/*", "/contacts/1"));
});

test("regular-expression characters in a pattern are literal", () => {
  assert.ok(urlMatches("/a.b", "/a.b"));
  assert.ok(!urlMatches("/a.b", "/axb"));
  assert.ok(urlMatches("/(x)", "/(x)"));
});

test("the query string counts only when the pattern has one", () => {
  assert.ok(urlMatches("/search", "/search", "?q=1"));
  assert.ok(urlMatches("/search?tab=*", "/search", "?tab=people"));
  assert.ok(!urlMatches("/search?tab=*", "/search", ""));
});

test("content is ordered by priority, then key", () => {
  const items = [
    { key: "b", priority: 0 },
    { key: "a", priority: 0 },
    { key: "z", priority: 5 },
  ];
  assert.deepEqual(byPriority(items).map((i) => i.key), ["z", "a", "b"]);
});

test("only http(s) links and paths of this site are followed, never javascript: or data: ones", () => {
  assert.ok(safeLink("/billing"));
  assert.ok(safeLink("https://docs.example.com/x"));
  assert.ok(safeLink("HTTP://docs.example.com/x"));
  for (const bad of ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)",
    "data:text/html,x", "vbscript:x", "//evil.example/x", "/\\evil.example/x", "", null, 42]) {
    assert.equal(safeLink(bad), false, String(bad));
  }
});
