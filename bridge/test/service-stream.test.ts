// The WebSocket event stream's bounds on the real event log (PostgreSQL) and a real ws connection: a slow consumer
// is closed with a reason and resumes by cursor without loss. The events are written to the log directly (as the
// sync loop would), because filling the kernel's socket buffers (about 4 MB on loopback) through Synapse would take
// minutes; the service's end-to-end path through Synapse is covered in service.test.ts.
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { type PostgresServer, startPostgres } from "@nova-matrix/dev/harness";
import { testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import type { BridgeEvent } from "../src/core/events.ts";
import { CLOSE_SLOW_CONSUMER, EventStream } from "../src/service/event-stream.ts";
import { PostgresEventStore } from "../src/store/postgres.ts";
import { openEvents } from "./service-helpers.ts";

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
  let server: WebSocketServer;
  let url: string;
  const streams = new Set<EventStream>();

  beforeAll(async () => {
    postgres = await startPostgres();
    await postgres.createRole("bridge", "bridge-test-password");
    await postgres.createDatabase("bridge", "bridge");
    store = new PostgresEventStore(
      postgres.url("bridge", { name: "bridge", password: "bridge-test-password" }),
    );
    await store.migrate();
    server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((resolve) => server.once("listening", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    server.on("connection", (socket, request) => {
      const since = new URL(request.url ?? "/", url).searchParams.get("since") ?? undefined;
      const stream = new EventStream({
        socket,
        readAfter: (cursor, limit) => store.readAfter(cursor, limit),
        since,
        maxBufferedBytes: 64 * 1024,
        pageSize: 50,
        pollIntervalMs: 10_000,
        logger: testLogger(),
      });
      streams.add(stream);
      socket.once("close", () => streams.delete(stream));
      void stream.run();
    });
  });

  afterAll(async () => {
    for (const client of server?.clients ?? []) client.terminate();
    await new Promise((resolve) => server?.close(resolve));
    await store?.close();
    await postgres?.stop();
  });

  it("closes a slow consumer with a reason once its buffer is full; it resumes by cursor without loss", async () => {
    const body = "y".repeat(60_000);
    const events = Array.from({ length: 150 }, (_, n) => textEvent(n, `${n} ${body}`)); // about 9 MB
    await store.commitSync(events, "token-1");

    const slow = await openEvents(url, { since: "0", onOpen: (socket) => socket.pause() });
    await new Promise((resolve) => setTimeout(resolve, 500));
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

  it("wakes on notify: an event logged after connecting arrives before the next poll", async () => {
    const client = await openEvents(url, {
      since: (await store.readAfter("0", 10_000)).at(-1)?.position ?? "0",
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const live = textEvent(1000, "live");
    const started = Date.now();
    await store.commitSync([live], "token-2");
    for (const stream of streams) stream.notify();
    await client.waitForCount(1, 5000);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(client.events.map((e) => [e.event_id, e.message_id])).toEqual([[live.event_id, "$m1000"]]);
    await client.close();
  });
});
