/** Picking an element of the customer's page: hover outlines it (with its tag and label), a
 * click chooses it, Esc cancels. While picking, the page's own clicks, presses and submits are
 * stopped before the app hears them (capture listeners on the window), except inside the
 * builder's root. */
import { h, type Root } from "../render/dom";

const BLOCKED = ["mousedown", "mouseup", "pointerdown", "pointerup", "dblclick", "submit"];

/** Start picking; answers the function that stops it (and takes its outline and prompt down). */
export function startPicking(
  root: Root,
  prompt: string,
  on: { picked(el: Element): void; cancelled(): void },
): () => void {
  const box = h("div", { class: "po", hidden: true }, h("span"));
  const banner = h("div", { class: "pb", role: "status" }, prompt);
  root.layer.append(box, banner);
  const ours = (event: Event): boolean => event.composedPath().includes(root.host);
  const under = (event: Event): Element | null => {
    const el = event.composedPath()[0];
    return el instanceof Element && el !== document.documentElement && el !== document.body ? el : null;
  };
  const hover = (event: Event): void => {
    const el = ours(event) ? null : under(event);
    box.hidden = !el;
    if (!el) return;
    const rect = el.getBoundingClientRect();
    Object.assign(box.style, {
      top: `${rect.top}px`,
      left: `${rect.left}px`,
      width: `${rect.width}px`,
      height: `${rect.height}px`,
    });
    const label = el.getAttribute("aria-label") ?? (el.textContent ?? "").trim().slice(0, 30);
    box.firstElementChild!.textContent = `${el.tagName.toLowerCase()}${label ? ` “${label}”` : ""}`;
  };
  const block = (event: Event): void => {
    if (ours(event)) return;
    event.preventDefault();
    event.stopImmediatePropagation();
  };
  const click = (event: Event): void => {
    if (ours(event)) return;
    block(event);
    const el = under(event);
    if (el) on.picked(el);
  };
  const key = (event: KeyboardEvent): void => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopImmediatePropagation();
      on.cancelled();
    }
  };
  addEventListener("mouseover", hover, true);
  addEventListener("click", click, true);
  addEventListener("keydown", key, true);
  for (const name of BLOCKED) addEventListener(name, block, true);
  return () => {
    removeEventListener("mouseover", hover, true);
    removeEventListener("click", click, true);
    removeEventListener("keydown", key, true);
    for (const name of BLOCKED) removeEventListener(name, block, true);
    box.remove();
    banner.remove();
  };
}
