import { readFile } from "node:fs/promises";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { describe, expect, it } from "vitest";
import { unknownFields } from "../testing/strict-fields.ts";
import {
  gmpRulesSchema,
  podMonitoringSchema,
  prometheusRuleSchema,
  ruleSchema,
  serviceMonitorSchema,
} from "./crd-schemas.ts";
import { bridgeDashboard, dashboardConfigMap, dashboardQueries } from "./dashboard.ts";
import { DECLARED_METRICS, metricNamesIn } from "./metrics.ts";
import { type PromtoolTestGroup, promtoolCheckAndTest } from "./promtool.ts";
import { type AlertRule, type AlertRuleInput, alertRuleGroups, RUNBOOK_SECTIONS } from "./rules.ts";
import { gmpRules, podMonitoring, prometheusRule, serviceMonitor } from "./scrape.ts";

const input: AlertRuleInput = {
  synapseJob: "matrix-synapse",
  bridgeJob: "nova-matrix-bridge",
  namespace: "nova-staging",
  synapseDeployment: "matrix-synapse",
  mediaClaim: "matrix-synapse-data",
  runbookBaseUrl: "https://example.invalid/nova-matrix/docs/runbooks.md",
};
const groups = alertRuleGroups(input);
const rules = groups.flatMap((group) => group.rules);
const byName = (name: string): AlertRule => {
  const found = rules.find((rule) => rule.alert === name);
  if (!found) throw new Error(`no rule ${name}`);
  return found;
};

/** The alert as promtool reports it: the rule's labels and annotations plus the series' labels. */
const fires = (alertname: string, evalTime: string, seriesLabels: Record<string, string>) => ({
  eval_time: evalTime,
  alertname,
  exp_alerts: [
    {
      exp_labels: { ...byName(alertname).labels, ...seriesLabels },
      exp_annotations: { ...byName(alertname).annotations },
    },
  ],
});
const silent = (alertname: string, evalTime: string) => ({ eval_time: evalTime, alertname, exp_alerts: [] });

const S = 'job="matrix-synapse"';
const B = 'job="nova-matrix-bridge"';
const volume = 'namespace="nova-staging",persistentvolumeclaim="matrix-synapse-data"';
const sendBucket = (le: string, values: string) => ({
  series: `synapse_http_server_response_time_seconds_bucket{${S},servlet="RoomSendEventRestServlet",code="200",method="PUT",le="${le}"}`,
  values,
});
const scheduleBucket = (le: string, values: string) => ({
  series: `synapse_storage_schedule_time_bucket{${S},le="${le}"}`,
  values,
});
const group = (
  name: string,
  series: PromtoolTestGroup["input_series"],
  tests: PromtoolTestGroup["alert_rule_test"],
) => ({
  name,
  interval: "1m",
  input_series: series,
  alert_rule_test: tests,
});

