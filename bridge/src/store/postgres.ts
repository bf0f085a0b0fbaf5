import pg from "pg";
import { type BridgeEvent, bridgeEventSchema } from "../core/events.ts";
import { MIGRATIONS } from "./migrations.ts";
import {
  CursorExpiredError,
  type EarlierSend,
  type EventStore,
  type LoggedEvent,
  type MediaIndex,
  type Pruned,
  type RetentionPolicy,
  type SendKind,
  type SendRequest,
  type SentLog,
  SyncFencedError,
} from "./store.ts";

/** Events per INSERT statement within a commit. */
const INSERT_CHUNK = 500;

/** Serializes migrations across processes (an arbitrary constant key). */
const MIGRATION_LOCK = 4_716_001;

/**
 * Takes the event log for a new owner epoch and returns it. Run on the sync lock's connection while holding the
 * lock: the claim waits for a commit in progress (it holds the owner row), and every commit of an earlier epoch
 * after it is refused ({@link PostgresEventStore.fence}).
 */
export async function claimSyncEpoch(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ epoch: string }>(
    `INSERT INTO bridge_sync_owner (id, epoch) VALUES (true, 1)
     ON CONFLICT (id) DO UPDATE SET epoch = bridge_sync_owner.epoch + 1, taken_at = now()
     RETURNING epoch::text AS epoch`,
  );
  return (rows[0] as { epoch: string }).epoch;
}

/** Stores a sync's `next_batch`, given as the parameter `param` ("$1"). */
const storeToken = (param: string) =>
  `INSERT INTO bridge_sync_state (id, next_batch) VALUES (true, ${param})
   ON CONFLICT (id) DO UPDATE SET next_batch = excluded.next_batch, updated_at = now()`;

/** How far the log was pruned: events up to this position are gone ("0": none). */
const PRUNED_THROUGH = "SELECT coalesce((SELECT pruned_through FROM bridge_log_retention), 0) AS through";

/** A cursor as a position ("0" for none), or an error saying what a cursor is. */
function checkedCursor(cursor: string | undefined): string {
  const after = cursor ?? "0";
  if (!/^\d+$/.test(after)) throw new Error(`cursor must be a position (a decimal string), got "${after}"`);
  return after;
}

/**
 * A reader after `after` would miss the pruned events between it and `through`. "0" means "from the oldest kept",
 * never expired; a cursor at `through` saw everything pruned.
 */
function expireBefore(after: string, through: string): void {
  if (after !== "0" && BigInt(after) < BigInt(through)) throw new CursorExpiredError(after, through);
}

/** One batch of a send-record table's rows older than $1 (at most $2 of them), and how many went. */
const deleteOlder = (table: string, column: string) =>
  `WITH gone AS (
     DELETE FROM ${table} WHERE txn_id IN (SELECT txn_id FROM ${table} WHERE ${column} < $1 LIMIT $2) RETURNING 1
   ) SELECT count(*)::int AS deleted FROM gone`;

export class PostgresEventStore implements EventStore, SentLog, MediaIndex {
  readonly #pool: pg.Pool;
  /** The owner epoch every commit must still hold (undefined: unfenced, for tools and tests that own the database). */
  #epoch: string | undefined;

