import assert from "node:assert/strict";
import { test } from "node:test";

// The SDK reads its words from `window`; Node has none.
(globalThis as { window?: unknown }).window = globalThis;
const { S, setLocale, t } = await import("../src/i18n.ts");
const { EN } = await import("../src/strings-en.ts");

test("the words come from the locale the server sent, placeholders filled in", () => {
  setLocale(EN);
  assert.equal(t(S.Next), "Next");
  assert.equal(t(S.Close, "Welcome tour"), "Close Welcome tour");
  assert.equal(t(S.Of, 2, 4), "\u20682 of 4\u2069");
});

test("numbers are formatted by Intl for the language", () => {
  setLocale({ tag: "ar-EG", strings: EN.strings!.map((s, i) => (i === S.Of ? "{0} من {1}" : s)) });
  assert.equal(t(S.Of, 2, 4), `${(2).toLocaleString("ar-EG")} من ${(4).toLocaleString("ar-EG")}`);
  setLocale({ tag: "de", strings: EN.strings });
  assert.equal(t(S.Of, 12345, 2), "\u206812.345 of 2\u2069");
});
