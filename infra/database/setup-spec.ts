// What a database setup Job is made of, as pure values: the psql image and its user, the container's limits and
// hardening, the names of Synapse's setup objects, the CA mount, the Job's pod. Pure (no Pulumi), so the config schema, the bridge's spec and the
// backups read them without loading a cloud SDK.
import type * as k8s from "@pulumi/kubernetes";
import { psqlArgs, VERIFIER_ENV } from "./sql.ts";

type PodSpec = k8s.types.input.core.v1.PodSpec;

/** psql's image for the setup Jobs: the server's major version, pinned. */
export const PSQL_IMAGE = "postgres:15.10-alpine";
/** The alpine postgres image's `postgres` user: the setup Jobs run psql as it. */
export const PSQL_UID = 70;
/**
 * Synapse's setup objects' name (its ConfigMap and Secret). The Secret holds the verifier, Synapse's password (for
 * the backups) and, on Cloud SQL, the admin password and the server CA (for the bridge's setup Job and pod too).
 */
export const SETUP_SECRET = "matrix-synapse-db-setup";
/** Synapse's setup Job's pod labels (NetworkPolicies let these pods reach Postgres). */
export const DATABASE_SETUP_LABELS = { app: SETUP_SECRET } as const;
/** The Cloud SQL admin user the program creates (the setup Jobs' login). */
export const CLOUD_SQL_ADMIN_USER = "nova_admin";

/** Limits and hardening of a database setup Job's psql container (Synapse's and the bridge's). */
export const SETUP_CONTAINER = {
  resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "128Mi" } },
  securityContext: {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
  },
};

/** How a database setup Job logs in as an admin, and whether the server wants TLS (Cloud SQL). */
export type DatabaseAdmin =
  | { kind: "in-cluster"; secret: { name: string; usernameKey: string; passwordKey: string } }
  | { kind: "cloudsql" };

/** Where pods that talk to Cloud SQL find its server CA certificate (`<mount>/ca.pem`). */
export const DATABASE_CA_MOUNT = "/db-ca";

/**
 * The one way a pod gets Cloud SQL's server CA: only the `ca.pem` key of Synapse's setup Secret (never the passwords
 * beside it), read-only at DATABASE_CA_MOUNT. Mode 0444 on purpose: a CA certificate is public, and the pods reading
 * it run as different users (psql as PSQL_UID, the bridge as its own), so none needs an fsGroup to read it.
 */
export const databaseCa = {
  volume: {
    name: "database-ca",
    secret: { secretName: SETUP_SECRET, defaultMode: 0o444, items: [{ key: "ca.pem", path: "ca.pem" }] },
  },
  mount: { name: "database-ca", mountPath: DATABASE_CA_MOUNT, readOnly: true },
};

/**
 * A setup Job's pod: the idempotent setup script (sql.ts, mounted from `scriptConfigMap`) run for one role and
 * database, reading only the SCRAM verifier of the role's password from `setupSecret`.
 */
export function databaseSetupPodSpec(input: {
  host: string;
  port: number;
  database: { name: string; user: string };
  admin: DatabaseAdmin;
  scriptConfigMap: string;
  setupSecret: string;
  /** More scripts of the ConfigMap, run after setup.sql in the same session (connected to the database, as the admin). */
  moreScripts?: readonly string[] | undefined;
}): PodSpec {
  const tls = input.admin.kind === "cloudsql";
  const admin =
    input.admin.kind === "in-cluster"
      ? [
          {
            name: "PGUSER",
            valueFrom: {
              secretKeyRef: { name: input.admin.secret.name, key: input.admin.secret.usernameKey },
            },
          },
          {
            name: "PGPASSWORD",
            valueFrom: {
              secretKeyRef: { name: input.admin.secret.name, key: input.admin.secret.passwordKey },
            },
          },
        ]
      : [
          { name: "PGUSER", value: CLOUD_SQL_ADMIN_USER },
          // The admin password and the server CA live in the Synapse database's setup Secret.
          { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: SETUP_SECRET, key: "ADMIN_PASSWORD" } } },
          { name: "PGSSLMODE", value: "verify-ca" },
          { name: "PGSSLROOTCERT", value: `${DATABASE_CA_MOUNT}/ca.pem` },
        ];
  return {
    restartPolicy: "Never",
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: PSQL_UID,
      runAsGroup: PSQL_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: "psql",
        image: PSQL_IMAGE,
        command: [
          "psql",
          ...psqlArgs("/setup/setup.sql", input.database),
          ...(input.moreScripts ?? []).flatMap((file) => ["-f", `/setup/${file}`]),
        ],
        env: [
          { name: "PGHOST", value: input.host },
          { name: "PGPORT", value: String(input.port) },
          { name: "PGCONNECT_TIMEOUT", value: "10" },
          ...admin,
          { name: VERIFIER_ENV, valueFrom: { secretKeyRef: { name: input.setupSecret, key: VERIFIER_ENV } } },
        ],
        ...SETUP_CONTAINER,
        volumeMounts: [
          { name: "setup", mountPath: "/setup", readOnly: true },
          ...(tls ? [databaseCa.mount] : []),
        ],
      },
    ],
    volumes: [
      { name: "setup", configMap: { name: input.scriptConfigMap } },
      ...(tls ? [databaseCa.volume] : []),
    ],
  };
}
