// The bridge service as a process: MATRIX_* settings (or `--stack-outputs FILE|-`), BRIDGE_DATABASE_URL,
// BRIDGE_LOCK_DATABASE_URL (the sync lock's connection, when it takes another route; default BRIDGE_DATABASE_URL),
// BRIDGE_API_TOKEN, BRIDGE_WS_SIGNING_KEY, BRIDGE_HOST/BRIDGE_PORT, BRIDGE_METRICS_PORT (a /metrics-only listener). Runs until SIGTERM/SIGINT.
// Exit codes: 2 bad settings, 1 start-up failed, the sync lock was lost or another replica owns the event log
// (Kubernetes restarts it; it waits on standby).
import { parseArgs } from "node:util";
import { createLogger } from "../bridge.ts";
import { type BridgeConfig, configFromEnv, configFromStackOutputsFile } from "../config/config.ts";
import { type RunningService, runService } from "./run.ts";
import { type ServiceSettings, serviceSettingsFromEnv } from "./settings.ts";

const logger = createLogger();

let config: BridgeConfig;
let settings: ServiceSettings;
try {
  const { values } = parseArgs({ options: { "stack-outputs": { type: "string" } } });
  const file = values["stack-outputs"];
  config = file ? configFromStackOutputsFile(file) : configFromEnv();
  settings = serviceSettingsFromEnv();
} catch (error) {
  logger.fatal((error as Error).message);
  process.exit(2);
}

let service: RunningService;
try {
  service = await runService({
    config,
    databaseUrl: process.env.BRIDGE_DATABASE_URL || undefined,
    ...(process.env.BRIDGE_LOCK_DATABASE_URL
      ? { lockDatabaseUrl: process.env.BRIDGE_LOCK_DATABASE_URL }
      : {}),
    lockHeartbeat: settings.lockHeartbeat,
    ...(settings.lockRetryMs ? { lockRetryMs: settings.lockRetryMs } : {}),
    retention: settings.retention,
    ...(settings.pruneIntervalMs ? { pruneIntervalMs: settings.pruneIntervalMs } : {}),
    apiToken: settings.apiToken,
    signingKey: settings.signingKey,
    ...(settings.previousSigningKey ? { previousSigningKey: settings.previousSigningKey } : {}),
    limits: settings.limits,
    ...(settings.matrixTimeoutMs ? { matrixTimeoutMs: settings.matrixTimeoutMs } : {}),
    host: settings.host,
    port: settings.port,
    ...(settings.metricsPort === undefined ? {} : { metricsPort: settings.metricsPort }),
    logger,
    devPages: settings.devPages,
    ...(settings.syncPollMs ? { syncPollMs: settings.syncPollMs } : {}),
    ...(settings.backfillPageSize ? { backfillPageSize: settings.backfillPageSize } : {}),
    onLockLost: () => process.exit(1),
  });
  service.active.catch(() => process.exit(1));
} catch (error) {
  logger.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
  process.exit(1);
}

for (const signal of ["SIGTERM", "SIGINT"] as const)
  process.once(signal, () => {
    logger.info({ signal }, "stopping");
    void service.stop().then(() => process.exit(0));
  });
