// The pure comparison of two renders and its Markdown, on hand-made resources (no git, no renderer).
import { describe, expect, it } from "vitest";
import { quantityBytes } from "../config/quantity.ts";
import { cell, diffMarkdown, diffRenders, type RenderedResource } from "./diff.ts";
import { REDACTED } from "./redact.ts";

const deployment = (image: string, env: { name: string; value: string }[]): RenderedResource => ({
  type: "kubernetes:apps/v1:Deployment",
  name: "synapse-deployment",
  inputs: {
    metadata: { name: "matrix-synapse" },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "synapse" } },
      template: { spec: { containers: [{ name: "synapse", image, env }] } },
    },
  },
});
const pvc = (storage: string, storageClassName = "standard-rwo"): RenderedResource => ({
  type: "kubernetes:core/v1:PersistentVolumeClaim",
  name: "synapse-data",
  inputs: {
    metadata: { name: "matrix-synapse-data" },
    spec: { storageClassName, resources: { requests: { storage } } },
  },
});
const password = (keepers?: Record<string, string>): RenderedResource => ({
  type: "random:index/randomPassword:RandomPassword",
  name: "matrix-as-token",
  inputs: { length: 64, special: false, ...(keepers ? { keepers } : {}) },
});
const secret = (value: string): RenderedResource => ({
  type: "kubernetes:core/v1:Secret",
  name: "synapse-secrets",
  inputs: { metadata: { name: "matrix-synapse-secrets" }, stringData: { as_token: value } },
});

describe("diffRenders", () => {
  it("finds nothing between identical renders", () => {
    const render = [deployment("synapse:v1", []), pvc("10Gi")];
    expect(diffRenders(render, structuredClone(render))).toEqual([]);
  });

  it("reports added and removed resources in type then name order", () => {
    const diffs = diffRenders([pvc("10Gi")], [deployment("synapse:v1", [])]);
    expect(diffs.map((d) => `${d.kind} ${d.type} ${d.name}`)).toEqual([
      "added kubernetes:apps/v1:Deployment synapse-deployment",
      "removed kubernetes:core/v1:PersistentVolumeClaim synapse-data",
    ]);
  });

  it("names changed fields by JSON path, list items by name, as updates", () => {
    const before = deployment("synapse:v1", [{ name: "A", value: "1" }]);
    const after = deployment("synapse:v2", [
      { name: "B", value: "2" },
      { name: "A", value: "1" },
    ]);
    expect(diffRenders([before], [after])).toEqual([
      {
        kind: "changed",
        type: "kubernetes:apps/v1:Deployment",
        name: "synapse-deployment",
        changes: [
          {
            path: "spec.template.spec.containers[name=synapse].env[name=B]",
            before: undefined,
            after: { name: "B", value: "2" },
          },
          {
            path: "spec.template.spec.containers[name=synapse].image",
            before: "synapse:v1",
            after: "synapse:v2",
          },
        ],
      },
    ]);
  });

  it("marks replacements: a PVC shrink or new storage class (not a growth), a Job template, a keeper, a name", () => {
    const replaced = (base: RenderedResource, head: RenderedResource) =>
      diffRenders([base], [head]).flatMap((d) =>
        d.kind === "changed" ? d.changes.map((c) => c.replaces ?? "update") : [],
      );
    expect(replaced(pvc("10Gi"), pvc("20Gi"))).toEqual(["update"]);
    expect(replaced(pvc("10Gi"), pvc("5000Mi"))).toEqual(["a claim cannot shrink: a new, empty volume"]);
    expect(replaced(pvc("10Gi"), pvc("10Gi", "premium-rwo"))).toEqual([
      "a claim's storage class is immutable: a new, empty volume",
    ]);
    expect(replaced(password(), password({ rotation: "r1" }))).toEqual([
      "a new keeper generates a new value (rotation)",
    ]);
    const job = (image: string): RenderedResource => ({
      type: "kubernetes:batch/v1:Job",
      name: "db-setup",
      inputs: {
        metadata: { name: "setup" },
        spec: { template: { spec: { containers: [{ name: "psql", image }] } } },
      },
    });
    expect(replaced(job("postgres:15.9"), job("postgres:15.10"))).toEqual([
      "a Job's pod template is immutable",
    ]);
    const renamed = deployment("synapse:v1", []);
    renamed.inputs.metadata = { name: "synapse" };
    expect(replaced(deployment("synapse:v1", []), renamed)).toEqual([
      "a Kubernetes object's name is its identity",
    ]);
    // The same template change on a Deployment is a rolling update.
    expect(replaced(deployment("synapse:v1", []), deployment("synapse:v2", []))).toEqual(["update"]);
  });

  it("reads Kubernetes quantities", () => {
    expect(quantityBytes("10Gi")).toBe(10 * 2 ** 30);
    expect(quantityBytes("500M")).toBe(5e8);
    expect(quantityBytes("lots")).toBeNaN();
  });
});

describe("diffMarkdown", () => {
  it("says so when nothing changed", () => {
    expect(diffMarkdown([], { stack: "staging", baseRef: "origin/main" })).toContain(
      "No change to any resource.",
    );
  });

  it("summarises, warns about replacements, and tabulates each change", () => {
    const diffs = diffRenders(
      [pvc("10Gi"), deployment("synapse:v1", [])],
      [pvc("5Gi"), deployment("synapse:v2", []), password()],
    );
    const report = diffMarkdown(diffs, {
      stack: "prod",
      baseRef: "origin/main",
      baseCommit: "0123456789abcdef",
    });
    expect(report).toContain("### Stack `prod`: changes against `origin/main` (0123456789ab)");
    expect(report).toContain("1 to add, 2 to change (1 replaced), 0 to remove.");
    expect(report).toContain(
      "> - `kubernetes:core/v1:PersistentVolumeClaim` **synapse-data**: `spec.resources.requests.storage`: a claim cannot shrink",
    );
    expect(report).toContain('| `spec.resources.requests.storage` | `"10Gi"` | `"5Gi"` | replaces |');
    expect(report).toContain(
      '| `spec.template.spec.containers[name=synapse].image` | `"synapse:v1"` | `"synapse:v2"` |  |',
    );
    expect(report).toContain(
      "#### + `random:index/randomPassword:RandomPassword` **matrix-as-token** (added)",
    );
    expect(report).toContain("length: 64");
  });

  it("keeps redacted values redacted, and escapes what would break a table", () => {
    const renamed = secret(REDACTED);
    renamed.inputs.stringData = { hs_token: REDACTED };
    const report = diffMarkdown(diffRenders([secret(REDACTED)], [renamed]), {
      stack: "staging",
      baseRef: "main",
    });
    expect(report).toContain(`| \`stringData.as_token\` | \`"${REDACTED}"\` | _(none)_ |  |`);
    expect(cell("a|b")).toBe('`"a\\|b"`');
    expect(cell("x".repeat(500)).length).toBeLessThan(130);
  });
});
