// What the bench reads from /proc, and the cores it gives each side. Memory: a process's RSS and its peak. CPU,
// per message: each side on its own core (`taskset`: Synapse and PostgreSQL on one, the bridge
// and the load generator on the other) and the CPU time each process spent during a workload window, read from
// /proc/<pid>/stat. PostgreSQL's backends are counted for whoever they serve (Synapse's database user or the
// bridge's), read from the title PostgreSQL gives each backend. The parsing and arithmetic are pure; the rest reads
// /proc and runs taskset.
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** Who a process works for. */
export type CpuGroup = "synapse" | "synapseDb" | "bridge" | "bridgeDb" | "postgres" | "loadGenerator";
export const CPU_GROUPS: readonly CpuGroup[] = [
  "synapse",
  "synapseDb",
  "bridge",
  "bridgeDb",
  "postgres",
  "loadGenerator",
];

/** CPU milliseconds per message received, by group. */
export type CpuPerMessage = Record<CpuGroup, number>;

/** utime + stime (clock ticks, every thread of the process) from the text of /proc/<pid>/stat. */
export function parseStatTicks(stat: string): number {
  // The command name (field 2) is in parentheses and may hold spaces and ")": fields are counted after the last ")".
  const close = stat.lastIndexOf(")");
  if (close < 0) throw new Error("not a /proc/<pid>/stat line");
  const fields = stat
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // fields[0] is field 3 (state), so utime (field 14) and stime (field 15) are fields[11] and fields[12].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime))
    throw new Error("not a /proc/<pid>/stat line: no utime/stime");
  return utime + stime;
}

/** The parent pid (field 4) from the text of /proc/<pid>/stat. */
export function parseStatParent(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/**
 * Whose work a PostgreSQL process does, from its title (/proc/<pid>/cmdline, "postgres: <user> <database> <client>
 * <activity>"): Synapse's database users (synapse, synapse_default) and the bridge's; anything else (the
 * checkpointer, the WAL writer, autovacuum, the bench's own admin connections) is PostgreSQL's.
 */
export function postgresGroup(cmdline: string): CpuGroup {
  const user = /^postgres: (\S+) \S+ \S+/.exec(cmdline.replaceAll("\0", " ").trim())?.[1];
  if (user?.startsWith("synapse")) return "synapseDb";
  if (user === "bridge") return "bridgeDb";
  return "postgres";
}

/** Ticks per process at one moment, each with its group and, for the per-process breakdown, its name. */
export type CpuSample = ReadonlyMap<number, { group: CpuGroup; ticks: number; name?: string | undefined }>;

/**
 * CPU milliseconds per message, by group, between two samples. A process that started in between counts from zero;
 * one that exited in between is lost (its last ticks cannot be read), so the figures are a floor.
 */
export function cpuPerMessage(
  before: CpuSample,
  after: CpuSample,
  messages: number,
  ticksPerSecond: number,
): CpuPerMessage {
  const ticks = Object.fromEntries(CPU_GROUPS.map((g) => [g, 0])) as Record<CpuGroup, number>;
  for (const [pid, now] of after) {
    const then = before.get(pid);
    ticks[now.group] += now.ticks - (then?.group === now.group ? then.ticks : 0);
  }
  const perMessage = (n: number) =>
    messages > 0 ? Math.round(((n * 1000) / ticksPerSecond / messages) * 100) / 100 : 0;
  return Object.fromEntries(CPU_GROUPS.map((g) => [g, perMessage(ticks[g])])) as CpuPerMessage;
}

/**
 * CPU milliseconds per message of each named process (worker mode: `main`, each worker, Redis, the proxy) between two
 * samples; the same floor as `cpuPerMessage`. Processes without a name are left out.
 */
export function cpuPerMessageByName(
  before: CpuSample,
  after: CpuSample,
  messages: number,
  ticksPerSecond: number,
): Record<string, number> {
  const ticks = new Map<string, number>();
  for (const [pid, now] of after) {
    if (now.name === undefined) continue;
    const then = before.get(pid);
    ticks.set(now.name, (ticks.get(now.name) ?? 0) + now.ticks - (then?.name === now.name ? then.ticks : 0));
  }
  return Object.fromEntries(
    [...ticks].map(([name, n]) => [
      name,
      messages > 0 ? Math.round(((n * 1000) / ticksPerSecond / messages) * 100) / 100 : 0,
    ]),
  );
}

/** What a side costs per message: its process and the database backends serving it. */
export const sideCost = (cpu: CpuPerMessage, side: "synapse" | "bridge") =>
  Math.round((side === "synapse" ? cpu.synapse + cpu.synapseDb : cpu.bridge + cpu.bridgeDb) * 100) / 100;

/** The processes a workload window measures. */
export interface Measured {
  /** Every Synapse process running now. */
  synapse: readonly number[];
  /** The bridge service, when the workload goes through it. */
  bridge?: number | undefined;
  /** PostgreSQL's postmaster; its children are found at each sample. */
  postmaster: number;
  /**
   * The rest of the homeserver side (worker mode's Redis and proxy): counted in the `synapse` group and pinned with
   * it.
   */
  helpers?: readonly number[] | undefined;
  /** Names for a per-process breakdown (worker mode: each Synapse instance, Redis, the proxy), by pid. */
  names?: ReadonlyMap<number, string> | undefined;
}

async function readOr<T>(path: string, parse: (text: string) => T): Promise<T | undefined> {
  try {
    return parse(await readFile(path, "utf8"));
  } catch {
    return undefined; // the process exited meanwhile
  }
}

/** The children of `parent`, from the parent field of every /proc/<pid>/stat. */
async function childrenOf(parent: number): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const parents = await Promise.all(pids.map((pid) => readOr(`/proc/${pid}/stat`, parseStatParent)));
  return pids.filter((_, i) => parents[i] === parent);
}

