// The benchmark's pure parts: measures, ratios, the extrapolation, the report and the chart; the runner's rules.
import { describe, expect, it } from "vitest";
import { chartSvg, niceTicks } from "./chart.ts";
import { skipList } from "./options.ts";
import type { Bench, Phase } from "./phase.ts";
import { PHASES } from "./phases/index.ts";
import { formatReport, type Results, resultsChart, spreadOf } from "./report.ts";
import { resultsWith } from "./results-fixture.ts";
import { phaseSkipped, runPhases, skippableNames } from "./runner.ts";
import { extrapolate, linearFit, median, medianRuns, percentile, ratio, summarize } from "./stats.ts";

describe("bench measures", () => {
  it("takes nearest-rank percentiles", () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 95)).toBe(95);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeUndefined();
  });

  it("summarizes a run: latency per received message, throughput from first send to last receipt", () => {
    const sends = new Map([
      ["a", 0],
      ["b", 100],
      ["c", 200],
      ["lost", 300],
    ]);
    const receipts = new Map([
      ["a", 50],
      ["b", 250],
      ["c", 1000],
      ["other run", 10],
    ]);
    const run = summarize(2, sends, receipts);
    expect(run).toMatchObject({ concurrency: 2, sent: 4, received: 3, p50Ms: 150, p99Ms: 800 });
    expect(run.throughput).toBe(3); // 3 messages in 1 s
  });

  it("computes ratios and refuses a missing or zero denominator", () => {
    expect(ratio(18, 20)).toBe(0.9);
    expect(ratio(1, 0)).toBeUndefined();
    expect(ratio(undefined, 2)).toBeUndefined();
  });

  it("fits a line for the per-conversation slope and refuses degenerate input", () => {
    const fit = linearFit([
      { x: 100, y: 130 },
      { x: 1000, y: 148 },
    ]);
    expect(fit.slope).toBeCloseTo(0.02);
    expect(fit.intercept + fit.slope * 10_000).toBeCloseTo(328);
    expect(() => linearFit([{ x: 1, y: 1 }])).toThrow(/two points/);
    expect(() =>
      linearFit([
        { x: 1, y: 1 },
        { x: 1, y: 2 },
      ]),
    ).toThrow(/different x/);
  });

  it("extrapolates along the slope, flat when the slope is noise, never below what was measured", () => {
    const growing = [
      { x: 100, y: 130 },
      { x: 1000, y: 148 },
    ];
    expect(extrapolate(growing, 10_000).value).toBeCloseTo(328);
    expect(extrapolate(growing, 10_000).slope).toBeCloseTo(0.02);
    const noisy = [
      { x: 100, y: 143 },
      { x: 1000, y: 127 },
    ];
    expect(extrapolate(noisy, 10_000)).toEqual({ value: 143, slope: 0 });
  });

  it("takes medians, and reduces repeats to one run per concurrency with the median of each measure", () => {
    expect(median([30, 10, 20])).toBe(20);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
    const run = (concurrency: number, throughput: number, p50Ms: number | undefined) => ({
      concurrency,
      sent: 10,
      received: 9,
      throughput,
      p50Ms,
      p95Ms: undefined,
      p99Ms: 200,
      errors: 1,
    });
    const [one, eight] = medianRuns([
      [run(1, 10, 90), run(8, 30, 400)],
      [run(1, 14, 80), run(8, 20, undefined)],
      [run(1, 12, 120), run(8, 40, 300)],
    ]);
    expect(one).toMatchObject({
      concurrency: 1,
      sent: 30,
      received: 27,
      throughput: 12,
      p50Ms: 90,
      errors: 3,
    });
    expect(one?.p95Ms).toBeUndefined();
    // A measure missing from a repeat is left out of its median, not counted as zero.
    expect(eight).toMatchObject({ concurrency: 8, throughput: 30, p50Ms: 350, p99Ms: 200 });
    expect(medianRuns([])).toEqual([]);
  });
});

