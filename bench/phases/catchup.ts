// Catch-up after a stop: the bridge stopped (SIGTERM), `--catchup` messages sent to 8 conversations, then Synapse's
// own speed at reading them back against the bridge's (process start to ready, and to the last one on its stream).
import { ghostUserId } from "@nova-matrix/contracts";
import { waitFor } from "@nova-matrix/dev/harness";
import type { Phase } from "../phase.ts";
import { RawClient, RawSyncReader } from "../raw-client.ts";
import { pool, round1, SENDER } from "../runs.ts";

export const catchup: Phase = {
  name: "catchup",
  async run(bench) {
    const { stack, bridge } = bench;
    const count = bench.options.catchup;
    const rooms = bench.conversations.rooms.slice(0, 8);
    // The reader caught up first, so its cursor is the head when the bridge stops.
    await bridge.start();
    bench.log(`catch-up: bridge stopped, ${count} messages sent to ${rooms.length} conversations`);
    await bridge.stop();
    const client = new RawClient({ homeserverUrl: stack.synapse.baseUrl, asToken: stack.secrets.asToken });
    const reader = new RawSyncReader(client, stack.config.serviceUser);
    const before = await reader.currentToken();
    const tag = `catchup-${Date.now()}`;
    const sender = ghostUserId(SENDER, stack.serverName);
    const sendStarted = performance.now();
    await pool(
      Array.from({ length: count }, (_, i) => i),
      8,
      (i) => client.send(rooms[i % rooms.length] as string, sender, `${tag} ${i}`),
    );
    const sendSeconds = (performance.now() - sendStarted) / 1000;
    const bodies = Array.from({ length: count }, (_, i) => `${tag} ${i}`);
    // Synapse's own speed: one /sync from the token before the sends (every room comes back `limited`: Synapse
    // returns only the latest events of a long gap), then each room's gap read with /messages, rooms in parallel.
    // A client cannot get the backlog faster from Synapse; the bridge does the same (timeline limit 10).
    const rawStarted = performance.now();
    const first = await client.sync(stack.config.serviceUser, before, 0, 10);
    const rawSeen = new Set(first.messages.map((m) => m.body).filter((body) => body.startsWith(tag)));
    for (const bodiesInRoom of await Promise.all(
      rooms.map((roomId) => client.readForward(roomId, stack.config.serviceUser, before)),
    ))
      for (const body of bodiesInRoom) if (body.startsWith(tag)) rawSeen.add(body);
    if (rawSeen.size !== count)
      throw new Error(`the raw reader found ${rawSeen.size} of ${count} catch-up messages`);
    const rawReadSeconds = (performance.now() - rawStarted) / 1000;
    // The bridge: from the process start until all are on the WebSocket (it back-fills limited timelines); the
    // reader connects as soon as the service listens.
    const received = bridge.events.receipts;
    const bridgeStarted = performance.now();
    bridge.events.connect();
    const ready = bridge.service.start(120_000).then(() => (performance.now() - bridgeStarted) / 1000);
    await waitFor(async () => bodies.every((body) => received.has(body)), {
      timeoutMs: 300_000,
      intervalMs: 50,
      describe: () => "not every catch-up message reached the WebSocket",
    });
    const last = Math.max(...bodies.map((body) => received.get(body) as number));
    bench.results.catchup = {
      messages: count,
      conversations: rooms.length,
      sendSeconds: round1(sendSeconds),
      rawReadSeconds: round1(rawReadSeconds),
      bridgeReadySeconds: round1(await ready),
      bridgeAllOnWebSocketSeconds: round1((last - bridgeStarted) / 1000),
    };
    bench.log(`catch-up: ${JSON.stringify(bench.results.catchup)}`);
  },
};
