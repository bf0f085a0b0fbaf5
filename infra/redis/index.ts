// Redis between Synapse's processes (worker mode): Memorystore for Redis in prod (private service access, AUTH,
// in-transit encryption), or one pod in the cluster (staging). Synapse keeps nothing in it that a restart loses
// for good (replication pub/sub, a cache), so neither persists.
import { createHash } from "node:crypto";
import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { RedisSettings } from "../config/schema.ts";
import { inClusterRedisPodSpec, REDIS_LABELS, REDIS_NAME, REDIS_PORT, redisConf } from "./spec.ts";

export interface SynapseRedisArgs {
  namespace: pulumi.Input<string>;
  settings: RedisSettings;
  /** A keepers value: changing it rotates the in-cluster Redis's password (Memorystore makes its own). */
  rotation?: string | undefined;
}

export class SynapseRedis extends pulumi.ComponentResource {
  public readonly host: pulumi.Output<string>;
  public readonly port: pulumi.Output<number>;
  /** Memorystore's in-transit encryption: Synapse connects with TLS and its server CA. */
  public readonly tls: boolean;
  /** The AUTH password (a secret). */
  public readonly password: pulumi.Output<string>;
  /** PEM of the server CAs to trust (Memorystore), else undefined. */
  public readonly caCert: pulumi.Output<string> | undefined;

  constructor(name: string, args: SynapseRedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:redis:SynapseRedis", name, {}, opts);
    const parent = { parent: this };
    if (args.settings.kind === "memorystore") {
      const { settings } = args;
      const instance = new gcp.redis.Instance(
        `${name}-memorystore`,
        {
          name: "nova-matrix-synapse-redis",
          region: settings.region,
          tier: settings.tier,
          memorySizeGb: settings.memorySizeGb,
          redisVersion: "REDIS_7_2",
          authorizedNetwork: settings.network,
          // Private services access: the same VPC peering Cloud SQL uses; no public endpoint.
          connectMode: "PRIVATE_SERVICE_ACCESS",
          authEnabled: true,
          transitEncryptionMode: "SERVER_AUTHENTICATION",
        },
        parent,
      );
      this.host = instance.host;
      this.port = instance.port;
      this.tls = true;
      // Memorystore generates the AUTH string itself (it cannot be set): kept as a secret, written only to the
      // Synapse Secret.
      this.password = pulumi.secret(instance.authString);
      this.caCert = instance.serverCaCerts.apply((certs) =>
        (certs ?? []).map((c) => c.cert.trim()).join("\n"),
      );
    } else {
      const password = pulumi.secret(
        new random.RandomPassword(
          `${name}-password`,
          { length: 48, special: false, keepers: { rotation: args.rotation ?? "initial" } },
          parent,
        ).result,
      );
      const secret = new k8s.core.v1.Secret(
        `${name}-config`,
        {
          metadata: { name: REDIS_NAME, namespace: args.namespace, labels: REDIS_LABELS },
          type: "Opaque",
          stringData: pulumi.secret(password.apply((value) => ({ "redis.conf": redisConf(value) }))),
        },
        parent,
      );
      // A digest of the config rolls Redis when the password changes; it reveals nothing.
      const checksum = pulumi.unsecret(
        password.apply((value) => createHash("sha256").update(redisConf(value)).digest("hex")),
      );
      new k8s.apps.v1.Deployment(
        `${name}-deployment`,
        {
          metadata: { name: REDIS_NAME, namespace: args.namespace, labels: REDIS_LABELS },
          spec: {
            replicas: 1,
            strategy: { type: "Recreate" },
            selector: { matchLabels: REDIS_LABELS },
            template: {
              metadata: { labels: REDIS_LABELS, annotations: { "nova.chat/config-checksum": checksum } },
              spec: inClusterRedisPodSpec(args.settings.resources),
            },
          },
        },
        { parent: this, dependsOn: [secret] },
      );
      new k8s.core.v1.Service(
        `${name}-service`,
        {
          metadata: { name: REDIS_NAME, namespace: args.namespace, labels: REDIS_LABELS },
          spec: {
            type: "ClusterIP",
            selector: REDIS_LABELS,
            ports: [{ name: "redis", port: REDIS_PORT, targetPort: "redis", protocol: "TCP" }],
          },
        },
        parent,
      );
      this.host = pulumi.output(args.namespace).apply((ns) => `${REDIS_NAME}.${ns}.svc.cluster.local`);
      this.port = pulumi.output(REDIS_PORT);
      this.tls = false;
      this.password = password;
      this.caCert = undefined;
    }
    this.registerOutputs({ host: this.host, port: this.port });
  }
}
