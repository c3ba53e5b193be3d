// Bundle the SDK into static/milepost/milepost.js (one minified IIFE) and fail when the
// gzipped bundle exceeds the size budget (DESIGN.md: the core bundle stays <= 12 KB gzipped).
// The visual builder is a second bundle, static/milepost/builder.js, that the core loads only
// for an author (README "The builder"); it has no budget, but shares the core's shortened
// property names (esbuild's mangleCache) because it draws in the core's own shadow root.
//
// esbuild bundles and minifies; terser then compresses the result further (about 420 B
// gzipped less, bench/README.md). Property names that never leave the bundle (internal
// interfaces, Floating UI's platform and options) are shortened with esbuild's mangleProps.
// Never list here a name that crosses the bundle's edge: protocol fields, event properties,
// localStorage records, DOM APIs or the public API (`identify`, `track`… and `userHash`).
import { build } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { minify } from "terser";

const BUDGET_BYTES = 12 * 1024;
const INTERNAL_PROPERTIES = [
  // The widget's own interfaces between modules.
  "remember", "ended", "celebrate", "dismissed", "announce", "attach", "layer", "report",
  "onEvent", "begin", "dismiss", "onMessage", "onReady", "sendEvents", "setSeq",
  "beacon", "retryAll", "onStorageError", "onOverflow", "resendAfterMs", "closeLabel", "onClose", "onKey",
  "completedAt", "actions", "primary", "modal", "meta", "html", "run", "index",
  "destroy", "root", "render", "show", "act", "enter", "leave", "next", "back", "bar",
  "tour", "walk", "tip", "held", "freed", "hide", "want", "done", "drop", "slot", "update",
  "take", "ack", "limit",
  // Floating UI's platform methods and options, used only inside the bundle.
  "getElementRects", "getClippingRect", "getDimensions", "getOffsetParent", "getDocumentElement",
  "getScale", "isElement", "isRTL", "detectOverflow", "contextElement", "middlewareData",
  "initialPlacement", "rootBoundary", "elementContext", "altBoundary", "boundary",
  "convertOffsetParentRelativeRectToViewportRelativeRect", "fallbackPlacements",
  "fallbackStrategy", "fallbackAxisSideDirection", "flipAlignment", "crossAxis", "mainAxis",
  "alignmentAxis", "limiter", "resetCount", "reference", "floating", "overflows",
  "alignmentOffset", "strategy", "platform", "rects", "middleware", "elements", "padding",
];  // prettier-ignore

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, "..", "..", "static", "milepost");
const mangleCache = {};

/** Bundle `entry` into static/milepost/`name` (esbuild, then terser); answers its bytes. */
async function bundle(entry, name) {
  const outfile = join(outdir, name);
  const bundled = await build({
    entryPoints: [join(here, "..", "src", entry)],
    outfile,
    bundle: true,
    minify: true,
    mangleProps: new RegExp(`^(${INTERNAL_PROPERTIES.join("|")})$`),
    mangleCache,
    format: "iife",
    target: ["chrome100", "firefox100", "safari15.4"],
    sourcemap: "external",
    legalComments: "none",
    logLevel: "warning",
    write: false,
  });
  Object.assign(mangleCache, bundled.mangleCache);
  const code = bundled.outputFiles.find((file) => file.path.endsWith(".js")).text;
  const map = bundled.outputFiles.find((file) => file.path.endsWith(".map")).text;
  const compressed = await minify(code, {
    ecma: 2020,
    toplevel: true,
    // No comma sequences: gzip finds more repeats in plain statements (bench/README.md, issue 16).
    compress: {
      passes: 2, unsafe: true, unsafe_arrows: true, unsafe_methods: true, pure_getters: true,
      sequences: false,
    },  // prettier-ignore
    format: { comments: false },
    sourceMap: { content: map, url: `${name}.map` },
  });
  // static/milepost/ is build output, not in git: a fresh clone has no such folder yet.
  mkdirSync(outdir, { recursive: true });
  writeFileSync(outfile, compressed.code);
  writeFileSync(`${outfile}.map`, compressed.map);
  return readFileSync(outfile);
}

const core = await bundle("index.ts", "milepost.js");
const gzipped = gzipSync(core, { level: 9 }).length;
const summary = `milepost.js: ${core.length} B, ${gzipped} B gzipped (budget ${BUDGET_BYTES} B)`;
if (gzipped > BUDGET_BYTES) {
  console.error(`${summary}: OVER BUDGET`);
  process.exit(1);
}
console.log(summary);
// Banners, guides, surveys, the resource center and in-app messages: one lazy bundle
// (widget/src/surfaces/contract.ts), loaded by the core with the first such content.
const surfaces = await bundle("surfaces/main.ts", "surfaces.js");
console.log(`surfaces.js: ${gzipSync(surfaces, { level: 9 }).length} B gzipped (loaded with the first banner, guide, survey, resource center or message)`);
const builder = await bundle("builder/index.ts", "builder.js");
console.log(`builder.js: ${builder.length} B, ${gzipSync(builder, { level: 9 }).length} B gzipped (loaded only for authors)`);

// Admin's step previews (static/milepost/preview.js): the same renderer (render/*) bundled
// from source into its own file, loaded only by admin pages, never by the core bundle.
const preview = join(here, "..", "..", "static", "milepost", "preview.js");
await build({
  entryPoints: [join(here, "..", "src", "preview.ts")],
  outfile: preview,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome100", "firefox100", "safari15.4"],
  legalComments: "none",
  logLevel: "warning",
});
console.log(`preview.js (admin only): ${gzipSync(readFileSync(preview), { level: 9 }).length} B gzipped`);
