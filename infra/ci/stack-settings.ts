// `npm run --silent stack-settings -- --stack <stack>`: what the workflow reads from a stack file, as `key=value`
// lines for $GITHUB_OUTPUT: the stack's cluster (for get-gke-credentials) and the bridge image repository (the image
// job's push target). The stack file stays the one place these are written.
import { Command, Option } from "commander";
import { parseImage } from "../config/bridge.ts";
import { rawProjectConfig } from "../config/load.ts";
import { parseStackConfig } from "../config/schema.ts";
import { PROJECT_DIR } from "../render/run.ts";
import { readStackConfig, STACKS } from "../render/stack-file.ts";

const program = new Command("stack-settings")
  .description("Print a stack's cluster and image repository as key=value lines (for $GITHUB_OUTPUT)")
  .addOption(new Option("--stack <stack>", "the stack").choices(STACKS).makeOptionMandatory());
program.parse();
const { stack } = program.opts<{ stack: string }>();

try {
  const config = parseStackConfig(rawProjectConfig(await readStackConfig(PROJECT_DIR, stack)));
  const repository = config.bridge ? parseImage(config.bridge.image)?.repository : undefined;
  const lines = [
    `cluster_project=${config.cluster.project}`,
    `cluster_location=${config.cluster.location}`,
    `cluster_name=${config.cluster.name}`,
    `namespace=${config.namespace}`,
    ...(repository ? [`image_repository=${repository}`] : []),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} catch (error) {
  console.error(`stack-settings: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
