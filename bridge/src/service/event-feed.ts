// The process's one reader of the event log. Woken by the sync loop's commits, it reads each new page once into a
// bounded window of the newest events, serialized once, that every socket's stream reads from memory; a stream whose
// cursor lies before the window (it fell behind, or resumed from an old cursor) reads its catch-up from the log on
// its own until it reaches the window. Idle sockets cost no query: the only reads are one per commit, plus a slow
// poll (only while someone listens) that catches events logged by another process.
import type { Logger } from "pino";
import type { EventStore, LoggedEvent } from "../store/store.ts";
import { loggedToWire } from "./schemas.ts";

/** A logged event with its WebSocket frame (serialized once, whatever the number of sockets that send it). */
export interface FeedEvent extends LoggedEvent {
  readonly wire: string;
}

/** Who read the log: the feed (once for everyone) or one stream's catch-up behind the window. */
export type LogReader = "feed" | "catch_up";

export interface EventFeedOptions {
  store: Pick<EventStore, "readAfter" | "head" | "assertKept">;
  /** The window keeps the newest events up to this many bytes of frames. */
  windowBytes: number;
  /** Events per read of the log. */
  pageSize: number;
  /** While anyone listens, the log is also read this often (events logged by another process). */
  pollIntervalMs: number;
  logger: Logger;
  /** Hears of each read of the log (the service counts them). */
  onRead?: (reader: LogReader) => void;
}

const toFeedEvent = (logged: LoggedEvent): FeedEvent => ({
  ...logged,
  wire: JSON.stringify(loggedToWire(logged)),
});

export class EventFeed {
  readonly #options: EventFeedOptions;
  /** The newest events read, oldest first: every event after `#floor` up to `#head`. */
  #window: { position: bigint; event: FeedEvent }[] = [];
  #windowBytes = 0;
  #floor = 0n;
  #head = 0n;
  #started: Promise<void> | undefined;
  readonly #listeners = new Set<() => void>();
  #reading: Promise<void> | undefined;
  #again = false;
  #poll: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: EventFeedOptions) {
    this.#options = options;
  }

  /** The position of the newest event read (where a stream that wants only new events starts). */
  async head(): Promise<string> {
    await this.#start();
    return this.#head.toString();
  }

  /**
   * Up to `limit` events after `cursor` (exclusive), oldest first: from the window when the cursor lies in it, from
   * the log when it lies before it; none when it lies beyond what was read (the feed wakes its listeners later).
   */
  async read(cursor: string | undefined, limit: number): Promise<FeedEvent[]> {
    await this.#start();
    const after = BigInt(cursor ?? "0");
    if (after < this.#floor) {
      this.#options.onRead?.("catch_up");
      return (await this.#options.store.readAfter(cursor, limit)).map(toFeedEvent);
    }
    const window = this.#window;
    // The first event after the cursor (binary search: positions increase).
    let low = 0;
    let high = window.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((window[middle]?.position ?? 0n) <= after) low = middle + 1;
      else high = middle;
    }
    return window.slice(low, low + limit).map((entry) => entry.event);
  }

  /**
   * Throws `CursorExpiredError` when the events right after `cursor` were pruned from the log (checked against the
   * log, whatever the window still holds, so every reader gets the same answer).
   */
  assertKept(cursor: string | undefined): Promise<void> {
    return this.#options.store.assertKept(cursor);
  }

  /** Calls `listener` after new events were read; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (!this.#poll && !this.#stopped) {
      this.#poll = setInterval(() => this.wake(), this.#options.pollIntervalMs);
      this.#poll.unref();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) {
        clearInterval(this.#poll);
        this.#poll = undefined;
      }
    };
  }

  /** New events were logged: read them (one read at a time; a wake-up during a read reads again after it). */
  wake(): void {
    if (this.#stopped || !this.#started) return; // not started: the first read starts at the head anyway
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = this.#readNew().finally(() => {
      this.#reading = undefined;
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#poll);
    this.#poll = undefined;
    this.#listeners.clear();
  }

  #start(): Promise<void> {
    this.#started ??= this.#options.store.head().then(
      (head) => {
        this.#head = this.#floor = BigInt(head);
      },
      (error: unknown) => {
        this.#started = undefined; // the next caller tries again
        throw error;
      },
    );
    return this.#started;
  }

  async #readNew(): Promise<void> {
    const { store, pageSize, logger } = this.#options;
    try {
      await this.#start();
      for (;;) {
        this.#options.onRead?.("feed");
        const page = await store.readAfter(this.#head.toString(), pageSize);
        if (page.length > 0) {
          this.#append(page.map(toFeedEvent));
          for (const listener of this.#listeners) listener();
        }
        if (page.length < pageSize || this.#stopped) return;
      }
    } catch (error) {
      // The next commit or poll reads again; the streams wait meanwhile (they lose nothing: they hold cursors).
      logger.warn({ err: error }, "event feed: reading the log failed");
    }
  }

  #append(events: FeedEvent[]): void {
    for (const event of events) {
      const position = BigInt(event.position);
      this.#window.push({ position, event });
      this.#windowBytes += event.wire.length;
      this.#head = position;
    }
    let drop = 0;
    while (drop < this.#window.length && this.#windowBytes > this.#options.windowBytes) {
      const dropped = this.#window[drop++];
      if (!dropped) break;
      this.#windowBytes -= dropped.event.wire.length;
      this.#floor = dropped.position;
    }
    if (drop > 0) this.#window = this.#window.slice(drop);
  }
}
