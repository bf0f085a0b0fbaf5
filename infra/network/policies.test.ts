import * as pulumi from "@pulumi/pulumi";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { PriorityClass } from "kubernetes-models/scheduling.k8s.io/v1/PriorityClass";
import { describe, expect, it } from "vitest";
import { unknownFields } from "../testing/strict-fields.ts";
import {
  GCLB_RANGES,
  type NetworkInput,
  networkPolicies,
  podSecurityLabels,
  synapseDisruptionBudget,
  synapsePriorityClass,
} from "./policies.ts";
import { admits, allowsOut, connects, type Endpoint } from "./reachability.ts";

const NS = "nova-staging";
const synapse = { app: "matrix-synapse" };
const bridge = { app: "nova-matrix-bridge" };
const chat = { app: "realtime-chat-service" };
const postgres = { app: "postgres" };
const setupJob = { app: "matrix-synapse-db-setup" };
const backupJob = { "app.kubernetes.io/component": "nova-matrix-db-backup" };

const staging: NetworkInput = {
  namespace: NS,
  labels: { "app.kubernetes.io/part-of": "nova-matrix" },
  synapse: { podSelector: synapse, clientPort: 8008, metricsPort: 9000, clients: [bridge, chat] },
  loadBalancerRanges: [],
  scrapers: [
    { namespace: "gmp-system" },
    { namespace: "monitoring", podSelector: { "app.kubernetes.io/name": "prometheus" } },
  ],
  bridge: { podSelector: bridge, port: 8080, metricsPort: 9100, clients: [chat] },
  database: { pods: postgres, port: 5432 },
  databaseJobs: { key: "app", values: ["matrix-synapse-db-setup", "nova-bridge-db-setup"] },
  backupJobs: {
    dumps: { matchLabels: { "app.kubernetes.io/component": "nova-matrix-db-backup" } },
    media: { matchLabels: { "app.kubernetes.io/component": "nova-matrix-media-backup" } },
  },
};
const prod: NetworkInput = {
  ...staging,
  namespace: "nova-prod",
  synapse: { ...staging.synapse, publicPort: 8009 },
  loadBalancerRanges: GCLB_RANGES,
  database: { address: "10.20.0.3", port: 5432 },
};

const pod = (labels: Record<string, string>, namespace = NS): Endpoint => ({ namespace, labels });
const to = (labels: Record<string, string>, port: number, namespace = NS) => ({ namespace, labels, port });
const kubeDns = {
  namespace: "kube-system",
  labels: { "k8s-app": "kube-dns" },
  port: 53,
  protocol: "UDP" as const,
};

