/** The visual builder, a bundle of its own (static/milepost/builder.js) that the core loads only
 * when admin opened the page with a builder token, or while this tab's builder session lasts.
 *
 * It exchanges the token (the core already took it out of the address bar and handed it over
 * in this bundle's address), keeps the session and the draft being edited in sessionStorage
 * (so the author can go to another page of the app and carry on), draws its panel in a widget
 * root (render/dom.ts: the same custom element, shadow root and stylesheet end users get,
 * which the host's CSS cannot reach), previews every step with the very renderer end users
 * get (walkthrough.ts, render/*, and for guides, banners and surveys the surfaces' own code:
 * builder/surfaces.ts), and saves and publishes through the builder API. It never listens to
 * postMessage. */
import { locale, setLocale } from "../i18n";
import { h, Root } from "../render/dom";
import { EN } from "../strings-en";
import { ProgressView } from "../render/progress";
import { TooltipView } from "../render/tooltip";
import type { Placement, Step, Tooltip, Walkthrough } from "../state";
import { urlMatches } from "../targeting";
import { Tour, type TourHost } from "../walkthrough";
import { startPicking } from "./picker";
import { matchCount, selectorFor } from "./selector";
import { BUILDER_CSS } from "./styles";
import {
  bannerFields,
  bannerPreview,
  guideFields,
  guidePreview,
  type Panel,
  type Preview,
  savedForm,
  SURFACE_OPTIONS,
  surveyFields,
  surveyPreview,
} from "./surfaces";

/** The key the core looks for on every page to load this bundle again (src/index.ts). */
const STORE = "milepostBuilder";
type Doc = Record<string, unknown> & { key: string; name: string };
type StepDoc = Record<string, unknown> & {
  page_url_pattern: string;
  selector: string;
  title: string;
  body_markdown: string;
  placement: string;
  advance_on: string;
  advance_event: string;
  spotlight: boolean;
  wait_timeout_ms: number;
  on_target_missing: string;
};

interface Saved {
  token?: string;
  session?: string;
  expires?: string;
  may?: boolean;
  workspace?: string;
  theme?: unknown;
  kind?: string;
  doc?: Doc;
  rendered?: string[];
  milestones?: { key: string; name: string; phase: string }[];
  selected?: number;
  dirty?: boolean;
  left?: boolean;
}

const script = document.currentScript as HTMLScriptElement | null;
const API = script ? new URL(script.src).origin : location.origin;
/** The core hands admin's one-time token over in this bundle's address (`builder.js#mpg_…`). */
const TOKEN = script ? new URL(script.src).hash.slice(1) : "";

function load(): Saved {
  try {
    return JSON.parse(sessionStorage.getItem(STORE) ?? "{}") as Saved;
  } catch {
    return {};
  }
}

class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const ENDED = new Set(["invalid_session", "session_expired", "role_lost", "origin_not_allowed"]);
const OPTIONS: Record<string, [string, string][]> = {
  placement: ["auto", "top", "bottom", "left", "right"].map((p) => [p, p[0]!.toUpperCase() + p.slice(1)]),
  advance_on: [
    ["next", "Next button"],
    ["target_click", "Click on the element"],
    ["event", "A tracked event"],
  ],
  on_target_missing: [
    ["modal", "Show the step centred"],
    ["skip", "Skip to the next step"],
    ["end", "End the tour"],
  ],
  trigger: [
    ["hotspot", "Hotspot beacon (click)"],
    ["hover", "Hover"],
  ],
  style: [
    ["checklist", "Checklist"],
    ["bar", "Bar"],
  ],
  position: [
    ["bottom-right", "Bottom right"],
    ["bottom-left", "Bottom left"],
    ["top", "Top banner"],
  ],
};

/** The tour renderer, shown one step at a time: its buttons move the builder's selection
 * instead of a person's tour, and nothing is tracked. */
