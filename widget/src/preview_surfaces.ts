/** Admin only, part of static/milepost/preview.js: the "Preview" row of a banner's and a
 * survey's change page. The surfaces bundle's own code (surfaces/preview.ts) draws the last
 * saved draft on the admin page as end users get it on theirs: the banner as the real bar (top
 * or bottom, pushing the page or over it) until its × or "Hide" takes it down; the survey as
 * its card in the window's corner, or, inline, inside the preview row (standing in for its
 * host element, which is on the customer's page), from any question. Nothing is recorded. */
import { locale, setLocale } from "./i18n";
import { h, Root } from "./render/dom";
import { EN } from "./strings-en";
import { type Preview, previewBanner, previewSurvey } from "./surfaces/preview";
import { questions } from "./surfaces/survey_flow";

let root: Root | null = null;

const NOTES: Record<string, string> = {
  banner: "The last saved draft, drawn on this page as the bar end users get: at its position, pushing the page or over it. Its button goes nowhere here.",
  inline: "The last saved draft as end users get it inside its host element (here, just below), from the question chosen. Answers go nowhere.",
  popover: "The last saved draft as end users get it, a card in the window's corner, from the question chosen. Answers go nowhere.",
  empty: "This survey has no question yet: write one and save to preview it.",
};

export function mountSurface(container: HTMLElement): void {
  // No widget on this page gives the person's language: the server's English words.
  if (!locale()) setLocale(EN);
  root ??= new Root();
  root.theme(JSON.parse(container.dataset.theme ?? "{}"));
  const kind = container.dataset.kind ?? "";
  const raw = JSON.parse(container.dataset.item ?? "{}") as Record<string, unknown>;
  const inline = kind === "survey" && raw.display === "inline";
  const all = kind === "survey" ? questions(raw.questions) : [];
  const chooser = h("select", { "aria-label": "Preview from question" });
  all.forEach((q, index) => chooser.append(h("option", { value: q.key }, `${index + 1}. ${q.prompt}`)));
  const spot = h("div");
  let shown: Preview | null = null;
  const hide = (): void => {
    shown?.destroy();
    shown = null;
  };
  const show = (): void => {
    hide();
    shown = kind === "banner" ? previewBanner(root!, raw) : previewSurvey(root!, raw, inline ? spot : null, chooser.value);
  };
  container.replaceChildren(
    h("button", { type: "button", class: "button", onclick: show }, "Show"),
    " ",
    h("button", { type: "button", class: "button", onclick: hide }, "Hide"),
    " ",
    all.length ? chooser : "",
    h("p", { class: "help" }, NOTES[kind === "banner" ? "banner" : !all.length ? "empty" : inline ? "inline" : "popover"]),
    spot,
  );
}
