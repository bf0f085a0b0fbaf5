// What a database setup Job is made of, as pure values: the psql image and its user, the container's limits and
// hardening, the names of Synapse's setup objects. Pure (no Pulumi), so the config schema, the bridge's spec and the
// backups read them without loading a cloud SDK.

/** psql's image for the setup Jobs: the server's major version, pinned. */
export const PSQL_IMAGE = "postgres:15.10-alpine";
/** The alpine postgres image's `postgres` user: the setup Jobs run psql as it. */
export const PSQL_UID = 70;
export const SETUP_SCRIPT_CONFIG_MAP = "matrix-synapse-db-setup";
/** Synapse's setup Secret: the verifier, Synapse's password (for backups) and, on Cloud SQL, the admin password and CA. */
export const SETUP_SECRET = "matrix-synapse-db-setup";
/** The setup Job's pod labels (NetworkPolicies let these pods reach Postgres). */
export const DATABASE_SETUP_LABELS = { app: "matrix-synapse-db-setup" } as const;
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