class PreviewTour extends Tour {
  constructor(
    walkthrough: Walkthrough,
    host: TourHost,
    at: number,
    readonly builder: Builder,
  ) {
    super(walkthrough, host, { step: at, attempt: 1 });
  }
  next(): void {
    this.builder.select(this.index + 1);
  }
  back(): void {
    this.builder.select(this.index - 1);
  }
  dismiss(): void {
    this.builder.hidePreview();
  }
}

/** Fields whose change redraws the panel (other fields show or go with them). */
const STRUCTURAL = new Set(["advance_on", "page_url_pattern", "display"]);

class Builder implements Panel {
  state: Saved;
  readonly root: Root;
  readonly panel: HTMLElement;
  readonly status = h("span", { class: "st", role: "status" });
  /** Where an overlaid preview may lie: the part of the window the page moved to. */
  readonly room = new CSSStyleSheet();
  preview: Preview | null = null;
  previewHidden = false;
  picking: (() => void) | null = null;
  /** The element the author last picked, and how many levels wider the step's target is. */
  picked: Element | null = null;
  wider = 0;
  markdownTimer = 0;

  constructor(root: Root, state: Saved) {
    this.root = root;
    this.state = state;
    const shadow = root.host.shadowRoot!;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(BUILDER_CSS);
    shadow.adoptedStyleSheets = [...shadow.adoptedStyleSheets, sheet];
    if (state.theme) root.theme(state.theme);
    this.panel = h("section", { class: "B", role: "region", "aria-label": "Milepost builder" });
    root.attach();
    root.layer.append(this.panel);
  }

  // Storage and API ------------------------------------------------------------------------

  save(): void {
    try {
      sessionStorage.setItem(STORE, JSON.stringify(this.state));
    } catch {
      // Full storage: the builder keeps working on this page.
    }
  }

  async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    let response: Response;
    try {
      response = await fetch(`${API}/api/v1/builder/${path}`, {
        method,
        headers: { "Content-Type": "application/json", Authorization: `Builder ${this.state.session ?? ""}` },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError("network", "Milepost cannot be reached; your edits are kept in this tab.", 0);
    }
    const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (!response.ok) {
      const error = (answer.error ?? {}) as { code?: string; message?: string };
      throw new ApiError(error.code ?? "error", error.message ?? `HTTP ${response.status}`, response.status);
    }
    return answer;
  }

  say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle("err", error);
  }

  fail(error: unknown): void {
    if (error instanceof ApiError && ENDED.has(error.code)) {
      this.end(`The builder session ended: ${error.message}`);
      return;
    }
    this.say(error instanceof Error ? error.message : String(error), true);
  }

  /** The app's page moves aside for the panel (through the CSSOM, which a strict CSP allows),
   * so nothing the author may want to pick sits under it. */
  makeRoom(): void {
    const style = document.documentElement.style;
    const open = this.panel.isConnected && !this.panel.classList.contains("min");
    style.marginRight = open && !this.state.left ? "364px" : "";
    style.marginLeft = open && this.state.left ? "364px" : "";
    this.room.replaceSync(`:host(.fixed){left:${style.marginLeft || 0}!important;right:${style.marginRight || 0}!important}`);
  }

  /** Leave the builder: this tab forgets the session; the page is the user's again. */
  end(message?: string): void {
    sessionStorage.removeItem(STORE);
    document.documentElement.style.marginRight = document.documentElement.style.marginLeft = "";
    this.stopPicking();
    this.preview?.destroy();
    this.panel.replaceChildren(
      h("header", null, h("b", null, "Milepost builder")),
      h("main", null, h("p", null, message ?? "Builder closed.")),
      h("footer", null, h("button", { type: "button", onclick: () => this.panel.remove() }, "Close")),
    );
    this.panel.classList.remove("min");
  }

