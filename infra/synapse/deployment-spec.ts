// Names and the pure parts of Synapse's Kubernetes objects (pod spec, probes, mounts), shared by the component,
// the ops builders (Service port names, labels) and the tests. No Pulumi.
import { createHash } from "node:crypto";
// Type-only: the spec is a plain object at run time (the tests validate it with kubernetes-models).
import type { types } from "@pulumi/kubernetes";
import { containerResources, type ResourceSettings } from "../config/schema.ts";
import { nonRootContainerSecurity } from "../network/policies.ts";
import type { HomeserverInput } from "./homeserver.ts";
import { FILE_NAMES } from "./homeserver.ts";
import { CLIENT_PORT, CLIENT_PORT_NAME, METRICS_PORT, METRICS_PORT_NAME } from "./listeners.ts";
import { SYNAPSE_IMAGE } from "./version.ts";
import {
  GENERIC_WORKER,
  MAIN_APP,
  MEDIA_WORKER,
  POD_PORTS,
  type WorkerGroup,
  workerFileName,
} from "./workers.ts";

export const SYNAPSE_NAME = "matrix-synapse";
export const SYNAPSE_LABELS = { app: SYNAPSE_NAME } as const;

// The listeners' ports and names live with the layout that decides them (listeners.ts).
export { CLIENT_PORT, CLIENT_PORT_NAME, METRICS_PORT, METRICS_PORT_NAME } from "./listeners.ts";
export const DATA_PVC_NAME = "matrix-synapse-data";
export const CONFIG_MAP_NAME = "matrix-synapse-config";
export const SECRET_NAME = "matrix-synapse-secrets";
/** The uid/gid Synapse's image is built for. */
export const SYNAPSE_UID = 991;

/** Where things are mounted in the pod. */
export const MOUNTS = { config: "/config", secrets: "/secrets", data: "/data", tmp: "/tmp" } as const;
/** The database server's CA certificate (prod, `verify-ca`), a key of the Secret. */
export const DATABASE_CA_FILE = "database-ca.pem";

/** The file paths homeserver.yaml names inside the pod. */
export const POD_FILE_PATHS: HomeserverInput["files"] = {
  signingKey: `${MOUNTS.secrets}/${FILE_NAMES.signingKey}`,
  registrationSharedSecret: `${MOUNTS.secrets}/${FILE_NAMES.registrationSharedSecret}`,
  macaroonSecretKey: `${MOUNTS.secrets}/${FILE_NAMES.macaroonSecretKey}`,
  formSecret: `${MOUNTS.secrets}/${FILE_NAMES.formSecret}`,
  appserviceRegistration: `${MOUNTS.secrets}/${FILE_NAMES.appserviceRegistration}`,
  logConfig: `${MOUNTS.config}/${FILE_NAMES.logConfig}`,
};
/** The media store's directory inside the PVC: the official image's default, so a volume it wrote keeps its media. */
export const MEDIA_STORE_SUBPATH = "media_store";
export const POD_MEDIA_STORE = `${MOUNTS.data}/${MEDIA_STORE_SUBPATH}`;

/** `--config-path` files, in order: the later (secret) one adds the `database` block. */
export const POD_CONFIG_FILES = [
  `${MOUNTS.config}/${FILE_NAMES.homeserver}`,
  `${MOUNTS.secrets}/${FILE_NAMES.database}`,
];

/** A digest of every config and secret file: as a pod annotation it rolls the pod when any of them changes. */
export function configChecksum(files: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(files).sort()) hash.update(`${name}\0${files[name]}\0`);
  return hash.digest("hex");
}

export interface PodSpecInput {
  /** Scheduling priority (infra/network's PriorityClass), where the stack declares one. */
  priorityClassName?: string | undefined;
  /** The monolith's container ports, one per listener (listeners.ts); a worker's come from its process. */
  ports?: readonly { name: string; port: number }[];
  resources: ResourceSettings;
  /** Worker mode: which Synapse process the pod runs (absent: the monolith). */
  process?: SynapseProcessSpec | undefined;
}

/** One process of Synapse in worker mode, as its pod runs it. */
export interface SynapseProcessSpec {
  /** `synapse.app.homeserver` (the main process) or the worker's app. */
  readonly app: string;
  /** The listeners the pod exposes, by port name. */
  readonly ports: readonly { readonly name: string; readonly port: number }[];
  /** The port whose `/health` the probes read. */
  readonly healthPort: string;
  /** The media volume: only the media worker holds it (ReadWriteOnce). */
  readonly mountsMedia: boolean;
  /** A worker: its own config file from the workers' ConfigMap, chosen by the pod's name (the worker's name). */
  readonly workerFile: boolean;
}

/** Worker mode's extra names: the Secret-side `redis` block, the workers' ConfigMap and its mount. */
export const WORKERS_CONFIG_MAP = "matrix-synapse-workers";
export const WORKER_MOUNT = "/workers";
export const REPLICATION_PORT = POD_PORTS.replication;
export const REPLICATION_PORT_NAME = "replication";
/** Every Synapse pod of worker mode carries this label, valued with its group (`main`, `sync`, ...). */
export const SYNAPSE_PROCESS_LABEL = "nova.chat/synapse-process";

