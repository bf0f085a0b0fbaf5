// The Synapse database: its server (an existing in-cluster Postgres, or Cloud SQL for PostgreSQL 15 in prod) and
// the idempotent setup Job that creates the role and the C-collated database (Cloud SQL's API cannot set LC_COLLATE).
import * as gcp from "@pulumi/gcp";
import type * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { CloudSqlDatabaseConfig, InClusterDatabaseConfig } from "../config/schema.ts";
import { TAKEOVER_FILE, TAKEOVER_SQL } from "../synapse/takeover.ts";
import { DatabaseSetup } from "./setup.ts";
import { CLOUD_SQL_ADMIN_USER, type DatabaseAdmin, SETUP_SECRET } from "./setup-spec.ts";
import { PASSWORD_ENV } from "./sql.ts";

export interface SynapseDatabaseArgs {
  namespace: pulumi.Input<string>;
  config: InClusterDatabaseConfig | CloudSqlDatabaseConfig;
  /** The generated password of the `synapse` role. */
  password: pulumi.Output<string>;
  /** Cloud SQL only: the generated password of the admin user the program creates. */
  adminPassword?: pulumi.Output<string>;
  /**
   * Take over a hand-made Synapse in this database: the setup Job also revokes every credential the hand-made
   * deployment created (infra/synapse/takeover.ts), once.
   */
  takeover?: boolean;
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
    let admin: DatabaseAdmin;
    // Besides the verifier the setup Job reads: the password itself, for jobs that log in as the role (backups);
    // never mounted into the setup Job.
    const moreSecretData: Record<string, pulumi.Input<string>> = { [PASSWORD_ENV]: args.password };

    if (config.kind === "in-cluster") {
      this.host = pulumi.output(config.host);
      this.port = config.port;
      this.sslMode = undefined;
      this.caCert = undefined;
      this.instance = undefined;
      admin = { kind: "in-cluster", secret: config.adminSecret };
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
      // The bridge's setup Job logs in with this admin password too, and its pod mounts this CA.
      moreSecretData.ADMIN_PASSWORD = args.adminPassword;
      moreSecretData["ca.pem"] = this.caCert;
      admin = { kind: "cloudsql" };
    }

    this.setupJob = new DatabaseSetup(
      `${name}-setup`,
      {
        namespace: args.namespace,
        objectName: SETUP_SECRET,
        host: this.host,
        port: this.port,
        database: { name: config.name, user: config.user },
        password: args.password,
        admin,
        moreSecretData,
        moreScripts: args.takeover ? { [TAKEOVER_FILE]: TAKEOVER_SQL } : undefined,
      },
      { parent: this },
    ).job;
    this.registerOutputs({ host: this.host, setupJob: this.setupJob.metadata.name });
  }
}
