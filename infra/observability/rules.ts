// The alert rules for this system, as plain Prometheus rule groups (pure). Upstream Synapse ships none.
// Every metric a rule uses is declared in metrics.ts; the tests check the Synapse ones against a real
// Synapse's /_synapse/metrics and evaluate every rule with promtool on sample series.

import { anyOf, type Matcher, selector, synapseJobs } from "./promql.ts";

/** One alerting rule, in the Prometheus rule-file shape that PrometheusRule and GMP Rules both embed. */
export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: { readonly severity: "critical" | "warning" };
  readonly annotations: {
    readonly summary: string;
    readonly description: string;
    readonly runbook_url: string;
  };
}

export interface RuleGroup {
  readonly name: string;
  /** Evaluation interval (GMP's Rules require one; Prometheus would default to its global one). */
  readonly interval: string;
  readonly rules: readonly AlertRule[];
}

export interface AlertRuleInput {
  /** `job` label of Synapse's metrics (the ServiceMonitor's Service name, the PodMonitoring's name). */
  readonly synapseJob: string;
  /** `job` label of the bridge's metrics. */
  readonly bridgeJob: string;
  /** Kubernetes namespace the workloads run in (for kube-state-metrics and kubelet series). */
  readonly namespace: string;
  /** Synapse's Deployment name (kube-state-metrics' `deployment` label). */
  readonly synapseDeployment: string;
  /** The PVC holding Synapse's media store. */
  readonly mediaClaim: string;
  /** Absolute URL of docs/runbooks.md; each rule links to `<this>#<its section>`. */
  readonly runbookBaseUrl: string;
  /** Synapse in worker mode: the workers' and the proxy's scrape jobs (absent: the monolith). */
  readonly workers?: WorkerRuleInput | undefined;
  /** The backup CronJobs the stack renders (none: no backup alerts). */
  readonly backups?: readonly BackupRuleInput[] | undefined;
}

/** One backup CronJob, as infra/observability/wiring.ts derives it from what infra/backup renders. */
export interface BackupRuleInput {
  /** The CronJob's name (kube-state-metrics' `cronjob` label, `owner_name` of its Jobs). */
  readonly cronJob: string;
  /** The longest gap between two runs its schedule allows. */
  readonly periodSeconds: number;
}

/** Worker mode's scrape jobs, as infra/observability/wiring.ts names them from the worker settings. */
export interface WorkerRuleInput {
  /** One job per worker group (the group's StatefulSet = PodMonitoring = headless Service name). */
  readonly groupJobs: readonly string[];
  /** The groups with several interchangeable instances (sync, client): losing one is degraded service, not an outage. */
  readonly replicatedJobs: readonly string[];
  /** The event persisters: each writes the events of its share of the rooms, so every one of them must run. */
  readonly streamWriters: { readonly job: string; readonly count: number };
  /** The proxy (HAProxy's Prometheus exporter). */
  readonly proxyJob: string;
}

/** Each alert's section in docs/runbooks.md (GitHub's heading anchors; a test checks each heading exists). */
export const RUNBOOK_SECTIONS = {
  SynapseDown: "synapsedown",
  SynapseNotReady: "synapsenotready",
  SynapseDatabaseErrors: "synapsedatabaseerrors",
  SynapseDatabasePoolSaturated: "synapsedatabasepoolsaturated",
  SynapseHigh5xxRate: "synapsehigh5xxrate",
  SynapseSlowEventPersistence: "synapsesloweventpersistence",
  SynapseMediaVolumeFillingUp: "synapsemediavolumefillingup",
  SynapseMediaVolumeAlmostFull: "synapsemediavolumealmostfull",
  SynapseWorkerGroupDown: "synapseworkergroupdown",
  SynapseWorkerDown: "synapseworkerdown",
  SynapseStreamWriterDown: "synapsestreamwriterdown",
  SynapseRedisDown: "synapseredisdown",
  SynapseReplicationBroken: "synapsereplicationbroken",
  SynapseReplicationStalled: "synapsereplicationstalled",
  SynapseProxyDown: "synapseproxydown",
  SynapseProxyNoServer: "synapseproxynoserver",
  BridgeSyncLagging: "bridgesynclagging",
  BridgeSendErrors: "bridgesenderrors",
  NovaMatrixBackupMissed: "novamatrixbackupmissed",
  NovaMatrixBackupJobFailed: "novamatrixbackupjobfailed",
} as const;

export type AlertName = keyof typeof RUNBOOK_SECTIONS;

