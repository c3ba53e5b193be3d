/** Positioning with Floating UI's core (`computePosition`) on a viewport-sized platform and
 * one small middleware of our own: every floating element is `position: fixed` in the shadow
 * root, so the target's client rect is all the geometry needed, whatever scroll containers,
 * sticky headers or transforms surround the target.
 *
 * Why not `@floating-ui/dom` with its flip/shift/offset: its platform alone is 6.4 KB gzipped
 * and core's `detectOverflow`-based middleware another 1.2 KB, together more than half of the
 * widget's 12 KB budget; the viewport is the only clipping boundary a fixed element has, so
 * `fit` below does offset + flip + shift in a few lines. */
import {
  computePosition,
  type Middleware,
  type Placement as Side,
  type Platform,
} from "@floating-ui/core";
import type { Placement } from "./state";

const OPPOSITE: Record<string, string> = { top: "bottom", bottom: "top", left: "right", right: "left" };
const clamp = (value: number, max: number): number => Math.max(8, Math.min(value, max - 8));

/** Offset by `gap`, flip to the opposite side when this side has no room and that one has
 * more, then shift along the viewport so the whole element stays visible. */
export function fit(gap: number, width: number, height: number): Middleware {
  return {
    name: "fit",
    fn({ x, y, placement, rects: { reference: r, floating: f }, middlewareData }) {
      const side = placement.split("-")[0]!;
      const vertical = side === "top" || side === "bottom";
      const room: Record<string, number> = {
        top: r.y,
        bottom: height - r.y - r.height,
        left: r.x,
        right: width - r.x - r.width,
      };
      const opposite = OPPOSITE[side]!;
      if (
        !middlewareData.fit &&
        room[side]! < (vertical ? f.height : f.width) + gap &&
        room[opposite]! > room[side]!
      ) {
        return { data: { flipped: true }, reset: { placement: opposite as Side } };
      }
      const sign = side === "top" || side === "left" ? -gap : gap;
      return {
        x: clamp(vertical ? x : x + sign, width - f.width),
        y: clamp(vertical ? y + sign : y, height - f.height),
      };
    },
  };
}

const platform: Platform = {
  getElementRects: ({ reference, floating }) => {
    const r = (reference as Element).getBoundingClientRect();
    const f = floating as HTMLElement;
    return {
      reference: { x: r.left, y: r.top, width: r.width, height: r.height },
      floating: { x: 0, y: 0, width: f.offsetWidth, height: f.offsetHeight },
    };
  },
  getClippingRect: () => ({ x: 0, y: 0, width: innerWidth, height: innerHeight }),
  getDimensions: (element) => ({
    width: (element as HTMLElement).offsetWidth,
    height: (element as HTMLElement).offsetHeight,
  }),
};

/** Keep `floating` next to `target` through scrolling (any container: scroll events are
 * caught in the capture phase), resizing and layout shifts. Returns the cleanup. */
export function anchor(
  target: Element,
  floating: HTMLElement,
  placement: Placement,
  gap = 10,
  onMove?: (rect: DOMRect) => void,
): () => void {
  let last = "";
  const update = (): void => {
    const rect = target.getBoundingClientRect();
    const now = `${rect.left},${rect.top},${rect.width},${rect.height},${floating.offsetWidth},${floating.offsetHeight}`;
    if (now === last) return;
    last = now;
    onMove?.(rect);
    const root = document.documentElement;
    void computePosition(target, floating, {
      platform,
      strategy: "fixed",
      placement: placement === "auto" ? "bottom" : placement,
      middleware: [fit(gap, root.clientWidth, root.clientHeight)],
    }).then(({ x, y }) => {
      floating.style.left = `${x}px`;
      floating.style.top = `${y}px`;
    });
  };
  const resize = new ResizeObserver(update);
  resize.observe(target);
  resize.observe(floating);
  // Layout shifts move the target without any event; a light poll catches them.
  const poll = setInterval(update, 250);
  const options = { capture: true, passive: true };
  addEventListener("scroll", update, options);
  addEventListener("resize", update);
  update();
  return () => {
    resize.disconnect();
    clearInterval(poll);
    removeEventListener("scroll", update, options);
    removeEventListener("resize", update);
  };
}

/** Size and place a spotlight cut-out over the target's box (CSSOM writes, allowed by CSP). */
export function cover(el: HTMLElement, rect: DOMRect, pad = 6): void {
  Object.assign(el.style, {
    left: `${rect.left - pad}px`,
    top: `${rect.top - pad}px`,
    width: `${rect.width + pad * 2}px`,
    height: `${rect.height + pad * 2}px`,
  });
}
