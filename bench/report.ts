// The results' shape and the printed table (Markdown, so docs/performance.md can take it as is). Pure.
import { type RunSummary, ratio } from "./stats.ts";

export interface ScalePoint {
  conversations: number;
  /** Fresh database: process start to /readyz 200 (initial sync of every room done). */
  firstStartSeconds: number;
  firstStartRssMb: number;
  /** The process's peak RSS (VmHWM) after the first start: what a memory limit must allow. */
  firstStartPeakMb: number;
  /** Same database again: process start to ready. */
  restartSeconds: number;
  restartRssMb: number;
  /** False: extrapolated from the measured points (see slope). */
  measured: boolean;
  slope?: { peakKbPerConversation: number; firstStartMsPerConversation: number };
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
      "| conversations | first start (initial sync) | RSS | peak RSS | restart | RSS after restart | |",
      "| --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const p of results.scale)
      lines.push(
        `| ${p.conversations} | ${p.firstStartSeconds} s | ${p.firstStartRssMb} MB | ${p.firstStartPeakMb} MB | ${p.restartSeconds} s | ${p.restartRssMb} MB | ${
          p.measured
            ? "measured"
            : `extrapolated (${p.slope?.peakKbPerConversation} KB peak and ${p.slope?.firstStartMsPerConversation} ms per conversation)`
        } |`,
      );
    if (results.roomCreationPerSecond !== undefined)
      lines.push("", `Conversation creation: ${results.roomCreationPerSecond} per second.`);
  }
  for (const note of results.notes) lines.push("", `Note: ${note}`);
  return lines.join("\n");
}
