import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import type { PostgresServer } from "./postgres.ts";
import type { SynapsePaths } from "./synapse.ts";

/** A signing key file in Synapse's format: `ed25519 <key id> <unpadded base64 of 32 random bytes>`. */
export function signingKeyFile(keyId = "a_harness"): string {
  return `ed25519 ${keyId} ${randomBytes(32).toString("base64").replace(/=+$/, "")}\n`;
}

export interface TestHomeserverOptions {
  serverName: string;
  postgres: PostgresServer;
  database: string;
  /** Role Synapse connects as; default the admin user. */
  user?: { name: string; password: string };
  registrationSharedSecret: string;
  /** Merged over the generated config (top-level keys replace). */
  extra?: Record<string, unknown>;
}

/**
 * The smallest homeserver config the harness's own tests need (Postgres, one client listener, a metrics
 * listener, no federation). The deployed config comes from infra's generator; this one only proves the harness.
 */
export function testHomeserverFiles(
  paths: SynapsePaths,
  options: TestHomeserverOptions,
): Record<string, string> {
  const user = options.user ?? { name: options.postgres.adminUser, password: options.postgres.adminPassword };
  const config = {
    server_name: options.serverName,
    pid_file: `${paths.dataDir}/homeserver.pid`,
    listeners: [
      {
        port: paths.port,
        bind_addresses: ["127.0.0.1"],
        type: "http",
        tls: false,
        x_forwarded: false,
        resources: [{ names: ["client"], compress: false }],
      },
      { port: paths.metricsPort, bind_addresses: ["127.0.0.1"], type: "metrics", tls: false },
    ],
    database: {
      name: "psycopg2",
      args: {
        user: user.name,
        password: user.password,
        dbname: options.database,
        host: options.postgres.host,
        port: options.postgres.port,
        cp_min: 1,
        cp_max: 5,
      },
    },
    media_store_path: `${paths.dataDir}/media`,
    signing_key_path: `${paths.dataDir}/signing.key`,
    registration_shared_secret: options.registrationSharedSecret,
    enable_registration: false,
    enable_metrics: true,
    report_stats: false,
    trusted_key_servers: [],
    federation_domain_whitelist: [],
    presence: { enabled: false },
    suppress_key_server_warning: true,
    ...options.extra,
  };
  return { "homeserver.yaml": stringify(config), "signing.key": signingKeyFile() };
}
