// The results' shape, the printed table (Markdown, so docs/performance.md can take it as is) and the chart. Pure.
import { type BarGroup, chartSvg, type Panel } from "./chart.ts";
import { sideCost } from "./proc.ts";
import { type RunSummary, ratio } from "./stats.ts";
import { compareModes, type ProcessCost, projectCeiling } from "./worker-mode.ts";

export interface ScalePoint {
  conversations: number;
  /** Fresh database: process start to /readyz 200 (the first start takes the homeserver's position, no rooms). */
  firstStartSeconds: number;
  /** RSS after the first start, before any message. */
  idleRssMb: number;
  /** RSS after one message in every conversation reached the WebSocket (every room known to the bridge). */
  activeRssMb: number;
  /** Restart after one more message in every conversation was sent while the bridge was stopped: to ready... */
  restartSeconds: number;
  /** ...and to all of those messages on the WebSocket. */
  restartCatchUpSeconds: number;
  restartRssMb: number;
  /** The larger peak RSS (VmHWM) of the two processes: what a memory limit must allow. */
  peakMb: number;
  /** False: extrapolated from the measured points (see slope). */
  measured: boolean;
  slope?: { peakKbPerConversation: number; catchUpMsPerConversation: number };
}

export interface CatchUp {
  messages: number;
  conversations: number;
  sendSeconds: number;
  /** Synapse's own speed: a /sync from the token before the sends, then each room's gap read with /messages. */
  rawReadSeconds: number;
  /** Bridge process start to /readyz 200. */
  bridgeReadySeconds: number;
  /** Bridge process start to the last of the messages on the WebSocket. */
  bridgeAllOnWebSocketSeconds: number;
}

/** One idle window of the subscribers phase: what the bridge did while nobody sent anything. */
export interface IdleWindow {
  /** WebSockets open during the window. */
  sockets: number;
  /** The service's RSS at the start of the window (settled after the sockets opened). */
  rssMb: number;
  seconds: number;
  /** Committed + rolled-back transactions in the bridge's database (pg_stat_database). */
  transactions: number;
  /** The service's reads of the event log (nova_bridge_event_log_reads_total). */
  logReads: number;
  /** The service process's CPU time (utime + stime). */
  cpuMs: number;
}

/** What the subscribers phase measured, before the derived figures. */
export interface IdleSubscribersMeasured {
  subscribers: number;
  /** Distinct Nova users behind them (a user's sockets share its token). */
  users: number;
  /** Opening every socket (50 at a time). */
  openSeconds: number;
  /** The service's peak RSS (VmHWM) after the fan-out. */
  peakMb: number;
  /**
   * Idle windows with no socket, a tenth of them and all of them: what grows from the second to the third is per
   * socket; what the second adds to the first is per process (the feed's slow poll runs while anyone listens).
   */
  windows: IdleWindow[];
  /** Per message: from the send request to the first and the last socket receiving it. */
  fanOut: { sendToFirstMs: number; sendToLastMs: number; firstToLastMs: number }[];
  fanOutMedianMs: number;
}

export interface IdleSubscribers extends IdleSubscribersMeasured {
  /** RSS with every socket open − with none. */
  rssDeltaMb: number;
  /** (rate with all the sockets − rate with a tenth) / the sockets between. */
  transactionsPerSocketPerSecond: number;
  logReadsPerSocketPerSecond: number;
  /** Issue 11: under 50 MB for the sockets... */
  rssMet: boolean;
  /** ...and no query per idle socket: less than one per socket every 1,000 s. */
  queriesMet: boolean;
}

export const IDLE_TARGETS = { maxRssDeltaMb: 50, maxQueriesPerSocketPerSecond: 0.001 } as const;

