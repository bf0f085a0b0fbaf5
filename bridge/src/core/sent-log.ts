// The sent log of a bridge without a database that keeps one: this process's memory, bounded (the oldest keys are
// forgotten first, and with them their protection against a repeat).
import { LRUCache } from "lru-cache";
import type { EarlierSend, SendRequest, SentLog } from "../store/store.ts";

const REMEMBERED_KEYS = 10_000;

export class MemorySentLog implements SentLog {
  readonly #sends = new LRUCache<string, { request: SendRequest; eventId?: string; content?: unknown }>({
    max: REMEMBERED_KEYS,
  });

  async recordAttempt(txnId: string, request: SendRequest): Promise<EarlierSend | undefined> {
    const earlier = this.#sends.get(txnId);
    if (!earlier) {
      this.#sends.set(txnId, { request });
      return undefined;
    }
    return { request: earlier.request, eventId: earlier.eventId, content: earlier.content };
  }

  async recordSent(txnId: string, eventId: string, content?: unknown): Promise<string> {
    const earlier = this.#sends.get(txnId);
    if (earlier?.eventId) return earlier.eventId;
    if (earlier) this.#sends.set(txnId, { ...earlier, eventId, content });
    return eventId;
  }
}
