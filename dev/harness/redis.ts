// Redis from Debian's `redis-server` package on a loopback port, with a password (AUTH), no persistence: what
// Synapse's workers need between them (pub/sub replication and a shared cache). Restartable for fault tests.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HarnessUnavailableError } from "./errors.ts";
import { ManagedProcess } from "./managed-process.ts";
import { freePort, which } from "./process.ts";

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly password: string;
  readonly process: ManagedProcess;
  /** Stops it (SIGTERM) and starts it again on the same port: every client connection is dropped. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Sends AUTH + PING; true when Redis answers +PONG. */
export function redisPing(port: number, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let answer = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => {
      const auth = ["AUTH", password];
      socket.write(
        `*2\r\n${auth.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join("")}*1\r\n$4\r\nPING\r\n`,
      );
    });
    socket.on("data", (chunk) => {
      answer += chunk.toString("utf8");
      if (answer.includes("+PONG")) done(true);
      else if (answer.includes("-")) done(false);
    });
  });
}

export async function startRedis(options: { password: string; logDir?: string }): Promise<RedisServer> {
  const binary = await which("redis-server");
  if (!binary)
    throw new HarnessUnavailableError(
      "Synapse's worker mode needs Redis: install Debian's redis-server (apt-get install redis-server; .ci/run does).",
    );
  const port = await freePort();
  const temporary = options.logDir === undefined;
  const dir = options.logDir ?? join(tmpdir(), `nova-redis-${port}`);
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, "redis.conf");
  await writeFile(configPath, `requirepass ${options.password}\n`, { mode: 0o600 });
  const process = new ManagedProcess({
    name: "Redis",
    command: binary,
    // The password in a 0600 file rather than on the command line (where `ps` shows it).
    args: [
      configPath,
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      // Replication traffic and caches only: nothing to keep across a restart.
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ],
    env: { PATH: globalThis.process.env.PATH },
    logPath: join(dir, "redis.log"),
    ready: () => redisPing(port, options.password),
    readyDescription: `AUTH + PING on 127.0.0.1:${port}`,
    startTimeoutMs: 15_000,
  });
  await process.start();
  return {
    host: "127.0.0.1",
    port,
    password: options.password,
    process,
    async restart() {
      await process.stop();
      await process.start();
    },
    async stop() {
      await process.stop();
      if (temporary) await rm(dir, { recursive: true, force: true });
    },
  };
}
