// The HTTP + WebSocket service against the real Synapse and PostgreSQL (infra's local profile on the harness).
import { randomBytes } from "node:crypto";
import { waitFor as waitForProbe } from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarnessInEachMode } from "@nova-matrix/dev/harness/vitest";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import type { RunningService } from "../src/service/run.ts";
import type { WireEvent } from "../src/service/schemas.ts";
import { signUserToken } from "../src/service/tokens.ts";
import { call, openEvents, runTestService, UpgradeRefused } from "./service-helpers.ts";
import { sineWav } from "./wav.ts";

const unique = () => randomBytes(4).toString("hex");
const API_TOKEN = randomBytes(32).toString("base64url");
const SIGNING_KEY = new Secret(randomBytes(32).toString("base64url"));
const userToken = (userId: string, ttlSeconds = 300) =>
  signUserToken(SIGNING_KEY, userId, Math.floor(Date.now() / 1000) + ttlSeconds);

interface ErrorBody {
  error: { code: string; message: string; field?: string };
}
const errorOf = (body: unknown) => (body as ErrorBody).error;

describeWithHarnessInEachMode("bridge service (HTTP + WebSocket) against the real Synapse", (workers) => {
  let stack: TestStack;
  let service: RunningService;
  let url: string;
  const api = (method: string, path: string, options: Parameters<typeof call>[3] = {}) =>
    call(url, method, path, { token: API_TOKEN, ...options });

  const createGroup = async (id: string, members: string[]) => {
    const answer = await api("POST", "/v1/conversations", {
      json: { conversation_id: id, kind: "group", members, name: `group ${id}` },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return answer.body as { conversation_id: string; room_id: string };
  };
  const sendText = async (conversationId: string, sender: string, text: string, key = unique()) => {
    const answer = await api("POST", `/v1/conversations/${conversationId}/messages`, {
      json: { sender_id: sender, text, client_message_id: key },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return answer.body as { message_id: string };
  };

  beforeAll(async () => {
    stack = await startTestStack({ homeserverOverrides: { max_upload_size: "256K" }, workers });
    service = await runTestService(stack, {
      databaseUrl: await stack.newBridgeDatabase(),
      apiToken: new Secret(API_TOKEN),
      signingKey: SIGNING_KEY,
      limits: { uploadBodyBytes: 512 * 1024, wsMaxBufferedBytes: 64 * 1024, wsPingIntervalMs: 1000 },
    });
    await service.active;
    url = service.url;
  });

  afterAll(async () => {
    await service?.stop();
    await stack?.stop();
  });

  describe("health, readiness, metrics, OpenAPI", () => {
    it("answers /healthz and /readyz (Synapse, Postgres, sync caught up) without a token", async () => {
      expect((await call(url, "GET", "/healthz")).status).toBe(200);
      let ready = await call(url, "GET", "/readyz");
      for (let i = 0; i < 50 && ready.status !== 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        ready = await call(url, "GET", "/readyz");
      }
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({
        status: "ready",
        checks: { synapse: "ok", postgres: "ok", sync: "ok" },
      });
      expect((ready.body as { sync_lag_seconds: number }).sync_lag_seconds).toBeGreaterThanOrEqual(0);
    });

    it("serves an OpenAPI 3.1 document covering every route, generated from the validating schemas", async () => {
      const answer = await call(url, "GET", "/v1/openapi.json");
      expect(answer.status).toBe(200);
      const document = answer.body as {
        openapi: string;
        paths: Record<
          string,
          Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>
        >;
      };
      expect(document.openapi).toBe("3.1.0");
      // Valid against the OpenAPI 3.1 JSON schema.
      expect(await new Validator().validate(document as unknown as Record<string, unknown>)).toEqual({
        valid: true,
      });
      const routes = [
        "POST /v1/conversations",
        "POST /v1/conversations/{conversation_id}/members",
        "DELETE /v1/conversations/{conversation_id}/members/{user_id}",
        "POST /v1/conversations/{conversation_id}/messages",
        "GET /v1/conversations/{conversation_id}/messages",
        "POST /v1/conversations/{conversation_id}/audio",
        "POST /v1/conversations/{conversation_id}/media",
        "GET /v1/conversations",
        "GET /v1/media/{server_name}/{media_id}",
        "GET /v1/media/{server_name}/{media_id}/thumbnail/{size}",
        "PATCH /v1/conversations/{conversation_id}/messages/{message_id}",
        "DELETE /v1/conversations/{conversation_id}/messages/{message_id}",
        "GET /v1/events",
        "POST /v1/user-tokens",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
      ];
      const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
        Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
      );
      for (const route of routes) expect(documented).toContain(route);
      // Every JSON body is a closed object (unknown fields rejected), as the routes enforce.
      const send = document.paths["/v1/conversations/{conversation_id}/messages"]?.post?.requestBody?.content[
        "application/json"
      ]?.schema as { additionalProperties?: unknown; required?: string[] };
      expect(send.additionalProperties).toBe(false);
      // sender_id is optional in the schema: the service must name it (400 otherwise), a user token is the sender.
      expect(send.required?.sort()).toEqual(["client_message_id", "text"]);
    });

    it("exposes the metric names the alert rules use, and counts send errors by kind", async () => {
      // A send to a missing conversation fails in the core: counted as a text send error.
      await api("POST", "/v1/conversations/missing-conv/messages", {
        json: { sender_id: "alice", text: "hi", client_message_id: unique() },
      });
      const metrics = await call(url, "GET", "/metrics");
      expect(metrics.status).toBe(200);
      const text = metrics.body as string;
      expect(text).toMatch(/^nova_bridge_sync_lag_seconds \d/m);
      expect(text).toMatch(/^nova_bridge_send_errors_total\{kind="text",code="not_found"\} [1-9]/m);
      expect(text).toContain("nova_bridge_events_logged_total");
      expect(text).toContain("nova_bridge_send_duration_seconds_bucket");
      expect(text).toMatch(/^nova_bridge_websocket_clients\{role="service"\} \d/m);
    });
  });

  describe("authentication", () => {
    it("refuses a missing or wrong token (401) and a user token on the service API (403)", async () => {
      const missing = await call(url, "POST", "/v1/conversations", { json: {} });
      expect(missing.status).toBe(401);
      expect(errorOf(missing.body).code).toBe("unauthorized");
      const wrong = await call(url, "POST", "/v1/conversations", {
        token: `x${API_TOKEN.slice(1)}`,
        json: {},
      });
      expect(wrong.status).toBe(401);
      // Member management is the service's alone (a user token acts only as itself: media.test.ts).
      const user = await call(url, "POST", "/v1/user-tokens", {
        token: userToken("alice"),
        json: { user_id: "bob" },
      });
      expect(user.status).toBe(403);
      expect(errorOf(user.body).code).toBe("forbidden");
    });
  });

  describe("conversations", () => {
    it("creates a group and a dm idempotently, and refuses a kind conflict (409)", async () => {
      const groupId = `g-${unique()}`;
      const group = await createGroup(groupId, ["alice", "bob"]);
      expect(group.room_id).toMatch(/^!/);
      expect((await createGroup(groupId, ["alice", "bob"])).room_id).toBe(group.room_id);
      const dmId = `dm-${unique()}`;
      const dm = await api("POST", "/v1/conversations", {
        json: { conversation_id: dmId, kind: "dm", members: ["alice", "bob"] },
      });
      expect(dm.status).toBe(200);
      const conflict = await api("POST", "/v1/conversations", {
        json: { conversation_id: dmId, kind: "group", members: ["alice", "bob"] },
      });
      expect(conflict.status).toBe(409);
      expect(errorOf(conflict.body).code).toBe("conflict");
      const memberOfDm = await api("POST", `/v1/conversations/${dmId}/members`, {
        json: { user_id: "carol" },
      });
      expect(memberOfDm.status).toBe(409);
    });

    it("rejects malformed and invalid bodies with 400 naming the field, and unknown fields", async () => {
      const unknownField = await api("POST", "/v1/conversations", {
        json: { conversation_id: "x", kind: "group", members: ["a"], colour: "blue" },
      });
      expect(unknownField.status).toBe(400);
      expect(errorOf(unknownField.body).field).toBe("colour");
      const badKind = await api("POST", "/v1/conversations", {
        json: { conversation_id: "x", kind: "channel", members: ["a"] },
      });
      expect(errorOf(badKind.body)).toMatchObject({ code: "invalid_request", field: "kind" });
      const badMember = await api("POST", "/v1/conversations", {
        json: { conversation_id: "x", kind: "group", members: ["a", 7] },
      });
      expect(errorOf(badMember.body).field).toBe("members[1]");
      const dmOfThree = await api("POST", "/v1/conversations", {
        json: { conversation_id: "x", kind: "dm", members: ["a", "b", "c"] },
      });
      expect(errorOf(dmOfThree.body).field).toBe("members");
      const notJson = await api("POST", "/v1/conversations", {
        raw: "{not json",
        contentType: "application/json",
      });
      expect(notJson.status).toBe(400);
      expect(errorOf(notJson.body).code).toBe("invalid_request");
    });

    it("adds and removes members; unknown conversations are 404", async () => {
      const id = `g-${unique()}`;
      await createGroup(id, ["alice"]);
      expect(
        (await api("POST", `/v1/conversations/${id}/members`, { json: { user_id: "bob" } })).status,
      ).toBe(204);
      const bob = await sendText(id, "bob", "bob is in");
      expect(bob.message_id).toMatch(/^\$/);
      expect((await api("DELETE", `/v1/conversations/${id}/members/bob`)).status).toBe(204);
      const unknown = await api("POST", "/v1/conversations/nope-404/members", { json: { user_id: "bob" } });
      expect(unknown.status).toBe(404);
      expect(errorOf(unknown.body)).toMatchObject({ code: "not_found", field: "conversation_id" });
      expect((await api("DELETE", "/v1/conversations/nope-404/members/bob")).status).toBe(404);
    });
  });

  describe("messages", () => {
    it("sends once per client_message_id, edits, deletes, and pages history in the events' shape", async () => {
      const id = `g-${unique()}`;
      await createGroup(id, ["alice", "bob"]);
      const key = unique();
      const first = await sendText(id, "alice", "hello", key);
      const again = await sendText(id, "alice", "hello", key);
      expect(again.message_id).toBe(first.message_id);
      const second = await sendText(id, "bob", "second");

      const edit = await api("PATCH", `/v1/conversations/${id}/messages/${first.message_id}`, {
        json: { sender_id: "alice", text: "hello, edited" },
      });
      expect(edit.status, JSON.stringify(edit.body)).toBe(200);
      expect(edit.body).toMatchObject({
        message_id: first.message_id,
        edit_id: expect.stringMatching(/^\$/),
      });
      const deleted = await api("DELETE", `/v1/conversations/${id}/messages/${second.message_id}`, {
        json: { sender_id: "bob", reason: "typo" },
      });
      expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);

      const page = await api("GET", `/v1/conversations/${id}/messages?limit=2`);
      expect(page.status).toBe(200);
      const { events, next_before } = page.body as { events: WireEvent[]; next_before?: string };
      expect(events.map((e) => [e.type, e.message_id])).toEqual([
        ["message.deleted", second.message_id],
        ["message.edited", first.message_id],
      ]);
      expect(events[1]?.content).toEqual({ kind: "text", body: "hello, edited" });
      expect(next_before).toBeTruthy();
      const older = await api(
        "GET",
        `/v1/conversations/${id}/messages?limit=10&before=${encodeURIComponent(next_before ?? "")}`,
      );
      const olderEvents = (older.body as { events: WireEvent[] }).events;
      // The deleted message's content is gone (redacted); the first message is there once.
      expect(olderEvents.filter((e) => e.type === "message.new").map((e) => e.message_id)).toEqual([
        first.message_id,
      ]);
    });

    it("answers 404 for an unknown message or conversation, 400 for bad ids and limits, 413 for a huge body", async () => {
      const id = `g-${unique()}`;
      await createGroup(id, ["alice"]);
      const unknownMessage = await api("PATCH", `/v1/conversations/${id}/messages/$nope${unique()}`, {
        json: { sender_id: "alice", text: "x" },
      });
      expect(unknownMessage.status).toBe(404);
      expect(errorOf(unknownMessage.body).field).toBe("message_id");
      const unknownConversation = await api("GET", "/v1/conversations/nope-404/messages");
      expect(unknownConversation.status).toBe(404);
      const badId = await api("PATCH", `/v1/conversations/${id}/messages/not-an-id`, {
        json: { sender_id: "alice", text: "x" },
      });
      expect(errorOf(badId.body).field).toBe("message_id");
      const badLimit = await api("GET", `/v1/conversations/${id}/messages?limit=0`);
      expect(errorOf(badLimit.body).field).toBe("limit");
      const emptyText = await api("POST", `/v1/conversations/${id}/messages`, {
        json: { sender_id: "alice", text: "", client_message_id: "k" },
      });
      expect(errorOf(emptyText.body).field).toBe("text");
      const huge = await api("POST", `/v1/conversations/${id}/messages`, {
        json: { sender_id: "alice", text: "x".repeat(300 * 1024), client_message_id: "k" },
      });
      expect(huge.status).toBe(413);
      expect(errorOf(huge.body).code).toBe("payload_too_large");
      const noRoute = await api("GET", "/v1/nothing-here");
      expect(noRoute.status).toBe(404);
    });

    it("uploads audio and returns its mxc:// URI; refuses non-audio (415) and too large (413)", async () => {
      const id = `g-${unique()}`;
      await createGroup(id, ["alice"]);
      const wav = sineWav(500);
      const path = `/v1/conversations/${id}/audio?sender_id=alice&client_message_id=${unique()}&duration_ms=500`;
      const sent = await api("POST", path, { raw: wav, contentType: "audio/wav" });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      const message = sent.body as {
        message_id: string;
        content: { url: string; size: number; duration_ms: number };
      };
      expect(message.content.url).toMatch(/^mxc:\/\//);
      expect(message.content).toMatchObject({ size: wav.byteLength, duration_ms: 500 });
      const media = await fetch(
        `${stack.synapse.baseUrl}/_matrix/client/v1/media/download/${message.content.url.slice("mxc://".length)}`,
        { headers: { authorization: `Bearer ${stack.secrets.asToken}` } },
      );
      expect(Buffer.from(await media.arrayBuffer()).equals(Buffer.from(wav))).toBe(true);

      const text = await api("POST", path, { raw: "not audio", contentType: "text/plain" });
      expect(text.status).toBe(415);
      const octets = await api("POST", path, { raw: wav, contentType: "application/octet-stream" });
      expect(octets.status).toBe(415);
      expect(errorOf(octets.body).code).toBe("unsupported_media_type");
      // Over the homeserver's 256K but under the service's 512K: refused before upload by the core.
      const overHomeserver = await api("POST", path, {
        raw: new Uint8Array(300 * 1024),
        contentType: "audio/wav",
      });
      expect(overHomeserver.status).toBe(413);
      // Over the service's own limit: refused while reading the body.
      const overService = await api("POST", path, {
        raw: new Uint8Array(600 * 1024),
        contentType: "audio/wav",
      });
      expect(overService.status).toBe(413);
      const noSender = await api("POST", `/v1/conversations/${id}/audio?client_message_id=x`, {
        raw: wav,
        contentType: "audio/wav",
      });
      expect(errorOf(noSender.body)).toMatchObject({ code: "invalid_request", field: "sender_id" });
    });
  });

  describe("WebSocket /v1/events", () => {
    it("resumes by cursor: 100 messages sent while disconnected arrive all, in order, once", async () => {
      const id = `g-${unique()}`;
      await createGroup(id, ["alice"]);
      const marker = await sendText(id, "alice", "before");
      const first = await openEvents(url, { token: API_TOKEN });
      await waitForMessage(first.events, marker.message_id);
      const cursor = first.events.at(-1)?.cursor;
      expect(cursor).toMatch(/^\d+$/);
      await first.close();

      const sent: string[] = [];
      for (let n = 0; n < 100; n++) sent.push((await sendText(id, "alice", `m${n}`)).message_id);
      const resumed = await openEvents(url, { token: API_TOKEN, since: cursor ?? "0" });
      await waitFor(() => resumed.events.filter((e) => e.conversation_id === id).length >= 100, 60_000);
      const live = await sendText(id, "alice", "live");
      await waitForMessage(resumed.events, live.message_id);
      const received = resumed.events.filter((e) => e.conversation_id === id).map((e) => e.message_id);
      expect(received).toEqual([...sent, live.message_id]);
      // Cursors strictly increase: no duplicate, and nothing from before the cursor.
      const cursors = resumed.events.map((e) => BigInt(e.cursor ?? "0"));
      for (const [i, c] of cursors.entries())
        expect(c > (i === 0 ? BigInt(cursor ?? "0") : (cursors[i - 1] ?? 0n))).toBe(true);
      expect(resumed.events.some((e) => e.message_id === marker.message_id)).toBe(false);
      await resumed.close();
    }, 120_000);

    it("sends edits and deletions with the message_id of the message they change", async () => {
      const id = `g-${unique()}`;
      await createGroup(id, ["alice"]);
      const client = await openEvents(url, { token: API_TOKEN });
      const message = await sendText(id, "alice", "draft");
      await api("PATCH", `/v1/conversations/${id}/messages/${message.message_id}`, {
        json: { sender_id: "alice", text: "final" },
      });
      await api("DELETE", `/v1/conversations/${id}/messages/${message.message_id}`, {
        json: { sender_id: "alice" },
      });
      await waitFor(() => client.events.filter((e) => e.conversation_id === id).length >= 3);
      const mine = client.events.filter((e) => e.conversation_id === id);
      expect(mine.map((e) => [e.type, e.message_id])).toEqual([
        ["message.new", message.message_id],
        ["message.edited", message.message_id],
        ["message.deleted", message.message_id],
      ]);
      expect(mine[1]).toMatchObject({
        content: { kind: "text", body: "final" },
        edit_id: expect.stringMatching(/^\$/),
      });
      expect(mine[0]).toMatchObject({ sender_id: "alice", origin_ts: expect.any(Number) });
      await client.close();
    });

    it("scopes a user to their conversations, and stops after removal", async () => {
      const shared = `g-${unique()}`;
      const other = `g-${unique()}`;
      await createGroup(shared, ["erin", "frank"]);
      await createGroup(other, ["frank"]);
      const erin = await openEvents(url, { token: userToken("erin") });
      const erinViaQuery = await openEvents(url, { query: `access_token=${userToken("erin")}` });
      const visible = await sendText(shared, "frank", "for erin");
      const hidden = await sendText(other, "frank", "not for erin");
      await waitForMessage(erin.events, visible.message_id);
      await waitForMessage(erinViaQuery.events, visible.message_id);
      expect((await api("DELETE", `/v1/conversations/${shared}/members/erin`)).status).toBe(204);
      const afterRemoval = await sendText(shared, "frank", "erin is gone");
      // A service client sees all three; wait on it so the user's stream had the same chance.
      const service = await openEvents(url, { token: API_TOKEN });
      await waitForMessage(service.events, afterRemoval.message_id);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const seen = erin.events.map((e) => e.message_id);
      expect(seen).toContain(visible.message_id);
      expect(seen).not.toContain(hidden.message_id);
      expect(seen).not.toContain(afterRemoval.message_id);
      expect(erin.events.every((e) => e.conversation_id === shared)).toBe(true);
      expect(service.events.map((e) => e.message_id)).toEqual(
        expect.arrayContaining([visible.message_id, hidden.message_id, afterRemoval.message_id]),
      );
      await Promise.all([erin.close(), erinViaQuery.close(), service.close()]);
    });

    it("refuses expired, forged and missing tokens before the upgrade, and a bad cursor", async () => {
      const expired = signUserToken(SIGNING_KEY, "erin", Math.floor(Date.now() / 1000) - 1);
      const forged = signUserToken(
        new Secret("another key that is long enough....."),
        "erin",
        Date.now() / 1000 + 300,
      );
      const tampered = `${userToken("erin").slice(0, -2)}AA`;
      for (const token of [expired, forged, tampered]) {
        const error = await openEvents(url, { token }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UpgradeRefused);
        expect((error as UpgradeRefused).status).toBe(401);
      }
      const expiredError = (await openEvents(url, { token: expired }).catch(
        (e: unknown) => e,
      )) as UpgradeRefused;
      expect(JSON.parse(expiredError.body)).toMatchObject({
        error: { code: "unauthorized", message: expect.stringContaining("expired") },
      });
      const missing = await openEvents(url).catch((e: unknown) => e);
      expect((missing as UpgradeRefused).status).toBe(401);
      const badCursor = await openEvents(url, { token: API_TOKEN, query: "since=abc" }).catch(
        (e: unknown) => e,
      );
      expect((badCursor as UpgradeRefused).status).toBe(400);
    });

    it("pings idle clients, which stay connected", async () => {
      const client = await openEvents(url, { token: API_TOKEN });
      // A peer that stops answering (its socket paused: no pong) is dropped after a missed ping.
      const dead = await openEvents(url, { token: API_TOKEN, onOpen: (socket) => socket.pause() });
      await waitFor(() => client.pings >= 2, 5000);
      expect(client.socket.readyState).toBe(client.socket.OPEN);
      await client.close();
      // The server drops the silent peer on its own (no close frame): its count of service sockets reaches 0 while
      // the paused client has not read anything yet.
      await waitForProbe(
        async () =>
          /^nova_bridge_websocket_clients\{role="service"\} 0$/m.test(
            String((await call(url, "GET", "/metrics")).body),
          ),
        { timeoutMs: 15_000, describe: () => "the server did not drop the silent peer" },
      );
      dead.socket.terminate();
    });
  });

  describe("one active bridge per database (Postgres advisory lock)", () => {
    it("keeps a second bridge on standby until the first stops, then it takes over", async () => {
      const databaseUrl = await stack.newBridgeDatabase();
      const start = () =>
        runTestService(stack, {
          databaseUrl,
          apiToken: new Secret(API_TOKEN),
          signingKey: SIGNING_KEY,
          lockRetryMs: 200,
          metricsPort: 0,
        });
      const first = await start();
      await first.active;
      const second = await start();
      try {
        let secondActive = false;
        void second.active.then(() => {
          secondActive = true;
        });
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect(secondActive).toBe(false);
        const standby = await call(second.url, "GET", "/readyz");
        expect(standby.status).toBe(503);
        expect(standby.body).toEqual({ status: "standby" });
        expect((await call(second.url, "GET", "/healthz")).status).toBe(200);
        // The /metrics-only listener (the port scrapers and NetworkPolicies target) answers from the start.
        const scraped = await call(second.metricsUrl ?? "", "GET", "/metrics");
        expect(scraped.body).toMatch(/^nova_bridge_sync_lag_seconds /m);
        expect((await call(second.metricsUrl ?? "", "GET", "/v1/openapi.json")).status).toBe(404);
        // With a metrics port, the API's port does not serve them.
        expect((await call(second.url, "GET", "/metrics")).status).toBe(404);
        const refused = await call(second.url, "GET", "/v1/conversations/x/messages", { token: API_TOKEN });
        expect(refused.status).toBe(503);
        expect(refused.headers.get("retry-after")).toBe("5");
        // Only one sync loop ran: the second never logged "bridge started" while the first held the lock.
        await first.stop();
        await second.active;
        expect(secondActive).toBe(true);
        const id = `g-${unique()}`;
        const created = await call(second.url, "POST", "/v1/conversations", {
          token: API_TOKEN,
          json: { conversation_id: id, kind: "group", members: ["alice"] },
        });
        expect(created.status).toBe(200);
      } finally {
        await second.stop();
      }
    });
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const waitForMessage = (events: WireEvent[], messageId: string) =>
  waitFor(() => events.some((e) => e.message_id === messageId));
