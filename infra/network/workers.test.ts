// Worker mode's isolation as who may connect to whom, both directions (network/reachability.ts): the proxy is the only
// way in, each Synapse process takes only what it serves and opens only its database, its peers, Redis and DNS.
import { describe, expect, it } from "vitest";
import { GCLB_RANGES, networkPolicies } from "./policies.ts";
import { connects, type Endpoint } from "./reachability.ts";
import { IN_CLUSTER_REDIS, PROXY_ENDPOINTS, SYNAPSE_ENDPOINTS, synapseWorkerEndpoints } from "./wiring.ts";

const namespace = "nova-prod";
type Labels = Readonly<Record<string, string>>;
const pod = (labels: Labels): { namespace: string; labels: Labels } => ({ namespace, labels });
const bridge = pod({ app: "nova-bridge" });
const chat = pod({ app: "realtime-chat-service" });
const proxy = pod(PROXY_ENDPOINTS.podSelector);
const endpoints = synapseWorkerEndpoints();
const process = (name: string) => {
  const found = endpoints.processes.find((p) => p.name === name);
  if (!found) throw new Error(name);
  return found;
};
const DATABASE_IP = "10.20.0.3";
const MEMORYSTORE_IP = "10.20.0.5";

function policiesWith(redis: ({ pods: Record<string, string> } | { address: string }) & { port: number }) {
  return networkPolicies({
    namespace,
    labels: {},
    synapse: { ...SYNAPSE_ENDPOINTS, clients: [chat.labels, bridge.labels] },
    loadBalancerRanges: [...GCLB_RANGES],
    scrapers: [{ namespace: "gmp-system" }],
    bridge: { podSelector: bridge.labels, port: 8080, metricsPort: 8080, clients: [chat.labels] },
    database: { address: DATABASE_IP, port: 5432 },
    databaseJobs: { key: "app", values: ["matrix-synapse-db-setup"] },
    workers: { ...endpoints, proxy: PROXY_ENDPOINTS, redis },
  });
}
const policies = policiesWith({ address: MEMORYSTORE_IP, port: 6378 });
const reach = (source: Endpoint, labels: Labels, port: number) =>
  connects(policies, source, { namespace, labels, port });
const loadBalancer = { ip: "35.191.0.9" };
const internet = { ip: "203.0.113.7" };
const clientServing = ["main", "sync", "client", "media"];

describe("worker mode's NetworkPolicies", () => {
  it("let the load balancers reach only the proxy's public listener", () => {
    expect(reach(loadBalancer, proxy.labels, PROXY_ENDPOINTS.publicPort)).toBe(true);
    expect(reach(loadBalancer, proxy.labels, PROXY_ENDPOINTS.internalPort)).toBe(false);
    expect(reach(internet, proxy.labels, PROXY_ENDPOINTS.publicPort)).toBe(false);
    for (const name of clientServing) {
      const target = process(name);
      expect(reach(loadBalancer, target.podSelector, target.clientPort as number), name).toBe(false);
    }
  });

  it("let the bridge and realtime-chat-service reach the proxy's internal listener, and no Synapse process directly", () => {
    for (const caller of [bridge, chat]) {
      expect(reach(caller, proxy.labels, PROXY_ENDPOINTS.internalPort)).toBe(true);
      expect(reach(caller, proxy.labels, PROXY_ENDPOINTS.publicPort)).toBe(false);
      for (const name of clientServing) {
        const target = process(name);
        // Synapse trusts X-Forwarded-For there: only the proxy, which replaces it, may connect.
        expect(reach(caller, target.podSelector, target.clientPort as number), name).toBe(false);
      }
      expect(reach(caller, process("main").podSelector, process("main").replicationPort as number)).toBe(
        false,
      );
    }
  });

  it("let the proxy reach every client-serving process, only their client ports, and nothing else", () => {
    for (const name of clientServing) {
      const target = process(name);
      expect(reach(proxy, target.podSelector, target.clientPort as number), name).toBe(true);
    }
    expect(reach(proxy, process("main").podSelector, process("main").replicationPort as number)).toBe(false);
    expect(connects(policies, proxy, { ip: DATABASE_IP, port: 5432 })).toBe(false);
    expect(connects(policies, proxy, { ip: MEMORYSTORE_IP, port: 6378 })).toBe(false);
  });

  it("let every Synapse process reach the replication listeners, the database, Memorystore and DNS, and nothing else", () => {
    for (const member of endpoints.members) {
      const source = pod(member);
      for (const name of ["main", "event-persister"]) {
        const target = process(name);
        expect(reach(source, target.podSelector, target.replicationPort as number), name).toBe(true);
      }
      expect(connects(policies, source, { ip: DATABASE_IP, port: 5432 })).toBe(true);
      expect(connects(policies, source, { ip: MEMORYSTORE_IP, port: 6378 })).toBe(true);
      expect(
        connects(policies, source, {
          namespace: "kube-system",
          labels: { "k8s-app": "kube-dns" },
          port: 53,
          protocol: "UDP",
        }),
      ).toBe(true);
      expect(connects(policies, source, { ip: "169.254.169.254", port: 80 })).toBe(false);
      expect(connects(policies, source, { ip: "142.250.74.36", port: 443 })).toBe(false);
      expect(reach(source, bridge.labels, 8080)).toBe(false);
    }
  });

  it("with Redis in the cluster: only Synapse's processes reach it, and it opens nothing", () => {
    const inCluster = policiesWith(IN_CLUSTER_REDIS);
    const redis = { namespace, labels: IN_CLUSTER_REDIS.pods, port: IN_CLUSTER_REDIS.port };
    for (const member of endpoints.members) expect(connects(inCluster, pod(member), redis)).toBe(true);
    for (const other of [proxy, bridge, chat]) expect(connects(inCluster, other, redis)).toBe(false);
    expect(connects(inCluster, pod(IN_CLUSTER_REDIS.pods), { ip: DATABASE_IP, port: 5432 })).toBe(false);
  });

  it("let the scrapers reach every metrics port", () => {
    const scraper = { namespace: "gmp-system", labels: {} };
    expect(reach(scraper, proxy.labels, PROXY_ENDPOINTS.statsPort)).toBe(true);
    for (const target of endpoints.processes)
      expect(reach(scraper, target.podSelector, target.metricsPort)).toBe(true);
  });
});
