// The workload both sides run: one closed-loop sender per conversation (the next message leaves when the previous
// one was accepted) for a fixed window, every message tagged so the reader can match its receipt to its send.
import { sleep } from "@nova-matrix/dev/harness";
import { type RunSummary, summarize } from "./stats.ts";

export interface WorkloadOptions {
  /** Conversation (or room) ids, one sender each. */
  targets: readonly string[];
  durationMs: number;
  /** How long to wait for the last receipts after the window. */
  drainMs: number;
  /** Sends one text; resolves when the server accepted it. */
  send(target: string, body: string, key: string): Promise<void>;
  /** Receipt times by body, filled by the reader. */
  receipts: Map<string, number>;
  /** Tags the bodies of this run. */
  tag: string;
}

/** Runs the workload and summarizes it (receipt and send times share `performance.now()`). */
export async function runWorkload(options: WorkloadOptions): Promise<RunSummary> {
  const sends = new Map<string, number>();
  const accepted = new Map<string, number>();
  const deadline = performance.now() + options.durationMs;
  let errors = 0;
  await Promise.all(
    options.targets.map(async (target, t) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const body = `${options.tag} ${t}.${n}`;
        sends.set(body, performance.now());
        try {
          await options.send(target, body, `${options.tag}-${t}-${n}`);
          accepted.set(body, performance.now());
        } catch (error) {
          sends.delete(body);
          if (++errors > 20) throw error;
          await sleep(200);
        }
      }
    }),
  );
  const drainUntil = performance.now() + options.drainMs;
  while (performance.now() < drainUntil && [...sends.keys()].some((body) => !options.receipts.has(body)))
    await sleep(50);
  return { ...summarize(options.targets.length, sends, options.receipts, accepted), errors };
}
