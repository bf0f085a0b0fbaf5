// Who may change a message, what an idempotency key stands for, and what becomes of Matrix users who are not Nova
// users: over the HTTP API and directly in Matrix, against the real Synapse and PostgreSQL.
import { randomBytes } from "node:crypto";
import { registerWithSharedSecret } from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { createClient, type MatrixClient as SdkClient } from "matrix-js-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import type { BridgeEvent } from "../src/core/events.ts";
import type { RunningService } from "../src/service/run.ts";
import { PostgresEventStore } from "../src/store/postgres.ts";
import { readAll, waitForEvent } from "./log.ts";
import { call, openEvents, runTestService } from "./service-helpers.ts";
import { sineWav } from "./wav.ts";

const unique = () => randomBytes(4).toString("hex");
const API_TOKEN = randomBytes(32).toString("base64url");
const SIGNING_KEY = new Secret(randomBytes(32).toString("base64url"));
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, getChild: () => quiet };

interface ErrorBody {
  error: { code: string; message: string; field?: string };
}
const errorOf = (body: unknown) => (body as ErrorBody).error;

describeWithHarness("message rules: authors, idempotency, Matrix users (real Synapse)", () => {
  let stack: TestStack;
  let databaseUrl: string;
  let service: RunningService;
  let store: PostgresEventStore;
  const api = (method: string, path: string, options: Parameters<typeof call>[3] = {}) =>
    call(service.url, method, path, { token: API_TOKEN, ...options });
  const start = async () => {
    service = await runTestService(stack, {
      databaseUrl,
      apiToken: new Secret(API_TOKEN),
      signingKey: SIGNING_KEY,
      syncPollMs: 500,
    });
    await service.active;
  };
  const createGroup = async (members: string[]) => {
    const id = `rules-${unique()}`;
    const answer = await api("POST", "/v1/conversations", {
      json: { conversation_id: id, kind: "group", members },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return answer.body as { conversation_id: string; room_id: string };
  };
  const sendText = async (conversationId: string, sender: string, text: string, key = unique()) =>
    api("POST", `/v1/conversations/${conversationId}/messages`, {
      json: { sender_id: sender, text, client_message_id: key },
    });
  const messageIdOf = (answer: { status: number; body: unknown }) => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return (answer.body as { message_id: string }).message_id;
  };
  /** Acts in Matrix directly, as a ghost, with the appservice token (what a Matrix-side edit looks like). */
  const asGhost = async (roomId: string, localpart: string, content: Record<string, unknown>) => {
    const user = `@${localpart}:${stack.serverName}`;
    const response = await fetch(
      `${stack.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${unique()}?user_id=${encodeURIComponent(user)}`,
      {
        method: "PUT",
        headers: { authorization: `Bearer ${stack.secrets.asToken}`, "content-type": "application/json" },
        body: JSON.stringify(content),
      },
    );
    expect(response.status).toBe(200);
    return ((await response.json()) as { event_id: string }).event_id;
  };
  const logged = async () => (await readAll(store)).map((e) => e.event);
  const metric = async (pattern: RegExp) => {
    const text = (await api("GET", "/metrics")).body as string;
    return Number(pattern.exec(text)?.[1] ?? 0);
  };

  beforeAll(async () => {
    stack = await startTestStack({ serverName: "rules.test" });
    databaseUrl = await stack.newBridgeDatabase();
    await start();
    store = new PostgresEventStore(databaseUrl);
  });

  afterAll(async () => {
    await service?.stop();
    await store?.close();
    await stack?.stop();
  });

  describe("only the author changes a message", () => {
    it("an edit by a member who is not the author: 403 forbidden, and the message is unchanged", async () => {
      const { conversation_id: id } = await createGroup(["alice", "bob"]);
      const messageId = messageIdOf(await sendText(id, "alice", "alice's words"));
      const edit = await api("PATCH", `/v1/conversations/${id}/messages/${encodeURIComponent(messageId)}`, {
        json: { sender_id: "bob", text: "bob rewrote it" },
      });
      expect(edit.status).toBe(403);
      expect(errorOf(edit.body)).toMatchObject({ code: "forbidden", field: "sender_id" });
      // The author still can.
      const own = await api("PATCH", `/v1/conversations/${id}/messages/${encodeURIComponent(messageId)}`, {
        json: { sender_id: "alice", text: "alice's better words" },
      });
      expect(own.status, JSON.stringify(own.body)).toBe(200);
      await waitForEvent(store, (e) => e.type === "message.edited" && e.replaces_message_id === messageId);
      const edits = (await logged()).filter(
        (e) => e.type === "message.edited" && e.replaces_message_id === messageId,
      );
      expect(edits.map((e) => [e.sender_id, e.type === "message.edited" && e.content])).toEqual([
        ["alice", { kind: "text", body: "alice's better words" }],
      ]);
    });

    it("an m.replace sent in Matrix by someone else than the author is dropped, counted, and left out of history", async () => {
      const { conversation_id: id, room_id: roomId } = await createGroup(["alice", "bob"]);
      const messageId = messageIdOf(await sendText(id, "alice", "original"));
      const before = await metric(/^nova_bridge_events_dropped_total\{reason="edit_by_non_author"\} (\d+)/m);
      const forged = await asGhost(roomId, "nova_bob", {
        msgtype: "m.text",
        body: "* forged",
        "m.new_content": { msgtype: "m.text", body: "forged" },
        "m.relates_to": { rel_type: "m.replace", event_id: messageId },
      });
      // Then a message after it: once it is logged, the sync loop has passed the forged edit.
      const after = messageIdOf(await sendText(id, "bob", "after the forgery"));
      await waitForEvent(store, (e) => e.event_id === after);
      const events = await logged();
      expect(events.some((e) => e.event_id === forged)).toBe(false);
      expect(
        await metric(/^nova_bridge_events_dropped_total\{reason="edit_by_non_author"\} (\d+)/m),
      ).toBeGreaterThan(before);
      const history = await api("GET", `/v1/conversations/${id}/messages`);
      const ids = (history.body as { events: { event_id: string }[] }).events.map((e) => e.event_id);
      expect(ids).toContain(messageId);
      expect(ids).not.toContain(forged);
    });

    it("DELETE without a body: the author's ghost redacts; a reason alone reaches the redaction", async () => {
      const { conversation_id: id } = await createGroup(["alice", "bob"]);
      const first = messageIdOf(await sendText(id, "alice", "delete me"));
      const second = messageIdOf(await sendText(id, "alice", "delete me with a reason"));
      const plain = await call(
        service.url,
        "DELETE",
        `/v1/conversations/${id}/messages/${encodeURIComponent(first)}`,
        { token: API_TOKEN },
      );
      expect(plain.status, JSON.stringify(plain.body)).toBe(200);
      // An empty body with a JSON content type (left on by some clients and proxies) is no body.
      const emptyJson = await fetch(
        `${service.url}/v1/conversations/${id}/messages/${encodeURIComponent(first)}`,
        {
          method: "DELETE",
          headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        },
      );
      expect(emptyJson.status).toBe(200);
      const withReason = await api(
        "DELETE",
        `/v1/conversations/${id}/messages/${encodeURIComponent(second)}`,
        {
          json: { reason: "spam" },
        },
      );
      expect(withReason.status, JSON.stringify(withReason.body)).toBe(200);
      const deleted = await waitForEvent(
        store,
        (e) => e.type === "message.deleted" && e.message_id === second,
      );
      expect(deleted).toMatchObject({ sender_id: "alice", reason: "spam" });
      const plainDeleted = await waitForEvent(
        store,
        (e) => e.type === "message.deleted" && e.message_id === first,
      );
      expect(plainDeleted).toMatchObject({ sender_id: "alice", reason: null });
      // The same deletion again is the same deletion (one redaction, not two).
      expect(
        (await logged()).filter((e) => e.type === "message.deleted" && e.message_id === first),
      ).toHaveLength(1);
    });

    it("DELETE naming another sender than the author: 403, and nothing is redacted", async () => {
      const { conversation_id: id } = await createGroup(["alice", "bob"]);
      const messageId = messageIdOf(await sendText(id, "alice", "keep me"));
      const refused = await api(
        "DELETE",
        `/v1/conversations/${id}/messages/${encodeURIComponent(messageId)}`,
        {
          json: { sender_id: "bob", reason: "mine now" },
        },
      );
      expect(refused.status).toBe(403);
      expect(errorOf(refused.body)).toMatchObject({ code: "forbidden", field: "sender_id" });
      const history = await api("GET", `/v1/conversations/${id}/messages`);
      expect((history.body as { events: BridgeEvent[] }).events.map((e) => e.type)).toEqual(["message.new"]);
    });
  });

  describe("an idempotency key stands for one message", () => {
    it("the same key in another conversation: 409 naming conversation_id, and nothing is lost behind a 200", async () => {
      const a = (await createGroup(["alice"])).conversation_id;
      const b = (await createGroup(["alice"])).conversation_id;
      const first = messageIdOf(await sendText(a, "alice", "to A", "same-key"));
      const reused = await sendText(b, "alice", "to B, different text", "same-key");
      expect(reused.status).toBe(409);
      expect(errorOf(reused.body)).toMatchObject({
        code: "idempotency_key_reused",
        field: "conversation_id",
      });
      // Another sender's key of the same name is another key.
      const bob = await api("POST", "/v1/conversations", {
        json: { conversation_id: b, kind: "group", members: ["alice", "bob"] },
      });
      expect(bob.status).toBe(200);
      expect(messageIdOf(await sendText(b, "bob", "bob's", "same-key"))).not.toBe(first);
    });

    it("the same key with another text: 409 naming text; with an audio body: 409 naming client_message_id", async () => {
      const id = (await createGroup(["alice"])).conversation_id;
      messageIdOf(await sendText(id, "alice", "first text", "k1"));
      const other = await sendText(id, "alice", "second text", "k1");
      expect(other.status).toBe(409);
      expect(errorOf(other.body)).toMatchObject({ code: "idempotency_key_reused", field: "text" });
      const audio = await api("POST", `/v1/conversations/${id}/audio?sender_id=alice&client_message_id=k1`, {
        raw: sineWav(100),
        contentType: "audio/wav",
      });
      expect(audio.status).toBe(409);
      expect(errorOf(audio.body)).toMatchObject({
        code: "idempotency_key_reused",
        field: "client_message_id",
      });
      const history = await api("GET", `/v1/conversations/${id}/messages`);
      expect((history.body as { events: BridgeEvent[] }).events).toHaveLength(1);
    });

    it("a replay answers the stored message, also after a restart of the bridge; a reuse is still refused then", async () => {
      const a = (await createGroup(["alice"])).conversation_id;
      const b = (await createGroup(["alice"])).conversation_id;
      const sent = await sendText(a, "alice", "once", "replayed");
      const audio = await api(
        "POST",
        `/v1/conversations/${a}/audio?sender_id=alice&client_message_id=voice`,
        {
          raw: sineWav(100),
          contentType: "audio/wav",
        },
      );
      expect(audio.status, JSON.stringify(audio.body)).toBe(200);
      const messageId = messageIdOf(sent);
      const edit = await api("PATCH", `/v1/conversations/${a}/messages/${encodeURIComponent(messageId)}`, {
        json: { sender_id: "alice", text: "edited once", client_message_id: "edit-key" },
      });
      expect(edit.status).toBe(200);
      expect((await sendText(a, "alice", "once", "replayed")).body).toEqual(sent.body);

      await service.stop();
      await start();
      expect((await sendText(a, "alice", "once", "replayed")).body).toEqual(sent.body);
      const audioAgain = await api(
        "POST",
        `/v1/conversations/${a}/audio?sender_id=alice&client_message_id=voice`,
        { raw: sineWav(100), contentType: "audio/wav" },
      );
      expect(audioAgain.body).toEqual(audio.body);
      const editAgain = await api(
        "PATCH",
        `/v1/conversations/${a}/messages/${encodeURIComponent(messageId)}`,
        {
          json: { sender_id: "alice", text: "edited once", client_message_id: "edit-key" },
        },
      );
      expect(editAgain.body).toEqual(edit.body);
      const otherEdit = await api(
        "PATCH",
        `/v1/conversations/${a}/messages/${encodeURIComponent(messageId)}`,
        {
          json: { sender_id: "alice", text: "edited twice", client_message_id: "edit-key" },
        },
      );
      expect(errorOf(otherEdit.body)).toMatchObject({ code: "idempotency_key_reused", field: "text" });
      const reused = await sendText(b, "alice", "once", "replayed");
      expect(reused.status).toBe(409);
      expect(errorOf(reused.body)).toMatchObject({ field: "conversation_id" });
      // One message, one audio, one edit in the log: the replays sent nothing.
      await waitForEvent(store, (e) => e.type === "message.edited" && e.replaces_message_id === messageId);
      const inA = (await logged()).filter((e) => e.conversation_id === a);
      expect(inA.map((e) => e.type).sort()).toEqual(["message.edited", "message.new", "message.new"]);
      expect((await logged()).filter((e) => e.conversation_id === b)).toEqual([]);
    });
  });

  describe("Matrix users outside the ghost namespace", () => {
    let dev: SdkClient;
    let devUserId: string;

    beforeAll(async () => {
      const registered = await registerWithSharedSecret(
        stack.synapse.baseUrl,
        stack.secrets.registrationSharedSecret,
        { username: `dev${unique()}`, password: randomBytes(16).toString("base64url") },
      );
      devUserId = registered.user_id;
      dev = createClient({
        baseUrl: stack.synapse.baseUrl,
        accessToken: registered.access_token,
        userId: registered.user_id,
        logger: quiet,
      });
    });

    afterAll(() => dev?.stopClient());

    it("their messages, edits and redactions reach the stream with sender_id null and their Matrix id", async () => {
      const { conversation_id: id, room_id: roomId } = await createGroup(["alice"]);
      const invited = await fetch(
        `${stack.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite?user_id=${encodeURIComponent(stack.config.serviceUser)}`,
        {
          method: "POST",
          headers: { authorization: `Bearer ${stack.secrets.asToken}`, "content-type": "application/json" },
          body: JSON.stringify({ user_id: devUserId }),
        },
      );
      expect(invited.status).toBe(200);
      await dev.joinRoom(roomId);
      const stream = await openEvents(service.url, { token: API_TOKEN, since: await lastCursor() });
      try {
        const alice = messageIdOf(await sendText(id, "alice", "alice here"));
        const { event_id: said } = await dev.sendEvent(
          roomId,
          "m.room.message" as never,
          {
            msgtype: "m.text",
            body: "staff here",
          } as never,
        );
        await dev.sendEvent(
          roomId,
          "m.room.message" as never,
          {
            msgtype: "m.text",
            body: "* staff, corrected",
            "m.new_content": { msgtype: "m.text", body: "staff, corrected" },
            "m.relates_to": { rel_type: "m.replace", event_id: said },
          } as never,
        );
        // Their edit of alice's message is not theirs to make: dropped.
        const forged = await dev.sendEvent(
          roomId,
          "m.room.message" as never,
          {
            msgtype: "m.text",
            body: "* staff rewrote alice",
            "m.new_content": { msgtype: "m.text", body: "staff rewrote alice" },
            "m.relates_to": { rel_type: "m.replace", event_id: alice },
          } as never,
        );
        await dev.redactEvent(roomId, said, undefined, { reason: "tidy up" });
        const last = messageIdOf(await sendText(id, "alice", "the end"));
        await stream.waitForCount(5);
        await waitForEvent(store, (e) => e.event_id === last);
        const here = stream.events.filter((e) => e.conversation_id === id);
        expect(here.map((e) => [e.type, e.sender_id, e.matrix_sender_id])).toEqual([
          ["message.new", "alice", undefined],
          ["message.new", null, devUserId],
          ["message.edited", null, devUserId],
          ["message.deleted", null, devUserId],
          ["message.new", "alice", undefined],
        ]);
        expect(here[2]).toMatchObject({
          message_id: said,
          content: { kind: "text", body: "staff, corrected" },
        });
        expect(here[3]).toMatchObject({ message_id: said, reason: "tidy up" });
        expect(here.some((e) => e.event_id === forged.event_id)).toBe(false);
        // Through the API nobody but them changes their message (a deleted one: still not yours to change).
        const other = messageIdOf(await sendText(id, "alice", "and one more"));
        const { event_id: theirs } = await dev.sendEvent(
          roomId,
          "m.room.message" as never,
          {
            msgtype: "m.text",
            body: "staff again",
          } as never,
        );
        const patch = await api("PATCH", `/v1/conversations/${id}/messages/${encodeURIComponent(theirs)}`, {
          json: { sender_id: "alice", text: "alice rewrote staff" },
        });
        expect(patch.status).toBe(403);
        const deletion = await call(
          service.url,
          "DELETE",
          `/v1/conversations/${id}/messages/${encodeURIComponent(theirs)}`,
          { token: API_TOKEN },
        );
        expect(deletion.status).toBe(403);
        expect(errorOf(deletion.body)).toMatchObject({ code: "forbidden", field: "message_id" });
        expect(JSON.stringify(deletion.body)).not.toContain(devUserId);
        expect(other).toBeTruthy();
      } finally {
        await stream.close();
      }
    });
  });

  async function lastCursor(): Promise<string> {
    return (await readAll(store)).at(-1)?.position ?? "0";
  }
});
