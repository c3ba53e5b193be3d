/** Loader and public API: `window.Milepost.{identify,track,page,start,reset,on}`, the queued
 * `window.milepost` array, and the controller wiring transport, outbox, state and rendering.
 * No call ever throws into the host's code: failures become a `$widget_error` event and an
 * `error` hook call. */
import { Outbox, type QueuedEvent, uuid } from "./queue";
import { card, focusCard } from "./render/card";
import { Root } from "./render/dom";
import { celebrate, ProgressView } from "./render/progress";
import { TooltipView } from "./render/tooltip";
import { type Hello, type Message, Transport } from "./socket";
import {
  type Content,
  type JourneyView,
  newlyCompleted,
  parseContent,
  parseJourney,
  parseJourneys,
  type ProgressItem,
  resumeState,
  sequenceCheck,
  type TourState,
  withJourney,
} from "./state";
import { byPriority, safeLink, urlMatches } from "./targeting";
import { Tour } from "./walkthrough";

const SDK = "milepost-js/0.1.0";
const SESSION_IDLE_MS = 30 * 60 * 1000;
type Handler = (payload: unknown) => void;
type Traits = Record<string, unknown>;
const STORAGE = "storage_unavailable";
const where = () => ({ url: location.href, title: document.title });

function storage(): Storage | null {
  try {
    const s = window.localStorage;
    s.setItem("milepost:probe", "1");
    s.removeItem("milepost:probe");
    return s;
  } catch {
    return null;
  }
}

/** Equal content (as the server sent it, so key order is stable). */
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function readJson<T>(store: Storage | null, key: string): T | null {
  try {
    return JSON.parse(store?.getItem(key) ?? "null") as T | null;
  } catch {
    return null;
  }
}

function writeJson(store: Storage | null, key: string, value: unknown): void {
  try {
    store?.setItem(key, JSON.stringify(value));
  } catch {
    // Full or disabled storage: the widget keeps working from memory.
  }
}

