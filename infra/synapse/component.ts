// Synapse on Kubernetes: ConfigMap (no secrets), Secret (secret files and the database config), media PVC,
// a single-writer Deployment and the `matrix-synapse` Service.

import { APPSERVICE_ID } from "@nova-matrix/contracts";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { SynapseSettings, WorkerSettings } from "../config/schema.ts";
import type { GeneratedSecrets } from "../secrets/index.ts";
import {
  CLIENT_PORT,
  CLIENT_PORT_NAME,
  CONFIG_MAP_NAME,
  configChecksum,
  DATA_PVC_NAME,
  DATABASE_CA_FILE,
  MOUNTS,
  POD_FILE_PATHS,
  POD_MEDIA_STORE,
  processSpec,
  SECRET_NAME,
  SYNAPSE_LABELS,
  SYNAPSE_NAME,
  SYNAPSE_PROCESS_LABEL,
  synapsePodSpec,
  WORKER_MOUNT,
} from "./deployment-spec.ts";
import {
  appserviceRegistration,
  databaseConfig,
  FILE_NAMES,
  homeserverConfig,
  logConfig,
  toYaml,
} from "./homeserver.ts";
import { redisConfig, synapseWorkerPlan } from "./workers.ts";
import { PROXY_LABELS, SynapseWorkers } from "./workers-component.ts";

/** Worker mode's inputs: the stack's settings, Redis's endpoint, the replication secret. */
export interface SynapseWorkerArgs {
  settings: WorkerSettings;
  /** The namespace's name (pods and Services are addressed by cluster DNS in the plan). */
  namespaceName: string;
  redis: {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    tls: boolean;
    password: pulumi.Output<string>;
    caCert?: pulumi.Output<string> | undefined;
  };
  replicationSecret: pulumi.Output<string>;
}

import { checkAppserviceIsolation, type SynapseListener, synapseOwn } from "./listeners.ts";
import { TAKEOVER_ANNOTATION } from "./takeover.ts";

export interface SynapseDatabaseConnection {
  host: pulumi.Input<string>;
  port: number;
  name: string;
  user: string;
  password: pulumi.Output<string>;
  sslMode?: string | undefined;
  /** PEM of the server's CA (with `sslMode: verify-ca`). */
  caCert?: pulumi.Output<string> | undefined;
}

export interface SynapseArgs {
  namespace: pulumi.Input<string>;
  serverName: string;
  /** Set where an Ingress publishes the server. */
  publicBaseUrl?: string | undefined;
  settings: SynapseSettings;
  database: SynapseDatabaseConnection;
  secrets: GeneratedSecrets;
  /** From `synapseListeners()`: who reaches which listener (a `public` one where an Ingress publishes the server). */
  listeners: readonly SynapseListener[];
  /** The appservice token's ip_range_whitelist: the cluster's pod ranges. */
  appserviceIpRanges: readonly string[];
  /** The load balancer's source ranges, which must never pass the whitelist (checkAppserviceIsolation). */
  loadBalancerRanges: readonly string[];
  /** Extra Service annotations (GKE's NEG and BackendConfig in prod). */
  serviceAnnotations?: Record<string, string>;
  /** Scheduling priority class (it must exist first: pass its creator in `dependsOn`). */
  priorityClassName?: string | undefined;
  /** Worker mode (absent: one process). */
  workers?: SynapseWorkerArgs | undefined;
  /** The setup Job takes over a hand-made Synapse (takeover.ts): the pod restarts after it, dropping cached tokens. */
  takeover?: boolean;
}

/** GKE's cluster DNS domain (the worker plan names pods by it). */
const CLUSTER_DOMAIN = "cluster.local";

export class Synapse extends pulumi.ComponentResource {
  /** The in-cluster URL, `http://matrix-synapse:8008`. */
  public readonly clientUrl: string;
  public readonly serviceName: string;
  /** The rendered homeserver.yaml (no secrets in it). */
  public readonly homeserverYaml: string;
  public readonly service: k8s.core.v1.Service;
  public readonly deployment: k8s.apps.v1.Deployment;

