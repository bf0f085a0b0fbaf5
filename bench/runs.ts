// What several phases do: create conversations in bulk and run the workload at each `--concurrency`, through the
// bridge or on Synapse directly.
import type { Bridge, EnabledConfig } from "@nova-matrix/bridge";
import { ghostUserId } from "@nova-matrix/contracts";
import {
  type PostgresServer,
  type RunningSynapse,
  type RunningSynapseCluster,
  sleep,
} from "@nova-matrix/dev/harness";
import type { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import type { BridgeUnderTest } from "./bridge-under-test.ts";
import type { Bench } from "./phase.ts";
import {
  cpuPerMessage,
  cpuPerMessageByName,
  isolate,
  type Measured,
  postmasterPid,
  sampleCpu,
} from "./proc.ts";
import { RawClient, RawSyncReader } from "./raw-client.ts";
import type { RunSummary } from "./stats.ts";
import { HELPER_PROCESSES } from "./worker-mode.ts";
import { runWorkload } from "./workload.ts";

/** The Nova user every workload message is sent as (on Synapse: its ghost, `ghostUserId`). */
export const SENDER = "alice";
/** How long a run waits for its last receipts after the window. */
const DRAIN_MS = 10_000;

export const round1 = (n: number) => Math.round(n * 10) / 10;

/** Runs `task` over `items` with at most `limit` at a time. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i] as T);
      }
    }),
  );
  return results;
}

/** Which conversations `createConversations` makes: `${prefix}-<i>` for i in [from, to), `concurrency` at a time. */
export interface ConversationBatch {
  prefix: string;
  from: number;
  to: number;
  concurrency: number;
}

/**
 * Creates conversations through the bridge library, each with the sender as member and retried a few times (room
 * creation under load times out now and then); returns their ids, rooms (same order) and how long it took.
 */
export async function createConversations(
  library: Bridge,
  { prefix, from, to, concurrency }: ConversationBatch,
) {
  const ids = Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);
  const started = performance.now();
  const rooms = await pool(ids, concurrency, async (id) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await library.conversations.ensureGroup(id, { name: id, members: [SENDER] })).roomId;
      } catch (error) {
        if (attempt >= 5) throw error;
        await sleep(1000 * attempt);
      }
    }
  });
  return { ids, rooms, seconds: (performance.now() - started) / 1000 };
}

/** Whom a workload run loads: the homeserver, and the bridge service when it goes through it. */
export interface LoadedProcesses {
  synapse: RunningSynapse;
  bridge?: ServiceProcess;
  /** The homeserver's PostgreSQL; default: the shared stack's. */
  postgres?: PostgresServer;
  /** Worker mode: each Synapse process, Redis and the proxy, measured one by one (cpuMsPerProcess). */
  cluster?: RunningSynapseCluster;
}

/** Worker mode's processes by name (each Synapse instance, `redis`, `haproxy`), those running now. */
function clusterPids(cluster: RunningSynapseCluster): Map<string, number> {
  const [redis, haproxy] = HELPER_PROCESSES;
  const named = [
    ...cluster.processes,
    [redis, cluster.redis.process],
    [haproxy, cluster.proxy.process],
  ] as const;
  return new Map(
    named.flatMap(([name, process]) =>
      process.alive() && process.pid !== undefined ? [[name, process.pid] as const] : [],
    ),
  );
}

/**
 * Puts each side on its core (when the machine allows it; bench.cpu.plan) and returns the processes to measure.
 * Called before every measurement: a process a phase restarted (Synapse after tuning) inherited the bench's core.
 */
export async function isolateSides(bench: Bench, loaded: LoadedProcesses): Promise<Measured> {
  const named = loaded.cluster ? clusterPids(loaded.cluster) : undefined;
  const measured: Measured = {
    synapse: loaded.synapse.pids(),
    bridge: loaded.bridge?.pid,
    postmaster: await postmasterPid((loaded.postgres ?? bench.stack.postgres).dataDir),
    helpers: named ? HELPER_PROCESSES.flatMap((name) => named.get(name) ?? []) : undefined,
    names: named ? new Map([...named].map(([name, pid]) => [pid, name])) : undefined,
  };
  if (typeof bench.cpu.plan !== "string") await isolate(bench.cpu.plan, measured);
  return measured;
}

