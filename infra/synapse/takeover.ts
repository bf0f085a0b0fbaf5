// Taking over a hand-made Synapse (pure): the SQL that revokes every credential the hand-made deployment created in the
// adopted database.
//
// Who is "hand-made": every local user that exists when the stack first takes the database over and that no appservice
// registered (`users.appservice_id IS NULL`). The hand-made deployment registered its accounts through the admin API with
// the (leaked) registration shared secret, `@nova-service` among them (with a password, logged in as device
// NOVA_SERVICE); this program never creates a password user, and the appservice registers the service user and the
// ghosts itself. Their accounts stay (rooms, messages, memberships); what is revoked: the password (no password login
// remains), every access, refresh, login and OpenID token, every device with its keys and queued to-device messages,
// and every pusher (a push gateway would keep receiving message content).
//
// Where it runs: in the database setup Job, as the second script after setup.sql (the same psql session, connected to
// Synapse's database as the admin, after setup.sql has set the `synapse` role's password to the generated one, which
// retires the hand-made password). Synapse caches token lookups in memory (`get_user_by_access_token`), so rows deleted
// under a running Synapse keep answering until it restarts: the Synapse pod carries TAKEOVER_ANNOTATION, and the
// Deployment (Recreate, waiting for the setup Job) restarts it after the first run, and whenever the step is turned on.
//
// Once: the first run records itself in `nova_matrix.takeover` (in the same transaction as the revocation), and every
// later run (each setup Job) sees the record and changes nothing, so accounts an operator creates after the takeover
// are never touched: safe to leave on. A database without Synapse's tables (a new one) is recorded as taken over with
// nothing to revoke.

/** The script's key in the setup Job's ConfigMap (mounted at /setup beside setup.sql). */
export const TAKEOVER_FILE = "takeover.sql";
/** Synapse's pod annotation that restarts it after the takeover step is turned on (its cached tokens go with it). */
export const TAKEOVER_ANNOTATION = "nova.chat/takeover";
/** The schema and table that record the takeover in Synapse's database. */
export const TAKEOVER_RECORD = "nova_matrix.takeover";

/** Tables whose rows are credentials of a user, and the column naming the user, deleted for every hand-made user. */
const CREDENTIAL_TABLES: readonly (readonly [table: string, userColumn: string])[] = [
  ["access_tokens", "user_id"],
  ["refresh_tokens", "user_id"],
  ["login_tokens", "user_id"],
  ["open_id_tokens", "user_id"],
  ["pushers", "user_name"],
  // Devices, and what Synapse deletes with a device (DeviceStore.delete_devices) or keeps for it.
  ["device_auth_providers", "user_id"],
  ["e2e_device_keys_json", "user_id"],
  ["e2e_one_time_keys_json", "user_id"],
  ["e2e_fallback_keys_json", "user_id"],
  ["dehydrated_devices", "user_id"],
  ["device_inbox", "user_id"],
];

const deleteFrom = ([table, column]: readonly [string, string]) =>
  `  IF to_regclass('public.${table}') IS NOT NULL THEN
    EXECUTE format('DELETE FROM public.%I WHERE %I = ANY($1)', '${table}', '${column}') USING hand_made;
    GET DIAGNOSTICS removed = ROW_COUNT;
    revoked := revoked || jsonb_build_object('${table}', removed);
  END IF;`;

/** The psql script: one transaction, idempotent (see above). Runs as the role that owns Synapse's tables. */
export const TAKEOVER_SQL = `\\set ON_ERROR_STOP on
BEGIN;
CREATE SCHEMA IF NOT EXISTS nova_matrix;
CREATE TABLE IF NOT EXISTS ${TAKEOVER_RECORD} (
  taken_over_at timestamptz NOT NULL DEFAULT now(),
  hand_made_users text[] NOT NULL,
  revoked jsonb NOT NULL
);
-- One takeover at a time (two pods starting together would otherwise both find no record).
LOCK TABLE ${TAKEOVER_RECORD} IN EXCLUSIVE MODE;
DO $takeover$
DECLARE
  hand_made text[] := '{}';
  revoked jsonb := '{}';
  removed bigint;
  done timestamptz;
BEGIN
  SELECT taken_over_at INTO done FROM ${TAKEOVER_RECORD} LIMIT 1;
  IF FOUND THEN
    RAISE NOTICE 'nova-matrix takeover: done at %, nothing to do', done;
    RETURN;
  END IF;
  IF to_regclass('public.users') IS NOT NULL THEN
    SELECT coalesce(array_agg(name ORDER BY name), '{}') INTO hand_made
      FROM public.users WHERE appservice_id IS NULL;
${CREDENTIAL_TABLES.map(deleteFrom).join("\n")}
    -- Hidden devices hold cross-signing keys, not sessions: Synapse keeps them on logout too.
    DELETE FROM public.devices WHERE user_id = ANY(hand_made) AND NOT hidden;
    GET DIAGNOSTICS removed = ROW_COUNT;
    revoked := revoked || jsonb_build_object('devices', removed);
    UPDATE public.users SET password_hash = NULL WHERE name = ANY(hand_made) AND password_hash IS NOT NULL;
    GET DIAGNOSTICS removed = ROW_COUNT;
    revoked := revoked || jsonb_build_object('passwords', removed);
  END IF;
  INSERT INTO ${TAKEOVER_RECORD} (hand_made_users, revoked) VALUES (hand_made, revoked);
  RAISE NOTICE 'nova-matrix takeover: revoked the credentials of % hand-made user(s) %: %',
    cardinality(hand_made), hand_made, revoked;
END
$takeover$;
COMMIT;
`;
