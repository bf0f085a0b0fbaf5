// The in-cluster Redis's pure parts (staging's worker mode): names, its config file, its pod.
import type { types } from "@pulumi/kubernetes";
import { containerResources, type ResourceSettings } from "../config/schema.ts";
import { nonRootContainerSecurity } from "../network/policies.ts";

export const REDIS_NAME = "matrix-synapse-redis";
export const REDIS_LABELS = { app: REDIS_NAME } as const;
export const REDIS_PORT = 6379;
/** The official image's Redis 7.2 (Memorystore runs REDIS_7_2; the harness Debian 12's 7.0). */
export const REDIS_IMAGE = "redis:7.2.5-alpine";
/** The official image's `redis` user. */
export const REDIS_UID = 999;

/** redis.conf: a password, no persistence (pub/sub and a cache: nothing to keep across a restart). */
export function redisConf(password: string): string {
  if (!/^[A-Za-z0-9]+$/.test(password)) throw new Error("the Redis password must be alphanumeric");
  return [
    "bind 0.0.0.0",
    `port ${REDIS_PORT}`,
    "protected-mode yes",
    `requirepass ${password}`,
    'save ""',
    "appendonly no",
    "dir /data",
    "",
  ].join("\n");
}

export function inClusterRedisPodSpec(resources: ResourceSettings): types.input.core.v1.PodSpec {
  const probe = (extra: Record<string, number>) => ({ tcpSocket: { port: "redis" }, ...extra });
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: REDIS_UID,
      runAsGroup: REDIS_UID,
      fsGroup: REDIS_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: "redis",
        image: REDIS_IMAGE,
        // Redis itself on the Secret's config (not the image's entrypoint, which wants root).
        command: ["redis-server", "/config/redis.conf"],
        ports: [{ name: "redis", containerPort: REDIS_PORT, protocol: "TCP" }],
        readinessProbe: probe({ periodSeconds: 5, failureThreshold: 3 }),
        livenessProbe: probe({ periodSeconds: 20, failureThreshold: 3 }),
        resources: containerResources(resources),
        securityContext: nonRootContainerSecurity(REDIS_UID),
        volumeMounts: [
          { name: "config", mountPath: "/config", readOnly: true },
          { name: "data", mountPath: "/data" },
        ],
      },
    ],
    volumes: [
      { name: "config", secret: { secretName: REDIS_NAME, defaultMode: 0o440 } },
      { name: "data", emptyDir: { sizeLimit: "64Mi" } },
    ],
  };
}
