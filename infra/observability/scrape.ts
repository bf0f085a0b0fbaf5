// Scrape and rule objects for the two styles a GKE user may run (pure): the Prometheus Operator's
// ServiceMonitor / PrometheusRule and Google Managed Prometheus' PodMonitoring / Rules. Both name the job the
// same (the Service name = the PodMonitoring name), so one set of rules matches either style.
import type { IPrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import type { ScrapeStyle } from "../config/schema.ts";
import type { RuleGroup } from "./rules.ts";

export const usesPrometheusOperator = (style: ScrapeStyle) =>
  style === "prometheus-operator" || style === "both";
export const usesGmp = (style: ScrapeStyle) => style === "gmp" || style === "both";

/** One thing to scrape: a workload's pods (GMP) behind a Service (Prometheus Operator). */
export interface ScrapeTarget {
  /** Object name, and the `job` label both styles give its series (the Service's name for a ServiceMonitor). */
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Labels of the Service (ServiceMonitor) or of the pods (PodMonitoring). */
  readonly selector: Readonly<Record<string, string>>;
  /** Named container/Service port that serves the metrics. */
  readonly port: string;
  readonly path: string;
  /** Scrape interval, e.g. `30s`. */
  readonly interval: string;
}

/** GMP `monitoring.googleapis.com/v1` PodMonitoring (no published models: schemas.ts checks it). */
export interface PodMonitoring {
  apiVersion: "monitoring.googleapis.com/v1";
  kind: "PodMonitoring";
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: {
    selector: { matchLabels: Record<string, string> };
    endpoints: { port: string; path: string; interval: string }[];
    targetLabels: { metadata: string[] };
  };
}

/** GMP `monitoring.googleapis.com/v1` Rules: namespaced, evaluated by GMP's managed rule-evaluator. */
export interface GmpRules {
  apiVersion: "monitoring.googleapis.com/v1";
  kind: "Rules";
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: { groups: RuleGroup[] };
}

export function serviceMonitor(target: ScrapeTarget): IServiceMonitor {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: { name: target.name, namespace: target.namespace, labels: { ...target.labels } },
    spec: {
      selector: { matchLabels: { ...target.selector } },
      namespaceSelector: { matchNames: [target.namespace] },
      endpoints: [
        {
          port: target.port,
          path: target.path,
          interval: target.interval,
          scheme: "http",
          // The job is the Service's name by default; several Services may carry the selected labels (worker mode's
          // matrix-synapse-main for `matrix-synapse`), so it is set to the target's name, as a PodMonitoring's is.
          relabelings: [{ action: "replace", targetLabel: "job", replacement: target.name }],
        },
      ],
    },
  };
}

export function podMonitoring(target: ScrapeTarget): PodMonitoring {
  return {
    apiVersion: "monitoring.googleapis.com/v1",
    kind: "PodMonitoring",
    metadata: { name: target.name, namespace: target.namespace, labels: { ...target.labels } },
    spec: {
      selector: { matchLabels: { ...target.selector } },
      endpoints: [{ port: target.port, path: target.path, interval: target.interval }],
      // `pod` and `container` on every series, as the Prometheus Operator's kubernetes_sd gives them.
      targetLabels: { metadata: ["pod", "container"] },
    },
  };
}

/** GMP `monitoring.googleapis.com/v1` ClusterRules: cluster-scoped, for series written outside the namespace. */
export interface GmpClusterRules {
  apiVersion: "monitoring.googleapis.com/v1";
  kind: "ClusterRules";
  metadata: { name: string; labels: Record<string, string> };
  spec: { groups: RuleGroup[] };
}

export interface RuleObjectInput {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly groups: readonly RuleGroup[];
}

const copyGroups = (groups: readonly RuleGroup[]): RuleGroup[] =>
  groups.map((group) => ({ ...group, rules: group.rules.map((rule) => ({ ...rule })) }));

export function prometheusRule(input: RuleObjectInput): IPrometheusRule {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: { name: input.name, namespace: input.namespace, labels: { ...input.labels } },
    spec: {
      groups: copyGroups(input.groups).map((group) => ({
        name: group.name,
        interval: group.interval,
        rules: group.rules.map((rule) => ({
          alert: rule.alert,
          expr: rule.expr,
          for: rule.for,
          labels: { ...rule.labels },
          annotations: { ...rule.annotations },
        })),
      })),
    },
  };
}

export function gmpRules(input: RuleObjectInput): GmpRules {
  return {
    apiVersion: "monitoring.googleapis.com/v1",
    kind: "Rules",
    metadata: { name: input.name, namespace: input.namespace, labels: { ...input.labels } },
    spec: { groups: copyGroups(input.groups) },
  };
}

/** Cluster-scoped: no namespace. The name must be unique in the cluster (the caller puts the namespace in it). */
export function gmpClusterRules(input: Omit<RuleObjectInput, "namespace">): GmpClusterRules {
  return {
    apiVersion: "monitoring.googleapis.com/v1",
    kind: "ClusterRules",
    metadata: { name: input.name, labels: { ...input.labels } },
    spec: { groups: copyGroups(input.groups) },
  };
}
