// The Pulumi program: Nova's Synapse for one stack (staging or prod), read top to bottom like the architecture.
//   config -> the stack's cluster -> generated secrets -> namespace -> database (+ setup Job) -> network isolation
//   -> Synapse -> (prod) public Ingress -> realtime-chat-service's ConfigMap and Secret -> monitoring,
//   backups, the bridge -> stack outputs

import type { StackOutputs } from "@nova-matrix/contracts";
import { DEVICE_NAME, serviceUserId } from "@nova-matrix/contracts";
import * as pulumi from "@pulumi/pulumi";
import { Backup } from "./backup/index.ts";
import { BACKUP_JOB_PODS, plannedCronJobs } from "./backup/plan.ts";
import { bridgeDatabaseToDump, synapseDatabaseToDump, synapseMedia } from "./backup/wiring.ts";
import { BridgeDeploy } from "./bridge-deploy/index.ts";
import {
  BRIDGE_DB_SETUP_LABELS,
  BRIDGE_LABELS,
  BRIDGE_METRICS_PORT,
  BRIDGE_PORT,
} from "./bridge-deploy/spec.ts";
import {
  CHAT_SERVICE_CONFIG_MAP,
  CHAT_SERVICE_TOKEN_SECRET,
  ChatServiceWiring,
} from "./chat-service/index.ts";
import { clusterProvider } from "./cluster/index.ts";
import { loadConfig } from "./config/load.ts";
import type { WorkerSettings } from "./config/schema.ts";
import { SynapseDatabase } from "./database/index.ts";
import { DATABASE_SETUP_LABELS } from "./database/setup-spec.ts";
import { PublicIngress } from "./ingress/index.ts";
import { publicBaseUrl as publicUrlOf, serviceAnnotationsForIngress } from "./ingress/spec.ts";
import { AppNamespace } from "./namespace/index.ts";
import { GCLB_RANGES, Network, SYNAPSE_PRIORITY_CLASS } from "./network/index.ts";
import {
  IN_CLUSTER_REDIS,
  PROXY_ENDPOINTS,
  SYNAPSE_ENDPOINTS,
  synapseWorkerEndpoints,
} from "./network/wiring.ts";
import { Observability } from "./observability/index.ts";
import { backupAlertJobs, SYNAPSE_SCRAPE, synapseWorkersScrape } from "./observability/wiring.ts";
import { SynapseRedis } from "./redis/index.ts";
import { GeneratedSecrets } from "./secrets/index.ts";
import { Synapse, type SynapseWorkerArgs } from "./synapse/component.ts";
import { PUBLIC_PORT, PUBLIC_PORT_NAME, synapseListeners } from "./synapse/listeners.ts";
import { PROXY_POD_PORTS } from "./synapse/workers.ts";
import { PUBLIC_SERVICE } from "./synapse/workers-component.ts";

const config = loadConfig();

// Kubernetes objects go to the stack's own cluster only (the program stops when the kube context points elsewhere).
// Every component gets this provider: pass `onCluster` to each new one (infra/cluster/provider.test.ts checks).
const onCluster = { providers: [clusterProvider("cluster", config.cluster, config.adoptExisting)] };

const workerSettings = config.synapse.workers?.enabled ? config.synapse.workers : undefined;

const secrets = new GeneratedSecrets(
  "matrix",
  {
    rotation: config.rotation,
    databaseAdminPassword: config.database.kind === "cloudsql",
    replicationSecret: workerSettings !== undefined,
  },
  onCluster,
);

const appNamespace = new AppNamespace(
  "matrix",
  { name: config.namespace, create: config.createNamespace },
  onCluster,
);

const database = new SynapseDatabase(
  "synapse-db",
  {
    namespace: appNamespace.name,
    config: config.database,
    password: secrets.databasePassword,
    ...(secrets.databaseAdminPassword ? { adminPassword: secrets.databaseAdminPassword } : {}),
    takeover: config.takeover,
  },
  onCluster,
);

// Redis between Synapse's processes (worker mode): Memorystore in prod, one pod in the cluster in staging.
const redis = workerSettings
  ? new SynapseRedis(
      "synapse-redis",
      {
        namespace: appNamespace.name,
        settings: workerSettings.redis,
        rotation: config.rotation.redisPassword,
      },
      onCluster,
    )
  : undefined;

// What the backup job dumps: Synapse's and the bridge's databases on an in-cluster server; nothing on Cloud SQL, whose
// automated backups and point-in-time recovery hold both (the backups' NetworkPolicy follows: no dump, no database).
const databasesToDump =
  config.database.kind === "in-cluster"
    ? [
        synapseDatabaseToDump({ ...config.database, tls: false }),
        ...(config.bridge ? [bridgeDatabaseToDump({ ...config.database, ...config.bridge.database })] : []),
      ]
    : [];

