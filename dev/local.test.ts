// `npm run local` as a process: it comes up on free ports, its printed curl example works, it writes the stack
// outputs file, stops on SIGTERM, and a second start finds its data (same token, same messages); then
// `npm run verify` (infra/verify/) passes against its outputs file and stops at the first step that fails.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { stackOutputsSchema } from "@nova-matrix/contracts";
import { afterAll, expect, it } from "vitest";
import { z } from "zod";
import { freePort } from "./harness/index.ts";
import { describeWithHarness, harnessChroot } from "./harness/vitest.ts";

const root = resolve(import.meta.dirname, "..");
const outputsFileSchema = stackOutputsSchema.extend({
  bridgeUrl: z.url(),
  bridgeApiToken: z.string().min(32),
});

class LocalStack {
  output = "";
  #child: ChildProcess | undefined;
  readonly env: NodeJS.ProcessEnv;
  constructor(env: NodeJS.ProcessEnv) {
    this.env = env;
  }

  /** Starts `node dev/local.ts` and resolves when it printed that it is up. */
  start(): Promise<void> {
    this.output = "";
    const child = spawn(process.execPath, ["dev/local.ts"], {
      cwd: root,
      env: this.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`local stack did not come up:\n${this.output}`)),
        150_000,
      );
      const onData = (chunk: Buffer) => {
        this.output += chunk.toString("utf8");
        if (this.output.includes("Ctrl-C stops everything.")) {
          clearTimeout(timer);
          resolvePromise();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`local stack exited (${code ?? signal}) during start-up:\n${this.output}`));
      });
    });
  }

  /** SIGTERM; resolves with the exit code. */
  async stop(): Promise<number | null> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolveExit) =>
      child.once("exit", (code) => resolveExit(code)),
    );
    child.kill("SIGTERM");
    return exited;
  }
}

