// The one place that reads stack configuration from Pulumi.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, PROJECT, parseStackConfig, type StackConfig } from "./schema.ts";

/** Stack config values arrive as strings; structured ones (objects, numbers, booleans) as JSON. */
function decode(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value; // a plain string such as chat.nova.com
  }
}

/** Raw `nova-matrix:*` values, keyed without the prefix (every key, so a misspelt one is reported, not ignored). */
export function rawProjectConfig(all: Record<string, string>): Record<string, unknown> {
  const prefix = `${PROJECT}:`;
  return Object.fromEntries(
    Object.entries(all)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), decode(value)]),
  );
}

/** Reads and validates the stack's configuration; a bad value stops the program with the key named. */
export function loadConfig(): StackConfig {
  try {
    return parseStackConfig(rawProjectConfig(pulumi.runtime.allConfig()));
  } catch (error) {
    if (error instanceof ConfigError) throw new pulumi.RunError(error.message);
    throw error;
  }
}
