import { SERVICE_LOCALPART } from "@nova-matrix/contracts";
import pino, { type Logger } from "pino";
import type { EnabledConfig } from "./config/config.ts";
import { Authors, type DropReason } from "./core/authors.ts";
import { Conversations } from "./core/conversations.ts";
import { Media } from "./core/media.ts";
import { Messages } from "./core/messages.ts";
import { SyncLoop, type SyncLoopOptions } from "./core/sync-loop.ts";
import { MatrixClient } from "./matrix/client.ts";
import type { RetryPolicy } from "./matrix/retry.ts";
import { checkServiceUser, GhostRegistry } from "./matrix/users.ts";
import { PostgresEventStore } from "./store/postgres.ts";
import type { EventStore, MediaIndex, SentLog, SyncFencedError } from "./store/store.ts";

const isMediaIndex = (store: EventStore): store is EventStore & MediaIndex =>
  typeof (store as Partial<MediaIndex>).mediaConversations === "function" &&
  typeof (store as Partial<MediaIndex>).recordMedia === "function";

const NO_MEDIA: MediaIndex = { recordMedia: async () => {}, mediaConversations: async () => [] };

const isSentLog = (store: EventStore): store is EventStore & SentLog =>
  typeof (store as Partial<SentLog>).recordAttempt === "function" &&
  typeof (store as Partial<SentLog>).recordSent === "function";

export interface BridgeOptions {
  config: EnabledConfig;
  /** The bridge's own database: a `postgres://` URL (secret) or a ready store. */
  store: string | EventStore;
  logger?: Logger;
  /** Run the sync loop (exactly one process per database should). Default true. */
  sync?: boolean;
  retry?: RetryPolicy;
  syncTuning?: Pick<
    SyncLoopOptions,
    "pollTimeoutMs" | "requestGraceMs" | "timelineLimit" | "backfillPageSize"
  >;
  /** Each request to Synapse is given up after this long (default 30 s; the sync long-poll has its own). */
  matrixTimeoutMs?: number;
  /** How long a conversation's member list may be reused (default MEMBERS_TTL_MS; member events forget it sooner). */
  membersTtlMs?: number;
  /** Hears of each Matrix event that did not become a bridge event, and why (the service counts them). */
  onDropped?: (reason: DropReason) => void;
  /** The sync loop stopped because another replica owns the event log (a fenced store): stop the process. */
  onFenced?: (error: SyncFencedError) => void;
}

/** The bridge, started: the typed API plus the event log it fills. */
export interface Bridge {
  readonly conversations: Conversations;
  readonly messages: Messages;
  /** Who may read a media item, and its bytes. */
  readonly media: Media;
  /** The event log: read with a cursor, resume from the last position seen. */
  readonly store: EventStore;
  /** Registers a listener woken after new events are logged (with how many). Returns an unsubscribe function. */
  onEvents(listener: (inserted: number) => void): () => void;
  /** The sync loop's state, for readiness and the lag metric (the HTTP service reads it). */
  syncStatus(): SyncStatus;
  /** Stops the sync loop and closes the store (when the bridge opened it). */
  stop(): Promise<void>;
}

export interface SyncStatus {
  /** Whether this process runs the sync loop. */
  running: boolean;
  /** At least one sync round committed since start. */
  caughtUp: boolean;
  /** When the last round was committed (ms since the epoch). */
  lastSyncAt: number | undefined;
  /** The long-poll timeout: a quiet round takes this long, so it is not lag. */
  pollTimeoutMs: number;
}

/**
 * Cloud Logging's `severity` for each pino level: GKE collects the container's stdout, and a JSON line without a
 * `severity` it knows is filed as DEFAULT (or, on stderr, ERROR).
 */
export const CLOUD_LOGGING_SEVERITY: Readonly<Record<string, string>> = {
  trace: "DEBUG",
  debug: "DEBUG",
  info: "INFO",
  warn: "WARNING",
  error: "ERROR",
  fatal: "CRITICAL",
};

