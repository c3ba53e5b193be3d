/** A journey shown to the end user: a bar or a checklist of its milestones, each with its call
 * to action; updated in place when a `progress` push arrives. */
import { ITEM, type JourneyView, type ProgressBar, type ProgressItem } from "../state";
import { S, t } from "../i18n";
import { h, type Root } from "./dom";

export interface ProgressHost {
  root: Root;
  act(item: ProgressItem): void;
}

export class ProgressView {
  readonly #el: HTMLElement;
  #expanded: boolean;

  readonly bar: ProgressBar;
  readonly #host: ProgressHost;

  constructor(bar: ProgressBar, host: ProgressHost) {
    this.bar = bar;
    this.#host = host;
    this.#expanded = bar.style === "checklist";
    this.#el = h("section", { class: `g ${bar.position}`, "data-progress-bar": bar.key });
  }

  render(journey: JourneyView): void {
    const milestones = new Map(journey.milestones.map((m) => [m.key, m]));
    const items = this.bar.items.length
      ? this.bar.items
      : journey.milestones.map((m) => ({ ...ITEM, milestone: m.key }));
    const count = items.filter((item) => milestones.get(item.milestone)?.completedAt).length;
    const title = this.bar.title || journey.name;
    const listId = `mpl-${this.bar.key}`;
    const fill = h("div");
    fill.style.width = `${journey.percent}%`;
    this.#el.replaceChildren(
      h(
        "button",
        {
          type: "button",
          "aria-expanded": String(this.#expanded),
          "aria-controls": listId,
          onclick: () => {
            this.#expanded = !this.#expanded;
            this.render(journey);
          },
        },
        h("span", null, title),
        t(S.Of, count, items.length),
      ),
      h(
        "div",
        {
          class: "r",
          role: "progressbar",
          "aria-label": title,
          // aria-valuemin and aria-valuemax default to 0 and 100 for a progressbar.
          "aria-valuenow": String(journey.percent),
        },
        fill,
      ),
      journey.peers ? h("p", { class: "pc" }, journey.peers) : "",
      this.#expanded ?
        h(
          "ul",
          { id: listId },
          ...items.map((item) => {
            const milestone = milestones.get(item.milestone);
            const complete = !!milestone?.completedAt;
            const label = item.label || milestone?.name || item.milestone;
            return h(
              "li",
              { class: complete ? "d" : undefined, "data-milestone": item.milestone },
              h("i", { "aria-hidden": "true" }, complete ? "✓" : ""),
              h("span", null, label, h("span", { class: "v" }, t(complete ? S.ItemDone : S.ItemToDo))),
              !complete &&
                item.action !== "none" &&
                h(
                  "button",
                  { type: "button", "aria-label": t(S.StartItem, label), onclick: () => this.#host.act(item) },
                  t(S.Start),
                ),
            );
          }),
        ) : "",
    );
    if (!this.#el.isConnected) {
      this.#host.root.attach();
      this.#host.root.layer.append(this.#el);
    }
  }

  destroy(): void {
    this.#el.remove();
  }
}

/** A short celebration: a toast (motion is off under prefers-reduced-motion) plus the live
 * region's announcement. Celebrations that arrive together (a tour completed and the
 * milestone it reached) share one toast, one line each. */
let toastTimer = 0;
export function celebrate(root: Root, message: string): void {
  let toast = root.layer.querySelector(".t");
  if (!toast) root.layer.append((toast = h("div", { class: "t", "aria-hidden": "true" })));
  toast.append(h("div", null, `🎉 ${message}`));
  root.announce(message);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toast.remove(), 3500) as unknown as number;
}
