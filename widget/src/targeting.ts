/** What only the browser can decide: does the current page match a content's URL pattern.
 * A pattern is a path such as `/campaigns/*`; `*` matches any run of characters, an empty
 * pattern matches every page, a trailing slash is optional, and the query string is ignored
 * unless the pattern has one. */
const cache = new Map<string, RegExp>();

function compile(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    const body = pattern
      .replace(/\/+$/, "")
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    re = new RegExp(`^${body}/?$`);
    cache.set(pattern, re);
  }
  return re;
}

export function urlMatches(pattern: string | undefined, path: string, search = ""): boolean {
  if (!pattern) return true;
  const subject = pattern.includes("?") ? path + search : path;
  return compile(pattern).test(subject);
}

/** Content sorted by priority (higher first), ties by key, as the server sends it. */
export function byPriority<T extends { priority: number; key: string }>(items: T[]): T[] {
  return [...items].sort((a, b) => b.priority - a.priority || (a.key < b.key ? -1 : 1));
}

/** Whether the SDK may follow a link (a call to action, a checklist item): an http(s) URL or
 * a path on this site, never `javascript:`, `data:` or a protocol-relative `//` or `/\`
 * address, whatever the server sent (defence in depth). A value that is not a string reads
 * as its text, which then has to pass the same test. */
export const safeLink = (url: unknown): url is string => /^(https?:|\/[^/\\])/i.test(url as string);
