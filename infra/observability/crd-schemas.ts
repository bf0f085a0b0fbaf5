// Strict shapes of the monitoring CRD objects we build, field names taken from the CRDs (Prometheus Operator
// v1 and GMP monitoring.googleapis.com/v1). kubernetes-models' validators accept unknown fields, and GMP has no
// published models, so the tests run every built object through these: a misspelt or unknown field fails.
import { z } from "zod";

const labels = z.record(z.string(), z.string());
const metadata = z.strictObject({ name: z.string().min(1), namespace: z.string().min(1), labels });
const duration = z.string().regex(/^(\d+(ms|s|m|h|d|w|y))+$/, "a Prometheus duration such as 30s or 5m");

export const ruleSchema = z.strictObject({
  alert: z.string().min(1),
  expr: z.string().min(1),
  for: duration,
  labels,
  annotations: z.strictObject({ summary: z.string().min(1), description: z.string(), runbook_url: z.url() }),
});

const ruleGroup = z.strictObject({
  name: z.string().min(1),
  interval: duration,
  rules: z.array(ruleSchema).min(1),
});

export const prometheusRuleSchema = z.strictObject({
  apiVersion: z.literal("monitoring.coreos.com/v1"),
  kind: z.literal("PrometheusRule"),
  metadata,
  spec: z.strictObject({ groups: z.array(ruleGroup).min(1) }),
});

export const gmpRulesSchema = z.strictObject({
  apiVersion: z.literal("monitoring.googleapis.com/v1"),
  kind: z.literal("Rules"),
  metadata,
  spec: z.strictObject({ groups: z.array(ruleGroup).min(1) }),
});

export const gmpClusterRulesSchema = z.strictObject({
  apiVersion: z.literal("monitoring.googleapis.com/v1"),
  kind: z.literal("ClusterRules"),
  metadata: z.strictObject({ name: z.string().min(1), labels }),
  spec: z.strictObject({ groups: z.array(ruleGroup).min(1) }),
});

const matchLabels = z.strictObject({ matchLabels: labels });

export const serviceMonitorSchema = z.strictObject({
  apiVersion: z.literal("monitoring.coreos.com/v1"),
  kind: z.literal("ServiceMonitor"),
  metadata,
  spec: z.strictObject({
    selector: matchLabels,
    namespaceSelector: z.strictObject({ matchNames: z.array(z.string()).min(1) }),
    endpoints: z
      .array(
        z.strictObject({
          port: z.string().min(1),
          path: z.string().startsWith("/"),
          interval: duration,
          scheme: z.enum(["http", "https"]),
          relabelings: z
            .array(
              z.strictObject({
                action: z.literal("replace"),
                targetLabel: z.string().min(1),
                replacement: z.string().min(1),
              }),
            )
            .optional(),
        }),
      )
      .min(1),
  }),
});

export const podMonitoringSchema = z.strictObject({
  apiVersion: z.literal("monitoring.googleapis.com/v1"),
  kind: z.literal("PodMonitoring"),
  metadata,
  spec: z.strictObject({
    selector: matchLabels,
    endpoints: z
      .array(
        z.strictObject({ port: z.string().min(1), path: z.string().startsWith("/"), interval: duration }),
      )
      .min(1),
    targetLabels: z.strictObject({
      // The metadata labels GMP allows here.
      metadata: z.array(
        z.enum(["pod", "container", "node", "top_level_controller_name", "top_level_controller_type"]),
      ),
    }),
  }),
});
