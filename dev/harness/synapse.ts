import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ensureSynapseChroot, type SynapseChroot } from "./chroot.ts";
import { freePort, run, waitFor } from "./process.ts";

/** Where things are, as Synapse inside the chroot sees them. */
export interface SynapsePaths {
  /** The data directory inside the chroot (media store, logs, config files). */
  readonly dataDir: string;
  /** Port of the client listener (`/health`, `/_matrix/...`). */
  readonly port: number;
  /** Port for a separate metrics listener, free for the config to use. */
  readonly metricsPort: number;
}

export interface SynapseOptions {
  /** Default: the cached chroot (built on first use). */
  chroot?: SynapseChroot;
  /** Files to write into the data dir, by path relative to it (homeserver.yaml, signing key, registrations...). */
  files: (paths: SynapsePaths) => Record<string, string> | Promise<Record<string, string>>;
  /** Config files to pass with `--config-path`, relative to the data dir; later ones override earlier ones. */
  configFiles?: readonly string[];
  /** A stable data dir name (under the chroot's /var/lib/nova-harness) to keep data across runs; default: a fresh one. */
  name?: string;
  /** Fixed ports (a kept local stack); default: free ones. */
  port?: number;
  metricsPort?: number;
  /** How long to wait for `/health`. */
  startTimeoutMs?: number;
}

/** A Synapse process on loopback. */
export interface RunningSynapse {
  readonly chroot: SynapseChroot;
  readonly paths: SynapsePaths;
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  readonly metricsUrl: string;
  /** The data dir as a host path. */
  readonly hostDataDir: string;
  /** Host path of a file in the data dir. */
  hostPath(relative: string): string;
  /** Everything Synapse printed so far (stdout and stderr). */
  log(): Promise<string>;
  /** Starts it again after `stop()` or `kill()` and waits for `/health`. */
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** Sends a signal (for fault tests, `SIGKILL`) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops it and removes a fresh (unnamed) data dir. */
  dispose(): Promise<void>;
}

const HARNESS_DIR = "/var/lib/nova-harness";
const LOG_FILE = "synapse.stdout.log";

/** Runs a command inside the chroot. */
export function runInChroot(chroot: SynapseChroot, args: readonly string[]) {
  return run("chroot", [chroot.root, ...args], { env: chrootEnv() });
}

function chrootEnv(): NodeJS.ProcessEnv {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
    HOME: "/root",
    PYTHONDONTWRITEBYTECODE: "1",
  };
}

/** `python3 -m synapse.config -c FILE...` inside the chroot: Synapse's own config check, without starting. */
export async function checkSynapseConfig(chroot: SynapseChroot, configPaths: readonly string[]) {
  const args = ["python3", "-m", "synapse.config", ...configPaths.flatMap((path) => ["-c", path])];
  const result = await runInChroot(chroot, args);
  return { ok: result.code === 0, output: `${result.stdout}${result.stderr}` };
}

/** Writes the data dir and starts Synapse on it; resolves once `GET /health` answers `OK`. */
export async function startSynapse(options: SynapseOptions): Promise<RunningSynapse> {
  const chroot = options.chroot ?? (await ensureSynapseChroot());
  const name = options.name ?? `run-${Date.now()}-${randomBytes(4).toString("hex")}`;
  const dataDir = `${HARNESS_DIR}/${name}`;
  const hostDataDir = join(chroot.root, dataDir);
  const paths: SynapsePaths = {
    dataDir,
    port: options.port ?? (await freePort()),
    metricsPort: options.metricsPort ?? (await freePort()),
  };
  await mkdir(hostDataDir, { recursive: true });
  for (const [relative, content] of Object.entries(await options.files(paths))) {
    const target = join(hostDataDir, relative);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content, { mode: 0o600 });
  }
  const configFiles = options.configFiles ?? ["homeserver.yaml"];
  const baseUrl = `http://127.0.0.1:${paths.port}`;
  const logPath = join(hostDataDir, LOG_FILE);
  let child: ChildProcess | undefined;
  let logStream: WriteStream | undefined;

  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const log = async () => readFile(logPath, "utf8").catch(() => "");

  const start = async () => {
    if (alive()) return;
    logStream = createWriteStream(logPath, { flags: "a" });
    const args = [
      chroot.root,
      "python3",
      "-m",
      "synapse.app.homeserver",
      ...configFiles.flatMap((file) => ["--config-path", `${dataDir}/${file}`]),
    ];
    const started = spawn("chroot", args, { env: chrootEnv(), stdio: ["ignore", "pipe", "pipe"] });
    child = started;
    started.stdout?.pipe(logStream, { end: false });
    started.stderr?.pipe(logStream, { end: false });
    await waitFor(
      async () => {
        if (started.exitCode !== null || started.signalCode !== null) {
          throw new Error(`Synapse exited (${started.exitCode ?? started.signalCode}) during start-up`);
        }
        const response = await fetch(`${baseUrl}/health`);
        return response.ok && (await response.text()) === "OK";
      },
      {
        timeoutMs: options.startTimeoutMs ?? 60_000,
        describe: () => `Synapse did not answer GET ${baseUrl}/health with OK`,
      },
    ).catch(async (error: Error) => {
      await stop();
      throw new Error(`${error.message}. Its output (${logPath}):\n${(await log()).slice(-6000)}`);
    });
  };

  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    const running = child;
    if (!running || !alive()) return;
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
    running.kill(signal);
    await exited;
    logStream?.end();
  };

  const stop = async () => {
    const running = child;
    if (!running || !alive()) return;
    const timer = setTimeout(() => running.kill("SIGKILL"), 10_000);
    await kill("SIGTERM");
    clearTimeout(timer);
  };

  await start();
  return {
    chroot,
    paths,
    baseUrl,
    metricsUrl: `http://127.0.0.1:${paths.metricsPort}`,
    hostDataDir,
    hostPath: (relative) => join(hostDataDir, relative),
    log,
    start,
    stop,
    kill,
    async dispose() {
      await stop();
      if (!options.name) await rm(hostDataDir, { recursive: true, force: true });
    },
  };
}
