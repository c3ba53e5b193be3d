/** The "element present" trigger for the core's kinds (walkthroughs, tooltips), kept here so
 * the core bundle pays nothing for it (README "Element present"). The server sends, in
 * `surfaces.present`, one item per walkthrough or tooltip whose `when_present` must be on the
 * page first (onboarding/targeting.py):
 *   {kind: "walkthrough", key, priority, page_url_pattern (its first step's), when_present,
 *    wait_timeout_ms}: the walkthrough itself comes with `auto_start: false`; once the
 *    element is there it starts by itself, as the core would have started it: when no tour is
 *    on and nothing holds the screen (else when the tour ends or the screen frees);
 *   {kind: "tooltip", …, tooltip}: the tooltip goes into the core's content only while its
 *    element is on the page (looked for again after every navigation inside the app).
 * Each waits like a step's target (`present()` in util.ts): at most `wait_timeout_ms`, then
 * `$content_target_missing` {kind, key, selector}. */
import type { Tooltip } from "../state";
import type { Common, Context, Host, Raw } from "./contract";
import { register } from "./index";
import { item, onPage, present } from "./util";

interface Trigger extends Common {
  kind: string;
  tooltip: Raw;
}

const DEFAULTS = { kind: "", tooltip: {} };

/** Per key: the cancel of its wait, and whether its element was found on this page. */
const waits = new Map<string, { trigger: string; cancel: () => void; found: boolean }>();
/** Walkthroughs this trigger started (or saw started) in this page's life: not again here; the
 * server's frequency decides for the next page load. */
const started = new Set<string>();
/** Found, waiting for the screen: walkthrough keys in priority order. */
let ready: string[] = [];
/** A tooltip found while a tour was on: the core renders again when the tour ends. */
let pending = false;

function tryStart(host: Host): void {
  if (host.tour || host.held) return;
  const key = ready.shift();
  if (!key) return;
  started.add(key);
  host.start(key);
}

const TOOLTIP = { selector: "", body_html: "", trigger: "hotspot", placement: "auto" };

/** The tooltip as the core reads it (state.ts `Tooltip`), or undefined when it has no target. */
function tooltipOf(trigger: Trigger): Tooltip | undefined {
  const tooltip = item<Common & Tooltip>(trigger.tooltip, TOOLTIP);
  return tooltip?.selector ? tooltip : undefined;
}

function update(raw: Raw[], ctx: Context): void {
  const { host } = ctx;
  const wanted = new Map<string, Trigger>();
  for (const value of raw) {
    const trigger = item<Trigger>(value, DEFAULTS);
    if (!trigger?.when_present || !onPage(trigger) || started.has(trigger.key)) continue;
    if (host.tour?.walk.key === trigger.key) started.add(trigger.key);
    else wanted.set(`${trigger.kind}:${trigger.key}`, trigger);
  }
  const taken: Tooltip[] = [];
  for (const [id, wait] of waits) {
    // A navigation: look again on the new page (the element may have gone with the old one).
    wait.cancel();
    waits.delete(id);
  }
  ready = ready.filter((key) => wanted.has(`walkthrough:${key}`));
  for (const [id, trigger] of wanted) {
    const tooltip = trigger.kind === "tooltip" ? tooltipOf(trigger) : undefined;
    if (trigger.kind === "tooltip" && !tooltip) continue;
    const wait = { trigger: JSON.stringify(trigger), cancel: () => {}, found: false };
    waits.set(id, wait);
    let now = true;
    wait.cancel = present(
      host,
      { kind: trigger.kind, key: trigger.key, selector: trigger.when_present, timeoutMs: trigger.wait_timeout_ms },
      () => {
        wait.found = true;
        if (tooltip) {
          if (now) taken.push(tooltip);
          else {
            host.content.tooltips.push(tooltip);
            // Not while a tour is on: rendering again would show its step again (the
            // tooltip then shows with the next render: a navigation, the tour's end).
            if (host.tour) pending = true;
            else host.render();
          }
        } else if (!ready.includes(trigger.key)) {
          ready.push(trigger.key);
          if (!now) tryStart(host);
        }
      },
    );
    now = false;
  }
  // The core renders right after this update (content and page changes): give it the
  // tooltips whose element is here now, and start a walkthrough that found its element.
  const mine = new Set([...wanted.values()].filter((t) => t.kind === "tooltip").map((t) => t.key));
  host.content.tooltips = [...host.content.tooltips.filter((t) => !mine.has(t.key)), ...taken];
  if (taken.length && !host.tour) host.render();
  else tryStart(host);
}

const hosts = new WeakSet<Host>();

register("present", {
  update(raw, ctx) {
    const { host } = ctx;
    if (!hosts.has(host)) {
      hosts.add(host);
      // The core renders after every content and page change, and the queue asks it to when
      // the screen frees: the moment a walkthrough that found its element may start too.
      const render = host.render.bind(host);
      host.render = () => {
        render();
        tryStart(host);
      };
      for (const name of ["$walkthrough_completed", "$walkthrough_dismissed"]) {
        host.on(name, () =>
          // After the core has let the tour go (it tracks these just before).
          setTimeout(() => {
            if (!pending) return tryStart(host);
            pending = false;
            host.render();
          }),
        );
      }
      // Started some other way (a checklist, the resource center, by hand): not again here.
      host.on("$walkthrough_started", () => {
        const key = host.tour?.walk.key;
        if (key) started.add(key);
      });
    }
    update(raw, ctx);
  },
});
