// `npm run bench`: the system measured the way its users meet it, beside the limit on the same machine (Synapse
// spoken to directly), on the harness's real Synapse + PostgreSQL. Starts what the phases share (the stack on the
// shipped homeserver.yaml, conversations, the bridge service), runs the phases of phases/index.ts, writes
// bench/results/<name>.json and .svg and prints a table with ratios. Not part of `npm test`.
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { startBridge } from "@nova-matrix/bridge";
import { ensureSynapseChroot } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack } from "@nova-matrix/dev/harness/test-stack";
import pino from "pino";
import { BridgeUnderTest, WORKLOAD_SERVICE_ENV } from "./bridge-under-test.ts";
import { parseOptions } from "./options.ts";
import type { Bench, Stoppable } from "./phase.ts";
import { PHASES } from "./phases/index.ts";
import { clockTicksPerSecond, corePlan } from "./proc.ts";
import { formatReport, type Results, resultsChart } from "./report.ts";
import { loadAverage, runPhases, skippableNames } from "./runner.ts";
import { createConversations } from "./runs.ts";

const options = parseOptions(process.argv, skippableNames(PHASES));
const log = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

/**
 * What must not outlive an interrupted bench (Ctrl-C, SIGTERM): Synapse, PostgreSQL and bridge processes are
 * children that would otherwise keep running, holding ports and CPU. Stopped newest first.
 */
const running = new Set<Stoppable>();
const track = (child: Stoppable) => {
  running.add(child);
  return () => void running.delete(child);
};
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    log(`${signal}: stopping what the bench started`);
    void (async () => {
      for (const child of [...running].reverse()) await child.stop().catch(() => {});
      process.exit(130);
    })();
  });

const started = Date.now();
const cpu = { plan: await corePlan(cpus().length), ticksPerSecond: await clockTicksPerSecond() };
const results: Results = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    node: process.version,
    synapse: "", // the harness's, once its chroot is found below
    postgres: "15",
    loadAverageAtStart: loadAverage(),
    loadAverageAtEnd: [],
    isolation:
      typeof cpu.plan === "string"
        ? `none: ${cpu.plan}`
        : `taskset: Synapse and PostgreSQL on CPU ${cpu.plan.homeserver}, the bridge and the load generator on CPU ${cpu.plan.bridge}`,
  },
  options,
  raw: [],
  bridge: [],
  repeats: { raw: [], bridge: [], default: [], shipped: [] },
  tuning: { shipped: [], default: [] },
  scale: [],
  notes: [],
};

log("starting PostgreSQL + Synapse (infra's local profile: the shipped homeserver.yaml)");
const chroot = await ensureSynapseChroot();
results.machine.synapse = `matrix-synapse ${chroot.version} (Debian sid)`;
const stack = await startTestStack({ serverName: "bench.test", chroot });
track(stack);
const credentials = {
  apiToken: randomBytes(32).toString("base64url"),
  signingKey: randomBytes(32).toString("base64url"),
};
const library = await startBridge({
  config: stack.config,
  store: await stack.newBridgeDatabase(),
  logger: pino({ level: "silent" }),
  sync: false,
});
const service = new ServiceProcess({
  config: stack.config,
  databaseUrl: await stack.newBridgeDatabase(),
  ...credentials,
  env: WORKLOAD_SERVICE_ENV,
});
const bridge = new BridgeUnderTest(service, credentials.apiToken);
track(bridge);
let failed: string[];
try {
  const count = Math.max(...options.concurrency, 8);
  const conversations = await createConversations(library, {
    prefix: "bench",
    from: 0,
    to: count,
    concurrency: options.createConcurrency,
  });
  log(`${conversations.ids.length} conversations in ${conversations.seconds.toFixed(1)} s`);
  const bench: Bench = {
    options,
    results,
    stack,
    chroot,
    conversations,
    library,
    bridge,
    credentials,
    cpu,
    skipped: (part) => options.skip.includes(part),
    track,
    log,
  };
  failed = await runPhases(PHASES, bench);
} finally {
  await bridge.stop().catch(() => {});
  await library.stop().catch(() => {});
  await stack.stop().catch(() => {});
}

results.machine.loadAverageAtEnd = loadAverage();
results.totalSeconds = Math.round((Date.now() - started) / 1000);
const name = options.name ?? results.date.slice(0, 10);
await mkdir(options.out, { recursive: true });
const jsonPath = join(options.out, `${name}.json`);
const svgPath = join(options.out, `${name}.svg`);
await writeFile(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
await writeFile(svgPath, resultsChart(results));
console.log(formatReport(results));
log(`wrote ${jsonPath} and ${svgPath} in ${results.totalSeconds} s`);
if (failed.length > 0) {
  log(`failed: ${failed.join(", ")} (see the notes)`);
  process.exitCode = 1;
}
