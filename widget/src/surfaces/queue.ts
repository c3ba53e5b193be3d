/** "One thing at a time" (README "One thing at a time"): what may cover the page claims a
 * slot, `screen` (modals, popovers, message cards, panels) or `bar` (a banner). One entry per
 * slot shows; the others wait in line, highest rank first, and show when the slot frees.
 * Rank: the author's `priority` (higher first), then the kind (survey > resource center >
 * message > banner), then arrival. A tour (core) comes before all of them: while one of its
 * steps is on this page every slot waits, and a tour that starts (the user asked for it, or
 * it starts by itself on a page where nothing held the screen) sends what is shown back into
 * line. While an entry holds the screen a tour does not start by itself (`host.held`); when
 * the screen frees, a tour that waited to start by itself goes first. Inline guides take no
 * slot. Waiting is reported once per entry as `$content_waiting` {kind, key, reason: the
 * slot or "walkthrough", behind: the key in the way}; an entry that stops qualifying while it
 * waits (page, publish) as `$content_skipped` {kind, key, reason}, and so is one that waited
 * longer than MAX_WAIT_MS (`reason: "timeout"`). */
import { urlMatches } from "../targeting";
import type { Entry, Host, Queue, Slot } from "./contract";

const KIND_RANK: Record<string, number> = { survey: 4, resource_center: 3, message: 2, banner: 1 };
export const MAX_WAIT_MS = 10 * 60 * 1000;

interface Waiting {
  entry: Entry;
  since: number;
  order: number;
}

/** Higher first: priority, then kind, then who came first. */
const before = (a: Waiting, b: Waiting): number =>
  b.entry.priority - a.entry.priority ||
  (KIND_RANK[b.entry.kind] ?? 0) - (KIND_RANK[a.entry.kind] ?? 0) ||
  a.order - b.order;

export class Line implements Queue {
  readonly #host: Host;
  readonly #shown = new Map<Slot, Entry>();
  #waiting: Waiting[] = [];
  #order = 0;
  readonly #reported = new Set<Entry>();

  constructor(host: Host) {
    this.#host = host;
    host.freed = () => this.#pump();
    // A tour that starts while something holds the screen takes it: that goes back in line.
    host.on("$walkthrough_started", () => {
      for (const [slot, shown] of [...this.#shown]) {
        this.#shown.delete(slot);
        this.#setHeld();
        shown.hide?.();
        this.#wait(shown, "walkthrough");
      }
      // A tour whose step is on another page holds nothing here.
      this.#pump();
    });
  }

  /** The walkthrough whose step is on this page, if any. */
  #tourOnScreen(): string | null {
    const tour = this.#host.tour;
    const step = tour?.walk.steps[tour.index];
    return step && urlMatches(step.page_url_pattern, location.pathname, location.search) ? tour!.walk.key : null;
  }

  want(entry: Entry): void {
    if (this.#shown.get(entry.slot) === entry || this.#waiting.some((w) => w.entry === entry)) return;
    this.#wait(entry, "");
    this.#pump();
  }

  done(entry: Entry): void {
    this.#forget(entry);
    this.#pump();
  }

  drop(entry: Entry, reason: string): void {
    if (this.#waiting.some((w) => w.entry === entry)) this.#skip(entry, reason);
    this.done(entry);
  }

  /** What shows in `slot` now, if anything (tests and renderers). */
  shown(slot: Slot): Entry | undefined {
    return this.#shown.get(slot);
  }

  #wait(entry: Entry, reason: string): void {
    this.#waiting.push({ entry, since: Date.now(), order: this.#order++ });
    this.#waiting.sort(before);
    if (reason) this.#report(entry, reason);
  }

  #report(entry: Entry, reason: string): void {
    if (this.#reported.has(entry)) return;
    this.#reported.add(entry);
    const behind = reason === "walkthrough" ? this.#host.tour?.walk.key : this.#shown.get(entry.slot)?.key;
    this.#host.track("$content_waiting", { kind: entry.kind, key: entry.key, reason, behind });
  }

  #skip(entry: Entry, reason: string): void {
    this.#host.track("$content_skipped", { kind: entry.kind, key: entry.key, reason });
  }

  #forget(entry: Entry): void {
    this.#waiting = this.#waiting.filter((w) => w.entry !== entry);
    this.#reported.delete(entry);
    if (this.#shown.get(entry.slot) === entry) {
      this.#shown.delete(entry.slot);
      this.#setHeld();
      // The screen is free: a tour that waited to start by itself goes first.
      if (entry.slot === "screen") this.#host.render();
    }
  }

  #setHeld(): void {
    this.#host.held = this.#shown.has("screen");
  }

  /** Show the first in line of each free slot. */
  #pump(): void {
    const now = Date.now();
    for (const waiting of [...this.#waiting]) {
      if (now - waiting.since > MAX_WAIT_MS) {
        this.#skip(waiting.entry, "timeout");
        this.#forget(waiting.entry);
      }
    }
    const tour = this.#tourOnScreen();
    for (const waiting of [...this.#waiting]) {
      const { entry } = waiting;
      if (tour) {
        this.#report(entry, "walkthrough");
        continue;
      }
      if (this.#shown.has(entry.slot)) {
        this.#report(entry, entry.slot);
        continue;
      }
      this.#waiting = this.#waiting.filter((w) => w !== waiting);
      this.#shown.set(entry.slot, entry);
      this.#setHeld();
      entry.show();
    }
  }
}
