/** The surfaces' own stylesheets, adopted (constructable stylesheets, strict-CSP safe: no
 * `style` attribute or element) by the shadow roots of the elements they place in the page: a
 * banner's `<milepost-banner>` and a guide's `<milepost-guide>`. Each adopts the workspace's
 * theme sheet too (the core root's second sheet), so a theme change reaches them. `:host`
 * resets with `all: initial !important`, like the core root, against hostile host CSS. */
import { locale } from "../i18n";
import { h } from "../render/dom";
import type { Host } from "./contract";

const VARS = "--p:#4f46e5;--t:#1f2937;--b:#fff;--f:system-ui,sans-serif;--r:10px";
const COMMON =
  "*{box-sizing:border-box}" +
  "p{margin:0}a{color:inherit}img{max-width:100%}" +
  "button{font:inherit;cursor:pointer;border-radius:6px;border:1px solid #0003;background:0 0;color:inherit;padding:6px 12px}" +
  ":focus-visible{outline:3px solid var(--p);outline-offset:2px}" +
  "@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}";

export const BANNER_CSS =
  `:host{all:initial!important;display:block!important;position:relative!important;z-index:2147483646!important;${VARS}}` +
  ":host(.fixed){position:fixed!important;left:0!important;right:0!important}" +
  ":host(.bottom){bottom:0!important}" +
  ":host(.sticky){position:sticky!important;bottom:0!important}" +
  COMMON +
  ".bar{display:flex;align-items:center;gap:12px;padding:10px 16px;background:var(--p);color:#fff;font:14px/1.45 var(--f);box-shadow:0 1px 6px #0003}" +
  ".txt{flex:1;min-width:0}" +
  ".txt>strong{display:block}" +
  ".cta{background:#fff;color:var(--p);border-color:#fff;font-weight:600;white-space:nowrap}" +
  ".x{border:0;padding:2px 8px;font-size:20px;line-height:1}" +
  ".bar :focus-visible{outline-color:#fff}";

export const GUIDE_CSS =
  `:host{all:initial!important;display:block!important;margin:12px 0!important;${VARS}}` +
  COMMON +
  ".gd{position:relative;padding:20px 44px 20px 20px;padding-inline:20px 44px;border:2px dashed var(--p);border-radius:var(--r);background:var(--b);color:var(--t);font:14px/1.45 var(--f)}" +
  "h2{font-size:16px;margin:0 0 6px}" +
  ".gd p{margin:0 0 8px}" +
  ".p{background:var(--p);border-color:var(--p);color:#fff;margin-top:6px}" +
  ".x{position:absolute;top:8px;inset-inline-end:8px;border:0;padding:2px 8px;font-size:18px}";

const sheets = new Map<string, CSSStyleSheet>();

function sheet(css: string): CSSStyleSheet {
  let made = sheets.get(css);
  if (!made) {
    made = new CSSStyleSheet();
    made.replaceSync(css);
    sheets.set(css, made);
  }
  return made;
}

/** A custom element (`tag`) holding an open shadow root with `css` and the workspace theme,
 * and a container inside it; `extra` is one more sheet of its own (a banner's offset). */
export function shadowed(
  host: Host,
  tag: string,
  css: string,
  extra?: CSSStyleSheet,
): { element: HTMLElement; inner: ShadowRoot } {
  const element = document.createElement(tag);
  const inner = element.attachShadow({ mode: "open" });
  const theme = host.root.host.shadowRoot?.adoptedStyleSheets[1];
  inner.adoptedStyleSheets = [sheet(css), ...(theme ? [theme] : []), ...(extra ? [extra] : [])];
  return { element, inner };
}

/** Server-sanitised HTML (Markdown rendered and cleaned on the server); a Trusted Types host
 * refuses innerHTML: the words then show without the markup. */
export function body(html: string): HTMLElement {
  const el = h("div");
  try {
    el.innerHTML = html;
  } catch {
    el.textContent = html.replace(/<[^>]*>/g, " ");
  }
  return el;
}

/** The direction of what the surfaces draw: a right-to-left language's (as the core's layer),
 * else the page's. */
export const direction = (): string => locale().dir || getComputedStyle(document.documentElement).direction;
