import { waitFor } from "@nova-matrix/dev/harness";
import type { BridgeEvent } from "../src/core/events.ts";
import type { EventStore, LoggedEvent } from "../src/store/store.ts";

/** Every event in the log, oldest first. */
export async function readAll(store: EventStore): Promise<LoggedEvent[]> {
  const all: LoggedEvent[] = [];
  for (;;) {
    const page = await store.readAfter(all.at(-1)?.position, 500);
    all.push(...page);
    if (page.length < 500) return all;
  }
}

/** Waits until the log holds an event matching `match`, and returns it. */
export async function waitForEvent(
  store: EventStore,
  match: (event: BridgeEvent) => boolean,
  timeoutMs = 20_000,
): Promise<BridgeEvent> {
  let found: BridgeEvent | undefined;
  await waitFor(
    async () => {
      found = (await readAll(store)).map((e) => e.event).find(match);
      return found !== undefined;
    },
    { timeoutMs, intervalMs: 100, describe: () => "no matching event reached the log" },
  );
  return found as BridgeEvent;
}
