// The bridge as the bench meets it: the service process (the image's entry point) and a reader of its WebSocket
// that records when each message arrived.
import { sleep } from "@nova-matrix/dev/harness";
import type { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import { WebSocket } from "ws";

/**
 * Reads /v1/events and records each message.new body's arrival (`performance.now()`). Once connected, it reconnects
 * from its cursor until disconnected, so a restarted service is followed from where the reader left off.
 */
export class WsReceipts {
  readonly receipts = new Map<string, number>();
  cursor: string;
  readonly #url: () => string;
  readonly #apiToken: string;
  #socket: WebSocket | undefined;
  #wanted = false;

  /** `url` is asked at each (re)connection (a service's port is known once it started). */
  constructor(url: () => string, apiToken: string, since = "0") {
    this.#url = url;
    this.#apiToken = apiToken;
    this.cursor = since;
  }

  #open() {
    if (!this.#wanted) return;
    const url = new URL("/v1/events", this.#url().replace(/^http/, "ws"));
    url.searchParams.set("since", this.cursor);
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${this.#apiToken}` } });
    this.#socket = socket;
    socket.on("message", (data) => {
      const now = performance.now();
      const event = JSON.parse(data.toString()) as {
        cursor?: string;
        type: string;
        content?: { body?: string };
      };
      if (event.cursor) this.cursor = event.cursor;
      if (event.type === "message.new" && event.content?.body) this.receipts.set(event.content.body, now);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      if (this.#wanted && this.#socket === socket) setTimeout(() => this.#open(), 100);
    });
  }

  /** Connects (from the cursor), retrying until the service answers; returns the reader. */
  connect(): this {
    if (!this.#wanted) {
      this.#wanted = true;
      this.#open();
    }
    return this;
  }

  /** Disconnects; the cursor and the receipts are kept. */
  disconnect() {
    this.#wanted = false;
    this.#socket?.terminate();
    this.#socket = undefined;
  }
}

/** The environment of a bridge service under the workload: warnings only, /sync long-polls of 30 s. */
export const WORKLOAD_SERVICE_ENV = { LOG_LEVEL: "warn", BRIDGE_SYNC_POLL_MS: "30000" } as const;

/** The bridge service every phase shares, with one reader of its stream kept across restarts. */
export class BridgeUnderTest {
  readonly service: ServiceProcess;
  readonly events: WsReceipts;

  constructor(service: ServiceProcess, apiToken: string) {
    this.service = service;
    this.events = new WsReceipts(() => service.url, apiToken);
  }

  /**
   * Starts the service (if stopped) and the reader, and waits until the reader has read what was sent while the
   * bridge was stopped (no new message for a second), so what follows is measured on a bridge that caught up.
   */
  async start(): Promise<void> {
    await this.service.start(120_000);
    this.events.connect();
    let seen = -1;
    while (seen !== this.events.receipts.size) {
      seen = this.events.receipts.size;
      await sleep(1000);
    }
  }

  /** Stops the reader, then the service (SIGTERM); idempotent. */
  async stop(): Promise<void> {
    this.events.disconnect();
    await this.service.stop();
  }
}
