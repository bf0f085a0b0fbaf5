// What a stack renders for monitoring, read back from its objects: the alert rule groups GMP evaluates (the namespace's
// Rules and the ClusterRules), the scrape jobs, and the dashboard's queries. The promtool and metric-name tests run
// on these, so they check what the stacks ship, not a hand-made input.
import { rawProjectConfig } from "../config/load.ts";
import { parseStackConfig } from "../config/schema.ts";
import type { BackupRuleInput, RuleGroup, WorkerRuleInput } from "../observability/rules.ts";
import { backupAlertJobs, synapseWorkersScrape } from "../observability/wiring.ts";
import { PROJECT_DIR } from "../render/run.ts";
import { readStackConfig } from "../render/stack-file.ts";
import { SYNAPSE_LABELS } from "../synapse/deployment-spec.ts";
import type { KubeObject } from "./stack-invariants.ts";
import { type ChildStackRun, runStackInChild } from "./stack-process.ts";

export interface RenderedMonitoring {
  readonly stack: string;
  readonly run: ChildStackRun;
  /** The namespace of the Rules object (and of the workloads). */
  readonly namespace: string;
  /** `job` label of each scrape (the PodMonitoring names). */
  readonly synapseJob: string;
  readonly bridgeJob: string;
  /** Every PodMonitoring's name and pod selector. */
  readonly scrapes: readonly { name: string; selector: Record<string, string>; port: string }[];
  /** Worker mode's jobs, as the stack file's worker settings give them (absent: the monolith). */
  readonly workers: WorkerRuleInput | undefined;
  /** The CronJobs the stack renders, as the backup alerts read them (name, longest gap of the schedule). */
  readonly backups: BackupRuleInput[];
  /** Every rule group GMP evaluates for the stack: the namespaced Rules first, then the ClusterRules. */
  readonly groups: RuleGroup[];
  /** The PromQL of every panel of the dashboard ConfigMap. */
  readonly dashboardQueries: string[];
}

type Spec<T> = KubeObject & { spec: T };

function only(objects: KubeObject[], kind: string): KubeObject {
  const found = objects.filter((object) => object.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, the stack renders ${found.length}`);
  return found[0] as KubeObject;
}

/** Reads the monitoring objects of a rendered stack (throws, naming what is missing). */
export function monitoringOf(
  stack: string,
  run: ChildStackRun,
  bridgeSelector: Record<string, string>,
  workers: WorkerRuleInput | undefined,
): RenderedMonitoring {
  const { objects } = run;
  const rules = only(objects, "Rules") as Spec<{ groups: RuleGroup[] }>;
  const clusterRules = only(objects, "ClusterRules") as Spec<{ groups: RuleGroup[] }>;
  const scrapes = (
    objects.filter((o) => o.kind === "PodMonitoring") as Spec<{
      selector: { matchLabels: Record<string, string> };
      endpoints: { port: string }[];
    }>[]
  ).map((m) => ({
    name: String(m.metadata.name),
    selector: m.spec.selector.matchLabels,
    port: String(m.spec.endpoints[0]?.port),
  }));
  const selecting = (labels: Record<string, string>) =>
    scrapes.find(
      (m) =>
        Object.keys(m.selector).length === Object.keys(labels).length &&
        Object.entries(labels).every(([key, value]) => m.selector[key] === value),
    );
  const synapse = selecting(SYNAPSE_LABELS);
  const bridge = selecting(bridgeSelector);
  if (!synapse || !bridge)
    throw new Error(`expected PodMonitorings for Synapse and the bridge, found ${scrapes.length}`);
  const dashboard = objects.find(
    (o) => o.kind === "ConfigMap" && o.metadata.labels?.grafana_dashboard === "1",
  ) as (KubeObject & { data: Record<string, string> }) | undefined;
  if (!dashboard) throw new Error("expected the dashboard ConfigMap");
  const queries = Object.values(dashboard.data).flatMap(
    (json) =>
      (JSON.parse(json) as { panels: { targets: { expr: string }[] }[] }).panels.flatMap((panel) =>
        panel.targets.map((target) => target.expr),
      ) ?? [],
  );
  const cronJobs = (objects.filter((o) => o.kind === "CronJob") as Spec<{ schedule: string }>[]).map((c) => ({
    name: String(c.metadata.name),
    schedule: c.spec.schedule,
  }));
  return {
    stack,
    run,
    namespace: String(rules.metadata.namespace),
    synapseJob: synapse.name,
    bridgeJob: bridge.name,
    scrapes,
    workers,
    backups: backupAlertJobs(cronJobs),
    groups: [...rules.spec.groups, ...clusterRules.spec.groups],
    dashboardQueries: queries,
  };
}

/** Renders the stack (in a child process) and reads its monitoring objects. */
export async function renderedMonitoring(stack: string, run?: ChildStackRun): Promise<RenderedMonitoring> {
  const config = parseStackConfig(rawProjectConfig(await readStackConfig(PROJECT_DIR, stack)));
  const workers = config.synapse.workers?.enabled ? config.synapse.workers : undefined;
  const bridge = config.observability?.bridge;
  if (!bridge) throw new Error(`stack ${stack} has no nova-matrix:observability`);
  return monitoringOf(
    stack,
    run ?? (await runStackInChild(stack)),
    bridge.selector,
    workers ? synapseWorkersScrape(workers).jobs : undefined,
  );
}
