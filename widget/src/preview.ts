/** Admin only (static/milepost/preview.js, never in the core bundle): each walkthrough step
 * of the admin form drawn by the widget's own renderer (render/card, its stylesheet and the
 * workspace's theme, in a shadow root), so authors see the step as end users will without a
 * customer page. The card sits in the form instead of floating over a page; title and buttons
 * follow the form as the author types, the body is the last saved one (Markdown is rendered
 * on the server). A banner's and a survey's change pages have theirs: preview_surfaces.ts. */
import { card } from "./render/card";
import { h, themeCss } from "./render/dom";
import { CSS } from "./render/styles";
import { mountSurface } from "./preview_surfaces";

interface PreviewStep {
  title: string;
  body_html: string;
  advance_on: string;
  index: number;
  count: number;
  walkthrough: string;
}

// The card in the flow of the admin page: no fixed position, no arrow, no entry animation.
const IN_PLACE =
  ":host{all:initial!important;display:block!important;position:relative!important;" +
  "z-index:auto!important}" +
  ".c{position:relative;top:auto;left:auto;animation:none}.a{display:none}";

/** The buttons a step shows (the same rules as the runtime's walkthrough card). */
function actions(step: PreviewStep): { text: string; primary?: boolean; run: () => void }[] {
  const out: { text: string; primary?: boolean; run: () => void }[] = [];
  const nothing = (): void => undefined;
  if (step.index > 0) out.push({ text: "Back", run: nothing });
  if (step.advance_on === "next") {
    out.push({ text: step.index < step.count - 1 ? "Next" : "Done", primary: true, run: nothing });
  } else if (step.advance_on === "target_click") {
    out.push({ text: "Show me", primary: true, run: nothing });
  }
  return out;
}

function field(form: Element | null, name: string): HTMLInputElement | HTMLSelectElement | null {
  return form?.querySelector(`[name$="-${name}"]`) ?? null;
}

export function mount(container: HTMLElement): void {
  const step = JSON.parse(container.dataset.step ?? "{}") as PreviewStep;
  const host = h("milepost-step-preview" as "div");
  const shadow = host.attachShadow({ mode: "open" });
  const theme = themeCss(JSON.parse(container.dataset.theme ?? "{}"));
  shadow.adoptedStyleSheets = [CSS, IN_PLACE, theme].map((text) => {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(text);
    return sheet;
  });
  const layer = h("div", { class: "l", dir: getComputedStyle(document.documentElement).direction });
  shadow.append(layer);
  container.replaceChildren(host);
  // The inline's own fields: the preview follows them as the author edits.
  const form = container.closest(".inline-related");
  const draw = (): void => {
    const title = field(form, "title");
    const advance = field(form, "advance_on");
    const now = {
      ...step,
      title: title ? title.value : step.title,
      advance_on: advance ? advance.value : step.advance_on,
    };
    const el = card({
      title: now.title,
      html: now.body_html,
      meta: `${now.index + 1} of ${now.count}`,
      actions: actions(now),
      closeLabel: `Close ${now.walkthrough || "tour"}`,
      onClose: () => undefined,
    });
    el.dataset.step = String(now.index);
    layer.replaceChildren(el);
  };
  form?.addEventListener("input", draw);
  form?.addEventListener("change", draw);
  draw();
}

function mountAll(): void {
  document.querySelectorAll<HTMLElement>("[data-milepost-step-preview]").forEach(mount);
  document.querySelectorAll<HTMLElement>("[data-milepost-surface-preview]").forEach(mountSurface);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
else mountAll();
