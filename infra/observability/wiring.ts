// Synapse's side of the monitoring args, from the names the Synapse component uses (one source of truth).
import {
  DATA_PVC_NAME,
  METRICS_PORT_NAME,
  SYNAPSE_LABELS,
  SYNAPSE_NAME,
} from "../synapse/deployment-spec.ts";
import type { ObservabilityArgs } from "./index.ts";

export const SYNAPSE_SCRAPE: ObservabilityArgs["synapse"] = {
  name: SYNAPSE_NAME,
  selector: SYNAPSE_LABELS,
  metricsPortName: METRICS_PORT_NAME,
  metricsPath: "/_synapse/metrics",
  deploymentName: SYNAPSE_NAME,
  mediaClaimName: DATA_PVC_NAME,
};