  constructor(name: string, args: SynapseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:synapse:Synapse", name, {}, opts);
    const { settings } = args;
    checkAppserviceIsolation(args.listeners, {
      appserviceIpRanges: args.appserviceIpRanges,
      loadBalancerRanges: args.loadBalancerRanges,
    });
    this.serviceName = SYNAPSE_NAME;
    this.clientUrl = `http://${SYNAPSE_NAME}:${CLIENT_PORT}`;
    const homeserverInput = {
      serverName: args.serverName,
      publicBaseUrl: args.publicBaseUrl,
      bindAddresses: ["0.0.0.0"],
      listeners: args.listeners,
      mediaStorePath: POD_MEDIA_STORE,
      maxUploadSize: settings.maxUploadSize,
      presence: settings.presence,
      files: POD_FILE_PATHS,
    };
    const workers = args.workers;
    const plan = workers
      ? synapseWorkerPlan({
          homeserver: homeserverInput,
          counts: {
            sync: {
              replicas: workers.settings.sync.replicas,
              maxReplicas: workers.settings.sync.maxReplicas,
            },
            client: { replicas: workers.settings.client.replicas },
            eventPersisters: workers.settings.eventPersisters.count,
          },
          placement: { kind: "cluster", namespace: workers.namespaceName, clusterDomain: CLUSTER_DOMAIN },
          replicationSecretPath: `${MOUNTS.secrets}/${FILE_NAMES.replicationSecret}`,
          workerConfigDir: WORKER_MOUNT,
        })
      : undefined;
    this.homeserverYaml = toYaml(plan ? plan.homeserver : homeserverConfig(homeserverInput));
    const publicFiles = {
      [FILE_NAMES.homeserver]: this.homeserverYaml,
      [FILE_NAMES.logConfig]: toYaml(logConfig(settings.logLevel)),
    };
    const { database, secrets } = args;
    const secretFiles = pulumi
      .output({
        host: database.host,
        password: database.password,
        caCert: database.caCert ?? "",
        signingKey: secrets.signingKey,
        sharedSecret: secrets.registrationSharedSecret,
        macaroon: secrets.macaroonSecretKey,
        form: secrets.formSecret,
        asToken: secrets.asToken,
        hsToken: secrets.hsToken,
        redisHost: workers?.redis.host ?? "",
        redisPort: workers?.redis.port ?? 0,
        redisPassword: workers?.redis.password ?? "",
        redisCa: workers?.redis.caCert ?? "",
        replicationSecret: workers?.replicationSecret ?? "",
      })
      .apply((values) => {
        const { host, password, caCert, signingKey, sharedSecret, macaroon, form, asToken, hsToken } = values;
        const files: Record<string, string> = {
          [FILE_NAMES.database]: toYaml(
            databaseConfig(
              {
                host,
                port: database.port,
                name: database.name,
                user: database.user,
                cpMin: settings.databasePool.min,
                cpMax: settings.databasePool.max,
                ...(database.sslMode === undefined
                  ? {}
                  : { sslMode: database.sslMode, sslRootCertPath: `${MOUNTS.secrets}/${DATABASE_CA_FILE}` }),
              },
              password,
            ),
          ),
          [FILE_NAMES.signingKey]: signingKey,
          [FILE_NAMES.registrationSharedSecret]: sharedSecret,
          [FILE_NAMES.macaroonSecretKey]: macaroon,
          [FILE_NAMES.formSecret]: form,
          [FILE_NAMES.appserviceRegistration]: toYaml(
            appserviceRegistration({
              id: APPSERVICE_ID,
              serverName: args.serverName,
              asToken,
              hsToken,
              ipRangeWhitelist: args.appserviceIpRanges,
            }),
          ),
        };
        if (database.sslMode !== undefined) files[DATABASE_CA_FILE] = caCert;
        if (workers) {
          // Memorystore's host is known only once it exists: the `redis` block lives here, beside the database's.
          files[FILE_NAMES.redis] = toYaml(
            redisConfig({
              host: values.redisHost,
              port: values.redisPort,
              tls: workers.redis.tls,
              passwordPath: `${MOUNTS.secrets}/${FILE_NAMES.redisPassword}`,
              caPath: workers.redis.tls ? `${MOUNTS.secrets}/${FILE_NAMES.redisCa}` : undefined,
            }),
          );
          files[FILE_NAMES.redisPassword] = values.redisPassword;
          files[FILE_NAMES.replicationSecret] = values.replicationSecret;
          if (workers.redis.tls) files[FILE_NAMES.redisCa] = values.redisCa;
        }
        return files;
      });

    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      {
        metadata: { name: CONFIG_MAP_NAME, namespace: args.namespace, labels: SYNAPSE_LABELS },
        data: publicFiles,
      },
      { parent: this },
    );
    const secret = new k8s.core.v1.Secret(
      `${name}-secrets`,
      {
        metadata: { name: SECRET_NAME, namespace: args.namespace, labels: SYNAPSE_LABELS },
        type: "Opaque",
        stringData: pulumi.secret(secretFiles),
      },
      { parent: this },
    );
    const pvc = new k8s.core.v1.PersistentVolumeClaim(
      `${name}-data`,
      {
        metadata: { name: DATA_PVC_NAME, namespace: args.namespace, labels: SYNAPSE_LABELS },
        spec: {
          accessModes: ["ReadWriteOnce"],
          resources: { requests: { storage: settings.storage.size } },
          ...(settings.storage.storageClass === undefined
            ? {}
            : { storageClassName: settings.storage.storageClass }),
        },
      },
      // The media volume is the only copy of every upload since the last backup, and staging's is adopted from the
      // hand-made deployment: neither `pulumi destroy` nor a rename may delete it.
      { parent: this, protect: true, retainOnDelete: true },
    );

