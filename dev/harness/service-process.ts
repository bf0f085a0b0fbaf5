// The bridge service (bridge/src/service/main.ts) as a child process on a fixed port, so a test can kill -9 it and start
// it again at the same URL. With `supervise`, an exit the test did not ask for is followed by a restart after a
// short pause, as Kubernetes would (the service exits 1 when it loses its database lock, by design).
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import type { EnabledConfig } from "@nova-matrix/bridge";
import { nodeHeapOptions } from "@nova-matrix/infra/bridge-deploy/spec";
import { DEFAULT_BRIDGE_RESOURCES } from "@nova-matrix/infra/config/bridge";
import { freePort, sleep, waitFor } from "./process.ts";
import { matrixEnv } from "./test-stack.ts";

/** The service's entry point, the one the image runs. */
const MAIN = createRequire(import.meta.url).resolve("@nova-matrix/bridge/main");
const KEEP_OUTPUT = 400_000;

export interface ServiceProcessOptions {
  config: EnabledConfig;
  databaseUrl: string;
  apiToken: string;
  signingKey: string;
  /** Restart after an exit nobody asked for. */
  supervise?: boolean;
  /** The entry point to run (default: the repository's; the image test runs the image's copy). */
  entry?: string;
  env?: Record<string, string>;
}

export class ServiceProcess {
  readonly #env: NodeJS.ProcessEnv;
  readonly #supervise: boolean;
  readonly #entry: string;
  #child: ChildProcess | undefined;
  #wanted = false;
  #port = 0;
  /** The tail of everything every run printed (JSON log lines). */
  output = "";
  /** How many times the process was started (by the test or the supervisor). */
  starts = 0;
  /** Exits the test did not ask for (each followed by a restart when supervised). */
  unexpectedExits = 0;

  constructor(options: ServiceProcessOptions) {
    const { config } = options;
    this.#supervise = options.supervise ?? false;
    this.#entry = options.entry ?? MAIN;
    this.#env = {
      PATH: process.env.PATH,
      ...matrixEnv(config),
      BRIDGE_DATABASE_URL: options.databaseUrl,
      BRIDGE_API_TOKEN: options.apiToken,
      BRIDGE_WS_SIGNING_KEY: options.signingKey,
      BRIDGE_HOST: "127.0.0.1",
      BRIDGE_SYNC_POLL_MS: "1000",
      LOG_LEVEL: "info",
      // The heap settings the Deployment gives the bridge with its default memory limit: tests and the bench
      // measure what runs.
      NODE_OPTIONS: nodeHeapOptions(DEFAULT_BRIDGE_RESOURCES.limits.memory),
      ...options.env,
    };
  }

  /** The running process's id (undefined before the first start). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /**
   * Starts it (on the same port as before, if any) and waits until /readyz says ready. Already running: only waits
   * (a second process would lose the port and leave the first one untracked, still running).
   */
  async start(timeoutMs = 30_000): Promise<void> {
    this.#port ||= await freePort();
    this.#wanted = true;
    if (!this.#running()) this.#spawn();
    await this.ready(timeoutMs);
  }

  #running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Waits until /readyz answers 200 (the bridge holds the lock, Synapse and Postgres answer, sync caught up). */
  ready(timeoutMs = 30_000): Promise<void> {
    return waitFor(async () => (await fetch(`${this.url}/readyz`)).status === 200, {
      timeoutMs,
      intervalMs: 100,
      describe: () => `the bridge service did not become ready:\n${this.output.slice(-3000)}`,
    });
  }

  #spawn(): void {
    const child = spawn(process.execPath, [this.#entry], {
      env: { ...this.#env, BRIDGE_PORT: String(this.#port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    this.starts++;
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-KEEP_OUTPUT);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.once("exit", () => {
      if (!this.#wanted || this.#child !== child) return;
      this.unexpectedExits++;
      if (this.#supervise)
        void sleep(300).then(() => {
          if (this.#wanted && this.#child === child) this.#spawn();
        });
    });
  }

  /** SIGKILL: no chance to finish anything. The supervisor does not restart it; call start(). */
  async kill(): Promise<void> {
    this.#wanted = false;
    await this.#signal("SIGKILL");
  }

  /** SIGTERM: a graceful stop. */
  async stop(): Promise<void> {
    this.#wanted = false;
    await this.#signal("SIGTERM");
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child || !this.#running()) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }
}
