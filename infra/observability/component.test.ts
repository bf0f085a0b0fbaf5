// The component under Pulumi's mock runtime: which objects each scrape style creates, with what names.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import type { ObservabilityArgs } from "./index.ts";

interface Created {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const created: Created[] = [];

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        created.push({ type: args.type, name: args.name, inputs: args.inputs });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    "nova-matrix",
    "test",
    false,
  );
});

const args = (scrapeStyle: ObservabilityArgs["scrapeStyle"]): ObservabilityArgs => ({
  namespace: "nova-staging",
  labels: { "app.kubernetes.io/part-of": "nova-matrix" },
  scrapeStyle,
  synapse: {
    name: "matrix-synapse",
    selector: { app: "matrix-synapse" },
    metricsPortName: "metrics",
    metricsPath: "/_synapse/metrics",
    deploymentName: "matrix-synapse",
    mediaClaimName: "matrix-synapse-data",
  },
  bridge: {
    name: "nova-matrix-bridge",
    selector: { app: "nova-matrix-bridge" },
    metricsPortName: "metrics",
    metricsPath: "/metrics",
  },
  runbookBaseUrl: "https://example.invalid/docs/runbooks.md",
  grafanaDashboard: true,
});

const names = (component: { objectNames: pulumi.Output<string[]> }) =>
  new Promise<string[]>((resolve) => component.objectNames.apply((value) => resolve([...value].sort())));

describe("Observability", () => {
  it("creates both styles' objects with explicit names, and none for `none`", async () => {
    const { Observability } = await import("./index.ts");
    expect(await names(new Observability("both", args("both")))).toEqual([
      "ClusterRules/nova-matrix-alerts-nova-staging",
      "ConfigMap/nova-matrix-bridge-dashboard",
      "PodMonitoring/matrix-synapse",
      "PodMonitoring/nova-matrix-bridge",
      "PrometheusRule/nova-matrix-alerts",
      "Rules/nova-matrix-alerts",
      "ServiceMonitor/matrix-synapse",
      "ServiceMonitor/nova-matrix-bridge",
    ]);
    expect(await names(new Observability("none", { ...args("none"), grafanaDashboard: false }))).toEqual([]);
    expect(await names(new Observability("gmp", { ...args("gmp"), grafanaDashboard: false }))).toEqual([
      "ClusterRules/nova-matrix-alerts-nova-staging",
      "PodMonitoring/matrix-synapse",
      "PodMonitoring/nova-matrix-bridge",
      "Rules/nova-matrix-alerts",
    ]);
    const rule = created.find((c) => c.type === "kubernetes:monitoring.coreos.com/v1:PrometheusRule");
    const spec = rule?.inputs.spec as { groups: { rules: { alert: string }[] }[] };
    expect(spec.groups.flatMap((g) => g.rules.map((r) => r.alert))).toContain("SynapseDatabaseErrors");
    expect(rule?.inputs.metadata).toMatchObject({ name: "nova-matrix-alerts", namespace: "nova-staging" });
    // GMP: the namespace's Rules hold the job-scoped groups, the cluster-scoped ClusterRules the kube-state-metrics and
    // kubelet ones; the Operator's single PrometheusRule holds all of them.
    const groupsOf = (type: string) =>
      created
        .filter((c) => c.type === type)
        .flatMap((c) => (c.inputs.spec as { groups: { name: string }[] }).groups.map((g) => g.name));
    expect(groupsOf("kubernetes:monitoring.googleapis.com/v1:Rules")).toContain("nova-matrix.synapse");
    expect(new Set(groupsOf("kubernetes:monitoring.googleapis.com/v1:ClusterRules"))).toEqual(
      new Set(["nova-matrix.kubernetes"]),
    );
    const clusterRules = created.find(
      (c) => c.type === "kubernetes:monitoring.googleapis.com/v1:ClusterRules",
    );
    expect(clusterRules?.inputs.metadata).not.toHaveProperty("namespace");
  });

  it("worker mode: a scrape per worker group and the proxy in each style, and the worker rules", async () => {
    const { Observability } = await import("./index.ts");
    const { synapseWorkersScrape } = await import("./wiring.ts");
    const workers = synapseWorkersScrape({
      eventPersisters: { count: 3 },
    } as Parameters<typeof synapseWorkersScrape>[0]);
    const before = created.length;
    const objects = await names(new Observability("workers", { ...args("both"), synapseWorkers: workers }));
    const jobs = [
      "matrix-synapse-sync",
      "matrix-synapse-client",
      "matrix-synapse-event-persister",
      "matrix-synapse-media",
      "matrix-synapse-background",
      "matrix-synapse-proxy",
    ];
    for (const job of jobs) {
      expect(objects).toContain(`PodMonitoring/${job}`);
      expect(objects).toContain(`ServiceMonitor/${job}`);
    }
    const mine = created.slice(before);
    const rules = mine.find((c) => c.type === "kubernetes:monitoring.googleapis.com/v1:Rules");
    const spec = rules?.inputs.spec as {
      groups: { name: string; rules: { alert: string; expr: string }[] }[];
    };
    const workerGroup = spec.groups.find((g) => g.name === "nova-matrix.synapse-workers");
    expect(workerGroup?.rules.map((r) => r.alert)).toContain("SynapseStreamWriterDown");
    expect(workerGroup?.rules.find((r) => r.alert === "SynapseStreamWriterDown")?.expr).toContain("< 3");
    const proxyScrape = mine.find(
      (c) =>
        c.type === "kubernetes:monitoring.googleapis.com/v1:PodMonitoring" &&
        c.name.endsWith("matrix-synapse-proxy"),
    );
    expect(proxyScrape?.inputs.spec).toMatchObject({
      selector: { matchLabels: { app: "matrix-synapse-proxy" } },
      endpoints: [{ port: "stats", path: "/metrics" }],
    });
  });
});
