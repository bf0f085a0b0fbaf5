// The service's life cycle, shared by the process entry point (main.ts), `npm run local` and the tests:
// standby (healthz up, not ready) until this replica holds the sync lock, then the bridge and its API.

import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { serializerCompiler } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import { type Bridge, startBridge } from "../bridge.ts";
import type { BridgeConfig } from "../config/config.ts";
import type { Secret } from "../config/secret.ts";
import { claimSyncEpoch, PostgresEventStore } from "../store/postgres.ts";
import { type RetentionPolicy, SyncFencedError } from "../store/store.ts";
import { buildService, type Service, type ServiceLimits } from "./app.ts";
import { metricsRoutes } from "./plugins/health.ts";
import { DEFAULT_PRUNE_INTERVAL_MS, DEFAULT_RETENTION, startPruning } from "./pruner.ts";
import { acquireSyncLock, type HeartbeatTiming, type SyncLock } from "./sync-lock.ts";

export interface RunOptions {
  config: BridgeConfig;
  /** The bridge's own database (secret); required when enabled. */
  databaseUrl: string | undefined;
  /** The sync lock's connection, when it takes another route to the same database (default: `databaseUrl`). */
  lockDatabaseUrl?: string;
  /** How the lock's connection is watched (default: a heartbeat every 5 s, 5 s to answer). */
  lockHeartbeat?: Partial<HeartbeatTiming>;
  apiToken: Secret;
  signingKey: Secret;
  /** During a rotation: the previous signing key, still accepted. */
  previousSigningKey?: Secret;
  /** Each request to Synapse is given up after this long (default 30 s). */
  matrixTimeoutMs?: number;
  host: string;
  port: number;
  /** A second listener with only GET /metrics (what the scrapers and NetworkPolicies target); undefined: none. */
  metricsPort?: number;
  logger: Logger;
  limits?: Partial<ServiceLimits>;
  /** The API reference at /v1/docs and the console at /console. */
  devPages?: boolean;
  syncPollMs?: number;
  /** Events per /messages page when filling a limited timeline's gap (default 100). */
  backfillPageSize?: number;
  lockRetryMs?: number;
  /** What is kept how long (default DEFAULT_RETENTION), and how often the active replica prunes (default hourly). */
  retention?: Partial<RetentionPolicy>;
  pruneIntervalMs?: number;
  /**
   * The lock was lost while running, or a commit found another replica's epoch (the sync loop has stopped): the
   * caller must stop (main.ts exits so Kubernetes restarts it).
   */
  onLockLost?: (error: Error) => void;
}

export interface RunningService {
  /** `http://host:port` */
  url: string;
  /** The /metrics-only listener's URL, when one was asked for. */
  metricsUrl: string | undefined;
  /** Resolves once this replica is active (holds the lock, bridge started). */
  active: Promise<void>;
  stop(): Promise<void>;
}

export async function runService(options: RunOptions): Promise<RunningService> {
  const { config, logger } = options;
  const base = {
    metricsOnApiPort: options.metricsPort === undefined,
    devPages: options.devPages === true,
    apiToken: options.apiToken,
    signingKey: options.signingKey,
    ...(options.previousSigningKey ? { previousSigningKey: options.previousSigningKey } : {}),
    logger,
    ...(options.limits ? { limits: options.limits } : {}),
  };
  if (!config.enabled) {
    logger.info({ status: "disabled" }, "Matrix integration disabled (MATRIX_ENABLED is not true)");
    const idle = await buildService({ ...base, idle: "disabled" });
    const url = await idle.app.listen({ host: options.host, port: options.port });
    return { url, metricsUrl: undefined, active: Promise.resolve(), stop: () => idle.close() };
  }
  const databaseUrl = options.databaseUrl;
  if (!databaseUrl)
    throw new Error("BRIDGE_DATABASE_URL: is required (a postgres:// URL of the bridge's own database)");

  // Standby: answers /healthz, and /readyz and /v1 with 503, until the lock is ours.
  const service = await buildService({ ...base, idle: "standby" });
  const url = await service.app.listen({ host: options.host, port: options.port });
  const metricsServer =
    options.metricsPort === undefined
      ? undefined
      : await serveMetrics(service, options.host, options.metricsPort);
  const abort = new AbortController();
  let lock: SyncLock | undefined;
  let bridge: Bridge | undefined;
  let stopped = false;

  let store: PostgresEventStore | undefined;
  let pruner: ReturnType<typeof startPruning> | undefined;
  const lost = (error: Error) => {
    if (error instanceof SyncFencedError) service.metrics.syncFenced.inc();
    logger.error({ err: error }, "lost the sync lock");
    // Whatever the caller does next, this replica writes no more events and prunes no more.
    void bridge?.stop();
    void pruner?.stop();
    options.onLockLost?.(error);
  };

  const active = (async () => {
    lock = await acquireSyncLock({
      databaseUrl: options.lockDatabaseUrl ?? databaseUrl,
      logger,
      signal: abort.signal,
      ...(options.lockRetryMs ? { retryMs: options.lockRetryMs } : {}),
      ...(options.lockHeartbeat ? { heartbeat: options.lockHeartbeat } : {}),
      onLost: lost,
    });
    if (stopped) {
      await lock.release();
      return;
    }
    // The owner table must exist before the claim; the claim runs on the lock's connection, so it happens only
    // while the lock is held, and every commit of the log checks it (fencing a replica that has not noticed yet).
    store = new PostgresEventStore(databaseUrl);
    await store.migrate();
    const epoch = await lock.onLockConnection(claimSyncEpoch);
    store.fence(epoch);
    logger.info({ epoch }, "claimed the event log");
    bridge = await startBridge({
      config,
      store,
      logger,
      onDropped: (reason) => service.metrics.eventsDropped.inc({ reason }),
      onFenced: lost,
      ...(options.matrixTimeoutMs ? { matrixTimeoutMs: options.matrixTimeoutMs } : {}),
      syncTuning: {
        ...(options.syncPollMs ? { pollTimeoutMs: options.syncPollMs } : {}),
        ...(options.backfillPageSize ? { backfillPageSize: options.backfillPageSize } : {}),
      },
    });
    service.activate(bridge, config.homeserverUrl);
    pruner = startPruning({
      store,
      policy: { ...DEFAULT_RETENTION, ...options.retention },
      intervalMs: options.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS,
      logger,
      onPruned: (pruned) => {
        service.metrics.pruned.inc({ table: "bridge_event_log" }, pruned.events);
        service.metrics.pruned.inc({ table: "bridge_sent" }, pruned.sent);
        service.metrics.pruned.inc({ table: "bridge_send_attempts" }, pruned.attempts);
      },
    });
    logger.info({ url }, "bridge service active");
  })();
  active.catch((error: unknown) => {
    if (!stopped) logger.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
  });

  const metricsAddress = metricsServer?.server.address() as AddressInfo | undefined;
  return {
    url,
    metricsUrl: metricsAddress ? `http://${options.host}:${metricsAddress.port}` : undefined,
    active,
    async stop() {
      stopped = true;
      abort.abort();
      await active.catch(() => {});
      await service.close();
      await metricsServer?.close();
      await pruner?.stop();
      await bridge?.stop();
      await store?.close();
      await lock?.release();
    },
  };
}

async function serveMetrics(service: Service, host: string, port: number): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  // The route's schema is zod, as on the API's port.
  app.setSerializerCompiler(serializerCompiler);
  await app.register(metricsRoutes, { metrics: service.metrics });
  await app.listen({ host, port });
  return app;
}
