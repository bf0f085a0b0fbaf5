import { judgeHarnessVersion } from "@nova-matrix/infra/synapse/version";
import type { TestProject } from "vitest/node";
import { chrootPreflight, ensureSynapseChroot } from "./chroot.ts";
import { postgresBinDir } from "./postgres.ts";

/**
 * Runs once before any test: builds (or finds) the Synapse chroot with visible progress, so test workers
 * never sit silently through the first build. Where the harness cannot run, suites that need it are skipped
 * with the reason, except under CI=true, where that is a failure.
 */
export default async function setup(project: TestProject): Promise<void> {
  let reason: string | undefined;
  try {
    reason = await chrootPreflight();
    if (!reason) {
      const chroot = await ensureSynapseChroot((line) => console.log(`[harness] ${line}`));
      // Which Synapse the tests vouch for; infra/stack-staging.test.ts fails outside the pinned image's window.
      console.log(
        `[harness] matrix-synapse ${chroot.version}: ${judgeHarnessVersion(chroot.version).message}`,
      );
      project.provide("synapseChroot", chroot);
      await postgresBinDir();
    }
  } catch (error) {
    reason = error instanceof Error ? error.message : String(error);
  }
  if (!reason) return;
  if (process.env.CI === "true")
    throw new Error(`The Synapse + PostgreSQL test harness cannot run: ${reason}`);
  console.warn(`[harness] Suites that need Synapse and PostgreSQL are skipped: ${reason}`);
  project.provide("harnessUnavailable", reason);
}

declare module "vitest" {
  export interface ProvidedContext {
    synapseChroot?: import("./chroot.ts").SynapseChroot;
    harnessUnavailable?: string;
  }
}
