// What the service's plugins share: the active bridge (or why there is none), the limits, metrics and logger.
import type { Logger } from "pino";
import type { Bridge } from "../bridge.ts";
import type { Secret } from "../config/secret.ts";
import { ApiError } from "./errors.ts";
import type { EventFeed } from "./event-feed.ts";
import type { ServiceMetrics } from "./metrics.ts";

export interface ServiceLimits {
  /** JSON request bodies. */
  jsonBodyBytes: number;
  /**
   * Upload bodies: the homeserver's `max_upload_size` (BRIDGE_MAX_UPLOAD_BYTES, set from the stack's
   * `synapse.maxUploadSize`; its `m.upload.size` is checked too). A body is held in memory while it is typed and
   * uploaded.
   */
  uploadBodyBytes: number;
  /** A WebSocket client whose unsent data exceeds this is closed (it resumes by cursor). */
  wsMaxBufferedBytes: number;
  /** Server pings; a client that missed the previous pong is dropped. */
  wsPingIntervalMs: number;
  /** Events read from the log per page. */
  wsPageSize: number;
  /** While sockets are open, the event feed also reads the log this often (events logged by another process). */
  wsPollIntervalMs: number;
  /** The event feed keeps the newest events up to this many bytes in memory; a socket further behind reads the log. */
  wsWindowBytes: number;
  /** /readyz fails when the sync loop trails by more than this. */
  readyMaxLagSeconds: number;
  /** Default lifetime of user tokens minted by POST /v1/user-tokens. */
  userTokenTtlSeconds: number;
  /** A user token whose `exp` lies further ahead is refused (401), whoever signed it. */
  userTokenMaxTtlSeconds: number;
  /** Requests per minute per token: the service's API token, and each user (429 + Retry-After beyond). */
  serviceRequestsPerMinute: number;
  userRequestsPerMinute: number;
  /** Open WebSockets per user, and in this process (beyond: closed with 4029 and 1013). */
  wsMaxPerUser: number;
  wsMaxConnections: number;
}

export const DEFAULT_LIMITS: ServiceLimits = {
  jsonBodyBytes: 256 * 1024,
  uploadBodyBytes: 50 * 1024 * 1024,
  wsMaxBufferedBytes: 4 * 1024 * 1024,
  wsPingIntervalMs: 25_000,
  wsPageSize: 200,
  wsPollIntervalMs: 2_000,
  wsWindowBytes: 8 * 1024 * 1024,
  readyMaxLagSeconds: 60,
  userTokenTtlSeconds: 900,
  userTokenMaxTtlSeconds: 86_400,
  serviceRequestsPerMinute: 6_000,
  userRequestsPerMinute: 60,
  wsMaxPerUser: 5,
  wsMaxConnections: 10_000,
};

/** Why there is no bridge: MATRIX_ENABLED is not true, or another replica holds the sync lock. */
export type IdleReason = "disabled" | "standby";

export interface ServiceContext {
  limits: ServiceLimits;
  metrics: ServiceMetrics;
  logger: Logger;
  apiToken: Secret;
  /** The key new user tokens are signed with. */
  signingKey: Secret;
  /** The keys user tokens are accepted with: the current one, and the previous one during a rotation. */
  signingKeys: readonly Secret[];
  /** The active bridge, or undefined while idle. */
  bridge(): Bridge | undefined;
  /** The homeserver's URL (readiness checks it). */
  homeserverUrl(): string | undefined;
  idle: IdleReason | undefined;
  /** The active bridge's event feed (the one reader of its log), or undefined while idle. */
  feed(): EventFeed | undefined;
}

/** The active bridge, or the 503 that says why there is none (with how long to wait). */
export function liveBridge(context: ServiceContext): Bridge {
  return live(context, context.bridge());
}

/** The active bridge's event feed, or the same 503 as {@link liveBridge}. */
export function liveFeed(context: ServiceContext): EventFeed {
  return live(context, context.feed());
}

function live<T>(context: ServiceContext, value: T | undefined): T {
  if (value) return value;
  if (context.idle === "disabled")
    throw new ApiError(
      503,
      "unavailable",
      "the Matrix integration is disabled (MATRIX_ENABLED is not true)",
      {
        retryAfter: 60,
      },
    );
  throw new ApiError(503, "unavailable", "standby: another bridge replica is active", { retryAfter: 5 });
}
