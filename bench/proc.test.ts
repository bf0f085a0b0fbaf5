import { readFile } from "node:fs/promises";
import { waitFor } from "@nova-matrix/dev/harness";
import { describe, expect, it } from "vitest";
import {
  type CpuGroup,
  type CpuPerMessage,
  cpuPerMessage,
  parseStatParent,
  parseStatTicks,
  postgresGroup,
  sideCost,
} from "./proc.ts";
import { formatReport, idleSubscribers, resultsChart, targetChecks } from "./report.ts";
import { cpu, resultsWith } from "./results-fixture.ts";
import { medianRuns, type RunSummary } from "./stats.ts";

// A /proc/<pid>/stat line whose command name holds a space and a ")": utime 250, stime 75, parent 1.
const STAT = "1234 (postgres: a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 50";

describe("bench CPU accounting", () => {
  it("reads utime + stime and the parent from /proc/<pid>/stat, counting fields after the last parenthesis", () => {
    expect(parseStatTicks(STAT)).toBe(325);
    expect(parseStatParent(STAT)).toBe(1);
    expect(() => parseStatTicks("garbage")).toThrow(/not a \/proc/);
    expect(() => parseStatTicks("1 (x) S 1 2")).toThrow(/no utime/);
  });

  it("reads this process's own ticks, which grow while it computes", async () => {
    const first = parseStatTicks(await readFile("/proc/self/stat", "utf8"));
    expect(Number.isInteger(first)).toBe(true);
    let sink = 0;
    await waitFor(
      async () => {
        for (let i = 0; i < 1e6; i++) sink += Math.sqrt(i);
        return parseStatTicks(await readFile("/proc/self/stat", "utf8")) > first;
      },
      { timeoutMs: 30_000, intervalMs: 0, describe: () => "utime + stime never grew" },
    );
    expect(sink).toBeGreaterThan(0);
  });

  it("gives each PostgreSQL backend to the database user it serves, the rest to PostgreSQL", () => {
    const title = (text: string) => `${text}\0\0\0`;
    expect(postgresGroup(title("postgres: synapse synapse 127.0.0.1(40000) idle"))).toBe("synapseDb");
    expect(postgresGroup(title("postgres: synapse_default synapse_default 127.0.0.1(1) idle"))).toBe(
      "synapseDb",
    );
    expect(postgresGroup(title("postgres: bridge bridge_1 127.0.0.1(40001) idle in transaction"))).toBe(
      "bridgeDb",
    );
    expect(postgresGroup(title("postgres: checkpointer "))).toBe("postgres");
    expect(postgresGroup(title("postgres: postgres postgres 127.0.0.1(3) idle"))).toBe("postgres");
    expect(postgresGroup("/usr/lib/postgresql/15/bin/postgres\0-D\0/tmp/data")).toBe("postgres");
  });

  it("turns two samples into CPU ms per message by group: new processes from zero, exited ones lost", () => {
    const entry = (group: CpuGroup, ticks: number) => ({ group, ticks });
    const before = new Map([
      [1, entry("synapse", 1000)],
      [2, entry("bridge", 500)],
      [3, entry("bridgeDb", 40)], // exits in between: its ticks are lost
      [9, entry("postgres", 7)], // a pid reused by another group: counted from zero
    ]);
    const after = new Map([
      [1, entry("synapse", 1400)],
      [2, entry("bridge", 520)],
      [4, entry("bridgeDb", 10)], // started in between
      [9, entry("synapseDb", 30)],
    ]);
    // 100 ticks per second: 400 ticks = 4000 ms over 200 messages = 20 ms each.
    expect(cpuPerMessage(before, after, 200, 100)).toEqual(
      cpu({ synapse: 20, bridge: 1, bridgeDb: 0.5, synapseDb: 1.5 }),
    );
    expect(cpuPerMessage(before, after, 0, 100)).toEqual(cpu({}));
    expect(sideCost(cpu({ synapse: 20, synapseDb: 1.5, bridge: 1, bridgeDb: 0.5 }), "synapse")).toBe(21.5);
    expect(sideCost(cpu({ synapse: 20, synapseDb: 1.5, bridge: 1, bridgeDb: 0.5 }), "bridge")).toBe(1.5);
  });

  it("takes the median of each CPU figure over the repeats", () => {
    const run = (synapse: number): RunSummary => ({
      concurrency: 1,
      sent: 1,
      received: 1,
      throughput: 1,
      p50Ms: 1,
      p95Ms: 1,
      p99Ms: 1,
      cpuMsPerMessage: cpu({ synapse, bridge: synapse / 10 }),
    });
    expect(medianRuns([[run(10)], [run(30)], [run(14)]])[0]?.cpuMsPerMessage).toEqual(
      cpu({ synapse: 14, bridge: 1.4 }),
    );
  });
});

