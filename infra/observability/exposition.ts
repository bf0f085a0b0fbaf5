// Reads a Prometheus text exposition (what a scrape returns) into samples, for the tests that hold the rules against
// real processes' metrics. Not a full parser: one sample per line, labels kept as their raw `{...}` text.

export interface Sample {
  readonly name: string;
  /** The raw label text with its braces, or "" for none. */
  readonly labels: string;
  readonly value: number;
}

export function parseExposition(text: string): Sample[] {
  return text
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!match?.[1] || match[3] === undefined) throw new Error(`unparseable metrics line: ${line}`);
      return { name: match[1], labels: match[2] ?? "", value: Number(match[3]) };
    });
}

/** A promtool input series: the sample's labels plus `extra` (the labels a scraper adds), with `values`. */
export function asSeries(sample: Sample, extra: Record<string, string>, values: string) {
  const labels = [
    sample.labels.slice(1, -1),
    ...Object.entries(extra).map(([key, value]) => `${key}=${JSON.stringify(value)}`),
  ].filter(Boolean);
  return { series: `${sample.name}{${labels.join(",")}}`, values };
}
