/** The walkthrough engine: shows one step at a time, waits for its target, advances on the
 * next button, a click on the target or a tracked event, continues across pages and reloads,
 * and reports every view, completion, dismissal and missing target as a `$`-event. */
import { anchor, cover } from "./position";
import { card, focusCard } from "./render/card";
import { h, type Root } from "./render/dom";
import type { Step, TourState, Walkthrough } from "./state";
import { urlMatches } from "./targeting";

export interface TourHost {
  root: Root;
  track(name: string, properties: Record<string, unknown>): void;
  remember(key: string, state: TourState): void;
  ended(): void;
  report(code: string, message: string): void;
  celebrate(text: string): void;
}

/** The element a selector names, if it is there and laid out; a selector that throws counts
 * as absent and is reported once. */
export function findTarget(selector: string, onBadSelector?: (error: unknown) => void): Element | null {
  try {
    const el = document.querySelector(selector);
    return el && el.getClientRects().length ? el : null;
  } catch (error) {
    onBadSelector?.(error);
    return null;
  }
}

/** Wait for a target with a MutationObserver; `missing` runs once when `timeoutMs` passes
 * first. Returns a cancel function. */
export function waitForTarget(
  selector: string,
  timeoutMs: number,
  found: (el: Element) => void,
  missing: () => void,
  onBadSelector?: (error: unknown) => void,
): () => void {
  let bad = false;
  const look = (): Element | null =>
    findTarget(selector, (error) => {
      bad = true;
      onBadSelector?.(error);
    });
  const now = look();
  if (now || bad) {
    if (now) found(now);
    else missing();
    return () => undefined;
  }
  const observer = new MutationObserver(() => {
    const el = look();
    if (el) {
      stop();
      found(el);
    }
  });
  observer.observe(document.documentElement, { childList: true, subtree: true, attributes: true });
  const timer = timeoutMs > 0 ? setTimeout(() => (stop(), missing()), timeoutMs) : 0;
  const stop = (): void => {
    observer.disconnect();
    clearTimeout(timer);
  };
  return stop;
}

export class Tour {
  #cleanups: (() => void)[] = [];
  #returnFocus: Element | null = null;
  #reported = new Set<number>();

  readonly walkthrough: Walkthrough;
  index: number;
  readonly #host: TourHost;

  constructor(walkthrough: Walkthrough, host: TourHost, index: number) {
    this.walkthrough = walkthrough;
    this.#host = host;
    this.index = index;
  }

