// The bridge's Grafana dashboard (pure) and the ConfigMap that Grafana's dashboard sidecar picks up by its
// `grafana_dashboard: "1"` label. Synapse's own dashboard is upstream's (linked from docs/operations.md, not copied).
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";

export interface DashboardInput {
  readonly bridgeJob: string;
  readonly synapseJob: string;
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
  const bridge = `{job="${input.bridgeJob}"}`;
  const synapse = `job="${input.synapseJob}"`;
  return {
    syncLag: `max(nova_bridge_sync_lag_seconds${bridge})`,
    sendErrors: `sum(rate(nova_bridge_send_errors_total${bridge}[5m]))`,
    bridgeSendLatency: `histogram_quantile(0.95, sum by (le) (rate(nova_bridge_send_duration_seconds_bucket${bridge}[5m])))`,
    sendLatency: `histogram_quantile(0.95, sum by (le) (rate(synapse_http_server_response_time_seconds_bucket{${synapse},servlet="RoomSendEventRestServlet"}[5m])))`,
    synapse5xx: `sum(rate(synapse_http_server_responses_total{${synapse},code=~"5.."}[5m]))`,
  } as const;
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
    ],
  };
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
