// HAProxy from Debian's `haproxy` package (2.6, the cluster image's branch) on the config the worker plan renders.
import { HarnessUnavailableError } from "./errors.ts";
import { ManagedProcess } from "./managed-process.ts";
import { run, waitFor, which } from "./process.ts";

export interface RunningHaproxy {
  readonly process: ManagedProcess;
  /** Each backend server's state as HAProxy's health checks see it (`UP`, `DOWN`, `MAINT`...). */
  serverStates(): Promise<{ backend: string; server: string; status: string }[]>;
  /** Waits until every server of the given backends is UP (or every backend's, without a list). */
  waitForServersUp(options?: { backends?: readonly string[]; timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

async function haproxyBinary(): Promise<string> {
  const binary = await which("haproxy");
  if (!binary)
    throw new HarnessUnavailableError(
      "Synapse's worker mode needs HAProxy: install Debian's haproxy (apt-get install haproxy; .ci/run does).",
    );
  return binary;
}

/** `haproxy -c`: HAProxy's own check of a config file. */
export async function checkHaproxyConfig(configPath: string): Promise<{ ok: boolean; output: string }> {
  const result = await run(await haproxyBinary(), ["-c", "-f", configPath]);
  return { ok: result.code === 0, output: `${result.stdout}${result.stderr}` };
}

export async function startHaproxy(options: {
  configPath: string;
  logPath: string;
  /** The `stats` frontend's port (`/healthz`, `/stats`, `/metrics`). */
  statsPort: number;
}): Promise<RunningHaproxy> {
  const statsUrl = `http://127.0.0.1:${options.statsPort}`;
  const process = new ManagedProcess({
    name: "HAProxy",
    command: await haproxyBinary(),
    // -db: stay in the foreground, log to the terminal.
    args: ["-db", "-f", options.configPath],
    env: { PATH: globalThis.process.env.PATH },
    logPath: options.logPath,
    ready: async () => (await fetch(`${statsUrl}/healthz`)).ok,
    readyDescription: `GET ${statsUrl}/healthz`,
    startTimeoutMs: 15_000,
    stopGraceMs: 5_000,
  });
  await process.start();
  const serverStates = async () => {
    const csv = await (await fetch(`${statsUrl}/stats;csv`)).text();
    const [header = "", ...rows] = csv.trim().split("\n");
    const columns = header.replace(/^# /, "").split(",");
    const at = (row: string[], name: string) => row[columns.indexOf(name)] ?? "";
    return rows
      .map((line) => line.split(","))
      .filter((row) => !["FRONTEND", "BACKEND"].includes(at(row, "svname")))
      .map((row) => ({ backend: at(row, "pxname"), server: at(row, "svname"), status: at(row, "status") }));
  };
  return {
    process,
    serverStates,
    async waitForServersUp({ backends, timeoutMs = 60_000 } = {}) {
      let last: Awaited<ReturnType<typeof serverStates>> = [];
      await waitFor(
        async () => {
          last = (await serverStates()).filter((s) => !backends || backends.includes(s.backend));
          return last.length > 0 && last.every((s) => s.status === "UP");
        },
        {
          timeoutMs,
          intervalMs: 200,
          describe: () =>
            `HAProxy's servers are not all UP: ${last.map((s) => `${s.backend}/${s.server} ${s.status}`).join(", ")}`,
        },
      );
    },
    stop: () => process.stop(),
  };
}