/** For each alert: sample series on which it must fire, and healthy ones on which it must stay silent. */
const promtoolTests: PromtoolTestGroup[] = [
  group(
    "Synapse stops answering scrapes",
    [{ series: `up{${S},instance="10.0.0.7:9000"}`, values: "1 1 0x10" }],
    [
      silent("SynapseDown", "2m"),
      fires("SynapseDown", "10m", { job: "matrix-synapse", instance: "10.0.0.7:9000" }),
    ],
  ),
  group(
    "Synapse target vanished",
    [{ series: 'up{job="something-else"}', values: "1x10" }],
    [fires("SynapseDown", "5m", { job: "matrix-synapse" })],
  ),
  group(
    "Synapse healthy",
    [{ series: `up{${S},instance="10.0.0.7:9000"}`, values: "1x15" }],
    [silent("SynapseDown", "10m")],
  ),
  group(
    "no ready Synapse pod",
    [
      {
        series:
          'kube_deployment_status_replicas_available{namespace="nova-staging",deployment="matrix-synapse"}',
        values: "1 0x10",
      },
    ],
    [
      silent("SynapseNotReady", "3m"),
      fires("SynapseNotReady", "8m", { namespace: "nova-staging", deployment: "matrix-synapse" }),
    ],
  ),
  group(
    "one ready Synapse pod",
    [
      {
        series:
          'kube_deployment_status_replicas_available{namespace="nova-staging",deployment="matrix-synapse"}',
        values: "1x10",
      },
    ],
    [silent("SynapseNotReady", "8m")],
  ),
  group(
    "database unreachable: every send answers 500",
    [{ series: `synapse_http_server_responses_total{${S},code="500",method="PUT"}`, values: "0+60x20" }],
    [fires("SynapseDatabaseErrors", "12m", { job: "matrix-synapse" })],
  ),
  group(
    "404s are not database errors",
    [{ series: `synapse_http_server_responses_total{${S},code="404",method="GET"}`, values: "0+60x20" }],
    [silent("SynapseDatabaseErrors", "12m"), silent("SynapseHigh5xxRate", "12m")],
  ),
  group(
    "database pool saturated: all threads busy, queries wait about a second",
    [
      { series: `synapse_threadpool_working_threads{${S},name="database-master"}`, values: "5x25" },
      { series: `synapse_threadpool_max_threads{${S},name="database-master"}`, values: "5x25" },
      scheduleBucket("0.5", "0x25"),
      scheduleBucket("1", "0+60x25"),
      scheduleBucket("+Inf", "0+60x25"),
    ],
    [
      silent("SynapseDatabasePoolSaturated", "5m"),
      fires("SynapseDatabasePoolSaturated", "20m", { job: "matrix-synapse" }),
    ],
  ),
  group(
    "database pool busy but fast",
    [
      { series: `synapse_threadpool_working_threads{${S},name="database-master"}`, values: "5x25" },
      { series: `synapse_threadpool_max_threads{${S},name="database-master"}`, values: "5x25" },
      scheduleBucket("0.005", "0+60x25"),
      scheduleBucket("+Inf", "0+60x25"),
    ],
    [silent("SynapseDatabasePoolSaturated", "20m")],
  ),
  group(
    "14% of responses are 502",
    [
      { series: `synapse_http_server_responses_total{${S},code="200",method="GET"}`, values: "0+60x20" },
      { series: `synapse_http_server_responses_total{${S},code="502",method="GET"}`, values: "0+10x20" },
    ],
    [fires("SynapseHigh5xxRate", "12m", { job: "matrix-synapse" }), silent("SynapseDatabaseErrors", "12m")],
  ),
  group(
    "1.6% of responses are 502",
    [
      { series: `synapse_http_server_responses_total{${S},code="200",method="GET"}`, values: "0+60x20" },
      { series: `synapse_http_server_responses_total{${S},code="502",method="GET"}`, values: "0+1x20" },
    ],
    [silent("SynapseHigh5xxRate", "12m")],
  ),
  group(
    "sends take over 2 s",
    [sendBucket("1", "0x40"), sendBucket("2.5", "0+60x40"), sendBucket("+Inf", "0+60x40")],
    [
      silent("SynapseSlowEventPersistence", "9m"),
      fires("SynapseSlowEventPersistence", "30m", { job: "matrix-synapse" }),
    ],
  ),
  group(
    "sends take under 100 ms",
    [sendBucket("0.1", "0+60x40"), sendBucket("+Inf", "0+60x40")],
    [silent("SynapseSlowEventPersistence", "30m")],
  ),
  group(
    "media volume 90% full",
    [
      { series: `kubelet_volume_stats_available_bytes{${volume}}`, values: "10x30" },
      { series: `kubelet_volume_stats_capacity_bytes{${volume}}`, values: "100x30" },
    ],
    [
      fires("SynapseMediaVolumeFillingUp", "20m", {
        namespace: "nova-staging",
        persistentvolumeclaim: "matrix-synapse-data",
      }),
      silent("SynapseMediaVolumeAlmostFull", "20m"),
    ],
  ),
  group(
    "media volume 97% full",
    [
      { series: `kubelet_volume_stats_available_bytes{${volume}}`, values: "3x30" },
      { series: `kubelet_volume_stats_capacity_bytes{${volume}}`, values: "100x30" },
    ],
    [
      fires("SynapseMediaVolumeAlmostFull", "10m", {
        namespace: "nova-staging",
        persistentvolumeclaim: "matrix-synapse-data",
      }),
    ],
  ),
  group(
    "media volume half empty",
    [
      { series: `kubelet_volume_stats_available_bytes{${volume}}`, values: "50x30" },
      { series: `kubelet_volume_stats_capacity_bytes{${volume}}`, values: "100x30" },
    ],
    [silent("SynapseMediaVolumeFillingUp", "20m"), silent("SynapseMediaVolumeAlmostFull", "20m")],
  ),
  group(
    "bridge sync 2 minutes behind",
    [{ series: `nova_bridge_sync_lag_seconds{${B},pod="bridge-0"}`, values: "120x15" }],
    [fires("BridgeSyncLagging", "10m", { job: "nova-matrix-bridge" })],
  ),
  group(
    "bridge sync current",
    [{ series: `nova_bridge_sync_lag_seconds{${B},pod="bridge-0"}`, values: "2x15" }],
    [silent("BridgeSyncLagging", "10m")],
  ),
  group(
    "bridge fails 0.1 sends/s",
    [{ series: `nova_bridge_send_errors_total{${B},pod="bridge-0"}`, values: "0+6x20" }],
    [fires("BridgeSendErrors", "12m", { job: "nova-matrix-bridge" })],
  ),
  group(
    "bridge fails one send a minute",
    [{ series: `nova_bridge_send_errors_total{${B},pod="bridge-0"}`, values: "0+1x20" }],
    [silent("BridgeSendErrors", "12m")],
  ),
];

