// The bridge's Kubernetes objects as pure functions (validated against the Kubernetes schema in tests): its
// Deployment and Service (its database setup Job is infra/database's, as Synapse's).
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { BridgeDeployConfig } from "../config/bridge.ts";
import { quantityBytes, synapseSizeBytes } from "../config/quantity.ts";
import { containerResources } from "../config/schema.ts";
import { DATABASE_CA_MOUNT, databaseCa } from "../database/setup-spec.ts";

type PodSpec = k8s.types.input.core.v1.PodSpec;

export const BRIDGE_NAME = "nova-bridge";
/** The observability config's default selector for the bridge (infra/config/schema.ts) matches these. */
export const BRIDGE_LABELS = { app: BRIDGE_NAME } as const;
export const BRIDGE_PORT = 8080;
export const BRIDGE_PORT_NAME = "http";
export const BRIDGE_METRICS_PORT = 9100;
export const BRIDGE_METRICS_PORT_NAME = "metrics";
/** The bridge's own Secret: BRIDGE_API_TOKEN, BRIDGE_WS_SIGNING_KEY, BRIDGE_DATABASE_URL. */
export const BRIDGE_SECRET = "nova-bridge-secrets";
export const BRIDGE_DB_SETUP_NAME = "nova-bridge-db-setup";

/**
 * The bridge's V8 heap settings for a container memory limit. Node sizes its heap for the whole machine, so a
 * restart that catches up thousands of rooms grew RSS past 200 MB, mostly garbage not yet collected
 * (docs/performance.md); a small young generation and an old-space cap of a quarter of the limit make V8 collect
 * before it grows. The rest of the limit is for what lives outside the heap: uploads (up to synapse.maxUploadSize each),
 * WebSocket send buffers (up to 4 MB per slow client), code.
 */
export function nodeHeapOptions(memoryLimit: string): string {
  const oldSpaceMiB = Math.max(64, Math.floor(mebibytes(memoryLimit) / 4));
  return `--max-semi-space-size=2 --max-old-space-size=${oldSpaceMiB}`;
}

/** Synapse's upload limit in bytes, for the bridge's own body limit. */
export function uploadBytes(maxUploadSize: string): number {
  const bytes = synapseSizeBytes(maxUploadSize);
  if (Number.isNaN(bytes))
    throw new Error(`synapse.maxUploadSize "${maxUploadSize}": expected a size such as 50M`);
  return bytes;
}

/** A Kubernetes memory quantity (`512Mi`, `1Gi`, `600M`, bytes) in MiB. */
export function mebibytes(quantity: string): number {
  const bytes = quantityBytes(quantity);
  if (Number.isNaN(bytes)) throw new Error(`memory "${quantity}": expected a quantity such as 512Mi or 1Gi`);
  return bytes / 2 ** 20;
}
export const BRIDGE_DB_SETUP_LABELS = { app: BRIDGE_DB_SETUP_NAME } as const;
/** The image's `node` user (bridge/Dockerfile). */
export const BRIDGE_UID = 1000;

/** The in-namespace URL of the bridge's API (the same style as the homeserver URL output). */
export const bridgeUrl = () => `http://${BRIDGE_NAME}:${BRIDGE_PORT}`;

/** BRIDGE_DATABASE_URL (a secret). Cloud SQL: TLS, the server checked against its CA (libpq's verify-ca). */
export function bridgeDatabaseUrl(input: {
  host: string;
  port: number;
  name: string;
  user: string;
  password: string;
  tls: boolean;
}): string {
  const url = new URL(`postgres://${input.host}:${input.port}/${input.name}`);
  url.username = input.user;
  url.password = input.password;
  if (input.tls) {
    url.searchParams.set("sslmode", "verify-ca");
    url.searchParams.set("sslrootcert", `${DATABASE_CA_MOUNT}/ca.pem`);
    // node-postgres otherwise treats verify-ca as verify-full, which a private IP's certificate cannot pass.
    url.searchParams.set("uselibpqcompat", "true");
  }
  return url.toString();
}

