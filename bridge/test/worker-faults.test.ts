// Synapse in worker mode (main, sync and client workers, an event persister, media and background workers, Redis,
// HAProxy: infra/synapse/workers.ts on loopback) under a steady stream of sends through the bridge service, with
// the faults worker mode adds: a generic worker killed -9 (the client worker that takes the sends, then the sync
// worker the bridge long-polls), the event persister killed -9, Redis restarted, and every Synapse process killed
// at once. After each: every accepted message is in the event log and on the WebSocket exactly once, in order, and
// Synapse holds exactly those messages. Also: the appservice token is refused through the public listener whatever
// X-Forwarded-For the client forges (the registration's ip_range_whitelist), and accepted from inside.
import { randomBytes } from "node:crypto";
import { type RunningSynapseCluster, sleep } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { instanceName } from "@nova-matrix/infra/synapse/workers";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PostgresEventStore } from "../src/store/postgres.ts";
import { readAll } from "./log.ts";
import { EventReader, expectExactlyOnceInOrder, SendStream, synapseMessages } from "./traffic.ts";

const API_TOKEN = randomBytes(32).toString("base64url");
const SIGNING_KEY = randomBytes(32).toString("base64url");
const FAULT_TIMEOUT_MS = 180_000;
const unique = () => randomBytes(3).toString("hex");
/** The harness stands in for the cluster's pod range with loopback: only in-cluster callers may use the token. */
const IN_CLUSTER = "127.0.0.1/32";

