// Bundle the SDK into static/milepost/milepost.js (minified, one IIFE) and fail when the
// gzipped bundle exceeds the size budget (DESIGN.md: the core bundle stays <= 12 KB gzipped).
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 12 * 1024;
const here = dirname(fileURLToPath(import.meta.url));
const outfile = join(here, "..", "..", "static", "milepost", "milepost.js");

await build({
  entryPoints: [join(here, "..", "src", "index.ts")],
  outfile,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome100", "firefox100", "safari15.4"],
  sourcemap: "external",
  legalComments: "none",
  logLevel: "warning",
});

const bundle = readFileSync(outfile);
const gzipped = gzipSync(bundle, { level: 9 }).length;
const summary = `milepost.js: ${bundle.length} B, ${gzipped} B gzipped (budget ${BUDGET_BYTES} B)`;
if (gzipped > BUDGET_BYTES) {
  console.error(`${summary}: OVER BUDGET`);
  process.exit(1);
}
console.log(summary);
