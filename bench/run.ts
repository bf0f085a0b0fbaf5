// `npm run bench`: the system measured the way its users meet it, beside the limit on the same machine (Synapse
// spoken to directly), on the harness's real Synapse + PostgreSQL. Phases: raw baseline, the same workload through
// the bridge, catch-up after a stop, homeserver tuning (shipped vs generated default config), scale of state.
// Writes bench/results/<date>.json and .svg and prints a table with ratios. Not part of `npm test`.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { EnabledConfig } from "@nova-matrix/bridge";
import { type Bridge, startBridge } from "@nova-matrix/bridge";
import { APPSERVICE_ID } from "@nova-matrix/contracts";
import { ensureSynapseChroot, sleep, waitFor } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { appserviceRegistration, FILE_NAMES, logConfig, toYaml } from "@nova-matrix/infra/synapse/homeserver";
import { Command, InvalidArgumentError } from "commander";
import pino from "pino";
import { WebSocket } from "ws";
import { barChartSvg } from "./chart.ts";
import { startDefaultSynapse } from "./default-synapse.ts";
import { RawClient, RawSyncReader } from "./raw-client.ts";
import { formatReport, type Results, type ScalePoint } from "./report.ts";
import { extrapolate, medianRuns, type RunSummary } from "./stats.ts";
import { runWorkload } from "./workload.ts";

const list = (value: string) =>
  value.split(",").map((part) => {
    const n = Number(part);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`expected positive integers, got "${part}"`);
    return n;
  });
const positive = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
};

const program = new Command()
  .name("bench")
  .description("Bridge vs raw Synapse on the harness (see docs/performance.md)")
  .option("--concurrency <list>", "concurrent conversations per run", list, [1, 8, 32])
  .option("--duration <seconds>", "length of each workload window", positive, 20)
  .option("--catchup <messages>", "messages sent while the bridge is stopped", positive, 1000)
  .option("--scale <list>", "conversation counts for memory and start-up", list, [100, 1000, 10_000])
  .option(
    "--scale-budget <minutes>",
    "room creation allowed for the scale phase; beyond it: slope",
    positive,
    20,
  )
  .option("--create-concurrency <n>", "concurrent conversation creations", positive, 8)
  .option(
    "--repeat <n>",
    "alternating raw/bridge and default/shipped pairs; the report uses medians",
    (v) => list(v)[0] as number,
    3,
  )
  .option("--name <name>", "file name of the results (default: the date)")
  .option("--skip <phases>", "comma-separated: raw,bridge,catchup,tuning,scale", "")
  .option("--out <dir>", "results folder", fileURLToPath(new URL("./results", import.meta.url)));
program.parse();
const options = program.opts<{
  concurrency: number[];
  duration: number;
  catchup: number;
  scale: number[];
  scaleBudget: number;
  createConcurrency: number;
  repeat: number;
  name?: string;
  skip: string;
  out: string;
}>();
const skip = new Set(options.skip.split(",").filter(Boolean));
const durationMs = options.duration * 1000;
const drainMs = 10_000;
const API_TOKEN = randomBytes(32).toString("base64url");
const SIGNING_KEY = randomBytes(32).toString("base64url");
const SENDER = "alice";
const log = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
const quiet = pino({ level: "silent" });

/** Runs `task` over `items` with at most `limit` at a time. */
async function pool<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
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

/** Creates conversations `${prefix}-<i>` for i in [from, to) through the bridge library; returns their rooms. */
async function createConversations(setup: Bridge, prefix: string, from: number, to: number) {
  const ids = Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);
  const started = performance.now();
  const rooms = await pool(ids, options.createConcurrency, async (id) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await setup.conversations.ensureGroup(id, { name: id, members: [SENDER] })).roomId;
      } catch (error) {
        if (attempt >= 5) throw error;
        await sleep(1000 * attempt);
      }
    }
  });
  return { ids, rooms, seconds: (performance.now() - started) / 1000 };
}

