import { readFileSync } from "node:fs";
import {
  MATRIX_SETTING_NAMES,
  matrixEnv,
  matrixSettingsOf,
  SECRET_OUTPUTS,
  stackOutputsSchema,
} from "@nova-matrix/contracts";
import { z } from "zod";
import { Secret } from "./secret.ts";

/** The bridge's settings, validated. */
export type BridgeConfig = { enabled: false } | EnabledConfig;

export interface EnabledConfig {
  enabled: true;
  /** Base URL of the homeserver's client API, without a trailing slash. */
  homeserverUrl: string;
  /** The service user the bridge acts as (`@nova-service:<server>`), asserted with `?user_id=`. */
  serviceUser: string;
  /** Kept for the backend's settings; appservice-authenticated users have no device, so it is informational. */
  deviceName: string;
  serverName: string;
  /** The appservice's `as_token`. */
  accessToken: Secret;
}

/** The settings, by the names the backend already has (its ConfigMap and Secret keys). */
export const SETTING_NAMES = MATRIX_SETTING_NAMES;

export class ConfigError extends Error {
  override name = "ConfigError";
}

const serverName = z
  .string({ error: "is required" })
  .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, { error: "expected a server name such as chat.nova.com" });

const enabledFlag = z
  .union([z.boolean(), z.enum(["true", "false", "1", "0", "yes", "no"])], {
    error: 'expected "true" or "false"',
  })
  .transform((value) => value === true || value === "true" || value === "1" || value === "yes");

const enabledSchema = z
  .object({
    MATRIX_ENABLED: z.literal(true),
    MATRIX_HOMESERVER_URL: z
      .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
      .transform((url) => url.replace(/\/+$/, "")),
    MATRIX_SERVICE_USER: z
      .string({ error: "is required" })
      .regex(/^@[a-z0-9._=\-/]+:[A-Za-z0-9.-]+(:\d{1,5})?$/, {
        error: "expected a Matrix user id such as @nova-service:chat.nova.com",
      }),
    MATRIX_DEVICE_NAME: z.string().min(1, { error: "must not be empty" }).default("nova-bridge"),
    MATRIX_SERVER_NAME: serverName,
    // The message never includes the value.
    MATRIX_ACCESS_TOKEN: z.string({ error: "is required" }).min(1, { error: "must not be empty" }),
  })
  .superRefine((value, context) => {
    if (!value.MATRIX_SERVICE_USER.endsWith(`:${value.MATRIX_SERVER_NAME}`))
      context.addIssue({
        code: "custom",
        path: ["MATRIX_SERVICE_USER"],
        // No value in the message: a secret pasted into the wrong setting must not reach a log.
        message: "must be a user on MATRIX_SERVER_NAME (@localpart:<MATRIX_SERVER_NAME>)",
      });
  });

function describeIssues(issues: readonly z.core.$ZodIssue[], source: string): string {
  const lines = issues.map((issue) => {
    const key = issue.path.map(String).join(".") || "(settings)";
    return `  ${key}: ${issue.message}`;
  });
  return `invalid Matrix settings from ${source}:\n${lines.join("\n")}`;
}

/**
 * Validates the settings from a plain record (the environment or the stack outputs). Errors name each setting and
 * what is expected, and never contain a value, so they are safe to log.
 */
export function parseConfig(settings: Record<string, unknown>, source = "the environment"): BridgeConfig {
  const flag = enabledFlag.safeParse(settings.MATRIX_ENABLED ?? "false");
  if (!flag.success)
    throw new ConfigError(
      `invalid Matrix settings from ${source}:\n  MATRIX_ENABLED: expected "true" or "false"`,
    );
  if (!flag.data) return { enabled: false };
  const picked = Object.fromEntries(
    SETTING_NAMES.map((name) => [name, name === "MATRIX_ENABLED" ? true : emptyToUndefined(settings[name])]),
  );
  const result = enabledSchema.safeParse(picked);
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, source));
  const value = result.data;
  return {
    enabled: true,
    homeserverUrl: value.MATRIX_HOMESERVER_URL,
    serviceUser: value.MATRIX_SERVICE_USER,
    deviceName: value.MATRIX_DEVICE_NAME,
    serverName: value.MATRIX_SERVER_NAME,
    accessToken: new Secret(value.MATRIX_ACCESS_TOKEN),
  };
}

const emptyToUndefined = (value: unknown) => (value === "" ? undefined : value);

/** Settings from the process environment. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  return parseConfig(env, "the environment");
}

/**
 * Settings from `pulumi stack output --json --show-secrets` (JSON text), validated with the stack outputs' schema
 * (`@nova-matrix/contracts`: the one definition the program writes and the bridge reads) and mapped onto the
 * MATRIX_* settings the way the program maps them for realtime-chat-service. Pulumi prints a secret it was not asked
 * to show as `"[secret]"`; that is reported.
 */
export function configFromStackOutputs(json: string, source = "the stack outputs"): BridgeConfig {
  let outputs: unknown;
  try {
    outputs = JSON.parse(json);
  } catch {
    throw new ConfigError(
      `${source} are not valid JSON (expected what \`pulumi stack output --json\` prints)`,
    );
  }
  if (typeof outputs !== "object" || outputs === null || Array.isArray(outputs))
    throw new ConfigError(`${source} must be a JSON object of stack outputs`);
  for (const name of SECRET_OUTPUTS)
    if ((outputs as Record<string, unknown>)[name] === "[secret]")
      throw new ConfigError(`${source}: ${name} is hidden; print the outputs with --show-secrets`);
  const result = stackOutputsSchema.safeParse(outputs);
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, source));
  const value = result.data;
  return parseConfig(matrixEnv(matrixSettingsOf(value), value.accessToken), source);
}

/** Reads stack outputs from a file, or from stdin when the path is `-`. */
export function configFromStackOutputsFile(path: string): BridgeConfig {
  const source = path === "-" ? "stack outputs on stdin" : `stack outputs file ${path}`;
  let text: string;
  try {
    text = readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read ${source}: ${(error as Error).message}`);
  }
  return configFromStackOutputs(text, source);
}
