import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { HarnessUnavailableError } from "./errors.ts";
import { freePort, run, waitFor } from "./process.ts";

export interface PostgresOptions {
  /** Keep the cluster here across runs (the local stack); default: a temp dir removed on stop. */
  dataDir?: string;
  /** Default: a free loopback port. */
  port?: number;
  /** Throwaway clusters skip fsync for speed; a kept cluster (dataDir set) keeps it on. */
  fsync?: boolean;
  /** More server settings (`-c name=value`), such as {@link COUNT_STATEMENTS}. */
  settings?: Record<string, string>;
}

/** Loads pg_stat_statements, so {@link statementCalls} can count what a role ran. */
export const COUNT_STATEMENTS: Record<string, string> = { shared_preload_libraries: "pg_stat_statements" };

/**
 * Statements `role` has run on this server (a cluster started with {@link COUNT_STATEMENTS}), optionally only
 * those whose text contains `containing`. Counted by the server as each statement ends, so no wait is needed.
 */
export async function statementCalls(server: PostgresServer, role: string, containing = ""): Promise<number> {
  await server.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  const { rows } = await server.query<{ calls: string }>(
    `SELECT coalesce(sum(calls), 0)::text AS calls FROM pg_stat_statements
     WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = $1) AND strpos(query, $2) > 0`,
    [role, containing],
  );
  return Number(rows[0]?.calls ?? 0);
}

/** A PostgreSQL 15 server on loopback, owned by this process. */
export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  readonly adminUser: string;
  readonly adminPassword: string;
  readonly dataDir: string;
  /** A `postgres://` URL for the admin user, or for `user`/`password` when given. */
  url(database?: string, user?: { name: string; password: string }): string;
  /** Runs one statement as the admin user (each call is its own session, so CREATE DATABASE works). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
    database?: string,
  ): Promise<pg.QueryResult<R>>;
  /** Creates a database with the encoding and collation Synapse requires (UTF8, C, template0). */
  createDatabase(name: string, owner?: string): Promise<void>;
  /** Creates a login role with a password. */
  createRole(name: string, password: string): Promise<void>;
  /** Stops the server (fast shutdown). With `keepData` false (default for temp dirs) removes its files. */
  stop(): Promise<void>;
  /** Stops and starts the same cluster again on the same port. */
  restart(): Promise<void>;
  /** The server's log so far. */
  log(): Promise<string>;
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

export async function postgresBinDir(): Promise<string> {
  const result = await run("pg_config", ["--bindir"]).catch(() => undefined);
  const dir = result?.code === 0 ? result.stdout.trim() : "";
  if (!dir || !existsSync(join(dir, "initdb")) || !existsSync(join(dir, "postgres"))) {
    throw new HarnessUnavailableError(
      "PostgreSQL 15 server binaries were not found (`pg_config --bindir` should name a directory with initdb and postgres). " +
        "Install them: apt-get install postgresql-15 (Debian) and make sure pg_config is the one from that package.",
    );
  }
  return dir;
}

async function userIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await readFile("/etc/passwd", "utf8");
  const fields = passwd
    .split("\n")
    .find((line) => line.startsWith(`${name}:`))
    ?.split(":");
  return fields ? { uid: Number(fields[2]), gid: Number(fields[3]) } : undefined;
}

