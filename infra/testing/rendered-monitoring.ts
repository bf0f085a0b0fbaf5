// What a stack renders for monitoring, read back from its objects: the alert rule groups GMP evaluates (the namespace's
// Rules and the ClusterRules), the scrape jobs, and the dashboard's queries. The promtool and metric-name tests run
// on these, so they check what the stacks ship, not a hand-made input.
import type { RuleGroup } from "../observability/rules.ts";
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
export function monitoringOf(stack: string, run: ChildStackRun): RenderedMonitoring {
  const { objects } = run;
  const rules = only(objects, "Rules") as Spec<{ groups: RuleGroup[] }>;
  const clusterRules = only(objects, "ClusterRules") as Spec<{ groups: RuleGroup[] }>;
  const monitorings = objects.filter((o) => o.kind === "PodMonitoring") as Spec<{
    selector: { matchLabels: Record<string, string> };
  }>[];
  const selects = (labels: Record<string, string>) => (m: (typeof monitorings)[number]) =>
    Object.entries(m.spec.selector.matchLabels).every(([key, value]) => labels[key] === value);
  const synapse = monitorings.find(selects(SYNAPSE_LABELS));
  const bridge = monitorings.find((m) => m !== synapse);
  if (!synapse?.metadata.name || !bridge?.metadata.name)
    throw new Error(`expected PodMonitorings for Synapse and the bridge, found ${monitorings.length}`);
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
  return {
    stack,
    run,
    namespace: String(rules.metadata.namespace),
    synapseJob: synapse.metadata.name,
    bridgeJob: bridge.metadata.name,
    groups: [...rules.spec.groups, ...clusterRules.spec.groups],
    dashboardQueries: queries,
  };
}

/** Renders the stack (in a child process) and reads its monitoring objects. */
export async function renderedMonitoring(stack: string): Promise<RenderedMonitoring> {
  return monitoringOf(stack, await runStackInChild(stack));
}
