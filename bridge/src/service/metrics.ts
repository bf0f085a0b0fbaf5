// Prometheus metrics of the service, on its own registry. The ops alert rules use nova_bridge_sync_lag_seconds and
// nova_bridge_send_errors_total by these exact names (infra/observability/metrics.ts).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { SyncStatus } from "../bridge.ts";
import { toApiError } from "./errors.ts";

export type SendKind = "text" | "media" | "audio" | "edit" | "delete";

/** Seconds the sync loop trails Synapse: the time since its last committed round beyond one quiet long-poll. */
export function syncLagSeconds(status: SyncStatus, now = Date.now()): number {
  if (!status.running) return 0;
  if (status.lastSyncAt === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(0, (now - status.lastSyncAt - status.pollTimeoutMs) / 1000);
}

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly eventsLogged: Counter;
  readonly sendDuration: Histogram;
  readonly sendErrors: Counter;
  readonly wsClients: Gauge;
  readonly eventsDropped: Counter;
  readonly wsRefused: Counter;
  readonly logReads: Counter;
  readonly syncFenced: Counter;
  readonly pruned: Counter;

  constructor(syncStatus: () => SyncStatus | undefined) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "nova_bridge_" });
    new Gauge({
      name: "nova_bridge_sync_lag_seconds",
      help: "Seconds the bridge's sync loop trails Synapse (0 when caught up).",
      registers,
      collect() {
        const status = syncStatus();
        // Before the first round, report the lag as large but finite (Prometheus handles +Inf poorly in alerts).
        if (status) this.set(Math.min(syncLagSeconds(status), 86_400));
      },
    });
    this.eventsLogged = new Counter({
      name: "nova_bridge_events_logged_total",
      help: "Events appended to the event log by the sync loop.",
      registers,
    });
    this.sendDuration = new Histogram({
      name: "nova_bridge_send_duration_seconds",
      help: "Time to send a message, audio, edit or deletion to Synapse, by kind.",
      labelNames: ["kind"],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.sendErrors = new Counter({
      name: "nova_bridge_send_errors_total",
      help: "Sends that failed, by kind and error code.",
      labelNames: ["kind", "code"],
      registers,
    });
    this.wsClients = new Gauge({
      name: "nova_bridge_websocket_clients",
      help: "Connected WebSocket clients, by role (service or user).",
      labelNames: ["role"],
      registers,
    });
    for (const role of ["service", "user"]) this.wsClients.set({ role }, 0);
    this.wsRefused = new Counter({
      name: "nova_bridge_websocket_refused_total",
      help: "WebSockets closed at once by a cap, by reason (user_cap: 4029, process_cap: 1013).",
      labelNames: ["reason"],
      registers,
    });
    this.logReads = new Counter({
      name: "nova_bridge_event_log_reads_total",
      help: "Reads of the event log for the WebSocket streams: by the shared feed (one per commit) or by a stream catching up behind the feed's window.",
      labelNames: ["reader"],
      registers,
    });
    this.syncFenced = new Counter({
      name: "nova_bridge_sync_fenced_total",
      help: "Commits of the event log refused because another replica had claimed it (a newer owner epoch); the replica then stops.",
      registers,
    });
    this.pruned = new Counter({
      name: "nova_bridge_pruned_rows_total",
      help: "Rows deleted by the retention job, by table (bridge_event_log, bridge_sent, bridge_send_attempts).",
      labelNames: ["table"],
      registers,
    });
    this.eventsDropped = new Counter({
      name: "nova_bridge_events_dropped_total",
      help: "Matrix messages that did not become events (malformed, unknown msgtype, an edit by someone else than the author), by reason.",
      labelNames: ["reason"],
      registers,
    });
  }
}

/** Times a send and counts its failure by kind and error code. */
export async function timedSend<T>(
  metrics: ServiceMetrics,
  kind: SendKind,
  run: () => Promise<T>,
): Promise<T> {
  const stop = metrics.sendDuration.startTimer({ kind });
  try {
    return await run();
  } catch (error) {
    metrics.sendErrors.inc({ kind, code: toApiError(error).code });
    throw error;
  } finally {
    stop();
  }
}
