// The deployed Synapse config, pointed at the dev harness (loopback ports, the harness's data dir and Postgres).
// Used by the bridge's tests and `npm run local`. Pure apart from node:crypto for fresh secrets.
import { randomBytes } from "node:crypto";
import { APPSERVICE_ID } from "@nova-matrix/contracts";
import {
  appserviceRegistration,
  databaseConfig,
  FILE_NAMES,
  homeserverConfig,
  logConfig,
  type SynapseFilePaths,
  signingKeyFile,
  toYaml,
} from "./homeserver.ts";
import { synapseListeners } from "./listeners.ts";
import {
  configPathsOf,
  type InstancePorts,
  type ProxyPorts,
  redisConfig,
  synapseWorkerPlan,
  type WorkerCounts,
  workerInstances,
} from "./workers.ts";

/** The appservice token's whitelist on a developer's machine: the harness binds and connects on 127.0.0.1. */
export const LOCAL_APPSERVICE_IP_RANGES = ["127.0.0.1/32"] as const;

export interface SynapseSecrets {
  registrationSharedSecret: string;
  macaroonSecretKey: string;
  formSecret: string;
  asToken: string;
  hsToken: string;
  /** The full file line `ed25519 a_xxx <unpadded base64>`. */
  signingKey: string;
}

/** Fresh random secrets, in the same formats the Pulumi program generates. */
export function generateLocalSecrets(): SynapseSecrets {
  const token = () => randomBytes(32).toString("base64url");
  return {
    registrationSharedSecret: token(),
    macaroonSecretKey: token(),
    formSecret: token(),
    asToken: token(),
    hsToken: token(),
    signingKey: signingKeyFile(`a_${randomBytes(3).toString("hex")}`, randomBytes(32).toString("base64")),
  };
}

export interface LocalSynapseInput {
  /** The harness's `SynapsePaths`. */
  paths: { dataDir: string; port: number; metricsPort: number };
  serverName: string;
  database: { host: string; port: number; name: string; user: string; password: string };
  secrets: SynapseSecrets;
  /** Shallow-merged over homeserver.yaml (for example, tests that turn rate limits on). */
  homeserverOverrides?: Record<string, unknown>;
  /** Shallow-merged over the appservice registration. */
  registrationOverrides?: Record<string, unknown>;
}

/** The config files to pass to Synapse (`--config-path`, in order), relative to the data dir. */
export const LOCAL_CONFIG_FILES: readonly string[] = [FILE_NAMES.homeserver, FILE_NAMES.database];

/** The homeserver settings the local profile gives Synapse (the monolith's, and the base of worker mode's). */
function localHomeserverInput(input: LocalSynapseInput, dataDir: string) {
  const at = (name: string) => `${dataDir}/${name}`;
  const files: SynapseFilePaths = {
    signingKey: at(FILE_NAMES.signingKey),
    registrationSharedSecret: at(FILE_NAMES.registrationSharedSecret),
    macaroonSecretKey: at(FILE_NAMES.macaroonSecretKey),
    formSecret: at(FILE_NAMES.formSecret),
    appserviceRegistration: at(FILE_NAMES.appserviceRegistration),
    logConfig: at(FILE_NAMES.logConfig),
  };
  return {
    serverName: input.serverName,
    bindAddresses: ["127.0.0.1"],
    listeners: synapseListeners({
      publicIngress: false,
      ports: { client: input.paths.port, metrics: input.paths.metricsPort },
    }),
    mediaStorePath: at("media"),
    maxUploadSize: "50M",
    presence: false,
    files,
  };
}

/** Every file but homeserver.yaml: database, log config, secrets, appservice registration. */
function localCommonFiles(input: LocalSynapseInput): Record<string, string> {
  const registration = {
    ...appserviceRegistration({
      id: APPSERVICE_ID,
      serverName: input.serverName,
      asToken: input.secrets.asToken,
      hsToken: input.secrets.hsToken,
      // Everything local runs on loopback, as the cluster's callers run in its pod ranges.
      ipRangeWhitelist: LOCAL_APPSERVICE_IP_RANGES,
    }),
    ...input.registrationOverrides,
  };
  const { password, ...settings } = input.database;
  return {
    [FILE_NAMES.database]: toYaml(databaseConfig({ ...settings, cpMin: 1, cpMax: 5 }, password)),
    [FILE_NAMES.logConfig]: toYaml(logConfig("INFO")),
    [FILE_NAMES.signingKey]: input.secrets.signingKey,
    [FILE_NAMES.registrationSharedSecret]: input.secrets.registrationSharedSecret,
    [FILE_NAMES.macaroonSecretKey]: input.secrets.macaroonSecretKey,
    [FILE_NAMES.formSecret]: input.secrets.formSecret,
    [FILE_NAMES.appserviceRegistration]: toYaml(registration),
  };
}