describe("bench report and chart", () => {
  const run = (concurrency: number, throughput: number, p50Ms: number) => ({
    concurrency,
    sent: 10,
    received: 10,
    throughput,
    p50Ms,
    p95Ms: p50Ms * 2,
    p99Ms: p50Ms * 3,
  });
  const results = resultsWith({
    date: "2026-11-25T16:30:00.000Z",
    machine: { ...resultsWith({}).machine, loadAverageAtStart: [1.5, 2, 2.5] },
    options: { concurrency: [1, 8], duration: 8, catchup: 1000, scale: [100], skip: [] },
    raw: [run(1, 10, 100), run(8, 20, 400)],
    bridge: [run(1, 9, 110), run(8, 19, 420)],
    catchup: {
      messages: 1000,
      conversations: 8,
      sendSeconds: 50,
      rawReadSeconds: 2,
      bridgeReadySeconds: 1.5,
      bridgeAllOnWebSocketSeconds: 4,
    },
    tuning: { shipped: [run(8, 20, 400)], default: [run(8, 16, 500)] },
    scale: [
      {
        conversations: 10_000,
        firstStartSeconds: 1,
        idleRssMb: 120,
        activeRssMb: 150,
        restartSeconds: 3,
        restartCatchUpSeconds: 40,
        restartRssMb: 140,
        peakMb: 160,
        measured: false,
        slope: { peakKbPerConversation: 2, catchUpMsPerConversation: 4 },
      },
    ],
    notes: ["a note"],
  });

  it("prints bridge/raw and shipped/default ratios, catch-up, scale (saying what is extrapolated) and notes", () => {
    const report = formatReport(results);
    expect(report).toContain("| 1 | 10 | 9 | 0.9× | 100 ms | 110 ms | 1.1× |");
    expect(report).toContain("| 8 | 20 | 16 | 1.25× | 400 ms | 500 ms | 0.8× | – | – |");
    expect(report).toContain("Load average at start 1.5 / 2 / 2.5");
    expect(report).toContain("all on the WebSocket after 4 s (bridge/raw 2×)");
    expect(report).toContain(
      "| 10000 | 1 s | 120 MB | 150 MB | 3 s | 40 s | 140 MB | 160 MB | extrapolated (2 KB peak and 4 ms catch-up per conversation) |",
    );
    expect(report).toContain("Note: a note");
  });

  it("leaves out the raw/bridge table when the throughput phase was skipped", () => {
    const report = formatReport(resultsWith({ raw: [], bridge: [] }));
    expect(report).not.toContain("raw msg/s");
    expect(formatReport(results)).toContain("raw msg/s");
  });

  it("charts every series measured: shipped and default config, the repeats' spread, catch-up, RSS as a line", () => {
    const withRepeats: Results = {
      ...results,
      repeats: { raw: [[run(1, 8, 90)], [run(1, 12, 110)]], bridge: [], default: [], shipped: [] },
    };
    const svg = resultsChart(withRepeats);
    for (const text of [
      "1 conv.",
      "8 conv.",
      "load 1.5/2/2.5 at start, 1/1/1 at end",
      "raw, shipped config",
      "raw, default config",
      "Catch-up of 1000 messages",
      "Bridge memory by conversations (MB)",
      "160 (extrapolated)",
    ])
      expect(svg).toContain(text);
    // Two workload panels: raw and bridge at both concurrencies, shipped and default at 8 only; four swatches each.
    // The catch-up panel: three bars, three swatches. The line panel: three swatches. And the background.
    expect(svg.match(/<rect /g)).toHaveLength(2 * (6 + 4) + 6 + 3 + 1);
    // The raw repeats' spread at 1 conv. (8 to 12 msg/s, 90 to 110 ms) is a whisker on the throughput and p50 panels.
    expect(svg.match(/stroke="#222"/g)).toHaveLength(2);
    // Three lines of one extrapolated point each: hollow markers.
    expect(svg.match(/<circle [^>]*fill="#ffffff"/g)).toHaveLength(3);
  });

  it("takes the spread of a measure over the repeats, none from a single value", () => {
    const repeats = [[run(1, 10, 100), run(8, 20, 400)], [run(1, 14, 90)], [run(1, 9, 120)]];
    expect(spreadOf(repeats, 1, (r) => r.throughput)).toEqual([9, 14]);
    expect(spreadOf(repeats, 1, (r) => r.p50Ms)).toEqual([90, 120]);
    expect(spreadOf(repeats, 8, (r) => r.throughput)).toBeUndefined();
    expect(spreadOf([], 1, (r) => r.throughput)).toBeUndefined();
  });

  it("puts round ticks on the y axis, the last at or above the largest value", () => {
    expect(niceTicks(20)).toEqual([0, 5, 10, 15, 20]);
    expect(niceTicks(37)).toEqual([0, 10, 20, 30, 40]);
    expect(niceTicks(0.42)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5]);
    expect(niceTicks(1234)).toEqual([0, 500, 1000, 1500]);
    expect(niceTicks(0)).toEqual([0, 1]);
  });

  it("draws one bar per value with its label, escapes text, and leaves missing values out", () => {
    const svg = chartSvg(
      [
        {
          title: "Throughput <msg>",
          unit: "messages/s",
          series: ["raw", "bridge"],
          groups: [
            { label: "1 conv.", values: [10, 9] },
            { label: "8 conv.", values: [20, undefined] },
          ],
        },
      ],
      "caption & more",
    );
    expect(svg.startsWith("<svg xmlns=")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect(svg).toContain("Throughput &lt;msg&gt;");
    expect(svg).toContain("caption &amp; more");
    // 3 bars + 2 legend swatches + the background
    expect(svg.match(/<rect /g)).toHaveLength(6);
    // The tallest bar (20, the top tick) fills the plot height (190 px); the y axis has five ticks, 0 to 20.
    expect(svg).toMatch(/height="190\.0"/);
    for (const tick of ["0", "5", "10", "15", "20"])
      expect(svg).toContain(`text-anchor="end">${tick}</text>`);
  });
});

