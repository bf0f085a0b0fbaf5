// Starts the real Synapse on a stack's rendered files (ConfigMap + Secret), with the pod's paths, ports and database
// re-pointed at the harness, then proves the service user's identity works with the generated as_token.

import type { SynapseChroot } from "@nova-matrix/dev/harness";
import {
  checkSynapseConfig,
  freePort,
  type PostgresServer,
  PYTHON_DIR,
  type RunningSynapse,
  type RunningSynapseCluster,
  startSynapse,
  startSynapseCluster,
} from "@nova-matrix/dev/harness";
import { parse, stringify } from "yaml";
import type { RecordedResource } from "../render/mocks.ts";
import {
  CLIENT_PORT,
  CONFIG_MAP_NAME,
  MOUNTS,
  SECRET_NAME,
  WORKER_MOUNT,
  WORKERS_CONFIG_MAP,
} from "../synapse/deployment-spec.ts";
import { HAPROXY_CONFIG_DIR, HAPROXY_CONFIG_FILE, ROUTES_MAP_FILE } from "../synapse/haproxy.ts";
import { FILE_NAMES } from "../synapse/homeserver.ts";
import { PROXY_POD_PORTS, workerFileName } from "../synapse/workers.ts";
import { PROXY_CONFIG_MAP } from "../synapse/workers-component.ts";

/** The data of the ConfigMap or Secret called `name` in a run. */
export function objectData(
  resources: readonly RecordedResource[],
  kind: "ConfigMap" | "Secret",
  name: string,
) {
  const found = resources.find(
    (resource) =>
      resource.inputs.kind === kind &&
      (resource.inputs.metadata as { name?: string } | undefined)?.name === name,
  );
  if (!found) throw new Error(`no ${kind} ${name} in the run`);
  const data = (kind === "ConfigMap" ? found.inputs.data : found.inputs.stringData) as Record<string, string>;
  return data;
}

/** Replaces the pod's mount points in every string with the harness data dir. */
function repointPaths(value: unknown, dataDir: string): unknown {
  if (typeof value === "string")
    return value.replace(
      new RegExp(`^(${[...Object.values(MOUNTS), WORKER_MOUNT].join("|")})/`),
      `${dataDir}/`,
    );
  if (Array.isArray(value)) return value.map((item) => repointPaths(item, dataDir));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, repointPaths(item, dataDir)]));
  return value;
}

export interface RenderedSynapse {
  synapse: RunningSynapse;
  configCheck: { ok: boolean; output: string };
  /** The database settings Synapse was given by the stack (before re-pointing). */
  stackDatabaseArgs: Record<string, unknown>;
  /** The appservice's ip_range_whitelist as the stack renders it (the harness runs it as 127.0.0.1/32). */
  stackAppserviceIpRanges: string[];
  /** The harness port of each of the stack's listener ports (8008 -> synapse.baseUrl's port, ...). */
  hostPort(podPort: number): number;
}

/**
 * The whitelist the harness runs the registration with: in the cluster the callers' pod addresses are inside the
 * stack's pod ranges; here every caller is on loopback, so 127.0.0.1 stands for "inside the cluster" and any other
 * loopback address (127.0.0.2) for "outside it".
 */
export const HARNESS_APPSERVICE_IP_RANGES = ["127.0.0.1/32"];

/** The stack's appservice registration with the harness's whitelist, and the ranges the stack rendered. */
function registrationOnHarness(secretFiles: Record<string, string>) {
  const registration = parse(secretFiles[FILE_NAMES.appserviceRegistration] ?? "") as {
    ip_range_whitelist?: string[];
  };
  const stackAppserviceIpRanges = [...(registration.ip_range_whitelist ?? [])];
  if (stackAppserviceIpRanges.length === 0)
    throw new Error("the stack's registration has no ip_range_whitelist");
  const harnessRegistration = stringify({
    ...registration,
    ip_range_whitelist: HARNESS_APPSERVICE_IP_RANGES,
  });
  return { stackAppserviceIpRanges, harnessRegistration };
}