describeWithHarness("Synapse worker mode under faults: nothing lost, nothing doubled", () => {
  let stack: TestStack;
  let cluster: RunningSynapseCluster;
  let service: ServiceProcess;
  let store: PostgresEventStore;
  const rooms = new Map<string, string>();

  async function createConversations(count: number, tag: string): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, i) => `${tag}-${i}-${unique()}`);
    for (const id of ids) {
      const answer = await fetch(`${service.url}/v1/conversations`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ conversation_id: id, kind: "group", members: ["alice"] }),
      });
      expect(answer.status).toBe(200);
      rooms.set(id, ((await answer.json()) as { room_id: string }).room_id);
    }
    return ids;
  }

  /** A stream over fresh conversations; the fault once some messages went through; then every guarantee. */
  async function underFault(tag: string, fault: () => Promise<void>): Promise<SendStream> {
    const conversations = await createConversations(3, tag);
    const reader = new EventReader(() => service.url, API_TOKEN);
    const stream = new SendStream({
      url: () => service.url,
      token: API_TOKEN,
      conversations,
      senderId: "alice",
      requestTimeoutMs: 15_000,
      pauseMs: 50,
    });
    try {
      await stream.waitForMore(6, 60_000);
      await fault();
      await stream.waitForMore(9, 120_000);
    } catch (error) {
      console.error(`${tag}: the service's log tail:\n${service.output.slice(-5000)}`);
      console.error(`${tag}: Synapse's logs:\n${(await cluster.log()).slice(-8000)}`);
      throw error;
    } finally {
      await stream.stop();
    }
    expect(stream.failures.filter((f) => f.outcome === "500")).toEqual([]);
    try {
      const acceptedIds = [...stream.accepted.values()].flat().map((a) => a.messageId);
      await reader.waitFor(acceptedIds, 90_000);
      const synapse = new Map(
        await Promise.all(
          conversations.map(
            async (id) =>
              [
                id,
                await synapseMessages(
                  stack.synapse.baseUrl,
                  stack.secrets.asToken,
                  stack.config.serviceUser,
                  rooms.get(id) as string,
                ),
              ] as const,
          ),
        ),
      );
      expectExactlyOnceInOrder({
        accepted: stream.accepted,
        log: await readAll(store),
        websocket: reader.events,
        synapse,
      });
    } finally {
      reader.close();
    }
    return stream;
  }

  /** kill -9 one Synapse process, let the stream run into it, start it again and wait until the proxy uses it. */
  const killAndRestart = (instance: string) => async () => {
    const process = cluster.processes.get(instance);
    if (!process) throw new Error(`no Synapse instance ${instance}`);
    await process.kill("SIGKILL");
    await sleep(1500);
    await cluster.waitUntilServing();
  };

  beforeAll(async () => {
    stack = await startTestStack({
      serverName: "workers.test",
      workers: true,
      registrationOverrides: { ip_range_whitelist: [IN_CLUSTER] },
    });
    cluster = stack.cluster as RunningSynapseCluster;
    const databaseUrl = await stack.newBridgeDatabase();
    service = new ServiceProcess({
      config: stack.config,
      databaseUrl,
      apiToken: API_TOKEN,
      signingKey: SIGNING_KEY,
      supervise: true,
    });
    await service.start(120_000);
    store = new PostgresEventStore(databaseUrl);
  }, 600_000);

  afterAll(async () => {
    await service?.stop();
    await store?.close();
    await stack?.stop();
  });

  it("serves the bridge through the proxy: each kind of request reaches its worker", async () => {
    await underFault("routing", async () => {});
    const log = await cluster.proxy.process.log();
    const servedBy = (pattern: RegExp) =>
      new Set(
        [...log.matchAll(/ (\S+)\/(\S+) \S+ \d{3} .*"(\S+) (\S+) HTTP/g)]
          .filter((m) => pattern.test(`${m[3]} ${m[4]}`))
          .map((m) => m[2]),
      );
    expect(servedBy(/^PUT .*\/send\//)).toEqual(new Set([instanceName("client", 0)]));
    expect(servedBy(/^GET .*\/sync\?/)).toEqual(new Set([instanceName("sync", 0)]));
    expect(servedBy(/^POST .*\/createRoom/)).toEqual(new Set([instanceName("client", 0)]));
  });

  it(
    "the client worker (it takes every send) killed -9 and restarted",
    async () => {
      const stream = await underFault("kill-client-worker", killAndRestart(instanceName("client", 0)));
      expect(stream.failures.length).toBeGreaterThan(0);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "the sync worker (the bridge's long-poll) killed -9 and restarted",
    async () => {
      await underFault("kill-sync-worker", killAndRestart(instanceName("sync", 0)));
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "the event persister killed -9 and restarted",
    async () => {
      const stream = await underFault(
        "kill-event-persister",
        killAndRestart(instanceName("event-persister", 0)),
      );
      expect(stream.failures.length).toBeGreaterThan(0);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "Redis restarted (every process loses its replication connection)",
    async () => {
      const before = await cluster.redis.process.log();
      await underFault("restart-redis", async () => {
        await cluster.redis.restart();
      });
      // It did go down: a second start in its log.
      const starts = (log: string) => (log.match(/Ready to accept connections/g) ?? []).length;
      expect(starts(await cluster.redis.process.log())).toBe(starts(before) + 1);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "every Synapse process killed -9 at once, then started again (main first)",
    async () => {
      await underFault("kill-all-synapse", async () => {
        await cluster.kill("SIGKILL");
        await sleep(1000);
        await cluster.waitUntilServing();
      });
    },
    FAULT_TIMEOUT_MS,
  );

  it("refuses the appservice token through the public listener whatever X-Forwarded-For says; in-cluster it works", async () => {
    const whoami = (base: string, headers: Record<string, string>) =>
      fetch(
        `${base}/_matrix/client/v3/account/whoami?user_id=${encodeURIComponent(stack.config.serviceUser)}`,
        { headers: { authorization: `Bearer ${stack.secrets.asToken}`, ...headers } },
      );
    const inside = await whoami(cluster.baseUrl, { "x-forwarded-for": "203.0.113.7" });
    expect(inside.status).toBe(200);
    // Through the load balancer: whatever the client put first, the proxy passes on the address the load balancer
    // saw (here an outside one), so the whitelist refuses the token.
    for (const forged of ["127.0.0.1", "127.0.0.1, 127.0.0.1", "10.0.0.5"]) {
      const outside = await whoami(cluster.publicUrl, {
        "x-forwarded-for": `${forged}, 203.0.113.7, 35.191.0.9`,
      });
      expect(outside.status, `forged ${forged}`).toBe(401);
      expect(((await outside.json()) as { errcode?: string }).errcode).toBe("M_UNKNOWN_TOKEN");
    }
    // Not through the load balancer at all: the proxy refuses it before Synapse.
    expect((await whoami(cluster.publicUrl, { "x-forwarded-for": "127.0.0.1" })).status).toBe(400);
  });
});
