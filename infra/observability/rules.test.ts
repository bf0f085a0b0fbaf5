import { readFile } from "node:fs/promises";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { beforeAll, describe, expect, it } from "vitest";
import { DATABASE_BACKUP_JOB, MEDIA_BACKUP_JOB } from "../backup/plan.ts";
import { DATA_PVC_NAME, SYNAPSE_NAME } from "../synapse/deployment-spec.ts";
import { type RenderedMonitoring, renderedMonitoring } from "../testing/rendered-monitoring.ts";
import { unknownFields } from "../testing/strict-fields.ts";
import {
  gmpClusterRulesSchema,
  gmpRulesSchema,
  podMonitoringSchema,
  prometheusRuleSchema,
  ruleSchema,
  serviceMonitorSchema,
} from "./crd-schemas.ts";
import { bridgeDashboard, dashboardConfigMap, dashboardQueries } from "./dashboard.ts";
import { DECLARED_METRICS, metricNamesIn } from "./metrics.ts";
import { expectations, type PromtoolTestGroup, promtoolCheckAndTest } from "./promtool.ts";
import {
  type AlertRule,
  type AlertRuleInput,
  alertRuleGroups,
  RUNBOOK_SECTIONS,
  ruleGroupsByScope,
  THRESHOLDS,
  type WorkerRuleInput,
  workerRules,
} from "./rules.ts";
import { gmpClusterRules, gmpRules, podMonitoring, prometheusRule, serviceMonitor } from "./scrape.ts";

// The rules as each stack renders them (GMP's Rules + ClusterRules), read back from the render.
const rendered: Record<string, RenderedMonitoring> = {};
beforeAll(async () => {
  const [staging, prod] = await Promise.all([renderedMonitoring("staging"), renderedMonitoring("prod")]);
  Object.assign(rendered, { staging, prod });
});
const stack = (name: string): RenderedMonitoring => {
  const found = rendered[name];
  if (!found) throw new Error(`stack ${name} was not rendered`);
  return found;
};

const byName = (m: RenderedMonitoring, name: string): AlertRule => {
  const found = m.groups.flatMap((group) => group.rules).find((rule) => rule.alert === name);
  if (!found) throw new Error(`stack ${m.stack} renders no rule ${name}`);
  return found;
};

/**
 * For each alert of a rendered stack: sample series on which it must fire, and healthy ones on which it must stay
 * silent, labelled with that stack's jobs, namespace, Deployment and claim.
 */
