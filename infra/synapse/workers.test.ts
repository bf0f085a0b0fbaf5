// The worker plan, pure: what Synapse 1.160 requires of a worker deployment, the routing table against the paths
// the bridge and clients use, and the cluster's plan against what the harness runs.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { HAPROXY_CONFIG_FILE, ROUTES_MAP_FILE } from "./haproxy.ts";
import { type HomeserverInput, NO_APPSERVICE_PUSHER } from "./homeserver.ts";
import { synapseListeners } from "./listeners.ts";
import {
  instanceName,
  type Placement,
  ROUTES,
  type RouteTarget,
  synapseWorkerPlan,
  type WorkerCounts,
  workerInstances,
} from "./workers.ts";

const homeserver: HomeserverInput = {
  serverName: "chat.example.com",
  bindAddresses: ["0.0.0.0"],
  listeners: synapseListeners({ publicIngress: true, workers: true }),
  mediaStorePath: "/data/media_store",
  maxUploadSize: "50M",
  presence: false,
  files: {
    signingKey: "/secrets/signing.key",
    registrationSharedSecret: "/secrets/registration_shared_secret",
    macaroonSecretKey: "/secrets/macaroon_secret_key",
    formSecret: "/secrets/form_secret",
    appserviceRegistration: "/secrets/appservice-nova-bridge.yaml",
    logConfig: "/config/log.yaml",
  },
};
const counts: WorkerCounts = {
  sync: { replicas: 2, maxReplicas: 4 },
  client: { replicas: 2 },
  eventPersisters: 2,
};
const cluster: Placement = { kind: "cluster", namespace: "nova-prod", clusterDomain: "cluster.local" };
const plan = (overrides: Partial<Parameters<typeof synapseWorkerPlan>[0]> = {}) =>
  synapseWorkerPlan({
    homeserver,
    counts,
    placement: cluster,
    replicationSecretPath: "/secrets/worker_replication_secret",
    workerConfigDir: "/config",
    ...overrides,
  });

/** Where the routing table sends a path (first match, else the main process), as the proxy's map_reg does. */
function targetOf(path: string): RouteTarget {
  return ROUTES.find((route) => new RegExp(route.path).test(path))?.target ?? "main";
}

