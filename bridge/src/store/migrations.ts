/** Schema versions, applied in order, each once. Never edit a released one: add the next. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE bridge_event_log (
     position     bigserial PRIMARY KEY,
     event_id     text NOT NULL UNIQUE,
     conversation_id text NOT NULL,
     type         text NOT NULL,
     payload      jsonb NOT NULL,
     logged_at    timestamptz NOT NULL DEFAULT now()
   );
   CREATE INDEX bridge_event_log_conversation ON bridge_event_log (conversation_id, position);
   CREATE TABLE bridge_sync_state (
     id         boolean PRIMARY KEY DEFAULT true CHECK (id),
     next_batch text NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT now()
   );`,
  // Sent transaction ids -> event ids: Synapse forgets an appservice's transaction ids after 30 minutes or a
  // restart, so the bridge remembers them to keep an idempotency key's send single for good.
  `CREATE TABLE bridge_sent (
     txn_id   text PRIMARY KEY,
     event_id text NOT NULL,
     sent_at  timestamptz NOT NULL DEFAULT now()
   );`,
  // Transaction ids a send was attempted with: a repeated key whose earlier attempt has no recorded result (the
  // process died, or Synapse stored the event and failed before answering) is looked up in the room before it is
  // sent again, even after a restart of the bridge or of Synapse.
  `CREATE TABLE bridge_send_attempts (
     txn_id       text PRIMARY KEY,
     attempted_at timestamptz NOT NULL DEFAULT now()
   );`,
];
