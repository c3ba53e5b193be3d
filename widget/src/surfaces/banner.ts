/** Banners: a bar across the top or the bottom of the page, with words, an optional call to
 * action and a close button. `push` (the default) puts the bar in the page's flow (top: the
 * first thing in `<body>`, so it pushes the page down and scrolls away under a sticky header,
 * which then sticks as before; bottom: the last thing in `<body>`, sticking to the bottom of
 * the window, so the page's end can scroll above it); `overlay` lays it over the page, at the
 * top below any fixed or sticky header found there (the header stays usable), or at the
 * bottom. One banner at a time (the queue's `bar` slot, highest priority first). Authored
 * banners track `$banner_viewed`, `$banner_clicked`, `$banner_dismissed` {banner, version};
 * an in-app message of style "banner" is drawn by the same `drawBar` (message.ts). */
import { S, t } from "../i18n";
import { h } from "../render/dom";
import { safeLink } from "../targeting";
import type { Common, Context, Entry, Host, Raw } from "./contract";
import { register } from "./index";
import { BANNER_CSS, body, direction, shadowed } from "./styles";
import { item, onPage, present } from "./util";

export interface BarOptions {
  title: string;
  html: string;
  position: string;
  mode: string;
  dismissible: boolean;
  ctaLabel: string;
  onClick(): void;
  onDismiss(): void;
}

/** How far down the window's top a fixed or sticky header of the page reaches (0: none). */
function headerBottom(): number {
  let bottom = 0;
  for (const x of [8, innerWidth / 2, innerWidth - 8]) {
    for (let el = document.elementFromPoint(x, 1); el && el !== document.body; el = el.parentElement) {
      const position = getComputedStyle(el).position;
      const rect = el.getBoundingClientRect();
      if ((position === "fixed" || position === "sticky") && rect.top <= 1) bottom = Math.max(bottom, rect.bottom);
    }
  }
  return Math.min(bottom, innerHeight / 2);
}

/** Draw a bar in the page; answers the element placed (remove it to take the bar down). */
export function drawBar(host: Host, options: BarOptions): HTMLElement {
  const overlay = options.mode === "overlay";
  const top = options.position !== "bottom";
  let offset: CSSStyleSheet | undefined;
  if (overlay && top) {
    offset = new CSSStyleSheet();
    offset.replaceSync(`:host{top:${headerBottom()}px!important}`);
  }
  const { element, inner } = shadowed(host, "milepost-banner", BANNER_CSS, offset);
  if (overlay) element.classList.add("fixed");
  if (!top) element.classList.add(overlay ? "bottom" : "sticky");
  const label = options.title || t(S.Announcement);
  const bar = h(
    "div",
    { class: "bar", role: "region", "aria-label": label, dir: direction() },
    h("div", { class: "txt" }, options.title && h("strong", null, options.title), body(options.html)),
    options.ctaLabel && h("button", { type: "button", class: "cta", onclick: () => options.onClick() }, options.ctaLabel),
    options.dismissible &&
      h("button", { type: "button", class: "x", "aria-label": t(S.DismissBanner), onclick: () => options.onDismiss() }, "×"),
  );
  bar.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && options.dismissible) {
      event.stopPropagation();
      options.onDismiss();
    }
  });
  inner.append(bar);
  if (top && !overlay) document.body.prepend(element);
  else document.body.append(element);
  host.root.announce(`${options.title} ${bar.textContent?.slice(0, 200) ?? ""}`.trim());
  return element;
}

interface Banner extends Common {
  title: string;
  body_html: string;
  cta_label: string;
  cta_url: string;
  dismissible: boolean;
  position: string;
  mode: string;
}

const BANNER = { title: "", body_html: "", cta_label: "", cta_url: "", dismissible: true, position: "top", mode: "push" };

interface Shown {
  banner: Banner;
  entry: Entry;
  element: HTMLElement | null;
  cancel: () => void;
  closed: boolean;
}

const banners = new Map<string, Shown>();

function take(shown: Shown): void {
  shown.cancel();
  shown.element?.remove();
  shown.element = null;
}

function want(banner: Banner, { host, queue }: Context): Shown {
  const props = { banner: banner.key, version: banner.version };
  const close = (name: string): void => {
    host.track(name, props);
    shown.closed = true;
    take(shown);
    queue.done(entry);
  };
  const entry: Entry = {
    kind: "banner",
    key: banner.key,
    priority: banner.priority,
    slot: "bar",
    show() {
      shown.element = drawBar(host, {
        title: banner.title,
        html: banner.body_html,
        position: banner.position,
        mode: banner.mode,
        dismissible: banner.dismissible,
        ctaLabel: banner.cta_label,
        onClick: () => {
          close("$banner_clicked");
          if (safeLink(banner.cta_url)) location.assign(banner.cta_url);
        },
        onDismiss: () => close("$banner_dismissed"),
      });
      host.track("$banner_viewed", props);
    },
    hide() {
      take(shown);
    },
  };
  const shown: Shown = { banner, entry, element: null, cancel: () => {}, closed: false };
  // "Element present": the banner joins the line once its element is on the page.
  if (banner.when_present) {
    shown.cancel = present(
      host,
      { kind: "banner", key: banner.key, selector: banner.when_present, timeoutMs: banner.wait_timeout_ms },
      () => queue.want(entry),
    );
  } else {
    queue.want(entry);
  }
  return shown;
}

function update(items: Raw[], ctx: Context): void {
  const wanted = new Map<string, Banner>();
  for (const raw of items) {
    const banner = item<Banner>(raw, BANNER);
    if (banner && onPage(banner)) wanted.set(banner.key, banner);
  }
  for (const [key, shown] of banners) {
    const next = wanted.get(key);
    if (next && (shown.closed || JSON.stringify(next) === JSON.stringify(shown.banner))) {
      // Closed on this page: it stays closed until the server says otherwise (a new version).
      if (!shown.closed || next.version === shown.banner.version) continue;
    }
    take(shown);
    ctx.queue.drop(shown.entry, next ? "changed" : "page");
    banners.delete(key);
  }
  for (const [key, banner] of wanted) if (!banners.has(key)) banners.set(key, want(banner, ctx));
}

register("banners", { update });
