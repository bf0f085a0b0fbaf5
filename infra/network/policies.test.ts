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
import { admits, type Source } from "./reachability.ts";

const NS = "nova-staging";
const synapse = { app: "matrix-synapse" };
const bridge = { app: "nova-matrix-bridge" };
const chat = { app: "realtime-chat-service" };
const postgres = { app: "postgres" };
const dbJob = { "app.kubernetes.io/component": "nova-matrix-db-backup" };

const staging: NetworkInput = {
  namespace: NS,
  labels: { "app.kubernetes.io/part-of": "nova-matrix" },
  defaultDenySelector: {},
  synapse: {
    podSelector: synapse,
    clientPort: 8008,
    metricsPort: 9000,
    clients: [{ podSelector: bridge }, { podSelector: chat }],
    loadBalancerRanges: [],
  },
  scrapers: [
    { namespace: "gmp-system" },
    { namespace: "monitoring", podSelector: { "app.kubernetes.io/name": "prometheus" } },
  ],
  bridge: { podSelector: bridge, port: 8080, metricsPort: 9100, clients: [{ podSelector: chat }] },
  postgres: {
    podSelector: postgres,
    port: 5432,
    clients: [{ podSelector: synapse }, { podSelector: bridge }, { podSelector: dbJob }],
  },
};
const prod: NetworkInput = {
  ...staging,
  namespace: "nova-prod",
  synapse: { ...staging.synapse, loadBalancerRanges: GCLB_RANGES },
  postgres: undefined,
};

const pod = (labels: Record<string, string>, namespace = NS): Source => ({ namespace, labels });
const to = (labels: Record<string, string>, port: number, namespace = NS) => ({ namespace, labels, port });

describe("NetworkPolicies", () => {
  const policies = networkPolicies(staging);

  it("are valid objects with explicit names", () => {
    for (const object of [...policies, ...networkPolicies(prod)]) {
      new NetworkPolicy(object).validate();
      expect(unknownFields(object, (data) => NetworkPolicy.prototype.validate.call(data))).toEqual([]);
    }
    expect(policies.map((p) => p.metadata?.name)).toEqual([
      "default-deny-ingress",
      "matrix-synapse-ingress",
      "nova-matrix-bridge-ingress",
      "postgres-ingress",
    ]);
  });

  it("let only the bridge and realtime-chat-service reach Synapse's client port", () => {
    expect(admits(policies, pod(bridge), to(synapse, 8008))).toBe(true);
    expect(admits(policies, pod(chat), to(synapse, 8008))).toBe(true);
    expect(admits(policies, pod({ app: "something-else" }), to(synapse, 8008))).toBe(false);
    expect(admits(policies, pod(bridge, "other-namespace"), to(synapse, 8008))).toBe(false);
    expect(admits(policies, pod(bridge), to(synapse, 9000))).toBe(false);
  });

  it("let the scrapers reach only the metrics ports", () => {
    const gmp = pod({ app: "collector" }, "gmp-system");
    expect(admits(policies, gmp, to(synapse, 9000))).toBe(true);
    expect(admits(policies, gmp, to(synapse, 8008))).toBe(false);
    expect(admits(policies, gmp, to(bridge, 9100))).toBe(true);
    const prometheus = pod({ "app.kubernetes.io/name": "prometheus" }, "monitoring");
    expect(admits(policies, prometheus, to(synapse, 9000))).toBe(true);
    expect(admits(policies, pod({ app: "grafana" }, "monitoring"), to(synapse, 9000))).toBe(false);
  });

  it("let Google's load balancers in only in prod", () => {
    expect(admits(networkPolicies(prod), { ip: "35.191.12.7" }, to(synapse, 8008, "nova-prod"))).toBe(true);
    expect(admits(networkPolicies(prod), { ip: "130.211.3.250" }, to(synapse, 8008, "nova-prod"))).toBe(true);
    expect(admits(networkPolicies(prod), { ip: "130.211.4.1" }, to(synapse, 8008, "nova-prod"))).toBe(false);
    expect(admits(policies, { ip: "35.191.12.7" }, to(synapse, 8008))).toBe(false);
  });

  it("let Google's load balancers reach the bridge only when it is exposed through an Ingress", () => {
    const exposed = networkPolicies({
      ...prod,
      bridge: {
        ...(staging.bridge ?? { podSelector: {}, port: 0, metricsPort: 0, clients: [] }),
        loadBalancerRanges: GCLB_RANGES,
      },
    });
    expect(admits(exposed, { ip: "35.191.1.1" }, to(bridge, 8080, "nova-prod"))).toBe(true);
    expect(admits(exposed, { ip: "35.191.1.1" }, to(bridge, 9100, "nova-prod"))).toBe(false);
    expect(admits(networkPolicies(prod), { ip: "35.191.1.1" }, to(bridge, 8080, "nova-prod"))).toBe(false);
  });

  it("let only Synapse, the bridge and the DB jobs reach Postgres", () => {
    expect(admits(policies, pod(synapse), to(postgres, 5432))).toBe(true);
    expect(admits(policies, pod(bridge), to(postgres, 5432))).toBe(true);
    expect(admits(policies, pod(dbJob), to(postgres, 5432))).toBe(true);
    expect(admits(policies, pod(chat), to(postgres, 5432))).toBe(false);
  });

  it("deny everything else in the namespace by default", () => {
    expect(admits(policies, pod(synapse), to(chat, 3000))).toBe(false);
    expect(admits([], pod(synapse), to(chat, 3000))).toBe(true); // without policies all is open: the check can fail
  });

  it("refuse input that would lock everyone out or is not a CIDR, naming the field", () => {
    expect(() => networkPolicies({ ...staging, synapse: { ...staging.synapse, clients: [] } })).toThrow(
      /synapse\.clients is empty/,
    );
    expect(() =>
      networkPolicies({ ...staging, synapse: { ...staging.synapse, loadBalancerRanges: ["35.191.0.0"] } }),
    ).toThrow(/synapse\.loadBalancerRanges: "35\.191\.0\.0" is not an IPv4 CIDR/);
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
  it("creates every policy, the PDB and the PriorityClass with explicit names", async () => {
    const created: { type: string; name?: unknown }[] = [];
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          created.push({
            type: args.type,
            name: (args.inputs.metadata as { name?: string } | undefined)?.name,
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
    const network = new Network("network", staging);
    const names = await new Promise<string[]>((resolve) => network.policyNames.apply(resolve));
    expect(names).toEqual([
      "NetworkPolicy/default-deny-ingress",
      "NetworkPolicy/matrix-synapse-ingress",
      "NetworkPolicy/nova-matrix-bridge-ingress",
      "NetworkPolicy/postgres-ingress",
    ]);
    expect(
      created.filter((c) => c.type.startsWith("kubernetes:")).every((c) => typeof c.name === "string"),
    ).toBe(true);
    expect(created.map((c) => c.type)).toContain("kubernetes:policy/v1:PodDisruptionBudget");
    expect(created.map((c) => c.type)).toContain("kubernetes:scheduling.k8s.io/v1:PriorityClass");
  });
});