  async start(): Promise<void> {
    this.panel.replaceChildren(h("header", null, h("b", null, "Milepost builder")), h("main", null, "Opening…"));
    try {
      if (this.state.token) {
        const token = this.state.token;
        delete this.state.token;
        this.save();
        const session = await this.call("POST", "session", { token });
        Object.assign(this.state, {
          session: session.session,
          expires: session.expires_at,
          may: session.may_save,
          workspace: session.workspace,
          theme: session.theme,
          kind: session.kind,
        });
        if (this.state.theme) this.root.theme(this.state.theme);
      }
      if (!this.state.session) throw new ApiError("invalid_session", "no session", 401);
      if (!this.state.doc) await this.reload();
      this.save();
      this.render();
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) {
        this.end(`The builder did not open: ${error.message}`);
      } else {
        this.fail(error);
      }
    }
  }

  async reload(): Promise<void> {
    const answer = await this.call("GET", "content");
    this.state.doc = answer.document as Doc;
    this.state.rendered = answer.rendered as string[];
    this.state.milestones = answer.milestones as Saved["milestones"];
    this.state.may = answer.may_save as boolean;
    this.state.selected ??= 0;
    this.state.dirty = false;
  }

  // Content ------------------------------------------------------------------------------

  get doc(): Doc {
    return this.state.doc!;
  }

  get steps(): StepDoc[] {
    return (this.doc.steps as StepDoc[] | undefined) ?? [];
  }

  get isTour(): boolean {
    return this.state.kind === "walkthrough";
  }

  /** What the selection edits: a walkthrough's step, or the piece itself (any other kind). */
  get current(): Record<string, unknown> | null {
    return this.isTour ? (this.steps[this.state.selected ?? 0] ?? null) : this.doc;
  }

  changed(structure = false): void {
    this.state.dirty = true;
    this.save();
    this.say("Unsaved changes (kept in this tab)");
    if (structure) this.render();
    else this.showPreview();
  }

  select(index: number): void {
    if (index < 0 || index >= this.steps.length) {
      this.hidePreview();
      return;
    }
    this.state.selected = index;
    this.previewHidden = false;
    this.picked = null;
    this.wider = 0;
    this.save();
    this.render();
  }

  hidePreview(): void {
    this.previewHidden = true;
    this.preview?.destroy();
    this.preview = null;
  }

  newStep(selector: string, title: string): void {
    this.steps.push({
      page_url_pattern: location.pathname,
      selector,
      title,
      body_markdown: "",
      placement: "auto",
      advance_on: "next",
      advance_event: "",
      spotlight: false,
      wait_timeout_ms: 5000,
      on_target_missing: "modal",
    });
    this.doc.steps = this.steps;
    this.state.rendered = [...(this.state.rendered ?? []).slice(0, this.steps.length - 1), ""];
    this.state.selected = this.steps.length - 1;
    this.previewHidden = false;
    this.changed(true);
  }

  move(index: number, by: number): void {
    const steps = this.steps;
    const rendered = this.state.rendered ?? [];
    const to = index + by;
    if (to < 0 || to >= steps.length) return;
    [steps[index], steps[to]] = [steps[to]!, steps[index]!];
    [rendered[index], rendered[to]] = [rendered[to] ?? "", rendered[index] ?? ""];
    this.state.selected = to;
    this.changed(true);
  }

  remove(index: number): void {
    this.steps.splice(index, 1);
    this.state.rendered?.splice(index, 1);
    this.state.selected = Math.max(0, Math.min(this.state.selected ?? 0, this.steps.length - 1));
    this.changed(true);
  }

  async persist(): Promise<boolean> {
    this.say("Saving…");
    try {
      const answer = await this.call("PUT", "content", { document: savedForm(this.state.kind, this.doc) });
      this.state.doc = answer.document as Doc;
      this.state.rendered = answer.rendered as string[];
      this.state.dirty = false;
      this.save();
      // The fields edit the saved document from now on, not the one sent.
      this.render();
      this.say("Draft saved. Live users see it once you publish.");
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  async publish(): Promise<void> {
    if (this.state.dirty && !(await this.persist())) return;
    this.say("Publishing…");
    try {
      const answer = await this.call("POST", "content/publish");
      this.say(`Published as version ${String(answer.version)}: live users see it now.`);
    } catch (error) {
      this.fail(error);
    }
  }

  /** The body as end users will see it: rendered by the server's own sanitising renderer. */
  renderBody(): void {
    clearTimeout(this.markdownTimer);
    const index = this.isTour ? (this.state.selected ?? 0) : 0;
    const markdown = String(this.current?.body_markdown ?? "");
    this.markdownTimer = setTimeout(async () => {
      try {
        const answer = await this.call("POST", "markdown", { markdown });
        // Quoted: `html` is one of the bundle's shortened internal names (scripts/build.mjs).
        (this.state.rendered ??= [])[index] = String(answer["html"]);
        this.save();
        this.showPreview();
      } catch (error) {
        this.fail(error);
      }
    }, 150) as unknown as number;
  }

  // Preview ------------------------------------------------------------------------------

  get host(): TourHost & { act(): void; dismissed(): void } {
    const nothing = (): void => undefined;
    return { root: this.root, track: nothing, ended: nothing, report: nothing, celebrate: nothing, act: nothing, dismissed: nothing };
  }

  showPreview(): void {
    // Typing must stay in the panel: the renderer focuses its card, the builder takes it back.
    const shadow = this.root.host.shadowRoot!;
    const focused = shadow.activeElement as HTMLInputElement | null;
    const caret = focused?.selectionStart != null ? [focused.selectionStart, focused.selectionEnd] : null;
    this.preview?.destroy();
    this.preview = null;
    if (this.previewHidden || this.picking || !this.state.doc) return;
    const rendered = this.state.rendered ?? [];
    if (this.isTour) {
      const index = this.state.selected ?? 0;
      const step = this.steps[index];
      if (!step || !this.onThisPage(step.page_url_pattern)) return;
      const walkthrough: Walkthrough = {
        key: this.doc.key,
        name: this.doc.name,
        priority: 0,
        auto_start: false,
        state: null,
        steps: this.steps.map(
          (s, i): Step => ({
            ...(s as unknown as Step),
            id: i,
            page_url_pattern: "",
            placement: s.placement as Placement,
            body_html: rendered[i] ?? "",
          }),
        ),
      };
      const tour = new PreviewTour(walkthrough, this.host, index, this);
      tour.show();
      this.preview = tour;
    } else if (this.state.kind === "guide") {
      this.preview = guidePreview(this, rendered[0] ?? "");
    } else if (this.state.kind === "banner") {
      this.preview = bannerPreview(this, rendered[0] ?? "", this.room);
    } else if (this.state.kind === "survey") {
      this.preview = surveyPreview(this);
    } else if (this.state.kind === "tooltip") {
      if (!this.onThisPage(String(this.doc.page_url_pattern)) || !this.doc.selector) return;
      const tip = { ...this.doc, body_html: rendered[0] ?? "", priority: 0 } as unknown as Tooltip;
      this.preview = new TooltipView(tip, this.host);
    } else if (this.state.kind === "progress_bar") {
      const milestones = (this.state.milestones ?? []).map((m, i) => ({
        ...m,
        completedAt: i === 0 ? "now" : null,
      }));
      // The items as authored (labels, actions), as end users get them.
      const items = Array.isArray(this.doc.items) ? this.doc.items : [];
      const bar = { ...this.doc, journey: String(this.doc.journey), items, priority: 0 };
      const view = new ProgressView(bar as never, this.host);
      view.render({
        key: String(this.doc.journey),
        name: String(this.doc.name),
        milestones,
        percent: milestones.length ? Math.round(100 / milestones.length) : 0,
        pql: false,
      });
      this.preview = view;
    }
    if (focused && focused.isConnected && shadow.activeElement !== focused) {
      focused.focus({ preventScroll: true });
      if (caret) focused.setSelectionRange(caret[0], caret[1]);
    }
  }

  onThisPage(pattern: string): boolean {
    return urlMatches(pattern, location.pathname, location.search);
  }

  // Picking ------------------------------------------------------------------------------

  pick(onPicked: (el: Element) => void, prompt = "Click the element this step points at (Esc cancels)"): void {
    this.stopPicking();
    this.preview?.destroy();
    this.preview = null;
    this.picking = startPicking(this.root, prompt, {
      picked: (el) => {
        this.stopPicking();
        onPicked(el);
      },
      cancelled: () => {
        this.stopPicking();
        this.render();
      },
    });
    this.say("Picking: hover to outline, click to choose.");
  }

  stopPicking(): void {
    this.picking?.();
    this.picking = null;
  }

  /** The picked element, `wider` levels up. */
  target(): Element | null {
    let el = this.picked;
    for (let i = 0; i < this.wider && el?.parentElement && el.parentElement !== document.body; i++) {
      el = el.parentElement;
    }
    return el;
  }

  setTarget(el: Element): void {
    this.picked = el;
    this.wider = 0;
    const current = this.current!;
    current.selector = selectorFor(el);
    if (this.isTour) current.page_url_pattern = location.pathname;
  }

  // Panel --------------------------------------------------------------------------------

  render(): void {
    if (!this.state.doc) return;
    const state = this.state;
    const kinds: Record<string, string> = {
      walkthrough: "Walkthrough",
      tooltip: "Tooltip",
      progress_bar: "Progress bar",
      guide: "Empty-state guide",
      banner: "Banner",
      survey: "Survey",
    };
    const header = h(
      "header",
      null,
      h("b", null, `${kinds[state.kind ?? ""] ?? ""}: ${this.doc.name}`),
      h("button", {
        type: "button",
        "aria-label": "Move the builder to the other side",
        onclick: () => {
          state.left = !state.left;
          this.save();
          this.panel.classList.toggle("left", state.left);
          this.makeRoom();
        },
      }, "⇄"),
      h("button", {
        type: "button",
        "aria-label": "Minimise the builder",
        onclick: () => {
          this.panel.classList.toggle("min");
          this.makeRoom();
        },
      }, "–"),
      h("button", { type: "button", onclick: () => this.end() }, "Exit"),
    );
    const who = h(
      "div",
      { class: state.may ? "who" : "who ro" },
      state.may
        ? `${state.workspace ?? ""} · editing the draft`
        : `${state.workspace ?? ""} · you are a viewer: you can look, not save`,
    );
    const main = h("main");
    if (this.isTour) main.append(...this.trigger(), ...this.stepList());
    const current = this.current;
    if (current) main.append(...this.editor(current));
    const footer = h(
      "footer",
      null,
      this.status,
      h("button", { type: "button", disabled: !state.may, onclick: () => void this.persist() }, "Save draft"),
      h("button", { type: "button", class: "p", disabled: !state.may, onclick: () => void this.publish() }, "Publish"),
    );
    this.panel.classList.toggle("left", !!state.left);
    this.panel.replaceChildren(header, who, main, footer);
    this.makeRoom();
    // The core's own widget root (reset, but maybe drawn before this bundle came) must not
    // sit on top of the builder.
    for (const other of document.querySelectorAll("milepost-widget")) if (other !== this.root.host) other.remove();
    if (!this.status.textContent) this.say(state.dirty ? "Unsaved changes (kept in this tab)" : "");
    this.showPreview();
  }

  stepList(): HTMLElement[] {
    const list = h("ol", { "aria-label": "Steps" });
    this.steps.forEach((step, index) => {
      const here = this.onThisPage(step.page_url_pattern);
      list.append(
        h(
          "li",
          { class: index === this.state.selected ? "on" : undefined },
          h(
            "button",
            { type: "button", "aria-current": index === this.state.selected ? "step" : undefined, onclick: () => this.select(index) },
            `${index + 1}. ${step.title || "(no title)"}`,
            h("small", null, `${step.page_url_pattern || "any page"}${here ? "" : " (another page)"} · ${step.selector || "centred"}`),
          ),
          h("button", { type: "button", class: "i", "aria-label": `Move step ${index + 1} up`, onclick: () => this.move(index, -1) }, "↑"),
          h("button", { type: "button", class: "i", "aria-label": `Move step ${index + 1} down`, onclick: () => this.move(index, 1) }, "↓"),
          h("button", { type: "button", class: "i", "aria-label": `Delete step ${index + 1}`, onclick: () => this.remove(index) }, "✕"),
        ),
      );
    });
    const add = h(
      "div",
      { class: "add" },
      h("button", {
        type: "button",
        class: "p",
        onclick: () =>
          this.pick((el) => {
            this.picked = el;
            this.wider = 0;
            const label = el.getAttribute("aria-label") ?? (el.textContent ?? "").trim();
            this.newStep(selectorFor(el), label.replace(/\s+/g, " ").slice(0, 60));
          }),
      }, "+ Add step: pick an element"),
      h("button", { type: "button", onclick: () => this.newStep("", "") }, "+ Centred step"),
    );
    return [list, add];
  }

  field(item: Record<string, unknown>, name: string, label: string, kind: "input" | "textarea" | "select" = "input"): HTMLElement[] {
    const id = `mpb-${name}`;
    let control: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;
    if (kind === "select") {
      control = h("select", { id });
      const options = SURFACE_OPTIONS[this.state.kind ?? ""]?.[name] ?? OPTIONS[name] ?? [];
      for (const [value, text] of options) control.append(h("option", { value }, text));
    } else {
      control = h(kind, { id });
    }
    control.value = String(item[name] ?? "");
    control.addEventListener(kind === "select" ? "change" : "input", () => {
      item[name] = control.value;
      const label = this.panel.querySelector("li.on > button")?.firstChild;
      if (name === "title" && label) label.textContent = `${(this.state.selected ?? 0) + 1}. ${control.value}`;
      if (name === "body_markdown") this.renderBody();
      if (name === "selector") this.countMatches();
      this.changed(STRUCTURAL.has(name));
    });
    return [h("label", { for: id }, label), control];
  }

  checkbox(item: Record<string, unknown>, name: string, label: string, fallback: boolean): HTMLElement {
    const id = `mpb-${name}`;
    const box = h("input", { type: "checkbox", id });
    box.checked = typeof item[name] === "boolean" ? (item[name] as boolean) : fallback;
    box.addEventListener("change", () => {
      item[name] = box.checked;
      this.changed();
    });
    return h("label", { for: id }, box, label);
  }

  count = h("span", { class: "n", role: "status" });

  countMatches(): void {
    const selector = String(this.current?.selector ?? "");
    const n = selector ? matchCount(selector) : 0;
    const here = !this.isTour || this.onThisPage(String(this.current?.page_url_pattern ?? ""));
    this.count.className = n === 1 ? "n" : n === 0 && !selector ? "n w" : "n x";
    this.count.textContent = !selector
      ? this.isTour
        ? "centred, no element"
        : "no element chosen"
      : n < 0
        ? "not a valid selector"
        : !here
          ? "on another page"
          : n === 1
            ? "1 match on this page"
            : `${n} matches on this page`;
    if (n > 1 && here) this.count.className = "n w";
  }

  /** A selector field, its match count on this page, and Pick / Wider / Narrower. */
  selectorField(item: Record<string, unknown>, label: string, prompt?: string): HTMLElement[] {
    const out = this.field(item, "selector", label);
    this.countMatches();
    const go = (by: number): void => {
      const el = this.target();
      if (!el) return;
      this.wider = Math.max(0, this.wider + by);
      const next = this.target();
      if (next) item.selector = selectorFor(next);
      this.changed(true);
    };
    const pick = (): void =>
      this.pick((el) => {
        this.setTarget(el);
        this.changed(true);
      }, prompt);
    out.push(
      h(
        "div",
        { class: "sel" },
        this.count,
        h("button", { type: "button", onclick: pick }, "Pick"),
        h("button", { type: "button", disabled: !this.picked, title: "Point at the element around it", onclick: () => go(1) }, "Wider"),
        h("button", { type: "button", disabled: !this.picked || !this.wider, title: "Back toward the element you clicked", onclick: () => go(-1) }, "Narrower"),
      ),
    );
    return out;
  }

  editor(item: Record<string, unknown>): HTMLElement[] {
    const kind = this.state.kind;
    const out: HTMLElement[] = [];
    if (kind === "progress_bar") {
      out.push(...this.field(item, "title", "Title"), ...this.field(item, "style", "Style", "select"), ...this.field(item, "position", "Position", "select"));
      out.push(h("p", { class: "note" }, "The preview shows the journey with its first milestone done."));
      return out;
    }
    if (kind === "guide") return guideFields(this);
    if (kind === "banner") return bannerFields(this);
    if (kind === "survey") return surveyFields(this);
    if (this.isTour) out.push(...this.field(item, "title", "Title"));
    out.push(...this.field(item, "body_markdown", "Body (Markdown)", "textarea"));
    out.push(...this.selectorField(item, "Element (CSS selector)"));
    out.push(...this.field(item, "page_url_pattern", "Page (path, * for any run of characters)"));
    if (!this.isTour) out.push(...this.trigger());
    const row = h("div", { class: "row" });
    row.append(h("div", null, ...this.field(item, "placement", "Placement", "select")));
    if (this.isTour) row.append(h("div", null, ...this.field(item, "advance_on", "Advance on", "select")));
    else row.append(h("div", null, ...this.field(item, "trigger", "Trigger", "select")));
    out.push(row);
    if (this.isTour && item.advance_on === "event") out.push(...this.field(item, "advance_event", "Event name"));
    if (this.isTour) {
      out.push(this.checkbox(item, "spotlight", " Spotlight the element", false));
      if (item.selector) out.push(...this.field(item, "on_target_missing", "If the element is missing", "select"));
      const pattern = String(item.page_url_pattern ?? "");
      if (!this.onThisPage(pattern)) {
        const note = h("p", { class: "note" }, `This step shows on ${pattern}. `);
        if (pattern.startsWith("/") && !/[*?]/.test(pattern)) {
          note.append(h("button", { type: "button", onclick: () => location.assign(pattern) }, `Go to ${pattern}`));
        }
        out.push(note);
      }
    }
    return out;
  }

  /** The element-present trigger (`when_present`) of the whole piece: typed, or picked. */
  trigger(): HTMLElement[] {
    const doc = this.doc;
    const count = h("span", { class: "n", role: "status" });
    const recount = (): void => {
      const selector = String(doc.when_present ?? "");
      const n = selector ? matchCount(selector) : 0;
      count.className = !selector || n === 1 ? "n" : n < 0 ? "n x" : "n w";
      count.textContent = !selector
        ? "no condition"
        : n < 0
          ? "not a valid selector"
          : n === 0
            ? "not on this page now"
            : n === 1
              ? "1 match on this page"
              : `${n} matches on this page`;
    };
    const input = h("input", { id: "mpb-when_present", placeholder: "e.g. #empty-list" });
    input.value = String(doc.when_present ?? "");
    input.addEventListener("input", () => {
      doc.when_present = input.value;
      recount();
      this.changed();
    });
    recount();
    const picker = h("button", {
      type: "button",
      onclick: () =>
        this.pick(
          (el) => {
            doc.when_present = selectorFor(el);
            this.changed(true);
          },
          "Click the element that must be on the page first (Esc cancels)",
        ),
    }, "Select on page");
    const clear = h("button", {
      type: "button",
      disabled: !doc.when_present,
      onclick: () => {
        doc.when_present = "";
        this.changed(true);
      },
    }, "Clear");
    return [
      h("label", { for: "mpb-when_present" }, this.isTour ? "Start when this element is present (optional)" : "Show when this element is present (optional)"),
      input,
      h("div", { class: "tg" }, count, picker, clear),
    ];
  }
}

const state = load();
if (TOKEN.startsWith("mpg_")) state.token = TOKEN;
if (state.token || state.session) {
  // Building, not using: the author's own tours, hints, checklist and surveys stay out of the
  // way, also when the page's widget is welcomed after this (its socket was slower than us).
  const page = (window as unknown as { Milepost?: { reset(): void; on(name: string, handler: () => void): void } }).Milepost;
  page?.reset();
  page?.on("ready", () => page.reset());
  // The page's own widget has the person's language once identified; English until then.
  if (!locale()) setLocale(EN);
  void new Builder(new Root(), state).start();
}
