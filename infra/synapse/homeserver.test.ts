import { describe, expect, it } from "vitest";
import {
  appserviceRegistration,
  databaseConfig,
  homeserverConfig,
  NO_APPSERVICE_PUSHER,
  signingKeyFile,
} from "./homeserver.ts";
import { synapseListeners } from "./listeners.ts";

const files = {
  signingKey: "/s/signing.key",
  registrationSharedSecret: "/s/rss",
  macaroonSecretKey: "/s/mac",
  formSecret: "/s/form",
  appserviceRegistration: "/s/as.yaml",
  logConfig: "/c/log.yaml",
};
const input = {
  serverName: "staging.nova.internal",
  bindAddresses: ["0.0.0.0"],
  listeners: synapseListeners({ publicIngress: false }),
  mediaStorePath: "/data/media",
  maxUploadSize: "50M",
  presence: false,
  files,
};

describe("homeserverConfig", () => {
  it("has no federation listener, no registration, metrics on their own listener", () => {
    const config = homeserverConfig(input);
    expect(config.federation_domain_whitelist).toEqual([]);
    expect(config.trusted_key_servers).toEqual([]);
    expect(config.federation_sender_instances).toEqual([]);
    expect(config.notify_appservices_from_worker).toBe(NO_APPSERVICE_PUSHER);
    expect(config.enable_registration).toBe(false);
    expect(config.enable_metrics).toBe(true);
    expect(config.report_stats).toBe(false);
    expect(config.presence).toEqual({ enabled: false });
    const listeners = config.listeners as { type: string; port: number; resources?: { names: string[] }[] }[];
    expect(listeners.map((l) => [l.type, l.port])).toEqual([
      ["http", 8008],
      ["metrics", 9000],
    ]);
    expect(listeners.flatMap((l) => l.resources?.flatMap((r) => r.names) ?? [])).toEqual(["client"]);
    expect(config).not.toHaveProperty("public_baseurl");
    expect(config).not.toHaveProperty("database");
  });

  it("writes each listener of the layout, none trusting X-Forwarded-For, the public one on its own port", () => {
    const config = homeserverConfig({ ...input, listeners: synapseListeners({ publicIngress: true }) });
    const listeners = config.listeners as { type: string; port: number; x_forwarded?: boolean }[];
    expect(listeners.map((l) => [l.type, l.port, l.x_forwarded])).toEqual([
      ["http", 8008, false],
      ["http", 8009, false],
      ["metrics", 9000, undefined],
    ]);
  });

  it("sets public_baseurl only when given", () => {
    expect(homeserverConfig({ ...input, publicBaseUrl: "https://chat.nova.com/" }).public_baseurl).toBe(
      "https://chat.nova.com/",
    );
  });

  it("names every secret by path, never by value", () => {
    const config = homeserverConfig(input);
    for (const key of ["registration_shared_secret", "macaroon_secret_key", "form_secret"]) {
      expect(config).not.toHaveProperty(key);
      expect(config).toHaveProperty(`${key}_path`);
    }
  });
});

describe("databaseConfig", () => {
  it("uses psycopg2 with a pool, keepalives and optional TLS", () => {
    const settings = { host: "db", port: 5432, name: "synapse", user: "synapse", cpMin: 2, cpMax: 10 };
    const args = (
      databaseConfig(settings, "pw") as { database: { name: string; args: Record<string, unknown> } }
    ).database;
    expect(args.name).toBe("psycopg2");
    expect(args.args).toMatchObject({
      cp_min: 2,
      cp_max: 10,
      keepalives: 1,
      password: "pw",
      dbname: "synapse",
    });
    expect(args.args).not.toHaveProperty("sslmode");
    const tls = databaseConfig({ ...settings, sslMode: "verify-ca", sslRootCertPath: "/s/ca.pem" }, "pw") as {
      database: { args: Record<string, unknown> };
    };
    expect(tls.database.args).toMatchObject({ sslmode: "verify-ca", sslrootcert: "/s/ca.pem" });
  });
});

describe("appserviceRegistration", () => {
  const registration = appserviceRegistration({
    id: "nova-bridge",
    serverName: "staging.nova.internal",
    asToken: "a",
    hsToken: "h",
    ipRangeWhitelist: ["10.4.0.0/14"],
  });
  const users = (registration.namespaces as { users: { regex: string; exclusive: boolean }[] }).users;
  const aliases = (registration.namespaces as { aliases: { regex: string; exclusive: boolean }[] }).aliases;
  const matches = (list: { regex: string }[], id: string) =>
    list.some((n) => new RegExp(`^${n.regex}$`).test(id));

  it("is exclusive over the service user and the ghosts, on this server only", () => {
    expect(users.every((n) => n.exclusive)).toBe(true);
    expect(matches(users, "@nova-service:staging.nova.internal")).toBe(true);
    expect(matches(users, "@nova_alice:staging.nova.internal")).toBe(true);
    expect(matches(users, "@alice:staging.nova.internal")).toBe(false);
    expect(matches(users, "@nova_alice:stagingXnova.internal")).toBe(false);
    expect(matches(users, "@nova-serviceX:staging.nova.internal")).toBe(false);
  });

  it("owns the conversation aliases", () => {
    expect(matches(aliases, "#nova_conv_42:staging.nova.internal")).toBe(true);
    expect(matches(aliases, "#general:staging.nova.internal")).toBe(false);
  });

  it("accepts the token only from the whitelisted ranges, and refuses to write an empty whitelist", () => {
    expect(registration.ip_range_whitelist).toEqual(["10.4.0.0/14"]);
    expect(() =>
      appserviceRegistration({
        id: "x",
        serverName: "s.example",
        asToken: "a",
        hsToken: "h",
        ipRangeWhitelist: [],
      }),
    ).toThrow(/accepted from anywhere/);
  });

  it("has no push URL yet and is not rate limited", () => {
    expect(registration).toMatchObject({ url: null, rate_limited: false, sender_localpart: "nova-bridge" });
  });
});

describe("signingKeyFile", () => {
  it("writes unpadded base64 and refuses numeric key ids or short seeds", () => {
    const seed = Buffer.alloc(32, 7).toString("base64");
    expect(seed.endsWith("=")).toBe(true);
    expect(signingKeyFile("a_k1", seed)).toBe(`ed25519 a_k1 ${seed.replace(/=+$/, "")}\n`);
    expect(() => signingKeyFile("1", seed)).toThrow(/a_/);
    expect(() => signingKeyFile("a_k1", Buffer.alloc(16).toString("base64"))).toThrow(/32 bytes/);
  });
});