/** The pod template's spec (plain object, validated against the Kubernetes schema in tests). */
export function synapsePodSpec(input: PodSpecInput): types.input.core.v1.PodSpec {
  const containerSecurity = nonRootContainerSecurity(SYNAPSE_UID);
  const process = input.process;
  // Worker mode: the `redis` block, then the worker's own file, named after the pod ($(POD_NAME) is expanded by
  // Kubernetes from the env below: a StatefulSet pod's name is the worker's name).
  const configFiles = process
    ? [
        ...POD_CONFIG_FILES,
        `${MOUNTS.secrets}/${FILE_NAMES.redis}`,
        ...(process.workerFile ? [`${WORKER_MOUNT}/${workerFileName("$(POD_NAME)")}`] : []),
      ]
    : POD_CONFIG_FILES;
  const configArgs = configFiles.flatMap((file) => ["--config-path", file]);
  const withMedia = process ? process.mountsMedia : true;
  const mounts = [
    { name: "config", mountPath: MOUNTS.config, readOnly: true },
    { name: "secrets", mountPath: MOUNTS.secrets, readOnly: true },
    ...(withMedia ? [{ name: "data", mountPath: MOUNTS.data }] : []),
    ...(process?.workerFile ? [{ name: "workers", mountPath: WORKER_MOUNT, readOnly: true }] : []),
    { name: "tmp", mountPath: MOUNTS.tmp },
  ];
  const env = [
    { name: "PYTHONDONTWRITEBYTECODE", value: "1" },
    ...(process?.workerFile
      ? [{ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }]
      : []),
  ];
  const listenerPorts = process ? process.ports : input.ports;
  if (!listenerPorts) throw new Error("synapsePodSpec: the monolith's ports (its listeners) are required");
  const ports = listenerPorts.map(({ name, port }) => ({ name, containerPort: port, protocol: "TCP" }));
  const health = (extra: Record<string, number>) => ({
    httpGet: { path: "/health", port: process?.healthPort ?? CLIENT_PORT_NAME },
    ...extra,
  });
  return {
    ...(input.priorityClassName === undefined ? {} : { priorityClassName: input.priorityClassName }),
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SYNAPSE_UID,
      runAsGroup: SYNAPSE_UID,
      fsGroup: SYNAPSE_UID,
      fsGroupChangePolicy: "OnRootMismatch",
      seccompProfile: { type: "RuntimeDefault" },
    },
    // Synapse's own config check first: a bad option is a clear init failure naming it, not a crash loop.
    initContainers: [
      {
        name: "check-config",
        image: SYNAPSE_IMAGE,
        command: ["python", "-m", "synapse.config", ...configFiles.flatMap((file) => ["-c", file])],
        env,
        securityContext: containerSecurity,
        resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "256Mi" } },
        volumeMounts: mounts,
      },
    ],
    containers: [
      {
        name: "synapse",
        image: SYNAPSE_IMAGE,
        // Not the image's start.py (it wants root to chown /data): Synapse itself, on our config files.
        command: ["python", "-m", process?.app ?? "synapse.app.homeserver", ...configArgs],
        env,
        ports,
        // Schema migrations on a new version can take minutes: the startup probe allows 10.
        startupProbe: health({ periodSeconds: 10, failureThreshold: 60, timeoutSeconds: 5 }),
        readinessProbe: health({ periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 }),
        livenessProbe: health({ periodSeconds: 20, failureThreshold: 6, timeoutSeconds: 10 }),
        resources: containerResources(input.resources),
        securityContext: containerSecurity,
        volumeMounts: mounts,
      },
    ],
    volumes: [
      { name: "config", configMap: { name: CONFIG_MAP_NAME, defaultMode: 0o444 } },
      // Readable by the fsGroup only.
      { name: "secrets", secret: { secretName: SECRET_NAME, defaultMode: 0o440 } },
      ...(withMedia ? [{ name: "data", persistentVolumeClaim: { claimName: DATA_PVC_NAME } }] : []),
      ...(process?.workerFile
        ? [{ name: "workers", configMap: { name: WORKERS_CONFIG_MAP, defaultMode: 0o444 } }]
        : []),
      { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
    ],
  };
}

/** What each Synapse process of worker mode exposes and how it is probed (listeners from workers.ts). */
export function processSpec(group: WorkerGroup | "main"): SynapseProcessSpec {
  const http = { name: CLIENT_PORT_NAME, port: CLIENT_PORT };
  const replication = { name: REPLICATION_PORT_NAME, port: REPLICATION_PORT };
  const metrics = { name: METRICS_PORT_NAME, port: METRICS_PORT };
  switch (group) {
    case "main":
      return {
        app: MAIN_APP,
        ports: [http, replication, metrics],
        healthPort: CLIENT_PORT_NAME,
        mountsMedia: false,
        workerFile: false,
      };
    case "event-persister":
      // No client listener: /health is answered on the replication listener.
      return {
        app: GENERIC_WORKER,
        ports: [replication, metrics],
        healthPort: REPLICATION_PORT_NAME,
        mountsMedia: false,
        workerFile: true,
      };
    case "media":
      return {
        app: MEDIA_WORKER,
        ports: [http, metrics],
        healthPort: CLIENT_PORT_NAME,
        mountsMedia: true,
        workerFile: true,
      };
    default:
      return {
        app: GENERIC_WORKER,
        ports: [http, metrics],
        healthPort: CLIENT_PORT_NAME,
        mountsMedia: false,
        workerFile: true,
      };
  }
}
