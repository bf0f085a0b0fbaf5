import { startTestStack, type TestStack, testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Bridge, startBridge } from "../src/bridge.ts";

describeWithHarness("sends under the homeserver's rate limit (429)", () => {
  let stack: TestStack;
  let bridge: Bridge;
  const lines: string[] = [];

  beforeAll(async () => {
    // Rate limits on for the appservice (infra turns them off) and a tight message limit.
    stack = await startTestStack({
      homeserverOverrides: { rc_message: { per_second: 0.5, burst_count: 2 } },
      registrationOverrides: { rate_limited: true },
    });
    bridge = await startBridge({
      config: stack.config,
      store: await stack.newBridgeDatabase(),
      logger: testLogger(lines),
      sync: false,
    });
  });

  afterAll(async () => {
    await bridge?.stop();
    await stack?.stop();
  });

  it("waits as long as the homeserver asks and sends every message exactly once", async () => {
    const id = "rate-limited";
    await bridge.conversations.ensureGroup(id, { name: "busy", members: ["alice"] });
    const started = Date.now();
    const sent: string[] = [];
    for (let n = 0; n < 6; n++)
      sent.push(
        (
          await bridge.messages.sendText({
            conversationId: id,
            senderId: "alice",
            text: `m${n}`,
            idempotencyKey: `k${n}`,
          })
        ).messageId,
      );
    const elapsed = Date.now() - started;
    const waits = lines
      .map((line) => JSON.parse(line) as { msg: string; delayMs?: number })
      .filter((entry) => entry.msg.startsWith("retrying: rate limited (429)"));
    expect(waits.length).toBeGreaterThan(0);
    // Each wait is what Synapse asked for (retry_after_ms for 0.5 msg/s is about 2 s), and the sends took that long.
    for (const wait of waits) expect(wait.delayMs).toBeGreaterThan(500);
    expect(elapsed).toBeGreaterThanOrEqual(waits.reduce((sum, wait) => sum + (wait.delayMs ?? 0), 0) * 0.9);
    expect(new Set(sent).size).toBe(6);
    const history = await bridge.messages.history(id);
    expect(history.events.map((e) => e.message_id).reverse()).toEqual(sent);
  });
});
