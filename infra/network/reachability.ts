// Who may connect to whom under a set of NetworkPolicies (pure): Kubernetes' semantics for the subset the builders use
// (matchLabels and `In` expressions, namespaces by name, IPv4 ipBlocks with `except`, TCP and UDP ports), in both
// directions. A connection needs the source's egress to allow it and the destination's ingress to admit it; a pod no
// policy of that type selects is not isolated in that direction. Tests state the isolation as "the bridge reaches
// Synapse's client port, nothing else does" instead of restating the objects.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";

type Labels = Readonly<Record<string, string>>;

/** A pod (its namespace and labels) or an address outside the cluster. */
export type Endpoint = { readonly namespace: string; readonly labels: Labels } | { readonly ip: string };

/** What is connected to: an endpoint and a port (TCP unless `protocol` says UDP). */
export type Destination = Endpoint & { readonly port: number; readonly protocol?: "TCP" | "UDP" };

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

function selects(selector: Selector | undefined, labels: Labels): boolean {
  const byLabel = Object.entries(selector?.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const byExpression = (selector?.matchExpressions ?? []).every((expression) => {
    const value = labels[expression.key];
    switch (expression.operator) {
      case "In":
        return value !== undefined && (expression.values ?? []).includes(value);
      case "NotIn":
        return value === undefined || !(expression.values ?? []).includes(value);
      case "Exists":
        return value !== undefined;
      case "DoesNotExist":
        return value === undefined;
      default:
        throw new Error(`selector operator ${expression.operator} is not modelled`);
    }
  });
  return byLabel && byExpression;
}

const ipToNumber = (ip: string) => ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);

export function inCidr(ip: string, cidr: string): boolean {
  const [base = "", bits = "32"] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  const start = Math.floor(ipToNumber(base) / size) * size;
  const value = ipToNumber(ip);
  return value >= start && value < start + size;
}

/** Whether a policy peer (seen from a policy in `policyNamespace`) is the endpoint. */
function peerMatches(
  peer: INetworkPolicyPeer,
  endpoint: Endpoint,
  policyNamespace: string | undefined,
): boolean {
  if ("ip" in endpoint)
    return (
      peer.ipBlock !== undefined &&
      inCidr(endpoint.ip, peer.ipBlock.cidr) &&
      !(peer.ipBlock.except ?? []).some((cidr) => inCidr(endpoint.ip, cidr))
    );
  if (peer.ipBlock) return false; // pod addresses are not matched by ipBlocks here (the builders never rely on it)
  const namespaceOk = peer.namespaceSelector
    ? selects(peer.namespaceSelector, { "kubernetes.io/metadata.name": endpoint.namespace })
    : endpoint.namespace === policyNamespace;
  const podOk = peer.podSelector ? selects(peer.podSelector, endpoint.labels) : true;
  return namespaceOk && podOk;
}

function portMatches(
  ports: { port?: number | string; protocol?: string }[] | undefined,
  destination: Destination,
): boolean {
  if (!ports) return true;
  return ports.some(
    (port) =>
      (port.protocol ?? "TCP") === (destination.protocol ?? "TCP") &&
      (port.port === undefined || port.port === destination.port),
  );
}

type Direction = "Ingress" | "Egress";

/** Policies of `direction` selecting the pod `at` (an address outside the cluster is selected by none). */
function selecting(policies: readonly INetworkPolicy[], at: Endpoint, direction: Direction) {
  if ("ip" in at) return [];
  return policies.filter(
    (p) =>
      p.metadata?.namespace === at.namespace &&
      (p.spec?.policyTypes ?? ["Ingress"]).includes(direction) &&
      selects(p.spec?.podSelector as Selector | undefined, at.labels),
  );
}

/** True when the destination accepts the connection from the source (its ingress policies). */
export function admits(
  policies: readonly INetworkPolicy[],
  source: Endpoint,
  destination: Destination,
): boolean {
  const applying = selecting(policies, destination, "Ingress");
  if (applying.length === 0) return true;
  return applying.some((p) =>
    (p.spec?.ingress ?? []).some(
      (rule) =>
        portMatches(rule.ports, destination) &&
        (!rule.from || rule.from.some((peer) => peerMatches(peer, source, p.metadata?.namespace))),
    ),
  );
}

/** True when the source may open the connection (its egress policies). */
export function allowsOut(
  policies: readonly INetworkPolicy[],
  source: Endpoint,
  destination: Destination,
): boolean {
  const applying = selecting(policies, source, "Egress");
  if (applying.length === 0) return true;
  return applying.some((p) =>
    (p.spec?.egress ?? []).some(
      (rule) =>
        portMatches(rule.ports, destination) &&
        (!rule.to || rule.to.some((peer) => peerMatches(peer, destination, p.metadata?.namespace))),
    ),
  );
}

/** True when the connection is allowed both ways: out of the source and into the destination. */
export function connects(
  policies: readonly INetworkPolicy[],
  source: Endpoint,
  destination: Destination,
): boolean {
  return allowsOut(policies, source, destination) && admits(policies, source, destination);
}
