import {
  COUNT_STATEMENTS,
  type PostgresServer,
  startPostgres,
  statementCalls,
} from "@nova-matrix/dev/harness";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { BridgeEvent } from "../core/events.ts";
import { MIGRATIONS } from "./migrations.ts";
import { claimSyncEpoch, PostgresEventStore } from "./postgres.ts";
import { CursorExpiredError, SyncFencedError } from "./store.ts";

const message = (n: number, conversation = "c1") =>
  ({
    type: "message.new",
    event_id: `$e${n}`,
    message_id: `$e${n}`,
    conversation_id: conversation,
    sender_id: "alice",
    origin_server_ts: 1_700_000_000_000 + n,
    content: { kind: "text", body: `m${n}` },
  }) satisfies BridgeEvent;

describeWithHarness("PostgreSQL event store", () => {
  let postgres: PostgresServer;
  let database = 0;
  const fresh = async () => {
    const name = `store_${++database}`;
    await postgres.createDatabase(name);
    const store = new PostgresEventStore(postgres.url(name));
    await store.migrate();
    return store;
  };

  /** Undoes the migrations after `version`, newest first (to stand for a database made by an older version). */
  const downgradeTo = async (version: number, name: string) => {
    for (let undone = MIGRATIONS.length; undone > version; undone--) {
      await postgres.query(UNDO[undone] as string, [], name);
      await postgres.query("DELETE FROM bridge_schema_version WHERE version = $1", [undone], name);
    }
  };

  beforeAll(async () => {
    postgres = await startPostgres({ settings: COUNT_STATEMENTS });
  });
  afterAll(async () => {
    await postgres?.stop();
  });

  it("migrates idempotently, also from several processes at once", async () => {
    await postgres.createDatabase("concurrent");
    const stores = [1, 2, 3].map(() => new PostgresEventStore(postgres.url("concurrent")));
    await Promise.all(stores.map((store) => store.migrate()));
    await stores[0]?.migrate();
    const { rows } = await postgres.query("SELECT version FROM bridge_schema_version", [], "concurrent");
    expect(rows.map((row) => row.version).sort()).toEqual(MIGRATIONS.map((_, i) => i + 1));
    await Promise.all(stores.map((store) => store.close()));
  });

  it("keeps the given order in positions (numerically, past 9), and resumes from any cursor", async () => {
    const store = await fresh();
    const events = Array.from({ length: 25 }, (_, i) => message(i));
    expect(await store.commitSync(events.slice(0, 12), "t1")).toBe(12);
    expect(await store.commitSync(events.slice(12), "t2")).toBe(13);
    const all = await store.readAfter(undefined, 100);
    expect(all.map((e) => e.event)).toEqual(events);
    expect(all.map((e) => Number(e.position))).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    const page = await store.readAfter(all[9]?.position, 3);
    expect(page.map((e) => e.event.event_id)).toEqual(["$e10", "$e11", "$e12"]);
    expect(await store.syncToken()).toBe("t2");
    await expect(store.readAfter("abc", 1)).rejects.toThrow(/cursor must be a position/);
    await store.close();
  });

  it("logs an event id once however often a sync is replayed", async () => {
    const store = await fresh();
    expect(await store.commitSync([message(1), message(2)], "t1")).toBe(2);
    expect(await store.commitSync([message(2), message(3), message(1)], "t2")).toBe(1);
    expect((await store.readAfter(undefined, 10)).map((e) => e.event.event_id)).toEqual([
      "$e1",
      "$e2",
      "$e3",
    ]);
    await store.close();
  });

  it("commits the token with its events or neither", async () => {
    const store = await fresh();
    await store.commitSync([message(1)], "t1");
    // An event that cannot be stored (no event id) fails the whole commit: the token stays where it was.
    const broken = { ...message(2), event_id: undefined } as unknown as BridgeEvent;
    await expect(store.commitSync([message(3), broken], "t2")).rejects.toThrow();
    expect(await store.syncToken()).toBe("t1");
    expect((await store.readAfter(undefined, 10)).map((e) => e.event.event_id)).toEqual(["$e1"]);
    await store.close();
  });

  it("commits a sync larger than one INSERT (a restart's catch-up of many rooms) in order, atomically", async () => {
    const store = await fresh();
    await store.commitSync([message(0)], "t1");
    const many = Array.from({ length: 1_234 }, (_, i) => message(i + 1));
    // A replayed event in a later chunk is still dropped, and the count is over all chunks.
    expect(await store.commitSync([...many, message(3)], "t2")).toBe(1_234);
    const logged = await store.readAfter(undefined, 2_000);
    expect(logged.map((e) => e.event.event_id)).toEqual(["$e0", ...many.map((e) => e.event_id)]);
    // A broken event in the last chunk undoes the earlier chunks and keeps the token.
    const broken = { ...message(9_999), event_id: undefined } as unknown as BridgeEvent;
    const more = Array.from({ length: 1_000 }, (_, i) => message(5_000 + i));
    await expect(store.commitSync([...more, broken], "t3")).rejects.toThrow();
    expect(await store.syncToken()).toBe("t2");
    expect(await store.readAfter(logged.at(-1)?.position, 10)).toEqual([]);
    await store.close();
  });

  it("indexes media by mxc URI from the events it logs, and forgets a deleted message's media", async () => {
    const store = await fresh();
    const image = (n: number, url: string, conversation = "c1"): BridgeEvent => ({
      ...message(n, conversation),
      content: { kind: "image", body: "p.png", url, mimetype: "image/png", size: 1, width: 1, height: 1 },
    });
    const deleted = (n: number, target: number, conversation = "c1"): BridgeEvent => ({
      type: "message.deleted",
      event_id: `$d${n}`,
      message_id: `$e${target}`,
      conversation_id: conversation,
      sender_id: "alice",
      origin_server_ts: 1,
      reason: null,
    });
    // The same file sent in two conversations; a message sent and deleted in one sync.
    await store.commitSync([image(1, "mxc://s/a"), image(2, "mxc://s/a", "c2"), image(3, "mxc://s/b")], "t1");
    await store.commitSync([image(4, "mxc://s/c"), deleted(4, 4)], "t2");
    expect((await store.mediaConversations("mxc://s/a")).sort()).toEqual(["c1", "c2"]);
    expect(await store.mediaConversations("mxc://s/c")).toEqual([]);
    expect(await store.mediaConversations("mxc://s/unknown")).toEqual([]);
    // Deleting one of the messages leaves the other conversation's.
    await store.commitSync([deleted(5, 1)], "t3");
    expect(await store.mediaConversations("mxc://s/a")).toEqual(["c2"]);
    // A replayed page (a back-fill after a crash) does not bring a deleted message's media back.
    await store.commitSync([image(1, "mxc://s/a")], undefined);
    expect(await store.mediaConversations("mxc://s/a")).toEqual(["c2"]);
    // The bridge's own send records it before the sync loop sees it.
    await store.recordMedia("mxc://s/d", "c3", "$e9");
    expect(await store.mediaConversations("mxc://s/d")).toEqual(["c3"]);
    await store.close();
  });

  it("migration 4 indexes the media already in a log", async () => {
    await postgres.createDatabase("upgrade");
    const store = new PostgresEventStore(postgres.url("upgrade"));
    await store.migrate();
    const audio: BridgeEvent = {
      ...message(1),
      content: {
        kind: "audio",
        body: "a",
        url: "mxc://s/old",
        mimetype: null,
        size: null,
        duration_ms: null,
      },
    };
    await store.commitSync([audio], "t1");
    // As a database of version 3 would hold it: the log without the index (nor version 5's columns).
    await downgradeTo(3, "upgrade");
    await store.migrate();
    expect(await store.mediaConversations("mxc://s/old")).toEqual(["c1"]);
    await store.close();
  });

  it("remembers the first event sent under a transaction id, and the request each attempt was for", async () => {
    const store = await fresh();
    const request = { conversationId: "c1", kind: "text" as const, fingerprint: { text: "h1" } };
    expect(await store.recordAttempt("nova.t1", request)).toBeUndefined();
    // A second attempt before any result: the first attempt's request, no event yet.
    const other = { ...request, conversationId: "c2" };
    expect(await store.recordAttempt("nova.t1", other)).toEqual({
      request,
      eventId: undefined,
      content: undefined,
    });
    const content = { kind: "text", body: "first" };
    expect(await store.recordSent("nova.t1", "$first", content)).toBe("$first");
    expect(await store.recordSent("nova.t1", "$second", { kind: "text", body: "second" })).toBe("$first");
    expect(await store.recordAttempt("nova.t1", other)).toEqual({ request, eventId: "$first", content });
    await store.close();
  });

  it("commits a fenced sync in four statements: BEGIN with the owner check, the events with the token, COMMIT", async () => {
    // Its own role, so that only the store's statements are counted (not the test's own queries).
    await postgres.createRole("counted", "counted-test-password");
    await postgres.createDatabase("counted", "counted");
    const store = new PostgresEventStore(
      postgres.url("counted", { name: "counted", password: "counted-test-password" }),
    );
    await store.migrate();
    const client = new pg.Client({ connectionString: postgres.url("counted") });
    await client.connect();
    store.fence(await claimSyncEpoch(client).finally(() => client.end()));
    const counted = () => statementCalls(postgres, "counted");
    let before = await counted();
    expect(await store.commitSync([message(1), message(2)], "t1")).toBe(2);
    expect((await counted()) - before).toBe(4);
    expect(await store.syncToken()).toBe("t1");
    before = await counted();
    expect(await store.commitSync([], "t2")).toBe(0);
    expect((await counted()) - before).toBe(4);
    expect(await store.syncToken()).toBe("t2");
    // A back-fill page keeps the token.
    expect(await store.commitSync([message(3)], undefined)).toBe(1);
    expect(await store.syncToken()).toBe("t2");
    await store.close();
  });

  it("refuses a commit of an epoch another replica has claimed since, writing nothing", async () => {
    const store = await fresh();
    const claim = async () => {
      const client = new pg.Client({ connectionString: postgres.url(`store_${database}`) });
      await client.connect();
      try {
        return await claimSyncEpoch(client);
      } finally {
        await client.end();
      }
    };
    const first = await claim();
    store.fence(first);
    expect(await store.commitSync([message(1)], "t1")).toBe(1);
    const second = await claim();
    expect(Number(second)).toBe(Number(first) + 1);
    const refused = store.commitSync([message(2)], "t2");
    await expect(refused).rejects.toBeInstanceOf(SyncFencedError);
    await expect(refused).rejects.toThrow(`belongs to epoch ${second}, not to this replica's ${first}`);
    expect(await store.syncToken()).toBe("t1");
    expect((await store.readAfter(undefined, 10)).map((e) => e.event.event_id)).toEqual(["$e1"]);
    // The new owner commits.
    store.fence(second);
    expect(await store.commitSync([message(2)], "t2")).toBe(1);
    await store.close();
  });

  it("prunes log events past the retention in batches; a cursor before them is expired, one at or after is not", async () => {
    const store = await fresh();
    const db = `store_${database}`;
    await store.commitSync(
      Array.from({ length: 7 }, (_, i) => message(i + 1)),
      "t1",
    );
    const positions = (await store.readAfter(undefined, 10)).map((e) => e.position);
    // Five events are 31 days old, two are new; one send record of each kind is 8 days old.
    await postgres.query(
      "UPDATE bridge_event_log SET logged_at = now() - interval '31 days' WHERE position <= $1::bigint",
      [positions[4]],
      db,
    );
    const request = { conversationId: "c1", kind: "text" as const, fingerprint: { text: "h" } };
    for (const key of ["old", "new"]) {
      await store.recordAttempt(`nova.${key}`, request);
      await store.recordSent(`nova.${key}`, `$${key}`);
    }
    await postgres.query(
      "UPDATE bridge_sent SET sent_at = now() - interval '8 days' WHERE txn_id = 'nova.old'; UPDATE bridge_send_attempts SET attempted_at = now() - interval '8 days' WHERE txn_id = 'nova.old'",
      [],
      db,
    );
    const policy = { sendRecordsMs: 7 * 86_400_000, eventLogMs: 30 * 86_400_000, batchSize: 2 };
    // The log's five in deletes of 2, 2 and 1; one DELETE for each send table.
    expect(await store.prune(policy)).toEqual({ events: 5, sent: 1, attempts: 1, batches: 5 });
    expect((await store.readAfter(undefined, 10)).map((e) => e.position)).toEqual(positions.slice(5));
    const { rows } = await postgres.query(
      "SELECT txn_id FROM bridge_sent UNION ALL SELECT txn_id FROM bridge_send_attempts",
      [],
      db,
    );
    expect(rows.map((row) => row.txn_id)).toEqual(["nova.new", "nova.new"]);

    for (const cursor of positions.slice(0, 4)) {
      await expect(store.readAfter(cursor, 10)).rejects.toBeInstanceOf(CursorExpiredError);
      await expect(store.assertKept(cursor)).rejects.toThrow(
        `cursor ${cursor} is older than the event log keeps (pruned through ${positions[4]})`,
      );
    }
    await expect(store.assertKept(positions[4])).resolves.toBeUndefined();
    expect((await store.readAfter(positions[4], 10)).map((e) => e.position)).toEqual(positions.slice(5));
    await expect(store.assertKept("0")).resolves.toBeUndefined();
    // Nothing more to prune: one statement per table, nothing deleted, the mark stays.
    expect(await store.prune(policy)).toEqual({ events: 0, sent: 0, attempts: 0, batches: 3 });

    // Everything pruned: the head stays at the last event (a new reader never starts before the pruned part).
    await postgres.query("UPDATE bridge_event_log SET logged_at = now() - interval '31 days'", [], db);
    expect((await store.prune(policy)).events).toBe(2);
    expect(await store.head()).toBe(positions[6]);
    expect(await store.readAfter(await store.head(), 10)).toEqual([]);
    await store.commitSync([message(8)], "t2");
    expect((await store.readAfter(positions[6], 10)).map((e) => e.event.event_id)).toEqual(["$e8"]);
    await store.close();
  });

  it("migration 5 keeps the records made before it, as records without a request", async () => {
    await postgres.createDatabase("upgrade5");
    const store = new PostgresEventStore(postgres.url("upgrade5"));
    await store.migrate();
    await downgradeTo(4, "upgrade5");
    await postgres.query(
      "INSERT INTO bridge_sent (txn_id, event_id) VALUES ('nova.old', '$old'); INSERT INTO bridge_send_attempts (txn_id) VALUES ('nova.half')",
      [],
      "upgrade5",
    );
    await store.migrate();
    const request = { conversationId: "c1", kind: "text" as const, fingerprint: { text: "h" } };
    expect(await store.recordAttempt("nova.old", request)).toEqual({
      request: undefined,
      eventId: "$old",
      content: undefined,
    });
    expect(await store.recordAttempt("nova.half", request)).toEqual({
      request: undefined,
      eventId: undefined,
      content: undefined,
    });
    await store.close();
  });
});

/** What each migration after the third added, removed again (an older version's database); one per migration. */
const UNDO: Record<number, string> = {
  4: "DROP TABLE bridge_media",
  5: `ALTER TABLE bridge_send_attempts DROP COLUMN conversation_id, DROP COLUMN kind, DROP COLUMN fingerprint;
      ALTER TABLE bridge_sent DROP COLUMN content;
      DROP INDEX bridge_send_attempts_attempted_at;
      DROP INDEX bridge_sent_sent_at;`,
  6: "DROP TABLE bridge_sync_owner",
  7: "DROP TABLE bridge_log_retention; DROP INDEX bridge_event_log_logged_at",
};
