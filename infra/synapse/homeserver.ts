// homeserver.yaml, the database config file, the log config and the appservice registration, from typed input.
// Pure (no Pulumi, no I/O): the Kubernetes component and the local profile both render through here, so what the
// tests start on the real Synapse is what the cluster runs.

import {
  CONVERSATION_ALIAS_PREFIX,
  GHOST_PREFIX,
  SENDER_LOCALPART,
  SERVICE_LOCALPART,
} from "@nova-matrix/contracts";
import { stringify } from "yaml";
import type { SynapseListener } from "./listeners.ts";

/** Where Synapse finds each file, as the Synapse process sees them (secret files come from a Secret volume). */
export interface SynapseFilePaths {
  readonly signingKey: string;
  readonly registrationSharedSecret: string;
  readonly macaroonSecretKey: string;
  readonly formSecret: string;
  readonly appserviceRegistration: string;
  readonly logConfig: string;
}

export interface DatabaseSettings {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly user: string;
  /** psycopg2 connection pool bounds. */
  readonly cpMin: number;
  readonly cpMax: number;
  /** libpq `sslmode` (prod: `verify-ca` against Cloud SQL's server CA); absent = libpq's default. */
  readonly sslMode?: string;
  /** Path of the CA certificate for `verify-ca` / `verify-full`. */
  readonly sslRootCertPath?: string;
}

export interface HomeserverInput {
  readonly serverName: string;
  /** Set where an Ingress makes the server public (`https://chat.nova.com/`). */
  readonly publicBaseUrl?: string;
  /** `["0.0.0.0"]` in a pod, `["127.0.0.1"]` on a developer's machine. */
  readonly bindAddresses: readonly string[];
  /** From `synapseListeners()` (listeners.ts), which decides who reaches which and whether it trusts X-Forwarded-For. */
  readonly listeners: readonly SynapseListener[];
  readonly mediaStorePath: string;
  /** Synapse size syntax, for example `50M`. */
  readonly maxUploadSize: string;
  readonly presence: boolean;
  readonly files: SynapseFilePaths;
}

/** The worker named as the appservice pusher: none runs under this name, so nothing is pushed. */
export const NO_APPSERVICE_PUSHER = "nova-matrix-no-appservice-push";

/** The main config file. It holds no secret: every secret is a `*_path` or lives in the database config file. */
export function homeserverConfig(input: HomeserverInput): Record<string, unknown> {
  return {
    server_name: input.serverName,
    ...(input.publicBaseUrl === undefined ? {} : { public_baseurl: input.publicBaseUrl }),
    report_stats: false,
    // Client API only: no federation listener, no federation, no remote key servers.
    listeners: input.listeners
      .filter((listener) => listener.process === "synapse")
      .map((listener) =>
        listener.kind === "metrics"
          ? { port: listener.port, bind_addresses: [...input.bindAddresses], type: "metrics", tls: false }
          : {
              port: listener.port,
              bind_addresses: [...input.bindAddresses],
              type: "http",
              tls: false,
              x_forwarded: listener.forwardedFor === "trusted",
              resources: [{ names: ["client"], compress: false }],
            },
      ),
    federation_domain_whitelist: [],
    trusted_key_servers: [],
    // No process sends federation: without it every event still passes through the federation sender's queue.
    federation_sender_instances: [],
    // The appservice's registration has `url: null` (the bridge reads with /sync), so a push would only write a
    // transaction of every event to the database and mark it sent to nobody. Naming a worker that does not exist
    // is how Synapse is told no process pushes; the bench measured the saving (docs/performance.md).
    notify_appservices_from_worker: NO_APPSERVICE_PUSHER,
    enable_metrics: true,
    // Accounts come only from the admin API (shared secret) and the appservice.
    enable_registration: false,
    allow_guest_access: false,
    url_preview_enabled: false,
    presence: { enabled: input.presence },
    media_store_path: input.mediaStorePath,
    max_upload_size: input.maxUploadSize,
    log_config: input.files.logConfig,
    signing_key_path: input.files.signingKey,
    registration_shared_secret_path: input.files.registrationSharedSecret,
    macaroon_secret_key_path: input.files.macaroonSecretKey,
    form_secret_path: input.files.formSecret,
    app_service_config_files: [input.files.appserviceRegistration],
  };
}

/**
 * The second config file, `database.yaml`, that lives in the Secret: Synapse 1.160 has no `password_path` for the
 * database, and a later `--config-path` file replaces top-level keys, so the whole `database` block sits here.
 */
export function databaseConfig(settings: DatabaseSettings, password: string): Record<string, unknown> {
  return {
    database: {
      name: "psycopg2",
      args: {
        user: settings.user,
        password,
        dbname: settings.name,
        host: settings.host,
        port: settings.port,
        cp_min: settings.cpMin,
        cp_max: settings.cpMax,
        // Notice a dead connection (a restarted Postgres, a dropped NAT entry) in about 40 s, not hours.
        keepalives: 1,
        keepalives_idle: 10,
        keepalives_interval: 10,
        keepalives_count: 3,
        ...(settings.sslMode === undefined ? {} : { sslmode: settings.sslMode }),
        ...(settings.sslRootCertPath === undefined ? {} : { sslrootcert: settings.sslRootCertPath }),
      },
    },
  };
}

