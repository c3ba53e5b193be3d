/** Positioning with Floating UI: core's `computePosition` and `shift`, on a small platform of
 * ours. Every floating element is `position: fixed` in the shadow root, so all geometry is in
 * viewport coordinates and the one boundary that matters is where the target can be seen: the
 * viewport, cut down to each scroll container around the target and to what lies below a
 * sticky or fixed header that does not contain it. Flip and shift keep the popover inside
 * that area (never under the header); when the target leaves it (scrolled away inside its
 * container, or under the header) the popover hides until the target comes back.
 *
 * Why not `@floating-ui/dom`, nor core's `flip` and `offset`: measured in this bundle
 * (bench/README.md), dom costs 6.4 KB gzipped against 2.7 KB for core's set, and core's
 * `flip` + `offset` alone 1.2 KB, which the 12 KB budget cannot take; `flipWithin` and a
 * reference grown by the gap do the part of them the widget uses. */
import { computePosition, type Middleware, type Platform, shift } from "@floating-ui/core";
import type { Placement } from "./state";

export interface Area {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The part of the viewport where `target` can be seen. */
export function visibleArea(target: Element): Area {
  const root = document.documentElement;
  let top = 0;
  let left = 0;
  let bottom = root.clientHeight;
  let right = root.clientWidth;
  for (let el = target.parentElement; el && el !== document.body && el !== root; el = el.parentElement) {
    if (/auto|scroll|hidden|clip/.test(getComputedStyle(el).overflow)) {
      const r = el.getBoundingClientRect();
      top = Math.max(top, r.top + el.clientTop);
      left = Math.max(left, r.left + el.clientLeft);
      bottom = Math.min(bottom, r.top + el.clientTop + el.clientHeight);
      right = Math.min(right, r.left + el.clientLeft + el.clientWidth);
    }
  }
  // A header pinned to the top of the viewport (sticky or fixed) covers what scrolls under it.
  const t = target.getBoundingClientRect();
  const x = Math.min(Math.max(t.left + t.width / 2, 1), right - 1);
  const hit = document.elementsFromPoint(x, 1).find((el) => el.localName !== "milepost-widget");
  for (let el: Element | null | undefined = hit; el; el = el.parentElement) {
    if (/fixed|sticky/.test(getComputedStyle(el).position)) {
      const r = el.getBoundingClientRect();
      if (!el.contains(target) && r.bottom < innerHeight / 2) top = Math.max(top, r.bottom);
      break;
    }
  }
  return { x: left, y: top, width: Math.max(0, right - left), height: Math.max(0, bottom - top) };
}

const OPPOSITE = { top: "bottom", bottom: "top", left: "right", right: "left" } as const;
type Side = keyof typeof OPPOSITE;

/** Flip to the opposite side when the authored one has no room in `area` and that one has
 * more. Core's `flip` does this and much more (alignments, cross-axis fallbacks) for 950 B
 * gzipped, which the budget cannot take (bench/README.md); this is the one case we need. */
function flipWithin(area: Area): Middleware {
  return {
    name: "flip",
    fn({ placement, rects: { reference: r, floating: f }, middlewareData }) {
      const side = placement as Side;
      const room = {
        top: r.y - area.y,
        bottom: area.y + area.height - r.y - r.height,
        left: r.x - area.x,
        right: area.x + area.width - r.x - r.width,
      };
      const need = side === "top" || side === "bottom" ? f.height : f.width;
      const other = OPPOSITE[side];
      return !middlewareData.flip && room[side] < need && room[other] > room[side]
        ? { data: {}, reset: { placement: other } }
        : {};
    },
  };
}

const size = (el: unknown) => ({
  width: (el as HTMLElement).offsetWidth,
  height: (el as HTMLElement).offsetHeight,
});

/** Keep `floating` next to `target` through scrolling (any container: scroll events are
 * caught in the capture phase), resizing and layout shifts; `onMove` hears the target's box
 * and whether it can be seen. Left and right are mirrored on a right-to-left page. Returns
 * the cleanup. */
export function anchor(
  target: Element,
  floating: HTMLElement,
  placement: Placement,
  gap = 10,
  onMove?: (rect: DOMRect, hidden: boolean) => void,
): () => void {
  let last = "";
  const rtl = getComputedStyle(floating).direction === "rtl";
  const side =
    placement === "auto" ? "bottom"
    : rtl && placement === "left" ? "right"
    : rtl && placement === "right" ? "left"
    : placement;
  const update = (): void => {
    const rect = target.getBoundingClientRect();
    const now = `${rect.left},${rect.top},${rect.width},${rect.height},${floating.offsetWidth},${floating.offsetHeight}`;
    if (now === last) return;
    last = now;
    const area = visibleArea(target);
    const hidden =
      rect.bottom <= area.y ||
      rect.top >= area.y + area.height ||
      rect.right <= area.x ||
      rect.left >= area.x + area.width;
    floating.classList.toggle("z", hidden);
    onMove?.(rect, hidden);
    const platform: Platform = {
      // The reference grown by the gap on every side: the same as core's `offset(gap)`
      // middleware, for 220 B less (bench/README.md).
      getElementRects: () => ({
        reference: {
          x: rect.left - gap,
          y: rect.top - gap,
          width: rect.width + 2 * gap,
          height: rect.height + 2 * gap,
        },
        floating: { x: 0, y: 0, ...size(floating) },
      }),
      getClippingRect: () => area,
      getDimensions: size,
    };
    void computePosition(target, floating, {
      platform,
      strategy: "fixed",
      placement: side,
      middleware: [flipWithin(area), shift({ padding: 8 })],
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

/** Dim the whole viewport except a hole over the target's box: an even-odd clip path on a
 * full-screen layer (a CSSOM write inside the shadow root, allowed by a strict CSP). The
 * clip path also clips hit testing, so the page around the target takes no clicks while a
 * click on the target goes through the hole to it. */
export function cover(el: HTMLElement, rect: DOMRect, hidden: boolean, pad = 6): void {
  const [l, t, r, b] = hidden ? [0, 0, 0, 0] : [
    rect.left - pad,
    rect.top - pad,
    rect.right + pad,
    rect.bottom + pad,
  ];
  el.style.clipPath = `polygon(evenodd,0 0,100% 0,100% 100%,0 100%,0 0,${l}px ${t}px,${r}px ${t}px,${r}px ${b}px,${l}px ${b}px,${l}px ${t}px)`;
}
