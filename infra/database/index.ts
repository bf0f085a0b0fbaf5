// The Synapse database: its server (an existing in-cluster Postgres, or Cloud SQL for PostgreSQL 15 in prod) and
// the idempotent setup Job that creates the role and the C-collated database (Cloud SQL's API cannot set LC_COLLATE).
import { createHash } from "node:crypto";
import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { CloudSqlDatabaseConfig, InClusterDatabaseConfig } from "../config/schema.ts";
import { scramSha256Verifier } from "./scram.ts";
import {
  CLOUD_SQL_ADMIN_USER,
  DATABASE_SETUP_LABELS,
  PSQL_IMAGE,
  PSQL_UID,
  SETUP_CONTAINER,
  SETUP_SCRIPT_CONFIG_MAP,
  SETUP_SECRET,
} from "./setup-spec.ts";
import { DATABASE_SETUP_SQL, PASSWORD_ENV, psqlArgs, VERIFIER_ENV } from "./sql.ts";

export interface SynapseDatabaseArgs {
  namespace: pulumi.Input<string>;
  config: InClusterDatabaseConfig | CloudSqlDatabaseConfig;
  /** The generated password of the `synapse` role. */
  password: pulumi.Output<string>;
  /** Cloud SQL only: the generated password of the admin user the program creates. */
  adminPassword?: pulumi.Output<string>;
}

/** Where Synapse connects, once the setup Job has run. */
export class SynapseDatabase extends pulumi.ComponentResource {
  public readonly host: pulumi.Output<string>;
  public readonly port: number;
  public readonly name: string;
  public readonly user: string;
  /** libpq `sslmode` for Synapse (`verify-ca` on Cloud SQL), absent in-cluster (no TLS inside the cluster today). */
  public readonly sslMode: string | undefined;
  /** Cloud SQL's server CA certificate (PEM), for `verify-ca`. */
  public readonly caCert: pulumi.Output<string> | undefined;
  /** Synapse must start after this Job. */
  public readonly setupJob: k8s.batch.v1.Job;
  public readonly instance: gcp.sql.DatabaseInstance | undefined;

