// Runs the phases in order on what they share; one phase's failure is noted in the results and does not stop the
// others (the run exits non-zero after writing them).
import { loadavg } from "node:os";
import type { Bench, Phase } from "./phase.ts";

/** The load average now (1, 5, 15 min), two decimals. */
export const loadAverage = () => loadavg().map((l) => Math.round(l * 100) / 100);

/** The names `--skip` accepts: each phase's name and its parts. */
export function skippableNames(phases: readonly Phase[]): string[] {
  return phases.flatMap((phase) => [phase.name, ...(phase.parts ?? [])]);
}

/** Whether `skip` leaves the whole phase out: its name, or every one of its parts. */
export function phaseSkipped(phase: Phase, skip: readonly string[]): boolean {
  return skip.includes(phase.name) || (phase.parts?.every((part) => skip.includes(part)) ?? false);
}

/** Runs each phase not skipped; stops the shared bridge after each. Returns the names of those that failed. */
export async function runPhases(phases: readonly Phase[], bench: Bench): Promise<string[]> {
  const failed: string[] = [];
  for (const phase of phases) {
    if (phaseSkipped(phase, bench.options.skip)) {
      bench.log(`${phase.name}: skipped`);
      continue;
    }
    const started = performance.now();
    const loadAverageAtStart = loadAverage();
    try {
      await phase.run(bench);
      bench.log(`${phase.name}: done in ${Math.round((performance.now() - started) / 1000)} s`);
    } catch (error) {
      failed.push(phase.name);
      const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
      bench.results.notes.push(`${phase.name}: failed: ${reason}`);
      bench.log(`${phase.name}: failed: ${error instanceof Error ? (error.stack ?? error.message) : reason}`);
    } finally {
      await bench.bridge.stop();
      bench.results.phases = [
        ...(bench.results.phases ?? []),
        {
          name: phase.name,
          loadAverageAtStart,
          loadAverageAtEnd: loadAverage(),
          seconds: Math.round((performance.now() - started) / 1000),
        },
      ];
    }
  }
  return failed;
}
