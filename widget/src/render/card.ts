/** The card every step, tooltip and message is drawn in: title, sanitised body (rendered from
 * Markdown and cleaned on the server), a footer of buttons, a close button. A modal card traps
 * focus; every card closes on Esc. */
import { h } from "./dom";

export interface Action {
  text: string;
  primary?: boolean;
  label?: string;
  run: () => void;
}

export interface CardOptions {
  title: string;
  html: string;
  modal?: boolean;
  meta?: string;
  actions: Action[];
  closeLabel: string;
  onClose: () => void;
  onKey?: (event: KeyboardEvent) => void;
}

let counter = 0;

export function card(options: CardOptions): HTMLElement {
  const id = `mp${++counter}`;
  const body = h("div", { class: "b", id: `${id}b` });
  try {
    body.innerHTML = options.html;
  } catch {
    // A Trusted Types host refuses innerHTML: show the words without the markup.
    body.textContent = options.html.replace(/<[^>]*>/g, " ");
  }
  const buttons = options.actions.map((action) =>
    h(
      "button",
      {
        type: "button",
        class: action.primary ? "p" : undefined,
        "aria-label": action.label,
        onclick: () => action.run(),
      },
      action.text,
    ),
  );
  const el = h(
    "div",
    {
      class: options.modal ? "c m" : "c",
      role: "dialog",
      "aria-modal": options.modal && "true",
      // Without a title (a hint, a message) the dialog is named by its words.
      "aria-labelledby": id + (options.title ? "t" : "b"),
      "aria-describedby": `${id}b`,
      tabindex: "-1",
    },
    h("button", {
      type: "button",
      class: "x",
      "aria-label": options.closeLabel,
      onclick: () => options.onClose(),
    }, "×"),
    options.title && h("h2", { id: `${id}t` }, options.title),
    body,
    h("div", { class: "f" }, h("span", { class: "n" }, options.meta ?? ""), ...buttons),
    h("div", { class: "a" }),
  );
  el.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      options.onClose();
    } else if (event.key === "Tab" && options.modal) {
      trap(el, event);
    } else {
      options.onKey?.(event);
    }
  });
  return el;
}

function trap(container: HTMLElement, event: KeyboardEvent): void {
  const focusable = [...container.querySelectorAll<HTMLElement>("button,a[href],input,[tabindex='0']")];
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  const active = (container.getRootNode() as ShadowRoot).activeElement;
  if (!first || !last) return;
  if (event.shiftKey && (active === first || active === container)) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && active === last) {
    event.preventDefault();
    first.focus();
  }
}

/** Focus the card's main button (or the card), remembering nothing: callers restore focus. */
export function focusCard(el: HTMLElement): void {
  (el.querySelector<HTMLElement>("button.p") ?? el).focus({ preventScroll: true });
}