  constructor(name: string, args: SynapseDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:database:SynapseDatabase", name, {}, opts);
    const { config } = args;
    this.name = config.name;
    this.user = config.user;
    let adminPasswordRef: { name: string; key: string };
    // The setup Job reads only the SCRAM verifier (it sets the role's password without knowing it); the password
    // itself is here for jobs that log in as the role (backups), and is never mounted into the setup Job.
    const setupSecretData: Record<string, pulumi.Input<string>> = {
      [VERIFIER_ENV]: pulumi.secret(args.password.apply(scramSha256Verifier)),
      [PASSWORD_ENV]: args.password,
    };

    if (config.kind === "in-cluster") {
      this.host = pulumi.output(config.host);
      this.port = config.port;
      this.sslMode = undefined;
      this.caCert = undefined;
      this.instance = undefined;
      adminPasswordRef = { name: config.adminSecret.name, key: config.adminSecret.passwordKey };
    } else {
      if (!args.adminPassword) throw new Error("a Cloud SQL database needs a generated admin password");
      // Private IP only, TLS required, backups with point-in-time recovery; deleting it takes two deliberate steps.
      this.instance = new gcp.sql.DatabaseInstance(
        `${name}-instance`,
        {
          name: config.instanceName,
          databaseVersion: "POSTGRES_15",
          region: config.region,
          deletionProtection: true,
          settings: {
            tier: config.tier,
            availabilityType: config.availabilityType,
            diskSize: config.diskSizeGb,
            diskAutoresize: true,
            deletionProtectionEnabled: true,
            ipConfiguration: {
              ipv4Enabled: false,
              privateNetwork: config.network,
              sslMode: "ENCRYPTED_ONLY",
            },
            backupConfiguration: {
              enabled: true,
              pointInTimeRecoveryEnabled: true,
              startTime: config.backupStartTime,
              transactionLogRetentionDays: 7,
              backupRetentionSettings: { retainedBackups: config.retainedBackups, retentionUnit: "COUNT" },
            },
          },
        },
        { parent: this, protect: true },
      );
      new gcp.sql.User(
        `${name}-admin`,
        { instance: this.instance.name, name: CLOUD_SQL_ADMIN_USER, password: args.adminPassword },
        { parent: this },
      );
      this.host = this.instance.privateIpAddress;
      this.port = 5432;
      this.sslMode = "verify-ca";
      this.caCert = this.instance.serverCaCerts.apply((certs) => {
        const cert = certs[0]?.cert;
        if (!cert)
          throw new Error(`Cloud SQL instance ${config.instanceName} reported no server CA certificate`);
        return cert;
      });
      setupSecretData.ADMIN_PASSWORD = args.adminPassword;
      setupSecretData["ca.pem"] = this.caCert;
      adminPasswordRef = { name: SETUP_SECRET, key: "ADMIN_PASSWORD" };
    }

    const script = new k8s.core.v1.ConfigMap(
      `${name}-setup-script`,
      {
        metadata: { name: SETUP_SCRIPT_CONFIG_MAP, namespace: args.namespace },
        data: { "setup.sql": DATABASE_SETUP_SQL },
      },
      { parent: this },
    );
    const secret = new k8s.core.v1.Secret(
      `${name}-setup-secret`,
      {
        metadata: { name: SETUP_SECRET, namespace: args.namespace },
        type: "Opaque",
        stringData: setupSecretData,
      },
      { parent: this },
    );

    const userEnv =
      config.kind === "in-cluster"
        ? {
            name: "PGUSER",
            valueFrom: {
              secretKeyRef: { name: config.adminSecret.name, key: config.adminSecret.usernameKey },
            },
          }
        : { name: "PGUSER", value: CLOUD_SQL_ADMIN_USER };
    const tlsEnv =
      config.kind === "cloudsql"
        ? [
            { name: "PGSSLMODE", value: "verify-ca" },
            { name: "PGSSLROOTCERT", value: "/setup-secret/ca.pem" },
          ]
        : [];
    // A new Job (new name) whenever the script or the password changes, so a rotation re-runs it; the same inputs
    // keep the same completed Job.
    const revision = pulumi
      .all([args.password, this.host])
      .apply(([password, host]) =>
        createHash("sha256").update(`${DATABASE_SETUP_SQL}\0${password}\0${host}`).digest("hex").slice(0, 10),
      );
    this.setupJob = new k8s.batch.v1.Job(
      `${name}-setup`,
      {
        metadata: {
          name: pulumi.interpolate`matrix-synapse-db-setup-${pulumi.unsecret(revision)}`,
          namespace: args.namespace,
          labels: DATABASE_SETUP_LABELS,
        },
        spec: {
          backoffLimit: 6,
          activeDeadlineSeconds: 900,
          template: {
            metadata: { labels: DATABASE_SETUP_LABELS },
            spec: {
              restartPolicy: "Never",
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: PSQL_UID,
                runAsGroup: PSQL_UID,
                // Secret files are root-owned: the group (mode 0440) is how psql's user reads ca.pem.
                fsGroup: PSQL_UID,
                seccompProfile: { type: "RuntimeDefault" },
              },
              containers: [
                {
                  name: "psql",
                  image: PSQL_IMAGE,
                  command: ["psql", ...psqlArgs("/setup/setup.sql", config)],
                  env: [
                    { name: "PGHOST", value: this.host },
                    { name: "PGPORT", value: String(this.port) },
                    { name: "PGCONNECT_TIMEOUT", value: "10" },
                    userEnv,
                    { name: "PGPASSWORD", valueFrom: { secretKeyRef: adminPasswordRef } },
                    {
                      name: VERIFIER_ENV,
                      valueFrom: { secretKeyRef: { name: SETUP_SECRET, key: VERIFIER_ENV } },
                    },
                    ...tlsEnv,
                  ],
                  ...SETUP_CONTAINER,
                  volumeMounts: [
                    { name: "setup", mountPath: "/setup", readOnly: true },
                    { name: "setup-secret", mountPath: "/setup-secret", readOnly: true },
                  ],
                },
              ],
              volumes: [
                { name: "setup", configMap: { name: SETUP_SCRIPT_CONFIG_MAP } },
                // Only the CA certificate: the setup Job never sees the password key of its Secret.
                {
                  name: "setup-secret",
                  secret: {
                    secretName: SETUP_SECRET,
                    defaultMode: 0o440,
                    items: [{ key: "ca.pem", path: "ca.pem" }],
                    optional: config.kind === "in-cluster",
                  },
                },
              ],
            },
          },
        },
      },
      { parent: this, dependsOn: [script, secret], deleteBeforeReplace: true },
    );
    this.registerOutputs({ host: this.host, setupJob: this.setupJob.metadata.name });
  }
}