// The backup CronJobs (the dumps only when there are databases to dump): the Backup component runs them, the
// backup alerts watch them.
const backupCronJobs = config.backup
  ? plannedCronJobs({ ...config.backup, dumps: databasesToDump.length > 0 })
  : [];

// Synapse's listeners: in-cluster callers on one path, the public Ingress on its own (the proxy's public listener in
// worker mode, a listener of its own on one process), so the appservice token, accepted only from the pod ranges that
// the NetworkPolicies below are written for, is useless from outside (synapse/listeners.ts).
const listeners = synapseListeners({
  publicIngress: config.ingress !== undefined,
  workers: workerSettings !== undefined,
});
const publicListener = listeners.find((listener) => listener.reachedFrom === "load-balancer");
const loadBalancerRanges = publicListener ? [...GCLB_RANGES] : [];

// Isolation: a NetworkPolicy per workload of this stack, selecting only its pods (staging's namespace is shared): who
// may reach Synapse (through the proxy in worker mode) and the bridge, and the only connections they and the jobs may
// open (their database, each other, Redis and DNS). Declared before Synapse: its pod names the PriorityClass.
const isolation = new Network(
  "isolation",
  {
    namespace: appNamespace.name,
    labels: { "app.kubernetes.io/part-of": "nova-matrix" },
    synapse: {
      ...SYNAPSE_ENDPOINTS,
      ...(publicListener && !workerSettings ? { publicPort: publicListener.port } : {}),
      clients: [config.network.chatServiceSelector, ...(config.bridge ? [BRIDGE_LABELS] : [])],
    },
    loadBalancerRanges,
    scrapers: config.network.scrapers,
    workers:
      workerSettings && redis
        ? {
            ...synapseWorkerEndpoints(),
            proxy: PROXY_ENDPOINTS,
            redis:
              workerSettings.redis.kind === "in-cluster"
                ? IN_CLUSTER_REDIS
                : { address: redis.host, port: redis.port },
          }
        : undefined,
    ...(config.bridge
      ? {
          bridge: {
            podSelector: BRIDGE_LABELS,
            port: BRIDGE_PORT,
            metricsPort: BRIDGE_METRICS_PORT,
            clients: [config.network.chatServiceSelector],
          },
        }
      : {}),
    database:
      config.database.kind === "in-cluster"
        ? { pods: config.network.postgresSelector ?? {}, port: config.database.port }
        : { address: database.host, port: database.port },
    databaseJobs: { key: "app", values: [DATABASE_SETUP_LABELS.app, BRIDGE_DB_SETUP_LABELS.app] },
    ...(config.backup
      ? {
          backupJobs: {
            ...(databasesToDump.length > 0 ? { dumps: BACKUP_JOB_PODS.dumps } : {}),
            media: BACKUP_JOB_PODS.media,
          },
        }
      : {}),
  },
  onCluster,
);

