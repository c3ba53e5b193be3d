/** Surveys (`content.surfaces.surveys`): one question at a time (NPS 0-10 with a follow-up by
 * score band, rating, single and multiple choice, free text), as a popover card in a bottom
 * corner (it takes the "screen" slot of the queue) or inline inside a host element (its own
 * shadow root there, no slot). NPS and rating are native radio groups (arrow keys move, a
 * legend names them); choices are radios or checkboxes with labels; text is a labelled
 * textarea. Events, each with {survey, version}: `$survey_shown` (once per page view),
 * `$survey_answered` {question, answer} per answer, `$survey_completed` after the last one,
 * `$survey_dismissed` on close / Esc. The server rejects an answer that does not fit. */
import { S, t } from "../i18n";
import { h } from "../render/dom";
import type { Common, Context, Entry, Host, Raw } from "./contract";
import { register } from "./index";
import { type Answer, next, type Question, questions } from "./survey_flow";
import { direction } from "./styles";
import { item, onPage, present } from "./util";

export interface Survey extends Common {
  name: string;
  questions: unknown;
  thank_you: string;
  display: string;
  position: string;
  selector: string;
}

export const DEFAULTS = { name: "", questions: [], thank_you: "", display: "popover", position: "bottom-right", selector: "" };
const MAX_TEXT = 2000;
const THANKS_MS = 2500;

const SHEET =
  // Inline, the core's `:host` rule (fixed, on top of the page) must not apply: it flows.
  ":host(milepost-survey){position:static!important;display:block!important;z-index:auto!important;margin:12px 0!important}" +
  ".sv{position:fixed;bottom:16px;inset-inline-end:16px;width:360px;max-width:calc(100vw - 24px);background:var(--b);color:var(--t);border-radius:var(--r);box-shadow:0 8px 28px #0004,0 0 0 1px #0001;padding:16px;font:14px/1.45 var(--f);animation:i .2s}" +
  ".sv.bottom-left{inset-inline:16px auto}" +
  ".sv.in{position:relative;inset:auto;width:auto;max-width:none;box-shadow:0 0 0 1px #0002}" +
  ".sv fieldset{border:0;margin:0;padding:0;min-width:0}" +
  ".sv legend,.sv label.q{display:block;font-weight:600;font-size:15px;margin:0 0 10px;margin-inline-end:28px;padding:0}" +
  ".sv .sc{display:flex;flex-wrap:wrap;gap:4px}" +
  ".sv .sc label{flex:1 0 24px;position:relative}" +
  ".sv .sc span{display:block;text-align:center;padding:6px 0;border:1px solid #0003;border-radius:6px;cursor:pointer}" +
  ".sv input{position:absolute;opacity:0;inset:0;margin:0;cursor:pointer}" +
  ".sv input:checked+span{background:var(--p);border-color:var(--p);color:#fff}" +
  ".sv input:focus-visible+span{outline:3px solid var(--p);outline-offset:2px}" +
  ".sv .ends{display:flex;justify-content:space-between;font-size:12px;opacity:.7;margin-top:4px}" +
  ".sv .ch label{display:flex;gap:8px;align-items:center;position:relative;padding:7px 10px;border:1px solid #0002;border-radius:6px;margin-bottom:6px;cursor:pointer}" +
  ".sv .ch span::before{content:'';display:inline-block;width:14px;height:14px;border:2px solid #0005;border-radius:50%;margin-inline-end:8px;vertical-align:-2px}" +
  ".sv .ch.many span::before{border-radius:3px}" +
  ".sv .ch input:checked+span::before{background:var(--p);border-color:var(--p)}" +
  ".sv .ch input:checked+span{background:none;color:inherit}" +
  ".sv textarea{width:100%;min-height:80px;font:inherit;color:inherit;background:var(--b);border:1px solid #0004;border-radius:6px;padding:8px;resize:vertical}" +
  ".sv .er{color:#b91c1c;font-size:13px;margin:6px 0 0;min-height:0}" +
  ".sv .ty{font-weight:600;font-size:15px;margin:4px 28px 4px 0}";

let sheet: CSSStyleSheet | null = null;

/** The core's sheets (theme included) plus this module's, for any shadow root we draw in. */
function adopt(target: ShadowRoot, host: Host): void {
  sheet ??= new CSSStyleSheet();
  if (!sheet.cssRules.length) sheet.replaceSync(SHEET);
  const core = host.root.host.shadowRoot?.adoptedStyleSheets ?? [];
  if (!target.adoptedStyleSheets.includes(sheet)) target.adoptedStyleSheets = [...core, sheet];
}

