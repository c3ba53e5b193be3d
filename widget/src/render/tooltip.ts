/** A standalone hint: a pulsing hotspot beacon that opens on click, or a hover/focus hint on
 * its target. "Got it" dismisses it for good (`$tooltip_dismissed`); Esc only closes it. */
import { anchor } from "../position";
import type { Tooltip } from "../state";
import { waitForTarget } from "../walkthrough";
import { S, t } from "../i18n";
import { card, focusCard } from "./card";
import { h, type Root } from "./dom";

export interface TooltipHost {
  root: Root;
  track(name: string, properties: Record<string, unknown>): void;
  dismissed(key: string): void;
  report(code: string, message: string): void;
}

export class TooltipView {
  #cleanups: (() => void)[] = [];
  #open?: (() => void) | null;
  #viewed = false;
  #hoverKeep?: { enter: () => void; leave: () => void } | null;

  readonly tip: Tooltip;
  readonly #host: TooltipHost;

  constructor(tooltip: Tooltip, host: TooltipHost) {
    this.tip = tooltip;
    this.#host = host;
    this.#cleanups.push(waitForTarget(tooltip.selector, 0, (el) => this.#mount(el), () => 0));
  }

  #mount(target: Element): void {
    const tip = this.tip;
    this.#host.root.attach();
    if (tip.trigger === "hotspot") {
      const beacon = h("button", {
        type: "button",
        class: "h",
        "aria-label": t(S.OpenHint),
        "aria-expanded": "false",
        "data-tooltip": tip.key,
        onclick: () => (this.#open ? this.#close() : this.#show(target, beacon)),
      });
      this.#host.root.layer.append(beacon);
      this.#cleanups.push(anchor(target, beacon, "right", 6), () => beacon.remove());
    } else {
      let timer = 0;
      const enter = (): void => {
        clearTimeout(timer);
        if (!this.#open) this.#show(target, null);
      };
      const leave = (): void => {
        timer = setTimeout(() => this.#close(), 200) as unknown as number;
      };
      const events: [string, () => void][] = [
        ["mouseenter", enter],
        ["focusin", enter],
        ["mouseleave", leave],
        ["focusout", leave],
      ];
      for (const [name, fn] of events) target.addEventListener(name, fn);
      this.#cleanups.push(() => {
        clearTimeout(timer);
        for (const [name, fn] of events) target.removeEventListener(name, fn);
      });
      this.#hoverKeep = { enter, leave };
    }
  }

  #show(target: Element, beacon: HTMLElement | null): void {
    const el = card({
      title: "",
      html: this.tip.body_html,
      actions: [{ text: t(S.GotIt), primary: true, run: () => this.#dismiss() }],
      closeLabel: t(S.CloseHint),
      onClose: () => {
        this.#close();
        beacon?.focus();
      },
    });
    el.dataset.tooltip = this.tip.key;
    if (this.#hoverKeep) {
      el.addEventListener("mouseenter", this.#hoverKeep.enter);
      el.addEventListener("mouseleave", this.#hoverKeep.leave);
    }
    this.#host.root.layer.append(el);
    const stop = anchor(target, el, this.tip.placement, 10);
    beacon?.setAttribute("aria-expanded", "true");
    if (beacon) focusCard(el);
    this.#open = () => {
      stop();
      el.remove();
      beacon?.setAttribute("aria-expanded", "false");
    };
    if (!this.#viewed) {
      this.#viewed = true;
      this.#host.track("$tooltip_viewed", { tooltip: this.tip.key });
    }
  }

  #close(): void {
    this.#open?.();
    this.#open = null;
  }

  #dismiss(): void {
    this.#host.track("$tooltip_dismissed", { tooltip: this.tip.key });
    this.#host.dismissed(this.tip.key);
    this.destroy();
  }

  destroy(): void {
    this.#close();
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
  }
}