describeWithHarness("npm run local (the one-command local stack)", () => {
  let stateDir: string;
  let stack: LocalStack;
  const synapseName = `local-test-${process.pid}-${Date.now()}`;

  afterAll(async () => {
    await stack?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    await rm(join(harnessChroot().root, "var/lib/nova-harness", synapseName), {
      recursive: true,
      force: true,
    });
  });

  it("starts, works over HTTP with its printed example, stops on SIGTERM, and keeps its data across a restart", async () => {
    stateDir = await mkdtemp(join(tmpdir(), "nova-local-"));
    const ports = { postgres: await freePort(), synapse: await freePort(), bridge: await freePort() };
    stack = new LocalStack({
      PATH: process.env.PATH,
      NOVA_LOCAL_STATE_DIR: stateDir,
      NOVA_LOCAL_SYNAPSE_NAME: synapseName,
      NOVA_LOCAL_POSTGRES_PORT: String(ports.postgres),
      NOVA_LOCAL_SYNAPSE_PORT: String(ports.synapse),
      NOVA_LOCAL_BRIDGE_PORT: String(ports.bridge),
    });
    await stack.start();

    const outputs = outputsFileSchema.parse(
      JSON.parse(await readFile(join(stateDir, "stack-outputs.json"), "utf8")),
    );
    expect(outputs).toMatchObject({
      homeserverUrl: `http://127.0.0.1:${ports.synapse}`,
      bridgeUrl: `http://127.0.0.1:${ports.bridge}`,
      serviceUser: "@nova-service:localhost",
      matrixEnabled: true,
    });
    // Secrets go to the 0600 file, never to the console.
    expect(stack.output).not.toContain(outputs.bridgeApiToken);
    expect(stack.output).not.toContain(outputs.accessToken);

    // The printed example, run as printed: create a conversation, send, read history.
    const example = stack.output.slice(stack.output.indexOf("Try it"), stack.output.indexOf("Ctrl-C"));
    const script = example.split("\n").slice(1).join("\n");
    const { stdout } = await promisify(execFile)("sh", ["-ec", script], { cwd: root });
    expect(stdout).toContain('"conversation_id":"hello"');
    expect(stdout).toContain('"body":"Hello from Nova"');

    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${outputs.bridgeUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${outputs.bridgeApiToken}`, "content-type": "application/json" },
      });
    const sent = await api("/v1/conversations/hello/messages", {
      method: "POST",
      body: JSON.stringify({ sender_id: "bob", text: "kept across restarts", client_message_id: "kept-1" }),
    });
    expect(sent.status).toBe(200);
    const { message_id } = (await sent.json()) as { message_id: string };

    expect(await stack.stop()).toBe(0);
    expect(stack.output).toContain("stopped.");
    await expect(fetch(`${outputs.bridgeUrl}/healthz`)).rejects.toThrow();

    await stack.start();
    const again = outputsFileSchema.parse(
      JSON.parse(await readFile(join(stateDir, "stack-outputs.json"), "utf8")),
    );
    expect(again.bridgeApiToken).toBe(outputs.bridgeApiToken);
    const history = await api("/v1/conversations/hello/messages");
    expect(history.status).toBe(200);
    const events = (
      (await history.json()) as { events: { message_id: string; content?: { body: string } }[] }
    ).events;
    expect(events.map((e) => e.message_id)).toContain(message_id);
    expect(events.map((e) => e.content?.body)).toEqual(["kept across restarts", "Hello from Nova"]);
    expect(await stack.stop()).toBe(0);
  }, 300_000);

  it("passes `npm run verify -- --outputs` with one line per step, and stops at the first failing one", async () => {
    await stack.start();
    const outputsFile = join(stateDir, "stack-outputs.json");
    const outputs = outputsFileSchema.parse(JSON.parse(await readFile(outputsFile, "utf8")));
    const verify = (file: string) =>
      promisify(execFile)(
        process.execPath,
        ["infra/verify/cli.ts", "--outputs", file, "--timeout-ms", "30000"],
        { cwd: root },
      ).then(
        ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
    const steps = (stdout: string) =>
      stdout
        .trim()
        .split("\n")
        .map((line) => line.slice(0, line.indexOf(":")));

    const passed = await verify(outputsFile);
    expect(passed.code, passed.stdout + passed.stderr).toBe(0);
    expect(steps(passed.stdout)).toEqual([
      "ok   synapse health",
      "ok   synapse client versions",
      "ok   appservice token inside",
      "skip well-known",
      "skip appservice token refused publicly",
      "ok   bridge ready",
      "ok   bridge refuses no token",
      "ok   throwaway conversation",
      "ok   event stream",
      "ok   message sent and received",
      "ok   message deleted",
    ]);
    for (const line of passed.stdout
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("ok")))
      expect(line).toMatch(/ \(\d+ ms\)$/);
    expect(passed.stdout).not.toContain(outputs.accessToken);
    expect(passed.stdout).not.toContain(outputs.bridgeApiToken);

    // A wrong appservice token: exit 1 at that step, nothing after it, and the token not printed.
    const wrongToken = join(stateDir, "outputs-wrong-token.json");
    await writeFile(wrongToken, JSON.stringify({ ...outputs, accessToken: "not-the-appservice-token" }));
    const refused = await verify(wrongToken);
    expect(refused.code).toBe(1);
    expect(steps(refused.stdout)).toEqual([
      "ok   synapse health",
      "ok   synapse client versions",
      "FAIL appservice token inside",
    ]);
    expect(refused.stdout).toContain("HTTP 401 (M_UNKNOWN_TOKEN)");
    expect(refused.stdout).not.toContain("not-the-appservice-token");

    // A publicBaseUrl that is not this deployment's public entry (no well-known there): caught before the rest.
    const exposed = join(stateDir, "outputs-exposed.json");
    await writeFile(exposed, JSON.stringify({ ...outputs, publicBaseUrl: `${outputs.homeserverUrl}/` }));
    const leaky = await verify(exposed);
    expect(leaky.code).toBe(1);
    expect(steps(leaky.stdout).at(-1)).toBe("FAIL well-known");

    // A bridge nobody answers for: the failure says why.
    const unreachable = join(stateDir, "outputs-unreachable.json");
    await writeFile(
      unreachable,
      JSON.stringify({ ...outputs, bridgeUrl: `http://127.0.0.1:${await freePort()}` }),
    );
    const down = await verify(unreachable);
    expect(down.code).toBe(1);
    expect(steps(down.stdout).at(-1)).toBe("FAIL bridge ready");
    expect(down.stdout).toContain("ECONNREFUSED");

    // An unusable outputs file: exit 2 with what to fix, never its content.
    await writeFile(wrongToken, `{"accessToken": "${outputs.accessToken}",`);
    const broken = await verify(wrongToken);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain("not JSON; write it with: pulumi stack output --json --show-secrets");
    expect(broken.stderr).not.toContain(outputs.accessToken);
    expect(await stack.stop()).toBe(0);
  }, 300_000);
});
