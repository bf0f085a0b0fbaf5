import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { matrixEnv } from "@nova-matrix/dev/harness/test-stack";
import type { EnabledConfig } from "../src/config/config.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

/** The bridge as a separate process (`src/main.ts`), so a test can SIGKILL it: no graceful stop at all. */
export class BridgeProcess {
  readonly #env: NodeJS.ProcessEnv;
  #child: ChildProcess | undefined;
  /** Everything every run printed (JSON log lines). */
  output = "";

  constructor(config: EnabledConfig, databaseUrl: string, extraEnv: Record<string, string> = {}) {
    this.#env = {
      PATH: process.env.PATH,
      ...matrixEnv(config),
      BRIDGE_DATABASE_URL: databaseUrl,
      BRIDGE_SYNC_POLL_MS: "500",
      LOG_LEVEL: "info",
      ...extraEnv,
    };
  }

  /** Starts it and resolves once it logged "bridge started". */
  start(timeoutMs = 20_000): Promise<void> {
    const child = spawn(process.execPath, [MAIN], { env: this.#env, stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`bridge did not start:\n${this.output.slice(-3000)}`)),
        timeoutMs,
      );
      const onData = (chunk: Buffer) => {
        this.output += chunk.toString("utf8");
        if (this.output.includes('"msg":"bridge started"')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`bridge exited (${code ?? signal}) during start-up:\n${this.output.slice(-3000)}`));
      });
    });
  }

  /** SIGKILL: the process gets no chance to finish anything. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
}
