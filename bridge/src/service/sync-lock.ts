// One active bridge per database: a session-level Postgres advisory lock held on its own connection for the life
// of the process. A second replica (a rolling update, a scale-up) waits here and never runs a second sync loop.
// The holder must know quickly when it may no longer be alone: the connection has TCP keepalive, and a heartbeat
// (a query with a timeout, every few seconds) fails as soon as the line goes silent; either means the lock is
// lost, and the process stops. The database's side is bounded too: the lock's session has an
// `idle_session_timeout` a little over the heartbeat's period, so a holder that went silent (partitioned, frozen,
// gone without a goodbye) loses the lock within seconds instead of when the server's TCP keepalive gives up
// (hours by default). Neither side can close the window between the database ending the session (and granting the
// lock to another replica) and the old holder noticing: the event log's commits are fenced by an owner epoch for
// that (`claimSyncEpoch` in the store).
import pg from "pg";
import type { Logger } from "pino";

/** An arbitrary constant key (distinct from the store's migration lock). */
export const SYNC_LOCK_KEY = 4_716_002;

export interface SyncLock {
  /** Runs `work` on the lock's own connection (what must happen only while the lock is held: claiming the epoch). */
  onLockConnection<T>(work: (client: pg.ClientBase) => Promise<T>): Promise<T>;
  release(): Promise<void>;
}

export interface HeartbeatTiming {
  /** How often the holder checks its lock connection (default 5 s). */
  heartbeatMs: number;
  /** A heartbeat not answered within this is a lost lock (default 5 s). */
  heartbeatTimeoutMs: number;
}

export const DEFAULT_HEARTBEAT: HeartbeatTiming = { heartbeatMs: 5000, heartbeatTimeoutMs: 5000 };

/**
 * How long the database keeps a silent holder's session (and so the lock): two missed heartbeats and the last one's
 * timeout (15 s by default). A holder that beats never comes near it.
 */
export const lockIdleTimeoutMs = (timing: HeartbeatTiming) =>
  2 * timing.heartbeatMs + timing.heartbeatTimeoutMs;

/** TCP keepalive's first probe after this much silence (then the kernel's interval and count). */
const KEEPALIVE_IDLE_MS = 10_000;

export interface AcquireOptions {
  /** The lock connection's database (the same database as the store's, possibly by another route). */
  databaseUrl: string;
  logger: Logger;
  /** How often a waiting replica retries. */
  retryMs?: number;
  heartbeat?: Partial<HeartbeatTiming>;
  /** Called once if the lock is lost (its connection ended, or a heartbeat failed or timed out) while held. */
  onLost: (error: Error) => void;
  signal?: AbortSignal;
}

export async function acquireSyncLock(options: AcquireOptions): Promise<SyncLock> {
  const retryMs = options.retryMs ?? 2000;
  const timing = { ...DEFAULT_HEARTBEAT, ...options.heartbeat };
  const { heartbeatMs, heartbeatTimeoutMs } = timing;
  let waitingLogged = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const client = new pg.Client({
      connectionString: options.databaseUrl,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    });
    client.on("error", () => {});
    await client.connect();
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1) AS locked", [
      SYNC_LOCK_KEY,
    ]);
    if (rows[0]?.locked) {
      await client.query("SELECT set_config('idle_session_timeout', $1, false)", [
        String(lockIdleTimeoutMs(timing)),
      ]);
      let done = false;
      let heartbeat: NodeJS.Timeout | undefined;
      const lost = (error: Error) => {
        if (done) return;
        done = true;
        clearInterval(heartbeat);
        // Not awaited: on a silent line the goodbye would wait for nothing.
        void client.end().catch(() => {});
        options.onLost(error);
      };
      client.on("end", () => lost(new Error("the sync lock's database connection ended")));
      client.on("error", lost);
      let beating = false;
      heartbeat = setInterval(() => {
        if (beating) return;
        beating = true;
        let timer: NodeJS.Timeout | undefined;
        const silence = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${heartbeatTimeoutMs} ms`)),
            heartbeatTimeoutMs,
          );
        });
        Promise.race([client.query("SELECT 1"), silence])
          .then(
            () => {},
            (error: Error) =>
              lost(
                new Error(`the sync lock's heartbeat failed (${error.message}): the lock may be another's`),
              ),
          )
          .finally(() => {
            clearTimeout(timer);
            beating = false;
          });
      }, heartbeatMs);
      options.logger.info("holding the sync lock: this replica is the active bridge");
      return {
        onLockConnection: (work) => work(client),
        async release() {
          if (done) return;
          done = true;
          clearInterval(heartbeat);
          await client.query("SELECT pg_advisory_unlock($1)", [SYNC_LOCK_KEY]).catch(() => {});
          await client.end().catch(() => {});
        },
      };
    }
    await client.end().catch(() => {});
    if (!waitingLogged) options.logger.info("another bridge holds the sync lock; waiting (standby)");
    waitingLogged = true;
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}