/** The subscribers phase's derived figures and its targets, from its windows (fewest sockets first). Pure. */
export function idleSubscribers(measured: IdleSubscribersMeasured): IdleSubscribers {
  const windows = measured.windows;
  const first = windows[0];
  const last = windows.at(-1);
  // The two windows with the most sockets: a cost per process (the slow poll) is in both and cancels out.
  const before = windows.at(-2);
  if (!first || !last || !before || last.sockets === before.sockets)
    throw new Error("the subscribers phase needs idle windows with different socket counts");
  const perSocket = (pick: (w: IdleWindow) => number) => {
    const extra = pick(last) / last.seconds - pick(before) / before.seconds;
    return Math.round((extra / (last.sockets - before.sockets)) * 1e6) / 1e6;
  };
  const rssDeltaMb = last.rssMb - first.rssMb;
  const transactionsPerSocketPerSecond = perSocket((w) => w.transactions);
  const logReadsPerSocketPerSecond = perSocket((w) => w.logReads);
  return {
    ...measured,
    rssDeltaMb,
    transactionsPerSocketPerSecond,
    logReadsPerSocketPerSecond,
    rssMet: rssDeltaMb < IDLE_TARGETS.maxRssDeltaMb,
    queriesMet:
      transactionsPerSocketPerSecond < IDLE_TARGETS.maxQueriesPerSocketPerSecond &&
      logReadsPerSocketPerSecond < IDLE_TARGETS.maxQueriesPerSocketPerSecond,
  };
}

export interface Results {
  date: string;
  machine: {
    cpus: number;
    cpuModel: string;
    node: string;
    synapse: string;
    postgres: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
    /** How the sides were given their cores (cpu.ts), or why not. */
    isolation?: string;
  };
  options: { concurrency: number[]; duration: number; catchup: number; scale: number[]; skip: string[] };
  raw: RunSummary[];
  bridge: RunSummary[];
  catchup?: CatchUp;
  tuning: { shipped: RunSummary[]; default: RunSummary[]; shippedWarningLogs?: RunSummary[] };
  /** Every run of every repeat, in order; raw, bridge and tuning above are their medians. */
  repeats: { raw: RunSummary[][]; bridge: RunSummary[][]; default: RunSummary[][]; shipped: RunSummary[][] };
  scale: ScalePoint[];
  /** Idle WebSocket subscribers (phases/subscribers.ts). */
  subscribers?: IdleSubscribers;
  roomCreationPerSecond?: number;
  /** Monolith vs worker mode through the bridge (phases/workers.ts): medians, and every run of every repeat. */
  workers?: {
    monolith: RunSummary[];
    workers: RunSummary[];
    repeats: { monolith: RunSummary[][]; workers: RunSummary[][] };
  };
  /** Each phase run: the load average (1/5/15 min) at its start and end, so a reader sees how quiet it was. */
  phases?: PhaseLog[];
  notes: string[];
  totalSeconds?: number;
}

export interface PhaseLog {
  name: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  seconds: number;
}

/** Issue 16's targets for the bridge beside raw Synapse, each sides on its own core. */
export const TARGETS = {
  /** Bridge throughput at least this fraction of raw. */
  minThroughputRatio: 0.95,
  /** Bridge p50 at most raw p50 plus this. */
  maxP50ExtraMs: 5,
  /** The bridge's CPU per message (process and its database backends) under this fraction of Synapse's. */
  maxCpuShare: 0.1,
} as const;

/** One concurrency's ratios against the targets, as measured. */
export interface TargetCheck {
  concurrency: number;
  throughputRatio: number | undefined;
  throughputMet: boolean;
  p50ExtraMs: number | undefined;
  p50Met: boolean;
  /** Bridge CPU per message / Synapse's, both from the bridge runs (the same messages). */
  cpuShare: number | undefined;
  cpuMet: boolean;
}

