// `npm run local`: PostgreSQL + Synapse from the test harness, kept in .local/ across runs, until Ctrl-C.
// Synapse runs the deployed configuration (infra's generator, through its local profile): the same listeners,
// appservice registration and secret files as the cluster, pointed at loopback.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { StackOutputs } from "../infra/outputs.ts";
import {
  generateLocalSecrets,
  localSynapseFiles,
  type SynapseSecrets,
} from "../infra/synapse/local-profile.ts";
import { DEVICE_NAME, SERVICE_LOCALPART, serviceUserId } from "../infra/synapse/naming.ts";
import {
  ensureSynapseChroot,
  HarnessUnavailableError,
  registerWithSharedSecret,
  type SynapseChroot,
  startPostgres,
  startSynapse,
} from "./harness/index.ts";

const root = resolve(import.meta.dirname, "..");
const stateDir = join(root, ".local");
const secretsPath = join(stateDir, "secrets.json");
/** The stack outputs' shape (infra/outputs.ts) for the local stack, for the bridge to read like a real stack's. */
const outputsPath = join(stateDir, "stack-outputs.json");
const LOCAL_DATA_NAME = "local";
const serverName = "localhost";

interface LocalSecrets {
  registrationSharedSecret: string;
  synapseDbPassword: string;
  devUserPassword: string;
  /** Added when Synapse moved to the deployed config; filled in on the first run after that. */
  synapse?: SynapseSecrets;
}

/** Loads .local/secrets.json, generating what is missing (and keeping a data dir's existing signing key). */
async function loadSecrets(chroot: SynapseChroot): Promise<LocalSecrets & { synapse: SynapseSecrets }> {
  const stored: Partial<LocalSecrets> = existsSync(secretsPath)
    ? (JSON.parse(await readFile(secretsPath, "utf8")) as Partial<LocalSecrets>)
    : {};
  const fresh = generateLocalSecrets();
  const existingKey = join(chroot.root, "var/lib/nova-harness", LOCAL_DATA_NAME, "signing.key");
  const registrationSharedSecret = stored.registrationSharedSecret ?? fresh.registrationSharedSecret;
  const secrets = {
    registrationSharedSecret,
    synapseDbPassword: stored.synapseDbPassword ?? randomBytes(24).toString("base64url"),
    devUserPassword: stored.devUserPassword ?? randomBytes(24).toString("base64url"),
    synapse: stored.synapse ?? {
      ...fresh,
      registrationSharedSecret,
      // A new signing key would invalidate what the server signed before: keep the one it has.
      signingKey: existsSync(existingKey) ? await readFile(existingKey, "utf8") : fresh.signingKey,
    },
  };
  await writeFile(secretsPath, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** Registers the service user in the appservice's namespace; "already registered" is fine. */
async function registerServiceUser(baseUrl: string, asToken: string): Promise<void> {
  const response = await fetch(`${baseUrl}/_matrix/client/v3/register`, {
    method: "POST",
    headers: { authorization: `Bearer ${asToken}`, "content-type": "application/json" },
    body: JSON.stringify({ type: "m.login.application_service", username: SERVICE_LOCALPART }),
  });
  if (response.ok) return;
  const { errcode } = (await response.json().catch(() => ({}))) as { errcode?: string };
  if (errcode !== "M_USER_IN_USE")
    throw new Error(`registering ${SERVICE_LOCALPART} failed: HTTP ${response.status} ${errcode}`);
}

async function login(baseUrl: string, user: string, password: string): Promise<string> {
  const response = await fetch(`${baseUrl}/_matrix/client/v3/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user }, password }),
  });
  if (!response.ok) throw new Error(`logging in as ${user} failed with HTTP ${response.status}`);
  return ((await response.json()) as { access_token: string }).access_token;
}

async function main(): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  // Traversable (not listable) by others: PostgreSQL runs as its own user and keeps its cluster in here.
  await chmod(stateDir, 0o711);
  const chroot = await ensureSynapseChroot((line) => console.log(line));
  const secrets = await loadSecrets(chroot);
  const postgres = await startPostgres({
    dataDir: join(stateDir, "postgres"),
    port: Number(process.env.NOVA_LOCAL_POSTGRES_PORT ?? 55432),
  });
  const firstRun = (await postgres.query("SELECT 1 FROM pg_roles WHERE rolname = 'synapse'")).rowCount === 0;
  if (firstRun) {
    await postgres.createRole("synapse", secrets.synapseDbPassword);
    await postgres.createDatabase("synapse", "synapse");
  }
  const profile = (paths: { dataDir: string; port: number; metricsPort: number }) =>
    localSynapseFiles({
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
  const synapse = await startSynapse({
    chroot,
    name: LOCAL_DATA_NAME,
    port: Number(process.env.NOVA_LOCAL_SYNAPSE_PORT ?? 8008),
    configFiles: profile({ dataDir: "", port: 0, metricsPort: 0 }).configFiles,
    files: (paths) => profile(paths).files,
  });
  await registerServiceUser(synapse.baseUrl, secrets.synapse.asToken);
  const outputs: StackOutputs = {
    homeserverUrl: synapse.baseUrl,
    serverName,
    serviceUser: serviceUserId(serverName),
    deviceName: DEVICE_NAME,
    matrixEnabled: true,
    accessToken: secrets.synapse.asToken,
    namespace: "local",
  };
  await writeFile(outputsPath, `${JSON.stringify(outputs, null, 2)}\n`, { mode: 0o600 });
  const user = "nova-dev";
  const accessToken = firstRun
    ? (
        await registerWithSharedSecret(synapse.baseUrl, secrets.registrationSharedSecret, {
          username: user,
          password: secrets.devUserPassword,
          admin: true,
        })
      ).access_token
    : await login(synapse.baseUrl, user, secrets.devUserPassword);

  console.log(`
nova-matrix local stack is up (data kept in .local/ and ${synapse.hostDataDir}).
  Homeserver:  ${synapse.baseUrl}   (server name "${serverName}")
  Metrics:     ${synapse.metricsUrl}/_synapse/metrics
  PostgreSQL:  127.0.0.1:${postgres.port}
  User:        @${user}:${serverName} (local development only)
  Token:       ${accessToken}
  Service:     ${outputs.serviceUser} (appservice; its token and settings, in the stack outputs' shape: ${outputsPath})

  curl -H "Authorization: Bearer ${accessToken}" ${synapse.baseUrl}/_matrix/client/v3/account/whoami

Ctrl-C stops everything.`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping Synapse and PostgreSQL...`);
    await synapse.stop();
    await postgres.stop();
    console.log("stopped.");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((error: unknown) => {
  console.error(error instanceof HarnessUnavailableError ? error.message : error);
  process.exit(1);
});
