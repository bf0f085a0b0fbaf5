// The benchmark's chart as a self-contained SVG (no browser, no fonts to fetch): a grid of panels, each grouped bars
// (with the spread of the repeats as a whisker) or lines, on a y axis with round ticks. Pure.

export interface BarGroup {
  /** Shown under the group, e.g. "8 conv." */
  label: string;
  /** One value per series, in the series' order; undefined draws no bar. */
  values: readonly (number | undefined)[];
  /** Per series, the lowest and highest of the repeats behind the value: drawn as a whisker. */
  spreads?: readonly (readonly [number, number] | undefined)[];
}

export interface BarPanel {
  kind?: "bars";
  title: string;
  unit: string;
  series: readonly string[];
  groups: readonly BarGroup[];
}

export interface LinePoint {
  x: number;
  y: number;
  /** False: extrapolated (a hollow marker on a dashed segment). */
  measured: boolean;
}

export interface LinePanel {
  kind: "line";
  title: string;
  unit: string;
  /** The x axis' name, e.g. "conversations". */
  xUnit: string;
  lines: readonly { name: string; points: readonly LinePoint[] }[];
}

export type Panel = BarPanel | LinePanel;

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];
const escapeXml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
const fmt = (value: number) =>
  value >= 100 ? String(Math.round(value)) : String(Math.round(value * 10) / 10);

/**
 * Round ticks from 0 to at least `max`: a step of 1, 2 or 5 times a power of ten, about `target` of them. The last
 * tick is the axis' top.
 */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / target;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 5, 10].find((m) => m * power >= rough) ?? 10) * power;
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    const tick = Math.round(i * step * 1e9) / 1e9;
    ticks.push(tick);
    if (tick >= max) return ticks;
  }
}

const PANEL_WIDTH = 400;
const PANEL_HEIGHT = 340;
const PLOT_HEIGHT = 190;

