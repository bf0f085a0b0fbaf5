// Runs the real program (infra/index.ts) under Pulumi's mock runtime with a stack file's config. One stack per
// process: the mock runtime is process-wide state.
import { join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT } from "../config/schema.ts";
import { type RecordedResource, RecordingMocks } from "./mocks.ts";
import { readStackConfig } from "./stack-file.ts";

export const PROJECT_DIR = resolve(import.meta.dirname, "../..");

export interface StackRun {
  resources: RecordedResource[];
  /** Stack outputs, resolved (undefined ones left out). */
  outputs: Record<string, unknown>;
  /** Which outputs are Pulumi secrets. */
  secretOutputs: Set<string>;
  /** Every generated secret value (for redaction and leak checks). */
  secretValues: Set<string>;
}

const resolveOutput = (value: unknown): Promise<unknown> =>
  pulumi.Output.isInstance(value)
    ? new Promise((done) => (value as pulumi.Output<unknown>).apply((resolved) => done(resolved)))
    : Promise.resolve(value);

export async function runStack(stack: string, config?: Record<string, string>): Promise<StackRun> {
  const mocks = new RecordingMocks();
  pulumi.runtime.setAllConfig(config ?? (await readStackConfig(PROJECT_DIR, stack)));
  await pulumi.runtime.setMocks(mocks, PROJECT, stack, false);
  const program = (await import(join(PROJECT_DIR, "infra/index.ts"))) as Record<string, unknown>;
  const outputs: Record<string, unknown> = {};
  const secretOutputs = new Set<string>();
  for (const [key, value] of Object.entries(program)) {
    const resolved = await resolveOutput(value);
    if (resolved === undefined) continue;
    outputs[key] = resolved;
    if (pulumi.Output.isInstance(value) && (await pulumi.isSecret(value as pulumi.Output<unknown>)))
      secretOutputs.add(key);
  }
  // Let every pending registration finish before reading what was recorded.
  await pulumi.runtime.disconnect();
  return { resources: mocks.resources, outputs, secretOutputs, secretValues: mocks.secretValues };
}