function promtoolTests(m: RenderedMonitoring): PromtoolTestGroup[] {
  const { fires, silent, group } = expectations(m.groups, m.stack);
  const S = `job="${m.synapseJob}"`;
  const B = `job="${m.bridgeJob}"`;
  const synapseJob = { job: m.synapseJob };
  const bridgeJob = { job: m.bridgeJob };
  const ns = m.namespace;
  const volume = `namespace="${ns}",persistentvolumeclaim="${DATA_PVC_NAME}"`;
  const volumeLabels = { namespace: ns, persistentvolumeclaim: DATA_PVC_NAME };
  const replicas = `kube_deployment_status_replicas_available{namespace="${ns}",deployment="${SYNAPSE_NAME}"}`;
  const sendBucket = (le: string, values: string) => ({
    series: `synapse_http_server_response_time_seconds_bucket{${S},servlet="RoomSendEventRestServlet",code="200",method="PUT",le="${le}"}`,
    values,
  });
  const scheduleBucket = (le: string, values: string) => ({
    series: `synapse_storage_schedule_time_bucket{${S},le="${le}"}`,
    values,
  });
  return [
    group(
      "Synapse stops answering scrapes",
      [{ series: `up{${S},instance="10.0.0.7:9000"}`, values: "1 1 0x10" }],
      [
        silent("SynapseDown", "2m"),
        fires("SynapseDown", "10m", { ...synapseJob, instance: "10.0.0.7:9000" }),
      ],
    ),
    group(
      "Synapse target vanished",
      [{ series: 'up{job="something-else"}', values: "1x10" }],
      [fires("SynapseDown", "5m", synapseJob)],
    ),
    group(
      "Synapse healthy",
      [{ series: `up{${S},instance="10.0.0.7:9000"}`, values: "1x15" }],
      [silent("SynapseDown", "10m")],
    ),
    group(
      "no ready Synapse pod",
      [{ series: replicas, values: "1 0x10" }],
      [
        silent("SynapseNotReady", "3m"),
        fires("SynapseNotReady", "8m", { namespace: ns, deployment: SYNAPSE_NAME }),
      ],
    ),
    group(
      "no ready pod of a same-named Deployment in another namespace",
      [
        {
          series: `kube_deployment_status_replicas_available{namespace="elsewhere",deployment="${SYNAPSE_NAME}"}`,
          values: "0x10",
        },
        { series: replicas, values: "1x10" },
      ],
      [silent("SynapseNotReady", "8m")],
    ),
    group("one ready Synapse pod", [{ series: replicas, values: "1x10" }], [silent("SynapseNotReady", "8m")]),
    group(
      "database unreachable: every send answers 500",
      [{ series: `synapse_http_server_responses_total{${S},code="500",method="PUT"}`, values: "0+60x20" }],
      [fires("SynapseDatabaseErrors", "12m", synapseJob)],
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
        fires("SynapseDatabasePoolSaturated", "20m", synapseJob),
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
      [fires("SynapseHigh5xxRate", "12m", synapseJob), silent("SynapseDatabaseErrors", "12m")],
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
      [silent("SynapseSlowEventPersistence", "9m"), fires("SynapseSlowEventPersistence", "30m", synapseJob)],
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
        fires("SynapseMediaVolumeFillingUp", "20m", volumeLabels),
        silent("SynapseMediaVolumeAlmostFull", "20m"),
      ],
    ),
    group(
      "media volume 97% full",
      [
        { series: `kubelet_volume_stats_available_bytes{${volume}}`, values: "3x30" },
        { series: `kubelet_volume_stats_capacity_bytes{${volume}}`, values: "100x30" },
      ],
      [fires("SynapseMediaVolumeAlmostFull", "10m", volumeLabels)],
    ),
    group(
      "media volume half empty",
      [
        { series: `kubelet_volume_stats_available_bytes{${volume}}`, values: "50x30" },
        { series: `kubelet_volume_stats_capacity_bytes{${volume}}`, values: "100x30" },
      ],
      [silent("SynapseMediaVolumeFillingUp", "20m"), silent("SynapseMediaVolumeAlmostFull", "20m")],
    ),
    ...(m.workers ? workerTests(m, m.workers) : []),
    ...backupTests(m),
    group(
      "bridge sync 2 minutes behind",
      [{ series: `nova_bridge_sync_lag_seconds{${B},pod="bridge-0"}`, values: "120x15" }],
      [fires("BridgeSyncLagging", "10m", bridgeJob)],
    ),
    group(
      "bridge sync current",
      [{ series: `nova_bridge_sync_lag_seconds{${B},pod="bridge-0"}`, values: "2x15" }],
      [silent("BridgeSyncLagging", "10m")],
    ),
    group(
      "bridge fails 0.1 sends/s",
      [{ series: `nova_bridge_send_errors_total{${B},pod="bridge-0"}`, values: "0+6x20" }],
      [fires("BridgeSendErrors", "12m", bridgeJob)],
    ),
    group(
      "bridge fails one send a minute",
      [{ series: `nova_bridge_send_errors_total{${B},pod="bridge-0"}`, values: "0+1x20" }],
      [silent("BridgeSendErrors", "12m")],
    ),
  ];
}

