import { describe, inject } from "vitest";
import type { SynapseChroot } from "./chroot.ts";

/**
 * `describe` for suites that need the real Synapse and PostgreSQL. Skipped, with the reason in its name,
 * only where the harness cannot run and CI is not set (global-setup fails the run under CI=true).
 */
export function describeWithHarness(name: string, suite: () => void): void {
  const reason = inject("harnessUnavailable");
  if (reason) describe.skip(`${name} [skipped: ${reason}]`, suite);
  else describe(name, suite);
}

/**
 * A suite run twice: on the monolith (staging's default) and on Synapse in worker mode (prod's, main + workers +
 * Redis + HAProxy). The suite passes `workers` to `startTestStack`.
 */
export function describeWithHarnessInEachMode(name: string, suite: (workers: boolean) => void): void {
  for (const workers of [false, true])
    describeWithHarness(`${name} [${workers ? "worker mode" : "monolith"}]`, () => suite(workers));
}

/** The chroot global-setup prepared. */
export function harnessChroot(): SynapseChroot {
  const chroot = inject("synapseChroot");
  if (!chroot)
    throw new Error("the Synapse chroot was not prepared by global-setup (is vitest.config.ts in use?)");
  return chroot;
}
