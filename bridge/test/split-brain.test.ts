// One active replica under a partition (split brain), on the real Synapse and PostgreSQL: two bridge service
// processes on one database, the first one's sync-lock connection routed through a TCP proxy while its pool connects
// directly. Every write to the event log and to the sync token is recorded by a trigger with the writing process's
// application_name, so the test sees who committed what, in commit order.
//  - partition: the database ends the first one's lock session (and grants the lock to the second) while the first
//    has not noticed (its heartbeat is given 30 s here). The first's next commit finds the second's epoch and stops
//    it: no write of the first after the second's first, next_batch never moves backwards, readers see every
//    accepted message exactly once, in order.
//  - silent line: the lock connection black-holed both ways (neither side hears anything, the database's session
//    stays open): the first's heartbeat fails within its timeout and it exits; the database ends the silent session
//    after its idle_session_timeout, and the second takes over.
import { randomBytes } from "node:crypto";
import { startTcpProxy, type TcpProxy, waitFor } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import pg from "pg";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { lockIdleTimeoutMs } from "../src/service/sync-lock.ts";
import { PostgresEventStore } from "../src/store/postgres.ts";
import { readAll } from "./log.ts";
import { EventReader, expectExactlyOnceInOrder, SendStream, synapseMessages } from "./traffic.ts";

const API_TOKEN = randomBytes(32).toString("base64url");
const SIGNING_KEY = randomBytes(32).toString("base64url");
const TIMEOUT_MS = 180_000;
const unique = () => randomBytes(3).toString("hex");

/** Records every write to the log and the token with the writer's application_name (test database only). */
const RECORDER = `
  CREATE TABLE test_writes (
    seq        bigserial PRIMARY KEY,
    writer     text NOT NULL,
    next_batch text,
    position   bigint,
    at         timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  CREATE FUNCTION test_record_token() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO test_writes (writer, next_batch) VALUES (current_setting('application_name'), NEW.next_batch);
    RETURN NEW;
  END $$;
  CREATE TRIGGER test_record_token AFTER INSERT OR UPDATE ON bridge_sync_state
    FOR EACH ROW EXECUTE FUNCTION test_record_token();
  CREATE FUNCTION test_record_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO test_writes (writer, position) VALUES (current_setting('application_name'), NEW.position);
    RETURN NEW;
  END $$;
  CREATE TRIGGER test_record_event AFTER INSERT ON bridge_event_log
    FOR EACH ROW EXECUTE FUNCTION test_record_event();`;

interface Write {
  writer: string;
  next_batch: string | null;
  position: string | null;
  at: Date;
}

/** The same database URL with another port (the proxy's) and the writer's name as application_name. */
function routed(url: string, applicationName: string, port?: number): string {
  const parsed = new URL(url);
  if (port !== undefined) parsed.port = String(port);
  parsed.searchParams.set("application_name", applicationName);
  return parsed.toString();
}

/**
 * Synapse's sync tokens (`s<room>_<presence>_..._<n>`), compared position by position: a later token is at or
 * after an earlier one in every stream.
 */
function tokenPositions(token: string): number[] {
  const match = /^s(\d+(?:_\d+)*)$/.exec(token);
  if (!match) throw new Error(`not a sync token this test can compare: ${token}`);
  return (match[1] as string).split("_").map(Number);
}
const notBefore = (later: string, earlier: string) => {
  const a = tokenPositions(later);
  const b = tokenPositions(earlier);
  return a.length === b.length && a.every((n, i) => n >= (b[i] as number));
};

