import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, configFromEnv, configFromStackOutputs, parseConfig } from "./config.ts";

const TOKEN = "syt_very_secret_token_value";
const valid = {
  MATRIX_ENABLED: "true",
  MATRIX_HOMESERVER_URL: "http://matrix-synapse:8008/",
  MATRIX_SERVICE_USER: "@nova-service:staging.nova.internal",
  MATRIX_DEVICE_NAME: "nova-realtime-chat-service",
  MATRIX_SERVER_NAME: "staging.nova.internal",
  MATRIX_ACCESS_TOKEN: TOKEN,
};

function errorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  it("reads the environment and keeps the token out of every printed form", () => {
    const config = configFromEnv(valid);
    if (!config.enabled) throw new Error("expected enabled");
    expect(config.homeserverUrl).toBe("http://matrix-synapse:8008");
    expect(config.serviceUser).toBe("@nova-service:staging.nova.internal");
    expect(config.accessToken.reveal()).toBe(TOKEN);
    expect(JSON.stringify(config)).not.toContain(TOKEN);
    expect(inspect(config)).not.toContain(TOKEN);
    expect(`${config.accessToken}`).not.toContain(TOKEN);
  });

  it("is disabled unless MATRIX_ENABLED says true, and then needs nothing else", () => {
    expect(parseConfig({})).toEqual({ enabled: false });
    expect(parseConfig({ MATRIX_ENABLED: "false", MATRIX_HOMESERVER_URL: "nonsense" })).toEqual({
      enabled: false,
    });
    expect(errorOf(() => parseConfig({ MATRIX_ENABLED: "maybe" })).message).toMatch(
      /MATRIX_ENABLED: expected "true" or "false"/,
    );
  });

  it("names every bad setting and what it expects, never echoing the values", () => {
    const error = errorOf(() =>
      configFromEnv({
        ...valid,
        MATRIX_HOMESERVER_URL: "ftp://x",
        MATRIX_SERVICE_USER: "nova-service",
        MATRIX_ACCESS_TOKEN: "",
      }),
    );
    expect(error.message).toContain("MATRIX_HOMESERVER_URL: expected an http:// or https:// URL");
    expect(error.message).toContain("MATRIX_SERVICE_USER: expected a Matrix user id");
    expect(error.message).toContain("MATRIX_ACCESS_TOKEN: is required");
    expect(error.message).not.toContain("ftp://x");
  });

  it("requires the service user to live on the server name", () => {
    const error = errorOf(() => configFromEnv({ ...valid, MATRIX_SERVICE_USER: "@nova-service:other.test" }));
    expect(error.message).toMatch(/MATRIX_SERVICE_USER: must be a user on MATRIX_SERVER_NAME/);
  });

  it("does not echo a token that fails validation", () => {
    const error = errorOf(() =>
      configFromEnv({ ...valid, MATRIX_SERVER_NAME: "bad name!", MATRIX_ACCESS_TOKEN: TOKEN }),
    );
    expect(error.message).toContain("MATRIX_SERVER_NAME");
    expect(error.message).not.toContain(TOKEN);
  });

  it("reads the stack outputs JSON in the shape infra's schema defines", () => {
    const outputs = {
      homeserverUrl: "http://matrix-synapse:8008",
      serverName: "staging.nova.internal",
      serviceUser: "@nova-service:staging.nova.internal",
      deviceName: "nova-realtime-chat-service",
      matrixEnabled: true,
      accessToken: TOKEN,
      namespace: "nova-staging",
    };
    const config = configFromStackOutputs(JSON.stringify(outputs));
    if (!config.enabled) throw new Error("expected enabled");
    expect(config.serviceUser).toBe("@nova-service:staging.nova.internal");
    expect(config.accessToken.reveal()).toBe(TOKEN);
    expect(configFromStackOutputs(JSON.stringify({ ...outputs, matrixEnabled: false }))).toEqual({
      enabled: false,
    });
    expect(errorOf(() => configFromStackOutputs("{nope")).message).toMatch(/not valid JSON/);
    expect(errorOf(() => configFromStackOutputs("[]")).message).toMatch(/must be a JSON object/);
    expect(
      errorOf(() => configFromStackOutputs(JSON.stringify({ ...outputs, accessToken: "[secret]" }))).message,
    ).toMatch(/accessToken is hidden; print the outputs with --show-secrets/);
    const missing = errorOf(() =>
      configFromStackOutputs(JSON.stringify({ ...outputs, homeserverUrl: undefined })),
    );
    expect(missing.message).toMatch(/homeserverUrl/);
    expect(missing.message).not.toContain(TOKEN);
  });
});
