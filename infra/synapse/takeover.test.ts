// Taking over the hand-made staging Synapse, on the real Synapse and PostgreSQL 15. The test builds the hand-made
// state the runbook describes with credentials of its own (the runbook's leaked values never appear here): the
// `synapse` role with an old password, Synapse running on it with its own shared secret, `@nova-service` registered
// with a password through the admin API and logged in as device NOVA_SERVICE, a second hand-made account, a room with
// messages. Then it applies what the staging stack renders: the setup Job's scripts (setup.sql, then the takeover) with
// the Job's own psql arguments and the generated verifier, and Synapse on the rendered config with the generated secrets.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SERVICE_LOCALPART } from "@nova-matrix/contracts";
import {
  type PostgresServer,
  postgresBinDir,
  type RunningSynapse,
  registerWithSharedSecret,
  run,
  startPostgres,
  startSynapse,
} from "@nova-matrix/dev/harness";
import { describeWithHarness, harnessChroot } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { SETUP_SECRET } from "../database/setup-spec.ts";
import { VERIFIER_ENV } from "../database/sql.ts";
import type { RecordedResource } from "../render/mocks.ts";
import { runStack, type StackRun } from "../render/run.ts";
import {
  objectData,
  type RenderedSynapse,
  startRenderedSynapse,
  whoamiAsServiceUser,
} from "../testing/rendered-synapse.ts";
import { SECRET_NAME } from "./deployment-spec.ts";
import { FILE_NAMES } from "./homeserver.ts";
import { generateLocalSecrets, localSynapseFiles } from "./local-profile.ts";
import { TAKEOVER_FILE, TAKEOVER_RECORD } from "./takeover.ts";

const SERVER = "staging.nova.internal";
const secret = () => randomBytes(18).toString("base64url");

interface HandMadeAccount {
  localpart: string;
  password: string;
  token: string;
}

/** The rendered setup Job's psql command and scripts (the ConfigMap it mounts at /setup). */
function renderedSetupJob(resources: readonly RecordedResource[]) {
  const job = resources.find(
    (r) =>
      r.type === "kubernetes:batch/v1:Job" &&
      String((r.inputs.metadata as { name?: string }).name).startsWith(`${SETUP_SECRET}-`),
  );
  if (!job) throw new Error("the stack renders no Synapse setup Job");
  const container = (job.inputs.spec as { template: { spec: { containers: { command: string[] }[] } } })
    .template.spec.containers[0];
  if (!container) throw new Error("the setup Job has no container");
  return { command: container.command, scripts: objectData(resources, "ConfigMap", SETUP_SECRET) };
}

