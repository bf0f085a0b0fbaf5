// Worker mode's isolation as who may connect to whom (Kubernetes' ingress semantics, network/reachability.ts).
import { describe, expect, it } from "vitest";
import { GCLB_RANGES } from "./policies.ts";
import { admits, type Source } from "./reachability.ts";
import { PROXY_ENDPOINTS, synapseWorkerEndpoints } from "./wiring.ts";
import { workerNetworkPolicies } from "./workers.ts";

const namespace = "nova-prod";
const bridge = { namespace, labels: { app: "nova-bridge" } };
const chat = { namespace, labels: { app: "realtime-chat-service" } };
const proxy = { namespace, labels: PROXY_ENDPOINTS.podSelector };
const endpoints = synapseWorkerEndpoints(true);
const process = (name: string) => {
  const found = endpoints.processes.find((p) => p.name === name);
  if (!found) throw new Error(name);
  return found;
};
const policies = workerNetworkPolicies({
  namespace,
  labels: {},
  ...endpoints,
  proxy: {
    ...PROXY_ENDPOINTS,
    clients: [{ podSelector: chat.labels }, { podSelector: bridge.labels }],
    loadBalancerRanges: [...GCLB_RANGES],
  },
  scrapers: [{ namespace: "gmp-system" }],
});
const reach = (source: Source, labels: Readonly<Record<string, string>>, port: number) =>
  admits(policies, source, { namespace, labels, port });
const loadBalancer = { ip: "35.191.0.9" };
const internet = { ip: "203.0.113.7" };

describe("worker mode's NetworkPolicies", () => {
  it("let the load balancers reach only the proxy's public listener", () => {
    expect(reach(loadBalancer, proxy.labels, PROXY_ENDPOINTS.publicPort)).toBe(true);
    expect(reach(loadBalancer, proxy.labels, PROXY_ENDPOINTS.internalPort)).toBe(false);
    expect(reach(internet, proxy.labels, PROXY_ENDPOINTS.publicPort)).toBe(false);
    for (const name of ["main", "sync", "client", "media"]) {
      const target = process(name);
      expect(reach(loadBalancer, target.podSelector, target.clientPort as number), name).toBe(false);
    }
  });

  it("let the bridge and realtime-chat-service reach the proxy's internal listener, and no Synapse process directly", () => {
    for (const caller of [bridge, chat]) {
      expect(reach(caller, proxy.labels, PROXY_ENDPOINTS.internalPort)).toBe(true);
      expect(reach(caller, proxy.labels, PROXY_ENDPOINTS.publicPort)).toBe(false);
      for (const name of ["main", "sync", "client", "media"]) {
        const target = process(name);
        // Synapse trusts X-Forwarded-For there: only the proxy, which replaces it, may connect.
        expect(reach(caller, target.podSelector, target.clientPort as number), name).toBe(false);
      }
      expect(reach(caller, process("main").podSelector, process("main").replicationPort as number)).toBe(
        false,
      );
      expect(reach(caller, endpoints.redis?.podSelector ?? {}, 6379)).toBe(false);
    }
  });

  it("let the proxy reach every client-serving process, and only their client ports", () => {
    for (const name of ["main", "sync", "client", "media"]) {
      const target = process(name);
      expect(reach(proxy, target.podSelector, target.clientPort as number), name).toBe(true);
    }
    expect(reach(proxy, process("main").podSelector, process("main").replicationPort as number)).toBe(false);
    expect(reach(proxy, endpoints.redis?.podSelector ?? {}, 6379)).toBe(false);
  });

  it("let every Synapse process reach the replication listeners and Redis", () => {
    for (const member of endpoints.members) {
      const source = { namespace, labels: member };
      for (const name of ["main", "event-persister"]) {
        const target = process(name);
        expect(reach(source, target.podSelector, target.replicationPort as number), name).toBe(true);
      }
      expect(reach(source, endpoints.redis?.podSelector ?? {}, 6379)).toBe(true);
    }
  });

  it("let the scrapers reach every metrics port", () => {
    const scraper = { namespace: "gmp-system", labels: {} };
    expect(reach(scraper, proxy.labels, PROXY_ENDPOINTS.statsPort)).toBe(true);
    for (const target of endpoints.processes)
      expect(reach(scraper, target.podSelector, target.metricsPort)).toBe(true);
  });
});
