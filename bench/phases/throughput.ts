// Throughput and latency, raw Synapse vs through the bridge: the same closed-loop workload sent to Synapse directly
// (PUT /send, read on a /sync long-poll) and to the bridge service (POST /v1/conversations/{id}/messages, read on
// /v1/events). Raw and bridge alternate `--repeat` times, the bridge stopped during raw runs, so each pair shares
// the machine's conditions; the report compares the medians.
import type { Phase } from "../phase.ts";
import { bridgeRuns, rawRuns } from "../runs.ts";
import { medianRuns } from "../stats.ts";

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
        results.repeats.bridge.push(await bridgeRuns(bench, "bridge", bench.bridge, bench.conversations.ids));
      }
    }
    results.raw = medianRuns(results.repeats.raw);
    results.bridge = medianRuns(results.repeats.bridge);
  },
};
