// Who may connect to whom under a set of NetworkPolicies (pure): Kubernetes' ingress semantics for the subset
// the builders use (matchLabels, namespace by name, IPv4 ipBlock, TCP ports). Lets tests state the isolation
// as "the bridge reaches Synapse's client port, nothing else does" instead of restating the objects.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";

export type Source =
  | { readonly namespace: string; readonly labels: Readonly<Record<string, string>> }
  | { readonly ip: string };

export interface Destination {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly port: number;
}

const matches = (selector: Record<string, string> | undefined, labels: Readonly<Record<string, string>>) =>
  Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);

const ipToNumber = (ip: string) => ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);

function inCidr(ip: string, cidr: string): boolean {
  const [base = "", bits = "32"] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  const start = Math.floor(ipToNumber(base) / size) * size;
  const value = ipToNumber(ip);
  return value >= start && value < start + size;
}

/** True when the destination pod accepts a TCP connection from the source on the port. */
export function admits(
  policies: readonly INetworkPolicy[],
  source: Source,
  destination: Destination,
): boolean {
  const selecting = policies.filter(
    (p) =>
      p.metadata?.namespace === destination.namespace &&
      (p.spec?.policyTypes ?? ["Ingress"]).includes("Ingress") &&
      matches(p.spec?.podSelector?.matchLabels, destination.labels),
  );
  if (selecting.length === 0) return true; // not isolated
  return selecting.some((p) =>
    (p.spec?.ingress ?? []).some((rule) => {
      const portOk =
        !rule.ports ||
        rule.ports.some((port) => (port.protocol ?? "TCP") === "TCP" && port.port === destination.port);
      const fromOk =
        !rule.from ||
        rule.from.some((peer) => {
          if ("ip" in source) return peer.ipBlock !== undefined && inCidr(source.ip, peer.ipBlock.cidr);
          if (peer.ipBlock) return false;
          const namespaceOk = peer.namespaceSelector
            ? matches(peer.namespaceSelector.matchLabels, { "kubernetes.io/metadata.name": source.namespace })
            : source.namespace === p.metadata?.namespace;
          const podOk = peer.podSelector ? matches(peer.podSelector.matchLabels, source.labels) : true;
          return namespaceOk && podOk;
        });
      return portOk && fromOk;
    }),
  );
}
