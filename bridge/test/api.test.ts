import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { waitFor } from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack, testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../src/bridge.ts";
import { Secret } from "../src/config/secret.ts";
import {
  ConversationConflictError,
  ConversationNotFoundError,
  InvalidInputError,
  NotAuthorError,
  UploadRejectedError,
} from "../src/core/errors.ts";
import { HomeserverUnreachableError, TokenRejectedError } from "../src/matrix/errors.ts";
import { readAll, waitForEvent } from "./log.ts";
import { gradientPng, onePagePdf, videoMp4 } from "./samples.ts";
import { sineWav } from "./wav.ts";

const unique = () => randomBytes(4).toString("hex");
const countFiles = async (dir: string) =>
  (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile())
    .length;

describeWithHarness("bridge API against the real Synapse", () => {
  let stack: TestStack;
  let bridge: Bridge;

  beforeAll(async () => {
    stack = await startTestStack({ homeserverOverrides: { max_upload_size: "256K" } });
    bridge = await startBridge({
      config: stack.config,
      store: await stack.newBridgeDatabase(),
      logger: testLogger(),
      syncTuning: { pollTimeoutMs: 1000 },
    });
  });

  afterAll(async () => {
    await bridge?.stop();
    await stack?.stop();
  });

  describe("start-up", () => {
    it("registers the service user idempotently: a second bridge starts on the same homeserver", async () => {
      const second = await startBridge({
        config: stack.config,
        store: await stack.newBridgeDatabase(),
        logger: testLogger(),
        sync: false,
      });
      await second.stop();
    });

    it("fails fast and clearly on a wrong token, without printing it", async () => {
      const wrong = `wrong-${unique()}`;
      const started = Date.now();
      const error = await startBridge({
        config: { ...stack.config, accessToken: new Secret(wrong) },
        store: await stack.newBridgeDatabase(),
        logger: testLogger(),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TokenRejectedError);
      expect((error as Error).message).toMatch(/rejected MATRIX_ACCESS_TOKEN/);
      expect((error as Error).message).not.toContain(wrong);
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it("fails fast and clearly when the homeserver is unreachable", async () => {
      const started = Date.now();
      const error = await startBridge({
        config: { ...stack.config, homeserverUrl: "http://127.0.0.1:9" },
        store: await stack.newBridgeDatabase(),
        logger: testLogger(),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HomeserverUnreachableError);
      expect((error as Error).message).toMatch(
        /MATRIX_HOMESERVER_URL \(http:\/\/127\.0\.0\.1:9\) is unreachable/,
      );
      expect(Date.now() - started).toBeLessThan(5000);
    });
  });

  describe("conversations", () => {
    it("creates a direct room with is_direct and exactly the two ghosts, and returns it again", async () => {
      const id = `dm-${unique()}`;
      const dm = await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      expect(dm.kind).toBe("direct");
      expect(await bridge.conversations.members(id)).toEqual(["Alice", "bob"]);
      const again = await bridge.conversations.ensureDirect(id, ["bob", "Alice"]);
      expect(again.roomId).toBe(dm.roomId);
      // The alias in the exclusive namespace points at the room.
      const alias = encodeURIComponent(`#nova_conv_${id}:${stack.serverName}`);
      const resolved = await fetch(`${stack.synapse.baseUrl}/_matrix/client/v3/directory/room/${alias}`);
      expect(((await resolved.json()) as { room_id: string }).room_id).toBe(dm.roomId);
      // The ghosts were invited as a direct chat.
      const member = await fetch(
        `${stack.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(dm.roomId)}/state/m.room.member/${encodeURIComponent(`@nova_bob:${stack.serverName}`)}?user_id=${encodeURIComponent(`@nova_bob:${stack.serverName}`)}`,
        { headers: { authorization: `Bearer ${stack.secrets.asToken}` } },
      );
      expect(await member.json()).toMatchObject({ membership: "join" });
      // ...after an invite marked as a direct chat.
      const filter = encodeURIComponent(JSON.stringify({ types: ["m.room.member"] }));
      const history = await fetch(
        `${stack.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(dm.roomId)}/messages?dir=f&limit=50&filter=${filter}&user_id=${encodeURIComponent(stack.config.serviceUser)}`,
        { headers: { authorization: `Bearer ${stack.secrets.asToken}` } },
      );
      const { chunk } = (await history.json()) as {
        chunk: { state_key: string; content: { membership: string; is_direct?: boolean } }[];
      };
      const invites = chunk.filter((event) => event.content.membership === "invite");
      expect(invites.map((event) => [event.state_key, event.content.is_direct]).sort()).toEqual([
        [`@nova__alice:${stack.serverName}`, true],
        [`@nova_bob:${stack.serverName}`, true],
      ]);
    });

    it("finds a conversation created by another bridge process (the mapping lives in Synapse)", async () => {
      const id = `dm-${unique()}`;
      const dm = await bridge.conversations.ensureDirect(id, ["carol", "dave"]);
      const other = await startBridge({
        config: stack.config,
        store: await stack.newBridgeDatabase(),
        logger: testLogger(),
        sync: false,
      });
      try {
        expect((await other.conversations.get(id)).roomId).toBe(dm.roomId);
        expect(await other.conversations.byRoom(dm.roomId)).toEqual(dm);
      } finally {
        await other.stop();
      }
    });

    it("refuses a DM ensured as a group, a group ensured as a DM, and a DM with other members", async () => {
      const dmId = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(dmId, ["erin", "frank"]);
      await expect(bridge.conversations.ensureGroup(dmId, { name: "x", members: ["erin"] })).rejects.toThrow(
        ConversationConflictError,
      );
      await expect(bridge.conversations.ensureDirect(dmId, ["erin", "gina"])).rejects.toThrow(
        /direct conversation between other users/,
      );
      const groupId = `group-${unique()}`;
      await bridge.conversations.ensureGroup(groupId, { name: "Team", members: ["erin", "frank"] });
      await expect(bridge.conversations.ensureDirect(groupId, ["erin", "frank"])).rejects.toThrow(
        /exists as a group conversation, not direct/,
      );
      await expect(bridge.conversations.addMembers(dmId, ["gina"])).rejects.toThrow(/members cannot change/);
    });

    it("creates a named group, invites and removes members", async () => {
      const id = `group-${unique()}`;
      const group = await bridge.conversations.ensureGroup(id, { name: "Launch", members: ["ann", "ben"] });
      const name = await fetch(
        `${stack.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(group.roomId)}/state/m.room.name/?user_id=${encodeURIComponent(stack.config.serviceUser)}`,
        { headers: { authorization: `Bearer ${stack.secrets.asToken}` } },
      );
      expect(await name.json()).toEqual({ name: "Launch" });
      // Read (and so shared for a few seconds) before each change: the bridge's own changes are seen at once.
      expect(await bridge.conversations.members(id)).toEqual(["ann", "ben"]);
      await bridge.conversations.addMembers(id, ["cat", "ann"]);
      expect(await bridge.conversations.members(id)).toEqual(["ann", "ben", "cat"]);
      await bridge.conversations.removeMembers(id, ["ben"], "left the team");
      expect(await bridge.conversations.members(id)).toEqual(["ann", "cat"]);
      // Ensuring again with a new member adds them, same room.
      expect((await bridge.conversations.ensureGroup(id, { name: "Launch", members: ["dan"] })).roomId).toBe(
        group.roomId,
      );
      expect(await bridge.conversations.members(id)).toEqual(["ann", "cat", "dan"]);
      // A member's conversations are the rooms their ghost joined; a removed member's are not.
      const ids = async (user: string) => (await bridge.conversations.of(user)).map((c) => c.conversationId);
      expect(await ids("cat")).toContain(id);
      expect(await ids("ben")).not.toContain(id);
      expect(await ids(`never-seen-${unique()}`)).toEqual([]);
    });

    it("shares one read of a conversation's members among many concurrent checks (a crowd of sockets)", async () => {
      const id = `crowd-${unique()}`;
      await bridge.conversations.ensureGroup(id, { name: "Crowd", members: ["ann", "ben"] });
      // Synapse's own count of member-list requests (its metrics listener), not the bridge's word for it.
      const reads = async () => {
        const text = await (await fetch(`${stack.synapse.metricsUrl}/_synapse/metrics`)).text();
        return [
          ...text.matchAll(
            /^synapse_http_server_requests_received_total\{[^}]*servlet="JoinedRoomMemberListRestServlet"[^}]*\} (\S+)$/gm,
          ),
        ].reduce((sum, m) => sum + Number(m[1]), 0);
      };
      const before = await reads();
      const answers = await Promise.all(Array.from({ length: 200 }, () => bridge.conversations.members(id)));
      expect(new Set(answers.map((members) => members.join(",")))).toEqual(new Set(["ann,ben"]));
      expect((await reads()) - before).toBe(1);
    });

    it("forgets a cached member list when a member event arrives: a kick made in Matrix directly", async () => {
      // Its own bridge with a member list that would be reused for 10 minutes: only the member event can refresh it.
      const ownBridge = await startBridge({
        config: stack.config,
        store: await stack.newBridgeDatabase(),
        logger: testLogger(),
        syncTuning: { pollTimeoutMs: 1000 },
        membersTtlMs: 600_000,
      });
      try {
        const id = `kicked-${unique()}`;
        const { roomId } = await ownBridge.conversations.ensureGroup(id, {
          name: "Kick",
          members: ["ann", "ben"],
        });
        await ownBridge.conversations.members(id);
        const ben = `@nova_ben:${stack.config.serverName}`;
        const kicked = await fetch(
          `${stack.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/kick?user_id=${encodeURIComponent(stack.config.serviceUser)}`,
          {
            method: "POST",
            headers: {
              authorization: `Bearer ${stack.secrets.asToken}`,
              "content-type": "application/json",
            },
            body: JSON.stringify({ user_id: ben, reason: "removed by staff in Element" }),
          },
        );
        expect(kicked.status).toBe(200);
        // The sync loop brings the member event; without it the list would be reused for 10 minutes.
        await waitFor(async () => !(await ownBridge.conversations.members(id)).includes("ben"), {
          timeoutMs: 30_000,
          describe: () => "the kick never reached the cached member list",
        });
        expect(await ownBridge.conversations.members(id)).toEqual(["ann"]);
      } finally {
        await ownBridge.stop();
      }
    });

    it("rejects malformed input with the field named, and unknown conversations", async () => {
      await expect(bridge.conversations.ensureDirect("", ["a", "b"])).rejects.toThrow(
        /conversationId: expected a conversation id/,
      );
      await expect(bridge.conversations.ensureDirect("x", ["a"] as never)).rejects.toThrow(
        /members: a direct conversation has exactly 2 members/,
      );
      await expect(bridge.conversations.ensureDirect("x", ["a", "a"])).rejects.toThrow(InvalidInputError);
      await expect(bridge.conversations.ensureGroup("x", { name: "", members: [] })).rejects.toThrow(
        /name: must not be empty/,
      );
      await expect(bridge.conversations.get(`nope-${unique()}`)).rejects.toThrow(ConversationNotFoundError);
    });
  });

  describe("messages and their events", () => {
    it("sends text as the ghost of its author, and the sync loop logs message.new", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      const sent = await bridge.messages.sendText({
        conversationId: id,
        senderId: "Alice",
        text: "hello Bob",
        idempotencyKey: unique(),
      });
      const event = await waitForEvent(bridge.store, (e) => e.event_id === sent.messageId);
      expect(event).toMatchObject({
        type: "message.new",
        conversation_id: id,
        message_id: sent.messageId,
        sender_id: "Alice",
        content: { kind: "text", body: "hello Bob" },
      });
      expect(event.origin_server_ts).toBeGreaterThan(Date.now() - 60_000);
    });

    it("sends one message for a retried call with the same idempotency key", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      const key = unique();
      const input = { conversationId: id, senderId: "bob", text: "only once", idempotencyKey: key };
      const [a, b] = await Promise.all([bridge.messages.sendText(input), bridge.messages.sendText(input)]);
      const c = await bridge.messages.sendText(input);
      expect(b.messageId).toBe(a.messageId);
      expect(c.messageId).toBe(a.messageId);
      // Another sender's identical key is another message.
      const other = await bridge.messages.sendText({ ...input, senderId: "Alice" });
      expect(other.messageId).not.toBe(a.messageId);
      await waitForEvent(bridge.store, (e) => e.event_id === other.messageId);
      const history = await bridge.messages.history(id);
      expect(
        history.events.filter(
          (e) => e.type === "message.new" && e.content.kind === "text" && e.content.body === "only once",
        ),
      ).toHaveLength(2);
    });

    it("edits (and edits the edit) with m.replace, then deletes the edited message and its edits", async () => {
      const id = `group-${unique()}`;
      await bridge.conversations.ensureGroup(id, { name: "Edits", members: ["Alice", "bob"] });
      const original = await bridge.messages.sendText({
        conversationId: id,
        senderId: "Alice",
        text: "v1",
        idempotencyKey: unique(),
      });
      const edit1 = await bridge.messages.edit({
        conversationId: id,
        senderId: "Alice",
        messageId: original.messageId,
        text: "v2",
        idempotencyKey: unique(),
      });
      // Editing the edit applies to the original, as the spec requires.
      const edit2 = await bridge.messages.edit({
        conversationId: id,
        senderId: "Alice",
        messageId: edit1.messageId,
        text: "v3",
        idempotencyKey: unique(),
      });
      const e2 = await waitForEvent(bridge.store, (e) => e.event_id === edit2.messageId);
      expect(e2).toMatchObject({
        type: "message.edited",
        replaces_message_id: original.messageId,
        content: { kind: "text", body: "v3" },
      });
      const e1 = await waitForEvent(bridge.store, (e) => e.event_id === edit1.messageId);
      expect(e1).toMatchObject({
        type: "message.edited",
        replaces_message_id: original.messageId,
        content: { body: "v2" },
      });
      // The raw event carries the fallback for clients without edits.
      const raw = await fetch(
        `${stack.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent((await bridge.conversations.get(id)).roomId)}/event/${encodeURIComponent(edit2.messageId)}?user_id=${encodeURIComponent(stack.config.serviceUser)}`,
        { headers: { authorization: `Bearer ${stack.secrets.asToken}` } },
      );
      expect(((await raw.json()) as { content: { body: string } }).content.body).toBe("* v3");

      const { redactionId } = await bridge.messages.delete({
        conversationId: id,
        senderId: "Alice",
        messageId: original.messageId,
        reason: "typo",
        idempotencyKey: unique(),
      });
      const deleted = await waitForEvent(bridge.store, (e) => e.event_id === redactionId);
      expect(deleted).toMatchObject({
        type: "message.deleted",
        message_id: original.messageId,
        sender_id: "Alice",
        reason: "typo",
      });
      // The edits' content is gone too, and their redactions did not become events of their own.
      const history = await bridge.messages.history(id);
      expect(history.events.filter((e) => e.type === "message.edited")).toEqual([]);
      expect(history.events.filter((e) => e.type === "message.deleted").map((e) => e.message_id)).toEqual([
        original.messageId,
      ]);
      const logged = (await readAll(bridge.store))
        .filter((e) => e.event.conversation_id === id)
        .map((e) => e.event.type);
      expect(logged).toEqual(["message.new", "message.edited", "message.edited", "message.deleted"]);
    });

    it("pages history newest first in the same shape as the live events", async () => {
      const id = `group-${unique()}`;
      await bridge.conversations.ensureGroup(id, { name: "History", members: ["Alice"] });
      const ids: string[] = [];
      for (let i = 0; i < 7; i++)
        ids.push(
          (
            await bridge.messages.sendText({
              conversationId: id,
              senderId: "Alice",
              text: `m${i}`,
              idempotencyKey: unique(),
            })
          ).messageId,
        );
      const pages = [];
      let before: string | undefined;
      do {
        const page = await bridge.messages.history(id, { limit: 3, ...(before ? { before } : {}) });
        pages.push(page.events);
        before = page.nextCursor;
      } while (before);
      const seen = pages.flat();
      expect(seen.map((e) => e.message_id)).toEqual([...ids].reverse());
      await waitForEvent(bridge.store, (e) => e.event_id === ids.at(-1));
      const live = (await readAll(bridge.store)).map((e) => e.event).filter((e) => e.conversation_id === id);
      expect([...seen].reverse()).toEqual(live);
    });

    it("uploads a real WAV file and sends m.audio with its mxc URI, mimetype, size and duration", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      const wav = sineWav(750);
      const sent = await bridge.messages.sendAudio({
        conversationId: id,
        senderId: "bob",
        audio: wav,
        mimetype: "audio/wav",
        durationMs: 750,
        filename: "hello.wav",
        idempotencyKey: unique(),
      });
      const event = await waitForEvent(bridge.store, (e) => e.event_id === sent.messageId);
      expect(event).toMatchObject({
        type: "message.new",
        sender_id: "bob",
        content: {
          kind: "audio",
          body: "hello.wav",
          mimetype: "audio/wav",
          size: wav.byteLength,
          duration_ms: 750,
        },
      });
      if (event.type !== "message.new" || event.content.kind !== "audio") throw new Error("expected audio");
      // The bytes behind the mxc URI are the file's.
      const [serverName, mediaId] = event.content.url.slice("mxc://".length).split("/");
      const download = await fetch(
        `${stack.synapse.baseUrl}/_matrix/client/v1/media/download/${serverName}/${mediaId}?user_id=${encodeURIComponent(stack.config.serviceUser)}`,
        { headers: { authorization: `Bearer ${stack.secrets.asToken}` } },
      );
      expect(download.status).toBe(200);
      expect(new Uint8Array(await download.arrayBuffer())).toEqual(wav);
    });

    it("refuses audio above the homeserver's limit and non-audio before any byte goes out", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      const mediaFiles = () => countFiles(stack.synapse.hostPath("media"));
      const input = { conversationId: id, senderId: "bob", mimetype: "audio/wav", idempotencyKey: unique() };
      // The count sees an upload (so an unchanged count below means nothing was stored).
      const empty = await mediaFiles();
      await bridge.messages.sendAudio({ ...input, audio: sineWav(20) });
      const before = await mediaFiles();
      expect(before).toBeGreaterThan(empty);
      await expect(
        bridge.messages.sendAudio({ ...input, audio: new Uint8Array(256 * 1024 + 1) }),
      ).rejects.toThrow(/audio: is 262145 bytes; the homeserver accepts at most 262144/);
      await expect(
        bridge.messages.sendAudio({ ...input, audio: sineWav(10), mimetype: "image/png" }),
      ).rejects.toThrow(UploadRejectedError);
      await expect(
        bridge.messages.sendAudio({ ...input, audio: sineWav(10), mimetype: "image/png" }),
      ).rejects.toThrow(/mimetype: expected an audio MIME type/);
      await expect(bridge.messages.sendAudio({ ...input, audio: "bytes" as never })).rejects.toThrow(
        /audio: expected/,
      );
      expect(await mediaFiles()).toBe(before);
    });

    it("answers a retried audio send with the first message and its URI, uploading nothing again", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      const input = {
        conversationId: id,
        senderId: "bob",
        mimetype: "audio/wav",
        idempotencyKey: unique(),
        audio: sineWav(20),
      };
      const first = await bridge.messages.sendAudio(input);
      expect(first.url).toMatch(/^mxc:\/\//);
      const filesAfterFirst = await countFiles(stack.synapse.hostPath("media"));
      expect(await bridge.messages.sendAudio(input)).toEqual(first);
      expect(await countFiles(stack.synapse.hostPath("media"))).toBe(filesAfterFirst);
    });

    it("sends every attachment kind, typed from the bytes, as the sync side sees it, readable by members only", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      await bridge.conversations.ensureGroup(`other-${id}`, { name: "other", members: ["carol"] });
      const files = [
        {
          data: gradientPng(64, 48),
          contentType: "image/png",
          expected: { kind: "image", width: 64, height: 48 },
        },
        // The container says nothing of the duration here (no audio track): the caller's value is kept.
        {
          data: videoMp4(2000, 320, 240),
          contentType: "video/mp4",
          durationMs: 2000,
          expected: { kind: "video", duration_ms: 2000 },
        },
        { data: sineWav(500), contentType: "audio/wav", expected: { kind: "audio", duration_ms: 500 } },
        {
          data: onePagePdf("hello"),
          filename: "hello.pdf",
          expected: { kind: "file", body: "hello.pdf", mimetype: "application/pdf" },
        },
      ];
      for (const file of files) {
        const { expected, ...input } = file;
        const sent = await bridge.messages.sendMedia({
          conversationId: id,
          senderId: "bob",
          idempotencyKey: unique(),
          ...input,
        });
        const event = await waitForEvent(bridge.store, (e) => e.event_id === sent.messageId);
        if (event.type !== "message.new" || event.content.kind === "text")
          throw new Error("expected an attachment");
        // What the send answered is what the sync side logged.
        expect(event.content).toEqual(sent.content);
        expect(event.content).toMatchObject({ ...expected, size: file.data.byteLength, url: sent.url });
        expect(await bridge.media.mayRead(event.content.url, "Alice")).toBe(true);
        expect(await bridge.media.mayRead(event.content.url, undefined)).toBe(true);
        expect(await bridge.media.mayRead(event.content.url, "carol")).toBe(false);
        const response = await bridge.media.open(event.content.url);
        expect(response.status).toBe(200);
        expect(new Uint8Array(await response.arrayBuffer())).toEqual(file.data);
      }
      expect(await bridge.media.mayRead(`mxc://${stack.serverName}/nosuchmedia`, undefined)).toBe(false);
    });

    it("a deleted attachment's media is no longer readable; a retried send uploads nothing", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      const input = {
        conversationId: id,
        senderId: "Alice",
        idempotencyKey: unique(),
        data: gradientPng(16, 16),
      };
      const sent = await bridge.messages.sendMedia(input);
      const url = sent.url as string;
      // Readable at once by the sender's conversation, before the sync loop logged it.
      expect(await bridge.media.mayRead(url, "bob")).toBe(true);
      expect(await bridge.messages.sendMedia(input)).toEqual(sent);
      const thumbnail = await bridge.media.openThumbnail(url, "small");
      expect(thumbnail.status).toBe(200);
      expect(thumbnail.headers.get("content-type")).toMatch(/^image\//);
      const deleted = await bridge.messages.delete({
        conversationId: id,
        senderId: "Alice",
        messageId: sent.messageId,
        idempotencyKey: unique(),
      });
      await waitForEvent(bridge.store, (e) => e.event_id === deleted.redactionId);
      expect(await bridge.media.mayRead(url, "bob")).toBe(false);
      expect(await bridge.media.mayRead(url, undefined)).toBe(false);
    });

    it("refuses unsupported files (415) and a type the bytes contradict, before any byte goes out", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      const before = await countFiles(stack.synapse.hostPath("media"));
      const send = (data: Uint8Array, contentType?: string) =>
        bridge.messages.sendMedia({
          conversationId: id,
          senderId: "bob",
          idempotencyKey: unique(),
          data,
          ...(contentType ? { contentType } : {}),
        });
      await expect(
        send(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, ...new Array(60).fill(0)])),
      ).rejects.toThrow(/mimetype: /);
      await expect(send(gradientPng(4, 4), "audio/ogg")).rejects.toThrow(
        /content-type says audio\/ogg but the bytes are image\/png/,
      );
      await expect(send(new Uint8Array(256 * 1024 + 1))).rejects.toThrow(
        /data: is 262145 bytes; the homeserver accepts at most 262144/,
      );
      await expect(send(new Uint8Array(0))).rejects.toThrow(/data: is empty/);
      expect(await countFiles(stack.synapse.hostPath("media"))).toBe(before);
    });

    it("rejects malformed sends with the field named", async () => {
      const id = `dm-${unique()}`;
      await bridge.conversations.ensureDirect(id, ["Alice", "bob"]);
      const input = { conversationId: id, senderId: "Alice", text: "x", idempotencyKey: "k" };
      await expect(bridge.messages.sendText({ ...input, text: "" })).rejects.toThrow(
        /text: must not be empty/,
      );
      await expect(bridge.messages.sendText({ ...input, idempotencyKey: "" })).rejects.toThrow(
        /idempotencyKey/,
      );
      await expect(bridge.messages.sendText({ ...input, senderId: 42 as never })).rejects.toThrow(/senderId/);
      await expect(bridge.messages.edit({ ...input, messageId: "nope" })).rejects.toThrow(
        /messageId: expected a message id/,
      );
      await expect(bridge.messages.history(id, { limit: 0 })).rejects.toThrow(/limit/);
      // Well-formed but not allowed or not there: still a clear error naming the field.
      await expect(bridge.messages.sendText({ ...input, senderId: "mallory" })).rejects.toThrow(
        /senderId: mallory may not do this in conversation/,
      );
      const { messageId } = await bridge.messages.sendText({ ...input, idempotencyKey: unique() });
      await expect(
        bridge.messages.delete({ conversationId: id, senderId: "bob", messageId, idempotencyKey: unique() }),
      ).rejects.toThrow(NotAuthorError);
      await expect(bridge.messages.edit({ ...input, messageId: "$doesnotexist" })).rejects.toThrow(
        /messageId: no such message in this conversation/,
      );
    });
  });
});
