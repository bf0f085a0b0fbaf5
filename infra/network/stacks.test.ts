// Both stacks' isolation as who can reach whom: the NetworkPolicies each stack renders, evaluated by reachability.ts.
// Staging's namespace is shared (its Postgres, realtime-chat-service, nova_auth's clients): only this stack's pods
// change. Prod's database is Cloud SQL, outside the cluster, reached by its private address.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { beforeAll, describe, expect, it } from "vitest";
import { BACKUP_JOB_PODS } from "../backup/plan.ts";
import {
  BRIDGE_DB_SETUP_LABELS,
  BRIDGE_LABELS,
  BRIDGE_METRICS_PORT,
  BRIDGE_PORT,
} from "../bridge-deploy/spec.ts";
import { DATABASE_SETUP_LABELS } from "../database/setup-spec.ts";
import { MOCK_DATABASE_IP, MOCK_REDIS_IP } from "../render/mocks.ts";
import { PROJECT_DIR } from "../render/run.ts";
import { readStackConfig } from "../render/stack-file.ts";
import { CLIENT_PORT, METRICS_PORT, SYNAPSE_LABELS } from "../synapse/deployment-spec.ts";
import { runStackInChild } from "../testing/stack-process.ts";
import { connects, type Destination, type Endpoint } from "./reachability.ts";
import { PROXY_ENDPOINTS } from "./wiring.ts";

type Labels = Record<string, string>;
interface StackView {
  policies: INetworkPolicy[];
  namespace: string;
  chat: Labels;
  /** Where in-cluster callers send client API requests: Synapse's listener, or the proxy's (worker mode). */
  clientApi: { labels: Labels; port: number };
}

const views: Record<string, StackView> = {};
beforeAll(async () => {
  for (const stack of ["staging", "prod"]) {
    const run = await runStackInChild(stack);
    const config = await readStackConfig(PROJECT_DIR, stack);
    const network = JSON.parse(config["nova-matrix:network"] ?? "{}") as { chatServiceSelector: Labels };
    views[stack] = {
      policies: run.objects.filter((o) => o.kind === "NetworkPolicy") as unknown as INetworkPolicy[],
      namespace: String(config["nova-matrix:namespace"]),
      chat: network.chatServiceSelector,
      clientApi: run.objects.some(
        (o) => o.kind === "StatefulSet" && o.metadata.name?.startsWith("matrix-synapse-"),
      )
        ? { labels: { ...PROXY_ENDPOINTS.podSelector }, port: PROXY_ENDPOINTS.internalPort }
        : { labels: { ...SYNAPSE_LABELS }, port: CLIENT_PORT },
    };
  }
});

/** One line of the table: `from` connects to `to` (or not). */
type Case = [description: string, from: Endpoint, to: Destination, allowed: boolean];

