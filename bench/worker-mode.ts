// Monolith vs worker mode (phases/workers.ts), pure: the ratios at each concurrency, the CPU per message by kind of
// process, and the projection of what the measured costs allow on a node with more cores.
import { type RunSummary, ratio } from "./stats.ts";

/** Worker mode's processes that are not Synapse (runs.ts names them so in the per-process breakdown). */
export const HELPER_PROCESSES = ["redis", "haproxy"] as const;
/** The main Synapse process's name, in both modes. */
export const MAIN_PROCESS = "main";

/** CPU milliseconds per message, by kind of process. */
export interface ProcessCost {
  /** The main Synapse process (the monolith: the only one). */
  main: number;
  /** Every Synapse worker together. */
  workers: number;
  /** Redis and HAProxy. */
  redisAndProxy: number;
  /** PostgreSQL: Synapse's backends and its own processes. */
  postgres: number;
  /** The bridge service and its database backends. */
  bridge: number;
  /** The homeserver side: main + workers + Redis and proxy + PostgreSQL. */
  homeserver: number;
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const isWorker = (name: string) =>
  name !== MAIN_PROCESS && !(HELPER_PROCESSES as readonly string[]).includes(name);

/** A run's CPU per message by kind of process; undefined without CPU figures. */
export function processCost(run: RunSummary): ProcessCost | undefined {
  const cpu = run.cpuMsPerMessage;
  if (!cpu) return undefined;
  const named = Object.entries(run.cpuMsPerProcess ?? {});
  const sum = (pick: (name: string) => boolean) =>
    named.filter(([name]) => pick(name)).reduce((total, [, ms]) => total + ms, 0);
  const postgres = cpu.synapseDb + cpu.postgres;
  return {
    main: round2(run.cpuMsPerProcess ? sum((name) => name === MAIN_PROCESS) : cpu.synapse),
    workers: round2(sum(isWorker)),
    redisAndProxy: round2(sum((name) => !isWorker(name) && name !== MAIN_PROCESS)),
    postgres: round2(postgres),
    bridge: round2(cpu.bridge + cpu.bridgeDb),
    // cpu.synapse counts every Synapse process and, in worker mode, Redis and the proxy (proc.ts's helpers).
    homeserver: round2(cpu.synapse + postgres),
  };
}

/** Worker mode against the monolith at one concurrency (ratios: worker mode / monolith). */
export interface ModeComparison {
  concurrency: number;
  throughputRatio: number | undefined;
  p50Ratio: number | undefined;
  p95Ratio: number | undefined;
  /** Homeserver-side CPU per message, worker mode / monolith. */
  homeserverCpuRatio: number | undefined;
  monolith: ProcessCost | undefined;
  workers: ProcessCost | undefined;
}

/** The comparison at each concurrency both modes ran (medians over the repeats). */
export function compareModes(
  monolith: readonly RunSummary[],
  workers: readonly RunSummary[],
): ModeComparison[] {
  return workers.flatMap((w) => {
    const m = monolith.find((run) => run.concurrency === w.concurrency);
    if (!m) return [];
    const monolithCost = processCost(m);
    const workersCost = processCost(w);
    return [
      {
        concurrency: w.concurrency,
        throughputRatio: ratio(w.throughput, m.throughput),
        p50Ratio: ratio(w.p50Ms, m.p50Ms),
        p95Ratio: ratio(w.p95Ms, m.p95Ms),
        homeserverCpuRatio: ratio(workersCost?.homeserver, monolithCost?.homeserver),
        monolith: monolithCost,
        workers: workersCost,
      },
    ];
  });
}

/** What one process (or the whole node) allows, in messages per second. */
export interface Limit {
  name: string;
  messagesPerSecond: number;
}

/** The projected ceiling of a homeserver on `cores` cores for the homeserver side. */
export interface Projection {
  cores: number;
  /** Each single-threaded process's limit (one core at most), then the node's (every core busy). */
  limits: Limit[];
  /** The lowest limit, and whose. */
  ceiling: Limit;
}

/**
 * A projection, not a measurement: the homeserver side's message rate when its busiest part saturates, from the CPU
 * per message measured per process. Each Synapse process and Redis run Python or one event loop, so each can use
 * one core at most: its limit is 1000 / (its ms per message). PostgreSQL and HAProxy use several cores, so they
 * only count toward the node's limit: cores × 1000 / (the whole homeserver side's ms per message). It assumes the
 * costs per message stay what they were at the measured rate (a fixed cost spread over more messages only falls)
 * and ignores lock and I/O waits, so it is an upper bound.
 */
export function projectCeiling(run: RunSummary, cores: number): Projection | undefined {
  const cost = processCost(run);
  if (!cost) return undefined;
  const singleThreaded = Object.entries(run.cpuMsPerProcess ?? { [MAIN_PROCESS]: cost.main }).filter(
    ([name]) => name !== "haproxy",
  );
  const limitOf = (name: string, coreMs: number, ms: number) => ({
    name,
    messagesPerSecond: ms > 0 ? Math.round(coreMs / ms) : Number.POSITIVE_INFINITY,
  });
  const limits = [
    ...singleThreaded.map(([name, ms]) => limitOf(name, 1000, ms)),
    limitOf(`${cores} cores`, cores * 1000, cost.homeserver),
  ];
  const ceiling = limits.reduce((low, limit) =>
    limit.messagesPerSecond < low.messagesPerSecond ? limit : low,
  );
  return { cores, limits, ceiling };
}
