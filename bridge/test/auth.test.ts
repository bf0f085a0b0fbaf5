// Authentication is decided by the route a request matched, never by the spelling of its URL. Against the real
// Synapse and PostgreSQL (so a request that got through would really create a room, mint a token or send): every
// route fastify registered under /v1 except the OpenAPI document refuses a request without a valid token, over
// HTTP and as a WebSocket upgrade, under every spelling of its path; and nothing changes in Synapse or the bridge.
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { waitFor } from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack, testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../src/bridge.ts";
import { Secret } from "../src/config/secret.ts";
import { buildService, type RegisteredRoute, type Service } from "../src/service/app.ts";
import { signUserToken } from "../src/service/tokens.ts";
import { gradientPng } from "./samples.ts";
import { rawCall, rawUpgrade } from "./service-helpers.ts";
import { databaseName, type StateSnapshot, stateSnapshot } from "./state.ts";
import { sineWav } from "./wav.ts";

const API_TOKEN = randomBytes(32).toString("base64url");
/** The API token with its last character changed (to another one, whatever it was). */
const almostApiToken = `${API_TOKEN.slice(0, -1)}${API_TOKEN.endsWith("A") ? "B" : "A"}`;
const SIGNING_KEY = new Secret(randomBytes(32).toString("base64url"));
const OTHER_KEY = new Secret(randomBytes(32).toString("base64url"));
const inAMinute = () => Math.floor(Date.now() / 1000) + 60;
const CONV = "auth-conv";
const OPENAPI = "/v1/openapi.json";

/**
 * Spellings of a concrete path (starting with /v1/). Some still match the route after fastify's decoding (those
 * must get 401), the others match nothing (404); none may reach a handler.
 */
