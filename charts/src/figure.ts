// The figure a dashboard page hands to the browser (analytics/dashboards.py builds it): the
// numbers of one chart, already computed by the report. The browser only draws them.

export type FigureKind = "funnel" | "histogram" | "line" | "bars" | "stacked" | "heatmap";
export type ValueFormat = "count" | "percent" | "seconds";

export interface Series {
  name: string;
  values: (number | null)[];
}

export interface Mark {
  label: string;
  position: number; // on the x axis: a category's index, fractions between two
}

export interface Figure {
  id: string;
  kind: FigureKind;
  title: string;
  description: string; // text alternative of the chart, read by screen readers
  x_label: string;
  y_label: string;
  format: ValueFormat;
  categories: string[];
  series: Series[];
  rows: string[]; // heat maps: the y categories
  cells: [number, number, number | null][]; // heat maps: [x, y, value]; null is drawn blank
  labels: string[]; // funnels: text over each step's bar
  marks: Mark[];
  // Where a data point leads (the people in it): "x,y" of a heat map's cell, or a category's
  // index; a click or Enter on the point opens it.
  links: Record<string, string>;
}

/** The link of a drawn data point: series 0's data index, as the chart counts them. */
export function linkOf(figure: Figure, dataIndex: number): string | undefined {
  if (!figure.links) return undefined;
  if (figure.kind === "heatmap") {
    const cell = figure.cells.filter((c) => c[2] !== null)[dataIndex];
    return cell ? figure.links[`${cell[0]},${cell[1]}`] : undefined;
  }
  return figure.links[String(dataIndex)];
}

const UNITS: [number, string][] = [
  [86400, "d"],
  [3600, "h"],
  [60, "min"],
  [1, "s"],
];

export function formatValue(value: number | null | undefined, format: ValueFormat): string {
  if (value === null || value === undefined) return "–";
  if (format === "percent") return `${(value * 100).toFixed(1)} %`;
  if (format === "seconds") {
    if (value === 0) return "0";
    for (const [size, unit] of UNITS) {
      if (Math.abs(value) >= size) return `${+(value / size).toFixed(1)} ${unit}`;
    }
    return `${Math.round(value * 1000)} ms`;
  }
  return value.toLocaleString("en");
}
