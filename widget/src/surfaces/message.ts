/** In-app messages (engagement's `message` push): a centred modal or a card at the bottom
 * (style `toast`), each taking the screen through the queue (one thing at a time), or a bar at
 * the top of the page (style `banner`, drawn like an authored banner, in the queue's `bar`
 * slot); each with an optional call to action. `$message_shown`, `$message_clicked` and
 * `$message_dismissed` are tracked. A message with `when_present` (a selector) joins the line
 * only once that element is on the page (navigations inside the app included), at most
 * `wait_timeout_ms` after it arrived; else `$content_target_missing` {kind: "message", key:
 * its delivery id, selector} and it is not shown (the server pushes it again on the next
 * visit, as it does every message not yet shown). */
import { S, t } from "../i18n";
import { type Action, card, focusCard } from "../render/card";
import { text } from "../state";
import { safeLink } from "../targeting";
import { drawBar } from "./banner";
import type { Context, Entry, Raw } from "./contract";
import { register } from "./index";
import { present } from "./util";

function push(message: Raw, { host, queue }: Context): void {
  const props = { message: message.id, rule: message.rule };
  const cta = message.cta as { label?: unknown; url?: unknown } | undefined;
  const modal = message.style === "modal";
  const banner = message.style === "banner";
  let el: HTMLElement | null = null;
  const close = (): void => {
    el?.remove();
    queue.done(entry);
  };
  const actions: Action[] = [];
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
  let seen = false;
  const entry: Entry = {
    kind: "message",
    key: String(message.id ?? ""),
    priority: typeof message.priority === "number" ? message.priority : 0,
    slot: banner ? "bar" : "screen",
    show() {
      if (banner) {
        el = drawBar(host, {
          title: text(message.title),
          html: text(message.body_html),
          position: "top",
          mode: "push",
          dismissible: true,
          ctaLabel: actions[0]?.text ?? "",
          onClick: () => actions[0]?.run(),
          onDismiss: () => {
            host.track("$message_dismissed", props);
            close();
          },
        });
        el.dataset.message = entry.key;
        if (!seen) host.track("$message_shown", props);
        seen = true;
        return;
      }
      el = card({
        title: text(message.title),
        html: text(message.body_html),
        modal,
        actions,
        closeLabel: t(S.CloseMessage),
        onClose: () => {
          host.track("$message_dismissed", props);
          close();
        },
      });
      el.dataset.message = entry.key;
      if (!modal) el.classList.add("k");
      host.root.attach();
      host.root.layer.append(el);
      if (modal) focusCard(el);
      if (!seen) host.track("$message_shown", props);
      seen = true;
    },
    hide() {
      el?.remove();
    },
  };
  const selector = message.when_present;
  if (typeof selector === "string" && selector) {
    const timeoutMs = typeof message.wait_timeout_ms === "number" ? message.wait_timeout_ms : 5000;
    present(host, { kind: "message", key: entry.key, selector, timeoutMs }, () => queue.want(entry));
  } else {
    queue.want(entry);
  }
}

register("message", { push });
