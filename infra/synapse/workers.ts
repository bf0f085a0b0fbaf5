// Synapse in worker mode, planned by one pure function: the shared homeserver.yaml (main process included), each
// worker instance's config, `instance_map`, `stream_writers`, the routing table and the in-cluster proxy's config.
// The Kubernetes component and the harness both call `synapseWorkerPlan`; only the placement differs (pods behind
// cluster DNS, or processes on loopback ports), so what the tests run is what the cluster runs.
// Follows Synapse 1.160's docs/workers.md and what its code accepts (checked in the installed synapse/config/workers.py:
// `worker_app` is still required by generic_worker, workers refuse an `instance_map` without `main`, a stream writer
// must be in `instance_map`, events may have several writers, the other streams exactly one).
import { haproxyConfig, PROXY_POD_PORTS, type ProxyPorts, type Route, type RouteTarget } from "./haproxy.ts";

export { PROXY_POD_PORTS, type ProxyPorts, type Route, type RouteTarget };

import { FILE_NAMES, type HomeserverInput, homeserverConfig, NO_APPSERVICE_PUSHER } from "./homeserver.ts";

/** The worker groups, each a StatefulSet in the cluster (stable pod names are the workers' unique names). */
export const WORKER_GROUPS = ["sync", "client", "event-persister", "media", "background"] as const;
export type WorkerGroup = (typeof WORKER_GROUPS)[number];

/** How many of each: the stack config `nova-matrix:synapse.workers` (validated in config/schema.ts). */
export interface WorkerCounts {
  /** `/sync` workers: `replicas` at start, up to `maxReplicas` under the HorizontalPodAutoscaler. */
  readonly sync: { readonly replicas: number; readonly maxReplicas: number };
  /** Generic workers for the rest of the client API (reads, sends, room creation, registration). */
  readonly client: { readonly replicas: number };
  /** Writers of the `events` stream (Synapse shards rooms over them); a change needs every process restarted. */
  readonly eventPersisters: number;
}

/** The ports one Synapse process listens on. */
export interface InstancePorts {
  /** Client API (sync, client and media workers, the main process) or `/health` only (background worker). */
  readonly client: number;
  /** HTTP replication (the main process and the event persisters). */
  readonly replication: number;
  readonly metrics: number;
}

/** Pod ports in the cluster: every pod uses the same ones. */
export const POD_PORTS: InstancePorts = { client: 8008, replication: 9093, metrics: 9000 };

/** Where the processes run. */
export type Placement =
  | {
      readonly kind: "cluster";
      readonly namespace: string;
      /** The cluster's DNS domain (GKE: `cluster.local`). */
      readonly clusterDomain: string;
    }
  | {
      readonly kind: "loopback";
      readonly ports: (instance: string) => InstancePorts;
      readonly proxyPorts: ProxyPorts;
      /** Directory of the proxy's map file, as haproxy sees it. */
      readonly proxyConfigDir: string;
    };

export interface WorkerPlanInput {
  /** The monolith's settings; worker mode keeps them and adds its own. */
  readonly homeserver: HomeserverInput;
  readonly counts: WorkerCounts;
  readonly placement: Placement;
  /** Path of the file holding `worker_replication_secret` (authenticates replication HTTP between processes). */
  readonly replicationSecretPath: string;
  /** Directory of the per-instance worker config files, as Synapse sees it. */
  readonly workerConfigDir: string;
}

/** One Synapse process. */
export interface PlannedProcess {
  /** `main`, or the worker's unique name (in the cluster: its StatefulSet pod's name). */
  readonly instance: string;
  readonly group: WorkerGroup | "main";
  /** The Python module to run: `synapse.app.homeserver` or the worker app. */
  readonly app: string;
  readonly ports: InstancePorts;
  /** The worker's own config file (absent for the main process), loaded after the shared ones. */
  readonly workerFile?: { readonly name: string; readonly config: Record<string, unknown> };
}

