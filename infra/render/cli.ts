// `npm run render -- --stack staging|prod --out DIR`: the real program under Pulumi's mock runtime, no cloud and no
// CLI; writes DIR/manifests.yaml and DIR/resources.json with every secret redacted.
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import { manifestsYaml, resourcesJson } from "./redact.ts";
import { runStack } from "./run.ts";
import { readStackFile, STACKS } from "./stack-file.ts";

const program = new Command("render")
  .description("Render a stack's Kubernetes manifests and resource inputs offline, secrets redacted")
  .addOption(new Option("--stack <stack>", "the stack to render").choices(STACKS).makeOptionMandatory())
  .requiredOption("--out <dir>", "directory to write manifests.yaml and resources.json into")
  .option("--stack-file <path>", "read the stack's config from this file instead of Pulumi.<stack>.yaml")
  .option(
    "--preview",
    "render as a first `pulumi preview` sees it: provider-computed values <known after apply>",
  );

program.parse();
const options = program.opts<{ stack: string; out: string; stackFile?: string; preview?: boolean }>();
// npm runs scripts from the project root; paths on the command line are relative to where npm was started.
const cwd = process.env.INIT_CWD ?? process.cwd();

try {
  const config = options.stackFile ? await readStackFile(resolve(cwd, options.stackFile)) : undefined;
  const run = await runStack(options.stack, config, { preview: options.preview ?? false });
  const out = resolve(cwd, options.out);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, "manifests.yaml"), manifestsYaml(run.resources, run.secretValues));
  await writeFile(join(out, "resources.json"), resourcesJson(run.resources, run.secretValues));
  const mode = options.preview ? " (preview: computed values unknown)" : "";
  console.log(`rendered stack ${options.stack}${mode}: ${run.resources.length} resources -> ${out}`);
} catch (error) {
  console.error(`render failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
