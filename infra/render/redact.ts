// Turns a mock run into the render's two files. Pure and deterministic: resources sorted, keys in a stable order,
// every secret replaced by REDACTED (whole values of Secrets, and any generated value wherever it appears).
import { stringify } from "yaml";
import type { RecordedResource } from "./mocks.ts";

export const REDACTED = "<redacted>";

/** Replaces every occurrence of a secret value inside any string. */
export function redactValues(value: unknown, secrets: ReadonlySet<string>): unknown {
  if (typeof value === "string") {
    let text = value;
    // Longest first, so a value containing another is replaced whole.
    for (const secret of [...secrets].sort((a, b) => b.length - a.length))
      if (secret.length > 0) text = text.split(secret).join(REDACTED);
    return text;
  }
  if (Array.isArray(value)) return value.map((item) => redactValues(item, secrets));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactValues(item, secrets)]));
  return value;
}

const isKubernetes = (resource: RecordedResource) => resource.type.startsWith("kubernetes:");
const isSecretObject = (resource: RecordedResource) => resource.type === "kubernetes:core/v1:Secret";

/** A Kubernetes Secret with each value (not key) replaced. */
function redactSecretObject(inputs: Record<string, unknown>): Record<string, unknown> {
  const blank = (data: unknown) =>
    data && typeof data === "object"
      ? Object.fromEntries(Object.keys(data).map((key) => [key, REDACTED]))
      : data;
  return {
    ...inputs,
    ...("data" in inputs ? { data: blank(inputs.data) } : {}),
    ...("stringData" in inputs ? { stringData: blank(inputs.stringData) } : {}),
  };
}

/** Sorts object keys recursively (stable bytes whatever the registration order). */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object")
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  return value;
}

function redactResource(resource: RecordedResource, secrets: ReadonlySet<string>): RecordedResource {
  const inputs = isSecretObject(resource) ? redactSecretObject(resource.inputs) : resource.inputs;
  return { ...resource, inputs: redactValues(inputs, secrets) as Record<string, unknown> };
}

const byTypeAndName = (a: RecordedResource, b: RecordedResource) =>
  a.type === b.type ? a.name.localeCompare(b.name) : a.type.localeCompare(b.type);

/** `resources.json`: every resource's type, name and inputs. */
export function resourcesJson(resources: readonly RecordedResource[], secrets: ReadonlySet<string>): string {
  const list = [...resources]
    .sort(byTypeAndName)
    .map((resource) => redactResource(resource, secrets))
    .map(({ type, name, inputs }) => ({ type, name, inputs: sortKeys(inputs) }));
  return `${JSON.stringify(list, null, 2)}\n`;
}

/** Kubernetes objects in apply order of kind, then namespace/name. */
const KIND_ORDER = [
  "Namespace",
  "ConfigMap",
  "Secret",
  "PersistentVolumeClaim",
  "Service",
  "Job",
  "Deployment",
];

export function kubernetesObjects(
  resources: readonly RecordedResource[],
  secrets: ReadonlySet<string>,
): Record<string, unknown>[] {
  const rank = (kind: string) => {
    const index = KIND_ORDER.indexOf(kind);
    return index === -1 ? KIND_ORDER.length : index;
  };
  const key = (object: Record<string, unknown>) => {
    const metadata = (object.metadata ?? {}) as { name?: string; namespace?: string };
    return `${metadata.namespace ?? ""}/${metadata.name ?? ""}`;
  };
  return resources
    .filter(isKubernetes)
    .map((resource) => redactResource(resource, secrets).inputs)
    .sort((a, b) => {
      const byRank = rank(String(a.kind)) - rank(String(b.kind));
      if (byRank !== 0) return byRank;
      const byKind = String(a.kind).localeCompare(String(b.kind));
      return byKind !== 0 ? byKind : key(a).localeCompare(key(b));
    });
}

/** `manifests.yaml`: every Kubernetes object, multi-document YAML. */
export function manifestsYaml(resources: readonly RecordedResource[], secrets: ReadonlySet<string>): string {
  return kubernetesObjects(resources, secrets)
    .map((object) => stringify(object, { lineWidth: 0, sortMapEntries: false }))
    .join("---\n");
}
