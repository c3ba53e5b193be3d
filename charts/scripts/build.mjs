// Bundle the admin dashboards' charts (Apache ECharts, only the chart kinds and components
// they use) into static/analytics/charts.js. Separate from the SDK: the widget's 12 KB budget
// never carries a chart, and admin pages never load the SDK.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const outfile = join(here, "..", "..", "static", "analytics", "charts.js");

await build({
  entryPoints: [join(here, "..", "src", "index.ts")],
  outfile,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome100", "firefox100", "safari15.4"],
  sourcemap: "external",
  legalComments: "linked",
  logLevel: "warning",
});
const bundle = readFileSync(outfile);
const gzipped = gzipSync(bundle, { level: 9 }).length;
console.log(`charts.js: ${bundle.length} B, ${gzipped} B gzipped`);
