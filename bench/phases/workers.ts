// Monolith vs worker mode: the same workload through the bridge (POST /v1/conversations/{id}/messages, read on
// /v1/events) on the shared monolith and on Synapse in worker mode (the harness's: main, sync and client workers,
// an event persister, media and background workers, Redis, HAProxy), each with its own PostgreSQL and bridge
// service. The two alternate `--repeat` times, one homeserver running at a time, under the same core plan (the whole
// homeserver side, Redis and the proxy included, on one core); the report compares the medians and splits the CPU
// per message by process.
import { startBridge } from "@nova-matrix/bridge";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { startTestStack } from "@nova-matrix/dev/harness/test-stack";
import pino from "pino";
import { BridgeUnderTest, WORKLOAD_SERVICE_ENV } from "../bridge-under-test.ts";
import type { Phase } from "../phase.ts";
import { bridgeRuns, createConversations } from "../runs.ts";
import { medianRuns } from "../stats.ts";

export const workers: Phase = {
  name: "workers",
  async run(bench) {
    const { options, results, stack } = bench;
    const comparison: NonNullable<typeof results.workers> = {
      monolith: [],
      workers: [],
      repeats: { monolith: [], workers: [] },
    };
    results.workers = comparison;
    bench.log("worker mode: starting Synapse's workers, Redis and HAProxy (the monolith stopped meanwhile)");
    await stack.synapse.stop();
    const workerStack = await startTestStack({
      serverName: stack.serverName,
      chroot: bench.chroot,
      workers: true,
    });
    const untrack = bench.track(workerStack);
    const cluster = workerStack.cluster;
    const service = new ServiceProcess({
      config: workerStack.config,
      databaseUrl: await workerStack.newBridgeDatabase(),
      ...bench.credentials,
      env: WORKLOAD_SERVICE_ENV,
    });
    const bridge = new BridgeUnderTest(service, bench.credentials.apiToken);
    const untrackBridge = bench.track(bridge);
    try {
      if (!cluster) throw new Error("the test stack started without worker mode");
      const library = await startBridge({
        config: workerStack.config,
        store: await workerStack.newBridgeDatabase(),
        logger: pino({ level: "silent" }),
        sync: false,
      });
      const { ids } = await createConversations(library, {
        prefix: "workers",
        from: 0,
        to: Math.max(...options.concurrency),
        concurrency: options.createConcurrency,
      }).finally(() => library.stop());
      const loaded = { synapse: workerStack.synapse, postgres: workerStack.postgres, cluster };
      for (let repeat = 1; repeat <= options.repeat; repeat++) {
        bench.log(`monolith vs worker mode ${repeat}/${options.repeat}: worker mode, then the monolith`);
        if (repeat > 1) {
          await stack.synapse.stop();
          await cluster.start();
        }
        await bridge.start();
        comparison.repeats.workers.push(await bridgeRuns(bench, "worker mode", bridge, ids, loaded));
        await bridge.stop();
        await cluster.stop();
        await stack.synapse.start();
        await bench.bridge.start();
        comparison.repeats.monolith.push(
          await bridgeRuns(bench, "monolith", bench.bridge, bench.conversations.ids),
        );
        await bench.bridge.stop();
      }
    } finally {
      await bridge.stop().catch(() => {});
      untrackBridge();
      await workerStack.stop();
      untrack();
      // Left running, whatever failed.
      await stack.synapse.start();
    }
    comparison.monolith = medianRuns(comparison.repeats.monolith);
    comparison.workers = medianRuns(comparison.repeats.workers);
  },
};