  get #step(): Step {
    return this.walkthrough.steps[this.index]!;
  }

  #props(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { walkthrough: this.walkthrough.key, ...extra };
  }

  #stepProps(): Record<string, unknown> {
    return this.#props({ step: this.index, step_id: this.#step.id });
  }

  begin(): void {
    this.#host.track("$walkthrough_started", this.#props());
    this.#save("in_progress");
    this.show();
  }

  /** Draw the current step if this page is its page; otherwise wait for a navigation. */
  show(): void {
    this.clear();
    const step = this.#step;
    if (!urlMatches(step.page_url_pattern, location.pathname, location.search)) return;
    if (!step.selector) {
      this.#draw(step, null);
      return;
    }
    this.#cleanups.push(
      waitForTarget(
        step.selector,
        step.wait_timeout_ms,
        (el) => this.#draw(step, el),
        () => this.#missing(step),
        (error) => this.#host.report("bad_selector", `${step.selector}: ${String(error)}`),
      ),
    );
  }

  #missing(step: Step): void {
    if (this.#reported.has(this.index)) return;
    this.#reported.add(this.index);
    this.#host.track("$step_target_missing", { ...this.#stepProps(), selector: step.selector });
  }

  #draw(step: Step, target: Element | null): void {
    this.clear();
    const count = this.walkthrough.steps.length;
    const last = this.index === count - 1;
    const actions = [];
    if (this.index > 0) actions.push({ text: "Back", run: () => this.back() });
    if (step.advance_on === "next") {
      actions.push({ text: last ? "Done" : "Next", primary: true, run: () => this.next() });
    } else if (step.advance_on === "target_click" && target) {
      // Keyboard and screen-reader users reach the target through this button.
      actions.push({
        text: "Show me",
        primary: true,
        label: `Activate: ${(target.textContent ?? "").trim().slice(0, 60) || step.title}`,
        run: () => (target as HTMLElement).click(),
      });
    }
    const el = card({
      title: step.title,
      html: step.body_html,
      modal: !target,
      meta: `${this.index + 1} of ${count}`,
      actions,
      closeLabel: `Close ${this.walkthrough.name || "tour"}`,
      onClose: () => this.dismiss(),
      onKey: (event) => {
        if (event.key === "ArrowRight" && step.advance_on === "next") this.next();
        else if (event.key === "ArrowLeft" && this.index > 0) this.back();
      },
    });
    el.dataset.step = String(this.index);
    el.dataset.walkthrough = this.walkthrough.key;
    const layer = this.#host.root.layer;
    const parts: HTMLElement[] = [];
    if (!target) parts.push(h("div", { class: "o" }));
    let spotlight: HTMLElement | null = null;
    if (target && step.spotlight) parts.push((spotlight = h("div", { class: "s" })));
    parts.push(el);
    this.#host.root.attach();
    layer.append(...parts);
    this.#cleanups.push(() => parts.forEach((part) => part.remove()));
    if (target) {
      if (!inView(target)) target.scrollIntoView({ block: "center" });
      this.#cleanups.push(
        anchor(
          target,
          el,
          step.placement,
          12,
          spotlight ? (rect, hidden) => cover(spotlight!, rect, hidden) : undefined,
        ),
      );
      if (step.advance_on === "target_click") {
        const onClick = (event: Event): void => {
          if (event.target instanceof Node && target.contains(event.target)) this.next();
        };
        document.addEventListener("click", onClick, true);
        this.#cleanups.push(() => document.removeEventListener("click", onClick, true));
      }
    }
    // Esc dismisses the step wherever focus is (after a click on the page too), unless the
    // host already handled that key; the card's own handler covers focus inside the widget.
    const onEscape = (event: KeyboardEvent): void => {
      if (event.key === "Escape" && !event.defaultPrevented) this.dismiss();
    };
    document.addEventListener("keydown", onEscape);
    this.#cleanups.push(() => document.removeEventListener("keydown", onEscape));
    const active = document.activeElement;
    if (!this.#returnFocus && active && active !== this.#host.root.host) this.#returnFocus = active;
    focusCard(el);
    this.#host.root.announce(`Step ${this.index + 1} of ${count}: ${step.title}`);
    this.#host.track("$step_viewed", this.#stepProps());
  }

  next(): void {
    this.#host.track("$step_completed", this.#stepProps());
    if (this.index >= this.walkthrough.steps.length - 1) {
      this.#host.track("$walkthrough_completed", this.#props());
      this.#save("completed");
      this.#host.celebrate(`${this.walkthrough.name || "Tour"} complete`);
      this.#end();
      return;
    }
    this.index += 1;
    this.#save("in_progress");
    this.show();
  }

  back(): void {
    if (this.index === 0) return;
    this.index -= 1;
    this.#save("in_progress");
    this.show();
  }

  dismiss(): void {
    this.#host.track("$walkthrough_dismissed", this.#props({ step: this.index }));
    this.#save("dismissed");
    this.#end();
  }

  /** A tracked event may be what the current step waits for. */
  onEvent(name: string): void {
    const step = this.#step;
    if (step.advance_on === "event" && step.advance_event === name) this.next();
  }

  #save(status: TourState["status"]): void {
    this.#host.remember(this.walkthrough.key, { status, step: this.index });
  }

  #end(): void {
    this.clear();
    if (this.#returnFocus instanceof HTMLElement && this.#returnFocus.isConnected) {
      this.#returnFocus.focus({ preventScroll: true });
    }
    this.#host.ended();
  }

  clear(): void {
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
  }
}

function inView(el: Element): boolean {
  const rect = el.getBoundingClientRect();
  return rect.bottom > 0 && rect.right > 0 && rect.top < innerHeight && rect.left < innerWidth;
}
