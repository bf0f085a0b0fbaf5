// The bridge as a process: settings from the environment (or `--stack-outputs FILE|-`), its database from
// BRIDGE_DATABASE_URL; start-up checks, then the sync loop until SIGTERM/SIGINT.
// Exit codes: 2 bad settings, 1 start-up failed (homeserver unreachable, token rejected, database).
import { parseArgs } from "node:util";
import { type Bridge, createLogger, startBridge } from "./bridge.ts";
import { ConfigError, configFromEnv, configFromStackOutputsFile } from "./config/config.ts";

const logger = createLogger();

/** Optional tuning: BRIDGE_SYNC_POLL_MS (long-poll), BRIDGE_BACKFILL_PAGE_SIZE (events per gap page). */
function syncTuning(env: NodeJS.ProcessEnv) {
  const number = (name: string) => {
    const value = env[name];
    if (value === undefined || value === "") return undefined;
    if (!/^[1-9]\d*$/.test(value)) throw new ConfigError(`${name}: expected a positive integer`);
    return Number(value);
  };
  const pollTimeoutMs = number("BRIDGE_SYNC_POLL_MS");
  const backfillPageSize = number("BRIDGE_BACKFILL_PAGE_SIZE");
  return {
    ...(pollTimeoutMs ? { pollTimeoutMs } : {}),
    ...(backfillPageSize ? { backfillPageSize } : {}),
  };
}

function readSettings() {
  const { values } = parseArgs({ options: { "stack-outputs": { type: "string" } } });
  const file = values["stack-outputs"];
  const config = file ? configFromStackOutputsFile(file) : configFromEnv();
  const databaseUrl = process.env.BRIDGE_DATABASE_URL || undefined;
  if (config.enabled && !databaseUrl)
    throw new ConfigError(
      "BRIDGE_DATABASE_URL: is required (a postgres:// URL of the bridge's own database)",
    );
  return { config, databaseUrl, tuning: syncTuning(process.env) };
}

let settings: ReturnType<typeof readSettings>;
try {
  settings = readSettings();
} catch (error) {
  logger.fatal((error as Error).message);
  process.exit(2);
}

let bridge: Bridge | undefined;
const { config, databaseUrl } = settings;
if (!config.enabled) {
  // Stay up and say so; touch nothing.
  logger.info({ status: "disabled" }, "Matrix integration disabled (MATRIX_ENABLED is not true)");
  setInterval(() => {}, 1 << 30);
} else {
  try {
    bridge = await startBridge({
      config,
      store: databaseUrl as string,
      logger,
      syncTuning: settings.tuning,
    });
  } catch (error) {
    logger.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
    process.exit(1);
  }
}

for (const signal of ["SIGTERM", "SIGINT"] as const)
  process.once(signal, () => {
    logger.info({ signal }, "stopping");
    void (bridge?.stop() ?? Promise.resolve()).then(() => process.exit(0));
  });
