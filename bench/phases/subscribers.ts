// Idle subscribers (issue 11): `--subscribers` WebSockets with user tokens, five per Nova user (a user's tabs and
// devices, up to the service's default per-user cap), every user a member of one conversation, open and idle on a
// fresh bridge service. Idle windows with none, a tenth and all of them open: the service's RSS, the bridge
// database's transactions and the service's reads of the event log (the feed reads once per commit for everyone, so
// an idle socket should cost none), and its CPU. Then the time one new message takes to reach every socket.
import { randomBytes } from "node:crypto";
import { sleep, waitFor } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { WebSocket } from "ws";
import type { Bench, Phase } from "../phase.ts";
import { memoryMb, processTicks } from "../proc.ts";
import { type IdleWindow, idleSubscribers } from "../report.ts";
import { isolateSides, pool, round1, SENDER } from "../runs.ts";
import { median } from "../stats.ts";

/** Sockets per user: the service's default cap (BRIDGE_WS_MAX_PER_USER), each user's sockets sharing its token. */
const SOCKETS_PER_USER = 5;
/** Fan-out rounds: one message each, all sockets waited for, the median reported. */
const FAN_OUT_ROUNDS = 3;

/** Committed + rolled-back transactions of one database so far (pg_stat_database). */
async function transactions(bench: Bench, database: string): Promise<number> {
  const { rows } = await bench.stack.postgres.query(
    "SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1",
    [database],
  );
  return Number((rows[0] as { n: string } | undefined)?.n ?? Number.NaN);
}

/** The service's counter of event-log reads (both readers), from its /metrics. */
async function logReads(service: ServiceProcess): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  let total = 0;
  for (const match of text.matchAll(/^nova_bridge_event_log_reads_total\{[^}]*\} (\d+(?:\.\d+)?)/gm))
    total += Number(match[1]);
  return total;
}