/** One panel's SVG, its top-left corner at (x, y). */
function panelSvg(panel: Panel, x: number, y: number): string[] {
  const x0 = x + 50;
  const top = y + 30;
  const plotWidth = PANEL_WIDTH - 70;
  const y0 = top + PLOT_HEIGHT;
  const values =
    panel.kind === "line"
      ? panel.lines.flatMap((l) => l.points.map((p) => p.y))
      : panel.groups.flatMap((g) => [
          ...g.values.filter((v): v is number => v !== undefined),
          ...(g.spreads ?? []).flatMap((s) => (s ? [s[1]] : [])),
        ]);
  const ticks = niceTicks(Math.max(0, ...values));
  const axisMax = ticks.at(-1) as number;
  const yOf = (v: number) => y0 - (v / axisMax) * PLOT_HEIGHT;
  const parts = [
    `<text x="${x0}" y="${top - 14}" font-size="12" font-weight="bold">${escapeXml(panel.title)} (${escapeXml(panel.unit)})</text>`,
    ...ticks.map(
      (tick) =>
        `<line x1="${x0}" y1="${yOf(tick).toFixed(1)}" x2="${x0 + plotWidth}" y2="${yOf(tick).toFixed(1)}" stroke="#e0e0e0"/>` +
        `<text x="${x0 - 4}" y="${(yOf(tick) + 4).toFixed(1)}" text-anchor="end">${fmt(tick)}</text>`,
    ),
    `<line x1="${x0}" y1="${top}" x2="${x0}" y2="${y0}" stroke="#333"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0 + plotWidth}" y2="${y0}" stroke="#333"/>`,
  ];
  const names = panel.kind === "line" ? panel.lines.map((l) => l.name) : panel.series;
  if (panel.kind === "line") {
    // Log x when the counts span decades (100, 1,000, 10,000), so each point gets room.
    const xs = [...new Set(panel.lines.flatMap((l) => l.points.map((p) => p.x)))].sort((a, b) => a - b);
    const log = xs.length > 1 && (xs.at(-1) as number) / (xs[0] as number) >= 20 && (xs[0] as number) > 0;
    const scale = (v: number) => (log ? Math.log10(v) : v);
    const low = scale(xs[0] ?? 0);
    const span = scale(xs.at(-1) ?? 1) - low || 1;
    const xOf = (v: number) => x0 + 20 + ((scale(v) - low) / span) * (plotWidth - 40);
    for (const v of xs)
      parts.push(`<text x="${xOf(v).toFixed(1)}" y="${y0 + 14}" text-anchor="middle">${fmt(v)}</text>`);
    parts.push(
      `<text x="${x0 + plotWidth / 2}" y="${y0 + 28}" text-anchor="middle">${escapeXml(panel.xUnit)}${log ? " (log scale)" : ""}</text>`,
    );
    panel.lines.forEach((line, s) => {
      const color = COLORS[s % COLORS.length];
      line.points.forEach((p, i) => {
        const previous = line.points[i - 1];
        if (previous)
          parts.push(
            `<line x1="${xOf(previous.x).toFixed(1)}" y1="${yOf(previous.y).toFixed(1)}" x2="${xOf(p.x).toFixed(1)}" y2="${yOf(p.y).toFixed(1)}" stroke="${color}" stroke-width="2"${p.measured && previous.measured ? "" : ' stroke-dasharray="4 3"'}/>`,
          );
        parts.push(
          `<circle cx="${xOf(p.x).toFixed(1)}" cy="${yOf(p.y).toFixed(1)}" r="4" fill="${p.measured ? color : "#ffffff"}" stroke="${color}" stroke-width="2"/>`,
          `<text x="${xOf(p.x).toFixed(1)}" y="${(yOf(p.y) - 8).toFixed(1)}" text-anchor="middle" font-size="9">${fmt(p.y)}${p.measured ? "" : " (extrapolated)"}</text>`,
        );
      });
    });
  } else {
    const groupWidth = plotWidth / Math.max(1, panel.groups.length);
    const barWidth = (groupWidth * 0.8) / Math.max(1, panel.series.length);
    panel.groups.forEach((group, g) => {
      const gx = x0 + g * groupWidth + groupWidth * 0.1;
      group.values.forEach((value, s) => {
        if (value === undefined) return;
        const bx = gx + s * barWidth;
        const middle = (bx + barWidth / 2 - 1).toFixed(1);
        parts.push(
          `<rect x="${bx.toFixed(1)}" y="${yOf(value).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(y0 - yOf(value)).toFixed(1)}" fill="${COLORS[s % COLORS.length]}"/>`,
        );
        const spread = group.spreads?.[s];
        if (spread)
          parts.push(
            `<line x1="${middle}" y1="${yOf(spread[0]).toFixed(1)}" x2="${middle}" y2="${yOf(spread[1]).toFixed(1)}" stroke="#222" stroke-width="1.5"/>`,
          );
        parts.push(
          `<text x="${middle}" y="${(yOf(Math.max(value, spread?.[1] ?? 0)) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${fmt(value)}</text>`,
        );
      });
      parts.push(
        `<text x="${(gx + groupWidth * 0.4).toFixed(1)}" y="${y0 + 14}" text-anchor="middle">${escapeXml(group.label)}</text>`,
      );
    });
  }
  // Two legend columns when the names fit in half the width, else one.
  const columns = Math.max(...names.map((n) => n.length)) > 26 ? 1 : 2;
  names.forEach((name, s) => {
    const ly = y0 + 44 + Math.floor(s / columns) * 14;
    const lx = x0 + (s % columns) * 175;
    parts.push(
      `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[s % COLORS.length]}"/>`,
      `<text x="${lx + 14}" y="${ly}">${escapeXml(name)}</text>`,
    );
  });
  return parts;
}

/** Panels in a grid of `columns`, each with its own y axis, a legend and the value on each bar or point. */
export function chartSvg(panels: readonly Panel[], caption: string, columns = 3): string {
  const cols = Math.max(1, Math.min(columns, panels.length));
  const rows = Math.ceil(panels.length / cols);
  const width = PANEL_WIDTH * cols + 20;
  const height = 30 + PANEL_HEIGHT * rows + 20;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${escapeXml(caption)}</text>`,
  ];
  panels.forEach((panel, i) => {
    parts.push(...panelSvg(panel, 10 + (i % cols) * PANEL_WIDTH, 40 + Math.floor(i / cols) * PANEL_HEIGHT));
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
