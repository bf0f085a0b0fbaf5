import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ensureSynapseChroot, type SynapseChroot } from "./chroot.ts";
import { ManagedProcess } from "./managed-process.ts";
import { freePort, run } from "./process.ts";

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
  /** Process ids of every Synapse process running now (for CPU accounting from /proc). */
  pids(): number[];
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
export function runInChroot(
  chroot: SynapseChroot,
  args: readonly string[],
  extraEnv: NodeJS.ProcessEnv = {},
) {
  return run("chroot", [chroot.root, ...args], { env: { ...chrootEnv(), ...extraEnv } });
}

export function chrootEnv(): NodeJS.ProcessEnv {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
    HOME: "/root",
    PYTHONDONTWRITEBYTECODE: "1",
  };
}

/** `python3 -m synapse.config -c FILE...` inside the chroot: Synapse's own config check, without starting. */
export async function checkSynapseConfig(
  chroot: SynapseChroot,
  configPaths: readonly string[],
  options: { pythonPath?: string } = {},
) {
  const args = ["python3", "-m", "synapse.config", ...configPaths.flatMap((path) => ["-c", path])];
  const result = await runInChroot(
    chroot,
    args,
    options.pythonPath ? { PYTHONPATH: options.pythonPath } : {},
  );
  return { ok: result.code === 0, output: `${result.stdout}${result.stderr}` };
}

/** One Synapse process (the main process or a worker) in the chroot, ready once `healthUrl` answers `OK`. */
export function synapseProcess(input: {
  chroot: SynapseChroot;
  name: string;
  /** `synapse.app.homeserver`, `synapse.app.generic_worker`... */
  app: string;
  /** `--config-path` files as Synapse sees them, in order. */
  configPaths: readonly string[];
  logPath: string;
  healthUrl: string;
  startTimeoutMs?: number;
  /** Extra module directories inside the chroot (worker mode: dev/harness/txredisapi). */
  pythonPath?: string;
}): ManagedProcess {
  return new ManagedProcess({
    name: input.name,
    command: "chroot",
    args: [
      input.chroot.root,
      "python3",
      "-m",
      input.app,
      ...input.configPaths.flatMap((path) => ["--config-path", path]),
    ],
    env: { ...chrootEnv(), ...(input.pythonPath === undefined ? {} : { PYTHONPATH: input.pythonPath }) },
    logPath: input.logPath,
    ready: async () => {
      const response = await fetch(input.healthUrl);
      return response.ok && (await response.text()) === "OK";
    },
    readyDescription: `GET ${input.healthUrl} answering OK`,
    startTimeoutMs: input.startTimeoutMs ?? 60_000,
  });
}

/** Writes files into a (new or named) data dir under the chroot's harness directory. */
export async function prepareDataDir(
  chroot: SynapseChroot,
  name: string | undefined,
): Promise<{ dataDir: string; hostDataDir: string; fresh: boolean }> {
  const dirName = name ?? `run-${Date.now()}-${randomBytes(4).toString("hex")}`;
  const dataDir = `${HARNESS_DIR}/${dirName}`;
  const hostDataDir = join(chroot.root, dataDir);
  await mkdir(hostDataDir, { recursive: true });
  return { dataDir, hostDataDir, fresh: name === undefined };
}

/** Writes files (relative path -> content, mode 0600) under a directory. */
export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [relative, content] of Object.entries(files)) {
    const target = join(dir, relative);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content, { mode: 0o600 });
  }
}

/** Writes the data dir and starts Synapse on it; resolves once `GET /health` answers `OK`. */
export async function startSynapse(options: SynapseOptions): Promise<RunningSynapse> {
  const chroot = options.chroot ?? (await ensureSynapseChroot());
  const { dataDir, hostDataDir, fresh } = await prepareDataDir(chroot, options.name);
  const paths: SynapsePaths = {
    dataDir,
    port: options.port ?? (await freePort()),
    metricsPort: options.metricsPort ?? (await freePort()),
  };
  await writeFiles(hostDataDir, await options.files(paths));
  const configFiles = options.configFiles ?? ["homeserver.yaml"];
  const baseUrl = `http://127.0.0.1:${paths.port}`;
  const main = synapseProcess({
    chroot,
    name: "Synapse",
    app: "synapse.app.homeserver",
    configPaths: configFiles.map((file) => `${dataDir}/${file}`),
    logPath: join(hostDataDir, LOG_FILE),
    healthUrl: `${baseUrl}/health`,
    ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
  });
  await main.start();
  return {
    chroot,
    paths,
    baseUrl,
    metricsUrl: `http://127.0.0.1:${paths.metricsPort}`,
    hostDataDir,
    hostPath: (relative) => join(hostDataDir, relative),
    pids: () => (main.pid === undefined ? [] : [main.pid]),
    log: () => main.log(),
    start: () => main.start(),
    stop: () => main.stop(),
    kill: (signal) => main.kill(signal),
    async dispose() {
      await main.stop();
      if (fresh) await rm(hostDataDir, { recursive: true, force: true });
    },
  };
}