function table(view: StackView, extra: Case[]): Case[] {
  const ns = view.namespace;
  const pod = (labels: Labels, namespace = ns): Endpoint => ({ namespace, labels });
  const at = (labels: Labels, port: number, protocol: "TCP" | "UDP" = "TCP"): Destination => ({
    namespace: ns,
    labels,
    port,
    protocol,
  });
  const synapse = pod(SYNAPSE_LABELS);
  const bridge = pod(BRIDGE_LABELS);
  const api = at(view.clientApi.labels, view.clientApi.port);
  const chat = pod(view.chat);
  const stranger = pod({ app: "nova-auth" });
  const collector = pod({ app: "collector" }, "gmp-system");
  const mediaBackup = pod(BACKUP_JOB_PODS.media.matchLabels);
  const kubeDns: Destination = {
    namespace: "kube-system",
    labels: { "k8s-app": "kube-dns" },
    port: 53,
    protocol: "UDP",
  };
  const metadata: Destination = { ip: "169.254.169.254", port: 80 };
  const internet: Destination = { ip: "142.250.74.36", port: 443 };
  return [
    ["realtime-chat-service -> Synapse's client API", chat, api, true],
    ["the bridge -> Synapse's client API", bridge, api, true],
    ["GMP's collector -> Synapse's metrics", collector, at(SYNAPSE_LABELS, METRICS_PORT), true],
    ["GMP's collector -> the bridge's metrics", collector, at(BRIDGE_LABELS, BRIDGE_METRICS_PORT), true],
    ["GMP's collector -> Synapse's client port", collector, at(SYNAPSE_LABELS, CLIENT_PORT), false],
    ["realtime-chat-service -> Synapse's metrics", chat, at(SYNAPSE_LABELS, METRICS_PORT), false],
    ["another pod of the namespace -> Synapse's client API", stranger, api, false],
    ["another pod of the namespace -> Synapse", stranger, at(SYNAPSE_LABELS, CLIENT_PORT), false],
    [
      "a pod of another namespace -> Synapse",
      pod(view.chat, "elsewhere"),
      at(SYNAPSE_LABELS, CLIENT_PORT),
      false,
    ],
    ["realtime-chat-service -> the bridge's API", chat, at(BRIDGE_LABELS, BRIDGE_PORT), true],
    ["another pod of the namespace -> the bridge", stranger, at(BRIDGE_LABELS, BRIDGE_PORT), false],
    ["Synapse -> DNS", synapse, kubeDns, true],
    ["the bridge -> DNS", bridge, kubeDns, true],
    ["Synapse -> the metadata server", synapse, metadata, false],
    ["the bridge -> the metadata server", bridge, metadata, false],
    ["Synapse -> the internet", synapse, internet, false],
    ["the bridge -> the internet", bridge, internet, false],
    ["Synapse -> the bridge", synapse, at(BRIDGE_LABELS, BRIDGE_PORT), false],
    ["Synapse -> realtime-chat-service", synapse, at(view.chat, 3000), false],
    ["the database setup Job -> Synapse", pod(DATABASE_SETUP_LABELS), at(SYNAPSE_LABELS, CLIENT_PORT), false],
    ["the media backup job -> the metadata server (Workload Identity)", mediaBackup, metadata, true],
    ["the media backup job -> Google APIs", mediaBackup, internet, true],
    ["the media backup job -> Synapse", mediaBackup, at(SYNAPSE_LABELS, CLIENT_PORT), false],
    ...extra,
  ];
}

describe("staging: who reaches whom", () => {
  const postgres = { app: "postgres" };
  const cases = (): Case[] => {
    const view = views.staging as StackView;
    const ns = view.namespace;
    const pod = (labels: Labels): Endpoint => ({ namespace: ns, labels });
    const db: Destination = { namespace: ns, labels: postgres, port: 5432 };
    return table(view, [
      ["Synapse -> the namespace's Postgres", pod(SYNAPSE_LABELS), db, true],
      ["the bridge -> the namespace's Postgres", pod(BRIDGE_LABELS), db, true],
      ["Synapse's setup Job -> Postgres", pod(DATABASE_SETUP_LABELS), db, true],
      ["the bridge's setup Job -> Postgres", pod(BRIDGE_DB_SETUP_LABELS), db, true],
      ["the database backup job -> Postgres", pod(BACKUP_JOB_PODS.dumps.matchLabels), db, true],
      [
        "the database backup job -> Google APIs",
        pod(BACKUP_JOB_PODS.dumps.matchLabels),
        { ip: "142.250.74.36", port: 443 },
        true,
      ],
      ["the media backup job -> Postgres", pod(BACKUP_JOB_PODS.media.matchLabels), db, false],
      ["Synapse -> Postgres on another port", pod(SYNAPSE_LABELS), { ...db, port: 5433 }, false],
      // Untouched: the namespace's other workloads keep every connection they had.
      ["realtime-chat-service -> Postgres (untouched)", pod(view.chat), db, true],
      ["nova_auth's clients -> Postgres (untouched)", pod({ app: "nova-auth" }), db, true],
      [
        "nova_auth's clients -> realtime-chat-service (untouched)",
        pod({ app: "nova-auth" }),
        { namespace: ns, labels: view.chat, port: 3000 },
        true,
      ],
      [
        "realtime-chat-service -> the internet (untouched)",
        pod(view.chat),
        { ip: "142.250.74.36", port: 443 },
        true,
      ],
      [
        "the load balancer ranges -> Synapse (no Ingress)",
        { ip: "35.191.0.10" },
        { namespace: ns, labels: SYNAPSE_LABELS, port: CLIENT_PORT },
        false,
      ],
    ]);
  };

  it("selects only this stack's pods", () => {
    for (const policy of (views.staging as StackView).policies)
      expect(JSON.stringify(policy.spec?.podSelector)).not.toMatch(/^\{\}$|"postgres"|realtime-chat/);
  });

  it("allows exactly the table", () => {
    const view = views.staging as StackView;
    for (const [description, from, to, allowed] of cases())
      expect(connects(view.policies, from, to), description).toBe(allowed);
  });
});

