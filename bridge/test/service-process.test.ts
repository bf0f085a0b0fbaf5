// The service's process entry point (bridge/src/service/main.ts, the image's command): bad settings exit 2 naming the
// variable without its value; MATRIX_ENABLED=false runs idle (alive, ready, /v1 answering 503); SIGTERM exits 0.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { freePort, waitFor } from "@nova-matrix/dev/harness";
import { describe, expect, it } from "vitest";
import { call } from "./service-helpers.ts";

const MAIN = fileURLToPath(new URL("../src/service/main.ts", import.meta.url));

function start(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** The JSON log lines of the process's output. */
const jsonLines = (output: string) =>
  output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe("bridge service process", () => {
  it("exits 2 on bad settings, naming each variable and never printing a value", async () => {
    const shortToken = "too-short-secret";
    const run = start({ MATRIX_ENABLED: "false", BRIDGE_API_TOKEN: shortToken, BRIDGE_PORT: "99999" });
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain("BRIDGE_API_TOKEN: must be at least 32 characters");
    expect(run.output()).toContain("BRIDGE_WS_SIGNING_KEY: is required");
    expect(run.output()).toContain("BRIDGE_PORT: expected a port number");
    expect(run.output()).not.toContain(shortToken);
    // The line GKE collects: Cloud Logging files it as CRITICAL (pino's fatal), with the entry's own time.
    const fatal = jsonLines(run.output()).find((line) => String(line.msg).includes("BRIDGE_API_TOKEN"));
    expect(fatal).toMatchObject({ severity: "CRITICAL", level: 60 });
    expect(Date.parse(String(fatal?.time))).not.toBeNaN();
    expect(String(fatal?.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("runs idle with MATRIX_ENABLED=false: alive, ready, /v1 answers 503; SIGTERM stops it", async () => {
    const port = await freePort();
    const apiToken = randomBytes(32).toString("base64url");
    const run = start({
      MATRIX_ENABLED: "false",
      BRIDGE_API_TOKEN: apiToken,
      BRIDGE_WS_SIGNING_KEY: randomBytes(32).toString("base64url"),
      BRIDGE_HOST: "127.0.0.1",
      BRIDGE_PORT: String(port),
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true, {
        timeoutMs: 20_000,
        describe: () => `the service did not answer /healthz:\n${run.output()}`,
      });
      expect(await call(url, "GET", "/readyz")).toMatchObject({
        status: 200,
        body: { status: "ready", matrix: "disabled" },
      });
      const refused = await call(url, "POST", "/v1/conversations", { token: apiToken, json: {} });
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("60");
      expect(refused.body).toMatchObject({
        error: { code: "unavailable", message: expect.stringContaining("MATRIX_ENABLED") },
      });
    } finally {
      run.child.kill("SIGTERM");
    }
    expect(await run.exited).toBe(0);
    expect(run.output()).not.toContain(apiToken);
    const lines = jsonLines(run.output());
    expect(lines.find((line) => line.msg === "stopping")).toMatchObject({ severity: "INFO", level: 30 });
    // Every line the process wrote carries a severity Cloud Logging knows.
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines)
      expect(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]).toContain(line.severity);
  });
});
