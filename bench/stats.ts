// Pure measures for the benchmark: percentiles, a run's summary and the ratios the report prints.
import { CPU_GROUPS, type CpuPerMessage } from "./proc.ts";

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
  /** Send start -> the server's 2xx (the send half of the latency), p50. */
  acceptedP50Ms?: number | undefined;
  /** Sends that failed (not counted). */
  errors?: number;
  /** CPU milliseconds each process group spent per message received during the run (cpu.ts). */
  cpuMsPerMessage?: CpuPerMessage;
  /** Worker mode: CPU milliseconds per message of each named process (`main`, each worker, Redis, the proxy). */
  cpuMsPerProcess?: Record<string, number>;
}

/** One run: send-start and receive times (ms, same clock) per message. */
export function summarize(
  concurrency: number,
  sends: ReadonlyMap<string, number>,
  receipts: ReadonlyMap<string, number>,
  accepted: ReadonlyMap<string, number> = new Map(),
): RunSummary {
  const latencies: number[] = [];
  const acceptances: number[] = [];
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const [id, sentAt] of sends) {
    first = Math.min(first, sentAt);
    const receivedAt = receipts.get(id);
    if (receivedAt === undefined) continue;
    latencies.push(receivedAt - sentAt);
    const acceptedAt = accepted.get(id);
    if (acceptedAt !== undefined) acceptances.push(acceptedAt - sentAt);
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
    ...(acceptances.length > 0 ? { acceptedP50Ms: round(percentile(acceptances, 50)) } : {}),
  };
}

/** The median of the values (the mean of the middle two for an even count); undefined for none. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Repeats of the same runs (one list per repeat, one run per concurrency) reduced to one run per concurrency whose
 * every measure is the median over the repeats, so one noisy window does not decide a ratio.
 */
export function medianRuns(repeats: readonly (readonly RunSummary[])[]): RunSummary[] {
  const byConcurrency = new Map<number, RunSummary[]>();
  for (const runs of repeats)
    for (const run of runs)
      byConcurrency.set(run.concurrency, [...(byConcurrency.get(run.concurrency) ?? []), run]);
  const of = (runs: RunSummary[], pick: (run: RunSummary) => number | undefined) => {
    const value = median(runs.map(pick).filter((v): v is number => v !== undefined));
    return value === undefined ? undefined : Math.round(value * 10) / 10;
  };
  return [...byConcurrency].map(([concurrency, runs]) => ({
    concurrency,
    sent: runs.reduce((sum, run) => sum + run.sent, 0),
    received: runs.reduce((sum, run) => sum + run.received, 0),
    throughput: of(runs, (run) => run.throughput) ?? 0,
    p50Ms: of(runs, (run) => run.p50Ms),
    p95Ms: of(runs, (run) => run.p95Ms),
    p99Ms: of(runs, (run) => run.p99Ms),
    acceptedP50Ms: of(runs, (run) => run.acceptedP50Ms),
    errors: runs.reduce((sum, run) => sum + (run.errors ?? 0), 0),
    ...(runs.some((run) => run.cpuMsPerMessage)
      ? {
          cpuMsPerMessage: Object.fromEntries(
            CPU_GROUPS.map((group) => [group, of(runs, (run) => run.cpuMsPerMessage?.[group]) ?? 0]),
          ) as CpuPerMessage,
        }
      : {}),
    ...(runs.some((run) => run.cpuMsPerProcess)
      ? {
          cpuMsPerProcess: Object.fromEntries(
            [...new Set(runs.flatMap((run) => Object.keys(run.cpuMsPerProcess ?? {})))].map((name) => [
              name,
              of(runs, (run) => run.cpuMsPerProcess?.[name]) ?? 0,
            ]),
          ),
        }
      : {}),
  }));
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
