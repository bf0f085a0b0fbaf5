import { describe, expect, it } from "vitest";
import { parseStackOutputs } from "./outputs.ts";

const staging = {
  homeserverUrl: "http://matrix-synapse:8008",
  serverName: "staging.nova.internal",
  serviceUser: "@nova-service:staging.nova.internal",
  deviceName: "nova-realtime-chat-service",
  matrixEnabled: false,
  accessToken: "t0ken",
  namespace: "nova-staging",
};

describe("parseStackOutputs", () => {
  it("accepts the staging and prod shapes", () => {
    expect(parseStackOutputs(staging)).toEqual(staging);
    expect(parseStackOutputs({ ...staging, publicBaseUrl: "https://chat.nova.com/" }).publicBaseUrl).toBe(
      "https://chat.nova.com/",
    );
  });

  it("names a missing or malformed output without echoing the token", () => {
    const { accessToken: _token, ...withoutToken } = staging;
    expect(() => parseStackOutputs(withoutToken)).toThrow(/accessToken/);
    try {
      parseStackOutputs({ ...staging, serviceUser: "nova-service", matrixEnabled: "yes" });
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain("serviceUser: expected a Matrix user ID");
      expect(message).toContain("matrixEnabled");
      expect(message).not.toContain("t0ken");
    }
  });
});