describe("NetworkPolicies", () => {
  const policies = networkPolicies(staging);

  it("are valid objects, one per workload, each selecting only that workload's pods", () => {
    for (const object of [...policies, ...networkPolicies(prod)]) {
      new NetworkPolicy(object).validate();
      expect(unknownFields(object, (data) => NetworkPolicy.prototype.validate.call(data))).toEqual([]);
      expect(object.spec?.policyTypes).toEqual(["Ingress", "Egress"]);
      expect(object.spec?.podSelector).not.toEqual({});
    }
    expect(policies.map((p) => p.metadata?.name)).toEqual([
      "matrix-synapse",
      "nova-bridge",
      "nova-matrix-db-setup",
      "nova-matrix-db-backup",
      "nova-matrix-media-backup",
    ]);
  });

  it("let the dump job reach the database and Google, the media archive job only Google", () => {
    const dumps = pod({ "app.kubernetes.io/component": "nova-matrix-db-backup" });
    const media = pod({ "app.kubernetes.io/component": "nova-matrix-media-backup" });
    const database = to(postgres, 5432);
    const google = { ip: "142.250.74.36", port: 443 };
    expect(connects(policies, dumps, database)).toBe(true);
    expect(connects(policies, media, database)).toBe(false);
    expect(connects(policies, dumps, google)).toBe(true);
    expect(connects(policies, media, google)).toBe(true);
    // Cloud SQL (no dump job): only the media archive's policy.
    const { dumps: _dumps, ...mediaOnly } = staging.backupJobs ?? { media: { matchLabels: {} } };
    expect(networkPolicies({ ...staging, backupJobs: mediaOnly }).map((p) => p.metadata?.name)).not.toContain(
      "nova-matrix-db-backup",
    );
  });

  it("let only the bridge and realtime-chat-service reach Synapse's client port", () => {
    expect(connects(policies, pod(bridge), to(synapse, 8008))).toBe(true);
    expect(connects(policies, pod(chat), to(synapse, 8008))).toBe(true);
    expect(connects(policies, pod({ app: "something-else" }), to(synapse, 8008))).toBe(false);
    expect(connects(policies, pod(bridge, "other-namespace"), to(synapse, 8008))).toBe(false);
    expect(connects(policies, pod(bridge), to(synapse, 9000))).toBe(false);
  });

  it("let the scrapers reach only the metrics ports", () => {
    const gmp = pod({ app: "collector" }, "gmp-system");
    expect(connects(policies, gmp, to(synapse, 9000))).toBe(true);
    expect(connects(policies, gmp, to(synapse, 8008))).toBe(false);
    expect(connects(policies, gmp, to(bridge, 9100))).toBe(true);
    const prometheus = pod({ "app.kubernetes.io/name": "prometheus" }, "monitoring");
    expect(connects(policies, prometheus, to(synapse, 9000))).toBe(true);
    expect(connects(policies, pod({ app: "grafana" }, "monitoring"), to(synapse, 9000))).toBe(false);
  });

  it("let Google's load balancers reach only Synapse's public port, and only in prod", () => {
    const prodPolicies = networkPolicies(prod);
    expect(connects(prodPolicies, { ip: "35.191.12.7" }, to(synapse, 8009, "nova-prod"))).toBe(true);
    expect(connects(prodPolicies, { ip: "130.211.3.250" }, to(synapse, 8009, "nova-prod"))).toBe(true);
    expect(connects(prodPolicies, { ip: "130.211.4.1" }, to(synapse, 8009, "nova-prod"))).toBe(false);
    expect(connects(prodPolicies, { ip: "35.191.12.7" }, to(synapse, 8008, "nova-prod"))).toBe(false);
    expect(connects(prodPolicies, pod(chat, "nova-prod"), to(synapse, 8009, "nova-prod"))).toBe(false);
    expect(connects(policies, { ip: "35.191.12.7" }, to(synapse, 8008))).toBe(false);
  });

  it("let Google's load balancers reach the bridge only when it is exposed through an Ingress", () => {
    const exposed = networkPolicies({
      ...prod,
      bridge: {
        podSelector: bridge,
        port: 8080,
        metricsPort: 9100,
        clients: [chat],
        loadBalancerRanges: GCLB_RANGES,
      },
    });
    expect(connects(exposed, { ip: "35.191.1.1" }, to(bridge, 8080, "nova-prod"))).toBe(true);
    expect(connects(exposed, { ip: "35.191.1.1" }, to(bridge, 9100, "nova-prod"))).toBe(false);
    expect(connects(networkPolicies(prod), { ip: "35.191.1.1" }, to(bridge, 8080, "nova-prod"))).toBe(false);
  });

  it("let Synapse, the bridge and the jobs open connections only to their database and DNS", () => {
    for (const source of [synapse, bridge, setupJob, backupJob]) {
      expect(connects(policies, pod(source), to(postgres, 5432)), JSON.stringify(source)).toBe(true);
      expect(connects(policies, pod(source), kubeDns)).toBe(true);
      expect(connects(policies, pod(source), { ip: "169.254.20.10", port: 53, protocol: "UDP" })).toBe(true);
      expect(connects(policies, pod(source), to(postgres, 5433))).toBe(false);
      expect(connects(policies, pod(source), to(chat, 3000))).toBe(false);
      expect(connects(policies, pod(source), to(postgres, 5432, "other-namespace"))).toBe(false);
    }
    expect(connects(policies, pod(bridge), to(synapse, 8008))).toBe(true);
    expect(connects(policies, pod(synapse), to(bridge, 8080))).toBe(false);
    expect(connects(policies, pod(setupJob), to(synapse, 8008))).toBe(false);
    // Prod: Cloud SQL's private address, and nothing else of the VPC.
    const prodPolicies = networkPolicies(prod);
    expect(connects(prodPolicies, pod(synapse, "nova-prod"), { ip: "10.20.0.3", port: 5432 })).toBe(true);
    expect(connects(prodPolicies, pod(synapse, "nova-prod"), { ip: "10.20.0.4", port: 5432 })).toBe(false);
  });

  it("keep the metadata server from Synapse and the bridge (its DNS port only), open it to the backup jobs", () => {
    const metadata = (port: number) => ({ ip: "169.254.169.254", port });
    for (const source of [synapse, bridge, setupJob]) {
      expect(connects(policies, pod(source), metadata(80))).toBe(false);
      expect(connects(policies, pod(source), { ...metadata(53), protocol: "UDP" })).toBe(true);
      expect(connects(policies, pod(source), { ip: "142.250.74.36", port: 443 })).toBe(false);
    }
    expect(connects(policies, pod(backupJob), metadata(80))).toBe(true);
    expect(connects(policies, pod(backupJob), { ip: "142.250.74.36", port: 443 })).toBe(true);
    // Google APIs means public addresses: not the cluster's or the VPC's.
    expect(connects(policies, pod(backupJob), { ip: "10.4.1.9", port: 443 })).toBe(false);
    expect(connects(policies, pod(backupJob), to(synapse, 8008))).toBe(false);
  });

  it("leave every other pod of the shared namespace as it was", () => {
    expect(connects(policies, pod(chat), to(postgres, 5432))).toBe(true);
    expect(connects(policies, pod({ app: "nova-auth" }), to(postgres, 5432))).toBe(true);
    expect(connects(policies, pod({ app: "nova-auth" }), to(chat, 3000))).toBe(true);
    expect(connects(policies, pod(chat), { ip: "8.8.8.8", port: 443 })).toBe(true);
    // The check can fail: a pod the policies select is isolated.
    expect(connects(policies, pod({ app: "nova-auth" }), to(synapse, 8008))).toBe(false);
  });

  it("refuse input that would lock everyone out or is not a CIDR, naming the field", () => {
    expect(() => networkPolicies({ ...staging, synapse: { ...staging.synapse, clients: [] } })).toThrow(
      /synapse\.clients is empty/,
    );
    expect(() => networkPolicies({ ...prod, loadBalancerRanges: ["35.191.0.0"] })).toThrow(
      /loadBalancerRanges: "35\.191\.0\.0" is not an IPv4 CIDR/,
    );
    expect(() => networkPolicies({ ...staging, loadBalancerRanges: GCLB_RANGES })).toThrow(/publicPort/);
    expect(() => networkPolicies({ ...prod, database: { address: "10.20.0", port: 5432 } })).toThrow(
      /database\.address/,
    );
  });
});

