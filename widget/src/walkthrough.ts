/** The walkthrough engine: shows one step at a time, waits for its target, advances on the
 * next button, a click on the target or a tracked event, continues across pages and reloads,
 * and reports every view, completion, dismissal and missing target as a `$`-event. */
import { anchor, cover, makeRoom } from "./position";
import { S, t } from "./i18n";
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

/** The element a selector names, if it is there and laid out. Publishing refuses selectors
 * browsers reject; one this browser still rejects counts as absent (then missing). */
export function findTarget(selector: string): Element | null {
  try {
    const el = document.querySelector(selector);
    return el?.getClientRects().length ? el : null;
  } catch {
    return null;
  }
}

/** Wait for a target with a MutationObserver; `missing` runs once when `timeoutMs` (if not 0)
 * passes first. Returns a cancel function. */
export function waitForTarget(
  selector: string,
  timeoutMs: number,
  found: (el: Element) => void,
  missing: () => void,
): () => void {
  const look = (): void => {
    const el = findTarget(selector);
    if (el) {
      stop();
      found(el);
    }
  };
  const observer = new MutationObserver(look);
  observer.observe(document.documentElement, { childList: true, subtree: true, attributes: true });
  const timer = timeoutMs && setTimeout(() => (stop(), missing()), timeoutMs);
  const stop = (): void => {
    observer.disconnect();
    clearTimeout(timer);
  };
  look();
  return stop;
}

export class Tour {
  #cleanups: (() => void)[] = [];
  #returnFocus: Element | null = null;

  readonly walk: Walkthrough;
  index: number;
  /** Which of this user's starts of the walkthrough this is (the server's `attempt`). */
  attempt: number;
  readonly #host: TourHost;

  /** A tour at `at` (its step and attempt), or at its first step until `begin()`. */
  constructor(walkthrough: Walkthrough, host: TourHost, at?: { step: number; attempt: number }) {
    this.walk = walkthrough;
    this.#host = host;
    this.index = at?.step ?? 0;
    this.attempt = at?.attempt ?? 0;
  }

  get #step(): Step {
    return this.walk.steps[this.index]!;
  }

  /** Report `name`: every event of the tour names its attempt and the step it happened at
   * (for a transition: the step it came from), so the server can refuse a stale tab's move. */
  #track(name: string, more?: Record<string, unknown>): void {
    this.#host.track(name, {
      walkthrough: this.walk.key,
      attempt: this.attempt,
      step: this.index,
      step_id: this.#step.id,
      ...more,
    });
  }

  get #last(): boolean {
    return this.index >= this.walk.steps.length - 1;
  }

  /** Listen on the document while this step shows. */
  #listen(type: string, listener: (event: never) => void, capture?: boolean): void {
    document.addEventListener(type, listener as EventListener, capture);
    this.#cleanups.push(() => document.removeEventListener(type, listener as EventListener, capture));
  }

  /** Start a new attempt: the one after the last this tab knows of. */
  begin(): void {
    this.attempt = (this.walk.state?.attempt ?? 0) + 1;
    // Started once on this page: a navigation inside the app does not start it again.
    this.walk.auto_start = false;
    this.#track("$walkthrough_started");
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
      ),
    );
  }

  /** The wait is over and the target is not there: report it (each time: a navigation back
   * to the page waits again), then do what the step says: show it as a centred modal, skip
   * it, or end the tour; never nothing. */
  #missing(step: Step): void {
    const then = step.on_target_missing;
    this.#track("$step_target_missing", { selector: step.selector, then });
    if (then == "modal") this.#draw(step, null);
    else if (then == "skip" && !this.#last) this.#go("$step_skipped", 1);
    else this.dismiss();
  }

  #draw(step: Step, target: Element | null): void {
    this.destroy();
    const meta = t(S.Of, this.index + 1, this.walk.steps.length);
    // Drawn without its target (a centred step, or one whose target is missing), a step that
    // waits for a click on the target offers Next instead.
    const advance = target || step.advance_on != "target_click" ? step.advance_on : "next";
    const actions = [];
    if (this.index) actions.push({ text: t(S.Back), run: () => this.back() });
    if (advance == "next") {
      actions.push({ text: t(this.#last ? S.Done : S.Next), primary: true, run: () => this.next() });
    } else if (target && advance == "target_click") {
      // Keyboard and screen-reader users reach the target through this button.
      actions.push({
        text: t(S.ShowMe),
        primary: true,
        label: t(S.Activate, target.textContent!.trim().slice(0, 60) || step.title),
        run: () => (target as HTMLElement).click(),
      });
    }
    const el = card({
      title: step.title,
      html: step.body_html,
      modal: !target,
      meta,
      actions,
      closeLabel: t(S.Close, this.walk.name),
      onClose: () => this.dismiss(),
      // Arrows follow the reading direction: in a right-to-left layout Left goes on, Right back.
      onKey: ({ key }) => {
        if (/Arrow[LR]/.test(key)) (key == "ArrowRight") != (layer.dir == "rtl") ? advance == "next" && this.next() : this.back();
      },
    });
    el.dataset.step = String(this.index);
    el.dataset.walkthrough = this.walk.key;
    const layer = this.#host.root.layer;
    const spotlight = target && step.spotlight ? h("div", { class: "s" }) : null;
    const parts = [target ? spotlight : h("div", { class: "o" }), el].filter((p) => p) as HTMLElement[];
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
      if (advance == "target_click") {
        const onClick = (event: Event): void => {
          if (event.target instanceof Node && target.contains(event.target)) this.next();
        };
        this.#listen("click", onClick, true);
      }
    }
    // Esc dismisses the step wherever focus is (after a click on the page too), unless the
    // host already handled that key; the card's own handler covers focus inside the widget.
    const onEscape = (event: KeyboardEvent): void => {
      if (event.key === "Escape" && !event.defaultPrevented) this.dismiss();
    };
    this.#listen("keydown", onEscape);
    const active = document.activeElement;
    if (!this.#returnFocus && active && active !== this.#host.root.host) this.#returnFocus = active;
    focusCard(el);
    this.#host.root.announce(t(S.Step, meta, step.title));
    this.#track("$step_viewed");
  }

  next(): void {
    if (!this.#last) return this.#go("$step_completed", 1);
    this.#track("$step_completed");
    this.#track("$walkthrough_completed");
    this.#save("completed");
    this.#host.celebrate(t(S.Complete, this.walk.name));
    this.leave();
  }

  back(): void {
    if (this.index) this.#go("$step_back", -1);
  }

  /** Report `name` at this step, then move `by` steps and show that one. */
  #go(name: string, by: number): void {
    this.#track(name);
    this.index += by;
    this.#save("in_progress");
    this.show();
  }

  /** End the tour here (closed by the person, or by a missing target whose step says so:
   * the `$step_target_missing` just before says `then: "end"`). */
  dismiss(): void {
    this.#track("$walkthrough_dismissed");
    this.#save("dismissed");
    this.leave();
  }

  /** A tracked event may be what the current step waits for. */
  onEvent(name: string): void {
    const step = this.#step;
    if (step.advance_on == "event" && step.advance_event == name) this.next();
  }

  /** This tab's move, held until the server's `walkthrough` answer confirms or corrects it. */
  #save(status: TourState["status"]): void {
    this.walk.state = { status, step: this.index, attempt: this.attempt };
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