/** Creates the stack's role and database on the harness Postgres and starts Synapse on the stack's files. */
export async function startRenderedSynapse(
  chroot: SynapseChroot,
  postgres: PostgresServer,
  resources: readonly RecordedResource[],
  options: {
    /** Listeners a test adds to the rendered ones (harness ports), for a control case. */
    extraListeners?: (ports: { free: () => Promise<number> }) => Promise<Record<string, unknown>[]>;
    /** The role and database exist already (a takeover test made them, and the setup Job set the password). */
    existingDatabase?: boolean;
  } = {},
): Promise<RenderedSynapse> {
  const publicFiles = objectData(resources, "ConfigMap", CONFIG_MAP_NAME);
  const secretFiles = objectData(resources, "Secret", SECRET_NAME);
  const databaseFile = parse(secretFiles[FILE_NAMES.database] ?? "") as {
    database: { args: Record<string, unknown> };
  };
  const stackDatabaseArgs = { ...databaseFile.database.args };
  const user = String(stackDatabaseArgs.user);
  const name = String(stackDatabaseArgs.dbname);
  if (!options.existingDatabase) {
    await postgres.createRole(user, String(stackDatabaseArgs.password));
    await postgres.createDatabase(name, user);
  }

  const { stackAppserviceIpRanges, harnessRegistration } = registrationOnHarness(secretFiles);

  const configFiles = [FILE_NAMES.homeserver, FILE_NAMES.database];
  const hostPorts = new Map<number, number>();
  const synapse = await startSynapse({
    chroot,
    configFiles,
    files: async (paths) => {
      const homeserver = repointPaths(parse(publicFiles[FILE_NAMES.homeserver] ?? ""), paths.dataDir) as {
        listeners: { type: string; port: number; bind_addresses: string[] }[];
      };
      // The in-cluster client listener and the metrics one on the harness's ports; any other (the public one) on
      // a free port of its own.
      for (const listener of homeserver.listeners) {
        const host =
          listener.type === "metrics"
            ? paths.metricsPort
            : listener.port === CLIENT_PORT
              ? paths.port
              : await freePort();
        hostPorts.set(listener.port, host);
        listener.port = host;
        listener.bind_addresses = ["127.0.0.1"];
      }
      if (options.extraListeners)
        homeserver.listeners.push(
          ...((await options.extraListeners({ free: freePort })) as (typeof homeserver.listeners)[number][]),
        );
      // The harness's Postgres has no TLS: drop the prod-only sslmode/sslrootcert, keep everything else.
      const { sslmode: _sslmode, sslrootcert: _sslrootcert, ...args } = stackDatabaseArgs;
      const database = {
        database: { ...databaseFile.database, args: { ...args, host: postgres.host, port: postgres.port } },
      };
      return {
        ...publicFiles,
        ...secretFiles,
        [FILE_NAMES.homeserver]: stringify({ ...homeserver, pid_file: `${paths.dataDir}/homeserver.pid` }),
        [FILE_NAMES.database]: stringify(database),
        [FILE_NAMES.appserviceRegistration]: harnessRegistration,
      };
    },
  });
  const configCheck = await checkSynapseConfig(
    chroot,
    configFiles.map((file) => `${synapse.paths.dataDir}/${file}`),
  );
  return {
    synapse,
    configCheck,
    stackDatabaseArgs,
    stackAppserviceIpRanges,
    hostPort: (podPort) => {
      const port = hostPorts.get(podPort);
      if (port === undefined) throw new Error(`the stack has no listener on port ${podPort}`);
      return port;
    },
  };
}

