/** Loader and public API: `window.Milepost.{identify,track,page,start,reset,on}`, the queued
 * `window.milepost` array, and the controller wiring transport, outbox, state and rendering.
 * No call ever throws into the host's code: failures become a `$widget_error` event and an
 * `error` hook call. */
import { S, setLocale, t } from "./i18n";
import { Outbox, type QueuedEvent, uuid } from "./queue";
import { Root } from "./render/dom";
import { celebrate, ProgressView } from "./render/progress";
import { TooltipView } from "./render/tooltip";
import { type Hello, type Message, Transport } from "./socket";
import {
  type Content,
  type JourneyView,
  newlyCompleted,
  isObject,
  list,
  parseContent,
  parseJourney,
  parseJourneys,
  type ProgressItem,
  sequenceCheck,
  tourState,
  type Walkthrough,
  withJourney,
} from "./state";
import { byPriority, safeLink, urlMatches } from "./targeting";
import { Tour } from "./walkthrough";

const SDK = "milepost-js/0.1.0";
/** A tour in progress at a step it still has (an index past the end: edited since, not resumed). */
const going = (w: Walkthrough): boolean => w.state?.status === "in_progress" && w.state.step < w.steps.length;
const SESSION_IDLE_MS = 30 * 60 * 1000;
type Handler = (payload: unknown) => void;
type Traits = Record<string, unknown>;
const STORAGE = "storage_unavailable";
const where = () => ({ url: location.href, title: document.title });

function storage(): Storage | null {
  try {
    const s = window.localStorage;
    s.setItem("milepost:", "");
    s.removeItem("milepost:");
    return s;
  } catch {
    return null;
  }
}

/** Equal content (as the server sent it, so key order is stable). */
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

class Controller {
  readonly #store = storage();
  readonly #handlers = new Map<string, Set<Handler>>();
  #rootElement?: Root;
  #user?: { id: string; traits: Traits; userHash?: string } | null;
  #outbox?: Outbox | null;
  #transport?: Transport | null;
  content: Content = parseContent({}).content;
  journeys: JourneyView[] = [];
  #seq = 0;
  /** The tour on screen, if any (read by the surfaces queue: modals never stack). */
  tour: Tour | null = null;
  /** Set by the surfaces queue while it holds the screen: a tour may not start by itself. */
  held = false;
  /** The surfaces queue's hook, called when a tour ends: what waited may show. */
  freed?: () => void;
  #tooltips = new Map<string, TooltipView>();
  #progress?: ProgressView | null;
  #dismissedTooltips = new Set<string>();
  #messages = new Set<string>();
  #lastUrl = "";
  #reporting = false;
  /** Ids of this tab's tour transitions whose `walkthrough` answer has not come back yet. */
  #mine = new Set<string>();

  readonly #api: string;
  readonly #key: string;

