// The results' shape, the printed table (Markdown, so docs/performance.md can take it as is) and the chart. Pure.
import { barChartSvg } from "./chart.ts";
import { type RunSummary, ratio } from "./stats.ts";

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
  };
  options: { concurrency: number[]; duration: number; catchup: number; scale: number[]; skip: string[] };
  raw: RunSummary[];
  bridge: RunSummary[];
  catchup?: CatchUp;
  tuning: { shipped: RunSummary[]; default: RunSummary[]; shippedWarningLogs?: RunSummary[] };
  /** Every run of every repeat, in order; raw, bridge and tuning above are their medians. */
  repeats: { raw: RunSummary[][]; bridge: RunSummary[][]; default: RunSummary[][]; shipped: RunSummary[][] };
  scale: ScalePoint[];
  roomCreationPerSecond?: number;
  notes: string[];
  totalSeconds?: number;
}

const cell = (value: number | string | undefined) => (value === undefined ? "–" : String(value));
const ms = (value: number | undefined) => (value === undefined ? "–" : `${value} ms`);
const times = (value: number | undefined) => (value === undefined ? "–" : `${value}×`);

/** The report as Markdown tables, with bridge/raw and shipped/default ratios. */
export function formatReport(results: Results): string {
  const lines: string[] = [];
  const at = (runs: RunSummary[], c: number) => runs.find((r) => r.concurrency === c);
  lines.push(
    `Load average at start ${results.machine.loadAverageAtStart.join(" / ")}, at end ${results.machine.loadAverageAtEnd.join(" / ")} (1/5/15 min; ${results.machine.cpus} cores)`,
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
  for (const note of results.notes) lines.push("", `Note: ${note}`);
  return lines.join("\n");
}

/** The chart beside the results file: throughput and p50 per concurrency, raw, bridge and default config. */
export function resultsChart(results: Results): string {
  const label = (c: number) => `${c} conv.`;
  const at = (runs: RunSummary[], c: number) => runs.find((r) => r.concurrency === c);
  const concurrency = results.options.concurrency;
  const series = ["raw Synapse", "through the bridge", "raw, default config"];
  const pick = (f: (r: RunSummary) => number | undefined) =>
    concurrency.map((c) => ({
      label: label(c),
      values: [results.raw, results.bridge, results.tuning.default].map((runs) => {
        const run = at(runs, c);
        return run ? f(run) : undefined;
      }),
    }));
  return barChartSvg(
    [
      { title: "Throughput", unit: "messages/s", series, groups: pick((r) => r.throughput) },
      { title: "Send-to-receive p50", unit: "ms", series, groups: pick((r) => r.p50Ms) },
    ],
    `nova-matrix bench ${results.date.slice(0, 16)}Z, ${results.machine.cpus} cores, load ${results.machine.loadAverageAtStart[0]}`,
  );
}
