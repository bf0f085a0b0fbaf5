// `npm run graph -- --stack staging|prod --out docs/stacks/<stack>.svg`: the stack's resources, the components that
// group them and the order they depend on, as SVG (Graphviz in WebAssembly: no system package needed).
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { instance } from "@viz-js/viz";
import { Command, Option } from "commander";
import { stackDot } from "./graph.ts";
import { runStack } from "./run.ts";
import { STACKS } from "./stack-file.ts";

const program = new Command("graph")
  .description("Draw a stack's resources and their dependencies as SVG")
  .addOption(new Option("--stack <stack>", "the stack to draw").choices(STACKS).makeOptionMandatory())
  .requiredOption("--out <file>", "the SVG file to write")
  .option("--dot", "write the Graphviz source instead of SVG");

program.parse();
const options = program.opts<{ stack: string; out: string; dot?: boolean }>();
const cwd = process.env.INIT_CWD ?? process.cwd();

try {
  const run = await runStack(options.stack);
  const dot = stackDot(options.stack, run.registrations);
  const output = options.dot ? dot : (await instance()).renderString(dot, { format: "svg", engine: "dot" });
  const out = resolve(cwd, options.out);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, output);
  console.log(`drew stack ${options.stack}: ${run.resources.length} resources -> ${out}`);
} catch (error) {
  console.error(`graph failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
