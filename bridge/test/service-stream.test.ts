// The WebSocket event stream on the real event log (PostgreSQL) and real ws connections: one feed reads the log for
// every socket (idle sockets cost no query), a reader behind the feed's window catches up from the log, a slow
// consumer is closed with a reason and resumes by cursor without loss. The events are written to the log directly (as
// the sync loop would), because filling the kernel's socket buffers (about 4 MB on loopback) through Synapse would
// take minutes; the service's end-to-end path through Synapse is covered in service.test.ts.
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import {
  COUNT_STATEMENTS,
  type PostgresServer,
  startPostgres,
  statementCalls,
  waitFor,
} from "@nova-matrix/dev/harness";
import { testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import type { BridgeEvent } from "../src/core/events.ts";
import { EventFeed } from "../src/service/event-feed.ts";
import { CLOSE_SLOW_CONSUMER, EventStream } from "../src/service/event-stream.ts";
import { PostgresEventStore } from "../src/store/postgres.ts";
import { type EventsClient, openEvents } from "./service-helpers.ts";

const textEvent = (n: number, body: string): BridgeEvent => ({
  type: "message.new",
  event_id: `$e${n}-${randomBytes(4).toString("hex")}`,
  conversation_id: "c1",
  sender_id: "alice",
  origin_server_ts: Date.now(),
  message_id: `$m${n}`,
  content: { kind: "text", body },
});

describeWithHarness("WebSocket event stream on the real event log", () => {
  let postgres: PostgresServer;
  let store: PostgresEventStore;
  let feed: EventFeed;
  let server: WebSocketServer;
  let url: string;
  const windowBytes = 256 * 1024;
  let opened = 0;
  /** What the bridge's role ran on the server (pg_stat_statements), optionally only reads of the log. */
  const statements = (containing?: string) => statementCalls(postgres, "bridge", containing);
  const LOG_READ = "FROM bridge_event_log l WHERE l.position >";

  beforeAll(async () => {
    postgres = await startPostgres({ settings: COUNT_STATEMENTS });
    await postgres.createRole("bridge", "bridge-test-password");
    await postgres.createDatabase("bridge", "bridge");
    store = new PostgresEventStore(
      postgres.url("bridge", { name: "bridge", password: "bridge-test-password" }),
    );
    await store.migrate();
    // No poll within a test's time (60 s): every read the tests see is one they caused.
    feed = new EventFeed({ store, windowBytes, pageSize: 50, pollIntervalMs: 60_000, logger: testLogger() });
    server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((resolve) => server.once("listening", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    server.on("connection", (socket, request) => {
      const since = new URL(request.url ?? "/", url).searchParams.get("since") ?? undefined;
      // As the service does: a stream without a cursor starts at the feed's head.
      void (since === undefined ? feed.head() : Promise.resolve(since)).then((from) => {
        void new EventStream({
          socket,
          feed,
          since: from,
          maxBufferedBytes: 64 * 1024,
          pageSize: 50,
          logger: testLogger(),
        }).run();
        opened++;
      });
    });
  });

  const commit = async (events: BridgeEvent[]) => {
    await store.commitSync(events, `token-${randomBytes(4).toString("hex")}`);
    feed.wake(); // as the bridge's commit notification does
  };

  afterAll(async () => {
    for (const client of server?.clients ?? []) client.terminate();
    await new Promise((resolve) => server?.close(resolve));
    feed?.stop();
    await store?.close();
    await postgres?.stop();
  });

  it("closes a slow consumer with a reason once its buffer is full; it resumes by cursor without loss", async () => {
    const body = "y".repeat(60_000);
    const events = Array.from({ length: 150 }, (_, n) => textEvent(n, `${n} ${body}`)); // about 9 MB
    await commit(events);

    const slow = await openEvents(url, { since: "0", onOpen: (socket) => socket.pause() });
    // Paused until the server gave up on it (however long a loaded machine takes to fill the buffers).
    await waitFor(async () => [...server.clients].some((socket) => socket.readyState === socket.CLOSING), {
      timeoutMs: 30_000,
      describe: () => "the server did not close the paused reader",
    });
    slow.socket.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(CLOSE_SLOW_CONSUMER);
    expect(closed.reason).toMatch(/^slow consumer: reconnect with \?since=\d+$/);
    const got = slow.events.map((e) => e.event_id);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(150);
    const resumeFrom = closed.reason.split("since=")[1] ?? "";
    expect(resumeFrom).toBe(slow.events.at(-1)?.cursor);

    // The resumed reader follows the protocol too: with 60 KB events and a 64 KB buffer, a busy machine can close it
    // again, and each close names the cursor to go on from.
    const resumed: string[] = [];
    let since = resumeFrom;
    for (let connections = 1; resumed.length < 150 - got.length; connections++) {
      expect(connections, "reconnections needed").toBeLessThan(30);
      const client = await openEvents(url, { since });
      const complete = client.waitForCount(150 - got.length - resumed.length).then(() => "complete" as const);
      complete.catch(() => {}); // after a close it times out unobserved: the race below already decided
      const outcome = await Promise.race([complete, client.closed]);
      resumed.push(...client.events.map((e) => e.event_id));
      if (outcome === "complete") {
        await client.close();
      } else {
        expect(outcome.code).toBe(CLOSE_SLOW_CONSUMER);
        since = outcome.reason.split("since=")[1] ?? "";
        expect(since).toBe(client.events.at(-1)?.cursor ?? since);
      }
    }
    expect([...got, ...resumed]).toEqual(events.map((e) => e.event_id));
  }, 60_000);

  it("wakes on a commit: an event logged after connecting arrives without any poll", async () => {
    const client = await openEvents(url, {
      since: (await store.readAfter("0", 10_000)).at(-1)?.position ?? "0",
    });
    const live = textEvent(1000, "live");
    await commit([live]);
    await client.waitForCount(1, 10_000); // the feed polls once a minute: only the wake-up can deliver it in time
    expect(client.events.map((e) => [e.event_id, e.message_id])).toEqual([[live.event_id, "$m1000"]]);
    await client.close();
  });

  it("a reader behind the window catches up from the log while events arrive, each once and in order", async () => {
    const body = "z".repeat(8_000);
    const old = Array.from({ length: 100 }, (_, n) => textEvent(3000 + n, `${n} ${body}`)); // 800 KB > the window
    const from = await feed.head();
    await commit(old);
    const client = await openEvents(url, { since: from });
    const live = Array.from({ length: 100 }, (_, n) => textEvent(3100 + n, `live ${n}`));
    for (let batch = 0; batch < 10; batch++) await commit(live.slice(batch * 10, batch * 10 + 10));
    await client.waitForCount(200, 30_000);
    expect(client.events.map((e) => e.event_id)).toEqual([...old, ...live].map((e) => e.event_id));
    const cursors = client.events.map((e) => BigInt(e.cursor ?? "0"));
    expect(cursors.every((cursor, n) => n === 0 || cursor > (cursors[n - 1] ?? 0n))).toBe(true);
    await client.close();
  });

  it("N idle sockets cause no query; a commit is read from the log once for all of them", async () => {
    const sockets = 40;
    const before = opened;
    const clients: EventsClient[] = [];
    for (let i = 0; i < sockets; i++) clients.push(await openEvents(url));
    await waitFor(async () => opened - before === sockets, { timeoutMs: 10_000, describe: () => "streams" });
    const settle = textEvent(2000, "settle");
    await commit([settle]); // each stream has read past its start once it holds this event
    for (const client of clients) await client.waitForCount(1, 10_000);

    const idleFrom = await statements();
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a quiet window: nothing may happen in it
    expect(await statements(), "statements run by the bridge's role while every socket was idle").toBe(
      idleFrom,
    );

    const readsFrom = await statements(LOG_READ);
    const live = Array.from({ length: 3 }, (_, n) => textEvent(2001 + n, `fan-out ${n}`));
    await commit(live);
    for (const client of clients) await client.waitForCount(4, 10_000);
    // Three events fill less than a page: one read, whatever the number of sockets.
    expect(
      await statements(LOG_READ),
      "reads of the log for one commit, whatever the number of sockets",
    ).toBe(readsFrom + 1);
    const expected = [settle, ...live].map((e) => e.event_id);
    for (const client of clients) expect(client.events.map((e) => e.event_id)).toEqual(expected);
    await Promise.all(clients.map((client) => client.close()));
  });
});
