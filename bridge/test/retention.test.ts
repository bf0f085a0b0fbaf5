// Bounded state, on the real Synapse and PostgreSQL: the active replica prunes send records past their window and
// log events past the log's retention, in batches; a cursor from before the pruned part of the log is refused (HTTP
// 410 `cursor_expired` on the catch-up route, WebSocket close 4410) with the way out, while one at or after it is
// served. Rows are made old by moving their timestamps back (the windows are days long).
import { randomBytes } from "node:crypto";
import { waitFor } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import type { WireEvent } from "../src/service/schemas.ts";
import { signUserToken } from "../src/service/tokens.ts";
import { openEvents } from "./service-helpers.ts";

const API_TOKEN = randomBytes(32).toString("base64url");
const SIGNING_KEY = randomBytes(32).toString("base64url");
const CLOSE_CURSOR_EXPIRED = 4410;

describeWithHarness("bounded state: pruning and expired cursors", () => {
  let stack: TestStack;
  let service: ServiceProcess;
  let db: pg.Client;

  beforeAll(async () => {
    stack = await startTestStack({ serverName: "retention.test" });
    const databaseUrl = await stack.newBridgeDatabase();
    service = new ServiceProcess({
      config: stack.config,
      databaseUrl,
      apiToken: API_TOKEN,
      signingKey: SIGNING_KEY,
      // Prune often, in batches of two.
      env: { BRIDGE_PRUNE_INTERVAL_MS: "200", BRIDGE_PRUNE_BATCH_SIZE: "2" },
    });
    await service.start();
    db = new pg.Client({ connectionString: databaseUrl });
    db.on("error", () => {});
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await service?.stop();
    await stack?.stop();
  });

  const api = (path: string, init: { method?: string; body?: unknown; token?: string | null } = {}) =>
    fetch(`${service.url}${path}`, {
      method: init.method ?? "GET",
      headers: {
        ...(init.token === null ? {} : { authorization: `Bearer ${init.token ?? API_TOKEN}` }),
        ...(init.body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
  const send = async (conversationId: string, key: string) => {
    const answer = await api(`/v1/conversations/${conversationId}/messages`, {
      method: "POST",
      body: { sender_id: "alice", client_message_id: key, text: `text of ${key}` },
    });
    expect(answer.status).toBe(200);
    return ((await answer.json()) as { message_id: string }).message_id;
  };
  const catchUp = async (since?: string, token?: string) => {
    const answer = await api(`/v1/events${since === undefined ? "" : `?since=${since}`}`, {
      ...(token ? { token } : {}),
    });
    return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
  };
  const count = async (table: string) =>
    Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0]?.n);

  it("prunes old send records and log events in batches; an expired cursor gets 410 / 4410, a retained one is served", async () => {
    const conversation = `keep-${randomBytes(3).toString("hex")}`;
    const created = await api("/v1/conversations", {
      method: "POST",
      body: { conversation_id: conversation, kind: "group", members: ["alice"] },
    });
    expect(created.status).toBe(200);
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push(await send(conversation, `k${n}`));

    // The catch-up route pages the log like the WebSocket does.
    let events: WireEvent[] = [];
    await waitFor(
      async () => {
        events = (await catchUp("0")).body.events as WireEvent[];
        return events.length === 5;
      },
      { timeoutMs: 30_000, describe: () => `the log holds ${events.length} of 5 messages` },
    );
    expect(events.map((e) => e.message_id)).toEqual(ids);
    const cursors = events.map((e) => e.cursor as string);

    // Three log events past the log's 30 days, three sends (attempt and result) past the 7 days of send records.
    await db.query(
      "UPDATE bridge_event_log SET logged_at = now() - interval '31 days' WHERE position <= $1::bigint",
      [cursors[2]],
    );
    // One statement: the pruner runs meanwhile, and must see the result and its attempt old together.
    await db.query(
      `WITH sent AS (
         UPDATE bridge_sent SET sent_at = now() - interval '8 days' WHERE event_id = ANY($1) RETURNING txn_id
       )
       UPDATE bridge_send_attempts SET attempted_at = now() - interval '8 days'
       WHERE txn_id IN (SELECT txn_id FROM sent)`,
      [ids.slice(0, 3)],
    );
    // Pruned, and logged by the run(s) that did it (the batching itself is the store test's).
    const pruned = () =>
      service.output
        .split("\n")
        .filter((line) => line.includes('"msg":"pruned old state"'))
        .map((line) => JSON.parse(line) as { events: number; sent: number; attempts: number })
        .reduce(
          (sum, run) => ({
            events: sum.events + run.events,
            sent: sum.sent + run.sent,
            attempts: sum.attempts + run.attempts,
          }),
          { events: 0, sent: 0, attempts: 0 },
        );
    await waitFor(
      async () =>
        (await count("bridge_event_log")) === 2 &&
        (await count("bridge_sent")) === 2 &&
        (await count("bridge_send_attempts")) === 2 &&
        pruned().attempts === 3,
      { timeoutMs: 30_000, describe: () => `not pruned:\n${service.output.slice(-2000)}` },
    );
    expect(pruned()).toEqual({ events: 3, sent: 3, attempts: 3 });

    // A cursor before the pruned part: 410 with what to do.
    for (const since of [cursors[0], cursors[1]]) {
      const expired = await catchUp(since);
      expect(expired.status).toBe(410);
      expect(expired.body).toEqual({
        error: {
          code: "cursor_expired",
          message: expect.stringMatching(
            /older than the event log keeps.*reload from history.*without since/,
          ),
          field: "since",
        },
      });
    }
    // At the last pruned event (the client saw everything up to it) or later: served, nothing missing.
    expect(((await catchUp(cursors[2])).body.events as WireEvent[]).map((e) => e.message_id)).toEqual(
      ids.slice(3),
    );
    expect(((await catchUp(cursors[3])).body.events as WireEvent[]).map((e) => e.message_id)).toEqual(
      ids.slice(4),
    );
    // Without a cursor: from the oldest event kept.
    expect(((await catchUp()).body.events as WireEvent[]).map((e) => e.message_id)).toEqual(ids.slice(3));
    // Without a token: refused, whatever the cursor.
    expect((await api(`/v1/events?since=${cursors[0]}`, { token: null })).status).toBe(401);

    // The WebSocket: an expired cursor is closed with 4410 and the reason; a retained one streams on.
    const stale = await openEvents(service.url, { token: API_TOKEN, since: cursors[0] as string });
    const closed = await stale.closed;
    expect(closed.code).toBe(CLOSE_CURSOR_EXPIRED);
    expect(closed.reason).toMatch(/^cursor expired: .*reconnect without since/);
    expect(stale.events).toEqual([]);
    const fresh = await openEvents(service.url, { token: API_TOKEN, since: cursors[2] as string });
    await fresh.waitForCount(2);
    expect(fresh.events.map((e) => e.message_id)).toEqual(ids.slice(3));
    await fresh.close();

    // A user token reads only its own conversations' events in the catch-up.
    const bob = signUserToken(new Secret(SIGNING_KEY), "bob", Math.floor(Date.now() / 1000) + 60);
    const alice = signUserToken(new Secret(SIGNING_KEY), "alice", Math.floor(Date.now() / 1000) + 60);
    expect((await catchUp(cursors[2], bob)).body.events).toEqual([]);
    expect(((await catchUp(cursors[2], alice)).body.events as WireEvent[]).map((e) => e.message_id)).toEqual(
      ids.slice(3),
    );
    expect((await catchUp(cursors[0], alice)).status).toBe(410);

    // Send records decide idempotency only within their window: a key still kept is bound to its first request
    // (409 for other content), a pruned one is free again (a new request; here Synapse's own 30-minute memory of the
    // transaction id would answer, in production it is long gone after the window's days).
    expect(await send(conversation, "k4")).toBe(ids[4]);
    const reuse = (key: string) =>
      api(`/v1/conversations/${conversation}/messages`, {
        method: "POST",
        body: { sender_id: "alice", client_message_id: key, text: "other text" },
      });
    expect((await reuse("k4")).status).toBe(409);
    expect((await reuse("k0")).status).toBe(200);
  });
});
