// Bad input, table-driven, over the real HTTP API (the real Synapse and PostgreSQL behind it): forged tokens,
// malformed and oversized bodies, wrong types, unicode edge cases, ids that cannot become Matrix ids, path
// traversal. Every case gets its documented 4xx in the API's error shape, and nothing changes: not Synapse's
// database (events, users, rooms, aliases, state, media) and not the bridge's (event log, sent transactions).
// Valid unicode, on the other hand, must arrive byte for byte.
import { randomBytes } from "node:crypto";
import { waitFor } from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import type { RunningService } from "../src/service/run.ts";
import { signUserToken } from "../src/service/tokens.ts";
import { PostgresEventStore } from "../src/store/postgres.ts";
import { readAll } from "./log.ts";
import { openEvents, runTestService, rawCall as send, UpgradeRefused } from "./service-helpers.ts";
import { databaseName, stateSnapshot } from "./state.ts";

const API_TOKEN = randomBytes(32).toString("base64url");
/** The API token with its last character changed (to another one, whatever it was). */
const almostApiToken = `${API_TOKEN.slice(0, -1)}${API_TOKEN.endsWith("A") ? "B" : "A"}`;
const SIGNING_KEY = new Secret(randomBytes(32).toString("base64url"));
const OTHER_KEY = new Secret(randomBytes(32).toString("base64url"));
// Valid for the whole run (the cases are made when the file loads; a loaded machine takes minutes to reach them).
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const CONV = "bad-input-conv";

interface Case {
  name: string;
  method?: string;
  /** Default: a text send to the test conversation. */
  path?: string;
  /** Default: the API token. */
  auth?: string | null;
  json?: unknown;
  raw?: string | Buffer;
  contentType?: string;
  status: number;
  code: string;
  field?: string;
}

const MESSAGES = `/v1/conversations/${CONV}/messages`;
const good = (extra: Record<string, unknown> = {}) => ({
  sender_id: "alice",
  text: "hi",
  client_message_id: `k-${randomBytes(4).toString("hex")}`,
  ...extra,
});
const forgedPayload = Buffer.from(JSON.stringify({ sub: "mallory", exp: inAnHour() })).toString("base64url");

