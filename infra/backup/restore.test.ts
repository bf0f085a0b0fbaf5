// The backup is only as good as the restore: a real Synapse on real PostgreSQL with messages, an uploaded image
// and one-time keys, and the bridge's real event store beside it on the same server (as in staging) -> the dump
// arguments and media script the CronJobs run -> a FRESH PostgreSQL cluster and a fresh data dir -> a new Synapse on
// the restored data serves the same messages and the same media bytes, and the bridge's store reads back the same
// event log, sync token, send records and media index. Only `gcloud` is stood in for (by a script that keeps what
// it is given): there is no GCS here.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { type BridgeEvent, PostgresEventStore } from "@nova-matrix/bridge";
import {
  type PostgresServer,
  postgresBinDir,
  type RunningSynapse,
  registerWithSharedSecret,
  startPostgres,
  startSynapse,
  testHomeserverFiles,
  waitFor,
} from "@nova-matrix/dev/harness";
import { describeWithHarness, harnessChroot } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  DEFAULT_IMAGES,
  databaseBackupCronJob,
  mediaBackupScript,
  mediaExtractArgs,
  pgDumpArgs,
  pgRestoreArgs,
} from "./plan.ts";
import { bridgeDatabaseToDump, synapseDatabaseToDump } from "./wiring.ts";

const SERVER = "restore.test";