/** The CPU ticks of every measured process now (the load generator is this process). */
export async function sampleCpu(measured: Measured): Promise<CpuSample> {
  const sample = new Map<number, { group: CpuGroup; ticks: number; name?: string | undefined }>();
  const add = async (pid: number, group: CpuGroup) => {
    const ticks = await readOr(`/proc/${pid}/stat`, parseStatTicks);
    if (ticks !== undefined) sample.set(pid, { group, ticks, name: measured.names?.get(pid) });
  };
  await add(process.pid, "loadGenerator");
  for (const pid of [...measured.synapse, ...(measured.helpers ?? [])]) await add(pid, "synapse");
  if (measured.bridge !== undefined) await add(measured.bridge, "bridge");
  await add(measured.postmaster, "postgres");
  for (const pid of await childrenOf(measured.postmaster)) {
    const cmdline = await readOr(`/proc/${pid}/cmdline`, (text) => text);
    if (cmdline !== undefined) await add(pid, postgresGroup(cmdline));
  }
  return sample;
}

/** The postmaster's pid: the first line of postmaster.pid in the cluster's data directory. */
export async function postmasterPid(postgresBaseDir: string): Promise<number> {
  const text = await readFile(join(postgresBaseDir, "data", "postmaster.pid"), "utf8");
  const pid = Number(text.split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid in ${postgresBaseDir}/data/postmaster.pid`);
  return pid;
}

/** The two cores: Synapse and PostgreSQL on `homeserver`, the bridge and the load generator on `bridge`. */
export interface CorePlan {
  homeserver: number;
  bridge: number;
}

/**
 * The plan on this machine, or why there is none (fewer than two cores, or no `taskset`: util-linux, Essential in
 * Debian). The last two cores, so core 0 (where interrupts land) hosts the homeserver side on a two-core machine.
 */
export async function corePlan(cpus: number): Promise<CorePlan | string> {
  if (cpus < 2) return `${cpus} core: nothing to isolate`;
  try {
    await exec("taskset", ["-V"]);
  } catch {
    return "taskset not found (Debian: apt-get install util-linux)";
  }
  return { homeserver: cpus - 2, bridge: cpus - 1 };
}

/** Pins every thread of each process to `core` (its later children inherit it). */
export async function pin(pids: readonly number[], core: number): Promise<void> {
  for (const pid of pids)
    await exec("taskset", ["-a", "-p", "-c", String(core), String(pid)]).catch((error: Error) => {
      // A process that exited meanwhile (a PostgreSQL backend closing) has nothing left to pin.
      if (!/No such process|failed to (get|set) pid/.test(error.message)) throw error;
    });
}

/**
 * Applies the plan to the measured processes: Synapse, the postmaster and its current children (later backends
 * inherit the postmaster's core) on the homeserver core; the bridge and this process on the bridge core. Called
 * before every window, since restarted processes inherit this process's core.
 */
export async function isolate(plan: CorePlan, measured: Measured): Promise<void> {
  await pin(
    [
      ...measured.synapse,
      ...(measured.helpers ?? []),
      measured.postmaster,
      ...(await childrenOf(measured.postmaster)),
    ],
    plan.homeserver,
  );
  await pin([process.pid, ...(measured.bridge === undefined ? [] : [measured.bridge])], plan.bridge);
}

/** Clock ticks per second (`getconf CLK_TCK`), the unit of /proc/<pid>/stat's times. */
export async function clockTicksPerSecond(): Promise<number> {
  const { stdout } = await exec("getconf", ["CLK_TCK"]);
  const ticks = Number(stdout.trim());
  if (!Number.isInteger(ticks) || ticks <= 0) throw new Error(`getconf CLK_TCK printed "${stdout.trim()}"`);
  return ticks;
}

/** Resident set size now and its peak (the high-water mark: what a memory limit must allow), from /proc (MB). */
export async function memoryMb(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const mb = (field: string) =>
    Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]) / 1024);
  return { rss: mb("VmRSS"), peak: mb("VmHWM") };
}

/** The CPU ticks (utime + stime) of one process now. */
export async function processTicks(pid: number): Promise<number> {
  return parseStatTicks(await readFile(`/proc/${pid}/stat`, "utf8"));
}