/**
 * A logger with the settings' secret fields redacted, writing JSON lines Cloud Logging reads: `severity` beside
 * pino's numeric `level`, and `time` as an RFC 3339 timestamp (Cloud Logging takes it as the entry's time).
 */
export function createLogger(options: pino.LoggerOptions = {}): Logger {
  return pino({
    name: "nova-bridge",
    level: process.env.LOG_LEVEL ?? "info",
    redact: ["accessToken", "*.accessToken", "password", "*.password", "databaseUrl"],
    formatters: {
      level: (label, number) => ({ level: number, severity: CLOUD_LOGGING_SEVERITY[label] ?? "DEFAULT" }),
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...options,
  });
}

/**
 * Start-up: checks the homeserver and the token (registering the service user if needed), migrates the store, and
 * starts the sync loop. Fails fast with {@link HomeserverUnreachableError} or {@link TokenRejectedError}.
 */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const { config } = options;
  const logger = options.logger ?? createLogger();
  const client = new MatrixClient({
    homeserverUrl: config.homeserverUrl,
    accessToken: config.accessToken,
    serviceUser: config.serviceUser,
    logger,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.matrixTimeoutMs ? { requestTimeoutMs: options.matrixTimeoutMs } : {}),
  });
  const localpart = config.serviceUser.slice(1, config.serviceUser.indexOf(":"));
  if (localpart !== SERVICE_LOCALPART)
    logger.warn({ serviceUser: config.serviceUser }, `service user is not @${SERVICE_LOCALPART}`);
  await checkServiceUser(client, config.homeserverUrl, localpart, logger);

  const ownsStore = typeof options.store === "string";
  const store = typeof options.store === "string" ? new PostgresEventStore(options.store) : options.store;
  await store.migrate();

  const ghosts = new GhostRegistry(client);
  const conversations = new Conversations({
    client,
    ghosts,
    serverName: config.serverName,
    logger,
    ...(options.membersTtlMs ? { membersTtlMs: options.membersTtlMs } : {}),
  });
  const sentLog = isSentLog(store) ? store : undefined;
  const mediaIndex = isMediaIndex(store) ? store : undefined;
  const authors = new Authors({ client, serverName: config.serverName });
  const onDropped = (reason: DropReason) => options.onDropped?.(reason);
  const messages = new Messages({
    client,
    authors,
    onDropped: (_event, reason) => onDropped(reason),
    ghosts,
    conversations,
    serverName: config.serverName,
    logger,
    ...(sentLog ? { sentLog } : {}),
    ...(mediaIndex ? { mediaIndex } : {}),
  });
  // A store without a media index knows no media: every media item is refused as unknown.
  const media = new Media({ client, conversations, index: mediaIndex ?? NO_MEDIA });
  const listeners = new Set<(inserted: number) => void>();
  const loop =
    options.sync === false
      ? undefined
      : new SyncLoop({
          client,
          store,
          conversations,
          serverName: config.serverName,
          logger,
          authors,
          onDropped,
          ...(options.onFenced ? { onFenced: options.onFenced } : {}),
          onCommitted: (inserted) => {
            for (const listener of listeners) listener(inserted);
          },
          ...options.syncTuning,
        });
  loop?.start();
  logger.info(
    { homeserver: config.homeserverUrl, user: config.serviceUser, sync: loop !== undefined },
    "bridge started",
  );
  return {
    conversations,
    messages,
    media,
    store,
    onEvents(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    syncStatus() {
      return {
        running: loop !== undefined,
        caughtUp: loop?.caughtUp ?? false,
        lastSyncAt: loop?.lastSyncAt,
        pollTimeoutMs: options.syncTuning?.pollTimeoutMs ?? 30_000,
      };
    },
    async stop() {
      await loop?.stop();
      if (ownsStore) await store.close();
    },
  };
}