export const EVALUATION_INTERVAL = "30s";

/** Thresholds, in one place so the runbook and the promtool tests can name them. */
export const THRESHOLDS = {
  /** HTTP 500s per second (Synapse's sign of database errors). */
  databaseErrorsPerSecond: 0.1,
  /** Share of Synapse responses that are 5xx. */
  errorRatio: 0.05,
  /** Share of the database thread pool (cp_max connections) busy. */
  poolBusyRatio: 0.9,
  /** p95 seconds a query waits for a free pool connection. */
  poolWaitSeconds: 0.5,
  /** p95 seconds of `PUT /rooms/{id}/send` (the client-visible cost of persisting an event). */
  sendP95Seconds: 2,
  /** Media volume: free share that warns, free share that pages. */
  mediaFreeWarning: 0.15,
  mediaFreeCritical: 0.05,
  /** Seconds the bridge's sync loop may trail Synapse. */
  bridgeSyncLagSeconds: 60,
  /** Bridge send errors per second. */
  bridgeSendErrorsPerSecond: 0.05,
  /**
   * How late past its schedule period a backup's last success may be: the CronJobs' starting deadline (1h) and run
   * deadline (4h), plus an hour (a test keeps it above the rendered deadlines).
   */
  backupMarginSeconds: 6 * 3600,
} as const;

function rule(
  input: AlertRuleInput,
  alert: AlertName,
  spec: { expr: string; for: string; severity: "critical" | "warning"; summary: string; description: string },
): AlertRule {
  return {
    alert,
    expr: spec.expr,
    for: spec.for,
    labels: { severity: spec.severity },
    annotations: {
      summary: spec.summary,
      description: spec.description,
      runbook_url: `${input.runbookBaseUrl}#${RUNBOOK_SECTIONS[alert]}`,
    },
  };
}

/** Rules on Synapse's own metrics (series of its scrape job, in the workload's namespace). */
export function synapseRules(input: AlertRuleInput): RuleGroup {
  // SynapseDown reads the main process; the request and database rules read every Synapse process (in worker mode
  // the sends, syncs and most queries run in the workers), `by (job)` giving one alert per group.
  const main = selector({ job: input.synapseJob });
  const processes = synapseJobs(input);
  const job = selector({ job: processes });
  const jobWith = (labels: Record<string, Matcher>) => selector({ job: processes, ...labels });
  const t = THRESHOLDS;
  return {
    name: "nova-matrix.synapse",
    interval: EVALUATION_INTERVAL,
    rules: [
      rule(input, "SynapseDown", {
        // `absent` also covers a target the scraper no longer finds (Deployment deleted, selector broken).
        expr: `up${main} == 0 or absent(up${main})`,
        for: "2m",
        severity: "critical",
        summary: "Synapse is down: its (main) process has not answered the metrics scrape for 2 minutes.",
        description:
          "No Synapse target answers the scrape. Chat is unavailable to every user (worker mode: push rules, account data and replication between the workers too).",
      }),
      rule(input, "SynapseDatabaseErrors", {
        // Synapse exports no database-error counter: with PostgreSQL unreachable it keeps answering /health
        // and every request that touches the database fails with a 500 (measured in observability tests).
        expr: `sum by (job) (rate(synapse_http_server_responses_total${jobWith({ code: "500" })}[5m])) > ${t.databaseErrorsPerSecond}`,
        for: "5m",
        severity: "critical",
        summary: `Synapse answers HTTP 500 (over ${t.databaseErrorsPerSecond}/s for 5 minutes): most often its database is unreachable.`,
        description:
          "Synapse logs `[TXN OPERROR]` / psycopg2 OperationalError when PostgreSQL is unreachable or the synapse role lacks rights.",
      }),
      rule(input, "SynapseDatabasePoolSaturated", {
        expr:
          `(max by (job) (synapse_threadpool_working_threads${jobWith({ name: "database-master" })})` +
          ` / max by (job) (synapse_threadpool_max_threads${jobWith({ name: "database-master" })}) >= ${t.poolBusyRatio})` +
          ` and on (job) histogram_quantile(0.95, sum by (job, le) (rate(synapse_storage_schedule_time_bucket${job}[5m]))) > ${t.poolWaitSeconds}`,
        for: "10m",
        severity: "warning",
        summary: `Synapse's database pool is saturated: ${t.poolBusyRatio * 100}% of connections busy and queries wait over ${t.poolWaitSeconds}s for one.`,
        description:
          "Every request queues for a PostgreSQL connection. Look for slow queries or raise cp_max within the server's max_connections.",
      }),
      rule(input, "SynapseHigh5xxRate", {
        expr:
          `sum by (job) (rate(synapse_http_server_responses_total${jobWith({ code: { regex: "5.." } })}[5m]))` +
          ` / sum by (job) (rate(synapse_http_server_responses_total${job}[5m])) > ${t.errorRatio}`,
        for: "5m",
        severity: "critical",
        summary: `More than ${t.errorRatio * 100}% of Synapse's responses are 5xx errors.`,
        description: "Clients and the bridge see failures. The runbook lists the usual causes in order.",
      }),
      rule(input, "SynapseSlowEventPersistence", {
        expr:
          `histogram_quantile(0.95, sum by (job, le) (rate(synapse_http_server_response_time_seconds_bucket${jobWith({ servlet: "RoomSendEventRestServlet" })}[10m])))` +
          ` > ${t.sendP95Seconds}`,
        for: "10m",
        severity: "warning",
        summary: `Sending a message takes over ${t.sendP95Seconds}s at p95: event persistence is slow.`,
        description:
          "The send path waits on event persistence in PostgreSQL; users see messages arrive late.",
      }),
    ],
  };
}