export interface WorkerPlan {
  /** homeserver.yaml, shared by every process (its `listeners` are the main process's). */
  readonly homeserver: Record<string, unknown>;
  readonly instanceMap: Record<string, { host: string; port: number }>;
  readonly streamWriters: { events: string[] };
  /** The main process first, then every worker instance (the cluster renders up to each group's maximum). */
  readonly processes: readonly PlannedProcess[];
  readonly routes: readonly Route[];
  /** The proxy's files: `haproxy.cfg` and the routing map it reads. */
  readonly proxy: Readonly<Record<string, string>>;
}

/** Kubernetes names: the StatefulSet (and headless Service) of a group, the main process's Service. */
export const MAIN_SERVICE = "matrix-synapse-main";
export const groupName = (group: WorkerGroup) => `matrix-synapse-${group}`;
/** A StatefulSet pod's name, which is the worker's name. */
export const instanceName = (group: WorkerGroup, ordinal: number) => `${groupName(group)}-${ordinal}`;

export const GENERIC_WORKER = "synapse.app.generic_worker";
export const MEDIA_WORKER = "synapse.app.media_repository";
export const MAIN_APP = "synapse.app.homeserver";

/** How many instances each group has at most (the cluster renders a config file for each). */
export function groupSizes(counts: WorkerCounts): Record<WorkerGroup, number> {
  return {
    sync: counts.sync.maxReplicas,
    client: counts.client.replicas,
    "event-persister": counts.eventPersisters,
    media: 1, // one media store on a ReadWriteOnce volume
    background: 1, // Synapse runs background tasks on exactly one instance
  };
}

/** Every worker instance's name, group by group. */
export function workerInstances(counts: WorkerCounts): { instance: string; group: WorkerGroup }[] {
  const sizes = groupSizes(counts);
  return WORKER_GROUPS.flatMap((group) =>
    Array.from({ length: sizes[group] }, (_, ordinal) => ({ instance: instanceName(group, ordinal), group })),
  );
}

/** The per-instance worker file's name. */
export const workerFileName = (instance: string) => `worker-${instance}.yaml`;

/**
 * The routing table, in order (first match wins; anything else goes to the main process). From Synapse 1.160's
 * docs/workers.md: the sync endpoints to the sync workers, the client API a generic worker can serve to the
 * client workers, media to the media worker. Endpoints of streams the main process writes (push rules, account
 * data, presence, typing, to-device, receipts, device lists and keys uploads) stay on the main process, as the
 * docs advise for stream writers; admin and health as well.
 */
export const ROUTES: readonly Route[] = [
  // Sync (hashed by access token and user so one user's long-polls stay on one worker).
  { path: "^/_matrix/client/(r0|v3)/sync$", target: "sync" },
  { path: "^/_matrix/client/(api/v1|r0|v3)/events$", target: "sync" },
  { path: "^/_matrix/client/(api/v1|r0|v3)/initialSync$", target: "sync" },
  { path: "^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$", target: "sync" },
  // Media (the media worker serves the whole media API, authenticated media included).
  { path: "^/_matrix/media/", target: "media" },
  { path: "^/_matrix/client/v1/media/", target: "media" },
  {
    path: "^/_synapse/admin/v1/(purge_media_cache$|room/.*/media|user/.*/media|media/|quarantine_media/|users/.*/media$)",
    target: "media",
  },
  // Client API requests a generic worker serves.
  ...[
    "^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$",
    "^/_matrix/client/v1/rooms/.*/hierarchy$",
    "^/_matrix/client/(v1|unstable)/rooms/.*/relations/",
    "^/_matrix/client/v1/rooms/.*/threads$",
    "^/_matrix/client/v1/room_summary/.*$",
    "^/_matrix/client/(r0|v3|unstable)/account/3pid$",
    "^/_matrix/client/(r0|v3|unstable)/account/whoami$",
    "^/_matrix/client/versions$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$",
    "^/_matrix/client/v1/rooms/.*/timestamp_to_event$",
    "^/_matrix/client/(api/v1|r0|v3|unstable/.*)/rooms/.*/aliases",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/search$",
    "^/_matrix/client/(r0|v3|unstable)/user/.*/filter(/|$)",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/directory/room/.*$",
    "^/_matrix/client/(r0|v3|unstable)/capabilities$",
    "^/_matrix/client/(r0|v3|unstable)/notifications$",
    "^/_matrix/client/(r0|v3|unstable)/keys/query$",
    "^/_matrix/client/(r0|v3|unstable)/keys/changes$",
    "^/_matrix/client/(r0|v3|unstable)/keys/claim$",
    "^/_matrix/client/(r0|v3|unstable)/room_keys/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/login$",
    "^/_matrix/client/(r0|v3|unstable)/register$",
    "^/_matrix/client/(r0|v3|unstable)/register/available$",
    "^/_matrix/client/(r0|v3|unstable)/password_policy$",
    // Event sending: the worker creates the event and hands it to the room's event persister.
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/redact",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/join/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/knock/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/profile/",
    "^/_matrix/client/(r0|v3|unstable)/user_directory/search$",
    // Pagination: the proxy keeps every request of one room on one client worker, as the docs require.
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/messages$",
  ].map((path) => ({ path, target: "client" as const })),
];

