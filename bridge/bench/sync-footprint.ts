// Measures what it costs to follow N conversation rooms: the bridge's own /sync loop (matrix-js-sdk's HTTP layer,
// a filtered sync, events straight into the Postgres log) against matrix-js-sdk's full client (startClient with
// room models). Each side runs in its own process so RSS is comparable. Usage (from the repo root):
//   node bridge/bench/sync-footprint.ts [rooms=200] [messagesPerRoom=3]
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { Secret } from "../src/config/secret.ts";
import { Conversations } from "../src/core/conversations.ts";
import { POSITION_ONLY_FILTER, SyncLoop } from "../src/core/sync-loop.ts";
import { MatrixClient } from "../src/matrix/client.ts";
import { GhostRegistry, registerAppserviceUser } from "../src/matrix/users.ts";
import { PostgresEventStore } from "../src/store/postgres.ts";

const serverName = "bench.test";
const mode = process.env.BENCH_MODE;

if (mode === "ours" || mode === "sdk") {
  const homeserverUrl = process.env.BENCH_HS as string;
  const token = process.env.BENCH_TOKEN as string;
  const serviceUser = `@nova-service:${serverName}`;
  // Count the HTTP requests each side makes.
  let requests = 0;
  const realFetch = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    requests++;
    return realFetch(input, init);
  };
  const started = performance.now();
  let events = 0;
  if (mode === "ours") {
    const logger = pino({ level: "silent" });
    const client = new MatrixClient({ homeserverUrl, accessToken: new Secret(token), serviceUser, logger });
    const store = new PostgresEventStore(process.env.BENCH_DB as string);
    await store.migrate();
    const conversations = new Conversations({
      client,
      ghosts: new GhostRegistry(client),
      serverName,
      logger,
    });
    const timelineLimit = Number(process.env.BENCH_TIMELINE_LIMIT ?? 10);
    // The bridge's own first start logs nothing from before it (it takes the position); a start from the position
    // before the messages makes it read all of them, the same work as the SDK's initial sync below.
    await store.commitSync([], process.env.BENCH_SINCE as string);
    const { Authors } = await import("../src/core/authors.ts");
    const authors = new Authors({ client, serverName });
    const loop = new SyncLoop({ client, store, conversations, serverName, logger, timelineLimit, authors });
    events = await loop.syncOnce();
    await store.close();
  } else {
    const sdk = await import("matrix-js-sdk");
    const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, getChild: () => quiet };
    const client = sdk.createClient({
      baseUrl: homeserverUrl,
      accessToken: token,
      userId: serviceUser,
      logger: quiet,
      fetchFn: (input, init) => {
        const url = new URL(String(input));
        url.searchParams.set("user_id", serviceUser);
        return fetch(url, init);
      },
    });
    await new Promise<void>((resolve) => {
      client.on(sdk.ClientEvent.Sync, (state) => {
        if (state === "PREPARED") resolve();
      });
      void client.startClient({ initialSyncLimit: 8, lazyLoadMembers: true, disablePresence: true });
    });
    events = client.getRooms().reduce((sum, room) => sum + room.getLiveTimeline().getEvents().length, 0);
    client.stopClient();
  }
  const ms = Math.round(performance.now() - started);
  globalThis.gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  console.log(
    JSON.stringify({
      mode,
      timelineLimit: process.env.BENCH_TIMELINE_LIMIT || 8,
      ms,
      events,
      requests,
      rssMB: Math.round(rss / 1e6),
      heapMB: Math.round(heapUsed / 1e6),
    }),
  );
  process.exit(0);
}

// Only the parent loads the harness, so the measured children carry nothing but what they measure.
const { ensureSynapseChroot, startPostgres, startSynapse } = await import("@nova-matrix/dev/harness");
const { generateLocalSecrets, localSynapseFiles } = await import("@nova-matrix/infra/synapse/local-profile");
const rooms = Number(process.argv[2] ?? 200);
const perRoom = Number(process.argv[3] ?? 3);
const postgres = await startPostgres();
const password = randomBytes(12).toString("hex");
await postgres.createRole("synapse", password);
await postgres.createDatabase("synapse", "synapse");
const secrets = generateLocalSecrets();
const files = (paths: { dataDir: string; port: number; metricsPort: number }) =>
  localSynapseFiles({
    paths,
    serverName,
    database: { host: postgres.host, port: postgres.port, name: "synapse", user: "synapse", password },
    secrets,
  });
const synapse = await startSynapse({
  chroot: await ensureSynapseChroot(),
  configFiles: files({ dataDir: "/", port: 1, metricsPort: 2 }).configFiles,
  files: (paths) => files(paths).files,
});
try {
  const logger = pino({ level: "silent" });
  const client = new MatrixClient({
    homeserverUrl: synapse.baseUrl,
    accessToken: new Secret(secrets.asToken),
    serviceUser: `@nova-service:${serverName}`,
    logger,
  });
  await registerAppserviceUser(client, "nova-service");
  const conversations = new Conversations({ client, ghosts: new GhostRegistry(client), serverName, logger });
  const { Messages } = await import("../src/core/messages.ts");
  const { Authors } = await import("../src/core/authors.ts");
  const messages = new Messages({
    client,
    authors: new Authors({ client, serverName }),
    ghosts: new GhostRegistry(client),
    conversations,
    serverName,
    logger,
  });
  const setupStart = Date.now();
  const eightAtATime = async (task: (id: string) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < rooms) await task(`bench-${next++}`);
      }),
    );
  };
  await eightAtATime(async (id) => {
    await conversations.ensureGroup(id, { name: id, members: ["alice"] });
  });
  // The position before the messages: where "ours" starts reading.
  const before = await client.get<{ next_batch: string }>("/sync", {
    query: { filter: JSON.stringify(POSITION_ONLY_FILTER), timeout: 0 },
  });
  await eightAtATime(async (id) => {
    for (let m = 0; m < perRoom; m++)
      await messages.sendText({
        conversationId: id,
        senderId: "alice",
        text: `m${m}`,
        idempotencyKey: `${id}-${m}`,
      });
  });
  console.log(
    `set up ${rooms} rooms x ${perRoom} messages in ${Math.round((Date.now() - setupStart) / 1000)} s`,
  );
  // Ours before and after the SDK, so Synapse's warm caches favour neither.
  for (const [run, [benchMode, limit]] of [
    ["ours", "10"],
    ["sdk", ""],
    ["ours", "10"],
  ].entries()) {
    // A fresh log per run: each reads every room's messages once (ours from the position before them).
    const database = `bench_${run}`;
    await postgres.createDatabase(database);
    const child = spawn(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url)], {
      env: {
        ...process.env,
        BENCH_MODE: benchMode,
        BENCH_TIMELINE_LIMIT: limit,
        BENCH_HS: synapse.baseUrl,
        BENCH_TOKEN: secrets.asToken,
        BENCH_DB: postgres.url(database),
        BENCH_SINCE: before.next_batch,
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    await new Promise((resolve) => child.once("exit", resolve));
  }
} finally {
  await synapse.dispose();
  await postgres.stop();
}
