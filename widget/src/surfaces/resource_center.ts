/** The resource center (payload `surfaces.resource_centers`, one item per published section):
 * a launcher button in a bottom corner (the highest-priority section's position and label, the
 * workspace's theme colour) opening a panel that lists every section shown on this page: the
 * user's checklists with their progress (from `host.journeys`, kept current by progress
 * pushes) and peer comparison, tours to replay (through `host.start`, the SDK's own start
 * path), links, articles (a short sanitised body) and dated announcements, with a search box
 * filtering them all.
 *
 * The panel is a modal dialog: it takes the screen through the queue (one thing at a time),
 * traps focus, closes on Escape or its close button and gives focus back to the launcher.
 * Events: `$resource_center_opened` {sections}, `$resource_center_searched` {query, results}
 * (once the user pauses typing), `$resource_clicked` {section, item, kind}. */
import { locale, S, t, tn } from "../i18n";
import { h, type Root } from "../render/dom";
import { safeLink } from "../targeting";
import type { Common, Context, Entry, Host, Raw } from "./contract";
import { register } from "./index";
import { item, onPage } from "./util";

interface Item {
  key: string;
  kind: string;
  title: string;
  url: string;
  body_html: string;
  published_on: string;
  walkthrough: string;
  journey: string;
  peers: { text?: unknown } | null;
}

interface Section extends Common {
  title: string;
  launcher_label: string;
  position: string;
  items: Item[];
}

const SECTION = { title: "", launcher_label: "", position: "bottom-right", items: [] as unknown[] };
const SEARCH_PAUSE_MS = 800;

const CSS =
  ".rl,.rp{position:fixed;bottom:16px;inset-inline-end:16px;font:14px/1.45 var(--f)}" +
  ".rl{display:flex;gap:6px;align-items:center;padding:10px 16px;border:0;border-radius:99px;background:var(--p);color:#fff;font-weight:600;box-shadow:0 6px 20px #0003}" +
  ".rl b{display:inline-grid;place-items:center;width:20px;height:20px;border-radius:50%;background:#fff3;font-size:13px}" +
  ".rp{bottom:72px;width:min(380px,calc(100vw - 32px));max-height:min(600px,calc(100vh - 100px));display:flex;flex-direction:column;background:var(--b);color:var(--t);border-radius:var(--r);box-shadow:0 12px 40px #0005,0 0 0 1px #0001;animation:i .2s;z-index:2}" +
  ".rs-left{inset-inline:16px auto}" +
  ".rp:focus{outline:0}" +
  ".rh{display:flex;align-items:center;padding:14px 16px 8px}.rh h2{flex:1;margin:0}.rh .x{position:static}" +
  ".rq{margin:0 16px 8px;padding:8px 12px;border:1px solid #0003;border-radius:8px;font:inherit;color:inherit;background:var(--b)}" +
  ".rb{overflow:auto;padding:0 16px 12px}" +
  ".rb h3{margin:12px 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;opacity:.7}" +
  ".rb ul{padding:0}.rb li{display:block;padding:8px 0}" +
  ".rb li>a,.rb li>button,.rt{display:flex;width:100%;gap:8px;align-items:baseline;text-align:start;border:0;padding:4px 0;color:inherit;text-decoration:none;font-weight:600;font-size:inherit}" +
  ".rb li>a>span:first-child,.rb li>button>span:first-child,.rt>span:first-child{width:16px;flex:none;text-align:center;color:var(--p)}" +
  ".rb li>a:hover,.rb li>button:hover{color:var(--p)}" +
  ".rk{display:block;font-size:12px;opacity:.7;font-weight:400}" +
  ".rb .r{margin:6px 0 4px}" +
  ".ro{font-size:12px;color:#15803d;margin-top:2px}" +
  ".rb .b{font-weight:400;margin-top:4px}" +
  ".rn{padding:16px 0;opacity:.75}" +
  ".cb{position:fixed;bottom:172px;left:50%}" +
  ".cf{position:fixed;bottom:150px;left:50%;transform:translateX(-50%);padding:14px 20px;border-radius:var(--r);background:var(--b);color:var(--t);font:600 15px/1.4 var(--f);box-shadow:0 12px 40px #0004;animation:cp .5s cubic-bezier(.2,1.6,.4,1)}" +
  ".cb i{position:absolute;left:0;top:0;width:8px;height:12px;border:0;border-radius:2px;background:var(--c);animation:cc 1.4s ease-out forwards}" +
  ".cf b{display:inline-grid;place-items:center;width:24px;height:24px;margin-inline-end:10px;border-radius:50%;background:#16a34a;color:#fff}" +
  "@keyframes cp{from{transform:translateX(-50%) scale(.6);opacity:0}}" +
  "@keyframes cc{to{transform:translate(var(--x),var(--y)) rotate(var(--a));opacity:0}}" +
  "@media (prefers-reduced-motion:reduce){.cb{display:none}}";

