/** The builder's side of the surfaces bundle's kinds it edits (empty-state guides, banners,
 * surveys): their fields in the panel, and their previews drawn by the very code end users get
 * (surfaces/preview.ts around `drawBar` and the survey's `Shown`, the guide's stylesheet),
 * bundled into builder.js from source, on this very page. */
import { h, type Root } from "../render/dom";
import { type Preview, previewBanner, previewHost, previewSurvey } from "../surfaces/preview";
import { body, GUIDE_CSS, shadowed } from "../surfaces/styles";
import { questions } from "../surfaces/survey_flow";

type Doc = Record<string, unknown>;
export type { Preview };

/** What the builder's panel offers the kinds' fields and previews (builder/index.ts). */
export interface Panel {
  readonly root: Root;
  readonly doc: Doc;
  field(item: Doc, name: string, label: string, kind?: "input" | "textarea" | "select"): HTMLElement[];
  /** A selector field with its match count and Pick / Wider / Narrower; `prompt` while picking. */
  selectorField(item: Doc, label: string, prompt: string): HTMLElement[];
  /** The element-present trigger's field. */
  trigger(): HTMLElement[];
  checkbox(item: Doc, name: string, label: string, fallback: boolean): HTMLElement;
  onThisPage(pattern: string): boolean;
  showPreview(): void;
}

/** The choices of the surfaces' select fields (the server's own, onboarding/models.py). */
export const SURFACE_OPTIONS: Record<string, Record<string, [string, string][]>> = {
  banner: {
    position: [
      ["top", "Top"],
      ["bottom", "Bottom"],
    ],
    mode: [
      ["push", "Push the page"],
      ["overlay", "Over the page"],
    ],
  },
  survey: {
    display: [
      ["popover", "Popover (bottom corner card)"],
      ["inline", "Inline (inside a host element)"],
    ],
    position: [
      ["bottom-right", "Bottom right"],
      ["bottom-left", "Bottom left"],
    ],
  },
};

const PAGE = "Page (path, * for any run of characters; empty: every page)";
const TYPES: Record<string, string> = {
  nps: "NPS 0-10",
  rating: "rating",
  single_choice: "one choice",
  multiple_choice: "several choices",
  text: "free text",
};

/** The first element `selector` matches on this page, or null (also for invalid CSS). */
function find(selector: unknown): Element | null {
  try {
    return selector ? document.querySelector(String(selector)) : null;
  } catch {
    return null;
  }
}

/** The document as the server keeps it: a popover survey goes inside no element (the model
 * refuses a host element then), so the one picked for an inline display is not saved with it. */
export function savedForm(kind: string | undefined, doc: Doc): Doc {
  return kind === "survey" && doc.display !== "inline" ? { ...doc, selector: "" } : doc;
}

// Empty-state guides ----------------------------------------------------------------------

export function guideFields(panel: Panel): HTMLElement[] {
  const doc = panel.doc;
  return [
    ...panel.field(doc, "title", "Title"),
    ...panel.field(doc, "body_markdown", "Body (Markdown)", "textarea"),
    ...panel.selectorField(doc, "Host element: the guide goes inside it (CSS selector)", "Click the element the guide goes inside (Esc cancels)"),
    ...panel.field(doc, "page_url_pattern", "Page (path, * for any run of characters)"),
    ...panel.trigger(),
    ...panel.field(doc, "cta_label", "Call to action (button label, optional)"),
    ...panel.field(doc, "cta_url", "Call to action link"),
  ];
}

/** The guide as end users see it, inside its host element on this page. */
export function guidePreview(panel: Panel, html: string): Preview | null {
  const doc = panel.doc;
  const target = panel.onThisPage(String(doc.page_url_pattern)) ? find(doc.selector) : null;
  if (!target) return null;
  const { element, inner } = shadowed(previewHost(panel.root), "milepost-guide", GUIDE_CSS);
  const title = String(doc.title ?? "");
  inner.append(
    h(
      "div",
      { class: "gd", role: "region", "aria-label": title || "Guide", dir: getComputedStyle(document.documentElement).direction },
      title && h("h2", null, title),
      body(html),
      doc.cta_label ? h("button", { type: "button", class: "p" }, String(doc.cta_label)) : "",
      doc.dismissible === false ? "" : h("button", { type: "button", class: "x", "aria-label": "Dismiss guide" }, "×"),
    ),
  );
  element.dataset.preview = "";
  target.append(element);
  return { destroy: () => element.remove() };
}

