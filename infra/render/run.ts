// Runs the real program (its entry point infra/main.js, which loads infra/index.ts) under Pulumi's mock runtime
// with a stack file's config. One stack per process: the mock runtime is process-wide state.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterRef } from "../cluster/context.ts";
import { PROJECT } from "../config/schema.ts";
import {
  mockKubeconfig,
  type RecordedResource,
  RecordingMocks,
  unwrapSecrets,
  withImageDigest,
} from "./mocks.ts";
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
  /** Each resource's outputs as its provider returned them (`<type>::<name>`). */
  resourceOutputs: Map<string, Record<string, unknown>>;
  /** Every registration (components and the stack too) with its parent and direct dependencies: the stack's graph. */
  registrations: Registration[];
}

export interface Registration {
  urn: string;
  type: string;
  name: string;
  /** False for components (and the stack): they group resources, providers manage nothing for them. */
  custom: boolean;
  parent?: string;
  /** URNs this one waits for: explicit dependsOn and the resources its inputs come from. */
  dependencies: string[];
  /** The options that keep live objects (the mocks' newResource never sees resource options). */
  protect: boolean;
  retainOnDelete: boolean;
}

// The mock runtime hands `newResource` no parent or dependencies; the register request it answers has them.
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getCustom(): boolean;
  getParent(): string;
  getDependenciesList(): string[];
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
}
type RegisterCallback = (error: unknown, response?: { getUrn(): string }) => void;
interface Monitor {
  registerResource(request: RegisterRequest, callback: RegisterCallback): void;
}

function recordRegistrations(into: Registration[]): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (request, callback) =>
    register(request, (error, response) => {
      if (response)
        into.push({
          urn: response.getUrn(),
          type: request.getType(),
          name: request.getName(),
          custom: request.getCustom(),
          ...(request.getParent() ? { parent: request.getParent() } : {}),
          dependencies: [...request.getDependenciesList()].sort(),
          protect: request.getProtect() ?? false,
          retainOnDelete: request.getRetainondelete() ?? false,
        });
      callback(error, response);
    });
}

/** Output's own resolution with unknowns (not in its public type): `apply` never calls back on an unknown value. */
interface OutputWithUnknowns {
  promise(withUnknowns: true): Promise<unknown>;
}

const resolveOutput = async (value: unknown): Promise<unknown> => {
  if (!pulumi.Output.isInstance(value)) return value;
  const resolved = await (value as unknown as OutputWithUnknowns).promise(true);
  return unwrapSecrets(resolved, () => {}); // unknowns, at any depth, as KNOWN_AFTER_APPLY
};

export interface RunOptions {
  /**
   * The kubeconfig the program finds in KUBECONFIG. Default: what the workflow's get-gke-credentials step writes
   * for the stack's own cluster (`nova-matrix:cluster`).
   */
  kubeconfig?: string;
  /** Run as `pulumi preview` does before a first deploy: every provider-computed output unknown. */
  preview?: boolean;
}

/** Points KUBECONFIG at a file with `text` (or the stack's cluster); returns the clean-up. */
function useKubeconfig(
  config: Record<string, string>,
  text: string | undefined,
  mocks: RecordingMocks,
): () => void {
  const cluster = config[`${PROJECT}:cluster`];
  const content = text ?? (cluster ? mockKubeconfig(JSON.parse(cluster) as ClusterRef) : undefined);
  if (content === undefined) return () => {};
  const dir = mkdtempSync(join(tmpdir(), "nova-kubeconfig-"));
  mocks.kubeconfigPath = join(dir, "config");
  writeFileSync(mocks.kubeconfigPath, content, { mode: 0o600 });
  const previous = process.env.KUBECONFIG;
  process.env.KUBECONFIG = mocks.kubeconfigPath;
  return () => {
    if (previous === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = previous;
    rmSync(dir, { recursive: true, force: true });
  };
}

export async function runStack(
  stack: string,
  config?: Record<string, string>,
  options: RunOptions = {},
): Promise<StackRun> {
  const mocks = new RecordingMocks({ preview: options.preview ?? false });
  const stackConfig = config ?? (await readStackConfig(PROJECT_DIR, stack));
  // A preview of the stack files has no image yet (known after apply); an update has the image job's digest.
  const allConfig = options.preview ? stackConfig : withImageDigest(stackConfig, `${PROJECT}:bridge`);
  pulumi.runtime.setAllConfig(allConfig);
  await pulumi.runtime.setMocks(mocks, PROJECT, stack, options.preview ?? false);
  const restoreKubeconfig = useKubeconfig(allConfig, options.kubeconfig, mocks);
  const registrations: Registration[] = [];
  recordRegistrations(registrations);
  let program: Record<string, unknown>;
  try {
    // Through the entry point Pulumi runs (infra/package.json "main"), so the render covers it too.
    const entry = (await import(join(PROJECT_DIR, "infra/main.js"))) as typeof import("../main.js");
    program = entry.default();
  } finally {
    // The program reads the kubeconfig while it loads (infra/cluster); nothing reads it afterwards.
    restoreKubeconfig();
  }
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
  return {
    resources: mocks.resources,
    outputs,
    secretOutputs,
    secretValues: mocks.secretValues,
    resourceOutputs: mocks.resourceOutputs,
    registrations,
  };
}
