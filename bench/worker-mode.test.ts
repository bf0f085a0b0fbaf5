// Monolith vs worker mode's pure parts: CPU per message by kind of process, the ratios, the projection, and how the
// report and the chart show them.
import { describe, expect, it } from "vitest";
import type { CpuPerMessage } from "./proc.ts";
import { formatReport, resultsChart } from "./report.ts";
import { cpu, resultsWith } from "./results-fixture.ts";
import { medianRuns, type RunSummary } from "./stats.ts";
import { compareModes, processCost, projectCeiling } from "./worker-mode.ts";

const run = (
  concurrency: number,
  throughput: number,
  p50Ms: number,
  cpuMsPerMessage?: CpuPerMessage,
  cpuMsPerProcess?: Record<string, number>,
): RunSummary => ({
  concurrency,
  sent: 100,
  received: 100,
  throughput,
  p50Ms,
  p95Ms: p50Ms * 2,
  p99Ms: p50Ms * 3,
  ...(cpuMsPerMessage ? { cpuMsPerMessage } : {}),
  ...(cpuMsPerProcess ? { cpuMsPerProcess } : {}),
});

// The monolith: one Synapse process of 20 ms a message. Worker mode: 25 ms over main, three workers, Redis and the
// proxy (cpu.synapse counts them all, as proc.ts's helpers).
const monolith = run(8, 20, 400, cpu({ synapse: 20, synapseDb: 8, postgres: 2, bridge: 3, bridgeDb: 1 }));
const perProcess = {
  main: 4,
  "matrix-synapse-client-0": 6,
  "matrix-synapse-event-persister-0": 10,
  "matrix-synapse-sync-0": 2,
  redis: 1,
  haproxy: 2,
};
const workers = run(
  8,
  16,
  500,
  cpu({ synapse: 25, synapseDb: 9, postgres: 1, bridge: 3, bridgeDb: 1 }),
  perProcess,
);

describe("bench: monolith vs worker mode", () => {
  it("splits the CPU per message into main, workers, Redis + proxy, PostgreSQL, bridge and the homeserver side", () => {
    expect(processCost(monolith)).toEqual({
      main: 20,
      workers: 0,
      redisAndProxy: 0,
      postgres: 10,
      bridge: 4,
      homeserver: 30,
    });
    expect(processCost(workers)).toEqual({
      main: 4,
      workers: 18,
      redisAndProxy: 3,
      postgres: 10,
      bridge: 4,
      homeserver: 35,
    });
    expect(processCost(run(1, 1, 1))).toBeUndefined();
  });

  it("gives worker mode / monolith ratios at each concurrency both modes ran", () => {
    const [eight, ...rest] = compareModes([run(1, 10, 100), monolith], [workers]);
    expect(rest).toEqual([]);
    expect(eight).toMatchObject({
      concurrency: 8,
      throughputRatio: 0.8,
      p50Ratio: 1.25,
      p95Ratio: 1.25,
      homeserverCpuRatio: 1.17,
    });
    expect(compareModes([], [workers])).toEqual([]);
  });

  it("projects the ceiling: the busiest single-threaded process, or every core busy", () => {
    // Worker mode: the event persister (10 ms) saturates its core at 100 msg/s; 4 cores allow 4000 / 35 = 114.
    expect(projectCeiling(workers, 4)).toEqual({
      cores: 4,
      limits: [
        { name: "main", messagesPerSecond: 250 },
        { name: "matrix-synapse-client-0", messagesPerSecond: 167 },
        { name: "matrix-synapse-event-persister-0", messagesPerSecond: 100 },
        { name: "matrix-synapse-sync-0", messagesPerSecond: 500 },
        { name: "redis", messagesPerSecond: 1000 },
        { name: "4 cores", messagesPerSecond: 114 },
      ],
      ceiling: { name: "matrix-synapse-event-persister-0", messagesPerSecond: 100 },
    });
    // With 2 cores the node is the limit (2000 / 35 = 57).
    expect(projectCeiling(workers, 2)?.ceiling).toEqual({ name: "2 cores", messagesPerSecond: 57 });
    // The monolith's one process (20 ms) caps it at 50 msg/s however many cores.
    expect(projectCeiling(monolith, 16)?.ceiling).toEqual({ name: "main", messagesPerSecond: 50 });
    expect(projectCeiling(run(8, 1, 1), 4)).toBeUndefined();
  });

  it("takes the median of each process's CPU over the repeats", () => {
    const repeat = (main: number) => [run(8, 1, 1, cpu({ synapse: main }), { main, redis: main / 10 })];
    expect(medianRuns([repeat(4), repeat(8), repeat(5)])[0]?.cpuMsPerProcess).toEqual({
      main: 5,
      redis: 0.5,
    });
  });

  it("reports the ratios, the CPU by process, the projection and each phase's load average, and charts them", () => {
    const results = resultsWith({
      options: { concurrency: [8], duration: 15, catchup: 1, scale: [], skip: [] },
      workers: {
        monolith: [monolith],
        workers: [workers],
        repeats: { monolith: [[monolith], [run(8, 24, 380)]], workers: [[workers]] },
      },
      phases: [
        { name: "workers", loadAverageAtStart: [1.2, 1, 0.9], loadAverageAtEnd: [2.5, 1.5, 1], seconds: 300 },
      ],
    });
    const report = formatReport(results);
    expect(report).toContain(
      "| 8 | 20 | 16 | 0.8× | 400 ms | 500 ms | 1.25× | 800 ms | 1000 ms | 1.25× | 1.17× |",
    );
    expect(report).toContain("| 8 | monolith | 20 | 0 | 0 | 10 | 4 | 30 |");
    expect(report).toContain("| 8 | worker mode | 4 | 18 | 3 | 10 | 4 | 35 |");
    expect(report).toContain("matrix-synapse-event-persister-0 10");
    expect(report).toContain("| 16 | monolith | 50 msg/s | main |");
    expect(report).toContain("| 16 | worker mode | 100 msg/s | matrix-synapse-event-persister-0 |");
    expect(report).toContain("| workers | 1.2 / 1 / 0.9 | 2.5 / 1.5 / 1 | 300 s |");
    const svg = resultsChart(results);
    for (const text of [
      "Monolith vs worker mode: throughput",
      "worker mode",
      "CPU per message by process, 8 conv.",
    ])
      expect(svg).toContain(text);
    // The monolith's two repeats (20 and 24 msg/s) are a whisker.
    expect(svg.match(/stroke="#222"/g)?.length).toBeGreaterThanOrEqual(1);
  });
});