describe("alert rules", () => {
  it("pass promtool's check and fire exactly on the sample series that show each problem", async () => {
    const { check, test } = await promtoolCheckAndTest(groups, promtoolTests);
    expect(check.output).toContain("SUCCESS");
    expect(check.ok, check.output).toBe(true);
    expect(test.ok, test.output).toBe(true);
    expect(test.output).toContain("SUCCESS");
  });

  it("fail promtool's test when an expectation is wrong (the harness can fail)", async () => {
    const wrong = group(
      "wrong",
      [{ series: `up{${S},instance="a"}`, values: "1x15" }],
      [fires("SynapseDown", "10m", { job: "matrix-synapse", instance: "a" })],
    );
    const { test } = await promtoolCheckAndTest(groups, [wrong]);
    expect(test.ok).toBe(false);
    expect(test.output).toContain("SynapseDown");
  });

  it("test every alert both firing and silent", () => {
    const cases = promtoolTests.flatMap((g) => g.alert_rule_test);
    for (const rule of rules) {
      const own = cases.filter((c) => c.alertname === rule.alert);
      expect(
        own.some((c) => c.exp_alerts.length > 0),
        `${rule.alert} has no firing case`,
      ).toBe(true);
      expect(
        own.some((c) => c.exp_alerts.length === 0),
        `${rule.alert} has no silent case`,
      ).toBe(true);
    }
  });

  it("cover the problems the operations issue names", () => {
    expect(rules.map((rule) => rule.alert).sort()).toEqual(Object.keys(RUNBOOK_SECTIONS).sort());
  });

  it("each have a summary and a runbook link to a section that exists in docs/runbooks.md", async () => {
    const runbook = await readFile(new URL("../../docs/runbooks.md", import.meta.url), "utf8");
    const anchors = new Set(
      [...runbook.matchAll(/^#{2,4} (.+)$/gm)].map((m) =>
        (m[1] ?? "")
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, "")
          .replace(/ /g, "-"),
      ),
    );
    for (const rule of rules) {
      ruleSchema.parse(rule);
      expect(rule.annotations.summary.length).toBeGreaterThan(10);
      const anchor = rule.annotations.runbook_url.split("#")[1] ?? "";
      expect(rule.annotations.runbook_url.startsWith(`${input.runbookBaseUrl}#`)).toBe(true);
      expect(anchors.has(anchor), `docs/runbooks.md has no heading for #${anchor} (${rule.alert})`).toBe(
        true,
      );
    }
  });

  it("read only declared metrics (the real-Synapse test checks the Synapse ones exist)", () => {
    const used = [
      ...rules.flatMap((rule) => metricNamesIn(rule.expr)),
      ...Object.values(dashboardQueries(input)).flatMap(metricNamesIn),
    ];
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !DECLARED_METRICS.has(name))).toEqual([]);
  });
});