describe("prod (worker mode): who reaches whom", () => {
  const cases = (): Case[] => {
    const view = views.prod as StackView;
    const ns = view.namespace;
    const pod = (labels: Labels): Endpoint => ({ namespace: ns, labels });
    const cloudSql: Destination = { ip: MOCK_DATABASE_IP, port: 5432 };
    const memorystore: Destination = { ip: MOCK_REDIS_IP, port: 6378 };
    const proxyAt = (port: number): Destination => ({
      namespace: ns,
      labels: PROXY_ENDPOINTS.podSelector,
      port,
    });
    const synapseAt = (port: number): Destination => ({ namespace: ns, labels: SYNAPSE_LABELS, port });
    const sync = pod({ app: "matrix-synapse-sync" });
    return table(view, [
      ["Synapse -> Cloud SQL's private address", pod(SYNAPSE_LABELS), cloudSql, true],
      ["a sync worker -> Cloud SQL", sync, cloudSql, true],
      ["Synapse -> Memorystore", pod(SYNAPSE_LABELS), memorystore, true],
      ["a sync worker -> Memorystore", sync, memorystore, true],
      ["the bridge -> Memorystore", pod(BRIDGE_LABELS), memorystore, false],
      ["the proxy -> Cloud SQL", pod(PROXY_ENDPOINTS.podSelector), cloudSql, false],
      ["the bridge -> Cloud SQL", pod(BRIDGE_LABELS), cloudSql, true],
      ["the setup Jobs -> Cloud SQL", pod(BRIDGE_DB_SETUP_LABELS), cloudSql, true],
      // No dump job beside Cloud SQL; the media archive job has no business with the database.
      ["the media backup job -> Cloud SQL", pod(BACKUP_JOB_PODS.media.matchLabels), cloudSql, false],
      ["Synapse -> another address of the VPC", pod(SYNAPSE_LABELS), { ip: "10.20.0.4", port: 5432 }, false],
      ["the bridge -> Synapse's main process directly", pod(BRIDGE_LABELS), synapseAt(CLIENT_PORT), false],
      ["the proxy -> Synapse's main process", pod(PROXY_ENDPOINTS.podSelector), synapseAt(CLIENT_PORT), true],
      [
        "Google's load balancer -> the proxy's public listener",
        { ip: "35.191.0.10" },
        proxyAt(PROXY_ENDPOINTS.publicPort),
        true,
      ],
      [
        "its health checks -> the proxy's public listener",
        { ip: "130.211.1.5" },
        proxyAt(PROXY_ENDPOINTS.publicPort),
        true,
      ],
      [
        "Google's load balancer -> the proxy's internal listener",
        { ip: "35.191.0.10" },
        proxyAt(PROXY_ENDPOINTS.internalPort),
        false,
      ],
      ["Google's load balancer -> Synapse directly", { ip: "35.191.0.10" }, synapseAt(CLIENT_PORT), false],
      ["Google's load balancer -> Synapse's metrics", { ip: "35.191.0.10" }, synapseAt(METRICS_PORT), false],
      [
        "Google's load balancer -> the bridge",
        { ip: "35.191.0.10" },
        { namespace: ns, labels: BRIDGE_LABELS, port: BRIDGE_PORT },
        false,
      ],
      [
        "realtime-chat-service -> the public listener",
        pod(view.chat),
        proxyAt(PROXY_ENDPOINTS.publicPort),
        false,
      ],
      [
        "any other address -> the public listener",
        { ip: "203.0.113.50" },
        proxyAt(PROXY_ENDPOINTS.publicPort),
        false,
      ],
    ]);
  };

  it("allows exactly the table", () => {
    const view = views.prod as StackView;
    for (const [description, from, to, allowed] of cases())
      expect(connects(view.policies, from, to), description).toBe(allowed);
  });
});
