/** A tiny element builder, and the widget's root: a custom element (never a `div`, so host
 * rules on tags miss it) holding an open shadow root with the adopted stylesheet, a layer for
 * everything shown and a polite live region for screen readers. */
import { locale } from "../i18n";
import { CSS } from "./styles";

type Child = Node | string | null | false | undefined;
type Props = Record<string, string | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else if (typeof value === "string") el.setAttribute(name, value);
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

const COLOURS: Record<string, string> = {
  primary_color: "p",
  text_color: "t",
  background_color: "b",
};

/** Theme values become custom properties; anything malformed is ignored, never injected. */
export function themeCss(theme: unknown): string {
  if (!theme || typeof theme !== "object") return "";
  const t = theme as Record<string, unknown>;
  const rules: string[] = [];
  for (const [key, name] of Object.entries(COLOURS)) {
    const value = t[key];
    if (typeof value === "string" && /^#[0-9a-f]{3}([0-9a-f]{3})?$/i.test(value)) {
      rules.push(`--${name}:${value}`);
    }
  }
  const font = t.font_family;
  if (typeof font === "string" && font.length < 200 && !/[;{}<>\\]/.test(font)) {
    rules.push(`--f:${font}`);
  }
  const radius = t.radius_px;
  if (typeof radius === "number" && radius >= 0 && radius <= 32) rules.push(`--r:${radius}px`);
  return rules.length ? `:host{${rules.join(";")}}` : "";
}

export class Root {
  readonly host = document.createElement("milepost-widget");
  readonly layer: HTMLElement;
  readonly #live: HTMLElement;
  readonly #shadow: ShadowRoot;
  readonly #themeSheet = new CSSStyleSheet();

  constructor() {
    this.#shadow = this.host.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    this.#shadow.adoptedStyleSheets = [sheet, this.#themeSheet];
    this.#live = h("div", { class: "v", "aria-live": "polite", role: "status" });
    this.layer = h("div", { class: "l" });
    this.#shadow.append(this.layer, this.#live);
    this.attach();
  }

  /** Put the root back if the host app's rendering removed it. */
  attach(): void {
    const page = document.documentElement;
    if (!this.host.isConnected) (document.body ?? page).append(this.host);
    // A right-to-left language lays the widget out right to left (the server sends `dir` only
    // for those); otherwise it mirrors with the page's direction (its dir attribute or CSS).
    const { dir, tag } = locale();
    this.layer.dir = dir || getComputedStyle(page).direction;
    this.layer.lang = tag!;
  }

  theme(theme: unknown): void {
    this.#themeSheet.replaceSync(themeCss(theme));
  }

  announce(message: string): void {
    // Clear first so repeating the same words is announced again.
    this.#live.textContent = "";
    setTimeout(() => {
      this.#live.textContent = message;
    }, 50);
  }
}
