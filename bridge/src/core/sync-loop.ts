import pMap from "p-map";
import type { Logger } from "pino";
import { abortableSleep, type MatrixClient, seg } from "../matrix/client.ts";
import { DEFAULT_RETRY, type RetryPolicy, retryDecision } from "../matrix/retry.ts";
import { messages } from "../matrix/rooms.ts";
import type { RawEvent, SyncResponse } from "../matrix/types.ts";
import { type EventStore, SyncFencedError } from "../store/store.ts";
import type { Authors, DropReason } from "./authors.ts";
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
  /**
   * How long a `/sync` may take beyond its long-poll before it is given up (a dead connection). Doubles after each
   * failure, up to 10 minutes, and is back after a success: a catch-up of thousands of rooms can take Synapse
   * minutes to compute, and a request given up too early would be cancelled and started over forever.
   */
  requestGraceMs?: number;
  /** Timeline events per room per sync; a busier room comes back `limited` and is back-filled. */
  timelineLimit?: number;
  /** Events per `/messages` page when back-filling a gap (each page is committed on its own). */
  backfillPageSize?: number;
  /** Who wrote which message: an edit by anyone but the author is dropped. */
  authors: Authors;
  /** Hears of each Matrix event that did not become a bridge event, and why. */
  onDropped?: (reason: DropReason) => void;
  /** Called after each commit that logged new events (wakes consumers reading the log). */
  onCommitted?: (inserted: number) => void;
  /**
   * Another replica owns the event log now ({@link SyncFencedError}): the loop has stopped without writing, and the
   * process must stop as for a lost lock.
   */
  onFenced?: (error: SyncFencedError) => void;
  /** Retries of a failing sync: forever, with capped backoff. */
  retry?: Omit<RetryPolicy, "maxAttempts">;
}

/**
 * The sync filter: conversation messages, redactions and member events (these only forget the cached member list),
 * the fields the bridge reads, no presence or account data.
 */
export function syncFilter(timelineLimit: number) {
  return {
    // Only what `convertEvent` and the conversation state read: `unsigned` and the rest would double the response.
    event_fields: ["type", "content", "sender", "event_id", "origin_server_ts", "redacts", "state_key"],
    presence: { not_types: ["*"] },
    account_data: { not_types: ["*"] },
    room: {
      timeline: { limit: timelineLimit, types: ["m.room.message", "m.room.redaction", MEMBER_EVENT_TYPE] },
      // A room joined after the start comes with its conversation state, which saves a request for it. No
      // lazy_load_members: the types leave members out anyway, and with it Synapse computes every timeline sender's
      // member state at each sync only to drop it (docs/performance.md, the sync-filter run).
      state: { types: [CONVERSATION_STATE_TYPE] },
      ephemeral: { not_types: ["*"] },
      account_data: { not_types: ["*"] },
    },
  };
}

const MEMBER_EVENT_TYPE = "m.room.member";

const DEFAULT_GRACE_MS = 30_000;
const MAX_GRACE_MS = 600_000;

/** Conversation lookups in flight at once for rooms the loop has not seen since it started. */
const ROOM_LOOKUP_CONCURRENCY = 8;

/**
 * The first start's filter: no rooms at all. Its only use is the `next_batch` it returns, the position the log starts
 * from; a full initial sync would cost a request that grows with every room (minutes at 10,000 rooms on a cold
 * Synapse, past the request timeout) and a response held in memory at once, for events older than the bridge.
 */
export const POSITION_ONLY_FILTER = {
  presence: { not_types: ["*"] },
  account_data: { not_types: ["*"] },
  room: { rooms: [] as string[] },
};

/**
 * Follows `/sync` as the service user and appends every conversation message, edit and deletion to the event log,
 * exactly once and in room order, across restarts:
 * - each sync's events and its `next_batch` are committed in one transaction (a crash re-fetches, the log
 *   de-duplicates by event id);
 * - a `limited` timeline is back-filled with `/messages` from the previous token before its newer events;
 * - a malformed or unknown event is logged and skipped; failures retry with capped backoff, forever;
 * - the first start (no token yet) only takes the current position: the log begins there, and what came before is
 *   history (`/messages`), as it is for a front end. Rooms become known as their events arrive.
 * Only one sync's events are in memory at a time.
 */
export class SyncLoop {
  readonly #options: SyncLoopOptions;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #filterId: string | undefined;
  /**
   * The token this loop last committed: read from the store once, then kept (only this loop writes it while its
   * store is fenced; a loop fenced off fails its next commit whatever token it read).
   */
  #since: string | undefined;
  #synced = false;
  #lastSyncAt: number | undefined;
  readonly #baseGraceMs: number;
  #graceMs: number;

