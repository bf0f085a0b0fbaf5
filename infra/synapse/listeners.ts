// Synapse's listeners, laid out so that the appservice token is useless outside the cluster (pure).
//
// The appservice registration carries `ip_range_whitelist` (the cluster's pod ranges, nova-matrix:network.podRanges,
// the same list the NetworkPolicies are written for): Synapse accepts the as_token only when the request's client
// address is inside it (synapse/api/auth/base.py, get_appservice_user). That address is the TCP peer, unless the
// listener has `x_forwarded: true`: then Synapse takes the FIRST entry of X-Forwarded-For
// (synapse/http/site.py, XForwardedForRequest._process_forwarded_headers), which is whatever the sender wrote.
//
// Two layouts, one rule: no request from the public Ingress can be attributed an address inside the whitelist.
// - One process (staging; any monolith with an Ingress): `http` (8008) for in-cluster callers and, where an Ingress
//   publishes the server, `public` (8009) for it alone; neither trusts X-Forwarded-For, so on `public` Synapse sees
//   the load balancer's own address (outside the pod ranges).
// - Worker mode (prod): the proxy (haproxy.ts) is the only way in. Its `internal` frontend (in-cluster callers)
//   replaces X-Forwarded-For with the caller's pod address; its `public` frontend (the Ingress's backend, reached only
//   from the load balancer) replaces it with the client address the load balancer appended, an internet address,
//   never a private one. Synapse's client listeners trust the header because only the proxy reaches them
//   (NetworkPolicies). So the pod ranges must be private addresses (checked here and in the stack config).
// checkAppserviceIsolation() states the rules; the stack runs it, the real-Synapse tests show the token refused on
// the public path whatever X-Forwarded-For says (listeners.test.ts on one process, bridge/test/worker-faults.test.ts
// through the real HAProxy in worker mode) and accepted on the in-cluster one.
import { cidrsOverlap, isIpv4Cidr, isPrivateRange } from "../network/cidr.ts";
import { PROXY_POD_PORTS } from "./haproxy.ts";

/** The in-cluster client listener: the seed's `matrix-synapse:8008`. */
export const CLIENT_PORT = 8008;
export const CLIENT_PORT_NAME = "http";
/** /_synapse/metrics on a listener of its own, never published. */
export const METRICS_PORT = 9000;
export const METRICS_PORT_NAME = "metrics";
/** The public Ingress's own listener (one process): a separate port, so no public request reaches the in-cluster one. */
export const PUBLIC_PORT = 8009;
export const PUBLIC_PORT_NAME = "public";

export interface SynapseListener {
  /** The container's (and the Service's) port name. */
  readonly name: string;
  readonly port: number;
  /** `client`: the client API; `metrics`: /_synapse/metrics only. */
  readonly kind: "client" | "metrics";
  /** Who listens: a Synapse process, or the proxy in front of them (worker mode). */
  readonly process: "synapse" | "proxy";
  /**
   * Where the client address Synapse checks comes from: the TCP peer (`peer`), X-Forwarded-For's first entry as
   * received (`trusted`: only safe where nothing but the proxy connects), or the proxy's replacement of it
   * (`replaced`: the caller's address, or the client the load balancer appended).
   */
  readonly forwardedFor: "peer" | "trusted" | "replaced";
  /** Who can connect (the NetworkPolicies admit exactly these). */
  readonly reachedFrom: "cluster" | "load-balancer" | "proxy" | "scrapers";
}

/**
 * The listeners of a Synapse with or without a public Ingress, as one process or behind the worker-mode proxy;
 * `ports` moves a one-process layout (the harness).
 */
