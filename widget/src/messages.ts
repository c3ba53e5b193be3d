/** In-app messages (engagement's `message` push), a lazy bundle of its own
 * (static/milepost/messages.js) that the core loads with the first message: the core queues
 * `[host, message]` pairs in `window.MilepostMessages` until this bundle takes the queue over.
 * Shown as a centred modal or a card at the bottom, with an optional call to action;
 * `$message_shown`, `$message_clicked` and `$message_dismissed` are tracked. */
import { S, t } from "./i18n";
import { card, focusCard } from "./render/card";
import type { Root } from "./render/dom";
import type { Message } from "./socket";
import { text } from "./state";
import { safeLink } from "./targeting";

interface MessageHost {
  root: Root;
  track(name: string, properties: Record<string, unknown>): void;
}
type Item = [MessageHost, Message];

function show([host, message]: Item): void {
  const props = { message: message.id, rule: message.rule };
  const cta = message.cta as { label?: unknown; url?: unknown } | undefined;
  let el: HTMLElement | null = null;
  const close = (): void => {
    el?.remove();
  };
  const actions = [];
  if (cta && typeof cta.label === "string") {
    actions.push({
      text: cta.label,
      primary: true,
      run: () => {
        host.track("$message_clicked", props);
        close();
        if (safeLink(cta.url)) location.assign(cta.url);
      },
    });
  }
  el = card({
    title: text(message.title),
    html: text(message.body_html),
    modal: message.style === "modal",
    actions,
    closeLabel: t(S.CloseMessage),
    onClose: () => {
      host.track("$message_dismissed", props);
      close();
    },
  });
  el.dataset.message = String(message.id ?? "");
  if (message.style !== "modal") el.classList.add("k");
  host.root.attach();
  host.root.layer.append(el);
  if (message.style === "modal") focusCard(el);
  host.track("$message_shown", props);
}

const w = window as unknown as { MilepostMessages?: Item[] | { push(item: Item): void } };
const queued = Array.isArray(w.MilepostMessages) ? w.MilepostMessages : [];
w.MilepostMessages = { push: show };
queued.forEach(show);
