/** Banners and surveys drawn for an author, not an end user (the builder's previews on the
 * customer's page, admin's on the change page): the surfaces' own code (`drawBar`, `Shown`),
 * with the real root to draw in and a host that records nothing, starts nothing and never makes
 * the piece wait its turn, so an author's look leaves the end users' data alone. */
import type { Root } from "../render/dom";
import { drawBar } from "./banner";
import type { Context, Host, Raw } from "./contract";
import { DEFAULTS, Shown, type Survey } from "./survey";
import { questions } from "./survey_flow";
import { item } from "./util";

export interface Preview {
  destroy(): void;
}

export function previewHost(root: Root): Host {
  const nothing = (): void => undefined;
  return {
    root,
    content: { walkthroughs: [], tooltips: [], progress_bars: [] } as never,
    journeys: [],
    tour: null,
    held: false,
    track: nothing,
    on: () => nothing,
    start: nothing,
    render: nothing,
  };
}

/** The bar as end users get it (`raw`: a banner's fields, `body_html` its words); its call to
 * action does nothing, its × takes the preview down. `extra`: one more sheet for its root. */
export function previewBanner(root: Root, raw: Raw, extra?: CSSStyleSheet): Preview {
  const element = drawBar(previewHost(root), {
    title: String(raw.title ?? ""),
    html: String(raw.body_html ?? ""),
    position: String(raw.position ?? "top"),
    mode: String(raw.mode ?? "push"),
    dismissible: raw.dismissible !== false,
    ctaLabel: String(raw.cta_label ?? ""),
    onClick: () => undefined,
    onDismiss: () => element.remove(),
  });
  const shadow = element.shadowRoot;
  if (shadow && extra) shadow.adoptedStyleSheets = [...shadow.adoptedStyleSheets, extra];
  element.dataset.preview = "";
  return { destroy: () => element.remove() };
}

/** The survey as end users get it, from question `from` (a key; else the first): a popover card
 * in `root`, or inline inside `target`. Null when it has no question to ask. */
export function previewSurvey(root: Root, raw: Raw, target: Element | null, from = ""): Preview | null {
  const survey = item<Survey>({ ...raw, version: 0, priority: 0 }, DEFAULTS);
  const all = questions(raw.questions);
  if (!survey || !all.length) return null;
  const context: Context = {
    host: previewHost(root),
    queue: { want: (entry) => entry.show(), done: () => undefined, drop: () => undefined },
  };
  const view = new Shown(survey, all, context, !!target, all.find((q) => q.key === from));
  view.start(target ?? undefined);
  return { destroy: () => view.drop("preview") };
}