/** The backup alerts, for each CronJob the stack renders, on kube-state-metrics series of its namespace. */
function backupTests(m: RenderedMonitoring): PromtoolTestGroup[] {
  const { fires, silent, group } = expectations(m.groups, m.stack);
  const ns = m.namespace;
  const hours = 3600;
  const cronSeries = (metric: string, cronjob: string, values: string, namespace = ns) => ({
    series: `${metric}{namespace="${namespace}",cronjob="${cronjob}"}`,
    values,
  });
  const lastSuccess = (cronjob: string, secondsBeforeStart: number, namespace = ns) =>
    cronSeries("kube_cronjob_status_last_successful_time", cronjob, `${-secondsBeforeStart}x40`, namespace);
  const created = (cronjob: string, secondsBeforeStart: number) =>
    cronSeries("kube_cronjob_created", cronjob, `${-secondsBeforeStart}x40`);
  const job = (owner: string, failed: string) => {
    const jobName = `${owner}-29400000`;
    const labels = `namespace="${ns}",job_name="${jobName}"`;
    return {
      jobName,
      series: [
        { series: `kube_job_failed{${labels},condition="true"}`, values: failed },
        { series: `kube_job_failed{${labels},condition="false"}`, values: "0x15" },
        {
          series: `kube_job_owner{${labels},owner_kind="CronJob",owner_name="${owner}",owner_is_controller="true"}`,
          values: "1x15",
        },
      ],
    };
  };
  return m.backups.flatMap(({ cronJob, periodSeconds }) => {
    const limit = periodSeconds + THRESHOLDS.backupMarginSeconds;
    const cron = { namespace: ns, cronjob: cronJob };
    const failed = job(cronJob, "0 0 1x15");
    return [
      group(
        `${cronJob}: the last success passes the period + margin 10 minutes into the test`,
        [created(cronJob, 30 * 24 * hours), lastSuccess(cronJob, limit - 600)],
        [
          silent("NovaMatrixBackupMissed", "20m"),
          fires("NovaMatrixBackupMissed", "30m", cron),
          silent("NovaMatrixBackupJobFailed", "30m"),
        ],
      ),
      group(
        `${cronJob}: never succeeded since it was created two periods + margin ago`,
        [created(cronJob, 2 * limit)],
        [fires("NovaMatrixBackupMissed", "20m", cron)],
      ),
      group(
        `${cronJob}: succeeded 2 hours ago`,
        [created(cronJob, 30 * 24 * hours), lastSuccess(cronJob, 2 * hours)],
        [silent("NovaMatrixBackupMissed", "30m")],
      ),
      group(
        `${cronJob}: created an hour ago, no run yet`,
        [created(cronJob, hours)],
        [silent("NovaMatrixBackupMissed", "30m")],
      ),
      group(
        `${cronJob}: stale only in another namespace and on a CronJob of someone else`,
        [
          lastSuccess(cronJob, 2 * hours),
          lastSuccess(cronJob, 3 * limit, "elsewhere"),
          lastSuccess("someone-elses-cronjob", 3 * limit),
        ],
        [silent("NovaMatrixBackupMissed", "30m")],
      ),
      group(`${cronJob}: a run gives up`, failed.series, [
        silent("NovaMatrixBackupJobFailed", "5m"),
        fires("NovaMatrixBackupJobFailed", "10m", {
          namespace: ns,
          job_name: failed.jobName,
          condition: "true",
        }),
      ]),
      group(`${cronJob}: a run succeeds`, job(cronJob, "0x15").series, [
        silent("NovaMatrixBackupJobFailed", "10m"),
      ]),
      group(
        `${cronJob}: a Job of someone else's CronJob gives up`,
        job("someone-elses-cronjob", "1x15").series,
        [silent("NovaMatrixBackupJobFailed", "10m")],
      ),
    ];
  });
}

