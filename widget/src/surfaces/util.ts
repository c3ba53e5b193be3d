/** Helpers every surfaces kind shares: reading an item's fields safely, the URL rule, and the
 * "element present" wait. */
import { urlMatches } from "../targeting";
import type { Common, Host, Raw } from "./contract";

const COMMON = { key: "", version: 0, priority: 0, page_url_pattern: "", when_present: "", wait_timeout_ms: 5000 };

/** Copy `defaults`' fields (plus the common ones) from `raw`, each of the default's type or the
 * default; null when it is not an object or has no key. */
export function item<T extends Common>(raw: unknown, defaults: Raw): T | null {
  if (typeof raw !== "object" || raw === null) return null;
  const out: Raw = {};
  for (const [field, fallback] of Object.entries({ ...COMMON, ...defaults })) {
    const value = (raw as Raw)[field];
    out[field] = typeof value === typeof fallback && value !== null ? value : fallback;
  }
  return out.key ? (out as T) : null;
}

/** Does this page match the item's URL rule. */
export const onPage = (common: Common): boolean =>
  urlMatches(common.page_url_pattern, location.pathname, location.search);

/** Call `found(element)` once `selector` matches an element (now or after the page adds it),
 * or report `$content_target_missing` after `timeoutMs` and give up. Answers a cancel
 * function. A selector that is not valid CSS is reported at once. */
export function present(
  host: Host,
  what: { kind: string; key: string; selector: string; timeoutMs: number },
  found: (element: Element) => void,
): () => void {
  const look = (): Element | null => {
    try {
      return document.querySelector(what.selector);
    } catch {
      return null;
    }
  };
  const now = look();
  if (now) {
    found(now);
    return () => {};
  }
  const observer = new MutationObserver(() => {
    const element = look();
    if (element) {
      cancel();
      found(element);
    }
  });
  const timer = setTimeout(() => {
    cancel();
    host.track("$content_target_missing", { kind: what.kind, key: what.key, selector: what.selector });
  }, what.timeoutMs);
  const cancel = (): void => {
    observer.disconnect();
    clearTimeout(timer);
  };
  observer.observe(document.documentElement, { childList: true, subtree: true });
  return cancel;
}
