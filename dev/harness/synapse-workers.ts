// Synapse in worker mode on loopback: Redis and HAProxy from Debian's packages on the host, the main process and
// every worker from the chroot, all on one data dir. What runs is given by a spec (infra/synapse/local-profile.ts
// renders it with the same worker plan as the cluster); this file only allocates ports, writes files, starts,
// stops and kills.
import { randomBytes } from "node:crypto";
import { cp, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureSynapseChroot, type SynapseChroot } from "./chroot.ts";
import { type RunningHaproxy, startHaproxy } from "./haproxy.ts";
import type { ManagedProcess } from "./managed-process.ts";
import { freePort } from "./process.ts";
import { type RedisServer, startRedis } from "./redis.ts";
import { prepareDataDir, type RunningSynapse, synapseProcess, writeFiles } from "./synapse.ts";

export interface ProcessPorts {
  readonly client: number;
  readonly replication: number;
  readonly metrics: number;
}

export interface ClusterLayout {
  /** The data dir as Synapse (in the chroot) sees it. */
  readonly dataDir: string;
  /** The same directory as the host (HAProxy, Redis) sees it. */
  readonly hostDataDir: string;
  readonly ports: (instance: string) => ProcessPorts;
  readonly proxyPorts: { readonly internal: number; readonly public: number; readonly stats: number };
  readonly redis: { readonly host: string; readonly port: number };
}

export interface ClusterSpec {
  /** Files to write, relative to the data dir. */
  readonly files: Record<string, string>;
  /** The main process first, then the workers. */
  readonly processes: readonly {
    readonly instance: string;
    readonly app: string;
    /** `--config-path` files relative to the data dir, in order. */
    readonly configFiles: readonly string[];
    /** The port whose `/health` says it is up. */
    readonly healthPort: number;
  }[];
  /** haproxy.cfg, relative to the data dir. */
  readonly proxyConfigFile: string;
}

export interface SynapseClusterOptions {
  chroot?: SynapseChroot;
  /** Every process's instance name (ports are allocated for each, and for `main`). */
  instances: readonly string[];
  redisPassword: string;
  spec: (layout: ClusterLayout) => ClusterSpec | Promise<ClusterSpec>;
  startTimeoutMs?: number;
}

/** A worker-mode Synapse; as a `RunningSynapse`, its URL is the proxy's internal listener. */
export interface RunningSynapseCluster extends RunningSynapse {
  /** The proxy's public listener (what the Ingress would reach). */
  readonly publicUrl: string;
  readonly redis: RedisServer;
  readonly proxy: RunningHaproxy;
  readonly layout: ClusterLayout;
  /** Each Synapse process by instance name (`main` and the workers). */
  readonly processes: ReadonlyMap<string, ManagedProcess>;
  /** Starts what is not running and waits until the proxy sees every server UP. */
  waitUntilServing(): Promise<void>;
}

const TXREDISAPI_DIR = fileURLToPath(new URL("./txredisapi", import.meta.url));
/** Where, in a worker-mode data dir, Synapse finds the modules Debian lacks (PYTHONPATH). */
export const PYTHON_DIR = "python";

export async function startSynapseCluster(options: SynapseClusterOptions): Promise<RunningSynapseCluster> {
  const chroot = options.chroot ?? (await ensureSynapseChroot());
  const { dataDir, hostDataDir } = await prepareDataDir(chroot, undefined);
  const portsByInstance = new Map<string, ProcessPorts>();
  for (const instance of ["main", ...options.instances.filter((i) => i !== "main")])
    portsByInstance.set(instance, {
      client: await freePort(),
      replication: await freePort(),
      metrics: await freePort(),
    });
  const proxyPorts = { internal: await freePort(), public: await freePort(), stats: await freePort() };

  const started: { stop(): Promise<void> }[] = [];
  try {
    const redis = await startRedis({ password: options.redisPassword, logDir: join(hostDataDir, "redis") });
    started.push(redis);
    const layout: ClusterLayout = {
      dataDir,
      hostDataDir,
      ports: (instance) => {
        const ports = portsByInstance.get(instance);
        if (!ports) throw new Error(`no ports were allocated for Synapse instance ${instance}`);
        return ports;
      },
      proxyPorts,
      redis: { host: redis.host, port: redis.port },
    };
    const spec = await options.spec(layout);
    await writeFiles(hostDataDir, spec.files);
    // Synapse's Redis client library, which Debian does not package (dev/harness/txredisapi says more).
    await cp(TXREDISAPI_DIR, join(hostDataDir, PYTHON_DIR), { recursive: true });
    const processes = new Map<string, ManagedProcess>();
    for (const planned of spec.processes)
      processes.set(
        planned.instance,
        synapseProcess({
          chroot,
          name: `Synapse ${planned.instance}`,
          app: planned.app,
          configPaths: planned.configFiles.map((file) => `${dataDir}/${file}`),
          logPath: join(hostDataDir, `${planned.instance}.log`),
          healthUrl: `http://127.0.0.1:${planned.healthPort}/health`,
          pythonPath: `${dataDir}/${PYTHON_DIR}`,
          ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
        }),
      );
    const [main, ...workers] = [...processes.values()];
    if (!main) throw new Error("the spec has no Synapse process");
    const synapseStopper = {
      stop: () => Promise.all([...processes.values()].map((p) => p.stop())).then(() => {}),
    };
    started.push(synapseStopper);
    // The main process first: it migrates the schema the workers check on start.
    const startSynapse = async () => {
      await main.start();
      await Promise.all(workers.map((worker) => worker.start()));
    };
    await startSynapse();
    const proxy = await startHaproxy({
      configPath: join(hostDataDir, spec.proxyConfigFile),
      logPath: join(hostDataDir, "haproxy.log"),
      statsPort: proxyPorts.stats,
    });
    started.push(proxy);
    await proxy.waitForServersUp();

    const mainPorts = layout.ports("main");
    const waitUntilServing = async () => {
      await redis.process.start();
      await startSynapse();
      await proxy.process.start();
      await proxy.waitForServersUp();
    };
    const stopAll = async () => {
      await proxy.stop();
      await synapseStopper.stop();
      await redis.process.stop();
    };
    return {
      chroot,
      paths: { dataDir, port: proxyPorts.internal, metricsPort: mainPorts.metrics },
      baseUrl: `http://127.0.0.1:${proxyPorts.internal}`,
      publicUrl: `http://127.0.0.1:${proxyPorts.public}`,
      metricsUrl: `http://127.0.0.1:${mainPorts.metrics}`,
      hostDataDir,
      hostPath: (relative) => join(hostDataDir, relative),
      redis,
      proxy,
      layout,
      processes,
      pids: () => [...processes.values()].flatMap((p) => (p.alive() && p.pid !== undefined ? [p.pid] : [])),
      log: async () =>
        (
          await Promise.all(
            [...processes].map(async ([name, p]) => `==> ${name} <==\n${(await p.log()).slice(-20_000)}`),
          )
        ).join("\n"),
      start: waitUntilServing,
      waitUntilServing,
      stop: stopAll,
      // Every Synapse process at once (the monolith's "Synapse killed"); Redis and the proxy keep running.
      kill: async (signal) => {
        await Promise.all([...processes.values()].map((p) => p.kill(signal)));
      },
      async dispose() {
        await stopAll();
        await redis.stop();
        await rm(hostDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const child of started.reverse()) await child.stop().catch(() => {});
    await rm(hostDataDir, { recursive: true, force: true }).catch(() => {});
    throw error;
  }
}

/** A password for the harness's Redis. */
export const newRedisPassword = () => randomBytes(24).toString("base64url");