describe("reachability (the evaluator itself)", () => {
  const policies = networkPolicies(staging);
  it("needs both the source's egress and the destination's ingress", () => {
    // The bridge may open a connection to the backup job's pods? Its egress says no, whatever their ingress says.
    expect(allowsOut(policies, pod(bridge), to(chat, 3000))).toBe(false);
    expect(admits(policies, pod(bridge), to(chat, 3000))).toBe(true);
    expect(allowsOut(policies, pod(chat), to(synapse, 9000))).toBe(true);
    expect(admits(policies, pod(chat), to(synapse, 9000))).toBe(false);
    expect(connects([], pod(synapse), { ip: "169.254.169.254", port: 80 })).toBe(true); // no policies: all open
  });

  it("matches UDP and TCP separately, ipBlock exceptions, and In expressions", () => {
    expect(connects(policies, pod(synapse), { ...kubeDns, protocol: "TCP" })).toBe(true);
    expect(connects(policies, pod(synapse), { ...kubeDns, port: 54 })).toBe(false);
    expect(connects(policies, pod(backupJob), { ip: "192.168.1.1", port: 443 })).toBe(false);
    expect(
      connects(policies, pod({ "app.kubernetes.io/component": "other" }), { ip: "10.0.0.1", port: 1 }),
    ).toBe(true);
  });
});