  /** `connection`: a `postgres://` URL (a secret: it holds the password) or pool settings. */
  constructor(connection: string | pg.PoolConfig) {
    this.#pool = new pg.Pool(
      typeof connection === "string" ? { connectionString: connection, max: 4 } : { max: 4, ...connection },
    );
    // An idle client's error (database restarted) must not crash the process; the next query reconnects.
    this.#pool.on("error", () => {});
  }

  async migrate(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
      await client.query(
        "CREATE TABLE IF NOT EXISTS bridge_schema_version (version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
      );
      const { rows } = await client.query<{ version: number | null }>(
        "SELECT max(version) AS version FROM bridge_schema_version",
      );
      for (let version = (rows[0]?.version ?? 0) + 1; version <= MIGRATIONS.length; version++) {
        await client.query("BEGIN");
        try {
          await client.query(MIGRATIONS[version - 1] as string);
          await client.query("INSERT INTO bridge_schema_version (version) VALUES ($1)", [version]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw new Error(`bridge store migration ${version} failed: ${(error as Error).message}`);
        }
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => {});
      client.release();
    }
  }

  /** From now on every commit checks, in its transaction, that the log's owner epoch is still `epoch`. */
  fence(epoch: string): void {
    this.#epoch = epoch;
  }

  async syncToken(): Promise<string | undefined> {
    const { rows } = await this.#pool.query<{ next_batch: string }>(
      "SELECT next_batch FROM bridge_sync_state",
    );
    return rows[0]?.next_batch;
  }

  async commitSync(events: readonly BridgeEvent[], nextBatch: string | undefined): Promise<number> {
    const client = await this.#pool.connect();
    try {
      if (this.#epoch === undefined) await client.query("BEGIN");
      else {
        // FOR UPDATE: a claim by another replica waits for this commit, or this commit sees the claim. Sent with
        // BEGIN in one round trip (no parameters: the simple protocol takes both statements, and pg resolves such a
        // query to one result per statement, which its typings do not say).
        const [, owner] = (await client.query(
          "BEGIN; SELECT epoch::text AS epoch FROM bridge_sync_owner WHERE id FOR UPDATE",
        )) as unknown as [pg.QueryResult, pg.QueryResult<{ epoch: string }>];
        const current = owner.rows[0]?.epoch;
        if (current !== this.#epoch) throw new SyncFencedError(this.#epoch, current);
      }
      let inserted = 0;
      let tokenStored = false;
      // One multi-row INSERT per chunk (a restart can bring thousands of rooms' events in one sync: the statement's
      // JSON stays small); WITH ORDINALITY keeps the given order in the positions. One transaction for all. The
      // token rides on the last chunk's statement (a round trip fewer per sync).
      for (let from = 0; from < events.length; from += INSERT_CHUNK) {
        const chunk = events.slice(from, from + INSERT_CHUNK);
        const withToken = nextBatch !== undefined && from + INSERT_CHUNK >= events.length;
        const result = await client.query<{ event_id: string }>(
          `${withToken ? `WITH token AS (${storeToken("$2")}) ` : ""}
           INSERT INTO bridge_event_log (event_id, conversation_id, type, payload)
           SELECT e.payload->>'event_id', e.payload->>'conversation_id', e.payload->>'type', e.payload
           FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(payload, n)
           ORDER BY e.n
           ON CONFLICT (event_id) DO NOTHING
           RETURNING event_id`,
          withToken ? [JSON.stringify(chunk), nextBatch] : [JSON.stringify(chunk)],
        );
        tokenStored ||= withToken;
        inserted += result.rowCount ?? 0;
        // Only what is new here: a replayed page must not bring back the media of a message deleted since.
        const fresh = new Set(result.rows.map((row) => row.event_id));
        await indexMedia(
          client,
          chunk.filter((event) => fresh.has(event.event_id)),
        );
      }
      if (nextBatch !== undefined && !tokenStored) await client.query(storeToken("$1"), [nextBatch]);
      await client.query("COMMIT");
      return inserted;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async readAfter(cursor: string | undefined, limit: number): Promise<LoggedEvent[]> {
    const after = checkedCursor(cursor);
    // One statement: the page and how far the log was pruned (a cursor before that is expired).
    const { rows } = await this.#pool.query<{ through: string; position: string | null; payload: unknown }>(
      `SELECT r.through::text AS through, l.position::text AS position, l.payload
       FROM (${PRUNED_THROUGH}) r
       LEFT JOIN LATERAL (
         SELECT l.position, l.payload FROM bridge_event_log l WHERE l.position > $1::bigint ORDER BY l.position LIMIT $2
       ) l ON true
       ORDER BY l.position`,
      [after, limit],
    );
    expireBefore(after, rows[0]?.through ?? "0");
    return rows.flatMap((row) =>
      row.position === null ? [] : [{ position: row.position, event: bridgeEventSchema.parse(row.payload) }],
    );
  }

  async assertKept(cursor: string | undefined): Promise<void> {
    const after = checkedCursor(cursor);
    const { rows } = await this.#pool.query<{ through: string }>(
      `SELECT through::text AS through FROM (${PRUNED_THROUGH}) r`,
    );
    expireBefore(after, rows[0]?.through ?? "0");
  }

  async head(): Promise<string> {
    // After the newest event, or after what was pruned when the log is empty (never a position before it).
    const { rows } = await this.#pool.query<{ head: string }>(
      `SELECT greatest((SELECT max(position) FROM bridge_event_log), (${PRUNED_THROUGH}))::text AS head`,
    );
    return rows[0]?.head ?? "0";
  }

  /**
   * Deletes what is past its window, `batchSize` rows per statement (each its own short transaction, so the sync
   * loop's commits never wait long), and remembers how far the log was pruned.
   */
  async prune(policy: RetentionPolicy, now = Date.now()): Promise<Pruned> {
    const pruned: Pruned = { events: 0, sent: 0, attempts: 0, batches: 0 };
    const until = (ms: number) => new Date(now - ms).toISOString();
    const batches = async (sql: string, before: string): Promise<number> => {
      let total = 0;
      for (;;) {
        const { rows } = await this.#pool.query<{ deleted: number }>(sql, [before, policy.batchSize]);
        const deleted = rows[0]?.deleted ?? 0;
        pruned.batches++;
        total += deleted;
        if (deleted < policy.batchSize) return total;
      }
    };
    pruned.events = await batches(
      `WITH gone AS (
         DELETE FROM bridge_event_log WHERE position IN (
           SELECT position FROM bridge_event_log WHERE logged_at < $1 ORDER BY position LIMIT $2
         ) RETURNING position
       ), marked AS (
         INSERT INTO bridge_log_retention (id, pruned_through)
         SELECT true, max(position) FROM gone HAVING count(*) > 0
         ON CONFLICT (id) DO UPDATE
           SET pruned_through = greatest(bridge_log_retention.pruned_through, excluded.pruned_through),
               pruned_at = now()
       )
       SELECT count(*)::int AS deleted FROM gone`,
      until(policy.eventLogMs),
    );
    pruned.sent = await batches(deleteOlder("bridge_sent", "sent_at"), until(policy.sendRecordsMs));
    pruned.attempts = await batches(
      deleteOlder("bridge_send_attempts", "attempted_at"),
      until(policy.sendRecordsMs),
    );
    return pruned;
  }

  async recordAttempt(txnId: string, request: SendRequest): Promise<EarlierSend | undefined> {
    // The outer SELECT sees the tables as they were before this statement's INSERT: what an earlier attempt left.
    const { rows } = await this.#pool.query<{
      inserted: boolean;
      conversation_id: string | null;
      kind: SendKind | null;
      fingerprint: Record<string, string> | null;
      event_id: string | null;
      content: unknown;
    }>(
      `WITH attempt AS (
         INSERT INTO bridge_send_attempts (txn_id, conversation_id, kind, fingerprint) VALUES ($1, $2, $3, $4)
         ON CONFLICT (txn_id) DO NOTHING RETURNING txn_id
       )
       SELECT EXISTS (SELECT 1 FROM attempt) AS inserted, a.conversation_id, a.kind, a.fingerprint,
              s.event_id, s.content
       FROM (SELECT $1::text AS txn_id) k
       LEFT JOIN bridge_send_attempts a ON a.txn_id = k.txn_id
       LEFT JOIN bridge_sent s ON s.txn_id = k.txn_id`,
      [txnId, request.conversationId, request.kind, JSON.stringify(request.fingerprint)],
    );
    const row = rows[0];
    if (!row || (row.inserted && row.event_id === null)) return undefined;
    return {
      request:
        row.conversation_id !== null && row.kind !== null && row.fingerprint !== null
          ? { conversationId: row.conversation_id, kind: row.kind, fingerprint: row.fingerprint }
          : undefined,
      eventId: row.event_id ?? undefined,
      content: row.content ?? undefined,
    };
  }

  async recordSent(txnId: string, eventId: string, content?: unknown): Promise<string> {
    const { rows } = await this.#pool.query<{ event_id: string }>(
      `INSERT INTO bridge_sent (txn_id, event_id, content) VALUES ($1, $2, $3)
       ON CONFLICT (txn_id) DO UPDATE SET txn_id = excluded.txn_id
       RETURNING event_id`,
      [txnId, eventId, content === undefined ? null : JSON.stringify(content)],
    );
    return rows[0]?.event_id ?? eventId;
  }

  async recordMedia(mxcUri: string, conversationId: string, messageId: string): Promise<void> {
    await this.#pool.query(
      `INSERT INTO bridge_media (mxc_uri, conversation_id, message_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
      [mxcUri, conversationId, messageId],
    );
  }

  async mediaConversations(mxcUri: string): Promise<string[]> {
    const { rows } = await this.#pool.query<{ conversation_id: string }>(
      "SELECT DISTINCT conversation_id FROM bridge_media WHERE mxc_uri = $1",
      [mxcUri],
    );
    return rows.map((row) => row.conversation_id);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** Keeps `bridge_media` in step with newly logged events: attachments recorded, deleted messages' media dropped. */
async function indexMedia(client: pg.PoolClient, events: readonly BridgeEvent[]): Promise<void> {
  const rows: { mxc: string; conversation: string; message: string }[] = [];
  const deleted: { conversation: string; message: string }[] = [];
  for (const event of events) {
    if (event.type === "message.deleted")
      deleted.push({ conversation: event.conversation_id, message: event.message_id });
    else if (event.content.kind !== "text")
      rows.push({
        mxc: event.content.url,
        conversation: event.conversation_id,
        message: event.type === "message.edited" ? event.replaces_message_id : event.message_id,
      });
  }
  // Recorded before the deletions: a message sent and deleted within one sync ends up forgotten.
  if (rows.length > 0)
    await client.query(
      `INSERT INTO bridge_media (mxc_uri, conversation_id, message_id)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
      [rows.map((r) => r.mxc), rows.map((r) => r.conversation), rows.map((r) => r.message)],
    );
  if (deleted.length > 0)
    await client.query(
      `DELETE FROM bridge_media m USING unnest($1::text[], $2::text[]) AS d(conversation_id, message_id)
       WHERE m.conversation_id = d.conversation_id AND m.message_id = d.message_id`,
      [deleted.map((d) => d.conversation), deleted.map((d) => d.message)],
    );
}
