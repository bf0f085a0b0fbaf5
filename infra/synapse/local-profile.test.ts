import { randomBytes } from "node:crypto";
import { GHOST_PREFIX, SENDER_LOCALPART, SERVICE_LOCALPART, serviceUserId } from "@nova-matrix/contracts";
import {
  checkSynapseConfig,
  type PostgresServer,
  type RunningSynapse,
  startPostgres,
  startSynapse,
} from "@nova-matrix/dev/harness";
import { describeWithHarness, harnessChroot } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { generateLocalSecrets, LOCAL_CONFIG_FILES, localSynapseFiles } from "./local-profile.ts";

const serverName = "local-profile.test";

describeWithHarness("local profile: the deployed Synapse config on the harness", () => {
  let postgres: PostgresServer;
  let synapse: RunningSynapse;
  const configFiles = LOCAL_CONFIG_FILES;
  const secrets = generateLocalSecrets();
  const dbPassword = randomBytes(18).toString("base64url");

  beforeAll(async () => {
    postgres = await startPostgres();
    await postgres.createRole("synapse", dbPassword);
    await postgres.createDatabase("synapse", "synapse");
    synapse = await startSynapse({
      chroot: harnessChroot(),
      configFiles,
      files: (paths) =>
        localSynapseFiles({
          paths,
          serverName,
          database: {
            host: postgres.host,
            port: postgres.port,
            name: "synapse",
            user: "synapse",
            password: dbPassword,
          },
          secrets,
        }).files,
    });
  });

  afterAll(async () => {
    await synapse?.dispose();
    await postgres?.stop();
  });

  it("passes Synapse's own config check", async () => {
    const result = await checkSynapseConfig(
      synapse.chroot,
      configFiles.map((file) => `${synapse.paths.dataDir}/${file}`),
    );
    expect(result.output).toContain("Config parses OK");
    expect(result.ok).toBe(true);
  });

  it("answers /health and serves metrics on the separate listener", async () => {
    expect(await (await fetch(`${synapse.baseUrl}/health`)).text()).toBe("OK");
    const metrics = await fetch(`${synapse.metricsUrl}/_synapse/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("synapse_");
    // Metrics are not on the client listener, and there is no federation API.
    expect((await fetch(`${synapse.baseUrl}/_synapse/metrics`)).status).toBe(404);
    expect((await fetch(`${synapse.baseUrl}/_matrix/federation/v1/version`)).status).toBe(404);
  });

  it("logs JSON lines to stdout", async () => {
    const lines = (await synapse.log()).split("\n").filter((line) => line.startsWith("{"));
    expect(lines.length).toBeGreaterThan(3);
    const entry = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
    expect(entry).toHaveProperty("message");
    expect(entry).toHaveProperty("severity");
  });

  it("refuses open registration", async () => {
    const response = await fetch(`${synapse.baseUrl}/_matrix/client/v3/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "mallory", password: randomBytes(12).toString("hex") }),
    });
    expect(response.status).toBe(403);
  });

  it("registers the service user with the as_token, which whoami then answers for", async () => {
    const auth = { authorization: `Bearer ${secrets.asToken}`, "content-type": "application/json" };
    const register = await fetch(`${synapse.baseUrl}/_matrix/client/v3/register`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ type: "m.login.application_service", username: SERVICE_LOCALPART }),
    });
    expect(register.status, await register.clone().text()).toBe(200);
    const user = serviceUserId(serverName);
    const whoami = await fetch(
      `${synapse.baseUrl}/_matrix/client/v3/account/whoami?user_id=${encodeURIComponent(user)}`,
      { headers: auth },
    );
    expect(whoami.status).toBe(200);
    expect(((await whoami.json()) as { user_id: string }).user_id).toBe(user);
    // Without user_id the token is the appservice's own bot.
    const bot = await fetch(`${synapse.baseUrl}/_matrix/client/v3/account/whoami`, { headers: auth });
    expect(((await bot.json()) as { user_id: string }).user_id).toBe(`@${SENDER_LOCALPART}:${serverName}`);
  });

  it("writes no appservice transactions for the events it stores (nothing to push them to)", async () => {
    const auth = { authorization: `Bearer ${secrets.asToken}`, "content-type": "application/json" };
    const ghost = `@${GHOST_PREFIX}push-check:${serverName}`;
    const call = async (method: string, path: string, body: unknown) => {
      const url = new URL(`${synapse.baseUrl}/_matrix/client/v3${path}`);
      url.searchParams.set("user_id", ghost);
      const response = await fetch(url, { method, headers: auth, body: JSON.stringify(body) });
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as Record<string, string>;
    };
    await fetch(`${synapse.baseUrl}/_matrix/client/v3/register`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ type: "m.login.application_service", username: `${GHOST_PREFIX}push-check` }),
    });
    const { room_id } = await call("POST", "/createRoom", { preset: "private_chat" });
    for (let n = 0; n < 3; n++)
      await call("PUT", `/rooms/${encodeURIComponent(room_id as string)}/send/m.room.message/t${n}`, {
        msgtype: "m.text",
        body: `event ${n}`,
      });
    // Synapse's appservice notifier runs in the background within milliseconds of each event; give it time.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // The notifier's position in the event stream: it moves with every event it reads to push (to 10 here with
    // Synapse's default); it stays at 0 because no process reads them.
    const position = await postgres.query(
      "SELECT stream_ordering FROM appservice_stream_position",
      [],
      "synapse",
    );
    expect(position.rows.map((row) => Number(row.stream_ordering))).toEqual([0]);
  });

  it("keeps users outside the namespace away from the appservice", async () => {
    const response = await fetch(`${synapse.baseUrl}/_matrix/client/v3/register`, {
      method: "POST",
      headers: { authorization: `Bearer ${secrets.asToken}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "m.login.application_service", username: "outsider" }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { errcode: string }).errcode).toBe("M_EXCLUSIVE");
  });
});