/** Worker mode's alerts (and the request rules reaching the workers), on series labelled with the stack's jobs. */
function workerTests(m: RenderedMonitoring, workers: WorkerRuleInput): PromtoolTestGroup[] {
  const { fires, silent, group } = expectations(m.groups, m.stack);
  const [sync, client] = workers.replicatedJobs as [string, string];
  const writers = workers.streamWriters;
  const proxy = workers.proxyJob;
  const lastGroup = workers.groupJobs.at(-1) as string;
  const up = (job: string, instance: string, values: string) => ({
    series: `up{job="${job}",instance="${instance}"}`,
    values,
  });
  /** Every group up on two instances (the event persisters on as many as the stack runs), but those replaced. */
  const allUp = (replace: Record<string, PromtoolTestGroup["input_series"]> = {}) =>
    workers.groupJobs.flatMap(
      (job) =>
        replace[job] ??
        Array.from({ length: job === writers.job ? writers.count : 2 }, (_, i) =>
          up(job, `${job}-${i}`, "1x15"),
        ),
    );
  const connections = (job: string, values: string) => ({
    series: `synapse_replication_tcp_resource_total_connections{job="${job}",instance="${job}-0",server_name="chat.nova.com"}`,
    values,
  });
  const rdata = (job: string, values: string) => ({
    series: `synapse_replication_tcp_protocol_inbound_rdata_count_total{job="${job}",instance="${job}-0",stream_name="events",server_name="chat.nova.com"}`,
    values,
  });
  const persisted = (values: string) => ({
    series: `synapse_storage_events_persisted_events_total{job="${writers.job}",instance="${writers.job}-0",server_name="chat.nova.com"}`,
    values,
  });
  const servers = (backend: string, values: string) => ({
    series: `haproxy_backend_active_servers{job="${proxy}",instance="${proxy}-0",proxy="${backend}"}`,
    values,
  });
  const proxyUp = [up(proxy, `${proxy}-0`, "1x15"), up(proxy, `${proxy}-1`, "1x15")];
  return [
    group(
      "every instance of the client workers stops answering",
      allUp({ [client]: [up(client, "c0", "1 1 0x10"), up(client, "c1", "1 1 0x10")] }),
      [silent("SynapseWorkerGroupDown", "2m"), fires("SynapseWorkerGroupDown", "10m", { job: client })],
    ),
    group("a worker group has no target at all", allUp({ [lastGroup]: [] }), [
      fires("SynapseWorkerGroupDown", "5m", { job: lastGroup }),
    ]),
    group("every worker answers", allUp(), [
      silent("SynapseWorkerGroupDown", "10m"),
      silent("SynapseWorkerDown", "10m"),
      silent("SynapseStreamWriterDown", "10m"),
    ]),
    group(
      "one sync worker of two is down",
      allUp({ [sync]: [up(sync, "s0", "1x15"), up(sync, "s1", "1 1 0x10")] }),
      [
        silent("SynapseWorkerGroupDown", "10m"),
        silent("SynapseWorkerDown", "3m"),
        fires("SynapseWorkerDown", "10m", { job: sync, instance: "s1" }),
      ],
    ),
    group(
      "one event persister is down",
      allUp({
        [writers.job]: Array.from({ length: writers.count }, (_, i) =>
          up(writers.job, `w${i}`, i === 0 ? "1 1 0x10" : "1x15"),
        ),
      }),
      [
        silent("SynapseStreamWriterDown", "1m"),
        fires("SynapseStreamWriterDown", "10m", { job: writers.job }),
        silent("SynapseWorkerGroupDown", "10m"),
      ],
    ),
    group("no event persister has a target", allUp({ [writers.job]: [] }), [
      fires("SynapseStreamWriterDown", "5m", {}),
    ]),
    group(
      "Redis stops: every process loses its connection",
      [m.synapseJob, sync, writers.job].map((job) => connections(job, "1 1 0x10")),
      [
        silent("SynapseRedisDown", "2m"),
        fires("SynapseRedisDown", "10m", {}),
        silent("SynapseReplicationBroken", "10m"),
      ],
    ),
    group(
      "one process loses Redis, the others keep it",
      [connections(m.synapseJob, "1x15"), connections(sync, "1 1 0x10"), connections(writers.job, "1x15")],
      [
        fires("SynapseReplicationBroken", "10m", {
          job: sync,
          instance: `${sync}-0`,
          server_name: "chat.nova.com",
        }),
        silent("SynapseRedisDown", "10m"),
      ],
    ),
    group(
      "replication connected everywhere",
      [m.synapseJob, sync, writers.job].map((job) => connections(job, "1x15")),
      [silent("SynapseRedisDown", "10m"), silent("SynapseReplicationBroken", "10m")],
    ),
    group(
      "the sync worker stops receiving events while the persister stores them (Redis connected)",
      [
        ...[m.synapseJob, sync, writers.job].map((job) => connections(job, "1x25")),
        rdata(m.synapseJob, "0+60x25"),
        rdata(sync, "0+60x5 300x20"),
        persisted("0+60x25"),
      ],
      [
        silent("SynapseReplicationStalled", "8m"),
        fires("SynapseReplicationStalled", "22m", { job: sync, instance: `${sync}-0` }),
      ],
    ),
    group(
      "nothing is sent: no process receives events, none is behind",
      [rdata(m.synapseJob, "0x25"), rdata(sync, "0x25"), persisted("0x25")],
      [silent("SynapseReplicationStalled", "22m")],
    ),
    group(
      "Redis stops: the events stream stops everywhere, the Redis alert says it once",
      [
        ...[m.synapseJob, sync, writers.job].map((job) => connections(job, "1 0x25")),
        rdata(m.synapseJob, "0+60x2 120x23"),
        rdata(sync, "0+60x2 120x23"),
        persisted("0+60x25"),
      ],
      [silent("SynapseReplicationStalled", "22m"), fires("SynapseRedisDown", "22m", {})],
    ),
    group(
      "both proxy pods stop answering",
      [up(proxy, "p0", "1 1 0x10"), up(proxy, "p1", "1 1 0x10")],
      [silent("SynapseProxyDown", "2m"), fires("SynapseProxyDown", "10m", { job: proxy })],
    ),
    group(
      "the proxy has no target",
      [up(m.synapseJob, "main", "1x15")],
      [fires("SynapseProxyDown", "5m", { job: proxy })],
    ),
    group("the proxy runs", proxyUp, [silent("SynapseProxyDown", "10m")]),
    group(
      "the proxy's health checks fail on every client worker",
      [...proxyUp, servers("client", "2 2 0x10"), servers("sync", "2x15")],
      [
        silent("SynapseProxyNoServer", "2m"),
        fires("SynapseProxyNoServer", "10m", { job: proxy, instance: `${proxy}-0`, proxy: "client" }),
      ],
    ),
    group(
      "the proxy sees a server on every route",
      [servers("client", "1x15"), servers("sync", "2x15")],
      [silent("SynapseProxyNoServer", "10m")],
    ),
    group(
      "14% of the client workers' responses are 502 (the request rules read every process)",
      [
        {
          series: `synapse_http_server_responses_total{job="${client}",code="200",method="PUT"}`,
          values: "0+60x20",
        },
        {
          series: `synapse_http_server_responses_total{job="${client}",code="502",method="PUT"}`,
          values: "0+10x20",
        },
      ],
      [fires("SynapseHigh5xxRate", "12m", { job: client })],
    ),
  ];
}

