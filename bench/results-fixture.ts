// A results file and CPU figures for the report's and the chart's tests (bench.test.ts, proc.test.ts,
// worker-mode.test.ts).
import type { CpuPerMessage } from "./proc.ts";
import type { Results } from "./report.ts";

/** A results file with nothing measured, and `fields` on top. */
export const resultsWith = (fields: Partial<Results>): Results => ({
  date: "2026-11-29T01:00:00.000Z",
  machine: {
    cpus: 2,
    cpuModel: "test",
    node: "v24",
    synapse: "1.160.0",
    postgres: "15",
    loadAverageAtStart: [1, 1, 1],
    loadAverageAtEnd: [1, 1, 1],
  },
  options: { concurrency: [1], duration: 8, catchup: 1000, scale: [100], skip: [] },
  raw: [],
  bridge: [],
  tuning: { shipped: [], default: [] },
  repeats: { raw: [], bridge: [], default: [], shipped: [] },
  scale: [],
  notes: [],
  ...fields,
});

/** CPU ms per message: `values`, every other group 0. */
export const cpu = (values: Partial<CpuPerMessage>): CpuPerMessage => ({
  synapse: 0,
  synapseDb: 0,
  bridge: 0,
  bridgeDb: 0,
  postgres: 0,
  loadGenerator: 0,
  ...values,
});
