// The service's own settings (beyond the MATRIX_* ones the core reads): validated, errors name the variable and
// never include a value.
import { z } from "zod";
import { ConfigError } from "../config/config.ts";
import { Secret } from "../config/secret.ts";
import type { RetentionPolicy } from "../store/store.ts";
import type { ServiceLimits } from "./context.ts";
import type { HeartbeatTiming } from "./sync-lock.ts";

export interface ServiceSettings {
  apiToken: Secret;
  signingKey: Secret;
  host: string;
  port: number;
  metricsPort: number | undefined;
  syncPollMs: number | undefined;
  /** Events per /messages page when the sync loop fills a limited timeline's gap (BRIDGE_BACKFILL_PAGE_SIZE). */
  backfillPageSize: number | undefined;
  /** The API reference at /v1/docs and the console at /console (BRIDGE_DEV_PAGES=true). */
  devPages: boolean;
  /** During a rotation of BRIDGE_WS_SIGNING_KEY: the previous key, still accepted for user tokens. */
  previousSigningKey: Secret | undefined;
  /**
   * The limits set in the environment (the others keep their defaults, DEFAULT_LIMITS), the upload size
   * (BRIDGE_MAX_UPLOAD_BYTES: the Deployment sets Synapse's `max_upload_size`, so the two agree) among them.
   */
  limits: Partial<ServiceLimits>;
  /** Each request to Synapse is given up after this long (BRIDGE_MATRIX_TIMEOUT_MS). */
  matrixTimeoutMs: number | undefined;
  /** BRIDGE_LOCK_HEARTBEAT_MS, BRIDGE_LOCK_HEARTBEAT_TIMEOUT_MS: how the sync lock's connection is watched. */
  lockHeartbeat: Partial<HeartbeatTiming>;
  /** How often a standby replica tries the sync lock (BRIDGE_LOCK_RETRY_MS). */
  lockRetryMs: number | undefined;
  /**
   * What is kept how long (BRIDGE_IDEMPOTENCY_RETENTION_DAYS, BRIDGE_EVENT_LOG_RETENTION_DAYS) and in how large
   * deletes (BRIDGE_PRUNE_BATCH_SIZE); the others keep DEFAULT_RETENTION's.
   */
  retention: Partial<RetentionPolicy>;
  /** How often the active replica prunes (BRIDGE_PRUNE_INTERVAL_MS). */
  pruneIntervalMs: number | undefined;
}

const DAY_MS = 86_400_000;

const secret = z
  .string({ error: "is required" })
  .min(32, { error: "must be at least 32 characters (a generated secret)" });
const port = z
  .string()
  .regex(/^\d{1,5}$/, { error: "expected a port number" })
  .transform(Number)
  .pipe(z.number().int().min(0).max(65_535, { error: "expected a port number" }));

const positive = (what: string) =>
  z
    .string()
    .regex(/^[1-9]\d{0,9}$/, { error: `expected ${what} (a positive integer)` })
    .transform(Number)
    .optional();

/** The limits' variables (documented in the README's "Limits" table), each optional. */
const LIMIT_VARIABLES = {
  BRIDGE_RATE_LIMIT_SERVICE_PER_MINUTE: "serviceRequestsPerMinute",
  BRIDGE_RATE_LIMIT_USER_PER_MINUTE: "userRequestsPerMinute",
  BRIDGE_WS_MAX_PER_USER: "wsMaxPerUser",
  BRIDGE_WS_MAX_CONNECTIONS: "wsMaxConnections",
  BRIDGE_WS_WINDOW_BYTES: "wsWindowBytes",
  BRIDGE_USER_TOKEN_MAX_TTL_SECONDS: "userTokenMaxTtlSeconds",
  BRIDGE_MAX_UPLOAD_BYTES: "uploadBodyBytes",
} as const satisfies Record<string, keyof ServiceLimits>;

