// Compares two renders (their redacted resources.json) resource by resource, and writes the comparison as Markdown
// for a pull request. Pure: no git, no files. Secrets were redacted before they got here and stay so.

import { stringify } from "yaml";
import { quantityBytes } from "../config/quantity.ts";
import { KNOWN_AFTER_APPLY } from "./mocks.ts";

export interface RenderedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

export interface FieldChange {
  /** JSON path inside the resource's inputs, e.g. `spec.template.spec.containers[name=synapse].image`. */
  path: string;
  /** Undefined when the field was added (before) or removed (after). */
  before?: unknown;
  after?: unknown;
  /** Why this change replaces the resource (delete and create) instead of updating it; undefined for an update. */
  replaces?: string;
}

export type ResourceDiff =
  | { kind: "added" | "removed"; type: string; name: string; inputs: Record<string, unknown> }
  | { kind: "changed"; type: string; name: string; changes: FieldChange[] };

/**
 * Changes that replace the resource rather than update it in place: the field is immutable in the API, or the
 * provider marks it "forces replacement". Kept small and explicit; a path matches itself and everything below it.
 */
export interface ReplacementRule {
  /** A resource type, or a prefix ending in `*`. */
  type: string;
  path: string;
  /** Only some changes replace (a PVC grows in place but cannot shrink). */
  when?: (before: unknown, after: unknown) => boolean;
  reason: string;
}

export const REPLACEMENT_RULES: readonly ReplacementRule[] = [
  { type: "kubernetes:*", path: "metadata.name", reason: "a Kubernetes object's name is its identity" },
  { type: "kubernetes:*", path: "metadata.namespace", reason: "an object cannot move between namespaces" },
  { type: "kubernetes:batch/v1:Job", path: "spec.template", reason: "a Job's pod template is immutable" },
  {
    type: "kubernetes:apps/v1:Deployment",
    path: "spec.selector",
    reason: "a Deployment's selector is immutable",
  },
  {
    type: "kubernetes:core/v1:PersistentVolumeClaim",
    path: "spec.storageClassName",
    reason: "a claim's storage class is immutable: a new, empty volume",
  },
  {
    type: "kubernetes:core/v1:PersistentVolumeClaim",
    path: "spec.accessModes",
    reason: "a claim's access modes are immutable: a new, empty volume",
  },
  {
    type: "kubernetes:core/v1:PersistentVolumeClaim",
    path: "spec.resources.requests.storage",
    when: (before, after) => quantityBytes(after) < quantityBytes(before),
    reason: "a claim cannot shrink: a new, empty volume",
  },
  {
    type: "gcp:sql/databaseInstance:DatabaseInstance",
    path: "databaseVersion",
    reason: "a database major version change: treat as a new instance (dump and restore, docs/operations.md)",
  },
  {
    type: "gcp:sql/databaseInstance:DatabaseInstance",
    path: "name",
    reason: "the instance name is its identity",
  },
  {
    type: "gcp:sql/databaseInstance:DatabaseInstance",
    path: "region",
    reason: "an instance cannot move region",
  },
  { type: "gcp:storage/bucket:Bucket", path: "name", reason: "a bucket's name is its identity" },
  {
    type: "gcp:compute/sSLPolicy:SSLPolicy",
    path: "name",
    reason: "an SSL policy's name is its identity (the FrontendConfig names it)",
  },
  { type: "gcp:storage/bucket:Bucket", path: "location", reason: "a bucket cannot move location" },
  { type: "random:*", path: "keepers", reason: "a new keeper generates a new value (rotation)" },
  { type: "random:*", path: "length", reason: "a new length generates a new value" },
];

const typeMatches = (pattern: string, type: string) =>
  pattern.endsWith("*") ? type.startsWith(pattern.slice(0, -1)) : pattern === type;

/** `spec.containers[name=x].image` -> `spec.containers.image`: rules name fields, not list items. */
const fieldPath = (path: string) => path.replace(/\[[^\]]*\]/g, "");

