// `npm run local`: the whole system on this machine, kept in .local/ across runs, until Ctrl-C or SIGTERM:
// PostgreSQL (Synapse's database and the bridge's), Synapse configured by infra's own generator (the `local`
// profile of infra/synapse, not a hand-written copy) and the bridge service. Writes .local/stack-outputs.json in
// the shape of `pulumi stack output --json --show-secrets` (@nova-matrix/contracts) plus bridgeUrl and bridgeApiToken.
//
// Settings (environment): NOVA_LOCAL_POSTGRES_PORT (55432), NOVA_LOCAL_SYNAPSE_PORT (8008), NOVA_LOCAL_BRIDGE_PORT
// (8090), NOVA_LOCAL_STATE_DIR (.local), NOVA_LOCAL_SYNAPSE_NAME (local: Synapse's data dir in the chroot),
// LOG_LEVEL (the bridge's log level, default warn).
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { Secret } from "@nova-matrix/bridge";
import { type RunningService, runService } from "@nova-matrix/bridge/service";
import {
  DEVICE_NAME,
  SERVICE_LOCALPART,
  type StackOutputs,
  stackOutputsSchema,
} from "@nova-matrix/contracts";
import { FILE_NAMES } from "@nova-matrix/infra/synapse/homeserver";
import {
  generateLocalSecrets,
  LOCAL_CONFIG_FILES,
  localSynapseFiles,
  type SynapseSecrets,
} from "@nova-matrix/infra/synapse/local-profile";
import pino from "pino";
import {
  ensureSynapseChroot,
  HarnessUnavailableError,
  registerWithSharedSecret,
  startPostgres,
  startSynapse,
} from "./harness/index.ts";

const root = resolve(import.meta.dirname, "..");
const stateDir = resolve(root, process.env.NOVA_LOCAL_STATE_DIR ?? ".local");
const secretsPath = join(stateDir, "secrets.json");
const outputsPath = join(stateDir, "stack-outputs.json");
const serverName = "localhost";
const DEV_USER = "nova-dev";

/** A path as the user can type it from here: relative inside the working directory, absolute outside. */
const shown = (path: string) => {
  const fromHere = relative(process.cwd(), path);
  return fromHere && !fromHere.startsWith("..") ? fromHere : path;
};

const portFrom = (name: string, fallback: number) => {
  const value = process.env[name];
  if (value === undefined || value === "") return fallback;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535)
    throw new Error(`${name}: expected a port number (0-65535), got "${value}"`);
  return Number(value);
};

interface LocalSecrets {
  synapse: SynapseSecrets;
  synapseDbPassword: string;
  bridgeDbPassword: string;
  devUserPassword: string;
  bridgeApiToken: string;
  bridgeSigningKey: string;
}