// Banners ---------------------------------------------------------------------------------

export function bannerFields(panel: Panel): HTMLElement[] {
  const doc = panel.doc;
  return [
    ...panel.field(doc, "title", "Title"),
    ...panel.field(doc, "body_markdown", "Body (Markdown)", "textarea"),
    h(
      "div",
      { class: "row" },
      h("div", null, ...panel.field(doc, "position", "Position", "select")),
      h("div", null, ...panel.field(doc, "mode", "Mode", "select")),
    ),
    ...panel.field(doc, "cta_label", "Call to action (button label, optional)"),
    ...panel.field(doc, "cta_url", "Call to action link"),
    panel.checkbox(doc, "dismissible", " People can close it (×, Esc)", true),
    ...panel.field(doc, "page_url_pattern", PAGE),
    ...panel.trigger(),
    h("p", { class: "note" }, "The preview is the bar end users get on this page; here its button goes nowhere and × only hides the preview."),
  ];
}

/** The bar as end users get it. `room` is the builder's sheet that keeps an overlay bar in the
 * part of the window the page moved to (the panel covers the rest). */
export function bannerPreview(panel: Panel, html: string, room: CSSStyleSheet): Preview | null {
  const doc = panel.doc;
  if (!panel.onThisPage(String(doc.page_url_pattern ?? ""))) return null;
  return previewBanner(panel.root, { ...doc, body_html: html }, room);
}

// Surveys ---------------------------------------------------------------------------------

/** The question the preview starts at (a key; the first one when unknown). */
let previewFrom = "";

export function surveyFields(panel: Panel): HTMLElement[] {
  const doc = panel.doc;
  const out = [...panel.field(doc, "display", "Shown as", "select")];
  if (doc.display === "inline") {
    out.push(...panel.selectorField(doc, "Host element: the survey goes inside it (CSS selector)", "Click the element the survey goes inside (Esc cancels)"));
  } else {
    out.push(...panel.field(doc, "position", "Corner", "select"));
  }
  out.push(...panel.field(doc, "page_url_pattern", PAGE), ...panel.trigger(), ...panel.field(doc, "thank_you", "Thank-you words"));
  const all = questions(doc.questions);
  const chooser = h("select", { id: "mpb-question" });
  all.forEach((q, index) => chooser.append(h("option", { value: q.key }, `${index + 1}. ${q.prompt} (${TYPES[q.type] ?? q.type})`)));
  if (all.some((q) => q.key === previewFrom)) chooser.value = previewFrom;
  chooser.addEventListener("change", () => {
    previewFrom = chooser.value;
    panel.showPreview();
  });
  out.push(
    h("label", { for: "mpb-question" }, "Preview from question"),
    chooser,
    h("div", { class: "tg" }, h("button", { type: "button", onclick: () => panel.showPreview() }, "Preview again")),
    h(
      "p",
      { class: "note" },
      all.length
        ? "Answer in the preview to see the next question (an NPS score leads to its band's follow-up); nothing is recorded. The questions are written on the survey's page in admin."
        : "This survey has no questions yet: write them on the survey's page in admin.",
    ),
  );
  return out;
}

/** The survey as end users get it: a card in its corner, or inside its host element. */
export function surveyPreview(panel: Panel): Preview | null {
  const doc = panel.doc;
  if (!panel.onThisPage(String(doc.page_url_pattern ?? ""))) return null;
  const inline = doc.display === "inline";
  const target = inline ? find(doc.selector) : null;
  if (inline && !target) return null;
  return previewSurvey(panel.root, doc, target, previewFrom);
}