describe.each(["staging", "prod"])("the alert rules stack %s renders", (name) => {
  it("pass promtool's check and fire exactly on the sample series that show each problem", async () => {
    const m = stack(name);
    const { check, test } = await promtoolCheckAndTest(m.groups, promtoolTests(m));
    expect(check.output).toContain("SUCCESS");
    expect(check.ok, check.output).toBe(true);
    expect(test.ok, test.output).toBe(true);
    expect(test.output).toContain("SUCCESS");
  });

  it("fail promtool's test when an expectation is wrong (the harness can fail)", async () => {
    const m = stack(name);
    const alert = byName(m, "SynapseDown");
    const wrong = {
      name: "wrong",
      interval: "1m",
      input_series: [{ series: `up{job="${m.synapseJob}",instance="a"}`, values: "1x15" }],
      alert_rule_test: [
        {
          eval_time: "10m",
          alertname: "SynapseDown",
          exp_alerts: [
            { exp_labels: { ...alert.labels, job: m.synapseJob }, exp_annotations: alert.annotations },
          ],
        },
      ],
    };
    const { test } = await promtoolCheckAndTest(m.groups, [wrong]);
    expect(test.ok).toBe(false);
    expect(test.output).toContain("SynapseDown");
  });

  it("test every alert both firing and silent", () => {
    const m = stack(name);
    const cases = promtoolTests(m).flatMap((g) => g.alert_rule_test);
    for (const rule of m.groups.flatMap((group) => group.rules)) {
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

  it("cover every alert the runbook documents, the cluster-scoped series in the ClusterRules", () => {
    const m = stack(name);
    // Worker mode's alerts exist where worker mode is on (prod), and only there; the backup alerts where backups are.
    const workerAlerts = workerRules(inputOf(m), WORKER_JOBS).rules.map((rule) => rule.alert);
    const backupAlerts = ["NovaMatrixBackupMissed", "NovaMatrixBackupJobFailed"];
    expect(m.groups.flatMap((group) => group.rules.map((rule) => rule.alert)).sort()).toEqual(
      Object.keys(RUNBOOK_SECTIONS)
        .filter((alert) => m.workers !== undefined || !workerAlerts.includes(alert))
        .filter((alert) => m.backups.length > 0 || !backupAlerts.includes(alert))
        .sort(),
    );
    expect(m.workers !== undefined).toBe(name === "prod");
    // What GMP can only evaluate cluster-wide is exactly what reads kube-state-metrics and kubelet series.
    const input = { ...inputOf(m), runbookBaseUrl: "https://example.invalid/runbooks.md" };
    const clusterAlerts = ruleGroupsByScope(input).cluster.flatMap((g) => g.rules.map((r) => r.alert));
    const clusterObject = m.run.objects.find((o) => o.kind === "ClusterRules") as unknown as {
      spec: { groups: { rules: { alert: string; expr: string }[] }[] };
    };
    const rendered = clusterObject.spec.groups.flatMap((g) => g.rules);
    expect(rendered.map((r) => r.alert)).toEqual(clusterAlerts);
    for (const rule of rendered) {
      const metrics = metricNamesIn(rule.expr);
      expect(metrics.length, rule.alert).toBeGreaterThan(0);
      for (const metric of metrics) expect(metric, rule.alert).toMatch(/^(kube_|kubelet_)/);
    }
  });

  it("watch exactly the backup CronJobs the stack renders, later than their deadlines allow a run to end", () => {
    const m = stack(name);
    const cronJobs = m.run.objects.filter((o) => o.kind === "CronJob") as unknown as {
      spec: { startingDeadlineSeconds: number; jobTemplate: { spec: { activeDeadlineSeconds: number } } };
    }[];
    // Staging dumps its in-cluster databases; prod's are on Cloud SQL, whose own backups hold them.
    expect([...m.backups].sort((a, b) => a.cronJob.localeCompare(b.cronJob))).toEqual(
      (name === "staging" ? [DATABASE_BACKUP_JOB, MEDIA_BACKUP_JOB] : [MEDIA_BACKUP_JOB]).map((cronJob) => ({
        cronJob,
        periodSeconds: 24 * 3600,
      })),
    );
    for (const c of cronJobs) {
      expect(THRESHOLDS.backupMarginSeconds).toBeGreaterThan(
        c.spec.startingDeadlineSeconds + c.spec.jobTemplate.spec.activeDeadlineSeconds,
      );
    }
  });

  it("each have a summary and a runbook link to a section that exists in docs/runbooks.md", async () => {
    const m = stack(name);
    const runbook = await readFile(new URL("../../docs/runbooks.md", import.meta.url), "utf8");
    const anchors = new Set(
      [...runbook.matchAll(/^#{2,4} (.+)$/gm)].map((match) =>
        (match[1] ?? "")
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, "")
          .replace(/ /g, "-"),
      ),
    );
    for (const rule of m.groups.flatMap((group) => group.rules)) {
      ruleSchema.parse(rule);
      expect(rule.annotations.summary.length).toBeGreaterThan(10);
      const [base, anchor = ""] = rule.annotations.runbook_url.split("#");
      expect(base).toMatch(/\/docs\/runbooks\.md$/);
      expect(anchors.has(anchor), `docs/runbooks.md has no heading for #${anchor} (${rule.alert})`).toBe(
        true,
      );
    }
  });

  it("and the dashboard read only declared metrics (the real-Synapse test checks the Synapse ones exist)", () => {
    const m = stack(name);
    const used = [
      ...m.groups.flatMap((group) => group.rules.flatMap((rule) => metricNamesIn(rule.expr))),
      ...m.dashboardQueries.flatMap(metricNamesIn),
    ];
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((metric) => !DECLARED_METRICS.has(metric))).toEqual([]);
  });

  it("scrape the workloads the stack runs: selectors match the pod labels, ports are named on the containers", () => {
    const m = stack(name);
    const workloads = m.run.objects.filter(
      (o) => o.kind === "Deployment" || o.kind === "StatefulSet",
    ) as unknown as {
      spec: {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: { ports?: { name?: string }[] }[] };
        };
      };
    }[];
    const monitorings = m.run.objects.filter((o) => o.kind === "PodMonitoring") as unknown as {
      metadata: { name: string };
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    }[];
    // A job per workload: Synapse (its main process in worker mode), the bridge, and each worker group and the proxy.
    expect(monitorings.map((p) => p.metadata.name).sort()).toEqual(
      [m.bridgeJob, m.synapseJob, ...(m.workers ? [...m.workers.groupJobs, m.workers.proxyJob] : [])].sort(),
    );
    for (const monitoring of monitorings) {
      const selected = workloads.filter((d) =>
        Object.entries(monitoring.spec.selector.matchLabels).every(
          ([key, value]) => d.spec.template.metadata.labels[key] === value,
        ),
      );
      expect(selected, monitoring.metadata.name).toHaveLength(1);
      const portNames = selected[0]?.spec.template.spec.containers.flatMap((c) =>
        (c.ports ?? []).map((p) => p.name),
      );
      for (const endpoint of monitoring.spec.endpoints) expect(portNames).toContain(endpoint.port);
    }
  });
});

