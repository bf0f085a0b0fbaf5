import { describe, expect, it } from "vitest";
import { kubernetesProblems } from "./kubernetes-schema.ts";

const deployment = () => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "a", labels: { app: "a" }, annotations: { "x/y": "z" } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: "a" } },
    template: {
      metadata: { labels: { app: "a" } },
      spec: { containers: [{ name: "c", image: "i", ports: [{ containerPort: 80, name: "http" }] }] },
    },
  },
});

describe("kubernetesProblems", () => {
  it("accepts a valid object, free-form maps (labels, annotations) included", () => {
    expect(kubernetesProblems(deployment())).toEqual([]);
  });

  it("reports unknown fields that the schema library alone lets through", () => {
    const object = deployment() as Record<string, unknown> & { spec: Record<string, unknown> };
    object.spec.replica = 2;
    const container = (object.spec.template as { spec: { containers: Record<string, unknown>[] } }).spec
      .containers[0];
    if (container) container.imagePull = "x";
    expect(kubernetesProblems(object)).toEqual([
      "apps/v1/Deployment: unknown field spec.replica",
      "apps/v1/Deployment: unknown field spec.template.spec.containers[0].imagePull",
    ]);
  });

  it("reports schema errors and kinds it has no schema for", () => {
    const object = deployment();
    (object.spec as Record<string, unknown>).replicas = "one";
    expect(kubernetesProblems(object)[0]).toMatch(/replicas/);
    expect(kubernetesProblems({ apiVersion: "example.com/v1", kind: "Widget" })[0]).toMatch(/no schema/);
  });

  it("checks GKE CRDs strictly too", () => {
    expect(
      kubernetesProblems({
        apiVersion: "networking.gke.io/v1",
        kind: "ManagedCertificate",
        metadata: { name: "c" },
        spec: { domains: ["chat.nova.com"], domain: "x" },
      }),
    ).toEqual(["networking.gke.io/v1/ManagedCertificate: unknown field spec.domain"]);
  });
});