/** The targets checked at each concurrency measured on both sides (medians over the repeats). */
export function targetChecks(raw: readonly RunSummary[], bridge: readonly RunSummary[]): TargetCheck[] {
  return bridge.flatMap((b) => {
    const r = raw.find((run) => run.concurrency === b.concurrency);
    if (!r) return [];
    const throughputRatio = ratio(b.throughput, r.throughput);
    const p50ExtraMs =
      b.p50Ms === undefined || r.p50Ms === undefined ? undefined : Math.round((b.p50Ms - r.p50Ms) * 10) / 10;
    const cpuShare = b.cpuMsPerMessage
      ? ratio(sideCost(b.cpuMsPerMessage, "bridge"), sideCost(b.cpuMsPerMessage, "synapse"))
      : undefined;
    return [
      {
        concurrency: b.concurrency,
        throughputRatio,
        throughputMet: throughputRatio !== undefined && throughputRatio >= TARGETS.minThroughputRatio,
        p50ExtraMs,
        p50Met: p50ExtraMs !== undefined && p50ExtraMs <= TARGETS.maxP50ExtraMs,
        cpuShare,
        cpuMet: cpuShare !== undefined && cpuShare < TARGETS.maxCpuShare,
      },
    ];
  });
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const cell = (value: number | string | undefined) => (value === undefined ? "–" : String(value));
const ms = (value: number | undefined) => (value === undefined ? "–" : `${value} ms`);
const times = (value: number | undefined) => (value === undefined ? "–" : `${value}×`);

/** The report as Markdown tables, with bridge/raw and shipped/default ratios. */
export function formatReport(results: Results): string {
  const lines: string[] = [];
  const at = (runs: RunSummary[], c: number) => runs.find((r) => r.concurrency === c);
  lines.push(
    `Load average at start ${results.machine.loadAverageAtStart.join(" / ")}, at end ${results.machine.loadAverageAtEnd.join(" / ")} (1/5/15 min; ${results.machine.cpus} cores)`,
  );
  // A run that skipped the throughput phase has no raw/bridge runs: no table of dashes.
  if (results.raw.length + results.bridge.length > 0) {
    lines.push(
      "",
      "| conv. | raw msg/s | bridge msg/s | bridge/raw | raw p50 | bridge p50 | bridge/raw | raw p95 | bridge p95 | raw p99 | bridge p99 |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const c of results.options.concurrency) {
      const raw = at(results.raw, c);
      const bridge = at(results.bridge, c);
      lines.push(
        `| ${c} | ${cell(raw?.throughput)} | ${cell(bridge?.throughput)} | ${times(ratio(bridge?.throughput, raw?.throughput))} | ` +
          `${ms(raw?.p50Ms)} | ${ms(bridge?.p50Ms)} | ${times(ratio(bridge?.p50Ms, raw?.p50Ms))} | ` +
          `${ms(raw?.p95Ms)} | ${ms(bridge?.p95Ms)} | ${ms(raw?.p99Ms)} | ${ms(bridge?.p99Ms)} |`,
      );
    }
  }
  if (results.machine.isolation) lines.push("", `Cores: ${results.machine.isolation}.`);
  const checks = targetChecks(results.raw, results.bridge);
  if (checks.length > 0) {
    const met = (ok: boolean) => (ok ? "met" : "**missed**");
    lines.push(
      "",
      `| conv. | bridge/raw msg/s (≥ ${TARGETS.minThroughputRatio}) | | bridge p50 − raw p50 (≤ ${TARGETS.maxP50ExtraMs} ms) | | bridge CPU / Synapse CPU per message (< ${TARGETS.maxCpuShare * 100} %) | |`,
      "| --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const c of checks)
      lines.push(
        `| ${c.concurrency} | ${times(c.throughputRatio)} | ${met(c.throughputMet)} | ${ms(c.p50ExtraMs)} | ${met(c.p50Met)} | ` +
          `${c.cpuShare === undefined ? "–" : `${Math.round(c.cpuShare * 1000) / 10} %`} | ${met(c.cpuMet)} |`,
      );
  }
  const cpuRows = results.options.concurrency.flatMap((c) =>
    [
      ["raw", at(results.raw, c)],
      ["bridge", at(results.bridge, c)],
    ].flatMap(([side, run]) => {
      const cpu = (run as RunSummary | undefined)?.cpuMsPerMessage;
      return cpu
        ? [
            `| ${c} | ${side} | ${cpu.synapse} | ${cpu.synapseDb} | ${cpu.bridge} | ${cpu.bridgeDb} | ${cpu.postgres} | ${cpu.loadGenerator} |`,
          ]
        : [];
    }),
  );
  if (cpuRows.length > 0)
    lines.push(
      "",
      "CPU ms per message (utime + stime from /proc, medians over the repeats):",
      "",
      "| conv. | run | Synapse | its PostgreSQL backends | bridge | its PostgreSQL backends | PostgreSQL (other) | load generator |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
      ...cpuRows,
    );
  if (results.tuning.default.length > 0) {
    lines.push(
      "",
      "| conv. | shipped msg/s | default msg/s | shipped/default | shipped p50 | default p50 | shipped/default | shipped + WARNING logs msg/s | p50 |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const c of results.options.concurrency) {
      const shipped = at(results.tuning.shipped, c);
      const plain = at(results.tuning.default, c);
      const quiet = at(results.tuning.shippedWarningLogs ?? [], c);
      lines.push(
        `| ${c} | ${cell(shipped?.throughput)} | ${cell(plain?.throughput)} | ${times(ratio(shipped?.throughput, plain?.throughput))} | ` +
          `${ms(shipped?.p50Ms)} | ${ms(plain?.p50Ms)} | ${times(ratio(shipped?.p50Ms, plain?.p50Ms))} | ` +
          `${cell(quiet?.throughput)} | ${ms(quiet?.p50Ms)} |`,
      );
    }
  }
  const catchup = results.catchup;
  if (catchup)
    lines.push(
      "",
      `Catch-up: ${catchup.messages} messages in ${catchup.conversations} conversations sent in ${catchup.sendSeconds} s while the bridge was stopped. ` +
        `Raw read from before them (/sync, then /messages for each room's gap): ${catchup.rawReadSeconds} s. ` +
        `Bridge: ready ${catchup.bridgeReadySeconds} s after its start, all on the WebSocket after ${catchup.bridgeAllOnWebSocketSeconds} s ` +
        `(bridge/raw ${times(ratio(catchup.bridgeAllOnWebSocketSeconds, catchup.rawReadSeconds))}).`,
    );
  if (results.scale.length > 0) {
    lines.push(
      "",
      "| conversations | first start | RSS idle | RSS, all active | restart: ready | restart: all caught up | RSS after | peak RSS | |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const p of results.scale)
      lines.push(
        `| ${p.conversations} | ${p.firstStartSeconds} s | ${p.idleRssMb} MB | ${p.activeRssMb} MB | ${p.restartSeconds} s | ${p.restartCatchUpSeconds} s | ${p.restartRssMb} MB | ${p.peakMb} MB | ${
          p.measured
            ? "measured"
            : `extrapolated (${p.slope?.peakKbPerConversation} KB peak and ${p.slope?.catchUpMsPerConversation} ms catch-up per conversation)`
        } |`,
      );
    if (results.roomCreationPerSecond !== undefined)
      lines.push("", `Conversation creation: ${results.roomCreationPerSecond} per second.`);
  }
  const idle = results.subscribers;
  if (idle) {
    const met = (ok: boolean) => (ok ? "met" : "**missed**");
    const rate = (w: IdleWindow, n: number) => `${round2(n / w.seconds)}/s`;
    const first = idle.windows[0];
    const last = idle.windows.at(-1);
    lines.push(
      "",
      `Idle subscribers: ${idle.subscribers} WebSockets (user tokens, ${idle.users} users with ${Math.ceil(idle.subscribers / idle.users)} each, all in one conversation) opened in ${idle.openSeconds} s. ` +
        `RSS ${first?.rssMb} MB with none, ${last?.rssMb} MB with all: +${idle.rssDeltaMb} MB (target < ${IDLE_TARGETS.maxRssDeltaMb} MB: ${met(idle.rssMet)}); peak ${idle.peakMb} MB.`,
      "",
      "| open sockets | RSS | idle window | bridge DB transactions | event-log reads | service CPU |",
      "| --- | --- | --- | --- | --- | --- |",
      ...idle.windows.map(
        (w) =>
          `| ${w.sockets} | ${w.rssMb} MB | ${w.seconds} s | ${w.transactions} (${rate(w, w.transactions)}) | ${w.logReads} (${rate(w, w.logReads)}) | ${w.cpuMs} ms (${round2(w.cpuMs / 10 / w.seconds)} %) |`,
      ),
      "",
      `Per idle socket: ${idle.transactionsPerSocketPerSecond} transactions/s and ${idle.logReadsPerSocketPerSecond} log reads/s (target: none, < ${IDLE_TARGETS.maxQueriesPerSocketPerSecond}: ${met(idle.queriesMet)}). ` +
        `One new message to all ${idle.subscribers}: ${idle.fanOut.map((r) => `${r.sendToLastMs} ms (first socket ${r.sendToFirstMs} ms, first to last ${r.firstToLastMs} ms)`).join("; ")}; median ${idle.fanOutMedianMs} ms from the send request.`,
    );
  }
  if (results.workers) lines.push("", ...workerModeReport(results.workers));
  if (results.phases?.length)
    lines.push(
      "",
      "| phase | load average at start | at end | duration |",
      "| --- | --- | --- | --- |",
      ...results.phases.map(
        (p) =>
          `| ${p.name} | ${p.loadAverageAtStart.join(" / ")} | ${p.loadAverageAtEnd.join(" / ")} | ${p.seconds} s |`,
      ),
    );
  for (const note of results.notes) lines.push("", `Note: ${note}`);
  return lines.join("\n");
}

/** Cores of the projection's nodes (the homeserver side's share of a node). */
export const PROJECTED_CORES = [4, 8, 16] as const;

const COST_COLUMNS: readonly (readonly [keyof ProcessCost, string])[] = [
  ["main", "main"],
  ["workers", "workers"],
  ["redisAndProxy", "Redis + HAProxy"],
  ["postgres", "PostgreSQL"],
  ["bridge", "bridge + its DB"],
  ["homeserver", "homeserver side"],
];

/** The monolith vs worker mode tables: ratios, CPU per message by process, and the projection. */
function workerModeReport(modes: NonNullable<Results["workers"]>): string[] {
  const comparisons = compareModes(modes.monolith, modes.workers);
  const lines = [
    "Monolith vs worker mode, through the bridge (ratios: worker mode / monolith):",
    "",
    "| conv. | monolith msg/s | worker msg/s | ratio | monolith p50 | worker p50 | ratio | monolith p95 | worker p95 | ratio | homeserver CPU/msg ratio |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const c of comparisons) {
    const m = modes.monolith.find((r) => r.concurrency === c.concurrency);
    const w = modes.workers.find((r) => r.concurrency === c.concurrency);
    lines.push(
      `| ${c.concurrency} | ${cell(m?.throughput)} | ${cell(w?.throughput)} | ${times(c.throughputRatio)} | ` +
        `${ms(m?.p50Ms)} | ${ms(w?.p50Ms)} | ${times(c.p50Ratio)} | ${ms(m?.p95Ms)} | ${ms(w?.p95Ms)} | ${times(c.p95Ratio)} | ` +
        `${times(c.homeserverCpuRatio)} |`,
    );
  }
  lines.push(
    "",
    "CPU ms per message by process (medians over the repeats):",
    "",
    `| conv. | mode | ${COST_COLUMNS.map(([, title]) => title).join(" | ")} |`,
    `| --- | --- | ${COST_COLUMNS.map(() => "---").join(" | ")} |`,
  );
  for (const c of comparisons)
    for (const [mode, cost] of [
      ["monolith", c.monolith],
      ["worker mode", c.workers],
    ] as const)
      if (cost)
        lines.push(`| ${c.concurrency} | ${mode} | ${COST_COLUMNS.map(([key]) => cost[key]).join(" | ")} |`);
  const busiest = modes.workers.at(-1);
  if (busiest?.cpuMsPerProcess)
    lines.push(
      "",
      `Worker mode at ${busiest.concurrency} conversations, CPU ms per message of each process: ${Object.entries(
        busiest.cpuMsPerProcess,
      )
        .map(([name, value]) => `${name} ${value}`)
        .join(", ")}.`,
    );
  const projections = PROJECTED_CORES.flatMap((cores) =>
    [
      ["monolith", modes.monolith.at(-1)],
      ["worker mode", busiest],
    ].flatMap(([mode, run]) => {
      const projection = run ? projectCeiling(run as RunSummary, cores) : undefined;
      return projection
        ? [
            `| ${cores} | ${mode} | ${projection.ceiling.messagesPerSecond} msg/s | ${projection.ceiling.name} | ${projection.limits
              .map((l) => `${l.name} ${l.messagesPerSecond}`)
              .join(", ")} |`,
          ]
        : [];
    }),
  );
  if (projections.length > 0)
    lines.push(
      "",
      "Projection, not a measurement (bench/worker-mode.ts projectCeiling): the message rate at which the first process or the node saturates, from the CPU per message above at the highest concurrency; one core at most per Synapse process and for Redis.",
      "",
      "| homeserver cores | mode | ceiling | set by | limits (msg/s) |",
      "| --- | --- | --- | --- | --- |",
      ...projections,
    );
  return lines;
}

/** The lowest and highest of one measure over the repeats at one concurrency; undefined below two values. */
export function spreadOf(
  repeats: readonly (readonly RunSummary[])[],
  concurrency: number,
  pick: (run: RunSummary) => number | undefined,
): readonly [number, number] | undefined {
  const values = repeats.flatMap((runs) => {
    const run = runs.find((r) => r.concurrency === concurrency);
    const value = run ? pick(run) : undefined;
    return value === undefined ? [] : [value];
  });
  return values.length < 2 ? undefined : [Math.min(...values), Math.max(...values)];
}

/** Bar groups, one per concurrency: each series' median of `pick` and its spread over the repeats. */
function byConcurrency(
  concurrency: readonly number[],
  series: readonly { runs: readonly RunSummary[]; repeats: readonly (readonly RunSummary[])[] }[],
  pick: (r: RunSummary) => number | undefined,
): BarGroup[] {
  return concurrency.map((c) => ({
    label: `${c} conv.`,
    values: series.map((s) => {
      const run = s.runs.find((r) => r.concurrency === c);
      return run ? pick(run) : undefined;
    }),
    spreads: series.map((s) => spreadOf(s.repeats, c, pick)),
  }));
}

/**
 * The chart beside the results file: every series the run measured. Throughput and p50 per concurrency (raw, bridge,
 * shipped and default config, shipped with WARNING logs) with the repeats' spread, CPU per message by side, catch-up,
 * the idle subscribers' memory and database load, and peak RSS against conversations as a line.
 */
export function resultsChart(results: Results): string {
  const at = (runs: readonly RunSummary[], c: number) => runs.find((r) => r.concurrency === c);
  const concurrency = results.options.concurrency;
  const sides = [
    { name: "raw Synapse", runs: results.raw, repeats: results.repeats.raw },
    { name: "through the bridge", runs: results.bridge, repeats: results.repeats.bridge },
    { name: "raw, shipped config", runs: results.tuning.shipped, repeats: results.repeats.shipped },
    { name: "raw, default config", runs: results.tuning.default, repeats: results.repeats.default },
    { name: "raw, shipped + WARNING logs", runs: results.tuning.shippedWarningLogs ?? [], repeats: [] },
  ].filter((side) => side.runs.length > 0);
  const workload = (pick: (r: RunSummary) => number | undefined) => byConcurrency(concurrency, sides, pick);
  const series = sides.map((side) => side.name);
  const panels: Panel[] = [];
  if (sides.length > 0)
    panels.push(
      { title: "Throughput", unit: "messages/s", series, groups: workload((r) => r.throughput) },
      { title: "Send-to-receive p50", unit: "ms", series, groups: workload((r) => r.p50Ms) },
    );
  const cpuSeries = [
    { name: "Synapse + its DB, raw runs", runs: results.raw, repeats: results.repeats.raw, side: "synapse" },
    {
      name: "Synapse + its DB, bridge runs",
      runs: results.bridge,
      repeats: results.repeats.bridge,
      side: "synapse",
    },
    { name: "bridge + its DB", runs: results.bridge, repeats: results.repeats.bridge, side: "bridge" },
  ] as const;
  if ([...results.raw, ...results.bridge].some((r) => r.cpuMsPerMessage)) {
    const cost = (side: "synapse" | "bridge") => (r: RunSummary) =>
      r.cpuMsPerMessage ? sideCost(r.cpuMsPerMessage, side) : undefined;
    panels.push({
      title: "CPU per message",
      unit: "ms",
      series: cpuSeries.map((s) => s.name),
      groups: concurrency.map((c) => ({
        label: `${c} conv.`,
        values: cpuSeries.map((s) => {
          const run = at(s.runs, c);
          return run ? cost(s.side)(run) : undefined;
        }),
        spreads: cpuSeries.map((s) => spreadOf(s.repeats, c, cost(s.side))),
      })),
    });
  }
  const modes = results.workers;
  if (modes) {
    const both = [
      { name: "monolith", runs: modes.monolith, repeats: modes.repeats.monolith },
      { name: "worker mode", runs: modes.workers, repeats: modes.repeats.workers },
    ];
    const byMode = (pick: (r: RunSummary) => number | undefined) => byConcurrency(concurrency, both, pick);
    const modeNames = both.map((mode) => mode.name);
    const busiest = compareModes(modes.monolith, modes.workers).at(-1);
    panels.push(
      {
        title: "Monolith vs worker mode: throughput",
        unit: "messages/s",
        series: modeNames,
        groups: byMode((r) => r.throughput),
      },
      {
        title: "Monolith vs worker mode: p50",
        unit: "ms",
        series: modeNames,
        groups: byMode((r) => r.p50Ms),
      },
    );
    if (busiest)
      panels.push({
        title: `CPU per message by process, ${busiest.concurrency} conv.`,
        unit: "ms",
        series: modeNames,
        groups: COST_COLUMNS.map(([key, title]) => ({
          label: title,
          values: [busiest.monolith?.[key], busiest.workers?.[key]],
        })),
      });
  }
  const catchup = results.catchup;
  if (catchup)
    panels.push({
      title: `Catch-up of ${catchup.messages} messages`,
      unit: "s",
      series: ["raw read (/sync + /messages)", "bridge: ready", "bridge: all on the WebSocket"],
      groups: [
        {
          label: `${catchup.conversations} conv.`,
          values: [catchup.rawReadSeconds, catchup.bridgeReadySeconds, catchup.bridgeAllOnWebSocketSeconds],
        },
      ],
    });
  const idle = results.subscribers;
  if (idle) {
    const rate = (n: number, w: IdleWindow) => Math.round((n / w.seconds) * 100) / 100;
    panels.push(
      {
        title: "Idle WebSockets: service RSS",
        unit: "MB",
        series: ["RSS"],
        groups: idle.windows.map((w) => ({ label: `${w.sockets} sockets`, values: [w.rssMb] })),
      },
      {
        title: "Idle WebSockets: bridge database",
        unit: "per second",
        series: ["transactions", "event-log reads"],
        groups: idle.windows.map((w) => ({
          label: `${w.sockets} sockets`,
          values: [rate(w.transactions, w), rate(w.logReads, w)],
        })),
      },
      {
        title: `Fan-out to ${idle.subscribers} sockets`,
        unit: "ms after the send",
        series: ["first socket", "last socket"],
        groups: idle.fanOut.map((r, i) => ({
          label: `message ${i + 1}`,
          values: [r.sendToFirstMs, r.sendToLastMs],
        })),
      },
    );
  }
  if (results.scale.length > 0)
    panels.push({
      kind: "line",
      title: "Bridge memory by conversations",
      unit: "MB",
      xUnit: "conversations",
      lines: [
        { name: "peak RSS", pick: (p: ScalePoint) => p.peakMb },
        { name: "RSS, all active", pick: (p: ScalePoint) => p.activeRssMb },
        { name: "RSS idle", pick: (p: ScalePoint) => p.idleRssMb },
      ].map(({ name, pick }) => ({
        name,
        points: results.scale.map((p) => ({ x: p.conversations, y: pick(p), measured: p.measured })),
      })),
    });
  return chartSvg(
    panels,
    `nova-matrix bench ${results.date.slice(0, 16)}Z, ${results.machine.cpus} cores, load ${results.machine.loadAverageAtStart.join("/")} at start, ${results.machine.loadAverageAtEnd.join("/")} at end`,
  );
}