  constructor(api: string, key: string) {
    this.#api = api;
    this.#key = key;
    if (!this.#store) this.report(STORAGE, STORAGE);
    this.#watchNavigation();
  }

  // Public API ---------------------------------------------------------------------------

  identify(id: unknown, traits?: unknown, options?: unknown): void {
    if ((typeof id !== "string" && typeof id !== "number") || id === "") {
      this.report("missing_user", "id");
      return;
    }
    const userHash = (options as { userHash?: unknown } | undefined)?.userHash;
    const next = {
      id: String(id),
      traits: isObject(traits) ? traits : {},
      userHash: typeof userHash === "string" ? userHash : undefined,
    };
    if (this.#user?.id === next.id && this.#transport) {
      this.#user = next;
      return;
    }
    this.reset();
    this.#user = next;
    this.#outbox = new Outbox(this.#store, `milepost:outbox:${this.#key}:${next.id}`, {
      onStorageError: () => this.report(STORAGE, STORAGE),
      // Never a silent drop: the server hears how many events the full outbox let go.
      onOverflow: (n) => this.report("outbox_full", `${n} dropped`),
    });
    this.#transport = new Transport(this.#api, this.#key, () => this.#hello(), {
      onMessage: (message) => this.#receive(message),
      onReady: () => {
        // A new connection: whatever was in flight on the old one may never be acknowledged.
        this.#outbox?.retryAll();
        this.#flush();
      },
    });
    this.#transport.start();
    this.#lastUrl = location.href;
    this.track("$pageview", where());
  }

  track(name: unknown, properties?: unknown): void {
    if (typeof name !== "string" || !name || !this.#outbox) return;
    const props: Traits = { ...(isObject(properties) && properties) };
    if (/^\$(walkthrough|step|tooltip|survey|banner|guide)/.test(name)) {
      props.session = this.#session();
    }
    const event: QueuedEvent = { id: uuid(), name, timestamp: new Date().toISOString(), properties: props };
    this.#outbox.add(event);
    if (/^\$(walkthrough_|step_[cb])/.test(name)) this.#mine.add(event.id);
    this.#flush();
    this.#emit(name, props);
    if (!name.startsWith("$")) this.tour?.onEvent(name);
  }

  page(): void {
    if (location.href === this.#lastUrl || !this.#user) return;
    this.#lastUrl = location.href;
    this.track("$pageview", where());
    this.#transport?.send({ type: "page", ...where() });
    this.render();
  }

  start(key: unknown): void {
    const walkthrough = this.#walkthrough(key);
    if (!walkthrough) {
      this.report("unknown_walkthrough", String(key));
      return;
    }
    this.tour?.destroy();
    this.tour = new Tour(walkthrough, this);
    this.tour.begin();
  }

  reset(): void {
    this.#transport?.close();
    this.#transport = null;
    this.#outbox = null;
    this.#user = null;
    this.#seq = 0;
    this.tour?.destroy();
    this.tour = null;
    this.#clearViews();
    this.#setContent({});
    this.journeys = [];
  }

  /** Host-app hooks: any tracked event name (`$step_viewed`, `campaign_created`…), and
   * `ready`, `progress`, `message`, `error`. Returns the function that unsubscribes. */
  on(name: unknown, handler: unknown): () => void {
    const set = this.#handlers.get(String(name)) ?? new Set();
    if (typeof handler === "function") set.add(handler as Handler);
    this.#handlers.set(String(name), set);
    return () => set.delete(handler as Handler);
  }

  // Hosts of the views -------------------------------------------------------------------

  get root(): Root {
    this.#rootElement ??= new Root();
    return this.#rootElement;
  }

  report(code: string, message: string): void {
    if (this.#reporting) return;
    this.#reporting = true;
    try {
      this.#emit("error", { code, message });
      if (this.#outbox) this.track("$widget_error", { code, message: message.slice(0, 500) });
    } finally {
      this.#reporting = false;
    }
  }

  #emit(name: string, payload: unknown): void {
    for (const handler of this.#handlers.get(name) ?? []) {
      try {
        handler(payload);
      } catch (error) {
        console.error("Milepost:", error);
      }
    }
  }

  // Transport ----------------------------------------------------------------------------

  #hello(): Hello {
    const user = this.#user ?? { id: "", traits: {} };
    return {
      user: { id: user.id, traits: user.traits },
      user_hash: this.#user?.userHash,
      page: where(),
      sdk: SDK,
      session: this.#session(),
    };
  }

  #session(): string {
    const key = `milepost:session:${this.#key}`;
    const now = Date.now();
    let saved: { id: string; at: number } | null = null;
    try {
      saved = JSON.parse(this.#store?.getItem(key) ?? "null");
    } catch {
      // Unreadable: a new session, written over it below.
    }
    const id = saved && now - saved.at < SESSION_IDLE_MS ? saved.id : uuid();
    try {
      this.#store?.setItem(key, JSON.stringify({ id, at: now }));
    } catch {
      // Full or disabled storage: the widget keeps working from memory.
    }
    return id;
  }

  #flush(): void {
    const batch = this.#outbox?.take(100);
    if (batch?.length) this.#transport?.sendEvents(batch);
  }

  #receive(message: Message): void {
    // Every push to this user (progress, walkthrough, message…) carries the next sequence
    // number. A lost push is a gap: fetch progress and tour states afresh (that sets it).
    const type = message.type;
    const check = type === "welcome" ? "" : sequenceCheck(this.#seq, message.seq);
    if (check === "gap") void this.#resync();
    else if (check) this.#setSeq(message.seq);
    // A stale walkthrough push still answers this tab's move: it is no longer awaited.
    if (check === "stale" ? type !== "walkthrough" : check === "gap" && type === "progress") return;
    switch (type) {
      case "walkthrough": {
        this.#mine.delete(message.event as string);
        const walkthrough = this.#walkthrough(message.walkthrough);
        if (!walkthrough) return;
        if (check !== "stale") {
          walkthrough.state = tourState(message.state);
          // Started by this person since the welcome: its auto_start no longer holds.
          walkthrough.auto_start = false;
        }
        this.#follow(walkthrough);
        break;
      }
      case "welcome":
        this.#mine.clear();
        setLocale(message.locale);
        this.root.theme(message.theme);
        this.#setContent(message.content);
        this.journeys = parseJourneys(message.journeys);
        this.#setSeq(message.seq);
        this.render();
        this.#emit("ready", { user: message.user });
        break;
      case "content":
        this.#setContent(message.content);
        this.render();
        break;
      case "ack": {
        const rejected = list(message.rejected);
        this.#outbox?.ack(
          [...list(message.accepted), ...list(message.duplicates), ...rejected.map((r) => (r as Message)?.id)].map(String),
        );
        if (rejected.length) this.#emit("error", { code: "events_rejected", rejected });
        this.#flush();
        break;
      }
      case "progress":
        this.#onProgress(message);
        break;
      case "resync":
        void this.#resync();
        break;
      case "message":
        this.#showMessage(message);
        break;
      case "error":
        this.#emit("error", { code: message.code, message: message.message });
        break;
    }
  }

  #setSeq(seq: unknown): void {
    if (typeof seq === "number") {
      this.#seq = seq;
      this.#transport?.setSeq(seq);
    }
  }

  #setContent(raw: unknown): void {
    const { content, errors } = parseContent(raw);
    this.content = content;
    for (const error of errors) this.report("malformed_content", error);
    // Banners, guides, surveys, the resource center: the surfaces bundle, once some user has any.
    if (w.MilepostSurfaces || (raw as Content | null)?.surfaces) this.#surface("content", raw);
  }

  #onProgress(message: Message): void {
    const journey = parseJourney(message);
    if (!journey) return;
    const before = this.journeys.find((j) => j.key === journey.key);
    // Pushes carry no peer comparison: the welcome's stays.
    journey.peers ||= before?.peers;
    this.journeys = withJourney(this.journeys, journey);
    for (const name of newlyCompleted(before, journey)) celebrate(this.root, t(S.Reached, name));
    // The push of a journey's last milestone (only it carries `completed_at`): the surfaces
    // bundle, loaded for it if need be, celebrates a finished checklist.
    if (message.completed_at) this.#surface("progress", message);
    this.#emit("progress", message);
    this.#renderProgress();
  }

  async #resync(): Promise<void> {
    const snapshot = await this.#transport?.progress();
    if (!snapshot) return;
    this.journeys = parseJourneys(snapshot.journeys);
    this.#setSeq(snapshot.seq);
    this.#renderProgress();
    const states = (snapshot.walkthroughs ?? {}) as Record<string, unknown>;
    this.#mine.clear();
    for (const walkthrough of this.content.walkthroughs) {
      if (walkthrough.key in states) {
        walkthrough.state = tourState(states[walkthrough.key]);
        this.#follow(walkthrough);
      }
    }
  }

  #walkthrough(key: unknown): Walkthrough | undefined {
    return this.content.walkthroughs.find((w) => w.key === key);
  }

  /** Make this tab show what the server holds for the walkthrough (another tab moved it, or
   * refused this one's move), once this tab's own moves have all been answered. */
  #follow(walkthrough: Walkthrough): void {
    const state = walkthrough.state;
    const tour = this.tour;
    if (this.#mine.size || !state) return;
    if (tour?.walk.key === walkthrough.key) {
      if (!going(walkthrough)) tour.leave();
      else if (state.step !== tour.index || state.attempt !== tour.attempt) {
        tour.index = state.step;
        tour.attempt = state.attempt;
        tour.show();
      }
    } else if (!tour && going(walkthrough)) {
      this.tour = new Tour(walkthrough, this, state);
      this.tour.show();
    }
  }

  // Rendering ----------------------------------------------------------------------------

  render(): void {
    this.#renderTour();
    this.#renderTooltips();
    this.#renderProgress();
  }

  ended(): void {
    this.tour = null;
    this.freed?.();
  }

  celebrate(text: string): void {
    celebrate(this.root, text);
  }

  dismissed(key: string): void {
    this.#dismissedTooltips.add(key);
    this.#tooltips.delete(key);
  }

  act(item: ProgressItem): void {
    if (item.action === "start_walkthrough" && item.walkthrough) this.start(item.walkthrough);
    else if (item.action === "open_url") follow(item.url);
  }

  #renderTour(): void {
    const tour = this.tour;
    const current = tour && this.#walkthrough(tour.walk.key);
    if (tour && current) {
      // A publish may have changed the steps: carry on, at the same step, with the new ones.
      if (!same(current.steps, tour.walk.steps)) {
        tour.destroy();
        this.tour = new Tour(current, this, {
          step: Math.min(tour.index, current.steps.length - 1),
          attempt: tour.attempt,
        });
      }
      this.tour!.show();
      return;
    }
    this.tour?.destroy();
    this.tour = null;
    const walkthroughs = byPriority(this.content.walkthroughs);
    const resumed = walkthroughs.find(going);
    const started = walkthroughs.find(
      (w) => w.auto_start && urlMatches(w.steps[0]!.page_url_pattern, location.pathname, location.search),
    );
    if (resumed) {
      this.tour = new Tour(resumed, this, resumed.state!);
      this.tour.show();
    } else if (started && !this.held) {
      this.tour = new Tour(started, this);
      this.tour.begin();
    }
  }

  #renderTooltips(): void {
    const wanted = new Set<string>();
    for (const tip of byPriority(this.content.tooltips)) {
      if (this.#dismissedTooltips.has(tip.key)) continue;
      if (!urlMatches(tip.page_url_pattern, location.pathname, location.search)) continue;
      wanted.add(tip.key);
      const view = this.#tooltips.get(tip.key);
      if (!view || !same(view.tip, tip)) {
        view?.destroy();
        this.#tooltips.set(tip.key, new TooltipView(tip, this));
      }
    }
    for (const [key, view] of this.#tooltips) {
      if (!wanted.has(key)) {
        view.destroy();
        this.#tooltips.delete(key);
      }
    }
  }

  #renderProgress(): void {
    const bar = byPriority(this.content.progress_bars).find((b) =>
      this.journeys.some((j) => j.key === b.journey),
    );
    const journey = bar && this.journeys.find((j) => j.key === bar.journey);
    if (!bar || !journey || (bar.hide_when_complete && journey.percent >= 100)) {
      // Let the celebration show before the finished bar goes away, the bar showing itself
      // finished ("2 of 2", full) meanwhile, not the step before (a bar of another journey,
      // outranked by this one, keeps what it showed).
      const view = this.#progress;
      this.#progress = null;
      if (view && journey) {
        if (view.bar.journey === journey.key) view.render(journey);
        setTimeout(() => view.destroy(), 4000);
      } else view?.destroy();
      return;
    }
    if (!same(this.#progress?.bar, bar)) {
      this.#progress?.destroy();
      this.#progress = new ProgressView(bar, this);
    }
    this.#progress!.render(journey);
  }

  #clearViews(): void {
    for (const view of this.#tooltips.values()) view.destroy();
    this.#tooltips.clear();
    this.#progress?.destroy();
    this.#progress = null;
  }

  /** In-app messages and the surfaces (banners, guides, surveys, resource center) draw from
   * one lazy bundle (static/milepost/surfaces.js, from surfaces/), loaded with the first one:
   * most pages never get one. It takes over the queue of `[host, type, payload]` items. */
  #showMessage(message: Message): void {
    // A reconnect may push again a message this tab still shows.
    if (this.#messages.has(String(message.id))) return;
    this.#messages.add(String(message.id));
    this.#surface("message", message);
    this.#emit("message", message);
  }

  #surface(type: string, payload: unknown): void {
    (w.MilepostSurfaces ??= (load("surfaces.js"), [] as [Controller, string, unknown][])).push([this, type, payload]);
  }

  // Navigation ---------------------------------------------------------------------------

  #watchNavigation(): void {
    // Single-page apps change the URL through the history API; re-evaluate URL rules then.
    for (const method of ["pushState", "replaceState"] as const) {
      const original = history[method];
      history[method] = function (this: History, ...args: Parameters<History["pushState"]>) {
        const result = original.apply(this, args);
        queueMicrotask(() => api.page());
        return result;
      };
    }
    addEventListener("popstate", () => api.page());
    // Hidden is the last moment a page is sure to run (pagehide does not fire on every
    // mobile tab switch, and a navigation may not make the page hidden first): what is
    // still queued goes out as a beacon then. Twice is harmless, the server de-duplicates.
    const last = (): void => this.#transport?.beacon(this.#outbox?.all().slice(0, 100) ?? []);
    addEventListener("pagehide", last);
    document.addEventListener("visibilitychange", () => document.hidden && last());
  }
}