export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR";

/**
 * Python logging config: one JSON object per line on stdout, which GKE collects into Cloud Logging. Synapse's own
 * `GcpJsonFormatter` (upstream since 1.15x, #19775) writes `severity` (the level name: DEBUG, INFO, WARNING, ERROR,
 * CRITICAL, all Cloud Logging severities), `message` (with any traceback), `logger` and an RFC 3339 `time`; without a
 * `severity` Cloud Logging files every line as DEFAULT, or as ERROR from stderr.
 */
export function logConfig(level: LogLevel): Record<string, unknown> {
  return {
    version: 1,
    formatters: { structured: { class: "synapse.logging.GcpJsonFormatter" } },
    filters: { context: { "()": "synapse.logging.context.LoggingContextFilter", request: "" } },
    handlers: {
      console: {
        class: "logging.StreamHandler",
        formatter: "structured",
        filters: ["context"],
        stream: "ext://sys.stdout",
      },
    },
    // Per-query SQL logging is far too loud at INFO.
    loggers: { "synapse.storage.SQL": { level: level === "DEBUG" ? "INFO" : "WARNING" } },
    root: { level, handlers: ["console"] },
    disable_existing_loggers: false,
  };
}

/** Escapes a literal for use inside a regular expression (server names contain dots). */
function escapeRegex(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
}

export interface AppserviceInput {
  readonly id: string;
  readonly serverName: string;
  readonly asToken: string;
  readonly hsToken: string;
  /** The only client addresses the as_token is accepted from (the cluster's pod ranges; loopback on a developer's machine). */
  readonly ipRangeWhitelist: readonly string[];
}

/**
 * The bridge's appservice registration. `url: null`: Synapse pushes nothing (the bridge syncs as the service user;
 * `homeserverConfig` designates no pusher process either). The users namespace holds the service user and the ghosts;
 * the alias namespace the conversation rooms. `ip_range_whitelist`: the token works only from those addresses
 * (listeners.ts says why the public Ingress can never present one).
 */
export function appserviceRegistration(input: AppserviceInput): Record<string, unknown> {
  const server = escapeRegex(input.serverName);
  // Synapse treats an absent or empty list as "from anywhere": refuse to write one.
  if (input.ipRangeWhitelist.length === 0)
    throw new Error(
      "the appservice's ipRangeWhitelist is empty: the as_token would be accepted from anywhere",
    );
  return {
    id: input.id,
    url: null,
    as_token: input.asToken,
    hs_token: input.hsToken,
    ip_range_whitelist: [...input.ipRangeWhitelist],
    sender_localpart: SENDER_LOCALPART,
    rate_limited: false,
    namespaces: {
      users: [
        { exclusive: true, regex: `@${escapeRegex(SERVICE_LOCALPART)}:${server}` },
        { exclusive: true, regex: `@${escapeRegex(GHOST_PREFIX)}.*:${server}` },
      ],
      aliases: [{ exclusive: true, regex: `#${escapeRegex(CONVERSATION_ALIAS_PREFIX)}.*:${server}` }],
      rooms: [],
    },
  };
}

/** YAML as written to every config file (stable key order: the order the functions above build). */
export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0 });
}

/**
 * A Synapse signing key file: `ed25519 <key id> <unpadded standard base64 of a 32-byte seed>`. The key id must not be
 * purely numeric (Synapse reads it as a version otherwise), so ids are `a_<something>`.
 */
export function signingKeyFile(keyId: string, seedBase64: string): string {
  if (!/^a_[A-Za-z0-9_]+$/.test(keyId))
    throw new Error(`signing key id must look like a_<alphanumerics>, got "${keyId}"`);
  const seed = seedBase64.replace(/=+$/, "");
  if (Buffer.from(seed, "base64").length !== 32)
    throw new Error("signing key seed must be 32 bytes of base64");
  return `ed25519 ${keyId} ${seed}\n`;
}

/** Names of the files Synapse reads, relative to their directory (ConfigMap for the first two, Secret for the rest). */
export const FILE_NAMES = {
  homeserver: "homeserver.yaml",
  logConfig: "log.yaml",
  database: "database.yaml",
  signingKey: "signing.key",
  registrationSharedSecret: "registration_shared_secret",
  macaroonSecretKey: "macaroon_secret_key",
  formSecret: "form_secret",
  appserviceRegistration: "appservice-nova-bridge.yaml",
  // Worker mode (infra/synapse/workers.ts): the `redis` block (a Secret-side config file: Memorystore's host is
  // known only once it exists), Redis's password and server CA, the secret that authenticates replication HTTP.
  redis: "redis.yaml",
  redisPassword: "redis_password",
  redisCa: "redis-ca.pem",
  replicationSecret: "worker_replication_secret",
} as const;
