// The service's own settings (beyond the MATRIX_* ones the core reads): validated, errors name the variable and
// never include a value.
import { z } from "zod";
import { ConfigError } from "../config/config.ts";
import { Secret } from "../config/secret.ts";

export interface ServiceSettings {
  apiToken: Secret;
  signingKey: Secret;
  host: string;
  port: number;
  metricsPort: number | undefined;
  syncPollMs: number | undefined;
  /** Upload bodies (BRIDGE_MAX_UPLOAD_BYTES): the Deployment sets Synapse's `max_upload_size`, so the two agree. */
  maxUploadBytes: number | undefined;
  /** The API reference at /v1/docs and the console at /console (BRIDGE_DEV_PAGES=true). */
  devPages: boolean;
}

const secret = z
  .string({ error: "is required" })
  .min(32, { error: "must be at least 32 characters (a generated secret)" });
const port = z
  .string()
  .regex(/^\d{1,5}$/, { error: "expected a port number" })
  .transform(Number)
  .pipe(z.number().int().min(0).max(65_535, { error: "expected a port number" }));

const schema = z.object({
  BRIDGE_API_TOKEN: secret,
  BRIDGE_WS_SIGNING_KEY: secret,
  BRIDGE_HOST: z.string().min(1).default("0.0.0.0"),
  BRIDGE_PORT: port.default(8080),
  BRIDGE_METRICS_PORT: port.optional(),
  BRIDGE_SYNC_POLL_MS: z
    .string()
    .regex(/^\d+$/, { error: "expected milliseconds" })
    .transform(Number)
    .optional(),
  BRIDGE_MAX_UPLOAD_BYTES: z
    .string()
    .regex(/^[1-9]\d{0,12}$/, { error: "expected a number of bytes, such as 52428800 (50 MiB)" })
    .transform(Number)
    .optional(),
  BRIDGE_DEV_PAGES: z
    .enum(["true", "false"], { error: 'expected "true" or "false"' })
    .default("false")
    .transform((value) => value === "true"),
});

export function serviceSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceSettings {
  const picked = Object.fromEntries(
    Object.keys(schema.shape).map((key) => [key, env[key] === "" ? undefined : env[key]]),
  );
  const result = schema.safeParse(picked);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid bridge service settings from the environment:\n${lines.join("\n")}`);
  }
  const value = result.data;
  return {
    apiToken: new Secret(value.BRIDGE_API_TOKEN),
    signingKey: new Secret(value.BRIDGE_WS_SIGNING_KEY),
    host: value.BRIDGE_HOST,
    port: value.BRIDGE_PORT,
    metricsPort: value.BRIDGE_METRICS_PORT,
    syncPollMs: value.BRIDGE_SYNC_POLL_MS,
    maxUploadBytes: value.BRIDGE_MAX_UPLOAD_BYTES,
    devPages: value.BRIDGE_DEV_PAGES,
  };
}