describeWithHarness("one active replica under a partition (split brain)", () => {
  let stack: TestStack;
  let proxy: TcpProxy | undefined;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    stack = await startTestStack({ serverName: "split.test" });
  });
  afterEach(async () => {
    for (const replica of processes.splice(0)) await replica.stop();
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** A bridge database with the recorder, and two service processes: the first's lock line through a proxy. */
  async function twoReplicas(firstHeartbeat: { everyMs: number; timeoutMs: number }) {
    const databaseUrl = await stack.newBridgeDatabase();
    const store = new PostgresEventStore(databaseUrl);
    await store.migrate();
    const admin = new pg.Client({ connectionString: databaseUrl });
    admin.on("error", () => {});
    await admin.connect();
    await admin.query(RECORDER);
    proxy = await startTcpProxy({ host: "127.0.0.1", port: stack.postgres.port });
    const newReplica = (name: string, env: Record<string, string>) => {
      const replica = new ServiceProcess({
        config: stack.config,
        databaseUrl: routed(databaseUrl, name),
        apiToken: API_TOKEN,
        signingKey: SIGNING_KEY,
        env: { BRIDGE_LOCK_RETRY_MS: "200", ...env },
      });
      processes.push(replica);
      return replica;
    };
    const first = newReplica("first", {
      BRIDGE_LOCK_DATABASE_URL: routed(databaseUrl, "first-lock", proxy.port),
      BRIDGE_LOCK_HEARTBEAT_MS: String(firstHeartbeat.everyMs),
      BRIDGE_LOCK_HEARTBEAT_TIMEOUT_MS: String(firstHeartbeat.timeoutMs),
    });
    const second = newReplica("second", {});
    await first.start();
    // The second waits on standby (healthy, not ready) until it holds the lock.
    let secondActive = false;
    const secondReady = second.start(TIMEOUT_MS).then(() => {
      secondActive = true;
    });
    await waitFor(async () => (await fetch(`${second.url}/healthz`).catch(() => undefined))?.ok === true, {
      timeoutMs: 30_000,
      describe: () => `the second replica never answered /healthz:\n${second.output.slice(-3000)}`,
    });
    expect((await fetch(`${second.url}/readyz`)).status).toBe(503);
    const active = () => (secondActive ? second.url : first.url);
    const writes = async () =>
      (
        await admin.query<Write>(
          "SELECT writer, next_batch, position::text, at FROM test_writes ORDER BY seq",
        )
      ).rows;
    const close = async () => {
      await admin.end();
      await store.close();
    };
    return { first, second, secondReady, active, store, writes, close };
  }

  async function conversations(url: string, count: number): Promise<[string, string][]> {
    const created: [string, string][] = [];
    for (let i = 0; i < count; i++) {
      const id = `split-${i}-${unique()}`;
      const answer = await fetch(`${url}/v1/conversations`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ conversation_id: id, kind: "group", members: ["alice"] }),
      });
      expect(answer.status).toBe(200);
      created.push([id, ((await answer.json()) as { room_id: string }).room_id]);
    }
    return created;
  }

  it(
    "the database gives the first replica's lock to the second before the first notices: its next commit is fenced off",
    async () => {
      const pair = await twoReplicas({ everyMs: 1000, timeoutMs: 30_000 });
      try {
        const rooms = new Map(await conversations(pair.first.url, 3));
        const reader = new EventReader(pair.active, API_TOKEN);
        const stream = new SendStream({
          url: pair.active,
          token: API_TOKEN,
          conversations: [...rooms.keys()],
          senderId: "alice",
          requestTimeoutMs: 10_000,
          pauseMs: 50,
        });
        let partitionedAt = 0;
        let takeoverMs = 0;
        try {
          await stream.waitForMore(6);
          partitionedAt = performance.now();
          proxy?.partition();
          await pair.secondReady;
          takeoverMs = performance.now() - partitionedAt;
          // The first stopped by itself (it still had 30 s of heartbeat to go): fenced off by its next commit.
          await waitFor(async () => pair.first.unexpectedExits === 1, {
            timeoutMs: 60_000,
            describe: () => `the first replica is still running:\n${pair.first.output.slice(-3000)}`,
          });
          // Heal: the first's held lock line is reset as the database would answer it; nothing it held comes back.
          proxy?.restore();
          await stream.waitForMore(9, 60_000);
        } catch (error) {
          console.error(
            `first:\n${pair.first.output.slice(-4000)}\nsecond:\n${pair.second.output.slice(-4000)}`,
          );
          throw error;
        } finally {
          await stream.stop();
        }
        expect(pair.first.output).toMatch(/sync loop fenced off: another replica owns the event log/);
        expect(pair.first.output).not.toMatch(/heartbeat failed/);

        const writes = await pair.writes();
        const secondFrom = writes.findIndex((w) => w.writer === "second");
        expect(secondFrom, "the second replica never committed").toBeGreaterThan(0);
        expect(writes.slice(0, secondFrom).every((w) => w.writer === "first")).toBe(true);
        const lateWrites = writes.slice(secondFrom).filter((w) => w.writer !== "second");
        expect(lateWrites, "the first replica wrote after the second had taken over").toEqual([]);
        const tokens = writes.flatMap((w) => (w.next_batch ? [w.next_batch] : []));
        for (let i = 1; i < tokens.length; i++)
          expect(
            notBefore(tokens[i] as string, tokens[i - 1] as string),
            `next_batch moved backwards: ${tokens[i - 1]} then ${tokens[i]}`,
          ).toBe(true);

        const acceptedIds = [...stream.accepted.values()].flat().map((a) => a.messageId);
        await reader.waitFor(acceptedIds);
        reader.close();
        const synapse = new Map(
          await Promise.all(
            [...rooms].map(
              async ([id, roomId]) =>
                [
                  id,
                  await synapseMessages(
                    stack.synapse.baseUrl,
                    stack.secrets.asToken,
                    stack.config.serviceUser,
                    roomId,
                  ),
                ] as const,
            ),
          ),
        );
        expectExactlyOnceInOrder({
          accepted: stream.accepted,
          log: await readAll(pair.store),
          websocket: reader.events,
          synapse,
        });
        const firstLast = writes.slice(0, secondFrom).at(-1)?.at.getTime() ?? 0;
        const secondFirst = writes[secondFrom]?.at.getTime() ?? 0;
        console.log(
          `partition: the second replica was ready ${Math.round(takeoverMs)} ms after the partition; ` +
            `${stream.count} messages accepted, ${writes.length} writes (${secondFrom} by the first); ` +
            `${secondFirst - firstLast} ms between the first's last write and the second's first`,
        );
      } finally {
        await pair.close();
      }
    },
    TIMEOUT_MS,
  );

  it(
    "a silent lock line: the first's heartbeat fails and it exits; the database ends the silent session; the second takes over",
    async () => {
      const heartbeat = { everyMs: 1000, timeoutMs: 2000 };
      const pair = await twoReplicas(heartbeat);
      try {
        proxy?.blackhole();
        const blackholedAt = performance.now();
        await waitFor(async () => pair.first.unexpectedExits === 1, {
          timeoutMs: 30_000,
          describe: () => `the first replica is still running:\n${pair.first.output.slice(-3000)}`,
        });
        const exitMs = performance.now() - blackholedAt;
        await pair.secondReady;
        const takeoverMs = performance.now() - blackholedAt;
        expect(pair.first.output).toMatch(/heartbeat failed \(no answer within 2000 ms\)/);
        // At most one interval to the next heartbeat, then its timeout (and the margin of a loaded machine).
        expect(exitMs).toBeLessThan(heartbeat.everyMs + heartbeat.timeoutMs + 5000);
        expect(exitMs).toBeGreaterThanOrEqual(heartbeat.timeoutMs);
        // The database let the lock go by itself: nothing closed the session (the proxy passes no byte, not even
        // the first's goodbye), only its idle timeout (2 heartbeats + the timeout after the last one answered).
        expect(takeoverMs).toBeGreaterThanOrEqual(
          lockIdleTimeoutMs({ heartbeatMs: heartbeat.everyMs, heartbeatTimeoutMs: heartbeat.timeoutMs }) -
            heartbeat.everyMs,
        );
        // The second serves the API (a conversation created through it).
        await conversations(pair.second.url, 1);
        console.log(
          `silent line: the first exited ${Math.round(exitMs)} ms after it went silent, the second was ready after ${Math.round(takeoverMs)} ms`,
        );
      } finally {
        await pair.close();
      }
    },
    TIMEOUT_MS,
  );
});