  constructor(options: SyncLoopOptions) {
    this.#options = options;
    this.#baseGraceMs = options.requestGraceMs ?? DEFAULT_GRACE_MS;
    this.#graceMs = this.#baseGraceMs;
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
        this.#graceMs = this.#baseGraceMs;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof SyncFencedError) {
          // Never retried: a replica the log no longer belongs to must not write again.
          logger.fatal({ err: error }, "sync loop fenced off: another replica owns the event log");
          this.#abort.abort(error);
          this.#options.onFenced?.(error);
          return;
        }
        failures++;
        this.#graceMs = Math.min(MAX_GRACE_MS, this.#graceMs * 2);
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
    this.#since ??= await store.syncToken();
    const since = this.#since;
    if (since === undefined) return this.#takePosition(signal);
    const filter = await this.#filter(signal);
    const pollTimeout = this.#options.pollTimeoutMs ?? 30_000;
    const response = await client.get<SyncResponse>("/sync", {
      query: { filter, timeout: pollTimeout, since },
      timeoutMs: pollTimeout + this.#graceMs,
      retry: false,
      ...(signal ? { signal } : {}),
    });
    const events: BridgeEvent[] = [];
    let inserted = 0;
    const rooms = Object.entries(response.rooms?.join ?? {});
    for (const [roomId, room] of rooms)
      for (const state of room.state?.events ?? [])
        if (state.type === CONVERSATION_STATE_TYPE && state.state_key === "")
          this.#options.conversations.remember(roomId, state.content);
    // Rooms not seen since the start are looked up a few at a time rather than one after another: a restart after
    // downtime brings every active room at once (the lookups are cached; the loop below then finds them).
    await pMap(
      rooms.filter(([, room]) => (room.timeline?.events?.length ?? 0) > 0 || room.timeline?.limited),
      ([roomId]) => this.#options.conversations.byRoom(roomId),
      { concurrency: ROOM_LOOKUP_CONCURRENCY, ...(signal ? { signal } : {}) },
    );
    for (const [roomId, room] of rooms) {
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
        let pages = 0;
        for await (const page of this.#gap(roomId, gapFrom, timeline.prev_batch, signal)) {
          inserted += await store.commitSync(
            await this.#convert(roomId, conversation.conversationId, page),
            undefined,
          );
          backfilled += page.length;
          pages++;
        }
        logger.info({ roomId, backfilled, pages }, "filled a limited timeline's gap");
      }
      // Before the commit: a message after a kick in this batch is delivered by the new member list.
      if (raw.some((event) => event.type === MEMBER_EVENT_TYPE))
        this.#options.conversations.membershipChanged(conversation.conversationId);
      events.push(...(await this.#convert(roomId, conversation.conversationId, raw)));
    }
    inserted += await store.commitSync(events, response.next_batch);
    this.#since = response.next_batch;
    this.#synced = true;
    this.#lastSyncAt = Date.now();
    if (inserted > 0) {
      logger.debug({ inserted }, "logged events");
      this.#options.onCommitted?.(inserted);
    }
    return inserted;
  }

  /** First start: commits the homeserver's current position and nothing else. */
  async #takePosition(signal?: AbortSignal): Promise<number> {
    const { client, store, logger } = this.#options;
    const response = await client.get<SyncResponse>("/sync", {
      query: { filter: JSON.stringify(POSITION_ONLY_FILTER), timeout: 0 },
      retry: false,
      ...(signal ? { signal } : {}),
    });
    await store.commitSync([], response.next_batch);
    this.#since = response.next_batch;
    this.#synced = true;
    this.#lastSyncAt = Date.now();
    logger.info("first start: the event log begins at the homeserver's current position");
    return 0;
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

  /**
   * The room's Matrix events as bridge events. Nothing is dropped without a trace: a malformed message, an unknown
   * msgtype and an edit by someone else than the author are logged and counted (`onDropped`).
   */
  async #convert(roomId: string, conversationId: string, raw: readonly RawEvent[]): Promise<BridgeEvent[]> {
    const { logger, serverName } = this.#options;
    const dropped = (eventId: unknown, reason: DropReason, detail?: string) => {
      logger.warn({ roomId, eventId, reason, detail }, "dropped a Matrix event");
      this.#options.onDropped?.(reason);
    };
    const events: BridgeEvent[] = [];
    for (const event of raw) {
      const result = convertEvent(event, conversationId, serverName);
      if (result.kind === "event") events.push(result.event);
      else if (result.kind === "malformed") dropped(event.event_id, "malformed", result.reason);
      else if (result.reason.startsWith("msgtype "))
        dropped(event.event_id, "unknown_msgtype", result.reason);
      else logger.debug({ roomId, eventId: event.event_id, reason: result.reason }, "ignored an event");
    }
    return this.#options.authors.keepAuthorsEdits(roomId, events, (event, reason) =>
      dropped(event.event_id, reason),
    );
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
