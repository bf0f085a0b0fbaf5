import { randomBytes } from "node:crypto";
import { sleep, startTcpProxy, waitFor } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack, type TestStack, testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Bridge, startBridge } from "../src/bridge.ts";
import { PostgresEventStore } from "../src/store/postgres.ts";
import type { EventStore } from "../src/store/store.ts";
import { readAll } from "./log.ts";

const unique = () => randomBytes(4).toString("hex");

describeWithHarness("sync loop: exactly once, in order, across restarts", () => {
  let stack: TestStack;
  /** Sends and creates rooms; runs no sync loop of its own. */
  let sender: Bridge;

  beforeAll(async () => {
    stack = await startTestStack();
    sender = await startBridge({
      config: stack.config,
      store: await stack.newBridgeDatabase(),
      logger: testLogger(),
      sync: false,
      // Sends ride out a homeserver restart.
      retry: { maxAttempts: 60, baseDelayMs: 200, maxDelayMs: 1000, maxRateLimitWaitMs: 10_000 },
    });
  });

  afterAll(async () => {
    await sender?.stop();
    await stack?.stop();
  });

  /** The bridge as the image runs it (the service process), on its own database, so a test can kill -9 it. */
  const bridgeProcess = (databaseUrl: string, env: Record<string, string> = {}) =>
    new ServiceProcess({
      config: stack.config,
      databaseUrl,
      apiToken: randomBytes(32).toString("base64url"),
      signingKey: randomBytes(32).toString("base64url"),
      env: { BRIDGE_SYNC_POLL_MS: "500", ...env },
    });

  /** Sends `count` texts to a conversation, in order, recording each message id as it is confirmed. */
  async function sendSeries(
    conversationId: string,
    count: number,
    sent: string[],
    onEach?: (n: number) => Promise<void>,
  ) {
    const first = sent.length;
    for (let n = first; n < first + count; n++) {
      const { messageId } = await sender.messages.sendText({
        conversationId,
        senderId: "alice",
        text: `${conversationId} #${n}`,
        idempotencyKey: `${conversationId}-${n}`,
      });
      sent.push(messageId);
      await onEach?.(n - first);
    }
  }

  /** Waits until every id is logged; then checks each appears once and each conversation's order is the send order. */
  async function expectLoggedOnceInOrder(store: EventStore, sentByConversation: Map<string, string[]>) {
    const expected = [...sentByConversation.values()].flat();
    await waitFor(
      async () => {
        const logged = new Set((await readAll(store)).map((e) => e.event.event_id));
        return expected.every((id) => logged.has(id));
      },
      { timeoutMs: 45_000, intervalMs: 250, describe: () => "not every sent message reached the log" },
    );
    const log = (await readAll(store)).map((e) => e.event);
    const ids = log.map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [conversationId, sent] of sentByConversation)
      expect(log.filter((e) => e.conversation_id === conversationId).map((e) => e.event_id)).toEqual(sent);
  }

  it("begins the log at the present on its first start: earlier messages stay history, later ones are logged", async () => {
    const earlierRoom = `first-a-${unique()}`;
    const laterRoom = `first-b-${unique()}`;
    for (const id of [earlierRoom, laterRoom])
      await sender.conversations.ensureGroup(id, { name: id, members: ["alice"] });
    const earlier: string[] = [];
    await sendSeries(earlierRoom, 3, earlier);
    // Counts the loop's reads of the token: it reads it once at its start, then follows what it committed.
    const store = new (class extends PostgresEventStore {
      tokenReads = 0;
      override syncToken() {
        this.tokenReads++;
        return super.syncToken();
      }
    })(await stack.newBridgeDatabase());
    const bridge = await startBridge({ config: stack.config, store, logger: testLogger() });
    try {
      await waitFor(async () => bridge.syncStatus().caughtUp, {
        timeoutMs: 20_000,
        intervalMs: 100,
        describe: () => "the first sync never committed",
      });
      expect(store.tokenReads).toBe(1);
      // The position is taken, and nothing from before it is in the log.
      expect(await bridge.store.syncToken()).toBeDefined();
      expect(await readAll(bridge.store)).toEqual([]);
      // Later messages are logged, in both rooms, though the bridge never read either room before.
      // (sendSeries numbers its keys after what the list holds: the earlier ids keep the later keys new.)
      const all = new Map([
        [earlierRoom, [...earlier]],
        [laterRoom, [] as string[]],
      ]);
      for (const [id, sent] of all) await sendSeries(id, 2, sent);
      const later = new Map([...all].map(([id, sent]) => [id, id === earlierRoom ? sent.slice(3) : sent]));
      await expectLoggedOnceInOrder(bridge.store, later);
      expect((await readAll(bridge.store)).length).toBe(4);
      // The earlier ones are history, where a front end reads them.
      const history = await bridge.messages.history(earlierRoom, { limit: 10 });
      expect(history.events.map((event) => event.event_id).reverse()).toEqual(all.get(earlierRoom));
      // Several rounds later: the loop's one read and this test's own.
      expect(store.tokenReads).toBe(2);
    } finally {
      await bridge.stop();
      await store.close();
    }
  });

  it("gives a /sync that outlasts its timeout more time after each failure, so a slow catch-up still arrives", async () => {
    const id = `slow-${unique()}`;
    await sender.conversations.ensureGroup(id, { name: id, members: ["alice"] });
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: stack.synapse.paths.port });
    const lines: string[] = [];
    const bridge = await startBridge({
      config: { ...stack.config, homeserverUrl: proxy.url },
      store: await stack.newBridgeDatabase(),
      logger: testLogger(lines),
      syncTuning: { pollTimeoutMs: 500, requestGraceMs: 300 },
    });
    try {
      await waitFor(async () => bridge.syncStatus().caughtUp, {
        timeoutMs: 20_000,
        intervalMs: 100,
        describe: () => "the first sync never committed",
      });
      // Every answer now takes 1.5 s, longer than the first allowance (0.5 s long-poll + 0.3 s grace): a fixed
      // timeout would give up on every sync for as long as the homeserver stays this slow.
      proxy.delayReplies(1500);
      const sent = new Map([[id, [] as string[]]]);
      await sendSeries(id, 2, sent.get(id) as string[]);
      await expectLoggedOnceInOrder(bridge.store, sent);
      expect(proxy.mode).toBe("delay-replies");
      expect(lines.some((line) => line.includes("sync failed; retrying"))).toBe(true);
    } finally {
      proxy.restore();
      await bridge.stop();
      await proxy.close();
    }
  });

  it("logs every message once, in order, when the bridge is killed (-9) twice mid-stream and restarted", async () => {
    const conversations = [`kill-a-${unique()}`, `kill-b-${unique()}`];
    for (const id of conversations)
      await sender.conversations.ensureGroup(id, { name: id, members: ["alice"] });
    const databaseUrl = await stack.newBridgeDatabase();
    const bridge = bridgeProcess(databaseUrl);
    await bridge.start();
    const sent = new Map(conversations.map((id) => [id, [] as string[]]));
    const kills = [12, 27];
    try {
      await Promise.all(
        conversations.map((id, i) =>
          sendSeries(id, 40, sent.get(id) as string[], async (n) => {
            // The first series drives the kills; the other keeps sending meanwhile.
            if (i === 0 && kills.includes(n)) {
              await bridge.kill();
              await sleep(300);
              await bridge.start();
            }
          }),
        ),
      );
      const store = new PostgresEventStore(databaseUrl);
      try {
        await expectLoggedOnceInOrder(store, sent);
      } finally {
        await store.close();
      }
      expect(bridge.output.match(/"msg":"bridge started"/g)).toHaveLength(3);
    } finally {
      await bridge.stop();
    }
  });

  it("fills a limited timeline's gap (more messages than the timeline limit while the bridge was down)", async () => {
    const id = `gap-${unique()}`;
    await sender.conversations.ensureGroup(id, { name: id, members: ["alice"] });
    const databaseUrl = await stack.newBridgeDatabase();
    // Small back-fill pages, so the gap takes several pages, each committed on its own.
    const bridge = bridgeProcess(databaseUrl, { BRIDGE_BACKFILL_PAGE_SIZE: "16" });
    await bridge.start();
    const sent = new Map([[id, [] as string[]]]);
    try {
      await sendSeries(id, 3, sent.get(id) as string[]);
      const store = new PostgresEventStore(databaseUrl);
      try {
        await expectLoggedOnceInOrder(store, sent);
        await bridge.kill();
        // The sync timeline limit is 10; 65 messages make the next sync's timeline limited.
        await sendSeries(id, 65, sent.get(id) as string[]);
        await bridge.start();
        await expectLoggedOnceInOrder(store, sent);
      } finally {
        await store.close();
      }
      const gap = bridge.output
        .split("\n")
        .filter((line) => line.includes("filled a limited timeline's gap"))
        .map((line) => JSON.parse(line) as { backfilled: number; pages: number });
      // 65 sent while down, a timeline holds 10: most came through /messages, over several pages of 16
      // (BRIDGE_BACKFILL_PAGE_SIZE reached the sync loop: the default page of 100 would take one).
      const backfilled = gap.reduce((sum, entry) => sum + entry.backfilled, 0);
      expect(backfilled).toBeGreaterThan(40);
      expect(gap.reduce((sum, entry) => sum + entry.pages, 0)).toBeGreaterThanOrEqual(
        Math.ceil(backfilled / 16),
      );
    } finally {
      await bridge.stop();
    }
  });

  it("keeps going through a homeserver restart mid-stream: sends retry, the loop resumes, nothing lost or doubled", async () => {
    const id = `restart-${unique()}`;
    await sender.conversations.ensureGroup(id, { name: id, members: ["alice"] });
    const databaseUrl = await stack.newBridgeDatabase();
    const syncing = await startBridge({
      config: stack.config,
      store: databaseUrl,
      logger: testLogger(),
      syncTuning: { pollTimeoutMs: 500 },
    });
    const sent = new Map([[id, [] as string[]]]);
    try {
      let restarted: Promise<void> | undefined;
      await sendSeries(id, 30, sent.get(id) as string[], async (n) => {
        if (n === 10)
          restarted = (async () => {
            await stack.synapse.stop();
            await sleep(500);
            await stack.synapse.start();
          })();
      });
      await restarted;
      await expectLoggedOnceInOrder(syncing.store, sent);
    } finally {
      await syncing.stop();
    }
  });
  it("logs and skips a malformed event without stopping, and keeps the events around it", async () => {
    const id = `malformed-${unique()}`;
    const { roomId } = await sender.conversations.ensureGroup(id, { name: id, members: ["alice"] });
    const lines: string[] = [];
    const syncing = await startBridge({
      config: stack.config,
      store: await stack.newBridgeDatabase(),
      logger: testLogger(lines),
      syncTuning: { pollTimeoutMs: 500 },
    });
    try {
      const sent = new Map([[id, [] as string[]]]);
      await sendSeries(id, 1, sent.get(id) as string[]);
      // Another client of the homeserver sends audio that breaks the schema (not an mxc:// URI).
      const alice = `@nova_alice:${stack.serverName}`;
      const response = await fetch(
        `${stack.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/bad-${unique()}?user_id=${encodeURIComponent(alice)}`,
        {
          method: "PUT",
          headers: { authorization: `Bearer ${stack.secrets.asToken}`, "content-type": "application/json" },
          body: JSON.stringify({ msgtype: "m.audio", body: "voice", url: "https://elsewhere.example/a.ogg" }),
        },
      );
      expect(response.status).toBe(200);
      const { event_id: badId } = (await response.json()) as { event_id: string };
      await sendSeries(id, 1, sent.get(id) as string[]);
      await expectLoggedOnceInOrder(syncing.store, sent);
      const warning = lines.map((line) => JSON.parse(line)).find((entry) => entry.eventId === badId);
      expect(warning).toMatchObject({
        msg: "dropped a Matrix event",
        reason: "malformed",
        detail: expect.stringContaining("url"),
      });
    } finally {
      await syncing.stop();
    }
  });

  it("keeps an idempotency key's send single across a homeserver restart (Synapse forgets, the bridge does not)", async () => {
    const id = `idem-${unique()}`;
    await sender.conversations.ensureGroup(id, { name: id, members: ["alice"] });
    const input = { conversationId: id, senderId: "alice", text: "once", idempotencyKey: `key-${unique()}` };
    const first = await sender.messages.sendText(input);
    const deletion = {
      conversationId: id,
      senderId: "alice",
      messageId: first.messageId,
      idempotencyKey: unique(),
    };
    await stack.synapse.stop();
    await stack.synapse.start();
    expect((await sender.messages.sendText(input)).messageId).toBe(first.messageId);
    const { redactionId } = await sender.messages.delete(deletion);
    expect((await sender.messages.delete(deletion)).redactionId).toBe(redactionId);
    const history = await sender.messages.history(id);
    expect(history.events.map((e) => [e.type, e.message_id])).toEqual([["message.deleted", first.messageId]]);
  });
});
