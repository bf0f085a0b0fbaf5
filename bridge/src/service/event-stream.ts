// One WebSocket client's stream of the event log: everything after its cursor, then live events, in log order, each
// once. It reads through the process's event feed (from memory once it is near the head, from the log while it
// catches up) and never holds a queue of its own, so the only buffer is the socket's: past `maxBufferedBytes` the
// client is too slow and is closed with a reason; it resumes with `?since=<last cursor>`.
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import { CursorExpiredError } from "../store/store.ts";
import type { EventFeed, FeedEvent } from "./event-feed.ts";

export interface StreamOptions {
  socket: WebSocket;
  feed: Pick<EventFeed, "read" | "subscribe">;
  /**
   * Which of these events the client may see; called for each page just before it is sent, so membership is
   * checked at delivery time. Undefined: every event (a service client).
   */
  filter?: (events: FeedEvent[]) => Promise<FeedEvent[]>;
  since: string | undefined;
  maxBufferedBytes: number;
  pageSize: number;
  logger: Logger;
}

/** Close codes (4000-4999 are the application's). */
export const CLOSE_SLOW_CONSUMER = 4008;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY_VIOLATION = 1008;
/** The process holds as many sockets as it may: reconnect later (with backoff) and `?since=<last cursor>`. */
export const CLOSE_TRY_AGAIN_LATER = 1013;
/** This user has as many sockets open as they may: close one of them first. */
export const CLOSE_TOO_MANY_FOR_USER = 4029;
export const CLOSE_INTERNAL = 1011;
/** The cursor lies before what the event log keeps: reload history, then reconnect without `since` (the head). */
export const CLOSE_CURSOR_EXPIRED = 4410;

/** The close reason for an expired cursor (at most 123 bytes, as WebSocket allows). */
export const cursorExpiredReason = (cursor: string) =>
  `cursor expired: events after ${cursor} were pruned; reload history, then reconnect without since`.slice(
    0,
    123,
  );

export class EventStream {
  readonly #options: StreamOptions;
  #cursor: string | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #pending = false;

  constructor(options: StreamOptions) {
    this.#options = options;
    this.#cursor = options.since;
    options.socket.once("close", () => this.#stop());
  }

  /** Runs until the socket closes. Between pages it waits for the feed's news (no timer: an idle socket costs nothing). */
  async run(): Promise<void> {
    const unsubscribe = this.#options.feed.subscribe(() => {
      this.#pending = true;
      this.#wake?.();
    });
    try {
      await this.#deliver();
    } finally {
      unsubscribe();
    }
  }

  async #deliver(): Promise<void> {
    const { socket, logger } = this.#options;
    let failures = 0;
    while (!this.#closed) {
      try {
        this.#pending = false;
        const delivered = await this.#deliverPage();
        failures = 0;
        if (delivered === "more") continue;
        if (delivered === "closed") return;
        if (!this.#pending) await this.#idle();
      } catch (error) {
        if (error instanceof CursorExpiredError) {
          // It fell behind what is kept while reading (a very slow catch-up): the events it needs are gone.
          this.#expire(error);
          return;
        }
        failures++;
        logger.warn({ err: error, failures }, "event stream: reading the log failed; retrying");
        if (failures >= 10) {
          socket.close(CLOSE_INTERNAL, "the event log is unavailable; reconnect with ?since=<last cursor>");
          return;
        }
        await this.#idle(Math.min(5000, 200 * 2 ** failures));
      }
    }
  }

  /** Sends one page; "more" when the page was full. */
  async #deliverPage(): Promise<"more" | "idle" | "closed"> {
    const { socket, pageSize } = this.#options;
    const page = await this.#options.feed.read(this.#cursor, pageSize);
    if (page.length === 0 || this.#closed) return this.#closed ? "closed" : "idle";
    const visible = this.#options.filter ? await this.#options.filter(page) : page;
    const shown = new Set(visible);
    for (const logged of page) {
      if (this.#closed) return "closed";
      if (socket.bufferedAmount > this.#options.maxBufferedBytes) {
        this.#stop();
        const cursor = this.#cursor ?? "0";
        socket.close(CLOSE_SLOW_CONSUMER, `slow consumer: reconnect with ?since=${cursor}`.slice(0, 123));
        return "closed";
      }
      if (shown.has(logged)) socket.send(logged.wire);
      this.#cursor = logged.position;
    }
    return page.length === pageSize ? "more" : "idle";
  }

  /** Until the feed has news or the socket closes, or at most `ms` (a retry's backoff). */
  #idle(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }

  #expire(error: CursorExpiredError): void {
    this.#stop();
    this.#options.socket.close(CLOSE_CURSOR_EXPIRED, cursorExpiredReason(error.cursor));
  }

  #stop(): void {
    this.#closed = true;
    this.#wake?.();
  }
}