/** Files for the harness's `startSynapse({ files, configFiles })`, by path relative to the data dir. */
export function localSynapseFiles(input: LocalSynapseInput): {
  files: Record<string, string>;
  configFiles: string[];
} {
  const { dataDir } = input.paths;
  const homeserver = {
    ...homeserverConfig(localHomeserverInput(input, dataDir)),
    pid_file: `${dataDir}/homeserver.pid`,
    ...input.homeserverOverrides,
  };
  return {
    files: { [FILE_NAMES.homeserver]: toYaml(homeserver), ...localCommonFiles(input) },
    configFiles: [...LOCAL_CONFIG_FILES],
  };
}

/** The worker mode the harness runs: two generic workers (sync, client), one event persister, media, background. */
export const LOCAL_WORKER_COUNTS: WorkerCounts = {
  sync: { replicas: 1, maxReplicas: 1 },
  client: { replicas: 1 },
  eventPersisters: 1,
};

/** The Synapse instances the harness starts in worker mode (besides `main`). */
export const localWorkerInstances = (counts: WorkerCounts = LOCAL_WORKER_COUNTS) =>
  workerInstances(counts).map((w) => w.instance);

export interface LocalWorkersInput extends Omit<LocalSynapseInput, "paths"> {
  counts?: WorkerCounts;
  /** The harness's layout (dev/harness/synapse-workers.ts): data dir, ports per instance, proxy, Redis. */
  layout: {
    dataDir: string;
    hostDataDir: string;
    ports: (instance: string) => InstancePorts;
    proxyPorts: ProxyPorts;
    redis: { host: string; port: number };
  };
  redisPassword: string;
  replicationSecret: string;
}

const WORKER_DIR = "workers";
const PROXY_DIR = "proxy";

/**
 * The cluster's worker plan on loopback: the same shared homeserver.yaml, worker files and proxy config the
 * Kubernetes component renders, with each process on its own ports and Redis and the proxy on the host.
 */
export function localWorkerSpec(input: LocalWorkersInput) {
  const { layout } = input;
  const dataDir = layout.dataDir;
  const mainPorts = layout.ports("main");
  const plan = synapseWorkerPlan({
    homeserver: localHomeserverInput(
      { ...input, paths: { dataDir, port: mainPorts.client, metricsPort: mainPorts.metrics } },
      dataDir,
    ),
    counts: input.counts ?? LOCAL_WORKER_COUNTS,
    placement: {
      kind: "loopback",
      ports: layout.ports,
      proxyPorts: layout.proxyPorts,
      proxyConfigDir: `${layout.hostDataDir}/${PROXY_DIR}`,
    },
    replicationSecretPath: `${dataDir}/${FILE_NAMES.replicationSecret}`,
    workerConfigDir: `${dataDir}/${WORKER_DIR}`,
  });
  const homeserver = {
    ...plan.homeserver,
    pid_file: `${dataDir}/homeserver.pid`,
    ...input.homeserverOverrides,
  };
  const redis = redisConfig({
    host: layout.redis.host,
    port: layout.redis.port,
    tls: false,
    passwordPath: `${dataDir}/${FILE_NAMES.redisPassword}`,
  });
  const files: Record<string, string> = {
    [FILE_NAMES.homeserver]: toYaml(homeserver),
    [FILE_NAMES.redis]: toYaml(redis),
    [FILE_NAMES.redisPassword]: input.redisPassword,
    [FILE_NAMES.replicationSecret]: input.replicationSecret,
    ...localCommonFiles({ ...input, paths: { dataDir, port: 0, metricsPort: 0 } }),
    ...Object.fromEntries(
      Object.entries(plan.proxy).map(([name, content]) => [`${PROXY_DIR}/${name}`, content]),
    ),
  };
  for (const process of plan.processes)
    if (process.workerFile)
      files[`${WORKER_DIR}/${process.workerFile.name}`] = toYaml(process.workerFile.config);
  return {
    plan,
    files,
    processes: plan.processes.map((process) => ({
      instance: process.instance,
      app: process.app,
      configFiles: configPathsOf(process, { config: ".", secrets: ".", workers: WORKER_DIR }).map((path) =>
        path.replace(/^\.\//, ""),
      ),
      healthPort: process.group === "event-persister" ? process.ports.replication : process.ports.client,
    })),
    proxyConfigFile: `${PROXY_DIR}/haproxy.cfg`,
  };
}
