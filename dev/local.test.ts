// `npm run local` as a process: it comes up on free ports, its printed curl example works, it writes the stack
// outputs file, stops on SIGTERM, and a second start finds its data (same token, same messages).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
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
});
