import type { Logger } from "pino";
import { abortableSleep, type MatrixClient, seg } from "../matrix/client.ts";
import { DEFAULT_RETRY, type RetryPolicy, retryDecision } from "../matrix/retry.ts";
import { messages } from "../matrix/rooms.ts";
import type { RawEvent, SyncResponse } from "../matrix/types.ts";
import type { EventStore } from "../store/store.ts";
import { CONVERSATION_STATE_TYPE, type Conversations } from "./conversations.ts";
import { type BridgeEvent, convertEvent } from "./events.ts";
import { MESSAGE_EVENT_FILTER } from "./messages.ts";

export interface SyncLoopOptions {
  client: MatrixClient;
  store: EventStore;
  conversations: Conversations;
  serverName: string;
  logger: Logger;
  /** Long-poll timeout of each `/sync`. */
  pollTimeoutMs?: number;
  /** Timeline events per room per sync; a busier room comes back `limited` and is back-filled. */
  timelineLimit?: number;
  /** Events per `/messages` page when back-filling a gap (each page is committed on its own). */
  backfillPageSize?: number;
  /** Called after each commit that logged new events (wakes consumers reading the log). */
  onCommitted?: (inserted: number) => void;
  /** Retries of a failing sync: forever, with capped backoff. */
  retry?: Omit<RetryPolicy, "maxAttempts">;
}

/** The sync filter: only conversation messages and redactions, few members, no presence or account data. */
export function syncFilter(timelineLimit: number) {
  return {
    presence: { not_types: ["*"] },
    account_data: { not_types: ["*"] },
    room: {
      timeline: { limit: timelineLimit, types: ["m.room.message", "m.room.redaction"] },
      // The conversation state comes with a room's first sync, which saves a request per room at start-up.
      state: { lazy_load_members: true, types: [CONVERSATION_STATE_TYPE] },
      ephemeral: { not_types: ["*"] },
      account_data: { not_types: ["*"] },
    },
  };
}

/**
 * Follows `/sync` as the service user and appends every conversation message, edit and deletion to the event log,
 * exactly once and in room order, across restarts:
 * - each sync's events and its `next_batch` are committed in one transaction (a crash re-fetches, the log
 *   de-duplicates by event id);
 * - a `limited` timeline is back-filled with `/messages` from the previous token before its newer events;
 * - a malformed or unknown event is logged and skipped; failures retry with capped backoff, forever.
 * Only one sync's events are in memory at a time.
 */
export class SyncLoop {
  readonly #options: SyncLoopOptions;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #filterId: string | undefined;
  #synced = false;
  #lastSyncAt: number | undefined;

  constructor(options: SyncLoopOptions) {
    this.#options = options;
  }