const synapse = new Synapse(
  "synapse",
  {
    namespace: appNamespace.name,
    serverName: config.serverName,
    publicBaseUrl: config.ingress ? publicUrlOf(config.ingress.host) : undefined,
    settings: config.synapse,
    database: {
      host: database.host,
      port: database.port,
      name: database.name,
      user: database.user,
      password: secrets.databasePassword,
      sslMode: database.sslMode,
      caCert: database.caCert,
    },
    secrets,
    listeners,
    appserviceIpRanges: config.network.podRanges,
    loadBalancerRanges,
    ...(config.ingress ? { serviceAnnotations: serviceAnnotationsForIngress() } : {}),
    priorityClassName: SYNAPSE_PRIORITY_CLASS,
    takeover: config.takeover,
    workers: workerSettings && redis ? workersOf(workerSettings, redis) : undefined,
  },
  { ...onCluster, dependsOn: [database.setupJob, isolation] },
);

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} was not generated`);
  return value;
}

// Synapse in worker mode (nova-matrix:synapse.workers): Redis's endpoint, the replication secret.
function workersOf(settings: WorkerSettings, redis: SynapseRedis): SynapseWorkerArgs {
  return {
    settings,
    namespaceName: config.namespace,
    redis: {
      host: redis.host,
      port: redis.port,
      tls: redis.tls,
      password: redis.password,
      caCert: redis.caCert,
    },
    replicationSecret: required(secrets.replicationSecret, "the replication secret"),
  };
}

const ingress = config.ingress
  ? new PublicIngress(
      "synapse-public",
      {
        namespace: appNamespace.name,
        host: config.ingress.host,
        // The load balancer's own listener, never the in-cluster one: the proxy's public listener
        // (matrix-synapse-public) in worker mode, Synapse's `public` listener on one process.
        service: workerSettings
          ? { name: PUBLIC_SERVICE, portName: PUBLIC_PORT_NAME, port: PROXY_POD_PORTS.public }
          : { name: synapse.serviceName, portName: PUBLIC_PORT_NAME, port: PUBLIC_PORT },
        dnsManagedZone: config.ingress.dnsManagedZone,
      },
      { ...onCluster, dependsOn: [synapse] },
    )
  : undefined;

const serviceUserIdOfStack = serviceUserId(config.serverName);
const chatService = new ChatServiceWiring(
  "realtime-chat-service",
  {
    namespace: appNamespace.name,
    config: {
      enabled: config.matrixEnabled,
      homeserverUrl: synapse.clientUrl,
      serviceUser: serviceUserIdOfStack,
      deviceName: DEVICE_NAME,
      serverName: config.serverName,
    },
    accessToken: secrets.asToken,
  },
  onCluster,
);

if (config.observability) {
  const monitoring = config.observability;
  new Observability(
    "monitoring",
    {
      namespace: appNamespace.name,
      labels: { "app.kubernetes.io/part-of": "nova-matrix" },
      scrapeStyle: monitoring.scrapeStyle,
      scrapeInterval: monitoring.scrapeInterval,
      synapse: SYNAPSE_SCRAPE,
      ...(workerSettings ? { synapseWorkers: synapseWorkersScrape(workerSettings) } : {}),
      bridge: monitoring.bridge,
      backups: backupAlertJobs(backupCronJobs),
      runbookBaseUrl: monitoring.runbookBaseUrl,
      grafanaDashboard: monitoring.grafanaDashboard,
    },
    { ...onCluster, dependsOn: [synapse] },
  );
}

// Backups to the stack's GCS bucket: the media archive in both stacks; dumps of Synapse's and the bridge's databases
// on an in-cluster server (on Cloud SQL the instance's automated backups and point-in-time recovery hold both).
if (config.backup) {
  const { backup } = config;
  new Backup(
    "backup",
    {
      project: backup.project,
      namespace: appNamespace.name,
      labels: { "app.kubernetes.io/part-of": "nova-matrix" },
      bucket: backup.bucket,
      databases: databasesToDump,
      media: synapseMedia(workerSettings !== undefined),
      ...(backup.databaseSchedule ? { databaseSchedule: backup.databaseSchedule } : {}),
      ...(backup.mediaSchedule ? { mediaSchedule: backup.mediaSchedule } : {}),
    },
    { ...onCluster, dependsOn: [database.setupJob, synapse] },
  );
}

// The bridge service next to Synapse, reading the same MATRIX_* settings as realtime-chat-service.
const bridge = config.bridge
  ? new BridgeDeploy(
      "bridge",
      {
        namespace: appNamespace.name,
        config: config.bridge,
        database: {
          host: database.host,
          port: database.port,
          admin:
            config.database.kind === "in-cluster"
              ? { kind: "in-cluster", secret: config.database.adminSecret }
              : { kind: "cloudsql" },
        },
        chatServiceConfigMap: CHAT_SERVICE_CONFIG_MAP,
        chatServiceTokenSecret: CHAT_SERVICE_TOKEN_SECRET,
        maxUploadSize: config.synapse.maxUploadSize,
      },
      { ...onCluster, dependsOn: [database.setupJob, synapse, chatService] },
    )
  : undefined;

// Stack outputs (@nova-matrix/contracts has their schema). The access token is the appservice's as_token, a secret.
const outputs = {
  homeserverUrl: synapse.clientUrl,
  serverName: config.serverName,
  serviceUser: serviceUserIdOfStack,
  deviceName: DEVICE_NAME,
  matrixEnabled: config.matrixEnabled,
  accessToken: pulumi.secret(secrets.asToken),
  namespace: appNamespace.name,
  publicBaseUrl: ingress?.publicBaseUrl,
  bridgeUrl: bridge?.url,
  bridgeApiToken: bridge ? pulumi.secret(bridge.apiToken) : undefined,
} satisfies Record<keyof StackOutputs, unknown>;

export const homeserverUrl = outputs.homeserverUrl;
export const serverName = outputs.serverName;
export const serviceUser = outputs.serviceUser;
export const deviceName = outputs.deviceName;
export const matrixEnabled = outputs.matrixEnabled;
export const accessToken = outputs.accessToken;
export const namespace = outputs.namespace;
export const publicBaseUrl = outputs.publicBaseUrl;
export const bridgeUrl = outputs.bridgeUrl;
export const bridgeApiToken = outputs.bridgeApiToken;
