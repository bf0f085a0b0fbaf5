// Synapse's side of the network args, from the names the Synapse component uses (one source of truth).
import { CLIENT_PORT, METRICS_PORT, SYNAPSE_LABELS } from "../synapse/deployment-spec.ts";

export const SYNAPSE_ENDPOINTS = {
  podSelector: SYNAPSE_LABELS,
  clientPort: CLIENT_PORT,
  metricsPort: METRICS_PORT,
} as const;