/** Registers the service user with the as_token (idempotent) and returns whoami's user_id for it. */
export async function whoamiAsServiceUser(
  baseUrl: string,
  asToken: string,
  serviceUser: string,
  localpart: string,
) {
  const headers = { authorization: `Bearer ${asToken}`, "content-type": "application/json" };
  const register = await fetch(`${baseUrl}/_matrix/client/v3/register`, {
    method: "POST",
    headers,
    body: JSON.stringify({ type: "m.login.application_service", username: localpart }),
  });
  if (!register.ok && register.status !== 400) throw new Error(`register answered HTTP ${register.status}`);
  const whoami = await fetch(
    `${baseUrl}/_matrix/client/v3/account/whoami?user_id=${encodeURIComponent(serviceUser)}`,
    { headers },
  );
  return { status: whoami.status, body: (await whoami.json()) as { user_id?: string } };
}

export interface RenderedWorkers {
  cluster: RunningSynapseCluster;
  /** Synapse's config check of every rendered process (main and each worker file), by instance. */
  configChecks: Record<string, { ok: boolean; output: string }>;
}

/**
 * Worker mode from a stack's rendered objects (the Synapse Secret and ConfigMap, the workers' and the proxy's
 * ConfigMaps), re-pointed at the harness: every path at the data dir, every listener and `instance_map` entry at
 * loopback ports, Redis at the harness's (plain TCP: its TLS and CA are dropped, like the database's sslmode), the
 * proxy's servers at the processes that run. `run` picks which workers start (a scaled-down StatefulSet); every
 * rendered worker file is config-checked either way.
 */