describeWithHarness("taking over the hand-made staging Synapse (real Synapse and PostgreSQL)", () => {
  let postgres: PostgresServer;
  let staging: StackRun;
  let rendered: RenderedSynapse;
  let workDir: string;
  let handMade: RunningSynapse | undefined;
  const oldDatabasePassword = secret();
  const service: HandMadeAccount = { localpart: SERVICE_LOCALPART, password: secret(), token: "" };
  const operator: HandMadeAccount = { localpart: "ops-admin", password: secret(), token: "" };
  let roomId = "";
  const messages = ["first hand-made message", "second hand-made message", "third hand-made message"];
  let setupOutput = "";

  const call = async (
    base: string,
    path: string,
    init: { token?: string; method?: string; body?: unknown },
  ) => {
    const response = await fetch(`${base}${path}`, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const passwordLogin = (base: string, account: HandMadeAccount, deviceId?: string) =>
    call(base, "/_matrix/client/v3/login", {
      body: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: account.localpart },
        password: account.password,
        ...(deviceId ? { device_id: deviceId } : {}),
      },
    });
  const canConnect = async (password: string) => {
    const { default: pg } = await import("pg");
    const client = new pg.Client({
      connectionString: postgres.url("synapse", { name: "synapse", password }),
    });
    try {
      await client.connect();
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  /** The setup Job as the cluster runs it: its own arguments, its scripts, the generated verifier, the admin login. */
  const runSetupJob = async () => {
    const { command, scripts } = renderedSetupJob(staging.resources);
    for (const [name, text] of Object.entries(scripts)) await writeFile(join(workDir, name), String(text));
    const [, ...args] = command.map((arg) => arg.replace(/^\/setup\//, `${workDir}/`));
    const result = await run(join(await postgresBinDir(), "psql"), args, {
      env: {
        PATH: process.env.PATH,
        PGHOST: postgres.host,
        PGPORT: String(postgres.port),
        PGUSER: postgres.adminUser,
        PGPASSWORD: postgres.adminPassword,
        [VERIFIER_ENV]: String(objectData(staging.resources, "Secret", SETUP_SECRET)[VERIFIER_ENV]),
      },
    });
    return `${result.stdout}\n${result.stderr}`;
  };

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "nova-takeover-"));
    staging = await runStack("staging");
    postgres = await startPostgres();
    // The hand-made state.
    await postgres.createRole("synapse", oldDatabasePassword);
    await postgres.createDatabase("synapse", "synapse");
    const handMadeSecrets = generateLocalSecrets();
    handMade = await startSynapse({
      chroot: harnessChroot(),
      configFiles: ["homeserver.yaml", "database.yaml"],
      files: (paths) => {
        const { files } = localSynapseFiles({
          paths,
          serverName: SERVER,
          database: {
            host: postgres.host,
            port: postgres.port,
            name: "synapse",
            user: "synapse",
            password: oldDatabasePassword,
          },
          secrets: handMadeSecrets,
        });
        // The hand-made deployment had no appservice: @nova-service was an ordinary, password-registered user.
        const homeserver = parse(files[FILE_NAMES.homeserver] ?? "") as Record<string, unknown>;
        delete homeserver.app_service_config_files;
        return { ...files, [FILE_NAMES.homeserver]: stringify(homeserver) };
      },
    });
    for (const account of [service, operator]) {
      await registerWithSharedSecret(handMade.baseUrl, handMadeSecrets.registrationSharedSecret, {
        username: account.localpart,
        password: account.password,
      });
      const login = await passwordLogin(
        handMade.baseUrl,
        account,
        account === service ? "NOVA_SERVICE" : undefined,
      );
      expect(login.status).toBe(200);
      account.token = String(login.body.access_token);
    }
    expect(service.token.startsWith("syt_")).toBe(true);
    const whoami = await call(handMade.baseUrl, "/_matrix/client/v3/account/whoami", {
      token: service.token,
    });
    expect(whoami.body).toMatchObject({
      user_id: `@${SERVICE_LOCALPART}:${SERVER}`,
      device_id: "NOVA_SERVICE",
    });
    const room = await call(handMade.baseUrl, "/_matrix/client/v3/createRoom", {
      token: service.token,
      body: { name: "hand-made room", invite: [`@${operator.localpart}:${SERVER}`] },
    });
    roomId = String(room.body.room_id);
    for (const [index, body] of messages.entries()) {
      const sent = await call(
        handMade.baseUrl,
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${index}`,
        { token: service.token, method: "PUT", body: { msgtype: "m.text", body } },
      );
      expect(sent.status).toBe(200);
    }
    await handMade.dispose();
    handMade = undefined;

    // What the staging stack renders: the setup Job (role password, then the takeover), then Synapse.
    setupOutput = await runSetupJob();
    rendered = await startRenderedSynapse(harnessChroot(), postgres, staging.resources, {
      existingDatabase: true,
    });
  }, 600_000);
  afterAll(async () => {
    await handMade?.dispose();
    await rendered?.synapse.dispose();
    await postgres?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("renders the takeover step into staging's setup Job, after the setup script", () => {
    const { command, scripts } = renderedSetupJob(staging.resources);
    expect(Object.keys(scripts)).toEqual(["setup.sql", TAKEOVER_FILE]);
    expect(command.slice(-4)).toEqual(["-f", "/setup/setup.sql", "-f", `/setup/${TAKEOVER_FILE}`]);
    expect(setupOutput).toMatch(/revoked the credentials of 2 hand-made user\(s\)/);
  });

  it("retires the old database password; Synapse runs on the generated one", async () => {
    expect(await canConnect(oldDatabasePassword)).toBe(false);
    expect(await canConnect(String(rendered.stackDatabaseArgs.password))).toBe(true);
    expect(await (await fetch(`${rendered.synapse.baseUrl}/health`)).text()).toBe("OK");
  });

  it("answers 401 to the hand-made access tokens", async () => {
    for (const account of [service, operator]) {
      const whoami = await call(rendered.synapse.baseUrl, "/_matrix/client/v3/account/whoami", {
        token: account.token,
      });
      expect(whoami, account.localpart).toEqual({
        status: 401,
        body: expect.objectContaining({ errcode: "M_UNKNOWN_TOKEN" }),
      });
    }
  });

  it("refuses the hand-made passwords: no password login remains", async () => {
    for (const account of [service, operator]) {
      const login = await passwordLogin(rendered.synapse.baseUrl, account);
      expect(login.status, account.localpart).toBe(403);
      expect(login.body.errcode).toBe("M_FORBIDDEN");
    }
  });

  it("accepts the generated appservice token for @nova-service, which still sees its room and every message", async () => {
    const serviceUser = `@${SERVICE_LOCALPART}:${SERVER}`;
    const asToken = String(staging.outputs.accessToken);
    expect(
      await whoamiAsServiceUser(rendered.synapse.baseUrl, asToken, serviceUser, SERVICE_LOCALPART),
    ).toEqual({
      status: 200,
      body: expect.objectContaining({ user_id: serviceUser }),
    });
    const history = await call(
      rendered.synapse.baseUrl,
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50&user_id=${encodeURIComponent(serviceUser)}`,
      { token: asToken },
    );
    expect(history.status).toBe(200);
    const bodies = (history.body.chunk as { type: string; content: { body?: string } }[])
      .filter((event) => event.type === "m.room.message")
      .map((event) => event.content.body)
      .reverse();
    expect(bodies).toEqual(messages);
  });

  it("runs once: a later setup Job changes nothing, so an account made after the takeover keeps its password", async () => {
    const later: HandMadeAccount = { localpart: "made-later", password: secret(), token: "" };
    await registerWithSharedSecret(
      rendered.synapse.baseUrl,
      String(objectData(staging.resources, "Secret", SECRET_NAME)[FILE_NAMES.registrationSharedSecret]),
      { username: later.localpart, password: later.password },
    );
    const output = await runSetupJob();
    expect(output).toMatch(/takeover: done at .*, nothing to do/);
    expect((await passwordLogin(rendered.synapse.baseUrl, later)).status).toBe(200);
    const record = await postgres.query<{ users: string[] }>(
      `SELECT hand_made_users AS users FROM ${TAKEOVER_RECORD}`,
      [],
      "synapse",
    );
    expect(record.rows).toEqual([{ users: [`@${SERVICE_LOCALPART}:${SERVER}`, `@ops-admin:${SERVER}`] }]);
  });
});