/** The workload at each `--concurrency`, on the first that many targets: one run each. */
async function runAtEachConcurrency(
  label: string,
  targets: readonly string[],
  receipts: Map<string, number>,
  send: (target: string, body: string, key: string) => Promise<void>,
): Promise<RunSummary[]> {
  const runs: RunSummary[] = [];
  for (const concurrency of options.concurrency) {
    const run = await runWorkload({
      targets: targets.slice(0, concurrency),
      durationMs,
      drainMs,
      receipts,
      tag: `${label}-c${concurrency}-${Date.now()}`,
      send,
    });
    log(
      `${label} c=${concurrency}: ${run.throughput} msg/s, p50 ${run.p50Ms} ms (accepted ${run.acceptedP50Ms} ms), p99 ${run.p99Ms} ms`,
    );
    runs.push(run);
  }
  return runs;
}

/** The raw baseline on one homeserver. */
async function rawRuns(
  homeserverUrl: string,
  config: EnabledConfig,
  rooms: readonly string[],
  label: string,
) {
  const client = new RawClient({ homeserverUrl, asToken: config.accessToken.reveal() });
  const sender = `@nova_${SENDER}:${config.serverName}`;
  const receipts = new Map<string, number>();
  const reader = new RawSyncReader(client, config.serviceUser);
  await reader.start((message, at) => receipts.set(message.body, at));
  const runs = await runAtEachConcurrency(label, rooms, receipts, async (roomId, body) => {
    await client.send(roomId, sender, body);
  });
  await reader.stop();
  return runs;
}