class Controller {
  readonly #store = storage();
  readonly #handlers = new Map<string, Set<Handler>>();
  #rootElement: Root | null = null;
  #user: { id: string; traits: Traits; userHash?: string } | null = null;
  #outbox: Outbox | null = null;
  #transport: Transport | null = null;
  #content: Content = parseContent({}).content;
  #journeys: JourneyView[] = [];
  #seq = 0;
  #tour: Tour | null = null;
  #tooltips = new Map<string, TooltipView>();
  #progress: ProgressView | null = null;
  #dismissedTooltips = new Set<string>();
  #messages = new Set<string>();
  #lastUrl = "";
  #reporting = false;

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
      this.report("missing_user", "identify() needs a user id");
      return;
    }
    const userHash = (options as { userHash?: unknown } | undefined)?.userHash;
    const next = {
      id: String(id),
      traits: traits && typeof traits === "object" ? (traits as Traits) : {},
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
      onRefused: (code, message) => this.#emit("error", { code, message }),
    });
    this.#transport.start();
    this.#lastUrl = location.href;
    this.track("$pageview", where());
  }

  track(name: unknown, properties?: unknown): void {
    if (typeof name !== "string" || !name || !this.#outbox) return;
    const props =
      properties && typeof properties === "object" ? { ...(properties as Traits) } : {};
    if (/^\$(walkthrough|step|tooltip)/.test(name)) {
      props.session = this.#session();
    }
    const event: QueuedEvent = { id: uuid(), name, timestamp: new Date().toISOString(), properties: props };
    this.#outbox.add(event);
    this.#flush();
    this.#emit(name, props);
    if (!name.startsWith("$")) this.#tour?.onEvent(name);
  }

  page(): void {
    if (location.href === this.#lastUrl || !this.#user) return;
    this.#lastUrl = location.href;
    this.track("$pageview", where());
    this.#transport?.send({ type: "page", ...where() });
    this.#render();
  }

  start(key: unknown): void {
    const walkthrough = this.#content.walkthroughs.find((w) => w.key === key);
    if (!walkthrough) {
      this.report("unknown_walkthrough", `no walkthrough ${String(key)} for this user`);
      return;
    }
    this.#tour?.clear();
    this.#tour = new Tour(walkthrough, this, 0);
    this.#tour.begin();
  }

  reset(): void {
    this.#transport?.close();
    this.#transport = null;
    this.#outbox = null;
    this.#user = null;
    this.#seq = 0;
    this.#tour?.clear();
    this.#tour = null;
    this.#clearViews();
    this.#content = parseContent({}).content;
    this.#journeys = [];
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
        console.error("Milepost: a handler threw", error);
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
    const saved = readJson<{ id: string; at: number }>(this.#store, key);
    const id = saved && now - saved.at < SESSION_IDLE_MS ? saved.id : uuid();
    writeJson(this.#store, key, { id, at: now });
    return id;
  }

  #flush(): void {
    const batch = this.#outbox?.take(100);
    if (batch?.length) this.#transport?.sendEvents(batch);
  }

  #receive(message: Message): void {
    // Every push to this user (progress, message…) carries the next sequence number.
    if (message.type !== "welcome") {
      const check = sequenceCheck(this.#seq, message.seq);
      if (check === "stale") return;
      if (check === "gap") {
        // A push was lost: fetch the progress afresh (it sets the sequence number).
        void this.#resync();
        if (message.type === "progress") return;
      } else this.#setSeq(message.seq);
    }
    switch (message.type) {
      case "welcome":
        this.root.theme(message.theme);
        this.#setContent(message.content);
        this.#journeys = parseJourneys(message.journeys);
        this.#setSeq(message.seq);
        this.#render();
        this.#emit("ready", { user: message.user });
        break;
      case "content":
        this.#setContent(message.content);
        this.#render();
        break;
      case "ack": {
        const ids = [message.accepted, message.duplicates].flatMap((l) => (Array.isArray(l) ? l : []));
        const rejected = Array.isArray(message.rejected) ? message.rejected : [];
        for (const r of rejected) if (r && typeof r === "object" && "id" in r) ids.push(r.id);
        this.#outbox?.ack(ids.map(String));
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
    this.#content = content;
    for (const error of errors) this.report("malformed_content", error);
  }

  #onProgress(message: Message): void {
    const journey = parseJourney(message);
    if (!journey) return;
    const before = this.#journeys.find((j) => j.key === journey.key);
    this.#journeys = withJourney(this.#journeys, journey);
    for (const name of newlyCompleted(before, journey)) celebrate(this.root, `${name}: done!`);
    this.#emit("progress", message);
    this.#renderProgress();
  }

  async #resync(): Promise<void> {
    const snapshot = await this.#transport?.progress();
    if (!snapshot) return;
    this.#journeys = parseJourneys(snapshot.journeys);
    this.#setSeq(snapshot.seq);
    this.#renderProgress();
  }

  // Rendering ----------------------------------------------------------------------------

  #render(): void {
    this.#renderTour();
    this.#renderTooltips();
    this.#renderProgress();
  }

  #tourKey(): string {
    return `milepost:tours:${this.#key}:${this.#user?.id ?? ""}`;
  }

  /** This session's local tour states (written before the server could have heard). */
  #localTours(): Record<string, TourState> {
    const saved = readJson<{ session: string; tours: Record<string, TourState> }>(
      this.#store,
      this.#tourKey(),
    );
    return saved && saved.session === this.#session() ? saved.tours : {};
  }

  remember(key: string, state: TourState): void {
    writeJson(this.#store, this.#tourKey(), {
      session: this.#session(),
      tours: { ...this.#localTours(), [key]: state },
    });
  }

  ended(): void {
    this.#tour = null;
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
    const tour = this.#tour;
    const current = tour && this.#content.walkthroughs.find((w) => w.key === tour.walkthrough.key);
    if (tour && current) {
      // A publish may have changed the steps: carry on, at the same step, with the new ones.
      if (!same(current.steps, tour.walkthrough.steps)) {
        tour.clear();
        this.#tour = new Tour(current, this, Math.min(tour.index, current.steps.length - 1));
      }
      this.#tour!.show();
      return;
    }
    this.#tour?.clear();
    this.#tour = null;
    const local = this.#localTours();
    const path = location.pathname;
    for (const walkthrough of byPriority(this.#content.walkthroughs)) {
      const state = resumeState(walkthrough.state, local[walkthrough.key] ?? null, walkthrough.steps.length);
      if (state?.status === "in_progress") {
        this.#tour = new Tour(walkthrough, this, state.step);
        this.#tour.show();
        return;
      }
    }
    for (const walkthrough of byPriority(this.#content.walkthroughs)) {
      const state = local[walkthrough.key];
      if (walkthrough.auto_start && !state && urlMatches(walkthrough.steps[0]!.page_url_pattern, path, location.search)) {
        this.#tour = new Tour(walkthrough, this, 0);
        this.#tour.begin();
        return;
      }
    }
  }

  #renderTooltips(): void {
    const wanted = new Set<string>();
    for (const tip of byPriority(this.#content.tooltips)) {
      if (this.#dismissedTooltips.has(tip.key)) continue;
      if (!urlMatches(tip.page_url_pattern, location.pathname, location.search)) continue;
      wanted.add(tip.key);
      const view = this.#tooltips.get(tip.key);
      if (!view || !same(view.tooltip, tip)) {
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
    const bar = byPriority(this.#content.progress_bars).find((b) =>
      this.#journeys.some((j) => j.key === b.journey),
    );
    const journey = bar && this.#journeys.find((j) => j.key === bar.journey);
    if (!bar || !journey || (bar.hide_when_complete && journey.percent >= 100)) {
      // Let the celebration show before the finished bar goes away.
      const view = this.#progress;
      this.#progress = null;
      if (view && journey) setTimeout(() => view.destroy(), 4000);
      else view?.destroy();
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

  #showMessage(message: Message): void {
    // A reconnect may push again a message this tab still shows.
    if (this.#messages.has(String(message.id))) return;
    this.#messages.add(String(message.id));
    const props = { message: message.id, rule: message.rule };
    const cta = message.cta as { label?: unknown; url?: unknown } | undefined;
    let el: HTMLElement | null = null;
    const close = (): void => {
      el?.remove();
    };
    const actions = [];
    if (cta && typeof cta.label === "string") {
      actions.push({
        text: cta.label,
        primary: true,
        run: () => {
          this.track("$message_clicked", props);
          close();
          follow(cta.url);
        },
      });
    }
    el = card({
      title: typeof message.title === "string" ? message.title : "",
      html: typeof message.body_html === "string" ? message.body_html : "",
      modal: message.style === "modal",
      actions,
      closeLabel: "Close message",
      onClose: () => {
        this.track("$message_dismissed", props);
        close();
      },
    });
    el.dataset.message = String(message.id ?? "");
    if (message.style !== "modal") el.classList.add("k");
    this.root.attach();
    this.root.layer.append(el);
    if (message.style === "modal") focusCard(el);
    this.track("$message_shown", props);
    this.#emit("message", message);
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

const w = window as unknown as { Milepost?: Api; milepost?: unknown };
const queued = Array.isArray(w.milepost) ? (w.milepost as unknown[]) : [];
w.Milepost = api;
w.milepost = { push: (...calls: unknown[]) => calls.forEach(run) };
if (!key) controller.report("missing_key", "the script tag needs data-key");
queued.forEach(run);

function follow(url: unknown): void {
  const href = safeLink(url, location.href);
  if (href) location.assign(href);
}
