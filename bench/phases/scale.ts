// Scale of state: for each `--scale` count, the bridge service on a fresh database with that many conversations,
// all active: start-up, RSS idle and active, a restart catching up one message in each, the peak RSS. Counts whose
// creation would pass `--scale-budget` are extrapolated from the measured points and marked so.
import { ghostUserId } from "@nova-matrix/contracts";
import { sleep, waitFor } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { WsReceipts } from "../bridge-under-test.ts";
import type { Bench, Phase } from "../phase.ts";
import { memoryMb } from "../proc.ts";
import { RawClient } from "../raw-client.ts";
import type { ScalePoint } from "../report.ts";
import { createConversations, pool, round1, SENDER } from "../runs.ts";
import { extrapolate } from "../stats.ts";

/**
 * One scale point on a fresh bridge database, with every conversation in `rooms` active: the first start (the log
 * begins at the present), one message in each conversation live, then one more in each while the bridge is stopped
 * and its restart catching all of them up. RSS after each step and the peak over both processes.
 */
async function measureScale(bench: Bench, rooms: readonly string[]): Promise<ScalePoint> {
  const { stack, credentials } = bench;
  const scaled = new ServiceProcess({
    config: stack.config,
    databaseUrl: await stack.newBridgeDatabase(),
    apiToken: credentials.apiToken,
    signingKey: credentials.signingKey,
    env: { LOG_LEVEL: "warn" },
  });
  const untrack = bench.track(scaled);
  const client = new RawClient({ homeserverUrl: stack.synapse.baseUrl, asToken: stack.secrets.asToken });
  const sender = ghostUserId(SENDER, stack.serverName);
  const oneEach = async (tag: string) => {
    const bodies = rooms.map((_, i) => `${tag} ${i}`);
    await pool(
      rooms.map((roomId, i) => [roomId, bodies[i] as string] as const),
      32,
      ([roomId, body]) => client.send(roomId, sender, body),
    );
    return bodies;
  };
  const allOn = (ws: WsReceipts, bodies: readonly string[]) =>
    waitFor(async () => bodies.every((body) => ws.receipts.has(body)), {
      timeoutMs: 1_800_000,
      intervalMs: 100,
      describe: () =>
        `${bodies.filter((b) => !ws.receipts.has(b)).length} messages never reached the WebSocket`,
    });
  const readers: WsReceipts[] = [];
  const reader = (since?: string) => {
    const ws = new WsReceipts(() => scaled.url, credentials.apiToken, since).connect();
    readers.push(ws);
    return ws;
  };
  const settledMemory = async () => {
    await sleep(2000);
    return memoryMb(scaled.pid as number);
  };

  try {
    const firstStarted = performance.now();
    await scaled.start(600_000);
    const firstStartSeconds = (performance.now() - firstStarted) / 1000;
    const idle = await settledMemory();
    const live = reader();
    await allOn(live, await oneEach(`scale-live-${rooms.length}`));
    const active = await settledMemory();
    live.disconnect();
    await scaled.stop();

    const offline = await oneEach(`scale-offline-${rooms.length}`);
    const restarted = performance.now();
    const ready = scaled.start(600_000).then(() => (performance.now() - restarted) / 1000);
    const caughtUp = reader(live.cursor);
    await allOn(caughtUp, offline);
    const restartCatchUpSeconds = (performance.now() - restarted) / 1000;
    const restartSeconds = await ready;
    const after = await settledMemory();
    return {
      conversations: rooms.length,
      firstStartSeconds: round1(firstStartSeconds),
      idleRssMb: idle.rss,
      activeRssMb: active.rss,
      restartSeconds: round1(restartSeconds),
      restartCatchUpSeconds: round1(restartCatchUpSeconds),
      restartRssMb: after.rss,
      peakMb: Math.max(active.peak, after.peak),
      measured: true,
    };
  } finally {
    for (const ws of readers) ws.disconnect();
    await scaled.stop();
    untrack();
  }
}

/** The counts not measured, from a least-squares line through the measured points (a flat one if it is noise). */
function extrapolated(measured: readonly ScalePoint[], n: number): ScalePoint {
  const predict = (pick: (p: ScalePoint) => number, digits = 0) => {
    const line = extrapolate(
      measured.map((p) => ({ x: p.conversations, y: pick(p) })),
      n,
    );
    return { value: Math.round(line.value * 10 ** digits) / 10 ** digits, slope: line.slope };
  };
  const peak = predict((p) => p.peakMb);
  const catchUp = predict((p) => p.restartCatchUpSeconds, 1);
  return {
    conversations: n,
    firstStartSeconds: predict((p) => p.firstStartSeconds, 1).value,
    idleRssMb: predict((p) => p.idleRssMb).value,
    activeRssMb: predict((p) => p.activeRssMb).value,
    restartSeconds: predict((p) => p.restartSeconds, 1).value,
    restartCatchUpSeconds: catchUp.value,
    restartRssMb: predict((p) => p.restartRssMb).value,
    peakMb: peak.value,
    measured: false,
    slope: {
      peakKbPerConversation: Math.round(peak.slope * 1024 * 10) / 10,
      catchUpMsPerConversation: Math.round(catchUp.slope * 1000 * 10) / 10,
    },
  };
}

export const scale: Phase = {
  name: "scale",
  async run(bench) {
    const { options, results } = bench;
    let total = bench.conversations.ids.length;
    const scaleRooms = [...bench.conversations.rooms];
    let creationSeconds = 0;
    let created = 0;
    const budgetSeconds = options.scaleBudget * 60;
    for (const target of options.scale) {
      if (target > total) {
        const rate = created > 0 ? created / creationSeconds : 5;
        const estimate = (target - total) / rate;
        if (creationSeconds + estimate > budgetSeconds) {
          results.notes.push(
            `scale ${target}: not measured; creating ${target - total} more conversations at ${rate.toFixed(1)}/s ` +
              `would take ${Math.round(estimate / 60)} min (budget ${options.scaleBudget} min): extrapolated below`,
          );
          continue;
        }
        bench.log(`scale: creating conversations ${total}..${target}`);
        const batch = await createConversations(bench.library, {
          prefix: "scale",
          from: total,
          to: target,
          concurrency: options.createConcurrency,
        });
        scaleRooms.push(...batch.rooms);
        creationSeconds += batch.seconds;
        created += batch.ids.length;
        total = target;
        bench.log(`created ${batch.ids.length} in ${batch.seconds.toFixed(0)} s`);
      }
      try {
        const point = await measureScale(bench, scaleRooms);
        bench.log(`scale ${total}: ${JSON.stringify(point)}`);
        results.scale.push(point);
      } catch (error) {
        // The points measured so far and the rest of the results still get written.
        const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
        results.notes.push(`scale ${total}: the measurement failed: ${reason}`);
        bench.log(`scale ${total}: failed: ${reason}`);
        break;
      }
    }
    if (created > 0) results.roomCreationPerSecond = round1(created / creationSeconds);
    const measured = results.scale.filter((p) => p.measured);
    const counts = measured.map((p) => p.conversations);
    // A count below the bench's own conversations was measured at that larger count; only larger ones are missing.
    const wanted = options.scale.filter((n) => n > Math.max(...counts));
    if (wanted.length > 0 && (measured.length < 2 || Math.max(...counts) < 5 * Math.min(...counts)))
      results.notes.push("scale: too few measured points (or too close together) to extrapolate a slope");
    else for (const n of wanted) results.scale.push(extrapolated(measured, n));
  },
};
