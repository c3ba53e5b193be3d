/** Selectors that survive the host app's next deploy, for the element the author picked.
 *
 * Preference, first unique match wins: a test/tour data attribute (`data-tour`, `data-testid`,
 * `data-test`, `data-cy`, `data-qa`), a stable id, an ARIA label, a form field's name, a link's
 * path; then the same scoped inside the nearest ancestor that has one; then @medv/finder
 * restricted to stable names (hashed class names such as `css-1q2w3e`, `Button_root__x7Yz2`
 * and generated ids such as `:r3:` or `ember482` are never used), bounded in time and in checks
 * because it can take seconds on a large page; last, a plain path of tags. CSS has no text
 * selector (`:contains` is not CSS), so text is not used. */
import { finder } from "@medv/finder";

export const TEST_ATTRIBUTES = ["data-tour", "data-testid", "data-test-id", "data-test", "data-cy", "data-qa"];
const LABELS = ["aria-label", "name", "title", "placeholder"];
/** @medv/finder's own guards: past either, it falls back to a positional path. */
export const FINDER_LIMITS = { timeoutMs: 250, maxNumberOfPathChecks: 2000 };

/** A name a build tool made up: digits mixed into letters, a run of digits, a colon (React's
 * `:r3:`), a leading underscore, or a short segment in mixed case (`sc-bdVaJa`). */
export function looksGenerated(name: string): boolean {
  if (/\d{3,}|:|^_|__/.test(name)) return true;
  return name
    .split(/[-_]+/)
    .some(
      (part) =>
        (/\d/.test(part) && /[a-z]/i.test(part)) ||
        /[^aeiouy\d\W]{5,}/i.test(part) ||
        (part.length <= 8 && /[a-z][A-Z].*[A-Z]/.test(part)),
    );
}

/** Ids with any digit are left out: `react-aria-77`, `radix-12` and `headlessui-menu-3` are
 * counters that change with the render order. */
const stableId = (id: string): boolean => /^[a-z][a-z_-]*$/i.test(id) && !looksGenerated(id);
const stableClass = (name: string): boolean => /^[a-z][a-z-]{2,}$/i.test(name) && !looksGenerated(name);
const stableValue = (value: string): boolean =>
  value.length > 0 && value.length <= 60 && !/\d{4,}/.test(value) && !/[\n"\\]/.test(value);

/** Count the page's elements a selector matches (the widget's own live in a shadow root and
 * never count); an invalid selector answers -1. */
export function matchCount(selector: string): number {
  try {
    return document.querySelectorAll(selector).length;
  } catch {
    return -1;
  }
}

const unique = (selector: string, el: Element): boolean => {
  try {
    const found = document.querySelectorAll(selector);
    return found.length === 1 && found[0] === el;
  } catch {
    return false;
  }
};

/** Inside double quotes only `"`, `\` and line breaks need escaping, and stableValue()
 * already refused those: the value reads as the author wrote it. */
const attribute = (tag: string, name: string, value: string): string => `${tag}[${name}="${value}"]`;

/** The element's own stable handles, best first. */
function handles(el: Element): string[] {
  const tag = el.tagName.toLowerCase();
  const out: string[] = [];
  for (const name of TEST_ATTRIBUTES) {
    const value = el.getAttribute(name);
    if (value && stableValue(value)) out.push(attribute("", name, value));
  }
  if (el.id && stableId(el.id)) out.push(`#${CSS.escape(el.id)}`);
  for (const name of LABELS) {
    const value = el.getAttribute(name);
    if (value && stableValue(value) && !looksGenerated(value.replace(/\s+/g, "-"))) {
      out.push(attribute(tag, name, value));
    }
  }
  const href = el.getAttribute("href");
  if (tag === "a" && href && /^\/[\w/-]{0,60}$/.test(href)) out.push(attribute(tag, "href", href));
  const role = el.getAttribute("role");
  if (role && /^[a-z]+$/.test(role)) out.push(`${tag}[role="${role}"]`);
  return out;
}

function finderSelector(el: Element): string | null {
  try {
    return finder(el, {
      idName: stableId,
      className: stableClass,
      attr: (name, value) =>
        (TEST_ATTRIBUTES.includes(name) || LABELS.includes(name) || name === "role") &&
        stableValue(value),
      seedMinLength: 1,
      optimizedMinLength: 2,
      ...FINDER_LIMITS,
    });
  } catch {
    return null;
  }
}

/** `tag:nth-of-type(n)` steps from the nearest ancestor with a stable handle (or body). */
function path(el: Element): string {
  const parts: string[] = [];
  let node: Element | null = el;
  while (node && node !== document.body && node !== document.documentElement) {
    const own = handles(node).find((handle) => unique(handle, node!));
    if (own) {
      parts.unshift(own);
      return parts.join(" > ");
    }
    const tag: string = node.tagName.toLowerCase();
    const siblings: Element[] = node.parentElement ? [...node.parentElement.children] : [];
    const same = siblings.filter((s) => s.tagName === node!.tagName);
    parts.unshift(same.length > 1 ? `${tag}:nth-of-type(${same.indexOf(node) + 1})` : tag);
    node = node.parentElement;
  }
  return parts.join(" > ");
}

/** The best selector for `el` on this page (see the module's docstring). */
export function selectorFor(el: Element): string {
  const own = handles(el);
  for (const handle of own) if (unique(handle, el)) return handle;
  const tag = el.tagName.toLowerCase();
  const local = own.length ? own : [tag];
  for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
    const anchor = handles(node).find((handle) => unique(handle, node!));
    if (!anchor) continue;
    for (const handle of local) {
      const scoped = `${anchor} ${handle}`;
      if (unique(scoped, el)) return scoped;
    }
    break;
  }
  const found = finderSelector(el);
  if (found && unique(found, el) && !/:nth-child\(\d+\) > .*:nth-child/.test(found)) return found;
  const fallback = path(el);
  return unique(fallback, el) ? fallback : (found ?? fallback);
}