const CASES: Case[] = [
  // Tokens
  { name: "no token", auth: null, json: good(), status: 401, code: "unauthorized" },
  { name: "empty bearer", auth: "Bearer ", json: good(), status: 401, code: "unauthorized" },
  { name: "Basic scheme", auth: `Basic ${API_TOKEN}`, json: good(), status: 401, code: "unauthorized" },
  {
    name: "forged API token of the same length",
    auth: `Bearer ${randomBytes(32).toString("base64url")}`,
    json: good(),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "API token with one more character",
    auth: `Bearer ${API_TOKEN}x`,
    json: good(),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "API token in the query string of a REST route",
    auth: null,
    path: `${MESSAGES}?access_token=${API_TOKEN}`,
    json: good(),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "user token with a forged signature",
    auth: `Bearer v1.${forgedPayload}.${randomBytes(32).toString("base64url")}`,
    json: good(),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "user token with a changed payload and the original signature",
    auth: `Bearer v1.${forgedPayload}.${signUserToken(SIGNING_KEY, "alice", inAnHour()).split(".")[2]}`,
    json: good(),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "user token signed with another key",
    auth: `Bearer ${signUserToken(OTHER_KEY, "alice", inAnHour())}`,
    json: good(),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "expired user token",
    auth: `Bearer ${signUserToken(SIGNING_KEY, "alice", Math.floor(Date.now() / 1000) - 1)}`,
    json: good(),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "user token without a signature",
    auth: `Bearer v1.${forgedPayload}.`,
    json: good(),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "valid user token sending as someone else",
    auth: `Bearer ${signUserToken(SIGNING_KEY, "mallory", inAnHour())}`,
    json: good(),
    status: 403,
    code: "forbidden",
  },
  // Malformed and oversized bodies
  { name: "truncated JSON", raw: '{"sender_id": "alice", "te', status: 400, code: "invalid_request" },
  { name: "a JSON array", json: [good()], status: 400, code: "invalid_request", field: "body" },
  { name: "a JSON string", json: "hi", status: 400, code: "invalid_request", field: "body" },
  { name: "JSON null", raw: "null", status: 400, code: "invalid_request", field: "body" },
  { name: "an empty JSON body", raw: "", status: 400, code: "invalid_request" },
  {
    name: "text/plain body",
    raw: "hi",
    contentType: "text/plain",
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "form-encoded body",
    raw: "sender_id=alice&text=hi",
    contentType: "application/x-www-form-urlencoded",
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "a 300 KiB body",
    json: good({ text: "x".repeat(300 * 1024) }),
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "__proto__ pollution",
    raw: `{"sender_id":"alice","text":"hi","client_message_id":"p1","__proto__":{"admin":true}}`,
    status: 400,
    code: "invalid_request",
  },
  {
    name: "constructor.prototype pollution",
    raw: `{"sender_id":"alice","text":"hi","client_message_id":"p2","constructor":{"prototype":{"admin":true}}}`,
    status: 400,
    code: "invalid_request",
  },
  {
    name: "an unknown field",
    json: good({ room_id: "!x:y" }),
    status: 400,
    code: "invalid_request",
    field: "room_id",
  },
  // Wrong types
  { name: "text is a number", json: good({ text: 42 }), status: 400, code: "invalid_request", field: "text" },
  {
    name: "text is a list",
    json: good({ text: ["hi"] }),
    status: 400,
    code: "invalid_request",
    field: "text",
  },
  { name: "text is empty", json: good({ text: "" }), status: 400, code: "invalid_request", field: "text" },
  {
    name: "sender_id is null",
    json: good({ sender_id: null }),
    status: 400,
    code: "invalid_request",
    field: "sender_id",
  },
  {
    name: "client_message_id is an object",
    json: good({ client_message_id: { id: 1 } }),
    status: 400,
    code: "invalid_request",
    field: "client_message_id",
  },
  {
    name: "members is a string",
    path: "/v1/conversations",
    json: { conversation_id: "c-new", kind: "group", members: "alice" },
    status: 400,
    code: "invalid_request",
    field: "members",
  },
  {
    name: "members is empty",
    path: "/v1/conversations",
    json: { conversation_id: "c-new", kind: "group", members: [] },
    status: 400,
    code: "invalid_request",
    field: "members",
  },
  {
    name: "kind is a number",
    path: "/v1/conversations",
    json: { conversation_id: "c-new", kind: 1, members: ["alice"] },
    status: 400,
    code: "invalid_request",
    field: "kind",
  },
  {
    name: "ttl_seconds is a string",
    path: "/v1/user-tokens",
    json: { user_id: "alice", ttl_seconds: "60" },
    status: 400,
    code: "invalid_request",
    field: "ttl_seconds",
  },
  {
    name: "history limit is not a number",
    method: "GET",
    path: `${MESSAGES}?limit=ten`,
    status: 400,
    code: "invalid_request",
    field: "limit",
  },
  {
    name: "history limit above 200",
    method: "GET",
    path: `${MESSAGES}?limit=201`,
    status: 400,
    code: "invalid_request",
    field: "limit",
  },
  {
    name: "audio as text/plain",
    path: `/v1/conversations/${CONV}/audio?sender_id=alice&client_message_id=a1`,
    raw: "not audio",
    contentType: "text/plain",
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "audio with a negative duration",
    path: `/v1/conversations/${CONV}/audio?sender_id=alice&client_message_id=a2&duration_ms=-1`,
    raw: Buffer.from("RIFF"),
    contentType: "audio/wav",
    status: 400,
    code: "invalid_request",
    field: "duration_ms",
  },
  // Unicode edge cases and size limits
  {
    name: "65,537 characters of text",
    json: good({ text: "a".repeat(65_537) }),
    status: 400,
    code: "invalid_request",
    field: "text",
  },
  {
    name: "64 KiB of text (Synapse's whole-event limit is 64 KiB)",
    json: good({ text: "a".repeat(65_536) }),
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "32,768 emoji (64 Ki UTF-16 units, 128 KiB of UTF-8)",
    json: good({ text: "😀".repeat(32_768) }),
    status: 413,
    code: "payload_too_large",
  },
  // Ids that cannot become Matrix ids, and path traversal
  {
    name: "sender_id of 256 characters",
    json: good({ sender_id: "a".repeat(256) }),
    status: 400,
    code: "invalid_request",
    field: "sender_id",
  },
  {
    name: "sender_id whose Matrix id would pass 255 bytes once escaped",
    json: good({ sender_id: "é".repeat(60) }),
    status: 400,
    code: "invalid_request",
    field: "sender_id",
  },
  {
    name: "a sender who is not a member",
    json: good({ sender_id: "mallory" }),
    status: 400,
    code: "invalid_request",
    field: "sender_id",
  },
  {
    name: "conversation id whose alias would pass 255 bytes once escaped",
    path: `/v1/conversations/${encodeURIComponent("é".repeat(60))}/messages`,
    json: good(),
    status: 400,
    code: "invalid_request",
    field: "conversation_id",
  },
  {
    name: "a group member whose Matrix id would pass 255 bytes",
    path: "/v1/conversations",
    json: { conversation_id: "c-new", kind: "group", members: ["alice", "é".repeat(60)] },
    status: 400,
    code: "invalid_request",
  },
  {
    name: "conversation id of 256 characters",
    path: `/v1/conversations/${"c".repeat(256)}/messages`,
    json: good(),
    status: 400,
    code: "invalid_request",
    field: "conversation_id",
  },
  {
    name: "encoded path traversal as the conversation id",
    path: "/v1/conversations/..%2F..%2Fetc%2Fpasswd/messages",
    json: good(),
    status: 404,
    code: "not_found",
    field: "conversation_id",
  },
  {
    name: "raw ../ in the path",
    path: `/v1/conversations/${CONV}/../../user-tokens/messages`,
    json: good(),
    status: 404,
    code: "not_found",
  },
  {
    name: "message id without $",
    method: "PATCH",
    path: `${MESSAGES}/not-an-event`,
    json: { sender_id: "alice", text: "edit" },
    status: 400,
    code: "invalid_request",
    field: "message_id",
  },
  {
    name: "message id with an encoded slash",
    method: "PATCH",
    path: `${MESSAGES}/%24abc%2F..%2Fx`,
    json: { sender_id: "alice", text: "edit" },
    status: 400,
    code: "invalid_request",
    field: "message_id",
  },
  {
    name: "a message id that does not exist",
    method: "PATCH",
    path: `${MESSAGES}/%24nope`,
    json: { sender_id: "alice", text: "edit" },
    status: 404,
    code: "not_found",
    field: "message_id",
  },
];

