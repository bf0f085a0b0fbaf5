import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type PostgresServer,
  postgresBinDir,
  run,
  startPostgres,
  startSynapse,
} from "@nova-matrix/dev/harness";
import { describeWithHarness, harnessChroot } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { generateLocalSecrets, localSynapseFiles } from "../synapse/local-profile.ts";
import { scramSha256Verifier } from "./scram.ts";
import { DATABASE_SETUP_SQL, psqlArgs, VERIFIER_ENV } from "./sql.ts";

describeWithHarness("database setup SQL on the real PostgreSQL 15", () => {
  let postgres: PostgresServer;
  let workDir: string;
  let scriptPath: string;

  const setup = async (
    database: { name: string; user: string },
    password: string | undefined,
    admin?: { user: string; password: string },
    plain = false,
  ) => {
    const psql = join(await postgresBinDir(), "psql");
    return run(psql, psqlArgs(scriptPath, database), {
      env: {
        PATH: process.env.PATH,
        PGHOST: postgres.host,
        PGPORT: String(postgres.port),
        PGUSER: admin?.user ?? postgres.adminUser,
        PGPASSWORD: admin?.password ?? postgres.adminPassword,
        ...(password === undefined
          ? {}
          : { [VERIFIER_ENV]: plain ? password : scramSha256Verifier(password) }),
      },
    });
  };
  const canLogIn = async (database: string, user: string, password: string) => {
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: postgres.url(database, { name: user, password }) });
    try {
      await client.connect();
      await client.query("CREATE TABLE IF NOT EXISTS login_probe (id int)"); // rights on schema public
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const locale = async (database: string) =>
    (
      await postgres.query<{ encoding: string; collate: string; ctype: string; owner: string }>(
        "SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1",
        [database],
      )
    ).rows;

  beforeAll(async () => {
    postgres = await startPostgres();
    workDir = await mkdtemp(join(tmpdir(), "nova-sql-"));
    scriptPath = join(workDir, "setup.sql");
    await writeFile(scriptPath, DATABASE_SETUP_SQL);
  });

  afterAll(async () => {
    await postgres?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("runs twice, leaves a UTF8 / C / C database owned by the role, and follows a password change", async () => {
    const first = randomBytes(18).toString("base64url");
    const database = { name: "synapse", user: "synapse" };
    const once = await setup(database, first);
    expect(once.code, once.stderr).toBe(0);
    const twice = await setup(database, first);
    expect(twice.code, twice.stderr).toBe(0);
    expect(await locale("synapse")).toEqual([
      { encoding: "UTF8", collate: "C", ctype: "C", owner: "synapse" },
    ]);
    expect(await canLogIn("synapse", "synapse", first)).toBe(true);

    const rotated = randomBytes(18).toString("base64url");
    expect((await setup(database, rotated)).code).toBe(0);
    expect(await canLogIn("synapse", "synapse", rotated)).toBe(true);
    expect(await canLogIn("synapse", "synapse", first)).toBe(false);
    // Nothing stored was lost: the table made through the first login is still there.
    const { rows } = await postgres.query(
      "SELECT 1 FROM pg_tables WHERE tablename = 'login_probe'",
      [],
      "synapse",
    );
    expect(rows).toHaveLength(1);
  });

  it("works as a non-superuser admin with CREATEROLE and CREATEDB, as on Cloud SQL", async () => {
    const adminPassword = randomBytes(18).toString("base64url");
    await postgres.query(`CREATE ROLE cloudadmin LOGIN CREATEROLE CREATEDB PASSWORD '${adminPassword}'`);
    const password = randomBytes(18).toString("base64url");
    const database = { name: "synapse_cloud", user: "synapse_cloud" };
    const admin = { user: "cloudadmin", password: adminPassword };
    for (let i = 0; i < 2; i++) {
      const result = await setup(database, password, admin);
      expect(result.code, result.stderr).toBe(0);
    }
    expect(await locale("synapse_cloud")).toEqual([
      { encoding: "UTF8", collate: "C", ctype: "C", owner: "synapse_cloud" },
    ]);
    expect(await canLogIn("synapse_cloud", "synapse_cloud", password)).toBe(true);
  });

  it("refuses to touch an existing database with the wrong collation, and says why", async () => {
    await postgres.query(
      "CREATE DATABASE wrong_locale ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0",
    );
    const result = await setup({ name: "wrong_locale", user: "wrong_locale" }, "x".repeat(20));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("Synapse needs UTF8/C/C");
    expect(await locale("wrong_locale")).toEqual([
      { encoding: "UTF8", collate: "C.UTF-8", ctype: "C.UTF-8", owner: postgres.adminUser },
    ]);
  });

  it("refuses a plain password: only a SCRAM verifier may reach the Job", async () => {
    const password = randomBytes(18).toString("base64url");
    const result = await setup({ name: "synapse_plain", user: "synapse_plain" }, password, undefined, true);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("must hold a SCRAM-SHA-256 verifier");
    expect(result.stderr).not.toContain(password);
    const { rows } = await postgres.query("SELECT 1 FROM pg_roles WHERE rolname = 'synapse_plain'");
    expect(rows).toEqual([]);
  });

  it("stores the verifier it was given, so the role logs in with the password the verifier came from", async () => {
    const password = randomBytes(18).toString("base64url");
    expect((await setup({ name: "synapse_v", user: "synapse_v" }, password)).code).toBe(0);
    const { rows } = await postgres.query<{ rolpassword: string }>(
      "SELECT rolpassword FROM pg_authid WHERE rolname = 'synapse_v'",
    );
    expect(rows[0]?.rolpassword).toBe(scramSha256Verifier(password));
    expect(await canLogIn("synapse_v", "synapse_v", password)).toBe(true);
  });

  it("fails without the password variable instead of setting an empty one", async () => {
    const result = await setup({ name: "synapse", user: "synapse" }, undefined);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`${VERIFIER_ENV} is not set`);
  });

  it("gives a database Synapse starts on", async () => {
    const password = randomBytes(18).toString("base64url");
    expect((await setup({ name: "synapse_run", user: "synapse_run" }, password)).code).toBe(0);
    const synapse = await startSynapse({
      chroot: harnessChroot(),
      configFiles: ["homeserver.yaml", "database.yaml"],
      files: (paths) =>
        localSynapseFiles({
          paths,
          serverName: "sql.test",
          database: {
            host: postgres.host,
            port: postgres.port,
            name: "synapse_run",
            user: "synapse_run",
            password,
          },
          secrets: generateLocalSecrets(),
        }).files,
    });
    try {
      expect(await (await fetch(`${synapse.baseUrl}/health`)).text()).toBe("OK");
    } finally {
      await synapse.dispose();
    }
  });
});
