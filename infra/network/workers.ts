// Isolation of Synapse in worker mode (pure): the proxy is the only way in; each process takes only what it serves.
// - proxy: its internal listener from in-cluster clients (the bridge, realtime-chat-service), its public listener
//   from Google's load balancers only (so the X-Forwarded-For it passes on is always the one they appended), its
//   stats/metrics from the scrapers;
// - client-serving processes (main, sync, client, media workers): their client port from the proxy only (they
//   trust X-Forwarded-For, so nothing but the proxy, which replaces it, may talk to them);
// - replication ports (main, event persisters): from Synapse's processes only;
// - Redis (in-cluster): from Synapse's processes only; metrics ports: from the scrapers.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";
import type { INetworkPolicyPort } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort";
import type { Peer, Scraper } from "./policies.ts";

type Labels = Readonly<Record<string, string>>;

export interface SynapseProcessEndpoints {
  /** Pod labels of one Synapse process group (`main` included). */
  readonly podSelector: Labels;
  /** The client listener, where the proxy sends requests (absent: serves none, e.g. event persisters). */
  readonly clientPort?: number;
  /** The replication listener other processes call (main, event persisters). */
  readonly replicationPort?: number;
  readonly metricsPort: number;
  /** Object name suffix: `matrix-synapse-<name>-ingress`. */
  readonly name: string;
}

export interface WorkerNetworkInput {
  readonly namespace: string;
  readonly labels: Labels;
  readonly processes: readonly SynapseProcessEndpoints[];
  /** Every Synapse process, as peers (one per group). */
  readonly members: readonly Labels[];
  readonly proxy: {
    readonly podSelector: Labels;
    readonly internalPort: number;
    readonly publicPort: number;
    readonly statsPort: number;
    /** The bridge and realtime-chat-service. */
    readonly clients: readonly Peer[];
    readonly loadBalancerRanges: readonly string[];
  };
  /** In-cluster Redis (staging); absent with Memorystore (outside the cluster). */
  readonly redis?: { readonly podSelector: Labels; readonly port: number };
  readonly scrapers: readonly Scraper[];
}

const tcp = (port: number): INetworkPolicyPort[] => [{ protocol: "TCP", port }];
const pods = (labels: Labels, namespace?: string): INetworkPolicyPeer => ({
  podSelector: { matchLabels: { ...labels } },
  ...(namespace ? { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } } : {}),
});
const scraperPeer = (s: Scraper): INetworkPolicyPeer => ({
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": s.namespace } },
  ...(s.podSelector ? { podSelector: { matchLabels: { ...s.podSelector } } } : {}),
});

export function workerNetworkPolicies(input: WorkerNetworkInput): INetworkPolicy[] {
  if (input.proxy.clients.length === 0) throw new Error("proxy.clients is empty: nobody could reach Synapse");
  const policy = (
    name: string,
    podSelector: Labels,
    ingress: NonNullable<INetworkPolicy["spec"]>["ingress"],
  ): INetworkPolicy => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace: input.namespace, labels: { ...input.labels } },
    spec: { podSelector: { matchLabels: { ...podSelector } }, policyTypes: ["Ingress"], ingress },
  });
  const fromScrapers = (port: number) =>
    input.scrapers.length > 0 ? [{ from: input.scrapers.map(scraperPeer), ports: tcp(port) }] : [];
  const members = input.members.map((labels) => pods(labels));
  const policies: INetworkPolicy[] = [
    policy("matrix-synapse-proxy-ingress", input.proxy.podSelector, [
      {
        from: input.proxy.clients.map((c) => pods(c.podSelector, c.namespace)),
        ports: tcp(input.proxy.internalPort),
      },
      ...(input.proxy.loadBalancerRanges.length > 0
        ? [
            {
              from: input.proxy.loadBalancerRanges.map((cidr) => ({ ipBlock: { cidr } })),
              ports: tcp(input.proxy.publicPort),
            },
          ]
        : []),
      ...fromScrapers(input.proxy.statsPort),
    ]),
  ];
  for (const process of input.processes)
    policies.push(
      policy(`matrix-synapse-${process.name}-ingress`, process.podSelector, [
        ...(process.clientPort === undefined
          ? []
          : [{ from: [pods(input.proxy.podSelector)], ports: tcp(process.clientPort) }]),
        ...(process.replicationPort === undefined
          ? []
          : [{ from: members, ports: tcp(process.replicationPort) }]),
        ...fromScrapers(process.metricsPort),
      ]),
    );
  if (input.redis)
    policies.push(
      policy("matrix-synapse-redis-ingress", input.redis.podSelector, [
        { from: members, ports: tcp(input.redis.port) },
      ]),
    );
  return policies;
}
