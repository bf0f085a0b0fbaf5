/**
 * Runs tasks in order per key (a conversation) and concurrently across keys, unlike matrix-js-sdk's one global
 * send queue. A failed task does not block the ones after it. Keys with nothing queued hold no memory.
 */
export class KeyedSerialQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Keys with queued or running tasks. */
  get activeKeys(): number {
    return this.#tails.size;
  }
}
