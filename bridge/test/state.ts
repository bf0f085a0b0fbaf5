// Counts that any change in Synapse or the bridge would move: a refused request must leave all of them as they were.
import type { TestStack } from "@nova-matrix/dev/harness/test-stack";

export type StateSnapshot = Record<string, unknown>;

/** Synapse's events, users, rooms, aliases, state and media; the bridge's log and sent transactions. */
export async function stateSnapshot(stack: TestStack, bridgeDatabase: string): Promise<StateSnapshot> {
  const synapse = await stack.postgres.query(
    `SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM users) AS users,
            (SELECT count(*) FROM rooms) AS rooms, (SELECT count(*) FROM room_aliases) AS aliases,
            (SELECT count(*) FROM current_state_events) AS state,
            (SELECT count(*) FROM local_media_repository) AS media`,
    [],
    "synapse",
  );
  const bridge = await stack.postgres.query(
    // Not bridge_send_attempts: a send Synapse refused (too large, not a member) leaves its attempt, which only
    // makes a retry of the same key look in the room first.
    "SELECT (SELECT count(*) FROM bridge_sent) AS sent, (SELECT count(*) FROM bridge_event_log) AS log",
    [],
    bridgeDatabase,
  );
  return { ...synapse.rows[0], ...bridge.rows[0] };
}

/** The database name of a bridge database URL (what `stack.postgres.query` takes). */
export const databaseName = (url: string): string => new URL(url).pathname.slice(1);
