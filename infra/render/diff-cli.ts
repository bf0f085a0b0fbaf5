// `npm run diff -- --stack staging|prod --base <git ref> [--out FILE] [--preview]`: what a change does to a stack, offline and
// without credentials (so it works on a fork's pull request): both trees rendered, compared resource by resource,
// printed as Markdown with secrets redacted.
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { diffMarkdown, diffRenders } from "./diff.ts";
import { renderBaseAndHead } from "./diff-git.ts";
import { PROJECT_DIR } from "./run.ts";
import { STACKS } from "./stack-file.ts";

const program = new Command("diff")
  .description("Render a stack at a git ref and in the working tree, and print the difference as Markdown")
  .addOption(new Option("--stack <stack>", "the stack to compare").choices(STACKS).makeOptionMandatory())
  .requiredOption("--base <ref>", "the git ref to compare against (e.g. origin/main)")
  .option("--out <file>", "also write the Markdown report to this file")
  .option("--repo <dir>", "the checkout to compare (default: this one)", PROJECT_DIR)
  .option(
    "--preview",
    "compare as a first `pulumi preview` sees it: provider-computed values known after apply",
  );

program.parse();
const options = program.opts<{
  stack: string;
  base: string;
  out?: string;
  repo: string;
  preview?: boolean;
}>();
const cwd = process.env.INIT_CWD ?? process.cwd();

try {
  const { base, head, baseCommit } = await renderBaseAndHead(
    resolve(cwd, options.repo),
    options.stack,
    options.base,
    options.preview ?? false,
  );
  const report = diffMarkdown(diffRenders(base, head), {
    stack: options.stack,
    baseRef: options.base,
    baseCommit,
    preview: options.preview ?? false,
  });
  if (options.out) await writeFile(resolve(cwd, options.out), report);
  process.stdout.write(report);
} catch (error) {
  console.error(`diff failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
