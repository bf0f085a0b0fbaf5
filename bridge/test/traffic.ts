// Steady traffic for the fault tests: senders that behave like a careful API client (one message at a time per
// conversation; a failed or timed-out request is retried with the same client_message_id until it is accepted), a
// WebSocket reader that reconnects from its last cursor, and the checks that nothing was lost, doubled or reordered.

import { randomBytes } from "node:crypto";
import { sleep, waitFor } from "@nova-matrix/dev/harness";
import { ServiceProcess } from "@nova-matrix/dev/harness/service-process";
import type { TestStack } from "@nova-matrix/dev/harness/test-stack";
import { expect } from "vitest";
import { WebSocket } from "ws";
import type { WireEvent } from "../src/service/schemas.ts";
import { PostgresEventStore } from "../src/store/postgres.ts";
import type { EventStore } from "../src/store/store.ts";
import { readAll } from "./log.ts";

export interface Accepted {
  n: number;
  key: string;
  body: string;
  messageId: string;
  /** Requests it took (1 = accepted at once). */
  attempts: number;
}

export interface Failure {
  conversationId: string;
  key: string;
  /** HTTP status, or the error's name for a timeout or a refused connection. */
  outcome: string;
}

export const bodyOf = (conversationId: string, n: number) => `${conversationId} #${n}`;

export interface SendStreamOptions {
  url: () => string;
  token: string;
  conversations: readonly string[];
  senderId: string;
  /** A request that takes longer is abandoned and retried with the same key. */
  requestTimeoutMs: number;
  /** Pause between accepted messages (keeps the stream steady rather than maximal). */
  pauseMs?: number;
  /** A sender gives up (and the stream fails) when one message is not accepted for this long. Default 90 s. */
  giveUpMs?: number;
}

/** One sequential sender per conversation, all running until {@link SendStream.stop}. */
export class SendStream {
  readonly accepted = new Map<string, Accepted[]>();
  readonly failures: Failure[] = [];
  #stopping = false;
  readonly #done: Promise<void>;
  readonly options: SendStreamOptions;

  constructor(options: SendStreamOptions) {
    this.options = options;
    for (const id of options.conversations) this.accepted.set(id, []);
    this.#done = Promise.all(options.conversations.map((id) => this.#run(id))).then(() => {});
  }

  /** Total accepted so far. */
  get count(): number {
    return [...this.accepted.values()].reduce((sum, list) => sum + list.length, 0);
  }

  /** Waits until `more` further messages were accepted. */
  async waitForMore(more: number, timeoutMs = 30_000): Promise<void> {
    const target = this.count + more;
    await waitFor(async () => this.count >= target, {
      timeoutMs,
      intervalMs: 50,
      describe: () => `the stream stalled at ${this.count} accepted (wanted ${target})`,
    });
  }

  /** Lets each sender finish its current message (accepted, after retries), then stops. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#done;
  }

  async #run(conversationId: string): Promise<void> {
    const list = this.accepted.get(conversationId) as Accepted[];
    for (let n = 0; !this.#stopping; n++) {
      const key = `${conversationId}-${n}`;
      const body = bodyOf(conversationId, n);
      const giveUpMs = this.options.giveUpMs ?? 90_000;
      const deadline = Date.now() + giveUpMs;
      for (let attempt = 1; ; attempt++) {
        const outcome = await this.#post(conversationId, key, body);
        if (typeof outcome === "object") {
          list.push({ n, key, body, messageId: outcome.messageId, attempts: attempt });
          break;
        }
        this.failures.push({ conversationId, key, outcome });
        if (Date.now() > deadline)
          throw new Error(`${key}: not accepted within ${giveUpMs / 1000} s (last: ${outcome})`);
        await sleep(200);
      }
      if (this.options.pauseMs) await sleep(this.options.pauseMs);
    }
  }

  async #post(conversationId: string, key: string, text: string): Promise<{ messageId: string } | string> {
    try {
      const response = await fetch(`${this.options.url()}/v1/conversations/${conversationId}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${this.options.token}`, "content-type": "application/json" },
        body: JSON.stringify({ sender_id: this.options.senderId, text, client_message_id: key }),
        signal: AbortSignal.timeout(this.options.requestTimeoutMs),
      });
      const answer = (await response.json().catch(() => ({}))) as { message_id?: string };
      if (response.ok && answer.message_id) return { messageId: answer.message_id };
      return String(response.status);
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return cause ?? (error as Error).name;
    }
  }
}

/** Reads /v1/events from the start and keeps reconnecting with ?since=<last cursor> until closed. */
export class EventReader {
  readonly events: WireEvent[] = [];
  connections = 0;
  #socket: WebSocket | undefined;
  #closed = false;

