// Reads a stack file (Pulumi.<stack>.yaml) into the flat string map Pulumi hands a program.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";

export const STACKS = ["staging", "prod"] as const;
export type StackName = (typeof STACKS)[number];

/** Pulumi passes every value as a string; structured values (objects, numbers, booleans) as JSON. */
export function flattenStackConfig(file: unknown, path: string): Record<string, string> {
  const config = (file as { config?: unknown } | null)?.config;
  if (config === undefined || config === null || typeof config !== "object" || Array.isArray(config))
    throw new Error(`${path}: expected a top-level "config:" mapping`);
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => {
      if (typeof value === "object" && value !== null && "secure" in value)
        throw new Error(`${path}: ${key} is a secret; stack files hold non-secret values only`);
      return [key, typeof value === "string" ? value : JSON.stringify(value)];
    }),
  );
}

export async function readStackFile(path: string): Promise<Record<string, string>> {
  return flattenStackConfig(parse(await readFile(path, "utf8")), path);
}

export function readStackConfig(projectDir: string, stack: string): Promise<Record<string, string>> {
  return readStackFile(join(projectDir, `Pulumi.${stack}.yaml`));
}
