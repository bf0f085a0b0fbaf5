import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  checkSynapseConfig,
  type PostgresServer,
  type RunningSynapse,
  registerWithSharedSecret,
  startPostgres,
  startSynapse,
  testHomeserverFiles,
} from "./index.ts";
import { describeWithHarness, harnessChroot } from "./vitest.ts";

describeWithHarness("harness: Synapse on PostgreSQL", () => {
  let postgres: PostgresServer;
  let synapse: RunningSynapse;
  const sharedSecret = randomBytes(24).toString("hex");
  const synapsePassword = randomBytes(18).toString("base64url");

  beforeAll(async () => {
    postgres = await startPostgres();
    await postgres.createRole("synapse", synapsePassword);
    await postgres.createDatabase("synapse", "synapse");
    synapse = await startSynapse({
      chroot: harnessChroot(),
      files: (paths) =>
        testHomeserverFiles(paths, {
          serverName: "harness.test",
          postgres,
          database: "synapse",
          user: { name: "synapse", password: synapsePassword },
          registrationSharedSecret: sharedSecret,
        }),
    });
  });

  afterAll(async () => {
    await synapse?.dispose();
    await postgres?.stop();
  });

  it("creates the database with the collation Synapse requires", async () => {
    const { rows } = await postgres.query<{ encoding: string; collate: string; ctype: string }>(
      "SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype FROM pg_database WHERE datname = 'synapse'",
    );
    expect(rows).toEqual([{ encoding: "UTF8", collate: "C", ctype: "C" }]);
  });

  it("runs Synapse's own config check on the data dir", async () => {
    const result = await checkSynapseConfig(synapse.chroot, [`${synapse.paths.dataDir}/homeserver.yaml`]);
    expect(result.output).toContain("Config parses OK");
    expect(result.ok).toBe(true);
  });

  it("answers /health with OK and stores its schema in PostgreSQL", async () => {
    const response = await fetch(`${synapse.baseUrl}/health`);
    expect(await response.text()).toBe("OK");
    const { rows } = await postgres.query<{ count: string }>(
      "SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'",
      [],
      "synapse",
    );
    expect(Number(rows[0]?.count)).toBe(1);
  });

  it("registers a user with the shared secret, who sends a message and reads it back through /sync", async () => {
    const alice = await registerWithSharedSecret(synapse.baseUrl, sharedSecret, {
      username: "alice",
      password: randomBytes(12).toString("hex"),
    });
    expect(alice.user_id).toBe("@alice:harness.test");
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${synapse.baseUrl}/_matrix/client/v3${path}`, {
        method,
        headers: { authorization: `Bearer ${alice.access_token}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      expect(response.status, `${method} ${path}`).toBe(200);
      return response.json() as Promise<Record<string, unknown>>;
    };
    const { room_id: roomId } = (await call("POST", "/createRoom", { preset: "private_chat" })) as {
      room_id: string;
    };
    const text = `hello from the harness ${randomBytes(4).toString("hex")}`;
    const { event_id: eventId } = (await call(
      "PUT",
      `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/txn1`,
      { msgtype: "m.text", body: text },
    )) as { event_id: string };
    const sync = (await call("GET", "/sync?timeout=0")) as {
      rooms: {
        join: Record<string, { timeline: { events: { event_id: string; content: { body?: string } }[] } }>;
      };
    };
    const timeline = sync.rooms.join[roomId]?.timeline.events ?? [];
    expect(timeline.find((event) => event.event_id === eventId)?.content.body).toBe(text);
  });

  it("restarts on the same data after a kill -9", async () => {
    await synapse.kill("SIGKILL");
    await expect(fetch(`${synapse.baseUrl}/health`)).rejects.toThrow();
    await synapse.start();
    expect(await (await fetch(`${synapse.baseUrl}/health`)).text()).toBe("OK");
  });

  it("keeps Synapse's output for a failing test to print", async () => {
    expect(await synapse.log()).toMatch(/Synapse now listening|Starting synapse|synapse\./i);
  });
});
