import { afterAll, beforeAll, expect, it } from "vitest";
import { type PostgresServer, startPostgres } from "../../../dev/harness/index.ts";
import { describeWithHarness } from "../../../dev/harness/vitest.ts";
import type { BridgeEvent } from "../core/events.ts";
import { PostgresEventStore } from "./postgres.ts";

const message = (n: number, conversation = "c1"): BridgeEvent => ({
  type: "message.new",
  event_id: `$e${n}`,
  message_id: `$e${n}`,
  conversation_id: conversation,
  sender_id: "alice",
  origin_server_ts: 1_700_000_000_000 + n,
  content: { kind: "text", body: `m${n}` },
});

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

  beforeAll(async () => {
    postgres = await startPostgres();
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
    expect(rows.map((row) => row.version).sort()).toEqual([1, 2, 3]);
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

  it("remembers the first event sent under a transaction id", async () => {
    const store = await fresh();
    expect(await store.sentEventId("nova.t1")).toBeUndefined();
    expect(await store.recordSent("nova.t1", "$first")).toBe("$first");
    expect(await store.recordSent("nova.t1", "$second")).toBe("$first");
    expect(await store.sentEventId("nova.t1")).toBe("$first");
    await store.close();
  });
});