/** Starts a PostgreSQL cluster (initdb on first use). As root it runs as the `postgres` user. */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const binDir = await postgresBinDir();
  const temporary = options.dataDir === undefined;
  const baseDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "nova-pg-")));
  const dataDir = join(baseDir, "data");
  const socketDir = join(baseDir, "socket");
  const logPath = join(baseDir, "postgres.log");
  const passwordFile = join(baseDir, "admin-password");
  const port = options.port ?? (await freePort());
  const fsync = options.fsync ?? !temporary;
  const owner = process.getuid?.() === 0 ? await userIds("postgres") : undefined;
  if (process.getuid?.() === 0 && !owner) {
    throw new HarnessUnavailableError(
      "Running as root, but there is no `postgres` user to run PostgreSQL as (it refuses to run as root). Install postgresql-15, which creates it.",
    );
  }
  const asOwner = owner ?? {};
  const chownTree = async (path: string) => {
    if (owner) await chown(path, owner.uid, owner.gid);
  };

  await mkdir(baseDir, { recursive: true });
  await chownTree(baseDir);
  await chmod(baseDir, 0o700);
  let adminPassword: string;
  if (existsSync(join(dataDir, "PG_VERSION"))) {
    adminPassword = (await readFile(passwordFile, "utf8")).trim();
  } else {
    adminPassword = randomBytes(18).toString("base64url");
    await writeFile(passwordFile, `${adminPassword}\n`, { mode: 0o600 });
    await chownTree(passwordFile);
    const initdb = await run(
      join(binDir, "initdb"),
      [
        "-D",
        dataDir,
        "-U",
        "postgres",
        `--pwfile=${passwordFile}`,
        "-A",
        "scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
      ],
      asOwner,
    );
    if (initdb.code !== 0) throw new Error(`initdb failed (exit ${initdb.code}):\n${initdb.stderr}`);
  }
  await mkdir(socketDir, { recursive: true });
  await chownTree(socketDir);

  let child: ChildProcess | undefined;
  const start = async () => {
    const logStream = createWriteStream(logPath, { flags: "a" });
    child = spawn(
      join(binDir, "postgres"),
      [
        "-D",
        dataDir,
        "-p",
        String(port),
        "-k",
        socketDir,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `fsync=${fsync ? "on" : "off"}`,
        "-c",
        "max_connections=200",
        ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
      ],
      { stdio: ["ignore", "pipe", "pipe"], ...asOwner },
    );
    child.stdout?.pipe(logStream);
    child.stderr?.pipe(logStream);
    const exited = new Promise<void>((resolve) => child?.once("exit", () => resolve()));
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    await waitFor(
      async () => {
        if (gone) throw new Error("postgres exited");
        const client = new pg.Client({ connectionString: server.url() });
        await client.connect();
        await client.end();
        return true;
      },
      {
        timeoutMs: 30_000,
        describe: () => `PostgreSQL did not accept connections on 127.0.0.1:${port}; see ${logPath}`,
      },
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${(await readFile(logPath, "utf8")).slice(-3000)}`);
    });
  };
  const stopServer = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
    running.kill("SIGINT"); // fast shutdown: disconnect clients, checkpoint, exit
    const timer = setTimeout(() => running.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  };

  const server: PostgresServer = {
    host: "127.0.0.1",
    port,
    adminUser: "postgres",
    adminPassword,
    dataDir: baseDir,
    url(database = "postgres", user) {
      const name = encodeURIComponent(user?.name ?? "postgres");
      const password = encodeURIComponent(user?.password ?? adminPassword);
      return `postgres://${name}:${password}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
    },
    async query(sql, params, database) {
      const client = new pg.Client({ connectionString: server.url(database) });
      await client.connect();
      try {
        return await client.query(sql, params);
      } finally {
        await client.end();
      }
    },
    async createDatabase(name, dbOwner) {
      await server.query(
        `CREATE DATABASE ${quoteIdent(name)}${dbOwner ? ` OWNER ${quoteIdent(dbOwner)}` : ""} ` +
          "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
      );
    },
    async createRole(name, password) {
      const escaped = password.replaceAll("'", "''");
      await server.query(`CREATE ROLE ${quoteIdent(name)} LOGIN PASSWORD '${escaped}'`);
    },
    async stop() {
      await stopServer();
      if (temporary) await rm(baseDir, { recursive: true, force: true });
    },
    async restart() {
      await stopServer();
      await start();
    },
    log: () => readFile(logPath, "utf8"),
  };
  await start();
  return server;
}
