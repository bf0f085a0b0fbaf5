// Isolation and disruption objects (pure): NetworkPolicies, Synapse's PodDisruptionBudget and PriorityClass,
// and the Pod Security Admission labels for the namespace.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";
import type { INetworkPolicyPort } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IPriorityClass } from "kubernetes-models/scheduling.k8s.io/v1/PriorityClass";

/** Google Cloud load balancers' proxy and health-check ranges (container-native load balancing reaches pods from these). */
export const GCLB_RANGES = ["130.211.0.0/22", "35.191.0.0/16"] as const;

type Labels = Readonly<Record<string, string>>;

/** Pods allowed in: a pod selector in our namespace, or pods of another namespace (by its name). */
export interface Peer {
  readonly podSelector: Labels;
  /** Another namespace's name; absent = the policy's own namespace. */
  readonly namespace?: string;
}

/** A scraper: its namespace (GMP's collectors run in `gmp-system`) and, optionally, which pods in it. */
export interface Scraper {
  readonly namespace: string;
  readonly podSelector?: Labels;
}

export interface NetworkInput {
  readonly namespace: string;
  readonly labels: Labels;
  /**
   * Pods the default-deny covers. `{}` = every pod in the namespace: right for a namespace of its own. In a
   * namespace shared with other services (staging's `nova-staging` also runs realtime-chat-service and the
   * Postgres that holds `nova_auth`), every other workload then needs its own allow policy first.
   */
  readonly defaultDenySelector: Labels;
  readonly synapse: {
    readonly podSelector: Labels;
    readonly clientPort: number;
    readonly metricsPort: number;
    /** The bridge and realtime-chat-service. */
    readonly clients: readonly Peer[];
    /** Load balancer source ranges allowed to the client port (prod, behind GCLB: GCLB_RANGES). */
    readonly loadBalancerRanges: readonly string[];
  };
  readonly scrapers: readonly Scraper[];
  readonly bridge?: {
    readonly podSelector: Labels;
    readonly port: number;
    /** May equal `port` (the bridge serves /metrics beside its API): scrapers then reach that port too. */
    readonly metricsPort: number;
    readonly clients: readonly Peer[];
    /** Load balancer source ranges, where front ends reach the bridge's WebSocket through an Ingress. */
    readonly loadBalancerRanges?: readonly string[];
  };
  /** In-cluster Postgres (staging); absent in prod (Cloud SQL is reached over private IP, outside the cluster). */
  readonly postgres?: {
    readonly podSelector: Labels;
    readonly port: number;
    /** Synapse, the bridge, the database Jobs (migrations, backups) and any other user of that server. */
    readonly clients: readonly Peer[];
  };
}

const peer = (p: Peer): INetworkPolicyPeer => ({
  podSelector: { matchLabels: { ...p.podSelector } },
  ...(p.namespace
    ? { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": p.namespace } } }
    : {}),
});

const scraperPeer = (s: Scraper): INetworkPolicyPeer => ({
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": s.namespace } },
  ...(s.podSelector ? { podSelector: { matchLabels: { ...s.podSelector } } } : {}),
});

const tcp = (port: number): INetworkPolicyPort[] => [{ protocol: "TCP", port }];

function policy(input: NetworkInput, name: string, spec: INetworkPolicy["spec"]): INetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace: input.namespace, labels: { ...input.labels } },
    spec,
  };
}

function requirePeers(field: string, peers: readonly unknown[]) {
  if (peers.length === 0) {
    throw new Error(`${field} is empty: the policy would admit nobody; list the pods that must connect`);
  }
}

/** Ingress rules admitting load balancer ranges to a port (none for no ranges); each must be an IPv4 CIDR. */
function fromRanges(field: string, ranges: readonly string[], port: number) {
  for (const range of ranges) {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(range)) {
      throw new Error(`${field}: "${range}" is not an IPv4 CIDR such as 35.191.0.0/16`);
    }
  }
  return ranges.length > 0 ? [{ from: ranges.map((cidr) => ({ ipBlock: { cidr } })), ports: tcp(port) }] : [];
}

export function networkPolicies(input: NetworkInput): INetworkPolicy[] {
  requirePeers("synapse.clients", input.synapse.clients);
  const policies: INetworkPolicy[] = [
    // Ingress only: egress stays open (Synapse -> Cloud SQL private IP, backup jobs -> Google APIs and the
    // metadata server for Workload Identity have no stable pod selectors to allow).
    policy(input, "default-deny-ingress", {
      podSelector: { matchLabels: { ...input.defaultDenySelector } },
      policyTypes: ["Ingress"],
      ingress: [],
    }),
    policy(input, "matrix-synapse-ingress", {
      podSelector: { matchLabels: { ...input.synapse.podSelector } },
      policyTypes: ["Ingress"],
      ingress: [
        { from: input.synapse.clients.map(peer), ports: tcp(input.synapse.clientPort) },
        ...fromRanges(
          "synapse.loadBalancerRanges",
          input.synapse.loadBalancerRanges,
          input.synapse.clientPort,
        ),
        ...(input.scrapers.length > 0
          ? [{ from: input.scrapers.map(scraperPeer), ports: tcp(input.synapse.metricsPort) }]
          : []),
      ],
    }),
  ];
  if (input.bridge) {
    requirePeers("bridge.clients", input.bridge.clients);
    policies.push(
      policy(input, "nova-matrix-bridge-ingress", {
        podSelector: { matchLabels: { ...input.bridge.podSelector } },
        policyTypes: ["Ingress"],
        ingress: [
          { from: input.bridge.clients.map(peer), ports: tcp(input.bridge.port) },
          ...fromRanges(
            "bridge.loadBalancerRanges",
            input.bridge.loadBalancerRanges ?? [],
            input.bridge.port,
          ),
          ...(input.scrapers.length > 0
            ? [{ from: input.scrapers.map(scraperPeer), ports: tcp(input.bridge.metricsPort) }]
            : []),
        ],
      }),
    );
  }
  if (input.postgres) {
    requirePeers("postgres.clients", input.postgres.clients);
    policies.push(
      policy(input, "postgres-ingress", {
        podSelector: { matchLabels: { ...input.postgres.podSelector } },
        policyTypes: ["Ingress"],
        ingress: [{ from: input.postgres.clients.map(peer), ports: tcp(input.postgres.port) }],
      }),
    );
  }
  return policies;
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