function portsOf(placement: Placement, instance: string): InstancePorts {
  return placement.kind === "cluster" ? POD_PORTS : placement.ports(instance);
}

/** Host name other processes use to reach an instance. */
export function hostOf(placement: Placement, process: { instance: string; group: WorkerGroup | "main" }) {
  if (placement.kind === "loopback") return "127.0.0.1";
  const suffix = `${placement.namespace}.svc.${placement.clusterDomain}`;
  return process.group === "main"
    ? `${MAIN_SERVICE}.${suffix}`
    : `${process.instance}.${groupName(process.group)}.${suffix}`;
}

function bindAddresses(placement: Placement): string[] {
  return [placement.kind === "cluster" ? "0.0.0.0" : "127.0.0.1"];
}

/** The listeners of one worker, by what its group serves. */
function workerListeners(group: WorkerGroup, ports: InstancePorts, placement: Placement) {
  const bind_addresses = bindAddresses(placement);
  // Behind the proxy, which sets X-Forwarded-For itself on every request (see haproxy.ts).
  const http = (port: number, names: string[], xForwarded: boolean) => ({
    type: "http",
    port,
    bind_addresses,
    tls: false,
    x_forwarded: xForwarded,
    resources: [{ names, compress: false }],
  });
  const listeners: Record<string, unknown>[] = [];
  if (group === "sync" || group === "client") listeners.push(http(ports.client, ["client"], true));
  if (group === "media") listeners.push(http(ports.client, ["media"], true));
  // The background worker serves no requests: a listener for its probes only.
  if (group === "background") listeners.push(http(ports.client, ["health"], false));
  // Stream writers take the other processes' replication requests (and answer /health there).
  if (group === "event-persister") listeners.push(http(ports.replication, ["replication"], false));
  listeners.push({ type: "metrics", port: ports.metrics, bind_addresses });
  return listeners;
}

/**
 * The whole worker-mode deployment of Synapse from its settings: the one function both the cluster and the harness
 * render through.
 */