export function replacementReason(
  type: string,
  change: Omit<FieldChange, "replaces">,
  rules: readonly ReplacementRule[] = REPLACEMENT_RULES,
): string | undefined {
  const field = fieldPath(change.path);
  const rule = rules.find(
    (candidate) =>
      typeMatches(candidate.type, type) &&
      (field === candidate.path || field.startsWith(`${candidate.path}.`)) &&
      (candidate.when === undefined || candidate.when(change.before, change.after)),
  );
  return rule?.reason;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** Lists of named items (containers, env, ports, volumes) are matched by name, so an insertion is one change. */
const namedItems = (list: unknown[]) =>
  list.every((item) => isRecord(item) && typeof item.name === "string") &&
  new Set(list.map((item) => (item as { name: string }).name)).size === list.length;

function fieldChanges(before: unknown, after: unknown, path: string): Omit<FieldChange, "replaces">[] {
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  const join = (key: string) => (path === "" ? key : `${path}.${key}`);
  if (isRecord(before) && isRecord(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => fieldChanges(before[key], after[key], join(key)));
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    if (namedItems(before) && namedItems(after)) {
      const byName = (list: unknown[]) =>
        new Map(list.map((item) => [(item as { name: string }).name, item]));
      const [old, now] = [byName(before), byName(after)];
      const names = [...new Set([...old.keys(), ...now.keys()])];
      return names.flatMap((name) => fieldChanges(old.get(name), now.get(name), `${path}[name=${name}]`));
    }
    const length = Math.max(before.length, after.length);
    return Array.from({ length }, (_, index) =>
      fieldChanges(before[index], after[index], `${path}[${index}]`),
    ).flat();
  }
  return [{ path, before, after }];
}

const key = (resource: { type: string; name: string }) => `${resource.type}::${resource.name}`;

/** Every resource added, removed or changed between two renders, in type then name order. */
export function diffRenders(
  base: readonly RenderedResource[],
  head: readonly RenderedResource[],
  rules: readonly ReplacementRule[] = REPLACEMENT_RULES,
): ResourceDiff[] {
  const old = new Map(base.map((resource) => [key(resource), resource]));
  const now = new Map(head.map((resource) => [key(resource), resource]));
  const keys = [...new Set([...old.keys(), ...now.keys()])].sort();
  return keys.flatMap((id): ResourceDiff[] => {
    const [before, after] = [old.get(id), now.get(id)];
    if (!before && after)
      return [{ kind: "added", type: after.type, name: after.name, inputs: after.inputs }];
    if (before && !after)
      return [{ kind: "removed", type: before.type, name: before.name, inputs: before.inputs }];
    if (!before || !after) return [];
    const changes = fieldChanges(before.inputs, after.inputs, "").map((change): FieldChange => {
      const replaces = replacementReason(after.type, change, rules);
      return replaces ? { ...change, replaces } : change;
    });
    return changes.length === 0 ? [] : [{ kind: "changed", type: after.type, name: after.name, changes }];
  });
}

/** A value for a Markdown table cell: JSON, shortened, with pipes and newlines escaped. */
export function cell(value: unknown, limit = 120): string {
  if (value === undefined) return "_(none)_";
  if (value === KNOWN_AFTER_APPLY) return "_known after apply_";
  const text = JSON.stringify(value);
  const short = text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
  return `\`${short.replace(/\|/g, "\\|").replace(/`/g, "'")}\``;
}

export interface DiffReportContext {
  stack: string;
  baseRef: string;
  baseCommit?: string;
  /** Rendered in preview mode: provider-computed values are unknown. */
  preview?: boolean;
}

/** The Markdown report of `diffs` (the PR comment and `npm run diff`'s output). */
export function diffMarkdown(diffs: readonly ResourceDiff[], context: DiffReportContext): string {
  const commit = context.baseCommit ? ` (${context.baseCommit.slice(0, 12)})` : "";
  const lines = [`### Stack \`${context.stack}\`: changes against \`${context.baseRef}\`${commit}`, ""];
  if (diffs.length === 0) {
    lines.push("No change to any resource.", "");
    return lines.join("\n");
  }
  const count = (kind: ResourceDiff["kind"]) => diffs.filter((diff) => diff.kind === kind).length;
  const replaced = diffs.filter((diff) => diff.kind === "changed" && diff.changes.some((c) => c.replaces));
  lines.push(
    `${count("added")} to add, ${count("changed")} to change (${replaced.length} replaced), ${count("removed")} to remove. ` +
      (context.preview
        ? "Rendered offline as a first preview: values providers compute are known after apply; secrets are redacted."
        : "Rendered offline with mock provider values; secrets are redacted."),
    "",
  );
  if (replaced.length > 0) {
    lines.push("> [!WARNING]", "> Replaced (deleted, then created again):");
    for (const diff of replaced)
      if (diff.kind === "changed")
        for (const change of diff.changes.filter((c) => c.replaces))
          lines.push(`> - \`${diff.type}\` **${diff.name}**: \`${change.path}\`: ${change.replaces}`);
    lines.push("");
  }
  for (const diff of diffs) {
    const title = `\`${diff.type}\` **${diff.name}**`;
    if (diff.kind === "changed") {
      const replaces = diff.changes.some((c) => c.replaces);
      lines.push(`#### ${replaces ? "± " : "~ "}${title} (${replaces ? "replaced" : "changed"})`, "");
      lines.push("| field | before | after | |", "| --- | --- | --- | --- |");
      for (const change of diff.changes)
        lines.push(
          `| \`${change.path}\` | ${cell(change.before)} | ${cell(change.after)} | ${change.replaces ? "replaces" : ""} |`,
        );
      lines.push("");
    } else {
      // The whole (redacted) object, folded: reviewers read what is created or deleted.
      lines.push(`#### ${diff.kind === "added" ? "+" : "-"} ${title} (${diff.kind})`, "");
      lines.push(
        "<details><summary>inputs</summary>",
        "",
        "```yaml",
        stringify(diff.inputs).trimEnd(),
        "```",
        "",
      );
      lines.push("</details>", "");
    }
  }
  return lines.join("\n");
}