let ids = 0;

/** One question's controls; `read()` answers the answer, or a reason it cannot be sent. */
function field(q: Question): { el: HTMLElement; read: () => Answer | string | null; focus: () => void } {
  const id = `sv${++ids}`;
  if (q.type === "text") {
    const area = h("textarea", { id, maxlength: String(MAX_TEXT), "aria-describedby": `${id}e` });
    const el = h("div", null, h("label", { class: "q", for: id }, q.prompt), area);
    return { el, read: () => (area.value.trim() ? area.value : null), focus: () => area.focus() };
  }
  const many = q.type === "multiple_choice";
  const scale = q.type === "nps" ? [...Array(11).keys()] : q.type === "rating" ? [...Array(Math.max(2, Math.min(10, q.scale ?? 5))).keys()].map((n) => n + 1) : null;
  const values: (number | string)[] = scale ?? q.choices ?? [];
  const inputs = values.map((value) =>
    h("input", {
      type: many ? "checkbox" : "radio",
      name: id,
      value: String(value),
      "aria-label": scale && q.type === "rating" ? t(S.Of, value, values.length) : undefined,
    }),
  );
  // A choice shows its translation (`choice_labels`, onboarding/translations.py) and answers
  // with its source text, so answers in every language count together.
  const labels = Array.isArray(q.choice_labels) ? q.choice_labels : [];
  const options = values.map((value, index) =>
    h("label", null, inputs[index], h("span", null, typeof labels[index] === "string" && labels[index] ? labels[index] : String(value))),
  );
  const group = h(
    "fieldset",
    { role: many ? "group" : "radiogroup", "aria-describedby": `${id}e` },
    h("legend", null, q.prompt),
    h("div", { class: scale ? "sc" : many ? "ch many" : "ch" }, ...options),
    q.type === "nps" && h("div", { class: "ends", "aria-hidden": "true" }, h("span", null, t(S.NotLikely)), h("span", null, t(S.VeryLikely))),
  );
  const read = (): Answer | null => {
    const chosen = inputs.filter((input) => input.checked).map((input) => values[inputs.indexOf(input)]!);
    if (!chosen.length) return null;
    return many ? (chosen as string[]) : chosen[0]!;
  };
  return { el: group, read, focus: () => (inputs.find((i) => i.checked) ?? inputs[0])?.focus() };
}

/** One survey on this page. Exported for the builder's preview (builder/surfaces.ts), which
 * draws it with a host that records nothing and may start at any question (`first`). */
export class Shown {
  readonly #survey: Survey;
  readonly #all: Question[];
  readonly #ctx: Context;
  readonly #el: HTMLElement;
  readonly #entry: Entry | null;
  #current: Question | null;
  #shownOnce = false;
  #finished = false;
  #mount: ((el: HTMLElement) => void) | null = null;

