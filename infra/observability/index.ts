// Monitoring for the stack: scrape objects in the style(s) the cluster runs, the alert rules, and the bridge's
// Grafana dashboard. What the objects contain is decided by the pure builders beside this file.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ScrapeStyle } from "../config/schema.ts";
import { bridgeDashboard, dashboardConfigMap } from "./dashboard.ts";
import { alertRuleGroups, type BackupRuleInput, ruleGroupsByScope, type WorkerRuleInput } from "./rules.ts";
import {
  gmpClusterRules,
  gmpRules,
  podMonitoring,
  prometheusRule,
  type ScrapeTarget,
  serviceMonitor,
  usesGmp,
  usesPrometheusOperator,
} from "./scrape.ts";

/** What to scrape for one workload. */
export interface ScrapedWorkload {
  /** The Service's name; also the PodMonitoring's name and so the `job` label in both styles. */
  readonly name: string;
  /** Labels of the Service (ServiceMonitor) and of the pods (PodMonitoring): use the pod labels the Service selects on. */
  readonly selector: Readonly<Record<string, string>>;
  /** Named port serving metrics, on both the container and the Service (e.g. `metrics`). */
  readonly metricsPortName: string;
  /** `/_synapse/metrics` for Synapse, `/metrics` for the bridge. */
  readonly metricsPath: string;
}

export interface ObservabilityArgs {
  readonly namespace: pulumi.Input<string>;
  /** Labels put on every object (e.g. `app.kubernetes.io/part-of`). */
  readonly labels: Readonly<Record<string, string>>;
  /** Stack config: `none`, `prometheus-operator`, `gmp` or `both`. */
  readonly scrapeStyle: ScrapeStyle;
  readonly scrapeInterval?: string;
  readonly synapse: ScrapedWorkload & {
    /** Deployment name, for the not-ready rule (kube-state-metrics). */
    readonly deploymentName: string;
    /** The media PVC, for the volume rules (kubelet). */
    readonly mediaClaimName: string;
  };
  /** The bridge; its rules and dashboard are created even before it runs (its metrics then read as absent). */
  readonly bridge: ScrapedWorkload;
  /**
   * Synapse in worker mode: a scrape per worker group and one for the proxy (each named like its job), and the jobs
   * the worker rules and panels read (wiring.ts derives both from the worker settings).
   */
  readonly synapseWorkers?: { readonly scrapes: readonly ScrapedWorkload[]; readonly jobs: WorkerRuleInput };
  /** The backup CronJobs the stack runs, for the backup alerts (wiring.ts's backupAlertJobs). */
  readonly backups?: readonly BackupRuleInput[];
  /** Absolute URL of docs/runbooks.md in the repository (rules link to its sections). */
  readonly runbookBaseUrl: string;
  /** Create the bridge dashboard ConfigMap for Grafana's sidecar. */
  readonly grafanaDashboard: boolean;
}

export class Observability extends pulumi.ComponentResource {
  /** Names of the created monitoring objects by kind, for the stack outputs and tests. */
  public readonly objectNames: pulumi.Output<string[]>;