describe("disruption, priority, pod security", () => {
  it("a PDB that lets a drain evict the single writer, and never blocks on an unhealthy pod", () => {
    const pdb = synapseDisruptionBudget({ namespace: NS, labels: {}, podSelector: synapse });
    new PodDisruptionBudget(pdb).validate();
    expect(unknownFields(pdb, (data) => PodDisruptionBudget.prototype.validate.call(data))).toEqual([]);
    expect(pdb.spec).toMatchObject({ maxUnavailable: 1, unhealthyPodEvictionPolicy: "AlwaysAllow" });
    expect(pdb.spec).not.toHaveProperty("minAvailable");
  });

  it("a PriorityClass above ordinary pods, not the default", () => {
    const priority = synapsePriorityClass({});
    new PriorityClass(priority).validate();
    // `description` is a real PriorityClass field (its model declares it) that the generated validator never reads.
    expect(
      unknownFields(priority, (data) => PriorityClass.prototype.validate.call(data)).filter(
        (f) => f !== "description",
      ),
    ).toEqual([]);
    expect(priority.value).toBeGreaterThan(0);
    expect(priority.value).toBeLessThan(1_000_000_000);
    expect(priority.globalDefault).toBe(false);
  });

  it("restricted Pod Security on the namespace", () => {
    expect(podSecurityLabels()).toMatchObject({
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
    });
  });
});

describe("Network component (Pulumi mocks)", () => {
  it("creates every policy, the PDB and the PriorityClass with explicit names, Cloud SQL's address resolved", async () => {
    const created: { type: string; name?: unknown; inputs: Record<string, unknown> }[] = [];
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          created.push({
            type: args.type,
            name: (args.inputs.metadata as { name?: string } | undefined)?.name,
            inputs: args.inputs,
          });
          return { id: `${args.name}-id`, state: args.inputs };
        },
        call: (args) => args.inputs,
      },
      "nova-matrix",
      "test",
      false,
    );
    const { Network } = await import("./index.ts");
    const network = new Network("network", {
      ...prod,
      database: { address: pulumi.output("10.20.0.9"), port: 5432 },
    });
    const names = await new Promise<string[]>((resolve) => network.policyNames.apply(resolve));
    expect(names).toEqual([
      "NetworkPolicy/matrix-synapse",
      "NetworkPolicy/nova-bridge",
      "NetworkPolicy/nova-matrix-db-setup",
      "NetworkPolicy/nova-matrix-db-backup",
      "NetworkPolicy/nova-matrix-media-backup",
    ]);
    expect(
      created.filter((c) => c.type.startsWith("kubernetes:")).every((c) => typeof c.name === "string"),
    ).toBe(true);
    expect(created.map((c) => c.type)).toContain("kubernetes:policy/v1:PodDisruptionBudget");
    expect(created.map((c) => c.type)).toContain("kubernetes:scheduling.k8s.io/v1:PriorityClass");
    const synapsePolicy = created.find(
      (c) => c.name === "matrix-synapse" && c.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    );
    expect(JSON.stringify(synapsePolicy?.inputs.spec)).toContain('"cidr":"10.20.0.9/32"');
  });
});
