// Isolation and disruption objects (pure): NetworkPolicies, Synapse's PodDisruptionBudget and PriorityClass,
// and the Pod Security Admission labels for the namespace.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";
import type { INetworkPolicyPort } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IPriorityClass } from "kubernetes-models/scheduling.k8s.io/v1/PriorityClass";
import { isIpv4Cidr } from "./cidr.ts";

/** Google Cloud load balancers' proxy and health-check ranges (container-native load balancing reaches pods from these). */
export const GCLB_RANGES = ["130.211.0.0/22", "35.191.0.0/16"] as const;

type Labels = Readonly<Record<string, string>>;

/** Pods a policy selects: all of `matchLabels`, or one label key with any of several values. */
export type PodSelector =
  | { readonly matchLabels: Labels }
  | { readonly key: string; readonly values: readonly string[] };

/**
 * Who is on the other end of a connection: pods (in the policy's namespace, or in `namespace`), every pod of another
 * namespace (`namespace` alone), or addresses outside the cluster (`cidr`, minus `except`).
 */
export type Peer =
  | { readonly pods: Labels; readonly namespace?: string }
  | { readonly namespace: string; readonly pods?: Labels }
  | { readonly cidr: string; readonly except?: readonly string[] };

export interface PortSpec {
  readonly port: number;
  readonly protocol: "TCP" | "UDP";
}

/** Connections allowed to (ingress) or from (egress) a workload: any of the peers, on any of the ports. */
export interface TrafficRule {
  readonly peers: readonly Peer[];
  readonly ports: readonly PortSpec[];
}

/**
 * One workload's traffic: the only connections its pods accept (`ingress`, empty = none) and the only ones they open
 * (`egress`). Each becomes one NetworkPolicy with both policy types, selecting only that workload's pods.
 */
export interface WorkloadTraffic {
  readonly name: string;
  readonly pods: PodSelector;
  readonly ingress: readonly TrafficRule[];
  readonly egress: readonly TrafficRule[];
}

/** A scraper: its namespace (GMP's collectors run in `gmp-system`) and, optionally, which pods in it. */
export interface Scraper {
  readonly namespace: string;
  readonly podSelector?: Labels;
}

const tcp = (port: number): PortSpec => ({ port, protocol: "TCP" });

/**
 * DNS as GKE serves it, whichever way the cluster is set up: kube-dns's pods (kube-system), NodeLocal DNSCache's
 * node-local address (169.254.20.10, the default on Autopilot and recent Standard clusters), and Cloud DNS for GKE,
 * whose resolver is the node's metadata server address: on port 53 only, so its metadata API (port 80) stays closed.
 */
export const CLUSTER_DNS: TrafficRule = {
  peers: [
    { namespace: "kube-system", pods: { "k8s-app": "kube-dns" } },
    { cidr: "169.254.20.10/32" },
    { cidr: "169.254.169.254/32" },
  ],
  ports: [
    { port: 53, protocol: "UDP" },
    { port: 53, protocol: "TCP" },
  ],
};

/**
 * GKE's metadata server for Workload Identity (the backup jobs' Google credentials): 169.254.169.254:80, which the
 * node's gke-metadata-server answers from 169.254.169.252:988.
 */
export const GKE_METADATA_SERVER: TrafficRule = {
  peers: [{ cidr: "169.254.169.254/32" }, { cidr: "169.254.169.252/32" }],
  ports: [tcp(80), tcp(988)],
};

/** Google APIs over HTTPS (Cloud Storage for the backup jobs): public addresses only, never the cluster's or the VPC's. */
export const GOOGLE_APIS: TrafficRule = {
  peers: [
    {
      cidr: "0.0.0.0/0",
      except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"],
    },
  ],
  ports: [tcp(443)],
};