/** The secrets kept in .local/secrets.json (0600); missing ones are generated, older files are completed. */
async function loadSecrets(): Promise<LocalSecrets> {
  const token = () => randomBytes(32).toString("base64url");
  const kept = existsSync(secretsPath)
    ? (JSON.parse(await readFile(secretsPath, "utf8")) as Partial<LocalSecrets> & {
        registrationSharedSecret?: string;
      })
    : {};
  const generated = generateLocalSecrets();
  const secrets: LocalSecrets = {
    synapse: {
      ...generated,
      // The first version of this file kept only the shared secret at the top level.
      ...(kept.registrationSharedSecret ? { registrationSharedSecret: kept.registrationSharedSecret } : {}),
      ...kept.synapse,
    },
    synapseDbPassword: kept.synapseDbPassword ?? token(),
    bridgeDbPassword: kept.bridgeDbPassword ?? token(),
    devUserPassword: kept.devUserPassword ?? token(),
    bridgeApiToken: kept.bridgeApiToken ?? token(),
    bridgeSigningKey: kept.bridgeSigningKey ?? token(),
  };
  await writeFile(secretsPath, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** The development user for Matrix clients (Element...): log in as it with the password in secrets.json. */
async function ensureDevUser(baseUrl: string, secrets: LocalSecrets): Promise<void> {
  const response = await fetch(`${baseUrl}/_matrix/client/v3/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: DEV_USER },
      password: secrets.devUserPassword,
    }),
  });
  if (response.ok) return;
  if (response.status !== 403)
    throw new Error(`logging in as ${DEV_USER} failed with HTTP ${response.status}`);
  await registerWithSharedSecret(baseUrl, secrets.synapse.registrationSharedSecret, {
    username: DEV_USER,
    password: secrets.devUserPassword,
    admin: true,
  });
}

async function main(): Promise<void> {
  const ports = {
    postgres: portFrom("NOVA_LOCAL_POSTGRES_PORT", 55432),
    synapse: portFrom("NOVA_LOCAL_SYNAPSE_PORT", 8008),
    bridge: portFrom("NOVA_LOCAL_BRIDGE_PORT", 8090),
  };
  await mkdir(stateDir, { recursive: true });
  // Traversable (not listable) by others: PostgreSQL runs as its own user and keeps its cluster in here.
  await chmod(stateDir, 0o711);
  const secrets = await loadSecrets();
  const chroot = await ensureSynapseChroot((line) => console.log(line));
  const postgres = await startPostgres({ dataDir: join(stateDir, "postgres"), port: ports.postgres });
  const stops: (() => Promise<void>)[] = [() => postgres.stop()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error));
  };
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the bridge, Synapse and PostgreSQL...`);
    await stopAll();
    console.log("stopped.");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  try {
    const hasRole = async (name: string) =>
      ((await postgres.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).rowCount ?? 0) > 0;
    if (!(await hasRole("synapse"))) {
      await postgres.createRole("synapse", secrets.synapseDbPassword);
      await postgres.createDatabase("synapse", "synapse");
    }
    if (!(await hasRole("bridge"))) {
      await postgres.createRole("bridge", secrets.bridgeDbPassword);
      await postgres.createDatabase("bridge", "bridge");
    }

    const synapse = await startSynapse({
      chroot,
      name: process.env.NOVA_LOCAL_SYNAPSE_NAME ?? "local",
      port: ports.synapse,
      configFiles: LOCAL_CONFIG_FILES,
      files: (paths) => {
        const { files } = localSynapseFiles({
          paths,
          serverName,
          database: {
            host: postgres.host,
            port: postgres.port,
            name: "synapse",
            user: "synapse",
            password: secrets.synapseDbPassword,
          },
          secrets: secrets.synapse,
        });
        // Keep the first signing key: a new one would invalidate what the server signed.
        if (existsSync(join(chroot.root, paths.dataDir, FILE_NAMES.signingKey)))
          delete files[FILE_NAMES.signingKey];
        return files;
      },
    });
    stops.push(() => synapse.stop());
    await ensureDevUser(synapse.baseUrl, secrets);

    const outputs: StackOutputs = {
      homeserverUrl: synapse.baseUrl,
      serverName,
      serviceUser: `@${SERVICE_LOCALPART}:${serverName}`,
      deviceName: DEVICE_NAME,
      matrixEnabled: true,
      accessToken: secrets.synapse.asToken,
      namespace: "local",
    };
    const bridge: RunningService = await runService({
      config: {
        enabled: true,
        homeserverUrl: outputs.homeserverUrl,
        serviceUser: outputs.serviceUser,
        deviceName: outputs.deviceName,
        serverName,
        accessToken: new Secret(outputs.accessToken),
      },
      databaseUrl: postgres.url("bridge", { name: "bridge", password: secrets.bridgeDbPassword }),
      apiToken: new Secret(secrets.bridgeApiToken),
      signingKey: new Secret(secrets.bridgeSigningKey),
      host: "127.0.0.1",
      port: ports.bridge,
      logger: pino({ name: "nova-bridge", level: process.env.LOG_LEVEL ?? "warn" }),
      // The API reference and the console, as in staging (the local Synapse's max_upload_size is the default 50M,
      // the bridge's default upload limit).
      devPages: true,
    });
    stops.push(() => bridge.stop());
    await bridge.active;

    // The stack outputs' own schema (@nova-matrix/contracts): the same shape `pulumi stack output --json` prints.
    const file = stackOutputsSchema.parse({
      ...outputs,
      bridgeUrl: bridge.url,
      bridgeApiToken: secrets.bridgeApiToken,
    });
    await writeFile(outputsPath, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    const outputsShown = shown(outputsPath);

    console.log(`
nova-matrix local stack is up (data kept in ${stateDir} and ${synapse.hostDataDir}).
  Bridge API:  ${bridge.url}/v1   (OpenAPI: ${bridge.url}/v1/openapi.json, events: ${bridge.url.replace("http", "ws")}/v1/events)
  Health:      ${bridge.url}/readyz   Metrics: ${bridge.url}/metrics
  API docs:    ${bridge.url}/v1/docs/   Console: ${bridge.url}/console (with a user token, see below)
  Homeserver:  ${synapse.baseUrl}   (server name "${serverName}", metrics ${synapse.metricsUrl}/_synapse/metrics)
  PostgreSQL:  127.0.0.1:${postgres.port}
  Dev user:    @${DEV_USER}:${serverName} (for Matrix clients; its password is devUserPassword in the secrets file)
  Outputs:     ${outputsShown}  (stack outputs + bridgeUrl, bridgeApiToken; secrets in ${shown(secretsPath)})

Try it (the token is read from the outputs file, not printed):
  TOKEN=$(sed -n 's/.*"bridgeApiToken": "\\(.*\\)".*/\\1/p' ${outputsShown})
  curl -s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -d '{"conversation_id":"hello","kind":"group","members":["alice","bob"]}' ${bridge.url}/v1/conversations
  curl -s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -d '{"sender_id":"alice","text":"Hello from Nova","client_message_id":"hello-1"}' ${bridge.url}/v1/conversations/hello/messages
  curl -s -H "Authorization: Bearer $TOKEN" ${bridge.url}/v1/conversations/hello/messages
  curl -s -H "Authorization: Bearer $TOKEN" -H 'content-type: image/png' --data-binary @picture.png \\
    '${bridge.url}/v1/conversations/hello/media?sender_id=alice&client_message_id=hello-2'
  # The console as alice: mint her a user token, open the URL (the token rides in the fragment, never sent to a server)
  USER_TOKEN=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -d '{"user_id":"alice"}' ${bridge.url}/v1/user-tokens | sed -n 's/.*"token":"\\([^"]*\\)".*/\\1/p')
  echo "${bridge.url}/console#token=$USER_TOKEN"

Ctrl-C stops everything.`);
  } catch (error) {
    if (!stopping) await stopAll();
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof HarnessUnavailableError ? error.message : error);
  process.exit(1);
});
