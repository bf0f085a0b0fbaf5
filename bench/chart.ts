// The benchmark's chart as a self-contained SVG (no browser, no fonts to fetch): grouped bars per panel.

export interface BarGroup {
  /** Shown under the group, e.g. "8 conv." */
  label: string;
  /** One value per series, in the series' order; undefined draws no bar. */
  values: readonly (number | undefined)[];
}

export interface Panel {
  title: string;
  unit: string;
  series: readonly string[];
  groups: readonly BarGroup[];
}

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2"];
const escapeXml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
const fmt = (value: number) =>
  value >= 100 ? String(Math.round(value)) : String(Math.round(value * 10) / 10);

/** Panels side by side, each with its own scale, a legend and the value on each bar. Pure. */
export function barChartSvg(panels: readonly Panel[], caption: string): string {
  const panelWidth = 380;
  const panelHeight = 260;
  const top = 50;
  const width = panelWidth * panels.length + 20;
  const height = panelHeight + top + 70;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${escapeXml(caption)}</text>`,
  ];
  panels.forEach((panel, index) => {
    const x0 = 10 + index * panelWidth + 40;
    const plotWidth = panelWidth - 60;
    const plotHeight = panelHeight - 40;
    const y0 = top + plotHeight;
    const max = Math.max(1, ...panel.groups.flatMap((g) => g.values.filter((v) => v !== undefined)));
    parts.push(
      `<text x="${x0}" y="${top - 14}" font-size="12" font-weight="bold">${escapeXml(panel.title)} (${escapeXml(panel.unit)})</text>`,
      `<line x1="${x0}" y1="${top}" x2="${x0}" y2="${y0}" stroke="#333"/>`,
      `<line x1="${x0}" y1="${y0}" x2="${x0 + plotWidth}" y2="${y0}" stroke="#333"/>`,
      `<text x="${x0 - 4}" y="${top + 4}" text-anchor="end">${fmt(max)}</text>`,
      `<text x="${x0 - 4}" y="${y0}" text-anchor="end">0</text>`,
    );
    const groupWidth = plotWidth / Math.max(1, panel.groups.length);
    const barWidth = (groupWidth * 0.8) / Math.max(1, panel.series.length);
    panel.groups.forEach((group, g) => {
      const gx = x0 + g * groupWidth + groupWidth * 0.1;
      group.values.forEach((value, s) => {
        if (value === undefined) return;
        const h = (value / max) * plotHeight;
        const bx = gx + s * barWidth;
        parts.push(
          `<rect x="${bx.toFixed(1)}" y="${(y0 - h).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[s % COLORS.length]}"/>`,
          `<text x="${(bx + barWidth / 2 - 1).toFixed(1)}" y="${(y0 - h - 3).toFixed(1)}" text-anchor="middle" font-size="9">${fmt(value)}</text>`,
        );
      });
      parts.push(
        `<text x="${(gx + groupWidth * 0.4).toFixed(1)}" y="${y0 + 14}" text-anchor="middle">${escapeXml(group.label)}</text>`,
      );
    });
    panel.series.forEach((name, s) => {
      const ly = y0 + 30 + Math.floor(s / 2) * 14;
      const lx = x0 + (s % 2) * 170;
      parts.push(
        `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[s % COLORS.length]}"/>`,
        `<text x="${lx + 14}" y="${ly}">${escapeXml(name)}</text>`,
      );
    });
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
