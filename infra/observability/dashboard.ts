// The bridge's Grafana dashboard (pure; in worker mode also Synapse's process groups and the proxy) and the ConfigMap
// that Grafana's dashboard sidecar picks up by its `grafana_dashboard: "1"` label. Synapse's own dashboard is
// upstream's (linked from docs/operations.md, not copied).
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import { selector, synapseJobs } from "./promql.ts";
import type { WorkerRuleInput } from "./rules.ts";

export interface DashboardInput {
  readonly bridgeJob: string;
  /** The main process's job. */
  readonly synapseJob: string;
  /** Worker mode: the workers' and the proxy's jobs (a row of panels per process group). */
  readonly workers?: WorkerRuleInput | undefined;
}

interface Panel {
  id: number;
  type: "timeseries";
  title: string;
  description: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource: { type: "prometheus"; uid: "${datasource}" };
  fieldConfig: { defaults: { unit: string }; overrides: [] };
  targets: { refId: string; expr: string; legendFormat: string }[];
}

/** Prometheus expressions of each panel; exported so the tests can check every metric name they read. */
export function dashboardQueries(input: DashboardInput) {
  const bridge = selector({ job: input.bridgeJob });
  // Every Synapse process: in worker mode the sends are served by the client workers.
  const processes = synapseJobs(input);
  const synapse = (labels: Record<string, string> = {}) => selector({ job: processes, ...labels });
  return {
    syncLag: `max(nova_bridge_sync_lag_seconds${bridge})`,
    sendErrors: `sum(rate(nova_bridge_send_errors_total${bridge}[5m]))`,
    bridgeSendLatency: `histogram_quantile(0.95, sum by (le) (rate(nova_bridge_send_duration_seconds_bucket${bridge}[5m])))`,
    sendLatency: `histogram_quantile(0.95, sum by (le) (rate(synapse_http_server_response_time_seconds_bucket${synapse({ servlet: "RoomSendEventRestServlet" })}[5m])))`,
    synapse5xx: `sum(rate(synapse_http_server_responses_total${selector({ job: processes, code: { regex: "5.." } })}[5m]))`,
    ...(input.workers ? workerQueries(input, input.workers) : {}),
  } as const;
}

/** Worker mode: each process group's health, load and replication, and the proxy's view of them. */
function workerQueries(input: DashboardInput, workers: WorkerRuleInput) {
  const processes = selector({ job: synapseJobs(input) });
  return {
    processesUp: `sum by (job) (up${processes})`,
    requestsByGroup: `sum by (job) (rate(synapse_http_server_response_count_total${processes}[5m]))`,
    requestCpuByGroup:
      `sum by (job) (rate(synapse_http_server_response_ru_utime_seconds_total${processes}[5m])` +
      ` + rate(synapse_http_server_response_ru_stime_seconds_total${processes}[5m]))`,
    redisConnections: `sum by (job) (synapse_replication_tcp_resource_total_connections${processes})`,
    proxyServers: `min by (proxy) (haproxy_backend_active_servers${selector({ job: workers.proxyJob })})`,
  };
}

export function bridgeDashboard(input: DashboardInput) {
  const q = dashboardQueries(input);
  let id = 0;
  const panel = (
    title: string,
    description: string,
    unit: string,
    expr: string,
    legendFormat: string,
    x: number,
    y: number,
  ): Panel => ({
    id: ++id,
    type: "timeseries",
    title,
    description,
    gridPos: { x, y, w: 12, h: 8 },
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, resolved by Grafana.
    datasource: { type: "prometheus", uid: "${datasource}" },
    fieldConfig: { defaults: { unit }, overrides: [] },
    targets: [{ refId: "A", expr, legendFormat }],
  });
  return {
    uid: "nova-matrix-bridge",
    title: "Nova Matrix bridge",
    tags: ["nova-matrix", "matrix"],
    schemaVersion: 39,
    time: { from: "now-6h", to: "now" },
    refresh: "30s",
    templating: {
      list: [{ name: "datasource", type: "datasource", query: "prometheus", label: "Data source" }],
    },
    panels: [
      panel("Sync lag", "How far the bridge's sync loop trails Synapse.", "s", q.syncLag, "lag", 0, 0),
      panel(
        "Send errors",
        "Failed sends, edits, deletes and uploads.",
        "reqps",
        q.sendErrors,
        "errors/s",
        12,
        0,
      ),
      panel(
        "Bridge send p95",
        "The bridge's sends to Synapse, end to end.",
        "s",
        q.bridgeSendLatency,
        "p95",
        0,
        8,
      ),
      panel(
        "Synapse send p95",
        "Time Synapse takes to persist a sent event.",
        "s",
        q.sendLatency,
        "p95",
        12,
        8,
      ),
      panel("Synapse 5xx", "Server errors the bridge may be seeing.", "reqps", q.synapse5xx, "5xx/s", 0, 16),
      ...(input.workers ? workerPanels(input.workers) : []),
    ],
  };

  function workerPanels(workers: WorkerRuleInput): Panel[] {
    const w = workerQueries(input, workers);
    const group = "{{job}}";
    return [
      panel(
        "Synapse processes up",
        "Processes answering the scrape, per group.",
        "short",
        w.processesUp,
        group,
        12,
        16,
      ),
      panel(
        "Requests per group",
        "Requests each process group serves.",
        "reqps",
        w.requestsByGroup,
        group,
        0,
        24,
      ),
      panel(
        "CPU in requests per group",
        "CPU seconds per second (cores) Synapse spends serving requests, per group: where to add replicas.",
        "short",
        w.requestCpuByGroup,
        group,
        12,
        24,
      ),
      panel(
        "Redis connections",
        "Each Synapse process holds one while replication works; 0 means it lost Redis.",
        "short",
        w.redisConnections,
        group,
        0,
        32,
      ),
      panel(
        "Proxy: healthy servers per route",
        "Servers passing the proxy's health check, per backend (the lowest of the proxy pods).",
        "short",
        w.proxyServers,
        "{{proxy}}",
        12,
        32,
      ),
    ];
  }
}

export interface DashboardConfigMapInput {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly dashboard: ReturnType<typeof bridgeDashboard>;
}

/** The label Grafana's dashboard sidecar (kube-prometheus-stack's default) watches for. */
export const GRAFANA_DASHBOARD_LABEL = { grafana_dashboard: "1" } as const;

export function dashboardConfigMap(input: DashboardConfigMapInput): IConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels: { ...input.labels, ...GRAFANA_DASHBOARD_LABEL },
    },
    data: { [`${input.dashboard.uid}.json`]: JSON.stringify(input.dashboard, null, 2) },
  };
}