/** The workload through the bridge: sent to its HTTP API, received on its WebSocket. */
function bridgeRuns(service: ServiceProcess, ws: WsReceipts, conversations: readonly string[]) {
  return runAtEachConcurrency("bridge", conversations, ws.receipts, async (conversationId, text, key) => {
    const response = await fetch(`${service.url}/v1/conversations/${conversationId}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ sender_id: SENDER, text, client_message_id: key }),
    });
    if (!response.ok) throw new Error(`send: HTTP ${response.status}`);
    await response.arrayBuffer();
  });
}

/** Reads /v1/events and records each message.new body's arrival; reconnects from its cursor until closed. */
class WsReceipts {
  readonly receipts = new Map<string, number>();
  cursor: string;
  #socket: WebSocket | undefined;
  #closed = false;
  readonly url: () => string;
  constructor(url: () => string, since = "0") {
    this.url = url;
    this.cursor = since;
    this.#connect();
  }
  #connect() {
    if (this.#closed) return;
    const url = new URL("/v1/events", this.url().replace(/^http/, "ws"));
    url.searchParams.set("since", this.cursor);
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    this.#socket = socket;
    socket.on("message", (data) => {
      const now = performance.now();
      const event = JSON.parse(data.toString()) as {
        cursor?: string;
        type: string;
        content?: { body?: string };
      };
      if (event.cursor) this.cursor = event.cursor;
      if (event.type === "message.new" && event.content?.body) this.receipts.set(event.content.body, now);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      if (!this.#closed) setTimeout(() => this.#connect(), 100);
    });
  }
  close() {
    this.#closed = true;
    this.#socket?.terminate();
  }
}

/** Resident set size now and its peak (the high-water mark: what a memory limit must allow), from /proc (MB). */
async function memoryMb(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const mb = (field: string) =>
    Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]) / 1024);
  return { rss: mb("VmRSS"), peak: mb("VmHWM") };
}

/**
 * One scale point on a fresh bridge database, with every conversation in `rooms` active: the first start (the log
 * begins at the present), one message in each conversation live, then one more in each while the bridge is stopped
 * and its restart catching all of them up. RSS after each step and the peak over both processes.
 */
async function measureScale(stack: TestStack, rooms: readonly string[]): Promise<ScalePoint> {
  const scaled = new ServiceProcess({
    config: stack.config,
    databaseUrl: await stack.newBridgeDatabase(),
    apiToken: API_TOKEN,
    signingKey: SIGNING_KEY,
    env: { LOG_LEVEL: "warn" },
  });
  running.add(scaled);
  const client = new RawClient({ homeserverUrl: stack.synapse.baseUrl, asToken: stack.secrets.asToken });
  const sender = `@nova_${SENDER}:${stack.serverName}`;
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
  const reader = (ws: WsReceipts) => {
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
    const live = reader(new WsReceipts(() => scaled.url));
    await allOn(live, await oneEach(`scale-live-${rooms.length}`));
    const active = await settledMemory();
    live.close();
    await scaled.stop();

    const offline = await oneEach(`scale-offline-${rooms.length}`);
    const restarted = performance.now();
    const ready = scaled.start(600_000).then(() => (performance.now() - restarted) / 1000);
    const caughtUp = reader(new WsReceipts(() => scaled.url, live.cursor));
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
    for (const socket of readers) socket.close();
    await scaled.stop();
    running.delete(scaled);
  }
}

async function main() {
  const started = Date.now();
  const results: Results = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      node: process.version,
      synapse: "1.160.0 (Debian sid, Python 3.14)",
      postgres: "15",
      loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
      loadAverageAtEnd: [],
    },
    options: { ...options, skip: [...skip] },
    raw: [],
    bridge: [],
    repeats: { raw: [], bridge: [], default: [], shipped: [] },
    tuning: { shipped: [], default: [] },
    scale: [],
    notes: [],
  };

  log("starting PostgreSQL + Synapse (infra's local profile: the shipped homeserver.yaml)");
  const chroot = await ensureSynapseChroot();
  const stack: TestStack = await startTestStack({ serverName: "bench.test", chroot });
  running.add(stack);
  const bridgeDb = await stack.newBridgeDatabase();
  const setup = await startBridge({
    config: stack.config,
    store: await stack.newBridgeDatabase(),
    logger: quiet,
    sync: false,
  });
  const service = new ServiceProcess({
    config: stack.config,
    databaseUrl: bridgeDb,
    apiToken: API_TOKEN,
    signingKey: SIGNING_KEY,
    env: { LOG_LEVEL: "warn", BRIDGE_SYNC_POLL_MS: "30000" },
  });
  try {
    const maxConcurrency = Math.max(...options.concurrency, 8);
    const work = await createConversations(setup, "bench", 0, maxConcurrency);
    log(`${work.ids.length} conversations in ${work.seconds.toFixed(1)} s`);

    // Raw and bridge alternate, `--repeat` times (the bridge stopped during raw runs): each pair shares the
    // machine's conditions, and the medians over the repeats are what the report compares.
    let ws: WsReceipts | undefined;
    const startService = async () => {
      await service.start(120_000);
      ws ??= new WsReceipts(() => service.url);
      // Let it catch up what the raw runs sent while it was stopped before measuring.
      let seen = -1;
      while (seen !== ws.receipts.size) {
        seen = ws.receipts.size;
        await sleep(1000);
      }
    };
    for (let repeat = 1; repeat <= options.repeat; repeat++) {
      if (!skip.has("raw")) {
        await service.stop();
        log(`raw baseline ${repeat}/${options.repeat}: PUT /send + /sync long-poll, no bridge`);
        results.repeats.raw.push(await rawRuns(stack.synapse.baseUrl, stack.config, work.rooms, "raw"));
      }
      if (!skip.has("bridge")) {
        await startService();
        log(
          `through the bridge ${repeat}/${options.repeat}: POST /v1/conversations/{id}/messages, received on /v1/events`,
        );
        results.repeats.bridge.push(await bridgeRuns(service, ws as WsReceipts, work.ids));
      }
    }
    results.raw = medianRuns(results.repeats.raw);
    results.bridge = medianRuns(results.repeats.bridge);
    if (!skip.has("catchup")) await startService();

    const catchupReader = ws;
    if (!skip.has("catchup") && catchupReader) {
      const count = options.catchup;
      const rooms = work.rooms.slice(0, 8);
      log(`catch-up: bridge stopped, ${count} messages sent to ${rooms.length} conversations`);
      await service.stop();
      const client = new RawClient({ homeserverUrl: stack.synapse.baseUrl, asToken: stack.secrets.asToken });
      const reader = new RawSyncReader(client, stack.config.serviceUser);
      const before = await reader.currentToken();
      const tag = `catchup-${Date.now()}`;
      const sender = `@nova_${SENDER}:${stack.serverName}`;
      const sendStarted = performance.now();
      await pool(
        Array.from({ length: count }, (_, i) => i),
        8,
        (i) => client.send(rooms[i % rooms.length] as string, sender, `${tag} ${i}`),
      );
      const sendSeconds = (performance.now() - sendStarted) / 1000;
      const bodies = Array.from({ length: count }, (_, i) => `${tag} ${i}`);
      // Synapse's own speed: a raw /sync from the token before the sends until every message is in.
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
      // The bridge: from the process start until all are on the WebSocket (it back-fills limited timelines).
      const bridgeStarted = performance.now();
      const ready = service.start(120_000).then(() => (performance.now() - bridgeStarted) / 1000);
      await waitFor(async () => bodies.every((body) => catchupReader.receipts.has(body)), {
        timeoutMs: 300_000,
        intervalMs: 50,
        describe: () => "not every catch-up message reached the WebSocket",
      });
      const last = Math.max(...bodies.map((body) => catchupReader.receipts.get(body) as number));
      results.catchup = {
        messages: count,
        conversations: rooms.length,
        sendSeconds: round1(sendSeconds),
        rawReadSeconds: round1(rawReadSeconds),
        bridgeReadySeconds: round1(await ready),
        bridgeAllOnWebSocketSeconds: round1((last - bridgeStarted) / 1000),
      };
      log(`catch-up: ${JSON.stringify(results.catchup)}`);
    }
    ws?.close();
    await service.stop();

    if (!skip.has("tuning")) {
      log(
        "homeserver tuning: the raw workload on Synapse's generated default config (shipped Synapse stopped)",
      );
      await stack.synapse.stop();
      const password = randomBytes(18).toString("base64url");
      await stack.postgres.createRole("synapse_default", password);
      await stack.postgres.createDatabase("synapse_default", "synapse_default");
      const registrationYaml = toYaml(
        appserviceRegistration({
          id: APPSERVICE_ID,
          serverName: stack.serverName,
          asToken: stack.secrets.asToken,
          hsToken: stack.secrets.hsToken,
        }),
      );
      const defaults = await startDefaultSynapse({
        chroot,
        serverName: stack.serverName,
        postgres: stack.postgres,
        database: { name: "synapse_default", user: "synapse_default", password },
        registrationYaml,
      });
      const defaultSynapse = { stop: () => defaults.dispose() };
      running.add(defaultSynapse);
      try {
        const config = { ...stack.config, homeserverUrl: defaults.synapse.baseUrl };
        const defaultSetup = await startBridge({
          config,
          store: await stack.newBridgeDatabase(),
          logger: quiet,
          sync: false,
        });
        const rooms = (await createConversations(defaultSetup, "tuning", 0, Math.max(...options.concurrency)))
          .rooms;
        await defaultSetup.stop();
        results.notes.push(
          `default config: generated by Synapse 1.160 --generate-config (presence ${String(
            (defaults.generated.presence as { enabled?: boolean } | undefined)?.enabled ?? "on (default)",
          )}, log level INFO to a file); only listener, database and appservice registration changed`,
        );
        // Default and shipped alternate, one Synapse running at a time: each pair shares the machine's conditions.
        for (let repeat = 1; repeat <= options.repeat; repeat++) {
          log(`homeserver tuning ${repeat}/${options.repeat}: default config, then shipped`);
          if (repeat > 1) await defaults.synapse.start();
          results.repeats.default.push(
            await rawRuns(defaults.synapse.baseUrl, config, rooms, "default-config"),
          );
          await defaults.synapse.stop();
          await stack.synapse.start();
          results.repeats.shipped.push(
            await rawRuns(stack.synapse.baseUrl, stack.config, work.rooms, "shipped-config"),
          );
          if (repeat < options.repeat) await stack.synapse.stop();
        }
      } finally {
        await defaults.dispose();
        running.delete(defaultSynapse);
      }
      results.tuning.default = medianRuns(results.repeats.default);
      results.tuning.shipped = medianRuns(results.repeats.shipped);
      // What the shipped config would gain with WARNING-level logs (verified-facts: presence off and WARNING logs
      // together gave 25 to 30%): the same Synapse restarted with only its log level changed, then put back.
      const logPath = stack.synapse.hostPath(FILE_NAMES.logConfig);
      const shippedLog = await readFile(logPath, "utf8");
      await stack.synapse.stop();
      await writeFile(logPath, toYaml(logConfig("WARNING")));
      try {
        await stack.synapse.start();
        results.tuning.shippedWarningLogs = await rawRuns(
          stack.synapse.baseUrl,
          stack.config,
          work.rooms,
          "shipped-config, WARNING logs",
        );
      } finally {
        await stack.synapse.stop();
        await writeFile(logPath, shippedLog);
        await stack.synapse.start();
      }
    }

    if (!skip.has("scale")) {
      let total = work.ids.length;
      const scaleRooms = [...work.rooms];
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
          log(`scale: creating conversations ${total}..${target}`);
          const batch = await createConversations(setup, "scale", total, target);
          scaleRooms.push(...batch.rooms);
          creationSeconds += batch.seconds;
          created += batch.ids.length;
          total = target;
          log(`created ${batch.ids.length} in ${batch.seconds.toFixed(0)} s`);
        }
        try {
          const point = await measureScale(stack, scaleRooms);
          log(`scale ${total}: ${JSON.stringify(point)}`);
          results.scale.push(point);
        } catch (error) {
          // The points measured so far and the rest of the results still get written.
          const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
          results.notes.push(`scale ${total}: the measurement failed: ${reason}`);
          log(`scale ${total}: failed: ${reason}`);
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
      else
        for (const n of wanted) {
          const predict = (pick: (p: ScalePoint) => number, digits = 0) => {
            const line = extrapolate(
              measured.map((p) => ({ x: p.conversations, y: pick(p) })),
              n,
            );
            return { value: Math.round(line.value * 10 ** digits) / 10 ** digits, slope: line.slope };
          };
          const peak = predict((p) => p.peakMb);
          const catchUp = predict((p) => p.restartCatchUpSeconds, 1);
          results.scale.push({
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
          });
        }
    }
  } finally {
    await service.stop().catch(() => {});
    await setup.stop().catch(() => {});
    await stack.stop().catch(() => {});
  }

  results.machine.loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  results.totalSeconds = Math.round((Date.now() - started) / 1000);
  const day = options.name ?? results.date.slice(0, 10);
  await mkdir(options.out, { recursive: true });
  const jsonPath = join(options.out, `${day}.json`);
  const svgPath = join(options.out, `${day}.svg`);
  await writeFile(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(svgPath, chartOf(results));
  console.log(formatReport(results));
  log(`wrote ${jsonPath} and ${svgPath} in ${results.totalSeconds} s`);
}

/**
 * What must not outlive an interrupted bench (Ctrl-C, SIGTERM): Synapse, PostgreSQL and bridge processes are
 * children that would otherwise keep running, holding ports and CPU. Stopped newest first.
 */
const running = new Set<{ stop(): Promise<unknown> }>();
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    log(`${signal}: stopping what the bench started`);
    void (async () => {
      for (const child of [...running].reverse()) await child.stop().catch(() => {});
      process.exit(130);
    })();
  });

const round1 = (n: number) => Math.round(n * 10) / 10;

function chartOf(results: Results): string {
  const label = (c: number) => `${c} conv.`;
  const at = (runs: RunSummary[], c: number) => runs.find((r) => r.concurrency === c);
  const concurrency = results.options.concurrency;
  const series = ["raw Synapse", "through the bridge", "raw, default config"];
  const pick = (f: (r: RunSummary) => number | undefined) =>
    concurrency.map((c) => ({
      label: label(c),
      values: [results.raw, results.bridge, results.tuning.default].map((runs) => {
        const run = at(runs, c);
        return run ? f(run) : undefined;
      }),
    }));
  return barChartSvg(
    [
      { title: "Throughput", unit: "messages/s", series, groups: pick((r) => r.throughput) },
      { title: "Send-to-receive p50", unit: "ms", series, groups: pick((r) => r.p50Ms) },
    ],
    `nova-matrix bench ${results.date.slice(0, 16)}Z, ${results.machine.cpus} cores, load ${results.machine.loadAverageAtStart[0]}`,
  );
}

await main();
