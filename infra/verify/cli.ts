// `npm run verify -- --outputs FILE`: the post-deploy checks (infra/verify/checks.ts) against the deployment that
// FILE describes (`pulumi stack output --json --show-secrets > FILE`). From outside the cluster, reach the in-cluster
// URLs through port forwards and say where: --homeserver-url http://127.0.0.1:8008 --bridge-url http://127.0.0.1:8080.
// Exit 0 when every step passed, 1 at the first failure, 2 when the outputs file is unusable.
import { readFile } from "node:fs/promises";
import { parseStackOutputs, type StackOutputs } from "@nova-matrix/contracts";
import { Command, Option } from "commander";
import { verifyDeployment } from "./checks.ts";

const program = new Command("verify")
  .description(
    "Check a deployed stack from its outputs: Synapse, the appservice token, the bridge end to end",
  )
  .addOption(
    new Option(
      "--outputs <file>",
      "`pulumi stack output --json --show-secrets` saved to a file",
    ).makeOptionMandatory(),
  )
  .option(
    "--homeserver-url <url>",
    "reach Synapse here instead of the outputs' homeserverUrl (a port forward)",
  )
  .option("--bridge-url <url>", "reach the bridge here instead of the outputs' bridgeUrl (a port forward)")
  .option("--timeout-ms <ms>", "per request, and for an event on the WebSocket", "30000");
program.parse();
const options = program.opts<{
  outputs: string;
  homeserverUrl?: string;
  bridgeUrl?: string;
  timeoutMs: string;
}>();

/** The outputs file, or exit 2 with what to fix (never a value from the file: it holds the stack's secrets). */
async function readOutputs(file: string): Promise<StackOutputs> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    console.error(
      code
        ? `verify: ${file}: cannot read it (${String(code)})`
        : `verify: ${file}: not JSON; write it with: pulumi stack output --json --show-secrets > ${file}`,
    );
    process.exit(2);
  }
  try {
    return parseStackOutputs(json); // names the output, never its value
  } catch (error) {
    console.error(`verify: ${file}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  }
}

const outputs = await readOutputs(options.outputs);
const timeoutMs = Number(options.timeoutMs);
if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
  console.error(
    `verify: --timeout-ms: expected a positive whole number of milliseconds, got "${options.timeoutMs}"`,
  );
  process.exit(2);
}
const passed = await verifyDeployment(outputs, {
  ...(options.homeserverUrl ? { homeserverUrl: options.homeserverUrl } : {}),
  ...(options.bridgeUrl ? { bridgeUrl: options.bridgeUrl } : {}),
  timeoutMs,
  log: (line) => console.log(line),
});
process.exitCode = passed ? 0 : 1;