const sheets = new WeakMap<Root, true>();

/** Adopt this module's stylesheet once into the core's shadow root (constructable: CSP-safe). */
export function styled(root: Root): void {
  if (sheets.has(root)) return;
  const shadow = root.host.shadowRoot;
  if (!shadow) return;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  shadow.adoptedStyleSheets = [...shadow.adoptedStyleSheets, sheet];
  sheets.set(root, true);
}

/** Server-sanitised HTML (onboarding/markdown.py); a Trusted Types host refuses innerHTML:
 * then the words without the markup. */
function setHtml(el: HTMLElement, html: string): void {
  try {
    el.innerHTML = html;
  } catch {
    el.textContent = html.replace(/<[^>]*>/g, " ");
  }
}

const str = (value: unknown): string => (typeof value === "string" ? value : "");

function readItem(raw: unknown): Item | null {
  if (typeof raw !== "object" || raw === null) return null;
  const r = raw as Raw;
  const key = str(r.key);
  if (!key) return null;
  return {
    key,
    kind: str(r.kind),
    title: str(r.title),
    url: str(r.url),
    body_html: str(r.body_html),
    published_on: str(r.published_on),
    walkthrough: str(r.walkthrough),
    journey: str(r.journey),
    peers: typeof r.peers === "object" && r.peers !== null ? (r.peers as { text?: unknown }) : null,
  };
}

/** The words an item is found by: its title and the text of its body. */
function words(entry: Item): string {
  return `${entry.title} ${entry.body_html.replace(/<[^>]*>/g, " ")}`.toLowerCase();
}

function day(iso: string): string {
  const date = new Date(`${iso}T12:00:00`);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(locale().tag || undefined, { dateStyle: "medium" }).format(date);
}

class ResourceCenter {
  readonly #ctx: Context;
  #sections: Section[] = [];
  #launcher: HTMLButtonElement | null = null;
  #panel: HTMLElement | null = null;
  #query = "";
  #inset = "16px";
  #searchTimer = 0;
  readonly #entry: Entry;

  constructor(ctx: Context) {
    this.#ctx = ctx;
    this.#entry = {
      kind: "resource_center",
      key: "resource-center",
      priority: 0,
      slot: "screen",
      show: () => this.#open(),
      hide: () => this.#close(false),
    };
    ctx.host.on("progress", () => this.#panel && this.#draw());
  }

  /** Does a section on this page list a checklist of this journey (celebration.ts). */
  lists(journey: string): boolean {
    return this.#sections.some((s) => s.items.some((i) => i.kind === "checklist" && i.journey === journey));
  }