export interface BridgePodInput {
  /** `repository@sha256:…` (an Output: unknown in a preview before the image is built). */
  image: pulumi.Input<string>;
  resources: BridgeDeployConfig["resources"];
  /** realtime-chat-service's ConfigMap (MATRIX_*) and token Secret (MATRIX_ACCESS_TOKEN). */
  chatServiceConfigMap: string;
  chatServiceTokenSecret: string;
  /** Cloud SQL: mount the server CA from the Synapse database's setup Secret. */
  databaseTls: boolean;
  /** Synapse's `max_upload_size` (`50M`): the bridge's upload body limit is the same, so the two agree. */
  maxUploadSize: string;
  devPages: boolean;
}

/** The single active replica: Recreate (never two pods at once), and the bridge's advisory lock behind it. */
export function bridgeDeploymentSpec(input: BridgePodInput): k8s.types.input.apps.v1.DeploymentSpec {
  return {
    replicas: 1,
    strategy: { type: "Recreate" },
    selector: { matchLabels: { ...BRIDGE_LABELS } },
    template: { metadata: { labels: { ...BRIDGE_LABELS } }, spec: bridgePodSpec(input) },
  };
}

export function bridgePodSpec(input: BridgePodInput): PodSpec {
  const probe = (path: string, extra: Record<string, number>) => ({
    httpGet: { path, port: BRIDGE_PORT_NAME },
    ...extra,
  });
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 30,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: BRIDGE_UID,
      runAsGroup: BRIDGE_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: "bridge",
        image: input.image,
        envFrom: [
          { configMapRef: { name: input.chatServiceConfigMap } },
          { secretRef: { name: input.chatServiceTokenSecret } },
          { secretRef: { name: BRIDGE_SECRET } },
        ],
        env: [
          { name: "BRIDGE_HOST", value: "0.0.0.0" },
          { name: "BRIDGE_PORT", value: String(BRIDGE_PORT) },
          { name: "BRIDGE_METRICS_PORT", value: String(BRIDGE_METRICS_PORT) },
          { name: "NODE_OPTIONS", value: nodeHeapOptions(input.resources.limits.memory) },
          { name: "BRIDGE_MAX_UPLOAD_BYTES", value: String(uploadBytes(input.maxUploadSize)) },
          { name: "BRIDGE_DEV_PAGES", value: String(input.devPages) },
        ],
        ports: [
          { name: BRIDGE_PORT_NAME, containerPort: BRIDGE_PORT, protocol: "TCP" },
          { name: BRIDGE_METRICS_PORT_NAME, containerPort: BRIDGE_METRICS_PORT, protocol: "TCP" },
        ],
        // A standby (another replica holds the sync lock) is alive but not ready.
        startupProbe: probe("/healthz", { periodSeconds: 5, failureThreshold: 24, timeoutSeconds: 3 }),
        livenessProbe: probe("/healthz", { periodSeconds: 20, failureThreshold: 3, timeoutSeconds: 5 }),
        readinessProbe: probe("/readyz", { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 }),
        resources: containerResources(input.resources),
        securityContext: {
          runAsNonRoot: true,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
        },
        ...(input.databaseTls ? { volumeMounts: [databaseCa.mount] } : {}),
      },
    ],
    ...(input.databaseTls ? { volumes: [databaseCa.volume] } : {}),
  };
}

export function bridgeServiceSpec(): k8s.types.input.core.v1.ServiceSpec {
  return {
    type: "ClusterIP",
    selector: { ...BRIDGE_LABELS },
    ports: [
      { name: BRIDGE_PORT_NAME, port: BRIDGE_PORT, targetPort: BRIDGE_PORT_NAME, protocol: "TCP" },
      {
        name: BRIDGE_METRICS_PORT_NAME,
        port: BRIDGE_METRICS_PORT,
        targetPort: BRIDGE_METRICS_PORT_NAME,
        protocol: "TCP",
      },
    ],
  };
}