describe("bench runner", () => {
  const phase = (name: string, run: Phase["run"], parts?: string[]): Phase => ({
    name,
    ...(parts ? { parts } : {}),
    run,
  });

  it("keeps the --skip names the CLI has always had, and refuses an unknown one with the list", () => {
    const names = skippableNames(PHASES);
    for (const name of ["raw", "bridge", "catchup", "tuning", "scale"]) expect(names).toContain(name);
    expect(new Set(names).size).toBe(names.length);
    expect(skipList(names)("raw,,scale")).toEqual(["raw", "scale"]);
    expect(() => skipList(names)("raw,catch-up")).toThrow(/unknown phase "catch-up"; known: .*catchup/);
  });

  it("skips a phase by its name or when every one of its parts is skipped", () => {
    const parted = phase("throughput", async () => {}, ["raw", "bridge"]);
    expect(phaseSkipped(parted, ["raw"])).toBe(false);
    expect(phaseSkipped(parted, ["raw", "bridge"])).toBe(true);
    expect(phaseSkipped(parted, ["throughput"])).toBe(true);
    expect(
      phaseSkipped(
        phase("scale", async () => {}),
        ["raw"],
      ),
    ).toBe(false);
  });

  it("runs the phases in order, notes a failure and goes on, stops the shared bridge after each", async () => {
    const events: string[] = [];
    // Only what the runner itself touches; the phases below use nothing else.
    const bench = {
      options: { skip: ["skipped"] },
      results: { notes: [] as string[] },
      bridge: { stop: async () => void events.push("bridge stopped") },
      log: () => {},
    } as unknown as Bench;
    const failed = await runPhases(
      [
        phase("first", async () => void events.push("first")),
        phase("broken", async () => {
          events.push("broken");
          throw new Error("Synapse went away\nstack trace");
        }),
        phase("skipped", async () => void events.push("skipped")),
        phase("last", async () => void events.push("last")),
      ],
      bench,
    );
    expect(failed).toEqual(["broken"]);
    expect(events).toEqual(["first", "bridge stopped", "broken", "bridge stopped", "last", "bridge stopped"]);
    expect(bench.results.notes).toEqual(["broken: failed: Synapse went away"]);
  });
});
