// The bridge as a process: settings from the environment (or `--stack-outputs FILE|-`), its database from
// BRIDGE_DATABASE_URL; start-up checks, then the sync loop until SIGTERM/SIGINT.
// Exit codes: 2 bad settings, 1 start-up failed (homeserver unreachable, token rejected, database).
import { parseArgs } from "node:util";
import { type Bridge, createLogger, startBridge } from "./bridge.ts";
import {
  type BridgeConfig,
  ConfigError,
  configFromEnv,
  configFromStackOutputsFile,
} from "./config/config.ts";

const logger = createLogger();

function readSettings(): { config: BridgeConfig; databaseUrl: string | undefined } {
  const { values } = parseArgs({ options: { "stack-outputs": { type: "string" } } });
  const file = values["stack-outputs"];
  const config = file ? configFromStackOutputsFile(file) : configFromEnv();
  const databaseUrl = process.env.BRIDGE_DATABASE_URL || undefined;
  if (config.enabled && !databaseUrl)
    throw new ConfigError(
      "BRIDGE_DATABASE_URL: is required (a postgres:// URL of the bridge's own database)",
    );
  return { config, databaseUrl };
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
      ...(process.env.BRIDGE_SYNC_POLL_MS
        ? { syncTuning: { pollTimeoutMs: Number(process.env.BRIDGE_SYNC_POLL_MS) } }
        : {}),
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