export function synapseWorkerPlan(input: WorkerPlanInput): WorkerPlan {
  const { placement, counts } = input;
  if (counts.eventPersisters < 1) throw new Error("worker mode needs at least one event persister");
  if (counts.sync.replicas < 1 || counts.sync.maxReplicas < counts.sync.replicas)
    throw new Error("sync workers: expected 1 <= replicas <= maxReplicas");
  if (counts.client.replicas < 1) throw new Error("client workers: expected at least one replica");

  const workers = workerInstances(counts);
  const first = (group: WorkerGroup) => instanceName(group, 0);
  const persisters = workers.filter((w) => w.group === "event-persister").map((w) => w.instance);

  const mainPorts = portsOf(placement, "main");
  const instanceMap: Record<string, { host: string; port: number }> = {
    main: { host: hostOf(placement, { instance: "main", group: "main" }), port: mainPorts.replication },
  };
  for (const w of workers.filter((w) => w.group === "event-persister"))
    instanceMap[w.instance] = {
      host: hostOf(placement, w),
      port: portsOf(placement, w.instance).replication,
    };
  const streamWriters = { events: persisters };

  const bind_addresses = bindAddresses(placement);
  const monolith = homeserverConfig(input.homeserver);
  const homeserver: Record<string, unknown> = {
    ...monolith,
    // The main process: client API behind the proxy (it serves what no worker takes), replication for the
    // workers, metrics.
    listeners: [
      {
        port: mainPorts.client,
        bind_addresses,
        type: "http",
        tls: false,
        x_forwarded: true,
        resources: [{ names: ["client"], compress: false }],
      },
      {
        port: mainPorts.replication,
        bind_addresses,
        type: "http",
        tls: false,
        x_forwarded: false,
        resources: [{ names: ["replication"], compress: false }],
      },
      { port: mainPorts.metrics, bind_addresses, type: "metrics", tls: false },
    ],
    worker_replication_secret_path: input.replicationSecretPath,
    instance_map: instanceMap,
    stream_writers: streamWriters,
    // Still no appservice pusher in worker mode: the registration has `url: null`, so the pusher is named after
    // an instance that never runs (homeserver.ts says why).
    notify_appservices_from_worker: NO_APPSERVICE_PUSHER,
    run_background_tasks_on: first("background"),
    update_user_directory_from_worker: first("background"),
    // The media worker owns the media store; the other processes do not load the media repository.
    enable_media_repo: false,
    media_instance_running_background_jobs: first("media"),
  };

  const logConfig = input.homeserver.files.logConfig;
  const processes: PlannedProcess[] = [
    { instance: "main", group: "main", app: MAIN_APP, ports: mainPorts },
    ...workers.map(({ instance, group }) => {
      const ports = portsOf(placement, instance);
      const app = group === "media" ? MEDIA_WORKER : GENERIC_WORKER;
      return {
        instance,
        group,
        app,
        ports,
        workerFile: {
          name: workerFileName(instance),
          config: {
            worker_app: app,
            worker_name: instance,
            worker_log_config: logConfig,
            worker_listeners: workerListeners(group, ports, placement),
          },
        },
      };
    }),
  ];

  const routes = ROUTES;
  return {
    homeserver,
    instanceMap,
    streamWriters,
    processes,
    routes,
    proxy: haproxyConfig({
      placement,
      routes,
      backends: {
        main: [
          {
            instance: "main",
            host: hostOf(placement, { instance: "main", group: "main" }),
            port: mainPorts.client,
          },
        ],
        ...Object.fromEntries(
          (["sync", "client", "media"] as const).map((group) => [
            group,
            workers
              .filter((w) => w.group === group)
              .map((w) => ({
                instance: w.instance,
                host: hostOf(placement, w),
                port: portsOf(placement, w.instance).client,
              })),
          ]),
        ),
      } as Record<RouteTarget, { instance: string; host: string; port: number }[]>,
    }),
  };
}

/** The `--config-path` files of a process, in order, relative to the config directories the caller uses. */
export function configPathsOf(
  process: PlannedProcess,
  dirs: { config: string; secrets: string; workers: string },
) {
  return [
    `${dirs.config}/${FILE_NAMES.homeserver}`,
    `${dirs.secrets}/${FILE_NAMES.database}`,
    `${dirs.secrets}/${FILE_NAMES.redis}`,
    ...(process.workerFile ? [`${dirs.workers}/${process.workerFile.name}`] : []),
  ];
}

export interface RedisConnection {
  readonly host: string;
  readonly port: number;
  /** Memorystore's in-transit encryption (port 6378): TLS with its server CA. */
  readonly tls: boolean;
  readonly passwordPath: string;
  /** The server CA to trust (with `tls`). */
  readonly caPath?: string | undefined;
}

/** `redis.yaml`: the `redis` block every process loads (pub/sub replication between the processes). */
export function redisConfig(connection: RedisConnection): Record<string, unknown> {
  return {
    redis: {
      enabled: true,
      host: connection.host,
      port: connection.port,
      password_path: connection.passwordPath,
      ...(connection.tls
        ? { use_tls: true, ...(connection.caPath === undefined ? {} : { ca_file: connection.caPath }) }
        : {}),
    },
  };
}
