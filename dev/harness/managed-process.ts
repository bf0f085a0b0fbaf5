// A long-running server process of the harness (Synapse, Redis, HAProxy): started, probed until ready, stopped,
// killed with any signal for fault tests and started again, its output appended to one log file.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { waitFor } from "./process.ts";

export interface ManagedProcessOptions {
  /** What the log and errors call it, e.g. `Synapse matrix-synapse-sync-0`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly logPath: string;
  /** True once the process serves (throws or false: not yet). */
  readonly ready: () => Promise<boolean>;
  /** What "ready" means, for the timeout's message. */
  readonly readyDescription: string;
  readonly startTimeoutMs: number;
  /** SIGTERM first; after this long, SIGKILL. */
  readonly stopGraceMs?: number;
}

export class ManagedProcess {
  readonly options: ManagedProcessOptions;
  #child: ChildProcess | undefined;
  #log: WriteStream | undefined;

  constructor(options: ManagedProcessOptions) {
    this.options = options;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  alive(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Everything it printed so far, over every start. */
  log(): Promise<string> {
    return readFile(this.options.logPath, "utf8").catch(() => "");
  }

  /** Starts it (unless running) and waits until it is ready; on a timeout or an early exit, stops it and says why. */
  async start(): Promise<void> {
    if (this.alive()) return;
    const { options } = this;
    const log = createWriteStream(options.logPath, { flags: "a" });
    this.#log = log;
    const child = spawn(options.command, options.args, {
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`${options.name} exited (${child.exitCode ?? child.signalCode}) during start-up`);
        return options.ready();
      },
      {
        timeoutMs: options.startTimeoutMs,
        describe: () => `${options.name} did not become ready (${options.readyDescription})`,
      },
    ).catch(async (error: Error) => {
      await this.stop();
      throw new Error(
        `${error.message}. Its output (${options.logPath}):\n${(await this.log()).slice(-6000)}`,
      );
    });
  }

  /** Sends a signal (SIGKILL for a crash) and waits for the exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child || !this.alive()) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    await exited;
    this.#log?.end();
  }

  /** SIGTERM, then SIGKILL after the grace period. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || !this.alive()) return;
    const timer = setTimeout(() => child.kill("SIGKILL"), this.options.stopGraceMs ?? 10_000);
    await this.kill("SIGTERM");
    clearTimeout(timer);
  }
}
