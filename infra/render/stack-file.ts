// Reads a stack file (Pulumi.<stack>.yaml) into the flat string map Pulumi hands a program.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";
import { KEY_RING, stackKeyName } from "../bootstrap/plan.ts";

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

/**
 * What is wrong with a stack file's secrets provider: it must name the stack's Cloud KMS key from infra/bootstrap
 * (`gcpkms://`), never a passphrase (`encryptionsalt:`), so a first `pulumi stack init` cannot fall back to one.
 */
export function secretsProviderProblems(file: unknown, stack: string): string[] {
  const settings = (file ?? {}) as { secretsprovider?: unknown; encryptionsalt?: unknown };
  const where = `Pulumi.${stack}.yaml`;
  const expected = `gcpkms://projects/<project>/locations/<region>/keyRings/${KEY_RING}/cryptoKeys/${stackKeyName(stack)}`;
  const problems: string[] = [];
  if (settings.encryptionsalt !== undefined)
    problems.push(
      `${where}: encryptionsalt is a passphrase provider's; secrets are encrypted with Cloud KMS only`,
    );
  const provider = settings.secretsprovider;
  if (typeof provider !== "string" || provider === "")
    problems.push(`${where}: no secretsprovider; name the stack's KMS key: secretsprovider: ${expected}`);
  else if (!provider.startsWith("gcpkms://"))
    problems.push(`${where}: secretsprovider ${provider} is not Cloud KMS; expected ${expected}`);
  else {
    const match =
      /^gcpkms:\/\/projects\/[a-z][-a-z0-9]{4,28}[a-z0-9]\/locations\/[a-z0-9-]+\/keyRings\/([^/]+)\/cryptoKeys\/([^/?]+)$/.exec(
        provider,
      );
    if (!match || match[1] !== KEY_RING || match[2] !== stackKeyName(stack))
      problems.push(
        `${where}: secretsprovider ${provider} is not this stack's bootstrap key; expected ${expected}`,
      );
  }
  return problems;
}
