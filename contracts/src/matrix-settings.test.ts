import { describe, expect, it } from "vitest";
import {
  MATRIX_ACCESS_TOKEN,
  MATRIX_SETTING_NAMES,
  matrixConfigData,
  matrixEnv,
  matrixSettingsOf,
} from "./matrix-settings.ts";
import { parseStackOutputs } from "./outputs.ts";

const outputs = parseStackOutputs({
  homeserverUrl: "http://matrix-synapse:8008",
  serverName: "staging.nova.internal",
  serviceUser: "@nova-service:staging.nova.internal",
  deviceName: "nova-realtime-chat-service",
  matrixEnabled: false,
  accessToken: "t0ken",
  namespace: "nova-staging",
});

describe("MATRIX_* settings", () => {
  it("map the stack outputs onto the names realtime-chat-service reads", () => {
    expect(matrixEnv(matrixSettingsOf(outputs), outputs.accessToken)).toEqual({
      MATRIX_ENABLED: "false",
      MATRIX_HOMESERVER_URL: "http://matrix-synapse:8008",
      MATRIX_SERVICE_USER: "@nova-service:staging.nova.internal",
      MATRIX_DEVICE_NAME: "nova-realtime-chat-service",
      MATRIX_SERVER_NAME: "staging.nova.internal",
      MATRIX_ACCESS_TOKEN: "t0ken",
    });
  });

  it("keep the token out of the ConfigMap's data and list every name once", () => {
    const data = matrixConfigData({ ...matrixSettingsOf(outputs), enabled: true });
    expect(data.MATRIX_ENABLED).toBe("true");
    expect(Object.keys(data)).not.toContain(MATRIX_ACCESS_TOKEN);
    expect(Object.values(data)).not.toContain("t0ken");
    expect([...MATRIX_SETTING_NAMES].sort()).toEqual(
      Object.keys(matrixEnv(matrixSettingsOf(outputs), "x")).sort(),
    );
  });
});
