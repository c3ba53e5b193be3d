/** The widget's typed state: content and journeys as the server sent them (validated here, so
 * malformed content is dropped with a reason instead of breaking the host page) and the pure
 * transitions the rest of the SDK applies to them. */

export type Placement = "auto" | "top" | "bottom" | "left" | "right";

// Content keeps the server's field names (see onboarding/targeting.py): one vocabulary on
// both sides, and no renaming code in the bundle.
export interface Step {
  id: number;
  page_url_pattern: string;
  selector: string;
  title: string;
  body_html: string;
  placement: Placement;
  advance_on: string;
  advance_event: string;
  spotlight: boolean;
  wait_timeout_ms: number;
  on_target_missing: "modal" | "skip" | "end";
}

/** A walkthrough's state for this user: the server's one truth, pushed to every tab. `attempt`
 * counts the user's starts of it; a transition names the attempt and step it came from. */
export interface TourState {
  status: "in_progress" | "completed" | "dismissed";
  step: number;
  attempt: number;
}

export interface Walkthrough {
  key: string;
  name: string;
  priority: number;
  auto_start: boolean;
  steps: Step[];
  state: TourState | null;
}

export interface Tooltip {
  key: string;
  page_url_pattern: string;
  selector: string;
  body_html: string;
  trigger: string;
  placement: Placement;
  priority: number;
}

export interface ProgressItem {
  milestone: string;
  label: string;
  action: string;
  walkthrough: string;
  url: string;
}

export interface ProgressBar {
  key: string;
  title: string;
  journey: string;
  style: string;
  position: string;
  hide_when_complete: boolean;
  priority: number;
  items: ProgressItem[];
}

export interface Content {
  walkthroughs: Walkthrough[];
  tooltips: Tooltip[];
  progress_bars: ProgressBar[];
  /** Banners, guides, surveys, resource center: read by the surfaces bundle (surfaces/). */
  surfaces?: unknown;
}

export interface MilestoneView {
  key: string;
  name: string;
  phase: string;
  completedAt: string | null;
}

export interface JourneyView {
  key: string;
  name: string;
  milestones: MilestoneView[];
  percent: number;
  pql: boolean;
  /** The server's peer comparison ("Faster than 70 % of …"), empty when it has none. */
  peers?: string;
}

type Raw = Record<string, unknown>;

export const isObject = (value: unknown): value is Raw =>
  typeof value === "object" && value !== null && !Array.isArray(value);
export const text = (value: unknown): string => (typeof value === "string" ? value : "");
const number = (value: unknown, fallback: number): number =>
  typeof value === "number" && Number.isFinite(value) ? value : fallback;
export const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const PLACEMENTS = ["auto", "top", "bottom", "left", "right"];

/** Thrown (as a plain string) for content the widget must leave out. */

/** Copy the fields named in `defaults` from `raw`: a missing value or one of the wrong type
 * takes the default; a `required` field must be a non-empty string. */
function shape<T>(raw: unknown, defaults: Raw, required: string[]): T {
  if (!isObject(raw)) throw "not an object";
  const out: Raw = {};
  for (const [field, fallback] of Object.entries(defaults)) {
    const value = raw[field];
    out[field] = typeof value === typeof fallback && value !== null ? value : fallback;
  }
  for (const field of required) if (!out[field]) throw `missing ${field}`;
  if ("placement" in out && !PLACEMENTS.includes(out.placement as string)) out.placement = "auto";
  return out as T;
}

const STEP = {
  id: 0, page_url_pattern: "", selector: "", title: "", body_html: "", placement: "auto",
  advance_on: "next", advance_event: "", spotlight: false, wait_timeout_ms: 5000,
  on_target_missing: "modal",
};  // prettier-ignore
const WALKTHROUGH = { key: "", name: "", priority: 0, auto_start: true };
const TOOLTIP = {
  key: "", page_url_pattern: "", selector: "", body_html: "", trigger: "hotspot",
  placement: "auto", priority: 0,
};  // prettier-ignore
const PROGRESS_BAR = {
  key: "", title: "", journey: "", style: "checklist", position: "bottom-right",
  hide_when_complete: true, priority: 0,
};  // prettier-ignore
export const ITEM = { milestone: "", label: "", action: "none", walkthrough: "", url: "" };

