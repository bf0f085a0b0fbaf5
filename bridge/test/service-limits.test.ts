// The service's 429 and 503 answers (with Retry-After) against the real Synapse: its rate limit turned on for the
// appservice, then Synapse stopped.
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { startTestStack, type TestStack, testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Bridge, startBridge } from "../src/bridge.ts";
import { Secret } from "../src/config/secret.ts";
import { buildService, type Service } from "../src/service/app.ts";
import { call } from "./service-helpers.ts";

const API_TOKEN = randomBytes(32).toString("base64url");

describeWithHarness("bridge service under the homeserver's rate limit and outage", () => {
  let stack: TestStack;
  let setupBridge: Bridge;
  let bridge: Bridge;
  let service: Service;
  let url: string;

  beforeAll(async () => {
    stack = await startTestStack({
      homeserverOverrides: { rc_message: { per_second: 0.2, burst_count: 2 } },
      registrationOverrides: { rate_limited: true },
    });
    // Conversations are set up by a bridge that waits out rate limits; the service's bridge does not retry at all,
    // so the homeserver's 429 reaches the caller.
    setupBridge = await startBridge({
      config: stack.config,
      store: await stack.newBridgeDatabase(),
      logger: testLogger(),
      sync: false,
    });
    bridge = await startBridge({
      config: stack.config,
      store: await stack.newBridgeDatabase(),
      logger: testLogger(),
      syncTuning: { pollTimeoutMs: 1000 },
      retry: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 100, maxRateLimitWaitMs: 0 },
    });
    service = await buildService({
      bridge,
      homeserverUrl: stack.config.homeserverUrl,
      apiToken: new Secret(API_TOKEN),
      signingKey: new Secret(randomBytes(32).toString("base64url")),
      logger: testLogger(),
    });
    await service.app.listen({ host: "127.0.0.1", port: 0 });
    url = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await service?.close();
    await bridge?.stop();
    await setupBridge?.stop();
    await stack?.stop();
  });

  it("answers 429 with Retry-After when the homeserver rate-limits a send, and counts it", async () => {
    await setupBridge.conversations.ensureGroup("limited", { name: "limited", members: ["alice"] });
    const answers = [];
    for (let n = 0; n < 6; n++)
      answers.push(
        await call(url, "POST", "/v1/conversations/limited/messages", {
          token: API_TOKEN,
          json: { sender_id: "alice", text: `m${n}`, client_message_id: `k${n}` },
        }),
      );
    const limited = answers.filter((answer) => answer.status === 429);
    expect(limited.length, JSON.stringify(answers.map((a) => a.status))).toBeGreaterThan(0);
    expect(answers.every((answer) => answer.status === 200 || answer.status === 429)).toBe(true);
    for (const answer of limited) {
      expect(answer.body).toMatchObject({ error: { code: "rate_limited" } });
      expect(Number(answer.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    const metrics = (await call(url, "GET", "/metrics")).body as string;
    expect(metrics).toMatch(/^nova_bridge_send_errors_total\{kind="text",code="rate_limited"\} [1-9]/m);
  });

  it("answers 503 with Retry-After when the homeserver is down, and /readyz says why", async () => {
    await stack.synapse.stop();
    const sent = await call(url, "POST", "/v1/conversations/limited/messages", {
      token: API_TOKEN,
      json: { sender_id: "alice", text: "while down", client_message_id: "down-1" },
    });
    expect(sent.status, JSON.stringify(sent.body)).toBe(503);
    expect(sent.body).toMatchObject({ error: { code: "unavailable" } });
    expect(Number(sent.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const ready = await call(url, "GET", "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({
      status: "not_ready",
      checks: { synapse: "unreachable", postgres: "ok" },
    });
    expect((await call(url, "GET", "/healthz")).status).toBe(200);
  });
});