export const subscribers: Phase = {
  name: "subscribers",
  async run(bench) {
    const { stack, credentials, options } = bench;
    const count = options.subscribers;
    const windowSeconds = options.idleWindow;
    const conversationId = `idle-${Date.now().toString(36)}`;
    const users = Array.from(
      { length: Math.ceil(count / SOCKETS_PER_USER) },
      (_, i) => `${conversationId}-u${i}`,
    );

    bench.log(
      `subscribers: one conversation with ${users.length} members (registered and joined in batches)`,
    );
    const created = performance.now();
    await bench.library.conversations.ensureGroup(conversationId, {
      name: conversationId,
      members: [SENDER],
    });
    const batches = Array.from({ length: Math.ceil(users.length / 20) }, (_, i) =>
      users.slice(i * 20, i * 20 + 20),
    );
    await pool(batches, 2, (batch) => bench.library.conversations.addMembers(conversationId, batch));
    bench.log(`subscribers: members joined in ${Math.round((performance.now() - created) / 1000)} s`);

    // A fresh database: the log starts at the present, and its transactions are this service's only.
    const databaseUrl = await stack.newBridgeDatabase();
    const database = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
    const service = new ServiceProcess({
      config: stack.config,
      databaseUrl,
      apiToken: credentials.apiToken,
      signingKey: credentials.signingKey,
      env: { LOG_LEVEL: "warn" },
    });
    const untrack = bench.track(service);
    const sockets: WebSocket[] = [];
    try {
      await service.start(120_000);
      await isolateSides(bench, { synapse: stack.synapse, bridge: service });
      const pid = service.pid as number;
      const { ticksPerSecond } = bench.cpu;
      const windows: IdleWindow[] = [];
      const idleWindow = async () => {
        await sleep(2000); // the sockets' opening settles
        const before = {
          at: performance.now(),
          rssMb: (await memoryMb(pid)).rss,
          transactions: await transactions(bench, database),
          logReads: await logReads(service),
          ticks: await processTicks(pid),
        };
        bench.log(
          `subscribers: ${sockets.length} open, RSS ${before.rssMb} MB; idle window (${windowSeconds} s)`,
        );
        await sleep(windowSeconds * 1000);
        windows.push({
          sockets: sockets.length,
          rssMb: before.rssMb,
          seconds: round1((performance.now() - before.at) / 1000),
          transactions: (await transactions(bench, database)) - before.transactions,
          logReads: (await logReads(service)) - before.logReads,
          cpuMs: Math.round((((await processTicks(pid)) - before.ticks) * 1000) / ticksPerSecond),
        });
      };

      const tokens = await pool(users, 16, async (userId) => {
        const response = await fetch(`${service.url}/v1/user-tokens`, {
          method: "POST",
          headers: { authorization: `Bearer ${credentials.apiToken}`, "content-type": "application/json" },
          body: JSON.stringify({ user_id: userId, ttl_seconds: 3600 }),
        });
        if (!response.ok)
          throw new Error(`POST /v1/user-tokens: HTTP ${response.status} ${await response.text()}`);
        return ((await response.json()) as { token: string }).token;
      });
      await idleWindow();

      // Each socket records when each message body reached it.
      const arrivals = Array.from({ length: count }, () => new Map<string, number>());
      let openMs = 0;
      const open = async (upTo: number) => {
        const started = performance.now();
        const indexes = Array.from({ length: upTo - sockets.length }, (_, i) => sockets.length + i);
        await pool(indexes, 50, async (index) => {
          const url = new URL("/v1/events", service.url.replace(/^http/, "ws"));
          const token = tokens[index % tokens.length] as string;
          const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
          sockets.push(socket);
          socket.on("message", (data) => {
            const event = JSON.parse(data.toString()) as { type: string; content?: { body?: string } };
            if (event.type === "message.new" && event.content?.body)
              arrivals[index]?.set(event.content.body, performance.now());
          });
          await new Promise<void>((resolve, reject) => {
            socket.once("open", () => resolve());
            socket.once("error", reject);
            socket.once("close", (code, reason) => reject(new Error(`socket closed: ${code} ${reason}`)));
          });
        });
        openMs += performance.now() - started;
      };
      await open(Math.max(1, Math.floor(count / 10)));
      await idleWindow();
      await open(count);
      await idleWindow();

      const rounds: { sendToFirstMs: number; sendToLastMs: number }[] = [];
      for (let round = 1; round <= FAN_OUT_ROUNDS; round++) {
        const body = `${conversationId} fan-out ${round} ${randomBytes(4).toString("hex")}`;
        const sent = performance.now();
        const response = await fetch(`${service.url}/v1/conversations/${conversationId}/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${credentials.apiToken}`, "content-type": "application/json" },
          body: JSON.stringify({ sender_id: SENDER, text: body, client_message_id: body }),
        });
        if (!response.ok) throw new Error(`send: HTTP ${response.status} ${await response.text()}`);
        await waitFor(async () => arrivals.every((seen) => seen.has(body)), {
          timeoutMs: 120_000,
          intervalMs: 20,
          describe: () =>
            `${arrivals.filter((seen) => !seen.has(body)).length} of ${count} sockets never got the message`,
        });
        const times = arrivals.map((seen) => (seen.get(body) as number) - sent);
        rounds.push({
          sendToFirstMs: Math.round(Math.min(...times)),
          sendToLastMs: Math.round(Math.max(...times)),
        });
      }
      const afterFanOut = await memoryMb(pid);
      bench.results.subscribers = idleSubscribers({
        subscribers: count,
        users: users.length,
        openSeconds: round1(openMs / 1000),
        peakMb: afterFanOut.peak,
        windows,
        fanOut: rounds.map((r) => ({ ...r, firstToLastMs: r.sendToLastMs - r.sendToFirstMs })),
        fanOutMedianMs: Math.round(median(rounds.map((r) => r.sendToLastMs)) ?? 0),
      });
      bench.log(`subscribers: ${JSON.stringify(bench.results.subscribers)}`);
    } finally {
      for (const socket of sockets) socket.terminate();
      await service.stop();
      untrack();
    }
  },
};