  constructor(survey: Survey, all: Question[], ctx: Context, inline: boolean, first?: Question) {
    this.#survey = survey;
    this.#all = all;
    this.#ctx = ctx;
    this.#current = first ?? next(all, null);
    this.#el = h("section", {
      class: `sv ${inline ? "in" : survey.position === "bottom-left" ? "bottom-left" : ""}`,
      role: inline ? "region" : "dialog",
      "aria-label": survey.name || t(S.Survey),
      "data-survey": survey.key,
      // Inline, it sits in the host page: a right-to-left language still reads right to left
      // (and its NPS and rating radios' arrow keys follow, as native radio groups do).
      dir: direction(),
      tabindex: "-1",
    });
    this.#el.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !inline) {
        event.stopPropagation();
        this.dismiss();
      }
    });
    this.#entry = inline
      ? null
      : { kind: "survey", key: survey.key, priority: survey.priority, slot: "screen", show: () => this.#show(), hide: () => this.#el.remove() };
  }

  get key(): string {
    return this.#survey.key;
  }

  #props(extra?: Raw): Raw {
    return { survey: this.#survey.key, version: this.#survey.version, ...extra };
  }

  /** Popover: wait for the screen. Inline: draw inside `target` now. */
  start(target?: Element): void {
    if (this.#entry) {
      this.#ctx.queue.want(this.#entry);
      return;
    }
    const holder = document.createElement("milepost-survey");
    const shadow = holder.attachShadow({ mode: "open" });
    adopt(shadow, this.#ctx.host);
    this.#mount = (el) => shadow.append(el);
    target?.append(holder);
    this.#show();
  }

  #show(): void {
    if (this.#entry) {
      const { root } = this.#ctx.host;
      root.attach();
      const shadow = root.host.shadowRoot;
      if (shadow) adopt(shadow, this.#ctx.host);
      root.layer.append(this.#el);
    } else {
      this.#mount?.(this.#el);
    }
    this.#draw();
    if (!this.#shownOnce) this.#ctx.host.track("$survey_shown", this.#props());
    this.#shownOnce = true;
  }

  #draw(): void {
    const q = this.#current;
    const close = h("button", { type: "button", class: "x", "aria-label": t(S.CloseSurvey), onclick: () => this.dismiss() }, "×");
    if (!q) {
      const thanks = this.#survey.thank_you || t(S.ThankYou);
      this.#el.replaceChildren(close, h("p", { class: "ty", role: "status" }, thanks));
      this.#ctx.host.root.announce(thanks);
      return;
    }
    const control = field(q);
    const error = h("p", { class: "er", id: control.el.getAttribute("aria-describedby") ?? "", "aria-live": "polite" });
    const last = next(this.#all, q, q.type === "nps" ? 0 : undefined) === null && next(this.#all, q, 10) === null;
    const form = h(
      "form",
      { novalidate: true },
      control.el,
      error,
      h(
        "div",
        { class: "f" },
        h("span", { class: "n" }),
        q.optional && h("button", { type: "button", onclick: () => this.#advance(q, undefined) }, t(S.Skip)),
        h("button", { type: "submit", class: "p" }, t(last ? S.Send : S.Next)),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const answer = control.read();
      if (answer === null) {
        error.textContent = t(q.type === "text" ? S.WriteAnswer : S.ChooseAnswer);
        control.focus();
        return;
      }
      this.#ctx.host.track("$survey_answered", this.#props({ question: q.key, answer }));
      this.#advance(q, answer as Answer);
    });
    this.#el.replaceChildren(close, form);
    control.focus();
  }

  #advance(q: Question, answer: Answer | undefined): void {
    this.#current = next(this.#all, q, answer);
    this.#draw();
    if (!this.#current) {
      this.#finished = true;
      this.#ctx.host.track("$survey_completed", this.#props());
      setTimeout(() => this.#close(), THANKS_MS);
    }
  }

  dismiss(): void {
    if (!this.#finished) this.#ctx.host.track("$survey_dismissed", this.#props());
    this.#finished = true;
    this.#close();
  }

  #close(): void {
    (this.#entry ? this.#el : this.#el.getRootNode() instanceof ShadowRoot ? (this.#el.getRootNode() as ShadowRoot).host : this.#el).remove();
    if (this.#entry) this.#ctx.queue.done(this.#entry);
    shown.delete(this.key);
    done.add(this.key);
  }

  /** It no longer qualifies (another page, a publish took it away). */
  drop(reason: string): void {
    if (this.#entry) {
      this.#el.remove();
      this.#ctx.queue.drop(this.#entry, reason);
    } else {
      this.#close();
    }
    shown.delete(this.key);
  }
}

const shown = new Map<string, Shown>();
/** Answered or dismissed in this page's life: not asked again here (the server's frequency
 * cap decides for the next page). */
const done = new Set<string>();
const waits = new Map<string, () => void>();

function update(raw: Raw[], ctx: Context): void {
  const wanted = new Map<string, Survey>();
  for (const value of raw) {
    const survey = item<Survey>(value, DEFAULTS);
    if (survey && onPage(survey) && !done.has(survey.key) && questions(survey.questions).length) wanted.set(survey.key, survey);
  }
  for (const [key, survey] of shown) {
    if (!wanted.has(key)) survey.drop("not_targeted");
  }
  for (const [key, cancel] of waits) {
    if (!wanted.has(key)) {
      cancel();
      waits.delete(key);
    }
  }
  for (const [key, survey] of wanted) {
    if (shown.has(key) || waits.has(key)) continue;
    const inline = survey.display === "inline" && !!survey.selector;
    const begin = (): void => {
      const target = inline ? survey.selector : survey.when_present;
      const run = (element?: Element): void => {
        waits.delete(key);
        const view = new Shown(survey, questions(survey.questions), ctx, inline);
        shown.set(key, view);
        view.start(element);
      };
      if (!target) return run();
      let found = false;
      const cancel = present(ctx.host, { kind: "survey", key, selector: target, timeoutMs: survey.wait_timeout_ms }, (element) => {
        found = true;
        run(element);
      });
      if (!found) waits.set(key, cancel);
    };
    begin();
  }
}

register("surveys", { update });
