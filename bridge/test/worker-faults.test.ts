// Synapse in worker mode (main, sync and client workers, an event persister, media and background workers, Redis,
// HAProxy: infra/synapse/workers.ts on loopback) under a steady stream of sends through the bridge service, with
// the faults worker mode adds: a generic worker killed -9 (the client worker that takes the sends, then the sync
// worker the bridge long-polls), the event persister killed -9, Redis restarted, and every Synapse process killed
// at once. After each: every accepted message is in the event log and on the WebSocket exactly once, in order, and
// Synapse holds exactly those messages. Also: the appservice token is refused through the public listener whatever
// X-Forwarded-For the client forges (the registration's ip_range_whitelist), and accepted from inside.
import { randomBytes } from "node:crypto";
import { type RunningSynapseCluster, sleep, waitFor } from "@nova-matrix/dev/harness";
import type { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { instanceName } from "@nova-matrix/infra/synapse/workers";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { PostgresEventStore } from "../src/store/postgres.ts";
import { faultTarget, underFault as runUnderFault, startFaultService } from "./traffic.ts";

const API_TOKEN = randomBytes(32).toString("base64url");
/** The harness's start timeout for a worker-mode Synapse process, plus a margin. */
const RESTART_MS = 300_000;
const FAULT_TIMEOUT_MS = 2 * RESTART_MS;
/** The harness stands in for the cluster's pod range with loopback: only in-cluster callers may use the token. */
const IN_CLUSTER = "127.0.0.1/32";

describeWithHarness("Synapse worker mode under faults: nothing lost, nothing doubled", () => {
  let stack: TestStack;
  let cluster: RunningSynapseCluster;
  let service: ServiceProcess;
  let store: PostgresEventStore;
  const rooms = new Map<string, string>();

  const target = () =>
    faultTarget({
      stack,
      service,
      store,
      apiToken: API_TOKEN,
      rooms,
      moreDiagnostics: async (tag) => `${tag}: Synapse's logs:\n${(await cluster.log()).slice(-8000)}`,
    });
  const underFault = (tag: string, fault: () => Promise<void>) =>
    runUnderFault(target(), tag, fault, {
      requestTimeoutMs: 15_000,
      startTimeoutMs: 60_000,
      // A restarted Synapse process may take minutes on a loaded machine (the harness allows 240 s to start).
      giveUpMs: RESTART_MS,
      recoveryTimeoutMs: RESTART_MS,
      deliveryTimeoutMs: 90_000,
    });

  const synapseLog = (instance: string) => cluster.processes.get(instance)?.log() ?? Promise.resolve("");

  /**
   * kill -9 one Synapse process and keep it down until `evidence` shows, in what its log printed since the kill, a
   * request that failed on the dead process: proof that the fault took effect, however fast or slow the machine.
   * (What the clients saw is no proof: Synapse and the bridge retry, and on a fast machine they hide a short
   * outage completely.) Then start it again, wait until the proxy uses it, and check it is a new process.
   */
  const killUntilRefused =
    (instance: string, evidence: { log: () => Promise<string>; failed: RegExp; where: string }) =>
    async () => {
      const process = cluster.processes.get(instance);
      const pidBefore = process?.pid;
      if (!process || pidBefore === undefined) throw new Error(`no running Synapse instance ${instance}`);
      const offset = (await evidence.log()).length;
      await process.kill("SIGKILL");
      try {
        await waitFor(async () => evidence.failed.test((await evidence.log()).slice(offset)), {
          timeoutMs: 90_000,
          describe: () =>
            `no request failed on the killed ${instance} (looked for ${evidence.failed} in ${evidence.where})`,
        });
      } finally {
        // Even when the evidence is missing: the next tests need every process.
        await cluster.waitUntilServing();
      }
      expect(process.pid).not.toBe(pidBefore);
    };

  beforeAll(async () => {
    stack = await startTestStack({
      serverName: "workers.test",
      workers: true,
      registrationOverrides: { ip_range_whitelist: [IN_CLUSTER] },
    });
    cluster = stack.cluster as RunningSynapseCluster;
    ({ service, store } = await startFaultService(stack, { apiToken: API_TOKEN, startTimeoutMs: 120_000 }));
  }, 600_000);

  afterAll(async () => {
    await service?.stop();
    await store?.close();
    await stack?.stop();
  });

  it(
    "serves the bridge through the proxy: each kind of request reaches its worker",
    async () => {
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
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "the client worker (it takes every send) killed -9 and restarted",
    async () => {
      const client = instanceName("client", 0);
      await underFault(
        "kill-client-worker",
        killUntilRefused(client, {
          log: () => cluster.proxy.process.log(),
          // A request of its backend (the bridge's sends, joins, room calls) that the proxy could not hand to it:
          // cut in flight (502), refused, or with no server UP (503).
          failed: new RegExp(` client/(?:${client}|<NOSRV>) \\S+ 50[23] `),
          where: "HAProxy's log",
        }),
      );
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "the sync worker (the bridge's long-poll) killed -9 and restarted",
    async () => {
      const sync = instanceName("sync", 0);
      await underFault(
        "kill-sync-worker",
        killUntilRefused(sync, {
          log: () => cluster.proxy.process.log(),
          // The bridge always has a /sync long-poll open on it: cut (502), or refused until it is back (503).
          failed: new RegExp(` sync/(?:${sync}|<NOSRV>) \\S+ 50[23] `),
          where: "HAProxy's log",
        }),
      );
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "the event persister killed -9 and restarted",
    async () => {
      const persister = instanceName("event-persister", 0);
      await underFault(
        "kill-event-persister",
        killUntilRefused(persister, {
          log: () => synapseLog(instanceName("client", 0)),
          // The client worker hands each send to the persister: refused (Synapse retries it with a back-off, so
          // the client may never see it) or cut in flight (a 502 to the bridge).
          failed: new RegExp(
            `send_events request connection failed; retrying|Failed to talk to ${persister} process`,
          ),
          where: "the client worker's log",
        }),
      );
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
