// The bridge's rules and dashboard against the bridge's REAL metrics registry (the one its service serves at
// /metrics, bridge/src/service/metrics.ts): every nova_bridge_* name they read must be exposed, and promtool must
// fire the bridge alerts on the label sets the bridge actually writes.

import { ServiceMetrics } from "@nova-matrix/bridge/metrics";
import { beforeAll, describe, expect, it } from "vitest";
import { type RenderedMonitoring, renderedMonitoring } from "../testing/rendered-monitoring.ts";
import { asSeries, parseExposition, type Sample } from "./exposition.ts";
import { BRIDGE_METRICS, metricNamesIn } from "./metrics.ts";
import { promtoolCheckAndTest } from "./promtool.ts";

/** A bridge whose sync loop last committed 10 minutes ago and whose sends to Synapse have started failing. */
async function exposition(): Promise<Sample[]> {
  const metrics = new ServiceMetrics(() => ({
    running: true,
    caughtUp: true,
    lastSyncAt: Date.now() - 600_000,
    pollTimeoutMs: 30_000,
  }));
  metrics.sendErrors.inc({ kind: "text", code: "M_UNKNOWN" });
  metrics.sendDuration.startTimer({ kind: "text" })();
  return parseExposition(await metrics.registry.metrics());
}

describe("alert rules and dashboard against the bridge's real metrics registry", () => {
  // What the staging stack renders (prod renders the same rules for its own namespace; rules.test.ts checks both).
  let rendered: RenderedMonitoring;
  beforeAll(async () => {
    rendered = await renderedMonitoring("staging");
  });

  it("exposes every bridge metric a rule or the dashboard reads", async () => {
    const exposed = new Set((await exposition()).map((sample) => sample.name));
    const used = [
      ...rendered.groups.flatMap((group) => group.rules.flatMap((rule) => metricNamesIn(rule.expr))),
      ...rendered.dashboardQueries.flatMap(metricNamesIn),
    ].filter((name) => name.startsWith("nova_bridge_"));
    expect(used.length).toBeGreaterThanOrEqual(3);
    expect(used.filter((name) => !exposed.has(name))).toEqual([]);
    expect(BRIDGE_METRICS.filter((name) => !exposed.has(name))).toEqual([]);
  });

  it("fire BridgeSyncLagging and BridgeSendErrors on the bridge's real label sets", async () => {
    const samples = await exposition();
    const { groups } = rendered;
    const rule = (name: string) => {
      const found = groups.flatMap((g) => g.rules).find((r) => r.alert === name);
      if (!found) throw new Error(name);
      return found;
    };
    const series = (name: string, values: string) =>
      samples
        .filter((sample) => sample.name === name)
        .map((sample) => asSeries(sample, { job: rendered.bridgeJob }, values));
    const lag = series("nova_bridge_sync_lag_seconds", "570x15");
    const errors = series("nova_bridge_send_errors_total", "0+60x20");
    expect(lag.length).toBe(1);
    expect(errors.length).toBe(1);
    const fires = (alertname: string, evalTime: string) => ({
      eval_time: evalTime,
      alertname,
      exp_alerts: [
        {
          exp_labels: { ...rule(alertname).labels, job: rendered.bridgeJob },
          exp_annotations: { ...rule(alertname).annotations },
        },
      ],
    });
    const { test } = await promtoolCheckAndTest(groups, [
      {
        name: "the bridge's own series",
        interval: "1m",
        input_series: [...lag, ...errors],
        alert_rule_test: [fires("BridgeSyncLagging", "10m"), fires("BridgeSendErrors", "12m")],
      },
    ]);
    expect(test.ok, test.output).toBe(true);
  });
});
