/** The walkthrough engine: shows one step at a time, waits for its target, advances on the
 * next button, a click on the target or a tracked event, continues across pages and reloads,
 * and reports every view, completion, dismissal and missing target as a `$`-event. */
import { anchor, cover, makeRoom } from "./position";
import { card, focusCard } from "./render/card";
import { h, type Root } from "./render/dom";
import type { Step, TourState, Walkthrough } from "./state";
import { urlMatches } from "./targeting";

export interface TourHost {
  root: Root;
  track(name: string, properties: Record<string, unknown>): void;
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
  /** Which of this user's starts of the walkthrough this is (the server's `attempt`). */
  attempt: number;
  readonly #host: TourHost;

  /** A tour at `at` (its step and attempt), or at its first step until `begin()`. */
  constructor(walkthrough: Walkthrough, host: TourHost, at?: { step: number; attempt: number }) {
    this.walkthrough = walkthrough;
    this.#host = host;
    this.index = at?.step ?? 0;
    this.attempt = at?.attempt ?? 0;
  }

  get #step(): Step {
    return this.walkthrough.steps[this.index]!;
  }

  /** Every event of the tour names its attempt and the step it happened at (for a
   * transition: the step it came from), so the server can refuse a stale tab's move. */
  #props(): Record<string, unknown> {
    return {
      walkthrough: this.walkthrough.key,
      attempt: this.attempt,
      step: this.index,
      step_id: this.#step.id,
    };
  }

  /** Start a new attempt: the one after the last this tab knows of. */
  begin(): void {
    this.attempt = (this.walkthrough.state?.attempt ?? 0) + 1;
    // Started once on this page: a navigation inside the app does not start it again.
    this.walkthrough.auto_start = false;
    this.#host.track("$walkthrough_started", this.#props());
    this.#save("in_progress");
    this.show();
  }

  /** Draw the current step if this page is its page; otherwise wait for a navigation. */
  show(): void {
    this.destroy();
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
    this.#host.track("$step_target_missing", { ...this.#props(), selector: step.selector });
  }

  #draw(step: Step, target: Element | null): void {
    this.destroy();
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
        anchor(target, el, step.placement, 12, (rect, hidden) => {
          if (spotlight) cover(spotlight, rect, hidden);
          makeRoom(layer, hidden ? [] : [rect, el.getBoundingClientRect()]);
        }),
        () => makeRoom(layer, []),
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
    this.#host.track("$step_viewed", this.#props());
  }

  next(): void {
    this.#host.track("$step_completed", this.#props());
    if (this.index >= this.walkthrough.steps.length - 1) {
      this.#host.track("$walkthrough_completed", this.#props());
      this.#save("completed");
      this.#host.celebrate(`${this.walkthrough.name || "Tour"} complete`);
      this.leave();
      return;
    }
    this.index += 1;
    this.#save("in_progress");
    this.show();
  }

  back(): void {
    if (this.index === 0) return;
    this.#host.track("$step_back", this.#props());
    this.index -= 1;
    this.#save("in_progress");
    this.show();
  }

  dismiss(): void {
    this.#host.track("$walkthrough_dismissed", this.#props());
    this.#save("dismissed");
    this.leave();
  }

  /** A tracked event may be what the current step waits for. */
  onEvent(name: string): void {
    const step = this.#step;
    if (step.advance_on === "event" && step.advance_event === name) this.next();
  }

  /** This tab's move, held until the server's `walkthrough` answer confirms or corrects it. */
  #save(status: TourState["status"]): void {
    this.walkthrough.state = { status, step: this.index, attempt: this.attempt };
  }

  /** Take the step off the page. Focus goes back to where it was before the tour took it,
   * unless the person has moved it to the page meanwhile (Esc after a click into a field). */
  leave(): void {
    const focus = document.activeElement;
    this.destroy();
    if (focus === this.#host.root.host || focus === document.body) {
      (this.#returnFocus as HTMLElement | null)?.focus?.({ preventScroll: true });
    }
    this.#host.ended();
  }

  destroy(): void {
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
  }
}

function inView(el: Element): boolean {
  const rect = el.getBoundingClientRect();
  return rect.bottom > 0 && rect.right > 0 && rect.top < innerHeight && rect.left < innerWidth;
}
