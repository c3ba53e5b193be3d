/** The surfaces bundle (static/milepost/surfaces.js): the registry of kinds and the dispatch
 * of what the core queues in `window.MilepostSurfaces` (`[host, "content" | "message",
 * payload]`). Read contract.ts first: it is the agreement between the kinds' modules. */
import type { Context, Host, Raw, Renderer } from "./contract";
import { Line } from "./queue";

const kinds = new Map<string, Renderer>();
const contexts = new Map<Host, { ctx: Context; surfaces: Raw }>();

/** A kind's module registers its renderer once, at load (`banners`, `guides`, `message`…). */
export function register(kind: string, renderer: Renderer): void {
  kinds.set(kind, renderer);
}

function context(host: Host): { ctx: Context; surfaces: Raw } {
  let entry = contexts.get(host);
  if (!entry) {
    const made = { ctx: { host, queue: new Line(host) }, surfaces: {} };
    contexts.set(host, made);
    // A navigation inside the app: URL rules again (the core tracks `$pageview` for it).
    host.on("$pageview", () => update(made));
    entry = made;
  }
  return entry;
}

function update({ ctx, surfaces }: { ctx: Context; surfaces: Raw }): void {
  for (const [kind, renderer] of kinds) {
    const items = surfaces[kind];
    try {
      renderer.update?.(Array.isArray(items) ? (items as Raw[]) : [], ctx);
    } catch (error) {
      ctx.host.track("$widget_error", { code: "internal", message: `${kind}: ${String(error)}`.slice(0, 500) });
    }
  }
}

function receive([host, type, payload]: [Host, string, unknown]): void {
  const entry = context(host);
  if (type === "content") {
    const surfaces = (payload as Raw | null)?.surfaces;
    entry.surfaces = typeof surfaces === "object" && surfaces !== null ? (surfaces as Raw) : {};
    update(entry);
  } else {
    kinds.get(type)?.push?.((payload ?? {}) as Raw, entry.ctx);
  }
}

/** Take the core's queue over once every kind's module has registered (see main.ts). */
export function start(): void {
  const w = window as unknown as { MilepostSurfaces?: unknown };
  const queued = Array.isArray(w.MilepostSurfaces) ? (w.MilepostSurfaces as [Host, string, unknown][]) : [];
  w.MilepostSurfaces = { push: receive };
  queued.forEach(receive);
}