function walkthrough(raw: unknown): Walkthrough {
  const out = shape<Walkthrough>(raw, WALKTHROUGH, ["key"]);
  out.steps = list((raw as Raw).steps).map((step) => shape<Step>(step, STEP, ["title"]));
  if (!out.steps.length) throw "no steps";
  out.state = tourState((raw as Raw).state);
  return out;
}

/** A walkthrough's state as `welcome`, a `walkthrough` push or the progress snapshot send it. */
export const tourState = (raw: unknown): TourState | null =>
  isObject(raw) ? shape<TourState>(raw, { status: "in_progress", step: 0, attempt: 0 }, []) : null;

function progressBar(raw: unknown): ProgressBar {
  const out = shape<ProgressBar>(raw, PROGRESS_BAR, ["key", "journey"]);
  out.items = list((raw as Raw).items).map((item) => shape<ProgressItem>(item, ITEM, ["milestone"]));
  return out;
}

/** The items of `source[kind]` that parse; each one left out is named in `errors`. */
function parseAll<T>(source: Raw, kind: string, parse: (item: unknown) => T, errors: string[]): T[] {
  const out: T[] = [];
  list(source[kind]).forEach((item, index) => {
    try {
      out.push(parse(item));
    } catch (error) {
      errors.push(`${kind}[${index}]: ${String(error)}`);
    }
  });
  return out;
}

/** Content from `welcome` or `content`; anything malformed is left out and named in `errors`. */
export function parseContent(raw: unknown): { content: Content; errors: string[] } {
  const errors: string[] = [];
  const source = isObject(raw) ? raw : {};
  if (!isObject(raw)) errors.push("not an object");
  return {
    content: {
      walkthroughs: parseAll(source, "walkthroughs", walkthrough, errors),
      tooltips: parseAll(source, "tooltips", (t) => shape<Tooltip>(t, TOOLTIP, ["key", "selector"]), errors),
      progress_bars: parseAll(source, "progress_bars", progressBar, errors),
    },
    errors,
  };
}

/** One journey as sent in `welcome.journeys`, `progress` or the progress endpoint. */
export function parseJourney(raw: unknown): JourneyView | null {
  if (!isObject(raw)) return null;
  const journey = isObject(raw.journey) ? raw.journey : raw;
  const key = text(journey.key);
  if (!key) return null;
  const milestones = list(raw.milestones)
    .filter(isObject)
    .map((m) => ({
      key: text(m.key),
      name: text(m.name) || text(m.key),
      phase: text(m.phase),
      completedAt: typeof m.completed_at === "string" ? m.completed_at : null,
    }))
    .filter((m) => m.key);
  const done = milestones.filter((m) => m.completedAt).length;
  const fallback = milestones.length ? Math.round((100 * done) / milestones.length) : 0;
  return {
    key,
    name: text(journey.name) || key,
    milestones,
    percent: Math.max(0, Math.min(100, number(raw.percent, fallback))),
    pql: raw.pql === true,
    peers: text(isObject(raw.peers) && raw.peers.text),
  };
}

export function parseJourneys(raw: unknown): JourneyView[] {
  return list(raw)
    .map(parseJourney)
    .filter((j): j is JourneyView => j !== null);
}

/** Replace one journey in the list (or add it), keeping the others. */
export function withJourney(journeys: JourneyView[], journey: JourneyView): JourneyView[] {
  const others = journeys.filter((j) => j.key !== journey.key);
  return [...others, journey];
}

/** Milestones completed in `next` that were not in `previous`: what to celebrate. */
export function newlyCompleted(previous: JourneyView | undefined, next: JourneyView): string[] {
  const before = new Set(previous?.milestones.filter((m) => m.completedAt).map((m) => m.key));
  return next.milestones.filter((m) => m.completedAt && !before.has(m.key)).map((m) => m.name);
}

/** How a pushed sequence number relates to the last one applied. A gap means a push was lost
 * (the channel layer delivers at most once): resync from the server. */
export function sequenceCheck(last: number, seq: unknown): "apply" | "stale" | "gap" {
  if (typeof seq !== "number") return "apply";
  if (seq <= last) return "stale";
  return seq === last + 1 || last === 0 ? "apply" : "gap";
}