  readonly url: () => string;
  readonly token: string;

  constructor(url: () => string, token: string) {
    this.url = url;
    this.token = token;
    this.#connect();
  }

  get cursor(): string {
    return this.events.at(-1)?.cursor ?? "0";
  }

  #connect(): void {
    if (this.#closed) return;
    const url = new URL("/v1/events", this.url().replace(/^http/, "ws"));
    url.searchParams.set("since", this.cursor);
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${this.token}` } });
    this.#socket = socket;
    socket.on("open", () => {
      this.connections++;
    });
    socket.on("message", (data) => this.events.push(JSON.parse(data.toString()) as WireEvent));
    socket.on("error", () => {}); // "close" follows; reconnect there
    socket.on("close", () => {
      if (!this.#closed) setTimeout(() => this.#connect(), 200);
    });
  }

  async waitFor(eventIds: readonly string[], timeoutMs = 45_000): Promise<void> {
    await waitFor(
      async () => {
        const seen = new Set(this.events.map((e) => e.event_id));
        return eventIds.every((id) => seen.has(id));
      },
      {
        timeoutMs,
        intervalMs: 100,
        describe: () => {
          const seen = new Set(this.events.map((e) => e.event_id));
          return `${eventIds.filter((id) => !seen.has(id)).length} accepted messages never reached the WebSocket`;
        },
      },
    );
  }

  close(): void {
    this.#closed = true;
    this.#socket?.terminate();
  }
}

/** The room's m.room.message events as Synapse holds them (oldest first), read as the service user. */
export async function synapseMessages(
  homeserverUrl: string,
  asToken: string,
  serviceUser: string,
  roomId: string,
): Promise<{ event_id: string; body: string }[]> {
  const found: { event_id: string; body: string }[] = [];
  let from: string | undefined;
  for (;;) {
    const url = new URL(`${homeserverUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages`);
    url.searchParams.set("dir", "b");
    url.searchParams.set("limit", "500");
    url.searchParams.set("user_id", serviceUser);
    if (from) url.searchParams.set("from", from);
    const response = await fetch(url, { headers: { authorization: `Bearer ${asToken}` } });
    if (!response.ok) throw new Error(`/messages answered ${response.status}`);
    const page = (await response.json()) as {
      chunk: { type: string; event_id: string; content: { body?: string } }[];
      end?: string;
    };
    for (const event of page.chunk)
      if (event.type === "m.room.message")
        found.push({ event_id: event.event_id, body: event.content.body ?? "" });
    if (!page.end || page.chunk.length === 0) return found.reverse();
    from = page.end;
  }
}

/**
 * The guarantees, per conversation: every accepted message is in the log and on the WebSocket exactly once, in the
 * order it was accepted, with the id the API returned; Synapse holds exactly those messages (a failed request left
 * nothing behind, a retried one made one message); the WebSocket never repeated an event and its cursors only grew.
 */
export function expectExactlyOnceInOrder(input: {
  accepted: Map<string, Accepted[]>;
  log: { position: string; event: { type: string; event_id: string; conversation_id: string } }[];
  websocket: WireEvent[];
  synapse: Map<string, { event_id: string; body: string }[]>;
}): void {
  const wsIds = input.websocket.map((e) => e.event_id);
  expect(new Set(wsIds).size, "an event came twice over the WebSocket").toBe(wsIds.length);
  const cursors = input.websocket.map((e) => BigInt(e.cursor ?? "0"));
  expect(cursors.every((c, i) => i === 0 || c > (cursors[i - 1] as bigint))).toBe(true);
  const logIds = input.log.map((e) => e.event.event_id);
  expect(new Set(logIds).size, "an event is twice in the log").toBe(logIds.length);
  for (const [conversationId, accepted] of input.accepted) {
    const expected = accepted.map((a) => a.messageId);
    const inLog = input.log
      .filter((e) => e.event.conversation_id === conversationId && e.event.type === "message.new")
      .map((e) => e.event.event_id);
    expect(inLog, `${conversationId}: the log`).toEqual(expected);
    const onSocket = input.websocket
      .filter((e) => e.conversation_id === conversationId && e.type === "message.new")
      .map((e) => e.event_id);
    expect(onSocket, `${conversationId}: the WebSocket`).toEqual(expected);
    const inSynapse = input.synapse.get(conversationId) ?? [];
    expect(
      inSynapse.map((e) => e.body),
      `${conversationId}: Synapse holds exactly the accepted messages, once each`,
    ).toEqual(accepted.map((a) => a.body));
    expect(inSynapse.map((e) => e.event_id)).toEqual(expected);
  }
}

/** What {@link underFault} runs against: the bridge service, its log, and the Synapse it talks to. */
export interface FaultTarget {
  readonly serviceUrl: () => string;
  readonly apiToken: string;
  readonly store: EventStore;
  /** Where to read what Synapse holds (as the appservice's user). */
  readonly synapse: { readonly baseUrl: string; readonly asToken: string; readonly serviceUser: string };
  /** Conversation id → room id, filled by {@link createConversations}. */
  readonly rooms: Map<string, string>;
  /** What a stalled stream's error needs beside it (the service's log tail, Synapse's...). */
  readonly diagnostics: (tag: string) => Promise<string>;
}

/**
 * The bridge service the fault tests break: a supervised process (restarted when it dies) on a fresh database of
 * the stack, started, and its event log opened beside it. `homeserverUrl` puts something (a TCP proxy) between the
 * bridge and Synapse.
 */
export async function startFaultService(
  stack: TestStack,
  options: { apiToken: string; homeserverUrl?: string; startTimeoutMs?: number },
): Promise<{ service: ServiceProcess; store: PostgresEventStore }> {
  const databaseUrl = await stack.newBridgeDatabase();
  const service = new ServiceProcess({
    config: options.homeserverUrl ? { ...stack.config, homeserverUrl: options.homeserverUrl } : stack.config,
    databaseUrl,
    apiToken: options.apiToken,
    signingKey: randomBytes(32).toString("base64url"),
    supervise: true,
  });
  try {
    await service.start(options.startTimeoutMs);
  } catch (error) {
    // The caller never gets it to stop: stop it here.
    await service.stop();
    throw error;
  }
  return { service, store: new PostgresEventStore(databaseUrl) };
}

/** A {@link FaultTarget} over a fault service; a failure's diagnostics are its log tail, then `moreDiagnostics`'. */
export function faultTarget(input: {
  stack: TestStack;
  service: ServiceProcess;
  store: EventStore;
  apiToken: string;
  rooms: Map<string, string>;
  moreDiagnostics?: (tag: string) => Promise<string>;
}): FaultTarget {
  const { stack, service, moreDiagnostics } = input;
  return {
    serviceUrl: () => service.url,
    apiToken: input.apiToken,
    store: input.store,
    synapse: {
      baseUrl: stack.synapse.baseUrl,
      asToken: stack.secrets.asToken,
      serviceUser: stack.config.serviceUser,
    },
    rooms: input.rooms,
    // What the service said is the first thing a failure here needs.
    diagnostics: async (tag) =>
      `${tag}: the service's log tail:\n${service.output.slice(-5000)}` +
      (moreDiagnostics ? `\n${await moreDiagnostics(tag)}` : ""),
  };
}

/** `count` fresh group conversations with alice (ids `<tag>-<i>-<random>`), their rooms kept in `target.rooms`. */
export async function createConversations(
  target: FaultTarget,
  count: number,
  tag: string,
): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `${tag}-${i}-${randomBytes(3).toString("hex")}`);
  for (const id of ids) {
    const answer = await fetch(`${target.serviceUrl()}/v1/conversations`, {
      method: "POST",
      headers: { authorization: `Bearer ${target.apiToken}`, "content-type": "application/json" },
      body: JSON.stringify({ conversation_id: id, kind: "group", members: ["alice"] }),
      // Room creation is Synapse's slowest call (minutes in worker mode on an overloaded machine).
      signal: AbortSignal.timeout(300_000),
    });
    expect(answer.status).toBe(200);
    target.rooms.set(id, ((await answer.json()) as { room_id: string }).room_id);
  }
  return ids;
}

