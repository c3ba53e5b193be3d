/** The SDK's words in English, for the bundles that draw before (or without) a `welcome`:
 * the builder. The core gets every language's words from the server
 * (onboarding/sdk_strings.py; tests/onboarding/test_sdk_strings.py keeps the two equal). */
import type { Locale } from "./i18n";

export const EN: Locale = {
  tag: "en",
  dir: "",
  strings: ["Next", "Back", "Done", "\u2068{0} of {1}\u2069", "Close {0}", "Show me", "Activate: {0}", "Step {0}: {1}", "{0} complete", "Open hint", "Got it", "Close hint", " (done)", " (to do)", "Start", "Start: {0}", "{0}: done!", "Close message", "Survey", "Close survey", "Thank you!", "Skip", "Send", "Write an answer first.", "Choose an answer first.", "Not likely", "Very likely", "Announcement", "Dismiss banner", "Guide", "Dismiss guide", "Checklist", "{0}: all done!", "Help", "Help opens when the current tour or message closes.", "Search", "Search help", "Close help", "one:{0} result|other:{0} results", "No results", "Nothing matches “{0}”.", "{0} of {1} done", " (replay the tour)", "Read more ↗"],
};
