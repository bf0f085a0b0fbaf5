// Synapse's side of the network args, from the names the Synapse component uses (one source of truth).
import { REDIS_LABELS, REDIS_PORT } from "../redis/spec.ts";
import { CLIENT_PORT, METRICS_PORT, REPLICATION_PORT, SYNAPSE_LABELS } from "../synapse/deployment-spec.ts";
import { PROXY_POD_PORTS, WORKER_GROUPS } from "../synapse/workers.ts";
import { groupLabels, PROXY_LABELS } from "../synapse/workers-component.ts";
import type { SynapseProcessEndpoints } from "./policies.ts";

export const SYNAPSE_ENDPOINTS = {
  podSelector: SYNAPSE_LABELS,
  clientPort: CLIENT_PORT,
  metricsPort: METRICS_PORT,
} as const;

/** Worker mode's Synapse processes as the network policies see them (workers-component.ts's labels and ports). */
export function synapseWorkerEndpoints(): {
  processes: SynapseProcessEndpoints[];
  members: Record<string, string>[];
} {
  const clientServing = ["sync", "client", "media"] as const;
  return {
    processes: [
      {
        name: "main",
        podSelector: SYNAPSE_LABELS,
        clientPort: CLIENT_PORT,
        replicationPort: REPLICATION_PORT,
        metricsPort: METRICS_PORT,
      },
      ...clientServing.map((group) => ({
        name: group,
        podSelector: groupLabels(group),
        clientPort: CLIENT_PORT,
        metricsPort: METRICS_PORT,
      })),
      {
        name: "event-persister",
        podSelector: groupLabels("event-persister"),
        replicationPort: REPLICATION_PORT,
        metricsPort: METRICS_PORT,
      },
      { name: "background", podSelector: groupLabels("background"), metricsPort: METRICS_PORT },
    ],
    members: [SYNAPSE_LABELS, ...WORKER_GROUPS.map(groupLabels)],
  };
}

export const PROXY_ENDPOINTS = {
  podSelector: PROXY_LABELS,
  internalPort: PROXY_POD_PORTS.internal,
  publicPort: PROXY_POD_PORTS.public,
  statsPort: PROXY_POD_PORTS.stats,
} as const;

/** In-cluster Redis's pods and port (staging's worker mode). */
export const IN_CLUSTER_REDIS = { pods: REDIS_LABELS, port: REDIS_PORT } as const;
