// Runs one stack in its own process (the mock runtime is process-wide) and writes the run as JSON to stdout, for
// tests that check several stacks in one file. The JSON holds the generated secret values: it goes to the parent
// test's pipe only, never to a file or a log.
// Usage: node infra/testing/run-stack-json.ts <stack> [stack-file] [--preview]
import { runStack } from "../render/run.ts";
import { readStackFile } from "../render/stack-file.ts";

const args = process.argv.slice(2);
const preview = args.includes("--preview");
const [stack, stackFile] = args.filter((arg) => arg !== "--preview");
if (!stack) throw new Error("usage: run-stack-json.ts <stack> [stack-file] [--preview]");
const run = await runStack(stack, stackFile ? await readStackFile(stackFile) : undefined, { preview });
process.stdout.write(
  JSON.stringify({
    resources: run.resources,
    secretValues: [...run.secretValues],
    resourceOutputs: Object.fromEntries(run.resourceOutputs),
  }),
);
