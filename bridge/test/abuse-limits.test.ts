// The abuse limits, each with its documented status or close code, against the real Synapse and PostgreSQL: per-token
// rate limits (429 + Retry-After), WebSocket caps per user and per process (4029, 1013), a user's stream without a
// cursor starting at the present, user-token lifetime and key rotation, ?access_token= never logged, error bodies
// without Matrix ids, and a timeout on requests to a homeserver that stops answering.
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { startTcpProxy, type TcpProxy } from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack, testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../src/bridge.ts";
import { Secret } from "../src/config/secret.ts";
import { buildService, type Service, type ServiceLimits } from "../src/service/app.ts";
import { signUserToken } from "../src/service/tokens.ts";
import { call, openEvents } from "./service-helpers.ts";

const API_TOKEN = randomBytes(32).toString("base64url");
const SIGNING_KEY = new Secret(randomBytes(32).toString("base64url"));
const PREVIOUS_KEY = new Secret(randomBytes(32).toString("base64url"));
const unique = () => randomBytes(4).toString("hex");
const inMinutes = (minutes: number) => Math.floor(Date.now() / 1000) + minutes * 60;

describeWithHarness("abuse limits (real Synapse)", () => {
  let stack: TestStack;
  let bridge: Bridge;
  const services: Service[] = [];
  const lines: string[] = [];

  /** A service on the shared bridge with these limits; its URL. */
  async function serve(limits: Partial<ServiceLimits>, of: Bridge = bridge): Promise<string> {
    const service = await buildService({
      bridge: of,
      homeserverUrl: stack.config.homeserverUrl,
      apiToken: new Secret(API_TOKEN),
      signingKey: SIGNING_KEY,
      previousSigningKey: PREVIOUS_KEY,
      logger: testLogger(lines),
      limits,
    });
    services.push(service);
    await service.app.listen({ host: "127.0.0.1", port: 0 });
    return `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
  }
  const closeReason = async (url: string, token: string) => {
    const client = await openEvents(url, { token });
    return client.closed;
  };

  beforeAll(async () => {
    stack = await startTestStack({ serverName: "limits.test" });
    bridge = await startBridge({
      config: stack.config,
      store: await stack.newBridgeDatabase(),
      logger: testLogger(),
      syncTuning: { pollTimeoutMs: 500 },
    });
  });

  afterAll(async () => {
    for (const service of services) await service.close();
    await bridge?.stop();
    await stack?.stop();
  });

  it("rate-limits each token: 429 rate_limited with Retry-After, the other tokens unaffected", async () => {
    const url = await serve({ serviceRequestsPerMinute: 5, userRequestsPerMinute: 2 });
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 7; i++) {
      const answer = await call(url, "GET", "/v1/conversations/nothing/messages", { token: API_TOKEN });
      statuses.push(answer.status);
      if (answer.status === 429) limited = answer;
    }
    expect(statuses.slice(0, 5)).toEqual([404, 404, 404, 404, 404]);
    expect(statuses.slice(5)).toEqual([429, 429]);
    expect(limited?.body).toMatchObject({ error: { code: "rate_limited" } });
    expect(Number(limited?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // A user's own budget: two stream opens, then 429 before the upgrade.
    const alice = signUserToken(SIGNING_KEY, "alice", inMinutes(10));
    for (let i = 0; i < 2; i++) await (await openEvents(url, { token: alice })).close();
    await expect(openEvents(url, { token: alice })).rejects.toMatchObject({ status: 429 });
    const bob = signUserToken(SIGNING_KEY, "bob", inMinutes(10));
    await (await openEvents(url, { token: bob })).close();
  });

  it("caps WebSockets per user (4029) and per process (1013), with reasons that say what to do", async () => {
    const url = await serve({ wsMaxPerUser: 2, wsMaxConnections: 3 });
    const carol = signUserToken(SIGNING_KEY, "carol", inMinutes(10));
    const open = [await openEvents(url, { token: carol }), await openEvents(url, { token: carol })];
    const third = await closeReason(url, carol);
    expect(third.code).toBe(4029);
    expect(third.reason).toMatch(/too many connections for this user \(at most 2\)/);
    open.push(await openEvents(url, { token: API_TOKEN }));
    const full = await closeReason(url, API_TOKEN);
    expect(full.code).toBe(1013);
    expect(full.reason).toMatch(/reconnect later/);
    // Closing one frees its place.
    await open.shift()?.close();
    const again = await openEvents(url, { token: carol });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(again.socket.readyState).toBe(again.socket.OPEN);
    for (const client of [...open, again]) await client.close();
  });

  it("a user's stream without ?since starts at the present, not at the log's beginning", async () => {
    const url = await serve({});
    const id = `head-${unique()}`;
    await bridge.conversations.ensureGroup(id, { name: id, members: ["dave"] });
    const before = await bridge.messages.sendText({
      conversationId: id,
      senderId: "dave",
      text: "before",
      idempotencyKey: unique(),
    });
    // Logged before the stream opens.
    for (let i = 0; i < 100 && (await bridge.store.head()) === "0"; i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    const logged = await bridge.store.readAfter(undefined, 1000);
    expect(logged.some((e) => e.event.event_id === before.messageId)).toBe(true);
    const stream = await openEvents(url, { token: signUserToken(SIGNING_KEY, "dave", inMinutes(10)) });
    const after = await bridge.messages.sendText({
      conversationId: id,
      senderId: "dave",
      text: "after",
      idempotencyKey: unique(),
    });
    await stream.waitForCount(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stream.events.map((e) => e.message_id)).toEqual([after.messageId]);
    await stream.close();
  });

  it("user tokens: an expiry too far ahead is refused; the previous key still opens during a rotation", async () => {
    const url = await serve({ userTokenMaxTtlSeconds: 3600 });
    await expect(
      openEvents(url, { token: signUserToken(SIGNING_KEY, "erin", inMinutes(365 * 24 * 60)) }),
    ).rejects.toMatchObject({ status: 401 });
    await (await openEvents(url, { token: signUserToken(PREVIOUS_KEY, "erin", inMinutes(10)) })).close();
    const stranger = new Secret(randomBytes(32).toString("base64url"));
    await expect(
      openEvents(url, { token: signUserToken(stranger, "erin", inMinutes(10)) }),
    ).rejects.toMatchObject({ status: 401 });
  });

  it("accepts ?access_token= on /v1/events only and never writes it to a log", async () => {
    const url = await serve({});
    const token = signUserToken(SIGNING_KEY, "frank", inMinutes(10));
    const client = await openEvents(url, { query: `access_token=${encodeURIComponent(token)}` });
    await client.close();
    const elsewhere = await call(url, "GET", `/v1/conversations/x/messages?access_token=${token}`);
    expect(elsewhere.status).toBe(401);
    const notFound = await call(url, "GET", `/v1/nowhere?access_token=${token}`);
    expect(notFound.status).toBe(404);
    expect(JSON.stringify(notFound.body)).not.toContain(token);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).not.toContain(token.split(".")[2]);
  });

  it("error bodies carry no Matrix user ids, room ids or Synapse's own text", async () => {
    const url = await serve({});
    const id = `errors-${unique()}`;
    await bridge.conversations.ensureGroup(id, { name: id, members: ["gina"] });
    const stranger = await call(url, "POST", `/v1/conversations/${id}/messages`, {
      token: API_TOKEN,
      json: { sender_id: "mallory", text: "hi", client_message_id: unique() },
    });
    expect(stranger.status).toBe(400);
    const long = await call(url, "POST", "/v1/conversations", {
      token: API_TOKEN,
      json: { conversation_id: id, kind: "group", members: ["x".repeat(255)] },
    });
    expect(long.status).toBe(400);
    for (const answer of [stranger, long]) {
      const text = JSON.stringify(answer.body);
      expect(text).not.toMatch(/[@!#][^\s:"]+:limits\.test/);
      expect(text).not.toMatch(/M_FORBIDDEN|not in room|is not joined/i);
    }
  });

  describe("a homeserver that stops answering", () => {
    let proxy: TcpProxy;
    let slow: Bridge;

    beforeAll(async () => {
      const target = new URL(stack.config.homeserverUrl);
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
      slow = await startBridge({
        config: { ...stack.config, homeserverUrl: proxy.url },
        store: await stack.newBridgeDatabase(),
        logger: testLogger(),
        sync: false,
        matrixTimeoutMs: 1000,
        retry: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 100, maxRateLimitWaitMs: 0 },
      });
    });

    afterAll(async () => {
      await slow?.stop();
      await proxy?.close();
    });

    it("every request has a timeout: a black-holed homeserver gets a 503 in seconds, not a hung request", async () => {
      const url = await serve({}, slow);
      const id = `timeout-${unique()}`;
      await bridge.conversations.ensureGroup(id, { name: id, members: ["hank"] });
      await slow.conversations.get(id);
      proxy.blackhole();
      try {
        const started = Date.now();
        const answer = await call(url, "POST", `/v1/conversations/${id}/messages`, {
          token: API_TOKEN,
          json: { sender_id: "hank", text: "into the void", client_message_id: unique() },
        });
        expect(answer.status).toBe(503);
        expect(Date.now() - started).toBeLessThan(15_000);
      } finally {
        proxy.restore();
      }
    });
  });
});
