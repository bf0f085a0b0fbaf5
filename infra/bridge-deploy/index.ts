// The bridge next to Synapse: its generated secrets (@pulumi/random), its Postgres role and database (a
// DatabaseSetup, as Synapse's), its Secret, Deployment (one active replica) and Service.
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { type BridgeDeployConfig, parseImage } from "../config/bridge.ts";
import { DatabaseSetup } from "../database/setup.ts";
import type { DatabaseAdmin } from "../database/setup-spec.ts";
import { PASSWORD_ENV } from "../database/sql.ts";
import { generatedToken } from "../secrets/token.ts";
import {
  BRIDGE_DB_SETUP_NAME,
  BRIDGE_LABELS,
  BRIDGE_NAME,
  BRIDGE_SECRET,
  bridgeDatabaseUrl,
  bridgeDeploymentSpec,
  bridgeServiceSpec,
  bridgeUrl,
} from "./spec.ts";

/**
 * The image the Deployment runs: the configured `repository@sha256:…`. A repository without digest (the stack files
 * before the workflow's image job sets one) is "known after apply" in a preview, and stops an update: nothing is
 * ever deployed by tag.
 */
export function deployedImage(image: string): pulumi.Output<string> {
  const parsed = parseImage(image);
  if (parsed?.digest) return pulumi.output(image);
  if (pulumi.runtime.isDryRun()) return pulumi.output(pulumi.unknown) as pulumi.Output<string>;
  throw new pulumi.RunError(
    `nova-matrix:bridge.image: ${image} has no digest, and the bridge is deployed by digest only: ` +
      `pulumi config set --path nova-matrix:bridge.image ${image}@sha256:<digest> (the workflow's image job sets ` +
      "the digest it pushed)",
  );
}

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
      generatedToken(this, `${name}-${id}`, keeper, length);
    this.apiToken = token("api-token", config.rotation.apiToken, 48);
    this.signingKey = token("ws-signing-key", config.rotation.signingKey, 64);
    const password = token("database-password", config.rotation.databasePassword, 32);
    this.url = bridgeUrl();
    const tls = args.database.admin.kind === "cloudsql";

    // The bridge's own role and database on Synapse's server, made the way Synapse's are. It runs after what the
    // bridge depends on (this component's dependsOn): on Cloud SQL it logs in with the admin password Synapse's
    // database setup keeps.
    const setup = new DatabaseSetup(
      `${name}-db-setup`,
      {
        namespace: args.namespace,
        objectName: BRIDGE_DB_SETUP_NAME,
        host: args.database.host,
        port: args.database.port,
        database: config.database,
        password,
        admin: args.database.admin,
        // The password itself beside the verifier, for the in-cluster database's backup job (it dumps as this role).
        moreSecretData: { [PASSWORD_ENV]: password },
      },
      { parent: this },
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
      image: deployedImage(config.image),
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
      { parent: this, dependsOn: [secret, setup.job] },
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