/**
 * Worker mode: the workers, the event persisters (stream writers), Redis (seen from Synapse's processes, which is what
 * matters, and works for Memorystore, which no in-cluster scraper reaches) and the proxy. Read only series of this
 * stack's own scrape jobs, so GMP evaluates them in the namespace's Rules.
 */
export function workerRules(input: AlertRuleInput, workers: WorkerRuleInput): RuleGroup {
  const up = (job: string) => `up${selector({ job })}`;
  const groupsDown = [
    `sum by (job) (up${selector({ job: anyOf(workers.groupJobs) })}) == 0`,
    ...workers.groupJobs.map((job) => `absent(${up(job)})`),
  ].join(" or ");
  // Synapse's replication handler counts its connections (synapse/replication/tcp/handler.py): one per process in
  // Redis mode, none while Redis is unreachable. Not yet measured on the harness's processes (see docs/operations.md).
  const connections = `synapse_replication_tcp_resource_total_connections${selector({ job: synapseJobs(input) })}`;
  const writers = workers.streamWriters;
  // The events stream as each process receives it over Redis (rows of other writers' events; a writer does not count
  // its own, so the persisters are left out), against the events the persisters store.
  const readers = anyOf([input.synapseJob, ...workers.groupJobs.filter((job) => job !== writers.job)]);
  const received = `synapse_replication_tcp_protocol_inbound_rdata_count_total${selector({ job: readers, stream_name: "events" })}`;
  const persisted = `synapse_storage_events_persisted_events_total${selector({ job: writers.job })}`;
  const proxy = selector({ job: workers.proxyJob });
  return {
    name: "nova-matrix.synapse-workers",
    interval: EVALUATION_INTERVAL,
    rules: [
      rule(input, "SynapseWorkerGroupDown", {
        // `absent` also covers a group with no target at all (StatefulSet scaled to 0, pods Pending).
        expr: groupsDown,
        for: "2m",
        severity: "critical",
        summary: "A Synapse worker group has no process answering: what it serves fails for every user.",
        description:
          "No instance of this group answers the metrics scrape. Sync workers: clients stop receiving; client workers: sends and room calls fail; media: uploads and downloads; background: tasks stop.",
      }),
      rule(input, "SynapseWorkerDown", {
        expr: `up${selector({ job: anyOf(workers.replicatedJobs) })} == 0`,
        for: "5m",
        severity: "warning",
        summary: "One Synapse worker is down; the others of its group carry its users or rooms.",
        description:
          "The proxy moves the down worker's share to the rest of the group: the service is degraded, not out.",
      }),
      rule(input, "SynapseStreamWriterDown", {
        expr:
          `count by (job) (${up(writers.job)} == 1) < ${writers.count}` +
          ` or absent(${up(writers.job)} == 1)`,
        for: "2m",
        severity: "critical",
        summary: `Fewer than ${writers.count} event persisters run: messages to the rooms of a missing one cannot be stored.`,
        description:
          "Rooms are sharded over the event persisters (stream_writers.events); no other process can write a missing writer's rooms, so sends there fail until it is back.",
      }),
      rule(input, "SynapseRedisDown", {
        expr: `max(${connections}) == 0`,
        for: "2m",
        severity: "critical",
        summary: "No Synapse process is connected to Redis: replication between the processes has stopped.",
        description:
          "Workers no longer learn of new events: syncs stall, caches go stale, sends through the workers may hang. Redis itself, its address or its password is the problem.",
      }),
      rule(input, "SynapseReplicationBroken", {
        // Only some processes: when none is connected, SynapseRedisDown says it once.
        expr: `${connections} == 0 unless on () (max(${connections}) == 0)`,
        for: "2m",
        severity: "critical",
        summary: "A Synapse process has lost its connection to Redis while the others have theirs.",
        description:
          "That process no longer sends or receives replication: its users see stale data or hanging requests.",
      }),
      rule(input, "SynapseReplicationStalled", {
        // Synapse exports no replication delay in this setup (its lag gauges belong to the appservice and federation
        // senders, which do not run, and synapse_event_persisted_position is never set): a process that receives no
        // event at all for 10 minutes while the persisters store some has fallen behind without bound.
        expr:
          `sum by (job, instance) (rate(${received}[10m])) == 0` +
          ` and on () sum(rate(${persisted}[10m])) > 0` +
          // Without a Redis connection SynapseRedisDown or SynapseReplicationBroken already says it.
          ` unless on (job, instance) ${connections} == 0`,
        for: "5m",
        severity: "critical",
        summary: "A Synapse process receives no new events over replication while messages are being stored.",
        description:
          "Its connection to Redis looks open, yet the events stream does not reach it: its users (sync, sends) see nothing new.",
      }),
      rule(input, "SynapseProxyDown", {
        expr: `sum by (job) (up${proxy}) == 0 or absent(up${proxy})`,
        for: "2m",
        severity: "critical",
        summary: "The proxy in front of Synapse's processes is down: Synapse is unreachable.",
        description:
          "Every request (the Ingress, the bridge, realtime-chat-service) goes through matrix-synapse-proxy.",
      }),
      rule(input, "SynapseProxyNoServer", {
        expr: `haproxy_backend_active_servers${proxy} == 0`,
        for: "2m",
        severity: "critical",
        summary:
          "The proxy has no healthy Synapse process for one of its routes: those requests fail with 503.",
        description:
          "Its health checks (GET /health) fail on every server of the backend named in the `proxy` label.",
      }),
    ],
  };
}