const SPELLINGS: [string, (path: string) => string][] = [
  ["as written", (p) => p],
  ["percent-encoded letter (%76 for v)", (p) => p.replace(/^\/v1/, "/%761")],
  ["percent-encoded digit (%31 for 1)", (p) => p.replace(/^\/v1/, "/v%31")],
  [
    "percent-encoded letter in a later segment",
    (p) => p.replace(/^\/v1\/(.)/, (_m, c: string) => `/v1/${pct(c)}`),
  ],
  ["upper-case hex (%6F for o)", (p) => p.replace("o", "%6F")],
  ["lower-case hex (%6f for o)", (p) => p.replace("o", "%6f")],
  ["every character of the first segment encoded", (p) => p.replace(/^\/v1/, "/%76%31")],
  ["double encoding (%2576)", (p) => p.replace(/^\/v1/, "/%25761")],
  ["leading //", (p) => `/${p}`],
  ["// inside", (p) => p.replace(/^\/v1\//, "/v1//")],
  ["trailing slash", (p) => `${p.split("?")[0]}/${query(p)}`],
  ["; parameter on the first segment", (p) => p.replace(/^\/v1/, "/v1;x=1")],
  ["; parameter at the end", (p) => `${p.split("?")[0]};jsessionid=1${query(p)}`],
  ["upper-case prefix", (p) => p.replace(/^\/v1/, "/V1")],
  ["upper-case path", (p) => `${(p.split("?")[0] ?? "").toUpperCase()}${query(p)}`],
  ["dot segment /./", (p) => p.replace(/^\/v1\//, "/v1/./")],
  ["dot-dot segment /x/../", (p) => `/x/..${p}`],
  ["encoded dot-dot (%2e%2e)", (p) => `/x/%2e%2e${p}`],
  ["encoded slash (%2F)", (p) => p.replace(/^\/v1\//, "/v1%2F")],
  ["backslash", (p) => p.replace(/^\/v1\//, "/v1\\")],
];
const pct = (c: string) => `%${c.charCodeAt(0).toString(16)}`;
const query = (p: string) => (p.includes("?") ? `?${p.split("?")[1]}` : "");

describeWithHarness("authentication by matched route, not by URL spelling (real Synapse)", () => {
  let stack: TestStack;
  let bridge: Bridge;
  let service: Service;
  let url: string;
  let bridgeDatabase: string;
  let messageId: string;
  let before: StateSnapshot;
  const asService = { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" };

  /** What a caller would send to each route: a valid request, so only authentication stands in the way. */
  function request(route: RegisteredRoute): { path: string; headers: Record<string, string>; body?: Buffer } {
    const path = route.url
      .replace(":conversation_id", CONV)
      .replace(":user_id", "bob")
      .replace(":message_id", encodeURIComponent(messageId))
      .replace(":server_name", "auth.test")
      .replace(":media_id", "nosuchmedia")
      .replace(":size", "small");
    const json = (value: unknown) => ({
      path,
      headers: { "content-type": "application/json" },
      body: Buffer.from(JSON.stringify(value)),
    });
    switch (`${route.method} ${route.url}`) {
      case "POST /v1/user-tokens":
        return json({ user_id: "mallory" });
      case "POST /v1/conversations":
        return json({ conversation_id: "opened-by-anyone", kind: "group", members: ["mallory"] });
      case "POST /v1/conversations/:conversation_id/members":
        return json({ user_id: "mallory" });
      case "POST /v1/conversations/:conversation_id/messages":
        return json({
          sender_id: "alice",
          text: "bypass",
          client_message_id: randomBytes(4).toString("hex"),
        });
      case "GET /v1/conversations":
        return { path: `${path}?user_id=alice`, headers: {} };
      case "POST /v1/conversations/:conversation_id/media":
        return {
          path: `${path}?sender_id=alice&client_message_id=${randomBytes(4).toString("hex")}`,
          headers: { "content-type": "image/png" },
          body: Buffer.from(gradientPng(8, 8)),
        };
      case "POST /v1/conversations/:conversation_id/audio":
        return {
          path: `${path}?sender_id=alice&client_message_id=${randomBytes(4).toString("hex")}`,
          headers: { "content-type": "audio/wav" },
          body: Buffer.from(sineWav(200)),
        };
      case "PATCH /v1/conversations/:conversation_id/messages/:message_id":
        return json({ sender_id: "alice", text: "rewritten" });
      case "DELETE /v1/conversations/:conversation_id/messages/:message_id":
        return json({ sender_id: "alice" });
      default:
        return { path, headers: {} };
    }
  }

  const protectedRoutes = () =>
    service.routes.filter((route) => route.url.startsWith("/v1") && route.url !== OPENAPI);

  beforeAll(async () => {
    stack = await startTestStack({ serverName: "auth.test" });
    const databaseUrl = await stack.newBridgeDatabase();
    bridgeDatabase = databaseName(databaseUrl);
    bridge = await startBridge({
      config: stack.config,
      store: databaseUrl,
      logger: testLogger(),
      syncTuning: { pollTimeoutMs: 500 },
    });
    service = await buildService({
      bridge,
      homeserverUrl: stack.config.homeserverUrl,
      apiToken: new Secret(API_TOKEN),
      signingKey: SIGNING_KEY,
      logger: testLogger(),
    });
    await service.app.listen({ host: "127.0.0.1", port: 0 });
    url = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
    // A real conversation and message, so the routes' parameters name things that exist.
    const created = await rawCall(
      url,
      "POST",
      "/v1/conversations",
      asService,
      JSON.stringify({ conversation_id: CONV, kind: "group", members: ["alice", "bob"] }),
    );
    expect(created.status).toBe(200);
    const sent = await rawCall(
      url,
      "POST",
      `/v1/conversations/${CONV}/messages`,
      asService,
      JSON.stringify({ sender_id: "alice", text: "hello", client_message_id: "first" }),
    );
    expect(sent.status).toBe(200);
    messageId = (sent.body as unknown as { message_id: string }).message_id;
    await waitFor(async () => (await stateSnapshot(stack, bridgeDatabase)).log === "1", {
      timeoutMs: 20_000,
      describe: () => "the first message never reached the log",
    });
    before = await stateSnapshot(stack, bridgeDatabase);
  });

  afterAll(async () => {
    await service?.close();
    await bridge?.stop();
    await stack?.stop();
  });

  it("registers the API's routes inside the authenticated context (the list below is what fastify holds)", () => {
    const listed = protectedRoutes().map((route) => `${route.method} ${route.url}`);
    // The routes that existed when this test was written; a new one is covered by the next tests automatically.
    for (const route of [
      "POST /v1/user-tokens",
      "POST /v1/conversations",
      "POST /v1/conversations/:conversation_id/members",
      "DELETE /v1/conversations/:conversation_id/members/:user_id",
      "POST /v1/conversations/:conversation_id/messages",
      "POST /v1/conversations/:conversation_id/audio",
      "PATCH /v1/conversations/:conversation_id/messages/:message_id",
      "DELETE /v1/conversations/:conversation_id/messages/:message_id",
      "GET /v1/conversations/:conversation_id/messages",
      "GET /v1/events",
    ])
      expect(listed).toContain(route);
    const websockets = new Set(service.routes.filter((route) => route.websocket).map((route) => route.url));
    expect(websockets).toEqual(new Set(["/v1/events"]));
  });

  it("every registered /v1 route but the OpenAPI document answers 401 without a token, or with a bad one", async () => {
    const badTokens: (string | undefined)[] = [
      undefined,
      "",
      almostApiToken,
      signUserToken(OTHER_KEY, "alice", inAMinute()),
      signUserToken(SIGNING_KEY, "alice", Math.floor(Date.now() / 1000) - 1),
    ];
    for (const route of protectedRoutes()) {
      const { path, headers, body } = request(route);
      for (const token of badTokens) {
        const withToken = token === undefined ? headers : { ...headers, authorization: `Bearer ${token}` };
        const answer = await rawCall(url, route.method, path, withToken, body);
        expect({ route: `${route.method} ${route.url}`, status: answer.status }).toEqual({
          route: `${route.method} ${route.url}`,
          status: 401,
        });
        if (route.method !== "HEAD") expect(answer.body.error?.code).toBe("unauthorized");
        if (route.websocket) expect(await rawUpgrade(url, path, withToken)).toBe(401);
      }
    }
    expect(await stateSnapshot(stack, bridgeDatabase)).toEqual(before);
  });

  it("a valid user token reaches only the routes that accept one (403 elsewhere)", async () => {
    const user = `Bearer ${signUserToken(SIGNING_KEY, "alice", inAMinute())}`;
    // The routes where a user acts as themselves (their checks are tested with the routes) are not these.
    const serviceOnly = protectedRoutes().filter((r) => !r.websocket && r.method !== "HEAD" && !r.userTokens);
    expect(serviceOnly.map((r) => `${r.method} ${r.url}`).sort()).toEqual([
      "DELETE /v1/conversations/:conversation_id/members/:user_id",
      "POST /v1/conversations/:conversation_id/members",
      "POST /v1/user-tokens",
    ]);
    for (const route of serviceOnly) {
      const { path, headers, body } = request(route);
      const answer = await rawCall(url, route.method, path, { ...headers, authorization: user }, body);
      expect({ route: `${route.method} ${route.url}`, status: answer.status }).toEqual({
        route: `${route.method} ${route.url}`,
        status: 403,
      });
    }
    // A query token is read only on the routes that accept one (the event stream), not on the others.
    const token = signUserToken(SIGNING_KEY, "alice", inAMinute());
    const history = await rawCall(url, "GET", `/v1/conversations/${CONV}/messages?access_token=${token}`, {});
    expect(history.status).toBe(401);
    expect(await rawUpgrade(url, `/v1/events?access_token=${token}`)).toBe(101);
    expect(await stateSnapshot(stack, bridgeDatabase)).toEqual(before);
  });

  describe("no spelling of a path gets past authentication", () => {
    it.each(SPELLINGS)("%s", async (_name, spell) => {
      const outcomes: string[] = [];
      for (const route of protectedRoutes()) {
        const { path, headers, body } = request(route);
        const spelled = spell(path);
        const answer = await rawCall(url, route.method, spelled, headers, body);
        outcomes.push(`${route.method} ${spelled}: ${answer.status}`);
        expect([401, 404], `${route.method} ${spelled}`).toContain(answer.status);
        if (route.websocket)
          expect([401, 404], `upgrade ${spelled}`).toContain(await rawUpgrade(url, spelled));
      }
      // The refused requests changed nothing: no room, no token's effect, no message, no log entry.
      expect(await stateSnapshot(stack, bridgeDatabase), outcomes.join("\n")).toEqual(before);
    });

    it("the spellings fastify decodes still match their route, and are refused by it (401, not 404)", async () => {
      for (const route of protectedRoutes().filter((r) => r.method !== "HEAD")) {
        const { path, headers, body } = request(route);
        for (const spelled of [
          path.replace(/^\/v1/, "/%761"),
          path.replace(/^\/v1/, "/v%31"),
          path.replace(/^\/v1/, "/%76%31"),
        ]) {
          const answer = await rawCall(url, route.method, spelled, headers, body);
          expect({ spelled, status: answer.status }).toEqual({ spelled, status: 401 });
          if (route.websocket) expect(await rawUpgrade(url, spelled)).toBe(401);
        }
      }
    });
  });

  it("the OpenAPI document stays public", async () => {
    expect((await rawCall(url, "GET", OPENAPI, {})).status).toBe(200);
  });
});
