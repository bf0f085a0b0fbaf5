// What a bench phase is: a module in bench/phases/ that measures one thing on the harness and writes its part of
// the results. The runner (run.ts) starts what phases share, runs each in the order of phases/index.ts, and
// writes the results file and the chart.
import type { Bridge } from "@nova-matrix/bridge";
import type { SynapseChroot } from "@nova-matrix/dev/harness";
import type { TestStack } from "@nova-matrix/dev/harness/test-stack";
import type { BridgeUnderTest } from "./bridge-under-test.ts";
import type { BenchOptions } from "./options.ts";
import type { CorePlan } from "./proc.ts";
import type { Results } from "./report.ts";

export interface Phase {
  /** Its name in the log and in `--skip`. */
  readonly name: string;
  /**
   * Parts `--skip` may leave out one by one (throughput's raw and bridge sides); the phase asks `bench.skipped(part)`.
   * Skipping every part skips the phase.
   */
  readonly parts?: readonly string[];
  /**
   * Measures and writes into `bench.results`; resolves when done (a rejection is noted in the results and the next
   * phase runs). It finds Synapse running and the shared bridge service stopped, and must leave Synapse running;
   * the runner stops the shared bridge after it. Whatever else it starts it stops, and `track`s meanwhile.
   */
  run(bench: Bench): Promise<void>;
}

/** Something a phase starts that must not outlive an interrupted bench (a process, a server). */
export interface Stoppable {
  stop(): Promise<unknown>;
}

/** What every phase receives. */
export interface Bench {
  /** The command line. */
  readonly options: BenchOptions;
  /**
   * The results sink: the file being filled. A phase sets its own fields (add a field and its table in report.ts
   * for a new phase) and may push notes; results.repeats holds every run behind a median.
   */
  readonly results: Results;
  /** PostgreSQL + Synapse on infra's local profile (the shipped homeserver.yaml, the monolith). */
  readonly stack: TestStack;
  /** The Synapse chroot, to start more homeservers (another config, worker mode). */
  readonly chroot: SynapseChroot;
  /**
   * Conversations created through the bridge library before the first phase (max(--concurrency, 8) of them,
   * each with the sender as member): `ids` for the bridge's API, `rooms` (same order) for Synapse's.
   */
  readonly conversations: { readonly ids: readonly string[]; readonly rooms: readonly string[] };
  /** The bridge library on the stack (no sync loop), to create more conversations. */
  readonly library: Bridge;
  /** The bridge service under test (a child process on its own database) and a reader of its stream. */
  readonly bridge: BridgeUnderTest;
  /** The API token and WebSocket signing key the shared service has, to start more bridge processes. */
  readonly credentials: { readonly apiToken: string; readonly signingKey: string };
  /**
   * The cores each side runs on during a workload window (or why the sides share them) and the unit of /proc's CPU
   * times; runs.ts applies and reads them.
   */
  readonly cpu: { readonly plan: CorePlan | string; readonly ticksPerSecond: number };
  /** True if `--skip` names this part. */
  skipped(part: string): boolean;
  /** Stops `child` if the bench is interrupted (Ctrl-C, SIGTERM) until the returned function is called. */
  track(child: Stoppable): () => void;
  /** A progress line on stderr. */
  log(message: string): void;
}