    // A digest of every file (public and secret) rolls the pod on any config or secret change.
    const checksum = pulumi.unsecret(
      secretFiles.apply((files) => configChecksum({ ...publicFiles, ...files })),
    );
    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: { name: SYNAPSE_NAME, namespace: args.namespace, labels: SYNAPSE_LABELS },
        spec: {
          // Synapse's main process is a single writer on a ReadWriteOnce volume: exactly one pod, never two at once.
          replicas: 1,
          strategy: { type: "Recreate" },
          selector: { matchLabels: SYNAPSE_LABELS },
          template: {
            metadata: {
              labels: { ...SYNAPSE_LABELS, ...(plan ? { [SYNAPSE_PROCESS_LABEL]: "main" } : {}) },
              annotations: {
                "nova.chat/config-checksum": checksum,
                ...(args.takeover ? { [TAKEOVER_ANNOTATION]: "on" } : {}),
              },
            },
            spec: synapsePodSpec({
              resources: settings.resources,
              priorityClassName: args.priorityClassName,
              // Worker mode: the main process, without the media volume (the media worker holds it).
              process: plan ? processSpec("main") : undefined,
              ports: synapseOwn(args.listeners),
            }),
          },
        },
      },
      { parent: this, dependsOn: [configMap, secret, pvc] },
    );
    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: {
          name: SYNAPSE_NAME,
          namespace: args.namespace,
          labels: SYNAPSE_LABELS,
          ...(args.serviceAnnotations ? { annotations: args.serviceAnnotations } : {}),
        },
        // Worker mode: the in-cluster URL (matrix-synapse:8008) is the proxy's internal listener, which routes
        // each request to its process; the main process has its own Service (workers-component.ts).
        spec: plan
          ? {
              type: "ClusterIP",
              selector: PROXY_LABELS,
              ports: [
                { name: CLIENT_PORT_NAME, port: CLIENT_PORT, targetPort: CLIENT_PORT_NAME, protocol: "TCP" },
              ],
            }
          : {
              type: "ClusterIP",
              selector: SYNAPSE_LABELS,
              // One port per listener, the in-cluster one first (a public one where an Ingress publishes the server).
              ports: synapseOwn(args.listeners).map(({ name, port }) => ({
                name,
                port,
                targetPort: name,
                protocol: "TCP",
              })),
            },
      },
      { parent: this },
    );
    if (plan && workers)
      new SynapseWorkers(
        `${name}-workers`,
        {
          namespace: args.namespace,
          settings: workers.settings,
          plan,
          configChecksum: checksum,
          priorityClassName: args.priorityClassName,
          publicServiceAnnotations: args.serviceAnnotations,
          dependsOn: [configMap, secret, pvc, this.deployment],
        },
        { parent: this },
      );
    this.registerOutputs({ clientUrl: this.clientUrl, service: this.service.metadata.name });
  }
}
