// The database setup, as one psql script. Pure. Idempotent: it creates what is missing, sets the role's password to
// the generated one (so a rotated password takes effect), and never drops or rewrites an existing database; an
// existing database with the wrong collation stops the script instead of being "fixed".
//
// psql variables: `role`, `db` (identifiers, from -v); the role's password arrives as a SCRAM-SHA-256 verifier
// (scram.ts) in the environment variable VERIFIER_ENV (psql's \getenv): never the password itself, never on a
// command line, in a ConfigMap or in the script. A plain password is refused.

/** The environment variable (and setup Secret key) holding the role's SCRAM-SHA-256 verifier: what the Job reads. */
export const VERIFIER_ENV = "SYNAPSE_DB_PASSWORD_SCRAM";
/**
 * The setup Secret's key holding the role's password itself, for other jobs that log in as the role (backups).
 * The setup Job never reads it.
 */
export const PASSWORD_ENV = "SYNAPSE_DB_PASSWORD";

export const DATABASE_SETUP_SQL = `\\set ON_ERROR_STOP on
\\getenv synapse_password ${VERIFIER_ENV}
\\if :{?synapse_password}
\\else
  DO $$ BEGIN RAISE EXCEPTION '${VERIFIER_ENV} is not set'; END $$;
\\endif
SELECT left(:'synapse_password', 14) <> 'SCRAM-SHA-256$' AS plain_password \\gset
\\if :plain_password
  DO $$ BEGIN RAISE EXCEPTION '${VERIFIER_ENV} must hold a SCRAM-SHA-256 verifier, not a password'; END $$;
\\endif

SELECT format('CREATE ROLE %I LOGIN', :'role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \\gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'synapse_password';

-- A non-superuser admin (Cloud SQL) must be a member of the owner role to create a database owned by it.
SELECT format('GRANT %I TO %I', :'role', current_user)
  WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
    AND NOT pg_has_role(current_user, :'role', 'MEMBER') \\gexec

-- CREATE DATABASE cannot run in a transaction block: \\gexec sends it as its own statement.
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' LC_COLLATE ''C'' LC_CTYPE ''C'' TEMPLATE template0',
              :'db', :'role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \\gexec

SELECT format('DO $x$ BEGIN RAISE EXCEPTION %L; END $x$',
              format('database %s exists with encoding %s, collation %s, ctype %s; Synapse needs UTF8/C/C. '
                     'It was left untouched: move it aside or recreate it by hand.',
                     datname, pg_encoding_to_char(encoding), datcollate, datctype))
  FROM pg_database
  WHERE datname = :'db' AND (datcollate <> 'C' OR datctype <> 'C' OR pg_encoding_to_char(encoding) <> 'UTF8') \\gexec

\\connect :"db"
GRANT ALL ON SCHEMA public TO :"role";
GRANT ALL PRIVILEGES ON DATABASE :"db" TO :"role";
`;

/** psql's arguments for the script at `scriptPath`. */
export function psqlArgs(scriptPath: string, database: { name: string; user: string }): string[] {
  return [
    "--no-psqlrc",
    "--quiet",
    "-v",
    `role=${database.user}`,
    "-v",
    `db=${database.name}`,
    "-d",
    "postgres",
    "-f",
    scriptPath,
  ];
}
