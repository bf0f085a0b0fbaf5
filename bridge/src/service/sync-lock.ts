// One active bridge per database: a session-level Postgres advisory lock held on its own connection for the life
// of the process. A second replica (a rolling update, a scale-up) waits here and never runs a second sync loop;
// if the lock's connection drops, the holder can no longer be sure it is alone and must stop.
import pg from "pg";
import type { Logger } from "pino";

/** An arbitrary constant key (distinct from the store's migration lock). */
export const SYNC_LOCK_KEY = 4_716_002;

export interface SyncLock {
  release(): Promise<void>;
}

export interface AcquireOptions {
  databaseUrl: string;
  logger: Logger;
  /** How often a waiting replica retries. */
  retryMs?: number;
  /** Called if the lock is lost (its connection ended) while held. */
  onLost: (error: Error) => void;
  signal?: AbortSignal;
}

export async function acquireSyncLock(options: AcquireOptions): Promise<SyncLock> {
  const retryMs = options.retryMs ?? 2000;
  let waitingLogged = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const client = new pg.Client({ connectionString: options.databaseUrl });
    client.on("error", () => {});
    await client.connect();
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1) AS locked", [
      SYNC_LOCK_KEY,
    ]);
    if (rows[0]?.locked) {
      let released = false;
      client.on("end", () => {
        if (!released) options.onLost(new Error("the sync lock's database connection ended"));
      });
      client.on("error", (error) => {
        if (!released) options.onLost(error);
      });
      options.logger.info("holding the sync lock: this replica is the active bridge");
      return {
        async release() {
          released = true;
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
