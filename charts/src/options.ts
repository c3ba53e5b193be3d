// One ECharts option per kind of figure. Colours come from the admin's own CSS variables, so
// a chart follows admin's light and dark themes.
import type { EChartsCoreOption } from "echarts/core";

import { type Figure, formatValue } from "./figure.ts";

export interface Palette {
  text: string;
  muted: string;
  line: string;
  background: string;
  onSeries: string; // text drawn inside the first series' bars
  font: string;
  width: number; // of the chart's container, in CSS pixels
  series: string[];
  heat: [string, string];
}

function cssVariable(name: string, fallback: string): string {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

export function adminPalette(width: number): Palette {
  const dark = isDark();
  return {
    width,
    text: cssVariable("--body-fg", dark ? "#eeeeee" : "#333333"),
    muted: cssVariable("--body-quiet-color", dark ? "#d0d0d0" : "#666666"),
    line: cssVariable("--hairline-color", dark ? "#272727" : "#e8e8e8"),
    background: cssVariable("--body-bg", dark ? "#121212" : "#ffffff"),
    onSeries: dark ? "#101010" : "#ffffff",
    font: getComputedStyle(document.body).fontFamily || "sans-serif",
    // Okabe-Ito inspired, distinguishable by people with colour-vision deficiencies; the first
    // is a lighter blue on dark backgrounds so that bars keep their contrast.
    series: dark
      ? ["#56b4e9", "#e69f00", "#009e73", "#f0e442", "#cc79a7", "#d55e00", "#999999"]
      : ["#1f77b4", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#7f7f7f"],
    heat: dark ? ["#1b2a38", "#56b4e9"] : ["#eef5fb", "#1f5f8b"],
  };
}

export function isDark(): boolean {
  const theme = document.documentElement.dataset.theme;
  if (theme === "dark") return true;
  if (theme === "light") return false;
  return window.matchMedia("(prefers-color-scheme: dark)").matches;
}

function axes(figure: Figure, palette: Palette, horizontal = false): EChartsCoreOption {
  // Labels get the room of their category; when that is too little to read, they lean.
  const room = (palette.width - 100) / Math.max(1, figure.categories.length);
  const lean = room < 84;
  const category = {
    type: "category",
    data: figure.categories,
    name: figure.x_label,
    nameLocation: "middle",
    nameGap: horizontal ? 110 : lean ? 58 : 44,
    axisLabel: {
      color: palette.text,
      // Every label while they fit (steps, buckets); on long date axes, as many as fit.
      interval: figure.categories.length <= 12 ? 0 : "auto",
      rotate: lean ? 35 : 0,
      width: lean ? 120 : Math.min(130, room - 8),
      overflow: lean ? "truncate" : "break",
      lineHeight: 14,
    },
    axisLine: { lineStyle: { color: palette.muted } },
    nameTextStyle: { color: palette.muted },
  };
  const value = {
    type: "value",
    name: figure.y_label,
    nameTextStyle: { color: palette.muted },
    axisLabel: {
      color: palette.text,
      formatter: (v: number) => formatValue(v, figure.format),
    },
    splitLine: { lineStyle: { color: palette.line } },
    ...(figure.format === "percent" ? { max: 1 } : {}),
  };
  return horizontal ? { yAxis: { ...category, inverse: true }, xAxis: value } : { xAxis: category, yAxis: value };
}

function base(figure: Figure, palette: Palette): EChartsCoreOption {
  return {
    animation: false,
    backgroundColor: "transparent",
    color: palette.series,
    textStyle: { color: palette.text, fontFamily: palette.font },
    aria: { enabled: true, label: { description: figure.description } },
    grid: { left: 16, right: 24, top: 48 + 15 * figure.marks.length, bottom: 56, containLabel: true },
    tooltip: {
      trigger: "axis",
      axisPointer: { type: "shadow" },
      valueFormatter: (v: number | null) => formatValue(v, figure.format),
      backgroundColor: palette.background,
      borderColor: palette.muted,
      textStyle: { color: palette.text },
    },
    legend: {
      show: figure.series.length > 1,
      type: "scroll",
      top: 0,
      textStyle: { color: palette.text },
    },
  };
}

function funnel(figure: Figure, palette: Palette): EChartsCoreOption {
  // Two stacked bars per step: the people converted, and above them the people who dropped
  // off at this step (of those who reached the previous one).
  const [converted, dropped] = figure.series;
  return {
    ...base(figure, palette),
    ...axes(figure, palette),
    // Room above the tallest bar for its three-line label.
    yAxis: { ...(axes(figure, palette).yAxis as object), max: (extent: { max: number }) => Math.ceil(extent.max * 1.3) },
    series: [
      {
        type: "bar",
        name: converted.name,
        stack: "funnel",
        data: converted.values,
        barMaxWidth: 72,
        label: {
          show: true,
          position: "insideTop",
          color: palette.onSeries,
          formatter: (p: { dataIndex: number }) => formatValue(converted.values[p.dataIndex], figure.format),
        },
      },
      {
        type: "bar",
        name: dropped.name,
        stack: "funnel",
        data: dropped.values,
        itemStyle: { color: palette.line, borderColor: palette.muted, borderType: "dashed" },
        label: {
          show: true,
          position: "top",
          color: palette.text,
          align: "center",
          lineHeight: 15,
          formatter: (p: { dataIndex: number }) => figure.labels[p.dataIndex] ?? "",
        },
      },
    ],
  };
}

// Vertical lines on x categories (a histogram's percentiles, a sweep's best threshold).
function marks(figure: Figure, palette: Palette): object {
  if (!figure.marks.length) return {};
  return {
    markLine: {
      symbol: "none",
      silent: true,
      lineStyle: { color: palette.text, type: "dashed" },
      label: { color: palette.text, formatter: "{b}", position: "end", rotate: 0 },
      // Labels of marks close together are staggered upwards.
      data: figure.marks.map((mark, index) => ({
        name: mark.label,
        xAxis: mark.position,
        label: { offset: [0, -15 * index] },
      })),
    },
  };
}

function histogram(figure: Figure, palette: Palette): EChartsCoreOption {
  return {
    ...base(figure, palette),
    ...axes(figure, palette),
    series: figure.series.map((series, index) => ({
      type: "bar",
      name: series.name,
      data: series.values,
      barCategoryGap: "8%",
      ...(index === 0 ? marks(figure, palette) : {}),
    })),
  };
}

function lines(figure: Figure, palette: Palette): EChartsCoreOption {
  return {
    ...base(figure, palette),
    ...axes(figure, palette),
    tooltip: { ...(base(figure, palette).tooltip as object), axisPointer: { type: "line" } },
    series: figure.series.map((series, index) => ({
      type: "line",
      name: series.name,
      data: series.values,
      connectNulls: false,
      symbolSize: 7,
      ...(index === 0 ? marks(figure, palette) : {}),
    })),
  };
}

function bars(figure: Figure, palette: Palette, stacked: boolean): EChartsCoreOption {
  return {
    ...base(figure, palette),
    ...axes(figure, palette),
    series: figure.series.map((series) => ({
      type: "bar",
      name: series.name,
      data: series.values,
      barMaxWidth: 48,
      ...(stacked ? { stack: "total" } : {}),
    })),
  };
}

function heatmap(figure: Figure, palette: Palette): EChartsCoreOption {
  const values = figure.cells.map((cell) => cell[2]).filter((v): v is number => v !== null);
  const axis = (data: string[], name: string, inverse: boolean) => ({
    type: "category",
    data,
    name,
    inverse,
    nameLocation: "middle",
    nameGap: 30,
    nameTextStyle: { color: palette.muted },
    axisLabel: { color: palette.text, interval: 0 },
    axisLine: { lineStyle: { color: palette.muted } },
    splitArea: { show: false },
  });
  return {
    ...base(figure, palette),
    grid: { left: 16, right: 24, top: 16, bottom: 72, containLabel: true },
    tooltip: {
      trigger: "item",
      backgroundColor: palette.background,
      borderColor: palette.muted,
      textStyle: { color: palette.text },
      formatter: (p: { value: [number, number, number | null] }) =>
        `${figure.rows[p.value[1]]} · ${figure.categories[p.value[0]]}: ${formatValue(p.value[2], figure.format)}`,
    },
    xAxis: axis(figure.categories, figure.x_label, false),
    // The rows name themselves (cohorts, features): no axis name to crowd them.
    yAxis: axis(figure.rows, "", true),
    visualMap: {
      min: 0,
      max: figure.format === "percent" ? 1 : Math.max(1, ...values),
      calculable: false,
      orient: "horizontal",
      left: "center",
      bottom: 0,
      itemHeight: 120,
      text: [formatValue(figure.format === "percent" ? 1 : Math.max(1, ...values), figure.format), "0"],
      inRange: { color: palette.heat },
      textStyle: { color: palette.text },
      formatter: (v: number) => formatValue(v, figure.format),
    },
    series: [
      {
        type: "heatmap",
        name: figure.title,
        // A cell without a value (a period that has not begun) is not drawn at all: blank,
        // never a 0.
        data: figure.cells.filter((cell) => cell[2] !== null),
        label: {
          show: true,
          formatter: (p: { value: [number, number, number] }) => formatValue(p.value[2], figure.format),
        },
        itemStyle: { borderColor: palette.background, borderWidth: 2 },
        emphasis: { itemStyle: { borderColor: palette.text } },
      },
    ],
  };
}

export function chartOption(figure: Figure, palette: Palette): EChartsCoreOption {
  switch (figure.kind) {
    case "funnel":
      return funnel(figure, palette);
    case "histogram":
      return histogram(figure, palette);
    case "line":
      return lines(figure, palette);
    case "bars":
      return bars(figure, palette, false);
    case "stacked":
      return bars(figure, palette, true);
    case "heatmap":
      return heatmap(figure, palette);
  }
}