  get #host(): Host {
    return this.#ctx.host;
  }

  update(raw: Raw[]): void {
    this.#sections = raw
      .map((r) => {
        const section = item<Section>(r, SECTION);
        if (!section) return null;
        section.items = (Array.isArray(r.items) ? r.items : []).map(readItem).filter((i): i is Item => i !== null);
        return section;
      })
      .filter((s): s is Section => s !== null && s.items.length > 0 && onPage(s));
    if (!this.#sections.length) {
      if (this.#panel) this.#close(true);
      this.#launcher?.remove();
      this.#launcher = null;
      return;
    }
    this.#drawLauncher();
    if (this.#panel) this.#draw();
  }

  #drawLauncher(): void {
    const first = this.#sections[0]!;
    const root = this.#host.root;
    styled(root);
    const left = first.position === "bottom-left";
    if (!this.#launcher) {
      this.#launcher = h(
        "button",
        {
          type: "button",
          class: "rl",
          "aria-haspopup": "dialog",
          "aria-expanded": "false",
          "data-resource-center": "",
          onclick: () => (this.#panel ? this.#close(true) : this.#want()),
        },
      );
    }
    this.#launcher.classList.toggle("rs-left", left);
    this.#launcher.replaceChildren(h("b", { "aria-hidden": "true" }, "?"), first.launcher_label || t(S.Help));
    root.attach();
    if (!this.#launcher.isConnected) root.layer.append(this.#launcher);
    this.#avoidProgressBar(left);
  }

  /** A progress bar in the same corner: the launcher sits beside it, not on it. */
  #avoidProgressBar(left: boolean): void {
    const launcher = this.#launcher;
    if (!launcher) return;
    const bars = [...this.#host.root.layer.querySelectorAll<HTMLElement>(".g")].filter(
      (bar) => !bar.classList.contains("top") && bar.classList.contains("bottom-left") === left,
    );
    const width = Math.max(0, ...bars.map((bar) => bar.getBoundingClientRect().width));
    this.#inset = `${width ? width + 28 : 16}px`;
    for (const el of [launcher, this.#panel]) {
      el?.style.setProperty("inset-inline-end", left ? "auto" : this.#inset);
      el?.style.setProperty("inset-inline-start", left ? this.#inset : "auto");
    }
  }

  #want(): void {
    this.#ctx.queue.want(this.#entry);
    if (!this.#panel) this.#host.root.announce(t(S.HelpWaits));
  }

  #open(): void {
    const first = this.#sections[0];
    if (!first) {
      this.#ctx.queue.done(this.#entry);
      return;
    }
    const left = first.position === "bottom-left";
    this.#panel = h("div", {
      class: left ? "rp rs-left" : "rp",
      role: "dialog",
      "aria-modal": "true",
      "aria-labelledby": "rch",
      tabindex: "-1",
      "data-resource-panel": "",
    });
    this.#panel.addEventListener("keydown", (event) => this.#onKey(event));
    // Above the launcher, on its side of the corner (beside a progress bar there).
    this.#panel.style.setProperty(left ? "inset-inline-start" : "inset-inline-end", this.#inset);
    this.#draw();
    this.#host.root.layer.append(this.#panel);
    this.#launcher?.setAttribute("aria-expanded", "true");
    this.#panel.querySelector<HTMLElement>("input")?.focus({ preventScroll: true });
    this.#host.track("$resource_center_opened", { sections: this.#sections.map((s) => s.key) });
  }

  #close(returnFocus: boolean): void {
    clearTimeout(this.#searchTimer);
    this.#panel?.remove();
    this.#panel = null;
    this.#launcher?.setAttribute("aria-expanded", "false");
    if (returnFocus) {
      this.#ctx.queue.done(this.#entry);
      this.#launcher?.focus({ preventScroll: true });
    }
  }

  #onKey(event: KeyboardEvent): void {
    const panel = this.#panel;
    if (!panel) return;
    if (event.key === "Escape") {
      event.stopPropagation();
      this.#close(true);
    } else if (event.key === "Tab") {
      const focusable = [...panel.querySelectorAll<HTMLElement>("button,a[href],input")];
      const active = (panel.getRootNode() as ShadowRoot).activeElement;
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (event.shiftKey && (active === first || active === panel)) {
        event.preventDefault();
        last?.focus();
      } else if (!event.shiftKey && active === last) {
        event.preventDefault();
        first?.focus();
      }
    }
  }

  #draw(): void {
    const panel = this.#panel;
    if (!panel) return;
    const search = panel.querySelector<HTMLInputElement>("input");
    if (!search) {
      const input = h("input", {
        type: "search",
        class: "rq",
        placeholder: t(S.Search),
        "aria-label": t(S.SearchHelp),
        "aria-controls": "rcb",
        oninput: () => this.#search(input.value),
      });
      input.value = this.#query;
      panel.append(
        h(
          "div",
          { class: "rh" },
          h("h2", { id: "rch" }, this.#sections[0]!.launcher_label || t(S.Help)),
          h("button", { type: "button", class: "x", "aria-label": t(S.CloseHelp), onclick: () => this.#close(true) }, "×"),
        ),
        input,
        h("div", { class: "rb", id: "rcb" }),
      );
    }
    this.#list();
  }

  #search(value: string): void {
    this.#query = value;
    const shown = this.#list();
    this.#host.root.announce(shown ? tn(S.Results, shown) : t(S.NoResults));
    clearTimeout(this.#searchTimer);
    const query = value.trim().toLowerCase().slice(0, 100);
    if (query.length < 2) return;
    this.#searchTimer = setTimeout(
      () => this.#host.track("$resource_center_searched", { query, results: shown }),
      SEARCH_PAUSE_MS,
    ) as unknown as number;
  }

  /** Draw the sections' items matching the search; answers how many show. */
  #list(): number {
    const body = this.#panel?.querySelector<HTMLElement>(".rb");
    if (!body) return 0;
    const terms = this.#query.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    const parts: HTMLElement[] = [];
    for (const section of this.#sections) {
      const matching = section.items.filter((entry) => terms.every((term) => words(entry).includes(term)));
      if (!matching.length) continue;
      shown += matching.length;
      const id = `rc-${section.key}`;
      parts.push(
        h("h3", { id }, section.title),
        h("ul", { "aria-labelledby": id }, ...matching.map((entry) => this.#row(section, entry))),
      );
    }
    if (!shown) parts.push(h("p", { class: "rn", role: "status" }, t(S.NothingMatches, this.#query.trim())));
    body.replaceChildren(...parts);
    return shown;
  }

  #clicked(section: Section, entry: Item): void {
    this.#host.track("$resource_clicked", { section: section.key, item: entry.key, kind: entry.kind });
  }

  #row(section: Section, entry: Item): HTMLElement {
    const li = h("li", { "data-resource": entry.key, "data-kind": entry.kind });
    if (entry.kind === "checklist") {
      const journey = this.#host.journeys.find((j) => j.key === entry.journey);
      const total = journey?.milestones.length ?? 0;
      const done = journey?.milestones.filter((m) => m.completedAt).length ?? 0;
      const percent = journey?.percent ?? 0;
      const fill = h("div");
      fill.style.width = `${percent}%`;
      const peers = str(entry.peers?.text);
      li.append(
        h("div", { class: "rt" }, h("span", { "aria-hidden": "true" }, "✓"), h("span", null, entry.title, h("span", { class: "rk" }, t(S.DoneOf, done, total)))),
        h("div", { class: "r", role: "progressbar", "aria-label": entry.title, "aria-valuenow": String(percent) }, fill),
        peers && h("div", { class: "ro" }, peers),
      );
    } else if (entry.kind === "tour") {
      li.append(
        h(
          "button",
          {
            type: "button",
            onclick: () => {
              this.#clicked(section, entry);
              // Closed first, so the panel does not come back once the tour ends.
              this.#close(false);
              this.#ctx.queue.done(this.#entry);
              this.#host.start(entry.walkthrough);
            },
          },
          h("span", { "aria-hidden": "true" }, "▶"),
          h("span", null, entry.title, h("span", { class: "v" }, t(S.Replay))),
        ),
      );
    } else if (entry.kind === "article" && entry.body_html) {
      const body = h("div", { class: "b", hidden: true });
      setHtml(body, entry.body_html);
      if (safeLink(entry.url)) {
        body.append(h("a", { href: entry.url, target: "_blank", rel: "noopener noreferrer", onclick: () => this.#clicked(section, entry) }, t(S.ReadMore)));
      }
      const toggle = h(
        "button",
        {
          type: "button",
          "aria-expanded": "false",
          onclick: () => {
            const open = body.hidden;
            body.hidden = !open;
            toggle.setAttribute("aria-expanded", String(open));
            if (open) this.#clicked(section, entry);
          },
        },
        h("span", { "aria-hidden": "true" }, "≡"),
        h("span", null, entry.title),
      );
      li.append(toggle, body);
    } else {
      const dated = entry.kind === "announcement" && entry.published_on;
      const title = h("span", null, entry.title, dated && h("span", { class: "rk" }, day(entry.published_on)));
      const icon = h("span", { "aria-hidden": "true" }, entry.kind === "announcement" ? "★" : "↗");
      li.append(
        safeLink(entry.url)
          ? h("a", { href: entry.url, target: "_blank", rel: "noopener noreferrer", onclick: () => this.#clicked(section, entry) }, icon, title)
          : h("div", { class: "rt" }, icon, title),
      );
      if (entry.body_html) {
        const body = h("div", { class: "b" });
        setHtml(body, entry.body_html);
        li.append(body);
      }
    }
    return li;
  }
}

const centers = new WeakMap<Host, ResourceCenter>();

export const listsChecklist = (host: Host, journey: string): boolean => centers.get(host)?.lists(journey) ?? false;

register("resource_centers", {
  update(items, ctx) {
    let center = centers.get(ctx.host);
    if (!center) {
      if (!items.length) return;
      centers.set(ctx.host, (center = new ResourceCenter(ctx)));
    }
    center.update(items);
  },
});
