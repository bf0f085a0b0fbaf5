// `npm run pin-synapse [-- --to 1.161.0] [--root DIR]`: moves the Synapse image tag the stacks deploy to the
// version the test harness runs (or to --to), in every place it is written down (infra/synapse/version.ts,
// PINNED_PLACES). Then `npm test` runs the rendered config and the metrics list on that Synapse.
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  formatSynapseVersion,
  movePin,
  PINNED_PLACES,
  parseSynapseVersion,
  SYNAPSE_VERSION,
} from "@nova-matrix/infra/synapse/version";
import { Command } from "commander";
import { ensureSynapseChroot } from "./harness/index.ts";

const options = new Command("pin-synapse")
  .description("Move the pinned Synapse image tag to the harness's Synapse version (or to --to).")
  .option("--to <version>", "the version to pin, such as 1.161.0 (default: the harness's matrix-synapse)")
  .option("--root <dir>", "the repository to change (default: this one)", resolve(import.meta.dirname, ".."))
  .parse()
  .opts<{ to?: string; root: string }>();

try {
  const target = formatSynapseVersion(
    parseSynapseVersion(options.to ?? (await ensureSynapseChroot((line) => console.error(line))).version),
  );
  if (target === SYNAPSE_VERSION) {
    console.log(`Synapse ${SYNAPSE_VERSION} is already pinned.`);
  } else {
    const files = new Map<string, string>();
    for (const { file } of PINNED_PLACES) files.set(file, await readFile(join(options.root, file), "utf8"));
    const changed = movePin(files, SYNAPSE_VERSION, target);
    for (const [file, text] of changed) await writeFile(join(options.root, file), text);
    console.log(`Pinned Synapse ${target} (was ${SYNAPSE_VERSION}) in ${[...changed.keys()].join(", ")}.`);
    console.log(
      "Next: npm test (the rendered config, the worker plan and the metrics list run on the harness's Synapse).",
    );
  }
} catch (error) {
  console.error(`pin-synapse: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
