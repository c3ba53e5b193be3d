// Draws every chart of an admin dashboard page and wires its inputs. A chart is a
// <div data-figure="ID"> next to <script type="application/json" id="figure-ID"> (Django's
// json_script); the table and CSV link beside it are plain HTML.
import { BarChart, HeatmapChart, LineChart } from "echarts/charts";
import {
  AriaComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
  VisualMapComponent,
} from "echarts/components";
import * as echarts from "echarts/core";
import { SVGRenderer } from "echarts/renderers";

import { type Figure, linkOf } from "./figure.ts";
import { wireForms } from "./forms.ts";
import { adminPalette, chartOption } from "./options.ts";

echarts.use([
  BarChart,
  HeatmapChart,
  LineChart,
  AriaComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
  VisualMapComponent,
  SVGRenderer,
]);

interface Drawn {
  chart: echarts.ECharts;
  figure: Figure;
}

const drawn = new Map<string, Drawn>();

function draw(container: HTMLElement): void {
  const id = container.dataset.figure ?? "";
  const source = document.getElementById(`figure-${id}`);
  if (!source?.textContent) return;
  const figure = JSON.parse(source.textContent) as Figure;
  const chart = echarts.init(container, undefined, { renderer: "svg" });
  chart.setOption(chartOption(figure, adminPalette(container.clientWidth)));
  container.setAttribute("role", "img");
  container.setAttribute("aria-label", `${figure.title}. ${figure.description}`);
  container.tabIndex = 0;
  drawn.set(id, { chart, figure });
  wireKeyboard(container, chart, figure);
  chart.on("click", (params) => {
    const link = linkOf(figure, params.dataIndex);
    if (link) window.location.assign(link);
  });
  if (figure.links && Object.keys(figure.links).length) container.classList.add("chart-linked");
}

// Arrow keys walk the chart's data points and show each one's tooltip; Escape hides it.
function wireKeyboard(container: HTMLElement, chart: echarts.ECharts, figure: Figure): void {
  const count = figure.kind === "heatmap" ? figure.cells.filter((c) => c[2] !== null).length : figure.categories.length;
  let index = -1;
  container.addEventListener("keydown", (event) => {
    if (!count) return;
    if (event.key === "ArrowRight" || event.key === "ArrowDown") index = (index + 1) % count;
    else if (event.key === "ArrowLeft" || event.key === "ArrowUp") index = (index - 1 + count) % count;
    else if (event.key === "Home") index = 0;
    else if (event.key === "End") index = count - 1;
    else if (event.key === "Enter" && index >= 0) {
      const link = linkOf(figure, index);
      if (link) window.location.assign(link);
      return;
    } else if (event.key === "Escape") {
      chart.dispatchAction({ type: "hideTip" });
      return;
    } else return;
    event.preventDefault();
    chart.dispatchAction({ type: "showTip", seriesIndex: 0, dataIndex: index });
  });
  container.addEventListener("blur", () => chart.dispatchAction({ type: "hideTip" }));
}

function redraw(): void {
  for (const { chart, figure } of drawn.values()) {
    chart.setOption(chartOption(figure, adminPalette(chart.getWidth())), true);
  }
}

/** Data points drawn per series of a chart, as the browser tests count them. */
function drawnItems(id: string): number[] {
  const entry = drawn.get(id);
  if (!entry) return [];
  const option = entry.chart.getOption() as { series?: unknown[] };
  const model = (entry.chart as unknown as { getModel(): { getSeriesByIndex(i: number): { getData(): { count(): number; getItemGraphicEl(i: number): unknown } } } }).getModel();
  return (option.series ?? []).map((_, seriesIndex) => {
    const data = model.getSeriesByIndex(seriesIndex).getData();
    let shown = 0;
    for (let i = 0; i < data.count(); i++) if (data.getItemGraphicEl(i)) shown++;
    return shown;
  });
}

declare global {
  interface Window {
    milepostCharts: { drawnItems(id: string): number[]; ids(): string[] };
  }
}

window.milepostCharts = { drawnItems, ids: () => [...drawn.keys()] };

function start(): void {
  for (const container of document.querySelectorAll<HTMLElement>("[data-figure]")) draw(container);
  wireForms(document);
  // Admin's theme toggle sets <html data-theme>; "auto" follows the system's preference.
  new MutationObserver(redraw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
  window.addEventListener("resize", () => {
    for (const { chart } of drawn.values()) chart.resize();
    redraw();
  });
  document.body.dataset.chartsReady = "true";
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
