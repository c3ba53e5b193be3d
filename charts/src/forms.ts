// The dashboard forms' small helpers. Without JavaScript every form still works: presets are
// links and the funnel's steps are plain inputs; this adds add / remove / reorder of steps.

function renumber(list: HTMLElement): void {
  const rows = list.querySelectorAll<HTMLElement>("[data-step]");
  rows.forEach((row, index) => {
    const label = row.querySelector("label");
    if (label) label.textContent = `Step ${index + 1}`;
    for (const button of row.querySelectorAll<HTMLButtonElement>("button[data-move], button[data-remove]")) {
      const move = button.dataset.move;
      button.disabled =
        (move === "up" && index === 0) ||
        (move === "down" && index === rows.length - 1) ||
        (button.dataset.remove !== undefined && rows.length <= 2);
    }
  });
}

function wireSteps(list: HTMLElement): void {
  list.addEventListener("click", (event) => {
    const button = (event.target as HTMLElement).closest("button");
    const row = button?.closest<HTMLElement>("[data-step]");
    if (!button || !row) return;
    event.preventDefault();
    if (button.dataset.remove !== undefined) {
      const next = (row.nextElementSibling ?? row.previousElementSibling) as HTMLElement | null;
      row.remove();
      next?.querySelector("input")?.focus();
    } else if (button.dataset.move === "up" && row.previousElementSibling) {
      list.insertBefore(row, row.previousElementSibling);
      button.focus();
    } else if (button.dataset.move === "down" && row.nextElementSibling) {
      list.insertBefore(row.nextElementSibling, row);
      button.focus();
    }
    renumber(list);
  });
  const add = document.querySelector<HTMLButtonElement>(`[data-add-step="${list.id}"]`);
  add?.addEventListener("click", (event) => {
    event.preventDefault();
    const rows = list.querySelectorAll<HTMLElement>("[data-step]");
    const copy = rows[rows.length - 1].cloneNode(true) as HTMLElement;
    const input = copy.querySelector("input");
    if (input) {
      input.value = "";
      input.id = `${list.id}-${rows.length}`;
      copy.querySelector("label")?.setAttribute("for", input.id);
    }
    list.append(copy);
    renumber(list);
    input?.focus();
  });
  renumber(list);
}

export function wireForms(root: Document): void {
  for (const list of root.querySelectorAll<HTMLElement>("[data-steps]")) wireSteps(list);
}