describe("the worker plan", () => {
  it("names every instance uniquely, as its StatefulSet pod is named, up to each group's maximum", () => {
    const names = workerInstances(counts).map((w) => w.instance);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual([
      "matrix-synapse-sync-0",
      "matrix-synapse-sync-1",
      "matrix-synapse-sync-2",
      "matrix-synapse-sync-3",
      "matrix-synapse-client-0",
      "matrix-synapse-client-1",
      "matrix-synapse-event-persister-0",
      "matrix-synapse-event-persister-1",
      "matrix-synapse-media-0",
      "matrix-synapse-background-0",
    ]);
  });

  it("meets what Synapse 1.160 checks: instance_map has main and every stream writer, one writer per single-writer stream", () => {
    const { homeserver: shared, instanceMap, streamWriters } = plan();
    expect(Object.keys(instanceMap)).toEqual([
      "main",
      "matrix-synapse-event-persister-0",
      "matrix-synapse-event-persister-1",
    ]);
    for (const writer of streamWriters.events) expect(instanceMap).toHaveProperty(writer);
    expect(shared.stream_writers).toEqual({ events: streamWriters.events });
    // Hosts the other pods resolve: the main Service, each persister's pod behind its headless Service.
    expect(instanceMap.main).toEqual({ host: "matrix-synapse-main.nova-prod.svc.cluster.local", port: 9093 });
    expect(instanceMap["matrix-synapse-event-persister-1"]?.host).toBe(
      "matrix-synapse-event-persister-1.matrix-synapse-event-persister.nova-prod.svc.cluster.local",
    );
  });

  it("keeps the monolith's choices: no appservice pusher, no federation sender; moves media and background work off main", () => {
    const shared = plan().homeserver;
    expect(shared.notify_appservices_from_worker).toBe(NO_APPSERVICE_PUSHER);
    expect(shared.federation_sender_instances).toEqual([]);
    expect(shared.enable_media_repo).toBe(false);
    expect(shared.media_instance_running_background_jobs).toBe("matrix-synapse-media-0");
    expect(shared.run_background_tasks_on).toBe("matrix-synapse-background-0");
    expect(shared.update_user_directory_from_worker).toBe("matrix-synapse-background-0");
    // The appservice pusher must never be a running instance.
    const instances = plan().processes.map((p) => p.instance);
    expect(instances).not.toContain(NO_APPSERVICE_PUSHER);
    expect(shared.worker_replication_secret_path).toBe("/secrets/worker_replication_secret");
  });

  it("gives the main process a replication listener and every worker the listeners its work needs", () => {
    const { homeserver: shared, processes } = plan();
    const listeners = shared.listeners as {
      port: number;
      resources?: { names: string[] }[];
      x_forwarded?: boolean;
    }[];
    expect(listeners.map((l) => l.resources?.[0]?.names ?? ["metrics"])).toEqual([
      ["client"],
      ["replication"],
      ["metrics"],
    ]);
    const namesOf = (instance: string) => {
      const listeners = (processes.find((p) => p.instance === instance)?.workerFile?.config
        .worker_listeners ?? []) as { type: string; resources?: { names: string[] }[] }[];
      return listeners.map((l) => l.resources?.[0]?.names.join("+") ?? l.type);
    };
    expect(namesOf("matrix-synapse-sync-0")).toEqual(["client", "metrics"]);
    expect(namesOf("matrix-synapse-media-0")).toEqual(["media", "metrics"]);
    expect(namesOf("matrix-synapse-event-persister-0")).toEqual(["replication", "metrics"]);
    expect(namesOf("matrix-synapse-background-0")).toEqual(["health", "metrics"]);
    for (const process of processes.filter((p) => p.workerFile)) {
      const config = process.workerFile?.config ?? {};
      expect(config.worker_name).toBe(process.instance);
      // 1.160's generic_worker still asserts worker_app.
      expect(config.worker_app).toBe(
        process.group === "media" ? "synapse.app.media_repository" : "synapse.app.generic_worker",
      );
      expect(config.worker_log_config).toBe("/config/log.yaml");
    }
  });

  it("routes the bridge's and clients' requests to the process that serves them", () => {
    const room = "!abc:chat.example.com";
    const cases: [string, RouteTarget][] = [
      ["/_matrix/client/v3/sync", "sync"],
      ["/_matrix/client/r0/sync", "sync"],
      [`/_matrix/client/v3/rooms/${room}/send/m.room.message/txn1`, "client"],
      [`/_matrix/client/v3/rooms/${room}/redact/$ev/txn2`, "client"],
      [`/_matrix/client/v3/rooms/${room}/messages`, "client"],
      [`/_matrix/client/v3/rooms/${room}/invite`, "client"],
      [`/_matrix/client/v3/rooms/${room}/state/m.room.name/`, "client"],
      ["/_matrix/client/v3/createRoom", "client"],
      ["/_matrix/client/v3/register", "client"],
      ["/_matrix/client/v3/account/whoami", "client"],
      ["/_matrix/client/v3/join/%23nova_conv_1%3Achat.example.com", "client"],
      ["/_matrix/client/v3/directory/room/%23nova_conv_1%3Achat.example.com", "client"],
      ["/_matrix/client/v3/user/%40nova-service%3Achat.example.com/filter", "client"],
      ["/_matrix/media/v3/upload", "media"],
      ["/_matrix/client/v1/media/download/chat.example.com/abc", "media"],
      // Streams the main process writes, admin, health: main.
      ["/_matrix/client/v3/pushrules/", "main"],
      ["/_matrix/client/v3/keys/upload", "main"],
      ["/_synapse/admin/v1/register", "main"],
      ["/health", "main"],
    ];
    for (const [path, target] of cases) expect(`${path} -> ${targetOf(path)}`).toBe(`${path} -> ${target}`);
  });

  it("writes the routing table into the proxy's map file, in order, and the proxy names every instance", () => {
    const { proxy, routes } = plan();
    expect((proxy[ROUTES_MAP_FILE] ?? "").trim().split("\n")).toEqual(
      routes.map((r) => `${r.path} ${r.target}`),
    );
    const config = proxy[HAPROXY_CONFIG_FILE] ?? "";
    for (const ordinal of [0, 1, 2, 3]) expect(config).toContain(`server ${instanceName("sync", ordinal)} `);
    expect(config).not.toContain("matrix-synapse-event-persister");
    expect(config).not.toContain("matrix-synapse-background");
  });

  it("on loopback: the same config with each process on its own ports", () => {
    let next = 30_000;
    const ports = new Map<string, { client: number; replication: number; metrics: number }>();
    const portsOf = (instance: string) => {
      if (!ports.has(instance)) ports.set(instance, { client: next++, replication: next++, metrics: next++ });
      return ports.get(instance) as { client: number; replication: number; metrics: number };
    };
    const loopback = plan({
      placement: {
        kind: "loopback",
        ports: portsOf,
        proxyPorts: { internal: 1, public: 2, stats: 3 },
        proxyConfigDir: "/tmp/proxy",
      },
    });
    const inCluster = plan();
    expect(loopback.routes).toEqual(inCluster.routes);
    expect(loopback.processes.map((p) => p.instance)).toEqual(inCluster.processes.map((p) => p.instance));
    expect(loopback.instanceMap.main).toEqual({ host: "127.0.0.1", port: portsOf("main").replication });
    const strip = (config: Record<string, unknown>) => {
      const { listeners: _l, instance_map: _i, ...rest } = config;
      return rest;
    };
    expect(strip(loopback.homeserver)).toEqual(strip(inCluster.homeserver));
  });

  it("refuses counts Synapse cannot run", () => {
    expect(() => plan({ counts: { ...counts, eventPersisters: 0 } })).toThrow(/at least one event persister/);
    expect(() => plan({ counts: { ...counts, sync: { replicas: 3, maxReplicas: 2 } } })).toThrow(/replicas/);
  });

  it("renders plain YAML-able objects (no undefined, no functions)", () => {
    const { homeserver: shared, processes } = plan();
    expect(parse(JSON.stringify(shared))).toEqual(shared);
    for (const p of processes)
      if (p.workerFile) expect(parse(JSON.stringify(p.workerFile.config))).toEqual(p.workerFile.config);
  });
});
