// Runs a stack in a child process (infra/testing/run-stack-json.ts) for test files that need several stacks: the mock
// runtime is process-wide, so one process cannot run two. The generated secrets come back through the pipe only.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { RecordedResource } from "../render/mocks.ts";
import { PROJECT_DIR } from "../render/run.ts";
import type { KubeObject } from "./stack-invariants.ts";

const run = promisify(execFile);

export interface ChildStackRun {
  resources: RecordedResource[];
  secretValues: Set<string>;
  /** The Kubernetes objects among the resources (their inputs). */
  objects: KubeObject[];
  /** Each resource's outputs (`<type>::<name>`). */
  resourceOutputs: Record<string, Record<string, unknown>>;
}

/**
 * The stack as `Pulumi.<stack>.yaml` configures it, or with the config of `stackFile`; `preview`: as a first
 * `pulumi preview` sees it (infra/render/run.ts).
 */
export async function runStackInChild(
  stack: string,
  stackFile?: string,
  options: { preview?: boolean } = {},
): Promise<ChildStackRun> {
  const args = [
    `${PROJECT_DIR}/infra/testing/run-stack-json.ts`,
    stack,
    ...(stackFile ? [stackFile] : []),
    ...(options.preview ? ["--preview"] : []),
  ];
  const { stdout } = await run(process.execPath, args, { cwd: PROJECT_DIR, maxBuffer: 64 << 20 });
  const parsed = JSON.parse(stdout) as Pick<ChildStackRun, "resources" | "resourceOutputs"> & {
    secretValues: string[];
  };
  return {
    resources: parsed.resources,
    resourceOutputs: parsed.resourceOutputs,
    secretValues: new Set(parsed.secretValues),
    objects: parsed.resources
      .filter((resource) => resource.type.startsWith("kubernetes:"))
      .map((resource) => resource.inputs as KubeObject),
  };
}
