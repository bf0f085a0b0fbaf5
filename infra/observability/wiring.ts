// Synapse's and the backups' side of the monitoring args, from the names their components use (one source of truth).
import { longestScheduleGapSeconds } from "../backup/plan.ts";
import type { WorkerSettings } from "../config/schema.ts";
import {
  DATA_PVC_NAME,
  METRICS_PORT_NAME,
  SYNAPSE_LABELS,
  SYNAPSE_NAME,
} from "../synapse/deployment-spec.ts";
import { groupName, WORKER_GROUPS, type WorkerGroup } from "../synapse/workers.ts";
import {
  groupLabels,
  PROXY_LABELS,
  PROXY_NAME,
  PROXY_STATS_PORT_NAME,
} from "../synapse/workers-component.ts";
import type { ObservabilityArgs } from "./index.ts";
import type { BackupRuleInput } from "./rules.ts";

const SYNAPSE_METRICS_PATH = "/_synapse/metrics";

export const SYNAPSE_SCRAPE: ObservabilityArgs["synapse"] = {
  name: SYNAPSE_NAME,
  selector: SYNAPSE_LABELS,
  metricsPortName: METRICS_PORT_NAME,
  metricsPath: SYNAPSE_METRICS_PATH,
  deploymentName: SYNAPSE_NAME,
  mediaClaimName: DATA_PVC_NAME,
};

/** Groups whose instances stand in for each other behind the proxy (the rest are one instance, or shard rooms). */
const REPLICATED: readonly WorkerGroup[] = ["sync", "client"];

/**
 * Worker mode: a scrape per worker group (job = the group's StatefulSet and headless Service name) and one for the
 * proxy's exporter; the jobs the worker rules read.
 */
export function synapseWorkersScrape(
  settings: WorkerSettings,
): NonNullable<ObservabilityArgs["synapseWorkers"]> {
  return {
    scrapes: [
      ...WORKER_GROUPS.map((group) => ({
        name: groupName(group),
        selector: groupLabels(group),
        metricsPortName: METRICS_PORT_NAME,
        metricsPath: SYNAPSE_METRICS_PATH,
      })),
      {
        name: PROXY_NAME,
        selector: PROXY_LABELS,
        metricsPortName: PROXY_STATS_PORT_NAME,
        metricsPath: "/metrics",
      },
    ],
    jobs: {
      groupJobs: WORKER_GROUPS.map(groupName),
      replicatedJobs: REPLICATED.map(groupName),
      streamWriters: { job: groupName("event-persister"), count: settings.eventPersisters.count },
      proxyJob: PROXY_NAME,
    },
  };
}

/** The backup CronJobs the stack runs (infra/backup's plannedCronJobs), as the backup alerts watch them. */
export function backupAlertJobs(
  jobs: readonly { readonly name: string; readonly schedule: string }[],
): BackupRuleInput[] {
  return jobs.map((job) => ({ cronJob: job.name, periodSeconds: longestScheduleGapSeconds(job.schedule) }));
}
