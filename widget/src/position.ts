/** Positioning with Floating UI: core's `computePosition` and `shift`, on a small platform of
 * ours. Every floating element is `position: fixed` in the shadow root, so all geometry is in
 * viewport coordinates. Two areas matter:
 * - where the popover may go (the platform's clipping rect, what `flip` and `shift` keep it
 *   inside): the viewport below a sticky or fixed header that does not contain the target.
 *   The popover is not clipped by the target's scroll containers, so it leaves them wherever
 *   the viewport has room, but it never sits on the header;
 * - where the target can be seen: that area cut down to each scroll container around the
 *   target. When the target leaves it (scrolled away inside its container, or under the
 *   header) the popover hides until the target comes back.
 * The card's arrow points at the target's centre.
 *
 * Why not `@floating-ui/dom`, nor core's `flip`, `offset` and `arrow`: measured in this bundle
 * (bench/README.md), dom costs 6.4 KB gzipped against 2.7 KB for core's set, core's `flip` +
 * `offset` 1.2 KB and `arrow` 350 B, which the 12 KB budget cannot take; `flipWithin`, a
 * reference grown by the gap and `towards` do the part of them the widget uses. */
import { computePosition, type Middleware, type Platform, shift } from "@floating-ui/core";
import type { Placement } from "./state";

export interface Area {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The bottom of a header pinned to the top of the viewport (sticky or fixed) that does not
 * contain `target`, or 0: what scrolls under it cannot be seen, and a popover must not sit
 * on it. */
export function headerBottom(target: Element, t: DOMRect): number {
  const x = Math.min(Math.max(t.left + t.width / 2, 1), innerWidth - 1);
  const hit = document.elementsFromPoint(x, 1).find((el) => el.localName !== "milepost-widget");
  for (let el: Element | null | undefined = hit; el; el = el.parentElement) {
    if (/fixed|sticky/.test(getComputedStyle(el).position)) {
      const r = el.getBoundingClientRect();
      return !el.contains(target) && r.bottom < innerHeight / 2 ? r.bottom : 0;
    }
  }
  return 0;
}

/** The part of the viewport where `target` can be seen: inside every scroll container around
 * it and below the header. */
export function visibleArea(target: Element, header: number): DOMRect {
  const root = document.documentElement;
  let top = header;
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
  return new DOMRect(left, top, Math.max(0, right - left), Math.max(0, bottom - top));
}

/** Whether two boxes share some area (touching edges do not count). */
const overlaps = (a: DOMRect, b: DOMRect): boolean =>
  a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

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

/** The arrow's offset (it is 12 px wide) on one axis of a popover `length` long, for a target
 * centre at `centre`: on the edge when the centre is beyond it, else kept off the corners. */
const towards = (centre: number, length: number): number =>
  (centre <= 0 ? 0 : centre >= length ? length : Math.min(Math.max(centre, 18), length - 18)) - 6;

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
  const rtl = getComputedStyle(floating).direction === "rtl";
  const side =
    placement === "auto" ? "bottom"
    : rtl && placement === "left" ? "right"
    : rtl && placement === "right" ? "left"
    : placement;
  const update = (): void => {
    const rect = target.getBoundingClientRect();
    const header = headerBottom(target, rect);
    const hidden = !overlaps(rect, visibleArea(target, header));
    floating.classList.toggle("z", hidden);
    // The popover is fixed in the widget's layer: it may leave the target's scroll containers
    // wherever the viewport has room, but not go under the header (the root boundary, cut
    // by the header's height).
    const root = document.documentElement;
    const bounds = { x: 0, y: header, width: root.clientWidth, height: root.clientHeight - header };
    const arrow = floating.querySelector<HTMLElement>(".a");
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
      getClippingRect: () => bounds,
      getDimensions: size,
    };
    void computePosition(target, floating, {
      platform,
      strategy: "fixed",
      placement: side,
      middleware: [flipWithin(bounds), shift({ padding: 8 })],
    }).then(({ x, y }) => {
      floating.style.left = `${x}px`;
      floating.style.top = `${y}px`;
      // The arrow points at the target's centre, seen from the popover: past one of its
      // edges (the one that faces the target), where it sits, and along the other axis.
      // (CSSOM writes: a strict CSP refuses style attributes, not these.)
      if (arrow) {
        arrow.style.left = `${towards(rect.left + rect.width / 2 - x, floating.offsetWidth)}px`;
        arrow.style.top = `${towards(rect.top + rect.height / 2 - y, floating.offsetHeight)}px`;
      }
      onMove?.(rect, hidden);
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

/** The widget's own surfaces (checklist, celebration toast, in-app message toast) must not
 * cover a step's target or its popover: one that would is hidden until the step moves on.
 * (They keep their place in the layout while hidden, so their box is measured as is.) */
export function makeRoom(layer: HTMLElement, avoid: DOMRect[]): void {
  for (const el of layer.querySelectorAll(".g,.t,.k")) {
    const r = el.getBoundingClientRect();
    el.classList.toggle("z", avoid.some((a) => overlaps(r, a)));
  }
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
