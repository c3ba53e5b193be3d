/** Empty-state guides: a block of words (title, body, call to action, close button) placed
 * INSIDE a host element (`selector`), in a shadow root of its own (`<milepost-guide>`, the
 * element's last child), no overlay. It waits for the element like a walkthrough step waits
 * for its target (`wait_timeout_ms`, then `$content_target_missing` {kind, key, selector}),
 * after the element-present trigger's element (`when_present`) when it has one,
 * and looks again after every navigation inside the app. One guide per element: the highest
 * priority wins, the others are reported as `$content_skipped` {reason: "element_taken"}.
 * Guides take no slot in the queue (they cover nothing). Tracks `$guide_viewed`,
 * `$guide_clicked`, `$guide_dismissed` {guide, version}. */
import { S, t } from "../i18n";
import { h } from "../render/dom";
import { safeLink } from "../targeting";
import type { Common, Context, Raw } from "./contract";
import { register } from "./index";
import { body, direction, GUIDE_CSS, shadowed } from "./styles";
import { item, onPage, present } from "./util";

interface Guide extends Common {
  selector: string;
  title: string;
  body_html: string;
  cta_label: string;
  cta_url: string;
  dismissible: boolean;
}

const GUIDE = { selector: "", title: "", body_html: "", cta_label: "", cta_url: "", dismissible: true };

interface Placed {
  guide: Guide;
  element: HTMLElement | null;
  cancel: () => void;
  closed: boolean;
}

const placed = new Map<string, Placed>();
const skipped = new Set<string>();

function remove(p: Placed): void {
  p.cancel();
  p.element?.remove();
  p.element = null;
}

function place(guide: Guide, { host }: Context): Placed {
  const props = { guide: guide.key, version: guide.version };
  const p: Placed = { guide, element: null, cancel: () => {}, closed: false };
  const close = (name: string): void => {
    host.track(name, props);
    p.closed = true;
    remove(p);
  };
  const wait = (selector: string, found: (element: Element) => void): void => {
    p.cancel = present(host, { kind: "guide", key: guide.key, selector, timeoutMs: guide.wait_timeout_ms }, found);
  };
  // The element-present trigger first (when set), then the host element itself.
  const placeIn = (): void =>
    wait(guide.selector, (target) => {
      const { element, inner } = shadowed(host, "milepost-guide", GUIDE_CSS);
      const titleId = `mpg-${guide.key}`;
      inner.append(
        h(
          "div",
          { class: "gd", role: "region", "aria-labelledby": guide.title ? titleId : undefined, "aria-label": guide.title ? undefined : t(S.Guide), dir: direction() },
          guide.title && h("h2", { id: titleId }, guide.title),
          body(guide.body_html),
          guide.cta_label &&
            h(
              "button",
              {
                type: "button",
                class: "p",
                onclick: () => {
                  close("$guide_clicked");
                  if (safeLink(guide.cta_url)) location.assign(guide.cta_url);
                },
              },
              guide.cta_label,
            ),
          guide.dismissible &&
            h("button", { type: "button", class: "x", "aria-label": t(S.DismissGuide), onclick: () => close("$guide_dismissed") }, "×"),
        ),
      );
      target.append(element);
      p.element = element;
      host.track("$guide_viewed", props);
    });
  if (guide.when_present) wait(guide.when_present, placeIn);
  else placeIn();
  return p;
}

function update(items: Raw[], ctx: Context): void {
  const wanted = new Map<string, Guide>();
  const taken = new Set<string>();
  for (const raw of items) {
    const guide = item<Guide>(raw, GUIDE);
    if (!guide || !guide.selector || !onPage(guide)) continue;
    if (taken.has(guide.selector)) {
      if (!skipped.has(guide.key)) ctx.host.track("$content_skipped", { kind: "guide", key: guide.key, reason: "element_taken" });
      skipped.add(guide.key);
      continue;
    }
    taken.add(guide.selector);
    wanted.set(guide.key, guide);
  }
  for (const [key, p] of placed) {
    const next = wanted.get(key);
    const same = next && JSON.stringify(next) === JSON.stringify(p.guide);
    // Kept: closed on this page, or shown and still in the page (a navigation may have
    // replaced the element it lived in: then it is placed again).
    if (same && (p.closed || p.element?.isConnected)) continue;
    remove(p);
    placed.delete(key);
  }
  for (const [key, guide] of wanted) if (!placed.has(key)) placed.set(key, place(guide, ctx));
}

register("guides", { update });
