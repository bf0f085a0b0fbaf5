// The bridge's tests and the bench run against Synapse configured by infra's local profile (the deployed config on the harness)
// and a real PostgreSQL that holds both Synapse's database and the bridge's own.
import { randomBytes } from "node:crypto";
import { type EnabledConfig, Secret } from "@nova-matrix/bridge";
import { DEVICE_NAME, matrixEnv as matrixSettingsEnv, serviceUserId } from "@nova-matrix/contracts";
import {
  generateLocalSecrets,
  LOCAL_CONFIG_FILES,
  localSynapseFiles,
  localWorkerInstances,
  localWorkerSpec,
  type SynapseSecrets,
} from "@nova-matrix/infra/synapse/local-profile";
import pino from "pino";
import {
  type PostgresServer,
  type RunningSynapse,
  type SynapseChroot,
  startPostgres,
  startSynapse,
} from "./index.ts";
import { newRedisPassword, type RunningSynapseCluster, startSynapseCluster } from "./synapse-workers.ts";
import { harnessChroot } from "./vitest.ts";

export interface TestStack {
  postgres: PostgresServer;
  /** The homeserver: the monolith, or (worker mode) the whole set of processes behind the proxy's URL. */
  synapse: RunningSynapse;
  /** Worker mode only: each process, Redis and the proxy, for faults that hit one of them. */
  cluster?: RunningSynapseCluster;
  secrets: SynapseSecrets;
  serverName: string;
  config: EnabledConfig;
  /** A fresh, empty database for a bridge's store; returns its URL. */
  newBridgeDatabase(): Promise<string>;
  stop(): Promise<void>;
}

export interface TestStackOptions {
  serverName?: string;
  homeserverOverrides?: Record<string, unknown>;
  registrationOverrides?: Record<string, unknown>;
  /** Outside vitest (the benchmark): the chroot from `ensureSynapseChroot()`. Default: the one global-setup made. */
  chroot?: SynapseChroot;
  /**
   * Synapse in worker mode (infra/synapse/workers.ts on loopback: main, sync and client workers, an event
   * persister, media and background workers, Redis, HAProxy). Default: NOVA_SYNAPSE_WORKERS=1 in the environment.
   */
  workers?: boolean;
}

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const serverName = options.serverName ?? "bridge.test";
  const postgres = await startPostgres();
  const dbPassword = randomBytes(18).toString("base64url");
  await postgres.createRole("synapse", dbPassword);
  await postgres.createDatabase("synapse", "synapse");
  const secrets = generateLocalSecrets();
  const database = {
    host: postgres.host,
    port: postgres.port,
    name: "synapse",
    user: "synapse",
    password: dbPassword,
  };
  const overrides = {
    ...(options.homeserverOverrides ? { homeserverOverrides: options.homeserverOverrides } : {}),
    ...(options.registrationOverrides ? { registrationOverrides: options.registrationOverrides } : {}),
  };
  const chroot = options.chroot ?? harnessChroot();
  let cluster: RunningSynapseCluster | undefined;
  let synapse: RunningSynapse;
  if (options.workers ?? process.env.NOVA_SYNAPSE_WORKERS === "1") {
    const redisPassword = newRedisPassword();
    const replicationSecret = randomBytes(24).toString("base64url");
    cluster = await startSynapseCluster({
      chroot,
      instances: localWorkerInstances(),
      redisPassword,
      // Six Synapse processes start at once on a machine shared with other test runs.
      startTimeoutMs: 240_000,
      spec: (layout) =>
        localWorkerSpec({
          layout,
          serverName,
          database,
          secrets,
          redisPassword,
          replicationSecret,
          ...overrides,
        }),
    });
    synapse = cluster;
  } else {
    synapse = await startSynapse({
      chroot,
      configFiles: LOCAL_CONFIG_FILES,
      files: (paths) => localSynapseFiles({ paths, serverName, database, secrets, ...overrides }).files,
    });
  }
  const bridgePassword = randomBytes(18).toString("base64url");
  await postgres.createRole("bridge", bridgePassword);
  let databases = 0;
  return {
    postgres,
    synapse,
    ...(cluster ? { cluster } : {}),
    secrets,
    serverName,
    config: {
      enabled: true,
      homeserverUrl: synapse.baseUrl,
      serviceUser: serviceUserId(serverName),
      deviceName: DEVICE_NAME,
      serverName,
      accessToken: new Secret(secrets.asToken),
    },
    async newBridgeDatabase() {
      const name = `bridge_${++databases}`;
      await postgres.createDatabase(name, "bridge");
      return postgres.url(name, { name: "bridge", password: bridgePassword });
    },
    async stop() {
      await synapse.dispose();
      await postgres.stop();
    },
  };
}

/** A quiet logger for tests (errors only; LOG_LEVEL=debug to see everything), or a capturing one. */
export function testLogger(lines?: string[]) {
  if (!lines) return pino({ level: process.env.LOG_LEVEL ?? "error" });
  return pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
}

/** The MATRIX_* environment (the names the backend already has) that makes a bridge process use `config`. */
export function matrixEnv(config: EnabledConfig): Record<string, string> {
  return matrixSettingsEnv(config, config.accessToken.reveal());
}
