// Validates rendered Kubernetes objects offline against the API schemas (kubernetes-models, GKE CRDs included),
// plus the strict unknown-field check kubernetes-models lacks.
import { BackendConfig } from "@kubernetes-models/gke/cloud.google.com/v1";
import { ManagedCertificate } from "@kubernetes-models/gke/networking.gke.io/v1";
import { FrontendConfig } from "@kubernetes-models/gke/networking.gke.io/v1beta1";
import {
  PrometheusRule,
  ServiceMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { CronJob, Job } from "kubernetes-models/batch/v1";
import { Ingress, NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { PriorityClass } from "kubernetes-models/scheduling.k8s.io/v1";
import {
  ConfigMap,
  Namespace,
  PersistentVolumeClaim,
  Secret,
  Service,
  ServiceAccount,
} from "kubernetes-models/v1";
import type { z } from "zod";
import { gmpClusterRulesSchema, gmpRulesSchema, podMonitoringSchema } from "../observability/crd-schemas.ts";
import { unknownFields } from "./strict-fields.ts";

interface Validating {
  prototype: { validate(): void };
}

const MODELS: Record<string, Validating> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "batch/v1/Job": Job,
  "batch/v1/CronJob": CronJob,
  "v1/ServiceAccount": ServiceAccount,
  "networking.k8s.io/v1/Ingress": Ingress,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "scheduling.k8s.io/v1/PriorityClass": PriorityClass,
  "networking.gke.io/v1/ManagedCertificate": ManagedCertificate,
  "networking.gke.io/v1beta1/FrontendConfig": FrontendConfig,
  "cloud.google.com/v1/BackendConfig": BackendConfig,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

/** Google Managed Prometheus publishes no models: ops' strict zod shapes of its CRDs stand in. */
const STRICT_SCHEMAS: Record<string, z.ZodType> = {
  "monitoring.googleapis.com/v1/PodMonitoring": podMonitoringSchema,
  "monitoring.googleapis.com/v1/Rules": gmpRulesSchema,
  "monitoring.googleapis.com/v1/ClusterRules": gmpClusterRulesSchema,
};

/**
 * Real API fields kubernetes-models' generated validators never read (its schema generator drops properties named
 * `description`, taking them for documentation), so the unknown-field check would flag them.
 */
const FIELDS_MODELS_MISS: Record<string, readonly string[]> = {
  "scheduling.k8s.io/v1/PriorityClass": ["description"],
};

/** Problems with one object: schema errors and unknown fields; empty when it is valid. */
export function kubernetesProblems(object: Record<string, unknown>): string[] {
  const kind = `${String(object.apiVersion)}/${String(object.kind)}`;
  const strict = STRICT_SCHEMAS[kind];
  if (strict) {
    const result = strict.safeParse(object);
    return result.success
      ? []
      : result.error.issues.map((issue) => `${kind}: ${issue.path.join(".")}: ${issue.message}`);
  }
  const model = MODELS[kind];
  if (!model) return [`no schema known for ${kind}: add its model to infra/testing/kubernetes-schema.ts`];
  // The model's validate reads `this`: run it on the plain object (and through the recording proxy).
  const validate = (data: unknown) => model.prototype.validate.call(data);
  try {
    validate(object);
  } catch (error) {
    return [`${kind}: ${error instanceof Error ? error.message : String(error)}`];
  }
  const missed = FIELDS_MODELS_MISS[kind] ?? [];
  return unknownFields(object, validate)
    .filter((path) => !missed.includes(path))
    .map((path) => `${kind}: unknown field ${path}`);
}