  start(): void {
    this.#running ??= this.#run().catch((error: unknown) => {
      if (!this.#abort.signal.aborted) this.#options.logger.fatal({ err: error }, "sync loop stopped");
    });
  }

  /** Stops after the request in flight; a commit in progress completes. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error("sync loop stopped"));
    await this.#running;
  }

  /** Whether at least one sync has been committed since start. */
  get caughtUp(): boolean {
    return this.#synced;
  }

  /** When the last sync round was committed (ms since the epoch), for the service's lag metric and readiness. */
  get lastSyncAt(): number | undefined {
    return this.#lastSyncAt;
  }

  async #run(): Promise<void> {
    const { logger } = this.#options;
    const signal = this.#abort.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.syncOnce(signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        failures++;
        const policy = { ...DEFAULT_RETRY, ...this.#options.retry, maxAttempts: Number.POSITIVE_INFINITY };
        const decision = retryDecision(error, failures, policy);
        // Anything else (a 4xx, a database error) is retried too: the loop must not die; it backs off instead.
        const delayMs = decision.retry ? decision.delayMs : Math.min(policy.maxDelayMs, 1000 * failures);
        // A restart of the homeserver is routine; only a long outage is an error.
        const level = failures >= 5 ? "error" : "warn";
        logger[level]({ err: error, failures, delayMs }, "sync failed; retrying");
        await abortableSleep(delayMs, signal).catch(() => {});
      }
    }
  }

  /** One `/sync` round: fetch, back-fill gaps, convert, commit. Exposed for tests. */
  async syncOnce(signal?: AbortSignal): Promise<number> {
    const { client, store, logger } = this.#options;
    const since = await store.syncToken();
    const filter = await this.#filter(signal);
    const pollTimeout = this.#options.pollTimeoutMs ?? 30_000;
    const response = await client.get<SyncResponse>("/sync", {
      query: { filter, timeout: since ? pollTimeout : 0, ...(since ? { since } : {}) },
      timeoutMs: pollTimeout + 30_000,
      retry: false,
      ...(signal ? { signal } : {}),
    });
    const events: BridgeEvent[] = [];
    let inserted = 0;
    for (const [roomId, room] of Object.entries(response.rooms?.join ?? {})) {
      for (const state of room.state?.events ?? [])
        if (state.type === CONVERSATION_STATE_TYPE && state.state_key === "")
          this.#options.conversations.remember(roomId, state.content);
      const timeline = room.timeline ?? {};
      const raw: RawEvent[] = timeline.events ?? [];
      const gapFrom = timeline.limited && timeline.prev_batch ? since : undefined;
      if (raw.length === 0 && !gapFrom) continue;
      const conversation = await this.#options.conversations.byRoom(roomId);
      if (!conversation) continue;
      if (gapFrom && timeline.prev_batch) {
        // The gap goes in first, page by page (memory stays one page); the token is committed only with the
        // timeline below, so a crash in between replays the gap and the log drops what it already has.
        let backfilled = 0;
        for await (const page of this.#gap(roomId, gapFrom, timeline.prev_batch, signal)) {
          inserted += await store.commitSync(
            this.#convert(roomId, conversation.conversationId, page),
            undefined,
          );
          backfilled += page.length;
        }
        logger.info({ roomId, backfilled }, "filled a limited timeline's gap");
      }
      events.push(...this.#convert(roomId, conversation.conversationId, raw));
    }
    inserted += await store.commitSync(events, response.next_batch);
    this.#synced = true;
    this.#lastSyncAt = Date.now();
    if (inserted > 0) {
      logger.debug({ inserted }, "logged events");
      this.#options.onCommitted?.(inserted);
    }
    return inserted;
  }

  /** The events between the previous sync token and a limited timeline's start, oldest first, a page at a time. */
  async *#gap(
    roomId: string,
    since: string,
    prevBatch: string,
    signal?: AbortSignal,
  ): AsyncGenerator<RawEvent[]> {
    let from: string | undefined = since;
    while (from) {
      const page = await messages(
        this.#options.client,
        roomId,
        {
          dir: "f",
          from,
          to: prevBatch,
          limit: this.#options.backfillPageSize ?? 100,
          filter: MESSAGE_EVENT_FILTER,
        },
        signal,
      );
      if (page.chunk.length === 0) return;
      yield page.chunk;
      from = page.end;
    }
  }

  #convert(roomId: string, conversationId: string, raw: readonly RawEvent[]): BridgeEvent[] {
    const { logger, serverName } = this.#options;
    const events: BridgeEvent[] = [];
    for (const event of raw) {
      const result = convertEvent(event, conversationId, serverName);
      if (result.kind === "event") events.push(result.event);
      else if (result.kind === "malformed")
        logger.warn({ roomId, eventId: event.event_id, reason: result.reason }, "skipped a malformed event");
      else logger.debug({ roomId, eventId: event.event_id, reason: result.reason }, "ignored an event");
    }
    return events;
  }

  async #filter(signal?: AbortSignal): Promise<string> {
    if (this.#filterId) return this.#filterId;
    const { client } = this.#options;
    const { filter_id } = await client.post<{ filter_id: string }>(
      `/user/${seg(client.serviceUser)}/filter`,
      syncFilter(this.#options.timelineLimit ?? 10),
      signal ? { signal } : {},
    );
    this.#filterId = filter_id;
    return filter_id;
  }
}
