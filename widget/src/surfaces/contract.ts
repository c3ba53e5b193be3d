/**
 * The surfaces contract (issue 16): banners, empty-state guides, surveys, the resource center
 * and in-app messages all render from ONE lazy bundle, static/milepost/surfaces.js (built from
 * widget/src/surfaces/index.ts), which the core loads only when a user's content holds such an
 * item (or the first in-app message arrives). The core bundle knows nothing of the kinds.
 *
 * PAYLOAD. `welcome.content` and `content` pushes carry, next to walkthroughs/tooltips/
 * progress_bars, an object `surfaces` holding only the kinds this user has items of (the key
 * is absent when there are none; each list is ordered by priority, highest first):
 *   surfaces.banners          Banner[]   (onboarding, helper `surfaces`)
 *   surfaces.guides           Guide[]    (onboarding, helper `surfaces`)
 *   surfaces.surveys          Survey[]   (helper `surveys`)
 *   surfaces.resource_centers RC[]       (helper `rc`)
 * Every item has the common fields of `Common` below; each kind adds its own. The core hands
 * every such content (and every later one, once the bundle is loaded, so a publish that removes
 * the last banner clears it) to this bundle as `[host, "content", content]`, and each in-app
 * message push as `[host, "message", message]`.
 *
 * REGISTRY. A kind registers once, at module load, from its own module imported by index.ts:
 *   register("banners", { update(items, ctx) {...} })   // content kinds: the payload key
 *   register("message", { push(payload, ctx) {...} })   // push types
 * `update` is called with this kind's items (raw objects: validate what you read, see
 * `item()` in util.ts) on every content change AND every page change (SPA navigation), so
 * URL rules are re-evaluated there; an item no longer listed must be taken down.
 *
 * QUEUE ("one thing at a time", queue.ts). Anything that may cover the page claims a slot
 * through `ctx.queue`:
 *   const entry = { kind: "survey", key, priority, slot: "screen", show() {...}, hide() {...} };
 *   ctx.queue.want(entry)          // shows it now (calls show()) or makes it wait its turn
 *   ctx.queue.done(entry)          // the user closed it: the slot frees, the next one shows
 *   ctx.queue.drop(entry, reason)  // it no longer qualifies (page, publish): a waiting one is
 *                                  // reported as skipped; a shown one must be removed by you
 * Slots: "screen" (modals, popovers, message cards, the resource center panel: one at a time)
 * and "bar" (one banner at a time); neither shows while a tour step is on this page. Inline
 * guides take no slot (each lives inside its own host element). `hide()` is called when a tour
 * starts: take the view down and keep its state; `show()` comes again once the tour ends.
 * The queue tracks `$content_waiting` {kind, key, reason, behind} and `$content_skipped`
 * {kind, key, reason}; README "One thing at a time" states the rule.
 *
 * HOST. `ctx.host` is the core's controller: `host.track(name, props)` records an event (name
 * your own `$<kind>_shown`, `$<kind>_dismissed`, `$<kind>_clicked`, … with {key, version}),
 * `host.on(name, fn)` listens to any tracked event or `progress`/`ready`, `host.start(key)`
 * starts a walkthrough, `host.content` is the parsed content (walkthroughs, tooltips,
 * progress_bars), `host.journeys` the user's journeys with their milestones and percent,
 * `host.root` the shadow root (`root.layer` to draw in, `root.announce(text)` for screen
 * readers). Styles: constructable stylesheets only (see render/styles.ts, surfaces/styles.ts);
 * never a `style` attribute or element (strict CSP hosts).
 *
 * ELEMENT PRESENT. Any kind may carry `when_present` (a CSS selector): the item waits until
 * that element is on the page (at most `wait_timeout_ms`, then `$content_target_missing`
 * {kind, key, selector} is tracked, like a walkthrough's `$step_target_missing`), see
 * `present()` in util.ts.
 */
import type { Root } from "../render/dom";
import type { Content, JourneyView } from "../state";

/** The fields every surfaces item has, whatever its kind. */
export interface Common {
  key: string;
  version: number;
  priority: number;
  /** Path pattern (targeting.ts `urlMatches`); empty: every page. */
  page_url_pattern: string;
  /** A selector that must be on the page before the item shows; empty: no condition. */
  when_present: string;
  wait_timeout_ms: number;
}

export type Raw = Record<string, unknown>;

/** What the core's controller offers this bundle (widget/src/index.ts `Controller`). */
export interface Host {
  root: Root;
  content: Content;
  journeys: JourneyView[];
  tour: { walk: { key: string; priority: number; steps: { page_url_pattern: string }[] }; index: number } | null;
  held: boolean;
  freed?: () => void;
  track(name: string, properties?: Raw): void;
  on(name: string, handler: (payload: unknown) => void): () => void;
  start(key: string): void;
  render(): void;
}

export type Slot = "screen" | "bar";

export interface Entry {
  kind: string;
  key: string;
  priority: number;
  slot: Slot;
  /** Draw it: its turn has come (again, after a `hide()`). */
  show(): void;
  /** Take it down for now (a tour the user started takes the screen); keep its state. */
  hide?(): void;
}

export interface Queue {
  want(entry: Entry): void;
  done(entry: Entry): void;
  drop(entry: Entry, reason: string): void;
}

export interface Context {
  host: Host;
  queue: Queue;
}

export interface Renderer {
  /** This kind's items (content kinds), on every content change and page change. */
  update?(items: Raw[], ctx: Context): void;
  /** A push of this type (`message`). */
  push?(payload: Raw, ctx: Context): void;
}