export interface NetworkInput {
  readonly namespace: string;
  readonly labels: Labels;
  readonly synapse: {
    readonly podSelector: Labels;
    /** The in-cluster listener (realtime-chat-service, the bridge). */
    readonly clientPort: number;
    readonly metricsPort: number;
    /** The public Ingress's listener (prod), reached only from the load balancer ranges. */
    readonly publicPort?: number;
    /** In-cluster callers of the client port: realtime-chat-service (and the bridge, added when deployed). */
    readonly clients: readonly Labels[];
  };
  /** Google's load balancer ranges (GCLB_RANGES) where a public Ingress sends traffic to Synapse's public port. */
  readonly loadBalancerRanges: readonly string[];
  readonly scrapers: readonly Scraper[];
  readonly bridge?: {
    readonly podSelector: Labels;
    readonly port: number;
    /** May equal `port` (the bridge serves /metrics beside its API): scrapers then reach that port too. */
    readonly metricsPort: number;
    readonly clients: readonly Labels[];
    /** Load balancer source ranges, where front ends reach the bridge's WebSocket through an Ingress. */
    readonly loadBalancerRanges?: readonly string[];
  };
  /**
   * The database Synapse, the bridge and the jobs use: the namespace's Postgres pods (staging), or Cloud SQL's private
   * address, outside the cluster (prod).
   */
  readonly database: ({ readonly pods: Labels } | { readonly address: string }) & { readonly port: number };
  /**
   * Worker mode: the proxy (HAProxy) is the only way in; `synapse.clients` reach its internal listener, the load
   * balancer its public one; each Synapse process takes only what it serves. Replaces the one-process policy.
   */
  readonly workers?: WorkerTraffic;
  /** The database setup Jobs' pods (Synapse's and the bridge's). */
  readonly databaseJobs: PodSelector;
  /**
   * The backup CronJobs' pods, where the stack backs up to GCS: the dump job's, which also reaches the database
   * (absent on Cloud SQL, which backs itself up), and the media archive's, which never does.
   */
  readonly backupJobs?: { readonly dumps?: PodSelector; readonly media: PodSelector };
}

/** One group of Synapse's processes in worker mode (main included), as the policies see it. */
export interface SynapseProcessEndpoints {
  /** Object name suffix: `matrix-synapse-<name>`. */
  readonly name: string;
  readonly podSelector: Labels;
  /** The client listener the proxy sends requests to (absent: serves none, e.g. event persisters). */
  readonly clientPort?: number;
  /** The replication listener the other processes call (main, event persisters). */
  readonly replicationPort?: number;
  readonly metricsPort: number;
}

export interface WorkerTraffic {
  readonly proxy: {
    readonly podSelector: Labels;
    readonly internalPort: number;
    readonly publicPort: number;
    readonly statsPort: number;
  };
  readonly processes: readonly SynapseProcessEndpoints[];
  /** Every Synapse process, as peers (one selector per group). */
  readonly members: readonly Labels[];
  /** Redis between the processes: its pods in the cluster (staging), or Memorystore's private address (prod). */
  readonly redis: ({ readonly pods: Labels } | { readonly address: string }) & { readonly port: number };
}

function requirePeers(field: string, peers: readonly unknown[]) {
  if (peers.length === 0) {
    throw new Error(`${field} is empty: the policy would admit nobody; list the pods that must connect`);
  }
}

/** Throws, naming the field, unless `cidr` is an IPv4 CIDR such as 35.191.0.0/16. */
export function requireCidr(field: string, cidr: string): void {
  if (!isIpv4Cidr(cidr)) throw new Error(`${field}: "${cidr}" is not an IPv4 CIDR such as 35.191.0.0/16`);
}