/** The builders' input that gives the stack's objects (its jobs, namespace and names). */
const inputOf = (m: RenderedMonitoring): AlertRuleInput => ({
  synapseJob: m.synapseJob,
  bridgeJob: m.bridgeJob,
  namespace: m.namespace,
  synapseDeployment: SYNAPSE_NAME,
  mediaClaim: DATA_PVC_NAME,
  runbookBaseUrl: String(byName(m, "SynapseDown").annotations.runbook_url.split("#")[0]),
  workers: m.workers,
  backups: m.backups,
});

/** Worker mode's jobs, for the builders on their own. */
const WORKER_JOBS: WorkerRuleInput = {
  groupJobs: ["matrix-synapse-sync", "matrix-synapse-client", "matrix-synapse-event-persister"],
  replicatedJobs: ["matrix-synapse-sync", "matrix-synapse-client"],
  streamWriters: { job: "matrix-synapse-event-persister", count: 2 },
  proxyJob: "matrix-synapse-proxy",
};

describe("the rendered rules are the builders' rules", () => {
  it.each(["staging", "prod"])("stack %s: Rules + ClusterRules = alertRuleGroups of its names", (name) => {
    const m = stack(name);
    expect(m.groups).toEqual(alertRuleGroups(inputOf(m)));
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

// The builders on their own, for the object-shape checks below.
const input: AlertRuleInput = {
  synapseJob: "matrix-synapse",
  bridgeJob: "nova-bridge",
  namespace: "nova-staging",
  synapseDeployment: SYNAPSE_NAME,
  mediaClaim: DATA_PVC_NAME,
  runbookBaseUrl: "https://example.invalid/nova-matrix/docs/runbooks.md",
};
const groups = alertRuleGroups(input);

describe("monitoring objects", () => {
  it("ServiceMonitor: valid against the Prometheus Operator CRD, no unknown field, job named like the PodMonitoring", () => {
    const object = serviceMonitor(target);
    new ServiceMonitor(object).validate();
    expect(unknownFields(object, (data) => ServiceMonitor.prototype.validate.call(data))).toEqual([]);
    serviceMonitorSchema.parse(object);
    expect(object.metadata?.name).toBe(podMonitoring(target).metadata.name);
    expect(object.spec.endpoints?.[0]).toMatchObject({ port: "metrics", path: "/_synapse/metrics" });
    // The job is the target's name whichever Service the selector finds (worker mode's matrix-synapse-main).
    expect(object.spec.endpoints?.[0]?.relabelings).toEqual([
      { action: "replace", targetLabel: "job", replacement: "matrix-synapse" },
    ]);
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
    const { namespace: _ns, ...clusterMeta } = meta;
    const cluster = gmpClusterRules({ ...clusterMeta, name: "nova-matrix-alerts-nova-staging" });
    gmpClusterRulesSchema.parse(cluster);
    expect(cluster.metadata).not.toHaveProperty("namespace");
    expect(() =>
      gmpClusterRulesSchema.parse({ ...cluster, metadata: { ...cluster.metadata, namespace: "x" } }),
    ).toThrow();
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
