import type { BridgeEvent } from "../core/events.ts";

/** An event in the log with its position (a cursor: consumers resume after the last position they saw). */
export interface LoggedEvent {
  /** Increasing across the whole log; a decimal string so it survives JSON beyond 2^53. */
  position: string;
  event: BridgeEvent;
}

/**
 * A commit found that another replica owns the event log now (a newer epoch): nothing was written, and this
 * replica must stop (it lost the sync lock, whether it noticed or not).
 */
export class SyncFencedError extends Error {
  override name = "SyncFencedError";
  constructor(ours: string, current: string | undefined) {
    super(`the event log belongs to epoch ${current ?? "(none)"}, not to this replica's ${ours}: stopping`);
  }
}

/**
 * A reader's cursor lies before the part of the event log that was pruned: the events right after it are gone, so
 * the reader must start again from the head (and read what it missed as history).
 */
export class CursorExpiredError extends Error {
  override name = "CursorExpiredError";
  readonly cursor: string;
  readonly prunedThrough: string;
  constructor(cursor: string, prunedThrough: string) {
    super(
      `cursor ${cursor} is older than the event log keeps (pruned through ${prunedThrough}): reload from history ` +
        "and resume without since (from the head)",
    );
    this.cursor = cursor;
    this.prunedThrough = prunedThrough;
  }
}

/** How long what the bridge stores is kept (the pruning job's settings). */
export interface RetentionPolicy {
  /** Send records (`bridge_sent`, `bridge_send_attempts`): a retry of an idempotency key after this sends anew. */
  sendRecordsMs: number;
  /** Events of the log; a cursor from before what is kept is expired. */
  eventLogMs: number;
  /** Rows per DELETE (each its own short transaction). */
  batchSize: number;
}

/** What one pruning run deleted. */
export interface Pruned {
  events: number;
  sent: number;
  attempts: number;
  /** DELETE statements run. */
  batches: number;
}

/**
 * The bridge's durable state: the ordered event log and the sync token. The token is committed in the same
 * transaction as the events its sync produced, so a crash either keeps both or neither.
 */
export interface EventStore {
  /** Creates or upgrades the schema; safe to call from several processes at once. */
  migrate(): Promise<void>;
  /** The `next_batch` of the last committed sync, or undefined before the first. */
  syncToken(): Promise<string | undefined>;
  /**
   * Appends the events in order, skipping any whose `event_id` is already logged, and stores `nextBatch`,
   * atomically. Without `nextBatch` the token stays (a back-fill page: replayed and de-duplicated after a crash).
   * Returns how many were new. A fenced store (one that claimed an epoch) throws {@link SyncFencedError}
   * instead, writing nothing, once another replica has claimed a newer one.
   */
  commitSync(events: readonly BridgeEvent[], nextBatch: string | undefined): Promise<number>;
  /**
   * Up to `limit` events after `cursor` (exclusive; "0" or undefined: from the oldest kept), oldest first. A cursor
   * before the pruned part of the log throws {@link CursorExpiredError}.
   */
  readAfter(cursor: string | undefined, limit: number): Promise<LoggedEvent[]>;
  /** Throws {@link CursorExpiredError} when events right after `cursor` were pruned (a reader opening with it). */
  assertKept(cursor: string | undefined): Promise<void>;
  /** Deletes what is past its window ({@link RetentionPolicy}); run by the active replica only. */
  prune(policy: RetentionPolicy): Promise<Pruned>;
  /** The position of the newest event in the log ("0" when it is empty): where a reader that wants only new events starts. */
  head(): Promise<string>;
  close(): Promise<void>;
}

/** What a send does: a kind of message, and a digest of each field that decides it. */
export type SendKind = "text" | "media" | "edit" | "delete";

/** What a send was asked to do. A repeated idempotency key must ask the same, or it is a different message. */
export interface SendRequest {
  conversationId: string;
  kind: SendKind;
  /** Field (as the core names it) -> a digest of its value; compared field by field to name the one that differs. */
  fingerprint: Record<string, string>;
}

/** What an earlier send with the same transaction id left. */
export interface EarlierSend {
  /** Undefined for attempts recorded before requests were kept (schema version 4 and older). */
  request: SendRequest | undefined;
  /** The event it produced, once known. */
  eventId: string | undefined;
  /** The content it answered with, once known (undefined for sends recorded before contents were kept). */
  content: unknown;
}

/** What was sent under which transaction id, so a repeated idempotency key answers the first send's message. */
export interface SentLog {
  /**
   * Records that a send with this transaction id is about to go out, with its request (the first record wins).
   * Returns what an earlier attempt left, or undefined when this is the first.
   */
  recordAttempt(txnId: string, request: SendRequest): Promise<EarlierSend | undefined>;
  /** Records a send's result; the first record for a transaction id wins. Returns the recorded event id. */
  recordSent(txnId: string, eventId: string, content?: unknown): Promise<string>;
}

/**
 * Which conversations a media item was sent in: the media route's access rule (a member of one of them may fetch
 * it). Filled from the event log's commits (in the same transaction) and by the bridge's own sends (so the sender
 * can fetch it before the sync loop has seen it); a deleted message's media is forgotten.
 */
export interface MediaIndex {
  /** Records that `mxcUri` was sent in `conversationId` as (or, for an edit, in) message `messageId`. */
  recordMedia(mxcUri: string, conversationId: string, messageId: string): Promise<void>;
  /** The conversations the media item is in (none: unknown, or every message carrying it was deleted). */
  mediaConversations(mxcUri: string): Promise<string[]>;
}
