// Pure measures for the benchmark: percentiles, a run's summary and the ratios the report prints.

/** The p-th percentile (0-100) of the values, nearest-rank; undefined for none. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export interface RunSummary {
  /** Concurrent conversations. */
  concurrency: number;
  /** Messages sent in the window. */
  sent: number;
  /** Of those, received by the reader. */
  received: number;
  /** Received messages per second, from the first send to the last receipt. */
  throughput: number;
  p50Ms: number | undefined;
  p95Ms: number | undefined;
  p99Ms: number | undefined;
  /** Sends that failed (not counted). */
  errors?: number;
}

/** One run: send-start and receive times (ms, same clock) per message. */
export function summarize(
  concurrency: number,
  sends: ReadonlyMap<string, number>,
  receipts: ReadonlyMap<string, number>,
): RunSummary {
  const latencies: number[] = [];
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const [id, sentAt] of sends) {
    first = Math.min(first, sentAt);
    const receivedAt = receipts.get(id);
    if (receivedAt === undefined) continue;
    latencies.push(receivedAt - sentAt);
    last = Math.max(last, receivedAt);
  }
  const seconds = latencies.length > 0 ? (last - first) / 1000 : 0;
  const round = (value: number | undefined) => (value === undefined ? undefined : Math.round(value));
  return {
    concurrency,
    sent: sends.size,
    received: latencies.length,
    throughput: seconds > 0 ? Math.round((latencies.length / seconds) * 10) / 10 : 0,
    p50Ms: round(percentile(latencies, 50)),
    p95Ms: round(percentile(latencies, 95)),
    p99Ms: round(percentile(latencies, 99)),
  };
}

/** a / b rounded to two decimals; undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || b === 0) return undefined;
  return Math.round((a / b) * 100) / 100;
}

/** Least-squares line through (x, y) points: y = intercept + slope * x. */
export function linearFit(points: readonly { x: number; y: number }[]): { slope: number; intercept: number } {
  const n = points.length;
  if (n < 2) throw new Error("a line needs at least two points");
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  if (sxx === 0) throw new Error("a line needs two different x values");
  const slope = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx;
  return { slope, intercept: my - slope * mx };
}

/**
 * The value at `x` on the least-squares line through the points. A slope lost in the noise (negative) extrapolates
 * as flat, and the result is never below the largest measured value.
 */
export function extrapolate(
  points: readonly { x: number; y: number }[],
  x: number,
): { value: number; slope: number } {
  const line = linearFit(points);
  const measuredMax = Math.max(...points.map((p) => p.y));
  return { value: Math.max(measuredMax, line.intercept + line.slope * x), slope: Math.max(0, line.slope) };
}