  constructor(name: string, args: ObservabilityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:observability:Observability", name, {}, opts);
    const parent = { parent: this };
    const namespace = pulumi.output(args.namespace);
    const interval = args.scrapeInterval ?? "30s";
    const created: pulumi.Output<string>[] = [];

    const workloads = [args.synapse, args.bridge, ...(args.synapseWorkers?.scrapes ?? [])];
    const targets = namespace.apply((ns): ScrapeTarget[] =>
      workloads.map((workload) => ({
        name: workload.name,
        namespace: ns,
        labels: args.labels,
        selector: workload.selector,
        port: workload.metricsPortName,
        path: workload.metricsPath,
        interval,
      })),
    );
    const ruleInput = (ns: string) => ({
      synapseJob: args.synapse.name,
      bridgeJob: args.bridge.name,
      namespace: ns,
      synapseDeployment: args.synapse.deploymentName,
      mediaClaim: args.synapse.mediaClaimName,
      runbookBaseUrl: args.runbookBaseUrl,
      workers: args.synapseWorkers?.jobs,
      backups: args.backups,
    });
    const rulesName = "nova-matrix-alerts";

    /**
     * A monitoring CRD object; `spec` comes from a pure builder, apiVersion/kind are checked against it. A cluster-
     * scoped object gets `clusterName` and no namespace.
     */
    const custom = (
      apiVersion: string,
      kind: string,
      objectName: string,
      object: pulumi.Output<{ apiVersion: string; kind: string; spec: unknown }>,
      clusterName?: pulumi.Output<string>,
    ) => {
      const resource = new k8s.apiextensions.CustomResource(
        `${kind.toLowerCase()}-${objectName}`,
        {
          apiVersion,
          kind,
          metadata: clusterName
            ? { name: clusterName, labels: { ...args.labels } }
            : { name: objectName, namespace: args.namespace, labels: { ...args.labels } },
          spec: object.apply((o) => {
            if (o.apiVersion !== apiVersion || o.kind !== kind) {
              throw new Error(`builder returned ${o.apiVersion} ${o.kind}, expected ${apiVersion} ${kind}`);
            }
            return o.spec;
          }),
        },
        parent,
      );
      created.push(pulumi.interpolate`${kind}/${resource.metadata.name}`);
    };

    const OPERATOR = "monitoring.coreos.com/v1";
    const GMP = "monitoring.googleapis.com/v1";
    workloads.forEach((workload, index) => {
      const target = targets.apply((list) => list[index] as ScrapeTarget);
      if (usesPrometheusOperator(args.scrapeStyle)) {
        custom(OPERATOR, "ServiceMonitor", workload.name, target.apply(serviceMonitor));
      }
      if (usesGmp(args.scrapeStyle)) custom(GMP, "PodMonitoring", workload.name, target.apply(podMonitoring));
    });
    const rules = (groups: (ns: string) => ReturnType<typeof alertRuleGroups>) =>
      namespace.apply((ns) => ({ name: rulesName, namespace: ns, labels: args.labels, groups: groups(ns) }));
    if (usesPrometheusOperator(args.scrapeStyle)) {
      // The Operator's Prometheus sees the whole cluster: every group in one object.
      const all = rules((ns) => alertRuleGroups(ruleInput(ns)));
      custom(OPERATOR, "PrometheusRule", rulesName, all.apply(prometheusRule));
    }
    if (usesGmp(args.scrapeStyle)) {
      // GMP scopes a Rules object to its namespace: rules on kube-state-metrics and kubelet series (scraped in
      // other namespaces) go to a ClusterRules, named after the namespace since it is cluster-wide.
      const namespaced = rules((ns) => ruleGroupsByScope(ruleInput(ns)).namespaced);
      custom(GMP, "Rules", rulesName, namespaced.apply(gmpRules));
      const cluster = rules((ns) => ruleGroupsByScope(ruleInput(ns)).cluster);
      const clusterName = pulumi.interpolate`${rulesName}-${namespace}`;
      custom(
        GMP,
        "ClusterRules",
        rulesName,
        pulumi.all([cluster, clusterName]).apply(([input, name]) => gmpClusterRules({ ...input, name })),
        clusterName,
      );
    }

    if (args.grafanaDashboard) {
      const dashboard = namespace.apply((ns) =>
        dashboardConfigMap({
          name: "nova-matrix-bridge-dashboard",
          namespace: ns,
          labels: args.labels,
          dashboard: bridgeDashboard({
            bridgeJob: args.bridge.name,
            synapseJob: args.synapse.name,
            workers: args.synapseWorkers?.jobs,
          }),
        }),
      );
      const map = new k8s.core.v1.ConfigMap(
        "nova-matrix-bridge-dashboard",
        {
          metadata: {
            name: "nova-matrix-bridge-dashboard",
            namespace: args.namespace,
            labels: dashboard.apply((d) => d.metadata?.labels ?? {}),
          },
          data: dashboard.apply((d) => d.data ?? {}),
        },
        parent,
      );
      created.push(pulumi.interpolate`ConfigMap/${map.metadata.name}`);
    }

    this.objectNames = pulumi.all(created);
    this.registerOutputs({ objectNames: this.objectNames });
  }
}
