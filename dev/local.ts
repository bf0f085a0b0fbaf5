// `npm run local`: PostgreSQL + Synapse from the test harness, kept in .local/ across runs, until Ctrl-C.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  ensureSynapseChroot,
  HarnessUnavailableError,
  registerWithSharedSecret,
  startPostgres,
  startSynapse,
  testHomeserverFiles,
} from "./harness/index.ts";

const root = resolve(import.meta.dirname, "..");
const stateDir = join(root, ".local");
const secretsPath = join(stateDir, "secrets.json");
const serverName = "localhost";

interface LocalSecrets {
  registrationSharedSecret: string;
  synapseDbPassword: string;
  devUserPassword: string;
}

async function loadSecrets(): Promise<LocalSecrets> {
  if (existsSync(secretsPath)) return JSON.parse(await readFile(secretsPath, "utf8")) as LocalSecrets;
  const secrets: LocalSecrets = {
    registrationSharedSecret: randomBytes(32).toString("hex"),
    synapseDbPassword: randomBytes(24).toString("base64url"),
    devUserPassword: randomBytes(24).toString("base64url"),
  };
  await writeFile(secretsPath, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
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
  const secrets = await loadSecrets();
  const chroot = await ensureSynapseChroot((line) => console.log(line));
  const postgres = await startPostgres({
    dataDir: join(stateDir, "postgres"),
    port: Number(process.env.NOVA_LOCAL_POSTGRES_PORT ?? 55432),
  });
  const firstRun = (await postgres.query("SELECT 1 FROM pg_roles WHERE rolname = 'synapse'")).rowCount === 0;
  if (firstRun) {
    await postgres.createRole("synapse", secrets.synapseDbPassword);
    await postgres.createDatabase("synapse", "synapse");
  }
  const synapse = await startSynapse({
    chroot,
    name: "local",
    port: Number(process.env.NOVA_LOCAL_SYNAPSE_PORT ?? 8008),
    files: (paths) => {
      const files = testHomeserverFiles(paths, {
        serverName,
        postgres,
        database: "synapse",
        user: { name: "synapse", password: secrets.synapseDbPassword },
        registrationSharedSecret: secrets.registrationSharedSecret,
      });
      // Keep the first signing key: a new one each start would invalidate what the server signed.
      if (existsSync(join(chroot.root, paths.dataDir, "signing.key"))) delete files["signing.key"];
      return files;
    },
  });
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
