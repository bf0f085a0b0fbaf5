// The bridge next to Synapse: its generated secrets (@pulumi/random), its Postgres role and database (the same
// idempotent setup Job as Synapse's), its Secret, Deployment (one active replica) and Service.
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { BridgeDeployConfig } from "../config/bridge.ts";
import { scramSha256Verifier } from "../database/scram.ts";
import { DATABASE_SETUP_SQL, VERIFIER_ENV } from "../database/sql.ts";
import {
  BRIDGE_DB_SETUP_LABELS,
  BRIDGE_DB_SETUP_NAME,
  BRIDGE_LABELS,
  BRIDGE_NAME,
  BRIDGE_SECRET,
  bridgeDatabaseJobPodSpec,
  bridgeDatabaseUrl,
  bridgeDeploymentSpec,
  bridgeServiceSpec,
  bridgeUrl,
  type DatabaseAdmin,
} from "./spec.ts";

export interface BridgeDeployArgs {
  namespace: pulumi.Input<string>;
  config: BridgeDeployConfig;
  /** The Postgres server Synapse uses (the bridge gets its own role and database there). */
  database: { host: pulumi.Output<string>; port: number; admin: DatabaseAdmin };
  /** realtime-chat-service's ConfigMap and token Secret: the bridge reads the same MATRIX_* settings. */
  chatServiceConfigMap: string;
  chatServiceTokenSecret: string;
  /** Synapse's `max_upload_size` (the stack's `synapse.maxUploadSize`): the bridge accepts uploads up to it. */
  maxUploadSize: string;
  /** Resources to exist first (Synapse, its database setup Job, the chat-service wiring). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class BridgeDeploy extends pulumi.ComponentResource {
  /** The bridge API's URL inside the namespace. */
  public readonly url: string;
  /** The service-to-service API token (a secret). */
  public readonly apiToken: pulumi.Output<string>;
  /** The HMAC key realtime-chat-service signs end users' WebSocket tokens with (a secret). */
  public readonly signingKey: pulumi.Output<string>;

  constructor(name: string, args: BridgeDeployArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:bridge:BridgeDeploy", name, {}, opts);
    const { config } = args;
    const token = (id: string, keeper: string | undefined, length: number) =>
      pulumi.secret(
        new random.RandomPassword(
          `${name}-${id}`,
          // Alphanumeric: safe in URLs, headers and connection strings.
          { length, special: false, keepers: { rotation: keeper ?? "initial" } },
          { parent: this },
        ).result,
      );
    this.apiToken = token("api-token", config.rotation.apiToken, 48);
    this.signingKey = token("ws-signing-key", config.rotation.signingKey, 64);
    const password = token("database-password", config.rotation.databasePassword, 32);
    this.url = bridgeUrl();
    const tls = args.database.admin.kind === "cloudsql";

    // The database: Synapse's setup script, for the bridge's role, with the verifier of the bridge's password.
    const script = new k8s.core.v1.ConfigMap(
      `${name}-db-setup-script`,
      {
        metadata: { name: BRIDGE_DB_SETUP_NAME, namespace: args.namespace },
        data: { "setup.sql": DATABASE_SETUP_SQL },
      },
      { parent: this },
    );
    const setupSecret = new k8s.core.v1.Secret(
      `${name}-db-setup-secret`,
      {
        metadata: { name: BRIDGE_DB_SETUP_NAME, namespace: args.namespace },
        type: "Opaque",
        stringData: { [VERIFIER_ENV]: pulumi.secret(password.apply(scramSha256Verifier)) },
      },
      { parent: this },
    );
    const revision = pulumi
      .all([password, args.database.host])
      .apply(([value, host]) =>
        createHash("sha256").update(`${DATABASE_SETUP_SQL}\0${value}\0${host}`).digest("hex").slice(0, 10),
      );
    const setupJob = new k8s.batch.v1.Job(
      `${name}-db-setup`,
      {
        metadata: {
          name: pulumi.interpolate`${BRIDGE_DB_SETUP_NAME}-${pulumi.unsecret(revision)}`,
          namespace: args.namespace,
          labels: BRIDGE_DB_SETUP_LABELS,
        },
        spec: {
          backoffLimit: 6,
          activeDeadlineSeconds: 900,
          template: {
            metadata: { labels: BRIDGE_DB_SETUP_LABELS },
            spec: args.database.host.apply((host) =>
              bridgeDatabaseJobPodSpec({
                host,
                port: args.database.port,
                database: config.database,
                admin: args.database.admin,
                scriptConfigMap: BRIDGE_DB_SETUP_NAME,
                setupSecret: BRIDGE_DB_SETUP_NAME,
              }),
            ),
          },
        },
      },
      {
        parent: this,
        dependsOn: [script, setupSecret, ...(args.dependsOn ?? [])],
        deleteBeforeReplace: true,
      },
    );

    const secret = new k8s.core.v1.Secret(
      `${name}-secrets`,
      {
        metadata: { name: BRIDGE_SECRET, namespace: args.namespace, labels: BRIDGE_LABELS },
        type: "Opaque",
        stringData: {
          BRIDGE_API_TOKEN: this.apiToken,
          BRIDGE_WS_SIGNING_KEY: this.signingKey,
          BRIDGE_DATABASE_URL: pulumi.secret(
            pulumi.all([args.database.host, password]).apply(([host, value]) =>
              bridgeDatabaseUrl({
                host,
                port: args.database.port,
                ...config.database,
                password: value,
                tls,
              }),
            ),
          ),
        },
      },
      { parent: this },
    );

    // A changed Secret restarts the pod (envFrom is read at start only).
    const secretChecksum = pulumi
      .all([this.apiToken, this.signingKey, password])
      .apply((values) => createHash("sha256").update(values.join("\0")).digest("hex").slice(0, 16));
    const spec = bridgeDeploymentSpec({
      image: config.image,
      resources: config.resources,
      chatServiceConfigMap: args.chatServiceConfigMap,
      chatServiceTokenSecret: args.chatServiceTokenSecret,
      databaseTls: tls,
      maxUploadSize: args.maxUploadSize,
      devPages: config.devPages,
    });
    new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: { name: BRIDGE_NAME, namespace: args.namespace, labels: BRIDGE_LABELS },
        spec: {
          ...spec,
          template: {
            ...spec.template,
            metadata: {
              labels: { ...BRIDGE_LABELS },
              annotations: { "nova.chat/secret-checksum": pulumi.unsecret(secretChecksum) },
            },
          },
        },
      },
      { parent: this, dependsOn: [secret, setupJob, ...(args.dependsOn ?? [])] },
    );
    new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: BRIDGE_NAME, namespace: args.namespace, labels: BRIDGE_LABELS },
        spec: bridgeServiceSpec(),
      },
      { parent: this },
    );
    this.registerOutputs({ url: this.url });
  }
}