const schema = z.object({
  BRIDGE_WS_SIGNING_KEY_PREVIOUS: secret.optional(),
  BRIDGE_MATRIX_TIMEOUT_MS: positive("milliseconds"),
  BRIDGE_LOCK_HEARTBEAT_MS: positive("milliseconds"),
  BRIDGE_LOCK_HEARTBEAT_TIMEOUT_MS: positive("milliseconds"),
  BRIDGE_LOCK_RETRY_MS: positive("milliseconds"),
  BRIDGE_IDEMPOTENCY_RETENTION_DAYS: positive("days"),
  BRIDGE_EVENT_LOG_RETENTION_DAYS: positive("days"),
  BRIDGE_PRUNE_INTERVAL_MS: positive("milliseconds"),
  BRIDGE_PRUNE_BATCH_SIZE: positive("rows per delete"),
  BRIDGE_RATE_LIMIT_SERVICE_PER_MINUTE: positive("requests per minute"),
  BRIDGE_RATE_LIMIT_USER_PER_MINUTE: positive("requests per minute"),
  BRIDGE_WS_MAX_PER_USER: positive("connections"),
  BRIDGE_WS_MAX_CONNECTIONS: positive("connections"),
  BRIDGE_WS_WINDOW_BYTES: positive("bytes"),
  BRIDGE_USER_TOKEN_MAX_TTL_SECONDS: positive("seconds"),
  BRIDGE_API_TOKEN: secret,
  BRIDGE_WS_SIGNING_KEY: secret,
  BRIDGE_HOST: z.string().min(1).default("0.0.0.0"),
  BRIDGE_PORT: port.default(8080),
  BRIDGE_METRICS_PORT: port.optional(),
  BRIDGE_SYNC_POLL_MS: z
    .string()
    .regex(/^\d+$/, { error: "expected milliseconds" })
    .transform(Number)
    .optional(),
  BRIDGE_BACKFILL_PAGE_SIZE: positive("events per page"),
  BRIDGE_MAX_UPLOAD_BYTES: z
    .string()
    .regex(/^[1-9]\d{0,12}$/, { error: "expected a number of bytes, such as 52428800 (50 MiB)" })
    .transform(Number)
    .optional(),
  BRIDGE_DEV_PAGES: z
    .enum(["true", "false"], { error: 'expected "true" or "false"' })
    .default("false")
    .transform((value) => value === "true"),
});

export function serviceSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceSettings {
  const picked = Object.fromEntries(
    Object.keys(schema.shape).map((key) => [key, env[key] === "" ? undefined : env[key]]),
  );
  const result = schema.safeParse(picked);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid bridge service settings from the environment:\n${lines.join("\n")}`);
  }
  const value = result.data;
  return {
    apiToken: new Secret(value.BRIDGE_API_TOKEN),
    signingKey: new Secret(value.BRIDGE_WS_SIGNING_KEY),
    host: value.BRIDGE_HOST,
    port: value.BRIDGE_PORT,
    metricsPort: value.BRIDGE_METRICS_PORT,
    syncPollMs: value.BRIDGE_SYNC_POLL_MS,
    backfillPageSize: value.BRIDGE_BACKFILL_PAGE_SIZE,
    devPages: value.BRIDGE_DEV_PAGES,
    previousSigningKey:
      value.BRIDGE_WS_SIGNING_KEY_PREVIOUS === undefined
        ? undefined
        : new Secret(value.BRIDGE_WS_SIGNING_KEY_PREVIOUS),
    limits: Object.fromEntries(
      Object.entries(LIMIT_VARIABLES).flatMap(([variable, limit]) => {
        const set = value[variable as keyof typeof LIMIT_VARIABLES];
        return set === undefined ? [] : [[limit, set]];
      }),
    ),
    matrixTimeoutMs: value.BRIDGE_MATRIX_TIMEOUT_MS,
    lockHeartbeat: {
      ...(value.BRIDGE_LOCK_HEARTBEAT_MS ? { heartbeatMs: value.BRIDGE_LOCK_HEARTBEAT_MS } : {}),
      ...(value.BRIDGE_LOCK_HEARTBEAT_TIMEOUT_MS
        ? { heartbeatTimeoutMs: value.BRIDGE_LOCK_HEARTBEAT_TIMEOUT_MS }
        : {}),
    },
    lockRetryMs: value.BRIDGE_LOCK_RETRY_MS,
    retention: {
      ...(value.BRIDGE_IDEMPOTENCY_RETENTION_DAYS
        ? { sendRecordsMs: value.BRIDGE_IDEMPOTENCY_RETENTION_DAYS * DAY_MS }
        : {}),
      ...(value.BRIDGE_EVENT_LOG_RETENTION_DAYS
        ? { eventLogMs: value.BRIDGE_EVENT_LOG_RETENTION_DAYS * DAY_MS }
        : {}),
      ...(value.BRIDGE_PRUNE_BATCH_SIZE ? { batchSize: value.BRIDGE_PRUNE_BATCH_SIZE } : {}),
    },
    pruneIntervalMs: value.BRIDGE_PRUNE_INTERVAL_MS,
  };
}
