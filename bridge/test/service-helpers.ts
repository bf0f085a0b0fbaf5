// Helpers for the service's tests: the service run in-process on a test stack, a JSON HTTP client and a WebSocket
// client that collects frames.
import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { waitFor } from "@nova-matrix/dev/harness";
import { type TestStack, testLogger } from "@nova-matrix/dev/harness/test-stack";
import { WebSocket } from "ws";
import { type RunningService, type RunOptions, runService } from "../src/service/run.ts";
import type { WireEvent } from "../src/service/schemas.ts";

/**
 * Runs the bridge service in this process against a test stack's Synapse: on loopback, a free port, the test logger,
 * a 1 s sync poll; `options` gives the database and the secrets, and adds or overrides the rest (limits, ...).
 */
export function runTestService(
  stack: TestStack,
  options: Pick<RunOptions, "databaseUrl" | "apiToken" | "signingKey"> & Partial<RunOptions>,
): Promise<RunningService> {
  return runService({
    config: stack.config,
    host: "127.0.0.1",
    port: 0,
    logger: testLogger(),
    syncPollMs: 1000,
    ...options,
  });
}

export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** Calls the service; JSON bodies are sent as JSON, a Uint8Array as raw bytes with the given content type. */
export async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: { token?: string; json?: unknown; raw?: Uint8Array | string; contentType?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | Uint8Array | undefined;
  if (options.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.raw !== undefined) {
    headers["content-type"] = options.contentType ?? "application/octet-stream";
    body = options.raw;
  }
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (metrics): keep the text.
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

export interface EventsClient {
  socket: WebSocket;
  events: WireEvent[];
  pings: number;
  closed: Promise<{ code: number; reason: string }>;
  /** Waits until at least `count` events arrived. */
  waitForCount(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Opens /v1/events; rejects with the HTTP status when the upgrade is refused. */
export function openEvents(
  baseUrl: string,
  options: { token?: string; since?: string; query?: string; onOpen?: (socket: WebSocket) => void } = {},
): Promise<EventsClient> {
  const url = new URL("/v1/events", baseUrl.replace(/^http/, "ws"));
  if (options.since) url.searchParams.set("since", options.since);
  if (options.query) url.search += `${url.search ? "&" : "?"}${options.query}`;
  const socket = new WebSocket(url, {
    ...(options.token ? { headers: { authorization: `Bearer ${options.token}` } } : {}),
  });
  const events: WireEvent[] = [];
  const client: EventsClient = {
    socket,
    events,
    pings: 0,
    closed: new Promise((resolve) =>
      socket.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })),
    ),
    waitForCount: (count, timeoutMs = 30_000) =>
      waitFor(async () => events.length >= count, {
        timeoutMs,
        intervalMs: 50,
        describe: () => `only ${events.length} of ${count} events arrived`,
      }),
    async close() {
      if (socket.readyState === WebSocket.CLOSED) return;
      socket.close();
      await client.closed;
    },
  };
  socket.on("message", (data) => events.push(JSON.parse(data.toString()) as WireEvent));
  socket.on("ping", () => {
    client.pings++;
  });
  return new Promise((resolve, reject) => {
    socket.once("open", () => {
      options.onOpen?.(socket);
      resolve(client);
    });
    socket.once("unexpected-response", (_request, response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      response.on("end", () => reject(new UpgradeRefused(response.statusCode ?? 0, text)));
    });
    socket.once("error", reject);
  });
}

export class UpgradeRefused extends Error {
  override name = "UpgradeRefused";
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string) {
    super(`upgrade refused with HTTP ${status}: ${body}`);
    this.status = status;
    this.body = body;
  }
}

export interface RawAnswer {
  status: number;
  body: { error?: { code: string; message: string; field?: string } };
}

/** A raw HTTP request: the path goes out exactly as written (no `..` normalization, no encoding). */
export function rawCall(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  // Node sends a DELETE's body without a length unless told (the server would read it as the next request).
  const withLength =
    body === undefined ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) };
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path, headers: withLength },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () => {
          let parsed: RawAnswer["body"] = {};
          try {
            parsed = JSON.parse(text) as RawAnswer["body"];
          } catch {
            // not JSON: the assertions on the error shape will say so
          }
          resolve({ status: response.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * A raw WebSocket upgrade request with the path exactly as written: resolves with 101 when the server upgraded
 * (the socket is closed at once), otherwise with the HTTP status it answered.
 */
export function rawUpgrade(
  baseUrl: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      agent: false,
      method: "GET",
      path,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": randomBytes(16).toString("base64"),
        ...headers,
      },
    });
    req.on("upgrade", (_response, socket) => {
      socket.destroy();
      resolve(101);
    });
    req.on("response", (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}
