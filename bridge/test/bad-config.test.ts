// Bad input to the config loaders, table-driven: the MATRIX_* settings, the stack outputs JSON and the service's own
// settings. Each bad value is refused with a ConfigError that names the setting and says what is expected, and no
// message ever carries the value (a mistyped secret must not reach a log).
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError, configFromEnv, configFromStackOutputs } from "../src/config/config.ts";
import { serviceSettingsFromEnv } from "../src/service/settings.ts";

const TOKEN = randomBytes(24).toString("base64url");
const validEnv = {
  MATRIX_ENABLED: "true",
  MATRIX_HOMESERVER_URL: "http://matrix-synapse:8008",
  MATRIX_SERVICE_USER: "@nova-service:staging.nova.internal",
  MATRIX_DEVICE_NAME: "nova-realtime-chat-service",
  MATRIX_SERVER_NAME: "staging.nova.internal",
  MATRIX_ACCESS_TOKEN: TOKEN,
};
const validOutputs = {
  homeserverUrl: "http://matrix-synapse:8008",
  serverName: "staging.nova.internal",
  serviceUser: "@nova-service:staging.nova.internal",
  deviceName: "nova-realtime-chat-service",
  matrixEnabled: true,
  accessToken: TOKEN,
  namespace: "nova-staging",
};
const validService = {
  BRIDGE_API_TOKEN: randomBytes(32).toString("base64url"),
  BRIDGE_WS_SIGNING_KEY: randomBytes(32).toString("base64url"),
};

function configErrorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError, but the settings were accepted");
}

interface Case {
  name: string;
  /** The setting the message must name. */
  key: string;
  /** What the message must say is expected. */
  expects: RegExp;
  /** A value the message must not contain. */
  value: string;
  load: () => unknown;
}

const env = (key: string, value: string, expects: RegExp): Case => ({
  name: `${key}=${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`,
  key,
  expects,
  value,
  load: () => configFromEnv({ ...validEnv, [key]: value }),
});
const output = (key: string, value: unknown, expects: RegExp, shown = String(value)): Case => ({
  name: `stack output ${key}=${JSON.stringify(value)}`.slice(0, 90),
  key,
  expects,
  value: shown,
  load: () => configFromStackOutputs(JSON.stringify({ ...validOutputs, [key]: value })),
});
const service = (key: string, value: string, expects: RegExp): Case => ({
  name: `${key}=${JSON.stringify(value.slice(0, 40))}`,
  key,
  expects,
  value,
  load: () => serviceSettingsFromEnv({ ...validService, [key]: value }),
});

const CASES: Case[] = [
  env("MATRIX_ENABLED", "maybe", /expected "true" or "false"/),
  env("MATRIX_ENABLED", "TRUE\u200b", /expected "true" or "false"/),
  env("MATRIX_HOMESERVER_URL", "ftp://matrix-synapse:8008", /http:\/\/ or https:\/\/ URL/),
  env("MATRIX_HOMESERVER_URL", "javascript:alert(1)", /http:\/\/ or https:\/\/ URL/),
  env("MATRIX_HOMESERVER_URL", "../../etc/passwd", /http:\/\/ or https:\/\/ URL/),
  env("MATRIX_SERVICE_USER", "bridge-user", /Matrix user id/),
  env("MATRIX_SERVICE_USER", "@Nova-Service:staging.nova.internal", /Matrix user id/),
  env("MATRIX_SERVICE_USER", "@nova service:staging.nova.internal", /Matrix user id/),
  env("MATRIX_SERVICE_USER", "@nova-service:other.example", /must be a user on MATRIX_SERVER_NAME/),
  env("MATRIX_SERVICE_USER", "@nova-service:staging.nova.internal/../x", /Matrix user id/),
  env("MATRIX_SERVER_NAME", "../../etc", /server name/),
  env("MATRIX_SERVER_NAME", "staging.nova.internal/path", /server name/),
  env("MATRIX_SERVER_NAME", "مثال.إختبار", /server name/),
  env("MATRIX_SERVER_NAME", `${TOKEN}!`, /server name/),
  env("MATRIX_ACCESS_TOKEN", "", /is required/),
  output("homeserverUrl", "not a url", /URL|url/),
  output("matrixEnabled", "true", /boolean/),
  output("serviceUser", 42, /string/),
  // The outputs are mapped to the MATRIX_* settings, whose names the message uses.
  { ...output("serverName", "../../etc", /server name/), key: "MATRIX_SERVER_NAME" },
  output("accessToken", "[secret]", /--show-secrets/, "[secret]x"),
  output("accessToken", { value: TOKEN }, /string/, TOKEN),
  output("extra", "field", /unrecognized|Unrecognized/, "field"),
  service("BRIDGE_API_TOKEN", "short-token", /at least 32 characters/),
  service("BRIDGE_WS_SIGNING_KEY", "x".repeat(31), /at least 32 characters/),
  service("BRIDGE_PORT", "99999", /port number/),
  service("BRIDGE_PORT", "80a", /port number/),
  service("BRIDGE_PORT", "-1", /port number/),
  service("BRIDGE_SYNC_POLL_MS", "1e3", /milliseconds/),
  service("BRIDGE_BACKFILL_PAGE_SIZE", "0", /events per page/),
  service("BRIDGE_MAX_UPLOAD_BYTES", "50M", /expected a number of bytes/),
  service("BRIDGE_DEV_PAGES", "yes", /expected "true" or "false"/),
  service("BRIDGE_LOCK_HEARTBEAT_MS", "5s", /expected milliseconds/),
  service("BRIDGE_LOCK_HEARTBEAT_TIMEOUT_MS", "0", /expected milliseconds/),
  service("BRIDGE_LOCK_RETRY_MS", "-200", /expected milliseconds/),
  service("BRIDGE_IDEMPOTENCY_RETENTION_DAYS", "7d", /expected days/),
  service("BRIDGE_EVENT_LOG_RETENTION_DAYS", "0", /expected days/),
  service("BRIDGE_PRUNE_INTERVAL_MS", "1h", /expected milliseconds/),
  service("BRIDGE_PRUNE_BATCH_SIZE", "1.5", /expected rows per delete/),
];

describe("config loaders refuse bad input naming the setting, never echoing the value", () => {
  it.each(CASES)("$name", (testCase) => {
    const error = configErrorOf(testCase.load);
    expect(error.message).toContain(testCase.key);
    expect(error.message).toMatch(testCase.expects);
    if (testCase.value.length >= 3) expect(error.message).not.toContain(testCase.value);
    expect(error.message).not.toContain(TOKEN);
  });

  it("refuses stack outputs that are not a JSON object, naming what is expected", () => {
    for (const text of ["", "{", "[]", "null", '"outputs"', "42"]) {
      const error = configErrorOf(() => configFromStackOutputs(text));
      expect(error.message).toMatch(/not valid JSON|must be a JSON object/);
    }
  });
});