/** Runs a program; resolves with its output, rejects with it (never with a password: none is in argv). */
function exec(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdinFile?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    if (options.stdinFile) {
      readFile(options.stdinFile).then(
        (data) => child.stdin.end(data),
        (error) => reject(error),
      );
    } else child.stdin.end();
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} exited ${code}:\n${output}`)),
    );
  });
}

/** A real 64x64 RGB PNG (so Synapse makes thumbnails of it), built with zlib. */
function png(): Buffer {
  const size = 64;
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (data: Buffer) => {
    let c = 0xffffffff;
    for (const byte of data) c = (crcTable[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.concat(
    Array.from({ length: size }, (_, y) =>
      Buffer.concat([
        Buffer.from([0]),
        Buffer.from(Array.from({ length: size * 3 }, (_, x) => (x * 7 + y * 13) & 0xff)),
      ]),
    ),
  );
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Every table of the bridge's schema with a digest of its rows: equal digests, equal content. */
async function tableDigests(server: PostgresServer, database: string): Promise<Record<string, string>> {
  const tables = await server.query<{ name: string }>(
    "SELECT quote_ident(table_name) AS name FROM information_schema.tables " +
      "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
    [],
    database,
  );
  const digests: Record<string, string> = {};
  for (const { name } of tables.rows) {
    const result = await server.query<{ rows: string; digest: string | null }>(
      `SELECT count(*)::text AS rows, md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest FROM ${name} t`,
      [],
      database,
    );
    digests[name] = `${result.rows[0]?.rows}:${result.rows[0]?.digest ?? "empty"}`;
  }
  return digests;
}

describeWithHarness("backup and restore of Synapse and the bridge (database dumps + media archive)", () => {
  const sharedSecret = randomBytes(16).toString("hex");
  const synapsePassword = randomBytes(18).toString("base64url");
  const bridgePassword = randomBytes(18).toString("base64url");
  const bridgeDb = { name: "nova_bridge", user: "nova_bridge" };
  const image = png();
  const messages = ["first before the backup", "second, with ünïcödé", "third and last"];
  let work: string;
  let original: PostgresServer;
  let fresh: PostgresServer;
  let source: RunningSynapse;
  let restored: RunningSynapse;
  let token = "";
  let roomId = "";
  let mediaId = "";
  let dumpOutput = "";
  const eventIds: string[] = [];
  let bridgeBefore: Record<string, string> = {};
  const bridgeUrl = (server: PostgresServer) =>
    server.url(bridgeDb.name, { name: bridgeDb.user, password: bridgePassword });

  const client = (synapse: RunningSynapse, path: string, init: RequestInit = {}) =>
    fetch(`${synapse.baseUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "nova-restore-"));
    await chmod(work, 0o755); // pg_dump/pg_restore run as root here; the media dir is read back by the test
    original = await startPostgres();
    await original.createRole("synapse", synapsePassword);
    await original.createDatabase("synapse", "synapse");
    source = await startSynapse({
      chroot: harnessChroot(),
      files: (paths) =>
        testHomeserverFiles(paths, {
          serverName: SERVER,
          postgres: original,
          database: "synapse",
          user: { name: "synapse", password: synapsePassword },
          registrationSharedSecret: sharedSecret,
        }),
    });
    const alice = await registerWithSharedSecret(source.baseUrl, sharedSecret, {
      username: "alice",
      password: randomBytes(12).toString("hex"),
    });
    token = alice.access_token;
    const room = await client(source, "/_matrix/client/v3/createRoom", { method: "POST", body: "{}" });
    roomId = ((await room.json()) as { room_id: string }).room_id;
    for (const [index, body] of messages.entries()) {
      const sent = await client(
        source,
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/m${index}`,
        { method: "PUT", body: JSON.stringify({ msgtype: "m.text", body }) },
      );
      expect(sent.status).toBe(200);
      eventIds.push(((await sent.json()) as { event_id: string }).event_id);
    }
    const upload = await client(source, "/_matrix/media/v3/upload?filename=pattern.png", {
      method: "POST",
      headers: { "content-type": "image/png" },
      body: image,
    });
    expect(upload.status).toBe(200);
    mediaId = ((await upload.json()) as { content_uri: string }).content_uri.split("/").pop() ?? "";
    const keys = await client(source, "/_matrix/client/v3/keys/upload", {
      method: "POST",
      body: JSON.stringify({ one_time_keys: { "curve25519:AAAAAQ": "dGhpcyBpcyBub3QgYSByZWFsIGtleQ" } }),
    });
    expect(keys.status).toBe(200);
    await waitFor(async () => (await readdir(source.hostPath("media"))).includes("local_thumbnails"), {
      timeoutMs: 20_000,
      describe: () => "Synapse made no thumbnail of the uploaded PNG",
    });

    // The bridge's database on the same server, as in staging, written by the bridge's own store: its event log
    // (the room's messages and the image, which also fills the media index), its sync token and a send record.
    await original.createRole(bridgeDb.user, bridgePassword);
    await original.createDatabase(bridgeDb.name, bridgeDb.user);
    const store = new PostgresEventStore(bridgeUrl(original));
    try {
      await store.migrate();
      const at = Date.now();
      const events: BridgeEvent[] = [
        ...messages.map((body, index) => ({
          type: "message.new" as const,
          event_id: eventIds[index] ?? "",
          conversation_id: roomId,
          sender_id: "alice",
          origin_server_ts: at + index,
          message_id: eventIds[index] ?? "",
          content: { kind: "text" as const, body },
        })),
        {
          type: "message.new",
          event_id: "$image",
          conversation_id: roomId,
          sender_id: "alice",
          origin_server_ts: at + messages.length,
          message_id: "$image",
          content: {
            kind: "image",
            body: "pattern.png",
            url: `mxc://${SERVER}/${mediaId}`,
            mimetype: "image/png",
            size: image.length,
            width: 64,
            height: 64,
          },
        },
      ];
      expect(await store.commitSync(events, "s42_restore_token")).toBe(events.length);
      await store.recordAttempt("txn-1", {
        conversationId: roomId,
        kind: "text",
        fingerprint: { body: "x" },
      });
      await store.recordSent("txn-1", eventIds[0] ?? "", { body: messages[0] });
    } finally {
      await store.close();
    }
    bridgeBefore = await tableDigests(original, bridgeDb.name);

    // --- backup, while Synapse runs (pg_dump takes a consistent snapshot): the databases the staging job dumps,
    // as the wiring describes them (Synapse's with its excluded table data, the bridge's whole) ---
    const bin = await postgresBinDir();
    const server = { host: original.host, port: original.port };
    const dumps = [
      {
        target: synapseDatabaseToDump({ ...server, name: "synapse", user: "synapse", tls: false }),
        password: synapsePassword,
      },
      { target: bridgeDatabaseToDump({ ...server, ...bridgeDb }), password: bridgePassword },
    ];
    for (const { target, password } of dumps) {
      dumpOutput += await exec(
        join(bin, "pg_dump"),
        pgDumpArgs(target, join(work, `${target.database}.dump`)),
        { env: { PGPASSWORD: password } },
      );
    }

    // The media job's own script, with a stand-in `gcloud` that keeps the streamed archive.
    const fakeBin = join(work, "bin");
    const bucketDir = join(work, "bucket");
    await mkdir(fakeBin);
    await mkdir(bucketDir);
    await writeFile(
      join(fakeBin, "gcloud"),
      `#!/bin/sh\n[ "$1 $2 $3" = "storage cp -" ] || { echo "unexpected gcloud $*" >&2; exit 2; }\necho "$4" > "${bucketDir}/destination"\ncat > "${bucketDir}/archive.tar"\n`,
      { mode: 0o755 },
    );
    await exec("bash", ["-c", mediaBackupScript(source.hostPath("media"), "nova-test-backups")], {
      env: { PATH: `${fakeBin}:${process.env.PATH}` },
    });

    // --- disaster: a new PostgreSQL cluster and a new data dir; only the dump, the archive and the key survive ---
    const signingKey = await readFile(source.hostPath("signing.key"), "utf8");
    await source.dispose();
    fresh = await startPostgres();
    for (const { target, password } of dumps) {
      await fresh.createRole(target.user, password);
      await fresh.createDatabase(target.database, target.user);
      await exec(
        join(bin, "pg_restore"),
        pgRestoreArgs(
          { database: target.database, host: fresh.host, port: fresh.port, user: target.user },
          join(work, `${target.database}.dump`),
        ),
        { env: { PGPASSWORD: password } },
      );
    }
    restored = await startSynapse({
      chroot: harnessChroot(),
      files: async (paths) => ({
        ...testHomeserverFiles(paths, {
          serverName: SERVER,
          postgres: fresh,
          database: "synapse",
          user: { name: "synapse", password: synapsePassword },
          registrationSharedSecret: sharedSecret,
        }),
        "signing.key": signingKey,
      }),
    });
    await mkdir(restored.hostPath("media"), { recursive: true });
    await exec("tar", mediaExtractArgs(restored.hostPath("media")), {
      stdinFile: join(bucketDir, "archive.tar"),
    });
  });

  afterAll(async () => {
    await restored?.dispose();
    await source?.dispose();
    await fresh?.stop();
    await original?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("dumps with the arguments the CronJob's init containers run, one per database", () => {
    const server = { host: "postgres", port: 5432 };
    const databases = [
      synapseDatabaseToDump({ ...server, name: "synapse", user: "synapse", tls: false }),
      bridgeDatabaseToDump({ ...server, ...bridgeDb }),
    ];
    const job = databaseBackupCronJob({
      namespace: "nova-staging",
      labels: {},
      serviceAccountName: "nova-matrix-backup",
      bucket: "b",
      images: DEFAULT_IMAGES,
      databaseSchedule: "0 3 * * *",
      mediaSchedule: "30 3 * * *",
      databases,
      media: { claimName: "c", subPath: "media", runAsUser: 991, synapsePodSelector: {} },
    });
    const commands = job.spec?.jobTemplate.spec?.template.spec?.initContainers?.map((c) => c.command);
    expect(commands).toEqual(
      databases.map((db) => ["pg_dump", ...pgDumpArgs(db, `/backup/${db.database}.dump`)]),
    );
    expect(commands?.[0]).toContain("--exclude-table-data=e2e_one_time_keys_json");
    expect(commands?.[1]?.some((arg) => arg.startsWith("--exclude-table-data"))).toBe(false);
    expect(dumpOutput).toBe(""); // pg_dump is silent when all is well
  });

  it("serves the same messages from the restored database", async () => {
    const response = await client(
      restored,
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
    );
    expect(response.status).toBe(200);
    const { chunk } = (await response.json()) as { chunk: { type: string; content: { body?: string } }[] };
    const bodies = chunk
      .filter((event) => event.type === "m.room.message")
      .map((event) => event.content.body)
      .reverse();
    expect(bodies).toEqual(messages);
  });

  it("serves the same media bytes and thumbnails from the restored media store", async () => {
    const download = await client(restored, `/_matrix/client/v1/media/download/${SERVER}/${mediaId}`);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(image)).toBe(true);
    const thumbnail = await client(
      restored,
      `/_matrix/client/v1/media/thumbnail/${SERVER}/${mediaId}?width=32&height=32&method=scale`,
    );
    expect(thumbnail.status).toBe(200);
    expect(thumbnail.headers.get("content-type")).toMatch(/^image\//);
  });

  it("wrote the archive to a new, timestamped object under media/", async () => {
    const destination = (await readFile(join(work, "bucket", "destination"), "utf8")).trim();
    expect(destination).toMatch(/^gs:\/\/nova-test-backups\/media\/\d{8}T\d{6}Z\.tar$/);
  });

  it("restores the bridge's database whole: every table's rows, read back by the bridge's own store", async () => {
    expect(Object.keys(bridgeBefore).length).toBeGreaterThan(3);
    expect(await tableDigests(fresh, bridgeDb.name)).toEqual(bridgeBefore);
    const store = new PostgresEventStore(bridgeUrl(fresh));
    try {
      await store.migrate(); // the restored schema is current: nothing to upgrade, nothing lost
      expect(await store.syncToken()).toBe("s42_restore_token");
      const log = await store.readAfter(undefined, 50);
      expect(log.map((entry) => entry.event.event_id)).toEqual([...eventIds, "$image"]);
      expect(
        log.map((entry) => (entry.event.type === "message.new" ? entry.event.content : undefined)),
      ).toEqual([
        ...messages.map((body) => ({ kind: "text", body })),
        expect.objectContaining({ kind: "image", url: `mxc://${SERVER}/${mediaId}` }),
      ]);
      // The media index still grants the room's members the restored media item.
      expect(await store.mediaConversations(`mxc://${SERVER}/${mediaId}`)).toEqual([roomId]);
      // A retried idempotency key answers the first send, as before the disaster.
      const earlier = await store.recordAttempt("txn-1", {
        conversationId: roomId,
        kind: "text",
        fingerprint: { body: "x" },
      });
      expect(earlier?.eventId).toBe(eventIds[0]);
    } finally {
      await store.close();
    }
    expect(await tableDigests(fresh, bridgeDb.name)).toEqual(bridgeBefore);
  });

  it("kept the one-time keys table but none of its rows (Synapse's backup guide)", async () => {
    const before = await original.query<{ count: string }>(
      "SELECT count(*) FROM e2e_one_time_keys_json",
      [],
      "synapse",
    );
    expect(Number(before.rows[0]?.count)).toBeGreaterThan(0);
    const after = await fresh.query<{ count: string }>(
      "SELECT count(*) FROM e2e_one_time_keys_json",
      [],
      "synapse",
    );
    expect(Number(after.rows[0]?.count)).toBe(0);
  });
});