/** The traffic of every workload of the stack (pure): who reaches Synapse, the bridge and the jobs, and what they reach. */
export function stackTraffic(input: NetworkInput): WorkloadTraffic[] {
  requirePeers("synapse.clients", input.synapse.clients);
  for (const range of input.loadBalancerRanges) requireCidr("loadBalancerRanges", range);
  const database: TrafficRule =
    "pods" in input.database
      ? { peers: [{ pods: input.database.pods }], ports: [tcp(input.database.port)] }
      : {
          peers: [{ cidr: `${input.database.address}/32` }],
          ports: [tcp(input.database.port)],
        };
  if ("address" in input.database) requireCidr("database.address", `${input.database.address}/32`);
  const scrapers: Peer[] = input.scrapers.map((s) => ({
    namespace: s.namespace,
    ...(s.podSelector ? { pods: s.podSelector } : {}),
  }));
  const scraped = (port: number): TrafficRule[] =>
    scrapers.length > 0 ? [{ peers: scrapers, ports: [tcp(port)] }] : [];
  const fromRanges = (ranges: readonly string[], port: number): TrafficRule[] =>
    ranges.length > 0 ? [{ peers: ranges.map((cidr) => ({ cidr })), ports: [tcp(port)] }] : [];
  const { synapse, bridge, workers } = input;
  if (!workers && synapse.publicPort === undefined && input.loadBalancerRanges.length > 0)
    throw new Error(
      "loadBalancerRanges: given without synapse.publicPort; the load balancer reaches only the public listener",
    );
  const clients: Peer[] = synapse.clients.map((pods) => ({ pods }));
  // Where in-cluster callers (the bridge, realtime-chat-service) send client API requests.
  const clientApi: TrafficRule = workers
    ? { peers: [{ pods: workers.proxy.podSelector }], ports: [tcp(workers.proxy.internalPort)] }
    : { peers: [{ pods: synapse.podSelector }], ports: [tcp(synapse.clientPort)] };

  // Federation, URL previews and pushes are off: Synapse talks to its database (and, in worker mode, to its own
  // processes and Redis) and nothing else.
  const workloads: WorkloadTraffic[] = workers
    ? workerTraffic(workers, {
        clients,
        database,
        scraped,
        fromRanges,
        loadBalancerRanges: input.loadBalancerRanges,
      })
    : [
        {
          name: "matrix-synapse",
          pods: { matchLabels: synapse.podSelector },
          ingress: [
            { peers: clients, ports: [tcp(synapse.clientPort)] },
            ...(synapse.publicPort === undefined
              ? []
              : fromRanges(input.loadBalancerRanges, synapse.publicPort)),
            ...scraped(synapse.metricsPort),
          ],
          egress: [database, CLUSTER_DNS],
        },
      ];
  if (bridge) {
    requirePeers("bridge.clients", bridge.clients);
    for (const range of bridge.loadBalancerRanges ?? []) requireCidr("bridge.loadBalancerRanges", range);
    workloads.push({
      name: "nova-bridge",
      pods: { matchLabels: bridge.podSelector },
      ingress: [
        { peers: bridge.clients.map((pods) => ({ pods })), ports: [tcp(bridge.port)] },
        ...fromRanges(bridge.loadBalancerRanges ?? [], bridge.port),
        ...scraped(bridge.metricsPort),
      ],
      egress: [clientApi, database, CLUSTER_DNS],
    });
  }
  workloads.push({
    name: "nova-matrix-db-setup",
    pods: input.databaseJobs,
    ingress: [],
    egress: [database, CLUSTER_DNS],
  });
  // Both backup jobs reach Google (credentials from the metadata server, then Cloud Storage); only the dumps the database.
  const toGoogle = [CLUSTER_DNS, GKE_METADATA_SERVER, GOOGLE_APIS];
  if (input.backupJobs?.dumps)
    workloads.push({
      name: "nova-matrix-db-backup",
      pods: input.backupJobs.dumps,
      ingress: [],
      egress: [database, ...toGoogle],
    });
  if (input.backupJobs)
    workloads.push({
      name: "nova-matrix-media-backup",
      pods: input.backupJobs.media,
      ingress: [],
      egress: toGoogle,
    });
  return workloads;
}

/** Worker mode: the proxy, each process group and (in the cluster) Redis. */
function workerTraffic(
  workers: WorkerTraffic,
  shared: {
    clients: readonly Peer[];
    database: TrafficRule;
    scraped: (port: number) => TrafficRule[];
    fromRanges: (ranges: readonly string[], port: number) => TrafficRule[];
    loadBalancerRanges: readonly string[];
  },
): WorkloadTraffic[] {
  const { proxy, processes } = workers;
  const members: Peer[] = workers.members.map((pods) => ({ pods }));
  const replicationPorts = [
    ...new Set(processes.flatMap((p) => (p.replicationPort === undefined ? [] : [p.replicationPort]))),
  ];
  const replication: TrafficRule = { peers: members, ports: replicationPorts.map(tcp) };
  if ("address" in workers.redis) requireCidr("workers.redis.address", `${workers.redis.address}/32`);
  const redis: TrafficRule = {
    peers: ["pods" in workers.redis ? { pods: workers.redis.pods } : { cidr: `${workers.redis.address}/32` }],
    ports: [tcp(workers.redis.port)],
  };
  const serving = processes.filter((p) => p.clientPort !== undefined);
  const workloads: WorkloadTraffic[] = [
    {
      name: "matrix-synapse-proxy",
      pods: { matchLabels: proxy.podSelector },
      ingress: [
        { peers: shared.clients, ports: [tcp(proxy.internalPort)] },
        // Only the load balancer: the X-Forwarded-For the public listener passes on is the one it appended.
        ...shared.fromRanges(shared.loadBalancerRanges, proxy.publicPort),
        ...shared.scraped(proxy.statsPort),
      ],
      egress: [
        ...serving.map((p) => ({ peers: [{ pods: p.podSelector }], ports: [tcp(p.clientPort as number)] })),
        CLUSTER_DNS,
      ],
    },
  ];
  for (const process of processes)
    workloads.push({
      name: `matrix-synapse-${process.name}`,
      pods: { matchLabels: process.podSelector },
      ingress: [
        // Synapse trusts X-Forwarded-For here: only the proxy, which replaces it, may connect.
        ...(process.clientPort === undefined
          ? []
          : [{ peers: [{ pods: proxy.podSelector }], ports: [tcp(process.clientPort)] }]),
        ...(process.replicationPort === undefined
          ? []
          : [{ peers: members, ports: [tcp(process.replicationPort)] }]),
        ...shared.scraped(process.metricsPort),
      ],
      egress: [shared.database, replication, redis, CLUSTER_DNS],
    });
  if ("pods" in workers.redis)
    workloads.push({
      name: "matrix-synapse-redis",
      pods: { matchLabels: workers.redis.pods },
      ingress: [{ peers: members, ports: [tcp(workers.redis.port)] }],
      egress: [],
    });
  return workloads;
}

