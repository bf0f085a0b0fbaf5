import type { BridgeEvent } from "../core/events.ts";

/** An event in the log with its position (a cursor: consumers resume after the last position they saw). */
export interface LoggedEvent {
  /** Increasing across the whole log; a decimal string so it survives JSON beyond 2^53. */
  position: string;
  event: BridgeEvent;
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
   * Returns how many were new.
   */
  commitSync(events: readonly BridgeEvent[], nextBatch: string | undefined): Promise<number>;
  /** Up to `limit` events after `cursor` (exclusive; "0" or undefined: from the start), oldest first. */
  readAfter(cursor: string | undefined, limit: number): Promise<LoggedEvent[]>;
  close(): Promise<void>;
}

/** What was sent under which transaction id, so a repeated idempotency key returns the first send's event. */
export interface SentLog {
  /** The event first sent with this transaction id, if any. */
  sentEventId(txnId: string): Promise<string | undefined>;
  /** Records a send; the first record for a transaction id wins. Returns the recorded event id. */
  recordSent(txnId: string, eventId: string): Promise<string>;
  /** Records that a send with this transaction id is about to go out; true when one was attempted before. */
  recordAttempt?(txnId: string): Promise<boolean>;
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