/**
 * Rules on series the cluster writes about Synapse's Deployment (kube-state-metrics) and its media volume (kubelet).
 * Those are scraped outside the workload's namespace, so GMP evaluates them in a ClusterRules (scoped to the cluster,
 * not to a namespace); the expressions name the namespace themselves.
 */
export function kubernetesRules(input: AlertRuleInput): RuleGroup {
  const t = THRESHOLDS;
  const volume = selector({ namespace: input.namespace, persistentvolumeclaim: input.mediaClaim });
  const freeRatio = `kubelet_volume_stats_available_bytes${volume} / kubelet_volume_stats_capacity_bytes${volume}`;
  const backups = input.backups ?? [];
  return {
    name: "nova-matrix.kubernetes",
    interval: EVALUATION_INTERVAL,
    rules: [
      rule(input, "SynapseNotReady", {
        expr: `kube_deployment_status_replicas_available${selector({ namespace: input.namespace, deployment: input.synapseDeployment })} < 1`,
        for: "5m",
        severity: "critical",
        summary: "Synapse has had no ready pod for 5 minutes.",
        description:
          "The Deployment has no available replica: the pod is crash-looping, pending or failing its probes.",
      }),
      rule(input, "SynapseMediaVolumeFillingUp", {
        expr: `${freeRatio} < ${t.mediaFreeWarning}`,
        for: "15m",
        severity: "warning",
        summary: `Synapse's media volume has less than ${t.mediaFreeWarning * 100}% free.`,
        description: "Uploads fail once it is full. Grow the PVC or purge old remote/local media.",
      }),
      rule(input, "SynapseMediaVolumeAlmostFull", {
        expr: `${freeRatio} < ${t.mediaFreeCritical}`,
        for: "5m",
        severity: "critical",
        summary: `Synapse's media volume has less than ${t.mediaFreeCritical * 100}% free.`,
        description: "Uploads (audio messages, attachments) are about to fail.",
      }),
      ...(backups.length > 0 ? backupRules(input, backups) : []),
    ],
  };
}