describe("bench targets (issue 16)", () => {
  const run = (
    concurrency: number,
    throughput: number,
    p50Ms: number,
    cpuMsPerMessage?: CpuPerMessage,
  ): RunSummary => ({
    concurrency,
    sent: 10,
    received: 10,
    throughput,
    p50Ms,
    p95Ms: p50Ms,
    p99Ms: p50Ms,
    ...(cpuMsPerMessage ? { cpuMsPerMessage } : {}),
  });
  const raw = [run(1, 40, 30, cpu({ synapse: 20 })), run(8, 100, 80), run(32, 1, 1)];
  const bridge = [
    run(1, 38, 35, cpu({ synapse: 18, synapseDb: 2, bridge: 1.5, bridgeDb: 0.4 })),
    run(8, 90, 90, cpu({ synapse: 20, bridge: 2 })),
  ];

  it("checks throughput ≥ 0.95× raw, p50 ≤ raw + 5 ms and bridge CPU < 10 % of Synapse's, as measured", () => {
    expect(targetChecks(raw, bridge)).toEqual([
      {
        concurrency: 1,
        throughputRatio: 0.95,
        throughputMet: true,
        p50ExtraMs: 5,
        p50Met: true,
        cpuShare: 0.1, // 1.9 / 20 rounds to 0.1, which is not under 10 %
        cpuMet: false,
      },
      {
        concurrency: 8,
        throughputRatio: 0.9,
        throughputMet: false,
        p50ExtraMs: 10,
        p50Met: false,
        cpuShare: 0.1,
        cpuMet: false,
      },
    ]);
    expect(targetChecks(raw, [run(1, 40, 30, cpu({ synapse: 20, bridge: 1 }))])[0]).toMatchObject({
      cpuShare: 0.05,
      cpuMet: true,
    });
    // Without CPU figures or a raw run at that concurrency, nothing is claimed.
    expect(targetChecks(raw, [run(1, 40, 30)])[0]).toMatchObject({ cpuShare: undefined, cpuMet: false });
    expect(targetChecks([], bridge)).toEqual([]);
  });

  it("prints the cores, the targets and the CPU per message in the report", () => {
    const results = resultsWith({
      machine: {
        ...resultsWith({}).machine,
        isolation: "taskset: Synapse and PostgreSQL on CPU 0, the bridge and the load generator on CPU 1",
      },
      options: { concurrency: [1, 8], duration: 8, catchup: 1000, scale: [100], skip: [] },
      raw,
      bridge,
    });
    const report = formatReport(results);
    expect(report).toContain("Cores: taskset: Synapse and PostgreSQL on CPU 0");
    expect(report).toContain("| 1 | 0.95× | met | 5 ms | met | 10 % | **missed** |");
    expect(report).toContain("| 8 | 0.9× | **missed** | 10 ms | **missed** | 10 % | **missed** |");
    expect(report).toContain("| 1 | raw | 20 | 0 | 0 | 0 | 0 | 0 |");
    expect(report).toContain("| 1 | bridge | 18 | 2 | 1.5 | 0.4 | 0 | 0 |");
  });
});

describe("bench idle subscribers (issue 11)", () => {
  const window = (sockets: number, rssMb: number, transactions: number, logReads: number) => ({
    sockets,
    rssMb,
    seconds: 20,
    transactions,
    logReads,
    cpuMs: 50,
  });
  const none = window(0, 90, 40, 0);
  const measured = {
    subscribers: 1000,
    users: 200,
    openSeconds: 4,
    peakMb: 130,
    // The slow poll while anyone listens: 10 reads (and transactions) per window, whatever the sockets.
    windows: [none, window(100, 95, 50, 10), window(1000, 120, 52, 10)],
    fanOut: [{ sendToFirstMs: 60, sendToLastMs: 180, firstToLastMs: 120 }],
    fanOutMedianMs: 180,
  };

  it("derives the RSS delta and the queries per idle socket from the two windows with sockets", () => {
    // 2.6/s with 1,000 sockets against 2.5/s with 100: 0.1/s over 900 sockets. The per-process poll cancels out.
    expect(idleSubscribers(measured)).toMatchObject({
      rssDeltaMb: 30,
      transactionsPerSocketPerSecond: 0.000111,
      logReadsPerSocketPerSecond: 0,
      rssMet: true,
      queriesMet: true,
    });
    // A poll per socket every 2 s: 450 more transactions per second with 900 more sockets.
    const polling = [none, window(100, 95, 1040, 10), window(1000, 120, 10_040, 10)];
    expect(idleSubscribers({ ...measured, windows: polling })).toMatchObject({
      transactionsPerSocketPerSecond: 0.5,
      queriesMet: false,
    });
    const reading = [none, window(100, 95, 50, 1000), window(1000, 120, 52, 10_000)];
    expect(idleSubscribers({ ...measured, windows: reading })).toMatchObject({
      logReadsPerSocketPerSecond: 0.5,
      queriesMet: false,
    });
    const heavy = [none, window(100, 95, 50, 10), window(1000, 140, 52, 10)];
    expect(idleSubscribers({ ...measured, windows: heavy })).toMatchObject({ rssDeltaMb: 50, rssMet: false });
    expect(() => idleSubscribers({ ...measured, windows: [window(1, 1, 1, 1), window(1, 1, 1, 1)] })).toThrow(
      /different socket counts/,
    );
  });

  it("prints every idle window, the per-socket figures and the fan-out", () => {
    const results = resultsWith({ subscribers: idleSubscribers(measured) });
    const report = formatReport(results);
    expect(report).toContain("(user tokens, 200 users with 5 each, all in one conversation) opened in 4 s");
    expect(report).toContain(
      "RSS 90 MB with none, 120 MB with all: +30 MB (target < 50 MB: met); peak 130 MB.",
    );
    expect(report).toContain("| 0 | 90 MB | 20 s | 40 (2/s) | 0 (0/s) | 50 ms (0.25 %) |");
    expect(report).toContain("| 1000 | 120 MB | 20 s | 52 (2.6/s) | 10 (0.5/s) | 50 ms (0.25 %) |");
    expect(report).toContain("Per idle socket: 0.000111 transactions/s and 0 log reads/s");
    expect(report).toContain(
      "One new message to all 1000: 180 ms (first socket 60 ms, first to last 120 ms)",
    );
    const svg = resultsChart(results);
    expect(svg).toContain("Idle WebSockets: bridge database (per second)");
    expect(svg).toContain("Fan-out to 1000 sockets (ms after the send)");
  });
});
