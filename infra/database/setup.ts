// One role and database on a Postgres server, made by an idempotent setup Job: the script's ConfigMap, a Secret with
// the SCRAM verifier of the role's password (the Job never sees the password), and the Job, named after a hash of
// the script, the password and the host so that a rotation or a move re-runs it. Synapse's database and the bridge's
// are both made this way.
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { scramSha256Verifier } from "./scram.ts";
import { type DatabaseAdmin, databaseSetupPodSpec } from "./setup-spec.ts";
import { DATABASE_SETUP_SQL, VERIFIER_ENV } from "./sql.ts";

export interface DatabaseSetupArgs {
  namespace: pulumi.Input<string>;
  /** The ConfigMap's and the Secret's name and the pods' `app` label; the Job is `<objectName>-<revision>`. */
  objectName: string;
  host: pulumi.Output<string>;
  port: number;
  /** The role and the database to create (or bring up to date). */
  database: { name: string; user: string };
  /** The role's generated password: only its verifier reaches the Secret the Job reads. */
  password: pulumi.Output<string>;
  admin: DatabaseAdmin;
  /** More psql scripts, by file name, run after the setup in the same session (Synapse's takeover step). */
  moreScripts?: Record<string, string> | undefined;
  /** More keys for the setup Secret, for other readers (the Job mounts none of them but `ca.pem`). */
  moreSecretData?: Record<string, pulumi.Input<string>>;
}

export class DatabaseSetup extends pulumi.ComponentResource {
  /** Whatever needs the role and database waits for this Job. */
  public readonly job: k8s.batch.v1.Job;

  constructor(name: string, args: DatabaseSetupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:database:DatabaseSetup", name, {}, opts);
    // The children were created under the database's or the bridge's component before this one existed: the alias
    // keeps the live objects instead of replacing them.
    const child = () => ({ parent: this, aliases: [{ parent: opts?.parent ?? pulumi.rootStackResource }] });
    const labels = { app: args.objectName };
    const script = new k8s.core.v1.ConfigMap(
      `${name}-script`,
      {
        metadata: { name: args.objectName, namespace: args.namespace },
        data: { "setup.sql": DATABASE_SETUP_SQL, ...args.moreScripts },
      },
      child(),
    );
    const secret = new k8s.core.v1.Secret(
      `${name}-secret`,
      {
        metadata: { name: args.objectName, namespace: args.namespace },
        type: "Opaque",
        stringData: {
          [VERIFIER_ENV]: pulumi.secret(args.password.apply(scramSha256Verifier)),
          ...args.moreSecretData,
        },
      },
      child(),
    );
    const moreScripts = args.moreScripts ?? {};
    const scripts = [DATABASE_SETUP_SQL, ...Object.values(moreScripts)].join("\0");
    const revision = pulumi
      .all([args.password, args.host])
      .apply(([password, host]) =>
        createHash("sha256").update(`${scripts}\0${password}\0${host}`).digest("hex").slice(0, 10),
      );
    this.job = new k8s.batch.v1.Job(
      name,
      {
        metadata: {
          name: pulumi.interpolate`${args.objectName}-${pulumi.unsecret(revision)}`,
          namespace: args.namespace,
          labels,
        },
        spec: {
          backoffLimit: 6,
          activeDeadlineSeconds: 900,
          template: {
            metadata: { labels },
            spec: args.host.apply((host) =>
              databaseSetupPodSpec({
                host,
                port: args.port,
                database: args.database,
                admin: args.admin,
                scriptConfigMap: args.objectName,
                setupSecret: args.objectName,
                moreScripts: Object.keys(moreScripts),
              }),
            ),
          },
        },
      },
      { ...child(), dependsOn: [script, secret], deleteBeforeReplace: true },
    );
    this.registerOutputs({ job: this.job.metadata.name });
  }
}