/**
 * The backup CronJobs': a last success older than the schedule allows (or none since the CronJob was created), and a
 * Job that gave up. One expression for all of them (each term with its own period), so each alert fires per CronJob.
 */
function backupRules(input: AlertRuleInput, unordered: readonly BackupRuleInput[]): AlertRule[] {
  const margin = THRESHOLDS.backupMarginSeconds;
  // By name, so the rules do not depend on the order the CronJobs are listed in.
  const backups = [...unordered].sort((a, b) => a.cronJob.localeCompare(b.cronJob));
  const missed = backups
    .map(({ cronJob, periodSeconds }) => {
      const cron = selector({ namespace: input.namespace, cronjob: cronJob });
      const tooOld = `time() - ${periodSeconds + margin}`;
      // kube-state-metrics writes no last-success series until the first success.
      return (
        `kube_cronjob_status_last_successful_time${cron} < ${tooOld}` +
        ` or (kube_cronjob_created${cron} < ${tooOld} unless on (namespace, cronjob) kube_cronjob_status_last_successful_time${cron})`
      );
    })
    .join(" or ");
  const owned = selector({
    namespace: input.namespace,
    owner_kind: "CronJob",
    owner_name: anyOf(backups.map((b) => b.cronJob)),
  });
  return [
    rule(input, "NovaMatrixBackupMissed", {
      expr: missed,
      for: "15m",
      severity: "critical",
      summary: `A backup CronJob has had no successful run within its schedule period plus ${margin / 3600}h.`,
      description:
        "The newest backup of what the `cronjob` label names (database dumps or the media archive) is older than the schedule allows: its runs fail, are not started (CronJob suspended, deadline missed) or it never succeeded.",
    }),
    rule(input, "NovaMatrixBackupJobFailed", {
      // The Job's Failed condition (retries used up, or past its deadline), not kube_job_status_failed: that counts
      // failed pods, and a pod that failed before a successful retry is no failed backup.
      expr: `kube_job_failed${selector({ namespace: input.namespace, condition: "true" })} == 1 and on (namespace, job_name) kube_job_owner${owned}`,
      for: "5m",
      severity: "warning",
      summary: "A backup Job failed: its retries are used up or it ran past its deadline.",
      description:
        "This run of the backup CronJob (its Job in the `job_name` label) stored no backup. The alert clears when the failed Job is deleted (after the cause is fixed and a rerun succeeded) or ages out.",
    }),
  ];
}

/** Rules on the bridge's metrics (BRIDGE_METRICS in metrics.ts, checked against the bridge's real registry). */
export function bridgeRules(input: AlertRuleInput): RuleGroup {
  const job = selector({ job: input.bridgeJob });
  const t = THRESHOLDS;
  return {
    name: "nova-matrix.bridge",
    interval: EVALUATION_INTERVAL,
    rules: [
      rule(input, "BridgeSyncLagging", {
        expr: `max by (job) (nova_bridge_sync_lag_seconds${job}) > ${t.bridgeSyncLagSeconds}`,
        for: "5m",
        severity: "warning",
        summary: `The bridge's sync loop trails Synapse by more than ${t.bridgeSyncLagSeconds}s.`,
        description: "Front ends receive message.new / edited / deleted late.",
      }),
      rule(input, "BridgeSendErrors", {
        expr: `sum by (job) (rate(nova_bridge_send_errors_total${job}[5m])) > ${t.bridgeSendErrorsPerSecond}`,
        for: "5m",
        severity: "warning",
        summary: "The bridge fails to send messages to Synapse.",
        description: "realtime-chat-service's sends, edits, deletes or uploads are failing.",
      }),
    ],
  };
}

/**
 * The groups by where they can be evaluated: `namespaced` read only series of the workloads' own scrape jobs (GMP
 * `Rules` in the namespace); `cluster` read series the cluster writes from elsewhere (GMP `ClusterRules`).
 */
export function ruleGroupsByScope(input: AlertRuleInput): { namespaced: RuleGroup[]; cluster: RuleGroup[] } {
  return {
    namespaced: [
      synapseRules(input),
      ...(input.workers ? [workerRules(input, input.workers)] : []),
      bridgeRules(input),
    ],
    cluster: [kubernetesRules(input)],
  };
}

/** Every group (a Prometheus that sees the whole cluster, such as the Operator's, evaluates them all together). */
export function alertRuleGroups(input: AlertRuleInput): RuleGroup[] {
  const { namespaced, cluster } = ruleGroupsByScope(input);
  return [...namespaced, ...cluster];
}
