/** A celebration when a checklist completes: the progress push that finishes a journey the user
 * has a checklist for (a progress bar, or a resource center checklist) shows a short card with
 * a burst of confetti in the theme's colours (the core loads this bundle for that push if the
 * page had no surfaces), for the 4 s the core keeps the finished bar on
 * screen. Under prefers-reduced-motion the card shows without the confetti or its pop. Screen
 * readers hear it through the live region. It takes no slot in the queue: it covers nothing
 * and goes by itself. */
import { S, t } from "../i18n";
import { h } from "../render/dom";
import type { Context, Host, Raw } from "./contract";
import { register } from "./index";
import { listsChecklist, styled } from "./resource_center";

const SHOWN_MS = 3600;
const COLOURS = ["var(--p)", "#f59e0b", "#10b981", "#ec4899", "#3b82f6"];

/** The journeys each host celebrated: a second push for one (a milestone published since) is
 * no new completion. */
const finished = new WeakMap<Host, Set<string>>();

function hasChecklist(host: Host, journey: string): boolean {
  return host.content.progress_bars.some((bar) => bar.journey === journey) || listsChecklist(host, journey);
}

export function celebrate(host: Host, title: string): HTMLElement {
  styled(host.root);
  const card = h("div", { class: "cf", "aria-hidden": "true", "data-celebration": "" }, h("b", null, "✓"), title);
  const burst = h("div", { class: "cb", "aria-hidden": "true" });
  for (let n = 0; n < 28; n++) {
    const piece = h("i");
    const angle = (n / 28) * 2 * Math.PI;
    const reach = 90 + (n % 4) * 30;
    // Custom properties through the CSSOM: no style attribute, so strict CSP hosts allow it.
    piece.style.setProperty("--x", `${Math.round(Math.cos(angle) * reach * 1.6)}px`);
    piece.style.setProperty("--y", `${Math.round(Math.sin(angle) * reach)}px`);
    piece.style.setProperty("--a", `${(n * 97) % 360}deg`);
    piece.style.setProperty("--c", COLOURS[n % COLOURS.length]!);
    burst.append(piece);
  }
  host.root.attach();
  // The burst first, so the card paints over it: the confetti flies out from behind the card.
  host.root.layer.append(burst, card);
  host.root.announce(title);
  setTimeout(() => {
    burst.remove();
    card.remove();
  }, SHOWN_MS);
  return card;
}

register("progress", {
  // The core hands over the push of a journey's last milestone (the only one with
  // `completed_at`), loading this bundle for it when the page had no surfaces yet.
  push(message: Raw, { host }: Context) {
    const journey = (message.journey ?? {}) as Raw;
    const key = typeof journey.key === "string" ? journey.key : "";
    const seen = finished.get(host) ?? new Set<string>();
    finished.set(host, seen);
    if (!key || !message.completed_at || seen.has(key)) return;
    seen.add(key);
    if (!hasChecklist(host, key)) return;
    const name = typeof journey.name === "string" && journey.name ? journey.name : t(S.Checklist);
    celebrate(host, t(S.AllDone, name));
  },
});
