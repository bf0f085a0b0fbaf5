// Attachments through the HTTP API and the media route, and what a user token may do, on the real Synapse.
import { randomBytes } from "node:crypto";
import { waitFor } from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import type { RunningService } from "../src/service/run.ts";
import type { WireContent, WireEvent } from "../src/service/schemas.ts";
import { signUserToken } from "../src/service/tokens.ts";
import { gradientPng, onePagePdf, videoMp4 } from "./samples.ts";
import { call, runTestService } from "./service-helpers.ts";
import { sineWav } from "./wav.ts";

const unique = () => randomBytes(4).toString("hex");
const API_TOKEN = randomBytes(32).toString("base64url");
const SIGNING_KEY = new Secret(randomBytes(32).toString("base64url"));
const userToken = (userId: string) => signUserToken(SIGNING_KEY, userId, Math.floor(Date.now() / 1000) + 600);

type Attachment = Exclude<WireContent, { kind: "text" }>;
interface Sent {
  message_id: string;
  sender_id: string;
  content: Attachment;
}

describeWithHarness("attachments and the media route against the real Synapse", () => {
  let stack: TestStack;
  let service: RunningService;
  let url: string;
  const conversation = `media-${unique()}`;

  const upload = async (
    data: Uint8Array,
    options: { token?: string; query?: string; contentType?: string } = {},
  ) =>
    call(
      url,
      "POST",
      `/v1/conversations/${conversation}/media?client_message_id=${unique()}${options.query ?? "&sender_id=alice"}`,
      {
        token: options.token ?? API_TOKEN,
        raw: data,
        ...(options.contentType ? { contentType: options.contentType } : {}),
      },
    );
  /** GET through the bridge, with any headers (Range, If-None-Match), as bytes. */
  const fetchMedia = async (
    path: string,
    token: string | undefined,
    headers: Record<string, string> = {},
  ) => {
    const response = await fetch(`${url}${path}`, {
      headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    return {
      status: response.status,
      headers: response.headers,
      bytes: new Uint8Array(await response.arrayBuffer()),
    };
  };

  beforeAll(async () => {
    stack = await startTestStack({
      serverName: "media.test",
      homeserverOverrides: { max_upload_size: "2M" },
    });
    service = await runTestService(stack, {
      databaseUrl: await stack.newBridgeDatabase(),
      apiToken: new Secret(API_TOKEN),
      signingKey: SIGNING_KEY,
      // The bridge's body limit is the homeserver's max_upload_size, as the Deployment sets it.
      limits: { uploadBodyBytes: 2 * 2 ** 20 },
    });
    await service.active;
    url = service.url;
    const created = await call(url, "POST", "/v1/conversations", {
      token: API_TOKEN,
      json: { conversation_id: conversation, kind: "group", members: ["alice", "bob"] },
    });
    expect(created.status).toBe(200);
    const other = await call(url, "POST", "/v1/conversations", {
      token: API_TOKEN,
      json: { conversation_id: `other-${conversation}`, kind: "group", members: ["carol"] },
    });
    expect(other.status).toBe(200);
  });

  afterAll(async () => {
    await service?.stop();
    await stack?.stop();
  });

  describe("upload every kind and fetch it back through the bridge", () => {
    const files = [
      { name: "image", data: gradientPng(64, 48), contentType: "image/png", kind: "image" },
      { name: "video", data: videoMp4(1500, 320, 240), contentType: "video/mp4", kind: "video" },
      { name: "audio", data: sineWav(400), contentType: "audio/wav", kind: "audio" },
      { name: "file", data: onePagePdf("hi"), kind: "file" },
    ] as const;

    it.each(files)(
      "$name: typed from its bytes, byte for byte to a member, refused to a non-member",
      async (file) => {
        const sent = await upload(file.data, "contentType" in file ? { contentType: file.contentType } : {});
        expect(sent.status, JSON.stringify(sent.body)).toBe(200);
        const { content } = sent.body as Sent;
        expect(content).toMatchObject({ kind: file.kind, size: file.data.byteLength });
        const [server, id] = content.url.slice("mxc://".length).split("/");
        expect(content.media_url).toBe(`/v1/media/${server}/${id}`);
        // The member (bob did not send it), the service, and a member with the token in the query.
        for (const token of [userToken("bob"), API_TOKEN]) {
          const got = await fetchMedia(content.media_url, token);
          expect(got.status).toBe(200);
          expect(Buffer.from(got.bytes).equals(Buffer.from(file.data))).toBe(true);
          expect(got.headers.get("etag")).toMatch(/^".+"$/);
          expect(got.headers.get("cache-control")).toMatch(/private/);
        }
        const query = await fetchMedia(`${content.media_url}?access_token=${userToken("bob")}`, undefined);
        expect(Buffer.from(query.bytes).equals(Buffer.from(file.data))).toBe(true);
        // carol is in another conversation: the same 404 as for media that does not exist.
        const refused = await fetchMedia(content.media_url, userToken("carol"));
        const unknown = await fetchMedia(`/v1/media/${server}/NoSuchMedia${unique()}`, userToken("carol"));
        expect([refused.status, unknown.status]).toEqual([404, 404]);
        expect(Buffer.from(refused.bytes).toString()).toBe(Buffer.from(unknown.bytes).toString());
        // No token at all: 401 before anything is looked up.
        expect((await fetchMedia(content.media_url, undefined)).status).toBe(401);
      },
    );

    it("every message.new with media carries the bridge URL next to the mxc:// URI, on the stream and in history", async () => {
      const sent = (await upload(gradientPng(20, 10), { contentType: "image/png" })).body as Sent;
      let event: WireEvent | undefined;
      await waitFor(
        async () => {
          const history = await call(url, "GET", `/v1/conversations/${conversation}/messages?limit=20`, {
            token: userToken("bob"),
          });
          event = (history.body as { events: WireEvent[] }).events.find(
            (e) => e.message_id === sent.message_id,
          );
          return event !== undefined;
        },
        { timeoutMs: 20_000, describe: () => "the image never reached history" },
      );
      expect(event?.content).toEqual(sent.content);
      expect(event?.content).toMatchObject({ kind: "image", width: 20, height: 10 });
    });
  });

  describe("the media route", () => {
    let audio: Attachment;
    let wav: Uint8Array;
    beforeAll(async () => {
      wav = sineWav(300);
      audio = ((await upload(wav, { contentType: "audio/wav" })).body as Sent).content;
    });

    it("answers a Range request with 206 and exactly those bytes, and 416 past the end", async () => {
      const token = userToken("alice");
      const part = await fetchMedia(audio.media_url, token, { range: "bytes=100-199" });
      expect(part.status).toBe(206);
      expect(part.headers.get("content-range")).toBe(`bytes 100-199/${wav.byteLength}`);
      expect(Buffer.from(part.bytes).equals(Buffer.from(wav.subarray(100, 200)))).toBe(true);
      const tail = await fetchMedia(audio.media_url, token, { range: "bytes=-10" });
      expect(Buffer.from(tail.bytes).equals(Buffer.from(wav.subarray(wav.byteLength - 10)))).toBe(true);
      const past = await fetchMedia(audio.media_url, token, { range: `bytes=${wav.byteLength + 5}-` });
      expect(past.status).toBe(416);
      expect(past.headers.get("content-range")).toBe(`bytes */${wav.byteLength}`);
    });

    it("answers 304 to a matching If-None-Match", async () => {
      const token = userToken("alice");
      const first = await fetchMedia(audio.media_url, token);
      const again = await fetchMedia(audio.media_url, token, {
        "if-none-match": first.headers.get("etag") ?? "",
      });
      expect(again.status).toBe(304);
      expect(again.bytes.byteLength).toBe(0);
    });

    it("serves the homeserver's thumbnails of an image at fixed sizes", async () => {
      const image = ((await upload(gradientPng(640, 480), { contentType: "image/png" })).body as Sent)
        .content;
      if (image.kind !== "image") throw new Error("expected an image");
      expect(image.thumbnail_url).toBe(`${image.media_url}/thumbnail/medium`);
      for (const size of ["small", "medium", "large"]) {
        const thumb = await fetchMedia(`${image.media_url}/thumbnail/${size}`, userToken("bob"));
        expect(thumb.status, size).toBe(200);
        expect(thumb.headers.get("content-type")).toMatch(/^image\/(png|jpeg)/);
        // Smaller than the original: the homeserver made it.
        expect(thumb.bytes.byteLength).toBeLessThan(640 * 480 * 3);
        expect(thumb.bytes.subarray(0, 4)).toSatisfy(
          (head: Uint8Array) => head[0] === 0x89 || (head[0] === 0xff && head[1] === 0xd8),
        );
      }
      expect((await fetchMedia(`${image.media_url}/thumbnail/huge`, userToken("bob"))).status).toBe(400);
      expect((await fetchMedia(`${image.media_url}/thumbnail/small`, userToken("carol"))).status).toBe(404);
    });

    it("stops serving a deleted message's media", async () => {
      const sent = (await upload(gradientPng(8, 8), { contentType: "image/png" })).body as Sent;
      expect((await fetchMedia(sent.content.media_url, userToken("bob"))).status).toBe(200);
      const deleted = await call(
        url,
        "DELETE",
        `/v1/conversations/${conversation}/messages/${sent.message_id}`,
        {
          token: API_TOKEN,
          json: { sender_id: "alice" },
        },
      );
      expect(deleted.status).toBe(200);
      await waitFor(async () => (await fetchMedia(sent.content.media_url, API_TOKEN)).status === 404, {
        timeoutMs: 20_000,
        describe: () => "the deleted message's media was still served",
      });
      expect((await fetchMedia(sent.content.media_url, userToken("bob"))).status).toBe(404);
    });
  });

  describe("uploads that are refused", () => {
    it("415 for an unsupported type or a contradicting Content-Type, 413 over the upload limit, 400 without a body", async () => {
      const elf = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, ...new Array(60).fill(0)]);
      const binary = await upload(elf);
      expect([binary.status, (binary.body as { error: { code: string } }).error.code]).toEqual([
        415,
        "unsupported_media_type",
      ]);
      expect((await upload(gradientPng(4, 4), { contentType: "audio/ogg" })).status).toBe(415);
      expect((await upload(new Uint8Array(2 * 2 ** 20 + 1), { contentType: "image/png" })).status).toBe(413);
      expect((await upload(new Uint8Array(0), { contentType: "image/png" })).status).toBe(400);
    });

    it("is idempotent by client_message_id: a retry answers the first message", async () => {
      const key = unique();
      const path = `/v1/conversations/${conversation}/media?sender_id=alice&client_message_id=${key}`;
      const data = gradientPng(12, 12);
      const first = await call(url, "POST", path, { token: API_TOKEN, raw: data, contentType: "image/png" });
      const again = await call(url, "POST", path, { token: API_TOKEN, raw: data, contentType: "image/png" });
      expect(first.status).toBe(200);
      expect((again.body as Sent).message_id).toBe((first.body as Sent).message_id);
      expect((again.body as Sent).content.url).toBe((first.body as Sent).content.url);
    });
  });

  describe("a user token acts as its own user, in its own conversations", () => {
    it("lists its conversations, reads their history, sends, edits and deletes its own messages", async () => {
      const bob = userToken("bob");
      const list = await call(url, "GET", "/v1/conversations", { token: bob });
      expect(list.body).toEqual({ conversations: [{ conversation_id: conversation, kind: "group" }] });
      const sent = await call(url, "POST", `/v1/conversations/${conversation}/messages`, {
        token: bob,
        json: { text: "from bob's own token", client_message_id: unique() },
      });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      expect(sent.body).toMatchObject({ sender_id: "bob" });
      const messageId = (sent.body as Sent).message_id;
      const path = `/v1/conversations/${conversation}/messages/${encodeURIComponent(messageId)}`;
      expect((await call(url, "PATCH", path, { token: bob, json: { text: "edited" } })).status).toBe(200);
      expect((await call(url, "DELETE", path, { token: bob })).status).toBe(200);
      const media = await upload(sineWav(50), { token: bob, query: "", contentType: "audio/wav" });
      expect(media.body).toMatchObject({ sender_id: "bob", content: { kind: "audio" } });
    });

    it("never as someone else, never outside its conversations, never managing members", async () => {
      const carol = userToken("carol");
      const bob = userToken("bob");
      const as = (token: string, method: string, path: string, json?: unknown) =>
        call(url, method, path, { token, ...(json === undefined ? {} : { json }) });
      // Another user's name: 403, whatever the route.
      expect(
        (
          await as(bob, "POST", `/v1/conversations/${conversation}/messages`, {
            sender_id: "alice",
            text: "x",
            client_message_id: unique(),
          })
        ).status,
      ).toBe(403);
      expect((await as(bob, "GET", "/v1/conversations?user_id=alice")).status).toBe(403);
      // Not a member: history is 404 like an unknown conversation; a send is refused.
      expect((await as(carol, "GET", `/v1/conversations/${conversation}/messages`)).status).toBe(404);
      expect(
        (
          await as(carol, "POST", `/v1/conversations/${conversation}/messages`, {
            text: "x",
            client_message_id: unique(),
          })
        ).status,
      ).toBeGreaterThanOrEqual(400);
      // Creating: only with oneself in it, only new; "ensuring" someone else's group would have added members.
      expect(
        (
          await as(carol, "POST", "/v1/conversations", {
            conversation_id: unique(),
            kind: "group",
            members: ["dave"],
          })
        ).status,
      ).toBe(403);
      expect(
        (
          await as(carol, "POST", "/v1/conversations", {
            conversation_id: conversation,
            kind: "group",
            members: ["carol"],
          })
        ).status,
      ).toBe(409);
      const members = await call(url, "GET", "/v1/conversations?user_id=carol", { token: API_TOKEN });
      expect(members.body).toEqual({
        conversations: [{ conversation_id: `other-${conversation}`, kind: "group" }],
      });
      const own = `carols-${unique()}`;
      const created = await as(carol, "POST", "/v1/conversations", {
        conversation_id: own,
        kind: "dm",
        members: ["carol", "dave"],
      });
      expect(created.status, JSON.stringify(created.body)).toBe(200);
      // Member management stays with the service.
      expect((await as(carol, "POST", `/v1/conversations/${own}/members`, { user_id: "erin" })).status).toBe(
        403,
      );
    });
  });
});
