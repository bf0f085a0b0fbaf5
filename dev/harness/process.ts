import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, collecting its output; never throws on a non-zero exit. */
export function run(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; uid?: number; gid?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
    let stdout = "";
    let stderr = "";
    let pending = "";
    const onChunk = (chunk: Buffer, sink: "out" | "err") => {
      const text = chunk.toString("utf8");
      if (sink === "out") stdout += text;
      else stderr += text;
      if (!options.onLine) return;
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) options.onLine(line);
    };
    child.stdout.on("data", (c: Buffer) => onChunk(c, "out"));
    child.stderr.on("data", (c: Buffer) => onChunk(c, "err"));
    child.on("error", reject);
    child.on("close", (code) => {
      if (pending && options.onLine) options.onLine(pending);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Whether an executable is on PATH. */
export async function which(command: string): Promise<string | undefined> {
  const result = await run("sh", ["-c", `command -v ${command}`]).catch(() => undefined);
  const path = result?.stdout.trim();
  return result?.code === 0 && path ? path : undefined;
}

/**
 * A TCP port that was free on loopback a moment ago, chosen below the kernel's ephemeral range: a port the kernel
 * handed out for `listen(0)` and that was closed again can be handed to any outgoing connection before the server it
 * was meant for binds it (seen as "Address already in use" on Synapse's metrics port while other test files ran).
 * Ports below the range are never handed out by the kernel; the remaining clash (two test processes drawing the same
 * port at once) is one in thousands per pair, and a port in use is skipped.
 */
export async function freePort(): Promise<number> {
  const start = await ephemeralRangeStart();
  // An unusual range leaves no room below it: fall back to the kernel's choice.
  if (start > PORTS_FROM + 1_000)
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = PORTS_FROM + Math.floor(Math.random() * (start - PORTS_FROM));
      if (handedOut.has(port) || !(await bindable(port))) continue;
      handedOut.add(port);
      return port;
    }
  return listenOnAnyPort();
}

const PORTS_FROM = 10_000;
/** Ports this process handed out (a port is not given twice, even once its server closed). */
const handedOut = new Set<number>();

let rangeStart: Promise<number> | undefined;
/** The first port of Linux's ephemeral range (32768 by default and where it cannot be read). */
function ephemeralRangeStart(): Promise<number> {
  rangeStart ??= readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
    .then((text) => Number.parseInt(text.trim().split(/\s+/)[0] ?? "", 10) || 32_768)
    .catch(() => 32_768);
  return rangeStart;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function listenOnAnyPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not read the port of a loopback listener"));
      });
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns true, or fails with `describe()` after `timeoutMs`. */
export async function waitFor(
  probe: () => Promise<boolean>,
  {
    timeoutMs,
    intervalMs = 100,
    describe,
  }: { timeoutMs: number; intervalMs?: number; describe: () => string },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await sleep(intervalMs);
  }
  throw new Error(describe());
}
