// Bounded state: the active replica prunes the send records and the event log past their windows, periodically and
// in batches (`PostgresEventStore.prune`). Started only once the sync lock is held, so replicas never prune at once.
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { EventStore, Pruned, RetentionPolicy } from "../store/store.ts";

const DAY_MS = 86_400_000;

export const DEFAULT_RETENTION: RetentionPolicy = {
  sendRecordsMs: 7 * DAY_MS,
  eventLogMs: 30 * DAY_MS,
  batchSize: 1000,
};
export const DEFAULT_PRUNE_INTERVAL_MS = 3_600_000;

export interface PrunerOptions {
  store: Pick<EventStore, "prune">;
  policy: RetentionPolicy;
  intervalMs: number;
  logger: Logger;
  /** Hears of each run's deletions (the service counts them). */
  onPruned?: (pruned: Pruned) => void;
}

/** Prunes now, then every `intervalMs`, until stopped; a failed run is logged and tried again at the next. */
export function startPruning(options: PrunerOptions): { stop(): Promise<void> } {
  const { store, policy, intervalMs, logger } = options;
  const abort = new AbortController();
  const running = (async () => {
    while (!abort.signal.aborted) {
      try {
        const pruned = await store.prune(policy);
        options.onPruned?.(pruned);
        if (pruned.events + pruned.sent + pruned.attempts > 0) logger.info(pruned, "pruned old state");
      } catch (error) {
        if (abort.signal.aborted) return;
        logger.warn({ err: error }, "pruning old state failed; trying again at the next run");
      }
      await sleep(intervalMs, undefined, { signal: abort.signal }).catch(() => {});
    }
  })();
  return {
    async stop() {
      abort.abort();
      await running;
    },
  };
}