/**
 * The workload at each `--concurrency`, on the first that many targets: one run each, with each side on its core
 * (when the machine allows it) and the CPU time each process spent per message received.
 */
export async function runAtEachConcurrency(
  bench: Bench,
  label: string,
  targets: readonly string[],
  receipts: Map<string, number>,
  send: (target: string, body: string, key: string) => Promise<void>,
  loaded: LoadedProcesses,
): Promise<RunSummary[]> {
  const runs: RunSummary[] = [];
  for (const concurrency of bench.options.concurrency) {
    const measured = await isolateSides(bench, loaded);
    const before = await sampleCpu(measured);
    const summary = await runWorkload({
      targets: targets.slice(0, concurrency),
      durationMs: bench.options.duration * 1000,
      drainMs: DRAIN_MS,
      receipts,
      tag: `${label}-c${concurrency}-${Date.now()}`,
      send,
    });
    const after = await sampleCpu(measured);
    const run: RunSummary = {
      ...summary,
      cpuMsPerMessage: cpuPerMessage(before, after, summary.received, bench.cpu.ticksPerSecond),
      ...(measured.names
        ? {
            cpuMsPerProcess: cpuPerMessageByName(before, after, summary.received, bench.cpu.ticksPerSecond),
          }
        : {}),
    };
    bench.log(
      `${label} c=${concurrency}: ${run.throughput} msg/s, p50 ${run.p50Ms} ms (accepted ${run.acceptedP50Ms} ms), p99 ${run.p99Ms} ms; ` +
        `CPU ms/msg ${JSON.stringify(run.cpuMsPerMessage)}${run.cpuMsPerProcess ? `, by process ${JSON.stringify(run.cpuMsPerProcess)}` : ""}`,
    );
    runs.push(run);
  }
  return runs;
}

/** The raw baseline on one homeserver: PUT /send as the sender's ghost, received on a /sync long-poll. */
export async function rawRuns(
  bench: Bench,
  synapse: RunningSynapse,
  config: EnabledConfig,
  rooms: readonly string[],
  label: string,
) {
  const client = new RawClient({ homeserverUrl: synapse.baseUrl, asToken: config.accessToken.reveal() });
  const sender = ghostUserId(SENDER, config.serverName);
  const receipts = new Map<string, number>();
  const reader = new RawSyncReader(client, config.serviceUser);
  await reader.start((message, at) => receipts.set(message.body, at));
  const runs = await runAtEachConcurrency(
    bench,
    label,
    rooms,
    receipts,
    async (roomId, body) => {
      await client.send(roomId, sender, body);
    },
    { synapse },
  );
  await reader.stop();
  return runs;
}

/**
 * The workload through a bridge service: sent to its HTTP API (POST /v1/conversations/{id}/messages), received on
 * its WebSocket. `loaded` names the homeserver behind it (default: the shared stack's).
 */
export function bridgeRuns(
  bench: Bench,
  label: string,
  bridge: BridgeUnderTest,
  conversationIds: readonly string[],
  loaded: Omit<LoadedProcesses, "bridge"> = { synapse: bench.stack.synapse },
) {
  const { service, events } = bridge;
  return runAtEachConcurrency(
    bench,
    label,
    conversationIds,
    events.receipts,
    async (id, text, key) => {
      const response = await fetch(`${service.url}/v1/conversations/${id}/messages`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${bench.credentials.apiToken}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ sender_id: SENDER, text, client_message_id: key }),
      });
      if (!response.ok) throw new Error(`send: HTTP ${response.status}`);
      await response.arrayBuffer();
    },
    { ...loaded, bridge: service },
  );
}