export async function startRenderedWorkers(
  chroot: SynapseChroot,
  postgres: PostgresServer,
  resources: readonly RecordedResource[],
  run: readonly string[],
): Promise<RenderedWorkers> {
  const publicFiles = objectData(resources, "ConfigMap", CONFIG_MAP_NAME);
  const workerFiles = objectData(resources, "ConfigMap", WORKERS_CONFIG_MAP);
  const proxyFiles = objectData(resources, "ConfigMap", PROXY_CONFIG_MAP);
  const secretFiles = objectData(resources, "Secret", SECRET_NAME);
  const databaseFile = parse(secretFiles[FILE_NAMES.database] ?? "") as {
    database: { args: Record<string, unknown> };
  };
  const databaseArgs = databaseFile.database.args;
  await postgres.createRole(String(databaseArgs.user), String(databaseArgs.password));
  await postgres.createDatabase(String(databaseArgs.dbname), String(databaseArgs.user));
  const instanceOf = (file: string) => file.replace(/^worker-/, "").replace(/\.yaml$/, "");
  const allWorkers = Object.keys(workerFiles).map(instanceOf);
  for (const instance of run)
    if (!allWorkers.includes(instance)) throw new Error(`no rendered worker file for ${instance}`);

  const cluster = await startSynapseCluster({
    chroot,
    instances: allWorkers,
    redisPassword: secretFiles[FILE_NAMES.redisPassword] ?? "",
    startTimeoutMs: 240_000,
    spec: (layout) => {
      const dir = layout.dataDir;
      const repoint = (value: unknown) => repointPaths(value, dir);
      type Listener = {
        type: string;
        port: number;
        bind_addresses?: string[];
        resources?: { names: string[] }[];
      };
      const listenersAt = (listeners: Listener[], instance: string) => {
        const ports = layout.ports(instance);
        for (const listener of listeners) {
          const names = listener.resources?.flatMap((r) => r.names) ?? [];
          listener.port =
            listener.type === "metrics"
              ? ports.metrics
              : names.includes("replication")
                ? ports.replication
                : ports.client;
          listener.bind_addresses = ["127.0.0.1"];
        }
      };
      const homeserver = repoint(parse(publicFiles[FILE_NAMES.homeserver] ?? "")) as Record<
        string,
        unknown
      > & {
        listeners: Listener[];
        instance_map: Record<string, { host: string; port: number }>;
      };
      listenersAt(homeserver.listeners, "main");
      for (const [instance, location] of Object.entries(homeserver.instance_map)) {
        location.host = "127.0.0.1";
        location.port = layout.ports(instance).replication;
      }
      const redisFile = parse(secretFiles[FILE_NAMES.redis] ?? "") as { redis: Record<string, unknown> };
      const { use_tls: _tls, ca_file: _ca, ...redis } = redisFile.redis;
      const { sslmode: _sslmode, sslrootcert: _sslrootcert, ...args } = databaseArgs;
      const files: Record<string, string> = {
        ...secretFiles,
        ...publicFiles,
        [FILE_NAMES.appserviceRegistration]: registrationOnHarness(secretFiles).harnessRegistration,
        [FILE_NAMES.homeserver]: stringify({ ...homeserver, pid_file: `${dir}/homeserver.pid` }),
        [FILE_NAMES.database]: stringify({
          database: { ...databaseFile.database, args: { ...args, host: postgres.host, port: postgres.port } },
        }),
        [FILE_NAMES.redis]: stringify({
          redis: { ...(repoint(redis) as object), host: layout.redis.host, port: layout.redis.port },
        }),
      };
      for (const [name, content] of Object.entries(workerFiles)) {
        const worker = repoint(parse(content)) as { worker_listeners: Listener[] };
        listenersAt(worker.worker_listeners, instanceOf(name));
        files[`workers/${name}`] = stringify(worker);
      }
      // The proxy: binds and servers at loopback, only the processes that run (the others are not in DNS yet).
      const proxyPorts: Record<string, number> = {
        [String(PROXY_POD_PORTS.internal)]: layout.proxyPorts.internal,
        [String(PROXY_POD_PORTS.public)]: layout.proxyPorts.public,
        [String(PROXY_POD_PORTS.stats)]: layout.proxyPorts.stats,
      };
      const running = new Set(["main", ...run]);
      const proxyConfig = (proxyFiles[HAPROXY_CONFIG_FILE] ?? "")
        .replace(/\nresolvers kubedns\n( {2}.*\n)*/, "\n")
        .replace(/ bind :(\d+)/g, (_, port: string) => ` bind 127.0.0.1:${proxyPorts[port]}`)
        .replaceAll(`${HAPROXY_CONFIG_DIR}/`, `${layout.hostDataDir}/proxy/`)
        .split("\n")
        .flatMap((line) => {
          const server = /^ {2}server (\S+) \S+ .*$/.exec(line);
          if (!server) return [line];
          const instance = server[1] as string;
          return running.has(instance)
            ? [`  server ${instance} 127.0.0.1:${layout.ports(instance).client} check`]
            : [];
        })
        .join("\n");
      files[`proxy/${HAPROXY_CONFIG_FILE}`] = proxyConfig;
      files[`proxy/${ROUTES_MAP_FILE}`] = proxyFiles[ROUTES_MAP_FILE] ?? "";
      const configOf = (instance: string) => [
        FILE_NAMES.homeserver,
        FILE_NAMES.database,
        FILE_NAMES.redis,
        ...(instance === "main" ? [] : [`workers/${workerFileName(instance)}`]),
      ];
      return {
        files,
        processes: ["main", ...run].map((instance) => {
          const worker =
            instance === "main"
              ? undefined
              : (parse(files[`workers/${workerFileName(instance)}`] ?? "") as { worker_app: string });
          return {
            instance,
            app: worker?.worker_app ?? "synapse.app.homeserver",
            configFiles: configOf(instance),
            healthPort: instance.includes("event-persister")
              ? layout.ports(instance).replication
              : layout.ports(instance).client,
          };
        }),
        proxyConfigFile: `proxy/${HAPROXY_CONFIG_FILE}`,
      };
    },
  });
  const configChecks: Record<string, { ok: boolean; output: string }> = {};
  const shared = [FILE_NAMES.homeserver, FILE_NAMES.database, FILE_NAMES.redis].map(
    (f) => `${cluster.paths.dataDir}/${f}`,
  );
  for (const instance of ["main", ...allWorkers])
    configChecks[instance] = await checkSynapseConfig(
      chroot,
      [
        ...shared,
        ...(instance === "main" ? [] : [`${cluster.paths.dataDir}/workers/${workerFileName(instance)}`]),
      ],
      { pythonPath: `${cluster.paths.dataDir}/${PYTHON_DIR}` },
    );
  return { cluster, configChecks };
}
