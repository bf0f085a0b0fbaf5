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
  // Media -> the conversations it was sent in (the media route's access rule), kept from the event log's commits.
  // A table of its own rather than a lookup in the log: the log may be pruned, a deleted message's media must stop
  // being served, and the lookup is by mxc URI (the primary key's leading column). Filled from what is logged.
  `CREATE TABLE bridge_media (
     mxc_uri         text NOT NULL,
     conversation_id text NOT NULL,
     message_id      text NOT NULL,
     PRIMARY KEY (mxc_uri, conversation_id, message_id)
   );
   CREATE INDEX bridge_media_message ON bridge_media (conversation_id, message_id);
   INSERT INTO bridge_media (mxc_uri, conversation_id, message_id)
     SELECT payload->'content'->>'url', conversation_id,
            coalesce(payload->>'replaces_message_id', payload->>'message_id')
     FROM bridge_event_log WHERE payload->'content'->>'url' LIKE 'mxc://%'
     ON CONFLICT DO NOTHING;
   DELETE FROM bridge_media m USING bridge_event_log d
     WHERE d.type = 'message.deleted' AND d.conversation_id = m.conversation_id
       AND d.payload->>'message_id' = m.message_id;`,
  // Idempotency that cannot lose a message: each attempt keeps the request it was made for (conversation, kind,
  // a digest per field), so the same key asking for something else is refused instead of answered with the first
  // message; each result keeps the content it answered, so a replay answers the stored message. Indexes for pruning.
  `ALTER TABLE bridge_send_attempts
     ADD COLUMN conversation_id text,
     ADD COLUMN kind text,
     ADD COLUMN fingerprint jsonb;
   ALTER TABLE bridge_sent ADD COLUMN content jsonb;
   CREATE INDEX bridge_send_attempts_attempted_at ON bridge_send_attempts (attempted_at);
   CREATE INDEX bridge_sent_sent_at ON bridge_sent (sent_at);`,
  // The event log's owner: an epoch bumped each time a replica takes the sync lock; every commit checks, in its
  // transaction, that the epoch is still its own (a replica the database already gave up on cannot write).
  `CREATE TABLE bridge_sync_owner (
     id       boolean PRIMARY KEY DEFAULT true CHECK (id),
     epoch    bigint NOT NULL,
     taken_at timestamptz NOT NULL DEFAULT now()
   );`,
  // Retention: how far the log has been pruned (a cursor before it is expired: positions have gaps, so the
  // oldest position kept cannot tell), and an index to find what is old.
  `CREATE TABLE bridge_log_retention (
     id             boolean PRIMARY KEY DEFAULT true CHECK (id),
     pruned_through bigint NOT NULL,
     pruned_at      timestamptz NOT NULL DEFAULT now()
   );
   CREATE INDEX bridge_event_log_logged_at ON bridge_event_log (logged_at);`,
];