describeWithHarness("bad input over the HTTP API: documented 4xx, nothing changed", () => {
  let stack: TestStack;
  let service: RunningService;
  let store: PostgresEventStore;
  let bridgeDatabase: string;

  const snapshot = () => stateSnapshot(stack, bridgeDatabase);

  beforeAll(async () => {
    stack = await startTestStack({ serverName: "bad-input.test" });
    const url = await stack.newBridgeDatabase();
    bridgeDatabase = databaseName(url);
    service = await runTestService(stack, {
      databaseUrl: url,
      apiToken: new Secret(API_TOKEN),
      signingKey: SIGNING_KEY,
      syncPollMs: 500,
    });
    await service.active;
    store = new PostgresEventStore(url);
    const headers = { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" };
    const created = await send(
      service.url,
      "POST",
      "/v1/conversations",
      headers,
      JSON.stringify({ conversation_id: CONV, kind: "group", members: ["alice", "bob"] }),
    );
    expect(created.status).toBe(200);
    const first = await send(service.url, "POST", MESSAGES, headers, JSON.stringify(good()));
    expect(first.status).toBe(200);
    await waitFor(async () => (await readAll(store)).length === 1, {
      timeoutMs: 20_000,
      describe: () => "the first message never reached the log",
    });
  });

  afterAll(async () => {
    await service?.stop();
    await store?.close();
    await stack?.stop();
  });

  it.each(CASES)("$name: $status $code", async (testCase) => {
    const before = await snapshot();
    const headers: Record<string, string> = {};
    if (testCase.auth !== null) headers.authorization = testCase.auth ?? `Bearer ${API_TOKEN}`;
    let body: string | Buffer | undefined;
    if (testCase.raw !== undefined) {
      body = testCase.raw;
      headers["content-type"] = testCase.contentType ?? "application/json";
    } else if (testCase.json !== undefined) {
      body = JSON.stringify(testCase.json);
      headers["content-type"] = "application/json";
    }
    const answer = await send(
      service.url,
      testCase.method ?? "POST",
      testCase.path ?? MESSAGES,
      headers,
      body,
    );
    expect({ status: answer.status, code: answer.body.error?.code }).toEqual({
      status: testCase.status,
      code: testCase.code,
    });
    expect(answer.body.error?.message).toEqual(expect.any(String));
    if (testCase.field) expect(answer.body.error?.field).toBe(testCase.field);
    // No error message carries a secret.
    expect(JSON.stringify(answer.body)).not.toContain(API_TOKEN);
    expect(JSON.stringify(answer.body)).not.toContain(stack.secrets.asToken);
    // Give anything half-done a moment to surface in Synapse or the log, then compare.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await snapshot()).toEqual(before);
  });

  it("fuzzed: random methods, paths, headers and bodies never answer 5xx, and a 4xx changes nothing", async () => {
    const prefixes = [
      "",
      "/v1",
      "/v1/conversations",
      MESSAGES,
      `${MESSAGES}/$x`,
      "/v1/user-tokens",
      "/v1/media",
    ];
    const request = fc.record({
      method: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
      path: fc
        .tuple(fc.constantFrom(...prefixes), fc.webPath(), fc.webQueryParameters())
        // An origin-form target starts with "/" (anything else is refused by Node's HTTP parser, not the bridge).
        .map(
          ([prefix, path, query]) => `/${`${prefix}${path}`.replace(/^\//, "")}${query ? `?${query}` : ""}`,
        ),
      auth: fc.constantFrom<"none" | "service" | "garbage">("none", "service", "garbage"),
      contentType: fc.option(
        fc.constantFrom(
          "application/json",
          "text/plain",
          "application/octet-stream",
          "multipart/form-data",
          "x/y",
        ),
      ),
      body: fc.option(
        fc.oneof(
          fc.json(),
          fc.string({ maxLength: 200 }),
          fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
        ),
      ),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {};
        if (r.auth === "service") headers.authorization = `Bearer ${API_TOKEN}`;
        if (r.auth === "garbage") headers.authorization = "Bearer x.y.z";
        if (r.contentType !== null) headers["content-type"] = r.contentType;
        const before = await snapshot();
        const answer = await send(service.url, r.method, r.path, headers, r.body ?? undefined);
        expect(answer.status, `${r.method} ${r.path}`).toBeLessThan(500);
        if (answer.status >= 400) expect(await snapshot()).toEqual(before);
      }),
      { numRuns: 150, timeout: 5_000 },
    );
  }, 180_000);

  it("refuses forged and expired tokens on the WebSocket before the upgrade (401)", async () => {
    for (const token of [
      `v1.${forgedPayload}.${randomBytes(32).toString("base64url")}`,
      signUserToken(OTHER_KEY, "alice", inAnHour()),
      signUserToken(SIGNING_KEY, "alice", Math.floor(Date.now() / 1000) - 1),
      almostApiToken,
    ]) {
      const refused = await openEvents(service.url, { token }).then(
        async (client) => {
          await client.close();
          return undefined;
        },
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(UpgradeRefused);
      expect((refused as UpgradeRefused).status).toBe(401);
    }
  });

  describe("valid unicode arrives byte for byte", () => {
    const texts: [string, string][] = [
      ["right-to-left (Arabic, Hebrew with RLM)", "مرحبا بالعالم — שלום\u200f!"],
      ["zero-width joiners and spaces", "a\u200bb\u200cc\u200dd\u2060e\ufeff"],
      ["emoji sequences", "👨‍👩‍👧‍👦 🏳️‍🌈 👍🏽 🇫🇷"],
      ["combining marks", "e\u0301 Z\u0351\u0300\u0316 ñ"],
      ["bidi overrides", "\u202eevil\u202c \u2066isolate\u2069"],
      ["near the size limit (60,000 bytes of UTF-8)", `${"λ".repeat(20_000)}${"a".repeat(20_000)}`],
    ];
    it.each(texts)("%s", async (_name, text) => {
      const answer = await send(
        service.url,
        "POST",
        MESSAGES,
        { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        JSON.stringify(good({ text })),
      );
      expect(answer.status).toBe(200);
      const messageId = (answer.body as unknown as { message_id: string }).message_id;
      let logged: unknown;
      await waitFor(
        async () => {
          logged = (await readAll(store)).find((e) => e.event.event_id === messageId)?.event;
          return logged !== undefined;
        },
        { timeoutMs: 20_000, describe: () => "the message never reached the log" },
      );
      expect((logged as { content: { body: string } }).content.body).toBe(text);
    });
  });
});