export function synapseListeners(input: {
  publicIngress: boolean;
  workers?: boolean;
  ports?: { client: number; metrics: number; public?: number };
}): SynapseListener[] {
  const metrics: SynapseListener = {
    name: METRICS_PORT_NAME,
    port: input.ports?.metrics ?? METRICS_PORT,
    kind: "metrics",
    process: "synapse",
    forwardedFor: "peer",
    reachedFrom: "scrapers",
  };
  if (input.workers)
    return [
      {
        name: CLIENT_PORT_NAME,
        port: PROXY_POD_PORTS.internal,
        kind: "client",
        process: "proxy",
        forwardedFor: "replaced",
        reachedFrom: "cluster",
      },
      ...(input.publicIngress
        ? [
            {
              name: PUBLIC_PORT_NAME,
              port: PROXY_POD_PORTS.public,
              kind: "client" as const,
              process: "proxy" as const,
              forwardedFor: "replaced" as const,
              reachedFrom: "load-balancer" as const,
            },
          ]
        : []),
      {
        name: CLIENT_PORT_NAME,
        port: CLIENT_PORT,
        kind: "client",
        process: "synapse",
        forwardedFor: "trusted",
        reachedFrom: "proxy",
      },
      metrics,
    ];
  const ports = input.ports ?? { client: CLIENT_PORT, metrics: METRICS_PORT, public: PUBLIC_PORT };
  const own = (name: string, port: number, reachedFrom: "cluster" | "load-balancer"): SynapseListener => ({
    name,
    port,
    kind: "client",
    process: "synapse",
    forwardedFor: "peer",
    reachedFrom,
  });
  return [
    own(CLIENT_PORT_NAME, ports.client, "cluster"),
    ...(input.publicIngress ? [own(PUBLIC_PORT_NAME, ports.public ?? PUBLIC_PORT, "load-balancer")] : []),
    metrics,
  ];
}

/** The listeners Synapse itself opens (a one-process layout's homeserver.yaml, its pod's and Service's ports). */
export const synapseOwn = (listeners: readonly SynapseListener[]) =>
  listeners.filter((listener) => listener.process === "synapse");

/**
 * The invariant every Synapse layout must keep: no request that comes through the public Ingress can be attributed an
 * address inside the appservice's ip_range_whitelist, whatever headers it carries.
 *
 * 1. The whitelist is non-empty (an empty one lets the token in from anywhere), valid, and private address space (the
 *    proxy's public frontend passes on the internet client's address).
 * 2. A listener the load balancer reaches never takes X-Forwarded-For as received: Synapse sees the load balancer
 *    (`peer`) or the proxy's replacement.
 * 3. A listener that trusts X-Forwarded-For is reached from the proxy only, and every proxy frontend replaces it.
 * 4. The load balancer's addresses are outside the whitelist.
 * 5. The Ingress sends to a listener of the load balancer's own, never to one in-cluster callers use.
 *
 * Throws an error naming the broken rule.
 */
export function checkAppserviceIsolation(
  listeners: readonly SynapseListener[],
  ranges: {
    appserviceIpRanges: readonly string[];
    loadBalancerRanges: readonly string[];
    /** The port the public Ingress's backend targets, where there is one. */
    ingressPort?: number;
  },
): void {
  if (ranges.appserviceIpRanges.length === 0)
    throw new Error("the appservice ip_range_whitelist is empty: the token would be accepted from anywhere");
  for (const cidr of ranges.appserviceIpRanges) {
    if (!isIpv4Cidr(cidr)) throw new Error(`"${cidr}" is not an IPv4 CIDR such as 10.4.0.0/14`);
    if (!isPrivateRange(cidr))
      throw new Error(
        `the appservice ip_range_whitelist ${cidr} is not private address space: a public client could hold it`,
      );
  }
  const publicListeners = listeners.filter((l) => l.reachedFrom === "load-balancer");
  for (const listener of publicListeners)
    if (listener.forwardedFor === "trusted")
      throw new Error(
        `listener ${listener.name} (${listener.port}) is reached from the load balancer and trusts X-Forwarded-For: ` +
          "a client could present an in-cluster address",
      );
  const proxied = listeners.filter((l) => l.forwardedFor === "trusted");
  for (const listener of proxied)
    if (listener.reachedFrom !== "proxy")
      throw new Error(
        `listener ${listener.name} (${listener.port}) trusts X-Forwarded-For and is reached from ${listener.reachedFrom}: only the proxy, which replaces the header, may reach it`,
      );
  const frontends = listeners.filter((l) => l.process === "proxy");
  if (proxied.length > 0 && (frontends.length === 0 || frontends.some((f) => f.forwardedFor !== "replaced")))
    throw new Error("Synapse trusts X-Forwarded-For, but not every proxy frontend replaces it");
  for (const range of ranges.loadBalancerRanges)
    for (const allowed of ranges.appserviceIpRanges)
      if (cidrsOverlap(range, allowed))
        throw new Error(
          `the appservice ip_range_whitelist ${allowed} overlaps the load balancer range ${range}: requests from the Ingress would pass it`,
        );
  if (ranges.ingressPort !== undefined && !publicListeners.some((l) => l.port === ranges.ingressPort))
    throw new Error(
      `the Ingress targets port ${ranges.ingressPort}, which is not a listener of the load balancer's own`,
    );
}