// Loader -------------------------------------------------------------------------------------

const script = document.currentScript as HTMLScriptElement | null;
const key = script?.dataset.key ?? "";
const apiBase = (script?.dataset.api ?? (script ? new URL(script.src).origin : location.origin)).replace(/\/$/, "");
const controller = new Controller(apiBase, key);

/** Every public call is guarded: the host's code never sees an exception from us. */
function guard<A extends unknown[], R>(name: string, fn: (...args: A) => R) {
  return (...args: A): R | undefined => {
    try {
      return fn(...args);
    } catch (error) {
      try {
        controller.report("internal", `${name}: ${String(error)}`);
      } catch {
        // Nothing else to do without breaking the host.
      }
      return undefined;
    }
  };
}

const METHODS = ["identify", "track", "page", "start", "reset", "on"] as const;
type Api = Record<(typeof METHODS)[number], (...args: unknown[]) => unknown>;
const api = {} as Api;
for (const name of METHODS) {
  const method = controller[name] as (...args: unknown[]) => unknown;
  api[name] = guard(name, (...args: unknown[]) => method.apply(controller, args));
}

type Call = [keyof Api, ...unknown[]];
const run = (call: unknown): void => {
  if (!Array.isArray(call) || !(call[0] in api)) return;
  const [method, ...args] = call as Call;
  (api[method] as (...a: unknown[]) => unknown)(...args);
};

const w = window as unknown as { Milepost?: Api; milepost?: unknown; MilepostSurfaces?: { push(item: [Controller, string, unknown]): void } };
const queued = Array.isArray(w.milepost) ? (w.milepost as unknown[]) : [];
w.Milepost = api;
w.milepost = { push: (...calls: unknown[]) => calls.forEach(run) };
if (!key) controller.report("missing_key", "key");
queued.forEach(run);

/** Load one of the SDK's lazy bundles, from where this one came. */
function load(file: string): void {
  document.head.append(Object.assign(document.createElement("script"), { src: `${apiBase}/static/milepost/${file}` }));
}

// The builder: admin opened this page with a one-time token in the fragment. It leaves the
// address bar at once; the builder's own bundle (loaded only then, and on the tab's next
// pages while its session lasts) reads it from its script address and draws in our root.
try {
  const token = location.hash.split("#milepost-builder=")[1];
  // A page opened from admin in a new tab has no history state to keep.
  if (token) history.replaceState(null, "", location.pathname + location.search);
  if (token || sessionStorage.milepostBuilder) load(`builder.js#${token}`);
} catch {
  // No session storage here: no builder either.
}

function follow(url: unknown): void {
  if (safeLink(url)) location.assign(url);
}
