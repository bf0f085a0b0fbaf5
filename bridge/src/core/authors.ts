// Only a message's author changes it. The Matrix spec says a replacement (`m.replace`) from another sender than the
// original's must be ignored; the bridge drops such an edit wherever it meets one (the sync loop, history) and
// refuses to make one (the API's edit and delete). This knows who wrote which message, from what it has seen and,
// for older messages, from the homeserver, behind a bounded cache.
import { LRUCache } from "lru-cache";
import type { MatrixClient } from "../matrix/client.ts";
import { statusOf } from "../matrix/errors.ts";
import { getEvent } from "../matrix/rooms.ts";
import { type BridgeEvent, matrixSenderOf } from "./events.ts";

/** Messages whose author is remembered; an edit of an older one costs one request to the homeserver. */
const REMEMBERED_MESSAGES = 20_000;

/** Why an event was dropped rather than logged (the `reason` label of nova_bridge_events_dropped_total). */
export type DropReason = "edit_by_non_author" | "edit_of_unknown_message" | "malformed" | "unknown_msgtype";

export interface AuthorsDeps {
  client: MatrixClient;
  serverName: string;
}

export class Authors {
  readonly #deps: AuthorsDeps;
  readonly #senders = new LRUCache<string, string>({ max: REMEMBERED_MESSAGES });

  constructor(deps: AuthorsDeps) {
    this.#deps = deps;
  }

  /** Remembers who wrote a message (a send's result, an event seen by the sync loop). */
  remember(messageId: string, matrixSender: string): void {
    this.#senders.set(messageId, matrixSender);
  }

  /** The Matrix user who wrote `messageId` in the room, or undefined when the room has no such event. */
  async senderOf(roomId: string, messageId: string): Promise<string | undefined> {
    const known = this.#senders.get(messageId);
    if (known) return known;
    try {
      const event = await getEvent(this.#deps.client, roomId, messageId);
      if (typeof event.sender !== "string") return undefined;
      this.#senders.set(messageId, event.sender);
      return event.sender;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * The events in order, without the edits whose sender did not write the message they replace (or that replace
   * nothing the room holds). `onDropped` hears of each one dropped.
   */
  async keepAuthorsEdits(
    roomId: string,
    events: readonly BridgeEvent[],
    onDropped: (event: BridgeEvent, reason: DropReason) => void,
  ): Promise<BridgeEvent[]> {
    const kept: BridgeEvent[] = [];
    for (const event of events) {
      const sender = matrixSenderOf(event, this.#deps.serverName);
      if (event.type === "message.new") this.remember(event.message_id, sender);
      if (event.type === "message.edited") {
        const author = await this.senderOf(roomId, event.replaces_message_id);
        if (author === undefined) {
          onDropped(event, "edit_of_unknown_message");
          continue;
        }
        if (author !== sender) {
          onDropped(event, "edit_by_non_author");
          continue;
        }
      }
      kept.push(event);
    }
    return kept;
  }
}