export interface UnderFaultOptions {
  /** A client request that takes longer is abandoned and retried with the same key. */
  readonly requestTimeoutMs?: number;
  /** How long the stream may take to get going, and to recover after the fault. */
  readonly startTimeoutMs?: number;
  readonly recoveryTimeoutMs?: number;
  /** How long the accepted messages may take to reach the WebSocket. */
  readonly deliveryTimeoutMs?: number;
  /** How long one message may go unaccepted before the stream fails (the fault's longest outage). */
  readonly giveUpMs?: number;
}

/**
 * Runs a stream over three fresh conversations, applies the fault once some messages went through, checks that the
 * stream recovers, then checks every guarantee: no 500, and every accepted message in the log, on the WebSocket and
 * in Synapse exactly once, in order. Returns the stream for fault-specific checks.
 */
export async function underFault(
  target: FaultTarget,
  tag: string,
  fault: (stream: SendStream) => Promise<void>,
  options: UnderFaultOptions = {},
): Promise<SendStream> {
  const conversations = await createConversations(target, 3, tag);
  const reader = new EventReader(target.serviceUrl, target.apiToken);
  const stream = new SendStream({
    url: target.serviceUrl,
    token: target.apiToken,
    conversations,
    senderId: "alice",
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    pauseMs: 50,
    ...(options.giveUpMs === undefined ? {} : { giveUpMs: options.giveUpMs }),
  });
  try {
    await stream.waitForMore(6, options.startTimeoutMs ?? 30_000);
    await fault(stream);
    await stream.waitForMore(9, options.recoveryTimeoutMs ?? 60_000);
  } catch (error) {
    console.error(await target.diagnostics(tag));
    throw error;
  } finally {
    await stream.stop();
  }
  // A failed request is a clear, retryable answer (503 with Retry-After, or no connection), never a 500.
  expect(stream.failures.filter((f) => f.outcome === "500")).toEqual([]);
  try {
    const acceptedIds = [...stream.accepted.values()].flat().map((a) => a.messageId);
    await reader.waitFor(acceptedIds, options.deliveryTimeoutMs);
    const { baseUrl, asToken, serviceUser } = target.synapse;
    const synapse = new Map(
      await Promise.all(
        conversations.map(
          async (id) =>
            [
              id,
              await synapseMessages(baseUrl, asToken, serviceUser, target.rooms.get(id) as string),
            ] as const,
        ),
      ),
    );
    expectExactlyOnceInOrder({
      accepted: stream.accepted,
      log: await readAll(target.store),
      websocket: reader.events,
      synapse,
    });
  } finally {
    reader.close();
  }
  // FAULTS_SUMMARY=1 prints what each fault did to the clients (accepted, failed requests by outcome).
  if (process.env.FAULTS_SUMMARY) {
    const outcomes: Record<string, number> = {};
    for (const failure of stream.failures) outcomes[failure.outcome] = (outcomes[failure.outcome] ?? 0) + 1;
    const attempts = [...stream.accepted.values()].flat().map((a) => a.attempts);
    console.log(
      `${tag}: ${stream.count} accepted, failed requests ${JSON.stringify(outcomes)}, most attempts ${Math.max(...attempts)}`,
    );
  }
  return stream;
}