describe("metricNamesIn", () => {
  it("finds the metrics and skips functions, labels, durations and keywords", () => {
    expect(
      metricNamesIn(
        'sum by (job, le) (rate(a_total{job="x",code=~"5.."}[5m])) / on (job) group_left(le) b > 0.5 and absent(c{d="e"}) or up',
      ),
    ).toEqual(["a_total", "b", "c", "up"]);
  });
});

const target = {
  name: "matrix-synapse",
  namespace: "nova-staging",
  labels: { "app.kubernetes.io/part-of": "nova-matrix" },
  selector: { app: "matrix-synapse" },
  port: "metrics",
  path: "/_synapse/metrics",
  interval: "30s",
};

describe("monitoring objects", () => {
  it("ServiceMonitor: valid against the Prometheus Operator CRD, no unknown field, job named like the PodMonitoring", () => {
    const object = serviceMonitor(target);
    new ServiceMonitor(object).validate();
    expect(unknownFields(object, (data) => ServiceMonitor.prototype.validate.call(data))).toEqual([]);
    serviceMonitorSchema.parse(object);
    expect(object.metadata?.name).toBe(podMonitoring(target).metadata.name);
    expect(object.spec.endpoints?.[0]).toMatchObject({ port: "metrics", path: "/_synapse/metrics" });
  });

  it("PodMonitoring: the GMP shape, no unknown field", () => {
    const object = podMonitoring(target);
    podMonitoringSchema.parse(object);
    expect(object.spec.selector.matchLabels).toEqual({ app: "matrix-synapse" });
  });

  it("PrometheusRule and GMP Rules carry the same groups and validate strictly", () => {
    const meta = { name: "nova-matrix-alerts", namespace: "nova-staging", labels: target.labels, groups };
    const operator = prometheusRule(meta);
    new PrometheusRule(operator).validate();
    expect(unknownFields(operator, (data) => PrometheusRule.prototype.validate.call(data))).toEqual([]);
    prometheusRuleSchema.parse(operator);
    const gmp = gmpRules(meta);
    gmpRulesSchema.parse(gmp);
    expect(operator.spec.groups).toEqual(gmp.spec.groups);
  });

  it("the strict check rejects an unknown field", () => {
    const object = serviceMonitor(target) as unknown as { spec: Record<string, unknown> };
    object.spec.endpoint = [];
    expect(() => serviceMonitorSchema.parse(object)).toThrow(/endpoint/);
  });

  it("the dashboard ConfigMap carries the sidecar label and parseable JSON", () => {
    const dashboard = bridgeDashboard(input);
    const map = dashboardConfigMap({
      name: "nova-matrix-bridge-dashboard",
      namespace: "nova-staging",
      labels: {},
      dashboard,
    });
    new ConfigMap(map).validate();
    expect(unknownFields(map, (data) => ConfigMap.prototype.validate.call(data))).toEqual([]);
    expect(map.metadata?.labels).toMatchObject({ grafana_dashboard: "1" });
    const json = JSON.parse(map.data?.["nova-matrix-bridge.json"] ?? "") as typeof dashboard;
    expect(json.panels.flatMap((p) => p.targets.map((t) => t.expr))).toEqual(
      Object.values(dashboardQueries(input)),
    );
  });
});
