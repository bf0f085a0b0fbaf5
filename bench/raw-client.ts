// The baseline: the least a client can do on Synapse. Sends with PUT /rooms/{id}/send/m.room.message/{txn} and
// receives with a /sync long-poll, with the appservice token and `?user_id=` (the same identity path the bridge
// uses), no SDK, no database, nothing kept but counters.

export interface RawClientOptions {
  homeserverUrl: string;
  asToken: string;
}

export interface SyncedMessage {
  roomId: string;
  eventId: string;
  body: string;
}

/** Only m.room.message timelines: no state, presence, account data or receipts. */
const SYNC_FILTER = (timelineLimit: number) =>
  JSON.stringify({
    presence: { types: [] },
    account_data: { types: [] },
    room: {
      state: { types: [] },
      ephemeral: { types: [] },
      account_data: { types: [] },
      timeline: { limit: timelineLimit, types: ["m.room.message"] },
    },
  });

export class RawClient {
  readonly #options: RawClientOptions;
  #txn = 0;
  readonly #prefix = `raw${Date.now().toString(36)}`;

  constructor(options: RawClientOptions) {
    this.#options = options;
  }

  async #call<T>(method: string, path: string, query: Record<string, string>, body?: unknown): Promise<T> {
    const url = new URL(`${this.#options.homeserverUrl}/_matrix/client/v3${path}`);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${this.#options.asToken}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  /** Sends a text as `userId`; resolves with the event id. */
  async send(roomId: string, userId: string, body: string): Promise<string> {
    const txn = `${this.#prefix}.${++this.#txn}`;
    const { event_id } = await this.#call<{ event_id: string }>(
      "PUT",
      `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`,
      { user_id: userId },
      { msgtype: "m.text", body },
    );
    return event_id;
  }

  /** A room's m.room.message bodies from a token forward (`/messages?dir=f`), page by page to the end. */
  async readForward(roomId: string, userId: string, from: string, pageSize = 500): Promise<string[]> {
    const bodies: string[] = [];
    let token = from;
    for (;;) {
      const page = await this.#call<{ chunk: { content?: { body?: unknown } }[]; end?: string }>(
        "GET",
        `/rooms/${encodeURIComponent(roomId)}/messages`,
        {
          user_id: userId,
          dir: "f",
          from: token,
          limit: String(pageSize),
          filter: JSON.stringify({ types: ["m.room.message"] }),
        },
      );
      for (const event of page.chunk)
        if (typeof event.content?.body === "string") bodies.push(event.content.body);
      if (!page.end || page.chunk.length === 0) return bodies;
      token = page.end;
    }
  }

  /** One /sync as `userId`: the messages and the next token. Without `since`, an initial sync (no timelines). */
  async sync(
    userId: string,
    since: string | undefined,
    timeoutMs: number,
    timelineLimit = 100,
  ): Promise<{ nextBatch: string; messages: SyncedMessage[]; limited: boolean }> {
    const response = await this.#call<{
      next_batch: string;
      rooms?: {
        join?: Record<
          string,
          { timeline?: { limited?: boolean; events?: { event_id: string; content?: { body?: unknown } }[] } }
        >;
      };
    }>("GET", "/sync", {
      user_id: userId,
      filter: SYNC_FILTER(since ? timelineLimit : 0),
      timeout: String(since ? timeoutMs : 0),
      ...(since ? { since } : {}),
    });
    const messages: SyncedMessage[] = [];
    let limited = false;
    for (const [roomId, room] of Object.entries(response.rooms?.join ?? {})) {
      limited ||= room.timeline?.limited ?? false;
      for (const event of room.timeline?.events ?? [])
        if (typeof event.content?.body === "string")
          messages.push({ roomId, eventId: event.event_id, body: event.content.body });
    }
    return { nextBatch: response.next_batch, messages, limited };
  }
}

/** A /sync long-poll loop calling `onMessage` for each message until stopped. */
export class RawSyncReader {
  readonly #client: RawClient;
  readonly #userId: string;
  #stopped = false;
  #running: Promise<void> | undefined;
  /** Rounds whose timeline was limited (messages the reader would have to back-fill). */
  limitedRounds = 0;

  constructor(client: RawClient, userId: string) {
    this.#client = client;
    this.#userId = userId;
  }

  /** Starts from `since` (or from now, after an initial sync); resolves once the first long-poll is out. */
  async start(onMessage: (message: SyncedMessage, atMs: number) => void, since?: string): Promise<void> {
    let token = since ?? (await this.#client.sync(this.#userId, undefined, 0)).nextBatch;
    this.#running = (async () => {
      while (!this.#stopped) {
        const round = await this.#client.sync(this.#userId, token, 5000, 200);
        const now = performance.now();
        if (round.limited) this.limitedRounds++;
        for (const message of round.messages) onMessage(message, now);
        token = round.nextBatch;
      }
    })();
  }

  /** The current position for a later reader (a fresh initial sync's token). */
  async currentToken(): Promise<string> {
    return (await this.#client.sync(this.#userId, undefined, 0)).nextBatch;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }
}