const selectorOf = (pods: PodSelector) =>
  "matchLabels" in pods
    ? { matchLabels: { ...pods.matchLabels } }
    : { matchExpressions: [{ key: pods.key, operator: "In", values: [...pods.values] }] };

const peerOf = (peer: Peer): INetworkPolicyPeer => {
  if ("cidr" in peer)
    return { ipBlock: { cidr: peer.cidr, ...(peer.except ? { except: [...peer.except] } : {}) } };
  return {
    ...(peer.pods ? { podSelector: { matchLabels: { ...peer.pods } } } : { podSelector: {} }),
    ...(peer.namespace
      ? { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } } }
      : {}),
  };
};

const portsOf = (ports: readonly PortSpec[]): INetworkPolicyPort[] =>
  ports.map(({ port, protocol }) => ({ protocol, port }));

/** The NetworkPolicy of one workload: both policy types, so only the listed connections are allowed either way. */
export function workloadPolicy(namespace: string, labels: Labels, traffic: WorkloadTraffic): INetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: traffic.name, namespace, labels: { ...labels } },
    spec: {
      podSelector: selectorOf(traffic.pods),
      policyTypes: ["Ingress", "Egress"],
      ingress: traffic.ingress.map((rule) => ({ from: rule.peers.map(peerOf), ports: portsOf(rule.ports) })),
      egress: traffic.egress.map((rule) => ({ to: rule.peers.map(peerOf), ports: portsOf(rule.ports) })),
    },
  };
}

/**
 * The stack's NetworkPolicies: one per workload, each selecting only that workload's pods, so nothing else in a shared
 * namespace (staging's Postgres, realtime-chat-service) changes.
 */
export function networkPolicies(input: NetworkInput): INetworkPolicy[] {
  return stackTraffic(input).map((traffic) => workloadPolicy(input.namespace, input.labels, traffic));
}

/**
 * Synapse's main process is a single writer: exactly one replica, so no PDB can keep it up during a drain.
 * `minAvailable: 1` / `maxUnavailable: 0` would block every node drain and GKE upgrade until GKE's one-hour
 * timeout forces it anyway. `maxUnavailable: 1` lets the drain evict it (a restart of a few seconds, like any
 * rollout with the Recreate strategy) while still refusing a second concurrent eviction if replicas ever grew;
 * unhealthy pods may always be evicted so a crash-looping pod never blocks maintenance.
 */
export function synapseDisruptionBudget(input: {
  namespace: string;
  labels: Labels;
  podSelector: Labels;
}): IPodDisruptionBudget {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: "matrix-synapse", namespace: input.namespace, labels: { ...input.labels } },
    spec: {
      maxUnavailable: 1,
      unhealthyPodEvictionPolicy: "AlwaysAllow",
      selector: { matchLabels: { ...input.podSelector } },
    },
  };
}

/** Above ordinary workloads (default 0), far below system-critical ones (2e9): Synapse is scheduled first. */
export const SYNAPSE_PRIORITY = 100_000;
export const SYNAPSE_PRIORITY_CLASS = "nova-matrix-synapse";

export function synapsePriorityClass(labels: Labels): IPriorityClass {
  return {
    apiVersion: "scheduling.k8s.io/v1",
    kind: "PriorityClass",
    metadata: { name: SYNAPSE_PRIORITY_CLASS, labels: { ...labels } },
    value: SYNAPSE_PRIORITY,
    globalDefault: false,
    preemptionPolicy: "PreemptLowerPriority",
    description: "Synapse's single writer: schedule it before ordinary workloads when the cluster is full.",
  };
}

/** Pod Security Admission at `restricted` for the namespace: enforced, and audited/warned at the same level. */
export function podSecurityLabels(): Record<string, string> {
  return {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/audit-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
  };
}

/**
 * A container's securityContext as its image's own non-root user (uid = gid): no escalation, no capabilities, a
 * read-only root, as `restricted` asks (Synapse's, the proxy's and Redis's containers).
 */
export function nonRootContainerSecurity(uid: number) {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
  };
}
