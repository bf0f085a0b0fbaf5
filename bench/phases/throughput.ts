// Throughput and latency, raw Synapse vs through the bridge: the same closed-loop workload sent to Synapse directly
// (PUT /send, read on a /sync long-poll) and to the bridge service (POST /v1/conversations/{id}/messages, read on
// /v1/events). Raw and bridge alternate `--repeat` times, the bridge stopped during raw runs, so each pair shares
// the machine's conditions; the report compares the medians.
import type { Bench, Phase } from "../phase.ts";
import { rawRuns, runAtEachConcurrency, SENDER } from "../runs.ts";
import { medianRuns } from "../stats.ts";

/** The workload through the bridge: sent to its HTTP API, received on its WebSocket. */
function bridgeRuns(bench: Bench) {
  const { service, events } = bench.bridge;
  return runAtEachConcurrency(
    bench,
    "bridge",
    bench.conversations.ids,
    events.receipts,
    async (id, text, key) => {
      const response = await fetch(`${service.url}/v1/conversations/${id}/messages`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${bench.credentials.apiToken}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ sender_id: SENDER, text, client_message_id: key }),
      });
      if (!response.ok) throw new Error(`send: HTTP ${response.status}`);
      await response.arrayBuffer();
    },
    { synapse: bench.stack.synapse, bridge: service },
  );
}

export const throughput: Phase = {
  name: "throughput",
  parts: ["raw", "bridge"],
  async run(bench) {
    const { options, results, stack } = bench;
    for (let repeat = 1; repeat <= options.repeat; repeat++) {
      if (!bench.skipped("raw")) {
        await bench.bridge.stop();
        bench.log(`raw baseline ${repeat}/${options.repeat}: PUT /send + /sync long-poll, no bridge`);
        results.repeats.raw.push(
          await rawRuns(bench, stack.synapse, stack.config, bench.conversations.rooms, "raw"),
        );
      }
      if (!bench.skipped("bridge")) {
        await bench.bridge.start();
        bench.log(
          `through the bridge ${repeat}/${options.repeat}: POST /v1/conversations/{id}/messages, received on /v1/events`,
        );
        results.repeats.bridge.push(await bridgeRuns(bench));
      }
    }
    results.raw = medianRuns(results.repeats.raw);
    results.bridge = medianRuns(results.repeats.bridge);
  },
};
