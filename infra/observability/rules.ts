// The alert rules for this system, as plain Prometheus rule groups (pure). Upstream Synapse ships none.
// Every metric a rule uses is declared in metrics.ts; the tests check the Synapse ones against a real
// Synapse's /_synapse/metrics and evaluate every rule with promtool on sample series.

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
  BridgeSyncLagging: "bridgesynclagging",
  BridgeSendErrors: "bridgesenderrors",
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
} as const;

/** A label value to match exactly, or `{ regex }` for `=~`. */
type Matcher = string | { readonly regex: string };

const selector = (labels: Record<string, Matcher>) =>
  `{${Object.entries(labels)
    .map(([name, value]) =>
      typeof value === "string"
        ? `${name}=${JSON.stringify(value)}`
        : `${name}=~${JSON.stringify(value.regex)}`,
    )
    .join(",")}}`;

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
  const job = selector({ job: input.synapseJob });
  const jobWith = (labels: Record<string, Matcher>) => selector({ job: input.synapseJob, ...labels });
  const t = THRESHOLDS;
  return {
    name: "nova-matrix.synapse",
    interval: EVALUATION_INTERVAL,
    rules: [
      rule(input, "SynapseDown", {
        // `absent` also covers a target the scraper no longer finds (Deployment deleted, selector broken).
        expr: `up${job} == 0 or absent(up${job})`,
        for: "2m",
        severity: "critical",
        summary: "Synapse is down: its metrics endpoint has not been scraped for 2 minutes.",
        description: "No Synapse target answers the scrape. Chat is unavailable to every user.",
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
 * Rules on series the cluster writes about Synapse's Deployment (kube-state-metrics) and its media volume (kubelet).
 * Those are scraped outside the workload's namespace, so GMP evaluates them in a ClusterRules (scoped to the cluster,
 * not to a namespace); the expressions name the namespace themselves.
 */
export function kubernetesRules(input: AlertRuleInput): RuleGroup {
  const t = THRESHOLDS;
  const volume = selector({ namespace: input.namespace, persistentvolumeclaim: input.mediaClaim });
  const freeRatio = `kubelet_volume_stats_available_bytes${volume} / kubelet_volume_stats_capacity_bytes${volume}`;
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
    ],
  };
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
  return { namespaced: [synapseRules(input), bridgeRules(input)], cluster: [kubernetesRules(input)] };
}

/** Every group (a Prometheus that sees the whole cluster, such as the Operator's, evaluates them all together). */
export function alertRuleGroups(input: AlertRuleInput): RuleGroup[] {
  const { namespaced, cluster } = ruleGroupsByScope(input);
  return [...namespaced, ...cluster];
}
